"""A second SIP implementation for the interop tests: a fax-capable SIP endpoint built on sippy
(PyPI ``sippy``, the RFC 3261 stack of the Sippy B2BUA; UDP only), run as its own process:

    python3 sippy_peer.py --listen 127.0.0.1:5070 --t38-port 40000 answer
    python3 sippy_peer.py --listen 127.0.0.1:5070 --t38-port 40000 call sip:15550100@127.0.0.1:5060 --offer audio

``answer``: answers the first INVITE 200 (T.38 at --t38-port when offered with a nonzero port,
else G.711), and any re-INVITE offering T.38 200 with T.38. ``call``: calls the URI offering
T.38 (``--offer t38``) or G.711 (``--offer audio``; then it waits for the callee's re-INVITE to
T.38, or sends its own after ``--reinvite-after`` seconds). Either way it never sends media
itself (the test runs spandsp's T.38 terminal on --t38-port) and leaves the hang-up to the far
end, unless ``--hangup-after`` seconds pass. Its Contact is lower case (sippy mishandles an
uppercase ``transport=UDP``; see /work/shared/peers/README.md).

It prints one JSON object per line on stdout, for the test to read: {"event": "incoming" |
"connected" | "update" | "disconnected" | "failed" | "ready", "t": seconds since start, ...,
"offer"/"answer": the SDP media kinds}. It exits after the call ends (or --limit seconds).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time

from sippy.CCEvents import CCEventConnect, CCEventDisconnect, CCEventFail, CCEventTry, CCEventUpdate
from sippy.Core.EventDispatcher import ED2
from sippy.MsgBody import MsgBody
from sippy.SipConf import SipConf
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Time.Timeout import Timeout
from sippy.UA import UA

T0 = time.monotonic()


def emit(event: str, **fields) -> None:
    print(json.dumps({"event": event, "t": round(time.monotonic() - T0, 4), **fields}), flush=True)


def kinds(body) -> list[str]:
    """The usable media of an SDP body: "audio" / "t38", port nonzero, in m-line order."""
    out = []
    for m in re.finditer(r"^m=(\w+) (\d+) (\S+) (.*)$", str(body or ""), re.M):
        kind, port, proto = m.group(1), int(m.group(2)), m.group(3).lower()
        if port == 0:
            continue
        if kind == "image" and proto == "udptl" and "t38" in m.group(4):
            out.append("t38")
        elif kind == "audio":
            out.append("audio")
    return out


def sdp(address: str, *, t38_port: int | None = None, audio_port: int | None = None, version: int = 1,
        refused_audio: bool = False) -> MsgBody:
    lines = ["v=0", f"o=sippy 4242 {version} IN IP4 {address}", "s=sippy", f"c=IN IP4 {address}", "t=0 0"]
    if refused_audio:
        lines.append("m=audio 0 RTP/AVP 0")
    if audio_port is not None:
        lines += [f"m=audio {audio_port} RTP/AVP 0", "a=rtpmap:0 PCMU/8000", "a=ptime:20", "a=sendrecv"]
    if t38_port is not None:
        lines += [f"m=image {t38_port} udptl t38", "a=T38FaxVersion:0", "a=T38MaxBitRate:14400",
                  "a=T38FaxRateManagement:transferredTCF", "a=T38FaxMaxBuffer:1800",
                  "a=T38FaxMaxDatagram:400", "a=T38FaxUdpEC:t38UDPRedundancy"]
    return MsgBody("\r\n".join(lines) + "\r\n")


class StderrLog:
    """sippy's SIP message log (global_config["_sip_logger"]), to stderr: the test's peer log."""

    def write(self, *parts, **_kw) -> None:
        sys.stderr.write("".join(str(p) for p in parts) + "\n")
        sys.stderr.flush()


class Peer:
    def __init__(self, args) -> None:
        self.args = args
        self.address, port = args.listen.rsplit(":", 1)
        self.version = 1
        self.ua: UA | None = None
        self.done = False
        SipConf.my_uaname = "sippy-xmfax-test"
        self.config = {"_sip_address": self.address, "_sip_port": int(port), "_sip_logger": StderrLog()}
        self.config["_sip_tm"] = SipTransactionManager(self.config, self.incoming)
        Timeout(self.give_up, args.limit)

    def next_sdp(self, **kw) -> MsgBody:
        self.version += 1
        return sdp(self.address, version=self.version, **kw)

    # -- answering
    def incoming(self, req, sip_t):
        if req.getHFBody("to").getTag() is not None:
            return (req.genResponse(481, "Call Leg/Transaction Does Not Exist"), None, None)
        if req.getMethod() != "INVITE" or self.ua is not None:
            return (req.genResponse(486 if req.getMethod() == "INVITE" else 501, "Busy Here"), None, None)
        self.ua = UA(self.config, self.event, disc_cbs=(self.disconnected,), fail_cbs=(self.failed,))
        return self.ua.recvRequest(req, sip_t)

    def event(self, event, ua) -> None:
        if isinstance(event, CCEventTry):
            call_id, cli, cld, body, _auth, _name = event.getData()
            offer = kinds(body)
            emit("incoming", ani=cli, dnis=cld, offer=offer)
            if "t38" in offer:
                answer = self.t38_answer(body)
            else:
                answer = self.next_sdp(audio_port=self.args.audio_port)
            emit("answering", answer=kinds(answer))
            ua.recvEvent(CCEventConnect((200, "OK", answer)))
        elif isinstance(event, CCEventUpdate):
            body = event.getData()
            offer = kinds(body)
            emit("update", offer=offer)
            answer = self.t38_answer(body) if "t38" in offer else self.next_sdp(audio_port=self.args.audio_port)
            ua.recvEvent(CCEventConnect((200, "OK", answer)))
        elif isinstance(event, CCEventConnect):
            code, reason, body = event.getData()
            emit("connected", status=code, answer=kinds(body))
            if self.args.hangup_after:
                Timeout(self.hangup, self.args.hangup_after)
            if self.args.command == "call" and self.args.offer == "audio" and self.args.reinvite_after:
                Timeout(self.reinvite, self.args.reinvite_after)
        elif isinstance(event, (CCEventDisconnect, CCEventFail)):
            emit("ended", kind=type(event).__name__, data=str(event.getData()))

    def t38_answer(self, offer) -> MsgBody:
        """One m-line per offered m-line (RFC 3264 §6): T.38 taken, audio refused with port 0."""
        text = str(offer)
        refuse_audio = bool(re.search(r"^m=audio [1-9]", text, re.M)) and \
            text.index("m=audio") < text.index("m=image")
        return self.next_sdp(t38_port=self.args.t38_port, refused_audio=refuse_audio)

    # -- calling
    def call(self) -> None:
        host, port = re.match(r"sip:[^@]+@([^:;>]+):?(\d+)?", self.args.target).groups()
        number = re.match(r"sip:([^@]+)@", self.args.target).group(1)
        self.ua = UA(self.config, self.event, nh_address=(host, int(port or 5060)),
                     disc_cbs=(self.disconnected,), fail_cbs=(self.failed,))
        body = (self.next_sdp(t38_port=self.args.t38_port) if self.args.offer == "t38"
                else self.next_sdp(audio_port=self.args.audio_port))
        emit("calling", target=self.args.target, offer=kinds(body))
        self.ua.recvEvent(CCEventTry((None, "+15550177", number, body, None, "sippy")))

    def reinvite(self) -> None:
        if self.ua is not None and not self.done:
            emit("reinviting", offer=["t38"])
            self.ua.recvEvent(CCEventUpdate(self.next_sdp(t38_port=self.args.t38_port)))

    def hangup(self) -> None:
        if self.ua is not None and not self.done:
            emit("hanging_up")
            self.ua.recvEvent(CCEventDisconnect())

    # -- the end
    def disconnected(self, ua, *details) -> None:
        # sippy passes (rtime, origin[, result]): origin is "caller"/"callee" for who hung up
        emit("disconnected", origin=str(details[1]) if len(details) > 1 else None)
        self.finish()

    def failed(self, ua, *details) -> None:
        emit("failed", details=[str(d) for d in details[1:]])
        self.finish()

    def finish(self) -> None:
        if not self.done:
            self.done = True
            Timeout(ED2.breakLoop, 0.5)       # answer the far end's retransmissions a little

    def give_up(self) -> None:
        emit("limit")
        ED2.breakLoop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listen", required=True, help="HOST:PORT for SIP (UDP)")
    ap.add_argument("--t38-port", type=int, required=True)
    ap.add_argument("--audio-port", type=int, default=0, help="the (silent) RTP port we announce")
    ap.add_argument("--hangup-after", type=float, default=0.0)
    ap.add_argument("--limit", type=float, default=60.0)
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("answer")
    c = sub.add_parser("call")
    c.add_argument("target")
    c.add_argument("--offer", choices=("t38", "audio"), default="t38")
    c.add_argument("--reinvite-after", type=float, default=0.0)
    args = ap.parse_args(argv)
    if not args.audio_port:
        args.audio_port = args.t38_port + 2
    peer = Peer(args)
    emit("ready", listen=args.listen)
    if args.command == "call":
        Timeout(peer.call, 0.05)
    ED2.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
