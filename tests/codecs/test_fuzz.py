"""Fuzzing every decoder: random bytes and mutated real streams never crash, hang or
grow past max_rows; only misuse raises."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import codecs

import codec_pages as P
import mode_sequences as M

MODES = [  # (codec, decode options, encode options)
    ("mh", dict(eol=True), dict()),
    ("mh", dict(eol=None), dict()),
    ("mh", dict(eol=False, byte_align=True), dict(eol=False, byte_align=True, rtc=False)),
    ("mh", dict(eol=False), dict(eol=False, rtc=False)),
    ("mr", dict(), dict(k=4)),
    ("mr", dict(bit_order="lsb"), dict(k=2, bit_order="lsb", byte_align=True)),
    ("mmr", dict(), dict()),
    ("mmr", dict(bit_order="lsb"), dict(bit_order="lsb")),
    ("mh", dict(eol=True, byte_align=True), dict(byte_align=True)),
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
    """Megabit inputs of zeros, ones, a repeating pattern and endless H(0,0) (zero-length
    runs: at most width + 32 per row) finish, with bounded work and memory."""
    h00 = "001" + "00110101" + "0000110111"            # H, white 0, black 0: 21 bits
    bits = h00 * 8 * 4000                              # a whole number of bytes
    endless_h00 = int(bits, 2).to_bytes(len(bits) // 8, "big")
    for data in (bytes(200_000), b"\xff" * 200_000, b"\x00\x10\x01" * 60_000, endless_h00):
        dec = codecs.StreamDecoder(WIDTH, codec, max_rows=MAX_ROWS, **opts)
        for i in range(0, len(data), 4096):
            dec.feed(data[i:i + 4096])
        r = dec.finish()
        assert r.rows <= MAX_ROWS


# --- odd mode sequences (tests/codecs/mode_sequences.py), whole and mutated -----------------

_RUNS = st.one_of(st.integers(0, 9), st.integers(0, WIDTH), st.sampled_from([64, 2560]))
_OP = st.one_of(st.just(("P",)), st.just(("H", 0, 0)), st.tuples(st.just("H"), _RUNS, _RUNS),
                st.tuples(st.just("V"), st.integers(-3, 3)))
_ROW_1D = st.tuples(st.just("1D"), st.lists(_RUNS, max_size=8)).map(lambda op: [op])
_ROWS = st.lists(st.one_of(st.lists(_OP, max_size=10), _ROW_1D), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(["mr", "mmr"]), rows=_ROWS, seed=st.integers(0, 2**32 - 1),
       mutations=st.integers(0, 4), chunk=st.one_of(st.none(), st.integers(1, 32)),
       lsb=st.booleans())
def test_mode_sequences_mutated(codec, rows, seed, mutations, chunk, lsb):
    """Generated mode sequences (H(0,0), zero-length runs, passes to the edge, 1-D rows
    with zero runs) with a few bits flipped, bytes cut or inserted: every backend gives
    the same result, within bounds, whatever the chunking; unmutated, the model's."""
    if codec == "mmr":
        rows = [r for r in rows if not (r and r[0][0] == "1D")] or [[]]
    data, model, _ = M.write(rows, WIDTH, codec)
    data = bytearray(data)
    rng = np.random.default_rng(seed)
    for _ in range(mutations):
        pos = int(rng.integers(0, len(data))) if data else 0
        op = int(rng.integers(0, 3))
        if op == 0 and data:
            data[pos] ^= 1 << int(rng.integers(0, 8))
        elif op == 1:
            del data[pos:pos + int(rng.integers(1, 4))]
        else:
            data[pos:pos] = rng.integers(0, 256, int(rng.integers(1, 4)), dtype=np.uint8).tobytes()
    data = bytes(data)
    opts = {}
    if lsb:
        data = data.translate(bytes(int(f"{i:08b}"[::-1], 2) for i in range(256)))
        opts["bit_order"] = "lsb"
    seen = []
    for impl in codecs.available_backends():
        if chunk is None:
            r = codecs.decode(data, WIDTH, codec, max_rows=MAX_ROWS, impl=impl, **opts)
            image = r.image
        else:
            dec = codecs.StreamDecoder(WIDTH, codec, max_rows=MAX_ROWS, impl=impl, **opts)
            parts = [dec.feed(data[i:i + chunk]) for i in range(0, len(data), chunk)]
            r = dec.finish()
            image = np.concatenate(parts + [r.image])
        assert r.rows <= MAX_ROWS and image.shape == (r.rows, WIDTH)
        assert r.first_bad_row is None or 0 <= r.first_bad_row <= r.rows
        if r.bad_rows or r.end == "error":
            assert r.first_bad_row is not None
        seen.append(((r.rows, r.bad_rows, r.end, r.error_position, r.first_bad_row,
                      r.garbled_fill_rows), image))
    for stats, image in seen[1:]:
        assert stats == seen[0][0] and np.array_equal(image, seen[0][1])
    if mutations == 0:
        stats, image = seen[0]
        assert stats[1:] == (0, "eofb" if codec == "mmr" else "data", None, None, 0)
        assert np.array_equal(image, model[:MAX_ROWS])
