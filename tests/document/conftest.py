"""Fixtures of the document tests (the helpers are in docsamples.py)."""
from __future__ import annotations

import pytest

from docsamples import ETSI, ITU


@pytest.fixture
def itu_pages():
    if not ITU.is_dir():
        pytest.skip(f"ITU T.24 pages not found at {ITU}")
    return sorted(ITU.glob("itu*.pbm"))


@pytest.fixture
def etsi_pages():
    if not ETSI.is_dir():
        pytest.skip(f"ETSI conformance pages not found at {ETSI}")
    return sorted(ETSI.glob("*.tif"))
