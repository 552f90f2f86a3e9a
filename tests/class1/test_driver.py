"""Class1Driver against the scripted fake modem, with a stub T.30 session."""
import pytest

from xmfax import hdlc
from xmfax.drivers.class1 import Class1Config, Class1Driver, DialError
from xmfax.drivers.class1.driver import Mode
from xmfax.t30 import modem as m

from .fakemodem import FakeModem, Step, frh_reply

CONNECT = b"\r\nCONNECT\r\n"
OK = b"\r\nOK\r\n"
DIS = b"\xff\x13\x80\x00\xce\xf4"
CSI = b"\xff\x03\x40" + b"1234 \x10\x11\x13"


class StubSession:
    """Emits ``first`` on start; ``react(event, session)`` may return more commands.
    A timer can be set; it fires ``on_timer``. Done after Hangup is emitted."""

    def __init__(self, first, react=None, timer=None, on_timer=()):
        self._cmds = []
        self.first = list(first)
        self.react = react or (lambda ev, s: [])
        self.timer = timer
        self.on_timer = list(on_timer)
        self.events_seen = []
        self.done = False
        self.result = "result"

    def start(self, now):
        self._push(self.first)

    def _push(self, cmds):
        self._cmds += cmds
        if any(isinstance(c, m.Hangup) for c in cmds):
            self._hangup = True

    def receive(self, ev, now):
        self.events_seen.append(ev)
        if isinstance(ev, m.LineLost):
            self.done = True
        self._push(self.react(ev, self))

    def handle_timer(self, now):
        if self.timer is not None and now >= self.timer:
            self.timer = None
            self.events_seen.append("timer")
            self._push(self.on_timer)

    def next_timer(self):
        return self.timer

    def data_to_send(self):
        out, self._cmds = self._cmds, []
        if getattr(self, "_hangup", False) and not out:
            self.done = True
        return out


def driver(steps, **cfg):
    fm = FakeModem(steps)
    d = Class1Driver(Class1Config("fake://", profile="generic", **cfg), port=fm,
                     clock=fm.clock, sleep=fm.sleep)
    return fm, d


@pytest.mark.parametrize("reply,reason", [
    (b"\r\nBUSY\r\n", "BUSY"), (b"\r\nNO ANSWER\r\n", "NO ANSWER"),
    (b"\r\nNO DIALTONE\r\n", "NO DIALTONE"), (b"\r\nNO CARRIER\r\n", "NO CARRIER"),
    (b"\r\nERROR\r\n", "ERROR"),
])
def test_dial_failure_reasons(reply, reason):
    fm, d = driver([Step("ATDT5551234", reply)])
    with pytest.raises(DialError) as ei:
        d.dial("5551234")
    assert ei.value.reason == reason
    assert not fm.mismatches


def test_dial_timeout_aborts_and_reports():
    fm, d = driver([Step("ATDP1", None)], dial_mode="pulse", dial_timeout=5)
    with pytest.raises(DialError) as ei:
        d.dial("1")
    assert ei.value.reason == "TIMEOUT"
    assert fm.written.endswith(b"\r")          # the abort byte
    with pytest.raises(ValueError):
        d.dial("12;rm -rf")


def test_initialize_and_recovery_when_modem_is_stuck():
    fm, d = driver([Step("ATZ", None, on_abort=b""),       # stuck: ignores ATZ
                    Step("AT"), Step("ATH0"), Step("ATZ"),  # recovery: AT answers, hang up, reset,
                    Step("ATE0"),                           # echo off again (reset_restores_echo)
                    Step("ATZ"), Step("ATE0"), Step("ATV1"), Step("ATQ0"), Step("AT\\+FCLASS=1")])
    d.initialize()
    assert not fm.mismatches and not fm.script


def test_answer_after_rings_collects_caller_id():
    fm, d = driver([Step("ATA", CONNECT)])
    fm.queue(b"\r\nRING\r\n\r\nDATE = 1128\r\nNMBR = 5551234\r\n\r\nRING\r\n", delay=1.0)
    d.answer(rings=2, timeout=30)
    assert d.caller_id == {"DATE": "1128", "NMBR": "5551234"}
    assert d.mode is Mode.IN_FTH


def test_answer_times_out_without_ring():
    from xmfax.errors import DriverTimeoutError
    fm, d = driver([])
    with pytest.raises(DriverTimeoutError):
        d.answer(rings=1, timeout=2)


def test_calling_receive_dis_then_send_dcs_tcf():
    frames_in = frh_reply(CSI[:2] + CSI[2:], b"\xaa\xbb").replace(b"\r\nOK\r\n", b"\r\nOK\r\n")
    dcs = b"\xff\x13\x83\x00\x46\xf4"

    def react(ev, s):
        if isinstance(ev, m.HDLCFrame) and ev.frame[2] == 0x80:
            return [m.SendSilence(75), m.SendHDLC((b"\xff\x03\x43" + b" " * 20, dcs)),
                    m.SendSilence(75), m.SendData(m.Modulation.V29_9600, bytes(10) + b"\x10\x11\x13"),
                    m.Hangup()]
        return []

    fm, d = driver([
        # after ATD's CONNECT the modem is already in +FRH=3: CSI (non-final) is in the stream
        Step("AT\\+FRH=3", frh_reply(DIS, b"\x01\x02")),
        Step("AT\\+FTS=8"), Step("AT\\+FTH=3", CONNECT, data=True, more_data=1, after_data=OK),
        Step("AT\\+FTS=8"), Step("AT\\+FTM=96", CONNECT, data=True), Step("ATH0"),
    ])
    fm.queue(frames_in[len(CONNECT):])        # the frame that follows ATD's CONNECT
    d.mode = Mode.IN_FRH
    s = StubSession([m.SendTone(m.Tone.CNG), m.Receive(m.Expect.HDLC)], react)
    d.run_call(s)
    assert not fm.mismatches, fm.mismatches
    kinds = [type(e).__name__ for e in s.events_seen]
    # one SendComplete per SendHDLC / SendData, none for the CNG tone or the silences
    assert kinds == ["CarrierUp", "HDLCFrame", "HDLCFrame", "CarrierDown", "SendComplete", "SendComplete"]
    assert s.events_seen[1].frame == CSI and s.events_seen[2].frame == DIS
    assert fm.blocks == [b"\xff\x03\x43" + b" " * 20, dcs, bytes(10) + b"\x10\x11\x13"]


def test_bad_fcs_frame_reported_and_listening_continues():
    fm, d = driver([Step("AT\\+FRH=3", frh_reply(DIS, ok=False)),
                    Step("AT\\+FRH=3", b"\r\nNO CARRIER\r\n")])
    s = StubSession([m.Receive(m.Expect.HDLC)],
                    lambda ev, s: [m.Hangup()] if isinstance(ev, m.CarrierDown) else [])
    fm.script.append(Step("ATH0"))
    d.run_call(s)
    assert [type(e).__name__ for e in s.events_seen] == ["CarrierUp", "HDLCFrame", "CarrierDown"]
    assert s.events_seen[1].fcs_ok is False


def test_session_timer_aborts_silent_frh():
    fm, d = driver([Step("AT\\+FRH=3", None), Step("ATH0")])
    s = StubSession([m.Receive(m.Expect.HDLC)], timer=3.0, on_timer=[m.Hangup()])
    d.run_call(s)
    assert s.events_seen == ["timer"]
    assert b"\x18" in fm.written and fm.commands == ["AT+FRH=3", "ATH0"]
    assert fm.now >= 3.0


def test_frm_fcerror_is_retried_then_reported():
    fm, d = driver([Step("AT\\+FRM=146", b"\r\n+FCERROR\r\n"), Step("AT\\+FRM=146", b"\r\n+FCERROR\r\n"),
                    Step("ATH0")])
    s = StubSession([m.Receive(m.Expect.DATA, m.Modulation.V17_14400, True)],
                    lambda ev, s: [m.Hangup()])
    d.run_call(s)
    assert s.events_seen == [m.WrongCarrier(m.Modulation.V17_14400, m.Modulation.V21)]
    assert any("+FCERROR" in a for a in d.accommodations)


def test_tcf_data_receive_with_dle_and_trailing_junk():
    data = bytes(300) + b"\x10\x10" + b"\x00" * 5 + b"\x10\x1a"
    fm, d = driver([Step("AT\\+FRM=96", CONNECT + data + b"\x10\x03\r\nNO CARRIER\r\n"), Step("ATH0")])
    s = StubSession([m.Receive(m.Expect.DATA, m.Modulation.V29_9600)],
                    lambda ev, s: [m.Hangup()] if isinstance(ev, m.CarrierDown) else [])
    d.run_call(s)
    got = b"".join(e.data for e in s.events_seen if isinstance(e, m.DataReceived))
    assert got == bytes(300) + b"\x10" + bytes(5) + b"\x10\x10"
    assert isinstance(s.events_seen[0], m.CarrierUp) and isinstance(s.events_seen[-1], m.CarrierDown)


def test_ecm_frames_are_framed_in_software_both_ways():
    ecm = [b"\xff\x03\x06" + bytes([i]) + bytes(range(i, i + 64)) for i in range(5)]
    wire = hdlc.encode(ecm, preamble_flags=10).replace(b"\x10", b"\x10\x10")
    fm, d = driver([Step("AT\\+FTM=98", CONNECT, data=True),
                    Step("AT\\+FRM=72", CONNECT + wire + b"\x10\x03\r\nNO CARRIER\r\n"),
                    Step("ATH0")])
    s = StubSession([m.SendHDLC(tuple(ecm), m.Modulation.V17_9600, True),
                     m.Receive(m.Expect.HDLC, m.Modulation.V29_7200)],
                    lambda ev, s: [m.Hangup()] if isinstance(ev, m.CarrierDown) else [])
    d.run_call(s)
    assert not fm.mismatches
    assert [f.frame for f in hdlc.decode(fm.blocks[0])] == ecm
    rx = [e for e in s.events_seen if isinstance(e, m.HDLCFrame)]
    assert [e.frame for e in rx] == ecm and all(e.fcs_ok and e.modulation is m.Modulation.V29_7200 for e in rx)


def test_modem_error_mid_call_is_line_lost():
    fm, d = driver([Step("AT\\+FTH=3", b"\r\nERROR\r\n"), Step("ATH0")])
    s = StubSession([m.SendHDLC((DIS,))])
    d.run_call(s)
    assert isinstance(s.events_seen[-1], m.LineLost) and s.done


def test_silence_right_after_ata_is_skipped():
    fm, d = driver([Step("ATH0")])
    d.mode = Mode.IN_FTH
    s = StubSession([m.SendTone(m.Tone.CED), m.SendSilence(75), m.SendHDLC((DIS,)), m.Hangup()])
    fm.script.insert(0, Step("never"))
    fm.script.pop(0)
    # the modem is in +FTH=3 after ATA: the frame goes straight out, no AT+FTS, no AT+FTH
    fm._mode = "data"
    fm._step = Step("", after_data=OK)
    d.run_call(s)
    assert fm.blocks == [DIS] and fm.commands == ["ATH0"]
