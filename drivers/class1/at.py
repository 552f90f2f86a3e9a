"""The AT command engine: commands with timeouts and result codes over a byte port.

The port is anything with pyserial's shape: ``read(n)`` returning what is there
within the port's short read timeout (possibly ``b""``), ``write(data)``, and a
writable ``timeout`` attribute. :class:`ATEngine` keeps its own input buffer so
that bytes arriving after ``CONNECT`` in the same read stay available to the
data phase (``take_raw``).

Result codes (V.250 §5.7.1, T.31 §8.5, and the dialling extensions modems use):
verbose and numeric (ATV0) forms are both understood. ``RING`` and caller ID
lines (``NMBR =``, ``NAME =``, ``DATE =``, ``TIME =``, ``DDI =``/``NDID =``) are
unsolicited: they never end a command and are queued in ``unsolicited``.
"""
from __future__ import annotations

import enum
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from xmfax.errors import DriverError, DriverTimeoutError

from .trace import Trace


class Result(enum.Enum):
    OK = "OK"
    CONNECT = "CONNECT"
    RING = "RING"
    NO_CARRIER = "NO CARRIER"
    ERROR = "ERROR"
    NO_DIALTONE = "NO DIALTONE"
    BUSY = "BUSY"
    NO_ANSWER = "NO ANSWER"
    FCERROR = "+FCERROR"      # T.31 §8.5: +FRM/+FRH heard a different carrier

    @property
    def final(self) -> bool:
        return self is not Result.RING


_VERBOSE = {
    "OK": Result.OK, "CONNECT": Result.CONNECT, "RING": Result.RING,
    "NO CARRIER": Result.NO_CARRIER, "ERROR": Result.ERROR,
    "NO DIALTONE": Result.NO_DIALTONE, "NO DIAL TONE": Result.NO_DIALTONE,
    "BUSY": Result.BUSY, "NO ANSWER": Result.NO_ANSWER, "+FCERROR": Result.FCERROR,
    "+F4": Result.FCERROR,
}
# V.250 numeric result codes (ATV0); "+F4" is T.31's numeric +FCERROR
_NUMERIC = {"0": Result.OK, "1": Result.CONNECT, "2": Result.RING, "3": Result.NO_CARRIER,
            "4": Result.ERROR, "6": Result.NO_DIALTONE, "7": Result.BUSY, "8": Result.NO_ANSWER}
CALLER_ID_KEYS = ("NMBR", "NAME", "DATE", "TIME", "DDI", "NDID", "MESG")


def parse_result(line: str, numeric: bool = False) -> tuple[Result, str] | None:
    """(result, detail) if ``line`` is a result code, else None. Numeric codes
    (ATV0) only with ``numeric``: otherwise "3" is an info line (``+FTH=?``).

    ``CONNECT 9600`` gives (CONNECT, "9600"); ``RING 1234`` (distinctive ring /
    DID modems) gives (RING, "1234")."""
    s = line.strip()
    if s in _VERBOSE:
        return _VERBOSE[s], ""
    if numeric and s in _NUMERIC:
        return _NUMERIC[s], ""
    for word in ("CONNECT", "RING"):
        if s.startswith(word + " ") or (s.startswith(word) and s[len(word):].isdigit()):
            return _VERBOSE[word], s[len(word):].strip()
    return None


def parse_caller_id(line: str) -> tuple[str, str] | None:
    """("NMBR", "5551234") for a caller ID line, else None."""
    key, sep, value = line.partition("=")
    key = key.strip().upper()
    if sep and key in CALLER_ID_KEYS:
        return key, value.strip()
    return None


@dataclass(frozen=True, slots=True)
class Response:
    """What a command produced: the final result, its detail and the info lines before it."""

    command: str
    result: Result
    detail: str = ""
    lines: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.result is Result.OK

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True, slots=True)
class Unsolicited:
    """A line the modem sent on its own: RING (with detail) or a caller ID field."""

    kind: str            # "RING" or a CALLER_ID_KEYS entry
    value: str = ""
    at: float = 0.0


class ModemResultError(DriverError):
    """A command ended with a result the caller did not accept."""

    def __init__(self, response: Response):
        super().__init__(f"{response.command!r} -> {response.result.value}"
                         + (f" {response.detail}" if response.detail else ""))
        self.response = response


@dataclass
class ATEngine:
    """Synchronous AT command engine over a pyserial-like port."""

    port: object
    trace: Trace | None = None
    clock: Callable[[], float] = time.monotonic
    read_chunk: int = 4096
    max_line: int = 1024                      # longer "lines" are junk: bounded memory
    buf: bytearray = field(default_factory=bytearray)
    unsolicited: deque = field(default_factory=lambda: deque(maxlen=64))
    numeric: bool = False                     # the modem is in ATV0 (numeric results)
    _skip_lf: bool = False

    # ------------------------------------------------------------------ raw I/O
    def write(self, data: bytes) -> None:
        if self.trace:
            self.trace.bytes_out(data)
        self.port.write(data)

    def fill(self, deadline: float) -> bool:
        """Read once (the port's own short timeout) unless ``deadline`` passed; True if bytes came."""
        if self.clock() >= deadline:
            return False
        data = self.port.read(self.read_chunk)
        if data:
            if self.trace:
                self.trace.bytes_in(data)
            if self._skip_lf and not self.buf and data[:1] == b"\n":
                data = data[1:]
            self._skip_lf = False
            self.buf += data
            return True
        return False

    def take_raw(self) -> bytes:
        """Everything buffered (data-phase bytes), emptying the buffer."""
        data = bytes(self.buf)
        self.buf.clear()
        return data

    def push_back(self, data: bytes) -> None:
        """Return bytes that belong to the command phase (after DLE ETX) to the buffer."""
        self.buf[0:0] = data

    def flush_input(self) -> None:
        self.buf.clear()
        reset = getattr(self.port, "reset_input_buffer", None)
        if reset:
            reset()

    # ------------------------------------------------------------------ lines
    def _pop_line(self) -> str | None:
        while True:
            # a line ends at CR or LF; blank lines are skipped
            idx = -1
            for i, b in enumerate(self.buf):
                if b in (0x0D, 0x0A):
                    idx = i
                    break
            if idx < 0:
                if len(self.buf) > self.max_line:
                    del self.buf[:-16]                 # junk without line ends
                return None
            raw = bytes(self.buf[:idx])
            end = idx + 1
            if self.buf[idx] == 0x0D:
                if end < len(self.buf):
                    if self.buf[end] == 0x0A:
                        end += 1                       # CR LF is one line end
                else:
                    self._skip_lf = True               # its LF may come in the next read
            del self.buf[:end]
            line = raw.decode("latin-1").strip()
            if line:
                return line

    def read_line(self, deadline: float) -> str:
        """The next non-blank line; DriverTimeoutError at ``deadline``."""
        while True:
            line = self._pop_line()
            if line is not None:
                if self.trace:
                    self.trace.line_in(line)
                return line
            if self.clock() >= deadline:
                raise DriverTimeoutError("no answer from the modem in time")
            self.fill(deadline)

    def _note_unsolicited(self, line: str) -> bool:
        r = parse_result(line, self.numeric)
        if r and r[0] is Result.RING:
            self.unsolicited.append(Unsolicited("RING", r[1], self.clock()))
            return True
        cid = parse_caller_id(line)
        if cid:
            self.unsolicited.append(Unsolicited(cid[0], cid[1], self.clock()))
            return True
        return False

    # ------------------------------------------------------------------ commands
    def send(self, command: str) -> None:
        """Write ``command`` + CR (the caller then waits with :meth:`wait_result`)."""
        if self.trace:
            self.trace.command(command)
        self.write(command.encode("ascii") + b"\r")

    def wait_result(self, command: str, timeout: float, *, deadline: float | None = None) -> Response:
        """Collect lines until a final result code; info lines are kept, the echo
        of ``command`` is skipped, RING and caller ID go to ``unsolicited``."""
        end = deadline if deadline is not None else self.clock() + timeout
        lines: list[str] = []
        while True:
            try:
                line = self.read_line(end)
            except DriverTimeoutError:
                raise DriverTimeoutError(f"{command!r}: no result from the modem within "
                                         f"{timeout:.1f} s") from None
            if command and line.upper() == command.upper():
                continue                                   # echo (ATE1)
            r = parse_result(line, self.numeric)
            if r and r[0].final:
                resp = Response(command, r[0], r[1], tuple(lines))
                if self.trace:
                    self.trace.result(resp.result.value, resp.detail)
                return resp
            if self._note_unsolicited(line):
                continue
            if len(lines) < 256:
                lines.append(line)

    def command(self, command: str, timeout: float = 3.0,
                accept: tuple[Result, ...] | None = (Result.OK,)) -> Response:
        """Send ``command`` and wait for its final result; raise ModemResultError
        if the result is not in ``accept`` (None: accept anything)."""
        self.send(command)
        resp = self.wait_result(command, timeout)
        if accept is not None and resp.result not in accept:
            raise ModemResultError(resp)
        return resp

    def wait_unsolicited(self, kinds: tuple[str, ...], deadline: float) -> Unsolicited | None:
        """Wait for an unsolicited line of one of ``kinds`` (e.g. RING); None at deadline."""
        while True:
            while self.unsolicited:
                u = self.unsolicited.popleft()
                if u.kind in kinds:
                    return u
            line = self._pop_line()
            if line is None:
                if self.clock() >= deadline:
                    return None
                self.fill(deadline)
                continue
            if self.trace:
                self.trace.line_in(line)
            self._note_unsolicited(line)
