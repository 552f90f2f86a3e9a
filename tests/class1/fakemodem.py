"""A scripted Class 1 modem with pyserial's port shape, on a virtual clock.

Each step of the script names the command it expects (a regex) and what the
modem answers. Time only moves when the driver reads an empty port (by the
port's read timeout) or sleeps, so timeouts are tested without waiting.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

DLE, ETX = 0x10, 0x03


@dataclass
class Step:
    pattern: str                     # regex the command must match (fullmatch)
    reply: bytes | None = b"\r\nOK\r\n"   # None: say nothing (the driver must time out / abort)
    data: bool = False               # after the reply, take DLE-shielded data up to DLE ETX
    after_data: bytes = b"\r\nOK\r\n"
    more_data: int = 0               # further data blocks (non-final +FTH frames: CONNECT between)
    on_abort: bytes = b"\r\nOK\r\n"  # when reply is None: what any byte from the DTE gets
    delay: float = 0.0               # virtual seconds before the reply appears


@dataclass
class FakeModem:
    script: list[Step]
    timeout: float = 0.02
    echo: bool = False
    now: float = 0.0
    commands: list[str] = field(default_factory=list)
    blocks: list[bytes] = field(default_factory=list)    # data the DTE sent after CONNECT
    written: bytearray = field(default_factory=bytearray)
    mismatches: list[str] = field(default_factory=list)
    closed: bool = False
    atz_echoes: bool = False         # like iaxmodem: ATZ turns echo on (ATE0/ATE1 set it)
    hang_up_at_end: bool = False     # a command after the script: the line drops (OSError)

    def __post_init__(self):
        self._out = bytearray()
        self._pending: list[tuple[float, bytes]] = []
        self._line = bytearray()
        self._mode = "cmd"
        self._data = bytearray()
        self._dle = False
        self._step: Step | None = None
        self._blocks_left = 0
        self._waiting_abort = False

    # --- clock
    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += max(0.0, s)

    # --- pyserial shape
    def read(self, n: int = 1) -> bytes:
        self._release()
        if not self._out:
            self.now += self.timeout
            self._release()
            if not self._out:
                return b""
        data = bytes(self._out[:n])
        del self._out[:n]
        return data

    def write(self, data: bytes) -> int:
        self.written += data
        for b in data:
            self._byte(b)
        return len(data)

    def reset_input_buffer(self) -> None:
        self._out.clear()

    def close(self) -> None:
        self.closed = True

    # --- modem
    def queue(self, data: bytes, delay: float = 0.0) -> None:
        self._pending.append((self.now + delay, data))
        self._release()

    def _release(self) -> None:
        keep = []
        for t, d in self._pending:
            if t <= self.now:
                self._out += d
            else:
                keep.append((t, d))
        self._pending = keep

    def _byte(self, b: int) -> None:
        if self._waiting_abort:
            self._waiting_abort = False
            self.queue(self._step.on_abort)
            return
        if self._mode == "data":
            if self._dle:
                self._dle = False
                if b == ETX:
                    self.blocks.append(bytes(self._data))
                    self._data.clear()
                    if self._blocks_left:
                        self._blocks_left -= 1
                        self.queue(b"\r\nCONNECT\r\n")
                    else:
                        self._mode = "cmd"
                        self.queue(self._step.after_data)
                elif b == DLE:
                    self._data.append(DLE)
                return
            if b == DLE:
                self._dle = True
            else:
                self._data.append(b)
            return
        if b in (0x0D, 0x0A):
            if self._line:
                self._command(self._line.decode("latin-1"))
                self._line.clear()
            return
        self._line.append(b)

    def _command(self, cmd: str) -> None:
        at = cmd.upper().find("AT")
        if at < 0:
            return                       # a modem ignores a line that is not a command
        cmd = cmd[at:]
        self.commands.append(cmd)
        if self.echo:
            self.queue(cmd.encode() + b"\r")
        if self.atz_echoes:
            up = cmd.upper()
            if up == "ATZ" or up.startswith("ATE"):
                self.echo = up in ("ATZ", "ATE1", "ATE")
        if not self.script:
            if self.hang_up_at_end:
                raise OSError(f"line dropped: {cmd!r} after the end of the script")
            self.mismatches.append(f"unexpected {cmd!r} (script ended)")
            self.queue(b"\r\nERROR\r\n")
            return
        step = self.script.pop(0)
        self._step = step
        if cmd.upper() != step.pattern.upper() and not re.fullmatch(step.pattern, cmd, re.I):
            self.mismatches.append(f"expected /{step.pattern}/, got {cmd!r}")
            self.queue(b"\r\nERROR\r\n")
            return
        if step.reply is None:
            self._waiting_abort = True
            return
        self.queue(step.reply, step.delay)
        if step.data:
            self._mode = "data"
            self._blocks_left = step.more_data


def frh_reply(frame: bytes, fcs: bytes = b"\x00\x00", ok: bool = True) -> bytes:
    """What a modem sends for +FRH=3: CONNECT, frame + FCS shielded, DLE ETX, OK/ERROR."""
    body = (frame + fcs).replace(b"\x10", b"\x10\x10")
    return b"\r\nCONNECT\r\n" + body + b"\x10\x03" + (b"\r\nOK\r\n" if ok else b"\r\nERROR\r\n")
