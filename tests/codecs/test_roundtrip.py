"""Round trips through xmfax.codecs on whichever backend is active (XMFAX_IMPL)."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import codecs

import codec_pages as P

CODECS = ("mh", "mr", "mmr")
END = {"mh": "rtc", "mr": "rtc", "mmr": "eofb"}


def roundtrip(img, codec, **opts):
    decode_opts = {k: opts[k] for k in ("byte_align", "bit_order") if k in opts}
    data = codecs.encode(img, codec, **opts)
    result = codecs.decode(data, img.shape[1], codec, max_rows=max(1, img.shape[0] + 1),
                           **decode_opts)
    return data, result


def assert_same(img, result, end):
    assert result.image.shape == img.shape
    assert np.array_equal(result.image, img)
    assert result.rows == img.shape[0]
    assert result.bad_rows == 0 and result.error is None
    assert result.end == end


@pytest.mark.parametrize("page", [1, 4, 8])
@pytest.mark.parametrize("codec", CODECS)
def test_itu_pages(page, codec):
    img = P.itu_page(page)
    data, result = roundtrip(img, codec, k=4)
    assert_same(img, result, END[codec])
    # compression happens (even the dense T.24 page 4 compresses over 3:1 in MH)
    assert len(data) * 3 < img.size // 8


@pytest.mark.parametrize("name", sorted(P.GENERATED))
@pytest.mark.parametrize("codec", CODECS)
def test_generated_pages(name, codec):
    img = P.GENERATED[name]()
    _, result = roundtrip(img, codec)
    assert_same(img, result, END[codec])


@pytest.mark.parametrize("name", sorted(P.odd_width_pages()))
@pytest.mark.parametrize("codec", CODECS)
def test_odd_widths(name, codec):
    img = P.odd_width_pages()[name]
    _, result = roundtrip(img, codec, byte_align=codec == "mh")
    assert_same(img, result, END[codec])


def _option_sets():
    for codec, k, eol, byte_align, rtc, min_row_bits, bit_order in itertools.product(
            CODECS, (1, 2, 4), (True, False), (False, True), (True, False), (0, 333),
            ("msb", "lsb")):
        if codec == "mr" and not eol:
            continue
        if codec != "mr" and k != 1:
            continue       # k only matters for MR
        if codec == "mmr" and (not eol or byte_align or min_row_bits):
            continue       # do not apply to MMR
        yield codec, dict(k=k, eol=eol, byte_align=byte_align, rtc=rtc,
                          min_row_bits=min_row_bits, bit_order=bit_order)


@pytest.mark.parametrize("codec,opts", list(_option_sets()),
                         ids=lambda v: v if isinstance(v, str) else
                         "-".join(f"{k}{int(x) if isinstance(x, bool) else x}" for k, x in v.items()))
def test_every_option_combination(codec, opts):
    img = np.vstack([P.dense_text(24, 1729, seed=5), P.edges(6, 1729)])
    data, result = roundtrip(img, codec, **opts)
    has_end = opts["rtc"] and (codec == "mmr" or opts["eol"])
    assert_same(img, result, END[codec] if has_end else "data")
    bits = "".join(f"{b:08b}" for b in data)
    if opts["bit_order"] == "lsb":
        bits = "".join(f"{b:08b}"[::-1] for b in data)
    if codec != "mmr" and opts["eol"]:
        eols = [i for i in range(len(bits) - 11) if bits.startswith("000000000001", i)]
        assert len(eols) >= img.shape[0] + (6 if opts["rtc"] else 0)
        if opts["byte_align"]:
            assert all((i + 12) % 8 == 0 for i in eols[:img.shape[0] + 1])
        if opts["min_row_bits"]:
            # every row, measured from its EOL, is at least min_row_bits long
            row_eols = eols[:img.shape[0] + 1]
            assert all(b - a >= opts["min_row_bits"] for a, b in zip(row_eols, row_eols[1:]))


def test_mr_k_controls_one_d_rows():
    img = P.dense_text(40, 1728, seed=6)
    for k in (1, 2, 4, 7):
        data = codecs.encode(img, "mr", k=k, rtc=False)
        bits = "".join(f"{b:08b}" for b in data)
        tags = [bits[i + 12] for i in range(len(bits) - 12) if bits.startswith("000000000001", i)]
        assert tags == ["1" if r % k == 0 else "0" for r in range(40)]
    letter = P.sparse_letter()
    assert len(codecs.encode(letter, "mr", k=4)) < len(codecs.encode(letter, "mh"))


def test_rtc_and_eofb_bits():
    img = P.all_white(2, 8)
    mh = codecs.encode(img, "mh")
    assert "".join(f"{b:08b}" for b in mh).rstrip("0").endswith("000000000001" * 6)
    mr = codecs.encode(img, "mr")
    assert "".join(f"{b:08b}" for b in mr).rstrip("0").endswith("0000000000011" * 6)
    mmr = codecs.encode(img, "mmr")
    assert "".join(f"{b:08b}" for b in mmr).rstrip("0").endswith("000000000001" * 2)
    assert codecs.encode(img, "mh", rtc=False) != mh


def test_known_bits():
    """Hand-checked codes: an 8-pixel row 3 white, 2 black, 3 white (Table 2/T.4)."""
    img = np.array([[0, 0, 0, 1, 1, 0, 0, 0]], dtype=bool)
    data = codecs.encode(img, "mh", rtc=False)
    assert "".join(f"{b:08b}" for b in data) == ("000000000001" + "1000" + "11" + "1000").ljust(24, "0")
    # MMR, reference row all white: |a1 - b1| = |3 - 8| > 3 so H M(3) M(2); then a1 = b1 = 8: V0
    data = codecs.encode(img, "mmr", rtc=False)
    assert "".join(f"{b:08b}" for b in data) == ("001" + "1000" + "11" + "1").ljust(16, "0")
    # the row below it, identical: V0 V0 V0 (a1 = b1 each time)
    data = codecs.encode(np.vstack([img, img]), "mmr", rtc=False)
    assert "".join(f"{b:08b}" for b in data) == ("0011000111" + "111").ljust(16, "0")


def test_lsb_is_bit_reversal_of_msb():
    img = P.dense_text(30, 1728)
    msb = codecs.encode(img, "mr")
    lsb = codecs.encode(img, "mr", bit_order="lsb")
    assert lsb == bytes(int(f"{b:08b}"[::-1], 2) for b in msb)


def test_input_forms_agree():
    from PIL import Image
    img = P.dense_text(20, 100)
    packed = np.packbits(img, axis=1).tobytes()
    pil_1 = Image.fromarray(~img)                 # mode "1": 0 = black
    assert pil_1.mode == "1"
    pil_l = Image.fromarray(np.where(img, 20, 230).astype(np.uint8))
    ref = codecs.encode(img, "mmr")
    assert codecs.encode(img.astype(np.uint8), "mmr") == ref
    assert codecs.encode(packed, "mmr", width=100) == ref
    assert codecs.encode(pil_1, "mmr") == ref
    assert codecs.encode(pil_l, "mmr") == ref


@pytest.mark.parametrize("codec", CODECS)
def test_streaming_equals_whole(codec):
    img = P.dense_text(50, 1728, seed=8)
    whole = codecs.encode(img, codec, k=3, min_row_bits=200)
    enc = codecs.StreamEncoder(1728, codec, k=3, min_row_bits=200)
    parts = [enc.encode(img[i:i + n]) for i, n in zip(range(0, 50, 7), itertools.repeat(7))]
    parts.append(enc.finish())
    assert b"".join(parts) == whole
    for size in (1, 5, 333):
        dec = codecs.StreamDecoder(1728, codec)
        rows = [dec.feed(whole[i:i + size]) for i in range(0, len(whole), size)]
        res = dec.finish()
        got = np.concatenate(rows + [res.image])
        assert np.array_equal(got, img) and res.end == END[codec] and res.rows == 50


def test_rows_come_out_as_soon_as_complete():
    img = P.dense_text(10, 1728, seed=9)
    data = codecs.encode(img, "mh", rtc=False)
    one_row = len(codecs.encode(img[:1], "mh", rtc=False))
    dec = codecs.StreamDecoder(1728, "mh", eol=True)
    assert len(dec.feed(data[:one_row])) >= 1 or len(dec.feed(data[one_row:one_row + 1])) == 1
    assert dec.rows >= 1 and dec.end is None


def test_row_counter():
    img = P.dense_text(30, 1728)
    data = codecs.encode(img, "mr")
    counter = codecs.RowCounter(1728, "mr")
    total = sum(counter.feed(data[i:i + 100]) for i in range(0, len(data), 100))
    res = counter.finish()
    assert total == 30 and res.rows == 30 and res.end == "rtc"
    assert codecs.count_rows([data[:50], data[50:]], 1728, "mr").rows == 30


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 80), density=st.sampled_from([0.0, 0.05, 0.5, 0.95, 1.0]),
    seed=st.integers(0, 2**32 - 1), codec=st.sampled_from(CODECS), k=st.integers(1, 5),
    eol=st.booleans(), byte_align=st.booleans(), rtc=st.booleans(),
    min_row_bits=st.sampled_from([0, 1, 50, 1000]), bit_order=st.sampled_from(["msb", "lsb"]),
    chunk=st.integers(1, 64),
)
def test_property_roundtrip(h, w, density, seed, codec, k, eol, byte_align, rtc, min_row_bits,
                            bit_order, chunk):
    img = np.random.default_rng(seed).random((h, w)) < density
    eol = eol or codec == "mr"
    data = codecs.encode(img, codec, k=k, eol=eol, byte_align=byte_align, rtc=rtc,
                         min_row_bits=min_row_bits, bit_order=bit_order)
    dec = codecs.StreamDecoder(w, codec, byte_align=byte_align, bit_order=bit_order, keep=True)
    for i in range(0, len(data), chunk):
        dec.feed(data[i:i + chunk])
    res = dec.finish()
    assert np.array_equal(res.image, img)
    assert res.bad_rows == 0
