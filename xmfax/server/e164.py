"""Fax numbers as E.164: ``normalise("(555) 123-4567") == "+15551234567"``.

The rules, in order (ITU-T E.164 §6: at most 15 digits, a country code of one to three
digits that never starts with 0):

* spaces, dots, dashes, slashes and parentheses are dropped (``+44 (0)20 7946 0000``
  drops the national ``(0)`` too, as written on letterheads), and a ``tel:`` prefix;
* ``+`` starts an international number;
* ``00`` (most of the world) and ``011`` (NANP, when the default country is 1) are
  international prefixes: the rest is the country code and number;
* anything else is a national number of ``default_country``: in NANP (``1``) ten
  digits, or eleven starting with the trunk prefix 1; elsewhere one leading trunk
  prefix ``0`` is dropped.

What comes out is ``+`` and 7 to 15 ASCII digits; anything else is a ValueError that
says what is wrong. ``normalise`` is idempotent: its output normalises to itself.
"""
from __future__ import annotations

import re

__all__ = ["normalise", "is_e164"]

MAX_DIGITS = 15      # E.164 §6.1: the international number is at most 15 digits
MIN_DIGITS = 7       # the shortest numbers in service (e.g. +683 NNNN) have 7 with the country code
MAX_INPUT = 64       # a longer "number" is not one; refuse before doing any work
_SEPARATORS = re.compile(r"[ \t.\-/()\u00a0]")
_DIGITS = re.compile(r"[0-9]+")
_TRUNK_ZERO = re.compile(r"\(0\)")
_E164 = re.compile(r"\+[1-9][0-9]{%d,%d}" % (MIN_DIGITS - 1, MAX_DIGITS - 1))


def is_e164(number: str) -> bool:
    """True for ``+`` and 7..15 ASCII digits not starting with 0 (what normalise returns)."""
    return isinstance(number, str) and _E164.fullmatch(number) is not None


def _country(default_country: str) -> str:
    cc = str(default_country).strip().lstrip("+")
    if not (1 <= len(cc) <= 3 and _DIGITS.fullmatch(cc) and cc[0] != "0"):
        raise ValueError(f"default country code {default_country!r}: 1 to 3 digits, not starting with 0 (e.g. 1, 44, 352)")
    return cc


def normalise(number: str, default_country: str = "1") -> str:
    """``number`` as E.164 (``+CCNNN...``); ValueError naming what is wrong."""
    cc = _country(default_country)
    if not isinstance(number, str):
        raise ValueError(f"fax number {number!r}: not text")
    if len(number) > MAX_INPUT:
        raise ValueError(f"fax number of {len(number)} characters: too long for a phone number")
    text = number.strip()
    if text[:4].lower() == "tel:":
        text = text[4:]
    text = _TRUNK_ZERO.sub("", text) if text.startswith("+") else text
    text = _SEPARATORS.sub("", text)
    if not text:
        raise ValueError(f"fax number {number!r}: empty")
    international = text.startswith("+")
    digits = text[1:] if international else text
    if not digits:
        raise ValueError(f"fax number {number!r}: no digits")
    if not _DIGITS.fullmatch(digits):
        bad = next(c for c in digits if c not in "0123456789")
        raise ValueError(f"fax number {number!r}: {bad!r} is not a digit (only digits, spaces, . - / ( ) and a leading +)")
    if not international:
        if digits.startswith("00"):
            digits, international = digits[2:], True
        elif cc == "1" and digits.startswith("011"):
            digits, international = digits[3:], True
    if not international:
        digits = _national(digits, cc, number)
    if digits.startswith("0"):
        raise ValueError(f"fax number {number!r}: a country code never starts with 0")
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"fax number {number!r}: {len(digits)} digits; E.164 allows at most {MAX_DIGITS}")
    if len(digits) < MIN_DIGITS:
        raise ValueError(f"fax number {number!r}: {len(digits)} digits with the country code; too short "
                         f"(at least {MIN_DIGITS})")
    return "+" + digits


def _national(digits: str, cc: str, original: str) -> str:
    """A national number of country ``cc`` with its country code in front."""
    if cc == "1":        # NANP: NXX NXX XXXX, or 1 + that
        if len(digits) == 11 and digits[0] == "1":
            return digits
        if len(digits) == 10:
            return "1" + digits
        raise ValueError(f"fax number {original!r}: a national number of country 1 has 10 digits "
                         f"(or 11 starting with 1), not {len(digits)}; or write it with + and the country code")
    if digits.startswith("0") and not digits.startswith("00"):
        digits = digits[1:]      # the trunk prefix
    if not digits:
        raise ValueError(f"fax number {original!r}: no digits after the trunk prefix 0")
    return cc + digits
