"""The Class 1 half of :mod:`xmfax.api`: a fax sent or answered through a Class 1 fax modem
(``class1:PORT``; the driver is :mod:`xmfax.drivers.class1`, imported only when used).

The driver is blocking (pyserial): the api runs these functions in a worker thread
(``asyncio.to_thread``). Dial and answer failures become the record's reasons here.
"""
from __future__ import annotations

from typing import Any

from .errors import DriverError, DriverTimeoutError

__all__ = ["DialFailed", "driver", "send", "wait_for_call", "answer", "close"]


class DialFailed(Exception):
    """The call never reached a fax: ``reason`` is the record's (busy, no_answer ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(detail or reason)
        self.reason, self.detail = reason, detail


# the modem's final result code for a failed dial (V.250 §6.3.1, its BUSY / NO ANSWER ...)
_DIAL_REASONS = {"BUSY": "busy", "NO ANSWER": "no_answer", "NO DIALTONE": "no_dialtone",
                 "NO DIAL TONE": "no_dialtone", "NO CARRIER": "no_carrier", "TIMEOUT": "no_answer",
                 "ERROR": "driver_error"}


def driver(port: str, class1: Any):
    """A Class1Driver (not yet open) for ``port``; ``class1`` is a Class1Config, a dict of
    its options, or None (the defaults)."""
    from .drivers.class1 import Class1Config, Class1Driver

    if class1 is None:
        class1 = Class1Config(port=port)
    elif isinstance(class1, dict):
        class1 = Class1Config(port=port, **class1)
    return Class1Driver(class1)


def send(port: str, number: str, session: Any, class1: Any, max_duration: float) -> Any:
    """Dial ``number`` and run ``session`` (calling); its T.30 result. DialFailed if no fax
    answered."""
    from .drivers.class1 import DialError

    with driver(port, class1).open() as modem:
        try:
            modem.initialize()
            modem.dial(number)
        except DialError as exc:
            raise DialFailed(_DIAL_REASONS.get(exc.reason, "no_carrier"), str(exc)) from exc
        try:
            return modem.run_call(session, max_seconds=max_duration)
        finally:
            modem.hangup()


def wait_for_call(receiver: Any, stop: Any) -> tuple[Any, dict]:
    """(open driver, caller ID) once the Receiver's modem has rung ``receiver.rings`` times;
    (None, {}) if ``stop`` (an asyncio.Event) was set first. Runs in a worker thread."""
    modem = driver(receiver.address, receiver.class1).open()
    try:
        modem.initialize()
        modem._wait_settled()        # the modem's guard time after reset: only then ready
        receiver._loop.call_soon_threadsafe(receiver._ready.set)     # we are in a worker thread
        return modem, modem.wait_for_call(rings=receiver.rings, stop=stop.is_set)
    except DriverTimeoutError:
        modem.close()
        return None, {}
    except BaseException:
        modem.close()
        raise


def answer(modem: Any, session: Any, max_duration: float) -> Any:
    """Answer the ringing line and run ``session``; its T.30 result. The line is closed after."""
    from .drivers.class1 import DialError

    try:
        try:
            modem.answer(rings=None)
        except DialError as exc:
            raise DriverError(f"answer failed: {exc}") from exc
        return modem.run_call(session, max_seconds=max_duration)
    finally:
        close(modem)


def close(modem: Any) -> None:
    """Hang up and release the port (a refused call, or the end of one)."""
    try:
        modem.hangup()
    finally:
        modem.close()
