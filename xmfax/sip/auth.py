"""HTTP digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 2617 for the no-qop form):
challenges parsed, answers built and checked, credentials loaded, traces redacted.

Algorithms: MD5, MD5-sess, SHA-256, SHA-256-sess, and SHA-512-256(-sess) where the
platform's OpenSSL has it (RFC 8760); qop auth and auth-int, or none (the
RFC 2069 form RFC 3261 §22.4 still requires us to answer). The password never appears in an
exception, a repr or a redacted header.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass, field
from typing import Mapping, Sequence

__all__ = ["Credentials", "Challenge", "load_credentials", "parse_challenge",
           "parse_challenges", "parse_authorization", "choose", "authorization", "verify",
           "redact", "ALGORITHMS"]

# canonical name -> (hash function, session variant)      RFC 7616 §3.2, RFC 8760 §2 (SIP)
ALGORITHMS: dict[str, tuple[str, bool]] = {
    "MD5": ("md5", False), "MD5-sess": ("md5", True),
    "SHA-256": ("sha256", False), "SHA-256-sess": ("sha256", True),
}
try:        # SHA-512/256 exists only where OpenSSL provides it
    hashlib.new("sha512_256", b"")
    ALGORITHMS.update({"SHA-512-256": ("sha512_256", False),
                       "SHA-512-256-sess": ("sha512_256", True)})
except ValueError:
    pass
_CANONICAL = {name.upper(): name for name in ALGORITHMS}
# RFC 7616 §3.7: the client uses the strongest algorithm it supports; the SHA-2 ones rank
# alike (the server's order decides between them), MD5 last
_PREFERENCE = {name: (1 if name.startswith("MD5") else 0) for name in ALGORITHMS}
_MAX_HEADER = 8192                       # longer challenge / Authorization values are refused
_MAX_CREDENTIALS_FILE = 65_536
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REDACTED = "<redacted>"


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)
    realm: str | None = None            # None: answer any realm

    def __post_init__(self) -> None:
        for label, value in (("username", self.username), ("password", self.password),
                             ("realm", self.realm or "")):
            if not isinstance(value, str):
                raise ValueError(f"SIP {label} must be text")
            if any(ch in value for ch in "\r\n\x00"):
                raise ValueError(f"SIP {label} contains a line break or NUL")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError(f"SIP {label} is not valid Unicode text") from None
        if not self.username:
            raise ValueError("SIP username is empty")


def load_credentials(environ: Mapping[str, str] | None = None) -> Credentials | None:
    """Credentials from ``XMFAX_SIP_USERNAME`` + ``XMFAX_SIP_PASSWORD`` (+ optional
    ``XMFAX_SIP_REALM``), or from the file named by ``XMFAX_SIP_CREDENTIALS`` holding
    ``username=``, ``password=`` and optional ``realm=`` lines (blank lines and ``#`` comments
    allowed; spaces around ``=`` and at the ends of a value are dropped). None when nothing is
    set. ValueError, never showing the password, when they are incomplete, ambiguous (both
    the file and the variables) or the file is unreadable or malformed."""
    env = os.environ if environ is None else environ
    path = env.get("XMFAX_SIP_CREDENTIALS") or None
    username = env.get("XMFAX_SIP_USERNAME") or None
    password = env.get("XMFAX_SIP_PASSWORD")
    realm = env.get("XMFAX_SIP_REALM") or None
    if path is not None:
        if username is not None or password is not None:
            raise ValueError("SIP credentials: XMFAX_SIP_CREDENTIALS and XMFAX_SIP_USERNAME/"
                             "XMFAX_SIP_PASSWORD are both set; use one")
        return _read_credentials_file(path, realm)
    if username is None and password is None:
        return None
    if username is None:
        raise ValueError("SIP credentials: XMFAX_SIP_PASSWORD is set without XMFAX_SIP_USERNAME")
    if password is None:
        raise ValueError("SIP credentials: XMFAX_SIP_USERNAME is set without XMFAX_SIP_PASSWORD")
    return Credentials(username, password, realm)


def _read_credentials_file(path: str, realm: str | None) -> Credentials:
    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_CREDENTIALS_FILE + 1)
    except OSError as exc:
        raise ValueError(f"SIP credentials file {path!r}: cannot read it "
                         f"({exc.strerror or type(exc).__name__})") from None
    if len(data) > _MAX_CREDENTIALS_FILE:
        raise ValueError(f"SIP credentials file {path!r}: larger than {_MAX_CREDENTIALS_FILE} "
                         "octets")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"SIP credentials file {path!r}: not UTF-8 text") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, equals, value = stripped.partition("=")
        key = key.strip().lower()
        if not equals:      # never echo the line: it may be a bare password
            raise ValueError(f"SIP credentials file {path!r} line {number}: not key=value")
        if key not in ("username", "password", "realm"):     # not echoed: could be a secret
            raise ValueError(f"SIP credentials file {path!r} line {number}: unknown key "
                             "(username, password or realm expected)")
        if key in values:
            raise ValueError(f"SIP credentials file {path!r} line {number}: {key} given twice")
        values[key] = value.strip()
    for needed in ("username", "password"):
        if not values.get(needed) and not (needed == "password" and "password" in values):
            raise ValueError(f"SIP credentials file {path!r}: no {needed}= line")
    try:
        return Credentials(values["username"], values["password"],
                           values.get("realm") or realm)
    except ValueError as exc:
        raise ValueError(f"SIP credentials file {path!r}: {exc}") from None


# ====================================================================== parsing
@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"              # canonical spelling when known, else as received
    qop: tuple[str, ...] = ()           # lower case
    opaque: str | None = None
    stale: bool = False
    proxy: bool = False                 # from a 407 Proxy-Authenticate

    @property
    def usable(self) -> bool:
        """We can answer it: a known algorithm, and no qop or one of auth / auth-int."""
        return self.algorithm in ALGORITHMS and (
            not self.qop or "auth" in self.qop or "auth-int" in self.qop)


def _elements(value: str) -> list[str]:
    """Split on commas outside quoted strings (RFC 7230 §7 lists, RFC 3261 §25.1)."""
    elements, current, quoted, i = [], [], False, 0
    while i < len(value):
        ch = value[i]
        if quoted and ch == "\\" and i + 1 < len(value):
            current.append(value[i:i + 2])
            i += 2
            continue
        if ch == '"':
            quoted = not quoted
        elif ch == "," and not quoted:
            elements.append("".join(current))
            current = []
            i += 1
            continue
        current.append(ch)
        i += 1
    if quoted:
        raise ValueError("authentication header: unterminated quoted string")
    elements.append("".join(current))
    return [e.strip(" \t\r\n") for e in elements if e.strip(" \t\r\n")]


_PARAM = re.compile(r'([!#$%&\'*+\-.^_`|~0-9A-Za-z]+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s",]+)\Z',
                    re.S)
_SCHEME = re.compile(r"([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:[ \t\r\n]+(.*))?\Z", re.S)
_UNESCAPE = re.compile(r"\\(.)", re.S)


def _split_auth(value: str) -> list[tuple[str, dict[str, str]]]:
    """``scheme param=value, param="quoted, value", scheme2 ...`` -> [(scheme, params)]
    (RFC 7235 §4.1 / RFC 3261 §25.1 challenge and credentials syntax). Parameter names are
    lower-cased, quoted values unescaped; a scheme followed by a token68 (Basic, Negotiate)
    gets no params. ValueError when malformed."""
    if not isinstance(value, str):
        raise ValueError("authentication header must be text")
    if len(value) > _MAX_HEADER:
        raise ValueError(f"authentication header longer than {_MAX_HEADER} characters")
    result: list[tuple[str, dict[str, str]]] = []
    for element in _elements(value):
        param = _PARAM.match(element)
        if param is None:
            scheme = _SCHEME.match(element)
            if scheme is None:
                raise ValueError("authentication header: malformed element")
            params: dict[str, str] = {}
            result.append((scheme.group(1), params))
            rest = scheme.group(2)
            if not rest:
                continue
            param = _PARAM.match(rest)
            if param is None:
                if scheme.group(1).lower() == "digest":
                    raise ValueError("authentication header: Digest without name=value")
                continue                       # token68 of another scheme: not ours to read
        if not result:
            raise ValueError("authentication header: parameter before any scheme")
        name, raw = param.group(1).lower(), param.group(2)
        text = _UNESCAPE.sub(r"\1", raw[1:-1]) if raw.startswith('"') else raw
        params = result[-1][1]
        if name in params:
            raise ValueError(f"authentication header: parameter {name[:20]!r} repeated")
        params[name] = text
    if not result:
        raise ValueError("authentication header is empty")
    return result


def parse_challenges(value: str, *, proxy: bool = False) -> list[Challenge]:
    """Every Digest challenge in one WWW-Authenticate / Proxy-Authenticate value (others, e.g.
    Basic, skipped). ValueError when the value is malformed or a Digest challenge lacks
    realm or nonce."""
    challenges = []
    for scheme, params in _split_auth(value):
        if scheme.lower() != "digest":
            continue
        if "realm" not in params or "nonce" not in params:
            raise ValueError("Digest challenge without realm or nonce (RFC 7616 §3.3)")
        algorithm = params.get("algorithm", "MD5")
        algorithm = _CANONICAL.get(algorithm.upper(), algorithm)
        qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
        challenges.append(Challenge(realm=params["realm"], nonce=params["nonce"],
                                    algorithm=algorithm, qop=qop, opaque=params.get("opaque"),
                                    stale=params.get("stale", "").lower() == "true",
                                    proxy=proxy))
    return challenges


def parse_challenge(value: str, *, proxy: bool = False) -> Challenge:
    """The first Digest challenge of a WWW-Authenticate (or, ``proxy=True``,
    Proxy-Authenticate) header value. ValueError when malformed or not Digest."""
    challenges = parse_challenges(value, proxy=proxy)
    if not challenges:
        raise ValueError("no Digest challenge in the header")
    return challenges[0]


def parse_authorization(value: str) -> dict[str, str]:
    """The parameters of an ``Authorization: Digest ...`` value (names lower case).
    ValueError when malformed or not Digest."""
    parts = _split_auth(value)
    if len(parts) != 1 or parts[0][0].lower() != "digest":
        raise ValueError("not a single Digest credentials value")
    return parts[0][1]


def choose(challenges: Sequence[Challenge],
           credentials: Credentials | None = None) -> Challenge | None:
    """The challenge to answer: a usable one, SHA-256 preferred over MD5 (RFC 7616 §3.7),
    otherwise in the server's order; with ``credentials`` bound to a realm, only that realm's.
    None if none is usable."""
    usable = [c for c in challenges if c.usable
              and (credentials is None or credentials.realm is None
                   or credentials.realm == c.realm)]
    if not usable:
        return None
    return min(usable, key=lambda c: _PREFERENCE[c.algorithm])   # min is stable: first wins


# ====================================================================== computing
def _hash(name: str, text: str | bytes) -> str:
    try:
        data = text.encode("utf-8") if isinstance(text, str) else text
    except UnicodeEncodeError:
        raise ValueError("a digest input is not valid Unicode text") from None
    return hashlib.new(name, data).hexdigest()


def _response(algorithm: str, username: str, realm: str, password: str, method: str,
              uri: str, nonce: str, *, qop: str | None, nc: str, cnonce: str,
              body: bytes) -> str:
    hash_name, session = ALGORITHMS[algorithm]
    ha1 = _hash(hash_name, f"{username}:{realm}:{password}")          # RFC 7616 §3.4.2
    if session:
        ha1 = _hash(hash_name, f"{ha1}:{nonce}:{cnonce}")
    if qop == "auth-int":                                              # RFC 7616 §3.4.3
        ha2 = _hash(hash_name, f"{method}:{uri}:{_hash(hash_name, body)}")
    else:
        ha2 = _hash(hash_name, f"{method}:{uri}")
    if qop is None:                                                    # RFC 2617 §3.2.2.1
        return _hash(hash_name, f"{ha1}:{nonce}:{ha2}")
    return _hash(hash_name, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")   # RFC 7616 §3.4.1


def _quote(value: str) -> str:
    if any(ch in value for ch in "\r\n\x00"):
        raise ValueError("a digest parameter contains a line break or NUL")
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization(challenge: Challenge, credentials: Credentials, method: str, uri: str, *,
                  nc: int = 1, cnonce: str | None = None, body: bytes = b"") -> str:
    """The Authorization (or, for a proxy challenge, Proxy-Authorization) header value
    answering ``challenge`` for a request ``method uri`` (RFC 3261 §22.2, §22.3). qop=auth when
    offered, auth-int only when it is the sole qop offered (then ``body`` is hashed), no qop
    when the challenge offers none. ValueError for a challenge we cannot answer."""
    if challenge.algorithm not in ALGORITHMS:
        raise ValueError(f"digest algorithm {challenge.algorithm[:30]!r} not supported")
    if challenge.qop and "auth" not in challenge.qop and "auth-int" not in challenge.qop:
        raise ValueError(f"digest qop {','.join(challenge.qop)[:40]!r} not supported")
    if credentials.realm is not None and credentials.realm != challenge.realm:
        raise ValueError(f"credentials are for realm {credentials.realm!r}, "
                         f"the challenge is for {challenge.realm!r}")
    if not 1 <= nc <= 0xFFFFFFFF:
        raise ValueError(f"nonce count {nc}: 1..2**32-1")
    qop = "auth" if "auth" in challenge.qop else ("auth-int" if challenge.qop else None)
    cnonce = cnonce if cnonce is not None else secrets.token_hex(16)
    nc_text = f"{nc:08x}"
    response = _response(challenge.algorithm, credentials.username, challenge.realm,
                         credentials.password, method, uri, challenge.nonce, qop=qop,
                         nc=nc_text, cnonce=cnonce, body=body)
    parts = [f"username={_quote(credentials.username)}", f"realm={_quote(challenge.realm)}",
             f"nonce={_quote(challenge.nonce)}", f"uri={_quote(uri)}",
             f"response={_quote(response)}", f"algorithm={challenge.algorithm}"]
    if qop is not None or ALGORITHMS[challenge.algorithm][1]:
        parts.append(f"cnonce={_quote(cnonce)}")
    if challenge.opaque is not None:
        parts.append(f"opaque={_quote(challenge.opaque)}")
    if qop is not None:
        parts.append(f"qop={qop}")                 # unquoted: RFC 3261 §25.1 message-qop
        parts.append(f"nc={nc_text}")
    return "Digest " + ", ".join(parts)


def verify(header_value: str, password: str, method: str, *, realm: str, nonce: str,
           body: bytes = b"", uri: str | None = None, username: str | None = None) -> bool:
    """Server side: does the Authorization value answer our challenge (``realm``, ``nonce``)
    with ``password`` for ``method``? ``uri`` and ``username``, when given, must be the ones
    in the header. False for anything malformed; never raises."""
    try:
        params = parse_authorization(header_value)
        if username is not None and params.get("username") != username:
            return False
        algorithm = _CANONICAL.get(params.get("algorithm", "MD5").upper())
        if algorithm is None:
            return False
        for needed in ("username", "realm", "nonce", "uri", "response"):
            if needed not in params:
                return False
        if params["realm"] != realm or params["nonce"] != nonce:
            return False
        if uri is not None and params["uri"] != uri:
            return False
        qop = params.get("qop")
        if qop is not None:
            qop = qop.lower()
            if qop not in ("auth", "auth-int"):
                return False
            nc = params.get("nc", "")
            if len(nc) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in nc):
                return False
            if "cnonce" not in params:
                return False
        elif ALGORITHMS[algorithm][1] and "cnonce" not in params:
            return False
        expected = _response(algorithm, params["username"], realm, password, method,
                             params["uri"], nonce, qop=qop, nc=params.get("nc", ""),
                             cnonce=params.get("cnonce", ""), body=body)
        return hmac.compare_digest(expected.encode(), params["response"].lower().encode())
    except (ValueError, UnicodeError):
        return False


def redact(header_value: str) -> str:
    """An Authorization / Proxy-Authorization value fit for a trace or a record: response and
    cnonce replaced by ``<redacted>``; anything unparsable (or not Digest) shows only its
    scheme."""
    try:
        parts = _split_auth(header_value)
    except ValueError:
        return _REDACTED
    shown = []
    for scheme, params in parts:
        if scheme.lower() != "digest":
            shown.append(f"{scheme} {_REDACTED}")
            continue
        items = []
        for name, value in params.items():
            if name in ("response", "cnonce"):
                items.append(f"{name}={_REDACTED}")
            elif name in ("algorithm", "qop", "nc", "stale"):
                items.append(f"{name}={value}" if _TOKEN.fullmatch(value) else
                             f"{name}={_quote_safe(value)}")
            else:
                items.append(f"{name}={_quote_safe(value)}")
        shown.append(f"{scheme} " + ", ".join(items))
    return ", ".join(shown)


def _quote_safe(value: str) -> str:
    cleaned = "".join(ch if ch >= " " and ch != "\x7f" else "?" for ch in value)
    return '"' + cleaned.replace("\\", "\\\\").replace('"', '\\"') + '"'
