/* Riding through a dropout in the data phase; see hold.h. */
#include "hold.h"

#include <math.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define ENTER 0.25f               /* -6 dB under the trained level: held */
#define BACK 0.5f                 /* -3 dB: the level has come back, check it */
#define LEVEL_LOW 0.5f            /* a genuine resumption comes within 3 dB */
#define LEVEL_HIGH 2.0f
#define SAME_FRACTION 0.8f        /* two phase changes making up this much: no data */
#define STEADY 0.7f               /* above this the signal is surely on: its error is the line's */

void xm_hold_arm(xm_hold_t *h, float trained, int skip, int measure, float limit, float floor)
{
    h->phase = XM_HOLD_OFF;
    h->trained = trained;
    h->skip = skip;
    h->measure = measure;
    h->limit = limit;
    h->floor = floor;
    h->lag = h->pass = 0;
    h->nbits = 0;
    h->mse = limit;
}

static void freeze(xm_hold_t *h, xm_qam_rx_t *q)
{
    h->eq_mu = q->eq_mu;
    h->pll_a = q->pll_a;
    h->pll_b = q->pll_b;
    h->timing_gain = q->timing_gain;
    h->timing_int_gain = q->timing_int_gain;
    h->agc_frozen = q->agc_frozen;
    /* the timing integrator and the carrier frequency are kept, not zeroed: the far end's
     * clock and carrier go on through the gap and so does the receiver */
    xm_qam_rx_set_gains(q, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f);
    q->agc_frozen = 1;
}

static void thaw(xm_hold_t *h, xm_qam_rx_t *q)
{
    xm_qam_rx_set_gains(q, h->eq_mu, h->pll_a, h->pll_b, h->timing_gain, h->timing_int_gain);
    q->agc_frozen = h->agc_frozen;
}

static void start_check(xm_hold_t *h)
{
    h->phase = XM_HOLD_CHECK;
    h->symbols = 0;
    h->yy = h->dd = h->level = 0.0f;
    h->yd = 0.0f;
    memset(h->bins, 0, sizeof(h->bins));
}

static int lost(xm_hold_t *h, xm_qam_rx_t *q)
{
    thaw(h, q);
    h->phase = XM_HOLD_OFF;
    h->nbits = 0;
    return XM_HOLD_LOST;
}

int xm_hold_sample(xm_hold_t *h, xm_qam_rx_t *q, float level)
{
    switch (h->phase) {
    case XM_HOLD_OFF:
        if (level >= STEADY * h->trained) {
            h->mse = q->mse;        /* (the gap's first symbols will not count in it) */
            return XM_HOLD_RUN;
        }
        if (level >= ENTER * h->trained)
            return XM_HOLD_RUN;
        freeze(h, q);
        h->phase = XM_HOLD_GAP;
        h->samples = 0;
        h->nbits = 0;
        h->pass = h->lag;
        h->gaps++;
        return XM_HOLD_HELD;
    case XM_HOLD_GAP:
        if (++h->samples >= XM_HOLD_SAMPLES)
            return lost(h, q);      /* the signal has ended */
        if (level > BACK * h->trained)
            start_check(h);
        return XM_HOLD_HELD;
    default:                        /* XM_HOLD_CHECK: the symbols decide */
        ++h->samples;
        if (level < ENTER * h->trained)
            h->phase = XM_HOLD_GAP; /* (a blip, not the signal back) */
        return XM_HOLD_HELD;
    }
}

int xm_hold_symbol(xm_hold_t *h, xm_qam_rx_t *q, float complex y, float complex d, int dphase,
                   float level)
{
    /* the carrier coasts at its learned frequency (xm_qam_rx_adapt with the loop's gains
     * at zero, without its error meter: the gap's symbols are no measure of the line) */
    q->theta = remainderf(q->theta + q->freq, (float) (2.0 * M_PI));
    q->derot = cexpf(-I * q->theta);
    if (h->phase != XM_HOLD_CHECK || ++h->symbols <= h->skip)
        return XM_HOLD_HELD;
    h->yy += crealf(y) * crealf(y) + cimagf(y) * cimagf(y);
    h->dd += crealf(d) * crealf(d) + cimagf(d) * cimagf(d);
    h->yd += y * conjf(d);
    h->level += level;
    h->bins[dphase & 7]++;
    if (h->symbols < h->skip + h->measure)
        return XM_HOLD_HELD;
    float n = (float) h->measure;
    /* the error left once the best gain and phase are applied (the carrier phase may have
     * moved a little while the signal decayed, before the hold began):
     * min over g of sum |g y - d|^2 = sum |d|^2 - |sum y d*|^2 / sum |y|^2 */
    float p2 = q->target_rms * q->target_rms;
    float ayd = cabsf(h->yd);
    float err = h->yy > 1e-9f ? (h->dd - ayd * ayd / h->yy) / (n * p2) : 1e9f;
    int first = 0, second = 0;
    for (int i = 0; i < 8; i++) {
        if (h->bins[i] > first) {
            second = first;
            first = h->bins[i];
        } else if (h->bins[i] > second) {
            second = h->bins[i];
        }
    }
    float mean_level = h->level / n;
    /* the equaliser is as it was: the signal resuming comes as close as before the gap
     * (noise at the same level comes within the training's limit at V.29 9600) */
    float limit = fminf(h->limit, 4.0f * h->mse + h->floor);
    int genuine = err < limit
        && mean_level > LEVEL_LOW * h->trained && mean_level < LEVEL_HIGH * h->trained
        && (float) (first + second) < SAME_FRACTION * n;
    if (!genuine)
        return lost(h, q);
    thaw(h, q);
    xm_qam_rx_rotate(q, cargf(h->yd));     /* y = d e^{j phi}: that phase taken out at once */
    h->phase = XM_HOLD_OFF;
    h->resumed++;
    return XM_HOLD_RESUMED;
}

void xm_hold_resume(xm_hold_t *h, xm_events_t *ev, xm_bits_out_t *out)
{
    xm_events_push(ev, XM_EV_DROPOUT, out->total);
    for (int i = 0; i < h->nbits; i++)
        xm_bits_put(out, h->bits[i]);
    h->nbits = 0;
    xm_events_push(ev, XM_EV_RESUMED, out->total);
}
