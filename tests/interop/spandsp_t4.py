"""A small ctypes wrapper of spandsp 0.0.6's T.4/T.6 coder (t4_tx / t4_rx), for tests.

spandsp reads and writes pages as TIFF files; its code streams are LSB first (the
order bits go on the line). Its decoder outputs a row only when the following EOL
arrives. Handles are opaque pointers; every ``*_init(NULL, ...)`` allocates and
``*_free`` releases.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import struct
from pathlib import Path

import numpy as np

ENCODINGS = {"mh": 1, "mr": 2, "mmr": 3}     # T4_COMPRESSION_ITU_T4_1D / _2D / T6


class T4Stats(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int) for name in (
        "pages_transferred", "pages_in_file", "width", "length", "bad_rows",
        "longest_bad_row_run", "x_resolution", "y_resolution", "encoding", "line_image_size")]


ROW_WRITE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.POINTER(ctypes.c_uint8),
                             ctypes.c_size_t)

_lib = None
_reason = None


def load():
    """The loaded library, or None; ``unavailable_reason()`` says why not."""
    global _lib, _reason
    if _lib is None and _reason is None:
        try:
            lib = ctypes.CDLL("libspandsp.so.2")
        except OSError as exc:
            _reason = f"libspandsp.so.2 not loadable ({exc}); apt-get install libspandsp2"
            return None
        vp = ctypes.c_void_p
        lib.t4_tx_init.restype = vp
        lib.t4_tx_init.argtypes = [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        for name in ("t4_tx_start_page", "t4_tx_end_page", "t4_tx_free"):
            getattr(lib, name).argtypes = [vp]
        lib.t4_tx_set_tx_encoding.argtypes = [vp, ctypes.c_int]
        lib.t4_tx_set_min_bits_per_row.argtypes = [vp, ctypes.c_int]
        lib.t4_tx_get_chunk.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
        lib.t4_rx_init.restype = vp
        lib.t4_rx_init.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
        for name in ("t4_rx_start_page", "t4_rx_end_page", "t4_rx_free"):
            getattr(lib, name).argtypes = [vp]
        lib.t4_rx_set_rx_encoding.argtypes = [vp, ctypes.c_int]
        lib.t4_rx_set_image_width.argtypes = [vp, ctypes.c_int]
        lib.t4_rx_set_row_write_handler.argtypes = [vp, ROW_WRITE, vp]
        lib.t4_rx_put_chunk.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
        lib.t4_rx_get_transfer_statistics.argtypes = [vp, ctypes.POINTER(T4Stats)]
        _lib = lib
    return _lib


def unavailable_reason() -> str | None:
    load()
    return _reason


def write_plain_tiff(path: Path, img: np.ndarray, yres: int = 196) -> None:
    """An uncompressed one-strip TIFF, PhotometricInterpretation 0 (1 = black), 204 x yres dpi."""
    rows, width = img.shape
    strip = np.packbits(img.astype(bool), axis=1).tobytes()
    entries = [(256, 4, width), (257, 4, rows), (258, 3, 1), (259, 3, 1), (262, 3, 0),
               (266, 3, 1), (273, 4, None), (277, 3, 1), (278, 4, rows), (279, 4, len(strip)),
               (282, 5, (204, 1)), (283, 5, (yres, 1)), (296, 3, 2)]
    extra_at = 8 + 2 + 12 * len(entries) + 4
    body, extra = struct.pack("<H", len(entries)), b""
    for tag, typ, value in entries:
        if typ == 5:
            body += struct.pack("<HHII", tag, typ, 1, extra_at + len(extra))
            extra += struct.pack("<II", *value)
        elif tag == 273:
            body += struct.pack("<HHII", tag, typ, 1, extra_at + 16)
        elif typ == 3:
            body += struct.pack("<HHIHH", tag, typ, 1, value, 0)
        else:
            body += struct.pack("<HHII", tag, typ, 1, value)
    body += struct.pack("<I", 0)
    path.write_bytes(b"II*\x00" + struct.pack("<I", 8) + body + extra + strip)


def encode(img: np.ndarray, codec: str, workdir: Path, yres: int = 196) -> bytes:
    """spandsp's code stream (LSB first, as on the line) for one page."""
    lib = load()
    path = workdir / "spandsp_tx.tif"
    write_plain_tiff(path, img, yres)
    s = lib.t4_tx_init(None, str(path).encode(), -1, -1)
    if not s:
        raise RuntimeError("t4_tx_init failed")
    try:
        lib.t4_tx_set_tx_encoding(s, ENCODINGS[codec])
        lib.t4_tx_set_min_bits_per_row(s, 0)
        if lib.t4_tx_start_page(s):
            raise RuntimeError("t4_tx_start_page failed")
        out = bytearray()
        buf = ctypes.create_string_buffer(4096)
        while True:
            n = lib.t4_tx_get_chunk(s, buf, len(buf))
            if n <= 0:
                break
            out += buf.raw[:n]
        lib.t4_tx_end_page(s)
    finally:
        lib.t4_tx_free(s)
    return bytes(out)


def decode(data: bytes, width: int, codec: str, workdir: Path) -> tuple[np.ndarray, T4Stats]:
    """Rows spandsp decodes from an LSB-first stream, and its statistics."""
    lib = load()
    rows: list[np.ndarray] = []
    stride = (width + 7) // 8

    def on_row(_user, buf, length):
        if not buf or not length:        # called with NULL at the end of the page
            return 0
        rows.append(np.ctypeslib.as_array(buf, shape=(length,)).copy())
        return 0

    handler = ROW_WRITE(on_row)          # kept alive until free
    path = workdir / "spandsp_rx.tif"
    s = lib.t4_rx_init(None, str(path).encode(), ENCODINGS[codec])
    if not s:
        raise RuntimeError("t4_rx_init failed")
    stats = T4Stats()
    try:
        lib.t4_rx_set_rx_encoding(s, ENCODINGS[codec])
        lib.t4_rx_set_image_width(s, width)
        lib.t4_rx_set_row_write_handler(s, handler, None)
        lib.t4_rx_start_page(s)
        for i in range(0, len(data), 1024):
            if lib.t4_rx_put_chunk(s, data[i:i + 1024], len(data[i:i + 1024])):
                break
        lib.t4_rx_end_page(s)
        lib.t4_rx_get_transfer_statistics(s, ctypes.byref(stats))
    finally:
        lib.t4_rx_free(s)
    rows = [r for r in rows if len(r) == stride]
    if not rows:
        return np.zeros((0, width), dtype=bool), stats
    packed = np.vstack(rows)
    return np.unpackbits(packed, axis=1)[:, :width].astype(bool), stats
