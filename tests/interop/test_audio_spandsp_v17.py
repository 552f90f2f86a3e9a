"""V.17 against spandsp's modem (v17_tx/v17_rx through ctypes).

- xmfax's transmitter into spandsp's receiver and spandsp's into xmfax's, every rate,
  long training and short training after a long one, 0 bit errors on a clean line and
  with impairments; bit errors near the noise threshold no worse than spandsp into
  spandsp, measured in the same run (the full table: benchmarks/audio_v17.py);
- the training sequence of spandsp's transmitter, demodulated here by an ideal coherent
  receiver (numpy, the carrier and timing known), checked symbol by symbol against the
  rules native/audio/v17.c follows, and xmfax's training beside it;
- the signal points and trellis code of native/audio/v17_tables.h measured again on
  spandsp's transmitter (the way they were found: :func:`measure_labels`).
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
spandsp_v17 = spandsp_audio.require("spandsp_v17")

import audio_v17 as av  # noqa: E402  (benchmarks/audio_v17.py)
import impair  # noqa: E402  (tests/audio/impair.py)

DIRECTIONS = [("xmfax", "spandsp"), ("spandsp", "xmfax")]

BAUD = 2400                       # V.17 §2
CARRIER_HZ = 1800.0               # V.17 §2
SPS = 8000 / BAUD
SEG1 = 256                        # V.17 training, segment 1: alternations
SEG2_LONG, SEG2_SHORT = 2976, 38  # equaliser conditioning
SEG3 = 64                         # long training only (seen: the short one goes straight on)

# The training points, in the units of the 14400 constellation grid.
A, B, C, D = -6 - 2j, 2 - 6j, 6 + 2j, -2 + 6j
# Segment 2: two bits a symbol from the sequence of 1 + x^-18 + x^-23 run with no input
# (b[n] = b[n-18] ^ b[n-23]), first bit the low one of a label 0..3, each label a point.
SEG2_POINTS = (A, D, B, C)
# the 23 bits before segment 2, the oldest first (measured on spandsp's transmitter)
SEG2_HISTORY = 0x51322A


def bits(n, seed=1):
    return np.random.default_rng(seed).integers(0, 2, n).astype(np.uint8)


def _rrc(t, beta=0.25):
    t = np.asarray(t, dtype=np.float64)
    out = np.empty_like(t)
    small = np.abs(t) < 1e-9
    edge = np.abs(np.abs(t) - 1 / (4 * beta)) < 1e-9
    rest = ~(small | edge)
    x = t[rest]
    out[rest] = ((np.sin(np.pi * x * (1 - beta)) + 4 * beta * x * np.cos(np.pi * x * (1 + beta)))
                 / (np.pi * x * (1 - 16 * beta * beta * x * x)))
    out[small] = 1 - beta + 4 * beta / np.pi
    out[edge] = beta / np.sqrt(2) * ((1 + 2 / np.pi) * np.sin(np.pi / (4 * beta))
                                     + (1 - 2 / np.pi) * np.cos(np.pi / (4 * beta)))
    return out


def ideal_symbols(x: np.ndarray) -> np.ndarray:
    """Symbols of a V.17 signal by an ideal receiver: the carrier's phase and the symbol
    timing found on segment 1, a matched root
    raised cosine filter, the result scaled so that segment 1's points have |A|."""
    x = x.astype(np.float64)
    n = np.arange(len(x))
    bb = x * np.exp(-2j * np.pi * CARRIER_HZ * n / 8000)
    start = int(np.argmax(np.abs(x) > 100))
    span = np.arange(-24, 25)

    def at(ts):
        m = np.floor(ts)[:, None].astype(np.int64) + span[None, :]
        ok = (m >= 0) & (m < len(bb))
        h = _rrc((ts[:, None] - m) / SPS)
        return np.sum(np.where(ok, bb[np.clip(m, 0, len(bb) - 1)] * h, 0), axis=1)

    # the alternation is periodic whatever the timing, but its points are largest at the
    # symbol instants
    best = None
    for off in np.linspace(0, SPS, 60, endpoint=False):
        size = -np.mean(np.abs(at(start + off + np.arange(40, 200) * SPS)))
        if best is None or size < best[0]:
            best = (size, off)
    count = int((len(x) - start - best[1]) / SPS) - 10
    y = at(start + best[1] + np.arange(count) * SPS)
    # the carrier's phase (V.17 fixes none at turn-on): the turn that lays segment 1 on A B A
    # B; of the two ways to pair the points with A and B, one fits (a quarter turn maps A B
    # to B C or D A, never to B A)
    seg1 = y[20:200]
    fits = [np.vdot(seg1, np.array([(A, B)[(k + p) % 2] for k in range(len(seg1))])) for p in (0, 1)]
    turn = max(fits, key=abs)
    y = y * (turn / abs(turn))
    return y * (abs(A) / np.mean(np.abs(y[20:200])))


def lfsr_labels(count: int, history: int = SEG2_HISTORY) -> list[int]:
    hist = [(history >> (22 - i)) & 1 for i in range(23)]   # oldest first
    b = list(hist)
    for n in range(23, 23 + 2 * count):
        b.append(b[n - 18] ^ b[n - 23])
    b = b[23:]
    return [b[2 * k] | (b[2 * k + 1] << 1) for k in range(count)]


def _segments(y: np.ndarray):
    """(index of the first symbol of segment 1, the points rounded to the grid)."""
    q = np.round(y.real) + 1j * np.round(y.imag)
    # the first whole symbol: where 8 alternations in a row start (the one before is the
    # transmitter's first, half there)
    first = next(k for k in range(len(q) - 8)
                 if all(q[k + i] == (A, B)[i % 2] for i in range(8)))
    return first, q


@pytest.mark.parametrize("rate", spandsp_v17.RATES)
@pytest.mark.parametrize("short", [False, True])
def test_spandsp_pair_clean_line(rate, short):
    data = bits(6000, seed=rate)
    long_ = spandsp_v17.SpandspV17Tx(rate, data).all()
    rx = spandsp_v17.SpandspV17Rx(rate)
    try:
        rx.receive(np.concatenate([long_, np.zeros(400, np.int16)]))
        if short:      # spandsp accepts a short training only after a long one it received
            assert rx.trained
            rx.restart(rate, True)
            rx.bits, rx.status = [], []
            x = spandsp_v17.SpandspV17Tx(rate, data, short_train=True).all()
            rx.receive(np.concatenate([x, np.zeros(400, np.int16)]))
        assert rx.trained
        got = np.array(rx.bits, np.uint8)
        # the receiver also delivers the last training bits before the data
        lead = len(got) - len(data)
        assert lead >= 0
        assert np.array_equal(got[lead:lead + len(data)], data) or \
            any(np.array_equal(got[k:k + len(data)], data) for k in range(0, lead + 1))
    finally:
        rx.close()


@pytest.mark.parametrize("rate", [14400, 7200])
@pytest.mark.parametrize("short", [False, True])
def test_spandsp_training_follows_the_rules(rate, short):
    x = spandsp_v17.SpandspV17Tx(rate, bits(300), short_train=short).all()
    y = ideal_symbols(x)
    first, q = _segments(y)
    # an ideal receiver sees the points within a small fraction of the grid step
    n2 = SEG2_SHORT if short else SEG2_LONG
    assert np.max(np.abs(y[first:first + SEG1 + n2] - q[first:first + SEG1 + n2])) < 0.35
    seg1 = q[first:first + SEG1]
    assert list(seg1) == [A, B] * (SEG1 // 2)
    seg2 = q[first + SEG1:first + SEG1 + n2]
    assert [SEG2_POINTS[lab] for lab in lfsr_labels(n2)] == list(seg2)
    after = q[first + SEG1 + n2:first + SEG1 + n2 + 8]
    if short:
        # no bridge after a short training: trellis-coded points at once
        assert not all(p in (A, B, C, D) for p in after)
    else:
        bridge = q[first + SEG1 + n2:first + SEG1 + n2 + SEG3]
        assert all(p in (A, B, C, D) for p in bridge)
        assert not all(p in (A, B, C, D) for p in q[first + SEG1 + n2 + SEG3:][:8])


@pytest.mark.parametrize("rate", spandsp_v17.RATES)
@pytest.mark.parametrize("tx,rx", DIRECTIONS)
@pytest.mark.parametrize("short", [False, True])
def test_clean_line_both_ways(rate, tx, rx, short):
    for data in (bits(6000, seed=rate), np.zeros(rate * 3 // 2, np.uint8)):   # and a TCF
        assert av.link(tx, rx, rate, data, short=short) == 0


@pytest.mark.parametrize("tx,rx", DIRECTIONS)
@pytest.mark.parametrize("name,impairment", [
    ("-43 dBm0", None),
    ("+100 ppm", lambda x: impair.drift(x, 100.0)),
    ("-100 ppm", lambda x: impair.drift(x, -100.0)),
    ("tandem", impair.g711_tandem),
    ("echo 20 ms -25 dB", lambda x: impair.echo(x, 20.0, -25.0)),
    ("+7 Hz", lambda x: impair.freq_shift(x, 7.0)),
    ("-7 Hz", lambda x: impair.freq_shift(x, -7.0)),
])
def test_impairments_both_ways(tx, rx, name, impairment):
    data = bits(6000, seed=4)
    level = -43.0 if impairment is None else -10.0
    assert av.link(tx, rx, 14400, data, impairment, level_dbm0=level) == 0, name


# SNRs (dB) where spandsp into spandsp delivers 20000 bits with no error in 3 runs
# (benchmarks/audio_v17.py; xmfax's receiver does so 2-3 dB lower)
SPANDSP_CLEAN_SNR = {14400: 23.0, 12000: 21.0, 9600: 16.0, 7200: 14.0}


@pytest.mark.parametrize("rate", [14400, 9600])
def test_at_spandsps_own_threshold_both_ways_are_clean(rate):
    data = bits(8000, seed=5)
    snr = SPANDSP_CLEAN_SNR[rate] + 1.0
    for seed in (0, 1):
        assert av.link("spandsp", "spandsp", rate, data, av.noisy(snr, seed)) == 0
        assert av.link("spandsp", "xmfax", rate, data, av.noisy(snr, seed)) == 0
        assert av.link("xmfax", "spandsp", rate, data, av.noisy(snr, seed)) == 0


@pytest.mark.parametrize("rate", [14400, 7200])
def test_below_threshold_our_receiver_errs_no_more_than_spandsps(rate):
    # 2 dB under spandsp's threshold: spandsp into spandsp errs; spandsp into xmfax
    # (the same signals, the same noise) errs no more
    data = bits(8000, seed=6)
    snr = SPANDSP_CLEAN_SNR[rate] - 2.0
    ours = theirs = 0
    for seed in (0, 1, 2):
        theirs += av.link("spandsp", "spandsp", rate, data, av.noisy(snr, seed))
        ours += av.link("spandsp", "xmfax", rate, data, av.noisy(snr, seed))
    assert theirs > 0
    assert ours <= theirs


@pytest.mark.parametrize("rate", [14400, 7200])
@pytest.mark.parametrize("short", [False, True])
def test_our_training_is_spandsps(rate, short):
    from xmfax.audio.v17 import V17Tx
    tx = V17Tx(rate, long_train=not short)
    tx.put_bits(bits(300))
    tx.finish()
    ours = ideal_symbols(tx.generate_all())
    theirs = ideal_symbols(spandsp_v17.SpandspV17Tx(rate, bits(300), short_train=short).all())
    f1, q1 = _segments(ours)
    f2, q2 = _segments(theirs)
    n = SEG1 + (SEG2_SHORT if short else SEG2_LONG + SEG3)
    assert np.max(np.abs(ours[f1:f1 + n] - q1[f1:f1 + n])) < 0.35
    assert np.array_equal(q1[f1:f1 + n], q2[f2:f2 + n])


def measure_labels(rate: int, n_bits: int = 30000, seed: int = 7):
    """The label (Y1 Y2 Q3 .. Qb, with Y1 Y2 up to a common offset) of each signal point
    of spandsp's transmitter at ``rate``, found from what it sends for known random data:
    the descrambler's equations d[n] = s[n] ^ s[n-18] ^ s[n-23], with s the bits the
    points carry (Q1 = Y1 ^ Y1', Q2 = Y2 ^ Y2' ^ borrow, Q3.. as they are), are linear in
    the unknown bits of every point; Gaussian elimination over GF(2) solves them (Y1
    and Q3.. first, then Y2 with the borrows known).  Returns {point: label tuple}."""
    import itertools
    b = {14400: 6, 12000: 5, 9600: 4, 7200: 3}[rate]
    data = bits(n_bits, seed=seed)
    y = ideal_symbols(spandsp_v17.SpandspV17Tx(rate, data).all())
    first, _ = _segments(y)
    g = y * 2
    q = np.round(g.real) / 2 + 1j * np.round(g.imag) / 2
    pts = q[first + SEG1 + SEG2_LONG + SEG3:]
    nsym = 48 + n_bits // b
    pts = pts[:nsym]
    points = sorted(set(pts), key=lambda z: (z.real, z.imag))
    index = {p: i for i, p in enumerate(points)}
    sym = [index[p] for p in pts]
    npt = len(points)
    sent = np.concatenate([np.ones(48 * b, np.uint8), data])   # segment 4: ones

    def eliminate(rows):
        piv, bad = {}, 0
        for r, c in rows:
            while r:
                h = r.bit_length() - 1
                if h in piv:
                    r ^= piv[h][0]
                    c ^= piv[h][1]
                else:
                    piv[h] = (r, c)
                    break
            else:
                bad += c
        return piv, bad

    def back(piv, nvar, free_values=None, homogeneous=False):
        sol = [0] * nvar
        for v, f in (free_values or {}).items():
            sol[v] = f
        for h in sorted(piv):
            r, c = piv[h]
            c = 0 if homogeneous else c
            rest = r & ~(1 << h)
            while rest:
                low = rest & -rest
                c ^= sol[low.bit_length() - 1]
                rest ^= low
            sol[h] = c
        return sol

    def equations(term):
        rows = []
        for n in range(23 + b, nsym * b - 2 * b):
            parts = [term(n), term(n - 18), term(n - 23)]
            if any(p is None for p in parts):
                continue
            r, c = 0, int(sent[n])
            for pr, pc in parts:
                r ^= pr
                c ^= pc
            rows.append((r, c))
        return rows

    def var(j, p):            # j = 1 (Y1) or 3..b (Qj)
        return (0 if j == 1 else j - 2) * npt + p

    def term1(n):
        k, j = divmod(n, b)
        if k < 1 or j == 1:
            return None
        if j == 0:
            return (1 << var(1, sym[k])) ^ (1 << var(1, sym[k - 1])), 0
        return 1 << var(j + 1, sym[k]), 0

    nvar = npt * (b - 1)
    piv, bad = eliminate(equations(term1))
    assert bad == 0
    base = back(piv, nvar)
    # Y1 is known up to a flip of every point (the differential code); each Q bit may
    # have such a free flip too, which only the Q2 equations fix: try them
    free = [v for v in range(npt, nvar) if v not in piv]
    nulls = [back(piv, nvar, {f: 1}, homogeneous=True) for f in free]
    for flips in itertools.product((0, 1), repeat=len(free)):
        sol = list(base)
        for null, flip in zip(nulls, flips):
            if flip:
                sol = [x ^ z for x, z in zip(sol, null)]
        y1 = [sol[var(1, p)] for p in range(npt)]

        def term2(n):
            k, j = divmod(n, b)
            if k < 1:
                return None
            a, pa = sym[k], sym[k - 1]
            if j == 0:
                return 0, y1[a] ^ y1[pa]
            if j == 1:
                return (1 << a) ^ (1 << pa), int(y1[a] == 0 and y1[pa] == 1)
            return 0, sol[var(j + 1, a)]

        piv2, bad2 = eliminate(equations(term2))
        if bad2 == 0:
            y2 = back(piv2, npt)
            return {points[p]: (y1[p], y2[p]) + tuple(sol[var(j, p)] for j in range(3, b + 1))
                    for p in range(npt)}
    raise AssertionError("no labelling fits spandsp's signal")


@pytest.mark.parametrize("rate", [7200, 9600])
def test_tables_are_what_spandsp_sends(rate):
    """v17_tables.h against a fresh measurement: the same points, and the same labels
    but for the common offset of Y1 Y2 (a rotation the differential code ignores)."""
    import re
    text = open(os.path.join(HERE, "..", "..", "native", "audio", "v17_tables.h")).read()
    body = re.search(r"V17_POINTS_%d\[\d+\]\[2\] = \{(.*?)\};" % rate, text, re.S).group(1)
    coords = [complex(int(x), int(y)) for x, y in re.findall(r"\{(-?\d+), (-?\d+)\}", body)]
    measured = measure_labels(rate, n_bits=12000)
    assert set(measured) == set(coords)
    offsets = set()
    for label, p in enumerate(coords):
        y = (label >> 1) & 3
        m = measured[p]
        assert m[2:] == tuple((label >> (3 + j)) & 1 for j in range(len(m) - 2))
        offsets.add((m[0] | (m[1] << 1)) - y & 3)
    assert len(offsets) == 1


def _table(text: str, name: str, rate: int) -> list:
    import re
    body = re.search(r"%s_%d\[[^=]*= \{(.*?)\n\};" % (name, rate), text, re.S).group(1)
    return [[int(v) for v in re.findall(r"-?\d+", row)] for row in re.findall(r"\{([^{}]*)\}", body)]


@pytest.mark.parametrize("rate", spandsp_v17.RATES)
def test_trellis_code_is_what_spandsp_sends(rate):
    """Every point spandsp sends, looked up in v17_tables.h, gives (Y0, Y1 Y2); run from
    the right starting state, our trellis encoder (V17_NEXT, V17_Y0) predicts every Y0
    of a long transmission: the same 8-state code."""
    text = open(os.path.join(HERE, "..", "..", "native", "audio", "v17_tables.h")).read()
    coords = [complex(x, y) for x, y in _table(text, "V17_POINTS", rate)]
    nxt, y0 = _table(text, "V17_NEXT", rate), _table(text, "V17_Y0", rate)
    label_of = {p: i for i, p in enumerate(coords)}
    b = {14400: 6, 12000: 5, 9600: 4, 7200: 3}[rate]
    data = bits(4000 * b // 2, seed=8)
    y = ideal_symbols(spandsp_v17.SpandspV17Tx(rate, data).all())
    first, _ = _segments(y)
    g = y * 2
    q = np.round(g.real) / 2 + 1j * np.round(g.imag) / 2
    start = first + SEG1 + SEG2_LONG + SEG3
    labels = [label_of[p] for p in q[start:start + 48 + len(data) // b]]
    assert len(labels) > 1500
    fits = []
    for s0 in range(8):
        s, ok = s0, True
        for lab in labels:
            c = (lab >> 1) & 3
            if y0[s][c] != lab & 1:
                ok = False
                break
            s = nxt[s][c]
        fits.append(ok)
    assert fits.count(True) >= 1
    # and the code is no tautology: a wrong Y0 bit breaks it
    flipped = list(labels)
    flipped[700] ^= 1
    for s0 in range(8):
        s = s0
        for k, lab in enumerate(flipped):
            c = (lab >> 1) & 3
            if y0[s][c] != lab & 1:
                break
            s = nxt[s][c]
        else:
            pytest.fail("a changed Y0 still fits the code")


@pytest.mark.parametrize("rate", [14400, 9600])
def test_spandsps_long_training_where_we_expected_a_short_one(rate):
    from xmfax.audio.v17 import TRAINING_SUCCEEDED, V17Rx
    rx = V17Rx(rate)
    rx.receive(av.transmit("spandsp", rate, bits(600)))
    rx.events()
    rx.restart(rate, long_train=False)
    data = bits(5000, seed=10)
    got = rx.receive(av.transmit("spandsp", rate, data))
    assert [e.kind for e in rx.events()].count(TRAINING_SUCCEEDED) == 1
    assert np.array_equal(got[:len(data)], data)
