"""Property tests (hypothesis) for what a hostile far end can send: the UDPTL decoder with
its bounds, the receiver with junk among a real stream, the terminal and the driver's
datagram check on arbitrary input (issue #10)."""
from __future__ import annotations

import os
import random
import sys

from hypothesis import given, settings, strategies as st

from xmfax.drivers.t38_udp import is_t38_datagram
from xmfax.t38.config import EC_FEC, EC_REDUNDANCY, T38Config
from xmfax.t38.ifp import DataPacket, DataType, Field, FieldType, IFPDecodeError, encode_ifp
from xmfax.t38.terminal import MAX_HDLC_FRAME, T38Terminal
from xmfax.t38.udptl import (_KEEP, _SEEN, MAX_FEC_ENTRIES, MAX_FEC_SPAN, MAX_REDUNDANCY, UDPTLPacket,
                             UDPTLReceiver, UDPTLSender, decode_udptl, encode_udptl)

sys.path.insert(0, os.path.dirname(__file__))
from test_terminal_ifp import Scripted  # noqa: E402


def real_stream(n, ec, seed, first_seq):
    rng = random.Random(seed)
    pk = [encode_ifp(DataPacket(DataType.V29_9600, (Field(FieldType.T4_NON_ECM_DATA,
                                                          rng.randbytes(rng.randint(1, 40))),)))
          for _ in range(n)]
    tx = UDPTLSender(T38Config(udp_ec=ec, max_datagram=1400), first_seq=first_seq)
    return pk, [tx.pack(p) for p in pk]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.integers(0, 40))
def test_decode_udptl_bounded(raw, bound):
    try:
        p = decode_udptl(raw, bound)
    except IFPDecodeError:
        return
    assert len(p.secondary) <= bound and len(p.fec_data) <= bound
    assert encode_udptl(p) == raw or len(encode_udptl(p)) <= len(raw)


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([EC_REDUNDANCY, EC_FEC]), st.integers(0, 65535), st.integers(0, 10**6),
       st.lists(st.tuples(st.integers(0, 59), st.one_of(
           st.binary(max_size=3),                                    # too short for UDPTL
           st.tuples(st.integers(0, 59), st.integers(0, 200)))),     # a real datagram, truncated
           max_size=40))
def test_junk_among_a_real_stream_changes_nothing(ec, first_seq, seed, junk):
    pk, grams = real_stream(60, ec, seed, first_seq)
    rx = UDPTLReceiver()
    at: dict[int, list[bytes]] = {}
    for pos, j in junk:
        if isinstance(j, tuple):
            g = grams[j[0]]
            j = g[:min(j[1], len(g) - 1)]
        at.setdefault(pos, []).append(j)
    got = []
    for i, g in enumerate(grams):
        for j in at.get(i, ()):
            got += rx.receive(j)
        got += rx.receive(g)
    assert [ifp for _, ifp in got] == pk
    assert [s for s, _ in got] == [(first_seq + i) & 0xFFFF for i in range(60)]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(
    st.binary(max_size=120),
    st.builds(lambda seq, prim, sec: encode_udptl(UDPTLPacket(seq, prim, tuple(sec))),
              st.integers(0, 65535), st.binary(min_size=1, max_size=60),
              st.lists(st.binary(max_size=20), max_size=MAX_REDUNDANCY + 2)),
    st.builds(lambda seq, prim, n, fec: encode_udptl(UDPTLPacket(seq, prim, fec_npackets=n, fec_data=tuple(fec))),
              st.integers(0, 65535), st.binary(min_size=1, max_size=60), st.integers(-3, MAX_FEC_SPAN + 3),
              st.lists(st.binary(max_size=40), max_size=MAX_FEC_ENTRIES + 2))), max_size=60))
def test_receiver_and_terminal_take_anything(grams):
    rx = UDPTLReceiver()
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False))
    term.start(0.0)
    now = 0.0
    for g in grams:
        now += 0.01
        for seq, ifp in rx.receive(g):
            assert 0 <= seq <= 0xFFFF and (ifp is None or isinstance(ifp, bytes))
        term.receive_datagram(g, now)
        is_t38_datagram(g)
        t = term.next_timer()
        if t is not None and t <= now + 5:
            term.handle_timer(t)
    assert len(rx._have) <= _KEEP and len(rx._seen) <= _SEEN
    assert len(term._frame) <= MAX_HDLC_FRAME
