"""TSB-85 conformance of xmfax's T.30 engine, one pytest case per script test.

The runner (runner.py beside this file) plays the tester's side of each test in
/work/shared/conformance/tsb85.xml at the modem interface. Known failures are
``xfail(strict=True)`` with their reason, so that a fix in the engine shows up
as an XPASS to be moved out of the list; docs/conformance.md explains each.
"""
from __future__ import annotations

import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import runner  # noqa: E402
from tsb85_script import DEFAULT_XML, parse  # noqa: E402

if not os.path.exists(DEFAULT_XML):
    pytest.skip(f"TSB-85 script {DEFAULT_XML} not present", allow_module_level=True)

try:
    from xmfax.t30 import Session  # noqa: F401
except ImportError as exc:   # the engine has not landed: say so instead of 138 identical failures
    pytest.skip(f"xmfax.t30.Session not available ({exc}); TSB-85 cannot run", allow_module_level=True)

SCRIPT = parse(DEFAULT_XML)

# Tests whose purpose exists only on audio (none so far: see docs/conformance.md).
NOT_APPLICABLE: dict[str, str] = {}

# name -> why xmfax fails it today (docs/conformance.md has the detail).
KNOWN_FAILURES: dict[str, str] = {
    'MRGN03': '#19 R HDLC MCF V.21: expected [FF C8 31], DUT sent HDLC[FF C8 32] at V.21 300',
    'MRGN04': 'DUT sent HDLC[FF C8 5F] at V.21 300 where the script expects nothing from it',
    'MRGN05': '#19 R HDLC MCF V.21: expected [FF C8 31], DUT sent HDLC[FF C8 32] at V.21 300',
    'MRGN06b': 'DUT sent HDLC[FF C8 01 00 77 5F 23 01 F8] at V.21 300 where the script expects nothing from it',
    'MRGN16': 'DUT sent HDLC[FF C8 01 00 77 5F 23 01 F8] at V.21 300 where the script expects nothing from it',
    'MRGN17': '#29 R HDLC MCF V.21: expected [FF C8 31], DUT sent HDLC[FF C8 58] at V.21 300',
    'ORGC03': '#19 R HDLC MCF V.21: expected [FF C8 31], DUT sent HDLC[FF C8 32] at V.21 300',
    'OREN02': '#41 R HDLC PPR V.21: expected [FF C8 3D 00 00 00 00 00 00 00 00 00 00 00 00 08 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 FF FF FF FF], DUT sent HDLC[FF C8 3D',
    'OREN03': '#25 R HDLC PPR V.21: expected [FF C8 3D 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 FF FF FF FF FF], DUT sent HDLC[FF C8 3D',
    'OREN05': '#43 R HDLC PPR V.21: expected [FF C8 3D 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 07 ff ff ff ff], DUT sent HDLC[FF C8 3D',
    'OREN06': '#27 R HDLC PPR V.21: expected [FF C8 3D 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 FF FF FF FF FF], DUT sent HDLC[FF C8 3D',
    'OREN07': '#26 R HDLC PPR V.21: expected [FF C8 3D 80 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 FF FF FF FF FF], DUT sent HDLC[FF C8 3D',
    'OREN09': 'STATUS: expected a failure (RX_DCNDATA), DUT reported success',
    'MRGX01': '#6 R HDLC DCN V.21: expected [FF C8 5F], DUT sent HDLC[FF C8 01 00 77 5F 23 01 F8] at V.21 300',
    'MRGX04': 'DUT sent HDLC[FF C8 21] at V.21 300 where the script expects nothing from it',
    'MRGX06': 'DUT sent HDLC[FF C8 31] at V.21 300 where the script expects nothing from it',
    'MRGX07': 'DUT sent HDLC[FF C8 31] at V.21 300 where the script expects nothing from it',
    'MRGX08': 'DUT sent HDLC[FF C8 31] at V.21 300 where the script expects nothing from it',
    'MRGX09': 'DUT sent HDLC[FF C8 58] at V.21 300 where the script expects nothing from it',
    'MRGX10': 'STATUS: expected a failure (UNEXPECTED), DUT reported success',
    'MRGX12': 'DUT sent HDLC[FF C8 58] at V.21 300 where the script expects nothing from it',
    'MTGP02': '#10 R HDLC NSC V.21: expected [FF C0 84 ...], DUT sent HDLC[FF C0 82 9C 1C EC 6C AC 2C CC 4C 8C 0C D4 04 04 04 04 04 04 04 04 04] at V.21 300',
    'OTGP03': '#11 R HDLC NSC V.21: expected [FF C0 84 ...], DUT sent HDLC[FF C0 82 9C 1C EC 6C AC 2C CC 4C 8C 0C D4 04 04 04 04 04 04 04 04 04] at V.21 300',
    'MTGN14': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGN15': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGN16': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGN23': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGN24': '#21 R TCF V.27ter/2400: TCF at V.27ter 4800, expected V.27ter 2400',
    'MTGN26': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGN27': '#21 R TCF V.29/7200: TCF at V.29 9600, expected V.29 7200',
    'MTGN28': '#20 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 C1 00 50 00] at V.21 300',
    'OTGC08': '#27 R TCF V.29/9600: TCF at V.17 7200, expected V.29 9600',
    'OTGC10': '#29 R TCF V.17/9600: TCF at V.17 12000, expected V.17 9600',
    'OTEN01': '#21 R HDLC PPS-MPS+ V.21: expected [FF C8 FD F2 ...], DUT sent HDLC[FF C8 FD 00 00 80 FF] at V.21 300',
    'OTEN02': '#27 R HDLC PPS-MPS+ V.21: expected [FF C8 FD F2 ...], DUT sent HDLC[FF C8 FD 00 00 80 FF] at V.21 300',
    'OTEN03': 'repeat at step 20 ran 21 times, at least 23 required',
    'OTEN04': 'STATUS: expected a failure (RETRYDCN), DUT reported success',
    'OTEN06': '#15 R HDLC PPS-EOP+ V.21: expected [FF C8 FD F4 ...], DUT sent HDLC[FF C8 FD 00 00 00 FF] at V.21 300',
    'MTGX01': 'STATUS: expected OK, DUT ended with failure (NO_RESPONSE_TO_DCS)',
    'MTGX02': 'DUT sent HDLC[FF C8 5F] at V.21 300 where the script expects nothing from it',
    'MTGX04': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGX08': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGX13': '#26 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 C1 00 60 00] at V.21 300',
    'MTGX14': '#16 R HDLC EOM+ V.21: expected [FF C8 F1], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGX15': '#30 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 F2] at V.21 300',
    'MTGX16': '#30 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MTGX17': 'DUT sent HDLC[FF C8 C1 00 50 00] at V.21 300 where the script expects nothing from it',
    'MTGX18': 'STATUS: expected a failure (UNEXPECTED), DUT reported success',
    'MTGX20': '#20 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 F4] at V.21 300',
    'MRGP01': '#4 R HDLC DIS V.21: expected [FF C8 01 ...], DUT sent HDLC[FF C0 02 0C 9C 1C EC 6C AC 2C CC 4C 8C 04 04 04 04 04 04 04 04 04 04] at V.21 300',
    'MRGP02': '#5 R HDLC DIS V.21: expected [FF C8 01 ...], DUT sent HDLC[FF C0 02 0C 9C 1C EC 6C AC 2C CC 4C 8C 04 04 04 04 04 04 04 04 04 04] at V.21 300',
    'MRGP04': '#10 R HDLC DCN V.21: expected [FF C8 5F], DUT sent HDLC[FF C8 41 00 44 00] at V.21 300',
    'MRGP06': '#9 R HDLC DCS+ V.21: expected [FF C8 C1 ...], DUT sent HDLC[FF C8 01 00 F7 5F 23 01 F8] at V.21 300',
    'MRGP07': '#10 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 01 00 F7 5F 23 01 F8] at V.21 300',
    'MRGP08': '#9 R HDLC DCN+ V.21: expected [FF C8 DF], DUT sent HDLC[FF C8 01 00 77 5F 23 01 F8] at V.21 300',
    'ORGP10': 'DUT sent HDLC[FF C8 01 00 F7 5F 23 01 F8] at V.21 300 where the script expects nothing from it',
}


def _params():
    for t in SCRIPT.tests:
        marks = []
        if t.name in NOT_APPLICABLE:
            marks.append(pytest.mark.skip(reason=f"not applicable: {NOT_APPLICABLE[t.name]}"))
        elif t.name in KNOWN_FAILURES:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[t.name]))
        yield pytest.param(t, id=t.name, marks=marks)


@pytest.mark.parametrize("test", list(_params()))
def test_tsb85(test):
    result = runner.run_test(test)
    if result.outcome != "pass":
        tail = "\n".join(result.log[-25:])
        pytest.fail(f"{test.name} (Annex {test.annex}): {result.reason}\n--- last line events ---\n{tail}",
                    pytrace=False)
