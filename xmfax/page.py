"""A fax page: a bilevel bitmap and the geometry T.30 needs to send it.

This is the unit shared by the document layer (files in and out), the T.30
engine (pages sent and received) and the API.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class Resolution(enum.Enum):
    """Fax resolutions (T.30 Table 2 bits 15, 41-45; T.4 §2.2).

    value = (name, x dpi, y dpi, metric). Metric resolutions are in pels/mm
    and lines/mm on the wire; the dpi given here are the TIFF equivalents
    fax software writes (204 x 98 for 8 x 3.85).
    """

    STANDARD = ("standard", 204, 98, True)      # R8 x 3.85 lines/mm
    FINE = ("fine", 204, 196, True)             # R8 x 7.7 lines/mm
    SUPERFINE = ("superfine", 204, 391, True)   # R8 x 15.4 lines/mm
    ULTRAFINE = ("ultrafine", 408, 391, True)   # R16 x 15.4 lines/mm
    R200 = ("200x200", 200, 200, False)
    R300 = ("300x300", 300, 300, False)
    R400 = ("400x400", 400, 400, False)

    def __init__(self, label: str, x_dpi: int, y_dpi: int, metric: bool):
        self.label = label
        self.x_dpi = x_dpi
        self.y_dpi = y_dpi
        self.metric = metric

    @classmethod
    def from_name(cls, name: str) -> "Resolution":
        for r in cls:
            if name.lower() in (r.label, r.name.lower()):
                return r
        raise ValueError(f"unknown resolution {name!r}; one of: " + ", ".join(r.label for r in cls))

    @property
    def widths(self) -> dict[str, int]:
        """Scan-line widths in pixels for A4, B4 and A3 at this resolution (T.4 §2.2)."""
        if self.x_dpi in (204, 200):
            return {"a4": 1728, "b4": 2048, "a3": 2432}
        if self.x_dpi in (408, 400):
            return {"a4": 3456, "b4": 4096, "a3": 4864}
        return {"a4": 2592, "b4": 3072, "a3": 3648}  # 300 dpi


@dataclass(eq=False)
class Page:
    """One fax page. ``image`` is a numpy bool array (rows, width), True = black."""

    image: np.ndarray
    resolution: Resolution = Resolution.FINE
    source: str | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.resolution, str):        # Page(img, resolution="fine")
            self.resolution = Resolution.from_name(self.resolution)
        elif not isinstance(self.resolution, Resolution):
            raise TypeError(f"a page resolution is a Resolution or its name, not {self.resolution!r}")
        img = np.asarray(self.image)
        if img.ndim != 2:
            raise ValueError(f"a page image is 2-D (rows, width), not shape {img.shape}")
        if img.dtype != np.bool_:
            img = img.astype(bool)
        self.image = img

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def rows(self) -> int:
        return int(self.image.shape[0])

    def __repr__(self) -> str:
        return f"Page({self.width}x{self.rows}, {self.resolution.label}, source={self.source!r})"
