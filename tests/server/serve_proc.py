"""Run `xmfax serve` as a real subprocess for tests (owner: H7 service).

    with Serve(tmp_path, "--http", "127.0.0.1:0") as node:
        node.url            # "http://127.0.0.1:PORT" from the ready line
        node.ready_line     # the whole line
    node.proc.returncode    # after the block (SIGTERM sent, waited)

`Serve.start()` waits for the ready line (or the process's end: then `.returncode`,
`.stderr` say why). `kill9()` for the crash tests.
"""
from __future__ import annotations

import os
import re
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

READY = re.compile(r"^serve: ready on (https?://\S+) \(node (\S+), db (sqlite|postgresql)\)(.*)$")


class Serve:
    def __init__(self, cwd: Path, *args: str, env: dict | None = None, timeout: float = 30.0):
        self.cwd = Path(cwd)
        self.args = [sys.executable, "-m", "xmfax", "serve", *args]
        self.env = {**os.environ, "PYTHONFAULTHANDLER": "1", **(env or {})}   # SIGABRT dumps the stacks
        self.timeout = timeout
        self.proc: subprocess.Popen | None = None
        self.ready_line = ""
        self.url = ""
        self.node = ""
        self.db = ""
        self.extra = ""
        self.stderr = ""
        self.returncode: int | None = None

    def start(self) -> "Serve":
        self.proc = subprocess.Popen(self.args, cwd=self.cwd, env=self.env, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if sel.select(timeout=0.2):
                line = self.proc.stdout.readline()
                if not line:                                   # stdout closed: the process is ending
                    try:
                        self.proc.wait(max(1.0, deadline - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
                    break
                m = READY.match(line.rstrip("\n"))
                if m:
                    self.ready_line = line.rstrip("\n")
                    self.url, self.node, self.db, self.extra = m.group(1), m.group(2), m.group(3), m.group(4)
                    return self
            elif self.proc.poll() is not None:
                break
        if self.proc.poll() is None:                # hung: the stacks (faulthandler) say where
            self.proc.send_signal(signal.SIGABRT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.stderr = self.proc.stderr.read()
            raise TimeoutError(f"no ready line within {self.timeout} s: {self.stderr[-6000:]}")
        self.returncode = self.proc.wait()
        self.stderr = self.proc.stderr.read()
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.proc is None:
            return -1
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        if not self.stderr:
            self.stderr = self.proc.stderr.read()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return self.returncode

    def kill9(self) -> int:
        return self.stop(signal.SIGKILL)

    def __enter__(self) -> "Serve":
        self.start()
        if not self.url:
            raise RuntimeError(f"xmfax serve did not start (exit {self.returncode}): {self.stderr[-6000:]}")
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def xmfax(*args: str, cwd: Path | None = None, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run an `xmfax` subcommand to its end (text output)."""
    return subprocess.run([sys.executable, "-m", "xmfax", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
