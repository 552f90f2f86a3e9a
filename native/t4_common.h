/* Helpers shared by the encoder and the decoder. */
#ifndef XMFAX_T4_COMMON_H
#define XMFAX_T4_COMMON_H

#include <stdint.h>
#include <string.h>

#define XM_MAX_WIDTH 16384

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define XM_FAST_SCAN 1
/* t4_paint.c: a decoded row from its n changing elements ch[0..n) (ch[n] = width):
 * width bytes of 0/1, or (width + 7) / 8 bytes of packed bits, MSB first, pad bits 0. */
void xm_paint_bytes(uint8_t *row, const int32_t *ch, int n, int width);
void xm_paint_packed(uint8_t *row, const int32_t *ch, int n, int width);

#endif

#define XM_ONES 0x0101010101010101ULL
#define XM_HIGHS 0x8080808080808080ULL

/* First index >= pos in row[0..width) holding a nonzero byte (width if none). */
static inline int find_nonzero(const uint8_t *row, int pos, int width)
{
#ifdef XM_FAST_SCAN
    while (pos + 8 <= width) {
        uint64_t w;
        memcpy(&w, row + pos, 8);
        if (w)
            return pos + (__builtin_ctzll(w) >> 3);
        pos += 8;
    }
/* t4_paint.c: a decoded row from its n changing elements ch[0..n) (ch[n] = width):
 * width bytes of 0/1, or (width + 7) / 8 bytes of packed bits, MSB first, pad bits 0. */
void xm_paint_bytes(uint8_t *row, const int32_t *ch, int n, int width);
void xm_paint_packed(uint8_t *row, const int32_t *ch, int n, int width);

#endif
    while (pos < width && !row[pos])
        pos++;
    return pos;
}

/* First index >= pos in row[0..width) holding a zero byte (width if none). */
static inline int find_zero(const uint8_t *row, int pos, int width)
{
#ifdef XM_FAST_SCAN
    while (pos + 8 <= width) {
        uint64_t w, z;
        memcpy(&w, row + pos, 8);
        /* a bit set at the lowest zero byte, and maybe at higher ones */
        z = (w - XM_ONES) & ~w & XM_HIGHS;
        if (z)
            return pos + (__builtin_ctzll(z) >> 3);
        pos += 8;
    }
/* t4_paint.c: a decoded row from its n changing elements ch[0..n) (ch[n] = width):
 * width bytes of 0/1, or (width + 7) / 8 bytes of packed bits, MSB first, pad bits 0. */
void xm_paint_bytes(uint8_t *row, const int32_t *ch, int n, int width);
void xm_paint_packed(uint8_t *row, const int32_t *ch, int n, int width);

#endif
    while (pos < width && row[pos])
        pos++;
    return pos;
}

/* t4_paint.c: a decoded row from its n changing elements ch[0..n) (ch[n] = width):
 * width bytes of 0/1, or (width + 7) / 8 bytes of packed bits, MSB first, pad bits 0. */
void xm_paint_bytes(uint8_t *row, const int32_t *ch, int n, int width);
void xm_paint_packed(uint8_t *row, const int32_t *ch, int n, int width);

#endif
