"""The REST API through its real HTTP port (uvicorn) on a real service (SQLite and a
real PostgreSQL), with a real T.38 far end: send, status, list, cancel, download, CDRs,
tokens, bad input of every kind -> a 4xx with an errorCode, never a 500."""
from __future__ import annotations

import io
import json
import shutil
import socket
import struct
import subprocess
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from http_kit import SAMPLE_XML, LiveService, docs_text
from storekit import file_ids, sealed_files, write_sealed

HEADER = "XM-Token-Authorization"
LIMITS = {"max_upload_bytes": 2 * 1024 * 1024, "max_attachments": 3, "max_recipients": 5}
#: the command of the docs (docs/server.md, REST API), run as written there (only the
#: documented address replaced by the test node's)
CURL = 'curl -s -F metadata=@fax.xml -F attachments=@doc.pdf -H "XM-Token-Authorization: $TOKEN" ' \
       'http://127.0.0.1:8080/restservice/sendfax'


def documented_curl() -> str:
    text = docs_text() or ""
    for line in text.splitlines():
        line = line.strip().removeprefix("$ ")
        if line.startswith("curl ") and "-F metadata=@" in line and line.endswith("/restservice/sendfax"):
            return line
    return CURL


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.interop)])
def node(request, tmp_path_factory):
    tmp = tmp_path_factory.mktemp(f"rest-{request.param}")
    database = ""
    if request.param == "postgresql":
        server = request.getfixturevalue("pg_server")
        database = server.create_database()
    with LiveService(tmp, database=database, limits=LIMITS, far_end=True, outbound={"retry_delays": [0.2]},
                     notify={"webhook_allow": ["http://127.0.0.1:9/", "hooks.example.com"],
                             "webhook_allow_private": True}) as live:
        live.tokens = {"send": live.token("app"), "read": live.token("reader", "read", owner="app"),
                       "admin": live.token("root", "admin")}
        yield live


@pytest.fixture(scope="module")
def pdf() -> bytes:
    from xmfax.document import load, save
    out = io.BytesIO()
    save(load(b"A one page fax for the REST API tests.\n"), out, format="pdf")
    return out.getvalue()


@pytest.fixture(scope="module")
def tiff() -> bytes:
    from xmfax.document import load, save
    out = io.BytesIO()
    save(load(b"A TIFF page.\n" * 40), out, format="tiff")
    return out.getvalue()


def headers(node, who: str = "send", **more) -> dict:
    return {HEADER: node.tokens[who], **more}


def send(node, xml: bytes = SAMPLE_XML, docs=None, who: str = "send", **kw) -> httpx.Response:
    files = [("metadata", ("fax.xml", xml, "application/xml"))]
    for name, data in (docs if docs is not None else [("a.txt", b"Hello fax\n")]):
        files.append(("attachments", (name, data, "application/octet-stream")))
    return httpx.post(f"{node.url}/sendfax", files=files, headers=headers(node, who, **kw.pop("extra", {})),
                      timeout=60, **kw)


def error_of(r: httpx.Response) -> str:
    assert r.status_code < 500, r.text
    body = r.json()
    assert body["success"] == "false"
    assert "Traceback" not in r.text
    return body["errorInfo"]["errorCode"]


def later_xml(n: int = 1) -> bytes:
    """A fax scheduled an hour ahead (stays queued)."""
    when = int(time.time()) + 3600
    recips = "".join(f"<recipient><number>+1 555 010 {i:04d}</number></recipient>" for i in range(n))
    return f"<schedulefax>{recips}<schedule>{when}</schedule></schedulefax>".encode()


def wait_status(node, fax_id: str, statuses: tuple[str, ...], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(f"{node.url}/transactions/{fax_id}", headers=headers(node))
        tx = r.json()["successInfo"]["transaction"]
        if tx["status"] in statuses:
            return tx
        assert time.monotonic() < deadline, tx
        time.sleep(0.1)


# --------------------------------------------------------------------------- sending
def test_send_json_one_transaction_per_recipient_and_the_fax_is_really_sent(node, pdf):
    xml = b"""<schedulefax><cover><subject>Test</subject></cover>
      <sender><csid>+1 555 0100</csid><name>Tester</name></sender>
      <recipient><number>+1 (555) 123-4567</number><name>Bob</name></recipient>
      <notifications><webhook>http://127.0.0.1:9/hook?key=s3cret</webhook></notifications></schedulefax>"""
    r = send(node, xml, docs=[("doc.pdf", pdf)])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    info = r.json()["successInfo"]
    assert r.json()["success"] == "true"
    (fax_id,) = info["transactionIds"]["transactionId"]
    tx = wait_status(node, fax_id, ("sent", "failed"))
    assert tx["status"] == "sent", tx
    assert tx["broadcastId"] == info["broadcastId"] and tx["number"] == "+15551234567"
    assert tx["pages"] == 2 and tx["csid"] == "+1 555 0100"                      # cover + the PDF page
    kinds = [e["kind"] for e in tx["events"]["event"]]
    for kind in ("submitted", "queued", "attempt", "call", "sent"):
        assert kind in kinds, kinds
    # its notification (a dead webhook: retried) is listed without the URL's secret query
    r = httpx.get(f"{node.url}/transactions/{fax_id}", headers=headers(node))
    (note,) = r.json()["successInfo"]["transaction"]["notifications"]["notification"]
    assert (note["type"], note["target"]) == ("webhook", "http://127.0.0.1:9/hook")
    assert "s3cret" not in note["target"]
    deadline = time.monotonic() + 10                  # the far end's on_done runs after its hang-up
    while not any(len(res.pages) == 2 and res.remote_id == "+1 555 0100" for res in node.received):
        assert time.monotonic() < deadline, node.received
        time.sleep(0.05)

    # download: the TIFF as sent, and a PDF made from it
    r = httpx.get(f"{node.url}/transactions/{fax_id}/document?format=tiff", headers=headers(node))
    assert r.status_code == 200 and r.headers["content-type"] == "image/tiff"
    from xmfax.document import load
    assert len(load(r.content)) == 2
    r = httpx.get(f"{node.url}/transactions/{fax_id}/document", headers=headers(node, Accept="application/pdf"))
    assert r.status_code == 200 and r.content.startswith(b"%PDF-") and f"{fax_id}.pdf" in r.headers[
        "content-disposition"]
    assert len(load(r.content)) == 2

    # CDRs: the attempt is there (an admin export: other tokens are refused)
    r = httpx.get(f"{node.url}/cdrs.csv", headers=headers(node, "read", Accept="text/csv"))
    assert (r.status_code, error_of(r)) == (403, "forbidden")
    r = httpx.get(f"{node.url}/cdrs.csv", headers=headers(node, "admin", Accept="text/csv"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert any(line.split(",")[1] == fax_id for line in r.text.splitlines()[1:])

    # a sent fax cannot be cancelled
    r = httpx.post(f"{node.url}/transactions/{fax_id}/cancel", headers=headers(node))
    assert (r.status_code, error_of(r)) == (409, "conflict")


def test_send_xml_reply_and_broadcast(node):
    r = send(node, later_xml(3), extra={"Accept": "application/xml"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/xml")
    root = ET.fromstring(r.content)
    assert root.tag == "response" and root.findtext("success") == "true"
    bid = root.findtext("successInfo/broadcastId")
    ids = [e.text for e in root.findall("successInfo/transactionIds/transactionId")]
    assert len(ids) == 3 and len(set(ids)) == 3
    r = httpx.get(f"{node.url}/broadcasts/{bid}", headers=headers(node, "read"))
    info = r.json()["successInfo"]
    assert sorted(t["transactionId"] for t in info["transactions"]["transaction"]) == sorted(ids)
    assert info["statusCounts"] == {"queued": 3}
    r = httpx.get(f"{node.url}/transactions?broadcastId={bid}&status=queued&direction=out&limit=2",
                  headers=headers(node, "read", Accept="text/xml"))
    root = ET.fromstring(r.content)
    assert root.findtext("successInfo/count") == "2"
    assert {t.findtext("transactionId") for t in root.findall("successInfo/transactions/transaction")} < set(ids)


def test_xml_error_reply(node):
    r = send(node, b"<schedulefax>", extra={"Accept": "application/xml"})
    assert r.status_code == 400
    root = ET.fromstring(r.content)
    assert root.findtext("success") == "false" and root.findtext("errorInfo/errorCode") == "bad_xml"


def test_accept_nothing_we_speak_is_406(node):
    r = httpx.get(f"{node.url}/transactions", headers=headers(node, Accept="text/html"))
    assert (r.status_code, error_of(r)) == (406, "not_acceptable")
    r = httpx.get(f"{node.url}/transactions", headers=headers(node, Accept="application/json;q=0.2, text/xml"))
    assert r.headers["content-type"].startswith("application/xml")


def test_cancel_queued_then_again(node):
    r = send(node, later_xml(2))
    a, b = r.json()["successInfo"]["transactionIds"]["transactionId"]
    r = httpx.post(f"{node.url}/transactions/{a}/cancel", headers=headers(node))
    assert r.status_code == 200 and r.json()["successInfo"]["transaction"]["status"] == "cancelled"
    assert "cancelled" in [e["kind"] for e in r.json()["successInfo"]["transaction"]["events"]["event"]]
    r = httpx.delete(f"{node.url}/transactions/{b}", headers=headers(node))
    assert r.status_code == 200 and r.json()["successInfo"]["transaction"]["status"] == "cancelled"
    r = httpx.post(f"{node.url}/transactions/{a}/cancel", headers=headers(node))
    assert (r.status_code, error_of(r)) == (409, "conflict")
    r = httpx.post(f"{node.url}/transactions/0123456789abcdef/cancel", headers=headers(node))
    assert (r.status_code, error_of(r)) == (404, "not_found")


@pytest.mark.interop
def test_curl_documented_command(node, pdf, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed (Debian curl; scripts/install.sh --test)")
    (tmp_path / "fax.xml").write_bytes(SAMPLE_XML)
    (tmp_path / "doc.pdf").write_bytes(pdf)
    command = documented_curl().replace("http://127.0.0.1:8080", node.url.rsplit("/restservice", 1)[0])
    out = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "TOKEN": node.tokens["send"]})
    body = json.loads(out.stdout)
    assert body["success"] == "true" and len(body["successInfo"]["transactionIds"]["transactionId"]) == 1


def test_webhook_without_a_signing_secret_is_refused(node, monkeypatch):
    from http_kit import WEBHOOK_SECRET_ENV
    monkeypatch.delenv(WEBHOOK_SECRET_ENV)
    xml = (b"<schedulefax><recipient><number>5551234567</number></recipient><notifications>"
           b"<webhook>https://hooks.example.com/fax</webhook></notifications></schedulefax>")
    r = send(node, xml)
    assert (r.status_code, error_of(r)) == (422, "invalid_metadata")
    assert "secret" in r.json()["errorInfo"]["errorMsg"]


def test_purged_fax_shows_no_personal_data_and_no_image(node):
    """After retention purges a fax, its status stays readable, anonymous, and its images are gone."""
    fax_id = send(node, later_xml()).json()["successInfo"]["transactionIds"]["transactionId"][0]
    r = httpx.post(f"{node.url}/transactions/{fax_id}/cancel", headers=headers(node))
    assert r.status_code == 200
    node.service.store.purge_fax(fax_id, "test")
    tx = httpx.get(f"{node.url}/transactions/{fax_id}", headers=headers(node)).json()["successInfo"]["transaction"]
    assert tx["purgedAt"] and tx["number"] is None and tx["files"]["file"] == []
    assert "5550100" not in json.dumps(tx).replace(" ", "")
    r = httpx.get(f"{node.url}/transactions/{fax_id}/document", headers=headers(node))
    assert (r.status_code, error_of(r)) == (404, "not_found")
    assert "retention" in r.json()["errorInfo"]["errorMsg"]


# --------------------------------------------------------------------------- tokens
def test_tokens_missing_wrong_revoked_and_read_only(node):
    r = httpx.post(f"{node.url}/sendfax", files=[("metadata", ("f.xml", SAMPLE_XML))])
    assert (r.status_code, error_of(r)) == (401, "unauthorized")
    r = httpx.get(f"{node.url}/transactions", headers={HEADER: "xmt_" + "A" * 43})
    assert (r.status_code, error_of(r)) == (401, "unauthorized")
    r = httpx.get(f"{node.url}/transactions", headers={HEADER: "bad token with spaces"})
    assert (r.status_code, error_of(r)) == (401, "unauthorized")
    gone = node.token("gone")
    assert httpx.get(f"{node.url}/transactions", headers={HEADER: gone}).status_code == 200
    assert node.service.store.revoke_token("gone")
    r = httpx.get(f"{node.url}/transactions", headers={HEADER: gone})
    assert (r.status_code, error_of(r)) == (401, "unauthorized")
    # read-only: may read, may not send, cancel or download
    r = send(node, who="read")
    assert (r.status_code, error_of(r)) == (403, "forbidden")
    fax_id = send(node, later_xml()).json()["successInfo"]["transactionIds"]["transactionId"][0]
    assert httpx.get(f"{node.url}/transactions/{fax_id}", headers=headers(node, "read")).status_code == 200
    r = httpx.post(f"{node.url}/transactions/{fax_id}/cancel", headers=headers(node, "read"))
    assert (r.status_code, error_of(r)) == (403, "forbidden")
    r = httpx.get(f"{node.url}/transactions/{fax_id}/document", headers=headers(node, "read"))
    assert (r.status_code, error_of(r)) == (403, "forbidden")


def test_token_is_stored_hashed(node):
    token = node.token("hashed")
    rows = node.service.store.list_tokens()
    assert not any(token in json.dumps(r) for r in rows)


# --------------------------------------------------------------------------- bad requests
BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">'
                  b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]>'
                  b'<schedulefax><recipient><number>1</number><name>&d;</name></recipient></schedulefax>')
XXE = (b'<?xml version="1.0"?><!DOCTYPE schedulefax [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
       b'<schedulefax><recipient><number>1</number><name>&x;</name></recipient></schedulefax>')


@pytest.mark.parametrize("xml, status, code", [
    (b"<schedulefax><recipient>", 400, "bad_xml"),
    (BILLION_LAUGHS, 400, "bad_xml"),
    (XXE, 400, "bad_xml"),
    (b"<schedulefax/>", 422, "invalid_metadata"),
    (b"<schedulefax><recipient><number>12</number></recipient></schedulefax>", 422, "invalid_number"),
    (b"<schedulefax>" + b"<recipient><number>5551234567</number></recipient>" * 6 + b"</schedulefax>",
     413, "too_many"),
    (b"<schedulefax><recipient><number>5551234567</number></recipient><notifications>"
     b"<destination>nosuch</destination></notifications></schedulefax>", 422, "invalid_metadata"),
    (b"<schedulefax><recipient><number>5551234567</number></recipient><notifications>"
     b"<email>a\"b@example.com</email></notifications></schedulefax>", 422, "invalid_metadata"),
], ids=["malformed", "billion-laughs", "xxe", "no-recipient", "bad-number", "too-many-recipients", "unknown-dest",
        "undeliverable-mail"])
def test_bad_metadata(node, xml, status, code):
    r = send(node, xml)
    assert (r.status_code, error_of(r)) == (status, code)
    assert "root:" not in r.text


def _png_bomb() -> bytes:
    """A PNG that declares 100000 x 100000 pixels (10 GB decoded) in a few hundred bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 200000, 9)) + \
        chunk(b"IEND", b"")


@pytest.mark.parametrize("kind", ["zip", "elf", "pdf-named-garbage"])
def test_unknown_attachment_by_content(node, kind):
    data = {"zip": b"PK\x03\x04" + b"\0" * 200, "elf": b"\x7fELF\x02\x01\x01" + b"\0" * 200,
            "pdf-named-garbage": bytes(range(256)) * 4}[kind]
    r = send(node, docs=[("doc.pdf", data)])
    assert (r.status_code, error_of(r)) == (422, "unknown_attachment")


def test_hostile_documents(node, pdf, tiff):
    cases = {"truncated.pdf": pdf[: len(pdf) // 2], "garbage.pdf": b"%PDF-1.4\n" + bytes(range(256)) * 8,
             "truncated.tif": tiff[: len(tiff) // 3], "garbage.tif": b"II*\x00" + b"\xff" * 500,
             "bomb.png": _png_bomb(), "empty.txt": b""}
    for name, data in cases.items():
        r = send(node, docs=[(name, data)])
        assert (r.status_code, error_of(r)) == (422, "bad_document"), (name, r.text)


@pytest.mark.parametrize("case", ["no-metadata", "two-metadata", "unknown-part", "no-attachments",
                                  "too-many-attachments", "not-multipart", "metadata-as-field"])
def test_bad_multipart(node, case):
    url, h = f"{node.url}/sendfax", headers(node)
    doc = ("attachments", ("a.txt", b"hi\n"))
    meta = ("metadata", ("fax.xml", SAMPLE_XML))
    if case == "no-metadata":
        r, want = httpx.post(url, files=[doc], headers=h), (400, "bad_request")
    elif case == "two-metadata":
        r, want = httpx.post(url, files=[meta, meta, doc], headers=h), (400, "bad_request")
    elif case == "unknown-part":
        r, want = httpx.post(url, files=[meta, doc, ("extra", ("x", b"x"))], headers=h), (400, "bad_request")
    elif case == "no-attachments":
        r, want = httpx.post(url, files=[meta], headers=h), (422, "no_documents")
    elif case == "too-many-attachments":
        r, want = httpx.post(url, files=[meta] + [doc] * 5, headers=h), (413, "too_many")
    elif case == "not-multipart":
        r, want = httpx.post(url, content=SAMPLE_XML, headers={**h, "Content-Type": "application/xml"}), \
            (415, "unsupported_media_type")
    else:                                    # metadata as a plain form field: accepted
        r = httpx.post(url, data={"metadata": SAMPLE_XML.decode()}, files=[doc], headers=h)
        assert r.status_code == 200, r.text
        return
    assert (r.status_code, error_of(r)) == want


def test_bad_query_and_routes(node):
    h = headers(node)
    for q in ("limit=0", "limit=abc", "offset=-1", "direction=up", "status=nope", "since=yesterday", "x=1"):
        r = httpx.get(f"{node.url}/transactions?{q}", headers=h)
        assert (r.status_code, error_of(r)) == (400, "bad_request"), q
    r = httpx.get(f"{node.url}/transactions/not-an-id", headers=h)
    assert (r.status_code, error_of(r)) == (404, "not_found")
    r = httpx.get(f"{node.url}/broadcasts/0123456789abcdef", headers=h)
    assert (r.status_code, error_of(r)) == (404, "not_found")
    r = httpx.get(f"{node.url}/nothing-here", headers=h)
    assert (r.status_code, error_of(r)) == (404, "not_found")
    r = httpx.put(f"{node.url}/sendfax", headers=h)
    assert (r.status_code, error_of(r)) == (405, "method_not_allowed")
    r = httpx.get(f"{node.url}/transactions/0123456789abcdef/document?format=png", headers=h)
    assert (r.status_code, error_of(r)) == (400, "bad_request")


# --------------------------------------------------------------------------- upload limits
def _raw(node, head: str, body_parts, pause: float = 0.0) -> bytes:
    """Send a request by hand (head + body parts), then read the answer (5 s at most)."""
    host, port = node.service.http_address
    with socket.create_connection((host, port), timeout=5) as s:
        s.sendall(head.encode())
        for part in body_parts:
            try:
                s.sendall(part)
            except OSError:
                break
            time.sleep(pause)
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data) < data.find(b"\r\n\r\n") + 40:
                got = s.recv(65536)
                if not got:
                    break
                data += got
        except OSError:
            pass
        return data


def test_oversize_by_content_length_is_refused_unread(node):
    """100 MB announced, 64 KB sent: the 413 comes at once, without waiting for the rest."""
    head = (f"POST /restservice/sendfax HTTP/1.1\r\nHost: x\r\n{HEADER}: {node.tokens['send']}\r\n"
            "Content-Type: multipart/form-data; boundary=zz\r\nContent-Length: 104857600\r\n\r\n")
    t0 = time.monotonic()
    answer = _raw(node, head, [b"--zz\r\n" + b"x" * 65536])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer and time.monotonic() - t0 < 5


def test_oversize_chunked_stream_is_cut_at_the_limit(node):
    """No Content-Length: counted while it streams; 3 MB sent against a 2 MB limit."""
    head = (f"POST /restservice/sendfax HTTP/1.1\r\nHost: x\r\n{HEADER}: {node.tokens['send']}\r\n"
            "Content-Type: multipart/form-data; boundary=zz\r\nTransfer-Encoding: chunked\r\n\r\n")
    first = b"--zz\r\nContent-Disposition: form-data; name=\"attachments\"; filename=\"a.txt\"\r\n\r\n"
    chunk = b"y" * (256 * 1024)
    parts = [b"%x\r\n%s\r\n" % (len(first), first)] + [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 12
    answer = _raw(node, head, parts)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b'"too_large"' in answer


@pytest.mark.interop
def test_oversize_with_curl(node, tmp_path):
    if shutil.which("curl") is None:
        pytest.skip("curl not installed (Debian curl; scripts/install.sh --test)")
    (tmp_path / "fax.xml").write_bytes(SAMPLE_XML)
    (tmp_path / "big.txt").write_bytes(b"text line\n" * 300_000)        # 3 MB > the 2 MB limit
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-F", "metadata=@fax.xml", "-F",
                          "attachments=@big.txt", "-H", f"{HEADER}: {node.tokens['send']}",
                          f"{node.url}/sendfax"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    body, _, code = out.stdout.rpartition("\n")
    assert code == "413" and json.loads(body)["errorInfo"]["errorCode"] == "too_large"


# --------------------------------------------------------------------------- never a 500
def test_broken_store_file_is_internal_500_without_traceback(node, tmp_path):
    fax_id = send(node, later_xml()).json()["successInfo"]["transactionIds"]["transactionId"][0]
    store, data_dir = node.service.store, node.service.config.data_dir
    ids = file_ids(store, fax_id)
    assert ids
    blobs = sealed_files(store, data_dir)
    for file_id in ids:                    # one bit flipped in each sealed file, on disk or in the database
        data = bytearray(blobs[file_id])
        data[len(data) // 2] ^= 0xFF
        write_sealed(store, data_dir, file_id, bytes(data))
    r = httpx.get(f"{node.url}/transactions/{fax_id}/document?format=tiff", headers=headers(node))
    assert r.status_code == 500 and r.json()["errorInfo"]["errorCode"] == "internal"
    assert "Traceback" not in r.text and "CryptoError" not in r.text


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(meta=st.one_of(st.binary(max_size=300), st.sampled_from([SAMPLE_XML, b"<schedulefax/>"])),
       doc=st.one_of(st.binary(max_size=300), st.just(b"%PDF-1.7\n"), st.just(b"II*\x00\x08\x00\x00\x00")),
       ctype=st.sampled_from(["multipart/form-data; boundary=q", "multipart/form-data", "text/plain", ""]),
       raw=st.booleans())
def test_fuzz_sendfax_never_500(node, meta, doc, ctype, raw):
    if raw:
        body = b"--q\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n" + meta + b"\r\n--q\r\n" + doc
        r = httpx.post(f"{node.url}/sendfax", content=body, headers={**headers(node), "Content-Type": ctype},
                       timeout=60)
    else:
        r = send(node, meta, docs=[("d", doc)])
    assert r.status_code in (200, 400, 406, 413, 415, 422), r.text
    if r.status_code != 200:
        error_of(r)


# --------------------------------------------------------------------------- a received fax
def test_received_fax_status_and_download(tmp_path, pdf):
    """A fax received over T.38 on the node's line is listed, shown and downloadable."""
    import xmfax

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with LiveService(tmp_path, inbound={"listen": [f"t38://127.0.0.1:{port}#+15550001111"], "realtime": False,
                                        "local_id": "+1 555 000 1111"}) as live:
        token = live.token("root", "admin")          # a received fax is an admin's to see
        app = live.token("app")
        result = live.call(xmfax.send([pdf, pdf], via=f"t38://127.0.0.1:{port}", realtime=False,
                                      local_id="+1 555 777 8888"))
        assert result.status == "success", result
        deadline = time.monotonic() + 20
        while True:
            r = httpx.get(f"{live.url}/transactions?direction=in", headers={HEADER: token})
            rows = r.json()["successInfo"]["transactions"]["transaction"]
            if rows and rows[0]["status"] == "received":
                break
            assert time.monotonic() < deadline, rows
            time.sleep(0.1)
        fax_id = rows[0]["transactionId"]
        tx = httpx.get(f"{live.url}/transactions/{fax_id}", headers={HEADER: token}).json()["successInfo"]["transaction"]
        assert (tx["direction"], tx["pages"], tx["remoteCsid"]) == ("in", 2, "+1 555 777 8888")
        assert "received" in [e["kind"] for e in tx["events"]["event"]]
        from xmfax.document import load
        for fmt in ("tiff", "pdf"):
            r = httpx.get(f"{live.url}/transactions/{fax_id}/document?format={fmt}", headers={HEADER: token})
            assert r.status_code == 200, r.text
            assert len(load(r.content)) == 2
        r = httpx.post(f"{live.url}/transactions/{fax_id}/cancel", headers={HEADER: token})
        assert (r.status_code, error_of(r)) == (409, "conflict")
        # a send_manage token does not see it: not listed, and 404 as an unknown id
        r = httpx.get(f"{live.url}/transactions?direction=in", headers={HEADER: app})
        assert r.json()["successInfo"]["count"] == 0
        for path in (fax_id, f"{fax_id}/document"):
            r = httpx.get(f"{live.url}/transactions/{path}", headers={HEADER: app})
            assert (r.status_code, error_of(r)) == (404, "not_found")


# --------------------------------------------------------------------------- the component
def test_port_taken_is_one_clear_start_error(tmp_path):
    import asyncio

    from xmfax.server import config as C
    from xmfax.server.service import Service, StartError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        cfg = C.from_dict({"http": f"127.0.0.1:{port}"})
        cfg.data_dir = tmp_path / "data"
        with pytest.raises(StartError) as e:
            asyncio.run(Service(cfg).start())
    # the service names the address (service.py words it; the OSError comes from HttpServer.start)
    assert f"127.0.0.1:{port}" in str(e.value) and "in use" in str(e.value).lower()


def test_limits_config():
    from xmfax.server.config import ConfigError
    from xmfax.server.http import LimitsConfig

    assert LimitsConfig.from_dict({}) == LimitsConfig(20 * 1024 * 1024, 20, 100)
    assert LimitsConfig.from_dict({"max_recipients": 7}).max_recipients == 7
    for bad in ({"max_upload": 1}, {"max_attachments": 0}, {"max_recipients": "5"}, {"max_upload_bytes": True}):
        with pytest.raises(ConfigError, match=r"^\[limits\] "):
            LimitsConfig.from_dict(bad)


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(["status", "direction", "broadcastId", "since", "limit", "offset", "until", "format"]),
       value=st.text(max_size=30), path=st.sampled_from(["transactions", "cdrs.csv", "transactions/{id}/document",
                                                         "broadcasts/{id}", "transactions/{id}"]),
       some_id=st.text(alphabet="0123456789abcdefXYZ%/.", min_size=1, max_size=20))
def test_fuzz_queries_never_500(node, name, value, path, some_id):
    url = f"{node.url}/{path.replace('{id}', some_id)}"
    r = httpx.get(url, params={name: value}, headers=headers(node, "admin"))
    assert r.status_code in (200, 307, 400, 404), r.text         # 307: Starlette's trailing-slash redirect
    if r.status_code not in (200, 307):
        error_of(r)


def test_tokens_module(store):
    from xmfax.server import tokens

    t = tokens.create(store, "app-1")
    assert tokens.authorize(store, f"  {t} ", "download")["name"] == "app-1"
    r = tokens.create(store, "ro", "read")
    assert tokens.authorize(store, r, "read")["permission"] == "read"
    for action in ("send", "cancel", "download"):
        with pytest.raises(tokens.TokenError) as e:
            tokens.authorize(store, r, action)
        assert (e.value.code, e.value.status) == ("forbidden", 403)
    for bad in (None, "", "x" * 201, "tok\x00en", t[:-1]):
        with pytest.raises(tokens.TokenError) as e:
            tokens.authorize(store, bad, "read")
        assert (e.value.code, e.value.status) == ("unauthorized", 401)
    a = tokens.create(store, "root", "admin")
    for action in tokens.ACTIONS:
        assert tokens.sees_all(tokens.authorize(store, a, action))
    assert not tokens.sees_all(tokens.authorize(store, r, "read")) and tokens.can_administer("admin")
    assert not tokens.can_administer("send_manage") and not tokens.can_administer("read")
    with pytest.raises(tokens.TokenError):
        tokens.authorize(store, t, "cdrs")                      # the CDR export is an admin's
    o = tokens.create(store, "app-1.ro", "read", owner="app-1")
    assert tokens.owner_of(tokens.authorize(store, o, "read")) == "app-1"
    with pytest.raises(ValueError):
        tokens.create(store, "x", "superuser")
    with pytest.raises(ValueError):
        tokens.create(store, "x", "read", owner="bad owner")
    with pytest.raises(ValueError):
        tokens.create(store, "bad name", "read")
    assert store.revoke_token("app-1")
    with pytest.raises(tokens.TokenError):
        tokens.authorize(store, t, "read")
