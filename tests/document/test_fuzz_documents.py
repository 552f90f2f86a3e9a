"""Issue #10, finding 6: hostile and randomly damaged files through load, info and convert.

Seeds are every generator of ``hostile_files`` (at sizes small enough to mutate) and
valid TIFF (MH, MR, MMR, uncompressed, multi-strip), PDF, PNG and JPEG files. Whatever
the damage, ``document.load`` (strict and tolerant) and ``describe`` raise nothing but
DocumentError, a page is never larger than the limits, a strict page never carries
damaged rows, and ``xmfax info``/``convert`` run in-process exit 0 or 3 with one line.
"""
from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hostile_files as H
from docsamples import fax_page, pdf_bytes, text_image, to_bytes
from xmfax import document
from xmfax.cli import main
from xmfax.document import Limits
from xmfax.errors import DocumentError

SMALL = Limits(max_pages=12, max_page_rows=4000, max_source_pixels=12_000_000, max_total_source_pixels=40_000_000,
               max_total_pixels=30_000_000, max_image_bytes=64 * 2**20, max_text_chars=200_000)


def _valid() -> dict[str, bytes]:
    out = {}
    for codec in ("mh", "mr", "mmr"):
        buf = io.BytesIO()
        document.save([fax_page(rows=48, seed=3), fax_page(rows=32, seed=4)], buf, format="tiff", codec=codec)
        out[f"tiff-{codec}"] = buf.getvalue()
    img = np.zeros((40, 1728), dtype=bool)
    img[::4, ::9] = True
    packed = np.packbits(img, axis=1).tobytes()
    stride = 1728 // 8
    entries = H.fax_entries(1728, 40, compression=1, strip_len=stride * 10, rows_per_strip=10)
    offsets = b"".join(int(8 + i * stride * 10).to_bytes(4, "little") for i in range(4))
    entries = H.replace_tag(entries, 273, H.LONG, 4, offsets)
    entries = H.replace_tag(entries, 279, H.LONG, 4, (stride * 10).to_bytes(4, "little") * 4)
    out["tiff-raw-strips"] = H.tiff([entries], packed)
    out["png"] = to_bytes(text_image(size=(160, 120)), "PNG")
    out["jpeg"] = to_bytes(text_image(size=(160, 120)).convert("RGB"), "JPEG")
    out["jpeg-progressive"] = to_bytes(text_image(size=(160, 120)), "JPEG", progressive=True)
    out["pdf"] = pdf_bytes(1, size_pt=(200, 150))
    out["pdf-hand"] = H.pdf(3, 300, 200)
    out["text"] = b"Dear reader,\n\tthe fax follows.\n\x0cpage two\n"
    return out


SEEDS = {
    **_valid(),
    "random-g3": H.random_strip_tiff(3, 300),
    "random-g4": H.random_strip_tiff(4, 300),
    "forged-jpeg": H.forged_size_jpeg(),
    "rgba16-png": H.rgba16_png(),
    "many-pages": H.many_pages_tiff(20, 1728, 3000),
    "overlap": H.overlapping_strips_tiff(50, length=100),
    "tall-pdf": H.pdf(4, 595, 4800),
    "ascii-tag": H.ascii_subfile_type_tiff(),
    "rational-tag": H.rational_strip_counts_tiff(),
    "nan-tag": H.nan_resolution_tiff(),
}


def check_load(data: bytes) -> None:
    for tolerant in (False, True):
        try:
            pages = document.load(data, limits=SMALL, tolerant=tolerant)
        except DocumentError:
            continue
        for p in pages:
            assert p.image.dtype == np.bool_ and 0 < p.rows <= SMALL.max_page_rows
            assert isinstance(p.info["damaged_rows"], list)
            if not tolerant:
                assert p.info["damaged_rows"] == []
            for lo, hi in p.info["damaged_rows"]:
                assert 0 <= lo < hi <= p.rows
    try:
        document.describe(data, limits=SMALL)
    except DocumentError:
        pass


def check_cli(tmp_path, capsys, data: bytes) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(data)
    for args in (["info", src], ["info", src, "--json"],
                 ["convert", src, "-o", tmp_path / "out.tif", "--max-pages", "12"]):
        status = main([str(a) for a in args])
        out, err = capsys.readouterr()
        assert status in (0, 3), (args, status, err)
        if status == 3:
            assert err.count("\n") == 1 and not out, (args, err)
        elif "--json" in args:
            import json

            json.loads(out)                                  # strict JSON: no NaN, no Infinity


@pytest.mark.parametrize("name", sorted(SEEDS))
def test_each_seed(name, tmp_path, capsys):
    check_load(SEEDS[name])
    if name not in ("many-pages",):                          # convert writes; keep the CLI run short
        check_cli(tmp_path, capsys, SEEDS[name])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(SEEDS)), seed=st.integers(0, 2**32 - 1))
def test_mutated_load(name, seed):
    check_load(H.mutate(SEEDS[name], random.Random(seed)))


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(sorted(k for k in SEEDS if k != "many-pages")), seed=st.integers(0, 2**32 - 1))
def test_mutated_cli(name, seed, tmp_path, capsys):
    check_cli(tmp_path, capsys, H.mutate(SEEDS[name], random.Random(seed)))
