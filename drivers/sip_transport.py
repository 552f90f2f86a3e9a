"""The socket side of SIP: one UDP socket and one TCP listener on the same port, outgoing
TCP connections, and name resolution (RFC 3261 §18).

    transport = SipTransport(on_message)            # on_message(data, (host, port), "udp"|"tcp")
    host, port = await transport.open(("127.0.0.1", 0))
    transport.send(b"INVITE ...", ("proxy.example.net", 5060), "tcp")
    await transport.close()

What arrives is handed up as whole messages: a UDP datagram is one message; a TCP stream
is cut into messages by :class:`xmfax.sip.message.StreamFramer` (RFC 3261 §18.3), and a
stream it cannot frame (no Content-Length, a message over the size limit) is closed.
Sending never raises: a destination that cannot be resolved or reached is counted in
``errors`` (with ``last_error``) and reported to ``on_send_failed(dest, transport, error)``
(the user agent then fails the transactions sending there, RFC 3261 §17.1.4); an ICMP error
on the UDP socket names no destination and is only counted (the transaction times out as
it would on a lost packet). TCP connections are shared by destination: a response goes back on the
connection its request came on (the UA sends it to the request's source address, which
is the key of that connection), a request to a destination we have no connection to
opens one.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Callable

from xmfax.errors import DriverError
from xmfax.sip.message import SIPParseError, StreamFramer

__all__ = ["SipTransport", "resolve", "route_source", "is_ip_literal", "Address"]

Address = tuple[str, int]


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def route_source(peer: str, default: str = "127.0.0.1") -> str:
    """The local address the kernel would use to reach ``peer`` (an IP literal): what a
    UA bound to 0.0.0.0 puts in its Via, Contact and SDP. Nothing is sent (connecting a
    UDP socket only picks the route); ``default`` when there is no route."""
    try:
        family = socket.AF_INET6 if ":" in peer else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((peer, 9))
            return s.getsockname()[0]
    except OSError:
        return default


async def resolve(host: str, port: int = 5060, transport: str = "udp",
                  family: int = socket.AF_UNSPEC) -> str:
    """``host`` as an IP address (A/AAAA through the loop's getaddrinfo); an IP literal as
    it is. OSError when it does not resolve."""
    if is_ip_literal(host):
        return host
    kind = socket.SOCK_STREAM if transport.lower() == "tcp" else socket.SOCK_DGRAM
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, family=family, type=kind)
    except UnicodeError as exc:
        raise OSError(f"bad host name {host!r}: {exc}") from None
    if not infos:
        raise OSError(f"no address for {host!r}")
    return infos[0][4][0]


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, owner: "SipTransport"):
        self.owner = owner

    def datagram_received(self, data: bytes, addr) -> None:
        if data.strip(b"\r\n") == b"":
            return      # RFC 5626 §3.5.1 keep-alive (CRLF): nothing to hand up
        self.owner._deliver(data, (addr[0], addr[1]), "udp")

    def error_received(self, exc: Exception) -> None:
        self.owner._error(f"udp: {exc}")


class _Stream(asyncio.Protocol):
    """One TCP connection, inbound or outbound, framed by StreamFramer."""

    def __init__(self, owner: "SipTransport", key: Address | None = None):
        self.owner = owner
        self.key = key                          # (host, port) of the far end
        self.transport: asyncio.Transport | None = None
        self.framer = StreamFramer()
        self.closed = False
        self.last_used = asyncio.get_running_loop().time()

    def connection_made(self, transport) -> None:
        self.transport = transport
        peer = transport.get_extra_info("peername")
        if self.key is None and peer is not None:
            self.key = (peer[0], peer[1])
        if not self.owner._adopt(self):
            transport.close()

    def data_received(self, data: bytes) -> None:
        self.last_used = asyncio.get_running_loop().time()
        try:
            messages = self.framer.feed(data)
        except SIPParseError as exc:            # RFC 3261 §18.3: the stream cannot be framed
            self.owner._error(f"tcp {self.key}: {exc.reason}: connection closed")
            self.transport.close()
            return
        for message in messages:
            self.owner._deliver(message, self.key, "tcp")

    def connection_lost(self, exc) -> None:
        self.closed = True
        self.owner._forget(self)

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.last_used = asyncio.get_running_loop().time()
            self.transport.write(data)


class SipTransport:
    """UDP and TCP on one local address for one user agent. ``on_message(data, source,
    transport)`` is called in the event loop for every message that arrives;
    ``on_send_failed(dest, transport, error)`` for a message that could not be sent to
    ``dest`` (as the caller gave it: a name stays a name)."""

    MAX_TCP_CONNECTIONS = 2048
    CONNECT_TIMEOUT = 5.0
    # a TCP connection nothing has used for this long is closed (a peer that needs it again
    # opens a new one, RFC 3261 §18): idle connections cannot pile up to the limit above
    IDLE_TIMEOUT = 300.0

    def __init__(self, on_message: Callable[[bytes, Address, str], None],
                 on_send_failed: Callable[[Address, str, str], None] | None = None):
        self.on_message = on_message
        self.on_send_failed = on_send_failed
        self.local: Address | None = None
        self._udp: asyncio.DatagramTransport | None = None
        self._server: asyncio.base_events.Server | None = None
        self._streams: dict[Address, _Stream] = {}
        self._connecting: dict[Address, list[tuple[bytes, Address]]] = {}  # (data, dest as given)
        self._resolved: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self.errors = 0
        self.last_error = ""
        self.received = 0
        self.sent = 0
        self._sweeper: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------------ lifecycle
    async def open(self, local: Address, *, tcp: bool = True) -> Address:
        """Bind UDP on ``local`` (port 0: any free port) and listen for TCP on the same port.
        DriverError if the address is taken."""
        loop = asyncio.get_running_loop()
        host, port = local
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        attempts = 20 if port == 0 else 1        # port 0: find one free for both protocols
        last: OSError | None = None
        for _ in range(attempts):
            udp_sock = socket.socket(family, socket.SOCK_DGRAM)
            try:
                udp_sock.bind((host, port))
            except OSError as exc:
                udp_sock.close()
                raise DriverError(f"cannot open SIP UDP {host}:{port}: {exc.strerror or exc}") from exc
            bound = udp_sock.getsockname()[:2]
            server = None
            if tcp:
                try:
                    server = await loop.create_server(lambda: _Stream(self), host=host, port=bound[1],
                                                      family=family, reuse_address=True)
                except OSError as exc:
                    udp_sock.close()
                    last = exc
                    continue
            udp_sock.setblocking(False)
            self._udp, _ = await loop.create_datagram_endpoint(lambda: _Datagrams(self), sock=udp_sock)
            self._server = server
            self.local = (bound[0], bound[1])
            if tcp:
                self._sweeper = loop.call_later(self.IDLE_TIMEOUT / 4, self._sweep)
            return self.local
        raise DriverError(f"cannot open SIP TCP {host}:{port}: {getattr(last, 'strerror', None) or last}")

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for stream in list(self._streams.values()):
            if now - stream.last_used >= self.IDLE_TIMEOUT and stream.transport is not None:
                stream.transport.close()
        self._sweeper = loop.call_later(self.IDLE_TIMEOUT / 4, self._sweep)

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for task in list(self._tasks):
            task.cancel()
        for stream in list(self._streams.values()):
            if stream.transport is not None:
                stream.transport.close()
        self._streams.clear()
        self._connecting.clear()
        if self._server is not None:
            self._server.close()
            try:
                async with asyncio.timeout(2.0):
                    await self._server.wait_closed()
            except TimeoutError:
                pass
            self._server = None
        if self._udp is not None:
            self._udp.close()
            self._udp = None
        await asyncio.sleep(0)          # let the transports' connection_lost run

    @property
    def tcp_connections(self) -> int:
        return len(self._streams)

    # ------------------------------------------------------------------ sending
    def send(self, data: bytes, dest: Address, transport: str) -> None:
        """Send one encoded message; never raises (failures are counted)."""
        host, port = dest
        ip = host if is_ip_literal(host) else self._resolved.get(host.lower())
        if ip is None:
            self._spawn(self._resolve_and_send(data, host, port, transport))
            return
        self._send_to(data, (ip, port), transport, dest)

    def _send_to(self, data: bytes, dest: Address, transport: str, given: Address) -> None:
        if transport.lower() == "tcp":
            stream = self._streams.get(dest)
            if stream is not None and not stream.closed:
                stream.write(data)
                self.sent += 1
                return
            waiting = self._connecting.get(dest)
            if waiting is not None:
                waiting.append((data, given))
                return
            self._connecting[dest] = [(data, given)]
            self._spawn(self._connect(dest))
            return
        if self._udp is None:
            self._failed(given, "udp", f"udp {dest[0]}:{dest[1]}: transport closed")
            return
        try:
            self._udp.sendto(data, dest)
            self.sent += 1
        except OSError as exc:
            self._failed(given, "udp", f"udp {dest[0]}:{dest[1]}: {exc}")

    async def _resolve_and_send(self, data: bytes, host: str, port: int, transport: str) -> None:
        ip = await self.resolve(host, port, transport)
        if ip is None:
            self._failed((host, port), transport.lower(), self.last_error)
            return
        self._send_to(data, (ip, port), transport, (host, port))

    async def resolve(self, host: str, port: int = 5060, transport: str = "udp") -> str | None:
        """``host`` as an IP address (A/AAAA via getaddrinfo, cached); None (counted as an
        error) if it does not resolve. IP literals are returned as they are."""
        if is_ip_literal(host):
            return host
        key = host.lower()
        if key in self._resolved:
            return self._resolved[key]
        family = socket.AF_UNSPEC
        if self.local is not None and is_ip_literal(self.local[0]):
            family = socket.AF_INET6 if ":" in self.local[0] else socket.AF_INET
        try:
            ip = await resolve(host, port, transport, family)
        except OSError as exc:
            self._error(f"cannot resolve {host!r}: {exc}")
            return None
        self._resolved[key] = ip
        return ip

    async def _connect(self, dest: Address) -> None:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.CONNECT_TIMEOUT):
                await loop.create_connection(lambda: _Stream(self, dest), dest[0], dest[1])
        except (OSError, TimeoutError) as exc:
            dropped = self._connecting.pop(dest, [])
            text = f"tcp connect {dest[0]}:{dest[1]}: {exc or 'timed out'} ({len(dropped)} message(s) not sent)"
            self._error(text)
            for given in dict.fromkeys(g for _, g in dropped):
                self._failed(given, "tcp", text, count=False)

    # ------------------------------------------------------------------ streams
    def _adopt(self, stream: _Stream) -> bool:
        if len(self._streams) >= self.MAX_TCP_CONNECTIONS and stream.key not in self._streams:
            self._error(f"tcp {stream.key}: too many connections, refused")
            return False
        old = self._streams.get(stream.key)
        self._streams[stream.key] = stream
        if old is not None and old is not stream and old.transport is not None:
            old.transport.close()
        for data, _ in self._connecting.pop(stream.key, []):
            stream.write(data)
            self.sent += 1
        return True

    def _forget(self, stream: _Stream) -> None:
        if self._streams.get(stream.key) is stream:
            del self._streams[stream.key]

    # ------------------------------------------------------------------ plumbing
    def _deliver(self, data: bytes, source: Address, transport: str) -> None:
        self.received += 1
        try:
            self.on_message(data, source, transport)
        except Exception as exc:     # a bug above must not kill the socket: count it, go on
            self._error(f"{transport} message from {source[0]}:{source[1]} not handled: {exc!r}")

    def _error(self, text: str) -> None:
        self.errors += 1
        self.last_error = text

    def _failed(self, dest: Address, transport: str, text: str, *, count: bool = True) -> None:
        if count:
            self._error(text)
        if self.on_send_failed is not None:
            try:
                self.on_send_failed(dest, transport, text)
            except Exception as exc:     # never out of the socket side
                self._error(f"send failure not handled: {exc!r}")

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
