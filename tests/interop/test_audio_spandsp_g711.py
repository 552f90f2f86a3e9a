"""G.711 against spandsp's g711_encode/g711_decode: bit-exact on every input."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from xmfax.audio import g711

sys.path.insert(0, os.path.dirname(__file__))
import spandsp_audio as sa  # noqa: E402

pytestmark = pytest.mark.interop
if sa.load() is None:
    pytest.skip(sa.unavailable_reason(), allow_module_level=True)

LAWS = [("ulaw", sa.G711_ULAW), ("alaw", sa.G711_ALAW)]


@pytest.mark.parametrize("law,code", LAWS)
def test_encode_all_65536_inputs(law, code):
    x = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
    ours = np.frombuffer(g711.encode(x, law), dtype=np.uint8)
    theirs = sa.g711_encode(code, x)
    assert np.array_equal(ours, theirs)


@pytest.mark.parametrize("law,code", LAWS)
def test_decode_all_256_codes(law, code):
    c = np.arange(256, dtype=np.uint8)
    assert np.array_equal(g711.decode(c, law), sa.g711_decode(code, c))


def test_tandem_of_spandsp_coding():
    rng = np.random.default_rng(7)
    x = rng.integers(-32768, 32768, 20000).astype(np.int16)
    u = sa.g711_decode(sa.G711_ULAW, sa.g711_encode(sa.G711_ULAW, x))
    a = sa.g711_decode(sa.G711_ALAW, sa.g711_encode(sa.G711_ALAW, u))
    u2 = sa.g711_decode(sa.G711_ULAW, sa.g711_encode(sa.G711_ULAW, a))
    assert np.array_equal(g711.tandem(x), u2)
