"""Helpers for the T.30 tests: pages and calls on the simulated line."""
from __future__ import annotations

import numpy as np

from xmfax.page import Page, Resolution
from xmfax.t30 import Session, T30Config
from xmfax.t30.pair import Faults, Line


def page(seed: int = 0, rows: int = 300, res: Resolution = Resolution.FINE, width: int = 1728) -> Page:
    """A page of random horizontal strokes (compresses like text, differs per seed)."""
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, width), bool)
    for r in range(0, rows - 3, 6):
        c = int(rng.integers(0, width - 130))
        img[r:r + 3, c:c + int(rng.integers(5, 120))] = True
    img[rows // 2, :] = seed % 2 == 0      # one full black row on even seeds
    return Page(img, res)


def call(tx_cfg: T30Config | None = None, rx_cfg: T30Config | None = None, *, pages=None,
         faults: Faults | None = None, polling: bool = False, until: float = 1200.0):
    """A call between a sender (calling unless polling) and a receiver; returns
    (sender, receiver, line)."""
    pages = pages if pages is not None else [page(i) for i in range(3)]
    tx_cfg = tx_cfg or T30Config(local_id="+1 555 0100")
    rx_cfg = rx_cfg or T30Config(local_id="+1 555 0199")
    if polling:
        tx = Session(tx_cfg, calling=False, pages=pages)
        rx = Session(rx_cfg, calling=True, receive=True)
        line = Line(rx, tx, faults=faults)
    else:
        tx = Session(tx_cfg, calling=True, pages=pages)
        rx = Session(rx_cfg, calling=False, receive=True)
        line = Line(tx, rx, faults=faults)
    line.run(until=until)
    return tx, rx, line


def same_image(a: Page, b: Page) -> bool:
    return a.image.shape == b.image.shape and bool((a.image == b.image).all())
