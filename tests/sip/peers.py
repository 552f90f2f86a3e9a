"""Real SIP peers for the tests: sipp, Kamailio and baresip on 127.0.0.1.

Nothing here is a test. Each runner starts one program in the foreground with its own
working directory (logs, traces, generated configs), waits until it listens, and always kills
it: ``stop()`` terminates then kills after a grace period, the runners are context managers,
and an ``atexit`` hook kills anything a crashed test left behind. ``stop()`` prints the tail of
the program's logs; pytest shows a test's captured output only when it fails, so the logs of
a failing test's peers come with its report and passing tests stay quiet.

    from peers import Sipp, Kamailio, Baresip, free_udp_port, require
    from peers_media import SpandspT38Endpoint, UdpTap    # the fax end, a timing tap

    require("sipp")                                   # pytest.skip with a reason if absent
    with Sipp("uas_t38_reinvite.xml", tmp_path, port=free_udp_port()) as uas:
        ...                                           # drive xmfax at uas.port
        result = uas.wait(timeout=10)
    assert result.ok, result.log()

Ports: ``free_udp_port()`` / ``free_tcp_port()`` bind port 0 and read it back;
``free_port()`` gives a number free for both (a SIP listener takes UDP and TCP); ``free_ports(n)``
gives n distinct numbers. A port is free when returned, not reserved: start the peer soon.
"""
from __future__ import annotations

import atexit
import math
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import wave
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable, Mapping, Sequence

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
REPO = Path(__file__).resolve().parents[2]
KAMAILIO_PROXY_CFG = REPO / "examples" / "kamailio" / "proxy.cfg"

_LIVE: set["PeerProcess"] = set()


def require(program: str) -> str:
    """The program's path, or pytest.skip naming the Debian package that brings it."""
    path = shutil.which(program)
    if path is None:
        import pytest
        package = {"sipp": "sip-tester", "baresip": "baresip-core"}.get(program, program)
        pytest.skip(f"{program} is not installed (Debian package {package}; scripts/install.sh --test)")
    return path


# -- ports -------------------------------------------------------------------------------

def _bound(kind: int, port: int = 0) -> socket.socket:
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, port))
    return s


def free_udp_port() -> int:
    with _bound(socket.SOCK_DGRAM) as s:
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with _bound(socket.SOCK_STREAM) as s:
        return s.getsockname()[1]


def free_ports(n: int, *, both: bool = True) -> list[int]:
    """n distinct port numbers, each free for UDP (and TCP too when ``both``)."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < n:
            u = _bound(socket.SOCK_DGRAM)
            port = u.getsockname()[1]
            held.append(u)
            if both:
                try:
                    held.append(_bound(socket.SOCK_STREAM, port))
                except OSError:
                    continue
            ports.append(port)
    finally:
        for s in held:
            s.close()
    return ports


def free_media_port() -> int:
    """An even UDP port p with p + 2 free too (sipp binds its audio and video RTP there)."""
    for _ in range(200):
        p = free_udp_port() & ~1
        held = []
        try:
            for q in (p, p + 1, p + 2, p + 3):
                held.append(_bound(socket.SOCK_DGRAM, q))
            return p
        except OSError:
            continue
        finally:
            for s in held:
                s.close()
    raise RuntimeError("no free media port pair found")


def free_port() -> int:
    """One port number free for both UDP and TCP."""
    return free_ports(1)[0]


def _listening(port: int, transport: str) -> bool:
    """Is something bound to 127.0.0.1/0.0.0.0:port (UDP), or listening on it (TCP)?"""
    table = "/proc/net/udp" if transport == "udp" else "/proc/net/tcp"
    wanted = f"{port:04X}"
    try:
        lines = Path(table).read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        parts = line.split()
        if len(parts) < 4:
            continue
        addr, _, hexport = parts[1].partition(":")
        if hexport != wanted or addr not in ("0100007F", "00000000"):
            continue
        if transport == "udp" or parts[3] == "0A":      # 0A = TCP_LISTEN
            return True
    return False


def wait_listening(port: int, transport: str = "udp", *, timeout: float = 10.0,
                   process: "PeerProcess | None" = None) -> None:
    """Wait until 127.0.0.1:port is bound (UDP) or listening (TCP); RuntimeError with the
    process's logs on timeout or when the process exits first."""
    deadline = time.monotonic() + timeout
    while not _listening(port, transport):
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.name} exited ({process.poll()}) before listening on "
                               f"{transport}:{port}\n{process.log()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing listening on {transport}:{port} after {timeout} s"
                               + (f"\n{process.log()}" if process else ""))
        time.sleep(0.02)


# -- processes ---------------------------------------------------------------------------

class PeerProcess:
    """One program run in the foreground, stdout and stderr to files in ``workdir``."""

    name = "peer"
    grace = 2.0

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.stdout_path = self.workdir / f"{self.name}.stdout"
        self.stderr_path = self.workdir / f"{self.name}.stderr"
        self.extra_logs: list[Path] = []
        self.started_at: float | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> "PeerProcess":
        cmd = self.command()
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=err, start_new_session=True)
        self.started_at = time.monotonic()
        _LIVE.add(self)
        return self

    def poll(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, *, quiet: bool = False) -> int | None:
        """Terminate (then kill after ``grace`` s); print the logs' tail unless ``quiet``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=self.grace)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=5)
        _LIVE.discard(self)
        if not quiet:
            print(self.log(tail=80))
        return self.proc.returncode

    def _signal(self, sig: int) -> None:
        """Signal the process group we started (start_new_session): the program and its
        children (Kamailio forks workers), nothing else."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def wait_exit(self, timeout: float) -> int:
        """The exit code; on timeout the process is killed and RuntimeError carries its logs."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop(quiet=True)
            raise RuntimeError(f"{self.name} still running after {timeout} s, killed\n{self.log()}")
        finally:
            if self.proc.poll() is not None:
                _LIVE.discard(self)

    def log(self, tail: int | None = None) -> str:
        """Every log file of this run, each headed by its name (the last ``tail`` lines each)."""
        parts = []
        for path in [self.stdout_path, self.stderr_path, *self.extra_logs]:
            if not path.exists():
                continue
            text = path.read_text(errors="replace")
            if tail is not None:
                text = "\n".join(text.splitlines()[-tail:])
            if text.strip():
                parts.append(f"===== {self.name}: {path.name} =====\n{text}")
        return "\n".join(parts)

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


@atexit.register
def _kill_leftovers() -> None:
    for p in list(_LIVE):
        try:
            p.stop(quiet=True)
        except Exception:
            pass


# -- sipp --------------------------------------------------------------------------------

_TRACE_HEAD = re.compile(r"^-{20,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\s*$", re.M)
_TRACE_KIND = re.compile(r"^(UDP|TCP|TLS|SCTP) message (sent|received)\b.*$", re.M)


@dataclass(frozen=True)
class TraceMessage:
    """One message from a sipp ``-trace_msg`` file."""
    time: float                 # seconds since the epoch (sipp's wall clock)
    direction: str              # "out" (sipp sent it) | "in" (sipp received it)
    transport: str              # "UDP" | "TCP" ...
    text: str                   # the SIP message as sipp logged it

    @property
    def first_line(self) -> str:
        return self.text.split("\n", 1)[0].strip()

    @property
    def method(self) -> str | None:
        """The request method, or None for a response."""
        return None if self.first_line.startswith("SIP/") else self.first_line.split(" ", 1)[0]

    @property
    def status(self) -> int | None:
        fl = self.first_line
        return int(fl.split()[1]) if fl.startswith("SIP/2.0 ") else None

    def header(self, name: str) -> str | None:
        for line in self.text.split("\n")[1:]:
            if not line.strip():
                break
            key, _, value = line.partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None

    @property
    def body(self) -> str:
        head, sep, body = self.text.replace("\r\n", "\n").partition("\n\n")
        return body if sep else ""


def parse_trace(text: str) -> list[TraceMessage]:
    """The messages of a sipp -trace_msg file, in order."""
    heads = list(_TRACE_HEAD.finditer(text))
    out = []
    for k, m in enumerate(heads):
        chunk = text[m.end():heads[k + 1].start() if k + 1 < len(heads) else len(text)]
        kind = _TRACE_KIND.search(chunk)
        if kind is None:
            continue
        message = chunk[kind.end():].lstrip("\r\n").rstrip() + "\n"
        t = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        out.append(TraceMessage(t, "out" if kind.group(2) == "sent" else "in", kind.group(1),
                                message))
    return out


@dataclass
class SippResult:
    returncode: int             # 0: every call passed; 1: some failed; 97/99/-1/-2: see sipp(1)
    messages: list[TraceMessage]
    errors: str                 # the -error_file (unexpected messages, failed checks)
    logs: str                   # the -log_file (<log> actions)
    output: str                 # stdout/stderr tail: sipp's statistics screen
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out

    def sent(self, first: str = "") -> list[TraceMessage]:
        """Messages sipp sent whose first line starts with ``first``."""
        return [m for m in self.messages if m.direction == "out" and m.first_line.startswith(first)]

    def received(self, first: str = "") -> list[TraceMessage]:
        """Messages sipp received whose first line starts with ``first``
        ("INVITE", "SIP/2.0 200", ...)."""
        return [m for m in self.messages if m.direction == "in" and m.first_line.startswith(first)]

    def ladder(self) -> str:
        t0 = self.messages[0].time if self.messages else 0.0
        return "\n".join(f"{m.time - t0:8.3f} {'->' if m.direction == 'out' else '<-'} {m.first_line}"
                         for m in self.messages)

    def log(self) -> str:
        return (f"sipp exit {self.returncode}{' (timed out, killed)' if self.timed_out else ''}\n"
                f"--- ladder ---\n{self.ladder()}\n--- errors ---\n{self.errors}\n"
                f"--- logs ---\n{self.logs}\n--- output ---\n{self.output}")


SCENARIO_PARAMS: dict[str, object] = {
    "bye_wait": 3000,        # ms a scenario waits for the far end's BYE before sending its own
    "cancel_wait": 10000,    # ms uas_ring_await_cancel waits for the CANCEL
    "refresh_wait": 10000,   # ms uas_register waits for the refreshing REGISTER
    "auth_user": "xmfax",    # the username uas_challenge_407 expects in Proxy-Authorization
    "linger": 500,           # ms a scenario stays after its last message (its <timewait>)
    "reject_status": 486,    # the final status uac_rejected expects
    "ring_wait": 500,        # ms uac_cancel waits for a 180 before it CANCELs anyway
}
_PARAM = re.compile(r"@([a-z][a-z0-9_]*)@")


class Sipp(PeerProcess):
    """sipp with one scenario.

    ``scenario``: a file name under tests/sip/scenarios/, a path, or a built-in ("uac", "uas",
    ...: passed as ``-sn``). A scenario file is a template: each ``@name@`` is replaced by
    ``params[name]`` (defaults in ``SCENARIO_PARAMS``) before sipp reads it, for numbers sipp
    does not take from ``-key`` (timeouts); the rendered copy is in ``workdir``.
    ``remote``: "host:port" the UAC calls (a UAS leaves it None). ``port``: our SIP port (0:
    pick a free one; read ``self.port``). ``transport``: "udp" | "tcp" (sipp's u1 / t1).
    ``variables``: ``-key name value`` pairs, read as ``[name]`` in the scenario (``t38_port``
    defaults to sipp's media port, ``t38_datagram`` to 400, ``expires`` to 4). ``pause``: the
    ``-d`` ms of the scenario's ``<pause/>``. ``service``: the Request-URI user (``-s``).
    ``timeout``: sipp's own global ``-timeout`` (it stops and fails calls still running);
    ``wait()`` kills it past that.
    """

    name = "sipp"

    def __init__(self, scenario: str | Path, workdir: Path, *, remote: str | None = None,
                 port: int = 0, transport: str = "udp", calls: int = 1, rate: float | None = None,
                 service: str | None = None, variables: Mapping[str, str] | None = None,
                 timeout: float = 30.0, extra: Sequence[str] = (), auth: tuple[str, str] | None = None,
                 params: Mapping[str, object] | None = None, pause: int | None = None,
                 label: str = "") -> None:
        if label:
            self.name = f"sipp-{label}"
        super().__init__(workdir)
        self.scenario = scenario
        self.remote = remote
        self.port = port or free_port()
        self.media_port = free_media_port()
        self.transport = transport.lower()
        self.calls = calls
        self.rate = rate
        self.service = service
        self.variables = {"t38_port": self.media_port, "t38_datagram": 400, "expires": 4,
                          **(variables or {})}
        self.params = {**SCENARIO_PARAMS, **(params or {})}
        self.pause = pause
        self.timeout = timeout
        self.extra = list(extra)
        self.auth = auth
        self.message_file = self.workdir / f"{self.name}.msg"
        self.error_file = self.workdir / f"{self.name}.err"
        self.log_file = self.workdir / f"{self.name}.log"
        self.extra_logs = []

    def scenario_args(self) -> list[str]:
        s = self.scenario
        if isinstance(s, str) and "/" not in s and not s.endswith(".xml"):
            return ["-sn", s]
        path = Path(s)
        if not path.is_absolute() and not path.exists():
            path = SCENARIOS / path
        if not path.exists():
            raise FileNotFoundError(f"sipp scenario {s} not found (looked in {SCENARIOS})")
        text = path.read_text()

        def fill(m: re.Match) -> str:
            if m.group(1) not in self.params:
                raise KeyError(f"sipp scenario {path.name}: no value for @{m.group(1)}@")
            return str(self.params[m.group(1)])
        rendered = self.workdir / f"{self.name}-{path.name}"
        rendered.write_text(_PARAM.sub(fill, text))
        return ["-sf", str(rendered)]

    def command(self) -> list[str]:
        cmd = [require("sipp"), *self.scenario_args(),
               "-i", HOST, "-p", str(self.port), "-mi", HOST, "-mp", str(self.media_port),
               "-t", "t1" if self.transport == "tcp" else "u1",
               "-m", str(self.calls), "-nostdin",
               "-timeout", f"{self.timeout:g}s", "-timeout_error",
               "-trace_msg", "-message_file", str(self.message_file),
               "-trace_err", "-error_file", str(self.error_file),
               "-trace_logs", "-log_file", str(self.log_file)]
        if self.transport == "tcp":
            # INTEROP(xmfax): a TCP connection the far end closes after the call (allowed, RFC
            # 3261 §18) makes sipp fail the call still in its last steps; let it reconnect
            cmd += ["-max_reconnect", "3", "-reconnect_close", "false", "-reconnect_sleep", "0"]
        if self.rate is not None:
            cmd += ["-r", f"{self.rate:g}"]
        if self.pause is not None:
            cmd += ["-d", str(int(self.pause))]
        if self.service is not None:
            cmd += ["-s", self.service]
        if self.auth is not None:
            cmd += ["-au", self.auth[0], "-ap", self.auth[1]]
        for k, v in self.variables.items():
            cmd += ["-key", k, str(v)]
        cmd += self.extra
        if self.remote:
            cmd.append(self.remote)
        return cmd

    def start(self) -> "Sipp":
        super().start()
        if not self.remote:                       # a UAS: ready once its SIP port is open
            wait_listening(self.port, self.transport, process=self)
        return self

    def wait(self, timeout: float | None = None) -> SippResult:
        """Wait for sipp to finish its calls (at most ``timeout``, default its own -timeout + 5 s;
        then killed: ``timed_out``)."""
        timed_out = False
        try:
            code = self.wait_exit(self.timeout + 5 if timeout is None else timeout)
        except RuntimeError:
            timed_out = True
            code = self.poll() if self.poll() is not None else -9
        return self.result(code, timed_out)

    def result(self, code: int, timed_out: bool = False) -> SippResult:
        def read(p: Path) -> str:
            return p.read_text(errors="replace") if p.exists() else ""
        out = read(self.stdout_path) + read(self.stderr_path)
        return SippResult(code, parse_trace(read(self.message_file)), read(self.error_file),
                          read(self.log_file), "\n".join(out.splitlines()[-60:]), timed_out)

    def run(self, timeout: float | None = None) -> SippResult:
        """start() + wait(): for a UAC against something already listening."""
        self.start()
        try:
            return self.wait(timeout)
        finally:
            self.stop(quiet=True)

    def log(self, tail: int | None = None) -> str:
        text = super().log(tail)
        for p in (self.error_file, self.log_file):
            if p.exists() and p.stat().st_size:
                body = p.read_text(errors="replace")
                if tail is not None:
                    body = "\n".join(body.splitlines()[-tail:])
                text += f"\n===== {self.name}: {p.name} =====\n{body}"
        if self.message_file.exists():
            text += f"\n===== {self.name}: ladder =====\n" + self.result(self.poll() or 0).ladder()
        return text


# -- Kamailio ----------------------------------------------------------------------------

_DEFINE = re.compile(r'^#!(?:define|substdef)\s+.*$', re.M)


def kamailio_config(template: str, defines: Mapping[str, object]) -> str:
    """The config text with each ``#!define NAME value`` / ``#!substdef "!NAME!value!g"`` of
    ``defines`` set to the given value (added at the top when the template lacks it)."""
    text = template
    for name, value in defines.items():
        pat_def = re.compile(rf'^#!define\s+{re.escape(name)}(\s.*)?$', re.M)
        pat_sub = re.compile(rf'^#!substdef\s+"!{re.escape(name)}!.*$', re.M)
        if pat_sub.search(text):
            text = pat_sub.sub(lambda _m: f'#!substdef "!{name}!{value}!g"', text)
        elif pat_def.search(text):
            text = pat_def.sub(lambda _m: f"#!define {name} {value}", text)
        else:
            first = text.find("\n") + 1 if text.startswith("#!KAMAILIO") else 0
            text = text[:first] + f'#!substdef "!{name}!{value}!g"\n' + text[first:]
    return text


class Kamailio(PeerProcess):
    """Kamailio in the foreground (``-DD -E``) with a generated config.

    ``config``: the template text or a path (default examples/kamailio/proxy.cfg);
    ``defines``: names set in the template (see kamailio_config); the template's listening
    port is the define ``SIP_PORT`` (a free one is picked when absent) on ``SIP_IP``
    127.0.0.1. The config is checked with ``kamailio -c`` first (``check()``; RuntimeError with
    kamailio's message if it is refused).
    """

    name = "kamailio"
    grace = 3.0

    def __init__(self, workdir: Path, config: str | Path | None = None, *,
                 defines: Mapping[str, object] | None = None, transports: Iterable[str] = ("udp", "tcp"),
                 debug: int | None = None) -> None:
        super().__init__(workdir)
        if config is None:
            config = KAMAILIO_PROXY_CFG
        is_path = isinstance(config, Path) or ("\n" not in config and Path(config).is_file())
        self.template = Path(config).read_text() if is_path else config
        self.defines = {"SIP_IP": HOST, **(defines or {})}
        self.defines.setdefault("SIP_PORT", free_port())
        self.port = int(self.defines["SIP_PORT"])
        self.transports = tuple(transports)
        self.debug = debug
        self.cfg_path = self.workdir / "kamailio.cfg"
        self.run_dir = self.workdir / "run"
        self.run_dir.mkdir(exist_ok=True)
        self.cfg_path.write_text(kamailio_config(self.template, self.defines))

    def _base(self) -> list[str]:
        return [require("kamailio"), "-f", str(self.cfg_path), "-Y", str(self.run_dir),
                "-w", str(self.workdir), "-m", "64", "-M", "8"]

    def check(self) -> str:
        p = subprocess.run([*self._base(), "-c"], capture_output=True, text=True, timeout=30,
                           cwd=self.workdir)
        if p.returncode != 0:
            raise RuntimeError(f"kamailio -c refused {self.cfg_path}:\n{p.stdout}\n{p.stderr}")
        return p.stdout + p.stderr

    def command(self) -> list[str]:
        cmd = [*self._base(), "-DD", "-E", "-P", str(self.run_dir / "kamailio.pid")]
        if self.debug is not None:
            cmd += ["-A", f"DEBUG_LEVEL={self.debug}"]
        return cmd

    def start(self) -> "Kamailio":
        self.check()
        super().start()
        for transport in self.transports:
            wait_listening(self.port, transport, timeout=15, process=self)
        return self


# -- baresip -----------------------------------------------------------------------------

def write_wav(path: Path, seconds: float = 4.0, freq: float = 1100.0, rate: int = 8000) -> Path:
    """A mono 16-bit WAV (a CNG-like 1100 Hz tone, 0.5 s on, 3 s off) for baresip's aufile."""
    frames = bytearray()
    for n in range(int(seconds * rate)):
        t = n / rate
        on = (t % 3.5) < 0.5
        frames += struct.pack("<h", int(8000 * math.sin(2 * math.pi * freq * t)) if on else 0)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(bytes(frames))
    return path


class Baresip(PeerProcess):
    """baresip 1.0 as an auto-answering G.711 phone (no T.38: it answers m=image with 488).

    Its config dir is generated in ``workdir``: SIP on 127.0.0.1:``port`` (UDP and TCP), one
    account ``sip:<user>@127.0.0.1:<port>`` answering automatically, PCMU/PCMA only, audio from
    an 8 kHz WAV through ``aufile`` and played into ``aufile`` too (a file, no sound card).
    ``dial``: a SIP URI baresip calls once it is up (``-e "/dial ..."``; baresip as the caller).
    """

    name = "baresip"

    def __init__(self, workdir: Path, *, port: int = 0, user: str = "peer",
                 dial: str | None = None, quit_after: float | None = 60.0) -> None:
        super().__init__(workdir)
        self.port = port or free_port()
        self.user = user
        self.dial = dial
        self.quit_after = quit_after
        self.conf_dir = self.workdir / "baresip"
        self.conf_dir.mkdir(exist_ok=True)
        self.wav = write_wav(self.workdir / "source.wav")
        self.recording = self.workdir / "received.wav"
        self.uri = f"sip:{user}@{HOST}:{self.port}"
        rtp = free_ports(1, both=False)[0] & ~1
        (self.conf_dir / "accounts").write_text(
            f"<{self.uri}>;regint=0;answermode=auto;audio_codecs=PCMU,PCMA\n")
        (self.conf_dir / "contacts").write_text("")
        (self.conf_dir / "config").write_text("\n".join([
            "poll_method epoll",
            f"sip_listen {HOST}:{self.port}",
            "sip_trans_def udp",
            f"audio_source aufile,{self.wav}",
            f"audio_player aufile,{self.recording}",
            "audio_alert aufile,/dev/null",
            "audio_srate 8000",
            "audio_channels 1",
            f"rtp_ports {rtp}-{rtp + 40}",
            "rtp_timeout 0",
            f"net_interface {HOST}",
            "module_path /usr/lib/baresip/modules",
            "module g711.so",
            "module aufile.so",
            "module_app account.so",
            "module_app menu.so",
            "",
        ]))

    def command(self) -> list[str]:
        cmd = [require("baresip"), "-4", "-f", str(self.conf_dir), "-s"]
        if self.quit_after is not None:
            cmd += ["-t", f"{self.quit_after:g}"]
        if self.dial:
            cmd += ["-e", f"/dial {self.dial}"]
        return cmd

    def start(self) -> "Baresip":
        super().start()
        wait_listening(self.port, "udp", timeout=15, process=self)
        return self

