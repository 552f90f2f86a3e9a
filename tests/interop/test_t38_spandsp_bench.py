"""benchmarks/t38.py's two sides still place real calls: the C harness (spandsp_t38_pair.c)
builds against libspandsp and its spandsp pair delivers pixel-identical pages, and the xmfax
pump does too, paced and unpaced. Nothing is timed here."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "t38"))
import spandsp_t38 as sp  # noqa: E402

pytestmark = pytest.mark.interop

if sp.load() is None:
    pytest.skip("libspandsp.so.2 (Debian libspandsp2) is not installed", allow_module_level=True)
pytest.importorskip("PIL.Image", reason="Pillow writes and reads the TIFF pages")

from calls import test_pages as make_pages  # noqa: E402

# benchmarks/t38.py, loaded under its own name (a plain "t38" could meet tests/t38)
_spec = importlib.util.spec_from_file_location(
    "xmfax_bench_t38", os.path.join(HERE, "..", "..", "benchmarks", "t38.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("spandsp_pair"))
    exe, why = bench.build_harness(tmp)
    assert exe is not None, why              # libspandsp-dev is installed with libspandsp2
    pages = make_pages(2, rows=400)
    tiff = os.path.join(tmp, "tx.tif")
    bench.write_tiff(pages, tiff)
    return exe, tiff, tmp, pages


@pytest.mark.parametrize("paced", [False, True])
@pytest.mark.parametrize("ecm", [False, True])
def test_spandsp_pair_delivers_the_pages(harness, paced, ecm):
    exe, tiff, tmp, pages = harness
    r = bench.spandsp_call(exe, tiff, tmp, pages, paced=paced, ecm=ecm)
    assert r["ok"], r                         # both ends OK, every page pixel-identical
    assert r["cpu"] > 0 and r["packets"] > 10


def test_spandsp_pair_reports_a_failed_call(harness, tmp_path):
    exe, _, tmp, pages = harness
    r = bench.spandsp_call(exe, str(tmp_path / "absent.tif"), tmp, pages, paced=False, ecm=True)
    assert not r["ok"]


@pytest.mark.parametrize("paced", [False, True])
@pytest.mark.parametrize("udptl", [False, True])
def test_xmfax_pair_delivers_the_pages(paced, udptl):
    r = bench.xmfax_call(make_pages(2, rows=400), paced=paced, ecm=True, udptl=udptl)
    assert r["ok"], r
