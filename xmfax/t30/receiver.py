"""The receiving side of a T.30 session (a mixin of :class:`Session`): training
check, page data and copy quality, post-page answers, ECM blocks (T.30 Annex A)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import codecs
from ..errors import RemoteProtocolError
from ..page import Page
from . import capabilities as caps
from . import frames as F
from .ecm import FRAMES_PER_BLOCK
from .events import BadFrame, PageReceived, PageRejected, PageStarted, TrainingResult
from .fcf import FCF, PRI_Q_BASE, split
from .modem import CarrierDown, DataReceived, Expect, HDLCFrame, Receive, SendHDLC, SendSilence
from .result import PageStats, Reason
from .states import Input
from ._common import GAP_MS, dcs_fields

# MPS, EOP, EOM: the post-page commands without PRI-Q (T.30 §5.3.6.1.4)
_POST_PAGE = frozenset(PRI_Q_BASE.values())


def _pmc_outcome(command: FCF | None, answer: FCF) -> Input:
    """What follows our answer to a post-page command (T.30 §5.3.6.1.4; for ECM the command
    a PPS carries, None for PPS-NULL): a classifier, it changes nothing."""
    if answer is FCF.RTN:
        return Input.PMC_RETRAIN
    return {FCF.EOM: Input.PMC_EOM, FCF.EOP: Input.PMC_LAST}.get(
        command, Input.PMC_NEXT_PAGE if answer is FCF.MCF else Input.PMC_RETRAIN)


def _post_page(fcf2: int) -> FCF | None:
    """The command a PPS/EOR carries after its block (FCF2; PRI-Q read as plain), if any."""
    tail = split(fcf2)[0] if fcf2 else None
    return PRI_Q_BASE.get(tail, tail)
MAX_ROW_SECONDS = 5.0        # T.4 §3: maximum transmission time of a total coded scan line


@dataclass
class RxPage:
    """A non-ECM page as it arrives: its decoder and the copy-quality counts (T.30 §5.3.6.1.5)."""

    decoder: codecs.StreamDecoder | None = None
    started: bool = False               # its data has begun
    max_row_octets: int = 0             # the longest a coded row of this width can be
    bit_rate: int = 9600
    since_row: int = 0                  # non-zero octets since the last row completed
    row_octets: int = 0                 # octets since the last row completed
    good_bytes: int = 0                 # octets of rows that looked like image data
    good_rows: int = 0
    lost: float = 0.0                   # rows lost in garbage (an estimate)
    lost_max: float = 0.0               # the most in one stretch
    after_end: int = 0                  # non-zero octets after what decoded as RTC
    abandon: str | None = None          # why the page is dropped (a row over 5 s, T.4 §3)
    carry: bytearray = field(default_factory=bytearray)   # data not yet decoded (< one slice)

    def feed(self, data: bytes, lost: int = 0) -> None:
        if lost:
            self._lose(lost / self._mean())   # the transport lost data here (a T.38 packet)
        # the data is decoded in slices of 50 ms of line (RTC place, row times): short
        # transport chunks (30 ms T.38 packets) are gathered up to a slice first
        step = max(16, self.bit_rate // 160)
        carry = self.carry
        carry += data
        if len(carry) >= step:
            whole = len(carry) - len(carry) % step
            self._decode(bytes(carry[:whole]), step)
            del carry[:whole]

    def flush(self) -> None:
        """Decode the page data still gathered (the end of the page's carrier)."""
        if self.carry and self.decoder is not None:
            data, self.carry = bytes(self.carry), bytearray()
            self._decode(data, len(data))

    def finish(self) -> codecs.DecodeResult:
        """The page's end: the decoder's result; garbage up to the end counts as lost rows."""
        self.flush()
        res = self.decoder.finish()
        if self.since_row > self.max_row_octets:
            self._lose(self.since_row / self._mean())
        return res

    def _mean(self) -> float:
        return max(1.0, self.good_bytes / max(1, self.good_rows))

    def _lose(self, rows: float) -> None:
        self.lost += rows
        self.lost_max = max(self.lost_max, rows)

    def _decode(self, data: bytes, step: int) -> None:
        for k in range(0, len(data), step):
            piece = data[k:k + step]
            if self.decoder.end is not None:
                # data after what decoded as RTC: a damaged row looked like the end of page
                self.after_end += len(piece) - piece.count(0)
            else:
                self._count_lost(len(self.decoder.feed(piece)), piece)

    def _count_lost(self, got: int, piece: bytes) -> None:
        """Rows lost in garbage (T.30 §5.3.6.1.5 leaves the method to the receiver; docs/t30.md
        "Copy quality"): the decoder takes what follows a row, up to the next EOL, as fill,
        so we count non-zero octets between rows; a stretch longer than any coded row of
        this width can be (1.5 octets a pel) is ``stretch / mean row size`` lost rows."""
        self.since_row += len(piece) - piece.count(0)
        self.row_octets += len(piece)
        if not got:
            return
        stretch, self.since_row = self.since_row, 0
        # the row's time, counted without the slice it ended in (a lower bound, within 50 ms)
        seconds = (self.row_octets - len(piece)) * 8 / self.bit_rate
        self.row_octets = 0
        if seconds > MAX_ROW_SECONDS and self.abandon is None:
            # T.4 §3: a total coded scan line takes at most 5 s; the message is dropped
            self.abandon = f"a coded scan line took {seconds:.1f} s (T.4 §3: at most {MAX_ROW_SECONDS:.0f} s)"
        if stretch > self.max_row_octets:
            self._lose(max(0.0, stretch / self._mean() - got))
            return
        self.good_bytes += stretch
        self.good_rows += got


class ReceiverMixin:
    """Receiver methods of Session (see session.py for the state they share)."""

    # ------------------------------------------------------------------ receiver data
    def _do_data_after_rtp(self, ev: DataReceived) -> None:
        # RX_WAIT_DCS: RTP asks the sender to retrain, but some go straight on with the next
        # page (TSB-85 MRGN04 allows it): take it as that page
        if (self._rx_dcs is not None and not self._rx_dcs.ecm and self._last_response_name() == "RTP"
                and ev.modulation is self._rx_dcs.modulation):
            self._go(Input.PAGE_DATA_START)
            self._do_page_data(ev)

    def _do_tcf_data(self, ev: DataReceived) -> None:
        if self._tcf is not None:
            self._tcf.feed(ev.data)

    def _do_page_data(self, ev: DataReceived) -> None:
        # RX_PAGE: non-ECM page data (T.4)
        if not self._rx_dcs.ecm:
            if not self._rx.started and not self._begin_rx_page():
                return
            self._rx.feed(ev.data, ev.lost)
            self._deadline = self._now + self.config.timers.t2

    def _begin_rx_page(self) -> bool:
        """Page data begins. False if the call ended instead (too many pages)."""
        d = self._rx_dcs
        if len(self.result.pages_received) >= self.config.max_pages:
            self._fail(Reason.LIMIT, f"more than {self.config.max_pages} pages in one call (max_pages)")
            return False
        decoder = None if d.ecm else codecs.StreamDecoder(
            d.resolution.widths[d.width], d.compression, eol=True, bit_order="lsb",
            max_rows=self.config.max_receive_rows, keep=True)
        self._rx = RxPage(decoder, True, d.resolution.widths[d.width] * 3 // 2 + 128, d.modulation.bit_rate)
        self._events.append(PageStarted(self._now, len(self.result.pages_received) + 1, False,
                                        d.compression, d.resolution.label, d.modulation.bit_rate))
        return True

    def _do_crp_on_noise(self) -> None:
        # RX_WAIT_PMC, RX_WAIT_DCS, SEND_DIS: a burst of damaged frames where we wait for a
        # command: ask for it again (CRP; see session.py _dispatch, docs/t30.md "Frames in error")
        self._send_frames([self._frame(FCF.CRP)], remember=False)

    def _do_tcf_end(self, ev: CarrierDown) -> None:
        # RX_TCF: the TCF's carrier ended: judge it, CFR or FTT (T.30 §5.3.6.1.3)
        if self._abort_why is not None:
            self._fail(Reason.ABORTED, self._abort_why)    # the far end's TCF ended: our turn
            return
        if self._tcf is not None:
            ok, detail = self._tcf.verdict()
            self._events.append(TrainingResult(self._now, str(self._rx_dcs.modulation), ok, detail))
            self._tcf = None
            self._respond(FCF.CFR if ok else FCF.FTT)
            if ok:
                self._ecm.block.clear()
                self._go(Input.TCF_OK)
            else:
                self._retry.tcf_failures += 1
                self._go(Input.TCF_BAD)

    def _do_page_end(self, ev: CarrierDown) -> None:
        if self._rx.started:
            self._rx.flush()
            self._go(Input.PAGE_DATA_END)

    def _do_tcf_timeout(self) -> None:
        if self._tcf is not None and self._tcf.octets:
            self._do_tcf_end(CarrierDown(self._rx_dcs.modulation))   # carrier-down never came
            return
        self._retry.tcf_failures += 1
        if self._retry.tcf_failures > self.config.retries:
            self._fail(Reason.NO_TCF)
            return
        self._respond(FCF.FTT)
        self._go(Input.TCF_BAD)

    def _do_no_dcs(self) -> None:
        self._fail(Reason.NO_RESPONSE, f"no DCS after our {self._last_response_name()}")

    def _do_page_timeout(self) -> None:
        if self._rx.started:
            self._go(Input.PAGE_DATA_END)     # data stopped without carrier-down
        else:
            self._fail(Reason.NO_PAGE, self._where())

    def _do_no_pmc(self) -> None:
        if self._rx.abandon is not None:
            self._fail(Reason.SCAN_LINE_TOO_LONG, self._rx.abandon)
        else:
            self._fail(Reason.NO_POST_PAGE, self._where())

    def _do_after_eom_timeout(self) -> None:
        self._go(Input.NO_RESPONSE_RETRY)      # T2 after EOM: phase B again, our DIS

    def _do_no_dcn(self) -> None:
        self._finish_ok("no DCN after the last page")
        self._go(Input.END_OK)

    def _respond(self, fcf: FCF, fif: bytes = b"") -> None:
        fr = self._frame(fcf, fif)
        self._last_response = (fr.encode(),)
        self._send_frames([fr], remember=False)

    def _repeat_response(self, *_) -> None:
        if self._last_response is not None:
            self._queue([SendSilence(GAP_MS), SendHDLC(self._last_response), Receive(Expect.HDLC)], remember=False)

    _do_repeat_response = _repeat_response     # CRP, EOR, RR where only our last answer fits

    # ------------------------------------------------------------------ receiver post-page (non-ECM)
    def _do_pmc_repeated(self, fr: F.Frame, f: FCF) -> None:
        # RX_WAIT_DCS, RX_WAIT_DCN, RX_AFTER_EOM (and SEND_DIS after EOM, once answered): our
        # answer to it was lost: the same command again gets the same answer (T.30 §5.3.6.1.4)
        if self._rx_dcs is not None and not self._rx_dcs.ecm:
            self._repeat_response()

    def _do_pmc_after_eom_dis(self, fr: F.Frame, f: FCF) -> None:
        if self._last_response is not None and self.result.pages_received:
            self._do_pmc_repeated(fr, f)

    def _do_pmc_in_page(self, fr: F.Frame, f: FCF) -> None:
        # RX_PAGE: a post-page command before (or without) the page's data
        if not self._rx.started and self._last_response is not None and self.result.pages_received:
            self._do_pmc_repeated(fr, f)
        else:
            self._do_pmc(fr, f, begin=not self._rx.started)

    def _do_pmc(self, fr: F.Frame, f: FCF, begin: bool = False) -> None:
        # RX_WAIT_PMC: MPS, EOP or EOM after a non-ECM page: judge it (T.30 §5.3.6.1.4-5)
        if self._rx_dcs is None or self._rx_dcs.ecm:
            return
        if self._rx.abandon is not None:
            # the message is being dropped: no answer; the sender gives up and sends DCN
            # (it repeats its command 3 times, T4 or more apart: wait for that, up to T1)
            self._deadline = self._now + self.config.timers.t1
            return
        if begin and not self._begin_rx_page():
            return
        res = self._rx.finish()
        number = len(self.result.pages_received) + 1
        if res.end == "limit":
            # never cut a page and confirm it whole: refuse it and end the call
            self._rx.decoder = None
            why = f"page {number} is longer than {self.config.max_receive_rows} rows (max_receive_rows)"
            self._events.append(PageRejected(self._now, number, res.rows, res.bad_rows, why))
            self._fail(Reason.LIMIT, why)
            return
        lost = int(round(self._rx.lost))
        # a clean row followed by non-zero "fill" lost its EOL to noise (T.4 §4.1.3 fill is
        # 0 bits): the rows after it were swallowed; count it bad (short bursts the octet
        # stretch estimate above cannot see)
        garbled = res.garbled_fill_rows
        # the rows judged bad are the rows reported bad (those lost in a gap of the transport
        # included: a page missing them must never read as whole)
        bad = res.bad_rows + lost + garbled
        consecutive = max(res.max_consecutive_bad_rows, int(round(self._rx.lost_max)))
        response, why = self._judge(res.rows + lost, bad, consecutive, self._rx.after_end)
        if res.end not in ("rtc", "eofb") and response is not FCF.RTN:
            # T.4 §4.1.4: a page ends with RTC. Data that stops without it was cut short (the
            # carrier lost mid-page, a gap on the line) and may lack any number of rows: never
            # confirm such a page as whole, as the ECM path refuses one too
            response, why = FCF.RTN, f"page data ended without RTC after {res.rows} rows (cut short)"
        d = self._rx_dcs
        if response is FCF.RTN:
            self._events.append(PageRejected(self._now, number, res.rows, res.bad_rows, why))
        else:
            self._deliver(Page(res.image, d.resolution), res.rows, bad, consecutive, response.name, 0)
        self._rx.decoder = None
        then = _pmc_outcome(f, response)
        if then is Input.PMC_EOM:
            self._local_dis = caps.local_dis(self.config, ready_to_transmit=bool(self.pages),
                                             ready_to_receive=self.receive_ok)
        if response is not FCF.RTN and self.config.confirm_storage:
            self._hold_answer(number, response, then, ecm=False)     # storage.py
            return
        self._respond(response)
        self._go(then)

    def _judge(self, rows: int, bad: int, consecutive: int, trailing: int = 0) -> tuple[FCF, str]:
        """MCF, RTP or RTN by the copy-quality rule (T.30 §5.3.6.1.5; config.copy_quality).

        ``trailing``: non-zero octets that arrived after the decoder saw RTC; more than
        a few mean the "RTC" was a damaged row and the rest of the page is lost."""
        q = self.config.copy_quality
        if rows == 0:
            return FCF.RTN, "no row decoded"
        if trailing > q.max_data_after_rtc:
            return FCF.RTN, f"{trailing} octets of page data after RTC (page cut short by damage)"
        pct = 100.0 * bad / rows
        why = f"{bad} of {rows} rows bad ({pct:.1f} %), {consecutive} consecutive"
        if pct <= q.good_bad_rows_pct and consecutive <= q.good_max_consecutive:
            return FCF.MCF, why
        if pct <= q.rtp_bad_rows_pct and consecutive <= q.rtp_max_consecutive:
            return FCF.RTP, why
        return FCF.RTN, why

    def _deliver(self, page: Page, rows: int, bad: int, consecutive: int, response: str,
                 retransmitted: int) -> None:
        d = self._rx_dcs
        number = len(self.result.pages_received) + 1
        held = self.config.confirm_storage and response in ("MCF", "RTP")
        self.result.pages_received.append(PageStats(
            number, rows, bad, consecutive, d.compression, d.resolution.label, page.width,
            d.modulation.bit_rate, "unconfirmed" if held else response, d.ecm, retransmitted))
        if self.config.keep_received_pages:
            self.result.received_pages.append(page)
        self.result.page_format(d)
        self._events.append(PageReceived(self._now, number, page, rows, bad, consecutive, d.compression,
                                         d.resolution.label, d.modulation.bit_rate, response))

    # ------------------------------------------------------------------ ECM receiver (Annex A)
    def _do_block_burst(self, ev) -> None:
        # RX_PAGE: a new block's burst begins: a frame of the last block that came late
        # (after its MCF) must not be taken as one of this block's
        if self._ecm.last_pps is None and self._rx_dcs is not None and self._rx_dcs.ecm:
            self._ecm.block.clear()

    def _do_ecm_frame(self, ev: HDLCFrame) -> None:
        # RX_PAGE: an FCD or RCP frame (T.30 §A.3)
        if self._rx_dcs is None or not self._rx_dcs.ecm:
            return
        if not self._rx.started:
            if self._ecm.open:
                self._rx.started = True      # a PPR/CTC burst of the page already begun
            elif not self._begin_rx_page():
                return
            self._ecm.open = True
        self._deadline = self._now + self.config.timers.t2
        if not ev.fcs_ok:
            return
        try:
            self._ecm.block.add(ev.frame)
        except RemoteProtocolError as exc:
            self._events.append(BadFrame(self._now, bytes(ev.frame[:8]), str(exc)))

    def _pps_repeat(self, fr: F.Frame) -> tuple[int, int, int, int] | None:
        """The PPS's fields; None (answered again) if it repeats the block we confirmed last."""
        if self._rx_dcs is None or not self._rx_dcs.ecm:
            return None
        fcf2, page, block, count = F.decode_pps(fr.fif)
        if self._ecm.last_ack == (page, block):
            # the page/block we already confirmed: a repeat (our MCF was lost), not a new
            # block; frames sent before it are not taken (T.30 §A.4: counters must move on)
            self._ecm.block.clear()
            self._repeat_response()
            return None
        return fcf2, page, block, count

    def _do_pps_repeated(self, fr: F.Frame, f: FCF = FCF.PPS) -> None:
        self._pps_repeat(fr)       # anywhere but in a page: only a repeat gets an answer

    def _do_pps(self, fr: F.Frame, f: FCF = FCF.PPS) -> None:
        # RX_PAGE, RX_WAIT_PMC: the end of a block (T.30 §A.4)
        fields = self._pps_repeat(fr)
        if fields is None:
            return
        fcf2, page, block, count = fields
        if self._held:
            self._ecm.held_pps = fr
            self._respond(FCF.RNR)
            self._go(Input.REPEAT_RESPONSE)
            return
        if self._ecm.eor is not None:
            eor_page, eor_block, eor_data, eor_fcf2 = self._ecm.eor
            if (page, block) != (eor_page, eor_block):
                # the sender moved on after EOR/ERR: keep what we had of that block; if it
                # ended its page, that page is delivered now (damaged), not joined to the next
                ended = _post_page(eor_fcf2)
                self._deliver_eor_page()
                if ended not in _POST_PAGE:
                    self._ecm.hole = True
                elif self._ecm.block.frames:           # the next page's frames came already
                    if not self._begin_rx_page():
                        return
                    self._ecm.open = True
            else:
                self._ecm.eor = None
                self._damaged_pages.pop()              # the same block again: a clean retry
        # The block's size is the largest frame count announced for it. INTEROP(spandsp): a
        # PPS after a PPR burst counts the frames of that burst only (4 resent frames: 4);
        # taking it as the block's size cut the page to its first frames (issue #10).
        prev = self._ecm.last_pps
        if prev is not None and prev[:2] == (page, block):
            count = max(count, prev[2])
        self._ecm.last_pps = (page, block, count, fcf2)
        missing = self._ecm.block.missing(count)
        if missing:
            self._ecm.retransmitted += len(missing)
            # frame numbers past the block's end are marked too (as TSB-85 OREN02 expects;
            # T.30 §A.4: the sender resends only frames it has)
            self._respond(FCF.PPR, F.encode_ppr(missing | set(range(count, FRAMES_PER_BLOCK))))
            self._go(Input.PPR_SENT)
            return
        self._block_done(fcf2, page, block, count, FCF.MCF)

    def _do_rr(self, fr: F.Frame, f: FCF) -> None:
        # RX_PAGE, RX_WAIT_PMC: the sender polls us after RNR (T.30 §A.4)
        if self._ecm.held_pps is not None:
            if self._held:
                self._respond(FCF.RNR)
                self._go(Input.REPEAT_RESPONSE)
                return
            fr, self._ecm.held_pps = self._ecm.held_pps, None
            self._do_pps(fr)
            return
        self._repeat_response()

    def _do_eor(self, fr: F.Frame, f: FCF) -> None:
        # RX_PAGE, RX_WAIT_PMC
        if self._rx_dcs is None:
            return
        # T.30 §A.4 EOR: the sender gives up correcting this block. We answer ERR and
        # set what we have of it aside: if the sender tries the same block again (PPS
        # with its page/block numbers) that retry replaces it; if it goes on to another
        # block, it joins the page with its holes; if the call ends first, a page it
        # ends is delivered as damaged. Either way the call's result says so (ECM_FAILED).
        fcf2 = fr.fif[0] & 0xFE if fr.fif else 0
        page, block, count, _ = self._ecm.last_pps or (-1, -1, 0, 0)
        count = max(count, max(self._ecm.block.frames, default=-1) + 1)
        if self._ecm.eor is None and len(self.result.pages_received) + 1 not in self._damaged_pages:
            self._damaged_pages.append(len(self.result.pages_received) + 1)
        self._ecm.eor = (page, block, self._ecm.block.data(count), fcf2)
        self._ecm.block.clear()
        self._respond(FCF.ERR)
        self._go(Input.PPR_SENT)

    def _deliver_eor_page(self) -> bool:
        """The call ends after EOR/ERR on a page's last block: deliver what arrived.
        True if that block ended the document (EOR-EOP)."""
        page, block, data, fcf2 = self._ecm.eor
        self._ecm.eor = None
        tail = _post_page(fcf2)
        self._ecm.data.append(data)
        if tail in _POST_PAGE:
            self._deliver_ecm_page(FCF.ERR)
        return tail is FCF.EOP

    def _block_done(self, fcf2: int, page: int, block: int, count: int, answer: FCF) -> None:
        self._ecm.data.append(self._ecm.block.data(count))
        if sum(len(b) for b in self._ecm.data) > self.config.max_page_octets:
            raise RemoteProtocolError(f"ECM page larger than {self.config.max_page_octets} octets")
        self._ecm.block.clear()
        self._ecm.last_ack = (page, block)
        self._ecm.last_pps = None
        tail = _post_page(fcf2)
        number = len(self.result.pages_received) + 1
        if tail in _POST_PAGE and not self._deliver_ecm_page(answer):
            return                  # not whole: the call ended (DCN)
        then = _pmc_outcome(tail, answer)
        if tail in _POST_PAGE and self.config.confirm_storage:
            self._hold_answer(number, answer, then, ecm=True)       # storage.py
            return
        self._respond(answer)
        self._go(then)

    def _deliver_ecm_page(self, answer: FCF) -> bool:
        """Decode the blocks of an ECM page and deliver it. False (and the call ends
        with DCN) when a page whose every frame arrived does not decode whole."""
        d = self._rx_dcs
        data = b"".join(self._ecm.data)
        self._ecm.data = []
        self._ecm.open = False
        hole, self._ecm.hole = self._ecm.hole, False
        retransmitted, self._ecm.retransmitted = self._ecm.retransmitted, 0
        number = len(self.result.pages_received) + 1
        res = codecs.decode(data, d.resolution.widths[d.width], d.compression, eol=True,
                            bit_order="lsb", max_rows=self.config.max_receive_rows)
        page = Page(res.image, d.resolution)
        if answer is FCF.ERR or hole:
            # a block given up with EOR/ERR: the page is delivered with its hole, marked "ERR"
            # (never confirmed as whole: the call ends ECM_FAILED); a hole inside the page
            # still gets MCF for its last block, so the sender goes on (T.30 §A.4)
            self._deliver(page, res.rows, res.bad_rows, res.max_consecutive_bad_rows, "ERR", retransmitted)
            return True
        if res.end == "limit":
            why = f"page {number} is longer than {self.config.max_receive_rows} rows (max_receive_rows)"
            self._events.append(PageRejected(self._now, number, res.rows, res.bad_rows, why))
            self._fail(Reason.LIMIT, why)
            return False
        if res.rows == 0 or res.bad_rows or res.end not in ("rtc", "eofb"):
            # T.30 §A.4: MCF confirms the page. Every frame arrived, yet the data does not
            # decode to a whole page (no RTC/EOFB, or bad rows): the sender's data or its
            # framing is broken, and Annex A has no answer that asks for the page again.
            # Never confirm it: keep it marked "damaged", end the call (DCN, PROTOCOL).
            why = (f"ECM page {number}: every frame arrived but it does not decode whole "
                   f"({res.rows} rows, {res.bad_rows} bad, end {res.end}): not confirmed")
            self._deliver(page, res.rows, res.bad_rows, res.max_consecutive_bad_rows, "damaged",
                          retransmitted)
            self._fail(Reason.PROTOCOL, why)
            return False
        self._deliver(page, res.rows, res.bad_rows, res.max_consecutive_bad_rows, answer.name,
                      retransmitted)
        return True

    def _do_ctc(self, fr: F.Frame, f: FCF) -> None:
        # RX_PAGE, RX_WAIT_PMC: continue to correct at a new rate (T.30 §A.4)
        if self._rx_dcs is None:
            return
        mod = F.decode_ctc(fr.fif)
        if mod.family not in self._local_dis.modems:
            raise RemoteProtocolError(f"CTC asks for {mod}, which our DIS did not offer")
        self._rx_dcs = F.DCS(**{**dcs_fields(self._rx_dcs), "modulation": mod})
        self._respond(FCF.CTR)
        self._go(Input.PPR_SENT)

