"""Class1Driver through two real Class 1 modems (iaxmodem, spandsp inside), with efax
as the independent peer. The rig is started and stopped here in a temp directory.

xmfax -> efax, efax -> xmfax, xmfax -> xmfax (3 fine pages at 14400 with and without
ECM; V.29 9600 and V.27ter 4800 forced, with and without ECM), the public API over
Class 1, failed dials and a far end hanging up mid-page. The long calls are marked
@slow (they run in CI, in the C pass only: marker "modem"); the long series of
repeated calls is benchmarks/class1.py.

No test sleeps to let the rig settle. After start, each modem is polled with AT until it
answers OK; an efax receiver is ready when it prints "waiting for activity". A modem
rejects calls for 5 s after its own ATZ/ATH (iaxmodem's busy-out after hang-up), which
no AT command shows: the caller sees NO DIALTONE at once, so xmfax's dial (profile
"iaxmodem": no_dialtone_retry_s) and the efax sender here (_EfaxSender) dial again,
every 0.5 s, within a deadline.
"""
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the checkout
RIG = (SHARED / "peers/iaxmodem/rig")
CORPUS = (SHARED / "corpus/itu")

pytestmark = [pytest.mark.interop, pytest.mark.modem]


def _missing() -> str | None:
    if not RIG.exists():
        return f"{RIG} not found"
    for tool in ("iaxmodem", "efax", "efix"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install -y iaxmodem efax)"
    if not (CORPUS / "itu1.pbm").exists():
        return f"{CORPUS} test pages not found"
    return None


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    why = _missing()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("rig")
    # the rig leaves its supervisor running with our stdout: give it files, not pipes
    with open(d / "start.log", "w") as log:
        r = subprocess.run([str(RIG), "start", str(d)], stdout=log, stderr=subprocess.STDOUT, timeout=60)
    try:
        if r.returncode != 0:
            pytest.skip(f"iaxmodem rig did not start: {(d / 'start.log').read_text().strip()}")
        ports = str(d / "dev" / "ttyIAX0"), str(d / "dev" / "ttyIAX1")
        for port in ports:
            why = _wait_for_ok(port, 30.0)
            if why:
                pytest.skip(f"iaxmodem rig started but {port} does not answer AT: {why}")
        yield (d, *ports)
    finally:
        subprocess.run([str(RIG), "stop", str(d)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=60)


def _wait_for_ok(port: str, within: float) -> str | None:
    """Open ``port`` and send AT until the modem answers OK (None), or say why not by
    ``within`` seconds (the port may appear before the modem behind it listens)."""
    from xmfax.errors import DriverError
    end = time.monotonic() + within
    why = "no answer"
    while time.monotonic() < end:
        try:
            with _driver(port) as drv:
                if drv.at.command("AT", 1.0, accept=None).ok:
                    return None
        except (DriverError, OSError) as exc:
            why = str(exc)
        time.sleep(0.2)                     # poll interval
    return why


def _wait_for_line(log: Path, text: str, proc: subprocess.Popen, within: float) -> None:
    """Wait until ``proc`` writes ``text`` to ``log`` (efax: "waiting for activity")."""
    end = time.monotonic() + within
    while time.monotonic() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        if proc.poll() is not None:
            pytest.fail(f"efax exited ({proc.returncode}) before {text!r}: {log.read_text()[-800:]}")
        time.sleep(0.1)                     # poll interval
    pytest.fail(f"no {text!r} from efax within {within:.0f} s: {log.read_text()[-800:]}")


class _EfaxSender(threading.Thread):
    """efax sending ``files`` from ``port``. An attempt refused with NO DIALTONE (the far
    modem's 5 s busy-out after its reset, which no AT command shows) is started again
    0.5 s later, for at most ``retry_s``; any other outcome ends it. ``proc`` is the
    efax of the attempt under way, ``log`` holds its output."""

    def __init__(self, port: str, files: list[str], log: Path, retry_s: float = 15.0):
        super().__init__(daemon=True)
        self.port, self.files, self.log, self.retry_s = port, files, log, retry_s
        self.proc: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.attempts = 0

    def run(self) -> None:
        end = time.monotonic() + self.retry_s
        while True:
            self.attempts += 1
            with open(self.log, "w") as out:
                # -v ewinc: efax's default messages plus the modem's responses
                self.proc = subprocess.Popen(["efax", "-d", self.port, "-o1", "-vewinc", "-t", "2000",
                                              *self.files], stdout=out, stderr=subprocess.STDOUT)
                try:
                    self.returncode = self.proc.wait(timeout=300)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.returncode = self.proc.wait()
                    return
            refused = 'response "NO DIALTONE"' in self.log.read_text(errors="replace")
            if self.returncode == 0 or not refused or time.monotonic() + 0.5 > end:
                return
            time.sleep(0.5)                 # then dial again (bounded by retry_s)

    def finish(self, timeout: float) -> int | None:
        self.join(timeout)
        if self.is_alive() and self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.join(5)
        return self.returncode


def _pages(n=1, names=("itu1", "itu2", "itu3")):
    from PIL import Image

    from xmfax.page import Page, Resolution
    out = []
    for name in names[:n]:
        img = np.array(Image.open(CORPUS / f"{name}.pbm").convert("1")) == 0
        out.append(Page(img, Resolution.FINE, source=name))
    return out


def _driver(port, trace_path=None, **quirks):
    from dataclasses import replace

    from xmfax.drivers.class1 import Class1Config, Class1Driver
    from xmfax.drivers.class1.profiles import PROFILES
    tr = open(trace_path, "w") if trace_path else None
    return Class1Driver(Class1Config(port, profile="iaxmodem", trace=tr, trace_bytes=False,
                                     quirks=replace(PROFILES["iaxmodem"], **quirks) if quirks else None))


def _identical(got, want) -> bool:
    img = got.image if hasattr(got, "image") else got
    return img.shape == want.image.shape and not (img != want.image).any()


def _received_pages(result):
    return list(result.received_pages)


def test_xmfax_sends_to_efax(rig, tmp_path):
    from PIL import Image

    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    d, a, b = rig
    efax = subprocess.Popen(["efax", "-d", b, "-o1", "-w", "-iS0=1", "-r", str(tmp_path / "fax")],
                            stdout=open(tmp_path / "efax.log", "w"), stderr=subprocess.STDOUT)
    try:
        # efax has reset modem B (which then rejects calls for 5 s: the dial retries)
        _wait_for_line(tmp_path / "efax.log", "waiting for activity", efax, 30.0)
        pages = _pages(1)
        s = Session(T30Config(ecm=False, local_id="+1 555 0100"), calling=True, pages=pages, now=0.0)
        with _driver(a, tmp_path / "trace.log") as drv:
            drv.initialize()
            result = drv.send_call("1001", s)
        efax.wait(timeout=30)
    finally:
        if efax.poll() is None:
            efax.kill()
    log = (tmp_path / "efax.log").read_text()
    assert result.status == "success", (result, log[-800:])
    assert "2376 lines, 0 errors" in log, log[-800:]
    got = np.array(Image.open(tmp_path / "fax.001").convert("1")) == 0
    assert _identical(got, pages[0])


def test_efax_sends_to_xmfax(rig, tmp_path):
    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    d, a, b = rig
    tif = tmp_path / "itu2.tif"
    with open(tif, "wb") as f:
        subprocess.run(["efix", "-i", "pbm", "-o", "tiffg3", str(CORPUS / "itu2.pbm")], stdout=f,
                       stderr=subprocess.DEVNULL, check=True)
    s = Session(T30Config(local_id="+1 555 0101"), calling=False, receive=True, now=0.0)
    with _driver(b, tmp_path / "trace.log") as drv:
        drv.initialize()
        efax = _EfaxSender(a, [str(tif)], tmp_path / "efax.log")
        efax.start()
        try:
            result = drv.answer_call(s, rings=1, timeout=60, initialize=False)
        finally:
            rc = efax.finish(timeout=30)
    log = (tmp_path / "efax.log").read_text()
    assert result.status == "success", (result, log[-800:])
    assert rc == 0, log[-800:]
    got = _received_pages(result)
    assert len(got) == 1
    want = _pages(2)[1]
    # efax puts a 20-row header line above the page ("sent 20+2376 lines")
    img = got[0].image
    assert img.shape == (want.rows + 20, want.width)
    # (its text reaches a few rows further down: compare from row 20 + 8)
    bad_rows = np.nonzero((img[28:] != want.image[8:]).any(axis=1))[0]
    assert len(bad_rows) == 0, f"{len(bad_rows)} rows differ, first {bad_rows[:10]}"


def _xmfax_pair(rig, tmp_path, pages, ecm, max_rate, modems=None):
    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    d, a, b = rig
    tx_cfg = T30Config(ecm=ecm, max_rate=max_rate, local_id="1")
    if modems is not None:
        tx_cfg = T30Config(ecm=ecm, max_rate=max_rate, local_id="1", modems=frozenset(modems))
    rx_s = Session(T30Config(ecm=ecm, local_id="2"), calling=False, receive=True, now=0.0)
    tx_s = Session(tx_cfg, calling=True, pages=pages, now=0.0)
    out = {}
    listening = threading.Event()

    def answer():
        try:
            with _driver(b, tmp_path / "rx.log") as drv:
                listening.set()
                out["rx"] = drv.answer_call(rx_s, rings=1, timeout=90, initialize=False)
        except Exception as exc:          # reported below
            out["rx_exc"] = exc
        finally:
            listening.set()

    with _driver(b) as init_b:
        init_b.initialize()
    with _driver(a, tmp_path / "tx.log") as drv:
        drv.initialize()
        th = threading.Thread(target=answer, daemon=True)
        th.start()
        assert listening.wait(10), "the answering driver did not open its port"
        # modem B was just reset: the dial meets NO DIALTONE for ~5 s and retries
        tx = drv.send_call("1001", tx_s)
    th.join(timeout=120)
    assert "rx_exc" not in out, out.get("rx_exc")
    return tx, out["rx"], rx_s, tx_s


def test_xmfax_to_xmfax_ecm(rig, tmp_path):
    pages = _pages(1)
    tx, rx, _, _ = _xmfax_pair(rig, tmp_path, pages, ecm=True, max_rate=14400)
    assert tx.status == "success" and rx.status == "success", (tx, rx)
    got = _received_pages(rx)
    assert len(got) == 1 and _identical(got[0], pages[0])


@pytest.mark.slow
@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
def test_xmfax_to_xmfax_three_pages(rig, tmp_path, ecm):
    """3 fine pages at V.17 14400 (about 75 s a call)."""
    pages = _pages(3)
    tx, rx, _, _ = _xmfax_pair(rig, tmp_path, pages, ecm=ecm, max_rate=14400)
    assert tx.status == "success" and rx.status == "success", (tx, rx)
    assert tx.modulation.startswith("V.17 14400"), tx.modulation
    got = _received_pages(rx)
    assert len(got) == 3 and all(_identical(g, p) for g, p in zip(got, pages))


@pytest.mark.slow
@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
@pytest.mark.parametrize("rate,family", [(9600, "V.29"), (4800, "V.27ter")])
def test_xmfax_to_xmfax_forced_rate(rig, tmp_path, ecm, rate, family):
    """V.29 9600 and V.27ter 4800 forced, with and without ECM: one page at standard
    resolution per call keeps the series short (the 3-page series at every rate is
    benchmarks/class1.py)."""
    from xmfax.page import Page, Resolution
    from xmfax.t30.modem import Family

    fine = _pages(1)[0]
    page = Page(fine.image[::2], Resolution.STANDARD, source="itu1 standard")
    # the sender offers no V.17 (which also runs at 9600); V.27 ter is mandatory in T.30
    modems = {"V.29": {Family.V29, Family.V27TER}, "V.27ter": {Family.V27TER}}[family]
    tx, rx, _, _ = _xmfax_pair(rig, tmp_path, [page], ecm=ecm, max_rate=rate, modems=modems)
    assert tx.status == "success" and rx.status == "success", (tx, rx)
    assert tx.modulation.startswith(f"{family} {rate}"), tx.modulation
    got = _received_pages(rx)
    assert len(got) == 1 and _identical(got[0], page)


def test_dial_refused_reports_reason(rig, tmp_path):
    from xmfax.drivers.class1 import DialError
    d, a, b = rig
    with _driver(b) as other:
        other.initialize()           # modem B just reset: it refuses calls for ~5 s
        with _driver(a, no_dialtone_retry_s=0.0) as drv:    # no retry, on purpose
            drv.initialize()
            with pytest.raises(DialError) as ei:
                drv.dial("1001")
            drv.hangup()
    assert ei.value.reason in ("NO DIALTONE", "BUSY", "NO CARRIER")


@pytest.mark.slow
def test_dial_no_answer(rig, tmp_path):
    from xmfax.drivers.class1 import DialError
    d, a, b = rig
    with _driver(b) as other, _driver(a) as drv:
        other.initialize()
        drv.initialize()             # the dial retries NO DIALTONE until B takes calls
        with pytest.raises(DialError) as ei:
            drv.dial("1001")
        other.hangup()
    assert ei.value.reason == "NO ANSWER"


@pytest.mark.slow
def test_far_end_hangs_up_during_page_keeps_received_pages(rig, tmp_path):
    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    d, a, b = rig
    tifs = []
    for name in ("itu1", "itu2"):
        tif = tmp_path / f"{name}.tif"
        with open(tif, "wb") as f:
            subprocess.run(["efix", "-i", "pbm", "-o", "tiffg3", str(CORPUS / f"{name}.pbm")],
                           stdout=f, stderr=subprocess.DEVNULL, check=True)
        tifs.append(str(tif))
    s = Session(T30Config(ecm=False), calling=False, receive=True, now=0.0)
    with _driver(b, tmp_path / "trace.log") as drv:
        drv.initialize()
        efax = _EfaxSender(a, tifs, tmp_path / "efax.log")
        efax.start()

        def killer():
            # wait until page 2 is under way, then pull the plug on the sender
            for _ in range(600):
                time.sleep(0.2)
                if "P. 2]" in (tmp_path / "efax.log").read_text():
                    time.sleep(5)            # well into page 2 (not a wait for the rig)
                    efax.proc.send_signal(signal.SIGKILL)
                    with _driver(a) as other:   # hang the modem up: the line drops
                        other.recover()
                    return
        th = threading.Thread(target=killer, daemon=True)
        th.start()
        result = drv.answer_call(s, rings=1, timeout=60, initialize=False)
        th.join(timeout=60)
        efax.finish(timeout=30)
    assert result.status == "failure", result
    assert len(_received_pages(result)) == 1


def test_api_send_and_receive_through_modems(rig, tmp_path):
    """The public API end to end over Class 1: xmfax.receive answers on modem B after
    on_call accepts with a CSID; xmfax.send dials from modem A; the fax lands on disk."""
    import asyncio
    import json

    import xmfax
    from xmfax.document import load

    d, a, b = rig
    pages = _pages(1)
    calls = []

    def on_call(call):
        calls.append(call)
        return xmfax.Accept(local_id="+1 555 0199")

    async def main():
        receiver = xmfax.receive(via=f"class1:{b}", class1={"profile": "iaxmodem"}, on_call=on_call,
                                 once=True, output_dir=tmp_path / "inbox")
        task = asyncio.create_task(receiver.run())
        await receiver.ready()
        # modem B was just reset and rejects calls for ~5 s: the dial retries NO DIALTONE
        sent = await xmfax.send(pages, via=f"class1:{a}", to="1001", class1={"profile": "iaxmodem"},
                                local_id="+1 555 0100")
        return sent, await asyncio.wait_for(task, 120)

    sent, received = asyncio.run(main())
    assert sent.ok, sent.summary()
    assert sent.remote_id == "+1 555 0199" and sent.transport == "class1"
    assert len(calls) == 1 and calls[0].transport == "class1"
    rx = received[0]
    assert rx.ok and rx.remote_id == "+1 555 0100" and rx.page_count == 1
    tif = [f for f in rx.files if f.endswith(".tif")][0]
    got = load(tif)
    assert len(got) == 1 and _identical(got[0], pages[0])
    record = json.loads(Path(tif).with_suffix(".json").read_text())
    assert record["status"] == "success" and record["transport"] == "class1"
