"""The end of a T.38 signal survives packet loss (issue #10): each indicator, and the
no-signal ending each transmission, is sent ``T38Config.end_repeats`` more times as new
datagrams. UDPTL redundancy carries a lost packet only in the datagrams after it, and
after the end of a signal the sending terminal falls silent to wait for the answer; the
repeats are those later datagrams. They must not delay SendComplete (T.30's timers), must
stop when a new signal starts, and a receiver must take them as no new event."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, run_terminals, test_pages as make_pages  # noqa: E402
from test_terminal_ifp import FRAME, Scripted, feed, run_until_idle, sent  # noqa: E402

from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import EC_FEC, EC_REDUNDANCY, T38Config  # noqa: E402
from xmfax.t38.ifp import DataPacket, FieldType, Indicator, IndicatorPacket, decode_ifp, encode_ifp  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402
from xmfax.t38.udptl import decode_udptl  # noqa: E402

NO_SIGNAL = IndicatorPacket(Indicator.NO_SIGNAL)
PREAMBLE = IndicatorPacket(Indicator.V21_PREAMBLE)


def test_config_defaults_and_range():
    cfg = T38Config()
    assert cfg.end_repeats == 2 and cfg.end_repeat_ms == 20
    assert T38Config(end_repeats=0).end_repeats == 0 and T38Config(end_repeats=10).end_repeats == 10
    for bad in (-1, 11, 2.0, None, True):
        with pytest.raises(ValueError, match="end_repeats"):
            T38Config(end_repeats=bad)
    for bad in (0, 101, 20.0):
        with pytest.raises(ValueError, match="end_repeat_ms"):
            T38Config(end_repeat_ms=bad)


def test_unpaced_repeats_follow_at_once():
    s = Scripted([M.SendHDLC((FRAME,)), M.SendTone(M.Tone.CED)])
    term = T38Terminal(s, T38Config(paced=False, end_repeats=2), udptl=False)
    term.start(0.0)
    run_until_idle(term)
    pk = sent(term)
    assert pk[:3] == [PREAMBLE] * 3
    assert type(pk[3]) is DataPacket and pk[3].fields[-1].type == FieldType.HDLC_FCS_OK_SIG_END
    ced = IndicatorPacket(Indicator.CED)
    assert pk[4:] == [NO_SIGNAL] * 3 + [ced] * 3 + [NO_SIGNAL] * 3
    assert term.stats.end_repeats == 8 and term.stats.packets_sent == len(pk)
    assert [e for _, e in s.got] == [M.SendComplete()]        # one per SendHDLC, none more
    assert term.done is False                                   # the Scripted session never ends


def timed(term, s, until):
    """Run ``term`` on its timers; (time, packet) of everything it sent."""
    out, now = [], 0.0
    out += [(now, decode_ifp(r)) for _, r in term.packets_to_send()]
    while True:
        t = term.next_timer()
        if t is None or t > until:
            return out
        now = max(now, t)
        term.handle_timer(now)
        out += [(now, decode_ifp(r)) for _, r in term.packets_to_send()]


def test_paced_repeats_are_spaced_and_do_not_delay_send_complete():
    s = Scripted([M.SendHDLC((FRAME,))])
    term = T38Terminal(s, T38Config(paced=True, end_repeats=3, end_repeat_ms=15), udptl=False)
    term.start(0.0)
    out = timed(term, s, 10.0)
    pre = [t for t, p in out if p == PREAMBLE]
    assert pre == pytest.approx([0.0, 0.015, 0.030, 0.045])     # inside the 1 s preamble
    ns = [t for t, p in out if p == NO_SIGNAL]
    end = ns[0]
    assert ns == pytest.approx([end, end + 0.015, end + 0.030, end + 0.045])
    (t_done, ev), = s.got
    assert ev == M.SendComplete() and t_done == pytest.approx(end, abs=1e-3)   # not after the repeats
    assert out[-1][1] == NO_SIGNAL and term.next_timer() is None


def test_a_new_signal_cancels_the_last_ones_repeats():
    # T.30 §5.3.2.3: 75 ms of silence between DCS and TCF; repeats 50 ms apart: one fits
    s = Scripted([M.SendHDLC((FRAME,)), M.SendSilence(75),
                  M.SendData(M.Modulation.V29_9600, bytes(100))])
    term = T38Terminal(s, T38Config(paced=True, end_repeats=4, end_repeat_ms=50), udptl=False)
    term.start(0.0)
    out = timed(term, s, 10.0)
    train = next(i for i, (_, p) in enumerate(out) if p == IndicatorPacket(Indicator.V29_9600_TRAINING))
    before = [p for _, p in out[:train]]
    assert before[-2:] == [NO_SIGNAL, NO_SIGNAL]                 # the end and one repeat
    assert NO_SIGNAL not in [p for _, p in out[train:-5]]       # none inside the next signal
    assert [p for _, p in out[-5:]] == [NO_SIGNAL] * 5          # its own end and repeats


def test_zero_turns_it_off():
    s = Scripted([M.SendHDLC((FRAME,))])
    term = T38Terminal(s, T38Config(paced=False, end_repeats=0), udptl=False)
    term.start(0.0)
    run_until_idle(term)
    assert [p for p in sent(term) if type(p) is IndicatorPacket] == [PREAMBLE, NO_SIGNAL]
    assert term.stats.end_repeats == 0


def test_receiver_takes_repeats_as_no_new_event():
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False), udptl=False)
    term.start(0.0)
    ced = IndicatorPacket(Indicator.CED)
    feed(term, ced, ced, ced, NO_SIGNAL, NO_SIGNAL, NO_SIGNAL, PREAMBLE, PREAMBLE, PREAMBLE)
    assert [e for _, e in s.got] == [M.ToneDetected(M.Tone.CED)]
    assert term.stats.ignored["repeated indicator"] == 6
    # a loss between two copies: what was lost may have changed the line, so it counts again
    term.receive_ifp(encode_ifp(ced), 1.0, seq=0)
    term.receive_ifp(encode_ifp(ced), 1.0, seq=2)
    assert [e for _, e in s.got][-2:] == [M.ToneDetected(M.Tone.CED)] * 2


class DropSignalEnds(Network):
    """Drops the last two datagrams of every signal: the one whose new packet ends the
    signal's data (a sig-end field) and the no-signal sent after it, and the no-signal
    ending a tone. Repeats of that no-signal (a no-signal after a no-signal) go through."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.prev = [None, None]
        self.dropped = 0

    def send(self, src, datagram, now):
        pkt = decode_ifp(decode_udptl(datagram).primary)
        prev, self.prev[src] = self.prev[src], pkt
        ends = type(pkt) is DataPacket and any(f.type in (FieldType.HDLC_FCS_OK_SIG_END,
                                                          FieldType.HDLC_SIG_END,
                                                          FieldType.T4_NON_ECM_SIG_END)
                                               for f in pkt.fields)
        if ends or (pkt == NO_SIGNAL and prev is not None and prev != NO_SIGNAL):
            self.dropped += 1
            return
        super().send(src, datagram, now)


def call(cfg, ecm):
    pages = make_pages(1, rows=120)
    sa = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    sb = Session(T30Config(ecm=ecm), calling=False, receive=True)
    net = DropSignalEnds()
    a, b = T38Terminal(sa, cfg), T38Terminal(sb, cfg)
    run_terminals(a, b, net, limit=300.0)
    return pages, sa, sb, a, b, net


# Not FEC unpaced without ECM: there a page's last data packet is near T38FaxMaxDatagram and
# no FEC entry covering it fits in a datagram (UDPTLSender trims them); nothing can bring it
# back, and the call fails honestly (RTN) with or without the repeats.
@pytest.mark.parametrize("ecm,paced,ec", [
    (True, True, EC_REDUNDANCY), (True, False, EC_REDUNDANCY), (False, True, EC_REDUNDANCY),
    (False, False, EC_REDUNDANCY), (True, True, EC_FEC), (True, False, EC_FEC), (False, True, EC_FEC)])
def test_call_survives_losing_the_end_of_every_signal(ecm, paced, ec):
    cfg = T38Config(paced=paced, udp_ec=ec, fec_span=2, fec_entries=2)
    pages, sa, sb, a, b, net = call(cfg, ecm)
    assert net.dropped > 10
    assert sa.result.status == "success", (sa.result.reason, sa.result.detail)
    assert sb.result.status == "success", (sb.result.reason, sb.result.detail)
    (got,) = sb.result.received_pages
    assert np.array_equal(got.image, pages[0].image)
    assert b.stats.ignored["repeated indicator"] > 0 and a.stats.end_repeats > 0
    assert a.done and b.done and not a._tail and not b._tail


@pytest.mark.parametrize("paced", [True, False])
@pytest.mark.parametrize("ecm", [True, False])
def test_without_repeats_the_same_losses_fail_the_call(ecm, paced):
    pages, sa, sb, a, b, net = call(T38Config(paced=paced, end_repeats=0), ecm)
    assert sa.result.status == "failure" and sa.result.reason is not None
    assert not sb.result.received_pages or sb.result.status == "failure"
