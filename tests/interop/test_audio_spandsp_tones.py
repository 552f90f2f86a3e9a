"""The fax tones against spandsp's modem_connect_tones_tx/rx, both ways: ours heard
and classified by spandsp, spandsp's by ours, at several levels and noise."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from xmfax.audio.tones import Tone, ToneOn, detect, generate

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import spandsp_audio as sa  # noqa: E402
from audio import impair  # noqa: E402

pytestmark = pytest.mark.interop
if sa.load() is None:
    pytest.skip(sa.unavailable_reason(), allow_module_level=True)

KINDS = [Tone.CNG, Tone.ANS, Tone.ANS_PR, Tone.ANSAM, Tone.ANSAM_PR]


def _spandsp_hears(x, tone) -> list[int]:
    rx = sa.ToneRx(sa.TONE_CNG if tone == Tone.CNG else sa.TONE_ANSAM_PR)
    try:
        rx.rx(x)
        return rx.detected()
    finally:
        rx.close()


def _ours(tone, level=-13.0):
    n = 3 * 8000 if tone == Tone.CNG else None
    return impair.concat(impair.silence(800), generate(tone, n, level_dbm0=level), impair.silence(1600))


def _theirs(tone, level=None):
    x = sa.tone_tx(int(tone), 3 * 8000 if tone == Tone.CNG else 36000)
    if level is not None:
        x = impair.at_level(x, level, ref=x[np.abs(x) > 0])
    return impair.concat(impair.silence(800), x, impair.silence(1600))


def _we_hear(x):
    return [e.tone for e in detect(x) if isinstance(e, ToneOn)]


@pytest.mark.parametrize("tone", KINDS)
def test_spandsp_classifies_our_tones(tone):
    assert _spandsp_hears(_ours(tone), tone)[-1] == int(tone)


@pytest.mark.parametrize("tone", KINDS)
def test_we_classify_spandsp_tones(tone):
    heard = _we_hear(_theirs(tone))
    assert heard and heard[-1] == tone, heard


@pytest.mark.parametrize("level", [-10.0, -30.0, -40.0])
@pytest.mark.parametrize("tone", [Tone.CNG, Tone.ANS, Tone.ANSAM])
def test_levels_both_ways(tone, level):
    assert _spandsp_hears(_ours(tone, level), tone), (tone, level)
    assert _we_hear(_theirs(tone, level)), (tone, level)


def _noisy(x, snr, rng):
    return impair.with_snr(x, snr, rng, ref=x[np.abs(x) > 0])


@pytest.mark.parametrize("tone", [Tone.CNG, Tone.ANS, Tone.ANSAM])
def test_noise_both_ways(tone):
    rng = np.random.default_rng(int(tone))
    # 20 dB SNR: spandsp's detector hears our tones, ours hears spandsp's
    assert _spandsp_hears(_noisy(_ours(tone, -20.0), 20.0, rng), tone)
    assert _we_hear(_noisy(_theirs(tone, -20.0), 20.0, rng))


@pytest.mark.parametrize("snr", [20.0, 10.0, 3.0])
@pytest.mark.parametrize("tone", [Tone.CNG, Tone.ANS, Tone.ANSAM])
def test_our_detector_no_worse_than_spandsps(tone, snr):
    # on spandsp's own tone in the same noise: wherever spandsp hears it, so do we
    # (measured: spandsp stops hearing CNG/ANS/ANSam at 15-10 dB SNR, ours at ~0 dB)
    rng = np.random.default_rng(100 + int(tone))
    noisy = _noisy(_theirs(tone, -20.0), snr, rng)
    we = bool(_we_hear(noisy))
    assert we >= bool(_spandsp_hears(noisy, tone))
    if snr >= 3.0:
        assert we


def test_neither_hears_tones_in_speech():
    for x in (impair.speech_like(20 * 8000, -12, np.random.default_rng(3)),
              impair.voiced_speech(40 * 8000, -12, 4)):
        assert _we_hear(x) == []
        assert _spandsp_hears(x, Tone.CNG) == [] and _spandsp_hears(x, Tone.ANS) == []
