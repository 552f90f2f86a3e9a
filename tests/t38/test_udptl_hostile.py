"""UDPTL receiver against hostile and badly ordered input (issue #10): bounded error
recovery, sequence jumps and wrap, stale copies after a resync."""
from __future__ import annotations

import random
import time

from xmfax.t38.config import EC_FEC, EC_REDUNDANCY, T38Config
from xmfax.t38.ifp import DataPacket, DataType, Field, FieldType, Indicator, IndicatorPacket, encode_ifp
from xmfax.t38.udptl import (MAX_FEC_ENTRIES, MAX_FEC_SPAN, MAX_REDUNDANCY, UDPTLPacket, UDPTLReceiver,
                             UDPTLSender, encode_udptl)


def ifps(n, seed=0):
    rng = random.Random(seed)
    return [encode_ifp(DataPacket(DataType.V17_14400, (Field(FieldType.T4_NON_ECM_DATA,
                                                             bytes(rng.randrange(256) for _ in range(20))),)), 0)
            for _ in range(n)]

def redundant_stream(count: int, depth: int, first_seq: int = 0):
    """``count`` IFP packets and the UDPTL datagrams that carry them with redundancy ``depth``."""
    tx = UDPTLSender(T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=depth), first_seq=first_seq)
    pk = ifps(count)
    return pk, [tx.pack(p) for p in pk]



NO_SIGNAL = encode_ifp(IndicatorPacket(Indicator.NO_SIGNAL), 0)


def feed(rx, grams):
    out = []
    for g in grams:
        out += rx.receive(g)
    return out


def test_fec_amplification_is_refused_and_cheap():
    # 16,000 empty fec entries with span 32 cost 0.73 s in the old recovery loop
    bomb = encode_udptl(UDPTLPacket(5, NO_SIGNAL, fec_npackets=32, fec_data=(b"",) * 16000))
    rx = UDPTLReceiver()
    rx.receive(encode_udptl(UDPTLPacket(0, NO_SIGNAL)))
    t0 = time.process_time()
    for _ in range(20):
        assert rx.receive(bomb) == []
    assert time.process_time() - t0 < 0.5          # generous: refused before the entries are read
    assert rx.stats.malformed["too many fec entries"] == 20
    assert rx.next_seq == 1                          # and the stream is untouched


def test_bounds_on_fec_span_and_entries_and_redundancy():
    rx = UDPTLReceiver()
    rx.receive(encode_udptl(UDPTLPacket(0, NO_SIGNAL)))
    assert rx.receive(encode_udptl(UDPTLPacket(3, NO_SIGNAL, fec_npackets=MAX_FEC_SPAN + 1,
                                               fec_data=(b"\1",)))) == []
    assert rx.receive(encode_udptl(UDPTLPacket(3, NO_SIGNAL, fec_npackets=-1, fec_data=(b"\1",)))) == []
    assert rx.receive(encode_udptl(UDPTLPacket(3, NO_SIGNAL, fec_npackets=2,
                                               fec_data=(b"\1",) * (MAX_FEC_ENTRIES + 1)))) == []
    assert rx.receive(encode_udptl(UDPTLPacket(3, NO_SIGNAL, (NO_SIGNAL,) * (MAX_REDUNDANCY + 1)))) == []
    assert sum(rx.stats.malformed.values()) == 4 and rx.stats.delivered == 1
    # at the bounds: accepted
    got = rx.receive(encode_udptl(UDPTLPacket(1, NO_SIGNAL, fec_npackets=MAX_FEC_SPAN,
                                              fec_data=(b"\1",) * MAX_FEC_ENTRIES)))
    assert got == [(1, NO_SIGNAL)]
    got = rx.receive(encode_udptl(UDPTLPacket(2, NO_SIGNAL, (NO_SIGNAL,) * MAX_REDUNDANCY)))
    assert got == [(2, NO_SIGNAL)]


def test_largest_fec_recovery_is_bounded():
    # the most expensive datagram the bounds let through: every entry has one missing packet
    cfg = T38Config(udp_ec=EC_FEC, fec_span=MAX_FEC_SPAN, fec_entries=MAX_FEC_ENTRIES, max_datagram=65000)
    tx, rx = UDPTLSender(cfg), UDPTLReceiver()
    pk = ifps(MAX_FEC_SPAN * MAX_FEC_ENTRIES * 2 + MAX_FEC_ENTRIES + 1)
    grams = [tx.pack(p) for p in pk]
    last = len(grams) - 1
    got = feed(rx, grams[:last - MAX_FEC_ENTRIES])
    # the MAX_FEC_ENTRIES packets before the last are lost: the last one's parities give them
    got += rx.receive(grams[last])
    assert [g[1] for g in got] == pk
    assert rx.stats.recovered_fec == MAX_FEC_ENTRIES


def seqs(rx, grams):
    return [(s, ifp is not None) for s, ifp in feed(rx, grams)]


def test_jump_needs_confirmation_and_old_copies_are_stale():
    """A far end that jumps its numbering by 600 mid-page, with every datagram duplicated and
    the copies arriving late: before the fix the stream flapped between the two numberings
    and page data was delivered twice (pages of 2,462-2,801 rows instead of 2,292)."""
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=2)
    pk = ifps(40)
    a = UDPTLSender(cfg)
    grams = [a.pack(p) for p in pk[:20]]
    b = UDPTLSender(cfg, first_seq=20 + 600)
    grams += [b.pack(p) for p in pk[20:]]
    order = []
    for i, g in enumerate(grams):
        order.append(g)
        if i >= 3:
            order.append(grams[i - 3])     # a copy of the packet three back
    rx = UDPTLReceiver()
    got = feed(rx, order)
    data = [ifp for _, ifp in got if ifp is not None]
    assert data == pk                       # every packet once, in order: nothing twice
    assert rx.stats.resyncs == 1 and sum(ifp is None for _, ifp in got) == 1
    assert rx.stats.stale > 0


def test_one_stray_far_packet_is_held_not_followed():
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=1)
    tx = UDPTLSender(cfg)
    pk = ifps(10)
    grams = [tx.pack(p) for p in pk]
    stray = encode_udptl(UDPTLPacket(30000, NO_SIGNAL))
    rx = UDPTLReceiver()
    got = feed(rx, grams[:5] + [stray] + grams[5:])
    assert [g[1] for g in got] == pk
    assert rx.stats.held == 1 and rx.stats.resyncs == 0


def test_burst_loss_beyond_jump_is_reported_packet_by_packet():
    pk, grams = redundant_stream(200, depth=1)
    rx = UDPTLReceiver()
    got = feed(rx, grams[:10] + grams[110:])
    assert [s for s, _ in got] == list(range(200))
    assert [ifp for _, ifp in got] == pk[:10] + [None] * 99 + [pk[109]] + pk[110:]
    assert rx.stats.resyncs == 0


def test_wrap_with_duplicates_and_reordering():
    pk, grams = redundant_stream(40, depth=2, first_seq=65520)
    order = list(grams)
    order[10], order[11] = order[11], order[10]     # reordered by one across 65535 -> 0
    order[20:20] = [grams[18], grams[5]]             # copies, one from before the wrap
    rx = UDPTLReceiver()
    got = feed(rx, order)
    assert [ifp for _, ifp in got] == pk
    assert [s for s, _ in got] == [(65520 + i) & 0xFFFF for i in range(40)]
    assert rx.stats.duplicates == 3 and rx.stats.resyncs == 0


def test_restart_of_numbering_is_followed_and_reported():
    tx = UDPTLSender(T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=1), first_seq=5000)
    pk = ifps(20)
    grams = [tx.pack(p) for p in pk[:10]]
    tx2 = UDPTLSender(T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=1), first_seq=0)
    grams += [tx2.pack(p) for p in pk[10:]]
    rx = UDPTLReceiver()
    got = feed(rx, grams)
    assert [ifp for _, ifp in got] == pk[:10] + [None] + pk[10:]
    assert rx.stats.resyncs == 1


def test_replay_with_shifted_numbers_is_stale():
    # datagrams already delivered, sent again under numbers far from the stream, two in a
    # row (what a jump confirmation looks like): their data must not be delivered again
    pk, grams = redundant_stream(30, depth=1)
    rx = UDPTLReceiver()
    got = feed(rx, grams[:20])
    replay = [encode_udptl(UDPTLPacket((1000 + i) & 0xFFFF, pk[i])) for i in range(10)]
    got += feed(rx, replay)
    got += feed(rx, grams[20:])
    assert [ifp for _, ifp in got] == pk
    assert rx.stats.stale == 10 and rx.stats.resyncs == 0


def test_a_malformed_datagram_never_takes_the_expected_slot():
    # a redundancy bomb carrying the very next sequence number: refused (it used to be taken
    # by the fast path, its no-signal delivered, and the real packet dropped as late)
    pk, grams = redundant_stream(6, depth=1)
    rx = UDPTLReceiver()
    got = feed(rx, grams[:3])
    for bad in (encode_udptl(UDPTLPacket(3, NO_SIGNAL, (NO_SIGNAL,) * 500)),
                encode_udptl(UDPTLPacket(3, NO_SIGNAL, (NO_SIGNAL,) * 2))[:-1],
                encode_udptl(UDPTLPacket(3, NO_SIGNAL, (NO_SIGNAL,) * 2)) + b"\0"):
        assert rx.receive(bad) == []
    got += feed(rx, grams[3:])
    assert [ifp for _, ifp in got] == pk


def test_restart_bridged_by_redundancy_loses_nothing():
    # the far end renumbers (same stream): the first renumbered packet's redundancy holds the
    # last one delivered, so nothing in between is unknown, and nothing is reported lost
    tx = UDPTLSender(T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=3))
    pk = ifps(30)
    grams = [tx.pack(p) for p in pk[:10]]
    tx.seq = (tx.seq + 30000) & 0xFFFF
    grams += [tx.pack(p) for p in pk[10:]]
    rx = UDPTLReceiver()
    got = feed(rx, grams[:10] + grams[11:])          # and the first renumbered one is lost
    assert [ifp for _, ifp in got] == pk
    assert rx.stats.resyncs == 1 and rx.stats.lost == 0
