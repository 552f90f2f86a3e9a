"""The SIP driver's G.711 fallback: a far end that refuses T.38 (488 to our re-INVITE) gets
the fax as audio on the call's RTP socket, with the codec the offer/answer agreed.

The far end is a scripted G.711-only SIP phone on 127.0.0.1 whose media is an xmfax audio
fax receiver (``xmfax.receive(via="rtp://...")``, the modems of xmfax.audio): the call runs
in real time (~20 s), the page must arrive pixel-identical."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading

import numpy as np
import pytest

from xmfax import api
from xmfax.document import load
from xmfax.drivers import sip as sip_driver
from xmfax.sip.message import Request, make_response, parse
from xmfax.sip.sdp import SdpSession, SessionDescription
from xmfax.t38.config import T38Config

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "audio"))
from test_audio_calls import small_pages  # noqa: E402

TX_ID, RX_ID = "+1 555 0100", "+1 555 0199"
LAW_PT = {"pcmu": "0", "pcma": "8"}


class AudioPhone(threading.Thread):
    """A SIP phone on UDP 127.0.0.1 that speaks G.711 only: it answers an INVITE 200 with
    audio on ``rtp_port`` (only ``law`` kept from the offer), answers a T.38 re-INVITE 488,
    BYE 200; ACK needs nothing."""

    def __init__(self, rtp_port: int, law: str):
        super().__init__(daemon=True)
        self.rtp_port, self.law = rtp_port, law
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests: list[Request] = []
        self._halt = threading.Event()
        self.sdp = SdpSession("127.0.0.1", user="phone")

    def __enter__(self) -> "AudioPhone":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self._halt.set()
        self.join(5)
        self.sock.close()

    def methods(self) -> list[str]:
        return [r.method for r in self.requests]

    def run(self) -> None:
        while not self._halt.is_set():
            try:
                data, addr = self.sock.recvfrom(65535)
            except (socket.timeout, OSError):
                continue
            msg = parse(data)
            if isinstance(msg, Request):
                self.requests.append(msg)
                self.handle(msg, addr)

    def handle(self, req: Request, addr) -> None:
        if req.method == "ACK":
            return
        if req.method == "INVITE" and req.to.tag:                # the re-INVITE to T.38
            r = make_response(req, 488)
        elif req.method == "INVITE":
            offer = SessionDescription.parse(req.body)
            for m in offer.media:                                 # keep only our law
                if m.kind == "audio":
                    m.formats = [f for f in m.formats if f == LAW_PT[self.law] or f not in ("0", "8")]
            answer, _ = self.sdp.answer(offer, audio_port=self.rtp_port, t38_port=None, t38=T38Config(),
                                        accept=("audio",))
            r = make_response(req, 200, to_tag="ph1")
            r.headers.add("Contact", f"<sip:phone@127.0.0.1:{self.port}>")
            r.headers.add("Content-Type", "application/sdp")
            r.body = answer.encode()
        else:
            r = make_response(req, 200, to_tag=None if req.to.tag else "ph1")
        self.sock.sendto(r.encode(), addr)


def same_pixels(sent, got) -> None:
    assert len(got) == len(sent)
    for i, (a, b) in enumerate(zip(sent, got), 1):
        assert b.image.shape == a.image.shape, f"page {i}"
        assert int(np.count_nonzero(a.image != b.image)) == 0, f"page {i}"


def test_t38_refused_the_fax_goes_on_over_g711(tmp_path):
    law = "pcma"                     # not the first codec xmfax offers: the agreed one is used
    pages = small_pages(1, rows=120)

    async def main():
        media = api.receive(via=f"rtp://127.0.0.1:0?law={law}", output_dir=tmp_path, once=True, local_id=RX_ID)
        task = asyncio.create_task(media.run())
        _, rtp_port = await asyncio.wait_for(media.ready(), 10)
        try:
            with AudioPhone(rtp_port, law) as phone:
                sent = await api.send(pages, via=f"sip:+1555@127.0.0.1:{phone.port}", local_id=TX_ID,
                                      max_duration=50, sip={"t38_switch_after": 0.1})
                methods = phone.methods()
            results = await asyncio.wait_for(task, 20)
        finally:
            media.stop()
            task.cancel()
        return sent, results, methods, rtp_port

    sent, results, methods, rtp_port = asyncio.run(asyncio.wait_for(main(), 80))
    assert sent.ok, sent.summary()
    (got,) = results
    assert got.ok, got.summary()
    assert sent.sip["media"] == "audio" and sent.sip["t38"] is None and sent.sip["t38_switch"] is None
    assert sent.sip["audio"] == {"codec": "PCMA", "payload_type": 8}
    assert sent.sip["audio_fallback"] == "T.38 re-INVITE answered 488 Not Acceptable Here"
    assert sent.sip["remote_media"] == f"127.0.0.1:{rtp_port}"
    assert sent.remote_id == RX_ID and got.remote_id == TX_ID
    assert sent.modulation == "V.17 14400"
    assert methods == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    same_pixels(pages, load(got.files[0]))


def test_xmfax_to_xmfax_neither_switches_both_fax_over_audio(tmp_path):
    """No end re-INVITEs (t38_switch_after None): once the wait is over (the audio_wait option,
    1 s here instead of AUDIO_WAIT's 8) both go on over G.711, the receiving side's path too."""
    pages = small_pages(1, rows=60, seed=3)

    async def main():
        receiver = api.receive(via="sip://127.0.0.1:0", once=True, output_dir=tmp_path, local_id=RX_ID,
                               sip={"t38_switch_after": None, "audio_wait": 1.0})
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        try:
            sent = await api.send(pages, via=f"sip:+1555@{host}:{port}", local_id=TX_ID, max_duration=50,
                                  ecm=False, sip={"t38_switch_after": None, "audio_wait": 1})
            results = await asyncio.wait_for(task, 20)
        finally:
            receiver.stop()
            task.cancel()
        return sent, results

    sent, results = asyncio.run(asyncio.wait_for(main(), 80))
    (got,) = results
    assert sent.ok, sent.summary()
    assert got.ok, got.summary()
    for r in (sent, got):
        assert r.transport == "sip" and r.sip["media"] == "audio" and r.sip["t38"] is None
        assert r.sip["audio_fallback"] == "no switch to T.38 within 1 s"
        assert r.sip["audio"]["codec"] == "PCMU" and not r.ecm
    assert sent.sip["call_id"] == got.sip["call_id"]
    same_pixels(pages, load(got.files[0]))


def test_audio_fallback_is_checked_with_the_sip_options():
    assert sip_driver.ua_options({"audio_fallback": False}) == {"audio_fallback": False}
    with pytest.raises(ValueError, match="audio_fallback"):
        sip_driver.ua_options({"audio_fallback": "no"})
    with pytest.raises(ValueError, match="unknown SIP option"):
        sip_driver.ua_options({"audio_fallbak": False})
    assert sip_driver.ua_options({"audio_wait": 2.5}) == {"audio_wait": 2.5}
    for bad in (0, -1, True, "5", sip_driver.T38_WAIT + 1):
        with pytest.raises(ValueError, match="audio_wait"):
            sip_driver.ua_options({"audio_wait": bad})
