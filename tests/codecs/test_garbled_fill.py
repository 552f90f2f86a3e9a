"""garbled_fill_rows: a clean row followed by non-zero bits before the next EOL.

T.4 §4.1.3 fill is 0 bits, so a 1 between a complete row and the next EOL is line
noise: a burst that wiped out EOLs swallows rows the decoder cannot count, and this
statistic is how a receiver (T.30 copy quality) still sees it. Both backends must
count it identically (docs/codec-backends.md).
"""
from __future__ import annotations

import numpy as np
import pytest

from xmfax import codecs

IMPLS = ["python", "c"]


def text_page(rows: int = 80, width: int = 1728, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, width), bool)
    for r in range(0, rows - 2, 4):
        c = int(rng.integers(0, width - 200))
        img[r:r + 2, c:c + int(rng.integers(4, 180))] = True
    return img


def bits_to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8))


EOL = "000000000001"
WHITE_8 = "10011"          # MH white run 8 (T.4 Table 2)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("codec,opts", [
    ("mh", dict()), ("mh", dict(byte_align=True)), ("mh", dict(min_row_bits=400)),
    ("mr", dict(k=4)), ("mr", dict(k=2, byte_align=True, min_row_bits=96)),
])
def test_clean_streams_have_no_garbled_fill(impl, codec, opts):
    img = text_page()
    dopts = {"byte_align": opts.get("byte_align", False)}
    data = codecs.encode(img, codec, impl=impl, **opts)
    res = codecs.decode(data, img.shape[1], codec, impl=impl, **dopts)
    assert res.bad_rows == 0 and res.garbled_fill_rows == 0 and res.rows == img.shape[0]


@pytest.mark.parametrize("impl", IMPLS)
def test_one_bit_in_the_fill_counts_the_row(impl):
    # row 1: 8 white; fill 0001 0000 (a 1 in it); EOL; row 2: 8 white; RTC
    stream = EOL + WHITE_8 + "0001" + "0000" + EOL + WHITE_8 + EOL * 6
    res = codecs.decode(bits_to_bytes(stream), 8, "mh", eol=True, impl=impl)
    assert res.rows == 2 and res.bad_rows == 0 and res.garbled_fill_rows == 1
    assert res.end == "rtc"


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_fill_is_not_counted(impl):
    stream = EOL + WHITE_8 + "0" * 37 + EOL + WHITE_8 + EOL * 6
    res = codecs.decode(bits_to_bytes(stream), 8, "mh", eol=True, impl=impl)
    assert res.rows == 2 and res.garbled_fill_rows == 0


@pytest.mark.parametrize("codec", ["mh", "mr"])
def test_noise_that_wipes_out_eols_is_seen(codec):
    """Noise that hits the EOLs of rows 100-109 (one 0 of each EOL turned to 1): the
    decoder takes each next row for fill, so those rows are lost without a bad row;
    garbled_fill_rows says so, the same on both backends however the input is chunked."""
    img = text_page(rows=200)
    data = codecs.encode(img, codec, k=2, impl="c")
    bits = "".join(f"{b:08b}" for b in data)
    eols = [i for i in range(len(bits)) if bits.startswith(EOL, i)]
    hit = bytearray(bits, "ascii")
    for e in eols[101:111]:              # eols[0] opens row 0
        hit[e + 5] = ord("1")
    damaged = bits_to_bytes(hit.decode())
    results = {}
    for impl in IMPLS:
        dec = codecs.StreamDecoder(img.shape[1], codec, eol=True, impl=impl)
        for k in range(0, len(damaged), 97):
            dec.feed(damaged[k:k + 97])
        results[impl] = dec.finish()
    a, b = results["python"], results["c"]
    assert (a.rows, a.bad_rows, a.garbled_fill_rows) == (b.rows, b.bad_rows, b.garbled_fill_rows)
    assert a.rows < img.shape[0] and a.bad_rows <= 1     # rows swallowed, (almost) none bad ...
    assert a.garbled_fill_rows >= 1                      # ... but the damage shows


@pytest.mark.parametrize("impl", IMPLS)
def test_streaming_property_is_live(impl):
    stream = EOL + WHITE_8 + "0101" + EOL + WHITE_8 + "0000" + EOL
    dec = codecs.StreamDecoder(8, "mh", eol=True, impl=impl)
    assert dec.garbled_fill_rows == 0
    dec.feed(bits_to_bytes(stream))
    assert dec.garbled_fill_rows == 1
    assert dec.finish().garbled_fill_rows == 1


def test_eolless_and_mmr_never_count():
    img = text_page(rows=30)
    for codec, eol in (("mmr", None), ("mh", False)):
        data = codecs.encode(img, codec, eol=bool(eol), rtc=False) if codec == "mh" else codecs.encode(img, codec)
        for impl in IMPLS:
            assert codecs.decode(data, img.shape[1], codec, eol=eol, impl=impl).garbled_fill_rows == 0
