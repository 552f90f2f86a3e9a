"""The conformance runner's own pieces: script parsing, octet order, DCS
decoding, damaged page data, frame matching, and robustness against a DUT that
raises, stays silent or livelocks (each must give one failed test, bounded)."""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import runner  # noqa: E402
import tsb85_line as line  # noqa: E402
from tsb85_script import DEFAULT_XML, Repeat, Step, TestCase, hex_value, parse  # noqa: E402
from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.result import Reason  # noqa: E402

needs_xml = pytest.mark.skipif(not os.path.exists(DEFAULT_XML), reason=f"{DEFAULT_XML} not present")


@needs_xml
def test_script_has_all_annexes():
    s = parse(DEFAULT_XML)
    assert len(s.tests) == 138
    counts = {}
    for t in s.tests:
        counts[t.annex] = counts.get(t.annex, 0) + 1
    assert counts == {"A": 18, "B": 3, "C": 10, "D": 15, "E": 3, "F": 28, "G": 22, "H": 6, "I": 23, "J": 10}
    oren01 = s.by_name("OREN01")
    assert any(isinstance(i, Repeat) and i.min == 0 for i in oren01.items)


def test_octet_order_and_hex():
    raw, open_ended = hex_value("FF C8 01 ...")
    assert open_ended and raw == b"\xff\xc8\x01"
    assert line.to_wire(raw) == bytes([0xFF, 0x13, 0x80])        # DIS, final frame
    assert line.to_wire(bytes([0x5F])) == bytes([0xFA])           # DCN
    assert line.fmt(bytes([0xFF, 0x13, 0x84])) == "FF C8 21"      # CFR shown as TSB-85 writes it


def test_dcs_decoding():
    d = line.DCSInfo.decode(line.to_wire(hex_value("00 50 00")[0]))
    assert d.modulation is M.Modulation.V27TER_4800 and d.codec == "mh" and not d.ecm
    assert d.scan_ms == 20 and d.min_row_bits() == 96
    d = line.DCSInfo.decode(line.to_wire(hex_value("00 44 0F 30")[0]))
    assert d.modulation is M.Modulation.V17_14400 and d.ecm and d.frame_size == 64 and d.scan_ms == 0
    d = line.DCSInfo.decode(line.to_wire(hex_value("00 00 00")[0]))
    assert d.modulation is M.Modulation.V27TER_2400


def test_bad_rows_are_bad_for_a_decoder():
    from xmfax import codecs
    dcs = line.DCSInfo.decode(line.to_wire(hex_value("00 50 00")[0]))
    data = line.page_data("etsi_300_242_a4_error.tif", 0, dcs, bad_rows=[79, 85, 105])
    res = codecs.decode(data, width=1728, codec="mh", bit_order="lsb")
    assert res.bad_rows == 3 and res.rows == 400


def _step(**kw):
    typ = kw.pop("type", "HDLC")
    d = kw.pop("dir", "R")
    return Step(type=typ, dir=d, attrs=kw, index=1)


def test_frame_matching_rules():
    t = runner.Tester(TestCase("X", "g", "A", ()))
    tx = runner.Tx("hdlc", 0, 0, 1, frame=line.to_wire(bytes.fromhex("FFC8C1 00 50 00".replace(" ", ""))),
                   modulation=M.Modulation.V21)
    assert t._hdlc_matches(_step(value="FF C8 C1 ..."), tx)
    assert t._hdlc_matches(_step(value="FF C8 C1"), tx)                  # bare FCF: FIF unchecked
    assert t._hdlc_matches(_step(value="FF C8 C1 00 50 00"), tx)
    assert not t._hdlc_matches(_step(value="FF C8 C1 00 50 10"), tx)
    assert not t._hdlc_matches(_step(value="FF C8 41 ..."), tx)          # X bit matters
    mcf = runner.Tx("hdlc", 0, 0, 1, frame=line.to_wire(b"\xff\xc8\x33"), modulation=M.Modulation.V21)
    assert t._hdlc_matches(_step(value="FF C8 31", xxx="FF C8 33"), mcf)   # "MCF or RTP"


class _Cfg:
    def __init__(self, **kw):
        self.kw = kw


class _Raising:
    def __init__(self, *a, **k):
        self.done = False

    def start(self, now):
        raise ZeroDivisionError("boom")


class _Silent:
    def __init__(self, *a, **k):
        self.done = False

    def start(self, now):
        pass

    def receive(self, ev, now):
        pass

    def handle_timer(self, now):
        pass

    def next_timer(self):
        return None

    def data_to_send(self):
        return []

    def events(self):
        return []


class _Livelock(_Silent):
    def __init__(self, *a, **k):
        super().__init__()
        self.t = 0.0

    def next_timer(self):
        return self.t            # always due, never moves on

    def data_to_send(self):
        return [M.Receive(M.Expect.HDLC)]


@needs_xml
@pytest.mark.parametrize("dut,words", [(_Raising, "DUT raised ZeroDivisionError"),
                                       (_Silent, "DUT sent no CED"),
                                       (_Livelock, "livelock")])
def test_a_bad_dut_fails_one_test_not_the_run(monkeypatch, dut, words):
    monkeypatch.setattr(runner, "_session_api", lambda: (dut, _Cfg))
    monkeypatch.setattr(runner, "MAX_ITERATIONS", 5000)
    test = parse(DEFAULT_XML).by_name("MRGN02")
    r = runner.run_test(test)
    assert r.outcome == "fail" and words in r.reason, r.reason
    assert r.sim_seconds <= runner.MAX_SIM_SECONDS


class _Result:
    def __init__(self):
        self.status = "in progress"
        self.reason = None
        self.pages_received = []
        self.received_pages = []


class _Stats:
    response = "MCF"


class _TinyReceiver(_Silent):
    """Just enough of an answering fax receiver for MRGN02: CED, DIS; CFR after
    DCS and TCF; MCF after MPS/EOP, keeping the page decoded; hang up on DCN."""

    DIS = bytes([0xFF, 0x13, 0x80, 0x00, 0x4E, 0x00])   # bits 10-14 (V.27ter/V.29), 15

    def __init__(self, *a, **k):
        super().__init__()
        self.out = []
        self.result = _Result()
        self.tcf = False
        self.data = bytearray()
        self.page = None

    def start(self, now):
        self.out += [M.SendTone(M.Tone.CED), M.SendSilence(75), M.SendHDLC((self.DIS,))]

    def receive(self, ev, now):
        if isinstance(ev, M.HDLCFrame) and ev.fcs_ok:
            fcf = ev.frame[2] & 0xFE
            if fcf == 0x82:
                self.tcf = True
            elif fcf in (0x4E, 0x2E):
                self.out.append(M.SendHDLC((bytes([0xFF, 0x13, 0x8C]),)))
                self.result.received_pages.append(self.page)
                self.result.pages_received.append(_Stats())
            elif fcf == 0xFA:
                self.result.status = "success"
                self.result.reason = Reason.OK
                self.done = True
                self.out.append(M.Hangup())
        elif isinstance(ev, M.DataReceived) and not self.tcf:
            self.data += ev.data
        elif isinstance(ev, M.CarrierDown) and ev.modulation is not M.Modulation.V21 and self.tcf:
            self.tcf = False
            self.data = bytearray()
            self.out.append(M.SendHDLC((bytes([0xFF, 0x13, 0x84]),)))
        elif isinstance(ev, M.CarrierDown) and ev.modulation is not M.Modulation.V21:
            from xmfax import codecs
            from xmfax.page import Page
            self.page = Page(codecs.decode(bytes(self.data), 1728, "mh", bit_order="lsb").image)
            self.data = bytearray()

    def data_to_send(self):
        out, self.out = self.out, []
        return out


@needs_xml
def test_a_conforming_fake_passes_and_a_wrong_one_fails(monkeypatch):
    monkeypatch.setattr(runner, "_session_api", lambda: (_TinyReceiver, _Cfg))
    test = parse(DEFAULT_XML).by_name("MRGN02")
    r = runner.run_test(test)
    assert r.outcome == "pass", (r.reason, r.log[-10:])

    class _WrongResponse(_TinyReceiver):
        def receive(self, ev, now):
            if isinstance(ev, M.HDLCFrame) and ev.frame[2] & 0xFE == 0x4E:   # RTN instead of MCF
                self.out.append(M.SendHDLC((bytes([0xFF, 0x13, 0x4C]),)))
                return
            super().receive(ev, now)

    monkeypatch.setattr(runner, "_session_api", lambda: (_WrongResponse, _Cfg))
    r = runner.run_test(test)
    assert r.outcome == "fail" and "FF C8 31" in r.reason and "FF C8 32" in r.reason, r.reason


@needs_xml
def test_the_reason_and_the_delivered_pages_are_checked(monkeypatch):
    test = parse(DEFAULT_XML).by_name("MRGN02")

    class _WrongReason(_TinyReceiver):
        def receive(self, ev, now):
            super().receive(ev, now)
            if self.result.reason is Reason.OK:
                self.result.reason = Reason.NO_DCN        # "success" with another reason

    monkeypatch.setattr(runner, "_session_api", lambda: (_WrongReason, _Cfg))
    r = runner.run_test(test)
    assert r.outcome == "fail" and "STATUS OK" in r.reason and "NO_DCN" in r.reason, r.reason
    assert r.reason_agrees is False

    class _LosesAPage(_TinyReceiver):
        def receive(self, ev, now):
            super().receive(ev, now)
            if len(self.result.received_pages) == 2:
                self.result.received_pages.pop()
                self.result.pages_received.pop()

    monkeypatch.setattr(runner, "_session_api", lambda: (_LosesAPage, _Cfg))
    r = runner.run_test(test)
    assert r.outcome == "fail" and "confirmed 2 whole pages on the line and delivers 1" in r.reason, r.reason

    class _BlackRow(_TinyReceiver):
        def receive(self, ev, now):
            super().receive(ev, now)
            if self.page is not None and not self.page.image[5].all():
                self.page.image[5] = True                  # one row differs from the source

    monkeypatch.setattr(runner, "_session_api", lambda: (_BlackRow, _Cfg))
    r = runner.run_test(test)
    assert r.outcome == "fail" and "first row 5" in r.reason, r.reason


@needs_xml
def test_a_pp_step_sends_the_block_its_pps_names():
    test = parse(DEFAULT_XML).by_name("OREN01")
    t = runner.Tester(test)
    pps = [s for s in test.steps() if s.type == "PP"]
    assert [t._next_pps(s) for s in pps] == [(0, 0), (0, 1), (1, 0)]
