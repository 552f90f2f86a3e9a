"""T.30 session configuration: a dataclass with the defaults a user expects."""
from __future__ import annotations

from dataclasses import dataclass, field

from ..page import Resolution
from .frames import LENGTHS, WIDTHS, check_id
from .modem import Family, Modulation

# (the default fallback order; capabilities.py names it FALLBACK_ORDER too)
_FALLBACK = (
    Modulation.V17_14400, Modulation.V17_12000, Modulation.V17_9600, Modulation.V17_7200,
    Modulation.V29_9600, Modulation.V29_7200, Modulation.V27TER_4800, Modulation.V27TER_2400,
)


@dataclass(frozen=True, slots=True)
class Timers:
    """T.30 timers in seconds (T.30 §5.4.3.1 and Annex A).

    T1 35 s +-5: time to identify the far end at call set-up.
    T2 6 s +-1: time to wait for a command (receiver), and for a page's data.
    T3 10 s +-5: operator alert (not used by an automatic terminal).
    T4 3 s +-15 %: time to wait for a response to a command (automatic units).
    T5 60 s +-5: ECM flow control (RNR/RR) give-up time; we take the upper bound, 65 s
    (a sender polling a busy receiver should be patient; TSB-85 OTEN03 expects 23 RRs).
    storage 20 s (not a T.30 timer): with ``T30Config.confirm_storage``, how long the
    receiver waits for ``Session.page_stored`` before it gives up (DCN, Reason.STORAGE).
    A non-ECM sender repeats its post-page command 3 times T4 apart and then hangs up
    (about 12 s), so storage slower than that loses the call anyway; with ECM the
    sender is held with RNR (up to its T5).
    """

    t1: float = 35.0
    t2: float = 6.0
    t3: float = 10.0
    t4: float = 3.0
    t5: float = 65.0
    storage: float = 20.0


@dataclass(frozen=True, slots=True)
class CopyQuality:
    """Non-ECM copy-quality rule of the receiver (T.30 §5.3.6.1.5 MCF/RTP/RTN).

    A page is good (MCF) when at most ``good_bad_rows_pct`` % of its rows are bad
    and no more than ``good_max_consecutive`` bad rows are consecutive; it is
    acceptable (RTP: kept, but retrain) within the ``rtp_*`` limits; worse is RTN
    (rejected: the sender retrains and may send it again). A page that decoded no
    row at all is always RTN, and so is one where more than ``max_data_after_rtc``
    non-zero octets followed what decoded as RTC (a damaged row that looked like it)."""

    good_bad_rows_pct: float = 2.0
    good_max_consecutive: int = 5
    rtp_bad_rows_pct: float = 10.0
    rtp_max_consecutive: int = 20
    max_data_after_rtc: int = 64      # non-zero octets after RTC tolerated (else RTN)


@dataclass(frozen=True, slots=True)
class TCFCheck:
    """The receiver's rule for judging TCF (T.30's training check: 1.5 s of zeros).

    Accept when the longest run of zero octets lasts at least ``min_zero_ms``
    and at most ``max_nonzero`` non-zero octets occur inside the 1.5 s window
    (leading/trailing junk from the modem's start and end is ignored)."""

    min_zero_ms: int = 1000
    max_nonzero: int = 10


@dataclass(frozen=True, slots=True)
class T30Config:
    """Everything a T.30 session can be told. Defaults: a capable modern terminal."""

    local_id: str = ""                          # TSI/CSI/CIG (Table 3/T.30 characters, <= 20)
    ecm: bool = True
    ecm_frame_size: int = 256                   # 256 or 64 octets (T.30 Annex A)
    modems: frozenset = frozenset({Family.V27TER, Family.V29, Family.V17})
    max_rate: int = 14400
    compressions: frozenset = frozenset({"mh", "mr", "mmr"})
    resolutions: frozenset = frozenset({Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE,
                                        Resolution.R200, Resolution.R300, Resolution.R400,
                                        Resolution.ULTRAFINE})
    max_width: str = "a3"                       # a4 | b4 | a3
    max_length: str = "unlimited"               # a4 | b4 | unlimited
    min_scan_line_ms: int = 0                   # what we need as a receiver: 0, 5, 10, 20, 40
    nsf: bytes | None = None                    # NSF/NSC FIF (T.35 country + vendor + data)
    # identifiers of T.30's PWD/SID, SUB, SEP frames (Table 3/T.30 characters, <= 20), all optional:
    password: str = ""          # polling: sent as PWD with DTC; as a polled station: required in PWD
                                # sending: sent as SID with DCS (when the far end's DIS has bit 50)
    subaddress: str = ""        # sending: SUB with DCS (when the far end's DIS has bit 49)
    selective_polling: str = "" # polling: SEP with DTC (when the far end's DIS has bit 47)
    copy_quality: CopyQuality = field(default_factory=CopyQuality)
    tcf_check: TCFCheck = field(default_factory=TCFCheck)
    timers: Timers = field(default_factory=Timers)
    retries: int = 3                            # tries of a command without answer (T.30: 3, then DCN)
    page_retries: int = 3                       # sends of one page refused with RTN before giving up
    mr_k: int | None = None                     # MR K; None: 2 at standard, 4 above (T.4 §4.2)
    ppr_before_ctc: int = 4                     # PPRs for one block before CTC/EOR (T.30 §A.4)
    fallback_order: tuple = _FALLBACK           # rates to try, fastest first (capabilities.FALLBACK_ORDER*)
    step_down_after_rtn: bool = True            # retrain one rate lower after RTP/RTN (as spandsp, TSB-85)
    # Receiver limits (memory bounds). A page longer than max_receive_rows is never cut and
    # confirmed: the call ends with DCN, Reason.LIMIT (A3 at 15.4 lines/mm is ~6,500 rows).
    max_receive_rows: int = 20000
    max_page_octets: int = 16 * 1024 * 1024     # coded ECM page data kept at most
    max_pages: int = 1000                       # pages received in one call; past it DCN, Reason.LIMIT
    # Storage confirmation (receiver): when True a good page is announced (PageReceived) but
    # its MCF/RTP waits for Session.page_stored(number, now) (see docs/t30.md)
    confirm_storage: bool = False
    keep_received_pages: bool = True            # False: result.received_pages stays empty

    def __post_init__(self) -> None:
        check_id(self.local_id)
        check_id(self.password, "password")
        check_id(self.subaddress, "subaddress")
        check_id(self.selective_polling, "selective_polling")
        if self.ecm_frame_size not in (64, 256):
            raise ValueError(f"ecm_frame_size is 64 or 256, not {self.ecm_frame_size}")
        if self.max_width not in WIDTHS:
            raise ValueError(f"max_width is one of {WIDTHS}, not {self.max_width!r}")
        if self.max_length not in LENGTHS:
            raise ValueError(f"max_length is one of {LENGTHS}, not {self.max_length!r}")
        if self.min_scan_line_ms not in (0, 5, 10, 20, 40):
            raise ValueError(f"min_scan_line_ms is 0, 5, 10, 20 or 40, not {self.min_scan_line_ms}")
        bad = set(self.compressions) - {"mh", "mr", "mmr"}
        if bad or "mh" not in self.compressions:
            raise ValueError(f"compressions must include 'mh' and be among mh, mr, mmr: {sorted(self.compressions)}")
        if Family.V27TER not in self.modems:
            raise ValueError("V.27 ter is mandatory for every T.30 terminal (T.30 §5.3.6.2.1)")
        if Resolution.STANDARD not in self.resolutions:
            raise ValueError("standard resolution is mandatory (T.4 §2.2)")
        if not self.fallback_order or not all(isinstance(m, Modulation) and m is not Modulation.V21
                                                  for m in self.fallback_order):
            raise ValueError("fallback_order is a non-empty sequence of high-speed Modulations")
        if self.max_receive_rows < 1 or self.max_pages < 1 or self.max_page_octets < 1:
            raise ValueError("max_receive_rows, max_pages and max_page_octets are at least 1")
        if self.retries < 1 or self.page_retries < 1:
            raise ValueError("retries and page_retries are at least 1")
