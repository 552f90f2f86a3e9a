"""load(): every kind of input becomes fax pages of the right geometry."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from xmfax import document
from xmfax.document.raster import bilevel, is_photo, page_rows
from xmfax.errors import DocumentError
from xmfax.page import Resolution

from docsamples import fax_page, pdf_bytes, photo_image, text_image, to_bytes


def black(img: Image.Image) -> np.ndarray:
    return ~np.asarray(img.convert("1"), dtype=bool)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF", "PPM"])
def test_images_of_every_format_become_a4_pages(fmt):
    data = to_bytes(text_image(), fmt)
    pages = document.load(data, resolution="fine")
    assert len(pages) == 1
    p = pages[0]
    assert p.width == 1728 and p.resolution is Resolution.FINE
    # 1275x1650 source, aspect 1.294, at 204x196: 1728 * 1.294 * 196/204 rows
    assert abs(p.rows - round(1728 * 1650 / 1275 * 196 / 204)) <= 1
    assert 0.005 < p.image.mean() < 0.2                 # text, not a black or empty page
    assert p.info["format"] in (fmt.lower(), "jpeg", "ppm", "tiff", "webp")


def test_text_scan_is_thresholded_and_photo_is_dithered():
    text = document.load(to_bytes(text_image(), "PNG"))[0]
    photo = document.load(to_bytes(photo_image(), "JPEG"))[0]
    assert not is_photo(text_image()) and is_photo(photo_image().convert("L"))
    # thresholded text: long horizontal runs; dithered photo: many short runs
    def transitions(img):
        return np.count_nonzero(img[:, 1:] != img[:, :-1]) / img.size
    assert transitions(photo.image) > 5 * transitions(text.image)
    # a dithered mid-grey keeps its average tone
    grey = Image.new("L", (400, 400), 128)
    assert abs(bilevel(grey, "dither").mean() - 0.5) < 0.03
    assert bilevel(grey, "threshold", 100).mean() == 0.0


def test_bilevel_override():
    data = to_bytes(photo_image(), "PNG")
    a = document.load(data, bilevel="threshold")[0].image
    b = document.load(data, bilevel="dither")[0].image
    assert not np.array_equal(a, b)


def test_standard_resolution_halves_rows_and_paper_widths():
    data = to_bytes(text_image(), "PNG")
    fine = document.load(data, resolution="fine")[0]
    std = document.load(data, resolution="standard")[0]
    assert abs(std.rows * 2 - fine.rows) <= 2
    assert document.load(data, paper="b4")[0].width == 2048
    assert document.load(data, paper="a3")[0].width == 2432
    assert document.load(data, resolution="superfine")[0].width == 1728
    assert document.load(data, resolution="300x300")[0].width == 2592
    assert document.load(data, resolution="ultrafine")[0].width == 3456


def test_auto_paper_from_physical_width():
    # 300 mm wide at 100 dpi -> A3 class
    img = text_image(size=(1181, 1654))
    page = document.load(to_bytes(img, "PNG", dpi=(100, 100)), paper="auto")[0]
    assert page.width == 2432


def test_tall_image_fits_one_page_length():
    img = text_image(size=(500, 4000))
    page = document.load(to_bytes(img, "PNG"), paper="a4")[0]
    assert page.rows <= page_rows(Resolution.FINE, "a4")
    assert page.width == 1728


def test_transparent_png_composited_on_white():
    img = Image.new("RGBA", (300, 300), (0, 0, 0, 0))
    img.paste((0, 0, 0, 255), (100, 100, 200, 200))
    page = document.load(to_bytes(img, "PNG"))[0]
    assert 0.05 < page.image.mean() < 0.2


def test_exif_orientation_applied():
    img = Image.new("L", (400, 200), 255)
    img.paste(0, (0, 0, 100, 50))                       # black block top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 3                                    # rotate 180
    page = document.load(to_bytes(img, "JPEG", exif=exif))[0]
    h, w = page.image.shape
    assert page.image[-h // 8:, -w // 8:].mean() > 0.8 and page.image[: h // 8, : w // 8].mean() < 0.05


def test_pdf_pages_rendered_at_paper_width_with_aspect():
    pages = document.load(pdf_bytes(3), resolution="standard")
    assert len(pages) == 3
    for p in pages:
        assert p.width == 1728 and p.resolution is Resolution.STANDARD
        # A4 595x842 pt: rows = 1728 * 842/595 * 98/204
        assert abs(p.rows - round(1728 * 842 / 595 * 98 / 204)) <= 1
        assert 0.005 < p.image.mean() < 0.1
    letter = document.load(pdf_bytes(1, (612, 792)))[0]
    assert abs(letter.rows - round(1728 * 792 / 612 * 196 / 204)) <= 1


def test_pillow_pdf_with_image():
    pdf = to_bytes(text_image().convert("RGB"), "PDF", resolution=150)
    page = document.load(pdf)[0]
    assert page.width == 1728 and 0.005 < page.image.mean() < 0.2


def test_plain_text_typeset_paginated_tabs_and_wrap():
    text = "\n".join(f"L\t{i}" for i in range(150)) + "\n" + "W" * 300 + "\fnew page\n"
    pages = document.load(text.encode(), resolution="fine", paper="letter")
    assert len(pages) == 4
    assert all(p.width == 1728 and p.rows == page_rows(Resolution.FINE, "letter") for p in pages)
    assert all(p.info["format"] == "text" for p in pages)
    # the last page (after the form feed) holds one short line near the top
    last = pages[-1].image
    ys = np.nonzero(last.any(axis=1))[0]
    assert ys.min() < 150 and ys.max() < 200
    # tab expansion: "L" then the number at the next tab stop
    first_row = pages[0].image[ys.min():ys.min() + 30]
    cols = np.nonzero(first_row.any(axis=0))[0]
    assert np.diff(cols).max() > 100          # 'L' + 7 columns of tab


def test_text_latin1_and_utf8():
    assert document.load("héllo wörld € ✓".encode("utf-8"))[0].image.any()
    assert document.load("héllo".encode("latin-1"))[0].image.any()
    assert document.load(b"\n")[0].rows > 1000             # a blank page, not an error


def test_file_object_and_path(tmp_path):
    data = to_bytes(text_image(), "PNG")
    path = tmp_path / "scan.png"
    path.write_bytes(data)
    a = document.load(path)[0]
    b = document.load(io.BytesIO(data))[0]
    c = document.load(str(path))[0]
    assert np.array_equal(a.image, b.image) and np.array_equal(a.image, c.image)
    assert a.source == str(path)


# ------------------------------------------------------------------ TIFF specifics
def test_fax_tiff_passes_through_at_its_own_resolution(tmp_path):
    page = fax_page(rows=300, resolution=Resolution.STANDARD)
    path = tmp_path / "std.tif"
    document.save([page], path, codec="mr")
    back = document.load(path, resolution="fine")[0]       # requested fine: the fax page stays standard
    assert back.resolution is Resolution.STANDARD and np.array_equal(back.image, page.image)
    assert back.info["passthrough"] and back.info["compression"] == "g3"


def test_pillow_group4_min_is_black_tiff(tmp_path):
    page = fax_page(rows=200)
    img = Image.fromarray(~page.image)                      # mode "1", white = 1
    path = tmp_path / "pil.tif"
    img.save(path, compression="group4", dpi=(204, 196))
    back = document.load(path)[0]
    assert back.info["compression"] == "g4" and np.array_equal(back.image, page.image)


@pytest.mark.parametrize("compression", ["group3", "group4", "tiff_lzw", "packbits", "raw", "tiff_deflate"])
def test_bilevel_tiff_any_compression_multipage(tmp_path, compression):
    pages = [fax_page(rows=150, seed=s) for s in (1, 2, 3)]
    frames = [Image.fromarray(~p.image) for p in pages]
    path = tmp_path / "m.tif"
    frames[0].save(path, compression=compression, save_all=True, append_images=frames[1:], dpi=(204, 196))
    back = document.load(path)
    assert len(back) == 3
    for a, b in zip(pages, back):
        assert b.resolution is Resolution.FINE and np.array_equal(a.image, b.image)


def test_grey_tiff_in_centimetres(tmp_path):
    img = text_image()
    path = tmp_path / "grey.tif"
    img.save(path, compression="tiff_lzw", tiffinfo={282: 59.0, 283: 59.0, 296: 3})   # 150 dpi in cm
    page = document.load(path, paper="auto")[0]
    assert page.width == 1728 and 0.005 < page.image.mean() < 0.2


def test_etsi_pages_load_losslessly(etsi_pages):
    for path in etsi_pages:
        pages = document.load(path)
        ref = Image.open(path)
        for i, p in enumerate(pages):
            ref.seek(i)
            assert p.resolution is Resolution.STANDARD, path
            assert np.array_equal(p.image, black(ref)), path


def test_itu_pbm_pages(itu_pages):
    for path in itu_pages[:3]:
        p = document.load(path)[0]
        # PBM carries no resolution: a 1728-wide bilevel page of 2376 rows is taken as fine
        assert p.resolution is Resolution.FINE and "assumed" in p.info["note"]
        assert np.array_equal(p.image, black(Image.open(path)))


def test_unknown_and_empty_inputs():
    with pytest.raises(DocumentError, match="empty"):
        document.load(b"")
    with pytest.raises(DocumentError, match="<bytes>"):
        document.load(bytes(range(256)) * 10)
    with pytest.raises(DocumentError, match="No such file"):
        document.load("/nonexistent/file.tif")
    with pytest.raises(ValueError):
        document.load(b"x", paper="a5")
