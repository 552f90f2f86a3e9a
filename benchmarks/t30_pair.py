"""CPU cost of whole T.30 calls between two xmfax engines on the simulated line.

No modem, no T.38: two xmfax.t30 Sessions joined by xmfax.t30.pair.Line on a fake
clock, so this is the engine's own cost (negotiation, coding the pages, decoding and
checking them at the receiver). Pages: the ITU T.24 test pages itu1-3 (1728x2376,
fine) from ../shared/corpus/itu when present, else synthetic text-like pages.
For scale, peers/README.md measured a 3-page spandsp<->spandsp T.38 call at 0.03 s
CPU and an audio call at 0.12 s (both ends, with their modems or IFP).

    python benchmarks/t30_pair.py [--runs N]
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from xmfax import codecs
from xmfax.page import Page, Resolution
from xmfax.t30 import Session, T30Config
from xmfax.t30.pair import Faults, Line, page_damage, tcf_errors_above

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "shared", "corpus", "itu")


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
    ok = a.result.ok and b.result.ok and len(b.result.received_pages) == len(pages)
    return cpu, line.now, ok, a.result.modulation


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    pages, what = load_pages()
    print(f"3-page T.30 calls, xmfax<->xmfax on pair.Line; pages: {what}; codec backend: {codecs.backend}")
    print(f"{'case':<34}{'CPU s (best)':>13}{'sim s':>9}{'calls/core-s':>14}  ok  rate")
    cases = [
        ("non-ECM, clean line", False, None),
        ("ECM, clean line", True, None),
        ("non-ECM, TCF errors above 9600", False, lambda: Faults(data=tcf_errors_above(9600))),
        ("non-ECM, page 2 damaged (RTN)", False, lambda: Faults(data=page_damage("a", {2}, every=15))),
    ]
    for name, ecm, faults in cases:
        best = None
        for _ in range(args.runs):
            r = one_call(pages, ecm, faults() if faults else None)
            best = r if best is None or r[0] < best[0] else best
        cpu, sim, ok, rate = best
        print(f"{name:<34}{cpu:>13.4f}{sim:>9.1f}{1 / cpu:>14.1f}  {'yes' if ok else 'NO ':<3} {rate}")


if __name__ == "__main__":
    main()
