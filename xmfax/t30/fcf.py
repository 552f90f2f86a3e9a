"""T.30 facsimile control field (FCF) codes (T.30 §5.3.6.1, Table 1/T.30 in §5.3.6.1).

Values are the octet as it appears in an HDLC frame: T.30 writes each FCF with
its first transmitted bit on the left, and HDLC sends the least significant
bit first, so "0000 0001" (DIS) is the octet 0x80. The first transmitted bit
(0x01 here) is the **X bit** (T.30 §5.3.6.1): 1 in frames sent by the station
that received a valid DIS, 0 otherwise. It is *not* part of the codes below,
except for the initial identification frames, where it tells DIS from DTC,
CSI from CIG and NSF from NSC.
"""
from __future__ import annotations

import enum

X_BIT = 0x01


class FCF(enum.IntEnum):
    """Frame types, with the X bit clear (initial identification frames: as sent)."""

    # T.30 §5.3.6.1.1 initial identification (X bit is part of the code)
    DIS = 0x80   # digital identification signal
    CSI = 0x40   # called subscriber identification
    NSF = 0x20   # non-standard facilities
    DTC = 0x81   # digital transmit command (polling)
    CIG = 0x41   # calling subscriber identification
    NSC = 0x21   # non-standard facilities command
    PWD = 0xC1   # password (for polling)
    SEP = 0xA1   # selective polling
    PSA = 0x61   # polled subaddress
    # T.30 §5.3.6.1.2 command to send
    DCS = 0x82   # digital command signal
    TSI = 0x42   # transmitting subscriber identification
    NSS = 0x22   # non-standard facilities set-up
    SUB = 0xC2   # subaddress
    SID = 0xA2   # sender identification
    # T.30 §5.3.6.1.3 pre-message response
    CFR = 0x84   # confirmation to receive
    FTT = 0x44   # failure to train
    # T.30 §5.3.6.1.4 post-message commands
    EOM = 0x8E   # end of message (back to phase B)
    MPS = 0x4E   # multipage signal
    EOP = 0x2E   # end of procedure
    PRI_EOM = 0x9E
    PRI_MPS = 0x5E
    PRI_EOP = 0x3E
    PPS = 0xBE   # partial page signal (ECM, Annex A)
    EOR = 0xCE   # end of retransmission (ECM)
    RR = 0x6E    # receive ready (ECM)
    CTC = 0x12   # continue to correct (ECM)
    # T.30 §5.3.6.1.5 post-message responses
    MCF = 0x8C   # message confirmation
    RTN = 0x4C   # retrain negative
    RTP = 0xCC   # retrain positive
    PIN = 0x2C   # procedure interrupt negative
    PIP = 0xAC   # procedure interrupt positive
    PPR = 0xBC   # partial page request (ECM)
    RNR = 0xEC   # receive not ready (ECM)
    ERR = 0x1C   # response for end of retransmission (ECM)
    CTR = 0xC4   # response for continue to correct (ECM)
    # T.30 §5.3.6.1.6-7 line control
    DCN = 0xFA   # disconnect
    CRP = 0x1A   # command repeat
    FNV = 0xCA   # field not valid
    # T.30 Annex A.3 ECM data frames (sent at the high-speed modulation)
    FCD = 0x06   # facsimile coded data
    RCP = 0x86   # return to control for partial page


# The frames whose X bit is part of their meaning (T.30 §5.3.6.1.1).
_IDENT = {int(f) for f in (FCF.DIS, FCF.CSI, FCF.NSF, FCF.DTC, FCF.CIG, FCF.NSC,
                           FCF.PWD, FCF.SEP, FCF.PSA)}
_BY_VALUE = {int(f): f for f in FCF}

# the PRI-Q post-message commands (T.30 §5.3.6.1.4) mean the same here as the plain ones
PRI_Q_BASE = {FCF.PRI_MPS: FCF.MPS, FCF.PRI_EOP: FCF.EOP, FCF.PRI_EOM: FCF.EOM}


def split(octet: int) -> tuple[FCF | None, int]:
    """(frame type, X bit) for a received FCF octet; None if unknown.

    Identification frames are looked up with the X bit (DIS vs DTC), every
    other frame with it masked off. FCD/RCP (ECM data frames) carry no X bit.
    """
    octet &= 0xFF
    if octet in _IDENT:
        return _BY_VALUE[octet], octet & X_BIT
    base = octet & ~X_BIT & 0xFF
    f = _BY_VALUE.get(base)
    if f is None or base in _IDENT:
        return None, octet & X_BIT
    return f, octet & X_BIT


def octet(fcf: FCF, x_bit: int) -> int:
    """The FCF octet to send: identification frames as they are, the rest with X."""
    if int(fcf) in _IDENT or fcf in (FCF.FCD, FCF.RCP):
        return int(fcf)
    return int(fcf) | (X_BIT if x_bit else 0)
