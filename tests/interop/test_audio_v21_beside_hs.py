"""A V.27 ter page from spandsp is not taken for a V.21 signal (issue #12).

While a high-speed signal is expected, the V.21 receiver listens beside the high-speed one
(T.30 allows V.21 there). V.27 ter's 1800 Hz carrier lies in V.21 channel 2's band, and
under noise the FSK receiver made two back-to-back flags out of spandsp's V.27 ter page now
and then: the terminal announced V.21 (WrongCarrier), stopped the V.27 ter receiver, and the
page was lost (RTN, then spandsp's DCN). These two calls (spandsp sends at V.27 ter 4800,
noise 20 dB below each signal) failed that way; with four flags asked for beside a
high-speed receiver (xmfax.audio.terminal.V21_FLAGS_BESIDE_HS) both deliver the page whole.
"""
from __future__ import annotations

import os
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "benchmarks"))
sys.path.insert(0, HERE)
import spandsp_fax_audio as sf  # noqa: E402

pytestmark = pytest.mark.interop

if sf.load() is None:
    pytest.skip(f"spandsp is not available: {sf.unavailable_reason()}", allow_module_level=True)

import audio_calls_snr as calls_snr  # noqa: E402
from audio_rtp import load_page  # noqa: E402

from xmfax.document import write_tiff  # noqa: E402


@pytest.fixture(scope="module")
def page_dir():
    page, _ = load_page(400)
    d = tempfile.mkdtemp(prefix="xmfax-v21hs-")
    write_tiff(page, os.path.join(d, "tx.tif"))
    return page, d


@pytest.mark.parametrize("seed", [1, 5])
def test_spandsp_v27ter_page_at_20db_is_not_heard_as_v21(page_dir, seed):
    page, d = page_dir
    out = calls_snr.call(calls_snr.PAIRS["sx"], "V.27 ter 4800", 20.0, seed, page, d,
                         {"xmfax": -13.0, "spandsp": -14.0})
    assert out.kind == "ok", out
