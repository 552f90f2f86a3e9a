"""Class 1 over the iaxmodem rig: success rate and seconds per page, xmfax vs efax.

    python benchmarks/class1.py [--calls 10] [--pages 1]
    python benchmarks/class1.py --matrix --calls 1 --pages 3

Runs --calls calls each way xmfax -> efax, efax -> xmfax, and efax -> efax (the
reference) on a rig started in a temp directory, and prints a table. Needs
iaxmodem, efax, efix and /work/shared/corpus/itu. A call takes ~25 s.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import os
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[2] / "shared")  # ../shared beside the checkout
RIG = str(SHARED / "peers/iaxmodem/rig")
CORPUS = (SHARED / "corpus/itu")


def pages(n):
    from PIL import Image

    from xmfax.page import Page, Resolution
    return [Page(np.array(Image.open(CORPUS / f"itu{i + 1}.pbm").convert("1")) == 0, Resolution.FINE)
            for i in range(n)]


def tifs(tmp, n):
    out = []
    for i in range(n):
        t = tmp / f"p{i + 1}.tif"
        with open(t, "wb") as f:
            subprocess.run(["efix", "-i", "pbm", "-o", "tiffg3", str(CORPUS / f"itu{i + 1}.pbm")],
                           stdout=f, stderr=subprocess.DEVNULL, check=True)
        out.append(str(t))
    return out


def driver(port):
    from xmfax.drivers.class1 import Class1Config, Class1Driver
    return Class1Driver(Class1Config(port, profile="iaxmodem"))


def xmfax_to_efax(a, b, tmp, n):
    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    log = tmp / "efax_rx.log"
    efax = subprocess.Popen(["efax", "-d", b, "-o1", "-w", "-iS0=1", "-r", str(tmp / "rx")],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    time.sleep(7)
    s = Session(T30Config(ecm=False), calling=True, pages=pages(n), now=0.0)
    t = time.monotonic()
    with driver(a) as d:
        d.initialize(reset=False)
        try:
            r = d.send_call("1001", s, initialize=False)
        except Exception as exc:
            efax.kill()
            return False, time.monotonic() - t, str(exc)
    dt = time.monotonic() - t
    efax.wait(timeout=60)
    ok = r.status == "success" and log.read_text().count(", 0 errors") == n
    return ok, dt, r.reason


def efax_to_xmfax(a, b, tmp, n):
    from xmfax.t30.config import T30Config
    from xmfax.t30.session import Session
    files = tifs(tmp, n)
    s = Session(T30Config(), calling=False, receive=True, now=0.0)
    with driver(b) as d:
        d.initialize()
        time.sleep(6)                      # a modem refuses calls ~5 s after its reset
        efax = subprocess.Popen(["efax", "-d", a, "-o1", "-t", "2000", *files],
                                stdout=open(tmp / "efax_tx.log", "w"), stderr=subprocess.STDOUT)
        t = time.monotonic()
        try:
            r = d.answer_call(s, rings=1, timeout=60, initialize=False)
        except Exception as exc:
            efax.kill()
            return False, time.monotonic() - t, str(exc)
        dt = time.monotonic() - t
    efax.wait(timeout=60)
    return r.status == "success" and len(r.received_pages) == n and efax.returncode == 0, dt, r.reason


def efax_to_efax(a, b, tmp, n):
    files = tifs(tmp, n)
    rx = subprocess.Popen(["efax", "-d", b, "-o1", "-w", "-iS0=1", "-r", str(tmp / "rx")],
                          stdout=open(tmp / "rx.log", "w"), stderr=subprocess.STDOUT)
    time.sleep(7)
    t = time.monotonic()
    tx = subprocess.run(["efax", "-d", a, "-o1", "-t", "2000", *files], stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL)
    dt = time.monotonic() - t
    rx.wait(timeout=60)
    return tx.returncode == 0 and rx.returncode == 0, dt, tx.returncode


def xmfax_to_xmfax(a, b, tmp, n, rate=14400, ecm=True):
    """xmfax calls xmfax through both modems at ``rate`` (V.29 at 9600, V.27 ter at
    4800 and below: V.17 is not offered then), ``n`` fine pages, pixel-checked."""
    import threading

    from xmfax.t30.config import T30Config
    from xmfax.t30.modem import Family
    from xmfax.t30.session import Session
    families = {Family.V27TER, Family.V29, Family.V17}
    if rate < 14400 and rate != 12000:
        families = {Family.V27TER, Family.V29} if rate >= 7200 else {Family.V27TER}
    sent = pages(n)
    rx_s = Session(T30Config(ecm=ecm), calling=False, receive=True, now=0.0)
    tx_s = Session(T30Config(ecm=ecm, max_rate=rate, modems=frozenset(families)), calling=True,
                   pages=sent, now=0.0)
    out = {}

    def answer():
        try:
            with driver(b) as d:
                out["rx"] = d.answer_call(rx_s, rings=1, timeout=90)
        except Exception as exc:
            out["rx"] = exc

    th = threading.Thread(target=answer, daemon=True)
    th.start()
    time.sleep(7)
    t = time.monotonic()
    with driver(a) as d:
        d.initialize(reset=False)
        tx = d.send_call("1001", tx_s, initialize=False)
    dt = time.monotonic() - t
    th.join(timeout=120)
    rx = out.get("rx")
    got = list(getattr(rx, "received_pages", []))
    same = len(got) == n and all(g.image.shape == p.image.shape and not (g.image != p.image).any()
                                 for g, p in zip(got, sent))
    return tx.status == "success" and same, dt, f"{tx.modulation} {tx.reason}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--pages", type=int, default=1)
    ap.add_argument("--matrix", action="store_true",
                    help="instead: xmfax -> xmfax at 14400/9600/4800, ECM on and off (use --pages 3)")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as td:
        root = Path(td)
        subprocess.run([RIG, "start", str(root / "rig")], stdout=subprocess.DEVNULL, check=True)
        a, b = str(root / "rig/dev/ttyIAX0"), str(root / "rig/dev/ttyIAX1")
        time.sleep(6)
        try:
            series = [("xmfax -> efax", xmfax_to_efax), ("efax -> xmfax", efax_to_xmfax),
                      ("efax -> efax (reference)", efax_to_efax)]
            if args.matrix:
                series = [(f"xmfax -> xmfax {r} {'ECM' if e else 'no ECM'}",
                           lambda a, b, t, n, r=r, e=e: xmfax_to_xmfax(a, b, t, n, r, e))
                          for r in (14400, 9600, 4800) for e in (False, True)]
            for name, fn in series:
                ok = 0
                secs = []
                for i in range(args.calls):
                    tmp = root / f"{name.replace(' ', '_').replace('>', '')}{i}"
                    tmp.mkdir()
                    try:
                        good, dt, why = fn(a, b, tmp, args.pages)
                    except Exception as exc:       # one broken call is a failed call, not the end
                        good, dt, why = False, float("nan"), repr(exc)
                    ok += good
                    if good:
                        secs.append(dt / args.pages)
                    print(f"  {name} #{i + 1}: {'ok' if good else 'FAILED ' + str(why)} {dt:.1f} s",
                          file=sys.stderr, flush=True)
                    time.sleep(6)          # the modems refuse calls ~5 s after hang-up
                rows.append((name, ok, args.calls, np.mean(secs) if secs else float("nan")))
        finally:
            subprocess.run([RIG, "stop", str(root / "rig")], stdout=subprocess.DEVNULL)
    print(f"{'direction':28} {'success':>9} {'s/page (call)':>14}")
    for name, ok, n, sp in rows:
        print(f"{name:28} {ok:>4}/{n:<4} {sp:>14.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
