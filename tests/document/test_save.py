"""save() and TiffWriter: round trips give identical pixels; the TIFF is Class F."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest
from PIL import Image

from xmfax import codecs, document
from xmfax.document import TiffWriter, png_paths
from xmfax.document.tiff import (BAD_FAX_LINES, CLEAN_FAX_DATA, COMPRESSION, DATE_TIME, FILL_ORDER,
                                 NEW_SUBFILE_TYPE, PAGE_NUMBER, RESOLUTION_UNIT, SOFTWARE, T4_OPTIONS,
                                 X_RESOLUTION, Y_RESOLUTION, parse_tiff)
from xmfax.errors import DocumentError
from xmfax.page import Page, Resolution

from docsamples import fax_page

WHEN = dt.datetime(2024, 5, 6, 7, 8, 9)


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
@pytest.mark.parametrize("res", [Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE, Resolution.R300])
def test_tiff_round_trip(tmp_path, codec, res):
    width = res.widths["a4"]
    pages = [fax_page(rows=120, width=width, seed=s, resolution=res) for s in (1, 2)]
    path = tmp_path / "out.tif"
    assert document.save(pages, path, codec=codec, when=WHEN) == [str(path)]
    back = document.load(path)
    assert len(back) == 2
    for a, b in zip(pages, back):
        assert b.resolution is res and np.array_equal(a.image, b.image)
    # Pillow (its own libtiff) reads the same pixels
    img = Image.open(path)
    for i, a in enumerate(pages):
        img.seek(i)
        assert np.array_equal(~np.asarray(img.convert("1"), dtype=bool), a.image)


def test_tiff_class_f_tags(tmp_path):
    path = tmp_path / "f.tif"
    document.save([fax_page(), fax_page(seed=2)], path, codec="mr", when=WHEN, description="invoice 42")
    ifds = parse_tiff(path.read_bytes())
    for n, ifd in enumerate(ifds):
        assert ifd.get(NEW_SUBFILE_TYPE) == 2
        assert ifd.get(COMPRESSION) == 3 and ifd.get(T4_OPTIONS) == 5        # 2-D + fill bits
        assert ifd.get(FILL_ORDER) == 1 and ifd.get(RESOLUTION_UNIT) == 2
        assert ifd.get(X_RESOLUTION) == 204 and ifd.get(Y_RESOLUTION) == 196
        assert ifd.values(PAGE_NUMBER) == (n, 2)
        assert ifd.tags[SOFTWARE].startswith("xmfax") and ifd.tags[DATE_TIME] == "2024:05:06 07:08:09"
        assert ifd.tags[270] == "invoice 42"
    assert len(document.load(path)) == 2


def test_g4_tiff_smaller_than_mh(tmp_path):
    page = fax_page(rows=600)
    document.save([page], tmp_path / "a.tif", codec="mh")
    document.save([page], tmp_path / "b.tif", codec="mmr")
    assert (tmp_path / "b.tif").stat().st_size < (tmp_path / "a.tif").stat().st_size


def test_writer_keeps_pages_written_before_a_failure(tmp_path):
    path = tmp_path / "rx.tif"
    w = TiffWriter(path, when=WHEN)
    pages = [fax_page(seed=s) for s in (1, 2)]
    for p in pages:
        w.add_page(p)
    # the file is a valid 2-page TIFF now, before close and before any later failure
    back = document.load(path)
    assert [np.array_equal(a.image, b.image) for a, b in zip(pages, back)] == [True, True]
    assert parse_tiff(path.read_bytes())[0].values(PAGE_NUMBER) == (0, 0)   # total unknown yet
    with pytest.raises(ValueError):
        w.add_encoded(b"", width=0, rows=1, resolution=Resolution.FINE, codec="mh")
    w.abort()
    assert len(document.load(path)) == 2


def test_add_encoded_line_order_stream_with_rtc_and_bad_rows(tmp_path):
    page = fax_page(rows=200, resolution=Resolution.STANDARD)
    # as a T.30 receiver gets it: LSB first, EOLs, RTC, no fill
    data = codecs.encode(page.image, codec="mr", k=2, eol=True, rtc=True, bit_order="lsb")
    buf = io.BytesIO()
    with TiffWriter(buf, when=WHEN) as w:
        w.add_encoded(data, width=1728, rows=200, resolution=Resolution.STANDARD, codec="mr", fill_order=2,
                      bad_rows=3, consecutive_bad_rows=2)
        w.add_encoded(codecs.encode(page.image, codec="mmr", bit_order="msb"), width=1728, rows=200,
                      resolution=Resolution.STANDARD, codec="mmr", bad_rows=0)
    ifds = parse_tiff(buf.getvalue())
    assert ifds[0].get(FILL_ORDER) == 2 and ifds[0].get(BAD_FAX_LINES) == 3 and ifds[0].get(CLEAN_FAX_DATA) == 1
    assert ifds[1].get(CLEAN_FAX_DATA) == 0 and ifds[1].values(PAGE_NUMBER) == (1, 2)
    back = document.load(buf.getvalue())
    assert all(np.array_equal(b.image, page.image) for b in back)


def test_writer_to_unseekable_stream():
    class Pipe(io.RawIOBase):
        def __init__(self):
            self.chunks = []

        def writable(self):
            return True

        def write(self, b):
            self.chunks.append(bytes(b))
            return len(b)

    pipe = Pipe()
    document.save([fax_page()], pipe, format="tiff")
    assert np.array_equal(document.load(b"".join(pipe.chunks))[0].image, fax_page().image)


@pytest.mark.parametrize("res", [Resolution.STANDARD, Resolution.FINE, Resolution.R200])
def test_pdf_round_trip_through_pdfium(tmp_path, res):
    pages = [fax_page(rows=300, seed=s, resolution=res) for s in (1, 2)]
    path = tmp_path / "out.pdf"
    document.save(pages, path, when=WHEN)
    data = path.read_bytes()
    assert data.count(b"/CCITTFaxDecode") == 2 and b"/K -1" in data
    info = document.describe(path)
    assert [p["compression"] for p in info["pages"]] == ["CCITTFaxDecode"] * 2
    assert info["pages"][0]["width_pt"] == pytest.approx(1728 / res.x_dpi * 72, abs=0.01)
    assert info["pages"][0]["height_pt"] == pytest.approx(300 / res.y_dpi * 72, abs=0.01)
    # pdfium extracts the G4 image and decodes it to the same pixels
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument(data)
    for i, p in enumerate(pages):
        obj = next(pdf[i].get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE]))
        img = obj.get_bitmap(render=False).to_pil().convert("L")
        assert np.array_equal(np.asarray(img) < 128, p.image)
    pdf.close()
    # and load() renders the page back to the same pixels at the same resolution
    back = document.load(path, resolution=res)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, back))


def test_png_naming_and_pixels(tmp_path):
    pages = [fax_page(rows=100, seed=s) for s in (1, 2, 3)]
    assert png_paths(tmp_path / "out.png", 1) == [str(tmp_path / "out.png")]
    written = document.save(pages, tmp_path / "out.png")
    assert written == [str(tmp_path / f"out-{i}.png") for i in (1, 2, 3)]
    for path, page in zip(written, pages):
        img = Image.open(path)
        assert img.info["dpi"][0] == pytest.approx(204, abs=0.5)
        assert np.array_equal(~np.asarray(img.convert("1"), dtype=bool), page.image)
    single = document.save(pages[:1], tmp_path / "one.png")
    assert single == [str(tmp_path / "one.png")]
    buf = io.BytesIO()
    document.save(pages[:1], buf, format="png")
    assert buf.getvalue().startswith(b"\x89PNG")
    with pytest.raises(ValueError):
        document.save(pages, io.BytesIO(), format="png")


def test_save_errors(tmp_path):
    with pytest.raises(ValueError, match="format"):
        document.save([fax_page()], tmp_path / "x.doc")
    with pytest.raises(ValueError, match="codec"):
        document.save([fax_page()], tmp_path / "x.tif", codec="jbig")
    with pytest.raises(DocumentError, match="no pages"):
        document.save([], tmp_path / "x.tif")
    with pytest.raises(DocumentError, match="cannot create"):
        document.save([fax_page()], tmp_path / "missing-dir" / "x.tif")


def test_itu_pages_round_trip_all_formats(tmp_path, itu_pages):
    pages = [document.load(p)[0] for p in itu_pages]
    for fmt, codec in (("tif", "mh"), ("tif", "mr"), ("tif", "mmr"), ("pdf", None)):
        path = tmp_path / f"itu-{codec}.{fmt}"
        document.save(pages, path, codec=codec)
        back = document.load(path)
        assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, back)), (fmt, codec)
