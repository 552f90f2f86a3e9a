"""The fax record: what a fax service keeps of every call.

:class:`FaxResult` is built from a finished T.30 session (:class:`xmfax.t30.T30Result`
and its events) plus what the transport knows (ANI/DNIS, address, wall-clock times).
It serialises to JSON: the fax record and call detail record a portal stores, and
the input of ``xmfax ladder``.

``status`` is ``"success"`` or ``"failure"``; ``reason`` is a stable lower-case code:
one of the T.30 reasons (:class:`xmfax.t30.result.Reason`, e.g. ``training_failed``)
or a call-level one from :data:`CALL_REASONS` (e.g. ``rejected``, ``busy``).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

# Reasons decided outside T.30: by the caller's hooks or by the line itself.
CALL_REASONS: dict[str, str] = {
    "ok": "the call completed normally",
    "rejected": "the call was rejected by the on_call hook",
    "busy": "the called number was busy",
    "no_answer": "the called number did not answer",
    "no_dialtone": "no dial tone (or the line is not available)",
    "no_carrier": "the call connected but no fax answered",
    "driver_error": "the transport failed (serial port, socket, modem)",
    "bad_document": "a document could not be read or converted to fax pages",
    "timeout": "the call took longer than its overall time limit",
    "cancelled": "the call was cancelled by the application",
    # SIP (the user agent's CallEnded reasons, and the driver's own)
    "declined": "the called party declined the call (SIP 603)",
    "not_found": "the called number does not exist (SIP 404/604)",
    "unavailable": "the far end is temporarily unavailable (SIP 503)",
    "auth_failed": "SIP authentication failed (401/407 with our credentials, or none configured)",
    "not_acceptable": "the far end accepted none of the media offered (SIP 488/606)",
    "redirected": "the call was redirected too often, or without a new address (SIP 3xx)",
    "server_error": "the far end failed (SIP 5xx)",
    "no_ack": "the caller never acknowledged our answer (no ACK)",
    "t38_refused": "the call could not switch to T.38 (and the SIP audio fallback was off)",
}


@dataclass
class PageDetail:
    """One page of a fax, sent or received."""

    number: int
    rows: int = 0
    bad_rows: int = 0
    max_consecutive_bad_rows: int = 0
    coding: str = ""
    resolution: str = ""
    width: int = 0
    rate: int = 0
    response: str = ""
    ecm: bool = False
    ecm_retransmitted_frames: int = 0


@dataclass
class FaxResult:
    """The outcome of one fax call, with everything a fax record needs."""

    direction: str                       # "send" | "receive" (| "poll")
    status: str                          # "success" | "failure"
    reason: str                          # stable code, see module doc
    reason_text: str = ""
    pages: list[PageDetail] = field(default_factory=list)
    local_id: str = ""
    remote_id: str = ""
    nsf: str | None = None               # remote NSF FIF, hex
    rate: int = 0                        # bit/s of the last page
    modulation: str = ""
    compression: str = ""
    resolution: str = ""
    ecm: bool = False
    transport: str = ""                  # "t38" | "class1" | ...
    address: str = ""                    # the `via` the call went through
    ani: str | None = None               # calling number, where the transport knows it
    dnis: str | None = None              # called number, where the transport knows it
    started_at: str = ""                 # ISO 8601, UTC
    ended_at: str = ""
    duration: float = 0.0                # seconds
    files: list[str] = field(default_factory=list)   # documents written (receive)
    # SIP calls: {"call_id", "ani", "dnis", "final_status", "transport", "remote_media",
    # "media": "t38" | "audio" | "audio>t38" (begun over G.711, switched to T.38 mid-fax),
    # "t38": the agreed T.38 parameters, "t38_switch": {"by": "local"|"remote"|"offer", "t": s},
    # "audio": {"codec", "payload_type"}, "audio_fallback": why the fax went over audio}
    sip: dict | None = None
    events: list[dict] = field(default_factory=list)  # the per-fax event log

    @property
    def ok(self) -> bool:
        return self.status == "success"

    @property
    def page_count(self) -> int:
        return len(self.pages)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "FaxResult":
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in data.items() if k in names}
        kwargs["pages"] = [PageDetail(**{k: v for k, v in p.items()
                                         if k in PageDetail.__dataclass_fields__})
                           for p in data.get("pages", [])]
        return cls(**kwargs)

    @classmethod
    def from_json(cls, text: str) -> "FaxResult":
        return cls.from_dict(json.loads(text))

    def summary(self) -> str:
        """One line for a terminal or a log."""
        if self.ok:
            ecm = "ECM" if self.ecm else "no ECM"
            return (f"{self.direction}: success, {self.page_count} page(s), {self.modulation or '-'}, "
                    f"{self.compression or '-'}, {self.resolution or '-'}, {ecm}, "
                    f"remote {self.remote_id!r}, {self.duration:.1f} s")
        return f"{self.direction}: failure ({self.reason}): {self.reason_text}"


def utc_iso(ts: float | None) -> str:
    """A POSIX timestamp as ISO 8601 UTC (empty for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds")


def event_to_dict(event: Any, t0: float = 0.0) -> dict[str, Any]:
    """A T.30 (or API) event as a JSON-ready dict; ``t`` is seconds since ``t0``.

    Frames carry their direction (``"out"`` sent by us, ``"in"`` received), name,
    decoded text and octets in hex; pages carry their statistics but not pixels.
    """
    kind = type(event).__name__
    out: dict[str, Any] = {"t": round(float(getattr(event, "time", t0)) - t0, 4), "type": kind}
    frame = getattr(event, "frame", None)
    if frame is not None:
        out["dir"] = "out" if kind == "FrameSent" else "in"
        out["frame"] = frame.name
        out["text"] = getattr(event, "text", "") or str(frame)
        out["hex"] = frame.encode().hex(" ")
        return out
    if dataclasses.is_dataclass(event):
        for f in dataclasses.fields(event):
            if f.name in ("time", "page"):
                continue
            value = getattr(event, f.name)
            if isinstance(value, bytes):
                value = value.hex(" ")
            elif not isinstance(value, (str, int, float, bool, type(None), list, dict)):
                value = str(value)
            out[f.name] = value
    return out


def sip_message_to_dict(event: Any, t0: float = 0.0) -> dict[str, Any]:
    """A SIP message (xmfax.sip.events.SipMessage: its first line, never credentials) as
    an event of the log, on the same clock as the T.30 frames."""
    return {"t": round(float(event.time) - t0, 4), "type": "SipMessage", "dir": event.direction,
            "summary": event.summary}


def merge_events(*logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Event logs on one clock merged by time (ties keep the order of ``logs``)."""
    merged = [e for log in logs for e in log]
    merged.sort(key=lambda e: e.get("t", 0.0))
    return merged


def from_t30(result: Any, events: list[Any], *, direction: str, t0: float = 0.0,
             local_id: str = "", transport: str = "", address: str = "",
             wall_start: float | None = None, wall_end: float | None = None,
             ani: str | None = None, dnis: str | None = None,
             files: list[str] | None = None) -> FaxResult:
    """Build the record of a finished call from a :class:`T30Result` and its events."""
    reason = result.reason
    stats = result.pages_received if direction == "receive" else result.pages_sent
    pages = [PageDetail(**{f.name: getattr(p, f.name) for f in dataclasses.fields(PageDetail)
                           if hasattr(p, f.name)}) for p in stats]
    if direction == "send":
        pages = [p for p in pages if p.response in ("MCF", "RTP", "PIP", "")]
    last = pages[-1] if pages else None
    return FaxResult(
        direction=direction,
        status=result.status if result.status in ("success", "failure") else "failure",
        reason=reason.name.lower() if reason is not None else "timeout",
        reason_text=result.text,
        pages=pages,
        local_id=local_id,
        remote_id=result.remote_id,
        nsf=result.remote_nsf.hex() if result.remote_nsf else None,
        rate=last.rate if last else 0,
        modulation=result.modulation,
        compression=result.compression,
        resolution=result.resolution,
        ecm=bool(result.ecm),
        transport=transport,
        address=address,
        ani=ani,
        dnis=dnis,
        started_at=utc_iso(wall_start),
        ended_at=utc_iso(wall_end),
        duration=round(result.duration, 3),
        files=list(files or []),
        events=[event_to_dict(e, t0) for e in events],
    )


def call_failure(direction: str, reason: str, detail: str = "", **kwargs: Any) -> FaxResult:
    """The record of a call that ended before T.30 could say anything (busy, rejected ...)."""
    text = CALL_REASONS.get(reason)
    if text is None:                      # a T.30 reason decided before T.30 ran (e.g. storage)
        from .t30.result import Reason

        named = Reason.__members__.get(reason.upper())
        text = named.text if named is not None else reason
    return FaxResult(direction=direction, status="failure", reason=reason,
                     reason_text=text + (f" ({detail})" if detail else ""), **kwargs)
