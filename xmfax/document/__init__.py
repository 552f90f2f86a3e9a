"""Fax documents: files in as fax pages, fax pages out as files.

* :func:`load` — TIFF (any compression; fax TIFFs losslessly), PDF, PNG/JPEG/GIF/BMP/
  WebP images, plain text -> ``list[Page]``; :func:`iter_pages` the same one page at a time.
  A page that does not decode whole raises DocumentError (:class:`DamagedPageError` for
  fax codings) unless ``tolerant=True``.
* :func:`save` — pages -> TIFF Class F (MH/MR/MMR), PDF (G4 images), PNG previews.
* :class:`TiffWriter` — append already-encoded pages to a TIFF Class F file one by one
  (what a T.30 receiver uses).
* :class:`CoverSheet` / :func:`render_cover`, :class:`HeaderLine` / :func:`add_header`.
* :class:`Limits` / :class:`Budget` — bounds against hostile input; :func:`describe` — what
  ``xmfax info`` shows.

Nothing here reads the clock: dates are passed in. See docs/documents.md.
"""
from __future__ import annotations

from .cover import DEFAULT_COVER, CoverSheet, render_cover
from .header import DEFAULT_HEADER, HeaderLine, add_header
from .info import describe
from .limits import DEFAULT_LIMITS, Budget, Limits
from .load import iter_pages, load
from .raster import PAPER_NAMES
from .save import png_paths, save
from .text import TextStyle, typeset_text
from .tiff import DamagedPageError
from .tiffwriter import TiffWriter, write_tiff

__all__ = [
    "load", "iter_pages", "save", "describe", "Limits", "Budget", "DEFAULT_LIMITS", "DamagedPageError", "TiffWriter", "write_tiff", "CoverSheet",
    "render_cover", "DEFAULT_COVER", "HeaderLine", "add_header", "DEFAULT_HEADER", "TextStyle",
    "typeset_text", "png_paths", "PAPER_NAMES",
]
