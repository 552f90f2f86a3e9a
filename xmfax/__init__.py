"""xmfax: a fax telephony engine (T.4/T.6 codecs, T.30, T.38, Class 1 modems)."""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: F401
    CodecError,
    DocumentError,
    DriverError,
    DriverTimeoutError,
    FaxError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)

# The API (xmfax.api) pulls in documents, T.30 and the drivers: load it on first use.
_API = {"send", "send_sync", "receive", "Receiver", "Call", "Accept", "Reject", "FaxResult"}


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'xmfax' has no attribute {name!r}")
