"""The inbound spool folder: what a call leaves on disk, and reading it back after a crash.

Each node's receivers write into ``DATA/spool/inbound/NODE`` (:mod:`xmfax.storage`): a
fax grows in ``fax-YYYYmmdd-HHMMSS-RANDOM.tif.part`` (each page linked in only once it is
written whole and fsync'd), then becomes ``.tif`` (+ ``.pdf``) with its record ``.json``.
:mod:`xmfax.server.inbound` moves them into the encrypted store when the call ends; these
helpers read what a killed node left.
"""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

from ..record import FaxResult

SUFFIXES = (".tif.part", ".tif", ".pdf", ".json")


_STAMP = re.compile(r"fax-(\d{8}-\d{6})-[0-9a-f]+$")


def base_of(path: str) -> str:
    """A spool file's name without its suffix (``.../fax-...-abc.tif.part`` -> ``.../fax-...-abc``)."""
    for suffix in SUFFIXES:
        if path.endswith(suffix):
            return path[: -len(suffix)]
    return path


def groups(spool: Path) -> dict[str, set[str]]:
    """The faxes in a spool folder: base path -> the suffixes present (``.tmp`` leftovers of
    an unfinished PDF or record are removed: they are rewritten from the TIFF)."""
    found: dict[str, set[str]] = {}
    for entry in os.scandir(spool):
        name = entry.path
        if name.endswith(".tmp") and os.path.basename(name).startswith("fax-"):
            os.unlink(name)
            continue
        for suffix in SUFFIXES:
            if name.endswith(suffix) and os.path.basename(name).startswith("fax-"):
                found.setdefault(name[: -len(suffix)], set()).add(suffix)
                break
    return found


def stamp_time(base: str) -> float | None:
    """When the call began, from the spool name (``fax-YYYYmmdd-HHMMSS-...``, local time)."""
    import datetime as _dt

    m = _STAMP.search(os.path.basename(base))
    if not m:
        return None
    return _dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").timestamp()


def closest(base: str, rows: list[dict]) -> dict | None:
    """The row of a spool file the node died before tying to it (between the first page's
    fsync and on_stored): the first untied call that began at or after the file's time
    stamp (the receiver's clock when it began waiting for that call, to the second). Two
    calls dying in that same instant could be swapped; neither is lost."""
    when = stamp_time(base)
    if when is None or not rows:
        return None
    after = [r for r in rows if r["created_at"] >= when - 2]
    return min(after, key=lambda r: r["created_at"]) if after else None


_BIG = dict(max_page_rows=1 << 24, max_source_pixels=1 << 40, max_ifds=1 << 20, max_pages=1 << 20,
            max_file_bytes=1 << 40)


def whole_pages(path: Path) -> list:
    """The pages of a spool TIFF that are whole: each page is linked into the file only once
    its strip and IFD are written (xmfax.document.tiffwriter), so the chain of IFDs is the
    stored pages; a page written half when the node died is not linked and not counted."""
    from ..document.limits import Limits
    from ..document.tiff import X_RESOLUTION, Y_RESOLUTION, decode_ifd, parse_tiff
    from ..errors import DocumentError
    from ..page import Page

    data = path.read_bytes()
    limits = Limits(**_BIG)
    try:
        ifds = parse_tiff(data, str(path), limits)
    except DocumentError:            # the header alone: the node died before page 1 was stored
        return []
    pages = []
    for ifd in ifds:
        try:
            decoded = decode_ifd(data, ifd, str(path), limits)
        except DocumentError:
            break
        x = ifd.read(X_RESOLUTION, float, default=204.0)
        y = ifd.read(Y_RESOLUTION, float, default=196.0)
        pages.append(Page(decoded.image, _resolution(x, y)))
    return pages


def _resolution(x: float, y: float):
    """The fax resolution nearest a page's dots per inch (as the spool's writer stored it)."""
    from ..page import Resolution

    return min(Resolution, key=lambda r: abs(r.x_dpi - x) + abs(r.y_dpi - y))


def count_pages(data: bytes) -> int:
    """How many pages a stored TIFF holds (0 when it holds none)."""
    from ..document.limits import Limits
    from ..document.tiff import parse_tiff
    from ..errors import DocumentError

    try:
        return len(parse_tiff(data, "stored fax", Limits(**_BIG)))
    except DocumentError:
        return 0


def encode(pages: list, pdf: bool) -> tuple[bytes, bytes | None]:
    """The recovered pages as a TIFF Class F (MMR) and, if asked, a PDF."""
    from ..document import save
    from ..document.tiffwriter import write_tiff

    tif = io.BytesIO()
    write_tiff(pages, tif, codec="mmr", description="received by xmfax (recovered after a restart)")
    out = None
    if pdf:
        buf = io.BytesIO()
        save(pages, buf, "pdf")
        out = buf.getvalue()
    return tif.getvalue(), out


def interrupted(pages: int, row: dict | None) -> FaxResult:
    """The record of a call the node did not live to finish."""
    from ..record import PageDetail

    row = row or {}
    text = "the node stopped during the call"
    if pages:
        text += f"; the {pages} page(s) stored whole before it are kept"
    return FaxResult(direction="receive", status="failure", reason="interrupted", reason_text=text,
                     pages=[PageDetail(number=i + 1) for i in range(pages)], local_id=row.get("csid") or "",
                     remote_id=row.get("remote_id") or "",
                     ani=row.get("ani"), dnis=row.get("dnis"), address=row.get("line") or "")


def remove(files: list[str], part: str | None) -> None:
    """Remove a fax's spool files (after they are in the store): the TIFF, PDF, record."""
    paths = set(files)
    if part:
        base = part[: -len(".tif.part")] if part.endswith(".tif.part") else part
        paths |= {base + s for s in SUFFIXES}
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
