"""CPU cost of whole T.30 calls between two xmfax engines on the simulated line.

No modem, no T.38: two xmfax.t30 Sessions joined by xmfax.t30.pair.Line on a fake
clock, so this is the engine's own cost (negotiation, coding the pages, decoding and
checking them at the receiver). Pages: the ITU T.24 test pages itu1-3 (1728x2376,
fine) from ../shared/corpus/itu when present, else synthetic text-like pages.

spandsp, measured in the same run: spandsp has no modem-less T.30 pair, so its nearest
figure is two of its T.38 terminals joined in memory, unpaced, bare IFP (its T.30 engine,
T.4 coding from and to TIFF, IFP), driven by the C harness of benchmarks/t38.py
(spandsp_t38_pair.c), timing its own CPU. That is more work than the xmfax line (IFP on
top), so the comparison flatters spandsp a little; the clean-line cases have it, with ECM
on or off to match. Medians of interleaved runs; pages compared pixel for pixel.

    python benchmarks/t30_pair.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

from xmfax import codecs
from xmfax.page import Page, Resolution
from xmfax.t30 import Session, T30Config
from xmfax.t30.pair import Faults, Line, page_damage, tcf_errors_above

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus", "itu")
sys.path.insert(0, HERE)
import t38 as t38_bench  # noqa: E402  (the spandsp harness: build_harness, spandsp_call)


def load_pages() -> tuple[list[Page], str]:
    paths = [os.path.join(CORPUS, f"itu{i}.pbm") for i in (1, 2, 3)]
    if all(os.path.exists(p) for p in paths):
        from PIL import Image
        pages = [Page(np.array(Image.open(p).convert("1")) == 0, Resolution.FINE) for p in paths]
        return pages, "ITU T.24 itu1-3"
    rng = np.random.default_rng(1)
    pages = []
    for _ in range(3):
        img = np.zeros((2376, 1728), bool)
        for r in range(0, 2370, 12):
            for _ in range(20):
                c = int(rng.integers(0, 1700))
                img[r:r + 8, c:c + int(rng.integers(2, 25))] = True
        pages.append(Page(img, Resolution.FINE))
    return pages, "synthetic text-like"


def one_call(pages, ecm: bool, faults: Faults | None = None):
    a = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    b = Session(T30Config(ecm=ecm), calling=False, receive=True)
    line = Line(a, b, faults=faults)
    t0 = time.process_time()
    line.run()
    cpu = time.process_time() - t0
    got = b.result.received_pages
    ok = (a.result.ok and b.result.ok and len(got) == len(pages)
          and (faults is not None or all(np.array_equal(g.image, p.image) for g, p in zip(got, pages))))
    return cpu, line.now, ok, a.result.modulation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    pages, what = load_pages()
    cases = [
        ("non-ECM, clean line", False, None),
        ("ECM, clean line", True, None),
        ("non-ECM, TCF errors above 9600", False, lambda: Faults(data=tcf_errors_above(9600))),
        ("non-ECM, page 2 damaged (RTN)", False, lambda: Faults(data=page_damage("a", {2}, every=15))),
    ]
    xm: dict[str, list] = {}
    sp: dict[bool, list] = {}
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        exe, why = t38_bench.build_harness(tmp)
        tiff = os.path.join(tmp, "tx.tif")
        t38_bench.write_tiff(pages, tiff)
        for _ in range(args.runs):                   # interleaved: the machine's noise is shared
            for name, ecm, faults in cases:
                xm.setdefault(name, []).append(one_call(pages, ecm, faults() if faults else None))
            if exe is not None:
                for ecm in (False, True):
                    sp.setdefault(ecm, []).append(
                        t38_bench.spandsp_call(exe, tiff, tmp, pages, paced=False, ecm=ecm))
    print(f"3-page T.30 calls, xmfax<->xmfax on pair.Line; pages: {what}; codec backend: {codecs.backend}; "
          f"median of {args.runs} runs, CPU s per call (both ends)")
    if exe is None:
        print(f"spandsp not measured: {why}")
    print(f"{'case':<34}{'xmfax CPU s':>12}{'sim s':>8}  ok  {'rate':<12}{'spandsp CPU s':>14}{'xmfax/spandsp':>15}")
    for name, ecm, faults in cases:
        rs = xm[name]
        cpu = statistics.median(r[0] for r in rs)
        ok = all(r[2] for r in rs)
        sim, rate = rs[0][1], rs[0][3]
        sp_cell, ratio = f"{'-':>14}", f"{'-':>15}"
        if faults is None and ecm in sp:
            sp_cpu = statistics.median(r["cpu"] for r in sp[ecm])
            sp_ok = all(r["ok"] for r in sp[ecm])
            sp_cell = f"{sp_cpu:>13.4f}{'' if sp_ok else '!'}" + (" " if sp_ok else "")
            ratio = f"{cpu / sp_cpu:>14.2f}x"
        print(f"{name:<34}{cpu:>12.4f}{sim:>8.1f}  {'yes' if ok else 'NO ':<3} {str(rate):<12}{sp_cell}{ratio}")
    if sp:
        print("spandsp: two T.38 terminals, unpaced, bare IFP, in memory (C harness); '!' = a call failed "
              "or a page differed")


if __name__ == "__main__":
    main()
