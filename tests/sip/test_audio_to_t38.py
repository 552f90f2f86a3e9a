"""A SIP call switched to T.38 during its audio fax: the fax goes on over T.38 with the same
T.30 session (drivers/sip.py continue_t38), over real sockets and real SIP on 127.0.0.1, in
real time. Both ends start the audio fax after ``audio_wait`` (1 s); then one end's user
agent re-INVITEs to T.38 (its ``t38_switch_after``, 4 s after the answer: the audio fax is
then in its phase B). The page must arrive pixel-identical and both records say the fax
began on audio and went on over T.38 (``sip["media"] == "audio>t38"``)."""
from __future__ import annotations

import asyncio
import os
import sys

import pytest

from xmfax import api
from xmfax.document import load

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "audio"))
from test_audio_calls import small_pages  # noqa: E402
from test_audio_fallback import same_pixels  # noqa: E402

TX_ID, RX_ID = "+1 555 0100", "+1 555 0199"
SWITCH_AFTER = 4.0


async def _call(tmp_path, pages, *, caller_switch, answerer_switch, ecm=True):
    receiver = api.receive(via="sip://127.0.0.1:0", once=True, output_dir=tmp_path, local_id=RX_ID,
                           sip={"t38_switch_after": answerer_switch, "audio_wait": 1.0})
    task = asyncio.create_task(receiver.run())
    host, port = await asyncio.wait_for(receiver.ready(), 10)
    try:
        sent = await api.send(pages, via=f"sip:+1555@{host}:{port}", local_id=TX_ID, max_duration=60,
                              ecm=ecm, sip={"t38_switch_after": caller_switch, "audio_wait": 1.0})
        results = await asyncio.wait_for(task, 20)
    finally:
        receiver.stop()
        task.cancel()
    return sent, results


def _check(sent, got, pages, switch_after: float, by_caller: str):
    assert sent.ok, sent.summary()
    assert got.ok, got.summary()
    assert sent.sip["call_id"] == got.sip["call_id"]
    for r in (sent, got):
        assert r.transport == "sip"
        assert r.sip["media"] == "audio>t38", r.sip
        assert r.sip["audio"]["codec"] == "PCMU"
        assert r.sip["audio_fallback"] == "no switch to T.38 within 1 s"
        assert r.sip["t38"] is not None and r.sip["t38"]["version"] in (0, 1, 2, 3)
        # switched well after the audio fax began (after audio_wait, at t38_switch_after)
        assert switch_after - 0.5 <= r.sip["t38_switch"]["t"] <= switch_after + 3.0, r.sip["t38_switch"]
        began = [e["t"] for e in r.events if e["type"] == "PhaseChanged" and e.get("phase") == "B"]
        assert began and began[0] < r.sip["t38_switch"]["t"] - 1.5      # the audio fax had begun
    by_answerer = "remote" if by_caller == "local" else "local"
    assert sent.sip["t38_switch"]["by"] == by_caller
    assert got.sip["t38_switch"]["by"] == by_answerer
    same_pixels(pages, load(got.files[0]))


def _frames_before(r, t: float) -> list[str]:
    return [e["frame"] for e in r.events if e["type"] in ("FrameSent", "FrameReceived") and e["t"] < t]


@pytest.mark.parametrize("switch_after, ecm", [(SWITCH_AFTER, True), (6.5, False)],
                         ids=["during-CED-ecm", "during-DIS-DCS-no-ecm"])
def test_answerer_switches_to_t38_during_the_audio_fax(tmp_path, switch_after, ecm):
    """A gateway's behaviour: the answering side re-INVITEs once it has heard the fax (at
    4 s after the answer its CED is on the line; at 6.5 s DIS has gone, DCS is on its way)."""
    pages = small_pages(1, rows=80, seed=7)
    sent, results = asyncio.run(asyncio.wait_for(
        _call(tmp_path, pages, caller_switch=None, answerer_switch=switch_after, ecm=ecm), 90))
    (got,) = results
    _check(sent, got, pages, switch_after, by_caller="remote")
    if switch_after > SWITCH_AFTER:
        assert "DIS" in _frames_before(got, got.sip["t38_switch"]["t"])     # sent as audio


def test_caller_switches_to_t38_during_the_audio_fax(tmp_path):
    """The sending side's own re-INVITE (its t38_switch_after longer than audio_wait) comes
    during TCF: the fax goes on over T.38 all the same."""
    switch_after = 8.0
    pages = small_pages(1, rows=80, seed=8)
    sent, results = asyncio.run(asyncio.wait_for(
        _call(tmp_path, pages, caller_switch=switch_after, answerer_switch=None), 90))
    (got,) = results
    _check(sent, got, pages, switch_after, by_caller="local")
    assert {"DIS", "DCS"} <= set(_frames_before(sent, sent.sip["t38_switch"]["t"]))


def test_a_switch_to_a_slower_t38_ends_the_fax_honestly(tmp_path):
    """The re-INVITE's T38MaxBitRate (9600) is below the rate the audio session was built for
    (V.17 14400): the session cannot go on over it (T.30 has offered 14400 already), so both
    ends fail as a lost line saying why, in a few seconds, and no page is claimed."""
    from xmfax.t38.config import T38Config

    async def main():
        receiver = api.receive(via="sip://127.0.0.1:0", once=True, output_dir=tmp_path, local_id=RX_ID,
                               sip={"t38_switch_after": SWITCH_AFTER, "audio_wait": 1.0},
                               t38=T38Config(max_bit_rate=9600))
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        try:
            sent = await api.send(small_pages(1, rows=40), via=f"sip:+1555@{host}:{port}", local_id=TX_ID,
                                  max_duration=60, sip={"t38_switch_after": None, "audio_wait": 1.0})
            results = await asyncio.wait_for(task, 20)
        finally:
            receiver.stop()
            task.cancel()
        return sent, results

    sent, (got,) = asyncio.run(asyncio.wait_for(main(), 90))
    for r in (sent, got):
        assert not r.ok and r.reason == "line_lost", r.summary()
        assert "T38MaxBitRate is 9600" in r.summary()
        assert r.sip["media"] == "audio>t38" and r.sip["t38"]["max_bit_rate"] == 9600
        assert r.pages == []
        assert r.duration < SWITCH_AFTER + 10
    assert not got.files
