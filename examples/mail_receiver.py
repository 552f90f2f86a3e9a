#!/usr/bin/env python3
"""A fax receiver that mails each fax on, as a PDF attachment (fax-to-email).

    python examples/mail_receiver.py --via t38://0.0.0.0:6000 --to faxes@example.com \\
        --smtp mail.example.com:587 --starttls --user fax --password-env SMTP_PASSWORD

Each received fax is written to ``--spool`` as PDF (with its JSON record beside it),
then sent with :mod:`smtplib` as one :class:`email.message.EmailMessage`: a short
text body (who sent it, pages, time, quality) and the PDF attached. A fax that
failed part-way is still mailed with the pages that arrived, and its subject says
so. If the mail server cannot be reached the files stay in the spool folder and the
error is printed; nothing is lost.

``on_done`` runs off the line's path (in a worker thread), so a slow mail server
never stalls the next call.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import smtplib
import ssl
import sys
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

import xmfax


@dataclass(frozen=True)
class MailConfig:
    """Where and how to mail faxes. ``host:port`` plain SMTP by default (a local relay)."""

    recipient: str
    sender: str = "fax@localhost"
    host: str = "localhost"
    port: int = 25
    starttls: bool = False
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


def build_message(result: xmfax.FaxResult, mail: MailConfig) -> EmailMessage:
    """The email for one received fax: a text summary and its PDF(s) attached."""
    msg = EmailMessage()
    who = result.remote_id.strip() or result.ani or "unknown sender"
    pages = result.page_count
    status = "" if result.ok else f" (INCOMPLETE: {result.reason})"
    msg["Subject"] = f"Fax from {who}, {pages} page{'s' if pages != 1 else ''}{status}"
    msg["From"] = mail.sender
    msg["To"] = mail.recipient
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=mail.sender.partition("@")[2] or None)
    lines = [
        f"From:        {who}",
        f"Calling no.: {result.ani or '-'}",
        f"Called no.:  {result.dnis or '-'}",
        f"Our CSID:    {result.local_id or '-'}",
        f"Received:    {result.started_at}",
        f"Pages:       {pages}",
        f"Line:        {result.modulation or '-'}, {result.compression.upper() or '-'}, "
        f"{'ECM' if result.ecm else 'no ECM'}, {result.duration:.1f} s",
        f"Result:      {result.status} ({result.reason_text})",
    ]
    bad = [p for p in result.pages if p.bad_rows]
    for p in bad:
        lines.append(f"Page {p.number}: {p.bad_rows} of {p.rows} rows damaged")
    msg.set_content("\n".join(lines) + "\n")
    for path in result.files:
        if path.endswith(".pdf"):
            with open(path, "rb") as f:
                msg.add_attachment(f.read(), maintype="application", subtype="pdf",
                                   filename=os.path.basename(path))
    return msg


def mail_result(result: xmfax.FaxResult, mail: MailConfig) -> EmailMessage:
    """Build and send the message for ``result``; raises OSError/smtplib errors on failure."""
    msg = build_message(result, mail)
    with smtplib.SMTP(mail.host, mail.port, timeout=mail.timeout) as smtp:
        if mail.starttls:
            smtp.starttls(context=ssl.create_default_context())
        if mail.user:
            smtp.login(mail.user, mail.password or "")
        smtp.send_message(msg)
    return msg


def make_receiver(via: str, spool: Path, mail: MailConfig, *, local_id: str = "", realtime: bool = True,
                  once: bool = False, log=print) -> xmfax.Receiver:
    """A receiver that keeps each fax as PDF in ``spool`` and mails it on."""

    def on_done(result: xmfax.FaxResult) -> None:
        log(result.summary())
        if not any(f.endswith(".pdf") for f in result.files):
            return                      # nothing arrived (rejected, no page): nothing to mail
        try:
            mail_result(result, mail)
        except (OSError, smtplib.SMTPException) as exc:
            log(f"mail to {mail.recipient} failed ({exc!r}); the fax stays in {spool}")
        else:
            log(f"mailed to {mail.recipient}: {', '.join(result.files)}")

    return xmfax.receive(via=via, output_dir=spool, formats=("pdf",), local_id=local_id, realtime=realtime,
                         once=once, on_done=on_done)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Receive faxes and mail each one on as a PDF attachment.")
    p.add_argument("--via", required=True, metavar="URL", help="t38://HOST:PORT or class1:PORT")
    p.add_argument("--to", required=True, metavar="ADDRESS", help="mail recipient")
    p.add_argument("--from", dest="sender", default="fax@localhost", metavar="ADDRESS", help="mail sender")
    p.add_argument("--smtp", default="localhost:25", metavar="HOST:PORT", help="mail server (default localhost:25)")
    p.add_argument("--starttls", action="store_true", help="upgrade the SMTP connection with STARTTLS")
    p.add_argument("--user", help="SMTP login")
    p.add_argument("--password-env", metavar="VAR", help="environment variable holding the SMTP password")
    p.add_argument("--spool", default="fax-spool", help="folder where faxes are kept (default ./fax-spool)")
    p.add_argument("--local-id", default="", help="our CSID")
    p.add_argument("--once", action="store_true", help="stop after one call")
    p.add_argument("--fast", action="store_true", help="T.38 unpaced (trusted links and tests)")
    args = p.parse_args(argv)
    host, _, port = args.smtp.rpartition(":")
    if not host or not port.isdigit():
        p.error(f"--smtp {args.smtp!r}: say HOST:PORT")
    mail = MailConfig(recipient=args.to, sender=args.sender, host=host, port=int(port), starttls=args.starttls,
                      user=args.user, password=os.environ.get(args.password_env) if args.password_env else None)
    receiver = make_receiver(args.via, Path(args.spool), mail, local_id=args.local_id, realtime=not args.fast,
                             once=args.once, log=lambda text: print(text, flush=True))
    try:
        results = asyncio.run(receiver.run())
    except KeyboardInterrupt:
        return 0
    if args.once:
        return 0 if results and results[0].ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
