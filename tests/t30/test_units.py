"""Unit tests: negotiation, the rate ladder, TCF judging, the transition table, ECM bookkeeping."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xmfax.errors import LocalProtocolError, RemoteProtocolError
from xmfax.page import Resolution
from xmfax.t30 import T30Config
from xmfax.t30 import capabilities as caps
from xmfax.t30 import frames as F
from xmfax.t30.config import TCFCheck
from xmfax.t30.ecm import RxBlock, TxBlock, cut
from xmfax.t30.modem import Family, Modulation
from xmfax.t30.states import SPEC, TABLE, Input, State, fire
from xmfax.t30.tcf import TCFChecker, tcf_bytes

from .t30util import page


def test_fallback_order():
    allowed = caps.allowed_modulations(T30Config(), F.DIS())
    assert allowed[0] is Modulation.V17_14400
    seq, m = [], allowed[0]
    while m is not None:
        seq.append(m)
        m = caps.next_lower(m, allowed)
    assert seq == list(caps.FALLBACK_ORDER)
    only29 = caps.allowed_modulations(T30Config(), F.DIS(modems=frozenset({Family.V27TER, Family.V29})))
    assert only29[0] is Modulation.V29_9600
    assert caps.allowed_modulations(T30Config(max_rate=4800), F.DIS())[0] is Modulation.V27TER_4800


caps_st = st.builds(
    F.DIS,
    modems=st.sampled_from([frozenset({Family.V27TER}), frozenset({Family.V27TER, Family.V29}),
                            frozenset({Family.V27TER, Family.V29, Family.V17})]),
    resolutions=st.sets(st.sampled_from([Resolution.FINE, Resolution.SUPERFINE, Resolution.R300])).map(
        lambda s: frozenset(s | {Resolution.STANDARD})),
    compressions=st.sets(st.sampled_from(["mr", "mmr"])).map(lambda s: frozenset(s | {"mh"})),
    max_width=st.sampled_from(F.WIDTHS), min_scan_ms=st.sampled_from([0, 5, 10, 20, 40]),
    scan_halves=st.booleans(), ecm=st.booleans())


@given(remote=caps_st, res=st.sampled_from([Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE]),
       width=st.sampled_from(F.WIDTHS), ecm=st.booleans(), max_rate=st.sampled_from([2400, 9600, 14400]))
def test_dcs_is_always_within_the_far_ends_dis(remote, res, width, ecm, max_rate):
    """Whatever both ends offer, the DCS we choose passes the far end's own check."""
    if remote.scan_halves and remote.min_scan_ms in (0, 5):
        return
    remote = F.DIS.decode(remote.encode())          # as it arrives on the wire
    cfg = T30Config(ecm=ecm, max_rate=max_rate)
    p = page(1, rows=20, res=res, width=res.widths[width])
    try:
        fitted = caps.fit_page(p, remote, cfg)
    except LocalProtocolError:
        return
    allowed = caps.allowed_modulations(cfg, remote)
    for m in allowed:
        dcs = caps.choose_dcs(cfg, remote, fitted, m)
        caps.check_dcs(remote, F.DCS.decode(dcs.encode()))
        assert dcs.modulation.bit_rate <= max_rate
        assert dcs.compression in remote.compressions and dcs.compression in cfg.compressions
        assert dcs.ecm == (ecm and remote.ecm)
        if not dcs.ecm:
            assert dcs.compression != "mmr"


def test_check_dcs_rejects_what_we_did_not_offer():
    local = caps.local_dis(T30Config(ecm=False, compressions=frozenset({"mh"}), max_width="a4"),
                           ready_to_transmit=False, ready_to_receive=True)
    with pytest.raises(RemoteProtocolError):
        caps.check_dcs(local, F.DCS(compression="mr"))
    with pytest.raises(RemoteProtocolError):
        caps.check_dcs(local, F.DCS(width="b4"))
    with pytest.raises(RemoteProtocolError):
        caps.check_dcs(local, F.DCS(compression="mmr", ecm=True))
    caps.check_dcs(local, F.DCS())


def test_scan_line_time_halves_at_fine():
    remote = F.DIS(min_scan_ms=20, scan_halves=True)
    cfg = T30Config(ecm=False)
    fine = caps.choose_dcs(cfg, remote, page(1, rows=4), Modulation.V29_9600)
    std = caps.choose_dcs(cfg, remote, page(1, rows=4, res=Resolution.STANDARD), Modulation.V29_9600)
    assert fine.min_scan_ms == 10 and std.min_scan_ms == 20
    assert caps.min_row_bits(fine) == 96
    assert caps.choose_dcs(T30Config(), F.DIS(min_scan_ms=20, ecm=True), page(1, rows=4),
                           Modulation.V29_9600).min_scan_ms == 0      # ECM: no minimum


def test_tcf_check():
    m = Modulation.V29_9600
    assert len(tcf_bytes(m)) == 1800                      # 1.5 s at 9600 bit/s
    good = TCFChecker(m, TCFCheck())
    good.feed(b"\xff\x13" + tcf_bytes(m)[:900])
    good.feed(tcf_bytes(m)[900:] + b"\x37\xff")         # junk at both ends is not counted
    assert good.verdict()[0]
    bad = TCFChecker(m, TCFCheck())
    data = bytearray(tcf_bytes(m))
    for k in range(0, len(data), 100):
        data[k] = 1
    bad.feed(bytes(data))
    ok, detail = bad.verdict()
    assert not ok and "longest zero run" in detail
    short = TCFChecker(m, TCFCheck())
    short.feed(bytes(600))                                # 0.5 s only
    assert not short.verdict()[0]


def test_transition_table():
    for s in State:
        if s not in (State.IDLE, State.DONE):
            assert fire(s, Input.DCN) is State.DONE and fire(s, Input.LINE_LOST) is State.DONE
        assert s in SPEC
    with pytest.raises(LocalProtocolError):
        fire(State.DONE, Input.DCS)
    # every state is reachable from IDLE
    seen, todo = {State.IDLE}, [State.IDLE]
    while todo:
        s = todo.pop()
        for (a, _), move in TABLE.items():
            if a is s and move.to is not None and move.to not in seen:
                seen.add(move.to)
                todo.append(move.to)
    assert seen == set(State)


def test_ecm_cut_and_blocks():
    data = bytes(range(256)) * 300                        # 76800 octets
    blocks = cut(data, 256)
    assert [len(b) for b in blocks] == [256, 44]
    assert b"".join(b"".join(b) for b in blocks) == data
    tx = TxBlock(blocks[1])
    assert len(tx.hdlc()) == 44 + 3
    tx.on_ppr({3, 7, 300})
    assert tx.pending == {3, 7} and tx.pprs == 1
    rx = RxBlock()
    for fr in TxBlock(blocks[1]).hdlc():
        rx.add(fr)
    assert rx.rcp and not rx.missing(44) and rx.data(44) == b"".join(blocks[1])
    with pytest.raises(RemoteProtocolError):
        rx.add(b"\xff\x03\x07\x00")
    with pytest.raises(RemoteProtocolError):
        RxBlock(64).add(F.fcd(0, bytes(65)))
