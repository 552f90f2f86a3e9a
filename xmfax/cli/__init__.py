"""The ``xmfax`` command.

Each subcommand lives in its own module here and provides
``register(subparsers) -> None``, which adds its parser and sets
``func=run`` with ``run(args) -> int`` (the exit status).

Exit status: 0 success, 1 the fax or operation failed, 2 usage error,
3 bad input (an unreadable document, a corrupt stream).
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .. import __version__
from ..errors import FaxError

# name of each subcommand module, in the order --help lists them
SUBCOMMANDS = ["demo", "send", "receive", "convert", "info", "ladder", "modem", "serve"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BAD_INPUT = 0, 1, 2, 3


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xmfax",
        description="A fax engine: send and receive faxes over T.38 and Class 1 modems, "
        "convert documents to and from fax pages.",
        epilog="Exit status: 0 success; 1 the fax (or operation) failed; 2 usage error; "
        "3 bad input (an unreadable document, a port in use). "
        "Start with `xmfax demo`; `xmfax COMMAND --help` for each command.",
    )
    parser.add_argument("--version", action="version", version=f"xmfax {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"{__name__}.{name}":
                continue  # that subcommand is not built yet
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except FaxError as exc:
        print(f"xmfax {args.command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"xmfax {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
