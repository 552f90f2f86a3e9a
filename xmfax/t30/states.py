"""The T.30 session's state machine: its states, what each state is (``SPEC``), and
the table that dispatches every input (``TABLE``; h2's ``(state, input) -> (action,
next)``, h11's "every transition in one file"). How to read it: docs/t30.md.

A *heard* input (``FR_*`` frames, ``DATA``, ``TIMEOUT`` ...) names an action, a
``Session._do_<action>`` method that looks at the data and fires an *outcome* input;
an outcome names the next state, whose entry action (``Session._enter_<state>``)
runs and whose timer (``SPEC[state].timer``) is armed. A heard input missing from
the table follows one rule, :func:`missing` (T.30 §5.4.3, Appendix III): while we
wait for the answer to our command, a final frame that is neither an answer the
state takes nor a command ends the call (RemoteProtocolError, Reason.PROTOCOL;
TSB-85 MTGX20); anything else is ignored (T.30 §5.4: the far end's T4 repeat
recovers). An outcome with no move is our own mistake: :func:`fire` raises
LocalProtocolError. States are named after places of the flow charts in T.30 §5.2
(Figure 5-2) and Annex A (Figure A.7); calling and answering, sending and receiving
sides share one table.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError
from .fcf import FCF
from .result import Reason


class State(enum.Enum):
    __hash__ = object.__hash__      # members are singletons: identity hashing (C speed) in the table
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
    """What a state reacts to. A *heard* input (classified from the event alone) names an
    action in the table; an *outcome* (fired by an action) names the next state."""

    __hash__ = object.__hash__

    # heard, V.21 frames by kind (session._HEARD): FR_TRAINING is CFR/FTT, FR_PAGE_ANSWER
    # MCF RTP RTN PIP PIN, FR_ECM_ANSWER PPR RNR ERR, FR_PMC MPS EOP EOM (and PRI-Q),
    # FR_OTHER FNV or FCD/RCP at V.21
    (FR_DIS, FR_DTC, FR_DCS, FR_TRAINING, FR_PAGE_ANSWER, FR_ECM_ANSWER, FR_CTR, FR_PMC, FR_PPS,
     FR_EOR, FR_CTC, FR_RR, FR_CRP, FR_DCN, FR_OTHER) = range(1, 16)
    # heard, other events: an FCD/RCP frame at the high-speed rate; high-speed data (TCF or
    # a non-ECM page); a high-speed carrier begins / ends; a V.21 burst held only damaged
    # frames; the transport lost the line; the state's timer expired; Session.abort()
    ECM_FRAME, DATA, HS_UP, HS_DOWN, NOISE_BURST, LINE_DOWN, TIMEOUT, ABORT = range(16, 24)
    # outcomes, phase A/B: start; DIS heard (we send / we poll / it repeats: our command was
    # lost); DTC heard (we send); a valid DCS; TCF judged; CFR (non-ECM, ECM); FTT with a
    # lower rate left
    (START_CALLING, START_ANSWERING, DIS_SEND, DIS_POLL, DIS_REPEAT, DTC_SEND, DCS, TCF_OK,
     TCF_BAD, CFR, CFR_ECM, FTT_RETRY) = range(24, 36)
    # outcomes, the sender: the page (or block) taken, go on / retrain (RTP RTN PIP PIN) / it
    # was the last / EOM (phase B again); PPR: resend / CTC / EOR; CTR; RNR; T4 expired with
    # tries left; CRP
    (PAGE_ACK_NEXT, PAGE_ACK_RETRAIN, PAGE_ACK_DONE, PAGE_ACK_EOM, PPR_RETRY, PPR_CTC, PPR_EOR,
     CTR, RNR, NO_RESPONSE_RETRY, CRP) = range(36, 47)
    # outcomes, the receiver: page data after RTP without a DCS; the page's carrier ended; the
    # post-page command answered (MCF to MPS / RTP or RTN / EOP / EOM); PPR, ERR or CTR
    # answered; our last answer repeated
    (PAGE_DATA_START, PAGE_DATA_END, PMC_NEXT_PAGE, PMC_RETRAIN, PMC_LAST, PMC_EOM, PPR_SENT,
     REPEAT_RESPONSE) = range(47, 55)
    # outcomes, the end: nothing left (DCN); a failure (DCN); the far end's DCN; the line
    # lost; our DCN sent; T1 with nothing heard (hang up without DCN)
    END_OK, FAIL, DCN, LINE_LOST, HUNG_UP, GIVE_UP = range(55, 61)


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
    commander: bool = False                 # our command awaits its answer (T.30 §5.4.3, Appendix III)
    stale: frozenset[FCF] = frozenset()     # answers to an earlier command of ours, late here
    gives_up: Reason = Reason.NO_RESPONSE   # a commander: the reason when its tries run out
    receiving_page: bool = False            # where's "during page N" (a receiver's page)
    live: bool = True                       # the call runs: input is taken
    ended: bool = False                     # the call is over (Session.done)


_C = dict(timer=Timer.T4, commander=True)
# what answers the PPS that came before a CTC: stale once we are in SEND_CTC
_PPS_RESPONSES = frozenset({FCF.MCF, FCF.PPR, FCF.RNR, FCF.ERR, FCF.RTP, FCF.RTN, FCF.PIP, FCF.PIN})

SPEC: dict[State, Spec] = {
    State.IDLE: Spec("A", Timer.NONE, live=False),
    State.SEND_DIS: Spec("B", Timer.T4_IN_T1),
    State.WAIT_DIS: Spec("B", Timer.T1),
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
    State.RX_WAIT_PMC: Spec("D", receiving_page=True),
    State.RX_WAIT_DCN: Spec("D"),
    State.RX_AFTER_EOM: Spec("B"),
    State.SEND_DCN: Spec("E", Timer.NONE),
    State.DONE: Spec("E", Timer.NONE, live=False, ended=True),
}


@dataclass(frozen=True, slots=True)
class Move:
    """One table entry: the next state (an outcome) or the action (a heard input)."""

    to: State | None = None
    action: str | None = None


S, I = State, Input
_ACK = {I.PAGE_ACK_RETRAIN: S.SEND_DCS, I.PAGE_ACK_DONE: S.SEND_DCN, I.PAGE_ACK_EOM: S.WAIT_DIS}
_PPR = {I.PPR_RETRY: S.SEND_BLOCK, I.PPR_CTC: S.SEND_CTC, I.PPR_EOR: S.SEND_EOR, I.RNR: S.SEND_RR}
_BLOCK = {I.FR_PAGE_ANSWER: "block_answer", I.FR_ECM_ANSWER: "block_answer", **_ACK, **_PPR}
_CMD = {I.FR_CRP: "repeat_command", I.TIMEOUT: "command_timeout"}   # T.30 §5.4.3.1, §5.3.6.1.7
_RX = {I.FR_CRP: "repeat_response", I.FR_DCS: "dcs", I.DCS: S.RX_TCF}
# in a page: ECM commands (T.30 §A.4), and the post-page command answered (§5.3.6.1.4)
_IN_PAGE = {I.FR_PPS: "pps", I.FR_EOR: "eor", I.FR_CTC: "ctc", I.FR_RR: "rr", I.PPR_SENT: S.RX_PAGE,
            I.PMC_NEXT_PAGE: S.RX_PAGE, I.PMC_RETRAIN: S.RX_WAIT_DCS, I.PMC_LAST: S.RX_WAIT_DCN,
            I.PMC_EOM: S.RX_AFTER_EOM}

# One row per state: {input: next state (an outcome) or "action" (a heard input)}.
# Read a row as "in this state, on this input, do that". Rows are completed below
# with what every state shares (DCN, line loss, failure, abort, PPS and RR repeats).
ROWS: dict[State, dict[Input, State | str]] = {
    # Phase A (T.30 §5.1)
    S.IDLE: {I.START_CALLING: S.WAIT_DIS, I.START_ANSWERING: S.SEND_DIS, I.ABORT: "abort_before_start",
             I.FAIL: S.DONE, I.LINE_LOST: S.DONE},
    # Phase B, calling station (Figure 5-2a): CNG, wait T1 for DIS
    S.WAIT_DIS: {I.FR_DIS: "dis", I.TIMEOUT: "no_dis",
                 I.DIS_SEND: S.SEND_DCS, I.DIS_POLL: S.SEND_DTC, I.GIVE_UP: S.DONE},
    # Phase B, answering station (Figure 5-2b): [NSF] CSI DIS every T4 within T1
    S.SEND_DIS: {I.FR_DCS: "dcs", I.FR_DTC: "dtc", I.FR_DIS: "dis_from_caller", I.FR_CRP: "crp_to_dis",
                 I.FR_PMC: "pmc_after_eom_dis", I.NOISE_BURST: "crp_on_noise", I.TIMEOUT: "dis_timeout",
                 I.DCS: S.RX_TCF, I.DTC_SEND: S.SEND_DCS, I.NO_RESPONSE_RETRY: S.SEND_DIS, I.CRP: S.SEND_DIS},
    # polling station (T.30 §5.2): [NSC] CIG DTC, wait for DCS
    S.SEND_DTC: {**_CMD, I.FR_DCS: "dcs", I.FR_DIS: "dis_repeated",
                 I.DCS: S.RX_TCF, I.NO_RESPONSE_RETRY: S.SEND_DTC, I.DIS_REPEAT: S.SEND_DTC},
    # transmitter training (T.30 §5.3.6.1.3): DCS + TCF, wait for CFR / FTT
    S.SEND_DCS: {**_CMD, I.FR_TRAINING: "training_answer", I.FR_DIS: "dis_repeated",
                 I.CFR: S.SEND_PAGE, I.CFR_ECM: S.SEND_BLOCK, I.FTT_RETRY: S.SEND_DCS,
                 I.NO_RESPONSE_RETRY: S.SEND_DCS, I.DIS_REPEAT: S.SEND_DCS},
    # receiver training: TCF, then CFR (page) or FTT (wait for DCS again)
    S.RX_TCF: {I.FR_DCS: "dcs", I.DATA: "tcf_data", I.HS_DOWN: "tcf_end", I.TIMEOUT: "tcf_timeout",
               I.TCF_OK: S.RX_PAGE, I.TCF_BAD: S.RX_WAIT_DCS, I.DCS: S.RX_TCF},
    S.RX_WAIT_DCS: {**_RX, I.FR_PMC: "pmc_repeated", I.DATA: "data_after_rtp",
                    I.NOISE_BURST: "crp_on_noise", I.TIMEOUT: "no_dcs",
                    I.REPEAT_RESPONSE: S.RX_WAIT_DCS, I.PAGE_DATA_START: S.RX_PAGE},
    # non-ECM page, then MPS/EOP/EOM and its answer (T.30 §5.3.6.1.4/5)
    S.SEND_PAGE: {**_CMD, I.FR_PAGE_ANSWER: "page_answer", I.TIMEOUT: "send_pmc_late", **_ACK,
                  I.PAGE_ACK_NEXT: S.SEND_PAGE, I.NO_RESPONSE_RETRY: S.RESEND_PMC},
    S.RESEND_PMC: {**_CMD, I.FR_PAGE_ANSWER: "page_answer", **_ACK,
                   I.PAGE_ACK_NEXT: S.SEND_PAGE, I.NO_RESPONSE_RETRY: S.RESEND_PMC},
    # ECM (T.30 Annex A, Figure A.7): FCD frames, RCP, PPS; MCF / PPR / RNR; CTC, EOR, RR
    S.SEND_BLOCK: {**_CMD, **_BLOCK, I.PAGE_ACK_NEXT: S.SEND_BLOCK, I.NO_RESPONSE_RETRY: S.RESEND_PPS},
    S.RESEND_PPS: {**_CMD, **_BLOCK, I.PAGE_ACK_NEXT: S.SEND_BLOCK, I.NO_RESPONSE_RETRY: S.RESEND_PPS},
    S.SEND_CTC: {**_CMD, I.FR_CTR: "ctr", I.CTR: S.SEND_BLOCK, I.NO_RESPONSE_RETRY: S.SEND_CTC},
    S.SEND_EOR: {**_CMD, I.FR_PAGE_ANSWER: "eor_answer", I.FR_ECM_ANSWER: "eor_answer", **_ACK,
                 I.RNR: S.SEND_RR, I.PAGE_ACK_NEXT: S.SEND_BLOCK, I.NO_RESPONSE_RETRY: S.SEND_EOR},
    S.SEND_RR: {**_CMD, **_BLOCK, I.PAGE_ACK_NEXT: S.SEND_BLOCK, I.NO_RESPONSE_RETRY: S.SEND_RR},
    # receiver: page data (non-ECM) or ECM frames, then the post-page command
    S.RX_PAGE: {**_RX, **_IN_PAGE, I.DATA: "page_data", I.HS_DOWN: "page_end", I.HS_UP: "block_burst",
                I.ECM_FRAME: "ecm_frame", I.FR_PMC: "pmc_in_page", I.TIMEOUT: "page_timeout",
                I.PAGE_DATA_END: S.RX_WAIT_PMC, I.REPEAT_RESPONSE: S.RX_PAGE},
    S.RX_WAIT_PMC: {**_RX, **_IN_PAGE, I.FR_PMC: "pmc", I.NOISE_BURST: "crp_on_noise",
                    I.TIMEOUT: "no_pmc", I.REPEAT_RESPONSE: S.RX_WAIT_PMC},
    S.RX_WAIT_DCN: {**_RX, I.FR_PMC: "pmc_repeated", I.FR_EOR: "repeat_response", I.TIMEOUT: "no_dcn",
                    I.FR_DCN: "dcn_after_eop", I.LINE_DOWN: "line_dropped_after_eop",
                    I.REPEAT_RESPONSE: S.RX_WAIT_DCN},
    # after EOM (T.30 §5.3.6.1.4): phase B again; a repeated EOM, DCS, DTC, or (T2) our DIS
    S.RX_AFTER_EOM: {I.FR_DCS: "dcs", I.FR_DTC: "dtc", I.FR_PMC: "pmc_repeated",
                     I.TIMEOUT: "after_eom_timeout", I.REPEAT_RESPONSE: S.RX_AFTER_EOM,
                     I.DCS: S.RX_TCF, I.DTC_SEND: S.SEND_DCS, I.NO_RESPONSE_RETRY: S.SEND_DIS},
    # Phase E (T.30 §5.3.6.1.6): DCN, hang up
    S.SEND_DCN: {I.HUNG_UP: S.DONE},
    S.DONE: {},
}
LIVE = tuple(s for s in State if SPEC[s].live and s is not S.SEND_DCN)
for _s in LIVE:        # what every live state shares
    ROWS[_s] = {I.FR_DCN: "dcn", I.LINE_DOWN: "line_lost", I.ABORT: "abort", I.FR_RR: "repeat_response",
                I.FR_PPS: "pps_repeated", **ROWS[_s]}
for _s in State:       # the end of the call (T.30 §5.3.6.1.6 DCN; line loss; our own failure)
    if _s not in (S.DONE, S.IDLE):
        ROWS[_s].update({I.DCN: S.DONE, I.LINE_LOST: S.DONE})
        if _s is not S.SEND_DCN:
            ROWS[_s].update({I.FAIL: S.SEND_DCN, I.END_OK: S.SEND_DCN})
TABLE: dict[tuple[State, Input], Move] = {
    (s, i): Move(action=v) if isinstance(v, str) else Move(to=v) for s, row in ROWS.items() for i, v in row.items()}

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
