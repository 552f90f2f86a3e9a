"""Issue #10, findings 3 and 4: tags of the wrong type, NaN, and the CLI on bad input.

Every TIFF tag goes through one typed accessor (DocumentError naming tag, type and file);
``xmfax info``/``convert`` on bad input exit 3 with one line on stderr, never a traceback,
and ``info --json`` never prints anything that is not JSON.
"""
from __future__ import annotations

import io
import json
import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hostile_files as H
from docsamples import fax_page
from xmfax import document
from xmfax.cli import main
from xmfax.cli.info import json_safe
from xmfax.document import Limits
from xmfax.errors import DocumentError


def cli(capsys, *args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def assert_bad_input(status: int, out: str, err: str, name: str | None = None) -> None:
    assert status == 3, (status, out, err)
    assert err.count("\n") == 1 and "Traceback" not in err, err
    if name:
        assert name in err


@pytest.mark.parametrize("make, tag, typ", [
    (H.ascii_subfile_type_tiff, "NewSubfileType", "ASCII"),
    (H.rational_strip_counts_tiff, "StripByteCounts", "RATIONAL"),
    (H.nan_resolution_tiff, "XResolution", "FLOAT"),
    (lambda: H.nan_resolution_tiff(H.DOUBLE, float("inf")), "XResolution", "DOUBLE"),
    (lambda: H.nan_resolution_tiff(H.DOUBLE, float("-inf")), "XResolution", "DOUBLE"),
])
def test_wrong_tag_types_name_tag_type_and_file(tmp_path, capsys, make, tag, typ):
    path = tmp_path / "bad.tif"
    path.write_bytes(make())
    with pytest.raises(DocumentError, match=f"{tag} .* is {typ}") as exc:
        document.load(path)
    assert str(path) in str(exc.value)
    out = tmp_path / "out.pdf"
    assert_bad_input(*cli(capsys, "convert", path, "-o", out), name=str(path))
    assert not out.exists()
    if tag == "XResolution":                          # info reads the resolution too
        status, stdout, err = cli(capsys, "info", path, "--json")
        assert_bad_input(status, stdout, err, name=str(path))
        assert "NaN" not in stdout and "Infinity" not in stdout


def test_typed_accessor():
    from xmfax.document.tiff import IMAGE_WIDTH, STRIP_OFFSETS, X_RESOLUTION, parse_tiff

    ifd = parse_tiff(H.many_pages_tiff(1, length=40))[0]
    assert ifd.int(IMAGE_WIDTH) == 1728 and ifd.number(X_RESOLUTION) == 204.0 and ifd.int(999, 7) == 7
    assert isinstance(ifd.ints(STRIP_OFFSETS), tuple)
    with pytest.raises(DocumentError, match="ImageWidth .* is LONG: text expected"):
        ifd.text(IMAGE_WIDTH)
    with pytest.raises(DocumentError, match="XResolution .* is RATIONAL: an integer expected"):
        ifd.int(X_RESOLUTION)
    neg = H.tiff([H.replace_tag(H.fax_entries(), 256, 9, 1, struct.pack("<i", -5))], b"\0" * 16)
    with pytest.raises(DocumentError, match="ImageWidth .* SLONG: a negative value"):
        document.load(neg)


def test_json_safe():
    doc = {"a": float("nan"), "b": [1.5, float("inf"), {"c": -math.inf}], "d": b"x", "e": (1, None)}
    text = json.dumps(json_safe(doc), allow_nan=False)
    assert json.loads(text) == {"a": None, "b": [1.5, None, {"c": None}], "d": "b'x'", "e": [1, None]}


def test_info_on_empty_file(tmp_path, capsys):
    empty = tmp_path / "empty.pdf"
    empty.write_bytes(b"")
    assert_bad_input(*cli(capsys, "info", empty), name=str(empty))
    assert_bad_input(*cli(capsys, "info", empty, "--json"))
    with pytest.raises(DocumentError, match="empty file"):
        document.describe(io.BytesIO(b""))


def test_file_objects_are_named_never_by_repr(tmp_path):
    path = tmp_path / "junk.bin"
    path.write_bytes(b"\x89PNG" + b"\0" * 40)
    for source, name in ((path, str(path)), (open(path, "rb"), str(path)),
                         (io.BytesIO(path.read_bytes()), "<file>"), (path.read_bytes(), "<bytes>")):
        for call in (document.load, document.describe):
            with pytest.raises(DocumentError) as exc:
                call(source)
            assert str(exc.value).startswith(name + ":") and "object at 0x" not in str(exc.value)
            if hasattr(source, "seek"):
                source.seek(0)


def test_convert_tolerant(tmp_path, capsys):
    src = io.BytesIO()
    document.save([fax_page(rows=300)], src, format="tiff", codec="mmr")
    data = bytearray(src.getvalue())
    data[200:230] = b"\x00" * 30                           # inside the strip, which starts at byte 8
    bad = tmp_path / "rx.tif"
    bad.write_bytes(bytes(data))
    out = tmp_path / "out.tif"
    status, stdout, err = cli(capsys, "convert", bad, "-o", out)
    assert_bad_input(status, stdout, err, name=str(bad))
    assert "--tolerant" in err and not out.exists()
    status, stdout, err = cli(capsys, "convert", bad, "-o", out, "--tolerant")
    assert status == 0 and out.exists()
    assert "warning" in err and "damaged" in err and str(bad) in err


def test_password_options_exist(capsys):
    for command in ("convert", "info"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "--password" in capsys.readouterr().out


# ------------------------------------------------------------------ random tags at the typed accessor
USED_TAGS = [254, 256, 257, 258, 259, 262, 266, 273, 274, 277, 278, 279, 282, 283, 292, 293, 296, 297,
             305, 306, 322, 324, 326, 327]
SMALL = Limits(max_pages=20, max_page_rows=5000, max_source_pixels=20_000_000)


@settings(max_examples=150, deadline=None)
@given(tags=st.lists(st.tuples(st.sampled_from(USED_TAGS), st.integers(1, 13), st.integers(1, 4),
                               st.binary(min_size=4, max_size=4)), min_size=1, max_size=6),
       tolerant=st.booleans())
def test_random_types_for_used_tags(tags, tolerant):
    """Any type, count and raw value for the tags xmfax reads: a page or a DocumentError."""
    entries = H.fax_entries(strip_len=len(H.white_mmr_rows(100)))
    for tag, typ, count, raw in tags:
        size = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}[typ]
        value = raw if size * count <= 4 else (raw * (size * count))[: size * count]
        entries = H.replace_tag(entries, tag, typ, count, value)
    data = H.tiff([entries], H.white_mmr_rows(100))
    for call in (lambda: document.load(data, limits=SMALL, tolerant=tolerant), lambda: document.describe(data)):
        try:
            call()
        except DocumentError:
            pass
