"""Interop under loss: spandsp's T.38 terminal sends full-length ECM pages to xmfax
over UDPTL with little redundancy (issue #10).

Found by outside testing: with redundancy 1 and 5 % loss (or 20 % loss with
redundancy 3) every page that needed a PPR round was stored cut to 53-190 of its
2,292 rows, answered MCF, and the call reported success. spandsp's PPS after a PPR
burst counts only the frames of that burst; the receiver took that as the block's
size. Here every page must arrive pixel-identical, or the call must fail without
claiming the page. Fixed seeds; the loss applies to datagrams both ways.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import spandsp_t38 as sp  # noqa: E402

pytestmark = pytest.mark.interop

if sp.load() is None:
    pytest.skip("libspandsp.so.2 (Debian libspandsp2) is not installed", allow_module_level=True)

pytest.importorskip("PIL.Image", reason="Pillow reads and writes the TIFF pages")

import test_t38_spandsp as base  # noqa: E402  (its harness: make_pages, write_tiff, read_tiff, run)

from xmfax.t30 import Session, T30Config  # noqa: E402
from xmfax.t38.config import EC_REDUNDANCY, T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402

ROWS = 2292          # a full A4 page at fine resolution, as in the report

CASES = [
    # (redundancy depth, loss, seed, recoverable: the call must succeed)
    (1, 0.05, 5, True),
    (1, 0.05, 6, True),
    # 20 % loss with redundancy 3: UDPTL redundancy protects a packet only if more follow,
    # and after the end of a transmission xmfax waits for the answer. Without
    # T38Config.end_repeats these seeds lost the end of a signal whole (NO_PAGE, NO_DCS or
    # a DCN from spandsp; seed 28: xmfax's last MCF, so spandsp failed a delivered call);
    # with the repeats they succeed (the simulation is deterministic given the seed)
    (3, 0.20, 3, True),
    (3, 0.20, 5, True),
    (3, 0.20, 7, True),
    (3, 0.20, 9, True),
    (3, 0.20, 16, True),
    (3, 0.20, 17, True),
    (3, 0.20, 22, True),
    (3, 0.20, 28, True),
    # still failing with the repeats (spandsp sends DCN): an honest failure
    (3, 0.20, 48, False),
    (3, 0.20, 52, False),
    (1, 0.30, 3, False),     # harsh: success or an honest failure
]


def _receive(tmp_path, depth, loss, seed, end_repeats=2):
    pages = base.make_pages(n=2, rows=ROWS, seed=11)
    tx = str(tmp_path / "tx.tif")
    base.write_tiff(pages, tx)
    cfg = T38Config(paced=True, udp_ec=EC_REDUNDANCY, redundancy_depth=depth, end_repeats=end_repeats)
    sess = Session(T30Config(ecm=True, local_id="+1 555 0100"), calling=False, receive=True)
    xterm = T38Terminal(sess, cfg)
    peer = sp.SpandspT38(True, tx_file=tx, ecm=True)
    try:
        base.run(xterm, peer, loss=loss, seed=seed, cfg=cfg, limit=900.0)
        return pages, sess, peer.completion
    finally:
        peer.close()


def _check(pages, res, completion, recoverable):
    confirmed = [(st, pg) for st, pg in zip(res.pages_received, res.received_pages)
                 if st.response in ("MCF", "RTP")]
    # a page we confirmed is the page that was sent, row for row and pixel for pixel
    for st, pg in confirmed:
        src = pages[st.number - 1]
        assert st.rows == ROWS and st.bad_rows == 0, st
        assert pg.image.shape == src.image.shape and np.array_equal(pg.image, src.image), st
    if recoverable:
        assert res.status == "success", (res.reason, res.detail)
    if res.status == "success":
        assert completion == sp.T30_ERR_OK and len(confirmed) == len(pages)
    else:           # an honest failure: says why, and claims only the whole pages above
        assert res.reason is not None and res.reason.code != 0


@pytest.mark.parametrize("depth,loss,seed,recoverable", CASES,
                         ids=[f"red{c[0]}-loss{int(c[1] * 100)}-seed{c[2]}" for c in CASES])
def test_spandsp_ecm_pages_under_loss_arrive_whole_or_fail(tmp_path, depth, loss, seed, recoverable):
    pages, sess, completion = _receive(tmp_path, depth, loss, seed)
    _check(pages, sess.result, completion, recoverable)


def test_without_end_repeats_the_end_of_a_signal_is_lost(tmp_path):
    """The same calls with ``end_repeats=0`` (each signal's end sent once): some fail,
    honestly; the repeats are what makes the cases above succeed."""
    failed = []
    for seed in (3, 5, 7, 16, 28):
        pages, sess, completion = _receive(tmp_path, 3, 0.20, seed, end_repeats=0)
        res = sess.result
        for st, pg in zip(res.pages_received, res.received_pages):
            if st.response in ("MCF", "RTP"):       # whatever was confirmed is whole
                assert np.array_equal(pg.image, pages[st.number - 1].image), st
        if res.status != "success" or completion != sp.T30_ERR_OK:
            failed.append(seed)
    assert len(failed) >= 3, failed


def test_pages_needing_ppr_rounds_arrive_whole(tmp_path):
    """Redundancy 1, 5 % loss, several seeds: PPR rounds must happen (or the test tests
    nothing) and every page must still arrive whole."""
    retransmitted = 0
    for seed in range(1, 5):
        pages, sess, completion = _receive(tmp_path, 1, 0.05, seed)
        _check(pages, sess.result, completion, True)
        retransmitted += sum(st.ecm_retransmitted_frames for st in sess.result.pages_received)
    assert retransmitted > 0, "no PPR round with these seeds: choose others"


def test_xmfax_sends_ecm_to_spandsp_with_redundancy_1(tmp_path):
    """The other direction (PPR from spandsp's side) under the same loss."""
    pages = base.make_pages(n=2, rows=ROWS, seed=11)
    cfg = T38Config(paced=True, udp_ec=EC_REDUNDANCY, redundancy_depth=1)
    sess = Session(T30Config(ecm=True, local_id="+1 555 0100"), calling=True, pages=pages)
    xterm = T38Terminal(sess, cfg)
    rx = str(tmp_path / "rx.tif")
    peer = sp.SpandspT38(False, rx_file=rx, ecm=True)
    try:
        base.run(xterm, peer, loss=0.05, seed=5, cfg=cfg, limit=900.0)
        assert sess.result.status == "success", (sess.result.reason, sess.result.detail)
        assert peer.completion == sp.T30_ERR_OK
        got = base.read_tiff(rx)
        assert len(got) == 2 and all(np.array_equal(g, p.image) for g, p in zip(got, pages))
    finally:
        peer.close()


# xmfax sending under 20 % loss with redundancy 3 (seeds 1-30): 24 calls succeeded whole on
# both ends without end repeats (these five failed NO_RESPONSE_TO_PAGE: spandsp never saw the
# end of xmfax's post-page command or page), 29 with them. Seed 27 still fails (its answers
# to the last page are lost), honestly: xmfax does not claim a page nobody confirmed.
@pytest.mark.parametrize("seed,recoverable", [(3, True), (10, True), (12, True), (16, True),
                                              (17, True), (27, False)])
def test_xmfax_sends_ecm_to_spandsp_under_20_percent_loss(tmp_path, seed, recoverable):
    pages = base.make_pages(n=2, rows=ROWS, seed=11)
    cfg = T38Config(paced=True, udp_ec=EC_REDUNDANCY, redundancy_depth=3)
    sess = Session(T30Config(ecm=True, local_id="+1 555 0100"), calling=True, pages=pages)
    xterm = T38Terminal(sess, cfg)
    rx = str(tmp_path / "rx.tif")
    peer = sp.SpandspT38(False, rx_file=rx, ecm=True)
    try:
        base.run(xterm, peer, loss=0.20, seed=seed, cfg=cfg, limit=900.0)
        res = sess.result
        if recoverable:
            assert res.status == "success", (res.reason, res.detail)
            assert peer.completion == sp.T30_ERR_OK
        if res.status == "success":         # success only when spandsp holds both pages whole
            got = base.read_tiff(rx)
            assert len(got) == 2 and all(np.array_equal(g, p.image) for g, p in zip(got, pages))
        else:
            assert res.reason is not None and res.reason.code != 0
    finally:
        peer.close()
