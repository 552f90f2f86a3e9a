"""Two (or more) SIP user agents joined in memory on a fake clock, aioquic style.

``Network`` carries every Outgoing from one node to the node at its destination address,
with faults injected by filters (drop, duplicate, delay -> reorder), and runs the nodes'
timers on a fake clock, so a 32 s SIP timeout is tested in microseconds. Besides
``UserAgent`` nodes there are two small far ends written for the tests:

* ``Proxy``: a stateless record-routing loose-routing proxy (RFC 3261 §16.6 steps 4-8,
  §16.7 step 3 for responses), enough to test route sets;
* ``FarEnd``: a scripted UAS/registrar: a function of each request returns the responses.

``UdpPump`` drives user agents over real UDP sockets instead, for the tests against real
peers (Kamailio, baresip).
"""
from __future__ import annotations

import hashlib
import heapq
import itertools
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Callable

from xmfax.sip.events import SipMessage
from xmfax.sip.message import (NameAddr, Request, Response, URI, Via, make_response, new_tag,
                               parse)
from xmfax.sip.transaction import Outgoing
from xmfax.sip.ua import UAConfig, UserAgent
from xmfax.sip.transaction import TimerConfig

LOCAL = "127.0.0.1"


@dataclass
class Packet:
    at: float
    src: tuple[str, int]
    dest: tuple[str, int]
    data: bytes
    transport: str

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode("utf-8", "replace")

    def message(self):
        return parse(self.data)


# A filter sees each packet as it leaves and returns None (deliver), "drop", "dup" or a delay in
# seconds (delivered that much later: reordering).
Filter = Callable[[Packet], "str | float | None"]


class Network:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.nodes: dict[tuple[str, int], object] = {}
        self.names: dict[str, object] = {}
        self.filters: list[Filter] = []
        self.sent: list[Packet] = []            # every packet that left a node, in order
        self.delivered: list[Packet] = []
        self.undeliverable: list[Packet] = []
        self.events: dict[str, list] = {}
        self._queue: list[tuple[float, int, Packet]] = []
        self._seq = itertools.count()

    # -------------------------------------------------------------- building
    def add(self, name: str, node, address: tuple[str, int]) -> object:
        self.nodes[address] = node
        self.names[name] = node
        node.address = address
        self.events.setdefault(name, [])
        return node

    def ua(self, name: str, port: int, *, now: float | None = None, **config) -> UserAgent:
        config.setdefault("timers", TimerConfig())
        ua = UserAgent(UAConfig(host=LOCAL, port=port, **config),
                       self.now if now is None else now)
        return self.add(name, ua, (LOCAL, port))

    # -------------------------------------------------------------- running
    def _collect(self) -> None:
        for address, node in self.nodes.items():
            for out in node.outgoing():
                packet = Packet(self.now, address, tuple(out.dest), out.data, out.transport)
                self.sent.append(packet)
                action = None
                for f in self.filters:
                    action = f(packet)
                    if action is not None:
                        break
                if action == "drop":
                    continue
                copies = 2 if action == "dup" else 1
                delay = action if isinstance(action, (int, float)) else 0.0
                for _ in range(copies):
                    packet_at = Packet(self.now + delay, packet.src, packet.dest, packet.data,
                                       packet.transport)
                    heapq.heappush(self._queue, (packet_at.at, next(self._seq), packet_at))
        for name, node in self.names.items():
            if isinstance(node, UserAgent):
                self.events[name].extend(node.events())

    def _deliver_due(self) -> bool:
        moved = False
        while self._queue and self._queue[0][0] <= self.now:
            _, _, packet = heapq.heappop(self._queue)
            node = self.nodes.get(packet.dest)
            if node is None:
                self.undeliverable.append(packet)
                continue
            self.delivered.append(packet)
            node.receive(packet.data, packet.src, packet.transport, self.now)
            moved = True
            self._collect()
        return moved

    def run(self, seconds: float = 0.0, *, max_steps: int = 200_000) -> None:
        """Run until ``seconds`` of fake time have passed and nothing is due."""
        until = self.now + seconds
        for _ in range(max_steps):
            self._collect()
            if self._deliver_due():
                continue
            times = [t for t in (node.next_timer() for node in self.nodes.values())
                     if t is not None]
            if self._queue:
                times.append(self._queue[0][0])
            nxt = min(times) if times else None
            if nxt is None or nxt > until:
                self.now = max(self.now, until)
                self._collect()
                return
            self.now = max(self.now, nxt)
            for node in list(self.nodes.values()):
                t = node.next_timer()
                if t is not None and t <= self.now:
                    node.handle_timer(self.now)
        raise AssertionError("the network did not settle (a timer loop?)")

    def settle(self, seconds: float = 300.0) -> None:
        """Run until every UA is idle (or ``seconds`` pass)."""
        end = self.now + seconds
        while self.now < end:
            self.run(1.0)
            if all(n.idle for n in self.names.values() if isinstance(n, UserAgent)) \
                    and not self._queue:
                return

    # -------------------------------------------------------------- looking
    def of(self, name: str, cls=None) -> list:
        evs = self.events[name]
        return [e for e in evs if cls is None or isinstance(e, cls)]

    def lines(self, src: tuple[str, int] | None = None) -> list[str]:
        return [p.first_line for p in self.sent if src is None or p.src == src]

    # -------------------------------------------------------------- faults
    def drop_nth(self, predicate: Callable[[Packet], bool], n: int = 1) -> list[Packet]:
        """Drop the first ``n`` packets matching ``predicate``; returns the dropped list."""
        dropped: list[Packet] = []

        def f(packet: Packet):
            if len(dropped) < n and predicate(packet):
                dropped.append(packet)
                return "drop"
            return None
        self.filters.append(f)
        return dropped


def starts(prefix: str) -> Callable[[Packet], bool]:
    return lambda p: p.first_line.startswith(prefix)


# ------------------------------------------------------------------ far ends without timers
class _NoTimers:
    """A far end without timers: what it sends waits in ``_out`` until the network takes it."""
    _out: list[Outgoing]

    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_timer(self):
        return None

    def handle_timer(self, now: float) -> None:
        pass


# ------------------------------------------------------------------ a record-routing proxy
class Proxy(_NoTimers):
    """Stateless, loose routing (RFC 3261 §16.12), record-routes dialog-creating INVITEs.
    Requests not routed elsewhere go to ``forward_to`` (the registrar/location step)."""

    def __init__(self, forward_to: tuple[str, int] | None = None, record_route: bool = True,
                 strict: bool = False, next_hop: tuple[str, int] | None = None) -> None:
        self.address: tuple[str, int] = ("", 0)
        self.forward_to = forward_to
        self.next_hop = next_hop            # where requests without a Route go (a chain)
        self.record_route = record_route
        self.strict = strict
        self.seen: list[Request] = []
        self._out: list[Outgoing] = []

    def _me(self) -> str:
        return f"sip:{self.address[0]}:{self.address[1]}" + ("" if self.strict else ";lr")

    def receive(self, data: bytes, source, transport: str, now: float) -> None:
        message = parse(data)
        if isinstance(message, Response):
            vias = message.headers.values("Via")
            message.headers.remove("Via")
            for value in vias[1:]:
                message.headers.add("Via", value)
            nxt = Via.parse(vias[1])
            host = nxt.params.get("received") or nxt.host
            port = int(nxt.params.get("rport") or nxt.port or 5060)
            self._out.append(Outgoing(message.encode(), (host, port), transport))
            return
        self.seen.append(message)
        routes = message.headers.values("Route")
        if routes and NameAddr.parse(routes[0]).uri.hostport() == self.address:
            routes = routes[1:]
            message.headers.remove("Route")
            for r in routes:
                message.headers.add("Route", r)
        if message.method == "INVITE" and message.to.tag is None and self.record_route:
            message.headers.prepend("Record-Route", f"<{self._me()}>")
        top = message.headers.values("Via")[0]
        branch = "z9hG4bK" + hashlib.sha1(Via.parse(top).branch.encode()).hexdigest()[:16]
        message.headers.prepend("Via", f"SIP/2.0/{transport.upper()} "
                                       f"{self.address[0]}:{self.address[1]};branch={branch}")
        if routes:
            dest = NameAddr.parse(routes[0]).uri.hostport()
        elif self.next_hop is not None:
            dest = self.next_hop
        elif self.forward_to is not None and message.uri.hostport() == self.address:
            dest = self.forward_to
        else:
            dest = message.uri.hostport()
        self._out.append(Outgoing(message.encode(), dest, transport))


# ------------------------------------------------------------------ a scripted far end
@dataclass
class FarEnd(_NoTimers):
    """Answers each request with whatever ``script(request, far_end)`` returns: a list of
    Response objects (or raw bytes). Keeps every request it got."""
    script: Callable
    address: tuple[str, int] = ("", 0)
    got: list = field(default_factory=list)
    tag: str = field(default_factory=new_tag)
    _out: list = field(default_factory=list)

    def receive(self, data: bytes, source, transport: str, now: float) -> None:
        message = parse(data)
        self.got.append(message)
        if isinstance(message, Response):
            return
        for reply in self.script(message, self) or ():
            raw = reply if isinstance(reply, bytes) else reply.encode()
            via = message.vias[0]
            dest = (via.params.get("received") or source[0],
                    int(via.params.get("rport") or source[1]))
            self._out.append(Outgoing(raw, dest, transport))

    def requests(self, method: str) -> list[Request]:
        return [m for m in self.got if isinstance(m, Request) and m.method == method]

    def reply(self, request: Request, status: int, reason: str | None = None, *,
              headers=(), body: bytes = b"") -> Response:
        resp = make_response(request, status, reason,
                             to_tag=self.tag if status > 100 else None)
        for name, value in headers:
            resp.headers.add(name, value)
        if body:
            resp.headers.add("Content-Type", "application/sdp")
            resp.body = body
        return resp


def contact_of(address: tuple[str, int]) -> str:
    return f"<{URI(scheme='sip', user='far', host=address[0], port=address[1])}>"


# ------------------------------------------------------------------ real sockets
class UdpPump:
    """UserAgents on real UDP sockets (for tests against real peers), their clock
    time.monotonic(); every wait bounded."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[socket.socket, UserAgent]] = {}
        self.events: dict[str, list] = {}

    def add(self, name: str, **config) -> UserAgent:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((LOCAL, 0))
        sock.setblocking(False)
        ua = UserAgent(UAConfig(host=LOCAL, port=sock.getsockname()[1], **config),
                       time.monotonic())
        self.nodes[name] = (sock, ua)
        self.events[name] = []
        return ua

    def _flush(self) -> None:
        for name, (sock, ua) in self.nodes.items():
            for out in ua.outgoing():
                sock.sendto(out.data, out.dest)
            self.events[name].extend(ua.events())

    def run_until(self, done, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._flush()
            if done():
                return
            now = time.monotonic()
            if now > deadline:
                raise AssertionError(f"timed out; events: {self.summary()}")
            timers = [t for _, ua in self.nodes.values() if (t := ua.next_timer()) is not None]
            wait = min([0.05, *[max(0.0, t - now) for t in timers]])
            socks = {sock: (name, ua) for name, (sock, ua) in self.nodes.items()}
            readable, _, _ = select.select(list(socks), [], [], wait)
            for sock in readable:
                try:
                    data, addr = sock.recvfrom(65535)
                except OSError:         # ICMP port unreachable from an earlier send
                    continue
                socks[sock][1].receive(data, addr, "udp", time.monotonic())
            now = time.monotonic()
            for _, ua in self.nodes.values():
                t = ua.next_timer()
                if t is not None and t <= now:
                    ua.handle_timer(now)

    def of(self, name: str, cls) -> list:
        return [e for e in self.events[name] if isinstance(e, cls)]

    def summary(self) -> dict:
        return {n: [f"{e.direction} {e.summary}" if isinstance(e, SipMessage) else repr(e)[:120]
                    for e in evs] for n, evs in self.events.items()}

    def close(self) -> None:
        for sock, _ in self.nodes.values():
            sock.close()
