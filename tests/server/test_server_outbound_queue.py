"""The outbound queue (xmfax/server/submit.py, outbound.py) with real far ends: xmfax
receivers over T.38 and SIP on 127.0.0.1, the real store (SQLite, and PostgreSQL where
marked), the real Service. Unpaced T.38 keeps the calls short."""
from __future__ import annotations

import asyncio
import socket
import struct
import time
import zlib

import pytest

from xmfax import api
from xmfax.document import load
from xmfax.server.outbound import OutboundConfig
from xmfax.server.config import ConfigError
from xmfax.server.submit import SubmitError

from outboundkit import (FarEnd, page_pdf, received_pages, running_service, same_pixels, send_request,
                         wait_final)

BUSY, SILENT, DEAD = "+15550000486", "+15550000408", "+15550000999"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.interop)])
def database(request) -> str:
    if request.param == "sqlite":
        return ""
    return request.getfixturevalue("new_pg_database")()


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 90))


# --------------------------------------------------------------------------- a fax, sent
def test_fax_sent_and_the_far_end_has_the_same_pixels(tmp_path, database):
    pdf = page_pdf(tmp_path / "letter.pdf", 2)

    async def main():
        far = await FarEnd("t38://127.0.0.1:0").start(output_dir=tmp_path / "far", local_id="+1 555 0199",
                                                      once=True)
        try:
            async with running_service(tmp_path / "data", database, [f"t38://127.0.0.1:{far.port}"]) as svc:
                broadcast, ids = await send_request(svc, ["(555) 123-4567"], pdf, csid="+1 555 0100",
                                                    sender_name="ACME")
                (row,) = await wait_final(svc, ids)
                return svc, broadcast, ids[0], row, far, svc.store.read_file(ids[0], "tiff"), \
                    svc.store.events(ids[0]), svc.store.calls(fax_id=ids[0]), svc.store.files(ids[0])
        finally:
            await far.stop()

    svc, broadcast, fax_id, row, far, tiff, events, calls, files = run(main())
    assert len(broadcast) == 16 and len(fax_id) == 16
    assert (row["status"], row["reason"], row["pages"], row["attempts"]) == ("sent", "ok", 2, 1)
    assert row["number"] == "+15551234567" and row["remote_id"] == "+1 555 0199" and row["completed_at"]
    # the far end got exactly the pages the store holds: the PDF with the header line on top
    (got,) = far.results
    assert got.ok and got.remote_id == "+1 555 0100"
    stored = load(tiff)
    same_pixels(stored, received_pages(got))
    source = load(tmp_path / "letter.pdf")
    assert len(stored) == 2 and stored[0].image.shape == source[0].image.shape
    assert (stored[0].image[:40] != source[0].image[:40]).any()        # the header band
    assert (stored[0].image[200:] == source[0].image[200:]).all()      # the letter below it untouched
    # the record: events in order, one CDR, the sources and the T.30 log
    order = [e["kind"] for e in events]
    assert order[:5] == ["submitted", "queued", "attempt", "call", "sent"]
    assert set(order[5:]) <= {"notify", "delivered"}          # the notifier's own (no destinations here)
    call_event = next(e for e in events if e["kind"] == "call")
    frames = [e.get("frame") for e in call_event["data"]["t30"] if "frame" in e]
    assert frames[:3] == ["CSI", "DIS", "TSI"] and frames[-1] == "DCN"
    (cdr,) = calls
    assert (cdr["attempt"], cdr["status"], cdr["reason"], cdr["pages"], cdr["rate"]) == (1, "success", "ok", 2, 14400)
    assert cdr["dnis"] == "+15551234567" and cdr["ended_at"] >= cdr["started_at"]
    assert sorted((f["kind"], f["name"]) for f in files) == [("record", "attempt-1.json"), ("source", "letter.pdf"),
                                                             ("tiff", "")]


def test_one_transaction_per_recipient_with_its_own_cover_sheet(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start(output_dir=tmp_path / "far")
        try:
            async with running_service(tmp_path / "data", "", [f"sip:{{number}}@127.0.0.1:{far.port}"]) as svc:
                numbers = ["+15550000001", "+15550000002", "+15550000003"]
                broadcast, ids = await send_request(svc, numbers, pdf, csid="+1 555 0100", copies=2,
                                                    cover={"subject": "Quote", "note": "see attached"})
                rows = await wait_final(svc, ids)
                listed = await svc.db(svc.store.list_faxes, broadcast_id=broadcast)
                return ids, rows, listed, far, svc.store.files(ids[0])
        finally:
            await far.stop()

    ids, rows, listed, far, files = run(main())
    assert len(set(ids)) == 3 and sorted(r["id"] for r in listed) == sorted(ids)
    assert [r["status"] for r in rows] == ["sent"] * 3 and all(r["pages"] == 3 for r in rows)   # cover + 2
    # two attachments of the same name are both kept
    assert sorted(f["name"] for f in files if f["kind"] == "source") == ["letter (2).pdf", "letter.pdf"]
    # each number received exactly once, each with its own cover (the "Fax:" line differs)
    assert sorted(c["dnis"] for c in far.calls) == ["+15550000001", "+15550000002", "+15550000003"]
    covers = {r.dnis: received_pages(r)[0].image for r in far.answered()}
    assert (covers["+15550000001"] != covers["+15550000002"]).any()


# --------------------------------------------------------------------------- retries
def _far_end_decides(call):
    if call.dnis == BUSY:
        return api.Reject("busy here", status=486)
    if call.dnis == SILENT:
        return asyncio.sleep(2.0, api.Accept())         # answers long after the caller's wait (0.5 s)
    return api.Accept()


def test_busy_and_no_answer_retried_with_backoff_then_failed(tmp_path):
    """Busy (SIP 486), no answer (SIP: no final answer within invite_timeout) and a dead
    T.38 port (bound, silent: no DIS within T.30 T1, here 1 s): retried, then failed."""
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start(decide=_far_end_decides, call_decision_timeout=60)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dead:
            dead.bind(("127.0.0.1", 0))
            lines = [{"url": f"sip:{{number}}@127.0.0.1:{far.port}", "numbers": [BUSY, SILENT], "max_calls": 2},
                     {"url": f"t38://127.0.0.1:{dead.getsockname()[1]}", "numbers": DEAD}]
            try:
                async with running_service(tmp_path / "data", "", lines, sip={"invite_timeout": 0.5},
                                           retry_delays=[0.4, 0.8], answer_timeout=1.0) as svc:
                    _, busy = await send_request(svc, [BUSY], pdf, max_attempts=3)
                    _, silent = await send_request(svc, [SILENT], pdf, max_attempts=2)
                    _, gone = await send_request(svc, [DEAD], pdf, max_attempts=2)
                    ids = busy + silent + gone
                    rows = await wait_final(svc, ids, timeout=40)
                    return rows, [svc.store.calls(fax_id=i) for i in ids], [svc.store.events(i) for i in ids], far
            finally:
                await far.stop()

    rows, calls, events, far = run(main())
    (b, s, d), (bcalls, scalls, dcalls), (bevents, _, devents) = rows, calls, events
    assert (b["status"], b["reason"], b["attempts"]) == ("failed", "busy", 3)
    assert (s["status"], s["reason"], s["attempts"]) == ("failed", "no_answer", 2)
    assert (d["status"], d["reason"], d["attempts"]) == ("failed", "no_dis", 2)
    assert [c["reason"] for c in bcalls] == ["busy"] * 3 and [c["attempt"] for c in bcalls] == [1, 2, 3]
    assert [c["reason"] for c in scalls] == ["no_answer"] * 2
    assert [c["reason"] for c in dcalls] == ["no_dis"] * 2
    # the backoff: each retry waited at least its delay (0.4 s, then 0.8 s)
    gaps = [later["started_at"] - earlier["ended_at"] for earlier, later in zip(bcalls, bcalls[1:])]
    assert gaps[0] >= 0.4 and gaps[1] >= 0.8, gaps
    retries = [e for e in bevents if e["kind"] == "retry"]
    assert [e["data"]["delay"] for e in retries] == [0.4, 0.8]
    (failed,) = [e for e in bevents if e["kind"] == "failed"]
    assert "after 3 attempt(s): busy (no attempt left)" in failed["message"]
    assert [e["kind"] for e in devents].count("retry") == 1
    assert sum(1 for c in far.calls if c["dnis"] == BUSY) == 3     # the far end saw every attempt


def test_a_reason_that_is_not_retryable_fails_at_once(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start(decide=lambda call: api.Reject("no such number", status=404))
        try:
            async with running_service(tmp_path / "data", "", [f"sip:{{number}}@127.0.0.1:{far.port}"]) as svc:
                _, ids = await send_request(svc, ["+15550000404"], pdf, max_attempts=3)
                (row,) = await wait_final(svc, ids)
                return row, svc.store.calls(fax_id=ids[0])
        finally:
            await far.stop()

    row, calls = run(main())
    assert (row["status"], row["reason"], row["attempts"], len(calls)) == ("failed", "not_found", 1, 1)


# --------------------------------------------------------------------------- concurrency, schedule
def test_per_line_concurrency_never_exceeds_max_calls(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start()
        try:
            line = {"url": f"sip:{{number}}@127.0.0.1:{far.port}", "name": "trunk", "max_calls": 2}
            async with running_service(tmp_path / "data", "", [line]) as svc:
                _, ids = await send_request(svc, [f"+1555000{i:04d}" for i in range(6)], pdf)
                rows = await wait_final(svc, ids, timeout=60)
                return rows, [c for i in ids for c in svc.store.calls(fax_id=i)], far
        finally:
            await far.stop()

    rows, calls, far = run(main())
    assert [r["status"] for r in rows] == ["sent"] * 6
    # our own CDRs: never more than 2 calls at once on the line
    marks = sorted([(c["started_at"], 1) for c in calls] + [(c["ended_at"], -1) for c in calls])
    now = most = 0
    for _, step in marks:
        now += step
        most = max(most, now)
    assert most == 2
    # the far end's own view: 6 calls, at most 2 at a time, and 2 did overlap
    assert len(far.answered()) == 6 and far.most_at_once() == 2


def test_a_busy_line_does_not_hold_up_faxes_for_another_line(tmp_path):
    """Two lines: "+1*" (one call at a time, its far end slow to answer) and "+44*". Faxes
    for +1 queued first wait for their line; the +44 fax queued behind them goes at once."""
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def slow_for_us(call):
        if call.dnis.startswith("+1"):
            await asyncio.sleep(1.5)
        return api.Accept()

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start(decide=slow_for_us, call_decision_timeout=30)
        try:
            lines = [{"url": f"sip:{{number}}@127.0.0.1:{far.port}", "name": "us", "numbers": "+1*"},
                     {"url": f"sip:{{number}}@127.0.0.1:{far.port}", "name": "uk", "numbers": "+44*"}]
            async with running_service(tmp_path / "data", "", lines, sip={"invite_timeout": 10.0}) as svc:
                _, us = await send_request(svc, ["+15550000001", "+15550000002", "+15550000003"], pdf)
                _, uk = await send_request(svc, ["+442079460000"], pdf)
                rows = await wait_final(svc, us + uk, timeout=30)
                return rows, [svc.store.calls(fax_id=i)[0] for i in us + uk]
        finally:
            await far.stop()

    rows, calls = run(main())
    assert [r["status"] for r in rows] == ["sent"] * 4
    assert [r["line"] for r in rows] == ["us", "us", "us", "uk"]
    us_calls, uk_call = calls[:3], calls[3]
    assert uk_call["ended_at"] < us_calls[0]["ended_at"]          # not behind the +1 faxes
    starts = sorted(c["started_at"] for c in us_calls)
    ends = sorted(c["ended_at"] for c in us_calls)
    assert starts[1] >= ends[0] and starts[2] >= ends[1]           # "us" carried one call at a time
    assert all(r["attempts"] == 1 for r in rows)                   # waiting for a line is not an attempt


def test_scheduled_fax_is_not_sent_before_its_time(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("t38://127.0.0.1:0").start(once=True)
        try:
            async with running_service(tmp_path / "data", "", [f"t38://127.0.0.1:{far.port}"]) as svc:
                at = time.time() + 1.5
                _, ids = await send_request(svc, ["+15551234567"], pdf, schedule_at=at)
                await asyncio.sleep(1.0)
                early = (await svc.db(svc.store.get_fax, ids[0]))["status"], len(far.results)
                (row,) = await wait_final(svc, ids)
                return at, early, row, svc.store.calls(fax_id=ids[0])
        finally:
            await far.stop()

    at, early, row, (call,) = run(main())
    assert early == ("queued", 0)
    assert row["status"] == "sent" and row["scheduled_at"] == pytest.approx(at)
    assert call["started_at"] >= at


# --------------------------------------------------------------------------- cancel
def test_cancel_a_queued_fax_and_a_fax_mid_call(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start(decide=_far_end_decides, call_decision_timeout=60)
        try:
            async with running_service(tmp_path / "data", "", [f"sip:{{number}}@127.0.0.1:{far.port}"],
                                       sip={"invite_timeout": 1.5}) as svc:
                outbound = svc.component("Outbound")
                _, later = await send_request(svc, ["+15551234567"], pdf, schedule_at=time.time() + 3600)
                assert await outbound.cancel(later[0]) is True
                assert await outbound.cancel(later[0]) is False          # already final: nothing changes
                _, ringing = await send_request(svc, [SILENT], pdf)
                while not far.calls:                                      # the far end is being called
                    await asyncio.sleep(0.05)
                assert (await svc.db(svc.store.get_fax, ringing[0]))["status"] == "sending"
                assert await outbound.cancel(ringing[0]) is True
                rows = await wait_final(svc, later + ringing, timeout=5)
                return rows, [svc.store.events(i) for i in later + ringing], svc.store.calls(fax_id=ringing[0]), \
                    await outbound.cancel("0123456789abcdef")
        finally:
            await far.stop()

    rows, (ev_later, ev_ringing), calls, unknown = run(main())
    assert [(r["status"], r["reason"]) for r in rows] == [("cancelled", "cancelled")] * 2
    assert rows[0]["attempts"] == 0 and "attempt" not in [e["kind"] for e in ev_later]
    (cancelled,) = [e for e in ev_ringing if e["kind"] == "cancelled"]
    assert "aborted" in cancelled["message"]
    (call,) = calls
    assert (call["status"], call["reason"]) == ("failure", "cancelled") and call["ended_at"]
    assert unknown is False


# --------------------------------------------------------------------------- refusals
def test_bad_requests_are_refused_before_anything_is_stored(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        async with running_service(tmp_path / "data", "", []) as svc:
            out = []
            for numbers, kw, docs in (
                (["555-0100"], {}, pdf),
                ([], {}, pdf),
                (["+15551234567"], {}, b"%PDF-1.7 not really"),
                (["+15551234567"], {}, _png_bomb()),
                (["+15551234567"], {"csid": "ACME Corp"}, pdf),
                (["+15551234567"], {"max_attempts": 0}, pdf),
                (["+15551234567"], {"retention_days": 3}, pdf),
                (["+15551234567"], {"cover": {"evil": "x"}}, pdf),
                (["+15551234567"], {"notifications": [{"name": "nowhere"}]}, pdf),
                (["+15551234567"], {"notifications": [{"type": "email", "to": ["a@example.com"], "colour": 1}]}, pdf),
                (["+15551234567"], {"resolution": "ultra"}, pdf),
            ):
                with pytest.raises(SubmitError) as err:
                    await send_request(svc, numbers, docs, **kw)
                out.append((err.value.code, err.value.status, err.value.message))
            return out, await svc.db(svc.store.list_faxes)

    refused, stored = run(main())
    assert [c for c, _, _ in refused] == ["invalid_number", "invalid_metadata", "bad_document", "bad_document",
                                          "invalid_metadata",
                                          "invalid_metadata", "invalid_metadata", "invalid_metadata",
                                          "invalid_metadata", "invalid_metadata", "invalid_metadata"]
    assert all(status == 422 for _, status, _ in refused)
    assert "10 digits" in refused[0][2] and "decompression bomb" in refused[3][2]
    assert "nowhere" in refused[8][2] and "colour" in refused[9][2]
    assert stored == []


def _png_bomb() -> bytes:
    """A PNG that declares 100000 x 100000 pixels (10 G) in a few bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 100)) + chunk(b"IEND", b""))


def test_no_line_serves_the_number(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)

    async def main():
        line = {"url": "t38://127.0.0.1:9", "numbers": "+44*"}
        async with running_service(tmp_path / "data", "", [line]) as svc:
            _, ids = await send_request(svc, ["+15551234567"], pdf)
            (row,) = await wait_final(svc, ids, timeout=5)
            return row

    row = run(main())
    assert (row["status"], row["reason"], row["attempts"]) == ("failed", "no_line", 0)
    assert "serves +15551234567" in row["reason_text"]


@pytest.mark.parametrize("section, why", [
    ({"lines": ["t38://127.0.0.1:{port}"]}, "only placeholders"),
    ({"lines": ["carrier-pigeon://x"]}, "unknown transport"),
    ({"lines": [{"url": "t38://127.0.0.1:6000", "max_calls": 0}]}, "max_calls"),
    ({"retry_delays": []}, "retry_delays"),
    ({"colour": "blue"}, "unknown key"),
    ({"default_country": "0"}, "default_country"),
    ({"heartbeat": 5, "stale_after": 5}, "stale_after"),
    ({"lines": ["t38://a:1", "t38://a:1"]}, "named the same"),
])
def test_bad_outbound_config_names_the_key(section, why):
    with pytest.raises(ConfigError, match=why):
        OutboundConfig.from_dict(section)


def test_outbound_config_defaults_and_lines():
    cfg = OutboundConfig.from_dict({"lines": ["sip:{number}@trunk.example",
                                              {"url": "class1:/dev/ttyUSB0", "numbers": ["+1*"], "dial": "9{digits}",
                                               "max_calls": 1, "name": "modem"}]})
    assert cfg.retry_delays == [60.0, 300.0, 900.0] and "busy" in cfg.retry_on and "no_answer" in cfg.retry_on
    trunk, modem = cfg.lines
    assert trunk.via("+15551234567") == "sip:+15551234567@trunk.example" and trunk.to("+15551234567") is None
    assert modem.serves("+15551234567") and not modem.serves("+442079460000")
    assert modem.to("+15551234567") == "915551234567"
