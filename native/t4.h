/* xmfax native codecs: T.4 MH/MR and T.6 MMR, encode and decode.
 *
 * Plain C99, no globals that change: every bit of state lives in the xm_enc /
 * xm_dec structures made by *_new and released by *_free. The behaviour is the
 * contract in docs/codec-backends.md, bit for bit the same as xmfax/codecs/_ref.py.
 */
#ifndef XMFAX_T4_H
#define XMFAX_T4_H

#include <stddef.h>
#include <stdint.h>

enum { XM_MH = 0, XM_MR = 1, XM_MMR = 2 };

/* ---- encoder ---- */
typedef struct xm_enc xm_enc;

xm_enc *xm_enc_new(int width, int codec, int k, int eol, int byte_align,
                   int min_row_bits, int lsb);
void xm_enc_free(xm_enc *e);
/* Code n rows (n x width bytes, 0 = white, nonzero = black). Returns the number
 * of complete output bytes now held (see xm_enc_data), or -1 if out of memory. */
long xm_enc_rows(xm_enc *e, const uint8_t *rows, long n);
/* The same from packed rows: n x ((width + 7) / 8) bytes, MSB first, 1 = black. */
long xm_enc_rows_packed(xm_enc *e, const uint8_t *rows, long n);
/* RTC / EOFB if rtc, then pad the last byte; returns the bytes held, or -1. */
long xm_enc_finish(xm_enc *e, int rtc);
const uint8_t *xm_enc_data(const xm_enc *e);
void xm_enc_clear(xm_enc *e);            /* the caller has taken the bytes */

/* ---- decoder ---- */
typedef struct xm_dec xm_dec;

enum { XM_END_NONE = 0, XM_END_RTC, XM_END_EOFB, XM_END_DATA, XM_END_ERROR, XM_END_LIMIT };
enum { XM_NEED_INPUT = 0, XM_OUT_FULL = 1, XM_ENDED = 2 };

/* packed = 0: rows out as width bytes of 0/1; 1: as (width + 7) / 8 bytes, MSB first,
 * 1 = black, the pad bits 0. */
xm_dec *xm_dec_new(int width, int codec, int eol, int byte_align, int lsb, long max_rows,
                   int packed);
void xm_dec_free(xm_dec *d);
/* Decode from data[0..len): rows are written (as set by packed) into
 * out (room for out_cap rows); *consumed and *out_rows say how much of each was
 * used. final = 1: the input ends with this call. Returns XM_NEED_INPUT (all
 * input taken), XM_OUT_FULL (call again with the rest and a fresh out) or
 * XM_ENDED (decoding is over; see xm_dec_stats). */
int xm_dec_run(xm_dec *d, const uint8_t *data, size_t len, size_t *consumed,
               uint8_t *out, long out_cap, long *out_rows, int final);
/* rows, bad_rows, max_consecutive_bad_rows, end, error_position (-1 if none),
 * garbled_fill_rows, first_bad_row (-1 if none) */
void xm_dec_stats(const xm_dec *d, long long stats[7]);
const char *xm_dec_error(const xm_dec *d);  /* "" if none */

#endif
