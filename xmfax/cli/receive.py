"""``xmfax receive --via URL -o DIR``: answer calls and keep the faxes."""
from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from .. import api
from ._common import Progress, add_line_options, class1_options, report


def register(sub) -> None:
    p = sub.add_parser(
        "receive", help="answer calls and write each fax to a folder",
        description="Answer calls on a T.38 address or a Class 1 modem. Each fax is written to DIR as "
        "a TIFF Class F file (and/or PDF) with its JSON record beside it; each page is on disk "
        "before the sender is told it arrived, so a call that fails part-way still leaves the "
        "pages received, and a page that cannot be stored (disk full) fails the call. "
        "--via t38://HOST:PORT listens there and answers whoever sends first; "
        "t38://HOST:PORT?remote=HOST:PORT also sends first to that address. "
        "When it is ready for calls it prints one line to stderr, 'receive: ready on URL' "
        "(also with --quiet and --json). "
        "Exit status: with --once 0 a fax was received, 1 not; 3 DIR is not a folder it can "
        "write in, or the port is in use.")
    p.add_argument("--via", required=True, metavar="URL", help="t38://HOST:PORT[?remote=HOST:PORT] or class1:PORT")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for received faxes")
    p.add_argument("--once", action="store_true", help="exit after one call")
    p.add_argument("--format", default="tiff", choices=["tiff", "pdf", "both"], help="file format of received faxes")
    p.add_argument("--rings", type=int, default=1, help="rings before answering (Class 1)")
    add_line_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
                                   on_done=done)
            async def announce() -> None:
                address = await receiver.ready()
                where = f"t38://{address[0]}:{address[1]}" if receiver.transport == "t38" and address \
                    else args.via
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
