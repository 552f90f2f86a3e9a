#!/usr/bin/env python3
"""A fax receiver that routes each call by the number called (DNIS) and the caller (ANI).

    python examples/route_by_dnis.py --via class1:/dev/ttyUSB0 --inbox /var/spool/fax
    python examples/route_by_dnis.py --via t38://0.0.0.0:6001 --via t38://0.0.0.0:6002 \\
        --inbox inbox --routes routes.json

This is the plug-in point a fax portal uses: ``on_call`` sees every incoming call
(a :class:`xmfax.Call` carrying ``ani``, ``dnis``, ``via`` and ``remote_address``)
before it is answered, and returns ``Accept(local_id=...)`` to present that number's
own CSID, or ``Reject(reason)``. When the fax is complete, ``on_done`` moves its
files (TIFF/PDF and the JSON record) into the route's folder.

The routing table is a list of :class:`Route`, tried in order; the first whose
patterns all match wins. Patterns are shell wildcards (:mod:`fnmatch`): ``"555010?"``,
``"+44*"``, ``"*"``. A Class 1 modem reports ANI and DNIS from caller ID (NMBR and
DDI/NDID) where the line delivers them.

Over T.38 there is no DNIS: the SIP signalling that knew the called number is
outside xmfax, and a bare UDPTL stream carries no number. The usual arrangement is
one UDP port per number (the SIP side hands each DID its own port), so a route can
match ``via`` instead, e.g. ``Route("sales", via="t38://*:6001")``. A call that
matches no route falls through to the last one, normally a catch-all default.

A routes file is JSON: a list of objects with the fields of :class:`Route`.
"""
from __future__ import annotations

import argparse
import asyncio
import fnmatch
import json
import os
import shutil
import sys
from dataclasses import dataclass, fields
from pathlib import Path

import xmfax
from xmfax import Accept, Call, Reject


@dataclass(frozen=True)
class Route:
    """Where faxes matching these patterns go, and the CSID we present to their senders.

    ``dnis``/``ani`` match the called/calling number; a pattern other than ``"*"``
    never matches a call whose transport did not know that number. ``via`` matches
    the line the call came in on (``t38://0.0.0.0:6001``, ``class1:/dev/ttyUSB0``).
    ``reject`` turns the route into a block rule (e.g. a known junk-fax sender).
    """

    folder: str
    csid: str | None = None     # None: the receiver's --local-id
    dnis: str = "*"
    ani: str = "*"
    via: str = "*"
    reject: bool = False

    def matches(self, call: Call) -> bool:
        return (_match(call.dnis, self.dnis) and _match(call.ani, self.ani)
                and _match(call.via, self.via))


def _match(value: str | None, pattern: str) -> bool:
    if pattern == "*":
        return True
    if value is None:
        return False
    return fnmatch.fnmatchcase(value, pattern)


# An example table: two DIDs with their own CSID, one blocked caller, one T.38
# port standing for a number, and a default. Replace it with --routes FILE.json.
DEFAULT_ROUTES = [
    Route("blocked", ani="+1900*", reject=True),
    Route("sales", csid="+1 555 0100", dnis="5550100"),
    Route("support", csid="+1 555 0101", dnis="555010[1-9]"),
    Route("sales", csid="+1 555 0100", via="t38://*:6001"),
    Route("general"),
]


def choose_route(call: Call, routes: list[Route]) -> Route | None:
    """The first route matching ``call`` (None: nothing matched, not even a default)."""
    for route in routes:
        if route.matches(call):
            return route
    return None


def decide(call: Call, routes: list[Route]) -> Accept | Reject:
    """What ``on_call`` answers for ``call``: the route's CSID, or a rejection."""
    route = choose_route(call, routes)
    if route is None:
        return Reject(f"no route for DNIS {call.dnis!r} ANI {call.ani!r} on {call.via}")
    if route.reject:
        return Reject(f"blocked by route {route.folder!r}")
    return Accept(local_id=route.csid)


def file_fax(result: xmfax.FaxResult, routes: list[Route], inbox: Path) -> list[str]:
    """Move a received fax's files (and its JSON record) into its route's folder.

    The record says which number was called (``dnis``), by whom (``ani``) and on
    which line (``address`` is the receiver's ``via``), so the route found here is
    the one ``on_call`` chose. Returns the new paths."""
    call = Call(via=result.address, transport=result.transport, ani=result.ani, dnis=result.dnis)
    route = choose_route(call, routes)
    folder = inbox / (route.folder if route is not None and not route.reject else "unrouted")
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    paths = list(result.files)
    if paths:
        record = os.path.splitext(paths[0])[0] + ".json"
        if os.path.exists(record):
            paths.append(record)
    for path in paths:
        target = folder / os.path.basename(path)
        shutil.move(path, target)
        moved.append(str(target))
    records = [Path(m) for m in moved if m.endswith(".json")]
    if records:                          # the record names the files where they now are
        data = json.loads(records[0].read_text(encoding="utf-8"))
        data["files"] = [m for m in moved if not m.endswith(".json")]
        tmp = records[0].with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        os.replace(tmp, records[0])
    return moved


def load_routes(path: str) -> list[Route]:
    """Routes from a JSON file: ``[{"folder": "sales", "dnis": "5550100", "csid": "+1 555 0100"}, ...]``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    names = {f.name for f in fields(Route)}
    if not isinstance(data, list) or not all(isinstance(r, dict) and "folder" in r for r in data):
        raise ValueError(f"{path}: a routes file is a JSON list of objects with at least a \"folder\"")
    routes = []
    for r in data:
        unknown = set(r) - names
        if unknown:
            raise ValueError(f"{path}: unknown route field(s) {sorted(unknown)}; known: {sorted(names)}")
        routes.append(Route(**r))
    return routes


def make_receivers(vias: list[str], inbox: Path, routes: list[Route], *, local_id: str = "",
                   formats: tuple[str, ...] = ("tiff", "pdf"), realtime: bool = True, once: bool = False,
                   log=print) -> list[xmfax.Receiver]:
    """One receiver per line, all sharing the routing table; faxes land in ``inbox/<folder>/``."""
    staging = inbox / ".incoming"

    def on_call(call: Call) -> Accept | Reject:
        decision = decide(call, routes)
        log(f"call on {call.via} from {call.remote_address or call.ani or '?'} "
            f"(ANI {call.ani}, DNIS {call.dnis}): {decision}")
        return decision

    def on_done(result: xmfax.FaxResult) -> None:
        if result.ok or result.files:
            for path in file_fax(result, routes, inbox):
                log(f"  filed {path}")
        log(f"  {result.summary()}")

    return [xmfax.receive(via=via, output_dir=staging, formats=formats, local_id=local_id, realtime=realtime,
                          once=once, on_call=on_call, on_done=on_done) for via in vias]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description="Receive faxes and file each one by the number called (DNIS) and the caller (ANI), "
        "presenting a per-number CSID. Over T.38 (no DNIS) route by the port: one --via per number.")
    p.add_argument("--via", action="append", required=True, metavar="URL",
                   help="a line to answer on (repeatable): t38://HOST:PORT or class1:PORT")
    p.add_argument("--inbox", default="inbox", help="folder under which each route's folder is made")
    p.add_argument("--routes", metavar="FILE.json", help="routing table (default: the example table in this file)")
    p.add_argument("--local-id", default="", help="CSID of routes that name none")
    p.add_argument("--once", action="store_true", help="stop after one call on each line")
    p.add_argument("--fast", action="store_true", help="T.38 unpaced (trusted links and tests)")
    args = p.parse_args(argv)
    try:
        routes = load_routes(args.routes) if args.routes else DEFAULT_ROUTES
    except (OSError, ValueError) as exc:
        print(f"route_by_dnis: {exc}", file=sys.stderr)
        return 2
    receivers = make_receivers(args.via, Path(args.inbox), routes, local_id=args.local_id,
                               realtime=not args.fast, once=args.once,
                               log=lambda text: print(text, flush=True))

    async def run() -> None:
        await asyncio.gather(*(r.run() for r in receivers))

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
