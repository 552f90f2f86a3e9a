"""Lab trace: every byte and AT exchange with a timestamp, one event per line.

    0.412 >> 41 54 2b 46 54 48 3d 33 0d            'AT+FTH=3\\r'
    0.412 AT AT+FTH=3
    0.463 << 0d 0a 43 4f 4e 4e 45 43 54 0d 0a       '\\r\\nCONNECT\\r\\n'
    0.463 RS CONNECT

Bytes are shown in hex with a printable rendering; long blocks are cut to
``max_bytes`` per line (the count is always given). Time is seconds since the
trace was opened.
"""
from __future__ import annotations

import time
from typing import Callable, TextIO


class Trace:
    def __init__(self, out: TextIO, clock: Callable[[], float] = time.monotonic,
                 max_bytes: int = 64, raw: bool = True):
        self.out = out
        self.clock = clock
        self.t0 = clock()
        self.max_bytes = max_bytes
        self.raw = raw

    def _w(self, tag: str, text: str) -> None:
        self.out.write(f"{self.clock() - self.t0:9.3f} {tag} {text}\n")
        self.out.flush()

    def _bytes(self, tag: str, data: bytes) -> None:
        if not self.raw:
            return
        shown = data[: self.max_bytes]
        more = f" ...(+{len(data) - len(shown)})" if len(data) > len(shown) else ""
        self._w(tag, f"[{len(data)}] {shown.hex(' ')}{more}  {shown!r}")

    def bytes_out(self, data: bytes) -> None:
        self._bytes(">>", data)

    def bytes_in(self, data: bytes) -> None:
        self._bytes("<<", data)

    def command(self, cmd: str) -> None:
        self._w("AT", cmd)

    def line_in(self, line: str) -> None:
        self._w("LN", line)

    def result(self, result: str, detail: str = "") -> None:
        self._w("RS", f"{result} {detail}".strip())

    def note(self, text: str) -> None:
        self._w("--", text)
