"""The SQL plumbing under the store: one connection per thread, short transactions, and
the few differences between SQLite and PostgreSQL (psycopg 3).

SQL is written once with `?` placeholders; on PostgreSQL `_sql` turns them into `%s`.
`tx()` is one write transaction (SQLite: BEGIN IMMEDIATE, the single writer; PostgreSQL:
autocommit off, COMMIT at the end); `_rows`/`_one` read, `_exec` writes one statement.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from pathlib import Path


class StoreError(Exception):
    """A misuse of the store: unknown column, bad kind, bad permission, name taken."""


def _clean(params):
    """NUL cannot be stored in PostgreSQL text (a far end's TSI may hold one): every text
    parameter loses its NULs, in both databases alike."""
    if any(isinstance(p, str) and "\x00" in p for p in params):
        return [p.replace("\x00", "") if isinstance(p, str) else p for p in params]
    return params


class Database:
    dialect: str                    # "sqlite" | "postgresql"

    def __init__(self, url: str, default_path: Path | None):
        self.url = url
        self.dialect = "postgresql" if url.startswith(("postgresql://", "postgres://")) else "sqlite"
        if self.dialect == "sqlite":
            if url.startswith("sqlite:///"):
                url = url[len("sqlite:///") - 1:]
            self.path = Path(url) if url else Path(default_path)
        self._local = threading.local()
        self._all: list = []
        self._lock = threading.Lock()
        self._closed = False

    def _connect(self):
        if self.dialect == "sqlite":
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout=30000")
            self._wal(conn)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA synchronous=NORMAL")   # WAL: durable at checkpoint, never corrupt
            conn.execute("PRAGMA secure_delete=ON")     # purged data is overwritten, not left in free pages
            return conn
        import psycopg
        from psycopg.rows import dict_row
        return psycopg.connect(self.url, autocommit=False, row_factory=dict_row, connect_timeout=10,
                               application_name="xmfax-serve")

    @staticmethod
    def _wal(conn, patience: float = 30.0) -> None:
        """Switch to WAL. Changing the journal mode needs the database to itself and SQLite
        does not call the busy handler for it, so a node opening while another one
        migrates gets "database is locked" at once: retry for up to `patience` seconds."""
        deadline = time.monotonic() + patience
        while True:
            try:
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
                continue
            if mode.lower() != "wal":
                raise StoreError(f"SQLite refused WAL mode (journal_mode is {mode})")
            return

    def _conn(self):
        if self._closed:
            raise StoreError("store is closed")
        conn = getattr(self._local, "conn", None)
        if conn is not None and self.dialect == "postgresql" and (conn.closed or conn.broken):
            with self._lock:                             # the server restarted: reconnect
                if conn in self._all:
                    self._all.remove(conn)
            with contextlib.suppress(Exception):
                conn.close()
            conn = None
        if conn is None:
            conn = self._connect()
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        self._closed = True
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()

    def _sql(self, sql: str) -> str:
        return sql.replace("?", "%s") if self.dialect == "postgresql" else sql

    @contextlib.contextmanager
    def tx(self):
        """One short write transaction; yields `run(sql, params) -> cursor`."""
        conn = self._conn()
        if self.dialect == "sqlite":
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield lambda sql, params=(): conn.execute(sql, _clean(params))
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:               # SQLite may have rolled back already
                    with contextlib.suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise
            return
        conn = self._pg_alive(conn)
        try:
            with conn.cursor() as cur:
                def run(sql, params=()):
                    if params:
                        cur.execute(self._sql(sql), _clean(params))
                    else:
                        cur.execute(sql)             # no placeholders parsed: '%' stays '%'
                    return cur
                yield run
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise
        conn.commit()

    PING_AFTER = 5.0        # seconds idle after which a PostgreSQL connection is checked before a write

    def _pg_alive(self, conn):
        """Before a write on a connection idle for a while, check it is still there (the
        server may have restarted): a write is never retried, so it must start on a live one."""
        now = time.monotonic()
        last, self._local.used = getattr(self._local, "used", now), now
        if now - last < self.PING_AFTER:
            return conn
        import psycopg
        try:
            conn.execute("SELECT 1")
            conn.rollback()
            return conn
        except psycopg.OperationalError:
            return self._conn()          # broken now: a new connection

    def _rows(self, sql: str, params=()) -> list[dict]:
        """A read. On PostgreSQL a read that finds its connection dead (server restarted,
        backend terminated) is retried once on a new one; writes are not retried (see tx)."""
        conn = self._conn()
        if self.dialect == "sqlite":
            return [dict(r) for r in conn.execute(sql, _clean(params)).fetchall()]
        import psycopg
        try:
            return self._pg_read(conn, sql, params)
        except psycopg.OperationalError:
            if not (conn.closed or conn.broken):
                raise
            return self._pg_read(self._conn(), sql, params)

    def _pg_read(self, conn, sql: str, params) -> list[dict]:
        try:
            with conn.cursor() as cur:
                if params:
                    cur.execute(self._sql(sql), _clean(params))
                else:
                    cur.execute(sql)
                rows = cur.fetchall() if cur.description else []
            conn.commit()
            return rows
        except BaseException:
            with contextlib.suppress(Exception):
                conn.rollback()
            raise

    def _one(self, sql: str, params=()) -> dict | None:
        rows = self._rows(sql, params)
        return rows[0] if rows else None

    def _exec(self, sql: str, params=()) -> int:
        """One write statement in its own transaction; returns the row count."""
        with self.tx() as run:
            return run(sql, params).rowcount

    @staticmethod
    def _in(values) -> str:
        return ",".join("?" * len(values))
