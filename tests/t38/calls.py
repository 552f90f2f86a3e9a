"""Helpers for whole calls on a fake clock: two endpoints joined by a simulated network."""
from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field

import numpy as np

from xmfax.page import Page, Resolution


def test_pages(n: int = 1, rows: int = 300, seed: int = 0) -> list[Page]:
    """Small synthetic pages with text-like structure (fast to code, not trivial)."""
    rng = np.random.default_rng(seed)
    pages = []
    for k in range(n):
        img = np.zeros((rows, 1728), dtype=bool)
        for r in range(0, rows - 12, 16):
            for c in range(40, 1600, 24):
                if rng.random() < 0.6:
                    h, w = rng.integers(4, 11), rng.integers(6, 18)
                    img[r:r + h, c:c + w] = True
        img[5 + k:9 + k, 100:1600] = True
        pages.append(Page(img, Resolution.FINE, source=f"synthetic {k}"))
    return pages


@dataclass
class Network:
    """Datagrams between endpoint 0 and 1 with loss, duplication and jitter (which reorders)."""

    loss: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.020
    jitter: float = 0.0
    seed: int = 1
    burst_at: tuple[int, ...] = ()        # indices of datagrams (per direction) dropped
    rng: random.Random = field(init=False)
    queue: list = field(default_factory=list)
    counts: list = field(default_factory=lambda: [0, 0])
    n: int = 0

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    def send(self, src: int, datagram, now: float) -> None:
        idx = self.counts[src]
        self.counts[src] += 1
        if idx in self.burst_at or self.rng.random() < self.loss:
            return
        copies = 2 if self.rng.random() < self.duplicate else 1
        for _ in range(copies):
            t = now + self.delay + self.rng.random() * self.jitter
            self.n += 1
            heapq.heappush(self.queue, (t, self.n, 1 - src, datagram))

    def next_time(self):
        return self.queue[0][0] if self.queue else None

    def pop_due(self, now: float):
        while self.queue and self.queue[0][0] <= now:
            t, _, dst, d = heapq.heappop(self.queue)
            yield dst, d


def run_terminals(a, b, net: Network, limit: float = 600.0, use_udptl: bool = True) -> float:
    """Run two T38Terminals until both are done; return the simulated duration."""
    ends = (a, b)
    now = 0.0
    a.start(now)
    b.start(now)

    def flush(now):
        for i, t in enumerate(ends):
            out = t.datagrams_to_send() if use_udptl else t.packets_to_send()
            for d in out:
                net.send(i, d, now)

    flush(now)
    while not (a.done and b.done) and now < limit:
        times = [t for t in (a.next_timer(), b.next_timer(), net.next_time()) if t is not None]
        if not times:
            break
        now = max(now, min(times))
        for dst, d in list(net.pop_due(now)):
            if use_udptl:
                ends[dst].receive_datagram(d, now)
            else:
                ends[dst].receive_ifp(d[1], now, seq=d[0])
        for t in ends:
            nt = t.next_timer()
            if nt is not None and nt <= now:
                t.handle_timer(now)
        flush(now)
    return now
