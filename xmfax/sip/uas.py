"""The UAS half of the user agent (RFC 3261 §8.2, §12.1.1, §13.3, §14.2, §15.1.2): requests
that reach us, inside a dialog or not. A mixin of xmfax.sip.ua.UserAgent (which holds the
state: ``config``, ``txn``, ``_calls``, ``_events``); sans-IO."""
from __future__ import annotations

from typing import Sequence

from . import sdp as _sdp
from .dialog import (ALLOW, SUPPORTED_METHODS, Call, Dialog, State, redacted_headers,
                     uri_user)
from .events import Answered, IncomingCall, MediaChanged
from .message import NameAddr, Request, Response, SIPParseError, make_response, new_tag
from .transaction import RequestReceived

__all__ = ["ServerSide"]


class ServerSide:
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
            self._respond(txn, request, 500, "CSeq Out of Order", now=now)   # RFC 3261 §12.2.2
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
                      extra=(("Allow", ALLOW), ("Accept", "application/sdp"),
                             ("Supported", "")))     # RFC 3261 §20.37: no extensions

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
        offer, kinds = None, ()
        if request.body:
            if content_type != "application/sdp":
                self._respond(txn, request, 415, now=now,
                              extra=(("Accept", "application/sdp"),))
                return
            try:
                offer = _sdp.SessionDescription.parse(request.body)
                kinds = _sdp.offer_kinds(offer)
            except (_sdp.SDPError, ValueError) as exc:
                self._respond(txn, request, 400, "Bad SDP", now=now,
                              extra=(("Warning", f'399 xmfax "{_quote(str(exc))}"'),))
                return
            if not kinds:
                self._respond(txn, request, 488, now=now)
                return
        # else: no offer (RFC 3261 §13.3.1.1): ours goes in the 2xx, theirs comes in the ACK
        local_tag = new_tag()
        dialog = Dialog.as_uas(request, local_tag, ev.transport, ev.source)
        strict = dialog.strict_router()
        if strict is not None:
            # we route only loosely (RFC 3261 §16.12); our BYE could not get back through it
            self._respond(txn, request, 400, "Strict Routing Not Supported", now=now,
                          extra=(("Warning", f'399 xmfax "strict router {_quote(strict)}"'),))
            return
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
        dnis = uri_user(request.uri)
        if not dnis or dnis == self.config.user:
            # retargeted to our Contact (a registrar's lookup): the number dialed is in To
            dnis = uri_user(request.to.uri) or dnis
        call = Call(call_id=call_id, role="inbound", transport=ev.transport,
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
        if invite_txn is None:                                    # RFC 3261 §9.2
            self._respond(txn, request, 481, now=now)
            return
        # the INVITE was found: 200, whether or not it had its final answer already (then
        # the CANCEL changes nothing); the same To tag as our answer to the INVITE
        tag = call.local_tag if call is not None else None
        if tag is None and invite_txn.last_response is not None:
            tag = invite_txn.last_response.to.tag
        self._respond(txn, request, 200, now=now, tag=tag)
        if call is not None and call.role == "inbound" and call.invite_txn is invite_txn \
                and not call.ended:
            self._respond(invite_txn, call.invite, 487, tag=call.local_tag, now=now)
            call.invite_txn = None
            self._end(call, "cancelled", 487, "remote", "CANCEL from the caller", now)

    def _on_ack(self, request: Request, now: float) -> None:
        call = self._calls.get(request.call_id)
        if call is None or call.dialog is None or call.ok is None or \
                request.cseq[0] != call.ok_cseq or call.dialog.remote_tag != request.from_.tag:
            return                              # a retransmitted or stray ACK: nothing to do
        kind, media, our_offer = call.ok_kind, call.ok_media, call.ok_offer
        call.ok = None
        call.ok_offer = None
        call.timers.pop("ok_retx", None)
        call.timers.pop("no_ack", None)
        if our_offer is not None and not call.ended and not call.bye_wanted:
            # our 2xx carried the offer: the ACK carries the answer (RFC 3264 §4)
            try:
                if request.content_type != "application/sdp":
                    raise _sdp.NotAcceptable("no SDP answer in the ACK")
                answer = _sdp.SessionDescription.parse(request.body)
                media = call.sdp.negotiated(our_offer, answer, t38=self.config.t38)
            except (_sdp.SDPError, _sdp.NotAcceptable, SIPParseError, ValueError) as exc:
                self._send_bye(call, now)
                self._end(call, "not_acceptable", None, "local",
                          f"answer to our offer in the ACK unusable: {exc}", now)
                return
        if call.bye_wanted:
            call.bye_wanted = False
            self._send_bye(call, now)
            self._maybe_reap(call, now)
            return
        if call.ended:
            self._maybe_reap(call, now)
            return
        changed = media != call.media
        call.media = media
        if kind == "initial":
            call.move(State.CONFIRMED)
            call.answered_at = now
            if media.kind == "t38" and call.t38_switch is None:
                call.t38_switch = {"by": "offer", "t": now - call.started}
            self._events.append(Answered(now, call.call_id, media))
            self._arm_switch(call, now)
        elif changed:       # (the same media again: a session refresh, nothing to tell)
            if media.kind == "t38":
                call.timers.pop("t38_switch", None)
                if call.t38_switch is None:
                    call.t38_switch = {"by": "remote", "t": now - call.started}
            self._events.append(MediaChanged(now, call.call_id, media, "remote"))
        if call.switch_wanted:
            self._reinvite_t38(call, now)

    def _on_reinvite(self, call: Call, ev: RequestReceived, now: float) -> None:
        request, txn = ev.request, ev.transaction
        if call.ended or call.state is State.ENDING:
            self._respond(txn, request, 481, now=now, tag=call.local_tag)
            return
        if call.reinvite_txn is not None or call.ok is not None or \
                call.state is not State.CONFIRMED:
            # RFC 3261 §14.2: an INVITE of ours is pending on this dialog: glare
            self._respond(txn, request, 491, now=now, tag=call.local_tag)
            return
        if not request.body:
            # RFC 3264 §8 / RFC 3261 §14.2: no offer: ours (what we have now) goes in the 2xx
            kind = call.media.kind if call.media is not None else "audio"
            port = call.t38_port if kind == "t38" else call.audio_port
            ours = call.sdp.offer(t38_port=port, t38=self.config.t38) if kind == "t38" else \
                call.sdp.offer(audio_port=port)
            call.dialog.update_target(request)
            self._send_2xx(call, txn, request, ours, call.media, "reinvite", now, offer=ours)
            return
        if request.content_type != "application/sdp":
            self._respond(txn, request, 415, now=now, tag=call.local_tag,
                          extra=(("Accept", "application/sdp"),))
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
        except (_sdp.NotAcceptable, ValueError):
            # RFC 3261 §14.2: the call goes on as it was
            self._respond(txn, request, 488, now=now, tag=call.local_tag)
            return
        call.dialog.update_target(request)
        self._send_2xx(call, txn, request, answer, media, "reinvite", now)

    def _send_2xx(self, call: Call, txn, request: Request, answer, media, kind: str,
                  now: float, offer=None) -> None:
        """Our 2xx to an INVITE, kept for retransmission until the ACK. ``answer``: the SDP it
        carries (an answer, or with ``offer`` set our offer whose answer the ACK brings)."""
        T1 = self.config.timers.T1
        response = self._respond(txn, request, 200, tag=call.local_tag, now=now, contact=True,
                                 record_route=kind == "initial",
                                 extra=(("Allow", ALLOW),), body=answer.encode())
        call.ok = response
        if kind == "initial":
            call.final_status = 200
        call.ok_dest = getattr(txn, "source", None) or call.source
        call.ok_transport = getattr(txn, "transport", None) or call.transport
        call.ok_cseq = request.cseq[0]
        call.ok_kind = kind
        call.ok_media = media
        call.ok_offer = offer
        call.ok_interval = T1
        if call.ok_transport == "udp":           # RFC 3261 §13.3.1.4
            call.timers["ok_retx"] = now + T1
        call.timers["no_ack"] = now + 64 * T1

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


def _quote(text: str) -> str:
    """Text fit for a quoted Warning (RFC 3261 §20.43): printable ASCII, no quotes, short."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)[:120]
