"""The header line fax machines print at the top of each page (the "TTI").

Sans-IO: the date and time are passed in (the CLI passes the current time).
The header is drawn into a white band across the top of each page, replacing
what was there (as fax machines do), so a page keeps its length.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ..page import Page
from ._fields import fill
from .raster import render_square
from .text import MONO, get_font

DEFAULT_HEADER = "{date} {time}   FROM: {name} {ident}   PAGE {page}/{pages}"


@dataclass(frozen=True, slots=True)
class HeaderLine:
    """What goes in the header line. ``template`` fields: date, time, ident, name, to,
    page, pages (and any in ``extra``)."""

    ident: str = ""                      # the local identifier (T.30 TSI), e.g. "+44 20 7946 0000"
    name: str = ""                       # the sender's name
    to: str = ""
    template: str = DEFAULT_HEADER
    size_pt: float = 8.0
    margin_left: float = 0.25            # inches
    date_format: str = "%Y-%m-%d"
    time_format: str = "%H:%M"
    extra: tuple[tuple[str, str], ...] = ()

    def text(self, when: _dt.datetime, page: int, pages: int) -> str:
        fields = {
            "date": when.strftime(self.date_format),
            "time": when.strftime(self.time_format),
            "ident": self.ident,
            "name": self.name,
            "to": self.to,
            "page": page,
            "pages": pages,
        }
        fields.update(dict(self.extra))
        return " ".join(fill(self.template, fields).split())


def header_band(text: str, page: Page, header: HeaderLine) -> np.ndarray:
    """The header band (bool rows x page width) holding ``text``."""
    res = page.resolution
    dpi = res.x_dpi
    size_px = max(6, int(round(header.size_pt / 72 * dpi)))
    font, _ = get_font(MONO, size_px)
    band_h = int(size_px * 1.6)
    canvas = Image.new("L", (page.width, band_h), 255)
    ImageDraw.Draw(canvas).text((int(header.margin_left * dpi), int(size_px * 0.3)), text, font=font, fill=0)
    return render_square(dpi, res, canvas)


def add_header(pages: list[Page], header: HeaderLine, when: _dt.datetime, *, first_number: int = 1,
               total: int | None = None) -> list[Page]:
    """New pages with the header line drawn over the top band of each.

    Pages are numbered from ``first_number`` of ``total`` (len(pages) when None;
    pass the full count when a cover sheet is added later or pages are sent in parts).
    """
    total = len(pages) + first_number - 1 if total is None else total
    out = []
    for i, page in enumerate(pages):
        band = header_band(header.text(when, first_number + i, total), page, header)
        image = page.image.copy()
        rows = min(band.shape[0], image.shape[0])
        image[:rows] = band[:rows]
        info = dict(page.info, header=True)
        out.append(Page(image, page.resolution, page.source, info))
    return out
