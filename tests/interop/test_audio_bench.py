"""benchmarks/audio.py's two sides still place real calls: the C harness
(spandsp_fax_pair.c) builds against libspandsp and its pair of spandsp fax_state terminals
delivers pixel-identical pages at V.17 14400, ECM on and off; a call that fails is reported
as failed; the xmfax pump delivers too; the modem speed lines are still read. Nothing is
timed here."""
from __future__ import annotations

import importlib.util
import os
import sys

import pytest

HERE = os.path.dirname(__file__)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "audio"))
import spandsp_fax_audio as sf  # noqa: E402

pytestmark = pytest.mark.interop

if sf.load() is None:
    pytest.skip(f"spandsp is not available: {sf.unavailable_reason()}", allow_module_level=True)
pytest.importorskip("PIL.Image", reason="Pillow writes and reads the TIFF pages")

from test_audio_calls import small_pages  # noqa: E402

# benchmarks/audio.py, loaded under its own name (a plain "audio" is tests/audio)
_spec = importlib.util.spec_from_file_location(
    "xmfax_bench_audio", os.path.join(HERE, "..", "..", "benchmarks", "audio.py"))
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("spandsp_fax_pair"))
    exe, why = bench.build_harness(tmp)
    assert exe is not None, why              # libspandsp-dev is installed with libspandsp2
    pages = small_pages(2, rows=200)
    tiff = os.path.join(tmp, "tx.tif")
    bench.write_tiff(pages, tiff)
    return exe, tiff, tmp, pages


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_spandsp_pair_delivers_the_pages(harness, ecm):
    exe, tiff, tmp, pages = harness
    r = bench.spandsp_call(exe, tiff, tmp, pages, ecm=ecm)
    assert r["ok"], r                         # both ends OK, every page pixel-identical
    assert r["rate"] == 14400
    assert r["coding"] == ("mmr" if ecm else "mr")
    assert r["cpu"] > 0 and 5.0 < r["sim"] < 120.0


def test_spandsp_pair_at_a_lower_rate(harness):
    exe, tiff, tmp, pages = harness
    r = bench.spandsp_call(exe, tiff, tmp, pages, ecm=True, max_rate=9600)
    assert r["ok"] and r["rate"] == 9600, r


def test_both_pairs_with_100ms_blocks(harness):
    exe, tiff, tmp, pages = harness
    r = bench.spandsp_call(exe, tiff, tmp, pages, ecm=True, block=800)
    assert r["ok"] and r["rate"] == 14400, r
    r = bench.xmfax_call(pages, ecm=True, block=800)
    assert r["ok"] and r["rate"] == 14400, r


def test_spandsp_pair_reports_a_failed_call(harness, tmp_path):
    exe, _, tmp, pages = harness
    r = bench.spandsp_call(exe, str(tmp_path / "absent.tif"), tmp, pages, ecm=True)
    assert not r["ok"]
    assert r["codes"] != "0,0"


def test_spandsp_pair_pages_are_compared(harness, tmp_path):
    # a TIFF of other pages: the call succeeds, the comparison must fail it
    exe, _, tmp, pages = harness
    other = str(tmp_path / "other.tif")
    bench.write_tiff(small_pages(2, rows=200, seed=9), other)
    r = bench.spandsp_call(exe, other, tmp, pages, ecm=True)
    assert r["codes"] == "0,0" and not r["ok"], r


@pytest.mark.parametrize("ecm", [False, True], ids=["ecm-off", "ecm-on"])
def test_xmfax_pair_delivers_the_pages(ecm):
    pages = small_pages(2, rows=200)
    r = bench.xmfax_call(pages, ecm=ecm)
    assert r["ok"], r
    assert r["rate"] == 14400
    assert r["coding"] == ("mmr" if ecm else "mr")
    assert r["cpu"] > 0 and 5.0 < r["sim"] < 120.0


def test_xmfax_pair_reports_a_call_cut_short(monkeypatch):
    # 5 s of line time is not enough for a call: it has not ended, so it has failed
    monkeypatch.setattr(bench, "LIMIT", 5.0)
    r = bench.xmfax_call(small_pages(1, rows=100), ecm=True)
    assert not r["ok"] and r["sim"] <= 5.1, r


def test_the_modem_speed_lines_are_read():
    # the speed table parses audio_v17.speed's line; a change of its format must show here
    v17 = bench._load("xmfax_bench_audio_v17", os.path.join(bench.HERE, "audio_v17.py"))
    m = bench._SPEED.search(v17.speed(14400, seconds=1))
    assert m is not None and all(int(g) > 0 for g in m.groups())
