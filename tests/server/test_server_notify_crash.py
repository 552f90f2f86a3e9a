"""Kill -9 between receipt and notification: the notification is still delivered.

A real `xmfax serve` process receives a real fax (xmfax.send over unpaced T.38 into its
listener) and routes it to a webhook whose far end is down: the attempt fails and waits.
The far end comes up but hangs, and the node is killed with SIGKILL while that call is in
flight. After the restart, with the far end answering, the notification arrives (signed)
and the fax is delivered.
"""
from __future__ import annotations

import asyncio
import base64
import json
import time
from pathlib import Path

import pytest

from inboundkit import pages, send
from mailkit import free_port
from notifykit import Hook, verify_signature
from serve_proc import Serve
from xmfax.server.store import Store

SECRET = "crash-test-secret"


def config(path: Path, hook_port: int, database: str) -> Path:
    db = f'database = "{database}"\n' if database else ""
    path.write_text(f"""{db}
[inbound]
listen = ["t38://127.0.0.1:0#+15551230001"]
realtime = false

[notify]
retry_delays = [0.3]
max_attempts = 100
poll_interval = 0.2
heartbeat = 0.5
stale_after = 60          # long: a restarted node takes its own rows back at once, not after this
webhook_secret_env = "XMFAX_CRASH_HOOK_SECRET"

[[numbers]]
number = "+15551230001"

[[destinations]]
name = "crm"
type = "webhook"
url = "http://127.0.0.1:{hook_port}/hook"

[[rules]]
name = "everything"
kind = "default"
destinations = ["crm"]
""")
    return path


def open_store(data: Path, database: str) -> Store:
    key = base64.b64decode((data / "key").read_text().strip())
    return Store.open(database or str(data / "xmfax.db"), data, key)


def wait(predicate, timeout: float, what: str):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def fax_port(node: Serve) -> int:
    word = next(w for w in node.extra.split() if w.startswith("t38://"))
    return int(word.rsplit(":", 1)[1].split("#")[0])


def test_notify_kill9_between_receipt_and_notification(tmp_path, store_url):
    database = store_url if "://" in store_url else ""
    data = tmp_path / "data"
    hook_port = free_port()
    cfg = config(tmp_path / "serve.toml", hook_port, database)
    args = ("--data", str(data), "--http", "127.0.0.1:0", "--config", str(cfg))
    env = {"XMFAX_CRASH_HOOK_SECRET": SECRET}

    # 1. the fax arrives while the webhook's far end is down: an attempt fails, then the far
    #    end comes up but hangs: the node is killed with the next attempt in flight
    node = Serve(tmp_path, *args, env=env).start()
    assert node.url, node.stderr
    try:
        result = asyncio.run(send(pages(2), f"t38://127.0.0.1:{fax_port(node)}?local=127.0.0.1:0"))
        assert result.ok, result.summary()
        store = open_store(data, database)
        try:
            (fax,) = wait(lambda: store.list_faxes(direction="in"), 20, "the fax's row")
            fax_id = fax["id"]
            row = wait(lambda: next((r for r in store.notifications(fax_id) if r["attempts"] >= 1), None),
                       20, "a failed attempt against the dead far end")
            assert row["status"] in ("pending", "sending") and "ConnectError" in row["last_error"]
            with Hook(hang=True, port=hook_port) as hung:
                hung.wait(1, timeout=20)
                fax = store.get_fax(fax_id)
                assert (fax["status"], fax["pages"], fax["notify_status"]) == ("received", 2, "pending")
                (row,) = store.notifications(fax_id)
                assert row["status"] == "sending" and row["claimed_by"] == node.node
                assert node.kill9() == -9
        finally:
            store.close()
    finally:
        node.kill9()

    # 2. the far end is back, the node restarts: the notification is delivered
    with Hook([200], port=hook_port) as hook:
        node = Serve(tmp_path, *args, env=env).start()
        assert node.url, node.stderr
        try:
            (request,) = hook.wait(1, timeout=20)
            store = open_store(data, database)
            try:
                # the status moves first (compare-and-set, so the event is written once), then
                # the "delivered" event: wait for both
                wait(lambda: store.get_fax(fax_id)["notify_status"] == "delivered"
                     and "delivered" in [e["kind"] for e in store.events(fax_id)], 20, "delivered, with its event")
                events = store.events(fax_id)
                (row,) = store.notifications(fax_id)
            finally:
                store.close()
        finally:
            assert node.stop() == 0
    assert verify_signature(SECRET.encode(), request)
    body = json.loads(request["body"])
    assert body["fax"]["id"] == fax_id and body["fax"]["pages"] == 2 and body["fax"]["status"] == "received"
    assert row["status"] == "delivered" and row["attempts"] >= 2
    assert json.loads(request["body"])["attempt"] == row["attempts"]
    kinds = [e["kind"] for e in events]
    assert kinds.index("received") < kinds.index("routing") < kinds.index("recovered") < kinds.index("delivered")
    recovered = next(e for e in events if e["kind"] == "recovered" and "webhook" in e["message"])
    assert recovered["message"] == (f"webhook 'crm': a node stopped while delivering (attempt {row['attempts']}); "
                                    "delivering again")
    assert any(e["kind"] == "notify" and "ConnectError" in e["message"] for e in events)
    assert len(hook.requests) == 1                 # delivered once the far end was up
