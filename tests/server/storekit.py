"""Where a store keeps its sealed fax files, for tests that look at (or tamper with) them:
SQLite under ``data_dir/files``, PostgreSQL in the database (``file_blobs``), so nodes on
several machines share nothing but the database."""
from __future__ import annotations

from pathlib import Path


def sealed_files(store, data_dir: Path) -> dict[str, bytes]:
    """file id -> its sealed bytes, wherever the store keeps them."""
    if store.dialect == "postgresql":
        return {r["file_id"]: bytes(r["data"]) for r in store._rows("SELECT file_id, data FROM file_blobs")}
    return {p.stem: p.read_bytes() for p in (Path(data_dir) / "files").rglob("*.xmfe")}


def file_ids(store, fax_id: str) -> list[str]:
    return [r["id"] for r in store._rows("SELECT id FROM files WHERE fax_id = ? ORDER BY created_at", (fax_id,))]


def write_sealed(store, data_dir: Path, file_id: str, blob: bytes) -> None:
    """Replace a sealed file's bytes (a tampering test)."""
    if store.dialect == "postgresql":
        store._exec("UPDATE file_blobs SET data = ? WHERE file_id = ?", (blob, file_id))
    else:
        (path,) = (Path(data_dir) / "files").rglob(f"{file_id}.xmfe")
        path.write_bytes(blob)
