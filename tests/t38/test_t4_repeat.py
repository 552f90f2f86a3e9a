"""T4 over T.38 (issue #10, finding 5): an unanswered post-page command is repeated
T4 (3 s +-15 %) after it ended, on a fake clock, also when only part of the far end's
answer gets through. Before the fix a lone V.21 preamble indicator from the far end made
T.30 wait T2 from it instead (the PPS was repeated 6-11 s after it ended)."""
from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))
from calls import Network, run_terminals, test_pages as make_pages  # noqa: E402

from xmfax.t30.config import T30Config  # noqa: E402
from xmfax.t30.session import Session  # noqa: E402
from xmfax.t38.config import T38Config  # noqa: E402
from xmfax.t38.ifp import Indicator, IndicatorPacket, decode_ifp  # noqa: E402
from xmfax.t38.terminal import T38Terminal  # noqa: E402
from xmfax.t38.udptl import decode_udptl  # noqa: E402

PREAMBLE = IndicatorPacket(Indicator.V21_PREAMBLE)
NO_SIGNAL = IndicatorPacket(Indicator.NO_SIGNAL)


class CutAfterPage(Network):
    """Once the sender has sent high-speed data and then starts a V.21 signal (its
    post-page command), the receiver's datagrams stop getting through, except what
    ``keep`` lets pass: "none", "preamble" (its V.21 preamble indicators) or "first"
    (those and the first data packet after each)."""

    def __init__(self, keep: str):
        super().__init__()
        self.keep = keep
        self.cut = False
        self.high_speed = False
        self.first = False
        self.sent: list[tuple[float, object]] = []      # the sender's packets, timed

    def send(self, src, datagram, now):
        pkt = decode_ifp(decode_udptl(datagram).primary)
        if src == 0:
            self.sent.append((now, pkt))
            if type(pkt) is IndicatorPacket and pkt.indicator not in (Indicator.V21_PREAMBLE, Indicator.NO_SIGNAL,
                                                                   Indicator.CNG):
                self.high_speed = True
            elif pkt == PREAMBLE and self.high_speed:
                self.cut = True
        elif self.cut:
            if pkt == PREAMBLE and self.keep != "none":
                self.first = self.keep == "first"
            elif self.first and type(pkt) is not IndicatorPacket:
                self.first = False
            else:
                return
        super().send(src, datagram, now)


def command_gaps(sent):
    """Seconds from the end of each V.21 command after the page (its no-signal) to the
    start of the next (its preamble)."""
    t_hs = next(t for t, p in sent if type(p) is IndicatorPacket and p.indicator.name.startswith(("V17", "V29")))
    later = [(t, p) for t, p in sent if t > t_hs]
    # a preamble repeated right after itself (T38Config.end_repeats) is the same signal
    starts = [t for i, (t, p) in enumerate(later) if p == PREAMBLE and (i == 0 or later[i - 1][1] != PREAMBLE)]
    gaps = []
    for a, b in zip(starts, starts[1:]):
        end = max(t for t, p in later if p == NO_SIGNAL and a < t < b)
        gaps.append(b - end)
    return gaps


@pytest.mark.parametrize("keep", ["none", "preamble", "first"])
@pytest.mark.parametrize("ecm", [True, False])
def test_unanswered_post_page_command_repeats_after_t4(ecm, keep):
    net = CutAfterPage(keep)
    cfg = T38Config(paced=True)
    sa = Session(T30Config(ecm=ecm), calling=True, pages=make_pages(1))
    sb = Session(T30Config(ecm=ecm), calling=False, receive=True)
    run_terminals(T38Terminal(sa, cfg), T38Terminal(sb, cfg), net)
    assert sa.result.status == "failure"          # nothing confirmed the page: never success
    gaps = command_gaps(net.sent)
    assert len(gaps) >= 2, gaps
    for g in gaps:
        # T4 3 s +-15 % after the command ended (the 75 ms gap before a transmission inside it)
        assert 3.0 * 0.85 <= g <= 3.0 * 1.15, gaps
