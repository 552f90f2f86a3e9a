"""spandsp's V.27 ter and V.29 modems through ctypes, as the peer of xmfax's.

Prototypes for ``v27ter_tx/rx`` and ``v29_tx/rx`` (spandsp/v27ter_tx.h, v27ter_rx.h,
v29tx.h, v29rx.h) added to the loader of ``spandsp_audio`` (tests/interop/spandsp_audio.py), and two
small wrappers: :class:`SpandspTx` (bits in, samples out) and :class:`SpandspRx`
(samples in, bits and status changes out), which spandsp_v17's V.17 wrappers build on.
Nothing here is a test.
"""
from __future__ import annotations

import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from spandsp_audio import (GET_BIT, MODEM_STATUS, PUT_BIT, f32, i16p, i32,  # noqa: E402
                           loader_with, vp)

SIG_STATUS_CARRIER_DOWN, SIG_STATUS_CARRIER_UP = -1, -2
SIG_STATUS_TRAINING_IN_PROGRESS, SIG_STATUS_TRAINING_SUCCEEDED = -3, -4
SIG_STATUS_TRAINING_FAILED, SIG_STATUS_END_OF_DATA = -5, -7

_SIGS = {}
for _m in ("v27ter", "v29"):
    _tx = "v27ter_tx" if _m == "v27ter" else "v29_tx"
    _rx = "v27ter_rx" if _m == "v27ter" else "v29_rx"
    _SIGS.update({
        f"{_tx}_init": (vp, [vp, i32, i32, GET_BIT, vp]),
        f"{_tx}_free": (i32, [vp]),
        f"{_tx}_power": (None, [vp, f32]),
        f"{_tx}": (i32, [vp, i16p, i32]),
        f"{_rx}_init": (vp, [vp, i32, PUT_BIT, vp]),
        f"{_rx}_free": (i32, [vp]),
        f"{_rx}": (i32, [vp, i16p, i32]),
        f"{_rx}_signal_power": (f32, [vp]),
        f"{_rx}_signal_cutoff": (None, [vp, f32]),
        f"{_rx}_set_modem_status_handler": (None, [vp, MODEM_STATUS, vp]),
    })

load = loader_with(_SIGS)        # libspandsp with the V.27 ter / V.29 prototypes, or None


def _names(modem: str) -> tuple[str, str]:
    if modem not in ("v27ter", "v29"):
        raise ValueError(modem)
    return ("v27ter_tx", "v27ter_rx") if modem == "v27ter" else ("v29_tx", "v29_rx")


class SpandspTx:
    """spandsp's transmitter: sends ``bits`` then ends (get_bit returns END_OF_DATA)."""

    def __init__(self, modem: str, rate: int, bits, tep: bool = False, level_dbm0: float | None = None):
        self._start(load(), _names(modem)[0], rate, bits, tep, level_dbm0)

    def _start(self, lib, tx: str, rate: int, bits, tep: bool, level_dbm0: float | None,
               short_train: bool = False) -> None:
        """Make spandsp's ``<tx>_init`` (then ``<tx>_restart`` for a short training, the
        V.17 transmitter's) on ``lib``; every modem's wrapper starts here."""
        self.lib = lib
        self._tx = tx
        self.bits = [int(b) & 1 for b in bits]
        self.pos = 0
        self._cb = GET_BIT(self._get_bit)
        self.state = getattr(self.lib, f"{self._tx}_init")(None, rate, int(tep), self._cb, None)
        if not self.state:
            raise RuntimeError(f"{self._tx}_init failed for rate {rate}")
        if short_train:
            getattr(self.lib, f"{self._tx}_restart")(self.state, rate, int(tep), 1)
        if level_dbm0 is not None:
            getattr(self.lib, f"{self._tx}_power")(self.state, float(level_dbm0))

    def _get_bit(self, _user):
        if self.pos >= len(self.bits):
            return SIG_STATUS_END_OF_DATA
        b = self.bits[self.pos]
        self.pos += 1
        return b

    def generate(self, n: int) -> np.ndarray:
        buf = np.zeros(n, dtype=np.int16)
        got = getattr(self.lib, self._tx)(self.state, buf.ctypes.data_as(i16p), n)
        return buf[:got]

    def all(self, max_samples: int = 8000 * 120) -> np.ndarray:
        """Every sample until the transmitter stops."""
        out = []
        total = 0
        while total < max_samples:
            chunk = self.generate(160)
            out.append(chunk)
            total += len(chunk)
            if len(chunk) < 160:
                break
        return np.concatenate(out) if out else np.zeros(0, np.int16)

    def close(self) -> None:
        if self.state:
            getattr(self.lib, f"{self._tx}_free")(self.state)
            self.state = None

    def __del__(self):
        self.close()


class SpandspRx:
    """spandsp's receiver: collects the bits it delivers and its status reports.

    ``cutoff_dbm0`` sets its signal cut-off (``*_rx_signal_cutoff``): the default, T.30's
    -48 dBm0 off level, lets it hold the -43 dBm0 signals T.30 requires (at its own default,
    or at -45, it loses a -43 dBm0 V.29 carrier, its own as well as ours)."""

    def __init__(self, modem: str, rate: int, cutoff_dbm0: float | None = -48.0):
        self._start(load(), _names(modem)[1], rate, cutoff_dbm0)

    def _start(self, lib, rx: str, rate: int, cutoff_dbm0: float | None,
               short_train: bool = False) -> None:
        """Make spandsp's ``<rx>_init`` (then ``<rx>_restart`` for a short training, the
        V.17 receiver's) on ``lib``; every modem's wrapper starts here."""
        self.lib = lib
        self._rx = rx
        self.bits: list[int] = []
        self.status: list[int] = []
        self._put = PUT_BIT(self._put_bit)
        self._st = MODEM_STATUS(self._status)
        self.state = getattr(self.lib, f"{self._rx}_init")(None, rate, self._put, None)
        if not self.state:
            raise RuntimeError(f"{self._rx}_init failed for rate {rate}")
        if short_train:
            getattr(self.lib, f"{self._rx}_restart")(self.state, rate, 1)
        getattr(self.lib, f"{self._rx}_set_modem_status_handler")(self.state, self._st, None)
        if cutoff_dbm0 is not None:
            getattr(self.lib, f"{self._rx}_signal_cutoff")(self.state, float(cutoff_dbm0))

    def _put_bit(self, _user, bit):
        if bit < 0:
            self.status.append(bit)
        else:
            self.bits.append(bit & 1)

    def _status(self, _user, status):
        self.status.append(status)

    def receive(self, samples, block: int = 160) -> None:
        s = np.ascontiguousarray(samples, dtype=np.int16)
        for i in range(0, len(s), block):
            chunk = np.ascontiguousarray(s[i:i + block])
            getattr(self.lib, self._rx)(self.state, chunk.ctypes.data_as(i16p), len(chunk))

    @property
    def trained(self) -> bool:
        return SIG_STATUS_TRAINING_SUCCEEDED in self.status

    def close(self) -> None:
        if self.state:
            getattr(self.lib, f"{self._rx}_free")(self.state)
            self.state = None

    def __del__(self):
        self.close()
