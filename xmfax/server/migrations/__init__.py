"""Schema migrations: `NNNN_name.sql` files applied in order, each once, in a transaction.

`schema_version` records what was applied. On PostgreSQL the runner first takes a
transaction-scoped advisory lock (`pg_advisory_xact_lock`), so two nodes starting together
on one database apply each migration once: the second waits, then sees it done. On SQLite
`BEGIN IMMEDIATE` gives the same single writer.

One SQL text serves both databases through four substitutions: `{id}` (an auto-increment
primary key), `{real}` (a 64-bit float: PostgreSQL's REAL is 32 bits, too coarse for epoch
seconds), `{json}` (JSON kept as TEXT in both) and `{blob}` (bytes: BLOB, BYTEA).
"""
from __future__ import annotations

import re
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LOCK_ID = 0x786D666178          # "xmfax": the advisory lock key
TYPES = {
    "sqlite": {"id": "INTEGER PRIMARY KEY AUTOINCREMENT", "real": "REAL", "json": "TEXT", "blob": "BLOB"},
    "postgresql": {"id": "BIGSERIAL PRIMARY KEY", "real": "DOUBLE PRECISION", "json": "TEXT", "blob": "BYTEA"},
}


def available() -> list[tuple[int, str, str]]:
    """(version, name, sql text) of every migration file, in order."""
    out = []
    for path in sorted(HERE.glob("[0-9][0-9][0-9][0-9]_*.sql")):
        out.append((int(path.name[:4]), path.stem, path.read_text()))
    return out


def statements(sql: str, dialect: str) -> list[str]:
    """The file's statements for `dialect`: comments dropped, types substituted, split at
    ';' ending a line."""
    types = TYPES[dialect]
    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    text = re.sub(r"\{(id|real|json|blob)\}", lambda m: types[m.group(1)], text)
    return [s.strip() for s in re.split(r";\s*$", text, flags=re.M) if s.strip()]


def migrate(store) -> list[int]:
    """Apply what is missing; returns the versions applied now (empty when up to date)."""
    applied_now = []
    with store.tx() as run:
        if store.dialect == "postgresql":
            run("SELECT pg_advisory_xact_lock(?)", (LOCK_ID,))
        run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, "
            "name TEXT NOT NULL, applied_at " + TYPES[store.dialect]["real"] + " NOT NULL)")
        done = {int(dict(r)["version"]) for r in run("SELECT version FROM schema_version").fetchall()}
        for version, name, sql in available():
            if version in done:
                continue
            parts = statements(sql, store.dialect)
            if store.dialect == "postgresql":
                run(";\n".join(parts))                  # one round trip for the whole file
            else:
                for statement in parts:
                    run(statement)
            run("INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, time.time()))
            applied_now.append(version)
    return applied_now

