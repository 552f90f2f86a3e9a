"""Class 1 (ITU-T T.31) fax modems over pyserial: see docs/class1.md.

:class:`Class1Driver` runs a T.30 session over a modem; :func:`probe` asks a
modem what it is and what it can do.
"""
from .driver import Class1Config, Class1Driver, DialError, ModemNotResponding
from .profiles import PROFILES, Quirks, get_profile

__all__ = ["Class1Config", "Class1Driver", "DialError", "ModemNotResponding",
           "PROFILES", "Quirks", "get_profile"]
