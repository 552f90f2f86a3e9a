"""CPU seconds per 3-page T.38 call (both ends), xmfax<->xmfax beside spandsp<->spandsp.

Engine against engine, measured in one run:
- spandsp: two t38_terminals joined in memory by a small C harness
  (benchmarks/spandsp_t38_pair.c, built here with the system compiler against libspandsp),
  timing its own CPU (CLOCK_PROCESS_CPUTIME_ID) per call: no Python, no ctypes. spandsp
  speaks bare IFP (UDPTL is the caller's), and its T.30 reads the pages from a TIFF (G4,
  written once before anything is timed, on a tmpfs) and writes what it receives to one.
- xmfax: two T38Terminals joined in memory by a minimal pump (no sockets), timed with
  time.process_time(). Bare IFP (``udptl=False``: sequence numbers only), the like-for-like
  figure, and beside it UDPTL with redundancy 3 (the default T38Config), labelled.
Both: V.17 14400, ECM (T.6 chosen by both), transferredTCF, a 20 ms one-way delay (spandsp is
ticked every 20 ms of simulated time and a packet reaches the other end at the next tick, 0-20
ms later; the xmfax terminals are woken at their own timers, packets arriving 20 ms after they
are sent). Paced (packets when a modem would send them) and unpaced (everything at once).
The runs are interleaved (one call of each kind per round) and the table shows medians; the
received pages are compared with the sent ones, pixel for pixel, outside the timer.
Pages: the ITU T.24 test pages itu1-3 (1728x2376, fine) from ../shared/corpus/itu when
present, else synthetic pages.

    python benchmarks/t38.py [--runs N] [--no-ecm] [--no-breakdown]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

from xmfax.page import Page, Resolution  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402

CORPUS = os.path.join(ROOT, "..", "shared", "corpus", "itu")
HARNESS = os.path.join(HERE, "spandsp_t38_pair.c")
DELAY = 0.020


def load_pages() -> tuple[list[Page], str]:
    from PIL import Image

    paths = [os.path.join(CORPUS, f"itu{i}.pbm") for i in (1, 2, 3)]
    if all(os.path.exists(p) for p in paths):
        pages = []
        for p in paths:
            with Image.open(p) as im:
                pages.append(Page(~np.array(im.convert("1"), dtype=bool), Resolution.FINE, source=p))
        return pages, "ITU itu1-3"
    rng = np.random.default_rng(1)
    pages = []
    for k in range(3):
        img = np.zeros((2376, 1728), bool)
        for r in range(0, 2370, 12):
            for _ in range(20):
                c = int(rng.integers(0, 1700))
                img[r:r + 8, c:c + int(rng.integers(2, 25))] = True
        pages.append(Page(img, Resolution.FINE, source=f"synthetic {k}"))
    return pages, "synthetic text-like (corpus absent)"


# ---------------------------------------------------------------------------- xmfax
def xmfax_call(pages, *, paced: bool, ecm: bool, udptl: bool, limit: float = 600.0,
               check: bool = True) -> dict:
    """One call between two xmfax terminals in memory; CPU from building the sessions to the
    end of the call (the pump included: a few deque operations per packet)."""
    t0 = time.process_time()
    cfg = T38Config(paced=paced)
    a = T38Terminal(Session(T30Config(ecm=ecm), calling=True, pages=pages), cfg, udptl=udptl)
    b = T38Terminal(Session(T30Config(ecm=ecm), calling=False, receive=True), cfg, udptl=udptl)
    to_a: deque = deque()                 # packets in flight: (arrival time, payload)
    to_b: deque = deque()
    ends = ((a, to_a, to_b, a.datagrams_to_send if udptl else a.packets_to_send),
            (b, to_b, to_a, b.datagrams_to_send if udptl else b.packets_to_send))
    now = 0.0
    packets = 0
    for term, _, out_q, take in ends:
        term.start(now)
        out = take()
        packets += len(out)
        out_q.extend([(now + DELAY, d) for d in out])
    # the loop is written for speed: it is timed with the engines (spandsp's is C). Each
    # step goes to the earliest of the ends' timers and the packets' arrivals, and asks an
    # end for packets only when it was called. It ends when neither end has anything left
    # to do (a.done and b.done are checked after).
    while now < limit:
        nxt = a.next_timer()
        t = b.next_timer()
        if t is not None and (nxt is None or t < nxt):
            nxt = t
        if to_a and (nxt is None or to_a[0][0] < nxt):
            nxt = to_a[0][0]
        if to_b and (nxt is None or to_b[0][0] < nxt):
            nxt = to_b[0][0]
        if nxt is None:
            break
        if nxt > now:
            now = nxt
        for term, in_q, out_q, take in ends:
            called = False
            while in_q and in_q[0][0] <= now:
                d = in_q.popleft()[1]
                if udptl:
                    term.receive_datagram(d, now)
                else:
                    term.receive_ifp(d[1], now, d[0])
                called = True
            t = term.next_timer()
            if t is not None and t <= now:
                term.handle_timer(now)
                called = True
            if called:
                out = take()
                if out:
                    packets += len(out)
                    at = now + DELAY
                    out_q.extend([(at, d) for d in out])
    cpu = time.process_time() - t0
    got = b.result.received_pages
    ok = (a.done and b.done and a.result.status == "success" and len(got) == len(pages)
          and (not check or all(np.array_equal(g.image, p.image) for g, p in zip(got, pages))))
    return {"cpu": cpu, "sim": now, "packets": packets, "ok": ok}


# ---------------------------------------------------------------------------- spandsp
def build_harness(workdir: str) -> tuple[str | None, str]:
    """Compile spandsp_t38_pair.c; (path, "") or (None, why not)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    exe = os.path.join(workdir, "spandsp_t38_pair")
    proc = subprocess.run([cc, "-O2", "-o", exe, HARNESS, "-lspandsp", "-ltiff", "-lm"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode:
        return None, f"build failed (libspandsp-dev installed?): {proc.stderr.strip()[:300]}"
    return exe, ""


def write_tiff(pages, path: str) -> None:
    from PIL import Image

    frames = [Image.fromarray(~p.image).convert("1") for p in pages]
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:], dpi=(204, 196))


def read_tiff(path: str) -> list[np.ndarray]:
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return [~np.array(f.convert("1"), dtype=bool) for f in ImageSequence.Iterator(im)]


def spandsp_call(exe: str, tiff: str, rxdir: str, pages, *, paced: bool, ecm: bool) -> dict:
    proc = subprocess.run([exe, tiff, rxdir, str(int(paced)), str(int(ecm)), "1"],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(f"spandsp harness failed: {proc.stderr.strip()[:300]}")
    fields = dict(kv.split("=") for kv in proc.stdout.split())
    rx = os.path.join(rxdir, "rx0.tif")
    ok = fields["ok"] == "1" and int(fields["pages"]) == len(pages)
    if ok:
        got = read_tiff(rx)
        ok = len(got) == len(pages) and all(np.array_equal(g, p.image) for g, p in zip(got, pages))
    if os.path.exists(rx):
        os.unlink(rx)
    return {"cpu": float(fields["cpu"]), "sim": float(fields["sim"]),
            "packets": int(fields["packets"]), "ok": ok}


# ---------------------------------------------------------------------------- main
KINDS = [  # (label, engine, udptl)
    ("spandsp, bare IFP", "spandsp", False),
    ("xmfax, bare IFP", "xmfax", False),
    ("xmfax, UDPTL red. 3", "xmfax", True),
]


COMPONENTS = [  # (label, path fragment of the code it covers)
    ("the pump (this file)", "benchmarks/"),
    ("T38Terminal: pacing, IFP <-> modem events", "xmfax/t38/terminal"),
    ("IFP encode/decode", "xmfax/t38/ifp"),
    ("UDPTL pack/receive", "xmfax/t38/udptl"),
    ("T.30 session, ECM, frames", "xmfax/t30/"),
    ("T.4/T.6 codecs (C) and pages", "xmfax/codecs"),
]


def where_time_goes(pages, paced: bool, ecm: bool, udptl: bool, runs: int = 3) -> list[tuple[str, float]]:
    """Shares of one xmfax call's CPU by component, from cProfile (own time; a C builtin's
    time goes to the component that called it most). cProfile adds a cost per Python call,
    so the shares lean towards code making many small calls: a guide, not a measurement."""
    import cProfile
    import pstats

    totals: dict[str, float] = {}
    for _ in range(runs):
        prof = cProfile.Profile()
        prof.enable()
        xmfax_call(pages, paced=paced, ecm=ecm, udptl=udptl, check=False)
        prof.disable()
        for (path, _line, name), (_cc, _nc, tt, _ct, callers) in pstats.Stats(prof).stats.items():
            if path == "~" and callers:
                path = max(callers.items(), key=lambda kv: kv[1][2])[0][0]
            label = next((lab for lab, frag in COMPONENTS if frag in path.replace(os.sep, "/")), None)
            if label is None and "_native" in name:
                label = COMPONENTS[-1][0]
            label = label or "other (numpy, enum, Python runtime)"
            totals[label] = totals.get(label, 0.0) + tt
    whole = sum(totals.values())
    return sorted(((k, v / whole) for k, v in totals.items()), key=lambda kv: -kv[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="calls of each kind (median shown)")
    ap.add_argument("--no-ecm", action="store_true")
    ap.add_argument("--no-breakdown", action="store_true",
                    help="skip the table of where xmfax's time goes (cProfile)")
    args = ap.parse_args()
    ecm = not args.no_ecm
    pages, what = load_pages()
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results: dict[tuple[str, bool], list[dict]] = {}
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        exe, why = build_harness(tmp)
        tiff = os.path.join(tmp, "tx.tif")
        write_tiff(pages, tiff)
        for _ in range(args.runs):
            for paced in (True, False):
                for label, engine, udptl in KINDS:
                    if engine == "spandsp":
                        if exe is None:
                            continue
                        r = spandsp_call(exe, tiff, tmp, pages, paced=paced, ecm=ecm)
                    else:
                        r = xmfax_call(pages, paced=paced, ecm=ecm, udptl=udptl)
                    results.setdefault((label, paced), []).append(r)
    print(f"3-page T.38 call, both ends in one process, V.17 14400, ECM {'on' if ecm else 'off'}, "
          f"pages: {what}; median of {args.runs} interleaved runs, CPU s per call")
    if exe is None:
        print(f"spandsp not measured: {why}")
    print(f"{'pacing':<9}{'pair':<22}{'CPU s':>9}{'min':>9}{'max':>9}{'sim s':>8}{'packets':>9}"
          f"{'vs spandsp':>12}  pages identical")
    for paced in (True, False):
        base = results.get(("spandsp, bare IFP", paced))
        base_cpu = statistics.median(r["cpu"] for r in base) if base else None
        for label, _, _ in KINDS:
            rs = results.get((label, paced))
            if not rs:
                continue
            cpus = [r["cpu"] for r in rs]
            med = statistics.median(cpus)
            ratio = f"{med / base_cpu:>11.2f}x" if base_cpu else f"{'-':>12}"
            ok = sum(r["ok"] for r in rs)
            print(f"{'paced' if paced else 'unpaced':<9}{label:<22}{med:>9.4f}{min(cpus):>9.4f}"
                  f"{max(cpus):>9.4f}{statistics.median(r['sim'] for r in rs):>8.1f}"
                  f"{rs[0]['packets']:>9}{ratio}  {ok}/{len(rs)}")
    print("vs spandsp: xmfax CPU / spandsp CPU in this run (<= 1.00 is the target)")
    if args.no_breakdown:
        return
    print()
    print("where an xmfax call's CPU goes (cProfile shares, own time; a guide, not a measurement)")
    kinds = [(p, u) for p in (True, False) for u in (False, True)]
    shares = {k: dict(where_time_goes(pages, k[0], ecm, k[1])) for k in kinds}
    heads = [f"{'paced' if p else 'unpaced'}{', UDPTL' if u else ''}" for p, u in kinds]
    print(f"{'component':<44}" + "".join(f"{h:>16}" for h in heads))
    labels = [lab for lab, _ in COMPONENTS] + ["other (numpy, enum, Python runtime)"]
    for lab in labels:
        print(f"{lab:<44}" + "".join(f"{shares[k].get(lab, 0.0) * 100:>15.0f}%" for k in kinds))


if __name__ == "__main__":
    main()
