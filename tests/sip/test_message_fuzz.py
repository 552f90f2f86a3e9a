"""Real SIP messages (tests/sip/traces/*.sip, captured from sipp and Kamailio by
tests/sip/traces/capture.py) parsed whole, then mutated by hypothesis: byte flips, truncation,
duplicated, dropped and swapped lines, headers spliced in from other traces, folding, case
changes, stray separators. Whatever comes in, parse() returns a message or raises
SIPParseError, a parsed message encodes and parses back to itself, error_response() never
raises, and the TCP framer holds no more than one message's worth of bytes.

``load_traces()`` is meant for reuse (the transaction-layer fuzzing feeds the same traces):
``from sip.test_message_fuzz import load_traces`` from a test under tests/ (pytest puts tests/
on sys.path), or load this file by path.
"""
from __future__ import annotations

import time
from pathlib import Path

from hypothesis import given, settings, strategies as st

from xmfax.sip.message import (MAX_MESSAGE_SIZE, NameAddr, Request, Response, SIPParseError,
                               StreamFramer, URI, error_response, parse)

TRACES_DIR = Path(__file__).resolve().parent / "traces"


def load_traces() -> list[bytes]:
    """Every captured message (one .sip file each, exact octets), in file-name order."""
    return [p.read_bytes() for p in sorted(TRACES_DIR.glob("*.sip"))]


TRACES = load_traces()
NAMES = [p.name for p in sorted(TRACES_DIR.glob("*.sip"))]


# ---------------------------------------------------------------- the traces as captured

def test_there_are_traces_from_each_tool():
    prefixes = {n.split("-")[0] + "-" + n.split("-")[1] for n in NAMES}
    assert {"sipp-udp", "sipp-tcp", "kamailio-reg", "kamailio-inv", "baresip-udp"} <= prefixes
    assert len(TRACES) >= 20


def test_every_trace_parses_and_round_trips():
    for name, data in zip(NAMES, TRACES):
        m = parse(data)
        kind = name.split("-")[3].removesuffix(".sip")
        if kind.isdigit():
            assert isinstance(m, Response) and m.status == int(kind), name
        else:
            assert isinstance(m, Request) and m.method == kind, name
            assert m.cseq[1] == kind
        assert m.vias and m.call_id and m.from_.uri.host
        assert parse(m.encode()) == m, name
        # the encoded message is the captured one but for Content-Length's spacing
        # (sipp writes "Content-Length:   129")
        norm = data.replace(b"Content-Length:   ", b"Content-Length: ")
        assert m.encode() == norm, name


def test_trace_details():
    by_name = dict(zip(NAMES, TRACES))
    relayed = parse(next(d for n, d in by_name.items() if n.startswith("kamailio-inv")
                         and n.endswith("INVITE.sip") and b"Record-Route" in d))
    assert [v.host for v in relayed.vias] == ["127.0.0.1", "127.0.0.1"]
    assert relayed.vias[0].port != relayed.vias[1].port
    (rr,) = [NameAddr.parse(v) for v in relayed.headers.values("Record-Route")]
    assert "lr" in rr.uri.params and rr.uri.params["lr"] is None
    assert relayed.uri.transport == "udp" and relayed.uri.params["transport"] == "UDP"
    assert relayed.content_type == "application/sdp" and b"m=image" in relayed.body
    pai = [NameAddr.parse(v) for v in relayed.headers.values("P-Asserted-Identity")]
    assert [a.uri.scheme for a in pai] == ["sip", "tel"] and pai[1].uri.user == "+15550199"
    challenge = parse(next(d for n, d in by_name.items() if n.endswith("-401.sip")))
    assert challenge.headers.get("WWW-Authenticate").startswith("Digest ")
    assert challenge.to.tag
    proxy = parse(next(d for n, d in by_name.items() if n.endswith("-407.sip")))
    assert 'qop="auth"' in proxy.headers.get("Proxy-Authenticate")
    registered = parse(next(d for n, d in by_name.items() if n.startswith("kamailio-reg")
                            and n.endswith("-200.sip")))
    (contact,) = registered.contacts
    assert contact.params["expires"] and contact.uri.transport == "udp"
    refused = parse(by_name["baresip-udp-06-488.sip"])
    assert (refused.status, refused.cseq) == (488, (2, "INVITE"))
    (via,) = refused.vias                                       # RFC 3581: rport filled in
    assert via.params["rport"] == str(via.port) and via.params["received"] == "127.0.0.1"
    answered = parse(by_name["baresip-udp-03-200.sip"])
    assert answered.headers.values("Allow")[:3] == ["INVITE", "ACK", "BYE"]
    assert answered.contacts[0].uri.user.startswith("peer-")
    sipp_ok = parse(by_name["sipp-udp-03-200.sip"])
    assert sipp_ok.contacts[0].uri.user is None                 # sipp's Contact has no user
    assert sipp_ok.contacts[0].uri.transport == "udp"


def test_tcp_traces_through_the_framer():
    tcp = [d for n, d in zip(NAMES, TRACES) if n.startswith("sipp-tcp")]
    stream = b"\r\n\r\n".join(tcp)
    framer = StreamFramer()
    got: list[bytes] = []
    for i in range(0, len(stream), 97):
        got += framer.feed(stream[i:i + 97])
    # sipp's SDP bodies end without CRLF: each message ends exactly at Content-Length
    assert got == tcp


# ---------------------------------------------------------------- mutations

def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n")


@st.composite
def mutated(draw) -> bytes:
    data = draw(st.sampled_from(TRACES))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "dup_line", "drop_line", "swap_lines",
                                     "splice", "fold", "case", "insert", "repeat_header",
                                     "cl", "garbage_line"]))
        lines = _lines(data)
        n = len(lines)
        i = draw(st.integers(0, max(0, n - 1)))
        j = draw(st.integers(0, max(0, n - 1)))
        if kind == "flip" and data:
            pos = draw(st.integers(0, len(data) - 1))
            data = data[:pos] + bytes([draw(st.integers(0, 255))]) + data[pos + 1:]
        elif kind == "truncate":
            data = data[:draw(st.integers(0, len(data)))]
        elif kind == "dup_line":
            data = b"\r\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
        elif kind == "drop_line":
            data = b"\r\n".join(lines[:i] + lines[i + 1:])
        elif kind == "swap_lines":
            lines[i], lines[j] = lines[j], lines[i]
            data = b"\r\n".join(lines)
        elif kind == "splice":
            other = _lines(draw(st.sampled_from(TRACES)))
            k = draw(st.integers(0, len(other) - 1))
            data = b"\r\n".join(lines[:i] + [other[k]] + lines[i:])
        elif kind == "fold" and b":" in lines[i]:
            a, _, b = lines[i].partition(b":")
            ws = draw(st.sampled_from([b" ", b"\t", b"  \t"]))
            lines[i] = a + b":\r\n" + ws + b.lstrip()
            data = b"\r\n".join(lines)
        elif kind == "case":
            lines[i] = draw(st.sampled_from([lines[i].upper(), lines[i].lower(),
                                             lines[i].swapcase()]))
            data = b"\r\n".join(lines)
        elif kind == "insert":
            pos = draw(st.integers(0, len(data)))
            junk = draw(st.sampled_from([b",", b";", b'"', b"<", b">", b"\\", b"\r", b"\n",
                                         b"\x00", b"[", b"]", b":", b"@", b"%", b" ", b"\t",
                                         b"\r\n", b"\r\n\r\n", b"\xff\xfe", b"=", b"?",
                                         "é".encode()]))
            data = data[:pos] + junk * draw(st.integers(1, 3)) + data[pos:]
        elif kind == "repeat_header" and b":" in lines[i]:
            name, _, value = lines[i].partition(b":")
            count = draw(st.sampled_from([2, 3, 50, 200]))
            data = b"\r\n".join(lines[:i] + [name + b":" + b",".join([value] * count)]
                                + lines[i + 1:])
        elif kind == "cl":
            value = draw(st.sampled_from([b"0", b"1", b"99999", b"-5", b"", b"12a",
                                          b"4294967296", b"65536"]))
            data = b"\r\n".join(
                (b"Content-Length: " + value) if ln.lower().startswith(b"content-length")
                else ln for ln in lines)
        elif kind == "garbage_line":
            g = draw(st.binary(max_size=40))
            data = b"\r\n".join(lines[:i] + [g] + lines[i:])
    return data


def check_message(data: bytes) -> None:
    t0 = time.perf_counter()
    try:
        m = parse(data)
    except SIPParseError as exc:
        assert exc.reason and 300 <= exc.status <= 699
        out = error_response(data, exc)
        if out is not None:
            # a whole response with the right status line; its copied Via, From, To, Call-ID
            # and CSeq are the request's, malformed or not (the far end can match them)
            assert out.startswith(f"SIP/2.0 {exc.status} ".encode())
            assert StreamFramer().feed(out) == [out] and out.endswith(b"\r\n\r\n")
            assert len(out) <= len(data) + 200
            try:
                resp = parse(out)
            except SIPParseError:
                pass
            else:
                assert isinstance(resp, Response) and resp.status == exc.status
        return
    finally:
        # a generous bound: catches quadratic or exponential scanning, not a slow machine
        assert time.perf_counter() - t0 < 2.0
    assert isinstance(m, (Request, Response))
    again = parse(m.encode())
    assert again == m
    # every accessor either works or says SIPParseError
    for name in ("Route", "Record-Route", "P-Asserted-Identity", "Contact"):
        for value in m.headers.values(name):
            try:
                NameAddr.parse(value)
            except SIPParseError:
                pass
    if isinstance(m, Request):
        assert URI.parse(str(m.uri)) == m.uri


@settings(max_examples=400)
@given(mutated())
def test_mutated_traces_never_crash(data):
    check_message(data)


@settings(max_examples=100)
@given(st.binary(max_size=2000))
def test_random_bytes_never_crash(data):
    check_message(data)
    check_message(b"INVITE sip:a@b SIP/2.0\r\n" + data)


@settings(max_examples=150)
@given(st.lists(mutated(), min_size=1, max_size=4), st.integers(1, 5000))
def test_framer_on_mutated_streams(messages, chunk):
    stream = b"".join(messages)
    framer = StreamFramer()
    for i in range(0, len(stream), chunk):
        piece = stream[i:i + chunk]
        try:
            out = framer.feed(piece)
        except SIPParseError as exc:
            assert exc.status in (400, 513)
            return
        assert framer.buffered <= MAX_MESSAGE_SIZE + len(piece)
        for message in out:
            check_message(message)


# ---------------------------------------------------------------- generated valid values

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
tokens = st.text(_ALNUM + "-.!%*_+`'~", min_size=1, max_size=12)
labels = st.text(_ALNUM, min_size=1, max_size=8)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.tuples(*[st.integers(0, 0xFFFF)] * 8).map(
    lambda t: __import__("ipaddress").IPv6Address(
        ":".join(f"{x:x}" for x in t)).compressed)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.one_of(st.none(), st.integers(0, 65535))
users = st.text(_ALNUM + "-_.!~*'()&=+$,;?/", min_size=1, max_size=16) | st.from_regex(
    r"\+?[0-9]{3,15}", fullmatch=True)
param_values = st.one_of(st.none(), st.text(_ALNUM + "-_.!~*'()[]/:&+$", min_size=1,
                                             max_size=10))
uri_tokens = st.text(_ALNUM + "-.!*_+'~", min_size=1, max_size=12)   # no '`' in a URI
uri_params = st.dictionaries(uri_tokens.map(str.lower), param_values, max_size=4)
uri_headers = st.dictionaries(uri_tokens, st.text(_ALNUM + "-_.", max_size=8), max_size=2)


@st.composite
def uris(draw) -> URI:
    scheme = draw(st.sampled_from(["sip", "sips", "tel"]))
    if scheme == "tel":
        return URI("tel", draw(st.from_regex(r"\+[0-9]{4,15}", fullmatch=True)), None, "", None,
                   draw(uri_params))
    user = draw(st.one_of(st.none(), users))
    password = draw(st.one_of(st.none(), st.text(_ALNUM, min_size=1, max_size=8))) if user else None
    return URI(scheme, user, password, draw(hosts), draw(ports), draw(uri_params),
               draw(uri_headers))


header_params = st.dictionaries(tokens.map(str.lower), st.one_of(
    st.none(), tokens, st.text(_ALNUM + " ,;<>:@", max_size=10).map(
        lambda t: '"' + t + '"')), max_size=3)
displays = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cc", "Cs")),
                                        max_size=20))


@st.composite
def name_addrs(draw) -> NameAddr:
    return NameAddr(draw(uris()), draw(displays), draw(header_params))


@st.composite
def vias(draw) -> Via:
    from xmfax.sip.message import Via
    params = draw(st.dictionaries(tokens.map(str.lower), st.one_of(st.none(), tokens),
                                  max_size=3))
    return Via(draw(st.sampled_from(["UDP", "TCP", "TLS", "SCTP"])), draw(hosts), draw(ports),
               params)


@settings(max_examples=150)
@given(uris())
def test_generated_uris_round_trip(uri):
    assert URI.parse(str(uri)) == uri


@settings(max_examples=120)
@given(name_addrs())
def test_generated_name_addrs_round_trip(na):
    assert NameAddr.parse(str(na)) == na


@settings(max_examples=100)
@given(vias())
def test_generated_vias_round_trip(via):
    from xmfax.sip.message import Via
    assert Via.parse(str(via)) == via


@settings(max_examples=50)
@given(st.lists(vias(), min_size=1, max_size=4), name_addrs(), name_addrs(),
       st.lists(name_addrs(), max_size=3), st.integers(0, 2 ** 31 - 1), tokens,
       st.binary(max_size=300), st.booleans(), uris())
def test_generated_messages_round_trip(via_list, from_, to, contacts, number, call_id, body,
                                       fold, ruri):
    from xmfax.sip.message import Headers, Request
    if ruri.scheme == "tel":
        ruri = URI("sip", ruri.user, None, "h")
    h = Headers()
    for via in via_list:
        h.add("Via", str(via))
    h.add("From", str(from_))
    h.add("To", str(to))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{number} INVITE")
    if contacts:
        h.add("Contact", ", ".join(map(str, contacts)))
    req = Request("INVITE", ruri, h, body)
    data = req.encode()
    if fold:                                     # fold every header line in two (RFC 3261 §7.3.1)
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        data = b"\r\n".join([lines[0]] + [ln.replace(b": ", b":\r\n\t ", 1) for ln in lines[1:]]) \
            + b"\r\n\r\n" + rest
    if len(data) > MAX_MESSAGE_SIZE:
        return
    m = parse(data)
    assert m == req
    assert m.vias == via_list and m.from_ == from_ and m.to == to
    assert m.contacts == contacts and m.cseq == (number, "INVITE") and m.call_id == call_id
    assert m.body == body and m.uri == ruri
