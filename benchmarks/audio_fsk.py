"""V.21 channel 2 + HDLC and the fax tones against spandsp, measured in the same run.

Tables printed:
1. V.21 frames: for each pair (xmfax->xmfax, spandsp->spandsp, xmfax->spandsp,
   spandsp->xmfax), frames lost or damaged out of N (each an 11-octet frame in its own
   carrier, 200 ms preamble) in white noise (SNR over the 4 kHz band), and the lowest
   SNR with no frame error.
2. V.21 bit error rate on random bits at a few SNRs (mean of 3 noise realisations).
3. Tone detection: the lowest SNR at which each detector hears each generator's tone
   in 5 of 5 noise realisations.
4. Speed: samples per second of each transmitter and receiver (process CPU time),
   ours through cffi, spandsp's through ctypes with C callbacks between its blocks.

Run: ``python3 benchmarks/audio_fsk.py [--frames N] [--bits N]``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

import spandsp_audio as sa  # noqa: E402
from audio import impair  # noqa: E402

if sa.load() is None:
    sys.exit(sa.unavailable_reason())

import test_audio_spandsp_v21 as v21pairs  # noqa: E402  (the four V.21 pairs)
from xmfax.audio import tones, v21  # noqa: E402


def frame_table(n: int, snrs) -> None:
    print(f"\nV.21 ch2 + HDLC: frames lost or damaged out of {n} (white noise, SNR over 4 kHz)")
    pairs = list(v21pairs.PAIRS)
    print(f"{'SNR dB':>7} " + " ".join(f"{p:>16}" for p in pairs))
    lowest = {p: None for p in pairs}
    clean = {p: True for p in pairs}
    for snr in sorted(snrs, reverse=True):
        row = {p: v21pairs.frame_errors(p, snr, n, seed=int(snr * 10) + 1000) for p in pairs}
        for p in pairs:
            clean[p] = clean[p] and row[p] == 0
            if clean[p]:
                lowest[p] = snr
        print(f"{snr:>7.0f} " + " ".join(f"{row[p]:>16d}" for p in pairs))
    print(f"{'lowest SNR with 0 errors':>24}: " + ", ".join(f"{p} {lowest[p]} dB" for p in pairs))


def ber_table(bits: int, snrs) -> None:
    print(f"\nV.21 ch2 bit error rate, 3 x {bits} random bits a point (3 noise realisations)")
    pairs = {"xmfax>xmfax": (True, True), "spandsp>spandsp": (False, False),
             "xmfax>spandsp": (True, False), "spandsp>xmfax": (False, True)}
    print(f"{'SNR dB':>7} " + " ".join(f"{p:>16}" for p in pairs))
    for snr in snrs:
        print(f"{snr:>7.0f} " + " ".join(
            f"{np.mean([v21pairs._ber_pair(t, r, snr, n=bits, seed=k) for k in (7, 8, 9)]):>16.2e}"
            for t, r in pairs.values()))


def tone_table() -> None:
    print("\nTones: lowest SNR (dB, 1 dB steps) heard in 5/5 noise realisations, level -13 dBm0")
    print(f"{'tone':>6} {'xmfax tone, xmfax det':>22} {'spandsp tone, spandsp det':>26} "
          f"{'spandsp tone, xmfax det':>24} {'xmfax tone, spandsp det':>24}")

    def ours_hear(x):
        return any(isinstance(e, tones.ToneOn) for e in tones.detect(x))

    def sp_hear(x, tone):
        r = sa.ToneRx(sa.TONE_CNG if tone == tones.Tone.CNG else sa.TONE_ANSAM_PR)
        r.rx(x)
        heard = bool(r.detected())
        r.close()
        return heard

    for tone in (tones.Tone.CNG, tones.Tone.ANS, tones.Tone.ANSAM):
        n = 3 * 8000 if tone == tones.Tone.CNG else None
        ours = tones.generate(tone, n, level_dbm0=-13.0)
        theirs = sa.tone_tx(int(tone), 3 * 8000 if tone == tones.Tone.CNG else 36000)
        cells = []
        for sig, det in ((ours, "x"), (theirs, "s"), (theirs, "x"), (ours, "s")):
            lowest = None
            for snr in range(30, -10, -1):
                ok = True
                for seed in range(5):
                    y = impair.with_snr(impair.concat(impair.silence(800), sig, impair.silence(1600)),
                                        snr, seed, ref=sig[np.abs(sig) > 0])
                    if not (ours_hear(y) if det == "x" else sp_hear(y, tone)):
                        ok = False
                        break
                if not ok:
                    break
                lowest = snr
            cells.append("-" if lowest is None else str(lowest))
        print(f"{tone.name:>6} {cells[0]:>22} {cells[1]:>26} {cells[2]:>24} {cells[3]:>24}")


def _rate(fn, samples: int) -> float:
    """Samples per CPU second, running ``fn`` again until 0.3 s of CPU time have passed."""
    runs = 0
    t0 = time.process_time()
    while True:
        fn()
        runs += 1
        dt = time.process_time() - t0
        if dt >= 0.3:
            return runs * samples / dt


def speed_table() -> None:
    print("\nSpeed (samples per second of CPU; 8000 = real time)")
    rng = np.random.default_rng(1)
    frames = [b"\xff\x03\x80" + rng.integers(0, 256, 60, dtype=np.uint8).tobytes() for _ in range(12)]
    ours_sig = v21.modulate(frames)
    sp_sig = v21pairs.spandsp_tx(frames)
    n = len(ours_sig)

    def ours_tx():
        v21.modulate(frames)

    def sp_tx():
        v21pairs.spandsp_tx(frames)

    def ours_rx():
        v21.V21Receiver().receive(sp_sig)

    def sp_rx():
        r = sa.V21HdlcRx()
        r.rx(ours_sig, block=8000)
        r.close()

    tone_sig = tones.generate(tones.Tone.ANSAM_PR, 80000)

    def ours_tone_rx():
        tones.ToneDetector().receive(tone_sig)

    def sp_tone_rx():
        r = sa.ToneRx(sa.TONE_ANSAM_PR)
        r.rx(tone_sig, block=8000)
        r.close()

    def ours_tone_tx():
        tones.generate(tones.Tone.ANSAM_PR, 80000, duration_ms=10000)

    def sp_tone_tx():
        sa.tone_tx(sa.TONE_ANSAM_PR, 80000)

    rows = [("V.21 tx (HDLC frames)", _rate(ours_tx, n), _rate(sp_tx, len(sp_sig))),
            ("V.21 rx (HDLC frames)", _rate(ours_rx, len(sp_sig)), _rate(sp_rx, n)),
            ("tone tx (ANSam/PR)", _rate(ours_tone_tx, 80000), _rate(sp_tone_tx, 80000)),
            ("tone rx (CNG+ANS / ANSam)", _rate(ours_tone_rx, 80000), _rate(sp_tone_rx, 80000))]
    print(f"{'':>28} {'xmfax':>14} {'spandsp':>14} {'xmfax x real time':>18}")
    for name, ours, theirs in rows:
        print(f"{name:>28} {ours:>14,.0f} {theirs:>14,.0f} {ours / 8000:>18,.0f}")
    print("(spandsp's V.21 tx/rx pass through Python for each frame and each 160-sample block"
          " of the tx; its rx runs in blocks of 8000)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--bits", type=int, default=40000)
    args = ap.parse_args()
    frame_table(args.frames, [8, 6, 5, 4, 3, 2, 1, 0])
    ber_table(args.bits, [4, 2, 0, -2, -4])
    tone_table()
    speed_table()


if __name__ == "__main__":
    main()
