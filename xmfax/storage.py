"""Where received faxes go: the output folder, names that never collide, pages on disk.

The rules (issue #10, "nothing lost, nothing silently wrong"):

* The output folder is checked when a receiver starts, with a real probe file
  (created, written, fsync'd, removed): a path that is a file, a folder that cannot
  be created and a read-only file system are all errors before any call is answered.
* Every name is new: ``fax-<date>-<time>-<random>`` where the random part is 48 bits
  from :mod:`secrets`; the ``.tif.part`` a fax grows in is created with O_EXCL, and
  finished files are put in place with a hard link (which fails on an existing name)
  instead of a rename (which replaces it). Nothing here ever overwrites a file.
* A page counts as stored once it is written and fsync'd (:meth:`FaxFiles.store`, run
  in a worker thread); only then may the receiver confirm it to the far end. A page
  whose write fails is taken out of the file again, so the ``.tif`` holds exactly the
  pages stored whole, and the record lists exactly those pages.
* Pages are not kept in memory: each is encoded and written as it arrives; a PDF is
  made at the end from the stored TIFF, one page at a time.
"""
from __future__ import annotations

import datetime as _dt
import errno
import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from .errors import FaxError
from .page import Page, Resolution

__all__ = ["StorageError", "check_output_dir", "FaxFiles", "write_new", "publish"]


class StorageError(FaxError, OSError):
    """A received fax cannot be stored: the output folder is missing, not a folder,
    read-only or full. ``path`` names what could not be written."""

    def __init__(self, message: str, *, path: str | os.PathLike | None = None):
        super().__init__(f"{os.fspath(path)}: {message}" if path is not None else message)
        self.path = os.fspath(path) if path is not None else None
        self.reason = message


def _why(exc: BaseException) -> str:
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


def _token() -> str:
    """The random part of a fax's name (a test may replace it to force a collision)."""
    return secrets.token_hex(6)


def check_output_dir(path: str | os.PathLike) -> Path:
    """Create ``path`` if needed and prove we can write there; StorageError if not."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise StorageError("exists and is not a folder", path=folder) from None
    except OSError as exc:
        raise StorageError(f"cannot create the output folder: {_why(exc)}", path=folder) from exc
    if not folder.is_dir():
        raise StorageError("is not a folder", path=folder)
    probe = folder / f".xmfax-probe-{_token()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"xmfax")
            os.fsync(fd)
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot write in the output folder: {_why(exc)}", path=folder) from exc
    return folder


def _sync_dir(folder: Path) -> None:
    """fsync a folder, so the names created in it survive a crash (best effort: some
    file systems cannot open a folder for that)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def publish(tmp: str | os.PathLike, dest: str | os.PathLike) -> None:
    """Give the finished file ``tmp`` its name ``dest``, never replacing an existing
    file there (FileExistsError instead); ``tmp`` is gone afterwards."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # a file system without hard links: check, then rename (a narrow race we accept there)
        if os.path.lexists(dest):
            raise FileExistsError(errno.EEXIST, "file exists", os.fspath(dest)) from None
        os.rename(tmp, dest)
        return
    os.unlink(tmp)


def write_new(dest: Path, write: Callable[[Any], Any]) -> None:
    """Write a new file ``dest`` through a temporary one in the same folder (written,
    fsync'd, then published without replacing anything)."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".tmp")
    try:
        os.fchmod(fd, 0o644)                     # as the fax file (mkstemp makes it 0600)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        publish(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


_SUFFIXES = (".tif", ".pdf", ".json")


class FaxFiles:
    """The files of one received fax: a TIFF Class F growing in ``NAME.tif.part``,
    then ``NAME.tif`` / ``NAME.pdf`` and the record ``NAME.json``.

    :meth:`store` runs in a worker thread (one at a time, in page order); :meth:`close`
    too. Raises StorageError when the ``.part`` file cannot be created.
    """

    def __init__(self, directory: Path, formats: Sequence[str], codec: str, wall_start: float):
        from .document import TiffWriter

        self.directory = Path(directory)
        self.formats, self.codec = tuple(formats), codec
        self.when = _dt.datetime.fromtimestamp(wall_start).astimezone()
        self.stamp = self.when.strftime("%Y%m%d-%H%M%S")
        self.stored: list[int] = []              # page numbers on disk, in order
        self.resolutions: list[Resolution] = []
        self.error: str | None = None            # the first failure to store a page
        self.base, f = self._reserve()
        self.part = self.base.with_name(self.base.name + ".tif.part")
        self.writer = TiffWriter(f, when=self.when, description="received by xmfax", durable=True)
        self._file = f

    def _names_free(self, base: Path) -> bool:
        return not any(os.path.lexists(base.with_name(base.name + s)) for s in _SUFFIXES)

    def _new_base(self) -> Path:
        for _ in range(100):
            base = self.directory / f"fax-{self.stamp}-{_token()}"
            if self._names_free(base):
                return base
        raise StorageError("no free file name after 100 tries", path=self.directory)

    def _reserve(self) -> tuple[Path, Any]:
        for _ in range(100):
            base = self._new_base()
            part = base.with_name(base.name + ".tif.part")
            try:
                fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                continue                          # another receiver took it a moment ago
            except OSError as exc:
                raise StorageError(f"cannot create a file for the fax: {_why(exc)}", path=part) from exc
            _sync_dir(self.directory)             # the .part's name is as durable as its pages
            return base, os.fdopen(fd, "w+b", buffering=0)
        raise StorageError("no free file name after 100 tries", path=self.directory)

    # ------------------------------------------------------------------ pages (worker thread)
    def store(self, number: int, page: Page) -> None:
        """Encode ``page`` and append it to the TIFF, on disk (fsync) before returning.
        After a failure every later page fails too: a fax is never stored with a hole."""
        from .document.tiffwriter import default_k, encode_page

        if self.error is not None:
            raise StorageError(f"not stored: an earlier page failed ({self.error})", path=self.part)
        try:
            data = encode_page(page.image, self.codec, default_k(page.resolution))
            info = page.info or {}
            self.writer.add_encoded(data, width=page.width, rows=page.rows, resolution=page.resolution,
                                    codec=self.codec, fill_order=1, byte_aligned=self.codec != "mmr",
                                    bad_rows=info.get("bad_rows"),
                                    consecutive_bad_rows=info.get("consecutive_bad_rows"))
        except OSError as exc:
            self.error = f"page {number} could not be stored: {_why(exc)}"
            raise
        self.stored.append(number)
        self.resolutions.append(page.resolution)

    # ------------------------------------------------------------------ the end (worker thread)
    def close(self, result: Any) -> list[str]:
        """Finish the files for ``result`` (a FaxResult, updated in place: ``files``, and
        for a storage failure ``status``/``reason``); write the record. Returns the files."""
        problems: list[str] = [self.error] if self.error else []
        try:
            self.writer.close()              # page counts patched, fsync'd
        except OSError as exc:
            problems.append(f"could not finish {self.part.name}: {_why(exc)}")
        finally:
            self._file.close()
        files: list[str] = []
        if self.stored:
            tif = self._publish_tif()
            if tif is None:
                problems.append(f"could not name the fax file; its pages are in {self.part}")
                files.append(str(self.part))
            else:
                files.append(str(tif))
                if "pdf" in self.formats:
                    pdf = self.base.with_name(self.base.name + ".pdf")
                    try:
                        write_new(pdf, lambda f: self._write_pdf(tif, f))
                        files.append(str(pdf))
                    except (OSError, FaxError) as exc:
                        problems.append(f"could not write {pdf.name}: {_why(exc)}")
                if "tiff" not in self.formats and len(files) == 2:
                    tif.unlink()
                    files.remove(str(tif))
        else:
            self.part.unlink(missing_ok=True)
        stored = set(self.stored)
        result.pages = [p for p in result.pages if p.number in stored]
        result.files = files
        if problems:
            _storage_failure(result, "; ".join(problems))
        record = self.base.with_name(self.base.name + ".json")
        try:
            write_new(record, lambda f: f.write(result.to_json().encode()))
        except OSError as exc:
            print(f"xmfax: the record of fax {self.base.name} could not be written ({_why(exc)}): "
                  f"{result.summary()}", file=sys.stderr, flush=True)
        _sync_dir(self.directory)
        return files

    def _publish_tif(self) -> Path | None:
        for attempt in range(3):
            tif = self.base.with_name(self.base.name + ".tif")
            try:
                publish(self.part, tif)
                return tif
            except FileExistsError:
                self.base = self._new_base()   # a file appeared under our name: never replace it
            except OSError:
                return None
        return None

    def _write_pdf(self, tif: Path, f: Any) -> None:
        """The PDF from the stored TIFF, decoding one page at a time."""
        from .document.pdf import write_pdf

        write_pdf(_StoredPages(tif, self.resolutions), f, when=self.when, title="received by xmfax")


class _StoredPages:
    """The pages of a TIFF we wrote, as a sequence that decodes each page only when
    iterated (the PDF writer holds one page image at a time)."""

    def __init__(self, path: Path, resolutions: list[Resolution]):
        from .document.limits import Limits
        from .document.tiff import parse_tiff

        self.data = path.read_bytes()           # the code streams: small beside the images
        self.resolutions = resolutions
        self.limits = Limits(max_page_rows=1 << 24, max_source_pixels=1 << 40, max_ifds=1 << 20,
                             max_pages=1 << 20, max_file_bytes=1 << 40)
        self.ifds = parse_tiff(self.data, str(path), self.limits)
        self.source = str(path)

    def __len__(self) -> int:
        return len(self.ifds)

    def __iter__(self) -> Iterator[Page]:
        from .document.tiff import decode_ifd

        for ifd, resolution in zip(self.ifds, self.resolutions):
            decoded = decode_ifd(self.data, ifd, self.source, self.limits)
            yield Page(decoded.image, resolution)


def _storage_failure(result: Any, detail: str) -> None:
    """Mark ``result`` as a storage failure (keeping a line failure's own reason first)."""
    if result.status == "success" or result.reason in ("ok", "storage"):
        result.status, result.reason = "failure", "storage"
        result.reason_text = detail
    else:
        result.status = "failure"
        result.reason_text = f"{result.reason_text}; {detail}" if result.reason_text else detail
