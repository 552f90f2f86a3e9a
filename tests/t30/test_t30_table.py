"""The T.30 table is the session's one dispatcher (issue #13 §4).

* no state guard outside the table module: the session asks the table (or a state's
  Spec), never compares states itself;
* every action the table names exists, every action method is named, every state
  it enters has an entry action and a timer;
* a pair missing from the table follows the one rule of states.missing (T.30 §5.4.3):
  in a state awaiting the answer to our command, a final response the table does not
  take ends the call (PROTOCOL); anywhere else the input is ignored. Checked by
  replaying real calls up to every state they pass and feeding each frame type there;
* receive() never lets a LocalProtocolError (or anything else) escape for what the
  far end sent.
"""
from __future__ import annotations

import pathlib
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xmfax.t30 as t30pkg
from xmfax.t30 import Reason, Session, T30Config
from xmfax.t30 import frames as F
from xmfax.t30.events import BadFrame
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import HDLCFrame, Modulation
from xmfax.t30.pair import Line
from xmfax.t30.states import COMMANDS, SPEC, TABLE, Input, State, Timer

from .t30util import page

T30_DIR = pathlib.Path(t30pkg.__file__).parent
GUARD = re.compile(r"\b(?:state|st)\s+(?:is|in|not\s+in|==|!=)\s|\bState\.[A-Z_]+\s+(?:is|in|==)\s")


def test_no_state_guard_outside_the_table_module():
    found = []
    for path in sorted(T30_DIR.glob("*.py")):
        if path.name == "states.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if GUARD.search(code):
                found.append(f"{path.name}:{n}: {line.strip()}")
    assert not found, "state guards outside states.py:\n" + "\n".join(found)


def test_the_guard_pattern_catches_guards():
    for bad in ("if self.state is State.DONE:", "if st in (State.A, State.B):",
                "elif self.state not in _COMMANDER:", "return self.state == State.IDLE"):
        assert GUARD.search(bad), bad
    for fine in ("if SPEC[self.state].commander:", "self.state = new", "allowed(self.state, inp)"):
        assert not GUARD.search(fine), fine


def test_every_action_exists_and_every_action_method_is_named():
    named = {m.action for m in TABLE.values() if m.action}
    methods = {n[len("_do_"):] for n in dir(Session) if n.startswith("_do_")}
    assert named <= methods, f"actions without a method: {named - methods}"
    assert methods <= named, f"_do_ methods the table never names: {methods - named}"
    for (state, inp), move in TABLE.items():
        assert (move.to is None) != (move.action is None), (state, inp)
        if inp.name.startswith("FR_") or inp in (Input.TIMEOUT, Input.DATA, Input.ABORT):
            assert move.action, f"a heard input names an action: {state.name} {inp.name}"


def test_every_state_has_a_spec_an_entry_action_and_a_timeout():
    for state in State:
        spec = SPEC[state]
        if state is not State.IDLE:
            assert hasattr(Session, f"_enter_{state.name.lower()}"), state
        if spec.live and state is not State.SEND_DCN:
            assert spec.timer is not Timer.NONE, state
            assert (state, Input.TIMEOUT) in TABLE, f"{state.name}: what its timer's expiry is"
            assert (state, Input.FR_DCN) in TABLE and (state, Input.LINE_DOWN) in TABLE
        if spec.commander:
            assert spec.timer is Timer.T4


# ---------------------------------------------------------------------- the missing-pair rule
class Recorder(Session):
    """A session that logs every call made to it, so a prefix can be replayed."""

    def __init__(self, *args, **kw):
        self.calls: list[tuple[str, object, float]] = []
        self.ctor = (args, kw)
        super().__init__(*args, **kw)

    def start(self, now):
        self.calls.append(("start", None, now))
        super().start(now)

    def receive(self, event, now):
        self.calls.append(("receive", event, now))
        super().receive(event, now)

    def handle_timer(self, now):
        self.calls.append(("timer", None, now))
        super().handle_timer(now)


def _replay(rec: Recorder, n: int) -> Session:
    args, kw = rec.ctor
    s = Session(*args, **kw)
    for what, ev, now in rec.calls[:n]:
        if what == "start":
            s.start(now)
        elif what == "receive":
            s.receive(ev, now)
        else:
            s.handle_timer(now)
    s.data_to_send()
    s.events()
    return s


def _probe_frames() -> dict[FCF, bytes]:
    dis = F.DIS().encode()
    dcs = F.DCS(modulation=Modulation.V27TER_4800).encode()
    fifs = {FCF.DIS: dis, FCF.DTC: dis, FCF.DCS: dcs, FCF.PPR: bytes(32),
            FCF.PPS: F.encode_pps(0, 0, 0, 1), FCF.EOR: bytes(1),
            FCF.CTC: F.encode_ctc(Modulation.V27TER_4800)}
    out = {}
    for fcf in (FCF.DIS, FCF.DTC, FCF.DCS, FCF.CFR, FCF.FTT, FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP,
                FCF.PIN, FCF.PPR, FCF.RNR, FCF.ERR, FCF.CTR, FCF.MPS, FCF.EOP, FCF.EOM, FCF.PPS,
                FCF.EOR, FCF.CTC, FCF.RR, FCF.CRP, FCF.DCN, FCF.FNV):
        out[fcf] = F.Frame(fcf, fifs.get(fcf, b""), 1, True).encode()
    return out


_HEARD_OF = {FCF.DIS: Input.FR_DIS, FCF.DTC: Input.FR_DTC, FCF.DCS: Input.FR_DCS,
             FCF.CFR: Input.FR_TRAINING, FCF.FTT: Input.FR_TRAINING, FCF.CTR: Input.FR_CTR,
             FCF.PPS: Input.FR_PPS, FCF.EOR: Input.FR_EOR, FCF.CTC: Input.FR_CTC, FCF.RR: Input.FR_RR,
             FCF.CRP: Input.FR_CRP, FCF.DCN: Input.FR_DCN, FCF.FNV: Input.FR_OTHER,
             **dict.fromkeys((FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN), Input.FR_PAGE_ANSWER),
             **dict.fromkeys((FCF.PPR, FCF.RNR, FCF.ERR), Input.FR_ECM_ANSWER),
             **dict.fromkeys((FCF.MPS, FCF.EOP, FCF.EOM), Input.FR_PMC)}


def _recorded_calls() -> list[Recorder]:
    out = []
    for ecm in (False, True):
        cfg = T30Config(ecm=ecm)
        tx = Recorder(cfg, calling=True, pages=[page(1, rows=120), page(2, rows=120)])
        rx = Recorder(cfg, calling=False, receive=True)
        Line(tx, rx).run()
        assert tx.result.reason is Reason.OK and rx.result.reason is Reason.OK
        out += [tx, rx]
    poller = Recorder(T30Config(), calling=True, receive=True)
    polled = Recorder(T30Config(), calling=False, pages=[page(3, rows=80)])
    Line(poller, polled).run()
    assert poller.result.reason is Reason.OK
    return out + [poller, polled]


def _state_points(rec: Recorder, last: bool = False) -> dict[State, int]:
    """For each state the call passed, a prefix of its calls that leaves it there (the
    first such prefix, or with ``last`` the last: our command is out by then)."""
    points: dict[State, int] = {}
    s = Session(*rec.ctor[0], **rec.ctor[1])
    for n, (what, ev, now) in enumerate(rec.calls, 1):
        if what == "start":
            s.start(now)
        elif what == "receive":
            s.receive(ev, now)
        else:
            s.handle_timer(now)
        if last:
            points[s.state] = n
        else:
            points.setdefault(s.state, n)
    return points


@pytest.fixture(scope="module")
def state_points():
    return [(rec, state, n) for rec in _recorded_calls() for last in (False, True)
            for state, n in _state_points(rec, last).items() if SPEC[state].live]


def test_the_recorded_calls_pass_the_main_states(state_points):
    seen = {state for _, state, _ in state_points}
    assert {State.WAIT_DIS, State.SEND_DIS, State.SEND_DTC, State.SEND_DCS, State.RX_TCF,
            State.SEND_PAGE, State.SEND_BLOCK, State.RX_PAGE, State.RX_WAIT_PMC,
            State.RX_WAIT_DCN} <= seen


def test_missing_pairs_follow_the_one_rule(state_points):
    probes = _probe_frames()
    checked = 0
    for rec, state, n in state_points:
        for fcf, raw in probes.items():
            inp = _HEARD_OF[fcf]
            if (state, inp) in TABLE:
                continue
            s = _replay(rec, n)
            assert s.state is state
            s.receive(HDLCFrame(raw, True, Modulation.V21), rec.calls[n - 1][2] + 0.01)   # never raises
            stale = any(isinstance(e, BadFrame) and "ignored" in e.reason for e in s.events())
            if SPEC[state].commander and inp not in COMMANDS and not stale:
                assert s.result.reason is Reason.PROTOCOL, (state, fcf)
                assert "no answer" in s.result.detail
            else:
                assert s.state is state and s.result.reason is None, (state, fcf)
                assert s.data_to_send() == [], (state, fcf)
            checked += 1
    assert checked > 100


def test_no_exception_escapes_receive_for_any_frame_in_any_state(state_points):
    probes = _probe_frames()
    for rec, state, n in state_points:
        for fcf, raw in probes.items():
            s = _replay(rec, n)
            now = rec.calls[n - 1][2] + 0.01
            s.receive(HDLCFrame(raw, True, Modulation.V21), now)        # must not raise
            s.receive(HDLCFrame(raw[:3], True, Modulation.V21), now)    # a FIF cut short
            s.handle_timer(now + 100.0)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_frame_in_any_state_is_taken_without_an_exception(state_points, data):
    rec, state, n = data.draw(st.sampled_from(state_points))
    fcf = data.draw(st.integers(0, 255))
    fif = data.draw(st.binary(max_size=40))
    final = data.draw(st.booleans())
    hs = data.draw(st.booleans())
    s = _replay(rec, n)
    raw = bytes((0xFF, 0x13 if final else 0x03, fcf)) + fif
    now = rec.calls[n - 1][2] + 0.01
    s.receive(HDLCFrame(raw, data.draw(st.booleans()), Modulation.V17_9600 if hs else Modulation.V21), now)
    s.handle_timer(now + 100.0)
    assert s.state in State


class WrongOutcome(Session):
    """Fires an outcome its state has no move for: our own mistake (LocalProtocolError)."""

    def _do_dis(self, fr, f=None):
        self._go(Input.CTR)


def test_a_local_protocol_error_on_remote_input_becomes_a_protocol_outcome():
    tx = WrongOutcome(T30Config(), calling=True, pages=[page(1, rows=60)])
    rx = Session(T30Config(), calling=False, receive=True)
    Line(tx, rx).run()
    assert tx.done and tx.result.reason is Reason.PROTOCOL
    assert "no transition from WAIT_DIS on CTR" in tx.result.detail


def test_an_unexpected_command_is_ignored_and_an_unexpected_response_ends_the_call():
    # WAIT_DIS (no command of ours outstanding): MCF is ignored, the call goes on
    rx = Session(T30Config(), calling=True, pages=[page(1, rows=60)])
    rx.start(0.0)
    rx.data_to_send()
    rx.receive(HDLCFrame(F.Frame(FCF.MCF, b"", 0, True).encode(), True, Modulation.V21), 1.0)
    assert rx.state is State.WAIT_DIS and rx.result.reason is None and rx.data_to_send() == []
    # SEND_DTC (our DTC awaits DCS): a final MCF answers nothing we asked: PROTOCOL, DCN
    poller = Recorder(T30Config(), calling=True, receive=True)
    polled = Session(T30Config(), calling=False, pages=[page(3, rows=60)])
    Line(poller, polled).run()
    n = _state_points(poller, last=True)[State.SEND_DTC]
    s = _replay(poller, n)
    s.receive(HDLCFrame(F.Frame(FCF.MCF, b"", 1, True).encode(), True, Modulation.V21),
              poller.calls[n - 1][2] + 0.01)
    assert s.result.reason is Reason.PROTOCOL and s.state is State.DONE
    # ... but a command there (a DIS repeated, an EOP) is not "no answer"
    s = _replay(poller, n)
    s.receive(HDLCFrame(F.Frame(FCF.EOP, b"", 1, True).encode(), True, Modulation.V21),
              poller.calls[n - 1][2] + 0.01)
    assert s.state is State.SEND_DTC and s.result.reason is None
