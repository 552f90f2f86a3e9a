"""The outbound queue: queued faxes sent exactly once, over the configured lines, with retries.

Each node runs one :class:`Outbound`. Its loop claims due rows (``store.claim_outbound``:
``FOR UPDATE SKIP LOCKED`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite, so two nodes
never claim the same fax) up to the free capacity of its lines, and runs one task per
call. Every attempt leaves a ``calls`` row (the CDR), ``attempt`` and ``call`` events (the
latter with the FaxResult: reason, pages, rate, remote id and the T.30 event log) and the
record as a file; then the fax is ``sent``, ``failed``, or back to ``queued`` for a retry.

Nothing is lost when a node dies: rows in ``sending`` carry a heartbeat, refreshed while
the call runs. At start (``recover``) a node takes back the rows it left in ``sending``
(it was killed) and, while running, the rows of any node whose heartbeat is older than
``stale_after``: each goes back to ``queued`` with an ``interrupted`` event when attempts
are left, else it ends ``interrupted``. A stop (SIGTERM) lets calls run ``stop_grace``
seconds, then aborts them the same way.

Lines (``[outbound] lines``) are URL templates: ``{number}`` is the E.164 recipient
(``sip:{number}@trunk.example``), ``{digits}`` the same without ``+``; a line may
serve only numbers matching ``numbers`` (``*`` any run, ``?`` one character) and carries
at most ``max_calls`` calls at once on this node.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any

from .. import api
from ..errors import DocumentError, FaxError
from ..record import FaxResult, call_failure, utc_iso
from .config import ConfigError

log = logging.getLogger("xmfax.server.outbound")

__all__ = ["Line", "OutboundConfig", "Outbound"]

#: reasons retried by default: busy and no answer, and the engine's retryable ones (api.RETRYABLE)
DEFAULT_RETRY_ON = frozenset({"busy", "no_answer"} | api.RETRYABLE)
SAMPLE_NUMBER = "+15550100"
CLAIM_ROUNDS = 20           # claims per pass at most (each after faxes for busy lines were put back)
FINAL = ("sent", "failed", "cancelled", "interrupted")


# --------------------------------------------------------------------------- config
def _pattern(text: str) -> re.Pattern:
    """A number pattern: ``*`` any run, ``?`` one character, the rest literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text))


@dataclass
class Line:
    """One outbound line: a URL template, how many calls at once, which numbers."""

    url: str
    name: str = ""
    max_calls: int = 1
    numbers: tuple[str, ...] = ("*",)
    dial: str = "{number}"          # class1 lines: what the modem dials (e.g. "9{digits}")

    def __post_init__(self) -> None:
        self.name = self.name or self.url
        self._patterns = [_pattern(p) for p in self.numbers]

    def serves(self, number: str) -> bool:
        return any(p.fullmatch(number) for p in self._patterns)

    @staticmethod
    def _fill(template: str, number: str) -> str:
        return template.replace("{number}", number).replace("{digits}", number.lstrip("+"))

    def via(self, number: str) -> str:
        return self._fill(self.url, number)

    def to(self, number: str) -> str | None:
        """The number a Class 1 modem dials (None for the other transports)."""
        return self._fill(self.dial, number) if self.url.startswith("class1:") else None


@dataclass
class OutboundConfig:
    lines: list[Line] = field(default_factory=list)
    retry_delays: list[float] = field(default_factory=lambda: [60.0, 300.0, 900.0])
    retry_on: frozenset[str] = DEFAULT_RETRY_ON
    default_country: str = "1"
    poll_interval: float = 2.0          # s between looks at the queue when nobody wakes us
    heartbeat: float = 10.0             # s between heartbeats of the calls in progress
    stale_after: float = 60.0           # s without heartbeat after which a node counts as dead
    stop_grace: float = 10.0            # s calls in progress may still run when the node stops
    realtime: bool = True               # False: unpaced T.38 (trusted links, tests, benchmarks)
    max_duration: float = 1800.0        # s, one call
    answer_timeout: float = 35.0        # s to identify the far end (T.30 §5.4.3.1 T1: 35 +-5)
    ecm: bool = True
    max_rate: int = 14400
    t38: dict = field(default_factory=dict)     # T38Config keys
    sip: dict = field(default_factory=dict)     # the SIP user agent's options (api.send sip=)

    @classmethod
    def from_dict(cls, d: dict) -> "OutboundConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"[outbound] {key}: unknown key (known: {', '.join(sorted(known))})")
        out = cls()
        lines = d.get("lines", [])
        if isinstance(lines, (str, dict)):
            lines = [lines]
        if not isinstance(lines, list):
            raise ConfigError("[outbound] lines: a list of URL templates or tables")
        out.lines = [_line(x, i) for i, x in enumerate(lines, 1)]
        names = [x.name for x in out.lines]
        if len(set(names)) != len(names):
            raise ConfigError(f"[outbound] lines: two lines named the same ({names}); give each a name")
        if "retry_delays" in d:
            delays = d["retry_delays"]
            if not (isinstance(delays, list) and delays and all(_number(x) and x >= 0 for x in delays)):
                raise ConfigError("[outbound] retry_delays: a non-empty list of seconds >= 0, e.g. [60, 300, 900]")
            out.retry_delays = [float(x) for x in delays]
        if "retry_on" in d:
            reasons = d["retry_on"]
            if not (isinstance(reasons, list) and all(isinstance(x, str) for x in reasons)):
                raise ConfigError("[outbound] retry_on: a list of reasons, e.g. [\"busy\", \"no_answer\"]")
            out.retry_on = frozenset(reasons)
        if "default_country" in d:
            from .e164 import _country
            try:
                out.default_country = _country(str(d["default_country"]))
            except ValueError as exc:
                raise ConfigError(f"[outbound] default_country: {exc}") from None
        for key, low in (("poll_interval", 0.01), ("heartbeat", 0.05), ("stale_after", 0.1), ("stop_grace", 0.0),
                         ("max_duration", 1.0), ("answer_timeout", 1.0)):
            if key in d:
                if not (_number(d[key]) and d[key] >= low):
                    raise ConfigError(f"[outbound] {key}: a number of seconds >= {low}")
                setattr(out, key, float(d[key]))
        for key in ("realtime", "ecm"):
            if key in d:
                if not isinstance(d[key], bool):
                    raise ConfigError(f"[outbound] {key}: true or false")
                setattr(out, key, d[key])
        if "max_rate" in d:
            if d["max_rate"] not in (2400, 4800, 7200, 9600, 12000, 14400):
                raise ConfigError("[outbound] max_rate: 2400, 4800, 7200, 9600, 12000 or 14400")
            out.max_rate = d["max_rate"]
        for key in ("t38", "sip"):
            if key in d:
                if not isinstance(d[key], dict):
                    raise ConfigError(f"[outbound] {key}: a table")
                setattr(out, key, dict(d[key]))
        if out.stale_after <= out.heartbeat:
            raise ConfigError("[outbound] stale_after must be longer than heartbeat (a live node would look dead)")
        try:
            out.t38_config()
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"[outbound] t38: {exc}") from None
        return out

    def t38_config(self) -> Any:
        from ..t38.config import T38Config

        return T38Config(**self.t38) if self.t38 else None

    def t30_config(self, local_id: str) -> Any:
        from ..t30 import T30Config
        from ..t30.config import Timers

        return T30Config(local_id=local_id, ecm=self.ecm, max_rate=self.max_rate,
                         timers=Timers(t1=self.answer_timeout))


def _clean(text: str | None) -> str:
    """Text from the far end (its TSI/CSID, a driver's message) fit for a TEXT column:
    PostgreSQL refuses NUL, and other control characters only confuse a log."""
    return "".join(c if c.isprintable() else " " for c in (text or "")).strip()


def _number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _line(spec: Any, i: int) -> Line:
    where = f"[outbound] lines[{i}]"
    if isinstance(spec, str):
        spec = {"url": spec}
    if not isinstance(spec, dict) or not isinstance(spec.get("url"), str) or not spec["url"]:
        raise ConfigError(f"{where}: a URL template or a table with url = \"...\"")
    unknown = set(spec) - {"url", "name", "max_calls", "numbers", "dial"}
    if unknown:
        raise ConfigError(f"{where} {sorted(unknown)[0]}: unknown key (known: url, name, max_calls, numbers, dial)")
    max_calls = spec.get("max_calls", 1)
    if type(max_calls) is not int or not 1 <= max_calls <= 1000:
        raise ConfigError(f"{where} max_calls: 1..1000")
    numbers = spec.get("numbers", "*")
    numbers = (numbers,) if isinstance(numbers, str) else numbers
    if not (isinstance(numbers, (list, tuple)) and numbers and all(isinstance(p, str) and p for p in numbers)):
        raise ConfigError(f"{where} numbers: a pattern like \"+1*\" or a list of them")
    leftover = re.sub(r"\{(number|digits)\}", "", spec["url"])
    if "{" in leftover or "}" in leftover:
        raise ConfigError(f"{where}: {spec['url']!r}: the only placeholders are {{number}} and {{digits}}")
    line = Line(url=spec["url"], name=str(spec.get("name", "")), max_calls=max_calls, numbers=tuple(numbers),
                dial=str(spec.get("dial", "{number}")))
    try:
        api.parse_via(line.via(SAMPLE_NUMBER))
        if line.url.startswith("sip:"):
            from ..drivers import sip as sip_driver
            sip_driver.parse_sip_target(line.via(SAMPLE_NUMBER))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    return line


# --------------------------------------------------------------------------- the queue
@dataclass
class _Call:
    """A call in progress on this node."""

    fax_id: str
    line: Line
    task: asyncio.Task | None = None
    stop: str = ""                  # why it is being cancelled: "user" | "elsewhere" | "shutdown"
    finishing: bool = False         # the call has ended; its outcome is being recorded (not cancellable)


class Outbound:
    """The outbound queue of one node (a component of the service)."""

    def __init__(self, service: Any):
        self.service = service
        self.config = OutboundConfig.from_dict(service.config.section("outbound"))
        self.node = service.node
        self.active: dict[str, _Call] = {}
        self.busy: dict[str, int] = {line.name: 0 for line in self.config.lines}
        self._tasks: list[asyncio.Task] = []
        self._stopping = False

    @property
    def store(self) -> Any:
        return self.service.store

    async def _db(self, fn, *args, **kw) -> Any:
        return await self.service.db(fn, *args, **kw)

    # life cycle
    async def recover(self) -> None:
        """At start: the rows this node left in ``sending`` (it was killed) and the stale
        rows of any node are retried or marked interrupted; submissions a crash cut short
        are failed."""
        await self._recover(own=True)

    async def start(self) -> None:
        if not self.config.lines:
            log.warning("no outbound line ([outbound] lines or --line): faxes stay queued on this node")
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._run(), name="outbound-queue"),
                       loop.create_task(self._beat(), name="outbound-heartbeat")]

    async def stop(self) -> None:
        """No new claims; calls in progress get ``stop_grace`` s, then are aborted (their
        faxes retried or interrupted, as after a crash); then the heartbeats stop."""
        self._stopping = True
        self.service.wake("outbound")
        run, beat = self._tasks or (None, None)
        if run is not None:
            try:
                await asyncio.wait_for(run, 10.0)      # a claim in flight completes (or is recovered at start)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                pass
        calls = [c.task for c in self.active.values() if c.task is not None]
        if calls:
            log.info("waiting up to %.0f s for %d call(s) in progress", self.config.stop_grace, len(calls))
            await asyncio.wait(calls, timeout=max(self.config.stop_grace, 0.001))
        for c in list(self.active.values()):
            if c.task is not None and not c.task.done():
                c.stop = c.stop or "shutdown"
                c.task.cancel()
        await asyncio.gather(*calls, return_exceptions=True)
        if beat is not None:
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    # the loop
    async def _run(self) -> None:
        next_recovery = time.time() + self.config.stale_after / 2
        while not self._stopping:
            try:
                if time.time() >= next_recovery:
                    next_recovery = time.time() + self.config.stale_after / 2
                    await self._recover(own=False)
                await self._claim()
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001 - a database hiccup must not end the queue
                log.exception("outbound queue")
            await self.service.wait("outbound", self.config.poll_interval)

    async def _beat(self) -> None:
        """Heartbeats for the calls in progress; a row cancelled (or taken) elsewhere ends its call."""
        while True:
            await asyncio.sleep(self.config.heartbeat)
            try:
                ids = list(self.active)
                if not ids:
                    continue
                await self._db(self.store.heartbeat, ids, self.node, time.time())
                for fax_id in ids:
                    row = await self._db(self.store.get_fax, fax_id)
                    c = self.active.get(fax_id)
                    if c is None or c.task is None or c.stop or c.finishing:
                        continue
                    if row is None or row["status"] != "sending" or row["claimed_by"] != self.node:
                        c.stop = "elsewhere"
                        c.task.cancel()
            except asyncio.CancelledError:
                raise
            except Exception:   # noqa: BLE001
                log.exception("outbound heartbeat")

    def _free(self) -> int:
        return sum(max(0, line.max_calls - self.busy[line.name]) for line in self.config.lines)

    def _pick(self, number: str) -> Line | None:
        """The line for ``number`` with a free slot, the least busy of those that serve it."""
        free = [line for line in self.config.lines
                if line.serves(number) and self.busy[line.name] < line.max_calls]
        return min(free, key=lambda line: self.busy[line.name] / line.max_calls) if free else None

    async def _claim(self) -> None:
        """Claim due faxes for the free slots of the lines. A fax whose lines are all busy
        goes back to the queue a poll interval later (no attempt counted), so the faxes
        behind it, for lines that are free, are claimed in the same pass: a busy line
        never holds up another."""
        for _ in range(CLAIM_ROUNDS):
            free = self._free()
            if free <= 0 or self._stopping:
                return
            now = time.time()
            rows = await self._db(self.store.claim_outbound, self.node, now, free)
            blocked = 0
            for row in rows:
                number = row["number"] or ""
                line = self._pick(number)
                if line is not None:
                    self._launch(row, line)
                elif not any(line.serves(number) for line in self.config.lines):
                    await self._finish_without_call(row, "failed", "no_line",
                                                    f"no outbound line of node {self.node} serves {number}")
                else:       # its lines are full: back in the queue, untouched, behind the others due now
                    blocked += 1
                    await self._db(self.store.set_status, row["id"], "queued", expect=("sending",),
                                   claimed_by=None, heartbeat_at=None,
                                   next_attempt_at=max(row["next_attempt_at"] or now, now + self.config.poll_interval))
            if len(rows) < free or not blocked:
                return

    def _launch(self, row: dict, line: Line) -> None:
        call = _Call(row["id"], line)
        self.active[row["id"]] = call
        self.busy[line.name] += 1
        call.task = asyncio.get_running_loop().create_task(self._attempt(row, call), name=f"fax-{row['id']}")

        def done(_: asyncio.Task) -> None:
            self.active.pop(row["id"], None)
            self.busy[line.name] -= 1
            self.service.wake("outbound")       # a slot is free

        call.task.add_done_callback(done)

    # one attempt
    async def _attempt(self, row: dict, call: _Call) -> None:
        fax_id, line, store = row["id"], call.line, self.store
        number = row["number"]
        attempt = int(row["attempts"] or 0) + 1
        max_attempts = int(row["max_attempts"] or 1)
        via = line.via(number)
        started = time.time()
        call_id = None
        try:
            await self._db(store.update_fax, fax_id, attempts=attempt, line=line.name)
            call_id = await self._db(store.add_call, fax_id, attempt=attempt, direction="out", line=line.name,
                                     started_at=started, status="calling", dnis=number, node=self.node)
            await self._db(store.add_event, fax_id, "attempt",
                           f"attempt {attempt} of {max_attempts} to {number} via line {line.name} (node {self.node})",
                           {"attempt": attempt, "line": line.name, "via": via, "node": self.node})
            try:
                tiff = await self._db(store.read_file, fax_id, "tiff")
            except FileNotFoundError:
                result = call_failure("send", "bad_document", "the fax's pages are not in the store (purged?)")
            else:
                result = await self._send(tiff, row, line, via, number)
        except asyncio.CancelledError:
            await self._cancelled(row, call, call_id, attempt, started)
            return
        except Exception as exc:   # noqa: BLE001 - a bug or a dead database: the row must not stay "sending"
            log.exception("fax %s: attempt %d", fax_id, attempt)
            result = call_failure("send", "driver_error", f"{type(exc).__name__}: {exc}")
        # the call is over: its outcome is recorded whatever happens now (a cancel, a stop
        # or a heartbeat seeing the row change under it must not cut the record in half)
        call.finishing = True
        record = asyncio.ensure_future(self._record(row, line, attempt, call_id, started, result))
        try:
            await asyncio.shield(record)
        except asyncio.CancelledError:
            await record

    async def _record(self, row: dict, line: Line, attempt: int, call_id: int | None, started: float,
                      result: FaxResult) -> None:
        fax_id, store = row["id"], self.store
        try:
            await self._finish(row, line, attempt, call_id, started, result)
        except Exception:   # noqa: BLE001 - the record failed: at least the outcome, never "sending" forever
            log.exception("fax %s: recording attempt %d (%s) failed", fax_id, attempt, result.reason)
            try:
                await self._db(store.complete_fax, fax_id, "sent" if result.ok else "failed", expect=("sending",),
                               reason=result.reason, pages=len(result.pages), heartbeat_at=None,
                               reason_text=_clean(f"{result.reason_text} (the call's record could not be stored)"))
            except Exception:   # noqa: BLE001 - the database is gone: recovery requeues it (stale heartbeat)
                log.exception("fax %s: status not stored", fax_id)

    async def _send(self, tiff: bytes, row: dict, line: Line, via: str, number: str) -> FaxResult:
        cfg = self.config
        csid = row["csid"] or ""
        call = asyncio.ensure_future(api.send(
            tiff, via=via, to=line.to(number), config=cfg.t30_config(csid), realtime=cfg.realtime,
            t38=cfg.t38_config(), max_duration=cfg.max_duration, sip=cfg.sip or None))
        try:
            try:
                return await asyncio.shield(call)
            except asyncio.CancelledError:
                # a cancel (or stop) aborts the call; but a call that had already ended keeps
                # its outcome: a fax the far end got is recorded sent, never "cancelled"
                call.cancel()
                return await call
        except (FaxError, ValueError, OSError) as exc:
            reason = "bad_document" if isinstance(exc, DocumentError) else "driver_error"
            return call_failure("send", reason, str(exc), started_at=utc_iso(time.time()), address=via)

    async def _finish(self, row: dict, line: Line, attempt: int, call_id: int | None, started: float,
                      result: FaxResult) -> None:
        fax_id, store = row["id"], self.store
        now = time.time()
        pages = len(result.pages)
        if call_id is not None:
            await self._db(store.update_call, call_id, ended_at=now, duration=round(now - started, 3),
                           status=result.status, reason=result.reason, pages=pages, rate=result.rate,
                           remote_id=_clean(result.remote_id) or None)
        await self._db(store.put_file, fax_id, "record", result.to_json().encode(), name=f"attempt-{attempt}.json")
        await self._db(store.add_event, fax_id, "call", _clean(result.summary()), {
            "attempt": attempt, "status": result.status, "reason": result.reason,
            "reason_text": result.reason_text, "pages": pages, "rate": result.rate,
            "modulation": result.modulation, "compression": result.compression, "ecm": result.ecm,
            "remote_id": result.remote_id, "duration": result.duration, "sip": result.sip,
            "t30": result.events})
        common = dict(expect=("sending",), reason=result.reason, reason_text=_clean(result.reason_text),
                      remote_id=_clean(result.remote_id) or None, heartbeat_at=None)
        max_attempts = int(row["max_attempts"] or 1)
        if result.ok:
            if await self._db(store.complete_fax, fax_id, "sent", pages=pages, **common):
                await self._db(store.add_event, fax_id, "sent", f"sent: {pages} page(s) to {row['number']}, "
                               f"remote {result.remote_id!r}", {"pages": pages, "attempt": attempt})
                await self._notify(fax_id, row)
            else:
                await self._late(fax_id, "sent")
        elif result.reason in self.config.retry_on and attempt < max_attempts:
            delay = self._delay(row, attempt)
            if await self._db(store.set_status, fax_id, "queued", next_attempt_at=now + delay, claimed_by=None,
                              **common):
                await self._db(store.add_event, fax_id, "retry",
                               f"{result.reason}: attempt {attempt + 1} of {max_attempts} in {delay:g} s",
                               {"reason": result.reason, "delay": delay, "next_attempt_at": now + delay})
                self.service.wake("outbound")
            else:
                await self._late(fax_id, "retry")
        else:
            why = "no attempt left" if result.reason in self.config.retry_on else "not retryable"
            if await self._db(store.complete_fax, fax_id, "failed", **common):
                await self._db(store.add_event, fax_id, "failed",
                               f"failed after {attempt} attempt(s): {result.reason} ({why})",
                               {"reason": result.reason, "reason_text": result.reason_text, "attempts": attempt})
                await self._notify(fax_id, row)
            else:
                await self._late(fax_id, "failed")

    def _delay(self, row: dict, attempt: int) -> float:
        """Backoff before attempt ``attempt + 1``: the request's retry delay doubling per
        retry, or [outbound].retry_delays (the last one repeats)."""
        base = (row.get("metadata") or {}).get("retry_delay")
        if base is not None:
            return float(base) * 2 ** (attempt - 1)
        delays = self.config.retry_delays
        return delays[min(attempt - 1, len(delays) - 1)]

    async def _late(self, fax_id: str, what: str) -> None:
        row = await self._db(self.store.get_fax, fax_id)
        status = row["status"] if row else "gone"
        await self._db(self.store.add_event, fax_id, "call",
                       f"the call ended ({what}) after the fax became {status}; left {status}", {"status": status})

    async def _cancelled(self, row: dict, call: _Call, call_id: int | None, attempt: int, started: float) -> None:
        """The call task was cancelled: by the user (-> cancelled), because the row was
        cancelled or taken on another node (-> left as it is), or by a stop (-> retried or
        interrupted, as after a crash)."""
        fax_id, store = row["id"], self.store
        now = time.time()
        why = call.stop or "shutdown"
        if call_id is not None:
            await self._db(store.update_call, call_id, ended_at=now, duration=round(now - started, 3),
                           status="failure", reason="cancelled" if why != "shutdown" else "interrupted")
        if why == "user":
            if await self._db(store.complete_fax, fax_id, "cancelled", expect=("sending",), reason="cancelled",
                              reason_text=f"cancelled during attempt {attempt}", heartbeat_at=None):
                await self._db(store.add_event, fax_id, "cancelled",
                               f"cancelled during attempt {attempt}: the call was aborted", {"attempt": attempt})
                await self._notify(fax_id, row)
        elif why == "elsewhere":
            await self._late(fax_id, "aborted")
        else:
            await self._requeue(await self._db(store.get_fax, fax_id) or row,
                                f"node {self.node} stopped during attempt {attempt}")

    # cancel (the REST API's cancel route: service.component("Outbound").cancel(id))
    async def cancel(self, fax_id: str) -> bool:
        """Cancel an outbound fax: queued -> cancelled; sending -> its call is aborted and it
        ends cancelled (on another node within its heartbeat). False when the fax is
        unknown, inbound or already finished (nothing changed)."""
        store = self.store
        for _ in range(3):
            row = await self._db(store.get_fax, fax_id)
            if row is None or row["direction"] != "out" or row["status"] in FINAL:
                return False
            if row["status"] == "queued":
                if await self._db(store.complete_fax, fax_id, "cancelled", expect=("queued",), reason="cancelled",
                                  reason_text="cancelled before it was sent"):
                    await self._db(store.add_event, fax_id, "cancelled", "cancelled while queued", {})
                    await self._notify(fax_id, row)
                    return True
                continue            # claimed meanwhile: look again
            if row["status"] == "sending":
                call = self.active.get(fax_id)
                if call is not None and call.task is not None:
                    if call.finishing:          # too late to abort: see what it became
                        await asyncio.wait([call.task])
                        continue
                    call.stop = "user"
                    call.task.cancel()
                    await asyncio.wait([call.task])
                    row = await self._db(store.get_fax, fax_id)
                    return row is not None and row["status"] == "cancelled"    # not when the call had ended
                if await self._db(store.complete_fax, fax_id, "cancelled", expect=("sending",), reason="cancelled",
                                  reason_text=f"cancelled while node {row['claimed_by']} was sending"):
                    await self._db(store.add_event, fax_id, "cancelled",
                                   f"cancelled while node {row['claimed_by']} was sending; it aborts the call", {})
                    await self._notify(fax_id, row)
                    return True
                continue
            return False            # submitting: not a transaction yet
        return False

    # recovery
    async def _recover(self, *, own: bool) -> None:
        store, now = self.store, time.time()
        rows = await self._db(store.stale, now, 0.0 if own else self.config.stale_after, ("sending",))
        for row in rows:
            if row["id"] in self.active:
                continue
            mine = row["claimed_by"] == self.node
            if not (mine or (row["heartbeat_at"] or row["updated_at"] or 0) < now - self.config.stale_after):
                continue
            who = "this node" if mine else f"node {row['claimed_by']}"
            await self._requeue(row, f"{who} stopped during attempt {row['attempts'] or 0}")
        from .submit import SUBMITTING
        for row in await self._db(store.stale, now, max(600.0, self.config.stale_after), (SUBMITTING,)):
            if await self._db(store.complete_fax, row["id"], "failed", expect=(SUBMITTING,), reason="interrupted",
                              reason_text="the node stopped while the fax was being submitted"):
                await self._db(store.add_event, row["id"], "interrupted",
                               "the node stopped while the fax was being submitted; never queued", {})

    async def _requeue(self, row: dict, why: str) -> None:
        """A row whose call was cut short (crash, stop): retried, or interrupted when no attempt is left."""
        store, fax_id, now = self.store, row["id"], time.time()
        for c in await self._db(store.calls, fax_id=fax_id):
            if c["ended_at"] is None:
                await self._db(store.update_call, c["id"], ended_at=now, status="failure", reason="interrupted",
                               duration=round(now - (c["started_at"] or now), 3))
        attempts, max_attempts = int(row["attempts"] or 0), int(row["max_attempts"] or 1)
        if attempts < max_attempts:
            if await self._db(store.set_status, fax_id, "queued", expect=("sending",), next_attempt_at=now,
                              claimed_by=None, heartbeat_at=None, reason="interrupted", reason_text=why):
                await self._db(store.add_event, fax_id, "interrupted", f"{why}; retrying",
                               {"attempts": attempts, "node": row["claimed_by"]})
                self.service.wake("outbound")
        elif await self._db(store.complete_fax, fax_id, "interrupted", expect=("sending",), reason="interrupted",
                            reason_text=f"{why}; no attempt left", heartbeat_at=None):
            await self._db(store.add_event, fax_id, "interrupted", f"{why}; no attempt left ({attempts} made)",
                           {"attempts": attempts, "node": row["claimed_by"]})
            await self._notify(fax_id, row)

    async def _finish_without_call(self, row: dict, status: str, reason: str, text: str) -> None:
        if await self._db(self.store.complete_fax, row["id"], status, expect=("sending",), reason=reason,
                          reason_text=text, heartbeat_at=None):
            await self._db(self.store.add_event, row["id"], status, text, {"reason": reason})
            await self._notify(row["id"], row)

    async def _notify(self, fax_id: str, row: dict) -> None:
        """The request's notification destinations, now that the fax is finished."""
        from . import notify

        destinations = list((row.get("metadata") or {}).get("notifications") or [])
        try:
            await notify.enqueue(self.service, fax_id, destinations)
        except Exception:   # noqa: BLE001 - the fax's own outcome is recorded; say what went wrong
            log.exception("fax %s: notifications could not be queued", fax_id)
            await self._db(self.store.add_event, fax_id, "notify", "the notifications could not be queued", {})
