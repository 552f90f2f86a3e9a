"""AES-GCM files at rest (xmfax/server/crypto.py): round trips, and every way a sealed file
can be altered is detected; the key from config or a key file made on first start."""
from __future__ import annotations

import base64
import os
import stat
import struct
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given, settings, strategies as st

from xmfax.server import crypto
from xmfax.server.crypto import CHUNK, HEADER_SIZE, TAG, CryptoError

KEY = bytes(range(32))
SEALED = CHUNK + TAG


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 17])
def test_round_trip_bytes_and_file(tmp_path, size):
    data = os.urandom(size)
    blob = crypto.encrypt_bytes(KEY, "fax/1", data)
    chunks = max(1, -(-size // CHUNK))
    assert len(blob) == HEADER_SIZE + size + chunks * TAG
    assert crypto.decrypt_bytes(KEY, "fax/1", blob) == data
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    out = tmp_path / "a" / "b" / "sealed"
    crypto.write_encrypted(out, KEY, "fax/2", source)              # from a Path, streamed
    assert crypto.read_encrypted(out, KEY, "fax/2") == data
    assert [p.name for p in out.parent.iterdir()] == ["sealed"]    # no temp file left


def test_each_encryption_is_fresh():
    a, b = crypto.encrypt_bytes(KEY, "x", b"same"), crypto.encrypt_bytes(KEY, "x", b"same")
    assert a != b and a[:5] == b[:5] == b"XMFE\x01"


def _three_chunks():
    data = b"A" * CHUNK + b"B" * CHUNK + b"C" * 100
    return data, crypto.encrypt_bytes(KEY, "f", data)


def test_flipped_bit_detected_anywhere():
    data, blob = _three_chunks()
    for pos in (0, 6, 20, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + CHUNK, len(blob) - 1):
        bad = bytearray(blob)
        bad[pos] ^= 0x01
        with pytest.raises(CryptoError):
            crypto.decrypt_bytes(KEY, "f", bytes(bad))


def test_truncation_detected_at_a_chunk_boundary_and_inside():
    data, blob = _three_chunks()
    for end in (HEADER_SIZE + SEALED, HEADER_SIZE + 2 * SEALED, len(blob) - 1, HEADER_SIZE + 5, 10, 0):
        with pytest.raises(CryptoError):
            crypto.decrypt_bytes(KEY, "f", blob[:end])


def test_reordered_dropped_or_appended_chunks_detected():
    data, blob = _three_chunks()
    head, c0, c1, c2 = (blob[:HEADER_SIZE], blob[HEADER_SIZE:HEADER_SIZE + SEALED],
                        blob[HEADER_SIZE + SEALED:HEADER_SIZE + 2 * SEALED], blob[HEADER_SIZE + 2 * SEALED:])
    for body in (c1 + c0 + c2, c0 + c2, c1 + c2, c0 + c1 + c2 + c2, c0 + c0 + c2):
        with pytest.raises(CryptoError):
            crypto.decrypt_bytes(KEY, "f", head + body)


def test_swapped_file_or_chunk_from_another_file_detected():
    data, blob = _three_chunks()
    other = crypto.encrypt_bytes(KEY, "g", data)
    with pytest.raises(CryptoError):
        crypto.decrypt_bytes(KEY, "f", other)                        # the whole file of another id
    mixed = blob[:HEADER_SIZE + SEALED] + other[HEADER_SIZE + SEALED:]
    with pytest.raises(CryptoError):
        crypto.decrypt_bytes(KEY, "f", mixed)                        # one chunk from another file


def test_wrong_key_and_foreign_files():
    _, blob = _three_chunks()
    with pytest.raises(CryptoError, match="authentication"):
        crypto.decrypt_bytes(bytes(32), "f", blob)
    with pytest.raises(CryptoError, match="not an xmfax"):
        crypto.decrypt_bytes(KEY, "f", b"II*\x00" + blob[4:])
    with pytest.raises(CryptoError, match="version"):
        crypto.decrypt_bytes(KEY, "f", b"XMFE\x02" + blob[5:])
    with pytest.raises(CryptoError, match="chunk size"):
        crypto.decrypt_bytes(KEY, "f", blob[:5] + struct.pack(">I", 4096) + blob[9:])
    with pytest.raises(CryptoError, match="key"):
        crypto.encrypt_bytes(b"short", "f", b"x")


def test_failed_write_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "sealed"
    crypto.write_encrypted(path, KEY, "f", b"old")

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", broken_fsync)     # the disk fills mid-write
    with pytest.raises(OSError, match="No space"):
        crypto.write_encrypted(path, KEY, "f", b"new" * 1000)
    monkeypatch.undo()
    assert crypto.read_encrypted(path, KEY, "f") == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["sealed"]


def test_load_key_from_config_value():
    key = os.urandom(32)
    cfg = SimpleNamespace(encryption_key=base64.b64encode(key).decode(), key_file="", data_dir=Path("/nonexistent"))
    assert crypto.load_key(cfg) == key
    for bad, why in (("not base64!!", "base64"), (base64.b64encode(b"x" * 16).decode(), "16 bytes")):
        with pytest.raises(crypto.KeyConfigError, match=why):
            crypto.load_key(SimpleNamespace(encryption_key=bad, key_file="", data_dir=Path("/x")))


def test_key_file_created_0600_once_and_reused(tmp_path):
    cfg = SimpleNamespace(encryption_key="", key_file="", data_dir=tmp_path / "data")
    first = crypto.load_key(cfg)
    path = tmp_path / "data" / "key"
    assert len(first) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert crypto.load_key(cfg) == first                     # a restart reads the same key
    assert [p.name for p in path.parent.iterdir()] == ["key"]
    path.write_text("garbage")
    with pytest.raises(crypto.KeyConfigError, match="not base64"):
        crypto.load_key(cfg)


def test_explicit_key_file_must_exist(tmp_path):
    cfg = SimpleNamespace(encryption_key="", key_file=str(tmp_path / "mnt" / "fax.key"), data_dir=tmp_path)
    with pytest.raises(crypto.KeyConfigError, match="no such file"):
        crypto.load_key(cfg)
    assert not (tmp_path / "mnt").exists() and not (tmp_path / "key").exists()
    key = os.urandom(32)
    (tmp_path / "mnt").mkdir()
    (tmp_path / "mnt" / "fax.key").write_text(base64.b64encode(key).decode() + "\n")
    assert crypto.load_key(cfg) == key


def test_key_file_race_gives_one_key(tmp_path):
    cfg = SimpleNamespace(encryption_key="", key_file="", data_dir=tmp_path / "shared")
    keys, barrier = [], threading.Barrier(8)

    def load():
        barrier.wait()
        keys.append(crypto.load_key(cfg))

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(keys) == 8 and len(set(keys)) == 1


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3 * CHUNK // 2) | st.integers(0, 3).map(lambda n: b"\x5a" * (n * CHUNK)),
       where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7), file_id=st.text(max_size=40))
def test_property_round_trip_and_any_flipped_bit_refused(data, where, bit, file_id):
    blob = crypto.encrypt_bytes(KEY, file_id, data)
    assert crypto.decrypt_bytes(KEY, file_id, blob) == data
    bad = bytearray(blob)
    bad[int(where * len(bad))] ^= 1 << bit
    with pytest.raises(CryptoError):
        crypto.decrypt_bytes(KEY, file_id, bytes(bad))
    with pytest.raises(CryptoError):
        crypto.decrypt_bytes(KEY, file_id + "x", blob)
