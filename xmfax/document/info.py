"""``describe``: what is in a TIFF, PDF or image file, page by page (for ``xmfax info``).

Only headers are read: no page is decoded or rendered.
"""
from __future__ import annotations

import io
import warnings

from PIL import Image

from ..errors import DocumentError
from .limits import Limits
from .load import Source, match_resolution, read_source, sniff
from .tiff import (BAD_FAX_LINES, BITS_PER_SAMPLE, CLEAN_FAX_DATA, COMPRESSION, COMPRESSION_NAMES, DATE_TIME,
                   FILL_ORDER, FILL_ORDER_NAMES, NEW_SUBFILE_TYPE, PAGE_NUMBER, PHOTOMETRIC, RESOLUTION_UNIT,
                   SAMPLES_PER_PIXEL, SOFTWARE, T4_OPTIONS, T6_OPTIONS, X_RESOLUTION, Y_RESOLUTION, parse_tiff)

UNIT_NAMES = {1: "none", 2: "inch", 3: "centimeter"}
PHOTOMETRIC_NAMES = {0: "min-is-white", 1: "min-is-black", 2: "rgb", 3: "palette", 4: "mask", 5: "separated",
                     6: "ycbcr", 8: "cielab"}


def _tiff_page(ifd) -> dict:
    comp = int(ifd.get(COMPRESSION, 1))
    fill = int(ifd.get(FILL_ORDER, 1))
    entry = {
        "width": ifd.width,
        "length": ifd.length,
        "x_resolution": ifd.get(X_RESOLUTION),
        "y_resolution": ifd.get(Y_RESOLUTION),
        "resolution_unit": UNIT_NAMES.get(int(ifd.get(RESOLUTION_UNIT, 2)), str(ifd.get(RESOLUTION_UNIT))),
        "compression": COMPRESSION_NAMES.get(comp, str(comp)),
        "compression_code": comp,
        "fill_order": fill,
        "fill_order_name": FILL_ORDER_NAMES.get(fill, str(fill)),
        "bits_per_sample": int(ifd.get(BITS_PER_SAMPLE, 1)),
        "samples_per_pixel": int(ifd.get(SAMPLES_PER_PIXEL, 1)),
        "photometric": PHOTOMETRIC_NAMES.get(ifd.get(PHOTOMETRIC), ifd.get(PHOTOMETRIC)),
    }
    dpi = ifd.dpi()
    m = match_resolution(dpi, ifd.width, ifd.length) if dpi else None
    entry["fax_resolution"] = m[0].label if m else None
    for key, tag in (("t4_options", T4_OPTIONS), ("t6_options", T6_OPTIONS), ("bad_fax_lines", BAD_FAX_LINES),
                     ("clean_fax_data", CLEAN_FAX_DATA), ("subfile_type", NEW_SUBFILE_TYPE)):
        if tag in ifd.tags:
            entry[key] = int(ifd.get(tag))
    if PAGE_NUMBER in ifd.tags:
        entry["page_number"] = list(ifd.values(PAGE_NUMBER))[:2]
    for key, tag in (("software", SOFTWARE), ("date_time", DATE_TIME)):
        if isinstance(ifd.tags.get(tag), str):
            entry[key] = ifd.tags[tag]
    return entry


def _pdf_pages(data: bytes, name: str, limits: Limits, password: str | None) -> list[dict]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    from .pdf import open_pdf

    pdf = open_pdf(data, name, password)
    try:
        limits.check_pages(len(pdf), name)
        pages = []
        for i in range(len(pdf)):
            page = pdf[i]
            try:
                w, h = page.get_size()
                entry = {"width_pt": round(w, 2), "height_pt": round(h, 2),
                         "width_mm": round(w / 72 * 25.4, 1), "height_mm": round(h / 72 * 25.4, 1), "images": []}
                for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=1):
                    try:
                        pw, ph = obj.get_px_size()
                        filters = list(obj.get_filters())
                    except pdfium.PdfiumError:
                        continue
                    entry["images"].append({"width": pw, "height": ph, "filters": filters})
                    if len(entry["images"]) >= 50:
                        break
                if len(entry["images"]) == 1:
                    im = entry["images"][0]
                    entry["compression"] = ",".join(im["filters"]) or "none"
                    entry["width"], entry["length"] = im["width"], im["height"]
                    entry["x_resolution"] = round(im["width"] / (w / 72), 1)
                    entry["y_resolution"] = round(im["height"] / (h / 72), 1)
                pages.append(entry)
            finally:
                page.close()
        return pages
    finally:
        pdf.close()


def describe(source: Source, *, limits: Limits = Limits(), password: str | None = None) -> dict:
    """{"file", "format", "pages": [one dict per page]} for a TIFF, PDF or image file."""
    data, name = read_source(source, limits)
    kind = sniff(data)
    if kind == "tiff":
        try:
            ifds = parse_tiff(data, name, limits)
            return {"file": name, "format": "tiff", "pages": [_tiff_page(ifd) for ifd in ifds]}
        except DocumentError as exc:
            if exc.reason != "BigTIFF":
                raise
    if kind == "pdf":
        return {"file": name, "format": "pdf", "pages": _pdf_pages(data, name, limits, password)}
    if kind == "text":
        return {"file": name, "format": "text", "pages": [], "bytes": len(data),
                "lines": data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data))
            n = getattr(img, "n_frames", 1)
            limits.check_pages(n, name)
            pages = []
            for i in range(n):
                if i:
                    img.seek(i)
                dpi = img.info.get("dpi")
                pages.append({"width": img.width, "length": img.height, "mode": img.mode,
                              "x_resolution": float(dpi[0]) if dpi else None,
                              "y_resolution": float(dpi[1]) if dpi else None,
                              "compression": img.info.get("compression")})
            return {"file": name, "format": (img.format or "image").lower(), "pages": pages}
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"not a TIFF, PDF or image ({type(exc).__name__}: {exc})", source=name) from exc
