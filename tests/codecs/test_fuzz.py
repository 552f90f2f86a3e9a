"""Fuzzing every decoder: random bytes and mutated real streams never crash, hang or
grow past max_rows; only misuse raises."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import codecs

import codec_pages as P

MODES = [  # (codec, decode options, encode options)
    ("mh", dict(eol=True), dict()),
    ("mh", dict(eol=None), dict()),
    ("mh", dict(eol=False, byte_align=True), dict(eol=False, byte_align=True, rtc=False)),
    ("mh", dict(eol=False), dict(eol=False, rtc=False)),
    ("mr", dict(), dict(k=4)),
    ("mr", dict(bit_order="lsb"), dict(k=2, bit_order="lsb", byte_align=True)),
    ("mmr", dict(), dict()),
]
WIDTH = 96
MAX_ROWS = 64


def check(data: bytes, codec: str, opts: dict, chunk: int | None = None):
    if chunk is None:
        r = codecs.decode(data, WIDTH, codec, max_rows=MAX_ROWS, **opts)
        image = r.image
    else:
        dec = codecs.StreamDecoder(WIDTH, codec, max_rows=MAX_ROWS, **opts)
        parts = [dec.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)]
        r = dec.finish()
        image = np.concatenate(parts + [r.image])
    assert r.rows <= MAX_ROWS and image.shape == (r.rows, WIDTH) and image.dtype == bool
    assert 0 <= r.bad_rows <= r.rows and r.max_consecutive_bad_rows <= r.bad_rows
    assert r.end in ("rtc", "eofb", "data", "error", "limit")
    if r.error_position is not None:
        assert 0 <= r.error_position <= 8 * len(data) + 8
    return r, image


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=400), mode=st.sampled_from(MODES),
       chunk=st.one_of(st.none(), st.integers(1, 50)))
def test_random_bytes(data, mode, chunk):
    codec, opts, _ = mode
    check(data, codec, opts, chunk)


_SOURCE = np.vstack([P.dense_text(20, WIDTH, seed=11), P.edges(6, WIDTH)])


@settings(max_examples=200, deadline=None)
@given(mode=st.sampled_from(MODES), seed=st.integers(0, 2**32 - 1),
       kind=st.sampled_from(["flip", "truncate", "insert", "delete", "mixed"]),
       chunk=st.one_of(st.none(), st.integers(1, 64)))
def test_mutated_streams(mode, seed, kind, chunk):
    codec, dopts, eopts = mode
    data = bytearray(codecs.encode(_SOURCE, codec, **eopts))
    rng = np.random.default_rng(seed)
    for _ in range(int(rng.integers(1, 6))):
        op = kind if kind != "mixed" else rng.choice(["flip", "truncate", "insert", "delete"])
        pos = int(rng.integers(0, len(data))) if data else 0
        if op == "flip" and data:
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == "truncate":
            del data[pos:]
        elif op == "insert":
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
        elif op == "delete":
            del data[pos:pos + int(rng.integers(1, 8))]
    r_whole, img_whole = check(bytes(data), codec, dopts)
    if chunk is not None:   # chunking never changes the result
        r_chunk, img_chunk = check(bytes(data), codec, dopts, chunk)
        assert (r_chunk.rows, r_chunk.bad_rows, r_chunk.end, r_chunk.error_position) == \
            (r_whole.rows, r_whole.bad_rows, r_whole.end, r_whole.error_position)
        assert np.array_equal(img_chunk, img_whole)


@pytest.mark.parametrize("codec,opts", [(c, o) for c, o, _ in MODES])
def test_long_hostile_inputs_are_linear_and_bounded(codec, opts):
    """Megabit inputs of zeros, ones and a repeating pattern finish (bounded work)."""
    for data in (bytes(200_000), b"\xff" * 200_000, b"\x00\x10\x01" * 60_000):
        dec = codecs.StreamDecoder(WIDTH, codec, max_rows=MAX_ROWS, **opts)
        for i in range(0, len(data), 4096):
            dec.feed(data[i:i + 4096])
        r = dec.finish()
        assert r.rows <= MAX_ROWS
