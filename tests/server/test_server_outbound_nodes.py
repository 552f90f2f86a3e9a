"""The outbound queue across real `xmfax serve` processes: two nodes on one PostgreSQL
send each queued fax exactly once; a node killed with SIGKILL in the middle of a send
retries the fax (or marks it interrupted) after its restart. Faxes go in through the
REST API (POST /restservice/sendfax) and out over SIP/T.38 to an xmfax receiver here."""
from __future__ import annotations

import asyncio
import base64
import collections
import secrets
import time
from pathlib import Path

import httpx
import pytest

from outboundkit import FarEnd, FarProcess, page_pdf
from serve_proc import Serve, xmfax

FAST = ('poll_interval = 0.2\nheartbeat = 0.5\nstale_after = 3.0\nstop_grace = 1.0\nanswer_timeout = 5.0\n'
        'sip = { offer = "t38" }\n')


def write_config(path: Path, far_port: int, *, database: str = "", realtime: bool = False, max_calls: int = 2,
                 key: str = "") -> Path:
    head = f'database = "{database}"\n' if database else ""
    head += f'encryption_key = "{key}"\n' if key else ""
    path.write_text(f'{head}[outbound]\nrealtime = {str(realtime).lower()}\n{FAST}'
                    f'lines = [{{ url = "sip:{{number}}@127.0.0.1:{far_port}", max_calls = {max_calls} }}]\n')
    return path


def make_token(data: Path, config: Path) -> str:
    out = xmfax("token", "create", "--data", str(data), "--name", "tests", "--config", str(config))
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def control(number: str, retries: int = 2) -> bytes:
    return (f"<schedulefax><sender><csid>+1 555 0100</csid></sender>"
            f"<recipient><number>{number}</number></recipient><retries>{retries}</retries></schedulefax>").encode()


async def post_fax(client: httpx.AsyncClient, url: str, token: str, number: str, pdf: bytes, retries: int = 2) -> str:
    r = await client.post(f"{url}/restservice/sendfax", headers={"XM-Token-Authorization": token,
                                                                 "Accept": "application/json"},
                          files=[("metadata", ("fax.xml", control(number, retries), "application/xml")),
                                 ("attachments", ("letter.pdf", pdf, "application/pdf"))])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["success"] == "true", body
    (tid,) = body["successInfo"]["transactionIds"]["transactionId"]
    return tid


async def transaction(client: httpx.AsyncClient, url: str, token: str, tid: str) -> dict:
    r = await client.get(f"{url}/restservice/transactions/{tid}",
                         headers={"XM-Token-Authorization": token, "Accept": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["successInfo"]["transaction"]


async def wait_status(client, url, token, tids, statuses, timeout) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        got = [await transaction(client, url, token, t) for t in tids]
        if all(g["status"] in statuses for g in got):
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"after {timeout} s: {[(g['transactionId'], g['status']) for g in got]}")
        await asyncio.sleep(0.2)


def events(detail: dict) -> list[dict]:
    return detail["events"]["event"]


# --------------------------------------------------------------------------- two nodes
@pytest.mark.interop
def test_two_nodes_on_one_postgresql_send_each_fax_exactly_once(tmp_path, new_pg_database):
    database = new_pg_database()
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    # each node its own data folder, as on two machines: they share only the database (the
    # encrypted fax files live in it, file_blobs) and the key from the config
    key = base64.b64encode(secrets.token_bytes(32)).decode()
    folders = [tmp_path / "node-a", tmp_path / "node-b"]

    async def main():
        far = await FarEnd("sip://127.0.0.1:0").start()
        config = write_config(tmp_path / "serve.toml", far.port, database=database, key=key)
        nodes = [Serve(tmp_path, "--data", str(data), "--http", "127.0.0.1:0", "--config", str(config),
                       "--node", data.name) for data in folders]
        try:
            await asyncio.to_thread(nodes[0].__enter__)       # the first start runs the migrations
            _, token = await asyncio.gather(asyncio.to_thread(nodes[1].__enter__),
                                            asyncio.to_thread(make_token, folders[1], config))
            async with httpx.AsyncClient(timeout=30) as client:
                numbers = [f"+1555000{i:04d}" for i in range(20)]
                tids = await asyncio.gather(*[post_fax(client, nodes[i % 2].url, token, n, pdf)
                                              for i, n in enumerate(numbers)])
                done = await wait_status(client, nodes[0].url, token, tids, ("sent", "failed"), 60)
            return numbers, tids, done, far
        finally:
            for node in nodes:
                await asyncio.to_thread(node.stop)
            await far.stop()

    numbers, tids, done, far = asyncio.run(main())
    assert [d["status"] for d in done] == ["sent"] * 20, [(d["status"], d["reason"]) for d in done]
    assert [d["attempts"] for d in done] == [1] * 20
    # the far end: each number called exactly once, and every call a good fax
    offered = collections.Counter(c["dnis"] for c in far.calls)
    assert offered == collections.Counter(numbers)
    assert len(far.results) == 20 and all(r.ok and r.page_count == 1 for r in far.results)
    assert sorted(r.dnis for r in far.results) == sorted(numbers)
    # both nodes did some of the work, and each fax has exactly one attempt event by one node
    by_node = collections.Counter()
    for d in done:
        attempts = [e for e in events(d) if e["kind"] == "attempt"]
        assert len(attempts) == 1
        by_node[attempts[0]["data"]["node"]] += 1
    assert set(by_node) == {"node-a", "node-b"}, by_node
    # a fax submitted to one node was sent by the other: its pages came through the database
    submitted = {tid: numbers.index(far_number) % 2 for tid, far_number in zip(tids, numbers)}
    crossed = [d for d in done if [e for e in events(d) if e["kind"] == "attempt"][0]["data"]["node"]
               != ("node-a", "node-b")[submitted[d["transactionId"]]]]
    assert crossed, "no fax was sent by the node it was not submitted to"
    assert not [p for f in folders for p in (f / "files").rglob("*") if p.is_file()]


# --------------------------------------------------------------------------- kill -9
def test_node_killed_mid_send_retries_or_marks_interrupted_after_restart(tmp_path):
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    data = tmp_path / "data"
    far = FarProcess(tmp_path / "far").start()       # a process: the calls the kill cuts off die with it

    async def main():
        paced = write_config(tmp_path / "paced.toml", far.port, realtime=True)   # a call lasts ~10 s
        fast = write_config(tmp_path / "fast.toml", far.port)
        args = ("--data", str(data), "--http", "127.0.0.1:0", "--node", "solo")
        node = Serve(tmp_path, *args, "--config", str(paced))
        try:
            await asyncio.to_thread(node.__enter__)
            token = await asyncio.to_thread(make_token, data, paced)
            async with httpx.AsyncClient(timeout=30) as client:
                again = await post_fax(client, node.url, token, "+15550000001", pdf, retries=2)
                once = await post_fax(client, node.url, token, "+15550000002", pdf, retries=0)
                await wait_status(client, node.url, token, [again, once], ("sending",), 20)
                await asyncio.sleep(2.0)                   # both calls are in T.30 now (~10 s each)
                assert far.records() == []                 # and neither has ended
                await asyncio.to_thread(node.kill9)
                assert node.returncode == -9
                node = Serve(tmp_path, *args, "--config", str(fast))
                await asyncio.to_thread(node.__enter__)
                done = await wait_status(client, node.url, token, [again, once], ("sent", "failed", "interrupted"),
                                         30)
            deadline = time.monotonic() + 10
            while not far.records() and time.monotonic() < deadline:     # its record follows the call's end
                await asyncio.sleep(0.05)
            return done, far.records()
        finally:
            await asyncio.to_thread(node.stop)

    try:
        (again, once), records = asyncio.run(main())
    finally:
        far.kill()
    # retried after the restart, and sent on the second attempt
    assert (again["status"], again["attempts"]) == ("sent", 2)
    kinds = [e["kind"] for e in events(again)]
    assert kinds[:3] == ["submitted", "queued", "attempt"]
    assert kinds[3] == "interrupted" and kinds[4:7] == ["attempt", "call", "sent"]
    assert "this node stopped during attempt 1; retrying" in events(again)[3]["message"]
    # no attempt left: marked interrupted with its reason, never silently gone
    assert (once["status"], once["reason"], once["attempts"]) == ("interrupted", "interrupted", 1)
    assert "no attempt left" in once["reasonText"] and events(once)[-1]["kind"] in ("interrupted", "delivered")
    # the far end: one good fax, for the retried number
    good = [r for r in records if r["status"] == "success"]
    assert [r["dnis"] for r in good] == ["+15550000001"] and good[0]["remote_id"] == "+1 555 0100"
