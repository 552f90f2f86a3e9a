"""Limits that keep hostile or broken documents from exhausting memory or time.

Every loader checks these *before* it allocates: a TIFF's declared sizes (all pages
summed before the first is decoded), a PDF's page count and page sizes (likewise), an
image's header dimensions and the bytes its pixels would take, a text's length.
Exceeding one raises :class:`xmfax.errors.DocumentError` naming the file and the limit.

Totals are kept in a :class:`Budget` for one document: one ``load``/``iter_pages``
call, or several sharing a budget (``xmfax convert`` with several inputs). The time
budget needs a clock passed in (``clock=time.monotonic`` at the edge: the CLI, the
API); this package never reads the clock itself (STYLE.md: the core does not import
``time``). Without a clock the pixel and byte totals still bound the work.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..errors import DocumentError


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds for one document (one :func:`xmfax.document.load` call, or a shared Budget)."""

    max_pages: int = 1000                 # pages produced from one call
    max_file_bytes: int = 512 * 1024 * 1024
    max_source_pixels: int = 150_000_000  # a source raster's width x height before scaling
    max_page_rows: int = 20_000           # rows of one fax page (A3 at 391 lpi is ~6,500)
    max_width: int = 16_384               # pixels, any source image or page
    max_ifds: int = 5000                  # TIFF directories walked (loops are detected too)
    # totals over the whole document
    max_total_source_pixels: int = 2_000_000_000   # decoded or drawn before scaling, all pages
    max_total_pixels: int = 1_000_000_000          # fax pixels of all pages (1 GB as bool arrays;
                                                   # ~240 fine or ~500 standard A4 pages)
    max_image_bytes: int = 256 * 1024 * 1024       # one decoded source image (Pillow's buffer)
    max_text_chars: int = 4_000_000                # characters of a plain-text document
    max_line_chars: int = 200_000                  # characters of one text line before wrapping
    max_seconds: float | None = 300.0              # wall time of one document (needs a clock)

    def check_pages(self, count: int, source: str | None) -> None:
        if count > self.max_pages:
            raise DocumentError(f"{count} pages exceeds the limit of {self.max_pages}", source=source)

    def check_source_size(self, width: int, height: int, source: str | None) -> None:
        if width <= 0 or height <= 0:
            raise DocumentError(f"image has an empty size {width}x{height}", source=source)
        if width > self.max_width:
            raise DocumentError(f"image width {width} exceeds the limit of {self.max_width}", source=source)
        if width * height > self.max_source_pixels:
            raise DocumentError(
                f"image of {width}x{height} pixels exceeds the limit of {self.max_source_pixels} "
                "(a decompression bomb?)",
                source=source,
            )

    def check_rows(self, rows: int, source: str | None) -> None:
        if rows > self.max_page_rows:
            raise DocumentError(f"page of {rows} rows exceeds the limit of {self.max_page_rows}", source=source)

    def check_image_bytes(self, nbytes: int, what: str, source: str | None) -> None:
        if nbytes > self.max_image_bytes:
            raise DocumentError(f"{what} would take {nbytes // 2**20} MiB decoded, over the limit of "
                                f"{self.max_image_bytes // 2**20} MiB", source=source)

    def check_text(self, chars: int, longest_line: int, source: str | None) -> None:
        if chars > self.max_text_chars:
            raise DocumentError(f"text of {chars} characters exceeds the limit of {self.max_text_chars}",
                                source=source)
        if longest_line > self.max_line_chars:
            raise DocumentError(f"a text line of {longest_line} characters exceeds the limit of "
                                f"{self.max_line_chars}", source=source)


DEFAULT_LIMITS = Limits()


class Budget:
    """What one document has used so far, checked against its :class:`Limits`.

    ``pages``: pages produced; ``source_pixels``: pixels decoded or drawn before
    scaling; ``pixels``: fax pixels of the pages produced. Callers add an amount
    *before* allocating it, so a bomb is refused before it costs memory.
    ``clock``: a monotonic clock in seconds (e.g. ``time.monotonic``), or None for
    no time budget.
    """

    def __init__(self, limits: Limits = DEFAULT_LIMITS, clock: Callable[[], float] | None = None, *,
                 pages: int = 0):
        self.limits = limits
        self.clock = clock
        self.started = clock() if clock is not None else None
        self.pages = pages
        self.source_pixels = 0
        self.pixels = 0

    def check_time(self, source: str | None) -> None:
        if self.clock is None or self.limits.max_seconds is None:
            return
        spent = self.clock() - self.started
        if spent > self.limits.max_seconds:
            raise DocumentError(f"still loading after {spent:.0f} s: over the time limit of "
                                f"{self.limits.max_seconds:g} s", source=source)

    def add_pages(self, count: int, source: str | None) -> None:
        self.limits.check_pages(self.pages + count, source)
        self.pages += count

    def add_source_pixels(self, pixels: int, source: str | None) -> None:
        total = self.source_pixels + pixels
        if total > self.limits.max_total_source_pixels:
            raise DocumentError(f"{total:,} source pixels in all exceeds the limit of "
                                f"{self.limits.max_total_source_pixels:,} (a decompression bomb?)", source=source)
        self.source_pixels = total

    def add_pixels(self, pixels: int, source: str | None) -> None:
        total = self.pixels + pixels
        if total > self.limits.max_total_pixels:
            raise DocumentError(f"{total:,} fax pixels in all exceeds the limit of "
                                f"{self.limits.max_total_pixels:,} (split the document, or raise "
                                "Limits.max_total_pixels)", source=source)
        self.pixels = total
