"""V.29 (xmfax/audio/v29.py over native/audio/v29.c): our transmitter into our receiver,
on a clean line and with impairments (tests/audio/impair.py).

Against spandsp: tests/interop/test_audio_spandsp_psk.py.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xmfax.audio.v29 import (CARRIER_DOWN, CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED,
                             V29Rx, V29Tx)

sys.path.insert(0, os.path.dirname(__file__))
import impair  # noqa: E402
from modem_io import after_long_noise, data, feed_garbage, receive, transmit  # noqa: E402

RATES = (9600, 7200)
BAUD = 2400


def send(rate, bits, *, tep=False, level=-10.0, block=800):
    return transmit(V29Tx(rate, tep=tep, level_dbm0=level), bits, block)


def recv(rate, x, block=160):
    return receive(V29Rx(rate), x, block)


@pytest.mark.parametrize("rate", RATES)
def test_clean_line_random_and_tcf(rate):
    for bits in (data(5000), np.zeros(rate * 3 // 2, np.uint8)):   # and a TCF: 1.5 s of zeros
        rx, got, events = recv(rate, send(rate, bits))
        kinds = [e.kind for e in events]
        assert kinds[:2] == [CARRIER_UP, TRAINING_SUCCEEDED]
        assert kinds[-1] == CARRIER_DOWN
        assert events[1].bit == 0
        assert np.array_equal(got[:len(bits)], bits)
        assert rx.state == "idle"


def test_training_sequence_shape():
    # V.29: segment 1 (48 symbols of silence), 2 (128 ABAB), 3 (384 C/D), 4 (48 ones)
    tx = V29Tx(9600)
    tx.finish()
    x = tx.generate_all()
    sps = 8000 / BAUD
    first = np.flatnonzero(x)[0]
    assert 48 * sps - 6 * sps <= first <= 48 * sps       # the shaping filter's lead-in
    end = np.flatnonzero(x)[-1] + 1
    assert (48 + 128 + 384 + 48 + 32) * sps <= end <= (48 + 128 + 384 + 48 + 32 + 12) * sps
    # segment 2 is two points alternating: its power is in lines at 1700 - 1200, 1700 and
    # 1700 + 1200 Hz
    seg2 = x[int(60 * sps):int(170 * sps)].astype(float)
    spec = np.abs(np.fft.rfft(seg2 * np.hanning(len(seg2)))) ** 2
    f = np.fft.rfftfreq(len(seg2), 1 / 8000)
    near = [spec[np.abs(f - line) < 40].sum() / spec.sum() for line in (500, 1700, 2900)]
    assert sum(near) > 0.95 and min(near) > 0.02, near


def _rrc(t, beta=0.25):
    """Root raised cosine, symbol period 1 (the 25 % roll-off of our V.29 shaper)."""
    t = np.asarray(t, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = ((np.sin(np.pi * t * (1 - beta)) + 4 * beta * t * np.cos(np.pi * t * (1 + beta)))
             / (np.pi * t * (1 - 16 * beta * beta * t * t)))
    edge = beta / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * beta))
                                + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta)))
    v = np.where(np.abs(np.abs(t) - 1 / (4 * beta)) < 1e-9, edge, v)
    return np.where(np.abs(t) < 1e-9, 1 - beta + 4 * beta / np.pi, v)


def _symbols(x, count):
    """The first ``count`` symbols of a V.29 signal by an ideal receiver: down from the
    1700 Hz carrier, a matched root raised cosine, sampled where our shaper puts symbol k's
    peak (6 symbols after it enters, from sample 0), scaled and turned so that segment 2's
    A points are at -3 (so only the ratios of Table 3 are checked, not the level)."""
    sps = 8000 / BAUD
    n = np.arange(len(x))
    bb = x.astype(float) * np.exp(-2j * np.pi * 1700 * n / 8000)
    ts = (np.arange(count) + 6) * sps
    m = np.floor(ts)[:, None].astype(np.int64) + np.arange(-30, 31)[None, :]
    inside = (m >= 0) & (m < len(bb))
    y = np.sum(np.where(inside, bb[np.clip(m, 0, len(bb) - 1)] * _rrc((ts[:, None] - m) / sps), 0), axis=1)
    return y * (-3.0 / np.mean(y[48:176:2]))


# Table 3/V.29: the training points A, B (segment 2) and C, D (segment 3) at each rate
TABLE_3 = {9600: (-3, 3 - 3j, 3, -3 + 3j), 7200: (-3, 1 - 1j, 3, -1 + 1j)}


@pytest.mark.parametrize("rate", RATES)
def test_training_points_are_table_3s(rate):
    # segment 2: 128 symbols A B A B from symbol 48; segment 3: 384 symbols, C for a 0 and
    # D for a 1 of the sequence 1 + x^-6 + x^-7 started at 0101010.  # Table 3/V.29
    tx = V29Tx(rate)
    tx.finish()
    y = _symbols(tx.generate_all(), 48 + 128 + 384)
    a, b, c, d = TABLE_3[rate]
    assert np.max(np.abs(y[:44])) < 0.05                  # segment 1: no energy
    seg2 = np.array([a, b] * 64)
    assert np.max(np.abs(y[48:176] - seg2)) < 0.1
    pattern = [0, 1, 0, 1, 0, 1, 0]
    while len(pattern) < 384:
        pattern.append(pattern[-6] ^ pattern[-7])
    seg3 = np.where(np.array(pattern) == 1, d, c)
    assert np.max(np.abs(y[176:560] - seg3)) < 0.1


@pytest.mark.parametrize("rate", RATES)
def test_any_block_size(rate):
    bits = data(2000, seed=3)
    ref = send(rate, bits, block=800)
    odd = send(rate, bits, block=29)
    assert np.array_equal(ref[:len(odd)], odd[:len(ref)])
    _, a, _ = recv(rate, ref, block=160)
    _, b, _ = recv(rate, ref, block=1)
    _, c, _ = recv(rate, ref, block=len(ref))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(a[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level", [-10.0, -26.0, -43.0])
def test_levels(rate, level):
    bits = data(3000, seed=4)
    x = send(rate, bits, level=level)
    _, got, events = recv(rate, x)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


def test_carrier_detect_levels():
    x = send(9600, data(600), level=-10.0)
    for level, expect in ((-43.0, True), (-49.0, False)):
        rx = V29Rx(9600)
        rx.receive(impair.at_level(x, level, ref=x[np.abs(x) > 0]))
        assert (CARRIER_UP in [e.kind for e in rx.events()]) is expect, level


@pytest.mark.parametrize("rate,snr", [(9600, 21.0), (7200, 17.0)])
def test_white_noise(rate, snr):
    bits = data(9600, seed=5)
    x = send(rate, bits)
    y = impair.with_snr(x, snr, rng=11, ref=x[np.abs(x) > 0])
    _, got, events = recv(rate, y)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
# ±0.01% at each end (the symbol rate tolerance) makes ±200 ppm between two modems
@pytest.mark.parametrize("ppm", [100.0, -100.0, 200.0, -200.0])
def test_clock_drift(rate, ppm):
    bits = data(rate * 4, seed=6)
    _, got, _ = recv(rate, impair.drift(send(rate, bits), ppm))
    assert np.array_equal(got[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
def test_g711_tandem_and_echo(rate):
    bits = data(4000, seed=8)
    x = send(rate, bits)
    _, got, _ = recv(rate, impair.g711_tandem(x))
    assert np.array_equal(got[:len(bits)], bits)
    _, got, _ = recv(rate, impair.echo(x, 20.0, -20.0))
    assert np.array_equal(got[:len(bits)], bits)


def test_echo_protection_tone_first():
    bits = data(1000, seed=7)
    x = send(9600, bits, tep=True)
    tone = x[:1400].astype(float)
    spec = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spec) * 8000 / len(tone) - 1700) < 10
    _, got, events = recv(9600, x)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


def test_noise_alone_never_trains():
    rx = V29Rx(9600)
    bits = rx.receive(impair.noise(16000, -20.0, rng=2))
    kinds = [e.kind for e in rx.events()]
    assert kinds[0] == CARRIER_UP
    assert TRAINING_SUCCEEDED not in kinds
    assert len(bits) == 0


def test_wrong_rate_never_trains():
    # segment 2 tells the rates apart (B/A is 3*sqrt(2)/3 at 9600, sqrt(2)/3 at 7200)
    bits = data(2000)
    for sent, expected in ((9600, 7200), (7200, 9600)):
        rx = V29Rx(expected)
        got = rx.receive(send(sent, bits))
        kinds = [e.kind for e in rx.events()]
        assert TRAINING_SUCCEEDED not in kinds and len(got) == 0
    rx = V29Rx(7200)
    rx.restart(9600)
    assert np.array_equal(rx.receive(send(9600, bits))[:2000], bits)


def test_two_transmissions_back_to_back():
    a, b = data(1200, seed=9), data(1300, seed=10)
    x = np.concatenate([send(9600, a), np.zeros(600, np.int16), send(9600, b)])
    _, got, events = recv(9600, x)
    starts = [e.bit for e in events if e.kind == TRAINING_SUCCEEDED]
    assert len(starts) == 2
    assert np.array_equal(got[:1200], a)
    assert np.array_equal(got[starts[1]:starts[1] + 1300], b)


def test_bad_arguments():
    with pytest.raises(ValueError):
        V29Tx(4800)
    with pytest.raises(ValueError):
        V29Rx(2400)
    with pytest.raises(ValueError):
        V29Tx(9600).put_bits(np.array([[0, 1]]))


@settings(max_examples=25)
@given(st.binary(min_size=0, max_size=4000), st.integers(min_value=1, max_value=500))
def test_garbage_in_never_crashes(raw, block):
    rx = V29Rx(9600)
    total, samples = feed_garbage(rx, raw, block)
    assert total <= 2 * samples
    for e in rx.events():
        assert e.kind in (CARRIER_UP, CARRIER_DOWN, TRAINING_FAILED, TRAINING_SUCCEEDED)


def test_training_after_long_noise_is_still_found():
    bits = data(3000, seed=13)
    rx, got, events = recv(9600, after_long_noise(send(9600, bits, level=-20.0)))
    kinds = [e.kind for e in events]
    assert kinds[:3] == [CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED]
    assert np.array_equal(got[:len(bits)], bits)
    # the end of the signal is seen 20 dB down, in the noise that goes on (which then
    # looks like a new carrier: it never trains)
    assert kinds[3] == CARRIER_DOWN
    assert TRAINING_SUCCEEDED not in kinds[4:]


@settings(max_examples=10)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=2500), st.sampled_from(RATES),
       st.integers(min_value=1, max_value=997))
def test_any_bits_any_blocks_round_trip(bits, rate, block):
    b = np.array(bits, np.uint8)
    _, got, events = recv(rate, send(rate, b, block=block), block=block)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(b)], b)


@pytest.mark.parametrize("rate", RATES)
def test_few_bits_after_the_end(rate):
    bits = data(3000, seed=14)
    _, got, events = recv(rate, np.concatenate([send(rate, bits), np.zeros(4000, np.int16)]))
    per_symbol = 4 if rate == 9600 else 3
    assert np.array_equal(got[:len(bits)], bits)
    assert np.all(got[len(bits):len(bits) + 24 * per_symbol] == 1)
    assert len(got) - len(bits) < (32 + 30) * per_symbol     # 2400 baud: more symbols a ms
    assert events[-1].kind == CARRIER_DOWN
