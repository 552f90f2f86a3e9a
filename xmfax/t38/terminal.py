"""The T.38 terminal: a T.30 Session driven over IFP (T.38 §6-§7), sans-IO.

The terminal stands where a modem would: it turns the session's modem
commands (:mod:`xmfax.t30.modem`) into IFP packets, and IFP packets from the
far end into modem events. Time is passed in; nothing here sleeps or reads a
socket. A driver pumps it::

    term = T38Terminal(session, T38Config(), now)
    term.start(now)
    loop:  term.receive_datagram(data, now)   # or receive_ifp(ifp, now) without UDPTL
           term.handle_timer(now) when now >= term.next_timer()
           send every term.datagrams_to_send()  (or term.packets_to_send())
    until term.done

Transmission (T.38 §7.3, and what gateways expect; planned by :mod:`.txplan`):
  SendTone    -> cng / ced indicator, held for the tone's length; a caller's CNG is
                 sent again every CNG_PERIOD (T.30 §4.1 cadence) until the far end is
                 heard or the session sends anything else (a lost first CNG kills no call)
  SendHDLC    -> v21-preamble or a training indicator, then per frame hdlc-data
                 chunks, hdlc-fcs-OK; the last frame ends with hdlc-fcs-OK-sig-end
  SendData    -> training indicator, t4-non-ecm-data chunks, t4-non-ecm-sig-end
  SendSilence -> nothing sent for that long
  every signal is followed by a no-signal indicator
  every indicator, and the no-signal ending each transmission, is sent ``end_repeats``
  more times (``end_repeat_ms`` apart, paced), each repeat a new datagram (issue #10):
  UDPTL redundancy carries a lost packet only in the datagrams after it, and after the
  end of a signal this terminal falls silent to wait for the answer. Repeats never
  delay SendComplete (T.30's timers start there), and a new signal cancels any left.
Paced (``T38Config.paced``), each step is sent when a modem would have reached
it: training and preamble times, then data in ``chunk_ms`` pieces at the
modulation's byte rate. Unpaced, everything goes at once (trusted links, tests).

Reception: indicators give CarrierUp / ToneDetected; hdlc fields give
HDLCFrame (fcs_ok False if the far end said hdlc-fcs-BAD or a packet of the
frame was lost); t4 fields give DataReceived; a sig-end, or an indicator that
replaces a running signal, gives CarrierDown.

Lost packets (a gap UDPTL could not fill, or a restart of its numbering) never
join what came before them to what comes after (issue #10): after a loss,
everything up to the next boundary received in sequence (an indicator, or an
hdlc-fcs-* field) is suspect, so the HDLC frame that spans it is reported with
fcs_ok False, even if it ends with hdlc-fcs-OK. In non-ECM data the gap is
passed to T.30 as ``DataReceived(NOISE, mod, lost=octets)``: a few octets no
coded row can decode through (so the row cut by the gap is not glued to the
next one's tail; no EOL inside) and an estimate of the octets lost, which T.30
counts as lost rows in its copy-quality check.

Rate management: with transferredTCF the TCF travels as data. With localTCF
it is not sent (T.38 §6.2.1: the receiving gateway checks it locally); a
receiving terminal then reports a good TCF itself after a DCS.
"""
from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field

from ..t30 import modem as M
from .config import RATE_LOCAL_TCF, T38Config
from .fillbits import remove_fill_bits
from .ifp import DataPacket, FieldType, IFPDecodeError, Indicator, IndicatorPacket, decode_ifp, encode_ifp, one_field
from .signals import INDICATED, MODULATION, TONE_MS
from .txplan import REVERSE, Again, plan_data, plan_hdlc, with_repeats
from .udptl import UDPTLReceiver, UDPTLSender

__all__ = ["T38Terminal", "T38Stats", "remove_fill_bits"]

Mod = M.Modulation
_HDLC_FIELD_END = {FieldType.HDLC_FCS_OK: True, FieldType.HDLC_FCS_BAD: False,
                   FieldType.HDLC_FCS_OK_SIG_END: True, FieldType.HDLC_FCS_BAD_SIG_END: False}
_DCS = 0x82
# field types as plain ints for the per-packet receive path (IntEnum members compare equal)
_HDLC_DATA, _HDLC_SIG_END = int(FieldType.HDLC_DATA), int(FieldType.HDLC_SIG_END)
_HDLC_LAST, _HDLC_SIG_END_FCS = int(FieldType.HDLC_FCS_BAD_SIG_END), int(FieldType.HDLC_FCS_OK_SIG_END)
_T4_LAST, _T4_DATA = int(FieldType.T4_NON_ECM_SIG_END), int(FieldType.T4_NON_ECM_DATA)
# indicators whose repeat, with nothing received between, is no new event (a repeated
# training or preamble indicator is handled by _on_indicator, which knows the signal state)
_IDEMPOTENT = frozenset({Indicator.NO_SIGNAL, Indicator.CNG, Indicator.CED})
# Line noise standing in for lost non-ECM data, LSB first: runs of 8 ones and 8 zeros. No MH or
# MR code has 8 zeros followed by a 1 (T.4 Tables 2-4: only the EOL, with 11), and no run here
# can make an EOL, so a row the gap cut is never completed by what follows the gap.
NOISE = bytes([0xFF, 0x00] * 3 + [0xFF])
# T.30 §5.3.6 / Annex A: the longest T.30 HDLC frame (an ECM FCD: 4 + 256 octets); anything
# past this is not a T.30 frame, and is not buffered further
MAX_HDLC_FRAME = 512
# A received signal with no packet for this long has ended: its sig-end and no-signal were
# lost (a modem's carrier detector would have dropped). V.21: the preamble is 1 s +-15 %
# (T.30 §5.3.1) before the first data; high speed: up to 1393 ms of training and 200 ms of
# flags (M.TRAINING_MS, M.HS_FLAGS_MS). Then data flows (a T.38 gateway sends a packet every few tens of ms).
# T.30 §4.1: the calling station's CNG cadence, 0.5 s on, 3 s off, until it is answered (a
# gateway sends one cng indicator per burst); on a raw T.38 line the first datagrams are all
# that tells the far end of a call, and they may be lost (or reach a port being re-bound)
CNG_PERIOD = (M.CNG_MS + 3000) / 1000
RX_SILENCE_V21 = 2.0
RX_SILENCE_HS = 3.0


@dataclass
class T38Stats:
    packets_sent: int = 0
    packets_received: int = 0
    packets_lost: int = 0            # gaps UDPTL could not fill
    data_gaps: int = 0               # non-ECM data gaps reported to T.30 (DataReceived.lost)
    malformed: Counter = field(default_factory=Counter)   # reason -> count (IFP level)
    ignored: Counter = field(default_factory=Counter)     # tolerated oddities -> count
    frames_received: int = 0
    frames_bad: int = 0
    indicators_repeated: int = 0     # idle repeats (indicator_interval_ms)
    end_repeats: int = 0             # repeats of indicators and signal ends (end_repeats)
    cng_repeats: int = 0             # CNG bursts after the first, while the far end is unheard


class _Tx:
    """One scheduled transmission: (time, ifp packet | None) steps, then done."""

    __slots__ = ("steps", "end", "report")

    def __init__(self, steps: deque, end: float, report: bool):
        self.steps = steps
        self.end = end
        self.report = report        # SendComplete at the end: only for SendHDLC / SendData


class T38Terminal:
    """Runs one T.30 ``Session`` over T.38. See the module docstring."""

    def __init__(self, session, config: T38Config | None = None, now: float = 0.0, *, udptl: bool = True):
        self.session = session
        self.config = cfg = config or T38Config()
        t30_max = getattr(getattr(session, "config", None), "max_rate", None)
        if isinstance(t30_max, int) and t30_max > cfg.max_bit_rate:
            # T38MaxBitRate is what the two ends agreed in SDP: the session must not offer more
            raise ValueError(f"the T.30 session allows {t30_max} bit/s but T38MaxBitRate is "
                             f"{cfg.max_bit_rate}: build it with T38Config.limit_t30(config)")
        self.udptl = udptl
        self.stats = T38Stats()
        self._sender = UDPTLSender(cfg) if udptl else None
        self._receiver = UDPTLReceiver(cfg.version) if udptl else None
        self._out: list = []                 # datagrams or raw IFP packets waiting for the driver
        self._out_seq = 0                    # IFP sequence numbers when not using UDPTL
        self._commands: deque = deque()
        self._tx: _Tx | None = None
        self._tx_free_at = now               # when the line is free for the next command
        self._last_indicator: bytes | None = None
        self._indicator_due: float | None = None
        self._ind_redundancy_left = 0
        self._tail: deque = deque()          # (time, raw indicator): repeats after a transmission
        self._cng_due: float | None = None   # the next CNG of the calling cadence
        self._cng_heard = False              # answering: CNG reported to T.30 (once is enough)
        # receive state
        self._rx_mod: Mod | None = None      # modulation of the signal being received
        self._rx_kind: str | None = None     # "hdlc" or "data"
        self._rx_announced = False           # CarrierUp given to T.30 for the current signal
        self._rx_last = now                  # when the last packet of the current signal came
        self._frame = bytearray()
        self._frame_damaged = False          # a packet was lost since the last boundary
        self._lost_pending = 0               # packets lost, not yet reported in non-ECM data
        self._rx_octets = 0                  # data octets and packets of the current data signal
        self._rx_packets = 0
        self._rx_expected_seq: int | None = None
        self._rx_prev_ind: Indicator | None = None   # the last packet received, if an indicator
        self._events: list = []
        self._started = False
        self._closed = False
        self._s_timer: float | None = None    # the session's next_timer(), asked again only
        self._s_asked = False                 # ... after the session was called (_pump, _feed)
        self._timer = self._compute_timer()

    # ------------------------------------------------------------------ driver API
    def start(self, now: float) -> None:
        self._started = True
        self._tx_free_at = now
        self.session.start(now)
        self._pump(now)
        self._timer = self._compute_timer()

    def resume(self, now: float, pending=()) -> None:
        """Take over a session that has already started on another modem layer (instead of
        :meth:`start`: the session is not started again): a call switched from audio to T.38
        during the fax (drivers/sip.py). ``pending``: the commands that layer had not sent
        whole (``AudioTerminal.detach``), sent first, in order; then what the session asks.
        T.30's own timers and retries repair what the switch cut (T.30 §5.4.3)."""
        if self._started:
            raise RuntimeError("resume() on a terminal already started")
        self._started = True
        self._tx_free_at = now
        self._commands.extend(pending)
        self._pump(now)
        self._timer = self._compute_timer()

    @property
    def done(self) -> bool:
        """The call is over and everything the session asked to send has gone
        (a paced terminal still has the final DCN to play out after the session ends)."""
        if self._closed:
            return not self._tail             # after a Hangup the last repeats still go
        return bool(self.session.done) and self._tx is None and not self._commands and not self._tail

    @property
    def result(self):
        return self.session.result

    def events(self) -> list:
        """Session events collected so far (drained)."""
        out, self._events = self._events, []
        return out

    def datagrams_to_send(self) -> list[bytes]:
        """UDPTL datagrams to send now (only with ``udptl=True``)."""
        out, self._out = self._out, []
        return out

    def packets_to_send(self) -> list[tuple[int, bytes]]:
        """(sequence number, IFP packet) pairs to send now (only with ``udptl=False``)."""
        out, self._out = self._out, []
        return out

    def next_timer(self) -> float | None:
        """When handle_timer() is next due (None: nothing pending). Kept from the end of the
        last call that can move it (start, receive_*, handle_timer, close): this terminal and
        its session change only when called, and a paced call asks this thousands of times."""
        return self._timer

    def _compute_timer(self) -> float | None:
        tx = self._tx
        best = None
        if tx is not None:
            best = tx.steps[0][0] if tx.steps else tx.end
        if self._tail and (best is None or self._tail[0][0] < best):
            best = self._tail[0][0]
        for due in (self._indicator_due, self._cng_due):
            if due is not None and (best is None or due < best):
                best = due
        if self._rx_mod is not None:
            due = self._rx_deadline()
            if best is None or due < best:
                best = due
        if not self._s_asked:
            self._s_timer = self.session.next_timer()
            self._s_asked = True
        t = self._s_timer
        if t is not None and (best is None or t < best):
            best = t
        return best

    def _rx_deadline(self) -> float | None:
        if self._rx_mod is None:
            return None
        return self._rx_last + (RX_SILENCE_V21 if self._rx_mod is Mod.V21 else RX_SILENCE_HS)

    def handle_timer(self, now: float) -> None:
        due = None if self._rx_mod is None else self._rx_deadline()
        if due is not None and now >= due:
            # the rest of the signal was lost: whatever frame is in progress is bad
            self.stats.ignored["signal ended in silence"] += 1
            self._lost(now, 1)
            self._carrier_down(now)
            self._pump(now)
        if self._tail:
            self._run_tail(now)
        if self._tx is not None:
            self._run_tx(now)
        if self._indicator_due is not None and now >= self._indicator_due:
            if self._tx is None:
                self._repeat_indicator(now)
            else:
                self._indicator_due = None
        if self._cng_due is not None and now >= self._cng_due:
            self._cng_again(now)
        t = self._s_timer if self._s_asked else self.session.next_timer()
        if t is not None and now >= t:
            self.session.handle_timer(now)
            self._pump(now)
        self._timer = self._compute_timer()

    def receive_datagram(self, data: bytes, now: float) -> None:
        """A UDPTL datagram from the far end. Malformed ones are counted, never raised."""
        self._cng_due = None                  # the far end is there: the CNG cadence ends
        lost = 0
        for seq, ifp in self._receiver.receive(data):
            if ifp is None:
                lost += 1                     # a run of losses is one gap
                continue
            if lost:
                self.stats.packets_lost += lost
                self._lost(now, lost)
                lost = 0
            if not self._receive_ifp_bytes(ifp, now):
                self._s_asked = False
        if lost:
            self.stats.packets_lost += lost
            self._lost(now, lost)
        if not self._s_asked:
            self._pump(now)
        self._timer = self._compute_timer()

    def receive_ifp(self, ifp: bytes, now: float, seq: int | None = None) -> None:
        """An IFP packet without UDPTL (e.g. passed straight from another terminal).
        With ``seq``, a gap in the numbers counts as a loss; repeats are dropped."""
        self._cng_due = None                  # the far end is there: the CNG cadence ends
        if seq is not None:
            exp = self._rx_expected_seq
            if exp is not None and seq != exp:
                delta = (seq - exp) & 0xFFFF
                if delta > 0x8000:
                    self.stats.ignored["late or repeated packet"] += 1
                    return
                self.stats.packets_lost += delta
                self._lost(now, delta)
            self._rx_expected_seq = (seq + 1) & 0xFFFF
        if not self._receive_ifp_bytes(ifp, now) or self._s_asked is False:
            self._pump(now)
        self._timer = self._compute_timer()

    def close(self, reason: str = "transport closed", now: float = 0.0) -> None:
        """The transport is gone: tell the session (LineLost)."""
        if not self.session.done:
            self.session.receive(M.LineLost(reason), now)
            self._pump(now)
        self._closed = True
        self._tail.clear()                    # nothing more goes out
        self._timer = self._compute_timer()

    # ------------------------------------------------------------------ session pump
    def _pump(self, now: float) -> None:
        s = self.session
        self._s_asked = False
        while True:
            cmds = s.data_to_send()
            if cmds:
                self._commands.extend(cmds)
            evs = s.events()
            if evs:
                self._events.extend(evs)
            if self._tx is None and self._commands:
                self._start_command(self._commands.popleft(), now)
                self._run_tx(now)
                continue
            break

    def _feed(self, event, now: float) -> None:
        self._s_asked = False
        self.session.receive(event, now)

    # ------------------------------------------------------------------ transmit
    def _emit(self, packet, indicator: bool = False) -> None:
        raw = encode_ifp(packet, self.config.version)
        self._tail.clear()                    # a new signal: the last one's repeats are moot
        self._send(raw, indicator)

    def _send(self, raw: bytes, indicator: bool) -> None:
        self.stats.packets_sent += 1
        if indicator:
            self._last_indicator = raw
            self._ind_redundancy_left = self.config.redundancy_depth + 1
        if self.udptl:
            depth = None
            if self._ind_redundancy_left > 0:
                # indicators are small and vital: keep them in the next datagrams longer
                depth = self.config.indicator_redundancy
                self._ind_redundancy_left -= 1
            self._out.append(self._sender.pack(raw, depth))
        else:
            self._out.append((self._out_seq, raw))
            self._out_seq = (self._out_seq + 1) & 0xFFFF

    def _start_command(self, cmd, now: float) -> None:
        cfg = self.config
        paced = cfg.paced
        t = max(now, self._tx_free_at) if paced else now
        steps: deque = deque()
        if isinstance(cmd, M.SendHDLC):
            t = plan_hdlc(cfg, cmd, t, steps, paced)
        elif isinstance(cmd, M.SendData):
            t = plan_data(cfg, cmd, t, steps, paced)
        elif isinstance(cmd, M.SendTone):
            ind = Indicator.CNG if cmd.tone is M.Tone.CNG else Indicator.CED
            if ind is Indicator.CNG:
                self._cng_due = t + CNG_PERIOD        # T.30 §4.1: again until answered
            steps.append((t, IndicatorPacket(ind)))
            if paced:
                t += (cmd.ms or TONE_MS[cmd.tone]) / 1000
            steps.append((t, IndicatorPacket(Indicator.NO_SIGNAL)))
        elif isinstance(cmd, M.SendSilence):
            if paced:
                t += cmd.ms / 1000
        elif isinstance(cmd, M.Hangup):
            self._tx = None
            self._indicator_due = self._cng_due = None
            self._closed = True
            return
        else:  # Receive and anything unknown: a hint, nothing to send
            return
        if not isinstance(cmd, M.SendTone) or cmd.tone is not M.Tone.CNG:
            self._cng_due = None                      # the session moved on: no more CNG
        if self.config.end_repeats:
            steps = with_repeats(self.config, steps, paced)
        self._tx = _Tx(steps, t, isinstance(cmd, (M.SendHDLC, M.SendData)))
        self._indicator_due = None            # a signal is on: no idle repeats

    def _run_tx(self, now: float) -> None:
        while self._tx is not None:
            tx = self._tx
            steps = tx.steps
            last = None
            while steps and steps[0][0] <= now:
                at, pkt = steps.popleft()
                if type(pkt) is bytes:           # a paced data packet, encoded when planned
                    if self._tail:
                        self._tail.clear()
                    self._send(pkt, False)
                    last = (at, pkt)
                    continue
                if type(pkt) is Again:
                    self._repeat(encode_ifp(pkt.packet, self.config.version))
                    continue
                self._emit(pkt, indicator=type(pkt) is IndicatorPacket)
                last = (at, pkt)
            if last is not None and not steps and type(last[1]) is IndicatorPacket:
                self._schedule_tail(*last)
            if steps or tx.end > now:
                return
            # the transmission is over: tell T.30, then start whatever it asks next
            self._run_tail(now)          # unpaced, the repeats go before anything new
            self._tx = None
            self._tx_free_at = tx.end
            self._schedule_indicator_repeat(tx.end)
            if tx.report:
                self._feed(M.SendComplete(), now)
            cmds = self.session.data_to_send()
            if cmds:
                self._commands.extend(cmds)
            evs = self.session.events()
            if evs:
                self._events.extend(evs)
            while self._tx is None and self._commands:
                self._start_command(self._commands.popleft(), now)

    def _schedule_tail(self, t: float, pkt: IndicatorPacket) -> None:
        """The last packet of a transmission (its no-signal) went at ``t``: queue its
        repeats, each a new datagram carrying it and what came before as redundancy."""
        cfg = self.config
        gap = cfg.end_repeat_ms / 1000 if cfg.paced else 0.0
        raw = encode_ifp(pkt, cfg.version)
        self._tail.extend((t + k * gap, raw) for k in range(1, cfg.end_repeats + 1))

    def _run_tail(self, now: float) -> None:
        tail = self._tail
        while tail and tail[0][0] <= now:
            self._repeat(tail.popleft()[1])

    def _repeat(self, raw: bytes) -> None:
        # INTEROP(spandsp): a repeated identical indicator is no new event to a receiver
        # (spandsp's terminal ignores it, as this one does: _IDEMPOTENT); see docs/t38.md
        self.stats.end_repeats += 1
        self._send(raw, True)

    def _cng_again(self, now: float) -> None:
        """The CNG cadence is due: the next burst (indicator, its no-signal, their repeats)."""
        if self.session.done or self._closed:
            self._cng_due = None
        elif self._tx is not None or self._commands:
            self._cng_due = max(now, self._tx_free_at if self._tx is None else self._tx.end)
        else:
            self.stats.cng_repeats += 1
            self._start_command(M.SendTone(M.Tone.CNG), now)
            self._run_tx(now)

    def _schedule_indicator_repeat(self, t: float) -> None:
        iv = self.config.indicator_interval_ms
        self._indicator_due = t + iv / 1000 if iv and self._last_indicator is not None else None

    def _repeat_indicator(self, now: float) -> None:
        # like spandsp's REGULAR_INDICATORS: restate the line state while idle
        if self.session.done:
            self._indicator_due = None
            return
        raw = self._last_indicator
        self.stats.packets_sent += 1
        self.stats.indicators_repeated += 1
        if self.udptl:
            self._out.append(self._sender.pack(raw, self.config.indicator_redundancy))
        else:
            self._out.append((self._out_seq, raw))
            self._out_seq = (self._out_seq + 1) & 0xFFFF
        self._schedule_indicator_repeat(now)

    # ------------------------------------------------------------------ receive
    def _receive_ifp_bytes(self, raw: bytes, now: float) -> bool:
        """Take one IFP packet; True if it was only more of the frame being received
        (then nothing reached the session: it needs no pumping)."""
        one = one_field(raw, self.config.version)
        if one is not None and one[2] and MODULATION.get(one[0]) is self._rx_mod:
            # the common packets, more data of the signal being received: what decode_ifp
            # and _on_data would do with them, without building the packet
            dt, ft, data = one
            if (ft == _HDLC_DATA and self._rx_kind == "hdlc" and self._rx_announced
                    and len(self._frame) + len(data) <= MAX_HDLC_FRAME):
                self.stats.packets_received += 1
                self._rx_last = now
                self._rx_prev_ind = None
                self._frame += data.translate(REVERSE)
                return True
            if ft == _T4_DATA and self._rx_kind == "data" and not self._lost_pending:
                self.stats.packets_received += 1
                self._rx_last = now
                self._rx_prev_ind = None
                self._rx_octets += len(data)
                self._rx_packets += 1
                self._feed(M.DataReceived(data.translate(REVERSE), self._rx_mod), now)
                return False
        self._on_packet(raw, now)
        return False

    def _on_packet(self, raw: bytes, now: float) -> None:
        try:
            pkt = decode_ifp(raw, self.config.version)
        except IFPDecodeError as exc:
            self.stats.malformed[exc.reason] += 1
            self._lost(now, 1)
            return
        self.stats.packets_received += 1
        self._rx_last = now
        if type(pkt) is IndicatorPacket:
            prev, self._rx_prev_ind = self._rx_prev_ind, pkt.indicator
            if prev is pkt.indicator and prev in _IDEMPOTENT:
                # the far end repeating its indicator (end_repeats, REGULAR_INDICATORS):
                # nothing came between, so the line state is unchanged
                self.stats.ignored["repeated indicator"] += 1
                return
            self._on_indicator(pkt.indicator, now)
        else:
            self._rx_prev_ind = None
            self._on_data(pkt, now)

    def _lost(self, now: float, count: int) -> None:
        """``count`` packets are missing here. Whatever they held (the end of a frame, its
        FCS verdict, the start of the next, an indicator, page data) is unknown, so nothing
        received before them is joined to anything after them until a boundary arrives in
        sequence (see _boundary)."""
        self._frame_damaged = True
        self._lost_pending += count
        self._rx_prev_ind = None            # what was lost may have changed the line state
        if self._rx_kind == "data":
            self._report_data_gap(now)

    def _boundary(self) -> None:
        """An indicator or an FCS verdict arrived in sequence: what follows starts afresh."""
        self._frame_damaged = False
        self._lost_pending = 0

    def _report_data_gap(self, now: float) -> None:
        # Non-ECM data: tell T.30 how much is missing (an estimate: the mean data of this
        # signal's packets, or 40 ms of line before any), with noise that stops the decoder
        # from gluing the rows on either side of the gap.
        mod = self._rx_mod
        n, self._lost_pending = self._lost_pending, 0
        if not n or mod is None:
            return
        per = self._rx_octets / self._rx_packets if self._rx_packets else mod.bit_rate / 8 * 0.04
        self.stats.data_gaps += 1
        self._feed(M.DataReceived(NOISE, mod, lost=max(1, round(n * per))), now)

    def _carrier_down(self, now: float) -> None:
        if self._rx_mod is not None:
            if self._rx_kind == "hdlc" and self._frame:
                # a frame cut short by the end of the signal: report it as bad (this is no
                # boundary: a new signal's data may follow a lost indicator and frame start)
                self._frame_done(False, now, boundary=False)
            elif self._rx_kind == "data" and self._lost_pending:
                self._report_data_gap(now)       # the end of the page data was lost
            mod = self._rx_mod
            self._rx_mod = None
            self._rx_kind = None
            if self._rx_announced:
                self._feed(M.CarrierDown(mod), now)
            self._rx_announced = False

    def _carrier_up(self, mod: Mod, kind: str | None, now: float) -> None:
        """A signal starts: on an indicator (``_boundary`` was called) or, the indicator
        lost, on its data (then a loss before it still marks the first frame bad)."""
        if self._rx_mod is not None:
            self._carrier_down(now)
        self._rx_mod = mod
        self._rx_kind = kind
        self._frame.clear()
        self._rx_octets = self._rx_packets = 0
        self._rx_last = now
        self._rx_announced = False
        if mod is not Mod.V21 or kind is not None:
            self._announce(now)

    def _announce(self, now: float) -> None:
        # A V.21 preamble indicator alone is not told to T.30: only its first data is. T.30
        # holds its response timer (T4) for a signal it is told of; a response whose frames
        # are all lost must not stretch T4 into T2 (issue #10: an unanswered PPS was
        # repeated after 9-11 s instead of T4, 3 s +-15 %).
        if not self._rx_announced:
            self._rx_announced = True
            self._feed(M.CarrierUp(self._rx_mod), now)

    def _on_indicator(self, ind: Indicator, now: float) -> None:
        if self._rx_kind == "data" and self._lost_pending:
            self._report_data_gap(now)
        if self._rx_kind == "hdlc" and self._frame:
            self._frame_done(False, now, boundary=False)   # a frame cut short by the indicator
        self._boundary()           # nothing after an indicator belongs with what came before it
        if ind is Indicator.NO_SIGNAL:
            self._carrier_down(now)
        elif ind is Indicator.CNG or ind is Indicator.CED:
            self._carrier_down(now)
            if ind is Indicator.CNG:
                if self._cng_heard:
                    # the caller's CNG cadence (T.30 §4.1): T.30 was told of the call once
                    self.stats.ignored["CNG cadence"] += 1
                    return
                self._cng_heard = True
            self._feed(M.ToneDetected(M.Tone.CNG if ind is Indicator.CNG else M.Tone.CED), now)
        elif ind in INDICATED:
            mod = INDICATED[ind]
            if self._rx_mod is mod and self._rx_kind is None:
                # INTEROP(spandsp): REGULAR_INDICATORS repeats the same indicator; not a new signal
                self.stats.ignored["repeated indicator"] += 1
                return
            self._carrier_up(mod, None, now)
        else:
            # V.8 / V.34 / V.33 signals: decoded, but a V.17-class terminal does not use them
            self.stats.ignored[f"indicator {ind.name}"] += 1

    def _on_data(self, pkt: DataPacket, now: float) -> None:
        mod = MODULATION.get(pkt.data_type)
        if mod is None:
            self.stats.ignored[f"data {pkt.data_type.name}"] += 1
            return
        for f in pkt.fields:
            ft = f.type
            data = f.data
            if ft == _HDLC_DATA and data and self._rx_mod is mod and self._rx_kind == "hdlc" \
                    and self._rx_announced and len(self._frame) + len(data) <= MAX_HDLC_FRAME:
                self._frame += data.translate(REVERSE)     # the common case: more of a frame
                continue
            if ft <= _HDLC_LAST:
                if self._rx_mod is not mod or self._rx_kind == "data":
                    if ft == _HDLC_SIG_END and not data and self._rx_mod is None:
                        # INTEROP(various): a superfluous sig-end after the signal ended
                        self.stats.ignored["superfluous sig-end"] += 1
                        continue
                    # the indicator was lost (or never sent): the data itself says what started
                    self._carrier_up(mod, "hdlc", now)
                self._rx_kind = "hdlc"
                self._announce(now)
                if f.data:
                    if len(self._frame) + len(f.data) > MAX_HDLC_FRAME:
                        # longer than any T.30 frame: keep no more; it ends bad
                        self.stats.ignored["HDLC frame too long"] += 1
                        self._frame_damaged = True
                    else:
                        self._frame += f.data.translate(REVERSE)
                if ft in _HDLC_FIELD_END:
                    if self._frame:
                        self._frame_done(_HDLC_FIELD_END[ft], now)
                    else:
                        # its frame was lost whole (or never sent): a boundary all the same
                        self.stats.ignored["FCS verdict without a frame"] += 1
                        self._boundary()
                    if ft >= _HDLC_SIG_END_FCS:
                        self._carrier_down(now)
                elif ft == _HDLC_SIG_END:
                    self._carrier_down(now)
            elif ft <= _T4_LAST:
                if self._rx_mod is not mod or self._rx_kind == "hdlc":
                    if ft == FieldType.T4_NON_ECM_SIG_END and not f.data and self._rx_mod is None:
                        self.stats.ignored["superfluous sig-end"] += 1
                        continue
                    self._carrier_up(mod, "data", now)
                self._rx_kind = "data"
                if self._lost_pending:
                    self._report_data_gap(now)
                if f.data:
                    self._rx_octets += len(f.data)
                    self._rx_packets += 1
                    self._feed(M.DataReceived(f.data.translate(REVERSE), mod), now)
                if ft == _T4_LAST:
                    self._carrier_down(now)
            else:
                self.stats.ignored[f"field {ft.name}"] += 1

    def _frame_done(self, fcs_ok: bool, now: float, boundary: bool = True) -> None:
        frame = bytes(self._frame)
        ok = fcs_ok and not self._frame_damaged
        self._frame.clear()
        if boundary:
            self._boundary()
        self.stats.frames_received += 1
        if not ok:
            self.stats.frames_bad += 1
        mod = self._rx_mod or Mod.V21
        self._feed(M.HDLCFrame(frame, ok, mod), now)
        if (ok and self.config.rate_management == RATE_LOCAL_TCF and mod is Mod.V21
                and len(frame) >= 3 and frame[2] & 0xFE == _DCS):
            self._local_tcf(frame, now)

    def _local_tcf(self, frame: bytes, now: float) -> None:
        # T.38 §6.2.1 localTCF: no TCF crosses the network. A terminal has no local
        # modem to train, so the training is good by definition: tell T.30 it heard
        # TCF's 1.5 s of zeros (M.TCF_MS) at the DCS's modulation.
        from ..t30.frames import DCS  # the T.30 frame layer owns DCS decoding

        try:
            mod = DCS.decode(frame[3:]).modulation
        except Exception:  # a DCS T.30 itself will reject; let it
            return
        self._carrier_down(now)
        self._feed(M.CarrierUp(mod), now)
        self._feed(M.DataReceived(bytes(mod.bit_rate * M.TCF_MS // 8000), mod), now)
        self._feed(M.CarrierDown(mod), now)
