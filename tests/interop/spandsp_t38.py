"""A ctypes harness for spandsp's T.38 terminal (libspandsp2), used as a real peer.

spandsp speaks IFP only: each packet it emits arrives through the tx handler
(with the number of copies it wants sent); packets go in through
``t38_core_rx_ifp_packet``. Time advances by calling
``t38_terminal_send_timeout`` with a number of 8 kHz samples. Documents are
TIFF files (``t30_set_tx_file`` / ``t30_set_rx_file``).

Nothing here is a test; tests import :class:`SpandspT38` and skip when
:func:`load` returns None.
"""
from __future__ import annotations

import ctypes
import ctypes.util

T38_TERMINAL_OPTION_NO_PACING = 0x01
T38_TERMINAL_OPTION_REGULAR_INDICATORS = 0x02
T38_TERMINAL_OPTION_NO_INDICATORS = 0x08
MODEM_V27TER, MODEM_V29, MODEM_V17 = 1, 2, 4
COMPRESSION_1D, COMPRESSION_2D, COMPRESSION_T6 = 2, 4, 8
T38_RATE_LOCAL_TCF, T38_RATE_TRANSFERRED_TCF = 1, 2
T30_ERR_OK = 0

_TX_HANDLER = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p,
                               ctypes.POINTER(ctypes.c_uint8), ctypes.c_int, ctypes.c_int)
_PHASE_E = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)


class T30Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "bit_rate", "error_correcting_mode", "pages_tx", "pages_rx", "pages_in_file",
        "x_resolution", "y_resolution", "width", "length", "image_size", "encoding",
        "bad_rows", "longest_bad_row_run", "error_correcting_mode_retries", "current_status")]


_lib = None


def load():
    """The spandsp library with prototypes set, or None when it is not installed."""
    global _lib
    if _lib is not None:
        return _lib
    for name in ("libspandsp.so.2", ctypes.util.find_library("spandsp")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    else:
        return None
    vp, i = ctypes.c_void_p, ctypes.c_int
    sigs = {
        "t38_terminal_init": (vp, [vp, i, _TX_HANDLER, vp]),
        "t38_terminal_free": (i, [vp]),
        "t38_terminal_send_timeout": (i, [vp, i]),
        "t38_terminal_set_config": (None, [vp, i]),
        "t38_terminal_set_fill_bit_removal": (None, [vp, i]),
        "t38_terminal_get_t30_state": (vp, [vp]),
        "t38_terminal_get_t38_core_state": (vp, [vp]),
        "t38_core_rx_ifp_packet": (i, [vp, ctypes.c_char_p, i, ctypes.c_uint16]),
        "t38_set_t38_version": (None, [vp, i]),
        "t38_set_data_rate_management_method": (None, [vp, i]),
        "t38_set_max_datagram_size": (None, [vp, i]),
        "t38_set_fastest_image_data_rate": (None, [vp, i]),
        "t30_set_tx_file": (None, [vp, ctypes.c_char_p, i, i]),
        "t30_set_rx_file": (None, [vp, ctypes.c_char_p, i]),
        "t30_set_ecm_capability": (i, [vp, i]),
        "t30_set_supported_modems": (i, [vp, i]),
        "t30_set_supported_compressions": (i, [vp, i]),
        "t30_set_tx_ident": (i, [vp, ctypes.c_char_p]),
        "t30_set_phase_e_handler": (None, [vp, _PHASE_E, vp]),
        "t30_get_transfer_statistics": (None, [vp, ctypes.POINTER(T30Stats)]),
        "t30_call_active": (i, [vp]),
    }
    for fname, (res, args) in sigs.items():
        fn = getattr(lib, fname)
        fn.restype = res
        fn.argtypes = args
    _lib = lib
    return lib


class SpandspT38:
    """One spandsp T.38 terminal.

    ``packets`` collects what it sent since the last ``take()`` as
    ``(ifp_bytes, copies)``. ``completion`` is the phase E code (0 = OK) once
    the call has ended, else None."""

    def __init__(self, calling: bool, *, tx_file: str | None = None, rx_file: str | None = None,
                 ecm: bool = True, modems: int = MODEM_V27TER | MODEM_V29 | MODEM_V17,
                 compressions: int = COMPRESSION_1D | COMPRESSION_2D | COMPRESSION_T6,
                 version: int = 0, paced: bool = True, regular_indicators: bool = False,
                 transferred_tcf: bool = True, ident: str = "spandsp"):
        lib = load()
        if lib is None:
            raise RuntimeError("libspandsp.so.2 not found")
        self.lib = lib
        self.packets: list[tuple[bytes, int]] = []
        self.completion: int | None = None
        self._tx = _TX_HANDLER(self._on_tx)     # keep the callbacks alive
        self._phase_e = _PHASE_E(self._on_phase_e)
        self.s = lib.t38_terminal_init(None, 1 if calling else 0, self._tx, None)
        if not self.s:
            raise RuntimeError("t38_terminal_init failed")
        cfg = (0 if paced else T38_TERMINAL_OPTION_NO_PACING) | \
            (T38_TERMINAL_OPTION_REGULAR_INDICATORS if regular_indicators else 0)
        lib.t38_terminal_set_config(self.s, cfg)
        self.core = lib.t38_terminal_get_t38_core_state(self.s)
        lib.t38_set_t38_version(self.core, version)
        lib.t38_set_data_rate_management_method(
            self.core, T38_RATE_TRANSFERRED_TCF if transferred_tcf else T38_RATE_LOCAL_TCF)
        self.t30 = lib.t38_terminal_get_t30_state(self.s)
        lib.t30_set_tx_ident(self.t30, ident.encode())
        lib.t30_set_ecm_capability(self.t30, 1 if ecm else 0)
        lib.t30_set_supported_modems(self.t30, modems)
        lib.t30_set_supported_compressions(self.t30, compressions)
        lib.t30_set_phase_e_handler(self.t30, self._phase_e, None)
        if tx_file:
            lib.t30_set_tx_file(self.t30, tx_file.encode(), -1, -1)
        if rx_file:
            lib.t30_set_rx_file(self.t30, rx_file.encode(), -1)

    def _on_tx(self, core, user_data, buf, length, count):
        self.packets.append((ctypes.string_at(buf, length), count))
        return 0

    def _on_phase_e(self, t30, user_data, code):
        self.completion = code

    def take(self) -> list[tuple[bytes, int]]:
        out, self.packets = self.packets, []
        return out

    def tick(self, samples: int = 160) -> None:
        """Advance spandsp's clock (160 samples = 20 ms)."""
        self.lib.t38_terminal_send_timeout(self.s, samples)

    def feed(self, ifp: bytes, seq: int) -> int:
        return self.lib.t38_core_rx_ifp_packet(self.core, ifp, len(ifp), seq & 0xFFFF)

    @property
    def active(self) -> bool:
        return bool(self.lib.t30_call_active(self.t30))

    def stats(self) -> T30Stats:
        st = T30Stats()
        self.lib.t30_get_transfer_statistics(self.t30, ctypes.byref(st))
        return st

    def close(self) -> None:
        if self.s:
            self.lib.t38_terminal_free(self.s)
            self.s = None

    def __del__(self):  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:
            pass
