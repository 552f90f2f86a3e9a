"""The user agent against scripted far ends: every CallEnded reason produced by a far end
answering that status, redirects, the T.38-refused fallback to a G.711 INVITE, digest auth
on INVITE and REGISTER (MD5 and SHA-256, 401 and 407, checked with auth.verify), REGISTER
refresh, and credentials never showing in events."""
from __future__ import annotations

import pytest

from xmfax.sip import auth
from xmfax.sip import sdp as sdpmod
from xmfax.sip.events import (Answered, CallEnded, CallProgress, IncomingCall, MediaChanged,
                              MediaRefused, Registered, RegistrationFailed, SipMessage)
from xmfax.sip.message import Request
from xmfax.t38.config import T38Config

from .uapair import LOCAL, FarEnd, Network, contact_of

A_PORT, FAR_PORT, FAR2_PORT = 5060, 5080, 5090
TARGET = f"sip:+15550100@{LOCAL}:{FAR_PORT}"
CREDS = auth.Credentials("alice", "s3cret-pw")


def answer_sdp(request: Request, kind: str = "audio") -> bytes:
    """A far end's SDP answer to the offer in ``request``."""
    session = sdpmod.SdpSession("127.0.0.1", user="far")
    offer = sdpmod.SessionDescription.parse(request.body)
    accept = ("t38",) if kind == "t38" else ("audio",)
    answer, _ = session.answer(offer, audio_port=7000, t38_port=7002, t38=T38Config(),
                               accept=accept)
    return answer.encode()


def setup(script, **config) -> tuple[Network, object, FarEnd]:
    net = Network()
    ua = net.ua("a", A_PORT, **config)
    far = net.add("far", FarEnd(script), (LOCAL, FAR_PORT))
    return net, ua, far


def final(status: int, **kw):
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 100), far.reply(request, status, **kw)]
        return []
    return script


@pytest.mark.parametrize("status,reason", [
    (486, "busy"), (600, "busy"), (603, "declined"), (404, "not_found"), (604, "not_found"),
    (408, "no_answer"), (480, "no_answer"), (503, "unavailable"), (401, "auth_failed"),
    (407, "auth_failed"), (488, "not_acceptable"), (606, "not_acceptable"),
    (302, "redirected"), (403, "rejected"), (415, "rejected"), (500, "server_error"),
    (502, "server_error"), (487, "cancelled"),
])
def test_each_final_status_gives_its_reason(status, reason):
    headers = ()
    if status == 401:
        headers = (("WWW-Authenticate", 'Digest realm="x", nonce="n1"'),)
    if status == 407:
        headers = (("Proxy-Authenticate", 'Digest realm="x", nonce="n1"'),)
    net, ua, far = setup(final(status, headers=headers))     # no credentials configured
    cid = ua.invite(TARGET, audio_port=4000, t38_port=4002, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert (ended.call_id, ended.reason, ended.status, ended.by) == (cid, reason, status,
                                                                    "remote")
    assert ua.call(cid).final_status == status
    assert len(far.requests("INVITE")) == 1
    assert len(far.requests("ACK")) == 1            # the transaction ACKs a non-2xx itself
    net.settle()
    assert ua.idle and ua.errors == []


def test_silent_far_end_times_out():
    net, ua, far = setup(lambda request, far: [])
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(31.0)
    assert not net.of("a", CallEnded)
    net.run(2.0)                                    # Timer B = 64*T1 = 32 s
    (ended,) = net.of("a", CallEnded)
    assert (ended.call_id, ended.reason, ended.by) == (cid, "timeout", "local")
    assert len(far.requests("INVITE")) == 7         # Timer A: 0, .5, 1.5, 3.5, 7.5, 15.5, 31.5


def test_ringing_forever_is_no_answer_and_cancelled():
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 180)]
        if request.method == "CANCEL":
            invite = far.requests("INVITE")[0]
            return [far.reply(request, 200), far.reply(invite, 487)]
        return []
    net, ua, far = setup(script, invite_timeout=20.0)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(19.0)
    assert [e.status for e in net.of("a", CallProgress)] == [180]
    assert not net.of("a", CallEnded)
    net.run(2.0)
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.by, ended.call_id) == ("no_answer", "local", cid)
    assert len(far.requests("CANCEL")) == 1
    net.settle()
    assert ua.idle and len(net.of("a", CallEnded)) == 1


def test_redirect_followed_to_the_contact():
    def redirector(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 302, headers=(("Contact", contact_of((LOCAL, FAR2_PORT))),))]
        return []

    def answerer(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 200, headers=(("Contact", contact_of((LOCAL, FAR2_PORT))),),
                              body=answer_sdp(request))]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(redirector)
    far2 = net.add("far2", FarEnd(answerer), (LOCAL, FAR2_PORT))
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    (answered,) = net.of("a", Answered)
    assert answered.call_id == cid and answered.media.kind == "audio"
    (invite2,) = far2.requests("INVITE")
    first = far.requests("INVITE")[0]
    assert invite2.call_id == first.call_id and invite2.cseq[0] == first.cseq[0] + 1
    assert invite2.uri.port == FAR2_PORT and invite2.to.tag is None
    assert len(far2.requests("ACK")) == 1


def test_redirect_loop_stops_after_max_redirects():
    def loop(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 302, headers=(("Contact", contact_of((LOCAL, FAR_PORT))),))]
        return []
    net, ua, far = setup(loop, max_redirects=3)
    ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert ended.reason == "redirected" and ended.status == 302
    assert len(far.requests("INVITE")) == 4


def test_t38_offer_refused_reoffers_g711():
    def script(request, far):
        if request.method == "INVITE":
            kinds = sdpmod.offer_kinds(sdpmod.SessionDescription.parse(request.body))
            if "audio" not in kinds:
                return [far.reply(request, 488)]
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(request))]
        return []
    net, ua, far = setup(script, offer="t38", t38_switch_after=None)
    ua.invite(TARGET, audio_port=4000, t38_port=4002, now=net.now)
    net.run(0.1)
    (answered,) = net.of("a", Answered)
    assert answered.media.kind == "audio"
    assert not net.of("a", CallEnded)
    first, second = far.requests("INVITE")
    assert sdpmod.offer_kinds(sdpmod.SessionDescription.parse(first.body)) == ("t38",)
    assert sdpmod.offer_kinds(sdpmod.SessionDescription.parse(second.body)) == ("audio",)


# ------------------------------------------------------------------ digest auth
def challenger(status: int, algorithm: str, *, then=None, stale_second=False, realm="xmfax.test"):
    """A far end that challenges each INVITE/REGISTER without valid credentials (checked with
    auth.verify), then hands the request to ``then``."""
    header = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    answer_header = "Authorization" if status == 401 else "Proxy-Authorization"
    nonces = iter(f"nonce{i}" for i in range(100))
    state = {"nonce": next(nonces), "checked": [], "challenges": 0}

    def script(request, far):
        if request.method not in ("INVITE", "REGISTER"):
            return then(request, far) if then else []
        value = request.headers.get(answer_header)
        ok = value is not None and auth.verify(value, CREDS.password, request.method,
                                               realm=realm, nonce=state["nonce"],
                                               uri=str(request.uri))
        if value is not None:
            state["checked"].append(ok)
            if ok and stale_second and len(state["checked"]) == 1:
                ok = False              # pretend the nonce went stale meanwhile
                state["nonce"] = next(nonces)
                stale = ", stale=true"
            else:
                stale = ""
        else:
            stale = ""
        if not ok:
            state["challenges"] += 1
            return [far.reply(request, status, headers=((header,
                    f'Digest realm="{realm}", nonce="{state["nonce"]}", '
                    f'algorithm={algorithm}, qop="auth"{stale}'),))]
        return then(request, far) if then else []
    return script, state


def accept_call(request, far):
    if request.method == "INVITE":
        return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                          body=answer_sdp(request))]
    if request.method == "BYE":
        return [far.reply(request, 200)]
    if request.method == "REGISTER":
        return [far.reply(request, 200, headers=(("Contact", request.headers.get("Contact")),))]
    return []


@pytest.mark.parametrize("status", [401, 407])
@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_invite_digest_auth(status, algorithm):
    script, state = challenger(status, algorithm, then=accept_call)
    net, ua, far = setup(script, credentials=CREDS)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    assert state["checked"] == [True]
    (answered,) = net.of("a", Answered)
    assert answered.call_id == cid
    first, second = far.requests("INVITE")
    assert second.cseq[0] == first.cseq[0] + 1 and second.call_id == first.call_id
    header = "Authorization" if status == 401 else "Proxy-Authorization"
    value = second.headers.get(header)
    assert f"algorithm={algorithm}" in value
    # never a credential in an event
    for ev in net.of("a"):
        assert CREDS.password not in repr(ev)
        assert auth.parse_authorization(value)["response"] not in repr(ev)
    ua.hangup(cid, net.now)
    net.run(0.1)
    assert len(far.requests("BYE")) == 1


def test_wrong_password_fails_after_one_retry():
    script, state = challenger(401, "MD5", then=accept_call)
    net, ua, far = setup(script, credentials=auth.Credentials("alice", "wrong"))
    ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.status) == ("auth_failed", 401)
    assert "wrong" not in ended.detail
    assert len(far.requests("INVITE")) == 2 and state["checked"] == [False]


def test_stale_nonce_retried_once_more():
    script, state = challenger(401, "SHA-256", then=accept_call, stale_second=True)
    net, ua, far = setup(script, credentials=CREDS)
    ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    assert state["checked"] == [True, True]
    assert len(net.of("a", Answered)) == 1 and not net.of("a", CallEnded)
    assert len(far.requests("INVITE")) == 3


@pytest.mark.parametrize("status", [401, 407])
@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256"])
def test_register_digest_auth_and_refresh_at_half_expiry(status, algorithm):
    granted = 600

    def registrar(request, far):
        return [far.reply(request, 200, headers=(
            ("Contact", request.headers.get("Contact").split(";")[0] + f";expires={granted}"),))]
    script, state = challenger(status, algorithm, then=registrar)
    net, ua, far = setup(script, credentials=CREDS,
                         registrar=f"sip:alice@{LOCAL}:{FAR_PORT}", register_expires=3600)
    ua.register(net.now)
    net.run(1.0)
    (reg,) = net.of("a", Registered)
    assert reg.expires == granted and state["checked"] == [True]
    first, second = far.requests("REGISTER")
    assert first.call_id == second.call_id and second.cseq[0] == first.cseq[0] + 1
    assert str(first.uri) == f"sip:{LOCAL}:{FAR_PORT}"
    assert first.to.uri.user == "alice" and first.headers.get("Expires") == "3600"
    net.run(granted / 2 - 2.0)
    assert len(far.requests("REGISTER")) == 2
    net.run(3.0)                                        # refreshed at half the expiry
    assert len(far.requests("REGISTER")) >= 3
    assert len(net.of("a", Registered)) == 2
    refresh = far.requests("REGISTER")[2]
    assert refresh.call_id == first.call_id and refresh.cseq[0] > second.cseq[0]
    for ev in net.of("a", SipMessage):
        assert "response=" not in ev.summary and CREDS.password not in ev.summary
    ua.unregister(net.now)
    net.run(1.0)
    last = far.requests("REGISTER")[-1]
    assert last.headers.get("Expires") == "0"
    assert net.of("a", Registered)[-1].expires == 0


def test_register_refused():
    net, ua, far = setup(lambda request, far: [far.reply(request, 403)],
                         registrar=f"sip:alice@{LOCAL}:{FAR_PORT}")
    ua.register(net.now)
    net.run(1.0)
    (failed,) = net.of("a", RegistrationFailed)
    assert failed.status == 403
    assert not net.of("a", Registered)


def test_register_interval_too_brief_asks_again():
    def script(request, far):
        if request.headers.get("Expires") == "60":
            return [far.reply(request, 423, headers=(("Min-Expires", "300"),))]
        return [far.reply(request, 200, headers=(("Expires", "300"),))]
    net, ua, far = setup(script, registrar=f"sip:alice@{LOCAL}:{FAR_PORT}", register_expires=60)
    ua.register(net.now)
    net.run(1.0)
    assert [r.expires for r in net.of("a", Registered)] == [300]
    assert [r.headers.get("Expires") for r in far.requests("REGISTER")] == ["60", "300"]


# ------------------------------------------------------------------ forks and races
def test_a_second_2xx_from_another_fork_is_acked_and_hung_up_once():
    from xmfax.sip.message import make_response

    def script(request, far):
        if request.method == "INVITE":
            body = answer_sdp(request)
            first = far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=body)
            other = make_response(request, 200, to_tag="fork2")
            other.headers.add("Contact", contact_of(far.address))
            other.headers.add("Content-Type", "application/sdp")
            other.body = body
            return [first, other, other]            # the fork's 2xx, and a retransmission
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(script, t38_switch_after=None)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    assert len(net.of("a", Answered)) == 1 and not net.of("a", CallEnded)
    acks = far.requests("ACK")
    assert sorted(a.to.tag for a in acks) == sorted([far.tag, "fork2", "fork2"])
    (bye,) = far.requests("BYE")
    assert bye.to.tag == "fork2"
    assert ua.call(cid).state == "confirmed" and ua.errors == []


def test_200_crossing_our_cancel_is_acked_then_byed():
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 180)]
        if request.method == "CANCEL":      # too late: the callee answered meanwhile
            invite = far.requests("INVITE")[0]
            return [far.reply(request, 200),
                    far.reply(invite, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(invite))]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(script)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    ua.hangup(cid, net.now)
    net.run(0.1)
    assert [e.reason for e in net.of("a", CallEnded)] == ["cancelled"]
    assert not net.of("a", Answered)
    assert len(far.requests("ACK")) == 1 and len(far.requests("BYE")) == 1
    net.settle()
    assert ua.idle and ua.errors == []


def test_retransmitted_2xx_after_the_call_is_gone_is_still_acked():
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(request))]
        if request.method == "BYE":
            invite = far.requests("INVITE")[0]
            ok = far.reply(invite, 200, headers=(("Contact", contact_of(far.address)),),
                           body=answer_sdp(invite))
            return [far.reply(request, 200), ok]    # a late copy of the INVITE's 200
        return []
    net, ua, far = setup(script, t38_switch_after=None)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    ua.hangup(cid, net.now)
    net.run(0.1)
    assert ua.settled
    assert len(far.requests("ACK")) == 2 and ua.errors == []


def test_redirect_to_a_contact_we_cannot_call():
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 301, headers=(("Contact", "<tel:+15550111>"),))]
        return []
    net, ua, far = setup(script)
    ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(1.0)
    (ended,) = net.of("a", CallEnded)
    assert ended.reason == "redirected" and "no Contact we can call" in ended.detail


def test_bye_challenged_by_a_proxy_is_sent_again_with_credentials():
    def bye_challenger(request, far):
        if request.method == "BYE":
            value = request.headers.get("Proxy-Authorization")
            if value and auth.verify(value, CREDS.password, "BYE", realm="p", nonce="nb"):
                return [far.reply(request, 200)]
            return [far.reply(request, 407, headers=(
                ("Proxy-Authenticate", 'Digest realm="p", nonce="nb", qop="auth"'),))]
        return accept_call(request, far)
    net, ua, far = setup(bye_challenger, credentials=CREDS, t38_switch_after=None)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    ua.hangup(cid, net.now)
    net.run(0.1)
    first, second = far.requests("BYE")
    assert second.cseq[0] == first.cseq[0] + 1 and "Proxy-Authorization" in second.headers
    assert ua.settled and [e.reason for e in net.of("a", CallEnded)] == ["hangup"]


@pytest.mark.parametrize("status,reason,bye", [(481, "hangup", 0), (408, "timeout", 1),
                                              (488, None, 0), (500, None, 0)])
def test_answers_to_our_reinvite(status, reason, bye):
    def script(request, far):
        if request.method == "INVITE" and request.to.tag is None:
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(request))]
        if request.method == "INVITE":
            return [far.reply(request, status)]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(script, t38_switch_after=0.5)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=4002, now=net.now)
    net.run(1.0)
    assert len(far.requests("INVITE")) == 2
    if reason is None:          # RFC 3261 §14.1: the call goes on as it was
        (refused,) = net.of("a", MediaRefused)
        assert refused.status == status and not net.of("a", CallEnded)
        assert ua.call(cid).media.kind == "audio" and ua.call(cid).state == "confirmed"
    else:                       # §12.2.1.2: 481/408 end the dialog
        (ended,) = net.of("a", CallEnded)
        assert (ended.reason, ended.status, ended.by) == (reason, status, "remote")
    assert len(far.requests("BYE")) == bye


def test_inbound_final_status_and_info():
    net = Network()
    a = net.ua("a", A_PORT)
    b = net.ua("b", FAR_PORT)
    cid = a.invite(TARGET, audio_port=4000, t38_port=4002, now=net.now)
    net.run(0.01)
    b.answer(cid, audio_port=6000, t38_port=6002, now=net.now)
    net.run(0.01)
    info = b.call(cid)
    assert (info.role, info.final_status, info.ani, info.dnis) == ("inbound", 200, "xmfax",
                                                                  "+15550100")
    assert info.remote_target == f"sip:xmfax@{LOCAL}:{A_PORT}"
    assert a.call(cid).role == "outbound" and a.call(cid).final_status == 200


@pytest.mark.parametrize("body", [b"", b"v=0\r\nnot sdp", b"answer-to-nothing"])
def test_2xx_without_a_usable_answer_is_acked_and_byed(body):
    def script(request, far):
        if request.method == "INVITE":
            sdp = answer_sdp(request).replace(b"m=audio 7000", b"m=audio 0") \
                if body == b"answer-to-nothing" else body
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=sdp)]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(script)
    ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    (ended,) = net.of("a", CallEnded)
    assert (ended.reason, ended.by) == ("not_acceptable", "local")
    assert not net.of("a", Answered)
    assert len(far.requests("ACK")) == 1 and len(far.requests("BYE")) == 1


def test_register_failure_is_retried_later_and_a_silent_registrar_times_out():
    answers = iter([503, 200])

    def script(request, far):
        return [far.reply(request, next(answers), headers=(("Expires", "120"),))]
    net, ua, far = setup(script, registrar=f"sip:alice@{LOCAL}:{FAR_PORT}")
    ua.register(net.now)
    net.run(1.0)
    (failed,) = net.of("a", RegistrationFailed)
    assert failed.status == 503
    net.run(60.0)                                       # tried again a minute later
    assert [r.expires for r in net.of("a", Registered)] == [120]

    net2, ua2, far2 = setup(lambda request, far: [], registrar=f"sip:alice@{LOCAL}:{FAR_PORT}")
    ua2.register(net2.now)
    net2.run(40.0)
    (failed,) = net2.of("a", RegistrationFailed)
    assert failed.status is None and "timeout" in failed.reason
    assert ua2.settled


def test_require_we_do_not_support_gets_420():
    def nothing(request, far):
        return []
    net, ua, far = setup(nothing)
    sdp = ("v=0\r\no=x 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
           "m=audio 7000 RTP/AVP 0\r\n")
    data = (f"INVITE sip:fax@{LOCAL}:{A_PORT} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {LOCAL}:{FAR_PORT};branch=z9hG4bKreq420\r\n"
            "From: <sip:x@h>;tag=1\r\nTo: <sip:fax@h>\r\nCall-ID: r420@h\r\nCSeq: 1 INVITE\r\n"
            f"Contact: <sip:x@{LOCAL}:{FAR_PORT}>\r\nRequire: 100rel, precondition\r\n"
            f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}").encode()
    ua.receive(data, (LOCAL, FAR_PORT), "udp", net.now)
    net.run(0.1)
    (resp,) = far.got
    assert resp.status == 420 and resp.headers.get("Unsupported") == "100rel, precondition"
    assert not net.of("a", IncomingCall)


def test_unregister_while_a_register_is_in_flight():
    held = []

    def slow_registrar(request, far):
        if request.headers.get("Expires") != "0" and not held:
            held.append(request)            # answered only after the unREGISTER
            return []
        replies = [far.reply(request, 200, headers=(("Expires", request.headers.get("Expires")),))]
        if held and request.headers.get("Expires") == "0":
            replies.insert(0, far.reply(held[0], 200, headers=(("Expires", "3600"),)))
        return replies
    net, ua, far = setup(slow_registrar, registrar=f"sip:alice@{LOCAL}:{FAR_PORT}")
    ua.register(net.now)
    net.run(0.1)
    ua.unregister(net.now)
    net.run(1.0)
    assert [r.expires for r in net.of("a", Registered)] == [0]
    assert ua.registration.granted == 0 and ua.registration.refresh_at is None


@pytest.mark.parametrize("contact", ["<mailto:fax@example.com>", "<tel:+15550100>", "garbage<<"])
def test_a_2xx_whose_contact_is_no_sip_uri_keeps_the_request_uri_as_target(contact):
    def script(request, far):
        if request.method == "INVITE":
            return [far.reply(request, 200, headers=(("Contact", contact),),
                              body=answer_sdp(request))]
        if request.method == "BYE":
            return [far.reply(request, 200)]
        return []
    net, ua, far = setup(script)
    cid = ua.invite(TARGET, audio_port=4000, t38_port=None, now=net.now)
    net.run(0.1)
    if net.of("a", Answered):
        assert ua.call(cid).remote_target == TARGET
        ua.hangup(cid, net.now)
        net.run(0.1)
        assert len(far.requests("BYE")) == 1
    assert ua.errors == []


@pytest.mark.parametrize("seed", range(5))
def test_491_to_our_reinvite_retried_after_2_1_to_4_s_by_the_call_id_owner(seed):
    def script(request, far):
        if request.method == "INVITE" and request.to.tag is None:
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(request))]
        if request.method == "INVITE":
            if len(far.requests("INVITE")) == 2:
                return [far.reply(request, 491)]
            return [far.reply(request, 200, headers=(("Contact", contact_of(far.address)),),
                              body=answer_sdp(request, "t38"))]
        return []
    net, ua, far = setup(script, t38_switch_after=0.5)
    ua.invite(TARGET, audio_port=4000, t38_port=4002, now=net.now)
    net.run(6.0)
    first, reinvite, retry = [p for p in net.sent if p.first_line.startswith("INVITE")]
    assert 2.1 <= retry.at - reinvite.at <= 4.0
    (changed,) = net.of("a", MediaChanged)
    assert changed.media.kind == "t38" and changed.by == "local"
