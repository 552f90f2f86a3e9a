"""Suite-wide test rules: hypothesis profiles, the `fuzz` and `conformance` markers, and
strict skips (in CI a test that needs a real peer or a shared file may not skip).

Hypothesis profiles (chosen by XMFAX_HYPOTHESIS_PROFILE; CI=true chooses ``ci``):

``ci``    derandomised (the same examples on every run), no deadline, no example
          database, the reproduction blob printed: CI cannot go red (or green) by luck.
``dev``   the default: random examples, no deadline (this machine is shared and loaded).
``fuzz``  fresh random examples, several times each test's own ``max_examples``
          (XMFAX_FUZZ_SCALE, default 3); scripts/fuzz.sh runs it with a seed per round.

Strict skips (on when CI=true or XMFAX_STRICT_SKIPS=1; XMFAX_STRICT_SKIPS=0 turns them off):
a skipped test marked ``interop``, ``conformance`` or ``modem``, a test (or module) that
skipped because ``pytest.importorskip`` could not import an xmfax module, because a part of
xmfax is "not built", or because a file under ../shared is missing, is reported as a
failure carrying the skip's reason. ``xfail`` is untouched. Outside strict mode such a
skip stays a skip with its reason (``-rs`` lists them).
"""
from __future__ import annotations

import os
import random
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, core as hypothesis_core, is_hypothesis_test, settings

TESTS = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("XMFAX_SHARED") or TESTS.parents[1] / "shared")
PROFILES = ("ci", "dev", "fuzz")
STRICT_MARKERS = ("interop", "conformance", "modem")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def in_ci() -> bool:
    return _truthy(os.environ.get("CI"))


def strict_skips() -> bool:
    explicit = os.environ.get("XMFAX_STRICT_SKIPS")
    if explicit is not None and explicit.strip() != "":
        return _truthy(explicit)
    return in_ci()


def profile_name() -> str:
    name = os.environ.get("XMFAX_HYPOTHESIS_PROFILE", "").strip() or ("ci" if in_ci() else "dev")
    if name not in PROFILES:
        raise pytest.UsageError(f"XMFAX_HYPOTHESIS_PROFILE={name!r}: one of {', '.join(PROFILES)}")
    return name


# ---------------------------------------------------------------- hypothesis profiles
# Loaded at import, before any test module: @settings(...) in a test inherits from the
# profile that is current when its module is imported.
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile(
    "fuzz", derandomize=False, deadline=None, print_blob=True, database=None, max_examples=500,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = profile_name()
settings.load_profile(PROFILE)
FUZZ_SCALE = max(1, int(os.environ.get("XMFAX_FUZZ_SCALE", "3") or 3))


def pytest_configure(config):
    # (the markers fuzz and conformance are declared in pyproject.toml)
    # pytest imported this file as the top-level module "conftest"; tests that put
    # tests/document on sys.path and do `from conftest import fax_page` mean that folder's
    # conftest, so this one must not stay cached under the name (pytest keeps its own
    # reference to it; it drops the name before each conftest it imports, too).
    if getattr(sys.modules.get("conftest"), "__file__", None) == __file__:
        del sys.modules["conftest"]
    # The fuzz profile draws fresh examples, but from a seed that is printed (header, and
    # beside every failure) so that any failure can be replayed with --hypothesis-seed.
    if PROFILE == "fuzz" and config.getoption("hypothesis_seed", None) is None:
        seed = random.SystemRandom().randrange(1, 2**32)
        config.option.hypothesis_seed = str(seed)
        hypothesis_core.global_force_seed = seed


def _seed_text(config) -> str:
    seed = config.getoption("hypothesis_seed", None)
    if PROFILE == "ci" or settings.default.derandomize:
        return "derandomized (fixed per test; --hypothesis-seed is ignored)"
    if seed is not None:
        scale = f" XMFAX_FUZZ_SCALE={FUZZ_SCALE}" if PROFILE == "fuzz" else ""
        return f"{seed} (replay: XMFAX_HYPOTHESIS_PROFILE={PROFILE}{scale} pytest --hypothesis-seed={seed} ...)"
    return "random per test (fix one with --hypothesis-seed=N)"


def pytest_report_header(config):
    return [f"xmfax: hypothesis profile {PROFILE!r}, seed {_seed_text(config)}",
            f"xmfax: strict skips {'ON (a skipped interop/conformance/modem test fails)' if strict_skips() else 'off'};"
            f" XMFAX_IMPL={os.environ.get('XMFAX_IMPL', 'auto')}"]


# ---------------------------------------------------------------- markers
_FUZZ_NAME = re.compile(r"fuzz", re.I)


def _is_property_test(item) -> bool:
    fn = getattr(item, "obj", None)
    if fn is None:
        return False
    return is_hypothesis_test(fn) or hasattr(getattr(item, "function", None), "hypothesis")


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = Path(str(item.path)).resolve()
        if TESTS / "conformance" in path.parents:
            item.add_marker(pytest.mark.conformance)
        prop = _is_property_test(item)
        if prop or _FUZZ_NAME.search(path.name) or _FUZZ_NAME.search(item.name):
            item.add_marker(pytest.mark.fuzz)
        if prop and PROFILE == "fuzz":
            _scale_examples(item.obj)


def _scale_examples(fn) -> None:
    """In the fuzz profile a test's own @settings(max_examples=N) becomes N * XMFAX_FUZZ_SCALE
    (hypothesis reads the wrapped test's settings when it runs)."""
    own = getattr(fn, "_hypothesis_internal_use_settings", None)
    if own is None or getattr(fn, "_xmfax_fuzz_scaled", False):
        return
    fn._hypothesis_internal_use_settings = settings(own, max_examples=own.max_examples * FUZZ_SCALE)
    fn._xmfax_fuzz_scaled = True


# ---------------------------------------------------------------- strict skips
# importorskip of an xmfax module is tagged, so that its skip can be told from an
# optional third-party oracle's (asn1tools, Pillow) wherever it happens.
_XMFAX_MODULE = re.compile(r"^(xmfax|drivers)(\.|$)")
_TAG = "[xmfax module missing: {}]"
_original_importorskip = pytest.importorskip


def _importorskip(modname, *args, **kwargs):
    try:
        return _original_importorskip(modname, *args, **kwargs)
    except pytest.skip.Exception as exc:
        if not _XMFAX_MODULE.match(modname):
            raise
        raise pytest.skip.Exception(f"{exc.msg} {_TAG.format(modname)}", allow_module_level=True) from None


pytest.importorskip = _importorskip


def environment_skip(reason: str) -> str | None:
    """Why a skip with this reason is a missing part of xmfax or of ../shared (None: it is not)."""
    if "[xmfax module missing:" in reason:
        return "an xmfax module did not import"
    if re.search(r"\bnot built\b", reason):
        return "a part of xmfax is not built"
    if str(SHARED) in reason or "/shared/" in reason or "shared corpus" in reason:
        return "a file under ../shared is missing"
    return None


def _skip_reason(longrepr) -> str:
    text = str(longrepr[2]) if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text.removeprefix("Skipped: ")


def _strict_failure(kind: str, reason: str) -> str:
    # in CI every peer, shared file and part of xmfax is installed: the skip hides a test
    return f"skipped in strict mode ({kind}): {reason} [CI=true or XMFAX_STRICT_SKIPS=1: a skip here is a failure]"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    rep = yield
    if rep.skipped and not hasattr(rep, "wasxfail") and strict_skips():
        reason = _skip_reason(rep.longrepr)
        marks = [m for m in STRICT_MARKERS if item.get_closest_marker(m)]
        kind = f"marked {'/'.join(marks)}" if marks else environment_skip(reason)
        if kind:
            rep.outcome = "failed"
            rep.longrepr = _strict_failure(kind, reason)
    if rep.failed and rep.when == "call" and PROFILE != "ci" and _is_property_test(item):
        seed = item.config.getoption("hypothesis_seed", None)
        if seed is not None:
            scale = f", XMFAX_FUZZ_SCALE={FUZZ_SCALE}" if PROFILE == "fuzz" else ""
            rep.sections.append(("hypothesis seed", f"profile {PROFILE}{scale}, --hypothesis-seed={seed}"))
    return rep


class StrictSkippedModule(pytest.Item):
    """Stands for a test module that skipped as a whole (module-level skip or importorskip)
    in strict mode: one failing item instead of a collection error that would stop the run."""

    def __init__(self, *, reason: str, kind: str, **kw):
        super().__init__(**kw)
        self.reason, self.kind = reason, kind

    def runtest(self):
        pytest.fail(_strict_failure(self.kind, self.reason), pytrace=False)

    def reportinfo(self):
        return self.path, 0, f"{self.path.name} (skipped as a whole)"


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    rep = yield
    if not (rep.skipped and strict_skips() and isinstance(collector, pytest.Module)):
        return rep
    reason = _skip_reason(rep.longrepr)
    path = Path(str(collector.path)).resolve()
    kind = None
    for part in ("interop", "conformance"):
        if TESTS / part in path.parents:
            kind = f"module in tests/{part}"
    kind = kind or environment_skip(reason)
    if not kind:
        return rep
    item = StrictSkippedModule.from_parent(collector, name="module_skipped", reason=reason, kind=kind)
    return pytest.CollectReport(rep.nodeid, "passed", None, [item])


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs(size, read_only=False)`` mounts a fresh tmpfs of that size (e.g. "100k") under
    tmp_path and returns its path: a real small or read-only disk for the tests that fill or
    refuse writes. Needs root; elsewhere the test skips with the reason. Unmounted afterwards."""
    import subprocess

    mounts: list[Path] = []

    def mount(size: str, read_only: bool = False) -> Path:
        where = tmp_path / f"tmpfs{len(mounts)}"
        where.mkdir()
        options = f"ro,size={size}" if read_only else f"size={size}"
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a {size} tmpfs here: {done.stderr.strip() or done.returncode}")
        mounts.append(where)
        return where

    yield mount
    for where in mounts:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)
