"""The SIP half of :mod:`xmfax.api`: a fax sent over a SIP call, and a receiver serving SIP
calls, many at once, each in its own task (the driver is :mod:`xmfax.drivers.sip`).

Like api.py this module uses asyncio (the protocol engines never do); it is only imported
when a ``sip:`` address is used.
"""
from __future__ import annotations

import asyncio
import sys
import time
from typing import Any, Callable

from . import record as _record
from .api import Call, FaxResult, Receiver, Reject, _Dispatcher, _failure_reason, _Observed, _replace
from .errors import DriverError
from .drivers import sip as sip_driver
from .drivers.sip_transport import resolve
from .page import Page
from .t30 import Session, T30Config
from .t30 import events as t30_events


async def send(pages: list[Page], via: str, config: T30Config, dispatcher: _Dispatcher,
               on_event: Callable | None, realtime: bool, t38: Any, max_duration: float,
               options: dict, credentials: Any) -> FaxResult:
    """One attempt of :func:`xmfax.api.send` over SIP: its record."""
    # once the media is known: T.38's T38MaxBitRate, or the audio modems xmfax has, limit T.30
    def make_session(agreed: Any) -> _Observed:       # (a T38Config or an AudioConfig)
        return _Observed(Session(agreed.limit_t30(config), calling=True, pages=pages, now=0.0),
                         lambda ev: dispatcher.put(on_event, ev))

    wall_start = time.time()
    common = dict(local_id=config.local_id, transport="sip", address=via)
    try:
        outcome = await sip_driver.send_fax(make_session, via, realtime=realtime, max_duration=max_duration,
                                            t38=t38, credentials=credentials, options=options)
    except (DriverError, OSError) as exc:
        return _record.call_failure("send", "driver_error", str(exc), started_at=_record.utc_iso(wall_start),
                                    ended_at=_record.utc_iso(time.time()), **common)
    return record(outcome, "send", wall_start, common)


def record(outcome: Any, direction: str, wall_start: float, common: dict) -> FaxResult:
    """The record of a SIP call (drivers.sip.SipOutcome): the T.30 record when the fax ran,
    else the call-level failure; the SIP messages on the T.30 frames' time line."""
    session = outcome.session
    common = dict(common, ani=common.get("ani") or outcome.sip.get("ani"),
                  dnis=common.get("dnis") or outcome.sip.get("dnis"))
    times = dict(started_at=_record.utc_iso(wall_start), ended_at=_record.utc_iso(time.time()))
    if outcome.t30 is not None:
        result = _record.from_t30(outcome.t30, session.log, direction=direction, t0=outcome.t0,
                                  wall_start=wall_start, wall_end=time.time(), **common)
    else:
        reason, detail = outcome.reason or "driver_error", outcome.detail
        if outcome.error is not None:
            reason, detail = _failure_reason(outcome.error, "t38"), str(outcome.error)
        log = session.log if session is not None else []
        result = _record.call_failure(direction, reason, detail, events=[
            _record.event_to_dict(e, outcome.t0) for e in log], **times, **common)
        if direction == "receive" and any(isinstance(e, t30_events.PageReceived) for e in log):
            result.pages = _record.from_t30(session.result, log, direction="receive").pages
    result.events = _record.merge_events(result.events, [_record.sip_message_to_dict(m, outcome.t0)
                                                         for m in outcome.messages])
    result.sip = dict(outcome.sip)
    return result


async def serve(receiver: Receiver, dispatcher: _Dispatcher) -> None:
    """One endpoint, a task per call, until stopped: then new calls get 503, the calls in
    progress finish, the registration is removed."""
    bind, transport = sip_driver.parse_sip_listen(receiver.via)
    peer = None                  # bound to 0.0.0.0: our Contact is the address that reaches the registrar
    if receiver.sip_options.get("registrar"):
        try:
            peer = await resolve(sip_driver.parse_sip_target(receiver.sip_options["registrar"]).host)
        except OSError:
            peer = None          # the REGISTER itself will fail and say so
    endpoint = await sip_driver.SipEndpoint.open(bind, transport=transport, credentials=receiver.credentials,
                                                 t38=receiver.t38, peer=peer, **receiver.sip_options)
    tasks: set[asyncio.Task] = set()

    def incoming(ev: Any) -> None:
        if receiver._stop.is_set():
            endpoint.release(ev.call_id)
            endpoint.command("reject", ev.call_id, 503, None)
            return
        task = receiver._loop.create_task(_take_call(receiver, endpoint, ev, dispatcher))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    endpoint.on_incoming = incoming
    try:
        if endpoint.config.registrar:
            await endpoint.register()
        receiver._bound(endpoint.local)
        await receiver._stop.wait()
        endpoint.accepting = False
        while tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await endpoint.close()


async def _take_call(receiver: Receiver, endpoint: Any, incoming: Any, dispatcher: _Dispatcher) -> None:
    """One incoming call, from on_call to its record (never raises: the other calls go on)."""
    wall_start = time.time()
    call = Call(via=receiver.via, transport="sip", ani=incoming.ani, dnis=incoming.dnis,
                remote_address=sip_driver.hostport(incoming.source), headers=incoming.headers,
                sip_call_id=incoming.call_id, info={"offer": list(incoming.offer)})
    common = dict(local_id=receiver.config.local_id, transport="sip", address=receiver.via, ani=call.ani,
                  dnis=call.dnis)
    outcome = sip_driver.SipOutcome(t0=endpoint.channel(incoming.call_id).start, sip={
        "call_id": incoming.call_id, "ani": call.ani, "dnis": call.dnis, "final_status": None,
        "media": None, "t38": None, "t38_switch": None, "transport": endpoint.config.transport})

    def refuse_now(status: int) -> None:
        outcome.sip["final_status"] = status
        try:
            endpoint.command("reject", incoming.call_id, status, None)
        except Exception:        # the call ended while on_call decided (CANCEL)
            pass
        outcome.messages = list(endpoint.channel(incoming.call_id).messages)
        endpoint.release(incoming.call_id)

    async def refuse() -> None:
        refuse_now(503)

    async def run(make_session: Callable) -> FaxResult:
        done = await sip_driver.answer_fax(endpoint, incoming, make_session, realtime=receiver.realtime,
                                           max_duration=receiver.max_duration)
        return record(done, "receive", wall_start, common)

    try:
        decision = await receiver._decide(call)
        if isinstance(decision, Reject):
            refuse_now(decision.status)
            result = record(_replace(outcome, reason="rejected", detail=decision.reason), "receive",
                            wall_start, common)
        else:
            result = await receiver._serve(call, decision, dispatcher, wall_start, common, refuse=refuse, run=run)
            if result.sip is None:          # storage refused it before the call was answered
                result.sip = outcome.sip
                result.events = _record.merge_events(result.events, [
                    _record.sip_message_to_dict(m, outcome.t0) for m in outcome.messages])
    except Exception as exc:       # a bug must not take the other calls down: recorded, hung up
        print(f"xmfax: SIP call {incoming.call_id} failed: {exc!r}", file=sys.stderr, flush=True)
        endpoint.release(incoming.call_id)
        try:
            endpoint.command("hangup", incoming.call_id)
        except Exception:
            pass
        result = _record.call_failure("receive", "driver_error", repr(exc), started_at=_record.utc_iso(wall_start),
                                      ended_at=_record.utc_iso(time.time()), sip=outcome.sip, **common)
    receiver.results.append(result)
    dispatcher.put(receiver.on_done, result)
    if receiver.once:
        receiver._stop.set()
