"""Driving the PSK/QAM modems (V.17, V.29, V.27 ter) in the tests of tests/audio: bits
through a transmitter, samples through a receiver, in blocks of any size.  Nothing
here is a test."""
from __future__ import annotations

import numpy as np

import impair


def data(n, seed=1):
    """``n`` random bits."""
    return np.random.default_rng(seed).integers(0, 2, n).astype(np.uint8)


def transmit(tx, bits, block=800, max_blocks=10_000):
    """Every sample ``tx`` sends for ``bits`` (generated ``block`` at a time), then 50 ms
    of silence."""
    tx.put_bits(bits)
    tx.finish()
    parts = []
    while not tx.done:
        parts.append(tx.generate(block))
        assert len(parts) < max_blocks
    return np.concatenate(parts + [np.zeros(400, np.int16)])


def receive(rx, x, block=160):
    """(rx, the bits it delivers, its events) for the samples ``x`` given ``block`` at a time."""
    got = [rx.receive(x[i:i + block]) for i in range(0, len(x), block)]
    return rx, np.concatenate(got), rx.events()


def feed_garbage(rx, raw, block):
    """Random bytes as samples into ``rx``; returns the bits it delivered."""
    x = np.frombuffer(raw[: len(raw) // 2 * 2], dtype=np.int16)
    total = 0
    for i in range(0, len(x), block):
        total += len(rx.receive(x[i:i + block]))
    return total, len(x)


def after_long_noise(signal):
    """2 s of noise at -40 dBm0 (above the carrier threshold), then ``signal`` in it."""
    x = np.concatenate([np.zeros(16000, np.int16), signal])
    return impair.saturate(x.astype(float) + impair.noise(len(x), -40.0, rng=3))
