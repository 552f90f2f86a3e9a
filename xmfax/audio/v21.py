"""V.21 channel 2 (300 bit/s FSK, T.30's control channel) with HDLC framing, in C.

* :class:`V21Transmitter`: HDLC frames in, samples out. A transmission is one carrier:
  the preamble of flags (T.30 §5.3.1: 1 s), the frames queued, flags while it waits for
  more, and the carrier stops after the closing flag once :meth:`end` was called.
* :class:`V21Receiver`: samples in, :class:`RxEvent` values out: carrier up/down (T.30
  cut-off levels: on above -43 dBm0, off below -48 dBm0), a preamble seen
  (:class:`FramingOK`), each frame with ``fcs_ok``, aborts.
* ``raw=True`` on either side moves bare bits instead of frames (bit error rate tests).

Samples are int16 at 8 kHz in blocks of any size; nothing here keeps time but the
sample count. Channel 1 (980/1180 Hz) is available for completeness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from ._c import as_i16, ffi, i16_in, i16_out, lib, u8_in, u8_out

__all__ = ["V21Config", "V21Transmitter", "V21Receiver", "RxEvent", "CarrierUp",
           "CarrierDown", "FramingOK", "HdlcFrame", "FrameAborted", "FrameTooLong",
           "modulate", "modulate_bits", "demodulate", "BAUD", "RATE"]

RATE = 8000
BAUD = 300
_MODE_RAW, _MODE_HDLC = 0, 1
_EV_FRAME, _EV_ABORT, _EV_FRAMING_OK, _EV_UP, _EV_DOWN, _EV_TOO_LONG = 1, 2, 3, 4, 5, 6


@dataclass(frozen=True, slots=True)
class V21Config:
    channel: int = 2                  # V.21 channel 2 (1650/1850 Hz) is T.30's
    tx_level_dbm0: float = -13.0
    preamble_ms: float = 1000.0       # T.30 §5.3.1: flags for 1 s +/- 15% before the frames
    carrier_on_dbm0: float = -43.0    # V.21's signal detector, as T.30 uses it: on above -43 dBm0
    carrier_off_dbm0: float = -48.0   # ... and off below -48 dBm0
    max_frame: int = 2048             # octets of a frame without its FCS

    def __post_init__(self):
        if self.channel not in (1, 2):
            raise ValueError(f"V.21 channel is 1 or 2, not {self.channel!r}")
        if not -60.0 <= self.tx_level_dbm0 <= 3.0:
            raise ValueError(f"tx_level_dbm0 {self.tx_level_dbm0} is outside -60..+3 dBm0")
        if self.carrier_off_dbm0 > self.carrier_on_dbm0:
            raise ValueError("carrier_off_dbm0 must not be above carrier_on_dbm0")
        if self.preamble_ms < 0 or self.max_frame < 1:
            raise ValueError("preamble_ms must be >= 0 and max_frame >= 1")

    @property
    def preamble_flags(self) -> int:
        return int(round(self.preamble_ms * BAUD / 8000.0))


@dataclass(frozen=True, slots=True)
class RxEvent:
    sample: int          # the receiver's sample count when it happened


@dataclass(frozen=True, slots=True)
class CarrierUp(RxEvent):
    pass


@dataclass(frozen=True, slots=True)
class CarrierDown(RxEvent):
    pass


@dataclass(frozen=True, slots=True)
class FramingOK(RxEvent):
    """Back-to-back flags: a preamble is being received."""


@dataclass(frozen=True, slots=True)
class HdlcFrame(RxEvent):
    data: bytes          # without the FCS
    fcs_ok: bool


@dataclass(frozen=True, slots=True)
class FrameAborted(RxEvent):
    pass


@dataclass(frozen=True, slots=True)
class FrameTooLong(RxEvent):
    pass


_SIMPLE = {_EV_ABORT: FrameAborted, _EV_FRAMING_OK: FramingOK, _EV_UP: CarrierUp,
           _EV_DOWN: CarrierDown, _EV_TOO_LONG: FrameTooLong}


class V21Transmitter:
    """V.21 modulator fed by an HDLC transmitter (or by raw bits with ``raw=True``)."""

    def __init__(self, config: V21Config = V21Config(), *, raw: bool = False):
        self.config = config
        self.raw = raw
        h = lib.xm_fsk_tx_new(config.channel - 1, _MODE_RAW if raw else _MODE_HDLC,
                              float(config.tx_level_dbm0), config.preamble_flags,
                              config.max_frame)
        if h == ffi.NULL:
            raise MemoryError("V.21 transmitter: cannot allocate")
        self._s = ffi.gc(h, lib.xm_fsk_tx_free)
        self.samples_sent = 0

    def queue(self, frame: bytes, *, bad_fcs: bool = False) -> None:
        """Queue one frame (address, control, FCF, FIF; the FCS is added).

        ``bad_fcs`` sends the FCS complemented (for tests of the far end)."""
        if self.raw:
            raise ValueError("a raw-bit transmitter takes bits, not frames")
        frame = bytes(frame)
        if not 1 <= len(frame) <= self.config.max_frame:
            raise ValueError(f"frame length {len(frame)} is outside 1..{self.config.max_frame}")
        if self.done:
            raise ValueError("the carrier has ended; restart() for a new transmission")
        if lib.xm_fsk_tx_frame(self._s, frame, len(frame), int(bad_fcs)) != 0:
            raise OverflowError("V.21 transmit queue is full; take samples first")

    def send_frames(self, frames: Iterable[bytes], *, final: bool = True) -> None:
        """Queue frames; with ``final`` the carrier stops after the last one."""
        for f in frames:
            self.queue(f)
        if final:
            self.end()

    def put_bits(self, bits) -> int:
        """Raw mode: queue bits (0/1 values); returns how many were taken (the queue
        holds 8192)."""
        if not self.raw:
            raise ValueError("put_bits needs a raw-bit transmitter (raw=True)")
        b = np.ascontiguousarray(np.asarray(bits, dtype=np.uint8) & 1)
        return int(lib.xm_fsk_tx_put_bits(self._s, u8_in(b), len(b))) if len(b) else 0

    def abort(self) -> None:
        """Abort the frame being sent and drop the queue (T.30 §5.3.6.1: seven ones)."""
        lib.xm_fsk_tx_abort(self._s)

    def end(self) -> None:
        """No more frames (bits) for this transmission: the carrier stops once they are out."""
        lib.xm_fsk_tx_end(self._s)

    def restart(self) -> None:
        """A new transmission: empty queue, preamble again."""
        lib.xm_fsk_tx_restart(self._s)

    @property
    def done(self) -> bool:
        return bool(lib.xm_fsk_tx_done(self._s))

    def samples(self, n: int) -> np.ndarray:
        """Up to ``n`` samples; fewer only when the carrier stops (then empty)."""
        out = np.empty(int(n), dtype=np.int16)
        got = int(lib.xm_fsk_tx_run(self._s, i16_out(out), len(out))) if n > 0 else 0
        self.samples_sent += got
        return out[:got]

    def drain(self, limit_s: float = 120.0) -> np.ndarray:
        """Every sample until the carrier stops (after :meth:`end`); at most ``limit_s``."""
        parts = []
        left = int(limit_s * RATE)
        while left > 0:
            part = self.samples(min(8000, left))
            parts.append(part)
            left -= len(part)
            if len(part) < 8000 and self.done:
                break
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


class V21Receiver:
    """V.21 demodulator feeding an HDLC receiver (or giving raw bits with ``raw=True``)."""

    def __init__(self, config: V21Config = V21Config(), *, raw: bool = False):
        self.config = config
        self.raw = raw
        h = lib.xm_fsk_rx_new(config.channel - 1, _MODE_RAW if raw else _MODE_HDLC,
                              float(config.carrier_on_dbm0), float(config.carrier_off_dbm0),
                              config.max_frame)
        if h == ffi.NULL:
            raise MemoryError("V.21 receiver: cannot allocate")
        self._s = ffi.gc(h, lib.xm_fsk_rx_free)
        self._ev = ffi.new("xm_rx_event *")
        self._buf = ffi.new("uint8_t[]", config.max_frame + 2)
        self._bits: list[np.ndarray] = []
        self.samples_received = 0

    def _pop(self, events: list) -> None:
        ev, buf = self._ev, self._buf
        while lib.xm_fsk_rx_next(self._s, ev, buf, len(buf)):
            if ev.type == _EV_FRAME:
                events.append(HdlcFrame(int(ev.sample), bytes(ffi.buffer(buf, ev.len)),
                                        bool(ev.ok)))
            else:
                events.append(_SIMPLE[ev.type](int(ev.sample)))
        if self.raw:
            tmp = np.empty(8192, dtype=np.uint8)
            while True:
                n = int(lib.xm_fsk_rx_bits(self._s, u8_out(tmp), len(tmp)))
                if not n:
                    break
                self._bits.append(tmp[:n].copy())

    def receive(self, samples) -> list[RxEvent]:
        """Demodulate a block; return the events it completed, in order."""
        x = as_i16(samples)
        return self._receive_ptr(i16_in(x), len(x))

    def _receive_ptr(self, ptr, n: int, done: int | None = None) -> list[RxEvent]:
        """:meth:`receive` over ``n`` int16 samples at a cffi pointer; ``done``: how many
        of them were run already (by xm_listen_run)."""
        events: list[RxEvent] = []
        run, s = lib.xm_fsk_rx_run, self._s
        if done is None:
            done = 0
        else:
            self._pop(events)
        while done < n:
            done += int(run(s, ptr + done, n - done))
            self._pop(events)
        self.samples_received += n
        return events

    def bits(self) -> np.ndarray:
        """Raw mode: the bits demodulated since the last call (uint8 0/1)."""
        if not self.raw:
            raise ValueError("bits() needs a raw-bit receiver (raw=True)")
        out = np.concatenate(self._bits) if self._bits else np.zeros(0, np.uint8)
        self._bits = []
        return out

    def reset(self) -> None:
        lib.xm_fsk_rx_reset(self._s)

    def set_framing_flags(self, flags: int) -> None:
        """How many back-to-back flags make a preamble (FramingOK) from now on (2 when made)."""
        if flags < 1:
            raise ValueError("framing flags must be >= 1")
        lib.xm_fsk_rx_set_framing_flags(self._s, int(flags))

    @property
    def carrier(self) -> bool:
        return bool(lib.xm_fsk_rx_carrier(self._s))

    @property
    def power_dbm0(self) -> float:
        """The in-band power now (both tones' correlators), in dBm0."""
        return float(lib.xm_fsk_rx_power_dbm0(self._s))

    @property
    def stats(self) -> dict[str, int]:
        s = ffi.new("long long[6]")
        lib.xm_fsk_rx_stats(self._s, s)
        names = ("frames_ok", "frames_bad_fcs", "aborts", "too_long", "not_octets", "too_short")
        return {k: int(v) for k, v in zip(names, s)}


def modulate(frames: Iterable[bytes], config: V21Config = V21Config()) -> np.ndarray:
    """One carrier holding ``frames``: preamble, frames, closing flag."""
    tx = V21Transmitter(config)
    tx.send_frames(frames)
    return tx.drain()


def modulate_bits(bits, config: V21Config = V21Config()) -> np.ndarray:
    """One carrier holding ``bits`` (raw, no framing), however many."""
    tx = V21Transmitter(config, raw=True)
    rest = np.asarray(bits, dtype=np.uint8)
    parts = []
    while len(rest):
        n = tx.put_bits(rest)
        rest = rest[n:]
        if len(rest):
            parts.append(tx.samples(n * RATE // BAUD))
    tx.end()
    parts.append(tx.drain(limit_s=len(bits) / BAUD + 10.0))
    return np.concatenate(parts)


def demodulate(samples, config: V21Config = V21Config()) -> list[HdlcFrame]:
    """Every frame found in ``samples`` (bad FCS included, ``fcs_ok`` False)."""
    rx = V21Receiver(config)
    events = rx.receive(samples)
    events += rx.receive(np.zeros(400, np.int16))     # let the last flag through the filters
    return [e for e in events if isinstance(e, HdlcFrame)]
