"""TCF, T.30's training check: 1.5 s of zeros at the page rate.

The sender sends 1.5 s +-10 % of 0 bits at the modulation the DCS chose; the
receiver judges it and answers CFR (good) or FTT (bad). T.30 leaves the judging
rule to the receiver. Ours (:class:`xmfax.t30.config.TCFCheck`): the longest run
of zero octets must last ``min_zero_ms`` at the rate, and no more than
``max_nonzero`` non-zero octets may fall between the first and the last zero
octet (junk before the first or after the last zero, which real modems add at
carrier start and stop, is not counted). The checker streams: memory is O(1).
"""
from __future__ import annotations

from .config import TCFCheck
from .modem import TCF_MS, Modulation

TCF_SECONDS = TCF_MS / 1000          # the timing model (modem.py)


def tcf_bytes(modulation: Modulation) -> bytes:
    """The TCF a sender transmits at ``modulation``: 1.5 s of zero octets."""
    return bytes(int(modulation.bit_rate * TCF_SECONDS) // 8)


class TCFChecker:
    """Feed TCF data as it arrives; ``verdict()`` at carrier down."""

    def __init__(self, modulation: Modulation, rule: TCFCheck):
        self.modulation = modulation
        self.rule = rule
        self.octets = 0
        self.run = 0
        self.longest = 0
        self.nonzero_inside = 0     # non-zero octets after the first zero octet ...
        self._pending_nonzero = 0   # ... counted once a later zero octet confirms them
        self._seen_zero = False

    def feed(self, data: bytes) -> None:
        self.octets += len(data)
        if not data:
            return
        stripped = data.lstrip(b"\x00")
        if not stripped:                                   # all zeros: the common case, fast
            if self._seen_zero:
                self.nonzero_inside += self._pending_nonzero
            self._pending_nonzero = 0
            self._seen_zero = True
            self.run += len(data)
            self.longest = max(self.longest, self.run)
            return
        for b in data:
            if b == 0:
                if self._seen_zero:
                    self.nonzero_inside += self._pending_nonzero
                self._pending_nonzero = 0
                self._seen_zero = True
                self.run += 1
                if self.run > self.longest:
                    self.longest = self.run
            else:
                self.run = 0
                if self._seen_zero:
                    self._pending_nonzero += 1

    @property
    def longest_ms(self) -> float:
        return self.longest * 8 * 1000 / self.modulation.bit_rate

    def verdict(self) -> tuple[bool, str]:
        """(good, detail) by the rule in the module docstring."""
        ok = self.longest_ms >= self.rule.min_zero_ms and self.nonzero_inside <= self.rule.max_nonzero
        detail = (f"{self.octets} octets, longest zero run {self.longest_ms:.0f} ms "
                  f"(need {self.rule.min_zero_ms}), {self.nonzero_inside} non-zero octets "
                  f"(allow {self.rule.max_nonzero})")
        return ok, detail
