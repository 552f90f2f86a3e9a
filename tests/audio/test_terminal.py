"""AudioTerminal alone: each T.30 modem command becomes the right signal, and each signal
heard becomes the right modem events, driven by a scripted stand-in for the T.30 Session.
Whole calls are in test_audio_calls.py."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from xmfax.audio import tones, v21
from xmfax import hdlc as H
from xmfax.audio.terminal import (AudioConfig, AudioTerminal, _Deframer, _hdlc_bits,
                                  _turnoff_start, available_modulations)
from xmfax.audio.v27ter import V27terRx, V27terTx
from xmfax.audio.v29 import V29Rx, V29Tx
from xmfax.t30 import modem as M
from xmfax.t30.config import T30Config

Mod = M.Modulation
DCS = bytes([0xFF, 0x13, 0x83, 0x00, 0xC6, 0x70])
CFR = bytes([0xFF, 0x13, 0x84])
MPS = bytes([0xFF, 0x13, 0xF2])


class Script:
    """Stands in for a T.30 Session: hands out the commands it is given, records events."""

    def __init__(self, *commands):
        self.pending = list(commands)
        self.got: list[tuple[object, float]] = []
        self.done = False
        self.started = None

    def start(self, now):
        self.started = now

    def push(self, *commands):
        self.pending.extend(commands)

    def data_to_send(self):
        out, self.pending = self.pending, []
        return out

    def receive(self, event, now):
        self.got.append((event, now))

    def events(self):
        return []

    def next_timer(self):
        return None

    def handle_timer(self, now):
        pass

    def kinds(self):
        return [type(e).__name__ for e, _ in self.got]


def terminal(*commands, config=None):
    s = Script(*commands)
    t = AudioTerminal(s, config)
    t.start(0.0)
    return s, t


def play(t, n_samples, block=160):
    """Take n samples from the terminal in blocks, with the time of each block."""
    out = []
    pos = 0
    while pos < n_samples:
        k = min(block, n_samples - pos)
        out.append(t.samples_to_send(k, pos / 8000))
        pos += k
    return np.concatenate(out) if out else np.zeros(0, np.int16)


def hear(t, x, block=160, start=0.0):
    for i in range(0, len(x), block):
        t.receive_samples(x[i:i + block], start + (i + block) / 8000)


def silence(ms):
    return np.zeros(int(ms * 8), np.int16)


# ------------------------------------------------------------------ configuration
def test_only_existing_modems_are_offered():
    mods = available_modulations()
    assert {Mod.V21, Mod.V27TER_2400, Mod.V27TER_4800, Mod.V29_7200, Mod.V29_9600} <= mods
    cfg = AudioConfig.limit_t30(T30Config())
    assert cfg.modems <= {m.family for m in mods}
    assert cfg.max_rate == max(m.bit_rate for m in mods)


def test_a_session_offering_a_missing_modem_is_refused(monkeypatch):
    import xmfax.audio.terminal as term
    from xmfax.t30.session import Session
    monkeypatch.delitem(term._CLASSES, M.Family.V29)          # as if V.29 were not built
    with pytest.raises(ValueError, match="limit_t30"):
        AudioTerminal(Session(T30Config(), calling=True, receive=True))
    cfg = AudioConfig.limit_t30(T30Config())
    assert M.Family.V29 not in cfg.modems
    AudioTerminal(Session(cfg, calling=True, receive=True))


@pytest.mark.parametrize("bad", [dict(v21_level_dbm0=3.0), dict(hs_flags_ms=-1),
                                 dict(hs_closing_flags=0), dict(v21_preamble_ms=5000)])
def test_config_is_checked(bad):
    with pytest.raises(ValueError):
        AudioConfig(**bad)


# ------------------------------------------------------------------ transmit
def test_idle_line_is_silence_of_the_size_asked():
    s, t = terminal()
    for n in (0, 1, 160, 999):
        x = t.samples_to_send(n)
        assert len(x) == n and x.dtype == np.int16 and not x.any()
    with pytest.raises(ValueError):
        t.samples_to_send(-1)


def test_silence_is_exact_and_each_hdlc_transmission_completes_once():
    s, t = terminal(M.SendSilence(75), M.SendHDLC((DCS,)), M.SendSilence(75), M.SendHDLC((CFR,)))
    x = play(t, 8000 * 5, block=123)
    assert not x[:600].any() and x[600:640].any()                # 75 ms = 600 samples of zeros
    frames = [f.data for f in v21.demodulate(x)]
    assert frames == [DCS, CFR]
    assert s.kinds() == ["SendComplete", "SendComplete"]
    # the first completes after 75 ms + 1 s of flags + the frame (~1.3 s), the second later
    t1, t2 = s.got[0][1], s.got[1][1]
    assert 1.2 < t1 < 1.5 and 2.4 < t2 < 3.0


def test_v21_preamble_length_is_configurable():
    s, t = terminal(M.SendHDLC((CFR,)), config=AudioConfig(v21_preamble_ms=200))
    play(t, 8000 * 2)
    assert s.got and s.got[0][1] < 0.4


@pytest.mark.parametrize("mod,rx_cls", [(Mod.V29_9600, V29Rx), (Mod.V29_7200, V29Rx),
                                        (Mod.V27TER_4800, V27terRx), (Mod.V27TER_2400, V27terRx)])
def test_send_data_reaches_a_receiver_of_that_modem(mod, rx_cls):
    data = bytes(np.random.default_rng(mod.bit_rate).integers(0, 256, 400, dtype=np.uint8))
    s, t = terminal(M.SendData(mod, data))
    x = play(t, 8000 * 4)
    assert s.kinds() == ["SendComplete"]
    rx = rx_cls(mod.bit_rate)
    bits = rx.receive(np.concatenate([x, silence(100)]))
    got = np.packbits(bits, bitorder="little").tobytes()
    assert data in got


@pytest.mark.skipif(Mod.V17_14400 not in available_modulations(), reason="no V.17 modem")
def test_v17_short_training_after_a_long_one_until_the_next_dcs():
    # TCF after a DCS: long training (~1.4 s); the page after it: short (~0.14 s); after a
    # new DCS, long again. The same data takes that much longer or shorter to send.
    v17 = Mod.V17_14400
    page = bytes(1800)                                           # 1 s at 14400 bit/s
    s, t = terminal(M.SendHDLC((DCS,)), M.SendData(v17, page), M.SendData(v17, page),
                    M.SendHDLC((DCS,)), M.SendData(v17, page), M.SendHDLC((CFR,)),
                    M.SendData(v17, page))
    play(t, 8000 * 20, block=160)
    ends = [now for _, now in s.got]
    assert len(ends) == 7
    lengths = [ends[2] - ends[1], ends[4] - ends[3], ends[6] - ends[5]]
    long_, short, again = ends[1] - ends[0], lengths[0], lengths[1]
    assert long_ - short > 1.0 and abs(again - long_) < 0.05     # long, short, long
    assert abs(lengths[2] - short) < 0.05                        # a CFR does not retrain


def test_ced_and_cng_are_heard_as_such():
    s, t = terminal(M.SendTone(M.Tone.CED))
    x = play(t, 8000 * 4)
    on = [e for e in tones.detect(x) if isinstance(e, tones.ToneOn)]
    assert [e.tone for e in on] == [tones.Tone.ANS]
    off = [e for e in tones.detect(x) if isinstance(e, tones.ToneOff)]
    assert 2600 <= off[0].duration_ms <= 4000                    # T.30 §4.2: 2.6 to 4 s
    s, t = terminal(M.SendTone(M.Tone.CNG), config=AudioConfig(cng_repeat=False))
    x = play(t, 8000 * 4)
    on = [e for e in tones.detect(x) if isinstance(e, tones.ToneOn)]
    assert [e.tone for e in on] == [tones.Tone.CNG]
    assert not x[8000:].any()                                    # one 0.5 s burst only


def test_tone_lengths_and_preambles_come_from_the_timing_model(monkeypatch):
    """One timing model (issue #13): the tone lengths and the defaults of the V.21 preamble and
    the ECM flags are xmfax/t30/modem.py's, and a changed model changes what is sent."""
    assert AudioConfig().v21_preamble_ms == M.V21_PREAMBLE_MS and AudioConfig().hs_flags_ms == M.HS_FLAGS_MS
    monkeypatch.setattr(M, "CED_MS", 3500)
    monkeypatch.setattr(M, "CNG_MS", 300)
    for tone, want in ((M.Tone.CED, 3500), (M.Tone.CNG, 300)):
        s, t = terminal(M.SendTone(tone), config=AudioConfig(cng_repeat=False))
        x = play(t, 8000 * 5)
        sent = np.flatnonzero(x)
        assert (sent[-1] - sent[0] + 1) / 8 == pytest.approx(want, abs=2)


def test_cng_keeps_its_cadence_until_the_session_sends_something():
    s, t = terminal(M.SendTone(M.Tone.CNG), M.Receive(M.Expect.HDLC))
    x = play(t, 8000 * 8)
    bursts = [e for e in tones.detect(x) if isinstance(e, tones.ToneOn)]
    assert len(bursts) >= 2                                      # 0.5 s on, 3 s off, again
    s.push(M.SendSilence(75), M.SendHDLC((DCS,)))
    y = play(t, 8000 * 3)
    assert [f.data for f in v21.demodulate(y)] == [DCS]
    assert not [e for e in tones.detect(y) if isinstance(e, tones.ToneOn)]


def test_cng_stops_when_v21_is_heard():
    s, t = terminal(M.SendTone(M.Tone.CNG), M.Receive(M.Expect.HDLC))
    play(t, 8000)
    hear(t, v21.modulate([CFR]))
    assert "CarrierUp" in s.kinds()
    assert not play(t, 8000 * 4).any()


def test_hangup_ends_the_line():
    s, t = terminal(M.SendSilence(75), M.SendHDLC((DCS,)), M.Hangup())
    s.done = True
    assert not t.done                                            # the DCN is still to go
    play(t, 8000 * 3)
    assert t.done and s.kinds() == ["SendComplete"]
    assert not play(t, 800).any()


def test_close_tells_the_session_the_line_is_lost():
    s, t = terminal()
    t.close("gone", 1.0)
    assert isinstance(s.got[-1][0], M.LineLost) and s.got[-1][0].reason == "gone"


# ------------------------------------------------------------------ receive
def test_v21_frames_give_carrier_frames_carrier():
    s, t = terminal(M.Receive(M.Expect.HDLC))
    hear(t, np.concatenate([silence(200), v21.modulate([DCS, CFR]), silence(300)]))
    assert s.kinds() == ["CarrierUp", "HDLCFrame", "HDLCFrame", "CarrierDown"]
    frames = [e for e, _ in s.got if isinstance(e, M.HDLCFrame)]
    assert [f.frame for f in frames] == [DCS, CFR] and all(f.fcs_ok for f in frames)
    assert all(e.modulation is Mod.V21 for e, _ in s.got if not isinstance(e, M.HDLCFrame))


def test_a_bad_fcs_is_reported_within_a_v21_signal():
    tx = v21.V21Transmitter()
    tx.queue(DCS, bad_fcs=True)
    tx.queue(CFR)
    tx.end()
    s, t = terminal(M.Receive(M.Expect.HDLC))
    hear(t, np.concatenate([tx.drain(), silence(300)]))
    frames = [e for e, _ in s.got if isinstance(e, M.HDLCFrame)]
    assert [(f.frame, f.fcs_ok) for f in frames] == [(DCS, False), (CFR, True)]


def _psk(mod, data: bytes, level=-13.0):
    cls = V29Tx if mod.family is M.Family.V29 else V27terTx
    tx = cls(mod.bit_rate, level_dbm0=level)
    tx.put_bits(np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little"))
    tx.finish()
    return tx.generate_all()


@pytest.mark.parametrize("mod", [Mod.V29_9600, Mod.V29_7200, Mod.V27TER_4800, Mod.V27TER_2400])
def test_high_speed_data_is_delivered_exactly(mod):
    tcf = bytes(mod.bit_rate * 3 // 2 // 8)                      # 1.5 s of zeros
    s, t = terminal(M.Receive(M.Expect.DATA, mod))
    hear(t, np.concatenate([silence(75), _psk(mod, tcf), silence(300)]))
    kinds = s.kinds()
    assert kinds[0] == "CarrierUp" and kinds[-1] == "CarrierDown"
    assert set(kinds[1:-1]) == {"DataReceived"}
    got = b"".join(e.data for e, _ in s.got if isinstance(e, M.DataReceived))
    # the turn-off and the fading carrier are cut: exactly the zeros, nothing after
    assert got == tcf


def test_raw_data_goes_to_t30_in_pieces_of_batch_ms():
    """T.30's page decoding costs per DataReceived: a piece of at least BATCH_MS, not each
    20 ms block; only the last pieces (the held-back rest, at carrier down) are shorter."""
    from xmfax.audio.hsbits import BATCH_MS
    mod = Mod.V29_9600
    data = bytes(np.random.default_rng(4).integers(0, 256, 9600 * 2 // 8, dtype=np.uint8)) + bytes(40)
    s, t = terminal(M.Receive(M.Expect.DATA, mod))
    hear(t, np.concatenate([silence(75), _psk(mod, data), silence(300)]))
    pieces = [e.data for e, _ in s.got if isinstance(e, M.DataReceived)]
    assert b"".join(pieces) == data
    least = mod.bit_rate * BATCH_MS // 1000 // 8
    assert len(pieces) >= 10 and all(len(p) >= least for p in pieces[:-2])


@pytest.mark.parametrize("mod", [Mod.V29_9600, Mod.V27TER_4800])
def test_ecm_frames_at_high_speed(mod):
    frames = [bytes([0xFF, 0x03, 0x06, k]) + bytes(np.random.default_rng(k).integers(
        0, 256, 64, dtype=np.uint8)) for k in range(5)]
    s, t = terminal(M.SendHDLC(tuple(frames), mod))
    x = play(t, 8000 * 4)
    assert s.kinds() == ["SendComplete"]
    s2, r = terminal(M.Receive(M.Expect.HDLC, mod))
    hear(r, np.concatenate([x, silence(300)]))
    got = [e for e, _ in s2.got if isinstance(e, M.HDLCFrame)]
    assert [g.frame for g in got] == frames
    assert all(g.fcs_ok and g.modulation is mod for g in got)
    assert s2.kinds()[0] == "CarrierUp" and s2.kinds()[-1] == "CarrierDown"


def test_v21_where_high_speed_was_expected_is_a_wrong_carrier():
    # T.30's fallback: the far end answers (or repeats a command) at V.21 instead of TCF/page
    s, t = terminal(M.Receive(M.Expect.DATA, Mod.V29_9600))
    hear(t, np.concatenate([silence(100), v21.modulate([DCS]), silence(300)]))
    kinds = s.kinds()
    assert kinds[:2] == ["WrongCarrier", "CarrierUp"]
    wc = s.got[0][0]
    assert wc.expected is Mod.V29_9600 and wc.heard is Mod.V21
    assert [e.frame for e, _ in s.got if isinstance(e, M.HDLCFrame)] == [DCS]


@pytest.mark.parametrize("mod", [Mod.V29_9600, Mod.V27TER_4800])
def test_v21_is_heard_right_after_a_trained_carrier(mod):
    """V.21 does not run while a high-speed carrier is trained (T.30 listens for nothing else
    then), and starts afresh when it drops: the post-page command 75 ms after a page is heard
    (T.30 §5 Note 3), and at once: 1 s of flags before it, recognised within 300 ms."""
    data = bytes(np.random.default_rng(5).integers(0, 256, mod.bit_rate // 8, dtype=np.uint8))
    page, gap = _psk(mod, data), silence(600)

    class AfterPage(Script):             # as T.30 does: the post-page command at V.21 next
        def receive(self, event, now):
            super().receive(event, now)
            if isinstance(event, M.CarrierDown) and event.modulation is mod:
                self.push(M.Receive(M.Expect.HDLC))

    s = AfterPage(M.Receive(M.Expect.DATA, mod))
    t = AudioTerminal(s)
    t.start(0.0)
    x = np.concatenate([silence(75), page, gap, v21.modulate([MPS]), silence(300)])
    hear(t, x)
    kinds = s.kinds()
    assert kinds[0] == "CarrierUp" and "WrongCarrier" not in kinds
    i = kinds.index("CarrierDown")
    assert kinds[i + 1:] == ["CarrierUp", "HDLCFrame", "CarrierDown"]
    assert s.got[i + 1][0].modulation is Mod.V21 and s.got[i + 2][0].frame == MPS
    v21_at = s.got[i + 1][1] - (75 + len(page) + len(gap)) / 8000    # after the flags began
    assert 0 < v21_at < 0.3
    assert t._v21.samples_received < len(x) - len(page) // 2     # not run over the carrier


def test_a_high_speed_signal_is_not_taken_for_v21():
    # V.29 and V.27 ter overlap V.21's band: the FSK receiver makes junk frames of them,
    # which must not announce a V.21 signal (no WrongCarrier, no V.21 frame)
    for mod in (Mod.V29_9600, Mod.V27TER_4800, Mod.V27TER_2400):
        data = bytes(np.random.default_rng(3).integers(0, 256, mod.bit_rate // 4, dtype=np.uint8))
        s, t = terminal(M.Receive(M.Expect.DATA, mod))
        hear(t, np.concatenate([_psk(mod, data), silence(300)]))
        assert "WrongCarrier" not in s.kinds()
        assert all(e.modulation is mod for e, _ in s.got)


def test_a_failed_training_is_a_carrier_without_data():
    # listening for V.29 9600, a V.27 ter signal comes: no training is recognised in it
    s, t = terminal(M.Receive(M.Expect.DATA, Mod.V29_9600))
    hear(t, np.concatenate([_psk(Mod.V27TER_4800, bytes(900)), silence(300)]))
    assert s.kinds() == ["CarrierUp", "CarrierDown"]
    assert t.stats.training_failures >= 1


def test_ced_is_reported_once():
    s, t = terminal(M.Receive(M.Expect.HDLC))
    hear(t, np.concatenate([tones.generate(tones.Tone.ANS, duration_ms=3000), silence(200)]))
    assert [e for e, _ in s.got] == [M.ToneDetected(M.Tone.CED)]


def test_bad_input_is_a_clear_error():
    s, t = terminal()
    with pytest.raises(ValueError):
        t.receive_samples(np.zeros((2, 2), np.int16), 0.0)
    with pytest.raises(ValueError):
        t.receive_samples(np.zeros(4, np.float32), 0.0)


def test_turnoff_detection():
    assert _turnoff_start(np.array([0, 1, 0] + [1] * 40 + [0, 1], np.uint8)) == 3
    assert _turnoff_start(np.array([1] * 31 + [0], np.uint8)) is None
    assert _turnoff_start(np.array([1] * 32 + [0] * 5 + [1] * 33, np.uint8)) == 37


# ------------------------------------------------------------------ block sizes do not matter
_V29_ECM = None


def _ecm_signal():
    global _V29_ECM
    if _V29_ECM is None:
        frames = tuple(bytes([0xFF, 0x03, 0x06, k]) + bytes(range(k, k + 40)) for k in range(3))
        s, t = terminal(M.SendHDLC(frames, Mod.V29_9600))
        _V29_ECM = (frames, np.concatenate([play(t, 8000 * 2), silence(300)]))
    return _V29_ECM


@settings(max_examples=15)
@given(st.lists(st.integers(1, 700), min_size=1, max_size=40))
def test_any_block_sizes_give_the_same_frames(sizes):
    frames, x = _ecm_signal()
    s, t = terminal(M.Receive(M.Expect.HDLC, Mod.V29_9600))
    pos, i = 0, 0
    while pos < len(x):
        n = sizes[i % len(sizes)]
        t.receive_samples(x[pos:pos + n], (pos + n) / 8000)
        pos += n
        i += 1
    assert [e.frame for e, _ in s.got if isinstance(e, M.HDLCFrame)] == list(frames)


@settings(max_examples=15)
@given(st.lists(st.integers(1, 500), min_size=1, max_size=40))
def test_any_output_block_sizes_give_the_same_signal(sizes):
    cmds = (M.SendSilence(75), M.SendData(Mod.V29_9600, bytes(200)), M.SendSilence(75), M.SendHDLC((DCS,)),
            M.SendData(Mod.V27TER_4800, bytes(100)))
    ref_s, ref = terminal(*cmds)
    want = play(ref, 8000 * 3, block=160)
    s, t = terminal(*cmds)
    parts, pos, i = [], 0, 0
    while pos < len(want):
        n = min(sizes[i % len(sizes)], len(want) - pos)
        parts.append(t.samples_to_send(n, pos / 8000))
        pos += n
        i += 1
        if i > 10 * len(want):
            break
    got = np.concatenate(parts)
    assert np.array_equal(got, want)
    assert s.kinds() == ref_s.kinds() == ["SendComplete"] * 3



# ------------------------------------------------------------------ hostile input
_SIGNALS = {}


def _signal(kind: str) -> np.ndarray:
    if kind not in _SIGNALS:
        rng = np.random.default_rng(7)
        _SIGNALS[kind] = {
            "v21": lambda: v21.modulate([DCS, CFR]),
            "v29": lambda: _psk(Mod.V29_9600, bytes(rng.integers(0, 256, 600, dtype=np.uint8))),
            "v27": lambda: _psk(Mod.V27TER_4800, bytes(300)),
            "ced": lambda: tones.generate(tones.Tone.ANS, duration_ms=600),
            "noise": lambda: (rng.standard_normal(4000) * 3000).astype(np.int16),
            "clipped": lambda: np.where(rng.random(4000) < 0.5, -32768, 32767).astype(np.int16),
        }[kind]()
    return _SIGNALS[kind]


@settings(max_examples=25)
@given(expect=st.sampled_from([(M.Expect.HDLC, Mod.V21), (M.Expect.DATA, Mod.V29_9600),
                               (M.Expect.HDLC, Mod.V29_9600), (M.Expect.DATA, Mod.V27TER_4800)]),
       parts=st.lists(st.tuples(st.sampled_from(["v21", "v29", "v27", "ced", "noise", "clipped"]),
                                st.integers(0, 4000), st.integers(1, 4000), st.integers(1, 800)),
                      min_size=1, max_size=6))
def test_any_line_gives_only_well_formed_events(expect, parts):
    """Pieces of every signal, cut anywhere, in any order, at any block size: no exception,
    only modem events, carriers up and down in pairs per modulation, never two up at once."""
    s, t = terminal(M.Receive(expect[0], expect[1]))
    now = 0.0
    for kind, start, length, block in parts:
        x = _signal(kind)[start:start + length]
        for i in range(0, len(x), block):
            now += len(x[i:i + block]) / 8000
            t.receive_samples(x[i:i + block], now)
    hear(t, silence(400), start=now)
    up = None
    for e, _ in s.got:
        assert isinstance(e, M.ModemEvent)
        if isinstance(e, M.CarrierUp):
            assert up is None, s.kinds()
            up = e.modulation
        elif isinstance(e, M.CarrierDown):
            assert up is e.modulation, s.kinds()
            up = None
        elif isinstance(e, (M.HDLCFrame, M.DataReceived)):
            assert up is not None and e.modulation is up
    assert up is None                                           # every carrier ended


# ------------------------------------------------------------------ ECM framing, C against Python
_frame = st.binary(min_size=1, max_size=300).map(lambda b: bytes([0xFF, 0x03]) + b) | st.lists(
    st.sampled_from([0x7E, 0xFF, 0x7D, 0x00, 0x3F, 0xFC]), min_size=3, max_size=80).map(bytes)


@settings(max_examples=40)
@given(frames=st.lists(_frame, min_size=1, max_size=70), pre=st.integers(1, 40),
       post=st.integers(1, 6), split=st.integers(1, 5000))
def test_ecm_framing_matches_the_software_hdlc(frames, pre, post, split):
    """The C framing the terminal uses, checked both ways against xmfax.hdlc (the readable
    reference): what one frames, the other deframes, whatever the cut of the bit stream."""
    bits = _hdlc_bits(frames, pre, post)
    packed = np.packbits(bits, bitorder="little").tobytes()
    assert [(f.frame, f.fcs_ok) for f in H.decode(packed)] == [(f, True) for f in frames]
    ref = np.unpackbits(np.frombuffer(H.encode(frames, preamble_flags=pre, closing_flags=post),
                                      np.uint8), bitorder="little")
    d = _Deframer()
    got = d.feed(ref[:split]) + d.feed(ref[split:])
    assert got == [(f, True) for f in frames]


def test_ecm_framing_reports_a_bad_fcs():
    ref = H.encode([b"\xff\x03\x06\x01abc"], add_fcs=False, preamble_flags=2)   # no FCS at all
    got = _Deframer().feed(np.unpackbits(np.frombuffer(ref, np.uint8), bitorder="little"))
    assert got == [(b"\xff\x03\x06\x01a", False)]
