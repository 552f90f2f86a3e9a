"""HTTPS: with `tls_cert`/`tls_key` in the config, `xmfax serve` serves the REST API (and
the web page) over TLS itself, and says https:// in its ready line; a client that checks
the certificate (httpx and curl) sends a fax through it; plain HTTP to that port gets no
answer; one of the two keys alone is a configuration error (exit 2)."""
from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from mailkit import make_cert
from outboundkit import page_pdf
from serve_proc import Serve, xmfax


def control() -> bytes:
    when = int(time.time()) + 3600                    # stays queued: no line is needed
    return (f"<schedulefax><recipient><number>+1 555 010 0001</number></recipient>"
            f"<schedule>{when}</schedule></schedulefax>").encode()


def test_rest_api_over_https(tmp_path):
    cert = make_cert(tmp_path / "tls", "localhost")
    config = tmp_path / "serve.toml"
    config.write_text(f'tls_cert = "{cert.cert}"\ntls_key = "{cert.key}"\n')
    data = tmp_path / "data"
    pdf = page_pdf(tmp_path / "letter.pdf", 1)
    with Serve(tmp_path, "--data", str(data), "--http", "127.0.0.1:0", "--config", str(config)) as node:
        assert node.url.startswith("https://127.0.0.1:"), node.ready_line
        out = xmfax("token", "create", "--data", str(data), "--name", "app", "--config", str(config))
        assert out.returncode == 0, out.stderr
        token = out.stdout.strip()
        headers = {"XM-Token-Authorization": token, "Accept": "application/json"}
        with httpx.Client(verify=ssl.create_default_context(cafile=str(cert.cert)), timeout=30) as client:
            r = client.post(f"{node.url}/restservice/sendfax", headers=headers,
                            files=[("metadata", ("fax.xml", control(), "application/xml")),
                                   ("attachments", ("letter.pdf", pdf, "application/pdf"))])
            assert r.status_code == 200, r.text
            (tid,) = r.json()["successInfo"]["transactionIds"]["transactionId"]
            got = client.get(f"{node.url}/restservice/transactions/{tid}", headers=headers)
            assert got.status_code == 200 and got.json()["successInfo"]["transaction"]["status"] == "queued"
        with pytest.raises(httpx.ConnectError):          # a client that checks finds no trusted chain
            httpx.get(f"{node.url}/restservice/transactions/{tid}", headers=headers, timeout=10)
        if shutil.which("curl"):
            res = subprocess.run(["curl", "-s", "--cacert", str(cert.cert), "-H", f"XM-Token-Authorization: {token}",
                                  f"{node.url}/restservice/transactions/{tid}"],
                                 capture_output=True, text=True, timeout=30)
            assert res.returncode == 0 and '"success":"true"' in res.stdout.replace(" ", ""), res
        # plain HTTP to the TLS port: no HTTP answer (the handshake fails)
        host, port = node.url.removeprefix("https://").split(":")
        with socket.create_connection((host, int(port)), timeout=5) as s:
            s.sendall(b"GET /restservice/transactions HTTP/1.1\r\nHost: x\r\n\r\n")
            s.settimeout(5)
            try:
                answer = s.recv(100)
            except (ConnectionResetError, TimeoutError):
                answer = b""
            assert not answer.startswith(b"HTTP/"), answer


@pytest.mark.parametrize("keys", ["cert_only", "missing_file"])
def test_half_a_tls_config_is_a_usage_error(tmp_path, keys):
    cert = make_cert(tmp_path / "tls", "localhost")
    config = tmp_path / "serve.toml"
    if keys == "cert_only":
        config.write_text(f'tls_cert = "{cert.cert}"\n')
    else:
        config.write_text(f'tls_cert = "{cert.cert}"\ntls_key = "{tmp_path / "nope.key"}"\n')
    res = subprocess.run(["xmfax", "serve", "--data", str(tmp_path / "data"), "--http", "127.0.0.1:0",
                          "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2, res
    assert "tls_" in res.stderr and "Traceback" not in res.stderr
