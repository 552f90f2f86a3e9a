"""Shared fixtures for tests/server (owner: H1 store).

- `pg_url` (session): a real PostgreSQL server from Debian's binaries (initdb, pg_ctl) in a
  temporary folder, listening on a free TCP port of 127.0.0.1 and a unix socket there,
  fsync off. As root (CI) it runs as `nobody` (initdb refuses root). Stopped at session
  end. Returns "postgresql://xmfax@127.0.0.1:PORT/postgres" (trust authentication).
  Skipped with a reason when the binaries are absent (a failure under strict skips: the
  PostgreSQL cases are marked `interop`).
- `new_pg_database()`: a factory fixture making a fresh, empty namespace on that server (a
  schema, named in the URL: "postgresql://...:PORT/postgres?options=-csearch_path%3Dt_xxx");
  returns its URL. Pass the URL as is to Store.open / `database =` / --database.
- `store_url`: parametrised "sqlite" / "postgresql": a fresh database for each test. SQLite:
  the path of a new file (tmp_path/"db"/"xmfax.db"); Store.open and `database =` accept it.
- `store_key`: 32 random bytes. `data_dir`: tmp_path/"data".
- `store`: an opened Store on `store_url` with `data_dir` and `store_key`; closed after.
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest


def _pg_bindir() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user_prefix() -> tuple[list[str], int | None, int | None]:
    """The command prefix that runs PostgreSQL as a non-root user when we are root."""
    if os.geteuid() != 0:
        return [], None, None
    user = pwd.getpwnam("nobody")
    for tool in ("runuser", "setpriv"):
        path = shutil.which(tool)
        if path and tool == "runuser":
            return [path, "-u", "nobody", "--"], user.pw_uid, user.pw_gid
        if path and tool == "setpriv":
            return [path, f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"], \
                user.pw_uid, user.pw_gid
    pytest.skip("running as root and neither runuser nor setpriv is available to drop to nobody")


class PostgresServer:
    def __init__(self):
        self.bindir = _pg_bindir()
        if self.bindir is None:
            pytest.skip("PostgreSQL server binaries not installed (Debian postgresql; scripts/install.sh)")
        import psycopg  # noqa: F401  (the driver must be there too)
        self.dir = Path(tempfile.mkdtemp(prefix="xmfax-pg-", dir="/tmp" if os.geteuid() == 0 else None))
        self.prefix, uid, gid = _as_user_prefix()
        if uid is not None:
            os.chown(self.dir, uid, gid)
        self.data = self.dir / "data"
        self.port = _free_port()
        self.url = f"postgresql://xmfax@127.0.0.1:{self.port}/postgres"

    def _run(self, *args, timeout=60):
        return subprocess.run([*self.prefix, *map(str, args)], capture_output=True, text=True,
                              timeout=timeout, cwd=self.dir)

    def start(self):
        r = self._run(self.bindir / "initdb", "-D", self.data, "-U", "xmfax", "-A", "trust",
                      "-E", "UTF8", "--no-sync", "--no-instructions")
        if r.returncode:
            raise RuntimeError(f"initdb failed: {r.stderr.strip() or r.stdout.strip()}")
        options = (f"-c listen_addresses=127.0.0.1 -c port={self.port} -c unix_socket_directories={self.dir} "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 "
                   "-c shared_buffers=32MB")
        r = self._run(self.bindir / "pg_ctl", "-D", self.data, "-l", self.dir / "log", "-o", options,
                      "-w", "-t", "60", "start")
        if r.returncode:
            log = (self.dir / "log").read_text(errors="replace") if (self.dir / "log").exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {r.stderr.strip()} {log[-2000:]}")
        return self

    def stop(self):
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop", timeout=30)
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def create_database(self) -> str:
        """A fresh, empty namespace for one test: a schema of its own in the server's
        database, named in the URL's search_path (libpq `options`). As isolated as a
        database for the store (every table, sequence and schema_version lives in it) and
        ~5x cheaper than CREATE DATABASE, which copies template1 (0.3 s here)."""
        import psycopg
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def sql(self, statement: str) -> list:
        import psycopg
        with psycopg.connect(self.url, autocommit=True) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_url(pg_server) -> str:
    return pg_server.url


@pytest.fixture
def new_pg_database(pg_server):
    """A factory: each call returns the URL of a fresh, empty PostgreSQL namespace. They are
    not dropped one by one (a node a test left running would block the drop); the whole
    server goes at session end."""
    return pg_server.create_database


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.interop)])
def store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        folder = tmp_path / "db"
        folder.mkdir(exist_ok=True)
        return str(folder / "xmfax.db")
    return request.getfixturevalue("new_pg_database")()


@pytest.fixture
def store_key() -> bytes:
    return secrets.token_bytes(32)


@pytest.fixture
def data_dir(tmp_path) -> Path:
    path = tmp_path / "data"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def store(store_url, data_dir, store_key):
    from xmfax.server.store import Store
    s = Store.open(store_url, data_dir, store_key)
    try:
        yield s
    finally:
        s.close()
