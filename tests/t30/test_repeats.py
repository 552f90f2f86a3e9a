"""A post-page command repeated because our answer was lost gets the same answer
again (T.30 §5.3.6.1.4, Annex A), in every state where the repeat can arrive:
non-ECM MPS/EOP/EOM, ECM PPS-MPS/EOP/EOM and PPS-NULL. Our MCF is dropped once
(the repeat arrives while we wait for data, DCN, or a new DCS) or twice (after EOM
the second repeat arrives once we are sending DIS again)."""
from __future__ import annotations

import pytest

from xmfax.t30 import T30Config
from xmfax.t30.fcf import FCF
from xmfax.t30.pair import Faults, frame_fault

from .t30util import call, page, same_image
from .test_ecm_assembly import dense_page


def names(line, side):
    return [w for _, s, w in line.transcript if s == side]


CASES = {
    "MPS": [page(1, rows=100), page(2, rows=100)],
    "EOP": [page(3, rows=100)],
    "EOM": [[page(4, rows=100)], [page(5, rows=100)]],
}


def flat(docs):
    return [p for d in docs for p in d] if isinstance(docs[0], list) else list(docs)


@pytest.mark.parametrize("times", [1, 2])
@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
@pytest.mark.parametrize("command", ["MPS", "EOP", "EOM"])
def test_repeated_post_page_command_is_answered_again(command, ecm, times):
    docs = CASES[command]
    cfg = T30Config(ecm=ecm)
    tx, rx, line = call(cfg, cfg, pages=docs,
                        faults=Faults(frame=frame_fault("b", FCF.MCF, "drop", times=times)))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    sent = flat(docs)
    assert len(rx.result.received_pages) == len(sent)       # the repeat made no second copy
    assert all(same_image(a, b) for a, b in zip(sent, rx.result.received_pages))
    if ecm:      # one block a page: one PPS a page, plus the repeats
        assert names(line, "a").count("PPS") == len(sent) + times
    else:
        assert names(line, "a").count(command) == 1 + times
    assert names(line, "b").count("MCF") == len(sent) + times    # each repeat answered again


@pytest.mark.parametrize("times", [1, 2])
def test_repeated_pps_null_is_answered_again(times):
    pg = dense_page(6, rows=1400)           # several 64-octet blocks: PPS-NULL between them
    cfg = T30Config(ecm_frame_size=64)
    tx, rx, line = call(cfg, T30Config(), pages=[pg],
                        faults=Faults(frame=frame_fault("b", FCF.MCF, "drop", times=times)))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert len(rx.result.received_pages) == 1 and same_image(pg, rx.result.received_pages[0])


@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
def test_repeated_eom_after_we_went_back_to_dis_is_answered(ecm):
    """A sender slow to repeat (T4 7 s) repeats EOM after our T2 sent us back to
    phase B (sending DIS): the repeat still gets MCF, and the call goes on."""
    from xmfax.t30 import Timers
    docs = CASES["EOM"]
    tx_cfg = T30Config(ecm=ecm, timers=Timers(t4=7.0))
    tx, rx, line = call(tx_cfg, T30Config(ecm=ecm), pages=docs,
                        faults=Faults(frame=frame_fault("b", FCF.MCF, "drop", times=1)))
    b = [w for _, s, w in line.transcript if s == "b"]
    assert b[:5] == ["DIS", "CFR", "MCF", "DIS", "MCF"]  # the repeat was answered in phase B
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert all(same_image(a, b) for a, b in zip(flat(docs), rx.result.received_pages))


@pytest.mark.parametrize("ecm", [False, True], ids=["non-ecm", "ecm"])
def test_late_cfr_to_a_repeated_dcs_is_ignored(ecm):
    """Our DCS went unanswered for T4 and was repeated; the far end's answer to the first
    copy comes only after its answer to the repeat, once we are sending the page (an
    overloaded T.38 path showed this). That late CFR answers a command of ours: it is
    ignored, the fax goes through, and nothing is counted twice (issue #11)."""
    pg = page(7, rows=100)
    cfg = T30Config(ecm=ecm)
    tx, rx, line = call(cfg, cfg, pages=[pg],
                        faults=Faults(frame=frame_fault("b", FCF.CFR, "delay", times=1), duplicate_delay=10.8))
    a, b = names(line, "a"), names(line, "b")
    assert a.count("DCS") == 2 and b.count("CFR") == 2        # the DCS was repeated, both answered
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert len(rx.result.received_pages) == 1 and same_image(pg, rx.result.received_pages[0])
    bad = [e for e in tx.events() if type(e).__name__ == "BadFrame"]
    assert sum("late CFR" in e.reason for e in bad) == 1, bad
