"""RTP for fax audio (RFC 3550, RTP/AVP of RFC 3551): G.711 PCMU/PCMA, sans-IO.

    sender = RTPSender(RTPConfig(law="ulaw"))
    for datagram in sender.send(codes):              # G.711 code bytes, any amount
        sock.send(datagram)                          # (the driver's job: drivers/rtp.py)

    receiver = RTPReceiver(RTPConfig(law="ulaw"), now)
    receiver.receive(datagram, now)                  # whenever one arrives
    codes = receiver.play(now)                       # every tick: the codes due by ``now``
    receiver.events()                                # TelephoneEvent, SourceChanged
    receiver.stats                                   # RTPStats: lost, late, duplicate, ...

Fax over G.711 wants the line as it was sent, sample for sample, at a steady rate. So the
receiver's jitter buffer is FIXED: the first packet of a stream is played ``jitter_depth``
after it arrives, and from then on the play-out follows the RTP timestamps exactly, at 8000
samples a second of the caller's clock. Nothing is time-stretched, nothing is concealed: a
sample no packet brought is played as the G.711 code of zero (silence), a packet that comes
after its time was played is dropped (``late``), a duplicate is dropped, packets arriving out
of order are put back in place while their time is still ahead. A timestamp that leaves the
buffer's window (a jump by the sender), a sequence restart and a new SSRC re-anchor the
play-out after what is already buffered: the stream goes on, and the event is counted.

RFC 4733 telephone-event packets are recognised and passed up as events, never played;
comfort noise (RFC 3389, PT 13) is tolerated and played as silence (inventing noise would be
concealment). Nothing here does I/O or reads a clock: ``now`` (seconds, any origin, never
going back) is passed in.
"""
from __future__ import annotations

import math
import random
import struct
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Literal

from xmfax.errors import RemoteProtocolError

__all__ = ["RTPError", "RTPPacket", "parse_rtp", "TelephoneEvent", "parse_telephone_event",
           "telephone_event_payload",
           "RTPConfig", "RTPSender", "RTPReceiver", "RTPStats", "SourceChanged", "Event",
           "PT_PCMU", "PT_PCMA", "PT_CN", "SILENCE", "RATE"]

Law = Literal["ulaw", "alaw"]

RATE = 8000                 # RFC 3551 §4.5.14: G.711 is sampled, and timestamped, at 8 kHz
PT_PCMU = 0                 # RFC 3551 Table 4
PT_PCMA = 8
PT_CN = 13                  # RFC 3389 comfort noise
LAW_PT: dict[str, int] = {"ulaw": PT_PCMU, "alaw": PT_PCMA}
PT_LAW: dict[int, str] = {PT_PCMU: "ulaw", PT_PCMA: "alaw"}
# G.711 §2: the code of a zero sample: µ-law +0 is 0xFF; A-law has no zero, 0xD5 is +8/32768
SILENCE: dict[str, int] = {"ulaw": 0xFF, "alaw": 0xD5}

_HEADER = struct.Struct("!BBHII")
_MOD16 = 1 << 16
_MOD32 = 1 << 32
# RFC 3550 §A.1: a jump of fewer than MAX_DROPOUT sequence numbers is the stream going on
# (with losses); one of at most MAX_MISORDER back is a late or duplicate packet; anything else
# is a restart, believed when the next packet follows it.
MAX_DROPOUT = 3000
MAX_MISORDER = 100
_SEEN_WINDOW = 1024         # sequence numbers remembered to recognise duplicates


def _signed32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - _MOD32 if x & 0x80000000 else x


class RTPError(RemoteProtocolError, ValueError):
    """A datagram that is not a well-formed RTP packet (or telephone-event payload)."""


# -- packets ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RTPPacket:
    """One RTP packet (RFC 3550 §5.1). ``extension`` is (profile, data) or None; ``data``
    is a multiple of 4 octets. ``padding`` is the number of padding octets (the count octet
    included) to append when encoding, or that were found when parsing."""
    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrc: tuple[int, ...] = ()
    extension: tuple[int, bytes] | None = None
    padding: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise ValueError(f"RTP payload type {self.payload_type} is not 0..127")
        for name, value, top in (("sequence", self.sequence, _MOD16),
                                 ("timestamp", self.timestamp, _MOD32), ("ssrc", self.ssrc, _MOD32)):
            if not 0 <= value < top:
                raise ValueError(f"RTP {name} {value} out of range 0..{top - 1}")
        if len(self.csrc) > 15:
            raise ValueError(f"at most 15 CSRCs, not {len(self.csrc)}")     # RFC 3550 §5.1 CC
        if any(not 0 <= c < _MOD32 for c in self.csrc):
            raise ValueError(f"CSRC out of range in {self.csrc}")
        if self.extension is not None:
            profile, data = self.extension
            if not 0 <= profile < _MOD16 or len(data) % 4 or len(data) // 4 >= _MOD16:
                raise ValueError("RTP header extension: profile is 16 bits, data whole 32-bit words")
        if not 0 <= self.padding <= 255:
            raise ValueError(f"RTP padding {self.padding} is not 0..255")

    def encode(self) -> bytes:
        """The packet's octets (RFC 3550 §5.1), version 2."""
        first = (2 << 6) | (0x20 if self.padding else 0) | (0x10 if self.extension else 0) | len(self.csrc)
        out = bytearray(_HEADER.pack(first, (0x80 if self.marker else 0) | self.payload_type,
                                     self.sequence, self.timestamp, self.ssrc))
        for c in self.csrc:
            out += c.to_bytes(4, "big")
        if self.extension is not None:                      # RFC 3550 §5.3.1
            profile, data = self.extension
            out += struct.pack("!HH", profile, len(data) // 4) + bytes(data)
        out += self.payload
        if self.padding:                                    # RFC 3550 §5.1 P: the last octet counts
            out += bytes(self.padding - 1) + bytes((self.padding,))
        return bytes(out)


def parse_rtp(data: bytes) -> RTPPacket:
    """Parse one RTP datagram (RFC 3550 §5.1); RTPError saying what is wrong otherwise."""
    data = bytes(data)
    if len(data) < 12:
        raise RTPError(f"RTP packet of {len(data)} octets: the fixed header needs 12")
    first, second, seq, ts, ssrc = _HEADER.unpack_from(data)
    if first >> 6 != 2:
        raise RTPError(f"RTP version {first >> 6}, not 2")
    cc = first & 0x0F
    pos = 12 + 4 * cc
    if pos > len(data):
        raise RTPError(f"RTP packet of {len(data)} octets too short for its {cc} CSRCs")
    csrc = tuple(int.from_bytes(data[12 + 4 * k:16 + 4 * k], "big") for k in range(cc))
    extension = None
    if first & 0x10:                                         # RFC 3550 §5.3.1
        if pos + 4 > len(data):
            raise RTPError("RTP header extension cut short (no room for its 4-octet header)")
        profile, words = struct.unpack_from("!HH", data, pos)
        end = pos + 4 + 4 * words
        if end > len(data):
            raise RTPError(f"RTP header extension of {words} words runs past the packet's end")
        extension = (profile, data[pos + 4:end])
        pos = end
    end = len(data)
    padding = 0
    if first & 0x20:
        padding = data[-1]
        if padding == 0 or padding > end - pos:              # the count includes itself
            raise RTPError(f"RTP padding count {padding} does not fit the {end - pos} octets "
                           "after the header")
        end -= padding
    return RTPPacket(second & 0x7F, seq, ts, ssrc, data[pos:end], bool(second & 0x80), csrc,
                     extension, padding)


class Event:
    """Base of what RTPReceiver.events() returns."""
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class TelephoneEvent(Event):
    """An RFC 4733 named event (a DTMF digit 0-15, or a fax tone: 32 ANS, 36 CNG ... §3.2).

    Reported once when it starts (``end`` False) and once when it ends (``end`` True, with
    its final duration); an event first seen by its end packet is reported once, ended.
    ``duration`` is in timestamp units (1/8000 s); ``volume`` is -dBm0 (0..63)."""
    event: int
    volume: int
    duration: int
    end: bool
    timestamp: int
    ssrc: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.event <= 255 or not 0 <= self.volume <= 63 or not 0 <= self.duration < _MOD16:
            raise ValueError(f"bad telephone event {self.event}/{self.volume}/{self.duration}")


def parse_telephone_event(payload: bytes, timestamp: int = 0, ssrc: int = 0) -> TelephoneEvent:
    """The first event block of a telephone-event payload (RFC 4733 §2.3)."""
    if len(payload) < 4:
        raise RTPError(f"telephone-event payload of {len(payload)} octets: it needs 4")
    event, flags, duration = struct.unpack_from("!BBH", payload)
    return TelephoneEvent(event, flags & 0x3F, duration, bool(flags & 0x80), timestamp, ssrc)


def telephone_event_payload(event: int, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    """An RFC 4733 §2.3 event block (for senders and tests)."""
    TelephoneEvent(event, volume, duration, end, 0)         # validates
    return struct.pack("!BBH", event, (0x80 if end else 0) | volume, duration)


# -- configuration and events ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RTPConfig:
    """One G.711 RTP stream. ``law`` (and the payload type, 0 or 8 unless SDP said otherwise)
    as offer/answer agreed; ``ptime`` 20 ms per packet (RFC 3551 §4.5: G.711's default);
    ``jitter_depth``: how long the first packet waits before it plays; ``max_ahead``: how far
    beyond that a packet may land before it counts as a timestamp jump; ``event_payload_type``:
    RFC 4733 telephone-event's dynamic PT (None: not negotiated).
    """
    law: Law = "ulaw"
    payload_type: int | None = None
    ptime: float = 0.020
    jitter_depth: float = 0.060
    max_ahead: float = 1.0
    event_payload_type: int | None = 101

    def __post_init__(self) -> None:
        if self.law not in LAW_PT:
            raise ValueError(f"law is 'ulaw' or 'alaw', not {self.law!r}")
        if self.payload_type is not None and not 0 <= self.payload_type <= 127:
            raise ValueError(f"payload type {self.payload_type} is not 0..127")
        if not 0.0 < self.ptime <= 0.2 or abs(self.ptime * RATE - round(self.ptime * RATE)) > 1e-6:
            raise ValueError(f"ptime {self.ptime} s is not a whole number of samples up to 200 ms")
        if not 0.0 <= self.jitter_depth <= 5.0 or not 0.0 < self.max_ahead <= 60.0:
            raise ValueError("jitter_depth is 0..5 s and max_ahead 0..60 s")
        if self.event_payload_type is not None and not 96 <= self.event_payload_type <= 127:
            raise ValueError(f"telephone-event PT {self.event_payload_type} is not dynamic (96..127)")

    @property
    def audio_pt(self) -> int:
        return LAW_PT[self.law] if self.payload_type is None else self.payload_type

    @property
    def samples_per_packet(self) -> int:
        return round(self.ptime * RATE)

    @property
    def silence(self) -> int:
        return SILENCE[self.law]

    def replace(self, **changes) -> "RTPConfig":
        return replace(self, **changes)


@dataclass(frozen=True, slots=True)
class SourceChanged(Event):
    """The stream's SSRC changed (a new source, or a sender that restarted): play-out was
    re-anchored after what was already buffered."""
    old_ssrc: int | None
    new_ssrc: int


# -- sender ----------------------------------------------------------------------------------

class RTPSender:
    """Packs G.711 codes into RTP packets of ``ptime`` (RFC 3550 §5.1, RFC 3551 §4.5.14).

    SSRC, first sequence number and first timestamp are random (RFC 3550 §5.1, §8.1) unless
    given; ``rng`` is any ``random.Random`` (a seeded one in tests). The first packet of a
    talkspurt carries the marker bit (RFC 3551 §4.1): the first packet sent, and the first
    after ``skip()`` (a pause in which nothing was sent while the timestamp ran on).
    """

    def __init__(self, config: RTPConfig | None = None, *, ssrc: int | None = None,
                 sequence: int | None = None, timestamp: int | None = None,
                 rng: random.Random | None = None) -> None:
        self.config = config or RTPConfig()
        rng = rng or random.SystemRandom()
        self.ssrc = rng.getrandbits(32) if ssrc is None else ssrc
        self.sequence = rng.getrandbits(16) if sequence is None else sequence
        self.timestamp = rng.getrandbits(32) if timestamp is None else timestamp
        RTPPacket(0, self.sequence, self.timestamp, self.ssrc)       # validates the three
        self._pending = bytearray()
        self._marker = True
        self.packets_sent = 0
        self.octets_sent = 0                 # payload octets (RTCP SR's count, RFC 3550 §6.4.1)

    def send(self, codes: bytes) -> list[bytes]:
        """Queue G.711 codes; the datagrams of every whole packet now ready."""
        self._pending += codes
        n = self.config.samples_per_packet
        out = []
        while len(self._pending) >= n:
            out.append(self._packet(bytes(self._pending[:n])))
            del self._pending[:n]
        return out

    def send_samples(self, samples) -> list[bytes]:
        """Linear int16 samples, G.711-coded (xmfax.audio.g711) then sent."""
        from xmfax.audio import g711
        return self.send(g711.encode(samples, self.config.law))

    def flush(self) -> list[bytes]:
        """The codes still queued, as one short packet (at the end of a stream)."""
        if not self._pending:
            return []
        out = [self._packet(bytes(self._pending))]
        self._pending.clear()
        return out

    @property
    def pending(self) -> int:
        """Codes queued towards the next packet."""
        return len(self._pending)

    def skip(self, samples: int) -> None:
        """A pause: ``samples`` of time pass unsent (what is queued is dropped with them);
        the next packet starts a talkspurt (marker) with the timestamp moved on."""
        if samples < 0:
            raise ValueError("cannot skip back in time")
        self.timestamp = (self.timestamp + len(self._pending) + samples) % _MOD32
        self._pending.clear()
        self._marker = True

    def _packet(self, payload: bytes) -> bytes:
        data = RTPPacket(self.config.audio_pt, self.sequence, self.timestamp, self.ssrc, payload,
                         self._marker).encode()
        self._marker = False
        self.sequence = (self.sequence + 1) % _MOD16
        self.timestamp = (self.timestamp + len(payload)) % _MOD32
        self.packets_sent += 1
        self.octets_sent += len(payload)
        return data


# -- receiver --------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RTPStats:
    """What a receiver saw (a snapshot). ``lost`` is RFC 3550 §A.3's expected minus received,
    summed over every source and restart; ``late``, ``duplicate`` and ``overflow`` packets were
    received but not played; ``jitter`` is §A.8's interarrival jitter in timestamp units
    (``jitter_seconds`` in seconds), over audio and comfort-noise packets."""
    received: int = 0            # valid packets of an understood payload type, duplicates too
    played_packets: int = 0      # audio packets put in the buffer
    lost: int = 0
    late: int = 0
    duplicate: int = 0
    reordered: int = 0           # arrived after a later sequence number (played or late)
    overflow: int = 0            # out-of-order packets beyond the buffer's window
    ssrc_changes: int = 0
    timestamp_jumps: int = 0     # re-anchored: the timestamp left the buffer's window
    sequence_restarts: int = 0   # RFC 3550 §A.1 restarts (a jump confirmed by the next packet)
    stale: int = 0               # from an SSRC that was replaced, within STALE_TIME
    telephone_events: int = 0    # event packets (RFC 4733)
    comfort_noise: int = 0       # CN packets (RFC 3389), played as silence
    transcoded: int = 0          # audio packets in the other G.711 law
    talkspurts: int = 0          # audio packets with the marker bit
    invalid: int = 0             # datagrams that are not RTP
    unknown_payload: int = 0     # RTP with a payload type not negotiated (or RTCP)
    audio_samples: int = 0       # samples played from packets
    silence_samples: int = 0     # samples played as silence (no packet brought them)
    jitter: float = 0.0

    @property
    def jitter_seconds(self) -> float:
        return self.jitter / RATE

    @property
    def played_samples(self) -> int:
        return self.audio_samples + self.silence_samples


@dataclass(slots=True)
class _Source:
    """Sequence and jitter state of one SSRC (RFC 3550 §A.1, §A.8)."""
    ssrc: int
    max_seq: int
    cycles: int = 0
    base: int = 0                # extended sequence of the first packet
    bad_seq: int = -1
    fresh: bool = True           # no packet yet: the first one is taken as it comes
    received: int = 0            # unique packets (for §A.3)
    seen: set = field(default_factory=set)
    seen_order: deque = field(default_factory=deque)
    last_transit: float | None = None
    jitter: float = 0.0

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    def expected(self) -> int:
        return self.extended_max - self.base + 1

    def classify(self, seq: int) -> tuple[str, int]:
        """RFC 3550 §A.1 update_seq: ("new" | "old" | "duplicate" | "bad" | "restart", extended)."""
        udelta = (seq - self.max_seq) % _MOD16
        if self.fresh:
            self.fresh = False
            self.max_seq = self.base = seq
            kind, ext = "new", seq
        elif 0 < udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += _MOD16                       # wrapped around
            self.max_seq = seq
            kind, ext = "new", self.extended_max
        elif udelta == 0 or udelta > _MOD16 - MAX_MISORDER:
            ext = self.cycles + seq - (_MOD16 if seq > self.max_seq else 0)
            kind = "duplicate" if ext in self.seen else "old"
            if kind == "old" and ext < self.base:
                self.base = ext             # it was sent before the first one we saw: expected
        elif seq == self.bad_seq:
            return "restart", seq                           # the jump is believed: caller restarts
        else:
            self.bad_seq = (seq + 1) % _MOD16
            return "bad", seq
        if kind != "duplicate":
            self.received += 1
            self.seen.add(ext)
            self.seen_order.append(ext)
            while len(self.seen_order) > _SEEN_WINDOW:
                self.seen.discard(self.seen_order.popleft())
        return kind, ext

    def update_jitter(self, timestamp: int, arrival: float, *, reset: bool = False) -> None:
        """RFC 3550 §A.8: J += (|D| - J) / 16, D the change in transit time (``reset``: a
        timestamp jump, whose change in transit is no jitter: only remember the new transit)."""
        transit = arrival - timestamp
        if self.last_transit is not None and not reset:
            d = transit - self.last_transit
            d -= round(d / _MOD32) * _MOD32                 # the timestamp wrapped
            self.jitter += (abs(d) - self.jitter) / 16.0
        self.last_transit = transit


class RTPReceiver:
    """A fixed jitter buffer playing one G.711 stream out at exactly 8000 samples a second.

    Play-out position ``p`` (samples since ``now`` at construction) is what ``play`` hands out
    in order. The first audio packet to arrive at ``t`` is anchored at the position of
    ``t + jitter_depth``; every later packet of the stream lands at its timestamp's distance
    from the anchor. A packet whose first sample was already played is late; one beyond the
    window (``jitter_depth + max_ahead``) is a timestamp jump if it is the stream's newest
    (the stream is re-anchored there), an overflow otherwise.
    """

    STALE_TIME = 1.0          # seconds a replaced SSRC's stragglers are dropped, not adopted

    def __init__(self, config: RTPConfig | None = None, now: float = 0.0) -> None:
        self.config = config or RTPConfig()
        self._t0 = now
        self._depth = round(self.config.jitter_depth * RATE)
        self._cap = self._depth + math.ceil(self.config.max_ahead * RATE) + self.config.samples_per_packet
        self._silence = self.config.silence
        self._ring = bytearray([self._silence]) * self._cap
        self._flags = bytearray(self._cap)                   # 1 where a packet's sample waits
        self._played = 0                                     # samples handed out so far
        self._filled_end = 0                                 # one past the last sample written
        self._anchor: tuple[int, int] | None = None          # (timestamp, position)
        self._source: _Source | None = None
        self._retired: dict[int, float] = {}                 # replaced SSRC -> when
        self._done_lost = 0                                  # §A.3 losses of sources gone
        self._event_key: tuple[int, int, int] | None = None  # (ssrc, timestamp, event) current
        self._event_ended = False
        self._events: list[Event] = []
        self._counts = dict.fromkeys(
            ("received", "played_packets", "late", "duplicate", "reordered", "overflow",
             "ssrc_changes", "timestamp_jumps", "sequence_restarts", "stale", "telephone_events",
             "comfort_noise", "transcoded", "talkspurts", "invalid", "unknown_payload",
             "audio_samples", "silence_samples"), 0)

    # -- input ---------------------------------------------------------------------------

    def receive(self, data: bytes, now: float) -> bool:
        """Take one datagram. True when it is RTP of a negotiated payload type (the driver
        learns its peer from such a packet), whatever then became of it; never raises on
        what the network brings (a bad datagram is counted ``invalid``)."""
        try:
            pkt = parse_rtp(data)
        except RTPError:
            self._counts["invalid"] += 1
            return False
        pt = pkt.payload_type
        if pt == self.config.audio_pt or (self.config.payload_type is None and pt in PT_LAW):
            kind = "audio"
        elif pt == PT_CN:
            kind = "cn"
        elif pt == self.config.event_payload_type:
            kind = "event"
        else:
            self._counts["unknown_payload"] += 1
            return False
        if kind == "event":
            try:
                event = parse_telephone_event(pkt.payload, pkt.timestamp, pkt.ssrc)
            except RTPError:
                self._counts["invalid"] += 1
                return False
        if kind == "audio" and len(pkt.payload) > self._cap - self._depth:
            self._counts["invalid"] += 1            # longer than the whole window: not G.711 20 ms
            return False
        self._counts["received"] += 1
        if not self._take_source(pkt, now):
            return True
        seq_kind, _ = self._source.classify(pkt.sequence)
        if seq_kind == "bad":
            return True                              # a jump, believed if the next one follows
        if seq_kind == "restart":                    # RFC 3550 §A.1: the sender started over
            self._counts["sequence_restarts"] += 1
            self._new_source(pkt.ssrc)
            seq_kind, _ = self._source.classify(pkt.sequence)
            self._anchor = None
        if seq_kind == "duplicate":
            self._counts["duplicate"] += 1
            return True
        if seq_kind == "old":
            self._counts["reordered"] += 1
        if kind == "event":
            self._counts["telephone_events"] += 1
            self._event(event)
            return True
        if kind == "cn":
            self._counts["comfort_noise"] += 1      # RFC 3389: played as silence, not noise
            self._source.update_jitter(pkt.timestamp, now * RATE)
            return True
        payload = pkt.payload
        if pt != self.config.audio_pt and pt in PT_LAW and PT_LAW[pt] != self.config.law:
            from xmfax.audio import g711
            payload = g711.transcode(payload, PT_LAW[pt], self.config.law)
            self._counts["transcoded"] += 1
        if pkt.marker:
            self._counts["talkspurts"] += 1
        jumped = self._place(pkt.timestamp, payload, seq_kind == "new", now)
        self._source.update_jitter(pkt.timestamp, now * RATE, reset=jumped)
        return True

    def _take_source(self, pkt: RTPPacket, now: float) -> bool:
        """Follow the stream's SSRC; False for a straggler of a replaced one."""
        src = self._source
        if src is not None and pkt.ssrc == src.ssrc:
            return True
        for ssrc, when in list(self._retired.items()):
            if now - when > self.STALE_TIME:
                del self._retired[ssrc]
        if pkt.ssrc in self._retired:
            self._counts["stale"] += 1
            return False
        old = None if src is None else src.ssrc
        if src is not None:
            self._counts["ssrc_changes"] += 1
            self._retired[src.ssrc] = now
            self._events.append(SourceChanged(old, pkt.ssrc))
        self._new_source(pkt.ssrc)
        self._anchor = None                          # the next audio packet re-anchors
        return True

    def _new_source(self, ssrc: int) -> None:
        if self._source is not None:
            self._done_lost += self._source.expected() - self._source.received
        self._source = _Source(ssrc, 0)

    def _event(self, event: TelephoneEvent) -> None:
        """RFC 4733 §2.5.1: one event's packets share its timestamp; the end is sent 3 times."""
        key = (event.ssrc, event.timestamp, event.event)
        if key != self._event_key:
            self._event_key = key
            self._event_ended = event.end
            self._events.append(event)
        elif event.end and not self._event_ended:
            self._event_ended = True
            self._events.append(event)

    def _place(self, timestamp: int, payload: bytes, newest: bool, now: float) -> bool:
        """Put an audio packet in the buffer (or count why not); True on a timestamp jump."""
        n = len(payload)
        jumped = False
        if self._anchor is None:
            self._reanchor(timestamp, now)
            jumped = True                            # (a new anchor: no jitter across it)
        ts0, pos0 = self._anchor
        pos = pos0 + _signed32(timestamp - ts0)
        d = pos - self._played
        if not (0 <= d and d + n <= self._cap):
            if newest and (d + n > self._cap or d < -self._cap):
                self._counts["timestamp_jumps"] += 1         # the sender's clock jumped
                self._reanchor(timestamp, now)
                pos = self._anchor[1]
                jumped = True
                if pos - self._played + n > self._cap:   # play() far behind the clock
                    self._counts["overflow"] += 1
                    return True
            elif d < 0:
                self._counts["late"] += 1            # its time was played: dropped
                return False
            else:
                self._counts["overflow"] += 1        # an old packet far ahead: no room
                return False
        if newest:
            self._anchor = (timestamp, pos)          # keep the reference near: no 32-bit wrap
        self._write(pos, payload)
        self._counts["played_packets"] += 1
        return jumped

    def _reanchor(self, timestamp: int, now: float) -> None:
        """Play ``timestamp`` jitter_depth after ``now``, and never over buffered audio."""
        pos = max(self._due(now) + self._depth, self._filled_end, self._played)
        self._anchor = (timestamp, pos)

    def _write(self, pos: int, payload: bytes) -> None:
        n = len(payload)
        i = pos % self._cap
        k = min(n, self._cap - i)
        self._ring[i:i + k] = payload[:k]
        self._flags[i:i + k] = b"\x01" * k
        if k < n:
            self._ring[:n - k] = payload[k:]
            self._flags[:n - k] = b"\x01" * (n - k)
        self._filled_end = max(self._filled_end, pos + n)

    # -- output --------------------------------------------------------------------------

    def _due(self, now: float) -> int:
        return math.floor((now - self._t0) * RATE + 1e-6)

    def due(self, now: float) -> int:
        """How many samples ``play(now)`` would hand out."""
        return max(0, self._due(now) - self._played)

    def play(self, now: float) -> bytes:
        """The G.711 codes of every sample due by ``now`` (8000 a second since construction):
        buffered audio, and the silence code wherever no packet brought a sample."""
        due = self.due(now)
        if not due:
            return b""
        out = bytearray()
        left = due
        while left:
            i = self._played % self._cap
            k = min(left, self._cap - i)
            out += self._ring[i:i + k]
            audio = self._flags.count(1, i, i + k)
            self._counts["audio_samples"] += audio
            self._counts["silence_samples"] += k - audio
            if audio:
                self._ring[i:i + k] = bytes((self._silence,)) * k
                self._flags[i:i + k] = bytes(k)
            self._played += k
            left -= k
        return bytes(out)

    def play_samples(self, now: float):
        """``play(now)`` decoded to linear int16 samples (numpy; xmfax.audio.g711)."""
        from xmfax.audio import g711
        return g711.decode(self.play(now), self.config.law)

    @property
    def buffered(self) -> int:
        """Samples from packets waiting to be played."""
        return self._flags.count(1)

    @property
    def ssrc(self) -> int | None:
        return None if self._source is None else self._source.ssrc

    def events(self) -> list[Event]:
        """TelephoneEvent and SourceChanged events since the last call."""
        out, self._events = self._events, []
        return out

    @property
    def stats(self) -> RTPStats:
        src = self._source
        lost = self._done_lost + (src.expected() - src.received if src else 0)
        return RTPStats(lost=lost, jitter=src.jitter if src else 0.0, **self._counts)
