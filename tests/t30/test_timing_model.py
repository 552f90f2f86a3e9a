"""The one timing model (xmfax/t30/modem.py): its values match the recommendations' symbol
counts, and every user (the in-memory line, the T.38 terminal's pacing, the TSB-85 line,
the Class 1 driver) reads it instead of keeping a table of its own (issue #13 §4)."""
from __future__ import annotations

import ast
import os
import sys
import tokenize

import pytest

from xmfax.t30 import modem as M
from xmfax.t30.modem import Family, Modulation
from xmfax.t30.pair import Line

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HIGH_SPEED = [m for m in Modulation if m is not Modulation.V21]


# --------------------------------------------------------------------------- the model's values
# symbols of each training (long, short) and the symbol rate: V.27 ter segments 3-5, V.29
# segments 1-4, V.17 segments 1-4 (short: no bridge, 38 conditioning symbols)
SYMBOLS = {
    Modulation.V27TER_2400: (1132, 1132, 1200), Modulation.V27TER_4800: (1132, 1132, 1600),
    Modulation.V29_7200: (608, 608, 2400), Modulation.V29_9600: (608, 608, 2400),
    **{m: (3344, 342, 2400) for m in Modulation if m.family is Family.V17},
}


def test_training_times_follow_the_symbol_counts():
    for m, (long_sym, short_sym, baud) in SYMBOLS.items():
        assert abs(m.training_ms() - long_sym * 1000 / baud) <= 0.5, m
        assert abs(m.training_ms(True) - short_sym * 1000 / baud) <= 0.5, m
    assert set(SYMBOLS) == set(HIGH_SPEED)
    assert Modulation.V29_9600.training_ms() == 253         # not 234 (the T.38 terminal's old value)
    assert Modulation.V21.training_ms() == M.V21_PREAMBLE_MS == 1000


def test_only_v17_has_a_short_train_and_seconds_agree_with_ms():
    for m in Modulation:
        short_differs = m.training_ms(True) != m.training_ms(False)
        assert short_differs == (m.family is Family.V17), m
        assert m.training_s(True) == m.training_ms(True) / 1000
        assert m.training_s() == m.training_ms() / 1000
    assert set(M.TRAINING_MS) == set(Modulation)


def test_t30_times():
    assert (M.SILENCE_MS, M.TCF_MS, M.HS_FLAGS_MS, M.CNG_MS, M.CED_MS) == (75, 1500, 200, 500, 3000)


# --------------------------------------------------------------------------- the users
def test_session_constants_read_the_model():
    from xmfax.t30 import _common, tcf

    assert _common.GAP_MS == M.SILENCE_MS
    assert _common.V21_PREAMBLE_S == M.V21_PREAMBLE_MS / 1000
    assert tcf.TCF_SECONDS == M.TCF_MS / 1000
    assert len(tcf.tcf_bytes(Modulation.V29_9600)) * 8 == 9600 * M.TCF_MS // 1000
    # the session's timer allowance for a training covers the longest one in the model
    assert _common.HS_TRAINING_S * 1000 > max(max(pair) for pair in M.TRAINING_MS.values())


def test_t38_signals_read_the_model():
    from xmfax.t38 import signals as S
    from xmfax.t38.ifp import Indicator

    for (m, short), ind in S.TRAINING.items():
        assert S.TRAINING_MS[ind] == m.training_ms(short), (m, short)
    assert S.TRAINING_MS[Indicator.V21_PREAMBLE] == 0     # its lead is V21_PREAMBLE_MS
    assert S.V21_PREAMBLE_MS == M.V21_PREAMBLE_MS
    assert S.HS_FLAGS_MS == M.HS_FLAGS_MS
    assert S.TONE_MS == {M.Tone.CNG: M.CNG_MS, M.Tone.CED: M.CED_MS}


@pytest.fixture
def tsb85_line():
    sys.path.insert(0, os.path.join(ROOT, "tests", "conformance"))
    try:
        import tsb85_line
        yield tsb85_line
    finally:
        sys.path.remove(os.path.join(ROOT, "tests", "conformance"))


def test_tsb85_line_reads_the_model(tsb85_line, monkeypatch):
    for m in HIGH_SPEED:
        for short in (False, True):
            assert tsb85_line.training_s(m, short) == m.training_s(short)
    assert tsb85_line.training_s(Modulation.V21) == 0.0     # counted in preamble flags there
    # read at call time: a changed model changes the line
    monkeypatch.setitem(M.TRAINING_MS, Modulation.V29_9600, (400, 400))
    assert tsb85_line.training_s(Modulation.V29_9600) == 0.4


class _Script:
    """A session stand-in for the line: sends its commands once, records what it hears."""

    def __init__(self, cmds=()):
        self._cmds = list(cmds)
        self.heard: list[tuple[float, object]] = []
        self.done = False

    def start(self, now):
        pass

    def data_to_send(self):
        out, self._cmds = self._cmds, []
        return out

    def receive(self, ev, now):
        self.heard.append((now, ev))

    def next_timer(self):
        return None

    def handle_timer(self, now):
        pass


def _first(heard, kind):
    return next(t for t, ev in heard if isinstance(ev, kind))


@pytest.mark.parametrize("mod,short", [(Modulation.V29_9600, False), (Modulation.V17_14400, False),
                                        (Modulation.V17_14400, True), (Modulation.V27TER_2400, False)])
def test_pair_line_trains_for_the_models_time(mod, short):
    data = bytes(mod.bit_rate // 8)          # one second of data
    a, b = _Script([M.SendData(mod, data, short_training=short)]), _Script()
    Line(a, b).run(until=10)
    assert _first(b.heard, M.CarrierUp) == pytest.approx(mod.training_s(short))
    assert _first(b.heard, M.CarrierDown) == pytest.approx(mod.training_s(short) + 1.0)
    assert _first(a.heard, M.SendComplete) == pytest.approx(mod.training_s(short) + 1.0)


def test_pair_line_hdlc_preamble_and_high_speed_flags():
    frame = bytes((0xFF, 0x13, 0x80))
    a, b = _Script([M.SendHDLC((frame,))]), _Script()
    Line(a, b).run(until=10)
    assert _first(b.heard, M.CarrierUp) == pytest.approx(M.V21_PREAMBLE_MS / 1000)
    mod = Modulation.V17_9600
    a, b = _Script([M.SendHDLC((frame,), mod, short_training=True)]), _Script()
    Line(a, b).run(until=10)
    assert _first(b.heard, M.CarrierUp) == pytest.approx((mod.training_ms(True) + M.HS_FLAGS_MS) / 1000)


def test_pair_line_follows_a_changed_model(monkeypatch):
    monkeypatch.setitem(M.TRAINING_MS, Modulation.V29_9600, (777, 777))
    a, b = _Script([M.SendData(Modulation.V29_9600, bytes(12))]), _Script()
    Line(a, b).run(until=10)
    assert _first(b.heard, M.CarrierUp) == pytest.approx(0.777)


def test_pair_line_tone_lengths():
    for tone, ms in ((M.Tone.CNG, M.CNG_MS), (M.Tone.CED, M.CED_MS)):
        a, b = _Script([M.SendTone(tone)]), _Script()
        Line(a, b).run(until=10)
        assert _first(b.heard, M.ToneDetected) == pytest.approx(ms / 1000)


# --------------------------------------------------------------------------- no second table
# The training and turnaround values (ms or s) no user may spell out for itself; numbers in
# the code only (tokenize's NUMBER tokens: comments and docstrings may quote them).
TRAINING_VALUES = {1393, 1.393, 943, 0.943, 708, 0.708, 253, 0.253, 234, 0.234, 142, 0.142}
LINE_VALUES = TRAINING_VALUES | {0.25, 1.5}
USERS = ["xmfax/t30/pair.py", "xmfax/t38/signals.py", "xmfax/t38/terminal.py",
         "tests/conformance/tsb85_line.py", "xmfax/t30/tcf.py"]


def _numbers(path, values):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        toks = list(tokenize.generate_tokens(f.readline))
    return [(t.start[0], t.string) for t in toks
            if t.type == tokenize.NUMBER and ast.literal_eval(t.string) in values]


def test_the_number_scan_sees_a_table(tmp_path):
    p = tmp_path / "old.py"
    p.write_text('"""1.393 in a docstring is fine"""\nTRAINING = {"v29": 0.234}  # 253 ms\npre = 0.25\n')
    assert _numbers(str(p), LINE_VALUES) == [(2, "0.234"), (3, "0.25")]


@pytest.mark.parametrize("path", USERS)
def test_no_user_keeps_its_own_timing_values(path):
    found = _numbers(path, LINE_VALUES)
    assert not found, f"{path} spells out timing values instead of reading xmfax/t30/modem.py: {found}"


def test_class1_driver_keeps_no_training_table():
    # the Class 1 driver's timeouts carry their own slack (1.5 s for a V.21 preamble is one),
    # but no training time may be spelled out there
    d = os.path.join(ROOT, "drivers", "class1")
    found = [(name, _numbers(os.path.join(d, name), TRAINING_VALUES))
             for name in sorted(os.listdir(d)) if name.endswith(".py")]
    assert not [f for f in found if f[1]], found
