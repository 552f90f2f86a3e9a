"""A received fax goes out as mail, end to end: a real T.38 call into the service, the
routing table, the notifier, the [smtp] relay (a real SMTP server with STARTTLS and AUTH),
and the mails opened: T.37 simple mode (RFC 3965 §4: TIFF-FX profile S as
image/tiff; application=faxbw) for one destination, PDF for the number's user."""
from __future__ import annotations

import asyncio

import numpy as np
import pypdfium2

from inboundkit import address, make_config, pages, running, send, settled
from mailkit import SmtpServer, make_cert
from xmfax.document import load


def test_notify_received_fax_mailed_as_t37_and_pdf(tmp_path, store_url, monkeypatch):
    monkeypatch.setenv("XMFAX_E2E_SMTP_PW", "pw")
    cert = make_cert(tmp_path / "tls")
    sent_pages = pages(2)
    with SmtpServer(tls=cert, users={"relay": "pw"}) as srv:
        cfg = make_config(
            tmp_path / "data", tmp_path / "inbox", database=store_url if "://" in store_url else "",
            listen=["t38://127.0.0.1:0#+15551230001"],
            smtp={"host": "127.0.0.1", "port": srv.port, "starttls": "require", "ca_file": str(cert.cert),
                  "username": "relay", "password_env": "XMFAX_E2E_SMTP_PW", "from": "fax@xmfax.example"},
            numbers=[{"number": "+15551230001", "csid": "+1 555 123 0001", "users": ["bob"]}],
            users=[{"name": "bob", "email": "bob@example.com"}],
            destinations=[{"name": "t37", "type": "email", "to": ["archive@example.com"], "format": "tiff",
                           "subject": "Fax {{ id }} from {{ remote_id }}"}],
            rules=[{"name": "archive", "kind": "direct", "dnis": "+1555123000?", "destinations": ["t37"],
                    "continue": True},
                   {"name": "users", "kind": "directory"}])

        async def main():
            async with running(cfg) as svc:
                host, port = address(svc)
                result = await send(sent_pages, f"t38://{host}:{port}?local=127.0.0.1:0")
                assert result.ok, result.summary()
                (row,) = await settled(svc)
                return row, await svc.db(svc.store.notifications, row["id"])

        row, notes = asyncio.run(asyncio.wait_for(main(), 60))
        mails = {tuple(rcpts): msg for _, rcpts, msg in srv.wait(2)}
        assert all(s["tls"] and s["auth"] == "relay" for s in srv.sessions)
    assert row["notify_status"] == "delivered" and [n["status"] for n in notes] == ["delivered", "delivered"]

    t37 = mails[("archive@example.com",)]
    assert t37["Subject"] == f"Fax {row['id']} from +1 555 0100"
    (tiff,) = list(t37.iter_attachments())
    assert tiff.get_content_type() == "image/tiff" and tiff.get_param("application") == "faxbw"
    got = load(tiff.get_content())
    assert len(got) == 2
    for a, b in zip(got, sent_pages):                     # pixel for pixel what the far end sent
        assert a.image.shape == b.image.shape and np.array_equal(a.image, b.image)

    pdf_mail = mails[("bob@example.com",)]
    (pdf,) = list(pdf_mail.iter_attachments())
    assert pdf.get_content_type() == "application/pdf"
    doc = pypdfium2.PdfDocument(pdf.get_content())
    assert len(doc) == 2
    assert "+1 555 0100" in pdf_mail.get_body(("plain",)).get_content()
