"""V.27 ter (xmfax/audio/v27ter.py over native/audio/v27ter.c): our transmitter into our
receiver, on a clean line and with impairments (tests/audio/impair.py).

Against spandsp: tests/interop/test_audio_spandsp_psk.py.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xmfax.audio.v27ter import (CARRIER_DOWN, CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED,
                                ModemStatus, V27terRx, V27terTx)

sys.path.insert(0, os.path.dirname(__file__))
import impair  # noqa: E402
from modem_io import after_long_noise, data, feed_garbage, receive, transmit  # noqa: E402

RATES = (4800, 2400)


def send(rate, bits, *, long_train=True, tep=False, level=-10.0, block=800):
    return transmit(V27terTx(rate, long_train=long_train, tep=tep, level_dbm0=level), bits, block)


def recv(rate, x, block=160):
    return receive(V27terRx(rate), x, block)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("long_train", [True, False])
def test_clean_line_random_and_tcf(rate, long_train):
    for bits in (data(3000), np.zeros(rate * 3 // 2, np.uint8)):   # random, and a TCF (1.5 s of zeros)
        rx, got, events = recv(rate, send(rate, bits, long_train=long_train))
        kinds = [e.kind for e in events]
        assert kinds[:2] == [CARRIER_UP, TRAINING_SUCCEEDED]
        assert kinds[-1] == CARRIER_DOWN
        assert events[1].bit == 0
        assert len(got) >= len(bits)
        assert np.array_equal(got[:len(bits)], bits)
        assert rx.state == "idle" and not rx.carrier


def test_training_lengths_follow_v27ter():
    # V.27 ter training: long train 50 + 1074 + 8 symbols, short 14 + 58 + 8, at the baud rate
    for rate, baud in ((4800, 1600), (2400, 1200)):
        for long_train, symbols in ((True, 50 + 1074 + 8), (False, 14 + 58 + 8)):
            tx = V27terTx(rate, long_train=long_train)
            tx.finish()
            x = tx.generate_all()
            end = np.flatnonzero(x)[-1] + 1
            # training + 32 turn-off symbols, then the shaping filter's delay and tail (12 symbols)
            sps = 8000 / baud
            assert (symbols + 32) * sps <= end <= (symbols + 32 + 12) * sps


def test_echo_protection_tone_then_silence():
    tx = V27terTx(4800, tep=True)
    tx.finish()
    x = tx.generate_all()
    tone = x[:1400].astype(float)
    spec = np.abs(np.fft.rfft(tone))
    assert abs(np.argmax(spec) * 8000 / len(tone) - 1800) < 10      # unmodulated 1800 Hz
    gap = x[int(0.2 * 8000):int(0.209 * 8000)]
    assert np.max(np.abs(gap)) < 50                                     # segment 2: silence
    rx, got, events = recv(4800, np.concatenate([x, np.zeros(400, np.int16)]))
    assert TRAINING_SUCCEEDED in [e.kind for e in events]


@pytest.mark.parametrize("rate", RATES)
def test_any_block_size(rate):
    bits = data(1500, seed=3)
    ref = send(rate, bits, block=800)
    odd = send(rate, bits, block=37)
    assert np.array_equal(ref[:len(odd)], odd[:len(ref)])
    _, a, _ = recv(rate, ref, block=160)
    _, b, _ = recv(rate, ref, block=1)
    _, c, _ = recv(rate, ref, block=len(ref))
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert np.array_equal(a[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level", [-10.0, -26.0, -43.0])
def test_levels(rate, level):
    bits = data(2000, seed=4)
    x = send(rate, bits, level=level)
    active = x[np.abs(x) > 0]
    assert abs(10 * np.log10(impair.power(active) / impair.g711.dbm0_to_rms(0.0) ** 2) - level) < 1.0
    _, got, events = recv(rate, x)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


def test_carrier_detect_levels():
    # on above -43 dBm0, off below -48 dBm0 (T.30 cut-off)
    x = send(4800, data(500), level=-10.0)
    for level, expect in ((-43.0, True), (-49.0, False)):
        rx = V27terRx(4800)
        rx.receive(impair.at_level(x, level, ref=x[np.abs(x) > 0]))
        assert (CARRIER_UP in [e.kind for e in rx.events()]) is expect, level


@pytest.mark.parametrize("rate,snr", [(4800, 17.0), (2400, 10.0)])
def test_white_noise(rate, snr):
    bits = data(6000, seed=5)
    x = send(rate, bits)
    y = impair.with_snr(x, snr, rng=11, ref=x[np.abs(x) > 0])
    _, got, events = recv(rate, y)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
# ±0.01% at each end (the symbol rate tolerance) makes ±200 ppm between two modems
@pytest.mark.parametrize("ppm", [100.0, -100.0, 200.0, -200.0])
def test_clock_drift(rate, ppm):
    bits = data(rate * 4, seed=6)          # 4 s: the drift slips 0.4 ms
    _, got, _ = recv(rate, impair.drift(send(rate, bits), ppm))
    assert np.array_equal(got[:len(bits)], bits)


@pytest.mark.parametrize("rate", RATES)
def test_g711_tandem_and_echo(rate):
    bits = data(3000, seed=8)
    x = send(rate, bits)
    _, got, _ = recv(rate, impair.g711_tandem(x))
    assert np.array_equal(got[:len(bits)], bits)
    _, got, _ = recv(rate, impair.echo(x, 20.0, -20.0))
    assert np.array_equal(got[:len(bits)], bits)


def test_noise_alone_never_trains():
    rx = V27terRx(4800)
    bits = rx.receive(impair.noise(16000, -20.0, rng=2))
    kinds = [e.kind for e in rx.events()]
    assert kinds[0] == CARRIER_UP
    assert TRAINING_SUCCEEDED not in kinds
    assert len(bits) == 0


def test_wrong_rate_fails_training_then_recovers_after_restart():
    for sent, expected in ((2400, 4800), (4800, 2400)):
        rx = V27terRx(expected)
        assert len(rx.receive(send(sent, data(1000)))) == 0
        assert TRAINING_SUCCEEDED not in [e.kind for e in rx.events()]
    x = send(4800, data(1000))
    rx.restart(4800)
    got = rx.receive(x)
    assert np.array_equal(got[:1000], data(1000))


def test_two_transmissions_back_to_back():
    a, b = data(800, seed=9), data(900, seed=10)
    x = np.concatenate([send(4800, a), np.zeros(600, np.int16), send(4800, b, long_train=False)])
    _, got, events = recv(4800, x)
    kinds = [e.kind for e in events]
    assert kinds.count(TRAINING_SUCCEEDED) == 2
    second = [e.bit for e in events if e.kind == TRAINING_SUCCEEDED][1]
    assert np.array_equal(got[:800], a)
    assert np.array_equal(got[second:second + 900], b)


def test_bad_arguments():
    with pytest.raises(ValueError):
        V27terTx(9600)
    with pytest.raises(ValueError):
        V27terRx(1200)
    with pytest.raises(ValueError):
        V27terTx(4800, level_dbm0=10.0)
    tx = V27terTx(4800)
    with pytest.raises(ValueError):
        tx.put_bits([0, 2])
    with pytest.raises(ValueError):
        tx.generate_all()                      # never ends without finish()
    tx.finish()
    with pytest.raises(ValueError):
        tx.put_bits([1])
    with pytest.raises(ValueError):
        V27terRx(4800).receive(np.zeros((2, 2), np.int16))
    with pytest.raises(ValueError):
        ModemStatus("bogus", 0)


def test_idle_fill_and_large_queues():
    # bits larger than the C queue, given in one call, all arrive
    bits = data(70000, seed=12)
    _, got, _ = recv(4800, send(4800, bits))
    assert np.array_equal(got[:len(bits)], bits)


@settings(max_examples=25)
@given(st.binary(min_size=0, max_size=4000), st.integers(min_value=1, max_value=500))
def test_garbage_in_never_crashes(raw, block):
    rx = V27terRx(4800)
    total, samples = feed_garbage(rx, raw, block)
    assert total <= samples
    for e in rx.events():
        assert e.kind in (CARRIER_UP, CARRIER_DOWN, TRAINING_FAILED, TRAINING_SUCCEEDED)


def test_training_after_long_noise_is_still_found():
    # noise above the carrier threshold for 2 s: training failure is reported once, the
    # receiver keeps looking and trains on the signal that follows
    bits = data(2000, seed=13)
    rx, got, events = recv(4800, after_long_noise(send(4800, bits, level=-20.0)))
    kinds = [e.kind for e in events]
    assert kinds[:3] == [CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED]
    assert np.array_equal(got[:len(bits)], bits)
    # the end of the signal is seen 20 dB down, in the noise that goes on (which then
    # looks like a new carrier: it never trains)
    assert kinds[3] == CARRIER_DOWN
    assert TRAINING_SUCCEEDED not in kinds[4:]


def test_shared_blocks_levels_and_pulse():
    from xmfax.audio import g711
    from xmfax.audio._c import lib
    # 0 dBm0 is the same mean square as xmfax.audio.g711's scale
    assert abs(lib.xm_dbm0_to_mean_square(0.0) / g711.dbm0_to_rms(0.0) ** 2 - 1.0) < 1e-3
    assert abs(lib.xm_mean_square_to_dbm0(lib.xm_dbm0_to_mean_square(-43.0)) + 43.0) < 1e-3
    # root raised cosine: peak 1 - b + 4b/pi, even, and its square sampled at the symbol
    # rate sums (over the pulse convolved with itself) to a Nyquist pulse
    for beta in (0.25, 0.5):
        assert abs(lib.xm_rrc(0.0, beta) - (1 - beta + 4 * beta / np.pi)) < 1e-9
        t = np.arange(-8 * 16, 8 * 16 + 1) / 16
        h = np.array([lib.xm_rrc(float(v), beta) for v in t])
        assert np.allclose(h, h[::-1])
        rc = np.convolve(h, h) / 16
        mid = len(rc) // 2
        taps = rc[mid % 16::16]
        centre = np.argmax(taps)
        assert abs(taps[centre] - 1.0) < 0.01
        assert np.max(np.abs(np.delete(taps, centre))) < 0.01


@settings(max_examples=10)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=1500), st.sampled_from(RATES),
       st.booleans(), st.integers(min_value=1, max_value=997))
def test_any_bits_any_blocks_round_trip(bits, rate, long_train, block):
    b = np.array(bits, np.uint8)
    _, got, events = recv(rate, send(rate, b, long_train=long_train, block=block), block=block)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(b)], b)


@pytest.mark.parametrize("rate", RATES)
def test_few_bits_after_the_end(rate):
    # the carrier is dropped once the line falls 12 dB under its level at training:
    # after the data only the turn-off ones (32 symbols) and a short tail come out
    bits = data(3000, seed=14)
    _, got, events = recv(rate, np.concatenate([send(rate, bits), np.zeros(4000, np.int16)]))
    per_symbol = 3 if rate == 4800 else 2
    assert np.array_equal(got[:len(bits)], bits)
    assert np.all(got[len(bits):len(bits) + 32 * per_symbol - 8 * per_symbol] == 1)
    assert len(got) - len(bits) < (32 + 20) * per_symbol
    assert events[-1].kind == CARRIER_DOWN
