"""xmfax codecs against spandsp 0.0.6 (libspandsp2 via ctypes), both ways, MH/MR/MMR.

spandsp's streams are LSB first (bit_order="lsb"); its K for MR comes from the TIFF's
resolution like libtiff's (2 at <= 150 dpi vertical, else 4). Its encoder's bits equal
xmfax's except the fill bits after the final RTC/EOFB, where spandsp leaves a 1.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from xmfax import codecs

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "codecs"))
import codec_pages as P  # noqa: E402
import spandsp_t4  # noqa: E402

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(spandsp_t4.unavailable_reason() is not None,
                       reason=str(spandsp_t4.unavailable_reason())),
]

END = {"mh": "rtc", "mr": "rtc", "mmr": "eofb"}
PAGES = {
    "itu1": lambda: P.itu_page(1),
    "itu5": lambda: P.itu_page(5),
    "dense": lambda: P.dense_text(150, 1728),
    "dither": lambda: P.dithered_photo(40, 1728),
    "edges": lambda: P.edges(40, 1728),
}


@pytest.mark.parametrize("yres", [98, 196])
@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_spandsp_encodes_xmfax_decodes(tmp_path, page, codec, yres):
    img = PAGES[page]()
    data = spandsp_t4.encode(img, codec, tmp_path, yres=yres)
    result = codecs.decode(data, img.shape[1], codec, bit_order="lsb")
    assert result.end == END[codec] and result.bad_rows == 0 and result.garbled_fill_rows == 0
    assert np.array_equal(result.image, img)
    k = 2 if yres <= 150 else 4
    ours = codecs.encode(img, codec, k=k, bit_order="lsb")
    assert len(ours) == len(data) and ours[:-1] == data[:-1]
    # the last byte differs at most in fill bits after the end marker (line order: LSB first)
    last_bits_ours = f"{ours[-1]:08b}"[::-1].rstrip("0")
    assert f"{data[-1]:08b}"[::-1].startswith(last_bits_ours)


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
@pytest.mark.parametrize("page", sorted(PAGES))
def test_xmfax_encodes_spandsp_decodes(tmp_path, page, codec):
    img = PAGES[page]()
    data = codecs.encode(img, codec, k=4, bit_order="lsb", min_row_bits=0)
    rows, stats = spandsp_t4.decode(data, img.shape[1], codec, tmp_path)
    assert stats.bad_rows == 0 and stats.length == img.shape[0]
    assert np.array_equal(rows, img)


@pytest.mark.parametrize("codec", ["mh", "mr"])
def test_spandsp_decodes_xmfax_with_fill_and_min_row_bits(tmp_path, codec):
    """What a T.30 sender produces: min scan-line fill (e.g. 10 ms at 9600 bit/s) and EOL alignment."""
    img = P.sparse_letter(200, 1728)
    data = codecs.encode(img, codec, k=2, bit_order="lsb", min_row_bits=96, byte_align=True)
    rows, stats = spandsp_t4.decode(data, 1728, codec, tmp_path)
    assert stats.bad_rows == 0 and np.array_equal(rows, img)


@pytest.mark.parametrize("codec", ["mh", "mr"])
def test_both_replace_a_corrupt_row(tmp_path, codec):
    """A flipped bit in one row: both decoders keep the row count and repair the damage."""
    img = P.dense_text(100, 1728, seed=12)
    data = bytearray(codecs.encode(img, codec, k=4, bit_order="lsb"))
    data[len(data) // 2] ^= 0x10
    ours = codecs.decode(bytes(data), 1728, codec, bit_order="lsb")
    theirs, stats = spandsp_t4.decode(bytes(data), 1728, codec, tmp_path)
    assert ours.rows == theirs.shape[0] == img.shape[0]
    assert 1 <= ours.bad_rows <= 4 and 1 <= stats.bad_rows <= 4
    # every row outside the damaged stretch is exact in both
    damaged = {i for i in range(100) if not np.array_equal(ours.image[i], img[i])}
    assert len(damaged) <= 4
