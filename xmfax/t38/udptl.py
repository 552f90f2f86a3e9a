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


def decode_udptl(buf: bytes, max_entries: int | None = None) -> UDPTLPacket:
    """Decode one datagram. Raises IFPDecodeError with a short ``reason``.

    ``max_entries`` bounds the secondary-ifp-packets and fec-data counts: a datagram
    claiming more is refused before any of them is read."""
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
        if max_entries is not None and count > max_entries:
            raise IFPDecodeError("too many secondary packets", f"{count} > {max_entries}")
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
        if max_entries is not None and count > max_entries:
            raise IFPDecodeError("too many fec entries", f"{count} > {max_entries}")
        fec = []
        for _ in range(count):
            item, pos = _get_octets(buf, pos)
            fec.append(item)
        result = UDPTLPacket(seq, primary, fec_npackets=npackets, fec_data=tuple(fec))
    if pos != len(buf):
        raise IFPDecodeError("trailing octets", f"datagram is {len(buf)} octets, UDPTL ends at {pos}")
    return result


def _item(ifp: bytes) -> bytes | None:
    """``ifp`` behind its one-octet length determinant, or None if it needs two."""
    return bytes((len(ifp),)) + ifp if len(ifp) < 0x80 else None


def _redundancy_datagram(seq: int, item: bytes | None, secondary: list[bytes | None]) -> bytes | None:
    """encode_udptl(UDPTLPacket(seq, ifp, secondary ifps)) from the packets' _item()s
    (each IFP packet is prefixed once, though it travels in up to depth + 1 datagrams);
    None when one of them, or the count, needs a two-octet length (encode_udptl then)."""
    if item is None or len(secondary) >= 0x80 or None in secondary:
        return None
    return b"".join((bytes((seq >> 8, seq & 0xFF)), item, bytes((0, len(secondary))), *secondary))


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
        self._items: list[bytes | None] = []   # the same packets as _item()s
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
            cut = len(hist) - min(depth, len(hist))
            item = _item(ifp)
            data = _redundancy_datagram(seq, item, self._items[cut:][::-1])
            if data is None or len(data) > limit:
                secondary = hist[cut:][::-1]
                if data is None:
                    data = encode_udptl(UDPTLPacket(seq, ifp, tuple(secondary)))
                while len(data) > limit and secondary:
                    secondary.pop()      # drop the oldest copy first (T.38 §9.1.4.1 leaves this to us)
                    self.trimmed += 1
                    data = encode_udptl(UDPTLPacket(seq, ifp, tuple(secondary)))
        hist.append(ifp)
        self._items.append(item if cfg.udp_ec != EC_FEC else _item(ifp))
        keep = max(32, cfg.fec_span * cfg.fec_entries)   # FEC covers span * entries packets back
        if len(hist) > 2 * keep:
            del hist[:-keep]
            del self._items[:-keep]
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
# What the receiver accepts (T.38's ASN.1, Annex A, leaves fec-npackets and both SEQUENCE OF
# sizes unconstrained, so these are local bounds; each is at least what UDPTLSender can send):
MAX_REDUNDANCY = 32      # secondary-ifp-packets entries in one datagram
MAX_FEC_ENTRIES = 16     # fec-data entries in one datagram
MAX_FEC_SPAN = 16        # fec-npackets
_JUMP = 32               # a packet further ahead than this needs a second one to confirm it
_WINDOW = 512            # a confirmed jump up to this far is a loss; further, a restart (resync)
_CONFIRM = 4             # the confirming packet follows the first within this many numbers
_KEEP = 256              # IFP packets kept for recovery
_SEEN = 1024             # (number -> hash of IFP) remembered to recognise stale and repeated packets
_STALE_MIN = 12          # IFP packets this long are recognised by content under any number;
                         # shorter ones (indicators, single V.21 octets) recur in any stream


@dataclass
class UDPTLStats:
    datagrams: int = 0
    delivered: int = 0
    duplicates: int = 0          # a packet already received (same number and content)
    late: int = 0                # behind the stream (already reported lost, or reordered too far)
    stale: int = 0               # far from the stream and a repeat of a packet already received
    held: int = 0                # far from the stream, waiting for a second packet to confirm it
    recovered_redundancy: int = 0
    recovered_fec: int = 0
    lost: int = 0                # packets reported lost (None); a resync counts one
    resyncs: int = 0
    malformed: Counter = None    # reason -> count (undecodable or past the bounds above)

    def __post_init__(self):
        if self.malformed is None:
            self.malformed = Counter()


class UDPTLReceiver:
    """Receives datagrams; delivers IFP packets in sequence order, each at most once.

    ``receive(datagram)`` returns a list of ``(seq, ifp_bytes)``; ``ifp_bytes``
    is None for a packet that was lost and could not be recovered (the
    terminal uses that to mark a frame bad or a page gap). A malformed
    datagram, or one past the bounds (MAX_REDUNDANCY, MAX_FEC_ENTRIES,
    MAX_FEC_SPAN), is counted in ``stats.malformed[reason]`` and yields
    nothing; it never raises.

    Sequence numbers (16 bits, wrapping; compared modulo 2**16):
      * the expected packet, or one up to _JUMP ahead: accepted; the packets
        skipped are recovered from this datagram's redundancy/FEC or reported lost;
      * behind the stream: dropped (``late``, or ``duplicates`` if it is a copy).
        There is no jitter buffer: a packet overtaken by a later one is
        recovered from that one's redundancy/FEC if it carries it, else
        reported lost when the later one arrives; it is never delivered late;
      * further ahead, or far behind (> _WINDOW): held until a second packet
        within _CONFIRM after it confirms the new position. Then a jump up to
        _WINDOW ahead is a loss burst (each packet reported lost); anything
        else is a restart of the far end's numbering (``resyncs``), reported
        as one lost packet, since nothing is known of what came in between.
        A packet far from the stream that repeats one of the last _SEEN received
        (same number and content; or, if it is _STALE_MIN octets or more, same
        content under any number) is ``stale`` and never held; nor is a pair
        that repeats two received packets the same distance apart. So delayed
        copies from before a resync, or replays with shifted numbers, never pull
        the stream over, and their data is never delivered twice. (A genuine restart
        whose first packets repeat recent ones is followed a few packets later;
        the packets dropped meanwhile are reported lost.)
    """

    def __init__(self, version: int = 0, *, max_redundancy: int = MAX_REDUNDANCY,
                 max_fec_entries: int = MAX_FEC_ENTRIES, max_fec_span: int = MAX_FEC_SPAN):
        self.version = version
        self.max_redundancy = max_redundancy
        self.max_fec_entries = max_fec_entries
        self.max_fec_span = max_fec_span
        self.next_seq: int | None = None      # 16-bit number of the packet expected next
        self.stats = UDPTLStats()
        self._have: OrderedDict[int, bytes] = OrderedDict()   # seq -> ifp (the last _KEEP)
        self._seen: OrderedDict[int, int] = OrderedDict()     # seq -> hash(ifp) (the last _SEEN)
        self._by_hash: dict[int, set[int]] = {}               # hash(ifp) -> its numbers, over _seen
        self._held: tuple[int, UDPTLPacket] | None = None     # a far packet awaiting confirmation
        self._far_dropped = 0     # far packets dropped (stale or held) since one was accepted

    def receive(self, datagram: bytes) -> list[tuple[int, bytes | None]]:
        st = self.stats
        st.datagrams += 1
        nxt = self.next_seq
        n = len(datagram)
        if nxt is not None and n >= 5 and datagram[2] < 0x80:
            # fast path: the expected packet with a short primary and redundancy; its
            # secondary copies are not needed, so they are only walked over (the datagram
            # must still be well-formed and within bounds, or it would take the slot of
            # the real packet)
            plen = datagram[2]
            if (((datagram[0] << 8) | datagram[1]) == nxt and plen and 3 + plen < n
                    and datagram[3 + plen] == 0 and self._short_redundancy_ok(datagram, 4 + plen)):
                ifp = datagram[3:3 + plen]
                self._held = None
                self._far_dropped = 0
                self.next_seq = (nxt + 1) & 0xFFFF
                self._keep(nxt, ifp)
                st.delivered += 1
                return [(nxt, ifp)]
        try:
            pkt = decode_udptl(datagram, max(self.max_redundancy, self.max_fec_entries))
        except IFPDecodeError as exc:
            st.malformed[exc.reason] += 1
            return []
        if pkt.fec_npackets is None:
            if len(pkt.secondary) > self.max_redundancy:
                st.malformed["too many secondary packets"] += 1
                return []
        elif not 0 <= pkt.fec_npackets <= self.max_fec_span:
            st.malformed["fec-npackets out of bounds"] += 1
            return []
        elif len(pkt.fec_data) > self.max_fec_entries:
            st.malformed["too many fec entries"] += 1
            return []
        seq = pkt.seq
        if nxt is None:                        # the first packet sets the stream's position
            nxt = self.next_seq = seq
        ahead = (seq - nxt) & 0xFFFF
        if ahead >= 0x8000:
            ahead -= _SEQ_MOD
        if 0 <= ahead <= _JUMP:
            self._held = None
            return self._accept(pkt, ahead)
        if -_WINDOW <= ahead < 0:
            if self._seen.get(seq) == hash(pkt.primary):
                st.duplicates += 1
            else:
                st.late += 1
            return []
        # far from the stream: a copy of a packet received lately (under any number: a
        # replay shifted in sequence, too) is never followed
        h = hash(pkt.primary)
        if self._seen.get(seq) == h or (len(pkt.primary) >= _STALE_MIN and h in self._by_hash):
            st.stale += 1
            self._far_dropped += 1
            return []
        held = self._held
        if held is None or not 1 <= (seq - held[0]) & 0xFFFF <= _CONFIRM:
            if held is None or held[0] != seq:
                self._held = (seq, pkt)
                st.held += 1
                self._far_dropped += 1
            return []
        # confirmed: a second packet just after the held one -- unless the two repeat two
        # received packets the same distance apart (a replay under shifted numbers)
        self._held = None
        first = held[1]
        d = (seq - first.seq) & 0xFFFF
        later = self._by_hash.get(h, ())
        if any((t + d) & 0xFFFF in later for t in self._by_hash.get(hash(first.primary), ())):
            st.stale += 2
            self._far_dropped += 1
            return []
        ahead_first = (first.seq - nxt) & 0xFFFF
        if ahead_first <= _WINDOW:
            out = self._accept(first, ahead_first)       # a burst of losses, each reported
        else:
            # a restart of the numbering. If the first packet's redundancy holds the last
            # packet delivered, the stream is continuous: the copies before it are the
            # packets in between. Else the packets dropped while it was unconfirmed (at
            # least one: nothing is known of what came between) are reported lost.
            st.resyncs += 1
            last = self._have.get((nxt - 1) & 0xFFFF)
            bridge = None
            if last is not None and first.fec_npackets is None:
                for i, sec in enumerate(first.secondary):
                    if sec == last:
                        bridge = first.secondary[:i][::-1]
                        break
            self._have.clear()
            if bridge is not None:
                n = len(bridge)
                st.recovered_redundancy += n
                st.delivered += n
                out = []
                for k, ifp in enumerate(bridge):
                    s = (first.seq - n + k) & 0xFFFF
                    self._keep(s, ifp)
                    out.append((s, ifp))
            else:
                n = max(1, min(self._far_dropped - 1, _WINDOW))
                st.lost += n
                out = [((first.seq - n + k) & 0xFFFF, None) for k in range(n)]
            self.next_seq = first.seq
            out += self._accept(first, 0)
        return out + self._accept(pkt, (seq - self.next_seq) & 0xFFFF)

    def _short_redundancy_ok(self, d: bytes, pos: int) -> bool:
        """Whether ``d`` from ``pos`` is a secondary-ifp-packets count within bounds and
        that many short items ending exactly at the end (else the full decoder decides)."""
        n = len(d)
        if pos >= n or d[pos] > self.max_redundancy:
            return False
        count = d[pos]
        pos += 1
        for _ in range(count):
            if pos >= n or d[pos] >= 0x80:
                return False
            pos += 1 + d[pos]
        return pos == n

    def _keep(self, seq: int, ifp: bytes) -> None:
        have, seen, by_hash = self._have, self._seen, self._by_hash
        if seq in have:                 # only after a wrap or a resync: keep oldest-first order
            have.move_to_end(seq)
        have[seq] = ifp
        if len(have) > _KEEP:
            have.popitem(last=False)
        old = seen.get(seq)
        if old is not None:
            self._forget(old, seq)
            seen.move_to_end(seq)
        h = hash(ifp)
        seen[seq] = h
        nums = by_hash.get(h)
        if nums is None:
            by_hash[h] = {seq}
        else:
            nums.add(seq)
        if len(seen) > _SEEN:
            s, old = seen.popitem(last=False)
            self._forget(old, s)

    def _forget(self, h: int, seq: int) -> None:
        nums = self._by_hash[h]
        nums.discard(seq)
        if not nums:
            del self._by_hash[h]

    def _accept(self, pkt: UDPTLPacket, ahead: int) -> list[tuple[int, bytes | None]]:
        """Deliver the ``ahead`` packets before ``pkt`` (recovered or lost), then ``pkt``."""
        st = self.stats
        nxt = self.next_seq
        fill: dict[int, bytes] = {}            # offset from nxt -> recovered ifp
        if ahead:
            if pkt.fec_npackets is None:
                for i, sec in enumerate(pkt.secondary[:ahead]):
                    fill[ahead - 1 - i] = sec
                st.recovered_redundancy += len(fill)
            elif pkt.fec_npackets and pkt.fec_data:
                self._recover_fec(pkt, ahead, fill)
        out: list[tuple[int, bytes | None]] = []
        for k in range(ahead):
            s = (nxt + k) & 0xFFFF
            ifp = fill.get(k)
            if ifp is None:
                st.lost += 1
            else:
                st.delivered += 1
                self._keep(s, ifp)
            out.append((s, ifp))
        seq = pkt.seq
        self._keep(seq, pkt.primary)
        self._far_dropped = 0
        st.delivered += 1
        out.append((seq, pkt.primary))
        self.next_seq = (seq + 1) & 0xFFFF
        return out

    def _recover_fec(self, pkt: UDPTLPacket, ahead: int, fill: dict[int, bytes]) -> None:
        # Entry m covers the packets seq + m - j*E, j = 1..span (see the module docstring);
        # an entry covering exactly one packet of the gap, and every other packet it covers
        # kept, gives that packet. Entries cover disjoint packets, so one pass is all there is:
        # at most E * span look-ups and E XORs, bounded by MAX_FEC_ENTRIES * MAX_FEC_SPAN.
        entries = pkt.fec_data
        n = len(entries)
        have = self._have
        nxt = self.next_seq
        for m, parity in enumerate(entries):
            parts = [parity]
            gap_at = None
            for j in range(1, pkt.fec_npackets + 1):
                k = ahead + m - j * n           # offset of the covered packet from nxt
                if 0 <= k < ahead:
                    if gap_at is not None:
                        break                   # two packets of the gap: not recoverable
                    gap_at = k
                else:
                    ifp = have.get((nxt + k) & 0xFFFF) if k < 0 else None
                    if ifp is None:
                        break                   # an older packet was lost, or is too old
                    parts.append(ifp)
            else:
                if gap_at is None:
                    continue
                raw = _xor(parts)
                try:
                    _, length = decode_ifp_prefix(raw, self.version)
                except IFPDecodeError:
                    self.stats.malformed["fec unrecoverable"] += 1
                    continue
                fill[gap_at] = raw[:length]
                self.stats.recovered_fec += 1
