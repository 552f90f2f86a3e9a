"""Interop: a whole fax call xmfax -> Kamailio -> xmfax, Kamailio (examples/kamailio/proxy.cfg)
as registrar and record-routing proxy with digest auth and no database.

The receiving xmfax registers (401 challenge), the sending xmfax calls the fax number through
the proxy (407 challenge), Kamailio routes the INVITE to the registered contact keeping the
dialled number, and every in-dialog request (ACK, the T.38 re-INVITE, BYE) comes back through
it (Record-Route, loose routing), which its log shows. The pages arrive pixel-identical; ANI and
DNIS reach on_call; no password in any record.
"""
from __future__ import annotations

import asyncio
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.interop

if shutil.which("kamailio") is None:
    pytest.skip("kamailio is not installed (Debian package kamailio; scripts/install.sh --test)",
                allow_module_level=True)

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE.parent / "api"))
import peers  # noqa: E402
from peers import Kamailio  # noqa: E402

from xmfax import api  # noqa: E402
from xmfax.sip.auth import Credentials  # noqa: E402

FAX_NUMBER = "15550100"
SENDER, SEND_PASSWORD = "sender", "Send-pw-4711"
RECV_PASSWORD = "Recv-pw-0815"
DEFINES = {"SEND_USER": SENDER, "SEND_PASSWORD": SEND_PASSWORD,
           "RECV_USER": FAX_NUMBER, "RECV_PASSWORD": RECV_PASSWORD, "REALM": "xmfax.test"}


def pages(n: int = 2):
    from faxkit import text_page
    return [text_page(k + 1, lines=5) for k in range(n)]


def test_proxy_config_checks(tmp_path):
    """The example config as shipped passes kamailio -c (and so does the per-test copy)."""
    k = Kamailio(tmp_path / "k", peers.KAMAILIO_PROXY_CFG, defines=DEFINES)
    assert "config file ok" in k.check()


async def fax_through_proxy(tmp: Path, proxy: Kamailio, *, send_transport: str, recv_transport: str,
                            offer: str = "audio"):
    calls, got_pages = [], []
    receiver = api.receive(
        via=f"sip://127.0.0.1:0;transport={recv_transport}",
        register=f"sip:{FAX_NUMBER}@127.0.0.1:{proxy.port}" + (";transport=tcp" if recv_transport == "tcp" else ""),
        credentials=Credentials(FAX_NUMBER, RECV_PASSWORD), once=True, realtime=False, local_id="+1 555 0100",
        on_call=lambda call: calls.append(call) or api.Accept(),
        on_page=lambda call, ev: got_pages.append(ev.page), sip={"t38_switch_after": 0.3})
    task = asyncio.create_task(receiver.run())
    try:
        await asyncio.wait_for(receiver.ready(), 20)          # registered (the 401 answered)
        sent_pages = pages()
        via = f"sip:{FAX_NUMBER}@127.0.0.1:{proxy.port}" + (";transport=tcp" if send_transport == "tcp" else "")
        sent = await api.send(sent_pages, via=via, credentials=Credentials(SENDER, SEND_PASSWORD), realtime=False,
                              local_id="+1 555 0123", max_duration=60,
                              sip={"from_uri": "sip:+15550123@127.0.0.1", "offer": offer,
                                   "t38_switch_after": None if offer == "audio" else 1.0})
        results = await asyncio.wait_for(task, 30)
    finally:
        receiver.stop()
        if not task.done():
            await asyncio.wait_for(task, 15)
    return sent, results, calls, sent_pages, got_pages


@pytest.mark.parametrize("send_transport,recv_transport", [("udp", "udp"), ("tcp", "udp"), ("udp", "tcp"),
                                                           ("tcp", "tcp")],
                         ids=["udp-udp", "tcp-udp", "udp-tcp", "tcp-tcp"])
def test_fax_xmfax_kamailio_xmfax(tmp_path, send_transport, recv_transport):
    with Kamailio(tmp_path / "kamailio", defines=DEFINES) as proxy:
        sent, results, calls, sent_pages, got_pages = asyncio.run(asyncio.wait_for(
            fax_through_proxy(tmp_path, proxy, send_transport=send_transport, recv_transport=recv_transport), 90))
        log = proxy.log()
    assert sent.ok, (sent.reason, sent.reason_text)
    assert len(results) == 1 and results[0].ok, (results[0].reason, results[0].reason_text)
    # pixel-identical
    assert len(got_pages) == len(sent_pages)
    for k, (a, b) in enumerate(zip(sent_pages, got_pages), 1):
        assert a.image.shape == b.image.shape, f"page {k}"
        assert int(np.count_nonzero(a.image != b.image)) == 0, f"page {k}"
    # ANI and DNIS reached on_call (the proxy kept the dialled number in the Request-URI)
    assert calls[0].ani == "+15550123"
    assert calls[0].dnis == FAX_NUMBER
    assert results[0].sip["dnis"] == FAX_NUMBER
    # the INVITE went through the registrar's location lookup, and everything in the dialog
    # came back through the proxy: ACK, the T.38 re-INVITE (the receiver's own) and BYE
    assert re.search(rf"xmfax-example: INVITE for {FAX_NUMBER} to sip:{FAX_NUMBER}@127\.0\.0\.1:\d+", log), log
    in_dialog = re.findall(r"xmfax-example: in-dialog (\w+) ", log)
    for method in ("ACK", "INVITE", "BYE"):
        assert method in in_dialog, in_dialog
    assert results[0].sip["t38_switch"]["by"] == "local"
    assert sent.sip["t38_switch"]["by"] == "remote"
    # no secret anywhere
    for record in (sent, results[0]):
        text = json.dumps(record.to_dict())
        assert SEND_PASSWORD not in text and RECV_PASSWORD not in text


def test_wrong_password_is_refused_by_the_proxy(tmp_path):
    """A sender with a wrong password gets 407 again: the call fails as auth_failed, no success."""
    with Kamailio(tmp_path / "kamailio", defines=DEFINES) as proxy:
        sent = asyncio.run(asyncio.wait_for(api.send(
            pages(1), via=f"sip:{FAX_NUMBER}@127.0.0.1:{proxy.port}", realtime=False, max_duration=30,
            credentials=Credentials(SENDER, "not-it")), 60))
    assert not sent.ok
    assert sent.reason == "auth_failed", (sent.reason, sent.reason_text)
    assert sent.sip["final_status"] == 407
    assert "not-it" not in json.dumps(sent.to_dict())


def test_unregistered_number_is_not_found(tmp_path):
    """Nobody registered the number: Kamailio answers 404, the sender's record says not_found."""
    with Kamailio(tmp_path / "kamailio", defines=DEFINES) as proxy:
        sent = asyncio.run(asyncio.wait_for(api.send(
            pages(1), via=f"sip:{FAX_NUMBER}@127.0.0.1:{proxy.port}", realtime=False, max_duration=30,
            credentials=Credentials(SENDER, SEND_PASSWORD)), 60))
    assert not sent.ok
    assert sent.reason == "not_found", (sent.reason, sent.reason_text)
    assert sent.sip["final_status"] == 404
