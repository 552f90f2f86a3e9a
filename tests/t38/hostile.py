"""Hostile datagrams for the T.38 harness (tests/t38/test_hostile_calls.py): what a
broken or malicious far end, or a mangling network, may put in front of a terminal."""
from __future__ import annotations

import random

from calls import Network

from xmfax.t38.ifp import Indicator, IndicatorPacket, encode_ifp
from xmfax.t38.udptl import UDPTLPacket, encode_udptl

NO_SIGNAL = encode_ifp(IndicatorPacket(Indicator.NO_SIGNAL))


def with_seq(datagram: bytes, seq: int) -> bytes:
    return (seq & 0xFFFF).to_bytes(2, "big") + datagram[2:]


def seq_of(datagram: bytes) -> int:
    return (datagram[0] << 8) | datagram[1]


def bad_ifp(rng: random.Random) -> bytes:
    """A primary that is not a valid IFP packet (or is, by chance: then it is just noise)."""
    kind = rng.randrange(4)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
    if kind == 1:
        return bytes([0x7F, 0xFF, 0xFF])                      # data type and field count out of range
    if kind == 2:
        return bytes([0xD0, 0x01, 0x00, 0xFF, 0xFF])          # a field longer than the packet
    return bytes([0x1F])                                      # an indicator past the enumeration


def hostile(rng: random.Random, history: list[bytes], *, steal_slots: bool) -> list[bytes]:
    """One to three hostile datagrams, modelled on ``history`` (the real ones so far,
    most recent last). With ``steal_slots``, some carry the next expected sequence number
    (so the real packet there is then dropped as a duplicate: a loss the far end caused)."""
    last = history[-1] if history else encode_udptl(UDPTLPacket(0, NO_SIGNAL))
    nxt = seq_of(last) + 1
    out = []
    for _ in range(rng.randint(1, 3)):
        kind = rng.randrange(10)
        if kind == 0:
            out.append(bytes(rng.randrange(256) for _ in range(rng.randint(0, 600))))
        elif kind == 1:
            out.append(last[:rng.randrange(len(last))])                       # truncated
        elif kind == 2:
            out.append(last + bytes(rng.randint(1, 3000)))                      # trailing junk
        elif kind == 3:                                                         # FEC bomb
            out.append(encode_udptl(UDPTLPacket(nxt + rng.randint(-3, 3), NO_SIGNAL,
                                                fec_npackets=rng.choice([32, 1000, -5]),
                                                fec_data=(b"",) * rng.choice([17, 2000, 16000]))))
        elif kind == 4:                                                         # redundancy bomb
            out.append(encode_udptl(UDPTLPacket(nxt + rng.randint(-3, 3), NO_SIGNAL,
                                                (NO_SIGNAL,) * rng.choice([33, 500, 4000]))))
        elif kind == 5:                                                         # bad IFP, late or far
            seq = nxt - rng.randint(1, 600) if rng.random() < 0.5 else nxt + rng.randint(40, 60000)
            out.append(encode_udptl(UDPTLPacket(seq & 0xFFFF, bad_ifp(rng))))
        elif kind == 6 and steal_slots:                                         # bad IFP, next slot
            out.append(encode_udptl(UDPTLPacket(nxt & 0xFFFF, bad_ifp(rng))))
        elif kind == 7 and history:                                             # replay, shifted
            start = rng.randrange(len(history))
            shift = rng.choice([600, 20000, 32768, 65000])
            for d in history[start:start + 3]:
                out.append(with_seq(d, seq_of(d) + shift))
        elif kind == 8 and history:                                             # old copies
            out.append(rng.choice(history))
        else:                                                                   # a wrap-around jump
            out.append(encode_udptl(UDPTLPacket((nxt + 0x8000) & 0xFFFF, NO_SIGNAL)))
    return out


class HostileNetwork(Network):
    """A Network that also delivers hostile datagrams to the receiving end of ``rate`` of
    the real ones (as if from the same address), besides its loss, duplicates and jitter."""

    def __init__(self, rate: float = 0.1, steal_slots: bool = False, **kw):
        super().__init__(**kw)
        self.rate = rate
        self.steal_slots = steal_slots
        self.history: list[list[bytes]] = [[], []]
        self.injected = 0

    def send(self, src, datagram, now):
        super().send(src, datagram, now)
        hist = self.history[src]
        hist.append(datagram)
        if len(hist) > 400:
            del hist[:100]
        if self.rng.random() < self.rate:
            for d in hostile(self.rng, hist, steal_slots=self.steal_slots):
                self.injected += 1
                self.n += 1
                self.queue.append((now + self.rng.random() * 0.05, self.n, 1 - src, d))
            self.queue.sort()
