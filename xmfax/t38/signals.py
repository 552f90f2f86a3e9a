"""T.30 signals on T.38: the IFP data type of each modulation, the training indicator of each
(modulation, short training), and the start-up times a paced terminal waits for.

Moved here from terminal.py (terminal.py re-exports every name); the times come from the
timing model in xmfax/t30/modem.py."""
from __future__ import annotations

from ..t30 import modem as M
from .ifp import DataType, Indicator

__all__ = ["DATA_TYPE", "MODULATION", "TRAINING", "INDICATED", "TRAINING_MS", "V21_PREAMBLE_MS",
           "HS_FLAGS_MS", "TONE_MS"]

Mod = M.Modulation

# T.38 data type of each modulation, and back
DATA_TYPE = {
    Mod.V21: DataType.V21, Mod.V27TER_2400: DataType.V27TER_2400, Mod.V27TER_4800: DataType.V27TER_4800,
    Mod.V29_7200: DataType.V29_7200, Mod.V29_9600: DataType.V29_9600,
    Mod.V17_7200: DataType.V17_7200, Mod.V17_9600: DataType.V17_9600,
    Mod.V17_12000: DataType.V17_12000, Mod.V17_14400: DataType.V17_14400,
}
MODULATION = {v: k for k, v in DATA_TYPE.items()}

# training indicator of (modulation, short training)
TRAINING = {
    (Mod.V27TER_2400, False): Indicator.V27TER_2400_TRAINING,
    (Mod.V27TER_4800, False): Indicator.V27TER_4800_TRAINING,
    (Mod.V29_7200, False): Indicator.V29_7200_TRAINING,
    (Mod.V29_9600, False): Indicator.V29_9600_TRAINING,
    (Mod.V17_7200, False): Indicator.V17_7200_LONG_TRAINING,
    (Mod.V17_7200, True): Indicator.V17_7200_SHORT_TRAINING,
    (Mod.V17_9600, False): Indicator.V17_9600_LONG_TRAINING,
    (Mod.V17_9600, True): Indicator.V17_9600_SHORT_TRAINING,
    (Mod.V17_12000, False): Indicator.V17_12000_LONG_TRAINING,
    (Mod.V17_12000, True): Indicator.V17_12000_SHORT_TRAINING,
    (Mod.V17_14400, False): Indicator.V17_14400_LONG_TRAINING,
    (Mod.V17_14400, True): Indicator.V17_14400_SHORT_TRAINING,
}
INDICATED = {v: k[0] for k, v in TRAINING.items()}
INDICATED[Indicator.V21_PREAMBLE] = Mod.V21
# the short-training form has no V.27ter/V.29 variant: use the long one
for (_m, _short), _ind in list(TRAINING.items()):
    TRAINING.setdefault((_m, True), _ind)

# Start-up time of each signal in ms, for pacing, read from the one timing model in
# xmfax/t30/modem.py (training: V.27 ter, V.29, V.17; T.30 §5.3.1 V.21 preamble; T.30
# Annex A flags before high-speed HDLC). The V.21 preamble indicator's own lead is V21_PREAMBLE_MS.
TRAINING_MS = {ind: mod.training_ms(short) for (mod, short), ind in TRAINING.items()}
TRAINING_MS[Indicator.V21_PREAMBLE] = 0
V21_PREAMBLE_MS = M.V21_PREAMBLE_MS
HS_FLAGS_MS = M.HS_FLAGS_MS
TONE_MS = {M.Tone.CNG: M.CNG_MS, M.Tone.CED: M.CED_MS}
