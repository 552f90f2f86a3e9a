"""xmfax.rtp: RTP packets (RFC 3550 §5.1), the G.711 sender, the fixed jitter buffer on a
fake clock under loss, jitter, reordering, duplication, SSRC changes, timestamp jumps and
RFC 4733 events; and drivers/rtp.py over real UDP on 127.0.0.1."""
from __future__ import annotations

import asyncio
import random
import socket

import numpy as np
import pytest

from xmfax.audio import g711
from xmfax.drivers.rtp import RTPDriver, parse_rtp_url, run_rtp
from xmfax.errors import DriverError, RemoteProtocolError
from xmfax.rtp import (PT_CN, RTPConfig, RTPError, RTPPacket, RTPReceiver, RTPSender, SILENCE,
                       SourceChanged, TelephoneEvent, parse_rtp, parse_telephone_event,
                       telephone_event_payload)

U = SILENCE["ulaw"]
DEPTH = 480                         # the default 60 ms, in samples


def codes(n: int, seed: int = 1) -> bytes:
    """n µ-law codes, random but never the silence code (so a gap cannot hide)."""
    r = np.random.default_rng(seed).integers(0, 255, n, dtype=np.uint8)
    return bytes(np.where(r == U, 0x7E, r).astype(np.uint8))


def sender(**kw) -> RTPSender:
    kw.setdefault("rng", random.Random(7))
    return RTPSender(RTPConfig(), **kw)


def simulate(arrivals, end: float, *, config: RTPConfig | None = None, step: float = 0.020,
             receiver: RTPReceiver | None = None, start: float = 0.0):
    """Feed (time, datagram) pairs to a receiver on a fake clock, playing every ``step``;
    (played codes, receiver)."""
    r = receiver or RTPReceiver(config or RTPConfig(), start)
    out = bytearray()
    arrivals = sorted(arrivals, key=lambda a: a[0])
    k = 0
    t = start
    while t <= end + 1e-9:
        while k < len(arrivals) and arrivals[k][0] <= t + 1e-9:
            r.receive(arrivals[k][1], arrivals[k][0])
            k += 1
        out += r.play(t)
        t += step
    return bytes(out), r


def stream(data: bytes, s: RTPSender | None = None) -> list[bytes]:
    return (s or sender()).send(data)


# -- packets -------------------------------------------------------------------------------

def test_parse_a_hand_assembled_packet():
    # V=2 P=0 X=0 CC=0 | M=1 PT=0 | seq 0x1234 | ts 0x000000A0 | SSRC 0xDEADBEEF | 3 codes
    data = bytes.fromhex("80 80 12 34 00 00 00 a0 de ad be ef ff 7f 00")
    p = parse_rtp(data)
    assert (p.payload_type, p.marker, p.sequence, p.timestamp, p.ssrc) == (0, True, 0x1234, 0xA0, 0xDEADBEEF)
    assert p.payload == b"\xff\x7f\x00" and p.csrc == () and p.extension is None and p.padding == 0
    assert p.encode() == data


def test_csrc_extension_and_padding_parse_and_round_trip():
    # V=2 P=1 X=1 CC=2 = 0xB2; PT 8; two CSRCs; extension profile 0xBEDE, 1 word; 4 payload
    # octets; 3 padding octets, the last one counting them
    data = (bytes.fromhex("b2 08 ff ff 12 34 56 78 00 00 00 01") + bytes.fromhex("00 00 00 0a 00 00 00 0b")
            + bytes.fromhex("be de 00 01 01 02 03 04") + b"\xd5\xd5\x55\x55" + b"\x00\x00\x03")
    p = parse_rtp(data)
    assert p.payload_type == 8 and not p.marker and p.sequence == 0xFFFF
    assert p.csrc == (10, 11)
    assert p.extension == (0xBEDE, b"\x01\x02\x03\x04")
    assert p.payload == b"\xd5\xd5\x55\x55" and p.padding == 3
    assert p.encode() == data
    q = RTPPacket(96, 1, 2, 3, b"xyz", True, (1, 2, 3), (1, b""), 1)
    assert parse_rtp(q.encode()) == q


@pytest.mark.parametrize("data, what", [
    (b"", "12"),
    (bytes.fromhex("80 00 00 01 00 00 00 00 00 00 00"), "12"),
    (bytes.fromhex("40 00 00 01 00 00 00 00 00 00 00 01"), "version 1"),
    (bytes.fromhex("82 00 00 01 00 00 00 00 00 00 00 01 00 00 00 05"), "CSRC"),
    (bytes.fromhex("90 00 00 01 00 00 00 00 00 00 00 01 be de"), "extension"),
    (bytes.fromhex("90 00 00 01 00 00 00 00 00 00 00 01 be de 00 02 00 00 00 00"), "extension"),
    (bytes.fromhex("a0 00 00 01 00 00 00 00 00 00 00 01 ff ff 00"), "padding count 0"),
    (bytes.fromhex("a0 00 00 01 00 00 00 00 00 00 00 01 ff ff 04"), "padding count 4"),
])
def test_malformed_packets_raise_rtp_error_saying_what(data, what):
    with pytest.raises(RTPError, match=what) as info:
        parse_rtp(data)
    assert isinstance(info.value, RemoteProtocolError)


def test_padding_may_take_the_whole_payload():
    p = parse_rtp(bytes.fromhex("a0 00 00 01 00 00 00 00 00 00 00 01 00 00 03"))
    assert p.payload == b"" and p.padding == 3


@pytest.mark.parametrize("kw", [dict(payload_type=128), dict(sequence=1 << 16), dict(timestamp=-1),
                                dict(ssrc=1 << 32), dict(csrc=tuple(range(16))), dict(padding=256),
                                dict(extension=(1, b"abc")), dict(extension=(1 << 16, b""))])
def test_packet_fields_are_checked_when_building(kw):
    args = dict(payload_type=0, sequence=0, timestamp=0, ssrc=0) | kw
    with pytest.raises(ValueError):
        RTPPacket(**args)


def test_telephone_event_payload():
    # RFC 4733 §2.3: event 36 (CNG, §3.2), E=1, volume 10, duration 800
    payload = telephone_event_payload(36, 800, end=True, volume=10)
    assert payload == bytes([36, 0x80 | 10, 0x03, 0x20])
    assert parse_telephone_event(payload, 1000, 5) == TelephoneEvent(36, 10, 800, True, 1000, 5)
    assert parse_telephone_event(bytes([5, 0x4A, 0, 160]) + b"junk").end is False   # R bit ignored
    with pytest.raises(RTPError):
        parse_telephone_event(b"\x01\x02\x03")
    with pytest.raises(ValueError):
        telephone_event_payload(1, 1 << 16)


def test_config_checks_values():
    assert RTPConfig().samples_per_packet == 160 and RTPConfig(ptime=0.030).samples_per_packet == 240
    assert RTPConfig(law="alaw").audio_pt == 8 and RTPConfig(payload_type=99).audio_pt == 99
    for bad in (dict(law="g722"), dict(ptime=0.0), dict(ptime=0.00001), dict(jitter_depth=-1),
                dict(max_ahead=0), dict(event_payload_type=13), dict(payload_type=200)):
        with pytest.raises(ValueError):
            RTPConfig(**bad)


# -- sender --------------------------------------------------------------------------------

def test_sender_packs_20_ms_with_sequence_timestamp_and_marker():
    s = RTPSender(RTPConfig(), ssrc=0x11223344, sequence=65534, timestamp=(1 << 32) - 200)
    data = codes(500)
    out = [parse_rtp(d) for d in s.send(data[:100]) + s.send(data[100:])]
    assert len(out) == 3 and s.pending == 20
    assert [p.sequence for p in out] == [65534, 65535, 0]                      # wraps
    assert [p.timestamp for p in out] == [(1 << 32) - 200, (1 << 32) - 40, 120]
    assert [p.marker for p in out] == [True, False, False]                    # RFC 3551 §4.1
    assert {p.ssrc for p in out} == {0x11223344} and {p.payload_type for p in out} == {0}
    assert b"".join(p.payload for p in out) == data[:480]
    last = parse_rtp(s.flush()[0])
    assert last.payload == data[480:] and last.timestamp == 280 and s.flush() == []
    assert s.packets_sent == 4 and s.octets_sent == 500


def test_sender_skip_starts_a_talkspurt_with_the_timestamp_moved_on():
    s = RTPSender(RTPConfig(), ssrc=1, sequence=10, timestamp=1000)
    s.send(codes(170))                      # one packet, 10 codes queued
    s.skip(800)                             # the queued 10 go with the pause
    p = parse_rtp(s.send(codes(160))[0])
    assert p.marker and p.sequence == 11 and p.timestamp == 1000 + 160 + 10 + 800
    with pytest.raises(ValueError):
        s.skip(-1)


def test_sender_initial_values_are_random():
    a, b = RTPSender(), RTPSender()
    assert (a.ssrc, a.sequence, a.timestamp) != (b.ssrc, b.sequence, b.timestamp)
    c, d = sender(rng=random.Random(3)), sender(rng=random.Random(3))
    assert (c.ssrc, c.sequence, c.timestamp) == (d.ssrc, d.sequence, d.timestamp)


def test_sender_codes_linear_samples_in_its_law():
    x = (8000 * np.sin(np.arange(320) * 0.3)).astype(np.int16)
    for law, pt in (("ulaw", 0), ("alaw", 8)):
        s = RTPSender(RTPConfig(law=law), rng=random.Random(1))
        pk = [parse_rtp(d) for d in s.send_samples(x)]
        assert {p.payload_type for p in pk} == {pt}
        assert b"".join(p.payload for p in pk) == g711.encode(x, law)


# -- receiver: a clean stream --------------------------------------------------------------

def test_clean_stream_plays_exactly_after_the_depth():
    data = codes(160 * 50)
    arrivals = [(0.1 + 0.02 * k, d) for k, d in enumerate(stream(data))]
    out, r = simulate(arrivals, 2.0)
    assert len(out) == 16000                             # 8000 a second of clock time
    start = round(0.1 * 8000) + DEPTH                    # first packet at 100 ms, + 60 ms
    assert out[start:start + len(data)] == data
    assert set(out[:start]) == {U} and set(out[start + len(data):]) == {U}
    st = r.stats
    assert (st.received, st.played_packets, st.lost, st.late, st.duplicate, st.reordered) == (50, 50, 0, 0, 0, 0)
    assert st.audio_samples == len(data) and st.silence_samples == 16000 - len(data)
    assert st.jitter == 0.0 and st.talkspurts == 1 and r.buffered == 0


def test_playout_rate_is_exact_whatever_the_tick_times():
    r = RTPReceiver(RTPConfig(), 5.0)
    rng = random.Random(2)
    t, total = 5.0, 0
    for _ in range(500):
        t += rng.choice([0.0, 0.0001, 0.003, 0.02, 0.05, 0.25])
        total += len(r.play(t))
        assert total == int((t - 5.0) * 8000 + 1e-6)
    assert r.due(t) == 0 and r.play(t) == b""


def test_alaw_silence_and_play_samples():
    r = RTPReceiver(RTPConfig(law="alaw"), 0.0)
    assert set(r.play(0.01)) == {0xD5}
    s = RTPSender(RTPConfig(law="alaw"), rng=random.Random(1))
    x = (5000 * np.sin(np.arange(160) * 0.2)).astype(np.int16)
    r.receive(s.send_samples(x)[0], 0.02)
    y = r.play_samples(0.02 + 0.06 + 0.02)
    assert y.dtype == np.int16 and len(y) == 720          # 800 due by 0.1 s, 80 played before
    np.testing.assert_array_equal(y[-160:], g711.decode(g711.encode(x, "alaw"), "alaw"))


# -- receiver: impairments -----------------------------------------------------------------

def test_lost_packets_play_as_silence_in_their_own_slots():
    data = codes(160 * 30)
    pk = stream(data)
    arrivals = [(0.02 * k, d) for k, d in enumerate(pk) if k not in (5, 6, 17)]
    out, r = simulate(arrivals, 1.0)
    want = bytearray(data)
    for k in (5, 6, 17):
        want[160 * k:160 * (k + 1)] = bytes([U]) * 160
    assert out[DEPTH:DEPTH + len(data)] == bytes(want)
    st = r.stats
    assert st.lost == 3 and st.late == 0 and st.played_packets == 27
    assert st.silence_samples == 8000 - 27 * 160


def test_jitter_up_to_the_depth_with_reordering_loses_nothing():
    data = codes(160 * 100)
    rng = random.Random(4)
    pk = stream(data)
    arrivals = [(0.0, pk[0])] + [(0.02 * k + rng.uniform(0, 0.059), d) for k, d in enumerate(pk) if k]
    out, r = simulate(arrivals, 2.6, step=0.007)
    assert out[DEPTH:DEPTH + len(data)] == data
    st = r.stats
    assert st.reordered > 10 and st.late == 0 and st.lost == 0 and st.played_packets == 100
    assert st.jitter > 50                     # RFC 3550 A.8 sees the ~30 ms spread


def test_packets_later_than_the_depth_are_dropped_and_counted():
    data = codes(160 * 20)
    pk = stream(data)
    arrivals = [(0.02 * k + (0.09 if k in (3, 9) else 0.0), d) for k, d in enumerate(pk)]
    out, r = simulate(arrivals, 1.0)
    want = bytearray(data)
    for k in (3, 9):
        want[160 * k:160 * (k + 1)] = bytes([U]) * 160
    assert out[DEPTH:DEPTH + len(data)] == bytes(want)
    st = r.stats
    assert st.late == 2 and st.lost == 0 and st.reordered == 2 and st.played_packets == 18


def test_a_stream_whose_first_packets_arrive_out_of_order_loses_nothing():
    data = codes(160 * 6)
    pk = stream(data)
    arrivals = [(0.0, pk[2]), (0.001, pk[0]), (0.002, pk[1])] + [(0.02 * k, pk[k]) for k in range(3, 6)]
    r = RTPReceiver(RTPConfig(jitter_depth=0.1), 0.0)
    for t, d in arrivals:
        r.receive(d, t)
    st = r.stats
    assert st.lost == 0 and st.reordered == 2 and st.played_packets == 6 and st.late == 0
    # anchored on packet 2 (100 ms after it came), packets 0 and 1 still had room before it
    out = r.play(1.0)
    start = 800 - 320
    assert out[start:start + len(data)] == data and set(out[:start]) == {U}


def test_duplicates_are_dropped_and_counted():
    data = codes(160 * 20)
    pk = stream(data)
    arrivals = [(0.02 * k, d) for k, d in enumerate(pk)] + [(0.02 * k + 0.03, d) for k, d in enumerate(pk)]
    out, r = simulate(arrivals, 1.0)
    assert out[DEPTH:DEPTH + len(data)] == data
    st = r.stats
    assert st.duplicate == 20 and st.received == 40 and st.played_packets == 20 and st.lost == 0


def test_sequence_and_timestamp_wrap_around():
    data = codes(160 * 40)
    s = RTPSender(RTPConfig(), ssrc=9, sequence=65520, timestamp=(1 << 32) - 160 * 7)
    pk = s.send(data)
    assert {parse_rtp(d).sequence for d in pk} >= {65535, 0}
    arrivals = [(0.02 * k + (0.03 if k == 15 else 0.0), d) for k, d in enumerate(pk) if k != 20]
    out, r = simulate(arrivals, 1.5)
    want = bytearray(data)
    want[160 * 20:160 * 21] = bytes([U]) * 160
    assert out[DEPTH:DEPTH + len(data)] == bytes(want)
    st = r.stats
    assert st.lost == 1 and st.reordered == 1 and st.late == 0 and st.timestamp_jumps == 0


def test_ssrc_change_mid_stream_resyncs_after_what_is_buffered():
    a_data, b_data = codes(160 * 10, 1), codes(160 * 10, 2)
    a = RTPSender(RTPConfig(), ssrc=1, sequence=100, timestamp=5000)
    b = RTPSender(RTPConfig(), ssrc=2, sequence=40000, timestamp=3_000_000_000)
    pa, pb = a.send(a_data), b.send(b_data)
    arrivals = ([(0.02 * k, d) for k, d in enumerate(pa)]
                + [(0.2 + 0.02 * k, d) for k, d in enumerate(pb)]
                + [(0.21, pa[9])])                        # a straggler of the old source
    out, r = simulate(arrivals, 1.0)
    assert out[DEPTH:DEPTH + len(a_data)] == a_data
    # b's first packet arrived at 0.2 s: it plays jitter_depth later, after a's last sample
    start = round(0.2 * 8000) + DEPTH
    assert out[start:start + len(b_data)] == b_data
    assert set(out[DEPTH + len(a_data):start]) <= {U}
    st = r.stats
    assert st.ssrc_changes == 1 and st.stale == 1 and st.lost == 0 and st.played_packets == 20
    assert r.events() == [SourceChanged(1, 2)] and r.ssrc == 2


def test_new_source_never_overwrites_buffered_audio():
    a_data, b_data = codes(160 * 5, 3), codes(160 * 5, 4)
    pa = RTPSender(RTPConfig(), ssrc=1, sequence=1, timestamp=0).send(a_data)
    pb = RTPSender(RTPConfig(), ssrc=2, sequence=1, timestamp=0).send(b_data)
    arrivals = [(0.0, d) for d in pa] + [(0.001, d) for d in pb]     # a burst, then b at once
    out, r = simulate(arrivals, 0.5)
    assert out[DEPTH:DEPTH + 800] == a_data and out[DEPTH + 800:DEPTH + 1600] == b_data


def test_timestamp_jump_reanchors_and_small_gaps_play_as_silence():
    s = sender()
    one, two, three = codes(160 * 10, 5), codes(160 * 10, 6), codes(160 * 10, 7)
    pk = s.send(one)
    s.skip(1600)                              # 200 ms pause: inside max_ahead, played as gap
    pk += s.send(two)
    s.skip(8000 * 600)                        # a 10-minute jump: beyond the window
    pk += s.send(three)
    t = [0.02 * k for k in range(10)] + [0.4 + 0.02 * k for k in range(10)] + [0.7 + 0.02 * k for k in range(10)]
    out, r = simulate(list(zip(t, pk)), 1.5)
    assert out[DEPTH:DEPTH + 1600] == one
    assert set(out[DEPTH + 1600:DEPTH + 3200]) == {U}
    assert out[DEPTH + 3200:DEPTH + 4800] == two
    start = round(0.7 * 8000) + DEPTH
    assert out[start:start + 1600] == three
    st = r.stats
    assert st.timestamp_jumps == 1 and st.talkspurts == 3 and st.lost == 0 and st.late == 0
    assert st.jitter < 1.0                    # the jump is no jitter


def test_sequence_restart_is_believed_when_the_next_packet_follows():
    data = codes(160 * 10)
    pk = RTPSender(RTPConfig(), ssrc=5, sequence=10, timestamp=0).send(data)
    later = RTPSender(RTPConfig(), ssrc=5, sequence=30000, timestamp=160 * 10).send(data)
    arrivals = [(0.02 * k, d) for k, d in enumerate(pk + later)]
    out, r = simulate(arrivals, 1.0)
    assert out[DEPTH:DEPTH + 1600] == data
    # RFC 3550 A.1: the first packet after the jump is discarded, the second restarts
    assert out[DEPTH + 1600:DEPTH + 1760] == bytes([U]) * 160
    assert out[DEPTH + 1760:DEPTH + 3200] == data[160:]
    st = r.stats
    assert st.sequence_restarts == 1 and st.lost == 0 and st.played_packets == 19


def test_telephone_events_between_audio_are_reported_not_played():
    data = codes(160 * 10)
    s = RTPSender(RTPConfig(), ssrc=3, sequence=0, timestamp=0)
    pk = s.send(data[:800])
    ev = []
    for dur, end in ((160, False), (320, False), (480, True), (480, True), (480, True)):
        ev.append(RTPPacket(101, s.sequence, 800, 3, telephone_event_payload(36, dur, end=end),
                            marker=(dur == 160)).encode())
        s.sequence += 1
    pk2 = s.send(data[800:])
    arrivals = ([(0.02 * k, d) for k, d in enumerate(pk)] + [(0.1 + 0.005 * k, d) for k, d in enumerate(ev)]
                + [(0.12 + 0.02 * k, d) for k, d in enumerate(pk2)])
    out, r = simulate(arrivals, 1.0)
    assert out[DEPTH:DEPTH + 1600] == data            # the events took no place in the audio
    assert r.events() == [TelephoneEvent(36, 10, 160, False, 800, 3), TelephoneEvent(36, 10, 480, True, 800, 3)]
    st = r.stats
    assert st.telephone_events == 5 and st.lost == 0 and st.played_packets == 10


def test_comfort_noise_unknown_payloads_rtcp_and_junk_are_tolerated():
    data = codes(160 * 4)
    s = RTPSender(RTPConfig(), ssrc=3, sequence=0, timestamp=0)
    pk = s.send(data[:320])
    cn = RTPPacket(PT_CN, s.sequence, s.timestamp, 3, b"\x40", marker=False).encode()
    s.sequence += 1
    s.skip(160)
    pk2 = s.send(data[320:])
    rtcp_rr = bytes.fromhex("81 c9 00 07") + bytes(28)            # an RTCP RR on the RTP port
    r = RTPReceiver(RTPConfig(), 0.0)
    assert r.receive(cn, 0.0) is True                              # (makes ssrc 3 known)
    assert all(r.receive(d, 0.0) for d in pk + pk2)
    assert r.receive(rtcp_rr, 0.0) is False
    assert r.receive(RTPPacket(97, 1, 1, 3, b"x").encode(), 0.0) is False
    assert r.receive(b"\x00garbage", 0.0) is False
    assert r.receive(RTPPacket(101, 1, 1, 3, b"\x01").encode(), 0.0) is False   # short event
    out = r.play(0.5)
    assert out[DEPTH:DEPTH + 320] == data[:320] and out[DEPTH + 320:DEPTH + 480] == bytes([U]) * 160
    assert out[DEPTH + 480:DEPTH + 800] == data[320:]
    st = r.stats
    assert (st.comfort_noise, st.unknown_payload, st.invalid, st.played_packets) == (1, 2, 2, 4)


def test_the_other_law_is_transcoded():
    x = (9000 * np.sin(np.arange(160) * 0.1)).astype(np.int16)
    alaw = RTPSender(RTPConfig(law="alaw"), rng=random.Random(1)).send_samples(x)[0]
    r = RTPReceiver(RTPConfig(law="ulaw"), 0.0)
    r.receive(alaw, 0.0)
    out = r.play(0.1)
    assert out[DEPTH:DEPTH + 160] == g711.transcode(g711.encode(x, "alaw"), "alaw", "ulaw")
    assert r.stats.transcoded == 1
    fixed = RTPReceiver(RTPConfig(law="ulaw", payload_type=0), 0.0)
    assert fixed.receive(alaw, 0.0) is False        # an explicit PT accepts only itself


def test_interarrival_jitter_follows_rfc3550_a8():
    s = RTPSender(RTPConfig(), ssrc=1, sequence=0, timestamp=0)
    pk = s.send(codes(160 * 40))
    # transit alternates 0 and 10 ms (80 timestamp units): |D| = 80 at every step after the
    # first, so J_n = 80 (1 - (15/16)^n)
    r = RTPReceiver(RTPConfig(), 0.0)
    for k, d in enumerate(pk):
        r.receive(d, 0.02 * k + (0.01 if k % 2 else 0.0))
    n = len(pk) - 1
    assert r.stats.jitter == pytest.approx(80 * (1 - (15 / 16) ** n), rel=1e-6)
    assert r.stats.jitter_seconds == pytest.approx(r.stats.jitter / 8000)


def test_a_flood_from_far_ahead_cannot_overrun_the_buffer():
    r = RTPReceiver(RTPConfig(max_ahead=0.1), 0.0)
    s = RTPSender(RTPConfig(), ssrc=1, sequence=0, timestamp=0)
    pk = s.send(codes(160 * 200))
    for d in pk:                               # 4 s of audio at once
        r.receive(d, 0.0)
    st = r.stats
    assert st.played_packets + st.overflow + st.timestamp_jumps >= 1
    assert r.buffered <= DEPTH + 800 + 160     # never more than the window
    assert len(r.play(10.0)) == 80000


# -- the driver, over UDP on 127.0.0.1 -----------------------------------------------------

def test_parse_rtp_url():
    assert parse_rtp_url("rtp://127.0.0.1:4000")[:2] == (("0.0.0.0", 0), ("127.0.0.1", 4000))
    assert parse_rtp_url("rtp://127.0.0.1:4000", listen=True)[:2] == (("127.0.0.1", 4000), None)
    local, remote, cfg = parse_rtp_url("rtp://[::1]:5000?remote=[::1]:6000&law=PCMA&depth=80")
    assert local == ("::1", 5000) and remote == ("::1", 6000)
    assert cfg.law == "alaw" and cfg.jitter_depth == pytest.approx(0.08)
    assert parse_rtp_url("rtp://h:1?local=127.0.0.1:2")[:2] == (("127.0.0.1", 2), ("h", 1))
    for bad in ("t38://h:1", "rtp://", "rtp://h:1?x=1", "rtp://h:1?local=a:1&remote=b:2",
                "rtp://h:1?law=g729", "rtp://h:1?depth=abc", "rtp://h"):
        with pytest.raises(ValueError):
            parse_rtp_url(bad)


def _tone(n: int) -> np.ndarray:
    t = np.arange(n)
    return (6000 * np.sin(2 * np.pi * 1100 * t / 8000) + 3000 * np.sin(2 * np.pi * 1750 * t / 8000)).astype(np.int16)


class _Source:
    def __init__(self, x: np.ndarray):
        self.x, self.pos = x, 0

    def __call__(self, n: int) -> np.ndarray:
        out = self.x[self.pos:self.pos + n]
        self.pos += n
        return np.pad(out, (0, n - len(out)))


def _find(haystack: bytes, needle: bytes) -> int:
    i = haystack.find(needle)
    assert i >= 0, "the sent stream is not in what was played"
    return i


def test_two_drivers_on_loopback_symmetric_rtp():
    x = _tone(8000)

    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        ready = loop.create_future()
        got_b: list[np.ndarray] = []
        got_a: list[np.ndarray] = []
        b = loop.create_task(run_rtp(_Source(x[::-1].copy()), got_b.append, local=("127.0.0.1", 0),
                                     stop=stop, on_ready=ready.set_result))
        port = (await ready)[1]
        # stray bytes first: they must not make anyone b's peer
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            junk.sendto(b"\x00not rtp at all", ("127.0.0.1", port))
            junk.sendto(RTPPacket(97, 1, 1, 1, b"x").encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.05)
            a_ready = loop.create_future()
            ra = await run_rtp(_Source(x), got_a.append, local=("127.0.0.1", 0),
                               remote=("127.0.0.1", port), duration=1.3, on_ready=a_ready.set_result)
            junk.sendto(RTPPacket(0, 1, 1, 1, b"x").encode(), ("127.0.0.1", port))
            await asyncio.sleep(0.05)
        stop.set()
        rb = await b
        return ra, rb, np.concatenate(got_a), np.concatenate(got_b), a_ready.result()

    ra, rb, ya, yb, a_addr = asyncio.run(asyncio.wait_for(main(), 20))
    sent = g711.encode(x, "ulaw")
    heard_b = g711.encode(yb, "ulaw")
    i = _find(heard_b, sent[:800])
    assert heard_b[i:i + 8000] == sent                 # b played a's second of audio intact
    assert len(yb) == rb.samples_sent                 # and played exactly what the clock said
    # the socket is connected to a once learnt: the kernel drops the later stray packet
    assert rb.remote == tuple(a_addr) and rb.foreign == 0 and rb.datagrams_received == rb.stats.received
    st = rb.stats
    assert st.lost == 0 and st.late == 0 and st.duplicate == 0 and st.audio_samples >= 8000
    assert st.unknown_payload + st.invalid == 2            # the junk, before a's stream
    # a heard b back (symmetric RTP: b answered to where a's packets came from)
    assert ra.stats.received > 20 and ra.stats.lost == 0
    back = g711.encode(ya, "ulaw")
    rev = g711.encode(x[::-1].copy(), "ulaw")
    assert rev[800:1600] in back


def test_driver_reports_an_unreachable_peer():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # nothing listens on ``port`` now: the kernel answers ICMP port unreachable

    async def main():
        return await run_rtp(None, None, local=("127.0.0.1", 0), remote=("127.0.0.1", port),
                             duration=5.0)

    with pytest.raises(DriverError, match="unreachable"):
        asyncio.run(asyncio.wait_for(main(), 10))


def test_driver_needs_an_end_and_checks_its_source():
    with pytest.raises(ValueError):
        asyncio.run(run_rtp(None, None))

    async def main():
        return await run_rtp(lambda n: np.zeros(3, np.int16), None, local=("127.0.0.1", 0),
                             remote=("127.0.0.1", 9), duration=0.5)
    with pytest.raises(DriverError, match="source gave"):
        asyncio.run(asyncio.wait_for(main(), 10))


def test_driver_cannot_bind_says_so():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        taken = s.getsockname()

        async def main():
            return await run_rtp(None, None, local=taken, duration=0.1)
        with pytest.raises(DriverError, match="cannot open"):
            asyncio.run(main())


def test_driver_tick_keeps_the_clock_after_a_stall():
    # the loop stalled 300 ms: the next tick pulls, and plays, exactly the samples due

    class Clock:
        t = 100.0

        def time(self):
            return self.t

    clock = Clock()
    d = RTPDriver(RTPConfig(), ("127.0.0.1", 9), clock)          # no transport: nothing sent
    pulled, played = [], []
    d.tick(lambda n: pulled.append(n) or np.zeros(n, np.int16), lambda y: played.append(len(y)))
    clock.t += 0.3
    d.tick(lambda n: pulled.append(n) or np.zeros(n, np.int16), lambda y: played.append(len(y)))
    clock.t += 0.02
    d.tick(lambda n: pulled.append(n) or np.zeros(n, np.int16), lambda y: played.append(len(y)))
    assert pulled == [2400, 160] and played == [2400, 160]
    assert d.sender.packets_sent == 16 and d.sender.pending == 0


class _ImpairingRelay(asyncio.DatagramProtocol):
    """A UDP relay on 127.0.0.1 that loses, duplicates and delays (so reorders) what the
    sender sends on to the receiver, with a seeded random; what comes back is dropped."""

    def __init__(self, target, rng: random.Random, *, loss=0.05, dup=0.05, delay=0.04):
        self.target, self.rng = target, rng
        self.loss, self.dup, self.delay = loss, dup, delay
        self.sender = None
        self.dropped: list[int] = []
        self.forwarded: list[int] = []
        self.duplicated = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        if addr[1] == self.target[1]:
            return                                    # the receiver's own stream: not needed
        seq = parse_rtp(data).sequence
        loop = asyncio.get_running_loop()
        if self.forwarded and self.rng.random() < self.loss:   # (never the first packet)
            self.dropped.append(seq)
            return
        self.forwarded.append(seq)
        copies = 2 if self.rng.random() < self.dup else 1
        self.duplicated += copies - 1
        for _ in range(copies):
            loop.call_later(self.rng.uniform(0, self.delay), self.transport.sendto, data, self.target)


def test_driver_over_a_lossy_jittery_udp_path_plays_exactly_what_arrived():
    x = _tone(12000)

    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        ready = loop.create_future()
        heard: list[np.ndarray] = []
        cfg = RTPConfig(jitter_depth=0.1)            # 40 ms of network jitter, and margin
        b = loop.create_task(run_rtp(None, heard.append, local=("127.0.0.1", 0), stop=stop,
                                     on_ready=ready.set_result, config=cfg))
        b_addr = await ready
        transport, relay = await loop.create_datagram_endpoint(
            lambda: _ImpairingRelay(tuple(b_addr), random.Random(5)), local_addr=("127.0.0.1", 0))
        try:
            relay_port = transport.get_extra_info("sockname")[1]
            ra = await run_rtp(_Source(x), None, local=("127.0.0.1", 0),
                               remote=("127.0.0.1", relay_port), duration=1.6, sender=sender())
            await asyncio.sleep(0.3)
            stop.set()
            rb = await b
        finally:
            transport.close()
        return ra, rb, relay, np.concatenate(heard)

    ra, rb, relay, y = asyncio.run(asyncio.wait_for(main(), 20))
    assert relay.dropped and relay.duplicated, "the seeded relay should both lose and duplicate"
    first = sender().sequence
    want = bytearray(g711.encode(x, "ulaw"))
    for seq in relay.dropped:
        k = (seq - first) % 65536
        want[160 * k:160 * (k + 1)] = bytes([U]) * 160
    heard = g711.encode(y, "ulaw")
    i = heard.find(bytes(want[:400]))
    assert i >= 0 and heard[i:i + len(want)] == bytes(want)
    st = rb.stats
    last = max(relay.forwarded, key=lambda s: (s - first) % 65536)
    lost = [s for s in relay.dropped if (s - first) % 65536 < (last - first) % 65536]
    assert st.lost == len(lost) and st.duplicate == relay.duplicated and st.late == 0
    assert st.played_packets == len(relay.forwarded) and st.reordered > 0
    assert len(y) == rb.samples_sent


def test_driver_passes_events_up_as_they_come():
    class Clock:
        t = 50.0

        def time(self):
            return self.t

    clock = Clock()
    d = RTPDriver(RTPConfig(), None, clock)
    seen = []
    d.on_event = seen.append
    ev = RTPPacket(101, 7, 1000, 42, telephone_event_payload(36, 160), marker=True).encode()
    d.datagram_received(b"junk", ("127.0.0.1", 5000))             # adopts no one
    assert d.remote is None and d.invalid == 1
    d.datagram_received(ev, ("127.0.0.1", 5002))                   # an event: a valid packet
    assert d.remote == ("127.0.0.1", 5002)
    d.datagram_received(RTPPacket(0, 8, 1160, 42, codes(160)).encode(), ("127.0.0.1", 5003))
    assert d.foreign == 1                                          # (the socket would drop it)
    clock.t += 0.02
    d.tick(None, None)
    assert seen == [TelephoneEvent(36, 10, 160, False, 1000, 42)]
    assert d.result().events == (seen[0],) and d.result().peer_ssrc == 42
