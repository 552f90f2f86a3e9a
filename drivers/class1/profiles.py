"""Modem quirks as named configuration, grouped into per-modem profiles.

Every Class 1 modem departs from T.31 somewhere. Rather than ``if modem ==``
branches in the driver, each departure is one documented field of
:class:`Quirks`; a profile is a named set of them. Pick one with
``Class1Config(profile="iaxmodem")`` or override single fields with
``Class1Config(quirks=replace(PROFILES["generic"], ftm_delay_ms=100))``.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

from xmfax.t30.config import TCFCheck
from xmfax.t30.modem import SILENCE_MS

# The TCF rule of a receiver whose modem adds junk to TCF (``tolerant_tcf``): half of the
# 1.5 s of zeros in one run, and up to 40 stray octets among them (the default rule asks
# 1000 ms and 10). Only the training check is looser: every page is still judged row by
# row (T30Config.copy_quality), so a line worse than TCF showed ends in RTN, never in a
# page accepted with damage.
TOLERANT_TCF = TCFCheck(min_zero_ms=750, max_nonzero=40)


@dataclass(frozen=True, slots=True)
class Quirks:
    """One modem's departures from T.31, and the timings it needs."""

    # +FRH=3 answers CONNECT for any carrier (even high-speed training), and the
    # "frame" that follows is noise ending in ERROR: treat a CONNECT whose frame
    # fails as no frame at all, instead of a frame with a bad FCS.
    connect_on_any_carrier: bool = False
    # The modem sends a data DLE single instead of DLE DLE in received data:
    # keep a lone DLE as data instead of dropping the unknown DLE pair.
    dle_not_doubled: bool = False
    # The modem reports +FCERROR to +FRM before the carrier has really been
    # judged (early +FCERROR): retry +FRM this many times before reporting a
    # wrong carrier to T.30. (T.31 §8.3.4: +FRM after +FCERROR is legal.)
    frm_retries_after_fcerror: int = 1
    # Extra delay (ms) before sending +FTM, for modems that lose the start of a
    # high-speed transmission if it follows the previous carrier too closely.
    ftm_delay_ms: int = 0
    # Receive side of TCF: judge it leniently (accept a shorter zero run and
    # more stray octets: some modems deliver junk at the start or end of TCF).
    # The driver gives the session TOLERANT_TCF unless its T30Config chose a rule.
    tolerant_tcf: bool = False
    # +FRH frames end with the two FCS octets before DLE ETX (T.31 §8.3.6);
    # False for modems that strip them.
    frh_includes_fcs: bool = True
    # Silence (ms) sent with +FTS before answering a command: T.30 §5 Notes 3 and 4
    # ask 75 +-20 ms between the end of a signal and the start of the response
    # (the timing model's SILENCE_MS; +FTS counts 10 ms units, rounded up: +FTS=8).
    pause_before_response_ms: int = SILENCE_MS
    # Seconds the modem refuses to dial after ATZ/ATH/power-up (a blind wait).
    settle_after_reset_s: float = 0.5
    # For this long after the first try, a dial answered NO DIALTONE is tried again
    # (every 0.5 s): for a far end that refuses calls for a while after its own
    # ATZ/ATH, a state no AT command of ours can see. 0: NO DIALTONE fails at once.
    no_dialtone_retry_s: float = 0.0
    # ATZ turns echo back on: send ATE0 after every ATZ (in the init and in recovery),
    # even when the init string has no ATE0.
    reset_restores_echo: bool = True
    # Bytes written to abort +FRH/+FRM/+FRS when the DTE's timer expires
    # (T.31 §6.2.2: any character aborts a receive command, +FRM §8.3.4, +FRH §8.3.6).
    abort_byte: bytes = b"\x18"
    # Seconds to wait for OK after the last byte of a +FTM/+FTH transmission,
    # beyond the time the data itself takes on the line.
    send_drain_margin_s: float = 10.0
    # Use Class 1.0 (+FCLASS=1.0, T.31) instead of +FCLASS=1 when AT+FCLASS=? lists it.
    prefer_class_1_0: bool = False

    @classmethod
    def describe(cls) -> dict[str, str]:
        """Field name -> one-line description (for docs and `xmfax modem probe`)."""
        return {f.name: _DOC.get(f.name, "") for f in fields(cls)}


_DOC = {
    "connect_on_any_carrier": "CONNECT is reported on any carrier after +FRH",
    "dle_not_doubled": "data DLE arrives single instead of DLE DLE",
    "frm_retries_after_fcerror": "+FRM retries after an (early) +FCERROR",
    "ftm_delay_ms": "extra delay needed before +FTM",
    "tolerant_tcf": "tolerant TCF check (junk around the zeros)",
    "frh_includes_fcs": "+FRH data carries the two FCS octets",
    "pause_before_response_ms": "+FTS pause before answering a command (T.30 75 ms)",
    "settle_after_reset_s": "seconds before the modem will dial after ATZ/ATH",
    "no_dialtone_retry_s": "seconds NO DIALTONE is retried (far end busy after its reset)",
    "reset_restores_echo": "ATZ turns echo back on (ATE0 follows every ATZ)",
    "abort_byte": "byte sent to abort a receive command",
    "send_drain_margin_s": "slack for OK after a transmission",
    "prefer_class_1_0": "use +FCLASS=1.0 where offered",
}

PROFILES: dict[str, Quirks] = {
    # T.31 as written, with the 75 ms pause and one +FRM retry
    "generic": Quirks(),
    # spandsp's T.31 in iaxmodem (the test rig): a modem rejects incoming calls for
    # 5 s after its own ATZ/ATH (the caller sees NO DIALTONE at once; nothing on
    # either port shows the guard), so the caller retries instead of waiting blind;
    # TCF may carry trailing junk; ATZ turns echo on.
    "iaxmodem": Quirks(settle_after_reset_s=0.0, no_dialtone_retry_s=10.0, tolerant_tcf=True),
    # everything lenient: for an unknown modem that misbehaves
    "conservative": Quirks(connect_on_any_carrier=True, dle_not_doubled=False,
                           frm_retries_after_fcerror=2, ftm_delay_ms=100, tolerant_tcf=True,
                           settle_after_reset_s=2.0),
}


def get_profile(name: str) -> Quirks:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown modem profile {name!r}; one of: {', '.join(PROFILES)}") from None
