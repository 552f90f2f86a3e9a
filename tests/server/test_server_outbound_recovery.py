"""What a dead node leaves behind, taken over by a live one; a cancel made on one node
ending the call another node is making. Two Services in this process share one SQLite
database and data folder (as two nodes share PostgreSQL); the far end is a real xmfax
SIP receiver. The kill -9 of a real `xmfax serve` is in test_server_outbound_nodes.py."""
from __future__ import annotations

import asyncio
import socket
import time

from outboundkit import FarEnd, page_pdf, running_service, send_request, wait_final


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_a_dead_nodes_faxes_are_taken_over_by_a_running_node(tmp_path):
    """Rows in `sending` whose node stopped heart-beating (a crash elsewhere) go back to the
    queue with an `interrupted` event and are sent; a row whose node died with no attempt
    left ends `interrupted`; a submission cut short ends `failed`. Nothing stays half done."""
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    data = tmp_path / "data"

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start()
        try:
            # node "ghost" queued three faxes (it has no line), then "died" in the middle of them
            async with running_service(data, "", [], node="ghost") as ghost:
                store = ghost.store
                _, (again, last, cut) = await send_request(ghost, ["+15550000001", "+15550000002", "+15550000003"],
                                                           pdf, max_attempts=2)
            old = time.time() - 120
            for fax_id, attempts in ((again, 1), (last, 2)):
                store_ok = await _as_left_by_a_crash(data, fax_id, attempts, old)
                assert store_ok
            await _as_left_mid_submit(data, cut, time.time() - 3600)
            async with running_service(data, "", [f"sip:{{number}}@127.0.0.1:{far.port}"], node="live") as live:
                rows = await wait_final(live, [again, last, cut], timeout=20)
                return rows, [live.store.events(i) for i in (again, last, cut)], \
                    live.store.calls(fax_id=again), far
        finally:
            await far.stop()

    (again, last, cut), (ev_again, ev_last, ev_cut), calls, far = run(main())
    assert (again["status"], again["attempts"], again["claimed_by"]) == ("sent", 2, None)
    interrupted = [e for e in ev_again if e["kind"] == "interrupted"]
    assert len(interrupted) == 1 and "node ghost stopped during attempt 1; retrying" in interrupted[0]["message"]
    assert [(c["attempt"], c["status"], c["reason"], c["node"]) for c in calls] == [
        (1, "failure", "interrupted", "ghost"), (2, "success", "ok", "live")]
    assert (last["status"], last["reason"], last["attempts"]) == ("interrupted", "interrupted", 2)
    assert "no attempt left" in last["reason_text"] and "interrupted" in [e["kind"] for e in ev_last]
    assert (cut["status"], cut["reason"]) == ("failed", "interrupted")
    assert "interrupted" in [e["kind"] for e in ev_cut] and "attempt" not in [e["kind"] for e in ev_cut]
    assert sorted(c["dnis"] for c in far.calls) == ["+15550000001"]      # only the fax with an attempt left


async def _as_left_by_a_crash(data, fax_id: str, attempts: int, heartbeat: float) -> bool:
    """Put the row as a node killed during attempt ``attempts`` leaves it: `sending`, its
    claim and an old heartbeat, and an open CDR."""
    from xmfax.server.service import load_key
    from xmfax.server import config as cfgmod
    from xmfax.server.store import Store

    cfg = cfgmod.load(data=str(data))
    store = Store.open(cfg.db_url, cfg.data_dir, load_key(cfg))
    try:
        ok = store.set_status(fax_id, "sending", expect=("queued",), claimed_by="ghost", heartbeat_at=heartbeat,
                              attempts=attempts, updated_at=heartbeat)
        store.add_call(fax_id, attempt=attempts, direction="out", line="trunk", started_at=heartbeat - 1,
                       status="calling", node="ghost")
        return ok
    finally:
        store.close()


async def _as_left_mid_submit(data, fax_id: str, when: float) -> None:
    from xmfax.server.service import load_key
    from xmfax.server import config as cfgmod
    from xmfax.server.store import Store

    cfg = cfgmod.load(data=str(data))
    store = Store.open(cfg.db_url, cfg.data_dir, load_key(cfg))
    try:
        assert store.set_status(fax_id, "submitting", expect=("queued",), updated_at=when)
    finally:
        store.close()


def test_cancel_on_one_node_ends_the_call_another_node_is_making(tmp_path):
    """The caller's line is a T.38 port where nobody answers (the call waits up to 10 s for
    the far end's DIS, T.30 T1); the fax is cancelled through the other node."""
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    data = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:      # bound, never read: no ICMP either
        quiet.bind(("127.0.0.1", 0))
        line = [f"t38://127.0.0.1:{quiet.getsockname()[1]}"]

        async def main():
            async with running_service(data, "", line, node="caller", answer_timeout=10.0) as caller, \
                    running_service(data, "", [], node="other") as other:
                _, ids = await send_request(caller, ["+15550000009"], pdf)
                while not caller.store.calls(fax_id=ids[0]):               # the call is being made
                    await asyncio.sleep(0.05)
                t = time.monotonic()
                assert await other.component("Outbound").cancel(ids[0]) is True
                while caller.component("Outbound").active:                # the caller aborts its call
                    await asyncio.sleep(0.05)
                aborted_after = time.monotonic() - t
                (row,) = await wait_final(caller, ids, timeout=5)
                return row, caller.store.events(ids[0]), caller.store.calls(fax_id=ids[0]), aborted_after

        row, events, calls, aborted_after = run(main())
    assert (row["status"], row["reason"]) == ("cancelled", "cancelled")
    assert "while node caller was sending" in row["reason_text"]
    assert aborted_after < 3.0                       # within a heartbeat or two (0.5 s), long before T1 (10 s)
    (call,) = calls
    assert (call["status"], call["reason"], call["node"]) == ("failure", "cancelled", "caller") and call["ended_at"]
    assert "cancelled" in kinds_of(events) and "sent" not in kinds_of(events)
    assert any("after the fax became cancelled" in e["message"] for e in events)


def kinds_of(events):
    return [e["kind"] for e in events]


def test_a_stop_during_a_call_puts_the_fax_back_in_the_queue(tmp_path):
    """SIGTERM's path (Service.stop): the call gets stop_grace seconds, then is aborted and
    its fax goes back to the queue with an `interrupted` event, as after a crash."""
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    data = tmp_path / "data"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as quiet:
        quiet.bind(("127.0.0.1", 0))
        line = [f"t38://127.0.0.1:{quiet.getsockname()[1]}"]

        async def main():
            async with running_service(data, "", line, node="n1", answer_timeout=20.0, stop_grace=0.3) as svc:
                _, ids = await send_request(svc, ["+15550000009"], pdf)
                while not svc.store.calls(fax_id=ids[0]):
                    await asyncio.sleep(0.05)
                t = time.monotonic()
            stopped_after = time.monotonic() - t
            return stopped_after, ids[0], data

        stopped_after, fax_id, data = run(main())

    async def read():
        async with running_service(data, "", [], node="n1") as svc:       # no line: it stays queued
            return svc.store.get_fax(fax_id), svc.store.events(fax_id), svc.store.calls(fax_id=fax_id)

    row, events, calls = run(read())
    assert stopped_after < 5.0                       # stop_grace, not the 20 s of T1
    assert (row["status"], row["attempts"], row["claimed_by"], row["reason"]) == ("queued", 1, None, "interrupted")
    (interrupted,) = [e for e in events if e["kind"] == "interrupted"]
    assert "node n1 stopped during attempt 1; retrying" in interrupted["message"]
    (call,) = calls
    assert (call["status"], call["reason"]) == ("failure", "interrupted") and call["ended_at"]
