"""``xmfax receive --via URL -o DIR``: answer calls and keep the faxes."""
from __future__ import annotations

import argparse
import asyncio
import signal

from .. import api
from ._common import Progress, add_line_options, class1_options, report


def register(sub) -> None:
    p = sub.add_parser(
        "receive", help="answer calls and write each fax to a folder",
        description="Answer calls on a T.38 address or a Class 1 modem. Each fax is written to DIR as "
        "a TIFF Class F file (and/or PDF) with its JSON record beside it; pages are kept as they "
        "arrive, so a call that fails part-way still leaves the pages received. "
        "--via t38://HOST:PORT listens there and answers whoever sends first; "
        "t38://HOST:PORT?remote=HOST:PORT also sends first to that address. "
        "Exit status with --once: 0 a fax was received, 1 not.")
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
                                   on_event=progress.on_event,
                                   on_done=done)
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, receiver.stop)
                except (NotImplementedError, RuntimeError):
                    pass
            await receiver.run()

    asyncio.run(main())
    if args.once:
        return statuses[0] if statuses else 1
    return 0
