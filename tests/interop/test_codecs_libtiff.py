"""xmfax codecs against libtiff, both ways.

* xmfax code streams wrapped in TIFFs we write ourselves (Compression 2, 3 with
  T4Options 0/1/5, 4; FillOrder 1 and 2) decode pixel-exactly in Pillow (which embeds
  libtiff) and through ``tiffcp -c none`` (libtiff-tools).
* TIFFs written by libtiff (``tiffcp -c g3:1d``, ``g3:2d``, ``g3:1d:fill``, ``g3:2d:fill``,
  ``g4``) decode pixel-exactly in xmfax, and xmfax's encoder produces byte-identical strips
  with the same options (libtiff: EOL before every row, no RTC; K = 2 if YResolution <= 150
  else 4; FILLBITS = EOLs end on byte boundaries; G4 ends with EOFB).
"""
from __future__ import annotations

import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xmfax import codecs

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "codecs"))
import codec_pages as P  # noqa: E402

pytestmark = pytest.mark.interop

TIFFCP = shutil.which("tiffcp")
need_tiffcp = pytest.mark.skipif(TIFFCP is None, reason="tiffcp (libtiff-tools) not installed")

# TIFF 6.0 tag numbers
WIDTH, LENGTH, BPS, COMPRESSION, PHOTOMETRIC, FILLORDER = 256, 257, 258, 259, 262, 266
STRIPOFFSETS, SPP, ROWSPERSTRIP, STRIPBYTECOUNTS = 273, 277, 278, 279
XRES, YRES, T4OPTIONS, T6OPTIONS, RESUNIT = 282, 283, 292, 293, 296


def write_tiff(path: Path, width: int, rows: int, strip: bytes, compression: int, *,
               fill_order: int = 1, t4options: int | None = None, yres: int = 196) -> None:
    """A one-strip bilevel TIFF (little endian), PhotometricInterpretation 0 (1 = black)."""
    entries = [
        (WIDTH, 4, width), (LENGTH, 4, rows), (BPS, 3, 1), (COMPRESSION, 3, compression),
        (PHOTOMETRIC, 3, 0), (FILLORDER, 3, fill_order), (STRIPOFFSETS, 4, None),
        (SPP, 3, 1), (ROWSPERSTRIP, 4, rows), (STRIPBYTECOUNTS, 4, len(strip)),
        (XRES, 5, (204, 1)), (YRES, 5, (yres, 1)), (RESUNIT, 3, 2),
    ]
    if t4options is not None:
        entries.append((T4OPTIONS, 4, t4options))
    if compression == 4:
        entries.append((T6OPTIONS, 4, 0))
    entries.sort()
    ifd_offset = 8
    ifd_size = 2 + 12 * len(entries) + 4
    extra_at = ifd_offset + ifd_size
    extra = b""
    strip_at = extra_at + 16            # two RATIONALs
    body = struct.pack("<H", len(entries))
    for tag, typ, value in entries:
        if typ == 5:
            body += struct.pack("<HHII", tag, typ, 1, extra_at + len(extra))
            extra += struct.pack("<II", *value)
        elif tag == STRIPOFFSETS:
            body += struct.pack("<HHII", tag, typ, 1, strip_at)
        elif typ == 3:
            body += struct.pack("<HHIHH", tag, typ, 1, value, 0)
        else:
            body += struct.pack("<HHII", tag, typ, 1, value)
    body += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", ifd_offset) + body + extra + strip)


def read_with_pillow(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        im.load()
        return ~np.asarray(im.convert("1"), dtype=bool)


def strip_of(path: Path) -> tuple[bytes, dict]:
    """The concatenated strip bytes of a TIFF and its tags (read with Pillow's tag access)."""
    from PIL import Image
    with Image.open(path) as im:
        tags = dict(im.tag_v2)
    raw = path.read_bytes()
    strips = b"".join(raw[o:o + c] for o, c in zip(tags[STRIPOFFSETS], tags[STRIPBYTECOUNTS]))
    return strips, tags


# (name, xmfax encode options, TIFF compression, T4Options)
WRAPS = [
    ("g3-1d", "mh", dict(rtc=False), 3, 0),
    ("g3-1d-rtc", "mh", dict(rtc=True), 3, 0),
    ("g3-2d-k4", "mr", dict(k=4, rtc=False), 3, 1),
    ("g3-2d-k2-fill", "mr", dict(k=2, rtc=False, byte_align=True), 3, 5),
    ("g3-1d-fill", "mh", dict(rtc=False, byte_align=True), 3, 4),
    ("rle", "mh", dict(eol=False, byte_align=True, rtc=False), 2, None),
    ("g4", "mmr", dict(), 4, None),
]


def _pages():
    return {
        "itu1": lambda: P.itu_page(1),
        "dense": lambda: P.dense_text(200, 1728),
        "dither": lambda: P.dithered_photo(60, 1728),
        "edges2047": lambda: P.edges(30, 2047),
        "w13": lambda: P.odd_width_pages()["w13"],
    }


@pytest.mark.parametrize("fill_order", [1, 2])
@pytest.mark.parametrize("name,codec,opts,compression,t4", WRAPS, ids=[w[0] for w in WRAPS])
@pytest.mark.parametrize("page", ["itu1", "dither", "edges2047", "w13"])
def test_xmfax_streams_decode_in_libtiff(tmp_path, page, name, codec, opts, compression, t4,
                                         fill_order):
    img = _pages()[page]()
    data = codecs.encode(img, codec, bit_order="lsb" if fill_order == 2 else "msb", **opts)
    tif = tmp_path / "x.tif"
    write_tiff(tif, img.shape[1], img.shape[0], data, compression, fill_order=fill_order,
               t4options=t4)
    assert np.array_equal(read_with_pillow(tif), img)
    if TIFFCP is None:
        pytest.skip("tiffcp (libtiff-tools) not installed; Pillow part passed")
    out = tmp_path / "plain.tif"
    subprocess.run([TIFFCP, "-c", "none", str(tif), str(out)], check=True, capture_output=True)
    assert np.array_equal(read_with_pillow(out), img)


LIBTIFF_MODES = [  # tiffcp -c option, codec, decode options, encode options for identical bytes
    ("g3:1d", "mh", dict(), dict(rtc=False)),
    ("g3:2d", "mr", dict(), dict(rtc=False)),           # K from YResolution
    ("g3:1d:fill", "mh", dict(byte_align=True), dict(rtc=False, byte_align=True)),
    ("g3:2d:fill", "mr", dict(byte_align=True), dict(rtc=False, byte_align=True)),
    ("g4", "mmr", dict(), dict()),
]


@need_tiffcp
@pytest.mark.parametrize("yres", [98, 196])
@pytest.mark.parametrize("mode,codec,dopts,eopts", LIBTIFF_MODES, ids=[m[0] for m in LIBTIFF_MODES])
@pytest.mark.parametrize("page", ["itu1", "dense", "edges2047", "w13"])
def test_libtiff_streams_decode_in_xmfax_and_match_bytes(tmp_path, page, mode, codec, dopts,
                                                         eopts, yres):
    img = _pages()[page]()
    src = tmp_path / "src.tif"
    write_tiff(src, img.shape[1], img.shape[0], np.packbits(img, axis=1).tobytes(), 1, yres=yres)
    out = tmp_path / "out.tif"
    subprocess.run([TIFFCP, "-c", mode, "-r", str(img.shape[0]), str(src), str(out)],
                   check=True, capture_output=True)
    strip, tags = strip_of(out)
    assert tags.get(FILLORDER, 1) == 1 and tags.get(PHOTOMETRIC) == 0
    result = codecs.decode(strip, img.shape[1], codec, **dopts)
    assert result.bad_rows == 0 and result.garbled_fill_rows == 0 and result.rows == img.shape[0]
    assert np.array_equal(result.image, img)
    assert result.end == ("eofb" if codec == "mmr" else "data")
    k = 2 if yres <= 150 else 4                           # libtiff's choice of K
    assert codecs.encode(img, codec, k=k, **eopts) == strip


@need_tiffcp
def test_libtiff_rle_compression2_decodes(tmp_path):
    img = P.dense_text(100, 1728)
    src = tmp_path / "src.tif"
    write_tiff(src, 1728, 100, np.packbits(img, axis=1).tobytes(), 1)
    out = tmp_path / "rle.tif"
    # tiffcp has no "-c rle"; Pillow writes Compression=2 through libtiff
    from PIL import Image
    Image.fromarray(~img).save(out, compression="tiff_ccitt")
    strip, tags = strip_of(out)
    assert tags[COMPRESSION] == 2
    photometric_black_is_zero = tags.get(PHOTOMETRIC) == 1
    expect = ~img if photometric_black_is_zero else img
    result = codecs.decode(strip, 1728, "mh", eol=False, byte_align=True)
    assert result.rows == 100 and np.array_equal(result.image, expect)
    assert codecs.encode(expect, "mh", eol=False, byte_align=True, rtc=False) == strip


# --- odd but legal mode sequences: libtiff itself (ctypes) as the oracle -------------------
# Encoders emit one coding per image; real files also hold sequences no encoder of ours
# makes (rows starting with H(0,0), zero-length runs mid-row, passes to the right edge).
# tests/codecs/mode_sequences.py writes any sequence and models what it means; libtiff,
# the model and both xmfax backends must agree on every pixel of every row.

import ctypes  # noqa: E402
import ctypes.util  # noqa: E402
import tempfile  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import mode_sequences as M  # noqa: E402


def _load_libtiff():
    for name in ("libtiff.so.6", ctypes.util.find_library("tiff")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        lib.TIFFOpen.restype = ctypes.c_void_p
        lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.TIFFReadEncodedStrip.restype = ctypes.c_ssize_t
        lib.TIFFReadEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p,
                                             ctypes.c_ssize_t]
        lib.TIFFClose.argtypes = [ctypes.c_void_p]
        lib.TIFFSetErrorHandler.restype = ctypes.c_void_p
        lib.TIFFSetErrorHandler.argtypes = [ctypes.c_void_p]
        lib.TIFFSetWarningHandler.restype = ctypes.c_void_p
        lib.TIFFSetWarningHandler.argtypes = [ctypes.c_void_p]
        return lib
    return None


LIBTIFF = _load_libtiff()
need_libtiff = pytest.mark.skipif(LIBTIFF is None, reason="libtiff (libtiff.so.6) not installed")
_MESSAGES: list[str] = []
# void handler(const char *module, const char *fmt, va_list ap): the format is enough to
# know that libtiff complained (the va_list cannot be formatted from Python)
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_void_p)(
    lambda module, fmt, ap: _MESSAGES.append(fmt.decode("ascii", "replace")))


def libtiff_decode(data: bytes, width: int, rows: int, codec: str) -> tuple[np.ndarray, list[str]]:
    """Decode one strip with libtiff's own TIFFReadEncodedStrip: (image, libtiff's errors
    and warnings). MR is Compression 3 with T4Options 1 (2-D), MMR Compression 4."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "modes.tif"
        if codec == "mmr":
            write_tiff(path, width, rows, data, 4)
        else:
            write_tiff(path, width, rows, data, 3, t4options=1)
        _MESSAGES.clear()
        old_error = LIBTIFF.TIFFSetErrorHandler(ctypes.cast(_HANDLER, ctypes.c_void_p))
        old_warning = LIBTIFF.TIFFSetWarningHandler(ctypes.cast(_HANDLER, ctypes.c_void_p))
        try:
            tif = LIBTIFF.TIFFOpen(str(path).encode(), b"r")
            assert tif, f"libtiff cannot open the TIFF: {_MESSAGES}"
            stride = (width + 7) // 8
            buf = ctypes.create_string_buffer(stride * rows)
            got = LIBTIFF.TIFFReadEncodedStrip(tif, 0, buf, stride * rows)
            LIBTIFF.TIFFClose(tif)
        finally:
            LIBTIFF.TIFFSetErrorHandler(old_error)
            LIBTIFF.TIFFSetWarningHandler(old_warning)
        messages = list(_MESSAGES)
        if got < 0:
            messages.append("TIFFReadEncodedStrip failed")
    packed = np.frombuffer(buf.raw, dtype=np.uint8).reshape(rows, stride)
    return np.unpackbits(packed, axis=1)[:, :width].astype(bool), messages


def _rows_text(image: np.ndarray, n: int) -> str:
    return "".join(".#"[int(x)] for x in image[n])


def check_against_libtiff(data: bytes, model: np.ndarray, codec: str, coded: list[str] | None,
                          end: str) -> None:
    """libtiff == the model, and each xmfax backend == the model, row by row."""
    rows, width = model.shape
    image, messages = libtiff_decode(data, width, rows, codec)
    assert messages == [], f"libtiff complained: {messages}"
    decoded = [(impl, codecs.decode(data, width, codec, impl=impl))
               for impl in codecs.available_backends()]
    for name, got in [("libtiff", image)] + decoded:
        if name != "libtiff":
            result, got = got, got.image
            assert (result.rows, result.bad_rows, result.end, result.first_bad_row) == \
                (rows, 0, end, None), f"{name}: {result.error}"
        bad = [n for n in range(rows) if not np.array_equal(got[n], model[n])]
        assert not bad, (f"{name} differs from the model first at row {bad[0]} "
                         f"(modes {coded[bad[0]] if coded else '?'}):\n"
                         f"  got   {_rows_text(got, bad[0])}\n  model {_rows_text(model, bad[0])}")


H00, P_, V0 = ("H", 0, 0), ("P",), ("V", 0)
EXPLICIT = {  # name: (width, rows of ops); mode_sequences finishes each row at the width
    "h00-row-start-then-pass": (40, [[H00, ("H", 10, 5)], [P_, V0, V0], [H00, P_, ("V", 1)],
                                     [P_, P_, ("V", -1)], [H00, H00], [P_, P_, V0]]),
    "h00-every-row": (40, [[H00, ("H", 3, 4), V0]] * 5),
    "h00-mid-row": (40, [[("H", 4, 4), H00, ("H", 3, 3)], [V0, V0, P_, V0], [V0, H00, V0, V0]]),
    "h-x0-and-0x-mid-row": (40, [[("H", 4, 0), ("H", 4, 3), ("H", 0, 6)], [V0, P_, V0, V0, V0],
                                 [("V", 1), ("V", -1), P_, P_]]),
    "zero-runs-then-passes": (32, [[("H", 5, 0), ("H", 0, 5)], [P_, ("V", 1)], [P_, P_, V0],
                                   [("H", 5, 0), ("H", 0, 5), ("H", 3, 4)], [P_, P_, ("V", 1)]]),
    "vertical-a1-equals-a0": (32, [[("H", 4, 2), ("H", 6, 3)], [V0, ("V", -2), V0, V0, V0]]),
    "pass-to-right-edge": (32, [[("H", 4, 28)], [P_], [("H", 31, 1)], [P_], [P_, P_]]),
    "vertical-at-edges": (32, [[("H", 0, 3), ("H", 26, 3)], [("V", -3), ("V", 3), ("V", 3)],
                               [V0, ("V", 1), ("V", -3), ("V", 3)], [("V", 2), ("V", 2)]]),
    "makeup-codes": (3000, [[("H", 0, 2600), ("H", 64, 0), ("H", 1728, 0)],
                            [P_, ("H", 2560, 63), V0], [H00, ("H", 2624, 64)], [P_, P_, P_]]),
    "one-pixel-wide": (1, [[H00], [P_], [("H", 0, 1)], [V0], [P_], [("V", 1)]]),
}


@need_libtiff
@pytest.mark.parametrize("codec", ["mr", "mmr"])
@pytest.mark.parametrize("name", sorted(EXPLICIT))
def test_mode_sequences_decode_as_libtiff(name, codec):
    width, rows = EXPLICIT[name]
    if codec == "mr":                 # and a 1-D row in the middle, zero runs in it
        rows = rows[:2] + [[("1D", [0, 3, 0, 0, 2])]] + rows[2:]
    data, model, coded = M.write(rows, width, codec)
    check_against_libtiff(data, model, codec, coded, "eofb" if codec == "mmr" else "data")


RUNS = st.one_of(st.just(0), st.integers(0, 9), st.integers(0, 300),
                 st.sampled_from([63, 64, 65, 127, 128, 1727, 1728, 2560, 2623, 2624, 2625]))
OP = st.one_of(st.just(("P",)), st.tuples(st.just("H"), RUNS, RUNS),
               st.tuples(st.just("V"), st.integers(-3, 3)),
               st.just(H00))
ROW = st.lists(OP, max_size=14)
ROW_1D = st.tuples(st.just("1D"), st.lists(RUNS, max_size=12)).map(lambda op: [op])


@need_libtiff
@settings(max_examples=150, deadline=None)
@given(codec=st.sampled_from(["mr", "mmr"]), width=st.sampled_from([1, 7, 32, 97, 300, 1728, 2700]),
       rows=st.data())
def test_generated_mode_sequences_decode_as_libtiff(codec, width, rows):
    row = st.one_of(ROW, ROW_1D) if codec == "mr" else ROW
    ops = rows.draw(st.lists(row, min_size=1, max_size=10), label="rows")
    data, model, coded = M.write(ops, width, codec)
    check_against_libtiff(data, model, codec, coded, "eofb" if codec == "mmr" else "data")


@need_libtiff
@pytest.mark.parametrize("codec", ["mr", "mmr"])
@pytest.mark.parametrize("start", ["every-other-row", "every-row", "one-row-in-3-twice"])
def test_pages_with_h00_row_starts_decode_whole(codec, start):
    """The real-world case: rows beginning with H(0,0); the row after one begins with a
    pass over its two zero-length runs. Before the fix xmfax decoded 13 of these 180
    rows (MMR: end="error"; MR: 171 bad rows) while libtiff decoded them all."""
    img = np.vstack([P.dense_text(150, 1728, seed=5), P.edges(30, 1728)])
    starts = {"every-other-row": lambda n: [H00] * (n % 2 == 0),
              "every-row": lambda n: [H00],
              "one-row-in-3-twice": lambda n: [H00, H00] * (n % 3 == 0)}
    data = M.code_image(img, codec, start=starts[start])
    check_against_libtiff(data, img, codec, None, "eofb" if codec == "mmr" else "data")
