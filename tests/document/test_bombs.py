"""Issue #10, finding 2: memory and time bombs inside the old per-page limits.

Each bomb is built at its real size (they are small files) and must be refused with a
DocumentError by the *default* limits, quickly and without allocating: tracemalloc's
peak during the call stays a few MB where the old code needed gigabytes. Scaled-down
limits then show each total at work on ordinary documents.
"""
from __future__ import annotations

import io
import tracemalloc

import numpy as np
import pytest

import hostile_files as H
from docsamples import fax_page, pdf_bytes, text_image, to_bytes
from xmfax import document
from xmfax.document import Budget, Limits
from xmfax.errors import DocumentError

PEAK_MB = 24          # far below one page of any of these bombs (a 1728x20000 page is 35 MB)


def refused(data: bytes, match: str, **kw) -> DocumentError:
    """Load ``data``; it must raise DocumentError matching ``match`` with a small memory peak."""
    tracemalloc.start()
    try:
        with pytest.raises(DocumentError, match=match) as exc:
            document.load(data, **kw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_MB * 2**20, f"peak {peak / 2**20:.0f} MB"
    return exc.value


def test_thousand_tall_tiff_pages():
    data = H.many_pages_tiff(1000, 1728, 20000)             # 34.6 G pixels in ~160 KB
    assert len(data) < 200_000
    refused(data, "source pixels in all exceeds")


def test_thousand_wide_white_mmr_pages():
    data = H.many_pages_tiff(1000, 16384, 9155)              # ~500 s of decoding before
    refused(data, "source pixels in all exceeds")


def test_thousand_tall_pdf_pages():
    data = H.tall_pdf(1000)
    assert len(data) < 150_000
    refused(data, "pixels in all exceeds")
    small = H.pdf(200, 595, 4800)                            # like tall200.pdf: 6.3 GB before
    refused(small, "pixels in all exceeds")


def test_overlapping_strips():
    refused(H.overlapping_strips_tiff(60_000), "strips overlap")


def test_one_line_text():
    exc = refused(H.long_line_text(50_000_000), "exceeds the limit")
    assert "characters" in str(exc)
    refused(H.long_line_text(300_000), "line of 300000 characters", limits=Limits(max_text_chars=10**6))


def test_rgba16_png():
    refused(H.rgba16_png(), "MiB decoded, over the limit")


def test_pages_are_counted_across_inputs_with_a_shared_budget():
    budget = Budget(Limits(max_total_pixels=1728 * 400 * 3))
    tif = io.BytesIO()
    document.save([fax_page(rows=400, seed=s) for s in range(2)], tif, format="tiff")
    assert len(document.load(tif.getvalue(), budget=budget)) == 2
    with pytest.raises(DocumentError, match="fax pixels in all"):
        document.load(tif.getvalue(), budget=budget)          # 4 pages of 400 rows in all: too many


def test_declared_sizes_refused_before_the_first_page():
    """A TIFF whose pages add up past the total is refused before page 1 is decoded."""
    data = H.many_pages_tiff(30, 1728, 2000)
    pages = document.iter_pages(data, limits=Limits(max_total_source_pixels=1728 * 2000 * 29))
    with pytest.raises(DocumentError, match="source pixels"):
        next(pages)


def test_iter_pages_streams():
    tif = io.BytesIO()
    src = [fax_page(rows=100, seed=s) for s in range(5)]
    document.save(src, tif, format="tiff")
    it = document.iter_pages(tif.getvalue())
    first = next(it)
    assert np.array_equal(first.image, src[0].image)
    rest = list(it)
    assert len(rest) == 4 and all(np.array_equal(a.image, b.image) for a, b in zip(rest, src[1:]))


class FakeClock:
    def __init__(self, step: float):
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


@pytest.mark.parametrize("kind", ["tiff", "pdf", "text", "image"])
def test_time_budget(kind):
    if kind == "tiff":
        buf = io.BytesIO()
        document.save([fax_page(rows=50, seed=s) for s in range(6)], buf, format="tiff")
        data = buf.getvalue()
    elif kind == "pdf":
        data = pdf_bytes(4)
    elif kind == "text":
        data = b"line\n" * 200                               # four pages
    else:
        data = to_bytes(text_image(size=(300, 200)), "PNG")
    limits = Limits(max_seconds=10)
    with pytest.raises(DocumentError, match="time limit of 10 s"):
        document.load(data, limits=limits, clock=FakeClock(4.0))
    assert document.load(data, limits=limits, clock=FakeClock(0.001))      # within budget: loads
    assert document.load(data, limits=Limits(max_seconds=None), clock=FakeClock(100))


def test_default_limits_keep_real_documents():
    """The defaults leave ordinary faxes alone: 60 fine A4 pages, a 20-page PDF, a long letter."""
    tif = io.BytesIO()
    page = fax_page(rows=2200, seed=3)
    document.save([page] * 60, tif, format="tiff", codec="mmr")
    assert len(list(document.iter_pages(tif.getvalue()))) == 60
    assert len(document.load(H.pdf(20))) == 20
    assert len(document.load(b"Dear reader,\n" + b"a fairly long line of text " * 30 + b"\n" * 200)) >= 1


def test_all_bombs_in_a_fresh_process_stay_small():
    """Peak RSS (which also sees Pillow's and pdfium's own memory) grows by little over the imports."""
    import subprocess
    import sys
    from pathlib import Path

    script = """
import resource, sys, time
import hostile_files as H
from xmfax import document
from xmfax.errors import DocumentError
import PIL.Image, pypdfium2, numpy
bombs = [H.many_pages_tiff(1000, 1728, 20000), H.many_pages_tiff(1000, 16384, 9155), H.tall_pdf(1000),
         H.overlapping_strips_tiff(60000), H.rgba16_png(), H.forged_size_jpeg()]
document.load(H.pdf(1))                                    # warm up every library once
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for data in bombs + [H.long_line_text(50_000_000)]:
    try:
        document.load(data, clock=time.monotonic)
        sys.exit("loaded a bomb")
    except DocumentError:
        pass
print(base, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                       cwd=Path(__file__).parent)
    assert r.returncode == 0, r.stderr
    base, peak = map(int, r.stdout.split())
    assert peak - base < 150 * 1024, f"peak RSS grew by {(peak - base) // 1024} MB"   # KiB on Linux
