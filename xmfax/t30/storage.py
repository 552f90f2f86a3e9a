"""Storage confirmation (a mixin of :class:`Session`): with ``T30Config.confirm_storage``
a page judged good is announced (``PageReceived``) but its MCF/RTP waits for
``page_stored(number, now)``; an error, or no answer within ``Timers.storage``, ends
the call (DCN, ``Reason.STORAGE``). Meanwhile ECM PPS/RR get RNR (T.30 §A.4) and a
repeated non-ECM post-page command gets nothing. docs/t30.md, "Storage confirmation".
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import LocalProtocolError
from .fcf import FCF
from .result import Reason
from .states import SPEC, Input


@dataclass
class HeldAnswer:
    """A page's answer held until storage confirms the page."""

    number: int              # 1-based received page number
    answer: FCF              # MCF or RTP
    then: Input              # the input to fire once it is sent
    ecm: bool
    rnr_sent: bool = False   # ECM: the sender was told RNR, so the answer waits for its RR
    stored: bool = False     # page_stored(None) came (ECM: waiting for the RR to answer)


class StorageMixin:
    """Storage-confirmation methods of Session (see session.py for the shared state)."""

    _storage: HeldAnswer | None
    _storage_deadline: float | None

    def page_stored(self, number: int, now: float, error: str | None = None) -> None:
        """The application stored received page ``number`` (``error`` None) or could not
        (``error`` says why). Only meaningful with ``T30Config.confirm_storage``; after the
        call has ended it does nothing. For a delivered page that awaits nothing (one
        marked "ERR", already confirmed, or stored twice) it does nothing, except that an
        error still ends the call (DCN, Reason.STORAGE). LocalProtocolError for a page
        number not delivered yet."""
        self._now = now
        if not SPEC[self.state].live:
            return
        held = self._storage
        if held is None or held.stored or held.number != number:
            if not 1 <= number <= len(self.result.pages_received) or (held is not None and number > held.number):
                raise LocalProtocolError(f"page_stored({number}): no such page delivered "
                                         f"(the page awaiting storage is {self.awaiting_storage})")
            if error is not None:
                self._set_page_response(number, "stored-failed")
                self._fail(Reason.STORAGE, f"page {number}: {error}")
            return
        self._storage_deadline = None
        if error is not None:
            self._storage_failed(error)
            return
        held.stored = True
        if held.ecm and held.rnr_sent:
            # answered on the sender's next RR (T.30 §A.4), which comes at once after RNR
            self._deadline = now + self.config.timers.t2
            return
        self._send_held_answer()

    @property
    def awaiting_storage(self) -> int | None:
        """The received page number waiting for ``page_stored``, or None."""
        held = self._storage
        if held is None or held.stored or self.done:
            return None
        return held.number

    # ------------------------------------------------------------------ inside the session
    def _hold_answer(self, number: int, answer: FCF, then: Input, ecm: bool) -> None:
        self._storage = HeldAnswer(number, answer, then, ecm)
        self._storage_deadline = self._now + self.config.timers.storage
        self._deadline = None        # the storage timer bounds the wait; T2 waits behind it

    def _send_held_answer(self) -> None:
        held, self._storage = self._storage, None
        self._set_page_response(held.number, held.answer.name)
        self._respond(held.answer)
        self._go(held.then)

    def _storage_failed(self, detail: str) -> None:
        held, self._storage = self._storage, None
        self._storage_deadline = None
        self._set_page_response(held.number, "stored-failed")
        self._fail(Reason.STORAGE, f"page {held.number}: {detail}")

    def _set_page_response(self, number: int, response: str) -> None:
        stats = self.result.pages_received
        for i in range(len(stats) - 1, -1, -1):
            if stats[i].number == number:
                stats[i] = dataclasses.replace(stats[i], response=response)
                return

    def _storage_frame(self, f: FCF) -> bool:
        """A frame while a page awaits storage: True if it was dealt with here.
        Only DCN goes on to the usual handling (the far end gave up)."""
        if f is FCF.DCN:
            return False
        held = self._storage
        if held.ecm and f in (FCF.PPS, FCF.RR):
            if held.stored:
                self._send_held_answer()
                return True
            # T.30 §A.4: not ready yet (flow control); the sender polls with RR
            held.rnr_sent = True
            self._respond(FCF.RNR)
            self._go(Input.REPEAT_RESPONSE)
            self._deadline = None    # the storage timer still bounds the wait
            return True
        # non-ECM repeated MPS/EOP/EOM (the sender's T4), CRP, anything else: no answer yet
        return True
