"""Fuzzing the SDP parser and offer/answer with mutated real offers (hypothesis): only
SDPError from parse, only NotAcceptable from answer/negotiated, and what parses re-encodes to
the same description."""
from __future__ import annotations

from hypothesis import given, settings, strategies as st

from xmfax.sip.sdp import (NotAcceptable, SDPError, SdpSession, SessionDescription,
                           offer_kinds)
from xmfax.t38.config import T38Config

from .test_sdp import (ASTERISK_T38_REINVITE, CISCO_ODD_CASE, DOUBLE_OFFER, FREESWITCH_T38,
                       G729_ONLY, IPV6_AUDIO, PHONE_AUDIO)

SEEDS = [s.encode() for s in (ASTERISK_T38_REINVITE, FREESWITCH_T38, CISCO_ODD_CASE,
                              PHONE_AUDIO, DOUBLE_OFFER, G729_ONLY, IPV6_AUDIO)]

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
    try:
        encoded = sdp.encode()
    except SDPError:
        encoded = None
    if encoded is not None:
        again = SessionDescription.parse(encoded)
        assert again.media == sdp.media and again.attributes == sdp.attributes
        assert again.connection == sdp.connection
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
