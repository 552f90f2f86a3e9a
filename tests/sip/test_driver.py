"""The SIP driver's socket side (drivers/sip_transport.py), its URL parsing and media
sockets, and the hangup hook it uses in drivers/t38_udp.py; all on 127.0.0.1."""
from __future__ import annotations

import asyncio
import os
import socket
import sys
import time

import pytest

from xmfax.drivers.sip_transport import SipTransport, is_ip_literal, resolve, route_source
from xmfax.errors import DriverError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "t38"))
from calls import test_pages as make_pages  # noqa: E402

LOCAL = ("127.0.0.1", 0)


def message(n: int, body: bytes = b"") -> bytes:
    return (f"OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK{n}\r\n"
            f"Call-ID: c{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


class Inbox:
    """Collects (data, source, transport) and lets a test wait for a count."""

    def __init__(self) -> None:
        self.items: list[tuple[bytes, tuple[str, int], str]] = []
        self.changed = asyncio.Event()

    def __call__(self, data: bytes, source, transport: str) -> None:
        self.items.append((data, source, transport))
        self.changed.set()

    async def wait(self, count: int, timeout: float = 5.0) -> list:
        async with asyncio.timeout(timeout):
            while len(self.items) < count:
                self.changed.clear()
                await self.changed.wait()
        return self.items


def run(coro, timeout: float = 20.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def test_udp_messages_arrive_whole_with_their_source():
    async def main():
        a_in, b_in = Inbox(), Inbox()
        a, b = SipTransport(a_in), SipTransport(b_in)
        a_addr = await a.open(LOCAL)
        b_addr = await b.open(LOCAL)
        try:
            a.send(message(1), b_addr, "udp")
            a.send(b"\r\n\r\n", b_addr, "udp")           # a keep-alive: nothing handed up
            a.send(message(2, b"v=0\r\n"), b_addr, "udp")
            got = await b_in.wait(2)
            b.send(b"reply", got[0][1], "udp")
            back = await a_in.wait(1)
            return a_addr, got, back
        finally:
            await a.close()
            await b.close()

    a_addr, got, back = run(main())
    assert [g[0] for g in got] == [message(1), message(2, b"v=0\r\n")]
    assert all(g[1] == a_addr and g[2] == "udp" for g in got)
    assert back[0][0] == b"reply"


def test_tcp_stream_is_framed_and_replies_reuse_the_connection():
    async def main():
        a_in, b_in = Inbox(), Inbox()
        a, b = SipTransport(a_in), SipTransport(b_in)
        await a.open(LOCAL)
        b_addr = await b.open(LOCAL)
        try:
            # two messages and a keep-alive, sent before the connection is even up
            a.send(message(1, b"hello"), b_addr, "tcp")
            a.send(b"\r\n\r\n" + message(2), b_addr, "tcp")
            got = await b_in.wait(2)
            source = got[0][1]
            b.send(message(3), source, "tcp")              # a response goes back to the source
            back = await a_in.wait(1)
            return got, back, source, a.tcp_connections, b.tcp_connections
        finally:
            await a.close()
            await b.close()

    got, back, source, a_conns, b_conns = run(main())
    assert [g[0] for g in got] == [message(1, b"hello"), message(2)]
    assert all(g[2] == "tcp" and g[1] == source for g in got)
    assert back == [(message(3), back[0][1], "tcp")]
    assert a_conns == 1 and b_conns == 1             # the reply reused the one connection


def test_a_stream_that_cannot_be_framed_is_closed():
    async def main():
        b_in = Inbox()
        b = SipTransport(b_in)
        b_addr = await b.open(LOCAL)
        try:
            reader, writer = await asyncio.open_connection(*b_addr)
            writer.write(b"INVITE sip:x@y SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n")
            await writer.drain()
            async with asyncio.timeout(5):
                rest = await reader.read()               # EOF: the driver closed the connection
            writer.close()
            return rest, b_in.items, b.errors, b.last_error
        finally:
            await b.close()

    rest, items, errors, last = run(main())
    assert rest == b"" and items == []
    assert errors == 1 and "Content-Length" in last


def test_sending_never_raises_when_the_far_end_is_not_there():
    async def main():
        with socket.socket() as s:                        # a TCP port nobody listens on
            s.bind(LOCAL)
            dead = s.getsockname()
        failed = []
        a = SipTransport(Inbox(), lambda dest, transport, text: failed.append((dest, transport)))
        await a.open(LOCAL)
        try:
            a.send(message(1), dead, "tcp")
            a.send(message(2), dead, "tcp")               # queued behind the same connect
            async with asyncio.timeout(5):
                while a.errors == 0:
                    await asyncio.sleep(0.01)
            first = a.last_error
            a.send(message(3), ("localhost", dead[1]), "tcp")   # resolved first, then refused
            async with asyncio.timeout(5):
                while len(failed) < 2:
                    await asyncio.sleep(0.01)
            return a.errors, a.last_error, a.tcp_connections, failed, dead, first
        finally:
            await a.close()

    errors, last, conns, failed, dead, first = run(main())
    assert "2 message(s) not sent" in first and "1 message(s) not sent" in last
    assert errors == 2 and conns == 0
    # each destination reported as the user agent named it (a name stays a name)
    assert failed == [(dead, "tcp"), (("localhost", dead[1]), "tcp")]


def test_names_are_resolved_and_literals_kept():
    async def main():
        b_in = Inbox()
        b = SipTransport(b_in)
        a = SipTransport(Inbox())
        b_addr = await b.open(LOCAL)
        await a.open(LOCAL)
        try:
            a.send(message(7), ("localhost", b_addr[1]), "udp")
            await b_in.wait(1)
            return await resolve("127.0.0.1"), await resolve("localhost"), b_in.items
        finally:
            await a.close()
            await b.close()

    literal, name, items = run(main())
    assert literal == "127.0.0.1" and is_ip_literal(name)
    assert items[0][0] == message(7)
    assert is_ip_literal("::1") and not is_ip_literal("example.com")


def test_route_source_and_port_in_use():
    assert route_source("127.0.0.1") == "127.0.0.1"

    async def main():
        a = SipTransport(Inbox())
        addr = await a.open(LOCAL)
        try:
            with pytest.raises(DriverError, match="cannot open SIP"):
                await SipTransport(Inbox()).open(addr)
        finally:
            await a.close()

    run(main())


def test_t38_run_call_ends_at_once_when_the_call_is_hung_up():
    """The hook the SIP driver uses: a far end's BYE during the fax ends the T.38 call
    at once as a lost line, with the reason given, on both sides."""
    from xmfax.drivers.t38_udp import run_call
    from xmfax.t30 import Session, T30Config
    from xmfax.t38.config import T38Config

    async def main():
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        bye_rx, bye_tx = loop.create_future(), loop.create_future()
        rx = Session(T30Config(), calling=False, receive=True)
        tx = Session(T30Config(), calling=True, pages=make_pages(2))
        answer = asyncio.create_task(run_call(rx, local=LOCAL, remote=None, paced=True, config=T38Config(),
                                              on_ready=ready.set_result, max_duration=60, hangup=bye_rx))
        port = (await ready)[1]
        call = asyncio.create_task(run_call(tx, local=LOCAL, remote=("127.0.0.1", port), paced=True,
                                            config=T38Config(), max_duration=60, hangup=bye_tx))
        await asyncio.sleep(1.5)                          # paced: still in the first seconds of the call
        assert not call.done() and not answer.done()
        t = time.monotonic()
        bye_rx.set_result("far end hung up (BYE)")
        bye_tx.set_result("far end hung up (BYE)")
        results = await asyncio.gather(call, answer)
        return results, time.monotonic() - t

    (sent, received), took = run(main())
    assert took < 5.0           # two paced pages still had well over 10 s to go
    for r in (sent, received):
        assert r.status == "failure" and r.reason.name == "LINE_LOST"
        assert "far end hung up (BYE)" in r.text


def test_idle_tcp_connections_are_closed(monkeypatch):
    monkeypatch.setattr(SipTransport, "IDLE_TIMEOUT", 0.2)

    async def main():
        b = SipTransport(Inbox())
        b_addr = await b.open(LOCAL)
        try:
            reader, writer = await asyncio.open_connection(*b_addr)
            writer.write(message(1))
            await writer.drain()
            async with asyncio.timeout(5):
                while b.tcp_connections == 0:
                    await asyncio.sleep(0.01)
                rest = await reader.read()               # EOF once idle for IDLE_TIMEOUT
            writer.close()
            return rest, b.tcp_connections
        finally:
            await b.close()

    rest, conns = run(main())
    assert rest == b"" and conns == 0


# --------------------------------------------------------------------------- the pump, fuzzed
from hypothesis import given, settings, strategies as st  # noqa: E402

TRACES_DIR = os.path.join(os.path.dirname(__file__), "traces")
TRACES = [open(os.path.join(TRACES_DIR, n), "rb").read() for n in sorted(os.listdir(TRACES_DIR))
          if n.endswith(".sip")]


@st.composite
def mutated(draw) -> bytes:
    """A captured message, maybe cut, with some octets changed or lines repeated."""
    data = bytearray(draw(st.sampled_from(TRACES)))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "dup", "junk"]))
        if not data:
            break
        i = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[i] = draw(st.integers(0, 255))
        elif kind == "cut":
            del data[i:]
        elif kind == "dup":
            line_end = data.find(b"\r\n", i)
            if line_end > 0:
                start = data.rfind(b"\r\n", 0, i) + 2
                data[line_end + 2:line_end + 2] = data[start:line_end + 2]
        else:
            data[i:i] = draw(st.binary(max_size=40))
    return bytes(data)


@settings(max_examples=60)
@given(st.lists(st.one_of(mutated(), st.binary(max_size=200)), min_size=1, max_size=12),
       st.sampled_from(["udp", "tcp"]))
def test_the_pump_takes_any_input_and_keeps_no_call_it_does_not_follow(messages, transport):
    """Mutated real traces and junk into a live endpoint (its sockets open, nothing sent by
    the test but these): nothing escapes, the user agent reports no internal error, every
    new call is refused and forgotten, and the endpoint still closes cleanly."""
    from xmfax.drivers.sip import SipEndpoint

    async def main():
        ep = await SipEndpoint.open(LOCAL)
        refused = []

        def incoming(ev):
            refused.append(ev.call_id)
            ep.release(ev.call_id)
            ep.command("reject", ev.call_id, 486, None)

        ep.on_incoming = incoming
        try:
            for data in messages:
                ep._on_message(data, ("127.0.0.1", 9), transport)   # as the transport hands it up
            ua = ep.ua
            return refused, ep.calls, list(ua.errors)
        finally:
            await ep.close(timeout=0.5)

    refused, calls, errors = run(main())
    assert calls == 0 and errors == []


def test_sip_addresses_parse_or_say_what_is_wrong():
    from xmfax.drivers.sip import hostport, parse_sip_listen, parse_sip_target

    assert parse_sip_listen("sip://0.0.0.0:5060") == (("0.0.0.0", 5060), "udp")
    assert parse_sip_listen("sip://127.0.0.1:0;transport=TCP") == (("127.0.0.1", 0), "tcp")
    assert parse_sip_listen("sip://[::1]:5070") == (("::1", 5070), "udp")
    assert parse_sip_listen("sip://127.0.0.1") == (("127.0.0.1", 5060), "udp")
    for bad in ("sip:+1@h", "sip://h:1;transport=sctp", "sip://h:1;lr", "sip://h:99999", "sip://:5"):
        with pytest.raises(ValueError):
            parse_sip_listen(bad)
    uri = parse_sip_target("sip:+15550100@192.0.2.7:5080;transport=TCP")
    assert (uri.user, uri.host, uri.port, uri.transport) == ("+15550100", "192.0.2.7", 5080, "tcp")
    for bad in ("sips:+1@h", "sip:+1@h;transport=sctp", "tel:+15550100", "sip:", "http://h"):
        with pytest.raises(ValueError):
            parse_sip_target(bad)
    assert hostport(("::1", 5)) == "[::1]:5" and hostport(("127.0.0.1", 5)) == "127.0.0.1:5"


def test_call_media_binds_two_ports_and_drains_audio():
    from xmfax.drivers.sip import CallMedia

    async def main():
        media = await CallMedia.open("127.0.0.1")
        ports = media.t38_port, media.audio_port
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(5):
                s.sendto(b"\x80" + bytes(171), ("127.0.0.1", media.audio_port))    # RTP-sized
            async with asyncio.timeout(5):
                while media.audio_drain.datagrams < 5:
                    await asyncio.sleep(0.01)
        sock = media.take_t38()
        assert sock.getsockname()[1] == ports[0] and media.t38_sock is None
        sock.close()
        media.close()
        await asyncio.sleep(0)
        for port in ports:                       # both free again
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        return ports

    t38_port, audio_port = run(main())
    assert t38_port != audio_port and 0 not in (t38_port, audio_port)
