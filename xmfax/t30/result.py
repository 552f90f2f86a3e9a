"""The outcome of a T.30 session: a status, one documented reason, statistics."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Reason(enum.Enum):
    """Why a call ended. value = (code, human text). OK is the only success."""

    OK = (0, "the call completed normally")
    NO_DIS = (1, "no DIS from the far end: not a fax machine, or it never answered (T1 expired)")
    NO_DCS = (2, "the far end never sent DCS (or DTC) after our DIS (T1 expired)")
    NO_RESPONSE_TO_DCS = (3, "no answer to DCS and training, after every retry")
    TRAINING_FAILED = (4, "the far end rejected training at every rate")
    NO_TCF = (5, "the far end sent DCS but no training (TCF) after it")
    NO_PAGE = (6, "no page data arrived after CFR (T2 expired)")
    NO_RESPONSE_TO_PAGE = (7, "no answer to the post-page command, after every retry")
    PAGE_REFUSED = (8, "a page was refused (RTN/PIN) on every retry")
    NO_POST_PAGE = (9, "the far end sent no post-page command after a page (T2 expired)")
    INCOMPATIBLE = (10, "the two ends have no common way to send this document")
    NOTHING_TO_POLL = (11, "we asked to poll but the far end has no document to send")
    NOTHING_TO_SEND = (12, "the far end asked to poll us but we have no document (or it cannot receive)")
    UNEXPECTED_DCN = (13, "the far end hung up (DCN) before the call was complete")
    LINE_LOST = (14, "the line was lost before the call was complete")
    PROTOCOL = (15, "the far end broke the T.30 protocol")
    ECM_FAILED = (16, "ECM: a block could not be delivered (EOR/ERR or no answer)")
    RNR_TIMEOUT = (17, "ECM: the far end stayed not ready longer than T5")
    NO_DCN = (18, "no DCN after the last page (all pages were delivered)")
    NO_RESPONSE = (19, "the far end stopped answering")
    ABORTED = (20, "the local side aborted the call")
    SCAN_LINE_TOO_LONG = (21, "a coded scan line took longer than 5 s (T.4 §3): the page was dropped")
    PASSWORD_REJECTED = (22, "polling refused: the caller's password (PWD) did not match")
    STORAGE = (23, "a received page could not be stored (disk full or write error): it was not confirmed")
    LIMIT = (24, "a limit was exceeded (pages per call or rows per page)")

    def __init__(self, code: int, text: str):
        self.code = code
        self.text = text


@dataclass(frozen=True, slots=True)
class PageStats:
    number: int
    rows: int
    bad_rows: int
    max_consecutive_bad_rows: int
    coding: str
    resolution: str
    width: int
    rate: int
    # What the page got. Sent pages: MCF / RTP (ERR: ECM block given up). Received pages:
    # MCF / RTP as answered; ERR: delivered with ECM frames missing (EOR); "damaged": an ECM
    # page whose frames all came but that did not decode whole (not confirmed, DCN);
    # with confirm_storage: "unconfirmed" while storage is awaited (and if the call ended
    # before it answered), "stored-failed" when page_stored reported an error or timed out.
    response: str
    ecm: bool = False
    ecm_retransmitted_frames: int = 0


@dataclass
class T30Result:
    """Filled in as the call goes; final once ``session.done``."""

    status: str = "in progress"                   # "success" | "failure" once done
    reason: Reason | None = None
    detail: str = ""                              # extra words about the reason (which page ...)
    pages_sent: list[PageStats] = field(default_factory=list)
    pages_received: list[PageStats] = field(default_factory=list)
    received_pages: list = field(default_factory=list)   # xmfax.page.Page, in order
    remote_id: str = ""                           # CSI/TSI/CIG received
    remote_nsf: bytes | None = None
    remote_subaddress: str = ""                   # SUB received (routing)
    remote_selective_polling: str = ""            # SEP received
    remote_dis: bytes | None = None
    dcs: bytes | None = None                      # the last DCS sent or received (FIF)
    modulation: str = ""                          # the last rate used for pages
    compression: str = ""
    resolution: str = ""
    ecm: bool = False
    ecm_frame_size: int = 0
    training_attempts: int = 0
    fallbacks: int = 0
    retransmitted_frames: int = 0
    started: float = 0.0
    ended: float | None = None

    def page_format(self, d) -> None:
        """A page went with DCS ``d`` (frames.DCS): the format the result reports."""
        self.modulation, self.compression, self.resolution = str(d.modulation), d.compression, d.resolution.label
        self.ecm, self.ecm_frame_size = d.ecm, (d.ecm_frame_size if d.ecm else 0)

    @property
    def duration(self) -> float:
        return (self.ended if self.ended is not None else self.started) - self.started

    @property
    def text(self) -> str:
        if self.reason is None:
            return "in progress"
        return self.reason.text + (f" ({self.detail})" if self.detail else "")

    @property
    def ok(self) -> bool:
        return self.status == "success"
