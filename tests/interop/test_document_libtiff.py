"""xmfax's TIFF Class F and PDF output read by libtiff and poppler; libtiff's fax TIFFs read by xmfax."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from xmfax import document
from xmfax.page import Page, Resolution

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "document"))
from docsamples import ITU, fax_page  # noqa: E402

pytestmark = pytest.mark.interop


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} not installed (apt-get install libtiff-tools poppler-utils)")
    return path


def run(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)


def sample_pages() -> list[Page]:
    if ITU.is_dir():
        return [document.load(ITU / f"itu{n}.pbm")[0] for n in (1, 4)]
    return [fax_page(rows=800, seed=s) for s in (1, 2)]


def parse_tiffinfo(text: str) -> list[dict]:
    dirs = []
    for block in text.split("=== TIFF directory")[1:]:
        d = {}
        m = re.search(r"Image Width: (\d+) Image Length: (\d+)", block)
        d["width"], d["length"] = int(m.group(1)), int(m.group(2))
        m = re.search(r"Resolution: ([\d.]+), ([\d.]+) pixels/inch", block)
        d["x"], d["y"] = float(m.group(1)), float(m.group(2))
        d["compression"] = re.search(r"Compression Scheme: (.+)", block).group(1).strip()
        d["fill"] = re.search(r"FillOrder: (\S+)", block).group(1)
        dirs.append(d)
    return dirs


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_libtiff_reads_xmfax_tiff_and_info_agrees(tmp_path, codec):
    need("tiffinfo")
    pages = sample_pages()
    pages[1] = Page(pages[1].image, Resolution.FINE)
    out = tmp_path / "x.tif"
    document.save(pages, out, codec=codec)
    r = run("tiffinfo", out)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    libtiff = parse_tiffinfo(r.stdout)
    ours = document.describe(out)["pages"]
    assert len(libtiff) == len(ours) == 2
    names = {"g3": "CCITT Group 3", "g4": "CCITT Group 4"}
    for lt, xm in zip(libtiff, ours):
        assert (lt["width"], lt["length"]) == (xm["width"], xm["length"])
        assert (lt["x"], lt["y"]) == (xm["x_resolution"], xm["y_resolution"])
        assert lt["compression"] == names[xm["compression"]]
        assert lt["fill"] == {1: "msb-to-lsb", 2: "lsb-to-msb"}[xm["fill_order"]]
    # full decode by libtiff: tiffinfo -D reads every strip and reports any coding error
    r = run("tiffinfo", "-D", out)
    assert r.returncode == 0 and "error" not in r.stderr.lower() and "Bad code" not in r.stderr, r.stderr


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_tiffcp_decodes_identical_pixels(tmp_path, codec):
    need("tiffcp")
    need("tiffcmp")
    pages = sample_pages()
    ours = tmp_path / "ours.tif"
    document.save(pages, ours, codec=codec)
    raw = tmp_path / "raw.tif"
    r = run("tiffcp", "-c", "none", ours, raw)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    # libtiff's uncompressed pixels are the original pixels
    back = document.load(raw)
    assert [b.info["compression"] for b in back] == ["none", "none"]
    assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, back))
    # and equal, by tiffcmp, to what libtiff decodes from its own G4 re-encoding
    lib_g4, lib_raw = tmp_path / "lib_g4.tif", tmp_path / "lib_raw.tif"
    assert run("tiffcp", "-c", "g4", raw, lib_g4).returncode == 0
    assert run("tiffcp", "-c", "none", lib_g4, lib_raw).returncode == 0
    assert run("tiffcmp", raw, lib_raw).returncode == 0
    # tiffcmp can fail: one flipped pixel is seen
    flipped = [Page(p.image.copy(), p.resolution) for p in pages]
    flipped[0].image[100, 100] ^= True
    document.save(flipped, tmp_path / "f.tif", codec=codec)
    run("tiffcp", "-c", "none", tmp_path / "f.tif", tmp_path / "f_raw.tif")
    assert run("tiffcmp", raw, tmp_path / "f_raw.tif").returncode != 0


@pytest.mark.parametrize("options", [
    ["-c", "g3:1d"], ["-c", "g3:2d"], ["-c", "g3:1d:fill"], ["-c", "g3:2d:fill"], ["-c", "g4"],
    ["-c", "g3:2d", "-f", "lsb2msb"], ["-c", "g4", "-f", "lsb2msb"], ["-c", "g3:1d", "-r", "64"],
    ["-c", "g4", "-r", "100"], ["-c", "none", "-f", "lsb2msb"], ["-c", "lzw"], ["-c", "packbits"],
])
def test_xmfax_reads_libtiff_fax_tiffs(tmp_path, options):
    need("tiffcp")
    pages = sample_pages()
    base = tmp_path / "base.tif"
    document.save(pages, base, codec="mh")
    variant = tmp_path / "v.tif"
    r = run("tiffcp", *options, base, variant)
    assert r.returncode == 0, r.stderr
    back = document.load(variant)
    assert len(back) == len(pages)
    for a, b in zip(pages, back):
        assert b.resolution is a.resolution and np.array_equal(a.image, b.image), options


@pytest.mark.parametrize("orientation,transform", [(3, lambda a: a[::-1, ::-1]), (4, lambda a: a[::-1]),
                                                   (2, lambda a: a[:, ::-1])])
def test_orientation_tag_set_by_tiffset(tmp_path, orientation, transform):
    need("tiffset")
    page = fax_page(rows=300)
    path = tmp_path / "o.tif"
    document.save([page], path, codec="mmr")
    assert run("tiffset", "-s", "274", str(orientation), path).returncode == 0
    assert np.array_equal(document.load(path)[0].image, transform(page.image))


def test_pdftoppm_renders_identical_pixels(tmp_path):
    need("pdftoppm")
    pages = [fax_page(rows=240, seed=1, resolution=Resolution.STANDARD), fax_page(rows=240, seed=2)]
    pdf = tmp_path / "x.pdf"
    document.save(pages, pdf)
    for i, page in enumerate(pages, 1):
        # poppler smooths images drawn at less than 4x; at exactly 4x it draws each pixel as a 4x4 block
        r = run("pdftoppm", "-f", i, "-l", i, "-gray", "-scale-to-x", page.width * 4, "-scale-to-y",
                page.rows * 4, pdf, tmp_path / f"r{i}")
        assert r.returncode == 0, r.stderr
        img = np.asarray(Image.open(next(tmp_path.glob(f"r{i}*.pgm"))))
        assert img.shape == (page.rows * 4, page.width * 4)
        assert np.array_equal(img[2::4, 2::4] < 128, page.image)


def test_pdfinfo_page_size(tmp_path):
    need("pdfinfo")
    pdf = tmp_path / "x.pdf"
    document.save([fax_page(rows=1145, resolution=Resolution.STANDARD)], pdf)
    r = run("pdfinfo", pdf)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    m = re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", r.stdout)
    assert float(m.group(1)) == pytest.approx(1728 / 204 * 72, abs=0.01)
    assert float(m.group(2)) == pytest.approx(1145 / 98 * 72, abs=0.01)


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_damaged_strips_against_libtiff(tmp_path, codec):
    """Issue #10: a page xmfax loads for sending (strict) is exactly the page libtiff decodes,
    and a strip libtiff reports as damaged is never loaded strict."""
    need("tiffcp")
    import random

    from xmfax.document.tiff import STRIP_BYTE_COUNTS, STRIP_OFFSETS, parse_tiff
    from xmfax.errors import DocumentError

    page = fax_page(rows=600, seed=11)
    good = tmp_path / "good.tif"
    document.save([page], good, codec=codec)
    data = good.read_bytes()
    ifd = parse_tiff(data)[0]
    off, count = ifd.ints(STRIP_OFFSETS)[0], ifd.ints(STRIP_BYTE_COUNTS)[0]
    refused = 0
    for seed in range(8):
        rng = random.Random(seed)
        bad = bytearray(data)
        at = off + rng.randrange(count - 8)
        for i in range(at, at + rng.randint(1, 6)):
            bad[i] = rng.randrange(256)
        path, raw = tmp_path / f"bad{seed}.tif", tmp_path / f"raw{seed}.tif"
        path.write_bytes(bytes(bad))
        r = run("tiffcp", "-c", "none", path, raw)
        libtiff_complains = r.returncode != 0 or r.stderr.strip() != ""
        try:
            ours = document.load(path)[0]
        except DocumentError as exc:
            refused += 1
            assert "row" in str(exc)
            continue
        assert not libtiff_complains, (seed, r.stderr)
        lib = document.load(raw)[0]
        assert np.array_equal(ours.image, lib.image), seed
    assert refused >= 4                    # random bytes in a code stream are almost always caught
