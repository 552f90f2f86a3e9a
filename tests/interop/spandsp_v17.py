"""spandsp's V.17 modem through ctypes, as the peer of xmfax's.

Prototypes for ``v17_tx_*`` and ``v17_rx_*`` (spandsp/v17tx.h, v17rx.h) added to the loader
of ``spandsp_audio`` (tests/interop/spandsp_audio.py), and two small wrappers:
:class:`SpandspV17Tx` (bits in, samples out; long or short training) and
:class:`SpandspV17Rx` (samples in, bits and status changes out, and optionally the
constellation points its slicer reports), built on spandsp_psk's. Nothing here is a test.
"""
from __future__ import annotations

import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spandsp_audio import (GET_BIT, MODEM_STATUS, PUT_BIT, f32, i16p, i32,  # noqa: E402
                           loader_with, vp)
from spandsp_psk import SpandspRx, SpandspTx  # noqa: E402


class ComplexF(ctypes.Structure):
    _fields_ = [("re", ctypes.c_float), ("im", ctypes.c_float)]


# spandsp/complex.h, spandsp/power_meter.h: qam_report_handler_t
QAM_REPORT = ctypes.CFUNCTYPE(None, vp, ctypes.POINTER(ComplexF), ctypes.POINTER(ComplexF), i32)

_SIGS = {
    "v17_tx_init": (vp, [vp, i32, i32, GET_BIT, vp]),
    "v17_tx_restart": (i32, [vp, i32, i32, i32]),
    "v17_tx_free": (i32, [vp]),
    "v17_tx_power": (None, [vp, f32]),
    "v17_tx": (i32, [vp, i16p, i32]),
    "v17_rx_init": (vp, [vp, i32, PUT_BIT, vp]),
    "v17_rx_restart": (i32, [vp, i32, i32]),
    "v17_rx_free": (i32, [vp]),
    "v17_rx": (i32, [vp, i16p, i32]),
    "v17_rx_signal_power": (f32, [vp]),
    "v17_rx_signal_cutoff": (None, [vp, f32]),
    "v17_rx_set_modem_status_handler": (None, [vp, MODEM_STATUS, vp]),
    "v17_rx_set_qam_report_handler": (None, [vp, QAM_REPORT, vp]),
}

RATES = (14400, 12000, 9600, 7200)
load = loader_with(_SIGS)        # libspandsp with the V.17 prototypes, or None


class SpandspV17Tx(SpandspTx):
    """spandsp's V.17 transmitter: sends ``bits`` then ends (get_bit returns END_OF_DATA).

    ``short_train``: the short training of V.17 (after a long one between the same
    modems), through ``v17_tx_restart``."""

    def __init__(self, rate: int, bits, short_train: bool = False, tep: bool = False,
                 level_dbm0: float | None = None):
        self._start(load(), "v17_tx", rate, bits, tep, level_dbm0, short_train)


class SpandspV17Rx(SpandspRx):
    """spandsp's V.17 receiver: collects the bits it delivers and its status reports.

    ``cutoff_dbm0`` sets its signal cut-off: T.30's -48 dBm0 off level by default.
    ``short_train``: expect a short training (``v17_rx_restart(..., 1)``; spandsp only
    accepts it after a long training it received itself, so this is for probing).
    ``report``: keep the (received, decided) constellation points it reports."""

    def __init__(self, rate: int, cutoff_dbm0: float | None = -48.0, short_train: bool = False,
                 report: bool = False):
        self.points: list[tuple[complex, complex, int]] = []
        self._qam = QAM_REPORT(self._on_qam)
        self._start(load(), "v17_rx", rate, cutoff_dbm0, short_train)
        if report:
            self.lib.v17_rx_set_qam_report_handler(self.state, self._qam, None)

    def restart(self, rate: int, short_train: bool) -> None:
        self.lib.v17_rx_restart(self.state, rate, int(short_train))

    def _on_qam(self, _user, constel, target, symbol):
        if constel and target:
            c, t = constel[0], target[0]
            self.points.append((complex(c.re, c.im), complex(t.re, t.im), symbol))
