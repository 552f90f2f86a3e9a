"""Audio fax over G.711 RTP: the sans-IO AudioTerminal pumped by drivers/rtp.py.

    result = await run_audio_call(session, local=("0.0.0.0", 0), remote=("192.0.2.7", 4000),
                                  rtp_config=RTPConfig(law="alaw"), audio_config=AudioConfig(),
                                  max_duration=1800.0)

As :func:`drivers.t38_udp.run_call` runs a T38Terminal over UDPTL, this runs an
:class:`~xmfax.audio.terminal.AudioTerminal` over RTP: every ``ptime`` (20 ms) of the event
loop's clock the RTP driver pulls the samples due from the terminal's transmitter and sends
them as G.711, and hands the terminal what its fixed jitter buffer plays out (a steady
8000 samples a second, silence where a packet was lost). The terminal's T.30 timers are
served at the same ticks (20 ms is well inside T.30's tolerances). The clock given to the
core is the event loop's monotonic clock.

With ``remote=None`` the driver answers: nothing is sent until the first valid RTP packet
arrives, then it talks to its sender (RFC 4961 symmetric RTP, see drivers/rtp.py).
:func:`wait_for_caller` listens for that first packet and keeps the socket open for the
call, as t38_udp's does for T.38. Addresses come from ``rtp://`` URLs
(:func:`drivers.rtp.parse_rtp_url`: ``?local=``, ``?remote=``, ``&law=pcma``, ``&depth=MS``).
"""
from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from typing import Any

from xmfax.errors import DriverError, DriverTimeoutError
from xmfax.rtp import RTPConfig, RTPReceiver

from .rtp import run_rtp
from .t38_udp import listen_for_caller

__all__ = ["run_audio_call", "wait_for_caller", "limit_t30", "Handover"]

Address = tuple[str, int]


@dataclass
class Handover:
    """What :func:`run_audio_call` gives back when it was stopped for a switch of the call to
    other media (``switch=``), the fax not over: the running ``session`` and the commands the
    audio terminal had not sent whole (``AudioTerminal.detach``), for the T.38 driver to send
    first (:func:`drivers.t38_udp.run_call` ``resume=``). ``at``: the loop time of the switch;
    ``reason``: the switch future's result."""

    session: Any
    pending: list = field(default_factory=list)
    at: float = 0.0
    reason: Any = None


def limit_t30(t30_config):
    """``t30_config`` offering only the modems the audio terminal has."""
    from xmfax.audio.terminal import AudioConfig
    return AudioConfig.limit_t30(t30_config)


async def run_audio_call(session, local: Address = ("0.0.0.0", 0), remote: Address | None = None,
                         rtp_config: RTPConfig | None = None, audio_config: Any = None, *,
                         max_duration: float = 1800.0, sock: socket.socket | None = None,
                         hangup: asyncio.Future | None = None, switch: asyncio.Future | None = None,
                         on_ready=None):
    """Run ``session`` (a T.30 Session; build its configuration with :func:`limit_t30`) as an
    audio fax over G.711 RTP; return its T30Result.

    ``sock``: an already bound UDP socket (wait_for_caller's, or a SIP call's media
    socket), closed at the end. ``hangup``: a future whose result (a reason) ends the call
    at once as a lost line. ``switch``: a future set when the call switches to other media
    (a re-INVITE to T.38): the audio fax stops and, unless it was over, a :class:`Handover`
    (the session, still running, and what it had not sent) is returned instead of the
    result; the session is not told of any loss (the new media goes on with it).
    DriverTimeoutError when the call runs past ``max_duration``;
    DriverError if the socket cannot be opened, the far end is unreachable, or the session
    offers a modem xmfax.audio does not have."""
    from xmfax.audio.terminal import AudioConfig, AudioTerminal

    loop = asyncio.get_running_loop()
    try:
        terminal = AudioTerminal(session, audio_config or AudioConfig(), loop.time())
    except ValueError as exc:
        if sock is not None:
            sock.close()
        raise DriverError(f"audio session not started: {exc}") from exc
    stop = asyncio.Event()
    why: list[str] = []
    if hangup is not None:           # SIP hook: the call ended around us (e.g. a BYE)
        def hung_up(fut: asyncio.Future) -> None:
            if not fut.cancelled():
                why.append(str(fut.result()))
            stop.set()
        hangup.add_done_callback(hung_up)
    if switch is not None:           # SIP hook: the call moves to T.38, the fax goes on there
        def switched(fut: asyncio.Future) -> None:
            if not why:
                stop.set()
        switch.add_done_callback(switched)

    def source(n: int):
        return terminal.samples_to_send(n, loop.time())

    def sink(samples) -> None:
        terminal.receive_samples(samples, loop.time())

    def finished() -> bool:
        now = loop.time()
        t = terminal.next_timer()
        if t is not None and now >= t:
            terminal.handle_timer(now)
        return terminal.done

    terminal.start(loop.time())
    try:
        await run_rtp(source, sink, local=local, remote=remote, config=rtp_config or RTPConfig(),
                      duration=max_duration, until=finished, stop=stop, on_ready=on_ready, sock=sock)
    except DriverError as exc:
        terminal.close(str(exc), loop.time())
        raise
    finally:
        if hangup is not None and not hangup.done():
            hangup.remove_done_callback(hung_up)
        if switch is not None and not switch.done():
            switch.remove_done_callback(switched)
    if not terminal.done:
        if switch is not None and switch.done() and not switch.cancelled() and not why:
            now = loop.time()
            return Handover(session, terminal.detach(now), now, switch.result())
        if why:
            terminal.close(why[0], loop.time())       # the session ends: LINE_LOST
        else:
            terminal.close("call took too long", loop.time())
            raise DriverTimeoutError(f"audio call still running after {max_duration:.0f} s")
    return terminal.result


async def wait_for_caller(local: Address, stop: asyncio.Event, on_ready=None,
                          ignore: dict | None = None, rtp_config: RTPConfig | None = None):
    """Listen on ``local`` until someone sends a valid RTP packet of the configured payload
    type; ``(address, socket)``, the socket still bound for :func:`run_audio_call` (``sock=``;
    close it yourself if the call is not taken), or None if ``stop`` is set first.

    ``ignore`` maps the addresses of rejected callers to when they were last heard (loop
    time); their packets are dropped (and the time renewed) until they have been quiet for
    t38_udp.REJECTED_QUIET seconds."""
    config = rtp_config or RTPConfig()
    return await listen_for_caller(local, stop, lambda data, now: bool(RTPReceiver(config, now).receive(data, now)),
                                   on_ready, ignore)
