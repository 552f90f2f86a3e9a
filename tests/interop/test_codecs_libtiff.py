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
