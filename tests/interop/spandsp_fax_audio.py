"""A ctypes harness for spandsp's audio fax terminal (``fax_state``: T.30 over its own
V.21, V.27 ter, V.29, V.17 modems and tones), used as a real peer for xmfax's AudioTerminal.

spandsp takes samples with ``fax_rx`` and gives them with ``fax_tx`` (int16, 8 kHz, any
block size); its timers count those samples, so nothing here touches real time. The
documents are TIFF files (``t30_set_tx_file`` / ``t30_set_rx_file``). The library is
loaded by :mod:`spandsp_audio` (A1's loader); the prototypes declared here are those of
spandsp/fax.h, t30.h and t30_api.h.

Nothing here is a test; tests skip (with :func:`unavailable_reason`) when the library
cannot be loaded.
"""
from __future__ import annotations

import ctypes

import numpy as np

import spandsp_audio as sa

vp, i32 = ctypes.c_void_p, ctypes.c_int
i16p = ctypes.POINTER(ctypes.c_int16)

# spandsp/t30.h, t30_api.h
MODEM_V27TER, MODEM_V29, MODEM_V17 = 1, 2, 4
COMPRESSION_1D, COMPRESSION_2D, COMPRESSION_T6 = 2, 4, 8
T30_ERR_OK = 0
PHASE_E = ctypes.CFUNCTYPE(None, vp, vp, i32)


class T30Stats(ctypes.Structure):
    """t30_stats_t (spandsp/t30.h)."""
    _fields_ = [(name, i32) for name in (
        "bit_rate", "error_correcting_mode", "pages_tx", "pages_rx", "pages_in_file",
        "x_resolution", "y_resolution", "width", "length", "image_size", "encoding",
        "bad_rows", "longest_bad_row_run", "error_correcting_mode_retries", "current_status")]


_SIGS = {
    "fax_init": (vp, [vp, i32]),
    "fax_free": (i32, [vp]),
    "fax_rx": (i32, [vp, i16p, i32]),
    "fax_tx": (i32, [vp, i16p, i32]),
    "fax_set_transmit_on_idle": (None, [vp, i32]),
    "fax_set_tep_mode": (None, [vp, i32]),
    "fax_get_t30_state": (vp, [vp]),
    "t30_set_tx_file": (None, [vp, ctypes.c_char_p, i32, i32]),
    "t30_set_rx_file": (None, [vp, ctypes.c_char_p, i32]),
    "t30_set_ecm_capability": (i32, [vp, i32]),
    "t30_set_supported_modems": (i32, [vp, i32]),
    "t30_set_supported_compressions": (i32, [vp, i32]),
    "t30_set_tx_ident": (i32, [vp, ctypes.c_char_p]),
    "t30_set_phase_e_handler": (None, [vp, PHASE_E, vp]),
    "t30_get_transfer_statistics": (None, [vp, ctypes.POINTER(T30Stats)]),
    "t30_call_active": (i32, [vp]),
}

_declared = False


def load():
    """libspandsp with the fax_state prototypes declared, or None."""
    global _declared
    lib = sa.load()
    if lib is None:
        return None
    if not _declared:
        sa.declare(lib, _SIGS)
        _declared = True
    return lib


def unavailable_reason() -> str:
    return sa.unavailable_reason() or "libspandsp.so.2 could not be loaded"


class SpandspFax:
    """One spandsp audio fax terminal. ``completion`` is its phase E code once the call
    has ended (0: OK), else None."""

    def __init__(self, calling: bool, *, tx_file: str | None = None, rx_file: str | None = None,
                 ecm: bool = True, modems: int = MODEM_V27TER | MODEM_V29 | MODEM_V17,
                 compressions: int = COMPRESSION_1D | COMPRESSION_2D | COMPRESSION_T6,
                 ident: str = "spandsp"):
        lib = load()
        if lib is None:
            raise RuntimeError(unavailable_reason())
        self.lib = lib
        self.completion: int | None = None
        self._phase_e = PHASE_E(self._on_phase_e)     # kept alive with the object
        self.s = lib.fax_init(None, 1 if calling else 0)
        if not self.s:
            raise RuntimeError("fax_init failed")
        lib.fax_set_transmit_on_idle(self.s, 1)       # the line never stalls: silence when idle
        self.t30 = lib.fax_get_t30_state(self.s)
        lib.t30_set_tx_ident(self.t30, ident.encode())
        lib.t30_set_ecm_capability(self.t30, 1 if ecm else 0)
        lib.t30_set_supported_modems(self.t30, modems)
        lib.t30_set_supported_compressions(self.t30, compressions)
        lib.t30_set_phase_e_handler(self.t30, self._phase_e, None)
        if tx_file:
            lib.t30_set_tx_file(self.t30, tx_file.encode(), -1, -1)
        if rx_file:
            lib.t30_set_rx_file(self.t30, rx_file.encode(), -1)

    def _on_phase_e(self, t30, user_data, code):
        self.completion = code

    def receive(self, samples: np.ndarray) -> None:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        if len(x):
            self.lib.fax_rx(self.s, x.ctypes.data_as(i16p), len(x))

    def send(self, n: int) -> np.ndarray:
        """``n`` samples for the line (zero-padded if spandsp gives fewer)."""
        out = np.zeros(n, np.int16)
        got = self.lib.fax_tx(self.s, out.ctypes.data_as(i16p), n)
        if got < n:
            out[max(got, 0):] = 0
        return out

    @property
    def active(self) -> bool:
        return bool(self.lib.t30_call_active(self.t30))

    def stats(self) -> T30Stats:
        st = T30Stats()
        self.lib.t30_get_transfer_statistics(self.t30, ctypes.byref(st))
        return st

    def close(self) -> None:
        if self.s:
            self.lib.fax_free(self.s)
            self.s = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
