"""``xmfax convert`` and ``xmfax info`` as subprocesses."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
from PIL import Image

from xmfax import document
from xmfax.page import Resolution

from docsamples import fax_page, pdf_bytes, photo_image, text_image


def xmfax(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "xmfax", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_convert_several_inputs_to_one_tiff_with_cover_and_header(tmp_path):
    (tmp_path / "a.pdf").write_bytes(pdf_bytes(2))
    text_image().save(tmp_path / "b.png")
    photo_image().save(tmp_path / "c.jpg")
    (tmp_path / "d.txt").write_text("hello\n")
    out = tmp_path / "fax.tif"
    r = xmfax("convert", tmp_path / "a.pdf", tmp_path / "b.png", tmp_path / "c.jpg", tmp_path / "d.txt",
              "-o", out, "--resolution", "standard", "--codec", "mmr", "--cover", "--to", "Bob",
              "--from", "Alice", "--header", "--ident", "+1 555 0100")
    assert r.returncode == 0, r.stderr
    assert "6 pages" in r.stdout
    pages = document.load(out)
    assert len(pages) == 6 and all(p.resolution is Resolution.STANDARD and p.width == 1728 for p in pages)
    assert pages[0].image[:20].any()                       # header on the cover
    info = json.loads(xmfax("info", out, "--json").stdout)
    assert len(info["pages"]) == 6 and {p["compression"] for p in info["pages"]} == {"g4"}
    assert all(p["fax_resolution"] == "standard" for p in info["pages"])


def test_convert_to_pdf_and_png(tmp_path):
    src = tmp_path / "in.tif"
    pages = [fax_page(rows=200, seed=s) for s in (1, 2)]
    document.save(pages, src)
    r = xmfax("convert", src, "-o", tmp_path / "out.pdf")
    assert r.returncode == 0, r.stderr
    back = document.load(tmp_path / "out.pdf")
    assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, back))
    r = xmfax("convert", src, "-o", tmp_path / "prev.png")
    assert r.returncode == 0 and (tmp_path / "prev-1.png").exists() and (tmp_path / "prev-2.png").exists()
    img = Image.open(tmp_path / "prev-2.png")
    assert np.array_equal(~np.asarray(img.convert("1"), dtype=bool), pages[1].image)


def test_convert_paper_and_cover_template(tmp_path):
    text_image().save(tmp_path / "b.png")
    (tmp_path / "cover.txt").write_text("# URGENT\nFor {to}\n")
    r = xmfax("convert", tmp_path / "b.png", "-o", tmp_path / "o.tif", "--paper", "b4",
              "--cover-template", tmp_path / "cover.txt", "--to", "Carol")
    assert r.returncode == 0, r.stderr
    pages = document.load(tmp_path / "o.tif")
    assert [p.width for p in pages] == [2048, 2048]


def test_info_text_output(tmp_path):
    document.save([fax_page(rows=100, resolution=Resolution.STANDARD)], tmp_path / "s.tif", codec="mr")
    r = xmfax("info", tmp_path / "s.tif")
    assert r.returncode == 0
    assert "1 page" in r.stdout and "1728x100" in r.stdout and "204x98 dpi (standard)" in r.stdout
    assert "g3" in r.stdout and "fill order 1" in r.stdout
    (tmp_path / "p.pdf").write_bytes(pdf_bytes(2))
    r = xmfax("info", tmp_path / "p.pdf", "--json")
    info = json.loads(r.stdout)
    assert info["format"] == "pdf" and len(info["pages"]) == 2 and info["pages"][0]["width_mm"] == 209.9


def test_bad_input_exits_3_with_one_line(tmp_path):
    bad = tmp_path / "broken.pdf"
    bad.write_bytes(b"%PDF-1.4\n" + b"\x00junk" * 100)
    for args in (("convert", bad, "-o", tmp_path / "x.tif"), ("info", bad),
                 ("convert", tmp_path / "missing.png", "-o", tmp_path / "x.tif")):
        r = xmfax(*args)
        assert r.returncode == 3, (args, r.stderr)
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
        assert str(args[1]) in r.stderr
    assert not (tmp_path / "x.tif").exists()


def test_usage_errors_exit_2(tmp_path):
    assert xmfax("convert", "x.png").returncode == 2                        # no -o
    assert xmfax("convert", "x.png", "-o", "y.tif", "--paper", "a5").returncode == 2
    r = xmfax("convert", "x.png", "-o", tmp_path / "y.doc")
    assert r.returncode == 2 and "must end in" in r.stderr and "Traceback" not in r.stderr
