"""The C codec backend: Encoder and Decoder over the cffi module ``xmfax._native``.

Implements docs/codec-backends.md bit for bit like ``_ref.py``; the C sources are in
native/ (t4_encode.c, t4_decode.c). Importing this module fails with ImportError when
the extension was not built, which is how the public layer falls back to Python.
Arguments arrive validated by the public layer (xmfax/codecs/__init__.py).
"""
from __future__ import annotations

import numpy as np

from ..errors import CodecError

from xmfax._native import ffi, lib  # ImportError when the C build is absent

__all__ = ["Encoder", "Decoder"]

_CODECS = {"mh": 0, "mr": 1, "mmr": 2}
_ENDS = {0: None, 1: "rtc", 2: "eofb", 3: "data", 4: "error", 5: "limit"}
_NEED_INPUT, _OUT_FULL, _ENDED = 0, 1, 2
_MAX_CHUNK_ROWS = 4096    # output rows allocated at most per decode call (then more)


def _codec(codec: str) -> int:
    try:
        return _CODECS[codec]
    except KeyError:
        raise ValueError(f"unknown codec {codec!r}; one of mh, mr, mmr") from None


def _lsb(bit_order: str) -> int:
    if bit_order not in ("msb", "lsb"):
        raise ValueError(f"bit_order is 'msb' or 'lsb', not {bit_order!r}")
    return int(bit_order == "lsb")


class Encoder:
    """Streaming T.4/T.6 encoder: rows in, complete bytes out (see the contract)."""

    def __init__(self, width: int, codec: str, *, k: int = 2, eol: bool = True,
                 byte_align: bool = False, min_row_bits: int = 0, bit_order: str = "msb"):
        self.width = int(width)
        self.codec = codec
        handle = lib.xm_enc_new(self.width, _codec(codec), int(k), int(bool(eol)),
                                int(bool(byte_align)), int(min_row_bits), _lsb(bit_order))
        if handle == ffi.NULL:
            raise MemoryError("xmfax C encoder: cannot allocate (or invalid width/k)")
        self._enc = ffi.gc(handle, lib.xm_enc_free)
        self._finished = False

    def _take(self, n: int) -> bytes:
        if n < 0:
            raise MemoryError("xmfax C encoder: out of memory")
        data = ffi.buffer(lib.xm_enc_data(self._enc), n)[:] if n else b""
        lib.xm_enc_clear(self._enc)
        return data

    def encode(self, rows: np.ndarray) -> bytes:
        """Code rows (C-contiguous uint8/bool (n, width), 0 = white); return whole bytes."""
        if self._finished:
            raise CodecError("encode() after finish()")
        rows = np.asarray(rows)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise ValueError(f"rows must be (n, {self.width}), not {rows.shape}")
        if rows.dtype != np.uint8:
            rows = rows.view(np.uint8) if rows.dtype == np.bool_ else (rows != 0).view(np.uint8)
        rows = np.ascontiguousarray(rows)
        if rows.shape[0] == 0:
            return b""
        n = lib.xm_enc_rows(self._enc, ffi.from_buffer("uint8_t[]", rows), rows.shape[0])
        return self._take(n)

    def encode_packed(self, data, nrows: int) -> bytes:
        """Code ``nrows`` packed rows (a buffer of nrows x ((width + 7) // 8) bytes, MSB
        first, 1 = black; pad bits ignored); return whole bytes."""
        if self._finished:
            raise CodecError("encode() after finish()")
        stride = (self.width + 7) // 8
        buf = ffi.from_buffer("uint8_t[]", data)
        if len(buf) != nrows * stride:
            raise ValueError(f"{len(buf)} bytes is not {nrows} rows of {stride}")
        if nrows == 0:
            return b""
        return self._take(lib.xm_enc_rows_packed(self._enc, buf, nrows))

    def finish(self, rtc: bool = True) -> bytes:
        """RTC (T.4) / EOFB (T.6) if rtc, then the last byte padded with 0 bits."""
        if self._finished:
            raise CodecError("finish() called twice")
        self._finished = True
        return self._take(lib.xm_enc_finish(self._enc, int(bool(rtc))))


_SMALL_FEED = 2048          # octets: a feed this small decodes into the reused buffer
_SMALL_ROWS = 64


class Decoder:
    """Streaming T.4/T.6 decoder: chunks in, complete rows out (see the contract)."""

    def __init__(self, width: int, codec: str, *, eol: bool = True, byte_align: bool = False,
                 bit_order: str = "msb", max_rows: int = 16384, packed: bool = False):
        self.width = int(width)
        self.codec = codec
        self.max_rows = int(max_rows)
        self.packed = bool(packed)
        # a row out: bool (width,), or packed uint8 ((width + 7) // 8,)
        self._shape = ((self.width + 7) // 8, np.uint8) if self.packed else (self.width, np.bool_)
        handle = lib.xm_dec_new(self.width, _codec(codec), int(bool(eol)), int(bool(byte_align)),
                                _lsb(bit_order), self.max_rows, int(self.packed))
        if handle == ffi.NULL:
            raise MemoryError("xmfax C decoder: cannot allocate (or invalid width/max_rows)")
        self._dec = ffi.gc(handle, lib.xm_dec_free)
        self._consumed = ffi.new("size_t *")
        self._nrows = ffi.new("long *")
        self._stats = ffi.new("long long[7]")
        self._finished = False
        self._scratch: np.ndarray | None = None
        self.rows = 0
        self.bad_rows = 0
        self.max_consecutive_bad_rows = 0
        self.garbled_fill_rows = 0
        self.first_bad_row: int | None = None
        self.end: str | None = None
        self.error: str | None = None
        self.error_position: int | None = None

    def _run(self, data, final: bool) -> np.ndarray:
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        total = len(view)
        width, dtype = self._shape
        pieces = []
        offset = 0
        cap = min(8 * total + 2, _MAX_CHUNK_ROWS)    # a row takes at least 1 bit (MMR V0)
        # small chunks (a line receiver feeds ~50 ms at a time) decode into one reused
        # buffer: allocating room for 8 rows a byte on every feed cost more than decoding
        small = total <= _SMALL_FEED
        if small:
            cap = _SMALL_ROWS
        while True:
            left_rows = self.max_rows - self.rows if self.max_rows else cap
            cap = max(1, min(cap, left_rows))
            if small and cap <= _SMALL_ROWS:
                if self._scratch is None:
                    self._scratch = np.empty((_SMALL_ROWS, width), dtype=dtype)
                out = self._scratch[:cap]
            else:
                out = np.empty((cap, width), dtype=dtype)
            chunk = view[offset:] if offset else view
            status = lib.xm_dec_run(self._dec, ffi.from_buffer("uint8_t[]", chunk), total - offset,
                                    self._consumed, ffi.from_buffer("uint8_t[]", out, True), cap,
                                    self._nrows, int(final))
            offset += self._consumed[0]
            n = self._nrows[0]
            self._update()
            if n:
                if small and out.base is self._scratch:
                    pieces.append(out[:n].copy())
                elif n * 2 < cap:
                    # far fewer rows than room (a whole page decodes into room for 4096
                    # rows): give the rest back in place rather than copy the rows
                    try:
                        out.resize((n, width), refcheck=False)
                        pieces.append(out)
                    except ValueError:      # still exported somewhere: copy instead
                        pieces.append(out[:n].copy())
                else:
                    pieces.append(out[:n])
            if status != _OUT_FULL:
                break
            cap = min(cap * 2, _MAX_CHUNK_ROWS)
            small = False
        if not pieces:
            return np.zeros((0, width), dtype=dtype)
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)

    def _update(self) -> None:
        s = self._stats
        lib.xm_dec_stats(self._dec, s)
        self.rows, self.bad_rows, self.max_consecutive_bad_rows = int(s[0]), int(s[1]), int(s[2])
        self.garbled_fill_rows = int(s[5])
        self.first_bad_row = int(s[6]) if s[6] >= 0 else None
        self.end = _ENDS[int(s[3])]
        if s[4] >= 0:
            self.error_position = int(s[4])
            self.error = ffi.string(lib.xm_dec_error(self._dec)).decode("ascii", "replace")

    def feed(self, data: bytes) -> np.ndarray:
        """Decode a chunk; return the rows it completed: bool (n, width), or packed
        uint8 (n, (width + 7) // 8)."""
        if self._finished:
            raise CodecError("feed() after finish()")
        if not len(data) or self.end is not None:
            return np.zeros((0, self._shape[0]), dtype=self._shape[1])
        return self._run(data, False)

    def finish(self, data: bytes = b"") -> np.ndarray:
        """The input is over after ``data``: decode it and what is left; return the rows
        still pending (a whole page in one call decodes into one array)."""
        if self._finished:
            raise CodecError("finish() called twice")
        self._finished = True
        if self.end is not None:
            return np.zeros((0, self._shape[0]), dtype=self._shape[1])
        return self._run(data, True)
