"""Fax tones: the generators measured against T.30/V.25/V.8, the detector's tolerances
(frequency, level, noise) and its rejections (other tones, speech, noise)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal as sps

from xmfax.audio import g711
from xmfax.audio.tones import (Tone, ToneDetector, ToneDetectorConfig, ToneGenerator,
                               ToneOff, ToneOn, detect, generate)

from . import impair

RATE = 8000


def _peak_hz(x):
    spec = np.abs(np.fft.rfft(x.astype(float) * np.hanning(len(x)), 8 * len(x)))
    return np.argmax(spec) * RATE / (8 * len(x))


def _ons(events):
    return [e for e in events if isinstance(e, ToneOn)]


def _pad(x, before=800, after=800):
    return impair.concat(impair.silence(before), x, impair.silence(after))


# ----------------------------------------------------------------- generators

def test_cng_cadence_frequency_level():
    x = generate(Tone.CNG, 2 * 28000)                 # two cycles of 0.5 s on, 3 s off
    on = np.convolve(np.abs(x), np.ones(9), "same") > 0       # bridge the sine's zeros
    edges = np.flatnonzero(np.diff(on[8:].astype(int))) + 8
    # on from 0 to 0.5 s, off to 3.5 s, on again (T.30 CNG)
    assert np.all(np.abs(edges[:3] - [4000, 28000, 32000]) <= 5), edges
    assert abs(_peak_hz(x[:4000]) - 1100) < 1
    assert abs(g711.level_dbm0(x[:4000]) - (-13.0)) < 0.05


@pytest.mark.parametrize("tone", [Tone.ANS, Tone.ANS_PR, Tone.ANSAM, Tone.ANSAM_PR])
def test_ans_family_duration_frequency_level(tone):
    x = generate(tone, level_dbm0=-10.0)
    assert len(x) == 26400                             # 3.3 s, inside T.30's 2.6-4 s
    assert abs(_peak_hz(x[:3600]) - 2100) < 1                # before the first reversal
    assert abs(g711.level_dbm0(x) - (-10.0)) < 0.1
    g = ToneGenerator(tone, duration_ms=2600)
    assert len(g.samples(30000)) == 20800 and g.done


def _phase_track(x, f):
    k = np.arange(len(x))
    z = x * np.exp(-2j * np.pi * f * k / RATE)
    return np.angle(np.convolve(z, np.ones(40), "same"))


@pytest.mark.parametrize("tone,reversals", [(Tone.ANS, False), (Tone.ANS_PR, True),
                                            (Tone.ANSAM_PR, True)])
def test_phase_reversals_every_450_ms(tone, reversals):
    x = generate(tone).astype(float)
    ph = np.unwrap(_phase_track(x, 2100)[100:-100])
    jumps = np.flatnonzero(np.abs(np.diff(ph[::40])) > 2.5) * 40 + 100
    if not reversals:
        assert len(jumps) == 0
        return
    # V.25: a 180 degree reversal every 450 ms +/- 25 ms
    assert len(jumps) == 26400 // 3600
    assert np.all(np.abs(np.diff(jumps) - 3600) <= 40)


@pytest.mark.parametrize("tone", [Tone.ANSAM, Tone.ANSAM_PR])
def test_ansam_modulation(tone):
    x = generate(tone).astype(float)
    env = np.abs(sps.hilbert(x))[400:-400]
    spec = np.abs(np.fft.rfft(env - env.mean()))
    freqs = np.fft.rfftfreq(len(env), 1 / RATE)
    assert abs(freqs[np.argmax(spec)] - 15.0) < 0.2          # V.8: 15 Hz
    depth = (np.percentile(env, 99.5) - np.percentile(env, 0.5)) / (2 * env.mean())
    assert 0.17 < depth < 0.23                               # 20% +/- 1% (+ measuring)


def test_generator_arguments():
    with pytest.raises(ValueError):
        ToneGenerator(7)
    with pytest.raises(ValueError):
        ToneGenerator(Tone.CNG, level_dbm0=10.0)
    with pytest.raises(ValueError):
        generate(Tone.CNG)                                   # endless
    assert len(generate(Tone.CNG, duration_ms=1000)) == 8000
    assert Tone.CED == Tone.ANS


# ----------------------------------------------------------------- detector

@pytest.mark.parametrize("tone", list(Tone)[:5])
def test_detects_and_classifies_each_tone(tone):
    ev = detect(_pad(generate(tone, 3 * 8000 if tone == Tone.CNG else None)))
    ons = _ons(ev)
    assert ons, ev
    if tone == Tone.CNG:
        assert [e.tone for e in ons] == [Tone.CNG]
        off = [e for e in ev if isinstance(e, ToneOff)]
        assert len(off) == 1 and 490 <= off[0].duration_ms <= 510      # measured to 5 ms
        assert ons[0].sample < 800 + 4000                   # heard before the burst ends
    else:
        assert ons[-1].tone == tone                          # PR kinds once a reversal is heard
        assert ons[0].tone in (Tone.ANS, Tone.ANSAM)
        assert ons[0].tone == (Tone.ANSAM if tone >= Tone.ANSAM else Tone.ANS)
        assert ons[0].sample <= 800 + 4400                  # within 450 ms
        off = [e for e in ev if isinstance(e, ToneOff)]
        assert len(off) == 1 and 3290 <= off[0].duration_ms <= 3310
    assert abs(ons[0].level_dbm0 - (-13.0)) < 1.0


@pytest.mark.parametrize("offset", [-38, -20, 0, 20, 38])
def test_cng_frequency_tolerance(offset):
    x = _pad(impair.sine(1100 + offset, 4000, -20))
    ons = _ons(detect(x))
    assert [e.tone for e in ons] == [Tone.CNG]
    assert abs(ons[0].freq_hz - (1100 + offset)) < 3


@pytest.mark.parametrize("offset", [-15, -8, 0, 8, 15])
def test_ans_frequency_tolerance(offset):
    x = _pad(impair.sine(2100 + offset, 8000, -20))
    ons = _ons(detect(x))
    assert [e.tone for e in ons] == [Tone.ANS]
    assert abs(ons[0].freq_hz - (2100 + offset)) < 3


@pytest.mark.parametrize("freq", [1000, 1040, 1160, 1200, 1300,     # 1300 Hz: V.25 calling tone
                                  2050, 2140, 2225,                  # 2225 Hz: Bell 103 answer
                                  1650, 1850, 1800, 400, 3000])
def test_other_tones_are_not_fax_tones(freq):
    assert _ons(detect(_pad(impair.sine(freq, 16000, -15)))) == []


def test_v21_flags_are_not_tones():
    from xmfax.audio import v21
    x = v21.modulate([b"\xff\x13\x80" + bytes(20)])
    assert _ons(detect(_pad(x))) == []


@pytest.mark.parametrize("level,heard", [(-10, True), (-30, True), (-42, True), (-45, False),
                                         (-55, False)])
def test_level_threshold(level, heard):
    for tone in (Tone.CNG, Tone.ANS):
        x = _pad(generate(tone, 8000, level_dbm0=level))
        assert bool(_ons(detect(x))) == heard, (tone, level)


def test_cng_cadence_measured_in_noise():
    # the on and off times of CNG (0.5 s / 3 s) come out of the events to within 10 ms
    rng = np.random.default_rng(8)
    clean = generate(Tone.CNG, 3 * 28000, level_dbm0=-25)
    ev = detect(impair.with_snr(_pad(clean), 10, rng, ref=clean[:4000]))
    offs = [e for e in ev if isinstance(e, ToneOff)]
    assert len(offs) == 3 and all(abs(e.duration_ms - 500) <= 10 for e in offs)
    ends = [e.sample - e.duration_ms * 8 for e in offs]            # the bursts' starts
    assert all(abs(b - a - 28000) <= 80 for a, b in zip(ends, ends[1:]))


def test_hysteresis_keeps_a_fading_tone():
    # heard at -42 dBm0, a tone that fades to -46 dBm0 (above the -48 off level) stays on
    x = np.concatenate([impair.sine(2100, 8000, -42), impair.sine(2100, 8000, -46)])
    ev = detect(_pad(x))
    offs = [e for e in ev if isinstance(e, ToneOff)]
    assert len(_ons(ev)) == 1 and len(offs) == 1 and offs[0].duration_ms > 1900


@pytest.mark.parametrize("snr", [20, 10, 6])
def test_tones_in_white_noise(snr):
    rng = np.random.default_rng(snr)
    for tone in (Tone.CNG, Tone.ANS, Tone.ANSAM):
        clean = generate(tone, 8000, level_dbm0=-20)
        x = impair.with_snr(_pad(clean), snr, rng, ref=clean)
        ons = _ons(detect(x))
        assert ons and ons[0].tone == tone, (tone, snr, ons)


def test_no_tone_in_speech_like_noise_or_white_noise():
    rng = np.random.default_rng(5)
    for level in (-10, -25):
        assert _ons(detect(impair.speech_like(30 * RATE, level, rng))) == []
        assert _ons(detect(impair.noise(30 * RATE, level, rng))) == []


def test_no_tone_in_voiced_speech():
    # pitch harmonics sweep through 1100 and 2100 Hz, some notes held for 600 ms
    for seed in range(3):
        for level in (-10, -25):
            assert _ons(detect(impair.voiced_speech(40 * RATE, level, seed))) == []


def test_tone_under_speech():
    # a CED with someone talking over it 10 dB down is still CED
    rng = np.random.default_rng(9)
    ced = generate(Tone.ANS, level_dbm0=-15)
    x = impair.saturate(ced.astype(float) + impair.speech_like(len(ced), -25, rng))
    assert _ons(detect(x))[0].tone == Tone.ANS


@pytest.mark.parametrize("shift", [-10.0, 10.0])
def test_detects_with_a_frequency_offset(shift):
    for tone in (Tone.CNG, Tone.ANSAM_PR):
        ev = _ons(detect(_pad(impair.freq_shift(generate(tone, 3 * 8000), shift))))
        nominal = 1100.0 if tone == Tone.CNG else 2100.0
        assert ev[-1].tone == tone and abs(ev[0].freq_hz - (nominal + shift)) < 2


def test_detects_after_g711_tandem_and_drift():
    for tone in (Tone.CNG, Tone.ANSAM_PR):
        x = generate(tone, 4 * 8000)
        x = impair.drift(impair.g711_tandem(x), 100)
        assert _ons(detect(_pad(x)))[-1].tone == tone


def test_only_the_tones_asked_for():
    x = _pad(impair.concat(generate(Tone.CNG, 8000), generate(Tone.ANS)))
    assert {e.tone for e in _ons(detect(x, ToneDetectorConfig(detect_ans=False)))} == {Tone.CNG}
    assert {e.tone for e in _ons(detect(x, ToneDetectorConfig(detect_cng=False)))} == {Tone.ANS}


@settings(max_examples=25)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=40))
def test_blocks_of_any_size_give_the_same_events(cuts):
    x = _pad(impair.concat(generate(Tone.CNG, 6000), generate(Tone.ANSAM_PR, 12000)))
    whole = ToneDetector().receive(x)
    d = ToneDetector()
    got, pos = [], 0
    for c in cuts:
        got += d.receive(x[pos:pos + c])
        pos += c
    got += d.receive(x[pos:])
    assert got == whole and d.samples_received == len(x)


@settings(max_examples=20)
@given(st.sampled_from(list(Tone)[:5]), st.lists(st.integers(0, 5000), max_size=20))
def test_generator_blocks_of_any_size(tone, cuts):
    whole = ToneGenerator(tone, duration_ms=2000).samples(20000)
    g = ToneGenerator(tone, duration_ms=2000)
    parts = [g.samples(c) for c in cuts] + [g.samples(20000)]
    assert np.array_equal(np.concatenate(parts), whole) and len(whole) == 16000 and g.done


@settings(max_examples=30)
@given(st.binary(min_size=2, max_size=6000))
def test_fuzz_detector_random_samples(raw):
    ev = ToneDetector().receive(np.frombuffer(raw[: len(raw) // 2 * 2], np.int16))
    assert all(isinstance(e, (ToneOn, ToneOff)) for e in ev)


def test_config_validation():
    with pytest.raises(ValueError):
        ToneDetectorConfig(on_dbm0=-50, off_dbm0=-40)
    with pytest.raises(ValueError):
        ToneDetectorConfig(min_purity=0)
    with pytest.raises(ValueError):
        ToneDetectorConfig(cng_tolerance_hz=150)
    with pytest.raises(ValueError):
        ToneDetector().receive(np.zeros((2, 2), np.int16))
