"""The T.30 session state machine: its states, inputs and transition table.

Every transition of a T.30 session is in TRANSITIONS below (h11's "Rule 1"):
the session turns what it heard (or a timer) into an :class:`Input`, refined
where T.30's answer depends on data (e.g. MCF with more pages to send, or with
the last page done), and :func:`fire` gives the next state. A pair missing
from the table is not a legal move: the session treats the input as unexpected
(ignored, as T.30 §5.4 asks of an unrecognised command) rather than guessing.

States are named after places of the flow charts in T.30 §5.2 (Figures 5-2a..z)
and Annex A (Figure A.7): the calling and answering, sending and receiving
sides share one table. Each state's entry action (what is sent on entering
it) lives in the session, in ``Session._enter_<state>``.
"""
from __future__ import annotations

import enum

from ..errors import LocalProtocolError


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
    PAGE_DATA_START = enum.auto()   # receiver: CFR or MCF sent, now the page
    PAGE_DATA_END = enum.auto()     # receiver: carrier down after page data or ECM block
    PMC_NEXT_PAGE = enum.auto()     # receiver: MPS (or PPS-NULL/MPS) answered MCF: next data
    PMC_RETRAIN = enum.auto()       # receiver: answered RTP/RTN: the sender retrains
    PMC_LAST = enum.auto()          # receiver: EOP answered: wait for DCN
    PMC_EOM = enum.auto()           # receiver: EOM answered: back to phase B
    PPR_SENT = enum.auto()          # receiver: answered PPR or CTR: frames again
    REPEAT_RESPONSE = enum.auto()   # receiver: the command again; our answer was lost
    END_OK = enum.auto()            # transmitter: nothing left: DCN
    FAIL = enum.auto()              # any failure that still lets us say DCN
    DCN = enum.auto()               # far end DCN
    LINE_LOST = enum.auto()
    HUNG_UP = enum.auto()           # our DCN is sent
    GIVE_UP = enum.auto()           # nobody answered at all (T1): hang up without DCN


TRANSITIONS: dict[tuple[State, Input], State] = {
    # Phase A -> B (T.30 §5.1, Figure 5-2a: calling "T", answering "R")
    (State.IDLE, Input.START_CALLING): State.WAIT_DIS,
    (State.IDLE, Input.START_ANSWERING): State.SEND_DIS,
    # calling station hears DIS (Figure 5-2a)
    (State.WAIT_DIS, Input.DIS_SEND): State.SEND_DCS,
    (State.WAIT_DIS, Input.DIS_POLL): State.SEND_DTC,
    # answering station: its DIS was answered (Figure 5-2b)
    (State.SEND_DIS, Input.NO_RESPONSE_RETRY): State.SEND_DIS,
    (State.SEND_DIS, Input.CRP): State.SEND_DIS,
    (State.SEND_DIS, Input.DCS): State.RX_TCF,
    (State.SEND_DIS, Input.DTC_SEND): State.SEND_DCS,
    # polling station (T.30 §5.2, polling)
    (State.SEND_DTC, Input.DCS): State.RX_TCF,
    (State.SEND_DTC, Input.NO_RESPONSE_RETRY): State.SEND_DTC,
    (State.SEND_DTC, Input.DIS_REPEAT): State.SEND_DTC,
    (State.SEND_DTC, Input.CRP): State.SEND_DTC,
    # transmitter training (T.30 §5.3.6.1.3: CFR, FTT)
    (State.SEND_DCS, Input.CFR): State.SEND_PAGE,
    (State.SEND_DCS, Input.FTT_RETRY): State.SEND_DCS,
    (State.SEND_DCS, Input.NO_RESPONSE_RETRY): State.SEND_DCS,
    (State.SEND_DCS, Input.DIS_REPEAT): State.SEND_DCS,
    (State.SEND_DCS, Input.CRP): State.SEND_DCS,
    # receiver training
    (State.RX_TCF, Input.TCF_OK): State.RX_PAGE,
    (State.RX_TCF, Input.TCF_BAD): State.RX_WAIT_DCS,
    (State.RX_TCF, Input.DCS): State.RX_TCF,
    (State.RX_WAIT_DCS, Input.DCS): State.RX_TCF,
    (State.RX_WAIT_DCS, Input.REPEAT_RESPONSE): State.RX_WAIT_DCS,
    # non-ECM page and its post-page command (T.30 §5.3.6.1.4/5)
    (State.SEND_PAGE, Input.PAGE_ACK_NEXT): State.SEND_PAGE,
    (State.SEND_PAGE, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.SEND_PAGE, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.SEND_PAGE, Input.NO_RESPONSE_RETRY): State.RESEND_PMC,
    (State.SEND_PAGE, Input.CRP): State.RESEND_PMC,
    (State.RESEND_PMC, Input.PAGE_ACK_NEXT): State.SEND_PAGE,
    (State.RESEND_PMC, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.RESEND_PMC, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.RESEND_PMC, Input.NO_RESPONSE_RETRY): State.RESEND_PMC,
    (State.RESEND_PMC, Input.CRP): State.RESEND_PMC,
    # ECM (T.30 Annex A, Figure A.7)
    (State.SEND_DCS, Input.CFR_ECM): State.SEND_BLOCK,
    (State.SEND_BLOCK, Input.PAGE_ACK_NEXT): State.SEND_BLOCK,
    (State.SEND_BLOCK, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.SEND_BLOCK, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.SEND_BLOCK, Input.PPR_RETRY): State.SEND_BLOCK,
    (State.SEND_BLOCK, Input.PPR_CTC): State.SEND_CTC,
    (State.SEND_BLOCK, Input.PPR_EOR): State.SEND_EOR,
    (State.SEND_BLOCK, Input.RNR): State.SEND_RR,
    (State.SEND_BLOCK, Input.NO_RESPONSE_RETRY): State.RESEND_PPS,
    (State.SEND_BLOCK, Input.CRP): State.RESEND_PPS,
    (State.RESEND_PPS, Input.PAGE_ACK_NEXT): State.SEND_BLOCK,
    (State.RESEND_PPS, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.RESEND_PPS, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.RESEND_PPS, Input.PPR_RETRY): State.SEND_BLOCK,
    (State.RESEND_PPS, Input.PPR_CTC): State.SEND_CTC,
    (State.RESEND_PPS, Input.PPR_EOR): State.SEND_EOR,
    (State.RESEND_PPS, Input.RNR): State.SEND_RR,
    (State.RESEND_PPS, Input.NO_RESPONSE_RETRY): State.RESEND_PPS,
    (State.RESEND_PPS, Input.CRP): State.RESEND_PPS,
    (State.SEND_CTC, Input.CTR): State.SEND_BLOCK,
    (State.SEND_CTC, Input.NO_RESPONSE_RETRY): State.SEND_CTC,
    (State.SEND_CTC, Input.CRP): State.SEND_CTC,
    (State.SEND_EOR, Input.PAGE_ACK_NEXT): State.SEND_BLOCK,
    (State.SEND_EOR, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.SEND_EOR, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.SEND_EOR, Input.RNR): State.SEND_RR,
    (State.SEND_EOR, Input.NO_RESPONSE_RETRY): State.SEND_EOR,
    (State.SEND_EOR, Input.CRP): State.SEND_EOR,
    (State.SEND_RR, Input.RNR): State.SEND_RR,
    (State.SEND_RR, Input.PAGE_ACK_NEXT): State.SEND_BLOCK,
    (State.SEND_RR, Input.PAGE_ACK_RETRAIN): State.SEND_DCS,
    (State.SEND_RR, Input.PAGE_ACK_DONE): State.SEND_DCN,
    (State.SEND_RR, Input.PPR_RETRY): State.SEND_BLOCK,
    (State.SEND_RR, Input.PPR_CTC): State.SEND_CTC,
    (State.SEND_RR, Input.PPR_EOR): State.SEND_EOR,
    (State.SEND_RR, Input.NO_RESPONSE_RETRY): State.SEND_RR,
    (State.SEND_RR, Input.CRP): State.SEND_RR,
    # receiver: page data and post-page commands
    (State.RX_PAGE, Input.PAGE_DATA_END): State.RX_WAIT_PMC,
    (State.RX_PAGE, Input.DCS): State.RX_TCF,                  # our CFR was lost: train again
    (State.RX_PAGE, Input.REPEAT_RESPONSE): State.RX_PAGE,     # our MCF/PPR was lost
    (State.RX_PAGE, Input.PMC_NEXT_PAGE): State.RX_PAGE,       # a command without data before it
    (State.RX_PAGE, Input.PMC_RETRAIN): State.RX_WAIT_DCS,
    (State.RX_PAGE, Input.PMC_LAST): State.RX_WAIT_DCN,
    (State.RX_PAGE, Input.PMC_EOM): State.RX_AFTER_EOM,
    (State.RX_PAGE, Input.PPR_SENT): State.RX_PAGE,
    (State.RX_WAIT_PMC, Input.PMC_NEXT_PAGE): State.RX_PAGE,
    (State.RX_WAIT_PMC, Input.PMC_RETRAIN): State.RX_WAIT_DCS,
    (State.RX_WAIT_PMC, Input.PMC_LAST): State.RX_WAIT_DCN,
    (State.RX_WAIT_PMC, Input.PMC_EOM): State.RX_AFTER_EOM,
    # after EOM (T.30 §5.3.6.1.4): back to phase B; the sender may repeat EOM (our MCF
    # was lost) or go straight to DCS; if nothing comes we send DIS
    (State.RX_AFTER_EOM, Input.REPEAT_RESPONSE): State.RX_AFTER_EOM,
    (State.RX_AFTER_EOM, Input.PMC_EOM): State.RX_AFTER_EOM,
    (State.RX_AFTER_EOM, Input.DCS): State.RX_TCF,
    (State.RX_AFTER_EOM, Input.DTC_SEND): State.SEND_DCS,      # turnaround: now poll us
    (State.RX_AFTER_EOM, Input.NO_RESPONSE_RETRY): State.SEND_DIS,
    (State.RX_WAIT_PMC, Input.PPR_SENT): State.RX_PAGE,
    (State.RX_WAIT_PMC, Input.DCS): State.RX_TCF,
    (State.RX_WAIT_PMC, Input.REPEAT_RESPONSE): State.RX_WAIT_PMC,
    (State.RX_WAIT_PMC, Input.PAGE_DATA_END): State.RX_WAIT_PMC,
    (State.RX_WAIT_DCS, Input.PMC_NEXT_PAGE): State.RX_PAGE,   # a repeated MPS after RTP/RTN
    (State.RX_WAIT_DCS, Input.PAGE_DATA_START): State.RX_PAGE, # after RTP, a page without retraining
    (State.RX_WAIT_DCS, Input.PMC_RETRAIN): State.RX_WAIT_DCS,
    (State.RX_WAIT_DCS, Input.PMC_LAST): State.RX_WAIT_DCN,
    (State.RX_WAIT_DCN, Input.REPEAT_RESPONSE): State.RX_WAIT_DCN,
    (State.RX_WAIT_DCN, Input.DCS): State.RX_TCF,              # EOP was followed by more (RTN)
    (State.RX_WAIT_DCN, Input.PMC_LAST): State.RX_WAIT_DCN,
}
for _s in (State.SEND_PAGE, State.RESEND_PMC, State.SEND_BLOCK, State.RESEND_PPS,
           State.SEND_EOR, State.SEND_RR):
    TRANSITIONS[(_s, Input.PAGE_ACK_EOM)] = State.WAIT_DIS
TRANSITIONS[(State.WAIT_DIS, Input.NO_RESPONSE_RETRY)] = State.WAIT_DIS
# From every live state: the end of the call (T.30 §5.3.6.1.6 DCN; line loss)
for _s in State:
    if _s not in (State.DONE, State.IDLE):
        TRANSITIONS[(_s, Input.DCN)] = State.DONE
        TRANSITIONS[(_s, Input.LINE_LOST)] = State.DONE
        if _s is not State.SEND_DCN:
            TRANSITIONS[(_s, Input.FAIL)] = State.SEND_DCN
            TRANSITIONS[(_s, Input.END_OK)] = State.SEND_DCN
TRANSITIONS[(State.SEND_DCN, Input.HUNG_UP)] = State.DONE
TRANSITIONS[(State.WAIT_DIS, Input.GIVE_UP)] = State.DONE     # T.30 §5.1: T1 expired, no DIS heard
TRANSITIONS[(State.IDLE, Input.FAIL)] = State.DONE
TRANSITIONS[(State.IDLE, Input.LINE_LOST)] = State.DONE

PHASE = {
    State.IDLE: "A", State.SEND_DIS: "B", State.WAIT_DIS: "B", State.SEND_DTC: "B",
    State.SEND_DCS: "B", State.RX_WAIT_DCS: "B", State.RX_TCF: "B",
    State.SEND_PAGE: "C", State.SEND_BLOCK: "C", State.RX_PAGE: "C",
    State.RESEND_PMC: "D", State.RESEND_PPS: "D", State.SEND_CTC: "D", State.SEND_EOR: "D",
    State.SEND_RR: "D", State.RX_WAIT_PMC: "D", State.RX_WAIT_DCN: "D", State.RX_AFTER_EOM: "B",
    State.SEND_DCN: "E", State.DONE: "E",
}


def fire(state: State, inp: Input) -> State:
    """The state after ``inp`` in ``state``; LocalProtocolError if there is no such move."""
    try:
        return TRANSITIONS[(state, inp)]
    except KeyError:
        raise LocalProtocolError(f"T.30: no transition from {state.name} on {inp.name}") from None


def allowed(state: State, inp: Input) -> bool:
    return (state, inp) in TRANSITIONS
