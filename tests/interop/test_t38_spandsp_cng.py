"""Interop: xmfax calls spandsp's T.38 terminal on a line where the caller's first 3 s of
datagrams are lost. spandsp answers as a raw T.38 line does: it starts (CED, DIS) only
when the caller's first datagram reaches it. xmfax repeats its CNG indicator every 3.5 s
until it hears the far end (T.30 §4.1), so the call starts at the second CNG burst; sent
once, the lost CNG would have left both ends waiting (xmfax for T1, 35 s, then failure)."""
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

pytest.importorskip("PIL.Image", reason="Pillow reads spandsp's received TIFF")

import test_t38_spandsp as base  # noqa: E402  (make_pages, read_tiff)

from xmfax.t30 import Session, T30Config  # noqa: E402
from xmfax.t38.config import EC_REDUNDANCY, T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402
from xmfax.t38.udptl import UDPTLReceiver, UDPTLSender  # noqa: E402

LOST_FOR = 3.0


def run_late(xterm, peer, cfg, limit=120.0):
    """A fake 20 ms clock; xmfax's datagrams before LOST_FOR are dropped, and spandsp runs
    (its clock and its sending) only from the first datagram it receives."""
    to_peer, from_peer = UDPTLReceiver(cfg.version), UDPTLSender(cfg)
    now, answered, first = 0.0, False, None
    xterm.start(now)
    while now < limit:
        for d in xterm.datagrams_to_send():
            if now < LOST_FOR:
                continue
            for seq, ifp in to_peer.receive(d):
                if ifp is not None:
                    answered = True
                    first = now if first is None else first
                    peer.feed(ifp, seq)
        if answered:
            for ifp, _copies in peer.take():
                xterm.receive_datagram(from_peer.pack(ifp), now)
        if xterm.done and peer.completion is not None:
            break
        now = round(now + 0.020, 6)
        if answered:
            peer.tick(160)
        t = xterm.next_timer()
        while t is not None and t <= now:
            xterm.handle_timer(now)
            nt = xterm.next_timer()
            if nt == t:
                break
            t = nt
    return first


@pytest.mark.parametrize("paced", [False, True], ids=["unpaced", "paced"])
def test_xmfax_caller_whose_first_3_s_are_lost_reaches_spandsp(tmp_path, paced):
    pages = base.make_pages(n=1)
    cfg = T38Config(paced=paced, udp_ec=EC_REDUNDANCY, redundancy_depth=3)
    sess = Session(T30Config(ecm=True, local_id="+1 555 0100"), calling=True, pages=pages)
    xterm = T38Terminal(sess, cfg)
    rx = str(tmp_path / "rx.tif")
    peer = sp.SpandspT38(False, rx_file=rx, ecm=True, paced=paced)
    try:
        first = run_late(xterm, peer, cfg)
        assert first is not None and 3.5 <= first < 4.0, first    # the second CNG burst
        assert xterm.stats.cng_repeats == 1
        assert sess.result.status == "success", (sess.result.reason, sess.result.detail)
        assert peer.completion == sp.T30_ERR_OK, peer.completion
        got = base.read_tiff(rx)
        assert len(got) == 1 and np.array_equal(got[0], pages[0].image)
    finally:
        peer.close()
