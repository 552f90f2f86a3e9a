"""A real `xmfax serve` node in the test process, for the REST API tests (owner: H2 rest).

    with LiveService(tmp_path, database=url, limits={...}, far_end=True) as node:
        node.url                 # "http://127.0.0.1:PORT/restservice"
        node.token("app")        # a new send_manage token (store.create_token through tokens.create)
        node.token("r", "read", owner="app")   # a read token seeing app's faxes
        node.call(coro)          # run a coroutine in the service's loop

The Service (xmfax.server.service) runs in its own thread's asyncio loop with every
component it has, its HTTP server on a free port of 127.0.0.1. With ``far_end`` a real
xmfax T.38 receiver (unpaced) listens on another port and is the outbound line, so
faxes are really sent; ``node.received`` lists the FaxResults it got.
"""
from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

WEBHOOK_SECRET_ENV = "XMFAX_TEST_WEBHOOK_SECRET"
os.environ.setdefault(WEBHOOK_SECRET_ENV, "test-webhook-secret")

SAMPLE_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<schedulefax>
  <recipient><number>+1 555 123 4567</number><name>Bob</name></recipient>
</schedulefax>
"""


#: the user docs whose REST API section holds the control file examples and the curl command
DOCS = [Path(__file__).resolve().parents[2] / "docs" / "server.md"]


def docs_text() -> str | None:
    """The first of DOCS that has a control file example, or None."""
    for path in DOCS:
        if path.exists() and "<schedulefax" in path.read_text():
            return path.read_text()
    return None


class LiveService:
    def __init__(self, tmp: Path, *, database: str = "", limits: dict | None = None, far_end: bool = False,
                 outbound: dict | None = None, inbound: dict | None = None, notify: dict | None = None,
                 sections: dict | None = None):
        self.tmp = Path(tmp)
        self.database = database
        self.limits = limits or {}
        self.far_end = far_end
        self.outbound = outbound or {}
        self.inbound = inbound
        self.notify = notify or {}
        self.sections = sections or {}
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.service = None
        self.receiver = None
        self.received: list = []
        self.url = ""

    def call(self, coro, timeout: float = 60):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        import xmfax
        from xmfax.server import config as C
        from xmfax.server.service import Service

        lines = ["t38://127.0.0.1:9"]                 # nothing answers there: faxes stay in retry
        if self.far_end:
            self.receiver = xmfax.receive(via="t38://127.0.0.1:0", realtime=False,
                                          output_dir=self.tmp / "far-end", on_done=self.received.append)
            (self.tmp / "far-end").mkdir(exist_ok=True)
            self._rx_task = asyncio.get_running_loop().create_task(self.receiver.run())
            host, port = await self.receiver.ready()
            lines = [f"t38://{host}:{port}"]
        raw = {"http": "127.0.0.1:0", "outbound": {"lines": lines, "realtime": False, **self.outbound},
               "limits": self.limits, "notify": {"webhook_secret_env": WEBHOOK_SECRET_ENV, **self.notify},
               **self.sections}
        if self.inbound is not None:
            raw["inbound"] = self.inbound
        if self.database:
            raw["database"] = self.database
        cfg = C.from_dict(raw)
        cfg.data_dir = self.tmp / "data"
        self.service = Service(cfg)
        await self.service.start()
        host, port = self.service.http_address
        self.url = f"http://{host}:{port}/restservice"

    def __enter__(self) -> "LiveService":
        self.thread.start()
        try:
            self.call(self._start())
        except BaseException:
            self.close()
            raise
        return self

    def token(self, name: str, permission: str = "send_manage", owner: str = "") -> str:
        from xmfax.server import tokens
        return tokens.create(self.service.store, name, permission, owner)

    async def _stop(self) -> None:
        if self.service is not None:
            await self.service.stop()
        if self.receiver is not None:
            self.receiver.stop()
            self._rx_task.cancel()
            try:
                await self._rx_task
            except BaseException:   # noqa: BLE001 - cancelled on purpose
                pass

    def close(self) -> None:
        try:
            self.call(self._stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def __exit__(self, *exc) -> None:
        self.close()
