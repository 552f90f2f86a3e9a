"""Whole xmfax<->xmfax calls over T.38 on a fake clock, with network faults."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, run_terminals, test_pages as make_pages  # noqa: E402

session_mod = pytest.importorskip("xmfax.t30.session", reason="the T.30 Session is not built yet")

from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t38.config import EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF, T38Config  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402


def call(net, *, ecm=True, paced=True, cfg=None, pages=2, udptl=True):
    pg = make_pages(pages)
    cfg = (cfg or T38Config()).replace(paced=paced)
    sa = session_mod.Session(T30Config(ecm=ecm), calling=True, pages=pg)
    sb = session_mod.Session(T30Config(ecm=ecm), calling=False, receive=True)
    a, b = T38Terminal(sa, cfg, udptl=udptl), T38Terminal(sb, cfg, udptl=udptl)
    run_terminals(a, b, net, use_udptl=udptl)
    return pg, sa, sb, a, b


def assert_delivered(pg, sa, sb):
    assert sa.result.status == "success", (sa.result.reason, sa.result.detail)
    assert sb.result.status == "success", (sb.result.reason, sb.result.detail)
    assert len(sb.result.received_pages) == len(pg)
    for p, q in zip(pg, sb.result.received_pages):
        assert np.array_equal(p.image, q.image)


@pytest.mark.parametrize("ecm", [True, False])
@pytest.mark.parametrize("paced", [True, False])
def test_clean_calls(ecm, paced):
    assert_delivered(*call(Network(), ecm=ecm, paced=paced)[:3])


def test_direct_ifp_without_udptl():
    assert_delivered(*call(Network(), udptl=False)[:3])


@pytest.mark.parametrize("ec", [EC_REDUNDANCY, EC_FEC])
@pytest.mark.parametrize("ecm", [True, False])
def test_loss_duplication_reordering_jitter(ec, ecm):
    net = Network(loss=0.05, duplicate=0.05, jitter=0.030, seed=3)
    cfg = T38Config(udp_ec=ec, redundancy_depth=3, fec_span=2, fec_entries=3)
    pg, sa, sb, a, b = call(net, ecm=ecm, cfg=cfg)
    assert_delivered(pg, sa, sb)
    rs = b._receiver.stats
    assert rs.duplicates > 0 and (rs.recovered_redundancy + rs.recovered_fec) > 0


def test_local_tcf():
    assert_delivered(*call(Network(), cfg=T38Config(rate_management=RATE_LOCAL_TCF), ecm=False)[:3])


def test_version_3_and_fill_bit_removal():
    assert_delivered(*call(Network(), cfg=T38Config(version=3, fill_bit_removal=True), ecm=False)[:3])


def test_regular_indicators():
    pg, sa, sb, a, b = call(Network(), cfg=T38Config(indicator_interval_ms=500))
    assert_delivered(pg, sa, sb)
    assert a.stats.indicators_repeated > 0 and b.stats.indicators_repeated > 0


def test_total_loss_ends_with_a_reason_not_a_hang():
    pg, sa, sb, a, b = call(Network(loss=1.0), pages=1)
    assert sa.result.status == "failure" and sa.result.reason is not None


def test_heavy_loss_without_ec_fails_or_succeeds_cleanly():
    net = Network(loss=0.15, seed=9)
    pg, sa, sb, a, b = call(net, cfg=T38Config(udp_ec=EC_NONE), pages=1)
    assert sa.done and sb.done
    assert sa.result.status in ("success", "failure")


class _Capped(Network):
    """A network that records the largest datagram it carried."""

    largest: int = 0

    def send(self, src, datagram, now):
        self.largest = max(self.largest, len(datagram))
        super().send(src, datagram, now)


@pytest.mark.parametrize("max_datagram", [24, 72, 176])
@pytest.mark.parametrize("paced", [True, False])
@pytest.mark.parametrize("ecm", [True, False])
def test_small_max_datagram(max_datagram, paced, ecm):
    # A far end's SDP may say T38FaxMaxDatagram:176 (sipp's T.38 offers do), or less: every
    # frame, ECM's 256-octet ones too, must then go in pieces that fit, never raise (issue #11)
    net = _Capped()
    cfg = T38Config(max_datagram=max_datagram, redundancy_depth=2)
    assert_delivered(*call(net, ecm=ecm, paced=paced, cfg=cfg, pages=1)[:3])
    assert 0 < net.largest <= max_datagram
