"""V.27 ter fax modem (ITU-T V.27 ter): 4800 bit/s (1600 baud, 8-phase DPSK) and
2400 bit/s (1200 baud, 4-phase), 1800 Hz carrier, in C (native/audio/v27ter.c).

:class:`V27terTx`: bits in (:meth:`~V27terTx.put_bits`), int16 8 kHz samples out
(:meth:`~V27terTx.generate`), starting with the long or short training sequence of
V.27 ter (the ones T.30 uses), then the scrambled data; :meth:`~V27terTx.finish`
ends the transmission once the queued bits are sent.

:class:`V27terRx`: samples in, data bits out (:meth:`~V27terRx.receive`), with status
changes (carrier up/down, training succeeded/failed) from :meth:`~V27terRx.events`.
The receiver detects the carrier (on above -43 dBm0, off below -48 dBm0), trains its
equaliser on the training sequence (long or short, found by itself) and delivers the
bits that follow it; a T.30 engine judges TCF on those.

The classes here are shared with :mod:`xmfax.audio.v29` (same shape, other C functions).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ._c import as_i16, ffi, i16_in, i16_out, lib, u8_in, u8_out

__all__ = ["ModemStatus", "V27terTx", "V27terRx", "CARRIER_UP", "CARRIER_DOWN",
           "TRAINING_SUCCEEDED", "TRAINING_FAILED", "DROPOUT", "RESUMED"]

CARRIER_UP, CARRIER_DOWN = "carrier-up", "carrier-down"
TRAINING_SUCCEEDED, TRAINING_FAILED = "training-succeeded", "training-failed"
# a dropout ridden through (native/audio/hold.h): the bits from DROPOUT's to RESUMED's are the
# gap's (decoded from silence) and the resumption check's
DROPOUT, RESUMED = "dropout", "resumed"
_EVENT_NAMES = {1: CARRIER_UP, 2: CARRIER_DOWN, 3: TRAINING_SUCCEEDED, 4: TRAINING_FAILED,
                5: DROPOUT, 6: RESUMED}
_STATES = {0: "idle", 1: "training", 2: "data", 3: "failed"}
_NO_BITS = np.zeros(0, dtype=np.uint8)
_NO_BITS.flags.writeable = False


@dataclass(frozen=True, slots=True)
class ModemStatus:
    """A receiver status change; ``bit`` counts the data bits delivered before it."""
    kind: str
    bit: int

    def __post_init__(self):
        if self.kind not in _EVENT_NAMES.values():
            raise ValueError(f"unknown modem status {self.kind!r}")


def _bits(bits) -> np.ndarray:
    a = np.asarray(bits)
    if a.ndim != 1:
        raise ValueError(f"bits must be a 1-D array, not shape {a.shape}")
    if a.size and (a.min() < 0 or a.max() > 1):
        raise ValueError("bits must be 0 or 1")
    return np.ascontiguousarray(a, dtype=np.uint8)


class _PskTx:
    _prefix: ClassVar[str]
    RATES: ClassVar[tuple[int, ...]]

    def _new(self, rate: int, long_train: bool, tep: bool, level_dbm0: float):
        return getattr(lib, f"{self._prefix}_new")(rate, int(bool(long_train)), int(bool(tep)),
                                                   float(level_dbm0))

    def __init__(self, rate: int, *, long_train: bool = True, tep: bool = False,
                 level_dbm0: float = -10.0):
        if rate not in self.RATES:
            raise ValueError(f"{type(self).__name__}: rate must be one of {self.RATES}, not {rate!r}")
        if not -60.0 <= level_dbm0 <= 3.0:
            raise ValueError(f"level_dbm0 {level_dbm0} outside -60..+3 dBm0")
        self.rate = rate
        ptr = self._new(rate, long_train, tep, level_dbm0)
        if ptr == ffi.NULL:
            raise MemoryError(f"{self._prefix}_new failed")
        self._s = ffi.gc(ptr, getattr(lib, f"{self._prefix}_free"))
        self._put = getattr(lib, f"{self._prefix}_put_bits")
        self._generate = getattr(lib, f"{self._prefix}_generate")
        self._done = getattr(lib, f"{self._prefix}_done")
        self._pending = np.zeros(0, dtype=np.uint8)
        self._finished = False
        self._told_finish = False

    def put_bits(self, bits) -> None:
        """Queue data bits (0/1) to send after the training (or after earlier bits).

        If the queue runs dry before :meth:`finish`, the transmitter keeps the line up
        with (scrambled) binary ones until more bits come, as a modem does."""
        if self._finished:
            raise ValueError("put_bits after finish()")
        b = _bits(bits)
        self._pending = np.concatenate([self._pending, b]) if len(self._pending) else b
        self._feed()

    def _feed(self) -> None:
        if len(self._pending):
            took = self._put(self._s, u8_in(self._pending), len(self._pending))
            self._pending = self._pending[took:]
        if self._finished and not len(self._pending) and not self._told_finish:
            getattr(lib, f"{self._prefix}_finish")(self._s)
            self._told_finish = True         # (the C call only sets a flag: once is enough)

    def finish(self) -> None:
        """No more bits: after the queued ones, send the turn-off and stop."""
        self._finished = True
        self._feed()

    def generate(self, n: int) -> np.ndarray:
        """The next ``n`` samples (silence once the transmission has ended)."""
        if n < 0:
            raise ValueError("n must be >= 0")
        out = np.zeros(n, dtype=np.int16)
        self.generate_into(out)
        return out

    def generate_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (int16, C-contiguous) with the next ``len(out)`` samples; returns
        how many of them are signal (the rest, after the end of the transmission, are 0)."""
        n = len(out)
        ptr = i16_out(out)
        done = signal = 0
        while done < n:
            if len(self._pending) or (self._finished and not self._told_finish):
                self._feed()
            step = min(n - done, 800)
            signal += self._generate(self._s, ptr + done, step)
            done += step
        return signal

    def generate_all(self, limit: int = 8000 * 600) -> np.ndarray:
        """Every sample to the end of the transmission (call :meth:`finish` first)."""
        if not self._finished:
            raise ValueError("generate_all() needs finish() first, or it would never end")
        parts = []
        total = 0
        while not self.done:
            if total >= limit:
                raise RuntimeError(f"transmission longer than {limit} samples")
            parts.append(self.generate(1600))
            total += 1600
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)

    @property
    def done(self) -> bool:
        return bool(self._done(self._s)) and not len(self._pending)


class _PskRx:
    _prefix: ClassVar[str]
    RATES: ClassVar[tuple[int, ...]]

    def __init__(self, rate: int):
        if rate not in self.RATES:
            raise ValueError(f"{type(self).__name__}: rate must be one of {self.RATES}, not {rate!r}")
        self.rate = rate
        ptr = getattr(lib, f"{self._prefix}_new")(rate)
        if ptr == ffi.NULL:
            raise MemoryError(f"{self._prefix}_new failed")
        self._s = ffi.gc(ptr, getattr(lib, f"{self._prefix}_free"))
        self._process = getattr(lib, f"{self._prefix}_process")
        self._take = getattr(lib, f"{self._prefix}_events")
        self._codes = ffi.new("int[32]")
        self._at = ffi.new("long[32]")
        self._events: list[ModemStatus] = []
        self._out = np.empty(0, dtype=np.uint8)      # the bits buffer, grown as needed
        self._outp = u8_out(self._out)

    def restart(self, rate: int | None = None) -> None:
        """Back to waiting for a carrier (optionally at another rate)."""
        if rate is not None:
            if rate not in self.RATES:
                raise ValueError(f"rate must be one of {self.RATES}, not {rate!r}")
            self.rate = rate
        getattr(lib, f"{self._prefix}_restart")(self._s, self.rate)
        self._events.clear()

    # bits out beyond 2 a sample: V.17 its decoder's flush; V.29 and V.27 ter the bits a
    # dropout hold kept back and delivers at once when the signal resumes (hold.h XM_HOLD_BITS)
    SLACK = 64 + 2048

    def receive(self, samples) -> np.ndarray:
        """Process samples (any block size); returns the data bits received (uint8 0/1)."""
        x = as_i16(samples)
        return self._receive_ptr(i16_in(x), len(x))

    def _receive_ptr(self, ptr, n: int) -> np.ndarray:
        """:meth:`receive` over ``n`` int16 samples at a cffi pointer (the terminal makes
        one pointer for all its receivers)."""
        got = 0
        if n:
            outp, cap = self._bits_buffer(n)
            got = self._process(self._s, ptr, n, outp, cap)
        self._collect()
        return self._out[:got].copy() if got else _NO_BITS

    def _bits_buffer(self, n: int):
        """(pointer, capacity) of the bits buffer, room for ``n`` samples' bits."""
        cap = 2 * n + self.SLACK
        if len(self._out) < cap:
            self._out = np.empty(max(cap, 2 * 160 + self.SLACK), dtype=np.uint8)
            self._outp = u8_out(self._out)
        return self._outp, cap

    def _listened(self, lo) -> np.ndarray:
        """What :func:`xm_listen_run` (``lo``, an xm_listen_out) gave for this receiver:
        its bits, and its events queued as :meth:`_collect` queues them."""
        k = lo.hs_events
        for i in range(k):
            self._events.append(ModemStatus(_EVENT_NAMES[lo.codes[i]], int(lo.at[i])))
        if k == 32:
            self._collect()
        got = lo.nbits
        return self._out[:got].copy() if got else _NO_BITS

    def _collect(self) -> None:
        take = self._take
        while True:
            n = take(self._s, self._codes, self._at, 32)
            for i in range(n):
                self._events.append(ModemStatus(_EVENT_NAMES[self._codes[i]], int(self._at[i])))
            if n < 32:
                break

    def events(self) -> list[ModemStatus]:
        """Status changes since the last call."""
        ev, self._events = self._events, []
        return ev

    @property
    def carrier(self) -> bool:
        return bool(getattr(lib, f"{self._prefix}_carrier")(self._s))

    @property
    def state(self) -> str:
        """'idle' (no carrier), 'training', 'data' (trained, delivering bits) or 'failed'
        (a training failed; the receiver is still looking for a new one while the carrier
        lasts, and says 'data' if it finds one)."""
        return _STATES[getattr(lib, f"{self._prefix}_state")(self._s)]

    @property
    def signal_dbm0(self) -> float:
        return float(getattr(lib, f"{self._prefix}_signal_dbm0")(self._s))

    @property
    def mse(self) -> float:
        """Mean square error of the equalised symbols, relative to the constellation power."""
        return float(getattr(lib, f"{self._prefix}_mse")(self._s))


class V27terTx(_PskTx):
    """V.27 ter transmitter, ``rate`` 4800 or 2400 bit/s."""
    _prefix = "xm_v27ter_tx"
    RATES = (4800, 2400)


class V27terRx(_PskRx):
    """V.27 ter receiver, ``rate`` 4800 or 2400 bit/s."""
    _prefix = "xm_v27ter_rx"
    LISTEN_KIND = lib.XM_LISTEN_HS_V27TER
    RATES = (4800, 2400)
