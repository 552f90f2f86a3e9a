"""Interop: whole audio faxes between xmfax and spandsp's ``fax_state`` over REAL G.711 RTP
sockets on 127.0.0.1, and through SIP with sipp as spandsp's signalling (issue #12).

spandsp runs in its own process behind tests/interop/spandsp_rtp.py (the bridge): spandsp's
T.30, modems, tones and G.711; RTP framing and a plain fixed play-out buffer written there,
independent of xmfax.rtp. xmfax is the ``xmfax`` command, as a user runs it.

Four real-time calls (~15-20 s each), between them both directions and ECM on and off:
- ``xmfax send --via rtp://`` to spandsp receiving, ECM on, PCMA;
- spandsp sending to ``xmfax receive --via rtp://``, ECM off (PCMU) and ECM on (PCMA);
- ``xmfax send --via sip:...`` to sipp (a UAS that answers G.711 with the bridge's RTP port and
  488s the T.38 re-INVITE): xmfax falls back to audio, ECM off, and the page reaches spandsp.
Every page is compared pixel for pixel. Both play-out buffers are 120 ms deep: the two
processes share a loaded 2-core machine with other tests, and a 60 ms buffer saw the odd
late packet there (a stall of the sending process, not the network).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "audio"))
sys.path.insert(0, str(HERE.parent / "cli"))
sys.path.insert(0, str(HERE.parent / "sip"))
import spandsp_fax_audio as sf  # noqa: E402

pytestmark = pytest.mark.interop

if sf.load() is None:
    pytest.skip(f"spandsp is not available: {sf.unavailable_reason()}", allow_module_level=True)

from test_audio_calls import small_pages  # noqa: E402
from test_cli_calls import Receiving, xmfax  # noqa: E402

from xmfax.document import load, write_tiff  # noqa: E402

BRIDGE = HERE / "spandsp_rtp.py"
SCENARIO = HERE / "scenarios" / "uas_g711_488_spandsp.xml"
TX_ID, RX_ID = "+1 555 0100", "+1 555 0199"
SPANDSP_ID = "+1 555 0142"                  # the bridge's TSI/CSI
DEPTH_MS = 120


class BridgeProc:
    """tests/interop/spandsp_rtp.py in its own process; its stdout read by a thread."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, str(BRIDGE), "--depth", str(DEPTH_MS), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("bridge: ready on "):
                self._ready.set()

    def port(self, limit: float = 20.0) -> int:
        deadline = time.monotonic() + limit        # a bound on waiting, not a timing assertion
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.finish(5)
                raise AssertionError("bridge not ready: " + "".join(self.lines))
        line = next(ln for ln in self.lines if ln.startswith("bridge: ready on "))
        return int(line.rsplit(":", 1)[1])

    def finish(self, timeout: float = 60.0) -> dict:
        """spandsp's result (phase E code, t30 stats, play-out counts)."""
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self._reader.join(5)
        got = [ln for ln in self.lines if ln.startswith("bridge: result ")]
        assert got, "bridge gave no result: " + "".join(self.lines)
        return json.loads(got[-1].split(" ", 2)[2])


def document(tmp_path: Path, seed: int):
    pages = small_pages(1, rows=120, seed=seed)
    doc = tmp_path / "page.tif"
    write_tiff(pages, doc)
    return pages, doc


def same_pixels(sent, got) -> None:
    assert len(got) == len(sent)
    for i, (a, b) in enumerate(zip(sent, got), 1):
        assert b.image.shape == a.image.shape, f"page {i}"
        assert int(np.count_nonzero(a.image != b.image)) == 0, f"page {i}: pixels differ"


def spandsp_received(res: dict, *, ecm: bool) -> None:
    assert res["completion"] == sf.T30_ERR_OK, res
    st = res["stats"]
    assert st["pages_rx"] == 1 and st["bit_rate"] == 14400 and bool(st["error_correcting_mode"]) == ecm, st


def test_xmfax_sends_to_spandsp_over_rtp_ecm_pcma(tmp_path):
    pages, doc = document(tmp_path, 61)
    rx = tmp_path / "spandsp-rx.tif"
    bridge = BridgeProc("--rx", str(rx), "--law", "pcma", "--max-duration", "90")
    try:
        port = bridge.port()
        sent = xmfax("send", "--via", f"rtp://127.0.0.1:{port}?law=pcma&local=127.0.0.1:0&depth={DEPTH_MS}",
                     str(doc), "--local-id", TX_ID, "--json", "--max-duration", "80", timeout=100)
    finally:
        res = bridge.finish(30)
    assert sent.returncode == 0, sent.stdout[-3000:] + sent.stderr
    record = json.loads(sent.stdout)
    assert record["status"] == "success" and record["transport"] == "rtp"
    assert record["modulation"] == "V.17 14400" and record["ecm"] and record["remote_id"] == SPANDSP_ID
    spandsp_received(res, ecm=True)
    assert res["playout"]["received"] > 0 and res["playout"]["other"] == 0
    same_pixels(pages, load(str(rx)))


@pytest.mark.parametrize("ecm,law", [(False, "pcmu"), (True, "pcma")], ids=["ecm-off-pcmu", "ecm-on-pcma"])
def test_spandsp_sends_to_xmfax_receive_over_rtp(tmp_path, ecm, law):
    pages, doc = document(tmp_path, 62 + ecm)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rx = Receiving("--via", f"rtp://127.0.0.1:0?law={law}&depth={DEPTH_MS}", "-o", str(inbox), "--once",
                   "--local-id", RX_ID, "--json", "--max-duration", "80", *(() if ecm else ("--no-ecm",)))
    bridge = None
    try:
        where = rx.ready()
        port = int(where.split("?")[0].rsplit(":", 1)[1])
        bridge = BridgeProc("--tx", str(doc), "--remote", f"127.0.0.1:{port}", "--law", law,
                            *(() if ecm else ("--no-ecm",)), "--max-duration", "90")
        bridge.port()
        res = bridge.finish(100)
    finally:
        if bridge is not None and bridge.proc.poll() is None:
            bridge.proc.kill()
        got = rx.finish(30)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr
    assert res["completion"] == sf.T30_ERR_OK, res
    st = res["stats"]
    assert st["pages_tx"] == 1 and bool(st["error_correcting_mode"]) == ecm and st["bit_rate"] == 14400, st
    (tif,) = inbox.glob("*.tif")
    record = json.loads(tif.with_suffix(".json").read_text(encoding="utf-8"))
    assert record["status"] == "success" and record["transport"] == "rtp"
    assert record["remote_id"] == SPANDSP_ID and record["ecm"] == ecm and record["modulation"] == "V.17 14400"
    same_pixels(pages, load(str(tif)))


def test_sip_488_falls_back_to_audio_and_spandsp_gets_the_page(tmp_path):
    """``xmfax send --via sip:`` to sipp, whose 200 OK names the bridge's RTP port: xmfax
    re-INVITEs to T.38, sipp answers 488, the call stays up on G.711 (RFC 3261 §14.1) and the
    fax goes as audio (ECM off) to spandsp, which receives the page whole; then xmfax's BYE."""
    from peers import Sipp, require
    require("sipp")
    pages, doc = document(tmp_path, 64)
    rx = tmp_path / "spandsp-rx.tif"
    bridge = BridgeProc("--rx", str(rx), "--law", "pcmu", "--max-duration", "90")
    try:
        port = bridge.port()
        with Sipp(SCENARIO, tmp_path / "uas", params={"bye_wait": 60000}, timeout=90,
                  variables={"bridge_port": port}) as uas:
            sent = xmfax("send", "--via", f"sip:+15550142@127.0.0.1:{uas.port}", str(doc), "--no-ecm",
                         "--local-id", TX_ID, "--json", "--max-duration", "80", "--t38-switch-after", "0.3",
                         timeout=100)
            ladder = uas.wait(15)
    finally:
        res = bridge.finish(30)
    assert sent.returncode == 0, sent.stdout[-3000:] + sent.stderr
    assert ladder.ok, ladder.log()
    record = json.loads(sent.stdout)
    assert record["status"] == "success" and record["transport"] == "sip", record["reason"]
    assert record["sip"]["media"] == "audio", record["sip"]
    assert record["modulation"] == "V.17 14400" and not record["ecm"] and record["remote_id"] == SPANDSP_ID
    steps = [m.first_line.split(" ")[0] if m.method else str(m.status) for m in ladder.messages]
    assert steps == ["INVITE", "200", "ACK", "INVITE", "488", "ACK", "BYE", "200"], ladder.ladder()
    assert tuple(res["remote"]) != (None,) and res["playout"]["received"] > 0
    spandsp_received(res, ecm=False)
    same_pixels(pages, load(str(rx)))
