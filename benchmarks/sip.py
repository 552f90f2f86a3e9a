"""SIP: call setups per second beside sipp, and concurrent paced T.38 calls on one core.

    python benchmarks/sip.py                        # both parts
    python benchmarks/sip.py --setups 1000 --only setup
    python benchmarks/sip.py --only t38 --steps 50,100,200,300

Part 1, call setups (INVITE -> 100 -> 200 -> ACK -> BYE -> 200, no media): sipp's built-in
UAC (`-sn uac`, -d 0) against sipp's built-in UAS, against xmfax's SIP stack answering
(drivers/sip.SipEndpoint around the sans-IO UserAgent, G.711 answered, no T.38 switch, no
fax: the SIP stack alone), and xmfax placing calls to sipp's UAS; all measured in the same
run, one after the other, on 127.0.0.1/UDP, at most --window calls at once. Reported:
calls completed per wall second, and the CPU seconds per 1000 calls of the measured side
(sipp's UAS or the xmfax process; from /proc, user + system).

Part 2, concurrent paced T.38 calls: one receiving process, `xmfax receive --via
sip://127.0.0.1:PORT` (the CLI, pinned with taskset to one core), and one sending process
(pinned to the other core) that starts N calls with xmfax.send(..., realtime=True) at
--ramp calls per second, each a one-page small document with its own content (the call
number drawn on it), T.38 offered directly (UAConfig offer "t38"). N goes up through
--steps until a call fails or a page arrives damaged. Every received TIFF is compared
pixel for pixel with the page its sender sent (matched by the sender's TSI). Reported: N,
how many overlapped at the peak, failures, damaged pages, the receiver's CPU use (share of
one core over the busy period, and over its busiest 2 s; the senders' busiest 2 s beside
it), call duration, and the count a fax engine must keep at 0: calls their sender reported
delivered whose page is not at the receiver, intact. Past 500 calls the receiver answers
503 (UAConfig.max_calls), which the table shows as 'unavailable'.
With --transport t38 the same load runs without SIP (N xmfax Receivers on N t38:// ports
in one process): the T.38 media path alone, for comparison.

The machine's other load shows in the figures: run it on an idle machine for numbers to
quote, and quote the machine (nproc, CPU model) with them.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CLK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1 (a SIP endpoint binds both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            port = u.getsockname()[1]
            with socket.socket() as t:
                try:
                    t.bind(("127.0.0.1", port))
                except OSError:
                    continue
            return port


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (its threads included)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def pinned(core: int | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", str(core)]


def cores() -> tuple[int | None, int | None]:
    """(receiver core, sender core): two different ones when there are two."""
    n = os.cpu_count() or 1
    return (1, 0) if n >= 2 else (None, None)


def stop(p: subprocess.Popen, sig: int = signal.SIGTERM, grace: float = 10.0) -> None:
    if p.poll() is None:
        p.send_signal(sig)
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def bench_page(number: int):
    """A small fine-resolution page (1728 x 400) with the call's number on it: a page that
    went to the wrong call, or lost a row, shows in the pixel compare."""
    import numpy as np
    from PIL import Image, ImageDraw

    from xmfax.page import Page, Resolution

    img = Image.new("1", (1728, 400), 1)
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 1707, 379), outline=0, width=3)
    for i in range(4):
        draw.text((60 + 37 * (number % 11), 60 + 70 * i), f"xmfax benchmark call {number} line {i + 1}", fill=0)
    draw.ellipse((1300, 100, 1300 + 20 + number % 200, 300), outline=0, width=4)
    return Page(~np.asarray(img, dtype=bool), Resolution.FINE)


def tsi(number: int) -> str:
    return f"+1 555 {number:04d}"


# --------------------------------------------------------------------------- part 1: setups
def sipp_uac(port_to: int, calls: int, window: int, timeout: float) -> tuple[float, int, str]:
    """sipp's built-in UAC: (wall seconds, exit code, stdout tail)."""
    cmd = ["sipp", "-sn", "uac", "-i", "127.0.0.1", "-p", str(free_port()), "-m", str(calls),
           "-r", "100000", "-l", str(window), "-d", "0", "-nostdin", "-timeout", f"{int(timeout)}s",
           "-timeout_error", "-mp", str(free_port()), f"127.0.0.1:{port_to}"]
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 20)
    return time.monotonic() - t0, r.returncode, (r.stdout + r.stderr)[-1500:]


def sipp_uas(port: int) -> subprocess.Popen:
    """sipp's built-in UAS on 127.0.0.1:``port``, answering every call until stopped."""
    return subprocess.Popen(["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                             "-mp", str(free_port())], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def setup_sipp_sipp(calls: int, window: int) -> dict:
    port = free_port()
    uas = sipp_uas(port)
    try:
        time.sleep(0.5)
        sipp_uac(port, window, window, timeout=30)          # warm-up, not measured
        c0 = cpu_seconds(uas.pid)
        wall, code, tail = sipp_uac(port, calls, window, timeout=120)
        cpu = cpu_seconds(uas.pid) - c0
    finally:
        stop(uas, signal.SIGKILL)
    return dict(pair="sipp -> sipp", measured="sipp UAS", calls=calls if code == 0 else 0, wall=wall,
                cpu=cpu, ok=code == 0, detail="" if code == 0 else tail)


def setup_sipp_xmfax(calls: int, window: int) -> dict:
    port = free_port()
    errors = tempfile.TemporaryFile("w+")       # a file, not a pipe: it can never fill and block
    server = subprocess.Popen([sys.executable, __file__, "--role", "uas", "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=errors, text=True)
    try:
        line = server.stdout.readline()
        if not line.startswith("ready"):
            errors.seek(0)
            raise RuntimeError(f"xmfax UAS did not start: {line}{errors.read()[-2000:]}")
        sipp_uac(port, window, window, timeout=30)          # warm-up (imports, caches), not measured
        c0 = cpu_seconds(server.pid)
        wall, code, tail = sipp_uac(port, calls, window, timeout=120)
        cpu = cpu_seconds(server.pid) - c0
    finally:
        stop(server, signal.SIGTERM)
        errors.close()
    return dict(pair="sipp -> xmfax", measured="xmfax UAS", calls=calls if code == 0 else 0, wall=wall,
                cpu=cpu, ok=code == 0, detail="" if code == 0 else tail)


def setup_xmfax_sipp(calls: int, window: int) -> dict:
    port = free_port()
    uas = sipp_uas(port)
    try:
        time.sleep(0.5)
        r = subprocess.run([sys.executable, __file__, "--role", "uac", "--port", str(port), "--calls",
                            str(calls), "--window", str(window)], capture_output=True, text=True, timeout=300)
    finally:
        stop(uas, signal.SIGKILL)
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return dict(pair="xmfax -> sipp", measured="xmfax UAC", calls=0, wall=0.0, cpu=0.0, ok=False,
                    detail=(r.stdout + r.stderr)[-1500:])
    return dict(pair="xmfax -> sipp", measured="xmfax UAC", calls=out["ok"], wall=out["wall"], cpu=out["cpu"],
                ok=out["ok"] == calls, detail=out.get("detail", ""))


async def role_uas(port: int) -> None:
    """xmfax's SIP stack answering every call (G.711, no T.38 switch) until SIGTERM."""
    from xmfax.drivers.sip import SipEndpoint
    from xmfax.sip.events import CallEnded

    ep = await SipEndpoint.open(("127.0.0.1", port), t38_switch_after=None)
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, done.set)

    async def follow(call_id: str) -> None:
        channel = ep.channel(call_id)
        try:
            async with asyncio.timeout(60):
                while not isinstance(await channel.queue.get(), CallEnded):
                    pass
        except TimeoutError:
            pass
        ep.release(call_id)

    def incoming(ev) -> None:
        # no media runs here: the SDP names a port that is never read (sipp -d 0 sends none)
        ep.command("answer", ev.call_id, audio_port=9, t38_port=None)
        loop.create_task(follow(ev.call_id))

    ep.on_incoming = incoming
    print("ready", flush=True)
    await done.wait()
    await ep.close(timeout=2)


class _Watched(list):
    """A call's SipMessage list that wakes a waiter when the driver appends to it."""

    def __init__(self, items=()):
        super().__init__(items)
        self.changed = asyncio.Event()

    def append(self, item) -> None:
        super().append(item)
        self.changed.set()

    def extend(self, items) -> None:
        super().extend(items)
        self.changed.set()


def bye_answered(messages: list) -> bool:
    """A 2xx received after our BYE, in a call's SipMessage list."""
    sent_bye = False
    for m in messages:
        if m.direction == "out" and m.summary.startswith("BYE "):
            sent_bye = True
        elif sent_bye and m.direction == "in" and m.summary.startswith("SIP/2.0 2"):
            return True
    return False


async def role_uac(port: int, calls: int, window: int) -> None:
    """xmfax's SIP stack placing ``calls`` calls to sipp's UAS (at most ``window`` at
    once): INVITE (G.711), ACK on 200, BYE at once. Prints a JSON line."""
    from xmfax.drivers.sip import SipEndpoint
    from xmfax.sip.events import Answered, CallEnded

    ep = await SipEndpoint.open(("127.0.0.1", free_port()), t38_switch_after=None)
    target = f"sip:+15550100@127.0.0.1:{port}"
    sem = asyncio.Semaphore(window)
    ok = 0
    reasons: dict[str, int] = {}

    async def one() -> None:
        nonlocal ok
        async with sem:
            call_id = ep.invite(target, audio_port=9, t38_port=None)
            channel = ep.channel(call_id)
            channel.messages = _Watched(channel.messages)
            try:
                async with asyncio.timeout(40):
                    while True:
                        ev = await channel.queue.get()
                        if isinstance(ev, Answered):
                            ep.command("hangup", call_id)
                        elif isinstance(ev, CallEnded):
                            if ev.reason != "hangup" or ev.by != "local":
                                reasons[ev.reason] = reasons.get(ev.reason, 0) + 1
                                break
                            # the UA reports the end when it sends BYE: the setup is whole
                            # when the BYE's 200 is back
                            while not bye_answered(channel.messages):
                                channel.messages.changed.clear()
                                await channel.messages.changed.wait()
                            ok += 1
                            break
            except TimeoutError:
                reasons["bench_timeout"] = reasons.get("bench_timeout", 0) + 1
            ep.release(call_id)

    await asyncio.gather(*(one() for _ in range(window)))     # warm-up, not measured
    ok = 0
    reasons.clear()
    c0 = time.process_time()
    t0 = time.monotonic()
    await asyncio.gather(*(one() for _ in range(calls)))
    wall = time.monotonic() - t0
    cpu = time.process_time() - c0
    await ep.close(timeout=2)
    print(json.dumps(dict(ok=ok, wall=wall, cpu=cpu, detail=str(reasons) if reasons else "")), flush=True)


# --------------------------------------------------------------------------- part 2: T.38 load
async def role_t38_receivers(count: int, output: str) -> None:
    """--transport t38: ``count`` xmfax Receivers (t38://127.0.0.1:0 each) in this process;
    prints their URLs as one JSON line, then runs until SIGTERM."""
    from xmfax import api

    receivers = [api.receive(via="t38://127.0.0.1:0", output_dir=os.path.join(output, f"r{i}"),
                             realtime=True, local_id="+1 555 9999", once=True) for i in range(count)]
    for i in range(count):
        os.makedirs(os.path.join(output, f"r{i}"), exist_ok=True)
    tasks = [asyncio.create_task(r.run()) for r in receivers]
    urls = []
    for r in receivers:
        host, port = await asyncio.wait_for(r.ready(), 30)
        urls.append(f"t38://{host}:{port}")
    print(json.dumps(urls), flush=True)
    print("t38 receivers ready", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, done.set)
    waiter = asyncio.create_task(done.wait())
    await asyncio.wait([waiter, asyncio.gather(*tasks)], return_when=asyncio.FIRST_COMPLETED)
    for r in receivers:
        r.stop()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def role_senders(urls: list[str], ramp: float, sip_offer: str | None) -> None:
    """One paced call per URL (the same URL repeated for SIP), started ``ramp`` per second;
    prints one JSON line per call, then a summary line."""
    import xmfax

    pages = [bench_page(i) for i in range(len(urls))]
    results: list[dict] = []

    async def one(i: int, url: str) -> None:
        await asyncio.sleep(i / ramp)
        t0 = time.monotonic()
        kwargs = dict(sip={"offer": sip_offer}) if sip_offer else {}
        try:
            r = await xmfax.send([pages[i]], via=url, local_id=tsi(i), realtime=True, max_duration=300,
                                 **kwargs)
            results.append(dict(i=i, ok=r.ok, reason=r.reason, text=r.reason_text[-200:], start=t0,
                                end=time.monotonic(), pages=len(r.pages)))
        except Exception as exc:        # a benchmark reports, it does not stop at the first error
            results.append(dict(i=i, ok=False, reason=f"exception {exc!r}", start=t0, end=time.monotonic()))

    await asyncio.gather(*(one(i, u) for i, u in enumerate(urls)))
    print(json.dumps(results), flush=True)


def check_received(folder: Path, n: int) -> tuple[set[int], int, int, list[str]]:
    """Every fax record in ``folder``: (the calls whose page arrived pixel for pixel as its
    sender sent it, successes that do not match -- a damaged page reported delivered --,
    failed calls)."""
    import numpy as np

    from xmfax.document import load

    good: set[int] = set()
    damaged = failed = 0
    notes: list[str] = []
    seen: set[int] = set()
    for record in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(record.read_text())
        except ValueError:
            continue
        if data.get("status") != "success":
            failed += 1
            continue
        tif = record.with_suffix(".tif")
        remote = (data.get("remote_id") or "").strip()
        try:
            number = int(remote.replace(" ", "")[-4:])
        except ValueError:
            number = -1
        if not tif.exists() or not 0 <= number < n or number in seen:
            damaged += 1
            notes.append(f"{record.name}: {'no tif' if not tif.exists() else f'sender {remote!r}'}")
            continue
        seen.add(number)
        got = load(str(tif))
        want = bench_page(number)
        if len(got) == 1 and got[0].image.shape == want.image.shape and \
                int(np.count_nonzero(got[0].image != want.image)) == 0:
            good.add(number)
        else:
            damaged += 1
            notes.append(f"call {number}: page differs")
    return good, damaged, failed, notes


def busiest(samples: list[tuple[float, float]], default: float, span: int = 4) -> float:
    """The highest CPU share over ``span`` consecutive sampling intervals."""
    return max(((c2 - c1) / (t2 - t1) for (t1, c1), (t2, c2) in zip(samples, samples[span:]) if t2 > t1),
               default=default)


def t38_load(n: int, transport: str, ramp: float, workdir: Path) -> dict:
    """One step of part 2: N concurrent paced calls into one pinned receiving process."""
    rx_core, tx_core = cores()
    out = workdir / f"{transport}-{n}"
    out.mkdir(parents=True)
    env = dict(os.environ, PYTHONPATH=f"{ROOT}:{os.environ.get('PYTHONPATH', '')}")
    rx_log = workdir / f"rx-{transport}-{n}.log"
    if transport == "sip":
        port = free_port()
        argv = [sys.executable, "-m", "xmfax", "receive", "--via", f"sip://127.0.0.1:{port}", "-o", str(out),
                "--quiet"]
        ready = "receive: ready on"
    else:
        argv = [sys.executable, __file__, "--role", "t38rx", "--count", str(n), "--output", str(out)]
        ready = "t38 receivers ready"
    with open(rx_log, "w") as log:      # a file, not a pipe: a chatty receiver never blocks
        rx = subprocess.Popen(pinned(rx_core) + argv, stdout=log, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 60
    while ready not in rx_log.read_text() and rx.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if ready not in rx_log.read_text():
        stop(rx)
        return dict(n=n, ok=0, failed=n, damaged=0, note=f"receiver did not start: {rx_log.read_text()[-500:]}")
    if transport == "sip":
        urls = [f"sip:+15550100@127.0.0.1:{port}"] * n
    else:
        urls = json.loads(next(line for line in rx_log.read_text().splitlines() if line.startswith("[")))
    try:
        c0, t0 = cpu_seconds(rx.pid), time.monotonic()
        urls_file = workdir / f"urls-{transport}-{n}.json"
        urls_file.write_text(json.dumps(urls))
        samples = [(t0, c0)]            # the receiver's CPU every 0.5 s: its busiest 2 s
        tx_cpu = [(t0, 0.0)]            # the same for the senders' process
        with tempfile.TemporaryFile("w+") as out_f, tempfile.TemporaryFile("w+") as err_f:
            tx = subprocess.Popen(pinned(tx_core) + [sys.executable, __file__, "--role", "senders", "--urls",
                                                     str(urls_file), "--ramp", str(ramp)]
                                  + (["--sip-offer", "t38"] if transport == "sip" else []),
                                  stdout=out_f, stderr=err_f, text=True, env=env)
            try:
                while tx.poll() is None and time.monotonic() - t0 < 600:
                    time.sleep(0.5)
                    samples.append((time.monotonic(), cpu_seconds(rx.pid)))
                    try:
                        tx_cpu.append((time.monotonic(), cpu_seconds(tx.pid)))
                    except OSError:
                        pass
            finally:
                stop(tx, signal.SIGKILL, grace=0)
            out_f.seek(0)
            err_f.seek(0)
            tx_out, tx_err = out_f.read(), err_f.read()
        busy = time.monotonic() - t0
        cpu = cpu_seconds(rx.pid) - c0
        peak_cpu = busiest(samples, default=cpu / busy if busy else 0.0)
        tx_peak = busiest(tx_cpu[1:], default=0.0)
    finally:
        stop(rx)
    try:
        calls = json.loads(tx_out.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return dict(n=n, ok=0, failed=n, damaged=0, note=f"senders crashed: {tx_err[-800:]}")
    ok = [c for c in calls if c["ok"]]
    failed = [c for c in calls if not c["ok"]]
    intact, damaged, rx_failed, notes = check_received(out, n)
    good = len(intact)
    # the lie a fax engine must never tell: the sender reports success, the page is not there
    unconfirmed = sorted(c["i"] for c in ok if c["i"] not in intact)
    # the most calls in progress at one moment (sender's view)
    edges = sorted([(c["start"], 1) for c in calls] + [(c["end"], -1) for c in calls])
    peak = cur = 0
    for _, d in edges:
        cur += d
        peak = max(peak, cur)
    durations = sorted(c["end"] - c["start"] for c in ok)
    reasons: dict[str, int] = {}
    examples: dict[str, str] = {}
    for c in failed:
        reasons[c["reason"]] = reasons.get(c["reason"], 0) + 1
        examples.setdefault(c["reason"], c.get("text", ""))
    return dict(n=n, ok=len(ok), failed=len(failed), received_ok=good, damaged=damaged, peak=peak,
                cpu=cpu, busy=busy, load=cpu / busy if busy else 0.0, peak_cpu=peak_cpu, tx_peak=tx_peak,
                rx_failed=rx_failed, unconfirmed=len(unconfirmed), examples=examples,
                median=durations[len(durations) // 2] if durations else 0.0,
                worst=durations[-1] if durations else 0.0,
                note="; ".join(x for x in [f"senders: {reasons}" if reasons else "",
                                           f"receiver records failed: {rx_failed}" if rx_failed else "",
                                           f"SENT OK BUT NOT RECEIVED: {unconfirmed[:10]}" if unconfirmed else "",
                                           *notes[:3]] if x))


# --------------------------------------------------------------------------- main
def machine() -> str:
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model or 'unknown CPU'}, load average {os.getloadavg()[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["setup", "t38"], help="run one part")
    ap.add_argument("--setups", type=int, default=500, help="calls per setup measurement")
    ap.add_argument("--window", type=int, default=20, help="setup calls in progress at once")
    ap.add_argument("--steps", default="50,100,200,300", help="concurrent paced calls to try, in order")
    ap.add_argument("--ramp", type=float, default=50.0, help="paced calls started per second")
    ap.add_argument("--transport", choices=["sip", "t38"], default="sip", help="part 2 over SIP or bare T.38")
    ap.add_argument("--keep", action="store_true", help="keep the received faxes (prints the folder)")
    # internal: the child processes
    ap.add_argument("--role", choices=["uas", "uac", "t38rx", "senders"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--calls", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--output", help=argparse.SUPPRESS)
    ap.add_argument("--urls", help=argparse.SUPPRESS)
    ap.add_argument("--sip-offer", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))

    if args.role == "uas":
        return asyncio.run(role_uas(args.port))
    if args.role == "uac":
        return asyncio.run(role_uac(args.port, args.calls, args.window))
    if args.role == "t38rx":
        return asyncio.run(role_t38_receivers(args.count, args.output))
    if args.role == "senders":
        return asyncio.run(role_senders(json.loads(Path(args.urls).read_text()), args.ramp, args.sip_offer))

    print(f"machine: {machine()}")
    if args.only in (None, "setup"):
        if shutil.which("sipp") is None:
            print("sipp not installed (Debian sip-tester): call setups not measured")
        else:
            rows = []
            for fn in (setup_sipp_sipp, setup_sipp_xmfax, setup_xmfax_sipp):
                try:
                    rows.append(fn(args.setups, args.window))
                except Exception as exc:
                    rows.append(dict(pair=fn.__name__, measured="-", calls=0, wall=0.0, cpu=0.0, ok=False,
                                     detail=repr(exc)))
            print(f"\ncall setups (INVITE/100/200/ACK/BYE/200, UDP, {args.setups} calls, "
                  f"{args.window} at once, no media)")
            print(f"{'pair':<16}{'measured side':<15}{'calls':>7}{'wall s':>9}{'calls/s':>9}"
                  f"{'CPU s/1000':>12}  ok")
            for r in rows:
                rate = r["calls"] / r["wall"] if r["wall"] else 0.0
                per = 1000 * r["cpu"] / r["calls"] if r["calls"] else 0.0
                print(f"{r['pair']:<16}{r['measured']:<15}{r['calls']:>7}{r['wall']:>9.2f}{rate:>9.0f}"
                      f"{per:>12.2f}  {r['ok']}")
                if r["detail"]:
                    print("    " + r["detail"].strip().replace("\n", "\n    ")[-600:])
    if args.only in (None, "t38"):
        steps = [int(s) for s in args.steps.split(",") if s.strip()]
        work = Path(tempfile.mkdtemp(prefix="xmfax-bench-sip-"))
        rows = []
        try:
            for n in steps:
                r = t38_load(n, args.transport, args.ramp, work)
                rows.append(r)
                print(f"  N={n}: {r['ok']} ok, {r['failed']} failed, {r.get('damaged', 0)} damaged", flush=True)
                if r["failed"] or r.get("damaged") or r.get("unconfirmed") or r.get("received_ok", 0) != n:
                    break
        finally:
            if args.keep:
                print(f"received faxes kept in {work}")
            else:
                shutil.rmtree(work, ignore_errors=True)
        rx_core, tx_core = cores()
        print(f"\nconcurrent paced T.38 calls into one receiving process "
              f"({'xmfax receive --via sip://' if args.transport == 'sip' else 'N Receivers on t38://'}"
              f", pinned to core {rx_core}; senders on core {tx_core}), 1 small page each, ramp {args.ramp:g}/s")
        print(f"{'N':>5}{'peak':>6}{'sent ok':>9}{'failed':>8}{'rx intact':>11}{'damaged':>9}{'rx CPU':>8}"
              f"{'rx 2s max':>10}{'tx 2s max':>10}{'median s':>10}{'worst s':>9}  note")
        for r in rows:
            print(f"{r['n']:>5}{r.get('peak', 0):>6}{r['ok']:>9}{r['failed']:>8}{r.get('received_ok', 0):>11}"
                  f"{r.get('damaged', 0):>9}{100 * r.get('load', 0):>7.0f}%{100 * r.get('peak_cpu', 0):>9.0f}%"
                  f"{100 * r.get('tx_peak', 0):>9.0f}%{r.get('median', 0):>10.1f}"
                  f"{r.get('worst', 0):>9.1f}  {r.get('note', '')}")
        best = max((r["n"] for r in rows if not r["failed"] and not r.get("damaged")
                    and r.get("received_ok") == r["n"]), default=0)
        for r in rows:
            for reason, text in (r.get("examples") or {}).items():
                print(f"  N={r['n']} {reason}: e.g. {text}")
        lies = sum(r.get("unconfirmed", 0) + r.get("damaged", 0) for r in rows)
        print(f"calls reported sent whose page did not arrive intact, over all steps: {lies}")
        print(f"largest N with every call ok and every page intact: {best} (target >= 200)")


if __name__ == "__main__":
    main()
