"""xm_listen_run (native/audio/listen.c): the terminal's one call a block runs the tone
detector, a high-speed receiver and the V.21 receiver exactly as their own calls do."""
import numpy as np
import pytest

from xmfax.audio import tones as T
from xmfax.audio._c import ffi, lib
from xmfax.audio.v17 import V17Rx, V17Tx
from xmfax.audio.v21 import V21Receiver, modulate
from xmfax.audio.v27ter import V27terRx, V27terTx
from xmfax.audio.v29 import V29Rx, V29Tx


def _line(tx_cls, rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tx = tx_cls(rate, level_dbm0=-13.0)
    tx.put_bits(rng.integers(0, 2, 4000).astype(np.uint8))
    tx.finish()
    frames = [bytes([0xFF, 0x13, 0x80 + k]) + bytes(range(k)) for k in range(20)]
    parts = [np.zeros(400, np.int16), T.generate(T.Tone.ANS, 6000), np.zeros(800, np.int16),
             modulate(frames), np.zeros(600, np.int16), tx.generate_all(), np.zeros(2000, np.int16)]
    x = np.concatenate(parts).astype(float) + rng.normal(0.0, 20.0, sum(map(len, parts)))
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


@pytest.mark.parametrize("tx_cls,rx_cls,rate", [(V17Tx, V17Rx, 14400), (V29Tx, V29Rx, 9600),
                                                (V27terTx, V27terRx, 4800)])
@pytest.mark.parametrize("block", [160, 4001])
def test_one_call_equals_separate_calls(tx_cls, rx_cls, rate, block):
    x = _line(tx_cls, rate, seed=block)
    # separately
    tone_a, hs_a, v21_a = T.ToneDetector(), rx_cls(rate), V21Receiver()
    want = []
    for k in range(0, len(x), block):
        part = x[k:k + block]
        want.append((tone_a.receive(part), hs_a.receive(part).tolist(), hs_a.events(),
                     v21_a.receive(part)))
    # together
    tone_b, hs_b, v21_b = T.ToneDetector(), rx_cls(rate), V21Receiver()
    lo = ffi.new("xm_listen_out *")
    got = []
    for k in range(0, len(x), block):
        part = np.ascontiguousarray(x[k:k + block])
        n = len(part)
        ptr = ffi.from_buffer("int16_t[]", part)
        bptr, cap = hs_b._bits_buffer(n)
        lib.xm_listen_run(ptr, n, tone_b._s, hs_b.LISTEN_KIND, hs_b._s, bptr, cap, v21_b._s, lo)
        tones = tone_b._receive_ptr(ptr, n, lo.tone_done)
        bits = hs_b._listened(lo).tolist()
        got.append((tones, bits, hs_b.events(), v21_b._receive_ptr(ptr, n, lo.v21_done)))
    assert got == want
    assert any(w[1] for w in want) and any(w[3] for w in want) and any(w[0] for w in want)


def _ecm_line(frames, rate: int = 14400) -> np.ndarray:
    from xmfax.audio.hsbits import _hdlc_bits
    tx = V17Tx(rate, level_dbm0=-13.0)
    tx.put_bits(_hdlc_bits(frames, 50, 4))
    tx.finish()
    return np.concatenate([np.zeros(800, np.int16), tx.generate_all(), np.zeros(1600, np.int16)])


@pytest.mark.parametrize("block", [160, 8000])
def test_ecm_frames_deframed_in_c_are_the_python_deframers(block):
    """With lo.hdlc set, a block of trained high-speed bits with no status event is deframed
    by xm_listen_run itself: the same frames, good and bad, in the same order, as
    hsbits._Deframer over the same bits. An 8000-sample block holds more small frames than
    the slots: feeding stops early (hdlc_fed < nbits) and the caller deframes the rest."""
    from xmfax.audio.hsbits import MAX_FRAME, _Deframer
    frames = [bytes([0xFF, 0x03, 0x06, k % 256]) + bytes(k % 7) for k in range(600)]
    x = _ecm_line(frames)
    rx_a, rx_b = V17Rx(14400), V17Rx(14400)
    py, dfr_a = [], _Deframer()
    c, dfr_b = [], _Deframer()
    lo = ffi.new("xm_listen_out *")
    fbuf = ffi.new("uint8_t[]", lib.XM_LISTEN_FRAMES * (MAX_FRAME + 2))
    lo.fbuf, lo.fstride = fbuf, MAX_FRAME + 2
    early = 0
    for k in range(0, len(x), block):
        part = np.ascontiguousarray(x[k:k + block])
        bits = rx_a.receive(part)
        rx_a.events()
        py.extend(dfr_a.feed(bits) if len(bits) else [])
        n = len(part)
        lo.hdlc = dfr_b._h
        bptr, cap = rx_b._bits_buffer(n)
        lib.xm_listen_run(ffi.from_buffer("int16_t[]", part), n, ffi.NULL, rx_b.LISTEN_KIND, rx_b._s,
                          bptr, cap, ffi.NULL, lo)
        got = rx_b._listened(lo)
        if lo.hdlc_fed:
            assert not rx_b.events()
            c.extend((bytes(ffi.buffer(fbuf + i * lo.fstride, lo.flen[i])), bool(lo.fok[i]))
                     for i in range(lo.nframes))
            if lo.hdlc_fed < lo.nbits:
                early += 1
                c.extend(dfr_b.feed(got[lo.hdlc_fed:]))
        else:
            rx_b.events()
            c.extend(dfr_b.feed(got) if len(got) else [])
    assert c == py
    assert [f for f, ok in py if ok] == frames
    assert (early > 0) == (block == 8000)


def test_no_hdlc_no_deframing():
    x = _ecm_line([b"\xff\x03\x06\x01"] * 5)
    rx = V17Rx(14400)
    lo = ffi.new("xm_listen_out *")
    for k in range(0, len(x), 160):
        part = np.ascontiguousarray(x[k:k + 160])
        bptr, cap = rx._bits_buffer(160)
        lib.xm_listen_run(ffi.from_buffer("int16_t[]", part), len(part), ffi.NULL, rx.LISTEN_KIND,
                          rx._s, bptr, cap, ffi.NULL, lo)
        assert lo.hdlc_fed == lo.nframes == 0
