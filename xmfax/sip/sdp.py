"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for fax calls: G.711 audio (PCMU,
PCMA, telephone-event) and T.38 over UDPTL (``m=image <port> udptl t38``, T.38 Annex D §D.2.3,
RFC 4612).

Sans-IO: bytes in, dataclasses out, and back. :meth:`SessionDescription.parse` raises
:class:`SDPError` (a ValueError) for anything malformed or oversize and nothing else;
:class:`SdpSession` builds our offers and answers for one call and works out what an
exchange agreed (:class:`Negotiated`). An offer holding nothing we can take raises
:class:`NotAcceptable`, which a UA turns into 488 Not Acceptable Here.
"""
from __future__ import annotations

import ipaddress
import re
import secrets
from dataclasses import dataclass, field
from typing import Sequence

from xmfax.t38.config import T38Config

__all__ = ["SDPError", "NotAcceptable", "Media", "SessionDescription", "Negotiated",
           "SdpSession", "offer_kinds", "MAX_SDP_SIZE", "MAX_LINES", "MAX_MEDIA"]

MAX_SDP_SIZE = 32_768       # octets; a fax SDP is a few hundred
MAX_LINES = 512             # lines of any type
MAX_MEDIA = 16              # m= lines
MAX_FORMATS = 64            # formats on one m= line
_MAX_NUMBER_DIGITS = 20     # o= session id / version: 64-bit values fit (RFC 4566 §5.2 uses NTP)

_STATIC_PT = {"0": "PCMU", "8": "PCMA"}      # RFC 3551 §6, Table 4
_CODEC_PT = {"PCMU": 0, "PCMA": 8}
_TE_DEFAULT_PT = 101                          # dynamic (RFC 3551 §3): what most peers use
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")   # RFC 3264 §5.1
_ANSWER_DIRECTION = {"sendrecv": "sendrecv", "sendonly": "recvonly",
                     "recvonly": "sendonly", "inactive": "inactive"}   # RFC 3264 §6.1
_TOKEN = re.compile(r"[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+")                 # RFC 4566 §9 token
# RFC 1123 §2.1 host name; the last label is not all digits (that would be a bad IPv4 literal)
_HOSTNAME = re.compile(r"([A-Za-z0-9]([A-Za-z0-9\-]*[A-Za-z0-9])?\.)*"
                       r"[A-Za-z0-9\-]*[A-Za-z][A-Za-z0-9\-]*\.?", re.A)


class SDPError(ValueError):
    """A session description we cannot read (or must not write): what was wrong and where."""


class NotAcceptable(Exception):
    """Nothing in an offer (or answer) is media we can use: a UA answers 488."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _find(attributes: Sequence[tuple[str, str | None]], name: str) -> list[str | None]:
    key = name.lower()
    return [value for n, value in attributes if n.lower() == key]


def _direction_of(attributes: Sequence[tuple[str, str | None]]) -> str | None:
    for name, value in attributes:
        if value is None and name.lower() in _DIRECTIONS:
            return name.lower()
    return None


@dataclass
class Media:
    """One m= section (RFC 4566 §5.14) with its c= and a= lines."""
    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    port_count: int | None = None       # "m=audio 49170/2 ..." (RFC 4566 §5.14); rarely seen

    def attr(self, name: str) -> str | None:
        """The value of the first attribute ``name`` (any case); None if absent or a flag
        (``a=sendrecv``): use :meth:`has` to tell those apart."""
        found = _find(self.attributes, name)
        return found[0] if found else None

    def attrs(self, name: str) -> list[str | None]:
        return _find(self.attributes, name)

    def has(self, name: str) -> bool:
        return bool(_find(self.attributes, name))

    @property
    def direction(self) -> str:
        """sendrecv (the default), sendonly, recvonly or inactive (RFC 3264 §5.1), from this
        m-line's own attributes (:meth:`SessionDescription.direction` adds the session's)."""
        return _direction_of(self.attributes) or "sendrecv"

    @property
    def is_t38(self) -> bool:
        """An ``m=image <port> udptl t38`` stream (RFC 4612 §3; proto any case)."""
        return (self.kind.lower() == "image" and self.proto.lower() == "udptl"
                and any(f.lower() == "t38" for f in self.formats))

    def rtpmap(self) -> dict[str, tuple[str, int]]:
        """payload type -> (encoding name upper-cased, clock rate) from a=rtpmap lines."""
        result: dict[str, tuple[str, int]] = {}
        for value in self.attrs("rtpmap"):
            if not value:
                continue
            pt, _, rest = value.strip().partition(" ")
            name, _, tail = rest.strip().partition("/")
            rate = tail.partition("/")[0]
            if pt and name and rate.isascii() and rate.isdigit() and len(rate) <= 9:
                result.setdefault(pt, (name.upper(), int(rate)))
        return result


@dataclass
class SessionDescription:
    origin_user: str = "xmfax"
    session_id: int = 0
    version: int = 0
    origin_address: str = "127.0.0.1"
    name: str = "xmfax"
    connection: str | None = None
    media: list[Media] = field(default_factory=list)
    attributes: list[tuple[str, str | None]] = field(default_factory=list)

    def address(self, media: Media) -> str | None:
        """Where ``media`` is received: its own c= else the session's (RFC 4566 §5.7)."""
        return media.connection if media.connection is not None else self.connection

    def attr(self, name: str) -> str | None:
        found = _find(self.attributes, name)
        return found[0] if found else None

    def direction(self, media: Media) -> str:
        """The direction of ``media``: its own attribute, else the session-level one (which
        applies to every stream, RFC 4566 §6), else sendrecv (RFC 3264 §5.1)."""
        return _direction_of(media.attributes) or _direction_of(self.attributes) or "sendrecv"

    # ------------------------------------------------------------------ parse
    @classmethod
    def parse(cls, data: bytes | str) -> "SessionDescription":
        """Read an SDP body (CRLF or bare LF line ends). Lines of types we do not use (i=, u=,
        e=, p=, b=, z=, k=, r=, and any unknown letter, RFC 4566 §5) are skipped; limits
        MAX_SDP_SIZE, MAX_LINES, MAX_MEDIA, MAX_FORMATS. Raises :class:`SDPError` only."""
        if isinstance(data, str):
            if len(data) > MAX_SDP_SIZE:
                raise SDPError(f"SDP larger than {MAX_SDP_SIZE} octets")
            text = data
        elif isinstance(data, (bytes, bytearray, memoryview)):
            if len(data) > MAX_SDP_SIZE:
                raise SDPError(f"SDP larger than {MAX_SDP_SIZE} octets")
            try:
                text = bytes(data).decode("utf-8")     # RFC 4566 §5: ISO 10646 in UTF-8
            except UnicodeDecodeError:
                # RFC 4566 §6 a=charset allows other sets for s= and i=; every field we use is
                # ASCII, so read such text as ISO 8859-1 rather than refuse the call over it
                text = bytes(data).decode("latin-1")
        else:
            raise SDPError(f"SDP must be bytes or str, not {type(data).__name__}")
        if "\x00" in text:
            raise SDPError("SDP contains a NUL character")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        if len(lines) > MAX_LINES:
            raise SDPError(f"SDP has more than {MAX_LINES} lines")
        sdp = cls()
        current: Media | None = None
        seen_v = seen_o = False
        for number, raw in enumerate(lines, 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if "\r" in line:
                raise SDPError(f"SDP line {number}: a bare CR inside the line")
            if line.strip() == "":
                continue          # INTEROP(various): blank lines, e.g. a trailing CRLF CRLF
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SDPError(f"SDP line {number}: not <type>=<value>")
            kind, value = line[0], line[2:]
            if not seen_v:
                if kind != "v":
                    raise SDPError("SDP must begin with v=0 (RFC 4566 §5)")
                if value.strip() != "0":
                    raise SDPError(f"SDP line {number}: version {value.strip()[:20]!r}, "
                                   "only v=0 exists")
                seen_v = True
                continue
            if kind == "v":
                raise SDPError(f"SDP line {number}: a second v= line")
            if kind == "o":
                if current is not None or seen_o:
                    raise SDPError(f"SDP line {number}: o= out of place")
                seen_o = True
                sdp._parse_origin(value, number)
            elif kind == "s":
                if current is None:
                    sdp.name = value
            elif kind == "c":
                address = _parse_connection(value, number)
                if current is None:
                    sdp.connection = address
                else:
                    current.connection = address
            elif kind == "m":
                if len(sdp.media) >= MAX_MEDIA:
                    raise SDPError(f"SDP has more than {MAX_MEDIA} m= lines")
                current = _parse_media(value, number)
                sdp.media.append(current)
            elif kind == "a":
                attribute = _parse_attribute(value, number)
                (sdp.attributes if current is None else current.attributes).append(attribute)
            # t=, b=, i=, u=, e=, p=, z=, k=, r= and unknown types: not needed for fax
        if not seen_v:
            raise SDPError("empty SDP")
        return sdp

    def _parse_origin(self, value: str, number: int) -> None:
        # RFC 4566 §5.2: o=<username> <sess-id> <sess-version> <nettype> <addrtype> <address>
        parts = value.split()
        if len(parts) != 6:
            raise SDPError(f"SDP line {number}: o= needs 6 fields, has {len(parts)}")
        user, sid, version, nettype, addrtype, address = parts
        for label, digits in (("session id", sid), ("version", version)):
            if not digits.isdigit() or not digits.isascii() or len(digits) > _MAX_NUMBER_DIGITS:
                raise SDPError(f"SDP line {number}: o= {label} is not a number")
        if nettype.upper() != "IN" or addrtype.upper() not in ("IP4", "IP6"):
            raise SDPError(f"SDP line {number}: o= network {nettype[:10]} {addrtype[:10]} "
                           "(IN IP4 or IN IP6 expected)")
        self.origin_user, self.session_id, self.version = user, int(sid), int(version)
        self.origin_address = address

    # ----------------------------------------------------------------- encode
    def encode(self) -> bytes:
        """The SDP body: CRLF lines, ``t=0 0``, c= IN IP4 or IN IP6 by address (RFC 4566 §5).
        Raises SDPError if a field would break the line structure (CR, LF or NUL in it)."""
        out = ["v=0",
               f"o={_clean(self.origin_user or '-', 'origin user', space=False)} "
               f"{int(self.session_id)} {int(self.version)} "
               f"{_net(self.origin_address)}",
               f"s={_clean(self.name, 'session name') or '-'}"]      # s= never empty (§5.3)
        if self.connection is not None:
            out.append(f"c={_net(self.connection)}")
        out.append("t=0 0")
        out.extend(_encode_attribute(a) for a in self.attributes)
        for media in self.media:
            if not 0 <= media.port <= 65535:
                raise SDPError(f"media port {media.port} out of range")
            if not media.formats:
                raise SDPError(f"m={media.kind} has no formats (RFC 4566 §5.14)")
            port = str(media.port) if media.port_count is None else f"{media.port}/{media.port_count}"
            formats = " ".join(_clean(f, "format", space=False) for f in media.formats)
            out.append(f"m={_clean(media.kind, 'media', space=False)} {port} "
                       f"{_clean(media.proto, 'proto', space=False)} {formats}")
            if media.connection is not None:
                out.append(f"c={_net(media.connection)}")
            out.extend(_encode_attribute(a) for a in media.attributes)
        return ("\r\n".join(out) + "\r\n").encode("utf-8")


def _clean(text: str, what: str, *, space: bool = True) -> str:
    if any(ch in text for ch in "\r\n\x00") or (not space and (" " in text or text == "")):
        raise SDPError(f"SDP {what} {text[:40]!r} cannot be written on one line")
    return text


def _net(address: str) -> str:
    """``IN IP4 a.b.c.d`` / ``IN IP6 ::1`` (RFC 4566 §5.7), chosen by the address."""
    address = _clean(address, "address", space=False)
    return f"IN {'IP6' if ':' in address else 'IP4'} {address}"


def _encode_attribute(attribute: tuple[str, str | None]) -> str:
    name, value = attribute
    name = _clean(name, "attribute name", space=False)
    return f"a={name}" if value is None else f"a={name}:{_clean(value, 'attribute value')}"


def _parse_connection(value: str, number: int) -> str:
    # RFC 4566 §5.7: c=<nettype> <addrtype> <connection-address>[/ttl][/n]
    parts = value.split()
    if len(parts) != 3:
        raise SDPError(f"SDP line {number}: c= needs 3 fields, has {len(parts)}")
    nettype, addrtype, address = parts
    addrtype = addrtype.upper()
    if nettype.upper() != "IN" or addrtype not in ("IP4", "IP6"):
        raise SDPError(f"SDP line {number}: c= network {nettype[:10]} {addrtype[:10]} "
                       "(IN IP4 or IN IP6 expected)")
    if addrtype == "IP4":
        address = address.split("/", 1)[0]           # multicast TTL / count
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            if not _HOSTNAME.fullmatch(address) or len(address) > 253:
                raise SDPError(f"SDP line {number}: c= address {address[:40]!r} "
                               "is not IPv4 or a host name") from None
    else:
        address = address.split("/", 1)[0]           # IP6 multicast count
        if address.startswith("[") and address.endswith("]"):
            address = address[1:-1]                   # INTEROP(various): bracketed IPv6
        try:
            address = str(ipaddress.IPv6Address(address))
        except ValueError:
            if not _HOSTNAME.fullmatch(address) or len(address) > 253:
                raise SDPError(f"SDP line {number}: c= address {address[:40]!r} "
                               "is not IPv6 or a host name") from None
    return address


def _parse_media(value: str, number: int) -> Media:
    # RFC 4566 §5.14: m=<media> <port>[/<number of ports>] <proto> <fmt> ...
    parts = value.split()
    if len(parts) < 4:
        raise SDPError(f"SDP line {number}: m= needs media, port, proto and a format")
    kind, port_text, proto, *formats = parts
    if len(formats) > MAX_FORMATS:
        raise SDPError(f"SDP line {number}: more than {MAX_FORMATS} formats")
    port_text, slash, count_text = port_text.partition("/")
    count = None
    if slash:
        if not (count_text.isascii() and count_text.isdigit() and 0 < len(count_text) <= 5):
            raise SDPError(f"SDP line {number}: m= port count is not a number")
        count = int(count_text)
    if not (port_text.isascii() and port_text.isdigit() and len(port_text) <= 5) \
            or int(port_text) > 65535:
        raise SDPError(f"SDP line {number}: m= port {port_text[:10]!r} is not 0..65535")
    if not _TOKEN.fullmatch(kind) or not _TOKEN.fullmatch(proto.replace("/", "")):
        raise SDPError(f"SDP line {number}: m= media or proto is not a token")
    return Media(kind=kind, port=int(port_text), proto=proto, formats=formats,
                 port_count=count)


def _parse_attribute(value: str, number: int) -> tuple[str, str | None]:
    # RFC 4566 §5.13: a=<attribute> | a=<attribute>:<value>
    name, colon, rest = value.partition(":")
    name = name.strip()
    if not _TOKEN.fullmatch(name):
        raise SDPError(f"SDP line {number}: attribute name {name[:40]!r} is not a token")
    return (name, rest.strip() if colon else None)


# ====================================================================== offer/answer
@dataclass(frozen=True)
class Negotiated:
    """What one offer/answer exchange agreed: the media to run and where to send it."""
    kind: str                           # "t38" | "audio"
    remote: tuple[str, int]
    local_port: int
    t38: T38Config | None = None
    codec: str | None = None            # "PCMU" | "PCMA"
    payload_type: int | None = None
    telephone_event: int | None = None
    direction: str = "sendrecv"         # ours, RFC 3264 §6.1 (a fax needs sendrecv)

    def describe(self) -> dict:
        """A JSON-able summary for records (no addresses beyond the media endpoint)."""
        summary: dict = {"kind": self.kind, "remote": f"{_hostport(self.remote)}",
                         "local_port": self.local_port, "direction": self.direction}
        if self.t38 is not None:
            t = self.t38
            summary["t38"] = {"version": t.version, "max_bit_rate": t.max_bit_rate,
                              "rate_management": t.rate_management, "max_buffer": t.max_buffer,
                              "max_datagram": t.max_datagram, "udp_ec": t.udp_ec,
                              "fill_bit_removal": t.fill_bit_removal}
        if self.codec is not None:
            summary["codec"] = self.codec
            summary["payload_type"] = self.payload_type
            summary["telephone_event"] = self.telephone_event
        return summary


def _hostport(remote: tuple[str, int]) -> str:
    host, port = remote
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _g711(media: Media) -> list[tuple[str, int]]:
    """(codec, payload type) for each PCMU/PCMA format of an RTP/AVP stream, in its order.
    A static PT without rtpmap is its RFC 3551 codec; an rtpmap wins where present."""
    if media.kind.lower() != "audio" or media.proto.upper() != "RTP/AVP":
        return []
    rtpmap = media.rtpmap()
    found = []
    for fmt in media.formats:
        if not (fmt.isascii() and fmt.isdigit() and len(fmt) <= 3) or int(fmt) > 127:
            continue
        name, rate = rtpmap.get(fmt, (_STATIC_PT.get(fmt), 8000))
        if name in _CODEC_PT and rate == 8000:
            found.append((name, int(fmt)))
    return found


def _telephone_event(media: Media) -> int | None:
    """The RFC 4733 telephone-event payload type of an audio stream, if it offers one."""
    for pt, (name, rate) in media.rtpmap().items():
        if name == "TELEPHONE-EVENT" and rate == 8000 and pt in media.formats \
                and pt.isascii() and pt.isdigit() and 96 <= int(pt) <= 127:
            return int(pt)
    return None


def _t38_from(media: Media) -> T38Config:
    """The T.38 parameters an m=image stream carries (T.38 Annex D §D.2.3); ValueError."""
    lines = []
    for name, value in media.attributes:
        if not name.lower().startswith("t38"):
            continue
        if name.lower() == "t38faxversion" and value is not None and value.isascii() \
                and value.isdigit() and len(value) <= 9 and int(value) > 3:
            # RFC 3264 §6.1: the answer may lower, never raise, what is offered; a version we
            # do not know yet is answered with the highest we do (T.38 Annex D §D.2.3)
            value = "3"
        lines.append(name if value is None else f"{name}:{value}")
    return T38Config.from_sdp(lines)


def _direction(offered: str, remote_host: str) -> str:
    """Our direction for a stream: RFC 3264 §6.1 mirrored; a connection address of 0.0.0.0
    (or ::) is the RFC 2543 way of putting a stream on hold (RFC 3264 §8.4): send nothing."""
    try:
        if ipaddress.ip_address(remote_host).is_unspecified:
            return "inactive" if offered in ("sendonly", "inactive") else "recvonly"
    except ValueError:
        pass
    return _ANSWER_DIRECTION[offered]


def _agreed_t38(ours: T38Config, theirs: T38Config, their_attrs: Media) -> T38Config:
    """The parameters both ends run with: version, rate and datagram never above either
    side's (T38Config.answer), and the far end's buffer respected when it states one."""
    agreed = ours.answer(theirs)
    if their_attrs.has("T38FaxMaxBuffer") and theirs.max_buffer > 0:
        # T38FaxMaxBuffer is the receiver's buffer: what we may send is bounded by theirs
        buffer = theirs.max_buffer if ours.max_buffer == 0 else min(ours.max_buffer,
                                                                     theirs.max_buffer)
        agreed = agreed.replace(max_buffer=buffer)
    return agreed


def offer_kinds(sdp: SessionDescription) -> tuple[str, ...]:
    """The kinds of media in ``sdp`` we could take, in m-line order: "audio" for an RTP/AVP
    stream with PCMU or PCMA, "t38" for m=image udptl t38; streams with port 0 (rejected or
    disabled, RFC 3264 §8.2) and streams without an address are left out."""
    kinds = []
    for media in sdp.media:
        if media.port == 0 or sdp.address(media) is None:
            continue
        if media.is_t38:
            kinds.append("t38")
        elif _g711(media):
            kinds.append("audio")
    return tuple(kinds)


class SdpSession:
    """Our side of the offer/answer exchanges of one call (RFC 3264): one o= session id, a
    version that goes up by one each time we send an SDP that differs from our last one
    (RFC 3264 §8, RFC 4566 §5.2)."""

    def __init__(self, address: str, user: str = "xmfax", session_id: int | None = None) -> None:
        _clean(address, "address", space=False)
        _clean(user, "origin user", space=False)
        self.address = address
        self.user = user
        self.session_id = secrets.randbits(62) if session_id is None else session_id
        self.version = 0
        self._last: bytes | None = None     # our last SDP, encoded with its version
        self._layout: list[Media] = []      # its m-lines (a later offer keeps as many)

    # ----------------------------------------------------------------- ours
    def _stamp(self, media: list[Media]) -> SessionDescription:
        sdp = SessionDescription(origin_user=self.user, session_id=self.session_id,
                                 version=self.version, origin_address=self.address,
                                 name="xmfax", connection=self.address, media=media)
        if self._last is not None and sdp.encode() != self._last:
            self.version += 1       # RFC 3264 §8: a changed SDP has the next version
            sdp.version = self.version
        self._last = sdp.encode()
        self._layout = list(media)
        return sdp

    def _arrange(self, streams: list[Media]) -> list[Media]:
        """A later offer's m-lines (RFC 3264 §8): never fewer than in our previous SDP. A new
        stream takes the place of the previous one of its kind, else of an unused one (a
        T.38 re-INVITE replaces m=audio by m=image: RFC 3264 §8.3.3, as gateways do), else
        goes at the end (§8.1); a previous stream left out stays, with port 0 (§8.2)."""
        layout = self._layout
        slots: list[Media | None] = [None] * len(layout)
        rest = []
        for stream in streams:
            for i, old in enumerate(layout):
                if slots[i] is None and old.kind.lower() == stream.kind.lower():
                    slots[i] = stream
                    break
            else:
                rest.append(stream)
        for i in range(len(slots)):
            if slots[i] is None and rest:
                slots[i] = rest.pop(0)
        return [stream if stream is not None else Media(old.kind, 0, old.proto,
                                                         list(old.formats))
                for stream, old in zip(slots, layout)] + rest

    @staticmethod
    def _audio_media(port: int, codecs: Sequence[tuple[str, int]], te: int | None,
                     direction: str = "sendrecv") -> Media:
        formats = [str(pt) for _, pt in codecs]
        attributes: list[tuple[str, str | None]] = [
            ("rtpmap", f"{pt} {name}/8000") for name, pt in codecs]
        if te is not None:
            formats.append(str(te))
            attributes.append(("rtpmap", f"{te} telephone-event/8000"))
            attributes.append(("fmtp", f"{te} 0-15"))         # RFC 4733 §2.4.1: DTMF 0-9 * # A-D
        attributes.append(("ptime", "20"))
        attributes.append((direction, None))
        return Media("audio", port, "RTP/AVP", formats, attributes=attributes)

    @staticmethod
    def _t38_media(port: int, t38: T38Config, proto: str = "udptl") -> Media:
        attributes: list[tuple[str, str | None]] = []
        for line in t38.to_sdp():
            name, colon, value = line.partition(":")
            attributes.append((name, value if colon else None))
        return Media("image", port, proto, ["t38"], attributes=attributes)

    def offer(self, *, audio_port: int | None = None, t38_port: int | None = None,
              t38: T38Config | None = None, codecs: Sequence[str] = ("PCMU", "PCMA"),
              telephone_event: bool = True) -> SessionDescription:
        """Our offer (RFC 3264 §5): audio first if ``audio_port``, then T.38 if ``t38_port``.
        After an earlier SDP of ours, the m-lines keep its count and places (:meth:`_arrange`):
        after an answer of audio + image at port 0, a T.38 re-offer is m=audio port 0 then
        m=image."""
        if audio_port is None and t38_port is None:
            raise ValueError("an offer needs audio_port, t38_port or both")
        media = []
        if audio_port is not None:
            chosen = []
            for codec in codecs:
                name = codec.upper()
                if name not in _CODEC_PT:
                    raise ValueError(f"codec {codec!r}: PCMU or PCMA")
                if (name, _CODEC_PT[name]) not in chosen:
                    chosen.append((name, _CODEC_PT[name]))
            if not chosen:
                raise ValueError("an audio offer needs at least one codec")
            media.append(self._audio_media(audio_port, chosen,
                                           _TE_DEFAULT_PT if telephone_event else None))
        if t38_port is not None:
            media.append(self._t38_media(t38_port, t38 or T38Config()))
        return self._stamp(self._arrange(media))

    def answer(self, offer: SessionDescription, *, audio_port: int | None,
               t38_port: int | None, t38: T38Config,
               accept: Sequence[str] = ("t38", "audio")) -> tuple[SessionDescription, Negotiated]:
        """Our answer to ``offer`` (RFC 3264 §6): one m-line per offered m-line in the same
        order; the one chosen gets our port, every other port 0. T.38 wins when offered with a
        nonzero port and both ``"t38"`` in ``accept`` and ``t38_port`` given; else G.711 (the
        first PCMU/PCMA in the offer's order). NotAcceptable if neither."""
        reasons: list[str] = []
        choice: tuple[int, Negotiated, Media] | None = None
        for want in ("t38", "audio"):
            if choice is not None:
                break
            if want not in accept:
                continue
            port = t38_port if want == "t38" else audio_port
            for index, media in enumerate(offer.media):
                if media.port == 0:
                    continue
                remote_host = offer.address(media)
                if want == "t38" and media.is_t38:
                    if port is None:
                        reasons.append("T.38 offered but no local T.38 port")
                        break
                    if remote_host is None:
                        reasons.append("T.38 stream without a c= address")
                        continue
                    try:
                        theirs = _t38_from(media)
                    except ValueError as exc:
                        reasons.append(f"T.38 stream: {exc}")
                        continue
                    agreed = _agreed_t38(t38, theirs, media)
                    direction = _direction(offer.direction(media), remote_host)
                    answer_media = self._t38_media(port, t38.answer(theirs), media.proto)
                    if direction != "sendrecv":
                        answer_media.attributes.append((direction, None))
                    choice = (index, Negotiated("t38", (remote_host, media.port), port,
                                                t38=agreed, direction=direction), answer_media)
                    break
                if want == "audio" and media.kind.lower() == "audio":
                    codecs = _g711(media)
                    if not codecs:
                        reasons.append(f"no PCMU/PCMA in m=audio {media.proto} "
                                       f"{' '.join(media.formats)[:60]}")
                        continue
                    if port is None:
                        reasons.append("audio offered but no local audio port")
                        break
                    if remote_host is None:
                        reasons.append("audio stream without a c= address")
                        continue
                    codec, pt = codecs[0]
                    te = _telephone_event(media)
                    direction = _direction(offer.direction(media), remote_host)
                    answer_media = self._audio_media(port, [(codec, pt)], te, direction)
                    choice = (index, Negotiated("audio", (remote_host, media.port), port,
                                                codec=codec, payload_type=pt,
                                                telephone_event=te, direction=direction),
                              answer_media)
                    break
        if choice is None:
            if not offer.media:
                raise NotAcceptable("the offer has no media")
            raise NotAcceptable("; ".join(dict.fromkeys(reasons)) or
                                "no T.38 (m=image udptl t38) or G.711 audio offered")
        index, negotiated, chosen_media = choice
        media_out = []
        for i, media in enumerate(offer.media):
            if i == index:
                media_out.append(chosen_media)
            else:       # RFC 3264 §6: a rejected stream keeps its formats, port 0
                media_out.append(Media(media.kind, 0, media.proto, list(media.formats)))
        return self._stamp(media_out), negotiated

    def negotiated(self, offer: SessionDescription, answer: SessionDescription, *,
                   t38: T38Config) -> Negotiated:
        """The offerer's view: what our ``offer`` and their ``answer`` agreed (RFC 3264 §7).
        T.38 parameters never above what we offered. NotAcceptable if nothing was accepted
        (every m-line at port 0, or an answer that does not match the offer)."""
        if len(answer.media) != len(offer.media):
            # RFC 3264 §6: the answer has exactly as many m-lines as the offer
            raise NotAcceptable(f"the answer has {len(answer.media)} m-lines, "
                                f"the offer had {len(offer.media)}")
        found: list[Negotiated] = []
        reasons: list[str] = []
        for ours, theirs in zip(offer.media, answer.media):
            if ours.port == 0 or theirs.port == 0:
                continue
            if theirs.kind.lower() != ours.kind.lower():
                reasons.append(f"m={theirs.kind} answered to m={ours.kind}")
                continue
            remote_host = answer.address(theirs)
            if remote_host is None:
                reasons.append(f"m={theirs.kind} without a c= address")
                continue
            direction = _direction(answer.direction(theirs), remote_host)
            if ours.is_t38 and theirs.is_t38:
                try:
                    their_t38 = _t38_from(theirs)
                except ValueError as exc:
                    reasons.append(f"T.38 answer: {exc}")
                    continue
                found.append(Negotiated("t38", (remote_host, theirs.port), ours.port,
                                        t38=_agreed_t38(t38, their_t38, theirs),
                                        direction=direction))
            elif ours.kind.lower() == "audio":
                offered = {pt for _, pt in _g711(ours)}
                codecs = [(c, pt) for c, pt in _g711(theirs) if pt in offered]
                if not codecs:
                    reasons.append("the audio answer has no PCMU/PCMA we offered")
                    continue
                te = _telephone_event(theirs)
                if _telephone_event(ours) is None:
                    te = None
                codec, pt = codecs[0]
                found.append(Negotiated("audio", (remote_host, theirs.port), ours.port,
                                        codec=codec, payload_type=pt, telephone_event=te,
                                        direction=direction))
        if not found:
            raise NotAcceptable("; ".join(reasons) or "the answer accepted no media")
        for negotiated in found:
            if negotiated.kind == "t38":
                return negotiated
        return found[0]
