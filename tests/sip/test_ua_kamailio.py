"""Two xmfax user agents (the sans-IO core alone, driven by uapair.UdpPump over real sockets)
through a real Kamailio (examples/kamailio/proxy.cfg): REGISTER with a 401 challenge, INVITE
with a 407 challenge, routed by the registrar's location to the callee, record-routed, the
callee's re-INVITE to T.38 and the caller's BYE through the route set, then unREGISTER."""
from __future__ import annotations

import re
import shutil
import time

import pytest

from xmfax.sip.auth import Credentials
from xmfax.sip.events import (Answered, CallEnded, IncomingCall, MediaChanged, Registered,
                              SipMessage)

from .uapair import UdpPump

pytestmark = pytest.mark.interop

LOCAL = "127.0.0.1"
REALM = "xmfax.test"
SEND = Credentials("sender", "pw-send-123")
RECV = Credentials("15550100", "pw-recv-456")


@pytest.fixture
def kamailio(tmp_path):
    if shutil.which("kamailio") is None:
        pytest.skip("kamailio is not installed (apt-get install kamailio)")
    from .peers import Kamailio
    kam = Kamailio(tmp_path / "kamailio", transports=("udp",), defines={
        "REALM": REALM, "SEND_USER": SEND.username, "SEND_PASSWORD": SEND.password,
        "RECV_USER": RECV.username, "RECV_PASSWORD": RECV.password})
    kam.start()
    try:
        yield kam
    finally:
        kam.stop(quiet=True)


def test_register_call_reinvite_bye_through_kamailio(kamailio):
    proxy = (LOCAL, kamailio.port)
    pump = UdpPump()
    try:
        recv = pump.add("recv", credentials=RECV, t38_switch_after=0.3,
                        registrar=f"sip:{RECV.username}@{LOCAL}:{kamailio.port}",
                        register_expires=120)
        send = pump.add("send", credentials=SEND, outbound_proxy=proxy, t38_switch_after=None,
                        from_uri=f"sip:{SEND.username}@{LOCAL}")
        recv.register(time.monotonic())
        pump.run_until(lambda: pump.of("recv", Registered))
        assert pump.of("recv", Registered)[0].expires == 120

        cid = send.invite(f"sip:{RECV.username}@{LOCAL}:{kamailio.port}", audio_port=40000,
                          t38_port=40002, now=time.monotonic())
        pump.run_until(lambda: pump.of("recv", IncomingCall) or pump.of("send", CallEnded))
        (inc,) = pump.of("recv", IncomingCall)
        assert (inc.call_id, inc.ani, inc.dnis) == (cid, SEND.username, RECV.username)
        assert not any(n.lower() == "proxy-authorization" for n, _ in inc.headers)  # consumed
        recv.answer(cid, audio_port=50000, t38_port=50002, now=time.monotonic())
        pump.run_until(lambda: pump.of("send", MediaChanged) and pump.of("recv", MediaChanged))
        assert pump.of("send", Answered)[0].media.kind == "audio"
        (mc_send,), (mc_recv,) = pump.of("send", MediaChanged), pump.of("recv", MediaChanged)
        assert (mc_send.by, mc_recv.by) == ("remote", "local")
        assert mc_send.media.kind == mc_recv.media.kind == "t38"
        assert mc_send.media.remote == (LOCAL, 50002) and mc_recv.media.remote == (LOCAL, 40002)
        for ua in (send, recv):                 # record-routed through the proxy, loosely
            routes = ua.call(cid).route_set
            assert routes and all(f":{kamailio.port}" in r and ";lr" in r for r in routes)

        send.hangup(cid, time.monotonic())
        pump.run_until(lambda: pump.of("recv", CallEnded) and send.settled)
        assert [(e.reason, e.by) for e in pump.of("recv", CallEnded)] == [("hangup", "remote")]
        recv.unregister(time.monotonic())
        pump.run_until(lambda: len(pump.of("recv", Registered)) == 2 and recv.settled)
        assert pump.of("recv", Registered)[-1].expires == 0
        assert send.errors == [] and recv.errors == []
        # the challenges were met: a 407 for the INVITE, a 401 for each REGISTER
        def lines(name, direction):
            return [e.summary for e in pump.events[name]
                    if isinstance(e, SipMessage) and e.direction == direction]
        assert sum(s.startswith("INVITE ") for s in lines("send", "out")) == 2
        assert sum(s.startswith("SIP/2.0 407") for s in lines("send", "in")) == 1
        assert sum(s.startswith("REGISTER ") for s in lines("recv", "out")) == 4
        assert sum(s.startswith("SIP/2.0 401") for s in lines("recv", "in")) == 2
        assert sum(s.startswith("SIP/2.0 200 OK (SDP: t38)") for s in lines("send", "out")) == 1
        for name in ("send", "recv"):           # no credential in any event
            text = repr(pump.events[name])
            assert SEND.password not in text and RECV.password not in text
            assert not re.search(r'response="?[0-9a-f]{32}', text)
    finally:
        pump.close()
