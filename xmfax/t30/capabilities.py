"""Negotiation: our DIS from the config, a DCS chosen within the far end's DIS,
the check that a received DCS is within our DIS, and the rate fallback order.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import LocalProtocolError, RemoteProtocolError
from ..page import Page, Resolution
from .config import _FALLBACK, T30Config
from .frames import DCS, DIS, LENGTHS, WIDTHS
from .modem import Family, Modulation

# T.30 leaves the order of rates to try after FTT (or RTP/RTN) to the sender.
# FALLBACK_ORDER (the default, T30Config.fallback_order): each modem family down to
# its lowest rate before the next family. FALLBACK_ORDER_BY_RATE: by bit rate, V.17
# before V.29 at the same rate (the order TSB-85's scripts, written against spandsp,
# expect: V.17 9600 -> V.29 9600 -> V.17 7200 -> V.29 7200).
FALLBACK_ORDER = _FALLBACK
FALLBACK_ORDER_BY_RATE = (
    Modulation.V17_14400, Modulation.V17_12000, Modulation.V17_9600, Modulation.V29_9600,
    Modulation.V17_7200, Modulation.V29_7200,
    Modulation.V27TER_4800, Modulation.V27TER_2400,
)
COMPRESSION_PREFERENCE = ("mmr", "mr", "mh")
# resolutions one can reach from another by dropping rows (same x, y divided by 2 or 4)
_COARSER = {
    Resolution.SUPERFINE: (Resolution.FINE, Resolution.STANDARD),
    Resolution.FINE: (Resolution.STANDARD,),
    Resolution.R400: (),
    Resolution.ULTRAFINE: (),
}


# Table 2/T.30 bits 11-14: the modem families a DIS/DTC can offer, largest first.
# There is no code for V.17 without V.29 (1,1,0,1 is V.27 ter, V.29 and V.17).
_DIS_FAMILY_SETS = (
    frozenset({Family.V27TER, Family.V29, Family.V17}),
    frozenset({Family.V27TER, Family.V29}),
    frozenset({Family.V27TER}),
)


def dis_modems(config: T30Config) -> frozenset:
    """The modem families our DIS offers, and so the ones a far end's DCS may select.

    The largest Table 2/T.30 code whose every family we can receive: a family counts
    when it is in ``config.modems`` and has a rate within ``max_rate``. A configuration
    with V.17 but not V.29 (no Table 2/T.30 code says so) offers V.27 ter only: offering
    V.17 would offer V.29 too, and a DCS for V.29 is then one we could not receive.
    (As a sender such a configuration still uses V.17 when the far end offers it.)
    The DIS cannot say a rate limit within a family: a DCS at any rate of an offered
    family is accepted; ``max_rate`` limits only what we choose to send."""
    usable = {m.family for m in Modulation
              if m is not Modulation.V21 and m.family in config.modems and m.bit_rate <= config.max_rate}
    return next(s for s in _DIS_FAMILY_SETS if s <= usable or s == _DIS_FAMILY_SETS[-1])


def local_dis(config: T30Config, *, ready_to_transmit: bool, ready_to_receive: bool) -> DIS:
    """Our DIS/DTC (Table 2/T.30) from the configuration."""
    return DIS(ready_to_transmit=ready_to_transmit, ready_to_receive=ready_to_receive,
               modems=dis_modems(config), resolutions=frozenset(config.resolutions),
               compressions=frozenset(c for c in config.compressions if c != "mmr" or config.ecm),
               max_width=config.max_width, max_length=config.max_length,
               min_scan_ms=config.min_scan_line_ms, scan_halves=False,
               ecm=config.ecm, ecm_64_preferred=config.ecm_frame_size == 64,
               subaddressing=True, password=bool(config.password),
               selective_polling=False)    # SEP is received and reported, not used to choose


def allowed_modulations(config: T30Config, remote: DIS) -> list[Modulation]:
    """Every modulation both ends can use within ``max_rate``, in the config's
    fallback order (fastest first)."""
    fams = set(config.modems) & set(remote.modems)
    return [m for m in config.fallback_order if m.family in fams and m.bit_rate <= config.max_rate]


def next_lower(current: Modulation, allowed: list[Modulation]) -> Modulation | None:
    """The rate after ``current`` in ``allowed`` (an allowed_modulations list);
    None when there is none left."""
    if current not in allowed:
        return allowed[0] if allowed else None
    i = allowed.index(current)
    return allowed[i + 1] if i + 1 < len(allowed) else None


def width_name(page: Page) -> str | None:
    for name, px in page.resolution.widths.items():
        if px == page.width:
            return name
    return None


def length_name(page: Page) -> str:
    """The recording length a page needs (ISO A4 297 mm, B4 364 mm)."""
    mm = page.rows / (page.resolution.y_dpi / 25.4)
    if mm <= 300:
        return "a4"
    if mm <= 368:
        return "b4"
    return "unlimited"


def fit_page(page: Page, remote: DIS, config: T30Config) -> Page:
    """The page as it will be sent: at a resolution the far end accepts.

    A page at a finer vertical resolution than the far end takes is sent at a
    coarser one by keeping every 2nd (or 4th) row. Raises LocalProtocolError when
    the page cannot be sent to this far end at all (width or resolution)."""
    ok = set(remote.resolutions) & set(config.resolutions)
    if page.resolution not in ok:
        for coarser in _COARSER.get(page.resolution, ()):
            if coarser in ok:
                step = round(page.resolution.y_dpi / coarser.y_dpi)
                page = Page(np.ascontiguousarray(page.image[::step]), coarser, page.source, dict(page.info))
                break
        else:
            raise LocalProtocolError(
                f"the far end does not accept {page.resolution.label} resolution "
                f"(it takes {', '.join(sorted(r.label for r in remote.resolutions))})")
    w = width_name(page)
    if w is None:
        raise LocalProtocolError(f"page width {page.width} is not a T.4 width at {page.resolution.label} "
                                 f"({page.resolution.widths})")
    if WIDTHS.index(w) > min(WIDTHS.index(remote.max_width), WIDTHS.index(config.max_width)):
        raise LocalProtocolError(f"page width {w.upper()} is wider than the far end accepts "
                                 f"({remote.max_width.upper()})")
    return page


def choose_dcs(config: T30Config, remote: DIS, page: Page, modulation: Modulation) -> DCS:
    """The DCS for sending ``page`` (already passed through fit_page) to a far end
    that sent ``remote``: always within both ends' capabilities."""
    ecm = config.ecm and remote.ecm
    comps = set(config.compressions) & set(remote.compressions)
    if not ecm:
        comps.discard("mmr")
    compression = next(c for c in COMPRESSION_PREFERENCE if c in comps | {"mh"})
    need = length_name(page)
    allowed_len = min(LENGTHS.index(remote.max_length), LENGTHS.index(config.max_length))
    length = need if LENGTHS.index(need) <= allowed_len else LENGTHS[allowed_len]
    if ecm:
        scan = 0                     # no minimum scan line time with ECM (T.4 Annex A: no fill)
    else:
        scan = remote.min_scan_ms
        if remote.scan_halves and page.resolution is not Resolution.STANDARD:
            scan //= 2
    frame_size = 64 if (config.ecm_frame_size == 64 or remote.ecm_64_preferred) else 256
    return DCS(modulation=modulation, resolution=page.resolution, compression=compression,
               width=width_name(page) or "a4", length=length, min_scan_ms=scan, ecm=ecm,
               ecm_frame_size=frame_size, receive=True)


def check_dcs(local: DIS, dcs: DCS) -> None:
    """RemoteProtocolError unless the far end's DCS is within our DIS (Table 2/T.30)."""
    if dcs.modulation.family not in local.modems:
        raise RemoteProtocolError(f"DCS selects {dcs.modulation}, which our DIS did not offer")
    if dcs.compression not in local.compressions:
        raise RemoteProtocolError(f"DCS selects {dcs.compression.upper()} coding, which our DIS did not offer")
    if dcs.ecm and not local.ecm:
        raise RemoteProtocolError("DCS selects ECM, which our DIS did not offer")
    if dcs.resolution not in local.resolutions:
        raise RemoteProtocolError(f"DCS selects {dcs.resolution.label} resolution, which our DIS did not offer")
    if WIDTHS.index(dcs.width) > WIDTHS.index(local.max_width):
        raise RemoteProtocolError(f"DCS selects width {dcs.width.upper()}, wider than our DIS offered")
    need = local.min_scan_ms
    if local.scan_halves and dcs.resolution is not Resolution.STANDARD:
        need //= 2                   # Table 2/T.30 bits 21-23: T7.7 = T3.85 / 2
    if not dcs.ecm and dcs.min_scan_ms < need:
        raise RemoteProtocolError(f"DCS selects a {dcs.min_scan_ms} ms scan line time, "
                                  f"below the {need} ms we need")


def min_row_bits(dcs: DCS) -> int:
    """Bits per coded row the sender must reach for the DCS's scan line time."""
    return math.ceil(dcs.min_scan_ms * dcs.modulation.bit_rate / 1000)


def mr_k(config: T30Config, resolution: Resolution) -> int:
    """MR K parameter (T.4 §4.2.1: 2 at standard, 4 at higher vertical resolutions)."""
    if config.mr_k is not None:
        return config.mr_k
    return 2 if resolution.y_dpi < 150 else 4
