"""A test-only writer of arbitrary T.4 2-D / T.6 mode sequences, and the model of
what they mean.

Encoders only ever emit the one coding T.4 §4.2.1.3 prescribes for an image; real
files also hold odd but decodable sequences (a row starting with H(0,0), passes up
to the right edge, zero-length runs in the middle of a row). This module writes any
sequence of modes a test asks for:

    ("P",)              pass mode
    ("H", r1, r2)       horizontal mode, runs M(a0a1) M(a1a2) (any length, 0 included;
                        make-up codes as needed)
    ("V", d)            vertical mode, a1 = b1 + d, -3 <= d <= 3
    ("1D", [runs...])   a one-dimensional row (MR only): white, black, ... runs

and tracks the decoder's state with a deliberately simple model (T.4 §4.2.1.3.1):

* a row is its list of run boundaries (changing elements), **zero-length runs kept**:
  a row beginning with H(0,0) has two changing elements at 0 (libtiff keeps them, and
  the next row's b1/b2 are then 0);
* b1 is the first changing element of the reference row to the right of a0 whose
  colour is opposite to a0's colour (element i is a change to black when i is even);
  at the start of a row a0 is the imaginary element just before the row;
* until the first vertical or horizontal mode of a row (only passes so far), b1 is
  the element right after the last pass's b2, even if that is not to the right of
  a0 (which only differs when zero-length runs sit there). Observed in libtiff;
* in a one-dimensional row (MR) a white run of 0 followed by a black run of 0 leaves
  no element at all (libtiff drops the pair); other zero-length runs stay.

``write`` clips what a test asks for to what is decodable (a vertical mode whose a1
would be left of a0 or beyond the row is dropped, a1 = a0 is kept as a zero-length
run; a pass whose b1 is the right edge is dropped; horizontal runs are shortened to
fit), finishes every row at the width, and returns the bits and the image the model
says they mean.
"""
from __future__ import annotations

import numpy as np

from xmfax.codecs import _tables as T


class Row:
    """State of one row being written against a reference row."""

    def __init__(self, ref: list[int], width: int):
        self.ref = ref + [width] * 4       # padded: the imaginary elements at the edge
        self.width = width
        self.a0 = -1                       # the imaginary element before the row
        self.colour = 0                    # 0 white, 1 black
        self.changes: list[int] = []
        self.coded = False                 # a V or H mode has been coded in this row
        self.next_b = 0                    # after passes only: index of the next b1
        self._j = 0                        # first index of ref right of a0 (a0 only grows)
        self.bits: list[str] = []

    @property
    def done(self) -> bool:
        return self.a0 >= self.width

    def b_index(self) -> int:
        """Index into ref of b1 (T.4 §4.2.1.3.1)."""
        if not self.coded:
            return self.next_b
        while self.ref[self._j] <= self.a0:
            self._j += 1
        return self._j if (self._j & 1) == self.colour else self._j + 1

    def start(self) -> int:
        return max(self.a0, 0)

    def pass_(self) -> bool:
        """P, if b1 is left of the row's end: with b1 at the edge b2 is undefined
        (libtiff then reads past its reference row; xmfax ends the row)."""
        i = self.b_index()
        b1, b2 = self.ref[i], self.ref[i + 1]
        if b1 >= self.width:
            return False
        self.bits.append(T.MODE_PASS)
        self.a0 = max(b2, self.a0) if self.coded else b2
        self.next_b = i + 2
        return True

    def vertical(self, d: int) -> bool:
        b1 = self.ref[self.b_index()]
        a1 = b1 + d
        if a1 < self.start() or a1 > self.width:      # a1 = a0: a zero-length run
            return False
        self.bits.append(T.MODE_VERTICAL[d])
        self.changes.append(a1)
        self.a0 = a1
        self.colour ^= 1
        self.coded = True
        return True

    def horizontal(self, r1: int, r2: int) -> bool:
        room = self.width - self.start()
        r1 = min(r1, room)
        r2 = min(r2, room - r1)
        self.bits += [T.MODE_HORIZONTAL, T.run_code(self.colour, r1),
                      T.run_code(self.colour ^ 1, r2)]
        a1 = self.start() + r1
        self.changes += [a1, a1 + r2]
        self.a0 = a1 + r2
        self.coded = True
        return True

    def finish(self) -> None:
        """Code the rest of the row: V0 if b1 is the right edge, else one horizontal mode."""
        while not self.done:
            if self.ref[self.b_index()] == self.width and self.a0 < self.width:
                self.vertical(0)
            else:
                self.horizontal(self.width - self.start(), 0)

    def code(self, pixels: np.ndarray) -> None:
        """Code the rest of the row so that it paints ``pixels``, choosing modes by the
        rules of T.4 §4.2.1.3.2 against this model's b1/b2 (pass if b2 is left of a1,
        vertical if |a1 - b1| <= 3, else horizontal). After an odd start (H(0,0), say)
        this is what an encoder keeping zero-length runs in its reference would emit."""
        width = self.width

        def next_change(start: int, colour: int) -> int:
            diff = np.flatnonzero(pixels[start:] != bool(colour))
            return start + int(diff[0]) if len(diff) else width

        while not self.done:
            a1 = next_change(self.start(), self.colour)
            i = self.b_index()
            b1, b2 = self.ref[i], self.ref[i + 1]
            if b2 < a1 and self.pass_():
                pass
            elif abs(a1 - b1) <= 3 and self.vertical(a1 - b1):
                pass
            else:
                a2 = next_change(a1, self.colour ^ 1) if a1 < width else width
                self.horizontal(a1 - self.start(), a2 - a1)

    def elements(self) -> list[int]:
        """The row's changing elements for the next row (those at the width dropped)."""
        return [c for c in self.changes if c < self.width]


def paint(changes: list[int], width: int) -> np.ndarray:
    row = np.zeros(width, dtype=bool)
    prev, black = 0, False
    for c in changes + [width]:
        row[prev:c] = black
        prev, black = c, not black
    return row


def row_1d(runs: list[int], width: int) -> tuple[str, list[int]]:
    """A one-dimensional row from its runs (clipped to the width; the rest white or
    black to finish it): bits and changing elements, zero-length runs kept, except
    that a white run of 0 followed by a black run of 0 leaves no element at all (seen
    in libtiff: its 1-D rows drop the pair, while H(0,0) in a 2-D row stays)."""
    bits, changes, pos = [], [], 0
    colour = 0
    white = -1
    for r in runs:
        r = min(r, width - pos)
        bits.append(T.run_code(colour, r))
        pos += r
        if pos >= width:
            return "".join(bits), changes
        if colour == 1 and r == 0 and white == 0:
            changes.pop()
        else:
            changes.append(pos)
        white = r
        colour ^= 1
    bits.append(T.run_code(colour, width - pos))
    return "".join(bits), changes


def write(rows: list[list[tuple]], width: int, codec: str, *, k: int | None = None,
          eofb: bool = True) -> tuple[bytes, np.ndarray, list[str]]:
    """Code ``rows`` (each a list of the ops above) as an "mr" (EOL + tag before every
    row, no RTC: a TIFF G3 strip) or "mmr" stream (EOFB at the end if ``eofb``).

    In MR a row whose ops are ``[("1D", runs)]`` is one-dimensional; ``k`` (MR only)
    forces every k-th row to 1-D instead. Returns the bytes (MSB first), the image the
    model gives, and the ops actually coded per row (as text, for failure messages).
    """
    ref: list[int] = []
    bits: list[str] = []
    image = np.zeros((len(rows), width), dtype=bool)
    coded: list[str] = []
    for n, ops in enumerate(rows):
        one_d = codec == "mr" and (
            (ops and ops[0][0] == "1D") or (k is not None and n % k == 0))
        if one_d:
            runs = ops[0][1] if ops and ops[0][0] == "1D" else [width]
            row_bits, ref = row_1d(list(runs), width)
            bits += [T.EOL, "1", row_bits]
            coded.append(f"1D{list(runs)}")
        else:
            row = Row(ref, width)
            done_ops = []
            for op in ops:
                if row.done:
                    break
                if op[0] == "P":
                    ok = row.pass_()
                elif op[0] == "V":
                    ok = row.vertical(op[1])
                elif op[0] == "H":
                    ok = row.horizontal(op[1], op[2])
                else:
                    ok = False
                if ok:
                    done_ops.append(op)
            row.finish()
            if codec == "mr":
                bits += [T.EOL, "0"]
            bits += row.bits
            ref = row.elements()
            coded.append(" ".join(str(op) for op in done_ops))
        image[n] = paint(ref, width)
    if codec == "mmr" and eofb:
        bits.append(T.EOFB)
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    data = int(text, 2).to_bytes(len(text) // 8, "big") if text else b""
    return data, image, coded


def code_image(image: np.ndarray, codec: str, *, start=lambda n: [("H", 0, 0)] * (n % 2 == 0),
               eofb: bool = True) -> bytes:
    """Code every row of ``image`` as two-dimensional (MR: EOL+0 before each row, the
    first included; MMR: EOFB at the end), row n beginning with the ops ``start(n)``,
    the rest coded by :meth:`Row.code`. By default every other row begins with H(0,0),
    so the row after it begins with a pass over those two zero-length runs (b1 = b2 = 0),
    as in a real-world G4 file."""
    width = image.shape[1]
    ref: list[int] = []
    bits: list[str] = []
    for n, pixels in enumerate(image):
        row = Row(ref, width)
        for op in start(n):
            if op[0] == "H":
                row.horizontal(op[1], op[2])
            elif op[0] == "P":
                row.pass_()
            else:
                row.vertical(op[1])
        row.code(pixels)
        assert np.array_equal(paint(row.elements(), width), pixels)
        if codec == "mr":
            bits += [T.EOL, "0"]
        bits += row.bits
        ref = row.elements()
    if codec == "mmr" and eofb:
        bits.append(T.EOFB)
    text = "".join(bits)
    text += "0" * (-len(text) % 8)
    return int(text, 2).to_bytes(len(text) // 8, "big") if text else b""
