"""Capture real SIP messages from real SIP software into tests/sip/traces/*.sip.

Not a test: a tool run by hand (``python3 tests/sip/traces/capture.py``) when the traces are to
be renewed. Every .sip file is one message exactly as the tool put it on the wire or read it
(sipp's -trace_msg log gives the octets and their count); the scenarios and the Kamailio
configuration below are written for this capture, the messages are the tools' own output.

  sipp-udp-*     sipp -sn uac  <-> sipp -sn uas over UDP (INVITE, 180, 200, ACK, BYE, 200)
  sipp-tcp-*     the same over TCP (-t t1)
  kamailio-reg-* sipp REGISTER to Kamailio: 401 with a digest challenge, REGISTER with
                 Authorization, 200 with the bindings
  kamailio-inv-* sipp INVITE offering T.38 to Kamailio: 407, ACK, INVITE with
                 Proxy-Authorization, relayed with Record-Route to sipp -sn uas; 100/180/200,
                 ACK and BYE through the proxy (two Vias, Route)
  baresip-*      sipp calls baresip (an auto-answering G.711 phone): INVITE with PCMU/PCMA,
                 baresip's 200, then a re-INVITE to T.38 that baresip refuses with 488, BYE
Runs on 127.0.0.1 only, on the ports below; every process is stopped at the end.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BASE_PORT = 27060

KAMAILIO_CFG = r"""#!KAMAILIO
debug=1
log_stderror=yes
children=1
auto_aliases=no
disable_tcp=yes
listen=udp:127.0.0.1:{kport}
alias="127.0.0.1:{kport}"
loadmodule "kex.so"
loadmodule "corex.so"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "usrloc.so"
loadmodule "registrar.so"
loadmodule "textops.so"
loadmodule "siputils.so"
loadmodule "auth.so"
modparam("usrloc", "db_mode", 0)
modparam("rr", "append_fromtag", 1)

request_route {{
    if (!mf_process_maxfwd_header("10")) {{ sl_send_reply("483", "Too Many Hops"); exit; }}
    if (has_totag()) {{
        if (loose_route()) {{ t_relay(); exit; }}
        if (is_method("ACK") && t_check_trans()) {{ t_relay(); }}
        exit;
    }}
    if (is_method("CANCEL")) {{ if (t_check_trans()) {{ t_relay(); }} exit; }}
    if (is_method("REGISTER")) {{
        if (!pv_auth_check("$fd", "trace-secret", "0", "0")) {{ auth_challenge("$fd", "1"); exit; }}
        consume_credentials();
        if (!save("location")) {{ sl_reply_error(); }}
        exit;
    }}
    if (is_method("INVITE")) {{
        if (!pv_auth_check("$fd", "trace-secret", "0", "0")) {{ auth_challenge("$fd", "1"); exit; }}
        consume_credentials();
        record_route();
        if (!lookup("location")) {{ sl_send_reply("404", "Not Found"); exit; }}
        t_relay();
        exit;
    }}
    sl_send_reply("405", "Method Not Allowed");
}}
"""

REGISTER_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="register with digest">
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Fax Line" <sip:15550100@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:15550100@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 REGISTER
Contact: <sip:15550100@127.0.0.1:{uas_port};transport=UDP>;expires=120
Max-Forwards: 70
Expires: 120
User-Agent: sipp trace capture
Content-Length: 0

  ]]></send>
  <recv response="401" auth="true"/>
  <send retrans="500"><![CDATA[
REGISTER sip:[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Fax Line" <sip:15550100@[remote_ip]>;tag=[pid]SIPpTag00[call_number]
To: <sip:15550100@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 REGISTER
Contact: <sip:15550100@127.0.0.1:{uas_port};transport=UDP>;expires=120
[authentication username=15550100 password=trace-secret]
Max-Forwards: 70
Expires: 120
User-Agent: sipp trace capture
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""

T38_SDP = """v=0
o=sipp 1 1 IN IP4 127.0.0.1
s=fax
c=IN IP4 127.0.0.1
t=0 0
m=image 6010 udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxBuffer:200
a=T38FaxMaxDatagram:72
a=T38FaxUdpEC:t38UDPRedundancy
"""

INVITE_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="invite t38 with proxy auth">
  <send retrans="500"><![CDATA[
INVITE sip:15550100@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sender" <sip:sender@[remote_ip]>;tag=[pid]SIPpTag01[call_number]
To: <sip:15550100@[remote_ip]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:sender@[local_ip]:[local_port]>
Max-Forwards: 70
P-Asserted-Identity: "Sender" <sip:+15550199@[remote_ip]>, <tel:+15550199>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
  ]]></send>
  <recv response="407" auth="true"/>
  <send><![CDATA[
ACK sip:15550100@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sender" <sip:sender@[remote_ip]>;tag=[pid]SIPpTag01[call_number]
To: <sip:15550100@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
INVITE sip:15550100@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sender" <sip:sender@[remote_ip]>;tag=[pid]SIPpTag01[call_number]
To: <sip:15550100@[remote_ip]>
Call-ID: [call_id]
CSeq: 2 INVITE
Contact: <sip:sender@[local_ip]:[local_port]>
[authentication username=sender password=trace-secret]
Max-Forwards: 70
P-Asserted-Identity: "Sender" <sip:+15550199@[remote_ip]>, <tel:+15550199>
Content-Type: application/sdp
Content-Length: [len]

{sdp}
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sender" <sip:sender@[remote_ip]>;tag=[pid]SIPpTag01[call_number]
To: <sip:15550100@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
[routes]
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <pause milliseconds="200"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: "Sender" <sip:sender@[remote_ip]>;tag=[pid]SIPpTag01[call_number]
To: <sip:15550100@[remote_ip]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
[routes]
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""

UAS_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="answer t38 behind a record-routing proxy">
  <recv request="INVITE" crlf="true"/>
  <send><![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag02[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:15550100@[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

  ]]></send>
  <send retrans="500"><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_Record-Route:]
[last_From:]
[last_To:];tag=[pid]SIPpTag02[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:15550100@[local_ip]:[local_port];transport=[transport]>
Allow: INVITE, ACK, CANCEL, BYE, OPTIONS
Supported: timer
Content-Type: application/sdp
Content-Length: [len]

{sdp}
  ]]></send>
  <recv request="ACK" crlf="true"/>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0

  ]]></send>
</scenario>
"""

# "UDP message sent (514 bytes):" and "UDP message received [313] bytes :"
BARESIP_XML = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="g711 call, t38 re-invite refused">
  <send retrans="500"><![CDATA[
INVITE sip:peer@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Fax" <sip:fax@[local_ip]:[local_port]>;tag=[pid]SIPpTag03[call_number]
To: <sip:peer@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:fax@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=fax 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio [media_port] RTP/AVP 0 8 101
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=rtpmap:101 telephone-event/8000
a=fmtp:101 0-15
a=ptime:20
a=sendrecv
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="180" optional="true"/>
  <recv response="183" optional="true"/>
  <recv response="200" rrs="true"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Fax" <sip:fax@[local_ip]:[local_port]>;tag=[pid]SIPpTag03[call_number]
To: <sip:peer@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 1 ACK
[routes]
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <pause milliseconds="300"/>
  <send retrans="500"><![CDATA[
INVITE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Fax" <sip:fax@[local_ip]:[local_port]>;tag=[pid]SIPpTag03[call_number]
To: <sip:peer@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 INVITE
[routes]
Contact: <sip:fax@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Type: application/sdp
Content-Length: [len]

v=0
o=fax 1 2 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=image [media_port] udptl t38
a=T38FaxVersion:0
a=T38MaxBitRate:14400
a=T38FaxRateManagement:transferredTCF
a=T38FaxMaxDatagram:400
a=T38FaxUdpEC:t38UDPRedundancy
  ]]></send>
  <recv response="100" optional="true"/>
  <recv response="488"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
[last_Via:]
From: "Fax" <sip:fax@[local_ip]:[local_port]>;tag=[pid]SIPpTag03[call_number]
To: <sip:peer@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 2 ACK
[routes]
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <pause milliseconds="200"/>
  <send retrans="500"><![CDATA[
BYE [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Fax" <sip:fax@[local_ip]:[local_port]>;tag=[pid]SIPpTag03[call_number]
To: <sip:peer@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: 3 BYE
[routes]
Max-Forwards: 70
Content-Length: 0

  ]]></send>
  <recv response="200"/>
</scenario>
"""

_ENTRY = re.compile(rb"(UDP|TCP) message (sent|received) (?:\((\d+) bytes\)|\[(\d+)\] bytes ?):\n\n")


def messages(log: Path) -> list[tuple[str, bytes]]:
    """(direction, octets) for each message in a sipp -trace_msg log."""
    data = log.read_bytes()
    out = []
    for m in _ENTRY.finditer(data):
        size = int(m.group(3) or m.group(4))
        out.append((m.group(2).decode(), data[m.end():m.end() + size]))
    return out


def summary(data: bytes) -> str:
    first = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
    if first.startswith("SIP/2.0 "):
        return first.split(" ")[1]
    return first.split(" ")[0]


def save(prefix: str, logs: list[Path]) -> int:
    seen: set[bytes] = set()
    n = 0
    for log in logs:
        for direction, data in messages(log):
            if data in seen:
                continue
            seen.add(data)
            n += 1
            (HERE / f"{prefix}-{n:02d}-{summary(data)}.sip").write_bytes(data)
    return n


def run(args: list[str], cwd: Path, timeout: float = 20) -> None:
    subprocess.run(args, cwd=cwd, timeout=timeout, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def sipp(how: list[str], port: int, log: Path, *rest: str) -> list[str]:
    """sipp's command line: ``how`` (-sn/-sf and the like) on 127.0.0.1:``port``, one call,
    no keyboard, each message traced to ``log``, then ``rest`` (the remote address)."""
    return ["sipp", *how, "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-nostdin",
            "-trace_msg", "-message_file", str(log), *rest]


def stop(proc: subprocess.Popen) -> None:
    """Terminate ``proc`` if it still runs; kill it if it is not gone within 5 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def sipp_pair(tmp: Path, name: str, transport: str) -> None:
    uas_port, uac_port = BASE_PORT, BASE_PORT + 1
    uas = subprocess.Popen(sipp(["-sn", "uas", "-t", transport], uas_port, tmp / f"{name}-uas.log"),
                           cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        run(sipp(["-sn", "uac", "-t", transport], uac_port, tmp / f"{name}-uac.log",
                 f"127.0.0.1:{uas_port}"), tmp)
        uas.wait(timeout=10)
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()


def kamailio(tmp: Path) -> None:
    kport, uas_port, reg_port, uac_port = (BASE_PORT + 10, BASE_PORT + 11, BASE_PORT + 12,
                                           BASE_PORT + 13)
    cfg = tmp / "kamailio.cfg"
    cfg.write_text(KAMAILIO_CFG.format(kport=kport))
    (tmp / "register.xml").write_text(REGISTER_XML.format(uas_port=uas_port))
    sdp = T38_SDP.replace("\n", "\r\n")
    (tmp / "invite.xml").write_text(INVITE_XML.format(sdp=sdp.rstrip("\r\n")))
    answer = sdp.replace("6010", "6020").replace("o=sipp", "o=sipp-uas")
    (tmp / "uas.xml").write_text(UAS_XML.format(sdp=answer.rstrip("\r\n")))
    procs = [subprocess.Popen(["kamailio", "-DD", "-E", "-f", str(cfg), "-Y", str(tmp),
                               "-P", str(tmp / "k.pid")], cwd=tmp,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        time.sleep(1.5)
        procs.append(subprocess.Popen(sipp(["-sf", "uas.xml"], uas_port, tmp / "k-uas.log"),
                                      cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        run(sipp(["-sf", "register.xml"], reg_port, tmp / "k-reg.log", f"127.0.0.1:{kport}"), tmp)
        # sipp digests the URI "sip:<remote address>" unless told the Request-URI
        run(sipp(["-sf", "invite.xml", "-auth_uri", f"15550100@127.0.0.1:{kport}"], uac_port,
                 tmp / "k-inv.log", f"127.0.0.1:{kport}"), tmp)
        procs[1].wait(timeout=10)
    finally:
        for p in procs:
            stop(p)


def baresip(tmp: Path) -> None:
    port, uac_port, rtp = BASE_PORT + 20, BASE_PORT + 21, BASE_PORT + 30
    conf = tmp / "baresip"
    conf.mkdir(exist_ok=True)
    wav = tmp / "silence.wav"
    frames = b"\x00\x00" * 8000
    wav.write_bytes(b"RIFF" + (36 + len(frames)).to_bytes(4, "little") + b"WAVEfmt "
                    + (16).to_bytes(4, "little") + (1).to_bytes(2, "little")
                    + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
                    + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little")
                    + (16).to_bytes(2, "little") + b"data" + len(frames).to_bytes(4, "little")
                    + frames)
    (conf / "accounts").write_text(f"<sip:peer@127.0.0.1:{port}>;regint=0;answermode=auto;"
                                   "audio_codecs=PCMU,PCMA\n")
    (conf / "contacts").write_text("")
    (conf / "config").write_text("\n".join([
        "poll_method epoll", f"sip_listen 127.0.0.1:{port}", "sip_trans_def udp",
        f"audio_source aufile,{wav}", f"audio_player aufile,{tmp / 'heard.wav'}",
        "audio_alert aufile,/dev/null", "audio_srate 8000", "audio_channels 1",
        f"rtp_ports {rtp}-{rtp + 20}", "net_interface 127.0.0.1",
        "module_path /usr/lib/baresip/modules", "module g711.so", "module aufile.so",
        "module_app account.so", "module_app menu.so", ""]))
    (tmp / "baresip.xml").write_text(BARESIP_XML)
    phone = subprocess.Popen(["baresip", "-4", "-f", str(conf), "-t", "20"], cwd=tmp,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        time.sleep(2.0)
        run(sipp(["-sf", "baresip.xml", "-mp", str(rtp + 40)], uac_port, tmp / "baresip.log",
                 f"127.0.0.1:{port}"), tmp)
    finally:
        stop(phone)


def main() -> int:
    for tool in ("sipp", "kamailio", "baresip"):
        if shutil.which(tool) is None:
            print(f"{tool} not installed", file=sys.stderr)
            return 1
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(d)   # a folder to keep the logs
        tmp.mkdir(parents=True, exist_ok=True)
        for old in HERE.glob("*.sip"):
            old.unlink()
        sipp_pair(tmp, "udp", "u1")
        sipp_pair(tmp, "tcp", "t1")
        kamailio(tmp)
        baresip(tmp)
        counts = {
            "sipp-udp": save("sipp-udp", [tmp / "udp-uac.log"]),
            "sipp-tcp": save("sipp-tcp", [tmp / "tcp-uac.log"]),
            "kamailio-reg": save("kamailio-reg", [tmp / "k-reg.log"]),
            "kamailio-inv": save("kamailio-inv", [tmp / "k-inv.log", tmp / "k-uas.log"]),
            "baresip": save("baresip-udp", [tmp / "baresip.log"]),
        }
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
