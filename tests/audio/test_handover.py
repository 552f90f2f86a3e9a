"""A call switched from audio to T.38 during the fax (a gateway's re-INVITE after it hears
CED or DIS): the T.30 session goes on over T.38, unchanged. AudioTerminal.detach hands the
session over with the commands not yet sent whole; T38Terminal.resume takes it without
starting it again. Sans-IO, on a fake clock (tests/audio/handover.py).

The switch is made in every phase of a call (before and during CED, DIS, DCS, TCF, CFR, the
page, the post-page command, MCF, DCN), early, midway and late in it, ECM on and off; at
both ends at once, and one end well before the other. The fax completes with the page
pixel-identical, or fails honestly: never a success with a damaged or missing page."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax.t30 import modem as M
from xmfax.t38.config import T38Config

sys.path.insert(0, os.path.dirname(__file__))
import handover as H  # noqa: E402

PHASES = ["CED", "DIS", "DCS", "TCF", "CFR", "page", "post-page", "MCF", "DCN"]
_REF: dict = {}


def reference(ecm: bool) -> dict:
    """When each signal of an unswitched call starts and ends (the runs are deterministic)."""
    if ecm not in _REF:
        call = H.make_call(ecm)
        H.run_audio(call, None)
        assert call.sender.result.status == call.receiver.result.status == "success"
        ph = H.phases(call.timeline)
        ph["post-page"] = ph["PPS" if ecm else "EOP"]
        _REF[ecm] = ph
    return _REF[ecm]


def delivered(call: H.Call) -> bool:
    """Both ends succeeded with the pages pixel-identical (checked, not assumed)."""
    s, r = call.sender.result, call.receiver.result
    if not (s.status == r.status == "success"):
        return False
    got = r.received_pages
    assert len(got) == len(call.pages)
    for p, q in zip(call.pages, got):
        assert np.array_equal(p.image, q.image)
    assert all(st.bad_rows == 0 for st in r.pages_received)
    return True


def assert_honest(call: H.Call) -> None:
    """Success or failure, nothing damaged is ever delivered or confirmed."""
    s, r = call.sender.result, call.receiver.result
    assert s.status in ("success", "failure") and r.status in ("success", "failure")
    for p, q in zip(call.pages, r.received_pages):       # every page kept is the page sent
        assert np.array_equal(p.image, q.image)
    assert len(r.received_pages) <= len(call.pages)
    if s.status == "success":                            # confirmed: it is there, whole
        assert r.status == "success" and len(r.received_pages) == len(call.pages)
    if r.status == "success":
        assert len(r.received_pages) == len(call.pages)


def switched_call(ecm: bool, at: float, **kw) -> H.Call:
    call = H.make_call(ecm)
    H.run_audio(call, at)
    assert not (call.a.done and call.b.done)
    H.switch_to_t38(call, **kw)
    return call


@pytest.mark.parametrize("offset", [0.05, 0.5, 0.95])
@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_switch_in_every_phase_completes_the_fax(ecm, phase, offset):
    start, end = reference(ecm)[phase]
    call = switched_call(ecm, start + offset * (end - start))
    assert delivered(call), (call.sender.result.reason, call.receiver.result.reason)


@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_switch_before_ced(ecm):
    call = switched_call(ecm, 0.04)
    assert [H.label(c) for c in call.handed[1]][:1] == ["CED"]      # sent again, whole, as T.38
    assert delivered(call)


def test_the_command_on_the_line_is_handed_over_whole():
    start, end = reference(True)["DCS"]
    call = H.make_call(True)
    H.run_audio(call, (start + end) / 2)
    on_line = call.a._tx.command
    handed = call.a.detach(call.now)
    assert handed[0] is on_line and H.label(on_line) == "DCS"
    assert any(isinstance(c, M.SendData) and H.label(c) == "TCF" for c in handed)   # queued after it


def test_a_non_ecm_page_cut_is_answered_rtn_and_sent_again():
    start, end = reference(False)["page"]
    call = H.make_call(False)
    H.run_audio(call, start + 0.9 * (end - start))
    ends = H.switch_to_t38(call)
    responses = [st.response for st in call.receiver.result.pages_received]
    rejected = [e for e in ends[1].events() if type(e).__name__ == "PageRejected"]
    assert delivered(call)
    assert rejected and "RTC" in rejected[0].reason          # the half page was refused ...
    assert responses == ["MCF"]                               # ... and only the whole one kept


def test_detach_leaves_the_audio_terminal_inert():
    start, end = reference(True)["DIS"]
    call = H.make_call(True)
    H.run_audio(call, (start + end) / 2)
    term = call.b
    assert term.next_timer() is not None
    handed = term.detach(call.now)
    assert handed and term.next_timer() is None
    assert not np.any(term.samples_to_send(160, call.now))
    before = term.session.next_timer()
    term.receive_samples(np.full(160, 8000, np.int16), call.now + 0.02)
    term.handle_timer(call.now + 100.0)                      # the session's timers are not served
    assert term.session.next_timer() == before and not term.session.done
    assert term.detach(call.now) == []                       # once only


def test_detach_ends_a_carrier_being_received():
    start, end = reference(True)["DIS"]
    call = H.make_call(True)
    H.run_audio(call, start + 0.8 * (end - start))           # the caller hears DIS's V.21 flags
    assert call.a._v21_up
    told = []
    feed = call.a._feed
    call.a._feed = lambda ev, now: (told.append(ev), feed(ev, now))
    call.a.detach(call.now)
    assert M.CarrierDown(M.Modulation.V21) in told


def test_resume_does_not_start_the_session_again():
    call = H.make_call(True)
    H.run_audio(call, 1.0)
    from xmfax.t38.terminal import T38Terminal
    term = T38Terminal(call.receiver, T38Config(), call.now)
    term.resume(call.now, call.b.detach(call.now))
    assert term.datagrams_to_send()                         # the CED handed over goes first
    with pytest.raises(RuntimeError):
        term.resume(call.now)
    with pytest.raises(RuntimeError):
        term.resume(call.now, [])


@pytest.mark.parametrize("first", [0, 1], ids=["caller-first", "answerer-first"])
@pytest.mark.parametrize("skew", [0.1, 0.7, 2.0])
@pytest.mark.parametrize("ecm", [True, False], ids=["ecm", "no-ecm"])
def test_one_end_switches_before_the_other(ecm, skew, first):
    """A re-INVITE reaches one end before the other: meanwhile what that end sends on audio
    is lost. Every phase, three offsets: honest always; delivered in nearly every case (an
    answer sent while the far end repeats its command may be lost, as on a real line: T.30
    then gives up, at both ends)."""
    ok = total = 0
    for phase in PHASES:
        start, end = reference(ecm)[phase]
        for offset in (0.05, 0.5, 0.95):
            call = switched_call(ecm, start + offset * (end - start), skew=skew, first=first)
            assert_honest(call)
            total += 1
            ok += delivered(call)
    assert ok >= total - 2, f"{ok} of {total} delivered"


@settings(max_examples=30)
@given(at=st.floats(0.02, 14.4), skew=st.sampled_from([0.0, 0.0, 0.3, 1.5]),
       first=st.integers(0, 1), ecm=st.booleans())
def test_switch_at_any_instant_is_honest(at, skew, first, ecm):
    call = switched_call(ecm, at, skew=skew, first=first)
    assert_honest(call)
    if skew == 0.0:
        assert delivered(call)
