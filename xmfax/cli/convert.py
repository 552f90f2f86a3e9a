"""``xmfax convert IN... -o OUT``: documents to one fax document (TIFF-F, PDF or PNG)."""
from __future__ import annotations

import argparse
import datetime as _dt
import sys
import time

from ..document import DEFAULT_COVER, DEFAULT_HEADER, CoverSheet, HeaderLine, Limits, add_header, load, render_cover, save
from ..document.limits import Budget
from ..document.save import format_for
from ..document.raster import BILEVEL_MODES, PAPER_NAMES, resolve_resolution
from ..errors import DocumentError

RESOLUTIONS = ["standard", "fine", "superfine", "ultrafine", "200x200", "300x300", "400x400"]


def register(sub) -> None:
    p = sub.add_parser(
        "convert", help="convert documents (PDF, TIFF, images, text) to a fax TIFF, PDF or PNG",
        description="Several inputs become one document; the output format follows OUT's suffix "
        "(.tif/.tiff: TIFF Class F, .pdf: PDF with G4 images, .png: one PNG per page, "
        "out.png for one page, out-1.png, out-2.png ... for several).")
    p.add_argument("inputs", nargs="+", metavar="IN", help="input files (TIFF, PDF, PNG, JPEG, GIF, BMP, WebP, text)")
    p.add_argument("-o", "--output", required=True, metavar="OUT")
    p.add_argument("--resolution", default="fine", choices=RESOLUTIONS)
    p.add_argument("--paper", default="auto", choices=list(PAPER_NAMES))
    p.add_argument("--codec", default="mh", choices=["mh", "mr", "mmr"], help="TIFF compression (default mh)")
    p.add_argument("--bilevel", default="auto", choices=list(BILEVEL_MODES),
                   help="grey/colour to black and white: auto (threshold text, dither photos)")
    p.add_argument("--password", help="password of an encrypted PDF")
    p.add_argument("--tolerant", action="store_true",
                   help="load damaged pages as far as they decode (listed on stderr) instead of failing; "
                   "for received faxes")
    p.add_argument("--max-pages", type=int, default=Limits().max_pages)
    g = p.add_argument_group("cover sheet")
    g.add_argument("--cover", action="store_true", help="add a cover sheet as the first page")
    g.add_argument("--cover-template", metavar="FILE",
                   help="text template with {to} {to_fax} {sender} {sender_fax} {subject} {note} {pages} {date} "
                   "(# title, ## heading, --- rule); implies --cover")
    g.add_argument("--to", default="")
    g.add_argument("--to-fax", default="")
    g.add_argument("--from", dest="sender", default="")
    g.add_argument("--from-fax", default="")
    g.add_argument("--subject", default="")
    g.add_argument("--note", default="", help="cover note (\\n for a new line)")
    h = p.add_argument_group("header line")
    h.add_argument("--header", nargs="?", const=DEFAULT_HEADER, metavar="TEMPLATE",
                   help="print a header line on each page; fields {date} {time} {name} {ident} {to} {page} {pages}")
    h.add_argument("--ident", default="", help="local identifier (fax number) for the header")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    now = _dt.datetime.now()                       # the CLI is the edge: the clock is read here only
    if format_for(args.output) is None:
        print(f"xmfax convert: {args.output}: the output name must end in .tif, .tiff, .pdf or .png",
              file=sys.stderr)
        return 2
    limits = Limits(max_pages=args.max_pages)
    budget = Budget(limits, time.monotonic)         # one document: totals and time over every input
    res = resolve_resolution(args.resolution)
    pages = []
    for path in args.inputs:
        pages += load(path, resolution=res, paper=args.paper, bilevel=args.bilevel, password=args.password,
                      tolerant=args.tolerant, budget=budget)
    for page in pages:
        damaged = page.info.get("damaged_rows")
        if damaged:
            spans = ", ".join(f"{lo + 1}-{hi}" for lo, hi in damaged[:10]) + (" ..." if len(damaged) > 10 else "")
            print(f"xmfax convert: warning: {page.source}: rows {spans} of {page.rows} are damaged "
                  "(kept as decoded: --tolerant)", file=sys.stderr)
    if args.cover or args.cover_template:
        template = DEFAULT_COVER
        if args.cover_template:
            try:
                with open(args.cover_template, encoding="utf-8") as f:
                    template = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise DocumentError(f"cannot read cover template: {exc}", source=args.cover_template) from exc
        cover = CoverSheet(to=args.to, to_fax=args.to_fax, sender=args.sender, sender_fax=args.from_fax,
                           subject=args.subject, note=args.note.replace("\\n", "\n"), pages=len(pages) + 1,
                           date=now, template=template)
        paper = pages[0].info.get("paper", "a4") if pages else "a4"
        pages.insert(0, render_cover(cover, pages[0].resolution if pages else res, paper))
    if args.header:
        pages = add_header(pages, HeaderLine(ident=args.ident, name=args.sender, to=args.to,
                                             template=args.header), now)
    written = save(pages, args.output, codec=args.codec, when=now)
    print(f"{len(pages)} page{'s' if len(pages) != 1 else ''} -> {', '.join(written)}")
    return 0
