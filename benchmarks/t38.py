"""CPU cost of a paced 3-page T.38 call (both ends), xmfax<->xmfax beside spandsp<->spandsp.

Simulated time: both pairs run on a fake clock (spandsp ticked every 20 ms, the xmfax
terminals woken at their own timers), so the numbers are CPU seconds, not wall-clock.
Pages: the ITU T.24 test pages itu1-3 (1728x2376, fine) from ../shared/corpus/itu when
present, else synthetic pages. V.17 14400, ECM, UDPTL with redundancy 3 on the xmfax pair.

    python benchmarks/t38.py [--runs N] [--no-ecm]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))
sys.path.insert(0, os.path.join(ROOT, "tests", "t38"))

from xmfax.page import Page, Resolution  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402

CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "itu")


def load_pages():
    from PIL import Image

    paths = [os.path.join(CORPUS, f"itu{i}.pbm") for i in (1, 2, 3)]
    if all(os.path.exists(p) for p in paths):
        pages = []
        for p in paths:
            with Image.open(p) as im:
                pages.append(Page(~np.array(im.convert("1"), dtype=bool), Resolution.FINE, source=p))
        return pages, "ITU itu1-3"
    from calls import test_pages

    return test_pages(3, rows=2376), "synthetic (corpus absent)"


def xmfax_call(pages, ecm):
    from calls import Network, run_terminals

    cfg = T38Config(paced=True)
    a = T38Terminal(Session(T30Config(ecm=ecm), calling=True, pages=pages), cfg)
    b = T38Terminal(Session(T30Config(ecm=ecm), calling=False, receive=True), cfg)
    t0 = time.process_time()
    sim = run_terminals(a, b, Network(delay=0.02))
    cpu = time.process_time() - t0
    ok = a.result.status == "success" and len(b.result.received_pages) == len(pages)
    packets = a.stats.packets_sent + b.stats.packets_sent
    return cpu, sim, ok, packets


def spandsp_call(tiff, rx, ecm):
    import spandsp_t38 as sp

    a = sp.SpandspT38(True, tx_file=tiff, ecm=ecm)
    b = sp.SpandspT38(False, rx_file=rx, ecm=ecm)
    t0 = time.process_time()
    steps = sa = sb = packets = 0
    while steps < 30000 and (a.completion is None or b.completion is None):
        a.tick()
        b.tick()
        steps += 1
        for p, _ in a.take():
            b.feed(p, sa)
            sa += 1
        for p, _ in b.take():
            a.feed(p, sb)
            sb += 1
    cpu = time.process_time() - t0
    ok = a.completion == 0 and b.completion == 0 and b.stats().pages_rx == 3
    a.close()
    b.close()
    return cpu, steps * 0.02, ok, sa + sb


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-ecm", action="store_true")
    args = ap.parse_args()
    ecm = not args.no_ecm
    pages, what = load_pages()
    rows = []
    best = {}
    for _ in range(args.runs):
        r = xmfax_call(pages, ecm)
        rows.append(("xmfax<->xmfax", *r))
        best["xmfax"] = min(best.get("xmfax", 1e9), r[0])
    try:
        import spandsp_t38 as sp

        if sp.load() is None:
            raise ImportError
        from PIL import Image

        with tempfile.TemporaryDirectory() as tmp:
            tiff = os.path.join(tmp, "tx.tif")
            frames = [Image.fromarray(~p.image).convert("1") for p in pages]
            frames[0].save(tiff, compression="group4", save_all=True, append_images=frames[1:], dpi=(204, 196))
            for i in range(args.runs):
                r = spandsp_call(tiff, os.path.join(tmp, f"rx{i}.tif"), ecm)
                rows.append(("spandsp<->spandsp", *r))
                best["spandsp"] = min(best.get("spandsp", 1e9), r[0])
    except ImportError:
        print("spandsp not available: xmfax only")
    print(f"paced 3-page T.38 call, V.17 14400, ECM {'on' if ecm else 'off'}, pages: {what}")
    print(f"{'pair':<20}{'CPU s':>9}{'sim s':>9}{'packets':>9}{'calls/core-s':>14}  ok")
    for name, cpu, sim, ok, pk in rows:
        print(f"{name:<20}{cpu:>9.4f}{sim:>9.1f}{pk:>9}{1 / cpu:>14.1f}  {ok}")
    if "spandsp" in best:
        ratio = best["spandsp"] / best["xmfax"]
        print(f"best of {args.runs}: xmfax {best['xmfax']:.4f} s, spandsp {best['spandsp']:.4f} s; "
              f"xmfax calls per core = {ratio:.2f} x spandsp's (target >= 0.5)")


if __name__ == "__main__":
    main()
