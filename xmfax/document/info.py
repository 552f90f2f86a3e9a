"""``describe``: what is in a TIFF, PDF or image file, page by page (for ``xmfax info``).

Only headers are read: no page is decoded or rendered.
"""
from __future__ import annotations

import io
import math
import warnings

from PIL import Image

from ..errors import DocumentError
from .limits import Limits
from .load import Source, library_error, match_resolution, read_source, sniff
from .tiff import (BAD_FAX_LINES, BITS_PER_SAMPLE, CLEAN_FAX_DATA, COMPRESSION, COMPRESSION_NAMES, DATE_TIME,
                   FILL_ORDER, FILL_ORDER_NAMES, NEW_SUBFILE_TYPE, PAGE_NUMBER, PHOTOMETRIC, RESOLUTION_UNIT,
                   SAMPLES_PER_PIXEL, SOFTWARE, T4_OPTIONS, T6_OPTIONS, X_RESOLUTION, Y_RESOLUTION, parse_tiff)

UNIT_NAMES = {1: "none", 2: "inch", 3: "centimeter"}
PHOTOMETRIC_NAMES = {0: "min-is-white", 1: "min-is-black", 2: "rgb", 3: "palette", 4: "mask", 5: "separated",
                     6: "ycbcr", 8: "cielab"}


def _finite(x: float | None) -> float | None:
    return x if x is None or math.isfinite(x) else None


def _tiff_page(ifd) -> dict:
    """One IFD's header facts, every tag read through the typed accessor (DocumentError on a bad type)."""
    comp = ifd.int(COMPRESSION, 1)
    fill = ifd.int(FILL_ORDER, 1)
    unit = ifd.int(RESOLUTION_UNIT, 2)
    photometric = ifd.int(PHOTOMETRIC)
    entry = {
        "width": ifd.width,
        "length": ifd.length,
        "x_resolution": ifd.number(X_RESOLUTION),
        "y_resolution": ifd.number(Y_RESOLUTION),
        "resolution_unit": UNIT_NAMES.get(unit, str(unit)),
        "compression": COMPRESSION_NAMES.get(comp, str(comp)),
        "compression_code": comp,
        "fill_order": fill,
        "fill_order_name": FILL_ORDER_NAMES.get(fill, str(fill)),
        "bits_per_sample": ifd.int(BITS_PER_SAMPLE, 1),
        "samples_per_pixel": ifd.int(SAMPLES_PER_PIXEL, 1),
        "photometric": PHOTOMETRIC_NAMES.get(photometric, photometric),
    }
    dpi = ifd.dpi()
    m = match_resolution(dpi, ifd.width, ifd.length) if dpi else None
    entry["fax_resolution"] = m[0].label if m else None
    for key, tag in (("t4_options", T4_OPTIONS), ("t6_options", T6_OPTIONS), ("bad_fax_lines", BAD_FAX_LINES),
                     ("clean_fax_data", CLEAN_FAX_DATA), ("subfile_type", NEW_SUBFILE_TYPE)):
        if tag in ifd:
            entry[key] = ifd.int(tag)
    if PAGE_NUMBER in ifd:
        entry["page_number"] = list(ifd.ints(PAGE_NUMBER))[:2]
    for key, tag in (("software", SOFTWARE), ("date_time", DATE_TIME)):
        if tag in ifd:
            entry[key] = ifd.text(tag)
    return entry


def _pdf_pages(data: bytes, name: str, limits: Limits, password: str | None) -> list[dict]:
    import pypdfium2.raw as raw

    from .pdf import open_pdf

    pdf = open_pdf(data, name, password)
    try:
        try:
            count = len(pdf)
        except Exception as exc:                       # noqa: BLE001 - pdfium reports anything this way
            raise DocumentError(f"broken PDF ({exc})", source=name) from exc
        limits.check_pages(count, name)
        pages = []
        for i in range(count):
            where = f"{name} page {i + 1}"
            try:
                page = pdf[i]
            except Exception as exc:                   # noqa: BLE001
                raise DocumentError(f"cannot read page ({library_error(exc)})", source=where) from exc
            try:
                w, h = page.get_size()
                if not (math.isfinite(w) and math.isfinite(h)):
                    raise DocumentError(f"page has a size of {w}x{h} pt", source=where)
                entry = {"width_pt": round(w, 2), "height_pt": round(h, 2),
                         "width_mm": round(w / 72 * 25.4, 1), "height_mm": round(h / 72 * 25.4, 1), "images": []}
                for obj in page.get_objects(filter=[raw.FPDF_PAGEOBJ_IMAGE], max_depth=1):
                    try:
                        pw, ph = obj.get_px_size()
                        filters = [str(f) for f in obj.get_filters()]
                    except Exception:                  # noqa: BLE001 - an unreadable image: not listed
                        continue
                    entry["images"].append({"width": pw, "height": ph, "filters": filters})
                    if len(entry["images"]) >= 50:
                        break
                if len(entry["images"]) == 1 and w > 0 and h > 0:
                    im = entry["images"][0]
                    entry["compression"] = ",".join(im["filters"]) or "none"
                    entry["width"], entry["length"] = im["width"], im["height"]
                    entry["x_resolution"] = round(im["width"] / (w / 72), 1)
                    entry["y_resolution"] = round(im["height"] / (h / 72), 1)
                pages.append(entry)
            except DocumentError:
                raise
            except Exception as exc:                   # noqa: BLE001 - PdfiumError, UnicodeDecodeError ...
                raise DocumentError(f"cannot read page ({library_error(exc)})", source=where) from exc
            finally:
                page.close()
        return pages
    finally:
        pdf.close()


def describe(source: Source, *, limits: Limits = Limits(), password: str | None = None) -> dict:
    """{"file", "format", "pages": [one dict per page]} for a TIFF, PDF or image file."""
    data, name = read_source(source, limits)
    if not data:
        raise DocumentError("empty file", source=name)
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
                try:
                    x, y = (_finite(float(dpi[0])), _finite(float(dpi[1]))) if dpi else (None, None)
                except (TypeError, ValueError, IndexError):
                    x = y = None
                pages.append({"width": img.width, "length": img.height, "mode": img.mode,
                              "x_resolution": x, "y_resolution": y,
                              "compression": img.info.get("compression")})
            return {"file": name, "format": (img.format or "image").lower(), "pages": pages}
    except DocumentError:
        raise
    except Exception as exc:
        raise DocumentError(f"not a TIFF, PDF or image ({library_error(exc)})", source=name) from exc
