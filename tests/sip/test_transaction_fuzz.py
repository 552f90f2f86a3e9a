"""Fuzzing the SIP transaction layer (xmfax/sip/transaction.py) with real messages (hypothesis).

The seeds are three exchanges captured from sipp 3.6 on loopback (``sipp -trace_msg``): its
built-in uac/uas call (INVITE/180/200/ACK/BYE/200), a REGISTER challenged with 401 then
accepted, and an INVITE cancelled after 180 (CANCEL/200/487/ACK); plus every trace of
tests/sip/traces (sipp over TCP, Kamailio's digest challenges, a record-routed INVITE).
Each step of a run delivers one of those messages -- its branch, CSeq, status, method, To
tag, Via sent-by or a header changed, or its bytes damaged -- from a random source, over UDP
or TCP, duplicated and in any order; or lets the TU answer a live server transaction, or
send a request; or moves the clock.

Invariants: receive(), handle_timer() and send_request() of a well-formed request never raise;
respond() raises LocalProtocolError exactly when §17 forbids the answer; the live
transactions stay under the cap; next_timer() is never in the past after handle_timer(now);
and once the TU has answered everything, 64*T1 + T4 of quiet leaves no transaction but INVITE
clients still waiting for a final response, which go at TimerConfig.invite_limit.
"""
from __future__ import annotations

import re

from hypothesis import event, given, settings, strategies as st

from xmfax.errors import LocalProtocolError
from xmfax.sip.message import SIPParseError, make_response, parse
from xmfax.sip.transaction import (
    TABLES, Kind, RequestReceived, ResponseReceived, ServerTransaction, State, TimerConfig,
    TransactionLayer, TransactionTimeout, classify,
)

from .test_message_fuzz import load_traces
from .test_transaction import A, B, InviteCall, Register

CALL = (
    # sent by sipp
    """\
INVITE sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>
Call-ID: 1-28481@127.0.0.1
CSeq: 1 INVITE
Contact: sip:sipp@127.0.0.1:15060
Max-Forwards: 70
Subject: Performance Test
Content-Type: application/sdp
Content-Length:   129

v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6004 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""",
    # received by sipp
    """\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>;tag=28477SIPpTag011
Call-ID: 1-28481@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:127.0.0.1:15070;transport=UDP>
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>;tag=28477SIPpTag011
Call-ID: 1-28481@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:127.0.0.1:15070;transport=UDP>
Content-Type: application/sdp
Content-Length:   129

v=0
o=user1 53655765 2353687637 IN IP4 127.0.0.1
s=-
c=IN IP4 127.0.0.1
t=0 0
m=audio 6000 RTP/AVP 0
a=rtpmap:0 PCMU/8000
""",
    # sent by sipp
    """\
ACK sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-5
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>;tag=28477SIPpTag011
Call-ID: 1-28481@127.0.0.1
CSeq: 1 ACK
Contact: sip:sipp@127.0.0.1:15060
Max-Forwards: 70
Subject: Performance Test
Content-Length: 0

""",
    # sent by sipp
    """\
BYE sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-7
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>;tag=28477SIPpTag011
Call-ID: 1-28481@127.0.0.1
CSeq: 2 BYE
Contact: sip:sipp@127.0.0.1:15060
Max-Forwards: 70
Subject: Performance Test
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28481-1-7
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28481SIPpTag001
To: 15550100 <sip:15550100@127.0.0.1:15070>;tag=28477SIPpTag011
Call-ID: 1-28481@127.0.0.1
CSeq: 2 BYE
Contact: <sip:127.0.0.1:15070;transport=UDP>
Content-Length: 0

""",
)
REGISTER_401 = (
    # sent by sipp
    """\
REGISTER sip:127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28657-1-0;rport
From: <sip:fax@127.0.0.1>;tag=28657SIPpTag001
To: <sip:fax@127.0.0.1>
Call-ID: 1-28657@127.0.0.1
CSeq: 1 REGISTER
Contact: <sip:fax@127.0.0.1:15060;transport=UDP>
Expires: 3600
Max-Forwards: 70
User-Agent: SIPp
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 401 Unauthorized
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28657-1-0;rport
From: <sip:fax@127.0.0.1>;tag=28657SIPpTag001
To: <sip:fax@127.0.0.1>;tag=28646SIPpTag011
Call-ID: 1-28657@127.0.0.1
CSeq: 1 REGISTER
WWW-Authenticate: Digest realm="xmfax.test", nonce="8b1f6c2d9e", algorithm=MD5, qop="auth"
Content-Length: 0

""",
    # sent by sipp
    """\
REGISTER sip:127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28657-1-2;rport
From: <sip:fax@127.0.0.1>;tag=28657SIPpTag001
To: <sip:fax@127.0.0.1>
Call-ID: 1-28657@127.0.0.1
CSeq: 2 REGISTER
Contact: <sip:fax@127.0.0.1:15060;transport=UDP>
Authorization: Digest username="fax",realm="xmfax.test",cnonce="6b8b4567",nc=00000001,qop=auth,uri="sip:127.0.0.1:15070",nonce="8b1f6c2d9e",response="23e8f33f376e092dabb0aec3175acf8e",algorithm=MD5
Expires: 3600
Max-Forwards: 70
User-Agent: SIPp
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28657-1-2;rport
From: <sip:fax@127.0.0.1>;tag=28657SIPpTag001
To: <sip:fax@127.0.0.1>;tag=28646SIPpTag011
Call-ID: 1-28657@127.0.0.1
CSeq: 2 REGISTER
Contact: <sip:fax@127.0.0.1:15060;transport=UDP>;expires=3600
Content-Length: 0

""",
)
CANCEL = (
    # sent by sipp
    """\
INVITE sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>
Call-ID: 1-28670@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:sipp@127.0.0.1:15060>
Route: <sip:127.0.0.1:15070;lr>
Max-Forwards: 70
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 100 Trying
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>
Call-ID: 1-28670@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 180 Ringing
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>;tag=28666SIPpTag011
Call-ID: 1-28670@127.0.0.1
CSeq: 1 INVITE
Contact: <sip:127.0.0.1:15070;transport=UDP>
Content-Length: 0

""",
    # sent by sipp
    """\
CANCEL sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>
Call-ID: 1-28670@127.0.0.1
CSeq: 1 CANCEL
Route: <sip:127.0.0.1:15070;lr>
Max-Forwards: 70
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 200 OK
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>;tag=28666SIPpTag011
Call-ID: 1-28670@127.0.0.1
CSeq: 1 CANCEL
Content-Length: 0

""",
    # received by sipp
    """\
SIP/2.0 487 Request Terminated
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>;tag=28666SIPpTag011
Call-ID: 1-28670@127.0.0.1
CSeq: 1 INVITE
Content-Length: 0

""",
    # sent by sipp
    """\
ACK sip:15550100@127.0.0.1:15070 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:15060;branch=z9hG4bK-28670-1-0
From: sipp <sip:sipp@127.0.0.1:15060>;tag=28670SIPpTag001
To: <sip:15550100@127.0.0.1:15070>;tag=28666SIPpTag011
Call-ID: 1-28670@127.0.0.1
CSeq: 1 ACK
Route: <sip:127.0.0.1:15070;lr>
Max-Forwards: 70
Content-Length: 0

""",
)


# ours below, and H1's (tests/sip/traces: sipp over UDP and TCP, Kamailio's 401/407 digest
# challenges and a record-routed T.38 INVITE with two Vias)
TRACES = [m.replace("\n", "\r\n").encode() for m in CALL + REGISTER_401 + CANCEL] + load_traces()
REQUESTS = [t for t in TRACES if not t.startswith(b"SIP/2.0")]
SOURCES = [("127.0.0.1", 15060), ("127.0.0.1", 15070), ("192.0.2.1", 5060), ("::1", 5060)]
TIMERS = TimerConfig()
QUIET = 64 * TIMERS.T1 + TIMERS.T4
STATUSES = [100, 180, 183, 200, 202, 302, 401, 407, 481, 486, 487, 488, 491, 500, 503, 603]


def test_the_captures_parse():
    for data in TRACES:
        message = parse(data)
        assert message.encode() and message.vias[0].branch.startswith("z9hG4bK")


def _replace_header(text: str, name: str, value: str | None) -> str:
    pattern = re.compile(rf"^{re.escape(name)}:[^\r\n]*\r\n", re.I | re.M)
    return pattern.sub("" if value is None else f"{name}: {value}\r\n", text, count=1)


@st.composite
def mutated(draw) -> bytes:
    data = draw(st.sampled_from(TRACES))
    text = data.decode()
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["branch", "cseq", "status", "method", "to_tag", "sent_by",
                                   "drop", "bytes", "rport"]))
        if op == "branch":
            branch = draw(st.sampled_from(["z9hG4bK-28481-1-0", "z9hG4bK-28670-1-0",
                                           "z9hG4bK-28657-1-2", "z9hG4bKother", "oldstyle",
                                           "Z9HG4BK-28481-1-0", ""]))
            text = re.sub(r"branch=[^;\r\n]*", f"branch={branch}" if branch else "", text, 1)
        elif op == "cseq":
            number = draw(st.sampled_from(["1", "2", "3", "0", "2147483647"]))
            text = re.sub(r"CSeq: \d+", f"CSeq: {number}", text, 1)
        elif op == "status" and text.startswith("SIP/2.0"):
            status = draw(st.sampled_from(STATUSES))
            text = re.sub(r"^SIP/2.0 \d+", f"SIP/2.0 {status}", text, 1)
        elif op == "method":
            method = draw(st.sampled_from(["INVITE", "ACK", "BYE", "CANCEL", "REGISTER",
                                           "OPTIONS", "PRACK"]))
            if text.startswith("SIP/2.0"):
                text = re.sub(r"CSeq: (\d+) \w+", rf"CSeq: \1 {method}", text, 1)
            else:
                text = re.sub(r"^\w+ ", f"{method} ", text, 1)
                if draw(st.booleans()):
                    text = re.sub(r"CSeq: (\d+) \w+", rf"CSeq: \1 {method}", text, 1)
        elif op == "to_tag":
            tag = draw(st.sampled_from(["", ";tag=x", ";tag=28477SIPpTag011"]))
            text = re.sub(r"(\r\nTo:[^\r\n]*?)(;tag=[^;\r\n]*)?\r\n",
                          lambda m: m.group(1) + tag + "\r\n", text, 1)
        elif op == "sent_by":
            port = draw(st.sampled_from(["15060", "5060", "1"]))
            text = re.sub(r"(Via: SIP/2.0/)UDP 127.0.0.1:\d+",
                          rf"\g<1>{draw(st.sampled_from(['UDP', 'TCP']))} 127.0.0.1:{port}",
                          text, 1)
        elif op == "drop":
            name = draw(st.sampled_from(["Via", "From", "To", "Call-ID", "CSeq", "Route",
                                         "Max-Forwards", "Contact"]))
            text = _replace_header(text, name, None)
        elif op == "rport":
            text = re.sub(r"(Via: [^\r\n]*)", r"\1;rport", text, 1)
        elif op == "bytes":
            raw = bytearray(text.encode("utf-8", "surrogateescape"))
            pos = draw(st.integers(0, len(raw) - 1))
            raw[pos:pos + draw(st.integers(0, 4))] = draw(st.binary(max_size=4))
            text = raw.decode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")


deliver = st.tuples(st.just("deliver"), mutated(), st.sampled_from(SOURCES),
                    st.sampled_from(["udp", "tcp", "UDP"]), st.integers(1, 3))
step = st.one_of(
    deliver, deliver, deliver,
    st.tuples(st.just("respond"), st.integers(0, 50), st.sampled_from(STATUSES)),
    st.tuples(st.just("send"), st.sampled_from(REQUESTS), st.sampled_from(["udp", "tcp"])),
    st.tuples(st.just("wait"), st.one_of(st.sampled_from([0.1, 0.2, 0.5, 1.0, 4.0, 32.0, 33.0]),
                                         st.floats(0.0, 40.0, allow_nan=False))),
)


def _answer(layer: TransactionLayer, txn: ServerTransaction, status: int, now: float) -> None:
    """The TU answers; respond() must raise exactly for the moves §17 forbids."""
    response = make_response(txn.request, status, to_tag="fuzz")
    legal = (txn.state is State.TERMINATED
             or (txn.state, classify(status)) in TABLES[txn.kind])
    try:
        layer.respond(txn, response, now)
    except LocalProtocolError:
        event("respond refused")
        assert not legal, f"{status} refused in {txn.state} of {txn.kind}"
    else:
        assert legal, f"{status} accepted in {txn.state} of {txn.kind}"


def _check_timers(layer: TransactionLayer, now: float) -> None:
    nxt = layer.next_timer()
    assert nxt is None or nxt > now


def _run(steps, max_transactions: int, prelude: bool) -> None:
    layer = TransactionLayer(TIMERS, max_transactions=max_transactions)
    now = 0.0
    servers: list[ServerTransaction] = []
    sent = 0
    if prelude:               # our side sent the captured requests: their responses match
        steps = [("send", data, "udp") for data in REQUESTS] + list(steps)
    for action, *args in steps:
        if action == "deliver":
            data, source, transport, copies = args
            try:
                message = parse(data)
            except SIPParseError:
                event("unparseable")
                continue                      # the UA answers those (message.error_response)
            servers_live = sum(isinstance(t, ServerTransaction) for t in layer.transactions())
            if servers_live >= max_transactions:
                event("servers at the cap")
            for _ in range(copies):
                events = layer.receive(message if copies == 1 else parse(data), source,
                                       transport, now)
                for got in events:
                    event(type(got).__name__)
                    if isinstance(got, RequestReceived) and got.transaction is not None:
                        servers.append(got.transaction)
        elif action == "respond":
            if servers:
                index, status = args
                _answer(layer, servers[index % len(servers)], status, now)
        elif action == "send":
            data, transport = args
            request = parse(data)
            if request.method == "ACK":
                layer.send_ack(request, ("127.0.0.1", 15070), transport)
            else:
                try:
                    layer.send_request(request, ("127.0.0.1", 15070), transport, now)
                    sent += 1
                except LocalProtocolError:
                    assert any(t.id == (request.vias[0].branch, request.method)
                               for t in layer.transactions())     # only a branch in use
        else:
            now += args[0]
            for got in layer.handle_timer(now):
                event(type(got).__name__)
            _check_timers(layer, now)
        layer.outgoing()
        servers_live = sum(isinstance(t, ServerTransaction) for t in layer.transactions())
        assert servers_live <= max_transactions
        assert len(layer) <= max_transactions + sent

    # the TU answers every transaction still waiting, then the line goes quiet
    for txn in [t for t in layer.transactions() if isinstance(t, ServerTransaction)]:
        if txn.state in (State.TRYING, State.PROCEEDING):
            _answer(layer, txn, 486 if txn.kind is Kind.INVITE_SERVER else 200, now)
    end = now + QUIET
    while (t := layer.next_timer()) is not None and t <= end:
        layer.handle_timer(t)
        _check_timers(layer, t)
    left = layer.transactions()
    assert all(t.kind is Kind.INVITE_CLIENT and t.state is State.PROCEEDING for t in left), left
    event(f"left after quiet: {len(left)}")
    for name, count in layer.stats.items():
        event(f"stats {name}")
    while (t := layer.next_timer()) is not None:
        assert t <= now + TIMERS.invite_limit
        layer.handle_timer(t)
    assert len(layer) == 0 and layer.next_timer() is None


@settings(max_examples=200)
@given(st.lists(step, min_size=4, max_size=50), st.booleans())
def test_transaction_layer_takes_mutated_real_traffic(steps, prelude):
    _run(steps, max_transactions=10_000, prelude=prelude)


@settings(max_examples=100)
@given(st.lists(step, min_size=8, max_size=80), st.booleans(), st.integers(1, 3))
def test_transaction_layer_stays_under_a_small_cap(steps, prelude, cap):
    _run(steps, max_transactions=cap, prelude=prelude)


def _faulty(link_class, faults):
    """A two-layer exchange whose n-th datagram is lost ("drop"), doubled ("dup") or
    delivered once ("ok") as ``faults`` says (past its end: delivered)."""

    class Faulty(link_class):
        def transfer(self):
            moved = False
            for layer, peer, source in ((self.client, self.server, A),
                                        (self.server, self.client, B)):
                for out in layer.outgoing():
                    moved = True
                    fate = faults.pop(0) if faults else "ok"
                    for _ in range({"drop": 0, "ok": 1, "dup": 2}[fate]):
                        self.on_events(peer, peer.receive(parse(out.data), source,
                                                          out.transport, self.now))
            return moved

    return Faulty()


fates = st.lists(st.sampled_from(["ok", "ok", "drop", "dup"]), max_size=30)


@settings(max_examples=150)
@given(fates)
def test_invite_200_ack_under_any_loss_and_duplication(faults):
    call = _faulty(InviteCall, list(faults))
    call.run(until=400.0)
    invites = [e for e in call.server_events if isinstance(e, RequestReceived)
               and e.request.method == "INVITE"]
    assert len(invites) <= 1                                   # never two calls
    oks = [e for e in call.client_events if isinstance(e, ResponseReceived)]
    assert [e.retransmission for e in oks] == ([False] + [True] * (len(oks) - 1) if oks else [])
    timed_out = any(isinstance(e, TransactionTimeout) for e in call.client_events)
    event("call completed" if call.acked else "timed out" if timed_out else "no ACK")
    if oks:
        assert invites and call.ok_txn is invites[0].transaction
    assert len(call.client) == 0 and len(call.server) == 0    # nothing leaks


@settings(max_examples=150)
@given(fates)
def test_register_401_200_under_any_loss_and_duplication(faults):
    reg = _faulty(Register, list(faults))
    reg.run(until=400.0)
    finals = [e.response.status for e in reg.client_events if isinstance(e, ResponseReceived)]
    assert finals in ([], [401], [401, 200])                   # each passed up at most once
    requests = [e.request.cseq[0] for e in reg.server_events if isinstance(e, RequestReceived)]
    assert requests in ([], [1], [1, 2])                       # retransmissions absorbed
    event(f"finals {finals}")
    assert len(reg.client) == 0 and len(reg.server) == 0
