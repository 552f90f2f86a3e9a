#!/usr/bin/env python3
"""Send a PDF (or any document xmfax reads) as one fax from a script, and print its record.

    python examples/send_pdf.py letter.pdf --via t38://203.0.113.5:6000 --local-id "+1 555 0100"
    python examples/send_pdf.py letter.pdf --via class1:/dev/ttyUSB0 --to 5551234 --json

This is the smallest useful program on the xmfax API: :func:`xmfax.send_sync` loads
the documents, makes the call and returns a :class:`xmfax.FaxResult`, the fax record.
A call that fails is a result with ``status == "failure"`` and a ``reason`` code, not
an exception; only a document that cannot be read raises (``xmfax.DocumentError``).

Exit status: 0 the fax was delivered, 1 it was not, 3 the document could not be read.
"""
from __future__ import annotations

import argparse
import sys

import xmfax


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Send documents (PDF, TIFF, images, text) as one fax and print the fax record.",
        epilog="Example: %(prog)s letter.pdf --via t38://127.0.0.1:6000 --local-id '+1 555 0100'")
    p.add_argument("documents", nargs="+", metavar="DOCUMENT", help="PDF, TIFF, PNG/JPEG or text files")
    p.add_argument("--via", required=True, metavar="URL",
                   help="t38://HOST:PORT (T.38 over UDP) or class1:PORT (a Class 1 modem)")
    p.add_argument("--to", metavar="NUMBER", help="number to dial (Class 1 only)")
    p.add_argument("--local-id", default="", metavar="ID", help="our TSI: digits, '+' and spaces, up to 20")
    p.add_argument("--header", action="store_true", help="print a header line (date, id, page n/m) on each page")
    p.add_argument("--no-ecm", action="store_true", help="do not offer error correction mode")
    p.add_argument("--retries", type=int, default=0, help="further attempts after a busy/no-answer/line failure")
    p.add_argument("--fast", action="store_true",
                   help="T.38: send unpaced, as fast as the link takes it (trusted links and tests)")
    p.add_argument("--json", action="store_true", help="print the whole record as JSON (events included)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = xmfax.send_sync(
            args.documents, via=args.via, to=args.to, local_id=args.local_id, header=args.header or None,
            ecm=not args.no_ecm, retries=args.retries, realtime=not args.fast)
    except xmfax.DocumentError as exc:
        print(f"send_pdf: cannot read the document: {exc}", file=sys.stderr)
        return 3
    except ValueError as exc:          # a bad --via, a local id T.30 cannot carry ...
        print(f"send_pdf: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(result.to_json())
    else:
        print(result.summary())
        for page in result.pages:
            print(f"  page {page.number}: {page.rows} rows, {page.coding.upper()}, {page.rate} bit/s, "
                  f"{page.response}")
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
