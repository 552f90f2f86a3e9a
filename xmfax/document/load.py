"""``load``: any TIFF, PDF, image or plain text as a list of fax pages.

The format is sniffed from the content, not the name. Fax TIFFs (and bilevel images)
already at a fax geometry pass through pixel for pixel at their own resolution;
everything else is rendered or scaled at the requested ``resolution`` onto ``paper``.
Every failure is a DocumentError naming the source and the problem.
"""
from __future__ import annotations

import io
import os
import warnings
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps

from ..errors import DocumentError
from ..page import Page, Resolution
from .limits import Limits
from .raster import BILEVEL_MODES, PAPER_NAMES, fit_geometry, fit_raster, resolve_resolution
from .text import TextStyle, typeset_text
from .tiff import COMPRESSION, COMPRESSION_NAMES, FILL_ORDER, NEW_SUBFILE_TYPE, decode_ifd, is_tiff, parse_tiff

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO

_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"P1", b"P2", b"P3", b"P4",
                b"P5", b"P6", b"\0\0\0\x0cjP", b"\xff\x4f\xff\x51")


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
        name = str(getattr(source, "name", "<file>"))
        try:
            data = source.read(cap + 1)
        except OSError as exc:
            raise DocumentError(f"cannot read: {exc}", source=name) from exc
        if isinstance(data, str):
            data = data.encode("utf-8")
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
            info["note"] = "no resolution in the file; " + res.label + " assumed"
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


def _pillow_pages(data: bytes, name: str, resolution: Resolution, paper: str, mode: str, limits: Limits,
                  frames: list[int] | None, start_count: int, fmt: str) -> list[Page]:
    pages = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            limits.check_source_size(img.width, img.height, name)
            indices = frames if frames is not None else [0]
            for i in indices:
                if i:
                    img.seek(i)
                limits.check_source_size(img.width, img.height, name)
                dpi = img.info.get("dpi")
                if dpi and (not dpi[0] or not dpi[1] or dpi[0] < 1 or dpi[1] < 1):
                    dpi = None
                info = {"format": (img.format or fmt).lower(), "mode": img.mode}
                page_paper = paper
                if img.format == "JPEG" and fmt != "tiff":
                    dpi, page_paper = _draft_jpeg(img, dpi, resolution, paper)
                frame = ImageOps.exif_transpose(img) if fmt != "tiff" else img.copy()
                frame.load()
                where = f"{name} page {i + 1}" if len(indices) > 1 or i else name
                if frame.mode == "1":
                    page = _bilevel_page(~np.asarray(frame, dtype=bool), dpi, where, resolution, paper, info)
                else:
                    image, p = fit_raster(frame, resolution, page_paper, src_dpi=dpi, mode=mode)
                    page = Page(image, resolution, where, dict(info, paper=p))
                pages.append(page)
                limits.check_pages(start_count + len(pages), name)
    except DocumentError:
        raise
    except Image.DecompressionBombError as exc:
        raise DocumentError(f"image too large (a decompression bomb?): {exc}", source=name) from exc
    except MemoryError as exc:
        raise DocumentError("image too large to decode in memory", source=name) from exc
    except Exception as exc:   # Pillow raises many types (OSError, SyntaxError, ValueError, struct.error ...)
        raise DocumentError(f"cannot read image ({type(exc).__name__}: {exc})", source=name) from exc
    return pages


def _tiff_pages(data: bytes, name: str, resolution: Resolution, paper: str, mode: str, limits: Limits,
                start_count: int) -> list[Page]:
    try:
        ifds = parse_tiff(data, name, limits)
    except DocumentError as exc:
        if exc.reason == "BigTIFF":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    n = getattr(Image.open(io.BytesIO(data)), "n_frames", 1)
                except Exception as e:
                    raise DocumentError(f"cannot read BigTIFF ({e})", source=name) from e
            limits.check_pages(start_count + n, name)
            return _pillow_pages(data, name, resolution, paper, mode, limits, list(range(n)), start_count, "tiff")
        raise
    # reduced-resolution copies (thumbnails, NewSubfileType bit 0) are not pages
    indices = [i for i, ifd in enumerate(ifds) if not int(ifd.get(NEW_SUBFILE_TYPE, 0)) & 1]
    limits.check_pages(start_count + len(indices), name)
    pages = []
    for n, i in enumerate(indices):
        ifd = ifds[i]
        where = f"{name} page {n + 1}" if len(indices) > 1 else name
        dec = decode_ifd(data, ifd, where, limits)
        if dec is None:
            pages += _pillow_pages(data, name, resolution, paper, mode, limits, [i], start_count + len(pages), "tiff")
            pages[-1].source = where
            continue
        info = {"format": "tiff", "compression": COMPRESSION_NAMES.get(dec.compression, str(dec.compression)),
                "fill_order": int(ifd.get(FILL_ORDER, 1)), "bad_rows": dec.bad_rows}
        if dec.note:
            info["note"] = dec.note
        pages.append(_bilevel_page(dec.image, ifd.dpi(), where, resolution, paper, info))
    return pages


def load(source: Source, *, resolution: str | Resolution = "fine", paper: str = "auto", bilevel: str = "auto",
         limits: Limits = Limits(), password: str | None = None, text_style: TextStyle = TextStyle(),
         start_count: int = 0) -> list[Page]:
    """Load a TIFF, PDF, image (PNG, JPEG, GIF, BMP, WebP, PNM) or plain-text document as fax pages.

    ``resolution``: the fax resolution for rendered/scaled content ("standard", "fine",
    "superfine", "200x200", ...); a fax TIFF already at a fax geometry keeps its own.
    ``paper``: "a4", "letter", "legal", "b4", "a3" or "auto" (from the source's physical width).
    ``bilevel``: "auto" (threshold text-like content, dither photos), "threshold", "dither".
    ``start_count``: pages already loaded into the same document (for ``limits.max_pages``).
    """
    res = resolve_resolution(resolution)
    if paper not in PAPER_NAMES:
        raise ValueError(f"paper {paper!r}; one of {', '.join(PAPER_NAMES)}")
    if bilevel not in BILEVEL_MODES:
        raise ValueError(f"bilevel {bilevel!r}; one of {', '.join(BILEVEL_MODES)}")
    data, name = read_source(source, limits)
    if not data:
        raise DocumentError("empty file", source=name)
    kind = sniff(data)
    if kind == "tiff":
        pages = _tiff_pages(data, name, res, paper, bilevel, limits, start_count)
    elif kind == "pdf":
        from .pdf import load_pdf

        pages = load_pdf(data, name, res, paper, bilevel, limits, password, start_count)
    elif kind == "image":
        pages = _pillow_pages(data, name, res, paper, bilevel, limits, None, start_count, "image")
    elif kind == "text":
        p = "a4" if paper == "auto" else paper
        images, note = typeset_text(decode_text(data), res, p, text_style,
                                    max_pages=limits.max_pages - start_count)
        limits.check_pages(start_count + len(images), name)
        info = {"format": "text", "paper": p}
        if note:
            info["note"] = note
        pages = [Page(im, res, name if len(images) == 1 else f"{name} page {i + 1}", dict(info))
                 for i, im in enumerate(images)]
    else:
        pages = _pillow_pages(data, name, res, paper, bilevel, limits, None, start_count, "image")
    for page in pages:
        limits.check_rows(page.rows, page.source)
    return pages
