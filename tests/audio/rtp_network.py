"""An impaired RTP network in simulated time, for whole audio fax calls (issue #12, "over
RTP: packet loss and jitter"). Not part of xmfax; used by tests/audio/test_audio_rtp_impairments.py
and benchmarks/audio_rtp.py.

Each end sends one 20 ms packet per tick, each way, from the call's start. The network is
:class:`Link` (one per direction): packet ``k`` is lost with probability ``loss`` (independent,
seeded), else it arrives ``base + U(0, jitter)`` after the end of its 20 ms (so packets reorder
when ``jitter`` exceeds 20 ms). A link draws the same two random numbers for packet ``k``
whatever the packet holds: two pairs of ends run over links with the same seed see the same
impaired packet stream (the same packets lost, the same delays).

:func:`pump` joins two ends through their RTP senders and play-out buffers; :func:`xmfax_call`
runs two xmfax AudioTerminals over xmfax.rtp (RTPSender, and RTPReceiver: the fixed jitter
buffer, ``jitter_depth`` as configured) and classifies the outcome with :func:`outcome`.
"""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

PTIME = 0.020
BLOCK = 160


class Link:
    """One direction of the network (see the module doc)."""

    def __init__(self, loss: float, jitter: float, seed: int, direction: int, base: float = 0.010,
                 drop=frozenset()) -> None:
        self.rng = random.Random(f"{seed}/{direction}")
        self.loss, self.jitter, self.base = loss, jitter, base
        self.drop = frozenset(drop)         # packets (numbered from 1) lost whatever the draw
        self.queue: list[tuple[float, int, bytes]] = []
        self.sent = self.lost = 0

    def send(self, datagram: bytes, end_of_block: float) -> None:
        lost = self.rng.random() < self.loss
        delay = self.base + self.rng.random() * self.jitter
        self.sent += 1
        lost = lost or self.sent in self.drop
        if lost:
            self.lost += 1
            return
        heapq.heappush(self.queue, (end_of_block + delay, self.sent, datagram))

    def arrived(self, now: float) -> list[tuple[float, bytes]]:
        out = []
        while self.queue and self.queue[0][0] <= now + 1e-9:
            at, _, d = heapq.heappop(self.queue)
            out.append((at, d))
        return out


@dataclass
class End:
    """One fax end as the pump sees it: ``send(n, now)`` -> datagrams for the next n samples;
    ``take(datagram, at)``; ``play(now)`` hands the play-out to the terminal; ``tick(now)``
    serves its timers; ``done()``."""
    send: Callable[[int, float], list]
    take: Callable[[bytes, float], object]
    play: Callable[[float], None]
    tick: Callable[[float], None]
    done: Callable[[], bool]


def pump(a: End, b: End, links: tuple[Link, Link], limit: float = 300.0) -> float:
    """Run both ends in 20 ms steps of simulated time until both are done; the line time."""
    now = 0.0
    k = 0
    while not (a.done() and b.done()) and now < limit:
        for end, link in ((a, links[0]), (b, links[1])):
            for d in end.send(BLOCK, now):
                link.send(d, now + PTIME)
        k += 1
        now = k * PTIME
        for end, link in ((b, links[0]), (a, links[1])):
            for at, d in link.arrived(now):
                end.take(d, at)
        for end in (a, b):
            end.play(now)
            end.tick(now)
    return now


@dataclass(frozen=True)
class Outcome:
    """How a call ended. ``kind``: "ok" (both ends said success, every page pixel-identical),
    "flagged" (both said success, a page differs and the receiver reported its bad rows: the
    non-ECM copy-quality rule accepted a damaged page, and said so), "WRONG" (an end said
    success with a page that differs and no bad row reported: a lie), "failed"."""
    kind: str
    sender_ok: bool
    receiver_ok: bool
    rate: int
    line_time: float
    lost: int
    late: int
    why: str = ""               # the sender's reason when it did not succeed


def outcome(sent_pages, got_images, sender_ok: bool, receiver_ok: bool, bad_rows: int,
            rate: int, line_time: float, lost: int, late: int, why: str = "") -> Outcome:
    identical = len(got_images) == len(sent_pages) and all(
        g.shape == p.image.shape and np.array_equal(g, p.image) for g, p in zip(got_images, sent_pages))
    if (sender_ok or receiver_ok) and not identical and bad_rows == 0:
        kind = "WRONG"
    elif sender_ok and receiver_ok and identical:
        kind = "ok"
    elif sender_ok and receiver_ok:
        kind = "flagged"
    else:
        kind = "failed"
    return Outcome(kind, sender_ok, receiver_ok, rate, line_time, lost, late, "" if sender_ok else why)


def xmfax_call(pages, *, family: str, ecm: bool, loss: float, jitter: float, seed: int,
               depth: float | None = None, limit: float = 300.0, drop=frozenset()) -> Outcome:
    """Two xmfax AudioTerminals over xmfax.rtp through two seeded Links. ``family`` "V.17"
    (14400 best) or "V.29" (9600 best, V.17 not offered); ``depth`` None: RTPConfig's default;
    ``drop``: packets (numbered from 1) the sender's link loses besides the random ones."""
    from xmfax.audio.terminal import AudioConfig, AudioTerminal
    from xmfax.rtp import RTPConfig, RTPReceiver, RTPSender
    from xmfax.t30.config import T30Config
    from xmfax.t30.modem import Family
    from xmfax.t30.session import Session

    fams = {"V.17": {Family.V17, Family.V29, Family.V27TER}, "V.29": {Family.V29, Family.V27TER}}[family]
    cfg = AudioConfig.limit_t30(T30Config(ecm=ecm, max_rate=14400 if family == "V.17" else 9600,
                                          modems=frozenset(fams)))
    tx = Session(cfg, calling=True, pages=pages)
    rx = Session(cfg, calling=False, receive=True)
    rcfg = RTPConfig() if depth is None else RTPConfig(jitter_depth=depth)
    ends = []
    receivers = []
    for i, sess in enumerate((tx, rx)):
        term = AudioTerminal(sess)
        term.start(0.0)
        sender = RTPSender(rcfg, rng=random.Random(seed * 7 + i))
        receiver = RTPReceiver(rcfg, 0.0)
        receivers.append(receiver)

        def tick(now, term=term):
            due = term.next_timer()
            if due is not None and due <= now:
                term.handle_timer(now)

        ends.append(End(send=lambda n, now, t=term, s=sender: s.send_samples(t.samples_to_send(n, now)),
                        take=receiver.receive,
                        play=lambda now, t=term, r=receiver: t.receive_samples(r.play_samples(now), now),
                        tick=tick, done=lambda t=term: t.done))
    links = (Link(loss, jitter, seed, 0, drop=drop), Link(loss, jitter, seed, 1))
    line = pump(ends[0], ends[1], links, limit)
    stats = rx.result.pages_received
    return outcome(pages, [p.image for p in rx.result.received_pages],
                   tx.result.status == "success", rx.result.status == "success",
                   sum(s.bad_rows for s in stats), min((s.rate for s in stats), default=0), line,
                   links[0].lost + links[1].lost, sum(r.stats.late for r in receivers),
                   str(getattr(tx.result.reason, "name", tx.result.reason)))
