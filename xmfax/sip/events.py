"""Events the SIP user agent (xmfax/sip/ua.py) hands to its driver, and the read-only call
snapshot it answers ``UserAgent.call()`` with.

Every event is a small frozen dataclass with a ``time`` (the ``now`` of the call into the UA
that produced it). ``call_id`` names a call everywhere (the SIP Call-ID)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Event", "IncomingCall", "CallProgress", "Answered", "MediaChanged", "MediaRefused",
    "CallEnded", "Registered", "RegistrationFailed", "SipMessage", "CallInfo", "END_REASONS",
]

# the vocabulary of CallEnded.reason (the contract's list)
END_REASONS = frozenset({
    "hangup", "cancelled", "busy", "declined", "not_found", "no_answer", "unavailable",
    "auth_failed", "not_acceptable", "redirected", "rejected", "server_error", "timeout",
    "no_ack",
})


@dataclass(frozen=True, slots=True)
class Event:
    time: float


@dataclass(frozen=True, slots=True)
class IncomingCall(Event):
    """An INVITE for a new call. The UA has sent 100 Trying; the driver must answer(),
    reject() or ringing() next. ``headers``: every header of the INVITE, credentials redacted."""
    call_id: str
    ani: str | None
    dnis: str | None
    headers: tuple[tuple[str, str], ...]
    offer: tuple[str, ...]
    source: tuple[str, int]


@dataclass(frozen=True, slots=True)
class CallProgress(Event):
    """Outbound: a provisional (1xx) response to our INVITE."""
    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class Answered(Event):
    """Outbound: a 2xx arrived (and was ACKed). Inbound: the ACK for our 2xx arrived."""
    call_id: str
    media: Any                      # xmfax.sip.sdp.Negotiated


@dataclass(frozen=True, slots=True)
class MediaChanged(Event):
    """A re-INVITE completed: ``by`` "local" (ours, 2xx received) or "remote" (theirs, our 2xx
    ACKed)."""
    call_id: str
    media: Any                      # xmfax.sip.sdp.Negotiated
    by: str


@dataclass(frozen=True, slots=True)
class MediaRefused(Event):
    """Our re-INVITE got a non-2xx final response: the call stays on its media (RFC 3261
    §14.1)."""
    call_id: str
    status: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    """The call is over. ``reason`` is one of END_REASONS, ``status`` the final SIP status
    involved (None when none), ``by`` "local" or "remote", ``detail`` free text for people."""
    call_id: str
    reason: str
    status: int | None
    by: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Registered(Event):
    """A REGISTER succeeded: ``expires`` the granted seconds (0 after unregister())."""
    registrar: str
    expires: int


@dataclass(frozen=True, slots=True)
class RegistrationFailed(Event):
    registrar: str
    status: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class SipMessage(Event):
    """Every SIP message sent ("out") or received ("in"): its first line, plus " (SDP: t38)"
    (the usable media kinds) when it carries SDP. Never credentials."""
    direction: str
    call_id: str | None
    summary: str


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A read-only snapshot of one call (``UserAgent.call(call_id)``)."""
    call_id: str
    state: str                      # "calling" "early" "incoming" "answering" "confirmed"
                                    # "cancelling" "ending" "ended"
    role: str                       # "outbound" | "inbound"
    ani: str | None
    dnis: str | None
    media: Any                      # Negotiated | None
    remote_target: str | None
    route_set: tuple[str, ...]
    final_status: int | None
    transport: str
    headers: tuple[tuple[str, str], ...] = ()
    started: float = 0.0
    answered: float | None = None   # time of Answered
    t38_switch: dict | None = field(default=None)   # {"by": "local"|"remote"|"offer", "t": s}
    end_reason: str | None = None
