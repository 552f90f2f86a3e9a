"""The REST API of ``xmfax serve``, under ``/restservice/``, and the HTTP server that
carries it (uvicorn, in the service's loop) together with the admin pages of web.py.

    POST   /restservice/sendfax                          multipart: metadata (XML) + attachments
    GET    /restservice/transactions?status=&direction=&broadcastId=&since=&limit=&offset=
    GET    /restservice/transactions/{id}                status, event log, notifications
    POST   /restservice/transactions/{id}/cancel         (also DELETE /restservice/transactions/{id})
    GET    /restservice/transactions/{id}/document?format=pdf|tiff
    GET    /restservice/broadcasts/{id}
    GET    /restservice/cdrs.csv?since=&until=

Every request carries an access token (``XM-Token-Authorization``, see tokens.py).
Replies follow ``Accept``: JSON (the default) or XML (``application/xml``/``text/xml``),
``{"success": "true", "successInfo": {...}}`` or, with a 4xx/5xx status,
``{"success": "false", "errorInfo": {"errorMsg": ..., "errorCode": ...}}``; the XML is
the same tree under ``<response>``. Nothing answers with a traceback: an unexpected
error is logged and answered ``internal`` (500).

Uploads are bounded before they are parsed: a Content-Length over
``[limits].max_upload_bytes`` is refused before a byte of the body is read, and a body
without one is counted while it streams in and refused the moment it passes the limit.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import io
import logging
import math
import os
import re
import socket
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import ConfigError
from .notify import NotifyConfig
from .submit import Document, SubmitError, submit
from .tokens import HEADER, TokenError, authorize, owner_of, sees_all
from . import xmlcontrol

log = logging.getLogger("xmfax.server.http")

PREFIX = "/restservice"
MB = 1024 * 1024
#: where a status code comes from, for errors raised by Starlette itself
HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 406: "not_acceptable",
              413: "too_large", 415: "unsupported_media_type"}
OUT_STATUSES = ("submitting", "queued", "sending", "sent", "failed", "cancelled", "interrupted")
IN_STATUSES = ("receiving", "received", "failed")
MAX_LIST = 1000


# --------------------------------------------------------------------------- config
@dataclass
class LimitsConfig:
    """``[limits]``: what one sendfax request may carry."""

    max_upload_bytes: int = 20 * MB
    max_attachments: int = 20
    max_recipients: int = 100
    max_notifications: int = 5          # destinations one control file may name (the schema allows 20)

    @classmethod
    def from_dict(cls, d: dict) -> "LimitsConfig":
        cfg = cls()
        for key, value in d.items():
            if key not in cls.__dataclass_fields__:
                raise ConfigError(f"[limits] {key}: unknown key (known: {', '.join(cls.__dataclass_fields__)})")
            if type(value) is not int or value < 1:
                raise ConfigError(f"[limits] {key}: a whole number >= 1, not {value!r}")
            setattr(cfg, key, value)
        return cfg


class ApiError(Exception):
    """A refusal: ``code`` is the errorCode, ``status`` the HTTP status."""

    def __init__(self, code: str, message: str, status: int):
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class _TooLarge(Exception):
    pass


# --------------------------------------------------------------------------- replies
def _accept_q(accept: str, candidates: tuple[str, ...]) -> float:
    """The best q the Accept header gives any of ``candidates`` (RFC 9110 §12.5.1)."""
    best = 0.0
    for item in accept.split(","):
        media, *params = [p.strip() for p in item.split(";")]
        media = media.lower()
        if not media:
            continue
        q = 1.0
        for p in params:
            k, _, v = p.partition("=")
            if k.strip().lower() == "q":
                try:
                    q = float(v)
                except ValueError:
                    q = 0.0
                if not math.isfinite(q) or not 0 <= q <= 1:
                    q = 0.0
        for c in candidates:
            major = c.split("/")[0]
            if media in (c, f"{major}/*", "*/*"):
                best = max(best, q)
    return best


def reply_format(request: Request) -> str | None:
    """"json", "xml", or None when Accept allows neither (406)."""
    accept = request.headers.get("accept", "")
    if not accept.strip():
        return "json"
    qj = _accept_q(accept, ("application/json",))
    qx = _accept_q(accept, ("application/xml", "text/xml"))
    if qj == 0 and qx == 0:
        return None
    return "xml" if qx > qj else "json"


_XML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _xml_text(value: Any) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return _NOT_XML_CHAR.sub("\ufffd", str(value))


def _xml_add(parent: ET.Element, key: str, value: Any) -> None:
    """JSON -> XML: a dict is an element of elements, a list repeats its key, None is empty."""
    if isinstance(value, list):
        for item in value:
            _xml_add(parent, key, item)
        return
    if _XML_NAME.fullmatch(key) and not key.lower().startswith("xml"):
        el = ET.SubElement(parent, key)
    else:
        el = ET.SubElement(parent, "entry", name=_xml_text(key))
    if isinstance(value, dict):
        for k, v in value.items():
            _xml_add(el, str(k), v)
    elif value is not None:
        el.text = _xml_text(value)


def to_xml(body: dict) -> bytes:
    root = ET.Element("response")
    for k, v in body.items():
        _xml_add(root, k, v)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def reply(request: Request, body: dict, status: int = 200, fmt: str | None = None) -> Response:
    fmt = fmt or reply_format(request) or "json"
    if fmt == "xml":
        return Response(to_xml(body), status_code=status, media_type="application/xml")
    return JSONResponse(body, status_code=status)


def success(request: Request, info: dict) -> Response:
    return reply(request, {"success": "true", "successInfo": info})


def failure(request: Request, code: str, message: str, status: int) -> Response:
    return reply(request, {"success": "false", "errorInfo": {"errorMsg": message, "errorCode": code}}, status)


# --------------------------------------------------------------------------- views
def iso(t: float | None) -> str | None:
    if t is None:
        return None
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def fax_summary(row: dict) -> dict:
    meta = row.get("metadata") or {}
    return {
        "transactionId": row["id"], "broadcastId": row.get("broadcast_id"), "direction": row["direction"],
        "status": row["status"], "reason": row.get("reason"), "reasonText": row.get("reason_text"),
        "number": row.get("number"), "recipientName": meta.get("recipient_name") or None,
        "ani": row.get("ani"), "dnis": row.get("dnis"), "csid": row.get("csid"),
        "remoteCsid": row.get("remote_id"), "line": row.get("line"), "pages": row.get("pages"),
        "attempts": row.get("attempts"), "maxAttempts": row.get("max_attempts"),
        "notifyStatus": row.get("notify_status"), "retentionDays": row.get("retention_days"),
        "createdAt": iso(row.get("created_at")), "updatedAt": iso(row.get("updated_at")),
        "scheduledAt": iso(row.get("scheduled_at")), "nextAttemptAt": iso(row.get("next_attempt_at")),
        "completedAt": iso(row.get("completed_at")), "expiresAt": iso(row.get("expires_at")),
        "purgedAt": iso(row.get("purged_at")),
    }


def fax_detail(row: dict, events: list[dict], notifications: list[dict], files: list[dict]) -> dict:
    out = fax_summary(row)
    out["events"] = {"event": [{"at": iso(e["at"]), "kind": e["kind"], "message": e["message"],
                                "data": e.get("data") or None} for e in events]}
    out["notifications"] = {"notification": [_notification(n) for n in notifications]}
    out["files"] = {"file": [{"kind": f["kind"], "name": f["name"], "size": f["size"]}
                             for f in files if f["kind"] in ("tiff", "pdf", "source")]}
    return out


def _notification(n: dict) -> dict:
    dest = n.get("destination") or {}
    return {"id": n["id"], "destination": dest.get("name") or None, "type": dest.get("type"),
            "target": _target(dest), "status": n["status"], "attempts": n.get("attempts"), "lastError": n.get("last_error"),
            "nextAttemptAt": iso(n.get("next_attempt_at")), "deliveredAt": iso(n.get("delivered_at"))}


def _target(dest: dict) -> str | None:
    """Where a notification goes, without secrets: the mail addresses, the webhook's
    scheme://host/path (no query, no credentials), the folder, the printer."""
    kind = dest.get("type")
    if kind == "email":
        to = dest.get("to") or []
        return ", ".join(to) if isinstance(to, list) else str(to)
    if kind == "webhook":
        from urllib.parse import urlsplit
        try:
            u = urlsplit(str(dest.get("url", "")))
            return f"{u.scheme}://{u.hostname or ''}{f':{u.port}' if u.port else ''}{u.path}"
        except ValueError:
            return None
    if kind == "folder":
        return str(dest.get("path", "")) or None
    if kind == "printer":
        return str(dest.get("printer", "")) or None
    return None


# --------------------------------------------------------------------------- the API
class Api:
    """The /restservice routes of one service."""

    def __init__(self, service: Any):
        self.service = service
        self.limits = LimitsConfig.from_dict(service.config.section("limits"))
        self.policy = NotifyConfig.from_dict(service.config.section("notify")).policy()

    def endpoint(self, action: str, *, file: bool = False) -> Callable:
        """Wrap a handler: the token checked for ``action``, every failure a reply.
        ``file``: the handler answers a file (PDF, TIFF, CSV), so Accept does not have
        to name JSON or XML (its errors are still JSON or XML)."""
        def wrap(handler: Callable[..., Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
            @functools.wraps(handler)
            async def run(request: Request) -> Response:
                fmt = reply_format(request)
                try:
                    if fmt is None and not file:
                        raise ApiError("not_acceptable", "Accept names neither application/json nor "
                                                         "application/xml", 406)
                    token = await self.service.db(authorize, self.service.store,
                                                  request.headers.get(HEADER), action)
                    return await handler(request, token)
                except (ApiError, SubmitError, TokenError) as exc:
                    return failure(request, exc.code, exc.message, exc.status)
                except Exception:   # noqa: BLE001 - logged here, never shown to the client
                    log.exception("%s %s failed", request.method, request.url.path)
                    return failure(request, "internal", "internal error (logged by the service)", 500)
            return run
        return wrap

    def routes(self) -> list[Route]:
        e = self.endpoint
        return [
            Route(f"{PREFIX}/sendfax", e("send")(self.sendfax), methods=["POST"]),
            Route(f"{PREFIX}/transactions", e("read")(self.list_faxes), methods=["GET"]),
            Route(f"{PREFIX}/transactions/{{fax_id}}", e("read")(self.transaction), methods=["GET"]),
            Route(f"{PREFIX}/transactions/{{fax_id}}", e("cancel")(self.cancel), methods=["DELETE"]),
            Route(f"{PREFIX}/transactions/{{fax_id}}/cancel", e("cancel")(self.cancel), methods=["POST"]),
            Route(f"{PREFIX}/transactions/{{fax_id}}/document", e("download", file=True)(self.document_file),
                  methods=["GET"]),
            Route(f"{PREFIX}/broadcasts/{{broadcast_id}}", e("read")(self.broadcast), methods=["GET"]),
            Route(f"{PREFIX}/cdrs.csv", e("cdrs", file=True)(self.cdrs_file), methods=["GET"]),
        ]

    # --- sendfax --------------------------------------------------------------------
    async def sendfax(self, request: Request, token: dict) -> Response:
        ctype = request.headers.get("content-type", "")
        if ctype.split(";")[0].strip().lower() != "multipart/form-data":
            raise ApiError("unsupported_media_type", "sendfax takes multipart/form-data (a metadata part and "
                                                     "attachments parts)", 415)
        limit = self.limits.max_upload_bytes
        length = request.headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                raise ApiError("bad_request", "Content-Length is not a number", 400)
            if int(length) > limit:
                raise ApiError("too_large", f"the request is {int(length)} bytes; at most {limit}", 413)
        form = None
        try:
            parser = MultiPartParser(request.headers, _bounded(request, limit),
                                     max_files=self.limits.max_attachments + 1, max_fields=8,
                                     max_part_size=xmlcontrol.MAX_METADATA_BYTES)
            # the documents stay in memory (at most the upload limit): a plaintext upload
            # never touches the disk, where the service keeps faxes only encrypted
            parser.spool_max_size = limit + 1
            form = await parser.parse()
            req = await self._request(form)
        except _TooLarge:
            raise ApiError("too_large", f"the request is larger than {limit} bytes", 413) from None
        except (MultiPartException, HTTPException) as exc:
            detail = getattr(exc, "message", None) or getattr(exc, "detail", "") or str(exc)
            if "too many files" in detail.lower():
                raise ApiError("too_many", f"at most {self.limits.max_attachments} attachments", 413) from None
            if "exceeded maximum size" in detail.lower() or "part exceeded" in detail.lower():
                raise ApiError("too_large", f"the metadata part is larger than {xmlcontrol.MAX_METADATA_BYTES} "
                                            f"bytes", 413) from None
            raise ApiError("bad_request", f"the multipart body cannot be read: {detail}", 400) from None
        finally:
            if form is not None:
                await form.close()
        req.token_id = token["id"]
        broadcast_id, ids = await submit(self.service, req)
        return success(request, {"broadcastId": broadcast_id, "transactionIds": {"transactionId": ids}})

    async def _request(self, form) -> Any:
        metadata, attachments = [], []
        for name, value in form.multi_items():
            if name == "metadata":
                metadata.append(value)
            elif name == "attachments":
                attachments.append(value)
            else:
                raise ApiError("bad_request", f"unknown part {name[:40]!r}: the parts are metadata and attachments",
                               400)
        if len(metadata) != 1:
            raise ApiError("bad_request", f"one metadata part (the XML control file) is required, "
                                          f"not {len(metadata)}", 400)
        if len(attachments) > self.limits.max_attachments:
            raise ApiError("too_many", f"{len(attachments)} attachments; at most {self.limits.max_attachments}", 413)
        data = await _part_bytes(metadata[0])
        req = await asyncio.to_thread(xmlcontrol.parse, data, max_recipients=self.limits.max_recipients)
        for i, part in enumerate(attachments, 1):
            blob = await _part_bytes(part)
            name = _file_name(part, i)
            if not blob:
                raise ApiError("bad_document", f"attachment {i} ({name}) is empty", 422)
            kind = _sniff(blob)
            if kind == "unknown":
                raise ApiError("unknown_attachment", f"attachment {i} ({name}) is not a PDF, TIFF, image or "
                                                     f"text document (judged by its content)", 422)
            ctype = part.content_type if isinstance(part, UploadFile) else "text/plain"
            req.documents.append(Document(name=name, data=blob, content_type=ctype or ""))
        if not req.documents:
            raise ApiError("no_documents", "no attachments part: add at least one document", 422)
        if len(req.notifications) > self.limits.max_notifications:
            raise ApiError("too_many", f"{len(req.notifications)} notification destinations; at most "
                                       f"{self.limits.max_notifications} per request ([limits] max_notifications)", 413)
        for i, dest in enumerate(req.notifications, 1):
            problem = self._destination_problem(dest)
            if problem:
                raise ApiError("invalid_metadata", f"metadata notification {i}: {problem}", 422)
        return req

    def _destination_problem(self, dest: dict) -> str | None:
        """Refuse now what could never be delivered later (the fax would end 'failed' to notify)."""
        if not dest.get("type"):                          # a configured destination: submit checks the name
            return self.policy.destination_problem(dest.get("name", ""))
        from .destinations import check_destination
        problem = check_destination(dest)
        if problem is None and dest["type"] == "webhook":
            problem = self.policy.webhook_problem(dest["url"])
        if problem is None and dest["type"] == "email":
            problem = next(filter(None, (self.policy.email_problem(a) for a in dest.get("to", []))), None)
        if problem is None and dest["type"] == "webhook":
            var = dest.get("secret_env") or self.service.config.section("notify").get("webhook_secret_env")
            if not var or not os.environ.get(var):
                problem = ("webhook: this service has no signing secret for webhooks "
                           "([notify] webhook_secret_env names an unset variable or none)")
        return problem

    # --- reading ----------------------------------------------------------------------
    async def _owned(self, token: dict) -> set[int] | None:
        """The token ids whose faxes ``token`` sees (its owner's), or None: every fax (admin)."""
        if sees_all(token):
            return None
        ids = set(await self.service.db(self.service.store.token_ids, owner_of(token)))
        ids.add(int(token["id"]))
        return ids

    async def _fax(self, fax_id: str, token: dict) -> dict:
        """The fax row, if this token may see it. Another owner's fax, or one sent without a
        token (inbound, email to fax) is not_found like a fax that does not exist: a token
        cannot learn that an id is in use."""
        row = await self.service.db(self.service.store.get_fax, fax_id) if _ID.fullmatch(fax_id) else None
        if row is not None:
            owned = await self._owned(token)
            if owned is not None and row.get("token_id") not in owned:
                row = None
        if row is None:
            raise ApiError("not_found", f"no transaction {fax_id[:40]!r}", 404)
        return row

    async def transaction(self, request: Request, token: dict) -> Response:
        return success(request, {"transaction": await self._detail(request.path_params["fax_id"], token)})

    async def _detail(self, fax_id: str, token: dict) -> dict:
        row = await self._fax(fax_id, token)
        store, db = self.service.store, self.service.db
        events, notifications, files = await asyncio.gather(
            db(store.events, fax_id), db(store.notifications, fax_id), db(store.files, fax_id))
        return fax_detail(row, events, notifications, files)

    async def broadcast(self, request: Request, token: dict) -> Response:
        bid = request.path_params["broadcast_id"]
        owned = await self._owned(token)
        rows = await self.service.db(self.service.store.list_faxes, broadcast_id=bid, limit=MAX_LIST,
                                     token_ids=None if owned is None else sorted(owned)) \
            if _ID.fullmatch(bid) else []
        if not rows:
            raise ApiError("not_found", f"no broadcast {bid[:40]!r}", 404)
        counts: dict[str, int] = {}
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        rows.sort(key=lambda r: (r["created_at"], r["id"]))
        return success(request, {"broadcastId": bid, "statusCounts": counts,
                                 "transactions": {"transaction": [fax_summary(r) for r in rows]}})

    async def list_faxes(self, request: Request, token: dict) -> Response:
        q = request.query_params
        unknown = set(q) - {"status", "direction", "broadcastId", "since", "limit", "offset"}
        if unknown:
            raise ApiError("bad_request", f"unknown query parameter {sorted(unknown)[0]!r}", 400)
        direction = q.get("direction") or None
        if direction not in (None, "in", "out"):
            raise ApiError("bad_request", "direction: in or out", 400)
        status = None
        if q.get("status"):
            status = q["status"].split(",")
            bad = [s for s in status if s not in OUT_STATUSES + IN_STATUSES]
            if bad:
                raise ApiError("bad_request", f"status {bad[0][:20]!r}: one of {', '.join(OUT_STATUSES + IN_STATUSES[:2])}",
                               400)
        limit = _int_param(q, "limit", 100, 1, MAX_LIST)
        offset = _int_param(q, "offset", 0, 0, 10**9)
        since = _time_param(q, "since")
        bid = q.get("broadcastId") or None
        owned = await self._owned(token)
        rows = await self.service.db(self.service.store.list_faxes, direction=direction, status=status,
                                     broadcast_id=bid, since=since, limit=limit, offset=offset,
                                     token_ids=None if owned is None else sorted(owned))
        return success(request, {"limit": limit, "offset": offset, "count": len(rows),
                                 "transactions": {"transaction": [fax_summary(r) for r in rows]}})

    async def cdrs_file(self, request: Request, token: dict) -> Response:
        q = request.query_params
        text = await self.service.db(self.service.store.cdr_csv, since=_time_param(q, "since"),
                                     until=_time_param(q, "until"))
        return Response(text, media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'})

    async def document_file(self, request: Request, token: dict) -> Response:
        fax_id = request.path_params["fax_id"]
        fmt = request.query_params.get("format", "pdf").lower()
        if fmt not in ("pdf", "tiff"):
            raise ApiError("bad_request", "format: pdf or tiff", 400)
        row = await self._fax(fax_id, token)
        if row.get("purged_at"):
            raise ApiError("not_found", f"transaction {fax_id}: its images were deleted (retention)", 404)
        try:
            data = await self.service.db(fax_image, self.service.store, fax_id, fmt)
        except FileNotFoundError:
            raise ApiError("not_found", f"transaction {fax_id} has no fax image (yet)", 404) from None
        media = "application/pdf" if fmt == "pdf" else "image/tiff"
        ext = "pdf" if fmt == "pdf" else "tif"
        return Response(data, media_type=media,
                        headers={"Content-Disposition": f'attachment; filename="{fax_id}.{ext}"'})

    # --- cancel -----------------------------------------------------------------------
    async def cancel(self, request: Request, token: dict) -> Response:
        fax_id = request.path_params["fax_id"]
        row = await self._fax(fax_id, token)
        if row["direction"] != "out":
            raise ApiError("conflict", "a received fax cannot be cancelled", 409)
        outbound = self.service.component("Outbound") if hasattr(self.service, "component") else None
        if outbound is not None:
            done = await outbound.cancel(fax_id)
        else:                                    # no queue runs on this node: only a queued row can go
            store = self.service.store
            done = await self.service.db(store.set_status, fax_id, "cancelled", expect=("queued",),
                                         reason="cancelled", reason_text="cancelled through the REST API")
            if done:
                await self.service.db(store.add_event, fax_id, "cancelled", "cancelled through the REST API")
        if not done:
            row = await self._fax(fax_id, token)
            raise ApiError("conflict", f"transaction {fax_id} is {row['status']}: it cannot be cancelled", 409)
        return success(request, {"transaction": await self._detail(fax_id, token)})


_ID = re.compile(r"[0-9a-f]{16}")


def fax_image(store: Any, fax_id: str, fmt: str) -> bytes:
    """The fax as TIFF (as stored) or PDF (stored, or made from the TIFF). Worker thread."""
    files = store.files(fax_id)
    for kind in (fmt, "tiff"):
        match = [f for f in files if f["kind"] == kind]
        if match:
            data = store.read_file(fax_id, kind, match[0]["name"])
            break
    else:
        raise FileNotFoundError(fax_id)
    if kind == fmt:
        return data
    from ..document import load, save
    pages = load(data, tolerant=True)          # a partly received fax: what decodes, as received
    out = io.BytesIO()
    save(pages, out, format="pdf")
    return out.getvalue()


def _int_param(q, name: str, default: int, lo: int, hi: int) -> int:
    value = q.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit() or not lo <= int(value) <= hi:
        raise ApiError("bad_request", f"{name}: a whole number from {lo} to {hi}", 400)
    return int(value)


def _time_param(q, name: str) -> float | None:
    value = q.get(name)
    if not value:
        return None
    try:
        return xmlcontrol.schedule_time(value)
    except ValueError:
        raise ApiError("bad_request", f"{name}: epoch seconds or an ISO 8601 date-time "
                                      f"(2026-12-03T18:00:00Z)", 400) from None


def _sniff(data: bytes) -> str:
    from ..document.load import sniff
    return sniff(data)


def _file_name(part: Any, i: int) -> str:
    name = part.filename if isinstance(part, UploadFile) else ""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = "".join(c for c in name if c.isprintable())[:100]
    return name or f"attachment-{i}"


async def _part_bytes(part: Any) -> bytes:
    if isinstance(part, UploadFile):
        return await part.read()
    return part.encode("utf-8")


async def _bounded(request: Request, limit: int) -> AsyncIterator[bytes]:
    """The request body, counted as it streams in: _TooLarge past ``limit`` bytes."""
    seen = 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge()
        yield chunk


# --------------------------------------------------------------------------- the app
def make_app(service: Any) -> Starlette:
    """The Starlette app: the REST API and (when web.py is there) the admin pages."""
    api = Api(service)
    routes: list = api.routes()
    try:
        from . import web
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.web":
            raise
        log.warning("the admin pages (xmfax.server.web) are not available")
    else:
        routes += web.routes(service)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if not request.url.path.startswith(PREFIX + "/") and request.url.path != PREFIX:
            return Response(str(exc.detail), status_code=exc.status_code, media_type="text/plain",
                            headers=getattr(exc, "headers", None))
        code = HTTP_CODES.get(exc.status_code, "bad_request")
        what = {404: f"no such resource: {request.url.path[:80]}",
                405: f"{request.method} is not allowed on {request.url.path[:80]}"}.get(exc.status_code, exc.detail)
        return failure(request, code, str(what), exc.status_code)

    async def crash(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed: %s", request.method, request.url.path, type(exc).__name__)
        if request.url.path.startswith(PREFIX):
            return failure(request, "internal", "internal error (logged by the service)", 500)
        return Response("internal error", status_code=500, media_type="text/plain")

    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error, Exception: crash})
    app.state.service = service
    return app


def _server_class():
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn's server without its signal handlers: the service owns SIGTERM/SIGINT."""

        def capture_signals(self):
            import contextlib
            return contextlib.nullcontext()
    return _Server


class HttpServer:
    """The service component: uvicorn serving make_app(service) on ``config.http``."""

    def __init__(self, service: Any):
        self.service = service
        self.app = make_app(service)
        self.server = None
        self.task: asyncio.Task | None = None
        self.sock: socket.socket | None = None

    async def start(self) -> None:
        import uvicorn

        host, port = self.service.config.http_host_port()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        self.sock = sock
        cfg = self.service.config
        tls = dict(ssl_certfile=cfg.tls_cert, ssl_keyfile=cfg.tls_key) if cfg.tls_cert else {}
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False,
                                server_header=False, timeout_graceful_shutdown=5, **tls)
        self.server = _server_class()(config)
        self.task = asyncio.get_running_loop().create_task(self.server.serve(sockets=[sock]), name="http")
        while not self.server.started:
            if self.task.done():
                exc = self.task.exception() if not self.task.cancelled() else None
                raise OSError(f"the HTTP server stopped at start: {exc or 'cancelled'}")
            await asyncio.sleep(0.01)
        bound = sock.getsockname()
        self.service.http_address = (bound[0], bound[1])

    async def stop(self) -> None:
        if self.server is None or self.task is None:
            return
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 10)
        except (asyncio.TimeoutError, Exception):   # noqa: BLE001 - stopping regardless
            self.server.force_exit = True
            self.task.cancel()
        finally:
            if self.sock is not None:
                self.sock.close()
            self.server = self.task = self.sock = None
