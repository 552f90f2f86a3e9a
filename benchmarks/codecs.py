"""Codec speed: xmfax's C backend beside libtiff, the same work on both sides, ms per page.

Pages: the ITU T.24 pages (../shared/corpus/itu/itu1..8.pbm, 1728 x 2376; skipped with a
message when absent) and a dithered page (the worst case: runs of 1-3 pels), each coded
with MH, MR (K = 4) and MMR, as libtiff codes a one-strip TIFF (G3 strips without RTC,
G4 strips with EOFB), so both sides produce the same bytes (checked: "same").

Two tables, each naming its pixel format:

* packed: 1 bit a pel, MSB first, 1 = black (what a TIFF strip and a fax engine's page
  buffer hold). xmfax: ``codecs.encode(packed, codec, width=1728, packed=True)`` and
  ``codecs.decode(data, 1728, codec, packed=True)``; libtiff: TIFFWriteEncodedStrip and
  TIFFReadEncodedStrip on packed rows.
* bytes: 1 byte a pel. xmfax: numpy bool arrays in and out (``encode(img)``,
  ``decode(data).image``); libtiff: the same packed calls plus a plain C loop packing its
  input / unpacking its output, inside its timer.

libtiff runs in benchmarks/libtiff_harness.c, compiled here with the system compiler
against libtiff-dev (``cc -O2 ... -ltiff``) into a temporary directory: the TIFF is in
memory behind TIFFClientOpen (no file I/O), and the harness times its own calls with
clock_gettime(CLOCK_PROCESS_CPUTIME_ID). xmfax is timed with time.process_time around
one public-API call (argument checks, the Python wrapper and the output array included).
Every figure is the median of --runs single-call timings (process CPU time, taken in this
one run, xmfax and libtiff alternating in 3 rounds per page and codec); ratio = libtiff's
time / xmfax's (> 1: xmfax is faster). The last lines give the median of the per-page
ratios. The process runs with OPENBLAS_NUM_THREADS=1 (unless set): numpy's idle BLAS
threads would otherwise add to xmfax's process CPU time.

Usage: python benchmarks/codecs.py [--runs N] [--pages itu1,dither] [--python]
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
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # no idle BLAS threads in the process CPU time
import numpy as np  # noqa: E402

from xmfax import codecs  # noqa: E402

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("XMFAX_SHARED") or HERE.parents[1] / "shared")  # ../shared beside the checkout
ITU = SHARED / "corpus/itu"
CODECS = ("mh", "mr", "mmr")
K = 4            # libtiff's K at YResolution 196 dpi
WIDTH = 1728
ROUNDS = 3       # xmfax and libtiff alternate this many times per page and codec


def load_pages(only: set[str] | None) -> list[tuple[str, np.ndarray]]:
    pages = []
    if not ITU.is_dir():
        print(f"ITU T.24 pages skipped: {ITU} not present (the shared corpus is absent)")
    else:
        from PIL import Image
        for n in range(1, 9):
            path = ITU / f"itu{n}.pbm"
            if path.exists() and (only is None or f"itu{n}" in only):
                with Image.open(path) as im:
                    pages.append((f"itu{n}", ~np.asarray(im.convert("1"), dtype=bool)))
    if only is None or "dither" in only:
        rng = np.random.default_rng(7)
        grad = np.linspace(0.1, 0.9, WIDTH)[None, :] * np.ones((2376, 1))
        pages.append(("dither", rng.random((2376, WIDTH)) < grad))
    return pages


def cpu_times(fn, runs: int) -> list[float]:
    """Process CPU seconds of each of `runs` calls of fn()."""
    times = []
    for _ in range(runs):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return times


def cpu_median(fn, runs: int) -> float:
    """Median process CPU time of fn() over `runs` calls, in ms."""
    return statistics.median(cpu_times(fn, runs)) * 1e3


# --- libtiff through the C harness -----------------------------------------------------------

class Harness:
    """benchmarks/libtiff_harness.c, compiled into `tmp`."""

    def __init__(self, tmp: str):
        self.tmp = tmp
        cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
        if not cc:
            raise RuntimeError("no C compiler (cc) to build the libtiff harness")
        flags = ["-ltiff"]
        try:
            flags = subprocess.run(["pkg-config", "--cflags", "--libs", "libtiff-4"], check=True,
                                   capture_output=True, text=True).stdout.split() or flags
        except (OSError, subprocess.CalledProcessError):
            pass
        self.exe = os.path.join(tmp, "libtiff_harness")
        try:
            res = subprocess.run([cc, "-O2", "-std=c99", "-o", self.exe,
                                  str(HERE / "libtiff_harness.c"), *flags],
                                 capture_output=True, text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise RuntimeError(f"cannot run the C compiler {cc}: {exc}") from exc
        if res.returncode:
            raise RuntimeError("cannot build the libtiff harness (libtiff-dev missing?): "
                               + (res.stderr.strip().splitlines() or ["?"])[-1])

    def run(self, mode: str, codec: str, rows: int, data: bytes,
            runs: int) -> tuple[list[float], bytes]:
        """CPU seconds of each of `runs` timed calls, and the last call's output."""
        src, dst = os.path.join(self.tmp, "in"), os.path.join(self.tmp, "out")
        Path(src).write_bytes(data)
        res = subprocess.run([self.exe, mode, codec, str(WIDTH), str(rows), str(runs), src, dst],
                             capture_output=True, text=True, timeout=300)
        if res.returncode:
            raise RuntimeError(f"libtiff harness {mode} {codec}: {res.stderr.strip()}")
        return [float(v) for v in res.stdout.split()], Path(dst).read_bytes()


# --- the tables -----------------------------------------------------------------------------

def table(title: str, rows: list[dict], py: bool) -> None:
    head = (f"{'page':7} {'codec':5} {'bytes':>7} | {'xm enc':>6} {'tiff enc':>8} {'ratio':>5} | "
            f"{'xm dec':>6} {'tiff dec':>8} {'ratio':>5}" + (f" | {'py enc':>7} {'py dec':>7}" if py else "")
            + "  same")
    print()
    print(title)
    print(head)
    print("-" * len(head))
    for r in rows:
        line = (f"{r['page']:7} {r['codec']:5} {r['bytes']:7d} | {r['xe']:6.2f} {r['te']:8.2f} "
                f"{r['te'] / r['xe']:5.2f} | {r['xd']:6.2f} {r['td']:8.2f} {r['td'] / r['xd']:5.2f}")
        if py:
            line += f" | {r['pe']:7.1f} {r['pd']:7.1f}"
        print(line + f"  {r['same']}")
    print("-" * len(head))
    med = {k: statistics.median(r[k] for r in rows) for k in ("xe", "te", "xd", "td")}
    enc = statistics.median(r["te"] / r["xe"] for r in rows)
    dec = statistics.median(r["td"] / r["xd"] for r in rows)
    line = (f"{'median':7} {'all':5} {'':7} | {med['xe']:6.2f} {med['te']:8.2f} {enc:5.2f} | "
            f"{med['xd']:6.2f} {med['td']:8.2f} {dec:5.2f}")
    if py:
        line += (f" | {statistics.median(r['pe'] for r in rows):7.1f}"
                 f" {statistics.median(r['pd'] for r in rows):7.1f}")
    print(line)
    print(f"median of the per-page ratios (libtiff / xmfax): encode x{enc:.2f}, decode x{dec:.2f}")
    dither = [r for r in rows if r["page"] == "dither"]
    if dither:
        print("dithered page, libtiff / xmfax: " + ", ".join(
            f"{r['codec']} encode x{r['te'] / r['xe']:.2f} decode x{r['td'] / r['xd']:.2f}" for r in dither))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="median of this many timed calls (default 15)")
    ap.add_argument("--pages", help="comma-separated subset, e.g. itu1,itu4,dither")
    ap.add_argument("--python", action="store_true", help="add the pure-Python backend (1 call each)")
    args = ap.parse_args()
    if "c" not in codecs.available_backends():
        sys.exit("the xmfax C backend is not built: nothing to compare with libtiff")
    pages = load_pages(set(args.pages.split(",")) if args.pages else None)
    tmp = tempfile.mkdtemp(prefix="xmfax-codecs-")
    try:
        try:
            tiff: Harness | None = Harness(tmp)
        except RuntimeError as exc:
            tiff = None
            print(f"libtiff columns skipped: {exc}")
        print(f"xmfax C backend against libtiff {'(in memory, C harness)' if tiff else '(absent)'}; "
              f"median of {args.runs} calls, process CPU ms per page, one run")
        packed_rows, byte_rows = [], []
        for name, img in pages:
            rows = img.shape[0]
            packed = np.packbits(img, axis=1)
            for codec in CODECS:
                opts = dict(k=K, rtc=codec == "mmr", impl="c")
                data = codecs.encode(packed, codec, width=WIDTH, packed=True, **opts)
                assert data == codecs.encode(img, codec, **opts), (name, codec)
                got = codecs.decode(data, WIDTH, codec, packed=True, impl="c").image
                assert np.array_equal(got, packed), (name, codec)
                fmt_in = {"packed": packed, "bytes": img}
                xm = {
                    ("packed", "e"): lambda: codecs.encode(packed, codec, width=WIDTH, packed=True, **opts),
                    ("packed", "d"): lambda: codecs.decode(data, WIDTH, codec, packed=True, impl="c"),
                    ("bytes", "e"): lambda: codecs.encode(img, codec, **opts),
                    ("bytes", "d"): lambda: codecs.decode(data, WIDTH, codec, impl="c"),
                }
                # xmfax and libtiff take turns, a few calls each, so that load from
                # elsewhere on the machine falls on both sides alike
                times: dict[tuple[str, str, str], list[float]] = {}
                outs: dict[tuple[str, str], bytes] = {}
                per_round = max(1, -(-args.runs // ROUNDS))
                for _ in range(ROUNDS):
                    for (fmt, op), fn in xm.items():
                        times.setdefault(("xm", fmt, op), []).extend(cpu_times(fn, per_round))
                        if tiff:
                            src = data if op == "d" else fmt_in[fmt].view(np.uint8).tobytes()
                            mode = ("enc-" if op == "e" else "dec-") + fmt
                            got_times, outs[fmt, op] = tiff.run(mode, codec, rows, src, per_round)
                            times.setdefault(("tiff", fmt, op), []).extend(got_times)
                med = {key: statistics.median(v) * 1e3 for key, v in times.items()}
                nan = float("nan")
                rec_p, rec_b = ({"page": name, "codec": codec, "bytes": len(data), "same": "-",
                                 "xe": med["xm", fmt, "e"], "xd": med["xm", fmt, "d"],
                                 "te": med.get(("tiff", fmt, "e"), nan),
                                 "td": med.get(("tiff", fmt, "d"), nan)}
                                for fmt in ("packed", "bytes"))
                if tiff:
                    for rec, fmt in ((rec_p, "packed"), (rec_b, "bytes")):
                        pels = fmt_in[fmt].view(np.uint8).tobytes()
                        same = outs[fmt, "e"] == data and outs[fmt, "d"] == pels
                        rec["same"] = "yes" if same else "NO"
                if args.python:
                    for rec, fmt in ((rec_p, True), (rec_b, False)):
                        src = packed if fmt else img
                        rec["pe"] = cpu_median(lambda: codecs.encode(src, codec, width=WIDTH, packed=fmt,
                                                                     k=K, rtc=codec == "mmr",
                                                                     impl="python"), 1)
                        rec["pd"] = cpu_median(lambda: codecs.decode(data, WIDTH, codec, packed=fmt,
                                                                     impl="python"), 1)
                packed_rows.append(rec_p)
                byte_rows.append(rec_b)
                print(f"  {name} {codec}: packed enc {rec_p['xe']:.2f}/{rec_p['te']:.2f} "
                      f"dec {rec_p['xd']:.2f}/{rec_p['td']:.2f} ms (xmfax/libtiff)", file=sys.stderr)
        table("PACKED: 1 bit/pel, MSB first, 1 = black, in and out, on both sides",
              packed_rows, args.python)
        table("BYTES: 1 byte/pel; xmfax numpy bool arrays; libtiff + a C pack (encode) / "
              "unpack (decode) loop in its timer", byte_rows, args.python)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
