"""AT engine and DLE layer against the scripted fake modem: every result code, timeouts."""
import random

import pytest
from hypothesis import given, settings, strategies as st

from xmfax.drivers.class1 import dle
from xmfax.drivers.class1.at import ATEngine, ModemResultError, Result, parse_caller_id, parse_result
from xmfax.errors import DriverTimeoutError

from .fakemodem import FakeModem, Step


def engine(steps, **kw):
    fm = FakeModem(steps, **kw)
    return fm, ATEngine(fm, clock=fm.clock)


@pytest.mark.parametrize("wire,result", [
    (b"\r\nOK\r\n", Result.OK), (b"\r\nERROR\r\n", Result.ERROR),
    (b"\r\nCONNECT\r\n", Result.CONNECT), (b"\r\nNO CARRIER\r\n", Result.NO_CARRIER),
    (b"\r\nBUSY\r\n", Result.BUSY), (b"\r\nNO ANSWER\r\n", Result.NO_ANSWER),
    (b"\r\nNO DIALTONE\r\n", Result.NO_DIALTONE), (b"\r\nNO DIAL TONE\r\n", Result.NO_DIALTONE),
    (b"\r\n+FCERROR\r\n", Result.FCERROR),
    # numeric (ATV0) forms: V.250 codes end with CR only
    (b"0\r", Result.OK), (b"1\r", Result.CONNECT), (b"3\r", Result.NO_CARRIER),
    (b"4\r", Result.ERROR), (b"6\r", Result.NO_DIALTONE), (b"7\r", Result.BUSY),
    (b"8\r", Result.NO_ANSWER), (b"+F4\r", Result.FCERROR),
])
def test_every_result_code(wire, result):
    fm, at = engine([Step("AT+X", wire)])
    at.numeric = not wire.startswith(b"\r\n")
    resp = at.command("AT+X", 1.0, accept=None)
    assert resp.result is result
    assert not fm.mismatches


def test_connect_with_rate_and_info_lines_and_echo():
    fm, at = engine([Step("ATI", b"\r\nspandsp\r\n\r\nOK\r\n"), Step("ATD1", b"\r\nCONNECT 9600\r\n")],
                    echo=True)
    assert at.command("ATI").lines == ("spandsp",)
    r = at.command("ATD1", accept=(Result.CONNECT,))
    assert r.detail == "9600"


def test_ring_and_caller_id_are_unsolicited():
    fm, at = engine([Step("AT", b"\r\nRING\r\n\r\nDATE = 0321\r\nNMBR = 5551234\r\nNAME = ACME\r\nOK\r\n")])
    assert at.command("AT").ok
    kinds = [(u.kind, u.value) for u in at.unsolicited]
    assert kinds == [("RING", ""), ("DATE", "0321"), ("NMBR", "5551234"), ("NAME", "ACME")]
    assert parse_caller_id("NDID = 42") == ("NDID", "42")
    assert parse_result("RING 2") == (Result.RING, "2")
    assert parse_result("hello") is None
    assert parse_result("3") is None and parse_result("3", numeric=True) == (Result.NO_CARRIER, "")


def test_timeout_is_driver_timeout_error():
    fm, at = engine([Step("AT", None)])
    with pytest.raises(DriverTimeoutError, match="no result"):
        at.command("AT", 0.5)
    assert fm.now >= 0.5
    assert isinstance(DriverTimeoutError("x"), TimeoutError)


def test_unaccepted_result_raises():
    fm, at = engine([Step("AT+FTH=3", b"\r\nERROR\r\n")])
    with pytest.raises(ModemResultError, match="ERROR"):
        at.command("AT+FTH=3")


def test_junk_without_line_ends_is_bounded():
    fm, at = engine([Step("AT", b"\x00" * 50000)])
    with pytest.raises(DriverTimeoutError):
        at.command("AT", 0.3)
    assert len(at.buf) <= at.max_line + 4096


def test_bytes_after_connect_stay_for_data_phase():
    fm, at = engine([Step("AT\\+FRH=3", b"\r\nCONNECT\r\n\xff\x13\x80\x10\x03\r\nOK\r\n")])
    assert at.command("AT+FRH=3", accept=(Result.CONNECT,)).result is Result.CONNECT
    u = dle.Unshielder()
    data, ended, rest = u.feed(at.take_raw())
    assert (data, ended) == (b"\xff\x13\x80", True)
    at.push_back(rest)
    assert at.wait_result("", 1.0).ok


# ------------------------------------------------------------------ DLE
def test_shield_and_terminate():
    assert dle.frame_for_modem(b"a\x10b\x10\x10") == b"a\x10\x10b\x10\x10\x10\x10\x10\x03"


def test_unshield_sub_unknown_and_split():
    u = dle.Unshielder()
    assert u.feed(b"a\x10") == (b"a", False, b"")
    assert u.feed(b"\x1ab\x10Xc\x10") == (b"\x10\x10bc", False, b"")
    assert u.dropped == 1
    assert u.feed(b"\x03OK") == (b"", True, b"OK")


def test_unshield_dle_not_doubled_quirk():
    u = dle.Unshielder(dle_not_doubled=True)
    assert u.feed(b"\x10A\x10\x10\x10\x03") == (b"\x10A\x10", True, b"")


@given(st.binary(max_size=2000), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_dle_roundtrip_any_chunking(data, rnd):
    wire = dle.frame_for_modem(data) + b"\r\nOK\r\n"
    u = dle.Unshielder()
    out = bytearray()
    i = 0
    rest = b""
    while i < len(wire):
        n = rnd.randint(1, 17)
        d, ended, r = u.feed(wire[i:i + n])
        out += d
        i += n
        if ended:
            rest = r + wire[i:]
            break
    assert bytes(out) == data and rest == b"\r\nOK\r\n"


@given(st.binary(max_size=500))
@settings(max_examples=150, deadline=None)
def test_unshield_fuzz(data):
    u = dle.Unshielder()
    d, ended, rest = u.feed(data)
    assert len(d) <= 2 * len(data)


def test_at_engine_mutation_fuzz():
    rnd = random.Random(7)
    base = b"\r\nRING\r\nNMBR = 1\r\n\r\nCONNECT 9600\r\n+FCERROR\r\nOK\r\n"
    for _ in range(200):
        s = bytearray(base)
        for _ in range(rnd.randint(1, 5)):
            s[rnd.randrange(len(s))] = rnd.getrandbits(8)
        fm, at = engine([Step("AT", bytes(s))])
        try:
            at.command("AT", 0.2, accept=None)
        except DriverTimeoutError:
            pass
