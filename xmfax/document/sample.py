"""A sample fax document (text, a table, a picture) for the demo, examples and tests.

Everything is drawn here, from nothing: no file is read, so the demo runs anywhere.
"""
from __future__ import annotations

import datetime as _dt

import numpy as np
from PIL import Image, ImageDraw

from ..page import Page, Resolution
from .raster import bilevel, render_square, scan_width
from .text import MONO, TextStyle, get_font, typeset_text

LETTER = """\
xmfax demonstration fax
=======================

Date: {date}

This document was drawn by xmfax and sent as a fax: T.30 over T.38 (UDPTL
on 127.0.0.1), exactly as a SIP trunk carries faxes today. The receiving
side is xmfax too; what it received sits beside this demo's output as a
TIFF Class F file and a PDF, with the call's JSON record and its ladder.

Page 2 is a table, page 3 a dithered picture: the hardest kind of page
for the T.4/T.6 codecs, since every row is full of short runs.

  * codecs: T.4 MH and MR, T.6 MMR, in C and in pure Python
  * T.30:   calling and answering, ECM with selective repeat, fallback
  * T.38:   IFP over UDPTL with redundancy
"""

TABLE = [
    ("Modulation", "Rate (bit/s)", "Training", "Used for"),
    ("V.21 ch 2", "300", "-", "T.30 control frames"),
    ("V.27ter", "2400 / 4800", "long", "old machines, bad lines"),
    ("V.29", "7200 / 9600", "long", "most G3 machines"),
    ("V.17", "7200 - 14400", "long / short", "modern G3 machines"),
    ("V.34", "2400 - 33600", "V.8", "super G3 (not here)"),
]


def _canvas(resolution: Resolution, paper: str = "a4") -> tuple[Image.Image, int]:
    dpi = resolution.x_dpi
    width = scan_width(resolution, paper)
    height = int(round(297 / 25.4 * dpi))
    return Image.new("L", (width, height), 255), dpi


def table_page(resolution: Resolution = Resolution.FINE) -> Page:
    canvas, dpi = _canvas(resolution)
    draw = ImageDraw.Draw(canvas)
    size = int(11 / 72 * dpi)
    font, _ = get_font(MONO, size)
    title, _ = get_font(MONO, int(16 / 72 * dpi))
    left, top = int(0.8 * dpi), int(1.0 * dpi)
    draw.text((left, top), "Fax modulations (T.30 Table 2)", font=title, fill=0)
    cols = [0, 2.0, 3.9, 5.4, 7.2]                      # inches from the left margin
    row_h = int(size * 2.2)
    y0 = top + int(0.6 * dpi)
    for r, row in enumerate(TABLE):
        y = y0 + r * row_h
        if r == 0:
            draw.rectangle((left, y, left + int(cols[-1] * dpi), y + row_h), fill=215)
        for c, cell in enumerate(row):
            draw.text((left + int(cols[c] * dpi) + size // 2, y + size // 2), cell, font=font, fill=0)
    bottom = y0 + len(TABLE) * row_h
    for r in range(len(TABLE) + 1):
        y = y0 + r * row_h
        draw.line((left, y, left + int(cols[-1] * dpi), y), fill=0, width=max(1, dpi // 100))
    for c in cols:
        x = left + int(c * dpi)
        draw.line((x, y0, x, bottom), fill=0, width=max(1, dpi // 100))
    return Page(render_square(dpi, resolution, canvas), resolution, "sample:table")


def picture_page(resolution: Resolution = Resolution.FINE) -> Page:
    """A synthetic photograph (soft shading, a sun, hills), dithered as fax machines do."""
    canvas, dpi = _canvas(resolution)
    w, h = canvas.size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    sky = 90 + 130 * (y / h)
    sun = 255 * np.exp(-(((x - 0.72 * w) ** 2 + (y - 0.25 * h) ** 2) / (2 * (0.07 * w) ** 2)))
    hills = (y > (0.55 * h + 0.08 * h * np.sin(x / w * 7.0))).astype(np.float32)
    grey = np.clip(sky + sun - hills * (60 + 80 * (y / h)), 0, 255).astype(np.uint8)
    image = Image.fromarray(grey, "L")
    draw = ImageDraw.Draw(image)
    font, _ = get_font(MONO, int(14 / 72 * dpi))
    draw.text((int(0.8 * dpi), int(0.6 * dpi)), "A dithered picture", font=font, fill=0)
    rows = int(round(h * resolution.y_dpi / dpi))
    image = image.resize((w, rows), Image.Resampling.BOX)
    return Page(bilevel(image, "dither"), resolution, "sample:picture")


def sample_pages(resolution: Resolution = Resolution.FINE, when: _dt.datetime | None = None) -> list[Page]:
    """The three-page sample document: a letter, a table, a picture."""
    when = when or _dt.datetime(2026, 1, 1)
    images, _ = typeset_text(LETTER.format(date=when.strftime("%Y-%m-%d %H:%M")), resolution, "a4",
                             TextStyle())
    letter = [Page(img, resolution, "sample:letter") for img in images[:1]]
    return letter + [table_page(resolution), picture_page(resolution)]
