"""The runner's content checks on their own (tsb85_checks.py): image comparison,
the DUT's ECM framing, the STATUS reason table; and the T.30 decisions the
conformance work made in xmfax/t30 (a polled station checks PWD first)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from tsb85_checks import REASONS, EcmSendCheck, compare_images, reason_agrees  # noqa: E402
from tsb85_script import DEFAULT_XML, parse  # noqa: E402
from xmfax.t30 import frames as F  # noqa: E402
from xmfax.t30.result import Reason  # noqa: E402


def test_compare_images_equal_differs_and_ignores_damaged_rows():
    a = np.zeros((10, 16), dtype=bool)
    a[3, 2:5] = True
    assert compare_images(a.copy(), a) is None
    b = a.copy()
    b[7, 0] = True
    diff = compare_images(b, a)
    assert diff is not None and "1 rows differ" in diff and "first row 7" in diff
    assert compare_images(b, a, ignore_rows=(7,)) is None          # a row the tester damaged
    assert "rows" in compare_images(a[:9], a)                       # a page cut short
    assert compare_images(np.zeros((10, 16), dtype=bool), a) is not None   # all white


def _fcd(n: int, data: bytes) -> bytes:
    return bytes([0xFF, 0x03, 0x06, n]) + data


def _pps(fcf2: int, page: int, block: int, count: int) -> bytes:
    return F.encode_pps(fcf2, page, block, count)


def test_ecm_check_puts_a_page_together_from_its_blocks():
    page = bytes(range(256)) * 3 + b"tail"                           # 3 frames of 256, 1 of 4
    frames = [page[i:i + 256] for i in range(0, len(page), 256)]
    c = EcmSendCheck()
    c.burst([_fcd(0, frames[0]), _fcd(1, frames[1])])
    assert c.pps(_pps(0, 0, 0, 2)) == []
    assert not c.confirmed()                                          # PPS-NULL: next block
    c.burst([_fcd(0, frames[2]), _fcd(1, frames[3])])
    assert c.pps(_pps(int(F.FCF.EOP), 0, 1, 2)) == []
    assert c.confirmed()
    data, problems = c.page_data()
    assert data == page and problems == []
    c.next_page()
    assert (c.page, c.block) == (1, 0)


def test_ecm_check_finds_wrong_counters_counts_numbers_sizes_and_resends():
    c = EcmSendCheck()
    c.burst([_fcd(0, b"a" * 256), _fcd(2, b"b" * 256)])               # frame 1 missing
    problems = c.pps(_pps(0, 3, 0, 3))                                # page 3: expected 0
    assert any("page 3" in p for p in problems)
    assert any("not 0..n-1" in p for p in problems)
    assert any("PPS says 3" in p for p in problems)
    c = EcmSendCheck()
    c.burst([_fcd(0, b"a" * 256), _fcd(1, b"b" * 100), _fcd(2, b"c" * 256)])
    assert c.pps(_pps(int(F.FCF.EOP), 0, 0, 3)) == []
    c.burst([_fcd(1, b"x" * 100)])                                    # resent after PPR, other octets
    assert any("sent again with other octets" in p for p in c.pps(_pps(int(F.FCF.EOP), 0, 0, 3)))
    _, problems = c.page_data()
    assert any("not the full 256" in p for p in problems)


@pytest.mark.skipif(not os.path.exists(DEFAULT_XML), reason=f"{DEFAULT_XML} not present")
def test_every_status_code_in_the_script_has_reasons_that_exist():
    codes = {s.value for t in parse(DEFAULT_XML).tests for s in t.steps() if s.type == "STATUS"}
    assert codes <= set(REASONS), codes - set(REASONS)
    for code, names in REASONS.items():
        assert all(n in Reason.__members__ for n in names), (code, names)
    assert reason_agrees("OK", "OK") and not reason_agrees("OK", "PROTOCOL")
    assert not reason_agrees("TX_NODIS", "LINE_LOST")
    assert reason_agrees("NOT_A_CODE", "OK") is None


def test_a_polled_station_with_a_password_checks_it_before_saying_it_has_nothing():
    """T.30 decision (xmfax/t30/phase_b.py): DTC with a wrong PWD to a station that requires
    one is PASSWORD_REJECTED even when it holds no document (TSB-85 MRGP03)."""
    from xmfax.t30 import Session, T30Config
    from xmfax.t30 import modem as M
    s = Session(T30Config(password="1234"), calling=False, pages=None, receive=True, now=0.0)
    s.start(0.0)
    s.data_to_send()
    pwd = F.Frame(F.FCF.PWD, F.encode_id("9999"), final=False)
    dtc = F.Frame(F.FCF.DTC, F.DIS(modems=F.DIS().modems).encode())
    for fr in (pwd, dtc):
        s.receive(M.HDLCFrame(fr.encode(), modulation=M.Modulation.V21), 1.0)
    assert s.result.reason is Reason.PASSWORD_REJECTED, s.result.reason
