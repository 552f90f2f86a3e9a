"""G.711 audio over RTP/UDP: an asyncio pump around the sans-IO xmfax.rtp sender and receiver.

    result = await run_rtp(source, sink, local=("127.0.0.1", 0), remote=("192.0.2.7", 4000),
                           config=RTPConfig(law="alaw"), until=lambda: terminal.done)

Every ``ptime`` (20 ms) of the event loop's clock the driver pulls the samples due from
``source(n)`` (linear int16, 8 kHz; an audio fax terminal's transmitter), codes them with
G.711 and sends them as RTP; and hands ``sink(samples)`` exactly the samples the fixed jitter
buffer plays out by then (silence where nothing arrived). Both sides run at 8000 samples a
second of clock time whatever the network does: a late tick is caught up at the next one.

Symmetric RTP (RFC 4961): with ``remote=None`` the driver sends nothing until the first valid
RTP packet of a negotiated payload type arrives (stray bytes adopt no one; the samples due
meanwhile are dropped, and the timestamp runs on), then talks to its sender. Once the peer is
known the socket is connected to it: the kernel drops datagrams from anyone else and reports
ICMP errors for ours; ``UNREACHABLE_ERRORS`` of them over ``UNREACHABLE_AFTER`` seconds, with
nothing heard from the peer in between, end the run with DriverError("far end unreachable").

Addresses come from URLs, as for T.38:

    rtp://HOST:PORT?local=HOST:PORT      send to HOST:PORT, from the given local address
    rtp://HOST:PORT?remote=HOST:PORT     listen on HOST:PORT, talk to the given remote
    rtp://HOST:PORT                      send to HOST:PORT (``listen=False``) or listen there
    ...&law=pcma&depth=80                G.711 law (pcmu, the default, or pcma); jitter ms
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Callable
from urllib.parse import parse_qs, urlsplit

import numpy as np

from xmfax.errors import DriverError
from xmfax.rtp import RATE, Event, RTPConfig, RTPReceiver, RTPSender, RTPStats

from .t38_udp import parse_hostport, socket_closed

__all__ = ["RTPDriver", "RTPResult", "run_rtp", "parse_rtp_url"]

Address = tuple[str, int]
Source = Callable[[int], "np.ndarray"]
Sink = Callable[["np.ndarray"], None]


def parse_rtp_url(url: str, listen: bool = False) -> tuple[Address, Address | None, RTPConfig]:
    """``rtp://...`` to (local, remote, config); remote None: learn it from the first packet."""
    parts = urlsplit(url)
    if parts.scheme != "rtp":
        raise ValueError(f"not an rtp:// URL: {url!r}")
    if not parts.netloc:
        raise ValueError(f"no HOST:PORT in {url!r}")
    main = parse_hostport(parts.netloc)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"local", "remote", "law", "depth"}
    if unknown:
        raise ValueError(f"unknown rtp:// parameter(s) {sorted(unknown)} in {url!r}")
    if "local" in query and "remote" in query:
        raise ValueError(f"give local= or remote=, not both: {url!r}")
    config = RTPConfig()
    if "law" in query:
        law = {"pcmu": "ulaw", "pcma": "alaw"}.get(query["law"][-1].lower())
        if law is None:
            raise ValueError(f"law= is pcmu or pcma, not {query['law'][-1]!r}")
        config = config.replace(law=law)
    if "depth" in query:
        try:
            config = config.replace(jitter_depth=float(query["depth"][-1]) / 1000.0)
        except ValueError as exc:
            raise ValueError(f"depth= (jitter buffer, ms) in {url!r}: {exc}") from None
    if "local" in query:
        return parse_hostport(query["local"][-1]), main, config
    if "remote" in query:
        return main, parse_hostport(query["remote"][-1]), config
    if listen:
        return main, None, config
    return ("0.0.0.0", 0), main, config


@dataclass(frozen=True, slots=True)
class RTPResult:
    """How a run went: the receiver's statistics and the driver's own counts."""
    stats: RTPStats
    remote: Address | None
    packets_sent: int
    samples_sent: int            # samples pulled from the source (sent, or dropped unpeered)
    datagrams_received: int      # from the peer (or that made it the peer)
    foreign: int                 # datagrams from anyone else (ignored)
    socket_errors: int
    ssrc: int                    # ours
    peer_ssrc: int | None        # the stream's SSRC at the end (None: nothing heard)
    unplayed: int                # samples received but still in the jitter buffer at the end
    events: tuple[Event, ...]    # the receiver's TelephoneEvents and SourceChanges, in order


class RTPDriver(asyncio.DatagramProtocol):
    """Pumps one G.711 stream both ways over a datagram endpoint (see the module doc)."""

    UNREACHABLE_ERRORS = 3
    UNREACHABLE_AFTER = 0.4

    def __init__(self, config: RTPConfig, remote: Address | None, loop: asyncio.AbstractEventLoop,
                 sock: socket.socket | None = None, *, sender: RTPSender | None = None) -> None:
        self.config = config
        self.remote = remote
        self.loop = loop
        self.sock = sock
        self.t0 = loop.time()
        self.sender = sender or RTPSender(config)
        self.receiver = RTPReceiver(config, self.t0)
        self.transport: asyncio.DatagramTransport | None = None
        self.datagrams_in = 0
        self.foreign = 0
        self.invalid = 0              # datagrams that made no one our peer
        self.socket_errors = 0
        self._errors_unheard = 0
        self._first_error_at: float | None = None
        self.fatal: DriverError | None = None
        self.pulled = 0               # samples taken from the source
        self.events: list[Event] = []
        self.on_event: Callable[[Event], None] | None = None
        self.wakeup = asyncio.Event()
        self.closed: asyncio.Future | None = None    # done once the socket is really closed

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()
        if self.remote is not None:
            self._connect()

    def _connect(self) -> None:
        if self.sock is None:
            return
        try:
            self.sock.connect(self.remote)
        except OSError:
            pass                      # best effort: the address check still holds

    def datagram_received(self, data: bytes, addr) -> None:
        source = (addr[0], addr[1])
        now = self.loop.time()
        if self.remote is None:
            if not self.receiver.receive(data, now):
                self.invalid += 1     # not our kind of RTP: adopt no one
                return
            self.remote = source      # RFC 4961: send to where the stream comes from
            self._connect()
        elif source != self.remote:
            self.foreign += 1
            return
        else:
            self.receiver.receive(data, now)
        self.datagrams_in += 1
        self._errors_unheard = 0
        self._first_error_at = None

    def error_received(self, exc: Exception) -> None:
        now = self.loop.time()
        self.socket_errors += 1
        self._errors_unheard += 1
        if self._first_error_at is None:
            self._first_error_at = now
        if (self.fatal is None and self._errors_unheard >= self.UNREACHABLE_ERRORS
                and now - self._first_error_at >= self.UNREACHABLE_AFTER):
            where = f"{self.remote[0]}:{self.remote[1]}" if self.remote else "the peer"
            self.fatal = DriverError(f"far end unreachable: {where}: {exc}")
            self.wakeup.set()

    def connection_lost(self, exc) -> None:
        self.wakeup.set()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def tick(self, source: Source | None, sink: Sink | None) -> None:
        """Send what the clock says is due, and play out what the buffer says is due."""
        from xmfax.audio import g711
        now = self.loop.time()
        due = int((now - self.t0) * RATE + 1e-6) - self.pulled
        if due > 0:
            samples = source(due) if source is not None else np.zeros(due, np.int16)
            if len(samples) != due:
                raise DriverError(f"the audio source gave {len(samples)} samples for {due}")
            self.pulled += due
            if self.remote is None:
                self.sender.skip(due)         # nobody to send to yet: time runs on
            else:
                for datagram in self.sender.send(g711.encode(samples, self.config.law)):
                    self._send(datagram)
        codes = self.receiver.play(now)
        if codes and sink is not None:
            sink(g711.decode(codes, self.config.law))
        for event in self.receiver.events():
            self.events.append(event)
            if self.on_event is not None:
                self.on_event(event)

    def _send(self, datagram: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        try:
            self.transport.sendto(datagram, self.remote)
        except OSError as exc:                # a connected socket may report ICMP errors here
            self.error_received(exc)

    async def run(self, source: Source | None, sink: Sink | None, *, duration: float | None,
                  until: Callable[[], bool] | None, stop: asyncio.Event | None) -> None:
        ptime = self.config.ptime
        end = None if duration is None else self.t0 + duration
        watch = None
        if stop is not None:
            async def wake_on_stop() -> None:
                await stop.wait()
                self.wakeup.set()
            watch = self.loop.create_task(wake_on_stop())
        try:
            await self._loop(source, sink, ptime, end, until, stop)
        finally:
            if watch is not None:
                watch.cancel()
        for datagram in self.sender.flush() if self.remote is not None else []:
            self._send(datagram)

    async def _loop(self, source, sink, ptime, end, until, stop) -> None:
        k = 0
        while True:
            self.tick(source, sink)
            if self.fatal is not None:
                raise self.fatal
            if until is not None and until():
                break
            if stop is not None and stop.is_set():
                break
            now = self.loop.time()
            if end is not None and now >= end:
                break
            k = max(k + 1, int((now - self.t0) / ptime))     # absolute schedule, no drift
            wake = self.t0 + k * ptime
            if end is not None:
                wake = min(wake, end)
            self.wakeup.clear()
            try:
                async with asyncio.timeout(max(0.0, wake - self.loop.time())):
                    await self.wakeup.wait()
            except TimeoutError:
                pass

    def result(self) -> RTPResult:
        return RTPResult(self.receiver.stats, self.remote, self.sender.packets_sent, self.pulled,
                         self.datagrams_in, self.foreign, self.socket_errors, self.sender.ssrc,
                         self.receiver.ssrc, self.receiver.buffered, tuple(self.events))


async def run_rtp(source: Source | None, sink: Sink | None, *, local: Address = ("0.0.0.0", 0),
                  remote: Address | None = None, config: RTPConfig | None = None,
                  duration: float | None = None, until: Callable[[], bool] | None = None,
                  stop: asyncio.Event | None = None, on_ready=None,
                  sock: socket.socket | None = None, sender: RTPSender | None = None,
                  on_event: Callable[[Event], None] | None = None) -> RTPResult:
    """Pump ``source`` -> RTP -> the peer and the peer -> jitter buffer -> ``sink`` until
    ``duration`` seconds passed, ``until()`` is true, or ``stop`` is set; the RTPResult.

    ``source(n)`` returns the next n int16 samples to send (None: silence); ``sink(samples)``
    takes the samples played out (None: dropped). ``on_event(event)`` for each RFC 4733
    TelephoneEvent and SourceChanged as the receiver reports it (all of them are also in the
    result). ``on_ready(local_address)`` once the
    socket is bound. ``sock``: an already bound UDP socket to use (closed at the end).
    DriverError if the socket cannot be opened or the far end is unreachable."""
    if duration is None and until is None and stop is None:
        raise ValueError("run_rtp needs duration, until or stop: it would never end")
    loop = asyncio.get_running_loop()
    config = config or RTPConfig()
    if sock is None:
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if sock.getsockname()[1] == 0:
            sock.bind(local)
        sock.setblocking(False)
        transport, driver = await loop.create_datagram_endpoint(
            lambda: RTPDriver(config, remote, loop, sock, sender=sender), sock=sock)
    except OSError as exc:
        sock.close()
        raise DriverError(f"cannot open UDP {local[0]}:{local[1]}: {exc}") from exc
    driver.on_event = on_event
    try:
        if on_ready is not None:
            on_ready(transport.get_extra_info("sockname")[:2])
        await driver.run(source, sink, duration=duration, until=until, stop=stop)
    finally:
        transport.close()
        await socket_closed(driver)      # the port can be bound again for the next call
    return driver.result()
