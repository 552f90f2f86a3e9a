"""Our DIS/DTC/DCS bits as spandsp's T.30 reads them (t30_decode_dis_dtc_dcs via ctypes).

spandsp is an independent implementation of Table 2/T.30: every field xmfax encodes
must decode there to the same meaning.
"""
from __future__ import annotations

import ctypes
import ctypes.util

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax.page import Resolution
from xmfax.t30 import frames as F
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import Family, Modulation

pytestmark = pytest.mark.interop


def _load():
    for name in ("libspandsp.so.2", ctypes.util.find_library("spandsp")):
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            continue
    return None


LIB = _load()
HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p)


class SpandspDecoder:
    """A spandsp T.30 state whose log receives t30_decode_dis_dtc_dcs's lines."""

    def __init__(self):
        lib = LIB
        lib.fax_init.restype = ctypes.c_void_p
        lib.fax_init.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.fax_free.argtypes = [ctypes.c_void_p]
        lib.fax_get_t30_state.restype = ctypes.c_void_p
        lib.fax_get_t30_state.argtypes = [ctypes.c_void_p]
        lib.t30_get_logging_state.restype = ctypes.c_void_p
        lib.t30_get_logging_state.argtypes = [ctypes.c_void_p]
        lib.span_log_set_level.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.span_log_set_message_handler.argtypes = [ctypes.c_void_p, HANDLER]
        lib.t30_decode_dis_dtc_dcs.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
        self.lines: list[str] = []
        self._handler = HANDLER(lambda level, text: self.lines.append(text.decode("ascii", "replace")))
        self.fax = lib.fax_init(None, 1)
        self.t30 = lib.fax_get_t30_state(self.fax)
        log = lib.t30_get_logging_state(self.t30)
        lib.span_log_set_level(log, 5)                 # SPAN_LOG_FLOW
        lib.span_log_set_message_handler(log, self._handler)

    def decode(self, frame: bytes) -> dict[str, str]:
        self.lines.clear()
        LIB.t30_decode_dis_dtc_dcs(self.t30, frame, len(frame))
        out = {}
        for line in "".join(self.lines).splitlines():
            if "= " in line and ":" in line:
                field, _, value = line.split("= ", 1)[1].partition(": ")
                out[field.strip()] = value.strip()
        return out


@pytest.fixture(scope="module")
def spandsp():
    if LIB is None:
        pytest.skip("libspandsp.so.2 not found (apt-get install libspandsp2)")
    return SpandspDecoder()


RATE_TEXT = {Modulation.V27TER_2400: "V.27ter 2400bps", Modulation.V27TER_4800: "V.27ter 4800bps",
             Modulation.V29_9600: "V.29 9600bps", Modulation.V29_7200: "V.29 7200bps",
             Modulation.V17_14400: "V.17 14400bps", Modulation.V17_12000: "V.17 12000bps",
             Modulation.V17_9600: "V.17 9600bps", Modulation.V17_7200: "V.17 7200bps"}
WIDTH_TEXT = {"a4": "215mm", "b4": "255mm", "a3": "303mm"}
LENGTH_TEXT = {"a4": "A4", "b4": "B4", "unlimited": "Unlimited"}


@settings(max_examples=150, deadline=None)
@given(mod=st.sampled_from(list(RATE_TEXT)), width=st.sampled_from(F.WIDTHS),
       length=st.sampled_from(F.LENGTHS), comp=st.sampled_from(["mh", "mr", "mmr"]),
       res=st.sampled_from([Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE]),
       scan=st.sampled_from([0, 5, 10, 20, 40]), small=st.booleans())
def test_dcs_as_spandsp_reads_it(spandsp, mod, width, length, comp, res, scan, small):
    ecm = comp == "mmr" or small
    dcs = F.DCS(modulation=mod, resolution=res, compression=comp, width=width, length=length,
                min_scan_ms=scan, ecm=ecm, ecm_frame_size=64 if small else 256)
    got = spandsp.decode(F.Frame(FCF.DCS, dcs.encode(), 1).encode())
    assert got["Selected data signalling rate"].replace(",", "") == RATE_TEXT[mod]
    assert got["Recording width"].startswith(WIDTH_TEXT[width])
    assert got["Recording length"].startswith(LENGTH_TEXT[length])
    assert got["Minimum scan line time"] == f"{scan}ms"
    assert got["2-D coding"] == ("Set" if comp == "mr" else "Not set")
    assert got.get("T.6 coding", "Not set") == ("Set" if comp == "mmr" else "Not set")
    assert got.get("Error correction mode (ECM)", "Non-ECM") == ("ECM" if ecm else "Non-ECM")
    if ecm:
        assert got["Frame size"] == ("64 octets" if small else "256 octets")
    assert got["R8x7.7lines/mm and/or 200x200pels/25.4mm"] == ("Set" if res is Resolution.FINE else "Not set")
    assert got.get("R8x15.4lines/mm", "Not set") == ("Set" if res is Resolution.SUPERFINE else "Not set")
    assert got["Receive fax"] == "Set"


@settings(max_examples=100, deadline=None)
@given(modems=st.sampled_from([frozenset({Family.V27TER}), frozenset({Family.V27TER, Family.V29}),
                               frozenset({Family.V27TER, Family.V29, Family.V17})]),
       width=st.sampled_from(F.WIDTHS), length=st.sampled_from(F.LENGTHS),
       scan=st.sampled_from([(0, False), (5, False), (10, False), (20, False), (40, False),
                             (10, True), (20, True), (40, True)]),
       ecm=st.booleans(), poll=st.booleans(), mr=st.booleans())
def test_dis_as_spandsp_reads_it(spandsp, modems, width, length, scan, ecm, poll, mr):
    comps = {"mh"} | ({"mr"} if mr else set()) | ({"mmr"} if ecm else set())
    dis = F.DIS(ready_to_transmit=poll, modems=modems, compressions=frozenset(comps), max_width=width,
                max_length=length, min_scan_ms=scan[0], scan_halves=scan[1], ecm=ecm)
    got = spandsp.decode(F.Frame(FCF.DIS, dis.encode(), 0).encode())
    rates = got["Supported data signalling rates"]
    assert ("V.17" in rates) == (Family.V17 in modems)
    assert ("V.29" in rates) == (Family.V29 in modems)
    w = got["Recording width"]
    assert ("303mm" in w) == (width == "a3") and ("255mm" in w) == (width != "a4")
    ln = got["Recording length"]
    assert ("Unlimited" in ln) == (length == "unlimited") and ("B4" in ln) == (length == "b4")
    scan_text = got["Receiver's minimum scan line time"]
    assert scan_text.startswith(f"{scan[0]}ms")
    assert ("1/2" in scan_text) == scan[1]
    assert got.get("Error correction mode (ECM)", "Non-ECM") == ("ECM" if ecm else "Non-ECM")
    assert got["Ready to transmit a fax document (polling)"] == ("Set" if poll else "Not set")
    assert got["2-D coding"] == ("Set" if mr else "Not set")
