"""Inbound faxes: answer each call with its number's CSID, keep every page, route, notify.

One :func:`xmfax.receive` per ``[inbound].listen`` URL, all writing into this node's spool
folder (``DATA/spool/inbound/NODE``). For each call:

* ``on_call``: the called number (DNIS: the SIP request URI, a Class 1 modem's DID, or
  the number configured for the line) is looked up in the fax numbers; the call is
  answered with that number's CSID (the number itself when none is set), an unknown
  number with ``[inbound].local_id`` (or refused 404 with ``reject_unknown``). The fax's
  row is created (``receiving``, claimed by this node) with a ``receiving`` event and a
  call record.
* ``on_stored``: each page stored (written and fsync'd before the far end hears MCF) is a
  ``page`` event; the first one ties the row to its spool file (``metadata.spool``).
* ``on_done``: the received TIFF Class F (and the PDF, and the T.30 record) go into the
  store encrypted (AES-GCM, :mod:`xmfax.server.crypto`), the spool files are removed,
  the fax completes (``received``, even partial, or ``failed`` without a page) with its
  ``call`` and ``received``/``failed`` events, then the routing table runs (a ``routing``
  event with its trace) and :func:`xmfax.server.notify.enqueue` takes the destinations.

Crash recovery (:meth:`Inbound.recover`, before any line answers): the spool holds what
a killed node left. A ``.part`` file keeps exactly the pages stored whole (a page is
linked into the TIFF only once complete): it becomes the fax of its row (or of a new row
when the node died before tying them), ``received`` with reason ``interrupted``; rows
left ``receiving`` without pages become ``failed``/``interrupted``; faxes completed but
never routed are routed. Nothing received is silently lost.

The fax pages are plaintext on disk only while the call lasts (the ``.part`` in the
spool folder, which is 0700 like the data folder); they are encrypted into the store and
the spool files removed as soon as the call ends, or at the next start after a crash.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import api
from ..record import FaxResult
from . import routing
from . import spool as _spool
from .config import ConfigError

log = logging.getLogger("xmfax.server.inbound")

__all__ = ["InboundConfig", "ListenLine", "Inbound", "csid_problem"]

_KEYS = ("listen", "formats", "reject_unknown", "local_id", "max_duration", "realtime", "default_country",
         "heartbeat", "stale_after", "ecm", "max_rate")


def csid_problem(text: str) -> str | None:
    """Why ``text`` cannot be sent as a CSID (None when it can): T.30 allows at most 20
    characters, digits, '+' and space only (Table 3/T.30, T.30 §5.3.6.2.4)."""
    from ..t30.frames import check_id

    try:
        check_id(text, "CSID")
    except ValueError as exc:
        return str(exc)
    return None


def _fallback_csid(text: str) -> str:
    """A CSID T.30 can carry, made from ``text``: its allowed characters, 20 at most."""
    return "".join(c for c in text if c in "0123456789+ ").strip()[:20]


@dataclass
class ListenLine:
    """One line to answer on: the ``via`` URL :func:`xmfax.receive` takes and, for a line
    whose calls carry no called number (a T.38 or RTP port, an analogue line), the
    number they are for (``dnis``)."""

    url: str
    dnis: str = ""
    register: str = ""

    @classmethod
    def parse(cls, value: Any, where: str) -> "ListenLine":
        """``"t38://0.0.0.0:6000"``, ``"t38://0.0.0.0:6000#+15551230001"`` (the line's number
        after '#'), or a table ``{url = ..., number = ..., register = ...}``."""
        if isinstance(value, str):
            url, _, dnis = value.partition("#")
            line = cls(url.strip(), dnis.strip())
        elif isinstance(value, dict):
            unknown = sorted(set(value) - {"url", "number", "register"})
            if unknown:
                raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: url, number, register)")
            if not isinstance(value.get("url"), str):
                raise ConfigError(f"{where}: url (the line to answer on, e.g. sip://0.0.0.0:5060) is required")
            line = cls(value["url"].strip(), str(value.get("number", "")).strip(), str(value.get("register", "")))
        else:
            raise ConfigError(f"{where}: a URL or a table {{url = ..., number = ...}}, not {value!r}")
        try:
            transport, _ = api.parse_via(line.url)
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        if transport == "sip" and not line.url.startswith("sip://"):
            raise ConfigError(f"{where}: {line.url!r} is an address to call; listen on sip://HOST:PORT")
        if line.register and transport != "sip":
            raise ConfigError(f"{where}: register is for sip:// lines")
        return line


@dataclass
class InboundConfig:
    """``[inbound]``: the lines to answer on and how."""

    listen: list[ListenLine] = field(default_factory=list)
    formats: tuple[str, ...] = ("tiff",)     # kept in the store: the TIFF always, a PDF too with "pdf"
    reject_unknown: bool = False             # a call to a number not in [[numbers]]: 404 instead of answering
    local_id: str = ""                       # the CSID for a number not in [[numbers]]
    max_duration: float = 1800.0             # one call at most, seconds
    realtime: bool = True                    # T.38 paced as a gateway expects (false: trusted links, tests)
    default_country: str = ""                # for comparing numbers in E.164 ("" -> [outbound].default_country, 1)
    heartbeat: float = 10.0                  # a call in progress touches its row this often (seconds)
    stale_after: float = 0.0                 # another node's call untouched this long is taken over
                                             # (0: max_duration + 120 s, when the call must have ended)
    ecm: bool = True
    max_rate: int = 14400

    @classmethod
    def from_dict(cls, d: dict, outbound: dict | None = None) -> "InboundConfig":
        unknown = sorted(set(d) - set(_KEYS))
        if unknown:
            raise ConfigError(f"[inbound] {unknown[0]}: unknown key (known: {', '.join(_KEYS)})")
        cfg = cls()
        listen = d.get("listen", [])
        if isinstance(listen, (str, dict)):
            listen = [listen]
        if not isinstance(listen, list):
            raise ConfigError(f"[inbound] listen: a list of URLs, not {listen!r}")
        cfg.listen = [ListenLine.parse(v, f"[inbound] listen[{i}]") for i, v in enumerate(listen)]
        formats = d.get("formats", ["tiff"])
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not formats or any(f not in ("tiff", "pdf") for f in formats):
            raise ConfigError(f"[inbound] formats: a list of \"tiff\" and/or \"pdf\", not {formats!r}")
        cfg.formats = tuple(dict.fromkeys(["tiff", *formats]))     # the TIFF is always kept
        for key in ("reject_unknown", "realtime", "ecm"):
            if key in d:
                if not isinstance(d[key], bool):
                    raise ConfigError(f"[inbound] {key}: true or false, not {d[key]!r}")
                setattr(cfg, key, d[key])
        if "local_id" in d:
            if not isinstance(d["local_id"], str) or csid_problem(d["local_id"]):
                raise ConfigError(f"[inbound] local_id: {csid_problem(str(d['local_id']))}")
            cfg.local_id = d["local_id"]
        for key, low in (("max_duration", 1.0), ("heartbeat", 0.05), ("stale_after", 1.0)):
            if key in d:
                v = d[key]
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not (v >= low or key == "stale_after"
                                                                                     and v == 0):
                    also = " (or 0: max_duration + 120)" if key == "stale_after" else ""
                    raise ConfigError(f"[inbound] {key}: a number of seconds >= {low:g}{also}, not {v!r}")
                setattr(cfg, key, float(v))
        if "max_rate" in d:
            if d["max_rate"] not in (2400, 4800, 7200, 9600, 12000, 14400):
                raise ConfigError(f"[inbound] max_rate: 2400, 4800, 7200, 9600, 12000 or 14400, not {d['max_rate']!r}")
            cfg.max_rate = d["max_rate"]
        country = d.get("default_country", (outbound or {}).get("default_country", "1"))
        from .e164 import _country
        try:
            cfg.default_country = _country(str(country))
        except ValueError as exc:
            where = "[inbound]" if "default_country" in d else "[outbound]"
            raise ConfigError(f"{where} default_country: {exc}") from None
        return cfg


@dataclass
class _CallState:
    """One call between on_call and on_done."""

    line: ListenLine
    call: api.Call
    started: float
    fax_id: str | None = None
    call_row: int | None = None
    metadata: dict = field(default_factory=dict)
    pages: int = 0


def _node_dir(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", node) or "node"


class Inbound:
    """The inbound component: ``recover()``, ``start()``, ``stop()`` (the service calls them)."""

    def __init__(self, service: Any):
        from .retention import RetentionConfig

        self.service = service
        cfg = service.config
        self.config = InboundConfig.from_dict(cfg.section("inbound"), cfg.section("outbound"))
        self.default_retention = RetentionConfig.from_dict(cfg.section("retention")).days
        self.spool = Path(cfg.data_dir) / "spool" / "inbound" / _node_dir(service.node)
        self.receivers: list[api.Receiver] = []
        self.addresses: list[tuple[str, Any]] = []          # (url, bound address) once started
        self.bound: dict[str, str] = {}                     # url -> the URL with the port bound
        self._tasks: list[asyncio.Task] = []
        self._heartbeat_task: asyncio.Task | None = None
        self._fifo: dict[str, collections.deque] = {}       # non-SIP lines (by URL): calls in order
        self._by_call_id: dict[str, _CallState] = {}        # SIP: calls by Call-ID
        self._active: dict[str, _CallState] = {}            # fax id -> call in progress
        self._stopping = False
        self.check_routing()

    # ------------------------------------------------------------------ config checks
    def check_routing(self) -> list[str]:
        """Refuse (ConfigError) a routing table that cannot work (see routing.check_config),
        in particular zero retention (the default or a number's) without a default rule
        destination. Reads the table from the store (the config seeded it)."""
        store = self.service.store
        numbers = store.list_numbers()
        zero = self.default_retention == 0 or any(n.get("retention_days") == 0 for n in numbers)
        warnings = routing.check_config(store.list_rules(), store.list_destinations(), zero_retention=zero,
                                        users=store.list_users(), numbers=numbers)
        for warning in warnings:
            log.warning("routing table: %s", warning)
        return warnings

    def normalise(self, number: str) -> str | None:
        from .e164 import normalise

        try:
            return normalise(number, self.config.default_country)
        except ValueError:
            return None

    # ------------------------------------------------------------------ life cycle
    async def start(self) -> None:
        await self._check_spool()
        try:
            for line in self.config.listen:
                await self._start_line(line)
        except BaseException:
            await self.stop()
            raise
        self._heartbeat_task = asyncio.create_task(self._heartbeat_loop(), name="inbound heartbeat")

    def _receiver(self, line: ListenLine, via: str) -> api.Receiver:
        kwargs: dict[str, Any] = {"register": line.register} if line.register else {}
        return api.receive(
            via=via, output_dir=self.spool, formats=self.config.formats, codec="mmr",
            local_id=self.config.local_id, realtime=self.config.realtime, ecm=self.config.ecm,
            max_rate=self.config.max_rate, max_duration=self.config.max_duration,
            on_call=self._make_on_call(line), on_stored=self._on_stored,
            on_done=self._make_on_done(line), **kwargs)

    async def _start_line(self, line: ListenLine) -> None:
        receiver = self._receiver(line, line.url)
        self._fifo[line.url] = collections.deque()
        self.receivers.append(receiver)
        run = asyncio.create_task(receiver.run(), name=f"inbound {line.url}")
        ready = asyncio.create_task(receiver.ready())
        done, _ = await asyncio.wait({ready, run}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        if run in done:        # it ended before listening: the reason is its exception
            ready.cancel()
            exc = run.exception()
            raise OSError(f"cannot answer on {line.url}: {exc}" if exc else f"{line.url} stopped at once")
        if ready not in done:
            ready.cancel()
            run.cancel()
            raise OSError(f"{line.url} is not listening after 15 s")
        address = ready.result()
        self.addresses.append((line.url, address))
        self.bound[line.url] = _shown(line.url, address)
        self.service.announce.append(f"fax {self.bound[line.url]}")
        self._tasks.append(asyncio.create_task(self._supervise(line, receiver, run), name=f"inbound {line.url}"))

    async def _supervise(self, line: ListenLine, receiver: api.Receiver, run: asyncio.Task) -> None:
        """Keep a line answering: a receiver that fails (or ends) while the service runs is
        logged, its calls in progress recovered from the spool, and a new one answers on the
        same address after a growing pause (1 s .. 30 s)."""
        delay = 1.0
        while True:
            try:
                await run
                why = "stopped by itself"
            except asyncio.CancelledError:
                run.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - any failure of a line is logged and the line restarted
                why = f"failed: {type(exc).__name__}: {exc}"
            if self._stopping:
                return
            log.error("inbound line %s %s; answering again in %.0f s", line.url, why, delay)
            await self._forget_calls(line)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 30.0)
            if self._stopping:
                return
            fresh = self._receiver(line, self.bound.get(line.url, line.url))
            self.receivers[self.receivers.index(receiver)] = receiver = fresh
            run = asyncio.create_task(fresh.run(), name=f"inbound {line.url}")

    async def _forget_calls(self, line: ListenLine) -> None:
        """The calls a failed receiver will never report: recovered now from the spool."""
        lost = list(self._fifo.get(line.url, ()))
        self._fifo[line.url] = collections.deque()
        for call_id, state in list(self._by_call_id.items()):      # SIP: the calls of this line
            if state.line is line:
                lost.append(self._by_call_id.pop(call_id))
        for state in lost:
            if state.fax_id is None or self._active.pop(state.fax_id, None) is None:
                continue
            row = await self.service.db(self.service.store.get_fax, state.fax_id)
            if row is None or row["status"] != "receiving":
                continue
            part = state.call.spool
            found = (await asyncio.to_thread(_spool.groups, self.spool)).get(_spool.base_of(part)) if part else None
            if found:
                await self._recover_spool(_spool.base_of(part), found, row)
            else:
                await self._recover_row(row)

    @property
    def stale_after(self) -> float:
        return self.config.stale_after or self.config.max_duration + 120.0

    async def stop(self) -> None:
        """Stop answering; calls in progress finish (up to max_duration), then their faxes
        are stored and routed (the receivers' on_done has run when their task ends)."""
        self._stopping = True
        for receiver in self.receivers:
            receiver.stop()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=self.config.max_duration + 5)
            for task in pending:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._heartbeat_task is not None:
            self._heartbeat_task.cancel()
            await asyncio.gather(self._heartbeat_task, return_exceptions=True)
        self._tasks.clear()
        self.receivers.clear()

    async def _check_spool(self) -> None:
        """The spool folder made (0700) and proven writable, or the service does not start
        (exit 3, as `xmfax receive -o` with a folder it cannot write)."""
        from ..storage import StorageError, check_output_dir
        from .service import EXIT_DATA_DIR, StartError

        def check() -> None:
            try:
                self.spool.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError:
                pass                              # check_output_dir says what is wrong
            check_output_dir(self.spool)

        try:
            await asyncio.to_thread(check)
        except (StorageError, OSError) as exc:
            raise StartError(f"inbound spool folder {self.spool}: {getattr(exc, 'reason', None) or exc.strerror or exc}",
                             EXIT_DATA_DIR) from None

    async def _heartbeat_loop(self) -> None:
        store = self.service.store
        next_sweep = time.monotonic() + min(60.0, self.stale_after / 2)
        while True:
            await asyncio.sleep(self.config.heartbeat)
            try:
                if self._active:
                    await self.service.db(store.heartbeat, list(self._active), self.service.node, time.time())
                if time.monotonic() >= next_sweep:
                    next_sweep = time.monotonic() + min(60.0, self.stale_after / 2)
                    await self.sweep()
            except Exception:   # noqa: BLE001 - a missed heartbeat or sweep is retried next time
                log.exception("inbound heartbeat/sweep failed")

    async def sweep(self, now: float | None = None) -> int:
        """Calls left ``receiving`` by a node that stopped refreshing them for ``stale_after``
        (longer than any call may last: that node is gone): completed from their spool file
        when it is reachable here (a shared data folder), else from what the store has, else
        failed/interrupted. Returns how many were taken over."""
        store, db = self.service.store, self.service.db
        now = time.time() if now is None else now
        taken = 0
        for row in await db(store.stale, now, self.stale_after, ("receiving",)):
            if row["id"] in self._active:
                continue
            who = row.get("claimed_by") or "an unknown node"
            await db(store.add_event, row["id"], "recovered", f"taken over by {self.service.node}: {who} stopped "
                     f"refreshing this call {int(now - (row.get('heartbeat_at') or row['created_at']))} s ago",
                     {"node": self.service.node, "from": row.get("claimed_by")})
            spool = (row.get("metadata") or {}).get("spool")
            suffixes = None
            if spool and os.path.exists(os.path.dirname(spool)):
                suffixes = (await asyncio.to_thread(_spool.groups, Path(spool).parent)).get(_spool.base_of(spool))
            if suffixes:
                await self._recover_spool(_spool.base_of(spool), suffixes, row)
            else:
                await self._recover_row(row)
            taken += 1
        return taken

    # ------------------------------------------------------------------ the hooks
    def _make_on_call(self, line: ListenLine):
        async def on_call(call: api.Call) -> api.Accept | api.Reject:
            state = _CallState(line=line, call=call, started=time.time())
            if call.sip_call_id:
                self._by_call_id[call.sip_call_id] = state
            else:         # one call at a time on such a line: on_done comes in the same order
                self._fifo.setdefault(line.url, collections.deque()).append(state)
            return await self._on_call(state)
        return on_call

    def _make_on_done(self, line: ListenLine):
        async def on_done(result: FaxResult) -> None:
            state = self._take(line, result)
            try:
                await self._on_done(state, line, result)
            except Exception:  # noqa: BLE001 - logged; the spool files stay for the recovery at next start
                log.exception("inbound: storing the fax of %s failed; it stays in the spool for recovery",
                              state.fax_id if state else "an unknown call")
        return on_done

    def _take(self, line: ListenLine, result: FaxResult) -> _CallState | None:
        call_id = (result.sip or {}).get("call_id")
        if call_id:
            return self._by_call_id.pop(call_id, None)
        queue = self._fifo.get(line.url)
        return queue.popleft() if queue else None

    async def _lookup(self, dnis: str | None) -> dict | None:
        """The fax number row of a called number, as dialled or in E.164."""
        if not dnis:
            return None
        store = self.service.store
        for form in sorted(routing.number_forms(dnis, self.normalise)):
            row = await self.service.db(store.get_number, form)
            if row is not None:
                return row
        return routing.find_number(dnis, await self.service.db(store.list_numbers), self.normalise)

    async def _on_call(self, state: _CallState) -> api.Accept | api.Reject:
        call, store, db = state.call, self.service.store, self.service.db
        dnis = call.dnis or state.line.dnis or None
        line = self.bound.get(state.line.url, state.line.url)
        number = await self._lookup(dnis)
        notes = []
        if number is not None:
            csid = number.get("csid") or number["number"]
            problem = csid_problem(csid)
            if problem:
                notes.append(f"CSID {csid!r} cannot be sent ({problem}); answered as {_fallback_csid(csid)!r}")
                csid = _fallback_csid(csid)
        else:
            csid = self.config.local_id
        meta = {"line": line, "remote_address": call.remote_address, "transport": call.transport,
                "node": self.service.node}
        if call.sip_call_id:
            meta["sip_call_id"] = call.sip_call_id
        if number is not None:
            meta["fax_number"] = number["number"]
        state.metadata = meta
        refuse = number is None and self.config.reject_unknown
        fields = dict(number=dnis, dnis=dnis, ani=call.ani, csid=csid, line=line,
                      claimed_by=self.service.node, heartbeat_at=state.started, metadata=meta)
        if number is not None and number.get("retention_days") is not None:
            fields["retention_days"] = number["retention_days"]
        who = f"from {call.ani or 'an unknown caller'} to {dnis or 'no number'} on {line}"
        if refuse:
            state.fax_id = fax_id = await db(store.create_fax, direction="in", status="failed", reason="rejected",
                                             reason_text=f"{dnis or 'no number'} is not a fax number here",
                                             **fields)
            await db(store.complete_fax, fax_id, "failed")
            await db(store.add_event, fax_id, "failed", f"call {who} refused: not a fax number (SIP 404)",
                     {"reason": "rejected", "status": 404})
            return api.Reject(f"{dnis or 'no number'} is not a fax number here", status=404)
        state.fax_id = fax_id = await db(store.create_fax, direction="in", status="receiving", **fields)
        self._active[fax_id] = state
        state.call_row = await db(store.add_call, fax_id, attempt=1, direction="in", line=line,
                                  started_at=state.started, status="receiving", ani=call.ani, dnis=dnis,
                                  node=self.service.node)
        known = f"number {number['number']}" if number is not None else "an unknown number"
        await db(store.add_event, fax_id, "receiving", f"call {who} ({known}) answered as CSID {csid!r}",
                 {"ani": call.ani, "dnis": dnis, "csid": csid, "line": line, "notes": notes,
                  "known_number": number is not None})
        return api.Accept(local_id=csid)

    async def _on_stored(self, call: api.Call, stored: api.PageStored) -> None:
        state = self._state_of(call)
        if state is None or state.fax_id is None:
            return
        store, db = self.service.store, self.service.db
        if call.spool and state.metadata.get("spool") != call.spool:
            state.metadata["spool"] = call.spool
            await db(store.update_fax, state.fax_id, metadata=state.metadata, heartbeat_at=time.time(),
                     remote_id=call.remote_id)         # the sender's TSI, kept if the call is cut off
        if stored.error is None:
            state.pages += 1
            await db(store.add_event, state.fax_id, "page", f"page {stored.number} stored ({stored.response})",
                     {"page": stored.number, "response": stored.response})
        else:
            await db(store.add_event, state.fax_id, "page", f"page {stored.number} could not be stored: {stored.error}",
                     {"page": stored.number, "error": stored.error})
        await db(store.heartbeat, [state.fax_id], self.service.node, time.time())

    def _state_of(self, call: api.Call) -> _CallState | None:
        if call.sip_call_id:
            return self._by_call_id.get(call.sip_call_id)
        return next((s for s in self._active.values() if s.call is call), None)

    async def _on_done(self, state: _CallState | None, line: ListenLine, result: FaxResult) -> None:
        store, db = self.service.store, self.service.db
        if state is None or state.fax_id is None:
            # on_call never made a row (it failed or timed out): the call still gets one
            if not result.files and result.reason == "rejected":
                log.warning("inbound: a call on %s was refused before it had a row: %s", line.url,
                            result.reason_text)
            state = state or _CallState(line=line, call=api.Call(via=line.url, transport=result.transport),
                                        started=time.time())
            state.fax_id = await db(store.create_fax, direction="in", status="receiving", number=result.dnis,
                                    dnis=result.dnis, ani=result.ani, csid=result.local_id, line=line.url,
                                    claimed_by=self.service.node, metadata={"line": line.url,
                                                                            "node": self.service.node})
        fax_id = state.fax_id
        fax = await db(store.get_fax, fax_id)
        if fax is not None and fax["status"] != "receiving":     # refused in on_call: the record only
            if state.call_row is None:
                await db(store.add_call, fax_id, attempt=1, direction="in", line=line.url, started_at=state.started,
                         ended_at=time.time(), status="failure", reason=result.reason, pages=0, ani=result.ani,
                         dnis=result.dnis, node=self.service.node)
            return
        try:
            await self._store_files(fax_id, result.files, record=result)
            await asyncio.to_thread(_spool.remove, result.files, state.call.spool)
            await self.complete(fax_id, result, call_row=state.call_row)
        finally:
            self._active.pop(fax_id, None)
        await self.route(fax_id)

    # ------------------------------------------------------------------ shared steps
    async def _store_files(self, fax_id: str, files: list[str], *, record: FaxResult | None) -> None:
        """The fax's files into the store, encrypted (put_file replaces the same kind: a
        recovery may run this again)."""
        store, db = self.service.store, self.service.db
        for path in files:
            kind = "pdf" if path.endswith(".pdf") else "tiff" if path.endswith((".tif", ".tif.part")) else None
            if kind is not None and os.path.exists(path):
                await db(store.put_file, fax_id, kind, Path(path), name="")
        if record is not None:
            await db(store.put_file, fax_id, "record", record.to_json().encode(), name="")

    async def complete(self, fax_id: str, result: FaxResult, *, call_row: int | None = None,
                       recovered: str = "") -> None:
        """Give the fax its final status from ``result`` (its pages, CSIDs, reason) with the
        ``call`` and ``received``/``failed`` events and its call record."""
        store, db = self.service.store, self.service.db
        pages = len(result.pages)
        status = "received" if pages else "failed"
        reason = result.reason
        now = time.time()
        fields = dict(reason=reason, reason_text=result.reason_text or "", pages=pages,
                      remote_id=result.remote_id or None, claimed_by=self.service.node, heartbeat_at=None)
        changed = await db(store.complete_fax, fax_id, status, expect=("receiving",), **fields)
        if not changed:
            return
        summary = {"status": result.status, "reason": reason, "pages": pages, "remote_id": result.remote_id,
                   "local_id": result.local_id, "rate": result.rate, "modulation": result.modulation,
                   "compression": result.compression, "resolution": result.resolution, "ecm": result.ecm,
                   "transport": result.transport, "duration": result.duration,
                   "started_at": result.started_at, "ended_at": result.ended_at}
        if not recovered:
            await db(store.add_event, fax_id, "call", result.summary(), summary)
        if status == "received":
            what = f"{pages} page(s) received" + (f" from {result.remote_id}" if result.remote_id else "")
            if reason != "ok":
                what += f" (partial: {reason}{': ' + result.reason_text if result.reason_text else ''})"
            await db(store.add_event, fax_id, "received", what, {"pages": pages, "reason": reason})
        else:
            await db(store.add_event, fax_id, "failed",
                     f"no page received: {reason}{': ' + result.reason_text if result.reason_text else ''}",
                     {"pages": 0, "reason": reason})
        cdr = dict(ended_at=now, duration=result.duration, status=result.status, reason=reason, pages=pages,
                   rate=result.rate or None, remote_id=result.remote_id or None)
        if call_row is None:      # after a restart: the call record on_call opened, if any
            open_calls = [c for c in await db(store.calls, fax_id=fax_id) if c.get("status") == "receiving"]
            call_row = open_calls[-1]["id"] if open_calls else None
        if call_row is not None:
            await db(store.update_call, call_row, **cdr)
        else:
            fax = await db(store.get_fax, fax_id)
            await db(store.add_call, fax_id, attempt=1, direction="in", line=fax.get("line"),
                     started_at=fax.get("created_at"), ani=fax.get("ani"), dnis=fax.get("dnis"),
                     node=self.service.node, **cdr)

    async def route(self, fax_id: str) -> list[str]:
        """Run the routing table for a completed fax, write its trace (a ``routing`` event)
        and hand the destinations to the notifier. Returns the destination labels."""
        from . import notify

        store, db = self.service.store, self.service.db
        fax = await db(store.get_fax, fax_id)
        if fax is None or fax.get("notify_status") not in (None, "none"):
            return []
        rules, numbers, users, dests = await db(_directory, store)
        result = await asyncio.to_thread(routing.route, fax, rules, numbers, users, dests,
                                         normalise=self.normalise)
        empty = not fax.get("pages")
        if empty:      # a call that brought no page is in the fax list and the CDRs, not in anyone's inbox
            result.trace.append("no page received: nothing to deliver")
        await db(store.add_event, fax_id, "routing", "\n".join(result.trace),
                 {"trace": result.trace, "destinations": [] if empty else result.names, "matched": result.matched,
                  "errors": result.errors})
        if empty:
            if await db(store.set_notify_status, fax_id, "delivered", expect=("none",),
                        event=("delivered", "no page received: no notification to deliver", {"notifications": 0})):
                if notify.zero_retention(self.service, fax):
                    await db(store.purge_fax, fax_id, "zero retention: no page received")
        else:
            await notify.enqueue(self.service, fax_id, result.destinations)
        await db(store.update_fax, fax_id, claimed_by=None)
        return result.names

    # ------------------------------------------------------------------ crash recovery
    async def recover(self) -> dict:
        """What a killed node left, run before the lines answer: the spool's files become
        faxes (their whole pages), rows left ``receiving`` are completed from them or marked
        failed/interrupted, completed faxes never routed are routed. Returns counts."""
        store, db, node = self.service.store, self.service.db, self.service.node
        counts = {"spool": 0, "interrupted": 0, "routed": 0}
        await self._check_spool()
        groups = await asyncio.to_thread(_spool.groups, self.spool)
        rows = [r for r in await db(store.list_faxes, direction="in", status="receiving", limit=1_000_000)
                if r.get("claimed_by") == node]
        by_base = {_spool.base_of(r["metadata"]["spool"]): r for r in rows if r["metadata"].get("spool")}
        handled: set[str] = set()
        for base, suffixes in sorted(groups.items()):
            row = by_base.get(base)
            if row is None:     # the node died before the row named its file: the closest call before it
                row = _spool.closest(base, [r for r in rows if not r["metadata"].get("spool") and r["id"] not in handled])
            if row is None:     # another node gave the call up while this one was away: reopened
                row = await self._reopen(base + ".tif.part")
            handled.add(await self._recover_spool(base, suffixes, row))
            counts["spool"] += 1
        for row in rows:
            if row["id"] in handled:
                continue
            await self._recover_row(row)
            counts["interrupted"] += 1
        counts["taken_over"] = await self.sweep()
        done = await db(store.list_faxes, direction="in", status=("received", "failed"), limit=1_000_000)
        for row in done:
            if row.get("claimed_by") == node and row.get("notify_status") in (None, "none"):
                await db(store.add_event, row["id"], "recovered", "routed after a restart (the node stopped "
                         "between receipt and routing)", {"node": node})
                await self.route(row["id"])
                counts["routed"] += 1
        if any(counts.values()):
            log.warning("inbound recovery: %s", counts)
        return counts

    async def _reopen(self, part: str) -> dict | None:
        """The row a node that took this call over (``sweep``) closed as failed/interrupted
        while this node, and its spool, were away: back to ``receiving`` so its pages join
        it instead of making a second fax of one call."""
        store, db = self.service.store, self.service.db
        for row in await db(store.list_faxes, direction="in", status="failed", limit=1_000_000):
            if row["metadata"].get("spool") != part or row.get("reason") != "interrupted" or row.get("purged_at"):
                continue
            if await db(store.set_status, row["id"], "receiving", expect=("failed",), claimed_by=self.service.node,
                        completed_at=None, expires_at=None):
                await db(store.set_notify_status, row["id"], "none")
                await db(store.add_event, row["id"], "recovered", f"{self.service.node} is back with the pages of "
                         "this call: it is completed from them", {"node": self.service.node})
                return await db(store.get_fax, row["id"])
        return None

    async def _recover_spool(self, base: str, suffixes: set[str], row: dict | None) -> str:
        """One fax's spool files -> the store; the row completed and routed. Returns its id."""
        store, db, node = self.service.store, self.service.db, self.service.node
        part = base + ".tif.part"
        if row is None:
            created = _spool.stamp_time(base) or time.time()
            fax_id = await db(store.create_fax, direction="in", status="receiving", claimed_by=node,
                              created_at=created, metadata={"spool": part, "node": node, "recovered": True})
            await db(store.add_event, fax_id, "recovered", f"found in the spool without its record "
                     f"({os.path.basename(base)}): kept as a new fax", {"spool": os.path.basename(base)})
        else:
            fax_id = row["id"]
        result = None
        if ".json" in suffixes and ".tif.part" not in suffixes:       # the call had ended, on_done had not
            try:
                text = await asyncio.to_thread(Path(base + ".json").read_text)
                result = FaxResult.from_json(text)
            except (OSError, ValueError, TypeError) as exc:
                log.warning("inbound recovery: record %s unreadable: %s", base + ".json", exc)
        if result is not None:
            files = [base + s for s in (".tif", ".pdf") if s in suffixes]
            await self._store_files(fax_id, files, record=result)
            note = "the call had ended; its fax is stored after the restart"
        else:
            source = base + ".tif" if ".tif" in suffixes else part
            pages = await asyncio.to_thread(_spool.whole_pages, Path(source)) if os.path.exists(source) else []
            if pages:
                tiff, pdf = await asyncio.to_thread(_spool.encode, pages, "pdf" in self.config.formats)
                await db(store.put_file, fax_id, "tiff", tiff, name="")
                if pdf is not None:
                    await db(store.put_file, fax_id, "pdf", pdf, name="")
            result = _spool.interrupted(len(pages), row)
            note = (f"the node stopped during the call: {len(pages)} whole page(s) kept from the spool"
                    if pages else "the node stopped during the call before any page was stored")
        await db(store.add_event, fax_id, "recovered", note, {"pages": len(result.pages), "node": node})
        await asyncio.to_thread(_spool.remove, [base + s for s in suffixes], part)
        await self.complete(fax_id, result, recovered=note)
        await self.route(fax_id)
        return fax_id

    async def _recover_row(self, row: dict) -> None:
        """A row left ``receiving`` without spool files: completed from what the store has
        (the node stopped between storing the files and completing), else failed/interrupted."""
        store, db = self.service.store, self.service.db
        fax_id = row["id"]
        kinds = {f["kind"] for f in await db(store.files, fax_id)}
        result = None
        if "record" in kinds:
            try:
                result = FaxResult.from_json((await db(store.read_file, fax_id, "record")).decode())
            except Exception as exc:  # noqa: BLE001 - a record that cannot be read: counted from the TIFF
                log.warning("inbound recovery: record of %s unreadable: %s", fax_id, exc)
        if result is None and "tiff" in kinds:
            data = await db(store.read_file, fax_id, "tiff")
            count = await asyncio.to_thread(_spool.count_pages, data)
            result = _spool.interrupted(count, row)
        if result is None:
            result = _spool.interrupted(0, row)
        note = ("the node stopped after storing the fax: completed after the restart" if "record" in kinds else
                f"the node stopped during the call: {len(result.pages)} page(s) kept" if result.pages else
                "the node stopped during the call before any page was stored")
        await db(store.add_event, fax_id, "interrupted" if not result.pages else "recovered", note,
                 {"pages": len(result.pages), "node": self.service.node})
        await self.complete(fax_id, result, recovered=note)
        await self.route(fax_id)


def _directory(store: Any) -> tuple[list, list, list, list]:
    return store.list_rules(), store.list_numbers(), store.list_users(), store.list_destinations()


def _shown(url: str, address: Any) -> str:
    """The URL with the port actually bound (port 0 asked)."""
    if not address:
        return url
    host, port = address[0], address[1]
    m = re.match(r"(t38|rtp|sip)://([^/?;#]*)", url)
    if not m:
        return url
    shown_host = f"[{host}]" if ":" in host else host
    return f"{m.group(1)}://{shown_host}:{port}{url[m.end():]}"
