"""Test helpers for mail: a self-signed certificate made here, and a real SMTP server
(aiosmtpd's Controller, in its own thread) that keeps what it receives.

    cert = make_cert(tmp_path)                      # .cert, .key, .client_context()
    with SmtpServer(tls=cert, users={"relay": "pw"}) as srv:
        ... srv.messages  # [(mail_from, rcpt_tos, EmailMessage)]
"""
from __future__ import annotations

import datetime as dt
import email
import email.policy
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cert:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, self.key)
        return ctx


def make_cert(folder: Path, name: str = "localhost") -> Cert:
    """A self-signed certificate for ``name`` and 127.0.0.1 (cryptography, RSA 2048)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return Cert(cert_path, key_path)


class _Keeper:
    """aiosmtpd handler: keeps each message; ``replies`` maps a recipient (or "MAIL:addr",
    "DATA") to a canned reply to test the client's error paths."""

    def __init__(self, server: "SmtpServer") -> None:
        self.server = server

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        reply = self.server.replies.get(f"MAIL:{address}")
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = self.server.replies.get(address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        reply = self.server.replies.get("DATA")
        if reply:
            return reply
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.server.lock:
            self.server.messages.append((envelope.mail_from, list(envelope.rcpt_tos), msg))
            self.server.sessions.append({"tls": session.ssl is not None, "auth": session.auth_data})
            self.server.arrived.set()
        return "250 OK kept"


class SmtpServer:
    """aiosmtpd on 127.0.0.1 in a thread. ``tls``: a Cert for STARTTLS (``implicit=True``:
    TLS from the first byte instead). ``users``: AUTH PLAIN/LOGIN logins (then required)."""

    def __init__(self, *, tls: Cert | None = None, implicit: bool = False, users: dict | None = None,
                 auth_require_tls: bool = True) -> None:
        self.messages: list = []
        self.sessions: list = []
        self.replies: dict[str, str] = {}
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self.port = free_port()
        self.users = users or {}
        kwargs: dict = {}
        if tls and not implicit:
            kwargs["tls_context"] = tls.server_context()
        if self.users:
            kwargs.update(authenticator=self._auth, auth_required=True, auth_require_tls=auth_require_tls)
        self.controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port,
                                     ssl_context=tls.server_context() if tls and implicit else None,
                                     server_hostname="sink.test", **kwargs)

    def _auth(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and self.users.get(auth_data.login.decode()) == auth_data.password.decode())
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list:
        """The messages once ``count`` have arrived (AssertionError after ``timeout`` s)."""
        end = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
                self.arrived.clear()
            left = end - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{len(self.messages)} of {count} mails arrived in {timeout} s")
            self.arrived.wait(min(left, 0.2))

    def __enter__(self) -> "SmtpServer":
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()


class RunningService:
    """A real :class:`xmfax.server.service.Service` (store, components, ports) run in its
    own event loop in a thread, for tests that talk to its ports from the test thread.

        with RunningService(config) as svc:
            svc.service.smtp_address ; svc.store.list_faxes() ; svc.run(coro)
    """

    def __init__(self, config) -> None:
        self.config = config
        self.service = None
        self.loop = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        import asyncio

        from xmfax.server.service import Service

        async def body() -> None:
            self.loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self.service = Service(self.config)
            try:
                await self.service.start()
            except BaseException as exc:     # noqa: BLE001 - handed to the test thread
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self._stop.wait()
            await self.service.stop()

        asyncio.run(body())

    @property
    def store(self):
        return self.service.store

    def run(self, coro, timeout: float = 30.0):
        import asyncio
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def __enter__(self) -> "RunningService":
        self._thread.start()
        if not self._ready.wait(60):
            raise TimeoutError("the service did not start in 60 s")
        if self._error is not None:
            raise self._error
        return self

    def __exit__(self, *exc) -> None:
        if self.loop is not None and self._error is None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)
