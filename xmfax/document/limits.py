"""Limits that keep hostile or broken documents from exhausting memory or time.

Every loader checks these *before* it allocates: a TIFF's declared size, a PDF's
page count and page size, an image's header dimensions. Exceeding one raises
:class:`xmfax.errors.DocumentError` naming the file and the limit.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import DocumentError


@dataclass(frozen=True, slots=True)
class Limits:
    """Upper bounds for one :func:`xmfax.document.load` call (all inputs together)."""

    max_pages: int = 1000                 # pages produced from one call
    max_file_bytes: int = 512 * 1024 * 1024
    max_source_pixels: int = 150_000_000  # a source raster's width x height before scaling
    max_page_rows: int = 20_000           # rows of one fax page (A3 at 391 lpi is ~6,500)
    max_width: int = 16_384               # pixels, any source image or page
    max_ifds: int = 5000                  # TIFF directories walked (loops are detected too)

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


DEFAULT_LIMITS = Limits()
