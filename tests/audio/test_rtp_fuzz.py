"""Property tests of xmfax.rtp: any bytes parse or raise RTPError (nothing else); packets
round-trip; the receiver survives any datagrams at any times and always plays exactly the
samples due; a stream that loses, duplicates and reorders packets within the buffer's depth
plays back exactly, with silence in the slots of the lost packets only."""
from __future__ import annotations

import random

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xmfax.rtp import (RTPConfig, RTPError, RTPPacket, RTPReceiver, RTPSender, SILENCE,
                       parse_rtp, parse_telephone_event, telephone_event_payload)

U = SILENCE["ulaw"]
_NOT_SILENCE = [c for c in range(256) if c != U]

packets = st.builds(
    RTPPacket,
    payload_type=st.integers(0, 127), sequence=st.integers(0, 65535),
    timestamp=st.integers(0, 2**32 - 1), ssrc=st.integers(0, 2**32 - 1),
    payload=st.binary(max_size=400), marker=st.booleans(),
    csrc=st.lists(st.integers(0, 2**32 - 1), max_size=15).map(tuple),
    extension=st.none() | st.tuples(st.integers(0, 65535),
                                    st.binary(max_size=40).map(lambda b: b[:len(b) // 4 * 4])),
    padding=st.integers(0, 255))


def _mutate(data: bytes, edits) -> bytes:
    b = bytearray(data)
    for kind, pos, value in edits:
        if kind == 0 and b:
            b[pos % len(b)] ^= 1 << (value % 8)                # flip a bit
        elif kind == 1:
            b = b[:pos % (len(b) + 1)]                          # truncate
        elif kind == 2:
            b.insert(pos % (len(b) + 1), value % 256)           # insert an octet
        elif kind == 3 and b:
            b[pos % len(b)] = value % 256                       # overwrite an octet
    return bytes(b)


edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.integers(0, 255)), max_size=6)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_rtp_error(data):
    try:
        p = parse_rtp(data)
    except RTPError:
        return
    assert parse_rtp(p.encode()) == p


@given(packets)
def test_built_packets_round_trip(p):
    assert parse_rtp(p.encode()) == p


@given(packets, edits)
def test_mutated_packets_raise_only_rtp_error(p, ed):
    data = _mutate(p.encode(), ed)
    try:
        q = parse_rtp(data)
    except RTPError:
        return
    assert parse_rtp(q.encode()) == q            # what parses re-encodes to the same packet


@given(st.binary(max_size=12), st.integers(0, 2**32 - 1))
def test_telephone_event_payloads_parse_or_raise_rtp_error(data, ts):
    try:
        ev = parse_telephone_event(data, ts)
    except RTPError:
        assert len(data) < 4
        return
    unreserved = data[:1] + bytes([data[1] & ~0x40]) + data[2:4]          # R is ignored (§2.3)
    assert telephone_event_payload(ev.event, ev.duration, end=ev.end, volume=ev.volume) == unreserved


@settings(max_examples=60)
@given(st.lists(st.tuples(st.floats(0, 0.1), st.one_of(packets.map(RTPPacket.encode), st.binary(max_size=60)),
                          edits), max_size=60),
       st.sampled_from(["ulaw", "alaw"]), st.integers(0, 2))
def test_receiver_survives_anything_and_keeps_the_clock(items, law, pt_choice):
    cfg = RTPConfig(law=law, jitter_depth=0.04, max_ahead=0.2,
                    payload_type=[None, 0, 8][pt_choice])
    r = RTPReceiver(cfg, 10.0)
    t, played = 10.0, 0
    for gap, data, ed in items:
        t += gap
        r.receive(_mutate(data, ed), t)            # never raises, whatever arrives
        played += len(r.play(t))
        assert played == int((t - 10.0) * 8000 + 1e-6)
        assert 0 <= r.buffered <= 320 + 1600 + 160
    s = r.stats
    assert s.audio_samples + s.silence_samples == played
    assert min(s.late, s.duplicate, s.reordered, s.overflow, s.invalid, s.unknown_payload) >= 0
    for ev in r.events():
        assert type(ev).__name__ in ("TelephoneEvent", "SourceChanged")


@settings(max_examples=60)
@given(st.integers(5, 60), st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1),
       st.floats(0.0, 0.1))
def test_loss_duplication_reordering_within_the_depth_play_back_exactly(n, seq, ts, seed, first_delay):
    depth = 0.06
    rnd = random.Random(seed)
    data = bytes(rnd.choice(_NOT_SILENCE) for _ in range(160 * n))
    pk = RTPSender(RTPConfig(), ssrc=77, sequence=seq, timestamp=ts).send(data)
    # (never the last: RFC 3550 A.3 cannot count a loss after the highest sequence received)
    lost = {k for k in range(1, n - 1) if rnd.random() < 0.15}
    arrivals = [(first_delay, pk[0])]
    for k in range(1, n):
        if k in lost:
            continue
        # any delay from 0 to first_delay + depth (minus a hair): never late
        # (after the first packet, which anchors the stream)
        when = max(0.02 * k + rnd.uniform(0.0, first_delay + depth - 0.001), first_delay + 1e-4)
        arrivals.append((when, pk[k]))
        if rnd.random() < 0.1:
            arrivals.append((when + rnd.uniform(0, 0.2), pk[k]))           # a duplicate
    arrivals.sort(key=lambda a: a[0])
    r = RTPReceiver(RTPConfig(jitter_depth=depth), 0.0)
    out = bytearray()
    t = 0.0
    for when, d in arrivals:
        out += r.play(when)
        r.receive(d, when)
        t = when
    out += r.play(t + 0.1 * n)
    start = int(first_delay * 8000 + 1e-6) + 480          # the first packet's time + the depth
    want = bytearray(data)
    for k in lost:
        want[160 * k:160 * (k + 1)] = bytes([U]) * 160
    assert out[start:start + len(data)] == bytes(want)
    s = r.stats
    assert s.late == 0 and s.lost == len(lost) and s.played_packets == n - len(lost)
    assert set(out[:start]) <= {U} and set(out[start + len(data):]) <= {U}


@given(st.integers(0, 2**16 - 1), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_sender_sequence_and_timestamp_advance_mod_2_16_and_2_32(seq, ts, n):
    s = RTPSender(RTPConfig(), ssrc=1, sequence=seq, timestamp=ts)
    pk = [parse_rtp(d) for d in s.send(bytes(160 * n))]
    assert [p.sequence for p in pk] == [(seq + k) % 65536 for k in range(n)]
    assert [p.timestamp for p in pk] == [(ts + 160 * k) % 2**32 for k in range(n)]
    assume(n > 1)
    assert [p.marker for p in pk] == [True] + [False] * (n - 1)


def test_rtp_error_is_the_only_error_on_a_seeded_flood():
    # a fixed-seed sweep beside the hypothesis ones: 20,000 random mutations of real packets
    rnd = random.Random(12)
    base = [RTPPacket(0, 1, 2, 3, bytes(160)).encode(),
            RTPPacket(101, 9, 9, 9, b"\x24\x8a\x03\x20", True, (1, 2), (0xBEDE, b"1234"), 4).encode()]
    r = RTPReceiver(RTPConfig(), 0.0)
    for k in range(20000):
        d = _mutate(rnd.choice(base), [(rnd.randrange(4), rnd.randrange(400), rnd.randrange(256))
                                       for _ in range(rnd.randrange(1, 4))])
        try:
            parse_rtp(d)
        except RTPError:
            pass
        r.receive(d, k * 0.001)
    assert len(r.play(20.0)) == 160000
