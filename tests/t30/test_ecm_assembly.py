"""ECM page assembly across PPR rounds, blocks and CTC (issue #10: pages that needed
a PPR round were stored cut to the resent frames and confirmed).

A sender that counts only the frames of the current burst in its PPS (as spandsp
does after a PPR) is simulated by BurstCountSender; frames are lost in the first
transmission and in later PPR rounds, on pages of several blocks. Every received
page must be pixel-identical to the source, or the call must fail honestly."""
from __future__ import annotations

import random

import numpy as np
import pytest

from xmfax import codecs
from xmfax.page import Page, Resolution
from xmfax.t30 import capabilities as caps
from xmfax.t30 import PageReceived, Reason, Session, T30Config
from xmfax.t30 import frames as F
from xmfax.t30.ecm import cut
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import Modulation
from xmfax.t30.pair import Faults, Line

from .t30util import same_image


class BurstCountSender(Session):
    """INTEROP(spandsp): the PPS frame count is the number of frames in this burst."""

    def _pps_frame(self) -> F.Frame:
        fif = F.encode_pps(self._fcf2(), self._page_index, self._tx.block_index,
                           len(self._tx.block.pending))
        return self._frame(FCF.PPS, fif)


def dense_page(seed: int, rows: int = 1400) -> Page:
    """A busy page (many short strokes a row): ~30-60 kB of MH, several 64-octet blocks."""
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, 1728), bool)
    for r in range(0, rows - 4, 5):
        for c in rng.integers(0, 1700, 14):
            img[r:r + 3, c:c + int(rng.integers(2, 25))] = True
    img[rows - 1, ::3] = True          # a busy last row: a cut page cannot look whole
    return Page(img, Resolution.FINE)


def fcd_loss(p: float, seed: int, rounds: int | None = None):
    """Lose each FCD frame with probability ``p`` (fixed seed); with ``rounds``, only in
    its first ``rounds`` transmissions, so the block completes after that many PPRs."""
    rng = random.Random(seed)
    sent: dict[bytes, int] = {}

    def hook(side, frame, mod, n):
        if side != "a" or mod is Modulation.V21 or frame[2] != int(FCF.FCD):
            return "ok"
        sent[frame] = sent.get(frame, 0) + 1
        if rounds is not None and sent[frame] > rounds:
            return "ok"
        return "drop" if rng.random() < p else "ok"
    return hook


def same_frames_lost(numbers: set[int], times: int):
    """Lose FCD frames with these numbers in every block, the first ``times`` sends each."""
    sent: dict[bytes, int] = {}

    def hook(side, frame, mod, n):
        if side == "a" and mod is not Modulation.V21 and frame[2] == int(FCF.FCD) and frame[3] in numbers:
            sent[frame] = sent.get(frame, 0) + 1
            if sent[frame] <= times:
                return "drop"
        return "ok"
    return hook


def call(sender_cls, pages, hook, *, coding="mh", frame_size=64, **tx):
    cfg = T30Config(compressions=frozenset({"mh", "mr", "mmr"} if coding == "mmr" else
                                           {"mh", "mr"} if coding == "mr" else {"mh"}),
                    ecm_frame_size=frame_size, **tx)
    a = sender_cls(cfg, calling=True, pages=pages)
    b = Session(T30Config(), calling=False, receive=True)
    line = Line(a, b, faults=Faults(frame=hook))
    line.run(until=3000)
    events = b.events()
    return a, b, line, events


def names(line, side):
    return [w for _, s, w in line.transcript if s == side]


@pytest.mark.parametrize("sender_cls", [BurstCountSender, Session], ids=["burst-count", "block-count"])
@pytest.mark.parametrize("coding", ["mh", "mr", "mmr"])
def test_page_rebuilt_from_every_ppr_round(sender_cls, coding):
    pages = [dense_page(1), dense_page(2, rows=900)]
    a, b, line, events = call(sender_cls, pages, fcd_loss(0.08, seed=7, rounds=2), coding=coding)
    assert a.result.ok and b.result.ok, (a.result.text, b.result.text)
    assert names(line, "b").count("PPR") >= 2
    got = b.result.received_pages
    assert len(got) == 2 and all(same_image(x, y) for x, y in zip(pages, got))
    assert sum(p.ecm_retransmitted_frames for p in b.result.pages_received) > 0
    # one PageStarted per page, however many PPR bursts it took
    assert [e.number for e in events if type(e).__name__ == "PageStarted"] == [1, 2]


@pytest.mark.parametrize("sender_cls", [BurstCountSender, Session], ids=["burst-count", "block-count"])
def test_several_blocks_each_with_ppr_rounds(sender_cls):
    page = dense_page(3, rows=1600)
    a, b, line, _ = call(sender_cls, [page], same_frames_lost({0, 1, 17, 100, 255}, times=2))
    assert a.result.ok and b.result.ok, (a.result.text, b.result.text)
    assert names(line, "b").count("PPR") >= 4          # two rounds in each of >= 2 blocks
    assert same_image(page, b.result.received_pages[0])


@pytest.mark.parametrize("sender_cls", [BurstCountSender, Session], ids=["burst-count", "block-count"])
def test_ctc_keeps_the_frames_already_received(sender_cls):
    page = dense_page(4)
    # frame 9 of every block is lost 4 times: 4 PPRs, then CTC one rate lower, then it arrives
    a, b, line, _ = call(sender_cls, [page], same_frames_lost({9, 60}, times=4))
    assert a.result.ok and b.result.ok, (a.result.text, b.result.text)
    assert "CTC" in names(line, "a") and "CTR" in names(line, "b")
    assert same_image(page, b.result.received_pages[0])


@pytest.mark.parametrize("seed", range(6))
def test_random_fcd_loss_never_confirms_a_short_page(seed):
    """Random loss in every round (no bound): success means pixel-identical pages;
    anything else is an honest failure, never a short page called good."""
    pages = [dense_page(10 + seed, rows=700)]
    a, b, line, events = call(BurstCountSender, pages, fcd_loss(0.25, seed=seed))
    if a.result.ok or b.result.ok:
        assert a.result.ok and b.result.ok
        assert same_image(pages[0], b.result.received_pages[0])
    for st, ev in zip(b.result.pages_received, [e for e in events if isinstance(e, PageReceived)]):
        if st.response in ("MCF", "RTP"):
            assert same_image(pages[0], ev.page)


class HalfPageSender(Session):
    """Sends only the first half of each page's coded data (every frame of it intact)."""

    def _enter_send_block(self):
        if self._tx.block is None and self._tx.data is None:
            page, dcs = self._current_page(), self._dcs
            data = codecs.encode(page.image, dcs.compression, k=caps.mr_k(self.config, page.resolution),
                                 eol=True, rtc=True, bit_order="lsb")
            self._tx.data = data[: len(data) // 2]
            self._tx.blocks = cut(self._tx.data, dcs.ecm_frame_size)
            self._tx.block_index = 0
            self._announce_page()
        super()._enter_send_block()


def test_ecm_page_that_does_not_decode_whole_is_not_confirmed():
    page = dense_page(5, rows=600)
    a = HalfPageSender(T30Config(ecm_frame_size=64), calling=True, pages=[page])
    b = Session(T30Config(), calling=False, receive=True)
    line = Line(a, b)
    line.run()
    assert b.result.reason is Reason.PROTOCOL and "does not decode whole" in b.result.detail
    assert b.result.pages_received[0].response == "damaged"
    assert "MCF" not in names(line, "b")
    assert not a.result.ok and a.result.pages_sent == []


def test_blocks_given_up_with_eor_mark_each_page_damaged():
    """Frame 5 of every block never arrives and there is no lower rate: each block ends
    with EOR/ERR. Each page is delivered on its own, marked ERR (never MCF), and both
    ends fail ECM_FAILED. (A page ended by EOR was once joined to the next page.)"""
    pages = [dense_page(8, rows=1400), dense_page(9, rows=200)]
    a = Session(T30Config(ecm_frame_size=64, max_rate=2400, compressions=frozenset({"mh"})),
                calling=True, pages=pages)
    b = Session(T30Config(), calling=False, receive=True)
    line = Line(a, b, faults=Faults(frame=same_frames_lost({5}, times=99)))
    line.run(until=3000)
    assert names(line, "a").count("EOR") == 3          # two blocks of page 1, one of page 2
    assert a.result.reason is Reason.ECM_FAILED and b.result.reason is Reason.ECM_FAILED
    assert "page 1, 2 " in a.result.detail and "page 1, 2 " in b.result.detail
    assert [p.response for p in b.result.pages_received] == ["ERR", "ERR"]
    got = b.result.received_pages
    assert [g.rows for g in got] != [p.rows for p in pages] or not all(
        same_image(x, y) for x, y in zip(pages, got))    # they do have holes
    events = b.events()
    assert [e.number for e in events if isinstance(e, PageReceived)] == [1, 2]


@pytest.mark.parametrize("number", [40, 140])
def test_late_copy_of_a_frame_is_not_taken_into_the_next_block(number):
    """A copy of block 0's frame ``number`` arrives 6 s late (after that block's MCF, as
    block 1 begins) and block 1's own frame ``number`` is lost: the late copy must not
    stand for it (it is asked for again with PPR) and the page arrives whole."""
    fcd_count = [0]

    def hook(side, frame, mod, n):
        if side != "a" or mod is Modulation.V21 or frame[2] != int(FCF.FCD) or frame[3] != number:
            return "ok"
        fcd_count[0] += 1
        if fcd_count[0] == 1:
            return "duplicate"          # block 0's frame: a late copy follows
        if fcd_count[0] == 2:
            return "drop"               # block 1's frame, first send: lost
        return "ok"

    pages = [dense_page(21, rows=1300)]          # ~420 frames: block 1 has frame ``number`` too
    a = Session(T30Config(ecm_frame_size=64, compressions=frozenset({"mh"})), calling=True, pages=pages)
    b = Session(T30Config(), calling=False, receive=True)
    line = Line(a, b, faults=Faults(frame=hook, duplicate_delay=6.0))
    line.run(until=3000)
    assert a.result.ok and b.result.ok, (a.result.text, b.result.text)
    assert same_image(pages[0], b.result.received_pages[0])
    assert names(line, "b").count("PPR") == 1
