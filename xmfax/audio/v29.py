"""V.29 fax modem (ITU-T V.29): 9600 bit/s (16-point QAM) and 7200 bit/s (8 points) at
2400 baud on a 1700 Hz carrier, in C (native/audio/v29.c).

Same shape as :mod:`xmfax.audio.v27ter`: :class:`V29Tx` takes bits and gives int16
8 kHz samples, starting with the training sequence of V.29 (segments 1-4: silence,
A/B alternations, the C/D conditioning pattern, scrambled ones); :class:`V29Rx` takes
samples and gives the data bits after the training, with status changes from
:meth:`~V29Rx.events` (carrier up/down, training succeeded/failed).
"""
from __future__ import annotations

from ._c import lib
from .v27ter import (CARRIER_DOWN, CARRIER_UP, TRAINING_FAILED, TRAINING_SUCCEEDED, ModemStatus,
                     _PskRx, _PskTx)

__all__ = ["ModemStatus", "V29Tx", "V29Rx", "CARRIER_UP", "CARRIER_DOWN",
           "TRAINING_SUCCEEDED", "TRAINING_FAILED"]


class V29Tx(_PskTx):
    """V.29 transmitter, ``rate`` 9600 or 7200 bit/s (V.29 has a single training
    sequence: ``long_train`` is accepted for symmetry with V.27 ter and ignored)."""
    _prefix = "xm_v29_tx"
    RATES = (9600, 7200)


class V29Rx(_PskRx):
    """V.29 receiver, ``rate`` 9600 or 7200 bit/s."""
    _prefix = "xm_v29_rx"
    LISTEN_KIND = lib.XM_LISTEN_HS_V29
    RATES = (9600, 7200)
