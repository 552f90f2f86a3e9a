"""Frames, FCFs and the DIS/DCS bits (Table 2/T.30), checked bit by bit."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xmfax.errors import RemoteProtocolError
from xmfax.page import Resolution
from xmfax.t30 import frames as F
from xmfax.t30.fcf import FCF, octet, split
from xmfax.t30.modem import Family, Modulation


def bits_of(fif: bytes) -> set[int]:
    return {i * 8 + b + 1 for i, o in enumerate(fif) for b in range(8) if o & (1 << b)}


def test_fcf_octets_match_table_1():
    # T.30 writes DIS as 0000 0001 (first bit sent on the left): 0x80 with LSB first
    assert octet(FCF.DIS, 1) == 0x80 and octet(FCF.DTC, 0) == 0x81
    assert octet(FCF.DCS, 0) == 0x82 and octet(FCF.DCS, 1) == 0x83
    assert octet(FCF.MCF, 1) == 0x8D and octet(FCF.DCN, 0) == 0xFA
    assert split(0x81) == (FCF.DTC, 1) and split(0x80) == (FCF.DIS, 0)
    assert split(0x41) == (FCF.CIG, 1) and split(0x40) == (FCF.CSI, 0)
    assert split(0x83) == (FCF.DCS, 1) and split(0xBD) == (FCF.PPR, 1)
    assert split(0x00)[0] is None


def test_frame_roundtrip_and_control_field():
    fr = F.Frame(FCF.DCS, b"\x00\x46\x00", x=1, final=True)
    raw = fr.encode()
    assert raw[:3] == bytes((0xFF, 0x13, 0x83))
    assert F.decode_frame(raw) == fr
    assert F.Frame(FCF.TSI, b"", 0, final=False).encode()[1] == 0x03


@pytest.mark.parametrize("raw", [b"", b"\xff", b"\xfe\x13\x80", b"\xff\x07\x80", b"\xff\x13\x00"])
def test_bad_frames_are_remote_errors(raw):
    with pytest.raises(RemoteProtocolError):
        F.decode_frame(raw)


def test_identifier_is_reversed_and_padded():
    fif = F.encode_id("+1 555")
    assert len(fif) == 20 and fif[:6] == b"555 1+" and fif[6:] == b" " * 14
    assert F.decode_id(fif) == "+1 555"
    with pytest.raises(ValueError):
        F.check_id("FAX-1")
    with pytest.raises(ValueError):
        F.encode_id("1" * 21)


def test_dis_bits_table_2():
    d = F.DIS(ready_to_transmit=True, ready_to_receive=True,
              modems=frozenset({Family.V27TER, Family.V29, Family.V17}),
              resolutions=frozenset({Resolution.STANDARD, Resolution.FINE, Resolution.SUPERFINE}),
              compressions=frozenset({"mh", "mr", "mmr"}), max_width="b4", max_length="unlimited",
              min_scan_ms=20, scan_halves=True, ecm=True)
    b = bits_of(d.encode())
    assert {9, 10} <= b                           # polling ready, receiver
    assert {11, 12, 14} <= b and 13 not in b      # V.27 ter, V.29 and V.17: 1101
    assert {15, 16, 17, 20, 27, 31, 41, 45} <= b  # fine, MR, B4 width, unlimited, ECM, T.6, 15.4, metric
    assert 18 not in b and 19 not in b
    assert {21, 22} <= b and 23 not in b          # 110: 20 ms, halved at 7.7 l/mm
    assert {24, 32, 40} <= b and 48 not in b      # extend bits up to the last octet
    assert F.DIS.decode(d.encode()) == d


def test_dcs_rate_codes_table_2():
    expect = {Modulation.V27TER_2400: set(), Modulation.V27TER_4800: {12},
              Modulation.V29_9600: {11}, Modulation.V29_7200: {11, 12},
              Modulation.V17_14400: {14}, Modulation.V17_12000: {12, 14},
              Modulation.V17_9600: {11, 14}, Modulation.V17_7200: {11, 12, 14}}
    for mod, bits in expect.items():
        b = bits_of(F.DCS(modulation=mod).encode())
        assert b & {11, 12, 13, 14} == bits, mod
        assert F.DCS.decode(F.DCS(modulation=mod).encode()).modulation is mod


def test_dcs_other_bits():
    d = F.DCS(modulation=Modulation.V17_14400, resolution=Resolution.SUPERFINE, compression="mmr",
              width="a3", length="b4", min_scan_ms=0, ecm=True, ecm_frame_size=64)
    b = bits_of(d.encode())
    assert {10, 14, 18, 19, 21, 22, 23, 27, 28, 31, 41} <= b
    assert not b & {15, 16, 17, 20, 44}
    assert F.DCS.decode(d.encode()) == d
    with pytest.raises(ValueError):
        F.DCS(compression="mmr", ecm=False).encode()


def test_dcs_decoding_rejects_invalid():
    with pytest.raises(RemoteProtocolError):
        F.DCS.decode(b"\x00\x00")
    with pytest.raises(RemoteProtocolError):       # bits 11-14 = 0010: reserved
        F.DCS.decode(bytes([0, 0x10, 0]))
    with pytest.raises(RemoteProtocolError):       # T.6 without ECM
        F.DCS.decode(bytes([0, 0, 0x80, 0x40]))


def test_ecm_fifs():
    assert F.encode_pps(0x4F, 3, 1, 256) == bytes((0x4F, 3, 1, 255))
    assert F.decode_pps(bytes((0x4F, 3, 1, 255))) == (0x4E, 3, 1, 256)
    m = {0, 7, 8, 255}
    fif = F.encode_ppr(m)
    assert len(fif) == 32 and fif[0] == 0x81 and fif[1] == 0x01 and fif[31] == 0x80
    assert F.decode_ppr(fif) == m
    assert F.decode_ctc(F.encode_ctc(Modulation.V29_7200)) is Modulation.V29_7200
    assert F.fcd(5, b"ab") == b"\xff\x03\x06\x05ab"


dis_st = st.builds(
    F.DIS,
    ready_to_transmit=st.booleans(), ready_to_receive=st.booleans(),
    modems=st.sampled_from([frozenset({Family.V27TER}), frozenset({Family.V27TER, Family.V29}),
                            frozenset({Family.V27TER, Family.V29, Family.V17})]),
    resolutions=st.sets(st.sampled_from([Resolution.FINE, Resolution.SUPERFINE])).map(
        lambda s: frozenset(s | {Resolution.STANDARD})),
    compressions=st.sampled_from([frozenset({"mh"}), frozenset({"mh", "mr"})]),
    max_width=st.sampled_from(F.WIDTHS), max_length=st.sampled_from(F.LENGTHS),
    min_scan_ms=st.sampled_from([0, 5, 10, 20, 40]), ecm=st.booleans())


@given(dis_st)
def test_dis_roundtrip(d):
    if d.scan_halves and d.min_scan_ms in (0, 5):
        return
    assert F.DIS.decode(d.encode()) == d


@settings(max_examples=400)
@given(st.binary(max_size=300))
def test_fuzz_frame_parsers(data):
    """Any bytes: a frame or a RemoteProtocolError, never anything else."""
    for parse in (F.decode_frame, F.DIS.decode, F.DCS.decode, F.decode_pps, F.decode_ppr,
                  F.decode_ctc):
        try:
            parse(data)
        except RemoteProtocolError:
            pass
    fr = None
    try:
        fr = F.decode_frame(data)
    except RemoteProtocolError:
        pass
    if fr is not None:
        assert isinstance(F.describe(fr), str)


@given(st.binary(min_size=3, max_size=12), st.integers(0, 95), st.integers(0, 7))
def test_mutated_dis_decodes_or_rejects(seed, pos, bit):
    fif = bytearray(F.DIS().encode())
    fif[pos % len(fif)] ^= 1 << bit
    try:
        d = F.DIS.decode(bytes(fif) + seed)
        assert Family.V27TER in d.modems or d.modems
    except RemoteProtocolError:
        pass
