/* The fax and modem connect tones: CNG (T.30: 1100 Hz, 0.5 s on, 3 s off),
 * CED / ANS (T.30, V.25: 2100 Hz for 2.6 to 4 s, optionally with a phase
 * reversal every 450 ms) and ANSam (V.8: ANS amplitude-modulated at 15 Hz, 20%).
 * Generators, and one detector for all of them. */
#ifndef XMFAX_TONES_H
#define XMFAX_TONES_H
#include <stdint.h>

enum {
    XM_TONE_NONE = 0,
    XM_TONE_CNG = 1,
    XM_TONE_ANS = 2,
    XM_TONE_ANS_PR = 3,
    XM_TONE_ANSAM = 4,
    XM_TONE_ANSAM_PR = 5,
};

typedef struct xm_tone_tx xm_tone_tx;
/* duration in samples: 0 = the default (CNG: forever; ANS, ANSam: 3.3 s). */
xm_tone_tx *xm_tone_tx_new(int tone, double level_dbm0, long long duration);
void xm_tone_tx_free(xm_tone_tx *s);
/* Up to max samples; fewer once the tone is over. */
int xm_tone_tx_run(xm_tone_tx *s, int16_t *out, int max);

typedef struct {
    int tone;              /* XM_TONE_* ; an ANS can be followed by ANS_PR once a reversal is heard */
    int on;                /* 1 = detected, 0 = ended */
    long long sample;      /* the detector's sample count at the report */
    double level_dbm0;     /* the tone's level (with any noise near its frequency) */
    double freq_hz;        /* measured frequency */
    double am_depth;       /* measured 15 Hz modulation depth (ANS/ANSam) */
    double duration_ms;    /* how long the tone has lasted (off: its whole length) */
} xm_tone_event;

typedef struct {
    int detect_cng;
    int detect_ans;
    double on_dbm0;        /* a tone is heard from this level up (T.30: -43 dBm0) */
    double off_dbm0;       /* ... until it drops below this one (-48 dBm0) */
    double cng_tol_hz;     /* accepted offset from 1100 Hz */
    double ans_tol_hz;     /* accepted offset from 2100 Hz */
    int cng_min_ms;        /* a CNG burst is reported after this long */
    int ans_min_ms;        /* an ANS/ANSam after this long (>= 400 to measure 15 Hz AM) */
    double min_purity;     /* the share of the power near the tone's frequency */
} xm_tone_rx_config;

typedef struct xm_tone_rx xm_tone_rx;
void xm_tone_rx_defaults(xm_tone_rx_config *c);
xm_tone_rx *xm_tone_rx_new(const xm_tone_rx_config *c);
void xm_tone_rx_free(xm_tone_rx *s);
/* Samples consumed: fewer than len only when the event queue is full. */
int xm_tone_rx_run(xm_tone_rx *s, const int16_t *amp, int len);
/* Events queued for the caller. */
int xm_tone_rx_pending(const xm_tone_rx *s);
int xm_tone_rx_next(xm_tone_rx *s, xm_tone_event *ev);
#endif
