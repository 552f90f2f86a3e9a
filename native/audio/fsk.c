/* V.21 300 bit/s FSK (ITU-T V.21: channel 1 F_A 980 Hz / F_Z 1180 Hz, channel 2
 * F_A 1650 Hz / F_Z 1850 Hz; F_A = binary 1 = mark, F_Z = binary 0 = space), as T.30
 * uses channel 2 for its binary-coded signalling.
 *
 * Transmitter: a phase-continuous oscillator switched between the two frequencies at
 * the bit clock. Receiver: non-coherent detection by two complex correlators, each
 * one bit long, sliding sample by sample; their energy difference is the soft bit, their
 * sum the in-band power for carrier detect (V.21's received line signal detector, as T.30 uses it: on above
 * -43 dBm0, off below -48 dBm0); a DPLL on the soft bit's zero crossings places the
 * bit decisions mid-bit. */
#include <stdlib.h>
#include <string.h>

#include "fsk.h"
#include "osc.h"

#define BAUD 300
#define WINDOW 27                 /* correlator length: one bit (26.7 samples) */
#define RAW_TX_CAP 8192
#define RAW_RX_CAP 8192
#define TIMING_SCALE XM_SAMPLE_RATE   /* bit clock: + BAUD a sample, a bit every 8000 */

static void channel_freqs(int channel, double *f_one, double *f_zero)
{
    if (channel == XM_V21_CH1) {
        *f_one = 980.0;
        *f_zero = 1180.0;
    } else {
        *f_one = 1650.0;
        *f_zero = 1850.0;
    }
}

/* ------------------------------------------------------------------ transmit */

struct xm_fsk_tx {
    int mode;
    int preamble_flags;
    float amp;
    uint32_t phase;
    uint32_t step[2];           /* [bit] */
    int clock;                  /* bit clock, 0..TIMING_SCALE */
    int bit;                    /* the bit being sent, -1 = carrier off */
    int ended;
    int done;
    xm_hdlc_tx *hdlc;
    uint8_t raw[RAW_TX_CAP];
    int raw_head, raw_count;
};

xm_fsk_tx *xm_fsk_tx_new(int channel, int mode, double level_dbm0, int preamble_flags,
                         int max_len)
{
    xm_fsk_tx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    double f1, f0;
    channel_freqs(channel, &f1, &f0);
    s->mode = mode;
    s->preamble_flags = preamble_flags;
    s->amp = (float) xm_dbm0_to_peak(level_dbm0);
    s->step[1] = xm_phase_step(f1);
    s->step[0] = xm_phase_step(f0);
    if (mode == XM_FSK_HDLC) {
        s->hdlc = xm_hdlc_tx_new(max_len > 0 ? max_len : 2048, 4 * (max_len > 0 ? max_len : 2048));
        if (!s->hdlc) {
            free(s);
            return NULL;
        }
    }
    xm_fsk_tx_restart(s);
    return s;
}

void xm_fsk_tx_free(xm_fsk_tx *s)
{
    if (!s)
        return;
    xm_hdlc_tx_free(s->hdlc);
    free(s);
}

void xm_fsk_tx_restart(xm_fsk_tx *s)
{
    s->phase = 0;
    s->clock = 0;
    s->bit = -1;
    s->ended = 0;
    s->done = 0;
    s->raw_head = s->raw_count = 0;
    if (s->hdlc) {
        xm_hdlc_tx_reset(s->hdlc);
        xm_hdlc_tx_flags(s->hdlc, s->preamble_flags);
    }
}

int xm_fsk_tx_frame(xm_fsk_tx *s, const uint8_t *data, int len, int bad_fcs)
{
    if (!s->hdlc || s->ended)
        return -1;
    return xm_hdlc_tx_frame(s->hdlc, data, len, bad_fcs);
}

void xm_fsk_tx_abort(xm_fsk_tx *s)
{
    if (s->hdlc)
        xm_hdlc_tx_abort(s->hdlc);
}

int xm_fsk_tx_put_bits(xm_fsk_tx *s, const uint8_t *bits, int n)
{
    if (s->hdlc || s->ended)
        return 0;
    int i;
    for (i = 0; i < n && s->raw_count < RAW_TX_CAP; i++) {
        s->raw[(s->raw_head + s->raw_count) % RAW_TX_CAP] = bits[i] & 1;
        s->raw_count++;
    }
    return i;
}

void xm_fsk_tx_end(xm_fsk_tx *s)
{
    s->ended = 1;
}

int xm_fsk_tx_done(const xm_fsk_tx *s)
{
    return s->done;
}

/* The next bit to send; -1 when the transmission is over. */
static int next_bit(xm_fsk_tx *s)
{
    if (s->hdlc) {
        int b = xm_hdlc_tx_get_bit(s->hdlc);
        if (b >= 0)
            return b;
        if (s->ended)
            return -1;
        xm_hdlc_tx_flags(s->hdlc, 1);      /* idle between frames: flags keep the line */
        return xm_hdlc_tx_get_bit(s->hdlc);
    }
    if (s->raw_count) {
        int b = s->raw[s->raw_head];
        s->raw_head = (s->raw_head + 1) % RAW_TX_CAP;
        s->raw_count--;
        return b;
    }
    return s->ended ? -1 : 1;              /* idle: marks */
}

int xm_fsk_tx_run(xm_fsk_tx *s, int16_t *out, int max)
{
    int i;
    if (s->done)
        return 0;
    if (s->bit < 0) {
        s->bit = next_bit(s);
        if (s->bit < 0) {
            s->done = 1;
            return 0;
        }
    }
    for (i = 0; i < max; i++) {
        out[i] = xm_sat16(s->amp * xm_sin(s->phase));
        s->phase += s->step[s->bit];
        s->clock += BAUD;
        if (s->clock >= TIMING_SCALE) {
            s->clock -= TIMING_SCALE;
            int b = next_bit(s);
            if (b < 0) {
                s->done = 1;
                return i + 1;
            }
            s->bit = b;
        }
    }
    return i;
}

/* ------------------------------------------------------------------ receive */

struct xm_fsk_rx {
    int mode;
    uint32_t lo_phase[2], lo_step[2];       /* [0] = F_Z (0), [1] = F_A (1) */
    float ring[WINDOW][4];                  /* products: re/im for 0, re/im for 1 */
    int ring_pos;
    double sum[4];
    int quiet;                              /* ring and sums all zero (a window of zeros) */
    int filled;
    double power;                           /* smoothed in-band power (int16 scale) */
    double on_power, off_power;
    int carrier;
    int below;                              /* samples below the off level */
    /* bit timing */
    int clock;
    float last_d;
    float edge_slope;                       /* the steepest crossing in this bit time */
    int edge_err;                           /* ... and where it fell */
    int transitions;
    double slow_power;                      /* the power over ~64 ms */
    int since_up;
    int surging;
    long long sample;
    xm_hdlc_rx *hdlc;                       /* frames (HDLC mode) and the event queue */
    uint8_t bits[RAW_RX_CAP];
    int bits_head, bits_count;
    long long bit_overruns;
};

xm_fsk_rx *xm_fsk_rx_new(int channel, int mode, double on_dbm0, double off_dbm0, int max_len)
{
    xm_fsk_rx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    double f1, f0;
    channel_freqs(channel, &f1, &f0);
    s->mode = mode;
    s->lo_step[0] = xm_phase_step(f0);
    s->lo_step[1] = xm_phase_step(f1);
    s->on_power = xm_dbm0_to_power(on_dbm0);
    s->off_power = xm_dbm0_to_power(off_dbm0);
    s->hdlc = xm_hdlc_rx_new(max_len > 0 ? max_len : 2048, 2);
    if (!s->hdlc) {
        free(s);
        return NULL;
    }
    xm_fsk_rx_reset(s);
    return s;
}

void xm_fsk_rx_free(xm_fsk_rx *s)
{
    if (!s)
        return;
    xm_hdlc_rx_free(s->hdlc);
    free(s);
}

void xm_fsk_rx_set_framing_flags(xm_fsk_rx *s, int flags)
{
    xm_hdlc_rx_set_framing_flags(s->hdlc, flags);
}

void xm_fsk_rx_reset(xm_fsk_rx *s)
{
    memset(s->ring, 0, sizeof(s->ring));
    memset(s->sum, 0, sizeof(s->sum));
    s->lo_phase[0] = s->lo_phase[1] = 0;
    s->ring_pos = 0;
    s->quiet = 1;                           /* (the ring and sums were just cleared) */
    s->filled = 0;
    s->power = 0.0;
    s->carrier = 0;
    s->below = 0;
    s->clock = 0;
    s->last_d = 0.0f;
    s->edge_slope = 0.0f;
    s->edge_err = 0;
    s->transitions = 0;
    s->slow_power = 0.0;
    s->since_up = 1;
    s->surging = 0;
    s->bits_head = s->bits_count = 0;
    xm_hdlc_rx_reset(s->hdlc);
}

static void put_bit(xm_fsk_rx *s, int bit)
{
    if (s->mode == XM_FSK_HDLC) {
        xm_hdlc_rx_set_sample(s->hdlc, s->sample);
        xm_hdlc_rx_put_bit(s->hdlc, bit);
        return;
    }
    if (s->bits_count == RAW_RX_CAP) {
        s->bit_overruns++;
        return;
    }
    s->bits[(s->bits_head + s->bits_count) % RAW_RX_CAP] = (uint8_t) bit;
    s->bits_count++;
}

int xm_fsk_rx_run(xm_fsk_rx *s, const int16_t *amp, int len)
{
    /* a power estimate smoothed over ~4 ms: 1/32 a sample */
    const double alpha = 1.0 / 32.0;
    const double norm = 2.0 / ((double) WINDOW * WINDOW);
    /* The state of the hot path lives in locals for the loop (the compiler cannot keep
     * fields in registers across the rare calls into the HDLC receiver) and goes back
     * to *s at the end and before each such call; the arithmetic is that of one sample
     * at a time on *s, in the same order. */
    double sum0 = s->sum[0], sum1 = s->sum[1], sum2 = s->sum[2], sum3 = s->sum[3];
    uint32_t ph0 = s->lo_phase[0], ph1 = s->lo_phase[1];
    const uint32_t st0 = s->lo_step[0], st1 = s->lo_step[1];
    int ring_pos = s->ring_pos;
    double power = s->power, slow_power = s->slow_power;
    int since_up = s->since_up;
    long long sample = s->sample;
    int room = xm_hdlc_rx_room(s->hdlc);    /* changes only when an event is queued */
    int quiet = s->quiet;
    int i;
#define FSK_SAVE() do { s->sample = sample; } while (0)
    for (i = 0; i < len; i++) {
        if (room < 3 || s->bits_count >= RAW_RX_CAP - 1)
            break;                          /* let the caller take what is queued */
        if (quiet && amp[i] == 0) {
            /* the correlators hold nothing but zeros and a zero comes: products, sums
             * and ring all stay zero (up to the sign of a zero, which nothing below can
             * tell: the sums are only squared, the ring only summed) */
            if (++ring_pos == WINDOW)
                ring_pos = 0;
        } else {
            quiet = 0;
            float x = (float) amp[i];
            float *slot = s->ring[ring_pos];
            float p0 = x * xm_cos(ph0), p1 = x * xm_sin(ph0);
            float p2 = x * xm_cos(ph1), p3 = x * xm_sin(ph1);
            sum0 += (double) p0 - (double) slot[0];
            sum1 += (double) p1 - (double) slot[1];
            sum2 += (double) p2 - (double) slot[2];
            sum3 += (double) p3 - (double) slot[3];
            slot[0] = p0;
            slot[1] = p1;
            slot[2] = p2;
            slot[3] = p3;
            if (++ring_pos == WINDOW) {
                ring_pos = 0;
                /* start each lap from exact sums so rounding never accumulates */
                double t0 = 0.0, t1 = 0.0, t2 = 0.0, t3 = 0.0;
                int zero = 1;
                for (int j = 0; j < WINDOW; j++) {
                    t0 += s->ring[j][0];
                    t1 += s->ring[j][1];
                    t2 += s->ring[j][2];
                    t3 += s->ring[j][3];
                    zero &= s->ring[j][0] == 0.0f && s->ring[j][1] == 0.0f
                        && s->ring[j][2] == 0.0f && s->ring[j][3] == 0.0f;
                }
                sum0 = t0;
                sum1 = t1;
                sum2 = t2;
                sum3 = t3;
                quiet = zero;           /* a window of zeros: the sums are exactly 0 */
            }
        }
        ph0 += st0;
        ph1 += st1;
        sample++;

        double e0 = sum0 * sum0 + sum1 * sum1;
        double e1 = sum2 * sum2 + sum3 * sum3;
        power += ((e0 + e1) * norm - power) * alpha;

        /* a signal starting on top of noise (the power jumps by 6 dB over its recent
         * level: a running mean over the first 64 ms of a carrier, then a 64 ms average)
         * starts the bit timing acquisition again, as at carrier up */
        if (since_up < 512) {
            since_up++;
            slow_power += (power - slow_power) / (double) since_up;
        } else {
            slow_power += (power - slow_power) * (1.0 / 512.0);  /* = / 512, exactly */
        }
        if (!s->surging && power > 4.0 * slow_power) {
            s->surging = 1;
            s->transitions = 0;
        } else if (s->surging && power < 1.25 * slow_power) {
            s->surging = 0;
        }

        /* carrier detect with hysteresis */
        if (!s->carrier) {
            if (power >= s->on_power) {
                s->carrier = 1;
                s->below = 0;
                s->clock = TIMING_SCALE / 2;
                slow_power = power;
                since_up = 1;
                s->surging = 0;
                s->transitions = 0;
                s->edge_slope = 0.0f;
                s->last_d = (float) (e1 - e0);
                xm_hdlc_rx_status(s->hdlc, XM_RX_CARRIER_UP, sample);
                room = xm_hdlc_rx_room(s->hdlc);
            }
            continue;
        }
        if (power < s->off_power) {
            /* a bit time below the off level: the carrier has gone */
            if (++s->below >= WINDOW) {
                s->carrier = 0;
                xm_hdlc_rx_status(s->hdlc, XM_RX_CARRIER_DOWN, sample);
                room = xm_hdlc_rx_room(s->hdlc);
                continue;
            }
        } else {
            s->below = 0;
        }

        /* bit timing: a zero crossing of the soft bit marks a bit edge, which should
         * fall half-way between two decisions (clock = TIMING_SCALE / 2). Noise adds
         * crossings of its own: of those in a bit time, the steepest is taken (a real
         * transition swings the soft bit from one tone's full energy to the other's),
         * and the clock is corrected at the decision. */
        float d = (float) (e1 - e0);
        if ((d > 0.0f) != (s->last_d > 0.0f)) {
            float slope = fabsf(d - s->last_d);
            if (slope > s->edge_slope) {
                s->edge_slope = slope;
                s->edge_err = s->clock - TIMING_SCALE / 2;
            }
        }
        s->last_d = d;
        s->clock += BAUD;
        if (s->clock >= TIMING_SCALE) {
            s->clock -= TIMING_SCALE;
            FSK_SAVE();
            put_bit(s, d > 0.0f);
            room = xm_hdlc_rx_room(s->hdlc);
            if (s->edge_slope > 0.0f) {
                int err = s->edge_err;
                int corr;
                if (s->transitions < 4) {
                    corr = err / 2;                      /* pull in fast */
                } else {
                    /* then small, bounded steps, so that a crossing moved by noise
                     * cannot throw the clock far and the bit count does not slip */
                    corr = err / 16;
                    if (corr > TIMING_SCALE / 64)
                        corr = TIMING_SCALE / 64;
                    else if (corr < -TIMING_SCALE / 64)
                        corr = -TIMING_SCALE / 64;
                }
                s->clock -= corr;
                s->transitions++;
                s->edge_slope = 0.0f;
            }
        }
    }
#undef FSK_SAVE
    s->sum[0] = sum0;
    s->sum[1] = sum1;
    s->sum[2] = sum2;
    s->sum[3] = sum3;
    s->lo_phase[0] = ph0;
    s->lo_phase[1] = ph1;
    s->ring_pos = ring_pos;
    s->power = power;
    s->slow_power = slow_power;
    s->since_up = since_up;
    s->sample = sample;
    s->quiet = quiet;
    return i;
}

int xm_fsk_rx_next(xm_fsk_rx *s, xm_rx_event *ev, uint8_t *data, int cap)
{
    return xm_hdlc_rx_next(s->hdlc, ev, data, cap);
}

int xm_fsk_rx_bits(xm_fsk_rx *s, uint8_t *out, int cap)
{
    int n = 0;
    while (n < cap && s->bits_count) {
        out[n++] = s->bits[s->bits_head];
        s->bits_head = (s->bits_head + 1) % RAW_RX_CAP;
        s->bits_count--;
    }
    return n;
}

int xm_fsk_rx_pending(const xm_fsk_rx *s)
{
    return (XM_HDLC_RX_SLOTS - xm_hdlc_rx_room(s->hdlc)) + s->bits_count;
}

int xm_fsk_rx_carrier(const xm_fsk_rx *s)
{
    return s->carrier;
}

double xm_fsk_rx_power_dbm0(const xm_fsk_rx *s)
{
    return xm_power_to_dbm0(s->power);
}

void xm_fsk_rx_stats(const xm_fsk_rx *s, long long out[6])
{
    xm_hdlc_rx_stats(s->hdlc, out);
}
