"""V.27 ter and V.29 against spandsp: bit errors against line impairments, and CPU cost.

For each modem and rate, and each direction (xmfax->xmfax, xmfax->spandsp,
spandsp->xmfax, spandsp->spandsp, measured in the same run): the lowest SNR (white
noise over the 4 kHz band, 1 dB steps) at which the receiver trains and delivers N
random bits with no error in at least 18 of 20 noise runs; then the bit errors at -10 and
-43 dBm0, with ±100 ppm clock drift, µ->A->µ tandem coding and a -20 dB echo after
30 ms.  Before that, the receivers' and transmitters' speed beside spandsp's.

Run: ``python3 benchmarks/audio_psk.py [--bits N] [--modem v27ter|v29] [--speed]``;
``--counts RUNS``: only the runs of RUNS with 0 errors at each SNR near the thresholds,
the four pairs side by side (what the lowest-SNR cells are drawn from).
The helpers (:func:`link`) are shared with tests/interop/test_audio_spandsp_psk.py.
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "interop"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "audio"))

import impair  # noqa: E402  (tests/audio/impair.py)

MODEMS = {"v27ter": (4800, 2400), "v29": (9600, 7200)}
SIDES = ("xmfax", "spandsp")


def _ours(modem: str):
    if modem == "v27ter":
        from xmfax.audio.v27ter import V27terRx, V27terTx
        return V27terTx, V27terRx
    from xmfax.audio.v29 import V29Rx, V29Tx
    return V29Tx, V29Rx


def transmit(side: str, modem: str, rate: int, bits: np.ndarray, level_dbm0: float = -10.0) -> np.ndarray:
    """The line signal of ``bits`` sent by ``side`` from its first non-zero sample, with
    50 ms of silence after it (so noise added to it lies over the transmission only)."""
    if side == "xmfax":
        tx_cls, _ = _ours(modem)
        return on_line(send_ours(tx_cls(rate, level_dbm0=level_dbm0), bits))
    import spandsp_psk
    return on_line(send_theirs(spandsp_psk.SpandspTx(modem, rate, bits, level_dbm0=level_dbm0)))


# ---- the pieces of transmit, receive and speed that audio_v17.py shares

def send_ours(tx, bits: np.ndarray) -> np.ndarray:
    """Every sample of an xmfax transmitter sending ``bits``."""
    tx.put_bits(bits)
    tx.finish()
    return tx.generate_all()


def send_theirs(tx) -> np.ndarray:
    """Every sample of a spandsp transmitter (spandsp_psk.SpandspTx and its kind), closed after."""
    try:
        return tx.all()
    finally:
        tx.close()


def on_line(x: np.ndarray) -> np.ndarray:
    """``x`` from its first non-zero sample, with 50 ms of silence after it (so noise added
    to it lies over the transmission only)."""
    nz = np.flatnonzero(x)
    x = x[nz[0]:] if len(nz) else x
    return np.concatenate([x, np.zeros(400, dtype=np.int16)])


def receive_ours(rx, x: np.ndarray) -> tuple[bool, np.ndarray]:
    """(trained, bits delivered) when the xmfax receiver ``rx`` gets ``x`` in 160-sample blocks."""
    parts = [rx.receive(x[i:i + 160]) for i in range(0, len(x), 160)]
    kinds = [e.kind for e in rx.events()]
    bits = np.concatenate(parts) if parts else np.zeros(0, np.uint8)
    return "training-succeeded" in kinds, bits


def time_ours(tx_cls, rx_cls, rate: int, bits: np.ndarray) -> tuple[np.ndarray, float, float]:
    """(the signal, process seconds to send ``bits``, process seconds to receive it in
    160-sample blocks) for xmfax's modem."""
    import time
    t = time.process_time()
    x = send_ours(tx_cls(rate), bits)
    our_tx = time.process_time() - t
    rx = rx_cls(rate)
    t = time.process_time()
    for i in range(0, len(x), 160):
        rx.receive(x[i:i + 160])
    return x, our_tx, time.process_time() - t


def time_theirs_rx(lib, name: str, rate: int, x: np.ndarray) -> float:
    """Process seconds for spandsp's receiver ``name`` (v29_rx ...) to take ``x`` in
    160-sample blocks, its put_bit a C no-op."""
    import ctypes
    import time

    from spandsp_audio import i16p, i32, vp
    init = getattr(lib, f"{name}_init")
    # long labs(long): a pure no-op put_bit (srand reseeds, 310 steps a call: 9x the rx time)
    noop = ctypes.cast(ctypes.CDLL(None).labs, vp)
    state = ctypes.CFUNCTYPE(vp, vp, i32, vp, vp)(ctypes.cast(init, vp).value)(None, rate, noop, None)
    t = time.process_time()
    for i in range(0, len(x), 160):
        c = np.ascontiguousarray(x[i:i + 160])
        getattr(lib, name)(state, c.ctypes.data_as(i16p), len(c))
    their_rx = time.process_time() - t
    getattr(lib, f"{name}_free")(state)
    return their_rx


def speed_line(label: str, sec: float, our_rx: float, their_rx: float, our_tx: float,
               their_tx: float) -> str:
    return (f"{label}: rx xmfax {sec / our_rx:6.0f}x  spandsp {sec / their_rx:6.0f}x real time; "
            f"tx xmfax {sec / our_tx:6.0f}x  spandsp {sec / their_tx:6.0f}x (with Python get_bit)")


IMPAIRMENT_HEADER = (f"{'tx -> rx':22} {'SNR dB':>7} {'-10dBm0':>8} {'-43dBm0':>8} {'+100ppm':>8} "
                     f"{'-100ppm':>8} {'tandem':>7} {'echo30':>7}")


def impairment_cells(one_link) -> str:
    """The bit errors of ``one_link(impairment=None, level_dbm0=-10.0)`` at each impairment
    of the table, as its cells."""
    checks = [
        one_link(level_dbm0=-10.0),
        one_link(level_dbm0=-43.0),
        one_link(lambda x: impair.drift(x, 100.0)),
        one_link(lambda x: impair.drift(x, -100.0)),
        one_link(impair.g711_tandem),
        one_link(lambda x: impair.echo(x, 30.0, -20.0)),
    ]
    return " ".join(f"{c:>8}" for c in checks[:4]) + f" {checks[4]:>7} {checks[5]:>7}"


def receive(side: str, modem: str, rate: int, x: np.ndarray) -> tuple[bool, np.ndarray]:
    """(trained, bits delivered) when ``side`` receives ``x``."""
    if side == "xmfax":
        _, rx_cls = _ours(modem)
        return receive_ours(rx_cls(rate), x)
    import spandsp_psk
    rx = spandsp_psk.SpandspRx(modem, rate)
    try:
        rx.receive(x)
        return rx.trained, np.array(rx.bits, dtype=np.uint8)
    finally:
        rx.close()


def errors(sent: np.ndarray, got: np.ndarray) -> int:
    """Bit errors of ``got`` against ``sent`` (missing bits count as errors)."""
    n = min(len(sent), len(got))
    return int(np.sum(sent[:n] != got[:n])) + (len(sent) - n)


def link(tx: str, rx: str, modem: str, rate: int, bits: np.ndarray, impairment=None,
         level_dbm0: float = -10.0) -> int:
    """Bit errors over one link (the number of bits when the receiver did not train)."""
    x = transmit(tx, modem, rate, bits, level_dbm0)
    if impairment is not None:
        x = impairment(x)
    trained, got = receive(rx, modem, rate, x)
    return errors(bits, got) if trained else len(bits)


def noisy(snr_db: float, seed: int = 7):
    """White noise ``snr_db`` below the signal, after a start delayed by 0-19 samples
    (chosen by ``seed``): spandsp's receivers train more or less often depending on
    where the symbols fall between samples, so every transmitter gets the same spread."""
    def apply(x):
        active = x[np.abs(x) > 0]
        delayed = np.concatenate([np.zeros(seed * 3 % 20, dtype=np.int16), x])
        return impair.with_snr(delayed, snr_db, rng=seed, ref=active)
    return apply


def delivered(results, need: float) -> bool:
    """Whether the share of realisations with 0 errors in ``results`` (bit errors per
    noise realisation) reaches ``need``."""
    return sum(1 for e in results if e == 0) >= need * len(results)


def lowest_snr(tx: str, rx: str, modem: str, rate: int, bits: np.ndarray,
               start: float = 30.0, stop: float = 0.0, seeds: int = 20,
               need: float = 0.9) -> float | None:
    """The lowest SNR (1 dB steps, going down from ``start``) at which at least ``need`` of
    ``seeds`` noise realisations (each its own noise and start offset, see :func:`noisy`)
    give 0 errors; None if even ``start`` does not.  The scan goes on past a failing level
    and stops after two failing levels in a row.  One realisation in ten may fail: near
    its threshold a receiver trains or not depending on the noise and on where the symbols
    fall between samples (spandsp's own V.29 pair fails 1-5 runs in 40 even at 20-22 dB),
    so "every one of 3 runs, stopping at the first failure" made a cell 1-4 dB pessimistic
    by luck."""
    best, misses = None, 0
    snr = start
    while snr >= stop and misses < 2:
        if delivered([link(tx, rx, modem, rate, bits, noisy(snr, seed)) for seed in range(seeds)], need):
            best, misses = snr, 0
        else:
            misses += 1
        snr -= 1.0
    return best


PAIRS = (("xmfax", "spandsp"), ("spandsp", "spandsp"), ("xmfax", "xmfax"), ("spandsp", "xmfax"))
# SNRs (dB) around the thresholds, for --counts
COUNT_SNRS = {("v29", 9600): range(22, 15, -1), ("v29", 7200): range(19, 12, -1),
              ("v27ter", 4800): range(16, 10, -1), ("v27ter", 2400): range(10, 4, -1)}


def print_counts(label: str, one_run, snrs, runs: int) -> None:
    """For each SNR of ``snrs``, the runs (of ``runs`` noise realisations) in which each
    pair delivers with 0 errors; ``one_run(tx, rx, snr, seed)`` gives the bit errors of one."""
    print(f"\n{label}: runs of {runs} with 0 errors (each its own noise and start offset)")
    print(f"{'SNR dB':>6}" + "".join(f"{t + '>' + r:>17}" for t, r in PAIRS))
    for snr in snrs:
        row = [sum(1 for seed in range(runs) if one_run(t, r, float(snr), seed) == 0) for t, r in PAIRS]
        print(f"{snr:>6}" + "".join(f"{c:>17}" for c in row), flush=True)


def speed(modem: str, rate: int, seconds: int = 30) -> str:
    """Receivers and transmitters in 160-sample blocks: times real time, xmfax vs spandsp
    (spandsp's put_bit is a C no-op, its get_bit a Python callback as in the harness)."""
    import time

    import spandsp_psk

    lib = spandsp_psk.load()
    bits = np.random.default_rng(1).integers(0, 2, rate * seconds).astype(np.uint8)
    x, our_tx, our_rx = time_ours(*_ours(modem), rate, bits)
    their_rx = time_theirs_rx(lib, "v27ter_rx" if modem == "v27ter" else "v29_rx", rate, x)
    t = time.process_time()
    transmit("spandsp", modem, rate, bits)
    their_tx = time.process_time() - t
    return speed_line(f"{modem} {rate}", len(x) / 8000, our_rx, their_rx, our_tx, their_tx)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bits", type=int, default=20000)
    ap.add_argument("--modem", choices=sorted(MODEMS), action="append")
    ap.add_argument("--speed", action="store_true", help="only the speed table")
    ap.add_argument("--counts", type=int, metavar="RUNS",
                    help="only: clean runs of RUNS at each SNR near the thresholds, four pairs")
    args = ap.parse_args()
    import spandsp_psk
    if spandsp_psk.load() is None:
        sys.exit("spandsp not available")
    if args.counts:
        bits = np.random.default_rng(1).integers(0, 2, args.bits).astype(np.uint8)
        for modem in args.modem or sorted(MODEMS):
            for rate in MODEMS[modem]:
                print_counts(f"{modem} {rate}, {args.bits} random bits",
                             lambda t, r, snr, seed: link(t, r, modem, rate, bits, noisy(snr, seed)),
                             COUNT_SNRS[modem, rate], args.counts)
        return
    print("CPU cost (process time, one core):")
    for modem in args.modem or sorted(MODEMS):
        for rate in MODEMS[modem]:
            print(" ", speed(modem, rate))
    if args.speed:
        return
    bits = np.random.default_rng(1).integers(0, 2, args.bits).astype(np.uint8)
    for modem in args.modem or sorted(MODEMS):
        for rate in MODEMS[modem]:
            print(f"\n{modem} {rate} bit/s, {args.bits} random bits: lowest SNR with 0 errors "
                  "(18 of 20 runs); "
                  "bit errors at each impairment")
            print(IMPAIRMENT_HEADER)
            for tx in SIDES:
                for rx in SIDES:
                    snr = lowest_snr(tx, rx, modem, rate, bits)
                    cells = impairment_cells(functools.partial(link, tx, rx, modem, rate, bits))
                    print(f"{tx + ' -> ' + rx:22} {snr if snr is not None else '-':>7} {cells}")


if __name__ == "__main__":
    main()
