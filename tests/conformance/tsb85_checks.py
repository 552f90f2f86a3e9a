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

import tsb85_line as line
from tsb85_line import to_wire
from tsb85_script import ScriptError, Step, hex_value

from xmfax.t30 import modem as M

class TestFailed(Exception):
    """A check of the script failed (the DUT did something else)."""


class RunnerError(Exception):
    """The DUT broke the simulation (exception, livelock, time budget)."""


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


def content_summary(results) -> list[str]:
    """The page and reason lines of the report (docs/conformance.md quotes them)."""
    cmp_ = sum(r.pages_compared for r in results)
    eq = sum(r.pages_equal for r in results)
    with_pages = sum(1 for r in results if r.pages_compared)
    judged = [r for r in results if r.reason_agrees is not None]
    agree = sum(1 for r in judged if r.reason_agrees)
    coded = [r for r in judged if r.status_expected != "OK"]
    coded_ok = sum(1 for r in coded if r.reason_agrees)
    return [
        f"pages compared pixel for pixel with their source: {eq} of {cmp_} equal "
        f"(in {with_pages} tests)",
        f"STATUS reasons agreeing with the script: {agree} of {len(judged)} judged "
        f"({coded_ok} of {len(coded)} failure codes)",
    ]


class ContentChecks:
    """The runner's Tester methods that check pages and ECM framing (a mixin: the
    state they use is set up in ``Tester.__init__``)."""

    def _next_pps(self, s: Step) -> tuple[int, int] | None:
        """(page, block) of the first PPS the tester sends after step ``s``."""
        seen = False
        for st in self.test.steps():
            if st is s:
                seen = True
            elif seen and st.dir == "T" and st.type == "HDLC" and st.tag.startswith(("PPS", "EOR")):
                raw = to_wire(hex_value(st.value)[0])
                if raw[2] & 0xFE != 0xBE or len(raw) < 7:
                    return None                       # EOR carries no counters
                return max(raw[4], self.tester_page), raw[5]     # (as do_HDLC_T corrects it)
            elif seen and st.type == "PP":
                return None
        return None

    def _pp_page(self, s: Step, codec: str, block: int):
        """(block, coded page) for the tester's PP step ``s``: the block the PPS after it
        names, the page coded once by its first PP step."""
        named = self._next_pps(s)
        page_no = None
        if named is not None:
            page_no, pps_block = named
            if pps_block != block:
                # OREN01 sends a page's second block with a PP step that names no block:
                # the PPS after it says which block it is (T.30 §A.4)
                self._note(f"{s.describe()}: block {pps_block} as the PPS after it says (step says {block})")
                block = pps_block
        key = (page_no, s.value, codec)
        if page_no is not None and key in self.tester_ecm_pages:
            # the page's coding is fixed by its first PP step (OREN01 gives min_bits only there)
            image = self.tester_ecm_pages[key]
        else:
            image = line.ecm_image(s.value, 0, codec, s.int_attr("min_bits", 0))
            self.tester_ecm_pages[key] = image
        return block, image

    def _tester_frame(self, frame: bytes) -> None:
        """A good frame the tester sends: its answers move the DUT's page/block on."""
        f = frame[2] & 0xFE
        if f in (0xBE, 0xCE):                              # PPS / EOR: is this the page's last block?
            self.tester_pps_null = len(frame) < 4 or frame[3] & 0xFE == 0
        if f in (0x8C, 0xCC, 0x1C):                        # MCF, RTP, ERR
            if self.dut_ecm_pps:
                self.dut_ecm_pps = False
                if self.ecm_tx.confirmed():
                    self._check_ecm_page(given_up=self.ecm_tx.given_up)
            elif self.dut_page_open:
                self.dut_page_open = False
                self.dut_next += 1
                self.dut_may_skip = False
        elif f == 0x4C and self.dut_page_open:             # RTN: resend or go on (T.30 §5.3.6.1.5)
            self.dut_page_open = False
            self.dut_may_skip = True

    def _dut_frame(self, frame: bytes) -> None:
        """A frame the DUT sent: its answer to the tester's page, or its own PPS/EOR."""
        f = frame[2] & 0xFE
        if f == 0xBE and len(frame) >= 7:                   # the DUT's PPS after its burst
            problems = self.ecm_tx.pps(frame[3:])
            if problems:
                raise TestFailed(f"ECM frames of the DUT's page {self.dut_next + 1}: " + "; ".join(problems))
            self.dut_ecm_pps = True
        elif f == 0xCE and len(frame) >= 4:                 # EOR: the DUT gives the block up
            self.ecm_tx.eor(frame[3] & 0xFE)
            self.dut_ecm_pps = True
        elif f in (0x8C, 0xCC) and self.rx_pending is not None:   # MCF / RTP
            if not (self.rx_pending[3] and self.tester_pps_null):
                self.rx_expected.append(self.rx_pending)
                if self.rx_pending[3]:
                    self.tester_page += 1
                    self.pp_new = False
                self.rx_pending = None
        elif f in (0x4C, 0x1C) and self.rx_pending is not None:   # RTN; ERR (block given up)
            if f == 0x4C or not self.tester_pps_null:
                self.rx_pending = None
            else:
                self.rx_pending = self.rx_pending[:3] + ("hole",)

    def _source(self, what: str):
        if self.dut_next >= len(self.dut_source):
            raise TestFailed(f"{what}: the DUT sent page {self.dut_next + 1}, it was given {len(self.dut_source)}")
        return self.dut_source[self.dut_next]

    def _compare_sent(self, what: str, image) -> None:
        """A page the DUT sent against the page it was given (after RTN: that one or the next)."""
        diff = compare_images(image, self._source(what).image)
        if diff is not None and self.dut_may_skip and self.dut_next + 1 < len(self.dut_source):
            if compare_images(image, self.dut_source[self.dut_next + 1].image) is None:
                self.dut_next += 1
                diff = None
        self.tally.record(f"DUT page {self.dut_next + 1} sent", diff)
        self.dut_page_open = True
        if diff is not None:
            raise TestFailed(f"{what}: the page the DUT sent is not its page {self.dut_next + 1}: {diff}")

    def _check_ecm_page(self, given_up: bool) -> None:
        data, problems = self.ecm_tx.page_data()
        what = f"DUT's ECM page {self.dut_next + 1}"
        self.ecm_tx.next_page()
        if given_up:
            self._note(f"{what} had a block given up (EOR/ERR): not compared")
            self.dut_next += 1
            return
        if problems:
            raise TestFailed(f"{what}: " + "; ".join(problems))
        from xmfax import codecs
        res = codecs.decode(data, width=1728, codec=self.dut_dcs.codec, bit_order="lsb")
        self._trace(f"   {what}: {len(data)} octets, {res.rows} rows, {res.bad_rows} bad, end {res.end}")
        diff = compare_images(res.image, self._source(what).image)
        if diff is None and (res.bad_rows or res.end not in ("rtc", "eofb")):
            diff = f"{res.bad_rows} bad rows, coded data ends with {res.end}, not RTC/EOFB"
        self.tally.record(what, diff)
        if diff is not None:
            raise TestFailed(f"{what} (its FCD frames put together) is not the page it was given: {diff}")
        self.dut_next += 1

    def check_received(self) -> None:
        """The pages the DUT confirmed on the line are what it delivers, pixel for pixel."""
        res = getattr(self.session, "result", None)
        if res is None or not self.rx_expected:
            return
        stats = list(getattr(res, "pages_received", []))
        pages = list(getattr(res, "received_pages", []))
        got = [p for p, st in zip(pages, stats) if st.response in ("MCF", "RTP")]
        want = [e for e in self.rx_expected if e[3] != "hole"]
        if len(got) != len(want):
            raise TestFailed(f"the DUT confirmed {len(want)} whole pages on the line and delivers {len(got)}")
        for i, (page, (name, image, bad, _)) in enumerate(zip(got, want)):
            diff = compare_images(page.image, image, ignore_rows=bad)
            self.tally.record(f"page {i + 1} received ({name})", diff)
            if diff is not None:
                raise TestFailed(f"page {i + 1} the DUT received and confirmed is not the {name} the "
                                 f"tester sent{' (damaged rows excepted)' if bad else ''}: {diff}")

    def do_STATUS_X(self, s: Step) -> None:
        expected = (s.value or "").strip()
        sess = self.session
        if sess is None:
            raise TestFailed("no DUT at STATUS")
        self.status_expected = expected
        self.pump_to(self.now)
        if not getattr(sess, "done", False):
            last = bool(self.test.items) and self.test.items[-1] is s
            if expected == "OK" and last and not self.hung_up and \
                    str(getattr(getattr(sess, "result", None), "status", "")) == "in progress":
                # The script ends here with the call still up (MTGX01 stops after the DUT's
                # TCF): STATUS is the call's state now, not after timers the script never
                # meant to run out. The tester then leaves the line.
                self._note("STATUS OK judged with the DUT still in the call (no failure so far); "
                           "the tester then drops the line")
                self.status_reason, self.status_agrees = "OK", True
                self.feed(M.LineLost("the script ended"))
                self.queue.clear()
                return
            # a failure the script expects comes with the DUT's own timers: let them run
            self.pump_to(self.now + 60.0)
        if not getattr(sess, "done", False):
            raise TestFailed(f"STATUS {expected}: DUT call not finished")
        res = getattr(sess, "result", None)
        status = str(getattr(res, "status", "?"))
        reason = getattr(res, "reason", None)
        name = getattr(reason, "name", str(reason))
        text = f"{status}" + (f" ({name})" if reason is not None else "")
        self._trace(f"DUT result: {text}")
        self.status_reason = name
        self.status_agrees = reason_agrees(expected, name)
        ok = status.lower() in ("success", "ok")
        if expected == "OK" and not ok:
            raise TestFailed(f"STATUS: expected OK, DUT ended with {text}")
        if expected != "OK" and ok:
            raise TestFailed(f"STATUS: expected a failure ({expected}), DUT reported success")
        if self.status_agrees is None:
            raise ScriptError(f"STATUS {expected}: a code tsb85_checks.REASONS does not know")
        if not self.status_agrees:
            raise TestFailed(f"STATUS {expected}: DUT ended with {text}; that code means "
                             f"{' / '.join(REASONS[expected])}")
