"""mail2fax's pieces: MIME to documents (and hypothesis fuzzing of it: random and mutated
messages never raise anything but a MailContentError, and through the real handler always
get one SMTP reply line), the [mail2fax] config checks, password hashes, sender patterns."""
from __future__ import annotations

import email.message
import email.policy
import io
import re

import pytest
from aiosmtpd.smtp import Envelope, Session
from hypothesis import HealthCheck, given, settings, strategies as st
from mailkit import RunningService, make_cert

from xmfax.server.config import ConfigError, ServerConfig
from xmfax.server.mail2fax import (Mail2FaxConfig, MailContentError, MailUser, _Handler, documents_for, extract,
                                   hash_password, html_to_text, sender_allowed, verify_password)

REPLY = re.compile(r"^[245]\d\d [245]\.\d{1,3}\.\d{1,3} [\x20-\x7e]{1,400}$")


def _png() -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.new("1", (200, 100), 1).save(buf, format="PNG")
    return buf.getvalue()


def _sample(kind: str) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = "+15551234567@fax.example"
    msg["Subject"] = "Sample"
    if kind == "alternative":
        msg.set_content("plain body\n")
        msg.add_alternative("<p>html <b>body</b></p>", subtype="html")
        msg.add_attachment(_png(), maintype="image", subtype="png", filename="pic.png")
    elif kind == "related":
        msg.set_content("plain\n")
        msg.add_alternative("<p>logo: <img src='cid:logo'></p>", subtype="html")
        msg.get_payload()[1].add_related(_png(), maintype="image", subtype="png", cid="<logo>")
    elif kind == "text":
        msg.set_content("Dear Bob,\nthe numbers are attached.\n-- \nAlice\n")
        msg.add_attachment("a;b\n1;2\n", filename="numbers.txt")
    elif kind == "forward":
        inner = email.message.EmailMessage()
        inner["Subject"] = "inner"
        inner.set_content("inner body")
        msg.set_content("see below")
        msg.add_attachment(inner)
    return msg.as_bytes(policy=email.policy.SMTP)


def test_mail_mime_alternative_body_and_attachment():
    got = extract(_sample("alternative"))
    assert got.body == "plain body" and got.subject == "Sample"
    assert [(d.name, d.content_type) for d in got.attachments] == [("pic.png", "image/png")]
    assert got.from_addresses == [("Alice", "alice@example.com")]
    docs, cover = documents_for(got, body_as_cover=True)
    assert cover == {"subject": "Sample", "note": "plain body"} and [d.name for d in docs] == ["pic.png"]
    docs, cover = documents_for(got, body_as_cover=False)
    assert cover is None and [d.name for d in docs] == ["message.txt", "pic.png"]


def test_mail_mime_inline_logo_is_not_faxed_and_signature_dropped():
    got = extract(_sample("related"))
    assert got.attachments == [] and got.body == "plain"
    got = extract(_sample("text"))
    assert got.body == "Dear Bob,\nthe numbers are attached."
    assert [(d.name, d.data) for d in got.attachments] == [("numbers.txt", b"a;b\n1;2")]


def test_mail_mime_forwarded_message_is_refused():
    with pytest.raises(MailContentError) as e:
        extract(_sample("forward"))
    assert e.value.reply.startswith("554 5.6.1") and "attached message" in e.value.reply


def test_mail_mime_long_body_gets_its_own_page():
    msg = email.message.EmailMessage()
    msg["Subject"] = "long"
    msg.set_content("\n".join(f"line {i}" for i in range(80)))
    msg.add_attachment(_png(), maintype="image", subtype="png", filename="p.png")
    docs, cover = documents_for(extract(msg.as_bytes()), body_as_cover=True)
    assert cover == {"subject": "long"} and [d.name for d in docs] == ["message.txt", "p.png"]
    msg.get_payload()[0].set_content("word " * 1000)                 # one very long line
    docs, cover = documents_for(extract(msg.as_bytes()), body_as_cover=True)
    assert cover == {"subject": "long"} and [d.name for d in docs] == ["message.txt", "p.png"]


def test_mail_mime_html_to_text():
    html = ("<html><head><title>t</title><script>alert(1)</script></head><body><h1>Title</h1>"
            "<p>one&nbsp;two &amp; three</p><table><tr><td>a</td><td>b</td></tr></table></body></html>")
    assert html_to_text(html) == "Title\n\none\xa0two & three\n\nab"


def test_mail_mime_bare_attachment_message_and_unknown_charset():
    msg = email.message.EmailMessage()
    msg.set_content(_png(), maintype="image", subtype="png", filename="only.png")
    got = extract(msg.as_bytes())
    assert [d.name for d in got.attachments] == ["only.png"] and got.body == ""
    raw = (b"From: a@example.com\r\nSubject: x\r\nContent-Type: text/plain; charset=x-nonexistent\r\n\r\n"
           b"caf\xe9 body\r\n")
    assert extract(raw).body.startswith("caf")


# ------------------------------------------------------------------------ fuzzing
SAMPLES = [_sample(k) for k in ("alternative", "related", "text")]


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 200))]
        elif op == "insert":
            data[at:at] = draw(st.sampled_from([b"\r\n--", b"Content-Type: multipart/mixed; boundary=x\r\n",
                                                b"=?utf-8?b?", b"\r\n\r\n", b"Content-Transfer-Encoding: base64\r\n",
                                                b"charset=\"\xff\"", b"\x00", b"filename*=utf-8''%ff%fe"]))
        else:
            n = draw(st.integers(1, 300))
            data[at:at] = data[at:at + n]
    return bytes(data)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.one_of(st.binary(max_size=2000), mutated()))
def test_mail_mime_fuzz_extract_raises_only_content_errors(raw):
    try:
        got = extract(raw)
    except MailContentError as exc:
        assert REPLY.match(exc.reply), exc.reply
        return
    docs, cover = documents_for(got, body_as_cover=True)
    for d in docs:
        assert d.data and d.name and "/" not in d.name


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mailfuzz")
    cert = make_cert(folder / "tls")
    cfg = ServerConfig(data_dir=folder / "data", http="127.0.0.1:0", sections={"mail2fax": {
        "listen": "127.0.0.1:0", "domain": "fax.example", "auth": [{"name": "alice", "password_hash":
                                                                  hash_password("pw")}],
        "allowed_senders": ["*@example.com"], "tls_cert": str(cert.cert), "tls_key": str(cert.key)}})
    with RunningService(cfg) as svc:
        yield svc, svc.service.component("MailGateway")


@settings(max_examples=25, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
          deadline=None)
@given(raw=mutated())
def test_mail_mime_fuzz_handler_always_replies(gateway, raw):
    """Mutated messages into the real handler of a running gateway: one SMTP reply line,
    never an exception (a message that still parses is queued: 250)."""
    svc, gw = gateway
    session = Session(svc.loop)
    session.auth_data = MailUser("alice", "")
    envelope = Envelope()
    envelope.mail_from = "alice@example.com"
    envelope.rcpt_tos = ["+15551234567@fax.example"]
    envelope.fax_numbers = ["+15551234567"]
    envelope.content = envelope.original_content = raw
    reply = svc.run(_Handler(gw).handle_DATA(None, session, envelope), timeout=60)
    assert isinstance(reply, str) and REPLY.match(reply), reply


# ------------------------------------------------------------------------ config and passwords
def test_mail_mime_password_hash_round_trip():
    h = hash_password("s3cret ünïcode")
    assert h.startswith("scrypt$16384$8$1$") and h != hash_password("s3cret ünïcode")    # salted
    assert verify_password("s3cret ünïcode", h) and verify_password("s3cret ünïcode".encode(), h)
    assert not verify_password("s3cret", h)
    assert not verify_password("x", "plain-text-password") and not verify_password("x", "scrypt$3$8$1$AA==$AA==")


def test_mail_mime_sender_patterns():
    pats = ("*@example.com", "boss@other.org")
    assert sender_allowed("Anyone@EXAMPLE.com", pats) and sender_allowed("boss@other.org", pats)
    assert not sender_allowed("a@example.com.evil.test", pats) and not sender_allowed("x@other.org", pats)


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("mimecert"))


def _valid(cert, **over) -> dict:
    d = {"listen": "127.0.0.1:2525", "domain": "fax.example", "tls_cert": str(cert.cert), "tls_key": str(cert.key),
         "auth": [{"name": "alice", "password_hash": hash_password("pw")}]}
    d.update(over)
    return {k: v for k, v in d.items() if v is not None}


def test_mail_mime_config_defaults_and_valid(cert):
    empty = Mail2FaxConfig.from_dict({})
    assert empty.listen == "" and empty.require_auth and empty.max_message_bytes == 25 * 1024 * 1024
    assert empty.body_as_cover and empty.report
    cfg = Mail2FaxConfig.from_dict(_valid(cert, domain=["Fax.Example.", "fax2.example"]))
    assert cfg.domains == ("fax.example", "fax2.example") and list(cfg.users) == ["alice"]
    assert cfg.ssl_context() is not None


@pytest.mark.parametrize("over, key", [
    ({"lisen": "x"}, "lisen"),
    ({"listen": "nohostport"}, "listen"),
    ({"domain": None}, "domain"),
    ({"domain": "not a domain"}, "domain"),
    ({"auth": []}, "auth"),
    ({"auth": [{"name": "a", "password_hash": "plain"}]}, r"auth\[1\]\.password_hash"),
    ({"auth": [{"name": "a b", "password_hash": "x"}]}, r"auth\[1\]\.name"),
    ({"auth": [{"name": "a", "password_hash": "x", "pasword": 1}]}, r"auth\[1\]\.pasword"),
    ({"tls_cert": None, "tls_key": None}, "tls_cert"),
    ({"tls_key": None}, "tls_key"),
    ({"tls_cert": "/nonexistent.pem"}, "tls_cert"),
    ({"require_auth": False}, "allowed_senders"),
    ({"allowed_senders": ["nobody"]}, "allowed_senders"),
    ({"max_message_bytes": 10}, "max_message_bytes"),
    ({"max_recipients": 0}, "max_recipients"),
    ({"require_auth": "yes"}, "require_auth"),
    ({"resolution": "ultra"}, "resolution"),
    ({"timeout": 0}, "timeout"),
])
def test_mail_mime_config_errors_name_the_key(cert, over, key):
    with pytest.raises(ConfigError, match=rf"^\[mail2fax\] {key}"):
        Mail2FaxConfig.from_dict(_valid(cert, **over))


def test_mail_mime_plain_auth_allowed_without_tls(cert):
    cfg = Mail2FaxConfig.from_dict(_valid(cert, tls_cert=None, tls_key=None, allow_plain_auth=True))
    assert cfg.ssl_context() is None and cfg.allow_plain_auth
    cfg = Mail2FaxConfig.from_dict(_valid(cert, require_auth=False, auth=None, tls_cert=None, tls_key=None,
                                          allowed_senders="*@lan.example"))
    assert cfg.allowed_senders == ("*@lan.example",)
