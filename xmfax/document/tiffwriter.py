"""TIFF Class F writer (RFC 2306), page by page, from xmfax's own code streams.

Every page is one strip holding a T.4 (Compression=3) or T.6 (4) code stream as
xmfax's codecs produced it (or as received on the line: :meth:`TiffWriter.add_encoded`).
The file is valid after every page: each page is written as strip, then IFD, and only
then linked from the previous IFD (or the header), and flushed. A receiver that fails
on page 5 keeps pages 1-4. A page whose write fails (disk full) is taken out again
before the error is raised, so the file holds exactly the pages that were added
whole; with ``durable=True`` a page counts as added only once it is on disk (fsync).
PageNumber totals are written as 0 ("unknown", TIFF 6.0
§8 PageNumber) and patched by :meth:`TiffWriter.close`.
"""
from __future__ import annotations

import datetime as _dt
import io
import os
import struct
from typing import BinaryIO

import numpy as np

from .. import __version__
from ..errors import DocumentError
from ..page import Page, Resolution
from .tiff import (BAD_FAX_LINES, BITS_PER_SAMPLE, CLEAN_FAX_DATA, COMPRESSION, CONSECUTIVE_BAD_FAX_LINES,
                   DATE_TIME, FILL_ORDER, IMAGE_DESCRIPTION, IMAGE_LENGTH, IMAGE_WIDTH, NEW_SUBFILE_TYPE,
                   ORIENTATION, PAGE_NUMBER, PHOTOMETRIC, PLANAR_CONFIGURATION, RESOLUTION_UNIT,
                   ROWS_PER_STRIP, SAMPLES_PER_PIXEL, SOFTWARE, STRIP_BYTE_COUNTS, STRIP_OFFSETS,
                   T4_OPTIONS, T6_OPTIONS, X_RESOLUTION, Y_RESOLUTION)

CODECS = ("mh", "mr", "mmr")
_SHORT, _LONG, _RATIONAL, _ASCII = 3, 4, 5, 2
CLEAN, REGENERATED, UNCLEAN = 0, 1, 2             # CleanFaxData values (RFC 2306 §3)


def default_k(resolution: Resolution) -> int:
    """T.4 §4.2.1.2: K = 2 at standard vertical resolution, 4 at fine and above."""
    return 2 if resolution.y_dpi < 150 else 4


def encode_page(image: np.ndarray, codec: str, k: int, *, for_tiff: bool = True) -> bytes:
    """A page's code stream as TIFF Class F stores it (MSB first).

    MH/MR: EOL before every row, fill so each EOL ends on a byte boundary
    (T4Options FILLBITS), no RTC (as libtiff writes G3 strips). MMR: ends with EOFB.
    """
    from .. import codecs

    if codec == "mmr":
        return codecs.encode(image, codec="mmr", rtc=True, bit_order="msb")
    return codecs.encode(image, codec=codec, k=k, eol=True, byte_align=for_tiff, rtc=not for_tiff,
                         bit_order="msb")


def _rational(value: float) -> tuple[int, int]:
    if float(value).is_integer():
        return int(value), 1
    return int(round(value * 100)), 100


class TiffWriter:
    """Append fax pages to a TIFF Class F file one at a time.

    ``target`` is a path (created/truncated) or a binary file object; a file object that
    cannot seek is written at :meth:`close`. ``when`` is written as DateTime (sans-IO: the
    caller passes the time, none is read here).

        with TiffWriter("rx.tif", when=now) as w:
            w.add_encoded(data, width=1728, rows=1143, resolution=Resolution.STANDARD,
                          codec="mh", fill_order=2, bad_rows=3)
    """

    def __init__(self, target: str | os.PathLike | BinaryIO, *, software: str | None = None,
                 description: str | None = None, when: _dt.datetime | None = None, durable: bool = False):
        self._own = isinstance(target, (str, os.PathLike))
        self.durable = durable
        self._dest: BinaryIO | None = None
        if self._own:
            try:
                self._f: BinaryIO = open(target, "w+b", buffering=0)
            except OSError as exc:
                raise DocumentError(f"cannot create: {exc.strerror}", source=str(target)) from exc
        elif getattr(target, "seekable", lambda: False)():
            self._f = target
        else:
            self._dest, self._f = target, io.BytesIO()
        self.name = str(target) if self._own else getattr(target, "name", "<file>")
        self.software = software or f"xmfax {__version__}"
        self.description = description
        self.when = when
        self.pages = 0
        self._page_number_at: list[int] = []      # file offsets of each PageNumber value
        self._base = self._f.tell()
        self._put(self._base, b"II*\0" + struct.pack("<I", 0))
        self._link_at = self._base + 4              # where the next IFD's offset goes
        self._closed = False

    # ------------------------------------------------------------------ pages
    def add_page(self, page: Page, codec: str = "mh", *, k: int | None = None) -> None:
        """Encode ``page`` with xmfax's codec and append it."""
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r}; one of {', '.join(CODECS)}")
        k = default_k(page.resolution) if k is None else k
        data = encode_page(page.image, codec, k)
        info = page.info or {}
        self.add_encoded(data, width=page.width, rows=page.rows, resolution=page.resolution, codec=codec,
                         fill_order=1, byte_aligned=codec != "mmr",
                         bad_rows=info.get("bad_rows"), consecutive_bad_rows=info.get("consecutive_bad_rows"))

    def add_encoded(self, data: bytes, *, width: int, rows: int, resolution: Resolution, codec: str,
                    fill_order: int = 1, byte_aligned: bool = False, bad_rows: int | None = None,
                    consecutive_bad_rows: int | None = None, clean: int | None = None,
                    description: str | None = None, when: _dt.datetime | None = None) -> int:
        """Append one page from an already-encoded code stream; returns its page index.

        ``fill_order`` 2 is a stream in line order (LSB first, as received on a fax
        line); ``byte_aligned`` says every EOL ends on a byte boundary (T4Options
        FILLBITS). A trailing RTC/EOFB is allowed. ``bad_rows`` (rows the receiver
        regenerated) gives BadFaxLines and CleanFaxData (RFC 2306 §3).
        """
        if self._closed:
            raise ValueError("TiffWriter is closed")
        if codec not in CODECS:
            raise ValueError(f"codec {codec!r}; one of {', '.join(CODECS)}")
        if not (0 < width <= 65535 and 0 < rows <= 0xFFFFFFFF):
            raise ValueError(f"bad page size {width}x{rows}")
        f = self._f
        f.seek(0, io.SEEK_END)
        strip_at = f.tell()
        link_at, numbers = self._link_at, len(self._page_number_at)
        try:
            self._append(data, strip_at, width=width, rows=rows, resolution=resolution, codec=codec,
                         fill_order=fill_order, byte_aligned=byte_aligned, bad_rows=bad_rows,
                         consecutive_bad_rows=consecutive_bad_rows, clean=clean, description=description,
                         when=when)
        except OSError:
            self._take_back(strip_at, link_at, numbers)
            raise
        self.pages += 1
        return self.pages - 1

    def _take_back(self, strip_at: int, link_at: int, numbers: int) -> None:
        """Undo a page whose write failed: unlink it from the chain and cut the file
        back to where it began (best effort: the disk may still refuse)."""
        self._link_at = link_at
        del self._page_number_at[numbers:]
        try:            # a file we opened is unbuffered: nothing of the page is left pending
            self._put(link_at, struct.pack("<I", 0))
            self._f.truncate(strip_at)
            self._f.flush()
        except (OSError, ValueError):
            pass        # bytes past the last linked IFD are garbage every reader ignores

    def _sync(self) -> None:
        """fsync the file (``durable``); a target without a file descriptor has no disk to sync."""
        try:
            fd = self._f.fileno()
        except (AttributeError, OSError, io.UnsupportedOperation):
            return
        os.fsync(fd)

    def _put(self, at: int, raw: bytes) -> None:
        """Write all of ``raw`` at offset ``at`` (an unbuffered file may take it in parts)."""
        f = self._f
        f.seek(at)
        view = memoryview(raw)
        while view:
            n = f.write(view)
            if n is None:       # a non-blocking stream that took nothing
                raise OSError("write would block")
            view = view[n:]

    def _append(self, data: bytes, strip_at: int, *, width: int, rows: int, resolution: Resolution, codec: str,
                fill_order: int, byte_aligned: bool, bad_rows: int | None, consecutive_bad_rows: int | None,
                clean: int | None, description: str | None, when: _dt.datetime | None) -> None:
        head = data + b"\0" * ((strip_at + len(data)) % 2)
        entries: list[tuple[int, int, int, bytes]] = []

        def add(tag: int, typ: int, values) -> None:
            if typ == _ASCII:
                raw = values.encode("latin-1", "replace") + b"\0"
                entries.append((tag, typ, len(raw), raw))
            elif typ == _RATIONAL:
                raw = b"".join(struct.pack("<II", *_rational(v)) for v in values)
                entries.append((tag, typ, len(values), raw))
            else:
                raw = struct.pack("<" + ("H" if typ == _SHORT else "I") * len(values), *values)
                entries.append((tag, typ, len(values), raw))

        # RFC 2306 §3 (TIFF-F): the required and recommended fields, in tag order
        add(NEW_SUBFILE_TYPE, _LONG, [2])                       # a single page of a multi-page image
        add(IMAGE_WIDTH, _LONG, [width])
        add(IMAGE_LENGTH, _LONG, [rows])
        add(BITS_PER_SAMPLE, _SHORT, [1])
        add(COMPRESSION, _SHORT, [4 if codec == "mmr" else 3])
        add(PHOTOMETRIC, _SHORT, [0])                           # WhiteIsZero
        add(FILL_ORDER, _SHORT, [fill_order])
        desc = description if description is not None else self.description
        if desc:
            add(IMAGE_DESCRIPTION, _ASCII, desc)
        add(STRIP_OFFSETS, _LONG, [strip_at - self._base])
        add(ORIENTATION, _SHORT, [1])
        add(SAMPLES_PER_PIXEL, _SHORT, [1])
        add(ROWS_PER_STRIP, _LONG, [rows])
        add(STRIP_BYTE_COUNTS, _LONG, [len(data)])
        add(X_RESOLUTION, _RATIONAL, [resolution.x_dpi])
        add(Y_RESOLUTION, _RATIONAL, [resolution.y_dpi])
        add(PLANAR_CONFIGURATION, _SHORT, [1])
        if codec == "mmr":
            add(T6_OPTIONS, _LONG, [0])
        else:
            add(T4_OPTIONS, _LONG, [(1 if codec == "mr" else 0) | (4 if byte_aligned else 0)])
        add(RESOLUTION_UNIT, _SHORT, [2])                       # inch: 204 x 98/196/391 for metric
        add(PAGE_NUMBER, _SHORT, [self.pages, 0])
        add(SOFTWARE, _ASCII, self.software)
        stamp = when or self.when
        if stamp is not None:
            add(DATE_TIME, _ASCII, stamp.strftime("%Y:%m:%d %H:%M:%S"))
        if bad_rows is not None:
            add(BAD_FAX_LINES, _LONG, [bad_rows])
            add(CLEAN_FAX_DATA, _SHORT, [clean if clean is not None else (CLEAN if bad_rows == 0 else REGENERATED)])
            if consecutive_bad_rows is not None:
                add(CONSECUTIVE_BAD_FAX_LINES, _LONG, [consecutive_bad_rows])
        elif clean is not None:
            add(CLEAN_FAX_DATA, _SHORT, [clean])

        ifd_at = strip_at + len(head)
        extra_at = ifd_at + 2 + 12 * len(entries) + 4
        ifd = bytearray(struct.pack("<H", len(entries)))
        extra = bytearray()
        for tag, typ, count, raw in entries:
            if len(raw) <= 4:
                if tag == PAGE_NUMBER:
                    self._page_number_at.append(ifd_at + len(ifd) + 8)
                ifd += struct.pack("<HHI", tag, typ, count) + raw.ljust(4, b"\0")
            else:
                ifd += struct.pack("<HHII", tag, typ, count, extra_at + len(extra) - self._base)
                extra += raw
                if len(extra) % 2:
                    extra += b"\0"
        ifd += struct.pack("<I", 0)                            # the last IFD, for now
        self._put(strip_at, head + bytes(ifd) + bytes(extra))
        # link it in only now that it is complete
        self._put(self._link_at, struct.pack("<I", ifd_at - self._base))
        self._f.flush()
        if self.durable:
            self._sync()
        self._link_at = ifd_at + 2 + 12 * len(entries)

    # ------------------------------------------------------------------ end
    def close(self) -> None:
        """Write the page count into every PageNumber and close a file we opened."""
        if self._closed:
            return
        self._closed = True
        f = self._f
        for at in self._page_number_at:
            self._put(at + 2, struct.pack("<H", self.pages))
        f.seek(0, io.SEEK_END)
        f.flush()
        if self.durable:
            self._sync()
        if self._dest is not None:
            self._dest.write(f.getvalue())
        if self._own:
            f.close()

    def abort(self) -> None:
        """Close without patching page counts (the pages written so far stay valid)."""
        self._closed = True
        if self._dest is not None:
            self._dest.write(self._f.getvalue())
        if self._own:
            self._f.close()

    def __enter__(self) -> "TiffWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_tiff(pages: list[Page], target, *, codec: str = "mh", when: _dt.datetime | None = None,
               description: str | None = None) -> None:
    """Write ``pages`` as one TIFF Class F file."""
    with TiffWriter(target, when=when, description=description) as w:
        for page in pages:
            w.add_page(page, codec)
