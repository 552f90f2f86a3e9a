"""Bad input: DocumentError naming the file, never a crash, hang or runaway allocation."""
from __future__ import annotations

import shutil
import struct
import subprocess
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xmfax import document
from xmfax.document import Limits
from xmfax.document.tiff import parse_tiff
from xmfax.errors import DocumentError

from docsamples import fax_page, pdf_bytes, text_image, to_bytes


def png_header_only(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk
            + struct.pack(">I", zlib.crc32(chunk)) + b"\0\0\0\0IEND\xaeB`\x82")


def tiff_with(tags: list[tuple[int, int, int, int]], strip: bytes = b"\0" * 16, next_ifd: int = 0) -> bytes:
    """A little-endian TIFF: header, strip at 8, then one IFD of (tag, type, count, value)."""
    ifd_at = 8 + len(strip)
    ifd = struct.pack("<H", len(tags)) + b"".join(struct.pack("<HHII", *t) for t in sorted(tags))
    ifd += struct.pack("<I", next_ifd if next_ifd >= 0 else ifd_at)
    return b"II*\0" + struct.pack("<I", ifd_at) + strip + ifd


def fax_tags(width=1728, length=100, compression=4):
    return [(256, 4, 1, width), (257, 4, 1, length), (258, 3, 1, 1), (259, 3, 1, compression),
            (262, 3, 1, 0), (273, 4, 1, 8), (278, 4, 1, length), (279, 4, 1, 16)]


def test_decompression_bomb_png():
    with pytest.raises(DocumentError, match="limit|too large") as exc:
        document.load(png_header_only(100_000, 100_000))
    assert "<bytes>" in str(exc.value)


def test_absurd_tiff_dimensions():
    with pytest.raises(DocumentError, match="exceeds the limit"):
        document.load(tiff_with(fax_tags(length=1_000_000_000)))
    with pytest.raises(DocumentError, match="rows exceeds"):
        document.load(tiff_with(fax_tags(length=50_000)))
    with pytest.raises(DocumentError, match="width"):
        document.load(tiff_with(fax_tags(width=1_000_000)))
    with pytest.raises(DocumentError, match="empty size"):
        document.load(tiff_with(fax_tags(width=0)))


def test_tiff_ifd_loop_terminates():
    ifds = parse_tiff(tiff_with(fax_tags(), next_ifd=-1))
    assert len(ifds) == 1


def test_tiff_dangling_and_truncated():
    with pytest.raises(DocumentError, match="past the end"):
        document.load(b"II*\0" + struct.pack("<I", 10_000) + b"\0" * 8)
    with pytest.raises(DocumentError, match="strip"):
        document.load(tiff_with([t for t in fax_tags() if t[0] != 273]))


def test_truncated_fax_tiff_keeps_what_decodes(tmp_path):
    page = fax_page(rows=400)
    path = tmp_path / "t.tif"
    document.save([page], path, codec="mh")
    data = path.read_bytes()
    ifd_at = struct.unpack_from("<I", data, 4)[0]
    # cut the strip in half but keep the IFD readable: move the IFD to a copy of the header area
    strip_len = ifd_at - 8
    cut = data[: 8 + strip_len // 2] + data[ifd_at:]
    new_ifd = 8 + strip_len // 2
    cut = cut[:4] + struct.pack("<I", new_ifd) + cut[8:]
    with pytest.raises(DocumentError):                    # for sending: refused, never half a page
        document.load(cut)
    try:
        pages = document.load(cut, tolerant=True)
    except DocumentError:
        return                                           # the moved IFD's value offsets broke: fine
    assert pages[0].rows == 400 and pages[0].info["bad_rows"] > 0 and pages[0].info["damaged_rows"]


def test_too_many_pages():
    pages = [fax_page(rows=16, seed=s) for s in range(6)]
    import io

    buf = io.BytesIO()
    document.save(pages, buf, format="tiff")
    with pytest.raises(DocumentError, match="6 pages exceeds the limit of 5"):
        document.load(buf.getvalue(), limits=Limits(max_pages=5))
    with pytest.raises(DocumentError, match="pages exceeds"):
        document.load(pdf_bytes(3), limits=Limits(max_pages=2))


def test_file_size_limit(tmp_path):
    p = tmp_path / "big.txt"
    p.write_bytes(b"x" * 5000)
    with pytest.raises(DocumentError, match="exceeds the limit"):
        document.load(p, limits=Limits(max_file_bytes=1000))


def test_broken_pdfs():
    with pytest.raises(DocumentError, match="broken PDF"):
        document.load(b"%PDF-1.4\n" + b"\x00garbage" * 50)
    with pytest.raises(DocumentError, match="PDF"):
        document.load(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF")


def test_absurd_pdf_page_size():
    data = pdf_bytes(1, size_pt=(10, 14_000))              # a strip 3.5 mm wide, 5 m long
    with pytest.raises(DocumentError, match="rows exceeds"):
        document.load(data)


@pytest.mark.skipif(shutil.which("gs") is None, reason="ghostscript (gs) not installed: cannot make an encrypted PDF")
def test_encrypted_pdf(tmp_path):
    src = tmp_path / "plain.pdf"
    src.write_bytes(pdf_bytes(1))
    enc = tmp_path / "enc.pdf"
    subprocess.run(["gs", "-q", "-dNOPAUSE", "-dBATCH", "-sDEVICE=pdfwrite", "-sOwnerPassword=owner",
                    "-sUserPassword=secret", f"-sOutputFile={enc}", str(src)], check=True, timeout=60)
    with pytest.raises(DocumentError, match="encrypted PDF") as exc:
        document.load(enc)
    assert str(enc) in str(exc.value)
    assert len(document.load(enc, password="secret")) == 1


# ------------------------------------------------------------------ fuzzing
def _seeds() -> dict[str, bytes]:
    import io

    out = {}
    for codec in ("mh", "mr", "mmr"):
        buf = io.BytesIO()
        document.save([fax_page(rows=60, seed=3)], buf, format="tiff", codec=codec)
        out[codec] = buf.getvalue()
    out["png"] = to_bytes(text_image(size=(200, 150)), "PNG")
    out["jpeg"] = to_bytes(text_image(size=(200, 150)), "JPEG")
    buf = io.BytesIO()
    document.save([fax_page(rows=60, seed=4)], buf, format="pdf")
    out["pdf"] = buf.getvalue()
    return out


SEEDS = _seeds()
SMALL = Limits(max_pages=20, max_page_rows=5000, max_source_pixels=20_000_000)


def _load_or_document_error(data: bytes) -> None:
    try:
        pages = document.load(data, limits=SMALL)
    except DocumentError:
        return
    for p in pages:
        assert p.image.dtype == np.bool_ and p.rows <= SMALL.max_page_rows


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kind=st.sampled_from(sorted(SEEDS)), data=st.data())
def test_mutated_documents(kind, data):
    blob = bytearray(SEEDS[kind])
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "byte", "cut", "dup"]))
        i = data.draw(st.integers(0, len(blob) - 1))
        if op == "flip":
            blob[i] ^= 1 << data.draw(st.integers(0, 7))
        elif op == "byte":
            blob[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del blob[i:]
            if len(blob) < 2:
                blob += b"\0\0"
        else:
            blob[i:i] = blob[i:i + data.draw(st.integers(1, 64))]
    _load_or_document_error(bytes(blob))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_tiff_bytes(tail):
    for head in (b"II*\0", b"MM\0*"):
        try:
            parse_tiff(head + tail)
        except DocumentError:
            pass
        _load_or_document_error(head + tail)


@settings(max_examples=100, deadline=None)
@given(tags=st.lists(st.tuples(st.integers(254, 330), st.integers(0, 14), st.integers(0, 2**32 - 1),
                               st.integers(0, 2**32 - 1)), max_size=20))
def test_random_ifd_entries(tags):
    _load_or_document_error(tiff_with(fax_tags() + tags))
