"""T38MaxBitRate and T38FaxMaxBuffer are enforced, not only advertised (issue #10, finding 6)."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, run_terminals, test_pages as make_pages  # noqa: E402
from test_terminal_ifp import Scripted, sent  # noqa: E402

from xmfax.t30 import modem as M  # noqa: E402
from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.ifp import DataPacket, decode_ifp  # noqa: E402
from xmfax.t38.terminal import MODULATION, T38Terminal  # noqa: E402
from xmfax.t38.udptl import decode_udptl  # noqa: E402


def test_session_faster_than_max_bit_rate_is_refused():
    cfg = T38Config(max_bit_rate=9600)
    with pytest.raises(ValueError, match="T38MaxBitRate"):
        T38Terminal(Session(T30Config(), calling=True, pages=make_pages(1)), cfg)
    limited = cfg.limit_t30(T30Config())
    assert limited.max_rate == 9600 and cfg.limit_t30(limited) is limited
    T38Terminal(Session(limited, calling=True, pages=make_pages(1)), cfg)


class Recording(Network):
    def __init__(self):
        super().__init__()
        self.packets = []

    def send(self, src, datagram, now):
        self.packets.append(decode_ifp(decode_udptl(datagram).primary))
        super().send(src, datagram, now)


@pytest.mark.parametrize("ecm", [True, False])
def test_call_stays_within_max_bit_rate(ecm):
    cfg = T38Config(max_bit_rate=7200, paced=False)
    pages = make_pages(1)
    sa = Session(cfg.limit_t30(T30Config(ecm=ecm)), calling=True, pages=pages)
    sb = Session(cfg.limit_t30(T30Config(ecm=ecm)), calling=False, receive=True)
    net = Recording()
    run_terminals(T38Terminal(sa, cfg), T38Terminal(sb, cfg), net)
    assert sa.result.status == "success" and np.array_equal(sb.result.received_pages[0].image, pages[0].image)
    rates = {MODULATION[p.data_type].bit_rate for p in net.packets if type(p) is DataPacket}
    assert rates and max(rates) <= 7200


def test_paced_data_packets_fit_max_buffer():
    s = Scripted([M.SendData(M.Modulation.V17_14400, b"\x01" * 2000),
                  M.SendHDLC((bytes(range(60)),), M.Modulation.V17_14400)])
    term = T38Terminal(s, T38Config(paced=True, chunk_ms=40, max_buffer=20), udptl=False)
    term.start(0.0)
    pk = []
    while len([e for _, e in s.got if e == M.SendComplete()]) < 2:
        term.handle_timer(term.next_timer())
        pk += sent(term)
    sizes = [len(f.data) for p in pk if type(p) is DataPacket for f in p.fields if f.data]
    assert sizes and max(sizes) == 20          # 40 ms at 14400 bit/s would be 72 octets
    # 0: no limit
    s = Scripted([M.SendData(M.Modulation.V17_14400, b"\x01" * 2000)])
    term = T38Terminal(s, T38Config(paced=True, chunk_ms=40, max_buffer=0), udptl=False)
    term.start(0.0)
    pk = []
    while not s.got:
        term.handle_timer(term.next_timer())
        pk += sent(term)
    assert max(len(f.data) for p in pk if type(p) is DataPacket for f in p.fields) == 72
