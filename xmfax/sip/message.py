"""SIP messages: parse and encode requests and responses (RFC 3261 §7, §18.3, §20, §25).

Sans-IO: bytes in, :class:`Request` / :class:`Response` out, ``encode()`` back to bytes.
``parse()`` either returns a message whose Via (at least one), From, To, Call-ID and CSeq are
present and well-formed (so the transaction layer and the UA can use those properties without
a try) or raises :class:`SIPParseError`, whose ``reason`` and ``status`` make the error
response that :func:`error_response` encodes. Hard limits: :data:`MAX_MESSAGE_SIZE` octets,
:data:`MAX_HEADERS` header fields, :data:`MAX_LINE_LENGTH` octets per (unfolded) header field.
Nothing here is worse than linear in the size of its input.

Content-Length is framing, not content: ``encode()`` always writes it from the body, and
message equality ignores it, so ``parse(m.encode()) == m``.
"""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Iterable, Union

from .uri import (SIPParseError, TOKEN_RE, NameAddr, URI, Via, format_params, parse_params,
                  quote, unquote)

__all__ = ["SIPParseError", "MAX_MESSAGE_SIZE", "MAX_HEADERS", "MAX_LINE_LENGTH", "Headers",
           "URI", "NameAddr", "Via", "Request", "Response", "Message", "parse",
           "make_response", "error_response", "StreamFramer", "REASONS", "new_branch",
           "new_tag", "new_call_id", "parse_params", "format_params", "quote", "unquote"]

MAX_MESSAGE_SIZE = 65_536     # octets, start line + headers + body
MAX_HEADERS = 128             # header fields after unfolding
MAX_LINE_LENGTH = 16_384      # octets in one header field after unfolding, or the start line

# RFC 3261 §7.3.3 and the IANA SIP header registry: compact form -> canonical name
COMPACT = {
    "a": "Accept-Contact", "b": "Referred-By", "c": "Content-Type", "d": "Request-Disposition",
    "e": "Content-Encoding", "f": "From", "i": "Call-ID", "j": "Reject-Contact",
    "k": "Supported", "l": "Content-Length", "m": "Contact", "n": "Identity-Info",
    "o": "Event", "r": "Refer-To", "s": "Subject", "t": "To", "u": "Allow-Events", "v": "Via",
    "x": "Session-Expires", "y": "Identity",
}
# header fields whose value is a comma-separated list (RFC 3261 §7.3.1): values() splits these
_LIST_HEADERS = (
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Call-Info", "Contact", "Content-Encoding", "Content-Language", "Diversion",
    "Error-Info", "History-Info", "In-Reply-To", "P-Asserted-Identity", "P-Preferred-Identity",
    "Path", "Privacy", "Proxy-Require", "Reason", "Record-Route", "Reject-Contact",
    "Request-Disposition", "Require", "Route", "Security-Client", "Security-Server",
    "Security-Verify", "Service-Route", "Supported", "Unsupported", "Via", "Warning",
)
_CANONICAL_NAMES = _LIST_HEADERS + tuple(COMPACT.values()) + (
    "Authentication-Info", "Authorization", "CSeq", "Content-Disposition", "Content-Length",
    "Content-Type", "Date", "Expires", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "Priority", "Proxy-Authenticate", "Proxy-Authorization", "RAck",
    "Reply-To", "Retry-After", "RSeq", "Server", "Subscription-State", "Timestamp",
    "User-Agent", "WWW-Authenticate", "Max-Breadth", "Replaces", "Referred-By",
)
CANONICAL = {name.lower(): name for name in _CANONICAL_NAMES}
LIST_HEADERS = frozenset(name.lower() for name in _LIST_HEADERS)
_SECRET_HEADERS = frozenset(("authorization", "proxy-authorization"))

# one element of a comma-separated list: quoted strings (escapes) and <...> kept whole;
# possessive, so a 64 kB run of quotes or commas is one linear pass
_ELEMENT_RE = re.compile(r'(?:"(?:[^"\\]|\\.?)*+"?|<[^>]*+>?|[^,"<]++)*+', re.S)
_BAD_VALUE_RE = re.compile(r"[\r\n\x00]")


def _split_commas(value: str) -> list[str]:
    if '"' not in value and "<" not in value:
        return [item for item in (part.strip(" \t") for part in value.split(",")) if item]
    out: list[str] = []
    pos, n = 0, len(value)
    while True:
        m = _ELEMENT_RE.match(value, pos)
        end = m.end() if m else pos
        item = value[pos:end].strip(" \t")
        if item:
            out.append(item)
        if end >= n:
            return out
        pos = end + 1                               # value[end] is ','


class Headers:
    """Ordered header fields; names case-insensitive; compact forms (i, m, e, l, f, s, k, t, v,
    c, o, r, u, x, a, b, d, j, y, n) expanded to canonical names on input ("Call-ID", "CSeq",
    "WWW-Authenticate", ...); an unknown name keeps the first spelling seen by this object and
    matches case-insensitively. ``repr()`` hides Authorization values."""

    __slots__ = ("_fields", "_spelling")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._fields: list[tuple[str, str]] = []
        self._spelling: dict[str, str] = {}
        for name, value in items:
            self.add(name, value)

    def _canonical(self, name: str) -> str:
        low = name.lower()
        if len(low) == 1 and low in COMPACT:
            return COMPACT[low]
        known = CANONICAL.get(low)
        if known is not None:
            return known
        return self._spelling.setdefault(low, name)

    def _key(self, name: str) -> str:
        return self._canonical(name).lower()

    @staticmethod
    def _check(name: str, value: str) -> None:
        if not TOKEN_RE.fullmatch(name):
            raise ValueError(f"bad SIP header name {name!r}")
        if _BAD_VALUE_RE.search(value):                # no header injection from callers
            raise ValueError(f"SIP header {name} value contains CR, LF or NUL")
        try:
            value.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raise ValueError(f"SIP header {name} value cannot be encoded") from None

    def get(self, name: str, default: str | None = None) -> str | None:
        key = self._key(name)
        for n, v in self._fields:
            if n.lower() == key:
                return v
        return default

    def getall(self, name: str) -> list[str]:
        """Every field of that name, whole (no comma splitting)."""
        key = self._key(name)
        return [v for n, v in self._fields if n.lower() == key]

    def values(self, name: str) -> list[str]:
        """All fields of that name; for list headers (Via, Route, Contact, Allow, ...) the
        comma-joined elements split, commas inside quotes and <angle brackets> kept.
        Other headers (Date, WWW-Authenticate, unknown ones) come back one per field."""
        fields = self.getall(name)
        if self._key(name) not in LIST_HEADERS:
            return fields
        out: list[str] = []
        for value in fields:
            out += _split_commas(value)
        return out

    def add(self, name: str, value: str) -> None:
        self._check(name, value)
        self._fields.append((self._canonical(name), value))

    def prepend(self, name: str, value: str) -> None:
        self._check(name, value)
        key = self._key(name)
        for i, (n, _) in enumerate(self._fields):
            if n.lower() == key:
                break
        else:
            i = 0
        self._fields.insert(i, (self._canonical(name), value))

    def set(self, name: str, value: str) -> None:
        """Replace every field of that name by one, at the place of the first (else at the end)."""
        self._check(name, value)
        key = self._key(name)
        canon = self._canonical(name)
        out: list[tuple[str, str]] = []
        placed = False
        for n, v in self._fields:
            if n.lower() == key:
                if not placed:
                    out.append((canon, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((canon, value))
        self._fields = out

    def remove(self, name: str) -> None:
        key = self._key(name)
        self._fields = [(n, v) for n, v in self._fields if n.lower() != key]

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)
        return any(n.lower() == key for n, _ in self._fields)

    def items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def copy(self) -> "Headers":
        new = Headers()
        new._fields = list(self._fields)
        new._spelling = dict(self._spelling)
        return new

    def __len__(self) -> int:
        return len(self._fields)

    def __iter__(self):
        return iter(list(self._fields))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return ([(n.lower(), v) for n, v in self._fields]
                == [(n.lower(), v) for n, v in other._fields])

    def __repr__(self) -> str:
        shown = [(n, "<redacted>" if n.lower() in _SECRET_HEADERS else v) for n, v in self._fields]
        return f"Headers({shown!r})"

    def redacted(self) -> tuple[tuple[str, str], ...]:
        """The fields with Authorization / Proxy-Authorization values replaced by "<redacted>"."""
        return tuple((n, "<redacted>" if n.lower() in _SECRET_HEADERS else v)
                     for n, v in self._fields)


def _one(headers: Headers, name: str) -> str:
    fields = headers.getall(name)
    if not fields:
        raise SIPParseError(f"Missing {name}")
    if len(fields) > 1:
        raise SIPParseError(f"Duplicate {name}")
    value = fields[0].strip(" \t")
    if not value:
        raise SIPParseError(f"Bad {name}")
    return value


def _cseq(headers: Headers) -> tuple[int, str]:
    value = _one(headers, "CSeq")
    parts = value.split(None, 1) if value.isascii() else []
    number, method = parts if len(parts) == 2 else ("", "")  # CSeq: 1*DIGIT LWS Method
    # RFC 3261 §8.1.1.5: a 32-bit unsigned integer below 2**31
    if not number.isdigit() or not number.isascii() or len(number) > 10 \
            or int(number) >= 2 ** 31 or not TOKEN_RE.fullmatch(method):
        raise SIPParseError("Bad CSeq", detail=value[:80])
    return int(number), method


class _MessageHelpers:
    """Read-only views of the headers every message has; each raises SIPParseError when the
    header is missing or malformed, so that a caller can answer 400. Also the encoding both
    kinds share (each gives its ``start_line``)."""
    headers: Headers
    body: bytes

    @property
    def call_id(self) -> str:
        value = _one(self.headers, "Call-ID")
        # RFC 3261 §25.1: callid = word ["@" word]; word takes most printable characters
        # ('<', '"', '\\' included), so only whitespace is refused: the value is opaque here
        if " " in value or "\t" in value:
            raise SIPParseError("Bad Call-ID", detail=value[:80])
        return value

    @property
    def cseq(self) -> tuple[int, str]:
        return _cseq(self.headers)

    @property
    def from_(self) -> NameAddr:
        return NameAddr.parse(_one(self.headers, "From"))

    @property
    def to(self) -> NameAddr:
        return NameAddr.parse(_one(self.headers, "To"))

    @property
    def vias(self) -> list[Via]:
        values = self.headers.values("Via")
        if not values:
            raise SIPParseError("Missing Via")
        return [Via.parse(v) for v in values]

    @property
    def contacts(self) -> list[NameAddr]:
        """The Contact addresses ([] if none). The wildcard "*" is only valid in a REGISTER
        (RFC 3261 §10.2.2), where it gives []; elsewhere SIPParseError."""
        values = self.headers.values("Contact")
        if not values and "Contact" in self.headers:
            raise SIPParseError("Bad Contact", detail="empty")
        if "*" in values:
            if len(values) == 1 and getattr(self, "method", None) == "REGISTER":
                return []
            raise SIPParseError("Bad Contact", detail="*")
        return [NameAddr.parse(v) for v in values]

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        media = value.partition(";")[0].strip(" \t").lower()
        kind, slash, sub = media.partition("/")
        kind, sub = kind.strip(" \t"), sub.strip(" \t")
        if not slash or not TOKEN_RE.fullmatch(kind) or not TOKEN_RE.fullmatch(sub):
            raise SIPParseError("Bad Content-Type", detail=value[:80])
        return f"{kind}/{sub}"

    def encode(self) -> bytes:
        """The message on the wire, Content-Length recomputed from the body."""
        lines = [self.start_line]
        placed = False
        for name, value in self.headers.items():
            if name == "Content-Length":
                if placed:
                    continue
                value = str(len(self.body))
                placed = True
            lines.append(f"{name}: {value}")
        if not placed:
            lines.append(f"Content-Length: {len(self.body)}")
        lines += ["", ""]
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def _same(self, other: "_MessageHelpers") -> bool:
        mine = self.headers.copy()
        mine.remove("Content-Length")
        theirs = other.headers.copy()
        theirs.remove("Content-Length")
        return mine == theirs and self.body == other.body


@dataclass(eq=False)
class Request(_MessageHelpers):
    method: str
    uri: URI
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} SIP/2.0"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return self.method == other.method and self.uri == other.uri and self._same(other)


@dataclass(eq=False)
class Response(_MessageHelpers):
    status: int
    reason: str
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""

    @property
    def start_line(self) -> str:
        return f"SIP/2.0 {self.status} {self.reason}"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (self.status == other.status and self.reason == other.reason
                and self._same(other))


Message = Union[Request, Response]

# ----------------------------------------------------------------------------- parsing

_HEAD_END_RE = re.compile(rb"\r?\n\r?\n")
_LINE_SPLIT_RE = re.compile(r"\r?\n")
_VERSION_RE = re.compile(r"SIP/(\d{1,3})\.(\d{1,3})", re.I)
_BAD_HEAD_CHARS_RE = re.compile(r"[\x00\r]")


def _split_head(data: bytes) -> tuple[str, list[str], int]:
    """(start line, raw header lines, offset of the body). Leading CRLFs are skipped
    (RFC 3261 §7.5). Bare LF line ends are accepted (INTEROP: some stacks write them)."""
    start = 0
    while data.startswith(b"\r\n", start) or data.startswith(b"\n", start):
        start += 2 if data[start] == 0x0D else 1
    m = _HEAD_END_RE.search(data, start)
    if m is None:
        raise SIPParseError("Missing Empty Line")
    head = data[start:m.start()].decode("utf-8", "surrogateescape")
    if _BAD_HEAD_CHARS_RE.search(head.replace("\r\n", "\n")):
        raise SIPParseError("Bad Character In Header")      # NUL, or a CR not before LF
    lines = _LINE_SPLIT_RE.split(head)
    return lines[0], lines[1:], m.end()


def _unfold(lines: list[str]) -> list[tuple[str, str]]:
    """Header lines -> (name, value) fields: continuation lines (starting with SP or HT) joined
    to the field before with one SP (RFC 3261 §7.3.1)."""
    fields: list[tuple[str, list[str]]] = []
    sizes: list[int] = []
    for line in lines:
        if line[:1] in (" ", "\t"):
            if not fields:
                raise SIPParseError("Bad Header Folding")
            part = line.strip(" \t")
            if part:
                fields[-1][1].append(part)
                sizes[-1] += len(part) + 1
                if sizes[-1] > MAX_LINE_LENGTH:
                    raise SIPParseError("Header Too Long", detail=fields[-1][0][:40])
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if not colon or not TOKEN_RE.fullmatch(name):
            raise SIPParseError("Bad Header", detail=line[:80])
        if len(line) > MAX_LINE_LENGTH:
            raise SIPParseError("Header Too Long", detail=name[:40])
        fields.append((name, [value.strip(" \t")]))
        sizes.append(len(line))
        if len(fields) > MAX_HEADERS:
            raise SIPParseError("Too Many Headers")
    return [(name, " ".join(p for p in parts if p)) for name, parts in fields]


def _check_version(text: str) -> None:
    if text.upper() == "SIP/2.0":
        return
    if _VERSION_RE.fullmatch(text):
        raise SIPParseError("Version Not Supported", 505, detail=text[:20])
    raise SIPParseError("Bad SIP Version", detail=text[:20])


def _start_line(line: str) -> Request | Response:
    if len(line) > MAX_LINE_LENGTH:
        raise SIPParseError("Start Line Too Long")
    if line[:4].upper() == "SIP/":
        version, _, rest = line.partition(" ")
        _check_version(version)
        code, _, reason = rest.partition(" ")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or not "100" <= code <= "699":
            raise SIPParseError("Bad Status Code", detail=code[:20])
        return Response(int(code), reason.strip(" \t"), Headers())
    parts = line.split(" ")
    if len(parts) != 3:
        # RFC 3261 §7.1: exactly one SP between the elements; a URI with spaces is malformed
        raise SIPParseError("Bad Request Line", detail=line[:80])
    method, uri_text, version = parts
    if not TOKEN_RE.fullmatch(method):
        raise SIPParseError("Bad Method", detail=method[:20])
    _check_version(version)
    return Request(method, URI.parse(uri_text, sip_only=True), Headers())


def _content_length(headers: Headers) -> int | None:
    fields = headers.getall("Content-Length")
    if not fields:
        return None
    values = {f.strip(" \t") for f in fields}
    if len(values) > 1:
        raise SIPParseError("Duplicate Content-Length")
    text = values.pop()
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        raise SIPParseError("Bad Content-Length", detail=text[:20])
    return int(text)


def parse(data: bytes) -> Request | Response:
    """One SIP message from one datagram, or from :class:`StreamFramer` output.

    The body is what Content-Length says (§18.3: extra octets after it are dropped); a
    Content-Length larger than the data, or an oversize message, is an error; without
    Content-Length the body runs to the end of the data (UDP, §18.3)."""
    if len(data) > MAX_MESSAGE_SIZE:
        raise SIPParseError("Message Too Large", 513)   # RFC 3261 §21.5.7
    start, lines, body_at = _split_head(bytes(data))
    message = _start_line(start)
    for name, value in _unfold(lines):
        message.headers._fields.append((message.headers._canonical(name), value))
    length = _content_length(message.headers)
    body = bytes(data[body_at:])
    if length is not None:
        if length > len(body):
            raise SIPParseError("Incomplete Body", detail=f"Content-Length {length}, "
                                                          f"{len(body)} octets")
        body = body[:length]
    message.body = body
    _validate(message)
    return message


def _validate(message: Request | Response) -> None:
    """The headers every layer relies on: present, single, well-formed (RFC 3261 §8.1.1)."""
    message.vias                              # noqa: B018  (each raises SIPParseError)
    message.from_
    message.to
    message.call_id
    number, method = message.cseq
    message.contacts
    message.content_type
    if isinstance(message, Request):
        if method != message.method:
            raise SIPParseError("CSeq Method Mismatch")   # RFC 3261 §8.1.1.5
        for name in ("Max-Forwards",):
            values = message.headers.getall(name)
            if len(values) > 1:
                raise SIPParseError(f"Duplicate {name}")
            if values and (not values[0].isdigit() or not values[0].isascii()
                           or int(values[0]) > 255):
                raise SIPParseError(f"Bad {name}")     # RFC 3261 §20.22: 0-255


# ----------------------------------------------------------------------------- responses

REASONS: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 433: "Anonymity Disallowed",
    436: "Bad Identity-Info", 437: "Unsupported Certificate", 438: "Invalid Identity Header",
    439: "First Hop Lacks Outbound Support", 440: "Max-Breadth Exceeded",
    469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}
_CLASS_REASONS = {1: "Trying", 2: "OK", 3: "Redirection", 4: "Client Error",
                  5: "Server Error", 6: "Global Failure"}


def default_reason(status: int) -> str:
    return REASONS.get(status) or _CLASS_REASONS.get(status // 100, "Unknown")


def _with_tag(to_value: str, tag: str) -> str:
    return f"{to_value};tag={tag}"


def make_response(request: Request, status: int, reason: str | None = None, *,
                  to_tag: str | None = None) -> Response:
    """A response to ``request`` (RFC 3261 §8.2.6.2): Via (every field, in order), From, To
    (``;tag=to_tag`` added when the To has no tag), Call-ID, CSeq copied; for 100 Trying the
    Timestamp too (§8.2.6.1). Record-Route, Contact and the body are the UA's job."""
    if not 100 <= status <= 699:
        raise ValueError(f"SIP status {status} out of range")
    reason = default_reason(status) if reason is None else reason
    if _BAD_VALUE_RE.search(reason):
        raise ValueError("reason phrase contains CR, LF or NUL")
    src = request.headers
    out = Headers()
    for value in src.getall("Via"):
        out.add("Via", value)
    for name in ("From", "To", "Call-ID", "CSeq"):
        for value in src.getall(name):
            if name == "To" and to_tag is not None and NameAddr.parse(value).tag is None:
                value = _with_tag(value, to_tag)
            out.add(name, value)
    if status == 100:
        for value in src.getall("Timestamp"):
            out.add("Timestamp", value)
    return Response(status, reason, out)


def _lenient_fields(data: bytes) -> tuple[str, list[tuple[str, str]]]:
    """Start line and header fields as far as they can be read, for error_response()."""
    data = bytes(data[:MAX_MESSAGE_SIZE])
    m = _HEAD_END_RE.search(data)
    head = data[:m.start()] if m else data
    text = head.decode("utf-8", "surrogateescape").lstrip("\r\n")
    lines = _LINE_SPLIT_RE.split(text)
    fields: list[tuple[str, list[str]]] = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            if fields:
                fields[-1][1].append(line.strip(" \t"))
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(" \t")
        if colon and TOKEN_RE.fullmatch(name):
            fields.append((name, [value.strip(" \t")]))
    return lines[0], [(n, " ".join(p for p in parts if p)) for n, parts in fields]


def error_response(data: bytes, error: SIPParseError) -> bytes | None:
    """Best effort: the encoded error response (``error.status`` with ``error.reason``) to a
    malformed *request* whose Via, From, To, Call-ID and CSeq can still be read; None for a
    response, an ACK (never answered, RFC 3261 §17.2.1) or hopeless garbage. Never raises."""
    try:
        return _error_response(data, error)
    except (ValueError, UnicodeError):
        return None


def _error_response(data: bytes, error: SIPParseError) -> bytes | None:
    start, fields = _lenient_fields(data)
    method = start.split(" ", 1)[0]
    if not TOKEN_RE.fullmatch(method) or method.upper().startswith("SIP/") \
            or method == "ACK" or " " not in start:
        return None
    headers = Headers()
    wanted = {"via": [], "from": [], "to": [], "call-id": [], "cseq": []}
    for name, value in fields:
        key = headers._key(name)
        if key in wanted and value and not _BAD_VALUE_RE.search(value):
            wanted[key].append(value)
    if not all(wanted.values()):
        return None
    if any(len(v) > MAX_LINE_LENGTH for vs in wanted.values() for v in vs):
        return None
    if wanted["cseq"][0].split(" ")[-1].strip(" \t") == "ACK":
        return None
    for value in wanted["via"]:
        headers.add("Via", value)
    to_value = wanted["to"][0]
    if ";tag=" not in to_value.replace(" ", "").lower():
        to_value = _with_tag(to_value, new_tag())     # §8.2.6.2: a final response tags To
    headers.add("From", wanted["from"][0])
    headers.add("To", to_value)
    headers.add("Call-ID", wanted["call-id"][0])
    headers.add("CSeq", wanted["cseq"][0])
    status = error.status if 300 <= error.status <= 699 else 400
    reason = "".join(c for c in error.reason if c.isprintable())[:100] or default_reason(status)
    return Response(status, reason, headers).encode()


# ----------------------------------------------------------------------------- TCP framing

_CL_RE = re.compile(rb"^(?:content-length|l)[ \t]*:([^\r\n]*)\r?$", re.I | re.M)


class StreamFramer:
    """Cuts a stream (TCP) into messages by Content-Length (RFC 3261 §18.3). CRLF keep-alives
    between messages (RFC 5626 §4.4.1) are skipped. A message without Content-Length, with a
    bad one, or larger than MAX_MESSAGE_SIZE raises SIPParseError; the framer then stays
    broken (the driver closes the connection)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._scanned = 0                  # bytes of _buf already searched for the blank line
        self._total: int | None = None     # length of the message at the front, once known
        self._error: SIPParseError | None = None

    def feed(self, data: bytes) -> list[bytes]:
        if self._error is not None:
            raise self._error
        self._buf += data
        out: list[bytes] = []
        try:
            while True:
                message = self._next()
                if message is None:
                    return out
                out.append(message)
        except SIPParseError as exc:
            self._error = exc
            self._buf.clear()
            raise

    def _next(self) -> bytes | None:
        buf = self._buf
        if self._total is None:
            skip = 0
            while skip < len(buf) and buf[skip] in (0x0D, 0x0A):
                skip += 1
            if skip:
                del buf[:skip]
                self._scanned = 0
            if not buf:
                return None
            m = _HEAD_END_RE.search(buf, max(0, self._scanned - 3))
            if m is None:
                self._scanned = len(buf)
                if len(buf) > MAX_MESSAGE_SIZE:
                    raise SIPParseError("Message Too Large", 513)   # RFC 3261 §21.5.7
                return None
            lengths = {v.strip(b" \t") for v in _CL_RE.findall(bytes(buf[:m.start()]))}
            if not lengths:
                raise SIPParseError("Missing Content-Length")
            if len(lengths) > 1:
                raise SIPParseError("Duplicate Content-Length")
            text = lengths.pop()
            if not text.isdigit() or len(text) > 10:
                raise SIPParseError("Bad Content-Length")
            self._total = m.end() + int(text)
            if self._total > MAX_MESSAGE_SIZE:
                raise SIPParseError("Message Too Large", 513)   # RFC 3261 §21.5.7
        if len(buf) < self._total:
            return None
        message = bytes(buf[:self._total])
        del buf[:self._total]
        self._total = None
        self._scanned = 0
        return message

    @property
    def buffered(self) -> int:
        """Octets held waiting for the rest of a message."""
        return len(self._buf)


# ----------------------------------------------------------------------------- identifiers

def new_branch() -> str:
    """A Via branch with the RFC 3261 magic cookie (§8.1.1.7) and 64 random bits."""
    return "z9hG4bK" + secrets.token_hex(8)


def new_tag() -> str:
    """A From/To tag with 64 random bits (§19.3)."""
    return secrets.token_hex(8)


def new_call_id(host: str) -> str:
    """A globally unique Call-ID (§8.1.1.4): 96 random bits @ host."""
    return f"{secrets.token_hex(12)}@{host}"
