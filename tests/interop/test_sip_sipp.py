"""Interop: xmfax's SIP user agent against sipp scenarios (tests/sip/scenarios/), as caller and
as callee, over UDP and TCP; the fax itself against spandsp's T.38 terminal on the port sipp
puts in its SDP (tests/sip/peers.py: SpandspT38Endpoint), pages compared pixel for pixel.

First each scenario is run against a sipp partner, so a scenario is known to be right before
it judges xmfax. Then, per issue #11: G.711 then a T.38 re-INVITE (either end switches), T.38
offered directly, a 488 to the T.38 re-INVITE (the call stays up until xmfax's BYE), 401 and
407 digest challenges (the digest is recomputed here from sipp's trace), REGISTER with refresh,
CANCEL before the answer (both directions), a lost first INVITE and a lost first 200 (the
retransmission times read from sipp's -trace_msg), BYE from either side, and sipp's uppercase
``transport=UDP``/``TCP`` in every Contact.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.interop

if shutil.which("sipp") is None:
    pytest.skip("sipp is not installed (Debian package sip-tester; scripts/install.sh --test)",
                allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE.parent / "api"))
sys.path.insert(0, str(HERE))
import peers  # noqa: E402
from peers import Sipp  # noqa: E402
from peers_media import SpandspT38Endpoint, UdpTap  # noqa: E402

from xmfax import api  # noqa: E402
from xmfax.sip.auth import Credentials  # noqa: E402

USER, PASSWORD = "alice", "wonder-Land-7"
DNIS = "15550100"


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------- pages
def page():
    from faxkit import text_page
    return text_page(1, lines=6)


def write_tiff(pages, path: Path) -> Path:
    from PIL import Image
    frames = [Image.fromarray(~p.image).convert("1") for p in pages]
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:], dpi=(204, 196))
    return path


def read_tiff(path: Path) -> list[np.ndarray]:
    from PIL import Image
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            out.append(~np.array(im.convert("1"), dtype=bool))
    return out


def assert_same(sent_images, got_images) -> None:
    assert len(got_images) == len(sent_images)
    for k, (a, b) in enumerate(zip(sent_images, got_images), 1):
        assert a.shape == b.shape, f"page {k}: {b.shape} != {a.shape}"
        assert int(np.count_nonzero(a != b)) == 0, f"page {k}: pixels differ"


# --------------------------------------------------------------------------- helpers
def ladder_of(result) -> list[tuple[str, str]]:
    return [(e["dir"], e["summary"]) for e in result.events if e.get("type") == "SipMessage"]


def no_secret(result) -> None:
    text = json.dumps(result.to_dict())
    assert PASSWORD not in text


def digest_ok(value: str, method: str, password: str = PASSWORD) -> bool:
    """Recompute an RFC 2617/7616 MD5 digest response (qop=auth or none) from a header value."""
    fields = dict((k.lower(), v.strip('"')) for k, v in
                  re.findall(r'(\w+)=("[^"]*"|[^,\s]+)', value.split(" ", 1)[1]))
    ha1 = hashlib.md5(f"{fields['username']}:{fields['realm']}:{password}".encode()).hexdigest()
    ha2 = hashlib.md5(f"{method}:{fields['uri']}".encode()).hexdigest()
    if fields.get("qop"):
        want = hashlib.md5(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}"
                           .encode()).hexdigest()
    else:
        want = hashlib.md5(f"{ha1}:{fields['nonce']}:{ha2}".encode()).hexdigest()
    return fields.get("response") == want


def retransmission_gap(uas: peers.SippResult) -> float:
    """uas_ignore_first_invite: seconds from the first INVITE to the 200. sipp traces the first
    copy only (the retransmission it takes is not written to -trace_msg), and answers only
    when the retransmission arrives: the gap is the retransmission's delay (+ < 10 ms)."""
    return uas.sent("SIP/2.0 200")[0].time - uas.received("INVITE")[0].time


def sent_bye_by(result: peers.SippResult) -> str:
    """Who hung up, from sipp's side: "xmfax" when sipp received the BYE, "sipp" when it sent one."""
    if result.received("BYE"):
        return "xmfax"
    if result.sent("BYE"):
        return "sipp"
    return "nobody"


async def send_to(uas: Sipp, *, transport: str = "udp", sip: dict | None = None, **kw):
    via = f"sip:+{DNIS}@127.0.0.1:{uas.port}" + (";transport=tcp" if transport == "tcp" else "")
    kw.setdefault("realtime", False)
    kw.setdefault("max_duration", 60)
    return await api.send([page()], via=via, sip=sip, **kw)


def fax_to_sipp(tmp: Path, scenario: str, *, transport: str = "udp", sipp_kw: dict | None = None, **kw):
    """One fax from xmfax to sipp playing ``scenario`` as the UAS (its BYE held 20 s), spandsp
    receiving at the T.38 port sipp names: both sides end well and page() arrives intact.
    (xmfax's result, sipp's result)"""
    rx = tmp / "rx.tif"
    with SpandspT38Endpoint(calling=False, rx_tiff=str(rx)) as media, \
            Sipp(scenario, tmp / "uas", transport=transport, params={"bye_wait": 20000},
                 variables={"t38_port": media.port}, **(sipp_kw or {})) as uas:
        result = run(send_to(uas, transport=transport, **kw))
        got = uas.wait(15)
        assert media.wait(5) == 0
    assert result.ok, (result.reason, result.reason_text)
    assert got.ok, got.log()
    assert_same([page().image], read_tiff(rx))
    return result, got


async def receive_from(tmp: Path, scenario: str, *, transport: str = "udp", sipp_kw: dict | None = None,
                       on_call=None, sip: dict | None = None, timeout: float = 40.0, **kw):
    """One call from a sipp UAC to an xmfax receiver: (results, sipp result, calls seen, pages)."""
    calls, pages = [], []

    async def hook(call):
        calls.append(call)
        return await on_call(call) if on_call else api.Accept()

    receiver = api.receive(via=f"sip://127.0.0.1:0;transport={transport}", once=True, realtime=False,
                           on_call=hook, on_page=lambda call, ev: pages.append(ev.page), sip=sip,
                           local_id="+1 555 0199", **kw)
    task = asyncio.create_task(receiver.run())
    host, port = await asyncio.wait_for(receiver.ready(), 10)
    uac = Sipp(scenario, tmp / "uac", remote=f"127.0.0.1:{port}", service=DNIS, transport=transport,
               **(sipp_kw or {}))
    try:
        uac.start()
        try:
            results = await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            receiver.stop()
            results = await asyncio.wait_for(task, 10)
        got = await asyncio.to_thread(uac.wait, 20)
    finally:
        uac.stop()
        receiver.stop()
        if not task.done():
            task.cancel()
    return results, got, calls, pages


# =========================================================================== the scenarios
AUTH_KEYS = dict(variables={"auth_user": USER, "auth_password": PASSWORD})
PAIRS = {
    # id: (scenario sipp plays as UAS, as UAC, UAS options, UAC options, transports)
    "g711-uas-reinvites": ("uas_g711_sipp_reinvites.xml", "uac_g711_await_reinvite.xml",
                           dict(pause=200, params={"bye_wait": 5000}), dict(params={"bye_wait": 300}), ("udp", "tcp")),
    "g711-uac-reinvites": ("uas_g711_await_reinvite.xml", "uac_g711_sipp_reinvites.xml",
                           dict(params={"bye_wait": 300}), dict(pause=100, params={"bye_wait": 5000}), ("udp",)),
    "t38": ("uas_t38.xml", "uac_t38.xml", dict(params={"bye_wait": 5000}), dict(params={"bye_wait": 300}),
            ("udp", "tcp")),
    "cancel": ("uas_ring_await_cancel.xml", "uac_cancel.xml", {}, {}, ("udp",)),
    "lost-invite": ("uas_ignore_first_invite.xml", "uac", dict(params={"bye_wait": 5000}), {}, ("udp",)),
    "uas-488": ("uas_g711_refuse_t38.xml", "partners/uac_reinvite_gets_488.xml",
                dict(params={"bye_wait": 5000}), {}, ("udp",)),
    "uac-488": ("partners/uas_reinvite_gets_488.xml", "uac_g711_refuse_t38.xml",
                {}, dict(params={"bye_wait": 5000}), ("udp",)),
    "401": ("uas_challenge_401.xml", "partners/uac_answers_challenge.xml",
            dict(AUTH_KEYS, params={"bye_wait": 5000}), dict(auth=(USER, PASSWORD)), ("udp",)),
    "407": ("uas_challenge_407.xml", "partners/uac_answers_challenge.xml",
            dict(AUTH_KEYS, params={"bye_wait": 5000, "auth_user": USER}), dict(auth=(USER, PASSWORD)), ("udp",)),
    "register": ("uas_register.xml", "partners/uac_registers.xml", AUTH_KEYS,
                 dict(AUTH_KEYS, auth=(USER, PASSWORD), pause=1500), ("udp",)),
    "rejected": ("partners/uas_refuses.xml", "uac_rejected.xml", dict(params={"reject_status": 603}),
                 dict(params={"reject_status": 603}), ("udp",)),
    "bad-sdp": ("partners/uas_refuses.xml", "uac_bad_sdp.xml", dict(params={"reject_status": 400}), {}, ("udp",)),
}
PAIR_CASES = [(name, t) for name, spec in PAIRS.items() for t in spec[4]]


def run_pair(tmp: Path, name: str, transport: str, *, uac_override: dict | None = None):
    uas_s, uac_s, uas_kw, uac_kw, _ = PAIRS[name]
    uac_kw = {**uac_kw, **(uac_override or {})}
    with Sipp(uas_s, tmp / "uas", transport=transport, label="uas", **uas_kw) as uas:
        got_uac = Sipp(uac_s, tmp / "uac", remote=f"127.0.0.1:{uas.port}", service=DNIS, transport=transport,
                       label="uac", **uac_kw).run()
        got_uas = uas.wait(20)
    return got_uas, got_uac


@pytest.mark.parametrize("name,transport", PAIR_CASES, ids=[f"{n}-{t}" for n, t in PAIR_CASES])
def test_scenario_against_sipp(tmp_path, name, transport):
    """Each scenario xmfax meets, played against a sipp partner: the scenarios themselves are right."""
    got_uas, got_uac = run_pair(tmp_path, name, transport)
    assert got_uas.ok, got_uas.log()
    assert got_uac.ok, got_uac.log()


def test_challenge_scenario_refuses_a_wrong_password(tmp_path):
    """The 401 scenario can fail: a wrong digest is refused (403) and the scenario reports it."""
    got_uas, got_uac = run_pair(tmp_path, "401", "udp", uac_override=dict(auth=(USER, "not-the-password")))
    assert not got_uas.ok
    assert got_uas.sent("SIP/2.0 403")


def branch(message) -> str:
    return message.header("Via").split("branch=")[1].split(";")[0].strip()


def test_cancel_scenario_matches_the_invite(tmp_path):
    """uac_cancel's CANCEL and its ACK of the 487 carry the INVITE's branch (RFC 3261 §9.1,
    §17.1.1.3): sipp as UAS matches by Call-ID only, so this is checked here."""
    got_uas, _ = run_pair(tmp_path, "cancel", "udp")
    invite, cancel, ack = got_uas.received("INVITE")[0], got_uas.received("CANCEL")[0], got_uas.received("ACK")[0]
    assert branch(cancel) == branch(invite) == branch(ack)
    assert cancel.header("CSeq") == invite.header("CSeq").replace("INVITE", "CANCEL")


def test_lost_invite_scenario_sees_the_retransmission(tmp_path):
    """sipp against sipp: the "lost" first INVITE is retransmitted T1 = 0.5 s later."""
    got_uas, _ = run_pair(tmp_path, "lost-invite", "udp")
    assert 0.4 <= retransmission_gap(got_uas) <= 0.8, got_uas.ladder()


# =========================================================================== xmfax calls sipp
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_send_g711_then_sipp_reinvites_to_t38(tmp_path, transport):
    """sipp answers G.711 and re-INVITEs to T.38 (as a gateway on CNG); spandsp receives the fax."""
    result, got = fax_to_sipp(tmp_path, "uas_g711_sipp_reinvites.xml", transport=transport,
                              sipp_kw=dict(pause=300))
    assert result.sip["t38_switch"]["by"] == "remote"
    assert result.sip["final_status"] == 200
    assert result.sip["dnis"] == f"+{DNIS}"
    # xmfax hung up after the fax, in the dialog, to sipp's Contact (uppercase transport=)
    assert sent_bye_by(got) == "xmfax", got.ladder()
    bye = got.received("BYE")[0]
    assert bye.transport == transport.upper()
    assert bye.header("Call-ID") == got.received("INVITE")[0].header("Call-ID")
    # the record's ladder has the SIP messages; the 200 to the re-INVITE carried T.38
    lines = ladder_of(result)
    assert any(d == "out" and s.startswith("SIP/2.0 200") and "t38" in s for d, s in lines), lines


def test_send_g711_then_own_reinvite_to_t38(tmp_path):
    """sipp answers G.711 and waits; xmfax re-INVITEs to T.38 itself (t38_switch_after)."""
    result, got = fax_to_sipp(tmp_path, "uas_g711_await_reinvite.xml", sip=dict(t38_switch_after=0.3))
    assert result.sip["t38_switch"]["by"] == "local"
    invites = got.received("INVITE")
    assert len(invites) == 2 and "m=image" in invites[1].body and "m=audio" in invites[0].body
    # the re-INVITE came about t38_switch_after after the ACK
    ack = got.received("ACK")[0]
    assert 0.2 <= invites[1].time - ack.time <= 2.0, got.ladder()
    assert sent_bye_by(got) == "xmfax"


def test_send_sipp_hangs_up_mid_fax(tmp_path):
    """sipp sends BYE while the pages are on their way: xmfax answers it 200 and reports a
    failure, never success, and claims no page spandsp did not get whole."""
    rx = tmp_path / "rx.tif"
    from faxkit import text_page
    sent = [text_page(k, lines=30) for k in (1, 2, 3)]
    with SpandspT38Endpoint(calling=False, rx_tiff=str(rx), speed=1.0) as media, \
            Sipp("uas_t38.xml", tmp_path / "uas", params={"bye_wait": 1500},
                 variables={"t38_port": media.port}) as uas:
        result = run(send_to(uas, sip=dict(offer="t38"), realtime=True))
        got = uas.wait(15)
    assert got.ok, got.log()
    assert sent_bye_by(got) == "sipp"
    assert not result.ok, (result.reason, result.reason_text)
    assert result.reason in ("line_lost", "hangup"), (result.reason, result.reason_text)
    delivered = len(read_tiff(rx)) if rx.exists() and rx.stat().st_size else 0
    assert result.page_count <= delivered < len(sent)


def test_send_reinvite_glare_491_then_retry(tmp_path):
    """Both ends re-INVITE to T.38 at once (sipp sends its own as xmfax's arrives): xmfax answers
    sipp's 491, ACKs the 491 sipp gives it, and, as the Call-ID's owner, retries after 2.1-4 s
    (RFC 3261 §14.1); the retry is answered T.38 and the fax goes through."""
    result, got = fax_to_sipp(tmp_path, "uas_glare.xml", sip=dict(t38_switch_after=0.2))
    assert [m.status for m in got.received("SIP/2.0 491")] == [491]      # xmfax refused ours
    invites = got.received("INVITE")
    assert len(invites) == 3, got.ladder()                               # initial, re-INVITE, retry
    ours_491 = got.sent("SIP/2.0 491")[0]
    assert 2.0 <= invites[2].time - ours_491.time <= 4.2, got.ladder()
    assert int(invites[2].header("CSeq").split()[0]) > int(invites[1].header("CSeq").split()[0])
    assert result.sip["t38_switch"]["by"] == "local"


def test_send_t38_offered_directly(tmp_path):
    result, got = fax_to_sipp(tmp_path, "uas_t38.xml", sip=dict(offer="t38"))
    assert result.sip["t38_switch"]["by"] == "offer"
    assert len(got.received("INVITE")) == 1


def test_small_t38_datagram(tmp_path):
    """The far end allows only 176-octet datagrams (a common gateway value): the fax must fit
    (ECM frames split over several packets; this raised out of api.send until 13d23c2)."""
    rx = tmp_path / "rx.tif"
    sent = page()
    with SpandspT38Endpoint(calling=False, rx_tiff=str(rx)) as media, \
            Sipp("uas_t38.xml", tmp_path / "uas", params={"bye_wait": 20000},
                 variables={"t38_port": media.port, "t38_datagram": 176}) as uas:
        try:
            result = run(send_to(uas, sip=dict(offer="t38")))
        finally:
            uas.wait(15)
        assert media.wait(5) == 0
    assert result.ok, (result.reason, result.reason_text)
    assert result.sip["t38"]["max_datagram"] == 176
    assert_same([sent.image], read_tiff(rx))


def test_send_t38_refused_with_488_keeps_the_call_until_bye(tmp_path):
    """sipp (a phone without T.38) answers the re-INVITE 488: the call stays up on G.711 (RFC 3261
    §14.1) and xmfax (its audio fallback off) ends it with its own BYE in the same dialog, reason
    t38_refused."""
    with Sipp("uas_g711_refuse_t38.xml", tmp_path / "uas", params={"bye_wait": 20000}) as uas:
        result = run(send_to(uas, sip=dict(t38_switch_after=0.2, audio_fallback=False)))
        got = uas.wait(15)
    assert got.ok, got.log()
    assert not result.ok and result.reason == "t38_refused", (result.reason, result.reason_text)
    first_lines = [(m.direction, m.first_line.split(" ")[0] if m.method else str(m.status))
                   for m in got.messages]
    # INVITE, 200, ACK, re-INVITE, 488, ACK of the 488, BYE (from xmfax), 200
    assert [x for _, x in first_lines] == ["INVITE", "200", "ACK", "INVITE", "488", "ACK", "BYE", "200"], got.ladder()
    bye = got.received("BYE")[0]
    reinvite = got.received("INVITE")[1]
    assert int(bye.header("CSeq").split()[0]) > int(reinvite.header("CSeq").split()[0])
    assert bye.header("Call-ID") == reinvite.header("Call-ID")
    assert bye.header("From").split("tag=")[1] == reinvite.header("From").split("tag=")[1]
    assert result.sip["final_status"] == 200


@pytest.mark.parametrize("status", [401, 407])
def test_send_answers_a_digest_challenge(tmp_path, status):
    """sipp challenges the INVITE (401 WWW-Authenticate / 407 Proxy-Authenticate); xmfax retries
    once with the digest (checked by sipp for 401 and recomputed here for both), is answered,
    and the password appears nowhere in the record."""
    header = "Authorization" if status == 401 else "Proxy-Authorization"
    with Sipp(f"uas_challenge_{status}.xml", tmp_path / "uas", params={"bye_wait": 500, "auth_user": USER},
              **AUTH_KEYS) as uas:
        result = run(send_to(uas, credentials=Credentials(USER, PASSWORD)))
        got = uas.wait(15)
    assert got.ok, got.log()
    invites = got.received("INVITE")
    assert len(invites) == 2
    assert invites[0].header(header) is None
    assert digest_ok(invites[1].header(header), "INVITE")
    assert invites[1].header("Call-ID") == invites[0].header("Call-ID")
    assert int(invites[1].header("CSeq").split()[0]) == int(invites[0].header("CSeq").split()[0]) + 1
    assert got.received("ACK")        # the challenge itself was ACKed (§17.1.1.3)
    assert result.sip["final_status"] == 200
    # sipp hung up at once (no fax): a failure, never success
    assert not result.ok
    no_secret(result)


def test_send_wrong_password_is_refused_not_success(tmp_path):
    with Sipp("uas_challenge_401.xml", tmp_path / "uas", params={"bye_wait": 500, "auth_user": USER},
              **AUTH_KEYS) as uas:
        result = run(send_to(uas, credentials=Credentials(USER, "wrong-password")))
        got = uas.wait(15)
    assert got.sent("SIP/2.0 403")
    assert not result.ok
    assert result.sip["final_status"] == 403
    no_secret(result)


def test_send_cancel_before_answer(tmp_path):
    """sipp rings and never answers: xmfax gives up after invite_timeout with CANCEL; sipp answers
    200 to it, 487 to the INVITE, and gets its ACK (RFC 3261 §9.1)."""
    with Sipp("uas_ring_await_cancel.xml", tmp_path / "uas") as uas:
        t0 = time.monotonic()
        result = run(send_to(uas, sip=dict(invite_timeout=1.0)))
        took = time.monotonic() - t0
        got = uas.wait(15)
    assert got.ok, got.log()
    assert not result.ok and result.reason == "no_answer", (result.reason, result.reason_text)
    assert took < 10
    cancel = got.received("CANCEL")[0]
    invite = got.received("INVITE")[0]
    assert branch(cancel) == branch(invite)
    assert 0.8 <= cancel.time - invite.time <= 3.0
    assert got.received("ACK")


def test_send_first_invite_lost_is_retransmitted_at_t1(tmp_path):
    """sipp ignores the first INVITE: xmfax retransmits it 500 ms later (Timer A = T1), same branch."""
    with Sipp("uas_ignore_first_invite.xml", tmp_path / "uas", params={"bye_wait": 500}) as uas:
        result = run(send_to(uas))
        got = uas.wait(15)
    assert got.ok, got.log()
    assert 0.4 <= retransmission_gap(got) <= 0.8, got.ladder()
    assert result.sip["final_status"] == 200
    assert not result.ok                  # sipp hung up before any fax: never success
    assert sent_bye_by(got) == "sipp"


# =========================================================================== sipp calls xmfax
def spandsp_sender(tmp: Path, sent) -> SpandspT38Endpoint:
    return SpandspT38Endpoint(calling=True, tx_tiff=str(write_tiff([sent], tmp / "tx.tif")))


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_receive_g711_then_own_reinvite(tmp_path, transport):
    """sipp calls with G.711 (From +15550123, P-Asserted-Identity +15550199); xmfax answers G.711
    and re-INVITEs to T.38 itself; spandsp sends the fax."""
    sent = page()
    with spandsp_sender(tmp_path, sent) as media:
        results, got, calls, pages = run(receive_from(
            tmp_path, "uac_g711_await_reinvite.xml", transport=transport,
            sipp_kw=dict(variables={"t38_port": media.port}, params={"bye_wait": 20000}),
            sip=dict(t38_switch_after=0.3)))
        assert media.wait(5) == 0
    assert got.ok, got.log()
    assert len(results) == 1 and results[0].ok, (results[0].reason, results[0].reason_text)
    assert_same([sent.image], [p.image for p in pages])
    call = calls[0]
    assert call.ani == "+15550199"                 # P-Asserted-Identity before From
    assert call.dnis == DNIS
    names = [n.lower() for n, _ in call.headers]
    assert "p-asserted-identity" in names and "user-agent" in names
    assert results[0].sip["t38_switch"]["by"] == "local"
    # xmfax's re-INVITE went to sipp's Contact with its uppercase transport parameter
    reinvite = got.received("INVITE")[0]
    assert reinvite.first_line.startswith("INVITE sip:sipp@127.0.0.1")
    assert f"transport={transport.upper()}" in reinvite.first_line
    assert reinvite.transport == transport.upper()


def test_receive_sipp_reinvites_to_t38(tmp_path):
    sent = page()
    with spandsp_sender(tmp_path, sent) as media:
        results, got, calls, pages = run(receive_from(
            tmp_path, "uac_g711_sipp_reinvites.xml",
            sipp_kw=dict(variables={"t38_port": media.port}, pause=50, params={"bye_wait": 20000}),
            sip=dict(t38_switch_after=5.0)))
        assert media.wait(5) == 0
    assert got.ok, got.log()
    assert results[0].ok, (results[0].reason, results[0].reason_text)
    assert_same([sent.image], [p.image for p in pages])
    assert results[0].sip["t38_switch"]["by"] == "remote"
    assert not got.received("INVITE")            # xmfax never sent its own re-INVITE


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_receive_t38_offered_directly(tmp_path, transport):
    sent = page()
    with spandsp_sender(tmp_path, sent) as media:
        results, got, calls, pages = run(receive_from(
            tmp_path, "uac_t38.xml", transport=transport,
            sipp_kw=dict(variables={"t38_port": media.port}, params={"bye_wait": 20000})))
        assert media.wait(5) == 0
    assert got.ok, got.log()
    assert results[0].ok, (results[0].reason, results[0].reason_text)
    assert_same([sent.image], [p.image for p in pages])
    assert results[0].sip["t38_switch"]["by"] == "offer"
    assert calls[0].info.get("offer") == ["t38"]
    answer = got.received("SIP/2.0 200")[0]
    assert "m=image" in answer.body and "m=audio" not in answer.body


def test_receive_t38_refused_with_488_ends_with_bye(tmp_path):
    results, got, calls, pages = run(receive_from(
        tmp_path, "uac_g711_refuse_t38.xml", sipp_kw=dict(params={"bye_wait": 20000}),
        sip=dict(t38_switch_after=0.2, audio_fallback=False)))
    assert got.ok, got.log()
    assert not results[0].ok and results[0].reason == "t38_refused", (results[0].reason, results[0].reason_text)
    assert not pages
    assert sent_bye_by(got) == "xmfax"
    bye = got.received("BYE")[0]
    assert bye.header("Call-ID") == got.received("INVITE")[0].header("Call-ID")


@pytest.mark.parametrize("status", [486, 603, 404])
def test_receive_reject_with_a_sip_status(tmp_path, status):
    """on_call returns Reject(status=...): sipp gets exactly that final status and ACKs it; the
    receiver's record is a rejection, never a fax."""
    async def refuse(call):
        return api.Reject("not for us", status=status)

    results, got, calls, pages = run(receive_from(
        tmp_path, "uac_rejected.xml", on_call=refuse, timeout=15,
        sipp_kw=dict(params={"reject_status": status})))
    assert got.ok, got.log()
    finals = [m.status for m in got.received("SIP/2.0") if m.status >= 200]
    assert finals == [status], got.ladder()
    assert len(results) == 1 and not results[0].ok and results[0].sip["final_status"] == status
    assert not pages


def test_receive_malformed_sdp_gets_400_then_a_good_call_works(tmp_path):
    """An INVITE with a malformed SDP gets a final 400 with a Warning (never reaches on_call,
    no record of a fax), sipp ACKs it, and the same receiver then takes a proper call."""
    sent = page()

    async def go(media):
        calls, pages = [], []
        receiver = api.receive(via="sip://127.0.0.1:0", realtime=False, local_id="+1 555 0199",
                               on_call=lambda call: calls.append(call) or api.Accept(),
                               on_page=lambda call, ev: pages.append(ev.page))
        task = asyncio.create_task(receiver.run())
        try:
            host, port = await asyncio.wait_for(receiver.ready(), 10)
            bad = await asyncio.to_thread(Sipp("uac_bad_sdp.xml", tmp_path / "bad", remote=f"{host}:{port}",
                                               service=DNIS).run, 15)
            good = await asyncio.to_thread(Sipp("uac_t38.xml", tmp_path / "good", remote=f"{host}:{port}",
                                                service=DNIS, variables={"t38_port": media.port},
                                                params={"bye_wait": 20000}).run, 30)
        finally:
            receiver.stop()
            results = await asyncio.wait_for(task, 15)
        return bad, good, calls, pages, results

    with spandsp_sender(tmp_path, sent) as media:
        bad, good, calls, pages, results = run(go(media))
        assert media.wait(5) == 0
    assert bad.ok, bad.log()
    refusal = [m for m in bad.received("SIP/2.0 4")]
    assert [m.status for m in refusal] == [400], bad.ladder()
    assert refusal[0].header("Warning"), refusal[0].text
    assert good.ok, good.log()
    assert len(calls) == 1 and calls[0].info.get("offer") == ["t38"]
    assert len(results) == 1 and results[0].ok
    assert_same([sent.image], [p.image for p in pages])


def test_receive_cancel_while_on_call_decides(tmp_path):
    """sipp CANCELs while on_call is still deciding: 200 to the CANCEL, 487 to the INVITE, no fax,
    no success, and the receiver goes on."""
    async def slow(call):
        await asyncio.sleep(2.0)
        return api.Accept()

    results, got, calls, pages = run(receive_from(tmp_path, "uac_cancel.xml", on_call=slow, timeout=15))
    assert got.ok, got.log()
    assert [m.status for m in got.received("SIP/2.0")][-2:] == [200, 487], got.ladder()
    assert all(not r.ok for r in results)
    assert len(calls) == 1


def test_receive_first_200_lost_is_retransmitted(tmp_path):
    """The first two 200 OKs to sipp's INVITE are lost (a UDP tap between sipp and xmfax drops
    them and times every copy): xmfax retransmits its 2xx at T1, then 2*T1 (RFC 3261
    §13.3.1.4) until sipp's ACK, then stops."""
    async def go():
        receiver = api.receive(via="sip://127.0.0.1:0", once=True, realtime=False, local_id="+1 555 0199",
                               sip=dict(t38_switch_after=None))
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        with UdpTap((host, port), lose=("SIP/2.0 200", 2)) as tap:
            uac = Sipp("uac", tmp_path / "uac", remote=f"127.0.0.1:{tap.port}", service=DNIS, pause=300)
            try:
                uac.start()
                got = await asyncio.to_thread(uac.wait, 20)
                results = await asyncio.wait_for(task, 15)
            finally:
                uac.stop()
                receiver.stop()
        return got, results, tap
    got, results, tap = run(go())
    assert got.ok, got.log()
    t0 = tap.seen[0].time
    seen = [(round(t.time - t0, 3), t.first_line, t.lost) for t in tap.seen]
    oks = [t for t in tap.from_target("SIP/2.0 200") if b" INVITE" in t.data.split(b"CSeq:", 1)[1][:30]]
    assert len(oks) >= 3 and oks[0].lost and oks[1].lost and not oks[2].lost, seen
    assert 0.4 <= oks[1].time - oks[0].time <= 0.7, seen          # T1
    assert 0.85 <= oks[2].time - oks[1].time <= 1.3, seen         # 2*T1
    ack = tap.to_target("ACK")[0]
    assert all(t.time < ack.time + 0.05 for t in oks), f"2xx retransmitted after the ACK: {seen}"
    assert all(not r.ok for r in results)          # sipp hung up before a fax


def test_register_with_challenge_and_refresh(tmp_path):
    """sipp as registrar: 401 to every REGISTER, 200 with expires=4: xmfax answers the digest and
    refreshes at about half the granted time, again through a challenge."""
    with Sipp("uas_register.xml", tmp_path / "registrar", variables={"expires": 4, **AUTH_KEYS["variables"]}) as reg:
        async def go():
            receiver = api.receive(via="sip://127.0.0.1:0", register=f"sip:{USER}@127.0.0.1:{reg.port}",
                                   credentials=Credentials(USER, PASSWORD), realtime=False)
            task = asyncio.create_task(receiver.run())
            try:
                await asyncio.wait_for(receiver.ready(), 15)
                return await asyncio.to_thread(reg.wait, 15)
            finally:
                receiver.stop()
                await asyncio.wait_for(task, 15)
        got = run(go())
    assert got.ok, got.log()
    regs = got.received("REGISTER")
    assert len(regs) >= 4
    assert regs[0].header("Authorization") is None
    for k in (1, 3):
        assert digest_ok(regs[k].header("Authorization"), "REGISTER"), regs[k].text
    granted = got.sent("SIP/2.0 200")[0]
    refresh = regs[2]
    assert 1.5 <= refresh.time - granted.time <= 3.9, got.ladder()
    assert regs[0].header("Call-ID") == regs[2].header("Call-ID")
    contact = regs[1].header("Contact")
    assert "127.0.0.1" in contact


def test_options_ping_with_sipsak():
    """sipsak's OPTIONS ping (what Kamailio's dispatcher and monitoring send) gets 200 with
    Allow and Accept from a receiver. (sipsak writes at most 4 digits of a port in its
    Request-URI and To; it still sends to the right port.)"""
    if shutil.which("sipsak") is None:
        pytest.skip("sipsak is not installed (Debian package sipsak; scripts/install.sh --test)")
    import subprocess

    async def go():
        receiver = api.receive(via="sip://127.0.0.1:0", realtime=False)
        task = asyncio.create_task(receiver.run())
        try:
            host, port = await asyncio.wait_for(receiver.ready(), 10)
            return await asyncio.to_thread(subprocess.run, ["sipsak", "-vv", "-s", f"sip:fax@{host}:{port}"],
                                           capture_output=True, text=True, timeout=15)
        finally:
            receiver.stop()
            await asyncio.wait_for(task, 15)
    out = run(go())
    assert out.returncode == 0, out.stdout + out.stderr
    reply = out.stdout.split("message received:", 1)[1]
    assert reply.lstrip().startswith("SIP/2.0 200 OK"), reply
    assert re.search(r"^Allow: .*INVITE.*OPTIONS", reply, re.M) and "Accept: application/sdp" in reply
