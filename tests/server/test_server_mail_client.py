"""mailer.py against a real SMTP server (aiosmtpd in a thread): STARTTLS auto/require/off,
implicit TLS, AUTH, certificate checks, and 4yz/5yz replies -> temporary/permanent MailError.
Also the T.37 simple-mode attachment (RFC 3965 §4, RFC 3949 Profile S)."""
from __future__ import annotations

import asyncio
import io
import types

import numpy as np
import pytest
from mailkit import SmtpServer, free_port, make_cert
from PIL import Image

from xmfax import document
from xmfax.page import Page, Resolution
from xmfax.server.config import ConfigError, ServerConfig
from xmfax.server.mailer import MailError, SmtpConfig, attach_fax_tiff, deliver, new_message, send_mail


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    return make_cert(tmp_path_factory.mktemp("mailcert"))


def _msg(to=("someone@example.net",), subject="hello") -> object:
    msg = new_message()
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    msg.set_content("a line of text\n")
    return msg


def _cfg(srv, **kw) -> SmtpConfig:
    d = {"host": "127.0.0.1", "port": srv.port, "from": "fax@xmfax.test", "timeout": 10}
    d.update(kw)
    return SmtpConfig.from_dict(d)


def test_mail_client_starttls_auto_and_auth(cert, monkeypatch):
    monkeypatch.setenv("XMFAX_TEST_SMTP_PW", "s3cret")
    with SmtpServer(tls=cert, users={"relay": "s3cret"}) as srv:
        service = types.SimpleNamespace(config=ServerConfig(sections={"smtp": {
            "host": "127.0.0.1", "port": srv.port, "from": "Fax <fax@xmfax.test>", "username": "relay",
            "password_env": "XMFAX_TEST_SMTP_PW", "ca_file": str(cert.cert)}}))
        asyncio.run(send_mail(service, _msg(("a@example.net", "b@example.net"))))
        (mail_from, rcpts, msg), = srv.wait(1)
    assert mail_from == "fax@xmfax.test" and rcpts == ["a@example.net", "b@example.net"]
    assert srv.sessions[0] == {"tls": True, "auth": "relay"}
    assert msg["Subject"] == "hello" and msg["From"] == "Fax <fax@xmfax.test>"
    assert msg["Message-ID"] and msg["Date"]


def test_mail_client_auto_without_tls_offered_goes_clear():
    with SmtpServer() as srv:
        deliver(_cfg(srv), _msg())
        srv.wait(1)
    assert srv.sessions[0]["tls"] is False


def test_mail_client_require_refuses_a_relay_without_starttls():
    with SmtpServer() as srv:
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv, starttls="require"), _msg())
        assert not srv.messages
    assert e.value.temporary is False and "STARTTLS" in e.value.text


def test_mail_client_off_never_upgrades(cert):
    with SmtpServer(tls=cert) as srv:
        deliver(_cfg(srv, starttls="off"), _msg())
        srv.wait(1)
    assert srv.sessions[0]["tls"] is False


def test_mail_client_auth_only_after_tls(cert, monkeypatch):
    """aiosmtpd offers AUTH only over TLS: with starttls off and a username set, we say so."""
    monkeypatch.setenv("XMFAX_TEST_SMTP_PW", "s3cret")
    with SmtpServer(tls=cert, users={"relay": "s3cret"}) as srv:
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv, starttls="off", username="relay", password_env="XMFAX_TEST_SMTP_PW"), _msg())
    assert e.value.temporary is False and "offers no AUTH" in e.value.text


def test_mail_client_bad_password_is_permanent(cert, monkeypatch):
    monkeypatch.setenv("XMFAX_TEST_SMTP_PW", "wrong")
    with SmtpServer(tls=cert, users={"relay": "s3cret"}) as srv:
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv, username="relay", password_env="XMFAX_TEST_SMTP_PW", ca_file=str(cert.cert)), _msg())
        assert not srv.messages
    assert e.value.code == 535 and e.value.temporary is False


def test_mail_client_missing_password_variable(cert, monkeypatch):
    monkeypatch.delenv("XMFAX_TEST_SMTP_UNSET", raising=False)
    with SmtpServer(tls=cert, users={"relay": "s3cret"}) as srv:
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv, username="relay", password_env="XMFAX_TEST_SMTP_UNSET"), _msg())
    assert "XMFAX_TEST_SMTP_UNSET" in e.value.text and not e.value.temporary


def test_mail_client_untrusted_certificate_is_refused_unless_told(cert):
    with SmtpServer(tls=cert) as srv:
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv), _msg())                    # system CAs: the self-signed cert fails
        assert not srv.messages and e.value.temporary is False and "certificate" in e.value.text.lower()
        deliver(_cfg(srv, tls_verify=False), _msg())
        srv.wait(1)
    assert srv.sessions[0]["tls"] is True


def test_mail_client_implicit_tls(cert):
    with SmtpServer(tls=cert, implicit=True) as srv:
        deliver(_cfg(srv, tls=True, ca_file=str(cert.cert)), _msg())
        srv.wait(1)
        with pytest.raises(MailError) as e:             # the port speaks only TLS
            deliver(_cfg(srv, timeout=1), _msg())
    assert len(srv.messages) == 1 and e.value.temporary is True


@pytest.mark.parametrize("where, reply, temporary, code", [
    ("someone@example.net", "450 4.2.1 mailbox busy", True, 450),
    ("someone@example.net", "550 5.1.1 no such user", False, 550),
    ("DATA", "451 4.3.0 try later", True, 451),
    ("DATA", "554 5.6.0 content refused", False, 554),
    ("MAIL:fax@xmfax.test", "421 4.3.2 shutting down", True, 421),
    ("MAIL:fax@xmfax.test", "553 5.7.1 sender refused", False, 553),
])
def test_mail_client_reply_codes(where, reply, temporary, code):
    with SmtpServer() as srv:
        srv.replies[where] = reply
        with pytest.raises(MailError) as e:
            deliver(_cfg(srv), _msg())
        assert not srv.messages
    assert e.value.temporary is temporary and e.value.code == code
    assert reply.split(" ", 1)[1] in e.value.text


def test_mail_client_partly_refused_recipients_are_returned():
    with SmtpServer() as srv:
        srv.replies["gone@example.net"] = "550 5.1.1 gone"
        refused = deliver(_cfg(srv), _msg(("gone@example.net", "here@example.net")))
        (_, rcpts, _), = srv.wait(1)
    assert rcpts == ["here@example.net"] and list(refused) == ["gone@example.net"]


def test_mail_client_connection_refused_is_temporary():
    cfg = SmtpConfig.from_dict({"host": "127.0.0.1", "port": free_port(), "timeout": 5})
    with pytest.raises(MailError) as e:
        deliver(cfg, _msg())
    assert e.value.temporary is True


def test_mail_client_no_recipient():
    msg = new_message()
    msg.set_content("x")
    with pytest.raises(MailError, match="no recipient"):
        deliver(SmtpConfig(), msg)


@pytest.mark.parametrize("table, key", [
    ({"hots": "x"}, "hots"), ({"starttls": "yes"}, "starttls"), ({"port": 0}, "port"),
    ({"port": "25"}, "port"), ({"username": "u"}, "password_env"), ({"tls": "true"}, "tls"),
    ({"timeout": -1}, "timeout"), ({"from": "nobody"}, "from"), ({"ca_file": "/nonexistent/ca.pem"}, "ca_file"),
])
def test_mail_client_config_errors_name_the_key(table, key):
    with pytest.raises(ConfigError, match=rf"\[smtp\] {key}"):
        SmtpConfig.from_dict(table)


def test_mail_client_config_defaults():
    cfg = SmtpConfig.from_dict({})
    assert (cfg.host, cfg.port, cfg.starttls, cfg.tls, cfg.tls_verify) == ("localhost", 25, "auto", False, True)
    assert SmtpConfig.from_dict({"tls": True}).port == 465


# ---------------------------------------------------------------- T.37 simple mode
def _tiff_tags(data: bytes) -> list[dict]:
    img = Image.open(io.BytesIO(data))
    pages = []
    for i in range(img.n_frames):
        img.seek(i)
        tags = img.tag_v2
        pages.append({"width": tags[256], "compression": tags[259], "t4": tags.get(292, 0),
                      "xres": float(tags[282]), "yres": float(tags[283]), "unit": tags.get(296, 2),
                      "photometric": tags[262], "bits": tags.get(258, 1)})
    return pages


def test_mail_client_t37_attachment_is_profile_s():
    """A received fax stored as MMR at fine, plus a 300 dpi page, leaves as TIFF-FX Profile S
    (RFC 3949 §4.1: Compression 3 one-dimensional, 1728 wide, 204 x 98/196 dpi)."""
    rng = np.random.default_rng(3)
    fine = Page(rng.random((400, 1728)) < 0.05, Resolution.FINE)
    r300 = Page(rng.random((300, 2592)) < 0.05, Resolution.R300)
    std = Page(rng.random((200, 1728)) < 0.05, Resolution.STANDARD)
    buf = io.BytesIO()
    document.save([fine, r300, std], buf, format="tiff", codec="mmr")
    msg = new_message()
    msg["To"] = "user@example.net"
    msg.set_content("fax attached")
    attach_fax_tiff(msg, buf.getvalue(), "fax-0001.tif")
    wire = msg.as_bytes()
    import email
    import email.policy
    back = email.message_from_bytes(wire, policy=email.policy.default)
    part, = list(back.iter_attachments())
    assert part.get_content_type() == "image/tiff" and part.get_param("application") == "faxbw"
    assert part.get_filename() == "fax-0001.tif" and part["Content-Transfer-Encoding"] == "base64"
    pages = _tiff_tags(part.get_content())
    assert len(pages) == 3
    for p in pages:
        assert p["width"] == 1728 and p["compression"] == 3 and p["t4"] & 1 == 0
        assert p["xres"] == 204 and p["yres"] in (98, 196) and p["unit"] == 2 and p["photometric"] == 0
    assert [p["yres"] for p in pages] == [196, 196, 98]
    again = document.load(part.get_content())
    assert again[0].rows == 400 and np.array_equal(again[0].image, fine.image)   # lossless where already S
    assert again[1].rows == round(300 * 196 / 300)
