"""The terminal's mapping of modem commands to IFP and of IFP to modem events,
with a scripted stand-in for the T.30 Session (the real one is tested in test_calls)."""
from __future__ import annotations

import pytest

from xmfax.t30 import modem as M
from xmfax.t38.config import RATE_LOCAL_TCF, T38Config
from xmfax.t38.ifp import (DataPacket, DataType, Field, FieldType, Indicator, IndicatorPacket,
                           decode_ifp, encode_ifp)
from xmfax.t38.terminal import REVERSE, T38Terminal, remove_fill_bits


class Scripted:
    """Emits ``script`` commands at start; records every modem event."""

    def __init__(self, script=()):
        self.script = list(script)
        self.got = []
        self.done = False
        self.result = None
        self._out = []

    def start(self, now):
        self._out += self.script

    def receive(self, ev, now):
        self.got.append((round(now, 3), ev))

    def handle_timer(self, now):
        pass

    def next_timer(self):
        return None

    def data_to_send(self):
        out, self._out = self._out, []
        return out

    def events(self):
        return []


def sent(term):
    return [decode_ifp(raw) for _, raw in term.packets_to_send()]


def run_until_idle(term, now=0.0, limit=100000):
    for _ in range(limit):
        t = term.next_timer()
        if t is None:
            return now
        now = max(now, t)
        term.handle_timer(now)
    raise AssertionError("terminal never went idle")


FRAME = bytes([0xFF, 0x13, 0x82, 1, 2, 3])
WIRE = FRAME.translate(REVERSE)   # T.38 carries data octets MSB first


def test_bit_reversal_table():
    assert REVERSE[0x01] == 0x80 and REVERSE[0x03] == 0xC0 and REVERSE[0xB4] == 0x2D
    assert bytes(range(256)).translate(REVERSE).translate(REVERSE) == bytes(range(256))


def test_unpaced_hdlc_and_data():
    s = Scripted([M.SendHDLC((FRAME[:3], FRAME)), M.SendData(M.Modulation.V29_9600, b"\x01" * 700)])
    term = T38Terminal(s, T38Config(paced=False, max_datagram=300, end_repeats=0), udptl=False)
    term.start(0.0)
    pk = sent(term)
    assert pk[0] == IndicatorPacket(Indicator.V21_PREAMBLE)
    assert pk[1] == DataPacket(DataType.V21, (Field(FieldType.HDLC_DATA, WIRE[:3]), Field(FieldType.HDLC_FCS_OK)))
    assert pk[2] == DataPacket(DataType.V21, (Field(FieldType.HDLC_DATA, WIRE), Field(FieldType.HDLC_FCS_OK_SIG_END)))
    assert pk[3] == IndicatorPacket(Indicator.NO_SIGNAL)
    assert pk[4] == IndicatorPacket(Indicator.V29_9600_TRAINING)
    data = b"".join(f.data for p in pk[5:-1] for f in p.fields)
    assert data == b"\x80" * 700 and pk[-2].fields[-1].type == FieldType.T4_NON_ECM_SIG_END
    assert [e for _, e in s.got] == [M.SendComplete(), M.SendComplete()]


def test_paced_timing_follows_modulation_rate():
    s = Scripted([M.SendData(M.Modulation.V17_14400, b"\x01" * 5400)])   # 3 s of data
    term = T38Terminal(s, T38Config(paced=True, chunk_ms=30, end_repeats=0), udptl=False)
    term.start(0.0)
    assert sent(term) == [IndicatorPacket(Indicator.V17_14400_LONG_TRAINING)]
    times = []
    now = 0.0
    while s.got == []:
        now = term.next_timer()
        term.handle_timer(now)
        if term._out:
            times.append(now)
            term.packets_to_send()
    # 54-octet chunks every 30 ms after 1393 ms of training; complete after the last
    assert times[0] == pytest.approx(1.393 + 0.030)
    assert times[-1] == pytest.approx(1.393 + 3.0)
    assert len(times) == 100
    assert s.got[-1] == (round(times[-1], 3), M.SendComplete())


def feed(term, *packets, now=0.0):
    for p in packets:
        term.receive_ifp(encode_ifp(p), now)


def test_receive_hdlc_events():
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False), udptl=False)
    term.start(0.0)
    V21 = DataType.V21
    feed(term, IndicatorPacket(Indicator.V21_PREAMBLE),
         DataPacket(V21, (Field(FieldType.HDLC_DATA, WIRE[:2]),)),
         DataPacket(V21, (Field(FieldType.HDLC_DATA, WIRE[2:]), Field(FieldType.HDLC_FCS_OK))),
         DataPacket(V21, (Field(FieldType.HDLC_DATA, WIRE), Field(FieldType.HDLC_FCS_BAD))),
         DataPacket(V21, (Field(FieldType.HDLC_SIG_END),)),
         DataPacket(V21, (Field(FieldType.HDLC_SIG_END),)),     # superfluous: tolerated
         IndicatorPacket(Indicator.NO_SIGNAL))
    evs = [e for _, e in s.got]
    assert evs == [M.CarrierUp(M.Modulation.V21), M.HDLCFrame(FRAME, True), M.HDLCFrame(FRAME, False),
                   M.CarrierDown(M.Modulation.V21)]
    assert term.stats.ignored["superfluous sig-end"] == 1


def test_lost_packet_marks_frame_bad_and_data_without_indicator_starts_carrier():
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False), udptl=False)
    term.start(0.0)
    V21 = DataType.V21
    term.receive_ifp(encode_ifp(DataPacket(V21, (Field(FieldType.HDLC_DATA, WIRE[:2]),))), 0, seq=10)
    term.receive_ifp(encode_ifp(DataPacket(V21, (Field(FieldType.HDLC_DATA, WIRE[4:]),
                                                 Field(FieldType.HDLC_FCS_OK_SIG_END)))), 0, seq=12)
    term.receive_ifp(b"\xff\xff", 0, seq=13)   # malformed: counted, not raised
    evs = [e for _, e in s.got]
    assert evs == [M.CarrierUp(M.Modulation.V21), M.HDLCFrame(FRAME[:2] + FRAME[4:], False),
                   M.CarrierDown(M.Modulation.V21)]
    assert term.stats.packets_lost == 1 and sum(term.stats.malformed.values()) == 1


def test_non_ecm_data_events():
    s = Scripted()
    term = T38Terminal(s, T38Config(paced=False), udptl=False)
    term.start(0.0)
    D = DataType.V27TER_4800
    feed(term, IndicatorPacket(Indicator.V27TER_4800_TRAINING),
         DataPacket(D, (Field(FieldType.T4_NON_ECM_DATA, b"ab".translate(REVERSE)),)),
         DataPacket(D, (Field(FieldType.T4_NON_ECM_SIG_END, b"cd".translate(REVERSE)),)),
         IndicatorPacket(Indicator.NO_SIGNAL), IndicatorPacket(Indicator.CED))
    m = M.Modulation.V27TER_4800
    assert [e for _, e in s.got] == [M.CarrierUp(m), M.DataReceived(b"ab", m), M.DataReceived(b"cd", m),
                                     M.CarrierDown(m), M.ToneDetected(M.Tone.CED)]


def test_local_tcf_skips_tcf_and_fakes_it_on_receive():
    from xmfax.t30.frames import DCS

    s = Scripted([M.SendData(M.Modulation.V29_9600, bytes(1800))])
    term = T38Terminal(s, T38Config(paced=False, rate_management=RATE_LOCAL_TCF), udptl=False)
    term.start(0.0)
    assert sent(term) == [] and [e for _, e in s.got] == [M.SendComplete()]
    s2 = Scripted()
    rx = T38Terminal(s2, T38Config(paced=False, rate_management=RATE_LOCAL_TCF), udptl=False)
    rx.start(0.0)
    dcs = bytes([0xFF, 0x13, 0x83]) + DCS(modulation=M.Modulation.V29_9600).encode()
    feed(rx, IndicatorPacket(Indicator.V21_PREAMBLE),
         DataPacket(DataType.V21, (Field(FieldType.HDLC_DATA, dcs.translate(REVERSE)), Field(FieldType.HDLC_FCS_OK_SIG_END))))
    evs = [e for _, e in s2.got]
    assert evs[1] == M.HDLCFrame(dcs, True)
    assert M.CarrierUp(M.Modulation.V29_9600) in evs
    tcf = [e for e in evs if isinstance(e, M.DataReceived)]
    assert tcf and not any(tcf[0].data) and len(tcf[0].data) == 1800


def test_fill_bit_removal():
    # an EOL (11 zeros then a 1) preceded by 20 fill zeros, LSB first; then data bits 1,0,1
    bits = [1, 0, 1] + [0] * 31 + [1] + [1, 0, 1]
    raw = sum(b << i for i, b in enumerate(bits)).to_bytes((len(bits) + 7) // 8, "little")
    out = remove_fill_bits(raw)
    want = [1, 0, 1] + [0] * 14 + [1] + [1, 0, 1]   # 11 EOL zeros + 3 a code word may end in
    got = [(out[i // 8] >> (i % 8)) & 1 for i in range(len(want))]
    assert got == want and len(out) == (len(want) + 7) // 8
