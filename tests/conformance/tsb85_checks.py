"""What the TSB-85 runner checks beyond the frames: the pages and the reason.

* Pages, pixel for pixel. Every page the DUT sends (non-ECM page data, or the
  FCD frames of its ECM blocks) is decoded and compared with the source image
  the DUT was given; every page the DUT receives and confirms (MCF/RTP on the
  line) must be in ``result.received_pages`` equal to the image the tester sent
  (rows the tester damaged on purpose excepted).
* ECM frames against the page (T.30 Annex A): a block's FCD frames are numbered
  0..n-1 without gaps, every frame but the page's last one is full, the PPS gives
  n-1 and the page/block counters the tester expects (they move on only when the
  tester answered MCF), a frame sent again after PPR is the same octets.
* The reason: the TSB-85 end state of the STATUS step against the xmfax
  :class:`~xmfax.t30.result.Reason` the call ended with (``REASONS``).

Nothing here drives the DUT; the runner calls in with what it saw on the line.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# TSB-85's STATUS end states (the "call status" a tester reads at the end of a script)
# and the xmfax Reasons that say the same thing. "OK" is only Reason.OK. A failure code
# accepts the reasons a T.30 engine can truthfully give for that end; each row is the
# meaning of the code, not a list grown until the tests pass.
REASONS: dict[str, tuple[str, ...]] = {
    "OK": ("OK",),
    # receiver: the far end sent DCN while we waited for page data / a post-page command /
    # after our RTN / instead of any answer
    "RX_DCNDATA": ("UNEXPECTED_DCN",
                   "ECM_FAILED"),     # OREN05/07: the DCN follows a block the sender gave up (EOR)
    "RX_DCNPHD": ("UNEXPECTED_DCN",),
    "RX_DCNNORTN": ("UNEXPECTED_DCN", "PAGE_REFUSED"),
    "RX_DCNWHY": ("UNEXPECTED_DCN",),
    "RX_INVALCMD": ("PROTOCOL",),                     # an invalid command received
    "RX_INCAPABLE": ("INCOMPATIBLE",),                 # DCS asks for what our DIS did not offer
    # transmitter
    # no valid answer to the post-page command / to DCS+TCF, after the repeats; xmfax says
    # NO_RESPONSE when every answer was CRP (MTGX13-16): no valid answer either
    "TX_PHDDEAD": ("NO_RESPONSE_TO_PAGE", "NO_RESPONSE"),
    "TX_PHBDEAD": ("NO_RESPONSE_TO_DCS", "NO_RESPONSE"),
    "TX_INCAPABLE": ("NOTHING_TO_POLL", "INCOMPATIBLE", "NOTHING_TO_SEND"),
    "TX_T5EXP": ("RNR_TIMEOUT",),                      # RNR longer than T5
    "TX_BADDCS": ("PROTOCOL", "UNEXPECTED_DCN"),       # DCS answered by something invalid
    # the page was not confirmed: no answer, RTN to the end, or DCN instead (MTGX06)
    "TX_BADPG": ("NO_RESPONSE_TO_PAGE", "PAGE_REFUSED", "UNEXPECTED_DCN"),
    "TX_NODIS": ("NO_DIS",),                           # T1 expired without DIS
    "TX_INVALRSP": ("PROTOCOL",),                      # an invalid response received
    "CANNOT_TRAIN": ("TRAINING_FAILED",),              # FTT at every rate
    # a command repeated three times without answer, then DCN (T.30 §5.4.3.1); a receiving
    # DUT that stays silent names its own cause (MRGN03: the 5.1 s scan line it refused)
    "RETRYDCN": ("NO_RESPONSE", "NO_RESPONSE_TO_PAGE", "NO_RESPONSE_TO_DCS", "NO_POST_PAGE",
                 "ECM_FAILED", "NO_DCS", "SCAN_LINE_TOO_LONG"),
    # the call was dropped: the far end went away, or the DUT dropped it when T1 ran out
    # before any DIS came (MTGX02: DIS 40 s after the call)
    "CALLDROPPED": ("LINE_LOST", "UNEXPECTED_DCN", "NO_DIS"),
    "UNEXPECTED": ("PROTOCOL",),                       # a frame that has no place there
    "PWD_UNACCEPTABLE": ("PASSWORD_REJECTED", "PROTOCOL", "NOTHING_TO_POLL"),
}


def reason_agrees(expected: str, reason_name: str | None) -> bool | None:
    """True/False when the code is known, None for a code this table does not know."""
    names = REASONS.get(expected)
    if names is None:
        return None
    return reason_name in names


def compare_images(got: np.ndarray, want: np.ndarray, ignore_rows=()) -> str | None:
    """None when ``got`` equals ``want`` pixel for pixel (rows in ``ignore_rows``
    excepted), else where they first differ."""
    got = np.asarray(got, dtype=bool)
    want = np.asarray(want, dtype=bool)
    if got.shape != want.shape:
        return f"{got.shape[0]} rows x {got.shape[1] if got.ndim > 1 else 0} pixels, " \
               f"the source has {want.shape[0]} x {want.shape[1]}"
    diff = np.any(got != want, axis=1)
    if ignore_rows:
        keep = np.ones(len(diff), dtype=bool)
        idx = [r for r in ignore_rows if 0 <= r < len(diff)]
        keep[idx] = False
        diff &= keep
    bad = np.flatnonzero(diff)
    if len(bad) == 0:
        return None
    r = int(bad[0])
    return (f"{len(bad)} rows differ from the source, first row {r} "
            f"({int(np.count_nonzero(got[r]))} black pixels, the source has {int(np.count_nonzero(want[r]))})")


@dataclass
class PageTally:
    """Pages compared in one test (reported per test and in the summary)."""

    compared: int = 0
    equal: int = 0
    problems: list[str] = field(default_factory=list)

    def record(self, what: str, diff: str | None) -> None:
        self.compared += 1
        if diff is None:
            self.equal += 1
        else:
            self.problems.append(f"{what}: {diff}")


class EcmSendCheck:
    """The DUT's ECM pages as its frames show them (T.30 Annex A, §A.4)."""

    def __init__(self, frame_size_limit: int = 256):
        self.limit = frame_size_limit
        self.frames: dict[int, dict[int, bytes]] = {}    # block -> frame number -> payload
        self.pending: list[bytes] | None = None           # the FCD frames of the last burst
        self.last_pps: tuple[int, int, int, int] | None = None   # fcf2, page, block, count
        self.page = 0                                      # counters the tester expects
        self.block = 0
        self.given_up = False                              # a block of this page ended with EOR

    def burst(self, fcd_frames: list[bytes]) -> None:
        """One high-speed transmission of FCD frames (address, control, FCD, number, data)."""
        self.pending = list(fcd_frames)

    def pps(self, fif: bytes) -> list[str]:
        """The DUT's PPS after its burst: file the burst under its block; problems found."""
        from xmfax.t30 import frames as F
        problems: list[str] = []
        fcf2, page, block, count = F.decode_pps(fif)
        self.last_pps = (fcf2, page, block, count)
        if page != self.page % 256 or block != self.block % 256:
            problems.append(f"PPS names page {page} block {block}; after the MCFs so far the DUT is "
                            f"at page {self.page % 256} block {self.block % 256} (T.30 §A.4)")
        got = self.frames.setdefault(self.block, {})
        first = not got
        for fr in self.pending or []:
            n, data = fr[3], bytes(fr[4:])
            if n in got and got[n] != data:
                problems.append(f"frame {n} of block {self.block} sent again with other octets")
            got[n] = data
        if first:
            if sorted(got) != list(range(len(got))):
                problems.append(f"block {self.block}: frame numbers {sorted(got)[:8]}... are not 0..n-1")
            if len(got) != count:
                problems.append(f"block {self.block}: {len(got)} frames sent, PPS says {count}")
        self.pending = None
        return problems

    def eor(self, fcf2: int) -> None:
        """The DUT gave the current block up (EOR); the tester's ERR moves on."""
        self.pending = None
        self.given_up = True
        self.last_pps = (fcf2, self.page, self.block, 0)

    def confirmed(self) -> bool:
        """The tester answered MCF to the last PPS. True when that ended a page."""
        if self.last_pps is None:
            return False
        fcf2 = self.last_pps[0]
        self.last_pps = None
        if fcf2 == 0:            # PPS-NULL: the next block of the same page
            self.block += 1
            return False
        return True

    def page_data(self) -> tuple[bytes, list[str]]:
        """The page's coded data from its blocks, and how the framing looks."""
        problems = []
        parts = []
        sizes = []
        for b in sorted(self.frames):
            fr = self.frames[b]
            for n in range(max(fr) + 1 if fr else 0):
                if n not in fr:
                    problems.append(f"block {b} frame {n} never sent")
                    continue
                parts.append(fr[n])
                sizes.append(len(fr[n]))
        if len(sizes) > 1:
            size = sizes[0]
            if size not in (64, 256):
                problems.append(f"FCD frames of {size} octets (T.30 Annex A: 256 or 64)")
            short = [i for i, n in enumerate(sizes[:-1]) if n != size]
            if short:
                problems.append(f"frame {short[0]} of the page is {sizes[short[0]]} octets, "
                                f"not the full {size}: the page is not cut into equal frames")
            if sizes[-1] > size:
                problems.append(f"the page's last frame is {sizes[-1]} octets, longer than the others")
        elif sizes and sizes[0] > 256:
            problems.append(f"an FCD frame of {sizes[0]} octets (T.30 Annex A: at most 256)")
        return b"".join(parts), problems

    def next_page(self) -> None:
        self.frames = {}
        self.given_up = False
        self.page += 1
        self.block = 0
