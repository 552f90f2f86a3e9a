"""Fault injection on the simulated line: each fault with its expected outcome."""
from __future__ import annotations

import pytest

from xmfax.t30 import PageRejected, Reason, Session, T30Config
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import Family
from xmfax.t30.pair import (Faults, Line, ecm_frame_fault, frame_fault, page_damage, silent_after,
                            tcf_errors_above)

from .t30util import call, page, same_image

NO_ECM = T30Config(ecm=False)


def names(line, side=None):
    return [w for _, s, w in line.transcript if side is None or s == side]


# ---------------------------------------------------------------- lost and damaged frames
@pytest.mark.parametrize("side,fcf,fate", [
    ("b", FCF.DIS, "drop"), ("b", FCF.DIS, "corrupt"),
    ("a", FCF.DCS, "drop"), ("a", FCF.DCS, "corrupt"),
    ("b", FCF.CFR, "drop"),
    ("a", FCF.MPS, "drop"), ("a", FCF.MPS, "corrupt"),
    ("b", FCF.MCF, "drop"), ("b", FCF.MCF, "corrupt"),
    ("a", FCF.EOP, "drop"), ("b", FCF.MCF, "drop"),
])
@pytest.mark.parametrize("ecm", [False, True])
def test_one_lost_or_damaged_frame_is_recovered(side, fcf, fate, ecm):
    pages = [page(i, rows=120) for i in range(3)]
    if ecm and fcf in (FCF.MPS, FCF.EOP):
        fcf = FCF.PPS
    tx, rx, line = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=pages,
                        faults=Faults(frame=frame_fault(side, fcf, fate)))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    # no page lost or doubled by the repeat
    assert len(rx.result.received_pages) == 3
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))


def test_damaged_command_gets_crp():
    tx, rx, line = call(NO_ECM, NO_ECM, pages=[page(1, rows=80), page(2, rows=80)],
                        faults=Faults(frame=frame_fault("a", FCF.MPS, "corrupt")))
    assert tx.result.ok and "CRP" in names(line, "b")


def test_every_dcs_lost_means_no_answer_to_dcs():
    tx, rx, line = call(NO_ECM, NO_ECM, faults=Faults(frame=frame_fault("a", FCF.DCS, "drop", times=99)))
    assert tx.result.reason is Reason.NO_RESPONSE_TO_DCS
    assert names(line, "a").count("DCS") == 3           # three tries (T.30 §5.4)


def test_every_mcf_lost_means_no_answer_to_the_page():
    tx, rx, line = call(NO_ECM, NO_ECM, faults=Faults(frame=frame_fault("b", FCF.MCF, "drop", times=99)))
    assert tx.result.reason is Reason.NO_RESPONSE_TO_PAGE and "page 1" in tx.result.detail
    assert names(line, "a").count("MPS") == 3


# ---------------------------------------------------------------- training
def test_tcf_errors_at_high_rates_fall_back():
    pages = [page(i, rows=100) for i in range(2)]
    tx, rx, line = call(NO_ECM, NO_ECM, pages=pages, faults=Faults(data=tcf_errors_above(7200)))
    assert tx.result.ok and rx.result.ok
    assert tx.result.modulation == "V.17 7200" and tx.result.fallbacks == 3
    assert names(line, "b").count("FTT") == 3


def test_fallback_through_v29_to_v27ter():
    tx, rx, line = call(NO_ECM, NO_ECM, pages=[page(1, rows=80)], faults=Faults(data=tcf_errors_above(4800)))
    assert tx.result.ok and tx.result.modulation == "V.27ter 4800"
    rates = [w.split()[1] + " " + w.split()[2] for w in names(line, "a") if w.startswith("data")][:-1]
    assert rates == ["V.17 14400", "V.17 12000", "V.17 9600", "V.17 7200", "V.29 9600", "V.29 7200",
                     "V.27ter 4800"]


def test_training_fails_at_every_rate():
    tx, rx, line = call(NO_ECM, NO_ECM, faults=Faults(data=tcf_errors_above(0)))
    assert tx.result.reason is Reason.TRAINING_FAILED
    assert tx.result.text.startswith("the far end rejected training at every rate")
    assert rx.result.status == "failure"


def test_max_rate_is_respected():
    tx, rx, _ = call(T30Config(ecm=False, max_rate=9600), NO_ECM, pages=[page(1, rows=50)])
    assert tx.result.modulation == "V.17 9600"


# ---------------------------------------------------------------- damaged page data (non-ECM)
def test_damaged_page_gets_rtn_and_is_sent_again():
    pages = [page(i, rows=300) for i in range(3)]
    tx, rx, line = call(NO_ECM, NO_ECM, pages=pages, faults=Faults(data=page_damage("a", {2}, every=15)))
    assert tx.result.ok and rx.result.ok
    assert "RTN" in names(line, "b")
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))


def test_page_cut_short_before_rtc_gets_rtn_never_mcf():
    """The carrier drops mid-page (a lost packet on an RTP line, a line hit): the data of
    page 2 stops halfway, without RTC. The rows that came are clean, but the page is not
    whole: RTN (T.4 §4.1.4), and the page sent again arrives whole."""
    pages = [page(i, rows=300) for i in range(3)]
    seen = [0]

    def cut(side, data, mod, n):
        if side != "a" or not data.strip(b"\x00"):
            return data                                   # TCF passes
        seen[0] += 1
        return data[: len(data) // 2] if seen[0] == 2 else data

    tx, rx, line = call(NO_ECM, NO_ECM, pages=pages, faults=Faults(data=cut))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert names(line, "b").count("RTN") == 1
    assert len(rx.result.received_pages) == 3
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))


def test_page_refused_three_times():
    pages = [page(i, rows=300) for i in range(3)]
    tx = Session(NO_ECM, calling=True, pages=pages)
    rx = Session(NO_ECM, calling=False, receive=True)
    Line(tx, rx, faults=Faults(data=page_damage("a", {2, 3, 4}, every=15))).run()
    assert tx.result.reason is Reason.PAGE_REFUSED
    assert tx.result.detail == "page 2 refused with RTN 3 times"
    assert len(rx.result.received_pages) == 1             # page 1 is kept
    assert sum(isinstance(e, PageRejected) for e in rx.events()) == 3


def test_lightly_damaged_page_gets_rtp():
    # a few bad rows: within the RTP limits, outside the MCF ones
    def hook(side, data, mod, n):
        if side == "a" and data.strip(b"\x00"):
            buf = bytearray(data)
            for k in range(200, len(buf) - 200, 150):
                buf[k] ^= 0xFF
            return bytes(buf)
        return data
    pages = [page(i, rows=400) for i in range(2)]
    tx, rx, line = call(NO_ECM, NO_ECM, pages=pages, faults=Faults(data=hook))
    resp = [p.response for p in rx.result.pages_received]
    assert "RTP" in resp and tx.result.ok
    assert all(p.bad_rows > 0 for p in rx.result.pages_received)


# ---------------------------------------------------------------- ECM
def test_ecm_ppr_resends_only_the_missing_frames():
    p = page(4, rows=700)
    tx, rx, line = call(T30Config(ecm_frame_size=64), T30Config(), pages=[p],
                        faults=Faults(frame=ecm_frame_fault("a", {1, 5}, times=1)))
    assert tx.result.ok and rx.result.ok and same_image(p, rx.result.received_pages[0])
    assert names(line, "b").count("PPR") == 1
    assert tx.result.retransmitted_frames == 2
    assert rx.result.pages_received[0].response == "MCF"


def test_ecm_four_pprs_then_ctc_at_a_lower_rate():
    p = page(4, rows=300)
    tx, rx, line = call(T30Config(), T30Config(), pages=[p],
                        faults=Faults(frame=ecm_frame_fault("a", {0}, times=4)))
    assert tx.result.ok and same_image(p, rx.result.received_pages[0])
    n = names(line)
    assert n.count("PPR") == 4 and "CTC" in n and "CTR" in n
    assert tx.result.modulation == "V.17 12000"


def test_ecm_eor_when_no_lower_rate():
    cfg = T30Config(modems=frozenset({Family.V27TER}), max_rate=2400)
    p = page(4, rows=300)
    tx, rx, line = call(cfg, T30Config(), pages=[p], faults=Faults(frame=ecm_frame_fault("a", {0}, times=99)))
    n = names(line)
    assert "EOR" in n and "ERR" in n
    # the page went with a hole in it: both ends say so
    assert tx.result.reason is Reason.ECM_FAILED and "EOR" in tx.result.detail
    assert rx.result.reason is Reason.ECM_FAILED
    assert len(rx.result.received_pages) == 1


def test_ecm_rnr_then_rr():
    """A receiver that holds reception answers RNR; the sender polls with RR until it is released."""
    tx = Session(T30Config(), calling=True, pages=[page(1, rows=100)])
    rx = Session(T30Config(), calling=False, receive=True)
    rx.hold(True, 0.0)
    line = Line(tx, rx)
    line.run(until=20.0)
    assert not tx.done
    rx.hold(False, line.now)
    line.run()
    n = names(line)
    assert "RNR" in n and "RR" in n and tx.result.ok and rx.result.ok
    assert n.count("RR") >= 2 and len(rx.result.received_pages) == 1


def test_ecm_rnr_forever_times_out_after_t5():
    tx = Session(T30Config(), calling=True, pages=[page(1, rows=100)])
    rx = Session(T30Config(), calling=False, receive=True)
    rx.hold(True, 0.0)
    line = Line(tx, rx)
    line.run()
    assert tx.result.reason is Reason.RNR_TIMEOUT
    assert 60 < tx.result.duration < 90


# ---------------------------------------------------------------- a far end that goes silent
def test_silent_receiver_no_dis():
    tx, rx, _ = call(NO_ECM, NO_ECM, faults=Faults(silent=silent_after("b", 0.0)))
    assert tx.result.reason is Reason.NO_DIS
    assert 35.0 <= tx.result.duration <= 36.0                 # T1


def test_silent_caller_no_dcs():
    tx, rx, line = call(NO_ECM, NO_ECM, faults=Faults(silent=silent_after("a", 0.0)))
    assert rx.result.reason is Reason.NO_DCS
    assert names(line, "b").count("DIS") == 3          # three tries, T4 apart (TSB-85 MRGX01)
    assert rx.result.duration < 35.0                    # and within T1


def test_receiver_silent_after_dis():
    tx, rx, _ = call(NO_ECM, NO_ECM, faults=Faults(silent=silent_after("b", 4.5)))
    assert tx.result.reason is Reason.NO_RESPONSE_TO_DCS


def test_sender_silent_after_dcs_no_tcf():
    tx, rx, _ = call(NO_ECM, NO_ECM, faults=Faults(silent=lambda s, t: s == "a" and t >= 5.5))
    assert rx.result.reason in (Reason.NO_TCF, Reason.NO_RESPONSE)
    assert rx.result.status == "failure"


@pytest.mark.parametrize("ecm", [False, True])
def test_receiver_silent_during_pages(ecm):
    tx, rx, _ = call(T30Config(ecm=ecm), T30Config(ecm=ecm), faults=Faults(silent=silent_after("b", 12.0)))
    assert tx.result.reason is Reason.NO_RESPONSE_TO_PAGE


@pytest.mark.parametrize("ecm", [False, True])
def test_sender_silent_after_page_two_keeps_pages(ecm):
    pages = [page(i, rows=200) for i in range(5)]
    tx, rx, line = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=pages,
                        faults=Faults(silent=silent_after("a", 16.0)))
    assert rx.result.status == "failure"
    assert rx.result.reason in (Reason.NO_PAGE, Reason.NO_POST_PAGE)
    got = rx.result.received_pages
    assert 1 <= len(got) < 5
    assert all(same_image(a, b) for a, b in zip(pages, got))


# ---------------------------------------------------------------- DCN at odd moments
@pytest.mark.parametrize("side,fcf,who,reason", [
    ("a", FCF.DCS, "rx", Reason.UNEXPECTED_DCN),
    ("b", FCF.CFR, "tx", Reason.UNEXPECTED_DCN),
    ("a", FCF.MPS, "rx", Reason.UNEXPECTED_DCN),
    ("b", FCF.DIS, "tx", Reason.UNEXPECTED_DCN),
])
def test_dcn_instead_of_a_frame(side, fcf, who, reason):
    pages = [page(i, rows=100) for i in range(3)]
    tx, rx, line = call(NO_ECM, NO_ECM, pages=pages, faults=Faults(frame=frame_fault(side, fcf, "hangup")))
    s = tx if who == "tx" else rx
    assert s.result.reason is reason
    assert s.done


def test_dcn_during_ecm_keeps_finished_pages():
    pages = [page(i, rows=100) for i in range(4)]
    tx, rx, line = call(T30Config(), T30Config(), pages=pages,
                        faults=Faults(frame=frame_fault("a", FCF.PPS, "hangup", skip=2)))
    assert rx.result.reason is Reason.UNEXPECTED_DCN and "page 3" in rx.result.detail
    assert len(rx.result.received_pages) == 2


def test_line_lost_mid_call():
    pages = [page(i, rows=100) for i in range(3)]
    tx = Session(NO_ECM, calling=True, pages=pages)
    rx = Session(NO_ECM, calling=False, receive=True)
    line = Line(tx, rx)
    line.run(until=15.0)
    from xmfax.t30.modem import LineLost
    rx.receive(LineLost("cable cut"), line.now)
    assert rx.done and rx.result.reason is Reason.LINE_LOST and "cable cut" in rx.result.detail
    assert 1 <= len(rx.result.received_pages) <= 2


def test_a_scan_line_over_5_s_drops_the_page():
    """T.4 §3: a coded row may take at most 5 s; past that the receiver keeps silent
    and the call fails with SCAN_LINE_TOO_LONG."""
    from xmfax import codecs
    from xmfax.t30 import frames as F
    from xmfax.t30.modem import (CarrierDown, CarrierUp, DataReceived, HDLCFrame, Modulation,
                                 SendHDLC)
    mod = Modulation.V27TER_2400
    rx = Session(NO_ECM, calling=False, receive=True)
    rx.start(0.0)
    dcs = F.DCS(modulation=mod, compression="mh", min_scan_ms=0, ecm=False)
    rx.receive(HDLCFrame(F.Frame(FCF.DCS, dcs.encode(), 1).encode()), 5.0)
    rx.receive(CarrierUp(mod), 5.2)
    rx.receive(DataReceived(bytes(450), mod), 6.7)
    rx.receive(CarrierDown(mod), 6.7)
    sent = [c for c in rx.data_to_send() if isinstance(c, SendHDLC)]
    assert sent[-1].frames[0][2] & 0xFE == int(FCF.CFR)
    img = page(1, rows=20, res=__import__("xmfax").page.Resolution.STANDARD).image
    data = codecs.encode(img, "mh", min_row_bits=2400 * 6, bit_order="lsb")   # 6 s a row
    t = 7.0
    rx.receive(CarrierUp(mod), t)
    for k in range(0, len(data), 300):
        t += 1.0
        rx.receive(DataReceived(data[k:k + 300], mod), t)
    rx.receive(CarrierDown(mod), t)
    rx.data_to_send()
    rx.receive(HDLCFrame(F.Frame(FCF.EOP, b"", 1).encode()), t + 1.5)
    assert not [c for c in rx.data_to_send() if isinstance(c, SendHDLC)]     # no answer
    rx.receive(HDLCFrame(F.Frame(FCF.DCN, b"", 1).encode()), t + 10)
    assert rx.done and rx.result.reason is Reason.SCAN_LINE_TOO_LONG
    assert rx.result.received_pages == []


def test_an_oversized_ecm_page_is_refused():
    import numpy as np
    from xmfax.page import Page, Resolution
    rng = np.random.default_rng(5)
    p = Page(rng.random((200, 1728)) < 0.1, Resolution.FINE)       # tens of kB coded
    tx, rx, _ = call(T30Config(), T30Config(max_page_octets=4096), pages=[p])
    assert rx.result.reason is Reason.PROTOCOL and "larger than" in rx.result.detail
    assert not tx.result.ok


# ---------------------------------------------------------------- stale responses
def test_late_duplicate_ppr_after_ctc_is_ignored():
    """Under loss a receiver can answer one PPS twice; the second PPR may reach the
    sender after it has gone on to CTC. It answers nothing we asked: the call goes on
    (T.30 §5.4.3: a response is taken only as the answer to the command just sent)."""
    p = page(4, rows=300)
    hook_data = ecm_frame_fault("a", {0}, times=4)
    hook_dup = frame_fault("b", FCF.PPR, "duplicate", skip=3)

    def hook(s, frame, mod, n):
        fate = hook_data(s, frame, mod, n)
        return fate if fate != "ok" else hook_dup(s, frame, mod, n)
    tx, rx, line = call(T30Config(), T30Config(), pages=[p], faults=Faults(frame=hook))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert same_image(p, rx.result.received_pages[0])
    assert "CTC" in names(line, "a") and "CTR" in names(line, "b")


@pytest.mark.parametrize("skip", [0, 1, 2])
def test_late_duplicate_ppr_while_resending_is_ignored(skip):
    """A late copy of an earlier PPR that arrives while the sender is still sending the
    frames it asked for is no answer to the PPS yet to come: no extra round."""
    p = page(4, rows=300)
    hook_data = ecm_frame_fault("a", {0}, times=3)
    hook_dup = frame_fault("b", FCF.PPR, "duplicate", skip=skip)

    def hook(s, frame, mod, n):
        fate = hook_data(s, frame, mod, n)
        return fate if fate != "ok" else hook_dup(s, frame, mod, n)
    tx, rx, line = call(T30Config(), T30Config(), pages=[p], faults=Faults(frame=hook))
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert same_image(p, rx.result.received_pages[0])
    assert names(line, "b").count("PPR") == 3
