"""Helpers for the outbound queue's tests (owner: H3): a service in this process, far ends
(real xmfax receivers over T.38 and SIP on 127.0.0.1) that record what reached them."""
from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import time
from datetime import datetime
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import xmfax
from xmfax.document import load, save
from xmfax.page import Page, Resolution
from xmfax.server import config as cfgmod
from xmfax.server.service import Service
from xmfax.server.submit import Document, Recipient, SendRequest, submit

FAST = {"realtime": False, "poll_interval": 0.2, "heartbeat": 0.5, "stale_after": 3.0, "stop_grace": 1.0,
        "retry_delays": [0.3, 0.6], "answer_timeout": 2.0, "sip": {"offer": "t38"}}


def text_page(number: int) -> Page:
    """A fine A4 page with a frame and a few lines of text (small to send; a shifted or
    lost row shows in a pixel compare)."""
    from PIL import Image, ImageDraw

    img = Image.new("1", (1728, 2200), 1)
    draw = ImageDraw.Draw(img)
    draw.rectangle((60, 120, 1668, 2140), outline=0, width=4)
    for i in range(4):
        draw.text((120, 200 + 60 * i), f"page {number} line {i + 1}: the quick brown fox", fill=0)
    return Page(~np.array(img, dtype=bool), Resolution.FINE)


def page_pdf(path: Path, count: int = 1) -> bytes:
    """A small PDF of ``count`` text pages."""
    save([text_page(i + 1) for i in range(count)], path)
    return path.read_bytes()


@contextlib.asynccontextmanager
async def running_service(data_dir: Path, database: str = "", lines=(), node: str | None = None, **outbound):
    """A Service (the real one: store, components) started in this loop, stopped after."""
    cfg = cfgmod.load(data=str(data_dir), http="127.0.0.1:0", database=database or None, node=node)
    cfg.sections["outbound"] = {**FAST, **outbound, "sip": {**FAST["sip"], **outbound.get("sip", {})},
                                "lines": list(lines)}
    svc = Service(cfg)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


async def send_request(svc: Service, numbers, pdf: bytes, *, copies: int = 1, **kw) -> tuple[str, list[str]]:
    """Submit ``copies`` attachments, each ``pdf`` named "letter.pdf", to ``numbers``."""
    docs = [Document("letter.pdf", pdf, "application/pdf") for _ in range(copies)]
    return await submit(svc, SendRequest([Recipient(n) for n in numbers], docs, **kw))


async def wait_final(svc: Service, ids, timeout: float = 30.0, statuses=("sent", "failed", "cancelled",
                                                                        "interrupted")) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        rows = [await svc.db(svc.store.get_fax, i) for i in ids]
        if all(r["status"] in statuses for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise AssertionError(f"not final after {timeout} s: {[(r['id'], r['status']) for r in rows]}")
        await asyncio.sleep(0.05)


def kinds(svc: Service, fax_id: str) -> list[str]:
    return [e["kind"] for e in svc.store.events(fax_id)]


def same_pixels(a: list[Page], b: list[Page]) -> None:
    assert len(a) == len(b), (len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b), 1):
        assert x.image.shape == y.image.shape, f"page {i}"
        assert int(np.count_nonzero(x.image != y.image)) == 0, f"page {i}: pixels differ"


@dataclass
class FarEnd:
    """An xmfax receiver on 127.0.0.1 recording every call it was offered (DNIS, time) and
    its results; ``most_at_once()`` from the results' own start and end times."""

    via: str
    receiver: xmfax.Receiver | None = None
    task: asyncio.Task | None = None
    port: int = 0
    calls: list[dict] = field(default_factory=list)

    async def start(self, **kwargs) -> "FarEnd":
        decide = kwargs.pop("decide", None)

        async def on_call(call):
            self.calls.append({"dnis": call.dnis, "at": time.time()})
            if decide is not None:
                answer = decide(call)
                return await answer if asyncio.iscoroutine(answer) else answer
            return True

        self.receiver = xmfax.receive(via=self.via, on_call=on_call, realtime=False, **kwargs)
        self.task = asyncio.get_running_loop().create_task(self.receiver.run())
        _, self.port = await asyncio.wait_for(self.receiver.ready(), 10)
        return self

    @property
    def results(self):
        return self.receiver.results

    def answered(self) -> list:
        return [r for r in self.results if r.reason != "rejected"]

    def most_at_once(self) -> int:
        """The most answered calls that overlapped, from the receiver's own records."""
        marks = []
        for r in self.answered():
            marks += [(datetime.fromisoformat(r.started_at).timestamp(), 1),
                      (datetime.fromisoformat(r.ended_at).timestamp(), -1)]
        most = now = 0
        for _, step in sorted(marks):        # an end before a start at the same instant
            now += step
            most = max(most, now)
        return most

    async def stop(self) -> None:
        self.receiver.stop()
        try:
            await asyncio.wait_for(asyncio.shield(self.task), 2)
        except asyncio.TimeoutError:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class FarProcess:
    """`xmfax receive --via sip://127.0.0.1:0 -o DIR --fast` as a process: a far end that can be
    SIGKILLed at the end of a test (calls a dead caller left open end with it, at once)."""

    def __init__(self, out: Path, *args: str):
        self.out = out
        self.args = [sys.executable, "-m", "xmfax", "receive", "--via", "sip://127.0.0.1:0", "-o", str(out),
                     "--fast", *args]
        self.proc: subprocess.Popen | None = None
        self.port = 0

    def start(self) -> "FarProcess":
        self.proc = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.proc.stderr:               # "receive: ready on sip://127.0.0.1:PORT"
            if line.startswith("receive: ready on "):
                self.port = int(line.rsplit(":", 1)[1].split(";")[0])
                return self
        raise RuntimeError(f"xmfax receive did not start (exit {self.proc.wait()})")

    def records(self) -> list[dict]:
        """The JSON records of the faxes it wrote (one per call that stored pages)."""
        return [json.loads(p.read_text()) for p in sorted(self.out.glob("*.json"))]

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if self.proc is not None:
            self.proc.stderr.close()


def received_pages(result) -> list[Page]:
    (tif,) = [f for f in result.files if f.endswith(".tif")]
    return load(tif)
