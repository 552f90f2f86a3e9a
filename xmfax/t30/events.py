"""Events a T.30 session reports (``session.events()``): small frozen dataclasses.

Every frame in and out is an event (FrameSent/FrameReceived), so a log, a ladder
diagram or a conformance runner sees the whole call.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..page import Page
from .frames import Frame


class Event:
    """Base class of every T.30 session event; ``time`` is the session clock."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class FrameSent(Event):
    time: float
    frame: Frame
    text: str              # decoded meaning, e.g. "DCS V.17 14400 mr fine a4 ..."


@dataclass(frozen=True, slots=True)
class FrameReceived(Event):
    time: float
    frame: Frame
    text: str


@dataclass(frozen=True, slots=True)
class BadFrame(Event):
    """A frame that could not be used (FCS error, not a T.30 frame, bad FIF)."""

    time: float
    data: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class PhaseChanged(Event):
    """T.30's phases (Figure 1/T.30): "A" call set-up, "B" pre-message, "C" message,
    "D" post-message, "E" release."""

    time: float
    phase: str
    state: str


@dataclass(frozen=True, slots=True)
class TrainingResult(Event):
    """A TCF sent (``ok`` is the far end's answer, CFR or FTT) or judged by us."""

    time: float
    modulation: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class PageStarted(Event):
    time: float
    number: int            # 1-based page number
    sending: bool
    coding: str
    resolution: str
    rate: int


@dataclass(frozen=True, slots=True)
class PageSent(Event):
    """A page the far end confirmed (MCF or RTP), or refused (``accepted`` False)."""

    time: float
    number: int
    response: str          # MCF, RTP, RTN, PIN, PIP
    accepted: bool


@dataclass(frozen=True, slots=True)
class PageReceived(Event):
    """A page received and kept, delivered as soon as it is complete."""

    time: float
    number: int
    page: Page
    rows: int
    bad_rows: int
    max_consecutive_bad_rows: int
    coding: str
    resolution: str
    rate: int
    response: str          # what we answered: MCF or RTP


@dataclass(frozen=True, slots=True)
class PageRejected(Event):
    """A page received but refused (RTN): the far end may send it again."""

    time: float
    number: int
    rows: int
    bad_rows: int
    reason: str


@dataclass(frozen=True, slots=True)
class CallEnded(Event):
    time: float
    status: str            # "success" | "failure"
    reason: str            # a Reason name
    text: str
