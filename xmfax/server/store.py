"""The service's database: faxes, event logs, call records, encrypted files, notifications,
access tokens and the directory (numbers, users, destinations, routing rules).

One class over two databases. SQLite (WAL) is the embedded default; PostgreSQL (psycopg 3)
lets several nodes share the work. The store is synchronous and thread-safe: each thread
gets its own connection, so the asyncio service calls it through `asyncio.to_thread`.
SQL is written once with `?` placeholders; `_sql` turns them into psycopg's `%s`.

Claims (outbound faxes, notifications) are one statement inside one short transaction:
``UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING *`` on PostgreSQL,
the same under ``BEGIN IMMEDIATE`` (one writer at a time) on SQLite, so two nodes never
claim the same row.
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from pathlib import Path

from . import crypto
from .db import Database, StoreError
from .migrations import migrate

FAX_COLUMNS = (
    "id", "broadcast_id", "direction", "status", "reason", "reason_text", "number", "ani",
    "dnis", "csid", "remote_id", "line", "pages", "attempts", "max_attempts",
    "next_attempt_at", "claimed_by", "heartbeat_at", "created_at", "updated_at",
    "completed_at", "scheduled_at", "retention_days", "expires_at", "purged_at",
    "notify_status", "token_id", "sender", "metadata",
)
CALL_COLUMNS = (
    "id", "fax_id", "attempt", "direction", "line", "started_at", "ended_at", "duration",
    "status", "reason", "pages", "rate", "remote_id", "ani", "dnis", "node",
)
NOTIFICATION_COLUMNS = (
    "id", "fax_id", "destination", "status", "attempts", "next_attempt_at", "last_error",
    "claimed_by", "heartbeat_at", "delivered_at", "created_at",
)
FILE_KINDS = ("source", "tiff", "pdf", "record")
IN_DB = "db:"      # files.path of a file whose sealed bytes are in file_blobs (PostgreSQL)
PERMISSIONS = ("send_manage", "read", "admin")
DAY = 86400.0
# Personal data in a fax row: nulled by purge_fax (metadata becomes "{}").
PERSONAL_FAX = ("number", "ani", "dnis", "csid", "remote_id", "sender", "line", "reason_text")
PERSONAL_CALL = ("line", "remote_id", "ani", "dnis")
# A zero-retention fax whose notifications failed (or were never routed) is held this long
# for an operator to act, then purged anyway: zero retention never means "kept forever".
ZERO_RETENTION_HOLD = 7 * DAY


def _now() -> float:
    return time.time()


def _new_id() -> str:
    return secrets.token_hex(8)


def _dumps(value) -> str:
    return json.dumps(value if value is not None else {}, separators=(",", ":"), sort_keys=True)


def _loads(text, default):
    if text is None or text == "":
        return default
    try:
        return json.loads(text)
    except ValueError:
        return default


_PLAIN_NUMBER = re.compile(r"[+-]?[0-9][0-9 .()-]*")


def _csv_cell(value) -> str:
    """CSV injection (OWASP "CSV Injection"): a cell starting with = + - @ TAB or CR is a
    formula to a spreadsheet. Quote such text with an apostrophe, unless it is a plain
    phone number or number."""
    if value is None:
        return ""
    if not isinstance(value, str):
        return value
    if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


class Store(Database):
    """The contract's store (see the module docstring); SQL plumbing is db.Database's."""

    def __init__(self, url: str, data_dir: Path, key: bytes, *, default_retention_days: int = 90):
        super().__init__(url, data_dir / "xmfax.db" if not url else None)
        self.data_dir = Path(data_dir)
        self.files_dir = self.data_dir / "files"
        self.key = key
        self.default_retention_days = default_retention_days

    @classmethod
    def open(cls, url_or_path: str, data_dir: Path, key: bytes, *, default_retention_days: int = 90) -> "Store":
        if len(key) != crypto.KEY_BYTES:
            raise StoreError(f"key: {len(key)} bytes, need {crypto.KEY_BYTES}")
        store = cls(url_or_path or "", data_dir, key, default_retention_days=default_retention_days)
        store.data_dir.mkdir(parents=True, exist_ok=True)
        if store.dialect == "sqlite":
            store.path.parent.mkdir(parents=True, exist_ok=True)
            # A new database file is readable by us alone; SQLite gives -wal and -shm its mode.
            with contextlib.suppress(FileExistsError):
                os.close(os.open(store.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        migrate(store)
        return store

    # ------------------------------------------------------------ faxes

    @staticmethod
    def _check(fields: dict, allowed: tuple[str, ...], what: str) -> None:
        bad = [k for k in fields if k not in allowed]
        if bad:
            raise StoreError(f"{what}: unknown column(s) {', '.join(sorted(bad))}")

    @staticmethod
    def _fax(row: dict | None) -> dict | None:
        if row is not None:
            row["metadata"] = _loads(row.get("metadata"), {})
        return row

    def _fax_values(self, fields: dict) -> dict:
        if "metadata" in fields:
            fields["metadata"] = _dumps(fields["metadata"])
        return fields

    @staticmethod
    def _fax_sets(fields: dict) -> str:
        """The SET clause of a fax update. Personal columns are written only while the fax
        is not purged: a late update (a far end's id after the purge) cannot bring them back."""
        parts = []
        for k in fields:
            if k in PERSONAL_FAX:
                parts.append(f"{k} = CASE WHEN purged_at IS NULL THEN ? ELSE NULL END")
            elif k == "metadata":
                parts.append("metadata = CASE WHEN purged_at IS NULL THEN ? ELSE '{}' END")
            else:
                parts.append(f"{k} = ?")
        return ", ".join(parts)

    def create_fax(self, *, direction: str, status: str, **fields) -> str:
        if direction not in ("out", "in"):
            raise StoreError(f"direction: {direction!r}, not 'out' or 'in'")
        self._check(fields, FAX_COLUMNS, "create_fax")
        now = _now()
        row = {"id": fields.pop("id", None) or _new_id(), "direction": direction, "status": status,
               "created_at": now, "updated_at": now, "metadata": {}}
        row.update(fields)
        row = self._fax_values(row)
        names = list(row)
        self._exec(f"INSERT INTO faxes ({','.join(names)}) VALUES ({self._in(names)})",
                   [row[n] for n in names])
        return row["id"]

    def get_fax(self, fax_id: str) -> dict | None:
        return self._fax(self._one("SELECT * FROM faxes WHERE id = ?", (fax_id,)))

    def update_fax(self, fax_id: str, **fields) -> None:
        self._check(fields, FAX_COLUMNS, "update_fax")
        fields.pop("id", None)
        fields.setdefault("updated_at", _now())
        fields = self._fax_values(fields)
        self._exec(f"UPDATE faxes SET {self._fax_sets(fields)} WHERE id = ?", [*fields.values(), fax_id])

    def set_status(self, fax_id: str, status: str, *, expect: tuple[str, ...] | None = None, **fields) -> bool:
        """Compare-and-set: False (nothing changed) when the fax is absent or its current
        status is not in `expect` (None: any status)."""
        self._check(fields, FAX_COLUMNS, "set_status")
        fields.pop("id", None)
        fields["status"] = status
        fields.setdefault("updated_at", _now())
        fields = self._fax_values(fields)
        sets = self._fax_sets(fields)
        params = [*fields.values(), fax_id]
        where = "id = ?"
        if expect is not None:
            if not expect:
                return False
            where += f" AND status IN ({self._in(expect)})"
            params += list(expect)
        return self._exec(f"UPDATE faxes SET {sets} WHERE {where}", params) == 1

    def complete_fax(self, fax_id: str, status: str, *, expect: tuple[str, ...] | None = None,
                     at: float | None = None, **fields) -> bool:
        """A compare-and-set to a final status that also stamps `completed_at` and
        `expires_at` = completed_at + the fax's retention_days (None: the service default)."""
        row = self._one("SELECT retention_days FROM faxes WHERE id = ?", (fax_id,))
        if row is None:
            return False
        at = _now() if at is None else at
        days = row["retention_days"] if row["retention_days"] is not None else self.default_retention_days
        fields.setdefault("retention_days", days)     # the retention that applied, on record
        fields.setdefault("completed_at", at)
        fields.setdefault("expires_at", fields["completed_at"] + days * DAY)
        fields.setdefault("claimed_by", None)
        return self.set_status(fax_id, status, expect=expect, **fields)

    def list_faxes(self, *, direction=None, status=None, broadcast_id=None, since=None,
                   limit: int = 100, offset: int = 0, token_ids: list[int] | None = None) -> list[dict]:
        """Newest first. `token_ids`: only faxes submitted with one of those tokens."""
        where, params = [], []
        if token_ids is not None:
            if not token_ids:
                return []
            where.append(f"token_id IN ({self._in(token_ids)})")
            params += [int(t) for t in token_ids]
        for column, value in (("direction", direction), ("broadcast_id", broadcast_id)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if status is not None:
            statuses = [status] if isinstance(status, str) else list(status)
            where.append(f"status IN ({self._in(statuses)})")
            params += statuses
        if since is not None:
            where.append("created_at >= ?")
            params.append(since)
        sql = "SELECT * FROM faxes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
        params += [int(limit), int(offset)]
        return [self._fax(r) for r in self._rows(sql, params)]

    def claim_outbound(self, node: str, now: float, limit: int, lines: list[str] | None = None) -> list[dict]:
        """Due queued faxes -> "sending", claimed by `node`, earliest due first (a fax
        without next_attempt_at is due at once). With `lines`, only faxes whose `line` is
        unset or one of them."""
        cond, params = "status = 'queued' AND COALESCE(next_attempt_at, 0) <= ?", [now]
        if lines is not None:
            if not lines:
                return []
            cond += f" AND (line IS NULL OR line IN ({self._in(lines)}))"
            params += list(lines)
        pick = (f"SELECT id FROM faxes WHERE {cond} "
                f"ORDER BY COALESCE(next_attempt_at, 0), created_at LIMIT ?")
        with self.tx() as run:
            rows = self._claim(run, "faxes", pick, [*params, int(limit)], "status = 'queued'",
                               "status = 'sending', claimed_by = ?, heartbeat_at = ?, updated_at = ?",
                               [node, now, now])
        rows.sort(key=lambda r: (r["next_attempt_at"] or 0.0, r["created_at"]))
        return [self._fax(r) for r in rows]

    def _claim(self, run, table: str, pick: str, pick_params: list, still: str, sets: str,
               set_params: list) -> list[dict]:
        """Inside one transaction: pick due rows (PostgreSQL: FOR UPDATE SKIP LOCKED, so a
        row another node is claiming is passed over, not waited for; SQLite: BEGIN IMMEDIATE
        already excludes every other writer), then mark them. Two statements, not
        `UPDATE ... WHERE id IN (SELECT ... LIMIT n FOR UPDATE SKIP LOCKED)`: PostgreSQL may
        rescan such a subquery once per row, skip the rows the statement itself just
        updated, and so claim far more than n rows (seen here: 1000 rows for n = 5)."""
        if self.dialect == "postgresql":
            pick += " FOR UPDATE SKIP LOCKED"
        ids = [dict(r)["id"] for r in run(pick, pick_params).fetchall()]
        if not ids:
            return []
        return [dict(r) for r in run(f"UPDATE {table} SET {sets} WHERE {still} AND id IN ({self._in(ids)}) "
                                     "RETURNING *", [*set_params, *ids]).fetchall()]

    def heartbeat(self, fax_ids: list[str], node: str, now: float) -> None:
        if fax_ids:
            self._exec(f"UPDATE faxes SET heartbeat_at = ? WHERE claimed_by = ? AND id IN ({self._in(fax_ids)})",
                       [now, node, *fax_ids])

    def stale(self, now: float, older_than: float, statuses: tuple[str, ...]) -> list[dict]:
        """Faxes in `statuses` whose last heartbeat (or, lacking one, last update) is older
        than now - older_than: work a dead node left behind."""
        if not statuses:
            return []
        sql = (f"SELECT * FROM faxes WHERE status IN ({self._in(statuses)}) "
               "AND COALESCE(heartbeat_at, updated_at, created_at) < ? ORDER BY created_at")
        return [self._fax(r) for r in self._rows(sql, [*statuses, now - older_than])]

    # ------------------------------------------------------------ event log

    def add_event(self, fax_id: str, kind: str, message: str, data: dict | None = None,
                  at: float | None = None) -> None:
        """Append to the fax's event log. An event for a fax already purged keeps its kind
        and time only: its message and data could name someone, and a purge is final."""
        added = self._exec(
            "INSERT INTO events (fax_id, at, kind, message, data) SELECT id, ?, ?, "
            "CASE WHEN purged_at IS NULL THEN ? ELSE ? END, CASE WHEN purged_at IS NULL THEN ? ELSE '{}' END "
            "FROM faxes WHERE id = ?",
            (_now() if at is None else at, kind, message, f"{kind} (details not kept: fax purged)",
             _dumps(data), fax_id))
        if added != 1:
            raise StoreError(f"add_event: no fax {fax_id}")

    def events(self, fax_id: str) -> list[dict]:
        rows = self._rows("SELECT id, fax_id, at, kind, message, data FROM events WHERE fax_id = ? "
                          "ORDER BY id", (fax_id,))
        for r in rows:
            r["data"] = _loads(r["data"], {})
        return rows

    # ------------------------------------------------------------ call detail records

    def add_call(self, fax_id: str, **fields) -> int:
        self._check(fields, CALL_COLUMNS, "add_call")
        fields.pop("id", None)
        fields["fax_id"] = fax_id
        names = list(fields)
        with self.tx() as run:
            row = run(f"INSERT INTO calls ({','.join(names)}) VALUES ({self._in(names)}) RETURNING id",
                      [fields[n] for n in names]).fetchone()
        return int(row["id"] if isinstance(row, dict) else row[0])

    def update_call(self, call_id: int, **fields) -> None:
        self._check(fields, CALL_COLUMNS, "update_call")
        fields.pop("id", None)
        fields.pop("fax_id", None)
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._exec(f"UPDATE calls SET {sets} WHERE id = ?", [*fields.values(), call_id])

    def calls(self, *, since=None, until=None, fax_id=None) -> list[dict]:
        where, params = [], []
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("started_at < ?")
            params.append(until)
        if fax_id is not None:
            where.append("fax_id = ?")
            params.append(fax_id)
        sql = "SELECT * FROM calls" + (" WHERE " + " AND ".join(where) if where else "")
        return self._rows(sql + " ORDER BY started_at, id", params)

    def cdr_csv(self, *, since=None, until=None) -> str:
        """The call detail records as CSV (RFC 4180): a header, then one line per call
        attempt, times as ISO 8601 UTC beside the epoch seconds. A text cell a spreadsheet
        would run as a formula (a caller's name from SIP can be anything) gets a leading
        apostrophe; numbers such as "+15551234567" stay as they are."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        names = list(CALL_COLUMNS)
        writer.writerow([*names, "started_utc"])
        for r in self.calls(since=since, until=until):
            started = r.get("started_at")
            iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)) if started is not None else ""
            writer.writerow([_csv_cell(r.get(n)) for n in names] + [iso])
        return out.getvalue()

    # ------------------------------------------------------------ files (encrypted at rest)

    def _file_path(self, fax_id: str, file_id: str) -> Path:
        """Where a sealed file lives on disk (SQLite; PostgreSQL keeps them in file_blobs)."""
        return self.files_dir / fax_id[:2] / fax_id / f"{file_id}.xmfe"

    @staticmethod
    def _aad_id(fax_id: str, file_id: str) -> str:
        return f"{fax_id}/{file_id}"

    def put_file(self, fax_id: str, kind: str, data: bytes | Path, *, name: str = "") -> dict:
        """Store a file of the fax, sealed with AES-GCM (crypto.py), replacing one of the same
        kind and name. Returns {kind, name, size, sha256, created_at}."""
        if kind not in FILE_KINDS:
            raise StoreError(f"file kind {kind!r}: one of {', '.join(FILE_KINDS)}")
        fax = self._one("SELECT purged_at FROM faxes WHERE id = ?", (fax_id,))
        if fax is None:
            raise StoreError(f"put_file: no fax {fax_id}")
        if fax["purged_at"] is not None:
            raise StoreError(f"put_file: fax {fax_id} is purged")
        digest, size = hashlib.sha256(), 0
        if isinstance(data, (bytes, bytearray, memoryview)):
            data = bytes(data)
            digest.update(data)
            size = len(data)
        else:
            data = Path(data)
            with open(data, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
                    size += len(block)
        file_id = _new_id()
        aad = self._aad_id(fax_id, file_id)
        # PostgreSQL: the sealed bytes go into the database (file_blobs), so nodes on several
        # machines share nothing but the database; SQLite: a sealed file under files_dir
        in_db = self.dialect == "postgresql"
        path = self._file_path(fax_id, file_id)
        if in_db:
            sealed = crypto.encrypt_bytes(self.key, aad, data if isinstance(data, bytes) else data.read_bytes())
        else:
            crypto.write_encrypted(path, self.key, aad, data)
        info = {"kind": kind, "name": name, "size": size, "sha256": digest.hexdigest(), "created_at": _now()}
        try:
            with self.tx() as run:
                old = run("SELECT id, path FROM files WHERE fax_id = ? AND kind = ? AND name = ?",
                          (fax_id, kind, name)).fetchall()
                run("DELETE FROM files WHERE fax_id = ? AND kind = ? AND name = ?", (fax_id, kind, name))
                run("INSERT INTO files (id, fax_id, kind, name, size, sha256, path, created_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (file_id, fax_id, kind, name, size, info["sha256"],
                     IN_DB if in_db else str(path.relative_to(self.files_dir)), info["created_at"]))
                if in_db:
                    run("INSERT INTO file_blobs (file_id, data) VALUES (?, ?)", (file_id, sealed))
        except BaseException:
            if not in_db:
                path.unlink(missing_ok=True)
            raise
        for row in old:
            if dict(row)["path"] != IN_DB:
                (self.files_dir / dict(row)["path"]).unlink(missing_ok=True)
        return info

    def read_file(self, fax_id: str, kind: str, name: str = "") -> bytes:
        row = self._one("SELECT id, path, sha256 FROM files WHERE fax_id = ? AND kind = ? AND name = ?",
                        (fax_id, kind, name))
        if row is None:
            raise FileNotFoundError(f"fax {fax_id}: no {kind} file {name!r}")
        aad = self._aad_id(fax_id, row["id"])
        if row["path"] == IN_DB:
            blob = self._one("SELECT data FROM file_blobs WHERE file_id = ?", (row["id"],))
            if blob is None:
                raise FileNotFoundError(f"fax {fax_id}: the {kind} file {name!r} has no bytes in the database")
            data = crypto.decrypt_bytes(self.key, aad, bytes(blob["data"]))
        else:
            data = crypto.read_encrypted(self.files_dir / row["path"], self.key, aad)
        if hashlib.sha256(data).hexdigest() != row["sha256"]:
            raise crypto.CryptoError(f"fax {fax_id} {kind} {name!r}: checksum mismatch")
        return data

    def files(self, fax_id: str) -> list[dict]:
        return self._rows("SELECT kind, name, size, sha256, created_at FROM files WHERE fax_id = ? "
                          "ORDER BY created_at, kind, name", (fax_id,))

    def delete_files(self, fax_id: str) -> None:
        """Delete the fax's files: rows first (a crash after leaves orphans on disk, which
        the folder removal below or the next purge removes, never a row without its file)."""
        self._exec("DELETE FROM files WHERE fax_id = ?", (fax_id,))
        folder = self.files_dir / fax_id[:2] / fax_id
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()                      # only when empty

    def sweep_orphans(self, now: float, older_than: float = 3600.0) -> int:
        """Delete what a crash left in the files folder: sealed files no row names (a crash
        between writing one and recording it) and temp files of unfinished writes, once
        older than `older_than` seconds (a write in progress, maybe on another node sharing
        the folder, is younger). Returns how many were deleted."""
        if not self.files_dir.exists():
            return 0
        known = {r["path"] for r in self._rows("SELECT path FROM files")}
        count = 0
        for path in self.files_dir.rglob("*"):
            try:
                if not path.is_file() or path.stat().st_mtime > now - older_than:
                    continue
                if path.name.startswith(".tmp-") or str(path.relative_to(self.files_dir)) not in known:
                    # re-check: a row may have been added since the read above
                    rel = str(path.relative_to(self.files_dir))
                    if self._one("SELECT id FROM files WHERE path = ?", (rel,)) is None:
                        path.unlink()
                        count += 1
            except FileNotFoundError:
                continue
        for folder in sorted((p for p in self.files_dir.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()                            # only the empty ones go
        return count

    # ------------------------------------------------------------ notifications

    @staticmethod
    def _notification(row: dict) -> dict:
        row = dict(row)
        row["destination"] = _loads(row.get("destination"), {})
        return row

    def add_notification(self, fax_id: str, destination: dict) -> int:
        now = _now()
        with self.tx() as run:
            row = run("INSERT INTO notifications (fax_id, destination, status, attempts, next_attempt_at, "
                      "created_at) VALUES (?, ?, 'pending', 0, ?, ?) RETURNING id",
                      (fax_id, _dumps(destination), now, now)).fetchone()
        return int(row["id"] if isinstance(row, dict) else row[0])

    def claim_notifications(self, node: str, now: float, limit: int) -> list[dict]:
        pick = ("SELECT id FROM notifications WHERE status = 'pending' AND COALESCE(next_attempt_at, 0) <= ? "
                "ORDER BY COALESCE(next_attempt_at, 0), id LIMIT ?")
        with self.tx() as run:
            rows = self._claim(run, "notifications", pick, [now, int(limit)], "status = 'pending'",
                               "status = 'sending', claimed_by = ?, heartbeat_at = ?", [node, now])
        return sorted((self._notification(r) for r in rows), key=lambda r: r["id"])

    def update_notification(self, notif_id: int, **fields) -> None:
        self._check(fields, NOTIFICATION_COLUMNS, "update_notification")
        fields.pop("id", None)
        if "destination" in fields:
            fields["destination"] = _dumps(fields["destination"])
        if fields:
            sets = ", ".join(f"{k} = ?" for k in fields)
            self._exec(f"UPDATE notifications SET {sets} WHERE id = ?", [*fields.values(), notif_id])

    def notifications(self, fax_id: str) -> list[dict]:
        return [self._notification(r) for r in
                self._rows("SELECT * FROM notifications WHERE fax_id = ? ORDER BY id", (fax_id,))]

    def get_notification(self, notif_id: int) -> dict | None:
        row = self._one("SELECT * FROM notifications WHERE id = ?", (notif_id,))
        return self._notification(row) if row is not None else None

    def release_notifications(self, now: float, older_than: float, node: str | None = None) -> list[int]:
        """Notifications left "sending" by a node that died (heartbeat older than
        now - older_than) go back to "pending", due now; with `node`, also every row that
        node holds (its own restart). Returns their ids."""
        cond, params = "COALESCE(heartbeat_at, created_at) < ?", [now - older_than]
        if node is not None:
            cond = f"({cond} OR claimed_by = ?)"
            params.append(node)
        with self.tx() as run:
            rows = run("UPDATE notifications SET status = 'pending', claimed_by = NULL, next_attempt_at = ? "
                       f"WHERE status = 'sending' AND {cond} RETURNING id", (now, *params)).fetchall()
        return sorted(int(r["id"] if isinstance(r, dict) else r[0]) for r in rows)

    def heartbeat_notifications(self, notif_ids: list[int], node: str, now: float) -> None:
        if notif_ids:
            self._exec(f"UPDATE notifications SET heartbeat_at = ? WHERE claimed_by = ? AND id IN "
                       f"({self._in(notif_ids)})", [now, node, *notif_ids])

    def set_notify_status(self, fax_id: str, value: str, *, expect: tuple[str, ...] | None = None,
                          event: tuple[str, str, dict | None] | None = None) -> bool:
        """Compare-and-set of faxes.notify_status: False when absent or not in `expect`.
        ``event`` (kind, message, data) is appended in the same transaction when the status
        changed: whoever sees the new status sees its event too."""
        now = _now()
        sql, params = "UPDATE faxes SET notify_status = ?, updated_at = ? WHERE id = ?", [value, now, fax_id]
        if expect is not None:
            if not expect:
                return False
            sql += f" AND notify_status IN ({self._in(expect)})"
            params += list(expect)
        with self.tx() as run:
            changed = run(sql, params).rowcount == 1
            if changed and event is not None:
                kind, message, data = event
                run("INSERT INTO events (fax_id, at, kind, message, data) SELECT id, ?, ?, "
                    "CASE WHEN purged_at IS NULL THEN ? ELSE ? END, CASE WHEN purged_at IS NULL THEN ? ELSE '{}' END "
                    "FROM faxes WHERE id = ?",
                    (now, kind, message, f"{kind} (details not kept: fax purged)", _dumps(data), fax_id))
        return changed

    # ------------------------------------------------------------ access tokens

    @staticmethod
    def _token_hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def create_token(self, name: str, permission: str = "send_manage", owner: str = "") -> str:
        """A new token, returned once; only its SHA-256 is stored. A name has at most one
        live token (revoke it first). `owner` ("" = the name itself) is whose faxes it sees."""
        if permission not in PERMISSIONS:
            raise StoreError(f"permission {permission!r}: one of {', '.join(PERMISSIONS)}")
        if not name:
            raise StoreError("token name: empty")
        token = "xmt_" + secrets.token_urlsafe(32)
        with self.tx() as run:
            if run("SELECT id FROM tokens WHERE name = ? AND revoked_at IS NULL", (name,)).fetchall():
                raise StoreError(f"token name {name!r}: already has a live token (revoke it first)")
            run("INSERT INTO tokens (name, hash, permission, created_at, owner) VALUES (?, ?, ?, ?, ?)",
                (name, self._token_hash(token), permission, _now(), owner or None))
        return token

    _TOKEN = "id, name, permission, COALESCE(owner, name) AS owner"

    def verify_token(self, token: str) -> dict | None:
        """{id, name, permission, owner} of a live token, else None."""
        if not token:
            return None
        return self._one(f"SELECT {self._TOKEN} FROM tokens WHERE hash = ? AND revoked_at IS NULL",
                         (self._token_hash(token),))

    def revoke_token(self, name: str) -> bool:
        return self._exec("UPDATE tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                          (_now(), name)) > 0

    def list_tokens(self) -> list[dict]:
        return self._rows(f"SELECT {self._TOKEN}, created_at, revoked_at FROM tokens ORDER BY id")

    def get_token(self, token_id: int) -> dict | None:
        return self._one(f"SELECT {self._TOKEN}, created_at, revoked_at FROM tokens WHERE id = ?", (int(token_id),))

    def token_ids(self, owner: str) -> list[int]:
        """Ids of every token (revoked ones too) acting for `owner`."""
        return [int(r["id"]) for r in
                self._rows("SELECT id FROM tokens WHERE COALESCE(owner, name) = ? ORDER BY id", (owner,))]

    # ------------------------------------------------------------ directory

    def upsert_number(self, number: str, *, csid: str = "", users: list[str] = (),
                      retention_days: int | None = None, label: str = "") -> None:
        self._exec("INSERT INTO numbers (number, csid, users, retention_days, label, updated_at) "
                   "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (number) DO UPDATE SET csid = excluded.csid, "
                   "users = excluded.users, retention_days = excluded.retention_days, "
                   "label = excluded.label, updated_at = excluded.updated_at",
                   (number, csid or "", json.dumps(list(users)), retention_days, label or "", _now()))

    @staticmethod
    def _number(row: dict | None) -> dict | None:
        if row is not None:
            row["users"] = _loads(row["users"], [])
        return row

    def get_number(self, number: str) -> dict | None:
        return self._number(self._one("SELECT * FROM numbers WHERE number = ?", (number,)))

    def list_numbers(self) -> list[dict]:
        return [self._number(r) for r in self._rows("SELECT * FROM numbers ORDER BY number")]

    def delete_number(self, number: str) -> bool:
        return self._exec("DELETE FROM numbers WHERE number = ?", (number,)) > 0

    def upsert_user(self, name: str, *, email: str = "", destinations: list[str] = ()) -> None:
        self._exec("INSERT INTO users (name, email, destinations, updated_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET email = excluded.email, "
                   "destinations = excluded.destinations, updated_at = excluded.updated_at",
                   (name, email or "", json.dumps(list(destinations)), _now()))

    @staticmethod
    def _user(row: dict | None) -> dict | None:
        if row is not None:
            row["destinations"] = _loads(row["destinations"], [])
        return row

    def get_user(self, name: str) -> dict | None:
        return self._user(self._one("SELECT * FROM users WHERE name = ?", (name,)))

    def list_users(self) -> list[dict]:
        return [self._user(r) for r in self._rows("SELECT * FROM users ORDER BY name")]

    def delete_user(self, name: str) -> bool:
        return self._exec("DELETE FROM users WHERE name = ?", (name,)) > 0

    def upsert_destination(self, name: str, type: str, params: dict) -> None:
        self._exec("INSERT INTO destinations (name, type, params, updated_at) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (name) DO UPDATE SET type = excluded.type, params = excluded.params, "
                   "updated_at = excluded.updated_at",
                   (name, type, _dumps(params), _now()))

    @staticmethod
    def _destination(row: dict | None) -> dict | None:
        if row is not None:
            row["params"] = _loads(row["params"], {})
        return row

    def get_destination(self, name: str) -> dict | None:
        return self._destination(self._one("SELECT * FROM destinations WHERE name = ?", (name,)))

    def list_destinations(self) -> list[dict]:
        return [self._destination(r) for r in self._rows("SELECT * FROM destinations ORDER BY name")]

    def delete_destination(self, name: str) -> bool:
        return self._exec("DELETE FROM destinations WHERE name = ?", (name,)) > 0

    def set_rules(self, rules: list[dict]) -> None:
        """Replace the whole routing table in one transaction; list order is the position."""
        with self.tx() as run:
            run("DELETE FROM rules")
            for position, rule in enumerate(rules):
                rule = {k: v for k, v in dict(rule).items() if k != "position"}
                run("INSERT INTO rules (position, name, kind, rule) VALUES (?, ?, ?, ?)",
                    (position, rule.get("name", ""), rule.get("kind", "direct"), _dumps(rule)))

    def list_rules(self) -> list[dict]:
        out = []
        for r in self._rows("SELECT position, name, kind, rule FROM rules ORDER BY position"):
            rule = _loads(r["rule"], {})
            rule.update(position=r["position"], name=r["name"], kind=r["kind"])
            out.append(rule)
        return out

    # ------------------------------------------------------------ retention

    def purge_fax(self, fax_id: str, why: str) -> None:
        """Delete the fax's files and personal data. What stays: an anonymous row (id,
        broadcast id, direction, status, reason, times, page count, attempts) and one
        `purge` event naming no one. Idempotent."""
        now = _now()
        self.delete_files(fax_id)
        sets = ", ".join(f"{c} = NULL" for c in PERSONAL_FAX)
        calls = ", ".join(f"{c} = NULL" for c in PERSONAL_CALL)
        with self.tx() as run:
            row = run("SELECT id FROM faxes WHERE id = ?", (fax_id,)).fetchall()
            if not row:
                return
            run(f"UPDATE faxes SET {sets}, metadata = '{{}}', purged_at = ?, updated_at = ? WHERE id = ?",
                (now, now, fax_id))
            run(f"UPDATE calls SET {calls} WHERE fax_id = ?", (fax_id,))
            for n in run("SELECT id, destination FROM notifications WHERE fax_id = ?", (fax_id,)).fetchall():
                n = dict(n)
                dest = _loads(n["destination"], {})
                kept = {k: dest[k] for k in ("type", "name") if k in dest}
                run("UPDATE notifications SET destination = ?, last_error = NULL WHERE id = ?",
                    (_dumps(kept), n["id"]))
            run("DELETE FROM events WHERE fax_id = ?", (fax_id,))
            run("DELETE FROM files WHERE fax_id = ?", (fax_id,))
            run("INSERT INTO events (fax_id, at, kind, message, data) VALUES (?, ?, 'purge', ?, ?)",
                (fax_id, now, f"purged: {why}", _dumps({"why": why})))
        if self.dialect == "sqlite":
            # The WAL still holds the pages as they were before; a TRUNCATE checkpoint copies
            # the new pages into the database and empties the WAL (best effort: it cannot
            # finish while another connection reads an older snapshot; the next one will).
            with contextlib.suppress(sqlite3.Error):
                self._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def vacuum(self) -> None:
        """Reclaim what purges left behind. PostgreSQL keeps deleted and updated rows as dead
        tuples until VACUUM; SQLite overwrites them at once (secure_delete) and needs nothing."""
        if self.dialect != "postgresql":
            return
        import psycopg
        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute("VACUUM faxes, events, calls, notifications, files")

    def expired(self, now: float) -> list[str]:
        """Faxes to purge: expires_at passed and not purged yet. A zero-retention fax waits
        until its notifications are delivered (its purge normally happens right then), or,
        when they failed or were never made, for ZERO_RETENTION_HOLD after completion."""
        rows = self._rows(
            "SELECT id FROM faxes WHERE expires_at IS NOT NULL AND expires_at <= ? AND purged_at IS NULL "
            "AND (COALESCE(retention_days, ?) <> 0 OR notify_status = 'delivered' "
            "OR (notify_status <> 'pending' AND completed_at <= ?)) ORDER BY expires_at",
            (now, self.default_retention_days, now - ZERO_RETENTION_HOLD))
        return [r["id"] for r in rows]
