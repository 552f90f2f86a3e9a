"""Email to fax end to end: `xmfax serve` (a real subprocess) takes a mail on its SMTP
port, faxes it over T.38 to a real xmfax receiver in this process, and mails the status
report back through [smtp] to a real SMTP server (aiosmtpd); then a fax that cannot be
delivered, and its "NOT sent" report."""
from __future__ import annotations

import asyncio
import email.message
import io
import email.policy
import re
import smtplib
import ssl
import threading

import numpy as np
import pytest
from PIL import Image
from mailkit import SmtpServer, make_cert
from serve_proc import Serve

import xmfax
from xmfax import document
from xmfax.server.mail2fax import hash_password

DOMAIN = "fax.example"


class FarEnd:
    """An xmfax receiver on 127.0.0.1 (T.38, unpaced) in its own loop and thread; keeps
    the pages of every call it answers."""

    def __init__(self) -> None:
        self.results: list = []
        self.pages: list = []
        self.done = threading.Event()
        self.port = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.receiver = xmfax.receive(via="t38://127.0.0.1:0", local_id="+1 555 0199", realtime=False, once=True,
                                      on_page=lambda call, ev: self.pages.append(ev.page),
                                      on_done=self._on_done)
        task = asyncio.create_task(self.receiver.run())
        _, self.port = await asyncio.wait_for(self.receiver.ready(), 10)
        self._ready.set()
        await task

    def _on_done(self, result) -> None:
        self.results.append(result)
        self.done.set()

    def __enter__(self) -> "FarEnd":
        self._thread.start()
        assert self._ready.wait(10), "the receiver did not start"
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self._thread.is_alive():
            try:
                self.loop.call_soon_threadsafe(self.receiver.stop)
            except RuntimeError:        # its loop has ended already
                pass
            self._thread.join(15)


def _pdf(tmp_path) -> bytes:
    pages = document.load("Page one of the mailed fax.\fPage two of the mailed fax.".encode(), resolution="fine")
    document.save(pages, tmp_path / "letter.pdf")
    return (tmp_path / "letter.pdf").read_bytes()


def _mail(pdf: bytes, to: str) -> bytes:
    msg = email.message.EmailMessage()
    msg["From"] = "Alice <alice@example.com>"
    msg["To"] = to
    msg["Subject"] = "Contract"
    msg["Message-ID"] = "<m1@example.com>"
    msg.set_content("Here is the contract.\n")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="letter.pdf")
    return msg.as_bytes(policy=email.policy.SMTP)


def _submit(port: int, cert, to: str, data: bytes) -> str:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as c:
        c.starttls(context=ssl.create_default_context(cafile=str(cert.cert)))
        c.login("alice", "pw")
        c.mail("alice@example.com")
        assert c.rcpt(to)[0] == 250
        code, reply = c.data(data)
    assert code == 250, reply
    return reply.decode()


@pytest.mark.interop
def test_mail_report_end_to_end(tmp_path):
    cert = make_cert(tmp_path / "tls")
    pdf = _pdf(tmp_path)
    with SmtpServer() as relay, FarEnd() as far:
        config = tmp_path / "xmfax.toml"
        config.write_text(f"""
[outbound]
realtime = false
poll_interval = 0.2
answer_timeout = 2
retry_delays = [0.5]

[inbound]
listen = ["t38://127.0.0.1:0"]
realtime = false

[notify]
retry_delays = [0.3]
poll_interval = 0.2

[[destinations]]
name = "inbox"
type = "email"
to = ["inbox@example.com"]
format = "tiff"

[[rules]]
name = "everything"
kind = "default"
destinations = ["inbox"]

[smtp]
host = "127.0.0.1"
port = {relay.port}
from = "Fax service <fax@xmfax.test>"

[mail2fax]
listen = "127.0.0.1:0"
domain = "{DOMAIN}"
tls_cert = "{cert.cert}"
tls_key = "{cert.key}"
max_attempts = 1

[[mail2fax.auth]]
name = "alice"
password_hash = "{hash_password('pw')}"
""")
        line = f"t38://127.0.0.1:{far.port}?local=127.0.0.1:0"
        with Serve(tmp_path, "--data", str(tmp_path / "data"), "--http", "127.0.0.1:0", "--config", str(config),
                   "--line", line) as node:
            assert node.url, node.stderr
            m = re.search(r"smtp 127\.0\.0\.1:(\d+)", node.extra)
            assert m, node.ready_line
            port = int(m.group(1))

            reply = _submit(port, cert, f"+15551234567@{DOMAIN}", _mail(pdf, f"+15551234567@{DOMAIN}"))
            fax_id = reply.split()[-1]
            assert far.done.wait(60), "no call reached the far end"
            result = far.results[0]
            assert result.ok and result.page_count == 3, result.reason_text
            direct = document.load(pdf, resolution="fine")
            for got, want in zip(far.pages[1:], direct):        # after the cover sheet, the PDF's pages
                assert got.width == want.width
                rows = min(got.rows, want.rows)
                diff = np.count_nonzero(got.image[120:rows] != want.image[120:rows])
                assert diff < 0.001 * got.width * rows, diff

            (mail_from, rcpts, report), = relay.wait(1, timeout=30)
            assert rcpts == ["alice@example.com"] and mail_from == "fax@xmfax.test"
            assert report["Subject"] == "Fax to +15551234567: sent (3 page(s))"
            body = report.get_body().get_content()
            assert "was sent: 3 page(s) delivered" in body and fax_id in body
            assert not list(report.iter_attachments())             # a report, not the fax again
            assert report["Auto-Submitted"] == "auto-replied" and report["In-Reply-To"] == "<m1@example.com>"

            # a fax received by the node leaves as T.37 simple-mode mail (RFC 3965 §4)
            fax_port = int(next(w for w in node.extra.split() if w.startswith("t38://")).rsplit(":", 1)[1])
            sent = [document.load(f"Inbound page {i}".encode(), resolution="fine")[0] for i in (1, 2)]
            result = asyncio.run(xmfax.send(sent, via=f"t38://127.0.0.1:{fax_port}?local=127.0.0.1:0",
                                            local_id="+1 555 0100", realtime=False))
            assert result.ok, result.reason_text
            _, (_, rcpts, inbound) = relay.wait(2, timeout=30)
            assert rcpts == ["inbox@example.com"]
            part, = inbound.iter_attachments()
            assert part.get_content_type() == "image/tiff" and part.get_param("application") == "faxbw"
            tiff = Image.open(io.BytesIO(part.get_content()))
            assert tiff.tag_v2[259] == 3 and tiff.tag_v2.get(292, 0) & 1 == 0     # RFC 3949 Profile S: MH
            got = document.load(part.get_content())
            assert [p.width for p in got] == [1728, 1728] and all(p.resolution.y_dpi == 196 for p in got)
            assert all(np.array_equal(g.image, s.image) for g, s in zip(got, sent))

            # the far end is gone: one attempt, failed, and the report says so
            far.stop()
            reply = _submit(port, cert, f"+15557654321@{DOMAIN}", _mail(pdf, f"+15557654321@{DOMAIN}"))
            fax_id = reply.split()[-1]
            *_, (_, rcpts, report) = relay.wait(3, timeout=60)
            assert rcpts == ["alice@example.com"]
            assert report["Subject"].startswith("Fax to +15557654321: failed"), report["Subject"]
            body = report.get_body().get_content()
            assert "was NOT sent" in body and fax_id in body
