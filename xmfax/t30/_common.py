"""Shared pieces of the session: timing constants, airtime estimates."""
from __future__ import annotations

from . import frames as F
from .modem import (SILENCE_MS, V21_PREAMBLE_MS, Command, Modulation, SendData, SendHDLC, SendSilence,
                    SendTone)

# from the timing model (modem.py)
GAP_MS = SILENCE_MS          # T.30 §5 Notes 3 and 4: 75 +-20 ms before signalling in another modulation
V21_PREAMBLE_S = V21_PREAMBLE_MS / 1000     # T.30 §5.3.1: 1 s of flags before the first V.21 frame
# a timer allowance, not a line time: above the model's longest training (V.17 long, 1393 ms)
HS_TRAINING_S = 1.5


def dcs_fields(d: F.DCS) -> dict:
    return {k: getattr(d, k) for k in ("modulation", "resolution", "compression", "width", "length",
                                       "min_scan_ms", "ecm", "ecm_frame_size", "receive")}


def airtime(cmds: list[Command]) -> float:
    """Seconds the line needs for ``cmds`` (an upper estimate, for response timers)."""
    s = 0.0
    for c in cmds:
        if isinstance(c, SendSilence):
            s += c.ms / 1000
        elif isinstance(c, SendTone):
            s += (c.ms or 3000) / 1000
        elif isinstance(c, SendHDLC):
            bits = sum((len(f) + 3) * 8 * 1.2 for f in c.frames)    # FCS, flags, stuffing
            pre = V21_PREAMBLE_S if c.modulation is Modulation.V21 else HS_TRAINING_S
            s += pre + bits / c.modulation.bit_rate
        elif isinstance(c, SendData):
            s += HS_TRAINING_S + len(c.data) * 8 / c.modulation.bit_rate
    return s

