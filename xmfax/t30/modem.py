"""The modem interface: the boundary between the T.30 engine and every transport.

A Class 1 modem (T.31), a T.38 terminal and an audio modem stack all provide the
same service to T.30: V.21 HDLC frames at 300 bit/s, high-speed data (TCF, non-ECM
image data) and high-speed HDLC (ECM) at a chosen modulation, silences and tones.
The engine speaks to that service only through the values in this module:

* the engine emits **commands** (``session.data_to_send()``): things the line
  should do next, in order, or what it should listen for;
* the transport feeds back **modem events** (``session.receive(event, now)``):
  what was heard on the line, and when its own transmissions finished.

Frames here are always *address, control, FCF, FIF*: flags, bit stuffing and the
FCS are the modem's business (a transport that frames HDLC itself, such as a
Class 1 driver sending ECM data with +FTM, uses :mod:`xmfax.hdlc`).
Non-ECM image data and TCF are bytes in the order T.4 puts them on the line:
the first bit sent is the least significant bit of each byte (bit_order="lsb").
"""
from __future__ import annotations

import enum
from dataclasses import dataclass


class Family(enum.Enum):
    V21 = "V.21"
    V27TER = "V.27ter"
    V29 = "V.29"
    V17 = "V.17"


class Modulation(enum.Enum):
    """A modulation and rate. value = (family, bit/s, Class 1 code long, short)."""

    V21 = (Family.V21, 300, 3, 3)
    V27TER_2400 = (Family.V27TER, 2400, 24, 24)
    V27TER_4800 = (Family.V27TER, 4800, 48, 48)
    V29_7200 = (Family.V29, 7200, 72, 72)
    V29_9600 = (Family.V29, 9600, 96, 96)
    V17_7200 = (Family.V17, 7200, 73, 74)
    V17_9600 = (Family.V17, 9600, 97, 98)
    V17_12000 = (Family.V17, 12000, 121, 122)
    V17_14400 = (Family.V17, 14400, 145, 146)

    def __init__(self, family: Family, bit_rate: int, class1_long: int, class1_short: int):
        self.family = family
        self.bit_rate = bit_rate
        self.class1_long = class1_long
        self.class1_short = class1_short

    def class1_code(self, short_training: bool = False) -> int:
        """The +FTM/+FRM/+FTH/+FRH modulation code (T.31 Table 2)."""
        return self.class1_short if short_training else self.class1_long

    def training_ms(self, short_training: bool = False) -> int:
        """Start-up time of a transmission at this modulation, in ms: the training sequence
        of a high-speed modem (the short one if asked and the family has one), or the V.21
        preamble of flags (see TRAINING_MS)."""
        long_ms, short_ms = TRAINING_MS[self]
        return short_ms if short_training else long_ms

    def training_s(self, short_training: bool = False) -> float:
        """:meth:`training_ms` in seconds."""
        return self.training_ms(short_training) / 1000

    def __str__(self) -> str:
        return f"{self.family.value} {self.bit_rate}"


# --------------------------------------------------------------------------- timing model
# The one timing model of the line: every user (the in-memory line in pair.py, the T.38
# terminal's pacing, the TSB-85 line in tests/conformance, the Class 1 driver's timeouts)
# reads these instead of keeping its own values.
#
# Training sequences, (long, short) in ms, from the segments' symbol counts (the same
# counts native/audio's modems send), to within half a millisecond; clause numbers are left
# out, as they could not be checked here:
# V.27 ter training, segments 3-5 (50 reversals, 1074 conditioning, 8 ones = 1132 symbols):
#   708 ms at 4800 bit/s (1600 baud), 943 ms at 2400 bit/s (1200 baud); the optional
#   185-200 ms echo-protection tone and 20 ms of silence before them are not counted;
# V.29 training, segments 1-4 (48 silent, 128 alternations, 384 conditioning, 48 ones
#   = 608 symbols at 2400 baud) = 253 ms;
# V.17 long training, segments 1-4 (256 alternations, 2976 conditioning, 64 bridge, 48 ones
#   = 3344 symbols at 2400 baud) = 1393 ms; short training (256, 38 conditioning, no bridge,
#   48 = 342 symbols) = 142 ms.
# V.27 ter and V.29 have no short train: their short form is the long one.
# V.21 has no training: its start-up is T.30's preamble of flags.
V21_PREAMBLE_MS = 1000           # T.30 §5.3.1: 1 s +-15 % of flags before the first V.21 frame
_V27TER_4800, _V27TER_2400, _V29, _V17_LONG, _V17_SHORT = 708, 943, 253, 1393, 142
TRAINING_MS: dict[Modulation, tuple[int, int]] = {
    Modulation.V21: (V21_PREAMBLE_MS, V21_PREAMBLE_MS),
    Modulation.V27TER_2400: (_V27TER_2400, _V27TER_2400),
    Modulation.V27TER_4800: (_V27TER_4800, _V27TER_4800),
    Modulation.V29_7200: (_V29, _V29),
    Modulation.V29_9600: (_V29, _V29),
    Modulation.V17_7200: (_V17_LONG, _V17_SHORT),
    Modulation.V17_9600: (_V17_LONG, _V17_SHORT),
    Modulation.V17_12000: (_V17_LONG, _V17_SHORT),
    Modulation.V17_14400: (_V17_LONG, _V17_SHORT),
}
SILENCE_MS = 75                  # T.30 §5 Notes 3 and 4: 75 +-20 ms before signalling in another modulation
TCF_MS = 1500                    # T.30: TCF is 1.5 s +-10 % of zeros at the DCS's rate (tcf.py)
HS_FLAGS_MS = 200                # T.30 Annex A (clause not checked): 200 ms of flags before ECM frames
CNG_MS = 500                     # T.30 §4.1: CNG 0.5 s on
CED_MS = 3000                    # T.30 §4.2: CED 2.6 s to 4 s


class Tone(enum.Enum):
    CNG = "CNG"   # calling tone, 1100 Hz (T.30 §4.1)
    CED = "CED"   # called station identification, 2100 Hz (T.30 §4.2)


# --------------------------------------------------------------------------- commands
class Command:
    """Something the engine asks the line to do (base class)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SendSilence(Command):
    """Keep the line silent for ``ms`` milliseconds (Class 1 +FTS)."""

    ms: int


@dataclass(frozen=True, slots=True)
class SendTone(Command):
    """Send CED or CNG for ``ms`` milliseconds (0: the transport's usual length)."""

    tone: Tone
    ms: int = 0


@dataclass(frozen=True, slots=True)
class SendHDLC(Command):
    """One transmission of HDLC frames: preamble, each frame (the modem adds
    the FCS), closing flags, carrier off. ``frames`` are address, control, FCF,
    FIF. At V.21 these are T.30 control frames; at a high-speed modulation they
    are ECM (T.30 Annex A) frames."""

    frames: tuple[bytes, ...]
    modulation: Modulation = Modulation.V21
    short_training: bool = False


@dataclass(frozen=True, slots=True)
class SendData(Command):
    """One high-speed transmission of raw data (TCF, or a non-ECM page with
    its RTC), LSB first on the line; carrier off at the end."""

    modulation: Modulation
    data: bytes
    short_training: bool = False


class Expect(enum.Enum):
    HDLC = "hdlc"   # HDLC frames (V.21 control frames, or ECM frames at a high-speed modulation)
    DATA = "data"   # raw high-speed data (TCF or a non-ECM page)


@dataclass(frozen=True, slots=True)
class Receive(Command):
    """Listen for the next signal: what T.30 expects at this point of the call.

    A transport that must tell its modem what to listen for (Class 1 +FRH/+FRM)
    uses it; one that hears everything (T.38) may treat it as a hint. Whatever
    actually arrives is reported, even if it is not what was expected (a V.21
    frame where high-speed data was expected is common and legal)."""

    expect: Expect
    modulation: Modulation = Modulation.V21
    short_training: bool = False


@dataclass(frozen=True, slots=True)
class Hangup(Command):
    """The session is over; release the line."""


# --------------------------------------------------------------------------- events
class ModemEvent:
    """Something the transport reports to the engine (base class)."""

    __slots__ = ()


@dataclass(frozen=True, slots=True)
class SendComplete(ModemEvent):
    """A SendHDLC or SendData has been completely transmitted (carrier off).

    Exactly one per SendHDLC/SendData, in order; none for SendSilence or SendTone
    (the engine times those itself)."""


@dataclass(frozen=True, slots=True)
class CarrierUp(ModemEvent):
    """A signal has started: V.21 flags, or high-speed training recognised."""

    modulation: Modulation


@dataclass(frozen=True, slots=True)
class HDLCFrame(ModemEvent):
    """One received HDLC frame (address, control, FCF, FIF; FCS removed)."""

    frame: bytes
    fcs_ok: bool = True
    modulation: Modulation = Modulation.V21


@dataclass(frozen=True, slots=True)
class DataReceived(ModemEvent):
    """A chunk of raw high-speed data (TCF or non-ECM page), LSB first. ``lost``: about
    that many octets of the signal went missing just before this chunk (a T.38 packet lost)."""

    data: bytes
    modulation: Modulation
    lost: int = 0


@dataclass(frozen=True, slots=True)
class CarrierDown(ModemEvent):
    """The signal ended (end of frames, end of data, or carrier lost)."""

    modulation: Modulation


@dataclass(frozen=True, slots=True)
class WrongCarrier(ModemEvent):
    """Listened for one modulation, heard another (Class 1 +FCERROR)."""

    expected: Modulation
    heard: Modulation | None = None


@dataclass(frozen=True, slots=True)
class ToneDetected(ModemEvent):
    tone: Tone


@dataclass(frozen=True, slots=True)
class LineLost(ModemEvent):
    """The call is gone (hang-up, loss of the transport, modem failure)."""

    reason: str = ""
