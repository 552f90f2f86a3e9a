"""Media-side and wire-side helpers for the SIP interop tests (beside tests/sip/peers.py):
spandsp's T.38 terminal on a UDP port (the fax end of a call sipp signals), and a UDP tap that
times, and can drop, the datagrams between two SIP ends."""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass

try:                                    # as tests/sip/peers_media.py of the package "sip"
    from .peers import HOST, REPO
except ImportError:                     # with tests/sip on sys.path (tests/interop)
    from peers import HOST, REPO


# -- spandsp's T.38 terminal on a UDP port -------------------------------------------------

class SpandspT38Endpoint:
    """spandsp's T.38 terminal (tests/interop/spandsp_t38.py, libspandsp2) on a UDP port of
    127.0.0.1, run by a thread: the media end of a call whose SIP side is sipp.

    It answers the first address that sends it a datagram (and sends there from then on), and
    spandsp's clock starts only then, as the T.38 session starts: xmfax speaks first in both
    roles (CNG as the caller, CED as the callee). spandsp speaks
    IFP only; its UDPTL framing is xmfax's UDPTLSender/UDPTLReceiver (as in
    tests/interop/test_t38_spandsp.py; the IFP inside is spandsp's own). spandsp's clock
    advances 20 ms every ``20 / speed`` ms of wall time (unpaced both sides: ``speed`` 4 makes
    its T.30 timers run four times faster, still far longer than loopback delays).

    ``calling``: spandsp sends (``tx_tiff``); else it receives into ``rx_tiff``.
    ``completion`` is spandsp's phase E code (0: OK) once its call ended.
    """

    def __init__(self, *, calling: bool, tx_tiff: str | None = None, rx_tiff: str | None = None,
                 ecm: bool = True, speed: float = 4.0, limit: float = 60.0) -> None:
        import sys
        import threading
        sys.path.insert(0, str(REPO / "tests" / "interop"))
        import spandsp_t38 as sp
        from xmfax.t38.config import T38Config
        from xmfax.t38.udptl import UDPTLReceiver, UDPTLSender
        if sp.load() is None:
            import pytest
            pytest.skip("libspandsp.so.2 (Debian libspandsp2) is not installed")
        self.peer = sp.SpandspT38(calling, tx_file=tx_tiff, rx_file=rx_tiff, ecm=ecm, paced=False,
                                  ident="spandsp")
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.remote: tuple[str, int] | None = None
        self.received = 0
        self.sent = 0
        self.speed = speed
        self.limit = limit
        self._rx = UDPTLReceiver(0)
        self._tx = UDPTLSender(T38Config())
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spandsp-t38", daemon=True)
        self.error: BaseException | None = None

    @property
    def completion(self) -> int | None:
        return self.peer.completion

    def start(self) -> "SpandspT38Endpoint":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            step = 0.020 / self.speed
            start = time.monotonic()
            next_tick = start
            done_at = None
            while not self._stop.is_set() and time.monotonic() - start < self.limit:
                timeout = max(0.0, next_tick - time.monotonic())
                self.sock.settimeout(timeout or 0.0005)
                try:
                    data, addr = self.sock.recvfrom(65535)
                except (socket.timeout, BlockingIOError):
                    data = None
                if data is not None:
                    if self.remote is None:
                        self.remote = addr
                    if addr == self.remote:
                        self.received += 1
                        for seq, ifp in self._rx.receive(data):
                            if ifp is not None:
                                self.peer.feed(ifp, seq)
                if self.remote is None:
                    # spandsp's T.30 starts with the T.38 session: at the far end's first
                    # datagram (a fax gateway starts it when the media switch to T.38)
                    next_tick = time.monotonic() + step
                elif time.monotonic() >= next_tick:
                    next_tick += step
                    self.peer.tick(160)
                for ifp, _copies in self.peer.take():
                    if self.remote is not None:
                        self.sock.sendto(self._tx.pack(ifp), self.remote)
                        self.sent += 1
                if self.peer.completion is not None:
                    # keep answering a while: the far end's last frames may still need a reply
                    done_at = done_at or time.monotonic()
                    if time.monotonic() - done_at > 1.0:
                        break
        except BaseException as exc:      # reported by stop()
            self.error = exc

    def wait(self, timeout: float) -> int | None:
        """Wait until spandsp's call ended (its phase E) or ``timeout``; the completion code."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.peer.completion is None and self._thread.is_alive():
            time.sleep(0.05)
        return self.peer.completion

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.sock.close()
        self.peer.close()
        if self.error is not None:
            raise RuntimeError(f"the spandsp endpoint failed: {self.error!r}") from self.error

    def __enter__(self) -> "SpandspT38Endpoint":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# -- a UDP tap: sees (and times) every datagram between two SIP ends -----------------------

@dataclass(frozen=True)
class Tapped:
    time: float                  # time.monotonic() when the tap got it
    direction: str               # "to_target" | "from_target"
    data: bytes
    lost: bool = False           # dropped by the tap (``lose``)

    @property
    def first_line(self) -> str:
        return self.data.split(b"\r\n", 1)[0].decode("latin-1")


class UdpTap:
    """A UDP relay on 127.0.0.1 between one client and ``target``: what the client sends to
    ``self.port`` goes to the target from the tap's own socket, and the target's answers come
    back to the client; ``seen`` lists every datagram with its arrival time, retransmissions
    included (sipp's -trace_msg leaves out the copies it takes for retransmissions). Requests the
    target sends to the client's Contact bypass the tap. ``lose=(prefix, n)``: the first n
    datagrams from the target whose first line starts with prefix are not passed on (still
    listed, ``lost=True``): "the first 200 OK was lost"."""

    def __init__(self, target: tuple[str, int], *, lose: tuple[str, int] | None = None) -> None:
        import threading
        self.target = target
        self.front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.front.bind((HOST, 0))
        self.back = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.back.bind((HOST, 0))
        self.port = self.front.getsockname()[1]
        self.client: tuple[str, int] | None = None
        self.seen: list[Tapped] = []
        self.lose_prefix, self.lose_left = lose if lose else ("", 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="udp-tap", daemon=True)

    def _run(self) -> None:
        import selectors
        sel = selectors.DefaultSelector()
        sel.register(self.front, selectors.EVENT_READ, "front")
        sel.register(self.back, selectors.EVENT_READ, "back")
        while not self._stop.is_set():
            for key, _ in sel.select(0.05):
                try:
                    data, addr = key.fileobj.recvfrom(65535)
                except OSError:
                    continue
                now = time.monotonic()
                if key.data == "front":
                    self.client = addr
                    self.seen.append(Tapped(now, "to_target", data))
                    self.back.sendto(data, self.target)
                elif self.client is not None:
                    lost = self.lose_left > 0 and data.startswith(self.lose_prefix.encode())
                    self.seen.append(Tapped(now, "from_target", data, lost))
                    if lost:
                        self.lose_left -= 1
                    else:
                        self.front.sendto(data, self.client)
        sel.close()

    def from_target(self, first: str = "") -> list[Tapped]:
        return [t for t in self.seen if t.direction == "from_target" and t.first_line.startswith(first)]

    def to_target(self, first: str = "") -> list[Tapped]:
        return [t for t in self.seen if t.direction == "to_target" and t.first_line.startswith(first)]

    def __enter__(self) -> "UdpTap":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(5)
        self.front.close()
        self.back.close()
