"""Helpers for the audio -> T.38 handover tests: two AudioTerminals joined by a sample pipe
on a fake clock until a chosen instant, then both sessions handed (AudioTerminal.detach) to
two T38Terminals (T38Terminal.resume) joined in memory by a datagram queue. No real time."""
from __future__ import annotations

import heapq
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from xmfax.audio.terminal import AudioConfig, AudioTerminal
from xmfax.t30 import modem as M
from xmfax.t30.config import T30Config
from xmfax.t30.fcf import split
from xmfax.t30.session import Session
from xmfax.t38.config import T38Config
from xmfax.t38.terminal import T38Terminal

sys.path.insert(0, os.path.dirname(__file__))
from test_audio_calls import small_pages  # noqa: E402

BLOCK = 160                      # 20 ms, as RTP carries it


def label(cmd) -> str:
    """What a line command is, by its T.30 name: CED, DIS, DCS, TCF, page, MPS, PPS, MCF ..."""
    if isinstance(cmd, M.SendTone):
        return cmd.tone.name
    if isinstance(cmd, M.SendSilence):
        return "silence"
    if isinstance(cmd, M.SendData):
        return "TCF" if not any(cmd.data) else "page"
    if isinstance(cmd, M.SendHDLC):
        if cmd.modulation is not M.Modulation.V21:
            return "page"                     # ECM frames at high speed (T.30 Annex A)
        names = []
        for f in cmd.frames:
            fcf = split(f[2])[0] if len(f) >= 3 else None
            names.append(fcf.name if fcf is not None else "?")
        return names[-1]                      # (CSI/TSI ride before DIS/DCS: the last names it)
    return type(cmd).__name__


@dataclass
class Call:
    pages: list
    sender: Session
    receiver: Session
    a: AudioTerminal                  # the caller (sends the pages)
    b: AudioTerminal                  # the answerer
    timeline: list = field(default_factory=list)   # (start, end, side, label) of each signal sent
    now: float = 0.0
    handed: list = field(default_factory=list)     # what each end's detach() gave back


def make_call(ecm: bool, rate: int = 14400, pages=None) -> Call:
    pages = pages if pages is not None else small_pages(1, rows=60, seed=5)
    cfg = AudioConfig.limit_t30(T30Config(ecm=ecm, max_rate=rate))
    sender = Session(cfg, calling=True, pages=pages)
    receiver = Session(cfg, calling=False, receive=True)
    return Call(pages, sender, receiver, AudioTerminal(sender), AudioTerminal(receiver))


def run_audio(call: Call, until: float | None, limit: float = 120.0) -> None:
    """Run the audio line from call.now until ``until`` (None: the end of the call),
    recording when each end's signals start and end."""
    a, b = call.a, call.b
    if call.now == 0.0:
        a.start(0.0)
        b.start(0.0)
    on = {0: None, 1: None}
    stop = limit if until is None else until
    now = call.now
    while not (a.done and b.done) and now + 1e-9 < stop:
        xa = a.samples_to_send(BLOCK, now)
        xb = b.samples_to_send(BLOCK, now)
        for side, t in ((0, a), (1, b)):
            src = t._tx
            if on[side] is not None and on[side][0] is not src:
                s0, lab = on[side][1], on[side][2]
                call.timeline.append((s0, now, "ab"[side], lab))
                on[side] = None
            if src is not None and on[side] is None and src.command is not None:
                on[side] = (src, now, label(src.command))
        now += BLOCK / 8000
        b.receive_samples(xa, now)
        a.receive_samples(xb, now)
        for t in (a, b):
            due = t.next_timer()
            if due is not None and due <= now:
                t.handle_timer(now)
    call.now = now


def phases(timeline) -> dict[str, tuple[float, float]]:
    """The first (start, end) of each signal by its label (the first page, the first MCF ...)."""
    out: dict = {}
    for s, e, side, lab in timeline:
        out.setdefault(lab, (s, e))
    return out


class Wire:
    """UDPTL datagrams between the two T38Terminals, ``delay`` seconds each way, lossless."""

    def __init__(self, delay: float = 0.02):
        self.delay, self.q, self.n = delay, [], 0

    def send(self, dst: int, data: bytes, now: float) -> None:
        self.n += 1
        heapq.heappush(self.q, (now + self.delay, self.n, dst, data))

    def next_time(self):
        return self.q[0][0] if self.q else None

    def due(self, now: float):
        while self.q and self.q[0][0] <= now:
            yield heapq.heappop(self.q)[2:]


def switch_to_t38(call: Call, config: T38Config | None = None, limit: float = 400.0, *,
                  skew: float = 0.0, first: int = 0) -> tuple:
    """Hand both sessions to T38Terminals and run them until both are done. End ``first``
    (0 the caller, 1 the answerer) switches at call.now, the other ``skew`` seconds later
    (a re-INVITE reaches one end first): meanwhile the other end's audio goes nowhere and it
    hears silence, and the first end's datagrams wait in its T.38 socket (bound for the
    whole call, as drivers/sip.py's CallMedia does) until it switches."""
    now = call.now
    audio = (call.a, call.b)
    sessions = (call.sender, call.receiver)
    ends: list = [None, None]
    call.handed = [None, None]
    wire = Wire()

    def switch(i, now):
        call.handed[i] = audio[i].detach(now)
        ends[i] = T38Terminal(sessions[i], config or T38Config(), now)
        ends[i].resume(now, call.handed[i])

    def flush(now):
        for i, t in enumerate(ends):
            if t is not None:
                for d in t.datagrams_to_send():
                    wire.send(1 - i, d, now)

    switch(first, now)
    second, late_at = 1 - first, now + skew
    while now < late_at:                  # the second end still on audio, hearing silence
        audio[second].samples_to_send(BLOCK, now)
        now += BLOCK / 8000
        audio[second].receive_samples(np.zeros(BLOCK, np.int16), now)
        if audio[second].next_timer() is not None and audio[second].next_timer() <= now:
            audio[second].handle_timer(now)
        while ends[first].next_timer() is not None and ends[first].next_timer() <= now:
            ends[first].handle_timer(ends[first].next_timer())
            flush(now)
    if ends[second] is None:
        switch(second, now)
    flush(now)
    while not all(t.done for t in ends) and now < limit:
        times = [t for t in (ends[0].next_timer(), ends[1].next_timer(), wire.next_time()) if t is not None]
        if not times:
            break
        now = max(now, min(times))
        for dst, d in list(wire.due(now)):
            ends[dst].receive_datagram(d, now)
        for t in ends:
            due = t.next_timer()
            if due is not None and due <= now:
                t.handle_timer(now)
        flush(now)
    call.now = now
    return tuple(ends)
