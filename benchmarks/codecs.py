"""Codec speed: xmfax (C and Python backends) beside libtiff and spandsp, ms per page.

For each ITU T.24 page (/work/shared/corpus/itu/itu1..8.pbm, 1728 x 2376) and a dithered
page (the worst case: runs of 1-3 pels), and each codec (MH, MR K=4, MMR), prints the best
of N runs of:

* xmfax encode / decode through the public API, one call per page:
  ``codecs.encode(image, codec, k=4, rtc=codec == "mmr")`` (the strips libtiff writes) and ``codecs.decode(data, 1728, codec)``
  with the C backend (impl="c") and the Python reference (impl="python");
* libtiff 4 (libtiff.so.6 through ctypes): a TIFF on tmpfs (/dev/shm) with the page as one
  strip, FillOrder 1, Compression 3 (T4Options 0 = MH, 1 = MR; YResolution 196 dpi, so
  libtiff's K is 4) or 4 (MMR); timed around TIFFWriteEncodedStrip (encode, which also
  write()s the strip to the tmpfs file) and TIFFReadEncodedStrip (decode, which also
  read()s it), nothing subtracted;
* spandsp 0.0.6 (libspandsp.so.2 through ctypes): encode = t4_tx_start_page (spandsp codes
  the whole page there, reading rows from the libtiff TIFF through libtiff; its chunk calls
  only copy) plus the t4_tx_get_chunk calls; decode = the t4_rx_put_chunk calls on the
  LSB-first stream with RTC (spandsp keeps the rows in memory; the TIFF is written at
  t4_rx_end_page, untimed).

ratio columns are libtiff's time / xmfax C's time (> 1: xmfax is faster). Medians are
over every page and codec. Usage: python benchmarks/codecs.py [--runs N] [--no-python]
"""
from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from xmfax import codecs

SHARED = Path(os.environ.get("XMFAX_SHARED") or Path(__file__).resolve().parents[2] / "shared")  # ../shared beside the checkout
ITU = (SHARED / "corpus/itu")
CODECS = ("mh", "mr", "mmr")
K = 4


def load_pages() -> list[tuple[str, np.ndarray]]:
    from PIL import Image
    pages = []
    for n in range(1, 9):
        path = ITU / f"itu{n}.pbm"
        if path.exists():
            with Image.open(path) as im:
                pages.append((f"itu{n}", ~np.asarray(im.convert("1"), dtype=bool)))
    rng = np.random.default_rng(7)
    grad = np.linspace(0.1, 0.9, 1728)[None, :] * np.ones((2376, 1))
    pages.append(("dither", rng.random((2376, 1728)) < grad))
    return pages


def best(fn, runs: int) -> float:
    """Best of `runs` timings of fn(), which returns the seconds it measured itself."""
    return min(fn() for _ in range(runs)) * 1e3


# --- xmfax ----------------------------------------------------------------------------------

def xmfax_encode(img, codec, impl):
    t = time.perf_counter()
    # libtiff's G3 strips carry no RTC, its G4 strips end with EOFB: code the same
    data = codecs.encode(img, codec, k=K, rtc=codec == "mmr", impl=impl)
    return time.perf_counter() - t, data


def xmfax_decode(data, codec, impl):
    t = time.perf_counter()
    res = codecs.decode(data, 1728, codec, impl=impl)
    return time.perf_counter() - t, res


# --- libtiff ----------------------------------------------------------------------------------

class LibTiff:
    """libtiff's G3/G4 codec through ctypes, on TIFF files in tmpfs."""

    TAGS = dict(ImageWidth=256, ImageLength=257, BitsPerSample=258, Compression=259,
                Photometric=262, FillOrder=266, SamplesPerPixel=277, RowsPerStrip=278,
                XResolution=282, YResolution=283, PlanarConfig=284, T4Options=292,
                ResolutionUnit=296)

    def __init__(self, tmpdir: str):
        self.lib = ctypes.CDLL("libtiff.so.6")
        self.lib.TIFFOpen.restype = ctypes.c_void_p
        self.lib.TIFFOpen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        self.lib.TIFFClose.argtypes = [ctypes.c_void_p]
        self.lib.TIFFWriteEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_ssize_t]
        self.lib.TIFFWriteEncodedStrip.restype = ctypes.c_ssize_t
        self.lib.TIFFReadEncodedStrip.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p, ctypes.c_ssize_t]
        self.lib.TIFFReadEncodedStrip.restype = ctypes.c_ssize_t
        self.lib.TIFFSetWarningHandler(None)
        self.tmpdir = tmpdir

    def _set(self, tif, tag, value):
        arg = ctypes.c_double(value) if isinstance(value, float) else ctypes.c_int(value)
        if not self.lib.TIFFSetField(ctypes.c_void_p(tif), ctypes.c_uint32(self.TAGS[tag]), arg):
            raise RuntimeError(f"TIFFSetField {tag}")

    def write(self, img: np.ndarray, codec: str, path: str) -> float:
        rows, width = img.shape
        packed = np.packbits(img, axis=1)            # 1 = black with Photometric 0
        tif = self.lib.TIFFOpen(path.encode(), b"w")
        for tag, value in (("ImageWidth", width), ("ImageLength", rows), ("BitsPerSample", 1),
                           ("SamplesPerPixel", 1), ("Compression", 4 if codec == "mmr" else 3),
                           ("Photometric", 0), ("FillOrder", 1), ("RowsPerStrip", rows),
                           ("PlanarConfig", 1), ("ResolutionUnit", 2), ("XResolution", 204.0),
                           ("YResolution", 196.0)):
            self._set(tif, tag, value)
        if codec != "mmr":
            self._set(tif, "T4Options", 1 if codec == "mr" else 0)
        buf = packed.ctypes.data_as(ctypes.c_void_p)
        t = time.perf_counter()
        n = self.lib.TIFFWriteEncodedStrip(tif, 0, buf, packed.size)
        elapsed = time.perf_counter() - t
        if n < 0:
            raise RuntimeError("TIFFWriteEncodedStrip failed")
        self.lib.TIFFClose(tif)
        return elapsed

    def read(self, path: str, out: np.ndarray) -> float:
        tif = self.lib.TIFFOpen(path.encode(), b"r")
        t = time.perf_counter()
        n = self.lib.TIFFReadEncodedStrip(tif, 0, out.ctypes.data_as(ctypes.c_void_p), out.size)
        elapsed = time.perf_counter() - t
        self.lib.TIFFClose(tif)
        if n != out.size:
            raise RuntimeError(f"TIFFReadEncodedStrip gave {n} bytes, not {out.size}")
        return elapsed

    def strip(self, path: str) -> bytes:
        from PIL import Image
        with Image.open(path) as im:
            off, cnt = im.tag_v2[273][0], im.tag_v2[279][0]
        return Path(path).read_bytes()[off:off + cnt]


# --- spandsp ----------------------------------------------------------------------------------

class Spandsp:
    """spandsp 0.0.6's T.4/T.6 coder through ctypes."""

    ENC = {"mh": 1, "mr": 2, "mmr": 3}

    def __init__(self, tmpdir: str):
        lib = self.lib = ctypes.CDLL("libspandsp.so.2")
        for name in ("t4_tx_init", "t4_rx_init"):
            getattr(lib, name).restype = ctypes.c_void_p
        lib.t4_tx_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
        lib.t4_rx_init.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        for name in ("t4_tx_set_tx_encoding", "t4_tx_set_min_bits_per_row", "t4_rx_set_rx_encoding",
                     "t4_rx_set_image_width"):
            getattr(lib, name).argtypes = [ctypes.c_void_p, ctypes.c_int]
        for name in ("t4_tx_start_page", "t4_tx_end_page", "t4_tx_free", "t4_rx_start_page",
                     "t4_rx_end_page", "t4_rx_free"):
            getattr(lib, name).argtypes = [ctypes.c_void_p]
        lib.t4_tx_get_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        lib.t4_rx_put_chunk.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.tmpdir = tmpdir

    def encode(self, tiff_path: str, codec: str) -> tuple[float, bytes]:
        lib = self.lib
        s = lib.t4_tx_init(None, tiff_path.encode(), -1, -1)
        if not s:
            raise RuntimeError("t4_tx_init failed")
        lib.t4_tx_set_tx_encoding(s, self.ENC[codec])
        lib.t4_tx_set_min_bits_per_row(s, 0)
        buf = ctypes.create_string_buffer(65536)
        out = []
        t = time.perf_counter()
        lib.t4_tx_start_page(s)
        while True:
            n = lib.t4_tx_get_chunk(s, buf, len(buf))
            if n <= 0:
                break
            out.append(buf.raw[:n])
        elapsed = time.perf_counter() - t
        lib.t4_tx_end_page(s)
        lib.t4_tx_free(s)
        return elapsed, b"".join(out)

    def decode(self, lsb_stream: bytes, codec: str) -> float:
        lib = self.lib
        path = os.path.join(self.tmpdir, "spandsp-rx.tif")
        s = lib.t4_rx_init(None, path.encode(), 1)
        lib.t4_rx_set_rx_encoding(s, self.ENC[codec])
        lib.t4_rx_set_image_width(s, 1728)
        lib.t4_rx_start_page(s)
        t = time.perf_counter()
        for i in range(0, len(lsb_stream), 8192):
            chunk = lsb_stream[i:i + 8192]
            if lib.t4_rx_put_chunk(s, chunk, len(chunk)):
                break
        elapsed = time.perf_counter() - t
        lib.t4_rx_end_page(s)
        lib.t4_rx_free(s)
        return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=7, help="best of this many runs (default 7)")
    ap.add_argument("--no-python", action="store_true", help="skip the slow Python backend")
    args = ap.parse_args()
    pages = load_pages()
    tmp = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        tiff = LibTiff(tmp)
    except OSError as exc:
        tiff = None
        print(f"libtiff not available ({exc})")
    try:
        span = Spandsp(tmp)
    except OSError as exc:
        span = None
        print(f"spandsp not available ({exc})")
    have_py = not args.no_python and "python" in codecs.available_backends()
    print(f"xmfax backends: {codecs.available_backends()}; best of {args.runs} runs; ms per page")
    print("libtiff: libtiff.so.6 via ctypes, one-strip TIFF on tmpfs, timed around "
          "TIFFWriteEncodedStrip / TIFFReadEncodedStrip")
    print("spandsp: libspandsp.so.2 via ctypes, encode = t4_tx_start_page + t4_tx_get_chunk, "
          "decode = t4_rx_put_chunk")
    head = (f"{'page':8} {'codec':5} {'bytes':>7} | {'C enc':>6} {'tiff enc':>8} {'ratio':>5} "
            f"{'span enc':>8} | {'C dec':>6} {'tiff dec':>8} {'ratio':>5} {'span dec':>8}"
            + (f" | {'py enc':>7} {'py dec':>7}" if have_py else "") + "  same bytes as libtiff")
    print(head)
    print("-" * len(head))
    enc_ratios, dec_ratios = [], []
    cols: dict[str, list[float]] = {k: [] for k in ("ce", "te", "se", "cd", "td", "sd", "pe", "pd")}
    for name, img in pages:
        unpacked = np.empty(img.shape[0] * ((img.shape[1] + 7) // 8), dtype=np.uint8)
        for codec in CODECS:
            ce = best(lambda: xmfax_encode(img, codec, "c")[0], args.runs)
            data = xmfax_encode(img, codec, "c")[1]
            cd = best(lambda: xmfax_decode(data, codec, "c")[0], args.runs)
            res = xmfax_decode(data, codec, "c")[1]
            assert np.array_equal(res.image, img), (name, codec)
            te = td = se = sd = float("nan")
            same = "-"
            path = os.path.join(tmp, f"{name}-{codec}.tif")
            if tiff:
                te = best(lambda: tiff.write(img, codec, path), args.runs)
                td = best(lambda: tiff.read(path, unpacked), args.runs)
                same = "yes" if tiff.strip(path) == data else "no"
            if span and tiff:
                se = best(lambda: span.encode(path, codec)[0], args.runs)
                lsb = codecs.encode(img, codec, k=K, rtc=True, bit_order="lsb", impl="c")
                sd = best(lambda: span.decode(lsb, codec), args.runs)
            row = (f"{name:8} {codec:5} {len(data):7d} | {ce:6.2f} {te:8.2f} {te / ce:5.2f} {se:8.2f} | "
                   f"{cd:6.2f} {td:8.2f} {td / cd:5.2f} {sd:8.2f}")
            if have_py:
                pe = best(lambda: xmfax_encode(img, codec, "python")[0], 1)
                pd = best(lambda: xmfax_decode(data, codec, "python")[0], 1)
                cols["pe"].append(pe)
                cols["pd"].append(pd)
                row += f" | {pe:7.1f} {pd:7.1f}"
            print(row + f"  {same}", flush=True)
            enc_ratios.append(te / ce)
            dec_ratios.append(td / cd)
            for key, v in (("ce", ce), ("te", te), ("se", se), ("cd", cd), ("td", td), ("sd", sd)):
                cols[key].append(v)
    print("-" * len(head))
    med = {k: statistics.median(v) if v else float("nan") for k, v in cols.items()}
    row = (f"{'median':8} {'all':5} {'':7} | {med['ce']:6.2f} {med['te']:8.2f} "
           f"{statistics.median(enc_ratios):5.2f} {med['se']:8.2f} | {med['cd']:6.2f} {med['td']:8.2f} "
           f"{statistics.median(dec_ratios):5.2f} {med['sd']:8.2f}")
    if have_py:
        row += f" | {med['pe']:7.1f} {med['pd']:7.1f}"
    print(row)
    print(f"median speed-up over libtiff (of per-page ratios): encode x{statistics.median(enc_ratios):.2f}, "
          f"decode x{statistics.median(dec_ratios):.2f}")
    for f in Path(tmp).iterdir():
        f.unlink()
    os.rmdir(tmp)


if __name__ == "__main__":
    main()
