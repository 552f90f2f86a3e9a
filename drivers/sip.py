"""SIP over UDP and TCP: the asyncio driver around the sans-IO user agent (xmfax/sip/ua.py),
and fax calls set up by it with the fax itself over T.38 (drivers/t38_udp.py), or over G.711
audio when T.38 cannot be had (drivers/audio_rtp.py).

    outcome = await send_fax(make_session, "sip:+15550100@192.0.2.7:5060;transport=tcp")

    endpoint = await SipEndpoint.open(("0.0.0.0", 5060), transport="udp")
    endpoint.on_incoming = lambda call: ...          # an IncomingCall: answer_fax(...) or reject
    ...
    await endpoint.close()

:class:`SipEndpoint` is the one small pump of the user agent: bytes from the sockets
(:mod:`drivers.sip_transport`) and the event loop's clock go in, bytes to send and events
come out; the events of each call go to that call's queue. :func:`send_fax` and
:func:`answer_fax` run one fax call on top of it: INVITE or answer, wait for T.38 (offered
directly, or a re-INVITE by either end), the T.30 session over the T.38 socket, then BYE.
Each call has its own media sockets, bound before the offer or answer: one for T.38
(UDPTL) and one for RTP audio, which drains what arrives until the fax needs it. A call
that cannot switch to T.38 (488 to our re-INVITE, or no switch within the wait) goes on as
an audio fax over G.711 on the call's RTP socket with the negotiated codec
(drivers/audio_rtp.py); with the option ``audio_fallback=False`` it ends with BYE and
reason ``t38_refused`` instead. The record's ``sip["media"]`` says which carried the fax.

Nothing here raises for what the far end does: the outcome of a call is a
:class:`SipOutcome` (the T.30 result, or a call-level reason with its detail).
"""
from __future__ import annotations

import asyncio
import dataclasses
import socket
from dataclasses import dataclass, field
from typing import Any, Callable

from xmfax.errors import DriverError, DriverTimeoutError
from xmfax.sip.events import (Answered, CallEnded, IncomingCall, MediaChanged, MediaRefused,
                              Registered, RegistrationFailed, SipMessage)
from xmfax.sip.message import URI, SIPParseError
from xmfax.sip.ua import UAConfig, UserAgent
from xmfax.t38.config import T38Config

from . import t38_udp
from .sip_transport import Address, SipTransport, resolve, route_source

__all__ = ["SipEndpoint", "SipOutcome", "CallMedia", "send_fax", "answer_fax", "parse_sip_listen",
           "parse_sip_target", "ua_options", "hostport", "T38_WAIT"]

# How long a call on audio waits for T.38 (a re-INVITE from either end) before it gives up
# as t38_refused: the far end's own switch comes within seconds, ours after
# UAConfig.t38_switch_after plus at most a transaction timeout (64*T1 = 32 s).
T38_WAIT = 40.0
# With audio fallback on, a call that neither end has switched to T.38 this long after the
# answer goes on as an audio fax: an audio-only fax terminal on the far end gives up its
# T.30 T1 (35 s, T.30 §5.1) long before T38_WAIT. Both xmfax ends switch within 1-3 s.
AUDIO_WAIT = 8.0
# After the fax: how long the answering side waits for the caller's BYE before sending its own,
# and how long either side waits for the BYE's answer.
BYE_WAIT = 2.0
# The caller's own T.38 re-INVITE comes this long after the answer, unless told otherwise.
SEND_SWITCH_AFTER = 3.0
# UAConfig fields a caller may set: the driver fills in host and port, the transport comes
# from the URL, credentials and t38 have keywords of their own.
_UA_FIELDS = {f.name for f in dataclasses.fields(UAConfig)} - {"host", "port", "transport", "credentials", "t38"}
# The driver's own options, beside UAConfig's: fax over G.711 when T.38 cannot be had, and
# how long to wait for a switch before doing so (default AUDIO_WAIT).
_DRIVER_FIELDS = {"audio_fallback", "audio_wait"}


def ua_options(options: dict | None) -> dict:
    """Check a dict of UAConfig keywords (``{"offer": "t38", "t38_switch_after": None}``) and
    the driver's own (``{"audio_fallback": False}``, ``{"audio_wait": 5.0}``)."""
    options = dict(options or {})
    unknown = set(options) - _UA_FIELDS - _DRIVER_FIELDS
    if unknown:
        raise ValueError(f"unknown SIP option(s) {sorted(unknown)}; known: {sorted(_UA_FIELDS | _DRIVER_FIELDS)}")
    if options.get("offer", "audio") not in ("audio", "t38"):
        raise ValueError(f"SIP offer {options['offer']!r}: 'audio' (G.711 first) or 't38'")
    if not isinstance(options.get("audio_fallback", True), bool):
        raise ValueError(f"SIP audio_fallback {options['audio_fallback']!r}: True or False")
    wait = options.get("audio_wait", AUDIO_WAIT)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or not 0 < wait <= T38_WAIT:
        raise ValueError(f"SIP audio_wait {wait!r}: seconds, more than 0 and at most {T38_WAIT:g}")
    return options


def parse_sip_target(url: str) -> URI:
    """``sip:+15550100@host[:port][;transport=tcp]`` as a URI; ValueError when it is not one."""
    try:
        uri = URI.parse(url)
    except SIPParseError as exc:
        raise ValueError(f"bad SIP address {url!r}: {exc.reason}") from None
    if uri.scheme not in ("sip", "sips") or not uri.host:
        raise ValueError(f"bad SIP address {url!r}: sip:NUMBER@HOST[:PORT][;transport=tcp]")
    if uri.scheme == "sips":
        raise ValueError(f"{url!r}: sips (TLS) is not supported; use sip:")
    if (uri.transport or "udp") not in ("udp", "tcp"):
        raise ValueError(f"{url!r}: transport={uri.transport}: udp or tcp")
    return uri


def parse_sip_listen(url: str) -> tuple[Address, str]:
    """``sip://HOST:PORT[;transport=tcp]`` as ((host, port), transport). Port 0: any free
    port; no port: 5060."""
    if not url.startswith("sip://"):
        raise ValueError(f"not a sip:// listening address: {url!r}")
    rest = url[len("sip://"):]
    hostport, *params = rest.split(";")
    transport = "udp"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "transport":
            raise ValueError(f"unknown parameter {name!r} in {url!r}: only ;transport=udp|tcp")
        transport = value.strip().lower()
        if transport not in ("udp", "tcp"):
            raise ValueError(f"{url!r}: transport={value}: udp or tcp")
    host, port = t38_udp.parse_hostport(hostport.rstrip("/"), default_port=5060)
    return (host, port), transport


def _wildcard(host: str) -> bool:
    return host in ("0.0.0.0", "::", "")


def hostport(address: tuple[str, int]) -> str:
    """("192.0.2.7", 5060) -> "192.0.2.7:5060"; ("2001:db8::1", 5060) -> "[2001:db8::1]:5060"."""
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# --------------------------------------------------------------------------- the pump
class _Channel:
    """What the driver keeps of one call: its UA events in order, and its SIP messages."""

    def __init__(self, start: float):
        self.start = start
        self.queue: asyncio.Queue = asyncio.Queue()
        self.messages: list[SipMessage] = []
        self.ended: CallEnded | None = None
        self.heard = asyncio.Event()            # set on every new message of the call


class SipEndpoint:
    """One user agent on one local address: the sockets, the timer, the calls' queues.

    ``on_incoming(IncomingCall)`` is called (in the loop) for each new call; while
    ``accepting`` is False (or with no ``on_incoming``) new calls are answered 503 at once.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport = SipTransport(self._on_message, self._on_send_failed)
        self.ua: UserAgent | None = None
        self.config: UAConfig | None = None
        self.local: Address | None = None
        self.audio_fallback = True          # fax over G.711 when T.38 cannot be had
        self.audio_wait = AUDIO_WAIT        # ... after this long with no switch to T.38
        self.on_incoming: Callable[[IncomingCall], None] | None = None
        self.accepting = True
        self.registration: Registered | RegistrationFailed | None = None
        self._registration_changed = asyncio.Event()
        self._channels: dict[str, _Channel] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: float | None = None
        self._pumping = False

    @classmethod
    async def open(cls, bind: Address, *, transport: str = "udp", host: str | None = None,
                   peer: str | None = None, credentials: Any = None, t38: T38Config | None = None,
                   **options: Any) -> "SipEndpoint":
        """Bind UDP and TCP on ``bind`` and start a UserAgent there. ``host``: the address
        for Via, Contact and SDP (default: the bound one; bound to a wildcard, the one the
        kernel would use to reach ``peer``, or to reach anywhere). DriverError if the port
        is taken."""
        self = cls()
        kwargs = dict(ua_options(options))         # bad options: ValueError before any socket
        self.audio_fallback = kwargs.pop("audio_fallback", True)
        self.audio_wait = float(kwargs.pop("audio_wait", AUDIO_WAIT))
        if t38 is not None:
            kwargs["t38"] = t38
        self.local = await self.transport.open(bind)
        try:
            if host is None:
                host = self.local[0]
                if _wildcard(host):
                    host = route_source(peer or ("2001:db8::1" if ":" in bind[0] else "192.0.2.1"),
                                        "::1" if ":" in bind[0] else "127.0.0.1")
            self.config = UAConfig(host=host, port=self.local[1], transport=transport, credentials=credentials,
                                   **kwargs)
            self.ua = UserAgent(self.config, self.loop.time())
        except BaseException:
            await self.transport.close()
            raise
        return self

    # ---------------------------------------------------------------- driver -> core
    def _on_message(self, data: bytes, source: Address, transport: str) -> None:
        if self.ua is None:
            return
        self.ua.receive(data, source, transport, self.loop.time())
        self._pump()

    def _on_send_failed(self, dest: Address, transport: str, error: str) -> None:
        if self.ua is None:
            return
        self.ua.transport_failed(dest, transport, error, self.loop.time())   # RFC 3261 §17.1.4
        self._pump()

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = None
        if self.ua is None:
            return
        self.ua.handle_timer(self.loop.time())
        self._pump()

    def _pump(self) -> None:
        """Send what the UA queued, route its events, re-arm the timer; until it is quiet."""
        if self._pumping or self.ua is None:
            return
        self._pumping = True
        try:
            while True:
                out = self.ua.outgoing()
                for o in out:
                    self.transport.send(o.data, o.dest, o.transport)
                events = self.ua.events()
                if not out and not events:
                    break
                self._route(events)
        finally:
            self._pumping = False
        self._arm()

    def _route(self, events: list) -> None:
        unclaimed: dict[str, list[SipMessage]] = {}     # messages of a call not known yet
        for ev in events:
            call_id = getattr(ev, "call_id", None)
            if isinstance(ev, SipMessage):
                channel = self._channels.get(call_id) if call_id else None
                if channel is not None:
                    channel.messages.append(ev)
                    channel.heard.set()
                elif call_id:
                    unclaimed.setdefault(call_id, []).append(ev)
            elif isinstance(ev, IncomingCall):
                if not self.accepting or self.on_incoming is None:
                    self.ua.reject(ev.call_id, 503, "Service Unavailable", self.loop.time())
                    continue
                channel = self._channels[ev.call_id] = _Channel(ev.time)
                channel.messages.extend(unclaimed.pop(ev.call_id, []))
                self.on_incoming(ev)
            elif isinstance(ev, (Registered, RegistrationFailed)):
                self.registration = ev
                self._registration_changed.set()
            elif call_id is not None:
                channel = self._channels.get(call_id)
                if channel is None:
                    continue
                if isinstance(ev, CallEnded):
                    channel.ended = ev
                channel.queue.put_nowait(ev)

    def _arm(self) -> None:
        t = self.ua.next_timer() if self.ua is not None else None
        if t == self._timer_at:
            return
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        if t is not None:
            self._timer_at = t
            self._timer = self.loop.call_at(t, self._on_timer)

    # ---------------------------------------------------------------- commands
    def now(self) -> float:
        return self.loop.time()

    def invite(self, target: str, *, audio_port: int | None, t38_port: int | None,
               headers: tuple[tuple[str, str], ...] = ()) -> str:
        """Place a call; its Call-ID (its events go to :meth:`channel`)."""
        now = self.loop.time()
        call_id = self.ua.invite(target, audio_port=audio_port, t38_port=t38_port, now=now, headers=headers)
        self._channels[call_id] = _Channel(now)
        self._pump()
        return call_id

    def command(self, name: str, *args: Any, **kwargs: Any) -> None:
        """``ua.<name>(*args, now=..., **kwargs)``, then pump (answer, reject, hangup ...)."""
        getattr(self.ua, name)(*args, now=self.loop.time(), **kwargs)
        self._pump()

    def channel(self, call_id: str) -> _Channel:
        return self._channels[call_id]

    def release(self, call_id: str) -> None:
        """The driver is done with this call: forget its queue."""
        self._channels.pop(call_id, None)

    @property
    def calls(self) -> int:
        return len(self._channels)

    async def register(self, timeout: float = 40.0) -> Registered:
        """REGISTER (UAConfig.registrar) and wait for the answer; DriverError if it fails."""
        self.registration = None
        self._registration_changed.clear()
        self.command("register")
        try:
            async with asyncio.timeout(timeout):
                while self.registration is None:
                    self._registration_changed.clear()
                    await self._registration_changed.wait()
        except TimeoutError:
            raise DriverTimeoutError(f"no answer from registrar {self.config.registrar} in {timeout:.0f} s") from None
        reg = self.registration
        if isinstance(reg, RegistrationFailed):
            status = f"{reg.status} " if reg.status and not reg.reason.startswith(str(reg.status)) else ""
            raise DriverError(f"registration with {reg.registrar} failed: {status}{reg.reason}")
        return reg

    def _settled(self) -> bool:
        """Nothing left but transactions lingering to absorb retransmissions (Timers D, I, K):
        no call the driver still follows, no request of ours waiting for its final answer
        (a CANCELled INVITE still needs its 487 ACKed, RFC 3261 §17.1.1.3), no REGISTER
        pending."""
        reg = getattr(self.ua, "registration", None)
        return (not self._channels and self.ua.txn.pending == 0
                and not (reg is not None and reg.pending))

    async def close(self, timeout: float = 5.0) -> None:
        """Hang up every call, unregister, wait (up to ``timeout``) until the UA is idle, close."""
        if self.ua is not None:
            self.accepting = False
            try:
                self.command("close")
                async with asyncio.timeout(timeout):
                    while not self.ua.idle and not self._settled():
                        await asyncio.sleep(0.02)
            except TimeoutError:
                pass
            finally:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer, self._timer_at = None, None
                self.ua = None
        await self.transport.close()


# --------------------------------------------------------------------------- media
class _Drain(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.datagrams = 0

    def datagram_received(self, data: bytes, addr) -> None:
        self.datagrams += 1


class CallMedia:
    """The media sockets of one call, bound before the offer or answer: T.38 (a plain
    socket handed to t38_udp.run_call, which then owns it) and RTP audio (drained through a
    second descriptor of its socket until an audio fax takes the socket: take_audio)."""

    def __init__(self) -> None:
        self.t38_sock: socket.socket | None = None
        self.t38_port = 0
        self.audio_sock: socket.socket | None = None
        self.audio: asyncio.DatagramTransport | None = None
        self.audio_drain: _Drain | None = None
        self.audio_port = 0

    @classmethod
    async def open(cls, host: str) -> "CallMedia":
        self = cls()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            self.t38_sock = socket.socket(family, socket.SOCK_DGRAM)
            self.t38_sock.bind((host, 0))
            self.t38_port = self.t38_sock.getsockname()[1]
            self.audio_sock = socket.socket(family, socket.SOCK_DGRAM)
            self.audio_sock.bind((host, 0))
            self.audio_port = self.audio_sock.getsockname()[1]
            drain = self.audio_sock.dup()        # closed with the drain; the port stays bound
            try:
                drain.setblocking(False)
                self.audio, self.audio_drain = await asyncio.get_running_loop().create_datagram_endpoint(
                    _Drain, sock=drain)
            except BaseException:
                drain.close()
                raise
        except OSError as exc:
            self.close()
            raise DriverError(f"cannot open media sockets on {host}: {exc}") from exc
        return self

    def take_t38(self) -> socket.socket:
        sock, self.t38_sock = self.t38_sock, None
        return sock

    def take_audio(self) -> socket.socket:
        """The RTP socket for drivers/audio_rtp.py (which then owns it); draining stops."""
        if self.audio is not None:
            self.audio.close()
            self.audio = None
        sock, self.audio_sock = self.audio_sock, None
        return sock

    def close(self) -> None:
        if self.t38_sock is not None:
            self.t38_sock.close()
            self.t38_sock = None
        if self.audio is not None:
            self.audio.close()
            self.audio = None
        if self.audio_sock is not None:
            self.audio_sock.close()
            self.audio_sock = None


# --------------------------------------------------------------------------- one fax call
@dataclass
class SipOutcome:
    """How a SIP fax call went. ``t30``: the T.30 result when the fax ran (``session`` is
    the session that ran it); otherwise ``reason``/``detail`` say why the call failed
    (``session`` may still hold a log when T.38 failed as a transport)."""

    t30: Any = None
    session: Any = None
    reason: str = ""
    detail: str = ""
    error: Exception | None = None              # a DriverError from the T.38 run
    t0: float = 0.0                             # loop time the call started (the ladder's zero)
    sip: dict = field(default_factory=dict)     # FaxResult.sip
    messages: list = field(default_factory=list)    # the call's SipMessage events


class _Failed(Exception):
    def __init__(self, reason: str, detail: str = "", status: int | None = None):
        super().__init__(detail or reason)
        self.reason, self.detail, self.status = reason, detail, status


def _t38_params(config: T38Config) -> dict:
    return {"version": config.version, "max_bit_rate": config.max_bit_rate,
            "rate_management": config.rate_management, "max_buffer": config.max_buffer,
            "max_datagram": config.max_datagram, "udp_ec": config.udp_ec,
            "fill_bit_removal": config.fill_bit_removal, "transcoding_mmr": config.transcoding_mmr,
            "transcoding_jbig": config.transcoding_jbig}


def _ended_detail(ev: CallEnded) -> str:
    if ev.reason == "hangup" and ev.by == "remote":
        return "far end hung up (BYE)"
    status = f" ({ev.status})" if ev.status else ""
    return f"SIP call ended: {ev.reason}{status}" + (f": {ev.detail}" if ev.detail else "")


class _FaxCall:
    """Drives one call from its INVITE (or IncomingCall) to BYE."""

    def __init__(self, ep: SipEndpoint, call_id: str, media: CallMedia, *, role: str, realtime: bool,
                 max_duration: float, t38_wait: float):
        self.ep = ep
        self.call_id = call_id
        self.channel = ep.channel(call_id)
        self.media = media
        self.role = role
        self.realtime = realtime
        self.max_duration = max_duration
        self.t38_wait = t38_wait
        self.outcome = SipOutcome(t0=self.channel.start)
        self.outcome.sip = {"call_id": call_id, "ani": None, "dnis": None, "final_status": None,
                            "media": None, "t38": None, "t38_switch": None, "transport": ep.config.transport,
                            "remote_media": None}

    def _since(self, t: float) -> float:
        return round(t - self.channel.start, 3)

    async def _next(self, until: float) -> Any:
        """The call's next UA event; None when the loop clock reaches ``until``."""
        wait = until - self.ep.now()
        if wait <= 0:
            return None
        try:
            async with asyncio.timeout(wait):
                return await self.channel.queue.get()
        except TimeoutError:
            return None

    def _ended(self, ev: CallEnded, before: str) -> _Failed:
        if ev.reason == "hangup":
            return _Failed("line_lost", f"{_ended_detail(ev)} {before}", ev.status)
        return _Failed(ev.reason, ev.detail or _ended_detail(ev), ev.status)

    async def answered(self, timeout: float) -> Any:
        """Outbound: wait for the 2xx (ACKed); inbound: for the ACK of our 2xx. The media."""
        until = self.ep.now() + timeout
        while True:
            ev = await self._next(until)
            if ev is None:
                raise _Failed("no_answer", f"no answer to the INVITE in {timeout:.0f} s")
            if isinstance(ev, CallEnded):
                self.outcome.sip["final_status"] = ev.status
                raise self._ended(ev, "before the call was answered")
            if isinstance(ev, Answered):
                return ev.media
            if isinstance(ev, MediaChanged):        # a re-INVITE completed before our ACK was seen
                return ev.media

    async def t38(self, media: Any) -> Any:
        """The call's fax media: T.38 from the answer, or the one a re-INVITE switches to;
        else (488 to our re-INVITE, or no switch in time) the call's audio when
        ``ep.audio_fallback``, or _Failed("t38_refused")."""
        if media.kind == "t38":
            self._switched("offer", self.ep.now())
            return media
        fallback = self.ep.audio_fallback
        wait = min(self.t38_wait, self.ep.audio_wait) if fallback else self.t38_wait
        until = self.ep.now() + wait
        while True:
            ev = await self._next(until)
            if ev is None:
                if fallback:
                    self.outcome.sip["audio_fallback"] = f"no switch to T.38 within {wait:.0f} s"
                    return media
                raise _Failed("t38_refused", f"no switch to T.38 within {wait:.0f} s; "
                              "hung up (BYE) rather than fax over audio (audio_fallback off)")
            if isinstance(ev, CallEnded):
                raise self._ended(ev, "before T.38")
            if isinstance(ev, MediaChanged):
                if ev.media.kind == "t38":
                    self._switched(ev.by, ev.time)
                    return ev.media
                media = ev.media             # still audio, maybe elsewhere or another codec
            if isinstance(ev, MediaRefused):
                if ev.status == 491:         # glare: the UA retries by itself (RFC 3261 §14.1)
                    continue
                if fallback:
                    self.outcome.sip["audio_fallback"] = f"T.38 re-INVITE answered {ev.status} {ev.reason}"
                    return media
                raise _Failed("t38_refused", f"the far end answered our T.38 re-INVITE {ev.status} "
                              f"{ev.reason}; hung up (BYE) rather than fax over audio (audio_fallback off)",
                              ev.status)

    def _switched(self, by: str, t: float) -> None:
        self.outcome.sip["t38_switch"] = {"by": by, "t": self._since(t)}

    async def run_t38(self, media: Any, make_session: Callable[[T38Config], Any]) -> None:
        """The fax over the T.38 socket; a BYE (or a switch back to audio) from the far end
        ends it at once as a lost line."""
        config = media.t38 if media.t38 is not None else T38Config()
        self.outcome.sip["media"] = "t38"
        self.outcome.sip["t38"] = _t38_params(config)
        self.outcome.sip["remote_media"] = hostport(media.remote)
        session = self.outcome.session = make_session(config)
        host = self.ep.config.host
        await self._run_media("T.38", lambda hangup: t38_udp.run_call(
            session, local=(host, self.media.t38_port), remote=tuple(media.remote), config=config,
            paced=self.realtime, max_duration=self.max_duration, sock=self.media.take_t38(), hangup=hangup))

    async def run_audio(self, media: Any, make_session: Callable[[Any], Any]) -> None:
        """The fax as audio (V.21, V.27 ter, V.29, V.17 over G.711) on the call's RTP socket,
        with the codec the offer/answer agreed. A re-INVITE to T.38 during it (a gateway that
        switches on hearing CED or DIS) moves the fax to T.38: the same T.30 session goes on
        over the T.38 media of that re-INVITE (:meth:`continue_t38`); a BYE ends it as a lost line."""
        from xmfax.audio.terminal import AudioConfig
        from xmfax.rtp import RTPConfig

        from . import audio_rtp

        law = "alaw" if (media.codec or "").upper() == "PCMA" else "ulaw"
        event_pt = media.telephone_event if media.telephone_event and 96 <= media.telephone_event <= 127 else None
        rtp_config = RTPConfig(law=law, payload_type=media.payload_type, event_payload_type=event_pt)
        self.outcome.sip["media"] = "audio"
        self.outcome.sip["audio"] = {"codec": media.codec, "payload_type": media.payload_type}
        self.outcome.sip["remote_media"] = hostport(media.remote)
        audio = AudioConfig()
        session = self.outcome.session = make_session(audio)     # audio.limit_t30: the modems we have
        host = self.ep.config.host
        switch: asyncio.Future = self.ep.loop.create_future()
        started = self.ep.now()
        await self._run_media("audio", lambda hangup: audio_rtp.run_audio_call(
            session, (host, self.media.audio_port), tuple(media.remote), rtp_config, audio,
            max_duration=self.max_duration, sock=self.media.take_audio(), hangup=hangup, switch=switch),
            switch=switch)
        handover = self.outcome.t30
        if isinstance(handover, audio_rtp.Handover):
            self.outcome.t30 = None
            await self.continue_t38(switch.result(), handover,
                                    max(1.0, self.max_duration - (self.ep.now() - started)))

    async def continue_t38(self, ev: MediaChanged, handover: Any, max_duration: float) -> None:
        """The call switched to T.38 (``ev``) during the audio fax: the fax goes on over the
        T.38 media with the same T.30 session, first sending what the audio terminal had not
        sent whole (drivers/audio_rtp.Handover), for what is left of the call's max_duration.
        A BYE, or a switch back to audio, ends it as a lost line, as during any T.38 fax."""
        media = ev.media
        config = media.t38 if media.t38 is not None else T38Config()
        sip = self.outcome.sip
        sip["media"] = "audio>t38"                  # began on audio, went on over T.38
        self._switched(ev.by, ev.time)
        sip["t38"] = _t38_params(config)
        sip["remote_media"] = hostport(media.remote)
        session = handover.session
        host = self.ep.config.host
        await self._run_media("T.38", lambda hangup: t38_udp.run_call(
            session, local=(host, self.media.t38_port), remote=tuple(media.remote), config=config,
            paced=self.realtime, max_duration=max_duration, sock=self.media.take_t38(), hangup=hangup,
            resume=handover.pending))
        if self.outcome.t30 is None and not session.done:
            # the T.38 leg could not run (its socket, a T38MaxBitRate below the audio rate):
            # the session ends as a lost line, so its result says so
            from xmfax.t30.modem import LineLost
            session.receive(LineLost(str(self.outcome.error or "T.38 after the switch failed")),
                            self.ep.now())
            self.outcome.t30 = session.result

    async def _run_media(self, what: str, run: Callable[[asyncio.Future], Any], *,
                         switch: asyncio.Future | None = None) -> None:
        """``run(hangup)`` (the fax over one media), its T30Result kept; a BYE, or a switch
        of the call to other media, sets ``hangup``. With ``switch`` (an audio fax) a switch to
        T.38 sets ``switch`` to its MediaChanged instead: the fax is to go on over T.38."""
        hangup: asyncio.Future = self.ep.loop.create_future()
        kind = "t38" if what == "T.38" else "audio"

        async def watch() -> None:
            while True:
                ev = await self.channel.queue.get()
                if isinstance(ev, CallEnded):
                    hangup.set_result(_ended_detail(ev))
                    return
                if isinstance(ev, MediaChanged) and ev.media.kind != kind:
                    if switch is not None and ev.media.kind == "t38":
                        switch.set_result(ev)
                    else:
                        hangup.set_result(f"the far end switched the call to {ev.media.kind} "
                                          f"during the {what} fax")
                    return

        watcher = self.ep.loop.create_task(watch())
        try:
            self.outcome.t30 = await run(hangup)
        except (DriverError, OSError) as exc:
            self.outcome.error = exc
        except Exception as exc:      # a bug below must not escape the API: the call fails, BYE follows
            self.outcome.error = DriverError(f"{what} call failed: {type(exc).__name__}: {exc}")
        finally:
            watcher.cancel()

    async def finish(self) -> None:
        """BYE unless the call is over: the caller at once, the answerer after BYE_WAIT
        (the caller normally hangs up first); wait a little for the answer."""
        if self.channel.ended is None and self.role == "inbound":
            until = self.ep.now() + BYE_WAIT
            while self.channel.ended is None and await self._next(until) is not None:
                pass
        if self.channel.ended is None:
            sent = len(self.channel.messages)
            try:
                self.ep.command("hangup", self.call_id)
            except Exception:        # the UA may have ended the call in between
                pass
            await self._answer_to_bye(sent)

    async def _answer_to_bye(self, since: int) -> None:
        """Keep the call's log open until the far end answers our BYE (at most BYE_WAIT s), so
        the record shows it."""
        messages = self.channel.messages
        try:
            async with asyncio.timeout(BYE_WAIT):
                while not any(m.direction == "in" and m.summary.startswith("SIP/2.0 ")
                              for m in messages[since:]):
                    self.channel.heard.clear()
                    await self.channel.heard.wait()
        except TimeoutError:
            pass

    def close(self) -> None:
        self.media.close()
        info = None
        try:
            info = self.ep.ua.call(self.call_id) if self.ep.ua is not None else None
        except Exception:
            info = None
        sip = self.outcome.sip
        if info is not None:
            sip["ani"] = sip["ani"] or getattr(info, "ani", None)
            sip["dnis"] = sip["dnis"] or getattr(info, "dnis", None)
            if getattr(info, "final_status", None) is not None:
                sip["final_status"] = info.final_status
        self.outcome.messages = list(self.channel.messages)
        self.ep.release(self.call_id)

    async def run(self, make_session: Callable[[T38Config], Any], *, answer_timeout: float) -> SipOutcome:
        try:
            try:
                media = await self.answered(answer_timeout)
                if self.outcome.sip["final_status"] is None:
                    self.outcome.sip["final_status"] = 200
                media = await self.t38(media)
                if media.kind == "t38":
                    await self.run_t38(media, make_session)
                else:
                    await self.run_audio(media, make_session)
            except _Failed as failed:
                self.outcome.reason, self.outcome.detail = failed.reason, failed.detail
            await self.finish()
        finally:
            if self.channel.ended is None and self.ep.ua is not None:   # cancelled: still hang up
                try:
                    self.ep.command("hangup", self.call_id)
                except Exception:
                    pass
            self.close()
        return self.outcome


async def send_fax(make_session: Callable[[T38Config], Any], target: str, *, realtime: bool = True,
                   max_duration: float = 1800.0, t38: T38Config | None = None, credentials: Any = None,
                   options: dict | None = None, local: str | None = None,
                   headers: tuple[tuple[str, str], ...] = (), t38_wait: float = T38_WAIT,
                   on_ready: Callable[[SipEndpoint], None] | None = None) -> SipOutcome:
    """Call ``target`` (``sip:NUMBER@HOST[:PORT][;transport=tcp]``) and send a fax over T.38 (or G.711 audio).

    ``make_session(limits)`` builds the T.30 session once the media is known: ``limits`` is
    the agreed T38Config (so its rate can be limited to T38MaxBitRate) or, for an audio fax,
    an AudioConfig (its ``limit_t30``: the modems xmfax.audio has). ``options``: UAConfig
    keywords (``offer``, ``t38_switch_after``, ``outbound_proxy`` ...) and ``audio_fallback``. ``local``: the local address to bind
    (default: the one the kernel uses to reach the target). A DriverError only when no
    socket can be opened; everything the far end does is in the outcome."""
    uri = parse_sip_target(target)
    options = ua_options(options)
    # the answering side switches to T.38 after 1 s (UAConfig's default): the caller waits
    # longer before its own re-INVITE, so two xmfax ends do not collide (491) every time
    options.setdefault("t38_switch_after", SEND_SWITCH_AFTER)
    udp_tcp = uri.transport or "udp"
    proxy = options.get("outbound_proxy")
    peer_host = proxy[0] if proxy else uri.host
    try:
        peer_ip = await resolve(peer_host)
    except OSError as exc:
        return SipOutcome(reason="not_found", detail=f"cannot resolve {peer_host!r}: {exc}",
                          sip={"call_id": None, "final_status": None, "transport": udp_tcp})
    bind = local or route_source(peer_ip, "::1" if ":" in peer_ip else "127.0.0.1")
    ep = await SipEndpoint.open((bind, 0), transport=udp_tcp, host=None if _wildcard(bind) else bind,
                                peer=peer_ip, credentials=credentials, t38=t38, **options)
    try:
        if on_ready is not None:
            on_ready(ep)
        media = await CallMedia.open(ep.local[0])
        try:
            call_id = ep.invite(str(uri), audio_port=media.audio_port, t38_port=media.t38_port,
                                headers=headers)
        except Exception:
            media.close()
            raise
        call = _FaxCall(ep, call_id, media, role="outbound", realtime=realtime, max_duration=max_duration,
                        t38_wait=t38_wait)
        call.outcome.sip["dnis"] = uri.user
        outcome = await call.run(make_session, answer_timeout=ep.config.invite_timeout + 40.0)
        return outcome
    finally:
        # the call is over: once nothing of ours waits for an answer, what lingers in the UA
        # only absorbs retransmissions, which this one-call endpoint need not wait for
        await ep.close(timeout=BYE_WAIT)


async def answer_fax(ep: SipEndpoint, incoming: IncomingCall, make_session: Callable[[T38Config], Any], *,
                     realtime: bool = True, max_duration: float = 1800.0, t38_wait: float = T38_WAIT,
                     ack_timeout: float = 40.0) -> SipOutcome:
    """Answer ``incoming`` (on_call said yes) and receive a fax over T.38: 200 with T.38 when
    it was offered, else G.711 and the T.38 re-INVITE from either end; over G.711 audio when
    that is refused or does not come (``ep.audio_fallback``)."""
    media = await CallMedia.open(ep.local[0])
    call = _FaxCall(ep, incoming.call_id, media, role="inbound", realtime=realtime, max_duration=max_duration,
                    t38_wait=t38_wait)
    call.outcome.sip.update(ani=incoming.ani, dnis=incoming.dnis)
    try:
        ep.command("answer", incoming.call_id, audio_port=media.audio_port, t38_port=media.t38_port)
    except Exception as exc:        # the call ended in between (CANCEL): the outcome says so
        call.outcome.detail = str(exc)
    return await call.run(make_session, answer_timeout=ack_timeout)
