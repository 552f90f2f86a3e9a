"""Email to fax: an SMTP listener that faxes mail sent to ``<number>@<fax domain>``.

``[mail2fax]`` turns it on (``listen = "HOST:PORT"``). The listener is aiosmtpd's SMTP
protocol in the service's own event loop. What it does, command by command:

* EHLO offers STARTTLS when ``tls_cert``/``tls_key`` are set (RFC 3207), and AUTH PLAIN/
  LOGIN (RFC 4954) once the session is encrypted (or at once with ``allow_plain_auth``).
* AUTH checks the login against ``[[mail2fax.auth]]`` users (scrypt password hashes; make
  one with :func:`hash_password`). With ``require_auth`` (the default) MAIL before AUTH
  is ``530 5.7.0``; a wrong password is ``535 5.7.8``.
* MAIL FROM must match ``allowed_senders`` (addresses or ``*@example.com`` patterns)
  and, for a user with its own ``senders``, those: else ``550 5.7.1``. The null sender
  ``<>`` is refused (mail2fax answers every fax with a report; a bounce is not a fax).
* RCPT TO must be ``<number>@<domain>`` with a number that normalises to E.164
  (xmfax.server.e164, the ``[outbound]`` default country): another domain is
  ``550 5.7.1`` (no relaying), a bad number ``550 5.1.3``; more than ``max_recipients``
  is ``452 4.5.3`` (RFC 5321 §4.5.3.1.10).
* DATA (at most ``max_message_bytes``, else ``552``): the From header must pass the same
  sender check; the text body (the plain part, or the HTML part as text) and every
  attachment of a faxable type (PDF, TIFF, PNG, JPEG, GIF, plain text) make one fax, sent
  to every recipient as one broadcast (one transaction per recipient). Anything that
  cannot be faxed is refused in the SMTP reply, before anything is queued: ``554 5.6.1``
  for an attachment type we do not fax, ``554 5.6.0`` for a document that does not
  render (a broken or hostile PDF ...). The sending MTA turns that into a bounce, so
  the sender learns at once; nothing half-accepted is left behind. ``250 2.0.0``
  names the broadcast and its transactions.
* With ``report = true`` each transaction carries an ``email`` notification back to the
  sender (``format = "none"``): when the fax is sent or has failed for good, the
  notifier mails the status report through ``[smtp]``, retried like any notification.

The body is the cover sheet's note (``body_as_cover``, up to ``COVER_LINES`` lines and
``COVER_CHARS`` characters; the subject is the cover's subject) or, when there is no
attachment or it is longer, a text page of its own. A signature after the ``-- `` line (RFC 3676 §4.3) is left out.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import email
import email.policy
import email.utils
import fnmatch
import hashlib
import hmac
import html.parser
import logging
import os
import re
import secrets
import ssl
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, AuthResult

from .config import ConfigError, parse_host_port

log = logging.getLogger("xmfax.server.mail2fax")

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
COVER_LINES = 30                 # a longer body gets a page of its own
COVER_CHARS = 2000               # (or one with very long lines)
AUTH_FAIL_DELAY = 0.5            # seconds before answering a failed AUTH (slows guessing)
_KEYS = ("listen", "domain", "allowed_senders", "auth", "require_auth", "tls_cert", "tls_key", "allow_plain_auth",
         "max_message_bytes", "max_recipients", "body_as_cover", "report", "hostname", "csid", "resolution",
         "max_attempts", "report_subject", "report_body", "timeout")
_USER_KEYS = ("name", "password_hash", "senders")

# What we fax, by declared content type -> the kind xmfax.document.load must sniff
FAXABLE = {
    "application/pdf": "pdf", "application/x-pdf": "pdf",
    "image/tiff": "tiff", "image/tif": "tiff",
    "image/png": "image", "image/jpeg": "image", "image/jpg": "image", "image/pjpeg": "image", "image/gif": "image",
    "text/plain": "text", "text/html": "html",
}
BY_SUFFIX = {".pdf": "application/pdf", ".tif": "image/tiff", ".tiff": "image/tiff", ".png": "image/png",
             ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".txt": "text/plain"}
# a generic type the sending mail program chose because it did not know better
GENERIC = ("application/octet-stream", "application/x-download", "binary/octet-stream")

REPORT_SUBJECT = ("Fax to {{ number }}: {{ status }}{% if status == 'sent' %} ({{ pages or 0 }} page(s))"
                  "{% elif reason %} ({{ reason }}){% endif %}")
REPORT_BODY = """\
{% if status == 'sent' %}Your fax to {{ number }} was sent: {{ pages or 0 }} page(s) delivered.
{% else %}Your fax to {{ number }} was NOT sent: {{ status }}{% if reason %} ({{ reason }}{% if reason_text %}: \
{{ reason_text }}{% endif %}){% endif %}.
{% endif %}
Transaction: {{ id }}
Status:      {{ status }}
Attempts:    {{ attempts }}
Remote fax:  {{ remote_id or '-' }}
Completed:   {{ completed or '-' }}
{% if link %}
{{ link }}
{% endif %}"""


# --------------------------------------------------------------------------- passwords
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """A password hash for ``[[mail2fax.auth]] password_hash``: ``scrypt$N$r$p$salt$hash``
    (base64 salt and key; hashlib.scrypt, RFC 7914). Make one with
    ``python3 -c 'from xmfax.server.mail2fax import hash_password as h; print(h(input()))'``."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${base64.b64encode(salt).decode()}${base64.b64encode(key).decode()}"


def _parse_hash(stored: str) -> tuple[int, int, int, bytes, bytes]:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != "scrypt":
        raise ValueError("not scrypt$N$r$p$salt$hash (make one with mail2fax.hash_password)")
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, key = base64.b64decode(parts[4], validate=True), base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        raise ValueError("scrypt$N$r$p$salt$hash with numbers and base64") from None
    if n < 2 or n & (n - 1) or n > 2 ** 20 or not 1 <= r <= 32 or not 1 <= p <= 16 or len(key) < 16 or not salt:
        raise ValueError("scrypt parameters out of range (N a power of 2 up to 2^20, r 1..32, p 1..16)")
    return n, r, p, salt, key


def verify_password(password: bytes | str, stored: str) -> bool:
    """True when ``password`` matches a :func:`hash_password` hash (constant-time compare)."""
    if isinstance(password, str):
        password = password.encode("utf-8")
    try:
        n, r, p, salt, key = _parse_hash(stored)
    except ValueError:
        return False
    got = hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=len(key), maxmem=256 * 1024 * 1024)
    return hmac.compare_digest(got, key)


# --------------------------------------------------------------------------- config
@dataclass
class MailUser:
    name: str
    password_hash: str
    senders: tuple[str, ...] = ()     # if set, the MAIL FROM/From this user may use


@dataclass
class Mail2FaxConfig:
    listen: str = ""                  # "" = no listener
    domains: tuple[str, ...] = ()     # [mail2fax] domain: one name or a list
    allowed_senders: tuple[str, ...] = ()
    users: dict[str, MailUser] = field(default_factory=dict)
    require_auth: bool = True
    tls_cert: str = ""
    tls_key: str = ""
    allow_plain_auth: bool = False
    max_message_bytes: int = DEFAULT_MAX_BYTES
    max_recipients: int = 50
    body_as_cover: bool = True
    report: bool = True
    hostname: str = ""                # the name in the 220 greeting; default this host's FQDN
    csid: str = ""                    # the sender CSID of mailed faxes ("" = the line's default)
    resolution: str = "fine"
    max_attempts: int = 3
    report_subject: str = REPORT_SUBJECT
    report_body: str = REPORT_BODY
    timeout: float = 300.0            # idle seconds before the server drops a session (RFC 5321 §4.5.3.2.7)

    @classmethod
    def from_dict(cls, d: dict) -> "Mail2FaxConfig":
        def bad(key: str, why: str) -> ConfigError:
            return ConfigError(f"[mail2fax] {key}: {why}")

        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise bad(unknown[0], f"unknown key (known: {', '.join(_KEYS)})")
        cfg = cls()
        for key in ("listen", "tls_cert", "tls_key", "hostname", "csid", "resolution", "report_subject", "report_body"):
            if key in d:
                if not isinstance(d[key], str):
                    raise bad(key, f"a string, not {d[key]!r}")
                setattr(cfg, key, d[key])
        for key in ("require_auth", "allow_plain_auth", "body_as_cover", "report"):
            if key in d:
                if not isinstance(d[key], bool):
                    raise bad(key, f"true or false, not {d[key]!r}")
                setattr(cfg, key, d[key])
        for key, low, high in (("max_message_bytes", 1024, 2 ** 31), ("max_recipients", 1, 1000),
                               ("max_attempts", 1, 20)):
            if key in d:
                v = d[key]
                if not isinstance(v, int) or isinstance(v, bool) or not low <= v <= high:
                    raise bad(key, f"a whole number {low}..{high}, not {v!r}")
                setattr(cfg, key, v)
        if "timeout" in d:
            t = d["timeout"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 1 <= t <= 3600:
                raise bad("timeout", f"seconds 1..3600, not {t!r}")
            cfg.timeout = float(t)
        if cfg.listen:
            parse_host_port(cfg.listen, "[mail2fax] listen")
        domains = d.get("domain", ())
        domains = [domains] if isinstance(domains, str) else domains
        if not isinstance(domains, (list, tuple)) or not all(isinstance(x, str) and _is_domain(x) for x in domains):
            raise bad("domain", f"a domain name (or a list of them), not {d.get('domain')!r}")
        cfg.domains = tuple(x.lower().rstrip(".") for x in domains)
        cfg.allowed_senders = _patterns(d.get("allowed_senders", []), "allowed_senders")
        users = d.get("auth", [])
        if not isinstance(users, list):
            raise bad("auth", "an array of tables: [[mail2fax.auth]] name = ..., password_hash = ...")
        for i, u in enumerate(users, 1):
            where = f"auth[{i}]"
            if not isinstance(u, dict):
                raise bad(where, "a table with name and password_hash")
            extra = sorted(set(u) - set(_USER_KEYS))
            if extra:
                raise bad(f"{where}.{extra[0]}", f"unknown key (known: {', '.join(_USER_KEYS)})")
            name, pw = u.get("name"), u.get("password_hash")
            if not isinstance(name, str) or not name or any(c.isspace() for c in name):
                raise bad(f"{where}.name", "a login name without spaces")
            if name in cfg.users:
                raise bad(f"{where}.name", f"{name!r} is given twice")
            if not isinstance(pw, str):
                raise bad(f"{where}.password_hash", "the output of mail2fax.hash_password(password)")
            try:
                _parse_hash(pw)
            except ValueError as exc:
                raise bad(f"{where}.password_hash", str(exc)) from None
            cfg.users[name] = MailUser(name, pw, _patterns(u.get("senders", []), f"{where}.senders"))
        from .submit import RESOLUTIONS
        if cfg.resolution not in RESOLUTIONS:
            raise bad("resolution", f"{cfg.resolution!r}: one of {', '.join(RESOLUTIONS)}")
        if bool(cfg.tls_cert) != bool(cfg.tls_key):
            raise bad("tls_key" if cfg.tls_cert else "tls_cert", "tls_cert and tls_key go together")
        for key in ("tls_cert", "tls_key"):
            path = getattr(cfg, key)
            if path and not os.path.isfile(path):
                raise bad(key, f"{path!r} does not exist")
        if cfg.listen:
            if not cfg.domains:
                raise bad("domain", "required with listen: the domain faxes are mailed to (+15551234567@DOMAIN)")
            if cfg.require_auth and not cfg.users:
                raise bad("auth", "require_auth is true but no [[mail2fax.auth]] user is configured")
            if cfg.require_auth and not cfg.tls_cert and not cfg.allow_plain_auth:
                raise bad("tls_cert", "AUTH is only offered after STARTTLS: give tls_cert and tls_key "
                                      "(or allow_plain_auth = true on a trusted network)")
            if not cfg.require_auth and not cfg.allowed_senders:
                raise bad("allowed_senders", "with require_auth = false, name who may send (anyone could "
                                             "otherwise fax at your cost)")
        return cfg

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls_cert:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.tls_cert, self.tls_key)
        return ctx


def _is_domain(text: str) -> bool:
    return bool(re.fullmatch(r"(?=.{1,253}\.?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                             r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?", text))


def _patterns(value, key: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(x, str) and "@" in x and not any(c.isspace() for c in x)
                                              for x in value):
        raise ConfigError(f"[mail2fax] {key}: a list of addresses or patterns like \"*@example.com\", not {value!r}")
    return tuple(x.lower() for x in value)


def sender_allowed(address: str, patterns: tuple[str, ...]) -> bool:
    """``address`` (case-insensitive) matches one of the address patterns (``*`` ``?``)."""
    address = address.lower()
    return any(fnmatch.fnmatchcase(address, p) for p in patterns)


# --------------------------------------------------------------------------- MIME -> documents
class MailContentError(Exception):
    """The message cannot be faxed: ``reply`` is the SMTP reply to give."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


@dataclass
class Extracted:
    subject: str = ""
    from_addresses: list[tuple[str, str]] = field(default_factory=list)   # (display name, address)
    message_id: str = ""
    body: str = ""
    attachments: list = field(default_factory=list)                        # submit.Document


class _HtmlText(html.parser.HTMLParser):
    """HTML to plain text: the text, line breaks at block elements, no script/style."""

    BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol", "blockquote",
             "pre", "hr", "section", "article", "header", "footer", "dt", "dd"}
    SKIP = {"script", "style", "head", "title"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")
        if tag == "li":
            self.out.append("* ")

    def handle_endtag(self, tag):
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.out.append(re.sub(r"[ \t\r\n]+", " ", data))

    def text(self) -> str:
        lines = [line.strip() for line in "".join(self.out).split("\n")]
        return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def html_to_text(markup: str) -> str:
    parser = _HtmlText()
    parser.feed(markup)
    parser.close()
    return parser.text()


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_MESSAGE_ID = re.compile(r"<[A-Za-z0-9!$&'*+\-/=?^_`|~.@\[\]]{3,250}>")     # RFC 5322 §3.6.4 msg-id (simplified)


def _clean_text(text: str) -> str:
    """Text fit for a page: no control characters, no signature, no trailing blank lines."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = text.split("\n")
    if "-- " in lines:                           # RFC 3676 §4.3: the signature separator
        lines = lines[:lines.index("-- ")]
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _part_text(part) -> str:
    try:
        text = part.get_content()
    except (LookupError, UnicodeError, ValueError, AssertionError):   # unknown charset, broken encoding
        raw = part.get_payload(decode=True) or b""
        text = raw.decode("utf-8", "replace")
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return text if isinstance(text, str) else ""


def _reply_text(text: str, limit: int = 300) -> str:
    """One line of printable ASCII for an SMTP reply."""
    text = re.sub(r"[^\x20-\x7e]", "?", re.sub(r"\s+", " ", str(text)))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _sniff(data: bytes) -> str:
    from ..document.load import sniff
    return sniff(data)


def extract(raw: bytes) -> Extracted:
    """The faxable content of a message: subject, senders, body text and attachments.
    MailContentError for an attachment we do not fax or that is not what it says, and
    for a MIME structure so broken that the email package itself trips over it (it
    raises assorted AttributeError/TypeError/IndexError on some: the fuzz test finds them)."""
    try:
        return _extract(raw)
    except MailContentError:
        raise
    except (ValueError, TypeError, AttributeError, IndexError, KeyError, LookupError, UnicodeError,
            AssertionError, RecursionError) as exc:
        log.info("mail2fax: unparsable message: %s: %s", type(exc).__name__, exc)
        raise MailContentError("554 5.6.0 the message cannot be parsed (broken MIME structure)") from None


def _extract(raw: bytes) -> Extracted:
    from .submit import Document

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    out = Extracted()
    try:
        out.subject = _CONTROL.sub(" ", str(msg.get("Subject", "") or "")).strip()
    except (ValueError, IndexError, TypeError, AttributeError):      # a header the parser cannot make sense of
        out.subject = ""
    try:
        out.message_id = str(msg.get("Message-ID", "") or "").strip()
        out.from_addresses = [(n, a) for n, a in email.utils.getaddresses([str(v) for v in msg.get_all("From", [])])
                              if a]
    except (ValueError, IndexError, TypeError, AttributeError):
        out.from_addresses = []
    if not msg.is_multipart():
        ctype = msg.get_content_type()
        if ctype == "text/plain" and not msg.get_filename():
            out.body = _clean_text(_part_text(msg))
        elif ctype == "text/html" and not msg.get_filename():
            out.body = _clean_text(html_to_text(_part_text(msg)))
        else:
            out.attachments.append(_document(msg, 1, Document))
        return out
    body = msg.get_body(preferencelist=("plain", "html"))
    if body is not None:
        text = _part_text(body)
        out.body = _clean_text(html_to_text(text) if body.get_content_type() == "text/html" else text)
    for i, part in enumerate(_attachments(msg, body), 1):
        out.attachments.append(_document(part, i, Document))
    return out


def _attachments(msg, body) -> list:
    """Every leaf part that is not the body, depth first; the alternatives of the body
    (its HTML twin) and images the HTML body shows inline (multipart/related) are not faxed."""
    found = []

    def walk(part, in_alternative: bool, in_related: bool) -> None:
        if part is body:
            return
        if part.get_content_type() == "message/rfc822":
            found.append(part)       # refused by _document: we do not unpack forwarded mail
            return
        if part.is_multipart():
            sub = part.get_content_subtype()
            for child in part.iter_parts():
                walk(child, in_alternative or sub == "alternative", in_related or sub == "related")
            return
        disposition = part.get_content_disposition()
        if in_alternative and disposition != "attachment":
            return                   # another rendering of the body
        if in_related and disposition != "attachment" and part.get("Content-ID"):
            return                   # a picture the HTML body shows (logo, signature)
        found.append(part)

    walk(msg, False, False)
    return found


def _document(part, index: int, Document):
    name = part.get_filename() or f"attachment-{index}"
    name = _CONTROL.sub("", os.path.basename(str(name).replace("\\", "/")))[:200] or f"attachment-{index}"
    ctype = part.get_content_type()
    if ctype in GENERIC or ctype not in FAXABLE:
        guessed = BY_SUFFIX.get(os.path.splitext(name)[1].lower())
        if ctype in GENERIC and guessed:
            ctype = guessed
        elif ctype == "message/rfc822" or part.is_multipart():
            raise MailContentError(f"554 5.6.1 {_reply_text(name)}: an attached message cannot be faxed; "
                                   "attach its documents instead")
        elif ctype not in FAXABLE:
            raise MailContentError(f"554 5.6.1 {_reply_text(name)}: {_reply_text(ctype, 80)} cannot be faxed "
                                   "(send PDF, TIFF, PNG, JPEG, GIF or plain text)")
    kind = FAXABLE[ctype]
    if kind in ("text", "html"):
        text = _part_text(part)
        text = _clean_text(html_to_text(text) if kind == "html" else text)
        data = text.encode("utf-8")
        if not text.strip():
            raise MailContentError(f"554 5.6.0 {_reply_text(name)}: the text attachment is empty")
    else:
        try:
            data = part.get_payload(decode=True) or b""
        except (ValueError, TypeError, AssertionError):
            data = b""
        if not data:
            raise MailContentError(f"554 5.6.0 {_reply_text(name)}: the attachment is empty")
        if _sniff(data) != kind:          # declared one thing, holds another: do not guess
            raise MailContentError(f"554 5.6.0 {_reply_text(name)}: declared {ctype} but is not a "
                                   f"{kind.upper() if kind != 'image' else 'PNG/JPEG/GIF image'}")
    return Document(name=name, data=data, content_type="text/plain" if kind == "html" else ctype)


def documents_for(extracted: Extracted, body_as_cover: bool) -> tuple[list, dict | None]:
    """(documents, cover fields or None): the body on the cover sheet, or as a text page."""
    from .submit import Document

    docs = list(extracted.attachments)
    body = extracted.body
    short = body.count("\n") < COVER_LINES and len(body) <= COVER_CHARS
    if docs and body_as_cover and short:
        cover = {"subject": extracted.subject[:200], "note": body}
        return docs, cover
    cover = {"subject": extracted.subject[:200]} if docs and body_as_cover and extracted.subject else None
    if body.strip():
        docs.insert(0, Document(name="message.txt", data=body.encode("utf-8"), content_type="text/plain"))
    return docs, cover


# --------------------------------------------------------------------------- the SMTP side
class _Handler:
    """aiosmtpd handler hooks (handle_*) and AUTH mechanisms (auth_*; these replace the
    built-in ones so the scrypt check runs in a worker thread, not in the event loop)."""

    def __init__(self, gateway: "MailGateway") -> None:
        self.gw = gateway

    # RFC 4616 (PLAIN): [authzid] NUL authcid NUL passwd
    async def auth_PLAIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if not isinstance(blob, bytes):
                return AuthResult(success=False, handled=True)      # aborted; reply already sent
        else:
            try:
                blob = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = blob.split(b"\0")
        if len(fields) != 3:
            await server.push("501 5.5.2 Can't split auth value")
            return AuthResult(success=False, handled=True)
        return await self._check(server, fields[1], fields[2])

    # draft-murchison-sasl-login (LOGIN): user name, then password, each base64
    async def auth_LOGIN(self, server: SMTP, args: list[str]) -> AuthResult:
        if len(args) == 1:
            login = await server.challenge_auth("Username:")
            if not isinstance(login, bytes):
                return AuthResult(success=False, handled=True)
        else:
            try:
                login = base64.b64decode(args[1].encode(), validate=True)
            except (binascii.Error, ValueError):
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        password = await server.challenge_auth("Password:")
        if not isinstance(password, bytes):
            return AuthResult(success=False, handled=True)
        return await self._check(server, login, password)

    async def _check(self, server: SMTP, login: bytes, password: bytes) -> AuthResult:
        name = login.decode("utf-8", "replace")
        user = self.gw.config.users.get(name)
        ok = user is not None and await asyncio.to_thread(verify_password, password, user.password_hash)
        if ok:
            log.info("mail2fax: %s authenticated as %s", server.session.peer, name)
            return AuthResult(success=True, auth_data=user)
        log.warning("mail2fax: %s failed AUTH as %r", server.session.peer, name)
        await asyncio.sleep(AUTH_FAIL_DELAY)
        return AuthResult(success=False, handled=False)

    def _user(self, session) -> MailUser | None:
        return session.auth_data if isinstance(session.auth_data, MailUser) else None

    def _sender_ok(self, session, address: str) -> str | None:
        """None when ``address`` may send faxes, else why not."""
        cfg = self.gw.config
        user = self._user(session)
        if user is not None and user.senders:
            if not sender_allowed(address, user.senders):
                return f"{address} is not a sender address of user {user.name}"
            return None
        if cfg.allowed_senders and not sender_allowed(address, cfg.allowed_senders):
            return f"{address} is not allowed to send faxes"
        if not cfg.allowed_senders and user is None:
            return "authentication required"
        return None

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if not address:
            return "550 5.7.1 the null sender cannot send faxes (this is not a bounce address)"
        why = self._sender_ok(session, address)
        if why:
            return f"550 5.7.1 {_reply_text(why)}"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        envelope.fax_numbers = []
        return "250 2.1.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        cfg = self.gw.config
        numbers = getattr(envelope, "fax_numbers", None)
        if numbers is None:
            return "503 5.5.1 MAIL first"
        if len(envelope.rcpt_tos) >= cfg.max_recipients:
            return f"452 4.5.3 too many recipients (at most {cfg.max_recipients} per message)"
        local, at, domain = address.rpartition("@")
        if not at or domain.lower().rstrip(".") not in cfg.domains:
            return f"550 5.7.1 <{_reply_text(address, 100)}>: relaying denied; faxes go to NUMBER@{cfg.domains[0]}"
        try:
            number = self.gw.normalise(local.strip('"'))
        except ValueError as exc:
            return f"550 5.1.3 <{_reply_text(address, 100)}>: not a fax number: {_reply_text(exc, 160)}"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        if number not in numbers:
            numbers.append(number)
        return f"250 2.1.5 fax to {number}"

    async def handle_DATA(self, server, session, envelope):
        try:
            return await self.gw.fax_message(session, envelope)
        except MailContentError as exc:
            return exc.reply
        except Exception:     # noqa: BLE001 - an SMTP reply, never a dropped session
            log.exception("mail2fax: message from %s could not be handled", envelope.mail_from)
            return "451 4.3.0 local error while queueing the fax; try again later"


class _NoLoginDataWarning(logging.Filter):
    """aiosmtpd 1.4 logs a deprecation warning on every successful AUTH (it sets the old
    Session.login_data itself); that is not news for the operator."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "login_data is deprecated" not in record.getMessage()


_AIOSMTPD_LOG = logging.getLogger("mail.log")
_AIOSMTPD_LOG.addFilter(_NoLoginDataWarning())


class MailGateway:
    """The ``[mail2fax]`` listener, run in the service's loop (does nothing without ``listen``)."""

    def __init__(self, service) -> None:
        from .mailer import config_of

        self.service = service
        self.config = Mail2FaxConfig.from_dict(service.config.section("mail2fax"))
        # [smtp] has no component of its own: check it here, so a mistake stops the start
        # instead of failing the first notification
        config_of(service)
        self._server: asyncio.base_events.Server | None = None
        self._country: str | None = None
        self._tls: ssl.SSLContext | None = None
        self.address: tuple[str, int] | None = None

    def normalise(self, number: str) -> str:
        from . import e164
        from .submit import _default_country

        if self._country is None:
            self._country = _default_country(self.service)
        return e164.normalise(number, self._country)

    def _protocol(self) -> SMTP:
        cfg = self.config
        return SMTP(_Handler(self), hostname=cfg.hostname or None, ident="xmfax mail2fax",
                    data_size_limit=cfg.max_message_bytes, tls_context=self._tls, require_starttls=False,
                    auth_required=cfg.require_auth, auth_require_tls=not cfg.allow_plain_auth,
                    timeout=cfg.timeout, loop=self.service.loop or asyncio.get_running_loop())

    async def start(self) -> None:
        if not self.config.listen:
            return
        host, port = parse_host_port(self.config.listen, "[mail2fax] listen")
        self._tls = self.config.ssl_context()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._protocol, host, port)
        self.address = self._server.sockets[0].getsockname()[:2]
        self.service.smtp_address = self.address
        shown = f"[{self.address[0]}]" if ":" in self.address[0] else self.address[0]
        self.service.announce.append(f"smtp {shown}:{self.address[1]}")
        log.info("mail2fax: listening on %s:%d for @%s", shown, self.address[1], ", @".join(self.config.domains))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            try:
                await asyncio.wait_for(self._server.wait_closed(), 5)
            except TimeoutError:
                log.warning("mail2fax: sessions still open at stop")
            self._server = None

    async def fax_message(self, session, envelope) -> str:
        """DATA: the message -> one broadcast; the SMTP reply."""
        from .submit import Recipient, SendRequest, SubmitError, submit

        cfg = self.config
        numbers = list(getattr(envelope, "fax_numbers", []))
        if not numbers:
            return "554 5.5.1 no valid recipients"
        raw = envelope.original_content if envelope.original_content is not None else envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        try:
            extracted = await asyncio.to_thread(extract, raw or b"")
        except MailContentError:
            raise
        except Exception:     # noqa: BLE001 - the email package's own refusal of a broken message
            log.warning("mail2fax: message from %s cannot be parsed", envelope.mail_from, exc_info=True)
            return "554 5.6.0 the message cannot be parsed (broken MIME structure)"
        handler = _Handler(self)
        for _, addr in extracted.from_addresses:
            why = handler._sender_ok(session, addr)
            if why:
                return f"550 5.7.1 From: {_reply_text(why)}"
        docs, cover = documents_for(extracted, cfg.body_as_cover)
        if not docs:
            return "554 5.6.0 nothing to fax: the message has no text and no attachment"
        name = next((n for n, _ in extracted.from_addresses if n), "") or envelope.mail_from
        if cover is not None:
            cover = dict(cover, sender=_CONTROL.sub("", name)[:100])
        notifications = []
        if cfg.report:
            headers = {"Auto-Submitted": "auto-replied"}           # RFC 3834 §5.1: no auto-reply loops
            if _MESSAGE_ID.fullmatch(extracted.message_id):        # a well-formed msg-id only
                headers.update({"In-Reply-To": extracted.message_id, "References": extracted.message_id})
            notifications.append({"type": "email", "to": [envelope.mail_from], "format": "none",
                                  "subject": cfg.report_subject, "body": cfg.report_body, "headers": headers})
        req = SendRequest(recipients=[Recipient(number=n) for n in numbers], documents=docs,
                          csid=cfg.csid, sender_name=_CONTROL.sub("", name)[:60], cover=cover,
                          resolution=cfg.resolution, max_attempts=cfg.max_attempts,
                          notifications=notifications, sender=envelope.mail_from)
        try:
            broadcast_id, ids = await submit(self.service, req)
        except SubmitError as exc:
            if exc.status >= 500:
                log.warning("mail2fax: submit failed: %s", exc.message)
                return f"451 4.3.0 {_reply_text(exc.message)}"
            code = "5.6.0" if exc.code in ("bad_document", "no_documents") else "5.7.0"
            if exc.code == "invalid_number":
                code = "5.1.3"
            return f"554 {code} {exc.code}: {_reply_text(exc.message)}"
        log.info("mail2fax: %s -> broadcast %s (%s)", envelope.mail_from, broadcast_id, ", ".join(ids))
        reply = f"250 2.0.0 queued as broadcast {broadcast_id}: {len(ids)} fax(es)"
        shown = " ".join(ids)
        if len(reply) + 1 + len(shown) > 500:       # RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets
            return reply
        return f"{reply} {shown}"
