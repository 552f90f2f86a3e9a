"""Session.abort(): DCN is sent when the far end listens (T.30 §5.3.6.1.6).

The simulated line (xmfax/t30/pair.py) lets both ends hear everything; a real line is
half duplex: a station sending does not hear the other. ``HalfDuplex`` wraps a session
so that it does not hear V.21 frames that arrive while it is itself transmitting (what
made an early DCN cross the far end's MCF and left that end to run out its T2).
"""
from __future__ import annotations

import pytest

from xmfax.t30 import Session, T30Config
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import CarrierDown, CarrierUp, Hangup, HDLCFrame, Modulation, SendHDLC
from xmfax.t30.pair import Faults, Line
from xmfax.t30.result import Reason
from xmfax.t30.states import State

from .t30util import page

T4 = T30Config().timers.t4
T2 = T30Config().timers.t2


class HalfDuplex:
    """A session on a half-duplex modem: a V.21 signal whose carrier (preamble) comes
    while its own side is transmitting is not heard at all, up to its carrier-down."""

    def __init__(self, session: Session):
        self.session = session
        self.line: Line | None = None
        self.deaf: list[bytes] = []       # frames it missed
        self._deaf_burst = False

    def __getattr__(self, name):
        return getattr(self.session, name)

    def receive(self, ev, now):
        me = next(s for s in self.line.sides if s.session is self)
        if isinstance(ev, CarrierUp) and ev.modulation is Modulation.V21:
            self._deaf_burst = me.tx_free > now
        if self._deaf_burst and isinstance(ev, (CarrierUp, HDLCFrame, CarrierDown)):
            if isinstance(ev, HDLCFrame):
                self.deaf.append(bytes(ev.frame))
            elif isinstance(ev, CarrierDown):
                self._deaf_burst = False
            return
        self.session.receive(ev, now)


class AbortAt:
    """A frame hook: abort ``who`` right after ``side`` has sent its n-th ``fcf``."""

    def __init__(self, side: str, fcf: FCF, who: Session, nth: int = 1):
        self.side, self.fcf, self.who, self.nth = side, fcf, who, nth
        self.line: Line | None = None
        self.at: float | None = None
        self.seen = 0

    def __call__(self, side, frame, mod, n):
        if side == self.side and len(frame) > 2 and frame[2] & 0xFE == int(self.fcf) & 0xFE:
            self.seen += 1
            if self.seen == self.nth and self.at is None:
                self.at = self.line.now
                self.who.abort(self.line.now, "operator")
        return "ok"


def _call(abort_side: str, fcf: FCF, *, nth: int = 1, ecm: bool = True, pages: int = 3):
    """A 3-page call on a half-duplex line; ``abort_side`` aborts after ``fcf``."""
    tx = Session(T30Config(local_id="+1 555 0100", ecm=ecm), calling=True,
                 pages=[page(i, rows=200) for i in range(pages)])
    rx = Session(T30Config(local_id="+1 555 0199", ecm=ecm), calling=False, receive=True)
    a, b = HalfDuplex(tx), HalfDuplex(rx)
    hook = AbortAt(abort_side, fcf, tx if abort_side == "a" else rx, nth)
    line = Line(a, b, faults=Faults(frame=hook), start=False)
    a.line = b.line = hook.line = line
    tx.start(0.0)
    rx.start(0.0)
    line.run(until=300.0)
    return tx, rx, line, hook


def _dcn_sent(line: Line, side: str) -> list[float]:
    return [t for t, s, what in line.transcript if s == side and "DCN" in what]


@pytest.mark.parametrize("ecm,fcf", [(False, FCF.MPS), (True, FCF.PPS)])
def test_sender_abort_after_post_page_command_waits_for_the_answer(ecm, fcf):
    tx, rx, line, hook = _call("a", fcf, ecm=ecm)
    assert hook.at is not None
    assert tx.result.reason is Reason.ABORTED and tx.result.detail == "operator"
    # the far end heard our DCN (not crossed by its MCF) and ended on it, promptly
    assert rx.result.reason is Reason.UNEXPECTED_DCN, rx.result.text
    assert not any(fr[2] & 0xFE == int(FCF.DCN) for fr in line.sides[1].session.deaf)
    assert len(rx.result.pages_received) == 1      # page 1 was confirmed before the DCN
    # our DCN went out after the MCF we waited for, and ended the far end at once (not on T2)
    mcf = [t for t, s, what in line.transcript if s == "b" and "MCF" in what]
    assert mcf and _dcn_sent(line, "a")[0] > mcf[-1]
    assert rx.result.ended - mcf[-1] < 3.0 < T2


def test_sender_abort_during_training_waits_for_cfr():
    tx, rx, line, hook = _call("a", FCF.DCS, ecm=False)
    assert tx.result.reason is Reason.ABORTED
    assert rx.result.reason is Reason.UNEXPECTED_DCN, rx.result.text
    assert not rx.result.pages_received
    cfr = [t for t, s, what in line.transcript if s == "b" and "CFR" in what]
    assert cfr and _dcn_sent(line, "a")[0] > cfr[-1]
    assert not any("data" in w for t, s, w in line.transcript if s == "a" and t > cfr[-1])
    assert rx.result.ended - cfr[-1] < 3.0 < T2


@pytest.mark.parametrize("ecm", [False, True])
def test_receiver_abort_during_page_answers_the_next_command_with_dcn(ecm):
    """The receiver aborts when it confirms page 1; page 2 arrives, and its
    post-page command (MPS, or PPS) is answered with DCN."""
    tx, rx, line, hook = _call("b", FCF.MCF, ecm=ecm)
    assert rx.result.reason is Reason.ABORTED
    assert tx.result.reason is Reason.UNEXPECTED_DCN, tx.result.text
    assert tx.result.ended - hook.at < 30.0     # page 2's airtime, then at once (no T4 repeats)
    sent = [what for t, s, what in line.transcript if s == "a" and "DCN" not in what]
    assert not any("EOP" in w for w in sent)   # page 3 was never sent
    assert not any(fr[2] & 0xFE == int(FCF.DCN) for fr in line.sides[0].session.deaf)


def test_receiver_abort_during_tcf_answers_with_dcn_when_tcf_ends():
    """The receiver aborts as soon as it has sent DIS: DCS and TCF come, and the
    DCN answers the TCF (in place of CFR), not the DCS (it would cross the TCF)."""
    tx, rx, line, hook = _call("b", FCF.DIS, ecm=False)
    assert rx.result.reason is Reason.ABORTED
    assert tx.result.reason is Reason.UNEXPECTED_DCN, tx.result.text
    assert not rx.result.pages_received
    tcf = [t for t, s, what in line.transcript if s == "a" and "data" in what]
    assert len(tcf) == 1                            # the TCF, no page
    dcn = _dcn_sent(line, "b")
    assert dcn and dcn[0] > tcf[0] + 1.5            # after the 1.5 s TCF
    assert not any("CFR" in w for t, s, w in line.transcript)
    assert tx.result.ended - dcn[0] < 3.0 < T4 + T2


def test_abort_with_a_silent_far_end_is_bounded_by_t4():
    """No answer ever comes: DCN after T4, not after the 3 tries."""
    state = {}

    def silent(side, t):
        return side == "b" and "from" in state and t >= state["from"]

    tx = Session(T30Config(local_id="+1 555 0100", ecm=False), calling=True, pages=[page(0, rows=200)] * 2)
    rx = Session(T30Config(local_id="+1 555 0199", ecm=False), calling=False, receive=True)
    line = None

    def hook(side, frame, mod, n):
        if side == "a" and frame[2] & 0xFE == int(FCF.MPS) and "at" not in state:
            state["from"] = state["at"] = line.now
            tx.abort(line.now, "operator")
        return "ok"
    line = Line(tx, rx, faults=Faults(frame=hook, silent=silent))
    line.run(until=300.0)
    assert tx.result.reason is Reason.ABORTED
    assert tx.result.ended - state["at"] < T4 + 2.0       # MPS airtime + T4, one try only
    assert sum("MPS" in w for t, s, w in line.transcript if s == "a") == 1


def test_second_abort_sends_dcn_at_once():
    tx = Session(T30Config(ecm=False), calling=True, pages=[page(0, rows=200)])
    rx = Session(T30Config(ecm=False), calling=False, receive=True)
    line = Line(tx, rx)
    line.run(until=3.0)       # phase B under way: DIS heard, DCS going out
    assert tx.state is not State.DONE
    tx.abort(line.now, "first")
    assert tx.state is not State.DONE or tx.result.reason is Reason.ABORTED
    tx.abort(line.now, "again")
    assert tx.done and tx.result.reason is Reason.ABORTED
    cmds = tx.data_to_send()
    assert any(isinstance(c, SendHDLC) and c.frames[0][2] & 0xFE == int(FCF.DCN) for c in cmds)
    assert isinstance(cmds[-1], Hangup)


def test_abort_before_start_and_after_the_end():
    s = Session(T30Config(), calling=True, pages=[page(0)])
    s.abort(0.0, "never started")
    assert s.done and s.result.reason is Reason.ABORTED and not s.data_to_send()
    tx = Session(T30Config(), calling=True, pages=[page(0, rows=100)])
    rx = Session(T30Config(), calling=False, receive=True)
    Line(tx, rx).run()
    assert tx.result.reason is Reason.OK
    tx.abort(100.0)
    assert tx.result.reason is Reason.OK and not tx.data_to_send()


@pytest.mark.parametrize("ecm", [False, True])
@pytest.mark.parametrize("who", ["a", "b"])
def test_abort_at_any_moment_ends_the_far_end_on_our_dcn(ecm, who):
    """Abort at 0.5 s steps through a call: the far end always hears our DCN (or the
    call had already ended well), never a lost line or one of its own timeouts."""
    seen = set()
    for k in range(0, 60, 3):
        tx = Session(T30Config(ecm=ecm), calling=True, pages=[page(i, rows=200) for i in range(3)])
        rx = Session(T30Config(ecm=ecm), calling=False, receive=True)
        a, b = HalfDuplex(tx), HalfDuplex(rx)
        line = Line(a, b, start=False)
        a.line = b.line = line
        tx.start(0.0)
        rx.start(0.0)
        line.run(until=k * 0.5)
        me, other = (tx, rx) if who == "a" else (rx, tx)
        if me.done:
            continue
        at = line.now
        me.abort(at, "operator")
        line.run(until=at + 120.0)
        assert me.done and other.done
        assert me.result.reason in (Reason.ABORTED, Reason.OK), (k, me.result.text)
        assert other.result.reason in (Reason.UNEXPECTED_DCN, Reason.OK), (k, other.result.text)
        # at worst: our DIS still to send, then the far end's DCS and TCF, then our DCN
        assert other.result.ended - at < 12.0, k
        seen.add(me.result.reason)
    assert Reason.ABORTED in seen
