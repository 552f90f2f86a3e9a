"""TSB-85 conformance runner: plays the tester's side of each script against
xmfax's T.30 engine at the frame level (the modem interface, xmfax/t30/modem.py).

    python tests/conformance/runner.py [--annex A] [--test NAME] [-v] [--xml PATH]

The device under test (DUT) is an ``xmfax.t30.Session`` configured per test
(answering for a CALL script, calling for an ANSWER script; identifiers from
SET; the ETSI 300 242 pages to send). The runner feeds it the modem events the
tester's transmissions would produce (HDLCFrame, CarrierUp/Down, DataReceived,
ToneDetected, SendComplete after the DUT's own sends), advances a fake clock
for WAITs, line time and the DUT's timers, and checks each ``dir="R"`` step
against the commands the DUT issued. What only exists as audio (preamble and
silence durations, CED length, signal levels) is not checkable here: those
measurement points are counted as not applicable; the frame-level part of the
same step (a CED was sent, the frames came in one transmission) is checked.

Every test is bounded in simulated time and iterations; a DUT that raises or
never answers gives ``fail: <reason>`` for that test, never a crashed run.
"""
from __future__ import annotations

import argparse
import heapq
import os
import sys
import traceback
from collections import deque
from dataclasses import dataclass, field

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tsb85_script import DEFAULT_XML, Repeat, Script, ScriptError, Step, TestCase, hex_value, parse  # noqa: E402
import tsb85_line as line  # noqa: E402
from tsb85_line import DCSInfo, fmt, to_wire  # noqa: E402
from tsb85_checks import (ContentChecks, EcmSendCheck, PageTally, RunnerError, TestFailed,  # noqa: E402,F401
                          content_summary)

from xmfax.t30 import modem as M  # noqa: E402

MAX_SIM_SECONDS = 900.0        # one test's budget of simulated time
MAX_ITERATIONS = 200_000       # DUT calls per test (a livelock guard)
DEFAULT_R_TIMEOUT_MS = 15_000  # an R step without timeout: T4 repeats fit well inside
CED_SECONDS, CNG_SECONDS = 3.0, 0.5
CHUNK_SECONDS = 0.25           # page data is fed to the DUT in pieces of this much line time

ACOUSTIC_WORDS = ("preamble", "silence", "ms", " s ", "s to", "intensity", "level", "CED is",
                  "interval", "length", "seconds")


@dataclass
class Tx:
    """One thing the DUT put on the line (one frame of an HDLC transmission)."""

    kind: str                  # tone | silence | hdlc | data | hangup
    start: float
    end: float
    tx_id: int
    tone: M.Tone | None = None
    frame: bytes = b""
    index: int = 0             # frame index within its transmission
    count: int = 1             # frames in the transmission
    modulation: M.Modulation | None = None
    data: bytes = b""
    ms: int = 0

    def describe(self) -> str:
        if self.kind == "hdlc":
            return f"HDLC[{fmt(self.frame)}] at {self.modulation}"
        if self.kind == "data":
            return f"data ({len(self.data)} octets) at {self.modulation}"
        if self.kind == "tone":
            return f"tone {self.tone.value}"
        if self.kind == "silence":
            return f"silence {self.ms} ms"
        return self.kind


@dataclass
class TestResult:
    name: str
    annex: str
    outcome: str               # pass | fail | n/a
    reason: str = ""
    notes: list = field(default_factory=list)
    log: list = field(default_factory=list)
    acoustic_checks: int = 0
    sim_seconds: float = 0.0
    pages_compared: int = 0        # pages checked pixel for pixel against their source
    pages_equal: int = 0
    status_expected: str = ""      # the script's STATUS value ("" without a STATUS step)
    dut_reason: str = ""           # the xmfax Reason name the DUT ended with
    reason_agrees: bool | None = None


# --------------------------------------------------------------------------- the DUT
def _session_api():
    from xmfax.t30 import Session, T30Config  # the engine may still be landing
    return Session, T30Config


class Tester(ContentChecks):
    """Runs one TestCase against a fresh Session (page and ECM checks: tsb85_checks.py)."""

    def __init__(self, test: TestCase, verbose: bool = False):
        self.test = test
        self.verbose = verbose
        self.now = 0.0
        self.session = None
        self.queue: deque[Tx] = deque()
        self.pending: list = []          # heap of (time, seq, event) to feed the DUT
        self.seq = 0
        self.busy_until = 0.0
        self.tx_id = 0
        self.iterations = 0
        self.carrier: M.Modulation | None = None
        self.dcs: DCSInfo | None = None          # the last DCS on the line (either side)
        self.dut_dcs: DCSInfo | None = None
        self.log: list[str] = []
        self.notes: list[str] = []
        self.acoustic = 0
        self.crc_sent = False                    # tester just sent a frame with a bad FCS
        self.crp_ok: set[int] = set()            # DUT transmissions queued while crc_sent
        self.cng_seen = False
        self.pp_frames = 0                       # frames in the tester's last partial page
        self.settings: dict = {}                 # SET before the call starts
        self.role: str | None = None             # CALL (DUT answers) | ANSWER (DUT calls)
        self.doc: str | None = None
        self.dut_pages_sent = 0
        self.hung_up = False
        # content checks (tsb85_checks.py)
        self.tally = PageTally()
        self.dut_source: list = []               # the pages the DUT was given to send, in order
        self.dut_next = 0                        # index of the page the DUT must send next
        self.dut_may_skip = False                # after RTN the DUT may resend or go on (T.30 §5.3.6.1.5)
        self.ecm_tx = EcmSendCheck()
        self.dut_ecm_pps = False                 # the DUT's last command was a PPS (ECM sending)
        self.rx_pending = None                   # (what, image, ignore rows, ecm) the tester's last page
        self.rx_expected: list = []              # pages the DUT confirmed on the line
        self.tester_pps_null = False             # the tester's last PPS was PPS-NULL
        self.tester_page = 0                     # the tester's ECM pages the DUT confirmed
        self.pp_new = False                      # the tester sent page data since then
        self.tester_ecm_pages: dict = {}         # page number -> (file, coded image) the tester sends
        self.dut_page_open = False               # a non-ECM page of the DUT awaits the tester's answer
        self.status_expected = ""
        self.status_reason = ""
        self.status_agrees: bool | None = None

    # ------------------------------------------------------------------ DUT plumbing
    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def _trace(self, text: str) -> None:
        self.log.append(f"{self.now:9.3f}  {text}")

    def _guard(self) -> None:
        self.iterations += 1
        if self.iterations > MAX_ITERATIONS:
            raise RunnerError(f"more than {MAX_ITERATIONS} DUT calls: a livelock?")
        if self.now > MAX_SIM_SECONDS:
            raise RunnerError(f"test still running after {MAX_SIM_SECONDS:.0f} s of simulated time")

    def _call(self, what: str, fn, *args) -> None:
        self._guard()
        try:
            fn(*args)
        except Exception as exc:  # the DUT raised: a failure of this test, not of the run
            raise RunnerError(f"DUT raised {type(exc).__name__}: {exc} (in {what} at t={self.now:.3f})\n"
                              + traceback.format_exc(limit=6)) from exc
        self._collect()

    def feed(self, event: M.ModemEvent) -> None:
        if self.session is None:
            return
        if getattr(self.session, "done", False):
            self._trace(f"(DUT done) not fed {event}")
            return
        self._trace(f"-> {event if not isinstance(event, M.DataReceived) else f'DataReceived({len(event.data)} octets)'}")
        self._call(f"receive({type(event).__name__})", self.session.receive, event, self.now)

    def _collect(self) -> None:
        try:
            cmds = self.session.data_to_send()
        except Exception as exc:
            raise RunnerError(f"DUT raised {type(exc).__name__} in data_to_send(): {exc}") from exc
        for cmd in cmds:
            self._command(cmd)

    def _command(self, cmd) -> None:
        start = max(self.now, self.busy_until)
        self.tx_id += 1
        if isinstance(cmd, M.SendTone):
            dur = (cmd.ms or ((CED_SECONDS if cmd.tone is M.Tone.CED else CNG_SECONDS) * 1000)) / 1000
            self.queue.append(Tx("tone", start, start + dur, self.tx_id, tone=cmd.tone, ms=cmd.ms))
        elif isinstance(cmd, M.SendSilence):
            dur = max(cmd.ms, 0) / 1000
            self.queue.append(Tx("silence", start, start + dur, self.tx_id, ms=cmd.ms))
        elif isinstance(cmd, M.SendHDLC):
            frames = tuple(cmd.frames)
            dur = line.hdlc_s(frames, cmd.modulation)
            for i, f in enumerate(frames):
                self.queue.append(Tx("hdlc", start, start + dur, self.tx_id, frame=bytes(f), index=i,
                                     count=len(frames), modulation=cmd.modulation))
            if self.crc_sent:
                # a CRP queued in answer to the tester's bad-FCS frame stays allowed even
                # when the tester's next (good) frame comes before the runner reaches it
                self.crp_ok.add(self.tx_id)
            if not frames:
                self._note("DUT issued a SendHDLC with no frames")
        elif isinstance(cmd, M.SendData):
            dur = line.training_s(cmd.modulation, cmd.short_training) + line.data_s(cmd.modulation, len(cmd.data))
            self.queue.append(Tx("data", start, start + dur, self.tx_id, modulation=cmd.modulation,
                                 data=bytes(cmd.data)))
        elif isinstance(cmd, M.Hangup):
            self.queue.append(Tx("hangup", start, start, self.tx_id))
            return
        elif isinstance(cmd, M.Receive):
            return
        else:
            raise RunnerError(f"DUT issued an unknown command {cmd!r}")
        self._trace(f"<- {self.queue[-1].describe()}" + (f" (+{len(cmd.frames) - 1} more)" if isinstance(cmd, M.SendHDLC) and len(cmd.frames) > 1 else ""))
        self.busy_until = start + dur
        if isinstance(cmd, (M.SendHDLC, M.SendData)):
            # one SendComplete per SendHDLC/SendData, as the Session's transport contract says
            self.seq += 1
            heapq.heappush(self.pending, (self.busy_until, self.seq, M.SendComplete()))

    def _next_time(self) -> float | None:
        times = []
        if self.pending:
            times.append(self.pending[0][0])
        if self.session is not None and not getattr(self.session, "done", False):
            try:
                t = self.session.next_timer()
            except Exception as exc:
                raise RunnerError(f"DUT raised {type(exc).__name__} in next_timer(): {exc}") from exc
            if t is not None:
                times.append(max(float(t), self.now))
        return min(times) if times else None

    def pump_to(self, t: float) -> None:
        """Advance the clock to ``t``, firing the DUT's timers and SendCompletes on the way."""
        while True:
            nxt = self._next_time()
            if nxt is None or nxt > t:
                break
            self.now = max(self.now, nxt)
            if self.pending and self.pending[0][0] <= self.now:
                _, _, ev = heapq.heappop(self.pending)
                if not getattr(self.session, "done", False):
                    self._call("receive(SendComplete)", self.session.receive, ev, self.now)
            else:
                self._call("handle_timer", self.session.handle_timer, self.now)
        self.now = max(self.now, t)
        self._guard()

    def advance(self, seconds: float) -> None:
        self.pump_to(self.now + seconds)

    # ------------------------------------------------------------------ DUT output
    def _skippable(self, tx: Tx) -> str | None:
        if tx.kind == "silence":
            return "silence"
        if tx.kind == "tone" and tx.tone is M.Tone.CNG and self.cng_seen:
            return "repeated CNG"
        if tx.kind == "hdlc" and (self.crc_sent or tx.tx_id in self.crp_ok) and \
                tx.modulation is M.Modulation.V21 and len(tx.frame) >= 3 and tx.frame[2] & 0xFE == 0x1A:
            return "CRP (allowed after a frame with a bad FCS)"
        return None

    def next_tx(self, deadline: float, consume_skips: bool = True) -> Tx | None:
        """The DUT's next significant transmission, waiting until ``deadline``."""
        while True:
            while self.queue:
                tx = self.queue[0]
                why = self._skippable(tx)
                if why is None:
                    return tx
                if not consume_skips:
                    # peeking: look past skippable items without consuming them
                    for later in self.queue:
                        if self._skippable(later) is None:
                            return later
                    break
                self.queue.popleft()
                if why.startswith("CRP"):
                    self._note(f"DUT sent CRP after a bad-FCS frame (TSB-85 allows 'CRP | nothing')")
                self.pump_to(tx.end)
            if getattr(self.session, "done", False) and not self.pending:
                return None
            nxt = self._next_time()
            if nxt is None or nxt > deadline:
                self.pump_to(max(self.now, deadline) if nxt is not None else self.now)
                if not self.queue:
                    return None
                continue
            self.pump_to(nxt)

    def take(self, tx: Tx) -> None:
        """Consume ``tx`` (must be the head after skips) and wait until it is on the line."""
        while self.queue and self.queue[0] is not tx:
            self.queue.popleft()
        if self.queue:
            self.queue.popleft()
        self.pump_to(tx.end)

    def unexpected(self) -> None:
        """Fail if the DUT transmitted something no R step asked for."""
        self.pump_to(self.now)
        for tx in list(self.queue):
            if self._skippable(tx):
                continue
            if tx.kind == "hangup":
                return
            raise TestFailed(f"DUT sent {tx.describe()} where the script expects nothing from it")

    # ------------------------------------------------------------------ setting up the DUT
    def start_dut(self) -> None:
        Session, T30Config = _session_api()
        kw: dict = {}
        ident = self.settings.get("IDENT")
        if ident:
            kw["local_id"] = ident
        if any(s.dir == "R" and s.type == "HDLC" and s.tag.rstrip("+") in ("NSF", "NSC")
               for s in self.test.steps()):
            kw["nsf"] = bytes([0xB5, 0x00, 0x58]) + b"xmfax"   # T.35 country code + provider
            self._note("DUT configured with an NSF (optional in T.30; this script expects one)")
        # (R PP steps carry frame_size="64", but the scripts' block boundaries and PPS
        # sequences fit 256-octet frames (OTEN01/02/06: the IMPRESS page in one block), so
        # the DUT keeps its default: T.30 Annex A lets the transmitter choose 256 or 64)
        # SET configures the DUT whatever its dir (the scripts write T and R for it alike):
        # PWD is the password the DUT polls with or requires when polled (T.30 §5.3.6.1.1/2),
        # SEP its selective-polling address, SUB its subaddress (T.30 Table 2 bits 47/49/50)
        for tag, fld in (("PWD", "password"), ("SEP", "selective_polling"), ("SUB", "subaddress")):
            if tag in self.settings:
                kw[fld] = str(self.settings[tag])
        for tag in ("PSA", "SID"):
            if tag in self.settings:
                self._note(f"SET {tag} not applied: T30Config has no field for it")
        # T.30 leaves the fallback order to the sender; the scripts expect V.17 and V.29
        # interleaved by bit rate (V.17 9600 -> V.29 9600 -> V.17 7200 ...)
        from xmfax.t30.capabilities import FALLBACK_ORDER_BY_RATE
        kw["fallback_order"] = FALLBACK_ORDER_BY_RATE
        cfg = T30Config(**kw)
        pages = None
        doc = self.settings.get("TXFILE") or self.doc
        if doc:
            pages = list(line.load_pages(doc))
            self.dut_source = list(pages)
        if self.role == "CALL":
            calling, receive = False, True
        else:
            calling, receive = True, "RXFILE" in self.settings or not pages
        self._trace(f"DUT: Session(calling={calling}, pages={len(pages) if pages else None}, receive={receive}, {kw})")
        try:
            self.session = Session(cfg, calling=calling, pages=pages, receive=receive, now=self.now)
        except Exception as exc:
            raise RunnerError(f"DUT could not be created: {type(exc).__name__}: {exc}") from exc
        self._call("start", self.session.start, self.now)

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        items = list(self.test.items)
        i = 0
        while i < len(items):
            item = items[i]
            if isinstance(item, Repeat):
                self.run_repeat(item, items[i + 1:])
            else:
                if self.session is None and item.type not in ("CALL", "ANSWER", "SET") and self.role:
                    self.start_dut()
                self.step(item)
            i += 1
        # the call should be over once the script is
        if self.session is not None and not getattr(self.session, "done", False):
            self.pump_to(self.now + 60.0)
            if not getattr(self.session, "done", False):
                raise TestFailed("DUT still in the call 60 s after the end of the script")
        if self.session is not None:
            self.check_received()

    def run_repeat(self, rep: Repeat, rest) -> None:
        first = rep.steps[0] if rep.steps else None
        runs = 0
        limit = rep.max if rep.max is not None else 50
        while runs < limit:
            if first is None or first.dir != "R" or first.type != "HDLC":
                raise ScriptError(f"repeat at step {rep.index}: only a repeat opening with an R HDLC step is supported")
            deadline = self.now + (first.int_attr("timeout", DEFAULT_R_TIMEOUT_MS) / 1000)
            tx = self.next_tx(deadline, consume_skips=True)
            if tx is None or not self._hdlc_matches(first, tx):
                break
            for s in rep.steps:
                self.step(s)
            runs += 1
        if runs < rep.min:
            raise TestFailed(f"repeat at step {rep.index} ran {runs} times, at least {rep.min} required")

    def step(self, s: Step) -> None:
        self._trace(f"step {s.describe()} {s.value or ''}".rstrip())
        for c in s.checks:
            if any(w in (c.desc or "") for w in ACOUSTIC_WORDS):
                self.acoustic += 1
        handler = getattr(self, f"do_{s.type}_{s.dir or 'X'}", None)
        if handler is None:
            raise ScriptError(f"step {s.describe()}: no handler for {s.type} dir={s.dir}")
        handler(s)

    # -- call control
    def do_CALL_X(self, s: Step) -> None:
        self.role = "CALL"
        self.doc = s.value

    def do_ANSWER_X(self, s: Step) -> None:
        self.role = "ANSWER"
        self.doc = s.value

    def do_SET_T(self, s: Step) -> None:
        if self.session is not None:
            if s.tag == "TXFILE" and s.value:
                # a second document during the call: the DUT's current page then ends with
                # EOM, and the new document follows a new phase B (T.30 §5.3.6.1.4)
                pages = list(line.load_pages(s.value))
                self.dut_source.extend(pages)
                self._trace(f"DUT: add_document({len(pages)} pages)")
                self._call("add_document", self.session.add_document, pages, self.now)
                return
            self._note(f"mid-call SET {s.tag}={s.value} cannot be applied: the Session API has no "
                       f"way to change that setting during a call")
            return
        self.settings[s.tag] = s.value if s.value is not None else True

    do_SET_R = do_SET_T

    def do_WAIT_X(self, s: Step) -> None:
        self.advance((s.int_attr("value", 0) or 0) / 1000)

    def do_CLEAR_T(self, s: Step) -> None:
        # The tester hangs up now: a DUT transmission not finished by now (an answer still
        # behind its 75 ms gap and 1 s preamble) is cut off, never heard, so not unexpected
        self.pump_to(self.now)
        for tx in [t for t in self.queue if t.end > self.now and t.kind in ("hdlc", "data", "tone")]:
            self._note(f"DUT's {tx.describe()} cut off by the tester's hang-up (it ends at {tx.end:.3f} s)")
            self.queue.remove(tx)
        self.unexpected()
        if self.session is not None and not getattr(self.session, "done", False):
            self.feed(M.LineLost("tester cleared the call"))
        self.hung_up = True

    def do_CLEAR_R(self, s: Step) -> None:
        timeout = max(s.int_attr("timeout", 5000), 1000) / 1000
        tx = self.next_tx(self.now + timeout + 5.0)
        if tx is None:
            if getattr(self.session, "done", False):
                self._note("DUT ended without a Hangup command")
                return
            raise TestFailed(f"{s.describe()}: DUT did not hang up")
        if tx.kind != "hangup":
            raise TestFailed(f"{s.describe()}: expected the DUT to hang up, it sent {tx.describe()}")
        self.take(tx)

    # -- tones
    def do_CED_T(self, s: Step) -> None:
        self.unexpected()
        self.feed(M.ToneDetected(M.Tone.CED))
        self.advance(CED_SECONDS)
        self.unexpected_tone_ok()

    def do_CNG_T(self, s: Step) -> None:
        self.unexpected()
        self.feed(M.ToneDetected(M.Tone.CNG))
        self.advance(CNG_SECONDS)

    def unexpected_tone_ok(self) -> None:
        pass

    def _expect_tone(self, s: Step, tone: M.Tone) -> None:
        tx = self.next_tx(self.now + s.int_attr("timeout", DEFAULT_R_TIMEOUT_MS) / 1000)
        if tx is None:
            raise TestFailed(f"{s.describe()}: DUT sent no {tone.value}")
        if tx.kind != "tone" or tx.tone is not tone:
            raise TestFailed(f"{s.describe()}: expected {tone.value}, DUT sent {tx.describe()}")
        self.take(tx)

    def do_CED_R(self, s: Step) -> None:
        self._expect_tone(s, M.Tone.CED)

    def do_CNG_R(self, s: Step) -> None:
        self._expect_tone(s, M.Tone.CNG)
        self.cng_seen = True

    def do_SILENCE_R(self, s: Step) -> None:
        while self.queue and self.queue[0].kind == "silence":
            self.take(self.queue[0])

    # -- the tester's transmissions
    def _open(self, m: M.Modulation, flags: int | None = None) -> None:
        if self.carrier is not None:
            self._close()
        if m is M.Modulation.V21:
            # A V.21 receiver hears the carrier and the first flags long before the 1 s
            # preamble ends (and a T.30 engine holds its own repeat once it does, T.30
            # §5.4.3.1): CarrierUp after DETECT_FLAGS flags, the frames after the preamble
            n = flags or line.V21_PREAMBLE_FLAGS
            early = min(n, line.DETECT_FLAGS)
            self.advance(early * 8 / 300)
            self.carrier = m
            self.feed(M.CarrierUp(m))
            self.advance((n - early) * 8 / 300)
            return
        self.advance(line.training_s(m))
        self.carrier = m
        self.feed(M.CarrierUp(m))

    def _close(self) -> None:
        if self.carrier is None:
            return
        m = self.carrier
        self.advance(5 * 8 / (300 if m is M.Modulation.V21 else m.bit_rate))
        self.carrier = None
        self.feed(M.CarrierDown(m))

    def do_PREAMBLE_T(self, s: Step) -> None:
        self.unexpected()
        m = line.modem(s.get("modem")) or M.Modulation.V21
        if self.carrier is not None and self.carrier is m:
            return     # "PREAMBLE value=29" between frames of one transmission
        self._open(m, s.int_attr("value"))

    def do_POSTAMBLE_T(self, s: Step) -> None:
        self._close()

    def do_HDLC_T(self, s: Step) -> None:
        raw, _ = hex_value(s.value)
        frame = bytearray(to_wire(raw))
        if self.carrier is None:
            self.unexpected()
            self._open(line.modem(s.get("modem")) or M.Modulation.V21)
        if len(frame) >= 7 and frame[2] & 0xFE == 0xBE:      # PPS: the real frame count (T.30 §A.4)
            frame[6] = (self.pp_frames - 1) & 0xFF if self.pp_frames else frame[6]
            if self.pp_new and frame[4] < self.tester_page:
                # new page data under the number of a page the DUT already confirmed: the
                # script's page counter is a placeholder like its counts (OREN09 numbers both
                # pages 0); the page counter moves on with each page (T.30 §A.4)
                self._note(f"PPS page counter {frame[4]} -> {self.tester_page} (page already confirmed)")
                frame[4] = self.tester_page & 0xFF
        if len(frame) >= 3 and frame[2] & 0xFE == 0x82 and len(frame) > 3:   # DCS
            self.dcs = DCSInfo.decode(bytes(frame[3:]))
        bad = s.get("crc_error") is not None
        self.crc_sent = bad
        if not bad and len(frame) >= 3:
            self._tester_frame(bytes(frame))
        self.advance((len(frame) + 3) * 8 / (300 if self.carrier is M.Modulation.V21 else self.carrier.bit_rate))
        self.feed(M.HDLCFrame(bytes(frame), fcs_ok=not bad, modulation=self.carrier))

    def do_TCF_T(self, s: Step) -> None:
        self.unexpected()
        m = line.modem(s.get("modem"))
        n = s.int_attr("value", 0)
        data = line.tcf_data(m, n, s.int_attr("pattern"))
        self._send_data(m, data)

    def _send_data(self, m: M.Modulation, data: bytes) -> None:
        if self.carrier is not None:
            self._close()
        self.advance(line.training_s(m))
        self.feed(M.CarrierUp(m))
        step = max(1, int(m.bit_rate * CHUNK_SECONDS / 8))
        for i in range(0, len(data), step):
            chunk = data[i:i + step]
            self.advance(line.data_s(m, len(chunk)))
            self.feed(M.DataReceived(chunk, m))
        self.feed(M.CarrierDown(m))

    def do_MSG_T(self, s: Step) -> None:
        self.unexpected()
        m = line.modem(s.get("modem"))
        if self.dcs is None:
            raise ScriptError(f"{s.describe()}: MSG before any DCS")
        dcs = self.dcs
        if dcs.modulation is not m:
            self._note(f"MSG at {m} while the DCS says {dcs.modulation}")
        bad = [int(x) for x in (s.get("bad_rows") or "").replace(",", " ").split()]
        data = line.page_data(s.value, 0, DCSInfo(m, dcs.codec, dcs.resolution, dcs.ecm,
                                                  dcs.frame_size, dcs.scan_ms), bad_rows=bad)
        self.rx_pending = (s.value, line.load_pages(s.value)[0].image, tuple(bad), False)
        self._send_data(m, data)

    def do_PP_T(self, s: Step) -> None:
        if self.dcs is None:
            raise ScriptError(f"{s.describe()}: PP before any DCS")
        m = self.carrier or line.modem(s.get("modem")) or self.dcs.modulation
        if self.carrier is None:
            self.unexpected()
            self._open(m)
        codec = "mmr" if (s.get("compression") or "").upper() == "T.6" else self.dcs.codec
        size = s.int_attr("frame_size", self.dcs.frame_size)
        block = s.int_attr("block", 0)
        block, image = self._pp_page(s, codec, block)
        frames = line.ecm_frames(image, size, block)
        self.pp_new = True
        if not frames:
            raise ScriptError(f"{s.describe()}: the page has no block {block} at {size}-octet frames")
        if self.rx_pending is None or self.rx_pending[0] != s.value:
            self.rx_pending = (s.value, line.load_pages(s.value)[0].image, (), True)
        bad = s.int_attr("crc_error")
        for i, payload in enumerate(frames):
            f = bytes([0xFF, 0x03, 0x06, i]) + payload              # FCD (T.30 §A.3.6)
            self.advance(line.data_s(m, len(f) + 3))
            self.feed(M.HDLCFrame(f, fcs_ok=(bad is None or block * 256 + i != bad), modulation=m))
        for _ in range(3):                                          # RCP x 3 (T.30 §A.3.6.1)
            self.advance(line.data_s(m, 6))
            self.feed(M.HDLCFrame(bytes([0xFF, 0x03, 0x86]), modulation=m))
        self.pp_frames = len(frames)
        self._close()
        self._trace(f"   partial page: {len(frames)} frames of {size} octets, block {block}, "
                    f"{len(image)} octets coded ({codec})")

    # -- the DUT's transmissions
    def _hdlc_matches(self, s: Step, tx: Tx) -> bool:
        if tx.kind != "hdlc":
            return False
        exp_raw, open_ended = hex_value(s.value)
        alts = [exp_raw]
        if s.get("xxx"):
            alts.append(hex_value(s.get("xxx"))[0])
        for raw in alts:
            exp = to_wire(raw)
            if open_ended or len(raw) == 3:
                # "..." means anything after; a bare address/control/FCF is how the
                # script writes frames whose FIF it does not check (DCS+, PPS-EOP+ ...)
                if tx.frame[:len(exp)] == exp:
                    return True
            elif tx.frame == exp:
                return True
        return False

    @staticmethod
    def _optional_ident(s: Step, tx: Tx) -> bool:
        """``tx`` is a CSI/CIG sent in the same transmission as the DIS/DTC ``s`` expects."""
        want = s.tag.rstrip("+")
        if want not in ("DIS", "DTC") or tx.kind != "hdlc" or len(tx.frame) < 3:
            return False
        # xmfax's octet order: CSI (TSB-85's 02) is 0x40, CIG (82) is 0x41: 0x40 once X is dropped
        return tx.frame[2] & 0xFE == 0x40 and tx.index + 1 < tx.count

    def do_HDLC_R(self, s: Step) -> None:
        timeout = s.int_attr("timeout", DEFAULT_R_TIMEOUT_MS) / 1000
        tx = self.next_tx(self.now + timeout)
        if tx is None:
            raise TestFailed(f"{s.describe()}: DUT sent nothing within {timeout:g} s (expected {s.value})")
        while not self._hdlc_matches(s, tx) and self._optional_ident(s, tx):
            # T.30 §5.3.6.1.1: CSI/CIG are optional and precede DIS/DTC in the same
            # transmission; a script that lists only the DIS does not forbid them
            self._note(f"DUT sent {tx.describe()} before the {s.tag} the script lists (optional in T.30)")
            self.take(tx)
            tx = self.next_tx(self.now + timeout)
            if tx is None:
                raise TestFailed(f"{s.describe()}: DUT sent nothing within {timeout:g} s (expected {s.value})")
        if not self._hdlc_matches(s, tx):
            raise TestFailed(f"{s.describe()}: expected [{s.value}], DUT sent {tx.describe()}")
        want = line.modem(s.get("modem"))
        if want is not None and tx.modulation is not want:
            raise TestFailed(f"{s.describe()}: frame sent at {tx.modulation}, expected {want}")
        if len(tx.frame) > 3 and tx.frame[2] & 0xFE == 0x82:
            self.dcs = self.dut_dcs = DCSInfo.decode(tx.frame[3:])
        self._dut_frame(tx.frame)
        self.crc_sent = False
        self.take(tx)

    def do_TCF_R(self, s: Step) -> None:
        timeout = s.int_attr("timeout", DEFAULT_R_TIMEOUT_MS) / 1000
        tx = self.next_tx(self.now + timeout)
        want = line.modem(s.get("modem"))
        if tx is None:
            raise TestFailed(f"{s.describe()}: DUT sent no TCF within {timeout:g} s")
        if tx.kind != "data":
            raise TestFailed(f"{s.describe()}: expected TCF at {want}, DUT sent {tx.describe()}")
        if want is not None and tx.modulation is not want:
            raise TestFailed(f"{s.describe()}: TCF at {tx.modulation}, expected {want}")
        secs = line.data_s(tx.modulation, len(tx.data))
        if not 1.35 <= secs <= 1.65:                      # TCF: T.30 asks 1.5 s +-10 %
            raise TestFailed(f"{s.describe()}: TCF lasts {secs:.2f} s, T.30 asks 1.5 s +-10 %")
        if any(tx.data):
            raise TestFailed(f"{s.describe()}: TCF is not all zeros ({sum(1 for b in tx.data if b)} non-zero octets)")
        self.crc_sent = False
        self.take(tx)

    def do_MSG_R(self, s: Step) -> None:
        timeout = s.int_attr("timeout", 60_000) / 1000
        tx = self.next_tx(self.now + timeout)
        want = line.modem(s.get("modem"))
        if tx is None:
            raise TestFailed(f"{s.describe()}: DUT sent no page within {timeout:g} s")
        if tx.kind != "data":
            raise TestFailed(f"{s.describe()}: expected page data at {want}, DUT sent {tx.describe()}")
        if want is not None and tx.modulation is not want:
            raise TestFailed(f"{s.describe()}: page at {tx.modulation}, expected {want}")
        self.check_page(s, tx)
        self.crc_sent = False
        self.take(tx)

    def check_page(self, s: Step, tx: Tx) -> None:
        """Decode the DUT's page at its DCS's coding; check rows and minimum scan-line bits."""
        dcs = self.dut_dcs
        if dcs is None:
            self._note("page data not decoded: no DCS from the DUT seen")
            return
        from xmfax import codecs
        res = codecs.decode(tx.data, width=1728, codec=dcs.codec, bit_order="lsb")
        self.dut_pages_sent += 1
        self._trace(f"   DUT page {self.dut_pages_sent}: {res.rows} rows, {res.bad_rows} bad, codec {dcs.codec}")
        if res.rows == 0 or res.bad_rows:
            raise TestFailed(f"{s.describe()}: DUT's page decodes to {res.rows} rows with {res.bad_rows} bad rows")
        self._compare_sent(s.describe(), res.image)
        need = dcs.min_row_bits()
        if need and dcs.codec in ("mh", "mr"):
            rows = line._rows_of_mh(line._bits_of(tx.data))[1:res.rows + 1]
            short = [i for i, r in enumerate(rows[:-1]) if len(r) < need]
            if short:
                raise TestFailed(f"{s.describe()}: {len(short)} rows shorter than the DCS's minimum scan "
                                 f"line ({need} bits), first row {short[0]}")

    def do_PP_R(self, s: Step) -> None:
        timeout = s.int_attr("timeout", 60_000) / 1000
        tx = self.next_tx(self.now + timeout)
        if tx is None:
            raise TestFailed(f"{s.describe()}: DUT sent no partial page within {timeout:g} s")
        if tx.kind != "hdlc" or tx.modulation is M.Modulation.V21:
            raise TestFailed(f"{s.describe()}: expected ECM frames at a high-speed modulation, DUT sent {tx.describe()}")
        want = line.modem(s.get("modem"))
        if want is not None and tx.modulation is not want:
            raise TestFailed(f"{s.describe()}: partial page at {tx.modulation}, expected {want}")
        frames = [t for t in self.queue if t.tx_id == tx.tx_id]
        fcd = [t.frame for t in frames if len(t.frame) >= 4 and t.frame[2] == 0x06]
        rcp = [t.frame for t in frames if len(t.frame) >= 3 and t.frame[2] == 0x86]
        if not fcd or not rcp:
            raise TestFailed(f"{s.describe()}: partial page has {len(fcd)} FCD and {len(rcp)} RCP frames")
        size = s.int_attr("frame_size")
        if size and any(len(f) - 4 > size for f in fcd):
            self._note(f"{s.describe()}: the DUT's FCD frames are longer than the script's frame_size "
                       f"{size} (the DUT chooses 256 or 64, T.30 Annex A; not enforced)")
        self._trace(f"   DUT partial page: {len(fcd)} FCD frames, {len(rcp)} RCP")
        self.ecm_tx.burst(fcd)
        for t in frames:
            self.queue.remove(t)
        self.pump_to(tx.end)
        self.crc_sent = False


# --------------------------------------------------------------------------- runs
def run_test(test: TestCase, verbose: bool = False) -> TestResult:
    t = Tester(test, verbose)
    outcome, reason = "pass", ""
    try:
        t.run()
    except TestFailed as exc:
        outcome, reason = "fail", str(exc)
    except RunnerError as exc:
        outcome, reason = "fail", str(exc).splitlines()[0]
        t.log.append(str(exc))
    except ScriptError as exc:
        outcome, reason = "fail", f"runner cannot play this script: {exc}"
    except ImportError as exc:
        outcome, reason = "fail", f"xmfax part missing: {exc}"
    except Exception as exc:  # a bug of the runner itself: still one test's failure
        outcome, reason = "fail", f"runner error {type(exc).__name__}: {exc}"
        t.log.append(traceback.format_exc())
    return TestResult(test.name, test.annex, outcome, reason, t.notes, t.log, t.acoustic, t.now,
                      t.tally.compared, t.tally.equal, t.status_expected, t.status_reason, t.status_agrees)


def run_all(script: Script, annex: str | None = None, name: str | None = None, verbose: bool = False):
    for test in script.tests:
        if annex and test.annex.upper() != annex.upper():
            continue
        if name and test.name.lower() != name.lower():
            continue
        yield run_test(test, verbose)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--xml", default=DEFAULT_XML)
    ap.add_argument("--annex", help="only this annex (A-J)")
    ap.add_argument("--test", help="only this test (e.g. MRGN01)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print each test's line log")
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    ap.add_argument("--mutant", help="run an engine broken on purpose instead (mutants.py: "
                    "all-white, first-block, always-mcf); the score must drop")
    args = ap.parse_args(argv)
    if args.mutant:
        global _session_api
        from mutants import MUTANTS
        from xmfax.t30 import T30Config
        cls = MUTANTS[args.mutant]
        _session_api = lambda: (cls, T30Config)   # noqa: E731
    script = parse(args.xml)
    per_annex: dict[str, dict[str, int]] = {}
    results = []
    for r in run_all(script, args.annex, args.test, args.verbose):
        results.append(r)
        per_annex.setdefault(r.annex, {"pass": 0, "fail": 0, "n/a": 0})[r.outcome] += 1
        print(f"{r.name:10s} {r.outcome:5s} {r.reason}")
        if args.verbose:
            for n in r.notes:
                print(f"           note: {n}")
            for ln in r.log:
                print(f"           {ln}")
    print()
    groups = {t.annex: t.group for t in script.tests}
    if args.markdown:
        print("| Annex | pass | fail | n/a |\n|---|---|---|---|")
    tot = {"pass": 0, "fail": 0, "n/a": 0}
    for a in sorted(per_annex):
        c = per_annex[a]
        for k in tot:
            tot[k] += c[k]
        if args.markdown:
            print(f"| {groups[a]} | {c['pass']} | {c['fail']} | {c['n/a']} |")
        else:
            print(f"{groups[a]:55s} pass {c['pass']:3d}  fail {c['fail']:3d}  n/a {c['n/a']:3d}")
    print(f"{'total':55s} pass {tot['pass']:3d}  fail {tot['fail']:3d}  n/a {tot['n/a']:3d}")
    for ln in content_summary(results):
        print(ln)
    return 0 if tot["fail"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
