"""The admin web page in a real headless browser (Debian's chromium over the DevTools
protocol) against a real `xmfax serve` subprocess (owner: H7 service).

A fax is made for real first: POSTed to the REST API and sent by the service's outbound
queue over unpaced T.38 to an `xmfax receive` process, so the fax page has an event log,
a call and a T.30 ladder to show.
"""
from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from serve_proc import Serve, xmfax
from server_cdp import CHROMIUM, Browser

pytestmark = pytest.mark.interop

XSS = "<script>x()</script>"
LABEL = '<img src=x onerror="document.title=1"><script>document.title=1</script>'


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pdf() -> bytes:
    from xmfax.document import load, save
    out = io.BytesIO()
    save(load(b"Invoice 42\n\nA page for the web test.\n"), out, "pdf")
    return out.getvalue()


def _send_fax(url: str, token: str) -> str:
    meta = b"""<?xml version="1.0" encoding="UTF-8"?>
<schedulefax><recipient><number>+15551234567</number><name>Bob</name></recipient></schedulefax>"""
    r = httpx.post(url + "/restservice/sendfax", headers={"XM-Token-Authorization": token, "Accept": "application/json"},
                   files=[("metadata", ("fax.xml", meta, "application/xml")),
                          ("attachments", ("doc.pdf", _pdf(), "application/pdf"))], timeout=30)
    assert r.status_code == 200, r.text
    ids = r.json()["successInfo"]["transactionIds"]["transactionId"]
    assert len(ids) == 1
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        g = httpx.get(f"{url}/restservice/transactions/{ids[0]}",
                      headers={"XM-Token-Authorization": token, "Accept": "application/json"}, timeout=10)
        assert g.status_code == 200, g.text
        if '"sent"' in g.text:
            return ids[0]
        assert '"failed"' not in g.text, g.text
        time.sleep(0.3)
    raise AssertionError(f"the fax was not sent in 60 s: {g.text}")


@pytest.fixture
def far_end(tmp_path):
    port = _free_udp_port()
    out = tmp_path / "far"
    proc = subprocess.Popen([sys.executable, "-m", "xmfax", "receive", "--via", f"t38://127.0.0.1:{port}",
                             "-o", str(out), "--fast", "--local-id", "+1 555 123 4567", "-q"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if not line.startswith("receive: ready"):
        proc.kill()
        rest = proc.communicate()[1]
        raise AssertionError(f"xmfax receive did not start: {line}{rest[-2000:]}")
    yield port, out
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    proc.stderr.close()


def test_web_page_in_chromium(tmp_path, far_end):
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    port, received = far_end
    app = xmfax("token", "create", "--data", "data", "--name", "app", cwd=tmp_path).stdout.strip()
    token = xmfax("token", "create", "--data", "data", "--name", "admin", "--permission", "admin",
                  cwd=tmp_path).stdout.strip()
    reader = xmfax("token", "create", "--data", "data", "--name", "reader", "--permission", "read",
                   cwd=tmp_path).stdout.strip()
    (tmp_path / "serve.toml").write_text(
        f'[outbound]\nrealtime = false\nlines = ["t38://127.0.0.1:{port}"]\nretry_delays = [1.0]\n'
        '[[destinations]]\nname = "archive"\ntype = "folder"\npath = "' + str(tmp_path / "archive") + '"\n')
    shots = tmp_path / "shots"
    shots.mkdir()
    with Serve(tmp_path, "--data", "data", "--config", "serve.toml", "--http", "127.0.0.1:0") as node:
        fax_id = _send_fax(node.url, app)
        assert list(received.glob("*.tif")), "the far end received no fax"
        with Browser() as b:
            # not logged in: every page goes to the login form; a wrong or read-only token is refused
            b.goto(node.url + "/numbers")
            assert "/login" in b.url() and b.js("document.cookie") == ""       # HttpOnly: no script sees it
            for bad, why in (("xmt_nope", "unknown or revoked token"), (reader, "may not manage"),
                             (app, "may not manage")):                       # send_manage is not admin
                b.type("#token", bad)
                b.click("#login-button", wait_load=True)
                assert why in b.text("#error")
            b.type("#token", token)
            b.click("#login-button", wait_load=True)
            assert b.url().endswith("/numbers"), b.url()                       # back where we were sent from

            # a hostile CSID is refused (T.30 cannot carry it) and the refusal shows it as text
            b.type("#number", "+15550100")
            b.type("#csid", XSS)
            b.click("#save-number", wait_load=True)
            assert XSS in b.text("#message") and "Table 3/T.30" in b.text("#message")
            assert b.js("document.querySelectorAll('main script').length") == 0
            # a fax number whose label and users carry markup: shown as text, never run
            b.click("a[href='/numbers']", wait_load=True)
            b.type("#number", "+15550100")
            b.type("#csid", "+1 555 0100")
            b.type("#users", "alice, <b>bob</b>")
            b.type("#label", LABEL)
            b.click("#save-number", wait_load=True)
            assert b.js("document.querySelector('#numbers td.csid').textContent") == "+1 555 0100"
            assert LABEL in b.text("#numbers") and "<b>bob</b>" in b.text("#numbers")
            assert b.js("document.querySelectorAll('#numbers script, #numbers img, #numbers b').length") == 0
            assert b.js("document.title") != "1"
            # edit it: the CSID back to the number's default
            b.click("#numbers a[href$='/edit']", wait_load=True)
            assert b.js("document.querySelector('#csid').value") == "+1 555 0100"
            b.type("#csid", "+1 555 0199")
            b.click("#save-number", wait_load=True)
            assert "+1 555 0199" in b.text("#numbers")
            b.type("#number", "+15550111")
            b.click("#save-number", wait_load=True)
            b.click("#numbers form[action='/numbers/%2B15550111/delete'] button", wait_load=True)
            assert "+15550111" not in b.text("#numbers") and "+15550100" in b.text("#numbers")
            b.screenshot(shots / "numbers.png")

            # the routing table: add two rules, move the second up
            b.click("a[href='/rules']", wait_load=True)
            b.type("#rule-name", "sales")
            b.select("#rule-kind", "direct")
            b.type("#rule-dnis", "+1555010?")
            b.type("#rule-destinations", "archive")
            b.click("#rule-continue")
            b.click("#save-rule", wait_load=True)
            b.type("#rule-name", "night")
            b.type("#rule-ani", "+44*")
            b.type("#rule-destinations", "archive")
            b.click("#save-rule", wait_load=True)
            # a rule naming a destination that does not exist is refused, the table unchanged
            b.type("#rule-name", "broken")
            b.type("#rule-dnis", "+1*")
            b.type("#rule-destinations", "nowhere")
            b.click("#save-rule", wait_load=True)
            assert "nowhere" in b.text("#message") and "routing table would not work" in b.text("#message")
            b.click("a[href='/rules']", wait_load=True)
            names = b.js("[...document.querySelectorAll('#rules td.rule-name')].map(e => e.textContent)")
            assert names == ["sales", "night"]
            b.click("#rules tbody tr:nth-child(2) form[action$='/move'] button", wait_load=True)
            names = b.js("[...document.querySelectorAll('#rules td.rule-name')].map(e => e.textContent)")
            assert names == ["night", "sales"]
            assert "yes" in b.text("#rules tbody tr:nth-child(2)")           # sales continues
            # edit a rule: its DNIS pattern
            b.click("#rules tbody tr:nth-child(2) a[href$='/edit']", wait_load=True)
            assert b.js("document.querySelector('#rule-dnis').value") == "+1555010?"
            b.type("#rule-dnis", "+1555*")
            b.click("#save-rule", wait_load=True)
            assert "+1555*" in b.text("#rules tbody tr:nth-child(2)")
            b.screenshot(shots / "rules.png")

            # a form without this session's CSRF token is refused (and changes nothing)
            b.click("a[href='/numbers']", wait_load=True)
            b.js("document.querySelector('#number-form input[name=csrf]').value = 'forged'")
            b.type("#number", "+15550199")
            b.click("#save-number", wait_load=True)
            assert "CSRF" in b.text("#message")
            b.click("a[href='/numbers']", wait_load=True)
            assert "+15550199" not in b.text("#numbers")
            # destinations and users
            b.click("a[href='/destinations']", wait_load=True)
            assert "archive" in b.text("#destinations")
            b.type("#dest-name", "scans")
            b.select("#dest-type", "folder")
            b.type("#dest-params", f'path = "{tmp_path / "scans"}"\nformat = "pdf"')
            b.click("#save-destination", wait_load=True)
            assert "scans" in b.text("#destinations")
            b.type("#dest-name", "bad")
            b.select("#dest-type", "email")
            b.type("#dest-params", 'format = "pdf"')                        # no "to": refused
            b.click("#save-destination", wait_load=True)
            assert "bad" in b.text("#message")
            b.click("a[href='/destinations']", wait_load=True)
            b.click("#destinations form[action='/destinations/scans/delete'] button", wait_load=True)
            assert "scans" not in b.text("#destinations") and "bad" not in b.text("#destinations")
            # a destination the routing table uses cannot be deleted
            b.click("#destinations form[action='/destinations/archive/delete'] button", wait_load=True)
            assert "routing table would not work" in b.text("#message")
            b.click("a[href='/users']", wait_load=True)
            b.type("#user-name", "alice")
            b.type("#user-email", "alice@example.com")
            b.type("#user-destinations", "archive")
            b.click("#save-user", wait_load=True)
            assert "alice@example.com" in b.text("#users")

            # the fax list, filtered, and into the fax
            b.click("a[href='/faxes']", wait_load=True)
            assert b.url().endswith("/faxes"), (b.url(), b.text())
            b.select("#filter-status", "sent")
            b.click("#filter-button", wait_load=True)
            assert "status=sent" in b.url()
            assert fax_id in b.text("#faxes")
            b.click(f"a.fax-link[href='/faxes/{fax_id}']", wait_load=True)
            log = b.text("#events")
            for kind in ("submitted", "queued", "attempt", "sent"):
                assert kind in log, log
            assert "+1 555 123 4567" in b.text("#facts")                     # the far end's CSI
            assert "t38://127.0.0.1" in b.text("#calls")
            # the ladder image loaded (a real SVG from the stored T.30 record)
            assert b.js("""new Promise(ok => { const i = document.querySelector('#ladder');
                if (i.complete) ok(i.naturalWidth); else i.onload = () => ok(i.naturalWidth); })""") > 100
            ladder_url = b.js("document.querySelector('#ladder').src")
            pdf_url = b.js("document.querySelector('#download-pdf').href")
            shot = b.screenshot(shots / "fax.png")
            jar = b.cookies()
            assert set(jar) >= {"xmfax_session"}
            svg = httpx.get(ladder_url, cookies=jar, timeout=10)
            assert svg.headers["content-type"].startswith("image/svg+xml")
            assert "DCS" in svg.text and "MCF" in svg.text
            pdf = httpx.get(pdf_url, cookies=jar, timeout=30)
            assert pdf.status_code == 200 and pdf.content[:5] == b"%PDF-"
            assert httpx.get(pdf_url, timeout=10, follow_redirects=False).status_code == 303   # no cookie
            for bad in ("%3Cscript%3Ex%3C%2Fscript%3E", "0000000000000000", "..%2F..%2Fkey"):
                for tail in ("", "/ladder.svg", "/download/pdf"):
                    r = httpx.get(f"{node.url}/faxes/{bad}{tail}", cookies=jar, timeout=10)
                    assert r.status_code == 404 and "<script>" not in r.text, (bad, tail, r.text[:300])
            assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

            # log out: the pages want a login again
            b.click("#logout", wait_load=True)
            b.goto(node.url + f"/faxes/{fax_id}")
            assert "/login" in b.url()
        # a revoked token's session ends
        with Browser() as b:
            b.goto(node.url + "/login")
            b.type("#token", token)
            b.click("#login-button", wait_load=True)
            assert b.url().endswith("/faxes")
            assert xmfax("token", "revoke", "--data", "data", "--name", "admin", cwd=tmp_path).returncode == 0
            b.goto(node.url + "/faxes")
            assert "/login" in b.url()
    assert node.returncode == 0, node.stderr
    keep = os.environ.get("XMFAX_WEB_SHOT")              # docs: copy the fax page's screenshot out
    if keep:
        Path(keep).write_bytes((shots / "fax.png").read_bytes())
