"""SIGTERM in the middle of a send: `xmfax serve` aborts the call after its grace time,
exits 0, and the fax is not lost - the next start sends it (owner: H7 service)."""
from __future__ import annotations

import io
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from serve_proc import Serve, xmfax

pytestmark = pytest.mark.interop


def _udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _receiver(port: int, out, *, paced: bool) -> subprocess.Popen:
    args = [sys.executable, "-m", "xmfax", "receive", "--via", f"t38://127.0.0.1:{port}", "-o", str(out), "-q"]
    proc = subprocess.Popen(args + ([] if paced else ["--fast"]), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if not line.startswith("receive: ready"):
        proc.kill()
        raise AssertionError(f"xmfax receive did not start: {line}{proc.communicate()[1][-2000:]}")
    return proc


def _end(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()


def _pdf(pages: int) -> bytes:
    from xmfax.document import load, save
    out = io.BytesIO()
    save(load("\f".join(["A page of the stop test.\n" * 40] * pages).encode()), out, "pdf")
    return out.getvalue()


def _status(url: str, token: str, fax_id: str) -> dict:
    r = httpx.get(f"{url}/restservice/transactions/{fax_id}",
                  headers={"XM-Token-Authorization": token, "Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["successInfo"]["transaction"]


def test_sigterm_mid_send_exits_0_and_the_fax_goes_out_after_restart(tmp_path):
    token = xmfax("token", "create", "--data", "data", "--name", "app", cwd=tmp_path).stdout.strip()
    slow_port, fast_port = _udp_port(), _udp_port()
    slow = _receiver(slow_port, tmp_path / "slow", paced=True)      # a paced call: seconds per page
    try:
        (tmp_path / "a.toml").write_text(
            f'[outbound]\nrealtime = true\nstop_grace = 0.5\nretry_delays = [0.5]\n'
            f'lines = ["t38://127.0.0.1:{slow_port}"]\n')
        node = Serve(tmp_path, "--data", "data", "--config", "a.toml", "--http", "127.0.0.1:0").start()
        assert node.url, node.stderr
        meta = (b'<?xml version="1.0"?><schedulefax><recipient><number>+15551234567</number>'
                b'</recipient></schedulefax>')
        r = httpx.post(node.url + "/restservice/sendfax", headers={"XM-Token-Authorization": token},
                       files=[("metadata", ("fax.xml", meta, "application/xml")),
                              ("attachments", ("doc.pdf", _pdf(3), "application/pdf"))], timeout=30)
        assert r.status_code == 200, r.text
        fax_id = r.json()["successInfo"]["transactionIds"]["transactionId"][0]
        deadline = time.monotonic() + 30
        while _status(node.url, token, fax_id)["status"] != "sending":
            assert time.monotonic() < deadline, "the fax never started sending"
            time.sleep(0.1)
        time.sleep(1.0)                                              # in the call now
        t0 = time.monotonic()
        assert node.stop(signal.SIGTERM, timeout=30) == 0, node.stderr
        took = time.monotonic() - t0
        assert "Traceback" not in node.stderr
    finally:
        _end(slow)
    assert took < 25, f"stopping took {took:.1f} s"
    # the next start sends it on another line (the first far end is gone)
    fast = _receiver(fast_port, tmp_path / "fast", paced=False)
    try:
        (tmp_path / "b.toml").write_text(
            f'[outbound]\nrealtime = false\nretry_delays = [0.5]\nlines = ["t38://127.0.0.1:{fast_port}"]\n')
        with Serve(tmp_path, "--data", "data", "--config", "b.toml", "--http", "127.0.0.1:0") as node2:
            deadline = time.monotonic() + 60
            while (t := _status(node2.url, token, fax_id))["status"] not in ("sent", "failed", "interrupted"):
                assert time.monotonic() < deadline, t
                time.sleep(0.2)
            assert t["status"] == "sent", t
            assert t["attempts"] >= 2 and t["pages"] == 3
            kinds = [e["kind"] for e in t["events"]["event"]]
            assert kinds.count("attempt") >= 2 and "sent" in kinds
            # the aborted first attempt is on record between the two attempts, with its reason
            events = t["events"]["event"]
            first, second = [i for i, e in enumerate(events) if e["kind"] == "attempt"][:2]
            between = events[first + 1:second]
            assert any(e["kind"] == "interrupted" and "stopped during attempt 1" in e["message"]
                       for e in between), between
        assert node2.returncode == 0, node2.stderr
    finally:
        _end(fast)
    assert list((tmp_path / "fast").glob("*.tif")), "the fax did not arrive after the restart"
