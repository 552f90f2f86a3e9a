"""The user agent against baresip, a real G.711 phone without T.38 (tests/sip/peers.py runs
it): it answers our T.38 re-INVITE with 488, and the call must stay up on audio
(RFC 3261 §14.1: MediaRefused, no CallEnded) until one side hangs up. Both directions."""
from __future__ import annotations

import shutil
import time

import pytest

from xmfax.sip.events import (Answered, CallEnded, IncomingCall, MediaChanged, MediaRefused)

from .uapair import UdpPump

pytestmark = pytest.mark.interop


@pytest.fixture
def baresip_factory(tmp_path):
    if shutil.which("baresip") is None:
        pytest.skip("baresip is not installed (apt-get install baresip-core)")
    from .peers import Baresip
    started = []

    def make(**kw):
        peer = Baresip(tmp_path / f"baresip{len(started)}", quit_after=30.0, **kw)
        started.append(peer)
        return peer.start()
    try:
        yield make
    finally:
        for peer in started:
            peer.stop(quiet=True)


def test_we_call_baresip_it_refuses_t38_and_the_call_stays_on_audio(baresip_factory):
    phone = baresip_factory()
    pump = UdpPump()
    try:
        ua = pump.add("ua", t38_switch_after=0.3)
        cid = ua.invite(phone.uri, audio_port=40000, t38_port=40002, now=time.monotonic())
        pump.run_until(lambda: pump.of("ua", MediaRefused) or pump.of("ua", CallEnded), 15)
        (answered,) = pump.of("ua", Answered)
        assert answered.media.kind == "audio" and answered.media.codec in ("PCMU", "PCMA")
        (refused,) = pump.of("ua", MediaRefused)
        assert refused.status == 488
        time.sleep(0.5)
        pump.run_until(lambda: True)
        assert not pump.of("ua", CallEnded) and not pump.of("ua", MediaChanged)
        assert ua.call(cid).state == "confirmed" and ua.call(cid).media.kind == "audio"
        ua.hangup(cid, time.monotonic())
        pump.run_until(lambda: ua.settled, 10)
        assert [(e.reason, e.by) for e in pump.of("ua", CallEnded)] == [("hangup", "local")]
        assert ua.errors == []
    finally:
        pump.close()


def test_baresip_calls_us_we_answer_g711_and_our_t38_reinvite_gets_488(baresip_factory):
    pump = UdpPump()
    try:
        ua = pump.add("ua", t38_switch_after=0.3)
        port = ua.config.port
        phone = baresip_factory(dial=f"sip:+15550100@127.0.0.1:{port}")
        pump.run_until(lambda: pump.of("ua", IncomingCall), 15)
        (inc,) = pump.of("ua", IncomingCall)
        assert inc.offer == ("audio",) and inc.dnis == "+15550100" and inc.ani == phone.user
        ua.answer(inc.call_id, audio_port=40010, t38_port=40012, now=time.monotonic())
        pump.run_until(lambda: pump.of("ua", MediaRefused) or pump.of("ua", CallEnded), 15)
        assert pump.of("ua", Answered)[0].media.kind == "audio"
        assert [r.status for r in pump.of("ua", MediaRefused)] == [488]
        assert not pump.of("ua", CallEnded)
        ua.hangup(inc.call_id, time.monotonic())
        pump.run_until(lambda: ua.settled, 10)
        assert [e.reason for e in pump.of("ua", CallEnded)] == ["hangup"]
        assert ua.errors == []
    finally:
        pump.close()
