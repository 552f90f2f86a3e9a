"""Interop: baresip 1.0 (Debian baresip-core) as a real G.711 phone without T.38.

baresip answers a T.38 re-INVITE with 488 and stays on G.711 (RFC 3261 §14.1). xmfax, calling
it or called by it, answers/offers G.711, re-INVITEs to T.38, gets the 488 and then, with its
audio fallback off, ends the call itself with BYE and reason t38_refused: never a hang, never
success. With the fallback on (the default) xmfax faxes over G.711, which baresip cannot
answer: T.30 gives up after T1 (no DIS) and xmfax hangs up. That the call did stay up after the 488 shows in baresip's own SIP trace:
the dialog is still there when the BYE arrives (200 OK, not 481), and baresip closes the session
only on that BYE.
"""
from __future__ import annotations

import asyncio
import re
import shutil
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.interop

if shutil.which("baresip") is None:
    pytest.skip("baresip is not installed (Debian package baresip-core; scripts/install.sh --test)",
                allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE.parent / "api"))
from peers import Baresip  # noqa: E402

from xmfax import api  # noqa: E402

_TRACE = re.compile(r"^(UDP|TCP) (\S+) -> (\S+)\n(.*?)(?=\n\x1b\[;m|\Z)", re.M | re.S)


def baresip_messages(text: str) -> list[tuple[str, str]]:
    """baresip's -s trace: (direction seen from baresip "in"/"out", first line) in order."""
    out = []
    for m in _TRACE.finditer(text.replace("\r\n", "\n")):
        src, dst, body = m.group(2), m.group(3), m.group(4)
        first = body.strip().split("\n", 1)[0].strip()
        out.append((src, dst, first))
    return out


def first_lines(messages, port: int) -> list[str]:
    """Messages to ("<") and from (">") baresip's SIP port, as "<INVITE" / ">SIP/2.0 488"."""
    lines = []
    for src, dst, first in messages:
        mark = ">" if src.endswith(f":{port}") else "<"
        word = first if first.startswith("SIP/2.0") else first.split(" ", 1)[0]
        if first.startswith("SIP/2.0"):
            word = " ".join(first.split(" ")[:2])
        lines.append(mark + word)
    return lines


def page():
    from faxkit import text_page
    return text_page(1, lines=4)


def assert_refused_then_bye(phone: Baresip, result) -> None:
    assert not result.ok
    assert result.reason == "t38_refused", (result.reason, result.reason_text)
    log = phone.stdout_path.read_text(errors="replace")
    lines = first_lines(baresip_messages(log), phone.port)
    # after the call was set up: xmfax's T.38 re-INVITE, baresip's 488, the ACK, then (the call
    # still up) xmfax's BYE answered 200 by baresip (a dialog it had dropped would get 481)
    want = ["<INVITE", ">SIP/2.0 488", "<ACK", "<BYE", ">SIP/2.0 200"]
    starts = [k for k in range(len(lines)) if lines[k:k + 5] == want]
    assert len(starts) == 1, lines
    before, after = lines[:starts[0]], lines[starts[0] + 5:]
    assert {">SIP/2.0 200", "<SIP/2.0 200"} & set(before) and {">ACK", "<ACK"} & set(before), lines
    assert after == [], lines
    assert "could not decode SDP offer" in log or "488" in log
    established = log.index("Call established")
    closed = [m.start() for m in re.finditer(r"session closed|terminated", log)]
    assert established < log.index("SIP/2.0 488")
    assert not closed or min(closed) > log.rindex("\nBYE sip:"), "baresip dropped the call before xmfax's BYE"
    assert result.sip["final_status"] == 200
    assert result.sip["t38_switch"] is None


def test_xmfax_calls_baresip_which_refuses_t38(tmp_path):
    with Baresip(tmp_path / "baresip") as phone:
        t0 = time.monotonic()
        result = asyncio.run(asyncio.wait_for(api.send(
            [page()], via=f"sip:{phone.user}@127.0.0.1:{phone.port}", realtime=False, max_duration=60,
            sip={"t38_switch_after": 0.5, "audio_fallback": False}), 60))
        took = time.monotonic() - t0
        time.sleep(0.3)                  # baresip writes its trace of the BYE's 200
    phone_log = phone.stdout_path
    assert phone_log.exists()
    assert took < 15, took
    assert_refused_then_bye(phone, result)
    ladder = [e["summary"] for e in result.events if e.get("type") == "SipMessage"]
    assert any("488" in s for s in ladder) and any(s.startswith("BYE ") for s in ladder), ladder


def test_baresip_calls_xmfax_which_reinvites_and_gets_488(tmp_path):
    """baresip dials xmfax (G.711); xmfax answers, re-INVITEs to T.38, gets 488, hangs up."""
    async def go():
        calls = []
        receiver = api.receive(via="sip://127.0.0.1:0", once=True, realtime=False,
                               on_call=lambda call: calls.append(call) or api.Accept(),
                               sip={"t38_switch_after": 0.5, "audio_fallback": False})
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        phone = Baresip(tmp_path / "baresip", dial=f"sip:15550100@127.0.0.1:{port}")
        try:
            await asyncio.to_thread(phone.start)
            results = await asyncio.wait_for(task, 30)
            await asyncio.sleep(0.3)
        finally:
            receiver.stop()
            phone.stop()
        return results, calls, phone
    results, calls, phone = asyncio.run(asyncio.wait_for(go(), 60))
    assert len(results) == 1
    assert calls[0].dnis == "15550100"
    assert calls[0].info.get("offer") == ["audio"]
    assert_refused_then_bye(phone, results[0])


def test_xmfax_faxes_baresip_over_audio_until_baresip_hangs_up(tmp_path):
    """The audio fallback on: after the 488 xmfax sends CNG over G.711 on the call's RTP; baresip
    (a phone) never answers with DIS, and hangs up itself when its 4 s audio file ends: the fax
    ends at once as a lost line (T.30 would end it at T1, 8 s here, otherwise). Never a hang."""
    from faxkit import TX_ID

    from xmfax.t30.config import T30Config, Timers

    with Baresip(tmp_path / "baresip") as phone:
        t0 = time.monotonic()
        result = asyncio.run(asyncio.wait_for(api.send(
            [page()], via=f"sip:{phone.user}@127.0.0.1:{phone.port}", max_duration=60,
            config=T30Config(local_id=TX_ID, timers=Timers(t1=8.0)), sip={"t38_switch_after": 0.5}), 60))
        took = time.monotonic() - t0
        time.sleep(0.3)
    assert not result.ok and result.reason in ("line_lost", "no_dis"), (result.reason, result.reason_text)
    assert result.reason == "no_dis" or "far end hung up (BYE)" in result.reason_text, result.reason_text
    assert took < 15, took
    assert result.sip["media"] == "audio" and result.sip["audio"]["codec"] in ("PCMU", "PCMA")
    assert result.sip["audio_fallback"].startswith("T.38 re-INVITE answered 488")
    assert result.pages == [] and result.page_count == 0
    lines = first_lines(baresip_messages(phone.stdout_path.read_text(errors="replace")), phone.port)
    assert lines[-2:] in (["<BYE", ">SIP/2.0 200"], [">BYE", "<SIP/2.0 200"]), lines
