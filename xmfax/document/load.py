"""``load`` / ``iter_pages``: any TIFF, PDF, image or plain text as fax pages.

The format is sniffed from the content, not the name. Fax TIFFs (and bilevel images)
already at a fax geometry pass through pixel for pixel at their own resolution;
everything else is rendered or scaled at the requested ``resolution`` onto ``paper``.
Every failure is a DocumentError naming the source and the problem.

A page is either decoded whole or refused: a fax strip with a bad row, data that ends
early, a JPEG or PNG that cannot hold its declared pixels raise DocumentError naming
the page and row (:class:`DamagedPageError` for the fax codings), unless the caller asks
for ``tolerant=True`` (received faxes, or a user who accepts a damaged page), which
keeps what decodes and lists the damaged rows in ``page.info["damaged_rows"]``.
"""
from __future__ import annotations

import io
import os
import re
import warnings
from typing import BinaryIO, Callable, Iterator

import numpy as np
from PIL import Image, ImageFile, ImageOps

from ..errors import DocumentError
from ..page import Page, Resolution
from .imagecheck import check_jpeg, check_png
from .limits import DEFAULT_LIMITS, Budget, Limits
from .raster import BILEVEL_MODES, PAPER_NAMES, fit_geometry, fit_raster, resolve_resolution
from .text import TextStyle, layout_text, render_text_page
from .tiff import COMPRESSION_NAMES, NEW_SUBFILE_TYPE, DamagedPageError, decode_ifd, is_tiff, parse_tiff

__all__ = ["load", "iter_pages", "DamagedPageError", "Source"]

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"P1", b"P2", b"P3", b"P4",
                b"P5", b"P6", b"\0\0\0\x0cjP", b"\xff\x4f\xff\x51")


def source_name(source) -> str:
    """How errors name a source: its path, a file object's ``name``, else "<bytes>" / "<file>"."""
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source) if not isinstance(source, bytes) else source.decode("utf-8", "replace")
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)
    if isinstance(name, bytes):
        name = name.decode("utf-8", "replace")
    return name if isinstance(name, str) and name else "<file>"


_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")


def library_error(exc: BaseException) -> str:
    """A library exception as "Type: message" without the object reprs Pillow puts in it
    ("cannot identify image file <_io.BytesIO object at 0x...>"): errors name the file instead."""
    text = _OBJECT_REPR.sub("the data", str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def read_source(source: Source, limits: Limits) -> tuple[bytes, str]:
    """(content, name) of a path, bytes or binary file object, within ``limits.max_file_bytes``."""
    cap = limits.max_file_bytes
    if isinstance(source, (str, os.PathLike)):
        name = os.fspath(source)
        try:
            size = os.stat(name).st_size
            if size > cap:
                raise DocumentError(f"file of {size} bytes exceeds the limit of {cap}", source=name)
            with open(name, "rb") as f:
                return f.read(cap + 1), name
        except OSError as exc:
            raise DocumentError(f"cannot read: {exc.strerror or exc}", source=name) from exc
    if isinstance(source, (bytes, bytearray, memoryview)):
        data, name = bytes(source), "<bytes>"
    elif hasattr(source, "read"):
        name = source_name(source)
        try:
            data = source.read(cap + 1)
        except (OSError, ValueError) as exc:
            raise DocumentError(f"cannot read: {exc}", source=name) from exc
        if isinstance(data, str):
            data = data.encode("utf-8")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DocumentError(f"read() gave {type(data).__name__}, not bytes", source=name)
        data = bytes(data)
    else:
        raise TypeError(f"a document source is a path, bytes or a binary file, not {type(source).__name__}")
    if len(data) > cap:
        raise DocumentError(f"more than the limit of {cap} bytes", source=name)
    return data, name


def sniff(data: bytes) -> str:
    """'tiff', 'pdf', 'image', 'text' or 'unknown' from the first bytes."""
    if is_tiff(data):
        return "tiff"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if data.startswith(_IMAGE_MAGIC) or data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image"
    if looks_like_text(data):
        return "text"
    return "unknown"


def looks_like_text(data: bytes) -> bool:
    head = data[:65536]
    if b"\0" in head:
        return False
    if not head:
        return True
    try:
        head.decode("utf-8")
        return True
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 4:               # a character cut by the 64 KiB window
            return True
    printable = sum(1 for b in head if b >= 32 or b in b"\t\n\r\f")
    return printable / len(head) > 0.95


def decode_text(data: bytes) -> str:
    for enc in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(enc)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")


def match_resolution(dpi: tuple[float, float] | None, width: int, rows: int) -> tuple[Resolution, bool] | None:
    """(fax resolution, guessed) for a bilevel image ``width`` wide at ``dpi``; None if not a fax geometry.

    Within 3 % counts as a match (77 dots/cm is 195.6 dpi; 3.85 lines/mm is 97.8).
    With no resolution in the file, a fax width is taken as standard (short pages) or fine.
    """
    candidates = [r for r in Resolution if width in r.widths.values()]
    if not candidates:
        return None
    if dpi is None:
        if width == 1728 or width in Resolution.FINE.widths.values():
            return (Resolution.STANDARD if rows <= 1300 else Resolution.FINE), True
        return None
    x, y = dpi
    best, best_d = None, 0.03
    for r in candidates:
        d = max(abs(x - r.x_dpi) / r.x_dpi, abs(y - r.y_dpi) / r.y_dpi)
        if d <= best_d:
            best, best_d = r, d
    return (best, False) if best else None


def _bilevel_page(image: np.ndarray, dpi, name: str, resolution: Resolution, paper: str,
                  info: dict) -> Page:
    """A bilevel source image as a fax page: as is at a fax geometry, else scaled."""
    m = match_resolution(dpi, image.shape[1], image.shape[0])
    if m is not None:
        res, guessed = m
        info = dict(info, passthrough=True)
        if guessed:
            info["note"] = "; ".join(filter(None, [info.get("note"), f"no resolution in the file; {res.label} assumed"]))
        return Page(image, res, name, info)
    src = Image.fromarray(~image)                     # mode "1": True = white
    fitted, p = fit_raster(src, resolution, paper, src_dpi=dpi, mode="threshold")
    return Page(fitted, resolution, name, dict(info, paper=p))


def _draft_jpeg(img: Image.Image, dpi, resolution: Resolution, paper: str) -> tuple[tuple | None, str]:
    """Have libjpeg decode ``img`` (a JPEG not yet loaded) in grey and as small as the page allows.

    A JPEG decoder can output luma only (Y of YCbCr: the same weights as Pillow's
    RGB to "L") and scale by 1/2, 1/4 or 1/8 while decoding; we ask for the largest
    reduction that still leaves at least the fax page's own pixels in both directions
    (after any EXIF rotation), so the Lanczos pass that follows never enlarges.
    Returns (dpi of the reduced image, paper resolved at the original size).
    """
    swap = img.getexif().get(0x0112, 1) in (5, 6, 7, 8)      # EXIF Orientation: a quarter turn
    w, h = img.size
    upright = (h, w) if swap else (w, h)
    up_dpi = (dpi[1], dpi[0]) if (dpi and swap) else dpi
    paper, _, out_w, out_rows = fit_geometry(upright, resolution, paper, up_dpi)
    want = (out_rows, out_w) if swap else (out_w, out_rows)
    img.draft("L" if img.mode == "RGB" else img.mode, want)
    if dpi and img.size != (w, h):
        dpi = (dpi[0] * img.size[0] / w, dpi[1] * img.size[1] / h)
    return dpi, paper


# bytes per pixel of Pillow's modes (what the decoded image will hold)
_MODE_BYTES = {"1": 1, "L": 1, "P": 1, "LA": 2, "PA": 2, "La": 2, "RGB": 3, "YCbCr": 3, "LAB": 3, "HSV": 3,
               "RGBA": 4, "RGBa": 4, "RGBX": 4, "CMYK": 4, "I": 4, "F": 4, "I;16": 2, "I;16L": 2, "I;16B": 2,
               "I;16N": 2}
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


def _whole_or_note(check, data: bytes, name: str, tolerant: bool) -> str | None:
    """Run a structural check: strict raises its DocumentError, tolerant keeps it as a note."""
    try:
        check(data, name)
    except DocumentError as exc:
        if not tolerant:
            raise
        return f"{exc.reason}; loaded as far as it decodes (missing parts are grey or repeated)"
    return None


def _pillow_pages(data: bytes, name: str, resolution: Resolution, paper: str, mode: str, budget: Budget,
                  frames: list[int] | None, fmt: str, tolerant: bool, count_source: bool = True) -> Iterator[Page]:
    limits = budget.limits
    note = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            limits.check_source_size(img.width, img.height, name)
            if fmt == "image" and img.format == "JPEG":
                note = _whole_or_note(check_jpeg, data, name, tolerant)   # also covers Pillow's EOI padding
            elif ImageFile.LOAD_TRUNCATED_IMAGES and not tolerant:
                # someone in this process told Pillow to fill truncated images: only a JPEG's end is
                # checked here (above), so nothing else is loaded for sending while that is on
                raise DocumentError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True in this process: a truncated "
                                    f"{img.format or 'image'} would be filled silently, so it is not loaded for "
                                    "sending (tolerant=True loads it)", source=name)
            elif fmt == "image" and img.format == "PNG":
                note = _whole_or_note(check_png, data, name, tolerant)
            indices = frames if frames is not None else [0]
            for i in indices:
                budget.check_time(name)
                if i:
                    img.seek(i)
                limits.check_source_size(img.width, img.height, name)
                dpi = img.info.get("dpi")
                if dpi and (not dpi[0] or not dpi[1] or dpi[0] < 1 or dpi[1] < 1):
                    dpi = None
                info = {"format": (img.format or fmt).lower(), "mode": img.mode}
                if note:                                   # tolerant, and the file is not whole
                    info["note"] = note
                page_paper = paper
                where = f"{name} page {i + 1}" if len(indices) > 1 or i else name
                if img.format == "JPEG" and fmt != "tiff":
                    dpi, page_paper = _draft_jpeg(img, dpi, resolution, paper)
                # refuse before decoding: the decoded buffer, and compositing transparency holds three
                nbytes = img.width * img.height * _MODE_BYTES.get(img.mode, 4)
                if img.mode in _ALPHA_MODES or "transparency" in img.info:
                    nbytes *= 3
                limits.check_image_bytes(nbytes, f"an image of {img.width}x{img.height} {img.mode}", where)
                if count_source:
                    budget.add_source_pixels(img.width * img.height, where)
                frame = ImageOps.exif_transpose(img) if fmt != "tiff" else img.copy()
                frame.load()
                budget.check_time(where)                   # decoding may have been the slow part
                if frame.mode == "1":
                    page = _bilevel_page(~np.asarray(frame, dtype=bool), dpi, where, resolution, paper, info)
                else:
                    image, p = fit_raster(frame, resolution, page_paper, src_dpi=dpi, mode=mode)
                    page = Page(image, resolution, where, dict(info, paper=p))
                del frame
                if note:
                    page.info["damaged_rows"] = [[0, page.rows]]
                budget.add_pages(1, name)
                yield page
    except DocumentError:
        raise
    except Image.DecompressionBombError as exc:
        raise DocumentError(f"image too large (a decompression bomb?): {exc}", source=name) from exc
    except MemoryError as exc:
        raise DocumentError("image too large to decode in memory", source=name) from exc
    except Exception as exc:   # Pillow raises many types (OSError, SyntaxError, ValueError, struct.error ...)
        raise DocumentError(f"cannot read image ({library_error(exc)})", source=name) from exc


def _tiff_pages(data: bytes, name: str, resolution: Resolution, paper: str, mode: str, budget: Budget,
                tolerant: bool) -> Iterator[Page]:
    limits = budget.limits
    try:
        ifds = parse_tiff(data, name, limits)
    except DocumentError as exc:
        if exc.reason != "BigTIFF":
            raise
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                n = getattr(Image.open(io.BytesIO(data)), "n_frames", 1)
            except Exception as e:
                raise DocumentError(f"cannot read BigTIFF ({library_error(e)})", source=name) from e
        limits.check_pages(budget.pages + n, name)
        yield from _pillow_pages(data, name, resolution, paper, mode, budget, list(range(n)), "tiff", tolerant)
        return
    # reduced-resolution copies (thumbnails, NewSubfileType bit 0) are not pages
    indices = [i for i, ifd in enumerate(ifds) if not ifd.int(NEW_SUBFILE_TYPE, 0) & 1]
    if not indices:
        raise DocumentError("TIFF has only reduced-resolution images (thumbnails), no pages", source=name)
    limits.check_pages(budget.pages + len(indices), name)
    # every page's declared size, before the first is decoded: 1,000 huge pages are refused at once
    for i in indices:
        limits.check_source_size(ifds[i].width, ifds[i].length, name)
    budget.add_source_pixels(sum(ifds[i].width * ifds[i].length for i in indices), name)
    for n, i in enumerate(indices):
        ifd = ifds[i]
        where = f"{name} page {n + 1}" if len(indices) > 1 else name
        budget.check_time(where)
        dec = decode_ifd(data, ifd, where, limits, tolerant=tolerant, budget=budget, page=n + 1)
        if dec is None:
            for page in _pillow_pages(data, name, resolution, paper, mode, budget, [i], "tiff", tolerant,
                                      count_source=False):
                page.source = where
                yield page
            continue
        info = {"format": "tiff", "compression": COMPRESSION_NAMES.get(dec.compression, str(dec.compression)),
                "fill_order": dec.fill_order, "bad_rows": dec.bad_rows,
                "damaged_rows": [list(r) for r in dec.damaged]}
        if dec.note:
            info["note"] = dec.note
        src_rows = dec.image.shape[0]
        page = _bilevel_page(dec.image, ifd.dpi(), where, resolution, paper, info)
        del dec
        if page.rows != src_rows and info["damaged_rows"]:          # scaled: damaged rows scale too
            f = page.rows / src_rows
            page.info["damaged_rows"] = [[int(lo * f), max(int(lo * f) + 1, int(np.ceil(hi * f)))]
                                         for lo, hi in info["damaged_rows"]]
        budget.add_pages(1, name)
        yield page


def _text_pages(data: bytes, name: str, resolution: Resolution, paper: str, style: TextStyle,
                budget: Budget) -> Iterator[Page]:
    limits = budget.limits
    if len(data) > 4 * limits.max_text_chars:              # a character is at most 4 bytes (UTF-8)
        raise DocumentError(f"text of {len(data)} bytes exceeds the limit of {limits.max_text_chars} "
                            "characters", source=name)
    text = decode_text(data)
    longest = max(map(len, text.splitlines()), default=0)
    limits.check_text(len(text), longest, name)
    p = "a4" if paper == "auto" else paper
    layout = layout_text(text, resolution, p, style, max_pages=limits.max_pages - budget.pages)
    del text
    count = len(layout.pages)
    limits.check_pages(budget.pages + count, name)
    budget.add_pixels(count * layout.rows * layout.width, name)      # all pages, before drawing one
    info = {"format": "text", "paper": p, "damaged_rows": []}
    if layout.note:
        info["note"] = layout.note
    for i, lines in enumerate(layout.pages):
        budget.check_time(name)
        image = render_text_page(layout, lines)
        budget.add_pages(1, name)
        yield Page(image, resolution, name if count == 1 else f"{name} page {i + 1}", dict(info))


def iter_pages(source: Source, *, resolution: str | Resolution = "fine", paper: str = "auto",
               bilevel: str = "auto", limits: Limits = DEFAULT_LIMITS, password: str | None = None,
               text_style: TextStyle = TextStyle(), start_count: int = 0, tolerant: bool = False,
               clock: Callable[[], float] | None = None, budget: Budget | None = None) -> Iterator[Page]:
    """The pages of a document one at a time (what :func:`load` returns, without holding them all).

    Arguments as :func:`load`. Whole-document checks (page count, every page's declared
    size) are made before the first page is yielded; each page is decoded when asked for.
    """
    res = resolve_resolution(resolution)
    if paper not in PAPER_NAMES:
        raise ValueError(f"paper {paper!r}; one of {', '.join(PAPER_NAMES)}")
    if bilevel not in BILEVEL_MODES:
        raise ValueError(f"bilevel {bilevel!r}; one of {', '.join(BILEVEL_MODES)}")
    if budget is None:
        budget = Budget(limits, clock, pages=start_count)
    return _iter_pages(source, res, paper, bilevel, budget, password, text_style, tolerant)


def _iter_pages(source: Source, res: Resolution, paper: str, bilevel: str, budget: Budget,
                password: str | None, text_style: TextStyle, tolerant: bool) -> Iterator[Page]:
    limits = budget.limits
    data, name = read_source(source, limits)
    if not data:
        raise DocumentError("empty file", source=name)
    kind = sniff(data)
    if kind == "tiff":
        pages = _tiff_pages(data, name, res, paper, bilevel, budget, tolerant)
    elif kind == "pdf":
        from .pdf import iter_pdf

        pages = iter_pdf(data, name, res, paper, bilevel, budget, password)
    elif kind == "text":
        pages = _text_pages(data, name, res, paper, text_style, budget)
    else:
        pages = _pillow_pages(data, name, res, paper, bilevel, budget, None, "image", tolerant)
    for page in pages:
        limits.check_rows(page.rows, page.source)
        if kind != "text" and kind != "pdf":                 # those counted every page up front
            budget.add_pixels(page.rows * page.width, page.source)
        page.info.setdefault("damaged_rows", [])
        budget.check_time(page.source)
        yield page


def load(source: Source, *, resolution: str | Resolution = "fine", paper: str = "auto", bilevel: str = "auto",
         limits: Limits = DEFAULT_LIMITS, password: str | None = None, text_style: TextStyle = TextStyle(),
         start_count: int = 0, tolerant: bool = False, clock: Callable[[], float] | None = None,
         budget: Budget | None = None) -> list[Page]:
    """Load a TIFF, PDF, image (PNG, JPEG, GIF, BMP, WebP, PNM) or plain-text document as fax pages.

    ``resolution``: the fax resolution for rendered/scaled content ("standard", "fine",
    "superfine", "200x200", ...); a fax TIFF already at a fax geometry keeps its own.
    ``paper``: "a4", "letter", "legal", "b4", "a3" or "auto" (from the source's physical width).
    ``bilevel``: "auto" (threshold text-like content, dither photos), "threshold", "dither".
    ``start_count``: pages already loaded into the same document (for ``limits.max_pages``).
    ``tolerant``: False (for sending) refuses a page that does not decode whole with a
    DocumentError naming the page and row; True keeps what decodes and lists the damaged
    rows as ``[start, stop)`` pairs in ``page.info["damaged_rows"]`` (empty on whole pages).
    ``clock``: a monotonic clock (``time.monotonic``) to enforce ``limits.max_seconds``.
    ``budget``: a :class:`Budget` shared by several calls making one document (it then
    carries the limits, clock and page count; ``limits``/``clock``/``start_count`` are unused).
    """
    return list(iter_pages(source, resolution=resolution, paper=paper, bilevel=bilevel, limits=limits,
                           password=password, text_style=text_style, start_count=start_count,
                           tolerant=tolerant, clock=clock, budget=budget))
