"""A real peer's signalling switches a call to T.38 in the middle of its audio fax.

sipp (sip-tester) answers xmfax's INVITE with G.711 and, 6 s after the ACK, re-INVITEs to
T.38 (tests/sip/scenarios/uas_g711_sipp_reinvites.xml, its m=audio pointed at our media),
as a gateway does once it has heard the fax. The far end's media is an xmfax receiver run
here by the drivers themselves: an audio fax on an RTP socket (drivers/audio_rtp.py) until
sipp's trace shows xmfax's 200 OK with m=image, then the same T.30 session over T.38
(drivers/t38_udp.py, ``resume=``). xmfax's side is the whole product path (api.send over
SIP): it must carry the fax on over T.38 and say so (``sip["media"] == "audio>t38"``).
Real time, ~25 s."""
from __future__ import annotations

import asyncio
import re
import shutil
import socket
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.interop

if shutil.which("sipp") is None:
    pytest.skip("sipp is not installed (Debian package sip-tester; scripts/install.sh --test)",
                allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE.parent / "audio"))
import peers  # noqa: E402
from peers import Sipp  # noqa: E402
from test_audio_calls import small_pages  # noqa: E402

from xmfax import api  # noqa: E402
from xmfax.audio.terminal import AudioConfig  # noqa: E402
from xmfax.drivers import audio_rtp, t38_udp  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402

DNIS = "15550100"
PAUSE_MS = 6000            # sipp's re-INVITE after the ACK: the audio fax is in phase B by then


def scenario(tmp: Path) -> Path:
    """sipp's re-INVITING UAS, its audio answer pointed at our RTP port (``[audio_port]``)."""
    text = (peers.SCENARIOS / "uas_g711_sipp_reinvites.xml").read_text()
    assert "m=audio [media_port] RTP/AVP" in text
    path = tmp / "uas_g711_reinvites_to_us.xml"
    path.write_text(text.replace("m=audio [media_port] RTP/AVP", "m=audio [audio_port] RTP/AVP"))
    return path


BACK_TO_AUDIO = """
  <pause milliseconds="2500"/>
  <send retrans="500">
    <![CDATA[
      INVITE [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$to_hdr];tag=[pid]SIPpTag01[call_number]
      To: [$from_hdr]
      Call-ID: [call_id]
      CSeq: 101 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=sipp 7 3 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [audio_port] RTP/AVP 0
      a=rtpmap:0 PCMU/8000
      a=ptime:20
      a=sendrecv

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="200" timeout="10000">
    <action>
      <ereg regexp="m=audio [1-9][0-9]* RTP/AVP" search_in="body" check_it="true" assign_to="b_m"/>
    </action>
  </recv>
  <send>
    <![CDATA[
      ACK [$contact] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: [$to_hdr];tag=[pid]SIPpTag01[call_number]
      To: [$from_hdr]
      Call-ID: [call_id]
      CSeq: 101 ACK
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""


def scenario_back_to_audio(tmp: Path) -> Path:
    """As :func:`scenario`, then 2.5 s after the T.38 switch sipp re-INVITEs back to audio."""
    text = scenario(tmp).read_text()
    ack_end = text.index("</send>", text.index("CSeq: 100 ACK")) + len("</send>")
    text = text[:ack_end] + BACK_TO_AUDIO + text[ack_end:]
    text = text.replace("CSeq: 101 BYE", "CSeq: 102 BYE").replace('variables="c_all,a_m,i_m"',
                                                                  'variables="c_all,a_m,i_m,b_m"')
    path = tmp / "uas_g711_reinvites_and_back.xml"
    path.write_text(text)
    return path


def switched_to(trace: Path) -> tuple[str, int] | None:
    """Where xmfax's T.38 is, once sipp has received its 200 OK with m=image (else None)."""
    if not trace.exists():
        return None
    for m in peers.parse_trace(trace.read_text(errors="replace")):
        if m.direction == "in" and m.status == 200 and "m=image" in m.body:
            port = re.search(r"m=image (\d+)", m.body)
            host = re.search(r"c=IN IP4 (\S+)", m.body)
            if port and host:
                return host.group(1), int(port.group(1))
    return None


async def far_end(rtp_sock, t38_sock, trace: Path):
    """The receiving fax terminal behind sipp: audio, then T.38 once the call has switched."""
    loop = asyncio.get_running_loop()
    session = Session(AudioConfig.limit_t30(T30Config(ecm=True)), calling=False, receive=True)
    switch = loop.create_future()

    async def watch():
        while (where := switched_to(trace)) is None:
            await asyncio.sleep(0.02)
        switch.set_result(where)

    watcher = loop.create_task(watch())
    try:
        handed = await audio_rtp.run_audio_call(session, sock=rtp_sock, remote=None, switch=switch,
                                                max_duration=60)
    finally:
        watcher.cancel()
    if not isinstance(handed, audio_rtp.Handover):
        t38_sock.close()
        return session, handed, None
    result = await t38_udp.run_call(session, sock=t38_sock, remote=switch.result(), paced=True,
                                    max_duration=60, resume=handed.pending)
    return session, result, handed


def _send_through_sipp(scen, tmp_path, pages, bye_wait: int, *, far_end_result: bool = False):
    """xmfax sends ``pages`` to sipp playing ``scen`` (its media: ``far_end`` on two sockets
    of ours); (what send returned, the far end's (session, result, handover) or None, sipp's run)."""
    rtp_sock = peers._bound(socket.SOCK_DGRAM)
    t38_sock = peers._bound(socket.SOCK_DGRAM)
    rtp_port, t38_port = rtp_sock.getsockname()[1], t38_sock.getsockname()[1]

    async def main(uas: Sipp):
        media = asyncio.create_task(far_end(rtp_sock, t38_sock, uas.message_file))
        try:
            sent = await api.send(pages, via=f"sip:+{DNIS}@127.0.0.1:{uas.port}", realtime=True,
                                  max_duration=60, sip={"t38_switch_after": None, "audio_wait": 1.0})
            return sent, (await asyncio.wait_for(media, 15) if far_end_result else None)
        finally:
            media.cancel()

    with Sipp(scen, tmp_path / "uas", params={"bye_wait": bye_wait}, pause=PAUSE_MS, timeout=60,
              variables={"t38_port": t38_port, "audio_port": rtp_port}) as uas:
        sent, far = asyncio.run(asyncio.wait_for(main(uas), 90))
        got = uas.wait(15)
    return sent, far, got


def test_sipp_reinvites_to_t38_during_the_audio_fax(tmp_path):
    pages = small_pages(1, rows=80, seed=11)
    sent, (session, result, handed), got = _send_through_sipp(scenario(tmp_path), tmp_path, pages, 20000,
                                                              far_end_result=True)
    assert got.ok, got.log()
    assert handed is not None, "the audio fax ended before the switch"
    assert sent.ok, sent.summary()
    assert result.status == "success", result.reason
    assert sent.sip["media"] == "audio>t38" and sent.sip["t38_switch"]["by"] == "remote"
    assert PAUSE_MS / 1000 - 0.5 <= sent.sip["t38_switch"]["t"] <= PAUSE_MS / 1000 + 3
    # T.30 had run over audio before the switch (DIS heard as audio), then went on over T.38
    before = [e["frame"] for e in sent.events if e["type"] == "FrameReceived" and e["t"] < sent.sip["t38_switch"]["t"]]
    assert "DIS" in before, sent.events
    (got_page,) = result.received_pages
    assert np.array_equal(got_page.image, pages[0].image)
    invites = got.sent("INVITE")
    assert len(invites) == 1 and "m=image" in invites[0].body                 # sipp's re-INVITE


def test_sipp_hangs_up_during_the_t38_part(tmp_path):
    """After its re-INVITE sipp waits 2 s for a BYE, then sends its own: the fax, moved to
    T.38, ends at once as a lost line (as any T.38 fax does on a BYE), no page claimed."""
    pages = small_pages(1, rows=400, seed=12)      # long enough still to be running at the BYE
    sent, _, got = _send_through_sipp(scenario(tmp_path), tmp_path, pages, 2000)
    assert got.ok, got.log()
    assert got.sent("BYE") and not got.received("BYE")                      # sipp hung up
    assert not sent.ok and sent.reason == "line_lost", sent.summary()
    assert "far end hung up (BYE)" in sent.summary()
    assert sent.sip["media"] == "audio>t38"
    assert sent.pages == [] or all(p.response != "MCF" for p in sent.pages)


def test_sipp_switches_back_to_audio_during_the_t38_part(tmp_path):
    """A switch back to audio during the T.38 part ends the fax as a lost line, as it ends any
    T.38 fax (only audio to T.38 goes on); xmfax answers the re-INVITE and then hangs up."""
    pages = small_pages(1, rows=400, seed=13)
    sent, _, got = _send_through_sipp(scenario_back_to_audio(tmp_path), tmp_path, pages, 20000)
    assert got.ok, got.log()
    assert [m.body.count("m=image") for m in got.sent("INVITE")] == [1, 0]   # to T.38, back to audio
    assert got.received("BYE")                                               # xmfax hung up after
    assert not sent.ok and sent.reason == "line_lost", sent.summary()
    assert "switched the call to audio during the T.38 fax" in sent.summary()
    assert sent.sip["media"] == "audio>t38"
    assert all(p.response != "MCF" for p in sent.pages)
