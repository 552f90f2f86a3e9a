"""The tester's side of the line: what its transmissions are made of.

* Frame octets. TSB-85 writes every octet with the first transmitted bit on
  the *left* ("FF C8 01" is a DIS), while xmfax (xmfax/t30/fcf.py) keeps the
  octet as HDLC sends it, first bit in the least significant place (0xFF 0x13
  0x80). :func:`to_wire` / :func:`from_wire` reverse the bits of each octet.
* The DCS the tester sends (or the DUT sends) decoded just enough to make the
  tester's page data and check the DUT's (Table 2/T.30 bits 11-16, 21-23, 27,
  28, 31).
* How long things take on the line, so the DUT's timers see realistic gaps.
* Page images (the ETSI 300 242 test pages) and their coding at the DCS's
  parameters, with the TSB-85 damage options (bad rows, long rows, ECM frames
  with a bad FCS).
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass

import numpy as np

from xmfax.page import Page, Resolution
from xmfax.t30.modem import Modulation

from tsb85_script import PAGES_DIR, ScriptError

_REV = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def to_wire(script_octets: bytes) -> bytes:
    """TSB-85 octets (first bit on the left) -> xmfax octets (first bit = LSB)."""
    return script_octets.translate(_REV)


from_wire = to_wire   # bit reversal is its own inverse


def fmt(octets: bytes) -> str:
    """xmfax octets shown the way TSB-85 writes them."""
    return " ".join(f"{b:02X}" for b in from_wire(octets))


# --------------------------------------------------------------------------- modems
MODEMS = {
    "V.21": Modulation.V21,
    "V.27ter/2400": Modulation.V27TER_2400,
    "V.27ter/4800": Modulation.V27TER_4800,
    "V.29/7200": Modulation.V29_7200,
    "V.29/9600": Modulation.V29_9600,
    "V.17/7200": Modulation.V17_7200,
    "V.17/9600": Modulation.V17_9600,
    "V.17/12000": Modulation.V17_12000,
    "V.17/14400": Modulation.V17_14400,
}


def modem(name: str | None) -> Modulation | None:
    if not name:
        return None
    try:
        return MODEMS[name.strip()]
    except KeyError as exc:
        raise ScriptError(f"unknown modem {name!r}") from exc


# Training times: the one timing model (xmfax/t30/modem.py: V.27 ter 708/943 ms, V.29 253 ms,
# V.17 long 1393 ms, short 142 ms). V.21 has none here: its preamble is counted in flags
# (V21_PREAMBLE_FLAGS), as the TSB-85 messages give it.
def training_s(m: Modulation, short: bool = False) -> float:
    if m is Modulation.V21:
        return 0.0
    return m.training_s(short)


def data_s(m: Modulation, nbytes: int) -> float:
    return nbytes * 8 / m.bit_rate


V21_PREAMBLE_FLAGS = 37      # TSB-85 messages: slow HDLC preamble == 37 flag octets (~1 s)
DETECT_FLAGS = 3             # flags a V.21 receiver needs to report the carrier (80 ms)


def hdlc_s(frames, m: Modulation = Modulation.V21, preamble_flags: int = V21_PREAMBLE_FLAGS) -> float:
    """Air time of one HDLC transmission: preamble, frames with FCS and a flag each."""
    body = sum(len(f) + 3 for f in frames) + 2
    if m is Modulation.V21:
        return (preamble_flags + body) * 8 / 300
    return training_s(m) + body * 8 / m.bit_rate


# --------------------------------------------------------------------------- DCS / DIS bits
def bit(fif: bytes, n: int) -> bool:
    """Table 2/T.30 bit n (1-based) of a FIF in xmfax (wire, LSB-first) octets."""
    i, b = divmod(n - 1, 8)
    return i < len(fif) and bool(fif[i] >> b & 1)


_DCS_RATES = {  # Table 2/T.30 DCS bits 11, 12, 13, 14
    (0, 0, 0, 0): Modulation.V27TER_2400,
    (0, 1, 0, 0): Modulation.V27TER_4800,
    (1, 0, 0, 0): Modulation.V29_9600,
    (1, 1, 0, 0): Modulation.V29_7200,
    (0, 0, 0, 1): Modulation.V17_14400,
    (0, 1, 0, 1): Modulation.V17_12000,
    (1, 0, 0, 1): Modulation.V17_9600,
    (1, 1, 0, 1): Modulation.V17_7200,
}
_SCAN_MS = {(0, 0, 0): 20, (0, 0, 1): 40, (0, 1, 0): 10, (1, 0, 0): 5, (1, 1, 1): 0,
            (0, 1, 1): 10, (1, 0, 1): 20, (1, 1, 0): 5}   # Table 2/T.30 DCS bits 21-23


@dataclass(frozen=True)
class DCSInfo:
    """What a DCS sets up, decoded from its FIF (xmfax octets)."""

    modulation: Modulation | None
    codec: str               # "mh" | "mr" | "mmr"
    resolution: Resolution
    ecm: bool
    frame_size: int          # ECM frame size, 256 or 64 octets (bit 28)
    scan_ms: int             # minimum scan-line time at standard resolution

    @classmethod
    def decode(cls, fif: bytes) -> "DCSInfo":
        rate = _DCS_RATES.get(tuple(int(bit(fif, n)) for n in (11, 12, 13, 14)))
        codec = "mmr" if bit(fif, 31) else ("mr" if bit(fif, 16) else "mh")
        if bit(fif, 41):
            res = Resolution.SUPERFINE
        elif bit(fif, 15):
            res = Resolution.FINE
        else:
            res = Resolution.STANDARD
        return cls(rate, codec, res, bit(fif, 27), 64 if bit(fif, 28) else 256,
                   _SCAN_MS[tuple(int(bit(fif, n)) for n in (21, 22, 23))])

    def min_row_bits(self) -> int:
        """Bits per row the sender must reach (Table 2/T.30 bits 21-23, T.4 §4.1.1 fill)."""
        ms = self.scan_ms
        if self.resolution is Resolution.FINE:
            ms = ms // 2 if ms else 0  # (bit 49 'half at higher resolution' ignored: a floor)
        if not ms or self.modulation is None:
            return 0
        return ms * self.modulation.bit_rate // 1000


# --------------------------------------------------------------------------- pages
@functools.lru_cache(maxsize=32)
def load_pages(name: str) -> tuple[Page, ...]:
    """The ETSI 300 242 test pages in a TIFF, as xmfax Pages (black = True)."""
    from PIL import Image

    path = name if os.path.isabs(name) else os.path.join(PAGES_DIR, name)
    if not os.path.exists(path):
        raise ScriptError(f"test page {name} not found in {PAGES_DIR}")
    out = []
    with Image.open(path) as im:
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            arr = np.asarray(im.convert("1")) == 0
            ydpi = (im.info.get("dpi") or (204, 98))[1]
            res = Resolution.FINE if ydpi > 150 and ydpi < 300 else (
                Resolution.SUPERFINE if ydpi >= 300 else Resolution.STANDARD)
            out.append(Page(arr.copy(), res, source=f"{name}#{i + 1}"))
    return tuple(out)


def _codecs():
    from xmfax import codecs  # noqa: WPS433 (lazy: the codecs may still be landing)
    return codecs


def _k(res: Resolution) -> int:
    return 2 if res is Resolution.STANDARD else 4


# Rows the duration test pages stretch (T.4 §4.1.1 fill before an EOL).
LONG_ROW_SECONDS = {"etsi_300_242_a4_duration1.tif": 4.9, "etsi_300_242_a4_duration2.tif": 5.1}


class _Bits:
    """An LSB-first bit writer (T.4 bit order on the line)."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def put(self, bits: str) -> None:
        for ch in bits:
            if ch == "1":
                self.acc |= 1 << self.n
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                self.acc = 0
                self.n = 0

    def bytes(self) -> bytes:
        if self.n:
            return bytes(self.out) + bytes([self.acc])
        return bytes(self.out)


def _bits_of(data: bytes) -> str:
    return "".join(f"{b:08b}"[::-1] for b in data)


def _rows_of_mh(bits: str) -> list[str]:
    """Split an MH stream at its EOLs: [pre, row1 (with its EOL), row2, ..., tail]."""
    eol = "000000000001"
    idx = []
    i = bits.find(eol)
    while i >= 0:
        idx.append(i)
        i = bits.find(eol, i + 12)
    return [bits[a:b] for a, b in zip([0] + idx, idx + [len(bits)])]


def page_data(name: str, page_no: int, dcs: DCSInfo, *, bad_rows=(), rtc: bool = True) -> bytes:
    """Non-ECM page data for the tester's MSG step, LSB first, with RTC.

    ``bad_rows`` (0-based rows) are replaced by an invalid code (nine 0 bits
    and a 1, T.4 Table 1 has no such code) so that the receiver counts them as
    bad; a duration test page gets one row stretched with fill to its length."""
    page = load_pages(name)[page_no]
    codecs = _codecs()
    codec = dcs.codec
    if bad_rows or name in LONG_ROW_SECONDS:
        codec = "mh"  # row surgery is done on 1-D rows; the DCS says what the DUT expects
        if dcs.codec != "mh":
            raise ScriptError("damaged rows are only made for MH pages")
    data = codecs.encode(page.image, codec=codec, k=_k(page.resolution), eol=True,
                         rtc=rtc, min_row_bits=dcs.min_row_bits(), bit_order="lsb")
    if not bad_rows and name not in LONG_ROW_SECONDS:
        return data
    parts = _rows_of_mh(_bits_of(data))
    # parts[0] precedes the first EOL; parts[1..rows] are rows; RTC's EOLs follow
    bad = {int(r) for r in bad_rows}
    w = _Bits()
    w.put(parts[0])
    for i, part in enumerate(parts[1:]):
        row = i  # 0-based image row for the first `page.rows` parts
        if row < page.rows and row in bad:
            w.put("000000000001" + "0000000001")
            continue
        if row == page.rows // 2 and name in LONG_ROW_SECONDS and dcs.modulation:
            fill = int(LONG_ROW_SECONDS[name] * dcs.modulation.bit_rate) - len(part)
            w.put(part[:0] + "0" * max(0, fill) + part)   # fill precedes the EOL
            continue
        w.put(part)
    return w.bytes()


def ecm_image(name: str, page_no: int, codec: str, min_bits: int = 0) -> bytes:
    """The coded image of an ECM page (T.4 Annex A: no EOL fill, RTC/EOFB at the end)."""
    page = load_pages(name)[page_no]
    codecs = _codecs()
    if codec == "mmr":
        return codecs.encode(page.image, codec="mmr", eol=False, rtc=True,
                             min_row_bits=min_bits, bit_order="lsb")
    return codecs.encode(page.image, codec=codec, k=_k(page.resolution), eol=True, rtc=True,
                         min_row_bits=min_bits, bit_order="lsb")


def ecm_frames(image: bytes, frame_size: int, block: int) -> list[bytes]:
    """The FCD payloads (without the frame number) of block ``block`` (256 frames each)."""
    chunks = [image[i:i + frame_size] for i in range(0, len(image), frame_size)]
    start = block * 256
    return chunks[start:start + 256]


def tcf_data(m: Modulation, nbytes: int, pattern: int | None = None) -> bytes:
    """TCF: zeros (T.30's training check: 1.5 s of 0 bits); ``pattern`` = that many leading
    octets of alternating 0/1 bits (the TSB-85 "corrupted TCF" cases)."""
    head = bytes([0x55]) * min(pattern or 0, nbytes)
    return head + bytes(nbytes - len(head))
