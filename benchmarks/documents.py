"""PDF to TIFF Class F: xmfax vs Ghostscript's tiffg4 device, on the same 10-page PDF.

    python benchmarks/documents.py [--pages 10] [--resolution fine] [--repeat 3]

Builds a 10-page A4 text PDF (pypdfium2), then times, in this one run:
  xmfax.document.load + save (G4 and MH) and `gs -sDEVICE=tiffg4 -r204x196`.
Prints pages/s (wall time, best of --repeat) for each and the ratio. Two more rows,
with no Ghostscript counterpart, show where xmfax's time goes and how scanned
pages fare: load alone (PDF drawn and made bilevel, nothing coded), and
--scans A4 text pages as 300 dpi RGB JPEGs (phone/scanner output) loaded and saved.
Compare ratios within one run: the machine may be shared and its speed vary.

    python benchmarks/documents.py --bombs

instead times the refusal of each hostile file of issue #10 (tests/document/hostile_files.py)
by the default limits: seconds and Python's traced peak memory (tracemalloc; numpy
buffers included, Pillow's and pdfium's own not) until the DocumentError.
"""
from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "document"))

from xmfax import codecs, document  # noqa: E402
from xmfax.page import Resolution  # noqa: E402


def make_pdf(pages: int) -> bytes:
    from conftest import pdf_bytes

    return pdf_bytes(pages)


def time_xmfax(pdf: bytes, resolution: str, codec: str, repeat: int) -> tuple[float, int]:
    best = float("inf")
    size = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        pages = document.load(pdf, resolution=resolution, paper="a4")
        buf = io.BytesIO()
        document.save(pages, buf, format="tiff", codec=codec)
        best = min(best, time.perf_counter() - t0)
        size = len(buf.getvalue())
    return best, size


def time_load(pdf: bytes, resolution: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        document.load(pdf, resolution=resolution, paper="a4")
        best = min(best, time.perf_counter() - t0)
    return best


def make_scans(pages: int) -> list[bytes]:
    """``pages`` A4 text pages at 300 dpi as RGB JPEGs (quality 90)."""
    from conftest import text_image, to_bytes

    img = text_image((2480, 3508)).convert("RGB")
    return [to_bytes(img, "JPEG", quality=90, dpi=(300, 300))] * pages


def time_scans(scans: list[bytes], resolution: str, repeat: int) -> tuple[float, int]:
    best = float("inf")
    size = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        pages = []
        for data in scans:
            pages += document.load(data, resolution=resolution, paper="a4", start_count=len(pages))
        buf = io.BytesIO()
        document.save(pages, buf, format="tiff", codec="mmr")
        best = min(best, time.perf_counter() - t0)
        size = len(buf.getvalue())
    return best, size


def time_gs(pdf_path: str, out: str, res: Resolution, repeat: int) -> tuple[float, int] | None:
    gs = shutil.which("gs")
    if not gs:
        return None
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([gs, "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", "-sDEVICE=tiffg4",
                        f"-r{res.x_dpi}x{res.y_dpi}", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dPDFFitPage",
                        f"-sOutputFile={out}", pdf_path], check=True)
        best = min(best, time.perf_counter() - t0)       # wall time, gs start-up included
    return best, os.path.getsize(out)


def bombs() -> None:
    import tracemalloc

    import hostile_files as H

    from xmfax.errors import DocumentError

    cases = [
        ("1,000 tall TIFF pages (1728x20000 G4)", lambda: H.many_pages_tiff(1000, 1728, 20000)),
        ("1,000 wide white MMR pages (16384x9155)", lambda: H.many_pages_tiff(1000, 16384, 9155)),
        ("1,000 tall PDF pages", lambda: H.tall_pdf(1000)),
        ("200 tall PDF pages (tall200.pdf)", lambda: H.pdf(200, 595, 4800)),
        ("60,000 strips over the whole file", lambda: H.overlapping_strips_tiff(60_000)),
        ("one-line 50 MB text", lambda: H.long_line_text(50_000_000)),
        ("16384x9155 RGBA16 PNG", H.rgba16_png),
        ("JPEG claiming 16000x9000 in 335 bytes", H.forged_size_jpeg),
        ("G4 strip of random bytes", lambda: H.random_strip_tiff(4)),
    ]
    print(f"{'hostile file':<44} {'bytes':>9} {'seconds':>8} {'peak MB':>8}  outcome")
    for name, make in cases:
        data = make()
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            document.load(data, clock=time.monotonic)
            outcome = "LOADED (not refused)"
        except DocumentError as exc:
            outcome = "refused: " + exc.reason[:60]
        t = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{name:<44} {len(data):9d} {t:8.3f} {peak:8.1f}  {outcome}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=10)
    ap.add_argument("--resolution", default="fine")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--scans", type=int, default=3, help="300 dpi JPEG pages for the scan row (0: none)")
    ap.add_argument("--bombs", action="store_true", help="time the refusal of each hostile file of issue #10")
    args = ap.parse_args()
    if args.bombs:
        bombs()
        return
    res = Resolution.from_name(args.resolution)
    pdf = make_pdf(args.pages)
    with tempfile.TemporaryDirectory() as tmp:
        pdf_path = os.path.join(tmp, "in.pdf")
        with open(pdf_path, "wb") as f:
            f.write(pdf)
        rows = []
        for codec in ("mmr", "mh"):
            t, size = time_xmfax(pdf, args.resolution, codec, args.repeat)
            rows.append((f"xmfax load+save ({codec}, codecs={codecs.backend})", t, size))
        gs = time_gs(pdf_path, os.path.join(tmp, "gs.tif"), res, args.repeat)
        if gs:
            rows.append(("gs -sDEVICE=tiffg4", gs[0], gs[1]))
        extra = [("xmfax load only (no coding)", time_load(pdf, args.resolution, args.repeat), 0, args.pages)]
        if args.scans:
            t, size = time_scans(make_scans(args.scans), args.resolution, args.repeat)
            extra.append(("xmfax 300 dpi JPEG scans (mmr)", t, size, args.scans))
    print(f"{args.pages}-page A4 text PDF -> TIFF-F at {res.label} ({res.x_dpi}x{res.y_dpi}), best of {args.repeat}")
    print(f"{'converter':<44} {'seconds':>8} {'pages/s':>8} {'bytes':>9}")
    for name, t, size in rows:
        print(f"{name:<44} {t:8.3f} {args.pages / t:8.1f} {size:9d}")
    if gs:
        print(f"ratio xmfax(mmr) / gs pages/s: {gs[0] / rows[0][1]:.2f}  (>1: xmfax faster)")
    else:
        print("ghostscript (gs) not installed: no reference row")
    print("no reference (what the time is spent on; other inputs):")
    for name, t, size, n in extra:
        print(f"{name:<44} {t:8.3f} {n / t:8.1f} {size if size else '-':>9}")


if __name__ == "__main__":
    main()
