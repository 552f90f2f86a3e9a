"""`xmfax modem probe PORT`: identity, fax classes and modulations of a modem.

PORT is a pyserial name or URL (/dev/ttyUSB0, a PTY, rfc2217://host:port).
Prints the modem's answers and what xmfax would offer in its DIS; with
--trace, every byte and AT exchange is logged with timestamps to stderr.
"""
from __future__ import annotations

import sys


def register(subparsers) -> None:
    p = subparsers.add_parser("modem", help="Class 1 fax modem tools (probe)")
    sub = p.add_subparsers(dest="modem_command", metavar="ACTION")
    pr = sub.add_parser("probe", help="identify a modem and list its fax classes and speeds")
    pr.add_argument("port", help="serial port name or pyserial URL")
    pr.add_argument("--speed", type=int, default=115200, help="DTE speed (default 115200)")
    pr.add_argument("--no-rtscts", action="store_true", help="no RTS/CTS flow control")
    pr.add_argument("--no-reset", action="store_true", help="skip ATZ")
    pr.add_argument("--timeout", type=float, default=3.0, help="seconds per command (default 3)")
    pr.add_argument("--trace", action="store_true", help="log every byte and AT exchange to stderr")
    pr.add_argument("--json", action="store_true", help="print the result as JSON")
    pr.set_defaults(func=run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run(args) -> int:
    import json

    from ..drivers.class1 import Class1Config, Class1Driver
    from ..drivers.class1.probe import probe
    from ..errors import DriverError

    cfg = Class1Config(args.port, baudrate=args.speed, rtscts=not args.no_rtscts,
                       init=("ATE0", "ATV1", "ATQ0"), command_timeout=args.timeout,
                       trace=sys.stderr if args.trace else None)
    try:
        with Class1Driver(cfg) as drv:
            drv.initialize(reset=not args.no_reset)
            result = probe(drv.at, args.timeout)
    except DriverError as exc:
        print(f"xmfax modem probe: {exc}", file=sys.stderr)
        return 1
    if args.json:
        opt = result.t30_options()
        print(json.dumps({
            "identity": result.identity, "classes": list(result.classes),
            "ftm": list(result.ftm), "frm": list(result.frm),
            "fth": list(result.fth), "frh": list(result.frh),
            "modulations": [str(mm) for mm in result.modulations],
            "dis": {"modems": sorted(f.value for f in opt["modems"]), "max_rate": opt["max_rate"]},
        }, indent=2))
    else:
        print(result.summary())
    return 0 if result.class1 else 1
