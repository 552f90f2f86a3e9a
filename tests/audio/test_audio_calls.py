"""Whole xmfax <-> xmfax audio fax calls: two AudioTerminals joined by a sample pipe on a
fake clock (no real time), every rate the modems have, ECM on and off, both directions
(the caller sends; a polled answerer sends), with noise, G.711 tandem coding and a low level.
Pages must arrive pixel-identical."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from xmfax.audio.terminal import AudioConfig, AudioTerminal, available_modulations
from xmfax.page import Page, Resolution
from xmfax.t30.config import T30Config
from xmfax.t30.modem import Family, Modulation
from xmfax.t30.session import Session

sys.path.insert(0, os.path.dirname(__file__))
import impair  # noqa: E402

BLOCK = 160          # 20 ms, as RTP would carry it


def small_pages(n: int = 1, rows: int = 120, seed: int = 0) -> list[Page]:
    """Small text-like pages (fast to code, not trivial)."""
    rng = np.random.default_rng(seed)
    pages = []
    for k in range(n):
        img = np.zeros((rows, 1728), dtype=bool)
        for r in range(0, rows - 12, 16):
            for c in range(40, 1600, 24):
                if rng.random() < 0.6:
                    h, w = rng.integers(4, 11), rng.integers(6, 18)
                    img[r:r + h, c:c + w] = True
        img[3 + k:7 + k, 100:1600] = True
        pages.append(Page(img, Resolution.FINE, source=f"audio test {k}"))
    return pages


class Pipe:
    """One direction of the line: an impairment applied block by block (stateful)."""

    def __init__(self, *, snr_db: float | None = None, gain_db: float = 0.0, tandem: bool = False,
                 signal_dbm0: float = -13.0, seed: int = 1):
        self.snr_db, self.gain_db, self.tandem = snr_db, gain_db, tandem
        self.noise_dbm0 = None if snr_db is None else signal_dbm0 + gain_db - snr_db
        self.rng = np.random.default_rng(seed)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        if self.gain_db:
            x = impair.gain(x, self.gain_db)
        if self.noise_dbm0 is not None:
            x = impair.saturate(x.astype(np.float64) + impair.noise(len(x), self.noise_dbm0, self.rng))
        if self.tandem:
            x = impair.g711_tandem(x)
        return x


class Echo:
    """A talker echo: what an end sends comes back to it ``delay_ms`` later, ``level_db`` down
    (a 2-wire hybrid), added to what the far end sends."""

    def __init__(self, delay_ms: float, level_db: float = -20.0):
        self.delay = int(delay_ms * 8)
        self.g = 10.0 ** (level_db / 20.0)
        self.hist = np.zeros(self.delay, np.int16)

    def __call__(self, own: np.ndarray, far: np.ndarray) -> np.ndarray:
        both = np.concatenate([self.hist, own])
        back = both[:len(own)]
        self.hist = both[len(own):]
        return impair.saturate(far.astype(np.float64) + back * self.g)


def run_pair(a: AudioTerminal, b: AudioTerminal, ab=None, ba=None, block: int = BLOCK,
             limit: float = 200.0, echo_a=None, echo_b=None) -> float:
    """Run two terminals joined by a sample pipe until both are done; the line time taken."""
    now = 0.0
    a.start(now)
    b.start(now)
    while not (a.done and b.done) and now < limit:
        xa = a.samples_to_send(block, now)
        xb = b.samples_to_send(block, now)
        assert len(xa) == len(xb) == block          # the line never stalls
        now += block / 8000
        to_b = ab(xa) if ab else xa
        to_a = ba(xb) if ba else xb
        if echo_a is not None:
            to_a = echo_a(xa, to_a)
        if echo_b is not None:
            to_b = echo_b(xb, to_b)
        b.receive_samples(to_b, now)
        a.receive_samples(to_a, now)
        for t in (a, b):
            due = t.next_timer()
            if due is not None and due <= now:
                t.handle_timer(now)
    return now


def t30(rate: int, ecm: bool, **kw) -> T30Config:
    return AudioConfig.limit_t30(T30Config(ecm=ecm, max_rate=rate, **kw))


def send_call(rate: int, ecm: bool, pages=None, ab=None, ba=None, polling: bool = False,
              audio: AudioConfig | None = None, echo_ms: float | None = None):
    pages = pages if pages is not None else small_pages(1)
    cfg = t30(rate, ecm)
    if polling:      # the answerer sends: the caller polls (DTC), the roles of T.30 swap
        sender = Session(cfg, calling=False, pages=pages)
        receiver = Session(cfg, calling=True, receive=True)
        a, b = AudioTerminal(receiver, audio), AudioTerminal(sender, audio)
    else:
        sender = Session(cfg, calling=True, pages=pages)
        receiver = Session(cfg, calling=False, receive=True)
        a, b = AudioTerminal(sender, audio), AudioTerminal(receiver, audio)
    echoes = (Echo(echo_ms), Echo(echo_ms)) if echo_ms is not None else (None, None)
    line_time = run_pair(a, b, ab, ba, echo_a=echoes[0], echo_b=echoes[1])
    return pages, sender, receiver, a, b, line_time


def assert_delivered(pages, sender, receiver, rate=None, ecm=None):
    assert sender.result.status == "success", (sender.result.reason, sender.result.detail)
    assert receiver.result.status == "success", (receiver.result.reason, receiver.result.detail)
    got = receiver.result.received_pages
    assert len(got) == len(pages)
    for p, q in zip(pages, got):
        assert np.array_equal(p.image, q.image)
    for st in receiver.result.pages_received:
        assert rate is None or st.rate == rate
        assert ecm is None or st.ecm == ecm
        assert st.bad_rows == 0


MODS = sorted((m for m in available_modulations() if m is not Modulation.V21),
              key=lambda m: (m.family.value, m.bit_rate))


def only(mod: Modulation, ecm: bool) -> T30Config:
    """A T.30 configuration whose best rate is ``mod``. V.27 ter is always offered, and V.29
    with V.17: DIS has no code for V.17 without V.29 (Table 2/T.30 bits 11-14)."""
    fams = {Family.V27TER, mod.family} | ({Family.V29} if mod.family is Family.V17 else set())
    return T30Config(ecm=ecm, max_rate=mod.bit_rate, modems=frozenset(fams))


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
@pytest.mark.parametrize("mod", MODS, ids=str)
def test_call_at_every_rate(mod, ecm):
    pages = small_pages(1)
    cfg = only(mod, ecm)
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    a, b = AudioTerminal(s), AudioTerminal(r)
    run_pair(a, b)
    assert_delivered(pages, s, r, rate=mod.bit_rate, ecm=ecm)
    assert s.result.modulation == r.result.modulation == str(mod)
    assert s.result.training_attempts == 1 and s.result.fallbacks == 0     # TCF passed at once
    assert b.stats.trainings >= 2 and b.stats.training_failures == 0        # TCF + page(s)
    assert a.stats.frames_bad == 0 and b.stats.frames_bad == 0


def test_rates_are_what_the_modems_have():
    names = {str(m) for m in MODS}
    assert {"V.27ter 2400", "V.27ter 4800", "V.29 7200", "V.29 9600"} <= names
    assert Family.V17 not in {m.family for m in MODS} or {
        "V.17 7200", "V.17 9600", "V.17 12000", "V.17 14400"} <= names


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_polled_answerer_sends(ecm):
    pages, s, r, a, b, _ = send_call(9600, ecm, pages=small_pages(2, rows=60, seed=4), polling=True)
    assert_delivered(pages, s, r)


def test_two_pages_ecm_at_v27ter_4800():
    pages, s, r, *_ = send_call(4800, True, pages=small_pages(2, rows=80, seed=2),
                                )
    assert_delivered(pages, s, r)


def mod_call(mod: Modulation, ecm: bool, ab=None, ba=None, pages=None):
    pages = pages or small_pages(1)
    cfg = only(mod, ecm)
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    a, b = AudioTerminal(s), AudioTerminal(r)
    run_pair(a, b, ab, ba)
    return pages, s, r, a, b


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
@pytest.mark.parametrize("mod", [Modulation.V17_14400, Modulation.V17_7200, Modulation.V29_9600,
                                 Modulation.V27TER_4800], ids=str)
def test_noise_25db_snr(mod, ecm):
    # white noise at -38 dBm0, above T.30's -43 dBm0 cut-off: the receivers must still see
    # each carrier end
    pages, s, r, *_ = mod_call(mod, ecm, ab=Pipe(snr_db=25, seed=1), ba=Pipe(snr_db=25, seed=2))
    assert_delivered(pages, s, r, rate=mod.bit_rate)


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_g711_tandem(ecm):
    pages, s, r, *_ = send_call(9600, ecm, ab=Pipe(tandem=True), ba=Pipe(tandem=True))
    assert_delivered(pages, s, r)


@pytest.mark.parametrize("rate", [4800, 9600])
def test_level_minus_30_dbm0(rate):
    # both ends send at -13 dBm0; the line loses 17 dB (and codes twice through G.711)
    pipe = dict(gain_db=-17.0, tandem=True)
    pages, s, r, *_ = send_call(rate, True, ab=Pipe(**pipe), ba=Pipe(**pipe))
    assert_delivered(pages, s, r)


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
@pytest.mark.parametrize("delay_ms", [10, 50])
def test_talker_echo_at_minus_20_db(delay_ms, ecm):
    # each end hears itself 20 dB down: its receivers are deaf while it sends and just after
    pages, s, r, a, b, _ = send_call(9600, ecm, echo_ms=delay_ms)
    assert_delivered(pages, s, r)
    assert a.stats.frames_bad == b.stats.frames_bad == 0


def test_without_the_mute_an_echo_is_heard_as_frames():
    # the guard above is needed: our own DCS/DIS, echoed, reach a receiver that is not muted
    import xmfax.audio.terminal as term
    s = Session(t30(9600, True), calling=True, pages=small_pages(1))
    a = AudioTerminal(s)
    a._mute = lambda x, now: x
    b = AudioTerminal(Session(t30(9600, True), calling=False, receive=True))
    run_pair(a, b, echo_a=Echo(10), echo_b=Echo(10), limit=20.0)
    own = [e for e in a.events() if type(e).__name__ == "FrameReceived" and e.frame.fcf.name == "DCS"]
    assert own and term.ECHO_GUARD_MS > 50


def test_everything_at_once_snr_tandem_level():
    pipe = dict(gain_db=-10.0, tandem=True, snr_db=28)
    pages, s, r, *_ = send_call(7200, False, ab=Pipe(seed=5, **pipe), ba=Pipe(seed=6, **pipe))
    assert_delivered(pages, s, r)


def test_a_dead_line_ends_in_failure_not_a_hang():
    # the far end never answers: T1 (35 s) runs out on the fake clock, the caller gives up
    cfg = t30(9600, True)
    a = AudioTerminal(Session(cfg, calling=True, pages=small_pages(1)))
    b = AudioTerminal(Session(cfg, calling=False, receive=True))
    run_pair(a, b, ab=lambda x: np.zeros_like(x), ba=lambda x: np.zeros_like(x), limit=120)
    assert a.done and a.result.status == "failure"
    assert b.done and b.result.status == "failure"


class Refusing(AudioTerminal):
    """A receiver on a line that cannot carry more than ``max_rate``: the TCF above it
    reaches its T.30 as ones (FTT)."""

    max_rate = 14400

    def _feed(self, event, now):
        from xmfax.t30 import modem as M
        if isinstance(event, M.DataReceived) and event.modulation.bit_rate > self.max_rate:
            event = M.DataReceived(b"\xff" * len(event.data), event.modulation)
        super()._feed(event, now)


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_fallback_after_ftt_retrains_long_each_time(ecm):
    # 14400 and 12000 are refused: a DCS and a long-trained TCF at each rate, then the pages
    # at 9600 after a short training (V.17) or at V.29 9600 without V.17
    best = max(available_modulations(), key=lambda m: m.bit_rate)
    pages = small_pages(2, rows=60, seed=9)
    cfg = AudioConfig.limit_t30(T30Config(ecm=ecm))
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    a, b = AudioTerminal(s), Refusing(r)
    b.max_rate = 9600
    run_pair(a, b)
    assert_delivered(pages, s, r, rate=9600)
    if best.family is Family.V17:                 # 14400, 12000 refused; 9600 trained
        assert s.result.modulation == "V.17 9600"
        assert (s.result.fallbacks, s.result.training_attempts) == (2, 3)
        assert b.stats.trainings == 3 + len(pages)      # three TCFs, one signal a page
        assert b.stats.training_failures == 0     # short-trained pages after the long TCF


# ------------------------------------------------------------------ over RTP (in memory)
def rtp_pair(a, b, *, law="ulaw", jitter=0.0, loss=0.0, delay=0.03, seed=1, limit=200.0):
    """Two terminals joined by G.711 RTP (xmfax.rtp, sans-IO) over a simulated network:
    20 ms packets, ``delay`` + up to ``jitter`` s each way (reordering as it falls), ``loss``
    of the packets dropped; each end plays out through the fixed jitter buffer (60 ms)."""
    import heapq
    import random

    from xmfax.rtp import RTPConfig, RTPReceiver, RTPSender

    rng = random.Random(seed)
    cfg = RTPConfig(law=law, jitter_depth=0.06)
    senders = [RTPSender(cfg, rng=random.Random(seed + 1)), RTPSender(cfg, rng=random.Random(seed + 2))]
    receivers = [RTPReceiver(cfg, 0.0), RTPReceiver(cfg, 0.0)]
    ends = (a, b)
    queue, n, now = [], 0, 0.0
    a.start(now)
    b.start(now)
    while not (a.done and b.done) and now < limit:
        for i, t in enumerate(ends):
            for d in senders[i].send_samples(t.samples_to_send(BLOCK, now)):
                if rng.random() < loss:
                    continue
                n += 1
                heapq.heappush(queue, (now + 0.02 + delay + rng.random() * jitter, n, 1 - i, d))
        now = round(now + 0.02, 6)
        while queue and queue[0][0] <= now:
            at, _, dst, d = heapq.heappop(queue)
            receivers[dst].receive(d, at)
        for i, t in enumerate(ends):
            t.receive_samples(receivers[i].play_samples(now), now)
            due = t.next_timer()
            if due is not None and due <= now:
                t.handle_timer(now)
    while queue:        # the packets still in flight when both ends finished (reordered last
        at, _, dst, d = heapq.heappop(queue)             # ones would count as lost)
        receivers[dst].receive(d, at)
    return receivers


@pytest.mark.parametrize("law,jitter,ecm", [("ulaw", 0.0, True), ("alaw", 0.04, False),
                                            ("ulaw", 0.04, True)])
def test_over_g711_rtp_with_jitter(law, jitter, ecm):
    pages = small_pages(1, seed=13)
    cfg = AudioConfig.limit_t30(T30Config(ecm=ecm))
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    rx = rtp_pair(AudioTerminal(s), AudioTerminal(r), law=law, jitter=jitter)
    assert_delivered(pages, s, r)
    assert s.result.modulation == str(max(available_modulations(), key=lambda m: m.bit_rate))
    assert all(x.stats.late == 0 and x.stats.lost == 0 for x in rx)


def test_over_rtp_with_packet_loss_ecm_repairs_the_page():
    # 0.5 % of the 20 ms packets lost: the gaps break ECM frames (PPR, retransmission)
    # and a training or two (fallback); the page still arrives whole
    pages = small_pages(1, seed=14)
    cfg = AudioConfig.limit_t30(T30Config(ecm=True))
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    # (seed 7: a gap falls in the page's ECM frames; which packets hit what depends on the
    # call's timing, so a seed is chosen for one that does)
    rx = rtp_pair(AudioTerminal(s), AudioTerminal(r), jitter=0.02, loss=0.005, seed=7)
    assert_delivered(pages, s, r)
    assert sum(x.stats.lost for x in rx) > 0
    assert s.result.retransmitted_frames > 0          # the gaps were real damage, repaired


def test_abort_mid_call_sends_dcn_and_both_ends_finish():
    # the operator aborts during the first page: our DCN follows the signal on the line
    pages = small_pages(2, rows=200, seed=17)
    cfg = AudioConfig.limit_t30(T30Config(ecm=True))
    s, r = Session(cfg, calling=True, pages=pages), Session(cfg, calling=False, receive=True)
    a, b = AudioTerminal(s), AudioTerminal(r)
    now = 0.0
    a.start(now)
    b.start(now)
    aborted = False
    while not (a.done and b.done) and now < 120:
        if not aborted and now >= 12.0:           # during the first page
            s.abort(now, "operator")
            aborted = True
        xa, xb = a.samples_to_send(BLOCK, now), b.samples_to_send(BLOCK, now)
        now += BLOCK / 8000
        b.receive_samples(xa, now)
        a.receive_samples(xb, now)
        for t in (a, b):
            due = t.next_timer()
            if due is not None and due <= now:
                t.handle_timer(now)
    assert a.done and b.done and now < 60
    assert s.result.status == "failure" and r.result.status == "failure"
    assert s.result.reason.name == "ABORTED"
    assert len(r.result.received_pages) < len(pages)
    # the DCN went out (it may cross the receiver's MCF, half duplex: then T2 ends that side)
    assert any(type(e).__name__ == "FrameSent" and e.frame.fcf.name == "DCN" for e in a.events())
