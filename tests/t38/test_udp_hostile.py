"""The T.38 UDP driver against stray and hostile senders and an unreachable far end
(issue #10, findings 4 and 6), over real UDP on 127.0.0.1."""
from __future__ import annotations

import asyncio
import os
import socket
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import test_pages as make_pages  # noqa: E402

from xmfax.drivers.t38_udp import T38UDPDriver, is_t38_datagram, run_call, wait_for_caller  # noqa: E402
from xmfax.errors import DriverError  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.ifp import Indicator, IndicatorPacket, encode_ifp  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402
from xmfax.t38.udptl import UDPTLPacket, encode_udptl  # noqa: E402

GARBAGE = b"\x00\x01\x02\x03\x04\x05\x06\x07"
# valid T.38 from the wrong address: a no-signal indicator at a plausible sequence number
FORGED = [encode_udptl(UDPTLPacket(n, encode_ifp(IndicatorPacket(Indicator.NO_SIGNAL)))) for n in range(40)]


def test_what_counts_as_t38():
    assert not is_t38_datagram(GARBAGE)
    assert not is_t38_datagram(b"")
    assert not is_t38_datagram(encode_udptl(UDPTLPacket(1, b"\xff\xff\xff")))   # bad IFP primary
    assert is_t38_datagram(FORGED[0])


def udp_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    return s


async def answer_and_call(ecm, *, before=(), during=(), remote_known=False, keep=None):
    """An answering driver on 127.0.0.1 and a caller; ``before`` datagrams are sent to the
    answerer by a third party before the caller starts, ``during`` ones every 20 ms once
    the answerer has its peer. Returns both results and the answering driver."""
    loop = asyncio.get_running_loop()
    pages = make_pages(1)
    caller_sock = udp_socket()
    caller_addr = caller_sock.getsockname()
    caller_sock.close()               # its port is reused by the caller below
    rx = Session(T30Config(ecm=ecm), calling=False, receive=True)
    term = T38Terminal(rx, T38Config(paced=False), loop.time())
    sock = udp_socket()
    transport, driver = await loop.create_datagram_endpoint(
        lambda: T38UDPDriver(term, caller_addr if remote_known else None, loop, sock), sock=sock)
    port = transport.get_extra_info("sockname")[1]
    intruder = udp_socket()
    for d in before:
        intruder.sendto(d, ("127.0.0.1", port))
    await asyncio.sleep(0.05)
    stop = asyncio.Event()

    async def blast():
        k = 0
        while not stop.is_set() and driver.remote is None:
            await asyncio.sleep(0.005)       # valid T.38 before the caller would be adopted
        while not stop.is_set() and during:
            intruder.sendto(during[k % len(during)], ("127.0.0.1", port))
            k += 1
            await asyncio.sleep(0.02)

    blaster = asyncio.create_task(blast())
    answering = asyncio.create_task(driver.run(60))
    tx = Session(T30Config(ecm=ecm), calling=True, pages=pages)
    try:
        sent = await run_call(tx, local=caller_addr, remote=("127.0.0.1", port), paced=False,
                              config=T38Config(), max_duration=60)
        await answering
    finally:
        stop.set()
        await blaster
        transport.close()
        intruder.close()
    return pages, sent, rx.result, driver, term


def delivered(pages, sent, got):
    assert sent.status == "success", (sent.reason, sent.detail)
    assert got.status == "success", (got.reason, got.detail)
    assert len(got.received_pages) == len(pages)
    for p, q in zip(pages, got.received_pages):
        assert np.array_equal(p.image, q.image)


@pytest.mark.parametrize("ecm", [True, False])
def test_garbage_before_the_caller_adopts_no_one(ecm):
    # one 8-byte datagram before the real caller made the call fail (no_dis)
    pages, sent, got, driver, _ = asyncio.run(asyncio.wait_for(
        answer_and_call(ecm, before=[GARBAGE, b"\x80" * 3, b""]), 90))
    delivered(pages, sent, got)
    assert driver.invalid >= 2


def test_other_sources_never_reach_the_terminal_during_the_call():
    # valid-looking T.38 from another address, before and during the call, with and
    # without a remote= given: dropped (by the connected socket or the address check)
    for remote_known in (False, True):
        pages, sent, got, driver, term = asyncio.run(asyncio.wait_for(
            answer_and_call(True, during=FORGED + [GARBAGE], remote_known=remote_known), 90))
        delivered(pages, sent, got)
        assert term._receiver.stats.malformed == {} and term._receiver.stats.held == 0
        assert driver.datagrams_in == term._receiver.stats.datagrams


def test_wait_for_caller_skips_stray_bytes():
    async def main():
        ready = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        waiter = asyncio.create_task(wait_for_caller(("127.0.0.1", 0), stop, ready.set_result))
        port = (await ready)[1]
        a, b = udp_socket(), udp_socket()
        try:
            a.sendto(GARBAGE, ("127.0.0.1", port))
            await asyncio.sleep(0.05)
            assert not waiter.done()
            b.sendto(FORGED[0], ("127.0.0.1", port))
            return await asyncio.wait_for(waiter, 5), b.getsockname()
        finally:
            a.close()
            b.close()

    got, want = asyncio.run(main())
    assert got == want


def test_unreachable_far_end_ends_the_call_promptly():
    """ICMP port unreachable: a DriverError after a few errors, not T1 (35 s) of waiting."""
    s = udp_socket()
    port = s.getsockname()[1]
    s.close()                                  # nobody listens there now

    async def main():
        tx = Session(T30Config(), calling=True, pages=make_pages(1))
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        with pytest.raises(DriverError, match="far end unreachable"):
            await asyncio.wait_for(run_call(tx, local=("127.0.0.1", 0), remote=("127.0.0.1", port),
                                            paced=True, max_duration=60), 30)
        return loop.time() - t0, tx

    took, tx = asyncio.run(main())
    assert took < tx.config.timers.t1           # ended on the errors, not on T1
    assert tx.done and tx.result.status == "failure"
