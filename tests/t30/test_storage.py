"""Storage confirmation (T30Config.confirm_storage, Session.page_stored) and the
receiver's limits (max_pages, max_receive_rows, keep_received_pages), on the
simulated line with a fake clock."""
from __future__ import annotations

import pytest

from xmfax.errors import LocalProtocolError
from xmfax.t30 import FrameReceived, PageReceived, PageRejected, Reason, Session, T30Config, Timers
from xmfax.t30.pair import Line

from .t30util import page, same_image


class StoringReceiver(Session):
    """An answering receiver whose application stores each page ``delay`` seconds
    after PageReceived. plan[number] = (delay, error); delay None: never answers."""

    def __init__(self, cfg: T30Config, plan: dict | None = None, default=(0.5, None)):
        super().__init__(cfg, calling=False, receive=True)
        self.plan = plan or {}
        self.default = default
        self.due: list[tuple[float, int, str | None]] = []
        self.log: list = []
        self.waiting_seen: list[int] = []

    def _collect(self, now: float) -> None:
        for ev in self.events():
            self.log.append(ev)
            if isinstance(ev, PageReceived):      # every page is stored, as the API does
                if self.awaiting_storage == ev.number:
                    self.waiting_seen.append(ev.number)
                delay, error = self.plan.get(ev.number, self.default)
                if delay is not None:
                    self.due.append((now + delay, ev.number, error))

    def receive(self, ev, now):
        super().receive(ev, now)
        self._collect(now)

    def handle_timer(self, now):
        while self.due and now >= self.due[0][0]:
            _, number, error = self.due.pop(0)
            self.page_stored(number, now, error)
        super().handle_timer(now)
        self._collect(now)

    def next_timer(self):
        t = super().next_timer()
        if self.due and not self.done:
            t = self.due[0][0] if t is None else min(t, self.due[0][0])
        return t


def run(ecm: bool, plan=None, default=(0.5, None), pages=None, timers: Timers | None = None, **rx):
    pages = pages if pages is not None else [page(i, rows=150) for i in range(3)]
    tx = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    rx_cfg = T30Config(ecm=ecm, confirm_storage=True, timers=timers or Timers(), **rx)
    rx = StoringReceiver(rx_cfg, plan, default)
    line = Line(tx, rx)
    line.run(until=600)
    return tx, rx, line, pages


def sent_by(line, side):
    return [(t, w) for t, s, w in line.transcript if s == side]


@pytest.mark.parametrize("ecm", [False, True])
def test_each_page_confirmed_only_after_it_is_stored(ecm):
    tx, rx, line, pages = run(ecm, default=(1.5, None))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert rx.waiting_seen == [1, 2, 3]
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))
    assert [p.response for p in rx.result.pages_received] == ["MCF"] * 3
    got = [ev.time for ev in rx.log if isinstance(ev, PageReceived)]
    mcfs = [t for t, w in sent_by(line, "b") if w == "MCF"]
    if ecm:      # one block per page: the MCFs are the page answers
        assert len(mcfs) == 3
    for t_page, t_mcf in zip(got, mcfs):
        assert t_mcf >= t_page + 1.5         # not before page_stored
    assert rx.awaiting_storage is None


@pytest.mark.parametrize("ecm", [False, True])
def test_storage_error_is_not_confirmed_and_ends_the_call(ecm):
    tx, rx, line, pages = run(ecm, plan={2: (0.3, "disk full")})
    assert rx.result.reason is Reason.STORAGE and "disk full" in rx.result.detail
    assert rx.result.reason.code == 23
    assert [p.response for p in rx.result.pages_received] == ["MCF", "stored-failed"]
    assert not tx.result.ok                       # never success for an unstored page
    assert [p.number for p in tx.result.pages_sent] == [1]
    assert sent_by(line, "b")[-1][1] == "DCN"
    # page 2 was never confirmed: after page 1's MCF, b sent no MCF/RTP
    b = [w for _, w in sent_by(line, "b")]
    assert b.count("MCF") == 1


@pytest.mark.parametrize("ecm", [False, True])
def test_storage_that_never_answers_times_out(ecm):
    # non-ECM: a sender gives up after 3 unanswered post-page commands (~12 s), so the
    # storage timer is set below that to see it fire; ECM: RNR holds the sender (T5)
    timers = Timers() if ecm else Timers(storage=5.0)
    tx, rx, line, pages = run(ecm, plan={1: (None, None)}, timers=timers)
    assert rx.result.reason is Reason.STORAGE and "storage did not answer" in rx.result.detail
    assert rx.result.pages_received[0].response == "stored-failed"
    assert not tx.result.ok and tx.result.pages_sent == []
    assert rx.result.ended == pytest.approx(
        [ev.time for ev in rx.log if isinstance(ev, PageReceived)][0] + timers.storage, abs=0.01)


def test_ecm_sender_gets_rnr_while_storage_is_slow():
    tx, rx, line, pages = run(True, plan={2: (10.0, None)})
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    b = [w for _, w in sent_by(line, "b")]
    a = [w for _, w in sent_by(line, "a")]
    assert b.count("RNR") >= 2 and a.count("RR") == b.count("RNR")
    assert all(same_image(x, y) for x, y in zip(pages, rx.result.received_pages))
    assert [p.response for p in rx.result.pages_received] == ["MCF"] * 3


def test_non_ecm_repeated_mps_while_waiting_is_not_answered():
    tx, rx, line, pages = run(False, plan={1: (6.0, None)})
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    t0 = [ev.time for ev in rx.log if isinstance(ev, PageReceived)][0]
    heard = [ev.time for ev in rx.log if isinstance(ev, FrameReceived) and ev.frame.name == "MPS"]
    assert sum(t0 < t < t0 + 6.0 for t in heard) >= 1      # the sender's T4 repeat came meanwhile
    assert not [w for t, w in sent_by(line, "b") if t0 <= t < t0 + 6.0]   # and got no answer
    assert [w for t, w in sent_by(line, "b") if t >= t0 + 6.0][0] == "MCF"
    assert all(same_image(x, y) for x, y in zip(pages, rx.result.received_pages))
    assert len(rx.result.received_pages) == 3


def test_page_stored_for_another_page_is_refused():
    rx = Session(T30Config(confirm_storage=True), calling=False, receive=True)
    rx.start(0.0)
    with pytest.raises(LocalProtocolError):
        rx.page_stored(1, 0.1)
    assert rx.awaiting_storage is None


def test_without_confirm_storage_nothing_waits():
    tx = Session(T30Config(), calling=True, pages=[page(1, rows=80)])
    rx = StoringReceiver(T30Config(), default=(None, None))
    Line(tx, rx).run()
    assert tx.result.ok and rx.waiting_seen == []


@pytest.mark.parametrize("ecm", [False, True])
def test_keep_received_pages_false_keeps_only_stats(ecm):
    tx = Session(T30Config(ecm=ecm), calling=True, pages=[page(i, rows=80) for i in range(2)])
    rx = StoringReceiver(T30Config(ecm=ecm, keep_received_pages=False), default=(None, None))
    Line(tx, rx).run()
    assert tx.result.ok and rx.result.ok
    assert rx.result.received_pages == [] and len(rx.result.pages_received) == 2
    assert len([e for e in rx.log if isinstance(e, PageReceived)]) == 2


@pytest.mark.parametrize("ecm", [False, True])
def test_more_pages_than_max_pages_ends_the_call(ecm):
    pages = [page(i, rows=60) for i in range(3)]
    tx = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    rx = Session(T30Config(ecm=ecm, max_pages=2), calling=False, receive=True)
    Line(tx, rx).run()
    assert rx.result.reason is Reason.LIMIT and "max_pages" in rx.result.detail
    assert len(rx.result.pages_received) == 2
    assert not tx.result.ok and len(tx.result.pages_sent) == 2


@pytest.mark.parametrize("ecm", [False, True])
def test_page_longer_than_max_receive_rows_is_refused_not_cut(ecm):
    pages = [page(1, rows=80), page(2, rows=400)]
    tx = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    rx = Session(T30Config(ecm=ecm, max_receive_rows=300), calling=False, receive=True)
    rx_events: list = []
    line = Line(tx, rx, start=False)
    tx.start(0.0)
    rx.start(0.0)
    line.run()
    rx_events = rx.events()
    assert rx.result.reason is Reason.LIMIT and "max_receive_rows" in rx.result.detail
    assert [p.rows for p in rx.result.pages_received] == [80]          # page 2 not kept cut
    assert any(isinstance(e, PageRejected) and e.number == 2 for e in rx_events)
    assert not tx.result.ok and len(tx.result.pages_sent) == 1


def test_default_row_limit_takes_an_a3_superfine_page():
    # A3 (420 mm) at 15.4 lines/mm is ~6,500 rows: far inside the default
    assert T30Config().max_receive_rows >= 6500 * 3


def test_page_stored_for_a_page_that_awaits_nothing():
    """Pages marked ERR (a block given up) are delivered without a held answer: the
    application may still report them; an error then ends the call."""
    from .test_ecm_assembly import dense_page, same_frames_lost
    from xmfax.t30.pair import Faults
    pages = [dense_page(8, rows=1400), dense_page(9, rows=200)]
    tx = Session(T30Config(ecm_frame_size=64, max_rate=2400, compressions=frozenset({"mh"})),
                 calling=True, pages=pages)
    rx = StoringReceiver(T30Config(confirm_storage=True), plan={1: (0.2, "disk full")})
    Line(tx, rx, faults=Faults(frame=same_frames_lost({5}, times=99))).run(until=3000)
    assert rx.result.pages_received[0].response == "stored-failed"
    assert rx.result.reason is Reason.STORAGE and "disk full" in rx.result.detail
    assert not tx.result.ok
    s = Session(T30Config(confirm_storage=True), calling=False, receive=True)
    s.start(0.0)
    with pytest.raises(LocalProtocolError):
        s.page_stored(3, 0.1)
