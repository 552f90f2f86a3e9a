"""Retention: the [retention] section, expiry, zero retention waiting for delivery, and a
purge that leaves no personal data in any table, in the database files or on disk."""
from __future__ import annotations

import asyncio
import json

import pytest
from storekit import file_ids, sealed_files

from xmfax.server.config import ConfigError, ServerConfig
from xmfax.server.retention import Retention, RetentionConfig, check_days
from xmfax.server.store import DAY, ZERO_RETENTION_HOLD, Store, StoreError

NUMBER = "+15557654321"
TABLES = ("faxes", "events", "calls", "files", "notifications")


def test_config_defaults_and_limits():
    assert RetentionConfig.from_dict({}) == RetentionConfig(days=90, purge_interval=3600.0)
    assert RetentionConfig.from_dict({"days": 0}).days == 0
    assert RetentionConfig.from_dict({"days": 7, "purge_interval": 60}).purge_interval == 60.0
    for days in (1, 6, -1):
        with pytest.raises(ConfigError, match=r"\[retention\] days: .*at least 7"):
            RetentionConfig.from_dict({"days": days})
    for bad in ({"days": "90"}, {"days": True}, {"days": 7.5}, {"purge_interval": 0},
                {"purge_interval": "1h"}, {"keep": 1}):
        with pytest.raises(ConfigError, match=r"\[retention\]"):
            RetentionConfig.from_dict(bad)
    assert check_days(30, "x") == 30
    with pytest.raises(ConfigError, match="numbers"):
        check_days(3, "[[numbers]] retention_days")


class _Host:
    """What Retention uses of the service (config, store, db, wait), around the test's real
    store, so the component is tested without starting every other component. A stand-in:
    service.py's own tests start the whole service."""

    def __init__(self, store, data_dir, section):
        self.config = ServerConfig(data_dir=data_dir, sections={"retention": section})
        self.store = store
        self.woken = 0

    async def db(self, fn, *args, **kw):
        return await asyncio.to_thread(fn, *args, **kw)

    async def wait(self, what: str, timeout: float) -> bool:
        assert what == "retention"
        self.woken += 1
        await asyncio.sleep(timeout)
        return False


def _service(store, data_dir, **section) -> _Host:
    return _Host(store, data_dir, section)


def _personal_fax(store, **fields) -> str:
    """A received fax carrying the number everywhere personal data can be."""
    fax = store.create_fax(direction="in", status="receiving", number=NUMBER, ani=NUMBER, dnis=NUMBER,
                           csid=NUMBER, remote_id=NUMBER, sender=f"{NUMBER}@fax.example",
                           line=f"sip:{NUMBER}@trunk", metadata={"recipient": NUMBER}, pages=2, **fields)
    store.add_event(fax, "receiving", f"call from {NUMBER}", {"ani": NUMBER})
    call = store.add_call(fax, attempt=1, direction="in", line=f"sip:{NUMBER}@trunk", remote_id=NUMBER,
                          ani=NUMBER, dnis=NUMBER, started_at=100.0, pages=2, node="n1")
    store.update_call(call, ended_at=130.0, status="received")
    store.put_file(fax, "tiff", f"II*\x00 page of {NUMBER}".encode())
    store.put_file(fax, "source", f"cover for {NUMBER}".encode(), name=f"{NUMBER}.txt")
    n = store.add_notification(fax, {"name": "ann", "type": "email", "to": [f"{NUMBER}@mail.example"]})
    store.update_notification(n, last_error=f"550 {NUMBER}: no such user")
    return fax


def _dump(store) -> str:
    return json.dumps([store._rows(f"SELECT * FROM {t}") for t in TABLES], default=str)


def test_purge_removes_personal_data_everywhere(store, data_dir):
    fax = _personal_fax(store)
    keep = _personal_fax(store)
    store.complete_fax(fax, "received", at=1000.0)
    assert NUMBER in _dump(store)
    sealed_before = file_ids(store, fax)
    assert len(sealed_before) == 2
    store.purge_fax(fax, "expired")
    row = store.get_fax(fax)
    assert row["purged_at"] is not None and row["metadata"] == {}
    assert (row["status"], row["direction"], row["pages"], row["completed_at"]) == ("received", "in", 2, 1000.0)
    for column in ("number", "ani", "dnis", "csid", "remote_id", "sender", "line"):
        assert row[column] is None
    assert [(e["kind"], e["data"]) for e in store.events(fax)] == [("purge", {"why": "expired"})]
    assert store.files(fax) == []
    with pytest.raises(FileNotFoundError):
        store.read_file(fax, "tiff")
    assert not (data_dir / "files" / fax[:2] / fax).exists()
    assert not set(sealed_before) & set(sealed_files(store, data_dir))      # on disk or in the database
    (call,) = store.calls(fax_id=fax)
    assert (call["duration"], call["pages"], call["ani"], call["line"]) == (None, 2, None, None)
    (notif,) = store.notifications(fax)
    assert notif["destination"] == {"name": "ann", "type": "email"} and notif["last_error"] is None
    # the other fax is untouched, and nothing of the purged one is left in any table
    assert store.read_file(keep, "tiff").endswith(NUMBER.encode())
    store.purge_fax(keep, "test")
    assert NUMBER not in _dump(store)
    store.purge_fax(fax, "again")                                  # idempotent
    assert [e["kind"] for e in store.events(fax)] == ["purge"]
    # what arrives after the purge cannot bring personal data back
    store.add_event(fax, "notify", f"mailed {NUMBER}@mail.example", {"to": NUMBER})
    assert store.events(fax)[-1]["message"] == "notify (details not kept: fax purged)"
    assert store.events(fax)[-1]["data"] == {}
    with pytest.raises(StoreError, match="purged"):
        store.put_file(fax, "pdf", NUMBER.encode())
    store.update_fax(fax, remote_id=NUMBER, metadata={"n": NUMBER}, pages=3)
    assert store.set_status(fax, "received", expect=("received",), number=NUMBER, reason="ok")
    row = store.get_fax(fax)
    assert (row["remote_id"], row["number"], row["metadata"], row["pages"], row["reason"]) == (None, None, {}, 3, "ok")
    assert NUMBER not in _dump(store)


def test_purged_number_not_in_sqlite_files(tmp_path, store_key):
    """SQLite: the number is gone from the database file and its WAL, not only from SELECTs."""
    store = Store.open(str(tmp_path / "x.db"), tmp_path / "data", store_key)
    try:
        fax = _personal_fax(store)
        store.complete_fax(fax, "received")
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("x.db*"))
        assert NUMBER.encode() in raw
        store.purge_fax(fax, "expired")
        raw = b"".join(p.read_bytes() for p in tmp_path.glob("x.db*"))
        assert NUMBER.encode() not in raw
        assert not [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    finally:
        store.close()


def test_expired_by_retention(store):
    days90 = store.create_fax(direction="out", status="sending")
    days7 = store.create_fax(direction="out", status="sending", retention_days=7)
    open_fax = store.create_fax(direction="out", status="queued")          # not complete: never expires
    store.complete_fax(days90, "sent", at=0.0)
    store.complete_fax(days7, "failed", at=0.0)
    assert store.expired(6 * DAY) == []
    assert store.expired(7 * DAY) == [days7]
    assert store.expired(90 * DAY) == [days7, days90]
    store.purge_fax(days7, "expired")
    assert store.expired(90 * DAY) == [days90]
    assert open_fax not in store.expired(1e12)


def test_zero_retention_waits_for_delivery(store):
    fax = store.create_fax(direction="in", status="receiving", retention_days=0)
    store.complete_fax(fax, "received", at=1000.0)
    assert store.get_fax(fax)["expires_at"] == 1000.0
    assert store.expired(1001.0) == []                       # not routed yet ("none"): held
    store.set_notify_status(fax, "pending")
    assert store.expired(1000.0 + 10 * ZERO_RETENTION_HOLD) == []   # pending: never before delivery
    store.set_notify_status(fax, "delivered", expect=("pending",))
    assert store.expired(1001.0) == [fax]


def test_zero_retention_default_also_waits(store_url, data_dir, store_key):
    store = Store.open(store_url, data_dir, store_key, default_retention_days=0)
    try:
        fax = store.create_fax(direction="in", status="receiving")       # no retention of its own
        store.complete_fax(fax, "received", at=1000.0)
        store.set_notify_status(fax, "pending")
        assert store.expired(2000.0) == []
        failed = store.create_fax(direction="in", status="receiving")
        store.complete_fax(failed, "received", at=1000.0)
        store.set_notify_status(failed, "failed")
        assert store.expired(1000.0 + ZERO_RETENTION_HOLD - 1) == []
        assert store.expired(1000.0 + ZERO_RETENTION_HOLD) == [failed]  # failed: held, then purged
    finally:
        store.close()


def test_run_once_purges_expired(store, data_dir):
    old = _personal_fax(store)
    new = _personal_fax(store)
    store.complete_fax(old, "received", at=0.0)
    store.complete_fax(new, "received")
    retention = Retention(_service(store, data_dir))
    assert asyncio.run(retention.run_once(now=100 * DAY)) == 1
    assert store.get_fax(old)["purged_at"] is not None and store.get_fax(new)["purged_at"] is None
    assert asyncio.run(retention.run_once(now=100 * DAY)) == 0
    assert store.read_file(new, "tiff")


def test_component_purges_on_schedule(store, data_dir):
    fax = _personal_fax(store)
    store.complete_fax(fax, "received", at=0.0)

    async def main():
        svc = _service(store, data_dir, purge_interval=0.05)
        retention = Retention(svc)
        await retention.start()
        try:
            for _ in range(200):
                if retention.purged:
                    break
                await asyncio.sleep(0.02)
        finally:
            await retention.stop()
        return retention.purged

    assert asyncio.run(main()) == 1
    assert store.get_fax(fax)["number"] is None


def test_component_keeps_running_after_a_failed_run(store, data_dir):
    """A database error in one run is logged; the next run (after purge_interval) purges."""
    fax = _personal_fax(store)
    store.complete_fax(fax, "received", at=0.0)
    host = _service(store, data_dir, purge_interval=0.05)
    real_expired, calls = store.expired, []

    def flaky(now):
        calls.append(now)
        if len(calls) == 1:
            raise OSError("database unreachable")
        return real_expired(now)

    async def main():
        retention = Retention(host)
        host.store = type("S", (), {"expired": staticmethod(flaky), "purge_fax": store.purge_fax,
                                    "vacuum": store.vacuum})()
        await retention.start()
        try:
            for _ in range(200):
                if retention.purged:
                    break
                await asyncio.sleep(0.02)
        finally:
            await retention.stop()
        return retention.purged

    assert asyncio.run(main()) == 1 and len(calls) >= 2
    assert store.get_fax(fax)["purged_at"] is not None


def test_bad_section_refused_at_construction(store, data_dir):
    with pytest.raises(ConfigError, match="days"):
        Retention(_service(store, data_dir, days=3))


def test_orphaned_files_swept_once_old(store, data_dir):
    import os
    fax = store.create_fax(direction="in", status="received")
    store.put_file(fax, "tiff", b"kept")
    folder = data_dir / "files" / fax[:2] / fax
    folder.mkdir(parents=True, exist_ok=True)     # (PostgreSQL keeps the fax's own file in the database)
    orphan, temp, young = folder / "0123456789abcdef.xmfe", folder / ".tmp-x1", folder / "fedcba9876543210.xmfe"
    for p in (orphan, temp, young):
        p.write_bytes(b"left by a crash")
    for p in (orphan, temp):
        os.utime(p, (1000.0, 1000.0))
    empty = data_dir / "files" / "zz" / "zzzz"
    empty.mkdir(parents=True)
    assert store.sweep_orphans(now=10_000.0, older_than=3600.0) == 2
    assert not orphan.exists() and not temp.exists() and young.exists() and not empty.parent.exists()
    assert store.read_file(fax, "tiff") == b"kept"
    # the retention run sweeps too
    os.utime(young, (1000.0, 1000.0))
    assert asyncio.run(Retention(_service(store, data_dir)).run_once(now=20_000.0)) == 0
    assert not young.exists() and store.read_file(fax, "tiff") == b"kept"
