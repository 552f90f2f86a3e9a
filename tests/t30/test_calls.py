"""Whole calls between two engines on the simulated line (xmfax.t30.pair)."""
from __future__ import annotations

import pytest

from xmfax.page import Resolution
from xmfax.t30 import FrameReceived, PageReceived, Reason, Session, T30Config
from xmfax.t30.fcf import FCF
from xmfax.t30.modem import Family
from xmfax.t30.pair import Line

from .t30util import call, page, same_image


@pytest.mark.parametrize("ecm", [False, True])
def test_three_pages(ecm):
    pages = [page(i) for i in range(3)]
    tx, rx, line = call(T30Config(local_id="+1 555 0100", ecm=ecm), T30Config(local_id="+1 555 0199", ecm=ecm),
                        pages=pages)
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert len(rx.result.received_pages) == 3
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))
    assert rx.result.remote_id == "+1 555 0100" and tx.result.remote_id == "+1 555 0199"
    assert tx.result.ecm is ecm and rx.result.ecm is ecm
    assert tx.result.compression == ("mmr" if ecm else "mr")
    assert tx.result.modulation == "V.17 14400"
    assert [p.number for p in tx.result.pages_sent] == [1, 2, 3]
    assert rx.result.pages_received[0].rows == pages[0].rows
    assert 10 < line.now < 60


def test_pages_are_delivered_as_they_complete():
    tx = Session(T30Config(), calling=True, pages=[page(i) for i in range(3)])
    rx = Session(T30Config(), calling=False, receive=True)
    line = Line(tx, rx)
    seen = []
    while not rx.done and line.steps < 10_000:
        line.run(until=line.now + 0.5)
        for ev in rx.events():
            if isinstance(ev, PageReceived):
                seen.append((ev.number, ev.time))
    assert [n for n, _ in seen] == [1, 2, 3]
    assert seen[0][1] < seen[1][1] < seen[2][1]


COMBOS = [
    # (tx compressions, rx compressions, ecm, expected coding)
    ({"mh"}, {"mh", "mr", "mmr"}, True, "mh"),
    ({"mh", "mr"}, {"mh", "mr", "mmr"}, True, "mr"),
    ({"mh", "mr", "mmr"}, {"mh", "mr", "mmr"}, True, "mmr"),
    ({"mh", "mr", "mmr"}, {"mh", "mr"}, True, "mr"),
    ({"mh", "mr", "mmr"}, {"mh"}, False, "mh"),
    ({"mh", "mr", "mmr"}, {"mh", "mr", "mmr"}, False, "mr"),   # MMR needs ECM
]


@pytest.mark.parametrize("txc,rxc,ecm,expect", COMBOS)
@pytest.mark.parametrize("res", [Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE,
                                 Resolution.R300, Resolution.ULTRAFINE])
def test_every_coding_and_resolution(txc, rxc, ecm, expect, res):
    width = res.widths["a4"]
    pages = [page(1, rows=120, res=res, width=width), page(2, rows=120, res=res, width=width)]
    tx, rx, _ = call(T30Config(compressions=frozenset(txc), ecm=ecm),
                     T30Config(compressions=frozenset(rxc), ecm=ecm), pages=pages)
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert rx.result.compression == expect and rx.result.resolution == res.label
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))


@pytest.mark.parametrize("width", ["a4", "b4", "a3"])
@pytest.mark.parametrize("ecm", [False, True])
def test_widths(width, ecm):
    px = Resolution.FINE.widths[width]
    pages = [page(3, rows=100, width=px)]
    tx, rx, _ = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=pages)
    assert rx.result.ok and rx.result.received_pages[0].width == px
    assert same_image(pages[0], rx.result.received_pages[0])


def test_too_wide_for_the_receiver_is_incompatible():
    pages = [page(3, rows=50, width=2432)]
    tx, rx, _ = call(T30Config(), T30Config(max_width="b4"), pages=pages)
    assert tx.result.reason is Reason.INCOMPATIBLE and "wider" in tx.result.detail
    assert rx.result.reason is Reason.UNEXPECTED_DCN


def test_finer_page_to_a_standard_only_receiver_is_sent_at_standard():
    p = page(4, rows=200, res=Resolution.FINE)
    tx, rx, _ = call(T30Config(), T30Config(resolutions=frozenset({Resolution.STANDARD})), pages=[p])
    assert rx.result.ok and rx.result.resolution == "standard"
    got = rx.result.received_pages[0]
    assert got.rows == 100 and (got.image == p.image[::2]).all()


def test_mixed_resolutions_use_eom_and_phase_b_again():
    pages = [page(0), page(1, res=Resolution.STANDARD), page(2, res=Resolution.SUPERFINE)]
    for ecm in (False, True):
        tx, rx, line = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=pages)
        assert tx.result.ok and rx.result.ok
        assert [p.resolution for p in rx.result.pages_received] == ["fine", "standard", "superfine"]
        assert sum(1 for _, s, w in line.transcript if w == "EOM" or w == "PPS") >= 2
        assert sum(1 for _, s, w in line.transcript if w == "DIS") == 3


def test_min_scan_line_time_is_honoured():
    p = page(5, rows=100, res=Resolution.STANDARD)
    tx, rx, line = call(T30Config(ecm=False), T30Config(ecm=False, min_scan_line_ms=20), pages=[p])
    assert rx.result.ok and same_image(p, rx.result.received_pages[0])
    sizes = [w for _, s, w in line.transcript if s == "a" and w.startswith("data")]
    # 100 rows at >= 20 ms each at 14400 bit/s: >= 100 * 288 bits = 3600 octets
    assert int(sizes[-1].split()[3]) >= 3600


@pytest.mark.parametrize("ecm", [False, True])
def test_polling(ecm):
    pages = [page(7), page(8)]
    tx, rx, line = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=pages, polling=True)
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert all(same_image(a, b) for a, b in zip(pages, rx.result.received_pages))
    names = [w for _, s, w in line.transcript]
    assert names.index("DTC") < names.index("DCS")


def test_polling_a_station_with_nothing_to_send():
    a = Session(T30Config(), calling=True, receive=True)
    b = Session(T30Config(), calling=False, receive=True)
    Line(a, b).run()
    assert a.result.reason is Reason.NOTHING_TO_POLL


def test_v27ter_only_receiver():
    tx, rx, _ = call(T30Config(ecm=False), T30Config(ecm=False, modems=frozenset({Family.V27TER})),
                     pages=[page(1, rows=80)])
    assert rx.result.ok and rx.result.modulation == "V.27ter 4800"


def test_frames_are_visible_as_events():
    tx = Session(T30Config(local_id="12"), calling=True, pages=[page(1, rows=50)])
    rx = Session(T30Config(), calling=False, receive=True)
    Line(tx, rx).run()
    got = [e.frame.fcf for e in tx.events() if isinstance(e, FrameReceived)]
    assert got[:2] == [FCF.DIS, FCF.CFR] and got[-1] is FCF.MCF


def test_nsf_is_sent_and_recorded():
    tx, rx, _ = call(T30Config(), T30Config(nsf=b"\xad\x00\x42xmfax"), pages=[page(1, rows=50)])
    assert tx.result.remote_nsf == b"\xad\x00\x42xmfax"


def test_session_commands_end_with_hangup():
    tx = Session(T30Config(), calling=True, pages=[page(1, rows=50)])
    rx = Session(T30Config(), calling=False, receive=True)
    Line(tx, rx).run()
    assert tx.done and rx.done
    assert tx.next_timer() is None


def test_bad_arguments():
    with pytest.raises(Exception):
        Session(T30Config(), calling=True)
    with pytest.raises(ValueError):
        T30Config(local_id="ABC")
    with pytest.raises(ValueError):
        T30Config(modems=frozenset({Family.V17}))
    with pytest.raises(ValueError):
        T30Config(ecm_frame_size=128)


def test_ecm_64_octet_frames():
    p = page(9, rows=150)
    tx, rx, line = call(T30Config(ecm_frame_size=64), T30Config(), pages=[p])
    assert rx.result.ok and rx.result.ecm_frame_size == 64 and same_image(p, rx.result.received_pages[0])


def test_long_page_takes_several_ecm_blocks():
    import numpy as np
    rng = np.random.default_rng(3)
    from xmfax.page import Page
    img = rng.random((700, 1728)) < 0.08          # noisy: about 100 kB coded, > 1 block of 256 x 256
    p = Page(img, Resolution.FINE)
    tx, rx, line = call(T30Config(ecm_frame_size=64), T30Config(), pages=[p])
    assert rx.result.ok and same_image(p, rx.result.received_pages[0])
    blocks = [w for _, s, w in line.transcript if w == "PPS"]
    assert len(blocks) >= 2


@pytest.mark.parametrize("ecm", [False, True])
def test_two_documents_with_eom(ecm):
    docs = [[page(1, rows=60), page(2, rows=60)], [page(3, rows=60)]]
    tx, rx, line = call(T30Config(ecm=ecm), T30Config(ecm=ecm), pages=docs)
    assert tx.result.ok and rx.result.ok, (tx.result.text, rx.result.text)
    assert len(rx.result.received_pages) == 3
    n = [w for _, s, w in line.transcript]
    assert n.count("DIS") == 2 and n.count("DCS") == 2
    if not ecm:
        assert n.index("EOM") < n.index("EOP")


def test_add_document_during_the_call():
    tx = Session(T30Config(ecm=False), calling=True, pages=[page(1, rows=60)])
    rx = Session(T30Config(ecm=False), calling=False, receive=True)
    line = Line(tx, rx)
    line.run(until=6.0)                       # DCS/TCF under way: page 1 not sent yet
    tx.add_document([page(2, rows=60)], line.now)
    line.run()
    assert tx.result.ok and len(rx.result.received_pages) == 2
    with pytest.raises(Exception):
        tx.add_document([page(3)], line.now)


def test_add_document_while_the_last_page_is_on_the_line():
    """The post-page command is chosen when the page data is out (T.30 §5.3.6.1.4): a
    document added while the last page is still being sent turns its EOP into EOM."""
    from xmfax.t30.states import State
    tx = Session(T30Config(ecm=False, max_rate=4800), calling=True, pages=[page(1, rows=600)])
    rx = Session(T30Config(ecm=False), calling=False, receive=True)
    line = Line(tx, rx)
    while tx.state is not State.SEND_PAGE:
        line.run(until=line.now + 0.05)
    line.run(until=line.now + 0.5)            # the page data is on the line
    assert tx.state is State.SEND_PAGE and not any(w in ("EOP", "MPS", "EOM") for _, _, w in line.transcript)
    tx.add_document([page(2, rows=60)], line.now)
    line.run()
    assert tx.result.ok and len(rx.result.received_pages) == 2
    n = [w for _, s, w in line.transcript]
    assert n.count("EOM") == 1 and n.count("EOP") == 1 and n.count("DCS") == 2


def test_polling_with_password_and_subaddress():
    pages = [page(7, rows=60)]
    polled = Session(T30Config(password="+1234"), calling=False, pages=pages)
    poller = Session(T30Config(password="+1234", selective_polling="55"), calling=True, receive=True)
    line = Line(poller, polled)
    line.run()
    assert poller.result.ok and polled.result.ok and len(poller.result.received_pages) == 1
    n = [w for _, s, w in line.transcript]
    assert n.index("PWD") < n.index("DTC")
    assert "SEP" not in n          # the polled DIS does not offer selective polling (bit 47)


def test_polling_with_a_wrong_password_is_refused():
    polled = Session(T30Config(password="+1234"), calling=False, pages=[page(7, rows=60)])
    poller = Session(T30Config(password="999"), calling=True, receive=True)
    Line(poller, polled).run()
    assert polled.result.reason is Reason.PASSWORD_REJECTED and not poller.result.ok
    assert poller.result.received_pages == []


def test_subaddress_reaches_the_receiver():
    tx, rx, line = call(T30Config(subaddress="42", password="77"), T30Config(), pages=[page(1, rows=40)])
    assert rx.result.ok and rx.result.remote_subaddress == "42"
    assert "SUB" in [w for _, s, w in line.transcript]
    assert "SID" not in [w for _, s, w in line.transcript]       # the receiver's DIS has no bit 50


def test_caller_answering_dis_with_dis_gets_the_document():
    """A called station holding a document, whose caller answers DIS with DIS (it wants
    to receive), sends the document (turnaround, as TSB-85 MRGP06)."""
    holder = Session(T30Config(), calling=False, pages=[page(2, rows=60)])
    caller = Session(T30Config(), calling=True, receive=True)
    orig = caller._enter_send_dtc

    def send_dis_instead():
        caller._send_frames([caller._frame(FCF.DIS, caller._local_dis.encode())])
    caller._enter_send_dtc = send_dis_instead
    line = Line(caller, holder)
    line.run()
    caller._enter_send_dtc = orig
    assert holder.result.ok and caller.result.ok and len(caller.result.received_pages) == 1
    assert "DTC" not in [w for _, s, w in line.transcript]


def test_wrong_carrier_makes_the_session_listen_for_what_came():
    from xmfax.t30.modem import Expect, Modulation, Receive, WrongCarrier
    rx = Session(T30Config(), calling=False, receive=True)
    rx.start(0.0)
    rx.data_to_send()
    rx.receive(WrongCarrier(Modulation.V17_14400, Modulation.V21), 1.0)
    assert rx.data_to_send() == [Receive(Expect.HDLC)]
