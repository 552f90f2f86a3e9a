"""The programs in examples/: they run, their logic is right, and they work end to end over
T.38 on 127.0.0.1 (mail_receiver against an SMTP sink run here)."""
from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xmfax import Accept, Call, Reject, api
from xmfax.document import load

from faxkit import TX_ID, make_pdf, text_page
from smtpsink import SMTPSink

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def example(name: str):
    """Import examples/<name>.py (not a package) as ``example_<name>``, once."""
    key = f"example_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, EXAMPLES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module           # dataclasses look their module up while being built
        spec.loader.exec_module(module)
    return sys.modules[key]


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("name", ["send_pdf", "route_by_dnis", "mail_receiver"])
def test_help(name):
    out = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), "--help"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("usage:") and "--via" in out.stdout


# --------------------------------------------------------------------------- send_pdf
def test_send_pdf_sends_and_prints_the_record(tmp_path):
    pages = make_pdf(tmp_path / "letter.pdf", 2)

    async def scenario():
        receiver = api.receive(via="t38://127.0.0.1:0", output_dir=tmp_path / "in", once=True,
                               local_id="+1 555 0199", realtime=False)
        task = asyncio.create_task(receiver.run())
        host, port = await receiver.ready()
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(EXAMPLES / "send_pdf.py"), str(tmp_path / "letter.pdf"),
            "--via", f"t38://{host}:{port}", "--local-id", TX_ID, "--fast", "--json",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        results = await asyncio.wait_for(task, 30)
        return proc.returncode, out.decode(), err.decode(), results

    code, out, err, results = asyncio.run(scenario())
    assert code == 0, err
    record = json.loads(out)
    assert record["status"] == "success" and record["remote_id"] == "+1 555 0199" and len(record["pages"]) == 2
    got = load(results[0].files[0])
    assert all(np.array_equal(a.image, b.image) for a, b in zip(pages, got)) and len(got) == 2


def test_send_pdf_exit_codes(tmp_path):
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"%PDF-1.4 nonsense")
    run = lambda *a: subprocess.run([sys.executable, str(EXAMPLES / "send_pdf.py"), *a],  # noqa: E731
                                    capture_output=True, text=True, timeout=60)
    out = run(str(bad), "--via", "t38://127.0.0.1:9", "--fast")
    assert out.returncode == 3 and "cannot read" in out.stderr
    out = run(str(bad), "--via", "fax://nowhere")
    assert out.returncode == 2 and "unknown transport" in out.stderr


# --------------------------------------------------------------------------- route_by_dnis
def test_routes_by_dnis_ani_and_via():
    rt = example("route_by_dnis")
    routes = rt.DEFAULT_ROUTES
    modem = "class1:/dev/ttyUSB0"
    assert rt.decide(Call(via=modem, transport="class1", ani="5551234", dnis="5550100"), routes) == \
        Accept(local_id="+1 555 0100")
    assert rt.decide(Call(via=modem, transport="class1", ani="5551234", dnis="5550107"), routes) == \
        Accept(local_id="+1 555 0101")
    blocked = rt.decide(Call(via=modem, transport="class1", ani="+19005550000", dnis="5550100"), routes)
    assert isinstance(blocked, Reject) and "blocked" in blocked.reason
    # no caller ID at all: the default route, with the receiver's own CSID
    assert rt.choose_route(Call(via=modem, transport="class1"), routes).folder == "general"
    assert rt.decide(Call(via=modem, transport="class1"), routes) == Accept(local_id=None)
    # T.38 has no DNIS: the port the call came in on stands for the number
    t38 = Call(via="t38://0.0.0.0:6001", transport="t38", remote_address="192.0.2.9:4000")
    assert rt.choose_route(t38, routes).folder == "sales"
    assert rt.choose_route(Call(via="t38://0.0.0.0:6002", transport="t38"), routes).folder == "general"
    # a pattern never matches a number the transport did not give
    only = [rt.Route("x", dnis="*0100")]
    assert rt.choose_route(Call(via=modem, transport="class1"), only) is None
    assert isinstance(rt.decide(Call(via=modem, transport="class1"), only), Reject)


def test_routes_file(tmp_path):
    rt = example("route_by_dnis")
    good = tmp_path / "routes.json"
    good.write_text(json.dumps([{"folder": "a", "dnis": "12*", "csid": "+1 2"}, {"folder": "b"}]))
    assert rt.load_routes(str(good)) == [rt.Route("a", csid="+1 2", dnis="12*"), rt.Route("b")]
    for text in ('{"folder": "a"}', '[{"dnis": "1"}]', '[{"folder": "a", "color": "red"}]'):
        bad = tmp_path / "bad.json"
        bad.write_text(text)
        with pytest.raises(ValueError):
            rt.load_routes(str(bad))
    out = subprocess.run([sys.executable, str(EXAMPLES / "route_by_dnis.py"), "--via", "t38://127.0.0.1:0",
                          "--routes", str(bad)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "color" in out.stderr


def test_route_by_dnis_end_to_end_over_t38(tmp_path):
    """Two T.38 lines (ports) stand for two numbers: each fax lands in its number's folder
    and its sender sees that number's CSID."""
    rt = example("route_by_dnis")
    sales, other = free_udp_port(), free_udp_port()
    routes = [rt.Route("sales", csid="+1 555 0100", via=f"t38://127.0.0.1:{sales}"),
              rt.Route("general", csid="+1 555 0999")]
    inbox = tmp_path / "inbox"
    log = []
    receivers = rt.make_receivers([f"t38://127.0.0.1:{sales}", f"t38://127.0.0.1:{other}"], inbox, routes,
                                  realtime=False, once=True, log=log.append)

    async def scenario():
        tasks = [asyncio.create_task(r.run()) for r in receivers]
        for r in receivers:
            await asyncio.wait_for(r.ready(), 10)
        sent = await asyncio.gather(
            api.send([text_page(1)], via=f"t38://127.0.0.1:{sales}", local_id="+1 555 7000", realtime=False),
            api.send([text_page(2)], via=f"t38://127.0.0.1:{other}", local_id="+1 555 8000", realtime=False))
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        return sent

    to_sales, to_other = asyncio.run(scenario())
    assert to_sales.ok and to_other.ok
    assert to_sales.remote_id == "+1 555 0100" and to_other.remote_id == "+1 555 0999"
    assert sorted(p.suffix for p in (inbox / "sales").iterdir()) == [".json", ".pdf", ".tif"]
    assert sorted(p.suffix for p in (inbox / "general").iterdir()) == [".json", ".pdf", ".tif"]
    assert list((inbox / ".incoming").iterdir()) == []
    (record,) = (inbox / "sales").glob("*.json")
    data = json.loads(record.read_text())
    assert data["remote_id"] == "+1 555 7000" and data["local_id"] == "+1 555 0100"
    assert sorted(Path(f).parent for f in data["files"]) == [inbox / "sales"] * 2
    (tif,) = (inbox / "sales").glob("*.tif")
    assert np.array_equal(load(tif)[0].image, text_page(1).image)
    assert any("filed" in line for line in log)


# --------------------------------------------------------------------------- mail_receiver
def test_mail_message_for_a_result(tmp_path):
    mr = example("mail_receiver")
    pdf = tmp_path / "fax.pdf"
    make_pdf(pdf, 1)
    result = api.FaxResult(direction="receive", status="failure", reason="line_lost",
                           reason_text="the line was lost", remote_id="+1 555 7000", local_id="+1 555 0199",
                           files=[str(pdf)], pages=[api._record.PageDetail(1, rows=2200, bad_rows=3)])
    msg = mr.build_message(result, mr.MailConfig(recipient="ops@example.com", sender="fax@example.com"))
    assert msg["Subject"] == "Fax from +1 555 7000, 1 page (INCOMPLETE: line_lost)"
    assert msg["To"] == "ops@example.com" and msg["Message-ID"].endswith("@example.com>")
    body = msg.get_body(("plain",)).get_content()
    assert "Page 1: 3 of 2200 rows damaged" in body and "the line was lost" in body
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "fax.pdf" and att.get_content() == pdf.read_bytes()


def test_mail_receiver_end_to_end(tmp_path):
    mr = example("mail_receiver")
    pages = make_pdf(tmp_path / "letter.pdf", 2)
    log = []
    with SMTPSink() as sink:
        mail = mr.MailConfig(recipient="faxes@example.com", sender="fax@example.com", host=sink.host,
                             port=sink.port, timeout=10)
        receiver = mr.make_receiver("t38://127.0.0.1:0", tmp_path / "spool", mail, local_id="+1 555 0199",
                                    realtime=False, once=True, log=log.append)

        async def scenario():
            task = asyncio.create_task(receiver.run())
            host, port = await receiver.ready()
            sent = await api.send([str(tmp_path / "letter.pdf")], via=f"t38://{host}:{port}", local_id=TX_ID,
                                  realtime=False)
            await asyncio.wait_for(task, 30)      # on_done (the mailing) has run when run() returns
            return sent

        sent = asyncio.run(scenario())
        messages = list(sink.messages)
    assert sent.ok
    (mail_from, rcpt, msg), = messages
    assert mail_from == "fax@example.com" and rcpt == ["faxes@example.com"]
    assert msg["Subject"] == f"Fax from {TX_ID}, 2 pages"
    (att,) = list(msg.iter_attachments())
    assert att.get_content_type() == "application/pdf"
    pdf = tmp_path / "mailed.pdf"
    pdf.write_bytes(att.get_content())
    got = load(pdf)
    assert len(got) == 2 and all(np.array_equal(a.image, b.image) for a, b in zip(pages, got))
    assert any(line.startswith("mailed to faxes@example.com") for line in log)
    assert sorted(p.suffix for p in (tmp_path / "spool").iterdir()) == [".json", ".pdf"]


def test_mail_receiver_keeps_the_fax_when_the_server_is_down(tmp_path):
    mr = example("mail_receiver")
    with socket.socket() as s:      # a TCP port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    log = []
    mail = mr.MailConfig(recipient="faxes@example.com", host="127.0.0.1", port=dead, timeout=2)
    receiver = mr.make_receiver("t38://127.0.0.1:0", tmp_path / "spool", mail, realtime=False, once=True,
                                log=log.append)

    async def scenario():
        task = asyncio.create_task(receiver.run())
        host, port = await receiver.ready()
        sent = await api.send([text_page(1)], via=f"t38://{host}:{port}", local_id=TX_ID, realtime=False)
        await asyncio.wait_for(task, 30)
        return sent

    assert asyncio.run(scenario()).ok
    assert any("mail to faxes@example.com failed" in line for line in log)
    assert len(list((tmp_path / "spool").glob("*.pdf"))) == 1
