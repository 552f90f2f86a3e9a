"""``save``: fax pages out as TIFF Class F, PDF (G4) or PNG previews."""
from __future__ import annotations

import datetime as _dt
import os
from typing import BinaryIO

import numpy as np
from PIL import Image

from ..errors import DocumentError
from ..page import Page
from .tiffwriter import CODECS, write_tiff

FORMATS = {".tif": "tiff", ".tiff": "tiff", ".pdf": "pdf", ".png": "png"}


def format_for(target) -> str | None:
    if isinstance(target, (str, os.PathLike)):
        return FORMATS.get(os.path.splitext(os.fspath(target))[1].lower())
    name = getattr(target, "name", None)
    return FORMATS.get(os.path.splitext(name)[1].lower()) if isinstance(name, str) else None


def png_paths(target: str | os.PathLike, count: int) -> list[str]:
    """out.png for one page; out-1.png, out-2.png ... for several."""
    path = os.fspath(target)
    if count == 1:
        return [path]
    stem, ext = os.path.splitext(path)
    return [f"{stem}-{i + 1}{ext or '.png'}" for i in range(count)]


def page_image(page: Page) -> Image.Image:
    """A page as a Pillow mode "1" image (white = 1) carrying its dpi."""
    img = Image.fromarray(np.ascontiguousarray(~page.image))
    img.info["dpi"] = (page.resolution.x_dpi, page.resolution.y_dpi)
    return img


def save(pages: list[Page], target: str | os.PathLike | BinaryIO, format: str | None = None,
         codec: str | None = None, *, when: _dt.datetime | None = None, description: str | None = None) -> list[str]:
    """Write ``pages`` to ``target`` (a path or a binary file object); returns the paths written.

    ``format``: "tiff" (TIFF Class F), "pdf" (one CCITT G4 image per page) or "png"
    (one file per page: see :func:`png_paths`; a file object takes a single page);
    default from the target's suffix. ``codec`` (TIFF only): "mh" (the default,
    readable by every fax TIFF reader), "mr" or "mmr". ``when`` is written as the
    document date (nothing reads the clock here).
    """
    pages = list(pages)
    name = os.fspath(target) if isinstance(target, (str, os.PathLike)) else getattr(target, "name", "<file>")
    fmt = (format or format_for(target) or "").lower()
    if fmt == "tif":
        fmt = "tiff"
    if fmt not in ("tiff", "pdf", "png"):
        raise ValueError(f"output format {format or name!r}: say format='tiff', 'pdf' or 'png' (or use that suffix)")
    if codec is not None and codec not in CODECS:
        raise ValueError(f"codec {codec!r}; one of {', '.join(CODECS)}")
    if not pages:
        raise DocumentError("no pages to write", source=str(name))
    if fmt == "tiff":
        write_tiff(pages, target, codec=codec or "mh", when=when, description=description)
        return [str(name)]
    if fmt == "pdf":
        from .pdf import write_pdf

        write_pdf(pages, target, when=when, title=description)
        return [str(name)]
    if not isinstance(target, (str, os.PathLike)):
        if len(pages) != 1:
            raise ValueError("PNG to a file object takes exactly one page; give a path for several")
        img = page_image(pages[0])
        img.save(target, format="PNG", dpi=img.info["dpi"])
        return [str(name)]
    paths = png_paths(target, len(pages))
    for page, path in zip(pages, paths):
        img = page_image(page)
        try:
            img.save(path, format="PNG", dpi=img.info["dpi"])
        except OSError as exc:
            raise DocumentError(f"cannot write: {exc.strerror or exc}", source=path) from exc
    return paths
