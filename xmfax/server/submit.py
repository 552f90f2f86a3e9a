"""Submitting a fax: a request (from the REST API or a mail) becomes queued transactions.

``await submit(service, SendRequest(...)) -> (broadcast_id, [transaction_id, ...])``:

1. everything is checked before anything is stored: recipients (each number normalised
   to E.164, ``invalid_number``), documents (``no_documents``), options
   (``invalid_metadata``), named notification destinations (they must exist);
2. the documents are rendered once, in a worker thread, under the document limits and a
   wall-clock budget (``bad_document`` for anything xmfax.document refuses: hostile or
   broken files are DocumentErrors there, never crashes); a cover sheet (per recipient:
   its name and number) goes first and the header line (sender CSID and name) on every page;
3. per recipient one ``faxes`` row (status ``queued``, one broadcast id for all), the
   pages as a TIFF Class F (MMR) and every source document, both encrypted by the store,
   and ``submitted``/``queued`` events. A row is made while its files are stored with
   status ``submitting`` and only then ``queued``, so no node can claim a fax whose pages
   are not there yet (a node killed in between leaves ``submitting`` rows, which the
   outbound queue's recovery marks ``failed``: the client never got their ids);
4. ``service.wake("outbound")``.

The request's notification destinations are kept in the row's metadata; the outbound
queue hands them to ``notify.enqueue`` when the fax is finished (sent, failed, cancelled
or interrupted).
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import io
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import DocumentError
from . import e164

log = logging.getLogger("xmfax.server.submit")

__all__ = ["Recipient", "Document", "SendRequest", "SubmitError", "submit", "render"]

RESOLUTIONS = ("standard", "fine", "superfine")
COVER_FIELDS = ("to", "to_fax", "sender", "sender_fax", "subject", "note")
MAX_ATTEMPTS = 20                 # per fax; more is a typo, not a policy
MAX_SCHEDULE_AHEAD = 366 * 86400  # a schedule further out than a year is refused
MAX_CSID = 20                     # T.30 §5.3.6.2.4: the TSI/CSID is 20 characters
CSID_CHARS = "0123456789+ "       # Table 3/T.30
SUBMITTING = "submitting"         # a row whose files are being stored: not claimable yet


@dataclass
class Recipient:
    number: str
    name: str = ""
    company: str = ""


@dataclass
class Document:
    name: str
    data: bytes
    content_type: str = ""


@dataclass
class SendRequest:
    recipients: list[Recipient]
    documents: list[Document]
    csid: str = ""
    sender_name: str = ""
    cover: dict | None = None            # CoverSheet fields: subject, note, sender, sender_fax ...
    resolution: str = "fine"
    schedule_at: float | None = None
    max_attempts: int = 3
    retry_delay: float | None = None     # None: [outbound].retry_delays; a number: that, doubling per retry
    notifications: list[dict] = field(default_factory=list)
    retention_days: int | None = None
    token_id: int | None = None
    sender: str = ""


class SubmitError(Exception):
    """A request refused before anything was queued: ``code`` is the REST errorCode,
    ``status`` the HTTP status, ``message`` what was wrong."""

    def __init__(self, code: str, message: str, status: int = 422):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


# --------------------------------------------------------------------------- checks
def _default_country(service: Any) -> str:
    from .outbound import OutboundConfig

    comp = service.component("Outbound") if hasattr(service, "component") else None
    if comp is not None:
        return comp.config.default_country
    return OutboundConfig.from_dict(service.config.section("outbound")).default_country


def _check(req: SendRequest, default_country: str, now: float) -> list[str]:
    """The recipients' E.164 numbers; SubmitError for the first thing wrong."""
    if not req.recipients:
        raise SubmitError("invalid_metadata", "no recipient: give at least one fax number")
    numbers = []
    for i, r in enumerate(req.recipients, 1):
        try:
            numbers.append(e164.normalise(r.number, default_country))
        except ValueError as exc:
            raise SubmitError("invalid_number", f"recipient {i}: {exc}") from None
    if not req.documents:
        raise SubmitError("no_documents", "no document to send: add at least one attachment")
    for d in req.documents:
        if not d.data:
            raise SubmitError("bad_document", f"document {d.name!r} is empty")
    if req.resolution not in RESOLUTIONS:
        raise SubmitError("invalid_metadata", f"resolution {req.resolution!r}: one of {', '.join(RESOLUTIONS)}")
    if type(req.max_attempts) is not int or not 1 <= req.max_attempts <= MAX_ATTEMPTS:
        raise SubmitError("invalid_metadata", f"retries: max attempts {req.max_attempts!r} must be 1..{MAX_ATTEMPTS}")
    if req.retry_delay is not None and not (_finite(req.retry_delay) and 0 <= req.retry_delay <= 86400):
        raise SubmitError("invalid_metadata", f"retry delay {req.retry_delay!r}: 0..86400 seconds")
    if req.schedule_at is not None:
        if not _finite(req.schedule_at):
            raise SubmitError("invalid_metadata", f"schedule {req.schedule_at!r}: not a time")
        if req.schedule_at > now + MAX_SCHEDULE_AHEAD:
            raise SubmitError("invalid_metadata", "schedule: more than a year ahead")
    if len(req.csid) > MAX_CSID or req.csid.strip(CSID_CHARS):
        raise SubmitError("invalid_metadata", f"sender CSID {req.csid!r}: at most {MAX_CSID} characters, "
                          "digits, '+' and spaces (Table 3/T.30)")
    rd = req.retention_days
    if rd is not None and (type(rd) is not int or not (rd == 0 or 7 <= rd <= 36500)):
        raise SubmitError("invalid_metadata", f"retention {rd!r} days: 0 (zero retention) or 7 and more")
    for key in (req.cover or {}):
        if key not in COVER_FIELDS:
            raise SubmitError("invalid_metadata", f"cover sheet field {key!r}: one of {', '.join(COVER_FIELDS)}")
    from .destinations import check_destination
    for i, dest in enumerate(req.notifications, 1):
        if not isinstance(dest, dict) or not (dest.get("name") or dest.get("type")):
            raise SubmitError("invalid_metadata", f"notification {i}: name a configured destination or give a type")
        why = check_destination(dest) if dest.get("type") else None
        if why:
            raise SubmitError("invalid_metadata", f"notification {i}: {why}")
    return numbers


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


# --------------------------------------------------------------------------- rendering
def render(req: SendRequest, numbers: list[str], when: _dt.datetime) -> tuple[list[bytes], int]:
    """The fax of each recipient as TIFF Class F (MMR) bytes, and the page count.
    Runs in a worker thread; DocumentError for a document xmfax cannot send.

    The documents are decoded once under one Budget (the document limits, and a wall
    clock); without a cover sheet every recipient gets the same bytes."""
    from ..api import load_documents
    from ..document import Budget, CoverSheet, DEFAULT_LIMITS, HeaderLine, load, save

    budget = Budget(DEFAULT_LIMITS, time.monotonic)
    body = []
    for doc in req.documents:
        try:
            body.extend(load(doc.data, resolution=req.resolution, budget=budget))
        except DocumentError as exc:
            raise DocumentError(f"{doc.name or 'document'}: {exc}") from None
    header = HeaderLine(ident=req.csid, name=req.sender_name)

    def encode(cover: Any) -> tuple[bytes, int]:
        pages = load_documents(body, header=header, cover=cover, local_id=req.csid, when=when)
        out = io.BytesIO()
        save(pages, out, format="tiff", codec="mmr", when=when.replace(tzinfo=None),
             description="xmfax serve")
        return out.getvalue(), len(pages)

    if req.cover is None:
        data, count = encode(None)
        return [data] * len(numbers), count
    out = []
    count = 0
    for r, number in zip(req.recipients, numbers):
        fields = {k: str(v) for k, v in req.cover.items()}
        fields.setdefault("to", ", ".join(x for x in (r.name, r.company) if x))
        fields.setdefault("to_fax", number)
        fields.setdefault("sender", req.sender_name)
        fields.setdefault("sender_fax", req.csid)
        data, count = encode(CoverSheet(**fields))
        out.append(data)
    return out, count


# --------------------------------------------------------------------------- submit
async def submit(service: Any, req: SendRequest) -> tuple[str, list[str]]:
    """Check, render and queue ``req``: (broadcast_id, one transaction id per recipient)."""
    now = time.time()
    numbers = _check(req, _default_country(service), now)
    store = service.store
    for i, dest in enumerate(req.notifications, 1):
        if dest.get("name") and not dest.get("type"):
            if await service.db(store.get_destination, dest["name"]) is None:
                raise SubmitError("invalid_metadata", f"notification {i}: no destination named {dest['name']!r}")
    when = _dt.datetime.now().astimezone()
    try:
        tiffs, page_count = await asyncio.to_thread(render, req, numbers, when)
    except DocumentError as exc:
        raise SubmitError("bad_document", str(exc)) from None
    except Exception as exc:    # noqa: BLE001 - a library's own refusal of odd input is still the document's
        log.exception("rendering %s", [d.name for d in req.documents])
        raise SubmitError("bad_document", f"cannot render the documents: {type(exc).__name__}: {exc}") from None
    due = max(now, req.schedule_at) if req.schedule_at is not None else now
    broadcast_id = secrets.token_hex(8)
    metadata = {
        "recipient_name": "", "recipient_company": "", "sender_name": req.sender_name,
        "cover": req.cover, "resolution": req.resolution, "retry_delay": req.retry_delay,
        "notifications": list(req.notifications), "documents": source_names(req.documents),
        "page_count": page_count,
    }
    ids: list[str] = []
    try:
        for r, number, tiff in zip(req.recipients, numbers, tiffs):
            meta = dict(metadata, recipient_name=r.name, recipient_company=r.company, recipient_input=r.number)
            # "submitting": no node claims it before its pages are stored
            fax_id = await service.db(
                store.create_fax, direction="out", status=SUBMITTING, broadcast_id=broadcast_id, number=number,
                dnis=number, csid=req.csid, pages=page_count, max_attempts=req.max_attempts,
                scheduled_at=req.schedule_at, retention_days=req.retention_days, token_id=req.token_id,
                sender=req.sender or None, metadata=meta)
            ids.append(fax_id)
            await service.db(_store_files, store, fax_id, tiff, req.documents)
            who = f"token {req.token_id}" if req.token_id is not None else (req.sender or "local")
            await service.db(store.add_event, fax_id, "submitted",
                             f"submitted by {who}: {page_count} page(s) from {len(req.documents)} document(s) "
                             f"to {number}", {"broadcast_id": broadcast_id, "documents": meta["documents"],
                                              "pages": page_count, "recipients": len(numbers)})
    except Exception as exc:
        log.exception("submit failed after %d of %d transactions", len(ids), len(numbers))
        for fax_id in ids:          # none of them was due yet: nothing was sent
            try:
                await service.db(store.complete_fax, fax_id, "failed", expect=(SUBMITTING,), reason="internal",
                                 reason_text=f"the submission could not be stored: {type(exc).__name__}")
            except Exception:    # noqa: BLE001 - the first error is the one reported
                log.exception("marking %s failed", fax_id)
        raise SubmitError("internal", "the fax could not be stored", 500) from None
    for fax_id in ids:
        when_text = "now" if due <= now else _dt.datetime.fromtimestamp(due, _dt.timezone.utc).isoformat(
            timespec="seconds")
        await service.db(store.set_status, fax_id, "queued", expect=(SUBMITTING,), next_attempt_at=due)
        await service.db(store.add_event, fax_id, "queued", f"queued, first attempt {when_text}",
                         {"next_attempt_at": due, "max_attempts": req.max_attempts})
    service.wake("outbound")
    return broadcast_id, ids


def _store_files(store: Any, fax_id: str, tiff: bytes, documents: list[Document]) -> None:
    store.put_file(fax_id, "tiff", tiff)
    for d, name in zip(documents, source_names(documents)):
        store.put_file(fax_id, "source", d.data, name=name)


def source_names(documents: list[Document]) -> list[str]:
    """The names the sources are stored under: each its own (two "scan.pdf" become
    "scan.pdf" and "scan (2).pdf"; an unnamed one "document-N")."""
    seen: set[str] = set()
    out = []
    for i, d in enumerate(documents, 1):
        name = d.name or f"document-{i}"
        stem, dot, ext = name.rpartition(".") if "." in name.lstrip(".") else (name, "", "")
        n = 1
        while name in seen:
            n += 1
            name = f"{stem} ({n}){dot}{ext}"
        seen.add(name)
        out.append(name)
    return out
