"""T.38 session parameters, as SDP carries them (T.38 Annex D §D.2.3, RFC 4612).

One :class:`T38Config` holds what the two ends agree in SDP (``a=T38Fax...``)
plus the local choices SDP does not carry (redundancy depth, FEC span,
pacing). ``to_sdp()`` / ``from_sdp()`` format and parse the attributes and
``answer()`` computes the answerer's parameters from an offer, ready for a
SIP driver.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

__all__ = ["T38Config", "RATE_TRANSFERRED_TCF", "RATE_LOCAL_TCF",
           "EC_REDUNDANCY", "EC_FEC", "EC_NONE"]

RATE_TRANSFERRED_TCF = "transferredTCF"  # TCF goes end to end (T.38 §6.2.1; required over UDP)
RATE_LOCAL_TCF = "localTCF"              # each gateway checks TCF locally (TCP)
EC_REDUNDANCY = "t38UDPRedundancy"
EC_FEC = "t38UDPFEC"
EC_NONE = "t38UDPNoEC"

_BIT_RATES = (2400, 4800, 7200, 9600, 12000, 14400, 33600)


@dataclass(frozen=True, slots=True)
class T38Config:
    """Parameters of a T.38 session.

    SDP-carried (T.38 Annex D, RFC 4612 names in brackets):
      version            [T38FaxVersion] 0..3; which ASN.1 revision IFP uses
      max_bit_rate       [T38MaxBitRate] the fastest modulation allowed, bit/s. The T.30
                         session must not allow more (``limit_t30``); T38Terminal refuses
                         a session that does
      rate_management    [T38FaxRateManagement] transferredTCF or localTCF
      max_buffer         [T38FaxMaxBuffer] octets the far end can buffer: paced, no data
                         packet carries more than this (0: no limit). Unpaced sending
                         (trusted links) ignores it
      max_datagram       [T38FaxMaxDatagram] largest UDPTL datagram, octets
      udp_ec             [T38FaxUdpEC] t38UDPRedundancy, t38UDPFEC or t38UDPNoEC
      fill_bit_removal   [T38FaxFillBitRemoval]
      transcoding_mmr    [T38FaxTranscodingMMR]  (never done here; parsed and answered false)
      transcoding_jbig   [T38FaxTranscodingJBIG] (never done here; parsed and answered false)
    Local:
      redundancy_depth   earlier IFP packets repeated in each datagram (redundancy EC)
      indicator_redundancy  the depth used while indicators are recent (they are small and vital)
      fec_span, fec_entries  FEC: each parity covers ``fec_span`` packets, ``fec_entries`` parities
      paced              send in real time (data in ``chunk_ms`` pieces at the modulation's
                         rate, training delays) as gateways expect; False for trusted links
      chunk_ms           paced data chunk duration (T.38 §7: 20-40 ms is usual)
      indicator_interval_ms  if set, repeat the current indicator this often while idle
                         (like spandsp's REGULAR_INDICATORS); None: send each once
      end_repeats        extra datagrams sent after each indicator and after the last packet
                         of each transmission (its closing no-signal), each a repeat of that
                         indicator with a fresh sequence number: UDPTL redundancy protects a
                         packet only if more packets follow it, and after the end of a signal
                         the line goes quiet (issue #10). 0..10; 0: off
      end_repeat_ms      paced, the spacing of those repeats (1..100 ms); unpaced they go at once
    """

    version: int = 0
    max_bit_rate: int = 14400
    rate_management: str = RATE_TRANSFERRED_TCF
    max_buffer: int = 2000
    max_datagram: int = 400
    udp_ec: str = EC_REDUNDANCY
    fill_bit_removal: bool = False
    transcoding_mmr: bool = False
    transcoding_jbig: bool = False
    redundancy_depth: int = 3
    indicator_redundancy: int = 4
    fec_span: int = 3
    fec_entries: int = 3
    paced: bool = True
    chunk_ms: int = 30
    indicator_interval_ms: int | None = None
    end_repeats: int = 2
    end_repeat_ms: int = 20

    def __post_init__(self) -> None:
        if not 0 <= self.version <= 3:
            raise ValueError(f"T38FaxVersion {self.version}: must be 0..3")
        if self.max_bit_rate < 2400:
            raise ValueError(f"T38MaxBitRate {self.max_bit_rate}: at least 2400")
        if self.rate_management not in (RATE_TRANSFERRED_TCF, RATE_LOCAL_TCF):
            raise ValueError(f"T38FaxRateManagement {self.rate_management!r}: "
                             f"{RATE_TRANSFERRED_TCF} or {RATE_LOCAL_TCF}")
        if self.udp_ec not in (EC_REDUNDANCY, EC_FEC, EC_NONE):
            raise ValueError(f"T38FaxUdpEC {self.udp_ec!r}: {EC_REDUNDANCY}, {EC_FEC} or {EC_NONE}")
        if not 24 <= self.max_datagram <= 65507:
            raise ValueError(f"T38FaxMaxDatagram {self.max_datagram}: 24..65507")
        if self.max_buffer < 0:
            raise ValueError(f"T38FaxMaxBuffer {self.max_buffer}: not negative")
        if not 0 <= self.redundancy_depth <= 16 or not 0 <= self.indicator_redundancy <= 16:
            raise ValueError("redundancy depth: 0..16")
        if not 1 <= self.fec_span <= 16 or not 1 <= self.fec_entries <= 16:
            raise ValueError("fec_span and fec_entries: 1..16")
        if not 10 <= self.chunk_ms <= 200:
            raise ValueError(f"chunk_ms {self.chunk_ms}: 10..200")
        if type(self.end_repeats) is not int or not 0 <= self.end_repeats <= 10:
            raise ValueError(f"end_repeats {self.end_repeats!r}: an int, 0..10")
        if type(self.end_repeat_ms) is not int or not 1 <= self.end_repeat_ms <= 100:
            raise ValueError(f"end_repeat_ms {self.end_repeat_ms!r}: an int, 1..100")

    def replace(self, **changes) -> "T38Config":
        return dataclasses.replace(self, **changes)

    def limit_t30(self, t30_config):
        """``t30_config`` (a T30Config) with its ``max_rate`` capped at T38MaxBitRate, so that
        DIS/DCS never offer a modulation the T.38 session did not agree to."""
        if t30_config.max_rate <= self.max_bit_rate:
            return t30_config
        return dataclasses.replace(t30_config, max_rate=self.max_bit_rate)

    # ----------------------------------------------------------------- SDP
    def to_sdp(self) -> list[str]:
        """The ``a=`` attribute lines (without ``a=``) for an m=image udptl t38 stream.

        Boolean attributes are written in RFC 4612 form (``T38FaxFillBitRemoval:1``
        when true, absent when false)."""
        lines = [
            f"T38FaxVersion:{self.version}",
            f"T38MaxBitRate:{self.max_bit_rate}",
            f"T38FaxRateManagement:{self.rate_management}",
            f"T38FaxMaxBuffer:{self.max_buffer}",
            f"T38FaxMaxDatagram:{self.max_datagram}",
            f"T38FaxUdpEC:{self.udp_ec}",
        ]
        if self.fill_bit_removal:
            lines.append("T38FaxFillBitRemoval:1")
        if self.transcoding_mmr:
            lines.append("T38FaxTranscodingMMR:1")
        if self.transcoding_jbig:
            lines.append("T38FaxTranscodingJBIG:1")
        return lines

    @classmethod
    def from_sdp(cls, lines, base: "T38Config | None" = None) -> "T38Config":
        """Parse T.38 attributes (``a=T38...`` lines, with or without ``a=``).

        Unknown attributes are ignored; attributes are matched without regard to
        case (INTEROP(various): ``T38faxVersion``, ``T38FaxMaxDatagram`` and
        ``T38MaxDatagram`` spellings are all seen); a bare boolean attribute
        (``a=T38FaxFillBitRemoval``) means true (T.38 Annex D, 2002 form).
        Raises ValueError on a malformed value."""
        base = base or cls()
        changes: dict = {
            # absent booleans are false (RFC 4612 §2.5)
            "fill_bit_removal": False, "transcoding_mmr": False, "transcoding_jbig": False,
        }
        for raw in lines:
            line = raw.strip()
            if line.startswith("a="):
                line = line[2:]
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            try:
                if key == "t38faxversion":
                    changes["version"] = int(value)
                elif key == "t38maxbitrate":
                    changes["max_bit_rate"] = int(value)
                elif key == "t38faxratemanagement":
                    v = value.lower()
                    if v == "transferredtcf":
                        changes["rate_management"] = RATE_TRANSFERRED_TCF
                    elif v == "localtcf":
                        changes["rate_management"] = RATE_LOCAL_TCF
                    else:
                        raise ValueError(value)
                elif key == "t38faxmaxbuffer":
                    changes["max_buffer"] = int(value)
                elif key in ("t38faxmaxdatagram", "t38maxdatagram"):
                    changes["max_datagram"] = int(value)
                elif key == "t38faxudpec":
                    v = value.lower()
                    ec = {e.lower(): e for e in (EC_REDUNDANCY, EC_FEC, EC_NONE)}
                    if v not in ec:
                        raise ValueError(value)
                    changes["udp_ec"] = ec[v]
                elif key in ("t38faxfillbitremoval", "t38faxtranscodingmmr", "t38faxtranscodingjbig"):
                    flag = value.lower() not in ("0", "false") if value else True
                    field = {"t38faxfillbitremoval": "fill_bit_removal",
                             "t38faxtranscodingmmr": "transcoding_mmr",
                             "t38faxtranscodingjbig": "transcoding_jbig"}[key]
                    changes[field] = flag
            except ValueError:
                raise ValueError(f"bad SDP attribute {raw.strip()!r}") from None
        # INTEROP(various): some gateways advertise T38FaxMaxDatagram below anything usable
        # (e.g. 72); honour small values down to our floor rather than refusing the call.
        if "max_datagram" in changes:
            changes["max_datagram"] = max(24, min(65507, changes["max_datagram"]))
        return dataclasses.replace(base, **changes)

    def answer(self, offer: "T38Config") -> "T38Config":
        """The parameters to answer ``offer`` with, given our own limits in ``self``
        (T.38 Annex D: version and bit rate at most the offer's; the answerer
        picks an EC scheme no richer than offered; we never transcode)."""
        ec = offer.udp_ec
        if self.udp_ec == EC_NONE or (ec == EC_FEC and self.udp_ec != EC_FEC):
            ec = EC_REDUNDANCY if ec != EC_NONE and self.udp_ec != EC_NONE else EC_NONE
        return dataclasses.replace(
            self,
            version=min(self.version, offer.version),
            max_bit_rate=min(self.max_bit_rate, offer.max_bit_rate),
            rate_management=offer.rate_management,
            max_datagram=min(self.max_datagram, offer.max_datagram),
            udp_ec=ec,
            fill_bit_removal=self.fill_bit_removal and offer.fill_bit_removal,
            transcoding_mmr=False,
            transcoding_jbig=False,
        )
