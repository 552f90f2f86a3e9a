"""DLE shielding of Class 1 data streams (T.31 §6.11, "transparent data").

Between the DTE and a Class 1 modem, data after CONNECT is a byte stream in which
DLE (0x10) is an escape:

* DTE -> modem (+FTH, +FTM): a data DLE is sent as DLE DLE; DLE ETX ends the
  stream. (T.31 also lets DLE SUB stand for two data DLEs; we never need it.)
* modem -> DTE (+FRH, +FRM): DLE DLE is one data DLE, DLE SUB is two data DLEs,
  DLE ETX ends the stream; any other DLE pair is a modem status or filler and is
  dropped, unless the modem is known not to double DLEs (quirk ``dle_not_doubled``),
  in which case a lone DLE is kept as data.

Pure functions and a small incremental decoder; no I/O.
"""
from __future__ import annotations

DLE = 0x10
ETX = 0x03
SUB = 0x1A
DLE_ETX = bytes((DLE, ETX))


def shield(data: bytes) -> bytes:
    """Double every DLE in ``data`` (DTE -> modem direction)."""
    return bytes(data).replace(b"\x10", b"\x10\x10")


def frame_for_modem(data: bytes) -> bytes:
    """``data`` shielded and terminated with DLE ETX, ready to write after CONNECT."""
    return shield(data) + DLE_ETX


class Unshielder:
    """Incremental modem -> DTE decoder.

    ``feed(chunk)`` returns ``(data, ended, rest)``: the payload bytes decoded,
    whether DLE ETX was seen, and (when ended) the bytes after DLE ETX, which
    belong to the AT result that follows (``OK``, ``NO CARRIER`` ...). A DLE
    at the end of a chunk is held until the next chunk decides what it means.
    ``dropped`` counts unknown DLE pairs discarded.
    """

    def __init__(self, dle_not_doubled: bool = False) -> None:
        self.dle_not_doubled = dle_not_doubled
        self._held_dle = False
        self.ended = False
        self.dropped = 0

    def feed(self, chunk: bytes) -> tuple[bytes, bool, bytes]:
        if self.ended:
            return b"", True, bytes(chunk)
        if self._held_dle:
            chunk = b"\x10" + bytes(chunk)
            self._held_dle = False
        out = bytearray()
        i = 0
        n = len(chunk)
        while i < n:
            j = chunk.find(b"\x10", i)
            if j < 0:
                out += chunk[i:]
                break
            out += chunk[i:j]
            if j + 1 >= n:
                self._held_dle = True
                break
            c = chunk[j + 1]
            if c == ETX:
                self.ended = True
                return bytes(out), True, bytes(chunk[j + 2:])
            if c == DLE:
                out.append(DLE)
            elif c == SUB:
                out += b"\x10\x10"
            elif self.dle_not_doubled:
                # INTEROP(modems that send data DLE single): keep it, re-scan the next byte
                out.append(DLE)
                i = j + 1
                continue
            else:
                self.dropped += 1
            i = j + 2
        return bytes(out), False, b""
