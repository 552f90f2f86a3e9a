"""docs/guide.md stays true to the code it documents: every reason code, the retryable set,
the exit statuses and the examples it names."""
from __future__ import annotations

import re
from pathlib import Path

from xmfax import api
from xmfax.record import CALL_REASONS
from xmfax.t30.result import Reason

ROOT = Path(__file__).resolve().parents[2]
GUIDE = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")


def table_rows() -> dict[str, str]:
    """`code` -> text of the reason tables' rows."""
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^\| `([a-z_0-9]+)` \| (.+?) \|$", GUIDE, re.M)}


def test_every_reason_is_documented_with_its_text():
    rows = table_rows()
    for reason in Reason:
        assert rows.get(reason.name.lower()) == reason.text, reason
    for code, text in CALL_REASONS.items():
        assert code in rows and (rows[code] == text or code == "ok"), code


def test_retryable_list_matches_the_api():
    listed = re.search(r"With `retries`, these are tried again: (.+?)\n\(`xmfax.api.RETRYABLE`\)", GUIDE, re.S)
    assert listed is not None
    assert set(re.findall(r"`([a-z_]+)`", listed.group(1))) == api.RETRYABLE


def test_examples_named_exist():
    for name in re.findall(r"examples/([a-z_]+\.py)", GUIDE):
        assert (ROOT / "examples" / name).is_file(), name
