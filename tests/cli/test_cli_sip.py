"""``xmfax send --via sip:...`` and ``xmfax receive --via sip://...`` as a user runs them:
subprocesses on 127.0.0.1, credentials from the environment (and a registrar that checks
them), the JSON records, the ladder, and no secret anywhere in what they write."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xmfax.document import load

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "sip"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Sipp  # noqa: E402
from test_api_sip import SECRET, Phone  # noqa: E402
from test_cli_calls import Receiving, letter, xmfax  # noqa: E402,F401  (letter: a fixture)


def env_with_credentials(**more: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XMFAX_SIP_")}
    env.update(XMFAX_SIP_USERNAME="faxuser", XMFAX_SIP_PASSWORD=SECRET, **more)
    return env


def everything_written(folder: Path, *outputs: str) -> str:
    texts = list(outputs)
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".txt", ".svg", ".html"):
            texts.append(path.read_text(encoding="utf-8", errors="replace"))
    return "\n".join(texts)


@pytest.mark.parametrize("transport, offer", [("udp", "audio"), ("tcp", "t38")])
def test_send_and_receive_over_sip_with_credentials_from_the_environment(tmp_path, letter, transport, offer,
                                                                        monkeypatch):
    path, pages = letter
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    env = env_with_credentials()
    for name, value in env.items():             # the receiver (Receiving) inherits ours
        if name.startswith("XMFAX_SIP_"):
            monkeypatch.setenv(name, value)
    with Phone(password=SECRET) as registrar:
        receiving = Receiving("--via", f"sip://127.0.0.1:0;transport={transport}", "-o", str(inbox), "--once",
                              "--fast", "--json", "--local-id", "+1 555 0199",
                              "--register", f"sip:fax@127.0.0.1:{registrar.port};transport=udp")
        try:
            url = receiving.ready()
            assert url.startswith("sip://127.0.0.1:") and url.endswith(";transport=tcp") == (transport == "tcp")
            port = int(url.split(":")[2].split(";")[0])
            sent = xmfax("send", "--via", f"sip:+15550100@127.0.0.1:{port};transport={transport}",
                         "--sip-offer", offer, "--fast", "--json", "--local-id", "+1 555 0100",
                         "--ladder", str(tmp_path / "call.txt"), str(path), env=env, timeout=60)
            got = receiving.finish(30)
        finally:
            if receiving.proc.poll() is None:
                receiving.proc.kill()
        registered = list(registrar.authorized)
    assert sent.returncode == 0, sent.stderr
    assert got.returncode == 0, got.stderr
    record = json.loads(sent.stdout)
    assert record["status"] == "success" and record["transport"] == "sip"
    assert record["sip"]["final_status"] == 200 and record["sip"]["transport"] == transport
    assert record["sip"]["t38_switch"]["by"] == ("offer" if offer == "t38" else "remote")
    received = json.loads(got.stdout)
    assert received["dnis"] == "+15550100" and received["sip"]["call_id"] == record["sip"]["call_id"]
    (tif,) = received["files"]
    for a, b in zip(pages, load(tif)):
        assert np.array_equal(a.image, b.image)
    ladder = (tmp_path / "call.txt").read_text(encoding="utf-8")
    assert "SIP INVITE sip:+15550100@127.0.0.1" in ladder and "SIP BYE " in ladder and "DCS" in ladder
    # the receiver registered with the credentials of its environment ...
    assert registered.count("REGISTER") >= 2
    # ... and no password, digest response or Authorization header is written anywhere
    digests = [part.split("=", 1)[1].strip('"') for r in registrar.requests
               for part in (r.headers.get("Authorization") or "").replace(",", " ").split() if part.startswith("response=")]
    assert digests
    written = everything_written(tmp_path, sent.stdout, sent.stderr, got.stdout, got.stderr)
    assert SECRET not in written and not any(d in written for d in digests)
    assert "Authorization" not in written


def test_ladder_command_draws_the_sip_messages(tmp_path, letter):
    path, _ = letter
    receiving = Receiving("--via", "sip://127.0.0.1:0", "-o", str(tmp_path), "--once", "--fast", "-q")
    try:
        port = int(receiving.ready().split(":")[2])
        sent = xmfax("send", "--via", f"sip:+1555@127.0.0.1:{port}", "--fast", "--json", str(path), timeout=60)
        receiving.finish(30)
    finally:
        if receiving.proc.poll() is None:
            receiving.proc.kill()
    assert sent.returncode == 0, sent.stderr
    (tmp_path / "rec.json").write_text(sent.stdout, encoding="utf-8")
    drawn = xmfax("ladder", "--width", "100", str(tmp_path / "rec.json"))
    assert drawn.returncode == 0
    rows = drawn.stdout.splitlines()
    first_sip = next(i for i, r in enumerate(rows) if "SIP INVITE" in r)
    first_frame = next(i for i, r in enumerate(rows) if " DIS " in r)
    assert first_sip < first_frame and rows[first_sip].rstrip().endswith("~>|")
    assert any("SIP 200 OK (SDP: audio)" in r for r in rows)


def test_bad_credentials_are_a_usage_error_that_shows_no_secret(tmp_path, letter):
    path, _ = letter
    creds = tmp_path / "creds"
    creds.write_text(f"username=faxuser\npassword={SECRET}\n", encoding="utf-8")
    # a file and the variables both set: ambiguous, refused before any call
    both = xmfax("send", "--via", "sip:+1555@127.0.0.1:9", str(path),
                 env=env_with_credentials(XMFAX_SIP_CREDENTIALS=str(creds)), timeout=30)
    missing = xmfax("receive", "--via", "sip://127.0.0.1:0", "-o", str(tmp_path), "--once",
                    env={**env_with_credentials(), "XMFAX_SIP_USERNAME": "", "XMFAX_SIP_PASSWORD": "",
                         "XMFAX_SIP_CREDENTIALS": str(tmp_path / "nope")}, timeout=30)
    for r in (both, missing):
        assert r.returncode == 2, (r.stdout, r.stderr)
        assert "XMFAX_SIP" in r.stderr or "credentials" in r.stderr.lower()
        assert SECRET not in r.stdout + r.stderr
    bad_url = xmfax("send", "--via", "sip:+1555@127.0.0.1;transport=sctp", str(path), timeout=30)
    assert bad_url.returncode == 2 and "sctp" in bad_url.stderr
    not_sip = xmfax("receive", "--via", "t38://127.0.0.1:0", "-o", str(tmp_path), "--register", "sip:a@b",
                    timeout=30)
    assert not_sip.returncode == 2 and "--register" in not_sip.stderr


def test_receive_on_a_port_in_use_exits_3(tmp_path):
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        r = xmfax("receive", "--via", f"sip://127.0.0.1:{port}", "-o", str(tmp_path), "--once", timeout=30)
    assert r.returncode == 3 and "cannot open SIP" in r.stderr


@pytest.mark.interop
@pytest.mark.parametrize("fallback", [False, True])
def test_no_audio_fallback_switch_against_a_phone_that_refuses_t38(tmp_path, letter, fallback):
    """sipp answers like a phone without T.38: G.711, then 488 to the re-INVITE. With
    ``--no-audio-fallback`` the call ends t38_refused (exit 1, the record says so); without it
    xmfax goes on over G.711 audio - to a phone that sends no fax tones, so it fails with a
    T.30 reason, never t38_refused."""
    if not shutil.which("sipp"):
        pytest.skip("sipp is not installed (Debian: sip-tester)")
    path, _ = letter
    with Sipp("uas_g711_refuse_t38.xml", tmp_path / "uas", params={"bye_wait": 20000}) as uas:
        args = ["send", "--via", f"sip:+15550100@127.0.0.1:{uas.port}", "--fast", "--json",
                "--t38-switch-after", "0.2", "--max-duration", "20", str(path)]
        if not fallback:
            args.insert(1, "--no-audio-fallback")
        sent = xmfax(*args, env=env_with_credentials(), timeout=60)
        uas.wait(30)
    assert sent.returncode == 1, (sent.returncode, sent.stderr)
    record = json.loads(sent.stdout)
    assert record["status"] == "failure"
    if fallback:
        assert record["reason"] != "t38_refused", record["reason_text"]
        assert record["sip"]["audio_fallback"].startswith("T.38 re-INVITE answered 488"), record["sip"]
    else:
        assert record["reason"] == "t38_refused", record["reason_text"]
        assert "audio_fallback" not in record["sip"] or not record["sip"]["audio_fallback"]


def test_a_bad_audio_wait_is_a_usage_error(tmp_path, letter):
    path, _ = letter
    sent = xmfax("send", "--via", "sip:+15550100@127.0.0.1:5", "--audio-wait", "0", str(path),
                 env=env_with_credentials(), timeout=30)
    assert sent.returncode == 2 and "audio_wait" in sent.stderr and "Traceback" not in sent.stderr, sent
