"""The SIP user agent, two of them joined in memory on a fake clock (tests/sip/uapair.py):
calls both ways, T.38 offered directly or switched to by re-INVITE from either side, glare,
488 to a re-INVITE, CANCEL, BYE, the SDP versions."""
from __future__ import annotations

import pytest

from xmfax.sip import sdp as sdpmod
from xmfax.sip.events import (Answered, CallEnded, CallProgress, IncomingCall, MediaChanged,
                              MediaRefused, SipMessage)
from xmfax.t38.config import T38Config

from .uapair import LOCAL, Network, starts

A_PORT, B_PORT = 5060, 5070
B_URI = f"sip:+15550100@{LOCAL}:{B_PORT}"


def pair(a: dict | None = None, b: dict | None = None) -> tuple[Network, object, object]:
    net = Network()
    ua_a = net.ua("a", A_PORT, **(a or {}))
    ua_b = net.ua("b", B_PORT, **(b or {}))
    return net, ua_a, ua_b


def call(net: Network, a, b, *, audio=(4000, 6000), t38=(4002, 6002), ring=False,
         answer=True):
    """a calls b; b answers with its ports. Returns the Call-ID."""
    call_id = a.invite(B_URI, audio_port=audio[0], t38_port=t38[0], now=net.now)
    net.run(0.01)
    incoming = net.of("b", IncomingCall)
    assert incoming and incoming[-1].call_id == call_id
    if ring:
        b.ringing(call_id, net.now)
        net.run(0.01)
    if answer:
        b.answer(call_id, audio_port=audio[1], t38_port=t38[1], now=net.now)
        net.run(0.01)
    return call_id


def ended(net: Network, name: str) -> list[CallEnded]:
    return net.of(name, CallEnded)


def test_t38_offered_directly_caller_hangs_up():
    net, a, b = pair(a={"offer": "t38"})
    cid = call(net, a, b)
    (ans_a,), (ans_b,) = net.of("a", Answered), net.of("b", Answered)
    assert ans_a.media.kind == ans_b.media.kind == "t38"
    assert ans_a.media.remote == (LOCAL, 6002) and ans_b.media.remote == (LOCAL, 4002)
    assert ans_a.media.t38.max_bit_rate == 14400
    assert a.call(cid).state == b.call(cid).state == "confirmed"
    assert a.call(cid).t38_switch["by"] == "offer"
    net.run(5.0)                                    # no switch: already T.38
    assert not net.of("a", MediaChanged) and not net.of("b", MediaChanged)
    a.hangup(cid, net.now)
    net.run(0.01)
    (ea,), (eb,) = ended(net, "a"), ended(net, "b")
    assert (ea.reason, ea.by) == ("hangup", "local")
    assert (eb.reason, eb.by) == ("hangup", "remote")
    net.settle()
    assert a.idle and b.idle
    assert a.errors == [] and b.errors == []


def test_t38_offered_directly_callee_hangs_up_b_to_a():
    net, a, b = pair(b={"offer": "t38"})
    cid = b.invite(f"sip:200@{LOCAL}:{A_PORT}", audio_port=6000, t38_port=6002, now=net.now)
    net.run(0.01)
    (inc,) = net.of("a", IncomingCall)
    assert (inc.ani, inc.dnis, inc.offer) == ("xmfax", "200", ("t38",))
    a.answer(cid, audio_port=4000, t38_port=4002, now=net.now)
    net.run(0.01)
    assert net.of("a", Answered)[0].media.kind == "t38"
    assert net.of("b", Answered)[0].media.kind == "t38"
    a.hangup(cid, net.now)      # the callee hangs up
    net.run(0.01)
    assert [(e.reason, e.by) for e in ended(net, "a")] == [("hangup", "local")]
    assert [(e.reason, e.by) for e in ended(net, "b")] == [("hangup", "remote")]
    net.settle()
    assert a.idle and b.idle


@pytest.mark.parametrize("switcher", ["callee", "caller"])
def test_g711_then_reinvite_to_t38(switcher):
    after = {"t38_switch_after": 1.0}
    never = {"t38_switch_after": None}
    net, a, b = pair(a=after if switcher == "caller" else never,
                     b=after if switcher == "callee" else never)
    cid = call(net, a, b)
    assert net.of("a", Answered)[0].media.kind == "audio"
    assert net.of("b", Answered)[0].media.codec == "PCMU"
    net.run(0.5)
    assert not net.of("a", MediaChanged)
    net.run(1.0)
    local, remote = ("b", "a") if switcher == "callee" else ("a", "b")
    (mc_local,), (mc_remote,) = net.of(local, MediaChanged), net.of(remote, MediaChanged)
    assert (mc_local.by, mc_remote.by) == ("local", "remote")
    assert mc_local.media.kind == mc_remote.media.kind == "t38"
    assert mc_local.media.t38 is not None and mc_remote.media.t38 is not None
    ua_local = a if local == "a" else b
    info = ua_local.call(cid)
    assert info.t38_switch["by"] == "local" and 0.9 < info.t38_switch["t"] < 1.2
    assert (a if remote == "a" else b).call(cid).t38_switch["by"] == "remote"
    net.run(10.0)
    assert len(net.of(local, MediaChanged)) == 1        # no second switch
    assert not ended(net, "a") and not ended(net, "b")


def test_reinvite_sdp_versions_go_up_with_the_same_session_id():
    net, a, b = pair(a={"t38_switch_after": 0.5}, b={"t38_switch_after": None})
    call(net, a, b)
    net.run(1.0)
    invites = [p.message() for p in net.sent if p.first_line.startswith("INVITE")]
    assert len(invites) == 2
    first, second = (sdpmod.SessionDescription.parse(m.body) for m in invites)
    assert first.session_id == second.session_id
    assert second.version == first.version + 1
    assert sdpmod.offer_kinds(second) == ("t38",)
    answers = [p.message() for p in net.sent
               if p.first_line.startswith("SIP/2.0 200") and p.message().body]
    v1, v2 = (sdpmod.SessionDescription.parse(m.body) for m in answers)
    assert v1.session_id == v2.session_id and v2.version == v1.version + 1


def test_t38_parameters_negotiated_land_in_the_media():
    mine = T38Config(max_bit_rate=9600, max_datagram=300, version=0)
    net, a, b = pair(a={"offer": "t38", "t38": T38Config(max_bit_rate=14400, version=3)},
                     b={"t38": mine})
    call(net, a, b)
    for name in ("a", "b"):
        t38 = net.of(name, Answered)[0].media.t38
        assert t38.max_bit_rate == 9600 and t38.version == 0 and t38.max_datagram <= 300


def test_glare_both_reinvite_at_once_one_retry_wins():
    net, a, b = pair(a={"t38_switch_after": 1.0}, b={"t38_switch_after": 1.0})
    cid = call(net, a, b)
    net.run(1.0 + 0.01)
    # both sent a re-INVITE at once and both got 491
    assert sum(1 for p in net.sent if p.first_line.startswith("SIP/2.0 491")) == 2
    assert not net.of("a", MediaChanged) and not net.of("b", MediaChanged)
    net.run(6.0)
    ma, mb = net.of("a", MediaChanged), net.of("b", MediaChanged)
    assert len(ma) == 1 and len(mb) == 1
    assert {ma[0].by, mb[0].by} == {"local", "remote"}
    # the callee (not the Call-ID's owner) retries first, within 0-2 s
    assert mb[0].by == "local"
    assert ma[0].media.kind == mb[0].media.kind == "t38"
    invites = [p for p in net.sent if p.first_line.startswith("INVITE")]
    assert len(invites) == 4        # the first INVITE, two crossing re-INVITEs, one retry
    retry = invites[-1]
    assert retry.src == (LOCAL, B_PORT) and 0.0 <= retry.at - invites[1].at <= 2.01  # §14.1
    assert a.call(cid).state == "confirmed"
    assert not ended(net, "a") and not ended(net, "b")


def test_488_to_our_reinvite_keeps_the_call_on_audio():
    net, a, b = pair(a={"t38_switch_after": 1.0}, b={"t38_switch_after": None})
    cid = b_answer_audio_only(net, a, b)
    net.run(2.0)
    (refused,) = net.of("a", MediaRefused)
    assert refused.status == 488
    assert not ended(net, "a") and not ended(net, "b")
    assert a.call(cid).state == "confirmed" and a.call(cid).media.kind == "audio"
    assert b.call(cid).state == "confirmed"
    net.run(30.0)
    assert len(net.of("a", MediaRefused)) == 1      # not retried
    b.hangup(cid, net.now)
    net.run(0.01)
    assert ended(net, "a")[0].reason == "hangup"


def b_answer_audio_only(net, a, b):
    cid = a.invite(B_URI, audio_port=4000, t38_port=4002, now=net.now)
    net.run(0.01)
    b.answer(cid, audio_port=6000, t38_port=None, now=net.now)
    net.run(0.01)
    return cid


def test_cancel_before_answer():
    net, a, b = pair()
    cid = call(net, a, b, ring=True, answer=False)
    assert [e.status for e in net.of("a", CallProgress)] == [180]
    a.hangup(cid, net.now)
    net.run(0.01)
    lines = net.lines()
    assert any(line.startswith("CANCEL ") for line in lines)
    assert "SIP/2.0 487 Request Terminated" in lines
    assert sum(1 for line in lines if line.startswith("SIP/2.0 200")) == 1   # to the CANCEL
    (ea,), (eb,) = ended(net, "a"), ended(net, "b")
    assert (ea.reason, ea.by) == ("cancelled", "local")
    assert (eb.reason, eb.by, eb.status) == ("cancelled", "remote", 487)
    # the driver's late answer to a cancelled call does nothing
    b.answer(cid, audio_port=6000, t38_port=6002, now=net.now)
    net.settle()
    assert a.idle and b.idle
    assert not net.of("a", Answered)


def test_cancel_before_any_provisional_waits_for_one():
    net, a, b = pair()
    cid = a.invite(B_URI, audio_port=4000, t38_port=None, now=net.now)
    a.hangup(cid, net.now)          # before the INVITE even left: no CANCEL yet (RFC 3261 §9.1)
    net.run(0.01)
    lines = net.lines()
    cancel = next(i for i, line in enumerate(lines) if line.startswith("CANCEL"))
    assert lines.index("SIP/2.0 100 Trying") < cancel
    assert [e.reason for e in ended(net, "b")] == ["cancelled"]
    net.settle()
    assert a.idle and b.idle


def test_bye_from_callee_and_caller_before_ack():
    net, a, b = pair()
    cid = call(net, a, b)
    b.hangup(cid, net.now)
    net.run(0.01)
    assert [(e.reason, e.by) for e in ended(net, "a")] == [("hangup", "remote")]
    assert [(e.reason, e.by) for e in ended(net, "b")] == [("hangup", "local")]
    # a second hangup is harmless
    a.hangup(cid, net.now)
    b.hangup(cid, net.now)
    net.settle()
    assert a.idle and b.idle and a.errors == [] and b.errors == []


def test_sip_messages_for_every_message():
    net, a, b = pair(b={"t38_switch_after": 0.5})
    cid = call(net, a, b)
    net.run(1.0)
    a.hangup(cid, net.now)
    net.run(0.01)
    for name, port in (("a", A_PORT), ("b", B_PORT)):
        msgs = net.of(name, SipMessage)
        out = [m.summary for m in msgs if m.direction == "out"]
        sent = [p for p in net.sent if p.src == (LOCAL, port)]
        assert len(out) == len(sent)
        got = [m for m in msgs if m.direction == "in"]
        assert len(got) == len([p for p in net.delivered if p.dest == (LOCAL, port)])
        assert all(m.call_id == cid for m in msgs)
    out_a = [m.summary for m in net.of("a", SipMessage) if m.direction == "out"]
    assert out_a[0] == f"INVITE {B_URI} SIP/2.0 (SDP: audio)"
    assert "SIP/2.0 200 OK (SDP: t38)" in out_a       # a's answer to b's re-INVITE


def test_settled_after_the_teardown_not_just_after_call_ended():
    net, a, b = pair()
    cid = call(net, a, b, ring=True, answer=False)
    a.hangup(cid, net.now)
    assert [e.reason for e in a.events() if isinstance(e, CallEnded)] == ["cancelled"]
    assert not a.settled                    # the CANCEL and the 487 are still to come
    net.run(0.01)
    assert a.settled and b.settled and not a.idle   # lingering transactions only
    cid = call(net, a, b)
    b.hangup(cid, net.now)
    assert not b.settled                    # BYE sent, its 200 not back yet
    net.run(0.01)
    assert a.settled and b.settled
    net.settle()
    assert a.idle and b.idle


def test_tcp_call_has_tcp_via_contact_and_no_retransmissions():
    net, a, b = pair(b={"t38_switch_after": 0.5})
    cid = a.invite(B_URI + ";transport=tcp", audio_port=4000, t38_port=4002, now=net.now,
                   headers=(("X-Fax-Job", "42"),))
    net.filters.append(lambda p: "drop" if p.first_line.startswith("ACK") else None)
    net.run(0.01)
    b.answer(cid, audio_port=6000, t38_port=6002, now=net.now)
    net.run(10.0)
    assert all(p.transport == "tcp" for p in net.sent)
    invite = net.sent[0].message()
    assert invite.vias[0].transport == "TCP" and invite.headers.get("X-Fax-Job") == "42"
    assert invite.contacts[0].uri.transport == "tcp"
    assert dict(net.of("b", IncomingCall)[0].headers)["X-Fax-Job"] == "42"
    oks = [p for p in net.sent if p.first_line.startswith("SIP/2.0 200") and p.src[1] == B_PORT]
    assert len(oks) == 1                    # reliable: the 2xx is not retransmitted
    net.run(30.0)
    assert [e.reason for e in ended(net, "b")] == ["no_ack"]   # but the ACK is still awaited


def test_close_ends_every_call_and_unregisters():
    from .uapair import FarEnd
    net, a, b = pair()
    registrar = net.add("reg", FarEnd(lambda r, far: [far.reply(r, 200, headers=(
        ("Expires", r.headers.get("Expires")),))]), (LOCAL, 5090))
    a2 = net.ua("a2", 5061, registrar=f"sip:fax@{LOCAL}:5090")
    a2.register(net.now)
    net.run(0.1)
    c1 = call(net, a2, b)                                       # confirmed
    c2 = a2.invite(B_URI, audio_port=4010, t38_port=None, now=net.now)  # ringing
    net.run(0.01)
    b.ringing(c2, net.now)
    net.run(0.01)
    a2.close(net.now)
    net.run(1.0)
    assert sorted(e.reason for e in ended(net, "a2")) == ["cancelled", "hangup"]
    assert sorted(e.reason for e in ended(net, "b")) == ["cancelled", "hangup"]
    assert registrar.requests("REGISTER")[-1].headers.get("Expires") == "0"
    assert a2.settled and {c1, c2} <= {e.call_id for e in ended(net, "b")}
    net.settle()
    assert a2.idle and b.idle and a2.errors == []


def test_call_states_move_only_along_the_table():
    from xmfax.errors import LocalProtocolError
    from xmfax.sip.dialog import TRANSITIONS, State
    net, a, b = pair()
    cid = call(net, a, b, answer=False)
    inner = b._calls[cid]
    assert inner.state is State.INCOMING
    with pytest.raises(LocalProtocolError):
        inner.move(State.CONFIRMED)             # no ACK without our 2xx first
    assert (State.INCOMING, State.ANSWERING) in TRANSITIONS
    assert not any(old is State.ENDED for old, _ in TRANSITIONS)


def test_a_refresh_reinvite_with_the_same_media_is_not_a_media_change():
    net, a, b = pair(a={"offer": "t38"})
    cid = call(net, a, b)
    dialog = a._calls[cid].dialog
    # a's session refresh: the same T.38 offer again, in the dialog (as RFC 4028 timers do)
    offer = a._calls[cid].sdp.offer(t38_port=4002, t38=T38Config())
    request = dialog.request("INVITE", via_host=LOCAL, via_port=A_PORT,
                             contact=f"<sip:xmfax@{LOCAL}:{A_PORT}>", user_agent="x",
                             body=offer.encode())
    a.txn.send_request(request, dialog.next_hop()[0], "udp", net.now)
    net.run(0.01)
    assert net.lines()[-1].startswith("SIP/2.0 200")
    ack = dialog.request("ACK", via_host=LOCAL, via_port=A_PORT, contact=None, user_agent="x",
                         cseq=request.cseq[0])
    a.txn.send_ack(ack, dialog.next_hop()[0], "udp")
    net.run(5.0)
    assert net.lines().count("SIP/2.0 200 OK") == 2     # b's answer came once: ACKed
    assert not net.of("b", MediaChanged)
    assert b.call(cid).media.kind == "t38" and not ended(net, "b")


def test_ipv6_call():
    from .uapair import Network as Net
    from xmfax.sip.ua import UAConfig, UserAgent
    net = Net()
    a = net.add("a", UserAgent(UAConfig(host="::1", port=5060), 0.0), ("::1", 5060))
    b = net.add("b", UserAgent(UAConfig(host="::1", port=5070, t38_switch_after=0.5), 0.0),
                ("::1", 5070))
    cid = a.invite("sip:+15550100@[::1]:5070", audio_port=4000, t38_port=4002, now=0.0)
    net.run(0.01)
    b.answer(cid, audio_port=6000, t38_port=6002, now=net.now)
    net.run(1.0)
    assert net.of("a", MediaChanged)[0].media.remote == ("::1", 6002)
    invite = net.sent[0].message()
    assert invite.vias[0].host == "::1" and "[::1]" in invite.headers.get("Contact")
    assert b"IN IP6 ::1" in invite.body
    a.hangup(cid, net.now)
    net.run(0.1)
    assert [e.reason for e in ended(net, "b")] == ["hangup"] and a.errors == b.errors == []
