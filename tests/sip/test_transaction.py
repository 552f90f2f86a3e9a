"""SIP transactions (xmfax/sip/transaction.py): RFC 3261 §17 on a fake clock.

Every timer is checked against RFC 3261 Table 4 by the times at which bytes leave the layer;
two layers are joined in memory (``Link``) to run whole exchanges with messages lost and
duplicated."""
from __future__ import annotations

import pytest

from xmfax.errors import LocalProtocolError
from xmfax.sip.message import Headers, Request, Response, URI, make_response, new_branch, parse
from xmfax.sip.transaction import (
    Kind, RequestReceived, ResponseReceived, State, TimerConfig, TransactionLayer,
    TransactionTimeout, TransportError, INVITE_CLIENT, INVITE_SERVER, NON_INVITE_CLIENT,
    NON_INVITE_SERVER,
)

A = ("127.0.0.1", 5060)          # the client's address
B = ("127.0.0.1", 5070)          # the server's address
T1, T2, T4 = 0.5, 4.0, 5.0


def request(method: str = "INVITE", *, branch: str | None = None, cseq: int = 1,
            transport: str = "UDP", via_host: str = "127.0.0.1", via_port: int | None = 5060,
            to_tag: str | None = None, routes: tuple[str, ...] = (), call_id: str = "call-1",
            rport: bool = False, cseq_method: str | None = None) -> Request:
    branch = new_branch() if branch is None else branch
    via = f"SIP/2.0/{transport} {via_host}{'' if via_port is None else f':{via_port}'}"
    via += f";branch={branch}" + (";rport" if rport else "")
    headers = Headers([("Via", via), ("Max-Forwards", "70"),
                       ("From", "<sip:alice@127.0.0.1>;tag=fromtag"),
                       ("To", "<sip:bob@127.0.0.1>" + (f";tag={to_tag}" if to_tag else "")),
                       ("Call-ID", call_id), ("CSeq", f"{cseq} {cseq_method or method}")])
    for route in routes:
        headers.add("Route", route)
    return Request(method, URI.parse("sip:bob@127.0.0.1:5070"), headers)


def wire(message):
    """What the far end parses: every message crosses the wire as bytes."""
    return parse(message.encode() if not isinstance(message, bytes) else message)


def sends(layer: TransactionLayer) -> list:
    return [(o.dest, o.transport, parse(o.data)) for o in layer.outgoing()]


def run_until(layer: TransactionLayer, end: float) -> list[tuple[float, list, list]]:
    """Fire every timer up to ``end``: [(time, events, messages sent)]."""
    log = []
    while (t := layer.next_timer()) is not None and t <= end:
        events = layer.handle_timer(t)
        log.append((t, events, [parse(o.data) for o in layer.outgoing()]))
        nxt = layer.next_timer()
        assert nxt is None or nxt > t, "a timer in the past after handle_timer"
    return log


# ------------------------------------------------------------------------- tables
def test_tables_only_move_forward_and_terminated_is_final():
    order = [State.CALLING, State.TRYING, State.PROCEEDING, State.ACCEPTED, State.COMPLETED,
             State.CONFIRMED, State.TERMINATED]
    for table in (INVITE_CLIENT, NON_INVITE_CLIENT, INVITE_SERVER, NON_INVITE_SERVER):
        for (state, _), (next_state, _) in table.items():
            assert state is not State.TERMINATED
            assert order.index(next_state) >= order.index(state)


def test_timer_config_rejects_nonsense():
    with pytest.raises(ValueError):
        TimerConfig(T1=0)
    with pytest.raises(ValueError):
        TimerConfig(T1=1.0, T2=0.5)


# ------------------------------------------------------------------------- client timers
def test_invite_timer_a_doubles_without_cap_and_timer_b_gives_up_at_64_t1():
    layer = TransactionLayer()
    txn = layer.send_request(request("INVITE"), B, "udp", 0.0)
    assert len(sends(layer)) == 1
    log = run_until(layer, 100.0)
    sent_at = [t for t, _, msgs in log if msgs]
    # RFC 3261 §17.1.1.2: A = T1, 2T1, 4T1 ... (no T2 cap for INVITE); B = 64*T1
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert log[-1][0] == 32.0 and log[-1][1] == [TransactionTimeout(txn)]
    assert txn.state is State.TERMINATED and len(layer) == 0 and layer.next_timer() is None


def test_non_invite_timer_e_caps_at_t2_and_timer_f_gives_up():
    layer = TransactionLayer()
    txn = layer.send_request(request("REGISTER"), B, "udp", 0.0)
    layer.outgoing()
    log = run_until(layer, 100.0)
    sent_at = [t for t, _, msgs in log if msgs]
    # §17.1.2.2: E = T1, then min(2E, T2): intervals 0.5, 1, 2, 4, 4, 4 ...
    assert sent_at == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert log[-1] == (32.0, [TransactionTimeout(txn)], [])
    assert len(layer) == 0


def test_non_invite_proceeding_retransmits_every_t2():
    layer = TransactionLayer()
    req = request("BYE")
    txn = layer.send_request(req, B, "udp", 0.0)
    layer.outgoing()
    run_until(layer, 0.6)                              # one retransmission at 0.5
    layer.receive(wire(make_response(req, 100)), B, "udp", 0.7)
    assert txn.state is State.PROCEEDING
    sent_at = [t for t, _, msgs in run_until(layer, 20.0) if msgs]
    # the pending E (armed at 0.5 for 1.0) fires at 1.5, then every T2 (§17.1.2.2)
    assert sent_at == [1.5, 5.5, 9.5, 13.5, 17.5]


def test_no_retransmission_over_tcp_but_timer_b_still_runs():
    layer = TransactionLayer()
    txn = layer.send_request(request("INVITE", transport="TCP"), B, "tcp", 0.0)
    assert len(layer.outgoing()) == 1
    log = run_until(layer, 100.0)
    assert log == [(32.0, [TransactionTimeout(txn)], [])]
    txn = layer.send_request(request("OPTIONS", transport="TCP"), B, "tcp", 0.0)
    layer.outgoing()
    assert run_until(layer, 100.0) == [(32.0, [TransactionTimeout(txn)], [])]


def test_timers_scale_with_t1():
    layer = TransactionLayer(TimerConfig(T1=0.1, T2=0.4))
    layer.send_request(request("OPTIONS"), B, "udp", 0.0)
    layer.outgoing()
    log = run_until(layer, 100.0)
    assert [round(t, 6) for t, _, m in log if m][:4] == [0.1, 0.3, 0.7, 1.1]
    assert round(log[-1][0], 6) == 6.4                 # F = 64*T1


# ------------------------------------------------------------------------- client responses
def test_non_2xx_final_is_acked_by_the_transaction_and_passed_up_once():
    layer = TransactionLayer()
    inv = request("INVITE", cseq=7, routes=("<sip:p1.example;lr>", "<sip:p2.example;lr>"))
    txn = layer.send_request(inv, B, "udp", 0.0)
    layer.outgoing()
    busy = make_response(inv, 486, to_tag="totag")
    events = layer.receive(wire(busy), B, "udp", 0.1)
    assert [type(e) for e in events] == [ResponseReceived]
    assert events[0].response.status == 486 and events[0].transaction is txn
    assert txn.state is State.COMPLETED
    [(dest, transport, ack)] = sends(layer)
    # RFC 3261 §17.1.1.3
    assert dest == B and transport == "udp"
    assert ack.method == "ACK" and ack.uri == inv.uri
    assert ack.call_id == inv.call_id and ack.headers.get("From") == inv.headers.get("From")
    assert ack.to.tag == "totag" and ack.headers.get("To") == busy.headers.get("To")
    assert ack.cseq == (7, "ACK")
    assert ack.headers.values("Via") == [inv.headers.values("Via")[0]]
    assert ack.vias[0].branch == inv.vias[0].branch
    assert ack.headers.values("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    # retransmitted final: ACKed again, not passed up again
    assert layer.receive(wire(busy), B, "udp", 0.6) == []
    [(_, _, ack2)] = sends(layer)
    assert ack2 == ack
    # Timer D: 32 s over UDP
    assert run_until(layer, 100.0) == [(32.1, [], [])]
    assert len(layer) == 0


def test_non_2xx_over_tcp_ends_the_transaction_at_once():
    layer = TransactionLayer()
    inv = request("INVITE", transport="TCP")
    layer.send_request(inv, B, "tcp", 0.0)
    layer.outgoing()
    layer.receive(wire(make_response(inv, 603, to_tag="t")), B, "tcp", 0.1)
    [(dest, transport, ack)] = sends(layer)
    assert (dest, transport, ack.method) == (B, "tcp", "ACK")
    assert len(layer) == 0 and layer.next_timer() is None     # Timer D = 0 (Table 4)


@pytest.mark.parametrize("transport, linger", [("udp", T4), ("tcp", 0.0)])
def test_non_invite_final_lingers_for_timer_k(transport, linger):
    layer = TransactionLayer()
    reg = request("REGISTER", transport=transport.upper())
    txn = layer.send_request(reg, B, transport, 0.0)
    [ev] = layer.receive(wire(make_response(reg, 200, to_tag="r")), B, transport, 1.0)
    assert ev.transaction is txn
    assert layer.receive(wire(make_response(reg, 200, to_tag="r")), B, transport, 1.5) == []
    if linger:
        assert txn.state is State.COMPLETED
        assert run_until(layer, 100.0)[-1][0] == 1.0 + linger      # Timer K = T4
    assert len(layer) == 0 and txn.state is State.TERMINATED


def test_every_2xx_reaches_the_tu_while_accepted_then_the_transaction_ends():
    layer = TransactionLayer()
    inv = request("INVITE")
    txn = layer.send_request(inv, B, "udp", 0.0)
    layer.outgoing()
    ok = make_response(inv, 200, to_tag="fork1")
    [first] = layer.receive(wire(ok), B, "udp", 0.1)
    assert first.retransmission is False and txn.state is State.ACCEPTED
    assert layer.outgoing() == []                                   # 2xx: the UA ACKs (§13.2.2.4)
    [again] = layer.receive(wire(ok), B, "udp", 0.6)
    assert again.retransmission is True and again.transaction is txn
    [fork] = layer.receive(wire(make_response(inv, 200, to_tag="fork2")), B, "udp", 0.7)
    assert fork.retransmission is False
    assert layer.receive(wire(make_response(inv, 180, to_tag="fork1")), B, "udp", 0.8) == []
    assert run_until(layer, 100.0) == [(0.1 + 64 * T1, [], [])]     # RFC 6026 Timer M
    assert len(layer) == 0
    assert layer.receive(wire(ok), B, "udp", 40.0) == []             # §18.1.2: discarded
    assert layer.stats["stray"] == 1


def test_provisional_stops_timer_a_and_b():
    layer = TransactionLayer()
    inv = request("INVITE")
    txn = layer.send_request(inv, B, "udp", 0.0)
    layer.outgoing()
    [ev] = layer.receive(wire(make_response(inv, 180, to_tag="x")), B, "udp", 0.2)
    assert ev.response.status == 180 and txn.state is State.PROCEEDING
    log = run_until(layer, 179.0)
    assert log == []                                   # ringing: no retransmission, no Timer B
    assert run_until(layer, 181.0) == [(180.0, [TransactionTimeout(txn)], [])]   # invite_limit


def test_cancel_bounds_a_proceeding_invite():
    """§9.1: no final response 64*T1 after our CANCEL: the INVITE transaction is dropped."""
    layer = TransactionLayer()
    inv = request("INVITE", branch="z9hG4bKcancelme")
    txn = layer.send_request(inv, B, "udp", 0.0)
    layer.receive(wire(make_response(inv, 180, to_tag="x")), B, "udp", 0.1)
    cancel = request("CANCEL", branch="z9hG4bKcancelme")
    ctxn = layer.send_request(cancel, B, "udp", 10.0)
    layer.receive(wire(make_response(cancel, 200, to_tag="x")), B, "udp", 10.1)
    assert ctxn.state is State.COMPLETED
    events = [e for _, evs, _ in run_until(layer, 200.0) for e in evs]
    assert events == [TransactionTimeout(txn)] and txn.state is State.TERMINATED
    assert len(layer) == 0


def test_cancel_sent_while_calling_still_bounds_the_invite():
    layer = TransactionLayer()
    inv = request("INVITE", branch="z9hG4bKearly")
    txn = layer.send_request(inv, B, "udp", 0.0)
    layer.send_request(request("CANCEL", branch="z9hG4bKearly"), B, "udp", 0.1)
    layer.receive(wire(make_response(inv, 180, to_tag="x")), B, "udp", 0.2)
    assert txn.state is State.PROCEEDING
    timeouts = [(t, e.transaction) for t, evs, _ in run_until(layer, 200.0) for e in evs
                if e.transaction is txn]
    assert timeouts == [(0.1 + 64 * T1, txn)]


def test_a_flood_of_forked_2xx_is_bounded():
    layer = TransactionLayer()
    inv = request("INVITE")
    layer.send_request(inv, B, "udp", 0.0)
    passed = []
    for i in range(40):
        passed += layer.receive(wire(make_response(inv, 200, to_tag=f"fork{i}")), B, "udp", 0.1)
    assert len(passed) == 16 and layer.stats["forks"] == 24
    [again] = layer.receive(wire(make_response(inv, 200, to_tag="fork3")), B, "udp", 0.2)
    assert again.retransmission


def test_respond_refuses_what_section_17_forbids():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE")), A, "udp", 0.0)
    with pytest.raises(LocalProtocolError):
        layer.respond(ev.transaction, Response(700, "Odd", ev.request.headers.copy()), 0.0)
    layer.respond(ev.transaction, make_response(ev.request, 404, to_tag="t"), 0.0)
    for status in (180, 200, 486):
        with pytest.raises(LocalProtocolError):
            layer.respond(ev.transaction, make_response(ev.request, status, to_tag="t"), 0.1)
    client = layer.send_request(request("OPTIONS"), B, "udp", 0.0)
    with pytest.raises(LocalProtocolError):
        layer.respond(client, make_response(client.request, 200), 0.0)


def test_response_matching_needs_branch_and_cseq_method():
    layer = TransactionLayer()
    inv = request("INVITE", branch="z9hG4bKsame")
    layer.send_request(inv, B, "udp", 0.0)
    cancel = request("CANCEL", branch="z9hG4bKsame")
    ctxn = layer.send_request(cancel, B, "udp", 0.0)
    [ev] = layer.receive(wire(make_response(cancel, 200, to_tag="t")), B, "udp", 0.1)
    assert ev.transaction is ctxn                      # §17.1.3: CSeq method tells them apart
    other = make_response(request("INVITE", branch="z9hG4bKother"), 200, to_tag="t")
    assert layer.receive(wire(other), B, "udp", 0.1) == []
    wrong_number = make_response(request("INVITE", branch="z9hG4bKsame", cseq=2), 486)
    assert layer.receive(wire(wrong_number), B, "udp", 0.1) == []
    assert layer.stats["stray"] == 2


def test_send_request_refuses_what_it_cannot_match():
    layer = TransactionLayer()
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("ACK"), B, "udp", 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("INVITE", branch="oldstyle1"), B, "udp", 0.0)
    layer.send_request(request("INVITE", branch="z9hG4bKdup"), B, "udp", 0.0)
    with pytest.raises(LocalProtocolError):
        layer.send_request(request("INVITE", branch="z9hG4bKdup"), B, "udp", 0.0)


# ------------------------------------------------------------------------- servers
def test_invite_server_sends_100_trying_after_200_ms_unless_the_tu_answered():
    layer = TransactionLayer()
    inv = request("INVITE")
    inv.headers.add("Timestamp", "54")
    [ev] = layer.receive(wire(inv), A, "udp", 0.0)
    assert isinstance(ev, RequestReceived) and ev.transaction.state is State.PROCEEDING
    assert layer.outgoing() == []
    log = run_until(layer, 0.25)
    [(t, events, [trying])] = log
    assert t == pytest.approx(0.2) and trying.status == 100
    assert trying.to.tag is None and trying.headers.get("Timestamp") == "54"   # §8.2.6
    # a retransmitted INVITE gets the 100 again, and is not passed up again
    assert layer.receive(wire(inv), A, "udp", 0.5) == []
    assert [m.status for _, _, m in sends(layer)] == [100]

    layer2 = TransactionLayer()
    [ev] = layer2.receive(wire(request("INVITE")), A, "udp", 0.0)
    layer2.respond(ev.transaction, make_response(ev.request, 180, to_tag="t"), 0.1)
    assert [m.status for _, _, m in sends(layer2)] == [180]
    assert all(not msgs for _, _, msgs in run_until(layer2, 1.0))


def test_invite_server_final_retransmits_on_g_until_ack_then_confirmed_for_t4():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE")), A, "udp", 0.0)
    txn = ev.transaction
    layer.respond(txn, make_response(ev.request, 486, to_tag="t"), 0.1)
    assert [m.status for _, _, m in sends(layer)] == [486]
    log = run_until(layer, 8.0)
    # §17.2.1: G = T1, then min(2G, T2)
    assert [round(t - 0.1, 6) for t, _, m in log if m] == [0.5, 1.5, 3.5, 7.5]
    ack = request("ACK", branch=ev.request.vias[0].branch, to_tag="t")
    assert layer.receive(wire(ack), A, "udp", 8.2) == []           # absorbed, not passed up
    assert txn.state is State.CONFIRMED
    assert layer.receive(wire(ack), A, "udp", 8.3) == []
    assert layer.receive(wire(ev.request), A, "udp", 8.4) == []    # and no more responses
    assert layer.outgoing() == []
    assert run_until(layer, 100.0) == [(8.2 + T4, [], [])]        # Timer I
    assert len(layer) == 0


def test_invite_server_over_tcp_ends_at_the_ack():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE", transport="TCP")), A, "tcp", 0.0)
    layer.respond(ev.transaction, make_response(ev.request, 486, to_tag="t"), 0.1)
    ack = request("ACK", branch=ev.request.vias[0].branch, to_tag="t", transport="TCP")
    assert layer.receive(wire(ack), A, "tcp", 0.2) == []
    assert ev.transaction.state is State.TERMINATED and len(layer) == 0   # Timer I = 0


def test_invite_server_timer_g_caps_at_t2_and_h_gives_up():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE")), A, "udp", 0.0)
    layer.respond(ev.transaction, make_response(ev.request, 500, to_tag="t"), 0.0)
    layer.outgoing()
    log = run_until(layer, 100.0)
    sent_at = [t for t, _, m in log if m]
    assert sent_at[:6] == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5]
    assert log[-1] == (32.0, [TransactionTimeout(ev.transaction)], [])   # Timer H
    assert len(layer) == 0


def test_invite_server_2xx_is_accepted_retransmissions_absorbed_acks_passed_up():
    layer = TransactionLayer()
    inv = request("INVITE")
    [ev] = layer.receive(wire(inv), A, "udp", 0.0)
    ok = make_response(ev.request, 200, to_tag="t")
    layer.respond(ev.transaction, ok, 0.05)
    assert [m.status for _, _, m in sends(layer)] == [200]
    assert ev.transaction.state is State.ACCEPTED
    assert layer.receive(wire(inv), A, "udp", 0.4) == []           # RFC 6026 Accepted: absorbed
    assert layer.outgoing() == []
    layer.respond(ev.transaction, ok, 0.55)                         # the UA's retransmission
    assert [m.status for _, _, m in sends(layer)] == [200]
    ack = request("ACK", to_tag="t")                                # §13.2.2.4: a new branch
    [got] = layer.receive(wire(ack), A, "udp", 0.6)
    assert got.transaction is None and got.request.method == "ACK"
    same_branch = request("ACK", branch=inv.vias[0].branch, to_tag="t")
    [got] = layer.receive(wire(same_branch), A, "udp", 0.7)
    assert got.transaction is None
    assert run_until(layer, 100.0) == [(0.05 + 64 * T1, [], [])]  # Timer L
    assert len(layer) == 0


def test_non_invite_server_resends_final_on_retransmission_then_j():
    layer = TransactionLayer()
    reg = request("REGISTER")
    [ev] = layer.receive(wire(reg), A, "udp", 0.0)
    assert ev.transaction.kind is Kind.NON_INVITE_SERVER and ev.transaction.state is State.TRYING
    assert layer.receive(wire(reg), A, "udp", 0.5) == [] and layer.outgoing() == []  # Trying
    layer.respond(ev.transaction, make_response(ev.request, 100), 0.6)
    layer.outgoing()
    assert layer.receive(wire(reg), A, "udp", 1.0) == []
    assert [m.status for _, _, m in sends(layer)] == [100]        # Proceeding: last 1xx again
    layer.respond(ev.transaction, make_response(ev.request, 401, to_tag="t"), 1.1)
    [(dest, _, first)] = sends(layer)
    assert dest == A and first.status == 401
    assert layer.receive(wire(reg), A, "udp", 2.0) == []
    [(_, _, again)] = sends(layer)
    assert again == first
    with pytest.raises(LocalProtocolError):
        layer.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), 2.0)
    assert run_until(layer, 100.0) == [(1.1 + 64 * T1, [], [])]   # Timer J
    assert len(layer) == 0


def test_non_invite_server_over_tcp_ends_with_its_final():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("OPTIONS", transport="TCP")), A, "tcp", 0.0)
    layer.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), 0.1)
    assert [(d, t) for d, t, _ in sends(layer)] == [(A, "tcp")]
    assert len(layer) == 0 and layer.next_timer() is None         # Timer J = 0


def test_a_tu_that_never_answers_does_not_keep_the_transaction():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("OPTIONS")), A, "udp", 0.0)
    [inv] = layer.receive(wire(request("INVITE")), A, "udp", 0.0)
    log = run_until(layer, 1000.0)
    timeouts = [(t, e.transaction) for t, evs, _ in log for e in evs]
    assert timeouts == [(64 * T1, ev.transaction), (180.0, inv.transaction)]
    assert len(layer) == 0
    # a late answer still reaches the far end, once and without state
    layer.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), 1000.0)
    assert [(d, m.status) for d, _, m in sends(layer)] == [(A, 200)]
    assert len(layer) == 0


def test_cancel_is_matched_to_its_invite():
    layer = TransactionLayer()
    inv = request("INVITE", branch="z9hG4bKinv1")
    [ev] = layer.receive(wire(inv), A, "udp", 0.0)
    [cancel] = layer.receive(wire(request("CANCEL", branch="z9hG4bKinv1")), A, "udp", 1.0)
    assert cancel.cancelled is ev.transaction
    assert cancel.transaction.kind is Kind.NON_INVITE_SERVER
    assert cancel.transaction is not ev.transaction
    [other] = layer.receive(wire(request("CANCEL", branch="z9hG4bKnope")), A, "udp", 1.0)
    assert other.cancelled is None
    # same branch, another sent-by: a different transaction (§17.2.3)
    [far] = layer.receive(wire(request("CANCEL", branch="z9hG4bKinv1", via_port=5099)),
                          A, "udp", 1.0)
    assert far.cancelled is None


def test_rfc2543_requests_without_magic_cookie_are_matched_well_enough():
    layer = TransactionLayer()
    inv = request("INVITE", branch="1234")
    [ev] = layer.receive(wire(inv), A, "udp", 0.0)
    assert layer.receive(wire(inv), A, "udp", 0.5) == []          # retransmission absorbed
    no_branch = request("OPTIONS", branch="x")
    no_branch.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5060")
    [opt] = layer.receive(wire(no_branch), A, "udp", 0.0)
    assert layer.receive(wire(no_branch), A, "udp", 0.5) == []
    layer.respond(ev.transaction, make_response(ev.request, 404, to_tag="mine"), 1.0)
    layer.outgoing()
    stranger = request("ACK", branch="1234", to_tag="not-mine")
    assert [e.transaction for e in layer.receive(wire(stranger), A, "udp", 1.1)] == [None]
    ack = request("ACK", branch="1234", to_tag="mine")
    assert layer.receive(wire(ack), A, "udp", 1.2) == []
    assert ev.transaction.state is State.CONFIRMED
    assert opt.transaction.state is State.TRYING


# ------------------------------------------------------------------------- routing
def test_responses_go_back_to_the_source_with_received_and_rport():
    layer = TransactionLayer()
    req = request("OPTIONS", via_host="10.1.2.3", via_port=5062, rport=True)
    [ev] = layer.receive(wire(req), ("192.0.2.7", 40000), "udp", 0.0)
    top = ev.request.vias[0]
    assert top.params["received"] == "192.0.2.7" and top.params["rport"] == "40000"  # RFC 3581
    layer.respond(ev.transaction, make_response(ev.request, 200, to_tag="t"), 0.0)
    [(dest, transport, resp)] = sends(layer)
    assert dest == ("192.0.2.7", 40000) and transport == "udp"
    assert resp.vias[0].params["received"] == "192.0.2.7"

    [ev] = layer.receive(wire(request("OPTIONS", via_host="pc.example.com")), ("192.0.2.8", 5060),
                         "udp", 0.0)
    assert ev.request.vias[0].params["received"] == "192.0.2.8"      # §18.2.1: a name
    assert "rport" not in ev.request.vias[0].params
    [ev] = layer.receive(wire(request("OPTIONS")), A, "udp", 0.0)
    assert "received" not in ev.request.vias[0].params                 # same address: untouched


def test_only_the_top_via_is_stamped():
    layer = TransactionLayer()
    req = request("OPTIONS", via_host="10.0.0.1")
    req.headers.add("Via", "SIP/2.0/UDP proxy.example;branch=z9hG4bKp1, SIP/2.0/UDP 10.9.9.9")
    [ev] = layer.receive(wire(req), A, "udp", 0.0)
    vias = ev.request.vias
    assert [v.host for v in vias] == ["10.0.0.1", "proxy.example", "10.9.9.9"]
    assert [n for n, _ in ev.request.headers.items()][:2] == ["Via", "Max-Forwards"]
    assert vias[0].params["received"] == "127.0.0.1"
    assert all("received" not in v.params for v in vias[1:])


def test_tcp_responses_go_back_on_the_connection():
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE", transport="TCP")), ("127.0.0.1", 41000),
                         "TCP", 0.0)
    assert ev.transport == "tcp"
    layer.respond(ev.transaction, make_response(ev.request, 180, to_tag="t"), 0.0)
    layer.respond(ev.transaction, make_response(ev.request, 486, to_tag="t"), 0.1)
    assert [(d, t) for d, t, _ in sends(layer)] == [(("127.0.0.1", 41000), "tcp")] * 2
    assert all(not m for _, _, m in run_until(layer, 31.0))        # no Timer G over TCP


def test_transport_failure_ends_the_transactions_using_that_destination():
    layer = TransactionLayer()
    inv = layer.send_request(request("INVITE"), B, "udp", 0.0)
    other = layer.send_request(request("OPTIONS"), ("127.0.0.1", 5999), "udp", 0.0)
    events = layer.transport_failed(B, "udp", "ICMP port unreachable", 0.1)
    assert events == [TransportError(inv, "ICMP port unreachable")]
    assert inv.state is State.TERMINATED and other.state is State.TRYING and len(layer) == 1


# ------------------------------------------------------------------------- hostile input
def test_malformed_requests_get_a_stateless_400_and_acks_get_nothing():
    layer = TransactionLayer()
    bad = request("INVITE")
    bad.headers.set("Max-Forwards", "70")
    bad.headers.set("From", "not a name-addr <")
    assert layer.receive(bad, A, "udp", 0.0) == []
    assert layer.outgoing() == []               # no valid From to answer with: dropped
    no_cseq = request("INVITE")
    no_cseq.headers.remove("CSeq")
    assert layer.receive(no_cseq, A, "udp", 0.0) == [] and layer.outgoing() == []
    mismatch = request("INVITE", cseq_method="BYE")
    assert layer.receive(mismatch, A, "udp", 0.0) == []
    [(dest, _, resp)] = sends(layer)
    assert dest == A and resp.status == 400 and resp.cseq == (1, "BYE")
    no_via = request("OPTIONS")
    no_via.headers.remove("Via")
    assert layer.receive(no_via, A, "udp", 0.0) == []
    bad_ack = request("ACK")
    bad_ack.headers.remove("Call-ID")
    assert layer.receive(bad_ack, A, "udp", 0.0) == []
    assert not [m for _, _, m in sends(layer) if m.status != 400]
    assert len(layer) == 0 and layer.stats["malformed"] == 5


def test_malformed_responses_are_dropped():
    layer = TransactionLayer()
    inv = request("INVITE")
    layer.send_request(inv, B, "udp", 0.0)
    resp = make_response(inv, 200, to_tag="t")
    resp.headers.remove("Via")
    assert layer.receive(resp, B, "udp", 0.1) == []
    odd = make_response(inv, 200, to_tag="t")
    odd.status = 999
    assert layer.receive(odd, B, "udp", 0.1) == []
    assert layer.stats["malformed"] == 2


def test_a_flood_is_capped_answered_503_and_drains():
    layer = TransactionLayer()
    base = request("OPTIONS")
    n = 10_000 + 50
    for i in range(n):
        req = Request("OPTIONS", base.uri, base.headers.copy())
        req.headers.set("Via", f"SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKflood{i}")
        layer.receive(req, A, "udp", i * 1e-4)
    assert len(layer) == 10_000
    out = layer.outgoing()
    assert len(out) == 50 and all(parse(o.data).status == 503 for o in out)
    assert parse(out[0].data).headers.get("Retry-After") == "5"
    assert layer.stats["overload"] == 50
    run_until(layer, 64 * T1 + 2.0)
    assert len(layer) == 0 and layer.next_timer() is None
    assert len(layer._heap) == 0 and not layer._tickets


def test_stopped_timers_keep_no_transaction_alive():
    """Timer C (180 s) is stopped when the INVITE is answered; its stale heap entry must not
    keep the ended transaction (and its request) in memory until then."""
    import gc
    import weakref
    layer = TransactionLayer()
    [ev] = layer.receive(wire(request("INVITE", branch="z9hG4bKgone")), A, "udp", 0.0)
    gone = weakref.ref(ev.transaction)
    layer.respond(ev.transaction, make_response(ev.request, 486, to_tag="t"), 0.1)
    layer.receive(wire(request("ACK", branch="z9hG4bKgone", to_tag="t")), A, "udp", 0.2)
    del ev
    layer.handle_timer(10.0)                              # Timer I ends it at 5.2
    gc.collect()
    assert len(layer) == 0 and layer._heap                # Timer C's entry still in the heap
    assert gone() is None
    assert layer.next_timer() is None and not layer._heap


def test_a_byte_budget_caps_stored_requests():
    layer = TransactionLayer(max_bytes=20_000)
    accepted = 0
    for i in range(20):
        req = request("MESSAGE")
        req.body = b"x" * 3000
        events = layer.receive(req, A, "udp", 0.0)
        accepted += len(events)
    assert 4 <= accepted <= 6 and len(layer) == accepted
    assert layer.stats["overload"] == 20 - accepted


# ------------------------------------------------------------------------- two layers, lossy
class Link:
    """Two transaction layers joined in memory, a fake clock, a tiny TU on each side, and a
    fault plan: ``drop`` / ``dup`` say, per (kind, n) -- kind the message's first line's
    method or status, n its 1-based count of that kind -- whether to lose / duplicate it."""

    def __init__(self, drop=(), dup=(), transport: str = "udp"):
        self.client, self.server = TransactionLayer(), TransactionLayer()
        self.now = 0.0
        self.drop, self.dup = set(drop), set(dup)
        self.seen: dict[str, int] = {}
        self.transport = transport
        self.client_events: list = []
        self.server_events: list = []

    @staticmethod
    def kind(data: bytes) -> str:
        message = parse(data)
        return message.method if isinstance(message, Request) else str(message.status)

    def transfer(self) -> bool:
        moved = False
        for layer, peer, source in ((self.client, self.server, A), (self.server, self.client, B)):
            for out in layer.outgoing():
                moved = True
                kind = self.kind(out.data)
                self.seen[kind] = n = self.seen.get(kind, 0) + 1
                if (kind, n) in self.drop:
                    continue
                copies = 2 if (kind, n) in self.dup else 1
                for _ in range(copies):
                    events = peer.receive(parse(out.data), source, out.transport, self.now)
                    self.on_events(peer, events)
        return moved

    def on_events(self, layer, events):
        (self.client_events if layer is self.client else self.server_events).extend(events)
        for ev in events:
            (self.client_tu if layer is self.client else self.server_tu)(ev)

    def client_tu(self, ev):
        pass

    def server_tu(self, ev):
        pass

    def run(self, until: float):
        while True:
            while self.transfer():
                pass
            times = [t for t in (self.client.next_timer(), self.server.next_timer())
                     if t is not None]
            extra = self.tu_timer()
            if extra is not None:
                times.append(extra)
            if not times or min(times) > until:
                return
            self.now = max(self.now, min(times))
            for layer in (self.client, self.server):
                self.on_events(layer, layer.handle_timer(self.now))
            self.tu_fire()

    def tu_timer(self):
        return None

    def tu_fire(self):
        pass


class InviteCall(Link):
    """INVITE / 200 / ACK. The UAS TU retransmits its 2xx at T1, 2T1 ... T2 until the ACK
    (RFC 3261 §13.3.1.4, the UA's job); the UAC TU ACKs every 2xx (§13.2.2.4)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.invite = request("INVITE", transport=self.transport.upper())
        self.ok = None
        self.ok_txn = None
        self.retx_at = None
        self.retx_interval = T1
        self.acked = False
        self.ack_branch = new_branch()
        self.client.send_request(self.invite, B, self.transport, 0.0)

    def server_tu(self, ev):
        if isinstance(ev, RequestReceived) and ev.request.method == "INVITE":
            self.ok = make_response(ev.request, 200, to_tag="uas")
            self.ok_txn = ev.transaction
            self.server.respond(ev.transaction, self.ok, self.now)
            if self.transport == "udp":
                self.retx_at = self.now + T1
        elif isinstance(ev, RequestReceived) and ev.request.method == "ACK":
            self.acked = True
            self.retx_at = None

    def client_tu(self, ev):
        if isinstance(ev, ResponseReceived) and ev.response.status == 200:
            ack = request("ACK", branch=self.ack_branch, to_tag=ev.response.to.tag,
                          transport=self.transport.upper())
            self.client.send_ack(ack, B, self.transport)

    def tu_timer(self):
        return self.retx_at

    def tu_fire(self):
        if self.retx_at is not None and self.now >= self.retx_at:
            self.server.send_response(self.ok, A, self.transport)
            self.retx_interval = min(2 * self.retx_interval, T2)
            self.retx_at = self.now + self.retx_interval


FIRST_CALL = ["INVITE", "100", "200", "ACK"]


@pytest.mark.parametrize("fault", [None] + [("drop", k) for k in FIRST_CALL]
                         + [("dup", k) for k in FIRST_CALL]
                         + [("drop2", k) for k in ("INVITE", "200")])
@pytest.mark.parametrize("slow_tu", [False, True])
def test_invite_200_ack_survives_loss_and_duplication(fault, slow_tu):
    plan = {}
    if fault:
        how, kind = fault
        if how == "drop2":
            plan["drop"] = {(kind, 1), (kind, 2)}
        else:
            plan[how] = {(kind, 1)}

    call = InviteCall(**plan)
    if slow_tu:                       # the UAS answers after 1 s: 100 Trying comes first
        answer = call.server_tu

        def later(ev, answer=answer):
            if isinstance(ev, RequestReceived) and ev.request.method == "INVITE":
                call.pending = (call.now + 1.0, ev)
            else:
                answer(ev)
        call.pending = None
        call.server_tu = later
        base_timer, base_fire = call.tu_timer, call.tu_fire

        def tu_timer():
            times = [t for t in (base_timer(), call.pending and call.pending[0]) if t is not None]
            return min(times) if times else None

        def tu_fire():
            if call.pending and call.now >= call.pending[0]:
                _, ev = call.pending
                call.pending = None
                answer(ev)
            base_fire()
        call.tu_timer, call.tu_fire = tu_timer, tu_fire

    call.run(until=100.0)
    invites = [e for e in call.server_events if isinstance(e, RequestReceived)
               and e.request.method == "INVITE"]
    assert len(invites) == 1                                   # never a second call
    oks = [e for e in call.client_events if isinstance(e, ResponseReceived)
           and e.response.status == 200]
    assert oks and [e.retransmission for e in oks] == [False] + [True] * (len(oks) - 1)
    assert call.acked
    assert not [e for e in call.client_events + call.server_events
                if isinstance(e, (TransactionTimeout, TransportError))]
    assert len(call.client) == 0 and len(call.server) == 0    # nothing leaks
    if slow_tu and fault != ("drop", "100"):
        assert call.seen.get("100", 0) >= 1


class Register(Link):
    """REGISTER / 401 / REGISTER (credentials) / 200: two non-INVITE transactions."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent = 1
        self.client.send_request(request("REGISTER", cseq=1), B, self.transport, 0.0)

    def server_tu(self, ev):
        if isinstance(ev, RequestReceived):
            authorized = "Authorization" in ev.request.headers
            status = 200 if authorized else 401
            self.server.respond(ev.transaction, make_response(ev.request, status, to_tag="r"),
                                self.now)

    def client_tu(self, ev):
        if isinstance(ev, ResponseReceived) and ev.response.status == 401:
            self.sent += 1
            again = request("REGISTER", cseq=2)
            again.headers.add("Authorization", 'Digest username="u"')
            self.client.send_request(again, B, self.transport, self.now)


STEPS = ["REGISTER", "401", "200"]


@pytest.mark.parametrize("fault", [None] + [(how, kind, n) for how in ("drop", "dup")
                                            for kind, n in (("REGISTER", 1), ("401", 1),
                                                            ("REGISTER", 2), ("200", 1))])
def test_register_401_register_200_survives_loss_and_duplication(fault):
    plan = {fault[0]: {(fault[1], fault[2])}} if fault else {}
    reg = Register(**plan)
    reg.run(until=200.0)
    finals = [e.response.status for e in reg.client_events if isinstance(e, ResponseReceived)]
    assert finals == [401, 200]                              # each passed up exactly once
    requests = [e for e in reg.server_events if isinstance(e, RequestReceived)]
    assert [e.request.cseq[0] for e in requests] == [1, 2]   # retransmissions absorbed
    assert not [e for e in reg.client_events + reg.server_events
                if isinstance(e, (TransactionTimeout, TransportError))]
    assert len(reg.client) == 0 and len(reg.server) == 0


def test_register_over_tcp_has_no_retransmission_and_no_lingering():
    reg = Register(transport="tcp")
    reg.run(until=200.0)
    assert reg.seen == {"REGISTER": 2, "401": 1, "200": 1}
    assert len(reg.client) == 0 and len(reg.server) == 0


def test_pending_counts_what_still_waits_for_a_final_response():
    layer = TransactionLayer()
    inv = request("INVITE", branch="z9hG4bKpend")
    layer.send_request(inv, B, "udp", 0.0)
    layer.receive(wire(make_response(inv, 180, to_tag="x")), B, "udp", 0.1)
    cancel = request("CANCEL", branch="z9hG4bKpend")
    layer.send_request(cancel, B, "udp", 1.0)
    [ev] = layer.receive(wire(request("OPTIONS")), A, "udp", 1.0)
    assert layer.pending == 3
    layer.receive(wire(make_response(cancel, 200, to_tag="x")), B, "udp", 1.1)
    layer.respond(ev.transaction, make_response(ev.request, 200, to_tag="o"), 1.1)
    assert layer.pending == 1                        # the INVITE still waits for its 487
    layer.receive(wire(make_response(inv, 487, to_tag="x")), B, "udp", 1.2)
    assert layer.pending == 0 and len(layer) == 3    # all three only linger now
    assert parse(layer.outgoing()[-1].data).method == "ACK"


def test_counts_every_live_transaction():
    layer = TransactionLayer()
    for _ in range(5):
        layer.send_request(request("OPTIONS"), B, "udp", 0.0)
    for _ in range(3):
        layer.receive(wire(request("OPTIONS")), A, "udp", 0.0)
    assert len(layer) == 8
