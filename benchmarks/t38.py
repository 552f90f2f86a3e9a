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

    python benchmarks/t38.py [--runs N] [--no-ecm] [--profile paced|unpaced]
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
def xmfax_call(pages, *, paced: bool, ecm: bool, udptl: bool, limit: float = 600.0) -> dict:
    """One call between two xmfax terminals in memory; CPU from building the sessions to the
    end of the call (the pump included: a few deque operations per packet)."""
    t0 = time.process_time()
    cfg = T38Config(paced=paced)
    a = T38Terminal(Session(T30Config(ecm=ecm), calling=True, pages=pages), cfg, udptl=udptl)
    b = T38Terminal(Session(T30Config(ecm=ecm), calling=False, receive=True), cfg, udptl=udptl)
    ends = (a, b)
    queues = (deque(), deque())          # packets in flight to end 0, to end 1 (arrival, payload)
    take = [t.datagrams_to_send if udptl else t.packets_to_send for t in ends]
    now = 0.0
    a.start(now)
    b.start(now)
    packets = 0
    while not (a.done and b.done) and now < limit:
        for i in (0, 1):
            out = take[i]()
            if out:
                packets += len(out)
                q = queues[1 - i]
                at = now + DELAY
                q.extend((at, d) for d in out)
        ta, tb = a.next_timer(), b.next_timer()
        nxt = min((t for t in (ta, tb, queues[0][0][0] if queues[0] else None,
                               queues[1][0][0] if queues[1] else None) if t is not None), default=None)
        if nxt is None:
            break
        if nxt > now:
            now = nxt
        for i, t in enumerate(ends):
            q = queues[i]
            while q and q[0][0] <= now:
                d = q.popleft()[1]
                if udptl:
                    t.receive_datagram(d, now)
                else:
                    t.receive_ifp(d[1], now, seq=d[0])
            nt = t.next_timer()
            if nt is not None and nt <= now:
                t.handle_timer(now)
    cpu = time.process_time() - t0
    got = b.result.received_pages
    ok = (a.result.status == "success" and len(got) == len(pages)
          and all(np.array_equal(g.image, p.image) for g, p in zip(got, pages)))
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
    os.unlink(rx)
    return {"cpu": float(fields["cpu"]), "sim": float(fields["sim"]),
            "packets": int(fields["packets"]), "ok": ok}


# ---------------------------------------------------------------------------- main
KINDS = [  # (label, engine, udptl)
    ("spandsp, bare IFP", "spandsp", False),
    ("xmfax, bare IFP", "xmfax", False),
    ("xmfax, UDPTL red. 3", "xmfax", True),
]


def profile(pages, paced: bool, ecm: bool) -> None:
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    xmfax_call(pages, paced=paced, ecm=ecm, udptl=False)
    prof.disable()
    pstats.Stats(prof).sort_stats("tottime").print_stats(25)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7, help="calls of each kind (median shown)")
    ap.add_argument("--no-ecm", action="store_true")
    ap.add_argument("--profile", choices=("paced", "unpaced"),
                    help="profile one xmfax bare-IFP call instead of the benchmark")
    args = ap.parse_args()
    ecm = not args.no_ecm
    pages, what = load_pages()
    if args.profile:
        profile(pages, args.profile == "paced", ecm)
        return
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


if __name__ == "__main__":
    main()
