"""The XML control file of ``POST /restservice/sendfax`` (the ``metadata`` part).

    <schedulefax>
      <cover><toname>..</toname><subject>..</subject><comments>..</comments></cover>
      <sender><csid>+1 555 0100</csid><name>..</name></sender>
      <recipient><number>+15551234567</number><name>..</name></recipient>   (1..n)
      <schedule>2026-12-03T18:00:00Z</schedule>  <retries>2</retries>  <resolution>fine</resolution>
      <notifications><email format="pdf">ops@example.com</email></notifications>
    </schedulefax>

The grammar is written once, as data (``CONTENT`` and ``LEAVES`` below), and mirrors
``schema/sendfax.xsd`` element for element: the tests check that this parser accepts
exactly the documents the XSD accepts. The parser is defusedxml's: entity declarations
(billion laughs, XXE) and external references are refused, and a DOCTYPE may only name
the DTD (no internal subset, which could inject attribute defaults). Every failure is a
:class:`~xmfax.server.submit.SubmitError`: ``bad_xml`` (400) when the bytes are not a
safe well-formed XML document, ``invalid_metadata`` (422) when the document breaks the
schema, ``too_many`` (413) past ``max_recipients``. Number normalisation to E.164 is
the submitter's (``submit.submit``), not the schema's.
"""
from __future__ import annotations

import datetime as _dt
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, Callable

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from .submit import Recipient, SendRequest, SubmitError

ROOT = "schedulefax"
MAX_METADATA_BYTES = 256 * 1024
XML_SPACE = " \t\n\r"                                  # XML 1.0 §2.3 production [3] S
MAX_NOTIFICATIONS = 20
DEFAULT_RETRIES = 2                                    # attempts after the first


# --------------------------------------------------------------------------- value types
# Each leaf type turns the element's text into a value or raises ValueError(why). The
# whitespace rule is the XSD type's: xs:string and its pattern restrictions keep the text
# as is ("preserve"); xs:integer, xs:decimal and xs:dateTime collapse it (XSD Part 2
# §4.3.6), so surrounding XML whitespace is allowed there and only there.
def _collapse(text: str) -> str:
    return " ".join(p for p in re.split(r"[ \t\n\r]+", text) if p)


def text(max_len: int, pattern: str | None = None, what: str = "") -> Callable[[str], str]:
    rx = re.compile(pattern) if pattern else None

    def check(value: str) -> str:
        if len(value) > max_len:
            raise ValueError(f"longer than {max_len} characters")
        if rx is not None and not rx.fullmatch(value):
            raise ValueError(f"{value!r} is not {what}")
        return value
    return check


def integer(lo: int, hi: int, *also: int) -> Callable[[str], int]:
    def check(value: str) -> int:
        value = _collapse(value)
        if not re.fullmatch(r"[+\-]?[0-9]+", value):                 # xs:integer lexical space
            raise ValueError(f"{value!r} is not an integer")
        n = int(value)
        if not (lo <= n <= hi or n in also):
            extra = "".join(f" or {a}" for a in also)
            raise ValueError(f"{n} is not in {lo}..{hi}{extra}")
        return n
    return check


def choice(*values: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in values:
            raise ValueError(f"{value!r} is not one of {', '.join(values)}")
        return value
    return check


# xs:dateTime restricted by a pattern (see sendfax.xsd, scheduleDateTime): seconds given,
# at most 6 fractional digits, hour 00-23, time zone Z or +-hh:mm up to 14:00.
_DATETIME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([01][0-9]|2[0-3]):([0-5][0-9]):([0-5][0-9])(\.[0-9]{1,6})?"
                       r"(Z|[+\-](?:0[0-9]|1[0-3]):[0-5][0-9]|[+\-]14:00)?")
_EPOCH = re.compile(r"[0-9]{1,12}(\.[0-9]{1,6})?")


def schedule_time(value: str) -> float:
    """An xs:dateTime (no zone = UTC) or epoch seconds -> epoch seconds."""
    value = _collapse(value)
    if _EPOCH.fullmatch(value):
        return float(value)
    m = _DATETIME.fullmatch(value)
    if not m:
        raise ValueError(f"{value!r} is neither an ISO 8601 date-time (2026-12-03T18:00:00Z) nor epoch seconds")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    frac, zone = m.group(7), m.group(8)
    if y == 0:
        raise ValueError(f"{value!r}: there is no year 0000")     # XSD 1.0 Part 2 §3.2.7
    tz = _dt.timezone.utc
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        tz = _dt.timezone(sign * _dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        when = _dt.datetime(y, mo, d, h, mi, s, int(round(float(frac) * 1e6)) if frac else 0, tzinfo=tz)
        return when.timestamp()
    except (ValueError, OverflowError) as exc:
        raise ValueError(f"{value!r}: {exc}") from None


NAME = text(100)
PHONE = text(40)
NUMBER = text(40, r"[0-9+() .\-]*[0-9][0-9+() .\-]*", "a fax number")
CSID = text(20, r"[0-9+ ]*", "a CSID (T.30 Table 3: digits, '+' and space, at most 20)")
EMAIL = text(254, r"[^@ \t\n\r<>]+@[^@ \t\n\r<>]+", "an email address")
URL = text(2000, r"https?://[^ \t\n\r]+", "an http(s) URL")
DEST_NAME = text(64, r"[A-Za-z0-9_.\-]+", "a destination name")

#: element -> its children in order: (name, min, max); None max = unbounded.
#: A tuple in place of a name is a choice group (notifications).
CONTENT: dict[str, list[tuple[Any, int, int | None]]] = {
    ROOT: [("cover", 0, 1), ("sender", 0, 1), ("recipient", 1, None), ("schedule", 0, 1),
           ("retries", 0, 1), ("retrydelay", 0, 1), ("resolution", 0, 1), ("retention", 0, 1),
           ("notifications", 0, 1)],
    "cover": [("toname", 0, 1), ("tocompany", 0, 1), ("tofax", 0, 1), ("subject", 0, 1), ("comments", 0, 1)],
    "sender": [("csid", 0, 1), ("name", 0, 1), ("company", 0, 1), ("fax", 0, 1)],
    "recipient": [("number", 1, 1), ("name", 0, 1), ("company", 0, 1)],
    "notifications": [(("email", "webhook", "destination"), 1, MAX_NOTIFICATIONS)],
}
#: (parent, element) -> value type of a leaf
LEAVES: dict[tuple[str, str], Callable[[str], Any]] = {
    ("cover", "toname"): NAME, ("cover", "tocompany"): NAME, ("cover", "tofax"): PHONE,
    ("cover", "subject"): text(200), ("cover", "comments"): text(4000),
    ("sender", "csid"): CSID, ("sender", "name"): NAME, ("sender", "company"): NAME,
    ("sender", "fax"): PHONE,
    ("recipient", "number"): NUMBER, ("recipient", "name"): NAME, ("recipient", "company"): NAME,
    (ROOT, "schedule"): schedule_time, (ROOT, "retries"): integer(0, 10),
    (ROOT, "retrydelay"): integer(10, 86400), (ROOT, "resolution"): choice("standard", "fine", "superfine"),
    (ROOT, "retention"): integer(7, 36500, 0),
    ("notifications", "email"): EMAIL, ("notifications", "webhook"): URL,
    ("notifications", "destination"): DEST_NAME,
}
#: (parent, element) -> {attribute: value type}; every other attribute is refused
ATTRIBUTES: dict[tuple[str, str], dict[str, Callable[[str], Any]]] = {
    ("notifications", "email"): {"format": choice("pdf", "tiff")},
}


@dataclass(frozen=True, slots=True)
class Leaf:
    path: str
    value: Any
    attrs: dict


def _invalid(path: str, why: str) -> SubmitError:
    return SubmitError("invalid_metadata", f"metadata {path}: {why}", 422)


# --------------------------------------------------------------------------- parsing
def _refuse_internal_subset(name, sysid, pubid, has_internal_subset) -> None:
    if has_internal_subset:
        raise DefusedXmlException("a DOCTYPE with an internal subset (entity or attribute declarations) "
                                  "is refused: name the DTD only")


def parse_xml(data: bytes) -> ET.Element:
    """Well-formed, entity-free XML -> its root element; SubmitError('bad_xml') otherwise."""
    if len(data) > MAX_METADATA_BYTES:
        raise SubmitError("too_large", f"metadata is larger than {MAX_METADATA_BYTES} bytes", 413)
    parser = DefusedXMLParser(target=ET.TreeBuilder(), forbid_dtd=False, forbid_entities=True, forbid_external=True)
    parser.parser.StartDoctypeDeclHandler = _refuse_internal_subset
    try:
        parser.feed(data)
        return parser.close()
    except DefusedXmlException as exc:
        raise SubmitError("bad_xml", f"metadata refused: {_defused_why(exc)}", 400) from None
    except ET.ParseError as exc:
        raise SubmitError("bad_xml", f"metadata is not well-formed XML: {exc}", 400) from None
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:   # e.g. an unknown encoding name
        raise SubmitError("bad_xml", f"metadata cannot be read as XML: {exc}", 400) from None


def _defused_why(exc: DefusedXmlException) -> str:
    kind = type(exc).__name__
    if kind == "EntitiesForbidden":
        return "entity declarations are not allowed (entity expansion and external entities)"
    if kind == "ExternalReferenceForbidden":
        return "external references are not allowed"
    return str(exc) or kind


def _check_attrs(el: ET.Element, parent: str, path: str) -> dict:
    allowed = ATTRIBUTES.get((parent, el.tag), {})
    out = {}
    for name, value in el.attrib.items():
        if name not in allowed:
            raise _invalid(path, f"attribute {name!r} is not allowed here")
        try:
            out[name] = allowed[name](value)
        except ValueError as exc:
            raise _invalid(f"{path}/@{name}", str(exc)) from None
    return out


def _check_children(el: ET.Element, path: str) -> list[tuple[ET.Element, str]]:
    """The children of a container element, checked against CONTENT[tag] (an XSD
    xs:sequence; deterministic, so one greedy pass decides)."""
    model = CONTENT[el.tag]
    if el.text and el.text.strip(XML_SPACE):
        raise _invalid(path, f"text {el.text.strip()[:40]!r} is not allowed here (element content only)")
    out = []
    i, count = 0, 0
    seen: dict[str, int] = {}
    for child in el:
        if not isinstance(child.tag, str):
            continue                                   # comments/processing instructions
        if child.tail and child.tail.strip(XML_SPACE):
            raise _invalid(path, f"text {child.tail.strip()[:40]!r} is not allowed here (element content only)")
        seen[child.tag] = seen.get(child.tag, 0) + 1
        cpath = f"{path}/{child.tag}[{seen[child.tag]}]" if child.tag in _REPEATED else f"{path}/{child.tag}"
        while i < len(model):
            names, lo, hi = model[i]
            names = names if isinstance(names, tuple) else (names,)
            if child.tag in names and (hi is None or count < hi):
                count += 1
                break
            if child.tag in names:
                raise _invalid(cpath, f"at most {hi} <{child.tag}> allowed here")
            if count < lo:
                raise _invalid(path, f"<{child.tag}> found where <{'|'.join(names)}> is required")
            i, count = i + 1, 0
        else:
            expected = [n if isinstance(n, str) else "|".join(n) for n, _, _ in model]
            if child.tag in _ALL_NAMES.get(el.tag, ()):
                raise _invalid(cpath, f"<{child.tag}> is out of order (the order is {', '.join(expected)})")
            raise _invalid(cpath, f"unknown element <{child.tag}> (allowed: {', '.join(expected)})")
        out.append((child, cpath))
    for names, lo, _ in model[i:]:
        names = names if isinstance(names, tuple) else (names,)
        if count < lo:
            raise _invalid(path, f"<{'|'.join(names)}> is required")
        count = 0
    return out


_REPEATED = {"recipient", "email", "webhook", "destination"}
_ALL_NAMES = {parent: {n for names, _, _ in model for n in (names if isinstance(names, tuple) else (names,))}
              for parent, model in CONTENT.items()}


def _leaf(el: ET.Element, parent: str, path: str) -> Leaf:
    if len(el):
        raise _invalid(path, "no child elements are allowed here (text only)")
    attrs = _check_attrs(el, parent, path)
    try:
        return Leaf(path, LEAVES[(parent, el.tag)](el.text or ""), attrs)
    except ValueError as exc:
        raise _invalid(path, str(exc)) from None


def _walk(el: ET.Element, path: str) -> dict:
    """A container -> {tag: Leaf | dict | [Leaf | dict ...]} (lists for repeated elements)."""
    _check_attrs(el, "", path)
    out: dict[str, Any] = {"_items": []}
    for child, cpath in _check_children(el, path):
        node = _walk(child, cpath) if child.tag in CONTENT and (el.tag, child.tag) not in LEAVES \
            else _leaf(child, el.tag, cpath)
        out["_items"].append((child.tag, node))
        if child.tag in _REPEATED:
            out.setdefault(child.tag, []).append(node)
        else:
            out[child.tag] = node
    return out


def validate(root: ET.Element) -> dict:
    """The schema check alone: the element tree -> nested dicts of values."""
    if root.tag != ROOT:
        raise _invalid(f"/{root.tag}", f"the root element must be <{ROOT}>")
    return _walk(root, f"/{ROOT}")


def _v(node: dict, name: str, default: Any = "") -> Any:
    leaf = node.get(name)
    return default if leaf is None else leaf.value


def _join(*parts: str) -> str:
    return ", ".join(p for p in parts if p)


def parse(data: bytes, *, max_recipients: int = 100) -> SendRequest:
    """The metadata part -> a SendRequest without documents (the caller adds them)."""
    tree = validate(parse_xml(data))
    recipients = [Recipient(number=_v(r, "number"), name=_v(r, "name"), company=_v(r, "company"))
                  for r in tree["recipient"]]
    if len(recipients) > max_recipients:
        raise SubmitError("too_many", f"{len(recipients)} recipients; at most {max_recipients} per request", 413)
    sender = tree.get("sender", {})
    cover = None
    if "cover" in tree:
        c = tree["cover"]
        # the CoverSheet fields (xmfax.document.CoverSheet); an empty one is left out, so
        # the submitter fills it per recipient (its name and number) or from the sender
        fields = {"to": _join(_v(c, "toname"), _v(c, "tocompany")), "to_fax": _v(c, "tofax"),
                  "sender": _join(_v(sender, "name"), _v(sender, "company")), "sender_fax": _v(sender, "fax"),
                  "subject": _v(c, "subject"), "note": _v(c, "comments")}
        cover = {k: v for k, v in fields.items() if v}
    notifications = []
    for kind, leaf in tree.get("notifications", {}).get("_items", []):       # in document order
        if kind == "email":
            notifications.append({"type": "email", "to": [leaf.value], "format": leaf.attrs.get("format", "pdf")})
        elif kind == "webhook":
            notifications.append({"type": "webhook", "url": leaf.value})
        else:
            notifications.append({"name": leaf.value})
    return SendRequest(
        recipients=recipients, documents=[], csid=_v(sender, "csid"), sender_name=_v(sender, "name"),
        cover=cover, resolution=_v(tree, "resolution", "fine"), schedule_at=_v(tree, "schedule", None),
        max_attempts=_v(tree, "retries", DEFAULT_RETRIES) + 1,
        retry_delay=float(_v(tree, "retrydelay")) if "retrydelay" in tree else None,
        notifications=notifications, retention_days=_v(tree, "retention", None))
