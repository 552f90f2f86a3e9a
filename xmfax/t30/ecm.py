"""ECM bookkeeping (T.30 Annex A): pages cut into blocks of frames, and the
receiver's record of which frames of a block arrived.

A page's coded data is cut into frames of 256 (or 64) octets; up to 256 frames
make a block (a "partial page"), sent as FCD frames then RCP at the high-speed
rate, then PPS at V.21 (T.30 §A.3, §A.4). The receiver answers MCF when every
frame of the block arrived, or PPR with a map of the missing ones, which the
sender resends (and only those). Frame numbers run 0..255 within a block.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RemoteProtocolError
from . import frames as F

FRAMES_PER_BLOCK = 256


def cut(data: bytes, frame_size: int) -> list[list[bytes]]:
    """A page's data as blocks of frames (every frame ``frame_size`` octets,
    the page's last frame possibly shorter). An empty page is one 1-octet frame."""
    if not data:
        data = b"\x00"
    frames = [data[i:i + frame_size] for i in range(0, len(data), frame_size)]
    return [frames[i:i + FRAMES_PER_BLOCK] for i in range(0, len(frames), FRAMES_PER_BLOCK)]


@dataclass
class TxBlock:
    """A block the sender is delivering: what is left to (re)send, and the PPR count."""

    frames: list[bytes]
    pending: set[int] = field(default_factory=set)   # frame numbers to send next time
    pprs: int = 0

    def __post_init__(self) -> None:
        if not self.pending:
            self.pending = set(range(len(self.frames)))

    def hdlc(self) -> tuple[bytes, ...]:
        """FCD frames for the pending frame numbers, then RCP three times (T.30 §A.3)."""
        out = [F.fcd(n, self.frames[n]) for n in sorted(self.pending)]
        return tuple(out) + (F.RCP_FRAME,) * 3

    def on_ppr(self, missing: set[int]) -> None:
        valid = {n for n in missing if n < len(self.frames)}
        self.pprs += 1
        self.pending = valid or set(range(len(self.frames)))


class RxBlock:
    """The frames of the current block as they arrive (FCD frames with good FCS)."""

    def __init__(self, max_frame_size: int = 256):
        self.max_frame_size = max_frame_size
        self.frames: dict[int, bytes] = {}
        self.rcp = False

    def add(self, frame: bytes) -> None:
        """Take one high-speed HDLC frame (address, control, FCF, FIF)."""
        if len(frame) < 3:
            raise RemoteProtocolError("ECM frame shorter than 3 octets")
        fcf = frame[2]
        if fcf == int(F.FCF.RCP):
            self.rcp = True
            return
        if fcf != int(F.FCF.FCD):
            raise RemoteProtocolError(f"ECM frame with FCF 0x{fcf:02X}, expected FCD or RCP (T.30 §A.3)")
        if len(frame) < 5:
            raise RemoteProtocolError("FCD frame without data")
        data = frame[4:]
        if len(data) > self.max_frame_size:
            raise RemoteProtocolError(f"FCD frame of {len(data)} octets, more than {self.max_frame_size}")
        self.frames[frame[3]] = bytes(data)

    def missing(self, count: int) -> set[int]:
        return {n for n in range(count) if n not in self.frames}

    def data(self, count: int) -> bytes:
        """The block's data, frames 0..count-1 in order (a missing one is skipped)."""
        return b"".join(self.frames.get(n, b"") for n in range(count))

    def clear(self) -> None:
        self.frames.clear()
        self.rcp = False


@dataclass
class RxEcm:
    """The ECM page being received (T.30 §A.4): its blocks so far and the current one."""

    block: RxBlock = field(default_factory=RxBlock)   # the current block's frames
    data: list[bytes] = field(default_factory=list)   # the page's completed blocks
    open: bool = False                 # the page's first burst has begun
    hole: bool = False                 # the page lost a block to EOR/ERR
    last_ack: tuple[int, int] | None = None            # (page, block) we confirmed last
    last_pps: tuple[int, int, int, int] | None = None  # the current block's PPS (fcf2 ... count)
    eor: tuple[int, int, bytes, int] | None = None     # a block set aside after EOR
    retransmitted: int = 0             # frames asked for again (PPR) on this page
    held_pps: F.Frame | None = None    # a PPS answered RNR while hold() is on
