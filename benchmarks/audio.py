"""CPU seconds per 3-page V.17 14400 audio fax call (both ends), xmfax<->xmfax beside
spandsp<->spandsp; the modems' samples per second; the lowest SNR each modem delivers at.

Tables printed (issue #12, "Speed"):
1. Whole calls, both ends in one process, measured in the same run, ECM on and off:
   - spandsp: two ``fax_state`` terminals (T.30 over spandsp's own modems and tones) joined
     in memory by a small C harness (benchmarks/spandsp_fax_pair.c, built here with the
     system compiler against libspandsp), timing its own CPU (CLOCK_PROCESS_CPUTIME_ID) per
     call: no Python, no ctypes. It reads the pages from a TIFF (G4, written once before
     anything is timed, on a tmpfs) and writes what it receives to one: its T.4 decoding of
     the source and its TIFF writing are inside its timer, as they are part of its call.
   - xmfax: two AudioTerminals joined in memory by a minimal sample pump (no sockets), timed
     with time.process_time() from building the sessions to the end of the call; the pages
     are arrays in memory.
   Both: 20 ms blocks (160 samples; ``--block`` for others) each way per tick, each end
   taking the other's block of the same tick; V.17 14400; the same three pages. The runs
   are interleaved (one call of each kind per round), the table shows medians, and the
   received pages are compared with the sent ones pixel for pixel outside the timers.
   "calls/core" is line time / CPU time: how many such calls one core could carry at once
   in real time.
2. Where an xmfax call's time goes: cProfile, top 10 functions by own time.
3. Samples per second of each modem's transmitter and receiver, ours beside spandsp's,
   measured by the modem benchmarks' own functions (benchmarks/audio_v17.py and
   audio_psk.py ``speed``; audio_fsk.py ``speed_table`` for V.21 and the tones).
4. The lowest SNR (white noise over the 4 kHz band, 1 dB steps down) at which each modem
   still delivers, from the same benchmarks' functions run with a reduced count (named in
   the table's title): V.27 ter, V.29, V.17 (long training) with N random bits and no bit
   error in each of 3 noise realisations; V.21 with N DCS-sized frames and no frame lost.
   The full tables (and the other impairments) are those benchmarks' own output.
Pages: the ITU T.24 test pages itu1-3 (1728x2376, fine) from ../shared/corpus/itu when
present, else synthetic pages (benchmarks/t38.py's ``load_pages``).

    python benchmarks/audio.py [--runs N] [--block N] [--only calls|speed|snr] [--snr-bits N] [--snr-frames N]
"""
from __future__ import annotations

import argparse
import functools
import importlib.util
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from xmfax.audio.terminal import AudioConfig, AudioTerminal  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402

HARNESS = os.path.join(HERE, "spandsp_fax_pair.c")
BLOCK = 160                      # samples per tick each way: 20 ms, as RTP carries them
LIMIT = 600.0                    # line seconds: a call that long has failed
CODING = {1: "mh", 2: "mr", 3: "mmr"}    # spandsp's t4 compression codes (0.0.6)


@functools.cache
def _load(name: str, path: str):
    """A benchmark module loaded from its path under its own name (a bare ``t38`` could be
    tests/t38 when tests/ is on sys.path)."""
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_t38 = _load("xmfax_bench_t38", os.path.join(HERE, "t38.py"))
load_pages, write_tiff, read_tiff = _t38.load_pages, _t38.write_tiff, _t38.read_tiff


# ---------------------------------------------------------------------------- xmfax
def xmfax_call(pages, *, ecm: bool, max_rate: int = 14400, check: bool = True,
               block: int = BLOCK) -> dict:
    """One call between two xmfax AudioTerminals in memory; CPU from building the sessions
    to the end of the call (the pump included: two method calls per end per 20 ms)."""
    t0 = time.process_time()
    cfg = AudioConfig.limit_t30(T30Config(ecm=ecm, max_rate=max_rate))
    tx = Session(cfg, calling=True, pages=pages)
    rx = Session(cfg, calling=False, receive=True)
    a, b = AudioTerminal(tx), AudioTerminal(rx)
    now = 0.0
    a.start(now)
    b.start(now)
    while not (a.done and b.done) and now < LIMIT:
        xa = a.samples_to_send(block, now)
        xb = b.samples_to_send(block, now)
        now += block / 8000
        b.receive_samples(xa, now)
        a.receive_samples(xb, now)
        due = a.next_timer()
        if due is not None and due <= now:
            a.handle_timer(now)
        due = b.next_timer()
        if due is not None and due <= now:
            b.handle_timer(now)
    cpu = time.process_time() - t0
    got = rx.result.received_pages
    stats = rx.result.pages_received
    ok = (a.done and b.done and tx.result.status == "success" and rx.result.status == "success"
          and len(got) == len(pages)
          and (not check or all(np.array_equal(g.image, p.image) for g, p in zip(got, pages))))
    return {"cpu": cpu, "sim": now, "ok": ok,
            "rate": stats[0].rate if stats else 0,
            "coding": ",".join(sorted({s.coding for s in stats})) or "-"}


# ---------------------------------------------------------------------------- spandsp
def build_harness(workdir: str) -> tuple[str | None, str]:
    """Compile spandsp_fax_pair.c; (path, "") or (None, why not)."""
    cc = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None, "no C compiler"
    exe = os.path.join(workdir, "spandsp_fax_pair")
    proc = subprocess.run([cc, "-O2", "-o", exe, HARNESS, "-lspandsp", "-ltiff", "-lm"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode:
        return None, f"build failed (libspandsp-dev installed?): {proc.stderr.strip()[:300]}"
    return exe, ""


def spandsp_call(exe: str, tiff: str, rxdir: str, pages, *, ecm: bool, max_rate: int = 14400,
                 block: int = BLOCK) -> dict:
    """One call of the C harness; its CPU and line time, and whether both ends finished OK
    and every page came back pixel-identical (read from its TIFF outside its timer)."""
    proc = subprocess.run([exe, tiff, rxdir, str(int(ecm)), "1", str(max_rate), str(block)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode:
        raise RuntimeError(f"spandsp harness failed: {proc.stderr.strip()[:300]}")
    fields = dict(kv.split("=") for kv in proc.stdout.split())
    rx = os.path.join(rxdir, "rx0.tif")
    ok = fields["ok"] == "1" and int(fields["pages"]) == len(pages)
    if ok:
        got = read_tiff(rx)
        ok = len(got) == len(pages) and all(np.array_equal(g, p.image) for g, p in zip(got, pages))
    if os.path.exists(rx):
        os.unlink(rx)
    return {"cpu": float(fields["cpu"]), "sim": float(fields["sim"]), "ok": ok,
            "rate": int(fields["rate"]), "coding": CODING.get(int(fields["encoding"]), fields["encoding"]),
            "codes": fields["codes"]}


def calls_table(pages, what: str, runs: int, block: int = BLOCK) -> None:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    results: dict[tuple[str, bool], list[dict]] = {}
    with tempfile.TemporaryDirectory(dir=shm) as tmp:
        exe, why = build_harness(tmp)
        tiff = os.path.join(tmp, "tx.tif")
        write_tiff(pages, tiff)
        for _ in range(runs):
            for ecm in (True, False):
                if exe is not None:
                    results.setdefault(("spandsp", ecm), []).append(
                        spandsp_call(exe, tiff, tmp, pages, ecm=ecm, block=block))
                results.setdefault(("xmfax", ecm), []).append(xmfax_call(pages, ecm=ecm, block=block))
    print(f"3-page audio fax call, V.17 14400, both ends in one process, {block}-sample blocks, pages: {what}; "
          f"median of {runs} interleaved runs, CPU s per call (both ends)")
    if exe is None:
        print(f"spandsp not measured: {why}")
    print(f"{'ECM':<5}{'pair':<18}{'CPU s':>8}{'min':>8}{'max':>8}{'line s':>8}{'calls/core':>11}"
          f"{'vs spandsp':>11}{'rate':>7}{'coding':>8}  pages identical")
    for ecm in (True, False):
        base = results.get(("spandsp", ecm))
        base_cpu = statistics.median(r["cpu"] for r in base) if base else None
        for engine in ("spandsp", "xmfax"):
            rs = results.get((engine, ecm))
            if not rs:
                continue
            cpus = [r["cpu"] for r in rs]
            med = statistics.median(cpus)
            line = statistics.median(r["sim"] for r in rs)
            ratio = f"{med / base_cpu:>10.2f}x" if base_cpu else f"{'-':>11}"
            print(f"{'on' if ecm else 'off':<5}{engine + '<->' + engine:<18}{med:>8.3f}{min(cpus):>8.3f}"
                  f"{max(cpus):>8.3f}{line:>8.1f}{line / med:>11,.0f}{ratio}{rs[0]['rate']:>7}"
                  f"{rs[0]['coding']:>8}  {sum(r['ok'] for r in rs)}/{len(rs)}")
    print("vs spandsp: xmfax CPU / spandsp CPU in this run (<= 1.00 is the target); "
          "calls/core: line time / CPU time")


GROUPS = (  # (label, a fragment of the path, or of a C builtin's name)
    ("C modems and HDLC (xmfax._modems)", "xmfax._modems"),
    ("C codecs (xmfax._native)", "xmfax._native"),
    ("xmfax/audio (Python)", "xmfax/audio/"),
    ("T.30 and codecs (Python)", "xmfax/t30/"),
    ("T.30 and codecs (Python)", "xmfax/codecs/"),
)


def profile_table(pages, ecm: bool = True, top: int = 10, block: int = BLOCK) -> None:
    """cProfile of one xmfax call: the top functions by own time. cProfile adds a cost to
    every Python call, so Python's share is overstated: a guide, not a measurement."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    xmfax_call(pages, ecm=ecm, check=False, block=block)
    prof.disable()
    st = pstats.Stats(prof)
    whole = sum(v[2] for v in st.stats.values())
    rows = sorted(st.stats.items(), key=lambda kv: -kv[1][2])[:top]
    print(f"\nwhere an xmfax call's CPU goes (ECM {'on' if ecm else 'off'}; cProfile, top {top} by own "
          f"time, {block}-sample blocks, {whole:.3f} s under the profiler; a guide, not a measurement)")
    print(f"{'own s':>7}{'share':>7}{'calls':>8}  function")
    for (path, line, name), (_cc, nc, tt, _ct, _callers) in rows:
        where = name if path == "~" else f"{os.path.relpath(path, ROOT)}:{line} {name}"
        print(f"{tt:>7.3f}{tt / whole * 100:>6.0f}%{nc:>8}  {where}")
    groups: dict[str, float] = {}
    for (path, _line, name), (_cc, _nc, tt, _ct, _callers) in st.stats.items():
        label = next((lab for lab, frag in GROUPS if frag in (name if path == "~" else path.replace(os.sep, "/"))),
                     "other (numpy, cffi, Python runtime, the pump)")
        groups[label] = groups.get(label, 0.0) + tt
    print("by part: " + "; ".join(f"{lab} {v / whole * 100:.0f}%"
                                  for lab, v in sorted(groups.items(), key=lambda kv: -kv[1])))


# ---------------------------------------------------------------------------- modems
_SPEED = re.compile(r"rx xmfax\s+(\d+)x\s+spandsp\s+(\d+)x real time; tx xmfax\s+(\d+)x\s+spandsp\s+(\d+)x")


def speed_table(seconds: int) -> None:
    """Samples per CPU second of each high-speed modem (from audio_v17.speed and
    audio_psk.speed, which report times real time: x 8000 is samples per second), then
    audio_fsk.speed_table for V.21 and the tones."""
    v17 = _load("xmfax_bench_audio_v17", os.path.join(HERE, "audio_v17.py"))
    psk = _load("xmfax_bench_audio_psk", os.path.join(HERE, "audio_psk.py"))
    rows = [(f"V.17 {r}", v17.speed(r, seconds)) for r in v17.RATES]
    rows += [(f"{'V.27 ter' if m == 'v27ter' else 'V.29'} {r}", psk.speed(m, r, seconds))
             for m in ("v29", "v27ter") for r in psk.MODEMS[m]]
    print(f"\nModems: samples per CPU second ({seconds} s of signal, 160-sample blocks; 8000 = real "
          "time), from audio_v17.py / audio_psk.py speed()")
    print(f"{'modem':<14}{'rx xmfax':>12}{'rx spandsp':>12}{'tx xmfax':>12}{'tx spandsp*':>13}")
    for name, text in rows:
        m = _SPEED.search(text)
        if m is None:
            raise RuntimeError(f"unexpected speed() output: {text!r}")
        rx_x, rx_s, tx_x, tx_s = (int(g) * 8000 for g in m.groups())
        print(f"{name:<14}{rx_x:>12,}{rx_s:>12,}{tx_x:>12,}{tx_s:>13,}")
    print("* spandsp's transmitters are fed by a Python get_bit callback (ctypes), one call a bit: "
          "their figures are a floor, not spandsp's own speed")
    fsk = _load("xmfax_bench_audio_fsk", os.path.join(HERE, "audio_fsk.py"))
    fsk.speed_table()


# ---------------------------------------------------------------------------- SNR
SNR_PAIRS = (("xmfax", "xmfax"), ("spandsp", "spandsp"), ("xmfax", "spandsp"), ("spandsp", "xmfax"))


def snr_table(nbits: int, nframes: int, seeds: int = 20) -> None:
    v17 = _load("xmfax_bench_audio_v17", os.path.join(HERE, "audio_v17.py"))
    psk = _load("xmfax_bench_audio_psk", os.path.join(HERE, "audio_psk.py"))
    fsk = _load("xmfax_bench_audio_fsk", os.path.join(HERE, "audio_fsk.py"))
    v21pairs = fsk.v21pairs
    bits = np.random.default_rng(1).integers(0, 2, nbits).astype(np.uint8)
    print(f"\nLowest SNR (dB, white noise over 4 kHz, 1 dB steps down) with no error: {nbits} random "
          f"bits in at least 90% of {seeds} noise realisations (V.17: long training; '(fails a,b)': "
          f"SNRs above it where fewer did); V.21 ch 2: {nframes} frames of 11 octets, none lost")
    print(f"{'modem':<14}" + "".join(f"{t + '>' + r:>18}" for t, r in SNR_PAIRS))

    def cell(v) -> str:
        return "-" if v is None else f"{v:.0f}"

    for rate in v17.RATES:
        row = [v17.snr_cell(v17.lowest_snr(t, r, rate, bits, start=30.0, seeds=seeds)) for t, r in SNR_PAIRS]
        print(f"{'V.17 ' + str(rate):<14}" + "".join(f"{c:>18}" for c in row))
    for modem, name in (("v29", "V.29"), ("v27ter", "V.27 ter")):
        for rate in psk.MODEMS[modem]:
            row = [cell(psk.lowest_snr(t, r, modem, rate, bits, start=26.0, seeds=seeds)) for t, r in SNR_PAIRS]
            print(f"{name + ' ' + str(rate):<14}" + "".join(f"{c:>18}" for c in row))
    row = []
    for t, r in SNR_PAIRS:        # 1 dB steps down from 10 dB to the first level that loses a frame
        best = None
        for snr in range(10, -6, -1):
            if v21pairs.frame_errors(f"{t}>{r}", float(snr), nframes, seed=snr + 1000):
                break
            best = snr
        row.append(cell(best))
    print(f"{'V.21 ch2 300':<14}" + "".join(f"{c:>18}" for c in row))


# ---------------------------------------------------------------------------- main
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5, help="calls of each kind (median shown)")
    ap.add_argument("--block", type=int, default=BLOCK,
                    help="samples each way per tick, both pairs (160: 20 ms, as RTP; at most 8000)")
    ap.add_argument("--only", choices=("calls", "speed", "snr"), action="append")
    ap.add_argument("--speed-seconds", type=int, default=10, help="seconds of signal per speed point")
    ap.add_argument("--snr-bits", type=int, default=4000, help="random bits per SNR point")
    ap.add_argument("--snr-frames", type=int, default=30, help="V.21 frames per SNR point")
    args = ap.parse_args()
    parts = set(args.only or ("calls", "speed", "snr"))
    if "calls" in parts:
        pages, what = load_pages()
        calls_table(pages, what, args.runs, args.block)
        profile_table(pages, ecm=True, block=args.block)
        profile_table(pages, ecm=False, block=args.block)
    if "speed" in parts:
        speed_table(args.speed_seconds)
    if "snr" in parts:
        snr_table(args.snr_bits, args.snr_frames)


if __name__ == "__main__":
    main()
