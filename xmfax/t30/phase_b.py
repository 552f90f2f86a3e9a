"""Phase B of a T.30 session (a mixin of :class:`Session`): DIS/DTC heard, DCS
chosen or received, the answer to training (T.30 §5.2, §5.3.6.1.3)."""
from __future__ import annotations

from ..errors import LocalProtocolError, RemoteProtocolError
from . import capabilities as caps
from . import frames as F
from .events import TrainingResult
from .result import Reason
from .fcf import FCF
from .modem import Hangup
from .states import SPEC, Input


class PhaseBMixin:
    """Phase B methods of Session (see session.py for the state they share)."""

    def _do_dis_repeated(self, fr: F.Frame, f=None) -> None:
        # SEND_DCS, SEND_DTC: our command was not heard; DIS is repeated (T.30 §5.2): say it again
        self._retry.tries += 1
        if self._retry.tries >= self.config.retries:
            self._fail(SPEC[self.state].gives_up, "the far end kept repeating DIS")
            return
        self._go(Input.DIS_REPEAT)

    def _do_dis_from_caller(self, fr: F.Frame, f=None) -> None:
        # SEND_DIS: the caller answered our DIS with its own DIS: it wants to receive from us
        # (TSB-85 MRGP06/08). We send if we hold a document; otherwise nothing to do.
        if self.calling:
            return                 # after EOM we are the caller: a DIS here is no answer to ours
        remote = F.DIS.decode(fr.fif)
        self._x = 1
        if self.config.password:
            self._fail(Reason.PASSWORD_REJECTED, "the caller asked for the document without a password")
            return
        if not self.pages or self._page_index >= len(self.pages) or not remote.ready_to_receive:
            self._fail(Reason.NOTHING_TO_SEND, "the caller sent DIS: it wants to receive")
            return
        self._start_sending(remote, fr.fif, Input.DTC_SEND)

    def _do_dis(self, fr: F.Frame, f=None) -> None:
        # WAIT_DIS (T.30 §5.2 Figure 5-2a)
        remote = F.DIS.decode(fr.fif)
        if self.result.remote_dis is not None:
            # after EOM: phase B again from the start (T.30 §5.3.6.1.4), so the rate
            # negotiation restarts at the fastest the new DIS allows (TSB-85 MTGN23)
            self._modulation = None
        self._remote = remote
        self._x = 1
        self.result.remote_dis = fr.fif
        if self.pages and self._page_index < len(self.pages):
            if not remote.ready_to_receive:
                self._fail(Reason.INCOMPATIBLE, "the far end cannot receive (DIS bit 10 is 0)")
                return
            self._start_sending(remote, fr.fif, Input.DIS_SEND)
        elif self.receive_ok:
            if not remote.ready_to_transmit:
                self._fail(Reason.NOTHING_TO_POLL)
                return
            self._go(Input.DIS_POLL)
        else:
            self._fail(Reason.INCOMPATIBLE, "nothing to send and not receiving")

    def _do_dtc(self, fr: F.Frame, f=None) -> None:
        # SEND_DIS, RX_AFTER_EOM: we are polled (T.30 §5.2)
        if self.config.password and self._rx_ids.get("PWD") != self.config.password:
            # a polled station that requires a password checks PWD first, as for a DIS
            # above: a caller without the password learns nothing about what we hold
            # (TSB-85 MRGP03 expects PWD_UNACCEPTABLE from a DUT with nothing to send)
            self._fail(Reason.PASSWORD_REJECTED,
                       "no PWD with DTC" if "PWD" not in self._rx_ids else "wrong PWD")
            return
        if not self.pages or self._page_index >= len(self.pages):
            self._fail(Reason.NOTHING_TO_SEND)
            return
        self._start_sending(F.DIS.decode(fr.fif), fr.fif, Input.DTC_SEND)

    def _do_no_dis(self) -> None:
        # WAIT_DIS: T1 expired (T.30 §5.1)
        if self.result.remote_dis is None:
            # nothing was ever heard from the far end: no DCN to send (TSB-85 MTGX02)
            self._finish(Reason.NO_DIS)
            self._push([Hangup()])
            self._go(Input.GIVE_UP)
        else:
            self._fail(Reason.NO_DIS, "after EOM")

    def _do_dis_timeout(self) -> None:
        # SEND_DIS: DIS is sent 3 times (config.retries, as TSB-85 MRGX01 expects), within T1
        self._retry.tries += 1
        if self._retry.tries >= self.config.retries or (self._t1_deadline is not None and self._now >= self._t1_deadline):
            self._fail(Reason.NO_DCS)
        else:
            self._go(Input.NO_RESPONSE_RETRY)

    def _start_sending(self, remote: F.DIS, fif: bytes, inp: Input) -> None:
        self._remote, self.result.remote_dis = remote, fif
        self._allowed = caps.allowed_modulations(self.config, remote)
        if not self._allowed:
            self._fail(Reason.INCOMPATIBLE, "no modulation in common")
            return
        if self._modulation not in self._allowed:
            self._modulation = self._allowed[0]
        self._tx.page = None
        try:
            page = self._current_page()
            caps.choose_dcs(self.config, remote, page, self._modulation)
        except LocalProtocolError as exc:
            self._fail(Reason.INCOMPATIBLE, str(exc))
            return
        self._go(inp)

    def _do_dcs(self, fr: F.Frame, f=None) -> None:
        dcs = F.DCS.decode(fr.fif)
        caps.check_dcs(self._local_dis, dcs)
        if not self.receive_ok:
            raise RemoteProtocolError("DCS received, but we did not offer to receive")
        self._rx_dcs = dcs
        self.result.dcs = fr.fif
        # a new DCS: the sender heard our last answer (T.30 §5.3.6.1.4), so a PPS with the
        # page/block numbers we last confirmed is a new block, not a repeat (counters may restart)
        self._ecm.last_ack = None
        self._go(Input.DCS)

    def _do_training_answer(self, fr: F.Frame, f) -> None:
        # SEND_DCS: CFR or FTT (T.30 §5.3.6.1.3)
        ok = f is FCF.CFR
        mod = self._modulation
        self._events.append(TrainingResult(self._now, str(mod), ok, "CFR" if ok else "FTT"))
        self._retry.late_cfr = self._retry.tries        # each repeat of our DCS may still draw an answer
        if ok:
            self._go(Input.CFR_ECM if self._dcs.ecm else Input.CFR)
            return
        lower = caps.next_lower(mod, self._allowed)
        if lower is None:
            self._fail(Reason.TRAINING_FAILED, f"last tried {mod}")
            return
        self._modulation = lower
        self.result.fallbacks += 1
        self._go(Input.FTT_RETRY)
