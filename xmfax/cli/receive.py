"""``xmfax receive --via URL -o DIR``: answer calls and keep the faxes."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .. import api
from ._common import Progress, add_line_options, check_sip, class1_options, report, sip_options


def register(sub) -> None:
    p = sub.add_parser(
        "receive", help="answer calls and write each fax to a folder",
        description="Answer calls on a T.38 or RTP address, over SIP, or on a Class 1 modem. Each fax is written to DIR as "
        "a TIFF Class F file (and/or PDF) with its JSON record beside it; each page is on disk "
        "before the sender is told it arrived, so a call that fails part-way still leaves the "
        "pages received, and a page that cannot be stored (disk full) fails the call. "
        "--via t38://HOST:PORT listens there and answers whoever sends first; "
        "t38://HOST:PORT?remote=HOST:PORT also sends first to that address. "
        "--via rtp://HOST:PORT[?remote=HOST:PORT][&law=pcma] does the same for an audio fax (fax modems) "
        "over G.711 RTP. "
        "--via sip://HOST:PORT[;transport=tcp] answers SIP calls there (many at once), T.38 offered "
        "directly or after a re-INVITE; --register sip:USER@REGISTRAR registers there "
        "(credentials from XMFAX_SIP_USERNAME/XMFAX_SIP_PASSWORD or XMFAX_SIP_CREDENTIALS=FILE). "
        "When it is ready for calls it prints one line to stderr, 'receive: ready on URL' "
        "(also with --quiet and --json). "
        "Exit status: with --once 0 a fax was received, 1 not; 3 DIR is not a folder it can "
        "write in, the port is in use, or the SIP registration failed.")
    p.add_argument("--via", required=True, metavar="URL",
                   help="t38://HOST:PORT[?remote=HOST:PORT], rtp://HOST:PORT[?remote=HOST:PORT], "
                   "sip://HOST:PORT[;transport=tcp] or class1:PORT")
    p.add_argument("--register", metavar="SIP_URI", help="SIP: register at this address of record "
                   "(sip:USER@REGISTRAR[:PORT]) and keep the registration fresh")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for received faxes")
    p.add_argument("--once", action="store_true", help="exit after one call")
    p.add_argument("--format", default="tiff", choices=["tiff", "pdf", "both"], help="file format of received faxes")
    p.add_argument("--rings", type=int, default=1, help="rings before answering (Class 1)")
    add_line_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not check_sip(args, "receive"):
        return 2
    if args.register and not args.via.startswith("sip://"):
        print("xmfax receive: --register needs --via sip://HOST:PORT", file=sys.stderr, flush=True)
        return 2
    formats = ("tiff", "pdf") if args.format == "both" else (args.format,)
    statuses: list[int] = []

    async def main() -> None:
        with Progress(not (args.quiet or args.json), "receive") as progress:
            def done(result):
                statuses.append(report(result, args))

            receiver = api.receive(via=args.via, output_dir=args.output, formats=formats, once=args.once,
                                   local_id=args.local_id, ecm=not args.no_ecm, max_rate=args.max_rate,
                                   realtime=not args.fast, rings=args.rings, class1=class1_options(args),
                                   on_event=progress.on_event, max_duration=args.max_duration,
                                   on_done=done, register=args.register, sip=sip_options(args))
            async def announce() -> None:
                address = await receiver.ready()
                where = args.via
                if receiver.transport in ("t38", "rtp") and address:
                    where = f"{receiver.transport}://{address[0]}:{address[1]}"
                elif receiver.transport == "sip" and address:
                    tcp = ";transport=tcp" if "transport=tcp" in args.via.lower() else ""
                    host = f"[{address[0]}]" if ":" in address[0] else address[0]
                    where = f"sip://{host}:{address[1]}{tcp}"     # sip://[::1]:5060 for IPv6
                print(f"receive: ready on {where}", file=sys.stderr, flush=True)

            ready = asyncio.create_task(announce())
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, receiver.stop)
                except (NotImplementedError, RuntimeError):
                    pass
            try:
                await receiver.run()
            finally:
                ready.cancel()

    asyncio.run(main())
    if args.once:
        return statuses[0] if statuses else 1
    return 0
