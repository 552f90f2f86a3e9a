"""The sendfax XML control file: xmlcontrol.py against schema/sendfax.xsd (lxml as the
oracle), hostile XML refused, and a fuzz of the parser (only SubmitErrors)."""
from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from xmfax.server import xmlcontrol
from xmfax.server.submit import SubmitError

from http_kit import docs_text

etree = pytest.importorskip("lxml.etree", reason="lxml (the [test] extra) checks the XSD")

SCHEMA_DIR = Path(xmlcontrol.__file__).parent / "schema"
XSD = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "sendfax.xsd")))
DTD = etree.DTD(str(SCHEMA_DIR / "sendfax.dtd"))

FULL = b"""<?xml version="1.0" encoding="UTF-8"?>
<schedulefax>
  <cover>
    <toname>Dr. Ada Lovelace</toname>
    <tocompany>Analytical Engines Ltd</tocompany>
    <subject>Quarterly report</subject>
    <comments>Two pages follow.</comments>
  </cover>
  <sender>
    <csid>+1 555 0100</csid>
    <name>Charles Babbage</name>
    <company>Difference Works</company>
    <fax>+1 555 0100</fax>
  </sender>
  <recipient><number>+1 (555) 123-4567</number><name>Ada</name><company>AE</company></recipient>
  <recipient><number>+44 20 7946 0958</number></recipient>
  <schedule>2026-12-24T09:30:00+01:00</schedule>
  <retries>3</retries>
  <retrydelay>120</retrydelay>
  <resolution>superfine</resolution>
  <retention>0</retention>
  <notifications>
    <email format="tiff">ops@example.com</email>
    <webhook>https://hooks.example.com/fax?x=1</webhook>
    <destination>archive</destination>
  </notifications>
</schedulefax>
"""


def xsd_ok(data: bytes) -> bool:
    try:
        doc = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return False
    return XSD.validate(doc)


def ours_ok(data: bytes) -> bool:
    try:
        xmlcontrol.parse(data, max_recipients=10**6)
        return True
    except SubmitError as exc:
        assert exc.code in ("bad_xml", "invalid_metadata"), exc.code
        return False


def wrap(body: str, recipient: str = "<recipient><number>5551234567</number></recipient>") -> bytes:
    return f"<schedulefax>{body}{recipient}</schedulefax>".encode() if "<recipient" not in body else \
        f"<schedulefax>{body}</schedulefax>".encode()


# --------------------------------------------------------------------------- parse results
def test_full_example_parses_to_the_request():
    req = xmlcontrol.parse(FULL)
    assert [r.number for r in req.recipients] == ["+1 (555) 123-4567", "+44 20 7946 0958"]
    assert (req.recipients[0].name, req.recipients[0].company) == ("Ada", "AE")
    assert req.csid == "+1 555 0100" and req.sender_name == "Charles Babbage"
    assert req.cover == {"to": "Dr. Ada Lovelace, Analytical Engines Ltd", "sender": "Charles Babbage, Difference Works",
                         "sender_fax": "+1 555 0100", "subject": "Quarterly report", "note": "Two pages follow."}
    assert req.schedule_at == _dt.datetime(2026, 12, 24, 8, 30, tzinfo=_dt.timezone.utc).timestamp()
    assert (req.max_attempts, req.retry_delay, req.resolution, req.retention_days) == (4, 120.0, "superfine", 0)
    assert req.notifications == [{"type": "email", "to": ["ops@example.com"], "format": "tiff"},
                                 {"type": "webhook", "url": "https://hooks.example.com/fax?x=1"},
                                 {"name": "archive"}]
    assert req.documents == []


def test_minimal_example_takes_the_defaults():
    req = xmlcontrol.parse(wrap(""))
    assert (req.cover, req.csid, req.schedule_at, req.retention_days, req.retry_delay) == (None, "", None, None, None)
    assert (req.max_attempts, req.resolution, req.notifications) == (3, "fine", [])


_UTC = _dt.timezone.utc


@pytest.mark.parametrize("text, when", [
    ("1796400000", 1796400000.0), (" 1796400000.5\n", 1796400000.5),
    ("2026-12-24T08:30:00Z", _dt.datetime(2026, 12, 24, 8, 30, tzinfo=_UTC).timestamp()),
    ("2026-12-24T08:30:00", _dt.datetime(2026, 12, 24, 8, 30, tzinfo=_UTC).timestamp()),      # no zone: UTC
    ("2026-12-24T08:30:00.250-05:00", _dt.datetime(2026, 12, 24, 13, 30, 0, 250000, tzinfo=_UTC).timestamp())])
def test_schedule_forms(text, when):
    got = xmlcontrol.parse(wrap(f"<recipient><number>1</number></recipient><schedule>{text}</schedule>")).schedule_at
    assert got == pytest.approx(when, abs=1e-6)


def test_too_many_recipients_is_413():
    data = wrap("".join(f"<recipient><number>55500{i:02d}</number></recipient>" for i in range(6)))
    with pytest.raises(SubmitError) as e:
        xmlcontrol.parse(data, max_recipients=5)
    assert (e.value.code, e.value.status) == ("too_many", 413)


# --------------------------------------------------------------------------- hostile XML
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
<!ENTITY lol9 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">]>
<schedulefax><recipient><number>5551234567</number><name>&lol9;</name></recipient></schedulefax>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE schedulefax [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<schedulefax><recipient><number>5551234567</number><name>&xxe;</name></recipient></schedulefax>"""
PARAM_XXE = b"""<?xml version="1.0"?>
<!DOCTYPE schedulefax [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/evil.dtd"> %ext;]>
<schedulefax><recipient><number>5551234567</number></recipient></schedulefax>"""
ATTLIST = b"""<!DOCTYPE schedulefax [<!ATTLIST email format CDATA "tiff">]>
<schedulefax><recipient><number>1</number></recipient></schedulefax>"""


@pytest.mark.parametrize("data, why", [
    (BILLION_LAUGHS, "entity"), (XXE, "entity"), (PARAM_XXE, "entity"), (ATTLIST, "internal subset"),
    (b"<schedulefax><recipient>", "well-formed"), (b"", "well-formed"), (b"\xff\xfe\x00junk", ""),
    (b'<?xml version="1.0" encoding="no-such-charset"?><schedulefax/>', ""),
    (b"<a>&#0;</a>", "well-formed"), (b"not xml at all", "well-formed")], ids=range(10))
def test_hostile_or_broken_xml_is_bad_xml(data, why):
    with pytest.raises(SubmitError) as e:
        xmlcontrol.parse(data)
    assert (e.value.code, e.value.status) == ("bad_xml", 400)
    assert why in e.value.message
    assert "root:" not in e.value.message


def test_a_doctype_naming_the_dtd_is_fine_and_never_fetched():
    data = b'<!DOCTYPE schedulefax SYSTEM "http://127.0.0.1:9/sendfax.dtd">' + wrap("")
    assert xmlcontrol.parse(data).recipients[0].number == "5551234567"


def test_oversize_metadata_is_413():
    data = wrap("<cover><comments>" + "x" * (xmlcontrol.MAX_METADATA_BYTES + 1) + "</comments></cover>")
    with pytest.raises(SubmitError) as e:
        xmlcontrol.parse(data)
    assert (e.value.code, e.value.status) == ("too_large", 413)


# --------------------------------------------------------------------------- parity with the XSD
GOOD = [
    FULL, wrap(""), wrap("<cover/>"), wrap("<sender/>"),
    wrap("<sender><csid></csid></sender>"),
    wrap("<recipient><number> 555 </number></recipient>"),
    wrap("<recipient><number>1</number><name/><company/></recipient>" * 3),
    wrap("<recipient><number>1</number></recipient><retries> 0 </retries>"),
    wrap("<recipient><number>1</number></recipient><retries>+10</retries>"),
    wrap("<recipient><number>1</number></recipient><retention>7</retention>"),
    wrap("<recipient><number>1</number></recipient><retention>36500</retention>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28T23:59:59.123456Z</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28T00:00:00+14:00</schedule>"),
    wrap("<recipient><number>1</number></recipient><notifications><destination>a.b-c_d</destination>"
         "</notifications>"),
    wrap("<!-- comment --><recipient><number>1</number><?pi x?></recipient>"),
    wrap("<cover><comments>" + "é" * 4000 + "</comments></cover>"),
    b'<?xml version="1.0" encoding="ISO-8859-1"?><schedulefax><recipient><number>1</number>'
    b'<name>Jos\xe9</name></recipient></schedulefax>',
    wrap("<recipient><number>1</number></recipient><notifications>"
         + "<email>a@b</email>" * 20 + "</notifications>"),
]
BAD = [
    b"<fax><recipient><number>1</number></recipient></fax>",
    b"<schedulefax/>",
    b'<schedulefax xmlns="urn:x"><recipient><number>1</number></recipient></schedulefax>',
    wrap("<sender/><cover/>"),                                          # out of order
    wrap("<cover/><cover/>"),
    wrap("<recipient><name>x</name></recipient>"),
    wrap("<recipient><number>abc</number></recipient>"),
    wrap("<recipient><number>(+)</number></recipient>"),
    wrap("<recipient><number>" + "1" * 41 + "</number></recipient>"),
    wrap("<recipient><number>1</number><fax>1</fax></recipient>"),
    wrap("<sender><csid>ABC</csid></sender>"),
    wrap("<sender><csid>" + "1" * 21 + "</csid></sender>"),
    wrap("<cover><subject>" + "s" * 201 + "</subject></cover>"),
    wrap("<cover>text<subject/></cover>"),
    wrap("<cover><subject>a<b/></subject></cover>"),
    wrap('<cover id="1"/>'),
    wrap('<recipient><number x="1">1</number></recipient>'),
    wrap('<recipient xml:lang="en"><number>1</number></recipient>'),
    wrap("<recipient><number>1</number></recipient><retries>11</retries>"),
    wrap("<recipient><number>1</number></recipient><retries>1_0</retries>"),
    wrap("<recipient><number>1</number></recipient><retries>1.0</retries>"),
    wrap("<recipient><number>1</number></recipient><retries>\u00a05</retries>"),
    wrap("<recipient><number>1</number></recipient><retrydelay>9</retrydelay>"),
    wrap("<recipient><number>1</number></recipient><retention>3</retention>"),
    wrap("<recipient><number>1</number></recipient><resolution> fine</resolution>"),
    wrap("<recipient><number>1</number></recipient><resolution>high</resolution>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-30T00:00:00Z</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28 10:00:00</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28T24:00:00Z</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>2026-02-28T10:00:00+15:00</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>0000-01-01T10:00:00Z</schedule>"),
    wrap("<recipient><number>1</number></recipient><schedule>-5</schedule>"),
    wrap("<recipient><number>1</number></recipient><notifications/>"),
    wrap("<recipient><number>1</number></recipient><notifications>"
         + "<email>a@b</email>" * 21 + "</notifications>"),
    wrap("<recipient><number>1</number></recipient><notifications><email>nobody</email></notifications>"),
    wrap('<recipient><number>1</number></recipient><notifications><email format="png">a@b</email>'
         '</notifications>'),
    wrap("<recipient><number>1</number></recipient><notifications><webhook>ftp://x</webhook></notifications>"),
    wrap("<recipient><number>1</number></recipient><notifications><destination>a b</destination>"
         "</notifications>"),
    wrap("<recipient><number>1</number></recipient><notifications><printer>x</printer></notifications>"),
    wrap("<recipient><number>1</number></recipient><retention>0</retention><retries>1</retries>"),
    wrap("<recipient><number>1</number></recipient>tail"),
]


@pytest.mark.parametrize("data", GOOD, ids=range(len(GOOD)))
def test_good_samples_pass_both(data):
    assert xsd_ok(data), XSD.error_log
    assert ours_ok(data)


@pytest.mark.parametrize("data", BAD, ids=range(len(BAD)))
def test_bad_samples_fail_both(data):
    assert not xsd_ok(data)
    assert not ours_ok(data)


def test_good_samples_follow_the_dtd_structure():
    for data in (FULL, wrap(""), GOOD[6]):
        assert DTD.validate(etree.fromstring(data)), DTD.error_log


def test_documented_examples_validate():
    """Every <schedulefax> example in docs/server.md validates against the XSD and parses."""
    text = docs_text()
    assert text is not None, "docs/server.md has no control file example"
    examples = re.findall(r"```xml\n(.*?)```", text, re.S)
    examples = [e for e in examples if "<schedulefax" in e]
    assert examples
    for e in examples:
        data = e.encode()
        assert xsd_ok(data), (e, XSD.error_log)
        assert ours_ok(data)


# --------------------------------------------------------------------------- differential fuzz
VALUES = st.sampled_from([
    "", " ", "1", "+1 555 0100", "5551234567", "abc", "a@b", "a b@c", "https://x.y/z", "http://", "0", "7", "6",
    "10", "11", "-1", "+3", " 42 ", "fine", "standard", "superfine", "pdf", "tiff", "x" * 21, "1" * 20,
    "2026-12-24T08:30:00Z", "2026-12-24T08:30:00", "2026-13-01T00:00:00Z", "1796400000", "1796400000.1234567",
    "\t5\n", "é", "<&>", "name_1", "2024-02-29T12:00:00-14:00", "2023-02-29T12:00:00Z",
])
LEAF_NAMES = sorted({name for _, name in xmlcontrol.LEAVES} | {"bogus"})


def _element(draw, name: str, depth: int) -> str:
    if name in xmlcontrol.CONTENT and depth < 3 and draw(st.booleans()):
        children = []
        for _ in range(draw(st.integers(0, 4))):
            children.append(_element(draw, draw(st.sampled_from(_child_names(name))), depth + 1))
        inner = "".join(children)
    else:
        inner = _escape(draw(VALUES))
    attr = ""
    if draw(st.integers(0, 9)) == 0:
        attr = f' format="{_escape(draw(VALUES))}"'
    return f"<{name}{attr}>{inner}</{name}>"


def _child_names(parent: str) -> list[str]:
    names = []
    for n, _, _ in xmlcontrol.CONTENT[parent]:
        names.extend(n if isinstance(n, tuple) else (n,))
    return names + ["bogus"]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


@st.composite
def documents(draw) -> bytes:
    """A <schedulefax> built from its own element names in random order and counts,
    with values near the edges of their types."""
    model = [n for n, _, _ in xmlcontrol.CONTENT["schedulefax"]]
    parts = []
    for name in model:
        for _ in range(draw(st.sampled_from([0, 1, 1, 2]))):
            parts.append(_element(draw, name, 1))
    if draw(st.integers(0, 4)) == 0:
        parts = draw(st.permutations(parts))
    return f"<schedulefax>{''.join(parts)}</schedulefax>".encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents())
def test_fuzz_parser_agrees_with_the_xsd(data):
    assert ours_ok(data) == xsd_ok(data), data


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=400),
                 st.builds(lambda a, b, c: FULL[:a] + b + FULL[c:], st.integers(0, len(FULL)),
                           st.binary(max_size=20), st.integers(0, len(FULL)))))
def test_fuzz_parser_raises_only_submit_errors(data):
    try:
        xmlcontrol.parse(data)
    except SubmitError as exc:
        assert exc.code in ("bad_xml", "invalid_metadata", "too_many", "too_large")
        assert 400 <= exc.status < 500
