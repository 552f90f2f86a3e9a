"""The fast conversion paths give the pictures the plain ones would.

PDF pages are drawn by pdfium straight at the fax's non-square size (no resampling
pass); histograms are counted from the non-white pixels only; JPEGs are decoded in
grey and DCT-scaled. Each is checked here against the slower, obvious way.
"""
from __future__ import annotations

import functools
import io

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from xmfax import document
from xmfax.document.raster import _surely_not_photo, bilevel, grey_histogram, is_photo, otsu_threshold
from xmfax.page import Resolution

from docsamples import pdf_bytes, text_image, to_bytes


# --------------------------------------------------------------------------- histograms
@st.composite
def grey_pages(draw):
    """Small grey arrays, mostly paper (255) or not, so both histogram paths are taken."""
    rows = draw(st.integers(1, 40))
    width = draw(st.integers(1, 40))
    ink = draw(arrays(np.uint8, (rows, width)))
    paper_share = draw(st.sampled_from([0.0, 0.5, 0.9, 1.0]))
    keep = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).random((rows, width)) >= paper_share
    return np.where(keep, ink, np.uint8(255))


@settings(max_examples=150, deadline=None)
@given(grey_pages())
def test_histogram_is_exact(grey):
    expected = np.asarray(Image.fromarray(grey, "L").histogram(), dtype=np.int64)
    assert np.array_equal(grey_histogram(grey), expected)
    assert np.array_equal(grey_histogram(Image.fromarray(grey, "L")), expected)


@settings(max_examples=80, deadline=None)
@given(grey_pages())
def test_otsu_from_array_image_or_histogram_agree(grey):
    t = otsu_threshold(Image.fromarray(grey, "L"))
    assert otsu_threshold(grey) == t
    assert otsu_threshold(hist=grey_histogram(grey)) == t
    assert np.array_equal(bilevel(grey, "threshold"), grey < t)
    assert np.array_equal(bilevel(grey, "threshold"), bilevel(Image.fromarray(grey, "L"), "threshold"))


def test_is_photo_takes_arrays_and_images_alike():
    text = text_image((1728, 2300))
    assert not is_photo(text) and not is_photo(np.asarray(text))
    y, x = np.mgrid[0:2000, 0:1500]
    tone = (128 + 100 * np.sin(x / 50.0) * np.cos(y / 40.0)).astype(np.uint8)
    assert is_photo(tone) and is_photo(Image.fromarray(tone))


@st.composite
def inked_pages(draw):
    """Grey arrays from blank to dark, ink in dots, blocks and lines with soft edges."""
    rows, width = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    grey = np.full((rows, width), 255, dtype=np.uint8)
    for _ in range(draw(st.integers(0, 30))):
        r, c = rng.integers(0, rows), rng.integers(0, width)
        grey[r:r + rng.integers(1, 8), c:c + rng.integers(1, 8)] = rng.integers(0, 256)
    return grey


def _edge_column() -> np.ndarray:
    grey = np.full((4, 9), 255, dtype=np.uint8)
    grey[:, 8] = 200                      # a light edge column: a part block, mid-tone once reduced
    return grey


@settings(max_examples=300, deadline=None)
@given(inked_pages(), st.integers(1, 7))
@example(_edge_column(), 4)
def test_not_photo_proof_holds(grey, factor):
    """Whenever the histogram bound says "not a photo", the reduced copy agrees."""
    factor = min(factor, *grey.shape)
    if _surely_not_photo(grey_histogram(grey), grey.shape[1], grey.shape[0], factor):
        small = np.asarray(Image.fromarray(grey, "L").reduce(factor))
        assert ((small >= 48) & (small < 208)).mean() <= 0.20


@pytest.mark.parametrize("kind", ["text", "dense", "tone", "blank"])
def test_is_photo_with_histogram_decides_as_without(kind):
    y, x = np.mgrid[0:2349, 0:1728]
    grey = {
        "text": np.asarray(text_image((1728, 2349))),
        "dense": np.where((x // 3 + y // 5) % 3 == 0, 0, 255).astype(np.uint8),     # heavy hatching
        "tone": (128 + 100 * np.sin(x / 50.0) * np.cos(y / 40.0)).astype(np.uint8),
        "blank": np.full((2349, 1728), 255, dtype=np.uint8),
    }[kind]
    assert is_photo(grey, hist=grey_histogram(grey)) == is_photo(grey) == (kind in ("dense", "tone"))


def test_dither_of_an_array():
    grey = np.full((64, 64), 128, dtype=np.uint8)
    assert abs(bilevel(grey, "dither").mean() - 0.5) < 0.03


# --------------------------------------------------------------------------- PDF geometry
def rect_pdf(size_pt=(595, 842), rect=(100, 200, 300, 150), rotate=0) -> bytes:
    """One page with one black filled rectangle (x, y, w, h in points, PDF's y up)."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(*size_pt)
    obj = raw.FPDFPageObj_CreateNewRect(*rect)
    raw.FPDFPageObj_SetFillColor(obj, 0, 0, 0, 255)
    raw.FPDFPath_SetDrawMode(obj, raw.FPDF_FILLMODE_ALTERNATE, 0)
    raw.FPDFPage_InsertObject(page, obj)
    raw.FPDFPage_GenerateContent(page)
    if rotate:
        raw.FPDFPage_SetRotation(page, rotate // 90)
    page.close()
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()


def grow(image: np.ndarray) -> np.ndarray:
    """``image`` with every black pixel spread to its 8 neighbours."""
    p = np.pad(image, 1)
    h, w = image.shape
    return np.logical_or.reduce([p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)])


def bbox(image: np.ndarray) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the black pixels, inclusive."""
    r = np.nonzero(image.any(axis=1))[0]
    c = np.nonzero(image.any(axis=0))[0]
    return int(r[0]), int(r[-1]), int(c[0]), int(c[-1])


@pytest.mark.parametrize("res", [Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE, Resolution.R300])
def test_pdf_drawn_at_the_fax_grid(res):
    # a 300 x 150 pt rectangle, 100 pt from the left, its top 842 - 350 = 492 pt from the page top
    page = document.load(rect_pdf(), resolution=res.label, paper="a4")[0]
    width = res.widths["a4"]
    px_x = width / 595                                   # pixels per point across
    px_y = px_x * res.y_dpi / res.x_dpi                  # and down: the fax's own line pitch
    assert page.rows == round(842 * px_y)
    top, bottom, left, right = bbox(page.image)
    assert abs(left - 100 * px_x) <= 1 and abs(right + 1 - 400 * px_x) <= 1
    assert abs(top - 492 * px_y) <= 1 and abs(bottom + 1 - 642 * px_y) <= 1
    assert page.image[top:bottom + 1, left:right + 1].all()        # solid, no holes
    assert page.image.sum() == (bottom - top + 1) * (right - left + 1)


@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_pdf_page_rotation_as_pdfium_renders_it(rotate):
    import pypdfium2 as pdfium

    data = rect_pdf(size_pt=(400, 600), rect=(50, 400, 100, 60), rotate=rotate)
    page = document.load(data, resolution="200x200", paper="a4")[0]
    # the reference: pypdfium2's own render on a square grid at the same scale
    pdf = pdfium.PdfDocument(data)
    w_pt, h_pt = pdf[0].get_size()
    ref = pdf[0].render(scale=1728 / w_pt, grayscale=True).to_numpy() < 128
    pdf.close()
    assert (w_pt, h_pt) == ((600, 400) if rotate in (90, 270) else (400, 600))
    got, want = bbox(page.image), bbox(ref)
    assert all(abs(a - b) <= 1 for a, b in zip(got, want)), (got, want)


def test_pdf_text_page_close_to_the_square_render():
    """At a square resolution the direct draw is pypdfium2's ordinary render, thresholded."""
    import pypdfium2 as pdfium

    data = pdf_bytes(1)
    page = document.load(data, resolution="200x200", paper="a4")[0]
    pdf = pdfium.PdfDocument(data)
    grey = pdf[0].render(scale=1728 / 595, grayscale=True).to_numpy()
    pdf.close()
    ref = grey[:page.rows] < otsu_threshold(grey)
    assert ref.shape == page.image.shape
    # pdfium's square render is a fraction of a row taller (it rounds up): glyph edges
    # land a little differently, but no stroke moves by more than a pixel
    assert abs(int(page.image.sum()) - int(ref.sum())) < 0.03 * ref.sum()
    assert not (page.image & ~grow(ref)).any() and not (ref & ~grow(page.image)).any()
    assert page.info["bilevel"] == "threshold"


# --------------------------------------------------------------------------- JPEG draft decoding
@functools.lru_cache(maxsize=None)
def big_text(size: tuple[int, int]) -> Image.Image:
    return text_image(size).convert("RGB")


@functools.lru_cache(maxsize=None)
def phone_jpeg(size=(4032, 3024), dpi=(72, 72), orientation: int | None = None) -> bytes:
    img = big_text(size)
    kw = {"quality": 92, "dpi": dpi}
    if orientation:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kw["exif"] = exif.tobytes()
    return to_bytes(img, "JPEG", **kw)


def plain_decode(data: bytes, resolution: str = "fine", paper: str = "auto") -> np.ndarray:
    """The page without draft decoding: the JPEG decoded in full, then given to load() as BMP."""
    from PIL import ImageOps

    img = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    dpi = Image.open(io.BytesIO(data)).info.get("dpi")
    return document.load(to_bytes(img, "BMP", dpi=dpi), resolution=resolution, paper=paper)[0]


@pytest.mark.parametrize("orientation", [None, 6])
def test_jpeg_draft_decode_matches_a_full_decode(orientation):
    data = phone_jpeg(orientation=orientation)
    fast = document.load(data, resolution="fine")[0]
    slow = plain_decode(data)
    assert fast.image.shape == slow.image.shape
    if orientation == 6:                               # a quarter turn: the page is portrait
        assert fast.rows > fast.width
    assert (fast.image != slow.image).mean() < 0.005
    assert abs(int(fast.image.sum()) - int(slow.image.sum())) < 0.05 * slow.image.sum()


@pytest.mark.parametrize("size,dpi,paper", [((4032, 3024), (400, 400), "b4"),
                                            ((4032, 3024), (72, 72), "a4"), ((6000, 4000), (450, 450), "a3")])
def test_jpeg_draft_keeps_the_paper_chosen_from_the_original_size(size, dpi, paper):
    # 4032 px across: 341 mm at 300 dpi (A3), 256 mm at 400 dpi (B4); 72 dpi says nothing (A4).
    # 6000 px at 450 dpi (338 mm, A3) is decoded at half size: 3000 px must still mean 338 mm
    data = phone_jpeg(size, dpi=dpi)
    fast = document.load(data, resolution="fine")[0]
    slow = plain_decode(data)
    assert fast.info["paper"] == slow.info["paper"] == paper
    assert fast.image.shape == slow.image.shape
    assert (fast.image != slow.image).mean() < 0.005


def test_small_jpeg_is_not_reduced():
    data = to_bytes(text_image((1275, 1650)).convert("RGB"), "JPEG", quality=92, dpi=(150, 150))
    fast = document.load(data, resolution="fine")[0]
    slow = plain_decode(data)
    assert fast.image.shape == slow.image.shape
    assert (fast.image != slow.image).mean() < 0.002
