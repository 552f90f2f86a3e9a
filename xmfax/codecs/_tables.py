"""The T.4 / T.6 code tables, as data.

Every code is written as a string of '0'/'1' characters, first-transmitted bit
first, exactly as the ITU tables print them. Both backends derive their lookup
structures from these tuples (the C engineer generates C tables from them), so
this file is the single place a code value lives.

* Run-length codes for MH (T.4 §4.1) and for the horizontal mode of MR/MMR
  (T.4 §4.2.1.3.3, T.6 §2.2.3): terminating codes for runs 0..63, make-up codes
  for multiples of 64 up to 1728, and the extended make-up codes shared by both
  colours for 1792..2560.
* Mode codes of two-dimensional coding (T.4 §4.2.1.3.2, T.6 §2.2.2).
* EOL (T.4 §4.1.2), RTC (T.4 §4.1.4) and EOFB (T.6 §2.4.1).

A run longer than 2623 is coded as 2560 make-up codes until the rest is below
2624, then one make-up code (if the rest is 64 or more) and one terminating code
(T.4 §4.1.1.1 and its note on runs over 2560).
"""
from __future__ import annotations

# T.4 §4.1.2 Table 2/T.4: terminating codes, white runs 0..63 (index = run length)
WHITE_TERMINATING: tuple[str, ...] = (
    "00110101", "000111", "0111", "1000", "1011", "1100", "1110", "1111",          # 0-7
    "10011", "10100", "00111", "01000", "001000", "000011", "110100", "110101",    # 8-15
    "101010", "101011", "0100111", "0001100", "0001000", "0010111", "0000011",     # 16-22
    "0000100", "0101000", "0101011", "0010011", "0100100", "0011000",              # 23-28
    "00000010", "00000011", "00011010", "00011011", "00010010", "00010011",        # 29-34
    "00010100", "00010101", "00010110", "00010111", "00101000", "00101001",        # 35-40
    "00101010", "00101011", "00101100", "00101101", "00000100", "00000101",        # 41-46
    "00001010", "00001011", "01010010", "01010011", "01010100", "01010101",        # 47-52
    "00100100", "00100101", "01011000", "01011001", "01011010", "01011011",        # 53-58
    "01001010", "01001011", "00110010", "00110011", "00110100",                    # 59-63
)

# T.4 §4.1.2 Table 2/T.4: terminating codes, black runs 0..63 (index = run length)
BLACK_TERMINATING: tuple[str, ...] = (
    "0000110111", "010", "11", "10", "011", "0011", "0010", "00011",              # 0-7
    "000101", "000100", "0000100", "0000101", "0000111", "00000100",              # 8-13
    "00000111", "000011000", "0000010111", "0000011000", "0000001000",            # 14-18
    "00001100111", "00001101000", "00001101100", "00000110111", "00000101000",     # 19-23
    "00000010111", "00000011000", "000011001010", "000011001011", "000011001100",  # 24-28
    "000011001101", "000001101000", "000001101001", "000001101010",               # 29-32
    "000001101011", "000011010010", "000011010011", "000011010100",               # 33-36
    "000011010101", "000011010110", "000011010111", "000001101100",               # 37-40
    "000001101101", "000011011010", "000011011011", "000001010100",               # 41-44
    "000001010101", "000001010110", "000001010111", "000001100100",               # 45-48
    "000001100101", "000001010010", "000001010011", "000000100100",               # 49-52
    "000000110111", "000000111000", "000000100111", "000000101000",               # 53-56
    "000001011000", "000001011001", "000000101011", "000000101100",               # 57-60
    "000001011010", "000001100110", "000001100111",                               # 61-63
)

# T.4 §4.1.2 Table 3a/T.4: make-up codes, white runs 64..1728 (index i = run 64 * (i + 1))
WHITE_MAKEUP: tuple[str, ...] = (
    "11011", "10010", "010111", "0110111", "00110110", "00110111",                # 64-384
    "01100100", "01100101", "01101000", "01100111", "011001100", "011001101",     # 448-768
    "011010010", "011010011", "011010100", "011010101", "011010110",              # 832-1088
    "011010111", "011011000", "011011001", "011011010", "011011011",              # 1152-1408
    "010011000", "010011001", "010011010", "011000", "010011011",                 # 1472-1728
)

# T.4 §4.1.2 Table 3a/T.4: make-up codes, black runs 64..1728 (index i = run 64 * (i + 1))
BLACK_MAKEUP: tuple[str, ...] = (
    "0000001111", "000011001000", "000011001001", "000001011011",                 # 64-256
    "000000110011", "000000110100", "000000110101", "0000001101100",              # 320-512
    "0000001101101", "0000001001010", "0000001001011", "0000001001100",           # 576-768
    "0000001001101", "0000001110010", "0000001110011", "0000001110100",           # 832-1024
    "0000001110101", "0000001110110", "0000001110111", "0000001010010",           # 1088-1280
    "0000001010011", "0000001010100", "0000001010101", "0000001011010",           # 1344-1536
    "0000001011011", "0000001100100", "0000001100101",                            # 1600-1728
)

# T.4 §4.1.2 Table 3b/T.4: extended make-up codes, either colour, runs 1792..2560
# (index i = run 1792 + 64 * i)
EXTENDED_MAKEUP: tuple[str, ...] = (
    "00000001000", "00000001100", "00000001101", "000000010010", "000000010011",  # 1792-2048
    "000000010100", "000000010101", "000000010110", "000000010111",               # 2112-2304
    "000000011100", "000000011101", "000000011110", "000000011111",               # 2368-2560
)

# T.4 §4.1.2: end of line; T.6 §2.4.1: EOFB = EOL + EOL
EOL = "000000000001"
EOFB = EOL + EOL
RTC_EOLS = 6          # T.4 §4.1.4: RTC is six consecutive EOLs (MR: six EOL+1)
MAX_MAKEUP = 2560     # the longest make-up code; longer runs repeat it

# T.4 §4.2.1.3.2 Table 4/T.4 (= T.6 Table 1): mode codes of two-dimensional coding
MODE_PASS = "0001"                  # P
MODE_HORIZONTAL = "001"             # H, followed by M(a0a1) M(a1a2)
MODE_VERTICAL = {                   # V(d): a1 = b1 + d
    0: "1",
    1: "011", 2: "000011", 3: "0000011",        # VR1..VR3
    -1: "010", -2: "000010", -3: "0000010",     # VL1..VL3
}
MODE_EXTENSION = "0000001"          # followed by 3 bits; not produced, not decoded (an error)

WHITE, BLACK = 0, 1


def run_codes(colour: int) -> dict[int, str]:
    """Every run-length code of one colour: {run: code}, terminating and make-up.

    Terminating runs are 0..63; make-up runs are multiples of 64 from 64 to 2560.
    """
    term = WHITE_TERMINATING if colour == WHITE else BLACK_TERMINATING
    makeup = WHITE_MAKEUP if colour == WHITE else BLACK_MAKEUP
    codes = {run: code for run, code in enumerate(term)}
    codes.update({64 * (i + 1): code for i, code in enumerate(makeup)})
    codes.update({1792 + 64 * i: code for i, code in enumerate(EXTENDED_MAKEUP)})
    return codes


def run_code(colour: int, run: int) -> str:
    """The full code of one run (make-up codes then a terminating code), as bits.

    >>> run_code(WHITE, 0), run_code(BLACK, 64)
    ('00110101', '00000011110000110111')
    """
    if run < 0:
        raise ValueError(f"negative run length {run}")
    term = WHITE_TERMINATING if colour == WHITE else BLACK_TERMINATING
    makeup = WHITE_MAKEUP if colour == WHITE else BLACK_MAKEUP
    parts = []
    while run >= MAX_MAKEUP + 64:
        parts.append(EXTENDED_MAKEUP[-1])
        run -= MAX_MAKEUP
    if run >= 64:
        m = run - run % 64
        parts.append(makeup[m // 64 - 1] if m <= 1728 else EXTENDED_MAKEUP[(m - 1792) // 64])
        run -= m
    parts.append(term[run])
    return "".join(parts)
