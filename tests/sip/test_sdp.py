"""SDP and offer/answer (xmfax/sip/sdp.py): parsing as real peers write it, our offers and
answers (RFC 3264), T.38 parameter negotiation (T.38 Annex D) and G.711 codec choice."""
from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from xmfax.sip.message import Request, parse as parse_sip
from xmfax.sip.sdp import (MAX_LINES, MAX_MEDIA, MAX_SDP_SIZE, Media, Negotiated,
                           NotAcceptable, SDPError, SdpSession, SessionDescription, offer_kinds)
from xmfax.t38.config import (EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF,
                              RATE_TRANSFERRED_TCF, T38Config)

from .peers import Baresip, require

# ------------------------------------------------------------ offers as real products send them
# Written here in the style of each product's SDP (field order, attribute spelling, line ends).

# A gateway's T.38 re-INVITE (Asterisk chan_sip / chan_pjsip style): bare boolean, UDPTL in
# lower case, version 0, transferredTCF, redundancy.
ASTERISK_T38_REINVITE = (
    "v=0\r\n"
    "o=- 1732106234 1732106236 IN IP4 192.0.2.10\r\n"
    "s=Asterisk\r\n"
    "c=IN IP4 192.0.2.10\r\n"
    "t=0 0\r\n"
    "m=image 4446 udptl t38\r\n"
    "a=T38FaxVersion:0\r\n"
    "a=T38MaxBitRate:14400\r\n"
    "a=T38FaxRateManagement:transferredTCF\r\n"
    "a=T38FaxMaxDatagram:400\r\n"
    "a=T38FaxUdpEC:t38UDPRedundancy\r\n"
    "a=T38FaxFillBitRemoval\r\n"
)

# FreeSWITCH style: T38FaxMaxBuffer, T38FaxMaxDatagram and T38FaxUdpEC, RFC 4612 boolean forms
# with ":0", a media-level c=, an a=T38VendorInfo we do not know.
FREESWITCH_T38 = (
    "v=0\n"
    "o=FreeSWITCH 1732100000 1732100001 IN IP4 198.51.100.7\n"
    "s=FreeSWITCH\n"
    "c=IN IP4 198.51.100.7\n"
    "t=0 0\n"
    "m=image 16384 udptl t38\n"
    "c=IN IP4 198.51.100.8\n"
    "a=T38FaxVersion:0\n"
    "a=T38MaxBitRate:9600\n"
    "a=T38FaxFillBitRemoval:0\n"
    "a=T38FaxTranscodingMMR:0\n"
    "a=T38FaxTranscodingJBIG:0\n"
    "a=T38FaxRateManagement:transferredTCF\n"
    "a=T38FaxMaxBuffer:2000\n"
    "a=T38FaxMaxDatagram:200\n"
    "a=T38FaxUdpEC:t38UDPRedundancy\n"
    "a=T38VendorInfo:0 0 0\n"
)

# A Cisco-gateway style offer: odd-cased attribute names, "UDPTL" in upper case, version 3,
# localTCF, FEC, a bitrate above V.17.
CISCO_ODD_CASE = (
    "v=0\r\n"
    "o=CiscoSystemsSIP-GW-UserAgent 4321 1234 IN IP4 203.0.113.5\r\n"
    "s=SIP Call\r\n"
    "c=IN IP4 203.0.113.5\r\n"
    "t=0 0\r\n"
    "m=image 17000 UDPTL t38\r\n"
    "a=t38faxversion:3\r\n"
    "a=T38maxBitRate:33600\r\n"
    "a=T38FAXRATEMANAGEMENT:localTCF\r\n"
    "a=t38FaxMaxBuffer:200\r\n"
    "a=T38MaxDatagram:72\r\n"
    "a=T38FaxUdpEC:t38UDPFEC\r\n"
)

# A phone's G.711 offer (baresip-like): PCMU and PCMA, telephone-event on PT 101.
PHONE_AUDIO = (
    "v=0\r\n"
    "o=- 2890844526 2890844526 IN IP4 127.0.0.1\r\n"
    "s=-\r\n"
    "c=IN IP4 127.0.0.1\r\n"
    "t=0 0\r\n"
    "m=audio 5090 RTP/AVP 8 0 101\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=ptime:20\r\n"
    "a=sendrecv\r\n"
)

# A double offer (audio + image), as a T.38-aware gateway sends on a first INVITE.
DOUBLE_OFFER = (
    "v=0\r\n"
    "o=gw 100 100 IN IP4 192.0.2.20\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.20\r\n"
    "t=0 0\r\n"
    "m=audio 30000 RTP/AVP 0 96\r\n"
    "a=rtpmap:96 telephone-event/8000\r\n"
    "a=fmtp:96 0-16\r\n"
    "m=image 30002 udptl t38\r\n"
    "a=T38FaxVersion:1\r\n"
    "a=T38MaxBitRate:14400\r\n"
    "a=T38FaxRateManagement:transferredTCF\r\n"
    "a=T38FaxMaxDatagram:300\r\n"
    "a=T38FaxUdpEC:t38UDPRedundancy\r\n"
)

# Only codecs we do not have (G.729, iLBC).
G729_ONLY = (
    "v=0\r\n"
    "o=- 1 1 IN IP4 192.0.2.30\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.30\r\n"
    "t=0 0\r\n"
    "m=audio 40000 RTP/AVP 18 97\r\n"
    "a=rtpmap:18 G729/8000\r\n"
    "a=fmtp:18 annexb=no\r\n"
    "a=rtpmap:97 iLBC/8000\r\n"
)

# IPv6 everywhere, static payload types without rtpmap.
IPV6_AUDIO = (
    "v=0\r\n"
    "o=- 7 7 IN IP6 2001:db8::1\r\n"
    "s=-\r\n"
    "c=IN IP6 2001:db8::1\r\n"
    "t=0 0\r\n"
    "m=audio 6000 RTP/AVP 0 8\r\n"
)


def parse(text: str) -> SessionDescription:
    return SessionDescription.parse(text.encode())


# ----------------------------------------------------------------------- parsing
def test_parse_asterisk_t38_reinvite():
    sdp = parse(ASTERISK_T38_REINVITE)
    assert (sdp.origin_user, sdp.session_id, sdp.version) == ("-", 1732106234, 1732106236)
    assert sdp.origin_address == "192.0.2.10" and sdp.name == "Asterisk"
    assert sdp.connection == "192.0.2.10"
    [media] = sdp.media
    assert (media.kind, media.port, media.proto, media.formats) == ("image", 4446, "udptl",
                                                                   ["t38"])
    assert media.is_t38 and media.connection is None and sdp.address(media) == "192.0.2.10"
    assert media.attr("t38faxversion") == "0" and media.attr("T38MaxBitRate") == "14400"
    assert media.has("T38FaxFillBitRemoval") and media.attr("T38FaxFillBitRemoval") is None
    assert media.attrs("nothing") == [] and not media.has("nothing")
    assert offer_kinds(sdp) == ("t38",)


def test_parse_lf_line_ends_and_media_level_connection():
    sdp = parse(FREESWITCH_T38)
    [media] = sdp.media
    assert sdp.connection == "198.51.100.7"
    assert media.connection == "198.51.100.8" and sdp.address(media) == "198.51.100.8"
    assert media.attr("T38VendorInfo") == "0 0 0"


def test_parse_ipv6():
    sdp = parse(IPV6_AUDIO)
    assert sdp.connection == "2001:db8::1" and sdp.origin_address == "2001:db8::1"
    encoded = sdp.encode().decode()
    assert "c=IN IP6 2001:db8::1\r\n" in encoded and "o=- 7 7 IN IP6 2001:db8::1\r\n" in encoded
    assert parse("v=0\r\nc=IN IP6 [::1]\r\nm=audio 1 RTP/AVP 0\r\n").connection == "::1"


def test_parse_keeps_attributes_in_order_and_session_attributes_apart():
    sdp = parse("v=0\r\no=- 1 2 IN IP4 h.example\r\ns=x\r\na=tool:demo\r\nt=0 0\r\n"
                "b=AS:64\r\ni=info\r\nm=audio 1/2 RTP/AVP 0\r\na=recvonly\r\na=x-foo: bar \r\n")
    assert sdp.attributes == [("tool", "demo")] and sdp.attr("TOOL") == "demo"
    [media] = sdp.media
    assert media.attributes == [("recvonly", None), ("x-foo", "bar")]
    assert media.port_count == 2 and media.direction == "recvonly"
    assert sdp.origin_address == "h.example"


def test_parse_multicast_ttl_and_hostname_connection():
    assert parse("v=0\r\nc=IN IP4 224.2.36.42/127\r\n").connection == "224.2.36.42"
    assert parse("v=0\r\nc=IN IP4 media.example.com\r\n").connection == "media.example.com"


def test_port_zero_streams_are_not_usable():
    sdp = parse(DOUBLE_OFFER.replace("m=image 30002", "m=image 0"))
    assert offer_kinds(sdp) == ("audio",)
    assert offer_kinds(parse(G729_ONLY)) == ()
    assert offer_kinds(parse(DOUBLE_OFFER)) == ("audio", "t38")


@pytest.mark.parametrize("text, words", [
    ("", "empty"),
    ("o=- 1 1 IN IP4 h\r\n", "v=0"),
    ("v=1\r\n", "version"),
    ("v=0\r\nv=0\r\n", "second v="),
    ("v=0\r\nhello\r\n", "line 2"),
    ("v=0\r\nA=foo\r\n", "line 2"),
    ("v=0\r\no=- 1 IN IP4 h\r\n", "6 fields"),
    ("v=0\r\no=- x 1 IN IP4 h\r\n", "session id"),
    ("v=0\r\no=- 1 1 ATM NSAP h\r\n", "IN IP4"),
    ("v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n", "o="),
    ("v=0\r\nc=IN IP4\r\n", "3 fields"),
    ("v=0\r\nc=IN IP4 999.1.1.1\r\n", "not IPv4"),
    ("v=0\r\nc=IN IP4 -bad-.example\r\n", "not IPv4"),
    ("v=0\r\nc=IN IP4 a..b\r\n", "not IPv4"),
    ("v=0\r\nc=IN IP6 not:an:address::x\r\n", "not IPv6"),
    ("v=0\r\nc=IN IP5 1.2.3.4\r\n", "IN IP4"),
    ("v=0\r\nm=audio 5000 RTP/AVP\r\n", "format"),
    ("v=0\r\nm=audio 70000 RTP/AVP 0\r\n", "0..65535"),
    ("v=0\r\nm=audio -1 RTP/AVP 0\r\n", "0..65535"),
    ("v=0\r\nm=audio 5000/x RTP/AVP 0\r\n", "port count"),
    ("v=0\r\nm=aud(io 5000 RTP/AVP 0\r\n", "token"),
    ("v=0\r\na=bad name:1\r\n", "token"),
    ("v=0\r\na=:1\r\n", "token"),
    ("v=0\r\ns=\x00\r\n", "NUL"),
    ("v=0\r\ns=a\rb\r\n", "bare CR"),
    ("v=0\r\ns=x\r\r\n", "bare CR"),
])
def test_malformed_sdp_is_an_sdp_error(text, words):
    with pytest.raises(SDPError, match=words):
        SessionDescription.parse(text)


def test_limits():
    with pytest.raises(SDPError, match="larger"):
        SessionDescription.parse(b"v=0\r\n" + b"a=x\r\n" * (MAX_SDP_SIZE // 5))
    with pytest.raises(SDPError, match="lines"):
        SessionDescription.parse("v=0\r\n" + "a=x\r\n" * MAX_LINES)
    with pytest.raises(SDPError, match="m= lines"):
        SessionDescription.parse("v=0\r\n" + "m=audio 0 RTP/AVP 0\r\n" * (MAX_MEDIA + 1))
    with pytest.raises(SDPError, match="formats"):
        SessionDescription.parse("v=0\r\nm=audio 1 RTP/AVP " + " ".join(["0"] * 100))
    with pytest.raises(SDPError, match="bytes or str"):
        SessionDescription.parse(None)      # type: ignore[arg-type]
    with pytest.raises(SDPError, match="not a number"):
        SessionDescription.parse("v=0\r\no=- " + "1" * 40 + " 1 IN IP4 h\r\n")


def test_text_not_in_utf8_is_read_as_latin1():
    assert SessionDescription.parse("v=0\r\ns=Sitzung \u00fc\r\n".encode()).name == "Sitzung \u00fc"
    # a=charset:ISO-8859-1 (RFC 4566 §6) or a careless peer: read, not refused
    assert SessionDescription.parse(b"v=0\r\na=charset:ISO-8859-1\r\ns=Sitzung \xfc\r\n"
                                    ).name == "Sitzung \u00fc"


def test_blank_lines_and_trailing_whitespace_tolerated():
    sdp = parse("v=0 \r\n\r\no=- 1 1 IN IP4 h\r\n\r\nm=audio 1 RTP/AVP 0\r\n\r\n\r\n")
    assert len(sdp.media) == 1


# ----------------------------------------------------------------------- encoding
def test_encode_round_trip_and_shape():
    for text in (ASTERISK_T38_REINVITE, FREESWITCH_T38, CISCO_ODD_CASE, PHONE_AUDIO,
                 DOUBLE_OFFER, G729_ONLY, IPV6_AUDIO):
        sdp = parse(text)
        data = sdp.encode()
        assert data.endswith(b"\r\n") and b"\n" not in data.replace(b"\r\n", b"")
        assert b"\r\nt=0 0\r\n" in data
        again = SessionDescription.parse(data)
        assert again.media == sdp.media and again.connection == sdp.connection
        assert (again.session_id, again.version) == (sdp.session_id, sdp.version)


def test_encode_refuses_line_injection():
    sdp = SessionDescription(name="x\r\na=evil")
    with pytest.raises(SDPError):
        sdp.encode()
    sdp = SessionDescription(media=[Media("audio", 1, "RTP/AVP", ["0"],
                                          attributes=[("ptime", "20\r\nm=image 1 udptl t38")])])
    with pytest.raises(SDPError):
        sdp.encode()
    with pytest.raises(SDPError):
        SessionDescription(media=[Media("audio", 1, "RTP/AVP", [])]).encode()
    with pytest.raises(SDPError):
        SessionDescription(media=[Media("audio", 70000, "RTP/AVP", ["0"])]).encode()


def test_empty_session_name_written_as_dash():
    assert b"\r\ns=-\r\n" in SessionDescription(name="").encode()


# ----------------------------------------------------------------------- our offers
def test_offer_audio_and_t38():
    session = SdpSession("192.0.2.1", session_id=42)
    sdp = session.offer(audio_port=4000, t38_port=4002,
                        t38=T38Config(max_bit_rate=9600, fill_bit_removal=True))
    text = sdp.encode().decode()
    assert text.startswith("v=0\r\no=xmfax 42 0 IN IP4 192.0.2.1\r\ns=xmfax\r\n"
                           "c=IN IP4 192.0.2.1\r\nt=0 0\r\n")
    assert "m=audio 4000 RTP/AVP 0 8 101\r\n" in text
    for line in ("a=rtpmap:0 PCMU/8000", "a=rtpmap:8 PCMA/8000",
                 "a=rtpmap:101 telephone-event/8000", "a=fmtp:101 0-15", "a=ptime:20",
                 "a=sendrecv", "m=image 4002 udptl t38", "a=T38FaxVersion:0",
                 "a=T38MaxBitRate:9600", "a=T38FaxRateManagement:transferredTCF",
                 "a=T38FaxMaxBuffer:2000", "a=T38FaxMaxDatagram:400",
                 "a=T38FaxUdpEC:t38UDPRedundancy", "a=T38FaxFillBitRemoval:1"):
        assert line + "\r\n" in text
    assert text.index("m=audio") < text.index("m=image")
    assert offer_kinds(SessionDescription.parse(sdp.encode())) == ("audio", "t38")


def test_offer_variants():
    session = SdpSession("2001:db8::5")
    only_t38 = session.offer(t38_port=5000)
    assert [m.kind for m in only_t38.media] == ["image"]
    assert b"c=IN IP6 2001:db8::5" in only_t38.encode()
    pcma = session.offer(audio_port=5000, codecs=("pcma",), telephone_event=False)
    assert pcma.media[0].formats == ["8"] and not pcma.media[0].has("fmtp")
    with pytest.raises(ValueError):
        session.offer()
    with pytest.raises(ValueError):
        session.offer(audio_port=1, codecs=("G729",))
    with pytest.raises(ValueError):
        session.offer(audio_port=1, codecs=())


def test_version_goes_up_only_when_our_sdp_changes():
    session = SdpSession("192.0.2.1", session_id=7)
    first = session.offer(audio_port=4000)
    assert first.version == 0
    assert session.offer(audio_port=4000).version == 0          # same SDP: same version
    t38 = session.offer(t38_port=4002)
    assert t38.version == 1 and t38.session_id == 7
    offer = parse(ASTERISK_T38_REINVITE)
    same, _ = session.answer(offer, audio_port=None, t38_port=4002, t38=T38Config())
    assert same.version == 1        # our answer happens to be what we last sent
    slower = T38Config(max_bit_rate=9600)
    answer, _ = session.answer(offer, audio_port=None, t38_port=4002, t38=slower)
    assert answer.version == 2 and answer.session_id == 7
    again, _ = session.answer(offer, audio_port=None, t38_port=4002, t38=slower)
    assert again.version == 2


# ----------------------------------------------------------------------- answering
def test_answer_asterisk_t38_reinvite():
    session = SdpSession("192.0.2.1")
    answer, negotiated = session.answer(parse(ASTERISK_T38_REINVITE), audio_port=4000,
                                        t38_port=4002, t38=T38Config())
    assert negotiated.kind == "t38" and negotiated.remote == ("192.0.2.10", 4446)
    assert negotiated.local_port == 4002 and negotiated.direction == "sendrecv"
    t38 = negotiated.t38
    assert (t38.version, t38.max_bit_rate, t38.rate_management) == (0, 14400,
                                                                   RATE_TRANSFERRED_TCF)
    assert t38.max_datagram == 400 and t38.udp_ec == EC_REDUNDANCY
    assert t38.fill_bit_removal is False         # we do not remove fill bits: answered false
    [media] = answer.media
    assert (media.kind, media.port, media.proto, media.formats) == ("image", 4002, "udptl",
                                                                   ["t38"])
    assert media.attr("T38FaxVersion") == "0" and not media.has("T38FaxFillBitRemoval")
    assert T38Config.from_sdp(f"{n}:{v}" if v is not None else n
                              for n, v in media.attributes).max_bit_rate == 14400


def test_answer_lowers_version_rate_and_datagram_to_ours():
    ours = T38Config(version=0, max_bit_rate=9600, max_datagram=300, max_buffer=1000)
    _, negotiated = SdpSession("192.0.2.1").answer(parse(CISCO_ODD_CASE), audio_port=None,
                                                   t38_port=4002, t38=ours)
    t38 = negotiated.t38
    assert t38.version == 0 and t38.max_bit_rate == 9600
    assert t38.max_datagram == 72                  # theirs is smaller (T38MaxDatagram spelling)
    assert t38.rate_management == RATE_LOCAL_TCF   # the offerer's choice
    assert t38.udp_ec == EC_REDUNDANCY             # we do FEC only if configured for it
    assert t38.max_buffer == 200                   # never send more than their buffer
    _, negotiated = SdpSession("192.0.2.1").answer(parse(CISCO_ODD_CASE), audio_port=None,
                                                   t38_port=4002,
                                                   t38=T38Config(version=3, udp_ec=EC_FEC))
    assert negotiated.t38.version == 3 and negotiated.t38.udp_ec == EC_FEC
    assert negotiated.t38.max_bit_rate == 14400    # ours; theirs 33600


def test_answer_takes_their_rate_when_lower():
    answer, negotiated = SdpSession("192.0.2.1").answer(
        parse(FREESWITCH_T38), audio_port=None, t38_port=4002, t38=T38Config())
    assert negotiated.t38.max_bit_rate == 9600 and negotiated.t38.max_datagram == 200
    assert negotiated.remote == ("198.51.100.8", 16384)
    assert answer.media[0].attr("T38MaxBitRate") == "9600"


def test_answer_double_offer_prefers_t38_and_rejects_audio_with_port_zero():
    answer, negotiated = SdpSession("192.0.2.1").answer(
        parse(DOUBLE_OFFER), audio_port=4000, t38_port=4002, t38=T38Config(version=3))
    assert negotiated.kind == "t38" and negotiated.t38.version == 1
    assert negotiated.remote == ("192.0.2.20", 30002)
    audio, image = answer.media
    assert (audio.kind, audio.port, audio.proto, audio.formats) == ("audio", 0, "RTP/AVP",
                                                                   ["0", "96"])
    assert audio.attributes == []
    assert (image.kind, image.port) == ("image", 4002)


def test_answer_double_offer_with_audio_only_accepted():
    answer, negotiated = SdpSession("192.0.2.1").answer(
        parse(DOUBLE_OFFER), audio_port=4000, t38_port=4002, t38=T38Config(), accept=("audio",))
    assert negotiated.kind == "audio" and negotiated.codec == "PCMU"
    assert negotiated.payload_type == 0 and negotiated.telephone_event == 96
    assert [m.port for m in answer.media] == [4000, 0]
    audio = answer.media[0]
    assert audio.formats == ["0", "96"]
    assert audio.attrs("rtpmap") == ["0 PCMU/8000", "96 telephone-event/8000"]
    assert audio.attr("fmtp") == "96 0-15" and audio.attr("ptime") == "20"
    # no local T.38 port: also audio
    _, negotiated = SdpSession("h").answer(parse(DOUBLE_OFFER), audio_port=4000,
                                           t38_port=None, t38=T38Config())
    assert negotiated.kind == "audio"


def test_answer_g711_picks_in_offer_order():
    _, negotiated = SdpSession("127.0.0.1").answer(parse(PHONE_AUDIO), audio_port=4000,
                                                   t38_port=4002, t38=T38Config())
    assert (negotiated.kind, negotiated.codec, negotiated.payload_type) == ("audio", "PCMA", 8)
    assert negotiated.telephone_event == 101 and negotiated.remote == ("127.0.0.1", 5090)


def test_answer_static_payload_types_without_rtpmap_and_ipv6():
    answer, negotiated = SdpSession("2001:db8::2").answer(
        parse(IPV6_AUDIO), audio_port=4000, t38_port=4002, t38=T38Config())
    assert negotiated.codec == "PCMU" and negotiated.telephone_event is None
    assert negotiated.remote == ("2001:db8::1", 6000)
    assert negotiated.describe()["remote"] == "[2001:db8::1]:6000"
    assert b"c=IN IP6 2001:db8::2" in answer.encode()


def test_rtpmap_wins_over_static_numbering():
    # PT 0 remapped by rtpmap to something else is not PCMU; a dynamic PT named PCMA is PCMA
    text = ("v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 7000 RTP/AVP 0 100\r\n"
            "a=rtpmap:0 G722/8000\r\na=rtpmap:100 pcma/8000\r\n")
    _, negotiated = SdpSession("h").answer(parse(text), audio_port=1, t38_port=None,
                                           t38=T38Config())
    assert (negotiated.codec, negotiated.payload_type) == ("PCMA", 100)
    text = "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 7000 RTP/AVP 0\r\na=rtpmap:0 PCMU/16000\r\n"
    with pytest.raises(NotAcceptable):
        SdpSession("h").answer(parse(text), audio_port=1, t38_port=None, t38=T38Config())


def test_g729_only_is_not_acceptable():
    with pytest.raises(NotAcceptable) as info:
        SdpSession("h").answer(parse(G729_ONLY), audio_port=4000, t38_port=4002,
                               t38=T38Config())
    assert "PCMU/PCMA" in info.value.reason


@pytest.mark.parametrize("text", [
    "v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n",                          # no media at all
    "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 0 RTP/AVP 0\r\n",                  # all rejected
    "v=0\r\nc=IN IP4 192.0.2.1\r\nm=video 5000 RTP/AVP 31\r\n",              # video only
    "v=0\r\nc=IN IP4 192.0.2.1\r\nm=audio 5000 RTP/SAVP 0\r\n",              # SRTP
    "v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 5000 tcp t38\r\n",                 # T.38 over TCP
    "v=0\r\nm=audio 5000 RTP/AVP 0\r\n",                                     # no c= anywhere
    "v=0\r\nc=IN IP4 192.0.2.1\r\nm=image 5000 udptl t38\r\na=T38FaxVersion:x\r\n",   # bad T.38
])
def test_not_acceptable_offers(text):
    with pytest.raises(NotAcceptable) as info:
        SdpSession("h").answer(parse(text), audio_port=4000, t38_port=4002, t38=T38Config())
    assert info.value.reason


def test_bad_t38_attributes_fall_back_to_offered_audio():
    text = DOUBLE_OFFER.replace("a=T38FaxUdpEC:t38UDPRedundancy", "a=T38FaxUdpEC:bogus")
    _, negotiated = SdpSession("h").answer(parse(text), audio_port=4000, t38_port=4002,
                                           t38=T38Config())
    assert negotiated.kind == "audio"


def test_direction_is_mirrored():
    text = PHONE_AUDIO.replace("a=sendrecv", "a=sendonly")
    answer, negotiated = SdpSession("h").answer(parse(text), audio_port=4000, t38_port=None,
                                                t38=T38Config())
    assert negotiated.direction == "recvonly" and answer.media[0].direction == "recvonly"
    text = ASTERISK_T38_REINVITE + "a=inactive\r\n"
    answer, negotiated = SdpSession("h").answer(parse(text), audio_port=None, t38_port=4002,
                                                t38=T38Config())
    assert negotiated.direction == "inactive" and answer.media[0].direction == "inactive"


def test_describe_is_json():
    _, negotiated = SdpSession("h").answer(parse(FREESWITCH_T38), audio_port=None,
                                           t38_port=4002, t38=T38Config())
    summary = json.loads(json.dumps(negotiated.describe()))
    assert summary["kind"] == "t38" and summary["t38"]["max_bit_rate"] == 9600
    assert summary["remote"] == "198.51.100.8:16384" and summary["local_port"] == 4002
    _, negotiated = SdpSession("h").answer(parse(PHONE_AUDIO), audio_port=4000,
                                           t38_port=None, t38=T38Config())
    summary = json.loads(json.dumps(negotiated.describe()))
    assert summary["codec"] == "PCMA" and "t38" not in summary


# ----------------------------------------------------------------------- the offerer's view
def exchange(ours: T38Config, theirs: T38Config, **offer_kw):
    """We offer with ``ours``; a second SdpSession answers with ``theirs``; our view."""
    caller, callee = SdpSession("192.0.2.1"), SdpSession("192.0.2.2")
    offer = caller.offer(t38=ours, **offer_kw)
    answer, their_view = callee.answer(SessionDescription.parse(offer.encode()),
                                       audio_port=6000, t38_port=6002, t38=theirs)
    our_view = caller.negotiated(offer, SessionDescription.parse(answer.encode()), t38=ours)
    return our_view, their_view


def test_negotiated_both_views_agree():
    ours = T38Config(version=2, max_bit_rate=14400, max_datagram=500)
    theirs = T38Config(version=1, max_bit_rate=9600, max_datagram=300)
    our_view, their_view = exchange(ours, theirs, audio_port=4000, t38_port=4002)
    assert our_view.kind == their_view.kind == "t38"
    for field in ("version", "max_bit_rate", "max_datagram", "rate_management", "udp_ec"):
        assert getattr(our_view.t38, field) == getattr(their_view.t38, field), field
    assert (our_view.t38.version, our_view.t38.max_bit_rate) == (1, 9600)
    assert our_view.remote == ("192.0.2.2", 6002) and our_view.local_port == 4002
    assert their_view.remote == ("192.0.2.1", 4002) and their_view.local_port == 6002


def test_negotiated_never_above_our_offer():
    ours = T38Config(version=0, max_bit_rate=9600, max_datagram=200, udp_ec=EC_REDUNDANCY)
    answer = ("v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
              "m=image 7000 udptl t38\r\na=T38FaxVersion:3\r\na=T38MaxBitRate:33600\r\n"
              "a=T38FaxMaxDatagram:1400\r\na=T38FaxUdpEC:t38UDPFEC\r\n"
              "a=T38FaxFillBitRemoval:1\r\n")
    session = SdpSession("192.0.2.1")
    offer = session.offer(t38_port=4002, t38=ours)
    got = session.negotiated(offer, parse(answer), t38=ours)
    assert (got.t38.version, got.t38.max_bit_rate, got.t38.max_datagram) == (0, 9600, 200)
    assert got.t38.udp_ec == EC_REDUNDANCY and got.t38.fill_bit_removal is False
    none = session.negotiated(offer, parse(answer.replace("t38UDPFEC", "t38UDPNoEC")),
                              t38=ours)
    assert none.t38.udp_ec == EC_NONE


def test_negotiated_audio_answer():
    session = SdpSession("192.0.2.1")
    offer = session.offer(audio_port=4000, t38_port=4002)
    answer = ("v=0\r\no=- 1 1 IN IP4 192.0.2.9\r\ns=-\r\nc=IN IP4 192.0.2.9\r\nt=0 0\r\n"
              "m=audio 7000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n"
              "m=image 0 udptl t38\r\n")
    got = session.negotiated(offer, parse(answer), t38=T38Config())
    assert (got.kind, got.codec, got.payload_type, got.telephone_event) == ("audio", "PCMA", 8,
                                                                             101)
    assert got.remote == ("192.0.2.9", 7000) and got.local_port == 4000


@pytest.mark.parametrize("answer", [
    # everything rejected
    "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 0 RTP/AVP 0\r\nm=image 0 udptl t38\r\n",
    # wrong number of m-lines
    "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 7000 RTP/AVP 0\r\n",
    # m-lines swapped
    "v=0\r\nc=IN IP4 192.0.2.9\r\nm=image 7000 udptl t38\r\nm=audio 7002 RTP/AVP 0\r\n",
    # a codec we never offered
    "v=0\r\nc=IN IP4 192.0.2.9\r\nm=audio 7000 RTP/AVP 18\r\nm=image 0 udptl t38\r\n",
    # no address
    "v=0\r\nm=audio 7000 RTP/AVP 0\r\nm=image 0 udptl t38\r\n",
])
def test_negotiated_nothing_accepted(answer):
    session = SdpSession("192.0.2.1")
    offer = session.offer(audio_port=4000, t38_port=4002)
    with pytest.raises(NotAcceptable):
        session.negotiated(offer, parse(answer), t38=T38Config())


def test_negotiated_is_frozen():
    got = Negotiated("audio", ("h", 1), 2, codec="PCMU", payload_type=0)
    with pytest.raises(AttributeError):
        got.kind = "t38"        # type: ignore[misc]


def test_hold_address_means_do_not_send():
    # RFC 3264 §8.4: c=0.0.0.0 is the old way to put a stream on hold
    text = PHONE_AUDIO.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0")
    answer, negotiated = SdpSession("h").answer(parse(text), audio_port=4000, t38_port=None,
                                                t38=T38Config())
    assert negotiated.direction == "recvonly" and answer.media[0].direction == "recvonly"
    text = ASTERISK_T38_REINVITE.replace("c=IN IP4 192.0.2.10", "c=IN IP6 ::")
    _, negotiated = SdpSession("h").answer(parse(text), audio_port=None, t38_port=4002,
                                           t38=T38Config())
    assert negotiated.direction == "recvonly"


def test_future_t38_version_answered_with_ours():
    text = ASTERISK_T38_REINVITE.replace("T38FaxVersion:0", "T38FaxVersion:5")
    answer, negotiated = SdpSession("h").answer(parse(text), audio_port=None, t38_port=4002,
                                                t38=T38Config(version=3))
    assert negotiated.t38.version == 3 and answer.media[0].attr("T38FaxVersion") == "3"
    _, negotiated = SdpSession("h").answer(parse(text), audio_port=None, t38_port=4002,
                                           t38=T38Config(version=0))
    assert negotiated.t38.version == 0


def test_reinvite_to_t38_with_audio_port_zero_first():
    # a gateway's re-INVITE that keeps the audio m-line, disabled, before the image one
    text = ("v=0\r\no=gw 5 6 IN IP4 192.0.2.40\r\ns=-\r\nc=IN IP4 192.0.2.40\r\nt=0 0\r\n"
            "m=audio 0 RTP/AVP 0\r\nm=image 9000 udptl t38\r\na=T38FaxVersion:0\r\n"
            "a=T38MaxBitRate:14400\r\na=T38FaxRateManagement:transferredTCF\r\n")
    assert offer_kinds(parse(text)) == ("t38",)
    answer, negotiated = SdpSession("h").answer(parse(text), audio_port=4000, t38_port=4002,
                                                t38=T38Config())
    assert negotiated.kind == "t38" and [m.port for m in answer.media] == [0, 4002]


# ------------------------------------------------------------------ against baresip
# baresip is a real G.711 phone without T.38: its SDP parser reads our offers and answers, and
# we read its own. The SIP around it is written by hand here (the UA has its own tests).


def _sip_header(message: str, name: str) -> str | None:
    for line in message.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == name.lower():
            return value.strip()
    return None


def _sip_request(method: str, uri: str, local_port: int, call_id: str, cseq: int, *,
                 branch: str, to_tag: str | None = None, body: bytes = b"",
                 from_tag: str = "sdptest") -> bytes:
    lines = [f"{method} {uri} SIP/2.0",
             f"Via: SIP/2.0/UDP 127.0.0.1:{local_port};branch={branch};rport",
             "Max-Forwards: 70",
             f"From: <sip:xmfax@127.0.0.1:{local_port}>;tag={from_tag}",
             f"To: <{uri}>" + (f";tag={to_tag}" if to_tag else ""),
             f"Call-ID: {call_id}", f"CSeq: {cseq} {method}",
             f"Contact: <sip:xmfax@127.0.0.1:{local_port}>"]
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _sip_reply(request: str, status: str, *, to_tag: str, local_port: int,
               body: bytes = b"") -> bytes:
    lines = [f"SIP/2.0 {status}"]
    for line in request.split("\r\n\r\n", 1)[0].split("\r\n")[1:]:
        key = line.partition(":")[0].strip().lower()
        if key in ("via", "v", "from", "f", "call-id", "i", "cseq"):
            lines.append(line)
        elif key in ("to", "t"):
            lines.append(line if ";tag=" in line else f"{line};tag={to_tag}")
    lines.append(f"Contact: <sip:xmfax@127.0.0.1:{local_port}>")
    if body:
        lines.append("Content-Type: application/sdp")
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _receive(sock: socket.socket, predicate, what: str, timeout: float = 8.0) -> str:
    """The first message that satisfies ``predicate`` (others, e.g. 100/180, skipped)."""
    sock.settimeout(timeout)
    for _ in range(50):
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            break
        text = data.decode("utf-8", "replace")
        if predicate(text):
            return text
    raise AssertionError(f"no {what} from baresip")


def _rtp_payload_type(audio: socket.socket, timeout: float = 5.0) -> int:
    """The payload type of the first RTP packet baresip sends to our audio port: proof that
    it read our SDP's address, port and codec."""
    audio.settimeout(timeout)
    for _ in range(20):
        try:
            packet, _ = audio.recvfrom(2048)
        except socket.timeout:
            break
        if len(packet) >= 12 and packet[0] >> 6 == 2:          # RFC 3550 §5.1: version 2
            return packet[1] & 0x7F
    raise AssertionError("no RTP from baresip on the audio port our SDP gave")


@pytest.mark.interop
def test_baresip_answers_our_double_offer_with_audio(tmp_path):
    require("baresip")
    with Baresip(tmp_path) as phone, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as audio:
        sock.bind(("127.0.0.1", 0))
        audio.bind(("127.0.0.1", 0))
        port, audio_port = sock.getsockname()[1], audio.getsockname()[1]
        session = SdpSession("127.0.0.1")
        offer = session.offer(audio_port=audio_port, t38_port=audio_port + 2)
        call_id = f"sdp-double-{port}@127.0.0.1"
        invite = _sip_request("INVITE", phone.uri, port, call_id, 1, branch="z9hG4bKsdp1",
                              body=offer.encode())
        sock.sendto(invite, ("127.0.0.1", phone.port))
        final = _receive(sock, lambda t: t.startswith("SIP/2.0 ") and t[8] != "1"
                         and (_sip_header(t, "CSeq") or "").startswith("1 "), "final response")
        assert final.startswith("SIP/2.0 200"), final
        to_tag = (_sip_header(final, "To") or "").split("tag=")[-1].split(";")[0]
        sock.sendto(_sip_request("ACK", phone.uri, port, call_id, 1, branch="z9hG4bKsdp2",
                                 to_tag=to_tag), ("127.0.0.1", phone.port))
        answer = SessionDescription.parse(final.split("\r\n\r\n", 1)[1].encode())
        got = session.negotiated(offer, answer, t38=T38Config())
        assert got.kind == "audio" and got.codec in ("PCMU", "PCMA")
        assert got.remote[0] == "127.0.0.1" and got.remote[1] > 0
        assert got.local_port == audio_port
        assert [m.kind for m in answer.media] == ["audio", "image"]
        assert answer.media[1].port == 0                 # no T.38 in baresip: image refused
        assert _rtp_payload_type(audio) == got.payload_type
        sock.sendto(_sip_request("BYE", phone.uri, port, call_id, 2, branch="z9hG4bKsdp3",
                                 to_tag=to_tag), ("127.0.0.1", phone.port))
        bye_ok = _receive(sock, lambda t: (_sip_header(t, "CSeq") or "") == "2 BYE",
                          "answer to BYE")
        assert bye_ok.startswith("SIP/2.0 200"), bye_ok


@pytest.mark.interop
def test_we_answer_baresips_offer_and_it_takes_our_answer(tmp_path):
    require("baresip")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as audio:
        sock.bind(("127.0.0.1", 0))
        audio.bind(("127.0.0.1", 0))
        port, audio_port = sock.getsockname()[1], audio.getsockname()[1]
        with Baresip(tmp_path, dial=f"sip:fax@127.0.0.1:{port}") as phone:
            invite = _receive(sock, lambda t: t.startswith("INVITE "), "INVITE", timeout=15)
            offer = SessionDescription.parse(invite.split("\r\n\r\n", 1)[1].encode())
            assert offer_kinds(offer) == ("audio",)
            answer, got = SdpSession("127.0.0.1").answer(offer, audio_port=audio_port,
                                                         t38_port=audio_port + 2,
                                                         t38=T38Config())
            assert got.kind == "audio" and got.codec == "PCMU"      # its first: PCMU,PCMA
            assert got.remote[0] == "127.0.0.1"
            sock.sendto(_sip_reply(invite, "200 OK", to_tag="xmfaxans", local_port=port,
                                   body=answer.encode()), ("127.0.0.1", phone.port))
            _receive(sock, lambda t: t.startswith("ACK "), "ACK")
            # baresip could not use an answer it did not understand: it sends no RTP then
            assert _rtp_payload_type(audio) == 0
            call_id = _sip_header(invite, "Call-ID")
            from_ = _sip_header(invite, "From") or ""
            their_tag = from_.split("tag=")[-1].split(";")[0]
            contact = (_sip_header(invite, "Contact") or "").strip("<>").split(">")[0]
            bye = ("\r\n".join([
                f"BYE {contact} SIP/2.0",
                f"Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bKsdpbye;rport",
                "Max-Forwards: 70",
                f"From: <sip:fax@127.0.0.1:{port}>;tag=xmfaxans",
                f"To: {from_}", f"Call-ID: {call_id}", "CSeq: 1 BYE",
                "Content-Length: 0"]) + "\r\n\r\n").encode()
            assert their_tag
            sock.sendto(bye, ("127.0.0.1", phone.port))
            reply = _receive(sock, lambda t: (_sip_header(t, "CSeq") or "") == "1 BYE",
                             "answer to BYE")
            assert reply.startswith("SIP/2.0 200"), reply


def test_later_offers_keep_the_m_line_count():
    # RFC 3264 §8: a later offer never has fewer m-lines than our previous SDP
    session = SdpSession("192.0.2.1")
    session.offer(audio_port=4000)
    reinvite = session.offer(t38_port=4002)           # audio call -> T.38: m-line replaced
    assert [(m.kind, m.port) for m in reinvite.media] == [("image", 4002)]
    # after answering a double offer with audio (image at port 0), a T.38 re-offer keeps both
    callee = SdpSession("192.0.2.2")
    callee.answer(parse(DOUBLE_OFFER), audio_port=6000, t38_port=6002, t38=T38Config(),
                  accept=("audio",))
    reinvite = callee.offer(t38_port=6002)
    assert [(m.kind, m.port) for m in reinvite.media] == [("audio", 0), ("image", 6002)]
    assert reinvite.media[0].formats == ["0", "96"] and reinvite.media[0].attributes == []
    # the far end answers in the same places; the offerer's view finds the T.38 stream
    answer = ("v=0\r\nc=IN IP4 192.0.2.20\r\nm=audio 0 RTP/AVP 0\r\n"
              "m=image 30002 udptl t38\r\na=T38FaxVersion:0\r\n")
    got = callee.negotiated(reinvite, parse(answer), t38=T38Config())
    assert got.kind == "t38" and got.remote == ("192.0.2.20", 30002) and got.local_port == 6002
    # and back to audio after T.38: both places again, image now at port 0
    back = callee.offer(audio_port=6000)
    assert [(m.kind, m.port) for m in back.media] == [("audio", 6000), ("image", 0)]


def test_a_new_stream_kind_goes_at_the_end():
    session = SdpSession("192.0.2.1")
    session.offer(t38_port=4002)
    both = session.offer(audio_port=4000, t38_port=4002)
    assert [(m.kind, m.port) for m in both.media] == [("image", 4002), ("audio", 4000)]


def test_session_level_direction_applies_to_every_stream():
    # RFC 4566 §6: a=sendonly before the first m= line covers all media; a media one wins
    text = PHONE_AUDIO.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n").replace("a=sendrecv\r\n",
                                                                             "")
    sdp = parse(text)
    assert sdp.direction(sdp.media[0]) == "sendonly" and sdp.media[0].direction == "sendrecv"
    answer, negotiated = SdpSession("h").answer(sdp, audio_port=4000, t38_port=None,
                                                t38=T38Config())
    assert negotiated.direction == "recvonly" and answer.media[0].direction == "recvonly"
    text = ASTERISK_T38_REINVITE.replace("t=0 0\r\n", "t=0 0\r\na=inactive\r\n") + "a=sendrecv\r\n"
    sdp = parse(text)
    assert sdp.direction(sdp.media[0]) == "sendrecv"


# ------------------------------------------------------------------ captured traces
# tests/sip/traces: messages sipp, Kamailio and baresip really sent (captured for the parser
# tests); every SDP among them must be read, and every offer answered.
TRACES = Path(__file__).resolve().parent / "traces"


def trace_sdps() -> list[tuple[str, object, bytes]]:
    found = []
    for path in sorted(TRACES.glob("*.sip")):
        message = parse_sip(path.read_bytes())
        if message.content_type == "application/sdp" and message.body:
            found.append((path.name, message, message.body))
    return found


def test_traces_hold_sdp_from_each_peer():
    names = {name.split("-")[0] for name, _, _ in trace_sdps()}
    assert {"sipp", "kamailio", "baresip"} <= names


@pytest.mark.parametrize("name, message, body", trace_sdps(),
                         ids=[name for name, _, _ in trace_sdps()])
def test_trace_sdp(name, message, body):
    sdp = SessionDescription.parse(body)
    again = SessionDescription.parse(sdp.encode())
    assert again.media == sdp.media and again.connection == sdp.connection
    kinds = offer_kinds(sdp)
    assert kinds, name                      # every captured call carried audio or T.38
    if isinstance(message, Request):
        answer, negotiated = SdpSession("127.0.0.1").answer(sdp, audio_port=4000,
                                                            t38_port=4002, t38=T38Config())
        assert negotiated.kind == ("t38" if "t38" in kinds else "audio")
        assert sum(m.port != 0 for m in answer.media) == 1
