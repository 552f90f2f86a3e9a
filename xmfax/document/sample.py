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
    """A page with a synthetic photograph (soft shading, a sun, hills) in a frame,
    dithered as fax machines do with photos, and a caption."""
    canvas, dpi = _canvas(resolution)
    w, h = canvas.size
    draw = ImageDraw.Draw(canvas)
    title, _ = get_font(MONO, int(16 / 72 * dpi))
    body, _ = get_font(MONO, int(11 / 72 * dpi))
    left, top = int(0.8 * dpi), int(1.0 * dpi)
    draw.text((left, top), "A dithered picture", font=title, fill=0)
    pw, ph = int(4.0 * dpi), int(2.6 * dpi)           # the photo: 4 x 2.6 inches
    y, x = np.mgrid[0:ph, 0:pw].astype(np.float32)
    sky = 70 + 150 * (y / ph)
    sun = 200 * np.exp(-(((x - 0.72 * pw) ** 2 + (y - 0.3 * ph) ** 2) / (2 * (0.08 * pw) ** 2)))
    ridge = 0.6 * ph + 0.1 * ph * np.sin(x / pw * 6.0) + 0.05 * ph * np.sin(x / pw * 17.0)
    hills = y > ridge
    grey = np.where(hills, 40 + 90 * ((y - ridge) / ph), np.clip(sky + sun, 0, 255))
    photo = Image.fromarray(grey.astype(np.uint8), "L")
    rows = int(round(ph * resolution.y_dpi / dpi))
    dithered = bilevel(photo.resize((pw, rows), Image.Resampling.BOX), "dither")
    page = render_square(dpi, resolution, canvas)
    py = int(round((top + int(0.6 * dpi)) * resolution.y_dpi / dpi))
    page[py:py + rows, left:left + pw] = dithered
    page[py - 2:py, left - 2:left + pw + 2] = True                 # a thin frame
    page[py + rows:py + rows + 2, left - 2:left + pw + 2] = True
    page[py - 2:py + rows + 2, left - 2:left] = True
    page[py - 2:py + rows + 2, left + pw:left + pw + 2] = True
    caption = Image.new("L", (w, int(0.5 * dpi)), 255)
    ImageDraw.Draw(caption).text((left, int(0.1 * dpi)), "Photographs are dithered (error diffusion): "
                                 "the hardest page for the codecs.", font=body, fill=0)
    band = render_square(dpi, resolution, caption)
    cy = py + rows + int(round(0.3 * dpi * resolution.y_dpi / dpi))
    page[cy:cy + band.shape[0]] = band[: max(0, min(band.shape[0], page.shape[0] - cy))]
    return Page(page, resolution, "sample:picture")


def sample_pages(resolution: Resolution = Resolution.FINE, when: _dt.datetime | None = None) -> list[Page]:
    """The three-page sample document: a letter, a table, a picture."""
    when = when or _dt.datetime(2026, 1, 1)
    images, _ = typeset_text(LETTER.format(date=when.strftime("%Y-%m-%d %H:%M")), resolution, "a4",
                             TextStyle())
    letter = [Page(img, resolution, "sample:letter") for img in images[:1]]
    return letter + [table_page(resolution), picture_page(resolution)]
