"""T38FaxFillBitRemoval (T.38 Annex D): fill bits cut from non-ECM T.4 data before it is sent.

Moved here from terminal.py unchanged (terminal.py re-exports it)."""
from __future__ import annotations

__all__ = ["remove_fill_bits"]


def remove_fill_bits(data: bytes) -> bytes:
    """Drop fill bits (T.4 §4.1.3: zeros inserted before an EOL) as T38FaxFillBitRemoval
    allows (T.38 Annex D). ``data`` is LSB-first T.4 MH/MR data.

    Without decoding the rows we cannot tell where the last code word before the
    EOL ends, and a code word can end in up to 3 zeros (e.g. MH black 18,
    ``0000001000``). So every run of zeros that ends in a 1 is cut to 14: the
    EOL's 11 zeros, plus 3 that may belong to the code word (any left over are
    fill, which every decoder accepts)."""
    import numpy as np  # numpy is a core dependency; imported here as only this needs it

    keep_zeros = 14
    bits = np.unpackbits(np.frombuffer(data, dtype=np.uint8), bitorder="little")
    ones = np.flatnonzero(bits)
    if not len(ones):
        return data
    starts = np.concatenate(([0], ones[:-1] + 1))
    runs = ones - starts                      # zeros before each 1
    long = runs > keep_zeros
    if not long.any():
        return data
    keep = np.ones(len(bits), dtype=bool)
    for s, r in zip(starts[long], runs[long]):
        keep[s:s + r - keep_zeros] = False
    return np.packbits(bits[keep], bitorder="little").tobytes()
