"""Cover sheet, header line, text layout details."""
from __future__ import annotations

import datetime as dt

import numpy as np

from xmfax import document
from xmfax.document import CoverSheet, HeaderLine, add_header, render_cover
from xmfax.document._fields import fill
from xmfax.document.raster import page_rows
from xmfax.document.text import wrap_lines
from xmfax.page import Resolution

from docsamples import fax_page

WHEN = dt.datetime(2024, 2, 29, 13, 45)


def test_cover_is_a_full_page_with_ink():
    page = render_cover(CoverSheet(to="Bob", sender="Alice", subject="Quote", note="Line one\nLine two",
                                   pages=3, date=WHEN), Resolution.FINE, "a4")
    assert page.width == 1728 and page.rows == page_rows(Resolution.FINE, "a4")
    assert page.info["cover"] and 0.002 < page.image.mean() < 0.05
    std = render_cover(CoverSheet(to="Bob"), Resolution.STANDARD, "letter")
    assert std.rows == page_rows(Resolution.STANDARD, "letter")


def test_cover_fields_change_the_page_and_template_restyles():
    a = render_cover(CoverSheet(to="Bob"), Resolution.FINE)
    b = render_cover(CoverSheet(to="Robert Longname"), Resolution.FINE)
    assert not np.array_equal(a.image, b.image)
    plain = render_cover(CoverSheet(to="Bob", template="Hello {to}\n{unknown} {"), Resolution.FINE)
    assert plain.image.mean() < a.image.mean()              # no title, no rules
    ink_rows = np.nonzero(plain.image.any(axis=1))[0]
    assert ink_rows.max() - ink_rows.min() < 150            # two short lines only


def test_fill_never_raises():
    assert fill("{a} {b} {", {"a": 1}) == "{a} {b} {"
    assert fill("{a} {b}", {"a": 1}) == "1 {b}"
    assert fill("{a!r:>5}", {"a": None}) == "   ''"


def test_header_overlays_top_band_and_numbers_pages():
    pages = [fax_page(rows=500, seed=s) for s in (1, 2)]
    pages = [type(p)(np.ones_like(p.image), p.resolution) for p in pages]        # all black pages
    out = add_header(pages, HeaderLine(ident="+1 555 0100", name="ACME"), WHEN)
    assert len(out) == 2 and all(o.rows == 500 for o in out)
    band = out[0].image[:30]
    assert 0.01 < band.mean() < 0.4                          # mostly white band with text
    assert out[0].image[60:].all()                          # the rest untouched
    assert not np.array_equal(out[0].image[:30], out[1].image[:30])  # "1/2" vs "2/2"
    assert pages[0].image.all()                             # inputs unchanged
    h = HeaderLine(ident="X", name="N")
    assert h.text(WHEN, 2, 5) == "2024-02-29 13:45 FROM: N X PAGE 2/5"


def test_header_at_standard_resolution_is_half_height():
    def ink_height(res):
        blank = type(fax_page())(np.zeros((300, 1728), dtype=bool), res)
        rows = np.nonzero(add_header([blank], HeaderLine(), WHEN)[0].image.any(axis=1))[0]
        return rows.max() - rows.min() + 1

    fine, std = ink_height(Resolution.FINE), ink_height(Resolution.STANDARD)
    assert 15 <= fine <= 40 and abs(std * 2 - fine) <= 3


def test_wrap_lines():
    assert wrap_lines("abcdef", 4) == [["abcd", "ef"]]
    assert wrap_lines("a\tb", 80, 4) == [["a   b"]]
    assert wrap_lines("x\fy\r\nz", 10) == [["x"], ["y", "z"]]
    assert wrap_lines("bell\x07", 10) == [["bell"]]


def test_text_pages_of_a_long_file_respect_limits():
    import pytest

    from xmfax.errors import DocumentError

    with pytest.raises(DocumentError, match="exceeds the limit"):
        document.load(b"x\n" * 10000, limits=document.Limits(max_pages=20))
