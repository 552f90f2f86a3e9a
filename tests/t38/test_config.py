"""T38Config: SDP attributes formatted, parsed (with real-world spellings) and answered."""
from __future__ import annotations

import pytest

from xmfax.t38.config import EC_FEC, EC_NONE, EC_REDUNDANCY, RATE_LOCAL_TCF, T38Config


def test_sdp_round_trip():
    c = T38Config(version=2, max_bit_rate=9600, rate_management=RATE_LOCAL_TCF, max_buffer=1800,
                  max_datagram=200, udp_ec=EC_FEC, fill_bit_removal=True)
    lines = c.to_sdp()
    assert "T38FaxUdpEC:t38UDPFEC" in lines and "T38FaxFillBitRemoval:1" in lines
    assert T38Config.from_sdp(["a=" + x for x in lines]) == c


def test_sdp_real_world_spellings():
    c = T38Config.from_sdp(["a=T38faxVersion:1", "a=T38MaxBitRate:14400", "a=T38FaxRateManagement:transferredTCF",
                            "a=T38MaxDatagram:72", "a=T38FaxUdpEC:t38udpredundancy", "a=T38FaxFillBitRemoval",
                            "a=rtpmap:96 foo"])
    assert (c.version, c.max_datagram, c.udp_ec, c.fill_bit_removal) == (1, 72, EC_REDUNDANCY, True)
    with pytest.raises(ValueError):
        T38Config.from_sdp(["a=T38FaxVersion:x"])
    with pytest.raises(ValueError):
        T38Config.from_sdp(["a=T38FaxUdpEC:t38UDPMagic"])


def test_answer_takes_the_lower_of_each():
    ours = T38Config(version=3, max_bit_rate=14400, udp_ec=EC_REDUNDANCY, max_datagram=400)
    offer = T38Config(version=0, max_bit_rate=9600, udp_ec=EC_FEC, max_datagram=300,
                      transcoding_mmr=True)
    a = ours.answer(offer)
    assert (a.version, a.max_bit_rate, a.udp_ec, a.max_datagram, a.transcoding_mmr) == \
        (0, 9600, EC_REDUNDANCY, 300, False)
    assert T38Config(udp_ec=EC_NONE).answer(offer).udp_ec == EC_NONE


@pytest.mark.parametrize("bad", [dict(version=4), dict(max_datagram=10), dict(udp_ec="x"),
                                 dict(rate_management="x"), dict(chunk_ms=5)])
def test_invalid_values(bad):
    with pytest.raises(ValueError):
        T38Config(**bad)
