"""V.17 (xmfax/audio/v17.py over native/audio/v17.c): our transmitter into our receiver,
on a clean line and with impairments (tests/audio/impair.py), long and short training.

Against spandsp: tests/interop/test_audio_spandsp_v17.py.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xmfax.audio.v17 import (CARRIER_DOWN, CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED,
                             V17Rx, V17Tx)

sys.path.insert(0, os.path.dirname(__file__))
import impair  # noqa: E402
from modem_io import data, receive, transmit  # noqa: E402

RATES = (14400, 12000, 9600, 7200)
BAUD = 2400
SYMBOLS_LONG = 256 + 2976 + 64 + 48     # V.17 training: segments 1-4 of the long one
SYMBOLS_SHORT = 256 + 38 + 48


def send(rate, bits, *, long_train=True, tep=False, level=-10.0, block=800):
    tx = V17Tx(rate, long_train=long_train, tep=tep, level_dbm0=level)
    return transmit(tx, bits, block, max_blocks=4_000_000 // block + 100)


def recv(rate, x, block=160, rx=None):
    return receive(rx or V17Rx(rate), x, block)


@pytest.mark.parametrize("rate", RATES)
def test_clean_line_random_and_tcf(rate):
    for bits in (data(6000), np.zeros(rate * 3 // 2, np.uint8)):   # and a TCF: 1.5 s of zeros
        rx, got, events = recv(rate, send(rate, bits))
        kinds = [e.kind for e in events]
        assert kinds == [CARRIER_UP, TRAINING_SUCCEEDED, CARRIER_DOWN]
        assert events[1].bit == 0
        # exactly the data first (no training bits), then the turn-off's ones
        assert np.array_equal(got[:len(bits)], bits)
        assert np.all(got[len(bits):len(bits) + 100] == 1)
        assert rx.state == "idle"


@pytest.mark.parametrize("rate", RATES)
def test_short_training_after_a_long_one(rate):
    rx, got, _ = recv(rate, send(rate, data(1000, seed=2)))
    assert np.array_equal(got[:1000], data(1000, seed=2))
    rx.restart(rate, long_train=False)
    bits = data(5000, seed=3)
    x = send(rate, bits, long_train=False)
    _, got, events = recv(rate, x, rx=rx)
    assert [e.kind for e in events] == [CARRIER_UP, TRAINING_SUCCEEDED, CARRIER_DOWN]
    assert np.array_equal(got[:len(bits)], bits)


def test_a_short_training_alone_does_not_train():
    # nothing learnt before: 38 symbols of segment 2 are too few for the equaliser
    rx = V17Rx(14400)
    rx.restart(14400, long_train=False)
    _, got, events = recv(14400, send(14400, data(3000), long_train=False), rx=rx)
    kinds = [e.kind for e in events]
    assert TRAINING_SUCCEEDED not in kinds
    assert TRAINING_FAILED in kinds


@pytest.mark.parametrize("long_train,symbols", [(True, SYMBOLS_LONG), (False, SYMBOLS_SHORT)])
def test_training_length(long_train, symbols):
    # the signal lasts the training, the data and the turn-off (48 symbols + filter tail)
    rate = 9600
    n_data = 4 * 600
    x = send(rate, data(n_data), long_train=long_train)
    active = np.flatnonzero(x)
    length = (active[-1] - active[0] + 1) / 8000 * BAUD
    expect = symbols + 600 + 48
    assert expect - 2 <= length <= expect + 14


def test_tep_then_training():
    bits = data(3000)
    x = send(14400, bits, tep=True)
    # 190 ms of unmodulated carrier (one frequency: 1800 Hz) before the training
    head = x[np.flatnonzero(x)[0]:][400:1200].astype(float)
    spec = np.abs(np.fft.rfft(head * np.hanning(len(head))))
    assert abs(np.argmax(spec) * 8000 / len(head) - 1800) < 15
    _, got, events = recv(14400, x)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:len(bits)], bits)


@pytest.mark.parametrize("block", [1, 7, 160, 333, 100000])
def test_any_block_size_same_samples_and_bits(block):
    bits = data(2400, seed=5)
    ref = send(12000, bits, block=800)
    other = send(12000, bits, block=block)
    n = max(np.flatnonzero(ref)[-1], np.flatnonzero(other)[-1]) + 1
    assert np.array_equal(other[:n], ref[:n])
    _, ref_bits, _ = recv(12000, ref)
    _, got, _ = recv(12000, ref, block=block)
    assert np.array_equal(got, ref_bits)


@pytest.mark.parametrize("rate,snr", [(14400, 24.0), (12000, 21.0), (9600, 18.0), (7200, 15.0)])
def test_white_noise(rate, snr):
    bits = data(8000, seed=rate)
    x = send(rate, bits)
    active = x[np.abs(x) > 0]
    for seed in (1, 2):
        _, got, events = recv(rate, impair.with_snr(x, snr, rng=seed, ref=active))
        assert TRAINING_SUCCEEDED in [e.kind for e in events]
        assert impair.bit_errors(bits, got)[0] == 0


def test_noise_beyond_the_code_gives_errors_not_a_hang():
    bits = data(4000)
    x = send(14400, bits)
    noisy = impair.with_snr(x, 8.0, rng=1, ref=x[np.abs(x) > 0])
    rx, got, events = recv(14400, noisy)
    kinds = [e.kind for e in events]
    assert TRAINING_SUCCEEDED not in kinds or impair.bit_errors(bits, got)[0] > 0
    assert kinds[0] == CARRIER_UP


@pytest.mark.parametrize("rate", [14400, 7200])
@pytest.mark.parametrize("name,impairment", [
    ("-43 dBm0", None),
    ("+100 ppm", lambda x: impair.drift(x, 100.0)),
    ("-100 ppm", lambda x: impair.drift(x, -100.0)),
    ("tandem", impair.g711_tandem),
    ("echo 30 ms -25 dB", lambda x: impair.echo(x, 30.0, -25.0)),
    ("+7 Hz", lambda x: impair.freq_shift(x, 7.0)),
])
def test_impairments(rate, name, impairment):
    bits = data(6000, seed=9)
    x = send(rate, bits, level=-43.0 if impairment is None else -10.0)
    if impairment is not None:
        x = impairment(x)
    _, got, events = recv(rate, x)
    assert TRAINING_SUCCEEDED in [e.kind for e in events], name
    assert impair.bit_errors(bits, got)[0] == 0, name


def test_carrier_levels():
    # T.30 §5.2.3.3: a carrier at -43 dBm0 is received, one below -48 dBm0 is not
    bits = data(1200)
    rx, _, events = recv(7200, send(7200, bits, level=-52.0))
    assert events == []
    assert not rx.carrier
    rx, _, events = recv(7200, send(7200, bits, level=-43.0))
    assert [e.kind for e in events][:2] == [CARRIER_UP, TRAINING_SUCCEEDED]


def test_noise_alone_fails_training_once_per_carrier():
    x = impair.noise(8000 * 2, -20.0, rng=3)
    rx, got, events = recv(9600, x)
    kinds = [e.kind for e in events]
    assert kinds[0] == CARRIER_UP
    assert kinds.count(TRAINING_FAILED) == 1
    assert TRAINING_SUCCEEDED not in kinds
    assert len(got) == 0
    assert rx.state == "failed"


def test_two_carriers_in_a_row_and_a_gap():
    a, b = data(3000, seed=11), data(3000, seed=12)
    x = np.concatenate([send(14400, a), np.zeros(1600, np.int16), send(14400, b)])
    _, got, events = recv(14400, x)
    kinds = [e.kind for e in events]
    assert kinds == [CARRIER_UP, TRAINING_SUCCEEDED, CARRIER_DOWN] * 2
    second = events[4].bit
    assert np.array_equal(got[:3000], a)
    assert np.array_equal(got[second:second + 3000], b)


def test_bad_parameters():
    with pytest.raises(ValueError):
        V17Tx(4800)
    with pytest.raises(ValueError):
        V17Rx(2400)
    rx = V17Rx(9600)
    with pytest.raises(ValueError):
        rx.restart(4800)
    with pytest.raises(ValueError):
        rx.receive(np.zeros((2, 2), np.int16))


@settings(max_examples=12)
@given(rate=st.sampled_from(RATES), n=st.integers(0, 700), seed=st.integers(0, 2**31 - 1),
       block=st.integers(1, 500))
def test_property_any_bits_come_back(rate, n, seed, block):
    bits = data(n, seed=seed)
    _, got, events = recv(rate, send(rate, bits), block=block)
    assert TRAINING_SUCCEEDED in [e.kind for e in events]
    assert np.array_equal(got[:n], bits)


@pytest.mark.parametrize("rate", [14400, 7200])
def test_a_long_training_where_a_short_one_was_expected(rate):
    # the receiver armed for a short training gets a long one: it sees segment 2 go on,
    # trains on all of it and says so once
    rx, _, _ = recv(rate, send(rate, data(600)))
    rx.restart(rate, long_train=False)
    bits = data(4000, seed=4)
    _, got, events = recv(rate, send(rate, bits), rx=rx)
    assert [e.kind for e in events] == [CARRIER_UP, TRAINING_SUCCEEDED, CARRIER_DOWN]
    assert events[1].bit == 0
    assert np.array_equal(got[:len(bits)], bits)


def test_the_end_of_a_signal_in_noise_louder_than_the_cut_off():
    # noise 25 dB under a -13 dBm0 signal (-38 dBm0) goes on after it: the carrier is
    # down once the line is 12 dB under its training level for 40 ms, once, and the next signal
    # through the same noise is heard
    a, b = data(6000, seed=21), data(6000, seed=22)
    gap = np.zeros(8000, np.int16)
    x = np.concatenate([send(14400, a, level=-13.0), gap, send(14400, b, level=-13.0), gap])
    y = impair.with_snr(x, 25.0, rng=4, ref=x[np.abs(x) > 0])
    _, got, events = recv(14400, y)
    kinds = [e.kind for e in events]
    assert kinds == [CARRIER_UP, TRAINING_SUCCEEDED, CARRIER_DOWN] * 2
    assert impair.bit_errors(a, got[:events[2].bit])[0] == 0
    # the turn-off (48 symbols) and 40 ms of the noise after it, not seconds of noise
    assert events[2].bit - len(a) < 1500
    second = events[4].bit
    assert np.array_equal(got[second:second + len(b)], b)


def test_a_lost_packet_is_ridden_through():
    # 20 ms of silence in the data (a lost RTP packet, no concealment): the carrier stays
    # up, the bits around the gap come through, the gap's own are lost
    bits = data(12000, seed=23)
    x = send(14400, bits, level=-13.0)
    cut = 8000 * 2
    x[cut:cut + 160] = 0
    _, got, events = recv(14400, x)
    # (the gap said by DROPOUT ... RESUMED: native/audio/hold.h)
    assert [e.kind for e in events] == [CARRIER_UP, TRAINING_SUCCEEDED, "dropout", "resumed", CARRIER_DOWN]
    assert np.array_equal(got[:2000], bits[:2000])
    assert np.array_equal(got[len(bits) - 2000:len(bits)], bits[-2000:])
