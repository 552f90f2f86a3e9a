"""Ladder diagrams of fax calls: T.30 frames between two stations, with times.
A SIP call's messages (INVITE, 200, the T.38 re-INVITE, BYE ...) are drawn on the same
time line, as ``~`` arrows labelled "SIP ...".

Fax engineers read calls this way: one vertical line per station, one arrow per
frame (and per page of image data), time running down. :func:`render_text` draws
it for a terminal, :func:`render_svg` as a standalone SVG, :func:`render_html` as
an HTML page around the SVG. The input is a fax record's event log (the
``events`` of :class:`xmfax.record.FaxResult`, or the JSON of one).
"""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, Iterable


@dataclass(frozen=True)
class Arrow:
    t: float
    outgoing: bool          # local -> remote
    label: str
    detail: str = ""
    kind: str = "frame"     # frame | page | bad | sip


def arrows(events: Iterable[dict[str, Any]]) -> list[Arrow]:
    """The arrows a ladder shows, from an event log."""
    out: list[Arrow] = []
    parts: dict[tuple, int] = {}        # ECM sends a page as several blocks (and repeats)
    for ev in events:
        kind = ev.get("type")
        if "frame" in ev and kind in ("FrameSent", "FrameReceived"):
            label = ev.get("text") or ev["frame"]
            out.append(Arrow(ev["t"], ev.get("dir") == "out", ev["frame"], label, "frame"))
        elif kind == "PageStarted":
            key = (ev.get("number"), bool(ev.get("sending")))
            parts[key] = parts.get(key, 0) + 1
            name = f"page {ev.get('number')}" + (f" (part {parts[key]})" if parts[key] > 1 else "")
            detail = f"{name}: {ev.get('coding', '')} {ev.get('resolution', '')} {ev.get('rate', '')} bit/s"
            out.append(Arrow(ev["t"], bool(ev.get("sending")), name, detail.strip(), "page"))
        elif kind == "BadFrame":
            out.append(Arrow(ev["t"], False, "bad frame", str(ev.get("reason", "")), "bad"))
        elif kind == "SipMessage":
            text = sip_label(str(ev.get("summary", "")))
            out.append(Arrow(ev["t"], ev.get("dir") == "out", text.split(" (")[0], text, "sip"))
    return out


def sip_label(summary: str) -> str:
    """A SIP message's first line as a ladder label: "SIP INVITE sip:+1555@h (SDP: audio)",
    "SIP 200 OK (SDP: t38)" (the version is left out)."""
    if summary.startswith("SIP/2.0 "):
        return "SIP " + summary[len("SIP/2.0 "):]
    return "SIP " + summary.replace(" SIP/2.0", "", 1)


def _title(record: dict[str, Any]) -> str:
    bits = [record.get("direction", ""), record.get("status", "")]
    if record.get("status") == "failure":
        bits.append(record.get("reason", ""))
    bits.append(f"{len(record.get('pages', []))} page(s)")
    if record.get("modulation"):
        bits.append(record["modulation"])
    bits.append("ECM" if record.get("ecm") else "no ECM")
    return ", ".join(b for b in bits if b)


def render_text(record: dict[str, Any], *, width: int = 72) -> str:
    """The ladder as plain text, ``width`` columns wide."""
    local = f"local {record.get('local_id') or ''}".strip()
    remote = f"remote {record.get('remote_id') or ''}".strip()
    span = max(width - 12, 30)          # columns between the two station lines
    lines = [f"ladder: {_title(record)}", "",
             f"{'time':>8}  {local[:span // 2]:<{span // 2}}{remote[:span - span // 2]:>{span - span // 2 + 2}}"]
    for a in arrows(record.get("events", [])):
        label = a.detail if len(a.detail) <= span - 8 else a.label
        label = f" {label[:span - 8]} "
        fill = {"page": "=", "sip": "~"}.get(a.kind, "-")
        room = span - len(label) - 1
        left, right = room // 2, room - room // 2
        body = (fill * left + label + fill * right + ">") if a.outgoing else ("<" + fill * left + label + fill * right)
        lines.append(f"{a.t:8.3f}  |{body}|")
    lines.append("")
    lines.append(f"{record.get('status', '?')}: {record.get('reason_text', '')}".rstrip(": "))
    return "\n".join(lines)


def render_svg(record: dict[str, Any]) -> str:
    """The ladder as a standalone SVG document."""
    items = arrows(record.get("events", []))
    w, top, step = 760, 70, 26
    x_local, x_remote = 170, 690
    h = top + step * (len(items) + 1) + 40
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'font-family="monospace" font-size="12">',
           '<defs><marker id="a" markerWidth="10" markerHeight="8" refX="9" refY="4" orient="auto">'
           '<path d="M0,0 L10,4 L0,8 z"/></marker></defs>',
           f'<rect width="{w}" height="{h}" fill="white"/>',
           f'<text x="10" y="20" font-size="14" font-weight="bold">{esc(_title(record))}</text>',
           f'<text x="{x_local}" y="50" text-anchor="middle">local {esc(record.get("local_id") or "")}</text>',
           f'<text x="{x_remote}" y="50" text-anchor="middle">remote {esc(record.get("remote_id") or "")}</text>',
           f'<line x1="{x_local}" y1="58" x2="{x_local}" y2="{h - 30}" stroke="black"/>',
           f'<line x1="{x_remote}" y1="58" x2="{x_remote}" y2="{h - 30}" stroke="black"/>']
    for i, a in enumerate(items):
        y = top + step * (i + 1)
        x1, x2 = (x_local, x_remote) if a.outgoing else (x_remote, x_local)
        colour = {"page": "#1f5fbf", "bad": "#c0392b", "sip": "#2e7d32"}.get(a.kind, "black")
        dash = {"page": ' stroke-dasharray="6,3"', "sip": ' stroke-dasharray="2,3"'}.get(a.kind, "")
        out.append(f'<text x="10" y="{y + 4}" fill="#555">{a.t:8.3f} s</text>')
        out.append(f'<line x1="{x1}" y1="{y}" x2="{x2}" y2="{y}" stroke="{colour}" '
                   f'stroke-width="1.5"{dash} marker-end="url(#a)"/>')
        out.append(f'<text x="{(x_local + x_remote) // 2}" y="{y - 5}" text-anchor="middle" '
                   f'fill="{colour}">{esc(a.detail or a.label)}</text>')
    out.append(f'<text x="10" y="{h - 10}">{esc(record.get("status", ""))}: '
               f'{esc(record.get("reason_text", ""))}</text>')
    out.append("</svg>")
    return "\n".join(out)


def render_html(record: dict[str, Any]) -> str:
    """An HTML page holding the SVG ladder."""
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>xmfax ladder</title></head>"
            f"<body>\n{render_svg(record)}\n</body></html>\n")
