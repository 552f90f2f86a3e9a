"""Concurrency: two nodes (two Store objects, several threads each) racing for the same
queued faxes and notifications, and two nodes starting on one fresh database at once."""
from __future__ import annotations

import threading
from collections import Counter

from xmfax.server.migrations import available
from xmfax.server.store import Store

ROWS = 200
THREADS_PER_NODE = 3
BATCH = 3


def _race(stores, claim):
    """Every thread of every node claims in small batches until nothing is left; returns
    [(node, id)] of every claim made."""
    claims: list[tuple[str, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(stores) * THREADS_PER_NODE)
    errors = []

    def worker(node, store):
        try:
            barrier.wait()
            while True:
                got = claim(store, node)
                if not got:
                    return
                assert len(got) <= BATCH, f"a claim of {BATCH} returned {len(got)} rows"
                with lock:
                    claims.extend((node, r["id"]) for r in got)
        except Exception as exc:           # surfaced below: a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"node-{i}", s))
               for i, s in enumerate(stores) for _ in range(THREADS_PER_NODE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return claims


def test_two_nodes_claim_each_fax_exactly_once(store_url, data_dir, store_key):
    nodes = [Store.open(store_url, data_dir, store_key) for _ in range(2)]
    try:
        ids = {nodes[0].create_fax(direction="out", status="queued", next_attempt_at=0.0) for _ in range(ROWS)}
        claims = _race(nodes, lambda s, node: s.claim_outbound(node, now=10.0, limit=BATCH))
        counts = Counter(fid for _, fid in claims)
        assert set(counts) == ids                      # every row claimed ...
        assert max(counts.values()) == 1               # ... by one node only
        by_node = Counter(node for node, _ in claims)
        assert sum(by_node.values()) == ROWS
        if nodes[0].dialect == "postgresql":
            # real row locks: both nodes get work. (SQLite has one writer at a time and its
            # busy handler sleeps, so one node may take every batch: exactly-once still holds.)
            assert len(by_node) == 2
        rows = nodes[1].list_faxes(limit=1000)
        assert {r["status"] for r in rows} == {"sending"}
        assert all(r["claimed_by"] == dict((fid, n) for n, fid in claims)[r["id"]] for r in rows)
    finally:
        for s in nodes:
            s.close()


def test_two_nodes_claim_each_notification_exactly_once(store_url, data_dir, store_key):
    nodes = [Store.open(store_url, data_dir, store_key) for _ in range(2)]
    try:
        fax = nodes[0].create_fax(direction="in", status="received")
        ids = {nodes[0].add_notification(fax, {"type": "folder", "path": "/x"}) for _ in range(ROWS // 2)}
        claims = _race(nodes, lambda s, node: s.claim_notifications(node, now=1e12, limit=BATCH))
        counts = Counter(nid for _, nid in claims)
        assert set(counts) == ids and max(counts.values()) == 1
    finally:
        for s in nodes:
            s.close()


def _bulk(store, table: str, count: int, columns: str, values: str) -> None:
    """`count` rows in one statement (a recursive CTE both databases run)."""
    store._exec(f"INSERT INTO {table} ({columns}) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL "
                f"SELECT i + 1 FROM n WHERE i < {count}) SELECT {values} FROM n")


def test_a_claim_never_takes_more_than_its_limit(store):
    """PostgreSQL may rescan `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP
    LOCKED)` per row and claim everything (1000 rows for a limit of 5): the store must not."""
    _bulk(store, "faxes", 1000, "id, direction, status, created_at, metadata",
          "'f' || CAST(i AS TEXT), 'out', 'queued', 1000.0 + i, '{}'")
    fax = store.create_fax(direction="in", status="received")
    _bulk(store, "notifications", 1000, "fax_id, destination, status, created_at",
          f"'{fax}', '{{}}', 'pending', 1000.0 + i")
    assert [r["id"] for r in store.claim_outbound("n", now=1e12, limit=5)] == [f"f{i}" for i in range(1, 6)]
    assert len(store.claim_notifications("n", now=1e12, limit=5)) == 5
    assert len(store.list_faxes(status="sending", limit=2000)) == 5
    assert len(store.claim_outbound("n", now=1e12, limit=995)) == 995


def test_concurrent_first_start_migrates_once(store_url, data_dir, store_key):
    opened, errors = [], []
    barrier = threading.Barrier(4)

    def start():
        try:
            barrier.wait()
            opened.append(Store.open(store_url, data_dir, store_key))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    try:
        assert not errors, errors
        versions = opened[0]._rows("SELECT version FROM schema_version ORDER BY version")
        assert [r["version"] for r in versions] == [v for v, _, _ in available()]
        fax = opened[1].create_fax(direction="out", status="queued")     # the schema works
        assert opened[2].get_fax(fax)["status"] == "queued"
    finally:
        for s in opened:
            s.close()


def test_migrations_are_not_reapplied(store, store_url, data_dir, store_key):
    from xmfax.server.migrations import migrate
    assert migrate(store) == []
    fax = store.create_fax(direction="out", status="queued")
    again = Store.open(store_url, data_dir, store_key)               # a restart
    try:
        assert again.get_fax(fax) is not None
    finally:
        again.close()


def test_postgresql_connection_lost_is_reopened(pg_server, new_pg_database, data_dir, store_key):
    """The server ends our connections (a restart, an admin): the next read retries on a
    new connection, and the next write checks an idle connection before using it."""
    store = Store.open(new_pg_database(), data_dir, store_key)
    try:
        fax = store.create_fax(direction="out", status="queued")

        def kill_ours():
            return pg_server.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                 "WHERE application_name = 'xmfax-serve' AND pid <> pg_backend_pid()")

        assert kill_ours()
        assert store.get_fax(fax)["status"] == "queued"             # read: retried once
        kill_ours()
        store.PING_AFTER = 0.0                                      # idle "long enough"
        assert store.set_status(fax, "cancelled", expect=("queued",))
        assert store.get_fax(fax)["status"] == "cancelled"
    finally:
        store.close()
