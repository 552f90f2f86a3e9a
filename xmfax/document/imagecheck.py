"""Is an image file whole? Structural checks made before Pillow decodes JPEG and PNG.

Pillow refuses a file that simply stops (while ``ImageFile.LOAD_TRUNCATED_IMAGES``
stays False, which xmfax never changes), but libjpeg silently paints grey or the last
colour over blocks whose data is missing when the file still ends properly: a
380-byte JPEG whose frame header claims 16000x9000 pixels decodes to a half-black page.
These checks walk the marker segments (JPEG) or chunks (PNG) and refuse a file that
cannot hold the image it declares, so a page is never passed off as decoded whole.
They read headers only; nothing is decoded here.
"""
from __future__ import annotations

import struct

from ..errors import DocumentError

# ITU-T T.81 Table B.1: SOF markers. Huffman: sequential C0 C1, progressive C2, lossless C3.
_SOF_HUFFMAN = {0xC0, 0xC1, 0xC2}
_SOF_OTHER = {0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
_STANDALONE = {0x01, *range(0xD0, 0xD8), _SOI, _EOI}          # no length field (T.81 §B.1.1.3)


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _scan_end(data: bytes, at: int) -> int:
    """Offset of the marker ending the entropy-coded segment that starts at ``at``.

    0xFF 0x00 is a stuffed byte and 0xFF 0xD0-D7 a restart marker (T.81 §B.1.1.5, §B.2.1),
    both part of the segment; any other marker ends it. ``len(data)`` when none does.
    """
    n = len(data)
    while True:
        i = data.find(b"\xff", at)
        if i < 0 or i + 1 >= n:
            return n
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7 or nxt == 0xFF:
            at = i + 1 if nxt == 0xFF else i + 2
            continue
        return i


def check_jpeg(data: bytes, source: str | None) -> None:
    """DocumentError unless ``data`` is a JPEG that ends with EOI and whose scans can hold its pixels.

    Each 8x8 block of a Huffman-coded scan costs at least one bit: its DC difference
    is a Huffman code of 1 to 16 bits (T.81 §F.1.2.1, §G.1.2.1; a refining DC scan
    sends one bit per block, §G.1.2.1.1). AC-only progressive scans can code many
    blocks in one EOB run, so they are not bounded. A scan with fewer bytes than a
    bit per block cannot be whole. Arithmetic-coded, lossless and hierarchical
    JPEGs get the EOI check only.
    """
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != _SOI:
        raise DocumentError("not a JPEG file (no SOI marker)", source=source)
    at = 2
    frame = None            # (sof, width, height, {component id: (h, v)})
    scan_no = 0
    while True:
        while at < n and data[at] == 0xFF and at + 1 < n and data[at + 1] == 0xFF:
            at += 1                                              # fill bytes before a marker
        if at + 2 > n or data[at] != 0xFF:
            raise DocumentError(f"JPEG data ends or breaks at byte {at} before its EOI marker "
                                "(a truncated file)", source=source)
        marker = data[at + 1]
        at += 2
        if marker == _EOI:
            if frame is None:
                raise DocumentError("JPEG has no frame header", source=source)
            return
        if marker in _STANDALONE:
            continue
        if at + 2 > n:
            raise DocumentError("JPEG ends inside a marker segment (a truncated file)", source=source)
        (length,) = struct.unpack_from(">H", data, at)
        if length < 2 or at + length > n:
            raise DocumentError(f"JPEG marker segment at byte {at - 2} runs past the end of the file "
                                "(a truncated file)", source=source)
        body = data[at + 2:at + length]
        at += length
        if marker in _SOF_HUFFMAN or marker in _SOF_OTHER:
            if len(body) < 6:
                raise DocumentError("JPEG frame header is too short", source=source)
            height, width, count = struct.unpack_from(">HHB", body, 1)
            comps = {}
            for k in range(count):
                if 6 + 3 * k + 3 > len(body):
                    raise DocumentError("JPEG frame header is too short", source=source)
                cid, hv = body[6 + 3 * k], body[7 + 3 * k]
                comps[cid] = (max(1, hv >> 4), max(1, hv & 15))
            if frame is None:
                frame = (marker, width, height, comps)
            continue
        if marker != _SOS:
            continue
        scan_no += 1
        end = _scan_end(data, at)
        entropy_bytes = end - at
        if frame is not None and frame[0] in _SOF_HUFFMAN and frame[2] > 0 and body:
            sof, width, height, comps = frame
            ns = body[0]
            ids = [body[1 + 2 * k] for k in range(ns) if 1 + 2 * k < len(body)]
            ss = body[1 + 2 * ns] if 1 + 2 * ns < len(body) else 0
            if sof != 0xC2 or ss == 0:                  # a sequential scan or a progressive DC scan
                hmax = max(h for h, _ in comps.values())
                vmax = max(v for _, v in comps.values())
                blocks = 0
                if len(ids) == 1 and ids[0] in comps:   # non-interleaved (T.81 §A.2.2)
                    h, v = comps[ids[0]]
                    blocks = _ceil(_ceil(width * h, hmax), 8) * _ceil(_ceil(height * v, vmax), 8)
                else:                                   # interleaved: whole MCUs (T.81 §A.2.3)
                    mcus = _ceil(width, 8 * hmax) * _ceil(height, 8 * vmax)
                    blocks = mcus * sum(comps[c][0] * comps[c][1] for c in ids if c in comps)
                if entropy_bytes * 8 < blocks:
                    raise DocumentError(
                        f"JPEG scan {scan_no} has {entropy_bytes} bytes of data but {blocks:,} blocks to code "
                        f"(at least one bit each) for its {width}x{height} pixels: the file is truncated or "
                        "its size is forged", source=source)
        at = end


def check_png(data: bytes, source: str | None) -> None:
    """DocumentError unless ``data``'s chunks all fit in the file and end with IEND (PNG §5.3)."""
    n = len(data)
    at = 8
    seen_idat = False
    while True:
        if at + 8 > n:
            raise DocumentError("PNG data ends before its IEND chunk (a truncated file)", source=source)
        length, kind = struct.unpack_from(">I4s", data, at)
        if at + 12 + length > n:
            raise DocumentError(f"PNG {kind.decode('latin-1', 'replace')} chunk at byte {at} runs past the "
                                "end of the file (a truncated file)", source=source)
        if kind == b"IDAT":
            seen_idat = True
        if kind == b"IEND":
            if not seen_idat:
                raise DocumentError("PNG has no image data (IDAT)", source=source)
            return
        at += 12 + length
