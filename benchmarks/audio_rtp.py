"""Audio fax over RTP with packet loss and jitter: whole calls, xmfax<->xmfax beside
spandsp<->spandsp under the SAME impaired packet stream, in simulated time (issue #12,
"Line impairments ... over RTP: packet loss and jitter").

For every loss rate (random, independent per 20 ms packet, seeded) and every jitter (each
packet arrives 10 ms + U(0, jitter) after the end of its 20 ms, so packets reorder past 20 ms),
whole one-page calls at V.17 14400 (V.17, V.29, V.27 ter offered) and V.29 9600 (V.29, V.27 ter
offered), ECM on and off, a few seeds each:
- xmfax<->xmfax: two AudioTerminals, xmfax.rtp's RTPSender and RTPReceiver (the fixed jitter
  buffer, RTPConfig's jitter_depth: 60 ms unless --depth), G.711 µ-law;
- spandsp<->spandsp: two ``fax_state`` terminals (libspandsp2 via ctypes), spandsp's G.711
  µ-law, and tests/interop/spandsp_rtp.py's plain RTP framing and plain fixed play-out
  buffer of the same depth (no concealment on either side: a lost packet is 20 ms of silence).
Seed s gives both pairs the same lost packets and the same delays (tests/audio/rtp_network.py's
Link draws per packet, whatever the packet holds).

A cell reads ``ok/n``: calls where both ends said success and the page arrived pixel-identical.
Then ``f<k>``: k calls both ends called a success with a page that differs but whose bad rows
the receiver reported (the non-ECM copy-quality rule, T.30 §5.3.6.1.5, accepted it: honest);
``!<k>``: k calls where an end said success with a page that differs and NO bad row reported
(a lie: must never happen). A call that falls back to a lower rate and succeeds counts as ok
(``fallbacks`` below the table).

    python benchmarks/audio_rtp.py [--seeds 3] [--loss 0,0.5,1,2,5] [--jitter 0,20,40,60]
                                   [--depth 60] [--rows N] [--only xmfax|spandsp]
Pages: the ITU T.24 page itu1 (1728x2376, fine) from ../shared/corpus/itu when present, else a
synthetic text-like page; ``--rows N`` takes its first N rows (shorter calls).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "audio"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))

import rtp_network as rn  # noqa: E402

from xmfax.page import Page, Resolution  # noqa: E402

CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "itu")
MODES = (("V.17", True), ("V.17", False), ("V.29", True), ("V.29", False))
# spandsp/t30.h T30_ERR_* (0.0.6), the sender's codes seen here
SPANDSP_ERR = {3: "T1_EXPIRED", 6: "CANNOT_TRAIN", 13: "UNEXPECTED", 14: "TX_BADDCS", 15: "TX_BADPG",
               16: "TX_ECMPHD", 17: "TX_GOTDCN", 18: "TX_INVALRSP", 19: "TX_NODIS", 20: "TX_PHBDEAD",
               21: "TX_PHDDEAD", 22: "TX_T5EXP", 48: "RETRYDCN", 49: "CALLDROPPED"}


def load_page(rows: int | None) -> tuple[list[Page], str]:
    path = os.path.join(CORPUS, "itu1.pbm")
    if os.path.exists(path):
        from PIL import Image
        with Image.open(path) as im:
            img = ~np.array(im.convert("1"), dtype=bool)
        what = "ITU itu1"
    else:
        rng = np.random.default_rng(1)
        img = np.zeros((2376, 1728), bool)
        for r in range(0, 2370, 12):
            for _ in range(20):
                c = int(rng.integers(0, 1700))
                img[r:r + 8, c:c + int(rng.integers(2, 25))] = True
        what = "synthetic text-like (corpus absent)"
    if rows:
        img = img[:rows]
        what += f", first {rows} rows"
    return [Page(np.ascontiguousarray(img), Resolution.FINE, source=what)], what


def spandsp_call(tiff: str, rx_path: str, pages, *, family: str, ecm: bool, loss: float,
                 jitter: float, seed: int, depth: float, limit: float = 300.0) -> rn.Outcome:
    """Two spandsp fax_state terminals over plain RTP through the same seeded Links."""
    import random

    import spandsp_audio as sa
    import spandsp_fax_audio as sf
    from spandsp_rtp import PlainPlayout, PlainSender

    from xmfax.document import load

    modems = sf.MODEM_V27TER | sf.MODEM_V29 | (sf.MODEM_V17 if family == "V.17" else 0)
    if os.path.exists(rx_path):
        os.unlink(rx_path)
    tx = sf.SpandspFax(True, tx_file=tiff, ecm=ecm, modems=modems)
    rx = sf.SpandspFax(False, rx_file=rx_path, ecm=ecm, modems=modems)
    playouts = []
    ends = []
    try:
        for i, fax in enumerate((tx, rx)):
            sender = PlainSender("pcmu", random.Random(seed * 7 + i))
            playout = PlainPlayout("pcmu", depth, 0.0)
            playouts.append(playout)

            def send(n, now, fax=fax, sender=sender):
                return [sender.packet(sa.g711_encode(sa.G711_ULAW, fax.send(n)).tobytes())]

            def play(now, fax=fax, playout=playout):
                codes = playout.play(now)
                if codes:
                    fax.receive(sa.g711_decode(sa.G711_ULAW, np.frombuffer(codes, np.uint8)))

            ends.append(rn.End(send=send, take=playout.receive, play=play, tick=lambda now: None,
                               done=lambda fax=fax: fax.completion is not None))
        links = (rn.Link(loss, jitter, seed, 0), rn.Link(loss, jitter, seed, 1))
        line = rn.pump(ends[0], ends[1], links, limit)
        st = rx.stats()
        tx_ok = tx.completion == sf.T30_ERR_OK and tx.stats().pages_tx == len(pages)
        rx_ok = rx.completion == sf.T30_ERR_OK and st.pages_rx == len(pages)
        got = []
        if st.pages_rx and os.path.exists(rx_path):
            got = [p.image for p in load(rx_path)]
        code = tx.completion
        why = ("no phase E" if code is None else f"OK with {tx.stats().pages_tx} pages sent" if code == 0
               else SPANDSP_ERR.get(code, f"T30_ERR {code}"))
        return rn.outcome(pages, got, tx_ok, rx_ok, st.bad_rows, st.bit_rate, line,
                          links[0].lost + links[1].lost, sum(p.stats["late"] for p in playouts), why)
    finally:
        tx.close()
        rx.close()


def cell(outs: list[rn.Outcome]) -> str:
    ok = sum(o.kind == "ok" for o in outs)
    text = f"{ok}/{len(outs)}"
    flagged = sum(o.kind == "flagged" for o in outs)
    wrong = sum(o.kind == "WRONG" for o in outs)
    if flagged:
        text += f" f{flagged}"
    if wrong:
        text += f" !{wrong}"
    return text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="audio fax over RTP: loss and jitter, xmfax beside spandsp")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--loss", default="0,0.5,1,2,5", help="percent of packets lost")
    ap.add_argument("--jitter", default="0,20,40,60", help="ms of delay variation")
    ap.add_argument("--depth", type=float, default=None, help="play-out buffer ms (default RTPConfig's)")
    ap.add_argument("--rows", type=int, default=None)
    ap.add_argument("--only", choices=("xmfax", "spandsp"))
    a = ap.parse_args(argv)
    from xmfax.rtp import RTPConfig
    depth = RTPConfig().jitter_depth if a.depth is None else a.depth / 1000.0
    losses = [float(x) for x in a.loss.split(",")]
    jitters = [float(x) for x in a.jitter.split(",")]
    pages, what = load_page(a.rows)
    engines = [e for e in ("xmfax", "spandsp") if a.only in (None, e)]
    if "spandsp" in engines:
        import spandsp_fax_audio as sf
        if sf.load() is None:
            print(f"spandsp not measured: {sf.unavailable_reason()}")
            engines.remove("spandsp")
    results: dict[tuple, list[rn.Outcome]] = defaultdict(list)
    cpu = defaultdict(float)
    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        tiff = os.path.join(tmp, "tx.tif")
        rx_path = os.path.join(tmp, "rx.tif")
        if "spandsp" in engines:
            from xmfax.document import write_tiff
            write_tiff(pages, tiff)
        for loss in losses:
            for jitter in jitters:
                for family, ecm in MODES:
                    for seed in range(1, a.seeds + 1):
                        kw = dict(family=family, ecm=ecm, loss=loss / 100.0, jitter=jitter / 1000.0, seed=seed)
                        for engine in engines:
                            t0 = time.process_time()
                            if engine == "xmfax":
                                o = rn.xmfax_call(pages, depth=depth, **kw)
                            else:
                                o = spandsp_call(tiff, rx_path, pages, depth=depth, **kw)
                            cpu[engine] += time.process_time() - t0
                            results[(engine, family, ecm, loss, jitter)].append(o)
    print(f"Audio fax over G.711 RTP (20 ms packets), simulated time; page: {what}; "
          f"play-out buffer {depth * 1000:.0f} ms (fixed) on both sides; {a.seeds} seeds per cell, "
          f"the same impaired packet stream for both pairs")
    print("cell: ok/n = both ends success and the page pixel-identical; f<k> success with a damaged "
          "page whose bad rows were reported; !<k> success with a wrong page, none reported (a lie)")
    for family in ("V.17", "V.29"):
        best = "V.17 14400" if family == "V.17" else "V.29 9600"
        print(f"\n{best}" + ("" if family == "V.17" else " (V.17 not offered)"))
        head = f"{'loss %':>7}{'jitter ms':>10}"
        for ecm in (True, False):
            for engine in engines:
                head += f"{(engine + (' ECM' if ecm else ' no-ECM')):>16}"
        print(head)
        for loss in losses:
            for jitter in jitters:
                row = f"{loss:>7g}{jitter:>10g}"
                for ecm in (True, False):
                    for engine in engines:
                        row += f"{cell(results[(engine, family, ecm, loss, jitter)]):>16}"
                print(row)
    print()
    for engine in engines:
        outs = [o for k, v in results.items() if k[0] == engine for o in v]
        n = len(outs)
        kinds = {k: sum(o.kind == k for o in outs) for k in ("ok", "flagged", "WRONG", "failed")}
        fallbacks = sum(1 for k, v in results.items() if k[0] == engine for o in v
                        if o.kind == "ok" and o.rate != (14400 if k[1] == "V.17" else 9600))
        late = sum(o.late for o in outs)
        print(f"{engine}: {n} calls: ok {kinds['ok']}, flagged {kinds['flagged']}, WRONG {kinds['WRONG']}, "
              f"failed {kinds['failed']}; ok at a lower rate (fallback) {fallbacks}; late packets "
              f"dropped {late}; CPU {cpu[engine]:.1f} s")
        whys = defaultdict(int)
        for o in outs:
            if o.why:
                whys[o.why] += 1
        if whys:
            print("  sender's reason when it failed: " + ", ".join(
                f"{k} {v}" for k, v in sorted(whys.items(), key=lambda kv: -kv[1])))
    print(f"wall time {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
