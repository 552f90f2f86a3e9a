"""Digests of every audio receiver's output over saved input files: a speed change to a
receiver is checked to leave its bits and events the same, to the bit.

The inputs are made once (``--save DIR``, with the transmitters of the day: xmfax's and
spandsp's, clean and impaired) and kept as .npy files, so a change to a transmitter
made meanwhile does not change what the receivers are given.  Then, with each build::

    python3 benchmarks/audio_rx_digest.py --save /tmp/rxin        # once
    python3 benchmarks/audio_rx_digest.py /tmp/rxin > before.txt   # old build
    python3 benchmarks/audio_rx_digest.py /tmp/rxin > after.txt    # new build
    diff before.txt after.txt

Each line: input file, receiver, the number of bits (or frames, or events), and a SHA-256
prefix of the bits and of the events with their sample positions.
"""
from __future__ import annotations

import argparse
import glob
import hashlib
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "audio"))

import impair  # noqa: E402  (tests/audio/impair.py)

HS = {"v17": (14400, 12000, 9600, 7200), "v29": (9600, 7200), "v27ter": (4800, 2400)}


def _hs_classes(modem: str):
    if modem == "v17":
        from xmfax.audio.v17 import V17Rx, V17Tx
        return V17Tx, V17Rx
    if modem == "v29":
        from xmfax.audio.v29 import V29Rx, V29Tx
        return V29Tx, V29Rx
    from xmfax.audio.v27ter import V27terRx, V27terTx
    return V27terTx, V27terRx


def _spandsp_tx(modem: str, rate: int, bits: np.ndarray) -> np.ndarray | None:
    try:
        if modem == "v17":
            import spandsp_v17
            if spandsp_v17.load() is None:
                return None
            tx = spandsp_v17.SpandspV17Tx(rate, bits, short_train=False, level_dbm0=-10.0)
        else:
            import spandsp_psk
            if spandsp_psk.load() is None:
                return None
            tx = spandsp_psk.SpandspTx(modem, rate, bits, level_dbm0=-10.0)
    except (ImportError, OSError):
        return None
    try:
        return tx.all()
    finally:
        tx.close()


def _impaired(x: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """``x`` (a clean -10 dBm0 transmission) under the benchmark tables' impairments."""
    pad = np.concatenate([np.zeros(37 + seed, np.int16), x, np.zeros(400, np.int16)])
    active = x[np.abs(x) > 0]
    out = {"clean": pad,
           "m43": impair.gain(pad, -33.0),
           "ppm+": impair.drift(pad, 100.0), "ppm-": impair.drift(pad, -100.0),
           "tandem": impair.g711_tandem(pad), "echo": impair.echo(pad, 30.0, -20.0)}
    for snr in (30, 24, 22, 20, 18, 16, 13, 10, 7):
        out[f"snr{snr}"] = impair.with_snr(pad, snr, rng=seed, ref=active)
    return out


def save(folder: str) -> None:
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(12)
    for modem, rates in HS.items():
        tx_cls, _ = _hs_classes(modem)
        for rate in rates:
            bits = rng.integers(0, 2, rate * 3).astype(np.uint8)
            tx = tx_cls(rate)
            tx.put_bits(bits)
            tx.finish()
            sources = {"x": tx.generate_all()}
            sp = _spandsp_tx(modem, rate, bits)
            if sp is not None:
                sources["s"] = sp
            for src, x in sources.items():
                for name, y in _impaired(x, rate % 11).items():
                    np.save(os.path.join(folder, f"{modem}_{rate}_{src}_{name}.npy"), y)
            if modem == "v17":          # a long training, then a short one (V.17 §7.3)
                short = tx_cls(rate, long_train=False)
                short.put_bits(bits[:4000])
                short.finish()
                y = np.concatenate([tx_cls_long(tx_cls, rate, bits[:800]), np.zeros(600, np.int16),
                                    short.generate_all(), np.zeros(400, np.int16)])
                np.save(os.path.join(folder, f"v17short_{rate}_x_clean.npy"), y)
                np.save(os.path.join(folder, f"v17short_{rate}_x_snr20.npy"),
                        impair.with_snr(y, 20, rng=3, ref=y[np.abs(y) > 0]))
    from xmfax.audio import tones, v21
    frames = [b"\xff\x03\x80" + rng.integers(0, 256, 30, dtype=np.uint8).tobytes() for _ in range(6)]
    x = np.concatenate([np.zeros(123, np.int16), v21.modulate(frames), np.zeros(800, np.int16)])
    for name, y in _impaired(x, 5).items():
        np.save(os.path.join(folder, f"v21_300_x_{name}.npy"), y)
    for snr in (4, 2, 0):
        np.save(os.path.join(folder, f"v21_300_x_snr{snr}.npy"),
                impair.with_snr(x, snr, rng=9, ref=x[np.abs(x) > 0]))
    for tone in tones.Tone:
        t = np.concatenate([np.zeros(333, np.int16), tones.generate(tone, 16000), np.zeros(4000, np.int16)])
        for name, y in _impaired(t, 2).items():
            if name in ("clean", "m43", "ppm+", "echo", "snr10", "snr7"):
                np.save(os.path.join(folder, f"tone_{tone.name}_x_{name}.npy"), y)
    np.save(os.path.join(folder, "tone_speech_x_clean.npy"), impair.speech_like(40000, -15.0, rng=4))


def tx_cls_long(tx_cls, rate: int, bits: np.ndarray) -> np.ndarray:
    tx = tx_cls(rate)
    tx.put_bits(bits)
    tx.finish()
    return tx.generate_all()


def _h(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def digest(path: str) -> str:
    base = os.path.basename(path)[:-4]
    modem, rate = base.split("_")[:2]
    x = np.load(path)
    if modem in ("v17", "v17short", "v29", "v27ter"):
        _, rx_cls = _hs_classes("v17" if modem == "v17short" else modem)
        rx = rx_cls(int(rate))
        parts, events = [], []
        for i in range(0, len(x), 160):
            parts.append(rx.receive(x[i:i + 160]))
            for e in rx.events():
                events.append((e.kind, e.bit, i))
                if modem == "v17short" and e.kind == "carrier-down" and \
                        not any(k == "carrier-down" for k, *_ in events[:-1]):
                    rx.restart(int(rate), long_train=False)
        bits = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
        return f"{base:28} bits {len(bits):6} {_h(bits.tobytes())} events {len(events):3} {_h(repr(events).encode())}"
    if modem == "v21":
        from xmfax.audio import v21
        rx = v21.V21Receiver()
        events = []
        for i in range(0, len(x), 160):
            events.extend(repr(e) for e in rx.receive(x[i:i + 160]))
        return f"{base:28} events {len(events):3} {_h(repr(events).encode())}"
    from xmfax.audio import tones
    det = tones.ToneDetector()
    events = []
    for i in range(0, len(x), 160):
        events.extend(repr(e) for e in det.receive(x[i:i + 160]))
    return f"{base:28} events {len(events):3} {_h(repr(events).encode())}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder")
    ap.add_argument("--save", action="store_true", help="make the input files in FOLDER")
    args = ap.parse_args()
    if args.save:
        save(args.folder)
        return
    for path in sorted(glob.glob(os.path.join(args.folder, "*.npy"))):
        print(digest(path))


if __name__ == "__main__":
    main()
