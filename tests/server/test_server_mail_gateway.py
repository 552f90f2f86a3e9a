"""mail2fax through its real SMTP port: a real Service (SQLite store, submit, outbound
queue without a line) runs in a thread; Debian's swaks and Python's smtplib are the
clients. Every refusal is an SMTP reply with its code, and nothing is queued for it."""
from __future__ import annotations

import email.message
import email.policy
import io
import re
import shutil
import smtplib
import ssl
import subprocess

import numpy as np
import pytest
from mailkit import RunningService, make_cert

from xmfax import document
from xmfax.server.config import ServerConfig
from xmfax.server.mail2fax import hash_password

DOMAIN = "fax.example"
PASSWORD = "correct horse"
MAX_BYTES = 400_000


@pytest.fixture(scope="module")
def pdf_2pages() -> bytes:
    pages = document.load("First page of the test document.\fSecond page, with more words on it.".encode(),
                          resolution="fine")
    buf = io.BytesIO()
    document.save(pages, buf, format="pdf")
    return buf.getvalue()


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mailgw")
    cert = make_cert(folder / "tls")
    cfg = ServerConfig(data_dir=folder / "data", http="127.0.0.1:0", sections={
        "mail2fax": {"listen": "127.0.0.1:0", "domain": DOMAIN, "allowed_senders": ["*@example.com"],
                     "auth": [{"name": "alice", "password_hash": hash_password(PASSWORD)},
                              {"name": "bob", "password_hash": hash_password("bobpw"), "senders": ["bob@example.com"]}],
                     "tls_cert": str(cert.cert), "tls_key": str(cert.key), "max_message_bytes": MAX_BYTES,
                     "max_recipients": 30},
        "outbound": {"default_country": "1"},
    })
    with RunningService(cfg) as svc:
        svc.cert = cert
        svc.port = svc.service.smtp_address[1]
        yield svc


def _client(gw, *, tls=True, login="alice", password=PASSWORD) -> smtplib.SMTP:
    c = smtplib.SMTP("127.0.0.1", gw.port, timeout=30)
    c.ehlo("client.test")
    if tls:
        c.starttls(context=ssl.create_default_context(cafile=str(gw.cert.cert)))
        c.ehlo("client.test")
    if login:
        c.login(login, password)
    return c


def _mail(body="Please fax this.", attachments=(), sender="alice@example.com", to=("+15551234567@" + DOMAIN,),
          subject="Test fax", html=None) -> email.message.EmailMessage:
    msg = email.message.EmailMessage()
    msg["From"] = f"Alice Example <{sender}>"
    msg["To"] = ", ".join(to)
    msg["Subject"] = subject
    if html is not None and body is None:
        msg.set_content(html, subtype="html")
    elif body is not None:
        msg.set_content(body)
    for name, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg


def _queued(reply: bytes | str) -> tuple[str, list[str]]:
    text = reply.decode() if isinstance(reply, bytes) else reply
    m = re.search(r"queued as broadcast ([0-9a-f]{16}): \d+ fax\(es\) ((?:[0-9a-f]{16} ?)+)", text)
    assert m, text
    return m.group(1), m.group(2).split()


def _send(c: smtplib.SMTP, msg, rcpts=None) -> tuple[int, bytes]:
    rcpts = rcpts or [a.strip() for a in msg["To"].split(",")]
    code, _ = c.mail("alice@example.com")
    assert code == 250
    for r in rcpts:
        code, text = c.rcpt(r)
        assert code == 250, text
    return c.data(msg.as_bytes(policy=email.policy.SMTP))      # CRLF line ends, as on the wire


def _count(gw) -> int:
    return len(gw.store.list_faxes(limit=10000))


def _pages(gw, fax_id):
    name, = [f["name"] for f in gw.store.files(fax_id) if f["kind"] == "tiff"]
    return document.load(gw.store.read_file(fax_id, "tiff", name))


@pytest.mark.interop
def test_mail_gateway_swaks_pdf_is_queued_with_its_pages(gw, tmp_path, pdf_2pages):
    """The brief's swaks line, through STARTTLS and AUTH PLAIN: one transaction, the cover
    sheet (the body) and the PDF's two pages, as stored (encrypted) TIFF."""
    swaks = shutil.which("swaks")
    if swaks is None:
        pytest.skip("swaks is not installed (Debian package swaks)")
    doc = tmp_path / "doc.pdf"
    doc.write_bytes(pdf_2pages)
    # swaks reads a value starting with "+" as an option of its own: a leading space keeps it an address
    out = subprocess.run([swaks, "--to", f" +15551234567@{DOMAIN}", "--from", "alice@example.com",
                          "--attach", f"@{doc}", "--attach-type", "application/pdf", "--body", "See the attached PDF.",
                          "--tls", "--auth", "PLAIN", "--auth-user", "alice", "--auth-password", PASSWORD,
                          "--server", f"127.0.0.1:{gw.port}", "--timeout", "60"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "<~  235 2.7.0 Authentication successful" in out.stdout
    broadcast, (fax_id,) = _queued(out.stdout)
    fax = gw.store.get_fax(fax_id)
    assert fax["broadcast_id"] == broadcast and fax["direction"] == "out" and fax["status"] == "queued"
    assert fax["number"] == "+15551234567" and fax["sender"] == "alice@example.com" and fax["pages"] == 3
    pages = _pages(gw, fax_id)
    assert len(pages) == 3                                     # cover + the two PDF pages
    direct = document.load(pdf_2pages, resolution="fine")
    for got, want in zip(pages[1:], direct):
        # the header line is added on top; below it the page is the PDF's page
        assert got.width == want.width and got.rows == want.rows
        diff = np.count_nonzero(got.image[120:] != want.image[120:])
        assert diff < 0.001 * got.image[120:].size, diff
    assert np.count_nonzero(pages[1].image) != np.count_nonzero(pages[2].image)
    names = sorted(f["name"] for f in gw.store.files(fax_id) if f["kind"] == "source")
    assert names == ["doc.pdf"]
    report, = [n for n in (fax["metadata"] or {}).get("notifications", [])]
    assert report["type"] == "email" and report["to"] == ["alice@example.com"] and report["format"] == "none"


def test_mail_gateway_several_recipients_several_transactions(gw, pdf_2pages):
    msg = _mail(attachments=[("a.pdf", pdf_2pages, "application/pdf")],
                to=(f"+15551234567@{DOMAIN}", f"1-555-987-6543@{DOMAIN.upper()}", f"+15551234567@{DOMAIN}"))
    with _client(gw) as c:
        code, reply = _send(c, msg)
    assert code == 250
    broadcast, ids = _queued(reply)
    assert len(ids) == 2                                       # the same number twice is one fax
    rows = gw.store.list_faxes(broadcast_id=broadcast)
    assert sorted(r["number"] for r in rows) == ["+15551234567", "+15559876543"]
    assert all(r["status"] == "queued" and r["pages"] == 3 for r in rows)


def test_mail_gateway_text_only_and_html_only_bodies(gw):
    with _client(gw) as c:
        code, reply = _send(c, _mail(body="Just a short note.\n\n-- \nAlice's signature\n"))
        assert code == 250
        (_, (plain,)) = _queued(reply)
        code, reply = _send(c, _mail(body=None, html="<html><head><style>p{}</style></head><body><p>Hello "
                                                     "<b>fax</b></p><ul><li>one</li></ul></body></html>"))
        assert code == 250
        (_, (html,)) = _queued(reply)
    for fax_id in (plain, html):
        assert len(_pages(gw, fax_id)) == 1                    # the body as one text page, no cover
        src = gw.store.read_file(fax_id, "source", "message.txt").decode()
        assert "signature" not in src
    assert gw.store.read_file(html, "source", "message.txt").decode() == "Hello fax\n\n* one"


@pytest.mark.parametrize("rcpt, code, status", [
    ("+15551234567@other.example", 550, "5.7.1"),
    ("someone@" + DOMAIN, 550, "5.1.3"),
    ("+1555@" + DOMAIN, 550, "5.1.3"),
    ("+15551234567", 550, "5.7.1"),
])
def test_mail_gateway_recipients_refused(gw, rcpt, code, status):
    with _client(gw) as c:
        assert c.mail("alice@example.com")[0] == 250
        got, text = c.rcpt(rcpt)
    assert got == code and text.decode().startswith(status), text


def test_mail_gateway_too_many_recipients(gw):
    with _client(gw) as c:
        c.mail("alice@example.com")
        codes = [c.rcpt(f"+155512340{i:02d}@{DOMAIN}")[0] for i in range(32)]
    assert codes == [250] * 30 + [452, 452]


def test_mail_gateway_many_recipients_reply_fits_one_line(gw):
    """30 transactions: the 250 reply stays within 512 octets (RFC 5321 §4.5.3.1.5)."""
    msg = _mail(body="A short notice to everyone.")
    with _client(gw) as c:
        code, reply = _send(c, msg, [f"+155598700{i:02d}@{DOMAIN}" for i in range(30)])
    assert code == 250 and len(reply) + 6 <= 512, reply
    broadcast = re.search(rb"broadcast ([0-9a-f]{16}): 30 fax\(es\)$", reply).group(1).decode()
    rows = gw.store.list_faxes(broadcast_id=broadcast, limit=100)
    assert len(rows) == 30 and {r["number"] for r in rows} == {f"+155598700{i:02d}" for i in range(30)}


def test_mail_gateway_senders_checked(gw):
    before = _count(gw)
    with _client(gw) as c:
        code, text = c.mail("mallory@evil.test")
        assert code == 550 and b"not allowed" in text
        assert c.mail("")[0] == 550                             # the null sender
    with _client(gw) as c:                                      # MAIL FROM fine, From header not
        code, text = _send(c, _mail(sender="mallory@evil.test"))
        assert code == 550 and b"From:" in text
    with _client(gw, login="bob", password="bobpw") as c:       # bob may only be bob
        assert c.mail("alice@example.com")[0] == 550
        c.rset()
        assert c.mail("bob@example.com")[0] == 250
    assert _count(gw) == before


def test_mail_gateway_auth_rules(gw):
    with _client(gw, login=None) as c:                          # TLS but no AUTH
        code, text = c.mail("alice@example.com")
        assert code == 530, text
    with _client(gw, tls=False, login=None) as c:               # AUTH before STARTTLS
        assert not c.has_extn("auth")
        code, text = c.docmd("AUTH", "PLAIN AGFsaWNlAGNvcnJlY3QgaG9yc2U=")
        assert code == 538, text
    with _client(gw, login=None) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login("alice", "wrong password")
        assert e.value.smtp_code == 535
    with _client(gw, login=None) as c:                          # AUTH LOGIN works too
        code, _ = c.docmd("AUTH", "LOGIN")
        assert code == 334
        assert c.docmd(__import__("base64").b64encode(b"alice").decode())[0] == 334
        assert c.docmd(__import__("base64").b64encode(PASSWORD.encode()).decode())[0] == 235


def test_mail_gateway_oversize(gw):
    big = b"%PDF-1.4\n" + b"0" * (MAX_BYTES + 1000)
    before = _count(gw)
    with _client(gw) as c:
        assert c.has_extn("size") and int(c.esmtp_features["size"]) == MAX_BYTES
        code, text = c.mail("alice@example.com", [f"SIZE={MAX_BYTES * 2}"])
        assert code == 552, text
        c.rset()
        code, text = _send(c, _mail(attachments=[("big.pdf", big, "application/pdf")]))
    assert code == 552, text
    assert _count(gw) == before


def _png_bomb(side: int = 14000) -> bytes:
    """A 1-bit PNG of side x side white pixels (196 Mpixel, over PIL's bomb limit) in ~35 kB."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    z = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * (side // 8)
    idat = b"".join(z.compress(row) for _ in range(side)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, data, ctype, status, why", ids=["broken_pdf", "text_as_pdf", "random_pdf", "zip",
                                                                "broken_png", "png_bomb"], argvalues=[
    ("broken.pdf", b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\ntrailer << /Root 1 0 R >>\n%%EOF",
     "application/pdf", "5.6.0", b"bad_document"),
    ("fake.pdf", b"this is not a pdf at all, just text", "application/pdf", "5.6.0", b"not a PDF"),
    ("random.pdf", bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8)), "application/pdf",
     "5.6.0", b"not a PDF"),
    ("archive.zip", b"PK\x03\x04" + b"\0" * 100, "application/zip", "5.6.1", b"cannot be faxed"),
    ("fake.png", b"GIF89a....", "image/png", "5.6.0", b"fake.png"),
    ("bomb.png", _png_bomb, "image/png", "5.6.0", b"decompression bomb"),        # made when run
])
def test_mail_gateway_hostile_or_unfaxable_attachment_is_refused(gw, name, data, ctype, status, why):
    data = data() if callable(data) else data
    before = _count(gw)
    with _client(gw) as c:
        code, text = _send(c, _mail(attachments=[(name, data, ctype)]))
    assert code == 554 and text.decode().startswith(status) and why in text, text
    assert _count(gw) == before


def test_mail_gateway_octet_stream_by_file_name(gw, pdf_2pages):
    with _client(gw) as c:
        code, reply = _send(c, _mail(body="", attachments=[("scan.PDF", pdf_2pages, "application/octet-stream")]))
    assert code == 250, reply
    _, (fax_id,) = _queued(reply)
    assert len(_pages(gw, fax_id)) == 3                       # cover (subject) + 2


@pytest.mark.interop
def test_mail_gateway_postgresql(tmp_path, new_pg_database, pdf_2pages):
    """The same path on a PostgreSQL store."""
    cert = make_cert(tmp_path / "tls")
    cfg = ServerConfig(data_dir=tmp_path / "data", http="127.0.0.1:0", database=new_pg_database(), sections={
        "mail2fax": {"listen": "127.0.0.1:0", "domain": DOMAIN, "auth": [{"name": "alice", "password_hash":
                                                                         hash_password(PASSWORD)}],
                     "tls_cert": str(cert.cert), "tls_key": str(cert.key)}})
    with RunningService(cfg) as svc:
        svc.cert, svc.port = cert, svc.service.smtp_address[1]
        with _client(svc) as c:
            code, reply = _send(c, _mail(attachments=[("a.pdf", pdf_2pages, "application/pdf")]))
        assert code == 250
        broadcast, (fax_id,) = _queued(reply)
        assert svc.store.dialect == "postgresql"
        assert svc.store.get_fax(fax_id)["status"] == "queued" and len(_pages(svc, fax_id)) == 3


@pytest.mark.parametrize("table, says", ids=["smtp", "mail2fax"], argvalues=[
    ('[smtp]\nhots = "x"\n', "[smtp] hots: unknown key"),
    ('[mail2fax]\nlisten = "127.0.0.1:0"\ndomain = "fax.example"\n', "[mail2fax] auth: require_auth"),
])
def test_mail_gateway_bad_config_stops_xmfax_serve(tmp_path, table, says):
    """A mistake in [smtp] or [mail2fax] stops `xmfax serve` at start (exit 2), naming the key."""
    import sys

    (tmp_path / "bad.toml").write_text(table)
    out = subprocess.run([sys.executable, "-m", "xmfax", "serve", "--data", str(tmp_path / "data"), "--http",
                          "127.0.0.1:0", "--config", str(tmp_path / "bad.toml")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "ready" not in out.stdout, (out.returncode, out.stdout, out.stderr)
    assert says in out.stderr
