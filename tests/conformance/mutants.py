"""Engines broken on purpose, for tests/conformance/test_mutations.py and
``runner.py --mutant NAME``: each is the real ``xmfax.t30.Session`` with one
decision broken, and the TSB-85 runner must fail it (issue #13).

* ``all-white`` (:class:`AllWhiteSender`): the DUT sends an all-white page of the
  right size instead of its page (frames, rates and post-page commands stay right).
* ``first-block`` (:class:`FirstBlockOnly`): an ECM receiver that keeps only the
  first block of a page (later blocks are answered as usual, their data dropped)
  and delivers and confirms what it kept as the page.
* ``always-mcf`` (:class:`AlwaysMCF`): copy quality that always answers MCF.
"""
from __future__ import annotations

import numpy as np

from xmfax.page import Page
from xmfax.t30 import Session
from xmfax.t30.fcf import FCF


class AllWhiteSender(Session):
    """Sends a white page of the same size and resolution as each of its pages."""

    def _current_page(self) -> Page:
        page = super()._current_page()
        return Page(np.zeros_like(page.image), page.resolution)


class FirstBlockOnly(Session):
    """An ECM receiver that keeps only block 0 of each page (answers as usual)."""

    def _block_done(self, fcf2, page, block, count, answer):
        if block > 0:
            self._ecm.block.clear()                # the block's frames are thrown away
        super()._block_done(fcf2, page, block, count, answer)

    def _deliver_ecm_page(self, answer):
        # what it kept (only block 0) is delivered as the page, confirmed as usual
        from xmfax import codecs
        d = self._rx_dcs
        data = b"".join(self._ecm.data)
        self._ecm.data = []
        self._ecm.open = False
        self._ecm.hole = False
        res = codecs.decode(data, d.resolution.widths[d.width], d.compression, eol=True,
                            bit_order="lsb", max_rows=self.config.max_receive_rows)
        self._deliver(Page(res.image, d.resolution), res.rows, 0, 0, answer.name, 0)
        return True


class AlwaysMCF(Session):
    """Copy quality that answers MCF to every page."""

    def _judge(self, rows, bad, consecutive, trailing=0):
        return FCF.MCF, "always MCF (mutation)"


MUTANTS = {"all-white": AllWhiteSender, "first-block": FirstBlockOnly, "always-mcf": AlwaysMCF}
