"""``save``: fax pages out as TIFF Class F, PDF (G4) or PNG previews.

A path is written atomically: the file is written beside it under a hidden temporary
name (``.NAME.XXXXXXXX.part``) and renamed over ``NAME`` only when complete, so a full disk,
a removed folder or a crash never leaves a partial file under the real name (and an
existing file is replaced whole or not at all). For PNG pages, every page is written
before any is renamed.
"""
from __future__ import annotations

import datetime as _dt
import errno
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


def _fdopen(fd: int) -> BinaryIO:
    return os.fdopen(fd, "w+b")


def _open_part(path: str) -> tuple[BinaryIO, str]:
    """A new file beside ``path`` (same folder, so the rename is atomic) and its name.

    Created with O_EXCL and mode 0o666 less the umask, as ``open(path, "wb")`` would.
    """
    folder, base = os.path.split(path)
    for _ in range(20):
        part = os.path.join(folder, f".{base}.{os.urandom(4).hex()}.part")
        try:
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        try:
            return _fdopen(fd), part
        except BaseException:
            os.close(fd)
            os.unlink(part)
            raise
    raise OSError(errno.EEXIST, "no free temporary name", path)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _write_atomic(paths: list[str], write_one) -> None:
    """``write_one(i, file)`` for each path into temporary files, then rename them all.

    Any failure (OSError, DocumentError) removes every temporary file and leaves the
    targets as they were; an OSError becomes a DocumentError naming the target.
    """
    parts: list[str] = []
    current, doing = paths[0], "create"
    try:
        for i, path in enumerate(paths):
            current, doing = path, "create"
            f, part = _open_part(path)
            parts.append(part)
            doing = "write"
            with f:
                write_one(i, f)
                f.flush()
                os.fsync(f.fileno())            # the data is on disk before the name points at it
        doing = "rename into place"
        for path, part in zip(paths, parts):
            current = path
            os.replace(part, path)
    except OSError as exc:
        for part in parts:
            _remove(part)
        raise DocumentError(f"cannot {doing}: {exc.strerror or exc}", source=current) from exc
    except BaseException:
        for part in parts:
            _remove(part)
        raise


def save(pages: list[Page], target: str | os.PathLike | BinaryIO, format: str | None = None,
         codec: str | None = None, *, when: _dt.datetime | None = None, description: str | None = None) -> list[str]:
    """Write ``pages`` to ``target`` (a path or a binary file object); returns the paths written.

    ``format``: "tiff" (TIFF Class F), "pdf" (one CCITT G4 image per page) or "png"
    (one file per page: see :func:`png_paths`; a file object takes a single page);
    default from the target's suffix. ``codec`` (TIFF only): "mh" (the default,
    readable by every fax TIFF reader), "mr" or "mmr". ``when`` is written as the
    document date (nothing reads the clock here). A path is replaced atomically
    (see the module docstring); a file object is written as is.
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
    is_path = isinstance(target, (str, os.PathLike))
    if fmt == "png":
        if not is_path:
            if len(pages) != 1:
                raise ValueError("PNG to a file object takes exactly one page; give a path for several")
            img = page_image(pages[0])
            img.save(target, format="PNG", dpi=img.info["dpi"])
            return [str(name)]
        paths = png_paths(target, len(pages))

        def write_png(i: int, f: BinaryIO) -> None:
            img = page_image(pages[i])
            img.save(f, format="PNG", dpi=img.info["dpi"])

        _write_atomic(paths, write_png)
        return paths

    def write_doc(_: int, f: BinaryIO) -> None:
        if fmt == "tiff":
            write_tiff(pages, f, codec=codec or "mh", when=when, description=description)
        else:
            from .pdf import write_pdf

            write_pdf(pages, f, when=when, title=description)

    if is_path:
        _write_atomic([str(name)], write_doc)
    else:
        write_doc(0, target)
    return [str(name)]
