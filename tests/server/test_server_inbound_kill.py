"""Kill -9 a real `xmfax serve` in the middle of a receive (issue #14, "Nothing lost"): the
call is frozen right after page 2 of 4 is confirmed (a relay drops the receiver's 2nd MCF
and all after it), the node is killed, restarted: the confirmed pages are kept, routed
and delivered to a folder destination; nothing stays in the clear."""
from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from pathlib import Path

import pytest

from inboundkit import T38Relay, pages, plaintext_tiffs, same_pixels, send
from serve_proc import Serve
from xmfax.document import load
from xmfax.server.store import Store


def toml_config(path: Path, inbox: Path, database: str = "") -> Path:
    lines = [
        f'database = {json.dumps(database)}' if database else "",
        "[inbound]",
        'listen = ["t38://127.0.0.1:0#+15551230001"]',
        "realtime = false",
        "[notify]",
        "retry_delays = [0.2, 0.5]",
        "poll_interval = 0.2",
        "[[numbers]]",
        'number = "+15551230001"',
        'csid = "+1 555 123 0001"',
        'users = ["alice"]',
        "[[users]]",
        'name = "alice"',
        'destinations = ["alice-inbox"]',
        "[[destinations]]",
        'name = "alice-inbox"',
        'type = "folder"',
        f"path = {json.dumps(str(inbox))}",
        'format = "tiff"',
        "create = true",
        "[[rules]]",
        'name = "dir"',
        'kind = "directory"',
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def fax_port(node: Serve) -> int:
    m = re.search(r"fax t38://127\.0\.0\.1:(\d+)", node.extra)
    assert m, node.ready_line
    return int(m.group(1))


def open_store(data: Path, database: str) -> Store:
    key = base64.b64decode((data / "key").read_text().strip())
    return Store.open(database or str(data / "xmfax.db"), data, key)


def poll(fn, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_kill9_mid_receive_keeps_the_confirmed_pages(tmp_path, store_url):
    database = store_url if "://" in store_url else ""
    data, inbox = tmp_path / "data", tmp_path / "inbox"
    cfg = toml_config(tmp_path / "serve.toml", inbox, database)
    args = ("--data", str(data), "--http", "127.0.0.1:0", "--config", str(cfg))
    sent_pages = pages(4)
    node = Serve(tmp_path, *args).start()
    assert node.url, node.stderr
    try:
        store = open_store(data, database)

        async def call_and_freeze():
            relay = T38Relay(("127.0.0.1", fax_port(node)), block_after=2)
            port = await relay.start()
            sender = asyncio.create_task(send(sent_pages, f"t38://127.0.0.1:{port}?local=127.0.0.1:0"))
            await asyncio.wait_for(relay.blocked.wait(), 20)       # page 2 confirmed by the node
            # the node's event log shows both pages before we kill it (on_stored ran)
            deadline = time.monotonic() + 5
            while True:
                rows = store.list_faxes(direction="in")
                if rows and sum(e["kind"] == "page" for e in store.events(rows[0]["id"])) >= 2:
                    break
                assert time.monotonic() < deadline, "no page events"
                await asyncio.sleep(0.05)
            node.kill9()
            sender.cancel()
            relay.close()
            return rows[0]["id"]

        fax_id = asyncio.run(call_and_freeze())
    finally:
        node.stop()
    assert node.returncode == -9
    row = store.get_fax(fax_id)
    assert row["status"] == "receiving"                         # what the killed node left
    spool = list((data / "spool" / "inbound").rglob("*.part"))
    assert len(spool) == 1                                       # the pages, in the spool until the restart

    with Serve(tmp_path, *args) as again:
        got = poll(lambda: (lambda r: r if r["notify_status"] in ("delivered", "failed") else None)(
            store.get_fax(fax_id)), 20, "the recovered fax delivered")
        files = poll(lambda: list(inbox.glob("*.tif")), 5, "the folder delivery")
    assert again.returncode == 0
    assert (got["status"], got["reason"], got["pages"], got["notify_status"]) == ("received", "interrupted", 2,
                                                                                   "delivered")
    assert got["csid"] == "+1 555 123 0001" and got["dnis"] == "+15551230001"
    assert got["remote_id"] == "+1 555 0100"                    # the sender's TSI, heard before the kill
    kinds = [e["kind"] for e in store.events(fax_id)]
    assert kinds[:3] == ["receiving", "page", "page"], kinds
    assert kinds[3:7] == ["recovered", "received", "routing", "notify"], kinds
    assert "delivered" in kinds
    assert len(files) == 1
    same_pixels(sent_pages[:2], load(files[0]))                # the two confirmed pages, exactly
    same_pixels(sent_pages[:2], load(store.read_file(fax_id, "tiff")))
    assert len(store.list_faxes(direction="in")) == 1
    (cdr,) = store.calls(fax_id=fax_id)                          # the call record closed, not left open
    assert (cdr["status"], cdr["reason"], cdr["pages"]) == ("failure", "interrupted", 2)
    assert plaintext_tiffs(data) == []                          # the spool emptied, all encrypted
    store.close()
