"""V.21 channel 2 with HDLC, in C: framing checked against xmfax.hdlc (the Python
oracle), the modem against V.21/T.30 (frequencies, bit rate, preamble, cut-off levels),
and both together under noise and line impairments."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax import hdlc as pyhdlc
from xmfax.audio import g711, v21
from xmfax.audio._c import ffi, lib
from xmfax.audio.v21 import (CarrierDown, CarrierUp, FrameAborted, FramingOK, HdlcFrame,
                             V21Config, V21Receiver, V21Transmitter)
from xmfax.t30.fcf import FCF
from xmfax.t30.frames import DCS, DIS, Frame, encode_id

from . import impair

RATE = 8000
FLAG = np.array([0, 1, 1, 1, 1, 1, 1, 0], np.uint8)


def t30_frames() -> list[bytes]:
    """A T.30 phase B/D exchange's worth of frames."""
    return [
        Frame(FCF.CSI, encode_id("+44 1234 567890"), final=False).encode(),
        Frame(FCF.DIS, DIS().encode()).encode(),
        Frame(FCF.TSI, encode_id("xmfax"), final=False).encode(),
        Frame(FCF.DCS, DCS().encode()).encode(),
        Frame(FCF.CFR).encode(),
        Frame(FCF.FTT).encode(),
        Frame(FCF.MPS).encode(),
        Frame(FCF.EOP).encode(),
        Frame(FCF.MCF).encode(),
        Frame(FCF.RTN).encode(),
        Frame(FCF.DCN).encode(),
    ]


def _frames(events):
    return [e for e in events if isinstance(e, HdlcFrame)]


def _line(x, before=800, after=1600):
    return impair.concat(impair.silence(before), x, impair.silence(after))


# ------------------------------------------------------------ HDLC alone (C vs Python)

class CHdlc:
    """The C HDLC transmitter/receiver without a modem (bits in, bits out)."""

    def __init__(self, max_len=2048):
        self.tx = ffi.gc(lib.xm_hdlc_tx_new(max_len, 4 * max_len), lib.xm_hdlc_tx_free)
        self.rx = ffi.gc(lib.xm_hdlc_rx_new(max_len, 2), lib.xm_hdlc_rx_free)

    def encode(self, frames, preamble=1, bad=()):
        lib.xm_hdlc_tx_flags(self.tx, preamble)
        for k, f in enumerate(frames):
            assert lib.xm_hdlc_tx_frame(self.tx, f, len(f), int(k in bad)) == 0
        out = np.zeros(16 * sum(len(f) + 4 for f in frames) + 8 * preamble + 64, np.uint8)
        n = lib.xm_hdlc_tx_get_bits(self.tx, ffi.from_buffer("uint8_t[]", out, True), len(out))
        assert lib.xm_hdlc_tx_get_bit(self.tx) == -1 and lib.xm_hdlc_tx_pending(self.tx) == 0
        return out[:n]

    def decode(self, bits):
        b = np.ascontiguousarray(bits, dtype=np.uint8)
        events = []
        ev = ffi.new("xm_rx_event *")
        buf = ffi.new("uint8_t[4096]")
        for k in range(0, len(b), 100):          # the queue holds 16 events
            part = b[k:k + 100]
            lib.xm_hdlc_rx_put_bits(self.rx, ffi.from_buffer("uint8_t[]", part), len(part))
            while lib.xm_hdlc_rx_next(self.rx, ev, buf, 4096):
                data = bytes(ffi.buffer(buf, ev.len)) if ev.type == 1 else b""
                events.append((ev.type, bool(ev.ok), data))
        return events


def _body(frame):
    """The line bits of one frame and its FCS, without flags."""
    return list(CHdlc().encode([frame], preamble=1)[8:-8])


def _py_bits(frames, preamble=1, closing=1):
    stream = pyhdlc.encode(frames, preamble_flags=preamble, closing_flags=closing)
    return np.unpackbits(np.frombuffer(stream, np.uint8), bitorder="little")


def test_crc16_matches_the_python_fcs():
    for data in (b"", b"\xff\x13\x80", bytes(range(256))):
        crc = lib.xm_crc16(0xFFFF, data, len(data)) ^ 0xFFFF
        assert bytes((crc & 0xFF, crc >> 8)) == pyhdlc.fcs16(data)
    # T.30 §5.3.7: a good frame leaves the ISO 3309 residue
    f = b"\xff\x13\x84" + pyhdlc.fcs16(b"\xff\x13\x84")
    assert lib.xm_crc16(0xFFFF, f, len(f)) == 0xF0B8


@settings(max_examples=60)
@given(st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=5),
       st.integers(1, 5))
def test_c_hdlc_tx_bits_equal_python_encoder(frames, preamble):
    bits = CHdlc().encode(frames, preamble)
    ref = _py_bits(frames, preamble, closing=1)
    assert np.array_equal(bits, ref[:len(bits)])
    assert len(ref) - len(bits) < 8                # the Python stream pads its last octet


@settings(max_examples=60)
@given(st.lists(st.binary(min_size=2, max_size=80), min_size=1, max_size=5))
def test_c_hdlc_rx_decodes_python_stream(frames):
    ev = CHdlc().decode(_py_bits(frames, preamble=3, closing=2))
    got = [(ok, d) for t, ok, d in ev if t == 1]
    assert got == [(True, f) for f in frames]


@settings(max_examples=40)
@given(st.lists(st.binary(min_size=2, max_size=60), min_size=1, max_size=4), st.data())
def test_c_hdlc_round_trip_with_bad_fcs_frames(frames, data):
    bad = set(data.draw(st.sets(st.integers(0, len(frames) - 1))))
    h = CHdlc()
    ev = h.decode(h.encode(frames, 2, bad))
    got = [(ok, d) for t, ok, d in ev if t == 1]
    assert got == [(k not in bad, f) for k, f in enumerate(frames)]


@settings(max_examples=80)
@given(st.binary(max_size=600), st.integers(4, 64))
def test_fuzz_hdlc_rx_random_bits(raw, max_len):
    bits = np.unpackbits(np.frombuffer(raw, np.uint8))
    for t, ok, data in CHdlc(max_len=max_len).decode(bits):
        assert t in (1, 2, 3, 6)
        if t == 1:
            assert 2 <= len(data) <= max_len
            if ok:
                assert pyhdlc.fcs_ok(data + pyhdlc.fcs16(data))


@settings(max_examples=30)
@given(st.binary(min_size=2, max_size=4000))
def test_fuzz_receivers_random_samples(raw):
    x = np.frombuffer(raw[: len(raw) // 2 * 2], np.int16)
    ev = V21Receiver().receive(x)
    assert all(isinstance(e, (CarrierUp, CarrierDown, FramingOK, HdlcFrame, FrameAborted,
                              v21.FrameTooLong)) for e in ev)
    assert [e.sample for e in ev] == sorted(e.sample for e in ev)
    raw_rx = V21Receiver(raw=True)
    raw_rx.receive(x)
    assert len(raw_rx.bits()) <= len(x) * 300 // 8000 + 1


def test_stuffing_flags_and_ones_inside_frames():
    frames = [b"\x7e\x7e\x7e", b"\xff" * 40, b"\x3f\x7e\xfc\x1f\xf8", bytes(range(256))]
    h = CHdlc()
    bits = h.encode(frames)
    # never six ones in a row inside the frames (only flags have them)
    runs = np.diff(np.flatnonzero(np.concatenate([[0], bits == 0, [0]])))
    assert max(runs) - 1 <= 6
    assert [d for t, ok, d in h.decode(bits) if t == 1 and ok] == frames


def test_flags_sharing_a_zero_and_garbage_between_frames():
    f = b"\xff\x13\x84"
    body = _body(f)
    flag = [0, 1, 1, 1, 1, 1, 1, 0]
    shared = [0, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 0]   # two flags sharing one 0
    noise = [1, 0, 1, 1, 0, 0, 1]
    bits = np.array(noise + flag + shared + list(body) + flag + noise + flag + list(body) + flag,
                    np.uint8)
    got = [(t, ok, d) for t, ok, d in CHdlc().decode(bits)]
    assert [(ok, d) for t, ok, d in got if t == 1] == [(True, f), (True, f)]


def test_abort_and_too_long_and_short_frames():
    f = b"\xff\x13\x84\x01\x02\x03"
    body = _body(f)
    flag = [0, 1, 1, 1, 1, 1, 1, 0]
    # a frame cut by seven ones is dropped with an abort; the next one is fine
    bits = np.array(flag + body[:20] + [1] * 8 + flag + body + flag, np.uint8)
    ev = CHdlc().decode(bits)
    assert [t for t, _, _ in ev if t in (1, 2)] == [2, 1] and ev[-1][2] == f
    # longer than max_len: dropped and reported
    h = CHdlc(max_len=4)
    ev = h.decode(np.array(flag + body + flag, np.uint8))
    assert [t for t, _, _ in ev] == [6]
    # two octets between flags are noise, not a frame
    short = _body(b"\xff")
    assert [t for t, _, _ in CHdlc().decode(np.array(flag + short + flag, np.uint8))] == []
    # a frame that is not a whole number of octets: reported bad
    ev = CHdlc().decode(np.array(flag + body[:-3] + flag, np.uint8))
    assert [(t, ok) for t, ok, _ in ev] == [(1, False)]


def test_hdlc_tx_abort_mid_frame():
    h = CHdlc()
    lib.xm_hdlc_tx_flags(h.tx, 1)
    f = bytes(range(1, 40))
    lib.xm_hdlc_tx_frame(h.tx, f, len(f), 0)
    out = np.zeros(100, np.uint8)
    lib.xm_hdlc_tx_get_bits(h.tx, ffi.from_buffer("uint8_t[]", out, True), 100)
    lib.xm_hdlc_tx_abort(h.tx)
    lib.xm_hdlc_tx_frame(h.tx, b"\xff\x13\x84", 3, 0)
    rest = np.zeros(200, np.uint8)
    n = lib.xm_hdlc_tx_get_bits(h.tx, ffi.from_buffer("uint8_t[]", rest, True), 200)
    ev = h.decode(np.concatenate([out, rest[:n]]))
    assert [t for t, _, _ in ev if t != 3] == [2, 1] and ev[-1][2] == b"\xff\x13\x84"


# ------------------------------------------------------------ the modem

def test_frequencies_and_bit_rate():
    tx = V21Transmitter(raw=True)
    tx.put_bits(np.tile([1] * 30 + [0] * 30, 20))
    tx.end()
    x = tx.drain().astype(float)
    assert len(x) == round(1200 * RATE / 300)               # 300 bit/s
    one, zero = x[100:30 * 80 // 3 - 100], x[30 * 80 // 3 + 100:60 * 80 // 3 - 100]
    for seg, f in ((one, 1650), (zero, 1850)):              # V.21: F_A (1) 1650, F_Z (0) 1850
        spec = np.abs(np.fft.rfft(seg * np.hanning(len(seg)), 16 * len(seg)))
        assert abs(np.argmax(spec) * RATE / (16 * len(seg)) - f) < 2
    assert abs(g711.level_dbm0(x) - (-13.0)) < 0.05
    # channel 1: 980 / 1180 Hz
    tx = V21Transmitter(V21Config(channel=1), raw=True)
    tx.put_bits([1] * 60)
    tx.end()
    x = tx.drain().astype(float)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), 8 * len(x)))
    assert abs(np.argmax(spec) * RATE / (8 * len(x)) - 980) < 3


def test_phase_continuous():
    tx = V21Transmitter(raw=True)
    tx.put_bits(np.random.default_rng(1).integers(0, 2, 300))
    tx.end()
    x = tx.drain().astype(float) / g711.dbm0_to_peak(-13.0)
    # no jump: successive samples differ by at most 2 pi f / fs of the amplitude
    assert np.max(np.abs(np.diff(x))) < 2 * np.pi * 1850 / RATE + 0.01


def test_preamble_is_one_second_of_flags():
    cfr = Frame(FCF.CFR).encode()
    x = v21.modulate([cfr])
    # T.30 §5.3.1: 1 s +/- 15% of flags (38), then the frame and a closing flag
    nbits = len(CHdlc().encode([cfr], preamble=38))
    assert nbits >= (38 + 6) * 8 and abs(len(x) - nbits * RATE / 300) <= 1
    rx = V21Receiver()
    ev = rx.receive(_line(x))
    framing = [e for e in ev if isinstance(e, FramingOK)]
    assert framing and framing[0].sample < 800 + RATE // 10


def test_t30_frames_one_carrier_events_in_order():
    frames = t30_frames()
    x = v21.modulate(frames)
    ev = V21Receiver().receive(_line(x))
    kinds = [type(e) for e in ev]
    assert kinds[0] is CarrierUp and kinds[1] is FramingOK and kinds[-1] is CarrierDown
    assert [(f.data, f.fcs_ok) for f in _frames(ev)] == [(f, True) for f in frames]
    samples = [e.sample for e in ev]
    assert samples == sorted(samples)


def test_each_frame_its_own_carrier_with_silences():
    parts = []
    for f in t30_frames():
        parts += [v21.modulate([f], V21Config(preamble_ms=300)), impair.silence(600)]
    ev = V21Receiver().receive(_line(impair.concat(*parts)))
    assert [f.data for f in _frames(ev) if f.fcs_ok] == t30_frames()
    assert sum(isinstance(e, CarrierUp) for e in ev) == len(t30_frames())
    assert sum(isinstance(e, CarrierDown) for e in ev) == len(t30_frames())


def test_bad_fcs_and_abort_over_the_air():
    tx = V21Transmitter(V21Config(preamble_ms=200))
    tx.queue(b"\xff\x13\x84", bad_fcs=True)
    tx.queue(b"\xff\x13\x8c")
    first = tx.samples(int((8 + 10) * 8 * RATE / 300))
    tx.abort()                                    # mid-way through the second frame
    tx.queue(b"\xff\x13\xfa")
    tx.end()
    x = np.concatenate([first, tx.drain()])
    ev = V21Receiver().receive(_line(x))
    assert [(f.data, f.fcs_ok) for f in _frames(ev)] == [(b"\xff\x13\x84", False),
                                                       (b"\xff\x13\xfa", True)]
    assert any(isinstance(e, FrameAborted) for e in ev)


def test_idle_flags_keep_the_carrier_between_frames():
    tx = V21Transmitter(V21Config(preamble_ms=100))
    tx.queue(b"\xff\x03\x40" + b"ab")
    a = tx.samples(RATE)                  # more than needed: flags fill the gap
    assert len(a) == RATE and not tx.done
    tx.queue(b"\xff\x13\x80" + b"cd")
    tx.end()
    x = np.concatenate([a, tx.drain()])
    ev = V21Receiver().receive(_line(x))
    assert [f.data for f in _frames(ev)] == [b"\xff\x03\x40ab", b"\xff\x13\x80cd"]
    assert sum(isinstance(e, CarrierUp) for e in ev) == 1
    assert tx.samples(100).size == 0 and tx.done
    tx.restart()
    tx.send_frames([b"\xff\x13\x84"])
    assert [f.data for f in v21.demodulate(tx.drain())] == [b"\xff\x13\x84"]


@pytest.mark.parametrize("level,heard", [(-10.0, True), (-30.0, True), (-42.0, True),
                                         (-45.0, False), (-50.0, False)])
def test_carrier_cut_off_levels(level, heard):
    frames = [Frame(FCF.DIS, DIS().encode()).encode()]
    x = _line(v21.modulate(frames, V21Config(tx_level_dbm0=level)))
    rx = V21Receiver()
    ev = rx.receive(x)
    assert any(isinstance(e, CarrierUp) for e in ev) == heard
    assert ([f.data for f in _frames(ev) if f.fcs_ok] == frames) == heard


def test_carrier_hysteresis():
    # on at -40 dBm0; a drop to -46 dBm0 (above -48) keeps it; a drop to -52 ends it
    tx = V21Transmitter(V21Config(preamble_ms=2000), raw=False)
    x = tx.samples(3 * RATE).astype(float)
    x[:RATE] *= 10 ** ((-40 + 13) / 20)
    x[RATE:2 * RATE] *= 10 ** ((-46 + 13) / 20)
    x[2 * RATE:] *= 10 ** ((-52 + 13) / 20)
    ev = V21Receiver().receive(impair.saturate(x))
    ups = [e.sample for e in ev if isinstance(e, CarrierUp)]
    downs = [e.sample for e in ev if isinstance(e, CarrierDown)]
    assert len(ups) == 1 and ups[0] < RATE // 10
    assert len(downs) == 1 and 2 * RATE < downs[0] < 2 * RATE + RATE // 10


def test_power_reading():
    rx = V21Receiver()
    rx.receive(v21.modulate([b"\xff\x13\x80" * 10], V21Config(tx_level_dbm0=-20.0))[:6000])
    assert abs(rx.power_dbm0 - (-20.0)) < 1.0 and rx.carrier


def _ber(snr, n=3000, seed=1, impair_fn=None):
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2, n).astype(np.uint8)
    tx = V21Transmitter(raw=True)
    tx.put_bits(np.tile(FLAG, 4))          # a preamble of flags for the bit timing
    tx.put_bits(bits)
    tx.end()
    s = tx.drain()
    y = impair.concat(impair.silence(400), s, impair.silence(400))
    if impair_fn:
        y = impair_fn(y)
    if snr is not None:
        y = impair.with_snr(y, snr, rng, ref=y[400:400 + len(s) - 100])
    rx = V21Receiver(raw=True)
    rx.receive(y)
    e, total = impair.bit_errors(bits, rx.bits())
    return e / total


@pytest.mark.parametrize("snr,max_ber", [(20, 0.0), (6, 0.0), (2, 2e-3), (0, 1e-2), (-2, 5e-2)])
def test_bit_error_rate_in_white_noise(snr, max_ber):
    # SNR over the whole 4 kHz band; measured table in benchmarks/audio_fsk.py
    assert _ber(snr) <= max_ber


@pytest.mark.parametrize("ppm", [-100, 100])
def test_clock_drift(ppm):
    assert _ber(10, impair_fn=lambda y: impair.drift(y, ppm)) == 0.0


@pytest.mark.parametrize("delay_ms", [10, 30, 50])
def test_echo(delay_ms):
    assert _ber(12, impair_fn=lambda y: impair.echo(y, delay_ms, -20.0)) == 0.0


def test_g711_tandem_and_low_level():
    assert _ber(None, impair_fn=impair.g711_tandem) == 0.0
    assert _ber(None, impair_fn=lambda y: impair.gain(y, -30.0)) == 0.0   # -43 dBm0
    assert _ber(15, impair_fn=lambda y: impair.g711_tandem(impair.gain(y, -25.0))) == 0.0


@pytest.mark.parametrize("shift", [-15.0, 15.0])
def test_frequency_offset(shift):
    assert _ber(12, impair_fn=lambda y: impair.freq_shift(y, shift)) == 0.0


def test_speech_gives_no_frames():
    rx = V21Receiver()
    ev = rx.receive(impair.voiced_speech(30 * RATE, -12, 2))
    assert not [f for f in _frames(ev) if f.fcs_ok]


def test_frames_under_all_impairments_at_once():
    rng = np.random.default_rng(4)
    frames = t30_frames()[:4]
    x = _line(v21.modulate(frames, V21Config(tx_level_dbm0=-30.0)))
    y = impair.g711_tandem(impair.echo(impair.drift(x, -100), 20, -20.0))
    y = impair.with_snr(y, 10.0, rng, ref=x[np.abs(x) > 0])
    assert [f.data for f in v21.demodulate(y) if f.fcs_ok] == frames


@settings(max_examples=20)
@given(st.lists(st.integers(1, 4000), min_size=1, max_size=30))
def test_blocks_of_any_size_give_the_same_events(cuts):
    x = _line(v21.modulate(t30_frames()[:3], V21Config(preamble_ms=200)))
    whole = V21Receiver().receive(x)
    rx = V21Receiver()
    got, pos = [], 0
    for c in cuts:
        got += rx.receive(x[pos:pos + c])
        pos += c
    got += rx.receive(x[pos:])
    assert got == whole


@settings(max_examples=20)
@given(st.lists(st.integers(1, 3000), min_size=1, max_size=30))
def test_transmitter_blocks_of_any_size(cuts):
    ref = v21.modulate(t30_frames()[:2], V21Config(preamble_ms=100))
    tx = V21Transmitter(V21Config(preamble_ms=100))
    tx.send_frames(t30_frames()[:2])
    parts = [tx.samples(c) for c in cuts]
    parts.append(tx.drain())
    assert np.array_equal(np.concatenate(parts), ref)


def test_many_frames_in_one_block_do_not_overflow_the_queue():
    frames = [bytes([0xFF, 0x03, k]) for k in range(60)]      # more than the 16 event slots
    x = v21.modulate(frames, V21Config(preamble_ms=50))
    assert [f.data for f in v21.demodulate(x)] == frames


def test_arguments():
    with pytest.raises(ValueError):
        V21Config(channel=3)
    with pytest.raises(ValueError):
        V21Config(carrier_on_dbm0=-50, carrier_off_dbm0=-40)
    with pytest.raises(ValueError):
        V21Config(tx_level_dbm0=10)
    tx = V21Transmitter()
    with pytest.raises(ValueError):
        tx.queue(b"")
    with pytest.raises(ValueError):
        tx.queue(bytes(3000))
    with pytest.raises(ValueError):
        tx.put_bits([1, 0])
    with pytest.raises(ValueError):
        V21Transmitter(raw=True).queue(b"\xff\x13\x84")
    with pytest.raises(ValueError):
        V21Receiver().bits()
    with pytest.raises(OverflowError):
        for _ in range(100):
            tx.queue(b"\xff\x03" + bytes(500))
    tx = V21Transmitter(V21Config(preamble_ms=0))
    tx.send_frames([b"\xff\x13\x84"])
    tx.drain()
    with pytest.raises(ValueError):
        tx.queue(b"\xff\x13\x84")
    assert V21Receiver().receive(np.zeros(0, np.int16)) == []


def test_framing_flags_can_be_raised_and_lowered():
    """The terminal asks for more back-to-back flags while a high-speed carrier is expected
    (terminal.V21_FLAGS_BESIDE_HS): three flags are no preamble then, four are."""
    h = CHdlc()
    lib.xm_hdlc_rx_set_framing_flags(h.rx, 4)
    assert [t for t, _, _ in h.decode(np.tile(FLAG, 3))] == []
    assert [t for t, _, _ in h.decode(FLAG)] == [3]
    h = CHdlc()                                   # made with 2
    assert [t for t, _, _ in h.decode(np.tile(FLAG, 2))] == [3]
    rx = v21.V21Receiver()
    with pytest.raises(ValueError):
        rx.set_framing_flags(0)
