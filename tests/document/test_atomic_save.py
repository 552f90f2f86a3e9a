"""Issue #10, finding 5: a full disk never leaves a partial output file behind.

``save`` (and so ``xmfax convert``) writes beside the target and renames when complete:
the disk filling up mid-write leaves no file under the real name, and an existing file
keeps its old content whole. Tested with an injected ENOSPC and, when this process may
mount one, on a real 100 KB tmpfs.
"""
from __future__ import annotations

import errno
import importlib
import io
import os

import numpy as np
import pytest

from docsamples import fax_page
from xmfax import document
from xmfax.cli import main
from xmfax.errors import DocumentError
from xmfax.page import Page

save_module = importlib.import_module("xmfax.document.save")


class FullDisk(io.FileIO):
    """A file that takes ``room`` bytes, then fails every write with ENOSPC, as a full disk does."""

    room = 1000

    def write(self, b) -> int:
        n = len(b)
        if self.tell() + n > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(b)


@pytest.fixture
def full_disk(monkeypatch):
    monkeypatch.setattr(save_module, "_fdopen", lambda fd: FullDisk(fd, "w+b"))


def leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


PAGES = [fax_page(rows=300, seed=s) for s in range(3)]


@pytest.mark.parametrize("name", ["out.tif", "out.pdf", "out.png"])
def test_full_disk_leaves_no_file(tmp_path, full_disk, name):
    target = tmp_path / name
    with pytest.raises(DocumentError, match="No space left on device") as exc:
        document.save(PAGES, target)
    assert str(tmp_path) in str(exc.value)
    assert leftovers(tmp_path) == []                       # no out.*, no .part files


@pytest.mark.parametrize("name", ["out.tif", "out.pdf"])
def test_full_disk_keeps_the_old_file_whole(tmp_path, full_disk, name):
    target = tmp_path / name
    target.write_bytes(b"the previous document")
    with pytest.raises(DocumentError):
        document.save(PAGES, target)
    assert target.read_bytes() == b"the previous document"
    assert leftovers(tmp_path) == [name]


def test_png_pages_all_or_none(tmp_path, monkeypatch):
    """Several PNG pages: a failure on page 3 leaves none of them."""
    calls = []

    def fdopen(fd):
        calls.append(fd)
        return FullDisk(fd, "w+b") if len(calls) == 3 else os.fdopen(fd, "w+b")

    monkeypatch.setattr(save_module, "_fdopen", fdopen)
    with pytest.raises(DocumentError):
        document.save(PAGES, tmp_path / "p.png")
    assert leftovers(tmp_path) == []


def test_convert_on_a_full_disk(tmp_path, capsys, full_disk):
    src = tmp_path / "in.txt"
    src.write_text("hello\n" * 200)
    out = tmp_path / "fax.pdf"
    status = main(["convert", str(src), "-o", str(out)])
    _, err = capsys.readouterr()
    assert status == 3 and err.count("\n") == 1 and "No space left" in err
    assert leftovers(tmp_path) == ["in.txt"]


def test_save_replaces_atomically_and_keeps_the_umask(tmp_path):
    target = tmp_path / "out.tif"
    target.write_bytes(b"old")
    document.save(PAGES[:1], target)
    assert document.load(target)[0].rows == 300
    assert leftovers(tmp_path) == ["out.tif"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_missing_folder(tmp_path):
    with pytest.raises(DocumentError, match="cannot create"):
        document.save(PAGES, tmp_path / "gone" / "out.pdf")


@pytest.fixture
def small_tmpfs(tmpfs):
    return tmpfs("100k")


@pytest.mark.parametrize("name", ["out.tif", "out.pdf"])
def test_real_full_tmpfs(small_tmpfs, name):
    noise = np.random.default_rng(5).random((400, 1728)) < 0.3
    big = [Page(noise)] * 4                                      # about 1 MB of MH: does not fit
    target = small_tmpfs / name
    with pytest.raises(DocumentError, match="No space left on device"):
        document.save(big, target, codec="mh")
    assert leftovers(small_tmpfs) == []
    document.save(PAGES[:1], target, codec="mmr")                # and a file that fits is written
    assert leftovers(small_tmpfs) == [name]
