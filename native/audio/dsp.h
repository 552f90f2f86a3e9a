/* Shared blocks of the PSK/QAM fax modems (V.27 ter, V.29): transmit pulse
 * shaping and modulation; receive power meter with the T.30 carrier-detect
 * levels, AGC, demodulation, matched filter with fractional timing, Gardner
 * symbol timing recovery, a T/2-spaced complex LMS equaliser and a carrier
 * phase loop.  Sans-IO: 8 kHz int16 samples, any block size; no global state,
 * no allocation after the object is made.
 */
#ifndef XMFAX_DSP_H
#define XMFAX_DSP_H

#include <complex.h>
#include <stddef.h>
#include <stdint.h>

#ifndef XM_SAMPLE_RATE
#define XM_SAMPLE_RATE 8000
#endif

/* 0 dBm0 as a mean square of int16 samples: a sine of peak 32767 is
 * +3.14 dBm0 (G.711 µ-law full scale), so 0 dBm0 is a sine of peak
 * 32767 * 10^(-3.14/20).  # G.711 Table 5 (digital milliwatt) */
#define XM_DBM0_MEAN_SQUARE (32767.0f * 32767.0f * 0.5f * 0.48529f)

float xm_dbm0_to_mean_square(float dbm0);
float xm_mean_square_to_dbm0(float ms);

/* Carrier detect with hysteresis.  # T.30: modem signal detection (reception on above
 * -43 dBm0, off below -48 dBm0) */
typedef struct {
    float level;            /* smoothed mean square */
    float alpha;            /* smoothing per sample */
    float on_ms, off_ms;    /* thresholds as mean squares */
    int present;
} xm_carrier_detect_t;

void xm_cd_init(xm_carrier_detect_t *cd, float on_dbm0, float off_dbm0);
/* Feed one sample; returns 1 on carrier up, -1 on carrier down, else 0. */
/* (inline: it runs on every sample of every receiver) */
static inline int xm_cd_sample(xm_carrier_detect_t *cd, float x)
{
    cd->level += cd->alpha * (x * x - cd->level);
    if (!cd->present && cd->level > cd->on_ms) {
        cd->present = 1;
        return 1;
    }
    if (cd->present && cd->level < cd->off_ms) {
        cd->present = 0;
        return -1;
    }
    return 0;
}
/* (In the data phase a receiver's hold, hold.h, says when the carrier has gone.) */

/* Root raised cosine impulse response, t in symbol periods, unit peak
 * energy normalisation left to the caller. */
double xm_rrc(double t, double beta);

/* ---- transmitter: shaping + modulation ---- */
#define XM_TX_SPAN 12             /* symbols of pulse kept (±6) */
#define XM_TX_MAX_PHASES 20

typedef struct {
    int baud;
    int phases;                   /* 8000 / gcd(baud, 8000) */
    int acc;                      /* time within the symbol, units of 1/8000 symbol * baud */
    float h[XM_TX_MAX_PHASES][XM_TX_SPAN];
    float complex sym[XM_TX_SPAN];  /* newest last */
    float complex rot, step;
    int rot_count;
    float gain;
} xm_shaper_t;

/* beta: roll-off; carrier in Hz; dbm0: the line level of a stream of
 * symbols of mean power 1. */
void xm_shaper_init(xm_shaper_t *s, int baud, double beta, double carrier, float dbm0);
void xm_shaper_set_level(xm_shaper_t *s, float dbm0);
/* Returns 1 when the next output sample needs a new symbol first. */
static inline int xm_shaper_needs_symbol(const xm_shaper_t *s) { return s->acc >= XM_SAMPLE_RATE; }
void xm_shaper_push(xm_shaper_t *s, float complex symbol);
float xm_shaper_sample(xm_shaper_t *s);
/* Fill out[n] with the shaped signal, asking symbol(ctx) for each new symbol,
 * until *done is set (then silence).  Returns the samples of signal written. */
int xm_shaper_generate(xm_shaper_t *s, float complex (*symbol)(void *ctx), void *ctx,
                       const int *done, int16_t *out, int n);

/* The transmitters' queue of data bits (one per byte, low bit). */
#define XM_TXQ_BITS 65536
typedef struct {
    uint8_t *buf;
    int head, len;
    int finishing;                /* no more bits will come */
} xm_txq_t;

/* Returns 0, or -1 with no memory. */
int xm_txq_init(xm_txq_t *q);
void xm_txq_free(xm_txq_t *q);
/* Queue bits; returns how many were taken (none once finishing). */
int xm_txq_put(xm_txq_t *q, const uint8_t *bits, int n);
/* The next data bit when data is wanted and queued, else a binary one (the
 * idle, training and turn-off bits of the PSK/QAM modems). */
int xm_txq_next(xm_txq_t *q, int data);
/* Finishing and empty: the data has all been sent. */
static inline int xm_txq_drained(const xm_txq_t *q) { return q->finishing && q->len == 0; }

/* ---- receiver ---- */
#define XM_MF_PHASES 128
#define XM_MF_MAX_TAPS 64
#define XM_RING 128
#define XM_EQ_MAX 48

typedef struct {
    /* demodulator and matched filter */
    float complex rot, step;
    int rot_count;
    float complex ring[2 * XM_RING];  /* baseband samples, each stored twice */
    long n;                       /* samples received */
    int ntaps;
    float half_span;              /* D, samples */
    double mf_energy;
    /* tap i of phase p twice, h[p][2i] = h[p][2i+1]: one multiply scales a complex
     * sample (re and im side by side in a SIMD register) */
    float h[XM_MF_PHASES + 1][2 * XM_MF_MAX_TAPS];
    double sps;                   /* samples per symbol */
    double t_next;                /* time of the next T/2 sample, in samples since the start */
    long due;                     /* its window is complete once n - 1 >= due (set_due) */
    int parity;                   /* 1 when the next T/2 sample is a symbol instant */
    /* Gardner timing */
    float complex prev_sym, mid;
    /* the mid-symbol instant is filtered with the symbol instant after it (two
     * independent sums side by side); until then its time and gain wait here */
    int mid_pending;
    double mid_t;
    float mid_gain;
    int want_y;                   /* 0: the caller drops the symbols (the equaliser's
                                   * output is not computed; all else runs) */
    float timing_gain, timing_int_gain, timing_int;
    /* AGC */
    float gain;
    float power;                  /* EMA of the line's mean square */
    float agc_alpha;              /* its smoothing per sample */
    int agc_frozen;
    /* equaliser (T/2 spaced) */
    int eq_len;
    float complex eq[XM_EQ_MAX];
    float complex eq_buf[2 * XM_EQ_MAX];
    int eq_pos;
    float eq_mu;
    float eq_power;               /* running power of the equaliser input */
    /* carrier */
    float complex derot;          /* e^{-j theta} */
    float theta, freq, pll_a, pll_b;
    /* quality */
    float mse;
    float mse_alpha;              /* smoothing of mse per symbol */
    float target_rms;             /* rms of the constellation the AGC aims for */
} xm_qam_rx_t;

void xm_qam_rx_init(xm_qam_rx_t *r, int baud, double beta, double carrier, int eq_len,
                    float target_rms);
void xm_qam_rx_reset(xm_qam_rx_t *r);
/* Feed one sample; returns 1 when a symbol is ready (*y is the equalised,
 * de-rotated symbol, left alone when want_y is 0), else 0. */
int xm_qam_rx_sample(xm_qam_rx_t *r, int16_t x, float complex *y);
/* After a symbol: adapt the equaliser and the carrier loop toward the
 * decided (or known) point d.  adapt_eq: 0 = no, 1 = yes. */
void xm_qam_rx_adapt(xm_qam_rx_t *r, float complex y, float complex d, int adapt_eq);
/* A new carrier (or a failed training): keep the sample history (the start of
 * the signal is in it), restart everything that learns; the AGC is seeded with
 * the power of the last 24 baseband samples (the carrier detector's smoothed
 * level lags the start of the signal).  The caller sets the gains. */
void xm_qam_rx_relearn(xm_qam_rx_t *r);
void xm_qam_rx_set_gains(xm_qam_rx_t *r, float eq_mu, float pll_a, float pll_b,
                         float timing_gain, float timing_int_gain);
/* Rotate the carrier reference by phi radians (used once the absolute
 * phase of a training pattern is known). */
void xm_qam_rx_rotate(xm_qam_rx_t *r, float phi);

/* ---- the alternation A B A B that opens a training (V.29 segment 2, V.17
 * segment 1): found, its phase and level set the carrier loop and the gain,
 * then it is followed until the next segment starts C D C = -A -B -A ---- */
#define XM_ABAB_SETTLE 24         /* symbols for timing to settle on the alternation */
#define XM_ABAB_AVERAGE 24        /* symbols averaged to find A and B */
#define XM_ABAB_SEARCH_LIMIT 2400 /* symbols (1 s) looking for it */

typedef struct {
    float complex a, b;           /* the two points, in the units of the constellation */
    int abab_limit;               /* symbols from the carrier to the end of the alternation */
    int found;                    /* A and B identified: waiting for -A -B -A */
    int symbols, tries;
    float complex even, odd;      /* sums over the averaging window */
    int a_parity;                 /* symbols & 1 of the A slots */
    int matched;                  /* the last window looked like the alternation */
    float complex last_a;
    int flips;
} xm_abab_t;

enum {
    XM_ABAB_MORE = 0,
    XM_ABAB_END = 1,              /* -A -B -A seen: the next segment's 4th symbol comes next */
    XM_ABAB_FAILED = -1,          /* no end after abab_limit symbols */
    XM_ABAB_GAVE_UP = -2,         /* no alternation for 1 s */
};

void xm_abab_init(xm_abab_t *s, float complex a, float complex b, int abab_limit);
/* Look for the alternation afresh (a new carrier, a failed training). */
void xm_abab_start(xm_abab_t *s);
/* One symbol y from r: returns one of the XM_ABAB_ codes. */
int xm_abab_symbol(xm_abab_t *s, xm_qam_rx_t *r, float complex y);

/* ---- where a receiver's data bits go: the caller's buffer (bits past its
 * end dropped), all of them counted ---- */
typedef struct {
    uint8_t *buf;
    int n, max;
    long total;                   /* bits delivered since the receiver was made */
} xm_bits_out_t;

static inline void xm_bits_begin(xm_bits_out_t *o, uint8_t *buf, int max)
{
    o->buf = buf;
    o->n = 0;
    o->max = max;
}

static inline void xm_bits_put(xm_bits_out_t *o, int bit)
{
    if (o->n < o->max)
        o->buf[o->n++] = (uint8_t) bit;
    o->total++;
}

/* Returns the bits written since xm_bits_begin. */
static inline int xm_bits_end(xm_bits_out_t *o)
{
    o->buf = NULL;
    return o->n;
}

/* ---- status events shared by the modem receivers ---- */
enum {
    XM_EV_CARRIER_UP = 1,
    XM_EV_CARRIER_DOWN = 2,
    XM_EV_TRAINING_SUCCEEDED = 3,
    XM_EV_TRAINING_FAILED = 4,
    /* a dropout ridden through (hold.h): the bits from DROPOUT's to RESUMED's are the gap's
     * and the check's, decoded from silence and the signal's return (damaged data) */
    XM_EV_DROPOUT = 5,
    XM_EV_RESUMED = 6,
};
#define XM_EV_MAX 32

typedef struct {
    int code[XM_EV_MAX];
    long bit[XM_EV_MAX];          /* bits delivered before the event */
    int n;
} xm_events_t;

void xm_events_push(xm_events_t *ev, int code, long bit);
/* Copy out and clear; returns the number copied. */
int xm_events_take(xm_events_t *ev, int *codes, long *bits, int max);

/* the modems built on these blocks (one include in modems.h for all) */
#include "v27ter.h"
#include "v29.h"

#endif
