"""A receiver that answers call after call (``once=False``) on one T.38 or RTP port binds that
port again for each call: the previous call's socket must be really closed first (asyncio
closes a transport's socket one loop turn after ``close()``; binding before that fails with
EADDRINUSE, which once ended the receiver after its first call)."""
from __future__ import annotations

import asyncio
import socket

import numpy as np

from xmfax import api
from xmfax.drivers import rtp as rtp_driver
from xmfax.page import Page


def page(seed: int) -> Page:
    rng = np.random.default_rng(seed)
    img = np.zeros((80, 1728), bool)
    img[10:70, 100:1600] = rng.random((60, 1500)) < 0.05
    return Page(img, resolution="fine")


def test_t38_receiver_answers_three_calls_in_a_row_on_one_port(tmp_path):
    async def main():
        receiver = api.receive(via="t38://127.0.0.1:0", realtime=False, output_dir=tmp_path)
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        sent = []
        for i in range(3):
            sent.append(await api.send([page(i)], via=f"t38://{host}:{port}", realtime=False, max_duration=20))
            # the next call once the receiver has finished this one (a call that comes while the
            # port is still the last call's is not heard: one port, one call at a time)
            async with asyncio.timeout(10):
                while len(receiver.results) <= i:
                    await asyncio.sleep(0.02)
        receiver.stop()
        got = await asyncio.wait_for(task, 20)
        return port, sent, got

    port, sent, got = asyncio.run(asyncio.wait_for(main(), 90))
    assert [r.reason for r in sent] == ["ok"] * 3, [r.reason_text for r in sent]
    assert [r.reason for r in got] == ["ok"] * 3
    assert len({r.files[0] for r in got}) == 3


def test_rtp_call_socket_is_closed_when_the_call_returns():
    """run_rtp returns only once its socket is closed: the port can be bound at once."""
    async def main():
        bound = []
        await rtp_driver.run_rtp(None, None, local=("127.0.0.1", 0), remote=("127.0.0.1", 9),
                                 duration=0.1, on_ready=bound.append)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind(bound[0])            # EADDRINUSE if the call's socket were still open
        finally:
            s.close()
        return bound[0]

    assert asyncio.run(asyncio.wait_for(main(), 10))[1] > 0


def test_a_page_takes_its_resolution_by_name():
    """Page(img, resolution="fine") is the Resolution, not a string that fails later inside T.30."""
    from xmfax.page import Resolution
    import pytest

    assert page(0).resolution is Resolution.FINE
    assert Page(np.zeros((4, 1728), bool), resolution="Standard").resolution is Resolution.STANDARD
    with pytest.raises(ValueError, match="unknown resolution"):
        Page(np.zeros((4, 1728), bool), resolution="draft")
    with pytest.raises(TypeError):
        Page(np.zeros((4, 1728), bool), resolution=196)
