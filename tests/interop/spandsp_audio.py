"""spandsp (libspandsp2) as the audio peer, through ctypes: the loader and the G.711,
modem connect tones, V.21 FSK and HDLC prototypes, with small wrappers for tests.

Other modem harnesses (tests/interop/spandsp_<modem>.py) import :func:`load` and add
their own prototypes with :func:`declare`. Nothing here is a test; tests skip with
:func:`unavailable_reason` when :func:`load` returns None.

Every spandsp object is made with ``*_init(NULL, ...)`` (spandsp allocates) and
released with ``*_free``. Samples are numpy int16 arrays at 8 kHz.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import importlib
import os
import sys

import numpy as np

vp, i32, f32 = ctypes.c_void_p, ctypes.c_int, ctypes.c_float
i16p = ctypes.POINTER(ctypes.c_int16)
u8p = ctypes.POINTER(ctypes.c_uint8)

# callback types of spandsp/async.h, hdlc.h, super_tone_rx.h
GET_BIT = ctypes.CFUNCTYPE(i32, vp)
PUT_BIT = ctypes.CFUNCTYPE(None, vp, i32)
MODEM_STATUS = ctypes.CFUNCTYPE(None, vp, i32)
HDLC_FRAME = ctypes.CFUNCTYPE(None, vp, u8p, i32, i32)
HDLC_UNDERFLOW = ctypes.CFUNCTYPE(None, vp)
TONE_REPORT = ctypes.CFUNCTYPE(None, vp, i32, i32, i32)

# enums (spandsp/g711.h, modem_connect_tones.h, fsk.h, async.h)
G711_ALAW, G711_ULAW = 0, 1
TONE_NONE, TONE_CNG, TONE_ANS, TONE_ANS_PR, TONE_ANSAM, TONE_ANSAM_PR = 0, 1, 2, 3, 4, 5
TONE_FAX_PREAMBLE, TONE_CED_OR_PREAMBLE = 6, 7
FSK_V21CH1, FSK_V21CH2 = 0, 1
FSK_FRAME_MODE_SYNC = 1
SIG_STATUS_CARRIER_DOWN, SIG_STATUS_CARRIER_UP = -1, -2
SIG_STATUS_FRAMING_OK, SIG_STATUS_END_OF_DATA, SIG_STATUS_ABORT = -6, -7, -8


class FskSpec(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("freq_zero", i32), ("freq_one", i32),
                ("tx_level", i32), ("min_level", i32), ("baud_rate", i32)]


_lib = None
_reason: str | None = None

_SIGS = {
    "g711_init": (vp, [vp, i32]),
    "g711_free": (i32, [vp]),
    "g711_encode": (i32, [vp, u8p, i16p, i32]),
    "g711_decode": (i32, [vp, i16p, u8p, i32]),
    "g711_transcode": (i32, [vp, u8p, u8p, i32]),
    "alaw_to_ulaw": (ctypes.c_uint8, [ctypes.c_uint8]),
    "ulaw_to_alaw": (ctypes.c_uint8, [ctypes.c_uint8]),
    "modem_connect_tones_tx_init": (vp, [vp, i32]),
    "modem_connect_tones_tx_free": (i32, [vp]),
    "modem_connect_tones_tx": (i32, [vp, i16p, i32]),
    "modem_connect_tones_rx_init": (vp, [vp, i32, TONE_REPORT, vp]),
    "modem_connect_tones_rx_free": (i32, [vp]),
    "modem_connect_tones_rx": (i32, [vp, i16p, i32]),
    "modem_connect_tones_rx_get": (i32, [vp]),
    "fsk_tx_init": (vp, [vp, ctypes.POINTER(FskSpec), vp, vp]),
    "fsk_tx_free": (i32, [vp]),
    "fsk_tx_power": (None, [vp, f32]),
    "fsk_tx": (i32, [vp, i16p, i32]),
    "fsk_rx_init": (vp, [vp, ctypes.POINTER(FskSpec), i32, vp, vp]),
    "fsk_rx_free": (i32, [vp]),
    "fsk_rx": (i32, [vp, i16p, i32]),
    "fsk_rx_signal_cutoff": (None, [vp, f32]),
    "fsk_rx_signal_power": (f32, [vp]),
    "fsk_rx_set_modem_status_handler": (None, [vp, vp, vp]),
    "hdlc_tx_init": (vp, [vp, i32, i32, i32, vp, vp]),
    "hdlc_tx_free": (i32, [vp]),
    "hdlc_tx_frame": (i32, [vp, ctypes.c_char_p, ctypes.c_size_t]),
    "hdlc_tx_flags": (i32, [vp, i32]),
    "hdlc_tx_abort": (i32, [vp]),
    "hdlc_tx_get_bit": (i32, [vp]),
    "hdlc_rx_init": (vp, [vp, i32, i32, i32, HDLC_FRAME, vp]),
    "hdlc_rx_free": (i32, [vp]),
    "hdlc_rx_put_bit": (None, [vp, i32]),
    "hdlc_rx_set_status_handler": (None, [vp, vp, vp]),
}


def declare(lib, sigs: dict) -> None:
    """Set restype/argtypes: ``sigs`` maps a function name to ``(restype, [argtypes])``."""
    for name, (res, args) in sigs.items():
        fn = getattr(lib, name)
        fn.restype = res
        fn.argtypes = args


def load():
    """libspandsp.so.2 with the audio prototypes declared, or None (see unavailable_reason)."""
    global _lib, _reason
    if _lib is not None or _reason is not None:
        return _lib
    names = ["libspandsp.so.2"]
    found = ctypes.util.find_library("spandsp")
    if found:
        names.append(found)
    errors = []
    for name in names:
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError as exc:
            errors.append(str(exc))
    else:
        _reason = "libspandsp.so.2 not loadable (apt-get install libspandsp2): " + "; ".join(errors)
        return None
    declare(lib, _SIGS)
    _lib = lib
    return lib


def loader_with(sigs: dict):
    """A ``load()`` for a module that adds prototypes (``sigs``, as :func:`declare` takes
    them): libspandsp with them declared (once), or None."""
    declared = False

    def load_with():
        nonlocal declared
        lib = load()
        if lib is not None and not declared:
            declare(lib, sigs)
            declared = True
        return lib
    return load_with


def unavailable_reason() -> str:
    load()
    return _reason or ""


def fn_ptr(lib, name: str) -> int:
    """The address of a spandsp function, to hand it to spandsp as a callback (no Python)."""
    return ctypes.cast(getattr(lib, name), vp).value


def fsk_spec(lib, index: int) -> ctypes.POINTER(FskSpec):
    """&preset_fsk_specs[index] (FSK_V21CH2 for T.30)."""
    base = ctypes.addressof(FskSpec.in_dll(lib, "preset_fsk_specs"))
    return ctypes.cast(base + index * ctypes.sizeof(FskSpec), ctypes.POINTER(FskSpec))


def _i16(a: np.ndarray):
    return a.ctypes.data_as(i16p)


def _u8(a: np.ndarray):
    return a.ctypes.data_as(u8p)


# ---------------------------------------------------------------------------- G.711

def g711_encode(law: int, samples: np.ndarray) -> np.ndarray:
    lib = load()
    s = lib.g711_init(None, law)
    try:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        out = np.zeros(len(x), dtype=np.uint8)
        n = lib.g711_encode(s, _u8(out), _i16(x), len(x))
        return out[:n]
    finally:
        lib.g711_free(s)


def g711_decode(law: int, codes: np.ndarray) -> np.ndarray:
    lib = load()
    s = lib.g711_init(None, law)
    try:
        c = np.ascontiguousarray(codes, dtype=np.uint8)
        out = np.zeros(len(c), dtype=np.int16)
        n = lib.g711_decode(s, _i16(out), _u8(c), len(c))
        return out[:n]
    finally:
        lib.g711_free(s)


# ---------------------------------------------------------------------------- tones

def tone_tx(tone: int, n: int) -> np.ndarray:
    """n samples of spandsp's modem connect tone generator (TONE_CNG, TONE_ANS, ...)."""
    lib = load()
    s = lib.modem_connect_tones_tx_init(None, tone)
    try:
        out = np.zeros(n, dtype=np.int16)
        lib.modem_connect_tones_tx(s, _i16(out), n)
        return out
    finally:
        lib.modem_connect_tones_tx_free(s)


class ToneRx:
    """spandsp's modem connect tone detector; ``reports`` is [(tone, level, sample)]."""

    def __init__(self, tone: int):
        self.lib = load()
        self.reports: list[tuple[int, int, int]] = []
        self.samples = 0
        self._cb = TONE_REPORT(self._on_tone)
        self.s = self.lib.modem_connect_tones_rx_init(None, tone, self._cb, None)

    def _on_tone(self, _user, code, level, _delay):
        self.reports.append((code, level, self.samples))

    def rx(self, samples: np.ndarray, block: int = 160) -> None:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        for k in range(0, len(x), block):
            part = x[k:k + block]
            self.lib.modem_connect_tones_rx(self.s, _i16(part), len(part))
            self.samples += len(part)

    def detected(self) -> list[int]:
        return [code for code, _, _ in self.reports if code != TONE_NONE]

    def close(self) -> None:
        if self.s:
            self.lib.modem_connect_tones_rx_free(self.s)
            self.s = None


# ---------------------------------------------------------------------------- V.21 + HDLC

class V21HdlcTx:
    """spandsp's fsk_tx (V.21 channel 2) fed bit by bit by its hdlc_tx, all in C."""

    def __init__(self, level_dbm0: float | None = None, preamble_flags: int = 0):
        self.lib = lib = load()
        self.underflows = 0
        self._underflow = HDLC_UNDERFLOW(self._on_underflow)
        self.hdlc = lib.hdlc_tx_init(None, 0, 1, 0, ctypes.cast(self._underflow, vp), None)
        self.fsk = lib.fsk_tx_init(None, fsk_spec(lib, FSK_V21CH2),
                                   fn_ptr(lib, "hdlc_tx_get_bit"), self.hdlc)
        if level_dbm0 is not None:
            lib.fsk_tx_power(self.fsk, level_dbm0)
        if preamble_flags:
            lib.hdlc_tx_flags(self.hdlc, preamble_flags)

    def _on_underflow(self, _user):
        self.underflows += 1

    def tx(self, n: int) -> np.ndarray:
        out = np.zeros(n, dtype=np.int16)
        got = self.lib.fsk_tx(self.fsk, _i16(out), n)
        return out[:got]

    def send(self, frames, block: int = 40, tail_bits: int = 16,
             limit_s: float = 60.0) -> np.ndarray:
        """The samples of ``frames`` sent in one carrier: spandsp's hdlc_tx takes a frame
        when it has room; once it reports an underflow after the last one, ``tail_bits``
        more bits (flags) go out and the carrier stops."""
        parts = []
        total = 0
        pending = list(frames)
        while total < limit_s * 8000:
            while pending and self.lib.hdlc_tx_frame(self.hdlc, pending[0], len(pending[0])) == 0:
                pending.pop(0)
                self.underflows = 0
            if not pending and self.underflows:
                parts.append(self.tx(tail_bits * 8000 // 300))
                break
            out = self.tx(block)
            parts.append(out)
            total += len(out)
        else:
            raise RuntimeError("spandsp fsk_tx did not end its carrier")
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)

    def close(self) -> None:
        if self.fsk:
            self.lib.fsk_tx_free(self.fsk)
            self.lib.hdlc_tx_free(self.hdlc)
            self.fsk = self.hdlc = None


class V21HdlcRx:
    """spandsp's fsk_rx (V.21 channel 2, synchronous) putting bits into its hdlc_rx.

    ``frames`` is [(bytes without FCS, ok, sample index)], bad-FCS frames included.
    The carrier cut-off is T.30's -43 dBm0 (§5.1.1) unless told otherwise: fsk_rx's own
    preset for V.21 ignores signals below about -30 dBm0."""

    def __init__(self, cutoff_dbm0: float | None = -43.0):
        self.lib = lib = load()
        self.frames: list[tuple[bytes, bool, int]] = []
        self.samples = 0
        self._cb = HDLC_FRAME(self._on_frame)
        self.hdlc = lib.hdlc_rx_init(None, 0, 1, 1, self._cb, None)
        self.fsk = lib.fsk_rx_init(None, fsk_spec(lib, FSK_V21CH2), FSK_FRAME_MODE_SYNC,
                                   fn_ptr(lib, "hdlc_rx_put_bit"), self.hdlc)
        if cutoff_dbm0 is not None:
            lib.fsk_rx_signal_cutoff(self.fsk, cutoff_dbm0)

    def _on_frame(self, _user, pkt, length, ok):
        if length >= 0:       # negative lengths are status reports (carrier, framing)
            self.frames.append((ctypes.string_at(pkt, length), bool(ok), self.samples))

    def rx(self, samples: np.ndarray, block: int = 160) -> None:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        for k in range(0, len(x), block):
            part = x[k:k + block]
            self.lib.fsk_rx(self.fsk, _i16(part), len(part))
            self.samples += len(part)

    def good(self) -> list[bytes]:
        return [f for f, ok, _ in self.frames if ok]

    def close(self) -> None:
        if self.fsk:
            self.lib.fsk_rx_free(self.fsk)
            self.lib.hdlc_rx_free(self.hdlc)
            self.fsk = self.hdlc = None


class V21BitsTx:
    """spandsp's fsk_tx (V.21 channel 2) sending given bits (then marks) from Python."""

    def __init__(self, bits, level_dbm0: float | None = None, channel: int = FSK_V21CH2):
        self.lib = lib = load()
        self.bits = [int(b) & 1 for b in bits]
        self.pos = 0
        self._get = GET_BIT(self._get_bit)
        self.fsk = lib.fsk_tx_init(None, fsk_spec(lib, channel), ctypes.cast(self._get, vp), None)
        if level_dbm0 is not None:
            lib.fsk_tx_power(self.fsk, level_dbm0)

    def _get_bit(self, _user):
        if self.pos < len(self.bits):
            self.pos += 1
            return self.bits[self.pos - 1]
        return 1

    def samples(self) -> np.ndarray:
        """The samples of all the bits (and one bit time more)."""
        n = (len(self.bits) + 1) * 8000 // 300
        out = np.zeros(n, dtype=np.int16)
        got = self.lib.fsk_tx(self.fsk, _i16(out), n)
        return out[:got]

    def close(self) -> None:
        if self.fsk:
            self.lib.fsk_tx_free(self.fsk)
            self.fsk = None


def v21_rx_bits(samples: np.ndarray, channel: int = FSK_V21CH2, block: int = 160,
                cutoff_dbm0: float | None = -43.0) -> np.ndarray:
    """The bits spandsp's fsk_rx (synchronous mode) demodulates from ``samples``."""
    lib = load()
    bits: list[int] = []

    def put(_user, bit):
        if bit >= 0:              # negative values are status reports
            bits.append(bit)

    cb = PUT_BIT(put)
    s = lib.fsk_rx_init(None, fsk_spec(lib, channel), FSK_FRAME_MODE_SYNC, ctypes.cast(cb, vp), None)
    if cutoff_dbm0 is not None:
        lib.fsk_rx_signal_cutoff(s, cutoff_dbm0)
    try:
        x = np.ascontiguousarray(samples, dtype=np.int16)
        for k in range(0, len(x), block):
            part = x[k:k + block]
            lib.fsk_rx(s, _i16(part), len(part))
    finally:
        lib.fsk_rx_free(s)
    return np.array(bits, dtype=np.uint8)


def require(harness: str):
    """The modem harness module ``harness`` (``spandsp_psk``, ``spandsp_v17`` ...) for a test
    module, with tests/audio and benchmarks/ put on sys.path (the modem benchmarks and the
    impairments the tests share); the calling module is skipped, with the reason, when
    libspandsp cannot be loaded."""
    here = os.path.dirname(os.path.abspath(__file__))
    for path in (os.path.join(here, "..", "audio"), os.path.join(here, "..", "..", "benchmarks")):
        if path not in sys.path:
            sys.path.insert(0, path)
    module = importlib.import_module(harness)
    if module.load() is None:
        import pytest
        pytest.skip(unavailable_reason(), allow_module_level=True)
    return module
