"""Our transmitters into spandsp's receivers, near the noise threshold: no worse than
spandsp's own transmitter into the same receiver, measured in the same run.

At each rate, white noise at the lowest SNR where spandsp's own pair delivers (4,000
random bits with no error in at least 18 of 20 noise realisations: the spandsp>spandsp
column of ``benchmarks/audio.py --only snr``), each realisation with its own noise and its
own start offset (0-19 samples, so the symbols fall at every phase between samples):
spandsp's receiver delivers our signal in at least 18 of the 20 as well, and in no fewer
runs than its own transmitter's, less one.

The old table (every one of 3 runs, stopping at the first failure) said spandsp's receiver
needed 1-4 dB more with our transmitter (V.17 12000/9600, V.29 7200 at 19 dB against 15);
over 40 realisations the two transmitters fare the same at every rate (docs/audio.md, the
SNR section).  A worse transmitter fails here: a roll-off of 0.15 instead of V.29's
0.25 gives 16/20 at 17 dB (V.29 7200) and 17/20 at 21 dB (9600) where its own gives 19 and 18.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import spandsp_audio  # noqa: E402

pytestmark = pytest.mark.interop
spandsp_psk = spandsp_audio.require("spandsp_psk")

import audio_psk as ap  # noqa: E402  (benchmarks/audio_psk.py)
import audio_v17 as av  # noqa: E402  (benchmarks/audio_v17.py)

RUNS = 20
# spandsp>spandsp's lowest SNR (dB) with 18 of 20 runs clean, measured beside the others
SPANDSP_OWN = {("v17", 14400): 23.0, ("v17", 12000): 20.0, ("v17", 9600): 17.0, ("v17", 7200): 14.0,
               ("v29", 9600): 21.0, ("v29", 7200): 17.0, ("v27ter", 4800): 15.0, ("v27ter", 2400): 9.0}


def _clean_runs(tx: str, modem: str, rate: int, snr: float) -> int:
    """Runs (of RUNS) in which spandsp's receiver delivers 4,000 bits from ``tx`` with no error."""
    bits = np.random.default_rng(1).integers(0, 2, 4000).astype(np.uint8)
    if modem == "v17":
        errs = [av.link(tx, "spandsp", rate, bits, ap.noisy(snr, seed)) for seed in range(RUNS)]
    else:
        errs = [ap.link(tx, "spandsp", modem, rate, bits, ap.noisy(snr, seed)) for seed in range(RUNS)]
    return sum(1 for e in errs if e == 0)


@pytest.mark.parametrize("modem,rate", sorted(SPANDSP_OWN))
def test_spandsps_receiver_takes_ours_where_it_takes_its_own(modem, rate):
    snr = SPANDSP_OWN[modem, rate]
    theirs = _clean_runs("spandsp", modem, rate, snr)
    ours = _clean_runs("xmfax", modem, rate, snr)
    assert theirs >= 18, (theirs, "spandsp's own pair: the reference level has moved")
    assert ours >= 18 and ours >= theirs - 1, (ours, theirs)
