"""Issue #10, finding 1: a page that does not decode whole is never passed off as loaded.

Strict (the default, for sending): DocumentError naming the page and row. Tolerant:
the page loads, and every row outside ``info["damaged_rows"]`` is exactly the original.
"""
from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from PIL import Image, ImageFile

import hostile_files as H
from docsamples import fax_page, text_image, to_bytes
from xmfax import document
from xmfax.document import DamagedPageError
from xmfax.errors import DocumentError


def _strip_of(tif: bytes) -> tuple[int, int]:
    """(offset, length) of the first strip of a TIFF written by document.save."""
    from xmfax.document.tiff import STRIP_BYTE_COUNTS, STRIP_OFFSETS, parse_tiff

    ifd = parse_tiff(tif)[0]
    return ifd.ints(STRIP_OFFSETS)[0], ifd.ints(STRIP_BYTE_COUNTS)[0]


def _saved(codec: str, rows: int = 400, pages: int = 1) -> tuple[list, bytes]:
    src = [fax_page(rows=rows, seed=7 + n) for n in range(pages)]
    buf = io.BytesIO()
    document.save(src, buf, format="tiff", codec=codec)
    return src, buf.getvalue()


def _outside(ranges, rows):
    keep = np.ones(rows, dtype=bool)
    for lo, hi in ranges:
        keep[lo:hi] = False
    return keep


@pytest.mark.parametrize("compression", [3, 4])
def test_random_strip_is_refused_and_tolerant_marks_it(compression):
    data = H.random_strip_tiff(compression)
    with pytest.raises(DamagedPageError, match=r"page 1, row \d+ of 200 is damaged") as exc:
        document.load(data)
    assert exc.value.page == 1 and 0 <= exc.value.row < 200
    page = document.load(data, tolerant=True)[0]
    assert page.info["damaged_rows"] and page.info["bad_rows"] > 0


def test_strip_past_end_of_file_is_refused():
    src, tif = _saved("mmr")
    off, n = _strip_of(tif)
    data = H.strip_past_end_tiff(tif[off:off + n // 2], length=src[0].rows)
    with pytest.raises(DamagedPageError, match="past the end of the file"):
        document.load(data)
    page = document.load(data, tolerant=True)[0]
    (lo, hi), = page.info["damaged_rows"]
    assert 0 < lo < hi == src[0].rows
    assert np.array_equal(page.image[:lo], src[0].image[:lo])      # the rows before the cut are exact


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_corrupt_bytes_mid_page(codec):
    src, tif = _saved(codec)
    off, n = _strip_of(tif)
    bad = bytearray(tif)
    for i in range(off + n // 2, off + n // 2 + 6):
        bad[i] ^= 0xA5
    with pytest.raises(DamagedPageError) as exc:
        document.load(bytes(bad))
    assert 100 < exc.value.row < 300                # the damage is in the middle of the page
    page = document.load(bytes(bad), tolerant=True)[0]
    ranges = page.info["damaged_rows"]
    assert ranges and ranges[0][0] <= exc.value.row + 1
    keep = _outside(ranges, page.rows)
    if codec == "mmr":
        # T.6 has no EOLs to resynchronise on: a bad code is found some rows after the damage,
        # and every row after it is listed. The rows before the damaged bytes are exact.
        from xmfax import codecs

        clean = codecs.decode(tif[off:off + n // 2], width=1728, codec="mmr").rows - 1
        assert ranges[-1][1] == page.rows and ranges[0][0] >= clean - 1
        keep[clean:] = False
    assert np.array_equal(page.image[keep], src[0].image[keep])   # nothing outside the ranges is wrong


def test_damage_on_page_two_names_page_two():
    src, tif = _saved("mh", rows=120, pages=3)
    from xmfax.document.tiff import STRIP_OFFSETS, parse_tiff

    ifd = parse_tiff(tif)[1]
    bad = bytearray(tif)
    at = ifd.ints(STRIP_OFFSETS)[0] + 40
    bad[at:at + 8] = b"\xff" * 8
    with pytest.raises(DamagedPageError, match=r"page 2, row \d+ of 120") as exc:
        document.load(bytes(bad))
    assert exc.value.page == 2
    pages = document.load(bytes(bad), tolerant=True)
    assert [bool(p.info["damaged_rows"]) for p in pages] == [False, True, False]


def test_missing_rows_uncompressed_and_short_strip_table():
    rows, width = 64, 1728
    img = np.zeros((rows, width), dtype=bool)
    img[::3, ::5] = True
    packed = np.packbits(img, axis=1).tobytes()
    half = packed[: len(packed) // 2]
    data = H.tiff([H.fax_entries(width, rows, compression=1, strip_len=len(half))], half)
    with pytest.raises(DamagedPageError, match="row 33 of 64"):
        document.load(data)
    page = document.load(data, tolerant=True)[0]
    assert page.info["damaged_rows"] == [[32, 64]]
    assert np.array_equal(page.image[:32], img[:32])
    # a table of strips that holds fewer rows than ImageLength
    whole = H.tiff([H.fax_entries(width, rows * 2, compression=1, strip_len=len(packed))], packed)
    with pytest.raises(DamagedPageError, match="row 65 of 128"):
        document.load(whole)


def test_clean_pages_load_strict_and_say_so():
    src, tif = _saved("mr", pages=2)
    pages = document.load(tif)
    assert all(p.info["damaged_rows"] == [] and p.info["bad_rows"] == 0 for p in pages)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(src, pages))


def test_forged_jpeg_size_is_refused():
    data = H.forged_size_jpeg()
    assert len(data) < 400
    with pytest.raises(DocumentError, match="16000x9000") as exc:
        document.load(data)
    assert "<bytes>" in str(exc.value)
    page = document.load(data, tolerant=True)[0]
    assert page.info["damaged_rows"] == [[0, page.rows]] and "forged" in page.info["note"]


def test_real_jpegs_and_pngs_pass_the_checks():
    img = text_image(size=(600, 800))
    for fmt, kw in (("JPEG", {}), ("JPEG", {"progressive": True}), ("JPEG", {"subsampling": 2}),
                    ("PNG", {})):
        data = to_bytes(img.convert("RGB"), fmt, **kw)
        page = document.load(data)[0]
        assert page.info["damaged_rows"] == [], (fmt, kw)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
@pytest.mark.parametrize("fill_flag", [False, True])
def test_truncated_images_never_filled(fmt, fill_flag, monkeypatch):
    """Truncated JPEG/PNG raise DocumentError even if the process told Pillow to fill them.

    (A JPEG cut short with an EOI marker added after the cut is not detected unless the
    cut leaves less than a bit per block: see docs/documents.md, "What is not detected".)
    """
    noise = Image.effect_noise((300, 300), 60)
    whole = to_bytes(noise, fmt)
    cut = H.truncated(whole, 0.6)
    big = to_bytes(Image.effect_noise((1500, 1500), 60), "JPEG")
    tries = [cut, H.truncated(big, 0.002) + b"\xff\xd9"] if fmt == "JPEG" else [cut, cut + H.png_chunk(b"IEND", b"")]
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", fill_flag)
    for data in tries:
        with pytest.raises(DocumentError, match="truncated|ends|broken"):
            document.load(data)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is fill_flag          # xmfax never changes it


def test_xmfax_leaves_load_truncated_images_false():
    import xmfax.document  # noqa: F401 - importing must not change it either

    document.load(to_bytes(text_image(size=(100, 80)), "JPEG"))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_tolerant_pages_scaled_keep_their_damage():
    """A damaged bilevel page that is scaled (not a fax geometry) keeps damaged_rows in its own rows."""
    src, tif = _saved("mmr", rows=400)
    off, n = _strip_of(tif)
    cut = tif[off:off + n // 2]
    entries = H.fax_entries(width=1000, length=400, compression=4, strip_len=len(cut))
    # a 1000-pixel-wide page is no fax width: it is scaled onto the page
    from xmfax import codecs

    code = codecs.encode(src[0].image[:, :1000], "mmr")
    data = H.tiff([H.replace_tag(entries, 279, H.LONG, 1, len(code) // 2)], code[: len(code) // 2])
    page = document.load(data, tolerant=True)[0]
    (lo, hi), = page.info["damaged_rows"]
    assert 0 < lo < hi <= page.rows and page.width == 1728


def test_fill_flag_set_elsewhere_refuses_formats_we_cannot_check(monkeypatch):
    """With LOAD_TRUNCATED_IMAGES on, a PNG whose last IDAT is short (IEND intact) would be filled."""
    whole = to_bytes(Image.effect_noise((200, 200), 60), "PNG")
    idat = whole.find(b"IDAT") - 4
    (length,) = struct.unpack(">I", whole[idat:idat + 4])
    body = whole[idat + 8:idat + 8 + length // 2]
    short = whole[:idat] + H.png_chunk(b"IDAT", body) + H.png_chunk(b"IEND", b"")
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(DocumentError, match="LOAD_TRUNCATED_IMAGES"):
        document.load(short)
    with pytest.raises(DocumentError, match="LOAD_TRUNCATED_IMAGES"):
        document.load(to_bytes(Image.new("L", (50, 50), 255), "GIF"))
    assert document.load(short, tolerant=True)                   # asked for: loaded as Pillow fills it
    assert document.load(to_bytes(text_image(size=(100, 80)), "JPEG"))   # JPEG is checked: still loads
