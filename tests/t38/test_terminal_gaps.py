"""Lost packets in the T.38 terminal (issue #10, finding 1): a frame spanning a gap is never
accepted, never glued to the next one; non-ECM data gaps reach T.30 as lost data."""
from __future__ import annotations

import os
import sys

from xmfax.t30 import modem as M
from xmfax.t38.config import EC_NONE, T38Config
from xmfax.t38.ifp import DataPacket, DataType, Field, FieldType, Indicator, IndicatorPacket, encode_ifp
from xmfax.t38.terminal import NOISE, REVERSE, T38Terminal
from xmfax.t38.udptl import UDPTLSender

sys.path.insert(0, os.path.dirname(__file__))
from test_terminal_ifp import Scripted  # noqa: E402

V21 = DataType.V21
TSI = bytes([0xFF, 0x03, 0x43]) + b"REEP P" + b"   "
DCS = bytes([0xFF, 0x13, 0x83, 0x00, 0x46, 0x78])


def hdlc(*fields):
    return DataPacket(V21, tuple(Field(t, d.translate(REVERSE)) if d else Field(t) for t, d in fields))


PREAMBLE = IndicatorPacket(Indicator.V21_PREAMBLE)
NO_SIGNAL = IndicatorPacket(Indicator.NO_SIGNAL)
D, OK, OK_END = FieldType.HDLC_DATA, FieldType.HDLC_FCS_OK, FieldType.HDLC_FCS_OK_SIG_END

# A TSI then a DCS in one V.21 burst, as a gateway chunks them
BURST = [PREAMBLE,
         hdlc((D, TSI[:6])), hdlc((D, TSI[6:])), hdlc((OK, b"")),
         hdlc((D, DCS[:3])), hdlc((D, DCS[3:])), hdlc((OK_END, b"")),
         NO_SIGNAL]


def deliver(packets, drop=(), *, udptl, first_seq=0, jump_at=None):
    """Send ``packets`` to a terminal, losing those at the indices in ``drop``; with
    ``jump_at``, the far end's numbering restarts (+30000) at that index."""
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False, udp_ec=EC_NONE), udptl=udptl)
    term.start(0.0)
    tx = UDPTLSender(T38Config(udp_ec=EC_NONE), first_seq=first_seq)
    for i, p in enumerate(packets):
        if jump_at is not None and i == jump_at:
            tx.seq = (tx.seq + 30000) & 0xFFFF
        raw = encode_ifp(p)
        if udptl:
            gram = tx.pack(raw)
            if i not in drop:
                term.receive_datagram(gram, 0.0)
        elif i not in drop:
            term.receive_ifp(raw, 0.0, seq=(first_seq + i) & 0xFFFF)
    return [e for _, e in s.got], term


def frames(evs):
    return [(e.frame, e.fcs_ok) for e in evs if isinstance(e, M.HDLCFrame)]


def test_clean_burst():
    for udptl in (True, False):
        evs, _ = deliver(BURST, udptl=udptl)
        assert frames(evs) == [(TSI, True), (DCS, True)]


def test_lost_fcs_and_next_start_never_glue():
    # the end of the TSI, its fcs-OK and the start of the DCS lost: the rest of the TSI and
    # the end of the DCS must not come out as one good frame (ff 03 43 ... ff 13 ..)
    for udptl in (True, False):
        evs, term = deliver(BURST, drop={2, 3, 4}, udptl=udptl)
        got = frames(evs)
        assert all(not ok for _, ok in got), got
        assert term.stats.packets_lost == 3


def test_loss_before_the_first_data_of_a_frame():
    # the TSI's first chunk lost right after the preamble (no frame in progress yet): the
    # TSI's tail ends with fcs-OK, and must still be reported bad; the DCS is clean
    for udptl in (True, False):
        evs, _ = deliver(BURST, drop={1}, udptl=udptl)
        assert frames(evs) == [(TSI[6:], False), (DCS, True)]


def test_loss_of_indicator_and_frame_start():
    # the preamble and the TSI's first chunk lost: the data starts the carrier, still bad
    for udptl in (True, False):
        evs, _ = deliver([NO_SIGNAL] + BURST, drop={1, 2}, udptl=udptl)
        assert frames(evs) == [(TSI[6:], False), (DCS, True)]
        assert M.CarrierUp(M.Modulation.V21) in evs


def test_restart_of_numbering_mid_burst_is_a_loss():
    # the far end's numbering jumps by 30000 and the first packet after the jump (the TSI's
    # fcs-OK) is lost: the resync must count as a gap. Before the fix the TSI and the DCS came
    # out as one good frame, ff 03 43 ... ff 13 83 .., and the call ran into T2.
    evs, term = deliver(BURST, drop={3}, udptl=True, jump_at=3)
    assert frames(evs) == [(TSI + DCS, False)]
    assert term._receiver.stats.resyncs == 1


def test_sequence_wrap_inside_a_frame_is_seamless():
    evs, _ = deliver(BURST, udptl=True, first_seq=65533)
    assert frames(evs) == [(TSI, True), (DCS, True)]


T4 = DataType.V29_9600
MOD = M.Modulation.V29_9600


def t4(data, end=False):
    return DataPacket(T4, (Field(FieldType.T4_NON_ECM_SIG_END if end else FieldType.T4_NON_ECM_DATA,
                                 data.translate(REVERSE)),))


def test_non_ecm_gap_reaches_t30_as_lost_data():
    chunks = [bytes([i]) * 36 for i in range(1, 7)]
    pk = [IndicatorPacket(Indicator.V29_9600_TRAINING)] + [t4(c) for c in chunks[:-1]] + [t4(chunks[-1], True),
                                                                                        NO_SIGNAL]
    for udptl in (True, False):
        evs, term = deliver(pk, drop={3, 4}, udptl=udptl)
        data = [e for e in evs if isinstance(e, M.DataReceived)]
        assert [d.data for d in data] == [chunks[0], chunks[1], NOISE, chunks[4], chunks[5]]
        assert data[2].lost == 2 * 36 and all(d.lost == 0 for d in data if d.data != NOISE)
        assert term.stats.data_gaps == 1
        # the end of the page lost: reported before the carrier goes down
        evs, term = deliver(pk, drop={6}, udptl=udptl)
        assert evs[-2] == M.DataReceived(NOISE, MOD, lost=36) and evs[-1] == M.CarrierDown(MOD)


def test_noise_cannot_hold_an_eol_or_a_code():
    bits = "".join(f"{b:08b}"[::-1] for b in NOISE)       # LSB first, as on the line
    assert "0" * 9 not in bits and "00000000" in bits and bits[0] == bits[-1] == "1"
