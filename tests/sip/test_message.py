"""xmfax.sip.message and xmfax.sip.uri: parsing, encoding, limits, error responses and TCP
framing (RFC 3261 §7, §18.3, §20, §25; RFC 3581; RFC 5118). Hostile messages are written here
in the spirit of RFC 4475 (none copied from it)."""
from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from xmfax.sip import message as sipmsg
from xmfax.sip.message import (MAX_HEADERS, MAX_LINE_LENGTH, MAX_MESSAGE_SIZE, REASONS,
                               Headers, NameAddr, Request, Response, SIPParseError,
                               StreamFramer, URI, Via, error_response, make_response,
                               new_branch, new_call_id, new_tag, parse)


def msg(*lines: str, body: bytes = b"") -> bytes:
    """A message from its start line and header lines, CRLF line ends, then the body."""
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def invite(*extra: str, body: bytes = b"", uri: str = "sip:+15550100@127.0.0.1:5060",
           cseq: str = "1 INVITE", method: str = "INVITE") -> bytes:
    return msg(f"{method} {uri} SIP/2.0",
               "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a1;rport",
               "From: \"Alice\" <sip:alice@127.0.0.1:5070>;tag=f1",
               "To: <sip:+15550100@127.0.0.1>",
               "Call-ID: c1@127.0.0.1",
               f"CSeq: {cseq}",
               "Max-Forwards: 70",
               *extra,
               f"Content-Length: {len(body)}", body=body)


def reject(data: bytes, reason: str | None = None, status: int = 400) -> SIPParseError:
    with pytest.raises(SIPParseError) as info:
        parse(data)
    if reason is not None:
        assert info.value.reason == reason, info.value
    assert info.value.status == status
    return info.value


# ---------------------------------------------------------------- the basics

def test_parse_request_and_properties():
    sdp = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\n"
    m = parse(invite("Content-Type: application/sdp", body=sdp))
    assert isinstance(m, Request)
    assert m.method == "INVITE"
    assert m.uri == URI("sip", "+15550100", None, "127.0.0.1", 5060)
    assert m.call_id == "c1@127.0.0.1"
    assert m.cseq == (1, "INVITE")
    assert m.from_.display == "Alice" and m.from_.tag == "f1"
    assert m.to.tag is None and m.to.uri.user == "+15550100"
    (via,) = m.vias
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "127.0.0.1", 5070,
                                                               "z9hG4bK-a1")
    assert via.params["rport"] is None
    assert m.content_type == "application/sdp"
    assert m.body == sdp
    assert m.contacts == []


def test_parse_response():
    m = parse(msg("SIP/2.0 180 Ringing",
                  "Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a1",
                  "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", "Call-ID: x",
                  "CSeq: 7 INVITE", "Contact: <sip:127.0.0.1:25060;transport=UDP>",
                  "Content-Length: 0"))
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (180, "Ringing")
    assert m.cseq == (7, "INVITE")
    assert m.contacts[0].uri.transport == "udp"          # INTEROP(sipp): upper-case transport
    assert m.contacts[0].uri.params == {"transport": "UDP"}
    assert m.contacts[0].uri.user is None


def test_reason_phrase_may_be_empty_or_utf8():
    base = ["Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1", "To: <sip:b@h>",
            "Call-ID: x", "CSeq: 1 OPTIONS"]
    assert parse(msg("SIP/2.0 200", *base)).reason == ""
    assert parse(msg("SIP/2.0 486 Occupé ici", *base)).reason == "Occupé ici"


def test_compact_forms_expand_to_canonical_names():
    data = msg("INVITE sip:b@h SIP/2.0", "v: SIP/2.0/UDP h:5060;branch=z9hG4bK1",
               "f: <sip:a@h>;tag=1", "t: <sip:b@h>", "i: cid", "CSeq: 1 INVITE",
               "m: <sip:a@h>", "k: timer, 100rel", "c: application/sdp", "s: hi",
               "o: refer", "u: talk", "x: 1800", "l: 0")
    m = parse(data)
    names = [n for n, _ in m.headers.items()]
    assert names == ["Via", "From", "To", "Call-ID", "CSeq", "Contact", "Supported",
                     "Content-Type", "Subject", "Event", "Allow-Events", "Session-Expires",
                     "Content-Length"]
    assert m.headers.values("k") == ["timer", "100rel"]
    assert m.headers.get("CALL-ID") == m.headers.get("i") == "cid"


def test_header_names_case_insensitive_and_spelling_kept():
    h = Headers([("x-Fax-Id", "1"), ("X-FAX-ID", "2"), ("cseq", "1 INVITE"),
                 ("www-authenticate", 'Digest realm="a"')])
    assert h.items() == [("x-Fax-Id", "1"), ("x-Fax-Id", "2"), ("CSeq", "1 INVITE"),
                         ("WWW-Authenticate", 'Digest realm="a"')]
    assert h.getall("X-fax-id") == ["1", "2"] and "x-fax-ID" in h
    assert h.get("Missing") is None and h.get("Missing", "d") == "d"


def test_folding_joins_continuation_lines():
    m = parse(msg("OPTIONS sip:h SIP/2.0",
                  "Via: SIP/2.0/UDP h;branch=z9hG4bK1,",
                  "\t SIP/2.0/TCP [2001:db8::9]:5061",
                  "  ;branch=z9hG4bK2",
                  "From: <sip:a@h>",
                  " ;tag=1", "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 OPTIONS",
                  "Subject: folded", "    over", "\tlines"))
    assert m.headers.get("Subject") == "folded over lines"
    assert [v.host for v in m.vias] == ["h", "2001:db8::9"]
    assert m.vias[1].branch == "z9hG4bK2" and m.from_.tag == "1"


def test_list_headers_split_outside_quotes_and_brackets():
    h = Headers([("Contact", '"Doe, John" <sip:j@h;a=1,2>;q=0.5, <sip:k@h>'),
                 ("Contact", "sip:l@h"),
                 ("Allow", "INVITE,ACK , BYE,,CANCEL"),
                 ("Date", "Thu, 03 Dec 2026 13:00:00 GMT"),
                 ("WWW-Authenticate", 'Digest realm="a,b", nonce="n"'),
                 ("X-Unknown", "a, b")])
    assert h.values("Contact") == ['"Doe, John" <sip:j@h;a=1,2>;q=0.5', "<sip:k@h>", "sip:l@h"]
    assert h.values("Allow") == ["INVITE", "ACK", "BYE", "CANCEL"]
    assert h.values("Date") == ["Thu, 03 Dec 2026 13:00:00 GMT"]
    assert h.values("WWW-Authenticate") == ['Digest realm="a,b", nonce="n"']
    assert h.values("X-Unknown") == ["a, b"]
    assert h.values("Route") == []


def test_escaped_quotes_inside_list_elements():
    h = Headers([("Contact", r'"a \"x, y\" \\" <sip:a@h>, "b" <sip:b@h>')])
    first, second = h.values("Contact")
    assert NameAddr.parse(first).display == r'a "x, y" \ '.rstrip()
    assert NameAddr.parse(second).uri.user == "b"


def test_headers_editing():
    h = Headers([("Via", "v1"), ("To", "t"), ("Via", "v2")])
    h.prepend("Via", "v0")
    assert h.getall("Via") == ["v0", "v1", "v2"]
    h.prepend("Route", "r")                      # no field of that name: at the top
    assert h.items()[0] == ("Route", "r")
    h.set("via", "only")
    assert h.items() == [("Route", "r"), ("Via", "only"), ("To", "t")]
    h.set("Max-Forwards", "70")
    assert h.items()[-1] == ("Max-Forwards", "70")
    c = h.copy()
    c.remove("VIA")
    assert "Via" not in c and "Via" in h
    assert len(h) == 4 and h != c


@pytest.mark.parametrize("name,value", [("Subject", "a\r\nVia: evil"), ("Subject", "a\nb"),
                                        ("Subject", "a\x00"), ("Bad Name", "x"), ("", "x"),
                                        ("Subject", "lone \ud800 surrogate"),
                                        ("X:Y", "x")])
def test_headers_refuse_injection(name, value):
    h = Headers()
    with pytest.raises(ValueError):
        h.add(name, value)
    with pytest.raises(ValueError):
        h.set(name, value)
    assert h.items() == []


def test_repr_hides_credentials():
    m = parse(invite('Authorization: Digest username="u", response="deadbeef"',
                     'Proxy-Authorization: Digest username="u", response="cafe"'))
    assert "deadbeef" not in repr(m) and "cafe" not in repr(m)
    assert dict(m.headers.redacted())["Authorization"] == "<redacted>"


# ---------------------------------------------------------------- URIs

@pytest.mark.parametrize("text,expect", [
    ("sip:alice@example.com", ("sip", "alice", None, "example.com", None, {}, {})),
    ("SIPS:Alice@Example.com:5061", ("sips", "Alice", None, "Example.com", 5061, {}, {})),
    ("sip:a:secret@h", ("sip", "a", "secret", "h", None, {}, {})),
    ("sip:h:0", ("sip", None, None, "h", 0, {}, {})),
    ("sip:+1555%20x@h;user=phone;LR", ("sip", "+1555%20x", None, "h", None,
                                      {"user": "phone", "lr": None}, {})),
    ("sip:+1555;phone-context=x@h", ("sip", "+1555;phone-context=x", None, "h", None, {}, {})),
    ("sip:[2001:db8::10]:5070;transport=TCP", ("sip", None, None, "2001:db8::10", 5070,
                                               {"transport": "TCP"}, {})),
    ("sip:u@[::1]", ("sip", "u", None, "::1", None, {}, {})),
    ("sip:u@h?subject=fax&priority=urgent", ("sip", "u", None, "h", None, {},
                                             {"subject": "fax", "priority": "urgent"})),
    ("sip:10.0.0.1;maddr=239.1.1.1;ttl=5", ("sip", None, None, "10.0.0.1", None,
                                            {"maddr": "239.1.1.1", "ttl": "5"}, {})),
    ("tel:+1-201-555-0123;ext=7;phone-context=+1", ("tel", "+1-201-555-0123", None, "", None,
                                                   {"ext": "7", "phone-context": "+1"}, {})),
])
def test_uri_parse_and_round_trip(text, expect):
    uri = URI.parse(text)
    got = (uri.scheme, uri.user, uri.password, uri.host, uri.port, uri.params, uri.headers)
    assert got == expect
    assert URI.parse(str(uri)) == uri


def test_uri_str_brackets_ipv6_and_lowercases_param_names():
    assert str(URI("sip", "u", None, "2001:db8::1", 5060, {"lr": None})) == \
        "sip:u@[2001:db8::1]:5060;lr"
    assert str(URI.parse("sip:h;TRANSPORT=UDP")) == "sip:h;transport=UDP"
    assert URI.parse("sip:h;TRANSPORT=UDP").transport == "udp"
    assert URI.parse("sip:h").transport is None


def test_uri_hostport_defaults():
    assert URI.parse("sip:h").hostport() == ("h", 5060)
    assert URI.parse("sips:h").hostport() == ("h", 5061)
    assert URI.parse("sip:h").hostport(5080) == ("h", 5080)
    assert URI.parse("sip:h:7000").hostport(5080) == ("h", 7000)
    assert URI.parse("sip:[::1]:7").hostport() == ("::1", 7)


@pytest.mark.parametrize("text", [
    "", "sip:", "sip:@h", "sip:u@", "sip:u@h:99999", "sip:u@h:port", "sip:2001:db8::1",
    "sip:[2001:db8::1", "sip:[2001:db8::zz]", "sip:[1.2.3.4]", "sip:u@h x", "sip:u@<h>",
    "sip:u@h;=x", "sip:u@h;a=", "sip:u@h?nohvalue", "sip:u@-bad-.com", "sip:u@256.1.1.1",
    "nocolon", "1sip:h", "tel:", "tel:;x=1", 'sip:u"@h',
])
def test_uri_malformed(text):
    with pytest.raises(SIPParseError):
        URI.parse(text)


def test_uri_other_schemes_kept_opaque_but_not_as_request_uri():
    for text in ("http://example.com/x?y=1", "mailto:fax@example.com", "urn:service:sos"):
        uri = URI.parse(text)
        assert uri.opaque == text.split(":", 1)[1] and uri.host == "" and str(uri) == text
        assert URI.parse(str(uri)) == uri
    with pytest.raises(SIPParseError) as info:
        URI.parse("http://example.com/", sip_only=True)
    assert info.value.status == 416
    na = NameAddr.parse("Fax <mailto:fax@example.com>;tag=1")
    assert (na.uri.scheme, na.uri.opaque, na.tag) == ("mailto", "fax@example.com", "1")
    m = parse(invite("Contact: <mailto:fax@example.com>, <sip:a@h>"))
    assert [c.uri.scheme for c in m.contacts] == ["mailto", "sip"]


def test_uri_repr_hides_password():
    uri = URI.parse("sip:user:s3cret@h")
    assert "s3cret" not in repr(uri) and "s3cret" in str(uri)
    assert "s3cret" not in repr(NameAddr(uri))


def test_rfc5118_style_ipv6():
    # a bracketed address that ends like a port is all address (RFC 5118 §4.2)
    assert URI.parse("sip:u@[2001:db8::10:5070]").hostport() == ("2001:db8::10:5070", 5060)
    assert URI.parse("sip:u@[2001:db8::10]:5070").hostport() == ("2001:db8::10", 5070)
    assert URI.parse("sip:[::ffff:192.0.2.1]").host == "::ffff:192.0.2.1"
    v = Via.parse("SIP/2.0/UDP [2001:db8::9:1]:6050;branch=z9hG4bKa;received=2001:db8::9:255")
    assert (v.host, v.port, v.params["received"]) == ("2001:db8::9:1", 6050, "2001:db8::9:255")
    v = Via.parse("SIP/2.0/UDP [2001:db8::9:1];received=[2001:db8::9:255];branch=z9hG4bKb")
    assert v.port is None and v.params["received"] == "[2001:db8::9:255]"
    m = parse(msg("REGISTER sip:[2001:db8::10] SIP/2.0",
                  "Via: SIP/2.0/UDP [2001:db8::9:1];branch=z9hG4bK1",
                  "From: <sip:u@[2001:db8::10]>;tag=1", "To: <sip:u@[2001:db8::10]>",
                  "Call-ID: v6", "CSeq: 1 REGISTER",
                  "Contact: \"Caller\" <sip:u@[2001:db8::9:1]:5070;transport=tcp>"))
    assert m.contacts[0].uri.hostport() == ("2001:db8::9:1", 5070)
    assert m.uri.host == "2001:db8::10"


# ---------------------------------------------------------------- name-addr, Via

@pytest.mark.parametrize("text,display,uri,params", [
    ('"Bob" <sip:bob@h>;tag=12', "Bob", "sip:bob@h", {"tag": "12"}),
    ('Bob  Smith <sip:bob@h>', "Bob Smith", "sip:bob@h", {}),
    ('<sip:bob@h;lr>', None, "sip:bob@h;lr", {}),
    ('sip:bob@h;tag=x;expires=30', None, "sip:bob@h", {"tag": "x", "expires": "30"}),
    ('"" <sip:h>', "", "sip:h", {}),
    (r'"a \"quoted\" \\ name" <sip:a@h>', r'a "quoted" \ name', "sip:a@h", {}),
    ('"<not a uri>" <sip:a@h>', "<not a uri>", "sip:a@h", {}),
    ('<sip:a@h> ; TAG = 7 ; +sip.instance="<urn:uuid:1;2>"', None, "sip:a@h",
     {"tag": "7", "+sip.instance": '"<urn:uuid:1;2>"'}),
    ('<tel:+15550100>', None, "tel:+15550100", {}),
    ('"Ünïcode" <sip:u@h>', "Ünïcode", "sip:u@h", {}),
    ('sip:u@h;+sip.instance="<urn:uuid:1>";reg-id=1', None, "sip:u@h",
     {"+sip.instance": '"<urn:uuid:1>"', "reg-id": "1"}),
])
def test_name_addr(text, display, uri, params):
    na = NameAddr.parse(text)
    assert (na.display, str(na.uri), na.params) == (display, uri, params)
    assert NameAddr.parse(str(na)) == na


def test_name_addr_addr_spec_params_belong_to_header():
    na = NameAddr.parse("sip:u@h;transport=tcp")
    assert na.uri.params == {} and na.params == {"transport": "tcp"}
    assert str(na) == "<sip:u@h>;transport=tcp"
    na = NameAddr.parse("<sip:u@h;transport=tcp>")
    assert na.uri.transport == "tcp" and na.params == {}


@pytest.mark.parametrize("text", ['"unterminated <sip:a@h>', '"x" sip:a@h', "<sip:a@h",
                                  "<sip:a@h> junk", "<sip:<a>@h>", "", "   ", "*",
                                  "sip:a@h,sip:b@h", 'ab"c <sip:a@h>', "<sip:a@h>;tag=\"x",
                                  "<sip:a@h>;tag=a b"])
def test_name_addr_malformed(text):
    with pytest.raises(SIPParseError):
        NameAddr.parse(text)


@pytest.mark.parametrize("text,transport,host,port,params", [
    ("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", "UDP", "10.0.0.1", 5060,
     {"branch": "z9hG4bK1", "rport": None}),
    ("sip / 2.0 / tcp  host.example ; BRANCH = z9hG4bK2 ; rport=5070", "TCP", "host.example",
     None, {"branch": "z9hG4bK2", "rport": "5070"}),
    ("SIP/2.0/UDP [2001:db8::1]:5060;received=2001:db8::9;branch=z9hG4bK3", "UDP",
     "2001:db8::1", 5060, {"received": "2001:db8::9", "branch": "z9hG4bK3"}),
    ("SIP/2.0/TLS h : 5061", "TLS", "h", 5061, {}),
])
def test_via(text, transport, host, port, params):
    v = Via.parse(text)
    assert (v.transport, v.host, v.port, v.params) == (transport, host, port, params)
    assert Via.parse(str(v)) == v


def test_via_str():
    v = Via("UDP", "2001:db8::1", 5060, {"branch": "z9hG4bKx", "rport": None})
    assert str(v) == "SIP/2.0/UDP [2001:db8::1]:5060;branch=z9hG4bKx;rport"


@pytest.mark.parametrize("text", ["SIP/2.0 UDP h", "SIP/3.0/UDP h", "HTTP/2.0/UDP h",
                                  "SIP/2.0/UDP", "SIP/2.0/UDP h:x", "SIP/2.0/UDP 2001:db8::1",
                                  "SIP/2.0/UDP h;branch", "SIP/2.0/UDP h;=1"])
def test_via_malformed(text):
    if text == "SIP/2.0/UDP h;branch":
        assert Via.parse(text).branch is None          # a flag: legal, just no value
        return
    with pytest.raises(SIPParseError):
        Via.parse(text)


# ---------------------------------------------------------------- encoding

def built_request() -> Request:
    h = Headers()
    h.add("Via", str(Via("UDP", "127.0.0.1", 5070, {"branch": new_branch(), "rport": None})))
    h.add("From", str(NameAddr(URI.parse("sip:xmfax@127.0.0.1"), "xmfax", {"tag": new_tag()})))
    h.add("To", str(NameAddr(URI.parse("sip:+15550100@[::1]:5060"))))
    h.add("Call-ID", new_call_id("127.0.0.1"))
    h.add("CSeq", "1 INVITE")
    h.add("Max-Forwards", "70")
    h.add("Contact", "<sip:xmfax@127.0.0.1:5070;transport=tcp>")
    h.add("Content-Type", "application/sdp")
    return Request("INVITE", URI.parse("sip:+15550100@[::1]:5060"), h,
                   b"v=0\r\no=xmfax 1 1 IN IP4 127.0.0.1\r\n")


def test_encode_round_trip_and_content_length():
    req = built_request()
    data = req.encode()
    assert data.startswith(b"INVITE sip:+15550100@[::1]:5060 SIP/2.0\r\n")
    assert b"\r\nContent-Length: 35\r\n\r\nv=0" in data
    again = parse(data)
    assert again == req
    assert again.headers.get("Content-Length") == "35"
    assert parse(again.encode()) == again
    # a stale Content-Length is rewritten, never trusted
    req.headers.add("Content-Length", "999")
    req.headers.add("l", "5")
    assert parse(req.encode()).body == req.body
    assert req.encode().count(b"Content-Length") == 1
    resp = make_response(req, 200, to_tag="tt")
    resp.body = b"abc"
    assert parse(resp.encode()) == resp


def test_equality_sees_differences():
    a = built_request()
    b = parse(a.encode())
    b.headers.add("X-Other", "1")
    assert a != b
    c = parse(a.encode())
    c.body = b"other"
    assert a != c
    assert a != make_response(a, 200)


def test_identifiers_are_random_and_well_formed():
    branches = {new_branch() for _ in range(50)}
    assert len(branches) == 50 and all(b.startswith("z9hG4bK") for b in branches)
    assert len({new_tag() for _ in range(50)}) == 50
    cid = new_call_id("[2001:db8::1]")
    assert cid.endswith("@[2001:db8::1]")
    assert REASONS[200] == "OK" and REASONS[488] == "Not Acceptable Here"


# ---------------------------------------------------------------- make_response

def test_make_response_copies_the_right_headers():
    data = msg("INVITE sip:b@h SIP/2.0",
               "Via: SIP/2.0/UDP p1;branch=z9hG4bKp1, SIP/2.0/UDP p2;branch=z9hG4bKp2",
               "Via: SIP/2.0/TCP ua;branch=z9hG4bKua", "Record-Route: <sip:p1;lr>",
               "From: A <sip:a@h>;tag=1", "To: sip:b@h", "Call-ID: x", "CSeq: 5 INVITE",
               "Timestamp: 54", "Subject: s")
    req = parse(data)
    ringing = make_response(req, 180, to_tag="t9")
    assert ringing.reason == "Ringing"
    assert ringing.headers.getall("Via") == req.headers.getall("Via")
    assert [v.branch for v in ringing.vias] == ["z9hG4bKp1", "z9hG4bKp2", "z9hG4bKua"]
    assert ringing.to.tag == "t9" and ringing.to.uri == req.to.uri
    assert ringing.headers.get("From") == "A <sip:a@h>;tag=1"
    assert (ringing.call_id, ringing.cseq) == ("x", (5, "INVITE"))
    assert "Record-Route" not in ringing.headers and "Subject" not in ringing.headers
    assert "Timestamp" not in ringing.headers
    trying = make_response(req, 100)
    assert trying.headers.get("Timestamp") == "54" and trying.to.tag is None
    # a To that already has a tag keeps it
    req.headers.set("To", "<sip:b@h>;tag=old")
    assert make_response(req, 200, to_tag="new").to.tag == "old"
    assert make_response(req, 499).reason == "Client Error"
    assert make_response(req, 488, "No T.38 here").reason == "No T.38 here"
    with pytest.raises(ValueError):
        make_response(req, 700)
    with pytest.raises(ValueError):
        make_response(req, 400, "x\r\nVia: injected")


# ---------------------------------------------------------------- malformed messages

def test_missing_and_duplicate_mandatory_headers():
    full = invite().decode()
    for name in ("Via", "From", "To", "Call-ID", "CSeq"):
        lines = [ln for ln in full.split("\r\n") if not ln.startswith(name + ":")]
        reject("\r\n".join(lines).encode(), f"Missing {name}")
    for name, line in (("Call-ID", "i: other"), ("CSeq", "CSeq: 2 INVITE"),
                       ("From", "From: <sip:x@h>"), ("To", "t: <sip:y@h>")):
        reject(invite(line), f"Duplicate {name}")


@pytest.mark.parametrize("extra,reason", [
    (("Max-Forwards: 1",), "Duplicate Max-Forwards"),
    (("Contact: *",), "Bad Contact"),
    (("Contact: <sip:a@h",), "Bad Address"),
    (("Content-Type: sdp",), "Bad Content-Type"),
    (("Via: SIP/2.0/UDP",), "Bad Via"),
])
def test_bad_header_values(extra, reason):
    reject(invite(*extra), reason)


@pytest.mark.parametrize("value", ["300", "-1", "", "7 0", "x"])
def test_bad_max_forwards(value):
    reject(invite().replace(b"Max-Forwards: 70", f"Max-Forwards: {value}".encode()),
           "Bad Max-Forwards")
    assert parse(invite().replace(b"Max-Forwards: 70\r\n", b"")).method == "INVITE"


@pytest.mark.parametrize("cseq,reason", [("1 BYE", "CSeq Method Mismatch"),
                                         ("INVITE", "Bad CSeq"), ("-1 INVITE", "Bad CSeq"),
                                         ("2147483648 INVITE", "Bad CSeq"),
                                         ("1 INV ITE", "Bad CSeq"), ("１ INVITE", "Bad CSeq")])
def test_bad_cseq(cseq, reason):
    reject(invite(cseq=cseq), reason)


def test_cseq_limits():
    assert parse(invite(cseq="2147483647 INVITE")).cseq == (2 ** 31 - 1, "INVITE")
    assert parse(invite(cseq="0   INVITE")).cseq == (0, "INVITE")


def test_register_may_carry_the_contact_wildcard():
    data = msg("REGISTER sip:reg SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
               "From: <sip:u@reg>;tag=1", "To: <sip:u@reg>", "Call-ID: r", "CSeq: 3 REGISTER",
               "Contact: *", "Expires: 0")
    assert parse(data).contacts == []


@pytest.mark.parametrize("line,reason,status", [
    ("INVITE sip:b@h SIP/3.0", "Version Not Supported", 505),
    ("INVITE sip:b@h SIP/2.0 ", "Bad Request Line", 400),
    ("INVITE  sip:b@h SIP/2.0", "Bad Request Line", 400),
    ("INVITE sip:b@h  SIP/2.0", "Bad Request Line", 400),
    ("INVITE sip:b c@h SIP/2.0", "Bad Request Line", 400),
    ("INVITE sip:b@h HTTP/1.1", "Bad SIP Version", 400),
    ("INV<ITE sip:b@h SIP/2.0", "Bad Method", 400),
    ("INVITE http://h/ SIP/2.0", "Unsupported URI Scheme", 416),
    ("INVITE sip:b@h:65536 SIP/2.0", "Bad Port", 400),
])
def test_bad_request_lines(line, reason, status):
    data = invite().replace(invite().split(b"\r\n")[0], line.encode())
    reject(data, reason, status)


@pytest.mark.parametrize("line,reason,status", [
    ("SIP/2.0 99 Odd", "Bad Status Code", 400), ("SIP/2.0 700 Odd", "Bad Status Code", 400),
    ("SIP/2.0 20O OK", "Bad Status Code", 400), ("SIP/1.0 200 OK", "Version Not Supported", 505),
    ("SIP/2.0 ２００ OK", "Bad Status Code", 400),
])
def test_bad_status_lines(line, reason, status):
    reject(msg(line, "Via: SIP/2.0/UDP h;branch=z9hG4bK1", "From: <sip:a@h>;tag=1",
               "To: <sip:b@h>", "Call-ID: x", "CSeq: 1 OPTIONS"), reason, status)


def test_lowercase_version_accepted():
    assert parse(invite().replace(b"SIP/2.0\r\n", b"sip/2.0\r\n", 1)).method == "INVITE"


@pytest.mark.parametrize("data,reason", [
    (b"", "Missing Empty Line"),
    (b"\r\n\r\n", "Missing Empty Line"),
    (b"INVITE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", "Missing Empty Line"),
    (b"INVITE sip:b@h SIP/2.0\r\n Via: folded first\r\n\r\n", "Bad Header Folding"),
    (b"INVITE sip:b@h SIP/2.0\r\nNo colon here\r\n\r\n", "Bad Header"),
    (b"INVITE sip:b@h SIP/2.0\r\nBad Name: x\r\n\r\n", "Bad Header"),
    (b"INVITE sip:b@h SIP/2.0\r\nSubject: a\x00b\r\n\r\n", "Bad Character In Header"),
    (b"INVITE sip:b@h SIP/2.0\r\nSubject: a\rb\r\n\r\n", "Bad Character In Header"),
])
def test_broken_framing(data, reason):
    reject(data, reason)


def test_leading_crlf_and_bare_lf_accepted():
    data = b"\r\n\r\n" + invite()
    assert parse(data).call_id == "c1@127.0.0.1"
    lf = invite(body=b"body").replace(b"\r\n", b"\n")
    assert parse(lf).body == b"body"


def test_body_and_content_length():
    # §18.3: a datagram longer than Content-Length is cut; shorter is an error
    assert parse(invite(body=b"abcd") + b"trailing junk").body == b"abcd"
    reject(invite(body=b"abcd")[:-1], "Incomplete Body")
    no_length = invite(body=b"xyz").replace(b"Content-Length: 3\r\n", b"")
    assert parse(no_length).body == b"xyz"
    reject(invite("Content-Length: 5", body=b"abcd") + b"e", "Duplicate Content-Length")
    assert parse(invite("Content-Length: 4", body=b"abcd")).body == b"abcd"   # same value
    assert parse(invite("l: 4", body=b"abcd")).body == b"abcd"        # same value twice: fine
    for bad in (b"-1", b"4x", b"0x10", b"99999999999", b""):
        reject(invite(body=b"abcd").replace(b"Content-Length: 4", b"Content-Length: " + bad),
               "Bad Content-Length")


def test_body_binary_and_utf8_headers_round_trip():
    body = bytes(range(256))
    data = invite("Subject: \xe9t\xe9".encode("latin-1").decode("latin-1"), body=body)
    raw = data.replace("\xe9".encode(), b"\xe9")       # invalid UTF-8 in a header
    m = parse(raw)
    assert m.body == body
    assert parse(m.encode()) == m
    assert m.encode() == raw.replace(b"Content-Length: 256", b"Content-Length: 256")


# ---------------------------------------------------------------- limits

def test_size_limit():
    pad = b"x" * (MAX_MESSAGE_SIZE - len(invite(body=b"")) - 10)
    ok = invite(body=pad)
    assert len(ok) <= MAX_MESSAGE_SIZE and parse(ok).body == pad
    err = reject(invite(body=b"x" * MAX_MESSAGE_SIZE), "Message Too Large", 513)
    assert err.status == 513


def test_header_count_limit():
    extra = [f"X-H{i}: {i}" for i in range(MAX_HEADERS - 7)]
    assert len(parse(invite(*extra)).headers) == MAX_HEADERS
    reject(invite(*extra, "X-One-More: 1"), "Too Many Headers")


def test_line_length_limit():
    ok = invite("Subject: " + "a" * (MAX_LINE_LENGTH - 9))
    assert len(parse(ok).headers.get("Subject")) == MAX_LINE_LENGTH - 9
    reject(invite("Subject: " + "a" * MAX_LINE_LENGTH), "Header Too Long")
    folded = "Subject: a" + "\r\n a" * (MAX_LINE_LENGTH // 2)
    reject(invite(folded), "Header Too Long")
    reject(invite(uri="sip:" + "u" * MAX_LINE_LENGTH + "@h"), "Start Line Too Long")


@pytest.mark.parametrize("filler", [",", '"', "<", '\\"', ";", '",', "<,", "\\", " ,"])
def test_hostile_64k_values_are_linear(filler):
    """A 64 kB value of commas, quotes or brackets: one linear pass each (seconds if the
    scanning backtracked; the bound is generous, it only catches quadratic behaviour)."""
    value = filler * (65_000 // len(filler))
    h = Headers([("Contact", value), ("Via", value), ("Route", "<sip:a@h>," * 6000)])
    t0 = time.perf_counter()
    h.values("Contact")
    h.values("Via")
    assert len(h.values("Route")) == 6000
    for parser in (NameAddr.parse, Via.parse, URI.parse):
        with pytest.raises(SIPParseError):
            parser(value)
    with pytest.raises(SIPParseError):
        sipmsg.parse_params(value + "=")
    data = invite().replace(b"Max-Forwards: 70", ("Contact: " + value[:MAX_LINE_LENGTH - 20])
                            .encode())
    with pytest.raises(SIPParseError):
        parse(data)
    assert time.perf_counter() - t0 < 5.0


def test_many_continuation_lines_are_linear():
    data = invite("Subject: s" + "\r\n x" * 8000)
    t0 = time.perf_counter()
    assert len(parse(data).headers.get("Subject")) == 1 + 2 * 8000
    assert time.perf_counter() - t0 < 5.0


# ---------------------------------------------------------------- error_response

def test_error_response_for_malformed_request():
    data = invite(cseq="1 BYE").replace(b"Max-Forwards: 70", b"Max-Forwards: many")
    with pytest.raises(SIPParseError) as info:
        parse(data)
    out = error_response(data, info.value)
    resp = parse(out)
    assert isinstance(resp, Response)
    assert (resp.status, resp.reason) == (400, info.value.reason)
    req_lines = data.decode().split("\r\n")
    for name in ("Via", "From", "Call-ID", "CSeq"):
        assert resp.headers.get(name) == next(ln.split(": ", 1)[1] for ln in req_lines
                                              if ln.startswith(name + ":"))
    assert resp.to.uri == URI.parse("sip:+15550100@127.0.0.1") and resp.to.tag
    assert resp.body == b""


def test_error_response_status_and_compact_headers():
    data = (b"OPTIONS sip:h SIP/7.0\r\nv: SIP/2.0/UDP 1.2.3.4;branch=z9hG4bKq\r\n"
            b"f: <sip:a@h>;tag=1\r\nt: <sip:b@h>;tag=2\r\ni: q\r\nCSeq: 9 OPTIONS\r\n\r\n")
    err = reject(data, "Version Not Supported", 505)
    resp = parse(error_response(data, err))
    assert (resp.status, resp.reason, resp.to.tag, resp.call_id) == (505, err.reason, "2", "q")
    big = invite(body=b"x" * (MAX_MESSAGE_SIZE + 1))
    resp = parse(error_response(big, reject(big, status=513)))
    assert (resp.status, resp.reason) == (513, "Message Too Large")


@pytest.mark.parametrize("data", [
    b"", b"\x00\xff garbage", b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\nCSeq: x\r\n\r\n",
    invite(method="ACK", cseq="1 ACK").replace(b"Max-Forwards: 70", b"Max-Forwards: x"),
    invite().replace(b"Call-ID: c1@127.0.0.1\r\n", b""),
    invite().replace(b"Via: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK-a1;rport\r\n", b""),
    invite(cseq="1 ACK"),
])
def test_error_response_none_when_hopeless(data):
    assert error_response(data, SIPParseError("Whatever")) is None


def test_error_response_sanitises_reason():
    data = invite(cseq="1 BYE")
    out = error_response(data, SIPParseError("Bad\r\nVia: x\x00 thing" + "!" * 300))
    first = out.split(b"\r\n")[0]
    assert first.startswith(b"SIP/2.0 400 BadVia: x thing!!") and len(first) < 130
    assert parse(out).status == 400


# ---------------------------------------------------------------- TCP framing

def test_framer_byte_by_byte_with_keepalives():
    a = invite(body=b"first")
    b = built_request().encode()
    stream = b"\r\n\r\n" + a + b"\r\n" + b + b"\r\n\r\n"
    framer = StreamFramer()
    out: list[bytes] = []
    for i in range(len(stream)):
        out += framer.feed(stream[i:i + 1])
    assert out == [a, b] and framer.buffered == 0
    framer = StreamFramer()
    assert framer.feed(stream) == [a, b]


def test_framer_body_split_across_feeds():
    a = invite(body=b"0123456789")
    framer = StreamFramer()
    assert framer.feed(a[:-3]) == []
    assert framer.buffered == len(a) - 3
    assert framer.feed(a[-3:] + a[:5]) == [a]
    assert framer.feed(a[5:]) == [a]


@pytest.mark.parametrize("stream,reason,status", [
    (invite().replace(b"Content-Length: 0\r\n", b""), "Missing Content-Length", 400),
    (invite().replace(b"Content-Length: 0", b"Content-Length: x"), "Bad Content-Length", 400),
    (invite("l: 5"), "Duplicate Content-Length", 400),
    (invite().replace(b"Content-Length: 0", b"Content-Length: 70000"), "Message Too Large", 513),
    (b"INVITE sip:h SIP/2.0\r\nSubject: " + b"x" * (MAX_MESSAGE_SIZE + 10), "Message Too Large",
     513),
])
def test_framer_errors_are_sticky(stream, reason, status):
    framer = StreamFramer()
    with pytest.raises(SIPParseError) as info:
        for i in range(0, len(stream), 4096):
            framer.feed(stream[i:i + 4096])
    assert (info.value.reason, info.value.status) == (reason, status)
    with pytest.raises(SIPParseError):
        framer.feed(invite())


def test_framer_many_small_feeds_is_linear():
    """Feeding a 60 kB header in 1-byte pieces rescans only the new bytes."""
    big = invite("Subject: " + "s" * 15000, "X-A: " + "a" * 15000, "X-B: " + "b" * 15000)
    framer = StreamFramer()
    t0 = time.perf_counter()
    out = []
    for i in range(0, len(big), 3):
        out += framer.feed(big[i:i + 3])
    assert out == [big]
    assert time.perf_counter() - t0 < 10.0


# ---------------------------------------------------------------- sans-IO

def test_importing_loads_no_network_modules():
    """In a fresh interpreter (``time`` is loaded by the interpreter itself, so only the source
    check below can speak for it)."""
    import subprocess
    import sys
    code = ("import sys, xmfax.sip.message; "
            "print(sorted(m for m in ('socket', 'asyncio', 'selectors', 'ssl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_modules_import_no_io():
    for mod in (sipmsg, __import__("xmfax.sip.uri", fromlist=["x"])):
        tree = ast.parse(Path(mod.__file__).read_text())
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        assert not names & {"socket", "asyncio", "threading", "time", "select"}, mod


# ---------------------------------------------------------------- torture table
# Messages written for these tests in the spirit of RFC 4475: each is legal but unusual (must
# parse, with the checked reading) or broken in one way (must fail with that reason).

TORTURE_OK = {
    "odd case, tabs and spaces around colons": (
        msg("OPTIONS sip:h SIP/2.0", "vIA\t :  SIP/2.0/UDP h;branch=z9hG4bK1", "fROM:<sip:a@h>;tag=1",
            "TO :<sip:b@h>", "cALL-iD:\tx", "cseq : 1\t OPTIONS"),
        lambda m: m.cseq == (1, "OPTIONS") and m.call_id == "x" and m.to.tag is None),
    "user with escapes, ';' and '?' kept as written": (
        invite(uri="sip:%61lice;par=u%40h?x@example.com;lr"),
        lambda m: (m.uri.user, m.uri.host, m.uri.params) == ("%61lice;par=u%40h?x",
                                                             "example.com", {"lr": None})),
    "unknown method, matching CSeq": (
        invite(method="NEWMETHOD", cseq="8 NEWMETHOD"),
        lambda m: m.method == "NEWMETHOD" and m.cseq == (8, "NEWMETHOD")),
    "call-id with word characters": (
        invite().replace(b"Call-ID: c1@127.0.0.1", b'Call-ID: a<b>"c"\\d[e]{f}?/:g@[::1]'),
        lambda m: m.call_id == 'a<b>"c"\\d[e]{f}?/:g@[::1]'),
    "body holding NULs and CRLFCRLF": (
        invite("Content-Type: application/octet-stream", body=b"\x00\r\n\r\n\x00"),
        lambda m: m.body == b"\x00\r\n\r\n\x00"),
    "empty and unknown headers": (
        invite("Subject:", "X-Weird-Name.!%*_+`'~: a, \"b\"", "Unknown-Empty:"),
        lambda m: m.headers.get("subject") == "" and m.headers.values("x-weird-name.!%*_+`'~")
        == ['a, "b"']),
    "several Via fields and lists mixed": (
        msg("BYE sip:b@h SIP/2.0", "Via: SIP/2.0/UDP p1;branch=z9hG4bK1,SIP/2.0/TCP p2:5;branch=z9hG4bK2",
            "v: SIP/2.0/UDP [::1];branch=z9hG4bK3", "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2",
            "Call-ID: x", "CSeq: 3 BYE", "Route: <sip:p1;lr>,<sip:p2;lr>", "Route: <sip:p3;lr>"),
        lambda m: [v.branch for v in m.vias] == ["z9hG4bK1", "z9hG4bK2", "z9hG4bK3"]
        and [NameAddr.parse(r).uri.host for r in m.headers.values("Route")] == ["p1", "p2", "p3"]),
    "display names: quoted with escapes, unquoted tokens, none": (
        invite().replace(b'From: "Alice" <sip:alice@127.0.0.1:5070>;tag=f1',
                         b'From: "\\"A\\" B\\\\C" <sip:alice@h>;tag=f1').replace(
            b"To: <sip:+15550100@127.0.0.1>", b"To: Fax   Machine<sip:+15550100@h>"),
        lambda m: m.from_.display == '"A" B\\C' and m.to.display == "Fax Machine"),
    "tel URIs in P-Asserted-Identity and To": (
        invite("P-Asserted-Identity: <tel:+1-555-0100;phone-context=+1>, \"x\" <sip:+15550100@h>")
        .replace(b"To: <sip:+15550100@127.0.0.1>", b"To: <tel:+15550100>"),
        lambda m: m.to.uri.user == "+15550100" and m.to.uri.scheme == "tel"
        and NameAddr.parse(m.headers.values("P-Asserted-Identity")[0]).uri.params
        == {"phone-context": "+1"}),
    "Contact parameters, quoted value with ';' and ','": (
        invite('Contact: <sip:a@h>;expires=60;+sip.instance="<urn:uuid:a;b,c>";q=0.7'),
        lambda m: m.contacts[0].params == {"expires": "60", "+sip.instance": '"<urn:uuid:a;b,c>"',
                                           "q": "0.7"}),
    "response with a long reason and UTF-8": (
        msg("SIP/2.0 606 Not Acceptable: no T.38 — sorry", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
            "From: <sip:a@h>;tag=1", "To: <sip:b@h>;tag=2", "Call-ID: x", "CSeq: 1 INVITE"),
        lambda m: m.reason == "Not Acceptable: no T.38 — sorry"),
}

TORTURE_BAD = {
    "Request-URI with a space": (invite(uri="sip:a b@h"), "Bad Request Line"),
    "Request-URI IPv6 without brackets": (invite(uri="sip:2001:db8::1"), "Bad Host"),
    "unterminated display name": (
        invite().replace(b'From: "Alice"', b'From: "Alice'), "Bad Display Name"),
    "From without '>'": (invite().replace(b"5070>;tag=f1", b"5070;tag=f1"), "Bad Address"),
    "To with two URIs": (invite().replace(b"To: <sip:+15550100@127.0.0.1>",
                                          b"To: <sip:a@h>, <sip:b@h>"), "Bad Address"),
    "Via port not a number": (invite().replace(b"127.0.0.1:5070;branch", b"127.0.0.1:50x;branch"),
                              "Bad Port"),
    "Via of another protocol": (invite().replace(b"SIP/2.0/UDP", b"SIP/1.0/UDP"), "Bad Via"),
    "CSeq with two methods": (invite(cseq="1 INVITE INVITE"), "Bad CSeq"),
    "header line without a name": (invite().replace(b"Max-Forwards: 70", b": 70"), "Bad Header"),
    "space in a header name": (invite().replace(b"Max-Forwards", b"Max Forwards"), "Bad Header"),
    "body shorter than Content-Length": (invite(body=b"abc")[:-2], "Incomplete Body"),
    "Contact wildcard in INVITE": (invite("Contact: *"), "Bad Contact"),
    "Contact wildcard beside an address": (
        msg("REGISTER sip:reg SIP/2.0", "Via: SIP/2.0/UDP h;branch=z9hG4bK1",
            "From: <sip:u@reg>;tag=1", "To: <sip:u@reg>", "Call-ID: r", "CSeq: 1 REGISTER",
            "Contact: *, <sip:u@h>"), "Bad Contact"),
    "stray CR inside a header": (invite().replace(b"Max-Forwards: 70", b"Max-Forwards: 7\r0"),
                                 "Bad Character In Header"),
}


@pytest.mark.parametrize("case", sorted(TORTURE_OK))
def test_torture_valid(case):
    data, check = TORTURE_OK[case]
    m = parse(data)
    assert check(m), m
    assert parse(m.encode()) == m


@pytest.mark.parametrize("case", sorted(TORTURE_BAD))
def test_torture_invalid(case):
    data, reason = TORTURE_BAD[case]
    err = reject(data, reason)
    out = error_response(data, err)
    assert out is not None and out.startswith(b"SIP/2.0 400 " + reason.encode() + b"\r\n")


# ---------------------------------------------------------------- a real parser reads ours

def _sipp() -> str:
    import shutil
    path = shutil.which("sipp")
    if path is None:
        pytest.skip("sipp is not installed (Debian package sip-tester; scripts/install.sh --test)")
    return path


def _udp_socket():
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.3)
    return sock


def _stop(proc) -> None:
    import subprocess
    if proc.poll() is None:
        proc.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass


SDP_ANSWER = (b"v=0\r\no=xmfax 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
              b"m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")


@pytest.mark.interop
def test_sipp_uac_reads_our_responses(tmp_path):
    """sipp's built-in UAC calls a stateless answerer made of parse() and make_response():
    sipp only completes its call (exit 0) if it read every response we encoded."""
    import subprocess
    sipp = _sipp()
    sock = _udp_socket()
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sipp, "-sn", "uac", "-i", "127.0.0.1", "-m", "1", "-nostdin",
                             "-timeout", "20s", "-timeout_error", f"127.0.0.1:{port}"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                data, source = sock.recvfrom(65536)
            except TimeoutError:
                continue
            req = parse(data)
            assert isinstance(req, Request)
            seen.append(req.method)
            if req.method == "INVITE":
                ringing = make_response(req, 180, to_tag="xmfax1")
                ringing.headers.add("Contact", f"<sip:xmfax@127.0.0.1:{port}>")
                ok = make_response(req, 200, to_tag="xmfax1")
                ok.headers.add("Contact", f"<sip:xmfax@127.0.0.1:{port};transport=udp>")
                ok.headers.add("Content-Type", "application/sdp")
                ok.body = SDP_ANSWER
                sock.sendto(ringing.encode(), source)
                sock.sendto(ok.encode(), source)
            elif req.method == "BYE":
                assert req.to.tag == "xmfax1"
                sock.sendto(make_response(req, 200).encode(), source)
        assert proc.wait(timeout=10) == 0, seen
    finally:
        _stop(proc)
        sock.close()
    assert seen[0] == "INVITE" and "ACK" in seen and seen[-1] == "BYE"


@pytest.mark.interop
def test_sipp_uas_reads_our_requests(tmp_path):
    """sipp's built-in UAS answers INVITE, ACK and BYE that we built and encoded; its answers
    parse here, carry our branch and tags, and sipp ends its call cleanly (exit 0)."""
    import subprocess
    sipp = _sipp()
    probe = _udp_socket()
    sipp_port = probe.getsockname()[1]
    probe.close()
    sock = _udp_socket()
    port = sock.getsockname()[1]
    proc = subprocess.Popen([sipp, "-sn", "uas", "-i", "127.0.0.1", "-p", str(sipp_port),
                             "-m", "1", "-nostdin", "-timeout", "20s", "-timeout_error"],
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dest = ("127.0.0.1", sipp_port)
    call_id = new_call_id("127.0.0.1")
    from_tag = new_tag()

    def request(method: str, cseq: int, uri: URI, to_tag: str | None = None,
                body: bytes = b"") -> Request:
        h = Headers()
        h.add("Via", str(Via("UDP", "127.0.0.1", port, {"branch": new_branch(), "rport": None})))
        h.add("From", str(NameAddr(URI.parse(f"sip:xmfax@127.0.0.1:{port}"), "xmfax",
                                   {"tag": from_tag})))
        h.add("To", str(NameAddr(URI.parse(f"sip:service@127.0.0.1:{sipp_port}"), None,
                                 {"tag": to_tag} if to_tag else {})))
        h.add("Call-ID", call_id)
        h.add("CSeq", f"{cseq} {method}")
        h.add("Max-Forwards", "70")
        h.add("Contact", f"<sip:xmfax@127.0.0.1:{port}>")
        if body:
            h.add("Content-Type", "application/sdp")
        return Request(method, uri, h, body)

    def answers(until, limit: float = 10.0) -> Response:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            try:
                data, _ = sock.recvfrom(65536)
            except TimeoutError:
                continue
            m = parse(data)
            if isinstance(m, Response) and until(m):
                return m
        raise AssertionError("no answer from sipp")

    try:
        invite_req = request("INVITE", 1, URI.parse(f"sip:service@127.0.0.1:{sipp_port}"),
                             body=SDP_ANSWER)
        ok = None
        for _ in range(20):                      # until sipp listens (retransmit, §17.1.1.2)
            sock.sendto(invite_req.encode(), dest)
            try:
                ok = answers(lambda m: m.status == 200, limit=0.5)
                break
            except AssertionError:
                continue
        assert ok is not None, "sipp never answered the INVITE"
        assert ok.vias[0].branch == invite_req.vias[0].branch
        assert ok.from_.tag == from_tag and ok.to.tag and ok.call_id == call_id
        target = ok.contacts[0].uri
        assert target.transport == "udp"                 # INTEROP(sipp): "transport=UDP"
        sock.sendto(request("ACK", 1, target, ok.to.tag).encode(), dest)
        time.sleep(0.2)
        bye = request("BYE", 2, target, ok.to.tag)
        sock.sendto(bye.encode(), dest)
        done = answers(lambda m: m.cseq == (2, "BYE"))
        assert done.status == 200 and done.vias[0].branch == bye.vias[0].branch
        assert proc.wait(timeout=10) == 0
    finally:
        _stop(proc)
        sock.close()
