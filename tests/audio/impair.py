"""Line impairments for the audio modem tests (numpy/scipy, not part of xmfax).

All functions take and return int16 sample arrays at 8 kHz (saturating at the int16
range); randomness comes from a ``numpy.random.Generator`` the caller passes (or a
seed), so every test is reproducible.

- :func:`at_level`   scale a signal to a mean power in dBm0
- :func:`gain`       change the level by some dB
- :func:`noise`      white Gaussian noise at a level in dBm0
- :func:`with_snr`   add white noise at a signal-to-noise ratio
- :func:`echo`       add a delayed, attenuated copy (a talker echo)
- :func:`drift`      sample-clock drift in ppm (band-limited resampling)
- :func:`g711_tandem` µ-law -> A-law -> µ-law coding
- :func:`freq_shift` a frequency offset (single sideband)
- :func:`speech_like`, :func:`voiced_speech` talk, for detector false alarms
- :func:`bit_errors` bit error count of a received stream against the sent one
- :func:`silence`, :func:`concat` to build line signals
"""
from __future__ import annotations

import math

import numpy as np

from xmfax.audio import g711

RATE = 8000


def _rng(rng) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def saturate(x) -> np.ndarray:
    return np.clip(np.rint(np.asarray(x, dtype=np.float64)), -32768, 32767).astype(np.int16)


def power(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x * x)) if len(x) else 0.0


def silence(n: int) -> np.ndarray:
    return np.zeros(int(n), dtype=np.int16)


def concat(*parts) -> np.ndarray:
    return np.concatenate([np.asarray(p, dtype=np.int16) for p in parts])


def gain(x, db: float) -> np.ndarray:
    return saturate(np.asarray(x, dtype=np.float64) * 10.0 ** (db / 20.0))


def at_level(x, level_dbm0: float, ref=None) -> np.ndarray:
    """``x`` scaled so that ``ref`` (default ``x``: pass the active part) is at ``level_dbm0``."""
    p = power(x if ref is None else ref)
    if p <= 0.0:
        raise ValueError("cannot set the level of silence")
    target = g711.dbm0_to_rms(level_dbm0)
    return saturate(np.asarray(x, dtype=np.float64) * (target / math.sqrt(p)))


def noise(n: int, level_dbm0: float, rng=None) -> np.ndarray:
    """n samples of white Gaussian noise at a mean power of ``level_dbm0``."""
    return saturate(_rng(rng).standard_normal(int(n)) * g711.dbm0_to_rms(level_dbm0))


def with_snr(x, snr_db: float, rng=None, ref=None) -> np.ndarray:
    """``x`` plus white Gaussian noise ``snr_db`` below the power of ``ref`` (default ``x``).

    Pass the active part of a signal as ``ref`` when ``x`` has silences around it."""
    p = power(x if ref is None else ref)
    sigma = math.sqrt(p / 10.0 ** (snr_db / 10.0))
    x = np.asarray(x, dtype=np.float64)
    return saturate(x + _rng(rng).standard_normal(len(x)) * sigma)


def echo(x, delay_ms: float, level_db: float = -20.0) -> np.ndarray:
    """``x`` plus itself delayed by ``delay_ms`` and attenuated by ``-level_db`` dB."""
    d = int(round(delay_ms * RATE / 1000.0))
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    if d < len(x):
        out[d:] += x[:len(x) - d] * 10.0 ** (level_db / 20.0)
    return saturate(out)


def drift(x, ppm: float, taps: int = 32) -> np.ndarray:
    """``x`` as heard by a receiver whose sample clock is ``ppm`` fast (negative: slow).

    Windowed-sinc interpolation at instants t_k = k * (1 + ppm/1e6) of the sender's
    clock; the output is shorter (fast) or longer (slow) accordingly."""
    x = np.asarray(x, dtype=np.float64)
    step = 1.0 + ppm * 1e-6
    n_out = int(math.floor((len(x) - 1) / step)) + 1
    t = np.arange(n_out) * step
    base = np.floor(t).astype(np.int64)
    frac = t - base
    half = taps // 2
    out = np.zeros(n_out)
    padded = np.concatenate([np.zeros(half), x, np.zeros(half + 1)])
    for j in range(-half + 1, half + 1):
        arg = j - frac
        w = np.sinc(arg) * (0.5 + 0.5 * np.cos(np.pi * arg / half))   # Hann-windowed sinc
        out += padded[base + j + half] * w
    return saturate(out)


def g711_tandem(x) -> np.ndarray:
    """``x`` after µ-law -> A-law -> µ-law coding (three G.711 hops)."""
    return g711.tandem(np.asarray(x, dtype=np.int16))


def sine(freq: float, n: int, level_dbm0: float, phase: float = 0.0) -> np.ndarray:
    """A sine at ``level_dbm0``, n samples."""
    k = np.arange(int(n))
    return saturate(g711.dbm0_to_peak(level_dbm0) * np.sin(2 * np.pi * freq * k / RATE + phase))


def speech_like(n: int, level_dbm0: float, rng=None) -> np.ndarray:
    """Noise shaped and gated like speech: a few formant-like bands (300-3400 Hz),
    syllables of 100-300 ms with pauses, for detector false-alarm tests."""
    from scipy import signal as sps

    r = _rng(rng)
    n = int(n)
    out = np.zeros(n)
    src = r.standard_normal(n)
    for lo, hi in ((300, 800), (900, 1500), (1600, 2600), (2700, 3400)):
        sos = sps.butter(2, [lo, hi], btype="bandpass", fs=RATE, output="sos")
        out += sps.sosfilt(sos, src) * r.uniform(0.3, 1.0)
    env = np.zeros(n)
    k = 0
    while k < n:
        on = int(r.uniform(0.1, 0.3) * RATE)
        off = int(r.uniform(0.05, 0.2) * RATE)
        env[k:k + on] = np.hanning(min(on, n - k) + 2)[1:-1] if on > 2 else 1.0
        k += on + off
    out *= env
    active = out[env > 0.1]
    scale = g711.dbm0_to_rms(level_dbm0) / math.sqrt(max(power(active), 1e-12))
    return saturate(out * scale)


def bit_errors(sent, received, max_lag: int = 400) -> tuple[int, int]:
    """(errors, bits compared) of ``received`` against ``sent``, aligned at the lag
    (up to ``max_lag`` leading bits of ``received`` skipped) that matches best.

    Bits of ``sent`` missing at the end of ``received`` count as errors."""
    s = np.asarray(sent, dtype=np.int8)
    r = np.asarray(received, dtype=np.int8)
    if not len(s):
        return 0, 0
    best = None
    head = min(len(s), 256)
    for lag in range(0, min(max_lag, max(len(r) - head, 0)) + 1):
        m = int(np.sum(r[lag:lag + head] == s[:head]))
        if best is None or m > best[0]:
            best = (m, lag)
    if best is None:
        return len(s), len(s)
    lag = best[1]
    got = r[lag:lag + len(s)]
    errors = int(np.sum(got != s[:len(got)])) + (len(s) - len(got))
    return errors, len(s)


_VOWELS = ((730, 1090, 2440), (270, 2290, 3010), (300, 870, 2240), (530, 1840, 2480),
           (660, 1720, 2410), (490, 1350, 1690), (570, 840, 2410), (440, 1020, 2240))


def voiced_speech(n: int, level_dbm0: float, rng=None) -> np.ndarray:
    """Vowel-like talk for detector false-alarm tests: a glottal pulse train whose pitch
    glides between 80 and 260 Hz (so its harmonics sweep across 1100 and 2100 Hz), through
    three formant resonators per vowel, in syllables of 80-400 ms with pauses, some of
    them held notes (a steady pitch for up to 600 ms, the hardest case)."""
    from scipy import signal as sps

    r = _rng(rng)
    n = int(n)
    out = np.zeros(n)
    k = 0
    while k < n:
        held = r.random() < 0.25
        dur = int(r.uniform(0.3, 0.6) * RATE) if held else int(r.uniform(0.08, 0.4) * RATE)
        dur = min(dur, n - k)
        f0a = r.uniform(80, 260)
        f0b = f0a if held else float(np.clip(f0a * r.uniform(0.7, 1.4), 80, 260))
        f0 = np.linspace(f0a, f0b, dur) * (1 + 0.01 * r.standard_normal(dur).cumsum() / 50)
        phase = np.cumsum(f0 / RATE)
        pulses = np.diff(np.floor(phase), prepend=0.0)                 # one per period
        src = sps.lfilter([1.0], [1.0, -0.95], pulses)                 # glottal roll-off
        y = np.zeros(dur)
        for fc in _VOWELS[r.integers(len(_VOWELS))]:
            bw = 80.0 + fc * 0.05
            rad = np.exp(-np.pi * bw / RATE)
            a = [1.0, -2 * rad * np.cos(2 * np.pi * fc / RATE), rad * rad]
            y += sps.lfilter([1.0 - rad], a, src)
        y *= np.hanning(dur) if dur > 2 else 1.0
        out[k:k + dur] = y
        k += dur + int(r.uniform(0.05, 0.25) * RATE)
    active = out[np.abs(out) > 1e-9]
    scale = g711.dbm0_to_rms(level_dbm0) / math.sqrt(max(power(active), 1e-12))
    return saturate(out * scale)


def freq_shift(x, hz: float) -> np.ndarray:
    """``x`` with every frequency moved by ``hz`` (single-sideband shift through the
    analytic signal), as an FDM carrier system with an offset does."""
    from scipy import signal as sps

    a = sps.hilbert(np.asarray(x, dtype=np.float64))
    k = np.arange(len(a))
    return saturate(np.real(a * np.exp(2j * np.pi * hz * k / RATE)))
