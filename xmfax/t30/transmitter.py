"""The sending side of a T.30 session (a mixin of :class:`Session`): pages and
ECM blocks out, post-page commands, and what the far end answers to them."""
from __future__ import annotations

from dataclasses import dataclass, field

from .. import codecs
from ..errors import LocalProtocolError
from ..page import Page
from . import capabilities as caps
from . import frames as F
from .ecm import TxBlock, cut
from .events import PageSent, PageStarted
from .fcf import FCF
from .modem import Modulation, SendData, SendHDLC, SendSilence
from .result import PageStats, Reason
from .states import Input
from ._common import GAP_MS, dcs_fields


@dataclass
class TxPage:
    """The page being sent (T.30 §5.3.6.1.4; ECM: Annex A): fitted, coded, cut into
    blocks, and the post-page command chosen for it."""

    page: Page | None = None            # fitted to the far end (caps.fit_page); None: fit again
    data: bytes | None = None           # T.4/T.6 coded, LSB first
    blocks: list[list[bytes]] = field(default_factory=list)   # ECM: blocks of frames
    block_index: int = 0
    block: TxBlock | None = None        # ECM: the block being delivered
    retransmitted: int = 0              # ECM frames resent for this page
    refusals: int = 0                   # RTN/PIN for this page
    pmc: FCF = FCF.EOP                  # its MPS/EOP/EOM
    pmc_sent: bool = False              # that command is out
    pmc_due: bool = False               # non-ECM: the data is queued, the command not yet
    pending_ctc: Modulation | None = None   # ECM: the rate our CTC asks for


class TransmitterMixin:
    """Transmitter methods of Session (see session.py for the state they share)."""

    def _enter_send_page(self) -> None:
        # T.30 §5.3.6.1.4: the page (T.4 coded, RTC at the end), then MPS/EOP/EOM
        page, dcs = self._current_page(), self._dcs
        if self._tx.data is None:
            self._tx.data = codecs.encode(
                page.image, dcs.compression, k=caps.mr_k(self.config, page.resolution), eol=True,
                rtc=True, min_row_bits=caps.min_row_bits(dcs), bit_order="lsb")
        self._announce_page()
        # The post-page command is chosen when the page data is out (SendComplete, or the
        # T4 estimate if the transport never says): a document added meanwhile
        # (add_document) turns the last page's EOP into EOM (T.30 §5.3.6.1.4).
        self._tx.pmc_due = True
        self._queue([SendSilence(GAP_MS), SendData(dcs.modulation, self._tx.data)], remember=False)

    def _send_pmc(self) -> None:
        """Non-ECM: the page data is out; now MPS/EOM/EOP and wait for the answer."""
        self._tx.pmc_due = False
        self._tx.pmc = self._post_page_command()
        self._tx.pmc_sent = True
        self._send_frames([self._frame(self._tx.pmc)])

    def _enter_resend_pmc(self) -> None:
        self._send_frames([self._frame(self._tx.pmc)])

    def _enter_send_block(self) -> None:
        # T.30 Annex A: FCD frames and RCP at the page rate, then PPS at V.21
        page, dcs = self._current_page(), self._dcs
        if self._tx.block is None:
            if self._tx.data is None:
                self._tx.data = codecs.encode(
                    page.image, dcs.compression, k=caps.mr_k(self.config, page.resolution),
                    eol=True, rtc=True, bit_order="lsb")
                self._tx.blocks = cut(self._tx.data, dcs.ecm_frame_size)
                self._tx.block_index = 0
                self._announce_page()
            self._tx.block = TxBlock(self._tx.blocks[self._tx.block_index])
        self._tx.pmc = self._post_page_command()
        self._tx.pmc_sent = self._fcf2() != F.PPS_NULL
        self._push([SendSilence(GAP_MS), SendHDLC(self._tx.block.hdlc(), dcs.modulation)])
        self._send_frames([self._pps_frame()])      # a repeat (CRP) is of the PPS only

    def _enter_resend_pps(self) -> None:
        self._send_frames([self._pps_frame()])

    def _enter_send_ctc(self) -> None:
        # T.30 §A.4: after 4 PPRs, continue to correct at a lower rate
        self._send_frames([self._frame(FCF.CTC, F.encode_ctc(self._tx.pending_ctc))])

    def _enter_send_eor(self) -> None:
        self._send_frames([self._frame(FCF.EOR, bytes((self._fcf2(),)))])

    def _enter_send_rr(self) -> None:
        if self._t5_deadline is None:
            self._t5_deadline = self._now + self.config.timers.t5
        self._send_frames([self._frame(FCF.RR)])

    # ------------------------------------------------------------------ transmitter helpers
    def _current_page(self) -> Page:
        if self._tx.page is None:
            self._tx.page = caps.fit_page(self.pages[self._page_index], self._remote, self.config)
        return self._tx.page

    def _announce_page(self) -> None:
        d = self._dcs
        self._events.append(PageStarted(self._now, self._page_index + 1, True, d.compression,
                                        d.resolution.label, d.modulation.bit_rate))

    def _post_page_command(self) -> FCF:
        """MPS, EOP, or EOM when the next page needs another DCS (T.30 §5.3.6.1.4)."""
        if self._page_index + 1 >= len(self.pages):
            return FCF.EOP
        if self._page_index in self._doc_ends:
            return FCF.EOM        # the next page starts another document
        try:
            nxt = caps.fit_page(self.pages[self._page_index + 1], self._remote, self.config)
            d2 = caps.choose_dcs(self.config, self._remote, nxt, self._dcs.modulation)
        except LocalProtocolError:
            return FCF.MPS        # that page will fail on its own when its turn comes
        same = (d2.resolution, d2.width, d2.compression, d2.min_scan_ms, d2.ecm, d2.length) == \
            (self._dcs.resolution, self._dcs.width, self._dcs.compression, self._dcs.min_scan_ms,
             self._dcs.ecm, self._dcs.length)
        return FCF.MPS if same else FCF.EOM

    def _fcf2(self) -> int:
        """PPS-NULL within the page; after its last block, its post-page command (T.30 §A.4)."""
        if self._tx.block_index + 1 < len(self._tx.blocks):
            return F.PPS_NULL
        return int(self._tx.pmc) | self._x

    def _pps_frame(self) -> F.Frame:
        fif = F.encode_pps(self._fcf2(), self._page_index, self._tx.block_index,
                           len(self._tx.block.frames))
        return self._frame(FCF.PPS, fif)

    def _page_confirmed(self, response: str, accepted: bool) -> None:
        d, page = self._dcs, self._current_page()
        self._tx.pmc_sent = False
        self._events.append(PageSent(self._now, self._page_index + 1, response, accepted))
        if accepted:
            self.result.pages_sent.append(PageStats(
                self._page_index + 1, page.rows, 0, 0, d.compression, d.resolution.label,
                page.width, d.modulation.bit_rate, response, d.ecm, self._tx.retransmitted))
            self.result.page_format(d)
            self._page_index += 1
            self._tx = TxPage(pmc=self._tx.pmc)       # the next page (its pmc decides EOM below)
        else:
            self._tx.data, self._tx.block, self._tx.blocks = None, None, []

    def _page_outcome(self, retrain: bool) -> Input:
        """The far end took the page: the next page (retrained or not), phase B again after
        EOM, or DCN after the last (T.30 §5.3.6.1.4). A classifier: it changes nothing."""
        if self._page_index >= len(self.pages):
            return Input.PAGE_ACK_DONE
        if self._tx.pmc is FCF.EOM:
            return Input.PAGE_ACK_EOM
        return Input.PAGE_ACK_RETRAIN if retrain else Input.PAGE_ACK_NEXT

    # ------------------------------------------------------------------ transmitter answers
    def _do_send_pmc_late(self) -> None:
        # SEND_PAGE's timer: the transport never reported the page data sent; else T4 as usual
        if self._tx.pmc_due:
            self._send_pmc()
        else:
            self._do_command_timeout()

    def _do_ctr(self, fr: F.Frame, f: FCF) -> None:
        # SEND_CTC: the far end follows us to the new rate (T.30 §A.4)
        self._modulation = self._tx.pending_ctc
        self._dcs = F.DCS(**{**dcs_fields(self._dcs), "modulation": self._tx.pending_ctc})
        self._tx.block.pprs = 0
        self.result.fallbacks += 1
        self._go(Input.CTR)

    def _do_page_answer(self, fr: F.Frame, f: FCF) -> None:
        # SEND_PAGE, RESEND_PMC: MCF RTP RTN PIP PIN (T.30 §5.3.6.1.5)
        if f is not FCF.MCF:
            self._step_down()
        if f in (FCF.MCF, FCF.RTP, FCF.PIP):
            self._page_confirmed(f.name, True)
            self._go(self._page_outcome(retrain=f is not FCF.MCF))
            return
        # RTN / PIN: refused; retrain and send it again (T.30 §5.3.6.1.5)
        self._tx.refusals += 1
        self._page_confirmed(f.name, False)              # (the page stays the current one)
        if self._tx.refusals >= self.config.page_retries:
            self._fail(Reason.PAGE_REFUSED, f"page {self._page_index + 1} refused with {f.name} {self._tx.refusals} times")
            return
        self._go(Input.PAGE_ACK_RETRAIN)

    def _step_down(self) -> None:
        """After RTP/RTN/PIP/PIN: retrain one rate lower (config.step_down_after_rtn)."""
        if not self.config.step_down_after_rtn:
            return
        lower = caps.next_lower(self._modulation, self._allowed)
        if lower is not None:
            self._modulation = lower
            self.result.fallbacks += 1

    def _do_eor_answer(self, fr: F.Frame, f: FCF) -> None:
        # SEND_EOR: ERR (or MCF ...) ends the block with its frames missing; a late PPR is ignored
        if f is not FCF.PPR:
            self._do_block_answer(fr, f, after_eor=True)

    def _do_block_answer(self, fr: F.Frame, f: FCF, after_eor: bool = False) -> None:
        # SEND_BLOCK, RESEND_PPS, SEND_RR: the answer to our PPS or RR (T.30 §A.4)
        if f is FCF.RNR:
            if self._t5_deadline is not None and self._now >= self._t5_deadline:
                self._fail(Reason.RNR_TIMEOUT)
                return
            self._go(Input.RNR)
            return
        self._t5_deadline = None
        if f is FCF.PPR:
            self._tx.block.on_ppr(F.decode_ppr(fr.fif))
            self._tx.retransmitted += len(self._tx.block.pending)
            self.result.retransmitted_frames += len(self._tx.block.pending)
            if self._tx.block.pprs >= self.config.ppr_before_ctc:
                lower = caps.next_lower(self._modulation, self._allowed)
                if lower is not None:
                    self._tx.pending_ctc = lower
                    self._go(Input.PPR_CTC)
                else:
                    self._go(Input.PPR_EOR)
            else:
                self._go(Input.PPR_RETRY)
            return
        if f in (FCF.RTN, FCF.PIN):
            self._fail(Reason.ECM_FAILED, f"{f.name} in ECM")
            return
        # MCF, ERR (or RTP/PIP): this block is done
        if (f is FCF.ERR or after_eor) and self._page_index + 1 not in self._damaged_pages:
            self._damaged_pages.append(self._page_index + 1)
        self._tx.block = None
        if self._tx.block_index + 1 < len(self._tx.blocks):
            self._tx.block_index += 1
            self._go(Input.PAGE_ACK_NEXT)
            return
        self._page_confirmed(f.name, True)
        self._go(self._page_outcome(retrain=False))

