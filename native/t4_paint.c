/* Painting a decoded row from its changing elements (element i starts a black run
 * when i is even; ch[n] is the width): one byte a pel, or packed bits. */
#include <string.h>

#include "t4_common.h"

/* The row's changing elements as 0/1 bytes. Runs are painted left to right with
 * 8-byte stores that may spill up to 7 bytes into the next run, which the next
 * run then paints over; the last run is painted exactly (no write past width). */
void xm_paint_bytes(uint8_t *row, const int32_t *ch, int n, int width)
{
    int32_t pos = 0;
    for (int i = 0; i < n; i++) {
        int32_t end = ch[i];
        uint64_t pat = (i & 1) ? XM_ONES : 0;   /* runs before ch[i]: white if i even */
        if (end + 16 > width || end - pos > 32) {  /* near the end, or long: memset */
            memset(row + pos, (int)(pat & 1), (size_t)(end - pos));
        } else {
            memcpy(row + pos, &pat, 8);
            memcpy(row + pos + 8, &pat, 8);
            if (end - pos > 16) {
                memcpy(row + pos + 16, &pat, 8);
                memcpy(row + pos + 24, &pat, 8);
            }
        }
        pos = end;
    }
    memset(row + pos, n & 1, (size_t)(width - pos));
}

/* Store word k of a packed row (MSB first): 8 bytes, or what is left of the row. */
static inline void put_word(uint8_t *row, int k, int stride, uint64_t w)
{
    int left = stride - 8 * k;
    if (left >= 8) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        w = __builtin_bswap64(w);
        memcpy(row + 8 * k, &w, 8);
#else
        for (int j = 0; j < 8; j++)
            row[8 * k + j] = (uint8_t)(w >> (56 - 8 * j));
#endif
    } else {
        for (int j = 0; j < left; j++)
            row[8 * k + j] = (uint8_t)(w >> (56 - 8 * j));
    }
}

/* The pels of one word from its marks (a bit at each changing element) and the colour
 * it starts in (carry: all ones if black): the running parity (prefix XOR) of the marks. */
static inline uint64_t word_pels(uint64_t marks, uint64_t carry)
{
    marks ^= marks >> 1;
    marks ^= marks >> 2;
    marks ^= marks >> 4;
    marks ^= marks >> 8;
    marks ^= marks >> 16;
    marks ^= marks >> 32;
    return marks ^ carry;
}

/* The row's changing elements as packed bits (MSB first, 1 = black, pad bits 0).
 * Each element flips the colour from its pel on, so a row is the running parity of a
 * bit set at every element (a zero-length run sets one place twice: no change). The
 * elements ascend: gather each word's marks in a register, turn them into pels when
 * the next word is reached, and store the words between in the colour carried over.
 * No branch per run, which on dithered pages is most runs. */
void xm_paint_packed(uint8_t *row, const int32_t *ch, int n, int width)
{
    const int words = (width + 63) >> 6, stride = (width + 7) >> 3;
    uint64_t acc = 0, carry = 0;        /* carry: all ones while the colour is black */
    int k = 0;                          /* the word acc gathers */
    if (n == 0) {                       /* a white row, as most rows of a letter are */
        memset(row, 0, (size_t)stride);
        return;
    }
    for (int i = 0; i < n; i++) {
        int kt = ch[i] >> 6;
        if (kt != k) {
            uint64_t w = word_pels(acc, carry);
            put_word(row, k++, stride, w);
            carry = (uint64_t)0 - (w & 1);
            if (kt > k) {               /* whole words of one colour (before the last) */
                memset(row + 8 * k, (int)(carry & 0xff), (size_t)(kt - k) * 8);
                k = kt;
            }
            acc = 0;
        }
        acc ^= 0x8000000000000000ULL >> (ch[i] & 63);
    }
    uint64_t w = word_pels(acc, carry);
    put_word(row, k++, stride, w);
    carry = (uint64_t)0 - (w & 1);
    if (k < words) {                    /* the rest, to the end of the row */
        memset(row + 8 * k, (int)(carry & 0xff), (size_t)(stride - 8 * k));
        k = words;
    }
    if (width & 7)                      /* pad bits 0, even after a black run to the edge */
        row[stride - 1] &= (uint8_t)(0xff00u >> (width & 7));
}
