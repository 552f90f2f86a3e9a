"""UDPTL: oracle agreement, redundancy and FEC recovery, duplicates, reordering, fuzzing."""
from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings, strategies as st

from xmfax.t38.config import EC_FEC, EC_NONE, EC_REDUNDANCY, T38Config
from xmfax.t38.ifp import DataPacket, DataType, Field, FieldType, encode_ifp
from xmfax.t38.udptl import UDPTLPacket, UDPTLReceiver, UDPTLSender, decode_udptl, encode_udptl

asn1tools = pytest.importorskip("asn1tools", reason="asn1tools is the UDPTL oracle")
ASN = os.path.join(os.path.dirname(__import__("xmfax.t38", fromlist=["x"]).__file__), "t38.asn")
ORACLE = asn1tools.compile_files(ASN, "per").modules["T38-2002"]["UDPTLPacket"]


def ifps(n, seed=0, size=(1, 60)):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        data = bytes(rng.randrange(256) for _ in range(rng.randint(*size)))
        out.append(encode_ifp(DataPacket(DataType.V17_14400, (Field(FieldType.T4_NON_ECM_DATA, data),)), 0))
    return out


octets = st.binary(min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 65535), octets, st.lists(octets, max_size=4),
       st.none() | st.integers(0, 300), st.lists(st.binary(max_size=130), max_size=4))
def test_encode_matches_oracle_and_round_trips(seq, primary, secondary, npackets, fec):
    if npackets is None:
        p = UDPTLPacket(seq, primary, tuple(secondary))
        value = {"seq-number": seq, "primary-ifp-packet": primary,
                 "error-recovery": ("secondary-ifp-packets", secondary)}
    else:
        p = UDPTLPacket(seq, primary, fec_npackets=npackets, fec_data=tuple(fec))
        value = {"seq-number": seq, "primary-ifp-packet": primary,
                 "error-recovery": ("fec-info", {"fec-npackets": npackets, "fec-data": fec})}
    raw = encode_udptl(p)
    assert raw == ORACLE.encode(value)
    assert decode_udptl(raw) == p


def run(cfg, packets, drop=(), dup=(), swap=(), version=0):
    tx, rx = UDPTLSender(cfg), UDPTLReceiver(version)
    grams = [tx.pack(p) for p in packets]
    for d in grams:
        assert len(d) <= cfg.max_datagram
    order = list(range(len(grams)))
    for i in swap:
        order[i], order[i + 1] = order[i + 1], order[i]
    got = []
    for i in order:
        if i in drop:
            continue
        got += rx.receive(grams[i])
        if i in dup:
            got += rx.receive(grams[i])
    return got, rx


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_redundancy_recovers_every_burst_it_covers(depth):
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=depth, max_datagram=1400)
    pk = ifps(40)
    for start in range(1, 30):
        for burst in range(1, depth + 1):
            got, rx = run(cfg, pk, drop=set(range(start, start + burst)))
            assert [g[1] for g in got] == pk, (start, burst)
            assert rx.stats.recovered_redundancy == burst
    # one more than the depth is lost, and reported as lost (None), not skipped
    got, rx = run(cfg, pk, drop=set(range(5, 6 + depth)))
    assert len(got) == len(pk) and got[5][1] is None and rx.stats.lost == 1


@pytest.mark.parametrize("span,entries", [(1, 1), (3, 1), (3, 3), (2, 4)])
def test_fec_recovers_single_and_burst_losses(span, entries):
    cfg = T38Config(udp_ec=EC_FEC, fec_span=span, fec_entries=entries, max_datagram=1400)
    pk = ifps(60, seed=span * 10 + entries)
    warm = span * entries + 1
    for start in range(warm + span * entries, 50):
        for burst in range(1, entries + 1):
            got, rx = run(cfg, pk, drop=set(range(start, start + burst)))
            assert [g[1] for g in got] == pk, (start, burst)
            assert rx.stats.recovered_fec == burst


def test_duplicates_and_reordering():
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=2, max_datagram=1400)
    pk = ifps(30)
    got, rx = run(cfg, pk, dup={3, 4, 20}, swap=(7, 15))
    assert [g[1] for g in got] == pk
    assert rx.stats.duplicates >= 3 + 2  # the duplicates, and the late originals of the swaps
    got, rx = run(T38Config(udp_ec=EC_FEC, max_datagram=1400), pk, swap=(20,))
    assert [g[1] for g in got] == pk


def test_no_ec_reports_loss_and_drops_late():
    pk = ifps(10)
    got, rx = run(T38Config(udp_ec=EC_NONE), pk, swap=(4,))
    assert got[4][1] is None and rx.stats.lost == 1 and rx.stats.late == 1
    assert [g[0] for g in got] == list(range(10))


def test_datagrams_trimmed_to_max_datagram():
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=5, max_datagram=200)
    tx = UDPTLSender(cfg)
    for p in ifps(30, size=(50, 90)):
        assert len(tx.pack(p)) <= 200
    assert tx.trimmed > 0
    tx = UDPTLSender(T38Config(udp_ec=EC_FEC, fec_entries=4, max_datagram=200))
    for p in ifps(30, size=(50, 90)):
        assert len(tx.pack(p)) <= 200


def test_sequence_wraps():
    cfg = T38Config(udp_ec=EC_REDUNDANCY, redundancy_depth=1)
    tx, rx = UDPTLSender(cfg, first_seq=65530), UDPTLReceiver()
    pk = ifps(12)
    grams = [tx.pack(p) for p in pk]
    got = []
    for i, g in enumerate(grams):
        if i != 7:
            got += rx.receive(g)
    assert [g[1] for g in got] == pk
    assert [g[0] for g in got] == [(65530 + i) & 0xFFFF for i in range(12)]


def test_malformed_datagrams_counted_not_raised():
    rx = UDPTLReceiver()
    rng = random.Random(7)
    seed = UDPTLSender(T38Config(max_datagram=1400)).pack(ifps(1)[0])
    for _ in range(3000):
        raw = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            if rng.random() < 0.5 and raw:
                raw[rng.randrange(len(raw))] ^= 1 << rng.randrange(8)
            else:
                del raw[rng.randrange(len(raw) + 1):]
        rx.receive(bytes(raw))
    assert sum(rx.stats.malformed.values()) > 0
    assert rx.stats.datagrams == 3000


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=80), max_size=8))
def test_fuzz_receiver(grams):
    rx = UDPTLReceiver()
    for g in grams:
        for seq, ifp in rx.receive(g):
            assert 0 <= seq <= 0xFFFF and (ifp is None or isinstance(ifp, bytes))
