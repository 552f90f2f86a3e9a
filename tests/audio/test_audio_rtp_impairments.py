"""Honest results over an impaired RTP network (issue #12: packet loss and jitter).

Whole xmfax <-> xmfax audio calls in simulated time over tests/audio/rtp_network.py (20 ms
G.711 packets, seeded random loss and jitter, xmfax.rtp's fixed jitter buffer). Under heavy
loss a call may fail, but it must never end in success with a wrong page: with ECM every
confirmed page is pixel-identical; without ECM a confirmed page that differs must at least
have its bad rows reported. The figures for all loss/jitter levels, beside spandsp, are
benchmarks/audio_rtp.py's table (docs/audio.md).
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "interop"))
import rtp_network as rn  # noqa: E402
from test_audio_calls import small_pages  # noqa: E402

from xmfax.rtp import RTPConfig, RTPReceiver, RTPSender  # noqa: E402

PAGES = small_pages(1, rows=400, seed=3)


def calls(ecm: bool, loss: float, seeds, jitter: float = 0.04) -> list[rn.Outcome]:
    return [rn.xmfax_call(PAGES, family="V.17", ecm=ecm, loss=loss, jitter=jitter, seed=s) for s in seeds]


def test_ecm_never_confirms_a_wrong_page():
    outs = calls(True, 0.01, range(1, 6)) + calls(True, 0.03, range(1, 4))
    assert all(o.lost > 0 for o in outs)                     # every call lost packets
    assert [o for o in outs if o.kind not in ("ok", "failed")] == []
    assert any(o.kind == "failed" for o in outs)             # the loss did real damage ...
    assert any(o.kind == "ok" for o in outs)                 # ... and ECM still got pages through
    # a failure is a failure at both ends' level: never a sender told "delivered" for a page
    # that did not arrive whole
    assert all(not o.sender_ok for o in outs if o.kind == "failed")


def test_non_ecm_never_confirms_a_wrong_page():
    """A lost packet drops the carrier mid-page: the page data ends before RTC and the
    receiver answers RTN (it once answered MCF for the rows it had: a cut page confirmed)."""
    outs = calls(False, 0.01, range(1, 9))
    assert all(o.lost > 0 for o in outs)
    wrong = [(seed, o) for seed, o in zip(range(1, 9), outs) if o.kind == "WRONG"]
    assert wrong == []


def test_a_clean_network_delivers_whole_pages_both_modes():
    for ecm in (True, False):
        (o,) = calls(ecm, 0.0, [1], jitter=0.0)
        assert o.kind == "ok" and o.rate == 14400 and o.lost == 0 and o.late == 0


def test_links_give_both_pairs_the_same_impaired_stream():
    """Same seed, same direction: the same packets lost and the same delays, whatever the
    packets hold (so xmfax's pair and spandsp's pair meet the same network)."""
    a, b = rn.Link(0.05, 0.06, 7, 0), rn.Link(0.05, 0.06, 7, 0)
    for k in range(500):
        a.send(b"x" * (k % 7), k * 0.02)
        b.send(b"yy", k * 0.02)
    assert a.lost == b.lost > 0
    assert [at for at, _, _ in sorted(a.queue)] == [at for at, _, _ in sorted(b.queue)]
    assert rn.Link(0.05, 0.06, 7, 1).rng.random() != rn.Link(0.05, 0.06, 7, 0).rng.random()


def test_plain_playout_plays_what_xmfax_jitter_buffer_plays():
    """spandsp's side of the benchmark uses tests/interop/spandsp_rtp.PlainPlayout: under loss,
    jitter and reordering it plays the same codes, sample for sample, as xmfax's RTPReceiver
    of the same depth (so the two pairs differ only in their fax ends)."""
    from spandsp_rtp import PlainPlayout, rtp_parse

    rng = np.random.default_rng(5)
    cfg = RTPConfig(jitter_depth=0.06)
    sender = RTPSender(cfg, rng=random.Random(3))
    ours, plain = RTPReceiver(cfg, 0.0), PlainPlayout("pcmu", 0.06, 0.0)
    link = rn.Link(0.03, 0.10, 11, 0)          # jitter beyond the depth: late packets
    a, b = bytearray(), bytearray()
    for k in range(1, 600):
        for d in sender.send(bytes(rng.integers(0, 255, 160, dtype=np.uint8))):
            pt, *_ = rtp_parse(d)
            assert pt == 0
            link.send(d, k * 0.02)
        now = k * 0.02
        for at, d in link.arrived(now):
            ours.receive(d, at)
            plain.receive(d, at)
        a += ours.play(now)
        b += plain.play(now)
    assert len(a) == len(b) > 90000 and a == b
    assert ours.stats.late == plain.stats["late"] > 0 and link.lost > 0


def test_the_bridge_rtp_framing_and_xmfax_rtp_read_each_other():
    """tests/interop/spandsp_rtp.py frames RTP on its own (RFC 3550 §5.1), not with xmfax.rtp:
    each reads what the other writes, CSRCs, header extension and padding included."""
    from spandsp_rtp import PlainSender, rtp_packet, rtp_parse

    from xmfax.rtp import RTPPacket, parse_rtp

    for pkt in (RTPPacket(8, 65535, 2**32 - 1, 0xDEADBEEF, b"\xd5" * 160, marker=True),
                RTPPacket(0, 7, 160, 1, b"\x01\x02\x03", csrc=(5, 6), extension=(0xBEDE, b"abcd"), padding=4)):
        assert rtp_parse(pkt.encode()) == (pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc, pkt.payload)
    data = rtp_packet(0, 70000, 2**32 + 5, 42, b"\xff" * 160, marker=True)     # both wrap
    got = parse_rtp(data)
    assert (got.payload_type, got.sequence, got.timestamp, got.ssrc, got.marker) == (0, 70000 - 65536, 5, 42, True)
    assert rtp_parse(b"\x40" + bytes(11)) is None and rtp_parse(b"\x80\x00") is None   # version 1, short
    s = PlainSender("pcma", random.Random(1))
    a, b = parse_rtp(s.packet(b"\xd5" * 160)), parse_rtp(s.packet(b"\xd5" * 160))
    assert a.marker and not b.marker and b.sequence == (a.sequence + 1) % 65536
    assert b.timestamp == (a.timestamp + 160) % 2**32 and a.payload_type == 8 and a.ssrc == b.ssrc


V29_PAGES = small_pages(1, rows=1200, seed=3)


@pytest.mark.parametrize("start", [500, 550])
def test_v29_page_rides_through_lost_packets(start):
    """Three 20 ms packets lost in the page at V.29 9600 (packets ``start``, +9, +19 of the
    sender's link, 10-11 s into the call): the receiver holds the carrier through each gap
    (native/audio/hold.c). With ECM the page arrives whole at 9600, PPR resending the frames
    the gaps broke; it failed before (NO_RESPONSE_TO_PAGE: the carrier dropped at the first
    gap and the rest of the block was lost). Without ECM the page arrives with its bad rows
    reported, never confirmed as if whole."""
    drop = frozenset([start, start + 9, start + 19])
    ecm = rn.xmfax_call(V29_PAGES, family="V.29", ecm=True, loss=0.0, jitter=0.0, seed=1, drop=drop)
    assert (ecm.kind, ecm.rate, ecm.lost) == ("ok", 9600, 3), ecm
    plain = rn.xmfax_call(V29_PAGES, family="V.29", ecm=False, loss=0.0, jitter=0.0, seed=1, drop=drop)
    assert plain.lost == 3 and plain.kind in ("flagged", "failed"), plain


def test_non_ecm_rows_lost_in_a_dropout_are_reported():
    """benchmarks/audio_rtp.py's call that once lied (V.29 offered, no ECM, the first 600 rows
    of ITU itu1 or its synthetic stand-in, 0.5 % loss, 60 ms jitter, seed 3): the receiver
    rode through the gaps and the rows the gaps' bits swallowed were missing from a page
    confirmed with no bad row. The dropouts are now reported to T.30 as lost data
    (DataReceived.lost, from the receivers' DROPOUT/RESUMED events) and the rows T.30
    counts lost are reported bad: never a page that differs with no bad row."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks"))
    from audio_rtp import load_page

    pages, _ = load_page(600)
    o = rn.xmfax_call(pages, family="V.29", ecm=False, loss=0.005, jitter=0.06, seed=3)
    assert o.lost > 0 and o.kind in ("ok", "flagged", "failed"), o
