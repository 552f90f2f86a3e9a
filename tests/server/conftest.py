"""Shared fixtures for tests/server (owner: H1 store).

- `pg_url` (session): a real PostgreSQL server from Debian's binaries (initdb, pg_ctl) in a
  temporary folder, listening on a free TCP port of 127.0.0.1 and a unix socket there,
  fsync off. As root (CI) it runs as `nobody` (initdb refuses root). Stopped at session
  end. Returns "postgresql://xmfax@127.0.0.1:PORT/postgres" (trust authentication).
  Skipped with a reason when the binaries are absent (a failure under strict skips: the
  PostgreSQL cases are marked `interop`).
- `new_pg_database()`: a factory fixture making a fresh database on that server; returns its URL.
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
        import psycopg
        name = "t_" + secrets.token_hex(6)
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url.rsplit("/", 1)[0] + "/" + name

    def drop_database(self, url: str) -> None:
        import psycopg
        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


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
    made = []

    def make() -> str:
        url = pg_server.create_database()
        made.append(url)
        return url

    yield make
    for url in made:
        try:
            pg_server.drop_database(url)
        except Exception:
            pass


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
