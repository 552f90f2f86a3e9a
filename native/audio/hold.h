/* Riding through a dropout (a lost 20 ms RTP packet played out as silence) in the
 * PSK/QAM receivers' data phase (V.29, V.27 ter).
 *
 * When the level falls 6 dB under the level the training came at, the receiver holds:
 * the carrier stays up, everything that learns is frozen (AGC, equaliser, carrier and
 * timing loops; the carrier phase and the timing go on at the frequencies they had
 * learned, so the far end's clock is followed through the gap), and the bits decoded
 * meanwhile are kept back here.  When the level comes back the resumption is checked
 * before anything is believed: after ``skip`` symbols (the filters refill) the next
 * ``measure`` symbols must come at the trained level (within 3 dB), close to the
 * constellation (mean normalised error under ``limit`` and under 4 times the error before
 * the gap + a floor) and varied (no two phase
 * changes making up 80 % of them: a tone, the V.21 FSK, a training's alternations or
 * its unmodulated carrier are none of them).  Genuine: the loops go on and the kept
 * bits are delivered.  Not genuine, or no signal for XM_HOLD_SAMPLES: the carrier was
 * lost at the gap's start, and the kept bits are dropped.  So the true end of a
 * signal is reported XM_HOLD_SAMPLES (45 ms) after the level fell 6 dB, and a signal
 * that is not the data's (the V.21 post-page command, a new training, noise, a level
 * step) never passes as the data resuming.  Sans-IO, no allocation.
 */
#ifndef XMFAX_HOLD_H
#define XMFAX_HOLD_H

#include "dsp.h"

#define XM_HOLD_SAMPLES 360       /* 45 ms from the level falling 6 dB (some 7 ms into a gap):
                                   * two lost 20 ms packets are ridden through */
#define XM_HOLD_BITS 2048         /* bits kept back: (45 ms + the check) at 14400 bit/s is 1000 */

enum { XM_HOLD_OFF = 0, XM_HOLD_GAP = 1, XM_HOLD_CHECK = 2 };
enum { XM_HOLD_RUN = 0, XM_HOLD_HELD = 1, XM_HOLD_RESUMED = 2, XM_HOLD_LOST = -1 };

typedef struct {
    int phase;                    /* XM_HOLD_OFF, _GAP (level low), _CHECK (level back) */
    float trained;                /* the detector's mean square when training ended */
    int skip, measure;            /* the check window, in symbols */
    float limit;                  /* mean normalised error a genuine signal stays under */
    float mse;                    /* the equaliser's error while the signal was surely on */
    float floor;
    int samples;                  /* since the hold began */
    int symbols;                  /* since the level came back */
    float yy, dd, level;          /* sums over the measured symbols: |y|^2, |d|^2, level */
    float complex yd;             /* and y d* */
    int bins[8];                  /* their phase changes, in units of 45 degrees */
    /* the loops' settings while frozen */
    float eq_mu, pll_a, pll_b, timing_gain, timing_int_gain;
    int agc_frozen;
    int lag;                      /* bits a decoder still owes from before a gap (V.17's Viterbi) */
    int pass;                     /* of them, still to be delivered in this hold */
    uint8_t bits[XM_HOLD_BITS];
    int nbits;
    long gaps, resumed;           /* counts, for tests and statistics */
} xm_hold_t;

/* Training succeeded at detector level ``trained`` (a mean square); a resumption must come
 * under ``limit`` and under 4 times the error before the gap + ``floor`` (a dense
 * constellation needs a low floor: noise comes close to some point of it). */
void xm_hold_arm(xm_hold_t *h, float trained, int skip, int measure, float limit, float floor);
/* One sample in the data phase, after the detector has taken it (``level`` is its mean
 * square): XM_HOLD_RUN (no hold), XM_HOLD_HELD, or XM_HOLD_LOST (the carrier has gone:
 * the caller drops it, the kept bits are already discarded). */
int xm_hold_sample(xm_hold_t *h, xm_qam_rx_t *q, float level);
static inline int xm_hold_active(const xm_hold_t *h) { return h->phase != XM_HOLD_OFF; }
/* One symbol while held: y the equalised symbol, d the decided point, dphase its phase
 * change (45 degree units), level as above.  Coasts the carrier phase.  Returns
 * XM_HOLD_HELD (still checking), XM_HOLD_RESUMED (genuine
 * and the loops run again: the caller then calls xm_hold_resume) or XM_HOLD_LOST (not
 * genuine: the kept bits are dropped). */
int xm_hold_symbol(xm_hold_t *h, xm_qam_rx_t *q, float complex y, float complex d, int dphase,
                   float level);
/* After XM_HOLD_RESUMED: XM_EV_DROPOUT, the kept bits, XM_EV_RESUMED. */
void xm_hold_resume(xm_hold_t *h, xm_events_t *ev, xm_bits_out_t *out);
/* A decoded bit: kept back while held (after the ``lag`` a decoder owes), else delivered. */
static inline void xm_hold_bit(xm_hold_t *h, xm_bits_out_t *out, int bit)
{
    if (h->phase == XM_HOLD_OFF)
        xm_bits_put(out, bit);
    else if (h->pass > 0) {
        h->pass--;
        xm_bits_put(out, bit);
    }
    else if (h->nbits < XM_HOLD_BITS)
        h->bits[h->nbits++] = (uint8_t) bit;
}

#endif
