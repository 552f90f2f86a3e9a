"""IFP packets (T.38 §7, Annex A): the ASN.1 aligned-PER codec, versions 0 to 3.

An IFP (Internet Facsimile Protocol) packet carries either a *T.30 indicator*
(a signal began on the line: CNG, CED, V.21 flags, a high-speed training) or
*T.30 data* of one modulation, as a list of fields (HDLC octets, the FCS
verdict, non-ECM image data, the end of the signal).

The ASN.1 (T.38 Annex A, module T38 in ``t38.asn`` beside this file) is
encoded with the ALIGNED variant of PER (X.691). Two revisions of the module
matter on the wire:

* T38FaxVersion 0 uses the 1998 module: ``field-type`` has no extension
  marker (3 bits) and the extended indicators/data types do not exist.
* T38FaxVersion 1, 2, 3 use the corrected (2002) module: ``field-type`` is
  extensible (1 + 3 bits) and V.8/V.34/V.33 indicators and data types exist.

The codec is written by hand for speed (a T.38 call moves thousands of these)
and checked against asn1tools compiling ``t38.asn`` in ``tests/t38``.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import LocalProtocolError, RemoteProtocolError

__all__ = [
    "Indicator", "DataType", "FieldType", "Field", "IndicatorPacket", "DataPacket",
    "IFPPacket", "IFPDecodeError", "encode_ifp", "decode_ifp", "decode_ifp_prefix",
]


class IFPDecodeError(RemoteProtocolError):
    """A received IFP packet (or UDPTL datagram) that cannot be decoded.

    ``reason`` is a short fixed string, usable as a counter key."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class Indicator(enum.IntEnum):
    """Type-of-msg t30-indicator (T.38 Annex A). Values are the ASN.1 enumeration order."""

    NO_SIGNAL = 0
    CNG = 1
    CED = 2
    V21_PREAMBLE = 3
    V27TER_2400_TRAINING = 4
    V27TER_4800_TRAINING = 5
    V29_7200_TRAINING = 6
    V29_9600_TRAINING = 7
    V17_7200_SHORT_TRAINING = 8
    V17_7200_LONG_TRAINING = 9
    V17_9600_SHORT_TRAINING = 10
    V17_9600_LONG_TRAINING = 11
    V17_12000_SHORT_TRAINING = 12
    V17_12000_LONG_TRAINING = 13
    V17_14400_SHORT_TRAINING = 14
    V17_14400_LONG_TRAINING = 15
    # extension additions (T.38 2002 module; not in version 0)
    V8_ANSAM = 16
    V8_SIGNAL = 17
    V34_CNTL_CHANNEL_1200 = 18
    V34_PRI_CHANNEL = 19
    V34_CC_RETRAIN = 20
    V33_12000_TRAINING = 21
    V33_14400_TRAINING = 22


class DataType(enum.IntEnum):
    """Type-of-msg t30-data (T.38 Annex A): the modulation the data was carried by."""

    V21 = 0
    V27TER_2400 = 1
    V27TER_4800 = 2
    V29_7200 = 3
    V29_9600 = 4
    V17_7200 = 5
    V17_9600 = 6
    V17_12000 = 7
    V17_14400 = 8
    # extension additions (not in version 0)
    V8 = 9
    V34_PRI_RATE = 10
    V34_CC_1200 = 11
    V34_PRI_CH = 12
    V33_12000 = 13
    V33_14400 = 14


class FieldType(enum.IntEnum):
    """Data-Field field-type (T.38 Annex A)."""

    HDLC_DATA = 0
    HDLC_SIG_END = 1
    HDLC_FCS_OK = 2
    HDLC_FCS_BAD = 3
    HDLC_FCS_OK_SIG_END = 4
    HDLC_FCS_BAD_SIG_END = 5
    T4_NON_ECM_DATA = 6
    T4_NON_ECM_SIG_END = 7
    # extension additions (not in version 0)
    CM_MESSAGE = 8
    JM_MESSAGE = 9
    CI_MESSAGE = 10
    V34RATE = 11


_INDICATORS = tuple(Indicator)
_DATA_TYPES = tuple(DataType)
_FIELD_TYPES = tuple(FieldType)
_ROOT_INDICATORS = 16   # no-signal .. v17-14400-long-training
_ROOT_DATA_TYPES = 9    # v21 .. v17-14400
_ROOT_FIELD_TYPES = 8   # hdlc-data .. t4-non-ecm-sig-end
_MAX_FIELD_DATA = 65535  # OCTET STRING (SIZE (1..65535))
_MAX_FIELDS = 16383      # one length-determinant octet pair; no fragmentation needed


@dataclass(frozen=True, slots=True)
class Field:
    """One element of Data-Field: a field type and its (possibly empty) data."""

    type: FieldType
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class IndicatorPacket:
    """An IFP packet announcing a T.30 signal (T.38 §6.1 indicators)."""

    indicator: Indicator


@dataclass(frozen=True, slots=True)
class DataPacket:
    """An IFP packet carrying data of one modulation, as zero or more fields."""

    data_type: DataType
    fields: tuple[Field, ...] = ()


IFPPacket = IndicatorPacket | DataPacket


# --------------------------------------------------------------------------- encode
def encode_one_field(data_type: int, field_type: int, data: bytes, version: int = 0) -> bytes:
    """``encode_ifp(DataPacket(data_type, (Field(field_type, data),)), version)`` for a root
    data type (v21..v17-14400) and a root field type (hdlc-data..t4-non-ecm-sig-end), the
    common packet, built directly without the objects: the header octet, a field count of 1,
    the field's header octet (data-present bit, the extension bit from version 1, the type,
    padding), then an aligned 16-bit length (size - 1) and the data. The caller keeps to
    those ranges and to 65535 octets of data (encode_ifp checks them)."""
    head = field_type << 4 if version == 0 else field_type << 3
    if not data:
        return bytes((0xC0 | (data_type << 1), 1, head))
    size = len(data) - 1
    return bytes((0xC0 | (data_type << 1), 1, 0x80 | head, size >> 8, size & 0xFF)) + data


def encode_ifp(packet: IFPPacket, version: int = 0) -> bytes:
    """Encode one IFP packet in aligned PER for T38FaxVersion ``version`` (0..3).

    Raises LocalProtocolError for values that the version cannot express
    (an extended indicator in version 0, field data over 65535 octets ...)."""
    if type(packet) is IndicatorPacket:
        ind = int(packet.indicator)
        if ind < _ROOT_INDICATORS:
            # bit7 data-field absent, bit6 choice=t30-indicator, bit5 ext=0, bits4..1 value
            return bytes((ind << 1,))
        if version == 0 or ind > Indicator.V33_14400_TRAINING:
            raise LocalProtocolError(f"indicator {packet.indicator!r} cannot be sent in T.38 version {version}")
        # ext=1, then a normally small non-negative whole number: 0 + 6 bits (X.691 §10.6)
        n = ind - _ROOT_INDICATORS
        return bytes((0x20 | (n >> 2), (n << 6) & 0xC0))
    if type(packet) is not DataPacket:
        raise LocalProtocolError(f"not an IFP packet: {packet!r}")
    dt = int(packet.data_type)
    fields = packet.fields
    if len(fields) == 1 and dt < _ROOT_DATA_TYPES:
        f = fields[0]
        ft = int(f.type)
        if ft < _ROOT_FIELD_TYPES and len(f.data) <= _MAX_FIELD_DATA:
            return encode_one_field(dt, ft, f.data, version)
    present = 0x80 if fields else 0
    if dt < _ROOT_DATA_TYPES:
        out = bytearray((present | 0x40 | (dt << 1),))
    else:
        if version == 0 or dt > DataType.V33_14400:
            raise LocalProtocolError(f"data type {packet.data_type!r} cannot be sent in T.38 version {version}")
        n = dt - _ROOT_DATA_TYPES
        out = bytearray((present | 0x60 | (n >> 2), (n << 6) & 0xC0))
    if not fields:
        return bytes(out)
    count = len(fields)
    if count < 0x80:
        out.append(count)
    elif count <= _MAX_FIELDS:
        out += bytes((0x80 | (count >> 8), count & 0xFF))
    else:
        raise LocalProtocolError(f"{count} fields in one IFP packet (at most {_MAX_FIELDS})")
    # Fields are packed as bits: a field without data does not end on an octet
    # boundary (4 bits in version 0, 5 bits or 9 bits later); one with data
    # ends aligned (its length determinant is octet-aligned, X.691 §16.11).
    acc = 0       # pending bits, MSB first
    nbits = 0
    for f in fields:
        ft = int(f.type)
        data = f.data
        has = 1 if data else 0
        if version == 0:
            if ft >= _ROOT_FIELD_TYPES:
                raise LocalProtocolError(f"field type {f.type!r} cannot be sent in T.38 version 0")
            acc = (acc << 4) | (has << 3) | ft
            nbits += 4
        elif ft < _ROOT_FIELD_TYPES:
            acc = (acc << 5) | (has << 4) | ft
            nbits += 5
        elif ft <= FieldType.V34RATE:
            acc = (acc << 9) | (has << 8) | 0x80 | (ft - _ROOT_FIELD_TYPES)
            nbits += 9
        else:
            raise LocalProtocolError(f"unknown field type {ft}")
        if has:
            size = len(data)
            if size > _MAX_FIELD_DATA:
                raise LocalProtocolError(f"field data of {size} octets (at most {_MAX_FIELD_DATA})")
            pad = -nbits % 8
            acc <<= pad
            nbits += pad
            out += acc.to_bytes(nbits >> 3, "big")
            acc = nbits = 0
            out += (size - 1).to_bytes(2, "big")
            out += data
    if nbits:
        pad = -nbits % 8
        out += (acc << pad).to_bytes((nbits + pad) >> 3, "big")
    return bytes(out)


# --------------------------------------------------------------------------- decode
class _Bits:
    """A minimal MSB-first bit reader over a bytes object (for the field list)."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf: bytes, pos_bits: int):
        self.buf = buf
        self.pos = pos_bits
        self.end = len(buf) * 8

    def take(self, n: int) -> int:
        pos = self.pos
        if pos + n > self.end:
            raise IFPDecodeError("truncated", f"needed {n} bits at bit {pos} of {self.end}")
        first = pos >> 3
        last = (pos + n + 7) >> 3
        chunk = int.from_bytes(self.buf[first:last], "big")
        self.pos = pos + n
        return (chunk >> ((last << 3) - pos - n)) & ((1 << n) - 1)

    def align(self) -> None:
        self.pos = (self.pos + 7) & ~7


_BARE = tuple(Field(ft) for ft in _FIELD_TYPES[:_ROOT_FIELD_TYPES])   # data-less fields, shared


def _decode_fields(buf: bytes, pos: int, count: int, version: int, octet_per_field: bool) -> tuple[tuple[Field, ...], int]:
    bits = _Bits(buf, pos * 8)
    fields = []
    for _ in range(count):
        has = bits.take(1)
        if version == 0:
            ft = bits.take(3)
        elif bits.take(1):
            if bits.take(1):  # a "large" normally-small number: never valid here
                raise IFPDecodeError("bad field type", "extension number not small")
            ft = _ROOT_FIELD_TYPES + bits.take(6)
            if ft > FieldType.V34RATE:
                raise IFPDecodeError("bad field type", f"extended field type {ft}")
        else:
            ft = bits.take(3)
        if has:
            bits.align()
            size = bits.take(16) + 1
            start = bits.pos >> 3
            stop = start + size
            if stop > len(buf):
                raise IFPDecodeError("truncated", f"field data of {size} octets past the end")
            fields.append(Field(_FIELD_TYPES[ft], buf[start:stop]))
            bits.pos = stop * 8
        else:
            fields.append(Field(_FIELD_TYPES[ft]))
            if octet_per_field:
                bits.align()
    bits.align()
    return tuple(fields), bits.pos >> 3


def _meaningless(fields: tuple[Field, ...]) -> bool:
    """True if a *-data field without data appears: it carries nothing, and it is
    what a strict PER reading of spandsp's octet-per-field layout produces."""
    for f in fields:
        if not f.data and (f.type is FieldType.HDLC_DATA or f.type is FieldType.T4_NON_ECM_DATA):
            return True
    return False


def _header(buf: bytes, version: int) -> tuple[IFPPacket | DataType, int, int]:
    """Decode up to the field count: (packet or data type, count, position)."""
    n = len(buf)
    if n < 1:
        raise IFPDecodeError("empty", "no octets")
    b0 = buf[0]
    data_present = b0 & 0x80
    if not b0 & 0x40:                                   # t30-indicator
        if data_present:
            raise IFPDecodeError("indicator with data", f"first octet {b0:#04x}")
        if b0 & 0x20:
            if n < 2:
                raise IFPDecodeError("truncated", "extended indicator")
            if b0 & 0x10:
                raise IFPDecodeError("bad indicator", "extension number not small")
            ind = _ROOT_INDICATORS + (((b0 & 0x0F) << 2) | (buf[1] >> 6))
            if ind > Indicator.V33_14400_TRAINING or version == 0:
                # version 0 has no extension additions; the 1998 module lets a decoder
                # see only "an unknown extension", which is useless to a terminal
                raise IFPDecodeError("bad indicator", f"extended indicator {ind} in version {version}")
            return IndicatorPacket(_INDICATORS[ind]), 0, 2
        return IndicatorPacket(_INDICATORS[(b0 >> 1) & 0x0F]), 0, 1
    if b0 & 0x20:                                       # extended t30-data
        if n < 2:
            raise IFPDecodeError("truncated", "extended data type")
        if b0 & 0x10:
            raise IFPDecodeError("bad data type", "extension number not small")
        dt = _ROOT_DATA_TYPES + (((b0 & 0x0F) << 2) | (buf[1] >> 6))
        if dt > DataType.V33_14400 or version == 0:
            raise IFPDecodeError("bad data type", f"extended data type {dt} in version {version}")
        pos = 2
    else:
        dt = (b0 >> 1) & 0x0F
        if dt >= _ROOT_DATA_TYPES:
            raise IFPDecodeError("bad data type", f"data type {dt}")
        pos = 1
    data_type = _DATA_TYPES[dt]
    if not data_present:
        return DataPacket(data_type), 0, pos
    if pos >= n:
        raise IFPDecodeError("truncated", "no field count")
    count = buf[pos]
    pos += 1
    if count & 0x80:
        if count & 0x40:
            raise IFPDecodeError("bad field count", "fragmented length determinant")
        if pos >= n:
            raise IFPDecodeError("truncated", "field count")
        count = ((count & 0x3F) << 8) | buf[pos]
        pos += 1
    if count == 0 or count > n * 2:  # each field takes at least 4 bits: a cheap bound before looping
        raise IFPDecodeError("bad field count", f"{count} fields in {n} octets")
    return data_type, count, pos


def decode_ifp_prefix(buf: bytes, version: int = 0) -> tuple[IFPPacket, int]:
    """Decode the IFP packet at the start of ``buf`` strictly (aligned PER);
    return it and its length in octets. Used where the length is not known
    (a packet rebuilt from FEC parity, zero-padded)."""
    head, count, pos = _header(buf, version)
    if not count:
        return head, pos
    fields, end = _decode_fields(buf, pos, count, version, octet_per_field=False)
    return DataPacket(head, fields), end


def one_field(buf: bytes, version: int = 0) -> tuple[int, int, bytes] | None:
    """``(data type, field type, data)`` of a packet that is a root data type with exactly
    one root field (what encode_one_field makes: the common packet), read straight from its
    octets; None for anything else, valid or not (decode_ifp reads those in full). For
    such a packet decode_ifp gives the same as ``DataPacket(dt, (Field(ft, data),))``."""
    n = len(buf)
    if n < 3 or buf[1] != 1:
        return None
    b0 = buf[0]
    if b0 & 0xE0 != 0xC0:                 # data-field present, t30-data, no extension
        return None
    dt = (b0 >> 1) & 0x0F
    h = buf[2]
    if dt >= _ROOT_DATA_TYPES or (version and h & 0x40):
        return None
    ft = (h >> 4 if version == 0 else h >> 3) & 7
    if h & 0x80:                           # with data: aligned 16-bit length (size - 1)
        if n >= 6 and 6 + ((buf[3] << 8) | buf[4]) == n:
            return dt, ft, buf[5:]
        return None
    return (dt, ft, b"") if n == 3 else None   # without: the field ends in the last octet


def decode_ifp(buf: bytes, version: int = 0) -> IFPPacket:
    """Decode exactly one IFP packet occupying all of ``buf``.

    Raises IFPDecodeError (a RemoteProtocolError) with a short ``reason``."""
    one = one_field(buf, version)
    if one is not None:                    # fast path: the common packet
        dt, ft, data = one
        return DataPacket(_DATA_TYPES[dt], (Field(_FIELD_TYPES[ft], data) if data else _BARE[ft],))
    head, count, pos = _header(buf, version)
    n = len(buf)
    if not count:
        if pos != n:
            raise IFPDecodeError("trailing octets", f"packet is {pos} octets, datagram field {n}")
        return head
    strict_error = None
    try:
        fields, end = _decode_fields(buf, pos, count, version, octet_per_field=False)
        if end == n and not _meaningless(fields):
            return DataPacket(head, fields)
        strict_error = IFPDecodeError("trailing octets", f"packet is {end} octets, datagram field {n}")
    except IFPDecodeError as exc:
        strict_error = exc
        fields = None
    # INTEROP(spandsp): spandsp 0.0.6 writes one whole octet per field even when the
    # field carries no data, where aligned PER packs the next field into the same
    # octet (4 bits per field in version 0, 5 later). Read that layout when the strict
    # reading does not fill the packet or yields data-less *-data fields, which no
    # encoder sends on purpose.
    try:
        alt, end2 = _decode_fields(buf, pos, count, version, octet_per_field=True)
        if end2 == n:
            return DataPacket(head, alt)
    except IFPDecodeError:
        pass
    if fields is not None and end == n:
        return DataPacket(head, fields)
    raise strict_error
