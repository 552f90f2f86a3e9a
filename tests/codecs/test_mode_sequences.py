"""Odd but legal two-dimensional mode sequences (rows starting with H(0,0), zero-length
runs mid-row, passes to the right edge) decode whole and the same in both backends.

The streams come from tests/codecs/mode_sequences.py, whose model of what a sequence
means is checked against libtiff in tests/interop/test_codecs_libtiff.py; here the
model is the oracle, so these run without libtiff.
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import codecs
from xmfax.codecs import _tables as T

import codec_pages as P
import mode_sequences as M

BACKENDS = codecs.available_backends()
H00, P_, V0 = ("H", 0, 0), ("P",), ("V", 0)


def to_bytes(bits: str) -> bytes:
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def decode_all(data: bytes, width: int, codec: str, **kw):
    """Decode with every backend; the results must be identical. Returns one."""
    results = [codecs.decode(data, width, codec, impl=impl, **kw) for impl in BACKENDS]
    first = results[0]
    for r in results[1:]:
        assert (r.rows, r.bad_rows, r.end, r.error_position, r.first_bad_row,
                r.garbled_fill_rows) == (first.rows, first.bad_rows, first.end,
                                         first.error_position, first.first_bad_row,
                                         first.garbled_fill_rows)
        assert np.array_equal(r.image, first.image)
    return first


@pytest.mark.parametrize("codec", ["mr", "mmr"])
@pytest.mark.parametrize("every", [1, 2, 3])
def test_page_with_h00_row_starts_decodes_whole(codec, every):
    """The finding: a G4 file whose rows begin with H(0,0) decoded 236 of 3,369 rows.
    The row after such a row begins with a pass over its two zero-length runs (b1 = b2
    = 0); dropping those runs from the reference (as xmfax did) moved that pass to the
    next real changing element and derailed the page (MMR here: 13 of 180 rows)."""
    img = np.vstack([P.dense_text(150, 1728, seed=5), P.edges(30, 1728)])
    data = M.code_image(img, codec, start=lambda n: [H00] * (n % every == 0))
    r = decode_all(data, 1728, codec)
    assert (r.rows, r.bad_rows, r.first_bad_row) == (180, 0, None)
    assert r.end == ("eofb" if codec == "mmr" else "data")
    assert np.array_equal(r.image, img)


def test_pass_over_zero_runs_at_row_start():
    """Row 0 = H(0,0) H(10,5) ...: reference elements 0, 0, 10, 15. Row 1 = P V0: the
    pass takes b1 = b2 = 0 (a0 = 0), then b1 = 10 and V0 puts a1 there."""
    width = 32
    row0 = (T.MODE_HORIZONTAL + T.run_code(0, 0) + T.run_code(1, 0)
            + T.MODE_HORIZONTAL + T.run_code(0, 10) + T.run_code(1, 5)
            + T.MODE_VERTICAL[0])                       # b1 = 32 (all-white reference)
    row1 = T.MODE_PASS + T.MODE_VERTICAL[0] + T.MODE_VERTICAL[0] + T.MODE_VERTICAL[0]
    r = decode_all(to_bytes(row0 + row1 + T.EOFB), width, "mmr")
    expect = [False] * 10 + [True] * 5 + [False] * 17
    assert r.end == "eofb" and r.rows == 2 and r.image[0].tolist() == expect
    assert r.image[1].tolist() == expect


def test_one_dimensional_row_drops_white0_black0_pairs():
    """In an MR 1-D row a white run of 0 followed by a black run of 0 leaves no changing
    elements (libtiff's behaviour); other zero-length runs stay. Row 0 (1-D): white 0,
    black 0, white 5, black 3: the reference is 5, 8, so row 1's first pass goes to 8."""
    width = 16
    row0 = T.EOL + "1" + "".join(T.run_code(c, r) for c, r in
                                 [(0, 0), (1, 0), (0, 5), (1, 3), (0, 8)])
    row1 = T.EOL + "0" + T.MODE_PASS + T.MODE_HORIZONTAL + T.run_code(0, 1) + T.run_code(1, 1) \
        + T.MODE_HORIZONTAL + T.run_code(0, 6) + T.run_code(1, 0)
    r = decode_all(to_bytes(row0 + row1), width, "mr")
    assert r.rows == 2 and r.bad_rows == 0
    assert r.image[1].tolist() == [False] * 9 + [True] + [False] * 6
    _, model, _ = M.write([[("1D", [0, 0, 5, 3])], [P_, ("H", 1, 1)]], width, "mr")
    assert np.array_equal(model, r.image)


def test_too_many_zero_length_runs_is_a_bad_row():
    """A row of endless H(0,0) is garbage: at most width + 32 zero-length runs per row
    (bounded memory), then the row is bad (MMR: decoding ends there)."""
    width = 8
    h00 = T.MODE_HORIZONTAL + T.run_code(0, 0) + T.run_code(1, 0)
    fine = h00 * 20 + T.MODE_VERTICAL[0]                   # 39 zero-length runs: allowed
    r = decode_all(to_bytes(fine + T.EOFB), width, "mmr")
    assert (r.rows, r.end, r.first_bad_row) == (1, "eofb", None)
    r = decode_all(to_bytes(fine + h00 * 1000 + T.EOFB), width, "mmr")
    assert (r.rows, r.end, r.first_bad_row) == (1, "error", 1)
    assert "zero-length" in r.error
    mr = T.EOL + "1" + T.run_code(0, 8) + T.EOL + "0" + h00 * 1000 + T.EOL + "1" + T.run_code(0, 8)
    r = decode_all(to_bytes(mr), width, "mr")
    assert (r.rows, r.bad_rows, r.first_bad_row) == (3, 1, 1)


RUNS = st.one_of(st.integers(0, 9), st.integers(0, 200), st.sampled_from([63, 64, 65, 2560, 2624]))
OP = st.one_of(st.just(P_), st.just(H00), st.tuples(st.just("H"), RUNS, RUNS),
               st.tuples(st.just("V"), st.integers(-3, 3)))
ROW = st.lists(OP, max_size=12)
ROW_1D = st.tuples(st.just("1D"), st.lists(RUNS, max_size=10)).map(lambda op: [op])


@settings(max_examples=200, deadline=None)
@given(codec=st.sampled_from(["mr", "mmr"]), width=st.sampled_from([1, 5, 40, 300, 2700]),
       data=st.data())
def test_generated_sequences_decode_to_the_model(codec, width, data):
    row = st.one_of(ROW, ROW_1D) if codec == "mr" else ROW
    ops = data.draw(st.lists(row, min_size=1, max_size=8), label="rows")
    stream, model, coded = M.write(ops, width, codec)
    r = decode_all(stream, width, codec)
    assert (r.rows, r.bad_rows, r.first_bad_row) == (len(ops), 0, None), (r.error, coded)
    assert r.end == ("eofb" if codec == "mmr" else "data")
    assert np.array_equal(r.image, model), coded


# --- first_bad_row: where a page to send stops being whole ---------------------------------

@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_first_bad_row_random_bytes(codec):
    rng = np.random.default_rng(7)
    for _ in range(20):
        data = rng.bytes(int(rng.integers(20, 2000)))
        r = decode_all(data, 1728, codec, eol=True if codec == "mh" else None)
        assert r.first_bad_row is not None and r.first_bad_row <= r.rows
        assert not (r.first_bad_row is None and r.ok and r.rows)


@pytest.mark.parametrize("codec,opts", [("mh", {}), ("mr", dict(k=4)), ("mmr", {}),
                                        ("mh", dict(eol=False, byte_align=True, rtc=False))])
def test_first_bad_row_strip_cut_short(codec, opts):
    img = P.dense_text(60, 1728, seed=3)
    data = codecs.encode(img, codec, **opts)
    dopts = dict(eol=False, byte_align=True) if opts.get("eol") is False else {}
    whole = decode_all(data, 1728, codec, **dopts)
    assert whole.first_bad_row is None and whole.rows == 60
    # cut inside a row: the rows before it are whole, that row is the first bad one
    for cut in (len(data) // 3, len(data) // 2 + 1, len(data) - 40):
        r = decode_all(data[:cut], 1728, codec, **dopts)
        assert r.end == "data" and r.first_bad_row == r.rows < 60
        assert np.array_equal(r.image, img[:r.rows])


def test_first_bad_row_bad_row_and_garbled_fill():
    img = P.dense_text(30, 1728, seed=9)
    bits = "".join(f"{b:08b}" for b in codecs.encode(img, "mh"))
    eols = [i for i in range(len(bits) - 11) if bits.startswith(T.EOL, i)]
    # a bad code in row 7: bad_rows 1, first_bad_row 7 (tolerant decode goes on)
    p = eols[7] + 12
    r = decode_all(to_bytes(bits[:p] + "0000000111" + bits[p + 10:]), 1728, "mh")
    assert (r.bad_rows, r.first_bad_row, r.rows) == (1, 7, 30)
    # noise that swallows the EOL of row 12: row 11 is good, the loss is at row 12
    q = eols[12]
    r = decode_all(to_bytes(bits[:q] + "000001000001" + bits[q + 12:]), 1728, "mh")
    assert r.garbled_fill_rows == 1 and r.first_bad_row == 12 and r.bad_rows == 0
    # junk before the first EOL: damage before row 0
    r = decode_all(to_bytes("10110" + bits), 1728, "mh", eol=True)
    assert r.rows == 30 and r.bad_rows == 0 and r.first_bad_row == 0
    # fill zeros before the first EOL are fine
    r = decode_all(to_bytes("0000000" + bits), 1728, "mh", eol=True)
    assert r.rows == 30 and r.first_bad_row is None


def test_first_bad_row_streaming_is_live():
    img = P.edges(40, 1728)
    data = codecs.encode(img, "mmr")
    for impl in BACKENDS:
        dec = codecs.StreamDecoder(1728, "mmr", impl=impl)
        assert dec.first_bad_row is None
        dec.feed(data[:len(data) // 2])
        assert dec.first_bad_row is None
        r = dec.finish()                 # the input ends inside a row
        assert r.first_bad_row == r.rows == dec.first_bad_row < 40
