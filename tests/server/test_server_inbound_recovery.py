"""Inbound crash recovery (Inbound.recover): every state a killed node can leave in its spool
folder and its rows, planted with the real writer (xmfax.storage.FaxFiles) and recovered by
the real service on SQLite and PostgreSQL. The kill -9 of a real `xmfax serve` during a call
is in test_server_inbound_kill.py."""
from __future__ import annotations

import asyncio
import time

from inboundkit import make_config, pages, plaintext_tiffs, running, same_pixels, wait_for
from xmfax import storage
from xmfax.document import load
from xmfax.record import FaxResult, PageDetail


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def db_arg(store_url: str) -> str:
    return store_url if "://" in store_url else ""


def killed_mid_call(spool, got: list, *, half_page: bool = True) -> storage.FaxFiles:
    """The spool as a node killed during a call leaves it: pages stored by the real writer,
    then (``half_page``) the strip of a next page written but never linked in; not closed."""
    files = storage.FaxFiles(spool, ("tiff",), "mmr", time.time())
    for i, p in enumerate(got, 1):
        files.store(i, p)
    if half_page:
        files._file.seek(0, 2)                # where the writer puts a page's strip: the end
        files._file.write(b"\x00\x01\x02garbage of a page being written" * 100)
    files._file.close()
    return files


def ended_call(spool, got: list) -> storage.FaxFiles:
    """The spool as a node killed after the call ended (files closed) but before on_done."""
    files = storage.FaxFiles(spool, ("tiff",), "mmr", time.time())
    for i, p in enumerate(got, 1):
        files.store(i, p)
    files.close(FaxResult(direction="receive", status="success", reason="ok", remote_id="+1 555 0100",
                          pages=[PageDetail(number=i) for i in range(1, len(got) + 1)], local_id="+1 555 123 0001"))
    return files


async def receiving_row(svc, **fields) -> str:
    fields.setdefault("dnis", "+15551230001")
    return await svc.db(svc.store.create_fax, direction="in", status="receiving", claimed_by=svc.node,
                        line="t38://127.0.0.1:1", **fields)


async def delivered(svc, fax_id):
    row = await svc.db(svc.store.get_fax, fax_id)
    return row if row["notify_status"] in ("delivered", "failed") else None


def test_recovery_of_every_spool_state(tmp_path, store_url):
    inbox = tmp_path / "inbox"
    cfg = make_config(tmp_path / "data", inbox, database=db_arg(store_url))
    two, one, three = pages(2), pages(1), pages(3)

    async def main():
        async with running(cfg) as svc:
            inbound = svc.component("Inbound")
            spool = inbound.spool
            # 1. killed during page 3: the row names its .part (tied by on_stored)
            a = killed_mid_call(spool, two)
            row_a = await receiving_row(svc, metadata={"spool": str(a.part)})
            # 2. killed before the row named its file: tied to the first call that began after the
            #    file's stamp (the receiver's clock when it began waiting for the call)
            b = killed_mid_call(spool, one, half_page=False)
            row_b = await receiving_row(svc, dnis="+15551230002", created_at=time.time() + 0.5)
            # 3. killed after the call ended, before on_done stored it: the record says it all
            c = ended_call(spool, three)
            row_c = await receiving_row(svc, metadata={"spool": str(c.part)})
            # 4. a .part nobody knows of (its row lost): a new fax, nothing dropped
            orphan = killed_mid_call(spool, one)
            # 5. killed before any page was stored (no spool file): failed, interrupted
            row_e = await receiving_row(svc, created_at=time.time() - 3600)
            # 6. completed but never routed
            row_f = await receiving_row(svc, pages=1)
            await svc.db(svc.store.put_file, row_f, "tiff", load_tiff_bytes(one))
            await svc.db(svc.store.complete_fax, row_f, "received", claimed_by=svc.node, reason="ok")
            # 7. another node's call: not ours to touch
            row_g = await svc.db(svc.store.create_fax, direction="in", status="receiving", claimed_by="other-node")

            counts = await inbound.recover()
            for fid in (row_a, row_b, row_c, row_e, row_f):
                await wait_for(lambda fid=fid: delivered(svc, fid), what=f"fax {fid} notified")
            rows = {fid: await svc.db(svc.store.get_fax, fid) for fid in (row_a, row_b, row_c, row_e, row_f, row_g)}
            new = [r for r in await svc.db(svc.store.list_faxes, direction="in", limit=100) if r["id"] not in rows]
            await wait_for(lambda: delivered(svc, new[0]["id"]), what="the orphan notified")
            events = {fid: await svc.db(svc.store.events, fid) for fid in [*rows, new[0]["id"]]}
            images = {fid: load(await svc.db(svc.store.read_file, fid, "tiff")) for fid in (row_a, row_b, row_c)}
            images[new[0]["id"]] = load(await svc.db(svc.store.read_file, new[0]["id"], "tiff"))
            again = await inbound.recover()
            return counts, rows, new, events, images, again, spool

    counts, rows, new, events, images, again, spool = run(main())
    a, b, c, e, f, g = rows.values()
    # 1. the two whole pages kept (the half-written third is not counted), routed, notified
    assert (a["status"], a["reason"], a["pages"], a["notify_status"]) == ("received", "interrupted", 2, "delivered")
    same_pixels(two, images[a["id"]])
    assert [ev["kind"] for ev in events[a["id"]]][:3] == ["recovered", "received", "routing"]
    assert "2 whole page(s) kept from the spool" in events[a["id"]][0]["message"]
    # 2. tied to the row without a spool name that began just after the file's stamp
    assert (b["status"], b["pages"], b["metadata"].get("spool")) == ("received", 1, None)
    same_pixels(one, images[b["id"]])
    # 3. from the record: a whole fax, reason ok, the sender's CSID kept
    assert (c["status"], c["reason"], c["pages"], c["remote_id"]) == ("received", "ok", 3, "+1 555 0100")
    same_pixels(three, images[c["id"]])
    assert "the call had ended" in events[c["id"]][0]["message"]
    # 4. a new row for the orphan .part
    assert len(new) == 1 and new[0]["status"] == "received" and new[0]["pages"] == 1
    assert new[0]["metadata"]["recovered"] is True
    same_pixels(one, images[new[0]["id"]])
    assert events[new[0]["id"]][0]["message"].startswith("found in the spool without its record")
    # 5. no page: failed, interrupted, said so, nothing to deliver
    assert (e["status"], e["reason"], e["pages"], e["notify_status"]) == ("failed", "interrupted", 0, "delivered")
    assert events[e["id"]][0]["kind"] == "interrupted"
    # 6. routed at last
    assert f["notify_status"] == "delivered"
    assert events[f["id"]][0]["message"].startswith("routed after a restart")
    # 7. untouched
    assert g["status"] == "receiving" and events[g["id"]] == []
    assert counts == {"spool": 4, "interrupted": 1, "routed": 1, "taken_over": 0}
    assert again == {"spool": 0, "interrupted": 0, "routed": 0, "taken_over": 0}          # idempotent
    assert list(spool.iterdir()) == []                                   # nothing left in the clear
    assert plaintext_tiffs(tmp_path / "data") == []
    # everything reached the folders: a (alice), b/orphan (catchall: no users on ...0002 / no dnis),
    # c (alice), f (alice)
    assert len(list((inbox / "alice").iterdir())) == 3
    assert len(list((inbox / "catchall").iterdir())) == 2


def load_tiff_bytes(got) -> bytes:
    import io

    from xmfax.document.tiffwriter import write_tiff
    buf = io.BytesIO()
    write_tiff(got, buf, codec="mmr")
    return buf.getvalue()


def test_sweep_takes_over_the_calls_of_a_node_gone_for_good(tmp_path, store_url):
    """Another node (same data folder) stopped refreshing two calls for longer than any call
    may last: the one whose spool file is reachable here becomes a fax with its pages, the
    other one failed/interrupted; a call refreshed recently is left alone."""
    inbox = tmp_path / "inbox"
    cfg = make_config(tmp_path / "data", inbox, database=db_arg(store_url), inbound={"max_duration": 60})
    one = pages(1)

    async def main():
        async with running(cfg) as svc:
            inbound = svc.component("Inbound")
            assert inbound.stale_after == 180.0
            theirs = inbound.spool.parent / "other-node"
            theirs.mkdir()
            files = killed_mid_call(theirs, one)
            old = time.time() - 1000
            with_pages = await svc.db(svc.store.create_fax, direction="in", status="receiving",
                                      claimed_by="other-node", heartbeat_at=old, dnis="+15551230001",
                                      metadata={"spool": str(files.part), "node": "other-node"})
            without = await svc.db(svc.store.create_fax, direction="in", status="receiving",
                                   claimed_by="other-node", heartbeat_at=old)
            alive = await svc.db(svc.store.create_fax, direction="in", status="receiving",
                                 claimed_by="other-node", heartbeat_at=time.time() - 5)
            taken = await inbound.sweep()
            for fid in (with_pages, without):
                await wait_for(lambda fid=fid: delivered(svc, fid), what=f"fax {fid} settled")
            rows = [await svc.db(svc.store.get_fax, f) for f in (with_pages, without, alive)]
            first = await svc.db(svc.store.events, with_pages)
            image = load(await svc.db(svc.store.read_file, with_pages, "tiff"))
            return taken, rows, first, image, theirs

    taken, (a, b, c), first, image, theirs = run(main())
    assert taken == 2
    assert (a["status"], a["reason"], a["pages"], a["notify_status"]) == ("received", "interrupted", 1, "delivered")
    same_pixels(one, image)
    assert first[0]["message"].startswith("taken over by ") and "other-node stopped refreshing this call" in \
        first[0]["message"]
    assert (b["status"], b["reason"], b["pages"]) == ("failed", "interrupted", 0)
    assert c["status"] == "receiving"
    assert list(theirs.iterdir()) == []
    assert len(list((inbox / "alice").iterdir())) == 1


def test_store_write_failing_after_the_call_keeps_the_fax_for_the_next_start(tmp_path):
    """The encrypted store cannot be written when the call ends (disk full: injected by
    making put_file raise ENOSPC, since root cannot be refused a write on a normal folder).
    The caller was told MCF for pages already fsync'd in the spool, so the fax must
    survive: it stays in the spool, the row stays `receiving`, and the next start stores
    it with its real record."""
    import errno

    from inboundkit import address, send

    inbox = tmp_path / "inbox"
    cfg = make_config(tmp_path / "data", inbox, listen=["t38://127.0.0.1:0#+15551230001"])
    two = pages(2)

    async def first():
        async with running(cfg) as svc:
            def full(*args, **kwargs):
                raise OSError(errno.ENOSPC, "No space left on device")
            svc.store.put_file = full
            host, port = address(svc)
            sent = await send(two, f"t38://{host}:{port}?local=127.0.0.1:0")
            row = await wait_for(lambda: _left(svc), what="the call to end")
            await asyncio.sleep(0.3)                      # on_done has given up
            return sent, (await svc.db(svc.store.get_fax, row["id"])), sorted(
                p.suffix for p in svc.component("Inbound").spool.iterdir())

    async def second(fax_id):
        async with running(cfg) as svc:
            row = await wait_for(lambda: delivered(svc, fax_id), what="the fax delivered after the restart")
            events = await svc.db(svc.store.events, fax_id)
            image = load(await svc.db(svc.store.read_file, fax_id, "tiff"))
            return row, events, image, list(svc.component("Inbound").spool.iterdir())

    sent, left, spooled = run(first())
    assert sent.ok                                         # both pages were on disk before their MCF
    assert left["status"] == "receiving" and spooled == [".json", ".tif"]
    row, events, image, spool_after = run(second(left["id"]))
    assert (row["status"], row["reason"], row["pages"], row["remote_id"]) == ("received", "ok", 2, "+1 555 0100")
    assert "the call had ended; its fax is stored after the restart" in [e["message"] for e in events]
    same_pixels(two, image)
    assert spool_after == [] and plaintext_tiffs(tmp_path / "data") == []
    assert len(list((inbox / "alice").iterdir())) == 1


async def _left(svc):
    """The inbound row once its call has ended (no call in progress on the node)."""
    inbound = svc.component("Inbound")
    if not inbound.receivers[0].results or inbound._active:       # the call ended, on_done ran
        return None
    return (await svc.db(svc.store.list_faxes, direction="in"))[0]


def test_a_call_given_up_while_its_node_was_away_is_completed_when_it_returns(tmp_path):
    """The node's spool was out of reach when another node swept its stale call (failed,
    interrupted, nothing delivered); when the node comes back with the spool file, the
    pages complete that same fax instead of making a second one."""
    import shutil

    inbox = tmp_path / "inbox"
    cfg = make_config(tmp_path / "data", inbox)
    one = pages(1)

    async def main():
        async with running(cfg) as svc:
            inbound = svc.component("Inbound")
            away = tmp_path / "away"
            away.mkdir()
            files = killed_mid_call(away, one)
            part = inbound.spool / files.part.name                  # where the node's spool keeps it
            fax_id = await receiving_row(svc, heartbeat_at=time.time() - 10_000, metadata={"spool": str(part)})
            assert await inbound.sweep() == 1                        # the spool is not there
            given_up = await svc.db(svc.store.get_fax, fax_id)
            shutil.move(str(files.part), str(part))                  # the node is back with its disk
            counts = await inbound.recover()
            await wait_for(lambda: delivered(svc, fax_id), what="the fax delivered")
            rows = await svc.db(svc.store.list_faxes, direction="in")
            kinds = [e["kind"] for e in await svc.db(svc.store.events, fax_id)]
            image = load(await svc.db(svc.store.read_file, fax_id, "tiff"))
            return given_up, counts, rows, kinds, image

    given_up, counts, rows, kinds, image = run(main())
    assert (given_up["status"], given_up["reason"], given_up["notify_status"]) == ("failed", "interrupted", "delivered")
    assert counts["spool"] == 1 and len(rows) == 1                 # one call, one fax
    row = rows[0]
    assert (row["status"], row["reason"], row["pages"], row["notify_status"]) == ("received", "interrupted", 1,
                                                                                   "delivered")
    same_pixels(one, image)
    assert kinds.count("routing") == 2 and kinds.count("recovered") >= 3
    assert len(list((inbox / "alice").iterdir())) == 1
