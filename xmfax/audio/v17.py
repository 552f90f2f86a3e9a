"""V.17 fax modem (ITU-T V.17): 14400, 12000, 9600 and 7200 bit/s, trellis-coded QAM at
2400 baud on an 1800 Hz carrier, in C (native/audio/v17.c).

Same shape as :mod:`xmfax.audio.v29`: :class:`V17Tx` takes bits and gives int16 8 kHz
samples, starting with V.17's long training (segments 1-4: alternations, equaliser
conditioning, bridge, scrambled ones) or its short one (``long_train=False``, after a
long one to the same receiver); :class:`V17Rx` takes samples and gives the data bits,
decoded by a Viterbi decoder of the 8-state trellis code, with status changes from
:meth:`~V17Rx.events`.  ``V17Rx.restart(rate, long_train=False)`` expects a short
training and reuses the equaliser learnt on the last long one.
"""
from __future__ import annotations

from ._c import lib
from .v27ter import (CARRIER_DOWN, CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED, ModemStatus,
                     _PskRx, _PskTx)

__all__ = ["ModemStatus", "V17Tx", "V17Rx", "CARRIER_UP", "CARRIER_DOWN",
           "TRAINING_SUCCEEDED", "TRAINING_FAILED"]


class V17Tx(_PskTx):
    """V.17 transmitter, ``rate`` 14400, 12000, 9600 or 7200 bit/s; ``long_train=False``
    sends the short training."""
    _prefix = "xm_v17_tx"
    RATES = (14400, 12000, 9600, 7200)


class V17Rx(_PskRx):
    """V.17 receiver, ``rate`` 14400, 12000, 9600 or 7200 bit/s."""
    _prefix = "xm_v17_rx"
    LISTEN_KIND = lib.XM_LISTEN_HS_V17
    RATES = (14400, 12000, 9600, 7200)

    # At the end of a carrier the Viterbi decoder gives the symbols it still holds (up to
    # 31, so up to 186 bits at once), and a dropout hold the bits it kept back when the
    # signal resumes (hold.h XM_HOLD_BITS): the bits buffer has room for them.
    SLACK = 256 + 2048

    def restart(self, rate: int | None = None, long_train: bool = True) -> None:
        """Expect a new carrier (at ``rate``, by default the same), with a long training,
        or a short one (``long_train=False``) after a long one received before."""
        if rate is not None:
            if rate not in self.RATES:
                raise ValueError(f"rate must be one of {self.RATES}, not {rate!r}")
            self.rate = rate
        lib.xm_v17_rx_restart(self._s, self.rate, int(bool(long_train)))
        self._events.clear()
