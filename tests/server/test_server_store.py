"""The store's methods, each on SQLite and on a real PostgreSQL server (the `store` fixture
runs every test on both)."""
from __future__ import annotations

import csv
import io
import time

import pytest

from storekit import file_ids, sealed_files, write_sealed
from xmfax.server import crypto
from xmfax.server.crypto import CryptoError
from xmfax.server.store import Store, StoreError


def test_dialect_and_reopen_keeps_data(store, store_url, data_dir, store_key):
    assert store.dialect == ("postgresql" if store_url.startswith("postgresql://") else "sqlite")
    fax = store.create_fax(direction="out", status="queued", number="+15551234567")
    store.close()
    again = Store.open(store_url, data_dir, store_key)
    try:
        assert again.get_fax(fax)["number"] == "+15551234567"
    finally:
        again.close()


def test_create_get_update_fax(store):
    fax = store.create_fax(direction="out", status="queued", number="+15551234567", broadcast_id="b" * 16,
                           metadata={"cover": {"subject": "Hello"}, "sender_name": "Ann"}, max_attempts=5)
    assert len(fax) == 16 and int(fax, 16) >= 0
    row = store.get_fax(fax)
    assert row["direction"] == "out" and row["status"] == "queued"
    assert row["metadata"] == {"cover": {"subject": "Hello"}, "sender_name": "Ann"}
    assert row["attempts"] == 0 and row["max_attempts"] == 5 and row["notify_status"] == "none"
    assert abs(row["created_at"] - time.time()) < 60
    store.update_fax(fax, pages=3, remote_id="REMOTE", metadata={"x": 1})
    row = store.get_fax(fax)
    assert (row["pages"], row["remote_id"], row["metadata"]) == (3, "REMOTE", {"x": 1})
    assert store.get_fax("0" * 16) is None


def test_times_keep_sub_second_precision(store):
    # PostgreSQL's REAL is 32-bit: epoch seconds there would lose minutes. DOUBLE PRECISION keeps them.
    at = 1796314656.123456
    fax = store.create_fax(direction="in", status="receiving", next_attempt_at=at)
    assert store.get_fax(fax)["next_attempt_at"] == pytest.approx(at, abs=1e-5)


def test_unknown_columns_and_bad_direction_are_refused(store):
    with pytest.raises(StoreError, match="unknown column"):
        store.create_fax(direction="out", status="queued", nonsense=1)
    fax = store.create_fax(direction="out", status="queued")
    with pytest.raises(StoreError, match="unknown column"):
        store.update_fax(fax, **{"status = 'sent' --": 1})
    with pytest.raises(StoreError, match="direction"):
        store.create_fax(direction="sideways", status="queued")


def test_set_status_is_compare_and_set(store):
    fax = store.create_fax(direction="out", status="queued")
    assert store.set_status(fax, "cancelled", expect=("queued", "sending"), reason="cancelled")
    assert not store.set_status(fax, "sent", expect=("sending",))
    row = store.get_fax(fax)
    assert row["status"] == "cancelled" and row["reason"] == "cancelled"
    assert store.set_status(fax, "failed")                  # no expect: unconditional
    assert not store.set_status("f" * 16, "failed")         # no such fax
    assert not store.set_status(fax, "sent", expect=())


def test_complete_fax_sets_expiry_from_retention(store):
    a = store.create_fax(direction="out", status="sending")
    b = store.create_fax(direction="in", status="receiving", retention_days=7)
    assert store.complete_fax(a, "sent", at=1000.0, pages=2)
    assert store.complete_fax(b, "received", at=1000.0)
    ra, rb = store.get_fax(a), store.get_fax(b)
    assert (ra["status"], ra["completed_at"], ra["pages"]) == ("sent", 1000.0, 2)
    assert ra["expires_at"] == 1000.0 + 90 * 86400 and ra["retention_days"] == 90
    assert rb["expires_at"] == 1000.0 + 7 * 86400
    assert not store.complete_fax(a, "failed", expect=("sending",))
    assert not store.complete_fax("e" * 16, "sent")


def test_list_faxes_filters_and_order(store):
    ids = []
    for i in range(5):
        ids.append(store.create_fax(direction="out" if i % 2 == 0 else "in", status="queued" if i < 3 else "sent",
                                    broadcast_id="bb" if i < 2 else None, created_at=1000.0 + i))
    assert [f["id"] for f in store.list_faxes()] == ids[::-1]
    assert [f["id"] for f in store.list_faxes(direction="out")] == [ids[4], ids[2], ids[0]]
    assert [f["id"] for f in store.list_faxes(status="sent")] == [ids[4], ids[3]]
    assert {f["id"] for f in store.list_faxes(status=("queued", "sent"))} == set(ids)
    assert [f["id"] for f in store.list_faxes(broadcast_id="bb")] == [ids[1], ids[0]]
    assert [f["id"] for f in store.list_faxes(since=1003.0)] == [ids[4], ids[3]]
    assert [f["id"] for f in store.list_faxes(limit=2, offset=1)] == [ids[3], ids[2]]


def test_claim_outbound_due_rows_once(store):
    due = store.create_fax(direction="out", status="queued", next_attempt_at=100.0)
    later = store.create_fax(direction="out", status="queued", next_attempt_at=500.0)
    store.create_fax(direction="out", status="sent", next_attempt_at=1.0)
    claimed = store.claim_outbound("node-a", now=200.0, limit=10)
    assert [r["id"] for r in claimed] == [due]
    assert claimed[0]["status"] == "sending" and claimed[0]["claimed_by"] == "node-a"
    assert claimed[0]["heartbeat_at"] == 200.0
    assert store.claim_outbound("node-b", now=200.0, limit=10) == []
    assert [r["id"] for r in store.claim_outbound("node-b", now=600.0, limit=10)] == [later]


def test_claim_outbound_limit_order_and_lines(store):
    ids = [store.create_fax(direction="out", status="queued", next_attempt_at=10.0 - i) for i in range(4)]
    on_b = store.create_fax(direction="out", status="queued", next_attempt_at=0.0, line="line-b")
    first = store.claim_outbound("n", now=100.0, limit=2, lines=["line-a"])
    assert [r["id"] for r in first] == [ids[3], ids[2]]           # earliest due first; line-b skipped
    assert store.claim_outbound("n", now=100.0, limit=10, lines=[]) == []
    rest = store.claim_outbound("n", now=100.0, limit=10, lines=["line-b"])
    assert [r["id"] for r in rest] == [on_b, ids[1], ids[0]]


def test_heartbeat_and_stale(store):
    fax = store.create_fax(direction="out", status="queued")
    other = store.create_fax(direction="in", status="receiving", heartbeat_at=50.0)
    store.claim_outbound("node-a", now=100.0, limit=1)
    store.heartbeat([fax], "node-b", 300.0)                  # not node-b's claim: ignored
    assert store.get_fax(fax)["heartbeat_at"] == 100.0
    store.heartbeat([fax], "node-a", 300.0)
    assert store.get_fax(fax)["heartbeat_at"] == 300.0
    assert [r["id"] for r in store.stale(330.0, 60.0, ("sending", "receiving"))] == [other]
    assert {r["id"] for r in store.stale(400.0, 60.0, ("sending", "receiving"))} == {fax, other}
    assert store.stale(400.0, 60.0, ()) == []


def test_event_log(store):
    fax = store.create_fax(direction="out", status="queued")
    store.add_event(fax, "submitted", "accepted 1 recipient", {"pages": 1})
    store.add_event(fax, "queued", "due now", at=5.0)
    events = store.events(fax)
    assert [e["kind"] for e in events] == ["submitted", "queued"]
    assert events[0]["data"] == {"pages": 1} and events[1]["data"] == {} and events[1]["at"] == 5.0
    assert set(events[0]) == {"id", "fax_id", "at", "kind", "message", "data"}
    with pytest.raises(StoreError, match="no fax"):           # no event without its fax
        store.add_event("0" * 16, "queued", "orphan")


def test_calls_and_cdr_csv(store):
    fax = store.create_fax(direction="out", status="sending", number="+15551234567")
    first = store.add_call(fax, attempt=1, direction="out", line="t38://127.0.0.1:6000", started_at=1000.0,
                           node="n1")
    second = store.add_call(fax, attempt=2, direction="out", started_at=2000.0, status="busy")
    store.update_call(first, ended_at=1030.5, duration=30.5, status="failed", reason="no_answer", pages=0)
    calls = store.calls(fax_id=fax)
    assert [c["id"] for c in calls] == [first, second]
    assert calls[0]["duration"] == 30.5 and calls[0]["reason"] == "no_answer"
    assert [c["id"] for c in store.calls(since=1500.0)] == [second]
    assert [c["id"] for c in store.calls(until=1500.0)] == [first]
    rows = list(csv.DictReader(io.StringIO(store.cdr_csv(since=0.0))))
    assert [r["attempt"] for r in rows] == ["1", "2"]
    assert rows[0]["started_utc"] == "1970-01-01T00:16:40Z" and rows[0]["line"] == "t38://127.0.0.1:6000"
    assert rows[1]["ended_at"] == ""


def test_files_encrypted_round_trip(store, data_dir):
    fax = store.create_fax(direction="in", status="received")
    page = b"II*\x00" + bytes(range(256)) * 600                 # > two 64 KiB chunks
    info = store.put_file(fax, "tiff", page)
    assert info["size"] == len(page) and len(info["sha256"]) == 64
    source = data_dir / "doc.pdf"
    source.write_bytes(b"%PDF-1.4 fake but bytes")
    store.put_file(fax, "source", source, name="doc.pdf")
    store.put_file(fax, "source", b"second", name="b.txt")
    assert store.read_file(fax, "tiff") == page
    assert store.read_file(fax, "source", "doc.pdf") == b"%PDF-1.4 fake but bytes"
    assert [(f["kind"], f["name"]) for f in store.files(fax)] == [("tiff", ""), ("source", "doc.pdf"),
                                                                  ("source", "b.txt")]
    sealed = sealed_files(store, data_dir)
    assert len(sealed) == 3
    for blob in sealed.values():                                # nothing stored in the clear
        assert blob.startswith(b"XMFE") and b"II*\x00" not in blob and b"%PDF" not in blob
    if store.dialect == "postgresql":                           # in the database: nothing on disk
        assert not [p for p in (data_dir / "files").rglob("*") if p.is_file()]
    with pytest.raises(FileNotFoundError):
        store.read_file(fax, "pdf")
    with pytest.raises(StoreError, match="kind"):
        store.put_file(fax, "secret", b"x")


def test_put_file_replaces_same_kind_and_name(store, data_dir):
    fax = store.create_fax(direction="in", status="received")
    store.put_file(fax, "tiff", b"first")
    store.put_file(fax, "tiff", b"second")
    assert store.read_file(fax, "tiff") == b"second"
    assert len(store.files(fax)) == 1
    assert len(sealed_files(store, data_dir)) == 1


def test_file_swapped_between_faxes_is_detected(store, data_dir):
    a = store.create_fax(direction="in", status="received")
    b = store.create_fax(direction="in", status="received")
    store.put_file(a, "tiff", b"fax A")
    store.put_file(b, "tiff", b"fax B")
    (fa,), (fb,) = file_ids(store, a), file_ids(store, b)
    blobs = sealed_files(store, data_dir)
    write_sealed(store, data_dir, fa, blobs[fb])
    with pytest.raises(CryptoError):
        store.read_file(a, "tiff")
    write_sealed(store, data_dir, fa, blobs[fa][:-1])           # truncated
    with pytest.raises(CryptoError):
        store.read_file(a, "tiff")


def test_wrong_key_cannot_read(store, store_url, data_dir):
    fax = store.create_fax(direction="in", status="received")
    store.put_file(fax, "pdf", b"%PDF")
    other = Store.open(store_url, data_dir, b"k" * 32)
    try:
        with pytest.raises(CryptoError):
            other.read_file(fax, "pdf")
    finally:
        other.close()


def test_delete_files(store, data_dir):
    fax = store.create_fax(direction="in", status="received")
    store.put_file(fax, "tiff", b"x")
    store.put_file(fax, "record", b"{}")
    store.delete_files(fax)
    assert store.files(fax) == []
    assert not any(p.is_file() for p in (data_dir / "files").rglob("*")) and not sealed_files(store, data_dir)
    with pytest.raises(FileNotFoundError):
        store.read_file(fax, "tiff")


def test_notifications_claim_update_release(store):
    fax = store.create_fax(direction="in", status="received")
    a = store.add_notification(fax, {"name": "mail", "type": "email", "to": ["ann@example.com"]})
    b = store.add_notification(fax, {"type": "folder", "path": "/tmp/x"})
    assert [n["id"] for n in store.notifications(fax)] == [a, b]
    assert store.notifications(fax)[0]["destination"]["to"] == ["ann@example.com"]
    assert store.get_notification(a)["status"] == "pending"
    assert store.get_notification(10**9) is None
    now = time.time() + 1
    claimed = store.claim_notifications("n1", now, 1)
    assert [n["id"] for n in claimed] == [a] and claimed[0]["status"] == "sending"
    assert claimed[0]["claimed_by"] == "n1"
    assert [n["id"] for n in store.claim_notifications("n2", now, 5)] == [b]
    assert store.claim_notifications("n2", now, 5) == []
    store.update_notification(a, status="delivered", delivered_at=now, attempts=1)
    store.heartbeat_notifications([b], "n2", now + 100)
    assert store.get_notification(a)["status"] == "delivered"
    assert store.release_notifications(now + 110, 60.0) == []             # b's heartbeat is fresh
    assert store.release_notifications(now + 200, 60.0) == [b]
    row = store.get_notification(b)
    assert row["status"] == "pending" and row["claimed_by"] is None
    assert [n["id"] for n in store.claim_notifications("n3", now + 200, 5)] == [b]
    assert store.release_notifications(now + 200, 3600.0, node="n3") == [b]   # its own restart


def test_set_notify_status_compare_and_set(store):
    fax = store.create_fax(direction="in", status="received")
    assert store.set_notify_status(fax, "pending", expect=("none",))
    assert store.set_notify_status(fax, "delivered", expect=("pending",))
    assert not store.set_notify_status(fax, "delivered", expect=("pending",))
    assert store.get_fax(fax)["notify_status"] == "delivered"


def test_tokens_hashed_verified_revoked(store, store_url):
    token = store.create_token("app", "send_manage")
    assert token.startswith("xmt_") and len(token) > 40
    info = store.verify_token(token)
    assert info == {"id": info["id"], "name": "app", "permission": "send_manage", "owner": "app"}
    assert store.get_token(info["id"])["revoked_at"] is None
    assert store.verify_token(token + "x") is None and store.verify_token("") is None
    with pytest.raises(StoreError, match="live token"):
        store.create_token("app", "read")
    with pytest.raises(StoreError, match="permission"):
        store.create_token("other", "root")
    # stored hashed: the token itself is nowhere in the database
    assert token not in repr(store._rows("SELECT * FROM tokens"))
    assert store.revoke_token("app") and not store.revoke_token("app")
    assert store.verify_token(token) is None
    assert store.get_token(info["id"])["revoked_at"] is not None
    again = store.create_token("app", "read")
    assert store.verify_token(again)["permission"] == "read"
    assert [t["name"] for t in store.list_tokens()] == ["app", "app"]


def test_directory_numbers_users_destinations(store):
    store.upsert_number("+15550001", users=["ann", "bob"], label="sales")
    assert store.get_number("+15550001") | {"updated_at": 0} == {
        "number": "+15550001", "csid": "", "users": ["ann", "bob"], "retention_days": None,
        "label": "sales", "updated_at": 0}
    store.upsert_number("+15550001", csid="ACME SALES", retention_days=0)
    row = store.get_number("+15550001")
    assert (row["csid"], row["users"], row["retention_days"]) == ("ACME SALES", [], 0)
    store.upsert_number("+15550000")
    assert [n["number"] for n in store.list_numbers()] == ["+15550000", "+15550001"]
    assert store.delete_number("+15550000") and not store.delete_number("+15550000")
    assert store.get_number("+15550000") is None

    store.upsert_user("ann", email="ann@example.com", destinations=["ann-mail"])
    store.upsert_user("bob")
    assert store.get_user("ann")["destinations"] == ["ann-mail"]
    assert [u["name"] for u in store.list_users()] == ["ann", "bob"]
    assert store.delete_user("bob") and store.get_user("bob") is None

    store.upsert_destination("ann-mail", "email", {"to": ["ann@example.com"], "format": "pdf"})
    store.upsert_destination("archive", "folder", {"path": "/srv/fax"})
    store.upsert_destination("archive", "folder", {"path": "/srv/fax2"})
    assert store.get_destination("archive")["params"] == {"path": "/srv/fax2"}
    assert [d["name"] for d in store.list_destinations()] == ["ann-mail", "archive"]
    assert store.delete_destination("archive") and store.get_destination("archive") is None


def test_rules_ordered_and_replaced(store):
    rules = [
        {"name": "sales", "kind": "direct", "dnis": "+1555000?", "destinations": ["archive"], "continue": True},
        {"name": "dir", "kind": "directory"},
        {"name": "last", "kind": "default", "destinations": ["ops"]},
    ]
    store.set_rules(rules)
    got = store.list_rules()
    assert [r["position"] for r in got] == [0, 1, 2]
    assert got[0] == {**rules[0], "position": 0}
    store.set_rules(rules[1:])
    assert [r["name"] for r in store.list_rules()] == ["dir", "last"]
    store.set_rules([])
    assert store.list_rules() == []


def test_put_file_failure_leaves_neither_row_nor_file(store, data_dir, monkeypatch):
    import os
    fax = store.create_fax(direction="in", status="receiving")
    store.put_file(fax, "tiff", b"page one")

    def full(*args):
        raise OSError(28, "No space left on device")
    if store.dialect == "postgresql":                       # the database refuses the bytes
        monkeypatch.setattr(crypto, "encrypt_bytes", full)
    else:
        monkeypatch.setattr(os, "fsync", full)              # the disk fills while sealing
    with pytest.raises(OSError, match="No space"):
        store.put_file(fax, "tiff", b"pages one and two")
    with pytest.raises(OSError, match="No space"):
        store.put_file(fax, "pdf", b"%PDF")
    monkeypatch.undo()
    assert store.read_file(fax, "tiff") == b"page one"       # the old file still stands
    assert [f["kind"] for f in store.files(fax)] == ["tiff"]
    assert len(sealed_files(store, data_dir)) == 1
    assert not [p for p in (data_dir / "files").rglob(".tmp-*")]
    with pytest.raises(StoreError, match="no fax"):
        store.put_file("0" * 16, "tiff", b"x")              # a file needs its fax


def test_nul_in_text_is_dropped_on_both_databases(store):
    # PostgreSQL text cannot hold NUL; a far end's TSI can. Both stores drop it alike.
    fax = store.create_fax(direction="in", status="receiving", remote_id="12\x0034", metadata={"x": "a\x00b"})
    store.add_event(fax, "call", "TSI 12\x0034", {"tsi": "12\x0034"})
    call = store.add_call(fax, remote_id="\x00\x00")
    row = store.get_fax(fax)
    assert row["remote_id"] == "1234" and row["metadata"] == {"x": "a\x00b"}    # JSON escapes it
    assert store.events(fax)[0]["message"] == "TSI 1234" and store.events(fax)[0]["data"] == {"tsi": "12\x0034"}
    assert store.calls(fax_id=fax)[0]["remote_id"] == "" and store.calls()[0]["id"] == call


def test_cdr_csv_neutralises_formulas_but_keeps_numbers(store):
    fax = store.create_fax(direction="in", status="received")
    store.add_call(fax, attempt=1, ani="+1 555 123-4567", dnis="+15550001", remote_id="=HYPERLINK(\"x\")",
                   line="@SUM(A1)", reason="-2+3", started_at=1.0)
    (row,) = csv.DictReader(io.StringIO(store.cdr_csv()))
    assert (row["ani"], row["dnis"]) == ("+1 555 123-4567", "+15550001")
    assert row["remote_id"] == "'=HYPERLINK(\"x\")" and row["line"] == "'@SUM(A1)" and row["reason"] == "'-2+3"


def test_new_sqlite_database_and_files_are_private(tmp_path, store_key):
    import stat
    store = Store.open(str(tmp_path / "db" / "x.db"), tmp_path / "data", store_key)
    try:
        fax = store.create_fax(direction="in", status="received")
        store.put_file(fax, "tiff", b"page")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (tmp_path / "db").iterdir()}
        assert modes and set(modes.values()) == {0o600}, modes          # x.db, x.db-wal, x.db-shm
        (sealed,) = (tmp_path / "data" / "files").rglob("*.xmfe")
        assert stat.S_IMODE(sealed.stat().st_mode) == 0o600
        assert stat.S_IMODE(sealed.parent.stat().st_mode) == 0o700
    finally:
        store.close()


def test_token_owners_and_their_faxes(store):
    a1 = store.create_token("acme-1", "send_manage", owner="acme")
    store.create_token("acme-2", "read", owner="acme")
    store.create_token("root", "admin")
    other = store.create_token("other")
    assert store.verify_token(a1)["owner"] == "acme" and store.verify_token(other)["owner"] == "other"
    id1 = store.verify_token(a1)["id"]
    store.revoke_token("acme-1")                                  # revoked: its faxes stay acme's
    acme = store.token_ids("acme")
    assert len(acme) == 2 and id1 in acme and store.token_ids("nobody") == []
    assert store.get_token(id1)["owner"] == "acme"
    assert [t["owner"] for t in store.list_tokens()] == ["acme", "acme", "root", "other"]
    mine = store.create_fax(direction="out", status="queued", token_id=id1)
    theirs = store.create_fax(direction="out", status="queued", token_id=store.verify_token(other)["id"])
    store.create_fax(direction="in", status="received")
    assert [f["id"] for f in store.list_faxes(token_ids=acme)] == [mine]
    assert [f["id"] for f in store.list_faxes(token_ids=store.token_ids("other"))] == [theirs]
    assert store.list_faxes(token_ids=[]) == []
    assert len(store.list_faxes()) == 3


def test_notify_status_and_its_event_change_together(store):
    """The compare-and-set and its event are one transaction: a reader that sees the new
    status sees the event, and a lost race writes no event."""
    fax = store.create_fax(direction="in", status="received")
    store.set_notify_status(fax, "pending")
    assert store.set_notify_status(fax, "delivered", expect=("pending",),
                                   event=("delivered", "all 1 notification(s) delivered", {"notifications": 1}))
    assert store.get_fax(fax)["notify_status"] == "delivered"
    assert [(e["kind"], e["data"]) for e in store.events(fax)] == [("delivered", {"notifications": 1})]
    assert not store.set_notify_status(fax, "delivered", expect=("pending",), event=("delivered", "again", None))
    assert [e["kind"] for e in store.events(fax)] == ["delivered"]
