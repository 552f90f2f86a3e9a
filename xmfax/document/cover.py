"""The cover sheet: an optional first page rendered from fields through a text template.

Template lines (after ``{field}`` substitution): ``# text`` is a title (large, bold),
``## text`` a heading, ``---`` a horizontal rule, anything else body text in a
monospaced font (so "To:      {to}" columns line up), wrapped at the margin. Fields:
to, to_fax, sender, sender_fax, subject, note, pages, date (and ``extra``).
The date is passed in (sans-IO); an empty field prints as nothing.
"""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass

from PIL import Image, ImageDraw

from ..page import Page, Resolution
from ._fields import fill
from .raster import PAPERS, page_rows, render_square, scan_width
from .text import MONO, SANS_BOLD, get_font, wrap_lines

DEFAULT_COVER = """\
# FAX
---
To:        {to}
Fax:       {to_fax}
From:      {sender}
Fax:       {sender_fax}
Date:      {date}
Pages:     {pages}
Subject:   {subject}
---

{note}
"""


@dataclass(frozen=True, slots=True)
class CoverSheet:
    """The fields of a cover sheet; ``pages`` counts the pages *including* the cover."""

    to: str = ""
    to_fax: str = ""
    sender: str = ""
    sender_fax: str = ""
    subject: str = ""
    note: str = ""
    pages: int | None = None
    date: _dt.datetime | None = None
    template: str = DEFAULT_COVER
    date_format: str = "%Y-%m-%d %H:%M"
    extra: tuple[tuple[str, str], ...] = ()

    def fields(self) -> dict:
        f = {
            "to": self.to, "to_fax": self.to_fax, "sender": self.sender,
            "sender_fax": self.sender_fax, "subject": self.subject, "note": self.note,
            "pages": "" if self.pages is None else self.pages,
            "date": self.date.strftime(self.date_format) if self.date else "",
        }
        f.update(dict(self.extra))
        return f


def render_cover(cover: CoverSheet, resolution: Resolution, paper: str = "a4") -> Page:
    """The cover sheet as one full-length page."""
    if paper not in PAPERS:
        paper = "a4"
    dpi = resolution.x_dpi
    width = scan_width(resolution, paper)
    height = int(round(PAPERS[paper][1] / 25.4 * dpi))
    margin = int(0.75 * dpi)
    body_px = int(round(12 / 72 * dpi))
    body, note = get_font(MONO, body_px)
    title, _ = get_font(SANS_BOLD, int(round(40 / 72 * dpi)))
    heading, _ = get_font(SANS_BOLD, int(round(18 / 72 * dpi)))
    columns = max(1, int((width - 2 * margin) // max(1.0, float(body.getlength("M")))))

    canvas = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(canvas)
    y = margin
    text = fill(cover.template, cover.fields())
    for raw in text.replace("\r\n", "\n").split("\n"):
        if y >= height - margin:
            break
        stripped = raw.strip()
        if stripped.startswith("# "):
            draw.text((margin, y), stripped[2:], font=title, fill=0)
            y += int(title.size * 1.3)
        elif stripped.startswith("## "):
            draw.text((margin, y), stripped[3:], font=heading, fill=0)
            y += int(heading.size * 1.4)
        elif stripped == "---":
            thick = max(2, dpi // 50)
            draw.rectangle((margin, y + body_px // 2, width - margin, y + body_px // 2 + thick), fill=0)
            y += body_px
        else:
            for line in (wrap_lines(raw, columns)[0] or [""]):
                if y >= height - margin:
                    break
                draw.text((margin, y), line, font=body, fill=0)
                y += int(body_px * 1.3)
    info = {"cover": True}
    if note:
        info["note"] = note
    return Page(render_square(dpi, resolution, canvas, page_rows(resolution, paper)), resolution, "cover", info)
