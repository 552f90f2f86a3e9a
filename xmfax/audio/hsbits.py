"""The bits around the audio terminal's high-speed modems (xmfax.audio.terminal): the HDLC
framing of what is sent at high speed (ECM, T.30 Annex A) and the deframing of what is
received, through the C HDLC (native/audio/hdlc.c), and the raw data (TCF, a non-ECM page)
held back until the turn-off at the end of a carrier can be cut away.
"""
from __future__ import annotations

import numpy as np

from ._c import ffi, lib, u8_in, u8_out

# The end of a high-speed transmission: the modems send scrambled ones (which descramble
# to ones) before the carrier stops, and a receiver turns the fading carrier into a few tens
# of ms of random bits before its detector drops. Raw data (TCF, a non-ECM page) is held
# back HOLD_MS, and at carrier down cut where the last run of TURNOFF_ONES ones begins: no
# T.4 page ends that way (it ends with RTC), and TCF is zeros. xmfax's judge of TCF
# (xmfax.t30.tcf) counts junk that a zero octet follows, and the fading carrier makes both.
HOLD_MS = 150
# Raw data goes to T.30 in pieces of at least BATCH_MS (then the held back rest at carrier
# down), not a 20 ms block at a time: T.30 decodes a page per DataReceived, and its cost is
# mostly per call. The data, and where it ends, are the same.
BATCH_MS = 100
MAX_FRAME = 2048       # octets of an HDLC frame without its FCS (an ECM frame is 4 + 256)
_RX_FRAME = 1          # xm_rx_event.type of a frame (native/audio/hdlc.h XM_RX_FRAME)
TURNOFF_ONES = 32


def _turnoff_start(bits: np.ndarray, min_run: int = TURNOFF_ONES) -> int | None:
    """Where the last run of at least ``min_run`` one bits begins (None: no such run)."""
    b = np.concatenate([[0], bits.astype(np.int8), [0]])
    d = np.diff(b)
    starts = np.nonzero(d == 1)[0]
    ends = np.nonzero(d == -1)[0]
    long = np.nonzero(ends - starts >= min_run)[0]
    return int(starts[long[-1]]) if len(long) else None


def _hdlc_bits(frames, preamble_flags: int, closing_flags: int) -> np.ndarray:
    """The line bits of ``frames`` framed by the C HDLC transmitter (flags, FCS, zero-bit
    insertion): ``preamble_flags`` flags, the frames, ``closing_flags`` flags."""
    h = ffi.gc(lib.xm_hdlc_tx_new(MAX_FRAME, 8 * MAX_FRAME), lib.xm_hdlc_tx_free)
    if h == ffi.NULL:
        raise MemoryError("HDLC transmitter: cannot allocate")
    frames = [bytes(f) for f in frames]
    for f in frames:
        if not 1 <= len(f) <= MAX_FRAME:
            raise ValueError(f"an HDLC frame of {len(f)} octets (1..{MAX_FRAME})")
    buf = np.empty(8192, np.uint8)
    out = []
    lib.xm_hdlc_tx_flags(h, preamble_flags)
    i, closed = 0, False
    while True:
        # the transmitter's queue is bounded: queue what fits, take its bits, go on
        while i < len(frames) and lib.xm_hdlc_tx_frame(h, frames[i], len(frames[i]), 0) == 0:
            i += 1
        if i == len(frames) and not closed:
            closed = lib.xm_hdlc_tx_flags(h, closing_flags) == 0
        n = int(lib.xm_hdlc_tx_get_bits(h, u8_out(buf), len(buf)))
        out.append(buf[:n].copy())
        if n < len(buf) and closed:
            return np.concatenate(out)


class _Deframer:
    """The C HDLC receiver over a bit stream: (frame, fcs_ok) values as frames complete."""

    CHUNK = 96       # bits put in between reads: fewer events than its 16 slots can hold

    def __init__(self):
        h = lib.xm_hdlc_rx_new(MAX_FRAME, 3)
        if h == ffi.NULL:
            raise MemoryError("HDLC receiver: cannot allocate")
        self._h = ffi.gc(h, lib.xm_hdlc_rx_free)
        self._ev = ffi.new("xm_rx_event *")
        self._buf = ffi.new("uint8_t[]", MAX_FRAME + 2)

    def feed(self, bits: np.ndarray) -> list[tuple[bytes, bool]]:
        out = []
        h, ev, buf = self._h, self._ev, self._buf
        bits = np.ascontiguousarray(bits, dtype=np.uint8)
        n = len(bits)
        ptr = u8_in(bits)
        put, nxt, cap = lib.xm_hdlc_rx_put_bits, lib.xm_hdlc_rx_next, len(buf)
        for k in range(0, n, self.CHUNK):
            put(h, ptr + k, min(self.CHUNK, n - k))
            while nxt(h, ev, buf, cap):
                if ev.type == _RX_FRAME:
                    out.append((bytes(ffi.buffer(buf, ev.len)), bool(ev.ok)))
        return out


class _RawData:
    """The raw data bits (TCF, a non-ECM page) received and not delivered yet. The last
    ``keep`` bits (HOLD_MS) are held back; the whole octets before them go out once there
    are at least ``batch`` bits of them (BATCH_MS). At carrier down, the held bits are cut where the turn-off begins (the last run
    of TURNOFF_ONES ones) and the rest goes out, a last partial octet padded with ones."""

    def __init__(self, keep: int, batch: int = 8):
        self.keep = keep
        self.batch = max(8, batch)           # the fewest bits add() lets go at once
        self._buf = np.empty(keep + batch + 4096, np.uint8)
        self._n = 0                          # bits in _buf: a partial octet, then the held

    def clear(self) -> None:
        self._n = 0

    def add(self, bits: np.ndarray) -> bytes:
        """Take ``bits``; return the octets now ready (b"" if none)."""
        n, k = self._n, len(bits)
        if n + k > len(self._buf):
            grown = np.empty(2 * (n + k), np.uint8)
            grown[:n] = self._buf[:n]
            self._buf = grown
        buf = self._buf
        buf[n:n + k] = bits
        n += k
        ready = (n - self.keep) // 8 * 8
        if ready < self.batch:
            self._n = n
            return b""
        data = np.packbits(buf[:ready], bitorder="little").tobytes()
        buf[:n - ready] = buf[ready:n]       # (numpy copies overlapping ranges correctly)
        self._n = n - ready
        return data

    def flush(self) -> list[bytes]:
        """The rest at carrier down: the whole octets, then the last one padded (each
        as its own delivery; either may be absent)."""
        n, self._n = self._n, 0
        held = min(n, self.keep)             # before them: under 8 bits of a partial octet
        cut = _turnoff_start(self._buf[n - held:n]) if held else None
        bits = self._buf[:n if cut is None else n - held + cut]
        whole = len(bits) // 8 * 8
        out = []
        if whole:
            out.append(np.packbits(bits[:whole], bitorder="little").tobytes())
        if len(bits) > whole:
            pad = np.concatenate([bits[whole:], np.ones(8 - (len(bits) - whole), np.uint8)])
            out.append(np.packbits(pad, bitorder="little").tobytes())
        return out


def _lsb_bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(bytes(data), np.uint8), bitorder="little")
