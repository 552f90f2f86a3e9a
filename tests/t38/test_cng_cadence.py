"""The calling terminal's CNG cadence (T.30 §4.1: 0.5 s on, 3 s off, until answered). A raw
T.38 line learns of a call only from the caller's first datagrams; if they are lost, a
caller that sent CNG once waited T1 (35 s) for a DIS that never came. The caller repeats
its CNG indicator (with its no-signal end and their repeats) every CNG_PERIOD until it
hears the far end or its session sends anything else; the answering side tells T.30 of
CNG once. Fake clock throughout."""
from __future__ import annotations

import heapq
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, test_pages as make_pages  # noqa: E402
from test_terminal_ifp import FRAME, Scripted  # noqa: E402

from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.ifp import Indicator, IndicatorPacket, decode_ifp, encode_ifp  # noqa: E402
from xmfax.t38.terminal import CNG_PERIOD, T38Terminal  # noqa: E402
from xmfax.t38.udptl import UDPTLSender  # noqa: E402

CNG = IndicatorPacket(Indicator.CNG)
NO_SIGNAL = IndicatorPacket(Indicator.NO_SIGNAL)


class Later(Scripted):
    """A Scripted session that also asks for ``later`` (a list of commands) at ``at``."""

    def __init__(self, script, at=None, later=()):
        super().__init__(script)
        self.at, self.later = at, list(later)

    def next_timer(self):
        return self.at

    def handle_timer(self, now):
        if self.at is not None and now >= self.at:
            self.at = None
            self._out += self.later


def timeline(term, until, *, hear_at=None):
    """Run ``term`` on its own timers to ``until``: (time, packet) of all it sent. With
    ``hear_at``, one datagram from the far end (a no-signal indicator) arrives then."""
    out, now = [], 0.0
    out += [(now, decode_ifp(r)) for _, r in term.packets_to_send()]
    far = UDPTLSender(T38Config())
    while True:
        t = term.next_timer()
        if hear_at is not None and (t is None or hear_at <= t):
            now, hear_at = hear_at, None
            term.receive_datagram(far.pack(encode_ifp(NO_SIGNAL)), now) if term.udptl \
                else term.receive_ifp(encode_ifp(NO_SIGNAL), now, seq=0)
        elif t is None or t > until:
            return out
        else:
            now = max(now, t)
            term.handle_timer(now)
        out += [(now, decode_ifp(r)) for _, r in term.packets_to_send()]


def cng_times(out):
    return [t for t, p in out if p == CNG]


@pytest.mark.parametrize("paced", [False, True])
def test_cng_repeats_every_period_until_the_session_gives_up(paced):
    assert CNG_PERIOD == 3.5                       # 0.5 s tone + 3 s silence
    s = Later([M.SendTone(M.Tone.CNG), M.Receive(M.Expect.HDLC)], at=12.0, later=[M.Hangup()])
    term = T38Terminal(s, T38Config(paced=paced, end_repeats=2), udptl=False)
    term.start(0.0)
    out = timeline(term, 30.0)
    # four bursts (0, 3.5, 7, 10.5), each indicator sent 1 + end_repeats times (paced,
    # end_repeat_ms apart): the Hangup at 12 s ends the cadence
    gap = 0.020 if paced else 0.0
    assert cng_times(out) == pytest.approx([k * 3.5 + r * gap for k in range(4) for r in range(3)])
    assert term.stats.cng_repeats == 3
    # every burst ends in no-signal (plus its repeats): paced after the 0.5 s tone
    ends = [t for t, p in out if p == NO_SIGNAL]
    off = 0.5 if paced else 0.0
    assert ends[::3] == pytest.approx([k * 3.5 + off for k in range(4)])
    assert len(ends) == 12
    assert term.next_timer() is None


@pytest.mark.parametrize("udptl", [False, True])
def test_cng_stops_on_the_first_datagram_heard(udptl):
    s = Scripted([M.SendTone(M.Tone.CNG), M.Receive(M.Expect.HDLC)])
    term = T38Terminal(s, T38Config(paced=True, end_repeats=0), udptl=udptl)
    term.start(0.0)
    if udptl:
        out = [(t, decode_ifp(d[3:3 + d[2]])) for t, d in _udptl_timeline(term, 20.0, 5.0)]
    else:
        out = timeline(term, 20.0, hear_at=5.0)
    assert cng_times(out) == pytest.approx([0.0, 3.5])      # nothing after 5 s
    assert term.stats.cng_repeats == 1 and term.next_timer() is None


def _udptl_timeline(term, until, hear_at):
    """timeline() for a UDPTL terminal: (time, datagram)."""
    out, now, far = [], 0.0, UDPTLSender(T38Config())
    out += [(now, d) for d in term.datagrams_to_send()]
    while True:
        t = term.next_timer()
        if hear_at is not None and (t is None or hear_at <= t):
            now, hear_at = hear_at, None
            term.receive_datagram(far.pack(encode_ifp(NO_SIGNAL)), now)
        elif t is None or t > until:
            return out
        else:
            now = max(now, t)
            term.handle_timer(now)
        out += [(now, d) for d in term.datagrams_to_send()]


@pytest.mark.parametrize("paced", [False, True])
def test_cng_stops_when_the_session_sends_anything_else(paced):
    s = Later([M.SendTone(M.Tone.CNG), M.Receive(M.Expect.HDLC)], at=5.0,
              later=[M.SendHDLC((FRAME,))])
    term = T38Terminal(s, T38Config(paced=paced, end_repeats=0), udptl=False)
    term.start(0.0)
    out = timeline(term, 40.0)
    assert cng_times(out) == pytest.approx([0.0, 3.5])
    assert any(t >= 5.0 and p == IndicatorPacket(Indicator.V21_PREAMBLE) for t, p in out)
    assert term.next_timer() is None


def test_ced_is_not_repeated():
    s = Scripted([M.SendTone(M.Tone.CED)])
    term = T38Terminal(s, T38Config(paced=False, end_repeats=0), udptl=False)
    term.start(0.0)
    out = timeline(term, 20.0)
    assert [p for _, p in out] == [IndicatorPacket(Indicator.CED), NO_SIGNAL]
    assert term.next_timer() is None


def test_answering_side_reports_cng_once():
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False), udptl=False)
    term.start(0.0)
    seq = 0
    for k in range(3):                       # three bursts: cng, no-signal
        for pkt in (CNG, NO_SIGNAL):
            term.receive_ifp(encode_ifp(pkt), k * 3.5, seq=seq)
            seq += 1
    tones = [e for _, e in s.got if isinstance(e, M.ToneDetected)]
    assert tones == [M.ToneDetected(M.Tone.CNG)]
    assert term.stats.ignored["CNG cadence"] == 2


class EarlyLoss(Network):
    """Drops every datagram sent before ``until`` seconds (both ways)."""

    def __init__(self, until: float, **kw):
        super().__init__(**kw)
        self.until = until

    def send(self, src, datagram, now):
        if now < self.until:
            self.counts[src] += 1
            return
        super().send(src, datagram, now)


def late_answer(caller, answerer, net, limit=120.0):
    """Run a call where the answering terminal starts only when the caller's first datagram
    reaches it (a raw T.38 line: it learns of the call from that datagram)."""
    ends, started, now = (caller, answerer), [True, False], 0.0
    caller.start(now)

    def flush(now):
        for i, t in enumerate(ends):
            if started[i]:
                for d in t.datagrams_to_send():
                    net.send(i, d, now)

    flush(now)
    while not (caller.done and answerer.done) and now < limit:
        times = [t.next_timer() for i, t in enumerate(ends) if started[i]] + [net.next_time()]
        times = [t for t in times if t is not None]
        if not times:
            break
        now = max(now, min(times))
        for dst, d in list(net.pop_due(now)):
            if not started[dst]:
                started[dst] = True
                ends[dst].start(now)
            ends[dst].receive_datagram(d, now)
        for i, t in enumerate(ends):
            nt = t.next_timer() if started[i] else None
            if nt is not None and nt <= now:
                t.handle_timer(now)
        flush(now)
    return now


@pytest.mark.parametrize("paced", [False, True])
def test_call_whose_first_3_s_are_lost_completes(paced):
    pages = make_pages(1, rows=120)
    cfg = T38Config(paced=paced)
    caller = T38Terminal(Session(T30Config(ecm=True), calling=True, pages=pages), cfg)
    answerer = T38Terminal(Session(T30Config(ecm=True), calling=False, receive=True), cfg)
    end = late_answer(caller, answerer, EarlyLoss(3.0))
    ra, rb = caller.session.result, answerer.session.result
    assert ra.status == "success" and rb.status == "success", (ra.reason, rb.reason)
    assert np.array_equal(rb.received_pages[0].image, pages[0].image)
    assert caller.stats.cng_repeats >= 1 and end < 35.0       # answered well within T1
