"""The Class 1 driver's modem mode: the transition table and the driver's use of it."""
import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmfax.drivers.class1 import Class1Config, Class1Driver
from xmfax.drivers.class1.driver import Mode
from xmfax.drivers.class1.mode import TRANSITIONS, IllegalModeTransition, Input, transition
from xmfax.errors import DriverError
from xmfax.t30 import modem as m

from .fakemodem import FakeModem, Step

IN_CALL = (Mode.HEARD, Mode.HEARD_RETRAIN, Mode.SPOKE, Mode.SPOKE_RETRAIN)
LINE_INPUTS = (Input.RECEIVED, Input.SENT, Input.RETRAIN_FRAME, Input.HIGH_SPEED)


@pytest.mark.parametrize("mode", list(Mode))
def test_reset_is_legal_from_every_mode(mode):
    assert transition(mode, Input.RESET) is Mode.IDLE
    assert transition(mode, Input.RESET_SETTLE) is Mode.SETTLING


@pytest.mark.parametrize("mode, event", [
    (Mode.IN_FTH, Input.HIGH_SPEED),     # +FTM while ATA's +FTH=3 is still running
    (Mode.IN_FRH, Input.HIGH_SPEED),
    (Mode.IN_FRH, Input.SENT),           # +FTS while ATD's +FRH=3 is still running
    (Mode.IN_FTH, Input.RECEIVED),
    (Mode.HEARD, Input.DIALLED),         # ATD in the middle of a call
    (Mode.SPOKE_RETRAIN, Input.ANSWERED),
    (Mode.IDLE, Input.SETTLED),          # nothing to settle
    (Mode.SETTLING, Input.DIALLED),      # dialled without waiting for the modem
    (Mode.IDLE, Input.RECEIVED),         # line input with no call
    (Mode.SETTLING, Input.HIGH_SPEED),
])
def test_illegal_moves_are_refused_with_a_clear_error(mode, event):
    assert (mode, event) not in TRANSITIONS
    with pytest.raises(IllegalModeTransition) as exc:
        transition(mode, event)
    assert isinstance(exc.value, DriverError)
    assert repr(mode.value) in str(exc.value) and repr(event.value) in str(exc.value)


def test_no_line_input_is_legal_without_a_call():
    for mode in (Mode.IDLE, Mode.SETTLING):
        for event in LINE_INPUTS:
            assert (mode, event) not in TRANSITIONS


def test_the_table_maps_only_to_modes():
    assert all(isinstance(k[0], Mode) and isinstance(k[1], Input) and isinstance(v, Mode)
               for k, v in TRANSITIONS.items())


def test_calling_and_answering_sides_through_a_tcf():
    # calling: ATD, DIS heard, DCS sent, TCF (long-trained), CFR heard, page (short-trained)
    mode = transition(Mode.IDLE, Input.DIALLED)
    assert mode is Mode.IN_FRH
    mode = transition(mode, Input.RECEIVED)
    assert mode.heard_last and mode.long_train_next
    for event in (Input.SENT, Input.RETRAIN_FRAME, Input.SENT):     # +FTS, DCS, frames out
        mode = transition(mode, event)
    assert mode is Mode.SPOKE_RETRAIN
    mode = transition(mode, Input.HIGH_SPEED)                       # TCF: long training
    assert not mode.long_train_next
    mode = transition(transition(mode, Input.SENT), Input.RECEIVED)  # CFR
    assert mode is Mode.HEARD
    # answering: ATA, DIS sent from +FTH=3, DCS heard, TCF received long-trained
    mode = transition(Mode.IDLE, Input.ANSWERED)
    assert mode is Mode.IN_FTH
    mode = transition(mode, Input.SENT)
    assert mode is Mode.SPOKE_RETRAIN and not mode.heard_last
    mode = transition(transition(mode, Input.RECEIVED), Input.RETRAIN_FRAME)
    assert mode is Mode.HEARD_RETRAIN


@given(st.lists(st.sampled_from(LINE_INPUTS), max_size=40))
def test_in_call_modes_track_who_spoke_and_the_training(events):
    # the four in-call modes are two facts: who spoke last, and whether DCS/CTC came
    # after the last high-speed signal; the table must agree with that model
    mode = transition(Mode.IDLE, Input.DIALLED)
    mode = transition(mode, Input.RECEIVED)
    heard, long_next = True, True
    for event in events:
        mode = transition(mode, event)
        if event is Input.RECEIVED:
            heard = True
        elif event is Input.SENT:
            heard = False
        elif event is Input.RETRAIN_FRAME:
            long_next = True
        else:
            long_next = False
        assert mode in IN_CALL
        assert (mode.heard_last, mode.long_train_next) == (heard, long_next)


def test_hangup_settles_and_the_next_dial_waits_for_it():
    fm = FakeModem([Step("ATH0"), Step("ATDT5551234", b"\r\nCONNECT\r\n")])
    d = Class1Driver(Class1Config("fake://", profile="generic"), port=fm,
                     clock=fm.clock, sleep=fm.sleep)
    d.mode = Mode.SPOKE
    d.hangup()
    assert d.mode is Mode.SETTLING
    t = fm.now
    d.dial("5551234")
    assert d.mode is Mode.IN_FRH and not fm.mismatches
    assert fm.now - t >= d.quirks.settle_after_reset_s


def test_a_command_the_mode_forbids_ends_the_call_as_line_lost():
    # a high-speed command while ATA's +FTH=3 still runs is a driver bug: the call
    # ends (LineLost naming the move) instead of an AT+FTM the modem would misread
    fm = FakeModem([Step("ATH0")])
    d = Class1Driver(Class1Config("fake://", profile="generic"), port=fm,
                     clock=fm.clock, sleep=fm.sleep)
    d.mode = Mode.IN_FTH

    class OneShot:
        config = None
        done = False
        result = "lost"

        def __init__(self):
            self.cmds = [m.SendData(m.Modulation.V29_9600, bytes(10))]
            self.seen = []

        def start(self, now):
            pass

        def data_to_send(self):
            out, self.cmds = self.cmds, []
            return out

        def receive(self, ev, now):
            self.seen.append(ev)
            if isinstance(ev, m.LineLost):
                self.done = True

        def next_timer(self):
            return None

        def handle_timer(self, now):
            pass

    s = OneShot()
    d.run_call(s)
    assert isinstance(s.seen[-1], m.LineLost) and "'in-fth'" in s.seen[-1].reason
    assert "AT+FTM" not in " ".join(fm.commands)
