"""The user agent under loss, duplication and reordering (fake clock), behind record-routing
proxies (route sets), and given odd or hostile requests: OPTIONS, unknown dialogs and
methods, malformed INVITEs, too many calls."""
from __future__ import annotations

from xmfax.sip.events import Answered, CallEnded, IncomingCall, MediaChanged, SipMessage
from xmfax.sip.message import parse

from .uapair import LOCAL, Network, Proxy, starts

A, B, P1, P2 = 5060, 5070, 5100, 5110
B_URI = f"sip:+15550100@{LOCAL}:{B}"


def pair(a=None, b=None):
    net = Network()
    ua_a = net.ua("a", A, **{"t38_switch_after": None, **(a or {})})
    ua_b = net.ua("b", B, **{"t38_switch_after": None, **(b or {})})
    return net, ua_a, ua_b


def place(net, a, b, *, answer_delay=0.0, t38=(4002, 6002)):
    cid = a.invite(B_URI, audio_port=4000, t38_port=t38[0], now=net.now)
    net.run(answer_delay + 0.001)
    b.answer(cid, audio_port=6000, t38_port=t38[1], now=net.now)
    return cid


def ok_with_sdp(p):
    return p.first_line.startswith("SIP/2.0 200") and b"INVITE" in p.data.split(b"CSeq:")[1][:20]


def test_lost_invite_is_retransmitted_after_t1():
    net, a, b = pair()
    dropped = net.drop_nth(starts("INVITE"))
    a.invite(B_URI, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.4)
    assert len(dropped) == 1 and not net.of("b", IncomingCall)
    net.run(0.2)
    (inc,) = net.of("b", IncomingCall)
    assert 0.49 < inc.time < 0.51                   # Timer A = T1


def test_lost_200_is_retransmitted_and_acked():
    net, a, b = pair()
    dropped = net.drop_nth(ok_with_sdp)
    cid = place(net, a, b)
    net.run(0.4)
    assert len(dropped) == 1 and not net.of("a", Answered) and not net.of("b", Answered)
    net.run(0.2)
    (ans_a,), (ans_b,) = net.of("a", Answered), net.of("b", Answered)
    assert 0.49 < ans_a.time < 0.52 and ans_b.time == ans_a.time
    net.run(40.0)
    assert b.call(cid).state == a.call(cid).state == "confirmed"
    assert sum(1 for p in net.sent if p.first_line.startswith("ACK")) == 1


def test_lost_ack_the_2xx_comes_again_until_it_arrives():
    net, a, b = pair()
    dropped = net.drop_nth(starts("ACK"), n=2)
    cid = place(net, a, b)
    net.run(0.01)
    assert len(net.of("a", Answered)) == 1 and not net.of("b", Answered)
    net.run(2.0)
    (ans_b,) = net.of("b", Answered)
    assert 1.49 < ans_b.time < 1.52                 # 2xx again at T1 and 3*T1; 3rd ACK gets through
    assert len(dropped) == 2
    acks = [p for p in net.sent if p.first_line.startswith("ACK")]
    assert len(acks) == 3 and len({p.data for p in acks}) == 1   # the same ACK each time
    net.run(40.0)
    assert b.call(cid).state == "confirmed" and not net.of("b", CallEnded)


def test_no_ack_at_all_bye_after_64_t1():
    net, a, b = pair()
    net.filters.append(lambda p: "drop" if p.first_line.startswith("ACK") else None)
    cid = place(net, a, b)
    net.run(31.0)
    assert not net.of("b", CallEnded)
    net.run(2.0)
    (eb,) = net.of("b", CallEnded)
    assert (eb.reason, eb.by, eb.status) == ("no_ack", "local", None)
    assert 31.9 < eb.time < 32.1
    (ea,) = net.of("a", CallEnded)
    assert (ea.reason, ea.by) == ("hangup", "remote")
    oks = [p.at for p in net.sent if ok_with_sdp(p) and p.src == (LOCAL, B)]
    gaps = [round(y - x, 3) for x, y in zip(oks, oks[1:])]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and max(gaps) == 4.0   # T1 doubling to T2
    net.settle()
    assert a.idle and b.idle and not net.of("b", Answered)


def test_packets_duplicated_and_delayed():
    net, a, b = pair(b={"t38_switch_after": 0.5})
    count = iter(range(10 ** 6))

    def chaos(packet):      # every other packet twice; of the rest, one in three 0.2 s late
        n = next(count)
        return "dup" if n % 2 == 0 else (0.2 if n % 3 == 1 else None)
    net.filters.append(chaos)
    cid = place(net, a, b)
    net.run(2.0)
    assert len(net.of("a", Answered)) == len(net.of("b", Answered)) == 1
    assert [m.by for m in net.of("b", MediaChanged)] == ["local"]
    assert [m.by for m in net.of("a", MediaChanged)] == ["remote"]
    a.hangup(cid, net.now)
    net.run(1.0)
    assert len(net.of("a", CallEnded)) == len(net.of("b", CallEnded)) == 1
    net.settle()
    assert a.idle and b.idle and a.errors == [] and b.errors == []


def test_reordered_bye_before_ack():
    net, a, b = pair()
    net.filters.append(lambda p: 0.05 if p.first_line.startswith("ACK") else None)
    cid = place(net, a, b)
    net.run(0.001)
    a.hangup(cid, net.now)                  # the BYE overtakes the delayed ACK
    net.run(1.0)
    assert [(e.reason, e.by) for e in net.of("b", CallEnded)] == [("hangup", "remote")]
    net.settle()
    assert a.idle and b.idle and a.errors == [] and b.errors == []


# ------------------------------------------------------------------ route sets
def proxied():
    net = Network()
    a = net.ua("a", A, outbound_proxy=(LOCAL, P1), t38_switch_after=None)
    b = net.ua("b", B, t38_switch_after=0.5)
    p1 = net.add("p1", Proxy(), (LOCAL, P1))
    p2 = net.add("p2", Proxy(), (LOCAL, P2))
    p1.next_hop = (LOCAL, P2)
    return net, a, b, p1, p2


def test_route_set_from_record_route():
    net, a, b, p1, p2 = proxied()
    cid = place(net, a, b)
    net.run(1.0)
    assert net.of("a", Answered) and net.of("b", MediaChanged)
    rr1, rr2 = f"<sip:{LOCAL}:{P1};lr>", f"<sip:{LOCAL}:{P2};lr>"
    assert a.call(cid).route_set == (rr1, rr2)
    assert b.call(cid).route_set == (rr2, rr1)
    assert a.call(cid).remote_target == f"sip:xmfax@{LOCAL}:{B}"
    a.hangup(cid, net.now)
    net.run(0.1)
    # in-dialog requests: Route in order, sent to the first route
    for src, first, routes in (((LOCAL, A), P1, [rr1, rr2]), ((LOCAL, B), P2, [rr2, rr1])):
        for p in net.sent:
            if p.src == src and p.first_line.split()[0] in ("ACK", "BYE", "INVITE") \
                    and parse(p.data).to.tag is not None:
                assert p.dest == (LOCAL, first), p.first_line
                assert parse(p.data).headers.values("Route") == routes
    assert any(p.first_line.startswith("BYE") and p.src == (LOCAL, A) for p in net.sent)
    assert [e.reason for e in net.of("b", CallEnded)] == ["hangup"]
    # b's re-INVITE went through both proxies, in order
    reinvite = [m for m in p2.seen if m.method == "INVITE" and m.to.tag is not None]
    assert reinvite and [m for m in p1.seen if m.method == "INVITE" and m.to.tag is not None]


def test_strict_router_refused_with_a_clear_detail():
    from .test_ua_failures import answer_sdp
    from .uapair import FarEnd, contact_of

    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 200, body=answer_sdp(request), headers=(
                ("Record-Route", f"<sip:{LOCAL}:{B}>"), ("Contact", contact_of(far.address))))]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net = Network()
    a = net.ua("a", A)
    far = net.add("far", FarEnd(script), (LOCAL, B))
    a.invite(B_URI, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert ended.reason == "rejected" and "strict router" in ended.detail
    assert not net.of("a", Answered)
    assert len(far.requests("ACK")) == 1 and len(far.requests("BYE")) == 1


def test_strict_router_on_the_way_in_is_refused_too():
    net = Network()
    a = net.ua("a", A, outbound_proxy=(LOCAL, P1))
    b = net.ua("b", B)
    net.add("p1", Proxy(strict=True), (LOCAL, P1))
    a.invite(B_URI, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.status) == ("rejected", 400)
    assert "Strict Routing" in ended.detail and not net.of("b", IncomingCall)


# ------------------------------------------------------------------ odd requests
def raw(method: str, *, to_tag: str | None = None, call_id: str = "cid-1@x", extra: str = "",
        body: str = "", port: int = 5999, cseq: int = 1) -> bytes:
    to = f"<sip:xmfax@{LOCAL}:{A}>" + (f";tag={to_tag}" if to_tag else "")
    head = (f"{method} sip:xmfax@{LOCAL}:{A} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCAL}:{port};branch=z9hG4bK{method.lower()}{call_id[:4]}{cseq}\r\n"
            f"Max-Forwards: 70\r\nFrom: <sip:x@{LOCAL}>;tag=ft\r\nTo: {to}\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} {method}\r\n{extra}")
    return (head + f"Content-Length: {len(body)}\r\n\r\n{body}").encode()


class Probe:
    """A bare address that keeps what it is sent (``got``: parsed; ``raw``: the bytes)."""
    def __init__(self):
        self.got = []
        self.raw = []

    def receive(self, data, source, transport, now):
        self.raw.append(data)
        try:
            self.got.append(parse(data))
        except ValueError:      # e.g. our 400 echoing the bad CSeq it complains about
            self.got.append(None)

    @property
    def statuses(self):
        return [int(d.split(b" ", 2)[1]) for d in self.raw if d.startswith(b"SIP/2.0 ")]

    def outgoing(self):
        return []

    def next_timer(self):
        return None

    def handle_timer(self, now):
        pass


def one_ua(**config):
    net = Network()
    ua = net.ua("a", A, **config)
    probe = net.add("probe", Probe(), (LOCAL, 5999))
    return net, ua, probe


def send(net, ua, data: bytes):
    ua.receive(data, (LOCAL, 5999), "udp", net.now)
    net.run(0.01)


def test_options_answered_out_of_dialog():
    net, ua, probe = one_ua()
    send(net, ua, raw("OPTIONS"))
    (resp,) = probe.got
    assert resp.status == 200
    assert "INVITE" in resp.headers.get("Allow") and "OPTIONS" in resp.headers.get("Allow")
    assert resp.headers.get("Accept") == "application/sdp"
    assert resp.to.tag is not None


def test_options_in_dialog_and_unknown_dialog_481():
    net, a, b = pair()
    cid = place(net, a, b)
    net.run(0.1)
    probe = net.add("probe", Probe(), (LOCAL, 5999))
    info = b.call(cid)
    # a stranger's BYE for a dialog that does not exist
    send(net, b, raw("BYE", to_tag="nosuchtag", call_id=cid))
    send(net, b, raw("BYE", to_tag="nosuchtag", call_id="other@x"))
    send(net, b, raw("BYE", call_id="other2@x"))
    assert [r.status for r in probe.got] == [481, 481, 481]
    assert b.call(cid).state == info.state == "confirmed"
    assert not net.of("b", CallEnded)


def test_unknown_method_405_with_allow():
    net, ua, probe = one_ua()
    send(net, ua, raw("SUBSCRIBE"))
    (resp,) = probe.got
    assert resp.status == 405 and "BYE" in resp.headers.get("Allow")


def test_malformed_invite_400_and_the_ua_carries_on():
    net, a, b = pair()
    probe = net.add("probe", Probe(), (LOCAL, 5999))
    good = raw("INVITE", call_id="c1@x")
    hostile = [
        good.replace(b"Call-ID: c1@x\r\n", b""),                    # nothing to answer with
        b"\x00\xffgarbage\r\n\r\n",
        good.replace(b"Max-Forwards: 70", b"Max-Forwards: lots"),
        good.replace(b"SIP/2.0\r\n", b"SIP/3.0\r\n", 1),
        raw("INVITE", call_id="c2@x").replace(b"CSeq: 1 INVITE", b"CSeq: x INVITE"),
        raw("INVITE", call_id="c3@x", extra="Content-Type: application/sdp\r\n",
            body="v=0\r\nthis is not sdp\r\n"),
    ]
    for data in hostile:
        b.receive(data, (LOCAL, 5999), "udp", net.now)
    net.run(0.01)
    assert probe.statuses == [400, 505, 400, 400]
    reasons = [d.split(b"\r\n")[0] for d in probe.raw]
    assert b"Max-Forwards" in reasons[0] and b"CSeq" in reasons[2] and b"SDP" in reasons[3]
    assert b.dropped == 2 and b.errors == []
    assert not net.of("b", IncomingCall)
    assert sum("(malformed" in m.summary for m in net.of("b", SipMessage)) == 5
    place(net, a, b)                    # and a real call still works
    net.run(0.1)
    assert net.of("a", Answered) and net.of("b", Answered)


def test_too_many_calls_503():
    net, a, b = pair(b={"max_calls": 2})
    for _ in range(3):
        a.invite(B_URI, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    assert len(net.of("b", IncomingCall)) == 2
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.status) == ("unavailable", 503)


def test_incoming_headers_redact_credentials():
    net, ua, probe = one_ua()
    sdp = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=image 7002 udptl t38\r\n")
    secret = 'Digest username="u", realm="r", nonce="n", uri="sip:a", response="deadbeef00"'
    send(net, ua, raw("INVITE", extra=f"Content-Type: application/sdp\r\n"
                      f"Authorization: {secret}\r\nP-Asserted-Identity: <sip:+4930123@x>\r\n",
                      body=sdp))
    (inc,) = net.of("a", IncomingCall)
    assert inc.ani == "+4930123" and inc.dnis == "xmfax" and inc.offer == ("t38",)
    assert "deadbeef00" not in repr(inc) and "deadbeef00" not in repr(net.of("a"))
    assert dict(inc.headers)["Authorization"].startswith("Digest")
    assert [r.status for r in probe.got] == [100]
    ua.reject(inc.call_id, 486, None, net.now)
    net.run(0.01)
    assert probe.got[-1].status == 486
    assert [(e.reason, e.by) for e in net.of("a", CallEnded)] == [("busy", "local")]



# ------------------------------------------------------------------ offers in the 2xx
SDP_T38 = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=image 7002 udptl t38\r\na=T38FaxVersion:0\r\n")


def test_invite_without_offer_gets_ours_in_the_2xx_and_the_answer_in_the_ack():
    net, ua, probe = one_ua()
    send(net, ua, raw("INVITE", call_id="late@x"))
    (inc,) = net.of("a", IncomingCall)
    assert inc.offer == ()
    ua.answer("late@x", audio_port=4000, t38_port=4002, now=net.now)
    net.run(0.01)
    ok = probe.got[-1]
    assert ok.status == 200 and ok.content_type == "application/sdp"
    from xmfax.sip import sdp as sdpmod
    assert sdpmod.offer_kinds(sdpmod.SessionDescription.parse(ok.body)) == ("audio", "t38")
    answer = SDP_T38.replace("m=image 7002", "m=audio 0 RTP/AVP 0\r\nm=image 7002")
    ack = raw("ACK", to_tag=ok.to.tag, call_id="late@x",
              extra="Content-Type: application/sdp\r\n", body=answer)
    send(net, ua, ack)
    (answered,) = net.of("a", Answered)
    assert answered.media.kind == "t38" and answered.media.remote == (LOCAL, 7002)
    assert ua.call("late@x").t38_switch["by"] == "offer"


def test_invite_without_offer_and_ack_without_answer_ends_the_call():
    net, ua, probe = one_ua()
    send(net, ua, raw("INVITE", call_id="late2@x"))
    ua.answer("late2@x", audio_port=4000, t38_port=None, now=net.now)
    net.run(0.01)
    send(net, ua, raw("ACK", to_tag=probe.got[-1].to.tag, call_id="late2@x"))
    (ended,) = net.of("a", CallEnded)
    assert ended.reason == "not_acceptable" and "ACK" in ended.detail
    assert probe.got[-1].method == "BYE"
    assert not net.of("a", Answered)


def test_reinvite_without_offer_is_a_refresh():
    net, a, b = pair()
    cid = place(net, a, b)
    net.run(0.1)
    probe = net.add("probe", Probe(), (LOCAL, 5999))
    ok = next(p.message() for p in net.sent if ok_with_sdp(p))
    a_tag = ok.from_.tag.encode()

    def in_dialog(method, **kw):        # as if from a (its tag), sent from the probe's port
        return raw(method, to_tag=ok.to.tag, call_id=cid, cseq=5, **kw) \
            .replace(b"tag=ft", b"tag=" + a_tag)
    send(net, b, in_dialog("INVITE"))
    ok2 = probe.got[-1]
    assert ok2.status == 200 and ok2.content_type == "application/sdp"
    first_invite = next(p.message() for p in net.sent if p.first_line.startswith("INVITE"))
    send(net, b, in_dialog("ACK", extra="Content-Type: application/sdp\r\n",
                           body=first_invite.body.decode()))
    net.run(5.0)
    assert [r.status for r in probe.got] == [200]          # ACKed: no 2xx retransmission
    assert not net.of("b", MediaChanged) and not net.of("b", CallEnded)
    assert b.call(cid).state == "confirmed" and b.call(cid).media.kind == "audio"


def test_dnis_from_to_when_retargeted_to_our_contact():
    net, ua, probe = one_ua()
    invite = raw("INVITE", call_id="rt@x", extra="Content-Type: application/sdp\r\n",
                 body=SDP_T38).replace(b"To: <sip:xmfax@", b"To: <sip:+15550100@")
    send(net, ua, invite)       # Request-URI sip:xmfax@... (our Contact), To: the number
    (inc,) = net.of("a", IncomingCall)
    assert inc.dnis == "+15550100" and inc.ani == "x"


def test_options_says_supported_and_sips_targets_are_refused():
    import pytest
    from xmfax.errors import LocalProtocolError
    net, ua, probe = one_ua()
    send(net, ua, raw("OPTIONS"))
    assert "Supported" in probe.got[0].headers
    with pytest.raises(LocalProtocolError, match="TLS"):
        ua.invite(f"sips:1@{LOCAL}", audio_port=4000, t38_port=None, now=net.now)
    with pytest.raises(LocalProtocolError):
        ua.invite("mailto:x@y", audio_port=4000, t38_port=None, now=net.now)
    with pytest.raises(LocalProtocolError):
        ua.invite(f"sip:1@{LOCAL}", audio_port=None, t38_port=None, now=net.now)
    assert ua.settled and ua.errors == []


def test_inbound_through_a_strict_router_is_refused():
    net, ua, probe = one_ua()
    send(net, ua, raw("INVITE", call_id="sr@x", body=SDP_T38,
                      extra="Content-Type: application/sdp\r\n"
                            f"Record-Route: <sip:{LOCAL}:5999>\r\n"))
    assert probe.statuses == [400] and b"Strict Routing" in probe.raw[0]
    assert not net.of("a", IncomingCall) and ua.settled


def test_cancel_after_our_final_answer_gets_200_and_changes_nothing():
    net, ua, probe = one_ua()
    invite = raw("INVITE", call_id="cx@x", body=SDP_T38, extra="Content-Type: application/sdp\r\n")
    send(net, ua, invite)
    ua.reject("cx@x", 486, None, net.now)
    net.run(0.01)
    cancel = invite.replace(b"INVITE sip:", b"CANCEL sip:", 1).replace(b"1 INVITE", b"1 CANCEL") \
        .split(b"Content-Type")[0] + b"Content-Length: 0\r\n\r\n"
    send(net, ua, cancel)
    assert probe.statuses == [100, 486, 200]
    assert probe.got[1].to.tag == probe.got[2].to.tag
    assert [e.reason for e in net.of("a", CallEnded)] == ["busy"]
    send(net, ua, cancel.replace(b"branch=z9hG4bK", b"branch=z9hG4bKother"))
    assert probe.statuses[-1] == 481                 # a CANCEL that matches no INVITE


def test_a_call_the_driver_never_answers_ends_with_480():
    from xmfax.sip.transaction import TimerConfig
    net = Network()
    ua = net.ua("a", A, timers=TimerConfig(invite_limit=20.0))
    probe = net.add("probe", Probe(), (LOCAL, 5999))
    send(net, ua, raw("INVITE", call_id="na@x", body=SDP_T38,
                      extra="Content-Type: application/sdp\r\n"))
    assert net.of("a", IncomingCall)
    net.run(25.0)
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.status) == ("timeout", 480)
    assert probe.statuses == [100, 480] and ua.settled and ua.errors == []


def test_lost_reinvite_and_lost_200_to_it():
    net, a, b = pair(a={"t38_switch_after": 0.5})
    place(net, a, b)
    net.run(0.01)
    lost_invite = net.drop_nth(lambda p: p.first_line.startswith("INVITE") and p.at > 0.1)
    lost_ok = net.drop_nth(lambda p: p.first_line.startswith("SIP/2.0 200") and p.at > 0.1
                           and b"(SDP" not in p.data and b"m=image" in p.data)
    net.run(3.0)
    assert len(lost_invite) == 1 and len(lost_ok) == 1
    (mc_a,), (mc_b,) = net.of("a", MediaChanged), net.of("b", MediaChanged)
    assert mc_a.media.kind == mc_b.media.kind == "t38"
    assert 1.0 < mc_a.time < 1.6                    # re-INVITE again at +T1, its 200 at +T1
    assert sum(1 for p in net.sent if p.first_line.startswith("ACK")) == 2   # initial + re
