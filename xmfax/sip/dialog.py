"""SIP dialogs (RFC 3261 §12) and the pieces of a call the user agent keeps: building requests
inside and outside a dialog, the route set, the remote target, CSeq, digest retries, the
call record (``Call``) with its states and their legal moves (``State``, ``TRANSITIONS``), and
the one-line summaries of messages for the ladder. Sans-IO, like all of xmfax/sip."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Sequence

from ..errors import LocalProtocolError
from . import auth as _auth
from . import sdp as _sdp
from .events import CallInfo
from .message import Headers, NameAddr, Request, Response, URI, Via, new_branch

__all__ = ["Dialog", "Call", "State", "build_request", "AuthState", "summarize", "end_reason",
           "redacted_headers", "uri_user", "ALLOW", "SUPPORTED_METHODS", "TRANSITIONS"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
SUPPORTED_METHODS = frozenset({"INVITE", "ACK", "CANCEL", "BYE", "OPTIONS"})

_CREDENTIAL_HEADERS = ("authorization", "proxy-authorization")


def build_request(method: str, uri: URI, *, call_id: str, cseq: int, from_: NameAddr,
                  to: NameAddr, via_host: str, via_port: int, transport: str,
                  routes: Sequence[str] = (), contact: str | None = None,
                  user_agent: str | None = None, extra: Sequence[tuple[str, str]] = (),
                  body: bytes = b"", content_type: str | None = None,
                  branch: str | None = None) -> Request:
    """A request with the mandatory headers of RFC 3261 §8.1.1 in the usual order. The top
    Via asks for rport (RFC 3581 §3) so that responses come back through NATs."""
    h = Headers()
    via = Via(transport=transport.upper(), host=via_host, port=via_port,
              params={"branch": branch or new_branch(), "rport": None})
    h.add("Via", str(via))
    h.add("Max-Forwards", "70")                       # RFC 3261 §8.1.1.6
    for route in routes:
        h.add("Route", route)
    h.add("From", str(from_))
    h.add("To", str(to))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contact:
        h.add("Contact", contact)
    if user_agent:
        h.add("User-Agent", user_agent)
    for name, value in extra:
        h.add(name, value)
    if body:
        h.add("Content-Type", content_type or "application/sdp")
    return Request(method=method, uri=uri, headers=h, body=body)


def rebranch(request: Request, cseq: int | None = None) -> Request:
    """A copy of ``request`` as a new transaction: a fresh Via branch and, if given, a new
    CSeq number (RFC 3261 §8.1.3.5: a retry after a challenge is a new request)."""
    h = request.headers.copy()
    via = Via.parse(h.values("Via")[0])
    params = dict(via.params)
    params["branch"] = new_branch()
    h.set("Via", str(Via(transport=via.transport, host=via.host, port=via.port, params=params)))
    if cseq is not None:
        h.set("CSeq", f"{cseq} {request.method}")
    return Request(method=request.method, uri=request.uri, headers=h, body=request.body)


@dataclass
class Dialog:
    """RFC 3261 §12: the state both ends keep for the life of a call."""
    call_id: str
    local: NameAddr                 # our From in our requests (with our tag)
    remote: NameAddr                # their To in our requests (with their tag)
    remote_target: URI
    route_set: list[str]            # Route header values for our requests, in order
    local_cseq: int
    remote_cseq: int | None
    transport: str                  # the transport the call was set up on ("udp" | "tcp")

    @property
    def local_tag(self) -> str | None:
        return self.local.tag

    @property
    def remote_tag(self) -> str | None:
        return self.remote.tag

    @classmethod
    def as_uac(cls, request: Request, response: Response, transport: str) -> "Dialog":
        # RFC 3261 §12.1.2: route set = Record-Route of the response, reversed; remote target =
        # its Contact; remote tag = the To tag; local CSeq = the request's.
        routes = list(reversed(response.headers.values("Record-Route")))
        contacts = _contacts(response)
        # INTEROP(broken UAS): a 2xx without (a readable) Contact; the Request-URI is the best
        # target left
        target = contacts[0].uri if contacts else request.uri
        return cls(call_id=request.call_id, local=request.from_, remote=response.to,
                   remote_target=target, route_set=routes, local_cseq=request.cseq[0],
                   remote_cseq=None, transport=transport)

    @classmethod
    def as_uas(cls, request: Request, local_tag: str, transport: str,
               source: tuple[str, int]) -> "Dialog":
        # RFC 3261 §12.1.1: route set = Record-Route of the request, in order; remote target =
        # its Contact; remote CSeq = the request's.
        routes = list(request.headers.values("Record-Route"))
        contacts = _contacts(request)
        if contacts:
            target = contacts[0].uri
        else:   # INTEROP(broken UAC): an INVITE without Contact; answer where it came from
            target = URI(scheme="sip", host=source[0], port=source[1])
        to = request.to
        local = NameAddr(uri=to.uri, display=to.display, params={**to.params, "tag": local_tag})
        return cls(call_id=request.call_id, local=local, remote=request.from_,
                   remote_target=target, route_set=routes, local_cseq=0,
                   remote_cseq=request.cseq[0], transport=transport)

    def strict_router(self) -> str | None:
        """The first route when it is a strict router (no ;lr): we only do loose routing
        (RFC 3261 §12.2.1.1 keeps strict routing for RFC 2543 proxies)."""
        for route in self.route_set[:1]:
            try:
                first = NameAddr.parse(route)
            except ValueError:
                return route                    # unreadable: we cannot route through it
            if "lr" not in first.uri.params:
                return route
        return None

    def next_hop(self) -> tuple[tuple[str, int], str]:
        """Where an in-dialog request goes (RFC 3261 §12.2.1.1, §8.1.2): the first route's
        address when there is a route set, else the remote target's; and over which transport."""
        uri = NameAddr.parse(self.route_set[0]).uri if self.route_set else self.remote_target
        transport = uri.transport
        if transport not in ("udp", "tcp"):
            # none said (or one we do not speak, e.g. tls, ws): the call's own
            transport = self.transport
        return uri.hostport(), transport

    def update_target(self, message: Request | Response) -> None:
        """A target refresh (re-INVITE or its 2xx) replaces the remote target (§12.2)."""
        contacts = _contacts(message)
        if contacts:
            self.remote_target = contacts[0].uri

    def request(self, method: str, *, via_host: str, via_port: int, contact: str | None,
                user_agent: str | None, cseq: int | None = None,
                extra: Sequence[tuple[str, str]] = (), body: bytes = b"",
                content_type: str | None = None, branch: str | None = None) -> Request:
        """A request inside the dialog (RFC 3261 §12.2.1.1). A new CSeq unless ``cseq`` is
        given (ACK and CANCEL reuse the INVITE's)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        _, transport = self.next_hop()
        return build_request(method, self.remote_target, call_id=self.call_id, cseq=cseq,
                             from_=self.local, to=self.remote, via_host=via_host,
                             via_port=via_port, transport=transport, routes=self.route_set,
                             contact=contact, user_agent=user_agent, extra=extra, body=body,
                             content_type=content_type, branch=branch)


def _contacts(message: Request | Response) -> list[NameAddr]:
    """The Contacts fit for a remote target (sip:/sips: with a host); a malformed Contact is
    as if there were none (the caller decides what to do then)."""
    try:
        contacts = message.contacts
    except ValueError:
        return []
    return [c for c in contacts if c.uri.scheme in ("sip", "sips") and c.uri.host]


@dataclass
class AuthState:
    """Digest retries for one request stream (a call's INVITEs, or a registration): RFC 3261
    §22.2 and RFC 7616. One retry per challenge (realm, and proxy or not); a second challenge
    for the same realm is retried once more only when it says stale=true (a new nonce, the
    password was right)."""
    tried: dict[tuple[bool, str], int] = field(default_factory=dict)
    # per challenge answered: (the challenge, the nonce count for its next use)
    current: dict[tuple[bool, str], tuple[_auth.Challenge, int]] = field(default_factory=dict)
    failure: str = ""

    def retry(self, credentials: _auth.Credentials | None, request: Request,
              response: Response, cseq: int) -> Request | None:
        """The request to send again with credentials, or None (then ``failure`` says why)."""
        proxy = response.status == 407
        name = "proxy-authenticate" if proxy else "www-authenticate"
        if credentials is None:
            self.failure = f"{response.status} challenge and no credentials configured"
            return None
        challenges = []
        for value in response.headers.getall(name):
            try:
                challenges.extend(_auth.parse_challenges(value, proxy=proxy))
            except ValueError:
                continue
        challenge = _auth.choose(challenges, credentials)
        if challenge is None:
            self.failure = f"{response.status} without a usable digest challenge"
            return None
        if credentials.realm is not None and credentials.realm != challenge.realm:
            self.failure = (f"{response.status} for realm {challenge.realm!r}; our credentials "
                            f"are for {credentials.realm!r}")
            return None
        key = (proxy, challenge.realm)
        count = self.tried.get(key, 0)
        if count >= 2 or (count == 1 and not challenge.stale):
            self.failure = (f"{response.status}: credentials for realm {challenge.realm!r} "
                            "refused")
            return None
        self.tried[key] = count + 1
        previous = self.current.get(key)
        nc = previous[1] if previous and previous[0].nonce == challenge.nonce else 1
        self.current[key] = (challenge, nc)
        new = rebranch(request, cseq)
        self.apply(new, credentials)
        return new

    def apply(self, request: Request, credentials: _auth.Credentials) -> None:
        """Put an Authorization/Proxy-Authorization for every challenge answered so far."""
        request.headers.remove("Authorization")
        request.headers.remove("Proxy-Authorization")
        for key, (challenge, nc) in list(self.current.items()):
            value = _auth.authorization(challenge, credentials, request.method, str(request.uri),
                                        nc=nc, body=request.body)
            request.headers.add("Proxy-Authorization" if key[0] else "Authorization", value)
            self.current[key] = (challenge, nc + 1)     # RFC 7616 §3.4: nc counts up per use


# ---------------------------------------------------------------- calls
class State(str, Enum):
    CALLING = "calling"             # outbound: INVITE sent, nothing back yet
    EARLY = "early"                 # outbound: a provisional came back
    INCOMING = "incoming"           # inbound: INVITE received, the driver has not answered
    ANSWERING = "answering"         # inbound: our 2xx sent, waiting for the ACK
    CONFIRMED = "confirmed"
    CANCELLING = "cancelling"       # outbound: hung up before the answer
    ENDING = "ending"               # BYE sent
    ENDED = "ended"


S = State
# Every move a call may make, both roles in one table (RFC 3261 §13, RFC 3261 §15). A call
# leaves the table only by being forgotten (ENDED, from any state: Call.finish()). Anything
# else is a bug of ours: Call.move() raises LocalProtocolError.
TRANSITIONS: frozenset[tuple[State, State]] = frozenset({
    (S.CALLING, S.EARLY),           # a provisional                      RFC 3261 §13.2.2.1
    (S.CALLING, S.CONFIRMED),       # a 2xx                              RFC 3261 §13.2.2.4
    (S.CALLING, S.CANCELLING),      # hung up / invite_timeout           RFC 3261 §9.1
    (S.EARLY, S.CONFIRMED),
    (S.EARLY, S.CANCELLING),
    (S.EARLY, S.CALLING),           # a new INVITE (auth, redirect, G.711 fall-back)
    (S.CALLING, S.CALLING),
    (S.CANCELLING, S.ENDING),       # a 2xx crossed our CANCEL: ACK, BYE  RFC 3261 §15
    (S.INCOMING, S.ANSWERING),      # answer(): our 2xx                  RFC 3261 §13.3.1.4
    (S.ANSWERING, S.CONFIRMED),     # their ACK
    (S.ANSWERING, S.ENDING),        # no ACK in 64*T1, or hung up and the ACK came: BYE
    (S.CONFIRMED, S.ENDING),        # hangup(): BYE                      RFC 3261 §15.1.1
})


@dataclass(eq=False)
class Call:
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
    ok_offer: object = None         # our offer in that 2xx (theirs had none): answer in the ACK
    # our re-INVITE
    reinvite_txn: object = None
    reinvite_offer: object = None
    reinvite_request: Request | None = None
    switch_wanted: bool = False
    bye_wanted: bool = False        # hang up as soon as the ACK for our 2xx comes
    live: set = field(default_factory=set)      # ids of our client transactions still running
    answered_at: float | None = None
    t38_switch: dict | None = None

    def move(self, new: State) -> None:
        if (self.state, new) not in TRANSITIONS:
            raise LocalProtocolError(f"call {self.call_id}: {self.state.value} -> {new.value}")
        self.state = new

    def finish(self) -> None:
        self.state = State.ENDED

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


# ---------------------------------------------------------------- summaries and redaction
_URI_PASSWORD = re.compile(r"(sips?:[^:@;\s<>]+):[^@\s<>]*@", re.IGNORECASE)


def summarize(data: bytes) -> tuple[str, str | None]:
    """(summary, Call-ID) of an encoded message, for SipMessage: the first line (a password in
    a URI removed) plus " (SDP: audio,t38)" with the usable media kinds when it carries SDP."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    first = _URI_PASSWORD.sub(r"\1@", lines[0][:300].decode("utf-8", "replace"))
    call_id = None
    sdp = False
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        key = name.strip().lower()
        if key in (b"call-id", b"i") and call_id is None:
            call_id = value.strip().decode("utf-8", "replace")[:200]
        elif key in (b"content-type", b"c"):
            sdp = b"application/sdp" in value.lower()
    if sdp and body.strip():
        kinds = []
        for line in body.splitlines():
            if line.startswith(b"m="):
                parts = line[2:].split()
                if len(parts) >= 2 and parts[1] != b"0":
                    kind = parts[0].decode("ascii", "replace")
                    kinds.append("t38" if kind == "image" else kind)
        first += f" (SDP: {','.join(kinds) or 'none'})"
    return first, call_id


def redacted_headers(headers: Headers) -> tuple[tuple[str, str], ...]:
    """Every header, with credentials (Authorization, Proxy-Authorization) redacted."""
    out = []
    for name, value in headers.items():
        if name.lower() in _CREDENTIAL_HEADERS:
            try:
                value = _auth.redact(value)
            except Exception:       # a value we cannot even parse: hide all of it
                value = "<redacted>"
        out.append((name, value))
    return tuple(out)


def uri_user(uri: URI) -> str | None:
    """The user part of a sip: URI, or the number of a tel: URI."""
    if uri.scheme == "tel":
        return uri.host or uri.user
    return uri.user


def end_reason(status: int) -> str:
    """CallEnded.reason for a final non-2xx answer to an INVITE."""
    if 300 <= status < 400:
        return "redirected"
    return {486: "busy", 600: "busy", 603: "declined", 404: "not_found", 604: "not_found",
            408: "no_answer", 480: "no_answer", 503: "unavailable", 401: "auth_failed",
            407: "auth_failed", 488: "not_acceptable", 606: "not_acceptable",
            487: "cancelled"}.get(status, "server_error" if 500 <= status < 600 else "rejected")
