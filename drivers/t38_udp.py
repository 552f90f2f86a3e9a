"""T.38 over UDP (UDPTL): an asyncio driver around the sans-IO T38Terminal.

    result = await run_call(session, local=("0.0.0.0", 6000), remote=("192.0.2.7", 6000),
                            config=T38Config(), paced=True)

With ``remote=None`` the driver answers: it sends nothing until the first
valid datagram arrives (one that decodes as UDPTL with a valid IFP primary:
stray bytes adopt no one) and then talks to whoever sent it (as a SIP-less
test setup or a gateway behind NAT would). Once the peer is known the socket
is connected to it: the kernel then drops datagrams from anyone else, and
reports ICMP errors (port unreachable) for ours; ``UNREACHABLE_ERRORS`` such
errors, over at least ``UNREACHABLE_AFTER`` seconds with nothing heard from the
peer in between, end the call with DriverError("far end unreachable: ...")
instead of waiting out T1. Addresses come from URLs:

    t38://HOST:PORT?local=HOST:PORT    call HOST:PORT, from the given local address
    t38://HOST:PORT?remote=HOST:PORT   listen on HOST:PORT, talk to the given remote
    t38://HOST:PORT                    call HOST:PORT (``listen=False``) or listen there

The clock given to the core is the event loop's monotonic clock.
"""
from __future__ import annotations

import asyncio
from collections import deque
import socket
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from xmfax.errors import DriverError, DriverTimeoutError
from xmfax.t38.config import T38Config
from xmfax.t38.ifp import IFPDecodeError, decode_ifp
from xmfax.t38.terminal import T38Terminal
from xmfax.t38.udptl import decode_udptl

__all__ = ["T38UDPDriver", "run_call", "parse_t38_url", "parse_hostport", "wait_for_caller",
           "is_t38_datagram", "REJECTED_QUIET"]

Address = tuple[str, int]

# A rejected T.38 caller keeps sending until its T1 runs out: its datagrams are not a
# new call until it has been quiet this long.
REJECTED_QUIET = 5.0


def is_t38_datagram(data: bytes, version: int | None = None) -> bool:
    """Whether ``data`` decodes as a UDPTL packet whose primary is a valid IFP packet
    (under ``version``, or under any T38FaxVersion when None). Only such a datagram
    makes its sender our peer."""
    try:
        primary = decode_udptl(data, 64).primary
    except IFPDecodeError:
        return False
    for v in ((version,) if version is not None else (0, 2)):   # the 1998 and 2002 ASN.1
        try:
            decode_ifp(primary, v)
            return True
        except IFPDecodeError:
            continue
    return False


async def wait_for_caller(local: Address, stop: asyncio.Event, on_ready=None,
                          ignore: dict | None = None, *, keep_socket: bool = False):
    """Listen on ``local`` until someone sends a valid T.38 datagram (is_t38_datagram);
    their address (None if ``stop`` is set first). Anything else is dropped.

    ``keep_socket=True`` returns ``(address, socket)`` instead: the bound socket stays
    open for :func:`run_call` (``sock=``), so the port never closes between the first
    datagram and the call (while ``on_call`` decides, the caller's datagrams wait in the
    socket's queue instead of drawing ICMP port-unreachable, which ends many callers).
    Close it yourself if the call is not taken.

    ``ignore`` maps the addresses of rejected callers to when they were last heard
    (loop time); their datagrams are dropped (and the time renewed) until they have
    been quiet for REJECTED_QUIET seconds."""
    got = await listen_for_caller(local, stop, lambda data, now: is_t38_datagram(data), on_ready, ignore,
                                  keep_socket=keep_socket)
    return got if keep_socket or got is None else got[0]


async def listen_for_caller(local: Address, stop: asyncio.Event, valid: Callable[[bytes, float], bool],
                            on_ready=None, ignore: dict | None = None, *, keep_socket: bool = True):
    """Listen on ``local`` until a datagram ``valid(data, loop_time)`` accepts arrives (a
    T.38 or an RTP caller); ``(address, socket or None)``, or None if ``stop`` is set first.
    With ``keep_socket`` the socket is a second descriptor of the bound one: the port stays
    bound and what the caller sends next queues in the kernel for the call. ``ignore``: as
    :func:`wait_for_caller`."""
    loop = asyncio.get_running_loop()
    got: asyncio.Future = loop.create_future()
    closed: asyncio.Future = loop.create_future()
    ignore = ignore if ignore is not None else {}

    class _First(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr) -> None:
            source = (addr[0], addr[1])
            now = loop.time()
            last = ignore.get(source)
            if last is not None and now - last < REJECTED_QUIET:
                ignore[source] = now            # the rejected call is still going
                return
            if not valid(data, now):
                return                          # stray bytes make no one our caller
            ignore.pop(source, None)
            if not got.done():
                got.set_result(source)

        def connection_lost(self, exc) -> None:
            if not closed.done():
                closed.set_result(None)

    try:
        transport, _ = await loop.create_datagram_endpoint(_First, local_addr=local)
    except OSError as exc:
        raise DriverError(f"cannot open UDP {local[0]}:{local[1]}: {exc}") from exc
    try:
        if on_ready is not None:
            on_ready(transport.get_extra_info("sockname")[:2])
        stopper = loop.create_task(stop.wait())
        done, _ = await asyncio.wait({got, stopper}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        if got not in done:
            return None
        return got.result(), (transport.get_extra_info("socket").dup() if keep_socket else None)
    finally:
        transport.close()
        await closed            # (with keep_socket the port stays bound through the dup)


async def socket_closed(protocol) -> None:
    """Wait (at most 1 s) until the protocol's socket is really closed: asyncio closes a
    transport's socket one loop turn after ``close()``, and a receiver answering its next
    call on the same port cannot bind it before (EADDRINUSE). ``protocol.closed`` is a
    future made in connection_made and set in connection_lost."""
    if protocol.closed is not None:
        await asyncio.wait({protocol.closed}, timeout=1.0)


def parse_hostport(text: str, default_port: int | None = None) -> Address:
    """``HOST:PORT`` or ``[V6]:PORT`` to (host, port). ValueError when malformed."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"bad address {text!r}: unclosed [")
        port_s = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port_s = text.rpartition(":") if ":" in text else (text, "", "")
    if not host:
        raise ValueError(f"bad address {text!r}: no host")
    if not port_s:
        if default_port is None:
            raise ValueError(f"bad address {text!r}: no port")
        return host, default_port
    try:
        port = int(port_s)
    except ValueError:
        raise ValueError(f"bad address {text!r}: port {port_s!r} is not a number") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"bad address {text!r}: port {port} out of range")
    return host, port


def parse_t38_url(url: str, listen: bool = False) -> tuple[Address, Address | None]:
    """``t38://...`` to (local, remote); remote None means "learn it from the first datagram"."""
    parts = urlsplit(url)
    if parts.scheme != "t38":
        raise ValueError(f"not a t38:// URL: {url!r}")
    if not parts.netloc:
        raise ValueError(f"no HOST:PORT in {url!r}")
    main = parse_hostport(parts.netloc)
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - {"local", "remote"}
    if unknown:
        raise ValueError(f"unknown t38:// parameter(s) {sorted(unknown)} in {url!r}")
    if "local" in query and "remote" in query:
        raise ValueError(f"give local= or remote=, not both: {url!r}")
    if "local" in query:
        return parse_hostport(query["local"][-1]), main
    if "remote" in query:
        return main, parse_hostport(query["remote"][-1])
    if listen:
        return main, None
    return ("0.0.0.0", 0), main


class T38UDPDriver(asyncio.DatagramProtocol):
    """Pumps one T38Terminal over a datagram endpoint.

    An unpaced terminal hands over a whole page of datagrams at once; sent in one go
    they overflow the far end's socket buffer (and, with both ends in one process,
    the far end cannot even read until we yield). So datagrams leave in bursts of
    ``BURST``, with a ``BURST_GAP`` pause between bursts: still hundreds of times
    faster than a fax line, without the loss.
    """

    BURST = 16
    BURST_GAP = 0.001       # seconds
    # Socket errors (ICMP unreachable) with nothing heard from the peer, the last at least
    # UNREACHABLE_AFTER seconds after the first: the far end is not there. One error alone
    # may be a peer a moment late (or a stale ICMP); a calling terminal sends only its CNG
    # and a no-signal (0.5 s apart) before it waits for DIS, so two is all there may be.
    UNREACHABLE_ERRORS = 2
    UNREACHABLE_AFTER = 0.4

    def __init__(self, terminal: T38Terminal, remote: Address | None, loop: asyncio.AbstractEventLoop,
                 sock: socket.socket | None = None):
        self.terminal = terminal
        self.remote = remote
        self.sock = sock                # the endpoint's socket, connected to the peer once known
        self.loop = loop
        self.transport: asyncio.DatagramTransport | None = None
        self.wakeup = asyncio.Event()
        self.error: Exception | None = None      # the last socket error
        self.errors = 0                          # socket errors since the peer was last heard
        self._first_error_at: float | None = None
        self.fatal: DriverError | None = None    # ends the call (run raises it)
        self.invalid = 0                         # datagrams that made no one our peer
        self._pending: deque[bytes] = deque()
        self._drain: asyncio.Task | None = None
        self.datagrams_in = 0
        self.datagrams_out = 0
        self.foreign = 0               # datagrams from an address that is not the peer
        self.closed: asyncio.Future | None = None    # done once the socket is really closed

    # asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport
        self.closed = asyncio.get_running_loop().create_future()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:  # best effort: room for a burst from an unpaced far end
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            except OSError:
                pass
        if self.remote is not None:
            self._connect()

    def _connect(self) -> None:
        # a connected UDP socket gets only the peer's datagrams and hears of ICMP errors
        if self.sock is None:
            return
        try:
            self.sock.connect(self.remote)
        except OSError:
            pass                        # best effort: the address check below still holds

    def datagram_received(self, data: bytes, addr) -> None:
        if self.remote is None:
            if not is_t38_datagram(data, self.terminal.config.version):
                self.invalid += 1       # stray bytes before the caller: adopt no one
                return
            self.remote = (addr[0], addr[1])
            self._connect()
        elif (addr[0], addr[1]) != self.remote:
            self.foreign += 1           # not our peer: ignore (stray or spoofed traffic)
            return
        self.datagrams_in += 1
        self.errors = 0
        self._first_error_at = None
        self.terminal.receive_datagram(data, self.loop.time())
        self.flush()
        self.wakeup.set()

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable and the like. One may be a peer not up yet (or a stale
        # ICMP from before the call): only a run of them with nothing heard from the peer
        # ends the call.
        self.error = exc
        now = self.loop.time()
        if self._first_error_at is None:
            self._first_error_at = now
        self.errors += 1
        if (self.fatal is None and self.errors >= self.UNREACHABLE_ERRORS
                and now - self._first_error_at >= self.UNREACHABLE_AFTER):
            where = f"{self.remote[0]}:{self.remote[1]}" if self.remote else "the peer"
            self.fatal = DriverError(f"far end unreachable: {where}: {exc}")
        self.wakeup.set()

    def connection_lost(self, exc) -> None:
        self.wakeup.set()
        if self.closed is not None and not self.closed.done():
            self.closed.set_result(None)

    def flush(self) -> None:
        self._pending.extend(self.terminal.datagrams_to_send())
        if self.remote is None or self.transport is None or self._drain is not None:
            return
        if len(self._pending) <= self.BURST:
            self._send(len(self._pending))
        else:
            self._drain = self.loop.create_task(self._drain_bursts())

    def _send(self, count: int) -> None:
        for _ in range(min(count, len(self._pending))):
            try:
                self.transport.sendto(self._pending.popleft(), self.remote)
            except OSError as exc:      # a connected socket may report the ICMP error here
                self.error_received(exc)
                continue
            self.datagrams_out += 1

    async def _drain_bursts(self) -> None:
        try:
            while self._pending and self.transport is not None and not self.transport.is_closing():
                self._send(self.BURST)
                if self._pending:
                    await asyncio.sleep(self.BURST_GAP)
        finally:
            self._drain = None

    async def drained(self) -> None:
        """Wait until every datagram handed over so far has been sent."""
        while self._drain is not None:
            await asyncio.shield(self._drain)

    async def run(self, max_duration: float, hangup: asyncio.Future | None = None,
                  resume: list | None = None) -> None:
        loop = self.loop
        term = self.terminal
        deadline = loop.time() + max_duration
        if hangup is not None:          # SIP hook: the call ended around us (e.g. a BYE)
            hangup.add_done_callback(lambda _: self.wakeup.set())
        if resume is None:
            term.start(loop.time())
        else:                           # a session begun on other media (audio): goes on here
            term.resume(loop.time(), resume)
        self.flush()
        while not term.done:
            now = loop.time()
            if hangup is not None and hangup.done() and not hangup.cancelled():
                term.close(str(hangup.result()), now)     # the session ends: LINE_LOST
                break
            if self.fatal is not None:
                term.close(str(self.fatal), now)
                raise self.fatal
            if now >= deadline:
                term.close("call took too long", now)
                raise DriverTimeoutError(f"T.38 call still running after {max_duration:.0f} s")
            t = term.next_timer()
            wait = deadline - now if t is None else max(0.0, min(t, deadline) - now)
            if wait > 0:
                self.wakeup.clear()
                # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancellation
                # that arrives as the wake-up fires, and a cancelled receiver then ran on
                try:
                    async with asyncio.timeout(wait):
                        await self.wakeup.wait()
                except TimeoutError:
                    pass
            now = loop.time()
            t = term.next_timer()
            if t is not None and now >= t:
                term.handle_timer(now)
            self.flush()
        self.flush()
        await self.drained()


async def run_call(session, local: Address = ("0.0.0.0", 0), remote: Address | None = None,
                   config: T38Config | None = None, paced: bool = True, *,
                   max_duration: float = 1800.0, on_ready=None, sock: socket.socket | None = None,
                   hangup: asyncio.Future | None = None, resume: list | None = None):
    """Run ``session`` (a T.30 Session) over T.38/UDPTL; return its T30Result.

    ``on_ready(local_address)`` is called once the socket is bound (useful with
    port 0). ``sock``: an already bound UDP socket to use instead of binding ``local``
    (wait_for_caller's ``keep_socket``); it is closed when the call ends. ``hangup``:
    a future whose result (a reason, e.g. "far end hung up (BYE)") ends the call at
    once as a lost line (the SIP driver sets it when the far end hangs up). ``resume``: the
    session has already started on other media (a call switched from audio during the fax:
    drivers/audio_rtp.Handover); it is not started again, these commands it had not sent
    whole go first (T38Terminal.resume). Raises DriverError if the socket cannot be opened."""
    loop = asyncio.get_running_loop()
    config = (config or T38Config()).replace(paced=paced)
    try:
        terminal = T38Terminal(session, config, loop.time())
    except ValueError as exc:       # the session allows more than T38MaxBitRate (limit_t30)
        if sock is not None:
            sock.close()
        raise DriverError(f"T.38 session not started: {exc}") from exc
    if sock is None:
        family = socket.AF_INET6 if ":" in local[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
    try:
        if sock.getsockname()[1] == 0:
            sock.bind(local)
        sock.setblocking(False)
        transport, driver = await loop.create_datagram_endpoint(
            lambda: T38UDPDriver(terminal, remote, loop, sock), sock=sock)
    except OSError as exc:
        sock.close()
        raise DriverError(f"cannot open UDP {local[0]}:{local[1]}: {exc}") from exc
    try:
        if on_ready is not None:
            on_ready(transport.get_extra_info("sockname")[:2])
        await driver.run(max_duration, hangup, resume)
        # linger a little so the final DCN (and its redundant copies) leave the socket
        await asyncio.sleep(0.05)
    finally:
        transport.close()
        await socket_closed(driver)      # the port can be bound again for the next call
    return terminal.result
