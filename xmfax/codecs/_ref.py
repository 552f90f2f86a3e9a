"""The pure-Python reference backend of the T.4 (MH, MR) and T.6 (MMR) codecs.

This is the oracle the C backend is tested against, so it favours plain code
over cleverness; the contract it implements is docs/codec-backends.md.

How it works, in brief:

* Bits are handled as a ``str`` of '0'/'1' characters. Converting bytes to it
  (and back) is one C-level call, ``str.find`` locates EOLs, and a code is read
  by peeking 13 characters, ``int(..., 2)``, and one list lookup.
* The decoder is a generator that suspends whenever it needs bits that have not
  arrived yet, and resumes exactly there on the next ``feed``; so any chunking
  gives the same result, rows come out as soon as they are complete, and the
  work is linear in the input.
* A row is kept as its list of changing elements (the positions where the
  colour changes, starting from white), which is also what two-dimensional
  coding needs as the reference row; rows are painted with numpy in bulk.
"""
from __future__ import annotations

import numpy as np

from ..errors import CodecError
from . import _tables as T

PEEK = 13                    # the longest code (black make-up) is 13 bits
_EOL = T.EOL
_BYTE_BITS = [format(i, "08b") for i in range(256)]
_REVERSE = bytes(int(format(i, "08b")[::-1], 2) for i in range(256))

# --- decode tables: indexed by the next PEEK bits -> (run, code length); length 0 = invalid


def _run_table(colour: int) -> list[tuple[int, int]]:
    table = [(0, 0)] * (1 << PEEK)
    for run, code in T.run_codes(colour).items():
        shift = PEEK - len(code)
        first = int(code, 2) << shift
        table[first:first + (1 << shift)] = [(run, len(code))] * (1 << shift)
    return table


_MODE_P, _MODE_H = 10, 11     # vertical modes are their offset -3..3


def _mode_table() -> list[tuple[int, int]]:
    table = [(0, 0)] * (1 << 7)
    codes = {_MODE_P: T.MODE_PASS, _MODE_H: T.MODE_HORIZONTAL}
    codes.update(T.MODE_VERTICAL)
    for mode, code in codes.items():
        shift = 7 - len(code)
        first = int(code, 2) << shift
        table[first:first + (1 << shift)] = [(mode, len(code))] * (1 << shift)
    return table


_RUN_TABLES = (_run_table(T.WHITE), _run_table(T.BLACK))
_MODE_TABLE = _mode_table()   # indexed by the top 7 of the PEEK bits

# --- encode tables: the full code of every run length, grown on demand
_RUN_CODES: tuple[list[str], list[str]] = ([], [])


def _codes_for(width: int) -> tuple[list[str], list[str]]:
    for colour in (T.WHITE, T.BLACK):
        codes = _RUN_CODES[colour]
        codes.extend(T.run_code(colour, r) for r in range(len(codes), width + 1))
    return _RUN_CODES


def _transitions(rows: np.ndarray) -> list[list[int]]:
    """Changing elements of every row: the columns where the colour differs from
    the pixel to the left (an imaginary white pixel precedes column 0)."""
    n, width = rows.shape
    change = np.empty((n, width), dtype=bool)
    change[:, 0] = rows[:, 0] != 0
    np.not_equal(rows[:, 1:], rows[:, :-1], out=change[:, 1:])
    r, c = np.nonzero(change)
    ends = np.cumsum(np.bincount(r, minlength=n)).tolist()
    cols = c.tolist()
    out, start = [], 0
    for end in ends:
        out.append(cols[start:end])
        start = end
    return out


def _paint(trans_rows: list[list[int]], width: int) -> np.ndarray:
    """Rows (bool, True = black) from their changing elements."""
    n = len(trans_rows)
    if n == 0:
        return np.zeros((0, width), dtype=bool)
    flat = [i * (width + 1) + t for i, row in enumerate(trans_rows) for t in row]
    marks = np.bincount(np.array(flat, dtype=np.int64), minlength=n * (width + 1))
    marks = marks.reshape(n, width + 1)[:, :width]
    return (np.cumsum(marks, axis=1, dtype=np.int32) & 1).astype(bool)


def _paint_packed(trans_rows: list[list[int]], width: int) -> np.ndarray:
    """Rows as packed bits (uint8 (n, (width + 7) // 8), MSB first, 1 = black, pad bits 0)
    from their changing elements, through one Python int a row: no array of pixels.

    A black run [s, e) is the int 2**(W - s) - 2**(W - e), W being the row's bits with
    its padding; black runs start at the even elements and end at the odd ones (or at
    the width), so a row is the alternating sum of 2**(W - t) over its elements t (a
    zero-length run adds and takes away the same power)."""
    stride = (width + 7) // 8
    top = stride * 8
    out = bytearray()
    for trans in trans_rows:
        value = sum(1 << (top - t) for t in trans[0::2]) - sum(1 << (top - t) for t in trans[1::2])
        if len(trans) & 1:
            value -= 1 << (top - width)
        out += value.to_bytes(stride, "big")
    return np.frombuffer(bytes(out), dtype=np.uint8).reshape(len(trans_rows), stride)


def _unpack_rows(data, nrows: int, width: int) -> np.ndarray:
    """Packed rows (MSB first, 1 = black) as uint8 (nrows, width) of 0/1 (pad bits dropped)."""
    raw = np.frombuffer(bytes(data), dtype=np.uint8)
    stride = (width + 7) // 8
    if raw.size != nrows * stride:
        raise CodecError(f"{raw.size} bytes is not {nrows} rows of {stride}")
    return np.unpackbits(raw.reshape(nrows, stride), axis=1)[:, :width]


def _to_bytes(bits: str) -> bytes:
    return int(bits, 2).to_bytes(len(bits) // 8, "big") if bits else b""


class Encoder:
    """Streaming encoder; see docs/codec-backends.md for every option."""

    def __init__(self, width: int, codec: str, *, k: int = 2, eol: bool = True,
                 byte_align: bool = False, min_row_bits: int = 0, bit_order: str = "msb"):
        self.width = width
        self.codec = codec
        self.k = k if codec == "mr" else 1
        self.eol = eol if codec != "mmr" else False
        self.byte_align = byte_align if codec != "mmr" else False
        self.min_row_bits = min_row_bits if self.eol else 0
        self.lsb = bit_order == "lsb"
        self._pending = ""          # bits not yet returned (fewer than 8)
        self._ref: list[int] = []   # changing elements of the previous row
        self._row = 0
        self._finished = False

    def encode(self, rows: np.ndarray) -> bytes:
        if self._finished:
            raise CodecError("encode() after finish()")
        rows = np.asarray(rows, dtype=np.uint8)
        if rows.ndim != 2 or rows.shape[1] != self.width:
            raise CodecError(f"rows must have shape (n, {self.width}), not {rows.shape}")
        if rows.shape[0] == 0:
            return b""
        white, black = _codes_for(self.width)
        width, codec, k = self.width, self.codec, self.k
        parts = [self._pending]
        pos = len(self._pending)
        ref = self._ref
        for trans in _transitions(rows):
            one_d = codec == "mh" or (codec == "mr" and self._row % k == 0)
            if one_d:
                code = _code_1d(trans, width, white, black)
            else:
                code = _code_2d(trans, ref, width, white, black)
            if self.eol:
                if self.byte_align:                       # EOL ends on a byte boundary
                    fill = -(pos + 12) % 8
                    parts.append("0" * fill)
                    pos += fill
                head = _EOL + ("1" if one_d else "0") if codec == "mr" else _EOL
                n = len(head) + len(code)
                parts += (head, code)
                if n < self.min_row_bits:                 # T.4 §4.1.3 fill
                    parts.append("0" * (self.min_row_bits - n))
                    n = self.min_row_bits
                pos += n
            else:
                parts.append(code)
                pos += len(code)
                if self.byte_align:
                    fill = -pos % 8
                    parts.append("0" * fill)
                    pos += fill
            ref = trans
            self._row += 1
        self._ref = ref
        return self._emit("".join(parts))

    def encode_packed(self, data, nrows: int) -> bytes:
        """``encode`` of packed rows (nrows x ((width + 7) // 8) bytes, MSB first, 1 =
        black; pad bits ignored). The reference simply unpacks them."""
        if self._finished:
            raise CodecError("encode() after finish()")
        return self.encode(_unpack_rows(data, nrows, self.width))

    def finish(self, rtc: bool = True) -> bytes:
        if self._finished:
            raise CodecError("finish() called twice")
        self._finished = True
        bits = self._pending
        if rtc and self.codec == "mmr":
            bits += T.EOFB                                   # T.6 §2.4.1
        elif rtc and self.eol:                               # T.4 §4.1.4
            if self.byte_align:
                bits += "0" * (-(len(bits) + 12) % 8)
            bits += (_EOL + "1" if self.codec == "mr" else _EOL) * T.RTC_EOLS
        bits += "0" * (-len(bits) % 8)
        self._pending = ""
        out = _to_bytes(bits)
        return out.translate(_REVERSE) if self.lsb else out

    def _emit(self, bits: str) -> bytes:
        whole = len(bits) - len(bits) % 8
        self._pending = bits[whole:]
        out = _to_bytes(bits[:whole])
        return out.translate(_REVERSE) if self.lsb else out


def _code_1d(trans: list[int], width: int, white: list[str], black: list[str]) -> str:
    """T.4 §4.1.1: a row as alternating white and black runs, white first."""
    parts, prev, codes = [], 0, (white, black)
    for i, t in enumerate(trans):
        parts.append(codes[i & 1][t - prev])
        prev = t
    parts.append(codes[len(trans) & 1][width - prev])
    return "".join(parts)


def _code_2d(trans: list[int], ref: list[int], width: int,
             white: list[str], black: list[str]) -> str:
    """T.4 §4.2.1.3 (= T.6 §2.2) two-dimensional coding of one row against ``ref``."""
    cur = trans + [width, width]
    ref = ref + [width, width, width]
    codes = (white, black)
    vertical = T.MODE_VERTICAL
    parts = []
    a0, colour = -1, 0       # a0 starts on the imaginary white element before the row
    i = j = 0                # cur[i]: first changing element > a0; ref[j]: same on ref
    while a0 < width:
        while cur[i] <= a0:
            i += 1
        while ref[j] <= a0:
            j += 1
        a1 = cur[i]
        b = j if (j & 1) == colour else j + 1     # b1 has the colour opposite to a0's
        b1, b2 = ref[b], ref[b + 1]
        if b2 < a1:                                # T.4 §4.2.1.3.2 a) pass mode
            parts.append(T.MODE_PASS)
            a0 = b2
        elif -3 <= a1 - b1 <= 3:                   # b) vertical mode
            parts.append(vertical[a1 - b1])
            a0 = a1
            colour ^= 1
        else:                                      # c) horizontal mode
            a2 = cur[i + 1]
            start = a0 if a0 > 0 else 0
            parts += (T.MODE_HORIZONTAL, codes[colour][a1 - start], codes[colour ^ 1][a2 - a1])
            a0 = a2
    return "".join(parts)


# --- decoding ---------------------------------------------------------------------------

_OK, _BAD, _EOL_SEEN, _TRUNC, _EMPTY = 0, 1, 2, 3, 4   # _EMPTY: an EOL where a row should start
# a row may hold at most width + 32 zero-length runs (so fewer than 2 x width + 32 changing
# elements): more is garbage, and would let a hostile stream grow one row without bound
_EXTRA_ZEROS = 32
_TOO_MANY_ZEROS = "too many zero-length runs in one row"
_CHUNK = 1 << 15             # bytes converted to bits at a time


class Decoder:
    """Streaming decoder; see docs/codec-backends.md for the rules it follows."""

    def __init__(self, width: int, codec: str, *, eol: bool = True, byte_align: bool = False,
                 bit_order: str = "msb", max_rows: int = 16384, packed: bool = False):
        self.width = width
        self.packed = packed         # rows out as packed bits (_paint_packed), not bool
        self.codec = codec
        self.eol = True if codec == "mr" else (eol if codec == "mh" else False)
        self.byte_align = byte_align
        self.lsb = bit_order == "lsb"
        self.max_rows = max_rows
        self.rows = 0
        self.bad_rows = 0
        self.max_consecutive_bad_rows = 0
        self.garbled_fill_rows = 0       # good rows followed by non-zero bits before the next EOL
        self.first_bad_row: int | None = None    # 0-based row of the first damage seen
        self.end: str | None = None
        self.error: str | None = None
        self.error_position: int | None = None
        self._bad_run = 0
        self._bits = ""          # undecoded bits; self._base = stream offset of _bits[0]
        self._base = 0
        self._pos = 0            # decoder position in _bits while suspended
        self._final = False
        self._finished = False
        self._out: list[list[int]] = []
        self._prev: list[int] = []           # changing elements of the last output row
        if codec == "mmr":
            self._gen = self._run_mmr()
        elif self.eol:
            self._gen = self._run_eol()
        else:
            self._gen = self._run_noeol()

    # -- driving the generator

    def feed(self, data: bytes) -> np.ndarray:
        if self._finished:
            raise CodecError("feed() after finish()")
        self._push(data)
        return self._take()

    def _push(self, data: bytes) -> None:
        data = bytes(data)
        for start in range(0, len(data), _CHUNK):
            if self.end is not None:
                break
            chunk = data[start:start + _CHUNK]
            if self.lsb:
                chunk = chunk.translate(_REVERSE)
            cut = self._pos - self._pos % 8
            self._base += cut
            self._pos -= cut
            self._bits = self._bits[cut:] + "".join(map(_BYTE_BITS.__getitem__, chunk))
            self._step()

    def finish(self, data: bytes = b"") -> np.ndarray:
        if self._finished:
            raise CodecError("finish() called twice")
        self._push(data)
        self._final = True
        if self.end is None:
            self._step()
        self._finished = True
        if self.end is None:         # cannot happen: a final pass always ends
            self.end = "data"
        self._bits = ""
        return self._take()

    def _step(self) -> None:
        try:
            next(self._gen)
        except StopIteration:
            pass

    def _take(self) -> np.ndarray:
        out, self._out = self._out, []
        return (_paint_packed if self.packed else _paint)(out, self.width)

    # -- row bookkeeping

    def _good_row(self, trans: list[int]) -> bool:
        self._out.append(trans)
        self._prev = trans
        self.rows += 1
        self._bad_run = 0
        return self._at_limit()

    def _damage(self) -> None:
        """Damage was detected in the row being decoded (self.rows, 0-based)."""
        if self.first_bad_row is None:
            self.first_bad_row = self.rows

    def _bad_row(self, why: str, pos: int) -> bool:
        self._damage()
        if self.error is None:
            self.error = f"row {self.rows}: {why}"
            self.error_position = self._base + pos
        self._out.append(self._prev)
        self.rows += 1
        self.bad_rows += 1
        self._bad_run += 1
        self.max_consecutive_bad_rows = max(self.max_consecutive_bad_rows, self._bad_run)
        return self._at_limit()

    def _at_limit(self) -> bool:
        if self.rows >= self.max_rows:
            self.end = "limit"
            return True
        return False

    def _fail(self, why: str, pos: int) -> None:
        self._damage()
        self.end = "error"
        self.error = f"row {self.rows}: {why}"
        self.error_position = self._base + pos

    # -- small suspending steps; each reads and writes back self._pos

    def _skip_to_eol(self, watch: bool = False):
        """Advance to just after the next EOL. Returns False if the input ended first.
        A 1 bit before that EOL is not fill (T.4 §4.1.3 fill is 0 bits): damage at the
        row to come (before the first EOL too); ``watch`` (after a good row): it also
        counts the row in ``garbled_fill_rows``."""
        while True:
            bits, p = self._bits, self._pos
            q = bits.find(_EOL, p)
            last = q if q >= 0 else len(bits) if self._final else max(p, len(bits) - 11)
            if (watch or self.first_bad_row is None) and bits.find("1", p, last) >= 0:
                self._damage()                   # rows after the last good one are lost
                if watch:
                    self.garbled_fill_rows += 1
                    watch = False
            if q >= 0:
                self._pos = q + 12
                return True
            if self._final:
                return False
            self._pos = last                     # keep a possible partial EOL
            yield

    def _read_bit(self):
        """One bit ('0'/'1'), or None if the input ended."""
        while self._pos >= len(self._bits):
            if self._final:
                return None
            yield
        bit = self._bits[self._pos]
        self._pos += 1
        return bit

    def _no_code(self, p: int, empty: bool, what: str):
        """No code starts at bit ``p``: an EOL (where a row should start, or too early),
        the end of the input so far, or garbage (``what``)."""
        self._pos = p
        kind = yield from self._zeros()
        if kind == _EOL_SEEN:
            if empty:
                return _EMPTY, "EOL where a row should start"
            return _EOL_SEEN, "EOL before the row reached its width"
        if kind == _TRUNC:     # "cut": the input ended inside a row (a code, or a 1 bit, seen)
            return _TRUNC, "" if empty else "cut"
        return _BAD, what

    def _zeros(self):
        """At an invalid code: is it an EOL (11+ zeros then 1)? Returns _EOL_SEEN (and
        moves past it), _BAD (other garbage; position unchanged) or _TRUNC (input over)."""
        while True:
            bits, p = self._bits, self._pos
            q = bits.find("1", p)
            if q >= 0:
                if q - p >= 11:
                    self._pos = q + 1
                    return _EOL_SEEN
                return _BAD
            if self._final:
                return _TRUNC
            self._pos = max(p, len(bits) - 11)    # 11 zeros are as good as more
            yield

    # -- one row

    def _row_1d(self):
        """Decode one MH row at self._pos -> (status, changing elements or reason)."""
        width, tables = self.width, _RUN_TABLES
        bits, p = self._bits, self._pos
        n = len(bits)
        trans: list[int] = []
        a0, colour, table = 0, 0, tables[0]
        empty = True
        zero_runs = 0
        while True:
            if n - p < PEEK:
                if not self._final:
                    self._pos = p
                    yield
                    bits, p = self._bits, self._pos
                    n = len(bits)
                    continue
                v = int((bits[p:] + "0" * PEEK)[:PEEK], 2)
            else:
                v = int(bits[p:p + PEEK], 2)
            run, length = table[v]
            if not length:
                return (yield from self._no_code(p, empty, "invalid run-length code"))
            if p + length > n:                  # the input ends inside this code
                self._pos = p
                return _TRUNC, "" if empty and "1" not in bits[p:] else "cut"
            p += length
            empty = False
            a0 += run
            if a0 > width:
                self._pos = p
                return _BAD, f"runs overshoot the width ({a0} > {width})"
            if run < 64:                       # a terminating code ends the run
                if a0 == width:
                    self._pos = p
                    return _OK, trans
                if trans and trans[-1] == a0:  # a zero-length run: kept (see _row_2d) ...
                    if colour and (trans[-2] == a0 if len(trans) > 1 else a0 == 0):
                        # ... except a white run of 0 then a black run of 0: both vanish
                        # INTEROP(libtiff): its one-dimensional rows drop that pair
                        if len(trans) > 1:
                            zero_runs -= 1
                        trans.pop()
                        colour ^= 1
                        table = tables[colour]
                        continue
                    zero_runs += 1
                    if zero_runs > width + _EXTRA_ZEROS:
                        self._pos = p
                        return _BAD, _TOO_MANY_ZEROS
                trans.append(a0)
                colour ^= 1
                table = tables[colour]

    def _row_2d(self, ref: list[int]):
        """Decode one two-dimensional row (T.4 §4.2.1.3, T.6 §2.2) against ``ref``.

        Zero-length runs (H(0,0) at the start of a row, H(x,0) or a vertical mode with
        a1 = a0 later) are legal to decode and are kept as changing elements, so the
        next row's b1/b2 may sit on them. Until the row's first vertical or horizontal
        mode (passes only so far), b1 is the element right after the last pass's b2
        even when it is not to the right of a0 (it can only differ on zero-length runs).
        INTEROP(libtiff): both as libtiff decodes, which real G4 files rely on
        (tests/interop/test_codecs_libtiff.py compares generated mode sequences).
        """
        width, tables, modes = self.width, _RUN_TABLES, _MODE_TABLE
        ref = ref + [width, width, width]
        bits, p = self._bits, self._pos
        n = len(bits)
        trans: list[int] = []
        a0, colour, j = -1, 0, 0
        empty = True
        coded = False            # a vertical or horizontal mode seen in this row
        after_pass = 0           # while not coded: index of b1 (after the last pass's b2)
        zero_runs = 0
        while True:
            if n - p < PEEK:
                if not self._final:
                    self._pos = p
                    yield
                    bits, p = self._bits, self._pos
                    n = len(bits)
                    continue
                v = int((bits[p:] + "0" * PEEK)[:PEEK], 2)
            else:
                v = int(bits[p:p + PEEK], 2)
            mode, length = modes[v >> (PEEK - 7)]
            if not length:
                return (yield from self._no_code(p, empty, "invalid mode code"))
            if p + length > n:                  # the input ends inside this code
                self._pos = p
                return _TRUNC, "" if empty and "1" not in bits[p:] else "cut"
            p += length
            empty = False
            if coded:            # T.4 §4.2.1.3.1: b1 to the right of a0, colour opposite
                while ref[j] <= a0:
                    j += 1
                b = j if (j & 1) == colour else j + 1
            else:
                b = after_pass
            if mode == _MODE_P:
                a0 = ref[b + 1]
                after_pass = b + 2
            elif mode == _MODE_H:
                coded = True
                start = a0 if a0 > 0 else 0
                a = start
                for c in (colour, colour ^ 1):           # M(a0a1) then M(a1a2)
                    table, total = tables[c], 0
                    while True:
                        if n - p < PEEK:
                            if not self._final:
                                self._pos = p
                                yield
                                bits, p = self._bits, self._pos
                                n = len(bits)
                                continue
                            v = int((bits[p:] + "0" * PEEK)[:PEEK], 2)
                        else:
                            v = int(bits[p:p + PEEK], 2)
                        run, length = table[v]
                        if not length or p + length > n:
                            self._pos = p
                            if length:
                                return _TRUNC, "cut"
                            kind = yield from self._zeros()
                            if kind == _EOL_SEEN:
                                return _EOL_SEEN, "EOL inside a horizontal mode"
                            if kind == _TRUNC:
                                return _TRUNC, "cut"
                            return _BAD, "invalid run-length code in horizontal mode"
                        p += length
                        total += run
                        if a + total > width:
                            self._pos = p
                            return _BAD, f"horizontal run overshoots the width ({a + total} > {width})"
                        if run < 64:
                            break
                    a += total
                    if a < width:
                        if trans and trans[-1] == a:
                            zero_runs += 1
                            if zero_runs > width + _EXTRA_ZEROS:
                                self._pos = p
                                return _BAD, _TOO_MANY_ZEROS
                        trans.append(a)
                a0 = a
            else:
                coded = True
                a1 = ref[b] + mode
                low = a0 if a0 > 0 else 0        # a1 = a0: a zero-length run
                if a1 < low or a1 > width:
                    self._pos = p
                    return _BAD, f"vertical mode puts a1 at {a1}, outside {low}..{width}"
                if a1 < width:
                    if trans and trans[-1] == a1:
                        zero_runs += 1
                        if zero_runs > width + _EXTRA_ZEROS:
                            self._pos = p
                            return _BAD, _TOO_MANY_ZEROS
                    trans.append(a1)
                a0 = a1
                colour ^= 1
            if a0 >= width:
                self._pos = p
                return _OK, trans

    # -- whole streams

    def _run_eol(self, at_eol: bool = False):
        """MH or MR with EOLs (T.4 §4.1, §4.2): tolerant, row by row. ``at_eol``: an EOL
        was just read (an EOL-less MH stream turned out to have EOLs after all)."""
        mr = self.codec == "mr"
        if not at_eol and not (yield from self._skip_to_eol()):
            self.end = "data"
            return
        need_1d = False                 # MR: after a bad row, wait for EOL+1
        while True:
            tag = "1"
            if mr:
                tag = yield from self._read_bit()
                if tag is None:
                    self.end = "data"
                    return
                if need_1d and tag == "0":
                    if self._bad_row("2-D row after a bad row", self._pos):
                        return
                    if not (yield from self._skip_to_eol()):
                        self.end = "data"
                        return
                    continue
            if tag == "1":
                status, info = yield from self._row_1d()
            else:
                status, info = yield from self._row_2d(self._prev)
            if status == _OK:
                need_1d = False
                if self._good_row(info):
                    return
                if not (yield from self._skip_to_eol(watch=True)):
                    self.end = "data"
                    return
                continue
            if status == _TRUNC:
                if info:
                    self._damage()              # the input ended inside a row
                self.end = "data"
                return
            if status == _EMPTY:
                self.end = "rtc"                # an empty row: the EOLs of RTC
                return
            need_1d = mr
            if self._bad_row(info, self._pos):
                return
            if status == _BAD and not (yield from self._skip_to_eol()):
                self.end = "data"
                return

    def _run_noeol(self):
        """MH without EOL (TIFF Compression=2 when byte aligned): stops at the first error."""
        while True:
            if self.byte_align:
                while self._pos + (-self._pos % 8) > len(self._bits):
                    if self._final:
                        self.end = "data"
                        return
                    yield
                self._pos += -self._pos % 8
            while self._pos >= len(self._bits):
                if self._final:
                    self.end = "data"
                    return
                yield
            status, info = yield from self._row_1d()
            if status == _OK:
                if self._good_row(info):
                    return
            elif status == _TRUNC:
                if info:
                    self._damage()              # the input ended inside a row
                self.end = "data"
                return
            elif status == _EMPTY:
                # an EOL where a row starts: the stream has EOLs but lacked the leading one
                self.eol = True
                yield from self._run_eol(at_eol=True)
                return
            else:
                self._fail(info if status == _BAD else "EOL inside a row of a stream without EOLs",
                           self._pos)
                return

    def _run_mmr(self):
        """T.6: two-dimensional rows to EOFB; the first error ends the page."""
        while True:
            while self._pos >= len(self._bits):
                if self._final:
                    self.end = "data"
                    return
                yield
            status, info = yield from self._row_2d(self._prev)
            if status == _OK:
                if self._good_row(info):
                    return
            elif status == _TRUNC:
                if info:
                    self._damage()              # the input ended inside a row
                self.end = "data"
                return
            elif status == _EMPTY:
                self.end = "eofb"               # T.6 §2.4.1: EOFB (its second EOL is not read)
                return
            else:
                self._fail(info, self._pos)
                return
