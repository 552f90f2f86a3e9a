"""TIFF reading: a bounds-checked IFD parser, and fax/bilevel strips decoded by xmfax.

Classic TIFF (TIFF 6.0) in either byte order. Bilevel images coded CCITT RLE
(Compression=2), T.4 (3) or T.6 (4), or stored uncompressed (1), are decoded here,
with FillOrder, Photometric, T4Options/T6Options and Orientation honoured, so a fax
page passes through losslessly. Everything else (LZW, JPEG, tiles, grey, colour,
BigTIFF) is left to Pillow by the loader (``decode_ifd`` returns None for it).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

from ..errors import CodecError, DocumentError
from .limits import Limits

# TIFF 6.0 field types: type -> (struct code, size)
_TYPES = {1: ("B", 1), 2: ("s", 1), 3: ("H", 2), 4: ("I", 4), 5: ("II", 8), 6: ("b", 1),
          7: ("B", 1), 8: ("h", 2), 9: ("i", 4), 10: ("ii", 8), 11: ("f", 4), 12: ("d", 8),
          13: ("I", 4)}

# tag numbers (TIFF 6.0 §8; RFC 2306 for the fax tags)
NEW_SUBFILE_TYPE, IMAGE_WIDTH, IMAGE_LENGTH, BITS_PER_SAMPLE, COMPRESSION = 254, 256, 257, 258, 259
PHOTOMETRIC, FILL_ORDER, DOCUMENT_NAME, IMAGE_DESCRIPTION, MAKE, MODEL = 262, 266, 269, 270, 271, 272
STRIP_OFFSETS, ORIENTATION, SAMPLES_PER_PIXEL, ROWS_PER_STRIP, STRIP_BYTE_COUNTS = 273, 274, 277, 278, 279
X_RESOLUTION, Y_RESOLUTION, PLANAR_CONFIGURATION, PAGE_NAME = 282, 283, 284, 285
T4_OPTIONS, T6_OPTIONS, RESOLUTION_UNIT, PAGE_NUMBER = 292, 293, 296, 297
SOFTWARE, DATE_TIME, TILE_WIDTH, TILE_OFFSETS = 305, 306, 322, 324
BAD_FAX_LINES, CLEAN_FAX_DATA, CONSECUTIVE_BAD_FAX_LINES = 326, 327, 328

COMPRESSION_NAMES = {1: "none", 2: "ccitt-rle", 3: "g3", 4: "g4", 5: "lzw", 6: "ojpeg", 7: "jpeg",
                     8: "deflate", 32773: "packbits", 32946: "deflate", 34712: "jpeg2000",
                     50000: "zstd", 50001: "webp"}
FILL_ORDER_NAMES = {1: "msb2lsb", 2: "lsb2msb"}
_T4_2D, _T4_UNCOMPRESSED, _T4_FILLBITS = 1, 2, 4       # T4Options bits (TIFF 6.0 §11)
_T6_UNCOMPRESSED = 2


@dataclass
class IFD:
    """One TIFF image file directory: ``tags`` maps tag -> tuple of values (str for ASCII)."""

    offset: int
    tags: dict[int, tuple | str] = field(default_factory=dict)

    def get(self, tag: int, default=None):
        v = self.tags.get(tag)
        if v is None or isinstance(v, str):
            return default if v is None else v
        return v[0] if len(v) else default

    def values(self, tag: int) -> tuple:
        v = self.tags.get(tag, ())
        return () if isinstance(v, str) else v

    @property
    def width(self) -> int:
        return int(self.get(IMAGE_WIDTH, 0))

    @property
    def length(self) -> int:
        return int(self.get(IMAGE_LENGTH, 0))

    def dpi(self) -> tuple[float, float] | None:
        """(x, y) in dots per inch, or None when the file gives no (usable) resolution."""
        x, y = self.get(X_RESOLUTION), self.get(Y_RESOLUTION)
        unit = self.get(RESOLUTION_UNIT, 2)
        if not x or not y or x <= 0 or y <= 0 or unit == 1:
            return None
        f = 2.54 if unit == 3 else 1.0
        return float(x) * f, float(y) * f


def is_tiff(data: bytes) -> bool:
    return data[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def parse_tiff(data: bytes, source: str | None = None, limits: Limits = Limits()) -> list[IFD]:
    """Every IFD of a classic TIFF, bounds-checked; DocumentError for a broken file.

    BigTIFF raises DocumentError with reason "BigTIFF" (the loader hands it to Pillow).
    """
    if len(data) < 8 or not is_tiff(data):
        raise DocumentError("not a TIFF file", source=source)
    if data[2:4] in (b"+\0", b"\0+"):
        raise DocumentError("BigTIFF", source=source)
    bo = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack_from(bo + "I", data, 4)
    ifds: list[IFD] = []
    seen: set[int] = set()
    while offset:
        if offset in seen:
            break                                   # a loop in the IFD chain: stop, keep what we have
        if offset + 2 > len(data):
            if ifds:
                break                               # a dangling next pointer after good pages
            raise DocumentError(f"IFD offset {offset} is past the end of the file ({len(data)} bytes)",
                                source=source)
        if len(ifds) >= limits.max_ifds:
            raise DocumentError(f"more than {limits.max_ifds} TIFF directories", source=source)
        seen.add(offset)
        (n,) = struct.unpack_from(bo + "H", data, offset)
        end = offset + 2 + 12 * n
        if end + 4 > len(data):
            if ifds:
                break
            raise DocumentError(f"TIFF directory at {offset} is truncated", source=source)
        ifd = IFD(offset)
        for i in range(n):
            tag, typ, count, raw = struct.unpack_from(bo + "HHI4s", data, offset + 2 + 12 * i)
            if typ not in _TYPES or count == 0:
                continue
            code, size = _TYPES[typ]
            nbytes = size * count
            if nbytes > 64 * 1024 * 1024:
                continue                            # absurd: ignore the tag
            if nbytes <= 4:
                buf = raw[:nbytes]
            else:
                (voff,) = struct.unpack(bo + "I", raw)
                if voff + nbytes > len(data):
                    continue                        # value outside the file: treat as absent
                buf = data[voff:voff + nbytes]
            if typ == 2:
                ifd.tags[tag] = buf.split(b"\0", 1)[0].decode("latin-1")
            elif typ in (5, 10):
                pairs = struct.unpack(bo + code[0] * (2 * count), buf)
                ifd.tags[tag] = tuple(a / b if b else 0.0 for a, b in zip(pairs[::2], pairs[1::2]))
            else:
                ifd.tags[tag] = struct.unpack(bo + code * count, buf)
        ifds.append(ifd)
        (offset,) = struct.unpack_from(bo + "I", data, end)
    if not ifds:
        raise DocumentError("TIFF has no images", source=source)
    return ifds


def _orient(image: np.ndarray, orientation: int) -> np.ndarray:
    """Apply TIFF Orientation (TIFF 6.0 §8, tag 274) so row 0 is the visual top."""
    if orientation == 2:
        return image[:, ::-1]
    if orientation == 3:
        return image[::-1, ::-1]
    if orientation == 4:
        return image[::-1]
    if orientation == 5:
        return image.T
    if orientation == 6:
        return np.rot90(image, -1)
    if orientation == 7:
        return np.rot90(image, 2).T
    if orientation == 8:
        return np.rot90(image, 1)
    return image


@dataclass
class DecodedImage:
    """A bilevel TIFF image decoded by xmfax: True = black, already oriented."""

    image: np.ndarray
    compression: int
    fill_order: int
    bad_rows: int = 0
    note: str | None = None


def _strips(data: bytes, ifd: IFD, source: str | None) -> list[bytes]:
    offsets, counts = ifd.values(STRIP_OFFSETS), ifd.values(STRIP_BYTE_COUNTS)
    if not offsets:
        raise DocumentError("TIFF image has no strips", source=source)
    if len(counts) != len(offsets):
        if len(offsets) == 1 and not counts:
            counts = (len(data) - offsets[0],)      # INTEROP: old writers omit StripByteCounts
        else:
            raise DocumentError("TIFF StripOffsets and StripByteCounts disagree", source=source)
    out = []
    for off, cnt in zip(offsets, counts):
        if off >= len(data):
            raise DocumentError(f"TIFF strip at {off} is past the end of the file", source=source)
        out.append(data[off:off + cnt])             # a truncated strip decodes as far as it goes
    return out


def decode_ifd(data: bytes, ifd: IFD, source: str | None, limits: Limits) -> DecodedImage | None:
    """Decode a bilevel strip image with xmfax's codecs; None if Pillow should do it."""
    compression = int(ifd.get(COMPRESSION, 1))
    if compression not in (1, 2, 3, 4):
        return None
    if int(ifd.get(BITS_PER_SAMPLE, 1)) != 1 or int(ifd.get(SAMPLES_PER_PIXEL, 1)) != 1:
        return None
    if TILE_OFFSETS in ifd.tags or TILE_WIDTH in ifd.tags:
        return None
    t4 = int(ifd.get(T4_OPTIONS, 0))
    if compression == 3 and t4 & _T4_UNCOMPRESSED or compression == 4 and int(ifd.get(T6_OPTIONS, 0)) & _T6_UNCOMPRESSED:
        return None
    width, length = ifd.width, ifd.length
    if width <= 0 or length <= 0:
        raise DocumentError(f"TIFF image has an empty size {width}x{length}", source=source)
    limits.check_source_size(width, length, source)
    limits.check_rows(length, source)
    fill_order = int(ifd.get(FILL_ORDER, 1))
    bit_order = "lsb" if fill_order == 2 else "msb"
    rps = int(ifd.get(ROWS_PER_STRIP, length) or length)
    rps = min(max(rps, 1), length)
    strips = _strips(data, ifd, source)

    image = np.zeros((length, width), dtype=bool)
    row = 0
    bad = 0
    note = None
    if compression == 1:
        stride = (width + 7) // 8
        raw = b"".join(strips)
        have = min(length, len(raw) // stride)
        if have < length:
            note = f"uncompressed data ends after {have} of {length} rows"
        buf = np.frombuffer(raw[: have * stride], dtype=np.uint8).reshape(have, stride)
        image[:have] = np.unpackbits(buf, axis=1, bitorder="little" if fill_order == 2 else "big")[:, :width] != 0
        row = have
    else:
        from .. import codecs  # the codecs import late: loading non-fax files does not need them

        codec = {2: "mh", 3: "mr" if t4 & _T4_2D else "mh", 4: "mmr"}[compression]
        eol = False if compression == 2 else None
        for strip in strips:
            if row >= length:
                break
            want = min(rps, length - row)
            try:
                res = codecs.decode(strip, width=width, codec=codec, eol=eol,
                                    byte_align=compression == 2, bit_order=bit_order,
                                    max_rows=want)
            except CodecError as exc:
                raise DocumentError(f"cannot decode {codec.upper()} strip: {exc}", source=source) from exc
            got = np.asarray(res.image, dtype=bool)[:want]
            image[row:row + got.shape[0]] = got
            bad += int(getattr(res, "bad_rows", 0) or 0) + (want - got.shape[0])
            if got.shape[0] < want and note is None:
                note = f"strip ended after {got.shape[0]} of {want} rows ({getattr(res, 'end', None)})"
            row += want
    if int(ifd.get(PHOTOMETRIC, 0)) == 1:          # BlackIsZero: a 1 bit is white
        image = ~image
    image = np.ascontiguousarray(_orient(image, int(ifd.get(ORIENTATION, 1))))
    return DecodedImage(image, compression, fill_order, bad, note)
