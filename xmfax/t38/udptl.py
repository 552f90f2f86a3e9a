"""UDPTL (T.38 §9.1, Annex A UDPTLPacket): IFP packets in UDP datagrams, sans-IO.

A datagram carries one new (primary) IFP packet with its 16-bit sequence number,
and error-recovery material: either copies of the previous IFP packets
(*redundancy*, most recent first) or XOR parity over earlier packets (*FEC*).

FEC layout (T.38 Annex C; the arrangement asterisk-style gateways interoperate with):
a datagram with sequence number ``s`` and ``E`` fec-data entries, fec-npackets
``S`` (the span): entry ``m`` is the XOR of the IFP packets
``s + m - j*E`` for ``j = 1..S``, each zero-padded to the longest. A packet
lost among those is the XOR of the entry and the others; its true length is
found by decoding the IFP (IFP packets are self-delimiting).

:class:`UDPTLSender` numbers and packs, trimming error recovery so datagrams
stay within T38FaxMaxDatagram. :class:`UDPTLReceiver` unpacks, drops
duplicates and late packets, recovers losses, and delivers IFP packets in
sequence order, reporting what could not be recovered.
"""
from __future__ import annotations

from collections import Counter, OrderedDict
from dataclasses import dataclass

from ..errors import LocalProtocolError
from .config import EC_FEC, EC_NONE, EC_REDUNDANCY, T38Config
from .ifp import IFPDecodeError, decode_ifp_prefix

__all__ = ["UDPTLPacket", "encode_udptl", "decode_udptl", "UDPTLSender", "UDPTLReceiver", "UDPTLStats"]

_SEQ_MOD = 0x10000
_RESYNC_GAP = 512        # a jump larger than this is a restart of the sequence, not a loss
_HISTORY = 256           # received packets kept for FEC recovery


@dataclass(frozen=True, slots=True)
class UDPTLPacket:
    """A decoded UDPTL datagram. ``fec_npackets`` is None for redundancy."""

    seq: int
    primary: bytes
    secondary: tuple[bytes, ...] = ()      # redundancy: seq-1, seq-2, ...
    fec_npackets: int | None = None
    fec_data: tuple[bytes, ...] = ()


# --------------------------------------------------------------------------- PER helpers
def _put_length(out: bytearray, n: int) -> None:
    # X.691 §10.9.3.6-7: an unconstrained length determinant, octet-aligned
    if n < 0x80:
        out.append(n)
    elif n < 0x4000:
        out.append(0x80 | (n >> 8))
        out.append(n & 0xFF)
    else:
        raise LocalProtocolError(f"UDPTL item of {n} octets: fragmentation is not supported")


def _get_length(buf: bytes, pos: int) -> tuple[int, int]:
    if pos >= len(buf):
        raise IFPDecodeError("truncated", f"length determinant at octet {pos}")
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    if b < 0xC0:
        if pos + 1 >= len(buf):
            raise IFPDecodeError("truncated", f"length determinant at octet {pos}")
        return ((b & 0x3F) << 8) | buf[pos + 1], pos + 2
    raise IFPDecodeError("fragmented", f"fragmented length determinant at octet {pos}")


def _get_octets(buf: bytes, pos: int) -> tuple[bytes, int]:
    n, pos = _get_length(buf, pos)
    end = pos + n
    if end > len(buf):
        raise IFPDecodeError("truncated", f"{n} octets at {pos} past the end ({len(buf)})")
    return buf[pos:end], end


def encode_udptl(packet: UDPTLPacket) -> bytes:
    """Encode one UDPTLPacket (aligned PER, T.38 Annex A)."""
    out = bytearray(packet.seq.to_bytes(2, "big"))
    _put_length(out, len(packet.primary))
    out += packet.primary
    if packet.fec_npackets is None:
        out.append(0x00)                       # choice: secondary-ifp-packets
        _put_length(out, len(packet.secondary))
        for s in packet.secondary:
            _put_length(out, len(s))
            out += s
    else:
        out.append(0x80)                       # choice: fec-info
        n = packet.fec_npackets
        nb = max(1, (n.bit_length() + 8) // 8)  # unconstrained INTEGER: 2's complement, minimal
        out.append(nb)
        out += n.to_bytes(nb, "big", signed=True)
        _put_length(out, len(packet.fec_data))
        for f in packet.fec_data:
            _put_length(out, len(f))
            out += f
    return bytes(out)


def decode_udptl(buf: bytes) -> UDPTLPacket:
    """Decode one datagram. Raises IFPDecodeError with a short ``reason``."""
    if len(buf) < 4:
        raise IFPDecodeError("short datagram", f"{len(buf)} octets")
    seq = (buf[0] << 8) | buf[1]
    primary, pos = _get_octets(buf, 2)
    if not primary:
        raise IFPDecodeError("empty primary", "primary IFP packet of 0 octets")
    if pos >= len(buf):
        raise IFPDecodeError("truncated", "no error-recovery")
    choice = buf[pos]
    pos += 1
    if choice & 0x7F:
        raise IFPDecodeError("bad error-recovery", f"padding bits set in {choice:#04x}")
    if not choice & 0x80:
        count, pos = _get_length(buf, pos)
        if count > len(buf):
            raise IFPDecodeError("bad secondary count", f"{count}")
        secondary = []
        for _ in range(count):
            item, pos = _get_octets(buf, pos)
            secondary.append(item)
        result = UDPTLPacket(seq, primary, tuple(secondary))
    else:
        nlen, pos = _get_length(buf, pos)
        if not 1 <= nlen <= 4 or pos + nlen > len(buf):
            raise IFPDecodeError("bad fec-npackets", f"{nlen} octets")
        npackets = int.from_bytes(buf[pos:pos + nlen], "big", signed=True)
        pos += nlen
        count, pos = _get_length(buf, pos)
        if count > len(buf):
            raise IFPDecodeError("bad fec count", f"{count}")
        fec = []
        for _ in range(count):
            item, pos = _get_octets(buf, pos)
            fec.append(item)
        result = UDPTLPacket(seq, primary, fec_npackets=npackets, fec_data=tuple(fec))
    if pos != len(buf):
        raise IFPDecodeError("trailing octets", f"datagram is {len(buf)} octets, UDPTL ends at {pos}")
    return result


def _xor(parts: list[bytes]) -> bytes:
    size = max(map(len, parts), default=0)
    acc = 0
    for p in parts:
        acc ^= int.from_bytes(p.ljust(size, b"\0"), "big")
    return acc.to_bytes(size, "big")


# --------------------------------------------------------------------------- sender
class UDPTLSender:
    """Numbers IFP packets and packs them into datagrams with error recovery."""

    def __init__(self, config: T38Config | None = None, first_seq: int = 0):
        self.config = config or T38Config()
        self.seq = first_seq & 0xFFFF
        self._history: list[bytes] = []   # most recent last
        self.trimmed = 0                  # datagrams whose error recovery was trimmed to fit

    def pack(self, ifp: bytes, redundancy: int | None = None) -> bytes:
        """The datagram carrying ``ifp`` as the next primary packet.

        ``redundancy`` overrides the configured redundancy depth for this one
        (e.g. deeper right after an indicator). Raises LocalProtocolError if the
        primary alone does not fit in max_datagram."""
        cfg = self.config
        limit = cfg.max_datagram
        seq = self.seq
        hist = self._history
        if len(ifp) + 5 > limit:
            raise LocalProtocolError(f"IFP packet of {len(ifp)} octets does not fit T38FaxMaxDatagram {limit}")
        if cfg.udp_ec == EC_FEC:
            data = self._pack_fec(seq, ifp, limit)
        else:
            depth = 0 if cfg.udp_ec == EC_NONE else (cfg.redundancy_depth if redundancy is None else redundancy)
            depth = min(depth, len(hist))
            secondary = hist[len(hist) - depth:][::-1]
            data = encode_udptl(UDPTLPacket(seq, ifp, tuple(secondary)))
            while len(data) > limit and secondary:
                secondary.pop()          # drop the oldest copy first (T.38 §9.1.4.1 leaves this to us)
                self.trimmed += 1
                data = encode_udptl(UDPTLPacket(seq, ifp, tuple(secondary)))
        hist.append(ifp)
        if len(hist) > 64:
            del hist[:-32]
        self.seq = (seq + 1) & 0xFFFF
        return data

    def _pack_fec(self, seq: int, ifp: bytes, limit: int) -> bytes:
        cfg = self.config
        span = cfg.fec_span
        entries = min(cfg.fec_entries, len(self._history) // span)
        while True:
            fec = []
            hist = self._history
            for m in range(entries):
                parts = [hist[len(hist) - j * entries + m] for j in range(1, span + 1)]
                fec.append(_xor(parts))
            data = encode_udptl(UDPTLPacket(seq, ifp, fec_npackets=span, fec_data=tuple(fec)))
            if len(data) <= limit or entries == 0:
                return data
            entries -= 1
            self.trimmed += 1


# --------------------------------------------------------------------------- receiver
@dataclass
class UDPTLStats:
    datagrams: int = 0
    delivered: int = 0
    duplicates: int = 0
    late: int = 0
    recovered_redundancy: int = 0
    recovered_fec: int = 0
    lost: int = 0
    resyncs: int = 0
    malformed: Counter = None  # reason -> count

    def __post_init__(self):
        if self.malformed is None:
            self.malformed = Counter()


class UDPTLReceiver:
    """Receives datagrams; delivers IFP packets in sequence order.

    ``receive(datagram)`` returns a list of ``(seq, ifp_bytes)``; ``ifp_bytes``
    is None for a packet that was lost and could not be recovered (the
    terminal uses that to mark a frame bad or a page gap). A malformed
    datagram is counted in ``stats.malformed[reason]`` and yields nothing;
    it never raises.
    """

    def __init__(self, version: int = 0):
        self.version = version
        self.next_seq: int | None = None
        self.stats = UDPTLStats()
        self._have: OrderedDict[int, bytes] = OrderedDict()   # absolute seq -> ifp (recent)
        self._fec: list[tuple[int, int, tuple[bytes, ...]]] = []  # (abs seq, span, entries)
        self._base = 0            # absolute sequence = _base + 16-bit seq (handles wrap)

    def _absolute(self, seq: int) -> int:
        if self.next_seq is None:
            return seq
        ref = self.next_seq
        cand = (ref & ~0xFFFF) | seq
        if cand - ref > 0x8000:
            cand -= _SEQ_MOD
        elif ref - cand > 0x8000:
            cand += _SEQ_MOD
        return cand

    def receive(self, datagram: bytes) -> list[tuple[int, bytes | None]]:
        st = self.stats
        st.datagrams += 1
        pkt = None
        n = len(datagram)
        if self.next_seq is not None and n >= 5 and datagram[2] < 0x80:
            # fast path: the expected packet with a short primary and redundancy;
            # its secondary copies are not needed, so they are not parsed
            plen = datagram[2]
            seq16 = (datagram[0] << 8) | datagram[1]
            if (seq16 == self.next_seq & 0xFFFF and plen and 3 + plen < n
                    and datagram[3 + plen] == 0 and self.next_seq not in self._have):
                seq = self.next_seq
                self._have[seq] = datagram[3:3 + plen]
                self.next_seq = seq + 1
                st.delivered += 1
                if len(self._have) > _HISTORY:
                    self._have.popitem(last=False)
                return [(seq16, self._have[seq])]
        try:
            pkt = decode_udptl(datagram)
        except IFPDecodeError as exc:
            st.malformed[exc.reason] += 1
            return []
        seq = self._absolute(pkt.seq)
        if self.next_seq is None:
            self.next_seq = seq
        elif abs(seq - self.next_seq) > _RESYNC_GAP:
            # the far end restarted its numbering (or RTP strayed here): start again
            st.resyncs += 1
            self._have.clear()
            self._fec.clear()
            self.next_seq = seq
        nxt = self.next_seq
        if seq < nxt:
            if seq in self._have:
                st.duplicates += 1
            else:
                st.late += 1
            return []
        have = self._have
        if seq in have:
            st.duplicates += 1
            return []
        have[seq] = pkt.primary
        if pkt.fec_npackets is None:
            for i, sec in enumerate(pkt.secondary):
                s = seq - 1 - i
                if s < nxt:
                    break
                if s not in have:
                    have[s] = sec
                    st.recovered_redundancy += 1
        else:
            if 1 <= pkt.fec_npackets <= 32 and pkt.fec_data:
                self._fec.append((seq, pkt.fec_npackets, pkt.fec_data))
                if len(self._fec) > 16:
                    del self._fec[0]
            self._recover_fec(nxt)
        out: list[tuple[int, bytes | None]] = []
        s = nxt
        while s <= seq:
            ifp = have.get(s)
            if ifp is None:
                st.lost += 1
            else:
                st.delivered += 1
            out.append((s & 0xFFFF, ifp))
            s += 1
        self.next_seq = seq + 1
        while len(have) > _HISTORY:
            have.popitem(last=False)
        return out

    def _recover_fec(self, nxt: int) -> None:
        have = self._have
        progress = True
        while progress:
            progress = False
            for seq, span, entries in self._fec:
                n = len(entries)
                for m, parity in enumerate(entries):
                    covered = [seq + m - j * n for j in range(1, span + 1)]
                    missing = [c for c in covered if c not in have]
                    if len(missing) != 1 or missing[0] < nxt:
                        continue
                    parts = [parity] + [have[c] for c in covered if c in have]
                    raw = _xor(parts)
                    try:
                        _, length = decode_ifp_prefix(raw, self.version)
                    except IFPDecodeError:
                        self.stats.malformed["fec unrecoverable"] += 1
                        continue
                    have[missing[0]] = raw[:length]
                    self.stats.recovered_fec += 1
                    progress = True
