"""The decoding rules of docs/codec-backends.md, one by one, on hand-built bit streams."""
from __future__ import annotations

import numpy as np
import pytest

from xmfax import codecs
from xmfax.codecs import _tables as T
from xmfax.errors import CodecError

import codec_pages as P

EOL = T.EOL
W, B = T.WHITE, T.BLACK


def to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


def row(*runs: int) -> str:
    """MH code of a row given as runs, white first."""
    return "".join(T.run_code(i % 2, r) for i, r in enumerate(runs))


ROW_A = row(3, 2, 3)          # ..XX...
ROW_B = row(0, 8)             # XXXXXXXX
IMG_A = np.array([0, 0, 0, 1, 1, 0, 0, 0], dtype=bool)
IMG_B = np.ones(8, dtype=bool)


def test_leading_eol_optional_and_garbage_before_it_skipped():
    with_eol = to_bytes(EOL + ROW_A + EOL + ROW_B + EOL * 6)
    r = codecs.decode(with_eol, 8, "mh")
    assert r.rows == 2 and r.end == "rtc" and np.array_equal(r.image, [IMG_A, IMG_B])
    # 0xFF noise before the first EOL (a modem's idle) is skipped when eol=True
    r = codecs.decode(b"\xff\xff" + with_eol, 8, "mh", eol=True)
    assert r.rows == 2 and r.bad_rows == 0
    # no leading EOL: detected as EOL-less, then EOLs between rows switch modes
    r = codecs.decode(to_bytes(ROW_A + EOL + ROW_B + EOL * 6), 8, "mh")
    assert r.rows == 2 and r.end == "rtc" and r.bad_rows == 0


def test_no_rtc_and_trailing_garbage():
    r = codecs.decode(to_bytes(EOL + ROW_A + EOL + ROW_B), 8, "mh")
    assert r.rows == 2 and r.end == "data"
    r = codecs.decode(to_bytes(EOL + ROW_A + EOL + ROW_B + EOL * 6) + b"\x5a\xff\x00\x13", 8, "mh")
    assert r.rows == 2 and r.end == "rtc" and r.bad_rows == 0
    # an incomplete last row is dropped
    r = codecs.decode(to_bytes(EOL + ROW_A + EOL + T.run_code(W, 3)), 8, "mh")
    assert r.rows == 1 and r.end == "data"


def test_fill_bits_before_eol_ignored():
    bits = EOL + ROW_A + "0" * 37 + EOL + ROW_B + "0" * 3 + EOL + EOL
    r = codecs.decode(to_bytes(bits), 8, "mh")
    assert r.rows == 2 and r.bad_rows == 0 and r.end == "rtc"


@pytest.mark.parametrize("bad,why", [
    (row(3, 2, 4), "overshoot"),                # 9 > 8
    ("00000000101", "invalid"),                 # 8 zeros then 1: no such code
    (row(3, 2), "short"),                       # EOL comes before width
])
def test_bad_mh_row_replaced_by_previous(bad, why):
    bits = EOL + ROW_A + EOL + bad + EOL + ROW_B + EOL + EOL
    r = codecs.decode(to_bytes(bits), 8, "mh")
    assert r.rows == 3 and r.bad_rows == 1 and r.max_consecutive_bad_rows == 1, why
    assert np.array_equal(r.image, [IMG_A, IMG_A, IMG_B])
    assert r.error and r.error.startswith("row 1") and r.error_position is not None
    assert 12 + len(ROW_A) <= r.error_position <= len(bits)
    assert r.end == "rtc"


def test_first_row_bad_is_white_and_consecutive_count():
    bits = EOL + "00000000101" + EOL + "0000000011" + EOL + ROW_A + EOL + EOL
    r = codecs.decode(to_bytes(bits), 8, "mh")
    assert r.rows == 3 and r.bad_rows == 2 and r.max_consecutive_bad_rows == 2
    assert not r.image[:2].any() and np.array_equal(r.image[2], IMG_A)


def test_mr_bad_row_resyncs_at_next_one_d_row():
    img = np.random.default_rng(3).random((12, 64)) < 0.3
    data = codecs.encode(img, "mr", k=4)
    bits = "".join(f"{b:08b}" for b in data)
    eols = [i for i in range(len(bits) - 11) if bits.startswith(EOL, i)]
    # corrupt row 1 (a 2-D row): the next 1-D row is row 4, rows 1..3 are bad copies of row 0
    p = eols[1] + 14
    broken = bits[:p] + "0000000001" + bits[p + 10:]
    r = codecs.decode(to_bytes(broken), 64, "mr")
    assert r.rows == 12 and r.end == "rtc"
    assert r.bad_rows == 3 and r.max_consecutive_bad_rows == 3
    assert all(np.array_equal(r.image[i], img[0]) for i in (1, 2, 3))
    assert np.array_equal(r.image[4:], img[4:])


def test_mmr_error_returns_rows_before_it():
    # ten white rows are ten V0 codes ("1"); then an extension code (not supported: an error)
    r = codecs.decode(to_bytes("1" * 10 + "0000001111" + "1" * 30), 200, "mmr")
    assert r.end == "error" and r.error.startswith("row 10") and r.error_position == 10
    assert r.rows == 10 and not r.image.any()
    # a vertical mode that would put a1 left of a0: H(4,2) then VL3 (b1 = 8, a1 = 5 < 6)
    r = codecs.decode(to_bytes("1" * 3 + "001" + "1011" + "11" + "0000010"), 8, "mmr")
    assert r.end == "error" and r.rows == 3 and r.first_bad_row == 3
    # ... but a1 = a0 is a zero-length run, decoded as libtiff does: H(3,2) VL3 (a1 = 5 = a0)
    # (a white run of 0), then V0 (b1 = 8): white 3, black 2, white 0, black 3
    r = codecs.decode(to_bytes("1" * 3 + "001" + "1000" + "11" + "0000010" + "1"), 8, "mmr")
    assert r.end == "data" and r.rows == 4 and r.first_bad_row is None
    assert r.image[3].tolist() == [False] * 3 + [True] * 5
    # an EOL in the middle of a row (inside a horizontal mode) is an error, not EOFB
    r = codecs.decode(to_bytes("1" * 3 + "001" + "1000" + T.EOL + T.EOL), 8, "mmr")
    assert r.end == "error" and r.rows == 3
    # the same EOLs at a row start are EOFB
    r = codecs.decode(to_bytes("1" * 3 + T.EOFB + "1" * 8), 8, "mmr")
    assert r.end == "eofb" and r.rows == 3


def test_mmr_without_eofb_and_truncated():
    img = P.dense_text(20, 200, seed=4)
    data = codecs.encode(img, "mmr", rtc=False)
    r = codecs.decode(data, 200, "mmr")
    assert r.end == "data" and r.rows == 20
    r = codecs.decode(data[: len(data) // 2], 200, "mmr")
    assert r.end == "data" and 0 < r.rows < 20 and np.array_equal(r.image, img[:r.rows])


def test_eol_less_mh_stops_at_error():
    img = P.dense_text(10, 64, seed=5)
    data = bytearray(codecs.encode(img, "mh", eol=False, byte_align=True, rtc=False))
    r = codecs.decode(bytes(data), 64, "mh", eol=False, byte_align=True)
    assert r.end == "data" and r.rows == 10 and np.array_equal(r.image, img)
    data[len(data) // 2] = 0x01          # 7 zeros + 1 then whatever follows: invalid or misaligned
    data[len(data) // 2 + 1] = 0x00
    r = codecs.decode(bytes(data), 64, "mh", eol=False, byte_align=True)
    assert r.end in ("error", "data") and r.rows < 10
    assert np.array_equal(r.image[: r.rows // 2], img[: r.rows // 2])


def test_max_rows_limit():
    img = P.all_white(100, 64)
    for codec in ("mh", "mr", "mmr"):
        r = codecs.decode(codecs.encode(img, codec), 64, codec, max_rows=30)
        assert r.rows == 30 and r.end == "limit" and r.image.shape == (30, 64)


def test_hostile_stream_of_empty_rows_is_bounded():
    # 200k rows of width 1 in 50 kB: the limit stops it
    data = to_bytes((EOL + T.run_code(W, 1)) * 50_000)
    r = codecs.decode(data, 1, "mh", max_rows=1000)
    assert r.rows == 1000 and r.end == "limit"


def test_eol_detection():
    img = P.dense_text(5, 64)
    with_eol = codecs.encode(img, "mh", byte_align=True)
    without = codecs.encode(img, "mh", eol=False, rtc=False)
    assert codecs.decode(with_eol, 64, "mh", byte_align=True).end == "rtc"
    r = codecs.decode(without, 64, "mh")
    assert r.rows == 5 and r.end == "data" and np.array_equal(r.image, img)


def test_empty_and_tiny_inputs():
    for codec in ("mh", "mr", "mmr"):
        for data in (b"", b"\x00", b"\x00\x01", b"\xff"):
            r = codecs.decode(data, 1728, codec)
            assert r.rows == r.image.shape[0] and r.end in ("data", "error", "rtc", "eofb")
    assert codecs.decode(codecs.encode(np.zeros((0, 10), bool), "mh"), 10, "mh").end == "rtc"


def test_misuse_raises_codec_error():
    img = P.all_white(2, 16)
    with pytest.raises(CodecError, match="codec"):
        codecs.encode(img, "jbig")
    with pytest.raises(CodecError, match="width"):
        codecs.decode(b"", 0)
    with pytest.raises(CodecError, match="width"):
        codecs.decode(b"", 16385)
    with pytest.raises(CodecError, match="EOL"):
        codecs.encode(img, "mr", eol=False)
    with pytest.raises(CodecError, match="k must"):
        codecs.encode(img, "mr", k=0)
    with pytest.raises(CodecError, match="bit_order"):
        codecs.encode(img, "mh", bit_order="big")
    with pytest.raises(CodecError, match="width"):
        codecs.encode(img, "mh", width=17)
    with pytest.raises(CodecError, match="whole number"):
        codecs.encode(b"\x00\x00\x00", width=16)
    with pytest.raises(CodecError, match="packed rows need width"):
        codecs.encode(b"\x00\x00")
    with pytest.raises(CodecError):
        codecs.encode(np.zeros((2, 3, 4)), "mh")
    dec = codecs.StreamDecoder(16, "mh")
    dec.finish()
    with pytest.raises(CodecError):
        dec.feed(b"\x00")
    enc = codecs.StreamEncoder(16, "mh")
    enc.finish()
    with pytest.raises(CodecError):
        enc.encode(img)


def test_backend_reported():
    assert codecs.backend in ("c", "python")
    assert codecs.backend in codecs.available_backends()
    assert "python" in codecs.available_backends()
