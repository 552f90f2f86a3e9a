"""The SIP user agent of xmfax: calls, dialogs, re-INVITE to T.38, CANCEL, BYE, OPTIONS,
REGISTER and digest auth (RFC 3261 §8, §9, §12-§15, §22; RFC 3264 for offer/answer).

Sans-IO, like the rest of xmfax/sip: bytes and time go in (``receive``, ``handle_timer``),
``Outgoing`` datagrams/segments and events come out (``outgoing``, ``events``). The
transactions below (xmfax/sip/transaction.py) retransmit and match; this module decides.

Calls are named by their Call-ID. Every command that ends a call emits its CallEnded at once;
the messages that tidy up after it (CANCEL, BYE, the ACK of a late 2xx) follow on their own."""
from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from ..errors import LocalProtocolError
from ..t38.config import T38Config
from . import sdp as _sdp
from .auth import Credentials
from .dialog import (AuthState, Dialog, build_request, end_reason, redacted_headers,
                     summarize, uri_user)
from .events import (Answered, CallEnded, CallInfo, CallProgress, IncomingCall, MediaChanged,
                     MediaRefused, SipMessage)
from .message import (NameAddr, Request, Response, SIPParseError, URI, Via, error_response,
                      make_response, new_call_id, new_tag, parse)
from .register import Registration
from .transaction import (Outgoing, RequestReceived, TimerConfig, TransactionLayer,
                          TransactionTimeout, TransportError)

__all__ = ["UAConfig", "UserAgent", "Outgoing", "ALLOW"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
SUPPORTED_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"})
_FINISHED_KEPT = 1000                   # snapshots of ended calls kept for call()
_random = secrets.SystemRandom()


@dataclass
class UAConfig:
    host: str
    port: int
    transport: str = "udp"
    user: str = "xmfax"
    display_name: str | None = None
    from_uri: str | None = None
    credentials: Credentials | None = None
    t38: T38Config = field(default_factory=T38Config)
    offer: str = "audio"
    t38_switch_after: float | None = 1.0
    registrar: str | None = None
    register_expires: int = 3600
    outbound_proxy: tuple[str, int] | None = None
    user_agent: str = "xmfax"
    timers: TimerConfig = field(default_factory=TimerConfig)
    max_calls: int = 500
    invite_timeout: float = 60.0
    max_redirects: int = 3

    def __post_init__(self) -> None:
        self.transport = self.transport.lower()
        if self.transport not in ("udp", "tcp"):
            raise ValueError(f"transport {self.transport!r}: udp or tcp")
        if self.offer not in ("audio", "t38"):
            raise ValueError(f"offer {self.offer!r}: audio or t38")


class State(str, Enum):
    CALLING = "calling"             # outbound: INVITE sent, nothing back yet
    EARLY = "early"                 # outbound: a provisional came back
    INCOMING = "incoming"           # inbound: INVITE received, the driver has not answered
    ANSWERING = "answering"         # inbound: our 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    CANCELLING = "cancelling"       # outbound: hung up before the answer
    ENDING = "ending"               # BYE sent
    ENDED = "ended"


@dataclass(eq=False)
class _Call:
    call_id: str
    role: str                       # "outbound" | "inbound"
    transport: str
    sdp: _sdp.SdpSession
    started: float
    state: State
    audio_port: int | None = None
    t38_port: int | None = None
    local_tag: str = ""
    invite: Request | None = None   # outbound: our latest INVITE; inbound: theirs
    invite_txn: object = None       # its transaction while no final response went/came
    invite_dest: tuple[str, int] | None = None
    offer: object = None            # outbound: the SDP offer in ``invite``
    remote_offer: object = None     # inbound: the SDP offer of their INVITE
    dialog: Dialog | None = None
    media: object = None            # Negotiated
    ani: str | None = None
    dnis: str | None = None
    headers: tuple[tuple[str, str], ...] = ()
    source: tuple[str, int] | None = None
    provisional: bool = False
    cancel_wanted: bool = False     # hung up before any provisional: CANCEL when one comes
    cancel_sent: bool = False
    ended: bool = False
    end_reason: str | None = None
    final_status: int | None = None
    redirects: int = 0
    fell_back: bool = False         # re-offered audio after T.38 was refused
    auth: AuthState = field(default_factory=AuthState)
    timers: dict[str, float] = field(default_factory=dict)
    acks: dict[int, tuple[Request, tuple[str, int], str]] = field(default_factory=dict)
    # our 2xx to an INVITE, retransmitted until the ACK (RFC 3261 §13.3.1.4)
    ok: Response | None = None
    ok_dest: tuple[str, int] | None = None
    ok_transport: str = "udp"
    ok_interval: float = 0.5
    ok_cseq: int = 0
    ok_kind: str = "initial"        # "initial" | "reinvite"
    ok_media: object = None
    # our re-INVITE
    reinvite_txn: object = None
    reinvite_offer: object = None
    reinvite_request: Request | None = None
    switch_wanted: bool = False
    bye_wanted: bool = False        # hang up as soon as the ACK for our 2xx comes
    live: set = field(default_factory=set)      # ids of our client transactions still running
    answered_at: float | None = None
    t38_switch: dict | None = None

    def info(self) -> CallInfo:
        d = self.dialog
        return CallInfo(
            call_id=self.call_id, state=State.ENDED.value if self.ended else self.state.value,
            role=self.role, ani=self.ani, dnis=self.dnis, media=self.media,
            remote_target=str(d.remote_target) if d else None,
            route_set=tuple(d.route_set) if d else (), final_status=self.final_status,
            transport=self.transport, headers=self.headers, started=self.started,
            answered=self.answered_at, t38_switch=dict(self.t38_switch) if self.t38_switch
            else None, end_reason=self.end_reason)


class UserAgent:
    """One SIP endpoint: any number of calls both ways and one registration."""

    def __init__(self, config: UAConfig, now: float) -> None:
        self.config = config
        self.txn = TransactionLayer(config.timers)
        self._calls: dict[str, _Call] = {}
        self._finished: dict[str, CallInfo] = {}
        self._owners: dict[object, tuple[str, _Call | None]] = {}
        self._out: list[Outgoing] = []
        self._events: list = []
        self._late_acks: dict[tuple[str, int], tuple[Request, tuple[str, int], str, float]] = {}
        self._now = now
        self.dropped = 0                # messages thrown away (garbage, stray responses)
        self.errors: list[str] = []     # internal errors caught at the boundary (should be none)
        identity = URI.parse(config.from_uri) if config.from_uri else \
            URI(scheme="sip", user=config.user, host=config.host)
        self._identity = identity
        self.registration = (Registration.create(config.registrar, config.host,
                                                 config.register_expires)
                             if config.registrar else None)
        self._register_request: Request | None = None

    # ------------------------------------------------------------------ driver -> core
    def receive(self, data: bytes, source: tuple[str, int], transport: str, now: float) -> None:
        """One datagram, or one framed message from a stream. Never raises."""
        self._now = now
        transport = transport.lower()
        try:
            self._receive(data, source, transport, now)
        except Exception as exc:     # the boundary: a bug here must not take the driver down
            self.dropped += 1
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self._flush(now)

    def next_timer(self) -> float | None:
        times = [t for call in self._calls.values() for t in call.timers.values()]
        t = self.txn.next_timer()
        if t is not None:
            times.append(t)
        reg = self.registration
        if reg is not None and reg.refresh_at is not None and not reg.pending:
            times.append(reg.refresh_at)
        return min(times) if times else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        try:
            for ev in self.txn.handle_timer(now):
                self._dispatch(ev, now)
            for call in list(self._calls.values()):
                for name, at in sorted(call.timers.items(), key=lambda kv: kv[1]):
                    if at <= now and call.timers.get(name) == at:
                        del call.timers[name]
                        self._fire(call, name, now)
            reg = self.registration
            if reg is not None and reg.refresh_at is not None and reg.refresh_at <= now \
                    and not reg.pending:
                reg.refresh_at = None
                self._send_register(reg.expires, now)
            for key, late in list(self._late_acks.items()):
                if late[3] <= now:
                    del self._late_acks[key]
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        self._flush(now)

    def outgoing(self) -> list[Outgoing]:
        self._flush(self._now)
        out, self._out = self._out, []
        return out

    def events(self) -> list:
        self._flush(self._now)
        evs, self._events = self._events, []
        return evs

    @property
    def idle(self) -> bool:
        reg = self.registration
        return not self._calls and len(self.txn) == 0 and not (reg is not None and reg.pending)

    def call(self, call_id: str) -> CallInfo:
        call = self._calls.get(call_id)
        if call is not None:
            return call.info()
        return self._finished[call_id]

    # ------------------------------------------------------------------ commands
    def invite(self, target: str, *, audio_port: int | None, t38_port: int | None, now: float,
               headers: Sequence[tuple[str, str]] = ()) -> str:
        self._now = now
        cfg = self.config
        uri = URI.parse(target)
        if uri.scheme not in ("sip", "sips", "tel"):
            raise LocalProtocolError(f"SIP target {target!r}: not a sip:, sips: or tel: URI")
        if not uri.host and cfg.outbound_proxy is None:
            raise LocalProtocolError(f"SIP target {target!r}: no host and no outbound proxy")
        if audio_port is None and t38_port is None:
            raise LocalProtocolError("invite() needs an audio port or a T.38 port")
        transport = uri.transport or cfg.transport
        ruri = URI(scheme=uri.scheme, user=uri.user, host=uri.host, port=uri.port,
                   params=dict(uri.params))
        call_id = new_call_id(cfg.host)
        call = _Call(call_id=call_id, role="outbound", transport=transport,
                     sdp=_sdp.SdpSession(cfg.host, user=cfg.user), started=now,
                     state=State.CALLING, audio_port=audio_port, t38_port=t38_port,
                     local_tag=new_tag(), ani=uri_user(self._identity), dnis=uri_user(ruri))
        kind = cfg.offer if (t38_port if cfg.offer == "t38" else audio_port) is not None else \
            ("audio" if cfg.offer == "t38" else "t38")
        call.offer = self._make_offer(call, kind)
        self._calls[call_id] = call
        call.invite_dest = cfg.outbound_proxy or ruri.hostport()
        request = build_request(
            "INVITE", ruri, call_id=call_id, cseq=1,
            from_=NameAddr(uri=self._identity, display=cfg.display_name,
                           params={"tag": call.local_tag}),
            to=NameAddr(uri=URI(scheme=ruri.scheme, user=ruri.user, host=ruri.host,
                                port=ruri.port)),
            via_host=cfg.host, via_port=cfg.port, transport=transport,
            contact=self._contact(transport), user_agent=cfg.user_agent,
            extra=(("Allow", ALLOW), *headers), body=call.offer.encode())
        self._send_invite(call, request, now)
        call.timers["invite_timeout"] = now + cfg.invite_timeout
        self._flush(now)
        return call_id

    def answer(self, call_id: str, *, audio_port: int | None, t38_port: int | None,
               now: float) -> None:
        self._now = now
        call = self._inbound(call_id)
        if call is None:
            return
        accept = tuple(k for k, port in (("t38", t38_port), ("audio", audio_port))
                       if port is not None)
        if not accept:
            raise LocalProtocolError("answer() needs an audio port or a T.38 port")
        call.audio_port, call.t38_port = audio_port, t38_port
        try:
            answer, media = call.sdp.answer(call.remote_offer, audio_port=audio_port,
                                            t38_port=t38_port, t38=self.config.t38,
                                            accept=accept)
        except _sdp.NotAcceptable as exc:
            self._respond(call.invite_txn, call.invite, 488, tag=call.local_tag, now=now)
            call.invite_txn = None
            self._end(call, "not_acceptable", 488, "local",
                      f"nothing in the offer we can take: {exc.reason}", now)
            self._flush(now)
            return
        self._send_2xx(call, call.invite_txn, call.invite, answer, media, "initial", now)
        call.invite_txn = None
        call.state = State.ANSWERING
        if media.kind == "t38":
            call.t38_switch = {"by": "offer", "t": now - call.started}
        self._flush(now)

    def reject(self, call_id: str, status: int, reason: str | None, now: float) -> None:
        self._now = now
        if not 300 <= status <= 699:
            raise LocalProtocolError(f"reject() status {status}: must be 300..699")
        call = self._inbound(call_id)
        if call is None:
            return
        self._respond(call.invite_txn, call.invite, status, reason, tag=call.local_tag, now=now)
        call.invite_txn = None
        self._end(call, end_reason(status), status, "local", f"rejected with {status}", now)
        self._flush(now)

    def ringing(self, call_id: str, now: float) -> None:
        self._now = now
        call = self._inbound(call_id)
        if call is None:
            return
        self._respond(call.invite_txn, call.invite, 180, tag=call.local_tag, now=now,
                      contact=True, record_route=True)
        self._flush(now)

    def hangup(self, call_id: str, now: float) -> None:
        """Confirmed: BYE. Outbound, not answered: CANCEL (once a provisional came, RFC 3261
        §9.1). Inbound, not answered: 480. Ending an ended call does nothing."""
        self._now = now
        call = self._calls.get(call_id)
        if call is None or call.ended:
            return
        if call.role == "outbound" and call.dialog is None:
            call.state = State.CANCELLING
            if call.provisional:
                self._send_cancel(call, now)
            else:
                call.cancel_wanted = True
            call.timers.pop("invite_timeout", None)
            # RFC 3261 §9.1: no final response 64*T1 after the CANCEL: the INVITE is over
            call.timers["cancel_giveup"] = now + 64 * self.config.timers.T1
            self._end(call, "cancelled", None, "local", "hung up before the answer", now)
        elif call.state is State.INCOMING:
            self._respond(call.invite_txn, call.invite, 480, tag=call.local_tag, now=now)
            call.invite_txn = None
            self._end(call, "hangup", 480, "local", "hung up before answering", now)
        elif call.state is State.ANSWERING:
            # RFC 3261 §15: the callee must not send BYE before the ACK (or its time-out)
            call.bye_wanted = True
            self._end(call, "hangup", None, "local", "hung up", now)
        else:
            self._send_bye(call, now)
            self._end(call, "hangup", None, "local", "hung up", now)
        self._flush(now)

    def switch_to_t38(self, call_id: str, now: float) -> None:
        self._now = now
        call = self._calls.get(call_id)
        if call is None or call.ended:
            return
        if call.t38_port is None:
            raise LocalProtocolError(f"call {call_id}: no T.38 port to switch to")
        call.switch_wanted = True
        self._reinvite_t38(call, now)
        self._flush(now)

    def register(self, now: float) -> None:
        self._now = now
        reg = self.registration
        if reg is None:
            raise LocalProtocolError("register(): no registrar configured")
        if not reg.pending:
            self._send_register(reg.expires, now)
        self._flush(now)

    def unregister(self, now: float) -> None:
        self._now = now
        reg = self.registration
        if reg is None:
            return
        if reg.granted or reg.pending:
            self._send_register(0, now)
        reg.refresh_at = None
        self._flush(now)

    def close(self, now: float) -> None:
        for call_id in list(self._calls):
            self.hangup(call_id, now)
        self.unregister(now)

    # ------------------------------------------------------------------ plumbing
    def _flush(self, now: float) -> None:
        for out in self.txn.outgoing():
            self._send_raw(out, now)

    def _send_raw(self, out: Outgoing, now: float) -> None:
        self._out.append(out)
        summary, call_id = summarize(out.data)
        self._events.append(SipMessage(now, "out", call_id, summary))

    def _contact_uri(self, transport: str) -> URI:
        cfg = self.config
        return URI(scheme="sip", user=cfg.user, host=cfg.host, port=cfg.port,
                   params={"transport": "tcp"} if transport == "tcp" else {})

    def _contact(self, transport: str) -> str:
        return f"<{self._contact_uri(transport)}>"

    def _inbound(self, call_id: str) -> _Call | None:
        """The unanswered inbound call ``call_id``; None if it ended meanwhile (a CANCEL raced
        the driver's decision: CallEnded says so)."""
        call = self._calls.get(call_id)
        if call is None:
            if call_id in self._finished:
                return None
            raise LocalProtocolError(f"no call {call_id!r}")
        if call.role != "inbound":
            raise LocalProtocolError(f"call {call_id!r} is outbound")
        if call.ended or call.state is not State.INCOMING:
            if call.ended:
                return None
            raise LocalProtocolError(f"call {call_id!r} already answered")
        return call

    def _send(self, request: Request, dest: tuple[str, int], transport: str, kind: str,
              call: _Call | None, now: float):
        txn = self.txn.send_request(request, dest, transport, now)
        self._owners[txn.id] = (kind, call)
        if call is not None:
            call.live.add(txn.id)
        return txn

    def _respond(self, txn, request: Request, status: int, reason: str | None = None, *,
                 now: float, tag: str | None = None, contact: bool = False,
                 record_route: bool = False, extra: Sequence[tuple[str, str]] = (),
                 body: bytes = b"", transport: str | None = None) -> Response:
        if tag is None and status > 100:
            tag = new_tag()         # RFC 3261 §8.2.6.2: a UAS response carries a To tag
        response = make_response(request, status, reason, to_tag=tag if status > 100 else None)
        if record_route:            # RFC 3261 §12.1.1
            for rr in request.headers.values("Record-Route"):
                response.headers.add("Record-Route", rr)
        if contact:
            response.headers.add("Contact", self._contact(
                transport or getattr(txn, "transport", None) or self.config.transport))
        response.headers.add("Server", self.config.user_agent)
        for name, value in extra:
            response.headers.add(name, value)
        if body:
            response.headers.add("Content-Type", "application/sdp")
            response.body = body
        if txn is not None:
            self.txn.respond(txn, response, now)
        return response

    def _end(self, call: _Call, reason: str, status: int | None, by: str, detail: str,
             now: float) -> None:
        if not call.ended:
            call.ended = True
            call.end_reason = reason
            if status is not None:
                call.final_status = status
            for name in ("t38_switch", "glare", "invite_timeout"):
                call.timers.pop(name, None)
            self._events.append(CallEnded(now, call.call_id, reason, status, by, detail))
        self._maybe_reap(call, now)

    def _maybe_reap(self, call: _Call, now: float) -> None:
        if not call.ended or call.live or call.ok is not None or call.bye_wanted:
            return
        if call.role == "outbound" and call.invite_txn is not None:
            return
        call.state = State.ENDED
        call.timers.clear()
        self._calls.pop(call.call_id, None)
        self._finished[call.call_id] = call.info()
        while len(self._finished) > _FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]
        linger = now + 64 * self.config.timers.T1   # 2xx retransmissions still to ACK
        for cseq, (ack, dest, transport) in call.acks.items():
            self._late_acks[(call.call_id, cseq)] = (ack, dest, transport, linger)

    # ------------------------------------------------------------------ incoming
    def _receive(self, data: bytes, source: tuple[str, int], transport: str,
                 now: float) -> None:
        try:
            message = parse(data)
        except SIPParseError as exc:
            summary, call_id = summarize(data[:2000])
            self._events.append(SipMessage(now, "in", call_id,
                                           f"{summary} (malformed: {exc.reason})"))
            self._answer_malformed(data, exc, source, transport, now)
            return
        summary, call_id = summarize(data)
        self._events.append(SipMessage(now, "in", call_id, summary))
        try:
            events = self.txn.receive(message, source, transport, now)
        except SIPParseError as exc:
            self._answer_malformed(data, exc, source, transport, now)
            return
        for ev in events:
            self._dispatch(ev, now)

    def _answer_malformed(self, data: bytes, exc: SIPParseError, source: tuple[str, int],
                          transport: str, now: float) -> None:
        reply = error_response(data, exc)
        if reply is None:
            self.dropped += 1
            return
        self._send_raw(Outgoing(reply, source, transport), now)

    def _dispatch(self, ev, now: float) -> None:
        if isinstance(ev, RequestReceived):
            try:
                self._on_request(ev, now)
            except SIPParseError as exc:        # a header we needed is malformed: 400
                self._answer_malformed(ev.request.encode(), exc, ev.source, ev.transport, now)
                if ev.transaction is not None:
                    self._reap_by_request(ev.request, now)
        elif isinstance(ev, (TransactionTimeout, TransportError)):
            self._on_txn_failure(ev.transaction, getattr(ev, "error", None), now)
        elif getattr(ev, "response", None) is not None:
            self._on_response(ev.response, getattr(ev, "transaction", None), now)

    def _reap_by_request(self, request: Request, now: float) -> None:
        pass    # nothing was created for a request we could not read

    def _on_request(self, ev: RequestReceived, now: float) -> None:
        request, txn = ev.request, ev.transaction
        method = request.method
        if method == "ACK":
            self._on_ack(request, now)
            return
        if method == "CANCEL":
            self._on_cancel(ev, now)
            return
        if method not in SUPPORTED_METHODS:                       # RFC 3261 §8.2.1
            self._respond(txn, request, 405, now=now, extra=(("Allow", ALLOW),))
            return
        require = request.headers.values("Require")
        if require:                                               # RFC 3261 §8.2.2.3
            self._respond(txn, request, 420, now=now,
                          extra=(("Unsupported", ", ".join(require)),))
            return
        if request.uri.scheme not in ("sip", "sips", "tel"):      # RFC 3261 §8.2.2.1
            self._respond(txn, request, 416, now=now)
            return
        call_id = request.call_id
        to_tag = request.to.tag
        if to_tag is None:
            if method == "INVITE":
                self._on_new_invite(ev, now)
            elif method == "OPTIONS":
                self._respond_options(txn, request, now)
            else:                                                 # BYE outside a dialog
                self._respond(txn, request, 481, now=now)
            return
        call = self._calls.get(call_id)
        dialog = call.dialog if call is not None else None
        if dialog is None or dialog.local_tag != to_tag or \
                dialog.remote_tag != request.from_.tag:
            self._respond(txn, request, 481, now=now)            # RFC 3261 §12.2.2
            return
        cseq = request.cseq[0]
        if dialog.remote_cseq is not None and cseq <= dialog.remote_cseq:
            self._respond(txn, request, 500, "CSeq Out of Order", now=now)   # §12.2.2
            return
        dialog.remote_cseq = cseq
        if method == "BYE":
            self._respond(txn, request, 200, now=now)
            call.ok = None
            call.bye_wanted = False
            call.timers.pop("ok_retx", None)
            call.timers.pop("no_ack", None)
            if call.invite_txn is not None and call.role == "inbound":
                # RFC 3261 §15.1.2: BYE in an early dialog: the INVITE gets 487
                self._respond(call.invite_txn, call.invite, 487, tag=call.local_tag, now=now)
                call.invite_txn = None
            self._end(call, "hangup", None, "remote", "BYE from the far end", now)
            self._maybe_reap(call, now)
        elif method == "OPTIONS":
            self._respond_options(txn, request, now, tag=to_tag)
        else:
            self._on_reinvite(call, ev, now)

    def _respond_options(self, txn, request: Request, now: float, tag: str | None = None):
        # RFC 3261 §11.2: what we would say to an INVITE, with our capabilities
        self._respond(txn, request, 200, now=now, tag=tag, contact=True,
                      extra=(("Allow", ALLOW), ("Accept", "application/sdp")))

    def _on_new_invite(self, ev: RequestReceived, now: float) -> None:
        request, txn = ev.request, ev.transaction
        call_id = request.call_id
        cfg = self.config
        if call_id in self._calls:                                # RFC 3261 §8.2.2.2
            self._respond(txn, request, 482, now=now)
            return
        if len(self._calls) >= cfg.max_calls:
            self._respond(txn, request, 503, now=now, extra=(("Retry-After", "5"),))
            return
        content_type = request.content_type
        if not request.body:
            # an INVITE without an offer (offer in the 2xx, answer in the ACK) is not done
            self._respond(txn, request, 488, now=now,
                          extra=(("Warning", '399 xmfax "an SDP offer is required"'),))
            return
        if content_type != "application/sdp":
            self._respond(txn, request, 415, now=now, extra=(("Accept", "application/sdp"),))
            return
        try:
            offer = _sdp.SessionDescription.parse(request.body)
        except (_sdp.SDPError, ValueError) as exc:
            self._respond(txn, request, 400, "Bad SDP", now=now,
                          extra=(("Warning", f'399 xmfax "{_quote(str(exc))}"'),))
            return
        kinds = _sdp.offer_kinds(offer)
        if not kinds:
            self._respond(txn, request, 488, now=now)
            return
        local_tag = new_tag()
        dialog = Dialog.as_uas(request, local_tag, ev.transport, ev.source)
        ani = None
        pai = request.headers.values("P-Asserted-Identity")
        for value in pai:
            try:
                ani = uri_user(NameAddr.parse(value).uri)
            except SIPParseError:
                continue
            if ani:
                break
        if not ani:
            ani = uri_user(request.from_.uri)
        dnis = uri_user(request.uri) or uri_user(request.to.uri)
        call = _Call(call_id=call_id, role="inbound", transport=ev.transport,
                     sdp=_sdp.SdpSession(cfg.host, user=cfg.user), started=now,
                     state=State.INCOMING, local_tag=local_tag, invite=request,
                     invite_txn=txn, remote_offer=offer, dialog=dialog, ani=ani, dnis=dnis,
                     headers=redacted_headers(request.headers), source=ev.source)
        self._calls[call_id] = call
        self._respond(txn, request, 100, now=now)
        self._events.append(IncomingCall(now, call_id, ani, dnis, call.headers, kinds,
                                         ev.source))

    def _on_cancel(self, ev: RequestReceived, now: float) -> None:
        request, txn, invite_txn = ev.request, ev.transaction, ev.cancelled
        call = self._calls.get(request.call_id)
        if invite_txn is None or call is None:                    # RFC 3261 §9.2
            self._respond(txn, request, 481, now=now)
            return
        self._respond(txn, request, 200, now=now, tag=call.local_tag)
        if call.role == "inbound" and call.invite_txn is invite_txn and not call.ended:
            self._respond(invite_txn, call.invite, 487, tag=call.local_tag, now=now)
            call.invite_txn = None
            self._end(call, "cancelled", 487, "remote", "CANCEL from the caller", now)

    def _on_ack(self, request: Request, now: float) -> None:
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is None or call.ok is None or \
                request.cseq[0] != call.ok_cseq or call.dialog.remote_tag != request.from_.tag:
            return                              # a retransmitted or stray ACK: nothing to do
        kind, media = call.ok_kind, call.ok_media
        call.ok = None
        call.timers.pop("ok_retx", None)
        call.timers.pop("no_ack", None)
        if call.bye_wanted:
            call.bye_wanted = False
            self._send_bye(call, now)
            self._maybe_reap(call, now)
            return
        if call.ended:
            self._maybe_reap(call, now)
            return
        call.media = media
        if kind == "initial":
            call.state = State.CONFIRMED
            call.answered_at = now
            self._events.append(Answered(now, call.call_id, media))
            self._arm_switch(call, now)
        else:
            if media.kind == "t38":
                call.timers.pop("t38_switch", None)
                if call.t38_switch is None:
                    call.t38_switch = {"by": "remote", "t": now - call.started}
            self._events.append(MediaChanged(now, call.call_id, media, "remote"))
        if call.switch_wanted:
            self._reinvite_t38(call, now)

    def _on_reinvite(self, call: _Call, ev: RequestReceived, now: float) -> None:
        request, txn = ev.request, ev.transaction
        if call.ended or call.state is State.ENDING:
            self._respond(txn, request, 481, now=now, tag=call.local_tag)
            return
        if call.reinvite_txn is not None or call.ok is not None or \
                call.state is not State.CONFIRMED:
            # RFC 3261 §14.2: an INVITE of ours is pending on this dialog: glare
            self._respond(txn, request, 491, now=now, tag=call.local_tag)
            return
        if not request.body or request.content_type != "application/sdp":
            self._respond(txn, request, 488, now=now, tag=call.local_tag,
                          extra=(("Warning", '399 xmfax "an SDP offer is required"'),))
            return
        try:
            offer = _sdp.SessionDescription.parse(request.body)
        except (_sdp.SDPError, ValueError) as exc:
            self._respond(txn, request, 400, "Bad SDP", now=now, tag=call.local_tag,
                          extra=(("Warning", f'399 xmfax "{_quote(str(exc))}"'),))
            return
        accept = tuple(k for k, port in (("t38", call.t38_port), ("audio", call.audio_port))
                       if port is not None)
        try:
            answer, media = call.sdp.answer(offer, audio_port=call.audio_port,
                                            t38_port=call.t38_port, t38=self.config.t38,
                                            accept=accept)
        except _sdp.NotAcceptable:
            # RFC 3261 §14.2: the call goes on as it was
            self._respond(txn, request, 488, now=now, tag=call.local_tag)
            return
        call.dialog.update_target(request)
        self._send_2xx(call, txn, request, answer, media, "reinvite", now)

    def _send_2xx(self, call: _Call, txn, request: Request, answer, media, kind: str,
                  now: float) -> None:
        T1 = self.config.timers.T1
        response = self._respond(txn, request, 200, tag=call.local_tag, now=now, contact=True,
                                 record_route=kind == "initial",
                                 extra=(("Allow", ALLOW),), body=answer.encode())
        call.ok = response
        call.ok_dest = getattr(txn, "source", None) or call.source
        call.ok_transport = getattr(txn, "transport", None) or call.transport
        call.ok_cseq = request.cseq[0]
        call.ok_kind = kind
        call.ok_media = media
        call.ok_interval = T1
        if call.ok_transport == "udp":           # RFC 3261 §13.3.1.4
            call.timers["ok_retx"] = now + T1
        call.timers["no_ack"] = now + 64 * T1

    # ------------------------------------------------------------------ responses
    def _on_response(self, response: Response, txn, now: float) -> None:
        owner = self._owners.get(txn.id) if txn is not None else None
        if owner is None:
            self._on_stray(response, now)
            return
        kind, call = owner
        if response.status >= 200:
            del self._owners[txn.id]
            if call is not None:
                call.live.discard(txn.id)
        if kind == "invite":
            self._on_invite_response(call, response, now)
        elif kind == "reinvite":
            self._on_reinvite_response(call, response, now)
        elif kind == "register":
            self._on_register_response(response, now)
        if call is not None and response.status >= 200:
            self._maybe_reap(call, now)

    def _on_stray(self, response: Response, now: float) -> None:
        """A response no transaction wants: a retransmitted 2xx to an INVITE gets its ACK
        again (RFC 3261 §13.2.2.4); a 2xx from another fork is ACKed and hung up."""
        if not 200 <= response.status < 300 or response.cseq[1] != "INVITE":
            self.dropped += 1
            return
        call_id, cseq = response.call_id, response.cseq[0]
        call = self._calls.get(call_id)
        if call is not None and cseq in call.acks and call.dialog is not None:
            if response.to.tag == call.dialog.remote_tag:
                ack, dest, transport = call.acks[cseq]
                self.txn.send_ack(ack, dest, transport)
            elif call.role == "outbound" and call.invite is not None and \
                    cseq == call.invite.cseq[0]:
                self._ack_and_bye_fork(call, response, now)
            return
        late = self._late_acks.get((call_id, cseq))
        if late is not None:
            self.txn.send_ack(late[0], late[1], late[2])
            return
        self.dropped += 1

    def _ack_and_bye_fork(self, call: _Call, response: Response, now: float) -> None:
        # RFC 3261 §13.2.2.4: a second 2xx from another branch: ACK it, then BYE that dialog
        dialog = Dialog.as_uac(call.invite, response, call.transport)
        ack = self._in_dialog(dialog, "ACK", cseq=call.invite.cseq[0], contact=False)
        dest, transport = dialog.next_hop()
        self.txn.send_ack(ack, dest, transport)
        bye = self._in_dialog(dialog, "BYE")
        self._send(bye, dest, transport, "bye", call, now)

    def _in_dialog(self, dialog: Dialog, method: str, *, cseq: int | None = None,
                   contact: bool = True, body: bytes = b"",
                   extra: Sequence[tuple[str, str]] = ()) -> Request:
        cfg = self.config
        _, transport = dialog.next_hop()
        return dialog.request(method, via_host=cfg.host, via_port=cfg.port,
                              contact=self._contact(transport) if contact else None,
                              user_agent=cfg.user_agent, cseq=cseq, body=body, extra=extra)

    def _on_txn_failure(self, txn, error: str | None, now: float) -> None:
        owner = self._owners.pop(txn.id, None)
        if owner is None:
            return              # a server transaction (our final never ACKed): nothing to do
        kind, call = owner
        what = f"transport error: {error}" if error else "no response (transaction timeout)"
        if call is not None:
            call.live.discard(txn.id)
        if kind == "invite":
            call.invite_txn = None
            self._end(call, "timeout", None, "local", f"INVITE: {what}", now)
        elif kind == "reinvite":
            # RFC 3261 §12.2.1.2: a timed-out request inside a dialog ends it (as a 408)
            call.reinvite_txn = None
            if not call.ended:
                self._send_bye(call, now)
                self._end(call, "timeout", None, "local", f"re-INVITE: {what}", now)
        elif kind == "register":
            self._events.extend(self.registration.on_failure(None, what, now))
        if call is not None:
            self._maybe_reap(call, now)

    def _on_invite_response(self, call: _Call, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            call.provisional = True
            if call.state is State.CALLING:
                call.state = State.EARLY
            if call.cancel_wanted and not call.cancel_sent:
                self._send_cancel(call, now)
            if status > 100 and not call.ended:
                self._events.append(CallProgress(now, call.call_id, status, response.reason))
            return
        call.invite_txn = None
        if status < 300:
            self._on_invite_2xx(call, response, now)
            return
        call.final_status = status
        if call.ended:
            return
        cfg = self.config
        if status in (401, 407):
            retry = call.auth.retry(cfg.credentials, call.invite, response,
                                    cseq=call.invite.cseq[0] + 1)
            if retry is not None:
                self._send_invite(call, retry, now)
                return
            self._end(call, "auth_failed", status, "remote", call.auth.failure, now)
            return
        if status in (415, 488, 606) and not call.fell_back and call.audio_port is not None \
                and "audio" not in _sdp.offer_kinds(call.offer):
            # the T.38-only offer was refused: offer G.711 in a new INVITE
            call.fell_back = True
            call.offer = self._make_offer(call, "audio")
            self._reinvite_initial(call, call.invite.uri, now)
            return
        if 300 <= status < 400:
            try:
                contacts = response.contacts
            except SIPParseError:
                contacts = []
            if contacts and call.redirects < cfg.max_redirects:
                call.redirects += 1
                target = contacts[0].uri
                call.invite_dest = cfg.outbound_proxy or target.hostport()
                call.transport = target.transport or call.transport
                call.auth = AuthState()
                self._reinvite_initial(call, URI(scheme=target.scheme, user=target.user,
                                                 host=target.host, port=target.port,
                                                 params=dict(target.params)), now)
                return
            why = "no Contact" if not contacts else f"more than {cfg.max_redirects} redirects"
            self._end(call, "redirected", status, "remote", f"{status} {response.reason}: {why}",
                      now)
            return
        self._end(call, end_reason(status), status, "remote", f"{status} {response.reason}", now)

    def _reinvite_initial(self, call: _Call, ruri: URI, now: float) -> None:
        """A new INVITE for the same call (after a redirect or a refused T.38 offer): same
        Call-ID and From tag, next CSeq, new branch, a To without tag (RFC 3261 §8.1.3.4)."""
        old = call.invite
        h = old.headers.copy()
        request = build_request(
            "INVITE", ruri, call_id=call.call_id, cseq=old.cseq[0] + 1, from_=old.from_,
            to=NameAddr(uri=URI(scheme=ruri.scheme, user=ruri.user, host=ruri.host,
                                port=ruri.port)) if ruri != old.uri else old.to,
            via_host=self.config.host, via_port=self.config.port, transport=call.transport,
            contact=self._contact(call.transport), user_agent=self.config.user_agent,
            extra=[(n, v) for n, v in h.items() if n.lower() not in _BUILT_HEADERS],
            body=call.offer.encode())
        if self.config.credentials is not None:
            call.auth.apply(request, self.config.credentials)
        self._send_invite(call, request, now)

    def _send_invite(self, call: _Call, request: Request, now: float) -> None:
        call.invite = request
        call.provisional = False
        call.invite_txn = self._send(request, call.invite_dest, call.transport, "invite",
                                     call, now)

    def _on_invite_2xx(self, call: _Call, response: Response, now: float) -> None:
        cfg = self.config
        dialog = Dialog.as_uac(call.invite, response, call.transport)
        call.dialog = dialog
        call.final_status = response.status
        # RFC 3261 §13.2.2.4: the UA ACKs a 2xx itself, same CSeq number, method ACK
        ack = self._in_dialog(dialog, "ACK", cseq=call.invite.cseq[0], contact=False)
        dest, transport = dialog.next_hop()
        self.txn.send_ack(ack, dest, transport)
        call.acks[call.invite.cseq[0]] = (ack, dest, transport)
        call.timers.pop("invite_timeout", None)
        call.timers.pop("cancel_giveup", None)
        if call.ended:          # answered after we hung up (CANCEL crossed the 200): BYE
            self._send_bye(call, now)
            return
        call.state = State.CONFIRMED
        strict = dialog.strict_router()
        if strict is not None:
            self._send_bye(call, now)
            self._end(call, "rejected", response.status, "local",
                      f"strict router {strict} in Record-Route: only loose routing (;lr) is "
                      "supported (RFC 3261 §16.12)", now)
            return
        try:
            answer = _sdp.SessionDescription.parse(response.body)
            media = call.sdp.negotiated(call.offer, answer, t38=cfg.t38)
        except (_sdp.SDPError, _sdp.NotAcceptable, ValueError) as exc:
            self._send_bye(call, now)
            self._end(call, "not_acceptable", response.status, "local",
                      f"unusable SDP answer in the 2xx: {exc}", now)
            return
        call.media = media
        call.answered_at = now
        if media.kind == "t38":
            call.t38_switch = {"by": "offer", "t": now - call.started}
        self._events.append(Answered(now, call.call_id, media))
        self._arm_switch(call, now)

    def _arm_switch(self, call: _Call, now: float) -> None:
        after = self.config.t38_switch_after
        if after is not None and call.t38_port is not None and call.media is not None and \
                call.media.kind == "audio":
            call.timers["t38_switch"] = now + after

    def _make_offer(self, call: _Call, kind: str):
        if kind == "t38":
            return call.sdp.offer(t38_port=call.t38_port, t38=self.config.t38)
        return call.sdp.offer(audio_port=call.audio_port)

    def _reinvite_t38(self, call: _Call, now: float) -> None:
        """Our re-INVITE offering T.38 (m=image only), unless T.38 is already up or another
        INVITE is in progress on the dialog (then it waits for that one to finish)."""
        if call.ended or call.dialog is None or call.t38_port is None:
            return
        if call.media is not None and call.media.kind == "t38":
            call.switch_wanted = False
            return
        if call.state is not State.CONFIRMED or call.reinvite_txn is not None or \
                call.ok is not None or "glare" in call.timers:
            call.switch_wanted = True
            return
        call.switch_wanted = False
        call.timers.pop("t38_switch", None)
        offer = call.sdp.offer(t38_port=call.t38_port, t38=self.config.t38)
        request = self._in_dialog(call.dialog, "INVITE", body=offer.encode(),
                                  extra=(("Allow", ALLOW),))
        dest, transport = call.dialog.next_hop()
        call.reinvite_offer = offer
        call.reinvite_request = request
        call.reinvite_txn = self._send(request, dest, transport, "reinvite", call, now)

    def _on_reinvite_response(self, call: _Call, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            return
        call.reinvite_txn = None
        dialog = call.dialog
        if status < 300:
            cseq = response.cseq[0]
            ack = self._in_dialog(dialog, "ACK", cseq=cseq, contact=False)
            dialog.update_target(response)
            dest, transport = dialog.next_hop()
            self.txn.send_ack(ack, dest, transport)
            call.acks[cseq] = (ack, dest, transport)
            if call.ended:
                return
            try:
                answer = _sdp.SessionDescription.parse(response.body)
                media = call.sdp.negotiated(call.reinvite_offer, answer, t38=self.config.t38)
            except (_sdp.SDPError, _sdp.NotAcceptable, ValueError) as exc:
                self._send_bye(call, now)
                self._end(call, "not_acceptable", status, "local",
                          f"unusable SDP answer to our re-INVITE: {exc}", now)
                return
            call.media = media
            if media.kind == "t38" and call.t38_switch is None:
                call.t38_switch = {"by": "local", "t": now - call.started}
            self._events.append(MediaChanged(now, call.call_id, media, "local"))
        elif call.ended:
            return
        elif status == 491:
            # RFC 3261 §14.1: the Call-ID's owner waits 2.1-4 s, the other side 0-2 s
            delay = _random.uniform(2.1, 4.0) if call.role == "outbound" else \
                _random.uniform(0.0, 2.0)
            call.timers["glare"] = now + delay
            call.switch_wanted = True
            return
        elif status in (401, 407):
            dialog.local_cseq += 1
            retry = call.auth.retry(self.config.credentials, call.reinvite_request, response,
                                    cseq=dialog.local_cseq)
            if retry is not None:
                dest, transport = dialog.next_hop()
                call.reinvite_request = retry
                call.reinvite_txn = self._send(retry, dest, transport, "reinvite", call, now)
                return
            self._events.append(MediaRefused(now, call.call_id, status, response.reason))
        elif status in (408, 481):
            # RFC 3261 §12.2.1.2: the dialog is gone at the far end
            if status == 408:
                self._send_bye(call, now)
            self._end(call, "timeout" if status == 408 else "hangup", status, "remote",
                      f"{status} {response.reason} to our re-INVITE", now)
            return
        else:
            self._events.append(MediaRefused(now, call.call_id, status, response.reason))
        if call.switch_wanted:
            self._reinvite_t38(call, now)

    # ------------------------------------------------------------------ requests we send
    def _send_bye(self, call: _Call, now: float) -> None:
        dialog = call.dialog
        bye = self._in_dialog(dialog, "BYE", contact=False)
        dest, transport = dialog.next_hop()
        self._send(bye, dest, transport, "bye", call, now)
        call.state = State.ENDING
        call.ok = None
        for name in ("ok_retx", "no_ack", "t38_switch", "glare"):
            call.timers.pop(name, None)

    def _send_cancel(self, call: _Call, now: float) -> None:
        # RFC 3261 §9.1: same Request-URI, Call-ID, From, To, CSeq number and top Via (branch)
        # as the INVITE, and its Route headers
        invite = call.invite
        h = invite.headers
        cancel = Request(method="CANCEL", uri=invite.uri, headers=type(h)(), body=b"")
        cancel.headers.add("Via", h.values("Via")[0])
        cancel.headers.add("Max-Forwards", "70")
        for route in h.values("Route"):
            cancel.headers.add("Route", route)
        for name in ("From", "To", "Call-ID"):
            cancel.headers.add(name, h.get(name))
        cancel.headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
        cancel.headers.add("User-Agent", self.config.user_agent)
        self._send(cancel, call.invite_dest, call.transport, "cancel", call, now)
        call.cancel_sent = True

    def _fire(self, call: _Call, name: str, now: float) -> None:
        cfg = self.config
        if name == "invite_timeout":
            if call.invite_txn is not None and not call.ended:
                call.state = State.CANCELLING
                if call.provisional:
                    self._send_cancel(call, now)
                else:
                    call.cancel_wanted = True
                call.timers["cancel_giveup"] = now + 64 * cfg.timers.T1
                self._end(call, "no_answer", None, "local",
                          f"no final answer in {cfg.invite_timeout:g} s", now)
        elif name == "cancel_giveup":
            # RFC 3261 §9.1: no final response to the cancelled INVITE: consider it over
            for tid in list(call.live):
                kind, _ = self._owners.get(tid, ("", None))
                if kind in ("invite", "cancel"):
                    self._owners.pop(tid, None)
                    call.live.discard(tid)
            call.invite_txn = None
            self._end(call, "cancelled", None, "local", "no answer to our CANCEL", now)
        elif name in ("t38_switch", "glare"):
            self._reinvite_t38(call, now)
        elif name == "ok_retx":
            if call.ok is not None:
                self.txn.send_response(call.ok, call.ok_dest, call.ok_transport)
                call.ok_interval = min(2 * call.ok_interval, cfg.timers.T2)
                call.timers["ok_retx"] = now + call.ok_interval
        elif name == "no_ack":
            # RFC 3261 §13.3.1.4: no ACK after 64*T1: the UAS ends the dialog with BYE
            call.ok = None
            call.timers.pop("ok_retx", None)
            call.bye_wanted = False
            self._send_bye(call, now)
            self._end(call, "no_ack", None, "local", "no ACK for our 2xx in 64*T1", now)

    # ------------------------------------------------------------------ REGISTER
    def _send_register(self, expires: int, now: float) -> None:
        cfg = self.config
        reg = self.registration
        transport = reg.uri.transport or cfg.transport
        request = reg.build(expires=expires, contact=self._contact_uri(transport),
                            via_host=cfg.host, via_port=cfg.port, transport=transport,
                            user_agent=cfg.user_agent, display=cfg.display_name)
        self._register_request = request
        self._send(request, cfg.outbound_proxy or reg.dest, transport, "register", None, now)

    def _on_register_response(self, response: Response, now: float) -> None:
        reg = self.registration
        status = response.status
        if status < 200:
            return
        request = self._register_request
        transport = reg.uri.transport or self.config.transport
        if status < 300:
            self._events.extend(reg.on_success(response, self._contact_uri(transport), now))
            return
        if status in (401, 407):
            retry = reg.auth.retry(self.config.credentials, request, response,
                                   cseq=reg.cseq + 1)
            if retry is not None:
                reg.cseq += 1
                self._register_request = retry
                self._send(retry, self.config.outbound_proxy or reg.dest, transport,
                           "register", None, now)
                return
            self._events.extend(reg.on_failure(status, reg.auth.failure, now))
            return
        if status == 423 and reg.interval_too_brief(response):
            self._send_register(reg.expires, now)
            return
        self._events.extend(reg.on_failure(status, f"{status} {response.reason}", now))


# headers build_request writes itself (not copied when an INVITE is sent again)
_BUILT_HEADERS = frozenset({"via", "max-forwards", "route", "from", "to", "call-id", "cseq",
                            "contact", "user-agent", "content-type", "content-length",
                            "authorization", "proxy-authorization"})


def _quote(text: str) -> str:
    return text.replace("\\", "").replace('"', "'")[:120]
