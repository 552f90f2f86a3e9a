"""``xmfax send --via URL DOCUMENT...``: send documents as one fax."""
from __future__ import annotations

import argparse
import asyncio
import os

from .. import api
from ..errors import DocumentError
from ._common import RESOLUTIONS, Progress, add_line_options, check_sip, class1_options, report, sip_options


def register(sub) -> None:
    p = sub.add_parser(
        "send", help="send documents as a fax (T.38, G.711 RTP audio or a Class 1 modem)",
        description="Send one fax made of DOCUMENTs (PDF, TIFF, images, text). "
        "--via t38://HOST:PORT[?local=HOST:PORT] sends over T.38/UDPTL; "
        "--via rtp://HOST:PORT[?local=HOST:PORT][&law=pcma] sends as audio (fax modems) over G.711 RTP; "
        "--via class1:PORT --to NUMBER dials through a Class 1 modem; "
        "--via sip:NUMBER@HOST[:PORT][;transport=tcp] places a SIP call and sends over T.38 "
        "(SIP credentials from XMFAX_SIP_USERNAME/XMFAX_SIP_PASSWORD or XMFAX_SIP_CREDENTIALS=FILE). "
        "Exit status: 0 the fax was delivered, 1 it was not, 2 usage, 3 unreadable document.")
    p.add_argument("documents", nargs="+", metavar="DOCUMENT")
    p.add_argument("--via", required=True, metavar="URL",
                   help="t38://HOST:PORT[?local=HOST:PORT], rtp://HOST:PORT[?local=HOST:PORT], "
                   "sip:NUMBER@HOST[:PORT][;transport=tcp] or class1:PORT")
    p.add_argument("--sip-offer", default="audio", choices=["audio", "t38"],
                   help="SIP: offer G.711 audio first and switch to T.38 (default, as fax gateways do), "
                   "or offer T.38 directly (re-offered as audio if refused)")
    p.add_argument("--to", metavar="NUMBER", help="number to dial (Class 1)")
    p.add_argument("--resolution", default="fine", choices=RESOLUTIONS)
    p.add_argument("--paper", default="auto", choices=["auto", "a4", "letter", "legal", "b4", "a3"])
    p.add_argument("--header", nargs="?", const=True, metavar="TEMPLATE",
                   help="print a header line on every page (fields {date} {time} {ident} {page} {pages})")
    p.add_argument("--retries", type=int, default=0, help="further attempts after a failed call")
    p.add_argument("--retry-delay", type=float, default=60.0, metavar="SECONDS")
    d = p.add_argument_group("documents")
    d.add_argument("--password-file", metavar="FILE",
                   help="password of encrypted PDFs, read from the first line of FILE "
                   "(or set XMFAX_PDF_PASSWORD)")
    d.add_argument("--password", metavar="TEXT",
                   help="the password itself (other users can see it in the process list: "
                   "prefer --password-file or XMFAX_PDF_PASSWORD)")
    d.add_argument("--tolerant", action="store_true",
                   help="send damaged documents as far as they decode instead of refusing them")
    add_line_options(p)
    p.set_defaults(func=run)


def pdf_password(args: argparse.Namespace) -> str | None:
    """--password, else the first line of --password-file, else $XMFAX_PDF_PASSWORD."""
    if args.password is not None:
        return args.password
    if args.password_file:
        try:
            with open(args.password_file, encoding="utf-8") as f:
                return f.readline().rstrip("\r\n")
        except OSError as exc:
            raise DocumentError(f"cannot read the password file: {exc.strerror}", source=args.password_file) from exc
    return os.environ.get("XMFAX_PDF_PASSWORD") or None


def run(args: argparse.Namespace) -> int:
    if args.via.startswith("class1:") and not args.to:
        print("xmfax send: --to NUMBER is needed with a class1: modem", flush=True)
        return 2
    if not check_sip(args, "send"):
        return 2
    password = pdf_password(args)
    sip = sip_options(args, offer=args.sip_offer)
    with Progress(not (args.quiet or args.json), "send") as progress:
        result = asyncio.run(api.send(
            args.documents, via=args.via, to=args.to, local_id=args.local_id, header=args.header,
            resolution=args.resolution, paper=args.paper, ecm=not args.no_ecm, max_rate=args.max_rate,
            retries=args.retries, retry_delay=args.retry_delay, realtime=not args.fast,
            class1=class1_options(args), on_event=progress.on_event, max_duration=args.max_duration,
            password=password, tolerant=args.tolerant, sip=sip))
    return report(result, args)
