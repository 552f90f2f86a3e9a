"""Riding through a dropout (native/audio/hold.c in V.29 and V.27 ter; V.17's own LOST_HOLD):
a lost 20 ms RTP packet is 20 ms of silence in the middle of a signal.

- A gap of 10, 20 or 40 ms anywhere in the data: the carrier stays up, the bits after the gap
  are right again within GAP_SLACK bits of the gap's end, and none is lost or added (the
  receiver resumes on the far end's timing).
- A gap of 60 ms, or the true end: CarrierDown, at the gap's start (no bit of the gap is
  delivered), at most HOLD_MS + DETECT_MS after the signal stopped.
- What follows a page's end or a gap and is NOT the data resuming (the V.21 post-page
  command, a new training, noise, the signal back at another level) is never taken as the
  data: the carrier goes down where the data stopped, the V.21 frame is heard, a new
  training trains.
"""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from xmfax.audio.v17 import V17Rx, V17Tx
from xmfax.audio.v21 import HdlcFrame, V21Config, V21Receiver, V21Transmitter
from xmfax.audio.v27ter import CARRIER_DOWN, TRAINING_SUCCEEDED, V27terRx, V27terTx
from xmfax.audio.v29 import V29Rx, V29Tx
from xmfax.t30.frames import FCF, Frame

sys.path.insert(0, os.path.dirname(__file__))
import impair  # noqa: E402
from modem_io import data  # noqa: E402

MODEMS = {"V.29": (V29Tx, V29Rx), "V.27 ter": (V27terTx, V27terRx), "V.17": (V17Tx, V17Rx)}
HELD = [("V.29", 9600), ("V.29", 7200), ("V.27 ter", 4800), ("V.27 ter", 2400)]
HELD += [("V.17", 14400), ("V.17", 12000), ("V.17", 9600), ("V.17", 7200)]
ALL = HELD
GAP_SLACK = 64            # bits after a gap's end until the bits are right again
HOLD_MS, DETECT_MS = 45, 20     # hold.h XM_HOLD_SAMPLES; the level falling 6 dB, filter tails
LEVEL = -10.0


def ident(p):
    return f"{p[0]} {p[1]}".replace(" ", "") if isinstance(p, tuple) else str(p)


def signal(mod, rate, bits):
    """The transmitter's samples for ``bits``, to its last sample of signal (no silence after)."""
    tx = MODEMS[mod][0](rate, long_train=True, level_dbm0=LEVEL)
    tx.put_bits(bits)
    tx.finish()
    x = tx.generate_all()
    return x[:np.flatnonzero(x)[-1] + 1]


def run(mod, rate, x, block=160):
    """(bits delivered, events, the sample at which each event was seen) for ``x``."""
    rx = MODEMS[mod][1](rate)
    got, events, when = [], [], []
    for i in range(0, len(x), block):
        got.append(rx.receive(x[i:i + block]))
        ev = rx.events()
        events += ev
        when += [i + block] * len(ev)
    return np.concatenate(got), events, when


def kinds(events):
    return [e.kind for e in events]


@pytest.mark.parametrize("modem", ALL, ids=ident)
@pytest.mark.parametrize("gap_ms", [10, 20, 40])
def test_a_gap_in_the_data_is_ridden_through(modem, gap_ms):
    mod, rate = modem
    bits = data(rate * 2, seed=gap_ms)
    x = signal(mod, rate, bits)
    n = len(x)
    for where in (0.45, 0.6, 0.75, 0.9):
        at = int(n * where)
        y = x.copy()
        y[at:at + gap_ms * 8] = 0
        got, events, _ = run(mod, rate, impair.concat(y, impair.silence(800)))
        assert kinds(events) == ["carrier-up", "training-succeeded", "dropout", "resumed",
                                 "carrier-down"], (where, events)
        assert events[4].bit >= len(bits)                       # down only at the true end
        assert len(got) >= len(bits)
        bad = np.flatnonzero(got[:len(bits)] != bits)
        assert len(bad), "a gap with no error: the test's gap missed the data"
        # the damaged bits are those DROPOUT and RESUMED enclose (a non-ECM page is told they
        # are lost), a few before (the level takes some ms to fall 6 dB) and the descrambler's
        # after (its 23 bits, a symbol)
        assert events[2].bit - GAP_SLACK <= bad[0] and bad[-1] < events[3].bit + 32, (where, events)
        gap_bits = gap_ms * rate // 1000
        assert bad[-1] - bad[0] <= gap_bits + GAP_SLACK, (where, bad[0], bad[-1], gap_bits)


@pytest.mark.parametrize("modem", HELD, ids=ident)
def test_a_60_ms_gap_is_the_carrier_lost_where_it_began(modem):
    mod, rate = modem
    bits = data(rate * 2, seed=7)
    x = signal(mod, rate, bits)
    at = int(len(x) * 0.6)
    y = x.copy()
    y[at:at + 480] = 0
    got, events, _ = run(mod, rate, impair.concat(y, impair.silence(800)))
    k = kinds(events)
    assert k[:3] == ["carrier-up", "training-succeeded", "carrier-down"], events
    assert "training-succeeded" not in k[3:]                 # the rest is no new training
    down = events[2].bit
    assert len(got) == down                                  # no bit after the carrier went
    bad = np.flatnonzero(got != bits[:len(got)])
    assert len(bad) <= GAP_SLACK, len(bad)                   # only the gap's first few ms


@pytest.mark.parametrize("modem", ALL, ids=ident)
def test_the_true_end_is_carrier_down_within_the_hold(modem):
    mod, rate = modem
    bits = data(rate, seed=3)
    x = signal(mod, rate, bits)
    got, events, when = run(mod, rate, impair.concat(x, impair.silence(4000)), block=8)
    assert kinds(events) == ["carrier-up", "training-succeeded", "carrier-down"]
    delay_ms = (when[2] - len(x)) / 8
    assert delay_ms <= HOLD_MS + DETECT_MS, delay_ms
    assert np.array_equal(got[:len(bits)], bits)


def v21_frames(level):
    tx = V21Transmitter(V21Config(tx_level_dbm0=level, preamble_ms=200.0))
    frame = Frame(FCF.MCF).encode()
    tx.send_frames([frame])
    return tx.drain(), frame


def follower(kind, mod, rate):
    """What comes after the data: (samples, what must be heard in them)."""
    if kind == "V.21":
        x, frame = v21_frames(LEVEL)
        return x, frame
    if kind == "training":
        bits2 = data(rate // 2, seed=11)
        return signal(mod, rate, bits2), bits2
    if kind == "noise":
        return impair.noise(1600, LEVEL, rng=9), None
    if kind in ("+8 dB", "-8 dB"):
        return None, None
    raise AssertionError(kind)


@pytest.mark.parametrize("modem", HELD, ids=ident)
@pytest.mark.parametrize("silence_ms", [10, 30, 75])
@pytest.mark.parametrize("after", ["V.21", "training", "noise", "+8 dB", "-8 dB"])
def test_what_follows_the_data_is_not_taken_for_it(modem, silence_ms, after):
    mod, rate = modem
    bits = data(rate, seed=5)
    x = signal(mod, rate, bits)
    if after in ("+8 dB", "-8 dB"):
        # the data goes on after the gap, but at another level: not the same signal
        more = data(rate, seed=6)
        whole = signal(mod, rate, np.concatenate([bits, more]))
        cut = len(x) - 32 * 8000 // 2400                   # about where ``bits`` ended
        rest = impair.gain(whole[cut:], 8.0 if after[0] == "+" else -8.0)
        y = impair.concat(whole[:cut], impair.silence(silence_ms * 8), rest, impair.silence(800))
    else:
        tail, want = follower(after, mod, rate)
        y = impair.concat(x, impair.silence(silence_ms * 8), tail, impair.silence(800))
    got, events, when = run(mod, rate, y)
    k = kinds(events)
    assert k[:3] == ["carrier-up", "training-succeeded", "carrier-down"], events
    down = events[2].bit
    n_data = len(bits) if after[0] not in "+-" else None
    if n_data is not None:
        assert np.array_equal(got[:n_data], bits)
        # nothing after the data but its own turn-off (binary ones, 32-48 symbols) and the
        # filters' tail
        baud = {"V.27 ter": 1600 if rate == 4800 else 1200}.get(mod, 2400)
        assert down - n_data <= 72 * rate // baud, down - n_data       # 48 symbols + the tail
    else:
        bad = np.flatnonzero(got[:down] != np.concatenate([bits, more])[:down])
        assert len(bad) <= GAP_SLACK                            # only the gap's first ms
        baud = {"V.27 ter": 1600 if rate == 4800 else 1200}.get(mod, 2400)
        assert down - len(bits) <= 72 * rate // baud            # the gap came about there
    if after == "training":
        # the new training is heard as one, and its data arrives
        assert "training-succeeded" in k[3:], events
        assert np.array_equal(got[-len(want):], want) or \
            any(np.array_equal(got[i:i + len(want)], want) for i in range(down, len(got) - len(want) + 1))
    else:
        assert "training-succeeded" not in k[3:], events
    if after == "V.21":
        # the frame is heard, and the high-speed carrier was down before it ended
        v21 = V21Receiver().receive(y)
        frames = [e for e in v21 if isinstance(e, HdlcFrame) and e.fcs_ok]
        assert [f.data for f in frames] == [want]
        v21_start = len(x) + silence_ms * 8
        assert when[2] - v21_start <= 200 * 8


@pytest.mark.parametrize("gap_ms", [10, 20, 40])
def test_v21_rides_through_a_gap(gap_ms):
    """V.21 (its own carrier detector in fsk.c): a gap in the preamble costs nothing, a gap in
    a frame costs that frame (its FCS fails) and the next is received."""
    frames = [Frame(FCF.TSI, b"1234567890123456789A", final=False).encode(), Frame(FCF.DCS, b"\x00\x46\x10").encode()]
    tx = V21Transmitter(V21Config())
    tx.send_frames(frames)
    x = tx.drain()
    for at, first_ok in ((0.5, True), (1.2, False)):
        y = x.copy()
        y[int(at * 8000):int(at * 8000) + gap_ms * 8] = 0
        ev = V21Receiver().receive(impair.concat(impair.silence(800), y, impair.silence(1600)))
        got = [(e.data, e.fcs_ok) for e in ev if isinstance(e, HdlcFrame)]
        # one carrier throughout for one lost packet; at 40 ms fsk.c's detector (its own, not
        # hold.c) drops the carrier and raises it again, the frames after the gap still heard
        assert [type(e).__name__ for e in ev].count("CarrierDown") == (1 if gap_ms <= 20 else 2)
        assert got[-1] == (frames[1], True)
        if gap_ms <= 20:
            assert got[0][1] is first_ok and len(got) == 2
