"""Shared pieces of the end-to-end API tests: documents to send and a receiver/sender pair
joined over T.38/UDPTL on 127.0.0.1 (unpaced: ``realtime=False``)."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xmfax import api
from xmfax.document import load, save
from xmfax.page import Page, Resolution

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
RX_ID = "+1 555 0199"
TX_ID = "+1 555 0100"


def text_page(number: int, lines: int = 12) -> Page:
    """A fine-resolution A4 page with some lines of text and a frame: small to send,
    but with enough structure that a lost or shifted row shows in a pixel compare."""
    img = Image.new("1", (1728, 2200), 1)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 36) if os.path.exists(FONT) else ImageFont.load_default()
    draw.rectangle((60, 60, 1668, 2140), outline=0, width=4)
    for i in range(lines):
        draw.text((120, 140 + 60 * i), f"page {number} line {i + 1}: xmfax end-to-end 0123456789", fill=0, font=font)
    draw.ellipse((700, 1500, 1000, 1800), outline=0, width=6)
    return Page(~np.asarray(img, dtype=bool), Resolution.FINE)


def make_pdf(path: Path, count: int = 2) -> list[Page]:
    """Write a ``count``-page PDF; return the pages xmfax will send for it (as loaded back)."""
    save([text_page(i + 1) for i in range(count)], path)
    return load(path)


async def start_receiver(**kwargs) -> tuple[api.Receiver, asyncio.Task, str]:
    """A receiver on a free port of 127.0.0.1; its task and the URL to send to."""
    kwargs.setdefault("local_id", RX_ID)
    kwargs.setdefault("realtime", False)
    receiver = api.receive(via="t38://127.0.0.1:0", **kwargs)
    task = asyncio.create_task(receiver.run())
    host, port = await asyncio.wait_for(receiver.ready(), 10)
    return receiver, task, f"t38://{host}:{port}?local=127.0.0.1:0"


async def fax(documents, receiver_kwargs: dict | None = None, **send_kwargs):
    """One call, sender to a fresh receiver (``once``); (sender's result, receiver's result, receiver)."""
    receiver_kwargs = dict(receiver_kwargs or {})
    receiver_kwargs.setdefault("once", True)
    receiver, task, url = await start_receiver(**receiver_kwargs)
    send_kwargs.setdefault("local_id", TX_ID)
    send_kwargs.setdefault("realtime", False)
    sent = await api.send(documents, via=url, **send_kwargs)
    results = await asyncio.wait_for(task, 60)
    return sent, (results[0] if results else None), receiver


def frames(record: dict, direction: str | None = None) -> list[str]:
    """Names of the T.30 frames in a record's events (``"out"``/``"in"`` or both), in order."""
    return [e["frame"] for e in record["events"] if "frame" in e and direction in (None, e["dir"])]


def leftovers(folder: Path) -> list[str]:
    """Files a crashed or unfinished write would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.suffix in (".part", ".tmp") or ".part" in p.name)
