"""What the send, receive and demo subcommands share: options, progress, output."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from ..api import CallStarted, PageStored, Retrying
from ..ladder import render_html, render_svg, render_text
from ..record import FaxResult
from ..t30 import events as ev

RESOLUTIONS = ["standard", "fine", "superfine", "ultrafine", "200x200", "300x300", "400x400"]


def add_line_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--local-id", default="", metavar="ID",
                   help="our identifier (TSI when sending, CSI when receiving), e.g. '+1 555 0100'")
    p.add_argument("--no-ecm", action="store_true", help="do not use error correction mode")
    p.add_argument("--max-rate", type=int, default=14400, choices=[2400, 4800, 7200, 9600, 12000, 14400],
                   help="fastest modem rate to offer (default 14400, V.17)")
    p.add_argument("--fast", action="store_true",
                   help="T.38: do not pace packets in real time (trusted links and tests)")
    p.add_argument("--max-duration", type=float, default=1800.0, metavar="SECONDS",
                   help="give up a call that runs longer than this (default 1800)")
    p.add_argument("--json", action="store_true", help="print the fax record as JSON")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="print nothing but errors (and receive's ready line)")
    p.add_argument("--ladder", metavar="FILE",
                   help="also draw the call as a ladder diagram: FILE.svg, FILE.html or text")
    s = p.add_argument_group("SIP", "credentials come from XMFAX_SIP_USERNAME/XMFAX_SIP_PASSWORD or "
                             "XMFAX_SIP_CREDENTIALS=FILE, never from the command line")
    s.add_argument("--t38-switch-after", type=float, metavar="SECONDS",
                   help="on a call answered with audio (G.711), re-INVITE to T.38 this long after the "
                   "answer unless the far end does first (default: 1 when receiving, 3 when sending)")
    s.add_argument("--no-t38-switch", action="store_true",
                   help="never re-INVITE to T.38 ourselves: wait for the far end's re-INVITE")
    s.add_argument("--no-audio-fallback", action="store_true",
                   help="when T.38 cannot be had (488 to the re-INVITE, or no switch within 8 s), end "
                   "the call as t38_refused instead of faxing over the G.711 audio already flowing")
    s.add_argument("--audio-wait", type=float, metavar="SECONDS",
                   help="with the audio fallback on: how long a call on G.711 waits for either end to "
                   "switch to T.38 before it faxes over audio (default 8)")
    m = p.add_argument_group("Class 1 modems")
    m.add_argument("--modem-profile", default="generic", metavar="NAME",
                   help="modem quirks profile (see docs/class1.md): generic, conservative, iaxmodem ...")
    m.add_argument("--trace", metavar="FILE", help="log every byte and AT exchange with times to FILE")


def sip_options(args: argparse.Namespace, **more) -> dict | None:
    """The UAConfig options the command line asks for (None unless --via is sip)."""
    if not args.via.startswith("sip:"):
        return None
    options = dict(more)
    if args.no_t38_switch:
        options["t38_switch_after"] = None
    elif args.t38_switch_after is not None:
        options["t38_switch_after"] = max(0.0, args.t38_switch_after)
    if args.no_audio_fallback:
        options["audio_fallback"] = False
    if args.audio_wait is not None:
        options["audio_wait"] = args.audio_wait
    return options


def check_sip(args: argparse.Namespace, command: str) -> bool:
    """For a sip --via: the address and the credentials (environment or file) are usable;
    if not, say why on stderr (never the password) and return False."""
    if not args.via.startswith("sip:"):
        return True
    from ..drivers import sip as sip_driver
    from ..sip.auth import load_credentials

    try:
        if command == "receive":
            sip_driver.parse_sip_listen(args.via)
            if args.register:
                sip_driver.parse_sip_target(args.register)
        else:
            sip_driver.parse_sip_target(args.via)
        sip_driver.ua_options(sip_options(args))       # e.g. --audio-wait 0: a usage error now
        load_credentials()
    except ValueError as exc:
        print(f"xmfax {command}: {exc}", file=sys.stderr, flush=True)
        return False
    return True


def class1_options(args: argparse.Namespace) -> dict | None:
    """The Class1Config keywords the options ask for (None unless --via is class1:)."""
    if not args.via.startswith("class1:"):
        return None
    options: dict = {"profile": args.modem_profile}
    if args.trace:
        options["trace"] = open(args.trace, "w", encoding="utf-8")   # closed at exit
    return options


class Progress:
    """Shows a call as it goes: a progress bar per page on a terminal, plain lines elsewhere."""

    def __init__(self, enabled: bool, label: str):
        self.enabled = enabled
        self.label = label
        self._rich = None
        self._task = None
        if enabled and sys.stderr.isatty():
            try:
                from rich.progress import BarColumn, Progress as RichProgress, TextColumn, TimeElapsedColumn
            except ImportError:
                pass
            else:
                self._rich = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                          TextColumn("{task.completed}/{task.total} pages"),
                                          TimeElapsedColumn(), transient=False)

    def __enter__(self) -> "Progress":
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._rich is not None:
            self._rich.stop()

    def _say(self, text: str) -> None:
        if not self.enabled:
            return
        if self._rich is not None:
            self._rich.console.print(text)
        else:
            print(text, file=sys.stderr, flush=True)

    def on_event(self, e: Any) -> None:
        if isinstance(e, CallStarted):
            self._say(f"{self.label}: call started via {e.via}" + (f" (attempt {e.attempt})" if e.attempt > 1 else ""))
        elif isinstance(e, Retrying):
            self._say(f"{self.label}: attempt {e.attempt} failed ({e.reason}); retrying in {e.delay:.0f} s")
        elif isinstance(e, ev.TrainingResult):
            self._say(f"{self.label}: training at {e.modulation}: {'ok' if e.ok else 'failed'}")
        elif isinstance(e, ev.PageStarted):
            if self._rich is not None:
                if self._task is None:
                    self._task = self._rich.add_task(self.label, total=None)
                self._rich.update(self._task, description=f"{self.label}: page {e.number} "
                                  f"({e.coding.upper()}, {e.resolution}, {e.rate} bit/s)")
            elif not getattr(self, "_announced", None) == e.number:
                self._announced = e.number
                self._say(f"{self.label}: page {e.number} ({e.coding.upper()}, {e.resolution}, {e.rate} bit/s)")
        elif isinstance(e, ev.PageSent):
            if self._rich is not None and self._task is not None:
                self._rich.advance(self._task)
            self._say(f"{self.label}: page {e.number} sent ({e.response})")
        elif isinstance(e, ev.PageReceived):      # with -o its answer waits until it is stored
            self._say(f"{self.label}: page {e.number} received")
        elif isinstance(e, PageStored):
            if e.error is None:
                if self._rich is not None and self._task is not None:
                    self._rich.advance(self._task)
                self._say(f"{self.label}: page {e.number} stored ({e.response})")
            else:
                self._say(f"{self.label}: page {e.number} NOT stored ({e.error}): not confirmed")
        elif isinstance(e, ev.CallEnded):
            self._say(f"{self.label}: call ended: {e.status} ({e.text})")


def write_ladder(result: FaxResult, target: str) -> str:
    record = result.to_dict()
    path = Path(target)
    if path.suffix == ".svg":
        path.write_text(render_svg(record), encoding="utf-8")
    elif path.suffix in (".html", ".htm"):
        path.write_text(render_html(record), encoding="utf-8")
    else:
        path.write_text(render_text(record) + "\n", encoding="utf-8")
    return str(path)


def report(result: FaxResult, args: argparse.Namespace) -> int:
    """Print a finished call as the options ask; the exit status (0 only on success)."""
    if args.ladder:
        write_ladder(result, args.ladder)
    if args.json:
        print(result.to_json())
    elif not args.quiet:
        print(result.summary())
        for f in result.files:
            print(f"  {f}")
    return 0 if result.ok else 1
