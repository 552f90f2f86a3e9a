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
and fires only through ``handle_timer(now)``. What to do in each state on each
input is in :mod:`xmfax.t30.states` (the table that dispatches): this class
classifies what it hears into an input (``_dispatch``, ``_on_frame``), runs the
action the table names (``_do_<action>``, here and in the mixins :mod:`.phase_b`,
:mod:`.transmitter`, :mod:`.receiver`, :mod:`.storage`), and on entering a state
queues its transmissions (``_enter_<state>``) and arms its timer (``_arm``).
What a transport must report (SendComplete, CarrierUp ...): docs/t30.md. A non-ECM
page's MPS/EOM/EOP is chosen on its data's SendComplete, so that ``add_document``
during the last page still gives EOM.
"""
from __future__ import annotations

from dataclasses import dataclass

from .. import codecs
from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ..page import Page
from . import capabilities as caps
from . import frames as F
from .config import T30Config
from .ecm import RxEcm
from .events import BadFrame, CallEnded, Event, FrameReceived, FrameSent, PhaseChanged
from .fcf import FCF, PRI_Q_BASE, split
from .modem import (CarrierDown, CarrierUp, Command, DataReceived, Expect, Hangup, HDLCFrame,
                    LineLost, ModemEvent, Modulation, Receive, SendComplete, SendData, SendHDLC,
                    SendSilence, SendTone, Tone, ToneDetected, WrongCarrier)
from .result import Reason, T30Result
from .states import RETRIES, SPEC, TABLE, Input, State, Timer, allowed, fire, missing
from .tcf import TCF_SECONDS, TCFChecker, tcf_bytes
from ._common import GAP_MS, HS_TRAINING_S, airtime
from .phase_b import PhaseBMixin
from .receiver import ReceiverMixin, RxPage
from .storage import StorageMixin
from .transmitter import TransmitterMixin, TxPage


# responses a commander takes only as the answer to the command it has just sent
_RESPONSES = {FCF.CFR, FCF.FTT, FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN,
              FCF.PPR, FCF.RNR, FCF.ERR, FCF.CTR, FCF.CRP}
# the classifier of V.21 frames (T.30 §5.3.6.1): the frame alone decides, never the state
_HEARD = {FCF.DIS: Input.FR_DIS, FCF.DTC: Input.FR_DTC, FCF.DCS: Input.FR_DCS,
          FCF.CFR: Input.FR_TRAINING, FCF.FTT: Input.FR_TRAINING, FCF.CTR: Input.FR_CTR,
          FCF.PPS: Input.FR_PPS, FCF.EOR: Input.FR_EOR, FCF.CTC: Input.FR_CTC, FCF.RR: Input.FR_RR,
          FCF.CRP: Input.FR_CRP, FCF.DCN: Input.FR_DCN,
          **dict.fromkeys((FCF.MCF, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN), Input.FR_PAGE_ANSWER),
          **dict.fromkeys((FCF.PPR, FCF.RNR, FCF.ERR), Input.FR_ECM_ANSWER),
          **dict.fromkeys((FCF.MPS, FCF.EOP, FCF.EOM), Input.FR_PMC)}
_NSF = {FCF.NSF, FCF.NSS, FCF.NSC}
_ROUTING = {FCF.SUB, FCF.SEP, FCF.PWD, FCF.SID, FCF.PSA}
# frames that only inform: where the result keeps them (T.30 §5.3.6.1.1-2)
_NOTED = {**dict.fromkeys((FCF.CSI, FCF.TSI, FCF.CIG), "remote_id"), **dict.fromkeys(_NSF, "remote_nsf"),
          **dict.fromkeys(_ROUTING), FCF.SUB: "remote_subaddress", FCF.SEP: "remote_selective_polling"}


@dataclass(slots=True)
class Retries:
    """How often things were tried (T.30 §5.4.3: a command goes 3 times, config.retries)."""

    tries: int = 0          # the current command: T4 expiries, CRPs, DIS heard again
    late_cfr: int = 0       # CFR/FTT copies that may still come: our DCS went out more than once
    tcf_failures: int = 0   # TCFs we judged bad or never got


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
        self._deadline: float | None = None           # the state's timer (SPEC[state].timer)
        self._t1_deadline: float | None = None        # T1 of this phase B
        self._t5_deadline: float | None = None        # T5 of this run of RNRs
        self._t4_before_carrier: float | None = None  # a commander's T4 deadline before a carrier came
        self._tx_end = now                            # when our queued transmissions should end
        self._outstanding = 0                         # SendHDLC/SendData not yet reported complete
        self._x = 0                                   # X bit: 1 once we received a valid DIS
        self._tone_sent = False
        self._rx_ids: dict[str, str] = {}             # SUB/SEP/PWD/SID/PSA received
        self._retry = Retries()
        self._local_dis = caps.local_dis(self.config, ready_to_transmit=bool(self.pages),
                                         ready_to_receive=self.receive_ok)
        self._remote: F.DIS | None = None
        self._last_command: list[Command] = []        # to repeat on CRP / T4
        self._last_response: tuple[bytes, ...] | None = None
        self._burst_bad = self._burst_good = False    # the V.21 burst so far held damaged / good frames
        self._abort_why: str | None = None            # abort() asked for, DCN waits for the far end's turn
        self._damaged_pages: list[int] = []           # pages sent or received with ECM frames lost (EOR)
        # transmitter (transmitter.py)
        self._page_index = 0
        self._allowed: list[Modulation] = []
        self._modulation: Modulation | None = None
        self._dcs: F.DCS | None = None
        self._tx = TxPage()
        # receiver (receiver.py)
        self._rx_dcs: F.DCS | None = None
        self._tcf: TCFChecker | None = None
        self._rx = RxPage()
        self._ecm = RxEcm()
        self._held = False                            # hold(): ECM flow control (RNR)
        self._storage = None                          # HeldAnswer: a page's answer awaiting storage
        self._storage_deadline: float | None = None

    # ------------------------------------------------------------------ public API
    def start(self, now: float) -> None:
        """Begin the call (phase A): CNG and wait for DIS, or CED then DIS."""
        self._now = now
        self.result.started = now
        inp = Input.START_CALLING if self.calling else Input.START_ANSWERING
        if not allowed(self.state, inp):
            raise LocalProtocolError("start() called twice")
        self._go(inp)

    def receive(self, event: ModemEvent, now: float) -> None:
        """Feed one event from the transport. Bad input from the far end is
        reported as a BadFrame event or ends the call with a reason; it never raises."""
        self._now = now
        if not SPEC[self.state].live:
            return
        try:
            self._dispatch(event)
        except (ProtocolError, codecs.CodecError) as exc:
            # RemoteProtocolError: the far end broke T.30; LocalProtocolError: what it sent
            # led us somewhere we cannot go (e.g. a page that fits no DCS): DCN either way
            self._fail(Reason.PROTOCOL, str(exc))

    def handle_timer(self, now: float) -> None:
        """Run any timer that has expired by ``now``."""
        self._now = now
        if not SPEC[self.state].live:
            return
        if self._storage_deadline is not None and now >= self._storage_deadline:
            self._storage_deadline = None
            self._storage_failed("storage did not answer")
            return
        if self._deadline is not None and now >= self._deadline:
            self._deadline = None
            if self._abort_why is not None:
                self._fail(Reason.ABORTED, self._abort_why or "no answer before DCN")
            elif self._storage is None or self._storage.stored:   # (else storage's timer bounds the wait)
                try:
                    self._heard(Input.TIMEOUT)
                except (ProtocolError, codecs.CodecError) as exc:
                    self._fail(Reason.PROTOCOL, str(exc))

    def next_timer(self) -> float | None:
        """When handle_timer() should next be called (None: no timer running)."""
        if not SPEC[self.state].live:
            return None
        t, u = self._deadline, self._storage_deadline      # (asked every block by a modem pump)
        if u is None or (t is not None and t <= u):
            return t
        return u

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
        self._heard(Input.ABORT, why)

    def _do_abort_before_start(self, why: str) -> None:
        self._finish(Reason.ABORTED, why)
        self.state = State.DONE

    def _do_abort(self, why: str) -> None:
        # in every live state the far end has the turn or is about to (we listen)
        if self._abort_why is None and self._deadline is not None:
            self._abort_why = why
            if SPEC[self.state].timer in (Timer.T1, Timer.T4, Timer.T4_IN_T1):
                self._deadline = min(self._deadline, max(self._now, self._tx_end) + self.config.timers.t4)
        else:
            self._fail(Reason.ABORTED, why)

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
        if not self.pages or self.done or self._page_index > last or (
                self._page_index == last and self._tx.pmc_sent):
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
        return SPEC[self.state].ended

    # ------------------------------------------------------------------ machinery
    def _heard(self, inp: Input, *args, final: bool = False, what: str = "") -> None:
        """Dispatch a heard input: the table's action for it in this state, or the rule
        for a pair the table does not have (states.missing: ignored, or no answer)."""
        move = TABLE.get((self.state, inp))
        if move is not None:
            getattr(self, "_do_" + move.action)(*args)
            return
        try:
            missing(self.state, inp, final, what)
        except RemoteProtocolError as exc:
            self._fail(Reason.PROTOCOL, str(exc))

    def _go(self, inp: Input) -> None:
        """Fire an outcome: move to the table's next state, run its entry action, arm its timer."""
        old = self.state
        new = fire(old, inp)
        if inp not in RETRIES:
            self._retry.tries = 0
        self.state = new
        if SPEC[new].phase != SPEC[old].phase:
            self._events.append(PhaseChanged(self._now, SPEC[new].phase, new.name))
        getattr(self, "_enter_" + new.name.lower())()
        self._arm()

    def _arm(self, rearm: bool = False) -> None:
        """Run the state's timer (SPEC[state].timer) from the end of what we sent (T.30
        §5.4.3). ``rearm``: our transmission just ended (T1 is a fixed deadline: kept)."""
        timer, t = SPEC[self.state].timer, self.config.timers
        if rearm and timer is Timer.T1:
            return
        base = max(self._now, self._tx_end)
        self._deadline = {
            Timer.NONE: None, Timer.T1: self._t1_deadline,
            Timer.T4_IN_T1: min(base + t.t4, self._t1_deadline or base + t.t4),
            Timer.T4: base + t.t4, Timer.T4_TCF: base + t.t4 + TCF_SECONDS,
            Timer.T2: base + t.t2, Timer.T2_PAGE: base + t.t2 + HS_TRAINING_S}[timer]

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

    def _queue(self, cmds: list[Command], *, remember: bool = True) -> None:
        """Queue a command (T4 then runs) or a response (T2) (T.30 §5.4.3.1)."""
        self._push(cmds)
        if remember:
            self._last_command = list(cmds)
        t = self.config.timers
        command = SPEC[self.state].timer in (Timer.T4, Timer.T4_IN_T1)     # we command here
        self._deadline = max(self._now, self._tx_end) + (t.t4 if command else t.t2)

    def _frame(self, fcf: FCF, fif: bytes = b"", final: bool = True) -> F.Frame:
        return F.Frame(fcf, fif, self._x, final)

    def _optional(self, *fields: tuple[FCF, bytes | str | None]) -> list[F.Frame]:
        """Non-final frames for the optional fields that are set (a str is an identifier)."""
        return [self._frame(f, F.encode_id(v) if isinstance(v, str) else v, final=False) for f, v in fields if v]

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
        if allowed(self.state, Input.FAIL):
            self._go(Input.FAIL)

    def _finish_ok(self, detail: str = "") -> None:
        """The call ended as planned: OK, unless a page went with ECM frames missing."""
        if self._damaged_pages:
            pages = ", ".join(str(n) for n in self._damaged_pages)
            self._finish(Reason.ECM_FAILED, f"page {pages} ended with EOR: frames missing")
        else:
            self._finish(Reason.OK, detail)

    def _where(self) -> str:
        if self.pages and SPEC[self.state].commander:
            return f"during page {self._page_index + 1}"
        if self.result.pages_received or SPEC[self.state].receiving_page:
            return f"during page {len(self.result.pages_received) + 1}"
        return f"in {self.state.value}"

    # ------------------------------------------------------------------ entry actions
    def _enter_wait_dis(self) -> None:
        # T.30 §5.1/§5.2: the calling station sends CNG and waits T1 for DIS
        # (after EOM we are back here, without CNG: T.30 §5.3.6.1.4)
        if not self._tone_sent:
            self._tone_sent = True
            self._push([SendTone(Tone.CNG)])
        self._remote, self._t1_deadline = None, self._now + self.config.timers.t1   # phase B (again)
        self._push([Receive(Expect.HDLC)])

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
        cfg = self.config
        frames = self._optional((FCF.NSF, cfg.nsf), (FCF.CSI, cfg.local_id))
        frames.append(self._frame(FCF.DIS, self._local_dis.encode()))
        self._push(cmds)
        self._send_frames(frames, gap=not first or self.calling)

    def _enter_send_dtc(self) -> None:
        # T.30 §5.2 polling: [NSC] CIG DTC
        cfg, remote = self.config, self._remote
        frames = self._optional((FCF.NSC, cfg.nsf), (FCF.CIG, cfg.local_id),
                                (FCF.PWD, (remote is None or remote.password) and cfg.password),
                                (FCF.SEP, (remote is None or remote.selective_polling) and cfg.selective_polling))
        dtc = caps.local_dis(self.config, ready_to_transmit=False, ready_to_receive=True)
        frames.append(self._frame(FCF.DTC, dtc.encode()))
        self._local_dis = dtc
        self._send_frames(frames)

    def _enter_send_dcs(self) -> None:
        # T.30 §5.3.6.2: [NSS] TSI DCS, then TCF at the chosen rate
        if self._modulation is None:
            self._modulation = self._allowed[0]
        page = self._current_page()
        self._tx.data = None
        self._tx.block = None
        self._dcs = caps.choose_dcs(self.config, self._remote, page, self._modulation)
        self.result.dcs = self._dcs.encode()
        self.result.training_attempts += 1
        cfg, remote = self.config, self._remote
        # SID is the sender's password (Table 2/T.30 bit 50); a polled station's password is
        # the one it requires of the poller, not one to send back (TSB-85 MRGP02)
        frames = self._optional((FCF.TSI, cfg.local_id), (FCF.SUB, remote.subaddressing and cfg.subaddress),
                                (FCF.SID, remote.password and self.calling and cfg.password))
        frames.append(self._frame(FCF.DCS, self._dcs.encode()))
        cmds = [SendSilence(GAP_MS), SendHDLC(tuple(f.encode() for f in frames)),
                SendSilence(GAP_MS), SendData(self._modulation, tcf_bytes(self._modulation)),
                Receive(Expect.HDLC)]
        for f in frames:
            self._events.append(FrameSent(self._now, f, F.describe(f)))
        self._queue(cmds)

    def _enter_rx_tcf(self) -> None:
        # the TCF follows the DCS after 75 ms: T4 for it to start, its length to end (T4_TCF)
        self._tcf = TCFChecker(self._rx_dcs.modulation, self.config.tcf_check)
        self._push([Receive(Expect.DATA, self._rx_dcs.modulation)])

    def _enter_rx_page(self) -> None:
        d = self._rx_dcs
        self._rx.started = False
        if d.ecm:
            self._push([Receive(Expect.HDLC, d.modulation)])
        else:
            self._push([Receive(Expect.DATA, d.modulation)])
            self._rx.decoder = None

    def _enter_rx_wait_pmc(self) -> None:
        self._push([Receive(Expect.HDLC)])

    def _enter_rx_after_eom(self) -> None:
        self._t1_deadline = None     # phase B again: a new T1 for our DIS

    def _enter_send_dcn(self) -> None:
        # T.30 §5.3.6.1.6: DCN, then release the line (phase E)
        if self.result.reason is None:
            self._finish_ok()
        self._send_frames([self._frame(FCF.DCN)], expect=False)
        self._push([Hangup()])
        self._go(Input.HUNG_UP)

    def _enter_done(self) -> None:
        if self.result.reason is None:
            self._finish(Reason.OK)
        if self.result.ended is None:
            self.result.ended = self._now

    def _enter_rx_wait_dcs(self) -> None:
        """RX_WAIT_DCS, RX_WAIT_DCN: the answer (FTT/RTN/RTP/MCF) went out with the action."""
    _enter_rx_wait_dcn = _enter_rx_wait_dcs

    # ------------------------------------------------------------------ classify what was heard
    def _dispatch(self, ev: ModemEvent) -> None:
        spec = SPEC[self.state]
        if isinstance(ev, HDLCFrame):
            if ev.modulation is not Modulation.V21:
                self._heard(Input.ECM_FRAME, ev)
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
                if framed and spec.commander:
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
            self._heard(Input.DATA, ev)
        elif isinstance(ev, CarrierDown):
            if (ev.modulation is Modulation.V21 and spec.commander and not self._burst_good
                    and self._t4_before_carrier is not None and self._deadline is not None):
                # T.30 §5.4.3.1: the signal held no usable answer (a lost MCF): T4 decides the
                # repeat again, not the longer wait for a signal (the far end waits only T2)
                self._deadline = max(self._now, self._t4_before_carrier)
            self._t4_before_carrier = None
            if ev.modulation is not Modulation.V21:
                self._heard(Input.HS_DOWN, ev)
                return
            # a burst of frames ended holding only damaged ones: line noise, never the end of
            # the call (T.30 §5.4; decided for issue #13: docs/t30.md "Frames in error";
            # TSB-85 MRGX09/10/12, MTGX17/18 expect otherwise: a deliberate disagreement)
            noise = self._burst_bad and not self._burst_good and self._storage is None
            self._burst_bad = self._burst_good = False
            if noise:
                self._heard(Input.NOISE_BURST)
        elif isinstance(ev, SendComplete):
            # timers run from the end of our transmission (T.30 §5.4.3): until every
            # SendHDLC/SendData is reported done, from an airtime estimate; then exactly
            self._outstanding = max(0, self._outstanding - 1)
            if self._outstanding == 0 and self._tx.pmc_due:
                self._send_pmc()   # (a transport that also reports silences gets here early)
            elif self._outstanding == 0:
                self._tx_end = self._now
                if self._deadline is not None:
                    self._arm(rearm=True)
        elif isinstance(ev, LineLost):
            self._heard(Input.LINE_DOWN, ev)
        elif isinstance(ev, WrongCarrier):
            # we listened for one signal and another came (Class 1 +FCERROR): listen for
            # what is there, so a transport that must choose (+FRH/+FRM) hears it
            if ev.expected is not Modulation.V21 and ev.heard in (None, Modulation.V21):
                self._push([Receive(Expect.HDLC)])
            elif ev.expected is Modulation.V21 and ev.heard is not None and ev.heard is not Modulation.V21:
                expect = Expect.HDLC if (self._rx_dcs is not None and self._rx_dcs.ecm) else Expect.DATA
                self._push([Receive(expect, ev.heard)])
        elif isinstance(ev, (CarrierUp, ToneDetected)):
            v21 = isinstance(ev, CarrierUp) and ev.modulation is Modulation.V21
            if v21:
                self._burst_bad = self._burst_good = False
            elif isinstance(ev, CarrierUp):
                self._heard(Input.HS_UP, ev)
            # a signal is arriving: a response timer waits for it (T.30 §5.4.3.1)
            if self._deadline is not None and spec.timer is not Timer.T1:
                if v21:
                    self._t4_before_carrier = self._deadline
                self._deadline = max(self._deadline, self._now + self.config.timers.t2)
        # anything else is ignored

    def _on_frame(self, fr: F.Frame) -> None:
        spec = SPEC[self.state]
        self._burst_good = True
        f = PRI_Q_BASE.get(fr.fcf, fr.fcf)   # PRI-Q: we have no operator; treat as the plain command
        inp = _HEARD.get(f, Input.FR_OTHER)
        if f is FCF.DCN:
            self._heard(inp)
            return
        if f in _NOTED:
            # kept for the result (routing by SUB/SEP is the API's business); PWD is checked
            # when we are polled (config.password)
            value = fr.fif if f in _NSF else F.decode_id(fr.fif)
            if f in _ROUTING:
                self._rx_ids[f.name] = value
            if _NOTED[f]:
                setattr(self.result, _NOTED[f], value)
            return
        if self._storage is not None and self._storage_frame(f):
            return                  # a page awaits storage: flow control only (storage.py)
        if spec.commander and f in _RESPONSES and (self._outstanding > 0 or f in spec.stale):
            # T.30 §5.4.3: a response answers the command just sent. One arriving while that
            # command still goes out, or an answer to the PPS before our CTC, is a late copy
            # of an earlier answer (a lossy T.38 path can deliver one twice): ignored
            self._events.append(BadFrame(self._now, fr.encode(), f"stale {f.name} ignored in {self.state.value}"))
            return
        if (spec.commander and inp is Input.FR_TRAINING and self._retry.late_cfr > 0
                and not allowed(self.state, inp)):
            # our DCS was repeated (T4) and the far end answers each copy: an answer to a
            # repeat arriving after we moved on (an overloaded T.38 path) is ignored (T.30 §5.4.3)
            self._retry.late_cfr -= 1
            self._events.append(BadFrame(self._now, fr.encode(), f"late {f.name} to a repeated DCS ignored in {self.state.value}"))
            return
        if self._abort_why is not None and fr.final and f is not FCF.DCS:
            # abort() waited for this frame (an answer, or a command): now DCN (T.30 §5.3.6.1.6).
            # After a DCS the TCF follows: DCN waits for its end (_do_tcf_end)
            self._fail(Reason.ABORTED, self._abort_why)
            return
        self._heard(inp, fr, f, final=fr.final, what=fr.name)

    # ------------------------------------------------------------------ actions (any side)
    def _do_dcn(self, expected: bool = False) -> None:
        if self._abort_why is not None and not expected:
            self._finish(Reason.ABORTED, self._abort_why)    # the far end ended first
        if self._ecm.eor is not None and self._deliver_eor_page():
            expected = True                 # that was the last page: the call ended as it should
        if expected:
            self._finish_ok()
        elif self._rx.abandon is not None:
            self._finish(Reason.SCAN_LINE_TOO_LONG, self._rx.abandon)
        elif self.pages and self._page_index >= len(self.pages):
            self._finish(Reason.OK, "DCN before our own")
        else:
            self._finish(Reason.UNEXPECTED_DCN, self._where())
        self._go(Input.DCN)

    def _do_dcn_after_eop(self) -> None:
        self._do_dcn(expected=True)

    def _do_line_lost(self, ev: LineLost) -> None:
        self._finish(Reason.LINE_LOST, f"{self._where()}{': ' + ev.reason if ev.reason else ''}")
        self._go(Input.LINE_LOST)

    def _do_line_dropped_after_eop(self, ev: LineLost) -> None:
        self._finish(Reason.OK, "line dropped instead of DCN")
        self._go(Input.LINE_LOST)

    def _do_repeat_command(self, *_) -> None:
        # T.30 §5.3.6.1.7 CRP: our command again, 3 tries in all (config.retries), then DCN
        self._retry.tries += 1
        if self._retry.tries >= self.config.retries:
            self._fail(Reason.NO_RESPONSE, "far end kept asking to repeat (CRP)")
            return
        self._queue(list(self._last_command))

    def _do_crp_to_dis(self, *_) -> None:
        self._go(Input.CRP)

    def _do_command_timeout(self) -> None:
        # T.30 §5.4.3.1: T4 expired: the command again, 3 tries in all (config.retries)
        self._retry.tries += 1
        if self._retry.tries >= self.config.retries:
            self._fail(SPEC[self.state].gives_up, self._where())
        else:
            self._go(Input.NO_RESPONSE_RETRY)

    def _last_response_name(self) -> str:
        if not self._last_response:
            return "answer"
        fcf = split(self._last_response[0][2])[0]
        return fcf.name if fcf else "answer"

    def __repr__(self) -> str:
        role = "calling" if self.calling else "answering"
        return f"<Session {role} {self.state.name} pages={len(self.pages)} receive={self.receive_ok}>"
