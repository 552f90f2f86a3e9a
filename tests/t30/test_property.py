"""Property: whatever the far end and the line do, a session ends in DONE with a
reason, never raises, and never loops (every live state has a timer)."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmfax.page import Resolution
from xmfax.t30 import Session, T30Config
from xmfax.t30 import frames as F
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import (CarrierDown, CarrierUp, DataReceived, HDLCFrame, LineLost, Modulation,
                             SendComplete, Tone, ToneDetected, WrongCarrier)

from .t30util import page

HS = [m for m in Modulation if m is not Modulation.V21]
_PAGE = page(1, rows=40)

_FIFS = {
    FCF.DIS: [F.DIS().encode(), F.DIS(ecm=True, compressions=frozenset({"mh", "mr", "mmr"})).encode(),
              F.DIS(ready_to_transmit=True).encode()],
    FCF.DTC: [F.DIS(ready_to_receive=True).encode()],
    FCF.DCS: [F.DCS(modulation=m, resolution=r, ecm=e, compression=c).encode()
              for m in (Modulation.V17_14400, Modulation.V27TER_2400)
              for r in (Resolution.STANDARD, Resolution.FINE)
              for e, c in ((False, "mh"), (True, "mmr"))],
    FCF.PPS: [F.encode_pps(x, 0, b, n) for x in (0, 0x4E, 0x2F, 0x8E) for b in (0, 1) for n in (1, 3)],
    FCF.PPR: [F.encode_ppr({0}), F.encode_ppr(set(range(256)))],
    FCF.CTC: [F.encode_ctc(Modulation.V29_9600)],
    FCF.EOR: [b"\x2e", b"\x00"],
    FCF.TSI: [F.encode_id("123")], FCF.CSI: [F.encode_id("456")],
    FCF.NSF: [b"\x00\x01\x02"],
}

frame_st = st.one_of(
    st.builds(lambda f, fif, x: F.Frame(f, fif, x).encode(),
              st.sampled_from(list(FCF)), st.sampled_from([b""]), st.integers(0, 1)),
    st.sampled_from(list(_FIFS)).flatmap(
        lambda f: st.builds(lambda fif, x: F.Frame(f, fif, x).encode(), st.sampled_from(_FIFS[f]),
                            st.integers(0, 1))),
    st.binary(max_size=40),
)
ecm_frame_st = st.one_of(
    st.builds(lambda n, d: F.fcd(n, d), st.integers(0, 3), st.binary(min_size=1, max_size=64)),
    st.just(F.RCP_FRAME), st.binary(max_size=20))

event_st = st.one_of(
    st.builds(HDLCFrame, frame_st, st.booleans(), st.just(Modulation.V21)),
    st.builds(HDLCFrame, ecm_frame_st, st.booleans(), st.sampled_from(HS)),
    st.builds(DataReceived, st.one_of(st.binary(max_size=300), st.just(bytes(2700))), st.sampled_from(HS)),
    st.builds(CarrierUp, st.sampled_from(list(Modulation))),
    st.builds(CarrierDown, st.sampled_from(list(Modulation))),
    st.builds(SendComplete),
    st.builds(WrongCarrier, st.sampled_from(list(Modulation))),
    st.builds(ToneDetected, st.sampled_from(list(Tone))),
    st.builds(LineLost, st.just("x")) .filter(lambda _: True),
    st.floats(0.0, 40.0),           # let time pass (and timers fire)
)


def _play(s: Session, events: list) -> None:
    """Feed ``events`` to a started session (a float: that much time passes and timers
    fire; "stored"/"failed": the page waiting for storage is stored or fails; anything
    else: a modem event 10 ms later), then let the silent far end run it out."""
    now = 0.0
    for ev in events:
        if ev in ("stored", "failed"):
            if s.awaiting_storage is not None:
                s.page_stored(s.awaiting_storage, now, None if ev == "stored" else "disk full")
        elif isinstance(ev, float):
            now += ev
            s.handle_timer(now)
        else:
            now += 0.01
            s.receive(ev, now)
        s.data_to_send()
        s.events()
    _run_out(s, now)


def _run_out(s: Session, now: float) -> None:
    """The far end is silent from ``now`` on: the session must end by its own timers."""
    for _ in range(200):
        if s.done:
            break
        t = s.next_timer()
        assert t is not None, f"live state {s.state} with no timer"
        now = max(now, t)
        s.handle_timer(now)
        s.data_to_send()
    assert s.done, s.state


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(role=st.sampled_from(["send", "receive", "poll", "polled"]), ecm=st.booleans(),
       events=st.lists(event_st, max_size=60))
def test_any_input_ends_cleanly(role, ecm, events):
    cfg = T30Config(ecm=ecm)
    if role == "send":
        s = Session(cfg, calling=True, pages=[_PAGE, _PAGE])
    elif role == "receive":
        s = Session(cfg, calling=False, receive=True)
    elif role == "poll":
        s = Session(cfg, calling=True, receive=True)
    else:
        s = Session(cfg, calling=False, pages=[_PAGE])
    s.start(0.0)
    _play(s, events)       # then the far end is silent: its own timers must end the call
    assert s.result.reason is not None and s.result.status in ("success", "failure")
    assert s.next_timer() is None


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ecm=st.booleans(), polling=st.booleans(),
       fates=st.lists(st.sampled_from(["ok"] * 12 + ["drop", "corrupt", "hangup"]), max_size=80),
       damage=st.lists(st.booleans(), max_size=12),
       silent=st.one_of(st.none(), st.tuples(st.sampled_from("ab"), st.floats(0, 60))))
def test_two_engines_with_random_faults_both_end(ecm, polling, fates, damage, silent):
    """Two real engines, with a random fate for every frame, random damage to
    high-speed data and maybe one side falling silent: both end with a reason."""
    from xmfax.t30.pair import Faults, Line

    it = iter(fates)
    dmg = iter(damage)

    def frame(side, fr, mod, n):
        return next(it, "ok")

    def data(side, d, mod, n):
        if next(dmg, False) and d:
            b = bytearray(d)
            for k in range(0, len(b), 37):
                b[k] ^= 0x5A
            return bytes(b)
        return d

    faults = Faults(frame=frame, data=data,
                    silent=(lambda s, t: s == silent[0] and t >= silent[1]) if silent else None)
    pages = [_PAGE, page(2, rows=40)]
    cfg = T30Config(ecm=ecm)
    if polling:
        a, b = Session(cfg, calling=True, receive=True), Session(cfg, calling=False, pages=pages)
    else:
        a, b = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    line = Line(a, b, faults=faults)
    line.run(until=5000.0, max_steps=50_000)
    assert a.done and b.done, (a.state, b.state, line.now)
    for s in (a, b):
        assert s.result.reason is not None
    rx = a if polling else b
    # whatever happened, pages delivered are whole and in order
    assert len(rx.result.received_pages) <= 2
    if a.result.ok and b.result.ok:
        assert len(rx.result.received_pages) == 2


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ecm=st.booleans(), events=st.lists(st.one_of(event_st, st.sampled_from(["stored", "failed"])),
                                         max_size=60))
def test_receiver_awaiting_storage_ends_cleanly(ecm, events):
    """A receiver with confirm_storage under any input, told at random moments that its
    page was stored (or not): it never raises and always ends by its own timers."""
    s = Session(T30Config(ecm=ecm, confirm_storage=True), calling=False, receive=True)
    s.start(0.0)
    _play(s, events)
    assert s.result.reason is not None and s.awaiting_storage is None
    for p in s.result.pages_received:
        assert p.response in ("MCF", "RTP", "ERR", "damaged", "unconfirmed", "stored-failed")
