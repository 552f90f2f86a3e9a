"""T.30: the fax session engine (sans-IO), its frames, negotiation and ECM.

    from xmfax.t30 import Session, T30Config
"""
from __future__ import annotations

from .config import CopyQuality, T30Config, TCFCheck, Timers
from .events import (BadFrame, CallEnded, Event, FrameReceived, FrameSent, PageReceived,
                     PageRejected, PageSent, PageStarted, PhaseChanged, TrainingResult)
from .result import PageStats, Reason, T30Result
from .session import Session
from .states import State

__all__ = [
    "Session", "T30Config", "Timers", "CopyQuality", "TCFCheck", "State",
    "T30Result", "PageStats", "Reason",
    "Event", "FrameSent", "FrameReceived", "BadFrame", "PhaseChanged", "TrainingResult",
    "PageStarted", "PageSent", "PageReceived", "PageRejected", "CallEnded",
]
