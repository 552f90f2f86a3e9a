"""G.711 µ-law and A-law (ITU-T G.711), in C: linear int16 <-> 8-bit code words.

Also the level scale of the digital line: a sine at full scale (peak 32767) is
+3.14 dBm0 (G.711's theoretical load capacity), which is how every
level in xmfax.audio (T.30's -43 dBm0 cut-off, tone levels) maps onto samples.
"""
from __future__ import annotations

import math
from typing import Literal

import numpy as np

from ._c import as_i16, i16_in, i16_out, lib, u8_in, u8_out

__all__ = ["Law", "encode", "decode", "transcode", "tandem", "FULL_SCALE_DBM0",
           "dbm0_to_peak", "dbm0_to_rms", "level_dbm0"]

Law = Literal["ulaw", "alaw"]
_LAWS = {"alaw": 0, "ulaw": 1}

FULL_SCALE_DBM0 = 3.14       # G.711: a full-scale sine (peak 32767) is +3.14 dBm0


def _law(law: str) -> int:
    try:
        return _LAWS[law]
    except KeyError:
        raise ValueError(f"law is 'ulaw' or 'alaw', not {law!r}") from None


def _codes(codes) -> np.ndarray:
    if isinstance(codes, (bytes, bytearray, memoryview)):
        return np.frombuffer(codes, dtype=np.uint8)
    a = np.asarray(codes)
    if a.ndim != 1 or a.dtype != np.uint8:
        raise ValueError(f"G.711 codes must be bytes or a 1-D uint8 array, not {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def encode(samples, law: Law = "ulaw") -> bytes:
    """Linear int16 samples -> G.711 code words (one byte a sample)."""
    x = as_i16(samples)
    out = np.empty(len(x), dtype=np.uint8)
    if len(x):
        lib.xm_g711_encode(_law(law), i16_in(x), u8_out(out), len(x))
    else:
        _law(law)
    return out.tobytes()


def decode(codes, law: Law = "ulaw") -> np.ndarray:
    """G.711 code words (bytes or uint8 array) -> linear int16 samples."""
    c = _codes(codes)
    out = np.empty(len(c), dtype=np.int16)
    if len(c):
        lib.xm_g711_decode(_law(law), u8_in(c), i16_out(out), len(c))
    else:
        _law(law)
    return out


def transcode(codes, from_law: Law, to_law: Law) -> bytes:
    """Code words of one law to the other through the linear value (decode, re-encode).

    This is what a VoIP media gateway that transcodes through linear PCM does; G.711's
    direct µ/A conversion tables round a few dozen codes one step the other way."""
    c = _codes(codes)
    out = np.empty(len(c), dtype=np.uint8)
    f, t = _law(from_law), _law(to_law)
    if len(c):
        lib.xm_g711_transcode(f, t, u8_in(c), u8_out(out), len(c))
    return out.tobytes()


def tandem(samples) -> np.ndarray:
    """Linear samples after a µ-law -> A-law -> µ-law tandem (three G.711 codings)."""
    x = as_i16(samples)
    out = np.empty(len(x), dtype=np.int16)
    if len(x):
        lib.xm_g711_tandem(i16_in(x), i16_out(out), len(x))
    return out


def dbm0_to_peak(level_dbm0: float) -> float:
    """The peak amplitude (int16 scale) of a sine at ``level_dbm0``."""
    return 32767.0 * 10.0 ** ((level_dbm0 - FULL_SCALE_DBM0) / 20.0)


def dbm0_to_rms(level_dbm0: float) -> float:
    """The RMS (int16 scale) of any signal at ``level_dbm0``."""
    return dbm0_to_peak(level_dbm0) / math.sqrt(2.0)


def level_dbm0(samples) -> float:
    """The mean power of ``samples`` in dBm0 (-inf for silence)."""
    x = np.asarray(samples, dtype=np.float64)
    if not len(x):
        return float("-inf")
    p = float(np.mean(x * x))
    if p <= 0.0:
        return float("-inf")
    return 10.0 * math.log10(p / (dbm0_to_rms(0.0) ** 2))
