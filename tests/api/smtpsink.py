"""A tiny SMTP server for tests: accepts every message and keeps it (RFC 5321, the bare minimum).

    with SMTPSink() as sink:
        smtplib.SMTP("127.0.0.1", sink.port).send_message(msg)
    sink.messages   # [(mail_from, [rcpt_to ...], email.message.EmailMessage)]
"""
from __future__ import annotations

import email
import email.policy
import socketserver
import threading


class _Handler(socketserver.StreamRequestHandler):
    timeout = 10

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        sink: SMTPSink = self.server.sink          # type: ignore[attr-defined]
        self.reply("220 sink.test ESMTP test sink")
        mail_from, rcpt = None, []
        while True:
            raw = self.rfile.readline(1 << 16)
            if not raw:
                return
            line = raw.decode("ascii", "replace").rstrip("\r\n")
            verb = line[:4].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-sink.test\r\n250 8BITMIME\r\n")
                self.wfile.flush()
            elif verb == "HELO":
                self.reply("250 sink.test")
            elif verb == "MAIL":
                mail_from, rcpt = line.split(":", 1)[1].strip().strip("<>").split(">")[0], []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpt.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while True:
                    raw = self.rfile.readline(1 << 20)
                    if not raw or raw in (b".\r\n", b".\n"):
                        break
                    lines.append(raw[1:] if raw.startswith(b"..") else raw)   # dot-unstuffing
                message = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
                with sink.lock:
                    sink.messages.append((mail_from, rcpt, message))
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class SMTPSink:
    """Runs on 127.0.0.1 (a free port) in a thread while in a ``with`` block."""

    def __init__(self) -> None:
        self.messages: list = []
        self.lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.sink = self                 # type: ignore[attr-defined]
        self.host, self.port = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    def __enter__(self) -> "SMTPSink":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
