"""Inbound scale-out: two `xmfax serve` nodes on one PostgreSQL behind Kamailio's dispatcher
(examples/kamailio/dispatcher.cfg, as tests/interop/test_sip_dispatcher.py runs it). Faxes
sent to the dispatcher reach both nodes; each call is answered with the number's CSID and
stored exactly once in the shared database, routed and delivered once. The nodes share
nothing but PostgreSQL (and the encryption key): each has its own data folder, as on two
machines (the sealed fax files live in the database on PostgreSQL)."""
from __future__ import annotations

import asyncio
import base64
import collections
import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from inboundkit import page, same_pixels
from serve_proc import Serve
from xmfax.document import load
from xmfax.server.store import Store

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "sip"))
import peers  # noqa: E402

pytestmark = pytest.mark.interop
CALLS = 6


class Dispatcher(peers.Kamailio):
    """Kamailio on examples/kamailio/dispatcher.cfg with ``nodes`` (127.0.0.1 ports) in its list."""

    def __init__(self, tmp: Path, nodes: list[int]) -> None:
        port = peers.free_port()
        dslist = tmp / "dispatcher.list"
        dslist.write_text("".join(f"1 sip:127.0.0.1:{p} 8 0\n" for p in nodes))
        super().__init__(tmp / "kamailio", ROOT / "examples" / "kamailio" / "dispatcher.cfg",
                         transports=("udp",), defines={"SIP_PORT": port, "LISTEN": f"udp:127.0.0.1:{port}",
                                                       "DS_LIST": f'"{dslist}"'})


def write_config(path: Path, inbox: Path, database: str, key: str) -> Path:
    path.write_text("\n".join([
        f"database = {json.dumps(database)}",
        f"encryption_key = {json.dumps(key)}",
        "[inbound]", "realtime = false",
        "[notify]", "retry_delays = [0.2, 0.5]", "poll_interval = 0.2",
        "[[numbers]]", 'number = "+15550100"', 'csid = "+1 555 0100"',
        "[[destinations]]", 'name = "inbox"', 'type = "folder"', f"path = {json.dumps(str(inbox))}",
        'format = "tiff"', "create = true", 'name_template = "{{ id }}"',
        "[[rules]]", 'name = "default"', 'kind = "default"', 'destinations = ["inbox"]',
    ]) + "\n")
    return path


def tsi(n: int) -> str:
    return f"+1 555 77{n:02d}"


@pytest.mark.skipif(shutil.which("kamailio") is None, reason="kamailio not installed (Debian kamailio)")
def test_two_serve_nodes_behind_the_dispatcher_store_each_call_once(tmp_path, new_pg_database):
    import secrets

    database = new_pg_database()
    inbox = tmp_path / "inbox"
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    config = write_config(tmp_path / "serve.toml", inbox, database, key)
    pa, pb = peers.free_ports(2)
    nodes = [Serve(tmp_path, "--data", str(tmp_path / name), "--http", "127.0.0.1:0", "--config", str(config),
                   "--node", name, "--listen", f"sip://127.0.0.1:{port}")
             for name, port in (("node-a", pa), ("node-b", pb))]
    kam = None
    try:
        nodes[0].__enter__()                  # the first start makes the key and runs the migrations
        nodes[1].__enter__()
        assert f"fax sip://127.0.0.1:{pb}" in nodes[1].ready_line
        kam = Dispatcher(tmp_path, [pa, pb])
        kam.start()
        peers.wait_listening(kam.port, "udp")

        async def calls():
            import xmfax

            async def one(n: int):
                await asyncio.sleep(n * 0.05)
                return await xmfax.send([page(n)], via=f"sip:+15550100@127.0.0.1:{kam.port}", local_id=tsi(n),
                                        realtime=False, max_duration=60, sip={"offer": "t38"})
            return await asyncio.gather(*(one(n) for n in range(CALLS)))

        results = asyncio.run(calls())
        store = Store.open(database, tmp_path / "reader", base64.b64decode(key))
        deadline = time.monotonic() + 30
        while True:
            rows = store.list_faxes(direction="in", limit=100)
            if len(rows) >= CALLS and all(r["notify_status"] in ("delivered", "failed") for r in rows):
                break
            assert time.monotonic() < deadline, [(r["status"], r["notify_status"]) for r in rows]
            time.sleep(0.1)
        time.sleep(0.3)                                          # nothing more arrives
        rows = store.list_faxes(direction="in", limit=100)
        events = {r["id"]: store.events(r["id"]) for r in rows}
        images = {r["id"]: load(store.read_file(r["id"], "tiff")) for r in rows}
        store.close()
    finally:
        if kam is not None:
            kam.stop(quiet=True)
        for node in nodes:
            node.stop()

    assert [(r.reason, r.reason_text) for r in results if not r.ok] == []
    assert {r.remote_id for r in results} == {"+1 555 0100"}      # the number's CSID through the proxy
    # each call stored exactly once, in the one database
    assert len(rows) == CALLS
    by_tsi = collections.Counter(r["remote_id"] for r in rows)
    assert by_tsi == collections.Counter(tsi(n) for n in range(CALLS))
    assert all(r["status"] == "received" and r["dnis"] == "+15550100" and r["pages"] == 1 for r in rows)
    assert all(r["notify_status"] == "delivered" for r in rows)
    # both nodes answered some, and each fax's call was handled by one node only
    nodes_used = collections.Counter(r["metadata"]["node"] for r in rows)
    assert set(nodes_used) == {"node-a", "node-b"}, nodes_used
    for r in rows:
        assert [e["kind"] for e in events[r["id"]]].count("receiving") == 1
        n = int(r["remote_id"].replace(" ", "")[-2:])
        same_pixels([page(n)], images[r["id"]])
    # each fax delivered once to the folder (one file per fax id)
    assert sorted(p.stem for p in inbox.iterdir()) == sorted(r["id"] for r in rows)
