"""``xmfax demo``: a whole fax call in one command, on this machine.

Builds a sample document (a letter, a table, a picture), starts a receiver and a
sender in one process that fax each other over T.38 on real UDP on 127.0.0.1, and
leaves in the output folder: the document sent, the fax received (TIFF and PDF),
the call's JSON record and its ladder diagram (text and SVG).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as _dt
import time
from pathlib import Path

from .. import api
from ..document import save
from ..document.sample import sample_pages
from ..ladder import render_svg, render_text
from ._common import Progress


def register(sub) -> None:
    p = sub.add_parser(
        "demo", help="fax a sample document to ourselves over T.38 on 127.0.0.1",
        description="Send a sample multi-page fax (or --document FILE) from an xmfax sender to an xmfax "
        "receiver over T.38/UDPTL on 127.0.0.1, and keep everything the call produced in --dir.")
    p.add_argument("--dir", default="xmfax-demo", help="output folder (default ./xmfax-demo)")
    p.add_argument("--document", metavar="FILE", help="send this document instead of the sample")
    p.add_argument("--realtime", action="store_true",
                   help="pace the T.38 packets at real fax speed (about 20 s a page) instead of as fast as possible")
    p.add_argument("--no-ecm", action="store_true", help="send without error correction mode")
    p.add_argument("--max-rate", type=int, default=14400, choices=[2400, 4800, 7200, 9600, 12000, 14400])
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=run)


async def _demo(args: argparse.Namespace, out: Path, documents: list, progress: Progress):
    receiver = api.receive(via="t38://127.0.0.1:0", output_dir=out / "received", formats=("tiff", "pdf"),
                           once=True, local_id="+1 555 0199", realtime=args.realtime,
                           ecm=not args.no_ecm, max_rate=args.max_rate)
    task = asyncio.create_task(receiver.run())
    host, port = await receiver.ready()
    sent = await api.send(documents, via=f"t38://{host}:{port}?local=127.0.0.1:0", local_id="+1 555 0100",
                          header=True, realtime=args.realtime, ecm=not args.no_ecm, max_rate=args.max_rate,
                          on_event=progress.on_event)
    received = await asyncio.wait_for(task, 120)
    return sent, (received[0] if received else None)


def run(args: argparse.Namespace) -> int:
    out = Path(args.dir)
    out.mkdir(parents=True, exist_ok=True)
    now = _dt.datetime.now().astimezone()
    if args.document:
        documents = [args.document]
        what = args.document
    else:
        pages = sample_pages(when=now)
        save(pages, out / "sample.pdf")
        documents = [pages]
        what = f"{out / 'sample.pdf'} (a letter, a table, a picture)"
    if not args.quiet:
        print(f"xmfax demo: faxing {what} over T.38 on 127.0.0.1 "
              f"({'real time' if args.realtime else 'as fast as possible'})")
    t = time.monotonic()
    with Progress(not args.quiet, "send") as progress:
        sent, received = asyncio.run(_demo(args, out, documents, progress))
    wall = time.monotonic() - t
    if received is None:
        print(f"xmfax demo: the receiver ended without a call; sender: {sent.summary()}")
        return 1
    (out / "sent.json").write_text(sent.to_json() + "\n", encoding="utf-8")
    record = received.to_dict()
    (out / "received.json").write_text(received.to_json() + "\n", encoding="utf-8")
    (out / "ladder.txt").write_text(render_text(record) + "\n", encoding="utf-8")
    (out / "ladder.svg").write_text(render_svg(record), encoding="utf-8")
    if not args.quiet:
        print()
        print(f"sender:   {sent.summary()}")
        print(f"receiver: {received.summary()}")
        print(f"call: {received.page_count} page(s) at {received.modulation or '-'}, "
              f"{'ECM' if received.ecm else 'no ECM'}, {received.compression.upper() or '-'}, "
              f"{received.duration:.1f} s of fax time in {wall:.1f} s")
        print(f"files in {out}/:")
        for f in received.files:
            print(f"  {f}   (received fax)")
        for name in ("received.json", "sent.json", "ladder.txt", "ladder.svg"):
            print(f"  {out / name}")
        print(f"see the call: xmfax ladder {out / 'received.json'}")
    return 0 if (sent.ok and received.ok) else 1
