"""HDLC framing in software: flags, bit stuffing and the 16-bit FCS.

T.30 frames are HDLC frames (T.30 §5.3.6.1, ISO/IEC 3309 framing): each frame is
``flag, address, control, FCF, FIF, FCS, flag`` with zero-bit insertion between
the flags. A Class 1 modem does this for V.21 (+FTH/+FRH), but most modems have no
high-speed HDLC, so ECM frames (T.30 Annex A) sent with +FTM or received with +FRM
are framed and deframed here.

Bytes on both sides of this module follow the modem interface's rule: the first
bit on the line is the least significant bit of each byte (bit_order="lsb").

* :func:`fcs16` computes the FCS (CRC-16/X.25: polynomial x^16+x^12+x^5+1,
  register preset to all ones, ones-complemented, sent low byte first) (T.30 §5.3.7).
* :func:`encode` turns frames into a flag-delimited, bit-stuffed byte stream.
* :class:`Decoder` is incremental: feed it any chunking of a received stream and
  it yields :class:`DecodedFrame` values; bounded memory whatever the input.

Pure computation, no I/O: this is part of the sans-IO core.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Iterator

FLAG = 0x7E
FLAG_BITS = (0, 1, 1, 1, 1, 1, 1, 0)   # 0x7E, LSB first (symmetric anyway)
GOOD_FCS_RESIDUE = 0xF0B8              # CRC register after data+FCS of a good frame (ISO 3309)
MIN_FRAME = 2                          # address + control at least; shorter is noise
DEFAULT_MAX_FRAME = 2048               # ECM frames are <= 256 octets of FIF + 4 (T.30 §A.3.1)


def _make_table() -> tuple[int, ...]:
    # reflected polynomial of x^16 + x^12 + x^5 + 1 is 0x8408
    table = []
    for n in range(256):
        crc = n
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_update(crc: int, data: bytes) -> int:
    """Run the reflected CCITT CRC register over ``data`` (no final complement)."""
    table = _TABLE
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc


def fcs16(data: bytes) -> bytes:
    """The two FCS octets for ``data`` in the order they are sent (T.30 §5.3.7)."""
    crc = crc16_update(0xFFFF, data) ^ 0xFFFF
    return bytes((crc & 0xFF, crc >> 8))


def fcs_ok(frame_with_fcs: bytes) -> bool:
    """True if the last two octets are a correct FCS for the rest."""
    return len(frame_with_fcs) >= 2 and crc16_update(0xFFFF, frame_with_fcs) == GOOD_FCS_RESIDUE


# ---------------------------------------------------------------------------- encoder
class _BitWriter:
    __slots__ = ("out", "acc", "n")

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def bit(self, b: int) -> None:
        self.acc |= b << self.n
        self.n += 1
        if self.n == 8:
            self.out.append(self.acc)
            self.acc = 0
            self.n = 0

    def flag(self) -> None:
        for b in FLAG_BITS:
            self.bit(b)


def encode(frames: Iterable[bytes], *, preamble_flags: int = 1, closing_flags: int = 2,
           add_fcs: bool = True) -> bytes:
    """Frame ``frames`` (address, control, FCF, FIF each) into an HDLC byte stream.

    The stream opens with ``preamble_flags`` flags, separates frames with one
    flag, ends with ``closing_flags`` flags and is padded to a whole byte with
    the first bits of a further flag (harmless to any receiver). With
    ``add_fcs`` false the frames must already carry their FCS.
    """
    if preamble_flags < 1 or closing_flags < 1:
        raise ValueError("an HDLC stream needs at least one opening and one closing flag")
    w = _BitWriter()
    for _ in range(preamble_flags):
        w.flag()
    first = True
    for frame in frames:
        if not first:
            w.flag()
        first = False
        body = bytes(frame) + fcs16(frame) if add_fcs else bytes(frame)
        ones = 0
        for byte in body:
            for i in range(8):
                b = (byte >> i) & 1
                w.bit(b)
                if b:
                    ones += 1
                    if ones == 5:          # zero-bit insertion (ISO 3309 §4.3)
                        w.bit(0)
                        ones = 0
                else:
                    ones = 0
    for _ in range(closing_flags):
        w.flag()
    i = 0
    while w.n:
        w.bit(FLAG_BITS[i])
        i += 1
    return bytes(w.out)


# ---------------------------------------------------------------------------- decoder
@dataclass(frozen=True, slots=True)
class DecodedFrame:
    """One frame found between flags. ``frame`` excludes the FCS."""

    frame: bytes
    fcs_ok: bool


class Decoder:
    """Incremental HDLC deframer over an LSB-first byte stream.

    ``feed(data)`` returns the frames completed by ``data``. A run of bits
    between flags that is not a whole number of octets, or is shorter than
    ``MIN_FRAME`` + 2 octets, is noise and is counted in ``junk`` rather than
    reported; a frame longer than ``max_frame`` octets is dropped (counted in
    ``too_long``) so memory stays bounded. Seven or more ones abort a frame
    (``aborts``). Frames with a bad FCS are reported with ``fcs_ok=False``:
    ECM counts them.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._ones = 0              # consecutive 1 bits seen
        self._in_frame = False      # a flag has been seen: collecting bits
        self._bits = bytearray()    # destuffed bits since the last flag, one per item
        self._overflow = False
        self._limit = (max_frame + 2) * 8 + 8
        self.junk = 0
        self.too_long = 0
        self.aborts = 0
        self.frames = 0

    def feed(self, data: bytes) -> list[DecodedFrame]:
        out: list[DecodedFrame] = []
        ones = self._ones
        bits = self._bits
        in_frame = self._in_frame
        limit = self._limit
        for byte in data:
            if ones >= 7 and byte == 0xFF:
                continue            # idle line (all ones): nothing can start
            for i in range(8):
                if (byte >> i) & 1:
                    ones += 1
                    if ones < 6:
                        if in_frame:
                            bits.append(1)
                    elif ones == 7:  # abort / idle (ISO 3309 §4.4)
                        if in_frame and len(bits) > 6:
                            self.aborts += 1
                        in_frame = False
                        bits.clear()
                        self._overflow = False
                    continue
                # a zero bit
                if ones == 6:        # a flag 01111110; its leading 0 and five 1s went into bits
                    if in_frame:
                        del bits[-6:]
                        self._close(bits, out)
                    in_frame = True
                    bits.clear()
                    self._overflow = False
                elif ones != 5 and in_frame:   # (after five ones: a stuffed zero, dropped)
                    bits.append(0)
                    if len(bits) > limit:
                        self._overflow = True
                        del bits[:-8]
                ones = 0
        self._ones, self._in_frame = ones, in_frame
        return out

    def _close(self, bits: bytearray, out: list[DecodedFrame]) -> None:
        n = len(bits)
        if self._overflow:
            self.too_long += 1
            return
        if n == 0:
            return                  # flags back to back
        if n % 8 or n < (MIN_FRAME + 2) * 8:
            self.junk += 1
            return
        value = int(bits[::-1].translate(_ASCII_BITS), 2)
        data = value.to_bytes(n // 8, "little")
        self.frames += 1
        out.append(DecodedFrame(data[:-2], fcs_ok(data)))


_ASCII_BITS = bytes.maketrans(b"\x00\x01", b"01")


def decode(data: bytes, max_frame: int = DEFAULT_MAX_FRAME) -> list[DecodedFrame]:
    """All frames in a complete stream (convenience wrapper around :class:`Decoder`)."""
    return Decoder(max_frame).feed(data)


def iter_frames(chunks: Iterable[bytes]) -> Iterator[DecodedFrame]:
    dec = Decoder()
    for chunk in chunks:
        yield from dec.feed(chunk)
