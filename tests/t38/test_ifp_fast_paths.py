"""The shortcuts taken for speed (issue #13 §2) agree with the general code they stand for."""
from __future__ import annotations

import os
import sys

from hypothesis import given, strategies as st

from xmfax.t30.config import T30Config
from xmfax.t30.session import Session
from xmfax.t38.config import T38Config
from xmfax.t38.ifp import DataPacket, DataType, Field, FieldType, decode_ifp, encode_ifp
from xmfax.t38.terminal import T38Terminal
from xmfax.t38.udptl import UDPTLPacket, UDPTLSender, _item, _redundancy_datagram, decode_udptl, encode_udptl

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, test_pages as make_pages  # noqa: E402

# lengths around the one-octet length determinant's limit (127/128)
_lengths = st.one_of(st.binary(max_size=4), st.binary(min_size=126, max_size=130))


@given(st.integers(0, 0xFFFF), st.one_of(st.binary(min_size=1, max_size=4),
                                         st.binary(min_size=126, max_size=130)),
       st.lists(_lengths, max_size=5))
def test_redundancy_datagram_is_encode_udptl(seq, ifp, secondary):
    raw = _redundancy_datagram(seq, _item(ifp), [_item(s) for s in secondary])
    if len(ifp) >= 128 or any(len(s) >= 128 for s in secondary):
        assert raw is None                  # a two-octet length: the general encoder's work
        return
    assert raw == encode_udptl(UDPTLPacket(seq, ifp, tuple(secondary)))
    assert decode_udptl(raw) == UDPTLPacket(seq, ifp, tuple(secondary))


@given(st.lists(st.one_of(st.binary(min_size=1, max_size=20), st.binary(min_size=120, max_size=140)),
                min_size=1, max_size=80), st.integers(0, 5), st.sampled_from([60, 176, 400]))
def test_sender_datagrams_are_the_general_encoding(ifps, depth, max_datagram):
    # the sender's datagrams (pre-prefixed items, trimming to T38FaxMaxDatagram) decode to
    # each packet with the packets before it, newest first, as many as fit
    tx = UDPTLSender(T38Config(redundancy_depth=depth, max_datagram=max_datagram))
    for k, ifp in enumerate(ifps):
        if len(ifp) + 5 > max_datagram:
            continue
        raw = tx.pack(ifp)
        pkt = decode_udptl(raw)
        assert len(raw) <= max_datagram and pkt.primary == ifp
        sent = [p for p in ifps[:k] if len(p) + 5 <= max_datagram]
        want = tuple(sent[::-1][:depth])
        assert pkt.secondary == want[:len(pkt.secondary)]
        assert raw == encode_udptl(pkt)


@given(st.sampled_from(range(9)), st.sampled_from(range(8)), st.integers(0, 3),
       st.one_of(st.just(b""), st.binary(min_size=1, max_size=300)))
def test_one_field_packets_survive_both_fast_paths(dt, ft, version, data):
    # encode_ifp builds a one-field packet directly, decode_ifp reads one with data (or a
    # data-less one in its last octet) directly; against the general field loop: a
    # second field forces it, and the first field must come out the same
    p = DataPacket(DataType(dt), (Field(FieldType(ft), data),))
    raw = encode_ifp(p, version)
    two = encode_ifp(DataPacket(DataType(dt), (Field(FieldType(ft), data), Field(FieldType.HDLC_SIG_END))),
                     version)
    assert two[0] == raw[0] | 0x80 and two[1] == 2
    if data:
        assert two[2:len(raw)] == raw[2:]
        assert decode_ifp(raw, version) == p
    else:
        assert two[2] >> (4 if version == 0 else 3) == raw[2] >> (4 if version == 0 else 3)
        if ft not in (FieldType.HDLC_DATA, FieldType.T4_NON_ECM_DATA):
            assert decode_ifp(raw, version) == p


def test_next_timer_is_never_stale():
    """next_timer() is kept from the end of each call; at every step of whole calls (paced,
    with loss, so the receive-side silence timers run too) it equals a fresh computation."""
    for paced, loss in ((True, 0.0), (True, 0.08), (False, 0.0)):
        cfg = T38Config(paced=paced)
        ends = (T38Terminal(Session(T30Config(), calling=True, pages=make_pages(2)), cfg),
                T38Terminal(Session(T30Config(), calling=False, receive=True), cfg))
        net = Network(loss=loss, seed=3)
        now = 0.0
        for t in ends:
            t.start(now)
        checked = 0
        while not all(t.done for t in ends) and now < 300:
            for i, t in enumerate(ends):
                assert t.next_timer() == t._compute_timer()
                for d in t.datagrams_to_send():
                    net.send(i, d, now)
            times = [x for x in (ends[0].next_timer(), ends[1].next_timer(), net.next_time())
                     if x is not None]
            if not times:
                break
            now = max(now, min(times))
            for dst, d in list(net.pop_due(now)):
                ends[dst].receive_datagram(d, now)
                assert ends[dst].next_timer() == ends[dst]._compute_timer()
                checked += 1
            for t in ends:
                nt = t.next_timer()
                if nt is not None and nt <= now:
                    t.handle_timer(now)
                    assert t.next_timer() == t._compute_timer()
                    checked += 1
        assert checked > 10
        assert all(t.done for t in ends), (paced, loss)
