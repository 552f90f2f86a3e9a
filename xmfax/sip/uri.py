"""SIP addresses: URIs (sip:, sips:, tel:), name-addr values and Via fields (RFC 3261 §19.1,
§20.10, §20.42, §25.1; RFC 3966 tel: URIs; RFC 5118 IPv6 hosts).

Sans-IO and pure: text in, dataclasses out, ``str()`` back. Every parser raises
:class:`SIPParseError` (a ValueError) with a short reason fit for a 400 response, and none
of them is worse than linear in its input: quoted strings and lists are scanned with
possessive regular expressions, never by backtracking.

What is kept as written and what is normalised:
- scheme, parameter names and Via transports are case-insensitive: lower-cased (transport
  upper-cased); parameter *values* are kept as written (``transport=UDP`` stays "UDP"; the
  ``URI.transport`` property lower-cases it), and so are escaped characters in user parts;
- a quoted parameter value keeps its quotes (``;+sip.instance="<urn:...>"``), so that what was
  read is what is written back; a display name is unquoted and its escapes resolved, and
  ``str()`` quotes it again;
- an IPv6 host is stored without brackets and written with them.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from xmfax.errors import RemoteProtocolError

__all__ = ["SIPParseError", "URI", "NameAddr", "Via", "parse_params", "format_params",
           "quote", "unquote"]


class SIPParseError(RemoteProtocolError, ValueError):
    """A SIP message, or a part of one, that cannot be read.

    ``reason`` is a short phrase fit for the reason of the error response ("Missing Call-ID");
    ``status`` is the response code it deserves: 513 (Message Too Large, RFC 3261 §21.5.7) for an oversize message, 505 for an
    unsupported SIP version, 416 for an unsupported Request-URI scheme, 400 otherwise.
    """

    def __init__(self, reason: str, status: int = 400, detail: str | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.status = status
        self.detail = detail


# RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_\-]*[A-Za-z0-9_])?"
                          r"(\.[A-Za-z0-9_]([A-Za-z0-9_\-]*[A-Za-z0-9_])?)*\.?")
_IPV4_RE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*")
_PORT_RE = re.compile(r"\d{1,5}")
# characters never allowed unescaped in any part of a URI (RFC 3261 §25.1, RFC 3986 §2)
_URI_BAD = re.compile(r"[\x00-\x20\x7f<>\"\\{}|^`]")
# one item of a ';'-separated list: a quoted string (backslash escapes, possessive so that an
# unterminated quote costs one pass), or a run of anything but ';' and '"'
_PARAM_PIECE_RE = re.compile(r'(?:"(?:[^"\\]|\\.?)*+"?|[^;"]++)*+')
_QUOTED_RE = re.compile(r'"((?:[^"\\]|\\.)*+)"')
_UNESCAPE_RE = re.compile(r"\\(.)", re.S)
_WS = " \t"

SCHEMES = ("sip", "sips", "tel")
DEFAULT_PORTS = {"sip": 5060, "sips": 5061}


def unquote(text: str) -> str:
    """The content of a quoted-string without its quotes, escapes resolved (RFC 3261 §25.1)."""
    m = _QUOTED_RE.fullmatch(text)
    if m is None:
        raise SIPParseError("Bad Quoted String", detail=text[:80])
    return _UNESCAPE_RE.sub(r"\1", m.group(1))


def quote(text: str) -> str:
    """``text`` as a quoted-string: backslash and double quote escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _split_semis(text: str) -> list[str]:
    """``text`` cut at every ';' outside quoted strings (linear: one regex pass per piece)."""
    if '"' not in text:
        return text.split(";")
    pieces: list[str] = []
    pos, n = 0, len(text)
    while True:
        m = _PARAM_PIECE_RE.match(text, pos)
        end = m.end() if m else pos
        pieces.append(text[pos:end])
        if end >= n:
            return pieces
        pos = end + 1                       # text[end] is ';'


def parse_params(text: str, *, what: str = "Parameter") -> dict[str, str | None]:
    """``;name=value;flag`` -> {"name": "value", "flag": None}; names lower-cased, values as
    written (quoted values keep their quotes). Whitespace around ';' and '=' is allowed
    (RFC 3261 §25.1 SEMI, EQUAL); empty items (";;", a trailing ';') are skipped.
    ``text`` may start with ';' or not."""
    params: dict[str, str | None] = {}
    for piece in _split_semis(text):
        piece = piece.strip(_WS)
        if not piece:
            continue
        name, eq, value = piece.partition("=")
        name = name.rstrip(_WS)
        if not TOKEN_RE.fullmatch(name):
            raise SIPParseError(f"Bad {what}", detail=piece[:80])
        if not eq:
            params[name.lower()] = None
            continue
        value = value.lstrip(_WS)
        if value.startswith('"'):
            if not _QUOTED_RE.fullmatch(value):
                raise SIPParseError(f"Bad {what}", detail=piece[:80])
        elif not value or any(c in value for c in ' \t"<>,'):
            # gen-value = token / host / quoted-string; an IPv6 `received` has ':' (RFC 5118 §4.5)
            raise SIPParseError(f"Bad {what}", detail=piece[:80])
        params[name.lower()] = value
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


def _check_port(text: str) -> int:
    if not _PORT_RE.fullmatch(text) or int(text) > 65535:
        raise SIPParseError("Bad Port", detail=text[:20])
    return int(text)


def _check_host(host: str) -> str:
    """A hostname or IPv4 literal as written; an IPv6 literal must come bracketed."""
    if not host:
        raise SIPParseError("Missing Host")
    if _IPV4_RE.fullmatch(host):
        if any(int(part) > 255 for part in host.split(".")):
            raise SIPParseError("Bad Host", detail=host)
        return host
    if len(host) > 255 or not _HOSTNAME_RE.fullmatch(host):
        raise SIPParseError("Bad Host", detail=host[:80])
    return host


def _check_ipv6(text: str) -> str:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        raise SIPParseError("Bad IPv6 Address", detail=text[:80]) from None
    return text


def parse_hostport(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` -> (host without brackets, port).
    Whitespace around the colon is allowed (RFC 3261 §25.1 COLON) for Via's sent-by."""
    text = text.strip(_WS)
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise SIPParseError("Bad IPv6 Reference", detail=text[:80])  # RFC 5118 §4.3
        host = _check_ipv6(text[1:close])
        rest = text[close + 1:].strip(_WS)
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise SIPParseError("Bad Host", detail=text[:80])
        return host, _check_port(rest[1:].strip(_WS))
    host, colon, port = text.partition(":")
    host = host.rstrip(_WS)
    if colon:
        if ":" in port:                        # an unbracketed IPv6 address (RFC 5118 §4.3)
            raise SIPParseError("Bad Host", detail=text[:80])
        return _check_host(host), _check_port(port.strip(_WS))
    return _check_host(host), None


def format_hostport(host: str, port: int | None) -> str:
    h = f"[{host}]" if ":" in host else host
    return h if port is None else f"{h}:{port}"


@dataclass
class URI:
    """A sip:, sips: or tel: URI (RFC 3261 §19.1.1, RFC 3966).

    For tel: the number is in ``user`` and ``host`` is empty. ``params`` keys are lower case,
    values as written (None for a flag such as ``;lr``); ``headers`` is the ``?h=v&...`` part.
    Any other scheme (an absoluteURI: From, To and Contact may carry one, RFC 3261 §25.1) keeps
    everything after the colon in ``opaque``; ``parse(..., sip_only=True)`` refuses it with 416
    (Unsupported URI Scheme, §8.2.2.1), as a Request-URI must be.
    """
    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    opaque: str | None = None

    @classmethod
    def parse(cls, text: str, *, sip_only: bool = False) -> "URI":
        text = text.strip(_WS)
        scheme, colon, rest = text.partition(":")
        if not colon or not _SCHEME_RE.fullmatch(scheme):
            raise SIPParseError("Bad URI", detail=text[:80])
        scheme = scheme.lower()
        if not rest or _URI_BAD.search(rest):
            raise SIPParseError("Bad URI", detail=text[:80])
        if scheme not in SCHEMES:
            if sip_only:
                raise SIPParseError("Unsupported URI Scheme", 416, detail=scheme[:20])
            return cls(scheme, opaque=rest)
        if scheme == "tel":
            number, _, ptext = rest.partition(";")
            if not number or "?" in number or "@" in number:
                raise SIPParseError("Bad URI", detail=text[:80])
            return cls("tel", number, None, "", None, _uri_params(ptext))
        user = password = None
        at = rest.find("@")                   # '@' appears nowhere else unescaped (§25.1)
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1:]
            user, colon, pw = userinfo.partition(":")
            if not user:
                raise SIPParseError("Bad URI User", detail=text[:80])
            password = pw if colon else None
        hostpart, q, htext = rest.partition("?")
        hostport, _, ptext = hostpart.partition(";")
        host, port = parse_hostport(hostport)
        headers: dict[str, str] = {}
        if q:
            for item in htext.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise SIPParseError("Bad URI Header", detail=item[:80])
                headers[name] = value
        return cls(scheme, user, password, host, port, _uri_params(ptext), headers)

    def __repr__(self) -> str:
        shown = "<redacted>" if self.password is not None else None
        extra = f", opaque={self.opaque!r}" if self.opaque is not None else ""
        return (f"URI(scheme={self.scheme!r}, user={self.user!r}, password={shown!r}, "
                f"host={self.host!r}, port={self.port!r}, params={self.params!r}, "
                f"headers={self.headers!r}{extra})")

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        if self.scheme == "tel":
            return f"tel:{self.user or ''}{format_params(self.params)}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out += [":", self.password]
            out.append("@")
        out.append(format_hostport(self.host, self.port))
        out.append(format_params(self.params))
        if self.headers:
            out.append("?" + "&".join(f"{k}={v}" for k, v in self.headers.items()))
        return "".join(out)

    @property
    def transport(self) -> str | None:
        # INTEROP(sipp): sipp writes ";transport=UDP" in its Contact; the value is
        # case-insensitive (RFC 3261 §19.1.4), so it is read lower-cased
        value = self.params.get("transport")
        return value.lower() if value else None

    def hostport(self, default_port: int | None = None) -> tuple[str, int]:
        """(host, port): the URI's port, else ``default_port``, else 5060 (5061 for sips)."""
        if self.port is not None:
            return self.host, self.port
        if default_port is not None:
            return self.host, default_port
        return self.host, DEFAULT_PORTS.get(self.scheme, 5060)


def _uri_params(text: str) -> dict[str, str | None]:
    params: dict[str, str | None] = {}
    for item in text.split(";"):
        if not item:
            continue
        name, eq, value = item.partition("=")
        if not TOKEN_RE.fullmatch(name) or (eq and not value):
            raise SIPParseError("Bad URI Parameter", detail=item[:80])
        params[name.lower()] = value if eq else None
    return params


def _parse_display(text: str) -> str | None:
    """A display-name before '<': a quoted string, or tokens separated by LWS."""
    text = text.strip(_WS)
    if not text:
        return None
    if text.startswith('"'):
        return unquote(text)
    if '"' in text:
        raise SIPParseError("Bad Display Name", detail=text[:80])
    # INTEROP: display names outside the token grammar (commas, non-ASCII, '@') are common
    # in the wild and harmless here: kept as written, whitespace runs collapsed
    return " ".join(text.split())


@dataclass
class NameAddr:
    """A name-addr or addr-spec with header parameters: From, To, Contact, Route, Record-Route,
    P-Asserted-Identity (RFC 3261 §20.10, §20.20, §20.39). ``str()`` always writes the
    ``<uri>`` form, so URI parameters and header parameters never get mixed up."""
    uri: URI
    display: str | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "NameAddr":
        text = text.strip(_WS)
        if not text:
            raise SIPParseError("Empty Address")
        if text.startswith('"'):
            m = _QUOTED_RE.match(text)
            if m is None:
                raise SIPParseError("Bad Display Name", detail=text[:80])
            display: str | None = _UNESCAPE_RE.sub(r"\1", m.group(1))
            rest = text[m.end():].lstrip(_WS)
            if not rest.startswith("<"):
                raise SIPParseError("Bad Address", detail=text[:80])
            lt = 0
            text = rest
        else:
            lt = text.find("<")
            if lt >= 0 and (";" in text[:lt] or '"' in text[:lt]):
                lt = -1       # an addr-spec whose quoted header parameter holds a '<'
            display = _parse_display(text[:lt]) if lt >= 0 else None
        if lt < 0:
            # addr-spec: everything after the first ';' is header parameters (§20.10)
            uri_text, semi, ptext = text.partition(";")
            if "," in uri_text or "?" in uri_text or ">" in uri_text:
                raise SIPParseError("Bad Address", detail=text[:80])
            return cls(URI.parse(uri_text), None, parse_params(ptext) if semi else {})
        gt = text.find(">", lt + 1)
        if gt < 0 or "<" in text[lt + 1:gt]:
            raise SIPParseError("Bad Address", detail=text[:80])
        uri = URI.parse(text[lt + 1:gt])
        rest = text[gt + 1:].strip(_WS)
        if rest and not rest.startswith(";"):
            raise SIPParseError("Bad Address", detail=text[:80])
        return cls(uri, display, parse_params(rest))

    def __str__(self) -> str:
        head = f"{quote(self.display)} " if self.display is not None else ""
        return f"{head}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")


_VIA_RE = re.compile(r"[ \t]*([^ \t/]+)[ \t]*/[ \t]*([^ \t/]+)[ \t]*/[ \t]*([^ \t/]+)[ \t]+(.*)",
                     re.S)


@dataclass
class Via:
    """One via-parm (RFC 3261 §20.42): ``SIP/2.0/UDP host:port;branch=z9hG4bK...``.
    ``rport`` is None when it is a bare flag (RFC 3581 §3)."""
    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str) -> "Via":
        m = _VIA_RE.fullmatch(text)
        if m is None:
            raise SIPParseError("Bad Via", detail=text[:80])
        name, version, transport, rest = m.groups()
        if name.upper() != "SIP" or version != "2.0" or not TOKEN_RE.fullmatch(transport):
            raise SIPParseError("Bad Via", detail=text[:80])
        sent_by, semi, ptext = rest.partition(";")
        host, port = parse_hostport(sent_by)
        return cls(transport.upper(), host, port, parse_params(ptext, what="Via Parameter"))

    def __str__(self) -> str:
        return (f"SIP/2.0/{self.transport} {format_hostport(self.host, self.port)}"
                f"{format_params(self.params)}")

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")
