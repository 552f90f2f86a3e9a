"""The judgement of benchmarks/audio_calls_snr.py (whole audio calls under noise, xmfax
beside spandsp): at a high SNR every pairing delivers the page at the rate; at a hopeless SNR
the call fails and is counted failed, never ok; a page that differs, or one that went at a
lower rate, is never counted ok; spandsp's sender is held to a rate below its family's top.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spandsp_fax_audio as sf  # noqa: E402

pytestmark = pytest.mark.interop

if sf.load() is None:
    pytest.skip(f"spandsp is not available: {sf.unavailable_reason()}", allow_module_level=True)

import audio_calls_snr as bench  # noqa: E402
from audio_rtp import load_page  # noqa: E402

from xmfax.document import write_tiff  # noqa: E402

LEVELS = {"xmfax": -13.0, "spandsp": -14.0}      # what measure_levels finds (checked below)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("callsnr"))
    pages, _ = load_page(120)
    write_tiff(pages, os.path.join(tmp, "tx.tif"))
    return pages, tmp


@pytest.mark.parametrize("pair", ["xx", "ss", "xs", "sx"])
def test_high_snr_every_pairing_delivers_at_the_rate(setup, pair):
    pages, tmp = setup
    o = bench.call(bench.PAIRS[pair], "V.29 9600", 35.0, 1, pages, tmp, LEVELS)
    assert (o.kind, o.rate) == ("ok", 9600), o


@pytest.mark.parametrize("pair", ["xx", "ss", "xs", "sx"])
def test_hopeless_snr_is_counted_failed(setup, pair):
    pages, tmp = setup
    o = bench.call(bench.PAIRS[pair], "V.17 14400", 0.0, 1, pages, tmp, LEVELS, limit=120.0)
    assert o.kind == "failed", o


def test_spandsp_sender_is_held_to_a_lower_rate(setup):
    # spandsp starts at V.17 14400; the line refuses that TCF and the page goes at 12000
    pages, tmp = setup
    o = bench.call(bench.PAIRS["ss"], "V.17 12000", None, 1, pages, tmp, LEVELS)
    assert (o.kind, o.rate) == ("ok", 12000), o


def test_bad_tcf_is_judged_bad_by_xmfax(setup):
    # the refused TCF really fails: an xmfax receiver hearing only it would answer FTT
    from xmfax.audio.v17 import V17Rx
    from xmfax.t30 import modem as M
    x = bench.bad_tcf(M.Modulation.V17_14400, np.full(160, 3000, np.int16))
    rx = V17Rx(14400)
    bits = np.concatenate([rx.receive(x[i:i + 160]) for i in range(0, len(x), 160)])
    assert len(bits) > 14400 and bits[200:14000].mean() > 0.99      # ones, not TCF's zeros


def test_levels_measured(setup):
    pages, tmp = setup
    assert bench.measure_levels(pages, tmp) == LEVELS


def test_classify_never_says_ok_wrongly(setup):
    pages, _ = setup
    good = [pages[0].image]
    bad = [pages[0].image.copy()]
    bad[0][10, 10] ^= True
    assert bench.classify(pages, good, True, True, 0, 9600, 9600) == "ok"
    assert bench.classify(pages, good, True, True, 0, 7200, 9600) == "fallback"
    assert bench.classify(pages, bad, True, True, 0, 9600, 9600) == "WRONG"
    assert bench.classify(pages, bad, True, True, 3, 9600, 9600) == "flagged"
    assert bench.classify(pages, good, True, True, 2, 9600, 9600) == "flagged"
    assert bench.classify(pages, good, True, False, 0, 9600, 9600) == "failed"
    assert bench.classify(pages, good, False, True, 0, 9600, 9600) == "failed"
    assert bench.classify(pages, [], False, False, 0, 0, 9600) == "failed"


def test_cell_text():
    assert bench.cell_text({20: (3, 3), 19: (3, 3), 18: (2, 3), 17: (0, 3)}, 20) == "19 (3/2/0)"
    assert bench.cell_text({20: (2, 3), 19: (0, 3)}, 20) == ">20 (2/0)"
    # a level all-ok below a failing one does not count: the cell is the end of the top run
    assert bench.cell_text({20: (3, 3), 19: (1, 3), 18: (3, 3), 17: (0, 3)}, 20) == "20 (3/1/3)"
