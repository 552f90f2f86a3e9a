"""PDF in (rasterised with pypdfium2) and out (one CCITT G4 image per page, written here).

Out: each page is a PDF image XObject whose stream is xmfax's own T.6 code stream
(/Filter /CCITTFaxDecode, /K -1; ISO 32000-1 §7.4.6, Table 11), drawn to fill a
MediaBox of the page's physical size (width / x dpi by rows / y dpi inches), so a
standard-resolution page has the right proportions although its pixels are not square.
"""
from __future__ import annotations

import ctypes
import math
import datetime as _dt
import io
import os
from typing import BinaryIO, Iterator

import numpy as np

from .. import __version__
from ..errors import DocumentError
from ..page import Page, Resolution
from .limits import Budget, Limits
from .raster import bilevel, grey_histogram, is_photo, otsu_threshold, paper_for_width, scan_width


def _pdf_string(text: str) -> bytes:
    raw = text.encode("latin-1", "replace")
    return b"(" + raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _num(x: float) -> bytes:
    return (f"{x:.4f}".rstrip("0").rstrip(".")).encode()


def write_pdf(pages: list[Page], target: str | os.PathLike | BinaryIO, *, when: _dt.datetime | None = None,
              title: str | None = None) -> None:
    """Write ``pages`` as a PDF, each page one G4 image at its physical size."""
    from .tiffwriter import encode_page

    if not pages:
        raise DocumentError("no pages to write", source=str(target) if isinstance(target, (str, os.PathLike)) else None)
    out = io.BytesIO()
    offsets: dict[int, int] = {}

    def obj(num: int, body: bytes, stream: bytes | None = None) -> None:
        offsets[num] = out.tell()
        out.write(b"%d 0 obj\n" % num + body)
        if stream is not None:
            out.write(b"\nstream\n" + stream + b"\nendstream")
        out.write(b"\nendobj\n")

    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    n = len(pages)
    kids = [3 + 3 * i for i in range(n)]
    obj(1, b"<< /Type /Catalog /Pages 2 0 R >>")
    obj(2, b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % n)
    for i, page in enumerate(pages):
        page_no, content_no, image_no = kids[i], kids[i] + 1, kids[i] + 2
        w_pt = page.width / page.resolution.x_dpi * 72
        h_pt = page.rows / page.resolution.y_dpi * 72
        obj(page_no, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 " + _num(w_pt) + b" " + _num(h_pt)
            + b"] /Resources << /XObject << /Im0 %d 0 R >> /ProcSet [/PDF /ImageB] >> /Contents %d 0 R >>"
            % (image_no, content_no))
        content = b"q " + _num(w_pt) + b" 0 0 " + _num(h_pt) + b" 0 0 cm /Im0 Do Q"
        obj(content_no, b"<< /Length %d >>" % len(content), content)
        data = encode_page(page.image, "mmr", 0)
        # BlackIs1 false (the default): a 1 bit is black in the code, 0 after decoding = black in DeviceGray
        obj(image_no, b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
            b"/BitsPerComponent 1 /Filter /CCITTFaxDecode /DecodeParms << /K -1 /Columns %d /Rows %d "
            b"/BlackIs1 false >> /Length %d >>" % (page.width, page.rows, page.width, page.rows, len(data)), data)
    info_no = 3 + 3 * n
    info = b"<< /Producer " + _pdf_string(f"xmfax {__version__}")
    if title:
        info += b" /Title " + _pdf_string(title)
    if when is not None:
        info += b" /CreationDate " + _pdf_string(when.strftime("D:%Y%m%d%H%M%S"))
    obj(info_no, info + b" >>")
    xref_at = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (info_no + 1))
    for num in range(1, info_no + 1):
        out.write(b"%010d 00000 n \n" % offsets[num])
    out.write(b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
              % (info_no + 1, info_no, xref_at))
    blob = out.getvalue()
    if isinstance(target, (str, os.PathLike)):
        try:
            with open(target, "wb") as f:
                f.write(blob)
        except OSError as exc:
            raise DocumentError(f"cannot write: {exc.strerror}", source=str(target)) from exc
    else:
        target.write(blob)


def open_pdf(data: bytes, source: str | None, password: str | None = None):
    """A pypdfium2 document, or DocumentError saying why the PDF cannot be opened."""
    import pypdfium2 as pdfium

    try:
        return pdfium.PdfDocument(data, password=password)
    except pdfium.PdfiumError as exc:
        msg = str(exc)
        if "password" in msg.lower():
            raise DocumentError("encrypted PDF: a password is needed", source=source) from exc
        raise DocumentError(f"broken PDF ({msg})", source=source) from exc
    except Exception as exc:  # pdfium reports anything it cannot parse this way
        raise DocumentError(f"broken PDF ({exc})", source=source) from exc


def render_grey(page, width: int, rows: int) -> np.ndarray:
    """``page`` drawn by pdfium straight onto ``width`` x ``rows`` grey pixels (uint8, 255 = white).

    pdfium maps the page (after its own /Rotate) onto the whole bitmap, scaling x and y
    separately, so a fax's non-square pixels are drawn directly: no second resampling.
    It draws into a numpy array we own (8-bit grey, FPDFBitmap_Gray), so nothing is copied.
    """
    import pypdfium2 as pdfium
    import pypdfium2.raw as pdfium_c

    grey = np.full((rows, width), 255, dtype=np.uint8)
    buffer = (ctypes.c_ubyte * grey.size).from_buffer(grey)
    bitmap = pdfium.PdfBitmap.new_native(width, rows, pdfium_c.FPDFBitmap_Gray, buffer=buffer, stride=width)
    try:
        # the flags page.render(grayscale=True) uses: annotations drawn, grey output
        pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, rows, 0,
                                       pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_GRAYSCALE)
    finally:
        bitmap.close()
    del buffer
    return grey


def iter_pdf(data: bytes, source: str | None, resolution: Resolution, paper: str, mode: str,
             budget: Budget, password: str | None = None) -> Iterator[Page]:
    """Rasterise each PDF page at ``resolution``, scaled to the paper's scan width.

    The page's width fills the scan line and its height keeps the page's physical
    proportions at the fax's y resolution; pdfium draws it at exactly that size in
    grey (:func:`render_grey`), which is then made bilevel (``mode``). Every page's
    size is read (without loading the page) and the whole document's pixels checked
    against the budget before the first page is drawn.
    """
    import pypdfium2 as pdfium

    limits = budget.limits
    pdf = open_pdf(data, source, password)
    try:
        try:
            count = len(pdf)
        except Exception as exc:                  # noqa: BLE001 - pdfium reports anything this way
            raise DocumentError(f"broken PDF ({exc})", source=source) from exc
        if count == 0:
            raise DocumentError("PDF has no pages", source=source)
        limits.check_pages(budget.pages + count, source)
        plan = []
        for i in range(count):
            where = f"{source} page {i + 1}" if source else f"page {i + 1}"
            try:
                w_pt, h_pt = pdf.get_page_size(i)
            except Exception as exc:              # noqa: BLE001
                raise DocumentError(f"cannot read page size ({exc})", source=where) from exc
            if not (w_pt > 0 and h_pt > 0) or not (math.isfinite(w_pt) and math.isfinite(h_pt)):
                raise DocumentError(f"page has an empty size {w_pt}x{h_pt} pt", source=where)
            p = paper_for_width(w_pt / 72 * 25.4) if paper == "auto" else paper
            width = scan_width(resolution, p)
            # rows at y dpi for a page whose width is drawn over ``width`` pixels at x dpi
            rows = max(1, int(round(h_pt * width / w_pt * resolution.y_dpi / resolution.x_dpi)))
            limits.check_rows(rows, where)
            limits.check_source_size(width, rows, where)
            plan.append((where, p, width, rows))
        total = sum(width * rows for _, _, width, rows in plan)
        budget.add_source_pixels(total, source)
        budget.add_pixels(total, source)
        for i, (where, p, width, rows) in enumerate(plan):
            budget.check_time(where)
            try:
                page = pdf[i]
            except Exception as exc:              # noqa: BLE001
                raise DocumentError(f"cannot read page ({exc})", source=where) from exc
            try:
                grey = render_grey(page, width, rows)
            except pdfium.PdfiumError as exc:
                raise DocumentError(f"cannot render page ({exc})", source=where) from exc
            finally:
                page.close()
            hist = grey_histogram(grey) if mode != "dither" else None
            m = mode if mode != "auto" else ("dither" if is_photo(grey, hist=hist) else "threshold")
            image = bilevel(grey, m, otsu_threshold(hist=hist) if m == "threshold" else None)
            del grey
            budget.add_pages(1, source)
            yield Page(image, resolution, where, {"format": "pdf", "paper": p, "bilevel": m})
    finally:
        pdf.close()


def load_pdf(data: bytes, source: str | None, resolution: Resolution, paper: str, mode: str,
             limits: Limits, password: str | None = None, start_count: int = 0) -> list[Page]:
    """Every page of :func:`iter_pdf` (one budget for this PDF alone)."""
    return list(iter_pdf(data, source, resolution, paper, mode, Budget(limits, pages=start_count), password))
