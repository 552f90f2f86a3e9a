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
