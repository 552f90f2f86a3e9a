"""Test helpers for notifications (owner: H5 notify).

- :class:`Hook`: a real HTTP server (http.server in a thread) answering scripted status
  codes and keeping every request (headers and exact body) - the webhook's far end.
- :class:`MiniService`: what a component needs of the Service (config, store, node, db,
  wake, wait) around a real Store, for tests that drive the Notifier pass by pass.
- :func:`fax_tiff` / :func:`make_fax`: a stored fax (real TIFF Class F pages, encrypted).
"""
from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from xmfax.server.config import ServerConfig


class Hook:
    """``Hook([500, 200])``: the first POST gets 500, the next 200, then the last repeats.
    ``hang=True``: accept the connection, read the request, never answer (until close)."""

    def __init__(self, codes=(200,), *, port: int = 0, hang: bool = False, headers: dict | None = None):
        self.codes = list(codes)
        self.requests: list[dict] = []
        self.hang = hang
        self.extra_headers = headers or {}
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.release = threading.Event()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):   # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with hook.lock:
                    hook.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                          "at": time.time()})
                    code = hook.codes[min(len(hook.requests), len(hook.codes)) - 1]
                    hook.arrived.notify_all()
                if hook.hang:
                    hook.release.wait(30)
                    return
                self.send_response(code)
                for k, v in hook.extra_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def wait(self, count: int = 1, timeout: float = 10.0) -> list[dict]:
        end = time.monotonic() + timeout
        with self.lock:
            while len(self.requests) < count:
                left = end - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self.requests)} of {count} webhook requests in {timeout} s")
                self.arrived.wait(left)
            return list(self.requests)

    def __enter__(self) -> "Hook":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def verify_signature(secret: bytes, request: dict, *, max_age: float = 300) -> bool:
    """What a webhook receiver does (the docs show the same): HMAC-SHA256 over
    ``timestamp + "." + body``, compared in constant time, and a fresh timestamp."""
    stamp = request["headers"]["X-XMFax-Timestamp"]
    given = request["headers"]["X-XMFax-Signature"]
    expected = "sha256=" + hmac.new(secret, stamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(given, expected) and abs(time.time() - int(stamp)) <= max_age


class MiniService:
    """The parts of Service the Notifier uses, over a real Store (wake/wait real events)."""

    def __init__(self, store, data_dir: Path, sections: dict | None = None, public_url: str = "",
                 node: str = "node-a"):
        self.config = ServerConfig(data_dir=data_dir, sections=sections or {}, public_url=public_url, node=node)
        self.store = store
        self.node = node
        self.woken: list[str] = []
        self._events: dict[str, asyncio.Event] = {}

    async def db(self, fn, *args, **kw):
        return await asyncio.to_thread(fn, *args, **kw)

    def _event(self, what: str) -> asyncio.Event:
        return self._events.setdefault(what, asyncio.Event())

    def wake(self, what: str) -> None:
        self.woken.append(what)
        self._event(what).set()

    async def wait(self, what: str, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self._event(what).wait(), timeout)
        except TimeoutError:
            return False
        self._event(what).clear()
        return True


def fax_pages(count: int = 2):
    from xmfax.document import load

    text = "\f".join(f"Page {i + 1} of {count}\nxmfax notification test\n" + "x" * (40 + i) for i in range(count))
    return load(text.encode(), resolution="fine")


def fax_tiff(count: int = 2) -> bytes:
    from xmfax.document import save

    out = io.BytesIO()
    save(fax_pages(count), out, "tiff", codec="mmr")
    return out.getvalue()


def make_fax(store, *, direction: str = "in", pages: int = 2, retention_days: int | None = None,
             remote_id: str = "+1 555 765 4321", image: bool = True, **fields) -> str:
    now = time.time()
    row = dict(status="received" if direction == "in" else "sent", number="+15551230000", ani="+15557654321",
               dnis="+15551230000", csid="+15551230000", remote_id=remote_id, pages=pages,
               retention_days=retention_days, completed_at=now)
    row.update(fields)
    fax_id = store.create_fax(direction=direction, **row)
    if image:
        store.put_file(fax_id, "tiff", fax_tiff(pages))
    return fax_id
