"""The audio fax terminal: a T.30 Session driven over the C modems, sans-IO.

The terminal stands where a fax modem would on an analogue or G.711 line: it turns
the session's modem commands (:mod:`xmfax.t30.modem`) into samples, and samples from
the far end into modem events. Samples are int16 at 8 kHz; time is passed in, nothing
here sleeps or reads a socket. A driver pumps it::

    term = AudioTerminal(session, AudioConfig(), now)
    term.start(now)
    every block (say 20 ms):
        line_out = term.samples_to_send(160, now)      # always 160 samples (silence when idle)
        term.receive_samples(line_in, now)             # what the far end sent
        term.handle_timer(now) when now >= term.next_timer()
    until term.done

Transmission (each command in line order; the next starts when one has gone):
  SendSilence  -> that many ms of zeros (T.30 §5 Notes 3 and 4: the 75 ms gap before a signal)
  SendTone     -> CED (2100 Hz, 3 s unless told) or CNG (1100 Hz, 0.5 s on; with
                  ``AudioConfig.cng_repeat`` its 0.5 s on / 3 s off cadence goes on until
                  something is heard or the session has something else to send, T.30 §4.1)
  SendHDLC     -> V.21 ch 2: 1 s of flags (T.30 §5.3.1), the frames, the closing flag;
                  at a high-speed modulation (ECM, T.30 Annex A): training, 200 ms of flags,
                  the frames, closing flags, the modem's turn-off
  SendData     -> training, then the bytes LSB first (TCF: zeros; a non-ECM page), turn-off
  SendComplete is reported when the last sample of a SendHDLC / SendData has been taken.

Reception: a V.21 ch 2 receiver listens (T.30's fallback: a V.21 signal may come where
high-speed data was expected), except while a high-speed carrier is trained (it starts
afresh when that carrier drops); the high-speed receiver of the modulation named by the
session's last ``Receive`` listens beside it. A V.21 signal is announced when its
flags are recognised (its energy detector alone would also fire on a V.29 or V.27 ter
carrier, which overlaps 1650-1850 Hz); a high-speed signal when its training succeeds.
  V.21 flags           -> CarrierUp(V21) (first WrongCarrier(expected, V21) if a
                          high-speed signal was expected), HDLCFrame per frame,
                          CarrierDown(V21) when the carrier drops
  high-speed training  -> CarrierUp(mod); the data as DataReceived (Expect.DATA) or
                          HDLCFrame(modulation=mod) (Expect.HDLC); CarrierDown(mod)
  CNG / CED            -> ToneDetected

Only the modems that exist are offered: :func:`available_modulations` lists them and
:meth:`AudioConfig.limit_t30` narrows a T.30 configuration to them.
"""
from __future__ import annotations

import dataclasses
import importlib
import math
from collections import Counter, deque
from dataclasses import dataclass, field

import numpy as np

from ..t30 import modem as M
from ..t30.fcf import FCF, split
from . import tones as T
from ._c import ffi, lib
from .hsbits import (BATCH_MS, HOLD_MS, MAX_FRAME, TURNOFF_ONES, _Deframer, _hdlc_bits,  # noqa: F401
                     _lsb_bits, _RawData, _turnoff_start)
from .v21 import V21Config, V21Receiver, V21Transmitter
from .v21 import CarrierDown as V21Down
from .v21 import FramingOK as V21Framing
from .v21 import HdlcFrame as V21Frame
from .v27ter import CARRIER_DOWN, RESUMED, TRAINING_FAILED, TRAINING_SUCCEEDED, V27terRx, V27terTx
from .v29 import V29Rx, V29Tx

__all__ = ["AudioConfig", "AudioTerminal", "AudioStats", "available_modulations", "RATE"]

RATE = 8000
Mod = M.Modulation
Family = M.Family

_LOOK_TONE, _LOOK_HS, _LOOK_V21 = lib.XM_LISTEN_TONE, lib.XM_LISTEN_HS, lib.XM_LISTEN_V21
_INT16 = np.dtype(np.int16)
# After our own signal ends its echo goes on for the echo path's delay (up to tens of ms on
# a telephone line); the far end answers no sooner than 75 ms after it (T.30 §5 Note 3).
ECHO_GUARD_MS = 60
# Back-to-back V.21 flags that announce a V.21 signal (T.30 §5.3.1: a preamble of 1 s of flags,
# about 37). Two when only V.21 is expected; more while a high-speed signal is expected, whose
# carrier the FSK receiver hears too (V.27 ter at 1800 Hz and V.29 at 1700 Hz lie in V.21
# channel 2's band): under noise it now and then makes two flags out of a V.27 ter training,
# and a V.21 signal announced there stops the high-speed receiver (WrongCarrier) and loses
# the page. A real V.21 signal where high speed was expected is still recognised, 53 ms
# (two flags) later.
V21_FLAGS = 2
V21_FLAGS_BESIDE_HS = 4


def _modem_classes() -> dict[Family, tuple[type, type]]:
    """(transmitter, receiver) classes of each high-speed family built into xmfax._modems."""
    found = {Family.V27TER: (V27terTx, V27terRx), Family.V29: (V29Tx, V29Rx)}
    try:       # V.17 is optional until its modem is in the tree
        v17 = importlib.import_module(f"{__package__}.v17")
        found[Family.V17] = (v17.V17Tx, v17.V17Rx)
    except (ImportError, AttributeError):
        pass
    return found


_CLASSES = _modem_classes()


def available_modulations() -> frozenset[Mod]:
    """Every modulation this terminal can send and receive."""
    return frozenset(m for m in Mod if m is Mod.V21 or m.family in _CLASSES)


@dataclass(frozen=True, slots=True)
class AudioConfig:
    """How the audio terminal uses the line."""

    v21_level_dbm0: float = -13.0      # transmit levels (T.30 allows 0 to -15 dBm; -13 is usual)
    hs_level_dbm0: float = -13.0
    tone_level_dbm0: float = -13.0
    # the timing model's values (xmfax/t30/modem.py), as the T.38 terminal and pair.py use them
    v21_preamble_ms: float = float(M.V21_PREAMBLE_MS)   # T.30 §5.3.1: 1 s of flags before V.21 frames
    hs_flags_ms: float = float(M.HS_FLAGS_MS)           # flags between high-speed training and frames
    hs_closing_flags: int = 4          # flags after the last ECM frame, before the turn-off
    cng_repeat: bool = True            # CNG keeps its cadence until something is heard
    detect_tones: bool = True          # report CNG / CED (ToneDetected)

    def __post_init__(self) -> None:
        for name in ("v21_level_dbm0", "hs_level_dbm0", "tone_level_dbm0"):
            v = getattr(self, name)
            if not -60.0 <= v <= 0.0:
                raise ValueError(f"{name} {v} is outside -60..0 dBm0")
        if not 0.0 <= self.v21_preamble_ms <= 2000.0:
            raise ValueError(f"v21_preamble_ms {self.v21_preamble_ms} is outside 0..2000")
        if not 0.0 <= self.hs_flags_ms <= 1000.0:
            raise ValueError(f"hs_flags_ms {self.hs_flags_ms} is outside 0..1000")
        if not 1 <= self.hs_closing_flags <= 100:
            raise ValueError("hs_closing_flags is 1..100")

    def replace(self, **kw) -> "AudioConfig":
        return dataclasses.replace(self, **kw)

    @staticmethod
    def limit_t30(t30_config):
        """``t30_config`` offering only the modems this terminal has (and a max_rate
        no faster than the fastest of them)."""
        fams = frozenset(f for f in t30_config.modems if f in _CLASSES)
        if not fams:
            raise ValueError("none of the T.30 configuration's modems exists in xmfax.audio")
        top = max(m.bit_rate for m in available_modulations() if m.family in fams)
        return dataclasses.replace(t30_config, modems=fams, max_rate=min(t30_config.max_rate, top))


@dataclass
class AudioStats:
    samples_sent: int = 0
    samples_received: int = 0
    frames_received: int = 0            # V.21 and high-speed HDLC frames with a good FCS
    frames_bad: int = 0
    trainings: int = 0                  # high-speed trainings recognised
    training_failures: int = 0
    wrong_carrier: int = 0              # V.21 heard where high speed was expected
    tones: Counter = field(default_factory=Counter)
    ignored: Counter = field(default_factory=Counter)


# --------------------------------------------------------------------------- transmit sources
class _Source:
    """Samples of one command. ``take(n)`` gives at most ``n``; ``done`` once all are out."""

    command = None                      # the command it sends (detach hands it over)

    report = False                      # SendComplete when done (SendHDLC / SendData)
    interruptible = False               # may be cut short by the next command
    mutes = True                        # our receivers are deaf while it is sent
    started = False
    done = False

    def take(self, n: int) -> np.ndarray:
        raise NotImplementedError


class _Silence(_Source):
    mutes = False

    def __init__(self, ms: float):
        self.left = int(round(ms * RATE / 1000))
        self.done = self.left <= 0

    def take(self, n: int) -> np.ndarray:
        k = min(n, self.left)
        self.left -= k
        self.done = self.left <= 0
        return np.zeros(k, np.int16)


def tone_ms(tone: M.Tone) -> int:
    """How long a CNG or CED we send lasts, from the timing model."""
    return M.CNG_MS if tone is M.Tone.CNG else M.CED_MS


class _Tone(_Source):
    def __init__(self, tone: M.Tone, ms: int, level: float, endless_cng: bool):
        kind = T.Tone.CNG if tone is M.Tone.CNG else T.Tone.ANS
        if endless_cng:
            self.gen = T.ToneGenerator(kind, level)            # the cadence, for ever
            self.interruptible = True
            self.mutes = False          # the answer (CED, DIS) may come during it
        else:
            # the tone lengths of the timing model (T.30 §4.1 CNG, §4.2 CED), read when used
            self.gen = T.ToneGenerator(kind, level, duration_ms=ms or tone_ms(tone))

    def take(self, n: int) -> np.ndarray:
        out = self.gen.samples(n)
        self.done = self.gen.done
        return out


class _V21Send(_Source):
    report = True

    def __init__(self, frames, config: V21Config):
        self.tx = V21Transmitter(config)
        self.tx.send_frames(frames)

    def take(self, n: int) -> np.ndarray:
        out = self.tx.samples(n)
        self.done = len(out) < n or self.tx.done
        return out


class _PskSend(_Source):
    """A high-speed transmission: training, the bits, turn-off (V.27 ter / V.29 / V.17)."""

    report = True
    STEP = 80                            # samples generated between checks for the end (10 ms)

    def __init__(self, mod: Mod, bits: np.ndarray, short: bool, level: float):
        tx_cls = _CLASSES[mod.family][0]
        long_train = not (short and mod.family is Family.V17)   # only V.17 has a short train in T.30
        self.tx = tx_cls(mod.bit_rate, long_train=long_train, level_dbm0=level)
        self.tx.put_bits(bits)
        self.tx.finish()
        self.pos = 0
        self.end = None                  # where the signal stopped, from the start

    def take(self, n: int) -> np.ndarray:
        # The end is looked for every STEP samples from the start of the transmission, so
        # the signal (and when the next one starts) does not depend on the block sizes
        # asked: the transmission is the signal and the zeros after it to the first STEP
        # boundary at or after its end. The modem is asked for whole blocks at once (after
        # its end it gives zeros) and the block is cut at that boundary.
        out = np.empty(n, np.int16)
        if self.end is None and n:
            signal = self.tx.generate_into(out)
            if signal < n or self.tx.done:
                self.end = self.pos + signal
        else:
            out[:] = 0
        k = n
        if self.end is not None:
            stop = -(-self.end // self.STEP) * self.STEP
            if stop <= self.pos + n:
                k = stop - self.pos
                self.done = True
        self.pos += k
        return out[:k]


_LINE_COMMANDS = (M.SendSilence, M.SendTone, M.SendHDLC, M.SendData)


def _retrains(frame: bytes) -> bool:
    """A DCS or CTC frame: the next high-speed signal starts with a long training."""
    return len(frame) >= 3 and split(frame[2])[0] in (FCF.DCS, FCF.CTC)


# --------------------------------------------------------------------------- the terminal
class AudioTerminal:
    """Runs one T.30 ``Session`` over audio samples. See the module docstring."""

    def __init__(self, session, config: AudioConfig | None = None, now: float = 0.0):
        self.session = session
        self.config = cfg = config or AudioConfig()
        t30cfg = getattr(session, "config", None)
        fams = getattr(t30cfg, "modems", None)
        if fams is not None:
            missing = sorted(f.value for f in fams if f not in _CLASSES)
            if missing:
                raise ValueError(f"the T.30 session offers {', '.join(missing)}, which xmfax.audio "
                                 "does not have: build it with AudioConfig.limit_t30(config)")
        self.stats = AudioStats()
        self._v21cfg = V21Config(tx_level_dbm0=cfg.v21_level_dbm0, preamble_ms=cfg.v21_preamble_ms)
        self._commands: deque = deque()
        self._tx: _Source | None = None
        self._clock = now                    # time of the next sample to send when not told
        self._events: list = []
        self._closed = False
        self._started = False
        self._mutes: list = []               # (start, end or None): when we sent a signal
        self._zeros: dict = {}               # n -> n zero samples (see _silence)
        # receivers
        self._v21 = V21Receiver(self._v21cfg)
        self._lo = lo = ffi.new("xm_listen_out *")   # what xm_listen_run reports each block
        # ECM at high speed: xm_listen_run deframes a block's bits itself into these slots
        self._fbuf = ffi.new("uint8_t[]", lib.XM_LISTEN_FRAMES * (MAX_FRAME + 2))
        lo.fbuf, lo.fstride = self._fbuf, MAX_FRAME + 2
        self._v21_up = False                 # CarrierUp(V21) reported for the signal now on
        self._v21_fresh = False              # V.21 was not run (a trained carrier): reset it
        self._tones = T.ToneDetector() if cfg.detect_tones else None
        self._tone_on: set = set()
        self._hs_mod: Mod | None = None      # the high-speed modulation listened for
        self._hs_kind = M.Expect.DATA
        self._hs = None                      # its receiver (one of _rx_pool)
        self._rx_pool: dict = {}             # family -> receiver, kept (V.17's equaliser)
        self._hs_long = True                 # the receiver waits for a long training
        self._hs_short_asked = False         # the session's Receive asked for a short one
        self._rx_trained: Mod | None = None  # V.17 rate of the last long training heard
        self._tx_trained: Mod | None = None  # V.17 rate of the last long training sent
        self._hs_up = False                  # trained: CarrierUp(mod) reported
        self._hs_failed = False              # a training failed in the signal now on
        self._hs_bits = 0                    # bits delivered since the receiver's restart
        self._raw = _RawData(0)              # raw data bits not delivered yet
        self._raw_lost = 0
        self._deframer: _Deframer | None = None
        self._heard = False                  # anything recognised from the far end yet

    # ------------------------------------------------------------------ driver API
    def start(self, now: float) -> None:
        self._started = True
        self._clock = now
        self.session.start(now)
        self._pump(now)

    @property
    def done(self) -> bool:
        """The call is over and everything the session asked to send has gone."""
        if not self.session.done:
            return False
        return self._tx is None and not any(
            isinstance(c, (M.SendHDLC, M.SendData, M.SendTone, M.SendSilence)) for c in self._commands)

    @property
    def result(self):
        return self.session.result

    def events(self) -> list:
        """Session events collected so far (drained)."""
        out, self._events = self._events, []
        return out

    def next_timer(self) -> float | None:
        if self._closed:                     # (closed, or handed over: detach)
            return None
        return self.session.next_timer()

    def handle_timer(self, now: float) -> None:
        if self._closed:                     # (closed, or handed over: detach)
            return
        t = self.session.next_timer()
        if t is not None and now >= t:
            self.session.handle_timer(now)
            self._pump(now)

    def close(self, reason: str = "line closed", now: float = 0.0) -> None:
        """The line is gone: tell the session (LineLost)."""
        if not self.session.done:
            self._feed(M.LineLost(reason), now)
        self._closed = True
        self._tx = None
        self._commands.clear()

    def samples_to_send(self, n: int, now: float | None = None) -> np.ndarray:
        """The next ``n`` samples for the line (``now``: when the first of them goes out).
        Always ``n``: silence when there is nothing to send."""
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        base = self._clock if now is None else now
        if self._started and not self._closed:
            self._pump(base)                 # (what the session was told directly: abort ...)
        out = None                           # made when the block takes more than one part
        pos = 0
        while pos < n:
            if self._tx is None or (self._tx.interruptible and self._commands):
                self._advance(base + pos / RATE)
                if self._tx is None:
                    break
            src = self._tx
            if src.mutes and not src.started:
                src.started = True
                self._mutes.append((base + pos / RATE, None))
            part = src.take(n - pos)
            if pos == 0 and len(part) == n:
                out = part                   # the whole block (a source's own new array)
            else:
                if out is None:
                    out = np.zeros(n, np.int16)
                out[pos:pos + len(part)] = part
            pos += len(part)
            if src.done:
                self._tx = None
                if src.mutes and src.started:
                    self._end_mute(base + pos / RATE)
                if src.report:
                    self._feed(M.SendComplete(), base + pos / RATE)
                self._pump(base + pos / RATE)
            elif not len(part):
                break                        # a source with nothing now (never expected)
        self._clock = base + n / RATE
        self.stats.samples_sent += n
        return np.zeros(n, np.int16) if out is None else out

    def receive_samples(self, samples, now: float) -> None:
        """Samples from the far end (any block size; ``now``: when the last arrived)."""
        x = samples
        if type(x) is not np.ndarray or x.dtype is not _INT16 or x.ndim != 1:
            x = self._as_block(samples)      # (the common block, int16 in one piece, is as is)
        n = len(x)
        if not n:
            return
        self.stats.samples_received += n
        if self._closed or (self._tx is None and self.session.done):
            return
        if self._mutes:
            x = self._mute(x, now)
        # one pointer to the block for every receiver listening (each runs over all of it)
        try:
            ptr = ffi.from_buffer("int16_t[]", x)
        except (BufferError, ValueError):    # (a strided view: "not C-contiguous")
            x = np.ascontiguousarray(x)
            ptr = ffi.from_buffer("int16_t[]", x)
        # one C call runs them all over the block (each as its own call would); events
        # are taken, and a receiver whose event queue filled is run on, only when needed
        hs, v21, lo = self._hs, self._v21, self._lo
        if self._hs_up:
            # A trained high-speed carrier: only its receiver runs. T.30 looks for no V.21
            # signal and no tone until it drops (what V.21 made of its energy was ignored);
            # V.21 starts afresh after it, as spandsp's fax modems do.
            dfr = self._deframer
            lo.hdlc = dfr._h if dfr is not None else ffi.NULL
            bptr, cap = hs._bits_buffer(n)
            if lib.xm_listen_run(ptr, n, ffi.NULL, hs.LISTEN_KIND, hs._s, bptr, cap, ffi.NULL, lo):
                if lo.hdlc_fed:              # ECM data deframed in C: only frames to report
                    self._on_hs_frames(hs, lo, now)
                else:
                    self._on_hs(hs._listened(lo), hs.events(), now)
                self._pump(now)
            self._v21_fresh = True
            return
        if self._v21_fresh:
            self._v21_fresh = False
            v21.reset()
        tones = self._tones
        if hs is not None:
            lo.hdlc = ffi.NULL
            bptr, cap = hs._bits_buffer(n)
            look = lib.xm_listen_run(ptr, n, tones._s if tones is not None else ffi.NULL,
                                     hs.LISTEN_KIND, hs._s, bptr, cap, v21._s, lo)
        else:
            look = lib.xm_listen_run(ptr, n, tones._s if tones is not None else ffi.NULL,
                                     0, ffi.NULL, ffi.NULL, 0, v21._s, lo)
        if not look:                         # nothing heard, nothing to report
            if tones is not None:
                tones.samples_received += n
            v21.samples_received += n
            return
        if tones is not None:
            if look & _LOOK_TONE:
                for ev in tones._receive_ptr(ptr, n, lo.tone_done):
                    self._on_tone(ev, now)
            else:
                tones.samples_received += n
        if look & _LOOK_HS:                  # (no bits and no events: nothing to do)
            self._on_hs(hs._listened(lo), hs.events(), now)
        if look & _LOOK_V21:
            for ev in v21._receive_ptr(ptr, n, lo.v21_done):
                self._on_v21(ev, now)
        else:
            v21.samples_received += n
        self._pump(now)                      # (only the handlers above tell the session anything)

    @staticmethod
    def _as_block(samples) -> np.ndarray:
        """``samples`` as a 1-D C-contiguous int16 array (ValueError if it cannot be)."""
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ValueError(f"samples must be a 1-D array, not shape {x.shape}")
        if x.dtype != np.int16:
            if x.size and not np.issubdtype(x.dtype, np.integer):
                raise ValueError(f"samples must be int16, not {x.dtype}")
            x = np.clip(x, -32768, 32767).astype(np.int16)
        return np.ascontiguousarray(x)

    def _mute(self, x: np.ndarray, now: float) -> np.ndarray:
        """``x`` with zeros where we were sending a signal, and ECHO_GUARD_MS after (T.30
        is half duplex: what is heard then is our own echo, which our receivers would take
        for the far end's frames). The receivers still run over the zeros, so their
        carrier detectors see the signal end."""
        mutes = self._mutes
        if not mutes:
            return x
        n = len(x)
        t0 = now - n / RATE                   # the time of x[0]
        if len(mutes) == 1 and mutes[0][1] is None and (mutes[0][0] - t0) * RATE - 1e-6 <= 0:
            return self._silence(n)          # (the common case below, sooner: we are sending)
        guard = ECHO_GUARD_MS / 1000
        out = None
        whole = over = False
        for start, end in self._mutes:
            if end is None:
                stop = now + 1.0
            else:
                stop = end + guard
                over = over or stop <= now
            if whole:
                continue
            a = max(0, math.ceil((start - t0) * RATE - 1e-6))
            b = min(n, math.ceil((stop - t0) * RATE - 1e-6))
            if a == 0 and b == n:
                out = self._silence(n)       # the whole block (while we send): shared zeros
                whole = True
            elif a < b:
                if out is None:
                    out = x.copy()
                out[a:b] = 0
        if over:                             # forget what is over
            self._mutes = [(s, e) for s, e in self._mutes if e is None or e + guard > now]
        return x if out is None else out

    def _silence(self, n: int) -> np.ndarray:
        """``n`` zero samples, read-only and kept (the receivers only read them)."""
        z = self._zeros.get(n)
        if z is None:
            if len(self._zeros) > 8:
                self._zeros.clear()
            z = self._zeros[n] = np.zeros(n, np.int16)
            z.flags.writeable = False
        return z

    # ------------------------------------------------------------------ session pump
    def _feed(self, event, now: float) -> None:
        self.session.receive(event, now)

    def _pump(self, now: float) -> None:
        s = self.session
        cmds = s.data_to_send()
        if cmds:
            self._commands.extend(cmds)
        evs = s.events()
        if evs:
            self._events.extend(evs)
        if self._tx is None or (self._tx.interruptible and self._commands):
            self._advance(now)

    def _advance(self, now: float) -> None:
        """Take commands until one has samples to send (Receive and Hangup act at once).
        An endless CNG goes on under Receive commands and gives way to anything else."""
        while self._commands:
            if self._tx is not None:
                if not self._tx.interruptible:
                    break
                if not isinstance(self._commands[0], M.Receive):
                    self._tx = None
            cmd = self._commands.popleft()
            if isinstance(cmd, M.Receive):
                self._listen(cmd)
            elif isinstance(cmd, M.Hangup):
                self._closed = True
                self._commands.clear()
            elif isinstance(cmd, M.SendSilence):
                src = _Silence(cmd.ms)
                if not src.done:
                    self._tx = src
            elif isinstance(cmd, M.SendTone):
                endless = cmd.tone is M.Tone.CNG and self.config.cng_repeat and not self._heard
                self._tx = _Tone(cmd.tone, cmd.ms, self.config.tone_level_dbm0, endless)
            elif isinstance(cmd, M.SendHDLC):
                self._tx = self._hdlc_source(cmd)
            elif isinstance(cmd, M.SendData):
                if cmd.modulation is Mod.V21:
                    raise ValueError("SendData at V.21: T.30 sends only HDLC frames at V.21")
                self._check_mod(cmd.modulation)
                self._tx = _PskSend(cmd.modulation, _lsb_bits(cmd.data),
                                    self._tx_short(cmd.modulation, cmd.short_training),
                                    self.config.hs_level_dbm0)
            else:
                self.stats.ignored[f"command {type(cmd).__name__}"] += 1
            if self._tx is not None and isinstance(cmd, _LINE_COMMANDS) and not self._tx.started:
                self._tx.command = cmd       # what is on the line, for detach()

    def _check_mod(self, mod: Mod) -> None:
        if mod.family not in _CLASSES and mod is not Mod.V21:
            raise ValueError(f"{mod} is not available in xmfax.audio")

    def _hdlc_source(self, cmd: M.SendHDLC) -> _Source:
        if cmd.modulation is Mod.V21:
            if any(_retrains(f) for f in cmd.frames):
                self._tx_trained = None      # the TCF after a DCS (a block after CTC): long
            return _V21Send(cmd.frames, self._v21cfg)
        self._check_mod(cmd.modulation)
        cfg = self.config
        flags = max(1, int(round(cfg.hs_flags_ms / 1000 * cmd.modulation.bit_rate / 8)))
        bits = _hdlc_bits(cmd.frames, flags, cfg.hs_closing_flags)
        return _PskSend(cmd.modulation, bits,
                        self._tx_short(cmd.modulation, cmd.short_training), cfg.hs_level_dbm0)

    def _tx_short(self, mod: Mod, asked: bool) -> bool:
        """V.17's short training: after a long one at this rate, until the next DCS/CTC."""
        if mod.family is not Family.V17:
            return False
        short = asked or self._tx_trained is mod
        if not short:
            self._tx_trained = mod
        return short

    # ------------------------------------------------------------------ receive
    def _listen(self, cmd: M.Receive) -> None:
        """What T.30 expects next: V.21 only, or a high-speed modulation beside it."""
        mod = cmd.modulation
        if mod is Mod.V21:
            self._stop_hs(None)
            return
        self._check_mod(mod)
        self._hs_short_asked = cmd.short_training
        if (self._hs is not None and self._hs_mod is mod and self._hs_kind is cmd.expect
                and (self._hs_up or self._hs_long == self._rx_long(mod))):
            return                           # already listening (perhaps mid-signal)
        self._hs_kind = cmd.expect
        self._arm(mod)

    def _rx_long(self, mod: Mod) -> bool:
        """Whether the next signal at ``mod`` starts with a long training. Only V.17 has a
        short one: after a long training to this receiver at the same rate, until the next
        DCS or CTC (TCF is always long-trained; the pages and ECM blocks after it short)."""
        if mod.family is not Family.V17:
            return True
        return not (self._hs_short_asked or self._rx_trained is mod)

    def _arm(self, mod: Mod) -> None:
        """(Re)start the high-speed receiver for the next signal at ``mod``."""
        long = self._rx_long(mod)
        rx = self._rx_pool.get(mod.family)
        if rx is None:
            rx = self._rx_pool[mod.family] = _CLASSES[mod.family][1](mod.bit_rate)
            long = True                      # a new receiver has no equaliser to start from
        elif mod.family is Family.V17:
            rx.restart(mod.bit_rate, long_train=long)
        else:
            rx.restart(mod.bit_rate)
        self._hs, self._hs_mod, self._hs_long = rx, mod, long
        self._v21.set_framing_flags(V21_FLAGS_BESIDE_HS)
        self._hs_up = self._hs_failed = False
        self._hs_bits = 0
        self._raw = _RawData(int(mod.bit_rate * HOLD_MS / 1000), int(mod.bit_rate * BATCH_MS / 1000))
        self._raw_lost = 0                   # octets of raw data lost in dropouts, to report
        self._deframer = _Deframer() if self._hs_kind is M.Expect.HDLC else None

    def _stop_hs(self, now: float | None) -> None:
        if self._hs_up and now is not None:
            self._feed(M.CarrierDown(self._hs_mod), now)
        self._hs = None
        self._hs_mod = None
        self._hs_up = False
        self._v21.set_framing_flags(V21_FLAGS)

    def _on_tone(self, ev, now: float) -> None:
        if isinstance(ev, T.ToneOn):
            tone = M.Tone.CNG if ev.tone is T.Tone.CNG else M.Tone.CED
            if tone in self._tone_on:
                return
            self._tone_on.add(tone)
            self.stats.tones[tone.value] += 1
            if tone is M.Tone.CED:
                self._heard = True
                self._stop_cng()
            self._feed(M.ToneDetected(tone), now)
        elif isinstance(ev, T.ToneOff):
            self._tone_on.discard(M.Tone.CNG if ev.tone is T.Tone.CNG else M.Tone.CED)

    def _end_mute(self, t: float) -> None:
        if self._mutes and self._mutes[-1][1] is None:
            self._mutes[-1] = (self._mutes[-1][0], t)

    def _stop_cng(self) -> None:
        if self._tx is not None and self._tx.interruptible:
            self._tx = None

    def _v21_carrier_up(self, now: float) -> None:
        if self._v21_up:
            return
        self._heard = True
        self._stop_cng()
        if self._hs is not None and not self._hs_up:
            # V.21 where high speed was expected (a repeated command, an answer): the
            # Class 1 +FCERROR case; T.30 listens for V.21 again
            self.stats.wrong_carrier += 1
            self._feed(M.WrongCarrier(self._hs_mod, Mod.V21), now)
        self._v21_up = True
        self._feed(M.CarrierUp(Mod.V21), now)

    def _on_v21(self, ev, now: float) -> None:
        if self._hs_up:
            # a high-speed signal is being received: its energy fools the FSK receiver
            if isinstance(ev, V21Frame):
                self.stats.ignored["V.21 frame during high speed"] += 1
            return
        if isinstance(ev, V21Framing):
            self._v21_carrier_up(now)
        elif isinstance(ev, V21Frame):
            if not self._v21_up and not ev.fcs_ok:
                # before flags are recognised a bad frame is no V.21 signal: the FSK
                # receiver makes such frames out of V.27 ter / V.29 carriers
                self.stats.ignored["bad V.21 frame without a preamble"] += 1
                return
            self._v21_carrier_up(now)
            if ev.fcs_ok:
                self.stats.frames_received += 1
                if _retrains(ev.data):
                    self._rx_trained = None  # a TCF (or CTC's new rate) comes with a long training
            else:
                self.stats.frames_bad += 1
            self._feed(M.HDLCFrame(ev.data, ev.fcs_ok, Mod.V21), now)
        elif isinstance(ev, V21Down):
            if self._v21_up:
                self._v21_up = False
                self._feed(M.CarrierDown(Mod.V21), now)

    def _on_hs(self, bits: np.ndarray, events, now: float) -> None:
        if not events and not len(bits):
            return
        base = self._hs_bits                 # the receiver's bit count when this block began
        pos = 0
        for ev in events:
            upto = min(len(bits), max(pos, ev.bit - base))
            if ev.kind == RESUMED and self._deframer is None:
                # a dropout ridden through (native/audio/hold.h): the bits since DROPOUT were
                # decoded from the gap's silence. A non-ECM page is told they went missing (T.30
                # counts the rows lost, never confirms them whole); ECM frames there fail their FCS
                self._raw_lost += (upto - pos + 7) // 8 if self._hs_up else 0
            else:
                self._hs_data(bits[pos:upto], now)
            pos = upto
            if ev.kind == TRAINING_SUCCEEDED:
                self.stats.trainings += 1
                if self._v21_up:             # the V.21 detector held on across the 75 ms gap
                    self._v21_up = False
                    self._feed(M.CarrierDown(Mod.V21), now)
                self._hs_up = True
                if self._hs_long and self._hs_mod.family is Family.V17:
                    self._rx_trained = self._hs_mod
                self._raw.clear()
                if self._deframer is not None:
                    self._deframer = _Deframer()
                self._feed(M.CarrierUp(self._hs_mod), now)
            elif ev.kind == TRAINING_FAILED:
                self.stats.training_failures += 1
                self._hs_failed = not self._v21_up
            elif ev.kind == CARRIER_DOWN and self._hs_failed and not self._hs_up:
                # a signal came but no training was recognised in it. Raw data expected
                # (TCF, a page): that is a carrier with no data, which T.30 judges as such
                # (FTT after a TCF, T.30 §5.3.6.2; RTN after a page), so the sender
                # retrains or falls back at once instead of waiting out its timers
                self._hs_failed = False
                if self._deframer is None and not self._v21_up:
                    self._feed(M.CarrierUp(self._hs_mod), now)
                    self._feed(M.CarrierDown(self._hs_mod), now)
            elif ev.kind == CARRIER_DOWN and self._hs_up:
                self._flush_hs(now)
                self._hs_up = False
                # ready for the next signal (counting bits from zero again)
                mod = self._hs_mod
                self._arm(mod)
                self._feed(M.CarrierDown(mod), now)
                return
        self._hs_data(bits[pos:], now)
        self._hs_bits = base + len(bits)

    def _on_hs_frames(self, hs, lo, now: float) -> None:
        """A block of ECM data with no status event in it, deframed by xm_listen_run: the
        same frames, in the same order, as _on_hs and _Deframer.feed would report."""
        nbits, fed = lo.nbits, lo.hdlc_fed
        mod, buf, stride = self._hs_mod, self._fbuf, lo.fstride
        for i in range(lo.nframes):
            ok = bool(lo.fok[i])
            if ok:
                self.stats.frames_received += 1
            else:
                self.stats.frames_bad += 1
            self._feed(M.HDLCFrame(bytes(ffi.buffer(buf + i * stride, lo.flen[i])), ok, mod), now)
        if fed < nbits:                      # (its frame slots ran low: the rest here)
            self._hs_data(hs._listened(lo)[fed:], now)
        self._hs_bits += nbits

    def _hs_data(self, bits: np.ndarray, now: float) -> None:
        if not self._hs_up or not len(bits):
            return
        if self._deframer is not None:       # ECM: HDLC frames at high speed
            mod = self._hs_mod
            for frame, ok in self._deframer.feed(bits):
                if ok:
                    self.stats.frames_received += 1
                else:
                    self.stats.frames_bad += 1
                self._feed(M.HDLCFrame(frame, ok, mod), now)
            return
        # raw data: hold the last HOLD_MS back, to cut the turn-off at carrier down
        data = self._raw.add(bits)
        if data:
            self._deliver(data, now)

    def _flush_hs(self, now: float) -> None:
        for data in self._raw.flush():
            self._deliver(data, now)
        if self._raw_lost:
            self._deliver(b"", now)

    def _deliver(self, data: bytes, now: float) -> None:
        lost, self._raw_lost = self._raw_lost, 0
        self._feed(M.DataReceived(data, self._hs_mod, lost), now)

    # ------------------------------------------------------------------ handover (issue #12)
    def detach(self, now: float) -> list:
        """Hand the session over to another modem layer (the call switched to T.38 during
        the audio fax, drivers/sip.py): the commands the session gave that have not gone
        out whole, in order, for the new layer to send first (the one on the line is given
        whole, to be sent again from its start; a SendSilence is kept, a gap is harmless).

        What was being received is dropped: a signal whose carrier is up ends here
        (CarrierDown; a V.21 frame half heard is lost, the far end's T.30 repeats its
        command or T.30 here repeats its own, T.30 §5.4.3; a non-ECM page cut short has no
        RTC and is answered RTN, T.30 §5.3.6.2, an ECM block's missing frames are asked
        for again with PPR, T.30 Annex A). The terminal is then inert (no timers, no
        samples, nothing heard): the session is driven by the new layer only."""
        if self._closed:
            return []
        if self._started:
            self._pump(now)                  # what the session has just asked for
        pending = []
        tx = self._tx
        if tx is not None and not tx.done and tx.command is not None:
            pending.append(tx.command)       # (an endless CNG: the new layer keeps its cadence)
        pending.extend(self._commands)
        # the carrier being received ends here, as when the line drops (T.30 then decides)
        if self._hs_up:
            self._hs_up = False
            self._feed(M.CarrierDown(self._hs_mod), now)
        if self._v21_up:
            self._v21_up = False
            self._feed(M.CarrierDown(Mod.V21), now)
        self._closed = True
        self._tx = None
        self._commands.clear()
        self._hs = None
        self._mutes.clear()
        # the session may answer what it was just told: that goes to the new layer too
        pending.extend(self.session.data_to_send())
        self._events.extend(self.session.events())
        return pending

