"""Fax calls over SIP through the public API (xmfax.send / xmfax.receive with sip: URLs),
xmfax to xmfax and against a small scripted SIP phone, all on 127.0.0.1 (unpaced T.38
unless the test is about timing)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading

import numpy as np
import pytest

from xmfax import api
from xmfax.document import load
from xmfax.ladder import render_text
from xmfax.sip import auth
from xmfax.sip.message import Request, make_response, parse
from xmfax.sip.sdp import SdpSession, SessionDescription
from xmfax.t38.config import T38Config

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "api"))
from faxkit import RX_ID, TX_ID, text_page  # noqa: E402

SECRET = "s3cret-Pa55word"


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def same_pixels(sent, got) -> None:
    assert len(got) == len(sent)
    for i, (a, b) in enumerate(zip(sent, got), 1):
        assert b.image.shape == a.image.shape, f"page {i}"
        assert int(np.count_nonzero(a.image != b.image)) == 0, f"page {i}"


async def start_sip_receiver(transport: str = "udp", **kwargs):
    kwargs.setdefault("local_id", RX_ID)
    kwargs.setdefault("realtime", False)
    receiver = api.receive(via=f"sip://127.0.0.1:0;transport={transport}", **kwargs)
    task = asyncio.create_task(receiver.run())
    host, port = await asyncio.wait_for(receiver.ready(), 10)
    return receiver, task, f"{host}:{port}"


async def sip_fax(documents, *, number="+15550100", transport="udp", receiver_kwargs=None, **send_kwargs):
    """One call, a sender to a fresh receiver (``once``): (sent, received, receiver)."""
    receiver_kwargs = dict(receiver_kwargs or {})
    receiver_kwargs.setdefault("once", True)
    receiver, task, where = await start_sip_receiver(transport, **receiver_kwargs)
    send_kwargs.setdefault("local_id", TX_ID)
    send_kwargs.setdefault("realtime", False)
    sent = await api.send(documents, via=f"sip:{number}@{where};transport={transport}", **send_kwargs)
    results = await asyncio.wait_for(task, 30)
    return sent, (results[0] if results else None), receiver


def sip_lines(result) -> list[tuple[str, str]]:
    return [(e["dir"], e["summary"]) for e in result.events if e["type"] == "SipMessage"]


# --------------------------------------------------------------------------- a scripted phone
class Phone(threading.Thread):
    """A SIP phone on UDP 127.0.0.1 that speaks G.711 only: it answers an INVITE 200 with
    audio (or ``invite_status``), answers a T.38 re-INVITE ``reinvite_status`` (488), BYE and
    OPTIONS 200, REGISTER 200 (a registrar too). With ``password`` it first challenges every
    INVITE and REGISTER (401, digest MD5 qop=auth) and checks the answer."""

    REALM = "xmfax.test"
    NONCE = "4f1c2b6e0d9a"

    def __init__(self, *, password: str | None = None, invite_status: int | None = None,
                 reinvite_status: int = 488):
        super().__init__(daemon=True)
        self.password = password
        self.invite_status = invite_status
        self.reinvite_status = reinvite_status
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self.requests: list[Request] = []
        self.raw: list[bytes] = []
        self.authorized: list[str] = []      # methods that came with a valid Authorization
        self.bad_auth = 0
        self._halt = threading.Event()
        self.sdp = SdpSession("127.0.0.1", user="phone")

    def __enter__(self) -> "Phone":
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
            self.raw.append(data)
            msg = parse(data)
            if isinstance(msg, Request):
                self.requests.append(msg)
                self.handle(msg, addr)

    def send(self, response, addr) -> None:
        self.sock.sendto(response.encode(), addr)

    def handle(self, req: Request, addr) -> None:
        if req.method == "ACK":
            return
        if self.password and req.method in ("INVITE", "REGISTER"):
            value = req.headers.get("Authorization")
            if value is None:
                r = make_response(req, 401, to_tag="ph1")
                r.headers.add("WWW-Authenticate", f'Digest realm="{self.REALM}", nonce="{self.NONCE}", '
                              'algorithm=MD5, qop="auth"')
                return self.send(r, addr)
            if not auth.verify(value, self.password, req.method, realm=self.REALM, nonce=self.NONCE):
                self.bad_auth += 1
                return self.send(make_response(req, 403, to_tag="ph1"), addr)
            self.authorized.append(req.method)
        if req.method == "INVITE":
            if req.to.tag:                                   # a re-INVITE (to T.38)
                return self.send(make_response(req, self.reinvite_status), addr)
            if self.invite_status is not None:
                return self.send(make_response(req, self.invite_status, to_tag="ph1"), addr)
            offer = SessionDescription.parse(req.body)
            answer, _ = self.sdp.answer(offer, audio_port=40000, t38_port=None, t38=T38Config(),
                                        accept=("audio",))
            r = make_response(req, 200, to_tag="ph1")
            r.headers.add("Contact", f"<sip:phone@127.0.0.1:{self.port}>")
            r.headers.add("Content-Type", "application/sdp")
            r.body = answer.encode()
            return self.send(r, addr)
        r = make_response(req, 200, to_tag=None if req.to.tag else "ph1")
        if req.method == "REGISTER":
            contact = req.headers.get("Contact")
            if contact and "expires=0" not in contact and req.headers.get("Expires") != "0":
                r.headers.add("Contact", f"{contact.split(';expires')[0]};expires=3600")
            r.headers.add("Expires", "3600" if req.headers.get("Expires") != "0" else "0")
        self.send(r, addr)


# --------------------------------------------------------------------------- xmfax to xmfax
@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_whole_fax_over_sip_pixels_numbers_and_records(tmp_path, transport):
    pages = [text_page(1), text_page(2)]
    calls = []

    def on_call(call):
        calls.append(call)
        return api.Accept()

    sent, got, _ = run(sip_fax(pages, number="+15550100", transport=transport,
                               receiver_kwargs=dict(on_call=on_call, output_dir=tmp_path)))
    assert sent.ok, sent.summary()
    assert got.ok, got.summary()
    same_pixels(pages, load(got.files[0]))
    (call,) = calls
    assert call.transport == "sip" and call.dnis == "+15550100" and call.ani == "xmfax"
    assert call.sip_call_id == sent.sip["call_id"] == got.sip["call_id"]
    assert call.remote_address.startswith("127.0.0.1:")
    names = [name.lower() for name, _ in call.headers]
    assert "via" in names and "call-id" in names and "cseq" in names
    for r, direction in ((sent, "send"), (got, "receive")):
        assert r.transport == "sip" and r.direction == direction and r.page_count == 2
        assert r.dnis == "+15550100"
        assert r.sip["final_status"] == 200 and r.sip["transport"] == transport
        assert r.sip["t38"]["max_bit_rate"] == 14400 and r.sip["t38"]["version"] == 0
    # G.711 first (the default), then the receiver's re-INVITE to T.38
    assert got.sip["t38_switch"]["by"] == "local" and sent.sip["t38_switch"]["by"] == "remote"
    assert 0.5 < sent.sip["t38_switch"]["t"] < 10      # the receiver's switch, 1 s after the answer
    lines = sip_lines(sent)
    assert lines[0][0] == "out" and lines[0][1].startswith("INVITE sip:+15550100@") and "(SDP: audio)" in lines[0][1]
    assert ("in", "SIP/2.0 200 OK (SDP: audio)") in lines
    assert any(d == "in" and s.startswith("INVITE ") and s.endswith("(SDP: t38)") for d, s in lines)
    assert lines[-2][0] == "out" and lines[-2][1].startswith("BYE ") and lines[-1] == ("in", "SIP/2.0 200 OK")
    # one time line: the SIP messages before and after the T.30 frames, in order
    times = [e["t"] for e in sent.events]
    assert times == sorted(times)
    kinds = [e["type"] for e in sent.events]
    first_frame = next(i for i, k in enumerate(kinds) if k.startswith("Frame"))
    assert kinds[0] == "SipMessage" and kinds[-1] == "SipMessage" and first_frame > 3
    # the record on disk is the record returned, and the ladder draws the SIP messages
    record = json.loads(open(got.files[0][:-4] + ".json", encoding="utf-8").read())
    assert record["sip"] == got.sip
    text = render_text(sent.to_dict())
    rows = text.splitlines()
    invite = next(r for r in rows if "SIP INVITE sip:+15550100@" in r)
    ok_t38 = next(r for r in rows if "SIP 200 OK (SDP: t38)" in r)
    assert invite.endswith("~>|") and ok_t38.endswith("~>|")      # ours: drawn to the right
    assert any(r.endswith("SIP 200 OK ~~~~~~~~~~~~~~~~~~~~~~~~|") or ("|<~" in r and "SIP 200 OK" in r) for r in rows)
    assert rows.index(ok_t38) < next(i for i, r in enumerate(rows) if " DCS " in r)


def test_t38_offered_directly():
    sent, got, _ = run(sip_fax([text_page(1)], sip={"offer": "t38"}))
    assert sent.ok and got.ok, (sent.summary(), got.summary())
    assert sent.sip["t38_switch"] == {"by": "offer", "t": sent.sip["t38_switch"]["t"]}
    assert got.sip["t38_switch"]["by"] == "offer" and sent.sip["t38_switch"]["t"] < 5
    lines = sip_lines(sent)
    assert lines[0][1].endswith("(SDP: t38)")
    assert sum(1 for d, s in lines if s.startswith("INVITE ")) == 1     # no re-INVITE


def test_g711_first_then_the_sender_switches():
    sent, got, _ = run(sip_fax([text_page(1)], sip={"t38_switch_after": 0.2},
                               receiver_kwargs=dict(sip={"t38_switch_after": None})))
    assert sent.ok and got.ok
    assert sent.sip["t38_switch"]["by"] == "local" and got.sip["t38_switch"]["by"] == "remote"
    assert sent.sip["t38_switch"]["t"] < 2.5           # 0.2 s asked; the default would be 3 s
    assert [s for d, s in sip_lines(sent) if s.startswith("INVITE ")][1].endswith("(SDP: t38)")


@pytest.mark.parametrize("status, reason", [(486, "busy"), (603, "declined"), (404, "not_found")])
def test_reject_status_reaches_the_caller(status, reason):
    sent, got, _ = run(sip_fax([text_page(1)],
                               receiver_kwargs=dict(on_call=lambda call: api.Reject("routing", status=status))))
    assert (sent.status, sent.reason) == ("failure", reason)
    assert sent.sip["final_status"] == status and sent.page_count == 0
    assert (got.reason, got.sip["final_status"]) == ("rejected", status)
    assert "routing" in got.reason_text
    assert any(s.startswith(f"SIP/2.0 {status} ") for d, s in sip_lines(got) if d == "out")


def test_busy_is_retried():
    async def main():
        seen = []
        receiver, task, where = await start_sip_receiver(
            on_call=lambda call: seen.append(call) or (api.Reject("busy", status=486) if len(seen) == 1 else True))
        events = []
        try:
            sent = await api.send([text_page(1)], via=f"sip:+1555@{where}", realtime=False, retries=1,
                                  retry_delay=0.0, on_event=events.append, local_id=TX_ID)
        finally:
            receiver.stop()
            await asyncio.wait_for(task, 20)
        return sent, events, receiver.results

    sent, events, results = run(main())
    assert sent.ok
    assert [e.reason for e in events if isinstance(e, api.Retrying)] == ["busy"]
    assert [r.reason for r in results] == ["rejected", "ok"]


def test_far_end_bye_during_the_fax_ends_it_at_once():
    """A paced fax; the far end hangs up (BYE) two seconds into T.38: the sender's call
    ends right then as line_lost, with no page claimed."""
    from xmfax.drivers import sip as sip_driver
    from xmfax.t30 import Session, T30Config

    async def main():
        ep = await sip_driver.SipEndpoint.open(("127.0.0.1", 0))
        done: asyncio.Future = asyncio.get_running_loop().create_future()

        async def answer(incoming):
            def make(limits):
                return Session(limits.limit_t30(T30Config(local_id=RX_ID)), calling=False, receive=True)

            async def hang_up_soon():
                await asyncio.sleep(2.0)
                ep.command("hangup", incoming.call_id)

            hanger = asyncio.create_task(hang_up_soon())
            try:
                done.set_result(await sip_driver.answer_fax(ep, incoming, make, realtime=True))
            finally:
                hanger.cancel()

        ep.on_incoming = lambda incoming: asyncio.get_running_loop().create_task(answer(incoming))
        try:
            loop = asyncio.get_running_loop()
            t = loop.time()
            sent = await api.send([text_page(1), text_page(2)], via=f"sip:+1555@127.0.0.1:{ep.local[1]}",
                                  realtime=True, sip={"offer": "t38"}, local_id=TX_ID)
            took = loop.time() - t
            return sent, await asyncio.wait_for(done, 10), took
        finally:
            await ep.close()

    sent, outcome, took = run(main())
    assert (sent.status, sent.reason) == ("failure", "line_lost")
    assert "far end hung up (BYE)" in sent.reason_text
    # the two paced pages would take over 20 s: the call ended with the BYE, not the fax
    assert sent.page_count == 0 and took < 15.0
    assert ("in", next(s for d, s in sip_lines(sent) if s.startswith("BYE "))) in sip_lines(sent)
    assert outcome.t30 is not None and outcome.t30.reason.name == "LINE_LOST"


def test_ten_concurrent_calls_to_one_receiver(tmp_path):
    pages = [text_page(1)]

    async def main():
        seen = []
        receiver, task, where = await start_sip_receiver(output_dir=tmp_path, on_call=lambda c: seen.append(c.dnis))
        try:
            sent = await asyncio.gather(*[
                api.send(pages, via=f"sip:+1555010{i}@{where}", realtime=False, local_id=TX_ID,
                         sip={"offer": "t38" if i % 2 else "audio"}) for i in range(10)])
        finally:
            receiver.stop()
            await asyncio.wait_for(task, 30)
        return sent, receiver.results, seen

    sent, results, seen = run(main(), 120)
    assert [r.ok for r in sent] == [True] * 10, [r.summary() for r in sent if not r.ok]
    assert len(results) == 10 and all(r.ok for r in results)
    assert sorted(seen) == sorted(f"+1555010{i}" for i in range(10))
    assert sorted(r.dnis for r in results) == sorted(seen)
    assert len({r.sip["call_id"] for r in results}) == 10
    files = [f for r in results for f in r.files]
    assert len(set(files)) == 10
    for f in files:
        same_pixels(pages, load(f))


def test_stop_refuses_new_calls_and_lets_the_current_one_finish():
    async def main():
        release = asyncio.Event()
        loop = asyncio.get_running_loop()

        async def on_call(call):
            if call.dnis == "+1":
                await release.wait()
            return True

        receiver, task, where = await start_sip_receiver(on_call=on_call, call_decision_timeout=20)
        first = asyncio.create_task(api.send([text_page(1)], via=f"sip:+1@{where}", realtime=False, local_id=TX_ID))
        await asyncio.sleep(0.5)
        receiver.stop()
        second = await api.send([text_page(1)], via=f"sip:+2@{where}", realtime=False, local_id=TX_ID)
        loop.call_soon(release.set)
        first = await first
        await asyncio.wait_for(task, 20)
        return first, second, receiver.results

    first, second, results = run(main())
    assert (second.reason, second.sip["final_status"]) == ("unavailable", 503)
    assert first.ok and [r.dnis for r in results] == ["+1"]


# --------------------------------------------------------------------------- a G.711 phone
def test_t38_refused_ends_with_bye_and_a_clear_reason():
    """With the audio fallback off (tests/sip/test_audio_fallback.py has it on)."""
    with Phone() as phone:
        sent = run(api.send([text_page(1)], via=f"sip:+1555@127.0.0.1:{phone.port}", realtime=False,
                            local_id=TX_ID, sip={"t38_switch_after": 0.1, "audio_fallback": False}), 20)
    assert (sent.status, sent.reason) == ("failure", "t38_refused")
    assert "488 Not Acceptable Here" in sent.reason_text and "BYE" in sent.reason_text
    assert sent.sip["final_status"] == 200 and sent.sip["t38_switch"] is None
    assert phone.methods() == ["INVITE", "ACK", "INVITE", "ACK", "BYE"]
    assert sip_lines(sent)[-2][1].startswith("BYE ")


def test_credentials_answer_a_challenge_and_stay_out_of_the_record():
    creds = auth.Credentials("faxuser", SECRET)
    with Phone(password=SECRET, invite_status=486) as phone:
        sent = run(api.send([text_page(1)], via=f"sip:+1555@127.0.0.1:{phone.port}", realtime=False,
                            local_id=TX_ID, credentials=creds), 20)
    assert sent.reason == "busy" and phone.authorized == ["INVITE"] and phone.bad_auth == 0
    text = sent.to_json()
    responses = [auth.parse_authorization(r.headers.get("Authorization"))["response"]
                 for r in phone.requests if r.headers.get("Authorization")]
    assert responses and SECRET not in text and not any(r in text for r in responses)
    assert "Authorization" not in text


def test_wrong_password_is_auth_failed():
    with Phone(password=SECRET) as phone:
        sent = run(api.send([text_page(1)], via=f"sip:+1555@127.0.0.1:{phone.port}", realtime=False,
                            local_id=TX_ID, credentials=auth.Credentials("faxuser", "wrong")), 20)
    assert sent.reason in ("auth_failed", "rejected") and sent.sip["final_status"] in (401, 403)
    assert phone.bad_auth == 1


def test_receiver_registers_with_credentials_and_unregisters_on_stop():
    async def main():
        with Phone(password=SECRET) as phone:
            receiver, task, where = await start_sip_receiver(
                register=f"sip:fax@127.0.0.1:{phone.port}", credentials=auth.Credentials("faxuser", SECRET))
            receiver.stop()
            await asyncio.wait_for(task, 20)
            return phone

    phone = run(main())
    registers = [r for r in phone.requests if r.method == "REGISTER"]
    assert len(registers) >= 3 and phone.authorized.count("REGISTER") >= 2
    last = registers[-1]
    assert last.headers.get("Expires") == "0" or "expires=0" in (last.headers.get("Contact") or "")


def test_caller_gives_up_with_cancel_while_on_call_decides():
    """No answer within invite_timeout: the caller CANCELs (no_answer); the receiver answers
    200 and 487, gets the ACK for the 487 before the caller's socket closes, and records
    the call as cancelled, not answered."""
    async def main():
        async def slow(call):
            await asyncio.sleep(1.5)
            return api.Accept()

        receiver, task, where = await start_sip_receiver(on_call=slow, once=True)
        sent = await api.send([text_page(1)], via=f"sip:+1555@{where}", realtime=False,
                              sip={"invite_timeout": 0.5})
        return sent, (await asyncio.wait_for(task, 15))[0]

    sent, got = run(main())
    assert (sent.reason, sent.sip["final_status"]) == ("no_answer", None) and "0.5 s" in sent.reason_text
    assert got.reason == "cancelled" and not got.ok
    lines = [s for _, s in sip_lines(got)]
    assert lines[-4:] == [next(s for s in lines if s.startswith("CANCEL ")), "SIP/2.0 200 OK",
                          "SIP/2.0 487 Request Terminated", next(s for s in lines if s.startswith("ACK "))]


def test_nowhere_to_store_the_fax_answers_503(tmp_path):
    """The output folder is gone when the call comes: the call is not answered (503, the
    caller may retry), and the receiver records why."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()

    async def main():
        receiver, task, where = await start_sip_receiver(output_dir=inbox, once=True)
        inbox.rmdir()
        sent = await api.send([text_page(1)], via=f"sip:+1555@{where}", realtime=False)
        return sent, (await asyncio.wait_for(task, 15))[0]

    sent, got = run(main())
    assert (sent.reason, sent.sip["final_status"]) == ("unavailable", 503)
    assert got.reason == "storage" and got.sip["final_status"] == 503 and got.files == []
    assert any(s.startswith("SIP/2.0 503 ") for d, s in sip_lines(got) if d == "out")


def test_nobody_listening_on_tcp_fails_at_once():
    """Connection refused ends the INVITE transaction at once (RFC 3261 §17.1.4), not after
    Timer B; a failure with a reason, never an exception."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def main():
        loop = asyncio.get_running_loop()
        t = loop.time()
        sent = await api.send([text_page(1)], via=f"sip:+1555@127.0.0.1:{port};transport=tcp", realtime=False)
        return sent, loop.time() - t

    sent, took = run(main())
    assert sent.status == "failure" and sent.reason == "timeout" and "transport" in sent.reason_text
    assert took < 10.0 and sent.page_count == 0        # not Timer B (32 s)


def test_garbage_does_not_disturb_the_receiver():
    """Junk datagrams, a malformed INVITE (answered 400), a stray response, streams that
    cannot be framed: the receiver answers what it can, closes what it must, and the next
    call is a fax like any other."""
    async def main():
        loop = asyncio.get_running_loop()
        receiver, task, where = await start_sip_receiver(once=True)
        host, port = where.rsplit(":", 1)
        addr = (host, int(port))
        bad_invite = (b"INVITE sip:+1@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bKjunk\r\n"
                      b"From: <sip:a@b>;tag=1\r\nTo: <sip:+1@127.0.0.1>\r\nCall-ID: junk1\r\n"
                      b"CSeq: 1 INVITE\r\nMax-Forwards: many\r\nContent-Length: 0\r\n\r\n")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
            u.bind(("127.0.0.1", 0))
            u.setblocking(False)
            for junk in (b"\x00\xff" * 700, b"SIP/2.0 200 OK\r\n\r\n", b"x" * 60000, b"\r\n", bad_invite):
                u.sendto(junk, addr)
            async with asyncio.timeout(5):
                answer = await loop.sock_recv(u, 65535)
        for junk in (b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n", b"y" * 70000):
            reader, writer = await asyncio.open_connection(*addr)
            writer.write(junk)
            await writer.drain()
            async with asyncio.timeout(5):
                assert await reader.read() == b""          # closed by the receiver
            writer.close()
        sent = await api.send([text_page(1)], via=f"sip:+1555@{where}", realtime=False)
        return answer, sent, (await asyncio.wait_for(task, 15))

    answer, sent, results = run(main())
    assert answer.startswith(b"SIP/2.0 400 ") and b"Call-ID: junk1" in answer
    assert sent.ok and len(results) == 1 and results[0].ok


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not ipv6_loopback(), reason="no IPv6 loopback (::1) on this machine")
def test_ipv6():
    async def main():
        calls = []
        receiver = api.receive(via="sip://[::1]:0", once=True, realtime=False, on_call=calls.append)
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        sent = await api.send([text_page(1)], via=f"sip:+1555@[{host}]:{port}", realtime=False)
        return sent, (await asyncio.wait_for(task, 15))[0], calls

    sent, got, calls = run(main())
    assert sent.ok and got.ok
    assert sent.sip["remote_media"].startswith("[::1]:") and calls[0].remote_address.startswith("[::1]:")


def test_ladder_svg_draws_sip_messages():
    from xmfax.ladder import render_svg

    record = {"direction": "send", "status": "failure", "reason": "busy", "events": [
        {"t": 0.0, "type": "SipMessage", "dir": "out", "summary": "INVITE sip:+1@h SIP/2.0 (SDP: audio)"},
        {"t": 0.01, "type": "SipMessage", "dir": "in", "summary": "SIP/2.0 486 Busy Here"}]}
    svg = render_svg(record)
    assert "SIP INVITE sip:+1@h (SDP: audio)" in svg and "SIP 486 Busy Here" in svg
    assert svg.count('stroke="#2e7d32"') == 2
    rows = render_text(record).splitlines()
    assert rows[3].endswith("~>|") and rows[4].startswith("   0.010  |<~")


def test_sip_urls_are_checked_before_calling():
    with pytest.raises(ValueError, match="listening address"):
        api.send_sync([text_page(1)], via="sip://127.0.0.1:5060")
    with pytest.raises(ValueError, match="bad SIP address|transport"):
        api.send_sync([text_page(1)], via="sip:+1555@127.0.0.1;transport=sctp")
    for bad in ({"colour": "blue"}, {"transport": "tcp"}, {"host": "h"}, {"credentials": None}):
        with pytest.raises(ValueError, match="unknown SIP option"):
            api.send_sync([text_page(1)], via="sip:+1555@127.0.0.1", sip=bad)
    with pytest.raises(ValueError, match="unknown SIP option"):
        api.receive(via="sip://127.0.0.1:0", sip={"transport": "tcp"})
    with pytest.raises(ValueError):
        api.receive(via="sip://127.0.0.1:5060;transport=sctp")
    with pytest.raises(ValueError):
        api.receive(via="t38://127.0.0.1:0", register="sip:a@b")
    with pytest.raises(ValueError):
        api.Reject("x", status=200)
    assert api.parse_via("sip:+1@h") == ("sip", "sip:+1@h")
    assert api.parse_via("sip://0.0.0.0:5060") == ("sip", "sip://0.0.0.0:5060")
