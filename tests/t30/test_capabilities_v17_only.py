"""Our DIS and our check of the far end's DCS agree (Table 2/T.30 bits 11-14).

Table 2/T.30 has no DIS code for "V.27 ter and V.17" without V.29: 1,1,0,1 says
V.27 ter, V.29 and V.17. A configuration that allows V.17 but not V.29 therefore
advertises V.27 ter only (what it can accept), and accepts every DCS its DIS allows.
"""
from __future__ import annotations

import pytest

from xmfax.errors import RemoteProtocolError
from xmfax.page import Resolution
from xmfax.t30 import Session, T30Config
from xmfax.t30 import capabilities as caps
from xmfax.t30.frames import DCS, DIS
from xmfax.t30.modem import Family, Modulation
from xmfax.t30.result import Reason

from .t30util import call, page

V17_ONLY = T30Config(local_id="+1 555 0199", modems=frozenset({Family.V27TER, Family.V17}))


def _dcs(mod: Modulation) -> DCS:
    return DCS(modulation=mod, resolution=Resolution.STANDARD, compression="mh", width="a4",
               length="a4", min_scan_ms=20, ecm=False, ecm_frame_size=256, receive=True)


def _advertised(cfg: T30Config) -> DIS:
    """Our DIS as the far end decodes it from the octets on the line."""
    dis = caps.local_dis(cfg, ready_to_transmit=False, ready_to_receive=True)
    return DIS.decode(dis.encode())


CONFIGS = [
    T30Config(),
    V17_ONLY,
    T30Config(modems=frozenset({Family.V27TER, Family.V29})),
    T30Config(modems=frozenset({Family.V27TER})),
    T30Config(max_rate=4800),
    T30Config(max_rate=9600),
    T30Config(modems=frozenset({Family.V27TER, Family.V17}), max_rate=7200),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{sorted(f.value for f in c.modems)}@{c.max_rate}")
@pytest.mark.parametrize("mod", [m for m in Modulation if m is not Modulation.V21], ids=lambda m: m.name)
def test_dcs_accepted_exactly_when_the_dis_on_the_line_allows_it(cfg, mod):
    """Every DCS the DIS on the line allows is accepted; every other is refused."""
    local = caps.local_dis(cfg, ready_to_transmit=False, ready_to_receive=True)
    on_line = _advertised(cfg)
    assert on_line.modems == local.modems            # what we say is what we check against
    if mod.family in on_line.modems:
        caps.check_dcs(local, _dcs(mod))
    else:
        with pytest.raises(RemoteProtocolError):
            caps.check_dcs(local, _dcs(mod))


def test_v17_without_v29_advertises_v27ter_only():
    on_line = _advertised(V17_ONLY)
    assert on_line.modems == frozenset({Family.V27TER})
    assert caps.dis_modems(V17_ONLY) == frozenset({Family.V27TER})
    assert caps.dis_modems(T30Config()) == frozenset({Family.V27TER, Family.V29, Family.V17})


def test_v17_without_v29_still_sends_at_v17():
    """The sender's choice comes from the far end's DIS: V.17 stays usable."""
    tx, rx, _ = call(V17_ONLY, T30Config(local_id="+1 555 0100"), pages=[page(0)])
    assert tx.result.reason is Reason.OK and rx.result.reason is Reason.OK
    assert tx.result.modulation.startswith("V.17"), tx.result.modulation


@pytest.mark.parametrize("sender_modems", [frozenset({Family.V27TER, Family.V29}),
                                           frozenset({Family.V27TER, Family.V29, Family.V17})])
def test_v17_only_receiver_gets_pages_from_a_v29_sender(sender_modems):
    """Before the fix the receiver offered V.29 and refused the V.29 DCS (protocol error)."""
    tx_cfg = T30Config(local_id="+1 555 0100", modems=sender_modems)
    tx, rx, _ = call(tx_cfg, V17_ONLY, pages=[page(0), page(1)])
    assert rx.result.reason is Reason.OK, rx.result.text
    assert tx.result.reason is Reason.OK, tx.result.text
    assert len(rx.result.received_pages) == 2
    assert tx.result.modulation.startswith("V.27"), tx.result.modulation


def test_sessions_own_dis_follows_the_rule():
    s = Session(V17_ONLY, calling=False, receive=True)
    assert DIS.decode(s._local_dis.encode()).modems == frozenset({Family.V27TER})
