"""Issue #10, "nothing lost, nothing silently wrong", as a property of two engines on
the simulated line: one frame of one kind (so every phase: B, C, D, ECM blocks, PPR
rounds, EOM, DCN) is lost, damaged, duplicated or delayed past the frames after it,
on calls with and without ECM, with PPR rounds forced by FCD loss, over two
documents (EOM between them). Whatever happens:

* no exception escapes and both ends finish with a reason;
* the sender says success only if the receiver holds every page pixel-identical;
* every page the sender counts as delivered (MCF/RTP) is held, pixel-identical, by
  the receiver; every page the receiver confirmed is pixel-identical.
"""
from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmfax.t30 import PageReceived, Session, T30Config, Timers
from xmfax.t30.fcf import FCF, split
from xmfax.t30.modem import Modulation
from xmfax.t30.pair import Faults, Line

from .t30util import page, same_image
from .test_ecm_assembly import dense_page
from .test_storage import StoringReceiver

DOCS = [[dense_page(21, rows=800)], [page(2, rows=60), page(3, rows=60)]]
SOURCE = [p for d in DOCS for p in d]
TARGETS = [FCF.DIS, FCF.DCS, FCF.CFR, FCF.FTT, FCF.MPS, FCF.EOM, FCF.EOP, FCF.MCF, FCF.RTN,
           FCF.PPS, FCF.PPR, FCF.FCD, FCF.RCP, FCF.CTC, FCF.CTR, FCF.RR, FCF.RNR, FCF.DCN, FCF.CRP]


def faults(specs, fcd_loss: float, rounds: int | None, seed: int):
    """Each spec (side, kind, nth, fate): ``fate`` for the ``nth`` frame of that kind sent
    by that side. Besides, FCD frames are lost with probability ``fcd_loss`` in their first
    ``rounds`` sends (None: every send), which forces PPR rounds, CTC and EOR."""
    seen: Counter = Counter()
    rng = random.Random(seed)
    sends: Counter = Counter()

    def hook(s, frame, mod, n):
        fcf = frame[2] if len(frame) > 2 else None
        if mod is Modulation.V21:
            kind = split(fcf)[0] if fcf is not None else None
        else:
            kind = FCF.FCD if fcf == int(FCF.FCD) else FCF.RCP
        k = seen[(s, kind)]
        seen[(s, kind)] += 1
        for side, target, nth, fate in specs:
            if s == side and kind is target and k == nth:
                return fate
        if kind is FCF.FCD and s == "a":
            sends[frame] += 1
            if (rounds is None or sends[frame] <= rounds) and rng.random() < fcd_loss:
                return "drop"
        return "ok"
    return hook


def check_invariants(tx: Session, rx: Session, rx_events: list) -> None:
    assert tx.done and rx.done, (tx.state, rx.state)
    assert tx.result.reason is not None and rx.result.reason is not None
    # the pages the receiver confirmed (its final word: MCF/RTP, not "unconfirmed",
    # "stored-failed", "damaged" or "ERR"), with the images its events carried
    stats = {p.number: p.response for p in rx.result.pages_received}
    confirmed = {e.number: e.page for e in rx_events
                 if isinstance(e, PageReceived) and stats.get(e.number) in ("MCF", "RTP")}
    assert len(confirmed) == sum(r in ("MCF", "RTP") for r in stats.values())
    for number, pg in confirmed.items():
        assert same_image(SOURCE[number - 1], pg), f"page {number} confirmed but not identical"
    for sent in tx.result.pages_sent:
        if sent.response in ("MCF", "RTP"):
            assert sent.number in confirmed, f"sender counts page {sent.number}, receiver has {sorted(confirmed)}"
    if tx.result.ok:
        assert len(confirmed) == len(SOURCE) and len(tx.result.pages_sent) == len(SOURCE)
    if rx.result.ok:
        assert len(confirmed) == len(SOURCE)


class Recorder(Session):
    """A receiver that keeps its events (the pages come in them)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.log: list = []

    def events(self):
        out = super().events()
        self.log.extend(out)
        return out

    def receive(self, ev, now):
        super().receive(ev, now)
        self.events()

    def handle_timer(self, now):
        super().handle_timer(now)
        self.events()


fault_st = st.tuples(st.sampled_from("ab"), st.sampled_from(TARGETS), st.integers(0, 3),
                     st.sampled_from(["drop", "corrupt", "duplicate", "delay", "hangup"]))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ecm=st.booleans(), specs=st.lists(fault_st, min_size=1, max_size=3),
       fcd_loss=st.sampled_from([0.0, 0.05, 0.3, 0.6]), rounds=st.sampled_from([None, 2, 5]),
       seed=st.integers(0, 1000),
       storage=st.one_of(st.none(), st.tuples(st.sampled_from([0.2, 5.0, None]),
                                               st.sampled_from([None, None, "disk full"]))))
def test_faults_in_any_phase_never_lie(ecm, specs, fcd_loss, rounds, seed, storage):
    tx = Session(T30Config(ecm=ecm, ecm_frame_size=64, compressions=frozenset({"mh"})),
                 calling=True, pages=DOCS)
    if storage is None:
        rx = Recorder(T30Config(ecm=ecm), calling=False, receive=True)
    else:            # the application confirms storage late, never, or with an error
        rx = StoringReceiver(T30Config(ecm=ecm, confirm_storage=True, timers=Timers(storage=8.0)),
                             default=storage)
    line = Line(tx, rx, faults=Faults(frame=faults(specs, fcd_loss, rounds, seed)))
    line.run(until=3000.0, max_steps=100_000)
    check_invariants(tx, rx, rx.log)


@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
@pytest.mark.parametrize("fate", ["drop", "corrupt", "duplicate", "delay"])
@pytest.mark.parametrize("side,target", [(s, t) for s in "ab" for t in TARGETS])
def test_one_fault_each_kind(side, target, fate, ecm):
    """Every kind of frame from either side, its first occurrence faulted once, with
    PPR rounds going on (the exhaustive single-fault grid; ~0.03 s a call)."""
    tx = Session(T30Config(ecm=ecm, ecm_frame_size=64, compressions=frozenset({"mh"})),
                 calling=True, pages=DOCS)
    rx = Recorder(T30Config(ecm=ecm), calling=False, receive=True)
    line = Line(tx, rx, faults=Faults(frame=faults([(side, target, 0, fate)], 0.05, 2, 7)))
    line.run(until=3000.0, max_steps=100_000)
    check_invariants(tx, rx, rx.log)
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)    # one fault is recovered


def test_invariant_checker_catches_a_lie():
    """The checker itself: a receiver whose confirmed page differs must fail it."""
    tx = Session(T30Config(), calling=True, pages=DOCS)
    rx = Recorder(T30Config(), calling=False, receive=True)
    Line(tx, rx).run()
    check_invariants(tx, rx, rx.log)
    bad = [PageReceived(e.time, e.number, page(99, rows=60), e.rows, 0, 0, e.coding, e.resolution,
                        e.rate, e.response) if isinstance(e, PageReceived) else e for e in rx.log]
    try:
        check_invariants(tx, rx, bad)
    except AssertionError:
        return
    raise AssertionError("a confirmed page that differs went unnoticed")
