"""Helpers for the inbound tests (owner: H4): a service in this process answering on
127.0.0.1, a directory with fax numbers, users, a folder destination, and a sender."""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from pathlib import Path

import numpy as np

import xmfax
from xmfax.page import Page, Resolution
from xmfax.server import config as cfgmod
from xmfax.server.service import Service

TX_ID = "+1 555 0100"
FAST_NOTIFY = {"retry_delays": [0.2, 0.4], "poll_interval": 0.2, "heartbeat": 0.5, "stale_after": 3.0}


def page(number: int) -> Page:
    """A fine A4 page with a frame and a few lines of text: small to send, and a lost or
    shifted row shows in a pixel compare."""
    from PIL import Image, ImageDraw

    img = Image.new("1", (1728, 2200), 1)
    draw = ImageDraw.Draw(img)
    draw.rectangle((60, 60, 1668, 2140), outline=0, width=4)
    for i in range(3):
        draw.text((120, 140 + 60 * i), f"inbound test page {number} line {i + 1}", fill=0)
    draw.ellipse((700, 1500 + 10 * number, 1000, 1800), outline=0, width=6)
    return Page(~np.asarray(img, dtype=bool), Resolution.FINE)


def pages(count: int) -> list[Page]:
    return [page(i + 1) for i in range(count)]


def directory(inbox: Path, *, zero: bool = False) -> dict:
    """[[numbers]], [[users]], [[destinations]], [[rules]] for the tests: +15551230001 (CSID
    "+1 555 123 0001", user alice -> folder 'alice-inbox'), +15551230002 (no CSID: the number
    answers; no users), and a default rule to the folder 'catchall'."""
    return {
        "numbers": [{"number": "+15551230001", "csid": "+1 555 123 0001", "users": ["alice"]},
                    {"number": "+15551230002", "users": []}],
        "users": [{"name": "alice", "email": "alice@example.com", "destinations": ["alice-inbox"]}],
        "destinations": [{"name": "alice-inbox", "type": "folder", "path": str(inbox / "alice"), "format": "tiff", "create": True},
                         {"name": "catchall", "type": "folder", "path": str(inbox / "catchall"), "format": "tiff", "create": True}],
        "rules": [{"name": "dir", "kind": "directory"},
                  {"name": "default", "kind": "default", "destinations": ["catchall"]}],
    }


def make_config(data_dir: Path, inbox: Path, *, database: str = "", listen=(), inbound=None, **extra):
    cfg = cfgmod.load(data=str(data_dir), http="127.0.0.1:0", database=database or None)
    cfg.sections["inbound"] = {"realtime": False, "heartbeat": 0.2, "listen": list(listen), **(inbound or {})}
    cfg.sections["notify"] = dict(FAST_NOTIFY)
    for key, value in {**directory(inbox), **extra}.items():
        if key in ("numbers", "users", "destinations", "rules"):
            setattr(cfg, key, value)
        else:
            cfg.sections[key] = value
    return cfg


@contextlib.asynccontextmanager
async def running(cfg):
    svc = Service(cfg)
    await svc.start()
    try:
        yield svc
    finally:
        await svc.stop()


def address(svc: Service, index: int = 0) -> tuple[str, int]:
    return svc.component("Inbound").addresses[index][1]


async def wait_for(predicate, timeout: float = 20.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def inbound_rows(svc: Service) -> list[dict]:
    return await svc.db(svc.store.list_faxes, direction="in")


async def settled(svc: Service, count: int = 1, timeout: float = 20.0) -> list[dict]:
    """Wait until ``count`` inbound faxes are final and their notifications settled."""
    async def done():
        rows = await inbound_rows(svc)
        if len(rows) >= count and all(r["status"] in ("received", "failed") and
                                      r["notify_status"] in ("delivered", "failed") for r in rows):
            return rows
        return None
    return await wait_for(done, timeout, f"{count} inbound fax(es) received and notified")


def same_pixels(a: list[Page], b: list[Page]) -> None:
    assert len(a) == len(b), (len(a), len(b))
    for i, (x, y) in enumerate(zip(a, b), 1):
        assert x.image.shape == y.image.shape, f"page {i}"
        assert int(np.count_nonzero(x.image != y.image)) == 0, f"page {i}: pixels differ"


def plaintext_tiffs(data_dir: Path) -> list[str]:
    """Files under the data folder that are TIFF in the clear (or spool leftovers)."""
    found = []
    for root, _, names in os.walk(data_dir):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                head = f.read(4)
            if head in (b"II*\0", b"MM\0*") or name.endswith((".part", ".tif", ".pdf")):
                found.append(path)
    return found


async def send(documents, via: str, **kwargs) -> xmfax.FaxResult:
    kwargs.setdefault("local_id", TX_ID)
    kwargs.setdefault("realtime", False)
    if via.startswith("sip:"):
        kwargs["sip"] = {"offer": "t38", **(kwargs.get("sip") or {})}     # no G.711 first: quicker
    return await xmfax.send(documents, via=via, **kwargs)


class T38Relay:
    """A UDP relay between a T.38 sender and a receiver on 127.0.0.1 that watches the
    receiver's T.30 frames and, after ``block_after`` MCFs (each one sent only once the
    page is stored: T.30 §5.3.6.1.2 post-message response), drops everything the receiver
    sends: the sender never hears that page confirmed, and the receiver waits for a page
    that never comes. A call frozen right after a known page, without wall-clock timing."""

    MCF = 0x31          # X011 0001, Table 2/T.30 (T.38 carries the frame octets as written)

    def __init__(self, target: tuple[str, int], block_after: int):
        self.target, self.block_after = target, block_after
        self.client = None
        self.mcf = 0
        self._frame = b""
        self.blocked = asyncio.Event()

    async def start(self) -> int:
        from xmfax.t38.ifp import DataPacket, FieldType, decode_ifp
        from xmfax.t38.udptl import decode_udptl

        loop = asyncio.get_running_loop()
        relay = self
        ends = (FieldType.HDLC_FCS_OK, FieldType.HDLC_FCS_OK_SIG_END)

        class Front(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                relay.client = addr
                relay.back.sendto(data, relay.target)

        class Back(asyncio.DatagramProtocol):
            def datagram_received(self, data, addr):
                if relay.blocked.is_set():
                    return
                try:
                    packet = decode_ifp(decode_udptl(data).primary)
                except Exception:   # noqa: BLE001 - not ours to judge: passed on
                    packet = None
                for f in packet.fields if isinstance(packet, DataPacket) else ():
                    relay._frame += f.data
                    if f.type in ends:
                        if len(relay._frame) >= 3 and relay._frame[2] & 0x7F == relay.MCF:
                            relay.mcf += 1
                        relay._frame = b""
                if relay.mcf >= relay.block_after:      # this MCF and all after it never arrive
                    relay.blocked.set()
                    return
                relay.front.sendto(data, relay.client)

        self.front, _ = await loop.create_datagram_endpoint(Front, local_addr=("127.0.0.1", 0))
        self.back, _ = await loop.create_datagram_endpoint(Back, local_addr=("127.0.0.1", 0))
        return self.front.get_extra_info("sockname")[1]

    def close(self) -> None:
        self.front.close()
        self.back.close()


def udp_sockets(port: int) -> set[int]:
    """The sockets (inodes) bound to UDP ``port`` on this machine, from /proc/net/udp."""
    found = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            lines = open(table).read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.add(int(fields[9]))
    return found


async def udp_rebound(port: int, before: set[int], timeout: float = 10.0) -> None:
    """Wait until a socket that was not among ``before`` holds UDP ``port``: a T.38 receiver
    closes its port after a call and binds a new socket for the next caller, and a caller
    whose first datagrams land in between waits for an answer that never comes (changes.md),
    so a test sending twice to one line waits for the new socket. Reads /proc: never binds
    the port itself (which could take it from the receiver)."""
    deadline = time.monotonic() + timeout
    while not udp_sockets(port) - before:
        if time.monotonic() > deadline:
            raise AssertionError(f"no new socket on UDP {port}")
        await asyncio.sleep(0.01)
