"""The fax tones, in C: CNG, CED/ANS, ANSam (with or without phase reversals).

* CNG (T.30): 1100 Hz, 0.5 s on, 3 s off, from the calling fax.
* CED (T.30) = ANS (V.25): 2100 Hz for 2.6 to 4 s from the answering one;
  ``ANS_PR`` reverses the phase every 450 ms (V.25: to disable echo cancellers).
* ANSam (V.8): ANS amplitude-modulated by 15 Hz at 20%; ``ANSAM_PR`` likewise.

:class:`ToneGenerator` makes them; :class:`ToneDetector` hears them in any samples,
tolerant in frequency (CNG +/- 38 Hz, ANS +/- 15 Hz, with a measurement margin) and level
(down to T.30's -43 dBm0 cut-off), and rejects speech and noise. It reports
:class:`ToneOn` once a tone has lasted long enough to be sure (an ANS may be followed
by an ``ANS_PR`` report once a reversal is heard) and :class:`ToneOff` when it ends.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from ._c import as_i16, ffi, i16_in, i16_out, lib

__all__ = ["Tone", "ToneGenerator", "ToneDetector", "ToneDetectorConfig", "ToneEvent",
           "ToneOn", "ToneOff", "generate", "detect"]

RATE = 8000


class Tone(enum.IntEnum):
    CNG = 1
    ANS = 2           # = CED
    ANS_PR = 3
    ANSAM = 4
    ANSAM_PR = 5

    CED = 2           # T.30's name for ANS (an alias)


class ToneGenerator:
    """One tone: CNG repeats its cadence (for ``duration_ms`` or for ever), the others
    last ``duration_ms`` (default 3.3 s, the middle of T.30's 2.6-4 s)."""

    def __init__(self, tone: Tone | int, level_dbm0: float = -13.0,
                 duration_ms: float | None = None):
        self.tone = Tone(tone)
        if not -60.0 <= level_dbm0 <= 3.0:
            raise ValueError(f"level_dbm0 {level_dbm0} is outside -60..+3 dBm0")
        dur = 0 if duration_ms is None else int(round(duration_ms * RATE / 1000))
        if duration_ms is not None and dur <= 0:
            raise ValueError("duration_ms must be positive")
        h = lib.xm_tone_tx_new(int(self.tone), float(level_dbm0), dur)
        if h == ffi.NULL:
            raise MemoryError("tone generator: cannot allocate")
        self._s = ffi.gc(h, lib.xm_tone_tx_free)
        self.done = False

    def samples(self, n: int) -> np.ndarray:
        """Up to ``n`` samples; fewer once the tone is over."""
        out = np.empty(max(int(n), 0), dtype=np.int16)
        got = int(lib.xm_tone_tx_run(self._s, i16_out(out), len(out))) if len(out) else 0
        if got < len(out):
            self.done = True
        return out[:got]


def generate(tone: Tone | int, n: int | None = None, *, level_dbm0: float = -13.0,
             duration_ms: float | None = None) -> np.ndarray:
    """``n`` samples of a tone (CNG: its cadence), or the whole tone when ``n`` is None
    (not for an endless CNG)."""
    g = ToneGenerator(tone, level_dbm0, duration_ms)
    if n is None:
        if g.tone == Tone.CNG and duration_ms is None:
            raise ValueError("an endless CNG needs n")
        n = int(round((duration_ms or 3300.0) * RATE / 1000))
    return g.samples(n)


@dataclass(frozen=True, slots=True)
class ToneDetectorConfig:
    detect_cng: bool = True
    detect_ans: bool = True              # ANS/CED, ANSam, with or without reversals
    on_dbm0: float = -43.0               # the carriers' cut-off levels (V.21 as T.30 uses it)
    off_dbm0: float = -48.0
    cng_tolerance_hz: float = 38.0 + 7.0   # T.30: CNG +/- 38 Hz (+ measuring margin)
    ans_tolerance_hz: float = 15.0 + 7.0   # V.25: ANS +/- 15 Hz
    cng_min_ms: int = 350                # bursts are 0.5 s +/- 15%
    ans_min_ms: int = 400                # six periods of ANSam's 15 Hz modulation
    min_purity: float = 0.5              # share of the power within ~100 Hz of the tone

    def __post_init__(self):
        if self.off_dbm0 > self.on_dbm0:
            raise ValueError("off_dbm0 must not be above on_dbm0")
        if not 0.0 < self.min_purity <= 1.0:
            raise ValueError("min_purity is in (0, 1]")
        if self.cng_min_ms < 10 or self.ans_min_ms < 10:
            raise ValueError("minimum durations are at least 10 ms")
        if not (0 < self.cng_tolerance_hz < 100 and 0 < self.ans_tolerance_hz < 100):
            raise ValueError("frequency tolerances are in (0, 100) Hz")


@dataclass(frozen=True, slots=True)
class ToneEvent:
    tone: Tone
    sample: int           # the detector's sample count at the report


@dataclass(frozen=True, slots=True)
class ToneOn(ToneEvent):
    level_dbm0: float
    freq_hz: float
    am_depth: float       # 15 Hz modulation depth measured (ANSam: ~0.2)


@dataclass(frozen=True, slots=True)
class ToneOff(ToneEvent):
    duration_ms: float


class ToneDetector:
    """CNG / ANS / ANSam detector: samples in, :class:`ToneOn`/:class:`ToneOff` out."""

    def __init__(self, config: ToneDetectorConfig = ToneDetectorConfig()):
        self.config = config
        c = ffi.new("xm_tone_rx_config *")
        c.detect_cng = int(config.detect_cng)
        c.detect_ans = int(config.detect_ans)
        c.on_dbm0 = config.on_dbm0
        c.off_dbm0 = config.off_dbm0
        c.cng_tol_hz = config.cng_tolerance_hz
        c.ans_tol_hz = config.ans_tolerance_hz
        c.cng_min_ms = int(config.cng_min_ms)
        c.ans_min_ms = int(config.ans_min_ms)
        c.min_purity = config.min_purity
        h = lib.xm_tone_rx_new(c)
        if h == ffi.NULL:
            raise MemoryError("tone detector: cannot allocate")
        self._s = ffi.gc(h, lib.xm_tone_rx_free)
        self._ev = ffi.new("xm_tone_event *")
        self.samples_received = 0

    def receive(self, samples) -> list[ToneEvent]:
        x = as_i16(samples)
        return self._receive_ptr(i16_in(x), len(x))

    def _receive_ptr(self, ptr, n: int, done: int | None = None) -> list[ToneEvent]:
        """:meth:`receive` over ``n`` int16 samples at a cffi pointer; ``done``: how many
        of them were run already (by xm_listen_run)."""
        events: list[ToneEvent] = []
        ev, s = self._ev, self._s
        run, nxt = lib.xm_tone_rx_run, lib.xm_tone_rx_next
        if done is None:
            done = int(run(s, ptr, n)) if n else 0
        while True:
            while nxt(s, ev):
                tone = Tone(ev.tone)
                if ev.on:
                    events.append(ToneOn(tone, int(ev.sample), float(ev.level_dbm0),
                                         float(ev.freq_hz), float(ev.am_depth)))
                else:
                    events.append(ToneOff(tone, int(ev.sample), float(ev.duration_ms)))
            if done >= n:
                break
            done += int(run(s, ptr + done, n - done))
        self.samples_received += n
        return events


def detect(samples, config: ToneDetectorConfig = ToneDetectorConfig()) -> list[ToneEvent]:
    """Every tone event in ``samples`` followed by 100 ms of silence (so tones end)."""
    d = ToneDetector(config)
    return d.receive(samples) + d.receive(np.zeros(800, np.int16))
