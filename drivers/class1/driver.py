"""Class1Driver: a T.30 session over a Class 1 (T.31) fax modem on a serial port.

The modem only modulates; xmfax's sans-IO :class:`~xmfax.t30.session.Session`
runs T.30. This driver owns the port, the AT dialogue, call control and the
timers (a Class 1 modem waits forever in +FRH on a silent line), and turns the
session's modem commands into AT exchanges:

=====================  ==========================================================
SendHDLC (V.21)        +FTH=3, each frame DLE-shielded + DLE ETX; CONNECT between
                       frames, OK after the final one (the modem adds the FCS)
SendHDLC (high speed)  ECM: framed here with :mod:`xmfax.hdlc`, sent with +FTM=<code>
SendData               +FTM=<code>, shielded data, DLE ETX, OK once it has gone
SendSilence            +FTS=<n> (10 ms units)
Receive(HDLC, V.21)    +FRH=3 per frame (CONNECT, frame + FCS, DLE ETX, OK/ERROR)
Receive(HDLC, high)    +FRM=<code>, deframed here (ECM)
Receive(DATA)          +FRM=<code>, data until DLE ETX / NO CARRIER
Hangup                 ATH0
=====================  ==========================================================

Use::

    with Class1Driver(Class1Config("/dev/ttyUSB0", profile="generic")) as d:
        d.dial("5551234")                  # or d.answer(rings=2)
        result = d.run_call(session)       # synchronous; returns session.result

or the one-call helpers :meth:`Class1Driver.send_call` / :meth:`answer_call`.
"""
from __future__ import annotations

import io
import select
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Callable, TextIO

from xmfax import hdlc
from xmfax.errors import DriverError, DriverTimeoutError
from xmfax.t30 import modem as m
from xmfax.t30.config import T30Config, TCFCheck

from . import dle
from .at import ATEngine, ModemResultError, Response, Result, parse_result
from .mode import Input, Mode, transition
from .probe import parse_classes
from .profiles import TOLERANT_TCF, Quirks, get_profile
from .trace import Trace

ECM_CLOSING_FLAGS = 4


def _writable(port, wait: float = 0.02) -> bool:
    """Whether the port takes data now without blocking (select on its descriptor; a
    port without one, like loop:// or a test double, is taken as always ready).
    A tty is writable while fewer than 256 octets wait in it, so the writes that
    follow (at most ``step`` octets) do not block."""
    try:
        fd = port.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return True
    return bool(select.select([], [fd], [], wait)[1])


class DialError(DriverError):
    """A call could not be set up. ``reason`` is the modem's result (BUSY, NO ANSWER,
    NO DIALTONE, NO CARRIER, ERROR) or "TIMEOUT"."""

    def __init__(self, reason: str, message: str = ""):
        super().__init__(message or f"call not established: {reason}")
        self.reason = reason


class ModemNotResponding(DriverError):
    """The modem did not answer even after the recovery sequence."""


@dataclass(frozen=True)
class Class1Config:
    """How to reach and drive one modem.

    ``port`` is a pyserial name or URL (``/dev/ttyUSB0``, a PTY path, ``loop://``,
    ``spy:///dev/ttyS0``, ``rfc2217://host:port``). Flow control is RTS/CTS or
    none, never XON/XOFF: 0x11/0x13 occur raw in fax data.
    """

    port: str
    baudrate: int = 115200
    rtscts: bool = True
    init: tuple[str, ...] = ("ATE0", "ATV1", "ATQ0", "AT+FCLASS=1")
    profile: str = "generic"
    quirks: Quirks | None = None            # overrides the profile's quirks as a whole
    dial_mode: str = "tone"                 # tone | pulse
    dial_timeout: float = 90.0              # ATD to CONNECT (the modem's own S7 is shorter)
    answer_timeout: float = 15.0            # ATA to CONNECT
    command_timeout: float = 3.0
    trace: TextIO | None = None             # write a timestamped byte/AT log here
    trace_bytes: bool = True                # include raw bytes in the trace (not only AT)
    read_timeout: float = 0.02              # the port's read poll (s)
    # V.17 image data (and ECM blocks) after a TCF use the short "resync" training
    # (V.17's short training: no equalizer conditioning; the TCF after DCS and the
    # block after CTC keep the long one): +FTM/+FRM=74/98/122/146 except right after DCS/CTC.
    # The engine may also ask for it itself (short_training=True).
    v17_short_training: bool = True

    def __post_init__(self) -> None:
        if self.dial_mode not in ("tone", "pulse"):
            raise ValueError(f"dial_mode is 'tone' or 'pulse', not {self.dial_mode!r}")

    @property
    def effective_quirks(self) -> Quirks:
        return self.quirks if self.quirks is not None else get_profile(self.profile)


class Class1Driver:
    """One Class 1 modem. Not thread-safe: one call at a time."""

    def __init__(self, config: Class1Config, *, port: object | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.config = config
        self.quirks = config.effective_quirks
        self.clock = clock
        self.sleep = sleep
        self._port = port
        self.trace = (Trace(config.trace, clock, raw=config.trace_bytes)
                      if config.trace is not None else None)
        self.at: ATEngine | None = None
        self.mode = Mode.IDLE
        self._settle_until = 0.0                 # meaningful in Mode.SETTLING only
        self.caller_id: dict[str, str] = {}
        self.accommodations: list[str] = []      # quirk handling that actually happened
        self._t0 = 0.0
        if port is not None:
            self.at = ATEngine(port, self.trace, clock)

    def _fire(self, event: Input) -> None:
        self.mode = transition(self.mode, event)

    # ------------------------------------------------------------------ port
    def open(self) -> "Class1Driver":
        if self.at is None:
            import serial  # pyserial; imported here so the fake-port tests need no device

            try:
                port = serial.serial_for_url(
                    self.config.port, baudrate=self.config.baudrate, rtscts=self.config.rtscts,
                    xonxoff=False, timeout=self.config.read_timeout, write_timeout=30)
            except (serial.SerialException, OSError, ValueError) as exc:
                raise DriverError(f"cannot open {self.config.port}: {exc}") from exc
            self._port = port
            self.at = ATEngine(port, self.trace, self.clock)
        return self

    def close(self) -> None:
        close = getattr(self._port, "close", None)
        if close:
            close()
        self.at = None

    def __enter__(self) -> "Class1Driver":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()

    def _note(self, text: str) -> None:
        if self.trace:
            self.trace.note(text)

    def _accommodate(self, text: str) -> None:
        if text not in self.accommodations:
            self.accommodations.append(text)
        self._note("quirk: " + text)

    # ------------------------------------------------------------------ set-up and recovery
    def initialize(self, reset: bool = True) -> None:
        """ATZ (optional), the init string, Class 1. Runs the recovery sequence if the
        modem does not answer; raises ModemNotResponding if that fails too."""
        assert self.at is not None, "open() first"
        try:
            self._init_once(reset)
        except (DriverTimeoutError, ModemResultError):
            self.recover()
            self._init_once(reset)

    def _init_once(self, reset: bool) -> None:
        at = self.at
        init = list(self.config.init)
        if reset:
            at.command("ATZ", self.config.command_timeout)
            if self.quirks.reset_restores_echo and not any(c.upper().startswith("ATE0") for c in init):
                at.command("ATE0", self.config.command_timeout)
        for cmd in init:
            if cmd.upper() == "AT+FCLASS=1" and self.quirks.prefer_class_1_0 and self._offers_class_1_0():
                cmd = "AT+FCLASS=1.0"
            at.command(cmd, self.config.command_timeout)
        self._reset(settle=reset)

    _classes: tuple[str, ...] | None = None

    def _offers_class_1_0(self) -> bool:
        """Whether AT+FCLASS=? lists 1.0 (asked once per driver; no answer: no)."""
        if self._classes is None:
            try:
                r = self.at.command("AT+FCLASS=?", self.config.command_timeout, accept=None)
                self._classes = parse_classes(" ".join(r.lines)) if r.ok else ()
            except DriverTimeoutError:
                self._classes = ()
        return "1.0" in self._classes

    def recover(self) -> None:
        """Bring a confused modem back to command state: abort any data or receive
        mode (CAN, DLE ETX), escape (+++ with guard times), hang up, reset."""
        at = self.at
        self._note("recovery: aborting, escaping, hanging up")
        at.write(b"\x18" + dle.DLE_ETX)
        self.sleep(0.3)
        at.flush_input()
        def answers() -> bool:
            try:
                at.command("AT", self.config.command_timeout, accept=None)
                return True
            except DriverTimeoutError:
                return False

        if not answers():
            # online data mode? escape with guard times: the modem's own "+++" with
            # its S2 character and S12 guard time (V.250 does not define an escape)
            self.sleep(1.1)
            at.write(b"+++")
            self.sleep(1.1)
            try:
                at.wait_result("", 2.0)
            except DriverTimeoutError:
                pass
            if not answers():
                raise ModemNotResponding(f"{self.config.port}: the modem does not answer AT commands")
        try:
            at.command("ATH0", 5.0, accept=None)
            at.command("ATZ", 5.0, accept=None)
            if self.quirks.reset_restores_echo:
                at.command("ATE0", 5.0, accept=None)
            self._fire(Input.RESET)
            return
        except DriverTimeoutError:
            pass
        raise ModemNotResponding(f"{self.config.port}: the modem does not answer AT commands")

    def _reset(self, settle: bool) -> None:
        """The modem is back in command state with no call, after ATZ/ATH0 (``settle``:
        it then refuses to dial for Quirks.settle_after_reset_s) or without them."""
        if settle and self.quirks.settle_after_reset_s:
            self._settle_until = self.clock() + self.quirks.settle_after_reset_s
            self._fire(Input.RESET_SETTLE)
        else:
            self._fire(Input.RESET)

    def _wait_settled(self) -> None:
        if self.mode is not Mode.SETTLING:
            return
        wait = self._settle_until - self.clock()
        if wait > 0:
            self._note(f"waiting {wait:.1f} s for the modem to settle after reset/hang-up")
            self.sleep(wait)
        self._fire(Input.SETTLED)

    # ------------------------------------------------------------------ call control
    def dial(self, number: str) -> None:
        """Dial ``number``; return once the far end's V.21 is heard (the modem is
        then in +FRH=3). DialError with the reason otherwise."""
        if not number or any(c not in "0123456789*#,W@!PTpt+ABCDabcd" for c in number):
            raise ValueError(f"not a dial string: {number!r}")
        self._wait_settled()
        cmd = ("ATDT" if self.config.dial_mode == "tone" else "ATDP") + number
        retry_until = self.clock() + self.quirks.no_dialtone_retry_s
        while True:
            try:
                self.at.send(cmd)
                resp = self.at.wait_result(cmd, self.config.dial_timeout)
            except DriverTimeoutError:
                self._abort_dial()
                raise DialError("TIMEOUT", f"no answer to {cmd} within {self.config.dial_timeout:.0f} s") from None
            if resp.result is not Result.NO_DIALTONE or self.clock() + self.NO_DIALTONE_PAUSE > retry_until:
                break
            self._accommodate("NO DIALTONE: dialled again (the far end refuses calls just after its reset)")
            self.sleep(self.NO_DIALTONE_PAUSE)
        if resp.result is not Result.CONNECT:
            raise DialError(resp.result.value)
        self._fire(Input.DIALLED)

    NO_DIALTONE_PAUSE = 0.5   # s between dials while Quirks.no_dialtone_retry_s lasts

    def _abort_dial(self) -> None:
        self.at.write(b"\r")
        try:
            self.at.wait_result("", 3.0)
        except DriverTimeoutError:
            self.recover()

    RING_GAP = 10.0     # s without a RING after which a half-counted call is forgotten

    def wait_for_call(self, rings: int = 1, timeout: float | None = None,
                      stop: Callable[[], bool] | None = None) -> dict[str, str]:
        """Wait for an incoming call (``rings`` RINGs) without answering it, so the
        application can decide first; return the caller ID fields seen (NMBR, NAME,
        DDI ...). DriverTimeoutError after ``timeout`` s (None: wait for ever), or as
        soon as ``stop()`` is true. A caller who gives up before ``rings`` is forgotten."""
        deadline = None if timeout is None else self.clock() + timeout
        caller: dict[str, str] = {}
        seen, last = 0, 0.0
        while seen < max(1, rings):
            if stop is not None and stop():
                raise DriverTimeoutError("stopped while waiting for a call")
            now = self.clock()
            if deadline is not None and now >= deadline:
                raise DriverTimeoutError(f"{seen} of {rings} rings within {timeout:.0f} s")
            if seen and now - last > self.RING_GAP:
                seen, caller = 0, {}
            slice_end = now + 0.5 if deadline is None else min(now + 0.5, deadline)
            u = self.at.wait_unsolicited(("RING", "NMBR", "NAME", "DATE", "TIME", "DDI", "NDID", "MESG"),
                                         slice_end)
            if u is None:
                continue
            if u.kind == "RING":
                seen, last = seen + 1, self.clock()
            else:
                caller[u.kind] = u.value
        self.caller_id = dict(caller)
        return caller

    def answer(self, rings: int | None = 1, timeout: float = 60.0) -> None:
        """Answer: wait for ``rings`` RINGs (None: answer at once with ATA), then ATA.
        Caller ID lines seen meanwhile end up in ``caller_id``."""
        self.caller_id = {}
        if rings:
            deadline = self.clock() + timeout
            seen = 0
            while seen < rings:
                u = self.at.wait_unsolicited(("RING", "NMBR", "NAME", "DATE", "TIME", "DDI",
                                              "NDID", "MESG"), deadline)
                if u is None:
                    raise DriverTimeoutError(f"{seen} of {rings} rings within {timeout:.0f} s")
                if u.kind == "RING":
                    seen += 1
                else:
                    self.caller_id[u.kind] = u.value
        for u in list(self.at.unsolicited):
            if u.kind != "RING":
                self.caller_id[u.kind] = u.value
        self.at.unsolicited.clear()
        try:
            self.at.send("ATA")
            resp = self.at.wait_result("ATA", self.config.answer_timeout)
        except DriverTimeoutError:
            self._abort_dial()
            raise DialError("TIMEOUT", "ATA: no CONNECT") from None
        if resp.result is not Result.CONNECT:
            raise DialError(resp.result.value)
        self._fire(Input.ANSWERED)

    def hangup(self) -> None:
        """ATH0 (with recovery if the modem is stuck in a data mode)."""
        try:
            self.at.command("ATH0", 5.0, accept=None)
        except DriverTimeoutError:
            self.recover()
        self._reset(settle=True)

    # ------------------------------------------------------------------ one-call helpers
    def send_call(self, number: str, session, *, initialize: bool = True):
        """Initialize, dial, run ``session`` (calling), hang up. DialError if no call."""
        if initialize:
            self.initialize()
        self.dial(number)
        try:
            return self.run_call(session)
        finally:
            self.hangup()

    def answer_call(self, session, *, rings: int | None = 1, timeout: float = 120.0,
                    initialize: bool = True):
        """Initialize, wait for the call, answer, run ``session`` (answering), hang up."""
        if initialize:
            self.initialize()
        self.answer(rings=rings, timeout=timeout)
        try:
            return self.run_call(session)
        finally:
            self.hangup()

    # ------------------------------------------------------------------ the pump
    def now(self) -> float:
        return self.clock() - self._t0

    def run_call(self, session, *, start: bool = True, max_seconds: float = 3600.0):
        """Run ``session`` (made with ``now=0.0``) over the established call until
        it is done; the driver's clock starts at 0 here. Returns ``session.result``.
        The session's events stay queued for the caller (``session.events()``)."""
        self._t0 = self.clock()
        self._queue: deque = deque()
        self._fire(Input.CALL)
        if start:
            self._apply_tcf_quirk(session)
            session.start(self.now())
        hard_end = self.now() + max_seconds
        try:
            while not session.done or self._queue:
                self._queue.extend(session.data_to_send())
                if not self._queue:
                    if session.done:
                        break
                    if self.now() > hard_end:
                        raise DriverTimeoutError("call exceeded max_seconds")
                    self._wait_timer(session)
                    continue
                cmd = self._queue.popleft()
                self._execute(session, cmd)
        except (OSError, DriverError) as exc:
            if isinstance(exc, DriverTimeoutError) or not isinstance(exc, DriverError):
                self._note(f"line lost: {exc}")
            if not session.done:
                session.receive(m.LineLost(str(exc)), self.now())
                self._queue.extend(session.data_to_send())   # session's Hangup, ignored
        return session.result

    def _apply_tcf_quirk(self, session) -> None:
        """Quirks.tolerant_tcf: this modem adds junk to TCF, so a session that kept the
        default TCF rule judges it by profiles.TOLERANT_TCF (a rule its T30Config chose
        is kept). Set before the session starts; the session reads it at the TCF."""
        cfg = getattr(session, "config", None)
        if self.quirks.tolerant_tcf and isinstance(cfg, T30Config) and cfg.tcf_check == TCFCheck():
            session.config = replace(cfg, tcf_check=TOLERANT_TCF)
            self._accommodate(f"tolerant TCF check ({TOLERANT_TCF.min_zero_ms} ms of zeros, "
                              f"{TOLERANT_TCF.max_nonzero} stray octets)")

    def _wait_timer(self, session) -> None:
        t = session.next_timer()
        if t is None:
            # nothing to send, nothing to wait for: the session is stuck
            session.receive(m.LineLost("session idle with no timer"), self.now())
            return
        delay = t - self.now()
        if delay > 0:
            self.sleep(min(delay, 1.0))
        if self.now() >= t:
            session.handle_timer(self.now())

    def _feed(self, session, event: m.ModemEvent) -> None:
        session.receive(event, self.now())
        self._queue.extend(session.data_to_send())

    def _timer_due(self, session) -> bool:
        """Run a due session timer; True if the session now wants something else
        (new commands queued, or done): the current receive must be abandoned."""
        t = session.next_timer()
        if t is None or self.now() < t:
            return False
        session.handle_timer(self.now())
        new = session.data_to_send()
        self._queue.extend(new)
        return bool(new) or session.done

    # FCFs (without the X bit) after which the next high-speed signal is a long-trained TCF
    # or a post-CTC block: DCS 0x82, CTC 0x48 (Table 1/T.30, bits as sent LSB first)
    _RETRAIN_FCF = (0x82, 0x48)

    def _note_v21_frame(self, frame: bytes) -> None:
        if len(frame) >= 3 and (frame[2] & 0xFE) in self._RETRAIN_FCF:
            self._fire(Input.RETRAIN_FRAME)

    def _training(self, mod: m.Modulation, asked_short: bool) -> bool:
        """Whether this high-speed signal uses short training."""
        short = asked_short
        if (not short and self.config.v17_short_training and mod.family is m.Family.V17
                and not self.mode.long_train_next):
            short = True
        self._fire(Input.HIGH_SPEED)
        return short

    # ------------------------------------------------------------------ command execution
    def _execute(self, session, cmd: m.Command) -> None:
        if self.trace:
            self.trace.note(f"t30 -> {cmd!r}"[:300])
        if isinstance(cmd, m.SendSilence):
            if self.mode is Mode.IN_FTH:
                # after ATA the modem is already sending CED then V.21 flags (+FTH=3):
                # an AT+FTS now would be sent as frame data; the gap is the modem's
                self._note("silence skipped: the modem is in +FTH=3 after ATA")
            else:
                self._silence(cmd.ms)
        elif isinstance(cmd, m.SendTone):
            # Class 1 has no tone command: the modem sends CED on ATA and CNG while dialling
            pass
        elif isinstance(cmd, m.SendHDLC):
            if cmd.modulation is m.Modulation.V21:
                self._send_v21(cmd.frames)
            else:
                # flags before the first ECM frame after training (T.30 Annex A: the timing model)
                pre = max(2, int(cmd.modulation.bit_rate * m.HS_FLAGS_MS / 8000))
                data = hdlc.encode(cmd.frames, preamble_flags=pre, closing_flags=ECM_CLOSING_FLAGS)
                self._send_high_speed(cmd.modulation, cmd.short_training, data)
            self._feed(session, m.SendComplete())
        elif isinstance(cmd, m.SendData):
            self._send_high_speed(cmd.modulation, cmd.short_training, cmd.data)
            self._feed(session, m.SendComplete())
        elif isinstance(cmd, m.Receive):
            if self._queue and isinstance(self._queue[0], m.Receive):
                # a later Receive supersedes this one (e.g. CFR sent: the engine queues
                # "frames" then "page data"; the page comes next, so +FRM at once)
                self._note("receive superseded by the next one")
                return
            if cmd.expect is m.Expect.HDLC and cmd.modulation is m.Modulation.V21:
                self._receive_v21(session)
            else:
                self._receive_high_speed(session, cmd)
        elif isinstance(cmd, m.Hangup):
            self.hangup()
        else:
            raise DriverError(f"unknown modem command {cmd!r}")

    def _silence(self, ms: int) -> None:
        n = max(0, min(255, (ms + 9) // 10))
        self.at.command(f"AT+FTS={n}", n / 100 + self.config.command_timeout)
        self._fire(Input.SENT)

    def _pause_before_response(self) -> None:
        # T.30 §5 Notes 3 and 4 / the rig's lesson: 75 ms of silence after the far end's
        # signal before we answer, or our signal races its +FRS/+FRH turnaround
        if self.mode.heard_last and self.quirks.pause_before_response_ms:
            self._silence(self.quirks.pause_before_response_ms)

    V21_SEND_SLACK_S = 3.5    # beyond the line time, for OK/CONNECT after a V.21 frame

    def _send_v21(self, frames: tuple[bytes, ...]) -> None:
        at = self.at
        if not frames:
            return
        if self.mode is not Mode.IN_FTH:                  # ATA left the modem in +FTH=3
            self._pause_before_response()
            at.send("AT+FTH=3")
            resp = at.wait_result("AT+FTH=3", 5.0)
            if resp.result is not Result.CONNECT:
                raise ModemResultError(resp)
        for i, frame in enumerate(frames):
            self._note_v21_frame(frame)
            at.write(dle.frame_for_modem(frame))
            # V.21: the preamble of flags, 8 bits per octet at 300 bit/s, plus slack
            timeout = (m.Modulation.V21.training_s() + (len(frame) + 4) * 8 / 300
                       + self.V21_SEND_SLACK_S)
            resp = at.wait_result("", timeout)
            last = i == len(frames) - 1
            if resp.result is Result.CONNECT and not last:
                continue
            if resp.result is Result.OK and last:
                break
            if resp.result is Result.CONNECT and last:
                # the frame lacked the final bit: end the transmission ourselves
                at.write(dle.DLE_ETX)
                resp = at.wait_result("", 5.0)
                break
            raise ModemResultError(resp)
        self._fire(Input.SENT)

    def _send_high_speed(self, mod: m.Modulation, short: bool, data: bytes) -> None:
        at = self.at
        if self.quirks.ftm_delay_ms:
            self._accommodate(f"extra {self.quirks.ftm_delay_ms} ms before +FTM")
            self.sleep(self.quirks.ftm_delay_ms / 1000)
        short = self._training(mod, short)
        code = mod.class1_code(short)
        cmd = f"AT+FTM={code}"
        at.send(cmd)
        resp = at.wait_result(cmd, 5.0)
        if resp.result is not Result.CONNECT:
            raise ModemResultError(resp)
        self._write_paced(dle.frame_for_modem(data))
        seconds = mod.training_s(short) + len(data) * 8 / mod.bit_rate
        resp = at.wait_result("", seconds + self.quirks.send_drain_margin_s)
        if resp.result is not Result.OK:
            raise ModemResultError(resp)
        self._fire(Input.SENT)

    def _write_paced(self, payload: bytes, step: int = 256, stall_limit_s: float = 90.0) -> None:
        """Write transmit data, obeying XOFF/XON *from* the modem.

        During +FTM/+FTH the modem sends nothing but flow control, so 0x13/0x11
        arriving then can only mean XOFF/XON (a PTY has no CTS line: iaxmodem
        paces the DTE this way). We never send XON/XOFF ourselves: 0x11/0x13
        occur raw in fax data."""
        at = self.at
        port = self._port
        paused = False
        i = 0
        stalled_since = None
        while i < len(payload):
            waiting = getattr(port, "in_waiting", 0)
            if waiting or paused:
                chunk = port.read(max(waiting, 1))
                if chunk and self.trace:
                    self.trace.bytes_in(chunk)
                keep = bytearray()
                for b in chunk:
                    if b == 0x13:
                        if not paused:
                            self._accommodate("modem paces transmit data with XOFF/XON")
                        paused = True
                    elif b == 0x11:
                        paused = False
                    else:
                        keep.append(b)
                at.buf += keep
            # A modem that stops reading (its buffer full: it drains at the line rate,
            # with hysteresis) must not block us in write(): the port's own write
            # timeout would end the call. Wait while the output queue is full, reading
            # XOFF/XON meanwhile, and count it as a stall like XOFF.
            if paused or not _writable(port):
                if stalled_since is None:
                    stalled_since = self.clock()
                elif self.clock() - stalled_since > stall_limit_s:
                    why = "held XOFF" if paused else "stopped taking data"
                    raise DriverTimeoutError(f"modem {why} for {stall_limit_s:.0f} s")
                continue
            stalled_since = None
            at.write(payload[i:i + step])
            i += step

    # ------------------------------------------------------------------ receiving
    def _abort_receive(self) -> None:
        """Abort a pending +FRH/+FRM (T.31: any character) and wait for its result."""
        at = self.at
        at.write(self.quirks.abort_byte)
        deadline = self.clock() + 3.0
        unshield = None
        while True:
            try:
                line = at.read_line(deadline)
            except DriverTimeoutError:
                self.recover()
                return
            if line == "CONNECT":
                # raced the carrier: drain to the end of the data
                unshield = dle.Unshielder(self.quirks.dle_not_doubled)
                while self.clock() < deadline:
                    _, ended, rest = unshield.feed(at.take_raw())
                    if ended:
                        at.push_back(rest)
                        break
                    at.fill(deadline)
                continue
            r = parse_result(line, at.numeric)
            if r and r[0].final:
                return

    def _wait_connect(self, session, cmd: str) -> Response | None:
        """Wait for the result of a receive command, running the session's timers.
        None when a timer made the session give up on this receive (aborted)."""
        at = self.at
        while True:
            if self._timer_due(session):
                self._note(f"{cmd}: T.30 timer expired, aborting the receive")
                self._abort_receive()
                return None
            try:
                line = at.read_line(self.clock() + 0.2)
            except DriverTimeoutError:
                continue
            r = parse_result(line, at.numeric)
            if r is None:
                continue
            if r[0] is Result.RING:
                continue
            return Response(cmd, r[0], r[1])

    def _read_stream(self, session, on_data: Callable[[bytes], None], timeout: float) -> Response | None:
        """After CONNECT: read DLE-shielded data until DLE ETX, then the result code."""
        at = self.at
        unshield = dle.Unshielder(self.quirks.dle_not_doubled)
        deadline = self.clock() + timeout
        while True:
            data, ended, rest = unshield.feed(at.take_raw())
            if data:
                on_data(data)
            if ended:
                at.push_back(rest)
                break
            if self.clock() >= deadline:
                raise DriverTimeoutError("data stream did not end")
            if self._timer_due(session):
                self._abort_receive()
                return None
            at.fill(deadline)
        try:
            return at.wait_result("", 5.0)
        except DriverTimeoutError:
            return Response("", Result.NO_CARRIER)

    def _receive_v21(self, session) -> None:
        at = self.at
        first = True
        while True:
            if self.mode is Mode.IN_FRH:              # ATD's CONNECT: already in +FRH=3
                resp = Response("ATD", Result.CONNECT)
            else:
                at.send("AT+FRH=3")
                resp = self._wait_connect(session, "AT+FRH=3")
                if resp is None:
                    return
            self._fire(Input.RECEIVED)
            if resp.result is Result.FCERROR:
                self._feed(session, m.WrongCarrier(m.Modulation.V21))
                return
            if resp.result is Result.NO_CARRIER or resp.result is Result.ERROR:
                if not first:
                    self._feed(session, m.CarrierDown(m.Modulation.V21))
                    return
                if self._queue or session.done:
                    return
                continue                                 # keep listening: T.30 owns the timers
            if resp.result is not Result.CONNECT:
                raise ModemResultError(resp)
            if first:
                self._feed(session, m.CarrierUp(m.Modulation.V21))
            first = False
            buf = bytearray()

            def take(d: bytes) -> None:
                if len(buf) < 4096:
                    buf.extend(d)
            resp = self._read_stream(session, take, 15.0)
            if resp is None:
                return
            frame = bytes(buf)
            good = resp.result is Result.OK
            if self.quirks.frh_includes_fcs and len(frame) >= 2:
                frame = frame[:-2]
            if resp.result is Result.NO_CARRIER and not frame:
                self._feed(session, m.CarrierDown(m.Modulation.V21))
                return
            if not good and self.quirks.connect_on_any_carrier:
                self._accommodate("CONNECT on a non-V.21 carrier after +FRH: frame ignored")
                self._feed(session, m.CarrierDown(m.Modulation.V21))
                return
            if frame:
                if good:
                    self._note_v21_frame(frame)
                self._feed(session, m.HDLCFrame(frame, good, m.Modulation.V21))
            final = good and len(frame) >= 2 and frame[1] & 0x10
            if final or self._queue or session.done:
                self._feed(session, m.CarrierDown(m.Modulation.V21))
                return

    def _receive_high_speed(self, session, cmd: m.Receive) -> None:
        at = self.at
        mod = cmd.modulation
        code = mod.class1_code(self._training(mod, cmd.short_training))
        atcmd = f"AT+FRM={code}"
        retries = self.quirks.frm_retries_after_fcerror
        while True:
            at.send(atcmd)
            resp = self._wait_connect(session, atcmd)
            if resp is None:
                return
            self._fire(Input.RECEIVED)
            if resp.result is Result.FCERROR:
                if retries > 0:
                    retries -= 1
                    self._accommodate("+FCERROR to +FRM: retried")
                    continue
                self._feed(session, m.WrongCarrier(mod, m.Modulation.V21))
                return
            if resp.result in (Result.NO_CARRIER, Result.ERROR):
                if self._queue or session.done:
                    return
                continue
            if resp.result is not Result.CONNECT:
                raise ModemResultError(resp)
            break
        self._feed(session, m.CarrierUp(mod))
        if cmd.expect is m.Expect.HDLC:
            decoder = hdlc.Decoder()

            def on_data(d: bytes) -> None:
                for f in decoder.feed(d):
                    self._feed(session, m.HDLCFrame(f.frame, f.fcs_ok, mod))
        else:
            def on_data(d: bytes) -> None:
                self._feed(session, m.DataReceived(d, mod))
        # a page at 2400 bit/s of a dense A3 can take minutes; the data's end is
        # DLE ETX, and the session's timers still run meanwhile
        resp = self._read_stream(session, on_data, 1800.0)
        if resp is None:
            return
        self._feed(session, m.CarrierDown(mod))
