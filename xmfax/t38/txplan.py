"""What goes on the wire for one modem command (T.38 §7.3): the (time, IFP packet) steps the
T.38 terminal plays out, paced or at once. Pure functions of the command, the start time and
the T38Config; the terminal (:mod:`xmfax.t38.terminal`) owns the state and the clock."""
from __future__ import annotations

from collections import deque

from ..t30 import modem as M
from .config import RATE_LOCAL_TCF, T38Config
from .fillbits import remove_fill_bits
from .ifp import DataPacket, Field, FieldType, Indicator, IndicatorPacket, encode_one_field
from .signals import DATA_TYPE, HS_FLAGS_MS, TRAINING, TRAINING_MS, V21_PREAMBLE_MS

Mod = M.Modulation

__all__ = ["Again", "REVERSE", "plan_hdlc", "plan_data", "with_repeats", "data_room", "paced_chunk"]

_HDLC_DATA, _HDLC_FCS_OK = int(FieldType.HDLC_DATA), int(FieldType.HDLC_FCS_OK)
_HDLC_SIG_END_FCS = int(FieldType.HDLC_FCS_OK_SIG_END)
_T4_LAST, _T4_DATA = int(FieldType.T4_NON_ECM_SIG_END), int(FieldType.T4_NON_ECM_DATA)
# T.38 §7.1.1 (bit and octet transmission order): HDLC and T.4 octets in IFP data fields are
# carried with the first bit on the line in the most significant bit. xmfax's
# modem interface is LSB first, so every data octet is bit-reversed crossing here.
REVERSE = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


class Again:
    """A step that sends ``packet`` (an indicator just sent) again, as a repeat."""

    __slots__ = ("packet",)

    def __init__(self, packet):
        self.packet = packet


def with_repeats(cfg: T38Config, steps: deque, paced: bool) -> deque:
    """``steps`` with each indicator but the last step followed by its repeats: paced,
    ``end_repeat_ms`` apart, as many as fit before the next step (the signal's first
    data comes a training or preamble time later); unpaced, at once. The last step's
    repeats go after the transmission (``T38Terminal._run_tx``), not inside it."""
    cfg = cfg
    gap = cfg.end_repeat_ms / 1000 if paced else 0.0
    out: deque = deque()
    items = list(steps)
    for i, (t, pkt) in enumerate(items):
        out.append((t, pkt))
        if type(pkt) is not IndicatorPacket or i == len(items) - 1:
            continue
        nxt = items[i + 1][0]
        for k in range(1, cfg.end_repeats + 1):
            at = t + k * gap
            if paced and at >= nxt:
                break
            out.append((at, Again(pkt)))
    return out

def plan_hdlc(cfg: T38Config, cmd: M.SendHDLC, t: float, steps: deque, paced: bool) -> float:
    mod = cmd.modulation
    dt = DATA_TYPE[mod]
    if mod is Mod.V21:
        steps.append((t, IndicatorPacket(Indicator.V21_PREAMBLE)))
        lead = V21_PREAMBLE_MS
    else:
        ind = TRAINING[(mod, cmd.short_training)]
        steps.append((t, IndicatorPacket(ind)))
        lead = TRAINING_MS[ind] + HS_FLAGS_MS
    frames = [bytes(f).translate(REVERSE) for f in cmd.frames]
    room = data_room(cfg)
    if not paced:
        # a frame longer than the datagram allows (an ECM frame of 256 octets under
        # T38FaxMaxDatagram 176) goes as several hdlc-data fields, each in its own packet;
        # the last piece shares its packet with hdlc-fcs-OK (T.38 §7.4: a frame's data may
        # be split over any number of packets)
        for i, fr in enumerate(frames):
            end = FieldType.HDLC_FCS_OK_SIG_END if i == len(frames) - 1 else FieldType.HDLC_FCS_OK
            pieces = [fr[k:k + room] for k in range(0, len(fr), room)] or [b""]
            for piece in pieces[:-1]:
                steps.append((t, DataPacket(dt, (Field(FieldType.HDLC_DATA, piece),))))
            steps.append((t, DataPacket(dt, (Field(FieldType.HDLC_DATA, pieces[-1]), Field(end)))))
        if not frames:
            steps.append((t, DataPacket(dt, (Field(FieldType.HDLC_SIG_END),))))
        steps.append((t, IndicatorPacket(Indicator.NO_SIGNAL)))
        return t
    t += lead / 1000
    rate = mod.bit_rate / 8.0                     # octets per second
    chunk = min(paced_chunk(cfg, rate), room)
    v = cfg.version
    for i, fr in enumerate(frames):
        # paced data packets are planned as their IFP octets (many per call)
        for k in range(0, len(fr), chunk):
            piece = fr[k:k + chunk]
            t += len(piece) / rate
            steps.append((t, encode_one_field(dt, _HDLC_DATA, piece, v)))
        t += 3 / rate                              # FCS and a closing flag
        last = i == len(frames) - 1
        steps.append((t, encode_one_field(dt, _HDLC_SIG_END_FCS if last else _HDLC_FCS_OK, b"", v)))
    if not frames:
        steps.append((t, DataPacket(dt, (Field(FieldType.HDLC_SIG_END),))))
    steps.append((t, IndicatorPacket(Indicator.NO_SIGNAL)))
    return t

def plan_data(cfg: T38Config, cmd: M.SendData, t: float, steps: deque, paced: bool) -> float:
    cfg = cfg
    mod = cmd.modulation
    dt = DATA_TYPE[mod]
    data = bytes(cmd.data)
    ind = TRAINING[(mod, cmd.short_training)]
    is_tcf = not any(data[:64]) and data.count(0) == len(data)
    if is_tcf and cfg.rate_management == RATE_LOCAL_TCF:
        # T.38 §6.2.1 localTCF: TCF is not carried; the far end judges training locally
        return t
    if cfg.fill_bit_removal and not is_tcf:
        data = remove_fill_bits(data)
    data = data.translate(REVERSE)
    steps.append((t, IndicatorPacket(ind)))
    if not paced:
        # one field per max-size piece, the last with sig-end
        room = data_room(cfg)
        pieces = [data[k:k + room] for k in range(0, len(data), room)] or [b""]
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            ft = FieldType.T4_NON_ECM_SIG_END if last else FieldType.T4_NON_ECM_DATA
            steps.append((t, DataPacket(dt, (Field(ft, piece),))))
        steps.append((t, IndicatorPacket(Indicator.NO_SIGNAL)))
        return t
    t += TRAINING_MS[ind] / 1000
    rate = mod.bit_rate / 8.0
    chunk = min(paced_chunk(cfg, rate), data_room(cfg))
    n = len(data)
    period = chunk / rate
    v = cfg.version
    for k in range(0, n, chunk):
        t += period
        ft = _T4_LAST if k + chunk >= n else _T4_DATA
        steps.append((t, encode_one_field(dt, ft, data[k:k + chunk], v)))   # as IFP octets
    if not n:
        steps.append((t, DataPacket(dt, (Field(FieldType.T4_NON_ECM_SIG_END),))))
    steps.append((t, IndicatorPacket(Indicator.NO_SIGNAL)))
    return t

def data_room(cfg: T38Config) -> int:
    """Octets of data one packet may carry so that its datagram (UDPTL sequence and
    length octets, the IFP type and field headers) stays within T38FaxMaxDatagram."""
    return max(8, cfg.max_datagram - 16)

def paced_chunk(cfg: T38Config, rate: float) -> int:
    """Octets per paced data packet: ``chunk_ms`` of line, at most T38FaxMaxBuffer
    (the far end must be able to hold a whole packet while it plays it out)."""
    chunk = max(1, int(rate * cfg.chunk_ms / 1000))
    if cfg.max_buffer:
        chunk = min(chunk, cfg.max_buffer)
    return chunk
