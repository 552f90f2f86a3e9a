"""The UAC half of the user agent (RFC 3261 §8.1, §9.1, §12.1.2, §13.2, §14.1, §15): the
requests we send inside a call and what their responses mean. A mixin of
xmfax.sip.ua.UserAgent (which holds the state); sans-IO."""
from __future__ import annotations

import secrets
from typing import Sequence

from . import sdp as _sdp
from .dialog import (ALLOW, AuthState, Call, Dialog, State, build_request, end_reason)
from .events import Answered, CallProgress, MediaChanged, MediaRefused
from .message import NameAddr, Request, Response, SIPParseError, URI

__all__ = ["ClientSide"]

_random = secrets.SystemRandom()

# headers build_request writes itself (not copied when an INVITE is sent again)
_BUILT_HEADERS = frozenset({"via", "max-forwards", "route", "from", "to", "call-id", "cseq",
                            "contact", "user-agent", "content-type", "content-length",
                            "authorization", "proxy-authorization"})


class ClientSide:
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
        elif kind == "bye" and response.status in (401, 407) and call.dialog is not None:
            # a proxy that challenges in-dialog requests too: once more with credentials
            retry = call.auth.retry(self.config.credentials, txn.request, response,
                                    cseq=call.dialog.local_cseq + 1)
            if retry is not None and call.dialog.remote_tag == retry.to.tag:
                call.dialog.local_cseq += 1
                dest, transport = call.dialog.next_hop()
                self._send(retry, dest, transport, "bye", call, now)
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
        late = self._late_acks.get((call_id, cseq, response.to.tag or ""))
        if late is not None:
            self.txn.send_ack(late[0], late[1], late[2])
            return
        self.dropped += 1

    def _ack_and_bye_fork(self, call: Call, response: Response, now: float) -> None:
        # RFC 3261 §13.2.2.4: a second 2xx from another branch: ACK it, then BYE that dialog
        # (once: a retransmission of it only gets the ACK again)
        key = (call.call_id, call.invite.cseq[0], response.to.tag or "")
        known = self._fork_acks.get(key)
        if known is not None:
            self.txn.send_ack(*known)
            return
        dialog = Dialog.as_uac(call.invite, response, call.transport)
        ack = self._in_dialog(dialog, "ACK", cseq=call.invite.cseq[0], contact=False,
                              extra=_credentials_of(call.invite))
        dest, transport = dialog.next_hop()
        self.txn.send_ack(ack, dest, transport)
        self._fork_acks[key] = (ack, dest, transport)
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

    def _on_invite_response(self, call: Call, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            call.provisional = True
            if call.state is State.CALLING:
                call.move(State.EARLY)
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
            contacts = [c for c in contacts if c.uri.scheme == "sip" and c.uri.host
                        or cfg.outbound_proxy is not None and c.uri.scheme in ("sip", "tel")]
            if contacts and call.redirects < cfg.max_redirects:
                call.redirects += 1
                target = contacts[0].uri
                call.invite_dest = cfg.outbound_proxy or target.hostport()
                if target.transport in ("udp", "tcp"):
                    call.transport = target.transport
                call.auth = AuthState()
                self._reinvite_initial(call, URI(scheme=target.scheme, user=target.user,
                                                 host=target.host, port=target.port,
                                                 params=dict(target.params)), now)
                return
            why = "no Contact we can call" if not contacts else \
                f"more than {cfg.max_redirects} redirects"
            self._end(call, "redirected", status, "remote", f"{status} {response.reason}: {why}",
                      now)
            return
        self._end(call, end_reason(status), status, "remote", f"{status} {response.reason}", now)

    def _reinvite_initial(self, call: Call, ruri: URI, now: float) -> None:
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

    def _send_invite(self, call: Call, request: Request, now: float) -> None:
        call.invite = request
        call.provisional = False
        call.move(State.CALLING)
        call.invite_txn = self._send(request, call.invite_dest, call.transport, "invite",
                                     call, now)

    def _on_invite_2xx(self, call: Call, response: Response, now: float) -> None:
        cfg = self.config
        dialog = Dialog.as_uac(call.invite, response, call.transport)
        call.dialog = dialog
        call.final_status = response.status
        # RFC 3261 §13.2.2.4: the UA ACKs a 2xx itself, same CSeq number, method ACK, and the
        # INVITE's credentials (RFC 3261 §22.1)
        ack = self._in_dialog(dialog, "ACK", cseq=call.invite.cseq[0], contact=False,
                              extra=_credentials_of(call.invite))
        dest, transport = dialog.next_hop()
        self.txn.send_ack(ack, dest, transport)
        call.acks[call.invite.cseq[0]] = (ack, dest, transport)
        call.timers.pop("invite_timeout", None)
        call.timers.pop("cancel_giveup", None)
        if call.ended:          # answered after we hung up (CANCEL crossed the 200): BYE
            self._send_bye(call, now)
            return
        call.move(State.CONFIRMED)
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

    def _arm_switch(self, call: Call, now: float) -> None:
        after = self.config.t38_switch_after
        if after is not None and call.t38_port is not None and call.media is not None and \
                call.media.kind == "audio":
            call.timers["t38_switch"] = now + after

    def _make_offer(self, call: Call, kind: str):
        if kind == "t38":
            return call.sdp.offer(t38_port=call.t38_port, t38=self.config.t38)
        return call.sdp.offer(audio_port=call.audio_port)

    def _reinvite_t38(self, call: Call, now: float) -> None:
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

    def _on_reinvite_response(self, call: Call, response: Response, now: float) -> None:
        status = response.status
        if status < 200:
            return
        call.reinvite_txn = None
        dialog = call.dialog
        if status < 300:
            cseq = response.cseq[0]
            ack = self._in_dialog(dialog, "ACK", cseq=cseq, contact=False,
                                  extra=_credentials_of(call.reinvite_request))
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

    def _send_bye(self, call: Call, now: float) -> None:
        dialog = call.dialog
        bye = self._in_dialog(dialog, "BYE", contact=False)
        dest, transport = dialog.next_hop()
        self._send(bye, dest, transport, "bye", call, now)
        call.move(State.ENDING)
        call.ok = None
        for name in ("ok_retx", "no_ack", "t38_switch", "glare"):
            call.timers.pop(name, None)

    def _send_cancel(self, call: Call, now: float) -> None:
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


def _credentials_of(request: Request | None) -> list[tuple[str, str]]:
    if request is None:
        return []
    return [(n, v) for n, v in request.headers.items()
            if n.lower() in ("authorization", "proxy-authorization")]
