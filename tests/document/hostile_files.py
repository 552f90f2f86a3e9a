"""Hostile documents, built in memory: each function returns the bytes of one bad file.

Each one reproduces a finding of issue #10 (a page passed off as decoded, a memory or
time bomb inside the old limits, a tag of the wrong type) at its real size where that
is cheap to build, or scaled by its arguments. ``mutate`` makes random damage to a
valid file for the fuzz tests.
"""
from __future__ import annotations

import io
import random
import struct
import zlib

from PIL import Image

# TIFF 6.0 §2 field types used below
BYTE, ASCII, SHORT, LONG, RATIONAL, FLOAT, DOUBLE = 1, 2, 3, 4, 5, 11, 12


def tiff(pages: list[list[tuple]], blobs: bytes = b"", *, big_endian: bool = False) -> bytes:
    """A TIFF of one IFD per entry of ``pages`` (lists of (tag, type, count, value)).

    ``blobs`` is placed right after the 8-byte header (offset 8); values are either an int
    (stored inline, as a LONG/SHORT would be) or bytes (stored after the IFDs; the entry
    points at them). The IFDs are chained in order.
    """
    bo = ">" if big_endian else "<"
    head = (b"MM\0*" if big_endian else b"II*\0")
    at = 8 + len(blobs)
    at += at % 2
    body = bytearray(blobs + b"\0" * ((8 + len(blobs)) % 2))
    sizes = [2 + 12 * len(p) + 4 for p in pages]
    ifd_offsets = []
    o = at
    for size in sizes:
        ifd_offsets.append(o)
        o += size
    extra_at = o
    extra = bytearray()
    ifds = bytearray()
    for n, entries in enumerate(pages):
        ifds += struct.pack(bo + "H", len(entries))
        for tag, typ, count, value in sorted(entries, key=lambda e: e[0]):
            if isinstance(value, bytes):
                if len(value) <= 4:
                    ifds += struct.pack(bo + "HHI", tag, typ, count) + value.ljust(4, b"\0")
                    continue
                ifds += struct.pack(bo + "HHII", tag, typ, count, extra_at + len(extra))
                extra += value + b"\0" * (len(value) % 2)
            elif typ == SHORT and count == 1:
                ifds += struct.pack(bo + "HHIHH", tag, typ, count, value, 0)
            else:
                ifds += struct.pack(bo + "HHII", tag, typ, count, value)
        ifds += struct.pack(bo + "I", ifd_offsets[n + 1] if n + 1 < len(pages) else 0)
    return head + struct.pack(bo + "I", ifd_offsets[0]) + bytes(body) + bytes(ifds) + bytes(extra)


def fax_entries(width: int = 1728, length: int = 100, compression: int = 4, strip_at: int = 8,
                strip_len: int = 16, rows_per_strip: int | None = None) -> list[tuple]:
    return [(256, LONG, 1, width), (257, LONG, 1, length), (258, SHORT, 1, 1), (259, SHORT, 1, compression),
            (262, SHORT, 1, 0), (273, LONG, 1, strip_at), (278, LONG, 1, rows_per_strip or length),
            (279, LONG, 1, strip_len), (282, RATIONAL, 1, struct.pack("<II", 204, 1)),
            (283, RATIONAL, 1, struct.pack("<II", 196, 1)), (296, SHORT, 1, 2)]


def replace_tag(entries: list[tuple], tag: int, typ: int, count: int, value) -> list[tuple]:
    return [e for e in entries if e[0] != tag] + [(tag, typ, count, value)]


# ------------------------------------------------------------------ pages that do not decode whole
def random_strip_tiff(compression: int = 4, nbytes: int = 4000, seed: int = 1, length: int = 200) -> bytes:
    """A G3 (3) or G4 (4) page whose strip is random bytes: decoded, it is garbage or blank."""
    strip = random.Random(seed).randbytes(nbytes)
    return tiff([fax_entries(length=length, compression=compression, strip_len=nbytes)], strip)


def strip_past_end_tiff(strip: bytes, length: int, compression: int = 4, claim: int = 1_000_000) -> bytes:
    """A page whose strip is the end of the file but whose StripByteCounts claims ``claim`` bytes
    (a file cut short, or a lying count)."""
    head = tiff([fax_entries(length=length, compression=compression, strip_len=claim)])
    return tiff([fax_entries(length=length, compression=compression, strip_at=len(head), strip_len=claim)]) + strip


def forged_size_jpeg(width: int = 16000, height: int = 9000) -> bytes:
    """A few-hundred-byte JPEG whose frame header claims ``width`` x ``height`` pixels."""
    buf = io.BytesIO()
    Image.new("L", (16, 16), 0).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def truncated(data: bytes, keep: float = 0.5) -> bytes:
    return data[: max(1, int(len(data) * keep))]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(width: int, height: int, depth: int = 8, colour: int = 0, idat: bytes = b"") -> bytes:
    """A PNG of the declared size whose image data is ``idat`` (compressed; usually far too short)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(idat))
            + png_chunk(b"IEND", b""))


def rgba16_png(width: int = 16384, height: int = 9155) -> bytes:
    """The 3 GB PNG: 16-bit RGBA at the old width and pixel limits (its IDAT is a stub)."""
    return png_header(width, height, depth=16, colour=6, idat=b"\0" * 64)


# ------------------------------------------------------------------ memory and time bombs
def white_mmr_rows(rows: int) -> bytes:
    """MMR of an all-white page: each row is V0 (one 1 bit, T.6 §2.2.3) against a white row, then EOFB."""
    bits = "1" * rows + "000000000001" * 2
    bits += "0" * (-len(bits) % 8)
    return int(bits, 2).to_bytes(len(bits) // 8, "big")


def many_pages_tiff(pages: int = 1000, width: int = 1728, length: int = 20000, compression: int = 4) -> bytes:
    """``pages`` IFDs sharing one small white strip: a 1,000-page bomb of tall or wide pages."""
    strip = white_mmr_rows(length) if compression == 4 else b"\0" * 16
    entries = fax_entries(width=width, length=length, compression=compression, strip_len=len(strip))
    return tiff([entries] * pages, strip)


def overlapping_strips_tiff(strips: int = 60_000, length: int = 20000) -> bytes:
    """A page of ``strips`` strips, every one covering the whole file (each slice used to be copied)."""
    strip = white_mmr_rows(16)
    size_guess = 8 + len(strip) + 2 + 12 * 11 + 4 + 8 * strips + 16
    offsets = struct.pack(f"<{strips}I", *([0] * strips))
    counts = struct.pack(f"<{strips}I", *([size_guess] * strips))
    entries = fax_entries(length=length, compression=4, rows_per_strip=1)
    entries = replace_tag(entries, 273, LONG, strips, offsets)
    entries = replace_tag(entries, 279, LONG, strips, counts)
    return tiff([entries], strip)


def pdf(pages: int, width_pt: float = 595, height_pt: float = 842) -> bytes:
    """A hand-written PDF of ``pages`` empty pages of one size (1,000 tall pages in a few KB)."""
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    kids = " ".join(f"{4 + i} 0 R" for i in range(pages)).encode()
    objs.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages)
    content = b"0 0 m 10 10 l S"
    objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    page = (b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %s %s] /Contents 3 0 R >>"
            % (str(width_pt).encode(), str(height_pt).encode()))
    objs += [page] * pages
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def tall_pdf(pages: int = 1000) -> bytes:
    """A4-wide pages 1.7 m tall: each about 13,400 fax rows, under the row limit; 1,000 of them in a few KB."""
    return pdf(pages, 595, 4800)


def long_line_text(chars: int = 50_000_000) -> bytes:
    return b"x" * chars


# ------------------------------------------------------------------ tags of the wrong type
def ascii_subfile_type_tiff() -> bytes:
    return tiff([replace_tag(fax_entries(strip_len=len(white_mmr_rows(100))), 254, ASCII, 4, b"abc\0")],
                white_mmr_rows(100))


def rational_strip_counts_tiff() -> bytes:
    return tiff([replace_tag(fax_entries(), 279, RATIONAL, 1, struct.pack("<II", 16, 1))], b"\0" * 16)


def nan_resolution_tiff(typ: int = FLOAT, value: float = float("nan")) -> bytes:
    raw = struct.pack("<f", value) if typ == FLOAT else struct.pack("<d", value)
    strip = white_mmr_rows(100)
    return tiff([replace_tag(fax_entries(strip_len=len(strip)), 282, typ, 1, raw)], strip)


# ------------------------------------------------------------------ random damage
def mutate(data: bytes, rng: random.Random, steps: int | None = None) -> bytes:
    """``data`` with 1-8 random bit flips, byte changes, cuts or duplicated runs."""
    blob = bytearray(data)
    for _ in range(steps if steps is not None else rng.randint(1, 8)):
        op = rng.choice(("flip", "byte", "cut", "dup", "word"))
        i = rng.randrange(len(blob))
        if op == "flip":
            blob[i] ^= 1 << rng.randrange(8)
        elif op == "byte":
            blob[i] = rng.randrange(256)
        elif op == "cut":
            del blob[max(i, 2):]
        elif op == "dup":
            blob[i:i] = blob[i:i + rng.randint(1, 64)]
        else:                                   # a 32-bit field set to an extreme
            blob[i:i + 4] = rng.choice((b"\xff\xff\xff\xff", b"\0\0\0\0", b"\xff\xff\xff\x7f", b"\0\0\x80\x7f"))
    return bytes(blob)
