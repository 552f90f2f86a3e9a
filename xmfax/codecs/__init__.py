"""T.4 (MH, MR) and T.6 (MMR) fax image codecs.

>>> from xmfax import codecs
>>> data = codecs.encode(image, "mr", k=4)              # numpy bool (rows, width), True = black
>>> result = codecs.decode(data, width=1728, codec="mr")
>>> result.image.shape, result.bad_rows, result.end
((2376, 1728), 0, 'rtc')
>>> packed = codecs.decode(data, width=1728, codec="mr", packed=True).image
>>> packed.shape, packed.dtype                         # 1 bit a pel, MSB first, 1 = black
((2376, 216), dtype('uint8'))
>>> codecs.encode(packed, "mr", k=4, width=1728, packed=True) == data
True

Two backends implement the same contract (docs/codec-backends.md): C (``_c``)
and pure Python (``_ref``). ``XMFAX_IMPL=auto|c|python`` chooses at import;
``codecs.backend`` says which one is in use. Every function also takes
``impl="c"|"python"`` to use one backend explicitly (for differential tests).

This layer normalises images, validates arguments (raising CodecError), detects
whether a stream carries EOLs, and builds the whole-page functions on the
streaming classes. See docs/codecs.md for the user guide.
"""
from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterable

import numpy as np

from ..errors import CodecError

__all__ = [
    "encode", "decode", "packed_rows", "StreamEncoder", "StreamDecoder", "RowCounter",
    "DecodeResult", "backend", "available_backends", "CODECS", "MAX_WIDTH", "DEFAULT_MAX_ROWS",
]

CODECS = ("mh", "mr", "mmr")
MAX_WIDTH = 16384            # widest row accepted (T.4 A3 at 16 pels/mm is 4864)
DEFAULT_MAX_ROWS = 16384     # decoders stop there (end="limit"): bounds memory on hostile input
_BIT_ORDERS = ("msb", "lsb")


def _load(impl: str) -> tuple[ModuleType, str]:
    if impl == "python":
        return importlib.import_module("._ref", __name__), "python"
    if impl == "c":
        try:
            return importlib.import_module("._c", __name__), "c"
        except ImportError as exc:
            raise ImportError(f"XMFAX_IMPL=c but the C codecs cannot be loaded: {exc}") from exc
    if impl == "auto":
        try:
            return importlib.import_module("._c", __name__), "c"
        except ImportError:
            return importlib.import_module("._ref", __name__), "python"
    raise ImportError(f"XMFAX_IMPL must be auto, c or python, not {impl!r}")


_impl, backend = _load(os.environ.get("XMFAX_IMPL", "auto").strip().lower() or "auto")


def available_backends() -> list[str]:
    """The backends that import on this machine, e.g. ``["c", "python"]``."""
    names = []
    for name in ("c", "python"):
        try:
            _load(name)
            names.append(name)
        except ImportError:
            pass
    return names


def _backend(impl: str | None) -> ModuleType:
    if impl is None:
        return _impl
    if impl not in ("c", "python"):
        raise CodecError(f"impl must be 'c', 'python' or None, not {impl!r}")
    return _load(impl)[0]


# --- argument checks -----------------------------------------------------------------------

def _check_codec(codec: str) -> str:
    if not isinstance(codec, str) or codec.lower() not in CODECS:
        raise CodecError(f"unknown codec {codec!r}; one of: mh, mr, mmr")
    return codec.lower()


def _check_width(width: Any) -> int:
    if isinstance(width, bool) or not isinstance(width, (int, np.integer)):
        raise CodecError(f"width must be an integer, not {width!r}")
    if not 1 <= width <= MAX_WIDTH:
        raise CodecError(f"width {width} outside 1..{MAX_WIDTH}")
    return int(width)


def _check_bit_order(bit_order: str) -> str:
    if bit_order not in _BIT_ORDERS:
        raise CodecError(f"bit_order must be 'msb' or 'lsb', not {bit_order!r}")
    return bit_order


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise CodecError(f"{name} must be an integer >= {low}, not {value!r}")
    return int(value)


# --- images in -------------------------------------------------------------------------------

def as_rows(image: Any, width: int | None = None) -> np.ndarray:
    """Any accepted image as C-contiguous uint8 (rows, width), 1 = black.

    * numpy array (rows, width) of bool or integers: True / nonzero = black;
    * Pillow image: mode "1" (0 = black, as Pillow stores it), "L" (< 128 is
      black), anything else is converted to "L" first;
    * bytes-like packed rows (MSB first, 1 = black, each row padded to whole
      bytes) with ``width=``.
    """
    if isinstance(image, (bytes, bytearray, memoryview)):
        if width is None:
            raise CodecError("packed rows need width=")
        width = _check_width(width)
        stride = (width + 7) // 8
        raw = np.frombuffer(bytes(image), dtype=np.uint8)
        if raw.size % stride:
            raise CodecError(f"{raw.size} bytes is not a whole number of {stride}-byte rows")
        rows = np.unpackbits(raw.reshape(-1, stride), axis=1)[:, :width]
        return np.ascontiguousarray(rows)
    if hasattr(image, "mode") and hasattr(image, "convert"):       # a Pillow image
        if image.mode == "1":
            rows = ~np.asarray(image, dtype=bool)
        else:
            grey = image if image.mode == "L" else image.convert("L")
            rows = np.asarray(grey) < 128
        rows = rows.astype(np.uint8)
    else:
        try:
            arr = np.asarray(image)
        except Exception as exc:                                       # noqa: BLE001
            raise CodecError(f"cannot use {type(image).__name__} as an image") from exc
        if arr.ndim != 2:
            raise CodecError(f"an image is 2-D (rows, width), not shape {arr.shape}")
        if arr.dtype == np.bool_:
            rows = arr.view(np.uint8)
        elif np.issubdtype(arr.dtype, np.integer):
            rows = (arr != 0).view(np.uint8)
        else:
            raise CodecError(f"image dtype {arr.dtype} is not bool or integer")
    if rows.shape[1] == 0 or rows.shape[1] > MAX_WIDTH:
        raise CodecError(f"width {rows.shape[1]} outside 1..{MAX_WIDTH}")
    if width is not None and width != rows.shape[1]:
        raise CodecError(f"width={width} but the image is {rows.shape[1]} wide")
    return np.ascontiguousarray(rows, dtype=np.uint8)


def packed_rows(image: Any, width: int | None) -> tuple[Any, int]:
    """Packed rows (MSB first, 1 = black, each row padded to whole bytes, pad bits
    ignored) as a C-contiguous buffer and its row count, checked, never unpacked.

    Bytes-like data, or a numpy uint8 array (rows, (width + 7) // 8) such as
    ``decode(..., packed=True).image``; ``width`` is needed for both.
    """
    if width is None:
        raise CodecError("packed rows need width=")
    width = _check_width(width)
    stride = (width + 7) // 8
    if isinstance(image, (bytes, bytearray, memoryview)):
        buf = memoryview(image).cast("B") if isinstance(image, memoryview) else image
        if len(buf) % stride:
            raise CodecError(f"{len(buf)} bytes is not a whole number of {stride}-byte rows")
        return buf, len(buf) // stride
    if not isinstance(image, np.ndarray):
        raise CodecError("packed rows are bytes or a numpy uint8 array, "
                         f"not {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 2 or image.shape[1] != stride:
        raise CodecError(f"packed rows of width {width} are uint8 (rows, {stride}), "
                         f"not {image.dtype} {image.shape}")
    return np.ascontiguousarray(image), image.shape[0]


def _is_packed(image: Any, packed: bool) -> bool:
    return bool(packed) or isinstance(image, (bytes, bytearray, memoryview))


# --- encoding --------------------------------------------------------------------------------

class StreamEncoder:
    """Encode a page row by row: ``encode(rows) -> bytes`` as often as needed, then
    ``finish() -> bytes`` (RTC / EOFB when ``rtc``, and the last partial byte).

    Options are those of :func:`encode`.
    """

    def __init__(self, width: int, codec: str = "mh", *, k: int = 2, eol: bool = True,
                 byte_align: bool = False, rtc: bool = True, min_row_bits: int = 0,
                 bit_order: str = "msb", impl: str | None = None):
        self.width = _check_width(width)
        self.codec = _check_codec(codec)
        k = _check_int("k", k, 1)
        min_row_bits = _check_int("min_row_bits", min_row_bits, 0)
        if self.codec == "mr" and not eol:
            raise CodecError("MR needs EOLs (eol=True): the tag bit after each EOL says 1-D or 2-D")
        self.rtc = bool(rtc)
        self._enc = _backend(impl).Encoder(
            self.width, self.codec, k=k, eol=bool(eol), byte_align=bool(byte_align),
            min_row_bits=min_row_bits, bit_order=_check_bit_order(bit_order))

    def encode(self, rows: Any, *, packed: bool = False) -> bytes:
        """Code more rows (any accepted image form of this width; bytes, or a uint8 array
        with ``packed=True``, are packed rows); returns the whole bytes produced so far
        (a partial byte waits for the next call)."""
        if _is_packed(rows, packed):
            return self._enc.encode_packed(*packed_rows(rows, self.width))
        return self._enc.encode(as_rows(rows, self.width))

    def finish(self) -> bytes:
        return self._enc.finish(self.rtc)


def encode(image: Any, codec: str = "mh", *, k: int = 2, eol: bool = True,
           byte_align: bool = False, rtc: bool = True, min_row_bits: int = 0,
           bit_order: str = "msb", width: int | None = None, packed: bool = False,
           impl: str | None = None) -> bytes:
    """Encode a page.

    codec: "mh" (T.4 1-D), "mr" (T.4 2-D, K = ``k``), "mmr" (T.6).
    eol: EOL before every row (MH/MR; MR requires it). byte_align: EOLs end on a
    byte boundary (without EOL: each row starts on one). rtc: end with RTC (MH/MR,
    not added without EOL) or EOFB (MMR). min_row_bits: pad each row (from its EOL)
    to at least this many bits. bit_order: "msb" (TIFF FillOrder=1) or "lsb" (the
    order on a fax line, FillOrder=2). width: needed for packed rows.
    packed: the image is packed rows, a numpy uint8 array (rows, (width + 7) // 8) as
    ``decode(..., packed=True)`` gives (bytes are always taken as packed rows). Packed
    rows go to the backend as they are: the C encoder finds changes 64 pels at a time.
    """
    if _is_packed(image, packed):
        buf, nrows = packed_rows(image, width)
        enc = StreamEncoder(width, codec, k=k, eol=eol, byte_align=byte_align, rtc=rtc,
                            min_row_bits=min_row_bits, bit_order=bit_order, impl=impl)
        return enc._enc.encode_packed(buf, nrows) + enc.finish()
    rows = as_rows(image, width)
    enc = StreamEncoder(rows.shape[1], codec, k=k, eol=eol, byte_align=byte_align, rtc=rtc,
                        min_row_bits=min_row_bits, bit_order=bit_order, impl=impl)
    return enc._enc.encode(rows) + enc.finish()


# --- decoding --------------------------------------------------------------------------------

@dataclass(frozen=True)
class DecodeResult:
    """What a decoder made of a stream.

    image: bool (rows, width), True = black (see StreamDecoder.finish for what it holds there);
    with ``packed=True``, uint8 (rows, (width + 7) // 8): MSB first, 1 = black, pad bits 0.
    rows: rows output (bad ones included); bad_rows: rows replaced by the previous
    row; max_consecutive_bad_rows: the longest run of them. end: "rtc" | "eofb" |
    "data" (input ended without an end marker) | "error" (MMR / EOL-less MH stopped
    at a bad code) | "limit" (max_rows reached). error / error_position: the first
    problem and its bit offset in the stream (after bit-order reversal), or None.
    garbled_fill_rows: rows that decoded cleanly but were followed by non-zero bits
    before the next EOL (T.4 fill is 0 bits): a noise burst that wiped out EOLs
    shows here, though the rows it swallowed cannot be counted (MH/MR with EOL only).
    first_bad_row: the 0-based row where the first damage was detected, or None: the
    first bad row, the row at which decoding stopped on an error (end="error"), the row
    the input ended inside (a partial row, dropped), or the row after a good row followed
    by garbled fill. None with end in ("rtc", "eofb", "data") means the stream decoded
    whole, as far as a decoder can tell: compare ``rows`` with the rows expected too
    (a stream cut exactly between rows shows nothing else).
    """

    image: np.ndarray
    rows: int
    bad_rows: int
    max_consecutive_bad_rows: int
    end: str
    error: str | None
    error_position: int | None
    garbled_fill_rows: int = 0
    first_bad_row: int | None = None

    @property
    def ok(self) -> bool:
        """True if every row decoded cleanly and the page ended properly (RTC/EOFB or data)."""
        return self.bad_rows == 0 and self.end in ("rtc", "eofb", "data")


def _has_eol(bits_head: str) -> bool | None:
    """T.4 detection: is the first 1 bit preceded by 11+ zeros? None: not known yet."""
    q = bits_head.find("1")
    if q < 0:
        return True if len(bits_head) >= 11 else None
    return q >= 11


class StreamDecoder:
    """Decode a stream as it arrives: ``feed(chunk)`` returns the rows it completed
    (bool (n, width), or with ``packed=True`` uint8 (n, (width + 7) // 8));
    ``finish()`` ends the input and returns a DecodeResult whose stats cover the whole
    stream and whose ``image`` holds the rows finish() completed, or every row of the
    page if ``keep=True``.

    ``rows``, ``bad_rows``, ``max_consecutive_bad_rows``, ``garbled_fill_rows``, ``end``,
    ``error``, ``error_position`` and ``first_bad_row`` are readable at any time (``end``
    is None while open).
    Options are those of :func:`decode`.
    """

    def __init__(self, width: int = 1728, codec: str = "mh", *, eol: bool | None = None,
                 byte_align: bool = False, bit_order: str = "msb",
                 max_rows: int = DEFAULT_MAX_ROWS, keep: bool = False, packed: bool = False,
                 impl: str | None = None):
        self.width = _check_width(width)
        self.packed = bool(packed)
        self.codec = _check_codec(codec)
        self.bit_order = _check_bit_order(bit_order)
        self.max_rows = _check_int("max_rows", max_rows, 1)
        self.byte_align = bool(byte_align)
        self._module = _backend(impl)
        self._keep: list[np.ndarray] | None = [] if keep else None
        self._head = b""           # bytes held while eol=None is undecided
        self._dec = None
        self._finished = False
        if self.codec == "mmr" or self.codec == "mr" or eol is not None:
            self._start(True if self.codec == "mr" else bool(eol) if eol is not None else False)

    def _start(self, eol: bool) -> None:
        self.eol = eol
        self._dec = self._module.Decoder(self.width, self.codec, eol=eol,
                                         byte_align=self.byte_align, bit_order=self.bit_order,
                                         max_rows=self.max_rows, packed=self.packed)

    def _detect(self, final: bool) -> None:
        head = bytes(self._head[:4])
        if self.bit_order == "lsb":
            head = head.translate(bytes(int(f"{i:08b}"[::-1], 2) for i in range(256)))
        found = _has_eol("".join(f"{b:08b}" for b in head))
        if found is None and final:
            found = True           # no 1 bit at all: an empty page either way
        if found is not None:
            self._start(found)

    def feed(self, chunk: bytes) -> np.ndarray:
        if self._finished:
            raise CodecError("feed() after finish()")
        if self._dec is None:
            self._head = bytes(self._head) + bytes(chunk) if len(self._head) else chunk
            self._detect(False)
            if self._dec is None:
                self._head = bytes(self._head)      # kept: not the caller's buffer
                if self.packed:
                    return np.zeros((0, (self.width + 7) // 8), dtype=np.uint8)
                return np.zeros((0, self.width), dtype=bool)
            chunk, self._head = self._head, b""
        rows = self._dec.feed(chunk)
        if self._keep is not None and len(rows):
            self._keep.append(rows)
        return rows

    def finish(self, data: bytes = b"") -> DecodeResult:
        """End the input, after ``data`` if given (the last chunk: its rows are in the
        result's ``image`` rather than returned by a ``feed``)."""
        if self._finished:
            raise CodecError("finish() called twice")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"data must be bytes, not {type(data).__name__}")
        if self._dec is None:
            # (the page itself is not copied)
            self._head = bytes(self._head) + bytes(data) if len(self._head) else data
            self._detect(True)
            data, self._head = self._head, b""
        self._finished = True
        rows = self._dec.finish(data)
        if self._keep is not None:
            if len(rows) or not self._keep:
                self._keep.append(rows)
            rows = np.concatenate(self._keep) if len(self._keep) > 1 else self._keep[0]
            self._keep = None
        d = self._dec
        return DecodeResult(rows, d.rows, d.bad_rows, d.max_consecutive_bad_rows, d.end,
                            d.error, d.error_position, d.garbled_fill_rows, d.first_bad_row)

    def _stat(name: str):          # noqa: N805 - a property factory
        return property(lambda self: getattr(self._dec, name) if self._dec is not None
                        else (None if name in ("end", "error", "error_position", "first_bad_row")
                              else 0))

    rows = _stat("rows")
    bad_rows = _stat("bad_rows")
    max_consecutive_bad_rows = _stat("max_consecutive_bad_rows")
    garbled_fill_rows = _stat("garbled_fill_rows")
    end = _stat("end")
    error = _stat("error")
    error_position = _stat("error_position")
    first_bad_row = _stat("first_bad_row")
    del _stat


class RowCounter(StreamDecoder):
    """A StreamDecoder that keeps no pixels: ``feed(chunk)`` returns how many rows the
    chunk completed. For T.30 (page length, bad-row checks for RTP/RTN while the page
    arrives); ``rows``/``bad_rows``/``end`` are live."""

    def feed(self, chunk: bytes) -> int:        # type: ignore[override]
        return len(super().feed(chunk))


def decode(data: bytes, width: int = 1728, codec: str = "mh", *, eol: bool | None = None,
           byte_align: bool = False, bit_order: str = "msb", max_rows: int = DEFAULT_MAX_ROWS,
           packed: bool = False, impl: str | None = None) -> DecodeResult:
    """Decode a whole page. Tolerant of a missing leading EOL, a missing RTC and trailing
    garbage; bad MH/MR rows are replaced by the previous row; never raises on bad data.

    eol: None detects (EOLs if the first 1 bit follows 11+ zeros), True/False forces
    (MH only; MR always has EOLs, MMR none). byte_align: EOL-less MH rows start on
    byte boundaries (TIFF Compression=2). max_rows: stop there with end="limit".
    packed: ``image`` is packed rows, uint8 (rows, (width + 7) // 8), MSB first, 1 = black,
    pad bits 0 (what a TIFF with FillOrder=1 and PhotometricInterpretation=0 holds),
    painted straight from the decoded runs: no bool array is made.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"data must be bytes, not {type(data).__name__}")
    dec = StreamDecoder(width, codec, eol=eol, byte_align=byte_align, bit_order=bit_order,
                        max_rows=max_rows, keep=True, packed=packed, impl=impl)
    return dec.finish(data)          # one call: the rows come out as one array, not joined


def count_rows(chunks: Iterable[bytes], width: int = 1728, codec: str = "mh",
               **options: Any) -> DecodeResult:
    """Rows and bad rows of a stream given as chunks, without keeping pixels."""
    counter = RowCounter(width, codec, **options)
    for chunk in chunks:
        counter.feed(chunk)
    return counter.finish()
