"""One raw T.38 line (``once=False``, one port) answering calls sent back to back, with no
wait between them. A caller's first datagrams can arrive while the port still belongs to
the previous call (its connected socket drops them) and is bound again for the next; a
caller that sent its CNG indicator once then waited T1 for a DIS that never came (about 1
call in 5 hung until its time limit). The caller repeats CNG every 3.5 s until it hears
the far end (T.30 §4.1), so each call is heard at its next CNG at the latest."""
from __future__ import annotations

import asyncio

import numpy as np

from xmfax import api
from xmfax.page import Page

CALLS = 5
LOST_FOR = 3.0


class _DropEarly(asyncio.DatagramProtocol):
    """A UDP relay on 127.0.0.1 in front of the receiver that drops the caller's datagrams
    for the first LOST_FOR seconds of the call (from its first datagram)."""

    def __init__(self, target):
        self.target, self.caller, self.first, self.dropped = target, None, None, 0

    def connection_made(self, transport):
        self.transport = transport
        self.loop = asyncio.get_running_loop()

    def datagram_received(self, data, addr):
        if addr[1] == self.target[1]:
            if self.caller is not None:
                self.transport.sendto(data, self.caller)
            return
        self.caller = (addr[0], addr[1])
        self.first = self.first if self.first is not None else self.loop.time()
        if self.loop.time() - self.first < LOST_FOR:
            self.dropped += 1
            return
        self.transport.sendto(data, self.target)


def page(seed: int) -> Page:
    rng = np.random.default_rng(seed)
    img = np.zeros((60, 1728), bool)
    img[8:52, 100:1600] = rng.random((44, 1500)) < 0.05
    return Page(img, resolution="fine")


def test_five_back_to_back_calls_to_one_t38_port_all_complete(tmp_path):
    async def main():
        receiver = api.receive(via="t38://127.0.0.1:0", realtime=False, output_dir=tmp_path, once=False)
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        sent = []
        for i in range(CALLS):
            # no wait for the receiver to finish the last call: the next one starts at once
            sent.append(await api.send([page(i)], via=f"t38://{host}:{port}", realtime=False,
                                       max_duration=15))
        for _ in range(500):            # up to 10 s for the receiver to finish the last call
            if len(receiver.results) >= CALLS:
                break
            await asyncio.sleep(0.02)
        receiver.stop()
        got = await asyncio.wait_for(task, 20)
        return sent, got

    sent, got = asyncio.run(asyncio.wait_for(main(), 150))
    assert [r.reason for r in sent] == ["ok"] * CALLS, [r.reason_text for r in sent]
    assert [r.reason for r in got] == ["ok"] * CALLS, [r.reason_text for r in got]
    assert len({r.files[0] for r in got}) == CALLS


def test_caller_whose_first_3_s_are_lost_reaches_an_xmfax_receiver(tmp_path):
    """Over real UDP: a relay drops the caller's first 3 s of datagrams; the receiver hears
    the call at the caller's second CNG burst (3.5 s) and the page arrives."""
    async def main():
        loop = asyncio.get_running_loop()
        receiver = api.receive(via="t38://127.0.0.1:0", realtime=False, output_dir=tmp_path, once=True)
        task = asyncio.create_task(receiver.run())
        host, port = await asyncio.wait_for(receiver.ready(), 10)
        relay = _DropEarly((host, port))
        transport, _ = await loop.create_datagram_endpoint(lambda: relay, local_addr=("127.0.0.1", 0))
        try:
            via = transport.get_extra_info("sockname")[1]
            result = await api.send([page(7)], via=f"t38://127.0.0.1:{via}", realtime=False, max_duration=30)
            got = await asyncio.wait_for(task, 20)
        finally:
            transport.close()
        return result, got, relay

    result, got, relay = asyncio.run(asyncio.wait_for(main(), 60))
    assert relay.dropped >= 2                     # the first CNG burst (and its repeats)
    assert result.reason == "ok", result.reason_text
    assert [r.reason for r in got] == ["ok"]
