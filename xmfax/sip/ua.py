"""The SIP user agent of xmfax: calls, dialogs, re-INVITE to T.38, CANCEL, BYE, OPTIONS,
REGISTER and digest auth (RFC 3261 §8, §9, §12-§15, §22; RFC 3264 for offer/answer).

Sans-IO, like the rest of xmfax/sip: bytes and time go in (``receive``, ``handle_timer``),
``Outgoing`` datagrams/segments and events come out (``outgoing``, ``events``). The
transactions below (xmfax/sip/transaction.py) retransmit and match; this module decides.

Calls are named by their Call-ID. Every command that ends a call emits its CallEnded at once;
the messages that tidy up after it (CANCEL, BYE, the ACK of a late 2xx) follow on their own,
and ``settled`` says when they are done (``idle`` also waits for the lingering transactions).

Policies (the UAC half is xmfax/sip/uac.py, the UAS half xmfax/sip/uas.py):

* Dialogs: route set from Record-Route (§12.1.1/§12.1.2), loose routing only (a strict router
  ends the call, or gets 400 on the way in); remote target from Contact, refreshed by
  re-INVITEs; CSeq per dialog, an out-of-order one gets 500 (§12.2.2).
* Offer/answer: the first INVITE offers G.711 or T.38 alone (``UAConfig.offer``); a T.38-only
  offer refused with 488/415/606 is followed by a new INVITE offering G.711. Our answer takes
  T.38 when offered. An audio call is switched by our re-INVITE (m=image) ``t38_switch_after``
  seconds after it was answered unless the far end's re-INVITE came first. INVITEs and
  re-INVITEs without SDP get our offer in the 2xx, the answer from the ACK.
* Glare: a re-INVITE while an INVITE of ours is in progress on the dialog gets 491 (§14.2);
  our re-INVITE answered 491 is retried after 2.1-4 s (we own the Call-ID) or 0-2 s (§14.1).
  Any other non-2xx leaves the call on its media (MediaRefused), 481/408 end it (§12.2.1.2).
* 2xx: as UAS retransmitted at T1 doubling to T2 until the ACK, BYE after 64*T1 without it
  (CallEnded no_ack, §13.3.1.4); as UAC every 2xx retransmission ACKed again, a 2xx from
  another fork ACKed and BYEd (§13.2.2.4), a 2xx crossing our CANCEL ACKed and BYEd (§15).
* CANCEL in: 200, and 487 to the INVITE if not answered yet (§9.2). CANCEL out only after a
  provisional (§9.1); no final answer 64*T1 later and the INVITE is given up.
* Digest (RFC 7616): 401/407 retried once per challenge (once more when stale=true), for
  INVITE, re-INVITE, BYE and REGISTER; the credentials never reach an event.
* REGISTER refreshed at half the granted expiry; 423 asks again with Min-Expires; a failure
  is reported and tried again a minute later.
* OPTIONS (in or out of a dialog): 200 with Allow, Accept, Supported. Other methods: 405 with
  Allow. A request for an unknown dialog: 481. More than ``max_calls`` calls: 503.
* Nothing the far end sends raises out of ``receive``: a malformed request gets 400 (or 505,
  513) when it can be answered, garbage is counted in ``dropped``; a bug of ours caught there
  is listed in ``errors`` (tests assert it stays empty)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from ..errors import LocalProtocolError
from ..t38.config import T38Config
from . import sdp as _sdp
from .auth import Credentials
from .dialog import ALLOW, Call, State, build_request, end_reason, summarize, uri_user
from .events import (Answered, CallEnded, CallInfo, CallProgress, Event, IncomingCall,
                     MediaChanged, MediaRefused, Registered, RegistrationFailed, SipMessage)
from .message import NameAddr, Request, Response, SIPParseError, URI, error_response, \
    new_call_id, new_tag, parse
from .register import Registration
from .transaction import (Outgoing, RequestReceived, TimerConfig, TransactionLayer,
                          TransactionTimeout, TransportError)
from .uac import ClientSide
from .uas import ServerSide

__all__ = ["UAConfig", "UserAgent", "Outgoing", "ALLOW", "Event", "IncomingCall",
           "CallProgress", "Answered", "MediaChanged", "MediaRefused", "CallEnded",
           "Registered", "RegistrationFailed", "SipMessage", "CallInfo"]

_FINISHED_KEPT = 1000                   # snapshots of ended calls kept for call()


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


class UserAgent(ClientSide, ServerSide):
    """One SIP endpoint: any number of calls both ways and one registration."""

    def __init__(self, config: UAConfig, now: float) -> None:
        self.config = config
        self.txn = TransactionLayer(config.timers)
        self._calls: dict[str, Call] = {}
        self._finished: dict[str, CallInfo] = {}
        self._owners: dict[object, tuple[str, Call | None]] = {}
        self._out: list[Outgoing] = []
        self._events: list = []
        # ACKs re-sent for each 2xx retransmission: other forks' (call, CSeq, To tag), and
        # those of calls already gone (kept 64*T1)
        self._fork_acks: dict[tuple[str, int, str], tuple[Request, tuple[str, int], str]] = {}
        self._late_acks: dict[tuple[str, int, str],
                              tuple[Request, tuple[str, int], str, float]] = {}
        self._now = now
        self.dropped = 0                # messages thrown away (garbage, stray responses)
        self.errors: list[str] = []     # internal errors caught at the boundary (should be none)
        identity = URI.parse(config.from_uri) if config.from_uri else \
            URI(scheme="sip", user=config.user, host=config.host)
        self._identity = identity
        self.registration = (Registration.create(config.registrar, config.host,
                                                 config.register_expires, config.user)
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
            self._error(exc)
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

    def transport_failed(self, dest: tuple[str, int], transport: str, error: str,
                         now: float) -> None:
        """The driver could not send to ``dest`` (unreachable, connection refused or reset):
        the transactions sending there fail (RFC 3261 §17.1.4), and their calls with them."""
        self._now = now
        try:
            for ev in self.txn.transport_failed(dest, transport, error, now):
                self._dispatch(ev, now)
        except Exception as exc:
            self._error(exc)
        self._flush(now)

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
            self._error(exc)
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

    @property
    def settled(self) -> bool:
        """Every call fully torn down (its CANCEL/487, BYE/200 or their time-outs done) and no
        REGISTER in flight: what is left are transactions lingering only to absorb
        retransmissions (Timers D, I, K, L, M), which a closing driver need not wait for.
        CallEnded comes before this (at once on hangup()), so wait for this before closing."""
        reg = self.registration
        return not self._calls and not (reg is not None and reg.pending) and \
            self.txn.pending == 0

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
        try:
            uri = URI.parse(target)
        except SIPParseError as exc:
            raise LocalProtocolError(f"SIP target {target!r}: {exc}") from None
        if uri.scheme not in ("sip", "tel"):
            raise LocalProtocolError(f"SIP target {target!r}: not a sip: or tel: URI"
                                     + (" (sips: needs TLS, which xmfax does not do)"
                                        if uri.scheme == "sips" else ""))
        if not uri.host and cfg.outbound_proxy is None:
            raise LocalProtocolError(f"SIP target {target!r}: no host and no outbound proxy")
        if audio_port is None and t38_port is None:
            raise LocalProtocolError("invite() needs an audio port or a T.38 port")
        transport = uri.transport or cfg.transport
        if transport not in ("udp", "tcp"):
            raise LocalProtocolError(f"SIP target {target!r}: transport {transport!r} "
                                     "(xmfax does udp and tcp)")
        ruri = URI(scheme=uri.scheme, user=uri.user, host=uri.host, port=uri.port,
                   params=dict(uri.params))
        call_id = new_call_id(cfg.host)
        call = Call(call_id=call_id, role="outbound", transport=transport,
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
        if call.remote_offer is None:
            # their INVITE had no offer: ours (every kind we have a port for) goes in the 2xx
            offer = call.sdp.offer(audio_port=audio_port, t38_port=t38_port, t38=self.config.t38)
            self._send_2xx(call, call.invite_txn, call.invite, offer, None, "initial", now,
                           offer=offer)
            call.invite_txn = None
            call.move(State.ANSWERING)
            self._flush(now)
            return
        try:
            answer, media = call.sdp.answer(call.remote_offer, audio_port=audio_port,
                                            t38_port=t38_port, t38=self.config.t38,
                                            accept=accept)
        except (_sdp.NotAcceptable, ValueError) as exc:     # (ValueError: a value in it)
            self._respond(call.invite_txn, call.invite, 488, tag=call.local_tag, now=now)
            call.invite_txn = None
            self._end(call, "not_acceptable", 488, "local",
                      f"nothing in the offer we can take: {getattr(exc, 'reason', exc)}", now)
            self._flush(now)
            return
        self._send_2xx(call, call.invite_txn, call.invite, answer, media, "initial", now)
        call.invite_txn = None
        call.move(State.ANSWERING)
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
            call.move(State.CANCELLING)
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
    def _error(self, exc: Exception) -> None:
        if len(self.errors) < 100:          # a repeating bug must not grow memory forever
            self.errors.append(f"{type(exc).__name__}: {exc}")

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

    def _inbound(self, call_id: str) -> Call | None:
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
              call: Call | None, now: float):
        txn = self.txn.send_request(request, dest, transport, now)
        self._owners[txn.id] = (kind, call)
        if call is not None:
            call.live.add(txn.id)
        return txn

    def _end(self, call: Call, reason: str, status: int | None, by: str, detail: str,
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

    def _maybe_reap(self, call: Call, now: float) -> None:
        if not call.ended or call.live or call.ok is not None or call.bye_wanted:
            return
        if call.role == "outbound" and call.invite_txn is not None:
            return
        call.finish()
        call.timers.clear()
        self._calls.pop(call.call_id, None)
        self._finished[call.call_id] = call.info()
        while len(self._finished) > _FINISHED_KEPT:
            del self._finished[next(iter(self._finished))]
        linger = now + 64 * self.config.timers.T1   # 2xx retransmissions still to ACK
        tag = (call.dialog.remote_tag if call.dialog is not None else None) or ""
        for cseq, (ack, dest, transport) in call.acks.items():
            self._late_acks[(call.call_id, cseq, tag)] = (ack, dest, transport, linger)
        for key in [k for k in self._fork_acks if k[0] == call.call_id]:
            ack, dest, transport = self._fork_acks.pop(key)
            self._late_acks[key] = (ack, dest, transport, linger)

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

    # ------------------------------------------------------------------ responses
    def _on_txn_failure(self, txn, error: str | None, now: float) -> None:
        owner = self._owners.pop(txn.id, None)
        if owner is None:
            # a server transaction: our final never ACKed (nothing to do), or an INVITE the
            # driver never answered (the transaction layer gave up on it: so do we)
            call = self._calls.get(getattr(txn.request, "call_id", None) or "")
            if call is not None and call.invite_txn is txn and call.role == "inbound":
                call.invite_txn = None
                # tell the caller too (the transaction is gone: sent once, statelessly)
                self._respond(txn, call.invite, 480, tag=call.local_tag, now=now)
                self._end(call, "timeout", 480, "local", "the call was never answered", now)
            return
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

    # ------------------------------------------------------------------ requests we send
    def _fire(self, call: Call, name: str, now: float) -> None:
        cfg = self.config
        if name == "invite_timeout":
            if call.invite_txn is not None and not call.ended:
                call.move(State.CANCELLING)
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
        if status < 200 or response.cseq[0] != reg.cseq:
            return                  # provisional, or for a REGISTER a newer one superseded
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
