"""Paper geometry, scaling and bilevel conversion (numpy and Pillow; no pixel loops).

A fax scan line is a fixed number of pixels for a paper *width class* (T.4 §2.2:
1728 pels over 215 mm for A4, Letter and Legal at R8; 2048 for B4; 2432 for A3),
and fax pixels are not square at standard/fine/superfine resolution. Everything
here works on a grey Pillow image ("L") in source pixels and produces a numpy
bool array (True = black) in fax pixels.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from ..page import Resolution

# paper name -> (width class in Resolution.widths, physical length in mm)
PAPERS: dict[str, tuple[str, float]] = {
    "a4": ("a4", 297.0),
    "letter": ("a4", 279.4),
    "legal": ("a4", 355.6),
    "b4": ("b4", 364.0),
    "a3": ("a3", 420.0),
}
PAPER_NAMES = ("auto",) + tuple(PAPERS)
# physical scan-line width of each class, T.4 §2.2 (215 mm, 255 mm, 303 mm)
SCAN_WIDTH_MM = {"a4": 215.0, "b4": 255.0, "a3": 303.0}
BILEVEL_MODES = ("auto", "threshold", "dither")


def resolve_resolution(resolution: str | Resolution) -> Resolution:
    if isinstance(resolution, Resolution):
        return resolution
    return Resolution.from_name(str(resolution))


def paper_for_width(width_mm: float | None) -> str:
    """The smallest paper whose scan line holds a source ``width_mm`` wide (A4 when unknown)."""
    # A4 210 mm and Letter 215.9 mm on 1728 pels; 1728 pels at 200 dpi span 219.5 mm
    if width_mm is None or width_mm <= 220.0:
        return "a4"
    if width_mm <= 261.0:                       # B4 257 mm; 2048 pels at 200 dpi span 260.1 mm
        return "b4"
    return "a3"


def scan_width(resolution: Resolution, paper: str) -> int:
    """Pixels per scan line for ``paper`` at ``resolution`` (T.4 §2.2)."""
    return resolution.widths[PAPERS[paper][0]]


def page_rows(resolution: Resolution, paper: str) -> int:
    """Rows of a full page of ``paper`` at ``resolution``."""
    return int(round(PAPERS[paper][1] / 25.4 * resolution.y_dpi))


def fax_width_paper(width: int) -> tuple[str, set[Resolution]] | None:
    """The width class and x resolutions for which ``width`` is a standard fax scan line."""
    found: dict[str, set[Resolution]] = {}
    for r in Resolution:
        for cls, w in r.widths.items():
            if w == width:
                found.setdefault(cls, set()).add(r)
    if not found:
        return None
    cls = next(iter(found))
    return cls, found[cls]


# --------------------------------------------------------------------------- grey
def to_grey(img: Image.Image) -> Image.Image:
    """Any Pillow image as "L" (0 = black), transparency composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        arr = np.asarray(img, dtype=np.int64)
        top = 65535 if img.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255
        return Image.fromarray((np.clip(arr, 0, top) * 255 // top).astype(np.uint8), "L")
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("L")
    if img.mode == "CMYK":
        return img.convert("RGB").convert("L")
    if img.mode != "L":
        return img.convert("L")
    return img


Grey = Image.Image | np.ndarray          # "L" image, or uint8 array (rows, width), 0 = black

_PHOTO_SAMPLE_PIXELS = 250_000          # is_photo looks at a box-reduced copy about this size


def _as_image(grey: Grey) -> Image.Image:
    """A grey array as an "L" image (sharing its memory when Pillow can), or the image itself."""
    if isinstance(grey, Image.Image):
        return grey
    return Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8), "L")


def grey_histogram(grey: Grey) -> np.ndarray:
    """The exact 256-bin histogram of a grey image (int64).

    A document page is mostly paper: when most pixels are pure white (255) only the
    others are counted (a mask and a small bincount, several times cheaper than a
    full pass); otherwise Pillow's histogram does the full pass.
    """
    if isinstance(grey, np.ndarray) and grey.dtype == np.uint8 and grey.size:
        ink = grey[grey != 255]
        if ink.size * 4 < grey.size:
            hist = np.bincount(ink, minlength=256).astype(np.int64)
            hist[255] += grey.size - ink.size
            return hist
    return np.asarray(_as_image(grey).histogram()[:256], dtype=np.int64)


def is_photo(grey: Grey, *, hist: np.ndarray | None = None) -> bool:
    """True if ``grey`` looks like continuous tone (dither it) rather than text/line art.

    Text, line art and clean scans are mostly near-black or near-white, with grey
    only along edges; a photo has a large share of mid-tones (48..207) - over 20 %
    measured on a copy box-reduced by a whole factor to about 250,000 pixels
    (Pillow's ``reduce``). ``hist``, ``grey``'s exact histogram when already counted,
    often settles it without the reduced copy (see :func:`_surely_not_photo`).
    """
    img = _as_image(grey)
    pixels = img.width * img.height
    factor = 1
    if pixels > _PHOTO_SAMPLE_PIXELS:
        factor = min(math.ceil((pixels / _PHOTO_SAMPLE_PIXELS) ** 0.5), img.width, img.height)
    if hist is not None and (factor == 1 or _surely_not_photo(hist, img.width, img.height, factor)):
        small_hist = hist
    else:
        small_hist = (img.reduce(factor) if factor > 1 else img).histogram()
    small_hist = np.asarray(small_hist[:256], dtype=np.float64)
    total = small_hist.sum()
    if total == 0:
        return False
    mid = small_hist[48:208].sum() / total
    return bool(mid > 0.20)


def _surely_not_photo(hist: np.ndarray, width: int, height: int, factor: int) -> bool:
    """True when the full image's histogram alone proves the reduced copy has <= 20 % mid-tones.

    A whole f x f block reduces to its rounded mean, below 208 only if its pixels fall
    short of white (255) by more than 47.5 f^2 in all; so the page's total shortfall D
    allows at most D / (47.5 f^2) such blocks. Part blocks along the right and bottom
    edges are counted as mid-tone whatever they hold. A typical text page has a mean
    shortfall of a few levels and is settled here; False only means: look at the reduced copy.
    """
    levels = np.arange(256, dtype=np.float64)
    shortfall = float(np.dot(np.asarray(hist[:256], dtype=np.float64), 255.0 - levels))
    rw, rh = -(-width // factor), -(-height // factor)
    part = rw * rh - (width // factor) * (height // factor)
    return shortfall / (47.5 * factor * factor) + part <= 0.20 * rw * rh


def otsu_threshold(grey: Grey | None = None, *, hist: np.ndarray | None = None) -> int:
    """Otsu's threshold: the level that best splits ink from paper.

    From ``grey``'s histogram, or from ``hist`` (256 counts) when already known.
    """
    if hist is None:
        hist = grey_histogram(grey)
    hist = np.asarray(hist[:256], dtype=np.float64)
    total = hist.sum()
    if total == 0:
        return 128
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(hist)
    m0 = np.cumsum(hist * levels)
    w1 = total - w0
    mean_all = m0[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mean_all * w0 - m0 * total) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1
    t = int(np.argmax(between))
    if between[t] <= 0:          # a flat image: one level only
        return 128
    # a page with little ink: keep the cut near mid-grey so faint noise stays white
    return int(min(max(t + 1, 64), 200))


def bilevel(grey: Grey, mode: str = "auto", threshold: int | None = None) -> np.ndarray:
    """A grey image (Pillow "L" or a uint8 array) as a bool array, True = black.

    mode "threshold": pixels darker than ``threshold`` (Otsu's when None) are black;
    "dither": Floyd-Steinberg error diffusion (Pillow's); "auto": dither when
    :func:`is_photo`, else threshold.
    """
    if mode not in BILEVEL_MODES:
        raise ValueError(f"bilevel mode {mode!r}; one of {', '.join(BILEVEL_MODES)}")
    if mode == "auto":
        mode = "dither" if is_photo(grey) else "threshold"
    if mode == "dither":
        return ~np.asarray(_as_image(grey).convert("1", dither=Image.Dither.FLOYDSTEINBERG), dtype=bool)
    arr = np.asarray(grey, dtype=np.uint8)
    t = otsu_threshold(arr) if threshold is None else threshold
    return arr < t


def resize_grey(grey: Image.Image, width: int, rows: int) -> Image.Image:
    """Resample to exactly width x rows (Lanczos; box-reduced first when shrinking a lot)."""
    if grey.size == (width, rows):
        return grey
    return grey.resize((max(1, width), max(1, rows)), Image.Resampling.LANCZOS, reducing_gap=3.0)


def place(image: np.ndarray, width: int) -> np.ndarray:
    """Centre ``image`` (bool) on a white scan line ``width`` wide (cropping if wider)."""
    h, w = image.shape
    if w == width:
        return image
    out = np.zeros((h, width), dtype=bool)
    if w < width:
        left = (width - w) // 2
        out[:, left:left + w] = image
    else:
        left = (w - width) // 2
        out[:] = image[:, left:left + width]
    return out


def fit_geometry(
    size: tuple[int, int],
    resolution: Resolution,
    paper: str,
    src_dpi: tuple[float, float] | None = None,
    fit_length: bool = True,
) -> tuple[str, int, int, int]:
    """Where a ``size`` (width, height) source raster lands on a fax page.

    Returns (paper, scan width, scaled width, scaled rows): see :func:`fit_raster`.
    """
    sw, sh = size
    sx, sy = src_dpi if src_dpi else (1.0, 1.0)
    if paper == "auto":
        # 72 and 96 dpi are screen defaults that say nothing about paper: A4 then
        trusted = src_dpi is not None and min(src_dpi) >= 99.5
        paper = paper_for_width(sw / sx * 25.4 if trusted else None)
    width = scan_width(resolution, paper)
    # physical aspect: height/width in inches, then rows at y_dpi for width at x_dpi
    aspect = (sh / sy) / (sw / sx)
    out_w = width
    out_rows = aspect * width * resolution.y_dpi / resolution.x_dpi
    if fit_length:
        limit = page_rows(resolution, paper if paper in PAPERS else "a4")
        if out_rows > limit:
            out_w = out_w * limit / out_rows
            out_rows = limit
    return paper, width, max(1, int(round(out_w))), max(1, int(round(out_rows)))


def fit_raster(
    img: Image.Image,
    resolution: Resolution,
    paper: str,
    *,
    src_dpi: tuple[float, float] | None = None,
    mode: str = "auto",
    fit_length: bool = True,
) -> tuple[np.ndarray, str]:
    """Scale any source raster onto a fax page; returns (bool image, paper used).

    The image is scaled to fill the scan width (keeping its aspect ratio in
    physical terms, so non-square fax pixels are accounted for) and, when
    ``fit_length``, shrunk further so it is no longer than one page of the paper.
    ``paper="auto"`` picks the width class from the physical width when the source
    resolution is known and at least 100 dpi (A4 otherwise). A bilevel source is thresholded, never dithered.
    """
    paper, width, out_w, out_rows = fit_geometry(img.size, resolution, paper, src_dpi, fit_length)
    if img.mode == "1":
        if mode == "auto":
            mode = "threshold"
        grey = img.convert("L")
    else:
        grey = to_grey(img)
    if mode == "auto":
        mode = "dither" if is_photo(grey) else "threshold"
    scaled = resize_grey(grey, out_w, out_rows)
    black = bilevel(scaled, mode, threshold=128 if img.mode == "1" else None)
    return place(black, width), paper


def render_square(draw_dpi: int, resolution: Resolution, grey: Image.Image, rows: int | None = None) -> np.ndarray:
    """A grey image drawn at ``draw_dpi`` square pixels, as fax rows at ``resolution``.

    Text, cover and header are drawn on a square grid at the x resolution and then
    resampled vertically to the fax's y resolution, then thresholded at mid-grey.
    """
    w, h = grey.size
    if rows is None:
        rows = max(1, int(round(h * resolution.y_dpi / draw_dpi)))
    if rows != h:
        grey = grey.resize((w, rows), Image.Resampling.BOX if rows < h else Image.Resampling.BICUBIC)
    return np.asarray(grey, dtype=np.uint8) < 128
