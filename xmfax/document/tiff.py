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


# TIFF 6.0 §2 field types: type -> (name, numpy dtype (little endian), size)
_INT_TYPES = {1: ("BYTE", "u1", 1), 3: ("SHORT", "u2", 2), 4: ("LONG", "u4", 4), 6: ("SBYTE", "i1", 1),
              8: ("SSHORT", "i2", 2), 9: ("SLONG", "i4", 4), 13: ("IFD", "u4", 4)}
_REAL_TYPES = {5: ("RATIONAL", "u4", 8), 10: ("SRATIONAL", "i4", 8), 11: ("FLOAT", "f4", 4), 12: ("DOUBLE", "f8", 8)}
_OTHER_TYPES = {2: ("ASCII", "u1", 1), 7: ("UNDEFINED", "u1", 1)}
_TYPES = {**_INT_TYPES, **_REAL_TYPES, **_OTHER_TYPES}
MAX_TAG_VALUES = 1_000_000      # values of one tag (a 20,000-row page has at most 20,000 strips)

TAG_NAMES = {NEW_SUBFILE_TYPE: "NewSubfileType", IMAGE_WIDTH: "ImageWidth", IMAGE_LENGTH: "ImageLength",
             BITS_PER_SAMPLE: "BitsPerSample", COMPRESSION: "Compression", PHOTOMETRIC: "Photometric",
             FILL_ORDER: "FillOrder", STRIP_OFFSETS: "StripOffsets", ORIENTATION: "Orientation",
             SAMPLES_PER_PIXEL: "SamplesPerPixel", ROWS_PER_STRIP: "RowsPerStrip",
             STRIP_BYTE_COUNTS: "StripByteCounts", X_RESOLUTION: "XResolution", Y_RESOLUTION: "YResolution",
             RESOLUTION_UNIT: "ResolutionUnit", T4_OPTIONS: "T4Options", T6_OPTIONS: "T6Options",
             PAGE_NUMBER: "PageNumber", SOFTWARE: "Software", DATE_TIME: "DateTime",
             BAD_FAX_LINES: "BadFaxLines", CLEAN_FAX_DATA: "CleanFaxData",
             CONSECUTIVE_BAD_FAX_LINES: "ConsecutiveBadFaxLines", TILE_WIDTH: "TileWidth",
             TILE_OFFSETS: "TileOffsets", IMAGE_DESCRIPTION: "ImageDescription"}


@dataclass(frozen=True, slots=True)
class Entry:
    """One IFD entry as stored: its type, count and raw value bytes (parsed only when read)."""

    typ: int
    count: int
    raw: bytes | memoryview
    byte_order: str


@dataclass
class IFD:
    """One TIFF image file directory.

    Every tag value is read through :meth:`read`, the one typed accessor: it checks the
    stored TIFF type against what the caller needs and raises DocumentError naming the
    tag, its type and the file (an ASCII NewSubfileType, a RATIONAL StripByteCounts,
    a NaN resolution). ``int``/``ints``/``number``/``text`` are its shorthands.
    """

    offset: int
    entries: dict[int, Entry] = field(default_factory=dict)
    source: str | None = None

    def __contains__(self, tag: int) -> bool:
        return tag in self.entries

    def _fail(self, tag: int, entry: Entry, what: str) -> DocumentError:
        name = TAG_NAMES.get(tag, f"tag {tag}")
        return DocumentError(f"TIFF {name} ({tag}) is {_TYPES[entry.typ][0]}: {what}", source=self.source)

    def read(self, tag: int, kind: type = int, *, many: bool = False, default=None):
        """The value(s) of ``tag`` as ``kind`` (int, float or str); ``default`` when absent.

        int: BYTE/SHORT/LONG/SBYTE/SSHORT/SLONG/IFD only, never negative. float: any
        numeric type (RATIONAL with a zero denominator reads 0.0, as writers mean
        "unknown"), finite only. str: ASCII only. ``many``: a tuple of every value,
        else the first one.
        """
        entry = self.entries.get(tag)
        if entry is None:
            return default
        typ = entry.typ
        if kind is str:
            if typ != 2:
                raise self._fail(tag, entry, "text expected")
            return bytes(entry.raw).split(b"\0", 1)[0].decode("latin-1")
        if typ in _OTHER_TYPES:
            raise self._fail(tag, entry, "a number expected")
        if kind is int and typ not in _INT_TYPES:
            raise self._fail(tag, entry, "an integer expected")
        name, code, size = _TYPES[typ]
        dtype = np.dtype(code).newbyteorder(entry.byte_order)
        arr = np.frombuffer(entry.raw, dtype=dtype, count=entry.count * (2 if typ in (5, 10) else 1))
        if typ in (5, 10):
            num, den = arr[0::2].astype(np.float64), arr[1::2].astype(np.float64)
            with np.errstate(divide="ignore", invalid="ignore"):
                arr = np.where(den != 0, num / np.where(den != 0, den, 1), 0.0)
        if kind is int:
            arr = arr.astype(np.int64)
            if (arr < 0).any():
                raise self._fail(tag, entry, "a negative value")
            return tuple(arr.tolist()) if many else int(arr[0])
        if kind is not float:
            raise TypeError(f"kind is int, float or str, not {kind!r}")
        arr = arr.astype(np.float64)
        if not np.isfinite(arr).all():
            raise self._fail(tag, entry, "not a finite number (NaN or infinity)")
        return tuple(arr.tolist()) if many else float(arr[0])

    def int(self, tag: int, default: int | None = None) -> int | None:
        return self.read(tag, int, default=default)

    def ints(self, tag: int) -> tuple[int, ...]:
        return self.read(tag, int, many=True, default=())

    def number(self, tag: int, default: float | None = None) -> float | None:
        return self.read(tag, float, default=default)

    def text(self, tag: int) -> str | None:
        return self.read(tag, str)

    # convenient untyped views (tests, info): still through read()
    def get(self, tag: int, default=None):
        entry = self.entries.get(tag)
        if entry is None:
            return default
        if entry.typ in _OTHER_TYPES:
            return self.read(tag, str) if entry.typ == 2 else default
        return self.read(tag, int if entry.typ in _INT_TYPES else float)

    def values(self, tag: int) -> tuple:
        entry = self.entries.get(tag)
        if entry is None or entry.typ in _OTHER_TYPES:
            return ()
        return self.read(tag, int if entry.typ in _INT_TYPES else float, many=True)

    @property
    def tags(self) -> dict[int, tuple | str]:
        return {t: (self.read(t, str) if e.typ == 2 else self.values(t)) for t, e in self.entries.items()}

    @property
    def width(self) -> int:
        return self.int(IMAGE_WIDTH, 0)

    @property
    def length(self) -> int:
        return self.int(IMAGE_LENGTH, 0)

    def dpi(self) -> tuple[float, float] | None:
        """(x, y) in dots per inch, or None when the file gives no (usable) resolution."""
        x, y = self.number(X_RESOLUTION), self.number(Y_RESOLUTION)
        unit = self.int(RESOLUTION_UNIT, 2)
        if not x or not y or x <= 0 or y <= 0 or unit == 1:
            return None
        f = 2.54 if unit == 3 else 1.0
        return x * f, y * f


def is_tiff(data: bytes) -> bool:
    return bytes(data[:4]) in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


def parse_tiff(data: bytes, source: str | None = None, limits: Limits = Limits()) -> list[IFD]:
    """Every IFD of a classic TIFF, bounds-checked; DocumentError for a broken file.

    Values are kept as raw bytes (views of ``data``) and parsed when read, so a
    directory of huge tag arrays costs nothing until a tag is used.
    BigTIFF raises DocumentError with reason "BigTIFF" (the loader hands it to Pillow).
    """
    if len(data) < 8 or not is_tiff(data):
        raise DocumentError("not a TIFF file", source=source)
    if data[2:4] in (b"+\0", b"\0+"):
        raise DocumentError("BigTIFF", source=source)
    bo = "<" if data[:2] == b"II" else ">"
    view = memoryview(data)
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
        ifd = IFD(offset, source=source)
        for i in range(n):
            at = offset + 2 + 12 * i
            tag, typ, count = struct.unpack_from(bo + "HHI", data, at)
            if typ not in _TYPES or count == 0 or count > MAX_TAG_VALUES:
                continue                            # unknown type or absurd count: ignore the tag
            nbytes = _TYPES[typ][2] * count
            if nbytes <= 4:
                raw = view[at + 8:at + 8 + nbytes]
            else:
                (voff,) = struct.unpack_from(bo + "I", data, at + 8)
                if voff + nbytes > len(data):
                    continue                        # value outside the file: treat as absent
                raw = view[voff:voff + nbytes]
            ifd.entries[tag] = Entry(typ, count, raw, bo)
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
    """A bilevel TIFF image decoded by xmfax: True = black, already oriented.

    ``damaged``: half-open row ranges (after orientation) that did not decode whole
    (bad rows replaced by the row above, rows after a code error or past the end of
    the data, left white); empty for a clean page. ``bad_rows`` counts those rows.
    """

    image: np.ndarray
    compression: int
    fill_order: int
    bad_rows: int = 0
    note: str | None = None
    damaged: list[tuple[int, int]] = field(default_factory=list)


def _strips(data: bytes, ifd: IFD, source: str | None) -> list[tuple[memoryview, str | None]]:
    """Each strip as (a view of ``data``: no copy, what is wrong with it or None).

    A table whose byte counts add up to more than the file is refused outright (strips
    that all cover the whole file, a memory and time bomb); a strip that starts or runs
    past the end of the file is returned cut short, with the problem, for the caller to judge.
    """
    offsets, counts = ifd.ints(STRIP_OFFSETS), ifd.ints(STRIP_BYTE_COUNTS)
    if not offsets:
        raise DocumentError("TIFF image has no strips", source=source)
    if len(counts) != len(offsets):
        if len(offsets) == 1 and not counts:
            counts = (max(0, len(data) - offsets[0]),)      # INTEROP: old writers omit StripByteCounts
        else:
            raise DocumentError("TIFF StripOffsets and StripByteCounts disagree", source=source)
    view = memoryview(data)
    out = []
    inside = 0                                          # bytes of the file the strips cover
    for n, (off, cnt) in enumerate(zip(offsets, counts)):
        problem = None
        if off >= len(data):
            problem = f"strip {n + 1} at offset {off} is past the end of the file ({len(data)} bytes)"
        elif off + cnt > len(data):
            problem = f"strip {n + 1} runs {off + cnt - len(data)} bytes past the end of the file"
        piece = view[off:off + cnt]
        inside += len(piece)
        if inside > len(data):
            raise DocumentError(f"TIFF strips overlap: {len(offsets)} strips cover more than the whole file "
                                f"({len(data)} bytes)", source=source)
        out.append((piece, problem))
    return out


_LOCATE_STEP = 8          # bytes fed at a time while locating damage: a range spans a row or few more


def _locate_damage(strip, want: int, options: dict, first_only: bool) -> list[tuple[int, int]]:
    """Row ranges (within the strip) where a fax code stream went wrong.

    The whole-strip decode only counts bad rows; here the strip is fed again a few
    bytes at a time, and when the bad-row (or garbled-fill) count rises by k, the range
    is the rows those bytes completed, and at least the k rows from the first of them
    (a bad row may be counted before it is output). Run only on a strip known to be damaged.
    """
    from .. import codecs

    dec = codecs.StreamDecoder(max_rows=want, **options)
    ranges: list[tuple[int, int]] = []
    seen = 0

    def check(before: int) -> bool:
        nonlocal seen
        now = (dec.bad_rows or 0) + (dec.garbled_fill_rows or 0)
        if now != seen:
            lo = min(before, want - 1)
            ranges.append((lo, min(want, max(dec.rows or 0, lo + now - seen))))
            seen = now
            return True
        return False

    for i in range(0, len(strip), _LOCATE_STEP):
        before = dec.rows or 0
        dec.feed(strip[i:i + _LOCATE_STEP])
        if check(before) and first_only:
            return ranges
        if (dec.rows or 0) >= want:
            break
    before = dec.rows or 0
    dec.finish()
    check(before)
    return ranges


def _merge(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(r for r in ranges if r[1] > r[0]):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def _oriented_ranges(ranges: list[tuple[int, int]], orientation: int, length: int, rows_after: int):
    """Damaged row ranges of the stored image as rows of the oriented page."""
    if not ranges or orientation in (1, 2) or orientation not in range(1, 9):
        return ranges
    if orientation in (3, 4):                          # turned upside down
        return _merge([(length - hi, length - lo) for lo, hi in ranges])
    return [(0, rows_after)]                           # a quarter turn: stored rows became columns


class DamagedPageError(DocumentError):
    """A page that cannot be decoded whole: ``page`` (1-based) of the file, ``row`` its first
    damaged row (0-based; the message counts from 1), ``rows`` the page's length."""

    def __init__(self, message: str, *, source: str | None, page: int, row: int, rows: int):
        super().__init__(message, source=source)
        self.page = page
        self.row = row
        self.rows = rows


def decode_ifd(data: bytes, ifd: IFD, source: str | None, limits: Limits, *, tolerant: bool = False,
               budget=None, page: int = 1) -> DecodedImage | None:
    """Decode a bilevel strip image with xmfax's codecs; None if Pillow should do it.

    Strict (the default, for sending): any damage (a bad row, a code error, a strip
    cut short or missing, uncompressed data that ends early) raises :class:`DamagedPageError`
    naming the first damaged row. ``tolerant``: what decodes is kept, the rest is
    white and listed in ``DecodedImage.damaged`` (for received faxes, or on request).
    """
    compression = ifd.int(COMPRESSION, 1)
    if compression not in (1, 2, 3, 4):
        return None
    if ifd.int(BITS_PER_SAMPLE, 1) != 1 or ifd.int(SAMPLES_PER_PIXEL, 1) != 1:
        return None
    if TILE_OFFSETS in ifd or TILE_WIDTH in ifd:
        return None
    t4 = ifd.int(T4_OPTIONS, 0)
    if compression == 3 and t4 & _T4_UNCOMPRESSED or compression == 4 and ifd.int(T6_OPTIONS, 0) & _T6_UNCOMPRESSED:
        return None
    width, length = ifd.width, ifd.length
    if width <= 0 or length <= 0:
        raise DocumentError(f"TIFF image has an empty size {width}x{length}", source=source)
    limits.check_source_size(width, length, source)
    limits.check_rows(length, source)
    fill_order = ifd.int(FILL_ORDER, 1)
    photometric = ifd.int(PHOTOMETRIC, 0)
    orientation = ifd.int(ORIENTATION, 1)
    bit_order = "lsb" if fill_order == 2 else "msb"
    rps = ifd.int(ROWS_PER_STRIP, length) or length
    rps = min(max(rps, 1), length)
    strips = _strips(data, ifd, source)
    if budget is not None:
        budget.check_time(source)

    image = np.zeros((length, width), dtype=bool)
    row = 0
    bad = 0
    damaged: list[tuple[int, int]] = []
    problems: list[str] = []

    def damage(lo: int, hi: int, what: str) -> None:
        nonlocal bad
        if not tolerant:
            raise DamagedPageError(f"page {page}, row {lo + 1} of {length} is damaged ({what}): the page cannot "
                                   "be decoded whole (tolerant=True, or xmfax convert --tolerant, loads what "
                                   "decodes)", source=ifd.source or source, page=page, row=lo, rows=length)
        damaged.append((lo, hi))
        problems.append(what)

    codec = None
    if compression != 1:
        from .. import codecs  # the codecs import late: loading non-fax files does not need them

        codec = {2: "mh", 3: "mr" if t4 & _T4_2D else "mh", 4: "mmr"}[compression]
        options = dict(width=width, codec=codec, eol=False if compression == 2 else None,
                       byte_align=compression == 2, bit_order=bit_order)
    stride = (width + 7) // 8
    for strip, problem in strips:
        if row >= length:
            break
        want = min(rps, length - row)
        if compression == 1:
            have = min(want, len(strip) // stride)
            if have:
                buf = np.frombuffer(strip, dtype=np.uint8, count=have * stride).reshape(have, stride)
                image[row:row + have] = np.unpackbits(buf, axis=1, bitorder="little" if fill_order == 2
                                                      else "big")[:, :width] != 0
            if have < want:
                damage(row + have, row + want, problem or f"uncompressed data ends after {row + have} rows")
            row += want
            continue
        try:
            res = codecs.decode(strip, max_rows=want, **options)
        except CodecError as exc:
            raise DocumentError(f"cannot decode {codec.upper()} strip: {exc}", source=source) from exc
        got = np.asarray(res.image, dtype=bool)[:want]
        image[row:row + got.shape[0]] = got
        faults = int(res.bad_rows or 0) + int(getattr(res, "garbled_fill_rows", 0) or 0)
        if faults:
            first = getattr(res, "first_bad_row", None)
            if not tolerant and first is not None:
                spots = [(first, first + 1)]
            else:
                spots = _locate_damage(strip, want, options, first_only=not tolerant) or [(0, got.shape[0])]
            for lo, hi in spots:
                damage(row + lo, row + hi, f"{codec.upper()} code error{': ' + res.error if res.error else ''}")
            bad += int(res.bad_rows or 0)
        if got.shape[0] < want:
            why = problem or (f"{codec.upper()} code error: {res.error}" if res.error
                              else f"{codec.upper()} data ends after {got.shape[0]} of {want} rows")
            # the row being decoded when the code broke or the data ran out may be wrong too
            first = got.shape[0] - 1 if got.shape[0] and not (res.end in ("rtc", "eofb") and not res.error) \
                else got.shape[0]
            damage(row + first, row + want, why)
        row += want
        if budget is not None:
            budget.check_time(source)
    if row < length:
        damage(row, length, f"the strips hold {row} of {length} rows")
    damaged = _merge(damaged)
    if photometric == 1:                           # BlackIsZero: a 1 bit is white
        image = ~image
    image = np.ascontiguousarray(_orient(image, orientation))
    missing = sum(hi - lo for lo, hi in damaged)
    note = None
    if damaged:
        note = f"{missing} of {length} rows damaged: " + "; ".join(dict.fromkeys(problems))
    return DecodedImage(image, compression, fill_order, max(bad, missing), note,
                        _oriented_ranges(damaged, orientation, length, image.shape[0]))
