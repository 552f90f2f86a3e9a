"""SIP transactions: RFC 3261 §17, with the INVITE "Accepted" states of RFC 6026.

Sans-IO, driven like every xmfax core: the user agent (the TU, "transaction user") hands
parsed messages in with :meth:`TransactionLayer.receive`, sends with
:meth:`~TransactionLayer.send_request` / :meth:`~TransactionLayer.respond`, reads the bytes to
put on the wire from :meth:`~TransactionLayer.outgoing` and drives the timers with
:meth:`~TransactionLayer.next_timer` / :meth:`~TransactionLayer.handle_timer`. The clock
(``now``, seconds) is always passed in.

The four machines of §17 (INVITE client, Figure 5; non-INVITE client, Figure 6; INVITE
server, Figure 7; non-INVITE server, Figure 8) are the four tables below, h2 style:
``(state, input) -> (next state, actions)``. A network or timer input missing from a table
is absorbed (a stray retransmission); a TU input missing from a table is a
:class:`LocalProtocolError` (the TU asked for something §17 does not allow).

Choices, documented for the TU:

* **2xx to INVITE (client).** RFC 3261 §17.1.1.2 as RFC 6026 amends it: the INVITE client
  transaction goes to ACCEPTED on the first 2xx and stays there for Timer M (64*T1); *every*
  2xx that arrives meanwhile (retransmissions, and 2xx from other forks, at most
  ``MAX_FORKS`` To tags) is passed up as :class:`ResponseReceived` with that transaction
  (``transaction.state is State.ACCEPTED``) and ``retransmission=True`` when a 2xx with the
  same To tag was passed up before. The UA ACKs each one (§13.2.2.4) with
  :meth:`TransactionLayer.send_ack`. A UAS retransmits its 2xx for 64*T1 after *sending* it
  (§13.3.1.4), so Timer M, started when we *receive* it, covers them all; a response that
  matches no transaction is discarded (§18.1.2), counted in ``stats``.
* **2xx to INVITE (server).** RFC 3261 §17.2.1 as RFC 6026 amends it: ``respond()`` with a
  2xx moves the INVITE server transaction to ACCEPTED for Timer L (64*T1). INVITE
  retransmissions are absorbed there (they never reach the TU as a new call), the TU's own
  2xx retransmissions may go through ``respond()`` again or
  :meth:`TransactionLayer.send_response`, and an ACK that matches it (a peer reusing the
  INVITE's branch) is passed up like any ACK to a 2xx: transaction None.
* **A TU that never answers.** A non-INVITE server transaction without a final response is
  dropped after 64*T1 (the client gave up at Timer F by then) with :class:`TransactionTimeout`;
  an INVITE transaction without a final response (either side) is dropped after
  ``TimerConfig.invite_limit`` (180 s, RFC 3261 §16.6 Timer C's floor), and an INVITE client
  transaction we sent a CANCEL for is dropped 64*T1 after the CANCEL (§9.1).
  ``respond()`` on a transaction that is gone sends the response once, statelessly.
* **Where responses go.** Always back where the request came from: over TCP on the same
  connection, over UDP to the datagram's source address and port (symmetric, as RFC 3581
  asks with ``rport``). Without ``rport`` RFC 3261 §18.2.2 would use the Via's sent-by port
  and honour ``maddr``; we do neither, knowingly: a peer behind NAT or sending from another
  port is still answered, and a forged Via cannot aim our responses at a third party.
  ``received`` (and ``rport``) are written into the request's top Via on arrival (§18.2.1),
  so the responses the TU builds with make_response() carry them.
* **Flood.** At most ``max_transactions`` server transactions (and ``max_bytes`` of stored
  requests) live at once; a new request over either gets a stateless 503 with Retry-After.
* **Closing down.** ``len(layer)`` counts every live transaction; ``layer.pending`` only those
  still waiting for a final response. A driver stopping may leave the lingering ones behind,
  not the pending ones (a CANCELled INVITE's 487 must still be ACKed).
* **Transport errors.** The driver reports a failed send with
  :meth:`TransactionLayer.transport_failed`; the transactions using that destination end with
  :class:`TransportError` (§17.1.4, §17.2.4).
"""
from __future__ import annotations

import enum
import heapq
import ipaddress
import itertools
from collections import Counter
from dataclasses import dataclass, field
from typing import Union

from ..errors import LocalProtocolError
from .message import Headers, Request, Response, SIPParseError, Via, make_response, new_tag

MAGIC_COOKIE = "z9hG4bK"      # RFC 3261 §8.1.1.7
TRYING_DELAY = 0.2            # RFC 3261 §17.2.1: 100 Trying unless the TU answers within 200 ms
MAX_TRANSACTIONS = 10_000
MAX_BYTES = 32 << 20          # stored server requests, counted roughly (headers + body)
MAX_FORKS = 16                # distinct To tags one INVITE client transaction keeps answers for


@dataclass(frozen=True, slots=True)
class TimerConfig:
    """RFC 3261 Table 4 (§A). B = F = H = J = L = M = 64*T1; D = max(32 s, 64*T1) over UDP;
    I = K = T4 over UDP; over a reliable transport D = I = J = K = 0 and A, E, G never run."""
    T1: float = 0.5
    T2: float = 4.0
    T4: float = 5.0
    invite_limit: float = 180.0     # longest an INVITE waits for a final response (see above)

    def __post_init__(self) -> None:
        if not (self.T1 > 0 and self.T2 >= self.T1 and self.T4 > 0 and self.invite_limit > 0):
            raise ValueError(f"bad SIP timers: {self}")


@dataclass(frozen=True, slots=True)
class Outgoing:
    data: bytes
    dest: tuple[str, int]
    transport: str                  # "udp" | "tcp"


class State(enum.Enum):
    CALLING = "Calling"             # INVITE client (Figure 5)
    TRYING = "Trying"               # non-INVITE client and server (Figures 6, 8)
    PROCEEDING = "Proceeding"
    ACCEPTED = "Accepted"           # RFC 6026: an INVITE answered 2xx (Figures 5 and 7 as amended)
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"         # INVITE server, ACK received (Figure 7)
    TERMINATED = "Terminated"


class Kind(enum.Enum):
    INVITE_CLIENT = "INVITE client"
    NON_INVITE_CLIENT = "non-INVITE client"
    INVITE_SERVER = "INVITE server"
    NON_INVITE_SERVER = "non-INVITE server"


class Input(enum.Enum):
    REQUEST = "request retransmission"      # network, server side
    ACK = "ACK"                             # network, INVITE server
    PROVISIONAL = "1xx"                     # network (client) or TU (server)
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "A"; TIMER_B = "B"; TIMER_C = "C"; TIMER_D = "D"        # noqa: E702
    TIMER_E = "E"; TIMER_F = "F"; TIMER_G = "G"; TIMER_H = "H"        # noqa: E702
    TIMER_I = "I"; TIMER_J = "J"; TIMER_K = "K"; TIMER_L = "L"        # noqa: E702
    TIMER_M = "M"
    TIMER_TRYING = "100 Trying"             # §17.2.1, 200 ms
    TIMER_NO_ANSWER = "no final answer"     # non-INVITE server, 64*T1 without a final response
    TIMER_CANCEL = "cancelled"              # §9.1: 64*T1 after our CANCEL


S, I = State, Input
Rule = tuple[State, tuple[str, ...]]

# Actions: "send" the request (client) or the TU's response (server), "resend" the last response,
# "up" the response to the TU, "ack" a non-2xx final, "trying" (a 100 if nothing sent yet),
# "backoff" re-arms the timer that fired at twice its interval, "t2" re-arms it at T2,
# "arm X" starts timer X, "timeout" / "error" report the end to the TU, "up_ack" passes an ACK up.

INVITE_CLIENT: dict[tuple[State, Input], Rule] = {     # RFC 3261 §17.1.1.2, Figure 5 (+ RFC 6026)
    (S.CALLING, I.TIMER_A): (S.CALLING, ("send", "backoff")),
    (S.CALLING, I.TIMER_B): (S.TERMINATED, ("timeout",)),
    (S.CALLING, I.TIMER_C): (S.TERMINATED, ("timeout",)),
    (S.CALLING, I.TIMER_CANCEL): (S.TERMINATED, ("timeout",)),            # §9.1
    (S.CALLING, I.PROVISIONAL): (S.PROCEEDING, ("up",)),
    (S.CALLING, I.SUCCESS): (S.ACCEPTED, ("up", "arm M")),
    (S.CALLING, I.FAILURE): (S.COMPLETED, ("ack", "up", "arm D")),
    (S.PROCEEDING, I.PROVISIONAL): (S.PROCEEDING, ("up",)),
    (S.PROCEEDING, I.SUCCESS): (S.ACCEPTED, ("up", "arm M")),
    (S.PROCEEDING, I.FAILURE): (S.COMPLETED, ("ack", "up", "arm D")),
    (S.PROCEEDING, I.TIMER_C): (S.TERMINATED, ("timeout",)),
    (S.PROCEEDING, I.TIMER_CANCEL): (S.TERMINATED, ("timeout",)),         # §9.1
    (S.ACCEPTED, I.SUCCESS): (S.ACCEPTED, ("up",)),                       # RFC 6026: all 2xx up
    (S.ACCEPTED, I.TIMER_M): (S.TERMINATED, ()),
    (S.COMPLETED, I.FAILURE): (S.COMPLETED, ("ack",)),                    # §17.1.1.2: re-ACK
    (S.COMPLETED, I.TIMER_D): (S.TERMINATED, ()),
}

NON_INVITE_CLIENT: dict[tuple[State, Input], Rule] = {  # RFC 3261 §17.1.2.2, Figure 6
    (S.TRYING, I.TIMER_E): (S.TRYING, ("send", "backoff")),              # min(2E, T2)
    (S.TRYING, I.TIMER_F): (S.TERMINATED, ("timeout",)),
    (S.TRYING, I.PROVISIONAL): (S.PROCEEDING, ("up",)),
    (S.TRYING, I.SUCCESS): (S.COMPLETED, ("up", "arm K")),
    (S.TRYING, I.FAILURE): (S.COMPLETED, ("up", "arm K")),
    (S.PROCEEDING, I.TIMER_E): (S.PROCEEDING, ("send", "t2")),
    (S.PROCEEDING, I.TIMER_F): (S.TERMINATED, ("timeout",)),
    (S.PROCEEDING, I.PROVISIONAL): (S.PROCEEDING, ("up",)),
    (S.PROCEEDING, I.SUCCESS): (S.COMPLETED, ("up", "arm K")),
    (S.PROCEEDING, I.FAILURE): (S.COMPLETED, ("up", "arm K")),
    (S.COMPLETED, I.TIMER_K): (S.TERMINATED, ()),
}

INVITE_SERVER: dict[tuple[State, Input], Rule] = {     # RFC 3261 §17.2.1, Figure 7 (+ RFC 6026)
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, ("resend",)),
    (S.PROCEEDING, I.TIMER_TRYING): (S.PROCEEDING, ("trying",)),
    (S.PROCEEDING, I.PROVISIONAL): (S.PROCEEDING, ("send",)),
    (S.PROCEEDING, I.SUCCESS): (S.ACCEPTED, ("send", "arm L")),
    (S.PROCEEDING, I.FAILURE): (S.COMPLETED, ("send", "arm G", "arm H")),
    (S.PROCEEDING, I.TIMER_C): (S.TERMINATED, ("timeout",)),
    (S.ACCEPTED, I.SUCCESS): (S.ACCEPTED, ("send",)),                    # the TU's retransmission
    (S.ACCEPTED, I.ACK): (S.ACCEPTED, ("up_ack",)),
    (S.ACCEPTED, I.TIMER_L): (S.TERMINATED, ()),
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, ("resend",)),
    (S.COMPLETED, I.TIMER_G): (S.COMPLETED, ("resend", "backoff")),      # min(2G, T2)
    (S.COMPLETED, I.TIMER_H): (S.TERMINATED, ("timeout",)),
    (S.COMPLETED, I.ACK): (S.CONFIRMED, ("arm I",)),
    (S.CONFIRMED, I.TIMER_I): (S.TERMINATED, ()),
}

NON_INVITE_SERVER: dict[tuple[State, Input], Rule] = {  # RFC 3261 §17.2.2, Figure 8
    (S.TRYING, I.PROVISIONAL): (S.PROCEEDING, ("send",)),
    (S.TRYING, I.SUCCESS): (S.COMPLETED, ("send", "arm J")),
    (S.TRYING, I.FAILURE): (S.COMPLETED, ("send", "arm J")),
    (S.TRYING, I.TIMER_NO_ANSWER): (S.TERMINATED, ("timeout",)),
    (S.PROCEEDING, I.REQUEST): (S.PROCEEDING, ("resend",)),
    (S.PROCEEDING, I.PROVISIONAL): (S.PROCEEDING, ("send",)),
    (S.PROCEEDING, I.SUCCESS): (S.COMPLETED, ("send", "arm J")),
    (S.PROCEEDING, I.FAILURE): (S.COMPLETED, ("send", "arm J")),
    (S.PROCEEDING, I.TIMER_NO_ANSWER): (S.TERMINATED, ("timeout",)),
    (S.COMPLETED, I.REQUEST): (S.COMPLETED, ("resend",)),
    (S.COMPLETED, I.TIMER_J): (S.TERMINATED, ()),
}

TABLES: dict[Kind, dict[tuple[State, Input], Rule]] = {
    Kind.INVITE_CLIENT: INVITE_CLIENT, Kind.NON_INVITE_CLIENT: NON_INVITE_CLIENT,
    Kind.INVITE_SERVER: INVITE_SERVER, Kind.NON_INVITE_SERVER: NON_INVITE_SERVER,
}
# §17.1.4, §17.2.4: a transport failure ends a transaction in any state but Terminated.
for _kind, _table in TABLES.items():
    for _state in {state for state, _ in _table}:
        _table[(_state, I.TRANSPORT_ERROR)] = (S.TERMINATED, ("error",))

# What a transaction does when created, and its first state.
START: dict[Kind, Rule] = {
    Kind.INVITE_CLIENT: (S.CALLING, ("send", "arm A", "arm B", "arm C")),
    Kind.NON_INVITE_CLIENT: (S.TRYING, ("send", "arm E", "arm F")),
    Kind.INVITE_SERVER: (S.PROCEEDING, ("arm TRYING", "arm C")),
    Kind.NON_INVITE_SERVER: (S.TRYING, ("arm NO_ANSWER",)),
}

# The timers that live in each state: entering a state stops every other one.
TIMERS: dict[tuple[Kind, State], frozenset[Input]] = {
    (Kind.INVITE_CLIENT, S.CALLING): frozenset({I.TIMER_A, I.TIMER_B, I.TIMER_C, I.TIMER_CANCEL}),
    (Kind.INVITE_CLIENT, S.PROCEEDING): frozenset({I.TIMER_C, I.TIMER_CANCEL}),
    (Kind.INVITE_CLIENT, S.ACCEPTED): frozenset({I.TIMER_M}),
    (Kind.INVITE_CLIENT, S.COMPLETED): frozenset({I.TIMER_D}),
    (Kind.NON_INVITE_CLIENT, S.TRYING): frozenset({I.TIMER_E, I.TIMER_F}),
    (Kind.NON_INVITE_CLIENT, S.PROCEEDING): frozenset({I.TIMER_E, I.TIMER_F}),
    (Kind.NON_INVITE_CLIENT, S.COMPLETED): frozenset({I.TIMER_K}),
    (Kind.INVITE_SERVER, S.PROCEEDING): frozenset({I.TIMER_TRYING, I.TIMER_C}),
    (Kind.INVITE_SERVER, S.ACCEPTED): frozenset({I.TIMER_L}),
    (Kind.INVITE_SERVER, S.COMPLETED): frozenset({I.TIMER_G, I.TIMER_H}),
    (Kind.INVITE_SERVER, S.CONFIRMED): frozenset({I.TIMER_I}),
    (Kind.NON_INVITE_SERVER, S.TRYING): frozenset({I.TIMER_NO_ANSWER}),
    (Kind.NON_INVITE_SERVER, S.PROCEEDING): frozenset({I.TIMER_NO_ANSWER}),
    (Kind.NON_INVITE_SERVER, S.COMPLETED): frozenset({I.TIMER_J}),
}
_RETRANSMIT_TIMERS = frozenset({I.TIMER_A, I.TIMER_E, I.TIMER_G})     # UDP only
_ARMS = {"arm " + timer.name.removeprefix("TIMER_"): timer for timer in Input
         if timer.name.startswith("TIMER_")}


def _duration(timers: TimerConfig, timer: Input, reliable: bool) -> float:
    """RFC 3261 Table 4, and RFC 6026's Timers L and M (64*T1)."""
    t1 = timers.T1
    if timer in (I.TIMER_A, I.TIMER_E, I.TIMER_G):
        return t1
    if timer in (I.TIMER_B, I.TIMER_F, I.TIMER_H, I.TIMER_L, I.TIMER_M, I.TIMER_NO_ANSWER,
                 I.TIMER_CANCEL):
        return 64 * t1
    if timer is I.TIMER_J:
        return 0.0 if reliable else 64 * t1
    if timer is I.TIMER_D:
        return 0.0 if reliable else max(32.0, 64 * t1)
    if timer in (I.TIMER_I, I.TIMER_K):
        return 0.0 if reliable else timers.T4
    if timer is I.TIMER_C:
        return timers.invite_limit
    if timer is I.TIMER_TRYING:
        return TRYING_DELAY
    raise AssertionError(timer)


def classify(status: int) -> Input:
    if 100 <= status <= 199:
        return I.PROVISIONAL
    if 200 <= status <= 299:
        return I.SUCCESS
    if 300 <= status <= 699:
        return I.FAILURE
    raise ValueError(f"status {status} is not a SIP status (100-699)")


# ------------------------------------------------------------------------- transactions
@dataclass(eq=False, repr=False)
class _Transaction:
    kind: Kind
    request: Request
    transport: str
    id: tuple[str, str]                     # (branch, method)
    state: State = S.TRYING
    created: float = 0.0
    error: str | None = None
    _interval: dict[Input, float] = field(default_factory=dict, repr=False)
    _timers: dict[Input, int] = field(default_factory=dict, repr=False)   # -> ticket (-1: due now)

    @property
    def method(self) -> str:
        return self.id[1]

    @property
    def branch(self) -> str:
        return self.id[0]

    @property
    def reliable(self) -> bool:
        return self.transport != "udp"

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self.kind.value} {self.id[1]} {self.id[0]} "
                f"{self.state.value} {self.transport}>")


@dataclass(eq=False, repr=False)
class ClientTransaction(_Transaction):
    dest: tuple[str, int] = ("", 0)
    data: bytes = b""                       # the request as sent (and retransmitted)
    last_response: Response | None = None
    _acks: dict[str | None, bytes] = field(default_factory=dict, repr=False)
    _seen_2xx: set[str | None] = field(default_factory=set, repr=False)


@dataclass(eq=False, repr=False)
class ServerTransaction(_Transaction):
    source: tuple[str, int] = ("", 0)
    last_response: Response | None = None
    _data: bytes | None = field(default=None, repr=False)
    _key: tuple = field(default=(), repr=False)
    _size: int = 0


Transaction = Union[ClientTransaction, ServerTransaction]


# ------------------------------------------------------------------------- events
@dataclass(frozen=True, slots=True)
class RequestReceived:
    request: Request
    transaction: ServerTransaction | None   # None for an ACK to a 2xx (no transaction, §17)
    source: tuple[str, int]
    transport: str
    cancelled: ServerTransaction | None = None   # CANCEL: the INVITE server transaction (§9.2)


@dataclass(frozen=True, slots=True)
class ResponseReceived:
    response: Response
    transaction: ClientTransaction
    retransmission: bool = False            # a 2xx with a To tag already passed up (ACK it again)


@dataclass(frozen=True, slots=True)
class TransactionTimeout:                   # client B/F/C/cancel; server H, C, no final answer
    transaction: Transaction


@dataclass(frozen=True, slots=True)
class TransportError:
    transaction: Transaction
    error: str


Event = Union[RequestReceived, ResponseReceived, TransactionTimeout, TransportError]


# ------------------------------------------------------------------------- helpers
def _same_host(via_host: str, address: str) -> bool:
    """RFC 3261 §18.2.1: does the Via's sent-by host already say where the request came from?"""
    try:
        return ipaddress.ip_address(via_host) == ipaddress.ip_address(address)
    except ValueError:
        return via_host.lower() == address.lower()


def _server_key(request: Request, top: Via, method: str) -> tuple:
    """RFC 3261 §17.2.3 matching; ``method`` is INVITE for an ACK (and for a CANCEL's target)."""
    branch = top.branch
    if branch and branch[:7].lower() == MAGIC_COOKIE.lower():
        return ("3261", branch, top.host.lower(), top.port, method)
    # RFC 2543 peers (no magic cookie): Request-URI, From tag, Call-ID, CSeq number and top Via.
    # The To tag is left out, so an ACK (which carries our tag) finds its INVITE.
    return ("2543", str(request.uri), request.from_.tag, request.call_id, request.cseq[0],
            top.transport.upper(), top.host.lower(), top.port, branch, method)


def _size(message: Request) -> int:
    return len(message.body) + sum(len(n) + len(v) + 4 for n, v in message.headers.items()) + 64


# ------------------------------------------------------------------------- the layer
class TransactionLayer:
    """All the transactions of one user agent (see the module docstring for its choices)."""

    def __init__(self, timers: TimerConfig = TimerConfig(), *,
                 max_transactions: int = MAX_TRANSACTIONS, max_bytes: int = MAX_BYTES) -> None:
        self.timers = timers
        self.max_transactions = max_transactions
        self.max_bytes = max_bytes
        self.stats: Counter[str] = Counter()  # malformed, stray, absorbed, overload, ...
        self._client: dict[tuple[str, str], ClientTransaction] = {}
        self._server: dict[tuple, ServerTransaction] = {}
        self._server_bytes = 0
        self._out: list[Outgoing] = []
        # Timers: the heap holds (deadline, ticket) only; a live ticket maps to its transaction.
        # A stopped timer just loses its ticket, so the stale heap entries left behind keep no
        # transaction (and no request) alive; the heap is rebuilt when they pile up.
        self._heap: list[tuple[float, int]] = []
        self._tickets: dict[int, tuple[Transaction, Input, float]] = {}
        self._heap_limit = 1024
        self._seq = itertools.count()

    # ---- the TU's side
    def send_request(self, request: Request, dest: tuple[str, int], transport: str,
                     now: float) -> ClientTransaction:
        """Start a client transaction (§17.1): the request carries its top Via with a
        z9hG4bK branch; it goes to ``dest`` now and, over UDP, again on Timer A / E."""
        method = request.method.upper()
        if method == "ACK":
            raise LocalProtocolError("an ACK is not a transaction: use send_ack()")
        try:
            top = request.vias[0]
        except (SIPParseError, IndexError) as exc:
            raise LocalProtocolError(f"{method} without a Via to match responses on") from exc
        branch = top.branch
        if not branch or not branch.startswith(MAGIC_COOKIE):
            raise LocalProtocolError(f"{method}: top Via branch must start with {MAGIC_COOKIE}")
        key = (branch, method)
        if key in self._client:
            raise LocalProtocolError(f"{method}: branch {branch} already in use")
        kind = Kind.INVITE_CLIENT if method == "INVITE" else Kind.NON_INVITE_CLIENT
        txn = ClientTransaction(kind=kind, request=request, transport=transport.lower(),
                                id=key, created=now, dest=dest, data=request.encode())
        self._client[key] = txn
        self._start(txn, now, [])
        if method == "CANCEL":                                           # §9.1
            invite = self._client.get((branch, "INVITE"))
            if invite is not None and invite.state in (S.CALLING, S.PROCEEDING):
                self._arm(invite, I.TIMER_CANCEL, now)
        return txn

    def send_ack(self, ack: Request, dest: tuple[str, int], transport: str) -> None:
        """An ACK to a 2xx (§13.2.2.4): sent as is, no transaction."""
        self._send(ack.encode(), dest, transport)

    def send_response(self, response: Response, dest: tuple[str, int], transport: str) -> None:
        """Bytes on the wire, no transaction (the UAS's 2xx retransmissions, §13.3.1.4)."""
        self._send(response.encode(), dest, transport)

    def respond(self, transaction: ServerTransaction, response: Response, now: float) -> None:
        """Send a response through its server transaction (§17.2.1, §17.2.2).

        Raises LocalProtocolError for a move §17 forbids (a second final response, a
        provisional after a final). A transaction that is already gone (timed out) sends the
        response once, statelessly, to where the request came from."""
        if not isinstance(transaction, ServerTransaction):
            raise LocalProtocolError("respond() needs a server transaction")
        try:
            inp = classify(response.status)
        except ValueError as exc:
            raise LocalProtocolError(str(exc)) from exc
        if transaction.state is S.TERMINATED:
            self._send(response.encode(), transaction.source, transaction.transport)
            return
        if (transaction.state, inp) not in TABLES[transaction.kind]:
            raise LocalProtocolError(
                f"{transaction.kind.value} transaction in state {transaction.state.value} "
                f"cannot send {response.status}")
        self._fire(transaction, inp, now, response, [])

    def transport_failed(self, dest: tuple[str, int], transport: str, error: str,
                         now: float) -> list[Event]:
        """The driver could not send to ``dest`` (ICMP unreachable, TCP reset, no route):
        every transaction sending there ends with TransportError (§17.1.4, §17.2.4)."""
        transport = transport.lower()
        events: list[Event] = []
        victims: list[Transaction] = [t for t in self._client.values() if t.dest == dest]
        victims += [t for t in self._server.values() if t.source == dest]
        for txn in victims:
            if txn.transport == transport and txn.state is not S.TERMINATED:
                txn.error = error
                self._fire(txn, I.TRANSPORT_ERROR, now, None, events)
        return events

    # ---- the network's side
    def receive(self, message: Request | Response, source: tuple[str, int], transport: str,
                now: float) -> list[Event]:
        """A parsed message from the network. Never raises on what the far end sent: a
        request we cannot take gets a stateless 400/503 when it can be answered, the rest is
        dropped and counted in ``stats``."""
        transport = transport.lower()
        events: list[Event] = []
        if isinstance(message, Response):
            self._receive_response(message, now, events)
        else:
            self._receive_request(message, source, transport, now, events)
        return events

    def _receive_response(self, response: Response, now: float, events: list[Event]) -> None:
        try:                                                     # §17.1.3
            top = response.vias[0]
            number, method = response.cseq
            inp = classify(response.status)
        except (SIPParseError, ValueError, IndexError):
            self.stats["malformed"] += 1
            return
        txn = self._client.get((top.branch or "", method.upper()))
        if txn is None or txn.request.cseq[0] != number:
            self.stats["stray"] += 1                             # §18.1.2: discarded
            return
        if not self._fire(txn, inp, now, response, events):
            self.stats["absorbed"] += 1

    def _receive_request(self, request: Request, source: tuple[str, int], transport: str,
                         now: float, events: list[Event]) -> None:
        method = request.method.upper()
        try:
            top = request.vias[0]
            number, cseq_method = request.cseq
            _ = (request.call_id, request.from_, request.to)   # §8.1.1: all mandatory
            if cseq_method.upper() != method:
                raise SIPParseError("CSeq method does not match the request")
            key = _server_key(request, top, "INVITE" if method == "ACK" else method)
        except (SIPParseError, ValueError, IndexError) as exc:
            self.stats["malformed"] += 1
            if method != "ACK":                                  # §17: an ACK is never answered
                reason = getattr(exc, "reason", None) or "Bad Request"
                self._stateless(request, getattr(exc, "status", 400), reason, source, transport)
            return
        self._stamp_via(request, top, source)

        if method == "ACK":
            invite = self._server.get(key)
            if invite is not None and invite.state is S.ACCEPTED:
                self._fire(invite, I.ACK, now, request, events)       # RFC 6026: passed up
            elif invite is not None and invite.state is S.PROCEEDING:
                self.stats["malformed"] += 1                         # an ACK before any final
            elif invite is not None and self._acks_final(invite, request):
                if not self._fire(invite, I.ACK, now, request, events):
                    self.stats["absorbed"] += 1                      # Confirmed: absorbed
            else:
                events.append(RequestReceived(request, None, source, transport))   # ACK to 2xx
            return

        txn = self._server.get(key)
        if txn is not None:                                      # a retransmission
            self.stats["retransmission"] += 1
            self._fire(txn, I.REQUEST, now, request, events)
            return
        size = _size(request)
        if len(self._server) >= self.max_transactions or self._server_bytes + size > self.max_bytes:
            self.stats["overload"] += 1                          # no state: §21.5.4
            self._stateless(request, 503, "Service Unavailable", source, transport,
                            extra=(("Retry-After", "5"),))
            return
        kind = Kind.INVITE_SERVER if method == "INVITE" else Kind.NON_INVITE_SERVER
        txn = ServerTransaction(kind=kind, request=request, transport=transport,
                                id=(top.branch or "", method), created=now, source=source,
                                _key=key, _size=size)
        self._server[key] = txn
        self._server_bytes += size
        cancelled = None
        if method == "CANCEL":                                   # §9.2
            cancelled = self._server.get(key[:-1] + ("INVITE",))
        events.append(RequestReceived(request, txn, source, transport, cancelled))
        self._start(txn, now, events)

    @staticmethod
    def _acks_final(invite: ServerTransaction, ack: Request) -> bool:
        """Is this ACK the one for the INVITE's non-2xx final? With a magic-cookie branch the
        match says so (§17.2.3); an RFC 2543 ACK must also carry the To tag we answered with."""
        if invite._key[0] == "3261" or invite.last_response is None:
            return True
        try:
            return ack.to.tag == invite.last_response.to.tag
        except SIPParseError:
            return False

    def _stamp_via(self, request: Request, top: Via, source: tuple[str, int]) -> None:
        """RFC 3261 §18.2.1 "received", RFC 3581 §4 "rport": in the request's top Via, so the
        responses the TU builds from it (make_response copies Vias) say where it came from."""
        host, port = source[0], source[1]
        changed = False
        if "rport" in top.params and top.params["rport"] in (None, ""):
            top.params["rport"] = str(port)
            top.params["received"] = host                        # RFC 3581 §4: always then
            changed = True
        elif not _same_host(top.host, host):
            top.params["received"] = host
            changed = True
        if not changed:
            return
        vias = request.headers.values("Via")
        vias[0] = str(top)
        request.headers.set("Via", ", ".join(vias))      # one field, where the first one was

    def _stateless(self, request: Request, status: int, reason: str, source: tuple[str, int],
                   transport: str, extra: tuple[tuple[str, str], ...] = ()) -> None:
        try:
            response = make_response(request, status, reason, to_tag=new_tag())
            for name, value in extra:
                response.headers.add(name, value)
            _ = (response.vias, response.cseq, response.call_id, response.from_, response.to)
            data = response.encode()
        except (SIPParseError, ValueError):
            return            # §8.2.6.2: nothing to build a valid response from: dropped
        self._send(data, source, transport)

    # ---- timers and output
    def outgoing(self) -> list[Outgoing]:
        out, self._out = self._out, []
        return out

    def next_timer(self) -> float | None:
        heap = self._heap
        while heap and heap[0][1] not in self._tickets:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def handle_timer(self, now: float) -> list[Event]:
        events: list[Event] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, ticket = heapq.heappop(heap)
            live = self._tickets.pop(ticket, None)
            if live is None:
                continue
            txn, timer, _ = live
            del txn._timers[timer]
            self._fire(txn, timer, now, None, events)
        return events

    def __len__(self) -> int:
        return len(self._client) + len(self._server)

    @property
    def pending(self) -> int:
        """Transactions still waiting for a final response (client: Calling, Trying,
        Proceeding; server: the TU has not answered). The others only linger to absorb
        retransmissions (Timers D, I, J, K, L, M): a driver closing down may stop once this is
        0, but not before -- a CANCELled INVITE still needs its 487 ACKed (§17.1.1.3)."""
        waiting = (S.CALLING, S.TRYING, S.PROCEEDING)
        return sum(t.state in waiting for t in self.transactions())

    def transactions(self) -> list[Transaction]:
        return [*self._client.values(), *self._server.values()]

    # ---- the machinery
    def _stop(self, txn: Transaction, timer: Input) -> None:
        ticket = txn._timers.pop(timer, None)
        if ticket is not None:
            self._tickets.pop(ticket, None)

    def _arm(self, txn: Transaction, timer: Input, now: float,
             interval: float | None = None) -> None:
        reliable = txn.reliable
        if timer in _RETRANSMIT_TIMERS and reliable:
            return                                               # §17.1.1.2: no A/E/G over TCP
        if interval is None:
            interval = _duration(self.timers, timer, reliable)
        txn._interval[timer] = interval
        self._stop(txn, timer)
        if interval <= 0:                                        # D/I/J/K over TCP: at once
            txn._timers[timer] = -1
            return
        ticket = next(self._seq)
        txn._timers[timer] = ticket
        self._tickets[ticket] = (txn, timer, now + interval)
        heapq.heappush(self._heap, (now + interval, ticket))
        if len(self._heap) > self._heap_limit:
            self._compact()

    def _compact(self) -> None:
        live = [(deadline, ticket) for ticket, (_, _, deadline) in self._tickets.items()]
        heapq.heapify(live)
        self._heap = live
        self._heap_limit = max(1024, 4 * len(live))

    def _start(self, txn: Transaction, now: float, events: list[Event]) -> None:
        state, actions = START[txn.kind]
        txn.state = state
        self._act(txn, None, actions, now, None, events)

    def _fire(self, txn: Transaction, inp: Input, now: float,
              message: Request | Response | None, events: list[Event]) -> bool:
        """One transition of the table; False when the input is not in it (absorbed)."""
        rule = TABLES[txn.kind].get((txn.state, inp))
        if rule is None:
            return False
        state, actions = rule
        if state is not txn.state:
            keep = TIMERS.get((txn.kind, state), frozenset())
            for timer in [t for t in txn._timers if t not in keep]:
                self._stop(txn, timer)
            txn.state = state
        self._act(txn, inp, actions, now, message, events)
        return True

    def _act(self, txn: Transaction, inp: Input | None, actions: tuple[str, ...], now: float,
             message: Request | Response | None, events: list[Event]) -> None:
        for action in actions:
            if action == "send":
                if isinstance(txn, ClientTransaction):
                    self._send(txn.data, txn.dest, txn.transport)
                else:
                    assert isinstance(message, Response)
                    txn.last_response, txn._data = message, message.encode()
                    self._send(txn._data, txn.source, txn.transport)
            elif action == "resend":
                if isinstance(txn, ServerTransaction) and txn._data is not None:
                    self._send(txn._data, txn.source, txn.transport)
            elif action == "trying":
                if isinstance(txn, ServerTransaction) and txn._data is None:
                    self._trying(txn)
            elif action == "up":
                assert isinstance(txn, ClientTransaction) and isinstance(message, Response)
                event = self._up(txn, message)
                if event is not None:
                    events.append(event)
            elif action == "up_ack":
                assert isinstance(txn, ServerTransaction) and isinstance(message, Request)
                events.append(RequestReceived(message, None, txn.source, txn.transport))
            elif action == "ack":
                assert isinstance(txn, ClientTransaction) and isinstance(message, Response)
                self._ack(txn, message)
            elif action == "backoff":
                assert inp is not None
                interval = 2 * txn._interval[inp]
                if txn.kind is not Kind.INVITE_CLIENT:            # §17.1.2.2, §17.2.1: cap T2
                    interval = min(interval, self.timers.T2)
                self._arm(txn, inp, now, interval)
            elif action == "t2":
                assert inp is not None
                self._arm(txn, inp, now, self.timers.T2)
            elif action in _ARMS:
                self._arm(txn, _ARMS[action], now)
            elif action == "timeout":
                events.append(TransactionTimeout(txn))
            elif action == "error":
                events.append(TransportError(txn, txn.error or "transport error"))
            else:
                raise AssertionError(action)
        if txn.state is S.TERMINATED:
            self._remove(txn)
            return
        for timer, ticket in list(txn._timers.items()):          # zero-length timers
            if ticket < 0 and txn._timers.get(timer) == ticket:
                del txn._timers[timer]
                self._fire(txn, timer, now, None, events)
                if txn.state is S.TERMINATED:
                    return

    def _up(self, txn: ClientTransaction, response: Response) -> ResponseReceived | None:
        txn.last_response = response
        retransmission = False
        if 200 <= response.status <= 299:
            try:
                tag = response.to.tag
            except SIPParseError:
                tag = None
            retransmission = tag in txn._seen_2xx
            if not retransmission and len(txn._seen_2xx) >= MAX_FORKS:
                self.stats["forks"] += 1               # a flood of "forks": not ours to ACK
                return None
            txn._seen_2xx.add(tag)
        return ResponseReceived(response, txn, retransmission)

    def _ack(self, txn: ClientTransaction, response: Response) -> None:
        """RFC 3261 §17.1.1.3: the ACK for a non-2xx final is built by the transaction."""
        try:
            tag = response.to.tag
        except SIPParseError:
            tag = None
        data = txn._acks.get(tag)
        if data is None:
            request = txn.request
            headers = Headers()
            headers.add("Via", request.headers.values("Via")[0])
            for route in request.headers.values("Route"):
                headers.add("Route", route)
            headers.add("Max-Forwards", "70")
            headers.add("From", request.headers.get("From") or "")
            headers.add("To", response.headers.get("To") or request.headers.get("To") or "")
            headers.add("Call-ID", request.headers.get("Call-ID") or "")
            headers.add("CSeq", f"{request.cseq[0]} ACK")
            data = Request("ACK", request.uri, headers).encode()
            if len(txn._acks) < MAX_FORKS:
                txn._acks[tag] = data
        self._send(data, txn.dest, txn.transport)

    def _trying(self, txn: ServerTransaction) -> None:
        """RFC 3261 §17.2.1: 100 Trying (no To tag, §8.2.6.2; Timestamp copied, §8.2.6.1)."""
        try:
            response = make_response(txn.request, 100, "Trying")
        except (SIPParseError, ValueError):
            return
        txn.last_response, txn._data = response, response.encode()
        self._send(txn._data, txn.source, txn.transport)

    def _remove(self, txn: Transaction) -> None:
        for timer in list(txn._timers):
            self._stop(txn, timer)
        if isinstance(txn, ClientTransaction):
            if self._client.get(txn.id) is txn:
                del self._client[txn.id]
        elif self._server.get(txn._key) is txn:
            del self._server[txn._key]
            self._server_bytes -= txn._size

    def _send(self, data: bytes, dest: tuple[str, int], transport: str) -> None:
        self._out.append(Outgoing(data, dest, transport.lower()))
