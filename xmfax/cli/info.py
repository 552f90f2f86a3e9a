"""``xmfax info FILE [--json]``: pages, sizes, resolutions, compression of a TIFF, PDF or image."""
from __future__ import annotations

import argparse
import json
import math

from ..document import describe


def register(sub) -> None:
    p = sub.add_parser("info", help="show the pages of a TIFF, PDF or image file",
                       description="Pages, sizes, resolutions, compression and fill order. "
                       "--json prints an object with a \"pages\" list, one entry per page.")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--password", help="password of an encrypted PDF")
    p.set_defaults(func=run)


def _fmt_res(page: dict) -> str:
    x, y = page.get("x_resolution"), page.get("y_resolution")
    if x is None or y is None:
        return "-"
    unit = page.get("resolution_unit", "inch")
    text = f"{x:g}x{y:g} {'dpi' if unit == 'inch' else unit}"
    if page.get("fax_resolution"):
        text += f" ({page['fax_resolution']})"
    return text


def json_safe(value):
    """``value`` with NaN/infinity as None and anything else JSON cannot hold as text (never bare NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def run(args: argparse.Namespace) -> int:
    info = describe(args.file, password=args.password)
    if args.json:
        print(json.dumps(json_safe(info), indent=2, allow_nan=False))
        return 0
    pages = info["pages"]
    print(f"{info['file']}: {info['format'].upper()}, {len(pages)} page{'s' if len(pages) != 1 else ''}")
    for i, page in enumerate(pages, 1):
        if info["format"] == "pdf":
            size = f"{page['width_mm']}x{page['height_mm']} mm"
            extra = ""
            if "width" in page:
                extra = f", image {page['width']}x{page['length']}, {_fmt_res(page)}, {page['compression']}"
            elif page["images"]:
                extra = f", {len(page['images'])} images"
            print(f"  page {i}: {size}{extra}")
            continue
        line = f"  page {i}: {page['width']}x{page['length']}, {_fmt_res(page)}"
        if page.get("compression"):
            line += f", {page['compression']}"
        if "fill_order" in page:
            line += f", fill order {page['fill_order']} ({page['fill_order_name']})"
        if "bad_fax_lines" in page:
            line += f", {page['bad_fax_lines']} bad lines"
        print(line)
    return 0
