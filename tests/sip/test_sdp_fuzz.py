"""Fuzzing the SDP parser and offer/answer with mutated real offers (hypothesis): only
SDPError from parse, only NotAcceptable from answer/negotiated, and what parses re-encodes to
the same description."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from xmfax.sip.sdp import (NotAcceptable, SDPError, SdpSession, SessionDescription,
                           offer_kinds)
from xmfax.t38.config import T38Config

from .test_sdp import (ASTERISK_T38_REINVITE, CISCO_ODD_CASE, DOUBLE_OFFER, FREESWITCH_T38,
                       G729_ONLY, IPV6_AUDIO, PHONE_AUDIO, trace_sdps)

SEEDS = [s.encode() for s in (ASTERISK_T38_REINVITE, FREESWITCH_T38, CISCO_ODD_CASE,
                              PHONE_AUDIO, DOUBLE_OFFER, G729_ONLY, IPV6_AUDIO)]
SEEDS += [body for _, _, body in trace_sdps()]        # what sipp, Kamailio, baresip sent

# pieces that make mutations interesting: SDP syntax, T.38 names, odd numbers
FRAGMENTS = [b"\r\n", b"\n", b"\r", b"=", b":", b" ", b"/", b"m=", b"a=", b"c=", b"o=", b"v=0",
             b"IN IP4 ", b"IN IP6 ", b"::", b"0", b"65536", b"99999999999999999999999",
             b"-1", b"t38", b"udptl", b"RTP/AVP", b"T38FaxVersion:", b"T38MaxBitRate:",
             b"T38FaxMaxDatagram:", b"T38FaxUdpEC:", b"T38FaxRateManagement:", b"rtpmap:",
             b"telephone-event/8000", b"PCMU/8000", b"\x00", b"\xff", b"\xc3\xa9", b"[", b"]",
             b"m=image 0 udptl t38\r\n", b"m=audio 1 RTP/AVP 0\r\n", b"a=sendonly\r\n"]


@st.composite
def mutated(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "delete", "insert", "dup_line", "drop_line",
                                   "truncate"]))
        pos = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            i = min(pos, len(data) - 1)
            data[i] = draw(st.integers(0, 255))
        elif op == "delete":
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "insert":
            piece = draw(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=12)))
            data[pos:pos] = piece
        elif op in ("dup_line", "drop_line"):
            lines = bytes(data).split(b"\n")
            i = min(pos, len(lines) - 1)
            if op == "dup_line":
                lines[i:i] = [lines[i]] * draw(st.integers(1, 3))
            else:
                del lines[i]
            data = bytearray(b"\n".join(lines))
        elif op == "truncate":
            del data[pos:]
    return bytes(data)


def _check(data: bytes) -> None:
    try:
        sdp = SessionDescription.parse(data)
    except SDPError:
        return
    kinds = offer_kinds(sdp)
    assert set(kinds) <= {"audio", "t38"}
    encoded = sdp.encode()             # whatever parses can be written back
    again = SessionDescription.parse(encoded)
    assert again.media == sdp.media and again.attributes == sdp.attributes
    assert again.connection == sdp.connection and again.name == (sdp.name or "-")
    session = SdpSession("192.0.2.1")
    try:
        answer, negotiated = session.answer(sdp, audio_port=4000, t38_port=4002,
                                            t38=T38Config())
    except NotAcceptable as exc:
        assert exc.reason
        assert not kinds or "t38" in kinds        # audio with G.711 is always answerable
        return
    assert negotiated.kind in kinds
    assert len(answer.media) == len(sdp.media)
    assert sum(1 for m in answer.media if m.port != 0) == 1
    assert SessionDescription.parse(answer.encode()).media == answer.media
    # and, seen from the other side, the offerer reaches the same media
    try:
        view = session.negotiated(sdp, SessionDescription.parse(answer.encode()),
                                  t38=T38Config())
    except NotAcceptable:
        return
    assert view.kind == negotiated.kind


@settings(max_examples=400)
@given(mutated())
def test_mutated_real_offers(data):
    _check(data)


@settings(max_examples=200)
@given(st.binary(max_size=400))
def test_random_bytes(data):
    _check(data)


@settings(max_examples=200)
@given(st.text(alphabet="vosctma=0123456789 :/\r\nINP46.udptlRTAV", max_size=300))
def test_sdp_shaped_text(text):
    _check(("v=0\r\n" + text).encode())


t38_configs = st.builds(
    T38Config,
    version=st.integers(0, 3),
    max_bit_rate=st.sampled_from([2400, 4800, 7200, 9600, 12000, 14400, 33600]),
    rate_management=st.sampled_from(["transferredTCF", "localTCF"]),
    max_buffer=st.integers(0, 100_000),
    max_datagram=st.integers(24, 65507),
    udp_ec=st.sampled_from(["t38UDPRedundancy", "t38UDPFEC", "t38UDPNoEC"]),
    fill_bit_removal=st.booleans(),
)


@settings(max_examples=300)
@given(t38_configs, t38_configs, st.booleans())
def test_both_ends_agree_and_never_exceed_either(ours, theirs, with_audio):
    caller, callee = SdpSession("192.0.2.1"), SdpSession("192.0.2.2")
    offer = caller.offer(t38_port=4002, t38=ours, audio_port=4000 if with_audio else None)
    answer, their_view = callee.answer(SessionDescription.parse(offer.encode()),
                                       audio_port=6000, t38_port=6002, t38=theirs)
    our_view = caller.negotiated(offer, SessionDescription.parse(answer.encode()), t38=ours)
    assert our_view.kind == their_view.kind == "t38"
    a, b = our_view.t38, their_view.t38
    for name in ("version", "max_bit_rate", "max_datagram", "rate_management", "udp_ec",
                 "fill_bit_removal"):
        assert getattr(a, name) == getattr(b, name), name
    assert a.version <= min(ours.version, theirs.version)
    assert a.max_bit_rate <= min(ours.max_bit_rate, theirs.max_bit_rate)
    assert a.max_datagram <= min(ours.max_datagram, theirs.max_datagram)
    assert a.udp_ec in {ours.udp_ec, theirs.udp_ec, "t38UDPRedundancy", "t38UDPNoEC"}
    if "t38UDPNoEC" in (ours.udp_ec, theirs.udp_ec):
        assert a.udp_ec == "t38UDPNoEC"
    assert a.fill_bit_removal == (ours.fill_bit_removal and theirs.fill_bit_removal)
    # what each side may send is bounded by the other's buffer
    if theirs.max_buffer:
        assert 0 < a.max_buffer <= theirs.max_buffer
    if ours.max_buffer:
        assert 0 < b.max_buffer <= ours.max_buffer
    assert our_view.remote == ("192.0.2.2", 6002) and their_view.remote == ("192.0.2.1", 4002)


@st.composite
def mutated_answer(draw):
    """Our offer, and a plausible peer's answer to it with mutations."""
    session = SdpSession("192.0.2.1", session_id=1)     # fixed ids: the same draws each run
    offer = session.offer(audio_port=4000, t38_port=4002, t38=T38Config())
    answer, _ = SdpSession("192.0.2.2", session_id=2).answer(offer, audio_port=6000, t38_port=6002,
                                               t38=draw(t38_configs),
                                               accept=draw(st.sampled_from(
                                                   [("t38", "audio"), ("audio",)])))
    data = bytearray(answer.encode())
    for _ in range(draw(st.integers(0, 4))):
        pos = draw(st.integers(0, len(data)))
        piece = draw(st.one_of(st.sampled_from(FRAGMENTS), st.binary(max_size=8)))
        if draw(st.booleans()):
            data[pos:pos] = piece
        else:
            del data[pos:pos + len(piece)]
    return session, offer, bytes(data)


@settings(max_examples=400)
@given(mutated_answer())
def test_offerer_view_of_mutated_answers(case):
    session, offer, data = case
    try:
        answer = SessionDescription.parse(data)
    except SDPError:
        return
    try:
        got = session.negotiated(offer, answer, t38=T38Config())
    except NotAcceptable as exc:
        assert exc.reason
        return
    assert got.kind in ("t38", "audio")
    assert got.local_port == (4002 if got.kind == "t38" else 4000)
    if got.kind == "t38":
        ours = T38Config()
        assert got.t38.version <= ours.version and got.t38.max_bit_rate <= ours.max_bit_rate
        assert got.t38.max_datagram <= ours.max_datagram
    else:
        assert got.codec in ("PCMU", "PCMA") and got.payload_type in (0, 8)
