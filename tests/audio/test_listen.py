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
