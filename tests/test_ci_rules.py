"""The suite's own rules (tests/conftest.py): strict skips in CI, hypothesis profiles, the
fuzz marker. Each case runs pytest in a subprocess on small generated test files, inside a
copy of tests/conftest.py, with and without strict mode."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path


CONFTEST = Path(__file__).resolve().parent / "conftest.py"

MODULE = '''
import pytest

@pytest.mark.interop
def test_peer_absent():
    pytest.skip("the peer is not installed")

@pytest.mark.conformance
@pytest.mark.skipif(True, reason="script file absent")
def test_conformance_skipif():
    pass

def test_optional_oracle_absent():
    pytest.skip("asn1tools is the oracle")

def test_shared_file_absent():
    pytest.skip("ITU T.24 page /nowhere/shared/corpus/itu/itu1.pbm not present (shared corpus absent)")

@pytest.mark.interop
@pytest.mark.xfail(reason="known", strict=True)
def test_interop_xfail():
    assert False

@pytest.fixture(scope="module")
def rig():
    pytest.skip("iaxmodem rig did not start")

@pytest.mark.modem
def test_modem_rig(rig):
    pass

def test_passes():
    pass
'''

MODULE_IMPORTORSKIP = '''
import pytest
mod = pytest.importorskip("xmfax.no_such_module_here", reason="the thing is not there yet")

def test_uses_it():
    pass
'''

MODULE_THIRD_PARTY = '''
import pytest
mod = pytest.importorskip("no_such_third_party_oracle", reason="an optional oracle")

def test_uses_it():
    pass
'''

MODULE_HYPOTHESIS = '''
from hypothesis import given, settings, strategies as st

@given(st.integers())
@settings(max_examples=7)
def test_prop(x):
    assert isinstance(x, int)

def test_plain_two():
    pass

def test_plain():
    pass
'''


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    shutil.copy(CONFTEST, root / "tests" / "conftest.py")
    (root / "pytest.ini").write_text(textwrap.dedent("""
        [pytest]
        markers =
            interop: x
            modem: x
            slow: x
            conformance: x
            fuzz: x
    """))
    for name, text in files.items():
        p = root / "tests" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return root


def _run(root: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items()
         if k not in ("CI", "XMFAX_STRICT_SKIPS", "XMFAX_HYPOTHESIS_PROFILE", "PYTEST_ADDOPTS")}
    e.update(env)
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:benchmark", "-rA", *args],
                          cwd=root, env=e, capture_output=True, text=True, timeout=120)


def _outcomes(out: str) -> dict[str, str]:
    """test name -> PASSED/FAILED/SKIPPED/ERROR/XFAIL from the -rA short summary."""
    got = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] in ("PASSED", "FAILED", "SKIPPED", "ERROR", "XFAIL", "XPASS"):
            name = parts[1].split("::")[-1] if "::" in parts[1] else parts[-1]
            if parts[0] == "SKIPPED":      # "SKIPPED [1] path:line: reason"
                name = line
            got.setdefault(name, parts[0])
    return got


def test_without_strict_mode_every_skip_stays_a_skip(tmp_path):
    root = _tree(tmp_path, {"test_mod.py": MODULE})
    r = _run(root)
    assert r.returncode == 0, r.stdout
    assert "strict skips off" in r.stdout
    assert "hypothesis profile 'dev', seed random per test" in r.stdout
    assert "5 skipped" in r.stdout and "1 passed" in r.stdout and "1 xfailed" in r.stdout, r.stdout


def test_strict_mode_fails_interop_conformance_modem_and_shared_skips(tmp_path):
    root = _tree(tmp_path, {"test_mod.py": MODULE})
    r = _run(root, CI="true")          # (XMFAX_STRICT_SKIPS=1 alone: the module-level case below)
    assert r.returncode == 1, r.stdout
    res = _outcomes(r.stdout)
    assert res["test_peer_absent"] == "FAILED"
    assert res["test_conformance_skipif"] == "ERROR"        # skipif fires in setup
    assert res["test_shared_file_absent"] == "FAILED"
    assert res["test_modem_rig"] == "ERROR"                 # the rig fixture skipped
    assert res["test_interop_xfail"] == "XFAIL"
    assert res["test_passes"] == "PASSED"
    # an optional third-party oracle may still skip
    assert "1 skipped" in r.stdout and "asn1tools is the oracle" in r.stdout
    assert "skipped in strict mode (marked interop): the peer is not installed" in r.stdout
    assert "iaxmodem rig did not start" in r.stdout


def test_strict_mode_can_be_turned_off_in_ci(tmp_path):
    root = _tree(tmp_path, {"test_mod.py": MODULE})
    r = _run(root, CI="true", XMFAX_STRICT_SKIPS="0")
    assert r.returncode == 0 and "5 skipped" in r.stdout, r.stdout


def test_module_level_skips_become_one_failure_each_and_the_run_goes_on(tmp_path):
    root = _tree(tmp_path, {
        "test_imp.py": MODULE_IMPORTORSKIP,
        "test_third.py": MODULE_THIRD_PARTY,
        "conformance/test_script.py": "import pytest\npytest.skip('script absent', allow_module_level=True)\n",
        "test_ok.py": "def test_ok():\n    pass\n",
    })
    loose = _run(root)
    assert loose.returncode == 0 and "3 skipped" in loose.stdout, loose.stdout
    r = _run(root, XMFAX_STRICT_SKIPS="1")
    assert r.returncode == 1, r.stdout
    assert "2 failed" in r.stdout and "1 passed" in r.stdout and "1 skipped" in r.stdout, r.stdout
    assert "[xmfax module missing: xmfax.no_such_module_here]" in r.stdout
    assert "module in tests/conformance" in r.stdout and "script absent" in r.stdout
    assert "error" not in r.stdout.splitlines()[-1]     # no collection error stopped the run


def test_profiles_header_and_fuzz_marker(tmp_path):
    root = _tree(tmp_path, {"test_prop.py": MODULE_HYPOTHESIS, "test_fuzz_x.py": "def test_a():\n    pass\n"})
    ci = _run(root, "-m", "fuzz", CI="true")
    assert "hypothesis profile 'ci', seed derandomized" in ci.stdout
    assert ci.returncode == 0 and "2 passed" in ci.stdout and "2 deselected" in ci.stdout, ci.stdout
    fuzz = _run(root, "--hypothesis-seed=1234", XMFAX_HYPOTHESIS_PROFILE="fuzz")
    assert "hypothesis profile 'fuzz', seed 1234" in fuzz.stdout, fuzz.stdout
    bad = _run(root, XMFAX_HYPOTHESIS_PROFILE="nope")
    assert bad.returncode != 0 and "XMFAX_HYPOTHESIS_PROFILE='nope'" in bad.stdout + bad.stderr


def test_fuzz_profile_scales_examples_and_prints_the_seed_of_a_failure(tmp_path):
    counting = '''
from hypothesis import given, settings, strategies as st
CALLS = []

@given(st.integers())
@settings(max_examples=10)
def test_count(x):
    CALLS.append(x)

def test_report():
    print("calls", len(CALLS))
    assert len(CALLS) > {limit}

@given(st.binary(min_size=1))
def test_fails(b):
    assert b[0] != 7
'''
    root = _tree(tmp_path, {"test_c.py": counting.replace("{limit}", "10")})
    fuzz = _run(root, XMFAX_HYPOTHESIS_PROFILE="fuzz", XMFAX_FUZZ_SCALE="3")
    assert "PASSED tests/test_c.py::test_report" in fuzz.stdout, fuzz.stdout
    assert "FAILED tests/test_c.py::test_fails" in fuzz.stdout
    assert "hypothesis seed" in fuzz.stdout and "--hypothesis-seed=" in fuzz.stdout
    dev = _run(root)
    assert "FAILED tests/test_c.py::test_report" in dev.stdout, dev.stdout


def test_a_subfolder_conftest_stays_importable_by_name(tmp_path):
    """tests/interop imports helpers with `from conftest import fax_page` after putting
    tests/document on sys.path: the top-level tests/conftest.py must not shadow it."""
    root = _tree(tmp_path, {
        "document/conftest.py": "def helper():\n    return 42\n",
        "interop/test_uses_helper.py": textwrap.dedent("""
            import os, sys
            sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "document"))
            from conftest import helper

            def test_helper():
                assert helper() == 42
        """),
    })
    r = _run(root, "tests/interop")
    assert r.returncode == 0 and "1 passed" in r.stdout, r.stdout
