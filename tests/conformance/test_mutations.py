"""The TSB-85 runner against engines broken on purpose: each must fail it.

Issue #13 found that three broken engines scored as well as the real one when the
runner only looked at frames. The mutants (mutants.py: an all-white sender, an ECM
receiver that keeps only block 1, copy quality that always answers MCF) are given
to the runner instead of the real ``Session`` (``runner._session_api``); the tests
named for each must FAIL, for the reason the content checks give. Only the tests a
mutation reaches are run (a handful each, not the 138), so this file takes a few
seconds; ``python tests/conformance/runner.py --mutant NAME`` shows the whole
score dropping (docs/conformance.md quotes it).
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

from xmfax.t30 import T30Config  # noqa: E402
from mutants import AllWhiteSender, AlwaysMCF, FirstBlockOnly  # noqa: E402

SCRIPT = parse(DEFAULT_XML)


def _run(names):
    return {name: runner.run_test(SCRIPT.by_name(name)) for name in names}


def _with(monkeypatch, cls):
    monkeypatch.setattr(runner, "_session_api", lambda: (cls, T30Config))


# Tests of each kind; every one passes against the real engine (checked first).
SENDERS = ["MTGN01", "OTGC01", "OTGC11", "OTEN06"]   # the DUT sends an IMPRESS page (ECM: OTEN06)
ECM_MULTIBLOCK = ["OREN01", "OREN02"]                 # the tester's page spans two blocks
COPY_QUALITY = ["MRGN04"]                             # 4.9 % then 15.1 % bad rows (TSB-85's only one)


@pytest.mark.parametrize("cls,names,words", [
    (AllWhiteSender, SENDERS, "the source"),
    (FirstBlockOnly, ECM_MULTIBLOCK, "the source"),
    (AlwaysMCF, COPY_QUALITY, "FF C8 32"),
], ids=["all-white-sender", "ecm-first-block-only", "copy-quality-always-mcf"])
def test_a_broken_engine_fails_the_runner(monkeypatch, cls, names, words):
    real = _run(names)
    passing = [n for n, r in real.items() if r.outcome == "pass"]
    assert passing == names, {n: r.reason for n, r in real.items() if r.outcome != "pass"}
    _with(monkeypatch, cls)
    broken = _run(passing)
    failed = {n: r.reason for n, r in broken.items() if r.outcome == "fail"}
    # every test that passed with the real engine fails with the broken one, and for the
    # reason the content checks give (not a crash of the mutation)
    assert set(failed) == set(passing), {n: r.reason for n, r in broken.items()}
    assert all(words in why for why in failed.values()), failed
