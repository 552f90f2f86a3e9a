/* T.4 MH / MR and T.6 MMR encoder (T.4 §4.1, §4.2; T.6 §2.2). */
#include <stdlib.h>
#include <string.h>

#include "t4.h"
#include "t4_common.h"
#include "t4_tables.h"

struct xm_enc {
    int width, codec, k, eol, byte_align, min_row_bits, lsb;
    long row;               /* rows coded so far on this page */
    uint64_t acc;           /* pending bits, the newest in the low end */
    int nbits;              /* how many bits of acc are pending (< 32 between calls) */
    uint8_t *out;           /* complete bytes not yet taken by the caller */
    size_t len, cap;
    size_t rev_from;        /* bit order "lsb": bytes before this are reversed already */
    int32_t *ref, *cur;     /* changing elements of the reference and coding rows */
};

/* ---- bit output ---- */

static int reserve(xm_enc *e, size_t more)
{
    if (e->len + more <= e->cap)
        return 0;
    size_t cap = e->cap ? e->cap : 4096;
    while (cap < e->len + more)
        cap *= 2;
    uint8_t *p = realloc(e->out, cap);
    if (!p)
        return -1;
    e->out = p;
    e->cap = cap;
    return 0;
}

/* Append the n (<= 32) low bits of code, most significant first. The caller has
 * reserved room (every row reserves its worst case first). Bytes go out MSB-first;
 * bit order "lsb" is applied to whole output bytes afterwards (reverse_done). */
static inline void put(xm_enc *e, uint32_t code, int n)
{
    uint64_t acc = (e->acc << n) | code;
    int nbits = e->nbits + n;
    if (nbits >= 32) {
        nbits -= 32;
        uint32_t w = (uint32_t)(acc >> nbits);
        uint8_t *o = e->out + e->len;
        o[0] = (uint8_t)(w >> 24);
        o[1] = (uint8_t)(w >> 16);
        o[2] = (uint8_t)(w >> 8);
        o[3] = (uint8_t)w;
        e->len += 4;
    }
    e->acc = acc;
    e->nbits = nbits;
}

static inline uint64_t bitpos(const xm_enc *e)
{
    return (uint64_t)e->len * 8 + (uint64_t)e->nbits;
}

static void reverse_done(xm_enc *e)
{
    if (e->lsb)
        for (size_t i = e->rev_from; i < e->len; i++)
            e->out[i] = REV8[e->out[i]];
    e->rev_from = e->len;
}

static void put_zeros(xm_enc *e, long n)
{
    while (n > 24) {
        put(e, 0, 24);
        n -= 24;
    }
    if (n > 0)
        put(e, 0, (int)n);
}

/* Zero fill so that the next `ahead` bits end on a byte boundary. */
static void align_before(xm_enc *e, int ahead)
{
    put_zeros(e, (long)((8 - (bitpos(e) + (uint64_t)ahead) % 8) % 8));
}

/* One run of one colour: make-up codes then a terminating code (T.4 §4.1.1). */
static void put_long_run(xm_enc *e, int colour, int32_t run)
{
    const uint16_t *mc = colour ? ENC_BLACK_MAKEUP_CODE : ENC_WHITE_MAKEUP_CODE;
    const uint8_t *ml = colour ? ENC_BLACK_MAKEUP_LEN : ENC_WHITE_MAKEUP_LEN;
    while (run >= 2560 + 64) {
        put(e, mc[40], ml[40]);
        run -= 2560;
    }
    if (run >= 64) {
        put(e, mc[run >> 6], ml[run >> 6]);
        run &= 63;
    }
    if (colour)
        put(e, ENC_BLACK_TERM_CODE[run], ENC_BLACK_TERM_LEN[run]);
    else
        put(e, ENC_WHITE_TERM_CODE[run], ENC_WHITE_TERM_LEN[run]);
}

static inline void put_run(xm_enc *e, int colour, int32_t run)
{
    if (run >= 64)
        put_long_run(e, colour, run);
    else if (colour)
        put(e, ENC_BLACK_TERM_CODE[run], ENC_BLACK_TERM_LEN[run]);
    else
        put(e, ENC_WHITE_TERM_CODE[run], ENC_WHITE_TERM_LEN[run]);
}

static inline void put_mode(xm_enc *e, int mode)
{
    put(e, ENC_MODE_CODE[mode], ENC_MODE_LEN[mode]);
}

/* ---- changing elements ---- */

/* Positions in row where the colour changes (T.4 §4.2.1.3.1), an imaginary white
 * pel before the first; three `width` sentinels follow. Returns their count. */
#ifdef __SSE2__
#include <emmintrin.h>
/* SSE2: 32 pels at a time to a bit mask (bit i = pel x + i is black); the changes
 * are the bits where the mask differs from itself shifted by one pel. */
static int find_changes(const uint8_t *row, int width, int32_t *ch)
{
    const __m128i zero = _mm_setzero_si128();
    uint32_t prev = 0;
    int n = 0, x = 0;
    for (; x + 32 <= width; x += 32) {
        __m128i v0 = _mm_loadu_si128((const __m128i *)(const void *)(row + x));
        __m128i v1 = _mm_loadu_si128((const __m128i *)(const void *)(row + x + 16));
        uint32_t white = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v0, zero))
                         | (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v1, zero)) << 16;
        uint32_t m = ~white;
        uint32_t t = m ^ ((m << 1) | prev);
        prev = m >> 31;
        while (t) {
            ch[n++] = x + __builtin_ctz(t);
            t &= t - 1;
        }
    }
    for (; x < width; x++) {
        uint32_t b = row[x] != 0;
        if (b != prev)
            ch[n++] = x;
        prev = b;
    }
    ch[n] = ch[n + 1] = ch[n + 2] = width;
    return n;
}
#else
static int find_changes(const uint8_t *row, int width, int32_t *ch)
{
    int n = 0, pos = 0, colour = 0;
    while (pos < width) {
        pos = colour ? find_zero(row, pos, width) : find_nonzero(row, pos, width);
        if (pos >= width)
            break;
        ch[n++] = pos;
        colour ^= 1;
    }
    ch[n] = ch[n + 1] = ch[n + 2] = width;
    return n;
}
#endif

/* Changing elements of a packed row (MSB first, 1 = black, (width + 7) / 8 bytes;
 * the pad bits after width are ignored), 64 pels at a time: the changes are the bits
 * where a word differs from itself shifted right by one pel, the last pel of the
 * previous word (or the imaginary white pel, T.4 §4.2.1.3.4) shifted in. */
static int find_changes_packed(const uint8_t *row, int width, int32_t *ch)
{
    const int nbytes = (width + 7) >> 3;
    uint64_t prev = 0;
    int n = 0;
    for (int x = 0; x < width; x += 64) {
        const uint8_t *p = row + (x >> 3);
        int left = nbytes - (x >> 3);
        uint64_t w = 0;
        if (left >= 8) {
            w = (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 | (uint64_t)p[2] << 40
                | (uint64_t)p[3] << 32 | (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16
                | (uint64_t)p[6] << 8 | (uint64_t)p[7];
        } else {
            for (int j = 0; j < left; j++)
                w |= (uint64_t)p[j] << (56 - 8 * j);
        }
        uint64_t keep = width - x >= 64 ? ~0ULL : ~(~0ULL >> (width - x));
        w &= keep;
        uint64_t t = (w ^ (w >> 1 | prev << 63)) & keep;
        prev = w & 1;
        while (t) {
#if defined(__GNUC__)
            int lz = __builtin_clzll(t);
#else
            int lz = 0;
            while (!(t >> (63 - lz) & 1))
                lz++;
#endif
            ch[n++] = x + lz;
            t &= ~(1ULL << (63 - lz));
        }
    }
    ch[n] = ch[n + 1] = ch[n + 2] = width;
    return n;
}

/* ---- rows ---- */

static void code_1d(xm_enc *e, const int32_t *cur, int n)
{
    int32_t pos = 0;
    for (int i = 0; i <= n; i++) {          /* runs alternate white, black, ... */
        put_run(e, i & 1, cur[i] - pos);
        pos = cur[i];
    }
}

/* T.4 §4.2.1.3 (= T.6 §2.2): code `cur` against the reference row `ref`. */
static void code_2d(xm_enc *e, const int32_t *ref, const int32_t *cur)
{
    const int32_t width = e->width;
    int32_t a0 = -1;        /* imaginary pel before the row (T.4 §4.2.1.3.4) */
    int colour = 0, ia = 0, ib = 0;
    for (;;) {
        int32_t a1 = cur[ia];
        /* b1: first changing element on the reference row right of a0 and of
         * the colour opposite to a0's; element i has colour black iff i is even. */
        while (ib > 0 && ref[ib - 1] > a0)
            ib--;
        while (ref[ib] <= a0)
            ib++;
        if ((ib & 1) != colour)
            ib++;
        int32_t b1 = ref[ib], b2 = ref[ib + 1];
        if (b2 < a1) {                      /* pass mode, T.4 §4.2.1.3.2 a) */
            put_mode(e, 1);
            a0 = b2;
        } else {
            int32_t d = a1 - b1;
            if (d >= -3 && d <= 3) {        /* vertical mode */
                put_mode(e, 6 + d);
                a0 = a1;
                colour ^= 1;
                ia++;
            } else {                        /* horizontal mode */
                int32_t a2 = cur[ia + 1];
                put_mode(e, 2);
                put_run(e, colour, a1 - (a0 < 0 ? 0 : a0));
                put_run(e, colour ^ 1, a2 - a1);
                a0 = a2;
                ia += 2;
            }
        }
        if (a0 >= width)
            break;
    }
}

xm_enc *xm_enc_new(int width, int codec, int k, int eol, int byte_align, int min_row_bits, int lsb)
{
    if (width < 1 || width > XM_MAX_WIDTH || codec < XM_MH || codec > XM_MMR || k < 1)
        return NULL;
    xm_enc *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->width = width;
    e->codec = codec;
    e->k = k;
    e->eol = codec == XM_MMR ? 0 : eol;
    e->byte_align = codec == XM_MMR ? 0 : byte_align;
    e->min_row_bits = codec == XM_MMR || !e->eol || min_row_bits < 0 ? 0 : min_row_bits;
    e->lsb = lsb;
    e->ref = malloc(sizeof(int32_t) * (size_t)(width + 4));
    e->cur = malloc(sizeof(int32_t) * (size_t)(width + 4));
    if (!e->ref || !e->cur) {
        xm_enc_free(e);
        return NULL;
    }
    e->ref[0] = e->ref[1] = e->ref[2] = width;   /* all-white row above the page */
    return e;
}

void xm_enc_free(xm_enc *e)
{
    if (!e)
        return;
    free(e->out);
    free(e->ref);
    free(e->cur);
    free(e);
}

/* Code one row whose changing elements are in e->cur (nc of them). */
static void code_row(xm_enc *e, int nc)
{
    if (e->codec == XM_MMR) {
        code_2d(e, e->ref, e->cur);
    } else {
        int one_d = e->codec == XM_MH || e->row % e->k == 0;
        uint64_t start = 0;
        /* (bit positions below are e->len * 8 + e->nbits) */
        if (e->eol) {
            if (e->byte_align)
                align_before(e, 12);
            start = bitpos(e);
            put(e, 1, 12);                      /* EOL, T.4 §4.1.2 */
            if (e->codec == XM_MR)
                put(e, one_d, 1);               /* tag bit, T.4 §4.2.1.3.1 */
        }
        if (one_d)
            code_1d(e, e->cur, nc);
        else
            code_2d(e, e->ref, e->cur);
        if (e->eol) {
            uint64_t used = bitpos(e) - start;
            if (used < (uint64_t)e->min_row_bits)
                put_zeros(e, (long)((uint64_t)e->min_row_bits - used));
        } else if (e->byte_align) {
            align_before(e, 0);
        }
    }
    int32_t *t = e->ref;
    e->ref = e->cur;
    e->cur = t;
    e->row++;
}

/* worst case per row: 12 bits a pel plus make-ups, EOL, tag and fill */
static size_t row_max(const xm_enc *e)
{
    return ((size_t)e->width * 14 + (size_t)e->min_row_bits + 128) / 8 + 8;
}

long xm_enc_rows(xm_enc *e, const uint8_t *rows, long n)
{
    const int width = e->width;
    const size_t most = row_max(e);
    for (long r = 0; r < n; r++) {
        if (reserve(e, most))
            return -1;
        code_row(e, find_changes(rows + (size_t)r * (size_t)width, width, e->cur));
    }
    reverse_done(e);
    return (long)e->len;
}

long xm_enc_rows_packed(xm_enc *e, const uint8_t *rows, long n)
{
    const int width = e->width;
    const size_t stride = ((size_t)width + 7) / 8, most = row_max(e);
    for (long r = 0; r < n; r++) {
        if (reserve(e, most))
            return -1;
        code_row(e, find_changes_packed(rows + (size_t)r * stride, width, e->cur));
    }
    reverse_done(e);
    return (long)e->len;
}

long xm_enc_finish(xm_enc *e, int rtc)
{
    if (reserve(e, 64))
        return -1;
    if (rtc) {
        if (e->codec == XM_MMR) {
            put(e, 1, 12);                          /* EOFB, T.6 §2.4.1 */
            put(e, 1, 12);
        } else if (e->eol) {                        /* no RTC without EOLs */
            if (e->byte_align)
                align_before(e, 12);
            for (int i = 0; i < 6; i++) {           /* RTC, T.4 §4.1.4 */
                put(e, 1, 12);
                if (e->codec == XM_MR)
                    put(e, 1, 1);
            }
        }
    }
    align_before(e, 0);
    while (e->nbits >= 8) {                         /* at most 3 whole bytes left */
        e->nbits -= 8;
        e->out[e->len++] = (uint8_t)(e->acc >> e->nbits);
    }
    reverse_done(e);
    e->row = 0;
    return (long)e->len;
}

const uint8_t *xm_enc_data(const xm_enc *e)
{
    return e->out;
}

void xm_enc_clear(xm_enc *e)
{
    e->len = 0;
    e->rev_from = 0;
}
