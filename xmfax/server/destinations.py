"""Notification destinations: one deliverer per type (email, folder, printer, webhook).

Each deliverer is ``async deliver(service, fax, dest, attempt) -> str`` (a short success
note for the event log) and raises :class:`DeliveryError` with ``permanent=True`` when
retrying cannot help (a bad template, a missing program, a 4xx from a webhook) and
``permanent=False`` when it may (a full disk, a server down, a 5xx).

``fax`` is the store's row of the fax; ``dest`` is ``{"type": ..., "name": ..., **params}``.
The fax image is read from the store (decrypted in memory) and handed over as a PDF or as
TIFF-F (RFC 3949 profile S: MH coding, the T.37 simple-mode attachment). Nothing here
writes a decrypted image anywhere but where the destination says.
"""
from __future__ import annotations

import asyncio
import datetime as _dt
import email.utils
import errno
import hashlib
import hmac
import io
import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import jinja2
from jinja2.sandbox import SandboxedEnvironment

FORMATS = ("pdf", "tiff")
TYPES = ("email", "folder", "printer", "webhook")
# the keys each type accepts besides "type" and "name" (and the notifier's "max_attempts")
KEYS: dict[str, tuple[str, ...]] = {
    "email": ("to", "cc", "from", "subject", "body", "format", "headers"),
    "folder": ("path", "name_template", "format", "create"),
    "printer": ("printer", "server", "title", "format", "options", "timeout"),
    "webhook": ("url", "secret_env", "timeout", "include_events"),
}
COMMON_KEYS = ("type", "name", "max_attempts")

DEFAULT_SUBJECT = ("{% if direction == 'in' %}Fax from {{ remote_id or ani or 'unknown sender' }} "
                   "to {{ dnis or number }}: {{ pages or 0 }} page(s){% else %}Fax to {{ number }}: "
                   "{{ status }}{% if reason and status != 'sent' %} ({{ reason }}){% endif %}{% endif %}")
DEFAULT_BODY = """\
{% if direction == 'in' %}A fax was received{% else %}Your fax to {{ number }} was {{ status }}{% endif %}.

Transaction: {{ id }}
Status:      {{ status }}{% if reason %} ({{ reason }}{% if reason_text %}: {{ reason_text }}{% endif %}){% endif %}
Pages:       {{ pages or 0 }}
{% if direction == 'in' %}From:        {{ remote_id or '-' }} (caller {{ ani or 'unknown' }})
To:          {{ dnis or number }} (answered as {{ csid or '-' }})
{% else %}To:          {{ number }} ({{ remote_id or 'no remote id' }})
Attempts:    {{ attempts }}
{% endif %}Completed:   {{ completed or '-' }}
{% if link %}
{{ link }}
{% endif %}"""
DEFAULT_FILE_NAME = "{{ completed_compact }}-{{ direction }}-{{ number or 'unknown' }}-{{ id }}"
DEFAULT_TITLE = "fax {{ id }} from {{ remote_id or ani or 'unknown' }}"


class DeliveryError(Exception):
    """A delivery attempt failed; ``permanent`` says retrying cannot help.

    ``retry_after`` (seconds) is a hint from the far end (an HTTP Retry-After)."""

    def __init__(self, text: str, permanent: bool = False, *, retry_after: float | None = None):
        super().__init__(text)
        self.text = text
        self.permanent = permanent
        self.retry_after = retry_after


# -- destination checks --------------------------------------------------------

def check_destination(dest: dict) -> str | None:
    """What is wrong with a destination dict (``None`` when it can be delivered to)."""
    if not isinstance(dest, dict):
        return "a destination is a table of keys"
    kind = dest.get("type")
    if kind not in TYPES:
        return f"type {kind!r}: one of {', '.join(TYPES)}"
    extra = sorted(k for k in dest if k not in KEYS[kind] and k not in COMMON_KEYS)
    if extra:
        return f"{kind} destination: unknown key(s) {', '.join(extra)}"
    fmt = dest.get("format", "pdf")
    allowed = FORMATS + (("none",) if kind == "email" else ())
    if fmt not in allowed:
        return f"format {fmt!r}: one of {', '.join(allowed)}"
    ma = dest.get("max_attempts")
    if ma is not None and (not isinstance(ma, int) or isinstance(ma, bool) or ma < 1):
        return "max_attempts: a whole number >= 1"
    if kind == "email":
        headers = dest.get("headers", {})
        if not isinstance(headers, dict):
            return "email destination: 'headers' is a table of header fields"
        for hname, value in headers.items():
            # RFC 5322 §2.2: printable ASCII but ':'; the message's own structure is not for overriding
            if (not isinstance(hname, str) or not re.fullmatch(r"[!-9;-~]+", hname) or not isinstance(value, str)
                    or hname.lower() in _OWN_HEADERS or hname.lower().startswith("content-")):
                return f"email destination: header {hname!r} cannot be set"
        to = _addresses(dest.get("to"))
        if not to:
            return "email destination: 'to' needs at least one address"
        for addr in to + _addresses(dest.get("cc")):
            if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+", addr):
                return f"email destination: {addr!r} is not an address"
    elif kind == "folder":
        if not isinstance(dest.get("path"), str) or not dest["path"]:
            return "folder destination: 'path' (a folder) is required"
    elif kind == "printer":
        if not isinstance(dest.get("printer"), str) or not re.fullmatch(r"[^\s/#\x00-\x1f]{1,127}", dest["printer"]):
            return "printer destination: 'printer' (a CUPS queue name) is required"
        opts = dest.get("options", {})
        if not isinstance(opts, dict) or any(not isinstance(k, str) or not re.fullmatch(r"[\w.-]+", k) for k in opts):
            return "printer destination: 'options' is a table of CUPS option names and values"
    elif kind == "webhook":
        url = dest.get("url")
        if not isinstance(url, str) or not re.match(r"https?://[^\s/]+", url):
            return "webhook destination: 'url' (http:// or https://) is required"
    for key in ("subject", "body", "name_template", "title"):
        if key in dest:
            if not isinstance(dest[key], str):
                return f"{key}: a template string"
            try:
                _ENV.parse(dest[key])
            except jinja2.TemplateSyntaxError as exc:
                return f"{key}: template error line {exc.lineno}: {exc.message}"
    return None


_OWN_HEADERS = ("from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version",
                "x-xmfax-transaction")


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.split(",") if a.strip()]
    if isinstance(value, (list, tuple)):
        return [str(a).strip() for a in value if str(a).strip()]
    return []


# -- templates ------------------------------------------------------------------

_ENV = SandboxedEnvironment(autoescape=False, keep_trailing_newline=True)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _iso(t: float | None) -> str:
    if t is None:
        return ""
    return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _compact(t: float | None) -> str:
    if t is None:
        return "unknown"
    return _dt.datetime.fromtimestamp(float(t), _dt.timezone.utc).strftime("%Y%m%d-%H%M%S")


def json_field(value: Any, default: Any) -> Any:
    """A JSON column as the store may hand it: decoded already, or text; ``default`` for
    NULL or text that is not JSON."""
    if isinstance(value, (str, bytes)):
        try:
            return json.loads(value)
        except ValueError:
            return default
    return default if value is None else value


def template_fields(service, fax: dict) -> dict:
    """The names a subject/body/file-name/title template sees: the fax row and a few more."""
    fields = dict(fax)
    fields["metadata"] = json_field(fax.get("metadata"), {})
    for name in ("created", "completed", "scheduled", "updated"):
        fields[name] = _iso(fax.get(f"{name}_at"))
    fields["completed_compact"] = _compact(fax.get("completed_at") or fax.get("created_at"))
    base = (getattr(service.config, "public_url", "") or "").rstrip("/")
    fields["link"] = f"{base}/faxes/{fax['id']}" if base else ""
    fields["download_url"] = f"{base}/restservice/transactions/{fax['id']}/document?format=pdf" if base else ""
    return fields


def render(template: str, fields: dict, what: str) -> str:
    """Render a sandboxed template; a broken one is a permanent DeliveryError."""
    try:
        return _ENV.from_string(template).render(fields)
    except jinja2.TemplateError as exc:     # includes SecurityError from the sandbox
        raise DeliveryError(f"{what} template: {exc}", permanent=True) from exc


def safe_file_name(text: str, fallback: str) -> str:
    """A file name from template output: no path separators, no `..`, no control characters."""
    name = _CONTROL.sub("_", text).replace("/", "_").replace("\\", "_")
    name = re.sub(r"\.{2,}", "_", name).strip().lstrip(".-")
    name = name.encode("utf-8")[:180].decode("utf-8", "ignore")
    return name or fallback


# -- the fax image ----------------------------------------------------------------

async def _read(service, fax: dict, kind: str) -> bytes:
    try:
        return await service.db(service.store.read_file, fax["id"], kind)
    except FileNotFoundError:
        raise DeliveryError(f"fax {fax['id']} has no image to attach (none stored, or purged)",
                            permanent=True) from None


async def fax_document(service, fax: dict, fmt: str) -> bytes:
    """The fax as PDF or as TIFF Class F (MH) bytes, from the encrypted store (a stored PDF
    is used as is). A fax without an image (nothing received, or purged) is a permanent
    DeliveryError."""
    if fmt == "pdf":
        try:
            return await service.db(service.store.read_file, fax["id"], "pdf")
        except FileNotFoundError:
            pass
    tiff = await _read(service, fax, "tiff")

    def build() -> bytes:
        from ..document import load, save

        pages = load(tiff, tolerant=True)
        when = _dt.datetime.fromtimestamp(float(fax.get("completed_at") or fax.get("created_at") or time.time()),
                                          _dt.timezone.utc)
        out = io.BytesIO()
        # MH: the coding every fax TIFF reader takes (the mail's T.37 copy is made by the mailer)
        save(pages, out, fmt, codec="mh" if fmt == "tiff" else None, when=when, description=f"fax {fax['id']}")
        return out.getvalue()

    return await asyncio.to_thread(build)


def _file_suffix(fmt: str) -> str:
    return ".tif" if fmt == "tiff" else ".pdf"


# -- email -------------------------------------------------------------------------

async def deliver_email(service, fax: dict, dest: dict, attempt: int) -> str:
    fields = template_fields(service, fax)
    subject = _CONTROL.sub(" ", render(dest.get("subject", DEFAULT_SUBJECT), fields, "subject")).strip()
    body = render(dest.get("body", DEFAULT_BODY), fields, "body")
    to = _addresses(dest.get("to"))
    cc = _addresses(dest.get("cc"))
    from .mailer import MailError, attach_fax_tiff, new_message, send_mail

    msg = new_message()
    msg["Subject"] = subject or f"fax {fax['id']}"
    if dest.get("from"):
        msg["From"] = dest["from"]          # else the mailer's [smtp] from
    msg["To"] = ", ".join(to)
    if cc:
        msg["Cc"] = ", ".join(cc)
    msg["Date"] = email.utils.formatdate(usegmt=True)
    msg["Message-ID"] = email.utils.make_msgid(idstring=f"{fax['id']}.{attempt}", domain="xmfax")
    msg["X-XMFax-Transaction"] = fax["id"]
    for hname, value in dest.get("headers", {}).items():       # e.g. Auto-Submitted (RFC 3834 §5)
        # literal, not templates: a value may come from a mail's sender (In-Reply-To)
        msg[hname] = _CONTROL.sub(" ", value)
    msg.set_content(body)
    fmt = dest.get("format", "pdf")
    name = f"fax-{fax['id']}{_file_suffix(fmt)}"
    if fmt == "tiff":
        # T.37 simple mode (RFC 3965 §4): TIFF-FX profile S as image/tiff; application=faxbw
        tiff = await _read(service, fax, "tiff")
        await asyncio.to_thread(attach_fax_tiff, msg, tiff, name)
    elif fmt == "pdf":
        data = await fax_document(service, fax, fmt)
        msg.add_attachment(data, maintype="application", subtype="pdf", filename=name)
    try:
        await send_mail(service, msg)
    except MailError as exc:
        raise DeliveryError(f"mail to {', '.join(to)}: {exc}", permanent=not getattr(exc, "temporary", True)) from exc
    return f"mailed to {', '.join(to + cc)}" + (f" with {fmt.upper()}" if fmt != "none" else "")


# -- folder ------------------------------------------------------------------------

def write_new_file(folder: Path, name: str, data: bytes) -> Path:
    """Write ``data`` as ``folder/name`` atomically, never replacing a file: a name taken
    gets ``-1``, ``-2`` ... before its suffix. Readers never see a partial file."""
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem:
        stem, suffix = name, ""
    else:
        suffix = "." + suffix
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".xmfax-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        for n in range(10000):
            target = folder / (f"{stem}-{n}{suffix}" if n else f"{stem}{suffix}")
            try:
                os.link(tmp, target)            # fails with EEXIST: never overwrites
            except FileExistsError:
                continue
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                    raise
                # a file system without hard links: reserve the name, then replace our own empty file
                try:
                    os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except FileExistsError:
                    continue
                os.replace(tmp, target)
            break
        else:
            raise DeliveryError(f"folder {folder}: 10000 files named {name!r} already", permanent=True)
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return target
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


async def deliver_folder(service, fax: dict, dest: dict, attempt: int) -> str:
    fmt = dest.get("format", "pdf")
    folder = Path(os.path.expanduser(dest["path"]))
    name = safe_file_name(render(dest.get("name_template", DEFAULT_FILE_NAME), template_fields(service, fax),
                                 "name_template"), f"fax-{fax['id']}")
    if not name.lower().endswith((".pdf", ".tif", ".tiff")):
        name += _file_suffix(fmt)
    data = await fax_document(service, fax, fmt)

    def write() -> Path:
        if dest.get("create"):
            folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            raise DeliveryError(f"folder {folder} does not exist (or is not a folder)")
        return write_new_file(folder, name, data)

    try:
        path = await asyncio.to_thread(write)
    except OSError as exc:
        # a full disk, a share gone, a permission being fixed: all worth another try
        raise DeliveryError(f"folder {folder}: {exc.strerror or exc}") from exc
    return f"wrote {path}"


# -- printer -----------------------------------------------------------------------

async def deliver_printer(service, fax: dict, dest: dict, attempt: int) -> str:
    lp = shutil.which("lp")
    if lp is None:
        raise DeliveryError("printer: CUPS' lp is not installed (Debian package cups-client)", permanent=True)
    fmt = dest.get("format", "pdf")
    title = _CONTROL.sub(" ", render(dest.get("title", DEFAULT_TITLE), template_fields(service, fax), "title"))[:200]
    data = await fax_document(service, fax, fmt)
    argv = [lp]
    if dest.get("server"):                   # first: lp looks the queue up where -d stands
        argv += ["-h", str(dest["server"])]
    argv += ["-d", dest["printer"], "-t", title or f"fax {fax['id']}"]
    for key, value in sorted(dest.get("options", {}).items()):
        argv += ["-o", f"{key}={value}"]
    # no file argument: lp reads the job from stdin, so no decrypted copy touches the disk
    proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(data), float(dest.get("timeout", 60)))
    except asyncio.TimeoutError:
        raise DeliveryError(f"printer {dest['printer']}: lp did not finish in {dest.get('timeout', 60)} s") from None
    finally:
        if proc.returncode is None:            # timed out, or the notifier stopped: no stray lp
            proc.kill()
            await asyncio.shield(proc.wait())
    text = (err or out).decode("utf-8", "replace").strip()
    if proc.returncode != 0:
        # temporary: lp says "The printer or class does not exist" also when the scheduler is
        # down, and a queue can be added or restarted; max_attempts bounds the retries
        raise DeliveryError(f"printer {dest['printer']}: lp exit {proc.returncode}: {text or 'no message'}")
    return f"printer {dest['printer']}: {out.decode('utf-8', 'replace').strip() or 'queued'}"


# -- webhook -----------------------------------------------------------------------

#: the row goes whole (the receiver is the fax's owner) but for the queue's own bookkeeping
INTERNAL_FIELDS = ("claimed_by", "heartbeat_at", "next_attempt_at", "token_id")


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>`` of HMAC-SHA256 over ``timestamp + "." + body`` (the exact bytes sent)."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def webhook_body(service, fax: dict, events: list[dict], dest: dict, attempt: int, notification_id: Any) -> bytes:
    record = {k: v for k, v in fax.items() if k not in INTERNAL_FIELDS}
    record["metadata"] = json_field(fax.get("metadata"), {})
    payload = {
        "event": "fax.completed",
        "notification": notification_id,
        "attempt": attempt,
        "fax": record,
        "download_url": template_fields(service, fax)["download_url"] or None,
    }
    if dest.get("include_events", True):
        payload["events"] = [{"at": e.get("at"), "kind": e.get("kind"), "message": e.get("message")} for e in events]
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")


def _secret(service, dest: dict) -> bytes:
    var = dest.get("secret_env") or service.config.section("notify").get("webhook_secret_env")
    if not var:
        raise DeliveryError("webhook: no secret: set secret_env on the destination or [notify] webhook_secret_env",
                            permanent=True)
    value = os.environ.get(var)
    if not value:
        raise DeliveryError(f"webhook: environment variable {var} (the signing secret) is not set", permanent=True)
    return value.encode("utf-8")


_TLS: list = []


def _tls_context():
    """One verifying TLS context for every webhook (loading the CA store costs ~0.1 s)."""
    if not _TLS:
        import ssl

        _TLS.append(ssl.create_default_context())
    return _TLS[0]


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())


async def deliver_webhook(service, fax: dict, dest: dict, attempt: int, *, events: list[dict] | None = None,
                          notification_id: Any = None) -> str:
    import httpx

    secret = _secret(service, dest)
    if events is None:
        events = await service.db(service.store.events, fax["id"])
    body = webhook_body(service, fax, events, dest, attempt, notification_id)
    stamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "xmfax-serve",
        "X-XMFax-Timestamp": stamp,
        "X-XMFax-Signature": sign(secret, stamp, body),
        "X-XMFax-Transaction": fax["id"],
        "X-XMFax-Delivery": str(notification_id) if notification_id is not None else "",
    }
    timeout = float(dest.get("timeout", 30))
    if dest.get("name"):
        # configured by the admin ([[destinations]], the web page): goes where it says
        try:
            async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls_context()) as client:
                reply = await client.post(dest["url"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook {dest['url']}: {type(exc).__name__}: {exc}") from exc
    else:
        reply = await _post_pinned(service, dest, body, headers, timeout)
    code = reply.status_code
    if 200 <= code < 300:
        return f"webhook {dest['url']}: HTTP {code}"
    text = f"webhook {dest['url']}: HTTP {code} {reply.reason_phrase}"
    # RFC 9110 §15.5.9 (408) and RFC 6585 §4 (429): try again; other 4xx and 3xx will not change
    if code in (408, 429) or code >= 500:
        raise DeliveryError(text, retry_after=_retry_after(reply.headers.get("retry-after")))
    raise DeliveryError(text, permanent=True)


async def _post_pinned(service, dest: dict, body: bytes, headers: dict, timeout: float):
    """POST a webhook named in a request (no ``name``): its host resolved once, every address
    checked against [notify] (egress.pin), the connection made to a checked address with
    the name in Host and SNI, never through a proxy from the environment."""
    import httpx

    from .egress import EgressRefused, pin
    from .notify import NotifyConfig

    policy = NotifyConfig.from_dict(service.config.section("notify")).policy()
    problem = policy.webhook_problem(dest["url"])     # the config may have changed since submit
    if problem:
        raise DeliveryError(f"webhook {dest['url']}: refused: {problem}", permanent=True)
    try:
        targets = await pin(dest["url"], allow_private=policy.webhook_allow_private,
                            resolve=getattr(service, "webhook_resolver", None))  # tests only
    except EgressRefused as exc:
        raise DeliveryError(f"webhook {dest['url']}: refused: {exc.text}", permanent=True) from None
    except OSError as exc:                     # socket.gaierror: DNS down or the name gone; may come back
        raise DeliveryError(f"webhook {dest['url']}: cannot resolve: {exc}") from None
    last: Exception | None = None
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False, verify=_tls_context(),
                                 trust_env=False) as client:
        for target in targets:
            try:
                return await client.post(target.url, content=body, headers={**headers, **target.headers},
                                          extensions=target.extensions)
            except httpx.ConnectError as exc:  # this address is down: the next one of the same answer
                last = exc
            except httpx.HTTPError as exc:
                raise DeliveryError(f"webhook {dest['url']} ({target.address}): {type(exc).__name__}: {exc}") from exc
    raise DeliveryError(f"webhook {dest['url']}: {type(last).__name__}: {last}") from last


DELIVERERS: dict[str, Callable[..., Awaitable[str]]] = {
    "email": deliver_email,
    "folder": deliver_folder,
    "printer": deliver_printer,
    "webhook": deliver_webhook,
}


async def deliver(service, fax: dict, dest: dict, attempt: int, **extra) -> str:
    """Deliver ``fax`` to one destination; a bad destination is a permanent DeliveryError."""
    problem = check_destination(dest)
    if problem:
        raise DeliveryError(problem, permanent=True)
    fn = DELIVERERS[dest["type"]]
    if fn is deliver_webhook:
        return await fn(service, fax, dest, attempt, **extra)
    return await fn(service, fax, dest, attempt)
