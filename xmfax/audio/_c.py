"""The loader of the C modems: ``ffi`` and ``lib`` of ``xmfax._modems``.

The audio modems have no pure-Python path (unlike the codecs): without the built
extension, importing any of xmfax.audio's modem modules raises ImportError with how
to build it.
"""
from __future__ import annotations

try:
    from xmfax._modems import ffi, lib
except ImportError as exc:     # pragma: no cover - only without a C build
    raise ImportError(
        "xmfax's C audio modems (xmfax._modems) are not built: run "
        "`python3 setup.py build_ext --inplace` (needs a C compiler and cffi), "
        f"or `pip install -e .` ({exc})") from exc

import numpy as np

__all__ = ["ffi", "lib", "i16_in", "i16_out", "u8_in", "u8_out", "as_i16"]


def as_i16(samples) -> np.ndarray:
    """Samples as a C-contiguous int16 array (a copy only when needed); ValueError if not 1-D."""
    a = np.asarray(samples)
    if a.ndim != 1:
        raise ValueError(f"samples must be a 1-D array, not shape {a.shape}")
    if a.dtype != np.int16:
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"samples must be int16 (or integers), not {a.dtype}")
        if a.size and (a.min() < -32768 or a.max() > 32767):
            raise ValueError("samples out of the int16 range")
        a = a.astype(np.int16)
    return np.ascontiguousarray(a)


def i16_in(a: np.ndarray):
    return ffi.from_buffer("int16_t[]", a)


def i16_out(a: np.ndarray):
    return ffi.from_buffer("int16_t[]", a, require_writable=True)


def u8_in(a):
    return ffi.from_buffer("uint8_t[]", a)


def u8_out(a: np.ndarray):
    return ffi.from_buffer("uint8_t[]", a, require_writable=True)
