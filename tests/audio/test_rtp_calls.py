"""Audio fax over real RTP sockets on 127.0.0.1 (drivers/audio_rtp.py): ``xmfax send`` to
``xmfax receive`` with ``rtp://`` addresses, in real time (one call of ~17 s of line time), and
the driver's ways of ending a call that cannot finish (hang-up, time limit, stray bytes)."""
from __future__ import annotations

import asyncio
import json
import os
import socket
import sys

import numpy as np
import pytest

from xmfax import api
from xmfax.document import load
from xmfax.drivers import audio_rtp
from xmfax.errors import DriverTimeoutError
from xmfax.rtp import RTPConfig, RTPSender
from xmfax.t30.config import T30Config
from xmfax.t30.session import Session

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "cli"))
from test_audio_calls import small_pages  # noqa: E402

TX_ID, RX_ID = "+1 555 0100", "+1 555 0199"


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def same_pixels(sent, got) -> None:
    assert len(got) == len(sent)
    for i, (a, b) in enumerate(zip(sent, got), 1):
        assert b.image.shape == a.image.shape, f"page {i}"
        assert int(np.count_nonzero(a.image != b.image)) == 0, f"page {i}"


def test_xmfax_send_to_xmfax_receive_over_rtp_v17_ecm_pages_identical(tmp_path):
    """The two commands, as a user runs them, on 127.0.0.1: V.17 14400 with ECM, A-law."""
    from test_cli_calls import Receiving, xmfax
    from xmfax.document import write_tiff

    pages = small_pages(1, rows=120)
    doc = tmp_path / "page.tif"
    write_tiff(pages, doc)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rx = Receiving("--via", "rtp://127.0.0.1:0?law=pcma", "-o", str(inbox), "--once", "--local-id", RX_ID,
                   "--json")
    try:
        where = rx.ready()
        assert where.startswith("rtp://127.0.0.1:")
        sent = xmfax("send", "--via", f"{where}?law=pcma&local=127.0.0.1:0", str(doc), "--local-id", TX_ID,
                     "--json", "--max-duration", "50", timeout=90)
    finally:
        got = rx.finish(30)
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert got.returncode == 0, got.stdout + got.stderr
    record = json.loads(sent.stdout)
    assert record["transport"] == "rtp" and record["direction"] == "send" and record["status"] == "success"
    assert record["modulation"] == "V.17 14400" and record["ecm"] and record["remote_id"] == RX_ID
    (tif,) = inbox.glob("*.tif")
    rec = json.loads(tif.with_suffix(".json").read_text(encoding="utf-8"))
    assert rec["transport"] == "rtp" and rec["remote_id"] == TX_ID and len(rec["pages"]) == 1
    same_pixels(pages, load(str(tif)))


def test_parse_via_and_bad_rtp_urls():
    assert api.parse_via("rtp://127.0.0.1:4000?law=pcma") == ("rtp", "rtp://127.0.0.1:4000?law=pcma")
    with pytest.raises(ValueError, match="law="):
        api.send_sync([small_pages(1, rows=20)[0]], via="rtp://127.0.0.1:4000?law=g729")
    with pytest.raises(ValueError, match="unknown rtp"):
        api.receive(via="rtp://127.0.0.1:4000?codec=pcmu")
    with pytest.raises(ValueError, match="no HOST:PORT"):
        api.send_sync([small_pages(1, rows=20)[0]], via="rtp://?local=127.0.0.1:0")


def _session() -> Session:
    cfg = audio_rtp.limit_t30(T30Config(local_id=TX_ID))
    return Session(cfg, calling=True, pages=small_pages(1, rows=20), now=0.0)


def _sink_socket() -> socket.socket:
    """A far end that takes our packets and says nothing (no ICMP errors either)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    return s


def test_hangup_ends_the_call_at_once_as_a_lost_line():
    far = _sink_socket()

    async def main():
        loop = asyncio.get_running_loop()
        hangup = loop.create_future()
        loop.call_later(0.3, hangup.set_result, "far end hung up (BYE)")
        t0 = loop.time()
        result = await audio_rtp.run_audio_call(_session(), ("127.0.0.1", 0), far.getsockname(),
                                                max_duration=30, hangup=hangup)
        return result, loop.time() - t0

    try:
        result, took = run(main(), 10)
    finally:
        far.close()
    assert took < 2.0
    assert result.status != "success" and "BYE" in result.detail


def test_max_duration_is_a_timeout():
    far = _sink_socket()
    try:
        with pytest.raises(DriverTimeoutError, match="after 1 s"):
            run(audio_rtp.run_audio_call(_session(), ("127.0.0.1", 0), far.getsockname(), max_duration=1.0), 10)
    finally:
        far.close()


def test_wait_for_caller_ignores_stray_bytes_and_rejected_callers():
    async def main():
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        bound = loop.create_future()
        rejected_sock, stray_sock, caller_sock = (_sink_socket() for _ in range(3))
        ignore = {rejected_sock.getsockname(): loop.time()}
        waiter = asyncio.create_task(audio_rtp.wait_for_caller(("127.0.0.1", 0), stop, bound.set_result, ignore))
        where = await bound
        packet = RTPSender(RTPConfig()).send(bytes(160))[0]
        try:
            rejected_sock.sendto(packet, where)               # a rejected call still going
            stray_sock.sendto(b"\x00" * 40, where)             # not RTP
            stray_sock.sendto(RTPSender(RTPConfig(payload_type=96)).send(bytes(160))[0], where)  # PT not agreed
            await asyncio.sleep(0.1)
            assert not waiter.done()
            caller_sock.sendto(packet, where)
            address, sock = await asyncio.wait_for(waiter, 5)
            assert address == caller_sock.getsockname()
            assert sock.getsockname()[1] == where[1]            # the port is still ours
            sock.close()
            stop.set()
        finally:
            for s in (rejected_sock, stray_sock, caller_sock):
                s.close()

    run(main(), 10)


def test_wait_for_caller_returns_none_when_stopped():
    async def main():
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.05, stop.set)
        return await audio_rtp.wait_for_caller(("127.0.0.1", 0), stop)

    assert run(main(), 5) is None
