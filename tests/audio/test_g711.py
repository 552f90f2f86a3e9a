"""G.711 µ-law / A-law in C: the segment arithmetic against the law's own definition."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmfax.audio import g711

ALL_LINEAR = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
ALL_CODES = bytes(range(256))


def _decoded(law):
    return g711.decode(ALL_CODES, law).astype(np.int64)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encode_is_nearest_level_within_half_a_step(law):
    # every linear value is coded to a level no further than half its segment's step
    levels = _decoded(law)
    x = ALL_LINEAR.astype(np.int64)
    y = g711.decode(g711.encode(ALL_LINEAR, law), law).astype(np.int64)
    err = np.abs(y - x)
    mag = np.minimum(np.abs(x), 32635 if law == "ulaw" else 32767)
    # step of the segment: µ-law 8..256 (x4 scale 2^(seg+3)), A-law 16..512
    if law == "ulaw":
        seg = np.clip(np.floor(np.log2((mag + 0x84) / 128.0)), 0, 7)
        half = 2 ** (seg + 2) + 1
    else:
        seg = np.clip(np.floor(np.log2(np.maximum(mag, 1) / 128.0)), 0, 7)
        half = 2 ** (seg + 3) + 1
    inside = np.abs(x) <= (32124 if law == "ulaw" else 32256)
    assert np.all(err[inside] <= half[inside])
    assert set(np.unique(y)) <= set(levels)


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_encode_is_monotonic(law):
    y = g711.decode(g711.encode(ALL_LINEAR, law), law)
    assert np.all(np.diff(y.astype(np.int64)) >= 0)


def test_known_code_words():
    # G.711: µ-law zero is 0xFF (all ones on the line), A-law +0 is 0xD5 (even bits inverted)
    assert g711.encode([0, 32767, -32768], "ulaw") == bytes([0xFF, 0x80, 0x00])
    assert g711.encode([0, -1, 32767, -32768], "alaw") == bytes([0xD5, 0x55, 0xAA, 0x2A])
    assert list(g711.decode(bytes([0xFF, 0x7F, 0x80, 0x00]), "ulaw")) == [0, 0, 32124, -32124]
    assert list(g711.decode(bytes([0xD5, 0x55, 0xAA, 0x2A]), "alaw")) == [8, -8, 32256, -32256]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_codes_round_trip(law):
    back = g711.encode(g711.decode(ALL_CODES, law), law)
    if law == "alaw":
        assert back == ALL_CODES
    else:   # 0x7F is µ-law's "negative zero": it decodes to 0, which codes as 0xFF
        diff = [c for c in range(256) if back[c] != c]
        assert diff == [0x7F] and back[0x7F] == 0xFF


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_decode_is_odd_symmetric(law):
    v = g711.decode(ALL_CODES, law).astype(np.int64)
    pos = v[np.arange(256) ^ 0x80]       # the sign bit flipped
    assert np.all(v == -pos)


def test_full_scale_sine_level():
    k = np.arange(8000)
    s = np.rint(32767 * np.sin(2 * np.pi * 1000 * k / 8000 + 0.3)).astype(np.int16)
    assert abs(g711.level_dbm0(s) - g711.FULL_SCALE_DBM0) < 0.01
    assert abs(g711.dbm0_to_rms(-10.0) * np.sqrt(2) - g711.dbm0_to_peak(-10.0)) < 1e-9
    assert g711.level_dbm0(np.zeros(10, np.int16)) == float("-inf")


def test_transcode_and_tandem_are_compositions():
    u2a = g711.transcode(ALL_CODES, "ulaw", "alaw")
    assert u2a == g711.encode(g711.decode(ALL_CODES, "ulaw"), "alaw")
    a2u = g711.transcode(ALL_CODES, "alaw", "ulaw")
    assert a2u == g711.encode(g711.decode(ALL_CODES, "alaw"), "ulaw")
    x = ALL_LINEAR
    step1 = g711.decode(g711.encode(x, "ulaw"), "ulaw")
    step2 = g711.decode(g711.encode(step1, "alaw"), "alaw")
    step3 = g711.decode(g711.encode(step2, "ulaw"), "ulaw")
    assert np.array_equal(g711.tandem(x), step3)
    # a tandem costs some accuracy but stays within two µ-law steps of a single coding
    once = step1.astype(np.int64)
    assert np.max(np.abs(step3.astype(np.int64) - once)[np.abs(once) < 30000]) <= 2048


@given(st.lists(st.integers(-32768, 32767), max_size=300), st.sampled_from(["ulaw", "alaw"]))
def test_blocks_of_any_size(values, law):
    x = np.array(values, dtype=np.int16)
    whole = g711.encode(x, law)
    assert len(whole) == len(x)
    assert b"".join(g711.encode(x[k:k + 7], law) for k in range(0, len(x), 7)) == whole
    assert np.array_equal(g711.decode(whole, law), g711.decode(np.frombuffer(whole, np.uint8), law))


def test_bad_arguments():
    with pytest.raises(ValueError, match="law"):
        g711.encode([1, 2], "glaw")
    with pytest.raises(ValueError, match="law"):
        g711.decode(b"", "x")
    with pytest.raises(ValueError, match="1-D"):
        g711.encode(np.zeros((2, 2), np.int16))
    with pytest.raises(ValueError, match="int16 range"):
        g711.encode(np.array([40000]))
    with pytest.raises(ValueError, match="int16"):
        g711.encode(np.array([0.5]))
    with pytest.raises(ValueError, match="uint8"):
        g711.decode(np.array([1, 2], dtype=np.int16))
    assert g711.encode([], "alaw") == b""
    assert len(g711.decode(b"")) == 0
