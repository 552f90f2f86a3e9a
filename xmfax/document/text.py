"""Plain text typeset as fax pages, and the fonts the cover sheet and header share.

Text is drawn in a monospaced font (DejaVu Sans Mono from fonts-dejavu-core; Pillow's
built-in font when it is missing, noted in each page's ``info["note"]``) on a grid of
square pixels at the fax's x resolution, then resampled to its y resolution.
Tabs are expanded, long lines wrapped at the margin, a form feed starts a new page.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..page import Resolution
from .raster import PAPERS, page_rows, render_square, scan_width

FONT_DIRS = ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/dejavu", "/usr/local/share/fonts")
MONO = "DejaVuSansMono.ttf"
MONO_BOLD = "DejaVuSansMono-Bold.ttf"
SANS = "DejaVuSans.ttf"
SANS_BOLD = "DejaVuSans-Bold.ttf"
FALLBACK_NOTE = "DejaVu fonts not found (install fonts-dejavu-core); Pillow's built-in font used"


@dataclass(frozen=True, slots=True)
class TextStyle:
    """How plain text is set: font size in points, line spacing, margins in inches."""

    size_pt: float = 10.0
    line_spacing: float = 1.2
    margin_top: float = 0.5
    margin_bottom: float = 0.5
    margin_left: float = 0.75
    margin_right: float = 0.5
    tab_size: int = 8
    font_path: str | None = None     # a TrueType font; DejaVu Sans Mono when None


def find_font(name: str) -> str | None:
    for d in FONT_DIRS:
        p = os.path.join(d, name)
        if os.path.exists(p):
            return p
    return None


@lru_cache(maxsize=64)
def get_font(name: str, size_px: int, path: str | None = None) -> tuple[ImageFont.ImageFont, str | None]:
    """(font, note): the named DejaVu font (or ``path``) at ``size_px``, else Pillow's default."""
    p = path or find_font(name)
    if p:
        try:
            return ImageFont.truetype(p, size_px), None
        except OSError:
            pass
    try:
        return ImageFont.load_default(size=size_px), FALLBACK_NOTE
    except (TypeError, AttributeError, OSError):  # Pillow built without FreeType
        return ImageFont.load_default(), FALLBACK_NOTE


# control characters other than tab would draw as boxes or nothing: show a space
_CONTROLS = {c: " " for c in range(32) if c != 9}


def _clean(line: str) -> str:
    return line.translate(_CONTROLS)


def wrap_lines(text: str, columns: int, tab_size: int = 8) -> list[list[str]]:
    """Text as pages of lines (page breaks only at form feeds; pagination is the caller's).

    Tabs expand to ``tab_size`` stops, lines longer than ``columns`` wrap hard, CR LF
    and CR are line ends.
    """
    columns = max(1, columns)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    chunks = text.split("\f")
    pages: list[list[str]] = []
    for chunk in chunks:
        lines: list[str] = []
        raw = chunk.split("\n")
        if chunk.endswith("\n"):
            raw.pop()
        for line in raw:
            line = _clean(line).expandtabs(tab_size).rstrip()
            if not line:
                lines.append("")
                continue
            for start in range(0, len(line), columns):
                lines.append(line[start:start + columns])
        pages.append(lines)
    return pages


@dataclass(frozen=True, slots=True)
class TextLayout:
    """Plain text laid out on pages: ``pages`` of lines, and how to draw them."""

    pages: list[list[str]]
    width: int
    height: int
    rows: int                       # fax rows of each page
    left: int
    top: int
    line_h: int
    draw_dpi: int
    resolution: Resolution
    font: ImageFont.ImageFont
    note: str | None


def layout_text(text: str, resolution: Resolution, paper: str = "a4", style: TextStyle = TextStyle(), *,
                max_pages: int | None = None) -> TextLayout:
    """Wrap and paginate ``text`` (nothing drawn yet); at most ``max_pages`` + 1 pages are kept
    (one more than allowed, so the caller can tell the text was too long)."""
    if paper not in PAPERS:
        paper = "a4"
    dpi = resolution.x_dpi
    width = scan_width(resolution, paper)
    height = int(round(PAPERS[paper][1] / 25.4 * dpi))
    size_px = max(6, int(round(style.size_pt / 72 * dpi)))
    font, note = get_font(MONO, size_px, style.font_path)
    advance = max(1.0, float(font.getlength("M")))
    line_h = max(1, int(round(size_px * style.line_spacing)))
    left = int(style.margin_left * dpi)
    top = int(style.margin_top * dpi)
    usable_w = width - left - int(style.margin_right * dpi)
    usable_h = height - top - int(style.margin_bottom * dpi)
    columns = max(1, int(usable_w // advance))
    per_page = max(1, usable_h // line_h)

    pages_lines: list[list[str]] = []
    for block in wrap_lines(text, columns, style.tab_size):
        if not block:
            pages_lines.append([])
        for i in range(0, len(block), per_page):
            pages_lines.append(block[i:i + per_page])
            if max_pages is not None and len(pages_lines) > max_pages:
                break
        if max_pages is not None and len(pages_lines) > max_pages:
            break
    # a trailing form feed yields an empty last page: drop it (but keep one page for empty text)
    while len(pages_lines) > 1 and not pages_lines[-1]:
        pages_lines.pop()
    if not pages_lines:
        pages_lines = [[]]
    if max_pages is not None:
        pages_lines = pages_lines[:max_pages + 1]
    return TextLayout(pages_lines, width, height, page_rows(resolution, paper), left, top, line_h, dpi,
                      resolution, font, note)


def render_text_page(layout: TextLayout, lines: list[str]) -> np.ndarray:
    """One page of a :class:`TextLayout` drawn (bool, True = black)."""
    canvas = Image.new("L", (layout.width, layout.height), 255)
    draw = ImageDraw.Draw(canvas)
    for i, line in enumerate(lines):
        if line:
            draw.text((layout.left, layout.top + i * layout.line_h), line, font=layout.font, fill=0)
    return render_square(layout.draw_dpi, layout.resolution, canvas, layout.rows)


def typeset_text(
    text: str,
    resolution: Resolution,
    paper: str = "a4",
    style: TextStyle = TextStyle(),
    *,
    max_pages: int | None = None,
) -> tuple[list[np.ndarray], str | None]:
    """Plain text as page images (bool, True = black) and a note if a fallback font was used."""
    layout = layout_text(text, resolution, paper, style, max_pages=max_pages)
    return [render_text_page(layout, lines) for lines in layout.pages], layout.note
