"""Interop: whole audio fax calls, xmfax's AudioTerminal <-> spandsp's fax_state
(libspandsp2 via ctypes), samples passed in memory on a fake 20 ms clock.

Both directions, ECM on and off, at every rate xmfax's modems have (V.27 ter 2400/4800,
V.29 7200/9600). When xmfax sends, its T.30 max_rate picks the rate. When spandsp sends
it picks the fastest rate our DIS offers, so the slower rates are reached the way a real
call reaches them: xmfax's receiver refuses TCF above the rate (FTT) and spandsp falls
back. Pages are compared pixel for pixel: spandsp reads the sent page from a TIFF that
xmfax.document writes, and what it receives is read back with xmfax.document's loader.
"""
from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "audio"))
import spandsp_fax_audio as sf  # noqa: E402

pytestmark = pytest.mark.interop

if sf.load() is None:
    pytest.skip(f"spandsp is not available: {sf.unavailable_reason()}", allow_module_level=True)

from test_audio_calls import Echo, Pipe, small_pages  # noqa: E402

from xmfax.audio.terminal import AudioConfig, AudioTerminal, available_modulations  # noqa: E402
from xmfax.document import load, write_tiff  # noqa: E402
from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402

MODS = sorted((m for m in available_modulations() if m is not M.Modulation.V21),
              key=lambda m: (m.family.value, m.bit_rate))

BEST = max(MODS, key=lambda m: m.bit_rate)             # V.17 14400 when V.17 is built


class RefusingTerminal(AudioTerminal):
    """An AudioTerminal whose receiver judges every TCF above ``max_rate`` bad (as on a
    line that cannot carry it): the TCF data above that rate reaches T.30 as ones."""

    max_rate = 14400

    def _feed(self, event, now):
        if isinstance(event, M.DataReceived) and event.modulation.bit_rate > self.max_rate:
            event = M.DataReceived(b"\xff" * len(event.data), event.modulation)
        super()._feed(event, now)


def run(xterm, peer, ab=None, ba=None, limit=240.0, block=160, echo=None):
    """xmfax and spandsp joined by a sample pipe until both have finished (``echo``: what
    xmfax sends comes back to it, as test_audio_calls.Echo makes it)."""
    now = 0.0
    xterm.start(now)
    while now < limit:
        xo = xterm.samples_to_send(block, now)
        po = peer.send(block)
        assert len(xo) == len(po) == block
        now += block / 8000
        peer.receive(ab(xo) if ab else xo)
        heard = ba(po) if ba else po
        if echo is not None:
            heard = echo(xo, heard)
        xterm.receive_samples(heard, now)
        due = xterm.next_timer()
        if due is not None and due <= now:
            xterm.handle_timer(now)
        if xterm.done and peer.completion is not None:
            break
    return now


def t30(mod, ecm):
    """Our T.30 configuration with ``mod`` the best rate. V.27 ter is always offered, and
    V.29 with V.17: DIS has no code for V.17 without V.29 (Table 2/T.30 bits 11-14)."""
    fams = {M.Family.V27TER, mod.family} | ({M.Family.V29} if mod.family is M.Family.V17 else set())
    return T30Config(ecm=ecm, max_rate=mod.bit_rate, local_id="+1 555 0100", modems=frozenset(fams))


def xmfax_sends(tmp_path, mod, ecm, pages, ab=None, ba=None, echo=None):
    sess = Session(t30(mod, ecm), calling=True, pages=pages)
    xterm = AudioTerminal(sess)
    rx = str(tmp_path / "rx.tif")
    peer = sf.SpandspFax(False, rx_file=rx, ecm=ecm)
    try:
        run(xterm, peer, ab, ba, echo=echo)
        st = peer.stats()
        assert sess.result.status == "success", (sess.result.reason, sess.result.detail)
        assert peer.completion == sf.T30_ERR_OK, peer.completion
        assert st.pages_rx == len(pages)
        assert bool(st.error_correcting_mode) == ecm
        assert st.bit_rate == mod.bit_rate and sess.result.modulation == str(mod)
        got = load(rx)
        assert len(got) == len(pages)
        for p, g in zip(pages, got):
            assert g.image.shape == p.image.shape and np.array_equal(g.image, p.image)
        return sess, st
    finally:
        peer.close()


def spandsp_sends(tmp_path, mod, ecm, pages, ab=None, ba=None, echo=None):
    tx = str(tmp_path / "tx.tif")
    write_tiff(pages, tx)
    # our DIS offers mod's family (and V.27 ter); TCF above mod's rate is refused
    cfg = t30(mod, ecm)
    sess = Session(dataclasses.replace(cfg, max_rate=14400), calling=False, receive=True)
    xterm = RefusingTerminal(sess)
    xterm.max_rate = mod.bit_rate
    peer = sf.SpandspFax(True, tx_file=tx, ecm=ecm)
    try:
        run(xterm, peer, ab, ba, echo=echo)
        res = sess.result
        st = peer.stats()
        assert peer.completion == sf.T30_ERR_OK, peer.completion
        assert res.status == "success", (res.reason, res.detail)
        assert st.pages_tx == len(pages)
        assert bool(st.error_correcting_mode) == ecm
        assert st.bit_rate == mod.bit_rate and res.modulation == str(mod)
        assert len(res.received_pages) == len(pages)
        for p, g in zip(pages, res.received_pages):
            assert g.image.shape == p.image.shape and np.array_equal(g.image, p.image)
        return sess, st
    finally:
        peer.close()


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
@pytest.mark.parametrize("mod", MODS, ids=str)
def test_xmfax_sends_to_spandsp(tmp_path, mod, ecm):
    sess, st = xmfax_sends(tmp_path, mod, ecm, small_pages(1, seed=mod.bit_rate))
    assert sess.result.training_attempts == 1          # spandsp passed our first TCF


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
@pytest.mark.parametrize("mod", MODS, ids=str)
def test_spandsp_sends_to_xmfax(tmp_path, mod, ecm):
    sess, st = spandsp_sends(tmp_path, mod, ecm, small_pages(1, seed=mod.bit_rate + 1))
    assert all(p.rate == mod.bit_rate for p in sess.result.pages_received)


def test_two_pages_each_way(tmp_path):
    xmfax_sends(tmp_path, BEST, True, small_pages(2, rows=80, seed=21))
    spandsp_sends(tmp_path, BEST, False, small_pages(2, rows=80, seed=22))


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_through_g711_tandem_with_noise_and_loss_of_level(tmp_path, ecm):
    # 10 dB of loss (-23 dBm0 at the receiver), three G.711 codings, noise 28 dB below
    pipe = dict(gain_db=-10.0, tandem=True, snr_db=28)
    xmfax_sends(tmp_path, BEST, ecm, small_pages(1, seed=31), Pipe(seed=1, **pipe), Pipe(seed=2, **pipe))
    spandsp_sends(tmp_path, BEST, ecm, small_pages(1, seed=32), Pipe(seed=3, **pipe), Pipe(seed=4, **pipe))


def test_at_minus_30_dbm0(tmp_path):
    # xmfax sends at -13 dBm0, spandsp at its defaults (-11 to -14 dBm0); 17 dB of line loss
    # puts both near -30 dBm0 at the receiver
    xmfax_sends(tmp_path, BEST, True, small_pages(1, seed=41), Pipe(gain_db=-17.0), Pipe(gain_db=-17.0))
    spandsp_sends(tmp_path, BEST, True, small_pages(1, seed=42), Pipe(gain_db=-17.0), Pipe(gain_db=-17.0))


@pytest.mark.parametrize("delay_ms", [10, 50])
def test_xmfax_hears_its_own_echo(tmp_path, delay_ms):
    # a 2-wire line: what xmfax sends comes back 20 dB down, 10 or 50 ms later
    xmfax_sends(tmp_path, BEST, True, small_pages(1, seed=51), echo=Echo(delay_ms))
    spandsp_sends(tmp_path, BEST, False, small_pages(1, seed=52), echo=Echo(delay_ms))
