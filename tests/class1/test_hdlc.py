"""xmfax.hdlc: FCS, bit stuffing, incremental decoding, robustness against junk."""
import random

from hypothesis import given, settings, strategies as st

from xmfax import hdlc


def test_fcs_check_value():
    # CRC-16/X.25 check value for "123456789" is 0x906E, sent low octet first (T.30 §5.3.7)
    assert hdlc.fcs16(b"123456789") == b"\x6e\x90"
    assert hdlc.fcs_ok(b"123456789\x6e\x90")
    assert not hdlc.fcs_ok(b"123456789\x6e\x91")


def test_known_dis_frame_roundtrip_and_stuffing():
    frame = b"\xff\x13\x80\x00\xce\xf4\x80\x80\x81\x80\x80\x80\x18"
    stream = hdlc.encode([frame])
    assert stream[0] == 0x7E
    assert hdlc.decode(stream) == [hdlc.DecodedFrame(frame, True)]


def test_all_ones_payload_is_stuffed():
    frame = b"\xff" * 20
    stream = hdlc.encode([frame], preamble_flags=3)
    # no run of six ones may appear inside the stuffed frame: only flags carry them
    bits = "".join(f"{b:08b}"[::-1] for b in stream)
    body = bits[24:-16]
    assert "1111111" not in body
    assert hdlc.decode(stream) == [hdlc.DecodedFrame(frame, True)]


@given(st.lists(st.binary(min_size=2, max_size=300), min_size=1, max_size=6),
       st.integers(1, 5), st.integers(1, 3), st.randoms(use_true_random=False))
@settings(max_examples=150, deadline=None)
def test_roundtrip_any_chunking(frames, pre, post, rnd):
    stream = hdlc.encode(frames, preamble_flags=pre, closing_flags=post)
    dec = hdlc.Decoder()
    got = []
    i = 0
    while i < len(stream):
        n = rnd.randint(1, 40)
        got += dec.feed(stream[i:i + n])
        i += n
    assert got == [hdlc.DecodedFrame(f, True) for f in frames]


def test_leading_idle_ones_and_zeros_then_frames():
    frame = b"\xff\x03\x06" + bytes(range(64))
    stream = b"\xff" * 50 + b"\x00" * 10 + hdlc.encode([frame, frame])
    assert [f.frame for f in hdlc.decode(stream)] == [frame, frame]


def test_corrupted_frame_reported_with_bad_fcs():
    frame = b"\xff\x03\x06\x00" + bytes(200)
    stream = bytearray(hdlc.encode([frame], preamble_flags=4))
    stream[60] ^= 0x04          # inside the zero payload: no stuffing there, length kept
    out = hdlc.decode(bytes(stream))
    assert len(out) == 1 and not out[0].fcs_ok


def test_abort_discards_frame():
    frame = b"\xff\x03" + bytes(50)
    stream = hdlc.encode([frame])
    cut = stream[:20] + b"\xff\xff" + hdlc.encode([frame])
    dec = hdlc.Decoder()
    out = dec.feed(cut)
    assert out == [hdlc.DecodedFrame(frame, True)]
    assert dec.aborts == 1


def test_too_long_frame_dropped_memory_bounded():
    dec = hdlc.Decoder(max_frame=100)
    out = dec.feed(hdlc.encode([bytes(500), b"\xff\x03\x01\x02"]))
    assert out == [hdlc.DecodedFrame(b"\xff\x03\x01\x02", True)]
    assert dec.too_long == 1
    assert len(dec._bits) <= dec._limit + 8


@given(st.binary(max_size=3000))
@settings(max_examples=200, deadline=None)
def test_fuzz_random_bytes_never_crash(data):
    dec = hdlc.Decoder(max_frame=300)
    for f in dec.feed(data):
        assert len(f.frame) <= 300
    assert len(dec._bits) <= dec._limit + 8


def test_mutation_fuzz():
    rnd = random.Random(1234)
    frames = [bytes(rnd.getrandbits(8) for _ in range(rnd.randint(3, 260))) for _ in range(8)]
    base = hdlc.encode(frames, preamble_flags=5)
    for _ in range(300):
        s = bytearray(base)
        for _ in range(rnd.randint(1, 6)):
            op = rnd.randint(0, 2)
            pos = rnd.randrange(len(s))
            if op == 0:
                s[pos] ^= 1 << rnd.randrange(8)
            elif op == 1:
                del s[pos:pos + rnd.randint(1, 10)]
            else:
                s[pos:pos] = bytes(rnd.getrandbits(8) for _ in range(rnd.randint(1, 10)))
        out = hdlc.decode(bytes(s))
        good = [f.frame for f in out if f.fcs_ok]
        # whatever survives with a good FCS is one of the originals (a 16-bit FCS can be
        # fooled, but not by these few seeded mutations)
        assert all(g in frames for g in good)
