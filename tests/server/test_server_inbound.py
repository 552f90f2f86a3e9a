"""Inbound faxes through the real service (xmfax/server/inbound.py): real calls over T.38 and
SIP on 127.0.0.1 into a Service running in this process, on SQLite and PostgreSQL."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from inboundkit import (address, inbound_rows, make_config, pages, plaintext_tiffs, running, same_pixels, send,
                        settled, udp_rebound, udp_sockets, wait_for)
from xmfax.document import load
from xmfax.server.config import ConfigError
from xmfax.server.inbound import InboundConfig, ListenLine, csid_problem
from xmfax.server.service import StartError


def run(coro, timeout: float = 60.0):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def db_arg(store_url: str) -> str:
    return store_url if "://" in store_url else ""


# --------------------------------------------------------------------------- a real call
def test_t38_call_answered_with_the_numbers_csid_stored_encrypted_routed(tmp_path, store_url):
    data, inbox = tmp_path / "data", tmp_path / "inbox"
    cfg = make_config(data, inbox, database=db_arg(store_url), listen=["t38://127.0.0.1:0#+15551230001"])
    sent_pages = pages(2)

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            assert f"fax t38://127.0.0.1:{port}" in svc.ready_line()
            sent = await send(sent_pages, f"t38://{host}:{port}?local=127.0.0.1:0")
            assert sent.ok, sent.summary()
            assert sent.remote_id == "+1 555 123 0001"          # the number's CSID, not the default
            (row,) = await settled(svc)
            fax_id = row["id"]
            events = await svc.db(svc.store.events, fax_id)
            stored = load(await svc.db(svc.store.read_file, fax_id, "tiff"))
            record = await svc.db(svc.store.read_file, fax_id, "record")
            notes = await svc.db(svc.store.notifications, fax_id)
            calls = await svc.db(svc.store.calls, fax_id=fax_id)
            return row, events, stored, record, notes, calls

    row, events, stored, record, notes, calls = run(main())
    assert row["status"] == "received" and row["reason"] == "ok" and row["pages"] == 2
    assert row["dnis"] == "+15551230001" and row["csid"] == "+1 555 123 0001" and row["remote_id"] == "+1 555 0100"
    assert row["notify_status"] == "delivered" and row["claimed_by"] is None and row["completed_at"]
    kinds = [e["kind"] for e in events]
    assert kinds[:3] == ["receiving", "page", "page"], kinds
    assert kinds[3:6] == ["call", "received", "routing"], kinds
    assert "delivered" in kinds[6:]
    assert events[1]["message"] == "page 1 stored (MCF)"
    assert events[0]["message"].endswith("answered as CSID '+1 555 123 0001'")
    routing = events[5]
    assert routing["data"]["destinations"] == ["alice-inbox"]
    assert routing["message"].splitlines() == [
        "routing fax dnis=+15551230001 ani=-",
        "rule 1 'dir' directory: +15551230001 -> users [alice:alice-inbox]; stop",
        "rule 2 'default' default: not needed (1 destination(s) given)",
        "result: [alice-inbox]",
    ]
    same_pixels(sent_pages, stored)                       # what was sent, pixel for pixel
    assert b'"remote_id": "+1 555 0100"' in record
    assert [n["status"] for n in notes] == ["delivered"]
    delivered = list((inbox / "alice").iterdir())
    assert len(delivered) == 1
    same_pixels(sent_pages, load(delivered[0]))
    assert len(calls) == 1 and calls[0]["status"] == "success" and calls[0]["pages"] == 2
    assert calls[0]["direction"] == "in" and calls[0]["remote_id"] == "+1 555 0100"
    # encrypted at rest: no TIFF in the clear anywhere under the data folder, spool empty
    assert plaintext_tiffs(tmp_path / "data") == []


def test_sip_call_dnis_from_the_request_uri(tmp_path, store_url):
    data, inbox = tmp_path / "data", tmp_path / "inbox"
    cfg = make_config(data, inbox, database=db_arg(store_url), listen=["sip://127.0.0.1:0"])

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            first = await send(pages(1), f"sip:+15551230002@{host}:{port}",         # no CSID set: the number
                               sip={"from_uri": "sip:+4930123456@127.0.0.1"})
            second = await send(pages(1), f"sip:5551230001@{host}:{port}")         # dialled nationally
            third = await send(pages(1), f"sip:+15559999999@{host}:{port}")        # not a fax number
            rows = await settled(svc, 3)
            return first, second, third, rows

    first, second, third, rows = run(main())
    assert first.ok and second.ok and third.ok, (first.summary(), second.summary(), third.summary())
    assert first.remote_id == "+15551230002"
    assert second.remote_id == "+1 555 123 0001"
    assert third.remote_id == ""                                       # [inbound].local_id, empty
    by_dnis = {r["dnis"]: r for r in rows}
    assert set(by_dnis) == {"+15551230002", "5551230001", "+15559999999"}
    assert by_dnis["5551230001"]["metadata"]["fax_number"] == "+15551230001"
    assert by_dnis["+15551230002"]["ani"] == "+4930123456"                # the caller's From
    assert "fax_number" not in by_dnis["+15559999999"]["metadata"]
    assert all(r["status"] == "received" and r["metadata"].get("sip_call_id") for r in rows)
    # routed: the directory for the known number with a user, the default rule for the others
    assert len(list((inbox / "alice").iterdir())) == 1
    assert len(list((inbox / "catchall").iterdir())) == 2


def test_reject_unknown_numbers_with_404(tmp_path):
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", listen=["sip://127.0.0.1:0"],
                      inbound={"reject_unknown": True, "formats": ["pdf"]})

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            refused = await send(pages(1), f"sip:+15559999999@{host}:{port}")
            ok = await send(pages(1), f"sip:+15551230002@{host}:{port}")
            rows = await wait_for(lambda: _two(svc), what="two rows")
            good = next(r for r in rows if r["dnis"] == "+15551230002")
            kinds = sorted(f["kind"] for f in await svc.db(svc.store.files, good["id"]))
            pdf = await svc.db(svc.store.read_file, good["id"], "pdf")
            return refused, ok, rows, kinds, pdf

    refused, ok, rows, kinds, pdf = run(main())
    assert kinds == ["pdf", "record", "tiff"] and pdf.startswith(b"%PDF")      # formats = ["pdf"]: both kept
    assert not refused.ok and refused.reason == "not_found", refused.summary()
    assert ok.ok
    bad = next(r for r in rows if r["dnis"] == "+15559999999")
    assert bad["status"] == "failed" and bad["reason"] == "rejected" and bad["notify_status"] == "none"
    good = next(r for r in rows if r["dnis"] == "+15551230002")
    assert good["status"] == "received" and good["pages"] == 1


async def _two(svc):
    rows = await inbound_rows(svc)
    return rows if len(rows) == 2 and all(r["status"] != "receiving" and r["claimed_by"] is None
                                          for r in rows) else None


def test_a_call_without_pages_is_failed_and_still_routed(tmp_path):
    """A caller that hangs up before any page: the fax is `failed` with the T.30 reason,
    routed (its notification says so); nothing is left in the spool."""
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", listen=["t38://127.0.0.1:0#+15551230002"],
                      inbound={"max_duration": 1})

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            # a "caller" that sends one datagram and goes away: the receiver answers, then times out
            loop = asyncio.get_running_loop()
            transport, _ = await loop.create_datagram_endpoint(asyncio.DatagramProtocol, local_addr=("127.0.0.1", 0))
            from xmfax.t38.ifp import Indicator, IndicatorPacket, encode_ifp
            from xmfax.t38.udptl import UDPTLPacket, encode_udptl
            transport.sendto(encode_udptl(UDPTLPacket(0, encode_ifp(IndicatorPacket(Indicator.CNG)))), (host, port))
            rows = await settled(svc, 1, timeout=15)
            transport.close()
            events = await svc.db(svc.store.events, rows[0]["id"])
            return rows[0], events

    row, events = run(main())
    assert row["status"] == "failed" and row["pages"] == 0 and row["reason"] != "ok"
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "receiving" and kinds[-3:] == ["failed", "routing", "delivered"], kinds
    assert events[-2]["message"].splitlines()[-2:] == ["result: [catchall]", "no page received: nothing to deliver"]
    assert events[-2]["data"]["destinations"] == []
    assert row["notify_status"] == "delivered"            # nothing to deliver: no notification row
    assert not (tmp_path / "inbox" / "catchall").exists()
    assert plaintext_tiffs(tmp_path / "data") == []


# --------------------------------------------------------------------------- config
def test_zero_retention_needs_a_default_rule_destination(tmp_path):
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", retention={"days": 0},
                      rules=[{"name": "dir", "kind": "directory"}])

    async def main():
        from xmfax.server.service import Service
        with pytest.raises(StartError, match=r"zero retention\) needs a default rule with a destination"):
            await Service(cfg).start()

    run(main())


def test_inbound_config_keys():
    cfg = InboundConfig.from_dict({"listen": ["t38://0.0.0.0:6000#+15551230001",
                                              {"url": "sip://0.0.0.0:5060", "register": "sip:fax@pbx.example"}],
                                   "formats": ["pdf"], "reject_unknown": True, "local_id": "+1 555 0000",
                                   "max_duration": 600, "default_country": 44, "stale_after": 3600},
                                  {"default_country": "1"})
    assert cfg.listen == [ListenLine("t38://0.0.0.0:6000", "+15551230001"),
                          ListenLine("sip://0.0.0.0:5060", "", "sip:fax@pbx.example")]
    assert cfg.formats == ("tiff", "pdf") and cfg.reject_unknown and cfg.max_duration == 600.0
    assert cfg.stale_after == 3600.0
    assert cfg.default_country == "44"
    assert InboundConfig.from_dict({}, {"default_country": "49"}).default_country == "49"
    assert InboundConfig.from_dict({}).listen == []
    assert InboundConfig.from_dict({"stale_after": 0}).stale_after == 0.0          # 0: max_duration + 120


@pytest.mark.parametrize("d,message", [
    ({"lisen": []}, r"\[inbound\] lisen: unknown key"),
    ({"listen": ["http://x"]}, r"listen\[0\]: unknown transport"),
    ({"listen": ["sip:+1555@host"]}, "is an address to call"),
    ({"listen": [{"url": "t38://0.0.0.0:1", "register": "sip:a@b"}]}, "register is for sip:// lines"),
    ({"listen": [{"number": "+1"}]}, "url .* is required"),
    ({"formats": ["png"]}, "formats"),
    ({"reject_unknown": "yes"}, "reject_unknown: true or false"),
    ({"local_id": "ACME <fax>"}, r"local_id: CSID 'ACME <fax>' has characters T.30 does not allow"),
    ({"max_duration": 0}, "max_duration"),
    ({"max_rate": 28800}, "max_rate"),
    ({"stale_after": 0.5}, r"stale_after: a number of seconds >= 1 \(or 0: max_duration \+ 120\)"),
    ({"default_country": "0"}, r"\[inbound\] default_country"),
])
def test_inbound_config_refuses(d, message):
    with pytest.raises(ConfigError, match=message):
        InboundConfig.from_dict(d)


def test_csid_problem():
    assert csid_problem("+1 555 123 0001") is None
    assert "longer than 20" in csid_problem("+1 555 123 0001 000000")
    assert "Table 3/T.30" in csid_problem("ACME")


def test_spool_folder_that_cannot_be_written_stops_the_start(tmp_path):
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", listen=["t38://127.0.0.1:0"])
    spool = tmp_path / "data" / "spool" / "inbound"
    spool.mkdir(parents=True)
    (spool / cfg.node.replace("/", "_")).write_text("a file where the node's spool folder goes")

    async def main():
        from xmfax.server.service import Service
        with pytest.raises(StartError, match="inbound spool folder .*: exists and is not a folder") as err:
            await Service(cfg).start()
        return err.value.exit_code

    assert run(main()) == 3


def test_zero_retention_number_purged_once_delivered(tmp_path):
    """A number under zero retention: the fax is received, routed, delivered to its folder,
    then its image and personal data are gone from the service (an anonymous row and a
    `purge` event stay); the delivered copy is the only one."""
    from inboundkit import directory

    inbox = tmp_path / "inbox"
    numbers = directory(inbox)["numbers"]
    numbers[1] = {**numbers[1], "retention_days": 0}
    cfg = make_config(tmp_path / "data", inbox, listen=["t38://127.0.0.1:0#+15551230002"], numbers=numbers)

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            sent = await send(pages(1), f"t38://{host}:{port}?local=127.0.0.1:0")
            (row,) = await settled(svc)
            row = await wait_for(lambda: _purged(svc, row["id"]), what="the purge")
            return sent, row, await svc.db(svc.store.files, row["id"]), await svc.db(svc.store.events, row["id"])

    sent, row, files, events = run(main())
    assert sent.ok and sent.remote_id == "+15551230002"
    assert row["status"] == "received" and row["notify_status"] == "delivered" and row["pages"] == 1
    assert row["retention_days"] == 0 and row["purged_at"]
    assert (row["dnis"], row["ani"], row["csid"], row["remote_id"], row["metadata"]) == (None, None, None, None, {})
    assert files == [] and [e["kind"] for e in events] == ["purge"]
    assert len(list((inbox / "catchall").iterdir())) == 1
    assert plaintext_tiffs(tmp_path / "data") == []


async def _purged(svc, fax_id):
    row = await svc.db(svc.store.get_fax, fax_id)
    return row if row["purged_at"] else None


def test_a_line_that_fails_is_logged_its_call_recovered_and_answers_again(tmp_path, caplog):
    """A receiver that raises (injected: after its second call, before reporting it - a
    driver bug or socket error would do the same) is logged; the call it never reported is
    recovered from the spool at once; the line answers again on its port."""
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", listen=["t38://127.0.0.1:0#+15551230001"])

    async def main():
        async with running(cfg) as svc:
            inbound = svc.component("Inbound")
            host, port = address(svc)
            via = f"t38://{host}:{port}?local=127.0.0.1:0"
            broken = inbound.receivers[0]
            original = broken._one_call

            async def dies_after_the_call(dispatcher):
                await original(dispatcher)
                raise RuntimeError("injected line failure")
            broken._one_call = dies_after_the_call       # the wait in progress takes the first call
            before = udp_sockets(port)
            first = await send(pages(1), via)
            await udp_rebound(port, before)                # listening again for the next caller
            before = udp_sockets(port)
            second = await send(pages(2), via)
            await wait_for(lambda: _replaced(inbound, broken), what="the line restarted")
            await udp_rebound(port, before)
            third = await send(pages(1), via)
            rows = await settled(svc, 3)
            events = {r["pages"]: await svc.db(svc.store.events, r["id"]) for r in rows}
            return first, second, third, rows, events

    caplog.set_level("ERROR", logger="xmfax.server.inbound")
    first, second, third, rows, events = run(main())
    assert first.ok and second.ok and third.ok
    assert sorted((r["status"], r["pages"], r["reason"]) for r in rows) == [
        ("received", 1, "ok"), ("received", 1, "ok"), ("received", 2, "ok")]
    assert "the call had ended; its fax is stored after the restart" in [e["message"] for e in events[2]]
    assert any("failed: RuntimeError: injected line failure; answering again in 1 s" in r.getMessage()
               for r in caplog.records)
    assert plaintext_tiffs(tmp_path / "data") == []


async def _replaced(inbound, old):
    return inbound.receivers[0] is not old and inbound.receivers[0].local_address is not None


def test_custom_rules_named_in_the_config(tmp_path, monkeypatch):
    """[[rules]] kind = "custom" with callable = "module:function": imported at start (a
    module that does not import stops the start), called per fax; one that raises is traced
    and skipped, the fax still routed."""
    (tmp_path / "site_rules.py").write_text(
        "def broken(fax, ctx):\n"
        "    raise KeyError('no such tenant')\n"
        "\n"
        "def by_number(fax, ctx):\n"
        "    return ['alice-inbox'] if fax['dnis'].endswith('0002') else None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rules = [{"name": "tenant", "kind": "custom", "callable": "site_rules:broken", "continue": True},
             {"name": "by-number", "kind": "custom", "callable": "site_rules:by_number"},
             {"name": "default", "kind": "default", "destinations": ["catchall"]}]
    cfg = make_config(tmp_path / "data", tmp_path / "inbox", listen=["t38://127.0.0.1:0#+15551230002"], rules=rules)

    async def main():
        async with running(cfg) as svc:
            host, port = address(svc)
            sent = await send(pages(1), f"t38://{host}:{port}?local=127.0.0.1:0")
            (row,) = await settled(svc)
            events = await svc.db(svc.store.events, row["id"])
            return sent, row, next(e for e in events if e["kind"] == "routing")

    sent, row, routing_event = run(main())
    assert sent.ok and row["notify_status"] == "delivered"
    assert routing_event["message"].splitlines()[1:4] == [
        "rule 1 'tenant' custom site_rules:broken: KeyError: 'no such tenant': skipped",
        "rule 2 'by-number' custom site_rules:by_number matched -> [alice-inbox]; stop",
        "rule 3 'default' default: not needed (1 destination(s) given)",
    ]
    assert routing_event["data"]["errors"] == ["custom site_rules:broken: KeyError: 'no such tenant'"]
    assert len(list((tmp_path / "inbox" / "alice").iterdir())) == 1

    bad = make_config(tmp_path / "data2", tmp_path / "inbox",
                      rules=[{"name": "x", "kind": "custom", "callable": "site_rules_missing:f"}, rules[2]])

    async def refused():
        from xmfax.server.service import Service
        with pytest.raises(StartError, match="callable: 'site_rules_missing:f' cannot be loaded"):
            await Service(bad).start()

    run(refused())
