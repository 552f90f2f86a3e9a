"""Interop: xmfax against a second, independent SIP implementation, sippy (PyPI ``sippy``, the
RFC 3261 stack of the Sippy B2BUA; UDP only), driven by tests/sip/sippy_peer.py in its own
process, with spandsp's T.38 terminal on the T.38 port sippy puts in its SDP.

Both directions, T.38 offered directly and G.711 first with the switch to T.38 made by either
end; every fax is compared pixel for pixel. sippy's Contacts carry no transport parameter
(it mishandles an uppercase ``transport=UDP``, /work/shared/peers/README.md), and xmfax writes
none for UDP either.
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.interop

pytest.importorskip("sippy", reason="sippy is not installed (pip install -e .[test] brings it)")

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
sys.path.insert(0, str(HERE.parent / "api"))
sys.path.insert(0, str(HERE))
import peers  # noqa: E402
from peers_media import SpandspT38Endpoint  # noqa: E402

from xmfax import api  # noqa: E402

SIPPY_PEER = HERE.parent / "sip" / "sippy_peer.py"


class Sippy(peers.PeerProcess):
    """tests/sip/sippy_peer.py as a process; ``events()`` reads the JSON lines it printed."""

    name = "sippy"

    def __init__(self, workdir: Path, t38_port: int, *args: str, limit: float = 40.0) -> None:
        super().__init__(workdir)
        self.port = peers.free_udp_port()
        self.args = ["--listen", f"{peers.HOST}:{self.port}", "--t38-port", str(t38_port),
                     "--limit", f"{limit:g}", *args]

    def command(self) -> list[str]:
        return [sys.executable, str(SIPPY_PEER), *self.args]

    def start(self) -> "Sippy":
        super().start()
        peers.wait_listening(self.port, "udp", timeout=15, process=self)
        return self

    def events(self) -> list[dict]:
        out = []
        for line in self.stdout_path.read_text().splitlines():
            if line.startswith("{"):
                out.append(json.loads(line))
        return out

    def event(self, name: str) -> dict | None:
        return next((e for e in self.events() if e["event"] == name), None)


def page(n: int = 1):
    from faxkit import text_page
    return text_page(n, lines=5)


def write_tiff(p, path: Path) -> Path:
    from PIL import Image
    Image.fromarray(~p.image).convert("1").save(path, compression="group4", dpi=(204, 196))
    return path


def read_tiff(path: Path) -> np.ndarray:
    from PIL import Image
    with Image.open(path) as im:
        return ~np.array(im.convert("1"), dtype=bool)


def assert_same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.shape == b.shape
    assert int(np.count_nonzero(a != b)) == 0, "pixels differ"


@pytest.mark.parametrize("offer,switch_after,by", [("t38", None, "offer"), ("audio", 0.3, "local")],
                         ids=["t38-offered", "g711-then-our-reinvite"])
def test_xmfax_calls_sippy(tmp_path, offer, switch_after, by):
    sent = page()
    rx = tmp_path / "rx.tif"
    with SpandspT38Endpoint(calling=False, rx_tiff=str(rx)) as media, \
            Sippy(tmp_path / "sippy", media.port, "answer") as far:
        result = asyncio.run(asyncio.wait_for(api.send(
            [sent], via=f"sip:15550100@127.0.0.1:{far.port}", realtime=False, max_duration=60,
            sip={"offer": offer, "t38_switch_after": switch_after}), 90))
        assert media.wait(5) == 0
        far.wait_exit(10)
    assert result.ok, (result.reason, result.reason_text)
    assert_same(sent.image, read_tiff(rx))
    assert result.sip["t38_switch"]["by"] == by
    incoming = far.event("incoming")
    assert incoming["dnis"] == "15550100" and incoming["offer"] == [offer]
    if offer == "audio":
        assert far.event("update")["offer"] == ["t38"]
    assert far.event("disconnected")["origin"] == "caller"     # xmfax hung up after the fax


@pytest.mark.parametrize("offer,reinvite_after,xmfax_switch,by",
                         [("t38", None, None, "offer"), ("audio", None, 0.3, "local"),
                          ("audio", 0.2, None, "remote")],
                         ids=["t38-offered", "g711-then-xmfax-reinvites", "g711-then-sippy-reinvites"])
def test_sippy_calls_xmfax(tmp_path, offer, reinvite_after, xmfax_switch, by):
    sent = page(2)

    async def go(media):
        calls, pages = [], []
        receiver = api.receive(via="sip://127.0.0.1:0", once=True, realtime=False, local_id="+1 555 0100",
                               on_call=lambda call: calls.append(call) or api.Accept(),
                               on_page=lambda call, ev: pages.append(ev.page),
                               sip={"t38_switch_after": xmfax_switch})
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        args = ["call", f"sip:15550100@{host}:{port}", "--offer", offer]
        if reinvite_after:
            args += ["--reinvite-after", str(reinvite_after)]
        far = Sippy(tmp_path / "sippy", media.port, *args)
        try:
            await asyncio.to_thread(far.start)
            results = await asyncio.wait_for(task, 60)
            await asyncio.to_thread(far.wait_exit, 10)
        finally:
            receiver.stop()
            far.stop()
        return results, calls, pages, far

    with SpandspT38Endpoint(calling=True, tx_tiff=str(write_tiff(sent, tmp_path / "tx.tif"))) as media:
        results, calls, pages, far = asyncio.run(asyncio.wait_for(go(media), 90))
        assert media.wait(5) == 0
    assert len(results) == 1 and results[0].ok, (results[0].reason, results[0].reason_text)
    assert len(pages) == 1
    assert_same(sent.image, pages[0].image)
    assert calls[0].ani == "+15550177" and calls[0].dnis == "15550100"
    assert calls[0].info.get("offer") == [offer]
    assert results[0].sip["t38_switch"]["by"] == by
    if by == "local":
        assert far.event("update")["offer"] == ["t38"]
    assert far.event("disconnected") is not None
