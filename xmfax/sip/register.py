"""REGISTER (RFC 3261 §10): one registration binding our Contact to an address of record at a
registrar, refreshed at half the granted expiry, with digest auth on 401/407. Sans-IO: it
builds requests and reads responses; the user agent sends them and keeps the clock."""
from __future__ import annotations

from dataclasses import dataclass, field

from .dialog import AuthState, build_request
from .events import Event, Registered, RegistrationFailed
from .message import NameAddr, Request, Response, URI, new_call_id, new_tag

__all__ = ["Registration"]

RETRY_AFTER_FAILURE = 60.0      # seconds before trying a failed registration again


@dataclass
class Registration:
    registrar: str                  # "sip:user@registrar[:port]" as configured
    aor: URI                        # the address of record (To/From)
    uri: URI                        # the Request-URI: the registrar's domain (RFC 3261 §10.2)
    call_id: str
    tag: str
    expires: int                    # what we ask for
    cseq: int = 0
    granted: int = 0                # what we were given (0: not registered)
    pending: bool = False           # a REGISTER is in flight
    removing: bool = False          # the one in flight has expires=0
    refresh_at: float | None = None
    auth: AuthState = field(default_factory=AuthState)

    @classmethod
    def create(cls, registrar: str, host: str, expires: int,
               user: str | None = None) -> "Registration":
        """``registrar``: "sip:user@registrar[:port]" (without a user part, ``user``'s AOR)."""
        target = URI.parse(registrar)
        if target.scheme != "sip" or not target.host or not (target.user or user):
            raise ValueError(f"registrar {registrar!r}: expected sip:user@host[:port]")
        aor = URI(scheme=target.scheme, user=target.user or user, host=target.host)
        uri = URI(scheme=target.scheme, host=target.host, port=target.port,
                  params={k: v for k, v in target.params.items() if k == "transport"})
        # RFC 3261 §10.2.4: every REGISTER of one binding uses the same Call-ID
        return cls(registrar=registrar, aor=aor, uri=uri, call_id=new_call_id(host),
                   tag=new_tag(), expires=expires)

    @property
    def dest(self) -> tuple[str, int]:
        return self.uri.hostport()

    def build(self, *, expires: int, contact: URI, via_host: str, via_port: int,
              transport: str, user_agent: str | None, display: str | None) -> Request:
        self.cseq += 1                                         # RFC 3261 §10.2: CSeq goes up
        self.pending = True
        self.removing = expires == 0
        me = NameAddr(uri=self.aor, display=display)
        return build_request(
            "REGISTER", self.uri, call_id=self.call_id, cseq=self.cseq,
            from_=NameAddr(uri=self.aor, display=display, params={"tag": self.tag}), to=me,
            via_host=via_host, via_port=via_port, transport=transport,
            contact=f"<{contact}>;expires={expires}", user_agent=user_agent,
            extra=(("Expires", str(expires)),))

    def on_success(self, response: Response, contact: URI, now: float) -> list[Event]:
        self.pending = False
        self.auth = AuthState()
        if self.removing:
            self.granted = 0
            self.refresh_at = None
            return [Registered(now, self.registrar, 0)]
        granted = self._granted(response, contact)
        self.granted = granted
        # refresh at half the granted expiry (as the contract asks; RFC 3261 §10.2.4 leaves it
        # to the UA); a registrar granting 0 s gets a retry later rather than a busy loop
        self.refresh_at = now + max(granted / 2, 1.0) if granted else now + RETRY_AFTER_FAILURE
        return [Registered(now, self.registrar, granted)]

    def _granted(self, response: Response, contact: URI) -> int:
        # RFC 3261 §10.2.4: the expires param of our Contact in the 200, else Expires, else asked
        ours = None
        try:
            for c in response.contacts:
                if c.uri.host == contact.host and c.uri.port == contact.port and \
                        (c.uri.user or "") == (contact.user or ""):
                    ours = c
                    break
        except ValueError:
            pass
        for text in ((ours.params.get("expires") if ours else None),
                     response.headers.get("Expires")):
            if text is not None:
                try:
                    return max(0, int(text.strip()))
                except ValueError:
                    continue
        return self.expires

    def on_failure(self, status: int | None, reason: str, now: float) -> list[Event]:
        self.pending = False
        self.auth = AuthState()
        if self.removing:
            self.refresh_at = None
            self.granted = 0
            return [RegistrationFailed(now, self.registrar, status, reason)]
        self.granted = 0
        self.refresh_at = now + RETRY_AFTER_FAILURE
        return [RegistrationFailed(now, self.registrar, status, reason)]

    def interval_too_brief(self, response: Response) -> bool:
        """423: ask again with the registrar's Min-Expires (RFC 3261 §10.2.8); False if the
        response gives nothing usable or we already asked for at least that."""
        try:
            minimum = int((response.headers.get("Min-Expires") or "").strip())
        except ValueError:
            return False
        if minimum <= self.expires:
            return False
        self.expires = minimum
        return True
