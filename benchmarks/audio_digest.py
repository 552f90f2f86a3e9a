"""Digests of whole xmfax audio calls, to show that a change to the audio terminal (or the
modems under it) leaves the calls' behaviour as it was.

For each call of a fixed set (every modulation with ECM on and off; white noise, a talker
echo, G.711 tandem coding; the RTP loss and jitter cases of
tests/audio/test_audio_rtp_impairments.py; the 3-page V.17 14400 call of
benchmarks/audio.py) it records, at each end: every sample the terminal sent (a SHA-256
over all of them), every event the T.30 session was given with the time it was given
(a SHA-256 over their reprs) and the event count; and the result of each end and the pages
received. Everything is seeded: the same build gives the same digests.

    python3 benchmarks/audio_digest.py --save FILE     # record (e.g. with the old build)
    python3 benchmarks/audio_digest.py --check FILE    # compare; exit 1 on any difference
    python3 benchmarks/audio_digest.py --check FILE --only v17 --only rtp   # a subset (name fragments)

Run it with the tree to test first on the path (``PYTHONPATH=$PWD``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "audio"))
sys.path.insert(0, os.path.join(ROOT, "tests", "interop"))

from xmfax.audio.terminal import AudioTerminal, available_modulations  # noqa: E402
from xmfax.t30.modem import Modulation  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402


class _Recorder:
    """Wraps AudioTerminal.samples_to_send and Session.receive (class-wide) while a call
    runs, hashing per terminal / per session."""

    def __init__(self):
        self.sent: dict[int, hashlib._Hash] = {}
        self.events: dict[int, hashlib._Hash] = {}
        self.count: dict[int, int] = {}

    def __enter__(self):
        rec = self
        self._send, self._recv = AudioTerminal.samples_to_send, Session.receive

        def samples_to_send(term, n, now=None):
            out = rec._send(term, n, now)
            rec.sent.setdefault(id(term.session), hashlib.sha256()).update(
                np.ascontiguousarray(out, np.int16).tobytes())
            return out

        def receive(sess, event, now):
            h = rec.events.setdefault(id(sess), hashlib.sha256())
            h.update(f"{now:.9f} {event!r}\n".encode())
            rec.count[id(sess)] = rec.count.get(id(sess), 0) + 1
            return rec._recv(sess, event, now)

        AudioTerminal.samples_to_send = samples_to_send
        Session.receive = receive
        return self

    def __exit__(self, *exc):
        AudioTerminal.samples_to_send, Session.receive = self._send, self._recv

    def end(self, sess) -> dict:
        k = id(sess)
        r = sess.result
        pages = hashlib.sha256()
        for p in r.received_pages:
            pages.update(np.packbits(p.image).tobytes())
        return {"sent": self.sent[k].hexdigest()[:16] if k in self.sent else "-",
                "events": self.events[k].hexdigest()[:16] if k in self.events else "-",
                "n_events": self.count.get(k, 0),
                "status": str(r.status), "pages": len(r.received_pages),
                "page_digest": pages.hexdigest()[:16]}


# --------------------------------------------------------------------------- the calls
def _calls():
    """(name, function returning (sender session, receiver session))."""
    import impair  # noqa: F401  (tests/audio)
    import test_audio_calls as tac

    out = []
    mods = sorted((m for m in available_modulations() if m is not Modulation.V21),
                  key=lambda m: (m.family.value, m.bit_rate))
    for mod in mods:
        for ecm in (False, True):
            def run(mod=mod, ecm=ecm):
                _, s, r, *_ = tac.mod_call(mod, ecm)
                return s, r
            out.append((f"clean-{mod}-ecm{int(ecm)}", run))
    for mod in (Modulation.V17_14400, Modulation.V29_9600, Modulation.V27TER_4800):
        for ecm in (False, True):
            def run(mod=mod, ecm=ecm):
                _, s, r, *_ = tac.mod_call(mod, ecm, ab=tac.Pipe(snr_db=25, seed=1),
                                           ba=tac.Pipe(snr_db=25, seed=2))
                return s, r
            out.append((f"noise25-{mod}-ecm{int(ecm)}", run))
    for ecm in (False, True):
        def run(ecm=ecm):
            _, s, r, *_ = tac.send_call(9600, ecm, echo_ms=10)
            return s, r
        out.append((f"echo10-v29-ecm{int(ecm)}", run))

        def run(ecm=ecm):
            _, s, r, *_ = tac.send_call(9600, ecm, ab=tac.Pipe(tandem=True), ba=tac.Pipe(tandem=True))
            return s, r
        out.append((f"tandem-9600-ecm{int(ecm)}", run))

    def run():
        pipe = dict(gain_db=-10.0, tandem=True, snr_db=28)
        _, s, r, *_ = tac.send_call(7200, False, ab=tac.Pipe(seed=5, **pipe), ba=tac.Pipe(seed=6, **pipe))
        return s, r
    out.append(("all-at-once-7200", run))

    def rtp(family, ecm, loss, jitter, seed):
        import rtp_network as rn
        sessions = []
        orig = Session.__init__

        def init(self, *a, **kw):          # catch the two sessions rn.xmfax_call makes
            orig(self, *a, **kw)
            sessions.append(self)
        Session.__init__ = init
        try:
            rn.xmfax_call(tac.small_pages(1, rows=400, seed=3), family=family, ecm=ecm,
                          loss=loss, jitter=jitter, seed=seed)
        finally:
            Session.__init__ = orig
        return sessions[0], sessions[1]

    for family, ecm, loss, jitter, seed in (("V.17", True, 0.01, 0.04, 1), ("V.17", True, 0.03, 0.04, 2),
                                            ("V.17", False, 0.01, 0.04, 1), ("V.17", False, 0.0, 0.0, 1),
                                            ("V.29", True, 0.01, 0.04, 3), ("V.29", False, 0.01, 0.04, 4)):
        out.append((f"rtp-{family}-ecm{int(ecm)}-loss{loss}-jit{jitter}-seed{seed}",
                    lambda a=(family, ecm, loss, jitter, seed): rtp(*a)))

    def bench(ecm):
        import audio as bench_audio           # benchmarks/audio.py
        pages, _ = bench_audio.load_pages()
        sessions = []
        orig = Session.__init__

        def init(self, *a, **kw):
            orig(self, *a, **kw)
            sessions.append(self)
        Session.__init__ = init
        try:
            bench_audio.xmfax_call(pages, ecm=ecm, check=False)
        finally:
            Session.__init__ = orig
        return sessions[0], sessions[1]

    for ecm in (True, False):
        out.append((f"bench-3page-v17-14400-ecm{int(ecm)}", lambda ecm=ecm: bench(ecm)))
    return out


def digest(only=None) -> dict:
    res = {}
    for name, run in _calls():
        if only and not any(o in name for o in only):
            continue
        t0 = time.process_time()
        with _Recorder() as rec:
            s, r = run()
        res[name] = {"sender": rec.end(s), "receiver": rec.end(r)}
        print(f"{name:<46} {res[name]['sender']['status']:>8} {res[name]['receiver']['status']:>8} "
              f"pages {res[name]['receiver']['pages']}  ({time.process_time() - t0:.1f} s)", flush=True)
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    ap.add_argument("--only", action="append", help="run only calls whose name holds this")
    args = ap.parse_args()
    sys.path.insert(0, HERE)
    got = digest(args.only)
    if args.save:
        with open(args.save, "w") as f:
            json.dump(got, f, indent=1, sort_keys=True)
        print(f"saved {len(got)} call digests to {args.save}")
        return 0
    with open(args.check) as f:
        want = json.load(f)
    bad = 0
    for name, d in got.items():
        if name not in want:
            print(f"NEW   {name} (not in {args.check})")
            continue
        for end in ("sender", "receiver"):
            for k, v in d[end].items():
                if want[name][end].get(k) != v:
                    bad += 1
                    print(f"DIFF  {name} {end} {k}: was {want[name][end].get(k)} now {v}")
    print(f"{len(got)} calls checked against {args.check}: "
          + ("all identical" if not bad else f"{bad} differences"))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
