"""The xmfax command as a user runs it: subprocesses of ``python -m xmfax`` faxing each other
over T.38 on 127.0.0.1, exit statuses, JSON output, ladders, the demo, --help."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from xmfax.document import load, save
from xmfax.page import Page, Resolution

XMFAX = [sys.executable, "-m", "xmfax"]


def xmfax(*args: str, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*XMFAX, *args], capture_output=True, text=True, timeout=timeout, **kwargs)


class Receiving:
    """``xmfax receive`` in the background: its output read as it comes (two threads, so
    a long JSON record never fills a pipe), and :meth:`ready` waits for its ready line."""

    def __init__(self, *args: str):
        self.proc = subprocess.Popen([*XMFAX, "receive", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self._ready = threading.Event()
        self._readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
                         threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True)]
        for t in self._readers:
            t.start()

    def _read(self, stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)
            if line.startswith("receive: ready on "):
                self._ready.set()

    def ready(self, limit: float = 30.0) -> str:
        """The ready line's URL (fails if the receiver exits first or is not ready in time)."""
        deadline = time.monotonic() + limit        # a bound on waiting, not a timing assertion
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.finish(5)
                raise AssertionError(f"no ready line: exit {self.proc.returncode}, stderr {''.join(self.err)!r}")
        (line,) = [ln for ln in self.err if ln.startswith("receive: ready on ")]
        return line.split(" on ", 1)[1].strip()

    def finish(self, timeout: float = 60) -> subprocess.CompletedProcess:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        for t in self._readers:
            t.join(10)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode, "".join(self.out), "".join(self.err))


@pytest.fixture
def letter(tmp_path) -> tuple[Path, list[Page]]:
    img = Image.new("1", (1728, 2200), 1)
    draw = ImageDraw.Draw(img)
    for i in range(10):
        draw.text((100, 100 + 80 * i), f"line {i}: faxed by the xmfax command", fill=0)
    draw.rectangle((50, 50, 1678, 2150), outline=0, width=3)
    path = tmp_path / "letter.pdf"
    save([Page(~np.asarray(img, dtype=bool), Resolution.FINE)] * 2, path)
    return path, load(path)


def run_call(tmp_path: Path, document: Path, *send_args: str, receive_args: tuple[str, ...] = (),
             fast: bool = True):
    """``xmfax receive --once`` and ``xmfax send`` over T.38 on 127.0.0.1; both completed processes.
    The sender starts once the receiver has printed its ready line."""
    inbox = tmp_path / "inbox"
    pace = ("--fast",) if fast else ()
    rx = Receiving("--via", "t38://127.0.0.1:0", "-o", str(inbox), "--once", *pace, "--local-id", "+1 555 0199",
                   *receive_args)
    try:
        url = rx.ready()
        tx = xmfax("send", str(document), "--via", url, *pace, "--local-id", "+1 555 0100", *send_args)
    finally:
        done = rx.finish()
    return tx, done, inbox


def test_send_and_receive_json(tmp_path, letter):
    document, pages = letter
    tx, rx, inbox = run_call(tmp_path, document, "--json", receive_args=("--json", "--format", "both"))
    assert tx.returncode == 0, tx.stderr
    assert rx.returncode == 0, rx.stderr
    sent, got = json.loads(tx.stdout), json.loads(rx.stdout)
    assert (sent["direction"], sent["status"], sent["remote_id"]) == ("send", "success", "+1 555 0199")
    assert (got["direction"], got["status"], got["remote_id"]) == ("receive", "success", "+1 555 0100")
    assert len(sent["pages"]) == len(got["pages"]) == 2
    tif, pdf = got["files"]
    for path in (tif, pdf):
        received = load(path)
        assert len(received) == 2 and all(np.array_equal(a.image, b.image) for a, b in zip(pages, received))
    record = Path(tif).with_suffix(".json")
    assert json.loads(record.read_text()) == got
    assert sorted(p.name for p in inbox.iterdir()) == sorted(Path(f).name for f in (tif, pdf, record))


def test_send_and_receive_plain_output_and_ladder(tmp_path, letter):
    document, _ = letter
    tx, rx, inbox = run_call(tmp_path, document, "--ladder", str(tmp_path / "call.svg"))
    assert tx.returncode == 0 and rx.returncode == 0, (tx.stderr, rx.stderr)
    assert tx.stdout.startswith("send: success, 2 page(s),") and "remote '+1 555 0199'" in tx.stdout
    assert rx.stdout.startswith("receive: success, 2 page(s),")
    (tif,) = inbox.glob("*.tif")
    assert f"  {tif}" in rx.stdout.splitlines()
    # progress goes to stderr, one line per step
    assert "send: page 1 sent (MCF)" in tx.stderr and "send: call ended: success" in tx.stderr
    assert "receive: page 2 received" in rx.stderr and "receive: page 2 stored (MCF)" in rx.stderr
    svg = (tmp_path / "call.svg").read_text()
    assert svg.startswith("<svg") or svg.startswith("<?xml")
    assert "DCS" in svg and "MCF" in svg


def test_ladder_of_a_record(tmp_path, letter):
    document, _ = letter
    tx, rx, inbox = run_call(tmp_path, document, "-q")
    assert tx.returncode == 0 and tx.stdout == ""
    (record,) = inbox.glob("*.json")
    out = xmfax("ladder", str(record), "--width", "90")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("ladder: receive, success, 2 page(s)")
    arrows = [ln for ln in lines if "|" in ln and ("-" in ln or "=" in ln)]
    assert "CSI '+1 555 0199'" in arrows[0] and "-->|" in arrows[0]          # we sent it
    assert "TSI '+1 555 0100'" in arrows[2] and "|<--" in arrows[2]          # they sent it
    assert any("page 1" in ln for ln in arrows) and "DCN" in arrows[-1]
    assert max(len(ln) for ln in lines) <= 90
    svg, html = tmp_path / "l.svg", tmp_path / "l.html"
    out = xmfax("ladder", str(record), "--svg", str(svg), "--html", str(html))
    assert out.returncode == 0 and out.stdout == ""
    assert "</svg>" in svg.read_text() and "<svg" in html.read_text() and "<html" in html.read_text().lower()


def test_exit_codes(tmp_path, letter):
    document, _ = letter
    # 1: the fax was not delivered (here the socket cannot even open)
    out = xmfax("send", str(document), "--via", "t38://127.0.0.1:9?local=203.0.113.1:0", "--fast")
    assert out.returncode == 1 and "failure (driver_error)" in out.stdout
    out = xmfax("send", str(document), "--via", "t38://127.0.0.1:9?local=203.0.113.1:0", "--fast", "--json")
    assert out.returncode == 1 and json.loads(out.stdout)["reason"] == "driver_error"
    # 2: usage
    assert xmfax().returncode == 2
    assert xmfax("send", str(document)).returncode == 2                      # no --via
    out = xmfax("send", str(document), "--via", "class1:/dev/null")          # class1 needs --to
    assert out.returncode == 2 and "--to" in out.stdout
    assert xmfax("send", str(document), "--via", "t38://x:1", "--max-rate", "1234").returncode == 2
    # 3: bad input
    out = xmfax("send", str(tmp_path / "missing.pdf"), "--via", "t38://127.0.0.1:9")
    assert out.returncode == 3 and "missing.pdf" in out.stderr
    (tmp_path / "junk.json").write_text("{not json")
    out = xmfax("ladder", str(tmp_path / "junk.json"))
    assert out.returncode == 3 and "not a readable JSON fax record" in out.stderr
    (tmp_path / "other.json").write_text('{"status": "success"}')
    assert xmfax("ladder", str(tmp_path / "other.json")).returncode == 3


def test_receive_on_a_busy_port_says_so(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        out = xmfax("receive", "--via", f"t38://127.0.0.1:{port}", "-o", str(tmp_path), "--once", "--fast",
                    timeout=60)
    assert out.returncode != 0
    assert f"cannot open UDP 127.0.0.1:{port}" in out.stderr and "Traceback" not in out.stderr


def test_demo_leaves_every_file(tmp_path):
    out = xmfax("demo", "--dir", str(tmp_path / "D"), cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    d = tmp_path / "D"
    received = json.loads((d / "received.json").read_text())
    sent = json.loads((d / "sent.json").read_text())
    assert received["status"] == sent["status"] == "success"
    assert len(received["pages"]) == len(sent["pages"]) == 3
    tifs, pdfs = list((d / "received").glob("*.tif")), list((d / "received").glob("*.pdf"))
    assert len(tifs) == len(pdfs) == 1 and (d / "received" / tifs[0].with_suffix(".json").name).exists()
    assert len(load(tifs[0])) == 3 and len(load(pdfs[0])) == 3
    assert (d / "sample.pdf").exists()
    assert "CSI" in (d / "ladder.txt").read_text() and "</svg>" in (d / "ladder.svg").read_text()
    assert "see the call: xmfax ladder" in out.stdout
    assert not [p for p in (d / "received").iterdir() if p.suffix in (".part", ".tmp")]


@pytest.mark.parametrize("command", ["", "demo", "send", "receive", "ladder", "convert", "info"])
def test_help_reads_well(command):
    out = xmfax(*([command] if command else []), "--help")
    assert out.returncode == 0 and out.stderr == ""
    text = out.stdout
    assert text.startswith("usage: xmfax")
    assert max(len(line) for line in text.splitlines()) <= 100
    if command in ("send", "receive"):
        assert "--via URL" in text and "t38://" in text and "Exit status" in text
    if not command:
        for sub in ("demo", "send", "receive", "ladder"):
            assert f"    {sub} " in text


def test_version():
    out = xmfax("--version")
    assert out.returncode == 0 and out.stdout.startswith("xmfax ")


# ------------------------------------------------------------------------- issue #10: storing, start-up, limits
def test_receive_output_that_is_a_file_fails_at_once(tmp_path):
    target = tmp_path / "inbox"
    target.write_text("not a folder")
    out = xmfax("receive", "--via", "t38://127.0.0.1:0", "-o", str(target), "--once", "--fast", timeout=60)
    assert out.returncode == 3, out.stderr
    assert f"xmfax receive: {target}: exists and is not a folder" in out.stderr
    assert "Traceback" not in out.stderr and "ready on" not in out.stderr
    assert target.read_text() == "not a folder"


def test_receive_output_on_a_read_only_file_system_fails_at_once(tmpfs):
    mount = tmpfs("64k", read_only=True)
    out = xmfax("receive", "--via", "t38://127.0.0.1:0", "-o", str(mount), "--once", "--fast", timeout=60)
    assert out.returncode == 3, out.stderr
    assert "cannot write in the output folder: Read-only file system" in out.stderr
    assert "Traceback" not in out.stderr and "ready on" not in out.stderr


def test_ready_line_even_when_quiet(tmp_path):
    rx = Receiving("--via", "t38://127.0.0.1:0", "-o", str(tmp_path), "--once", "--fast", "-q")
    try:
        url = rx.ready()
        assert url.startswith("t38://127.0.0.1:") and not url.endswith(":0")
    finally:
        rx.proc.terminate()
        done = rx.finish()
    assert done.stderr == f"receive: ready on {url}\n"


def test_max_duration_ends_both_sides(tmp_path, letter):
    """Real-time pacing makes the call take ~20 s a page: both ends give up after their limit."""
    document, _ = letter
    tx, rx, inbox = run_call(tmp_path, document, "--json", "--max-duration", "3",
                             receive_args=("--json", "--max-duration", "1.5"), fast=False)
    assert tx.returncode == 1 and rx.returncode == 1, (tx.stderr, rx.stderr)
    sent, got = json.loads(tx.stdout), json.loads(rx.stdout)
    assert (sent["status"], sent["reason"]) == ("failure", "timeout")
    assert (got["status"], got["reason"]) == ("failure", "timeout")
    assert "after 2 s" in got["reason_text"] or "after 1 s" in got["reason_text"]
    assert list(inbox.glob("*.json"))                          # the record is kept all the same


@pytest.mark.skipif(shutil.which("gs") is None, reason="ghostscript (gs) not installed: cannot make an encrypted PDF")
def test_send_an_encrypted_pdf_with_a_password(tmp_path, letter):
    document, pages = letter
    locked = tmp_path / "locked.pdf"
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pdfwrite", "-sOwnerPassword=owner",
                    "-sUserPassword=s3cret", f"-sOutputFile={locked}", str(document)], check=True, timeout=60)
    out = xmfax("send", str(locked), "--via", "t38://127.0.0.1:9", "--fast")
    assert out.returncode == 3 and "encrypted PDF" in out.stderr
    secret = tmp_path / "pw"
    secret.write_text("s3cret\n")
    tx, rx, inbox = run_call(tmp_path, locked, "--password-file", str(secret))
    assert tx.returncode == 0 and rx.returncode == 0, (tx.stdout, tx.stderr, rx.stderr)
    assert len(load(next(inbox.glob("*.tif")))) == 2
    # from the environment, and on the command line
    env = dict(os.environ, XMFAX_PDF_PASSWORD="s3cret")
    out = xmfax("send", str(locked), "--via", "t38://127.0.0.1:9?local=203.0.113.1:0", "--fast", env=env)
    assert out.returncode == 1 and "driver_error" in out.stdout          # loaded; only the line failed
    out = xmfax("send", str(locked), "--via", "t38://127.0.0.1:9?local=203.0.113.1:0", "--fast",
                "--password", "s3cret")
    assert out.returncode == 1 and "driver_error" in out.stdout
    out = xmfax("send", str(locked), "--via", "t38://127.0.0.1:9", "--password-file", str(tmp_path / "none"))
    assert out.returncode == 3 and "cannot read the password file" in out.stderr


def test_send_a_damaged_tiff_only_when_tolerant(tmp_path, letter):
    _, pages = letter
    tif = tmp_path / "damaged.tif"
    save(pages[:1], tif, codec="mmr")
    data = bytearray(tif.read_bytes())
    for i in range(len(data) // 3, len(data) // 3 + 8):       # inside the strip, which comes first
        data[i] ^= 0xA5
    tif.write_bytes(bytes(data))
    out = xmfax("send", str(tif), "--via", "t38://127.0.0.1:9", "--fast")
    assert out.returncode == 3 and "damaged" in out.stderr
    tx, rx, inbox = run_call(tmp_path, tif, "--tolerant")
    assert tx.returncode == 0 and rx.returncode == 0, (tx.stdout, tx.stderr)
