"""Sending and receiving faxes: the API applications, portals and gateways use.

    result = await xmfax.send(["letter.pdf"], via="t38://203.0.113.5:6000", local_id="+1 555 0100")
    result = xmfax.send_sync(["letter.pdf"], via="class1:/dev/ttyUSB0", to="5551234")

    receiver = xmfax.receive(via="t38://0.0.0.0:6000", output_dir="inbox",
                             on_call=route, on_page=preview, on_done=store)
    await receiver            # runs until receiver.stop()

    result = await xmfax.send(["letter.pdf"], via="sip:+15550100@pbx.example.net;transport=tcp")
    receiver = xmfax.receive(via="sip://0.0.0.0:5060", register="sip:fax@pbx.example.net", ...)

This module is where the sans-IO core meets the drivers: it loads documents, builds a
T.30 :class:`~xmfax.t30.Session`, hands it to the driver ``via`` names, turns what
happened into a :class:`~xmfax.record.FaxResult`, and writes received faxes to disk.
It is the one module of ``xmfax`` that uses asyncio (the protocol engines never do),
with its SIP half, ``xmfax/_sip_calls.py`` (the Class 1 half, ``xmfax/_class1_calls.py``,
runs the blocking modem driver in worker threads).

Callbacks (``on_event``, ``on_page``, ``on_done``) may be plain functions or
coroutines; they run off the line's path (plain functions in a worker thread), so a
slow callback never stalls a call. ``on_call`` is the exception: the call waits for
its decision (bounded by ``call_decision_timeout``).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as _dt
import inspect
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable, Iterable, Sequence

from . import _class1_calls
from . import record as _record
from . import storage as _storage
from .errors import DocumentError, DriverError, DriverTimeoutError, FaxError
from .page import Page
from .record import FaxResult
from .t30 import Session, T30Config
from .t30 import events as t30_events

__all__ = [
    "send", "send_sync", "receive", "Receiver", "Call", "Accept", "Reject",
    "CallStarted", "Retrying", "PageStored", "FaxResult", "load_documents", "parse_via",
]

# Reasons worth another attempt when ``retries`` > 0: the line or the far end, not the document.
RETRYABLE = {"busy", "no_answer", "no_dialtone", "no_carrier", "driver_error", "no_dis",
             "line_lost", "no_response", "no_response_to_dcs", "training_failed",
             "no_response_to_page", "unexpected_dcn", "timeout", "unavailable"}


# --------------------------------------------------------------------------- API events
@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call is being placed or has been answered (before any T.30 frame)."""

    time: float
    direction: str            # "send" | "receive"
    via: str
    attempt: int = 1


@dataclass(frozen=True, slots=True)
class Retrying:
    """An attempt failed with a retryable reason; the next starts after ``delay`` s."""

    time: float
    attempt: int
    reason: str
    delay: float


@dataclass(frozen=True, slots=True)
class PageStored:
    """A received page is on disk (``error`` None) and ``response`` (MCF/RTP) goes to the
    far end now; or it could not be stored (``error`` says why) and the call ends.
    Only with ``output_dir``; ``time`` is the session clock."""

    time: float
    number: int
    response: str
    error: str | None = None


# --------------------------------------------------------------------------- on_call
@dataclass
class Call:
    """An incoming call, as ``on_call`` sees it. Fields the transport does not know are None."""

    via: str
    transport: str
    ani: str | None = None               # calling number (caller ID)
    dnis: str | None = None              # called number
    remote_address: str | None = None    # e.g. "198.51.100.7:6000" for T.38
    info: dict = field(default_factory=dict)
    headers: tuple[tuple[str, str], ...] = ()   # SIP: the INVITE's headers (credentials redacted)
    sip_call_id: str | None = None       # SIP: the Call-ID
    spool: str | None = None             # with output_dir: the ``.tif.part`` the fax grows in (set on answer)
    remote_id: str | None = None         # the far end's TSI once heard (set before on_stored is called)


@dataclass(frozen=True, slots=True)
class Accept:
    """Answer the call, presenting ``local_id`` as CSID (None: the receiver's default)."""

    local_id: str | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """Refuse the call. Over SIP the INVITE is answered ``status``: 486 busy, 603 decline,
    404 unknown number (any 4xx-6xx; the caller's record says busy/declined/not_found)."""

    reason: str = ""
    status: int = 603

    def __post_init__(self) -> None:
        if type(self.status) is not int or not 400 <= self.status <= 699:
            raise ValueError(f"Reject status {self.status!r}: a SIP final status 400..699 (486, 603, 404 ...)")


def _decision(value: Any) -> Accept | Reject:
    """on_call may return Accept/Reject, True/None (accept), False (reject) or a CSID string."""
    if isinstance(value, (Accept, Reject)):
        return value
    if value is None or value is True:
        return Accept()
    if value is False:
        return Reject("rejected by on_call")
    if isinstance(value, str):
        return Accept(local_id=value)
    raise TypeError(f"on_call returned {value!r}; return Accept(...), Reject(...), a bool or a CSID string")


# --------------------------------------------------------------------------- plumbing
class _Dispatcher:
    """Delivers callbacks off the line's path, in order, one queue per call."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.queue: asyncio.Queue = asyncio.Queue()
        self.task = loop.create_task(self._run())

    def put(self, callback: Callable | None, *args: Any) -> None:
        if callback is None:
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            self.queue.put_nowait((callback, args))
        else:  # from a driver thread
            self.loop.call_soon_threadsafe(self.queue.put_nowait, (callback, args))

    async def _run(self) -> None:
        while True:
            callback, args = await self.queue.get()
            if callback is None:
                return
            try:
                if inspect.iscoroutinefunction(callback):
                    await callback(*args)
                else:
                    value = await asyncio.to_thread(callback, *args)
                    if inspect.isawaitable(value):
                        await value
            except Exception as exc:  # a failing callback never ends a call
                print(f"xmfax: callback {getattr(callback, '__name__', callback)!r} failed: {exc!r}",
                      file=sys.stderr)

    async def close(self) -> None:
        self.queue.put_nowait((None, ()))
        await self.task


class _Observed:
    """Wraps a Session: every event it produces is logged and handed to ``hook`` at
    once, whichever driver pumps it; the driver sees the session unchanged.

    Received pages are not kept: the log and the events the driver collects carry
    ``PageReceived`` without its image (only ``hook`` sees the page). With ``store``
    (``store(event) -> concurrent.futures.Future``, the page written in a worker
    thread) the session must run with ``confirm_storage``: each page is handed to
    ``store`` and, once its future is done, confirmed with ``Session.page_stored``
    (its error, if any, ends the call: DCN, Reason.STORAGE). The drivers call in
    only on events and timers, so while a page is being stored ``next_timer``
    answers a deadline ``STORE_POLL`` s ahead and ``handle_timer`` applies what
    has completed (whichever thread pumps the session: the futures are thread-safe).
    """

    STORE_POLL = 0.02

    def __init__(self, session: Session, hook: Callable[[Any], None],
                 store: Callable[[Any], Any] | None = None):
        self._s = session
        self._hook = hook
        self._store = store
        self._storing: list[tuple[Any, Any]] = []    # (PageReceived, future), in page order
        self._now = 0.0
        self.log: list[Any] = []
        self._pending: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._s, name)

    def _drain(self) -> None:
        for ev in self._s.events():
            if isinstance(ev, t30_events.PageReceived):
                if self._store is not None:
                    self._storing.append((ev, self._store(ev)))
                self._hook(ev)
                ev = _replace(ev, page=None)        # nobody else holds the image
            else:
                self._hook(ev)
            self.log.append(ev)
            self._pending.append(ev)

    def _confirm(self, now: float) -> None:
        """Tell the session about every page whose storing has finished, in order."""
        self._now = now
        while self._storing and self._storing[0][1].done():
            page, future = self._storing.pop(0)
            exc = future.exception()
            error = None if exc is None else (getattr(exc, "strerror", None) or str(exc) or repr(exc))
            # every delivered page is reported, also one the session is not holding (an ECM
            # page marked ERR): a failure to store it still ends the call (Reason.STORAGE).
            # After the call (or its storage timer) ended there is nobody to tell; a store
            # that failed then still fails the record (storage.FaxFiles.close)
            if not self._s.done:
                self._s.page_stored(page.number, now, error)
            self._hook(PageStored(now, page.number, page.response, error))
        self._drain()

    def start(self, now: float) -> None:
        self._now = now
        self._s.start(now)
        self._drain()

    def receive(self, event: Any, now: float) -> None:
        self._confirm(now)
        self._s.receive(event, now)
        self._drain()

    def next_timer(self) -> float | None:
        t = self._s.next_timer()
        if self._storing:
            soon = self._now + self.STORE_POLL
            t = soon if t is None else min(t, soon)
        return t

    def handle_timer(self, now: float) -> None:
        self._confirm(now)
        t = self._s.next_timer()
        if t is not None and now >= t:
            self._s.handle_timer(now)
        self._drain()

    def data_to_send(self) -> list:
        out = self._s.data_to_send()
        self._drain()
        return out

    def events(self) -> list:
        self._drain()
        out, self._pending = self._pending, []
        return out


def parse_via(via: str) -> tuple[str, str]:
    """``"t38://..."`` -> ("t38", via); ``"class1:/dev/ttyS0"`` -> ("class1", "/dev/ttyS0");
    ``"sip:NUMBER@HOST"`` (to call) and ``"sip://HOST:PORT"`` (to listen) -> ("sip", via);
    ``"rtp://..."`` (audio fax over G.711 RTP) -> ("rtp", via)."""
    if via.startswith("t38://"):
        return "t38", via
    if via.startswith("rtp://"):
        return "rtp", via
    if via.startswith("sip:"):
        return "sip", via
    if via.startswith("class1:"):
        port = via[len("class1:"):]
        if not port:
            raise ValueError(f"no port in {via!r}: class1:/dev/ttyUSB0, class1:rfc2217://host:port ...")
        return "class1", port
    raise ValueError(f"unknown transport in {via!r}: use t38://HOST:PORT, rtp://HOST:PORT, sip:NUMBER@HOST, "
                     "sip://HOST:PORT or class1:PORT")


def load_documents(documents: Iterable[Any], *, resolution: str = "fine", paper: str = "auto",
                   header: Any = None, cover: Any = None, local_id: str = "",
                   when: _dt.datetime | None = None, password: str | None = None,
                   tolerant: bool = False) -> list[Page]:
    """Documents (paths, bytes, file objects, Page objects or lists of them) as fax pages,
    with an optional cover sheet first and a header line on every page. ``password``
    opens encrypted PDFs; ``tolerant`` sends damaged pages as far as they decode
    (otherwise a damaged page is a DocumentError)."""
    from . import document

    pages: list[Page] = []
    for doc in ([documents] if isinstance(documents, (str, bytes, os.PathLike, Page)) else documents):
        if isinstance(doc, Page):
            pages.append(doc)
        elif isinstance(doc, (list, tuple)) and all(isinstance(p, Page) for p in doc):
            pages.extend(doc)
        else:
            pages.extend(document.load(doc, resolution=resolution, paper=paper, start_count=len(pages),
                                       password=password, tolerant=tolerant))
    if not pages:
        raise DocumentError("no pages to send")
    when = when or _dt.datetime.now().astimezone()
    if cover is not None:
        if isinstance(cover, dict):
            cover = document.CoverSheet(**cover)
        if cover.pages is None or cover.date is None:
            cover = _replace(cover, pages=cover.pages or len(pages) + 1, date=cover.date or when)
        paper_name = "a4"
        pages.insert(0, document.render_cover(cover, pages[0].resolution, paper_name))
    if header:
        if header is True:
            header = document.HeaderLine(ident=local_id)
        elif isinstance(header, str):
            header = document.HeaderLine(ident=local_id, template=header)
        pages = document.add_header(pages, header, when)
    return pages


def _replace(obj: Any, **changes: Any) -> Any:
    import dataclasses
    return dataclasses.replace(obj, **changes)


async def _call_hook(hook: Callable | None, *args: Any, timeout: float | None = None) -> Any:
    if hook is None:
        return None
    # asyncio.timeout rather than wait_for, which on Python 3.11 can drop a cancellation
    async with asyncio.timeout(timeout):
        if inspect.iscoroutinefunction(hook):
            return await hook(*args)
        value = await asyncio.to_thread(hook, *args)
        if inspect.isawaitable(value):
            value = await value
        return value


# --------------------------------------------------------------------------- transports
async def _run_t38(session: Any, via: str, *, answering: bool, realtime: bool, t38: Any,
                   local_override: tuple[str, int] | None = None,
                   remote_override: tuple[str, int] | None = None, on_ready=None,
                   max_duration: float, sock: Any = None) -> Any:
    from .drivers import t38_udp
    from .t38.config import T38Config

    local, remote = t38_udp.parse_t38_url(via, listen=answering)
    if local_override is not None:
        local = local_override
    if remote_override is not None:
        remote = remote_override
    config = t38 if t38 is not None else T38Config()
    return await t38_udp.run_call(session, local=local, remote=remote, config=config, paced=realtime,
                                  max_duration=max_duration, on_ready=on_ready, sock=sock)


async def _run_rtp(session: Any, via: str, *, answering: bool, local_override: tuple[str, int] | None = None,
                   remote_override: tuple[str, int] | None = None, max_duration: float, sock: Any = None) -> Any:
    from .drivers import audio_rtp, rtp

    local, remote, config = rtp.parse_rtp_url(via, listen=answering)
    return await audio_rtp.run_audio_call(session, local_override or local, remote_override or remote, config,
                                          max_duration=max_duration, sock=sock)


# --------------------------------------------------------------------------- send
async def send(documents: Any, *, via: str, to: str | None = None, local_id: str | None = None,
               header: Any = None, cover: Any = None, resolution: str = "fine", paper: str = "auto",
               ecm: bool = True, max_rate: int = 14400, retries: int = 0, retry_delay: float = 60.0,
               on_event: Callable | None = None, realtime: bool = True, t38: Any = None,
               config: T30Config | None = None, max_duration: float = 1800.0,
               class1: Any = None, password: str | None = None, tolerant: bool = False,
               sip: dict | None = None, credentials: Any = None) -> FaxResult:
    """Send ``documents`` (paths, bytes, file objects or Pages) as one fax; return its record.

    ``via``: ``"t38://HOST:PORT[?local=HOST:PORT]"``, ``"rtp://HOST:PORT[?local=HOST:PORT][&law=pcma]"``
    (audio fax over G.711 RTP), ``"class1:PORT"`` (``to`` is the
    number to dial) or ``"sip:NUMBER@HOST[:PORT][;transport=tcp]"`` (T.38 over a SIP
    call: ``sip`` holds UAConfig options such as ``{"offer": "t38"}``; ``credentials``
    default to :func:`xmfax.sip.auth.load_credentials`, the environment). ``retries``: further attempts after a retryable failure (busy, no
    answer, line lost, training ...), ``retry_delay`` seconds apart. ``realtime=False``
    sends T.38 unpaced (trusted links and tests). ``config`` overrides the whole
    T30Config (then ``local_id``/``ecm``/``max_rate`` are ignored). Failures of the call
    are results (``status="failure"`` with a reason), not exceptions; a document that
    cannot be read raises :class:`~xmfax.errors.DocumentError`. ``password`` opens
    encrypted PDFs; ``tolerant=True`` sends damaged documents as far as they
    decode. Documents are rendered in a worker thread (the event loop runs on).
    """
    transport, address = parse_via(via)
    if transport == "class1" and not to:
        raise ValueError("sending through a Class 1 modem needs a number to dial: to=...")
    if transport == "sip":
        from .drivers import sip as sip_driver
        from .sip.auth import load_credentials

        if via.startswith("sip://"):
            raise ValueError(f"{via!r} is a listening address; to call: sip:NUMBER@HOST[:PORT]")
        sip_driver.parse_sip_target(via)
        sip = sip_driver.ua_options(sip)
        credentials = credentials if credentials is not None else load_credentials()
    if transport == "rtp":
        from .drivers import rtp as rtp_driver
        rtp_driver.parse_rtp_url(via)                # a bad rtp:// URL: ValueError now, not after rendering
    local_id = local_id or ""
    pages = await asyncio.to_thread(load_documents, documents, resolution=resolution, paper=paper,
                                    header=header, cover=cover, local_id=local_id, password=password,
                                    tolerant=tolerant)
    if config is None:
        config = T30Config(local_id=local_id, ecm=ecm, max_rate=max_rate)
    loop = asyncio.get_running_loop()
    dispatcher = _Dispatcher(loop)
    result: FaxResult | None = None
    try:
        for attempt in range(1, retries + 2):
            dispatcher.put(on_event, CallStarted(0.0, "send", via, attempt))
            if transport == "sip":
                from . import _sip_calls

                result = await _sip_calls.send(pages, via, config, dispatcher, on_event, realtime, t38,
                                               max_duration, sip, credentials)
            else:
                result = await _send_once(pages, via, transport, address, to, config, dispatcher, on_event,
                                          realtime, t38, max_duration, class1)
            if result.ok or attempt > retries or result.reason not in RETRYABLE:
                break
            dispatcher.put(on_event, Retrying(0.0, attempt, result.reason, retry_delay))
            await asyncio.sleep(retry_delay)
    finally:
        await dispatcher.close()
    assert result is not None
    return result


async def _send_once(pages: list[Page], via: str, transport: str, address: str, to: str | None,
                     config: T30Config, dispatcher: _Dispatcher, on_event: Callable | None,
                     realtime: bool, t38: Any, max_duration: float, class1: Any) -> FaxResult:
    if transport == "t38" and t38 is not None:
        config = t38.limit_t30(config)      # never offer a rate above the agreed T38MaxBitRate
    if transport == "rtp":
        from .drivers import audio_rtp
        config = audio_rtp.limit_t30(config)    # only the modems xmfax.audio has
    session = _Observed(Session(config, calling=True, pages=pages, now=0.0),
                        lambda ev: dispatcher.put(on_event, ev))
    wall_start = time.time()
    kwargs = dict(local_id=config.local_id, transport=transport, address=via)
    try:
        if transport == "t38":
            t30 = await _run_t38(session, via, answering=False, realtime=realtime, t38=t38,
                                 max_duration=max_duration)
        elif transport == "rtp":
            t30 = await _run_rtp(session, via, answering=False, max_duration=max_duration)
        else:
            t30 = await asyncio.to_thread(_class1_calls.send, address, to, session, class1, max_duration)
    except _class1_calls.DialFailed as exc:
        return _record.call_failure("send", exc.reason, exc.detail, started_at=_record.utc_iso(wall_start),
                                    ended_at=_record.utc_iso(time.time()), dnis=to, **kwargs)
    except (DriverError, OSError) as exc:
        return _record.call_failure("send", _failure_reason(exc, transport), str(exc), started_at=_record.utc_iso(wall_start),
                                    ended_at=_record.utc_iso(time.time()), dnis=to, events=[
                                        _record.event_to_dict(e) for e in session.log], **kwargs)
    return _record.from_t30(t30, session.log, direction="send", t0=t30.started, wall_start=wall_start,
                            wall_end=time.time(), dnis=to, **kwargs)


def _failure_reason(exc: BaseException, transport: str) -> str:
    """The record's reason for a call the driver ended with ``exc``: over T.38 a
    DriverTimeoutError is the call's ``max_duration`` running out (and over RTP audio)."""
    if transport in ("t38", "rtp") and isinstance(exc, DriverTimeoutError):
        return "timeout"
    return "driver_error"


def send_sync(documents: Any, **kwargs: Any) -> FaxResult:
    """:func:`send` for scripts without an event loop."""
    return asyncio.run(send(documents, **kwargs))


# --------------------------------------------------------------------------- receive
class Receiver:
    """Answers calls on one line until :meth:`stop` (or after one call with ``once``).

    Each fax is written to ``output_dir`` (if given) as it arrives (see
    :mod:`xmfax.storage`): the TIFF Class F grows page by page in a ``.part`` file, each
    page written and fsync'd in a worker thread before the far end is told MCF; a page
    that cannot be stored ends the call (DCN, reason ``storage``). When the call ends the
    file gets its name ``fax-<date>-<time>-<random>.tif`` (never replacing a file), so a
    call that fails during page 5 leaves pages 1-4 on disk; the JSON record is written
    beside it (``<name>.json``, listing exactly the pages the file holds), and a PDF too
    when ``formats`` has "pdf". Pages are not kept in memory. ``results`` keeps every
    call's :class:`FaxResult`.

    Over SIP (``via="sip://HOST:PORT[;transport=tcp]"``) one receiver serves many calls at
    once, each in its own task; ``register`` ("sip:user@registrar") registers there (and
    keeps the registration fresh), ``sip`` holds UAConfig options, ``credentials`` default
    to :func:`xmfax.sip.auth.load_credentials`. :meth:`stop` answers new calls 503, lets the
    calls in progress finish, and unregisters.
    """

    def __init__(self, *, via: str, on_call: Callable | None = None, on_page: Callable | None = None,
                 on_done: Callable | None = None, on_event: Callable | None = None,
                 output_dir: str | os.PathLike | None = None, formats: Sequence[str] = ("tiff",),
                 codec: str = "mmr", local_id: str = "", ecm: bool = True, max_rate: int = 14400,
                 config: T30Config | None = None, realtime: bool = True, t38: Any = None,
                 once: bool = False, rings: int = 1, class1: Any = None,
                 call_decision_timeout: float = 10.0, max_duration: float = 1800.0,
                 register: str | None = None, sip: dict | None = None, credentials: Any = None,
                 on_stored: Callable | None = None):
        self.transport, self.address = parse_via(via)
        self.sip_options: dict = {}
        self.credentials = credentials
        if self.transport == "sip":
            from .drivers import sip as sip_driver
            from .sip.auth import load_credentials

            sip_driver.parse_sip_listen(via)         # "sip://HOST:PORT": ValueError now, not later
            self.sip_options = sip_driver.ua_options(sip)
            if register:
                sip_driver.parse_sip_target(register)
                self.sip_options["registrar"] = register
            if credentials is None:
                self.credentials = load_credentials()
        elif self.transport == "rtp":
            from .drivers import rtp as rtp_driver
            rtp_driver.parse_rtp_url(via, listen=True)     # ValueError now, not later
        if self.transport != "sip" and (register or sip):
            raise ValueError(f"register= and sip= are for sip:// receivers, not {via!r}")
        for f in formats:
            if f not in ("tiff", "pdf"):
                raise ValueError(f"output format {f!r}: tiff or pdf")
        self.via = via
        self.on_call, self.on_page, self.on_done, self.on_event = on_call, on_page, on_done, on_event
        self.on_stored = on_stored       # on_stored(call, PageStored): a page is on disk (or failed)
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.formats = tuple(formats)
        self.codec = codec
        self.config = config or T30Config(local_id=local_id, ecm=ecm, max_rate=max_rate)
        self.realtime, self.t38, self.once, self.rings, self.class1 = realtime, t38, once, rings, class1
        self.call_decision_timeout = call_decision_timeout
        self.max_duration = max_duration
        self.results: list[FaxResult] = []
        self.local_address: tuple[str, int] | None = None
        self._stop = asyncio.Event()
        self._ready = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rejected: dict[tuple[str, int], float] = {}    # T.38 callers turned away, last heard
        self._held_sock: Any = None          # T.38: the socket a caller was heard on, until the call takes it
        self._task: asyncio.Task | None = None

    # lifecycle
    def stop(self) -> None:
        """Stop after the call in progress (if any) ends; no new call is answered (over SIP:
        new INVITEs get 503, every call in progress finishes, then unregister)."""
        self._stop.set()

    async def ready(self) -> tuple[str, int] | None:
        """Wait until the line listens; the bound (host, port) for T.38 and SIP (over SIP
        once registered, when ``register`` is given)."""
        await self._ready.wait()
        return self.local_address

    def __await__(self):
        return self.run().__await__()

    async def run(self) -> list[FaxResult]:
        """Answer calls until stopped; the results. Raises StorageError at once if
        ``output_dir`` is not a folder we can write in (a probe file is written)."""
        if self.output_dir is not None:
            await asyncio.to_thread(_storage.check_output_dir, self.output_dir)
        loop = self._loop = asyncio.get_running_loop()
        dispatcher = _Dispatcher(loop)
        try:
            if self.transport == "sip":
                await self._run_sip(dispatcher)
            while self.transport != "sip" and not self._stop.is_set():
                try:
                    result = await self._one_call(dispatcher)
                except asyncio.CancelledError:
                    self._stop.set()        # lets a driver thread waiting for a call return
                    raise
                if result is None:
                    break
                self.results.append(result)
                dispatcher.put(self.on_done, result)
                if self.once:
                    break
        finally:
            await dispatcher.close()
        return self.results

    def _bound(self, address: tuple[str, int]) -> None:
        self.local_address = address
        self._ready.set()

    # one call
    async def _one_call(self, dispatcher: _Dispatcher) -> FaxResult | None:
        try:
            return await self._take_call(dispatcher)
        finally:
            if self._held_sock is not None:     # a T.38 call not taken: free the port
                self._held_sock.close()
                self._held_sock = None

    async def _take_call(self, dispatcher: _Dispatcher) -> FaxResult | None:
        wall_start = time.time()
        call = Call(via=self.via, transport=self.transport)
        remote = None
        driver = None
        if self.transport in ("t38", "rtp"):
            from .drivers import audio_rtp, rtp, t38_udp

            if self.transport == "t38":
                local, remote = t38_udp.parse_t38_url(self.via, listen=True)
            else:
                local, remote, rtp_config = rtp.parse_rtp_url(self.via, listen=True)
            if self.local_address is not None:
                local = self.local_address          # keep the port we were given (port 0)
            if remote is None:
                # the port stays open (held) while on_call decides: a caller's datagrams
                # then queue for the call instead of drawing ICMP port-unreachable
                if self.transport == "t38":
                    got = await t38_udp.wait_for_caller(local, self._stop, self._bound, self._rejected,
                                                        keep_socket=True)
                else:
                    got = await audio_rtp.wait_for_caller(local, self._stop, self._bound, self._rejected,
                                                          rtp_config)
                if got is None:
                    return None
                remote, self._held_sock = got
            else:
                self._bound(local)
            call.remote_address = f"{remote[0]}:{remote[1]}"
        else:
            driver, caller_id = await asyncio.to_thread(_class1_calls.wait_for_call, self, self._stop)
            if driver is None:
                return None
            call.ani = caller_id.get("NMBR")
            call.dnis = caller_id.get("DDI") or caller_id.get("NDID")
            call.info = dict(caller_id)

        decision = await self._decide(call)
        common = dict(local_id=self.config.local_id, transport=self.transport, address=self.via,
                      ani=call.ani, dnis=call.dnis)

        async def refuse() -> None:
            if driver is not None:
                await asyncio.to_thread(_class1_calls.close, driver)
            if remote is not None:     # T.38: its next datagrams are this call, not a new one
                self._rejected[remote] = asyncio.get_running_loop().time()

        if isinstance(decision, Reject):
            await refuse()
            return _record.call_failure("receive", "rejected", decision.reason,
                                        started_at=_record.utc_iso(wall_start),
                                        ended_at=_record.utc_iso(time.time()), **common)

        limits = self.t38 if self.transport == "t38" else None
        if self.transport == "rtp":
            from .audio.terminal import AudioConfig
            limits = AudioConfig()                  # its limit_t30: only the modems xmfax.audio has
        return await self._serve(call, decision, dispatcher, wall_start, common, refuse=refuse,
                                 run=lambda make: self._run_session(make(limits), driver, remote, wall_start, common))

    async def _decide(self, call: Call) -> Accept | Reject:
        try:
            return _decision(await _call_hook(self.on_call, call, timeout=self.call_decision_timeout))
        except (asyncio.TimeoutError, Exception) as exc:  # a broken hook rejects, never crashes the line
            return Reject(f"on_call failed: {exc!r}")

    async def _serve(self, call: Call, decision: Accept, dispatcher: _Dispatcher, wall_start: float,
                     common: dict, *, refuse: Callable, run: Callable) -> FaxResult:
        """An accepted call, whatever the transport: storage opened before answering (``refuse()``
        and a failure if it cannot be), then ``run(make_session)``, where
        ``make_session(t38_limits)`` builds the observed T.30 session (its rate capped at
        the T.38 limits' T38MaxBitRate when given); the files closed whatever happens."""
        config = self.config
        if decision.local_id is not None:
            config = _replace(config, local_id=decision.local_id)
            common["local_id"] = decision.local_id
        sink = None
        if self.output_dir is not None:
            try:
                sink = await asyncio.to_thread(_storage.FaxFiles, self.output_dir, self.formats, self.codec,
                                               wall_start)
            except _storage.StorageError as exc:     # not answered: nowhere to keep the fax
                await refuse()
                print(f"xmfax: call not answered: {exc}", file=sys.stderr, flush=True)
                return _record.call_failure("receive", "storage", str(exc), started_at=_record.utc_iso(wall_start),
                                            ended_at=_record.utc_iso(time.time()), **common)
            config = _replace(config, confirm_storage=True)
            call.spool = str(sink.part)         # a service can tie its own record to the file
        config = _replace(config, keep_received_pages=False)
        # one worker per call stores its pages in order, off the line's path
        storer = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="xmfax-store") if sink else None

        def store(ev: Any) -> concurrent.futures.Future:
            return storer.submit(sink.store, ev.number, ev.page)

        def hook(ev: Any) -> None:
            dispatcher.put(self.on_event, ev)
            if isinstance(ev, t30_events.PageReceived):
                dispatcher.put(self.on_page, call, ev)
            elif isinstance(ev, PageStored):
                if sessions:
                    call.remote_id = sessions[0].result.remote_id or None
                dispatcher.put(self.on_stored, call, ev)

        sessions: list[_Observed] = []

        def make_session(limits: Any = None) -> _Observed:
            # never offer a rate above the agreed T38MaxBitRate
            session = _Observed(Session(limits.limit_t30(config) if limits is not None else config, calling=False,
                                        receive=True, now=0.0), hook, store if sink is not None else None)
            sessions.append(session)
            return session

        dispatcher.put(self.on_event, CallStarted(0.0, "receive", self.via))
        result: FaxResult | None = None
        try:
            result = await run(make_session)
        finally:
            if sink is not None:
                await asyncio.to_thread(storer.shutdown, wait=True)   # the page being stored, if any
                if result is None:          # cancelled (or a bug): the stored pages are kept all the same
                    result = _record.call_failure("receive", "cancelled", "the receiver stopped during the call",
                                                  started_at=_record.utc_iso(wall_start),
                                                  ended_at=_record.utc_iso(time.time()), **common)
                    if sessions:
                        result.pages = _record.from_t30(sessions[0].result, sessions[0].log,
                                                        direction="receive").pages
                    result.files = await asyncio.to_thread(sink.close, result)
        if sink is not None:
            result.files = await asyncio.to_thread(sink.close, result)
        return result

    async def _run_session(self, session: _Observed, driver: Any, remote: Any, wall_start: float,
                           common: dict) -> FaxResult:
        try:
            if self.transport == "t38":
                sock, self._held_sock = self._held_sock, None       # run_call owns (and closes) it now
                t30 = await _run_t38(session, self.via, answering=True, realtime=self.realtime,
                                     t38=self.t38, local_override=self.local_address, remote_override=remote,
                                     max_duration=self.max_duration, sock=sock)
            elif self.transport == "rtp":
                sock, self._held_sock = self._held_sock, None       # run_audio_call owns it now
                t30 = await _run_rtp(session, self.via, answering=True, local_override=self.local_address,
                                     remote_override=remote, max_duration=self.max_duration, sock=sock)
            else:
                t30 = await asyncio.to_thread(_class1_calls.answer, driver, session, self.max_duration)
            return _record.from_t30(t30, session.log, direction="receive", t0=t30.started, wall_start=wall_start,
                                    wall_end=time.time(), **common)
        except (DriverError, OSError) as exc:
            result = _record.call_failure("receive", _failure_reason(exc, self.transport), str(exc),
                                          started_at=_record.utc_iso(wall_start),
                                          ended_at=_record.utc_iso(time.time()),
                                          events=[_record.event_to_dict(e) for e in session.log], **common)
            if session.log and any(isinstance(e, t30_events.PageReceived) for e in session.log):
                result.pages = _record.from_t30(session.result, session.log, direction="receive").pages
            return result

    # SIP: xmfax/_sip_calls.py
    async def _run_sip(self, dispatcher: _Dispatcher) -> None:
        from . import _sip_calls

        await _sip_calls.serve(self, dispatcher)

    # Class 1 (waiting for a ring, answering, hanging up): xmfax/_class1_calls.py


def receive(*, via: str, on_call: Callable | None = None, on_page: Callable | None = None,
            on_done: Callable | None = None, **kwargs: Any) -> Receiver:
    """A :class:`Receiver` on ``via``; ``await`` it (or its ``run()``) to answer calls until stopped.

    ``on_call(call) -> Accept(local_id=...) | Reject(reason) | bool | str`` decides each call
    (the CSID to present per called number is the portal's plug-in point);
    ``on_page(call, page_event)`` gets each page as it completes (``page_event.page`` is
    the :class:`~xmfax.page.Page`); ``on_done(result)`` gets the :class:`FaxResult`;
    with ``output_dir``, ``on_stored(call, stored)`` gets each :class:`PageStored` (the
    page is on disk and confirmed to the far end, or ``stored.error``) and ``call.spool``
    names the ``.tif.part`` file. Other keywords as :class:`Receiver`.
    """
    return Receiver(via=via, on_call=on_call, on_page=on_page, on_done=on_done, **kwargs)
