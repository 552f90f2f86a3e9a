"""spandsp (the field's reference fax library) opens xmfax's TIFF Class F files and sends their pixels."""
from __future__ import annotations

import ctypes
import ctypes.util
import sys
from pathlib import Path

import numpy as np
import pytest

from xmfax import codecs, document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "document"))
from docsamples import fax_page  # noqa: E402

pytestmark = pytest.mark.interop


@pytest.fixture(scope="module")
def spandsp():
    try:
        lib = ctypes.CDLL("libspandsp.so.2")
    except OSError as exc:
        pytest.skip(f"libspandsp.so.2 not loadable ({exc}); apt-get install libspandsp2")
    vp = ctypes.c_void_p
    lib.t4_tx_init.restype = vp
    lib.t4_tx_init.argtypes = [vp, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    for name in ("t4_tx_get_pages_in_file", "t4_tx_start_page", "t4_tx_end_page", "t4_tx_free",
                 "t4_tx_get_image_width"):
        getattr(lib, name).argtypes = [vp]
    lib.t4_tx_set_tx_encoding.argtypes = [vp, ctypes.c_int]
    lib.t4_tx_set_min_bits_per_row.argtypes = [vp, ctypes.c_int]
    lib.t4_tx_get_chunk.argtypes = [vp, ctypes.c_char_p, ctypes.c_int]
    return lib


@pytest.mark.parametrize("codec", ["mh", "mr", "mmr"])
def test_spandsp_sends_the_pixels_of_an_xmfax_tiff(tmp_path, spandsp, codec):
    pages = [fax_page(rows=300, seed=1), fax_page(rows=300, seed=2)]
    path = tmp_path / f"doc_{codec}.tif"
    document.save(pages, path, codec=codec)
    s = spandsp.t4_tx_init(None, str(path).encode(), -1, -1)
    assert s, "spandsp could not open the TIFF"
    try:
        assert spandsp.t4_tx_get_pages_in_file(s) == 2
        for page in pages:
            spandsp.t4_tx_set_tx_encoding(s, 3)                # T.6: spandsp re-encodes what libtiff decoded
            spandsp.t4_tx_set_min_bits_per_row(s, 0)
            assert spandsp.t4_tx_start_page(s) == 0
            assert spandsp.t4_tx_get_image_width(s) == 1728
            buf = ctypes.create_string_buffer(4096)
            out = bytearray()
            while True:
                n = spandsp.t4_tx_get_chunk(s, buf, len(buf))
                out += buf.raw[:n]
                if n < len(buf):
                    break
            spandsp.t4_tx_end_page(s)
            res = codecs.decode(bytes(out), width=1728, codec="mmr", bit_order="lsb")   # line order
            assert np.array_equal(np.asarray(res.image, dtype=bool), page.image)
    finally:
        spandsp.t4_tx_free(s)
