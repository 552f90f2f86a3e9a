"""spandsp's audio fax terminal behind real G.711 RTP on UDP: a peer nobody on this team wrote
for xmfax's ``rtp://`` and SIP audio paths (issue #12, "shown against spandsp").

What is whose:
- the fax logic, the modems, the tones and G.711 are spandsp's (``fax_state`` through
  :mod:`spandsp_fax_audio`; ``g711_encode``/``g711_decode`` through :mod:`spandsp_audio`);
- the RTP framing is written here, from RFC 3550 §5.1, and does NOT use xmfax.rtp: a bug in
  xmfax's packet format or sequence/timestamp handling cannot cancel itself out;
- the play-out is :class:`PlainPlayout`, a plain fixed buffer (the first packet plays ``depth``
  after it arrives, every later one at its timestamp's distance; a late packet is dropped, a
  missing one is silence): what a simple gateway does, no concealment.

Run as a program (one call, real time, 20 ms packets)::

    python3 tests/interop/spandsp_rtp.py --rx OUT.tif [--port 0] [--remote HOST:PORT]
    python3 tests/interop/spandsp_rtp.py --tx PAGE.tif --remote HOST:PORT
        [--no-ecm] [--law pcmu|pcma] [--depth MS] [--max-duration S] [--linger S]

``--tx`` makes spandsp the calling, sending end; ``--rx`` the answering, receiving one. Without
``--remote`` it waits for the first RTP packet of its law and answers its sender (RFC 4961
symmetric RTP); spandsp's clock starts then. It prints ``bridge: ready on HOST:PORT`` once
bound, and at the end one line ``bridge: result {json}`` (spandsp's phase E code and
t30_stats, the packet counts). Exit 0 when spandsp's phase E said OK, else 1.

Nothing here is a test; the tests are test_audio_rtp_spandsp.py.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import select
import socket
import struct
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

RATE = 8000
BLOCK = 160                                  # 20 ms (RFC 3551 §4.5: G.711's default ptime)
PT = {"pcmu": 0, "pcma": 8}                  # RFC 3551 Table 4
SILENCE = {"pcmu": 0xFF, "pcma": 0xD5}       # G.711: the code of a zero sample
_HDR = struct.Struct("!BBHII")


# -- RTP framing (RFC 3550 §5.1), written here --------------------------------------------

def rtp_packet(pt: int, seq: int, ts: int, ssrc: int, payload: bytes, marker: bool = False) -> bytes:
    """Version 2, no padding, no extension, no CSRC."""
    return _HDR.pack(0x80, (0x80 if marker else 0) | pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc) + payload


def rtp_parse(data: bytes) -> tuple[int, int, int, int, bytes] | None:
    """(pt, seq, ts, ssrc, payload), or None for anything that is not RTP version 2."""
    if len(data) < 12:
        return None
    first, second, seq, ts, ssrc = _HDR.unpack_from(data)
    if first >> 6 != 2:
        return None
    pos = 12 + 4 * (first & 0x0F)                        # CSRCs skipped
    end = len(data)
    if first & 0x10:                                     # §5.3.1 extension skipped
        if pos + 4 > end:
            return None
        pos += 4 + 4 * struct.unpack_from("!H", data, pos + 2)[0]
    if first & 0x20:                                     # padding: the last octet counts
        end -= data[-1]
    if pos > end:
        return None
    return second & 0x7F, seq, ts, ssrc, bytes(data[pos:end])


class PlainSender:
    """Codes -> 20 ms RTP packets: random SSRC, sequence and timestamp origin (§5.1)."""

    def __init__(self, law: str, rng: random.Random | None = None) -> None:
        rng = rng or random.SystemRandom()
        self.pt = PT[law]
        self.ssrc, self.seq, self.ts = rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(32)
        self.sent = 0

    def packet(self, codes: bytes) -> bytes:
        data = rtp_packet(self.pt, self.seq, self.ts, self.ssrc, codes, marker=self.sent == 0)
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + len(codes)) & 0xFFFFFFFF
        self.sent += 1
        return data


class PlainPlayout:
    """A fixed play-out buffer: 8000 codes a second from ``t0``; the first packet is played
    ``depth`` seconds after its arrival, every later one at its timestamp's distance from it.
    Late packets (their first sample already played) and duplicates are dropped; a sample no
    packet brought is the silence code. A new SSRC re-anchors. Counts in ``stats``."""

    def __init__(self, law: str, depth: float, t0: float = 0.0, horizon: float = 2.0) -> None:
        self.pt, self.silence = PT[law], SILENCE[law]
        self.depth = round(depth * RATE)
        self.t0 = t0
        self.cap = self.depth + round(horizon * RATE)
        self.played = 0
        self.buf = bytearray()                  # codes from position ``played`` on
        self.anchor: tuple[int, int, int] | None = None      # (ssrc, ts, position)
        self.seen: set[tuple[int, int]] = set()
        self.first_seq: int | None = None
        self.max_ext = 0
        self.stats = dict(received=0, late=0, duplicate=0, overflow=0, other=0, lost=0)

    def _due(self, now: float) -> int:
        return int((now - self.t0) * RATE + 1e-6)

    def receive(self, data: bytes, now: float) -> bool:
        pkt = rtp_parse(data)
        if pkt is None or pkt[0] != self.pt:
            self.stats["other"] += 1             # RFC 4733 events, CN, junk: never played
            return False
        _, seq, ts, ssrc, payload = pkt
        if (ssrc, seq) in self.seen:
            self.stats["duplicate"] += 1
            return True
        self.seen.add((ssrc, seq))
        self.stats["received"] += 1
        if self.anchor is None or self.anchor[0] != ssrc:
            self.anchor = (ssrc, ts, max(self._due(now) + self.depth, self.played + len(self.buf)))
            self.first_seq, self.max_ext = seq, 0
        d = (seq - self.first_seq) & 0xFFFF
        self.max_ext = max(self.max_ext, d if d < 0x8000 else 0)
        _, ts0, pos0 = self.anchor
        dt = (ts - ts0) & 0xFFFFFFFF
        pos = pos0 + (dt - (1 << 32) if dt & 0x80000000 else dt)
        off = pos - self.played
        if off < 0:
            self.stats["late"] += 1
            return True
        if off + len(payload) > self.cap:
            self.stats["overflow"] += 1
            return True
        if len(self.buf) < off + len(payload):
            self.buf += bytes((self.silence,)) * (off + len(payload) - len(self.buf))
        self.buf[off:off + len(payload)] = payload
        return True

    def play(self, now: float) -> bytes:
        """The codes due by ``now``: buffered audio, silence where nothing arrived."""
        n = self._due(now) - self.played
        if n <= 0:
            return b""
        out = bytes(self.buf[:n])
        del self.buf[:n]
        self.played += n
        return out + bytes((self.silence,)) * (n - len(out))

    def lost(self) -> int:
        """Packets of the current stream never received (sequence span minus received)."""
        if self.first_seq is None:
            return 0
        return max(0, self.max_ext + 1 - self.stats["received"])


# -- the bridge ------------------------------------------------------------------------------

def _hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host or "127.0.0.1", int(port)


class Bridge:
    """spandsp's fax_state <-> G.711 RTP on one UDP socket, paced by the monotonic clock."""

    def __init__(self, *, tx: str | None, rx: str | None, ecm: bool, law: str, depth: float,
                 local: tuple[str, int], remote: tuple[str, int] | None) -> None:
        import spandsp_audio as sa
        import spandsp_fax_audio as sf
        self.sa = sa
        self.glaw = sa.G711_ULAW if law == "pcmu" else sa.G711_ALAW
        self.law, self.depth, self.remote = law, depth, remote
        self.fax = sf.SpandspFax(tx is not None, tx_file=tx, rx_file=rx, ecm=ecm, ident="+1 555 0142")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(local)
        self.sock.setblocking(False)
        self.sender = PlainSender(law)
        self.playout: PlainPlayout | None = None
        self.foreign = 0

    @property
    def address(self) -> tuple[str, int]:
        return self.sock.getsockname()[:2]

    def _recv_all(self, now: float) -> None:
        while True:
            try:
                data, addr = self.sock.recvfrom(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:                       # ICMP port unreachable from the far end
                return
            src = (addr[0], addr[1])
            if self.remote is None:
                pkt = rtp_parse(data)
                if pkt is None or pkt[0] != PT[self.law]:
                    self.foreign += 1
                    continue
                self.remote = src                 # RFC 4961: answer whoever sends the stream
            elif src != self.remote:
                self.foreign += 1
                continue
            if self.playout is None:
                self.playout = PlainPlayout(self.law, self.depth, t0=self.t0)
            self.playout.receive(data, now)

    def run(self, max_duration: float, linger: float) -> dict:
        self.t0 = None
        start = time.monotonic()
        waited_until = start + max_duration
        while self.remote is None:                # the call starts with the first packet
            if time.monotonic() > waited_until:
                return self.result("nobody called")
            select.select([self.sock], [], [], 0.05)
            self.t0 = time.monotonic()
            self._recv_all(self.t0)
        if self.t0 is None:
            self.t0 = time.monotonic()
        k = 0
        ended_at = None
        end = self.t0 + max_duration
        why = "max duration"
        while True:
            k += 1
            tick = self.t0 + k * BLOCK / RATE
            while True:                          # wait for the tick, taking packets as they come
                left = tick - time.monotonic()
                if left <= 0:
                    break
                r, _, _ = select.select([self.sock], [], [], left)
                if r:
                    self._recv_all(time.monotonic())
            now = time.monotonic()
            self._recv_all(now)
            out = self.fax.send(BLOCK)
            codes = self.sa.g711_encode(self.glaw, out).tobytes()
            try:
                self.sock.sendto(self.sender.packet(codes), self.remote)
            except OSError:
                pass
            if self.playout is None:
                self.playout = PlainPlayout(self.law, self.depth, t0=self.t0)
            heard = self.playout.play(tick)
            if heard:
                self.fax.receive(self.sa.g711_decode(self.glaw, np.frombuffer(heard, np.uint8)))
            if ended_at is None and self.fax.completion is not None:
                ended_at = now
                why = "phase E"
            if ended_at is not None and now - ended_at >= linger:
                break
            if now >= end:
                break
        return self.result(why)

    def result(self, why: str) -> dict:
        st = self.fax.stats()
        out = dict(ended=why, completion=self.fax.completion,
                   stats={name: getattr(st, name) for name, _ in type(st)._fields_},
                   remote=list(self.remote) if self.remote else None,
                   packets_sent=self.sender.sent, foreign=self.foreign)
        if self.playout is not None:
            out["playout"] = dict(self.playout.stats, lost=self.playout.lost())
        return out

    def close(self) -> None:
        self.sock.close()
        self.fax.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    role = p.add_mutually_exclusive_group(required=True)
    role.add_argument("--tx", help="TIFF to send (spandsp calls)")
    role.add_argument("--rx", help="TIFF to receive into (spandsp answers)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--remote", type=_hostport)
    p.add_argument("--no-ecm", action="store_true")
    p.add_argument("--law", choices=sorted(PT), default="pcmu")
    p.add_argument("--depth", type=float, default=60.0, help="play-out delay, ms")
    p.add_argument("--max-duration", type=float, default=120.0)
    p.add_argument("--linger", type=float, default=1.0, help="s of line kept after phase E")
    a = p.parse_args(argv)
    bridge = Bridge(tx=a.tx, rx=a.rx, ecm=not a.no_ecm, law=a.law, depth=a.depth / 1000.0,
                    local=(a.host, a.port), remote=a.remote)
    host, port = bridge.address
    print(f"bridge: ready on {host}:{port}", flush=True)
    try:
        res = bridge.run(a.max_duration, a.linger)
    finally:
        bridge.close()
    print("bridge: result " + json.dumps(res), flush=True)
    return 0 if res["completion"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
