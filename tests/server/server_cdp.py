"""A small Chrome DevTools Protocol client driving Debian's headless chromium (owner: H7).

    with Browser() as b:
        b.goto("http://127.0.0.1:8080/login")
        b.type("#token", token); b.click("#login-button", wait_load=True)
        b.screenshot(path)

Clicks are real input events (Input.dispatchMouseEvent at the element's centre), typing is
Input.insertText into the focused element, so the page is used as a person uses it.
"""
from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from websockets.sync.client import connect

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(Exception):
    pass


class Browser:
    def __init__(self, width: int = 1280, height: int = 900, timeout: float = 20.0):
        self.width, self.height, self.timeout = width, height, timeout
        self.proc: subprocess.Popen | None = None
        self.ws = None
        self.ids = itertools.count(1)
        self.events: list[dict] = []
        self.profile = tempfile.TemporaryDirectory(prefix="xmfax-chromium-", ignore_cleanup_errors=True)

    # --- life ---------------------------------------------------------------------------
    def __enter__(self) -> "Browser":
        if not CHROMIUM:
            raise BrowserError("chromium is not installed")
        self.proc = subprocess.Popen(
            [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--remote-debugging-port=0", f"--user-data-dir={self.profile.name}",
             f"--window-size={self.width},{self.height}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise BrowserError(f"chromium did not start: {self.proc.stderr.read()[-1500:] if self.proc.poll() is not None else 'timeout'}")
            time.sleep(0.05)
        port = int(port_file.read_text().splitlines()[0])
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.loads(r.read()) if t.get("type") == "page"]
        if not pages:
            raise BrowserError("chromium has no page target")
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=64 * 1024 * 1024, open_timeout=10).__enter__()
        self.call("Page.enable")
        self.call("Runtime.enable")
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.ws is not None:
                self.ws.close()
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
            if self.proc is not None and self.proc.stderr:
                self.proc.stderr.close()
            self.profile.cleanup()

    # --- protocol -------------------------------------------------------------------------
    def call(self, method: str, **params) -> dict:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"{method}: no answer in {self.timeout} s")
            msg = json.loads(self.ws.recv(timeout=left))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, name: str, since: int) -> dict:
        """The first event `name` after self.events[since:] (waiting for it)."""
        deadline = time.monotonic() + self.timeout
        while True:
            for ev in self.events[since:]:
                if ev["method"] == name:
                    return ev
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no {name} in {self.timeout} s")
            msg = json.loads(self.ws.recv(timeout=left))
            if "method" in msg:
                self.events.append(msg)

    # --- what a person does -------------------------------------------------------------------
    def goto(self, url: str) -> None:
        mark = len(self.events)
        result = self.call("Page.navigate", url=url)
        if result.get("errorText"):
            raise BrowserError(f"{url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", mark)

    def js(self, expression: str):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise BrowserError(f"{expression}: {r['exceptionDetails'].get('text')} "
                               f"{r['exceptionDetails'].get('exception', {}).get('description', '')}")
        return r["result"].get("value")

    def centre(self, selector: str) -> tuple[float, float]:
        box = self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)});
            if (!e) return null; e.scrollIntoView({{block: "center"}});
            const r = e.getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; }})()""")
        if box is None:
            raise BrowserError(f"no element {selector!r} on {self.url()}")
        return box[0], box[1]

    def click(self, selector: str, *, wait_load: bool = False) -> None:
        """A real mouse click; with wait_load, until the page it leads to has loaded
        (a marker set on this document is gone and the new one is complete)."""
        x, y = self.centre(selector)
        if wait_load:
            self.js("window.__xmfax_old_page = true")
        for kind in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)
        if wait_load:
            self.wait_new_page()

    def wait_new_page(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            try:
                if self.js("!window.__xmfax_old_page && document.readyState === 'complete'"):
                    return
            except BrowserError:            # the context went away mid-navigation: look again
                pass
            time.sleep(0.05)
        raise BrowserError(f"no new page loaded in {self.timeout} s (at {self.url()})")

    def type(self, selector: str, text: str) -> None:
        self.click(selector)
        self.js(f"document.querySelector({json.dumps(selector)}).select && "
                f"document.querySelector({json.dumps(selector)}).select()")
        self.call("Input.insertText", text=text)

    def select(self, selector: str, value: str) -> None:
        """Choose an <option> (a native dropdown cannot be clicked headless)."""
        self.js(f"""(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};
            e.dispatchEvent(new Event("change", {{bubbles: true}})); }})()""")

    def text(self, selector: str = "body") -> str:
        return self.js(f"(document.querySelector({json.dumps(selector)}) || {{}}).innerText || ''")

    def cookies(self) -> dict[str, str]:
        """The browser's cookies (HttpOnly ones too: the protocol sees what scripts cannot)."""
        return {c["name"]: c["value"] for c in self.call("Network.getAllCookies")["cookies"]}

    def url(self) -> str:
        return self.js("location.href")

    def screenshot(self, path: Path, full_page: bool = True) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        data = base64.b64decode(self.call("Page.captureScreenshot", **params)["data"])
        Path(path).write_bytes(data)
        return Path(path)
