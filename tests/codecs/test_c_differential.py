"""Differential tests: the C backend (xmfax/codecs/_c.py over native/) against the
pure-Python reference (_ref.py), bit for bit.

Both encoders must produce the same bytes for every page and option; each decoder must
decode the other's output; on any input at all (valid, mutated, random) both decoders
must give the same rows and the same statistics (rows, bad_rows,
max_consecutive_bad_rows, end, error_position, garbled_fill_rows); and any chunking of the input must give
what one whole feed gives.
"""
from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmfax import codecs
from xmfax.codecs import _ref

try:
    from xmfax.codecs import _c
except ImportError as exc:          # no compiler at install: nothing to compare
    pytest.skip(f"C codec backend not built ({exc})", allow_module_level=True)

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the checkout
ITU = (SHARED / "corpus/itu")
BACKENDS = {"c": _c, "python": _ref}


# --- pages ------------------------------------------------------------------------------

def dense_text(rows=120, width=1728, seed=1):
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, width), dtype=bool)
    for top in range(4, rows - 18, 20):
        x = 30
        while x < width - 30:
            w = int(rng.integers(3, 14))
            img[top:top + 14, x:x + w] = rng.random((14, w)) < 0.5
            x += w + int(rng.integers(1, 9))
    return img


def dithered(rows=60, width=1728, seed=2):
    grad = np.linspace(0.05, 0.95, width)[None, :]
    return np.random.default_rng(seed).random((rows, width)) < grad


def alternating(rows=8, width=1728):
    img = np.zeros((rows, width), dtype=bool)
    img[0::2, 0::2] = True
    img[1::2, 1::2] = True
    return img


def edges(rows=24, width=1728):
    img = np.zeros((rows, width), dtype=bool)
    img[::2, :3] = True
    img[1::3, -5:] = True
    img[::5, :] = True
    img[3::7, 1:-1] = True
    return img


def long_runs(rows=12, width=6000):
    """Runs over 2560 (repeated 2560 make-up codes, T.4 §4.1.1.1) in both colours."""
    img = np.zeros((rows, width), dtype=bool)
    img[1, 100:5900] = True
    img[2, :] = True
    img[3, 2623:2624] = True
    img[4, 2624:5248] = True
    img[5::2, 64 * 41:] = True
    return img


def itu(n, rows=None):
    path = ITU / f"itu{n}.pbm"
    if not path.exists():
        pytest.skip(f"ITU T.24 page {path} not present (shared corpus absent)")
    from PIL import Image
    with Image.open(path) as im:
        img = ~np.asarray(im.convert("1"), dtype=bool)
    return img[:rows] if rows else img


GENERATED = {
    "dense": dense_text,
    "dithered": dithered,
    "alternating": alternating,
    "edges": edges,
    "white": lambda: np.zeros((10, 1728), dtype=bool),
    "black": lambda: np.ones((10, 1728), dtype=bool),
    "odd-width": lambda: dense_text(rows=40, width=1725, seed=3),
    "width-1": lambda: np.random.default_rng(4).random((30, 1)) < 0.5,
    "width-9": lambda: np.random.default_rng(5).random((30, 9)) < 0.5,
    "long-runs": long_runs,
}

# every option combination that the contract allows
ENCODE_OPTIONS = (
    [dict(codec="mh", eol=eol, byte_align=ba, rtc=rtc, min_row_bits=mrb, bit_order=bo)
     for eol, ba, rtc, mrb, bo in itertools.product(
         (True, False), (False, True), (True, False), (0, 400), ("msb", "lsb"))
     if eol or mrb == 0]
    + [dict(codec="mr", k=k, byte_align=ba, rtc=rtc, min_row_bits=mrb, bit_order=bo)
       for k, ba, rtc, mrb, bo in itertools.product(
           (1, 2, 4), (False, True), (True, False), (0, 400), ("msb", "lsb"))]
    + [dict(codec="mmr", rtc=rtc, bit_order=bo)
       for rtc, bo in itertools.product((True, False), ("msb", "lsb"))]
)


def opt_id(o):
    return "-".join(f"{k}={v}" for k, v in o.items())


def decode_options(o):
    return dict(codec=o["codec"], eol=o.get("eol", True) if o["codec"] == "mh" else None,
                byte_align=o.get("byte_align", False), bit_order=o.get("bit_order", "msb"))


def full_decode(module, data, width, codec, eol=True, byte_align=False, bit_order="msb",
                max_rows=16384, chunks=None):
    """Decode with one backend's Decoder (fed whole or in the given chunk sizes)."""
    dec = module.Decoder(width, codec, eol=eol, byte_align=byte_align, bit_order=bit_order,
                         max_rows=max_rows)
    pieces, pos = [], 0
    for size in (chunks or [len(data)]):
        pieces.append(dec.feed(data[pos:pos + size]))
        pos += size
    pieces.append(dec.feed(data[pos:]))
    pieces.append(dec.finish())
    image = np.concatenate(pieces)
    assert image.dtype == np.bool_ and image.shape == (dec.rows, width)
    return image, (dec.rows, dec.bad_rows, dec.max_consecutive_bad_rows, dec.end,
                   dec.error_position, dec.garbled_fill_rows, dec.first_bad_row)


def assert_same_decode(data, width, codec, **kw):
    img_c, stats_c = full_decode(_c, data, width, codec, **kw)
    img_p, stats_p = full_decode(_ref, data, width, codec, **kw)
    assert stats_c == stats_p
    assert np.array_equal(img_c, img_p)
    return img_c, stats_c


# --- encode: same bytes; decode: each reads the other's --------------------------------

@pytest.mark.parametrize("page", sorted(GENERATED))
@pytest.mark.parametrize("opts", ENCODE_OPTIONS, ids=opt_id)
def test_generated_pages_every_option(page, opts):
    img = GENERATED[page]()
    out = {impl: codecs.encode(img, impl=impl, **opts) for impl in BACKENDS}
    assert out["c"] == out["python"]
    dopts = decode_options(opts)
    for impl in BACKENDS:
        res = codecs.decode(out["c"], width=img.shape[1], impl=impl, **dopts)
        assert np.array_equal(res.image, img), impl
        assert res.bad_rows == 0
        expected_end = ("eofb" if opts["codec"] == "mmr" else "rtc") if opts["rtc"] else "data"
        if opts["codec"] == "mh" and not opts["eol"]:
            expected_end = "data"       # no RTC without EOLs
        assert res.end == expected_end


@pytest.mark.parametrize("n", [1, 2, 4, 5, 7, 8])
@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_itu_pages(n, codec):
    img = itu(n, rows=700)        # the reference backend is slow: part of each page
    opts = dict(k=4) if codec == "mr" else {}
    data = codecs.encode(img, codec, impl="c", **opts)
    assert data == codecs.encode(img, codec, impl="python", **opts)
    img_c, stats = assert_same_decode(data, 1728, codec)
    assert np.array_equal(img_c, img)
    assert stats[1] == 0


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_whole_itu_page_c_roundtrip(codec):
    """Every row of every ITU page through the C path (fast, so no cropping)."""
    for n in range(1, 9):
        img = itu(n)
        data = codecs.encode(img, codec, k=4, impl="c")
        res = codecs.decode(data, 1728, codec, impl="c")
        assert np.array_equal(res.image, img) and res.ok


# --- streaming ---------------------------------------------------------------------------

@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_chunked_decode_equals_whole(data):
    page = data.draw(st.sampled_from(["dense", "dithered", "edges", "width-9"]))
    opts = data.draw(st.sampled_from(ENCODE_OPTIONS))
    img = GENERATED[page]()[:30]
    stream = codecs.encode(img, impl="c", **opts)
    sizes = data.draw(st.lists(st.integers(0, 40), max_size=60))
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    whole_img, whole_stats = full_decode(_c, stream, img.shape[1], **kw)
    part_img, part_stats = full_decode(_c, stream, img.shape[1], chunks=sizes, **kw)
    assert part_stats == whole_stats
    assert np.array_equal(part_img, whole_img)
    ref_img, ref_stats = full_decode(_ref, stream, img.shape[1], chunks=sizes, **kw)
    assert ref_stats == whole_stats and np.array_equal(ref_img, whole_img)


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_chunked_encode_equals_whole(data):
    opts = data.draw(st.sampled_from(ENCODE_OPTIONS))
    img = dense_text(rows=40, width=data.draw(st.sampled_from([1728, 77, 8])))
    cuts = sorted(data.draw(st.lists(st.integers(0, 40), max_size=8)))
    whole = codecs.encode(img, impl="python", **opts)
    enc = codecs.StreamEncoder(img.shape[1], impl="c", **opts)
    out, start = [], 0
    for cut in cuts + [40]:
        out.append(enc.encode(img[start:cut]))
        start = max(start, cut)
    out.append(enc.finish())
    assert b"".join(out) == whole


# --- hypothesis: random images x options ------------------------------------------------

@st.composite
def images(draw):
    width = draw(st.integers(1, 90))
    rows = draw(st.integers(0, 12))
    density = draw(st.sampled_from([0.02, 0.3, 0.5, 0.9]))
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).random((rows, width)) < density


@settings(max_examples=300, deadline=None)
@given(images(), st.sampled_from(ENCODE_OPTIONS))
def test_random_images(img, opts):
    data = codecs.encode(img, impl="c", **opts)
    assert data == codecs.encode(img, impl="python", **opts)
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    got, stats = assert_same_decode(data, img.shape[1], **kw)
    assert np.array_equal(got, img)


# --- any input: the decoders agree on garbage too ---------------------------------------

DECODE_KINDS = [
    dict(codec="mh", eol=True), dict(codec="mh", eol=False), dict(codec="mh", eol=False, byte_align=True),
    dict(codec="mr", eol=True), dict(codec="mmr", eol=False), dict(codec="mh", eol=True, bit_order="lsb"),
]


def mutate(rng, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 6))):
        op = int(rng.integers(0, 4))
        if not buf:
            break
        i = int(rng.integers(0, len(buf)))
        if op == 0:
            buf[i] ^= 1 << int(rng.integers(0, 8))          # bit flip
        elif op == 1:
            del buf[i:i + int(rng.integers(1, 20))]          # deletion
        elif op == 2:
            buf[i:i] = rng.bytes(int(rng.integers(1, 8)))    # insertion
        else:
            buf = buf[:i]                                    # truncation
    return bytes(buf)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(DECODE_KINDS), st.sampled_from([1, 5, 40, 1728]),
       st.integers(1, 50))
def test_random_bytes_same_result(data, kind, width, max_rows):
    kind = dict(kind)
    codec = kind.pop("codec")
    img, stats = assert_same_decode(data, width, codec, max_rows=max_rows, **kind)
    assert stats[0] <= max_rows


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["dense", "dithered", "edges", "width-9"]), st.sampled_from(ENCODE_OPTIONS),
       st.integers(0, 2**32 - 1), st.lists(st.integers(1, 30), max_size=10))
def test_mutated_streams_same_result(page, opts, seed, chunks):
    img = GENERATED[page]()[:25]
    data = mutate(np.random.default_rng(seed), codecs.encode(img, impl="c", **opts))
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    got, stats = assert_same_decode(data, img.shape[1], chunks=chunks, **kw)
    assert stats[3] in ("rtc", "eofb", "data", "error", "limit")


def test_max_rows_limit():
    img = dense_text(rows=60)
    for codec in ("mh", "mr", "mmr"):
        data = codecs.encode(img, codec, impl="c")
        got, stats = assert_same_decode(data, 1728, codec, max_rows=17)
        assert stats[0] == 17 and stats[3] == "limit"
        assert np.array_equal(got, img[:17])


def test_misuse_raises():
    dec = _c.Decoder(1728, "mh", eol=True, byte_align=False, bit_order="msb", max_rows=10)
    dec.finish()
    with pytest.raises(codecs.CodecError if hasattr(codecs, "CodecError") else Exception):
        dec.feed(b"\x00")
    enc = _c.Encoder(1728, "mh", k=1, eol=True, byte_align=False, min_row_bits=0, bit_order="msb")
    enc.finish(True)
    with pytest.raises(Exception):
        enc.encode(np.zeros((1, 1728), dtype=np.uint8))


# --- packed rows: the same rows as the bool path, bit for bit in both backends ---------

def packed_decode(module, data, width, codec, chunks=None, **kw):
    """full_decode with packed output: uint8 (rows, (width + 7) // 8) and the statistics."""
    dec = module.Decoder(width, codec, packed=True, **kw)
    pieces, pos = [], 0
    for size in (chunks or [len(data)]):
        pieces.append(dec.feed(data[pos:pos + size]))
        pos += size
    pieces.append(dec.feed(data[pos:]))
    pieces.append(dec.finish())
    image = np.concatenate(pieces)
    assert image.dtype == np.uint8 and image.shape == (dec.rows, (width + 7) // 8)
    return image, (dec.rows, dec.bad_rows, dec.max_consecutive_bad_rows, dec.end,
                   dec.error_position, dec.garbled_fill_rows, dec.first_bad_row)


def assert_packed_agrees(data, width, codec, chunks=None, **kw):
    """Both backends' packed rows equal each other and the packed bool rows, with the
    same statistics as the bool decoders, pad bits 0."""
    img, stats = assert_same_decode(data, width, codec, chunks=chunks, **kw)
    want = np.packbits(img, axis=1)
    for module in (_c, _ref):
        got, pstats = packed_decode(module, data, width, codec, chunks=chunks, **kw)
        assert pstats == stats, module.__name__
        assert np.array_equal(got, want), module.__name__
    return img, stats


@settings(max_examples=200, deadline=None)
@given(images(), st.sampled_from(ENCODE_OPTIONS), st.integers(0, 255),
       st.lists(st.integers(1, 30), max_size=6))
def test_packed_encode_and_decode(img, opts, pad, chunks):
    """Packed rows in (pad bits set at random: ignored) give the bool path's bytes, and
    packed rows out are the bool rows packed, in both backends."""
    width = img.shape[1]
    packed = np.packbits(img, axis=1)
    if width % 8:                              # garbage in the pad bits of the last byte
        packed[:, -1] |= np.uint8(pad & (0xFF >> (width % 8)))
    data = codecs.encode(img, impl="python", **opts)
    for impl in BACKENDS:
        assert codecs.encode(packed, width=width, packed=True, impl=impl, **opts) == data, impl
        assert codecs.encode(packed.tobytes(), width=width, impl=impl, **opts) == data, impl
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    got, _ = assert_packed_agrees(data, width, chunks=chunks, **kw)
    assert np.array_equal(got, img)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(DECODE_KINDS), st.sampled_from([1, 5, 12, 40, 1728]),
       st.integers(1, 50))
def test_packed_random_bytes(data, kind, width, max_rows):
    """Garbage too: bad rows (copies of the row above) come out packed the same."""
    kind = dict(kind)
    codec = kind.pop("codec")
    assert_packed_agrees(data, width, codec, max_rows=max_rows, **kind)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["dense", "dithered", "edges", "width-9", "odd-width", "long-runs"]),
       st.sampled_from(ENCODE_OPTIONS), st.integers(0, 2**32 - 1),
       st.lists(st.integers(1, 30), max_size=10))
def test_packed_mutated_streams(page, opts, seed, chunks):
    img = GENERATED[page]()[:25]
    data = mutate(np.random.default_rng(seed), codecs.encode(img, impl="c", **opts))
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    assert_packed_agrees(data, img.shape[1], chunks=chunks, **kw)


@pytest.mark.parametrize("page", sorted(GENERATED))
@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_packed_generated_pages(page, codec):
    img = GENERATED[page]()
    packed = np.packbits(img, axis=1)
    data = {impl: codecs.encode(packed, codec, k=4, width=img.shape[1], packed=True, impl=impl)
            for impl in BACKENDS}
    assert data["c"] == data["python"] == codecs.encode(img, codec, k=4, impl="c")
    for impl in BACKENDS:
        res = codecs.decode(data["c"], img.shape[1], codec, packed=True, impl=impl)
        assert res.ok and np.array_equal(res.image, packed), impl


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_packed_whole_itu_pages_c(codec):
    """Every ITU page, packed in and out through the C path, against the bool path."""
    for n in range(1, 9):
        img = itu(n)
        packed = np.packbits(img, axis=1)
        data = codecs.encode(packed, codec, k=4, width=1728, packed=True, impl="c")
        assert data == codecs.encode(img, codec, k=4, impl="c")
        res = codecs.decode(data, 1728, codec, packed=True, impl="c")
        assert res.ok and np.array_equal(res.image, packed)


@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("codec", ["mh", "mmr"])
def test_packed_itu_pages_python(n, codec):
    img = itu(n, rows=500)
    packed = np.packbits(img, axis=1)
    data = codecs.encode(packed, codec, width=1728, packed=True, impl="python")
    assert data == codecs.encode(packed, codec, width=1728, packed=True, impl="c")
    assert np.array_equal(codecs.decode(data, 1728, codec, packed=True, impl="python").image, packed)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["dense", "dithered", "edges", "width-9"]), st.sampled_from(ENCODE_OPTIONS),
       st.integers(0, 2**32 - 1), st.integers(0, 400), st.booleans(), st.booleans())
def test_finish_with_the_last_chunk(page, opts, seed, cut, damaged, packed):
    """finish(data) (how decode() hands over a whole page) equals feed(data) + finish(),
    in both backends: the input's last bits decode as they would have from a feed."""
    img = GENERATED[page]()[:25]
    data = codecs.encode(img, impl="c", **opts)
    if damaged:
        data = mutate(np.random.default_rng(seed), data)
    cut = min(cut, len(data))
    kw = decode_options(opts)
    kw["eol"] = bool(kw["eol"]) if kw["eol"] is not None else True
    want_img, want_stats = full_decode(_ref, data, img.shape[1], **kw)
    for module in (_c, _ref):
        dec = module.Decoder(img.shape[1], max_rows=16384, packed=packed, **kw)
        rows = np.concatenate([dec.feed(data[:cut]), dec.finish(data[cut:])])
        assert (dec.rows, dec.bad_rows, dec.max_consecutive_bad_rows, dec.end, dec.error_position,
                dec.garbled_fill_rows, dec.first_bad_row) == want_stats, module.__name__
        assert np.array_equal(rows, np.packbits(want_img, axis=1) if packed else want_img)
