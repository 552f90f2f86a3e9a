"""Interop: xmfax's RTP (xmfax/rtp.py, drivers/rtp.py) against real RTP stacks.

- baresip 1.0 (Debian baresip-core), a real phone: a G.711 call set up by a minimal SIP UAC
  written here (INVITE with our SDP, ACK, BYE; the SIP engineers' stack is not needed for
  this). baresip sends a WAV through its ``aufile`` source: our fixed jitter buffer plays it
  out at a steady 8 kHz, sample for sample, with the statistics of a clean stream. baresip
  decodes our stream and its ``sndfile`` filter writes what it decoded to a WAV: that is our
  signal, sample for sample (baresip has no file player; ``aubridge`` stands in for one so that
  its receive pipeline runs).
- baresip's stream again, through a relay that loses, duplicates and delays (reorders) its
  packets: the play-out has baresip's audio where packets arrived and silence exactly where
  they were lost, with the counts to match.
- sipp 3.6 with ``-rtp_echo``: it sends every RTP packet back; our receiver plays the echoed
  stream back intact.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import sys
import time
import uuid
import wave
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "sip"))
from peers import HOST, Baresip, Sipp, free_tcp_port, require  # noqa: E402

from xmfax.audio import g711  # noqa: E402
from xmfax.drivers.rtp import run_rtp  # noqa: E402
from xmfax.rtp import SILENCE, RTPConfig, TelephoneEvent, parse_rtp  # noqa: E402

RATE = 8000


def signal(seconds: float, seed: int) -> np.ndarray:
    """A noise-like signal at about -14 dBm0: a slip of one sample shows. Its samples are odd
    and at least 5 away from zero: G.711 coders legitimately differ on the (even) A-law
    decision values and on -1..-3 (µ-law's two zeros), and baresip's does; elsewhere the code
    of a sample is the same in every G.711 coder, so codes can be compared one for one."""
    x = np.random.default_rng(seed).integers(-6000, 6000, int(seconds * RATE)) | 1
    x = np.where(np.abs(x) < 5, 5 * np.sign(x), x)
    return x.astype(np.int16)


def write_wav(path: Path, x: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(x.tobytes())


def read_wav(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (RATE, 1, 2)
        return np.frombuffer(w.readframes(w.getnframes()), np.int16)


def longest_match(haystack: bytes, needle: bytes, probe: int = 400) -> tuple[int, int]:
    """Where ``needle``'s start is in ``haystack`` and for how many codes the two agree."""
    i = haystack.find(needle[:probe])
    if i < 0:
        return -1, 0
    a = np.frombuffer(haystack[i:i + len(needle)], np.uint8)
    b = np.frombuffer(needle[:len(a)], np.uint8)
    diff = np.flatnonzero(a != b)
    return i, int(diff[0]) if len(diff) else len(a)


class RecordingPhone(Baresip):
    """tests/sip/peers.Baresip playing our WAV, with its decoded audio dumped to a WAV
    (``sndfile``; ``aubridge`` as the player, so that the receive pipeline runs), and its
    ``ctrl_tcp`` control port open (to press keys during the call: ``send_digits``)."""

    def __init__(self, workdir: Path, source: np.ndarray) -> None:
        super().__init__(workdir, quit_after=30)
        write_wav(self.wav, source)
        self.control_port = free_tcp_port()
        cfg = self.conf_dir / "config"
        text = cfg.read_text().replace(f"audio_player aufile,{self.recording}", "audio_player aubridge,xm")
        cfg.write_text(text + f"module sndfile.so\nsnd_path {self.workdir}\nmodule aubridge.so\n"
                       f"module_app ctrl_tcp.so\nctrl_tcp_listen {HOST}:{self.control_port}\n")

    async def send_digits(self, digits: str) -> None:
        """baresip's ``sndcode`` command (its menu's "Send Code"): DTMF, which it sends as
        RFC 4733 telephone events in the call's RTP stream."""
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, self.control_port), 5)
        try:
            msg = json.dumps({"command": "sndcode", "params": digits, "token": "xm"}).encode()
            writer.write(b"%d:%s," % (len(msg), msg))                 # a netstring
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(400), 5)
            assert b'"ok":true' in answer, answer
        finally:
            writer.close()

    def decoded(self) -> np.ndarray:
        dumps = sorted(self.workdir.glob("dump-*-dec.wav"))
        assert dumps, self.log(tail=40)
        return read_wav(dumps[-1])


class MiniUAC:
    """Just enough SIP (RFC 3261) to make one call: INVITE (retransmitted every 0.5 s until
    answered), ACK, BYE. Everything waits with a timeout."""

    def __init__(self, target_uri: str, target: tuple[str, int]) -> None:
        self.uri, self.target = target_uri, target
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.call_id = uuid.uuid4().hex
        self.to_tag = ""
        self.answer = ""

    def _request(self, method: str, cseq: int, body: str = "") -> bytes:
        lines = [f"{method} {self.uri} SIP/2.0",
                 f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{uuid.uuid4().hex[:16]};rport",
                 "Max-Forwards: 70", f"From: <sip:xmfax@{HOST}:{self.port}>;tag=xm{self.call_id[:8]}",
                 f"To: <{self.uri}>{self.to_tag}", f"Call-ID: {self.call_id}", f"CSeq: {cseq} {method}",
                 f"Contact: <sip:xmfax@{HOST}:{self.port}>"]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _final(self, data: bytes, method: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        last_sent = 0.0
        while time.monotonic() < deadline:
            if method == "INVITE" and time.monotonic() - last_sent > 0.5:
                self.sock.sendto(data, self.target)
                last_sent = time.monotonic()
            elif last_sent == 0.0:
                self.sock.sendto(data, self.target)
                last_sent = time.monotonic()
            self.sock.settimeout(0.1)
            try:
                text = self.sock.recv(65535).decode("utf-8", "replace")
            except socket.timeout:
                continue
            first = text.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0 ") and f" {method}" in text and int(first.split()[1]) >= 200:
                return text
        raise AssertionError(f"no final response to {method} in {timeout} s")

    def invite(self, rtp_port: int, law: str) -> tuple[str, int]:
        pt, name = (0, "PCMU") if law == "ulaw" else (8, "PCMA")
        sdp = (f"v=0\r\no=xmfax 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
               f"m=audio {rtp_port} RTP/AVP {pt} 101\r\na=rtpmap:{pt} {name}/8000\r\n"
               "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n")
        text = self._final(self._request("INVITE", 1, sdp), "INVITE", 10)
        assert text.startswith("SIP/2.0 200"), text
        self.to_tag = re.search(r"^(?:To|t):.*?(;tag=[^;\s]+)", text, re.M | re.I).group(1)
        self.answer = text.split("\r\n\r\n", 1)[1]
        self.sock.sendto(self._request("ACK", 1), self.target)
        conn = re.search(r"^c=IN IP4 (\S+)", self.answer, re.M).group(1)
        media = re.search(r"^m=audio (\d+) RTP/AVP ([\d ]+)", self.answer, re.M)
        assert media.group(2).split()[0] == str(pt), self.answer       # our law was chosen
        return conn, int(media.group(1))

    def bye(self) -> str:
        return self._final(self._request("BYE", 2), "BYE", 5).split("\r\n", 1)[0]

    def close(self) -> None:
        self.sock.close()


class Feed:
    def __init__(self, x: np.ndarray) -> None:
        self.x, self.pos = x, 0

    def __call__(self, n: int) -> np.ndarray:
        out = self.x[self.pos:self.pos + n]
        self.pos += n
        return np.pad(out, (0, n - len(out)))


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_baresip_call_both_directions_sample_for_sample(tmp_path, law):
    require("baresip")
    theirs, ours = signal(4.0, 1), signal(3.0, 2)
    seconds = 3.0
    with RecordingPhone(tmp_path / "phone", theirs) as phone:
        uac = MiniUAC(phone.uri, (HOST, phone.port))
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((HOST, 0))
        try:
            remote = uac.invite(rtp.getsockname()[1], law)
            heard: list[np.ndarray] = []

            async def call():
                async def keys():                   # DTMF in the middle of the call
                    await asyncio.sleep(0.8)
                    await phone.send_digits("159")
                pressing = asyncio.create_task(keys())
                result = await run_rtp(Feed(ours), heard.append, sock=rtp, remote=remote,
                                       config=RTPConfig(law=law), duration=seconds)
                await pressing
                return result
            result = asyncio.run(asyncio.wait_for(call(), 20))
            assert uac.bye().startswith("SIP/2.0 200")
        finally:
            uac.close()
            rtp.close()
        time.sleep(0.3)                         # baresip closes its dump files on the BYE
    y = np.concatenate(heard)

    # our side: a steady 8 kHz, baresip's WAV intact in it, the statistics of a clean stream
    assert len(y) == result.samples_sent and abs(len(y) - seconds * RATE) <= 400
    st = result.stats
    assert st.received >= 140 and st.played_packets + st.telephone_events == st.received
    assert (st.lost, st.late, st.duplicate, st.overflow, st.ssrc_changes, st.timestamp_jumps) == (0,) * 6
    assert st.jitter_seconds < 0.03 and st.talkspurts >= 1
    assert st.audio_samples + result.unplayed == 160 * st.played_packets
    assert result.remote == remote
    heard_codes = g711.encode(y, law)
    want = g711.encode(theirs, law)
    start, run = longest_match(heard_codes, want)
    assert start >= 0, "baresip's WAV is not in what we played out"
    # it starts one jitter depth after its first packet arrived, and runs to the end of the call
    assert start >= 480 and run == len(heard_codes) - start, (start, run)
    assert run >= 2.5 * RATE
    assert set(y[:start - 480]) <= {0, 8}        # before it: silence, never invented signal
    # the keys pressed: each digit reported once as it starts and once as it ends, not played
    # (baresip kept its audio going meanwhile: the WAV above ran on intact)
    events = [e for e in result.events if isinstance(e, TelephoneEvent)]
    assert [(e.event, e.end) for e in events] == [(1, False), (1, True), (5, False), (5, True),
                                                  (9, False), (9, True)], result.events
    assert all(e.duration > 0 for e in events if e.end) and st.telephone_events >= 6
    assert len({e.timestamp for e in events}) == 3

    # baresip's side: what it decoded from our stream is our signal, from our first sample on
    decoded = phone.decoded()
    got = g711.encode(decoded, law)
    start, run = longest_match(got, g711.encode(ours, law))
    assert start >= 0, phone.log(tail=40)
    assert run >= 2.5 * RATE, (start, run, len(got))


def test_sipp_rtp_echo_comes_back_intact(tmp_path):
    require("sipp")
    ours = signal(1.5, 3)
    sipp = Sipp("uas", tmp_path / "sipp", extra=["-rtp_echo"], timeout=20)
    with sipp:
        heard: list[np.ndarray] = []
        result = asyncio.run(asyncio.wait_for(
            run_rtp(Feed(ours), heard.append, local=(HOST, 0), remote=(HOST, sipp.media_port),
                    duration=2.0), 20))
    y = np.concatenate(heard)
    st = result.stats
    # (the last packet or two were still on their way back when the run ended)
    assert result.packets_sent >= 99 and result.packets_sent - 3 <= st.received <= result.packets_sent
    assert (st.lost, st.late, st.duplicate, st.reordered) == (0, 0, 0, 0)
    assert st.ssrc_changes == 0 and result.peer_ssrc == result.ssrc       # the echo keeps our SSRC
    start, run = longest_match(g711.encode(y, "ulaw"), g711.encode(ours, "ulaw"))
    assert start >= 480 and run == len(ours), (start, run)
    assert len(y) == result.samples_sent


class ImpairingRelay(asyncio.DatagramProtocol):
    """Between baresip (``phone``: its RTP address, once its answer gave it) and us (``us``):
    what anyone but us sends (baresip) is lost, duplicated or delayed (so reordered) with a seeded random before it goes on to us;
    what we send goes to baresip untouched."""

    def __init__(self, phone: tuple[str, int], us: tuple[str, int], rng: random.Random) -> None:
        self.phone, self.us, self.rng = phone, us, rng
        self.open = True                  # False: baresip's packets are no longer passed on
        self.dropped: list[int] = []
        self.forwarded: list[int] = []
        self.duplicated = 0

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data, addr) -> None:
        if addr[:2] == self.us:
            if self.phone[1]:
                self.transport.sendto(data, self.phone)
            return
        if not self.open:
            return
        seq = parse_rtp(data).sequence
        if self.forwarded and self.rng.random() < 0.06:
            self.dropped.append(seq)
            return
        self.forwarded.append(seq)
        copies = 2 if self.rng.random() < 0.05 else 1
        self.duplicated += copies - 1
        loop = asyncio.get_running_loop()
        for _ in range(copies):
            loop.call_later(self.rng.uniform(0, 0.04), self.transport.sendto, data, self.us)


def test_baresip_stream_through_loss_duplication_and_jitter(tmp_path):
    require("baresip")
    theirs, ours = signal(4.0, 4), signal(3.0, 5)
    silence = SILENCE["ulaw"]
    with RecordingPhone(tmp_path / "phone", theirs) as phone:
        uac = MiniUAC(phone.uri, (HOST, phone.port))
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((HOST, 0))

        async def call():
            loop = asyncio.get_running_loop()
            transport, relay = await loop.create_datagram_endpoint(
                lambda: ImpairingRelay(("", 0), rtp.getsockname()[:2], random.Random(11)),
                local_addr=(HOST, 0))
            try:
                remote = await asyncio.to_thread(uac.invite, transport.get_extra_info("sockname")[1], "ulaw")
                relay.phone = remote
                heard: list[np.ndarray] = []
                stop = asyncio.Event()

                async def end():                # close the relay, let what it holds arrive
                    await asyncio.sleep(3.0)
                    relay.open = False
                    await asyncio.sleep(0.25)
                    stop.set()
                ending = asyncio.create_task(end())
                # remote=None: symmetric RTP learns the relay from the first packet it passes on
                result = await run_rtp(Feed(ours), heard.append, sock=rtp, remote=None,
                                       config=RTPConfig(jitter_depth=0.1), stop=stop)
                await ending
                return result, relay, np.concatenate(heard)
            finally:
                transport.close()
        try:
            result, relay, y = asyncio.run(asyncio.wait_for(call(), 20))
            uac.bye()
        finally:
            uac.close()
            rtp.close()
    assert relay.dropped and relay.duplicated, "the seeded relay should both lose and duplicate"
    heard = g711.encode(y, "ulaw")
    want = g711.encode(theirs, "ulaw")
    start = heard.find(want[:160])
    assert start >= 0
    first = relay.forwarded[0]

    def index(seq: int) -> int:
        return (seq - first) % 65536
    last = max(index(s) for s in relay.forwarded)
    blocks = last + 1                      # up to the last packet passed on (then: silence)
    assert start + 160 * blocks <= len(heard)
    silent = []
    for k in range(blocks):
        got = heard[start + 160 * k:start + 160 * (k + 1)]
        if got != want[160 * k:160 * (k + 1)]:
            assert got == bytes([silence]) * 160, f"block {k}: neither baresip's audio nor silence"
            silent.append(k)
    st = result.stats
    # every lost packet is one silent block, and nothing else is missing
    assert sorted(silent) == sorted(index(s) for s in relay.dropped if index(s) < blocks)
    assert st.lost == len([s for s in relay.dropped if index(s) < last])     # RFC 3550 A.3
    assert st.duplicate == relay.duplicated and st.late == 0 and st.reordered > 0
    assert st.played_packets == len(relay.forwarded)
    assert len(y) == result.samples_sent
