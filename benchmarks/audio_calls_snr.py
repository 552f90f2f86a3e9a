"""Whole audio fax calls under white noise: the lowest SNR at which each rate still delivers
its TCF and a page, xmfax beside spandsp, measured in the same run (issue #12, "Print a table
of the lowest SNR at which each modem still delivers its TCF and a page").

For each rate (V.17 14400/12000/9600/7200, V.29 9600/7200, V.27 ter 4800/2400) and each
pairing ``sender>receiver`` of xmfax (AudioTerminal) and spandsp (``fax_state`` through
tests/interop/spandsp_fax_audio.py), one-page calls with both ends in one process, in
simulated time (20 ms blocks each way, each end taking the other's block of the same tick):

- **Noise**: white Gaussian noise is added at the receiver input of BOTH directions, ``snr``
  dB below the level of the modem signal travelling that way; over the signal only, from
  each transmission's first sample to its last (as benchmarks/audio_psk.py lays noise over a
  transmission; noise before a carrier starts, or after it stops, is heard as the carrier
  itself by spandsp's carrier detectors, and the call fails for that, not for the SNR),
  or with ``--noise continuous`` all the time, silences too (then the noise itself is near
  or above T.30's -43 dBm0 carrier cut-off from about 30 dB SNR down).
  That level is measured, not assumed: at the start of the run each engine's clean call is
  recorded and the median power of its active 100 ms blocks taken (xmfax: -13 dBm0, its
  AudioConfig default; spandsp: -14 dBm0; the figures are printed). Noise as
  tests/audio/impair.py makes it (``impair.noise``, seeded per call and direction).
- **The rate is pinned**: both ends offer only the families the rate needs (V.27 ter; V.29
  for V.29 and V.17; V.17), an xmfax sender has ``max_rate`` the rate. spandsp's sender
  always starts at the top of the family (it has no max-rate setting), so the line refuses
  its start above the rate the way a bad line does: a monitor (xmfax's V.21 receiver on the
  clean signal) reads every DCS on the line, and the TCF that follows a DCS above the rate is
  replaced by a bad one (xmfax's transmitter at the DCS's modulation, ones instead of zeros:
  the receiver trains, judges it bad, answers FTT, and the sender steps down). The
  same monitor gives the rate each call's page went at, whoever sent it: a call whose
  page went below the rate (a fallback) is a failure at that rate.
- **A success** (``ok``): the sender said success, the receiver said success, the page arrived
  pixel-identical with no bad row reported, at the rate. Anything else is not ok:
  ``fb`` success at a lower rate, ``f`` success with reported bad rows, ``!`` an end said
  success with a page that differs and no bad row reported (a lie: must never happen),
  failed otherwise. ECM is off by default (TCF and a non-ECM page; ``--ecm`` for on).

A cell is the lowest SNR (1 dB steps down from the rate's start, ``--snr``) at which every
seed succeeded, the levels above it all-ok too; ``>S`` if the start level already failed.
Beside it the success counts at that level and the two below it. The scan of a cell goes on
down until a level where no seed succeeds (at most ``--span`` dB).

    python3 benchmarks/audio_calls_snr.py [--rates 14400,9600,...] [--pairs xx,ss,xs,sx]
        [--seeds 3] [--snr START] [--span 12] [--ecm] [--rows 400] [--from-top]
        [--noise gated|continuous] [--level-sweep SNR] [--counts SNRS] [--no-scan]

Page: the first ``--rows`` (400) rows of ITU T.24 itu1 (1728 wide, fine) from
../shared/corpus/itu when present, else a synthetic text-like page.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for p in (os.path.join(ROOT, "tests", "interop"), os.path.join(ROOT, "tests", "audio"), HERE, ROOT):
    if p not in sys.path:
        sys.path.insert(0, p)

import impair  # noqa: E402  (tests/audio/impair.py)

from xmfax.audio import g711  # noqa: E402
from xmfax.audio.v21 import CarrierDown, HdlcFrame, V21Receiver  # noqa: E402
from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.fcf import FCF  # noqa: E402
from xmfax.t30.frames import DCS, decode_frame  # noqa: E402

BLOCK = 160
# rate -> (family, the first SNR tried): a few dB above where the modems alone stop
RATES = {"V.17 14400": ("V.17", 14400, 27), "V.17 12000": ("V.17", 12000, 25),
         "V.17 9600": ("V.17", 9600, 23), "V.17 7200": ("V.17", 7200, 20),
         "V.29 9600": ("V.29", 9600, 27), "V.29 7200": ("V.29", 7200, 23),
         "V.27 ter 4800": ("V.27 ter", 4800, 19), "V.27 ter 2400": ("V.27 ter", 2400, 14)}
PAIRS = {"xx": ("xmfax", "xmfax"), "ss": ("spandsp", "spandsp"),
         "xs": ("xmfax", "spandsp"), "sx": ("spandsp", "xmfax")}
QUIET = 16          # |sample| at or below this is silence (spandsp's idle floor is +-4)
# spandsp/t30.h T30_ERR_* (0.0.6)
SPANDSP_ERR = {3: "T1_EXPIRED", 6: "CANNOT_TRAIN", 13: "UNEXPECTED", 14: "TX_BADDCS", 15: "TX_BADPG",
               16: "TX_ECMPHD", 17: "TX_GOTDCN", 18: "TX_INVALRSP", 19: "TX_NODIS", 20: "TX_PHBDEAD",
               21: "TX_PHDDEAD", 22: "TX_T5EXP", 48: "RETRYDCN", 49: "CALLDROPPED"}


def families(family: str) -> set:
    """The families both ends offer for a rate of ``family``: DIS has no code for V.17 without
    V.29, nor V.29 without V.27 ter (Table 2/T.30 bits 11-14)."""
    return {"V.27 ter": {M.Family.V27TER}, "V.29": {M.Family.V27TER, M.Family.V29},
            "V.17": {M.Family.V27TER, M.Family.V29, M.Family.V17}}[family]


# ---------------------------------------------------------------------------- the two engines
class XmfaxEnd:
    def __init__(self, calling: bool, family: str, rate: int, ecm: bool, pages=None, tmp=None):
        from xmfax.audio.terminal import AudioConfig, AudioTerminal
        from xmfax.t30.config import T30Config
        from xmfax.t30.session import Session

        cfg = AudioConfig.limit_t30(T30Config(ecm=ecm, max_rate=rate if calling else 14400,
                                              modems=frozenset(families(family))))
        self.sess = (Session(cfg, calling=True, pages=pages) if calling
                     else Session(cfg, calling=False, receive=True))
        self.term = AudioTerminal(self.sess)
        self.term.start(0.0)

    def send(self, n: int, now: float) -> np.ndarray:
        return self.term.samples_to_send(n, now)

    def receive(self, x: np.ndarray, now: float) -> None:
        self.term.receive_samples(x, now)
        due = self.term.next_timer()
        if due is not None and due <= now:
            self.term.handle_timer(now)

    @property
    def done(self) -> bool:
        return self.term.done

    def said_success(self) -> bool:
        return self.sess.result.status == "success"

    def received(self) -> tuple[list, int]:
        """(the images received, bad rows reported)."""
        r = self.sess.result
        return [p.image for p in r.received_pages], sum(s.bad_rows for s in r.pages_received)

    def why(self) -> str:
        r = self.sess.result
        return str(getattr(r.reason, "name", r.reason))

    def close(self) -> None:
        pass


class SpandspEnd:
    def __init__(self, calling: bool, family: str, rate: int, ecm: bool, pages=None, tmp=None):
        import spandsp_fax_audio as sf

        bits = {M.Family.V27TER: sf.MODEM_V27TER, M.Family.V29: sf.MODEM_V29, M.Family.V17: sf.MODEM_V17}
        modems = sum(bits[f] for f in families(family))
        self.n_pages = len(pages) if pages else 1
        self.rx_path = os.path.join(tmp, "rx.tif")
        if not calling and os.path.exists(self.rx_path):
            os.unlink(self.rx_path)
        self.fax = (sf.SpandspFax(True, tx_file=os.path.join(tmp, "tx.tif"), ecm=ecm, modems=modems)
                    if calling else sf.SpandspFax(False, rx_file=self.rx_path, ecm=ecm, modems=modems))
        self.calling = calling

    def send(self, n: int, now: float) -> np.ndarray:
        return self.fax.send(n)

    def receive(self, x: np.ndarray, now: float) -> None:
        self.fax.receive(x)

    @property
    def done(self) -> bool:
        return self.fax.completion is not None

    def said_success(self) -> bool:
        st = self.fax.stats()
        count = st.pages_tx if self.calling else st.pages_rx
        return self.fax.completion == 0 and count == self.n_pages

    def received(self) -> tuple[list, int]:
        from xmfax.document import load
        st = self.fax.stats()
        got = [p.image for p in load(self.rx_path)] if st.pages_rx and os.path.exists(self.rx_path) else []
        return got, st.bad_rows

    def why(self) -> str:
        c = self.fax.completion
        return "no phase E" if c is None else SPANDSP_ERR.get(c, f"T30_ERR {c}")

    def close(self) -> None:
        self.fax.close()


ENGINES = {"xmfax": XmfaxEnd, "spandsp": SpandspEnd}


# ---------------------------------------------------------------------------- the line
class Line:
    """One direction: reads the DCS frames on the clean signal (xmfax's V.21 receiver as a
    monitor), mutes the TCF after a DCS above ``pin`` (None: never), then applies ``gain_db``
    of line loss and adds the noise."""


    def __init__(self, noise_dbm0: float | None, seed: int, pin: int | None = None, gain_db: float = 0.0,
                 gated: bool = True):
        self.noise_dbm0, self.gain_db, self.gated = noise_dbm0, gain_db, gated
        self.active = False
        self.rng = np.random.default_rng(seed)
        self.pin = pin
        self.monitor = V21Receiver()
        self.dcs_rates: list[int] = []       # every DCS seen, in order
        self.state = "idle"                  # idle -> dcs (a DCS above pin) -> gap -> mute -> idle
        self.muted = 0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        for ev in self.monitor.receive(x):
            if isinstance(ev, HdlcFrame) and ev.fcs_ok:
                try:
                    f = decode_frame(ev.data)
                except Exception:
                    continue
                if f.fcf is FCF.DCS:
                    mod = DCS.decode(f.fif).modulation
                    self.dcs_rates.append(mod.bit_rate)
                    if self.pin is not None and mod.bit_rate > self.pin:
                        self.state, self.refused = "dcs", mod
            elif isinstance(ev, CarrierDown) and self.state == "dcs":
                self.state = "gap"
        loud = bool(len(x)) and int(np.max(np.abs(x.astype(np.int32)))) > QUIET
        if self.state == "gap" and loud:
            self.state = "mute"                           # the TCF after the DCS (T.30 §5.3.6.2)
            self.muted += 1
            self.bad_tcf = bad_tcf(self.refused, x)
        if self.state == "mute":
            if not loud:
                self.state = "idle"
            else:
                x, self.bad_tcf = self.bad_tcf[:len(x)], self.bad_tcf[len(x):]
                x = np.concatenate([x, np.zeros(BLOCK - len(x), np.int16)]) if len(x) < BLOCK else x
        clean = x                                         # the signal sent, before the line's loss
        if self.gain_db:
            x = impair.gain(x, self.gain_db)
        if self.noise_dbm0 is None:
            return x
        n = impair.noise(len(x), self.noise_dbm0, self.rng).astype(np.float64)
        if self.gated:
            n *= self.gate(clean)
        return impair.saturate(x.astype(np.float64) + n)

    def gate(self, x: np.ndarray) -> np.ndarray:
        """1 over the samples of a signal (from its first loud sample to its last), else 0."""
        mask = np.zeros(len(x))
        idx = np.flatnonzero(np.abs(x.astype(np.int32)) > QUIET)
        if len(idx):
            end = idx[-1] + 1
            mask[0 if self.active else idx[0]:end] = 1.0
            self.active = len(x) - end < 40          # the signal goes on into the next block
        else:
            self.active = False
        return mask


def bad_tcf(mod, like: np.ndarray) -> np.ndarray:
    """A TCF that every receiver trains on and judges bad: long training, then 1.5 s of ones
    in place of zeros (T.30 §5.3.6.2.3), at ``mod`` and at the level of ``like`` (the first
    block of the real TCF), sent by xmfax's transmitter."""
    from xmfax.audio.v17 import V17Tx
    from xmfax.audio.v27ter import V27terTx
    from xmfax.audio.v29 import V29Tx

    cls = {M.Family.V17: V17Tx, M.Family.V29: V29Tx, M.Family.V27TER: V27terTx}[mod.family]
    level = 10 * np.log10(max(impair.power(like[np.abs(like) > QUIET]), 1.0) / g711.dbm0_to_rms(0.0) ** 2)
    tx = cls(mod.bit_rate, level_dbm0=float(np.clip(level, -40.0, 0.0)))
    tx.put_bits(np.ones(int(mod.bit_rate * 1.5), np.uint8))
    tx.finish()
    x = tx.generate_all()
    nz = np.flatnonzero(x)
    return x[nz[0]:] if len(nz) else x


@dataclass(frozen=True)
class Outcome:
    kind: str          # ok | fallback | flagged | WRONG | failed
    rate: int          # the rate of the last DCS before the page (0: none)
    why: str           # the sender's reason when it did not succeed
    line_time: float


def classify(pages, got: list, sender_ok: bool, receiver_ok: bool, bad_rows: int, rate: int,
             target: int) -> str:
    identical = len(got) == len(pages) and all(
        g.shape == p.image.shape and np.array_equal(g, p.image) for g, p in zip(got, pages))
    if (sender_ok or receiver_ok) and not identical and bad_rows == 0:
        return "WRONG"
    if not (sender_ok and receiver_ok):
        return "failed"
    if not identical or bad_rows:
        return "flagged"
    return "ok" if rate == target else "fallback"


def call(pair: tuple[str, str], name: str, snr: float | None, seed: int, pages, tmp: str, levels: dict,
         *, ecm: bool = False, gain_db: float = 0.0, gated: bool = True, from_top: bool = False,
         limit: float = 240.0) -> Outcome:
    """One call of ``pages`` from ``pair[0]`` to ``pair[1]`` at rate ``name`` (RATES), noise
    ``snr`` dB below each direction's signal (None: no noise); ``gain_db`` of line loss."""
    family, rate, _ = RATES[name]
    top = {"V.17": 14400, "V.29": 9600, "V.27 ter": 4800}[family]
    tx = ENGINES[pair[0]](True, family, top if from_top else rate, ecm, pages, tmp)
    rx = ENGINES[pair[1]](False, family, rate, ecm, None, tmp)
    try:
        def noise(sender):
            return None if snr is None else levels[sender] + gain_db - snr
        fwd = Line(noise(pair[0]), seed * 2 + 1000, pin=rate, gain_db=gain_db, gated=gated)
        back = Line(noise(pair[1]), seed * 2 + 1001, gain_db=gain_db, gated=gated)
        k = 0
        while not (tx.done and rx.done) and k * BLOCK < limit * 8000:
            now = k * BLOCK / 8000
            a, b = tx.send(BLOCK, now), rx.send(BLOCK, now)
            k += 1
            now = k * BLOCK / 8000
            rx.receive(fwd(a), now)
            tx.receive(back(b), now)
        got, bad = rx.received()
        s_ok, r_ok = tx.said_success(), rx.said_success()
        last = fwd.dcs_rates[-1] if fwd.dcs_rates else 0
        kind = classify(pages, got, s_ok, r_ok, bad, last, rate)
        return Outcome(kind, last, "" if kind == "ok" else (tx.why() if not s_ok else kind), k * BLOCK / 8000)
    finally:
        tx.close()
        rx.close()


def measure_levels(pages, tmp: str) -> dict[str, float]:
    """Each engine's transmit level, dBm0: the median power of the active 100 ms blocks of
    both ends of a clean call between two of its own (V.29 9600, no ECM)."""
    levels = {}
    for engine in ("xmfax", "spandsp"):
        tx = ENGINES[engine](True, "V.29", 9600, False, pages, tmp)
        rx = ENGINES[engine](False, "V.29", 9600, False, None, tmp)
        out_a, out_b = [], []
        k = 0
        try:
            while not (tx.done and rx.done) and k < 12000:
                a, b = tx.send(BLOCK, k / 50), rx.send(BLOCK, k / 50)
                out_a.append(a)
                out_b.append(b)
                k += 1
                rx.receive(a, k / 50)
                tx.receive(b, k / 50)
        finally:
            tx.close()
            rx.close()
        p = []
        for out in (out_a, out_b):
            x = np.concatenate(out).astype(np.float64)
            x = x[:len(x) // 800 * 800].reshape(-1, 800)
            p.append(np.mean(x * x, axis=1))
        p = np.concatenate(p)
        active = p[p > g711.dbm0_to_rms(-40.0) ** 2]
        levels[engine] = round(float(10 * np.log10(np.median(active) / g711.dbm0_to_rms(0.0) ** 2)), 1)
    return levels


def cell_text(counts: dict[float, tuple[int, int]], start: float) -> str:
    """'lowest (k/n at it, the two below)' from {snr: (ok, n)} scanned downward from start."""
    lowest = None
    for snr in sorted(counts, reverse=True):
        ok, n = counts[snr]
        if ok < n:
            break
        lowest = snr
    if lowest is None:
        return f">{start:g} ({'/'.join(str(counts[s][0]) for s in sorted(counts, reverse=True)[:3])})"
    below = [counts[s][0] for s in sorted(counts, reverse=True) if s < lowest][:2]
    return f"{lowest:g} ({'/'.join(str(x) for x in [counts[lowest][0]] + below)})"


def scan(pair, name, seeds: int, start: float, span: float, pages, tmp, levels, tally, **kw) -> dict:
    """{snr: (ok, seeds)}: from ``start`` up 1 dB at a time (at most 8) until every seed
    succeeds, then on down from ``start`` until no seed succeeds (at most ``span`` dB)."""
    counts = {}

    def level(snr: float) -> int:
        outs = [call(pair, name, snr, s, pages, tmp, levels, **kw) for s in range(1, seeds + 1)]
        for o in outs:
            tally[pair][o.kind] += 1
            if o.kind != "ok":
                tally[pair]["why: " + o.why] += 1
        counts[snr] = (sum(o.kind == "ok" for o in outs), seeds)
        return counts[snr][0]

    snr = start
    while level(snr) < seeds and snr < start + 8:
        snr += 1.0
    if snr == start:
        while snr > start - span and level(snr - 1.0) > 0:
            snr -= 1.0
    return counts


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="whole audio fax calls under noise, xmfax beside spandsp")
    ap.add_argument("--rates", default=",".join(RATES), help="e.g. 'V.17 14400,V.29 7200'")
    ap.add_argument("--pairs", default="xx,ss,xs,sx", help="xx ss xs sx (sender first)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--snr", type=float, default=None, help="start SNR for every rate (default per rate)")
    ap.add_argument("--span", type=float, default=12.0, help="scan at most this many dB down")
    ap.add_argument("--ecm", action="store_true")
    ap.add_argument("--rows", type=int, default=400)
    ap.add_argument("--from-top", action="store_true",
                    help="xmfax's sender too starts at its family's top rate and is refused down by the "
                         "line, as spandsp's always is")
    ap.add_argument("--noise", choices=("gated", "continuous"), default="gated",
                    help="gated: over the signal only, as benchmarks/audio_psk.py (default); "
                         "continuous: all the time, silences too")
    ap.add_argument("--level-sweep", type=float, default=None, metavar="SNR",
                    help="also: levels -10..-43 dBm0 at the receivers, noise SNR dB below")
    ap.add_argument("--no-scan", action="store_true", help="skip the SNR scan (with --level-sweep or --counts)")
    ap.add_argument("--counts", default=None, metavar="SNRS",
                    help="also: ok/seeds at each of these SNRs (e.g. 26,24,22,20), every seed run")
    a = ap.parse_args(argv)
    import spandsp_fax_audio as sf
    from audio_rtp import load_page

    from xmfax.document import write_tiff
    if sf.load() is None:
        print(f"spandsp not available: {sf.unavailable_reason()}")
        return 1
    names = [n.strip() for n in a.rates.split(",") if n.strip()]
    for n in names:
        if n not in RATES:
            ap.error(f"unknown rate {n!r}; one of {', '.join(RATES)}")
    pairs = [PAIRS[p.strip()] for p in a.pairs.split(",")]
    pages, what = load_page(a.rows)
    t0 = time.monotonic()
    tally = defaultdict(lambda: defaultdict(int))
    with tempfile.TemporaryDirectory(dir="/dev/shm" if os.path.isdir("/dev/shm") else None) as tmp:
        write_tiff(pages, os.path.join(tmp, "tx.tif"))
        levels = measure_levels(pages, tmp)
        print(f"Whole one-page audio calls, ECM {'on' if a.ecm else 'off'}, page {what}; "
              f"{a.seeds} seeds per level; simulated time, 20 ms blocks")
        print(f"transmit levels measured: xmfax {levels['xmfax']} dBm0, spandsp {levels['spandsp']} dBm0; "
              "noise at each receiver input, SNR dB below the level of the signal sent that way, "
              + ("over the signal only, from its first sample to its last (gated)" if a.noise == "gated"
                 else "all the time (continuous)"))
        print("cell: lowest SNR (dB) where every seed delivered TCF and the page at the rate "
              "(ok at it / the two levels below)\n")
        head = f"{'rate':14}" + "".join(f"{s + '>' + r:>22}" for s, r in pairs)
        print(head)
        for name in names if not a.no_scan else ():
            start = a.snr if a.snr is not None else RATES[name][2]
            row = f"{name:14}"
            for pair in pairs:
                counts = scan(pair, name, a.seeds, start, a.span, pages, tmp, levels, tally, ecm=a.ecm,
                              gated=a.noise == "gated", from_top=a.from_top)
                row += f"{cell_text(counts, start):>22}"
            print(row, flush=True)
        if a.counts:
            snrs = [float(x) for x in a.counts.split(",")]
            print(f"\ncalls delivering TCF and the page at the rate, of {a.seeds}, at each SNR")
            print(head)
            for name in names:
                print(name)
                for snr in snrs:
                    row = f"{'  ' + format(snr, 'g') + ' dB':14}"
                    for pair in pairs:
                        outs = [call(pair, name, snr, s, pages, tmp, levels, ecm=a.ecm,
                                     gated=a.noise == "gated", from_top=a.from_top) for s in range(1, a.seeds + 1)]
                        row += f"{str(sum(o.kind == 'ok' for o in outs)) + '/' + str(a.seeds):>22}"
                    print(row, flush=True)
        if a.level_sweep is not None:
            print(f"\nlevel at the receivers (line loss from each sender's level), noise {a.level_sweep:g} dB "
                  f"below: ok/{a.seeds}")
            print(head)
            for name in names:
                print(f"{name}")
                for lv in (-10, -20, -30, -36, -40, -43):
                    row = f"{'  ' + str(lv) + ' dBm0':14}"
                    for pair in pairs:
                        gain = lv - levels[pair[0]]
                        outs = [call(pair, name, a.level_sweep, s, pages, tmp, levels, ecm=a.ecm, gain_db=gain,
                                     gated=a.noise == "gated", from_top=a.from_top)
                                for s in range(1, a.seeds + 1)]
                        row += f"{str(sum(o.kind == 'ok' for o in outs)) + '/' + str(a.seeds):>22}"
                    print(row, flush=True)
    print()
    for pair in pairs if tally else ():
        t = tally[pair]
        kinds = ", ".join(f"{k} {t[k]}" for k in ("ok", "fallback", "flagged", "WRONG", "failed"))
        whys = ", ".join(f"{k[5:]} {v}" for k, v in sorted(t.items(), key=lambda kv: -kv[1]) if k.startswith("why: "))
        print(f"{pair[0]}>{pair[1]}: {kinds}; not ok: {whys}")
    print(f"wall time {time.monotonic() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
