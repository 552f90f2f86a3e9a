"""T.30 HDLC frames: encode and decode (T.30 §5.3).

A frame here is what :mod:`xmfax.t30.modem` carries: address (0xFF), control
(0x03 non-final, 0x13 final: T.30 §5.3.5), FCF, FIF; the modem adds flags and FCS.

FIF bit numbering follows Table 2/T.30: bit 1 is the first bit sent, which is
the least significant bit of the first FIF octet (HDLC sends LSB first); bit n
is ``fif[(n-1)//8] & (1 << ((n-1)%8))``. From the third octet on, the last bit of
each octet (24, 32, 40 ...) is the "extend field" bit: 1 when another octet follows.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RemoteProtocolError
from ..page import Resolution
from .fcf import FCF, octet, split
from .modem import Family, Modulation

ADDRESS = 0xFF
CONTROL_NONFINAL = 0x03
CONTROL_FINAL = 0x13
ID_LENGTH = 20
ID_CHARS = frozenset("0123456789+ ")          # Table 3/T.30
MAX_FIF = 260                                 # FCD carries at most 256 data octets + frame number


# --------------------------------------------------------------------------- frames
@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded T.30 frame. ``x`` is the X bit, ``final`` the control field's P/F."""

    fcf: FCF
    fif: bytes = b""
    x: int = 0
    final: bool = True

    def encode(self) -> bytes:
        control = CONTROL_FINAL if self.final else CONTROL_NONFINAL
        return bytes((ADDRESS, control, octet(self.fcf, self.x))) + bytes(self.fif)

    @property
    def name(self) -> str:
        return self.fcf.name.replace("_", "-")

    def __str__(self) -> str:
        return describe(self)


def decode_frame(data: bytes) -> Frame:
    """Parse address, control, FCF, FIF; RemoteProtocolError if it is not a T.30 frame."""
    if len(data) < 3:
        raise RemoteProtocolError(f"T.30 frame too short ({len(data)} octets; at least 3)")
    if data[0] != ADDRESS:
        raise RemoteProtocolError(f"T.30 frame address 0x{data[0]:02X}, expected 0xFF (T.30 §5.3.4)")
    if data[1] not in (CONTROL_FINAL, CONTROL_NONFINAL):
        raise RemoteProtocolError(f"T.30 frame control 0x{data[1]:02X}, expected 0x03 or 0x13 (T.30 §5.3.5)")
    if len(data) > 3 + MAX_FIF:
        raise RemoteProtocolError(f"T.30 frame too long ({len(data)} octets)")
    fcf, x = split(data[2])
    if fcf is None:
        raise RemoteProtocolError(f"unknown T.30 FCF 0x{data[2]:02X}")
    return Frame(fcf, bytes(data[3:]), x, data[1] == CONTROL_FINAL)


# --------------------------------------------------------------------------- identifiers
def encode_id(text: str) -> bytes:
    """TSI/CSI/CIG/SUB/SEP/PWD/SID/PSA FIF: 20 characters, the last character
    first on the wire, space filled (T.30 §5.3.6.2.4, Table 3/T.30)."""
    if len(text) > ID_LENGTH:
        raise ValueError(f"identifier {text!r} is longer than {ID_LENGTH} characters")
    return text.rjust(ID_LENGTH).encode("ascii")[::-1]


def decode_id(fif: bytes) -> str:
    """The identifier carried in an ID frame, leading/trailing spaces removed.
    Non-printable octets become '?' (a far end may send anything)."""
    chars = "".join(chr(b) if 0x20 <= b < 0x7F else "?" for b in fif[:ID_LENGTH][::-1])
    return chars.strip()


def check_id(text: str, what: str = "local_id") -> str:
    if len(text) > ID_LENGTH:
        raise ValueError(f"{what} {text!r} is longer than {ID_LENGTH} characters (T.30 §5.3.6.2.4)")
    bad = set(text) - ID_CHARS
    if bad:
        raise ValueError(f"{what} {text!r} has characters T.30 does not allow: "
                         f"{''.join(sorted(bad))!r} (Table 3/T.30: digits, '+', space)")
    return text


# --------------------------------------------------------------------------- FIF bits
def _get(fif: bytes, bit: int) -> bool:
    i = (bit - 1) // 8
    return i < len(fif) and bool(fif[i] & (1 << ((bit - 1) % 8)))


def _bit_reader(fif: bytes):
    """A reader of Table 2/T.30 bit n of a DIS/DTC/DCS FIF. Octets 3 on carry an extend
    bit (their high bit, bits 24, 32, ...): bits past an octet whose extend bit is 0
    are not valid and read as 0."""
    valid_bits = 24
    i = 2
    while i < len(fif) and fif[i] & 0x80:
        valid_bits += 8
        i += 1
    return lambda b: _get(fif, b) if b <= valid_bits else False


def _pack(bits: set[int], minimum_octets: int = 3) -> bytes:
    """Octets holding ``bits``, with extend bits (24, 32 ...) set where needed."""
    n = max([minimum_octets] + [(b - 1) // 8 + 1 for b in bits])
    out = bytearray(n)
    for b in bits:
        out[(b - 1) // 8] |= 1 << ((b - 1) % 8)
    for i in range(2, n - 1):            # octet index 2 holds bits 17-24
        out[i] |= 0x80
    return bytes(out)


# Table 2/T.30 bits 11-14: DIS capability (b11, b12, b13, b14)
_DIS_MODEMS = {
    (0, 0, 0, 0): frozenset({Family.V27TER}),                     # V.27 ter fall-back (2400 only)
    (0, 1, 0, 0): frozenset({Family.V27TER}),
    (1, 0, 0, 0): frozenset({Family.V29}),
    (1, 1, 0, 0): frozenset({Family.V27TER, Family.V29}),
    (1, 1, 0, 1): frozenset({Family.V27TER, Family.V29, Family.V17}),
}
# Table 2/T.30 bits 11-14 in DCS: the modulation chosen
_DCS_RATES = {
    (0, 0, 0, 0): Modulation.V27TER_2400,
    (0, 1, 0, 0): Modulation.V27TER_4800,
    (1, 0, 0, 0): Modulation.V29_9600,
    (1, 1, 0, 0): Modulation.V29_7200,
    (0, 0, 0, 1): Modulation.V17_14400,
    (0, 1, 0, 1): Modulation.V17_12000,
    (1, 0, 0, 1): Modulation.V17_9600,
    (1, 1, 0, 1): Modulation.V17_7200,
}
_RATE_BITS = {m: k for k, m in _DCS_RATES.items()}

# Table 2/T.30 bits 21-23 (b21, b22, b23): DIS min scan line time at 3.85 l/mm, halved at 7.7?
_DIS_SCAN = {
    (0, 0, 0): (20, False), (0, 0, 1): (40, False), (0, 1, 0): (10, False), (1, 0, 0): (5, False),
    (0, 1, 1): (10, True), (1, 1, 0): (20, True), (1, 0, 1): (40, True), (1, 1, 1): (0, False),
}
_DIS_SCAN_BITS = {v: k for k, v in _DIS_SCAN.items()}
# in DCS: the time to use (110/011/101 are not valid in DCS; read as 20/10/40)
_DCS_SCAN = {(0, 0, 0): 20, (0, 0, 1): 40, (0, 1, 0): 10, (1, 0, 0): 5, (1, 1, 1): 0,
             (0, 1, 1): 10, (1, 1, 0): 20, (1, 0, 1): 40}
_DCS_SCAN_BITS = {20: (0, 0, 0), 40: (0, 0, 1), 10: (0, 1, 0), 5: (1, 0, 0), 0: (1, 1, 1)}

WIDTHS = ("a4", "b4", "a3")
LENGTHS = ("a4", "b4", "unlimited")


def _set_tuple(bits: set[int], numbers: tuple[int, ...], values: tuple[int, ...]) -> None:
    for n, v in zip(numbers, values):
        if v:
            bits.add(n)


@dataclass(frozen=True, slots=True)
class DIS:
    """The meaning of a DIS or DTC FIF (Table 2/T.30), as far as xmfax uses it.

    ``raw`` is the FIF as received (bits not modelled here stay visible there)."""

    ready_to_transmit: bool = False           # bit 9: a document is ready to be polled
    ready_to_receive: bool = True             # bit 10
    modems: frozenset = frozenset({Family.V27TER, Family.V29, Family.V17})   # bits 11-14
    resolutions: frozenset = frozenset({Resolution.STANDARD, Resolution.FINE})
    compressions: frozenset = frozenset({"mh", "mr"})   # bit 16 MR, bit 31 MMR
    max_width: str = "a4"                     # bits 17-18
    max_length: str = "a4"                    # bits 19-20: "a4" | "b4" | "unlimited"
    min_scan_ms: int = 0                      # bits 21-23 at 3.85 lines/mm
    scan_halves: bool = False                 # bits 21-23: T7.7 = T3.85 / 2
    ecm: bool = False                         # bit 27
    ecm_64_preferred: bool = False            # bit 7
    t38: bool = False                         # bit 3
    fnv: bool = False                         # bit 33
    selective_polling: bool = False           # bit 47
    subaddressing: bool = False               # bit 49
    password: bool = False                    # bit 50
    raw: bytes = field(default=b"", compare=False)

    def encode(self) -> bytes:
        bits: set[int] = set()
        if self.t38:
            bits.add(3)
        if self.ecm_64_preferred:
            bits.add(7)
        if self.ready_to_transmit:
            bits.add(9)
        if self.ready_to_receive:
            bits.add(10)
        fams = set(self.modems)
        if Family.V17 in fams:
            code = (1, 1, 0, 1)
        elif fams >= {Family.V27TER, Family.V29}:
            code = (1, 1, 0, 0)
        elif Family.V29 in fams:
            code = (1, 0, 0, 0)
        else:
            code = (0, 1, 0, 0)
        _set_tuple(bits, (11, 12, 13, 14), code)
        r = set(self.resolutions)
        if r & {Resolution.FINE, Resolution.R200}:
            bits.add(15)
        if "mr" in self.compressions:
            bits.add(16)
        _set_tuple(bits, (17, 18), {"a4": (0, 0), "b4": (1, 0), "a3": (0, 1)}[self.max_width])
        _set_tuple(bits, (19, 20), {"a4": (0, 0), "b4": (1, 0), "unlimited": (0, 1)}[self.max_length])
        scan = _DIS_SCAN_BITS.get((self.min_scan_ms, self.scan_halves and self.min_scan_ms != 0))
        if scan is None:
            raise ValueError(f"min scan line time {self.min_scan_ms} ms is not one T.30 can express")
        _set_tuple(bits, (21, 22, 23), scan)
        if self.ecm:
            bits.add(27)
            if "mmr" in self.compressions:
                bits.add(31)     # T.6 needs ECM (Table 2/T.30 note)
        if self.fnv:
            bits.add(33)
        if Resolution.SUPERFINE in r:
            bits.add(41)
        if Resolution.R300 in r:
            bits.add(42)
        if r & {Resolution.ULTRAFINE, Resolution.R400}:
            bits.add(43)
        if any(not x.metric for x in r):
            bits.add(44)         # inch based resolution preferred ... or supported
        if any(x.metric for x in r):
            bits.add(45)         # metric based resolution preferred
        if self.selective_polling:
            bits.add(47)
        if self.subaddressing:
            bits.add(49)
        if self.password:
            bits.add(50)
        return _pack(bits)

    @classmethod
    def decode(cls, fif: bytes) -> "DIS":
        """Decode a DIS/DTC FIF; RemoteProtocolError if it is too short or invalid."""
        if len(fif) < 2:
            raise RemoteProtocolError(f"DIS/DTC FIF of {len(fif)} octets; at least 2 (Table 2/T.30)")
        g = _bit_reader(fif)
        modems = _DIS_MODEMS.get(tuple(int(g(b)) for b in (11, 12, 13, 14)))
        if modems is None:
            # reserved/invalid codes: the only mandatory modem is V.27 ter (T.30 §5.3.6.2.1)
            modems = frozenset({Family.V27TER})
        res = {Resolution.STANDARD}
        metric = g(45) or not g(44)
        inch = g(44)
        if g(15):
            res.add(Resolution.FINE)
            if inch:
                res.add(Resolution.R200)
        if g(41):
            res.add(Resolution.SUPERFINE)
        if g(42):
            res.add(Resolution.R300)
        if g(43):
            if metric:
                res.add(Resolution.ULTRAFINE)
            if inch:
                res.add(Resolution.R400)
        comp = {"mh"}
        if g(16):
            comp.add("mr")
        ecm = g(27)
        if g(31) and ecm:
            comp.add("mmr")
        w = (int(g(17)), int(g(18)))
        width = {(0, 0): "a4", (1, 0): "b4", (0, 1): "a3"}.get(w, "a4")
        ln = (int(g(19)), int(g(20)))
        length = {(0, 0): "a4", (1, 0): "b4", (0, 1): "unlimited"}.get(ln, "a4")
        scan_ms, halves = _DIS_SCAN[tuple(int(g(b)) for b in (21, 22, 23))]
        return cls(ready_to_transmit=g(9), ready_to_receive=g(10), modems=modems,
                   resolutions=frozenset(res), compressions=frozenset(comp), max_width=width,
                   max_length=length, min_scan_ms=scan_ms, scan_halves=halves, ecm=ecm,
                   ecm_64_preferred=g(7), t38=g(3), fnv=g(33), selective_polling=g(47),
                   subaddressing=g(49), password=g(50), raw=bytes(fif))


@dataclass(frozen=True, slots=True)
class DCS:
    """The meaning of a DCS FIF (Table 2/T.30): the parameters the sender chose."""

    modulation: Modulation = Modulation.V27TER_4800      # bits 11-14
    resolution: Resolution = Resolution.STANDARD         # bits 15, 41-44
    compression: str = "mh"                              # bit 16 MR, bit 31 MMR
    width: str = "a4"                                    # bits 17-18
    length: str = "a4"                                   # bits 19-20
    min_scan_ms: int = 0                                 # bits 21-23
    ecm: bool = False                                    # bit 27
    ecm_frame_size: int = 256                            # bit 28 (64 when set)
    receive: bool = True                                 # bit 10: receiver, go to receive mode
    raw: bytes = field(default=b"", compare=False)

    def encode(self) -> bytes:
        bits: set[int] = set()
        if self.receive:
            bits.add(10)
        _set_tuple(bits, (11, 12, 13, 14), _RATE_BITS[self.modulation])
        r = self.resolution
        if r in (Resolution.FINE, Resolution.R200):
            bits.add(15)
        elif r is Resolution.SUPERFINE:
            bits.add(41)
        elif r is Resolution.R300:
            bits.add(42)
        elif r in (Resolution.ULTRAFINE, Resolution.R400):
            bits.add(43)
        if not r.metric:
            bits.add(44)
        if self.compression == "mr":
            bits.add(16)
        _set_tuple(bits, (17, 18), {"a4": (0, 0), "b4": (1, 0), "a3": (0, 1)}[self.width])
        _set_tuple(bits, (19, 20), {"a4": (0, 0), "b4": (1, 0), "unlimited": (0, 1)}[self.length])
        if self.min_scan_ms not in _DCS_SCAN_BITS:
            raise ValueError(f"min scan line time {self.min_scan_ms} ms is not one T.30 can express")
        _set_tuple(bits, (21, 22, 23), _DCS_SCAN_BITS[self.min_scan_ms])
        if self.ecm:
            bits.add(27)
            if self.ecm_frame_size == 64:
                bits.add(28)
            if self.compression == "mmr":
                bits.add(31)
        elif self.compression == "mmr":
            raise ValueError("T.6 (MMR) coding needs ECM (Table 2/T.30 bit 31)")
        return _pack(bits)

    @classmethod
    def decode(cls, fif: bytes) -> "DCS":
        if len(fif) < 3:
            raise RemoteProtocolError(f"DCS FIF of {len(fif)} octets; at least 3 (Table 2/T.30)")
        g = _bit_reader(fif)
        mod = _DCS_RATES.get(tuple(int(g(b)) for b in (11, 12, 13, 14)))
        if mod is None:
            raise RemoteProtocolError("DCS selects a reserved data signalling rate (Table 2/T.30 bits 11-14)")
        inch = g(44)
        if g(43):
            res = Resolution.R400 if inch else Resolution.ULTRAFINE
        elif g(42):
            res = Resolution.R300
        elif g(41):
            res = Resolution.SUPERFINE
        elif g(15):
            res = Resolution.R200 if inch else Resolution.FINE
        else:
            res = Resolution.STANDARD
        ecm = g(27)
        if g(31):
            if not ecm:
                raise RemoteProtocolError("DCS selects T.6 coding without ECM (Table 2/T.30 bit 31)")
            comp = "mmr"
        elif g(16):
            comp = "mr"
        else:
            comp = "mh"
        w = (int(g(17)), int(g(18)))
        if w not in ((0, 0), (1, 0), (0, 1)):
            raise RemoteProtocolError("DCS selects an invalid recording width (Table 2/T.30 bits 17-18)")
        ln = (int(g(19)), int(g(20)))
        if ln not in ((0, 0), (1, 0), (0, 1)):
            raise RemoteProtocolError("DCS selects an invalid recording length (Table 2/T.30 bits 19-20)")
        return cls(modulation=mod, resolution=res, compression=comp,
                   width={(0, 0): "a4", (1, 0): "b4", (0, 1): "a3"}[w],
                   length={(0, 0): "a4", (1, 0): "b4", (0, 1): "unlimited"}[ln],
                   min_scan_ms=_DCS_SCAN[tuple(int(g(b)) for b in (21, 22, 23))],
                   ecm=ecm, ecm_frame_size=64 if (ecm and g(28)) else 256,
                   receive=g(10), raw=bytes(fif))


# --------------------------------------------------------------------------- ECM frames (Annex A)
PPS_NULL = 0x00


def encode_pps(fcf2: int, page: int, block: int, frames: int) -> bytes:
    """PPS FIF (T.30 §A.4, §5.3.6.2.10): post-message FCF (or NULL), page and
    block counters (modulo 256) and the number of frames in the block minus one."""
    if not 1 <= frames <= 256:
        raise ValueError(f"an ECM block holds 1..256 frames, not {frames}")
    return bytes((fcf2 & 0xFF, page % 256, block % 256, frames - 1))


def decode_pps(fif: bytes) -> tuple[int, int, int, int]:
    """(fcf2 with X bit masked, page, block, frames) from a PPS FIF."""
    if len(fif) < 4:
        raise RemoteProtocolError(f"PPS FIF of {len(fif)} octets; 4 expected (T.30 §5.3.6.2.10)")
    return fif[0] & 0xFE, fif[1], fif[2], fif[3] + 1


def encode_ppr(missing: set[int] | list[int]) -> bytes:
    """PPR FIF: a 256-bit map, bit n (LSB first) set for each frame to resend."""
    out = bytearray(32)
    for n in missing:
        out[n // 8] |= 1 << (n % 8)
    return bytes(out)


def decode_ppr(fif: bytes) -> set[int]:
    if len(fif) != 32:
        raise RemoteProtocolError(f"PPR FIF of {len(fif)} octets; 32 expected (T.30 §5.3.6.2.11)")
    return {i for i in range(256) if fif[i // 8] & (1 << (i % 8))}


def encode_ctc(modulation: Modulation) -> bytes:
    """CTC FIF: DCS octets 1-2, which carry the new rate in bits 11-14 (T.30 §A.4)."""
    return DCS(modulation=modulation, receive=False).encode()[:2]


def decode_ctc(fif: bytes) -> Modulation:
    if len(fif) < 2:
        raise RemoteProtocolError(f"CTC FIF of {len(fif)} octets; 2 expected")
    mod = _DCS_RATES.get(tuple(int(_get(fif, b)) for b in (11, 12, 13, 14)))
    if mod is None:
        raise RemoteProtocolError("CTC selects a reserved data signalling rate")
    return mod


def fcd(number: int, data: bytes) -> bytes:
    """An ECM FCD frame (T.30 Annex A): address, control, FCD, frame number, data."""
    return bytes((ADDRESS, CONTROL_NONFINAL, int(FCF.FCD), number & 0xFF)) + data


RCP_FRAME = bytes((ADDRESS, CONTROL_NONFINAL, int(FCF.RCP)))


# --------------------------------------------------------------------------- description
def describe(frame: Frame) -> str:
    """A one-line human reading of a frame, for events and logs."""
    f, fif = frame.fcf, frame.fif
    try:
        if f in (FCF.DIS, FCF.DTC):
            d = DIS.decode(fif)
            return (f"{frame.name} {'/'.join(sorted(m.value for m in d.modems))} "
                    f"{','.join(sorted(d.compressions))} ECM={'on' if d.ecm else 'off'} "
                    f"res={','.join(sorted(r.label for r in d.resolutions))} width<={d.max_width} "
                    f"scan={d.min_scan_ms}ms{' (halves)' if d.scan_halves else ''}"
                    f"{' poll' if d.ready_to_transmit else ''}{' rx' if d.ready_to_receive else ''}")
        if f is FCF.DCS:
            d = DCS.decode(fif)
            return (f"DCS {d.modulation} {d.compression} {d.resolution.label} {d.width} "
                    f"scan={d.min_scan_ms}ms ECM={'on/' + str(d.ecm_frame_size) if d.ecm else 'off'}")
        if f in (FCF.CSI, FCF.TSI, FCF.CIG, FCF.SUB, FCF.SEP, FCF.PWD, FCF.SID, FCF.PSA):
            return f"{frame.name} {decode_id(fif)!r}"
        if f is FCF.PPS:
            fcf2, page, block, n = decode_pps(fif)
            tail = split(fcf2)[0]
            return f"PPS-{tail.name if tail else 'NULL'} page={page} block={block} frames={n}"
        if f is FCF.PPR:
            return f"PPR {len(decode_ppr(fif))} frames"
        if f is FCF.CTC:
            return f"CTC {decode_ctc(fif)}"
        if f in (FCF.NSF, FCF.NSS, FCF.NSC):
            return f"{frame.name} {fif.hex()}"
    except RemoteProtocolError as exc:
        return f"{frame.name} (bad FIF: {exc})"
    return frame.name
