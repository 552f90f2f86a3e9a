"""The T.30 session's state machine: its states, what each state is, and the table
that dispatches every input (h11's "Rule 1", h2's ``(state, input) -> (action, next)``).

How the session uses it (docs/t30.md, "Reading the table"):

1. What the session heard (a frame, the end of a carrier, page data, a timer) is
   classified into a *heard* :class:`Input` (``FR_*`` for V.21 frames, ``TIMEOUT``,
   ``HS_DOWN`` ...). The classifier looks at the frame, never at the state.
2. ``TABLE[(state, input)]`` is a :class:`Move`. For a heard input it names the
   action (a ``Session._do_<action>`` method). The action looks at the data (e.g.
   "MCF with pages left") and fires an *outcome* input (``PAGE_ACK_NEXT`` ...).
3. For an outcome, the move names the next state: the session enters it, runs the
   state's entry action (``Session._enter_<state>``: what is sent on entering it)
   and arms the state's timer (``SPEC[state].timer``, from the end of what we sent).
   When the timer expires, ``TIMEOUT`` is looked up like any other input.

A pair missing from the table is handled by one rule, :func:`missing`
(T.30 §5.4.3 and Appendix III): while we wait for the answer to a command of ours,
a final frame that is neither one of the answers the table takes nor a command is
no answer at all: RemoteProtocolError, and the call ends (DCN, Reason.PROTOCOL;
TSB-85 MTGX20). Anything else missing from the table (a command the state does not
expect, a response where we sent no command, a non-final frame, a carrier event) is
ignored, and the far end's T4 repeat recovers (T.30 §5.4). Only an *outcome* with no
move is our own mistake: :func:`fire` raises LocalProtocolError for it.

States are named after places of the flow charts in T.30 §5.2 (Figure 5-2a..z) and
Annex A (Figure A.7); the calling and answering, sending and receiving sides share
one table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError
from .fcf import FCF
from .result import Reason


class State(enum.Enum):
    # Phase A (T.30 §5.1)
    IDLE = "idle"
    # Phase B, pre-message procedure (T.30 §5.2, Figure 5-2a/b)
    SEND_DIS = "send DIS"                    # answering station: NSF/CSI/DIS, wait for a command
    WAIT_DIS = "wait DIS"                    # calling station: wait for DIS (T1)
    SEND_DTC = "send DTC"                    # polling station: CIG/DTC, wait for DCS
    SEND_DCS = "send DCS+TCF"                # transmitter: TSI/DCS, TCF, wait for CFR/FTT
    RX_WAIT_DCS = "wait DCS"                 # receiver after FTT/RTN/RTP: wait for DCS
    RX_TCF = "receive TCF"                   # receiver: TCF at the DCS's rate
    # Phase C, message (T.4 / T.30 Annex A)
    SEND_PAGE = "send page"                  # non-ECM: image data, then MPS/EOP; wait response
    RESEND_PMC = "repeat post-page command"  # non-ECM: no answer to MPS/EOP yet
    SEND_BLOCK = "send ECM block"            # ECM: FCD frames, RCP, PPS; wait response
    RESEND_PPS = "repeat PPS"
    SEND_CTC = "send CTC"                    # ECM: continue to correct at a new rate
    SEND_EOR = "send EOR"                    # ECM: end of retransmission
    SEND_RR = "send RR"                      # ECM: far end not ready, poll it
    RX_PAGE = "receive page"                 # receiver: page data or ECM frames
    # Phase D, post-message (T.30 §5.3.6.1.4)
    RX_WAIT_PMC = "wait post-page command"   # receiver: MPS/EOP/EOM or PPS/EOR/CTC
    RX_WAIT_DCN = "wait DCN"                 # receiver: EOP answered, wait for DCN
    RX_AFTER_EOM = "wait after EOM"          # receiver: EOM answered; a repeat, DCS, or (T2) our DIS
    # Phase E, release (T.30 §5.1)
    SEND_DCN = "send DCN"
    DONE = "done"


class Input(enum.Enum):
    # ---- heard: what the session classified from the line, a timer or the API
    FR_DIS = enum.auto()
    FR_DTC = enum.auto()
    FR_DCS = enum.auto()
    FR_TRAINING = enum.auto()       # CFR or FTT
    FR_PAGE_ANSWER = enum.auto()    # MCF RTP RTN PIP PIN
    FR_ECM_ANSWER = enum.auto()     # PPR RNR ERR
    FR_CTR = enum.auto()
    FR_PMC = enum.auto()            # MPS EOP EOM (PRI-Q: the same)
    FR_PPS = enum.auto()
    FR_EOR = enum.auto()
    FR_CTC = enum.auto()
    FR_RR = enum.auto()
    FR_CRP = enum.auto()
    FR_DCN = enum.auto()
    FR_OTHER = enum.auto()          # FNV, or FCD/RCP at V.21
    ECM_FRAME = enum.auto()         # an FCD/RCP frame at the high-speed rate
    DATA = enum.auto()              # high-speed data (TCF or a non-ECM page)
    HS_UP = enum.auto()             # a high-speed carrier begins
    HS_DOWN = enum.auto()           # a high-speed carrier ends (TCF or page data done)
    NOISE_BURST = enum.auto()       # a V.21 burst ended holding only damaged frames
    LINE_DOWN = enum.auto()         # the transport lost the line
    TIMEOUT = enum.auto()           # the state's timer (SPEC[state].timer) expired
    ABORT = enum.auto()             # Session.abort(): the application ends the call
    # ---- outcomes: fired by the actions once they have looked at the data
    START_CALLING = enum.auto()
    START_ANSWERING = enum.auto()
    DIS_SEND = enum.auto()          # DIS heard, we have pages for a receiver
    DIS_POLL = enum.auto()          # DIS heard, we poll its document
    DIS_REPEAT = enum.auto()        # DIS heard again: our command was not heard
    DTC_SEND = enum.auto()          # DTC heard and we have pages: we transmit
    DCS = enum.auto()               # a valid DCS
    TCF_OK = enum.auto()            # we judged TCF good: CFR sent
    TCF_BAD = enum.auto()           # we judged TCF bad (or none came): FTT sent
    CFR = enum.auto()
    CFR_ECM = enum.auto()
    FTT_RETRY = enum.auto()         # FTT, a lower rate is left
    PAGE_ACK_NEXT = enum.auto()     # MCF/RTP/ERR, more pages or blocks: go on (no retrain)
    PAGE_ACK_RETRAIN = enum.auto()  # RTP/RTN/PIP/PIN with something left to send: DCS again
    PAGE_ACK_DONE = enum.auto()     # the last page is confirmed: DCN
    PAGE_ACK_EOM = enum.auto()      # EOM confirmed: back to phase B (wait for DIS)
    PPR_RETRY = enum.auto()         # ECM: PPR, resend the missing frames
    PPR_CTC = enum.auto()           # ECM: PPR n times: change rate
    PPR_EOR = enum.auto()           # ECM: PPR n times, no lower rate: give up on the block
    CTR = enum.auto()
    RNR = enum.auto()
    NO_RESPONSE_RETRY = enum.auto() # T4 expired, tries are left: repeat the command
    CRP = enum.auto()               # the far end asks us to repeat our command
    PAGE_DATA_START = enum.auto()   # receiver: after RTP, page data without a new DCS
    PAGE_DATA_END = enum.auto()     # receiver: carrier down after page data or ECM block
    PMC_NEXT_PAGE = enum.auto()     # receiver: MPS (or PPS-NULL/MPS) answered MCF: next data
    PMC_RETRAIN = enum.auto()       # receiver: answered RTP/RTN: the sender retrains
    PMC_LAST = enum.auto()          # receiver: EOP answered: wait for DCN
    PMC_EOM = enum.auto()           # receiver: EOM answered: back to phase B
    PPR_SENT = enum.auto()          # receiver: answered PPR, ERR or CTR: frames again
    REPEAT_RESPONSE = enum.auto()   # receiver: the command again; our answer was lost
    END_OK = enum.auto()            # nothing left: DCN
    FAIL = enum.auto()              # any failure that still lets us say DCN
    DCN = enum.auto()               # far end DCN
    LINE_LOST = enum.auto()
    HUNG_UP = enum.auto()           # our DCN is sent
    GIVE_UP = enum.auto()           # nobody answered at all (T1): hang up without DCN


# Outcomes that repeat a command: they keep the count of tries (T.30 §5.4.3, config.retries)
RETRIES = frozenset({Input.NO_RESPONSE_RETRY, Input.CRP, Input.DIS_REPEAT})


class Timer(enum.Enum):
    """The response timer a state runs (T.30 §5.4.3.1), from the end of what we sent."""

    NONE = "none"
    T1 = "T1"                  # the call's T1: identify the far end (set once per phase B)
    T4_IN_T1 = "T4 within T1"  # DIS repeated every T4 until T1 (Figure 5-2b)
    T4 = "T4"                  # a command of ours awaits its response
    T4_TCF = "T4 + TCF"        # the DCS's TCF: T4 for it to start, its 1.5 s to end
    T2 = "T2"                  # we await a command
    T2_PAGE = "T2 + training"  # we await page data (its training first)


@dataclass(frozen=True, slots=True)
class Spec:
    """What a state is: its T.30 phase, its timer and the role it plays on the line."""

    phase: str
    timer: Timer = Timer.T2
    # we sent a command and wait for its response (T.30 §5.4.3; Appendix III lists them)
    commander: bool = False
    # what we send here is a command (T4 runs after it) rather than a response (T2)
    commands: bool = False
    # responses that answer an earlier command of ours, not the current one (stale here)
    stale: frozenset[FCF] = frozenset()
    gives_up: Reason = Reason.NO_RESPONSE   # the reason when tries or T4 run out here
    receiving_page: bool = False            # where's "during page N" (a receiver's page)
    live: bool = True                       # the call runs: input is taken
    ended: bool = False                     # the call is over (Session.done)


_C = dict(timer=Timer.T4, commander=True, commands=True)
# what answers the PPS that came before a CTC: stale once we are in SEND_CTC
_PPS_RESPONSES = frozenset({FCF.MCF, FCF.PPR, FCF.RNR, FCF.ERR, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN})

SPEC: dict[State, Spec] = {
    State.IDLE: Spec("A", Timer.NONE, live=False),
    State.SEND_DIS: Spec("B", Timer.T4_IN_T1, commands=True, gives_up=Reason.NO_DCS),
    State.WAIT_DIS: Spec("B", Timer.T1, gives_up=Reason.NO_DIS),
    State.SEND_DTC: Spec("B", **_C, gives_up=Reason.NO_DCS),
    State.SEND_DCS: Spec("B", **_C, gives_up=Reason.NO_RESPONSE_TO_DCS),
    State.RX_WAIT_DCS: Spec("B"),
    State.RX_TCF: Spec("B", Timer.T4_TCF),
    State.SEND_PAGE: Spec("C", **_C, gives_up=Reason.NO_RESPONSE_TO_PAGE),
    State.SEND_BLOCK: Spec("C", **_C, gives_up=Reason.NO_RESPONSE_TO_PAGE),
    State.RX_PAGE: Spec("C", Timer.T2_PAGE, receiving_page=True),
    State.RESEND_PMC: Spec("D", **_C, gives_up=Reason.NO_RESPONSE_TO_PAGE),
    State.RESEND_PPS: Spec("D", **_C, gives_up=Reason.NO_RESPONSE_TO_PAGE),
    State.SEND_CTC: Spec("D", **_C, stale=_PPS_RESPONSES, gives_up=Reason.ECM_FAILED),
    State.SEND_EOR: Spec("D", **_C, gives_up=Reason.ECM_FAILED),
    State.SEND_RR: Spec("D", **_C),
    State.RX_WAIT_PMC: Spec("D", receiving_page=True, gives_up=Reason.NO_POST_PAGE),
    State.RX_WAIT_DCN: Spec("D"),
    State.RX_AFTER_EOM: Spec("B"),
    State.SEND_DCN: Spec("E", Timer.NONE),
    State.DONE: Spec("E", Timer.NONE, live=False, ended=True),
}
PHASE = {s: spec.phase for s, spec in SPEC.items()}


@dataclass(frozen=True, slots=True)
class Move:
    """One table entry: the next state (an outcome) or the action (a heard input)."""

    to: State | None = None
    action: str | None = None


TABLE: dict[tuple[State, Input], Move] = {}


def _to(pairs: dict[tuple[State, Input], State]) -> None:
    for key, state in pairs.items():
        TABLE[key] = Move(to=state)


def _do(action: str, inp: Input, *states: State) -> None:
    for s in states:
        TABLE[(s, inp)] = Move(action=action)


S = State
LIVE = tuple(s for s in State if SPEC[s].live and s is not S.SEND_DCN)
COMMANDERS = tuple(s for s in State if SPEC[s].commander)
BLOCK_SENDERS = (S.SEND_BLOCK, S.RESEND_PPS, S.SEND_EOR, S.SEND_RR)
RX_IN_PAGE = (S.RX_PAGE, S.RX_WAIT_PMC)

# ------------------------------------------------------------------ outcomes: next states
_to({
    # Phase A -> B (T.30 §5.1, Figure 5-2a: calling "T", answering "R")
    (S.IDLE, Input.START_CALLING): S.WAIT_DIS,
    (S.IDLE, Input.START_ANSWERING): S.SEND_DIS,
    # calling station hears DIS (Figure 5-2a)
    (S.WAIT_DIS, Input.DIS_SEND): S.SEND_DCS,
    (S.WAIT_DIS, Input.DIS_POLL): S.SEND_DTC,
    (S.WAIT_DIS, Input.NO_RESPONSE_RETRY): S.WAIT_DIS,
    (S.WAIT_DIS, Input.GIVE_UP): S.DONE,           # T.30 §5.1: T1 expired, no DIS heard
    # answering station: its DIS was answered (Figure 5-2b)
    (S.SEND_DIS, Input.NO_RESPONSE_RETRY): S.SEND_DIS,
    (S.SEND_DIS, Input.CRP): S.SEND_DIS,
    (S.SEND_DIS, Input.DCS): S.RX_TCF,
    (S.SEND_DIS, Input.DTC_SEND): S.SEND_DCS,
    # polling station (T.30 §5.2, polling)
    (S.SEND_DTC, Input.DCS): S.RX_TCF,
    (S.SEND_DTC, Input.NO_RESPONSE_RETRY): S.SEND_DTC,
    (S.SEND_DTC, Input.DIS_REPEAT): S.SEND_DTC,
    # transmitter training (T.30 §5.3.6.1.3: CFR, FTT)
    (S.SEND_DCS, Input.CFR): S.SEND_PAGE,
    (S.SEND_DCS, Input.CFR_ECM): S.SEND_BLOCK,
    (S.SEND_DCS, Input.FTT_RETRY): S.SEND_DCS,
    (S.SEND_DCS, Input.NO_RESPONSE_RETRY): S.SEND_DCS,
    (S.SEND_DCS, Input.DIS_REPEAT): S.SEND_DCS,
    # receiver training
    (S.RX_TCF, Input.TCF_OK): S.RX_PAGE,
    (S.RX_TCF, Input.TCF_BAD): S.RX_WAIT_DCS,
    (S.RX_TCF, Input.DCS): S.RX_TCF,
    (S.RX_WAIT_DCS, Input.DCS): S.RX_TCF,
    (S.RX_WAIT_DCS, Input.REPEAT_RESPONSE): S.RX_WAIT_DCS,
    (S.RX_WAIT_DCS, Input.PMC_NEXT_PAGE): S.RX_PAGE,    # a repeated MPS after RTP/RTN
    (S.RX_WAIT_DCS, Input.PAGE_DATA_START): S.RX_PAGE,  # after RTP, a page without retraining
    (S.RX_WAIT_DCS, Input.PMC_RETRAIN): S.RX_WAIT_DCS,
    (S.RX_WAIT_DCS, Input.PMC_LAST): S.RX_WAIT_DCN,
    # non-ECM page and its post-page command (T.30 §5.3.6.1.4/5)
    (S.SEND_PAGE, Input.PAGE_ACK_NEXT): S.SEND_PAGE,
    (S.SEND_PAGE, Input.NO_RESPONSE_RETRY): S.RESEND_PMC,
    (S.RESEND_PMC, Input.PAGE_ACK_NEXT): S.SEND_PAGE,
    (S.RESEND_PMC, Input.NO_RESPONSE_RETRY): S.RESEND_PMC,
    # ECM (T.30 Annex A, Figure A.7)
    (S.SEND_BLOCK, Input.PAGE_ACK_NEXT): S.SEND_BLOCK,
    (S.SEND_BLOCK, Input.NO_RESPONSE_RETRY): S.RESEND_PPS,
    (S.RESEND_PPS, Input.PAGE_ACK_NEXT): S.SEND_BLOCK,
    (S.RESEND_PPS, Input.NO_RESPONSE_RETRY): S.RESEND_PPS,
    (S.SEND_CTC, Input.CTR): S.SEND_BLOCK,
    (S.SEND_CTC, Input.NO_RESPONSE_RETRY): S.SEND_CTC,
    (S.SEND_EOR, Input.PAGE_ACK_NEXT): S.SEND_BLOCK,
    (S.SEND_EOR, Input.NO_RESPONSE_RETRY): S.SEND_EOR,
    (S.SEND_RR, Input.PAGE_ACK_NEXT): S.SEND_BLOCK,
    (S.SEND_RR, Input.NO_RESPONSE_RETRY): S.SEND_RR,
    # receiver: page data and post-page commands
    (S.RX_PAGE, Input.PAGE_DATA_END): S.RX_WAIT_PMC,
    (S.RX_PAGE, Input.DCS): S.RX_TCF,                  # our CFR was lost: train again
    (S.RX_PAGE, Input.REPEAT_RESPONSE): S.RX_PAGE,     # our MCF/PPR was lost
    (S.RX_PAGE, Input.PMC_NEXT_PAGE): S.RX_PAGE,       # a command without data before it
    (S.RX_PAGE, Input.PMC_RETRAIN): S.RX_WAIT_DCS,
    (S.RX_PAGE, Input.PMC_LAST): S.RX_WAIT_DCN,
    (S.RX_PAGE, Input.PMC_EOM): S.RX_AFTER_EOM,
    (S.RX_PAGE, Input.PPR_SENT): S.RX_PAGE,
    (S.RX_WAIT_PMC, Input.PMC_NEXT_PAGE): S.RX_PAGE,
    (S.RX_WAIT_PMC, Input.PMC_RETRAIN): S.RX_WAIT_DCS,
    (S.RX_WAIT_PMC, Input.PMC_LAST): S.RX_WAIT_DCN,
    (S.RX_WAIT_PMC, Input.PMC_EOM): S.RX_AFTER_EOM,
    (S.RX_WAIT_PMC, Input.PPR_SENT): S.RX_PAGE,
    (S.RX_WAIT_PMC, Input.DCS): S.RX_TCF,
    (S.RX_WAIT_PMC, Input.REPEAT_RESPONSE): S.RX_WAIT_PMC,
    (S.RX_WAIT_PMC, Input.PAGE_DATA_END): S.RX_WAIT_PMC,
    # after EOM (T.30 §5.3.6.1.4): back to phase B; the sender may repeat EOM (our MCF
    # was lost) or go straight to DCS; if nothing comes we send DIS
    (S.RX_AFTER_EOM, Input.REPEAT_RESPONSE): S.RX_AFTER_EOM,
    (S.RX_AFTER_EOM, Input.PMC_EOM): S.RX_AFTER_EOM,
    (S.RX_AFTER_EOM, Input.DCS): S.RX_TCF,
    (S.RX_AFTER_EOM, Input.DTC_SEND): S.SEND_DCS,      # turnaround: now poll us
    (S.RX_AFTER_EOM, Input.NO_RESPONSE_RETRY): S.SEND_DIS,
    (S.RX_WAIT_DCN, Input.REPEAT_RESPONSE): S.RX_WAIT_DCN,
    (S.RX_WAIT_DCN, Input.DCS): S.RX_TCF,              # EOP was followed by more (RTN)
    (S.RX_WAIT_DCN, Input.PMC_LAST): S.RX_WAIT_DCN,
    (S.SEND_DCN, Input.HUNG_UP): S.DONE,
    (S.IDLE, Input.FAIL): S.DONE,
    (S.IDLE, Input.LINE_LOST): S.DONE,
})
for _s in (S.SEND_PAGE, S.RESEND_PMC) + BLOCK_SENDERS:
    # the far end took the page: retrain (RTP/RTN/PIP/PIN), DCN, or phase B after EOM
    _to({(_s, Input.PAGE_ACK_RETRAIN): S.SEND_DCS, (_s, Input.PAGE_ACK_DONE): S.SEND_DCN,
         (_s, Input.PAGE_ACK_EOM): S.WAIT_DIS})
for _s in BLOCK_SENDERS:
    if _s is not S.SEND_EOR:
        _to({(_s, Input.PPR_RETRY): S.SEND_BLOCK, (_s, Input.PPR_CTC): S.SEND_CTC,
             (_s, Input.PPR_EOR): S.SEND_EOR})
    _to({(_s, Input.RNR): S.SEND_RR})
for _s in State:       # the end of the call from every live state (T.30 §5.3.6.1.6 DCN; line loss)
    if _s not in (S.DONE, S.IDLE):
        _to({(_s, Input.DCN): S.DONE, (_s, Input.LINE_LOST): S.DONE})
        if _s is not S.SEND_DCN:
            _to({(_s, Input.FAIL): S.SEND_DCN, (_s, Input.END_OK): S.SEND_DCN})

# ------------------------------------------------------------------ heard inputs: actions
_do("dcn", Input.FR_DCN, *(s for s in LIVE if s is not S.RX_WAIT_DCN))
_do("dcn_after_eop", Input.FR_DCN, S.RX_WAIT_DCN)
_do("line_lost", Input.LINE_DOWN, *(s for s in LIVE if s is not S.RX_WAIT_DCN))
_do("line_dropped_after_eop", Input.LINE_DOWN, S.RX_WAIT_DCN)
# CRP (T.30 §5.3.6.1.7): a commander repeats its command, a responder its response
_do("repeat_command", Input.FR_CRP, *COMMANDERS)
_do("crp_to_dis", Input.FR_CRP, S.SEND_DIS)
_do("repeat_response", Input.FR_CRP, S.RX_WAIT_DCS, S.RX_WAIT_PMC, S.RX_WAIT_DCN, S.RX_PAGE)
# phase B (phase_b.py)
_do("dis", Input.FR_DIS, S.WAIT_DIS)
_do("dis_repeated", Input.FR_DIS, S.SEND_DCS, S.SEND_DTC)
_do("dis_from_caller", Input.FR_DIS, S.SEND_DIS)
_do("dtc", Input.FR_DTC, S.SEND_DIS, S.RX_AFTER_EOM)
_do("dcs", Input.FR_DCS, S.SEND_DIS, S.SEND_DTC, S.RX_TCF, S.RX_WAIT_DCS, S.RX_PAGE,
    S.RX_WAIT_PMC, S.RX_WAIT_DCN, S.RX_AFTER_EOM)
_do("training_answer", Input.FR_TRAINING, S.SEND_DCS)
# transmitter (transmitter.py)
_do("page_answer", Input.FR_PAGE_ANSWER, S.SEND_PAGE, S.RESEND_PMC)
_do("block_answer", Input.FR_PAGE_ANSWER, S.SEND_BLOCK, S.RESEND_PPS, S.SEND_RR)
_do("block_answer", Input.FR_ECM_ANSWER, S.SEND_BLOCK, S.RESEND_PPS, S.SEND_RR)
_do("eor_answer", Input.FR_PAGE_ANSWER, S.SEND_EOR)
_do("eor_answer", Input.FR_ECM_ANSWER, S.SEND_EOR)
_do("ctr", Input.FR_CTR, S.SEND_CTC)
_do("send_pmc_late", Input.TIMEOUT, S.SEND_PAGE)
# receiver (receiver.py): training, page data, post-page commands, ECM
_do("tcf_data", Input.DATA, S.RX_TCF)
_do("tcf_end", Input.HS_DOWN, S.RX_TCF)
_do("data_after_rtp", Input.DATA, S.RX_WAIT_DCS)
_do("page_data", Input.DATA, S.RX_PAGE)
_do("page_end", Input.HS_DOWN, S.RX_PAGE)
_do("ecm_frame", Input.ECM_FRAME, S.RX_PAGE)
_do("block_burst", Input.HS_UP, S.RX_PAGE)
_do("crp_on_noise", Input.NOISE_BURST, S.RX_WAIT_PMC, S.RX_WAIT_DCS, S.SEND_DIS)
_do("pmc", Input.FR_PMC, S.RX_WAIT_PMC)
_do("pmc_in_page", Input.FR_PMC, S.RX_PAGE)
_do("pmc_repeated", Input.FR_PMC, S.RX_WAIT_DCS, S.RX_WAIT_DCN, S.RX_AFTER_EOM)
_do("pmc_after_eom_dis", Input.FR_PMC, S.SEND_DIS)
_do("pps", Input.FR_PPS, *RX_IN_PAGE)
_do("pps_repeated", Input.FR_PPS, *(s for s in LIVE if s not in RX_IN_PAGE))
_do("eor", Input.FR_EOR, *RX_IN_PAGE)
_do("repeat_response", Input.FR_EOR, S.RX_WAIT_DCN)
_do("ctc", Input.FR_CTC, *RX_IN_PAGE)
_do("rr", Input.FR_RR, *RX_IN_PAGE)
_do("repeat_response", Input.FR_RR, *(s for s in LIVE if s not in RX_IN_PAGE))
# timers (SPEC[state].timer expired)
_do("no_dis", Input.TIMEOUT, S.WAIT_DIS)
_do("dis_timeout", Input.TIMEOUT, S.SEND_DIS)
_do("tcf_timeout", Input.TIMEOUT, S.RX_TCF)
_do("no_dcs", Input.TIMEOUT, S.RX_WAIT_DCS)
_do("no_pmc", Input.TIMEOUT, S.RX_WAIT_PMC)
_do("page_timeout", Input.TIMEOUT, S.RX_PAGE)
_do("after_eom_timeout", Input.TIMEOUT, S.RX_AFTER_EOM)
_do("no_dcn", Input.TIMEOUT, S.RX_WAIT_DCN)
_do("command_timeout", Input.TIMEOUT, *(s for s in COMMANDERS if s is not S.SEND_PAGE))
# the application
_do("abort_before_start", Input.ABORT, S.IDLE)
_do("abort", Input.ABORT, *LIVE)

# the commands of T.30 §5.3.6.1 (as opposed to responses): never "no answer" (see missing())
COMMANDS = frozenset({Input.FR_DIS, Input.FR_DTC, Input.FR_DCS, Input.FR_PMC, Input.FR_PPS,
                      Input.FR_EOR, Input.FR_CTC, Input.FR_RR})


def fire(state: State, inp: Input) -> State:
    """The state after the outcome ``inp`` in ``state``; LocalProtocolError if the
    table has no such move (the session fired an outcome its state cannot have)."""
    move = TABLE.get((state, inp))
    if move is None or move.to is None:
        raise LocalProtocolError(f"T.30: no transition from {state.name} on {inp.name}")
    return move.to


def allowed(state: State, inp: Input) -> bool:
    return (state, inp) in TABLE


def missing(state: State, inp: Input, final: bool, what: str) -> None:
    """The one rule for a heard input the table has no entry for (T.30 §5.4.3,
    Appendix III): RemoteProtocolError for a final frame that answers nothing our
    command allows, in a state that waits for that answer; otherwise nothing (ignored)."""
    if SPEC[state].commander and final and inp.name.startswith("FR_") and inp not in COMMANDS:
        raise RemoteProtocolError(f"{what} is no answer in {state.value}")
