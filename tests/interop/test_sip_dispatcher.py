"""Scale-out: fax nodes behind Kamailio's dispatcher (examples/kamailio/dispatcher.cfg).

Two nodes behind one Kamailio on 127.0.0.1: calls are spread over both; a node killed with
SIGKILL is found dead by the OPTIONS probes within ~1.9 s and gets no new calls; a call that
reaches the dead node before that fails over to the other (tm timeout -> ds_next_dst). The
nodes are sipp UAS processes standing in for xmfax (the config alone), then real
`xmfax receive --via sip://...` processes with 20 faxes sent through Kamailio.
Steps and figures: docs/scale-out.md.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CFG = ROOT / "examples" / "kamailio" / "dispatcher.cfg"
sys.path.insert(0, str(ROOT / "tests" / "sip"))
import peers  # noqa: E402
from peers import free_ports, free_udp_port  # noqa: E402

pytestmark = pytest.mark.interop

needs_kamailio = pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed")
needs_sipp = pytest.mark.skipif(shutil.which("sipp") is None, reason="sipp (sip-tester) not installed")


# --------------------------------------------------------------------------- processes
def wait_for_text(proc, pattern: str, timeout: float, start: int = 0) -> re.Match:
    """The first match of ``pattern`` in proc.text() from offset ``start``, waiting for it."""
    deadline = time.monotonic() + timeout
    rx = re.compile(pattern)
    while True:
        m = rx.search(proc.text(), start)
        if m:
            return m
        if proc.poll() is not None:
            raise AssertionError(f"{proc.name} exited ({proc.poll()}) before /{pattern}/:\n{proc.text()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{proc.name}: no /{pattern}/ within {timeout} s:\n{proc.text()[-3000:]}")
        time.sleep(0.05)


class Proc:
    """A child process whose output goes to a file; always killed (its whole group)."""

    def __init__(self, name: str, argv: list[str], log: Path, **kw):
        self.name, self.log = name, log
        self._out = open(log, "wb")
        self.p = subprocess.Popen(argv, stdout=self._out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True, **kw)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def poll(self) -> int | None:
        return self.p.poll()

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        return wait_for_text(self, pattern, timeout, start)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.p.poll() is None:
            try:
                os.killpg(self.p.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=5)
        self._out.close()


class Dispatcher(peers.Kamailio):
    """Kamailio running examples/kamailio/dispatcher.cfg (tests/sip/peers.py starts, checks
    with `kamailio -c`, and always stops it) with ``nodes`` (127.0.0.1 ports) in its list."""

    def __init__(self, tmp: Path, nodes: list[int], *, maxload: int | None = None) -> None:
        port = peers.free_port()
        dslist = tmp / "dispatcher.list"
        attrs = f" duid=n{{p}};maxload={maxload}" if maxload else ""
        dslist.write_text("".join(f"1 sip:127.0.0.1:{p} 8 0{attrs.format(p=p)}\n" for p in nodes))
        self.call_load = maxload is not None
        super().__init__(tmp / "kamailio", CFG, transports=("udp",), defines={
            "SIP_PORT": port, "LISTEN": f"udp:127.0.0.1:{port}", "DS_LIST": f'"{dslist}"'})

    def _base(self) -> list[str]:
        return super()._base() + (["-A", "WITH_CALL_LOAD"] if self.call_load else [])

    def text(self) -> str:
        """Kamailio's log so far (-E: stderr)."""
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait_for(self, pattern: str, timeout: float, start: int = 0) -> re.Match:
        return wait_for_text(self, pattern, timeout, start)

    def kill(self, sig: int = signal.SIGTERM) -> None:
        self.stop(quiet=True)


def stop_all(procs: list) -> None:
    """Stop what a test started, the last first: xmfax nodes by SIGTERM (they finish their
    call and exit), sipp nodes by SIGKILL (a node dying), Kamailio by its own stop."""
    for p in reversed(procs):
        p.kill(signal.SIGTERM if p.name.startswith("xmfax") else signal.SIGKILL)


def start_kamailio(tmp: Path, nodes: list[int], **kw) -> tuple[Dispatcher, int]:
    kam = Dispatcher(tmp, nodes, **kw)
    kam.start()
    return kam, kam.port


# --------------------------------------------------------------------------- sipp stand-ins
SDP_T38 = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=image [media_port] udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxDatagram:400
a=T38FaxUdpEC:t38UDPRedundancy
"""

# A fax node stand-in: answers the dispatcher's OPTIONS probes (each one a new Call-ID, so a
# new "call" of this scenario that takes the optional first branch) and T.38 calls.
NODE_XML = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="fax node stand-in">
  <recv request="OPTIONS" optional="true" next="probe"/>
  <recv request="INVITE"/>
  <send><![CDATA[
SIP/2.0 100 Trying
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]node[call_number]
[last_Call-ID:]
[last_CSeq:]
[last_Record-Route:]
Contact: <sip:node@[local_ip]:[local_port]>
Content-Type: application/sdp
Content-Length: [len]

{SDP_T38}]]></send>
  <recv request="ACK"/>
  <recv request="BYE"/>
  <send next="done"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

]]></send>
  <label id="probe"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:];tag=[pid]probe[call_number]
[last_Call-ID:]
[last_CSeq:]
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
Content-Length: 0

]]></send>
  <label id="done"/>
</scenario>
"""

# A caller: INVITE (T.38) to the dispatcher, ACK and BYE along the recorded route.
CALLER_XML = f"""<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="caller through the dispatcher">
  <send retrans="500"><![CDATA[
INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]caller[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:caller@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

{SDP_T38}]]></send>
  <recv response="100" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]caller[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

]]></send>
  <pause milliseconds="{{hold_ms}}"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[routes]
From: <sip:+15550199@[local_ip]:[local_port]>;tag=[pid]caller[call_number]
[last_To:]
Call-ID: [call_id]
CSeq: 2 BYE
Max-Forwards: 70
Content-Length: 0

]]></send>
  <recv response="200"/>
</scenario>
"""


def sipp_node(tmp: Path, name: str, port: int) -> Proc:
    scen = tmp / "node.xml"
    scen.write_text(NODE_XML)
    msgs = tmp / f"{name}-messages.log"
    return Proc(name, ["sipp", "-sf", str(scen), "-i", "127.0.0.1", "-p", str(port), "-nostdin",
                       "-trace_msg", "-message_file", str(msgs), "-mp", str(free_udp_port())],
                tmp / f"{name}.log")


def invites_received(tmp: Path, name: str) -> set[str]:
    """Call-IDs of the INVITEs a sipp node received (from its message trace)."""
    path = tmp / f"{name}-messages.log"
    if not path.exists():
        return set()
    text = path.read_text(errors="replace")
    calls = set()
    for block in re.split(r"-{10,}.*\n", text):
        if re.search(r"^INVITE sip:", block, re.M):
            m = re.search(r"^Call-ID:\s*(\S+)", block, re.M | re.I)
            if m:
                calls.add(m.group(1))
    return calls


def caller_argv(tmp: Path, kam_port: int, calls: int, *, tag: str, rate: int = 20, hold_ms: int = 100,
                timeout: float = 60) -> list[str]:
    scen = tmp / f"caller-{hold_ms}.xml"
    scen.write_text(CALLER_XML.replace("{hold_ms}", str(hold_ms)))
    return ["sipp", "-sf", str(scen), "-i", "127.0.0.1", "-p", str(free_udp_port()), "-m", str(calls),
            "-r", str(rate), "-l", "10", "-s", "+15550100", "-nostdin", "-timeout", f"{int(timeout)}s",
            "-timeout_error", "-trace_err", "-error_file", str(tmp / f"caller-{tag}-errors.log"),
            "-mp", str(free_udp_port()), f"127.0.0.1:{kam_port}"]


def sipp_calls(tmp: Path, kam_port: int, calls: int, *, tag: str, rate: int = 20, hold_ms: int = 100,
               timeout: float = 60) -> subprocess.CompletedProcess:
    """`calls` T.38 calls through Kamailio, at most 10 at a time, each held ``hold_ms``;
    sipp's exit status 0 means every one was answered and hung up."""
    return subprocess.run(caller_argv(tmp, kam_port, calls, tag=tag, rate=rate, hold_ms=hold_ms,
                                      timeout=timeout), capture_output=True, text=True, timeout=timeout + 15)


@needs_kamailio
@needs_sipp
def test_dispatcher_config_checks():
    result = subprocess.run(["kamailio", "-c", "-f", str(CFG)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "config file ok" in result.stdout + result.stderr


@needs_kamailio
@needs_sipp
def test_sipp_nodes_spread_then_probe_marks_dead_node(tmp_path):
    """The config alone, sipp standing in for xmfax: 20 calls spread evenly over two nodes;
    node b killed: the OPTIONS probes mark it down within 1.9 s (no call needed), and every
    later call goes to a and succeeds; b started again: a probe marks it up, and it takes
    its share of the calls again."""
    pa, pb = free_ports(2)
    procs: list[Proc] = []
    try:
        procs += [sipp_node(tmp_path, "a", pa), sipp_node(tmp_path, "b", pb)]
        b = procs[1]
        kam, kport = start_kamailio(tmp_path, [pa, pb])
        procs.append(kam)

        first = sipp_calls(tmp_path, kport, 20, tag="first")
        assert first.returncode == 0, (first.stdout[-2000:], kam.text()[-3000:])
        got_a, got_b = invites_received(tmp_path, "a"), invites_received(tmp_path, "b")
        assert len(got_a | got_b) == 20 and not got_a & got_b
        assert len(got_a) == len(got_b) == 10            # round-robin over two live nodes

        mark = len(kam.text())
        b.kill()
        killed = time.monotonic()
        kam.wait_for(rf"fax node down: sip:127\.0\.0\.1:{pb}", timeout=5, start=mark)
        detected = time.monotonic() - killed
        # DS_PING_INTERVAL 1 s + PING_TIMEOUT 0.9 s, plus slack for a loaded machine
        assert detected < 4.0, detected
        assert "silent for" not in kam.text()[mark:]   # found by a probe, not by a call

        after = sipp_calls(tmp_path, kport, 10, tag="after")
        assert after.returncode == 0, (after.stdout[-2000:], kam.text()[mark:][-3000:])
        assert len(invites_received(tmp_path, "a") - got_a) == 10
        assert invites_received(tmp_path, "b") == got_b      # nothing more reached b
        assert "fails over" not in kam.text()[mark:]

        # b back on its port: the next probe it answers makes it active again
        mark = len(kam.text())
        procs.append(sipp_node(tmp_path, "b2", pb))
        kam.wait_for(rf"fax node up: sip:127\.0\.0\.1:{pb}", timeout=5, start=mark)
        before = invites_received(tmp_path, "a")
        again = sipp_calls(tmp_path, kport, 10, tag="again")
        assert again.returncode == 0, (again.stdout[-2000:], kam.text()[mark:][-3000:])
        assert len(invites_received(tmp_path, "b2")) == 5
        assert len(invites_received(tmp_path, "a") - before) == 5
    finally:
        stop_all(procs)


@needs_kamailio
@needs_sipp
def test_sipp_call_to_dead_node_fails_over(tmp_path):
    """Calls placed right after node b died, before any probe noticed: the ones Kamailio
    sends to b get no answer within INVITE_TIMEOUT, b is marked down, and they are relayed
    to a: every call succeeds, a took them all."""
    pa, pb = free_ports(2)
    procs: list[Proc] = []
    try:
        procs += [sipp_node(tmp_path, "a", pa), sipp_node(tmp_path, "b", pb)]
        kam, kport = start_kamailio(tmp_path, [pa, pb])
        procs.append(kam)
        warm = sipp_calls(tmp_path, kport, 2, tag="warm")
        assert warm.returncode == 0, warm.stdout[-2000:]
        got_b = invites_received(tmp_path, "b")
        assert len(got_b) == 1
        mark = len(kam.text())
        procs[1].kill()
        during = sipp_calls(tmp_path, kport, 4, tag="during", rate=10)
        assert during.returncode == 0, (during.stdout[-2000:], kam.text()[mark:][-3000:])
        log = kam.text()[mark:]
        assert re.search(rf"node sip:127\.0\.0\.1:{pb} silent", log), log[-3000:]
        assert re.search(rf"fails over to node sip:127\.0\.0\.1:{pa}", log), log[-3000:]
        assert len(invites_received(tmp_path, "a")) == 1 + 4
        assert invites_received(tmp_path, "b") == got_b
    finally:
        stop_all(procs)


# --------------------------------------------------------------------------- real xmfax nodes
def fax_page(number: int):
    """A small fine page unique to call ``number`` (a fax that went to the wrong record, or
    lost a row, shows in the pixel compare)."""
    import numpy as np

    from xmfax.page import Page, Resolution

    rng = np.random.default_rng(1000 + number)
    blocks = rng.random((16, 216)) < 0.3          # 8x8-pixel blocks, 1728 x 128
    image = np.kron(blocks, np.ones((8, 8), dtype=bool)).astype(bool)
    image[:4, :] = True                            # a rule on top, the call number as a bar
    image[8:12, : 16 * (number + 1)] = True
    return Page(image, Resolution.FINE)


def tsi(number: int) -> str:
    return f"+1 555 {number:04d}"


def xmfax_node(tmp: Path, name: str, port: int) -> tuple[Proc, Path]:
    inbox = tmp / f"inbox-{name}"
    inbox.mkdir()
    proc = Proc(f"xmfax-{name}", [shutil.which("xmfax") or "xmfax", "receive", "--via", f"sip://127.0.0.1:{port}",
                                  "-o", str(inbox), "--fast", "--local-id", f"+1 555 90{ord(name) - 96}"],
                tmp / f"xmfax-{name}.log", cwd=str(tmp))
    proc.wait_for(r"receive: ready on", timeout=20)
    return proc, inbox


def received(inbox: Path) -> dict[int, Path]:
    """Call number (from the sender's TSI in the record) -> the TIFF, for each fax in a folder."""
    import json

    out: dict[int, Path] = {}
    for record in sorted(inbox.glob("*.json")):
        data = json.loads(record.read_text())
        if data.get("status") != "success":
            continue
        number = int(data["remote_id"].replace(" ", "")[-4:])
        assert number not in out, f"call {number} received twice"
        assert data["dnis"] == "+15550100", data["dnis"]          # the R-URI passed through
        assert (data.get("sip") or {}).get("call_id")
        out[number] = record.with_suffix(".tif")
    return out


def wait_received(inboxes: list[Path], count: int, timeout: float = 20.0) -> list[dict[int, Path]]:
    """received() of each folder once they hold ``count`` faxes in all: a node writes its
    record when its side of the call has ended, a moment after the sender's call returns."""
    deadline = time.monotonic() + timeout
    while True:
        got = [received(i) for i in inboxes]
        if sum(map(len, got)) >= count or time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def assert_intact(faxes: dict[int, Path]) -> None:
    import numpy as np

    from xmfax.document import load

    for number, tif in faxes.items():
        pages = load(str(tif))
        want = fax_page(number)
        assert len(pages) == 1, (number, len(pages))
        assert pages[0].image.shape == want.image.shape, number
        assert int(np.count_nonzero(pages[0].image != want.image)) == 0, f"call {number}: pixels differ"


async def send_calls(kam_port: int, numbers: list[int], stagger: float = 0.05) -> list:
    """One fax per number through Kamailio, all at once (``stagger`` s apart); even numbers
    offer T.38 in the INVITE, odd ones G.711 first (the node re-INVITEs to T.38 through
    the recorded route)."""
    import asyncio

    import xmfax

    async def one(i: int, number: int):
        await asyncio.sleep(i * stagger)
        return await xmfax.send([fax_page(number)], via=f"sip:+15550100@127.0.0.1:{kam_port}",
                                local_id=tsi(number), realtime=False, max_duration=60,
                                sip={"offer": "t38"} if number % 2 == 0 else None)

    return await asyncio.gather(*(one(i, n) for i, n in enumerate(numbers)))


async def cli_calls(tmp: Path, kam_port: int, numbers: list[int]) -> list[tuple[int, int, str]]:
    """`xmfax send --fast` through Kamailio, one process per number, all at once:
    (number, exit status, output) each."""
    import asyncio

    from xmfax.document import save

    async def one(number: int):
        doc = tmp / f"page{number}.tif"
        save([fax_page(number)], str(doc))
        proc = await asyncio.create_subprocess_exec(
            shutil.which("xmfax") or "xmfax", "send", "--via", f"sip:+15550100@127.0.0.1:{kam_port}", "--fast",
            "--local-id", tsi(number), "--sip-offer", "t38", str(doc),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), 60)
        except asyncio.TimeoutError:
            proc.kill()
            out, _ = await proc.communicate()
        return number, proc.returncode, out.decode(errors="replace")[-1500:]

    return await asyncio.gather(*(one(n) for n in numbers))


needs_xmfax_sip = pytest.mark.skipif(shutil.which("xmfax") is None, reason="the xmfax CLI is not installed")


@needs_kamailio
@needs_xmfax_sip
def test_xmfax_nodes_behind_dispatcher(tmp_path):
    """Two `xmfax receive --via sip://...` nodes behind the dispatcher: 20 faxes through
    Kamailio spread over both, every page pixel-identical; node b killed (SIGKILL): calls
    placed at once fail over to a, the probes mark b down, later calls all go to a; every
    call placed after the kill succeeds."""
    import asyncio

    pa, pb = free_ports(2)
    procs: list[Proc] = []
    try:
        a, inbox_a = xmfax_node(tmp_path, "a", pa)
        procs.append(a)
        b, inbox_b = xmfax_node(tmp_path, "b", pb)
        procs.append(b)
        kam, kport = start_kamailio(tmp_path, [pa, pb])
        procs.append(kam)

        results = asyncio.run(send_calls(kport, list(range(20))))
        bad = [(i, r.reason, r.reason_text) for i, r in enumerate(results) if not r.ok]
        assert bad == [], (bad, kam.text()[-3000:])
        got_a, got_b = wait_received([inbox_a, inbox_b], 20)
        assert len(got_a) + len(got_b) == 20 and not set(got_a) & set(got_b)
        assert got_a and got_b, (len(got_a), len(got_b))
        assert_intact(got_a | got_b)
        assert all(r.sip and r.sip.get("final_status") == 200 for r in results), [r.sip for r in results]
        # odd calls began on G.711: their switch to T.38 was a re-INVITE along the route set
        switches = [r.sip["t38_switch"]["by"] for r in results]
        assert {switches[i] for i in range(0, 20, 2)} == {"offer"}, switches
        assert {switches[i] for i in range(1, 20, 2)} <= {"local", "remote"}, switches

        mark = len(kam.text())
        b.kill()
        killed = time.monotonic()
        # before the dispatcher knows: the calls it gives b fail over to a
        during = asyncio.run(send_calls(kport, list(range(20, 24)), stagger=0.2))
        assert [r.reason for r in during if not r.ok] == [], kam.text()[mark:][-3000:]
        kam.wait_for(rf"fax node down: sip:127\.0\.0\.1:{pb}", timeout=10, start=mark)
        assert re.search(rf"fails over to node sip:127\.0\.0\.1:{pa}", kam.text()[mark:])
        assert time.monotonic() - killed < 30

        mark = len(kam.text())
        after = asyncio.run(send_calls(kport, list(range(24, 34))))
        assert [r.reason for r in after if not r.ok] == [], kam.text()[mark:][-3000:]
        now_a, now_b = wait_received([inbox_a, inbox_b], 34)
        assert set(now_b) == set(got_b)                           # nothing more reached b
        assert set(now_a) - set(got_a) == set(range(20, 34))      # a took every later call
        assert_intact(now_a)
        assert "fails over" not in kam.text()[mark:]             # b was known dead: no detour
    finally:
        stop_all(procs)


async def paced_pair(kam_port: int, numbers: list[int], during, after: float):
    """Real-time faxes (one per number) through Kamailio; ``during()`` runs ``after`` s in,
    while they are in progress. Returns their results."""
    import asyncio

    import xmfax

    async def one(number: int):
        return await xmfax.send([fax_page(number)], via=f"sip:+15550100@127.0.0.1:{kam_port}",
                                local_id=tsi(number), realtime=True, max_duration=90, sip={"offer": "t38"})

    tasks = [asyncio.create_task(one(n)) for n in numbers]
    await asyncio.sleep(after)
    assert not any(t.done() for t in tasks), "the paced calls ended before the node was touched"
    await during()
    return await asyncio.gather(*tasks)


@needs_kamailio
@needs_xmfax_sip
def test_xmfax_node_killed_mid_call_is_a_failure_never_a_success(tmp_path):
    """Two paced faxes, one on each node; node b SIGKILLed in the middle of its call: the
    fax on b ends as a failure for its sender (the media went straight to b, nothing can save
    it), the one on a succeeds, and nothing claims a fax b never finished."""
    import asyncio

    pa, pb = free_ports(2)
    procs: list[Proc] = []
    try:
        a, inbox_a = xmfax_node(tmp_path, "a", pa)
        b, inbox_b = xmfax_node(tmp_path, "b", pb)
        procs += [a, b]
        kam, kport = start_kamailio(tmp_path, [pa, pb])
        procs.append(kam)

        async def kill_b():
            b.kill()

        results = asyncio.run(paced_pair(kport, [40, 41], kill_b, after=4.0))
        log = kam.text()
        went = {n: re.search(rf"call {re.escape(r.sip['call_id'])} to node sip:127\.0\.0\.1:(\d+)", log).group(1)
                for n, r in zip([40, 41], results)}
        on_b = [r for n, r in zip([40, 41], results) if went[n] == str(pb)]
        on_a = [r for n, r in zip([40, 41], results) if went[n] == str(pa)]
        assert len(on_a) == len(on_b) == 1, went
        assert on_a[0].ok, on_a[0].summary()
        assert not on_b[0].ok and on_b[0].status == "failure", on_b[0].summary()
        got_a, = wait_received([inbox_a], 1)
        assert list(got_a) == [40 if went[40] == str(pa) else 41]
        assert received(inbox_b) == {}                 # no record of success on b
    finally:
        stop_all(procs)


@needs_kamailio
@needs_xmfax_sip
def test_xmfax_node_stopping_finishes_its_call_and_sends_new_ones_on(tmp_path):
    """Node b told to stop (SIGTERM) during a paced fax: it finishes that fax (success,
    pixel-identical), new calls meanwhile (the CLI, six processes) all succeed on a (b
    refuses them with 503 and Kamailio moves on), and b exits once its call is done."""
    import asyncio

    pa, pb = free_ports(2)
    procs: list[Proc] = []
    try:
        a, inbox_a = xmfax_node(tmp_path, "a", pa)
        b, inbox_b = xmfax_node(tmp_path, "b", pb)
        procs += [a, b]
        kam, kport = start_kamailio(tmp_path, [pa, pb])
        procs.append(kam)
        quick: list = []

        async def stop_b_then_call():
            os.killpg(b.p.pid, signal.SIGTERM)
            await asyncio.sleep(0.3)
            # the CLI in processes of their own: unpaced calls in this event loop would hold
            # up the paced ones' T.30 answers (late answers are a failure of their own)
            quick.extend(await cli_calls(tmp_path, kport, list(range(50, 56))))

        results = asyncio.run(paced_pair(kport, [42, 43], stop_b_then_call, after=4.0))
        assert [r.summary() for r in results if not r.ok] == []
        assert [q for q in quick if q[1] != 0] == [], kam.text()[-3000:]
        got_a, got_b = wait_received([inbox_a, inbox_b], 8)
        assert len(got_b) == 1 and set(got_b) <= {42, 43}           # b's one paced fax, nothing new
        assert set(got_a) == ({42, 43} - set(got_b)) | set(range(50, 56))
        assert_intact(got_a | got_b)
        # b refused the calls Kamailio gave it (503) and they went on to a; on a starved
        # machine (six CLI processes starting at once) b may also miss a 0.9 s probe or the
        # 2 s INVITE timeout: it is then marked down and the call fails over all the same
        assert re.search(rf"fails over to node sip:127\.0\.0\.1:{pa}|fax node down: sip:127\.0\.0\.1:{pb}",
                         kam.text()), kam.text()[-3000:]
        assert b.p.wait(timeout=20) is not None                     # b exits after its call
    finally:
        stop_all(procs)


@needs_kamailio
@needs_sipp
def test_sipp_call_load_keeps_each_node_under_its_maxload(tmp_path):
    """-A WITH_CALL_LOAD (algorithm 10): two nodes with maxload=3; 6 calls held 3 s land 3
    and 3; a 7th while they are held finds no node under its limit and gets 503 from
    Kamailio (no node is asked); once the BYEs have gone through, 6 held calls fit again."""
    pa, pb = free_ports(2)
    procs: list = []
    try:
        procs += [sipp_node(tmp_path, "a", pa), sipp_node(tmp_path, "b", pb)]
        kam, kport = start_kamailio(tmp_path, [pa, pb], maxload=3)
        procs.append(kam)
        for round_ in ("first", "second"):
            before_a, before_b = invites_received(tmp_path, "a"), invites_received(tmp_path, "b")
            held = subprocess.Popen(caller_argv(tmp_path, kport, 6, tag=round_, rate=50, hold_ms=3000),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                dispatched = 6 * (1 + (round_ == "second"))
                deadline = time.monotonic() + 10
                while len(re.findall(r"call \S+ to node", kam.text())) < dispatched:
                    assert time.monotonic() < deadline, kam.text()[-3000:]
                    time.sleep(0.05)
                mark = len(kam.text())
                extra = sipp_calls(tmp_path, kport, 1, tag=f"{round_}-extra")
                assert extra.returncode != 0                     # refused: every node is full
                assert "no active fax node" in kam.text()[mark:]
                assert held.wait(timeout=30) == 0               # the 6 held calls all completed
            finally:
                if held.poll() is None:
                    held.kill()
                    held.wait(timeout=5)
            assert len(invites_received(tmp_path, "a") - before_a) == 3
            assert len(invites_received(tmp_path, "b") - before_b) == 3
            time.sleep(0.3)                                     # the last BYEs pass Kamailio
    finally:
        stop_all(procs)


@needs_kamailio
@needs_sipp
def test_sipp_call_load_failover_moves_the_count(tmp_path):
    """WITH_CALL_LOAD and a dead node (nothing on b's port from the start, maxload=3): a call
    given to b fails over to a and succeeds; afterwards a's count is right: 3 held calls
    fit on a, a 4th is refused (a count left on b, or lost from a, would show here)."""
    pa, pb = free_ports(2)
    procs: list = []
    try:
        procs.append(sipp_node(tmp_path, "a", pa))
        kam, kport = start_kamailio(tmp_path, [pa, pb], maxload=3)
        procs.append(kam)
        first = sipp_calls(tmp_path, kport, 2, tag="first", rate=10, hold_ms=500)
        assert first.returncode == 0, kam.text()[-3000:]
        assert re.search(rf"fails over to node sip:127\.0\.0\.1:{pa}", kam.text()), kam.text()[-3000:]
        mark = len(kam.text())
        held = subprocess.Popen(caller_argv(tmp_path, kport, 3, tag="held", rate=50, hold_ms=2500),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while len(re.findall(r"call \S+ to node", kam.text()[mark:])) < 3:
                assert time.monotonic() < deadline, kam.text()[-3000:]
                time.sleep(0.05)
            extra = sipp_calls(tmp_path, kport, 1, tag="extra")
            assert extra.returncode != 0 and "no active fax node" in kam.text()[mark:]
            assert held.wait(timeout=30) == 0
        finally:
            if held.poll() is None:
                held.kill()
                held.wait(timeout=5)
        assert len(invites_received(tmp_path, "a")) == 2 + 3
    finally:
        stop_all(procs)
