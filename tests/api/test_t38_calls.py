"""End-to-end calls through the public API (xmfax.send / xmfax.receive) over T.38/UDPTL on
127.0.0.1: documents in, pixels, files and fax records out."""
from __future__ import annotations

import asyncio
import json
import threading

import numpy as np
import pytest

import xmfax
from xmfax import api
from xmfax.document import load
from xmfax.record import FaxResult
from xmfax.t30 import T30Config
from xmfax.t30.config import Timers
from xmfax.t38.config import T38Config

from faxkit import RX_ID, TX_ID, fax, frames, leftovers, make_pdf, start_receiver, text_page


def same_pixels(sent, got) -> None:
    assert len(got) == len(sent)
    for i, (a, b) in enumerate(zip(sent, got), 1):
        assert b.image.shape == a.image.shape, f"page {i}"
        diff = int(np.count_nonzero(a.image != b.image))
        assert diff == 0, f"page {i}: {diff} pixels differ"


@pytest.mark.parametrize("ecm, compression", [(True, "mmr"), (False, "mr")])
def test_pdf_received_as_tiff_and_pdf_with_same_pixels(tmp_path, ecm, compression):
    pages = make_pdf(tmp_path / "letter.pdf", 2)
    inbox = tmp_path / "inbox"
    sent, got, _ = asyncio.run(fax([str(tmp_path / "letter.pdf")], ecm=ecm,
                                   receiver_kwargs=dict(output_dir=inbox, formats=("tiff", "pdf"), ecm=ecm)))
    assert sent.ok, sent.summary()
    assert got.ok, got.summary()
    tif, pdf = got.files
    assert tif.endswith(".tif") and pdf.endswith(".pdf")
    same_pixels(pages, load(tif))
    same_pixels(pages, load(pdf))
    # both ends agree on what happened
    for r, direction, remote in ((sent, "send", RX_ID), (got, "receive", TX_ID)):
        assert (r.direction, r.status, r.reason) == (direction, "success", "ok")
        assert r.page_count == 2 and [p.number for p in r.pages] == [1, 2]
        assert r.remote_id == remote
        assert r.ecm is ecm and r.compression == compression
        assert r.transport == "t38" and r.resolution == "fine"
        assert all(p.rows == 2200 and p.width == 1728 and p.bad_rows == 0 for p in r.pages)
        assert r.modulation.startswith("V.") and r.rate > 0
        assert r.started_at and r.ended_at >= r.started_at
    assert got.local_id == RX_ID and sent.local_id == TX_ID
    assert [p.response for p in sent.pages] == ["MCF", "MCF"]


def test_record_json_beside_the_tiff_and_no_partial_files(tmp_path):
    make_pdf(tmp_path / "letter.pdf", 2)
    inbox = tmp_path / "inbox"
    sent, got, _ = asyncio.run(fax([str(tmp_path / "letter.pdf")], receiver_kwargs=dict(output_dir=inbox)))
    assert got.ok
    (tif,) = got.files
    record_path = tif[: -len(".tif")] + ".json"
    record = json.loads(open(record_path, encoding="utf-8").read())
    assert sorted(p.name for p in inbox.iterdir()) == sorted([tif.rsplit("/", 1)[1], record_path.rsplit("/", 1)[1]])
    assert leftovers(inbox) == []
    # the file is the record the API returned, and reads back as one
    assert record == got.to_dict()
    again = FaxResult.from_json(json.dumps(record))
    assert again.ok and again.page_count == 2 and again.files == [tif]
    assert record["status"] == "success" and record["remote_id"] == TX_ID and record["ecm"] is True
    assert record["compression"] == "mmr" and len(record["pages"]) == 2
    # the event log has the frames of the call, in both directions, with octets
    assert frames(record, "out")[:2] == ["CSI", "DIS"]
    incoming = frames(record, "in")
    assert incoming[:2] == ["TSI", "DCS"] and incoming[-1] == "DCN"
    assert "CFR" in frames(record, "out") and frames(record, "out").count("MCF") >= 2
    for e in record["events"]:
        assert isinstance(e["t"], float) and e["type"]
        if "frame" in e:
            assert bytes.fromhex(e["hex"])[:2] == b"\xff\x03" or bytes.fromhex(e["hex"])[:2] == b"\xff\x13"
    sender_frames = frames(sent.to_dict())
    assert sender_frames[:4] == ["CSI", "DIS", "TSI", "DCS"] and sender_frames[-1] == "DCN"


def test_pages_objects_and_header_line(tmp_path):
    """Pages can be given directly; header=True prints a line on top, leaving the rest as sent."""
    page = text_page(1, lines=3)
    sent, got, _ = asyncio.run(fax([page], header=True, receiver_kwargs=dict(output_dir=tmp_path)))
    assert sent.ok and got.ok
    (received,) = load(got.files[0])
    assert received.image.shape == page.image.shape
    top = received.image[:40]
    assert top.any(), "the header line is in the top rows"
    assert np.array_equal(received.image[200:], page.image[200:])


def test_on_call_sees_the_call_and_presents_a_per_number_csid(tmp_path):
    calls = []

    def on_call(call):
        calls.append(call)
        return api.Accept(local_id="+44 20 7946 0018")

    sent, got, _ = asyncio.run(fax([text_page(1)], receiver_kwargs=dict(on_call=on_call, output_dir=tmp_path)))
    assert sent.ok and got.ok
    assert sent.remote_id == "+44 20 7946 0018"        # the CSID the sender saw
    assert got.local_id == "+44 20 7946 0018"          # and the receiver's record says so
    (call,) = calls
    assert call.transport == "t38" and call.via == "t38://127.0.0.1:0"
    assert call.remote_address.startswith("127.0.0.1:")
    assert call.ani is None and call.dnis is None        # a bare UDPTL stream carries no numbers


@pytest.mark.parametrize("answer", [api.Reject("not for us"), False])
def test_on_call_rejection(tmp_path, answer):
    """The receiver records the rejection; the sender (a short T1) fails with no_dis: over
    T.38 a rejected call is one nobody answers (a real deployment says no in SIP)."""
    quick = T30Config(local_id=TX_ID, timers=Timers(t1=1.5))
    sent, got, receiver = asyncio.run(fax([text_page(1)], config=quick,
                                          receiver_kwargs=dict(on_call=lambda call: answer, output_dir=tmp_path)))
    assert (got.status, got.reason) == ("failure", "rejected")
    assert ("not for us" if answer else "rejected by on_call") in got.reason_text
    assert got.files == [] and list(tmp_path.iterdir()) == []
    assert (sent.status, sent.reason) == ("failure", "no_dis")
    assert "T1" in sent.reason_text and sent.page_count == 0
    assert frames(sent.to_dict(), "in") == []


def test_rejected_caller_is_one_call_not_many(tmp_path):
    """The datagrams a rejected T.38 caller keeps sending do not make new calls."""
    quick = T30Config(local_id=TX_ID, timers=Timers(t1=1.5))

    async def scenario():
        seen = []
        receiver, task, url = await start_receiver(on_call=lambda call: seen.append(call) or False)
        sent = await api.send([text_page(1)], via=url, config=quick, realtime=False)
        receiver.stop()
        await asyncio.wait_for(task, 10)
        return sent, seen, receiver.results

    sent, seen, results = asyncio.run(scenario())
    assert sent.reason == "no_dis"
    assert len(seen) == 1 and [r.reason for r in results] == ["rejected"]


def test_a_broken_on_call_rejects_the_call_without_ending_the_receiver(tmp_path):
    quick = T30Config(local_id=TX_ID, timers=Timers(t1=1.5))

    def on_call(call):
        raise RuntimeError("routing database down")

    sent, got, _ = asyncio.run(fax([text_page(1)], config=quick, receiver_kwargs=dict(on_call=on_call)))
    assert got.reason == "rejected" and "routing database down" in got.reason_text
    assert not sent.ok


def test_nobody_answers(tmp_path):
    """A port where nobody listens: a failure with a reason after T1 (shortened), not an exception."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:   # a port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quick = T30Config(local_id=TX_ID, timers=Timers(t1=1.0))
    events = []
    result = xmfax.send_sync([text_page(1)], via=f"t38://127.0.0.1:{port}", config=quick, realtime=False,
                             on_event=events.append)
    assert (result.status, result.reason) == ("failure", "no_dis")
    assert "no DIS" in result.reason_text and "T1" in result.reason_text
    assert result.remote_id == "" and result.pages == []
    assert "failure (no_dis)" in result.summary()
    assert isinstance(events[0], api.CallStarted) and events[0].direction == "send"


def test_retries_on_a_retryable_reason(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    quick = T30Config(local_id=TX_ID, timers=Timers(t1=0.5))
    events = []
    result = xmfax.send_sync([text_page(1)], via=f"t38://127.0.0.1:{port}", config=quick, realtime=False,
                             retries=1, retry_delay=0.0, on_event=events.append)
    assert result.reason == "no_dis"
    starts = [e.attempt for e in events if isinstance(e, api.CallStarted)]
    retrying = [e for e in events if isinstance(e, api.Retrying)]
    assert starts == [1, 2] and len(retrying) == 1 and retrying[0].reason == "no_dis"


def test_unreadable_document_raises_before_calling(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not a pdf\n")
    with pytest.raises(xmfax.DocumentError):
        xmfax.send_sync([str(bad)], via="t38://127.0.0.1:9", realtime=False)
    with pytest.raises(ValueError, match="unknown transport"):
        xmfax.send_sync([text_page(1)], via="h323:fax@example.com")


@pytest.mark.parametrize("kind", ["thread", "coroutine"])
def test_a_slow_on_page_does_not_stall_the_call(tmp_path, kind):
    """on_page blocks until the test releases it, after the sender already has its result:
    the call completed while every on_page was still waiting."""
    release = threading.Event()
    entered = []

    if kind == "thread":
        def on_page(call, page_event):
            entered.append(page_event.number)
            release.wait(30)
    else:
        async def on_page(call, page_event):
            entered.append(page_event.number)
            await asyncio.to_thread(release.wait, 30)

    async def scenario():
        receiver, task, url = await start_receiver(once=True, on_page=on_page, output_dir=tmp_path)
        sent = await api.send([text_page(1), text_page(2)], via=url, local_id=TX_ID, realtime=False)
        # the receiver's call is over too: its record and files are written, callbacks still blocked
        for _ in range(200):
            if list(tmp_path.glob("*.json")):
                break
            await asyncio.sleep(0.05)
        state = (sent, entered[:], release.is_set(), sorted(p.suffix for p in tmp_path.iterdir()))
        release.set()
        results = await asyncio.wait_for(task, 30)
        return state, results

    (sent, entered_then, released, suffixes), results = asyncio.run(scenario())
    assert sent.ok and sent.page_count == 2
    assert not released and entered_then == [1]        # the first on_page was still blocked
    assert suffixes == [".json", ".tif"]
    assert results[0].ok and entered == [1, 2]         # and every page was delivered later


def test_on_event_on_done_and_page_events(tmp_path):
    seen, done, pages = [], [], []

    async def on_done(result):
        done.append(result)

    sent, got, receiver = asyncio.run(fax(
        [text_page(1), text_page(2)], on_event=seen.append,
        receiver_kwargs=dict(on_done=on_done, on_page=lambda call, e: pages.append((e.number, e.page.rows)))))
    assert sent.ok and got.ok
    assert done == [got] and receiver.results == [got]
    assert pages == [(1, 2200), (2, 2200)]
    kinds = [type(e).__name__ for e in seen]
    assert kinds[0] == "CallStarted" and kinds.count("CallEnded") == 1
    assert kinds.count("PageSent") == 2 and "FrameSent" in kinds and "FrameReceived" in kinds


def test_concurrent_calls(tmp_path):
    """20 calls at once in one process, each to its own receiver: all succeed, right pixels."""
    n = 20

    async def one(i):
        page = text_page(i + 1, lines=2 + i % 5)
        out = tmp_path / f"rx{i}"
        sent, got, _ = await fax([page], receiver_kwargs=dict(output_dir=out, local_id=f"+1 555 {1000 + i}"))
        return page, sent, got

    async def all_calls():
        return await asyncio.gather(*(one(i) for i in range(n)))

    outcomes = asyncio.run(all_calls())
    failures = [(i, s.summary(), g.summary() if g else None) for i, (_, s, g) in enumerate(outcomes)
                if not (s.ok and g and g.ok)]
    assert failures == []
    for i, (page, sent, got) in enumerate(outcomes):
        assert sent.remote_id == f"+1 555 {1000 + i}"
        same_pixels([page], load(got.files[0]))
        assert leftovers(tmp_path / f"rx{i}") == []


def test_a_transport_failure_is_a_result_not_a_crash():
    """A local address that is not ours: the socket cannot open; the record says driver_error."""
    result = xmfax.send_sync([text_page(1)], via="t38://127.0.0.1:9?local=203.0.113.1:0", realtime=False)
    assert (result.direction, result.status, result.reason) == ("send", "failure", "driver_error")
    assert "cannot open UDP 203.0.113.1:0" in result.reason_text
    assert result.transport == "t38" and result.address.startswith("t38://127.0.0.1:9")


@pytest.mark.parametrize("decision", ["accept", "reject"])
def test_a_slow_on_call_keeps_the_port_open(tmp_path, decision):
    """on_call takes 2 s (a routing look-up): the receiver keeps its port open meanwhile, so
    the datagrams of a caller that repeats its indicators (as gateways do) are not answered
    with ICMP port-unreachable (which ends an xmfax caller's call as 'far end unreachable'). Accepted, the call succeeds; rejected, the caller
    fails with a line reason, never a success."""

    async def on_call(call):
        await asyncio.sleep(2.0)
        return decision == "accept"

    async def scenario():
        receiver, task, url = await start_receiver(once=True, on_call=on_call, output_dir=tmp_path)
        sent = await api.send([text_page(1, lines=1)], via=url, local_id=TX_ID, realtime=False,
                              resolution="standard", t38=T38Config(indicator_interval_ms=200),
                              config=T30Config(local_id=TX_ID, timers=Timers(t1=8.0)))
        results = await asyncio.wait_for(task, 30)
        return sent, results

    sent, results = asyncio.run(scenario())
    if decision == "accept":
        assert sent.ok, sent.summary()
        assert results[0].ok and results[0].page_count == 1
    else:
        assert not sent.ok and sent.page_count == 0
        assert results[0].reason == "rejected"


def test_t38_max_bit_rate_limits_what_both_ends_offer(tmp_path):
    """T38MaxBitRate 9600 on both ends: the API lowers each T.30 session to it (the T.38
    terminal refuses a session that may go faster), and the call runs at 9600 or below."""
    sent, got, _ = asyncio.run(fax([text_page(1)], t38=T38Config(max_bit_rate=9600),
                                   receiver_kwargs=dict(output_dir=tmp_path, t38=T38Config(max_bit_rate=9600))))
    assert sent.ok, sent.summary()
    assert got.ok, got.summary()
    assert sent.rate <= 9600 and got.rate <= 9600
