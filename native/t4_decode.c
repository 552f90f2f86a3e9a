/* T.4 MH / MR and T.6 MMR decoder (T.4 §4.1, §4.2; T.6 §2.2), streaming.
 *
 * Bits are taken MSB first into a 64-bit accumulator. A step decodes one code
 * (or one tag bit, or a stretch of zeros) and only once its bits are all in:
 * between calls the state is a code boundary plus the unused bits of the
 * accumulator, so a code or a row may span any number of chunks. Every step
 * consumes at least one bit or ends the page, so work is linear in the input;
 * output is bounded by max_rows x width.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "t4.h"
#include "t4_common.h"
#include "t4_tables.h"

enum { P_SEEK, P_TAG, P_ROW, P_ALIGN, P_DONE };

/* Lookahead a code step needs before it runs (13 = the longest run code). */
#define NEED_BITS 13
/* A row may hold width + EXTRA_ZEROS zero-length runs; more is garbage (and would let a
 * hostile stream grow one row without bound). */
#define EXTRA_ZEROS 32
#define TOO_MANY_ZEROS "too many zero-length runs in one row"

struct xm_dec {
    int width, codec, eol, byte_align, lsb;
    int packed;             /* rows out as packed bits, not bytes of 0/1 */
    size_t row_bytes;       /* output bytes a row: width, or (width + 7) / 8 packed */
    long max_rows;
    uint64_t acc;           /* nbits valid bits at the top, zeros below */
    int nbits;
    uint64_t bitpos;        /* stream offset of acc's top bit */
    int phase;
    int resync;             /* MR after a bad row: wait for EOL + 1 */
    /* a stretch of zeros being counted (EOL search, or 8+ zeros inside a row) */
    int in_zeros;
    uint64_t zeros, zeros_start;
    /* the row being decoded */
    int two_d, started, colour, hstage, ib, ncur, nref;
    int coded;              /* a vertical or horizontal mode seen in this row */
    int after_pass;         /* while !coded: index of b1, just after the last pass's b2 */
    int zero_runs;          /* zero-length runs kept in this row (at most width + 32) */
    int32_t a0, a1, accum;
    int32_t *ref, *cur;     /* changing elements of the last output row / this row */
    /* results */
    long rows, bad_rows, consec_bad, max_consec_bad;
    long garbled_fill;      /* rows followed by non-zero bits before the next EOL */
    long first_bad;         /* 0-based row of the first damage seen, -1 if none */
    int fill_watch;         /* seeking the EOL after a good row: a 1 bit here is garbage */
    int end;
    long long error_position;
    char error[120];
};

static void start_row(xm_dec *d, int two_d)
{
    d->two_d = two_d;
    d->started = 0;
    d->colour = 0;
    d->hstage = 0;
    d->ib = 0;
    d->ncur = 0;
    d->coded = 0;
    d->after_pass = 0;
    d->zero_runs = 0;
    d->a0 = two_d ? -1 : 0;
    d->accum = 0;
    d->phase = P_ROW;
}

/* Room for a row's changing elements: at most width distinct ones, plus at most width +
 * EXTRA_ZEROS zero-length runs, plus 3 imaginary ones at the width; and one before
 * them, below any a0, so that looking back for b1 needs no bounds check. */
static int32_t *new_elements(int width)
{
    int32_t *p = malloc(sizeof(int32_t) * (size_t)(2 * width + EXTRA_ZEROS + 5));
    if (!p)
        return NULL;
    p[0] = INT32_MIN;
    return p + 1;
}

xm_dec *xm_dec_new(int width, int codec, int eol, int byte_align, int lsb, long max_rows,
                   int packed)
{
    if (width < 1 || width > XM_MAX_WIDTH || codec < XM_MH || codec > XM_MMR || max_rows < 0)
        return NULL;
    xm_dec *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->width = width;
    d->codec = codec;
    d->eol = codec == XM_MMR ? 0 : codec == XM_MR ? 1 : eol;   /* MR always has EOLs */
    d->byte_align = byte_align;
    d->lsb = lsb;
    d->max_rows = max_rows;
    d->packed = packed != 0;
    d->row_bytes = packed ? ((size_t)width + 7) / 8 : (size_t)width;
    d->ref = new_elements(width);
    d->cur = new_elements(width);
    if (!d->ref || !d->cur) {
        xm_dec_free(d);
        return NULL;
    }
    d->ref[0] = d->ref[1] = d->ref[2] = width;   /* all-white row above the page */
    d->error_position = -1;
    d->first_bad = -1;
    if (d->eol)
        d->phase = P_SEEK;
    else
        start_row(d, codec == XM_MMR);
    if (max_rows == 0)
        d->end = XM_END_LIMIT;
    return d;
}

void xm_dec_free(xm_dec *d)
{
    if (!d)
        return;
    if (d->ref)
        free(d->ref - 1);
    if (d->cur)
        free(d->cur - 1);
    free(d);
}

void xm_dec_stats(const xm_dec *d, long long stats[7])
{
    stats[0] = d->rows;
    stats[1] = d->bad_rows;
    stats[2] = d->max_consec_bad;
    stats[3] = d->end;
    stats[4] = d->error_position;
    stats[5] = d->garbled_fill;
    stats[6] = d->first_bad;
}

const char *xm_dec_error(const xm_dec *d)
{
    return d->error;
}

static void render_row(const xm_dec *d, uint8_t *row, const int32_t *ch, int n)
{
    if (d->packed)
        xm_paint_packed(row, ch, n, d->width);
    else
        xm_paint_bytes(row, ch, n, d->width);
}

static void note_error(xm_dec *d, const char *what, uint64_t pos)
{
    if (d->error_position >= 0)
        return;
    d->error_position = (long long)pos;
    snprintf(d->error, sizeof d->error, "row %ld: %s", d->rows, what);
}

/* Damage was detected in the row being decoded (d->rows, 0-based). */
static void damage(xm_dec *d)
{
    if (d->first_bad < 0)
        d->first_bad = d->rows;
}

/* The input is over: a row begun and not finished is damage (begun: a code of it
 * decoded, or a 1 bit of it left over in acc). */
static void end_data(xm_dec *d)
{
    if (d->phase == P_ROW && (d->started || d->acc))
        damage(d);
    d->end = XM_END_DATA;
}

static void count_row(xm_dec *d)
{
    d->rows++;
    if (d->max_rows && d->rows >= d->max_rows)
        d->end = XM_END_LIMIT;
}

/* A complete row: output it and make it the reference. */
static void emit_good(xm_dec *d, uint8_t *row)
{
    int32_t *t;
    d->cur[d->ncur] = d->cur[d->ncur + 1] = d->cur[d->ncur + 2] = d->width;
    render_row(d, row, d->cur, d->ncur);
    t = d->ref;
    d->ref = d->cur;
    d->cur = t;
    d->nref = d->ncur;
    d->consec_bad = 0;
    count_row(d);
}

/* A bad row: output a copy of the previous output row (all white at first). */
static void emit_bad(xm_dec *d, uint8_t *row, const char *what, uint64_t pos)
{
    render_row(d, row, d->ref, d->nref);
    damage(d);
    d->bad_rows++;
    d->consec_bad++;
    if (d->consec_bad > d->max_consec_bad)
        d->max_consec_bad = d->consec_bad;
    note_error(d, what, pos);
    count_row(d);
}

/* A row that cannot be decoded. With EOLs: a bad row, then resync at the next
 * EOL (MR: the next EOL + 1). Without (MH no EOL, MMR): the end of decoding. */
static void fail_row(xm_dec *d, uint8_t *row, const char *what, uint64_t pos)
{
    if (d->eol) {
        emit_bad(d, row, what, pos);
        d->phase = P_SEEK;
        d->resync = d->codec == XM_MR;
    } else {
        damage(d);
        note_error(d, what, pos);
        d->end = XM_END_ERROR;
    }
}

/* Zero-length runs are kept as changing elements, as libtiff keeps them (the next
 * row's b1/b2 may sit on them); more than width + EXTRA_ZEROS in a row is garbage.
 * Returns 0, or -1 for one zero-length run too many. */
static inline int add_change(xm_dec *d, int32_t pos)
{
    if (pos >= d->width)
        return 0;
    if (d->ncur && d->cur[d->ncur - 1] == pos && ++d->zero_runs > d->width + EXTRA_ZEROS)
        return -1;
    d->cur[d->ncur++] = pos;
    return 0;
}

/* add_change for the end of a one-dimensional run: a black run of 0 right after a white
 * run of 0 removes that white run's element instead (the pair vanishes).
 * INTEROP(libtiff): its one-dimensional rows drop that pair; see _ref.Decoder._row_1d */
static inline int add_change_1d(xm_dec *d, int32_t pos)
{
    int n = d->ncur;
    if (d->colour && pos < d->width && n && d->cur[n - 1] == pos
        && (n > 1 ? d->cur[n - 2] == pos : pos == 0)) {
        if (n > 1)
            d->zero_runs--;
        d->ncur--;
        return 0;
    }
    return add_change(d, pos);
}

/* The row has reached width: what comes next. */
static void row_done(xm_dec *d, uint8_t *row)
{
    emit_good(d, row);
    if (d->eol) {
        d->phase = P_SEEK;
        d->fill_watch = 1;
    }
    else if (d->codec == XM_MH && d->byte_align)
        d->phase = P_ALIGN;
    else
        start_row(d, d->codec == XM_MMR);
}

/* Four input bytes as a big-endian word, each bit-reversed first for bit order "lsb". */
static inline uint32_t load32(const uint8_t *p, int lsb)
{
    if (lsb)
        return (uint32_t)REV8[p[0]] << 24 | (uint32_t)REV8[p[1]] << 16
               | (uint32_t)REV8[p[2]] << 8 | REV8[p[3]];
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The fast path: decode plain codes of the current row with the state in locals,
 * while at least 4 input bytes remain. It stops before anything unusual (8 zeros,
 * an invalid code, a run or element out of range), leaving that code for the
 * careful step below, which decodes it again and handles it. Returns 1 when the
 * row has reached width (the caller then outputs it), 0 otherwise. */
static int fast_codes(xm_dec *d, const uint8_t **pp, const uint8_t *pend)
{
    const uint8_t *p = *pp;
    uint64_t acc = d->acc, bitpos = d->bitpos;
    int nbits = d->nbits, lsb = d->lsb, done = 0;
    const int32_t width = d->width;
    const int32_t *ref = d->ref;
    int32_t *cur = d->cur;
    int ncur = d->ncur, colour = d->colour, hstage = d->hstage, ib = d->ib, started = d->started;
    int coded = d->coded, after_pass = d->after_pass;
    const int two_d = d->two_d;
    int32_t a0 = d->a0, a1 = d->a1, accum = d->accum;

    if (!two_d) {
        /* one-dimensional rows (MH, MR 1-D): the same steps as below, 1-D only. White
         * and black runs alternate, so each colour has its own copy of the step (its
         * table fixed, no colour to look up). A zero-length run (a terminating 0 right
         * after an element: the element is a0 then) goes to the careful step. */
#define RUN_1D(TABLE, BITS, COLOUR)                                                    \
        for (;;) {                                                                     \
            if (nbits < 32) {                                                          \
                if (pend - p >= 4) {                                                   \
                    acc |= (uint64_t)load32(p, lsb) << (32 - nbits);                   \
                    p += 4;                                                            \
                    nbits += 32;                                                       \
                } else if (nbits < NEED_BITS) {                                        \
                    colour = COLOUR;                                                   \
                    goto out_1d;                                                       \
                }                                                                      \
            }                                                                          \
            uint16_t e = TABLE[acc >> (64 - BITS)];                                    \
            int n = e >> 12;                                                           \
            int32_t v = e & 0xfff, end = a0 + accum + v;                               \
            if (n == 0 || end > width || ((accum | v) == 0 && ncur)) {                  \
                colour = COLOUR;                                                       \
                goto out_1d;                                                           \
            }                                                                          \
            acc <<= n;                                                                 \
            nbits -= n;                                                                \
            bitpos += (uint64_t)n;                                                     \
            started = 1;                                                               \
            if (v >= 64) {                  /* a make-up code: the run goes on */       \
                accum += v;                                                            \
                continue;                                                              \
            }                                                                          \
            accum = 0;                                                                 \
            a0 = end;                                                                  \
            if (end == width) {                                                        \
                colour = !(COLOUR);                                                    \
                done = 1;                                                              \
                goto out_1d;                                                           \
            }                                                                          \
            cur[ncur++] = end;                                                         \
            break;                                                                     \
        }
        if (colour)
            goto black_1d;
        for (;;) {
            RUN_1D(DEC_WHITE, DEC_WHITE_BITS, 0)
        black_1d:
            RUN_1D(DEC_BLACK, DEC_BLACK_BITS, 1)
        }
#undef RUN_1D
    out_1d:;
    }
    else for (;;) {
        if (nbits < 32) {
            if (pend - p >= 4) {
                uint32_t w;
                if (lsb)
                    w = (uint32_t)REV8[p[0]] << 24 | (uint32_t)REV8[p[1]] << 16
                        | (uint32_t)REV8[p[2]] << 8 | REV8[p[3]];
                else
                    w = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
                acc |= (uint64_t)w << (32 - nbits);
                p += 4;
                nbits += 32;
            } else if (nbits < NEED_BITS) {
                break;
            }
        }
        /* (no code starts with 8 zeros: the tables give n = 0 for them, and the careful
         * step counts the zeros) */
        if (hstage) {
            uint16_t e = colour ? DEC_BLACK[acc >> (64 - DEC_BLACK_BITS)]
                                : DEC_WHITE[acc >> (64 - DEC_WHITE_BITS)];
            int n = e >> 12;
            int32_t v = e & 0xfff;
            int32_t base = hstage == 1 ? (a0 < 0 ? 0 : a0) : a1;
            if (n == 0 || base + accum + v > width)
                break;
            if (v < 64 && ncur && cur[ncur - 1] == base + accum + v && base + accum + v < width)
                break;                          /* a zero-length run: the careful step */
            acc <<= n;
            nbits -= n;
            bitpos += (uint64_t)n;
            started = 1;
            accum += v;
            if (v >= 64)
                continue;
            int32_t pos = base + accum;
            accum = 0;
            if (pos < width)
                cur[ncur++] = pos;
            colour ^= 1;
            if (hstage == 2) {
                a0 = pos;
                hstage = 0;
                if (pos == width) {
                    done = 1;
                    break;
                }
            } else {
                a1 = pos;
                hstage = 2;
            }
        } else {
            uint16_t e = DEC_MODE[acc >> (64 - DEC_MODE_BITS)];
            int n = e >> 12, mode = e & 0xfff;
            if (n == 0)
                break;
            int bi = after_pass;
            if (coded) {
                while (ref[ib - 1] > a0)        /* ref[-1] is INT32_MIN */
                    ib--;
                while (ref[ib] <= a0)
                    ib++;
                if ((ib & 1) != colour)
                    ib++;
                bi = ib;
            }
            int32_t b1 = ref[bi];
            if (mode >= 3) {                    /* vertical */
                int32_t x = b1 + (mode - 6);
                /* a1 in a0 + 1 .. width (a0 >= -1); a1 = a0 (maybe a zero-length run) and
                 * out of range are for the careful step */
                if ((uint32_t)(x - a0 - 1) >= (uint32_t)(width - a0))
                    break;
                if (x < width)
                    cur[ncur++] = x;
                colour ^= 1;
                a0 = x;
                coded = 1;
            } else if (mode == 1) {             /* pass */
                a0 = ref[bi + 1];
                after_pass = bi + 2;
            } else {                            /* horizontal */
                hstage = 1;
                accum = 0;
                coded = 1;
            }
            acc <<= n;
            nbits -= n;
            bitpos += (uint64_t)n;
            started = 1;
            if (a0 >= width) {
                done = 1;
                break;
            }
        }
    }
    *pp = p;
    d->acc = acc;
    d->bitpos = bitpos;
    d->nbits = nbits;
    d->ncur = ncur;
    d->colour = colour;
    d->hstage = hstage;
    d->ib = ib;
    d->coded = coded;
    d->after_pass = after_pass;
    d->started = started;
    d->a0 = a0;
    d->a1 = a1;
    d->accum = accum;
    return done;
}

int xm_dec_run(xm_dec *d, const uint8_t *data, size_t len, size_t *consumed,
               uint8_t *out, long out_cap, long *out_rows, int final)
{
    const uint8_t *p = data, *pend = data + len;
    const int width = d->width;
    int status = XM_NEED_INPUT;
    *out_rows = 0;

#define ROWPTR (out + (size_t)(*out_rows) * d->row_bytes)
#define CONSUME(n) do { int n_ = (n); d->acc = n_ >= 64 ? 0 : d->acc << n_; \
                        d->nbits -= n_; d->bitpos += (uint64_t)n_; } while (0)

    long rows_seen = d->rows;
    for (;;) {
        *out_rows += d->rows - rows_seen;       /* a step outputs at most one row */
        rows_seen = d->rows;
        if (d->end) {
            status = XM_ENDED;
            break;
        }
        /* refill: whole bytes while there is room */
        while (d->nbits <= 56 && p < pend) {
            uint8_t b = *p++;
            d->acc |= (uint64_t)(d->lsb ? REV8[b] : b) << (56 - d->nbits);
            d->nbits += 8;
        }
        if (d->nbits < NEED_BITS && !final)
            break;                              /* all input taken: wait for more */
        if (d->nbits == 0) {                    /* final, nothing left */
            end_data(d);
            continue;
        }
        if (*out_rows >= out_cap) {
            status = XM_OUT_FULL;
            break;
        }
        uint8_t *row = ROWPTR;
        if (d->phase == P_ROW && !d->in_zeros && pend - p >= 4) {
            if (fast_codes(d, &p, pend)) {
                row_done(d, row);
                continue;
            }
            if (d->nbits < NEED_BITS && (p < pend || !final))
                continue;                       /* refill (or wait) first */
        }

        if (d->phase == P_SEEK || d->in_zeros) {
            /* count zeros up to the next 1 (T.4 §4.1.2: EOL = 11 zeros and a 1) */
            if (!d->in_zeros) {
                d->in_zeros = 1;
                d->zeros = 0;
                d->zeros_start = d->bitpos;
            }
            if (d->acc == 0) {
                d->zeros += (uint64_t)d->nbits;
                CONSUME(d->nbits);
                continue;
            }
            int lz = __builtin_clzll(d->acc);
            d->zeros += (uint64_t)lz;
            CONSUME(lz + 1);
            d->in_zeros = 0;
            int is_eol = d->zeros >= 11;
            if (d->phase == P_SEEK) {
                if (!is_eol) {
                    damage(d);                  /* a 1 in the fill: the rows after the */
                    if (d->fill_watch)          /* last good one are lost */
                        d->garbled_fill++;
                }
                d->fill_watch = 0;
                if (is_eol) {
                    if (d->codec == XM_MR)
                        d->phase = P_TAG;
                    else
                        start_row(d, 0);
                }
            } else if (!is_eol) {
                fail_row(d, row, "invalid code", d->zeros_start);
            } else if (d->codec == XM_MMR && !d->started) {
                d->end = XM_END_EOFB;           /* T.6 §2.4.1 (its second EOL is not read) */
            } else if (!d->eol && d->started) {
                fail_row(d, row, d->codec == XM_MMR ? "EOL inside a row"
                         : "EOL inside a row of a stream without EOLs", d->bitpos);
            } else if (!d->eol) {
                /* EOL-less MH with an EOL where a row starts: the stream has EOLs after
                 * all (it lacked the leading one); go on as if after an EOL */
                d->eol = 1;
                start_row(d, 0);
            } else if (!d->started) {           /* two EOLs in a row: RTC, T.4 §4.1.4 */
                d->end = XM_END_RTC;
            } else {
                /* EOL before the row reached width: a bad row; this EOL starts the next */
                emit_bad(d, row, "EOL before the row reached its width", d->bitpos);
                d->resync = d->codec == XM_MR;
                if (d->codec == XM_MR)
                    d->phase = P_TAG;
                else
                    start_row(d, 0);
            }
        } else if (d->phase == P_TAG) {
            int tag = (int)(d->acc >> 63);
            CONSUME(1);
            if (d->resync && !tag) {
                emit_bad(d, row, "2-D row after a bad row", d->bitpos);
                d->phase = P_SEEK;
            } else {
                d->resync = 0;
                start_row(d, !tag);
            }
        } else if (d->phase == P_ALIGN) {
            int fill = (int)((8 - d->bitpos % 8) % 8);
            if (fill > d->nbits) {              /* final and short */
                d->end = XM_END_DATA;
                continue;
            }
            CONSUME(fill);
            start_row(d, 0);
        } else if ((d->acc >> 56) == 0) {
            /* 8 zeros: no run or mode code starts so: an EOL (or garbage) */
            d->in_zeros = 1;
            d->zeros = 0;
            d->zeros_start = d->bitpos;
        } else if (!d->two_d || d->hstage) {
            /* a run-length code, T.4 §4.1.1 */
            const uint16_t *table = d->colour ? DEC_BLACK : DEC_WHITE;
            int bits = d->colour ? DEC_BLACK_BITS : DEC_WHITE_BITS;
            uint16_t e = table[d->acc >> (64 - bits)];
            int n = e >> 12;
            int32_t v = e & 0xfff;
            if (n == 0 || n > d->nbits) {
                if (n > d->nbits) {
                    end_data(d);                /* final, and the input ends mid-code */
                    continue;
                }
                fail_row(d, row, "invalid code", d->bitpos);
                continue;
            }
            CONSUME(n);
            d->started = 1;
            int32_t base = d->two_d ? (d->hstage == 1 ? (d->a0 < 0 ? 0 : d->a0) : d->a1) : d->a0;
            d->accum += v;
            if (base + d->accum > width) {
                fail_row(d, row, "runs overshoot the width", d->bitpos);
                continue;
            }
            if (v >= 64)
                continue;                       /* a make-up code: the run goes on */
            int32_t pos = base + d->accum;
            d->accum = 0;
            if (d->two_d ? add_change(d, pos) : add_change_1d(d, pos)) {
                fail_row(d, row, TOO_MANY_ZEROS, d->bitpos);
                continue;
            }
            d->colour ^= 1;
            if (!d->two_d) {
                d->a0 = pos;
                if (pos == width)
                    row_done(d, row);
            } else if (d->hstage == 1) {
                d->a1 = pos;
                d->hstage = 2;
            } else {
                d->a0 = pos;
                d->hstage = 0;
                if (pos == width)
                    row_done(d, row);
            }
        } else {
            /* a mode code, T.4 §4.2.1.3.2 Table 4/T.4 */
            uint16_t e = DEC_MODE[d->acc >> (64 - DEC_MODE_BITS)];
            int n = e >> 12, mode = e & 0xfff;
            if (n == 0 || n > d->nbits) {
                if (n > d->nbits) {
                    end_data(d);
                    continue;
                }
                fail_row(d, row, "invalid mode code", d->bitpos);
                continue;
            }
            CONSUME(n);
            d->started = 1;
            /* b1, b2 (T.4 §4.2.1.3.1): reference elements i are black when i is even */
            /* until the row's first V or H mode, b1 is the element after the last
             * pass's b2, even if not right of a0 (differs on zero-length runs only).
             * INTEROP(libtiff): as libtiff decodes; see _ref.Decoder._row_2d */
            const int32_t *ref = d->ref;
            int32_t a0 = d->a0;
            int bi = d->after_pass;
            if (d->coded) {
                int ib = d->ib;
                while (ib > 0 && ref[ib - 1] > a0)
                    ib--;
                while (ref[ib] <= a0)
                    ib++;
                if ((ib & 1) != d->colour)
                    ib++;
                d->ib = bi = ib;
            }
            int32_t b1 = ref[bi], b2 = ref[bi + 1];
            if (mode == 1) {                    /* pass */
                d->a0 = b2;
                d->after_pass = bi + 2;
                if (b2 >= width)
                    row_done(d, row);
            } else if (mode == 2) {             /* horizontal: two runs follow */
                d->hstage = 1;
                d->accum = 0;
                d->coded = 1;
            } else {                            /* vertical: a1 = b1 + d, a1 = a0 allowed */
                int32_t a1 = b1 + (mode - 6);
                d->coded = 1;
                if (a1 < (a0 > 0 ? a0 : 0) || a1 > width) {
                    fail_row(d, row, "vertical mode puts a1 out of range", d->bitpos);
                    continue;
                }
                if (add_change(d, a1)) {
                    fail_row(d, row, TOO_MANY_ZEROS, d->bitpos);
                    continue;
                }
                d->colour ^= 1;
                d->a0 = a1;
                if (a1 == width)
                    row_done(d, row);
            }
        }
    }
    if (final && !d->end && status != XM_OUT_FULL)
        end_data(d);
    if (d->end)
        status = XM_ENDED;
    *consumed = (size_t)(p - data);
    return status;
#undef ROWPTR
#undef CONSUME
}
