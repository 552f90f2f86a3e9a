"""Interop: xmfax's T.38 terminal against spandsp's t38_terminal (libspandsp2 via ctypes).

Both directions, ECM on and off, paced and unpaced, each modem family forced on
spandsp's side, and 5 % random datagram loss with UDPTL redundancy. spandsp speaks
IFP only, so its side of UDPTL is xmfax's UDPTLSender/UDPTLReceiver (the same
code under test on our side, but the IFP inside is spandsp's own). Pages are
compared pixel for pixel: spandsp reads the sent page from a G4 TIFF and writes
what it received as a TIFF we read back with Pillow.
"""
from __future__ import annotations

import os
import random
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
import spandsp_t38 as sp  # noqa: E402

pytestmark = pytest.mark.interop

if sp.load() is None:
    pytest.skip("libspandsp.so.2 (Debian libspandsp2) is not installed", allow_module_level=True)

Image = pytest.importorskip("PIL.Image", reason="Pillow reads and writes the TIFF pages")
session_mod = pytest.importorskip("xmfax.t30.session", reason="the T.30 Session is not built yet")

from xmfax.page import Page, Resolution  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.modem import Family  # noqa: E402
from xmfax.t38.config import EC_REDUNDANCY, T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402
from xmfax.t38.udptl import UDPTLReceiver, UDPTLSender  # noqa: E402

FAMILY_BITS = {Family.V27TER: sp.MODEM_V27TER, Family.V29: sp.MODEM_V29, Family.V17: sp.MODEM_V17}


def make_pages(n=2, rows=240, seed=3):
    rng = np.random.default_rng(seed)
    pages = []
    for k in range(n):
        img = np.zeros((rows, 1728), dtype=bool)
        for r in range(0, rows - 12, 14):
            for c in range(60, 1650, 22):
                if rng.random() < 0.55:
                    img[r:r + rng.integers(3, 10), c:c + rng.integers(5, 16)] = True
        img[2 + 3 * k:6 + 3 * k, 200:1500] = True
        pages.append(Page(img, Resolution.FINE, source=f"interop {k}"))
    return pages


def write_tiff(pages, path):
    frames = [Image.fromarray(~p.image).convert("1") for p in pages]   # TIFF: 0 = black in mode "1"
    frames[0].save(path, compression="group4", save_all=True, append_images=frames[1:], dpi=(204, 196))


def read_tiff(path):
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            out.append(~np.array(im.convert("1"), dtype=bool))
    return out


def run(xterm, peer, *, loss=0.0, seed=5, limit=400.0, udptl=True, cfg=None):
    """Join an xmfax terminal and a spandsp terminal on a fake 20 ms clock."""
    rng = random.Random(seed)
    to_peer_rx = UDPTLReceiver(cfg.version if cfg else 0)
    from_peer_tx = UDPTLSender(cfg or T38Config())
    now = 0.0
    xterm.start(now)
    peer_seq = 0
    while now < limit:
        # xmfax -> spandsp
        for item in (xterm.datagrams_to_send() if udptl else xterm.packets_to_send()):
            if rng.random() < loss:
                continue
            if udptl:
                for seq, ifp in to_peer_rx.receive(item):
                    if ifp is not None:
                        peer.feed(ifp, seq)
            else:
                peer.feed(item[1], item[0])
        # spandsp -> xmfax
        for ifp, _copies in peer.take():
            if udptl:
                d = from_peer_tx.pack(ifp)
                if rng.random() >= loss:
                    xterm.receive_datagram(d, now)
            else:
                xterm.receive_ifp(ifp, now, seq=peer_seq)
                peer_seq = (peer_seq + 1) & 0xFFFF
        if xterm.done and peer.completion is not None:
            break
        now = round(now + 0.020, 6)
        peer.tick(160)
        t = xterm.next_timer()
        while t is not None and t <= now:
            xterm.handle_timer(now)
            nt = xterm.next_timer()
            if nt == t:
                break
            t = nt
    return now


CASES = [
    # (name, ecm, paced, modems on spandsp, loss, version)
    ("ecm-paced", True, True, None, 0.0, 0),
    ("ecm-unpaced", True, False, None, 0.0, 0),
    ("nonecm-paced", False, True, None, 0.0, 0),
    ("nonecm-unpaced", False, False, None, 0.0, 0),
    ("v29-nonecm", False, True, Family.V29, 0.0, 0),
    ("v27ter-ecm", True, True, Family.V27TER, 0.0, 0),
    ("v17-ecm-version3", True, True, Family.V17, 0.0, 3),
    ("loss5-ecm", True, True, None, 0.05, 0),
    ("loss5-nonecm", False, True, None, 0.05, 0),
]


def modem_bits(family):
    if family is None:
        return sp.MODEM_V27TER | sp.MODEM_V29 | sp.MODEM_V17
    # V.27ter is mandatory; forcing a higher family means offering only it (plus V.27ter fallback)
    return FAMILY_BITS[family] | (0 if family is not Family.V27TER else 0)


def expected_rate(family):
    return {None: 14400, Family.V17: 14400, Family.V29: 9600, Family.V27TER: 4800}[family]


@pytest.mark.parametrize("name,ecm,paced,family,loss,version", CASES, ids=[c[0] for c in CASES])
def test_xmfax_sends_to_spandsp(tmp_path, name, ecm, paced, family, loss, version):
    pages = make_pages()
    cfg = T38Config(paced=paced, version=version, udp_ec=EC_REDUNDANCY, redundancy_depth=3)
    sess = session_mod.Session(T30Config(ecm=ecm, local_id="+1 555 0100"), calling=True, pages=pages)
    xterm = T38Terminal(sess, cfg)
    rx = str(tmp_path / "rx.tif")
    peer = sp.SpandspT38(False, rx_file=rx, ecm=ecm, modems=modem_bits(family), version=version, paced=paced)
    try:
        run(xterm, peer, loss=loss, cfg=cfg)
        st = peer.stats()
        assert sess.result.status == "success", (sess.result.reason, sess.result.detail)
        assert peer.completion == sp.T30_ERR_OK, peer.completion
        assert st.pages_rx == len(pages)
        assert st.bit_rate == expected_rate(family)
        assert bool(st.error_correcting_mode) == ecm
        got = read_tiff(rx)
        assert len(got) == len(pages)
        for p, g in zip(pages, got):
            assert g.shape == p.image.shape and np.array_equal(g, p.image)
    finally:
        peer.close()


@pytest.mark.parametrize("name,ecm,paced,family,loss,version", CASES, ids=[c[0] for c in CASES])
def test_spandsp_sends_to_xmfax(tmp_path, name, ecm, paced, family, loss, version):
    pages = make_pages(seed=11)
    tx = str(tmp_path / "tx.tif")
    write_tiff(pages, tx)
    cfg = T38Config(paced=paced, version=version, udp_ec=EC_REDUNDANCY, redundancy_depth=3)
    sess = session_mod.Session(T30Config(ecm=ecm, local_id="+1 555 0100"), calling=False, receive=True)
    xterm = T38Terminal(sess, cfg)
    peer = sp.SpandspT38(True, tx_file=tx, ecm=ecm, modems=modem_bits(family), version=version, paced=paced)
    try:
        run(xterm, peer, loss=loss, cfg=cfg)
        res = sess.result
        assert peer.completion == sp.T30_ERR_OK, peer.completion
        assert res.status == "success", (res.reason, res.detail)
        assert len(res.received_pages) == len(pages)
        assert peer.stats().bit_rate == expected_rate(family)
        for p, g in zip(pages, res.received_pages):
            assert g.image.shape == p.image.shape and np.array_equal(g.image, p.image)
    finally:
        peer.close()


def test_direct_ifp_without_udptl(tmp_path):
    """IFP passed straight across (no UDPTL), both ends unpaced."""
    pages = make_pages(1)
    sess = session_mod.Session(T30Config(ecm=True), calling=True, pages=pages)
    xterm = T38Terminal(sess, T38Config(paced=False), udptl=False)
    rx = str(tmp_path / "rx.tif")
    peer = sp.SpandspT38(False, rx_file=rx, paced=False)
    try:
        run(xterm, peer, udptl=False)
        assert sess.result.status == "success" and peer.completion == sp.T30_ERR_OK
        assert np.array_equal(read_tiff(rx)[0], pages[0].image)
    finally:
        peer.close()
