"""Fax images at rest: AES-256-GCM in 64 KiB chunks, and the service's key.

File format, version 1 (all integers big-endian)::

    header  = b"XMFE" | version (1 byte, 1) | chunk size (4 bytes) | salt (16) | nonce prefix (8)
    chunk i = AES-GCM(file key, nonce = prefix | i (4 bytes), plaintext[i], aad)   # ciphertext + 16-byte tag
    aad     = header | len(file id) (2) | file id | i (8 bytes) | last (1 byte: 1 on the final chunk)

The file key is HKDF-SHA256(master key, salt, info=b"xmfax file v1"): every file has its own
key, so nonces never repeat under one key even across millions of files. Binding the chunk
index, the last-chunk flag and the file id into each chunk's associated data is the STREAM
construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online Authenticated-Encryption and its
Nonce-Reuse Misuse-Resistance", CRYPTO 2015): a reordered, dropped, truncated, extended or
swapped-in (another file's) chunk fails authentication and raises `CryptoError`.
An empty file is one empty final chunk.
"""
from __future__ import annotations

import base64
import binascii
import os
import secrets
import struct
import tempfile
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"XMFE"
VERSION = 1
CHUNK = 64 * 1024
TAG = 16
KEY_BYTES = 32
_HEADER = struct.Struct(">4sBI16s8s")
HEADER_SIZE = _HEADER.size          # 33
MAX_CHUNKS = 2**32                  # the counter is 32 bits of the 96-bit GCM nonce (NIST SP 800-38D §8.2.1)


class CryptoError(Exception):
    """A file that is not ours, was altered, truncated or swapped, or a wrong key."""


class KeyConfigError(ValueError):
    """The configured key is unusable (bad base64, wrong length, unreadable key file)."""


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _file_key(master: bytes, salt: bytes) -> AESGCM:
    if len(master) != KEY_BYTES:
        raise CryptoError(f"key: {len(master)} bytes, need {KEY_BYTES}")
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=b"xmfax file v1").derive(master)
    return AESGCM(key)


def _aad(header: bytes, file_id: bytes, index: int, last: bool) -> bytes:
    return header + struct.pack(">H", len(file_id)) + file_id + struct.pack(">QB", index, 1 if last else 0)


def _chunks(source: bytes | Path):
    """Yield (chunk, is_last) over bytes or a file, reading one chunk ahead."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source)
        if len(view) == 0:
            yield b"", True
            return
        for start in range(0, len(view), CHUNK):
            yield bytes(view[start:start + CHUNK]), start + CHUNK >= len(view)
        return
    with open(source, "rb") as f:
        current = f.read(CHUNK)
        while True:
            following = f.read(CHUNK) if len(current) == CHUNK else b""
            yield current, not following
            if not following:
                return
            current = following


def encrypt_stream(key: bytes, file_id: str, source: bytes | Path, out) -> None:
    """Write the sealed form of `source` to the binary file object `out`."""
    salt, prefix = secrets.token_bytes(16), secrets.token_bytes(8)
    header = _HEADER.pack(MAGIC, VERSION, CHUNK, salt, prefix)
    aead = _file_key(key, salt)
    fid = file_id.encode()
    out.write(header)
    for index, (chunk, last) in enumerate(_chunks(source)):
        if index >= MAX_CHUNKS:
            raise CryptoError("file too large for one nonce prefix")
        nonce = prefix + struct.pack(">I", index)
        out.write(aead.encrypt(nonce, chunk, _aad(header, fid, index, last)))


def encrypt_bytes(key: bytes, file_id: str, data: bytes) -> bytes:
    import io
    buf = io.BytesIO()
    encrypt_stream(key, file_id, data, buf)
    return buf.getvalue()


def decrypt_bytes(key: bytes, file_id: str, blob: bytes) -> bytes:
    if len(blob) < HEADER_SIZE:
        raise CryptoError("truncated header")
    header = blob[:HEADER_SIZE]
    magic, version, chunk, salt, prefix = _HEADER.unpack(header)
    if magic != MAGIC:
        raise CryptoError("not an xmfax encrypted file")
    if version != VERSION:
        raise CryptoError(f"unknown format version {version}")
    if chunk != CHUNK:
        raise CryptoError(f"unexpected chunk size {chunk}")
    aead = _file_key(key, salt)
    fid = file_id.encode()
    body = memoryview(blob)[HEADER_SIZE:]
    if len(body) < TAG:
        raise CryptoError("truncated: no chunk")
    sealed = CHUNK + TAG
    out = bytearray()
    index = 0
    pos = 0
    while True:
        part = body[pos:pos + sealed]
        pos += len(part)
        last = pos >= len(body)
        if len(part) < TAG:
            raise CryptoError(f"truncated chunk {index}")
        try:
            out += aead.decrypt(prefix + struct.pack(">I", index), bytes(part), _aad(header, fid, index, last))
        except InvalidTag:
            raise CryptoError(f"chunk {index}: authentication failed (altered, truncated, "
                              "reordered, another file's, or a wrong key)") from None
        if last:
            return bytes(out)
        index += 1


def write_encrypted(path: Path, key: bytes, file_id: str, source: bytes | Path) -> None:
    """Seal `source` into `path` atomically: a temp file in the same folder, fsync, rename,
    fsync of the folder. A crash leaves either the old file or the new one, never half."""
    path = Path(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)         # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            encrypt_stream(key, file_id, source, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_encrypted(path: Path, key: bytes, file_id: str) -> bytes:
    return decrypt_bytes(key, file_id, Path(path).read_bytes())


# ---------------------------------------------------------------- the service's key

def decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise KeyConfigError(f"{where}: not base64") from None
    if len(key) != KEY_BYTES:
        raise KeyConfigError(f"{where}: {len(key)} bytes, need {KEY_BYTES} (base64 of 32 random bytes)")
    return key


def load_key(config) -> bytes:
    """The master key: `encryption_key` (base64 of 32 bytes) when set, else the key file
    (`key_file`, default data_dir/key). The default key file, when missing, is created, mode
    0600, holding a fresh random key (a missing explicit key_file is an error); two nodes starting at once agree on one (link(2) of a finished
    temp file: the loser reads the winner's)."""
    text = getattr(config, "encryption_key", "") or ""
    if text:
        return decode_key(text, "encryption_key")
    explicit = getattr(config, "key_file", "") or ""
    path = Path(explicit) if explicit else Path(config.data_dir) / "key"
    if explicit and not path.exists():
        # a named key file that is not there is a mistake (a wrong path, an unmounted
        # volume): making a fresh key would make every stored fax unreadable
        raise KeyConfigError(f"key_file {path}: no such file (only the default data_dir/key is created)")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".key-", dir=path.parent)     # mode 0600
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(base64.b64encode(generate_key()) + b"\n")
                f.flush()
                os.fsync(f.fileno())
            try:
                os.link(tmp, path)       # atomic create-if-absent: never a half-written key
            except FileExistsError:
                pass                     # another node made it first: use theirs
        finally:
            os.unlink(tmp)
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeyConfigError(f"key_file {path}: {exc.strerror}") from None
    return decode_key(text, f"key_file {path}")
