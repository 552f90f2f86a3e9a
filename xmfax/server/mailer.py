"""Outgoing mail: the SMTP client the email destination and mail2fax's reports use.

``[smtp]`` names one relay. :func:`send_mail` hands it a message in a worker thread
(smtplib), upgrading with STARTTLS when the relay offers it (``starttls = "auto"``),
refusing to go on without it (``"require"``) or never trying (``"off"``); ``tls = true``
speaks TLS from the first byte instead (port 465, RFC 8314 §3.3). It authenticates when
a ``username`` is set, with the password read from the environment variable
``password_env`` (never from the file).

Every failure is a :class:`MailError` that says whether trying again later can help:
4yz replies and lost connections are temporary, 5yz replies and configuration mistakes
are permanent (RFC 5321 §4.2.1). The notifier retries the temporary ones with backoff.

The T.37 simple-mode helpers (:func:`attach_fax_tiff`, :func:`tiff_profile_s`) shape a
received fax as Internet fax mail: a TIFF-FX Profile S file (RFC 3949 §4: MH coding, 1728
pels wide, 204 x 98 or 204 x 196 dpi) as ``image/tiff; application=faxbw`` (RFC 3302).
"""
from __future__ import annotations

import asyncio
import email.policy
import email.utils
import logging
import os
import smtplib
import socket
import ssl
from dataclasses import dataclass
from email.message import EmailMessage

from .config import ConfigError

log = logging.getLogger("xmfax.server.mailer")

STARTTLS_MODES = ("auto", "require", "off")
_KEYS = ("host", "port", "starttls", "tls", "username", "password_env", "from", "timeout", "tls_verify",
         "ca_file", "helo")


class MailError(Exception):
    """Mail could not be handed to the relay. ``temporary``: a later try may succeed
    (4yz reply, connection refused/lost, timeout); otherwise it will not (5yz reply, a
    configuration mistake). ``code`` is the SMTP reply code when there was one."""

    def __init__(self, text: str, *, temporary: bool, code: int | None = None) -> None:
        super().__init__(text)
        self.text = text
        self.temporary = temporary
        self.code = code

    def __str__(self) -> str:
        return f"{self.text} ({'temporary' if self.temporary else 'permanent'})"


@dataclass
class SmtpConfig:
    host: str = "localhost"
    port: int = 25
    starttls: str = "auto"          # auto | require | off
    tls: bool = False               # implicit TLS from the first byte (submissions port 465)
    username: str = ""
    password_env: str = ""          # name of the environment variable holding the password
    from_: str = ""                 # envelope and header sender; default xmfax@<this host>
    timeout: float = 30.0
    tls_verify: bool = True
    ca_file: str = ""
    helo: str = ""                  # name given in EHLO; default this host's FQDN

    @classmethod
    def from_dict(cls, d: dict) -> "SmtpConfig":
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ConfigError(f"[smtp] {unknown[0]}: unknown key (known: {', '.join(_KEYS)})")
        cfg = cls()
        for key in ("host", "username", "password_env", "ca_file", "helo", "from"):
            if key in d:
                if not isinstance(d[key], str):
                    raise ConfigError(f"[smtp] {key}: a string, not {d[key]!r}")
                setattr(cfg, "from_" if key == "from" else key, d[key])
        if "port" in d:
            if not isinstance(d["port"], int) or isinstance(d["port"], bool) or not 0 < d["port"] < 65536:
                raise ConfigError(f"[smtp] port: {d['port']!r} is not a TCP port")
            cfg.port = d["port"]
        elif d.get("tls") is True:
            cfg.port = 465                                  # RFC 8314 §7.3
        if "starttls" in d:
            if d["starttls"] not in STARTTLS_MODES:
                raise ConfigError(f"[smtp] starttls: {d['starttls']!r}; one of {', '.join(STARTTLS_MODES)}")
            cfg.starttls = d["starttls"]
        for key in ("tls", "tls_verify"):
            if key in d:
                if not isinstance(d[key], bool):
                    raise ConfigError(f"[smtp] {key}: true or false, not {d[key]!r}")
                setattr(cfg, key, d[key])
        if "timeout" in d:
            t = d["timeout"]
            if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0 < t <= 3600:
                raise ConfigError(f"[smtp] timeout: {t!r} is not a number of seconds in (0, 3600]")
            cfg.timeout = float(t)
        if cfg.username and not cfg.password_env:
            raise ConfigError("[smtp] password_env: needed with username (the name of the environment variable "
                              "holding the password)")
        if cfg.from_ and "@" not in email.utils.parseaddr(cfg.from_)[1]:
            raise ConfigError(f"[smtp] from: {cfg.from_!r} is not a mail address")
        if cfg.ca_file and not os.path.isfile(cfg.ca_file):
            raise ConfigError(f"[smtp] ca_file: {cfg.ca_file!r} does not exist")
        return cfg

    @property
    def sender(self) -> str:
        """The From address used when a message has none."""
        return self.from_ or f"xmfax@{socket.getfqdn()}"

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=self.ca_file or None)
        if not self.tls_verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        return ctx


def config_of(service) -> SmtpConfig:
    """The service's ``[smtp]`` table, parsed once and kept on the service."""
    cfg = getattr(service, "_smtp_config", None)
    if cfg is None:
        cfg = SmtpConfig.from_dict(service.config.section("smtp"))
        service._smtp_config = cfg
    return cfg


async def send_mail(service, msg: EmailMessage) -> None:
    """Hand ``msg`` to the ``[smtp]`` relay (in a worker thread); raises :class:`MailError`."""
    cfg = config_of(service)
    await asyncio.to_thread(deliver, cfg, msg)


def _code_error(what: str, code: int, text: bytes | str) -> MailError:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    # RFC 5321 §4.2.1: 4yz transient negative completion, 5yz permanent
    return MailError(f"{what}: {code} {text}".strip(), temporary=400 <= code < 500, code=code)


def deliver(cfg: SmtpConfig, msg: EmailMessage) -> dict:
    """The synchronous part of :func:`send_mail`: one SMTP session. Returns the recipients
    the relay refused while accepting others ({} when all were taken)."""
    if msg["From"] is None:
        msg["From"] = cfg.sender
    if msg["Date"] is None:
        msg["Date"] = email.utils.formatdate(localtime=False)
    if msg["Message-ID"] is None:
        msg["Message-ID"] = email.utils.make_msgid(domain=cfg.sender.rpartition("@")[2] or None)
    recipients = [a for _, a in email.utils.getaddresses(msg.get_all("To", []) + msg.get_all("Cc", [])
                                                          + msg.get_all("Bcc", [])) if a]
    if not recipients:
        raise MailError("the message has no recipient (To/Cc/Bcc)", temporary=False)
    password = ""
    if cfg.username:
        password = os.environ.get(cfg.password_env, "")
        if not password:
            raise MailError(f"[smtp] password_env: the environment variable {cfg.password_env} is not set",
                            temporary=False)
    helo = cfg.helo or None
    try:
        if cfg.tls:
            client = smtplib.SMTP_SSL(cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout,
                                      context=cfg.ssl_context())
        else:
            client = smtplib.SMTP(cfg.host, cfg.port, local_hostname=helo, timeout=cfg.timeout)
    except ssl.SSLCertVerificationError as e:
        raise MailError(f"TLS to {cfg.host}:{cfg.port}: {e.verify_message or e}", temporary=False) from e
    except smtplib.SMTPConnectError as e:
        raise _code_error(f"connect to {cfg.host}:{cfg.port}", e.smtp_code, e.smtp_error) from e
    except (OSError, smtplib.SMTPException) as e:
        raise MailError(f"connect to {cfg.host}:{cfg.port}: {e}", temporary=True) from e
    try:
        with client:
            return _session(client, cfg, msg, recipients, password)
    except MailError:
        raise
    except smtplib.SMTPRecipientsRefused as e:
        codes = [code for code, _ in e.recipients.values()]
        detail = "; ".join(f"{rcpt}: {code} {text.decode('utf-8', 'replace')}"
                           for rcpt, (code, text) in e.recipients.items())
        raise MailError(f"every recipient refused: {detail}", temporary=all(400 <= c < 500 for c in codes),
                        code=codes[0] if codes else None) from e
    except smtplib.SMTPAuthenticationError as e:
        raise _code_error(f"AUTH as {cfg.username}", e.smtp_code, e.smtp_error) from e
    except smtplib.SMTPSenderRefused as e:
        raise _code_error(f"MAIL FROM {e.sender}", e.smtp_code, e.smtp_error) from e
    except smtplib.SMTPDataError as e:
        raise _code_error("DATA", e.smtp_code, e.smtp_error) from e
    except smtplib.SMTPResponseException as e:
        raise _code_error("SMTP", e.smtp_code, e.smtp_error) from e
    except ssl.SSLCertVerificationError as e:
        raise MailError(f"STARTTLS to {cfg.host}:{cfg.port}: {e.verify_message or e}", temporary=False) from e
    except smtplib.SMTPNotSupportedError as e:
        raise MailError(f"{cfg.host}:{cfg.port}: {e}", temporary=False) from e
    except (OSError, smtplib.SMTPException) as e:     # lost connection, timeout, TLS failure
        raise MailError(f"{cfg.host}:{cfg.port}: {type(e).__name__}: {e}", temporary=True) from e


def _session(client: smtplib.SMTP, cfg: SmtpConfig, msg: EmailMessage, recipients: list[str],
             password: str) -> dict:
    client.ehlo_or_helo_if_needed()
    if not cfg.tls and cfg.starttls != "off":
        if client.has_extn("starttls"):
            # RFC 3207 §4.2: after STARTTLS the client forgets what it knew and says EHLO again
            client.starttls(context=cfg.ssl_context())
            client.ehlo()
        elif cfg.starttls == "require":
            raise MailError(f"{cfg.host}:{cfg.port} does not offer STARTTLS and [smtp] starttls = \"require\"",
                            temporary=False)
    if cfg.username:
        if not client.has_extn("auth"):
            tls = isinstance(client.sock, ssl.SSLSocket)
            raise MailError(f"{cfg.host}:{cfg.port} offers no AUTH ({'over TLS' if tls else 'without TLS'}) "
                            "and [smtp] username is set", temporary=False)
        client.login(cfg.username, password)
    envelope_from = email.utils.parseaddr(cfg.sender)[1]
    refused = client.send_message(msg, from_addr=envelope_from, to_addrs=recipients)
    if refused:
        log.warning("mail %s: %d of %d recipients refused: %s", msg["Message-ID"], len(refused), len(recipients),
                    refused)
    return refused


# --------------------------------------------------------------- T.37 simple mode
FAX_TIFF_TYPE = ("image", "tiff", {"application": "faxbw"})     # RFC 3302 §2, RFC 3965 §4


def tiff_profile_s(data: bytes) -> bytes:
    """A fax TIFF as TIFF-FX Profile S (RFC 3949 §4.1): MH coding, 1728 pels wide,
    204 dpi across, 98 or 196 dpi down, one strip per page. Pages already so are
    re-written as they are; wider pages are scaled to 1728 and 300/400 dpi pages
    reduced to 196 lines per inch (what a Profile S reader can take)."""
    import io

    import numpy as np

    from .. import document
    from ..page import Page, Resolution

    pages = document.load(data, tolerant=True)
    out = []
    for page in pages:
        img = page.image
        y_dpi = page.resolution.y_dpi
        target_y = 98 if y_dpi < 150 else 196
        if page.width != 1728 or abs(page.resolution.x_dpi - 204) > 4 or abs(y_dpi - target_y) > 4:
            rows = max(1, round(page.rows * target_y / y_dpi))
            ri = np.minimum((np.arange(rows) * y_dpi / target_y).astype(int), page.rows - 1)
            # Profile S is A4-wide at 8 pels/mm: scale the row to 1728 pels (nearest sample)
            ci = np.minimum((np.arange(1728) * page.width / 1728).astype(int), page.width - 1)
            img = img[ri][:, ci]
        res = Resolution.STANDARD if target_y == 98 else Resolution.FINE
        out.append(Page(img, res, source=page.source))
    buf = io.BytesIO()
    document.save(out, buf, format="tiff", codec="mh")
    return buf.getvalue()


def attach_fax_tiff(msg: EmailMessage, data: bytes, filename: str = "fax.tif", *, profile_s: bool = True) -> None:
    """Attach a fax as T.37 simple mode does (RFC 3965 §4): a TIFF-FX Profile S file as
    ``image/tiff; application=faxbw`` (RFC 3302), base64, ``Content-Disposition: attachment``."""
    body = tiff_profile_s(data) if profile_s else data
    maintype, subtype, params = FAX_TIFF_TYPE
    msg.add_attachment(body, maintype=maintype, subtype=subtype, filename=filename, params=params)


def new_message() -> EmailMessage:
    """An empty message using the SMTP policy (CRLF line ends, 78-column folding)."""
    return EmailMessage(policy=email.policy.SMTP)
