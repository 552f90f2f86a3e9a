"""The modem quirks that change what the driver does, each shown both ways on the
scripted fake modem: tolerant_tcf, prefer_class_1_0, reset_restores_echo and
no_dialtone_retry_s."""
from dataclasses import replace

import pytest

from xmfax.drivers.class1 import Class1Config, Class1Driver, DialError
from xmfax.drivers.class1.driver import Mode
from xmfax.drivers.class1.profiles import PROFILES, TOLERANT_TCF, Quirks
from xmfax.t30 import Session, T30Config
from xmfax.t30.config import TCFCheck
from xmfax.t30.fcf import FCF
from xmfax.t30.frames import DCS, Frame
from xmfax.t30.modem import Modulation

from .fakemodem import FakeModem, Step, frh_reply

CONNECT = b"\r\nCONNECT\r\n"
INIT = ["ATZ", "ATE0", "ATV1", "ATQ0", "AT+FCLASS=1"]


def driver(steps, quirks: Quirks, **fake):
    fm = FakeModem(steps, **fake)
    return fm, Class1Driver(Class1Config("fake://", quirks=quirks), port=fm, clock=fm.clock, sleep=fm.sleep)


GENERIC = PROFILES["generic"]


# ---------------------------------------------------------------- tolerant_tcf
def _answer_tcf(quirks: Quirks, tcf: bytes, config: T30Config | None = None):
    """Answer a call, take a DCS for V.29 9600 and the given TCF; return (response FCF,
    the session, the driver). The line drops once the response has been sent."""
    dcs = Frame(FCF.DCS, DCS(modulation=Modulation.V29_9600).encode(), x=1).encode()
    steps = [Step("ATA", CONNECT, data=True),                       # DIS goes out
             Step("AT\\+FRH=3", frh_reply(dcs)),
             Step("AT\\+FRM=96", CONNECT + tcf + b"\x10\x03\r\nNO CARRIER\r\n"),
             Step("AT\\+FTS=8"),                                     # 75 ms before answering
             Step("AT\\+FTH=3", CONNECT, data=True)]                 # CFR or FTT
    fm = FakeModem(steps, hang_up_at_end=True)
    d = Class1Driver(Class1Config("fake://", quirks=quirks), port=fm, clock=fm.clock, sleep=fm.sleep)
    d.answer(rings=None)
    s = Session(config or T30Config(), calling=False, receive=True, now=0.0)
    d.run_call(s)
    assert not fm.mismatches and not fm.script, (fm.mismatches, fm.commands)
    return FCF(fm.blocks[-1][2] & 0xFE), s, d


# 1.5 s at 9600 bit/s is 1800 octets: here an 833 ms run of zeros, 20 junk octets, 650 ms
JUNKY_TCF = bytes(1000) + b"\x55" * 20 + bytes(780)


def test_tolerant_tcf_accepts_a_junky_tcf_the_default_rule_refuses():
    strict, s1, d1 = _answer_tcf(GENERIC, JUNKY_TCF)
    tolerant, s2, d2 = _answer_tcf(replace(GENERIC, tolerant_tcf=True), JUNKY_TCF)
    assert strict is FCF.FTT and s1.config.tcf_check == TCFCheck()
    assert tolerant is FCF.CFR and s2.config.tcf_check == TOLERANT_TCF
    assert any("tolerant TCF" in a for a in d2.accommodations) and not d1.accommodations


def test_tolerant_tcf_still_refuses_a_bad_line():
    noise = bytes(range(1, 256)) * 7 + bytes(15)          # no real run of zeros
    assert _answer_tcf(replace(GENERIC, tolerant_tcf=True), noise)[0] is FCF.FTT


def test_tolerant_tcf_keeps_a_rule_the_config_chose():
    own = TCFCheck(min_zero_ms=1200, max_nonzero=5)
    fcf, s, d = _answer_tcf(replace(GENERIC, tolerant_tcf=True), JUNKY_TCF, T30Config(tcf_check=own))
    assert fcf is FCF.FTT and s.config.tcf_check == own and not d.accommodations


def test_the_iaxmodem_profile_is_tolerant():
    assert PROFILES["iaxmodem"].tolerant_tcf and _answer_tcf(PROFILES["iaxmodem"], JUNKY_TCF)[0] is FCF.CFR


# ---------------------------------------------------------------- prefer_class_1_0
CLASSES = "AT\\+FCLASS=\\?"


@pytest.mark.parametrize("listed,want", [(b"0,1,1.0", "AT+FCLASS=1.0"), (b"0,1", "AT+FCLASS=1"),
                                         (b"(0-2),1.0,8", "AT+FCLASS=1.0")])
def test_prefer_class_1_0_uses_it_when_listed(listed, want):
    steps = [Step("ATZ"), Step("ATE0"), Step("ATV1"), Step("ATQ0"),
             Step(CLASSES, b"\r\n" + listed + b"\r\n\r\nOK\r\n"), Step(want.replace("+", "\\+"))]
    fm, d = driver(steps, replace(GENERIC, prefer_class_1_0=True))
    d.initialize()
    assert not fm.mismatches and not fm.script, fm.mismatches
    assert fm.commands[-1] == want


def test_prefer_class_1_0_off_never_asks():
    fm, d = driver([Step(c.replace("+", "\\+")) for c in INIT], GENERIC)
    d.initialize()
    assert fm.commands == INIT and not fm.mismatches


def test_prefer_class_1_0_with_a_modem_that_refuses_the_question():
    steps = [Step("ATZ"), Step("ATE0"), Step("ATV1"), Step("ATQ0"), Step(CLASSES, b"\r\nERROR\r\n"),
             Step("AT\\+FCLASS=1")]
    fm, d = driver(steps, replace(GENERIC, prefer_class_1_0=True))
    d.initialize()
    assert fm.commands[-1] == "AT+FCLASS=1" and not fm.mismatches


# ---------------------------------------------------------------- reset_restores_echo
@pytest.mark.parametrize("restores", [True, False])
def test_reset_restores_echo_sends_ate0_after_atz(restores):
    init = ("ATV1", "AT+FCLASS=1")                       # an init string without ATE0
    steps = [Step("ATZ")] + ([Step("ATE0")] if restores else []) + [Step("ATV1"), Step("AT\\+FCLASS=1")]
    fm = FakeModem(steps, atz_echoes=True)
    d = Class1Driver(Class1Config("fake://", init=init, quirks=replace(GENERIC, reset_restores_echo=restores)),
                     port=fm, clock=fm.clock, sleep=fm.sleep)
    d.initialize()
    assert not fm.mismatches and not fm.script
    assert fm.echo is (not restores)                     # the modem echoes on only without the quirk


@pytest.mark.parametrize("restores", [True, False])
def test_recovery_turns_echo_off_after_its_reset(restores):
    steps = [Step("AT"), Step("ATH0"), Step("ATZ")] + ([Step("ATE0")] if restores else [])
    fm, d = driver(steps, replace(GENERIC, reset_restores_echo=restores), atz_echoes=True)
    d.recover()
    assert not fm.mismatches and not fm.script
    assert fm.echo is (not restores)


# ---------------------------------------------------------------- no_dialtone_retry_s
NO_DIALTONE = b"\r\nNO DIALTONE\r\n"


def test_no_dialtone_is_dialled_again_while_the_retry_lasts():
    steps = [Step("ATDT1001", NO_DIALTONE)] * 4 + [Step("ATDT1001", CONNECT)]
    fm, d = driver(list(steps), replace(GENERIC, settle_after_reset_s=0, no_dialtone_retry_s=10))
    d.dial("1001")
    assert d.mode is Mode.IN_FRH and fm.commands == ["ATDT1001"] * 5 and not fm.mismatches
    assert fm.now < 4                                    # 4 pauses of 0.5 s, no blind wait
    assert any("NO DIALTONE" in a for a in d.accommodations)


def test_no_dialtone_retry_is_bounded():
    fm, d = driver([Step("ATDT1001", NO_DIALTONE)] * 50, replace(GENERIC, no_dialtone_retry_s=3))
    with pytest.raises(DialError) as ei:
        d.dial("1001")
    assert ei.value.reason == "NO DIALTONE"
    assert 3 <= len(fm.commands) <= 8 and fm.now < 4.5, (len(fm.commands), fm.now)


def test_without_the_quirk_no_dialtone_fails_at_once():
    fm, d = driver([Step("ATDT1001", NO_DIALTONE), Step("ATDT1001", CONNECT)], GENERIC)
    with pytest.raises(DialError) as ei:
        d.dial("1001")
    assert ei.value.reason == "NO DIALTONE" and fm.commands == ["ATDT1001"]


@pytest.mark.parametrize("reply,reason", [(b"\r\nBUSY\r\n", "BUSY"), (b"\r\nNO ANSWER\r\n", "NO ANSWER")])
def test_other_dial_failures_are_not_retried(reply, reason):
    fm, d = driver([Step("ATDT1001", reply), Step("ATDT1001", CONNECT)],
                   replace(GENERIC, no_dialtone_retry_s=10))
    with pytest.raises(DialError) as ei:
        d.dial("1001")
    assert ei.value.reason == reason and fm.commands == ["ATDT1001"]
