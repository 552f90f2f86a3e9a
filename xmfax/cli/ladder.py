"""``xmfax ladder RECORD.json``: draw a call as a ladder diagram of T.30 frames."""
from __future__ import annotations

import argparse
import json
import shutil
import sys

from ..errors import DocumentError
from ..ladder import render_html, render_svg, render_text


def register(sub) -> None:
    p = sub.add_parser("ladder", help="draw a fax record's call as a ladder diagram",
                       description="Draw the T.30 frames of a call (a JSON record written by xmfax send/receive) "
                       "between the two stations, with times: as text, or as SVG/HTML with --svg/--html.")
    p.add_argument("record", metavar="RECORD.json")
    p.add_argument("--svg", metavar="FILE", help="write an SVG file")
    p.add_argument("--html", metavar="FILE", help="write an HTML file")
    p.add_argument("--width", type=int, default=0, help="text width (default: the terminal's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        with open(args.record, encoding="utf-8") as f:
            record = json.load(f)
    except (OSError, ValueError) as exc:
        raise DocumentError(f"not a readable JSON fax record: {exc}", source=args.record) from exc
    if not isinstance(record, dict) or not isinstance(record.get("events"), list):
        raise DocumentError("not an xmfax fax record (no \"events\" list)", source=args.record)
    if args.svg:
        with open(args.svg, "w", encoding="utf-8") as f:
            f.write(render_svg(record))
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(record))
    if not (args.svg or args.html):
        width = args.width or min(shutil.get_terminal_size((100, 24)).columns, 120)
        sys.stdout.write(render_text(record, width=width) + "\n")
    return 0
