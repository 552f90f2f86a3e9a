"""An in-memory telephone line joining two T.30 sessions on a fake clock.

    a = Session(cfg, calling=True, pages=pages)
    b = Session(cfg, calling=False, receive=True)
    line = Line(a, b, faults=Faults(frame=drop_first("a", FCF.DCS)))
    line.run()                    # until both are done (or `until` simulated seconds)
    a.result, b.result, line.now

The line plays the modem: each side's commands take the time they would take on a
real line (V.21 at 300 bit/s with its 1 s preamble, high-speed data at its rate after
its training: the timing model in modem.py),
one transmission after another per side, and the other side hears CarrierUp,
the frames or data, CarrierDown when the transmission ends; the sender gets
SendComplete. Nothing here sleeps: a 60 s call runs in milliseconds.

Fault injection (all optional, see :class:`Faults`): lose or damage frames, damage
or drop high-speed data (TCF or page), make one side fall silent, or make a side
hang up with DCN at a chosen frame. Sans-IO: usable by tests, benchmarks, demos.
"""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from typing import Callable

from .fcf import FCF, split
from .frames import ADDRESS, CONTROL_FINAL
from .modem import (CED_MS, CNG_MS, HS_FLAGS_MS, CarrierDown, CarrierUp, DataReceived, Hangup,
                    HDLCFrame, LineLost, ModemEvent, Modulation, SendComplete, SendData, SendHDLC,
                    SendSilence, SendTone, Tone, ToneDetected)

_TONE_MS = {Tone.CNG: CNG_MS, Tone.CED: CED_MS}     # a tone's usual length (timing model, modem.py)

SIDES = ("a", "b")

# frame(side, frame, modulation, n) -> "ok" | "drop" | "corrupt" | "hangup" | "duplicate" | "delay"
#   n counts the frames this side has sent so far (0-based). "hangup": the far end
#   hears DCN instead of this frame, and this side is silent from then on.
#   "duplicate": the far end hears the frame, and a copy of it Faults.duplicate_delay
#   seconds later (a late duplicate, as a lossy T.38 path with redundancy can give).
#   "delay": the far end hears the frame only Faults.duplicate_delay seconds late (after
#   the frames that followed it: reordered).
FrameHook = Callable[[str, bytes, Modulation, int], str]
# data(side, data, modulation, n) -> bytes | None: what the far end receives of one
#   high-speed data transmission (TCF or a non-ECM page); None: no carrier at all.
DataHook = Callable[[str, bytes, Modulation, int], "bytes | None"]
# silent(side, now) -> bool: nothing this side sends from now on is heard.
SilentHook = Callable[[str, float], bool]


@dataclass
class Faults:
    frame: FrameHook | None = None
    data: DataHook | None = None
    silent: SilentHook | None = None
    duplicate_delay: float = 0.4       # how late a "duplicate" frame's copy (or a "delay" frame) arrives


@dataclass
class _Side:
    name: str
    session: object
    tx_free: float = 0.0
    frames_sent: int = 0
    data_sent: int = 0
    silenced: bool = False
    hung_up: bool = False
    log: list = field(default_factory=list)


class Line:
    """Two sessions on one simulated line (see the module docstring)."""

    def __init__(self, a, b, *, faults: Faults | None = None, now: float = 0.0,
                 chunk: int = 4096, start: bool = True):
        self.now = now
        self.faults = faults or Faults()
        self.chunk = chunk
        self.sides = [_Side("a", a, now), _Side("b", b, now)]
        self._queue: list = []
        self._seq = itertools.count()
        self.steps = 0
        self.transcript: list[tuple[float, str, str]] = []   # (time, side, what), for debugging
        if start:
            a.start(now)
            b.start(now)

    # ------------------------------------------------------------------ running
    def run(self, until: float = 1200.0, max_steps: int = 200_000) -> None:
        """Run until both sessions are done, time passes ``until``, or nothing can happen."""
        while self.steps < max_steps:
            self.steps += 1
            for i in (0, 1):
                self._pump(i)
            if all(s.session.done for s in self.sides) and not self._queue:
                return
            t_event = self._queue[0][0] if self._queue else None
            timers = [(s.session.next_timer(), i) for i, s in enumerate(self.sides)
                      if not s.session.done and s.session.next_timer() is not None]
            t_timer = min(timers)[0] if timers else None
            if t_event is None and t_timer is None:
                return
            if t_event is not None and (t_timer is None or t_event <= t_timer):
                t, _, i, ev = heapq.heappop(self._queue)
                self.now = max(self.now, t)
                s = self.sides[i].session
                if not s.done:
                    s.receive(ev, self.now)
            else:
                self.now = max(self.now, t_timer)
                if self.now > until:
                    return
                for t, i in timers:
                    if t <= self.now:
                        self.sides[i].session.handle_timer(self.now)
            if self.now > until:
                return

    # ------------------------------------------------------------------ one side's commands
    def _deliver(self, t: float, to: int, ev: ModemEvent) -> None:
        heapq.heappush(self._queue, (t, next(self._seq), to, ev))

    def _pump(self, i: int) -> None:
        me, other = self.sides[i], 1 - i
        for cmd in me.session.data_to_send():
            start = max(self.now, me.tx_free)
            heard = not me.silenced and not me.hung_up
            if heard and self.faults.silent is not None and self.faults.silent(me.name, start):
                me.silenced = heard = False
            if isinstance(cmd, SendSilence):
                me.tx_free = start + cmd.ms / 1000
            elif isinstance(cmd, SendTone):
                me.tx_free = start + (cmd.ms or _TONE_MS[cmd.tone]) / 1000
                if heard:
                    self._deliver(me.tx_free, other, ToneDetected(cmd.tone))
            elif isinstance(cmd, SendHDLC):
                self._send_hdlc(me, other, cmd, start, heard)
            elif isinstance(cmd, SendData):
                self._send_data(me, other, cmd, start, heard)
            elif isinstance(cmd, Hangup):
                me.hung_up = True
                if heard:
                    self._deliver(me.tx_free + 0.5, other, LineLost("far end hung up"))
            # Receive: a hint for real modems; this line hears everything

    def _send_hdlc(self, me: _Side, other: int, cmd: SendHDLC, start: float, heard: bool) -> None:
        mod = cmd.modulation
        # the timing model (modem.py): V.21's 1 s preamble (T.30 §5.3.1); at high speed the
        # training, then the flags before the first ECM frame (T.30 Annex A)
        pre = mod.training_s(cmd.short_training)
        if mod is not Modulation.V21:
            pre += HS_FLAGS_MS / 1000
        t = start + pre
        if heard:
            self._deliver(t, other, CarrierUp(mod))
        for frame in cmd.frames:
            t += (len(frame) + 3) * 8 / mod.bit_rate
            fate = "ok"
            if self.faults.frame is not None and not me.silenced:
                fate = self.faults.frame(me.name, frame, mod, me.frames_sent)
            me.frames_sent += 1
            self._note(start, me.name, frame)
            if not heard or me.silenced or fate == "drop":
                continue
            if fate == "corrupt":
                self._deliver(t, other, HDLCFrame(frame, False, mod))
            elif fate == "delay":
                self._deliver(t + self.faults.duplicate_delay, other, HDLCFrame(frame, True, mod))
            elif fate == "hangup":
                dcn = bytes((ADDRESS, CONTROL_FINAL, int(FCF.DCN)))
                self._deliver(t, other, HDLCFrame(dcn, True, Modulation.V21))
                me.silenced = True
            else:
                self._deliver(t, other, HDLCFrame(frame, True, mod))
                if fate == "duplicate":
                    self._deliver(t + self.faults.duplicate_delay, other, HDLCFrame(frame, True, mod))
        t += 0.02
        me.tx_free = t
        if heard:
            self._deliver(t, other, CarrierDown(mod))
        self._deliver(t, self.sides.index(me), SendComplete())

    def _send_data(self, me: _Side, other: int, cmd: SendData, start: float, heard: bool) -> None:
        mod = cmd.modulation
        data = cmd.data
        if self.faults.data is not None and heard:
            data = self.faults.data(me.name, data, mod, me.data_sent)
        me.data_sent += 1
        train = mod.training_s(cmd.short_training)      # the timing model (modem.py)
        end = start + train + len(cmd.data) * 8 / mod.bit_rate
        me.tx_free = end
        self.transcript.append((start, me.name, f"data {mod} {len(cmd.data)} octets"))
        if heard and data is not None:
            self._deliver(start + train, other, CarrierUp(mod))
            for k in range(0, len(data), self.chunk):     # streamed as the line carries it
                piece = data[k:k + self.chunk]
                t = min(end, start + train + (k + len(piece)) * 8 / mod.bit_rate)
                self._deliver(t, other, DataReceived(piece, mod))
            self._deliver(end, other, CarrierDown(mod))
        self._deliver(end, self.sides.index(me), SendComplete())

    def _note(self, t: float, side: str, frame: bytes) -> None:
        fcf = split(frame[2])[0] if len(frame) > 2 else None
        self.transcript.append((t, side, fcf.name if fcf else frame[:4].hex()))


# --------------------------------------------------------------------------- fault helpers
def _fcf_of(frame: bytes) -> FCF | None:
    return split(frame[2])[0] if len(frame) > 2 else None


def frame_fault(side: str, fcf: FCF, fate: str = "drop", times: int = 1, skip: int = 0) -> FrameHook:
    """A frame hook: the ``skip``-th and following ``times`` frames of type ``fcf`` sent
    by ``side`` get ``fate`` ("drop", "corrupt", "hangup" or "duplicate")."""
    seen = [0]

    def hook(s: str, frame: bytes, mod: Modulation, n: int) -> str:
        if s == side and _fcf_of(frame) is fcf:
            k = seen[0]
            seen[0] += 1
            if skip <= k < skip + times:
                return fate
        return "ok"
    return hook


def ecm_frame_fault(side: str, numbers: set[int], times: int = 1) -> FrameHook:
    """Damage the FCD frames with these frame numbers, the first ``times`` times each is sent."""
    count: dict[int, int] = {}

    def hook(s: str, frame: bytes, mod: Modulation, n: int) -> str:
        if s == side and mod is not Modulation.V21 and len(frame) > 3 and frame[2] == int(FCF.FCD):
            num = frame[3]
            if num in numbers:
                count[num] = count.get(num, 0) + 1
                if count[num] <= times:
                    return "corrupt"
        return "ok"
    return hook


def tcf_errors_above(rate: int, errors: int = 200) -> DataHook:
    """TCF sent faster than ``rate`` bit/s arrives with ``errors`` non-zero octets
    spread through it (so the receiver answers FTT and the sender falls back)."""
    def hook(side: str, data: bytes, mod: Modulation, n: int) -> bytes:
        if mod.bit_rate > rate and data and not any(data[:64]) and not data.strip(b"\x00"):
            buf = bytearray(data)
            step = max(1, len(buf) // errors)
            for k in range(0, len(buf), step):
                buf[k] = 0x55
            return bytes(buf)
        return data
    return hook


def page_damage(side: str, pages: set[int], fraction: float = 0.5, every: int = 40) -> DataHook:
    """Damage non-ECM page data transmissions number ``pages`` (1-based, counting
    page transmissions only: TCFs pass). In the middle ``fraction`` of the data one
    bit in every ``every`` octets is flipped (line noise as bit errors); ``every=1``
    garbles every octet there (a noise burst)."""
    counter = [0]

    def hook(s: str, data: bytes, mod: Modulation, n: int) -> bytes:
        if s != side or not data.strip(b"\x00"):
            return data                       # TCF (all zeros) passes
        counter[0] += 1
        if counter[0] in pages:
            buf = bytearray(data)
            lo = int(len(buf) * (0.5 - fraction / 2))
            hi = int(len(buf) * (0.5 + fraction / 2))
            for k in range(lo, hi, every):
                buf[k] ^= 0xA5 if every == 1 else 1 << (k % 8)
            return bytes(buf)
        return data
    return hook


def silent_after(side: str, t: float) -> SilentHook:
    """``side`` is not heard from simulated time ``t`` on."""
    return lambda s, now: s == side and now >= t
