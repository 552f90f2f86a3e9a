"""``xmfax serve``: run the fax service; ``xmfax token``: its access tokens;
``xmfax cdr``: its call detail records as CSV."""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import time
from datetime import datetime, timezone

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_DATA_DIR = 0, 1, 2, 3
PERMISSIONS = ("send_manage", "read", "admin")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", metavar="DIR", help="data folder (default ./xmfax-data)")
    p.add_argument("--config", metavar="FILE", help="TOML configuration file (docs/server.md)")
    p.add_argument("--database", metavar="URL",
                   help="postgresql://USER@HOST:PORT/DB (default: SQLite in the data folder)")


def register(sub) -> None:
    p = sub.add_parser(
        "serve", help="run the fax service (REST API, routing, notifications, email to fax)",
        description="Run the fax service: the REST API (POST /restservice/sendfax), the outbound "
        "queue, inbound numbers and routing, notifications, email to fax, retention and the admin "
        "web page. With no options it keeps its data (SQLite) in ./xmfax-data and listens on "
        "http://127.0.0.1:8080. When it is ready it prints one line to stdout: "
        "'serve: ready on http://HOST:PORT (node NODE, db sqlite|postgresql)'. "
        "SIGTERM or SIGINT stops it (exit 0). Exit status: 1 it cannot start (port in use, "
        "database unreachable, bad key), 2 bad configuration, 3 the data folder cannot be written.")
    _common(p)
    p.add_argument("--http", metavar="HOST:PORT", help="HTTP address (default 127.0.0.1:8080; port 0 = any)")
    p.add_argument("--line", action="append", default=[], metavar="URL",
                   help="outbound line, repeatable; {number} is the E.164 recipient, e.g. "
                   "sip:{number}@trunk.example or t38://127.0.0.1:6000")
    p.add_argument("--listen", action="append", default=[], metavar="URL",
                   help="answer fax calls here, repeatable: sip://HOST:PORT, t38://HOST:PORT ...")
    p.add_argument("--node", metavar="NAME", help="node name (default: host name and a hash of the data folder)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv: debug)")
    p.set_defaults(func=run_serve)

    t = sub.add_parser("token", help="create, list and revoke the service's access tokens",
                       description="Access tokens for the REST API (XM-Token-Authorization header) and "
                       "the admin web page. They are stored hashed: `create` prints the token once.")
    tsub = t.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    c = tsub.add_parser("create", help="make a token and print it (only the token)")
    _common(c)
    c.add_argument("--name", required=True, help="a name for the token (who uses it)")
    c.add_argument("--permission", default="send_manage", choices=PERMISSIONS,
                   help="send_manage: send and manage its owner's faxes; read: read its owner's faxes "
                   "only; admin: every fax and the admin web page")
    c.add_argument("--owner", default="", metavar="NAME",
                   help="tokens of one owner see each other's faxes (default: the token's name)")
    c.set_defaults(func=run_token)
    r = tsub.add_parser("revoke", help="revoke the token of that name")
    _common(r)
    r.add_argument("--name", required=True)
    r.set_defaults(func=run_token)
    ls = tsub.add_parser("list", help="list the tokens (names and permissions, never the tokens)")
    _common(ls)
    ls.set_defaults(func=run_token)

    d = sub.add_parser("cdr", help="print the service's call detail records as CSV",
                       description="One CSV row per call attempt (outbound and inbound). --since and "
                       "--until take epoch seconds or an ISO date/time (UTC when no zone is given).")
    _common(d)
    d.add_argument("--since", type=_when, metavar="TIME")
    d.add_argument("--until", type=_when, metavar="TIME")
    d.set_defaults(func=run_cdr)


def _when(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither epoch seconds nor an ISO date") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return t.timestamp()


def _config(args: argparse.Namespace, **more):
    from ..server.config import load
    return load(args.config, data=args.data, database=args.database, **more)


def _fail(command: str, text: str, code: int) -> int:
    print(f"xmfax {command}: {text}", file=sys.stderr, flush=True)
    return code


def run_serve(args: argparse.Namespace) -> int:
    from ..server.config import ConfigError
    from ..server.service import Service, StartError

    logging.basicConfig(level=(logging.WARNING, logging.INFO, logging.DEBUG)[min(args.verbose, 2)],
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        config = _config(args, http=args.http, node=args.node, lines=args.line, listen=args.listen)
        service = Service(config)
    except ConfigError as exc:
        return _fail("serve", f"config: {exc}", EXIT_USAGE)

    async def main() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
            except (NotImplementedError, RuntimeError):
                pass
        starting = asyncio.create_task(service.start())
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({starting, waiting}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():                       # a signal while starting
            starting.cancel()
            try:
                await starting
            except (asyncio.CancelledError, Exception):   # noqa: BLE001
                pass
            await service.stop()
            return EXIT_OK
        waiting.cancel()
        starting.result()                             # raises StartError
        print(service.ready_line(), flush=True)
        await stop.wait()
        await service.stop()
        return EXIT_OK

    try:
        return asyncio.run(main())
    except StartError as exc:
        return _fail("serve", str(exc), exc.exit_code)
    except ConfigError as exc:
        return _fail("serve", f"config: {exc}", EXIT_USAGE)


def _open(args: argparse.Namespace, command: str):
    """The config and the store for the admin commands (StartError/ConfigError -> message)."""
    from ..server.service import load_key, open_store, prepare_data_dir
    config = _config(args)
    prepare_data_dir(config.data_dir)
    return open_store(config, load_key(config))


def _admin(args: argparse.Namespace, command: str, body) -> int:
    from ..server.config import ConfigError
    from ..server.service import StartError
    try:
        store = _open(args, command)
    except ConfigError as exc:
        return _fail(command, f"config: {exc}", EXIT_USAGE)
    except StartError as exc:
        return _fail(command, str(exc), exc.exit_code)
    from ..server.store import StoreError
    try:
        return body(store)
    except StoreError as exc:
        return _fail(command, str(exc), EXIT_FAILED)
    finally:
        store.close()


def run_token(args: argparse.Namespace) -> int:
    action = args.token_command

    def body(store) -> int:
        if action == "create":
            print(store.create_token(args.name, args.permission, owner=args.owner), flush=True)
            return EXIT_OK
        if action == "revoke":
            if not store.revoke_token(args.name):
                return _fail("token revoke", f"no active token named {args.name!r}", EXIT_FAILED)
            print(f"token {args.name}: revoked")
            return EXIT_OK
        for t in store.list_tokens():
            created = t.get("created_at")
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(created)) if created else "-"
            state = "revoked" if t.get("revoked_at") else "active"
            print(f"{t['name']}\t{t['permission']}\t{state}\t{when}")
        return EXIT_OK

    return _admin(args, f"token {action}", body)


def run_cdr(args: argparse.Namespace) -> int:
    def body(store) -> int:
        sys.stdout.write(store.cdr_csv(since=args.since, until=args.until))
        sys.stdout.flush()
        return EXIT_OK

    return _admin(args, "cdr", body)
