"""Documents built in the tests: text scans, photos, PDFs, fax pages; and where the shared
corpora are. (A module of its own, not conftest.py: ``from conftest import`` finds whichever
conftest pytest loaded last, tests/server's for one.)"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xmfax.page import Page, Resolution

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[3] / "shared")  # ../shared beside the checkout
ETSI = (SHARED / "conformance/pages")
ITU = (SHARED / "corpus/itu")
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def text_image(size=(1275, 1650), text="The quick brown fox 0123456789", mode="L") -> Image.Image:
    """A page of dark text on white, like a 150 dpi Letter scan."""
    img = Image.new(mode, size, 255 if mode in ("L", "1") else "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 28) if os.path.exists(FONT) else ImageFont.load_default()
    for i in range(0, size[1] - 80, 60):
        draw.text((60, 40 + i), f"{i // 60:03d} {text}", fill=0 if mode in ("L", "1") else (20, 20, 90), font=font)
    return img


def photo_image(size=(800, 600)) -> Image.Image:
    """Continuous tone: smooth gradients and soft circles."""
    y, x = np.mgrid[0:size[1], 0:size[0]]
    v = 128 + 90 * np.sin(x / 37.0) * np.cos(y / 29.0) + 30 * np.sin((x + y) / 11.0)
    rgb = np.stack([v, np.roll(v, 40, 1), 255 - v], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def fax_page(rows=400, width=1728, seed=1, resolution=Resolution.FINE) -> Page:
    """A synthetic fax page: text-like blobs, lines and noise, deterministic."""
    rng = np.random.default_rng(seed)
    img = np.zeros((rows, width), dtype=bool)
    for _ in range(rows // 4):
        r, c = rng.integers(0, rows - 8), rng.integers(0, width - 60)
        img[r:r + rng.integers(1, 8), c:c + rng.integers(1, 60)] = True
    img[::97] = True
    img[:, 5] = True
    img[rows // 2, :] = rng.random(width) < 0.5
    return Page(img, resolution, "synthetic")


def to_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def pdf_bytes(pages: int = 1, size_pt=(595, 842)) -> bytes:
    """A PDF with real text objects, written with pypdfium2."""
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    pdf = pdfium.PdfDocument.new()
    for n in range(pages):
        page = pdf.new_page(*size_pt)
        font = raw.FPDFText_LoadStandardFont(pdf, b"Helvetica")
        for i in range(20):
            obj = raw.FPDFPageObj_NewTextObj(pdf, b"Helvetica", 14.0)
            text = f"Page {n + 1} line {i + 1}: fax documents in PDF \0"
            buf = (raw.c_ushort * len(text))(*[ord(c) for c in text])
            raw.FPDFText_SetText(obj, buf)
            raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, 50, size_pt[1] - 60 - 30 * i)
            raw.FPDFPage_InsertObject(page, obj)
        raw.FPDFPage_GenerateContent(page)
        page.close()
        del font
    buf = io.BytesIO()
    pdf.save(buf)
    pdf.close()
    return buf.getvalue()
