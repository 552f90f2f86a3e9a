"""Where notifications named in a request may go (the SSRF guard of ``xmfax serve``).

A destination configured by the admin (``[[destinations]]`` or the admin web page; it has
a ``name``) goes where the admin said. A destination named by a token holder in a
sendfax control file (``<webhook>``, ``<email>``; it has no ``name``) is checked twice:

* **at submit** (:func:`webhook_problem`, :func:`email_problem`): a webhook URL must match
  ``[notify].webhook_allow`` (URL prefixes or host patterns; empty by default, so no
  request may name a webhook), and an IP literal host must be public unless
  ``[notify].webhook_allow_private``; an email address must match ``[notify].email_allow``
  (domain patterns; absent = any address);
* a ``<destination>`` name must be in ``[notify].request_destinations`` when that is set
  (absent: any configured destination, printers and folders included);
* **at delivery** (:func:`pin`): the webhook's host name is resolved once, every address
  the answer holds must be public (not loopback, private, link-local, multicast, shared,
  reserved, unspecified, nor such an address embedded in IPv6) unless
  ``webhook_allow_private``, and the request is made **to the address checked**: the URL's
  host is replaced by that address, the ``Host`` header and the TLS SNI (and so the
  certificate check) keep the name. A second DNS answer is never asked for, so a name
  cannot resolve to a public address for the check and to 127.0.0.1 for the connection
  (DNS rebinding).

Patterns (both lists): ``hooks.example.com`` is that host only, ``*.example.com`` any name
under it (not ``example.com`` itself), case-insensitive; a webhook entry with ``://`` is a
URL prefix: same scheme, host and port, and the path starts with the entry's path at a
``/`` boundary (``https://hooks.example.com/fax`` allows ``/fax`` and ``/fax/x``, not
``/faxes``). An email entry with ``@`` is a whole address.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")            # RFC 6052 §2.1 well-known prefix


class EgressRefused(Exception):
    """A request-named destination may not be reached (``text`` says why)."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


# -- addresses -----------------------------------------------------------------

def address_problem(ip: str) -> str | None:
    """Why a webhook named in a request may not connect to ``ip`` (None: a public address)."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return f"{ip!r} is not an IP address"
    embedded = None
    if addr.version == 6:
        # IPv4 carried inside IPv6 reaches the IPv4 host: judge that one (RFC 4291 §2.5.5.2,
        # RFC 3056 6to4, RFC 4380 Teredo client, RFC 6052 NAT64)
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is None and addr in _NAT64:
            embedded = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    for a in (embedded, addr):             # the IPv4 host first: the clearer reason
        if a is None:
            continue
        for test, what in ((a.is_unspecified, "unspecified"), (a.is_loopback, "loopback"),
                           (a.is_link_local, "link-local"), (a.is_multicast, "multicast"),
                           (a.is_private, "private"), (a.is_reserved, "reserved"), (not a.is_global, "not public")):
            if test:
                inside = f" (inside {addr})" if a is embedded else ""
                return f"{a} is a {what} address{inside}"
    return None


# -- patterns ------------------------------------------------------------------

def host_matches(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern


def _url(text: str):
    import httpx

    url = httpx.URL(text)
    if url.scheme not in DEFAULT_PORTS or not url.host:
        raise ValueError("an http:// or https:// URL with a host")
    return url


def check_webhook_pattern(entry: str) -> str | None:
    """What is wrong with one ``webhook_allow`` entry (None: fine)."""
    if not isinstance(entry, str) or not entry.strip():
        return "an http(s) URL prefix or a host pattern"
    if "://" in entry:
        try:
            url = _url(entry)
        except Exception as exc:   # noqa: BLE001 - httpx.InvalidURL or ValueError: say why
            return f"{entry!r}: {exc}"
        if url.query or url.fragment:
            return f"{entry!r}: a URL prefix has no query or fragment"
        return None
    return _host_pattern_problem(entry)


def _host_pattern_problem(entry: str) -> str | None:
    bare = entry[2:] if entry.startswith("*.") else entry
    if not bare or "*" in bare or any(c in bare for c in "/@:?# \t"):
        return f"{entry!r}: a host name, or *.domain for every name under it"
    return None


def check_email_pattern(entry: str) -> str | None:
    if not isinstance(entry, str) or not entry.strip():
        return "a domain, *.domain or a whole address"
    if "@" in entry:
        local, _, domain = entry.rpartition("@")
        if not local or "@" in local or _host_pattern_problem(domain):
            return f"{entry!r}: a whole address (user@example.com)"
        return None
    return _host_pattern_problem(entry)


def _url_allowed(entry: str, url) -> bool:
    if "://" not in entry:
        return host_matches(entry, url.host)
    allow = _url(entry)
    if allow.scheme != url.scheme or allow.host != url.host:
        return False
    if (allow.port or DEFAULT_PORTS[allow.scheme]) != (url.port or DEFAULT_PORTS[url.scheme]):
        return False
    prefix = allow.path.rstrip("/")
    return url.path == prefix or url.path.startswith(prefix + "/")


# -- the policy ----------------------------------------------------------------

@dataclass
class Policy:
    """The ``[notify]`` keys that bound request-named destinations (see notify.NotifyConfig)."""

    webhook_allow: list[str]
    webhook_allow_private: bool = False
    email_allow: list[str] | None = None          # None: any address
    destinations: list[str] | None = None         # configured names a request may use; None: any

    def webhook_problem(self, text: str) -> str | None:
        """At submit: why a request may not name this webhook URL (None: it may)."""
        try:
            url = _url(text)
        except Exception:   # noqa: BLE001 - httpx.InvalidURL or ValueError
            return f"webhook {text[:80]!r} is not an http(s) URL"
        if not self.webhook_allow:
            return ("webhook URLs named in a request are not allowed on this service ([notify] webhook_allow "
                    "is empty): name a destination the admin configured instead")
        if not any(_url_allowed(entry, url) for entry in self.webhook_allow):
            return f"webhook host {url.host!r} (or its path) is not in this service's [notify] webhook_allow"
        if not self.webhook_allow_private:
            try:
                ipaddress.ip_address(url.host)
            except ValueError:
                return None                       # a name: its addresses are checked when it is called
            problem = address_problem(url.host)
            if problem:
                return f"webhook {url.host}: {problem} ([notify] webhook_allow_private is off)"
        return None

    def destination_problem(self, name: str) -> str | None:
        """At submit: may a request send its fax to this configured destination (a printer,
        a folder, an internal webhook the admin set up)?"""
        if self.destinations is None or name in self.destinations:
            return None
        return f"destination {name!r} may not be named in a request ([notify] request_destinations)"

    def email_problem(self, address: str) -> str | None:
        if self.email_allow is None:
            return None
        domain = address.rpartition("@")[2]
        for entry in self.email_allow:
            if "@" in entry:
                if entry.lower() == address.lower():
                    return None
            elif host_matches(entry, domain):
                return None
        if not self.email_allow:
            return "email addresses named in a request are not allowed on this service ([notify] email_allow is [])"
        return f"email domain {domain!r} is not in this service's [notify] email_allow"


@dataclass(frozen=True)
class Pinned:
    """A webhook call made to a checked address: ``url`` (host = the address), ``headers``
    (``Host``: the name) and ``extensions`` (``sni_hostname``: the name, for https)."""

    url: str
    headers: dict
    extensions: dict
    address: str


async def pin(text: str, *, allow_private: bool, resolve=None) -> list[Pinned]:
    """Resolve a request-named webhook's host once and return one :class:`Pinned` per
    address of the answer (in its order), every one of them checked; EgressRefused when
    one is not allowed, OSError (socket.gaierror) when the name does not resolve.
    ``resolve(host, port) -> [ip, ...]`` replaces the system resolver (tests)."""
    url = _url(text)
    port = url.port or DEFAULT_PORTS[url.scheme]
    if resolve is None:
        infos = await asyncio.get_running_loop().getaddrinfo(url.host, port, type=socket.SOCK_STREAM)
        addresses = [info[4][0] for info in infos]
    else:
        addresses = list(await resolve(url.host, port))
    unique = list(dict.fromkeys(addresses))
    if not unique:
        raise OSError(f"{url.host}: no address")
    if not allow_private:
        for ip in unique:
            problem = address_problem(ip)
            if problem:
                raise EgressRefused(f"{url.host} resolves to a refused address: {problem} "
                                    f"([notify] webhook_allow_private is off)")
    host_header = url.netloc.decode("ascii")
    out = []
    for ip in unique:
        bare = ip.split("%", 1)[0]
        extensions = {"sni_hostname": url.host} if url.scheme == "https" else {}
        out.append(Pinned(str(url.copy_with(host=bare)), {"Host": host_header}, extensions, bare))
    return out
