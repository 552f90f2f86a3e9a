"""Test pages for the codec tests: the ITU T.24 pages (when present) and generated ones.

Every page is a numpy bool array (rows, width), True = black.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

ITU_DIR = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "itu"
if not ITU_DIR.is_dir():
    SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the checkout
    ITU_DIR = (SHARED / "corpus/itu")


def itu_page(n: int) -> np.ndarray:
    """ITU T.24 test page n (1..8), 1728 x 2376; skips the test if the corpus is absent."""
    path = ITU_DIR / f"itu{n}.pbm"
    if not path.exists():
        pytest.skip(f"ITU T.24 page {path} not present (shared corpus absent)")
    from PIL import Image
    with Image.open(path) as im:
        return ~np.asarray(im.convert("1"), dtype=bool)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def dense_text(rows: int = 300, width: int = 1728, seed: int = 1) -> np.ndarray:
    """Lines of glyph-like blobs: many short runs, like a typed page."""
    rng = _rng(seed)
    img = np.zeros((rows, width), dtype=bool)
    for top in range(8, rows - 20, 22):
        x = 40
        while x < width - 40:
            w = int(rng.integers(4, 14))
            glyph = rng.random((16, w)) < 0.45
            img[top:top + 16, x:x + w] = glyph
            x += w + int(rng.integers(2, 8)) + (20 if rng.random() < 0.15 else 0)
    return img


def sparse_letter(rows: int = 400, width: int = 1728) -> np.ndarray:
    """A few text lines and a box on a mostly white page."""
    img = np.zeros((rows, width), dtype=bool)
    img[50:54, 100:1600] = True
    img[50:350, 100:104] = True
    img[346:350, 100:1600] = True
    img[50:350, 1596:1600] = True
    for top in (80, 120, 160):
        for x in range(150, 900, 24):
            img[top:top + 12, x:x + 10] = True
    return img


def dithered_photo(rows: int = 200, width: int = 1728, seed: int = 2) -> np.ndarray:
    """Random dither of a gradient: the worst case (runs of 1-3 pixels everywhere)."""
    grad = np.linspace(0.1, 0.9, width)[None, :] * np.ones((rows, 1))
    return _rng(seed).random((rows, width)) < grad


def all_white(rows: int = 50, width: int = 1728) -> np.ndarray:
    return np.zeros((rows, width), dtype=bool)


def all_black(rows: int = 50, width: int = 1728) -> np.ndarray:
    return np.ones((rows, width), dtype=bool)


def edges(rows: int = 40, width: int = 1728) -> np.ndarray:
    """Runs touching the left and right edges, rows starting black, long runs > 2560 if wide."""
    img = np.zeros((rows, width), dtype=bool)
    img[::2, :3] = True
    img[1::3, -5:] = True
    img[::5, :] = True
    img[3::7, 1:-1] = True
    return img


def alternating(rows: int = 20, width: int = 1728) -> np.ndarray:
    """Checkerboard of single pixels: every run has length 1."""
    y, x = np.indices((rows, width))
    return (x + y) % 2 == 1


GENERATED = {
    "dense_text": dense_text,
    "sparse_letter": sparse_letter,
    "dithered_photo": dithered_photo,
    "all_white": all_white,
    "all_black": all_black,
    "edges": edges,
    "alternating": alternating,
}


def odd_width_pages() -> dict[str, np.ndarray]:
    """Widths that are not multiples of 8, width 1, and very wide rows (runs > 2560)."""
    rng = _rng(3)
    return {
        "w1": rng.random((30, 1)) < 0.5,
        "w1_white": np.zeros((5, 1), dtype=bool),
        "w7": rng.random((30, 7)) < 0.5,
        "w13": rng.random((30, 13)) < 0.3,
        "w1729": dense_text(60, 1729, seed=4),
        "w2047": edges(30, 2047),
        "w5000_edges": edges(20, 5000),
        "w16384": edges(6, 16384),
    }
