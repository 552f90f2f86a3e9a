"""The exception hierarchy shared by every part of xmfax.

FaxError
 +-- ProtocolError
 |    +-- LocalProtocolError    we were asked to do something the protocol forbids
 |    +-- RemoteProtocolError   the far end did something the protocol forbids
 +-- CodecError                 a T.4/T.6 code stream or image that cannot be coded
 +-- DocumentError              a file that cannot be read or written as fax pages
 +-- DriverError                anything below the sans-IO core (serial, UDP, modems)
      +-- DriverTimeoutError    (also a TimeoutError)
"""
from __future__ import annotations


class FaxError(Exception):
    """Base class of every error xmfax raises on purpose."""


class ProtocolError(FaxError):
    """A T.30 / T.38 protocol violation."""


class LocalProtocolError(ProtocolError):
    """We were asked to do something the protocol does not allow."""


class RemoteProtocolError(ProtocolError):
    """The far end sent something the protocol does not allow."""


class CodecError(FaxError, ValueError):
    """A code stream or image that cannot be encoded or decoded.

    ``position`` is the bit offset in the stream where the problem was found,
    when known, and ``row`` the image row.
    """

    def __init__(self, message: str, *, position: int | None = None, row: int | None = None):
        super().__init__(message)
        self.position = position
        self.row = row


class DocumentError(FaxError):
    """A document that cannot be loaded or saved; ``source`` names it."""

    def __init__(self, message: str, *, source: str | None = None):
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source
        self.reason = message


class DriverError(FaxError):
    """An I/O-level failure in a driver (serial port, socket, modem)."""


class DriverTimeoutError(DriverError, TimeoutError):
    """A driver operation that did not complete in time."""
