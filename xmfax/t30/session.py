"""The T.30 session: one fax call, sans-IO.

    s = Session(T30Config(local_id="+1 555 0100"), calling=True, pages=[page], now=0.0)
    s.start(now)
    loop:
        for cmd in s.data_to_send(): transport does it (xmfax.t30.modem commands)
        s.receive(modem_event, now)       # what the transport heard / finished
        s.handle_timer(now)               # when now >= s.next_timer()
        for ev in s.events(): ...         # frames in/out, phases, pages, the end
    s.done, s.result

The session never waits on its own: every timer is visible in ``next_timer()``
and fires only through ``handle_timer(now)``. What to do in each state and on
each input is in :mod:`xmfax.t30.states` (the transition table); this class
turns what it hears into inputs, and on entering a state queues that state's
transmissions (``_enter_<state>``). The sending and receiving halves live in
:mod:`.transmitter` and :mod:`.receiver`, phase B in :mod:`.phase_b`, storage confirmation in
:mod:`.storage` (mixins of this class).

What the transport should know:

* Commands come in line order; a ``SendSilence(75)`` precedes each of our
  transmissions (T.30's 75 ms gap). ``Receive`` says what to listen for next.
* Report ``SendComplete`` once per ``SendHDLC``/``SendData`` when it has really
  gone: response timers (T4 for commands, T2 for the receiver) then run from the
  end of our transmission. Without it the session uses a generous airtime estimate.
  A non-ECM page's MPS/EOM/EOP is chosen on its data's SendComplete (so that
  ``add_document`` during the last page still gives EOM); a transport that also
  reports silences makes that choice early (at the gap before the data), not wrong.
* Report ``CarrierUp`` when a signal starts: a response timer then waits for it.
* Every frame in and out is an event (FrameSent/FrameReceived with a decoded
  reading); received pages come as PageReceived as each completes.

Beyond the core API: ``abort(now)`` ends the call (DCN), ``hold(True/False, now)``
is ECM receiver flow control (RNR/RR), ``add_document(pages, now)`` queues another
document (EOM between them; ``pages`` may also be given as a list of documents).
"""
from __future__ import annotations

from .. import codecs
from ..errors import LocalProtocolError, RemoteProtocolError
from ..page import Page
from . import capabilities as caps
from . import frames as F
from .config import T30Config
from .ecm import RxBlock, TxBlock
from .events import BadFrame, CallEnded, Event, FrameReceived, FrameSent, PhaseChanged
from .fcf import FCF, PRI_Q_BASE, split
from .modem import (CarrierDown, CarrierUp, Command, DataReceived, Expect, Hangup, HDLCFrame,
                    LineLost, ModemEvent, Modulation, Receive, SendComplete, SendData, SendHDLC,
                    SendSilence, SendTone, Tone, ToneDetected, WrongCarrier)
from .result import Reason, T30Result
from .states import PHASE, Input, State, fire
from .tcf import TCF_SECONDS, TCFChecker, tcf_bytes
from ._common import GAP_MS, HS_TRAINING_S, airtime, dcs_fields
from .phase_b import PhaseBMixin
from .receiver import _POST_PAGE, ReceiverMixin
from .storage import StorageMixin
from .transmitter import TransmitterMixin


_COMMANDER = {State.SEND_DTC, State.SEND_DCS, State.SEND_PAGE, State.RESEND_PMC,
              State.SEND_BLOCK, State.RESEND_PPS, State.SEND_CTC, State.SEND_EOR, State.SEND_RR}
_RESPONDER = {State.SEND_DIS, State.RX_WAIT_DCS, State.RX_WAIT_PMC, State.RX_WAIT_DCN}
# responses a commander takes only as the answer to the command it has just sent
_RESPONSES = {FCF.CFR, FCF.FTT, FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN, FCF.PPR, FCF.RNR,
              FCF.ERR, FCF.CTR, FCF.CRP}
# what answers the PPS that came before a CTC: stale once we are in SEND_CTC
_PPS_RESPONSES = {FCF.MCF, FCF.PPR, FCF.RNR, FCF.ERR, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN}


class Session(PhaseBMixin, TransmitterMixin, ReceiverMixin, StorageMixin):
    """One T.30 call (T.30 phases A-E), calling or answering, sending or receiving.

    calling: we placed the call (CNG, wait for DIS) or answered (CED, then DIS).
    pages: the document to send (as sender, or as a station that can be polled).
    receive: we accept a document (DIS bit 10); a caller with no pages and
    receive=True polls the far end (DTC).
    """

    def __init__(self, config: T30Config | None = None, *, calling: bool,
                 pages: list[Page] | list[list[Page]] | None = None, receive: bool = False,
                 now: float = 0.0):
        self.config = config if config is not None else T30Config()
        self.calling = bool(calling)
        self.pages: list[Page] = []
        self._doc_ends: set[int] = set()              # indexes of pages that end a document (EOM)
        docs = list(pages or [])
        if docs and all(isinstance(d, (list, tuple)) for d in docs):
            for d in docs:                            # several documents: EOM between them
                if d:
                    self.pages.extend(d)
                    self._doc_ends.add(len(self.pages) - 1)
            self._doc_ends.discard(len(self.pages) - 1)
        else:
            self.pages = docs
        self.receive_ok = bool(receive)
        if not self.pages and not self.receive_ok:
            raise LocalProtocolError("a session with no pages to send that will not receive has nothing to do")
        self.state = State.IDLE
        self.result = T30Result(started=now)
        self._now = now
        self._commands: list[Command] = []
        self._events: list[Event] = []
        self._deadline: float | None = None
        self._t1_deadline: float | None = None
        self._t5_deadline: float | None = None
        self._x = 0                                   # X bit: 1 once we received a valid DIS
        self._tone_sent = False
        self._pmc_sent = False                        # the current page's MPS/EOP/EOM is out
        self._pmc_due = False                         # non-ECM page data queued, its MPS/EOP/EOM not yet
        self._rx_ids: dict[str, str] = {}             # SUB/SEP/PWD/SID/PSA received
        self._tx_end = now                            # when our queued transmissions should end
        self._outstanding = 0                         # SendHDLC/SendData not yet reported complete
        self._tries = 0
        self._late_cfr = 0          # CFR/FTT copies that may still come: our DCS went out more than once
        self._local_dis = caps.local_dis(self.config, ready_to_transmit=bool(self.pages),
                                         ready_to_receive=self.receive_ok)
        self._remote: F.DIS | None = None
        self._last_command: list[Command] = []        # to repeat on CRP / T4
        self._last_response: tuple[bytes, ...] | None = None
        self._burst_bad = False
        self._burst_good = False
        self._t4_before_carrier: float | None = None  # a commander's T4 deadline before a carrier came
        self._abort_why: str | None = None            # abort() asked for, DCN waits for the far end's turn
        # transmitter
        self._page_index = 0
        self._allowed: list[Modulation] = []
        self._modulation: Modulation | None = None
        self._dcs: F.DCS | None = None
        self._page: Page | None = None                # the current page as sent (fitted)
        self._page_data: bytes | None = None
        self._page_refusals = 0
        self._pmc: FCF = FCF.EOP
        self._blocks: list[list[bytes]] = []
        self._block_index = 0
        self._tx_block: TxBlock | None = None
        self._page_retransmitted = 0
        self._pending_ctc: Modulation | None = None
        self._eor_used = False
        self._damaged_pages: list[int] = []           # pages sent or received with ECM frames lost (EOR)
        # receiver
        self._rx_dcs: F.DCS | None = None
        self._tcf: TCFChecker | None = None
        self._tcf_failures = 0
        self._decoder: codecs.StreamDecoder | None = None
        self._rx_started = False
        self._rx_after_end = 0
        self._rx_since_row = self._rx_good_bytes = self._rx_good_rows = 0
        self._rx_max_row_octets = 0
        self._rx_lost = self._rx_lost_max = 0.0
        self._rx_row_octets = 0
        self._rx_abandon: str | None = None
        self._rx_block = RxBlock()
        self._rx_ecm_data: list[bytes] = []
        self._rx_ecm_open = False                     # an ECM page's first burst has begun
        self._rx_page_hole = False                    # the page lost a block to EOR/ERR
        self._rx_last_ack: tuple[int, int] | None = None
        self._held = False
        self._held_pps: F.Frame | None = None
        self._rx_eor: tuple[int, int, bytes, int] | None = None    # block set aside after EOR
        self._rx_last_pps: tuple[int, int, int, int] | None = None
        self._rx_retransmitted = 0
        self._storage = None                          # HeldAnswer: a page's answer awaiting storage
        self._storage_deadline: float | None = None

    # ------------------------------------------------------------------ public API
    def start(self, now: float) -> None:
        """Begin the call (phase A): CNG and wait for DIS, or CED then DIS."""
        self._now = now
        self.result.started = now
        if self.state is not State.IDLE:
            raise LocalProtocolError("start() called twice")
        self._go(Input.START_CALLING if self.calling else Input.START_ANSWERING)

    def receive(self, event: ModemEvent, now: float) -> None:
        """Feed one event from the transport. Bad input from the far end is
        reported as a BadFrame event or ends the call with a reason; it never raises."""
        self._now = now
        if self.state in (State.DONE, State.IDLE):
            return
        try:
            self._dispatch(event)
        except (RemoteProtocolError, codecs.CodecError) as exc:
            self._fail(Reason.PROTOCOL, str(exc))

    def handle_timer(self, now: float) -> None:
        """Run any timer that has expired by ``now``."""
        self._now = now
        if self.state in (State.DONE, State.IDLE):
            return
        if self._storage_deadline is not None and now >= self._storage_deadline:
            self._storage_deadline = None
            self._storage_timeout()
            return
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            if self._abort_why is not None:
                self._fail(Reason.ABORTED, self._abort_why or "no answer before DCN")
                return
            if self._storage is not None and not self._storage.stored:
                return       # a page awaits storage: its own timer bounds the wait
            try:
                self._on_timeout()
            except (RemoteProtocolError, codecs.CodecError) as exc:
                self._fail(Reason.PROTOCOL, str(exc))

    def next_timer(self) -> float | None:
        """When handle_timer() should next be called (None: no timer running)."""
        if self.state is State.DONE:
            return None
        timers = [t for t in (self._deadline, self._storage_deadline) if t is not None]
        return min(timers) if timers else None

    def data_to_send(self) -> list[Command]:
        """Commands for the transport, in order (each call returns the new ones)."""
        out, self._commands = self._commands, []
        return out

    def events(self) -> list[Event]:
        """Events since the last call."""
        out, self._events = self._events, []
        return out

    def abort(self, now: float, why: str = "") -> None:
        """End the call from our side: DCN, then hang up (Reason.ABORTED).

        T.30 §5.3.6.1.6: DCN is a command; it is heard only while the far end listens
        (the line is half duplex). So while the far end has the turn (it owes us the
        answer to a command of ours, or it is sending a command, a TCF or a page), the
        DCN waits for that turn to end: the answer or command frame arrives (it is not
        acted on) or the TCF ends, and DCN goes out instead of what would have come next.
        A commander (and a caller awaiting DIS) waits at most T4 after its last signal
        (T.30 §5.4.3.1); a receiver at most its running timer. Otherwise, and on a second abort(), DCN goes at once."""
        self._now = now
        if self.state is State.IDLE:
            self._finish(Reason.ABORTED, why)
            self.state = State.DONE
        elif self.state is State.DONE:
            return
        elif self._abort_why is None and self._deadline is not None and self._far_end_has_turn():
            self._abort_why = why
            if self.state in _COMMANDER or self.state in (State.SEND_DIS, State.WAIT_DIS):
                self._deadline = min(self._deadline, max(now, self._tx_end) + self.config.timers.t4)
        else:
            self._fail(Reason.ABORTED, why)

    def _far_end_has_turn(self) -> bool:
        """Whether the far end speaks next (a DCN of ours now would cross it)."""
        return self.state in _COMMANDER or self.state in (
            State.WAIT_DIS, State.SEND_DIS, State.RX_TCF, State.RX_WAIT_DCS, State.RX_PAGE, State.RX_WAIT_PMC,
            State.RX_AFTER_EOM, State.RX_WAIT_DCN)

    def add_document(self, pages: list[Page], now: float) -> None:
        """Queue one more document to send in this call: the current last page then
        ends with EOM instead of EOP, and after the far end's MCF both ends go back
        to phase B (T.30 §5.3.6.1.4) for the new document. LocalProtocolError when
        it is too late (EOP already sent) or we are not a sender."""
        self._now = now
        pages = list(pages)
        if not pages:
            return
        last = len(self.pages) - 1
        if not self.pages or self.state is State.DONE or self._page_index > last or (
                self._page_index == last and self._pmc_sent):
            raise LocalProtocolError("too late to add a document: the last one has ended (EOP)")
        self._doc_ends.add(last)
        self.pages.extend(pages)

    def hold(self, held: bool, now: float) -> None:
        """Receiver flow control (ECM only, T.30 §A.4 RNR/RR): while held, a complete
        block is answered RNR instead of MCF, and the sender's RR polls get RNR too.
        Release it (held=False) and the next RR gets the real answer. The sender
        gives up after T5 (60 s) of RNR."""
        self._now = now
        self._held = bool(held)

    @property
    def done(self) -> bool:
        return self.state is State.DONE

    # ------------------------------------------------------------------ machinery
    def _go(self, inp: Input) -> None:
        old = self.state
        new = fire(old, inp)
        if inp not in (Input.NO_RESPONSE_RETRY, Input.CRP, Input.DIS_REPEAT):
            self._tries = 0
        self.state = new
        if PHASE[new] != PHASE[old]:
            self._events.append(PhaseChanged(self._now, PHASE[new], new.name))
        getattr(self, "_enter_" + new.name.lower())()

    def _send_frames(self, frames: list[F.Frame], *, expect: bool = True,
                     gap: bool = True, remember: bool = True) -> list[Command]:
        cmds: list[Command] = []
        if gap:
            cmds.append(SendSilence(GAP_MS))
        cmds.append(SendHDLC(tuple(f.encode() for f in frames)))
        for f in frames:
            self._events.append(FrameSent(self._now, f, F.describe(f)))
        if expect:
            cmds.append(Receive(Expect.HDLC))
        self._queue(cmds, remember=remember)
        return cmds

    def _push(self, cmds: list[Command]) -> None:
        """Queue commands; keep an (upper) estimate of when our transmissions end."""
        self._commands.extend(cmds)
        self._outstanding += sum(isinstance(c, (SendHDLC, SendData)) for c in cmds)
        air = airtime(cmds)
        if air:
            self._tx_end = max(self._now, self._tx_end) + air

    def _queue(self, cmds: list[Command], *, remember: bool = True, wait: float | None = None) -> None:
        """Queue a command or response and run the timer for what answers it."""
        self._push(cmds)
        if remember:
            self._last_command = list(cmds)
        t = self.config.timers
        if wait is None:
            wait = t.t4 if self.state in _COMMANDER or self.state is State.SEND_DIS else t.t2
        self._deadline = max(self._now, self._tx_end) + wait

    def _frame(self, fcf: FCF, fif: bytes = b"", final: bool = True) -> F.Frame:
        return F.Frame(fcf, fif, self._x, final)

    def _finish(self, reason: Reason, detail: str = "") -> None:
        if self.result.reason is not None:
            return
        r = self.result
        r.reason = reason
        r.detail = detail or r.detail
        r.status = "success" if reason is Reason.OK else "failure"
        r.ended = self._now
        self._events.append(CallEnded(self._now, r.status, reason.name, r.text))

    def _fail(self, reason: Reason, detail: str = "") -> None:
        self._finish(reason, detail)
        if self.state not in (State.DONE, State.SEND_DCN):
            self._go(Input.FAIL)

    def _finish_ok(self, detail: str = "") -> None:
        """The call ended as planned: OK, unless a page went with ECM frames missing."""
        if self._damaged_pages:
            pages = ", ".join(str(n) for n in self._damaged_pages)
            self._finish(Reason.ECM_FAILED, f"page {pages} ended with EOR: frames missing")
        else:
            self._finish(Reason.OK, detail)

    def _where(self) -> str:
        if self.pages and self.state in _COMMANDER:
            return f"during page {self._page_index + 1}"
        if self.result.pages_received or self.state in (State.RX_PAGE, State.RX_WAIT_PMC):
            return f"during page {len(self.result.pages_received) + 1}"
        return f"in {self.state.value}"

    # ------------------------------------------------------------------ entry actions
    def _enter_wait_dis(self) -> None:
        # T.30 §5.1/§5.2: the calling station sends CNG and waits T1 for DIS
        # (after EOM we are back here, without CNG: T.30 §5.3.6.1.4)
        if not self._tone_sent:
            self._tone_sent = True
            self._push([SendTone(Tone.CNG)])
        if self._t1_deadline is None:
            self._t1_deadline = self._now + self.config.timers.t1
        self._push([Receive(Expect.HDLC)])
        self._deadline = self._t1_deadline

    def _enter_send_dis(self) -> None:
        # T.30 §5.2 Figure 5-2b: CED (first time), then [NSF] CSI DIS, repeated every T4 within T1
        cmds: list[Command] = []
        if self._t1_deadline is None:
            self._t1_deadline = self._now + self.config.timers.t1
        first = not self._tone_sent
        if first:
            self._tone_sent = True
            if not self.calling:
                cmds += [SendTone(Tone.CED), SendSilence(GAP_MS)]
        frames = []
        if self.config.nsf:
            frames.append(self._frame(FCF.NSF, self.config.nsf, final=False))
        if self.config.local_id:
            frames.append(self._frame(FCF.CSI, F.encode_id(self.config.local_id), final=False))
        frames.append(self._frame(FCF.DIS, self._local_dis.encode()))
        self._push(cmds)
        self._send_frames(frames, gap=not first or self.calling)
        self._deadline = min(self._deadline, self._t1_deadline)

    def _enter_send_dtc(self) -> None:
        # T.30 §5.2 polling: [NSC] CIG DTC
        frames = []
        if self.config.nsf:
            frames.append(self._frame(FCF.NSC, self.config.nsf, final=False))
        if self.config.local_id:
            frames.append(self._frame(FCF.CIG, F.encode_id(self.config.local_id), final=False))
        remote = self._remote
        if self.config.password and (remote is None or remote.password):
            frames.append(self._frame(FCF.PWD, F.encode_id(self.config.password), final=False))
        if self.config.selective_polling and (remote is None or remote.selective_polling):
            frames.append(self._frame(FCF.SEP, F.encode_id(self.config.selective_polling), final=False))
        dtc = caps.local_dis(self.config, ready_to_transmit=False, ready_to_receive=True)
        frames.append(self._frame(FCF.DTC, dtc.encode()))
        self._local_dis = dtc
        self._send_frames(frames)

    def _enter_send_dcs(self) -> None:
        # T.30 §5.3.6.2: [NSS] TSI DCS, then TCF at the chosen rate
        if self._modulation is None:
            self._modulation = self._allowed[0]
        page = self._current_page()
        self._page_data = None
        self._tx_block = None
        self._dcs = caps.choose_dcs(self.config, self._remote, page, self._modulation)
        self.result.dcs = self._dcs.encode()
        self.result.training_attempts += 1
        frames = []
        if self.config.local_id:
            frames.append(self._frame(FCF.TSI, F.encode_id(self.config.local_id), final=False))
        if self.config.subaddress and self._remote.subaddressing:
            frames.append(self._frame(FCF.SUB, F.encode_id(self.config.subaddress), final=False))
        if self.config.password and self._remote.password and self.calling:
            # SID is the sender's password (Table 2/T.30 bit 50); a polled station's password is
            # the one it requires of the poller, not one to send back (TSB-85 MRGP02)
            frames.append(self._frame(FCF.SID, F.encode_id(self.config.password), final=False))
        frames.append(self._frame(FCF.DCS, self._dcs.encode()))
        cmds = [SendSilence(GAP_MS), SendHDLC(tuple(f.encode() for f in frames)),
                SendSilence(GAP_MS), SendData(self._modulation, tcf_bytes(self._modulation)),
                Receive(Expect.HDLC)]
        for f in frames:
            self._events.append(FrameSent(self._now, f, F.describe(f)))
        self._queue(cmds)

    def _enter_rx_tcf(self) -> None:
        self._tcf = TCFChecker(self._rx_dcs.modulation, self.config.tcf_check)
        self._push([Receive(Expect.DATA, self._rx_dcs.modulation)])
        # the TCF follows the DCS after 75 ms; allow T4 for it to start and finish
        self._deadline = max(self._now, self._tx_end) + self.config.timers.t4 + TCF_SECONDS

    def _enter_rx_wait_dcs(self) -> None:
        pass   # the response (FTT/RTN/RTP/MCF) was queued by the caller with its timer

    def _enter_rx_page(self) -> None:
        d = self._rx_dcs
        self._rx_started = False
        if d.ecm:
            self._push([Receive(Expect.HDLC, d.modulation)])
        else:
            self._push([Receive(Expect.DATA, d.modulation)])
            self._decoder = None
        self._deadline = max(self._now, self._tx_end) + self.config.timers.t2 + HS_TRAINING_S

    def _enter_rx_wait_pmc(self) -> None:
        self._push([Receive(Expect.HDLC)])
        self._deadline = max(self._now, self._tx_end) + self.config.timers.t2

    def _enter_rx_wait_dcn(self) -> None:
        pass

    def _enter_rx_after_eom(self) -> None:
        self._t1_deadline = None     # phase B again: a new T1 for our DIS

    def _enter_send_dcn(self) -> None:
        # T.30 §5.3.6.1.6: DCN, then release the line (phase E)
        if self.result.reason is None:
            self._finish_ok()
        dcn = self._frame(FCF.DCN)
        self._events.append(FrameSent(self._now, dcn, F.describe(dcn)))
        self._push([SendSilence(GAP_MS), SendHDLC((dcn.encode(),)), Hangup()])
        self._go(Input.HUNG_UP)

    def _enter_done(self) -> None:
        self._deadline = None
        if self.result.reason is None:
            self._finish(Reason.OK)
        if self.result.ended is None:
            self.result.ended = self._now

    def _enter_idle(self) -> None:  # pragma: no cover - never entered
        pass

    # ------------------------------------------------------------------ dispatch
    def _dispatch(self, ev: ModemEvent) -> None:
        if isinstance(ev, HDLCFrame):
            if ev.modulation is not Modulation.V21:
                self._on_ecm_frame(ev)
                return
            if not ev.fcs_ok:
                self._burst_bad = True
                self._events.append(BadFrame(self._now, bytes(ev.frame), "FCS error"))
                return
            try:
                frame = F.decode_frame(ev.frame)
            except RemoteProtocolError as exc:
                self._events.append(BadFrame(self._now, bytes(ev.frame), str(exc)))
                raw = bytes(ev.frame)
                framed = len(raw) >= 3 and raw[0] == F.ADDRESS and raw[1] in (F.CONTROL_FINAL,
                                                                               F.CONTROL_NONFINAL)
                if framed and self.state in _COMMANDER:
                    # a frame that arrived intact but is no T.30 response at all: the far end
                    # is not following the protocol; end the call (as TSB-85 MTGX20 expects)
                    self._fail(Reason.PROTOCOL, f"invalid response: {exc}")
                else:
                    self._burst_bad = True
                return
            self._events.append(FrameReceived(self._now, frame, F.describe(frame)))
            try:
                self._on_frame(frame)
            except RemoteProtocolError as exc:
                # a well-formed frame whose content we cannot accept (a bad FIF, a DCS
                # outside our DIS, an ECM page past our limit ...): the call cannot go on
                self._events.append(BadFrame(self._now, bytes(ev.frame), str(exc)))
                self._fail(Reason.PROTOCOL, str(exc))
        elif isinstance(ev, DataReceived):
            self._on_data(ev)
        elif isinstance(ev, CarrierDown):
            if (ev.modulation is Modulation.V21 and self.state in _COMMANDER and not self._burst_good
                    and self._t4_before_carrier is not None and self._deadline is not None):
                # T.30 §5.4.3.1: the signal held no usable answer (a lost MCF): T4 decides the
                # repeat again, not the longer wait for a signal (the far end waits only T2)
                self._deadline = max(self._now, self._t4_before_carrier)
            self._t4_before_carrier = None
            if self._abort_why is not None and self.state is State.RX_TCF and ev.modulation is not Modulation.V21:
                self._fail(Reason.ABORTED, self._abort_why)    # the far end's TCF ended: our turn
                return
            self._on_carrier_down(ev)
        elif isinstance(ev, SendComplete):
            # Response timers run from the end of our transmission (T.30 §5.4.3). Until the
            # transport says every SendHDLC/SendData is done (one SendComplete each), the
            # deadline rests on a generous airtime estimate; then it is exact.
            self._outstanding = max(0, self._outstanding - 1)
            if self._outstanding == 0 and self._pmc_due and self.state is State.SEND_PAGE:
                self._send_pmc()   # (a transport that also reports silences gets here early)
            elif self._outstanding == 0:
                self._tx_end = self._now
                if self._deadline is not None and self.state is not State.WAIT_DIS:
                    t = self.config.timers
                    if self.state in _COMMANDER or self.state is State.SEND_DIS:
                        wait = t.t4
                    elif self.state is State.RX_TCF:
                        wait = t.t4 + HS_TRAINING_S
                    elif self.state is State.RX_PAGE:
                        wait = t.t2 + HS_TRAINING_S
                    else:
                        wait = t.t2
                    new = self._now + wait
                    if self.state is State.SEND_DIS:
                        new = min(new, self._t1_deadline)
                    self._deadline = new
        elif isinstance(ev, LineLost):
            if self.state is State.RX_WAIT_DCN:
                self._finish(Reason.OK, "line dropped instead of DCN")
            else:
                self._finish(Reason.LINE_LOST, f"{self._where()}{': ' + ev.reason if ev.reason else ''}")
            self._go(Input.LINE_LOST)
        elif isinstance(ev, WrongCarrier):
            # we listened for one signal and another came (Class 1 +FCERROR): listen for
            # what is there, so a transport that must choose (+FRH/+FRM) hears it
            if ev.expected is not Modulation.V21 and ev.heard in (None, Modulation.V21):
                self._push([Receive(Expect.HDLC)])
            elif ev.expected is Modulation.V21 and ev.heard is not None and ev.heard is not Modulation.V21:
                expect = Expect.HDLC if (self._rx_dcs is not None and self._rx_dcs.ecm) else Expect.DATA
                self._push([Receive(expect, ev.heard)])
        elif isinstance(ev, (CarrierUp, ToneDetected)):
            if isinstance(ev, CarrierUp):
                if ev.modulation is Modulation.V21:
                    self._burst_bad = self._burst_good = False
                elif (self.state is State.RX_PAGE and self._rx_last_pps is None and self._rx_dcs is not None
                        and self._rx_dcs.ecm):
                    # a new block's burst begins: a frame of the last block that came late
                    # (after its MCF) must not be taken as one of this block's
                    self._rx_block.clear()
                # a signal is arriving: a response timer waits for it (T.30 §5.4.3.1)
                if self._deadline is not None and self.state is not State.WAIT_DIS:
                    if ev.modulation is Modulation.V21:
                        self._t4_before_carrier = self._deadline
                    self._deadline = max(self._deadline, self._now + self.config.timers.t2)
        # anything else is ignored

    def _on_frame(self, fr: F.Frame) -> None:
        f, st = fr.fcf, self.state
        self._burst_good = True
        f = PRI_Q_BASE.get(f, f)   # PRI-Q: we have no operator; treat as the plain command
        if f is FCF.DCN:
            if self._abort_why is not None and st is not State.RX_WAIT_DCN:
                self._finish(Reason.ABORTED, self._abort_why)    # the far end ended first
            self._on_dcn()
            return
        if f in (FCF.CSI, FCF.TSI, FCF.CIG):
            self.result.remote_id = F.decode_id(fr.fif)
            return
        if f in (FCF.NSF, FCF.NSS, FCF.NSC):
            self.result.remote_nsf = fr.fif
            return
        if f in (FCF.SUB, FCF.SEP, FCF.PWD, FCF.SID, FCF.PSA):
            # kept for the result (routing by them is the API's business); PWD is checked
            # when we are polled (config.password)
            self._rx_ids[f.name] = F.decode_id(fr.fif)
            if f is FCF.SUB:
                self.result.remote_subaddress = self._rx_ids["SUB"]
            elif f is FCF.SEP:
                self.result.remote_selective_polling = self._rx_ids["SEP"]
            return
        if self._storage is not None and self._storage_frame(f):
            return                  # a page awaits storage: flow control only (storage.py)
        if st in _COMMANDER and f in _RESPONSES and (
                self._outstanding > 0 or (st is State.SEND_CTC and f in _PPS_RESPONSES)):
            # T.30 §5.4.3: a response answers the command just sent. One that arrives while
            # that command is still going out, or an answer to the PPS before our CTC, is a
            # late copy of an earlier answer (a lossy T.38 path can deliver one twice): it is
            # ignored, and the command's own answer (or T4 and the repeat rules) decides.
            self._events.append(BadFrame(self._now, fr.encode(), f"stale {f.name} ignored in {st.value}"))
            return
        if st in _COMMANDER and st is not State.SEND_DCS and f in (FCF.CFR, FCF.FTT) and self._late_cfr > 0:
            # our DCS was repeated (T4) and answered: the far end may answer each copy, and a
            # slow one's answer to the repeat arrives after we moved on (seen on an overloaded
            # T.38 path). It answers a command of ours, just not the current one: ignored, never
            # a protocol failure (T.30 §5.4.3)
            self._late_cfr -= 1
            self._events.append(BadFrame(self._now, fr.encode(), f"late {f.name} to a repeated DCS ignored in {st.value}"))
            return
        if self._abort_why is not None and fr.final and f is not FCF.DCS:
            # abort() waited for this frame (an answer, or a command): now DCN (T.30 §5.3.6.1.6).
            # After a DCS the TCF follows: DCN waits for its end (see _dispatch)
            self._fail(Reason.ABORTED, self._abort_why)
            return
        if f is FCF.CRP:
            if st in _COMMANDER:
                self._tries += 1
                if self._tries >= self.config.retries:      # 3 tries in all, then DCN
                    self._fail(Reason.NO_RESPONSE, "far end kept asking to repeat (CRP)")
                    return
                self._queue(list(self._last_command))
            elif st is State.SEND_DIS:
                self._go(Input.CRP)
            elif st in (State.RX_WAIT_DCS, State.RX_WAIT_PMC, State.RX_WAIT_DCN, State.RX_PAGE):
                self._repeat_response()
            return
        if f is FCF.DIS:
            self._on_dis(fr)
        elif f is FCF.DTC:
            self._on_dtc(fr)
        elif f is FCF.DCS:
            self._on_dcs(fr)
        elif st is State.SEND_DCS and f in (FCF.CFR, FCF.FTT):
            self._on_training_answer(f is FCF.CFR)
        elif st in (State.SEND_PAGE, State.RESEND_PMC) and f in (FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN):
            self._on_page_answer(f)
        elif st in (State.SEND_BLOCK, State.RESEND_PPS, State.SEND_EOR, State.SEND_RR) and \
                f in (FCF.MCF, FCF.PPR, FCF.RNR, FCF.ERR, FCF.PIP, FCF.PIN, FCF.RTN, FCF.RTP):
            self._on_block_answer(f, fr)
        elif st is State.SEND_CTC and f is FCF.CTR:
            self._modulation = self._pending_ctc
            self._dcs = F.DCS(**{**dcs_fields(self._dcs), "modulation": self._pending_ctc})
            self._tx_block.pprs = 0
            self.result.fallbacks += 1
            self._go(Input.CTR)
        elif f in _POST_PAGE:
            self._on_post_page(f)
        elif f is FCF.PPS:
            self._on_pps(fr)
        elif f is FCF.EOR:
            self._on_eor(fr)
        elif f is FCF.CTC:
            self._on_ctc(fr)
        elif f is FCF.RR:
            self._on_rr()
        elif st in _COMMANDER and fr.final and f not in (FCF.DIS, FCF.DTC, FCF.DCS):
            # a valid frame that is no answer to our command (T.30 Appendix III lists the
            # responses each command allows): give up (TSB-85 MTGX20)
            self._fail(Reason.PROTOCOL, f"{fr.name} is no answer in {st.value}")
        # anything else here is unexpected: ignored (T.30 §5.4: the far end's T4 recovers)

    def _on_dcn(self) -> None:
        st = self.state
        if self._rx_eor is not None and self._deliver_eor_page():
            st = State.RX_WAIT_DCN          # that was the last page: the call ended as it should
        if st is State.RX_WAIT_DCN:
            self._finish_ok()
        elif self._rx_abandon is not None:
            self._finish(Reason.SCAN_LINE_TOO_LONG, self._rx_abandon)
        elif self.pages and self._page_index >= len(self.pages):
            self._finish(Reason.OK, "DCN before our own")
        else:
            self._finish(Reason.UNEXPECTED_DCN, self._where())
        self._go(Input.DCN)

    # ------------------------------------------------------------------ timers
    def _on_timeout(self) -> None:
        st, n = self.state, self.config.retries
        if st is State.SEND_PAGE and self._pmc_due:
            self._send_pmc()       # the transport never reported the page data sent
            return
        if st is State.WAIT_DIS:
            if self.result.remote_dis is None:
                # nothing was ever heard from the far end: no DCN to send (TSB-85 MTGX02)
                self._finish(Reason.NO_DIS)
                self._push([Hangup()])
                self._go(Input.GIVE_UP)
            else:
                self._fail(Reason.NO_DIS, "after EOM")
        elif st is State.SEND_DIS:
            # DIS is sent 3 times (config.retries, as TSB-85 MRGX01 expects), within T1
            self._tries += 1
            if self._tries >= n or (self._t1_deadline is not None and self._now >= self._t1_deadline):
                self._fail(Reason.NO_DCS)
            else:
                self._go(Input.NO_RESPONSE_RETRY)
        elif st is State.RX_TCF:
            if self._tcf is not None and self._tcf.octets:
                self._on_carrier_down(CarrierDown(self._rx_dcs.modulation))   # carrier-down never came
                return
            self._tcf_failures += 1
            if self._tcf_failures > n:
                self._fail(Reason.NO_TCF)
                return
            self._respond(FCF.FTT)
            self._go(Input.TCF_BAD)
        elif st is State.RX_WAIT_DCS:
            self._fail(Reason.NO_RESPONSE, f"no DCS after our {self._last_response_name()}")
        elif st is State.RX_PAGE:
            if self._rx_started:
                self._go(Input.PAGE_DATA_END)     # data stopped without carrier-down
            else:
                self._fail(Reason.NO_PAGE, self._where())
        elif st is State.RX_WAIT_PMC:
            if self._rx_abandon is not None:
                self._fail(Reason.SCAN_LINE_TOO_LONG, self._rx_abandon)
            else:
                self._fail(Reason.NO_POST_PAGE, self._where())
        elif st is State.RX_AFTER_EOM:
            self._go(Input.NO_RESPONSE_RETRY)
        elif st is State.RX_WAIT_DCN:
            self._finish_ok("no DCN after the last page")
            self._go(Input.END_OK)
        elif st in _COMMANDER:
            self._tries += 1
            if self._tries >= n:
                reason = {State.SEND_DTC: Reason.NO_DCS, State.SEND_DCS: Reason.NO_RESPONSE_TO_DCS,
                          State.SEND_CTC: Reason.ECM_FAILED, State.SEND_EOR: Reason.ECM_FAILED,
                          State.SEND_RR: Reason.NO_RESPONSE}.get(st, Reason.NO_RESPONSE_TO_PAGE)
                self._fail(reason, self._where())
            else:
                self._go(Input.NO_RESPONSE_RETRY)
        else:
            self._fail(Reason.NO_RESPONSE, self._where())

    def _last_response_name(self) -> str:
        if not self._last_response:
            return "answer"
        fcf = split(self._last_response[0][2])[0]
        return fcf.name if fcf else "answer"

    def __repr__(self) -> str:
        role = "calling" if self.calling else "answering"
        return f"<Session {role} {self.state.name} pages={len(self.pages)} receive={self.receive_ok}>"


