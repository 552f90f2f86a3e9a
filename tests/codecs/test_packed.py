"""Packed rows through the public API (on whichever backend XMFAX_IMPL chose): 1 bit a
pel, MSB first, 1 = black, rows padded to whole bytes, in ``encode`` and out of
``decode(..., packed=True)`` and ``StreamDecoder(..., packed=True)``."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import codecs
from xmfax.codecs import _ref

import codec_pages as P

CODECS = ("mh", "mr", "mmr")
END = {"mh": "rtc", "mr": "rtc", "mmr": "eofb"}


@pytest.mark.parametrize("page", [1, 4])
@pytest.mark.parametrize("codec", CODECS)
def test_itu_pages_packed_round_trip(page, codec):
    img = P.itu_page(page)
    packed = np.packbits(img, axis=1)
    data = codecs.encode(packed, codec, k=4, width=1728, packed=True)
    assert data == codecs.encode(img, codec, k=4)
    res = codecs.decode(data, 1728, codec, packed=True)
    assert res.image.dtype == np.uint8 and res.image.shape == (2376, 216)
    assert np.array_equal(res.image, packed)
    assert res.rows == 2376 and res.ok and res.end == END[codec]


def test_known_bits_packed():
    """8 pels 3 white, 2 black, 3 white are the byte 0b00011000; a 10-pel row has two
    bytes, its pad bits 0 on the way out and ignored on the way in."""
    img = np.array([[0, 0, 0, 1, 1, 0, 0, 0]], dtype=bool)
    data = codecs.encode(img, "mh")
    assert codecs.decode(data, 8, "mh", packed=True).image.tolist() == [[0b00011000]]
    assert codecs.encode(bytes([0b00011000]), "mh", width=8) == data
    wide = np.array([[1, 0, 0, 0, 0, 0, 0, 0, 0, 1]], dtype=bool)
    data = codecs.encode(wide, "mmr")
    assert codecs.decode(data, 10, "mmr", packed=True).image.tolist() == [[0x80, 0x40]]
    assert codecs.encode(bytes([0x80, 0x7F]), "mmr", width=10) == data      # pad bits set


@pytest.mark.parametrize("codec", CODECS)
def test_stream_decoder_packed(codec):
    img = P.dense_text(50, 1729, seed=8)
    data = codecs.encode(img, codec, k=3)
    for size in (1, 7, 333):
        dec = codecs.StreamDecoder(1729, codec, packed=True)
        rows = [dec.feed(data[i:i + size]) for i in range(0, len(data), size)]
        res = dec.finish()
        got = np.concatenate(rows + [res.image])
        assert got.dtype == np.uint8 and np.array_equal(got, np.packbits(img, axis=1))
        assert res.rows == 50 and res.end == END[codec]
    dec = codecs.StreamDecoder(1729, codec, packed=True, keep=True)
    dec.feed(data)
    assert np.array_equal(dec.finish().image, np.packbits(img, axis=1))


def test_stream_encoder_packed():
    img = P.dense_text(40, 1728, seed=3)
    packed = np.packbits(img, axis=1)
    enc = codecs.StreamEncoder(1728, "mr", k=4)
    out = [enc.encode(packed[:13], packed=True), enc.encode(packed[13:20].tobytes()),
           enc.encode(img[20:]), enc.finish()]                  # packed, bytes and bool mixed
    assert b"".join(out) == codecs.encode(img, "mr", k=4)


def test_eol_detection_packed():
    """eol=None holds bytes back until it knows: the empty answer is packed too."""
    img = P.edges(6, 64)
    data = codecs.encode(img, "mh")
    dec = codecs.StreamDecoder(64, "mh", packed=True)
    assert dec.feed(data[:1]).shape == (0, 8)
    rows = dec.feed(data[1:])
    res = dec.finish()
    assert np.array_equal(np.concatenate([rows, res.image]), np.packbits(img, axis=1))


def test_damaged_page_packed():
    """Bad rows are copies of the row above in packed output as in bool output."""
    img = P.dense_text(120, 1728, seed=4)
    data = bytearray(codecs.encode(img, "mr", k=4))
    data[len(data) // 2] ^= 0xFF
    bool_res = codecs.decode(bytes(data), 1728, "mr")
    packed_res = codecs.decode(bytes(data), 1728, "mr", packed=True)
    assert bool_res.bad_rows > 0
    assert np.array_equal(packed_res.image, np.packbits(bool_res.image, axis=1))
    assert (packed_res.rows, packed_res.bad_rows, packed_res.error) == \
        (bool_res.rows, bool_res.bad_rows, bool_res.error)


def test_reference_never_paints_bool_rows(monkeypatch):
    """The pure-Python decoder paints packed rows from the runs, without a bool array."""
    def no_bool(*args):
        raise AssertionError("bool rows painted for a packed decode")
    monkeypatch.setattr(_ref, "_paint", no_bool)
    img = P.dense_text(30, 1728)
    data = codecs.encode(img, "mmr", impl="python")
    res = codecs.decode(data, 1728, "mmr", packed=True, impl="python")
    assert np.array_equal(res.image, np.packbits(img, axis=1))


def test_packed_misuse():
    packed = np.zeros((4, 216), dtype=np.uint8)
    with pytest.raises(codecs.CodecError, match="width="):
        codecs.encode(packed, "mh", packed=True)
    with pytest.raises(codecs.CodecError, match="uint8"):
        codecs.encode(packed, "mh", width=1700, packed=True)            # 213 bytes a row
    with pytest.raises(codecs.CodecError, match="uint8"):
        codecs.encode(packed.astype(bool), "mh", width=1728, packed=True)
    with pytest.raises(codecs.CodecError, match="whole number"):
        codecs.encode(b"\x00" * 215, "mh", width=1728)
    with pytest.raises(codecs.CodecError):
        codecs.encode([[1, 2]], "mh", width=16, packed=True)


@settings(max_examples=80, deadline=None)
@given(h=st.integers(0, 10), w=st.integers(1, 80), density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       seed=st.integers(0, 2**32 - 1), codec=st.sampled_from(CODECS), k=st.integers(1, 5),
       bit_order=st.sampled_from(["msb", "lsb"]), chunk=st.integers(1, 64))
def test_property_packed_round_trip(h, w, density, seed, codec, k, bit_order, chunk):
    img = np.random.default_rng(seed).random((h, w)) < density
    packed = np.packbits(img, axis=1) if h else np.zeros((0, (w + 7) // 8), dtype=np.uint8)
    data = codecs.encode(packed, codec, k=k, bit_order=bit_order, width=w, packed=True)
    assert data == codecs.encode(img, codec, k=k, bit_order=bit_order, width=w)
    dec = codecs.StreamDecoder(w, codec, bit_order=bit_order, keep=True, packed=True)
    for i in range(0, len(data), chunk):
        dec.feed(data[i:i + chunk])
    res = dec.finish()
    assert res.image.shape == (h, (w + 7) // 8) and np.array_equal(res.image, packed)
    assert res.bad_rows == 0


def test_no_code_starts_with_eight_zeros():
    """The C decoder's fast path leaves a code to its careful step when the lookup table
    says no code starts with the next bits, and relies on that for 8 zeros (an EOL, or
    garbage): true of every run and mode code of T.4 / T.6."""
    from xmfax.codecs import _tables as T
    codes = [*T.run_codes(T.WHITE).values(), *T.run_codes(T.BLACK).values(), T.MODE_PASS,
             T.MODE_HORIZONTAL, *T.MODE_VERTICAL.values(), T.MODE_EXTENSION]
    assert codes and all(not c.startswith("0" * 8) for c in codes)
