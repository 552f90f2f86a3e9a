"""E.164 normalisation of fax numbers (xmfax/server/e164.py)."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from xmfax.server import e164
from xmfax.server.e164 import normalise


@pytest.mark.parametrize("text, country, want", [
    ("+1 (555) 123-4567", "1", "+15551234567"),
    ("(555) 123-4567", "1", "+15551234567"),
    ("555.123.4567", "1", "+15551234567"),
    ("1-555-123-4567", "1", "+15551234567"),
    ("011 44 20 7946 0000", "1", "+442079460000"),      # NANP international prefix
    ("00 44 20 7946 0000", "1", "+442079460000"),       # the common one
    ("+44 (0)20 7946 0000", "1", "+442079460000"),      # the letterhead's national (0)
    ("020 7946 0000", "44", "+442079460000"),           # national, trunk 0 dropped
    ("030/1234567", "49", "+49301234567"),
    ("011 49 30 1234567", "44", "+441149301234567"),   # 011 is NANP only: here a national number
    ("tel:+1-555-0100", "1", "+15550100"),
    ("+15550100", "1", "+15550100"),
    ("  +352 26 12 34  ", "1", "+352261234"),
])
def test_numbers_normalised(text, country, want):
    assert normalise(text, country) == want
    assert normalise(want, country) == want           # already E.164 stays as it is
    assert e164.is_e164(want)


@pytest.mark.parametrize("text, country, why", [
    ("", "1", "empty"),
    ("+", "1", "no digits"),
    ("555-0100", "1", "10 digits"),                    # a NANP local number: no area code
    ("1-800-FLOWERS", "1", "'F' is not a digit"),
    ("+0123456789", "1", "never starts with 0"),
    ("+1234567890123456", "1", "at most 15"),
    ("+12345", "1", "too short"),
    ("+1 555 0100 ext 12", "1", "'e' is not a digit"),
    ("5550100\x00", "1", "not a digit"),
    ("+1555０１００", "1", "not a digit"),            # fullwidth digits are not ASCII digits
    ("0", "44", "no digits after the trunk prefix"),
    ("9" * 65, "1", "too long"),
])
def test_bad_numbers_say_why(text, country, why):
    with pytest.raises(ValueError, match=why):
        normalise(text, country)


@pytest.mark.parametrize("country", ["", "0", "44a", "1234", "+"])
def test_bad_default_country(country):
    with pytest.raises(ValueError, match="default country code"):
        normalise("5551234567", country)


NUMBERISH = st.text(alphabet=st.sampled_from(list("0123456789+ -.()/tel:x\u00a0") + ["０", "٣"]), max_size=30)


@given(text=st.one_of(NUMBERISH, st.text(max_size=70)), country=st.sampled_from(["1", "44", "49", "352", "7"]))
def test_never_another_exception_and_idempotent(text, country):
    try:
        out = normalise(text, country)
    except ValueError:
        return
    assert e164.is_e164(out)
    assert normalise(out, country) == out
    assert normalise(out, "1") == out                  # an E.164 number does not depend on the default


@given(digits=st.text(alphabet="0123456789", min_size=6, max_size=14), cc=st.sampled_from(["1", "44", "352"]))
def test_international_numbers_keep_their_digits(digits, cc):
    number = "+" + cc + digits
    if len(number) - 1 > 15:
        with pytest.raises(ValueError):
            normalise(number)
    else:
        assert normalise(number) == number
        assert normalise("00" + cc + " " + digits) == number
