/* V.29 modem (9600/7200 bit/s), transmitter and receiver; see v29.h. */
#include "v29.h"
#include "dsp.h"
#include "hold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define BAUD 2400                   /* V.29: symbol rate */
#define CARRIER_HZ 1700.0           /* V.29: carrier frequency */
#define ROLL_OFF 0.25
#define TEP_MS 190                  /* echo protection tone, 185-200 ms */
#define TEP_GAP_MS 20
#define SEG1 48                     /* V.29 training: segment 1, no energy */
#define SEG2 128                    /* segment 2, alternations A B A B */
#define SEG3 384                    /* segment 3, equaliser conditioning C/D */
#define SEG4 48                     /* segment 4, scrambled binary ones */
#define FLUSH_SYMBOLS 32
#define HOLD_SKIP 16                /* symbols after a gap before the check: the equaliser's
                                     * 25 T/2 taps and the matched filter refill */
#define HOLD_MEASURE 32             /* symbols then checked (13 ms) */

/* ---- scrambler 1 + x^-18 + x^-23.  # V.29: scrambler ---- */
static int scramble(uint32_t *reg, int in)
{
    int out = (in ^ (int) (*reg >> 17) ^ (int) (*reg >> 22)) & 1;
    *reg = (*reg << 1) | (uint32_t) out;
    return out;
}

static int descramble(uint32_t *reg, int in)
{
    int out = (in ^ (int) (*reg >> 17) ^ (int) (*reg >> 22)) & 1;
    *reg = (*reg << 1) | (uint32_t) in;
    return out;
}

/* Segment 3: the sequence of 1 + x^-6 + x^-7 from the state 0101010 (its
 * first seven bits), 0 sends C and 1 sends D.  # V.29: training sequence */
static void conditioning_bits(uint8_t *bits)
{
    static const uint8_t init[7] = { 0, 1, 0, 1, 0, 1, 0 };
    for (int n = 0; n < SEG3; n++)
        bits[n] = n < 7 ? init[n] : (uint8_t) (bits[n - 6] ^ bits[n - 7]);
}

/* Training points A, B, C, D (A at 180°).  # V.29: training sequence, its table */
typedef struct { float complex a, b, c, d; int phase_c, phase_d; } training_points_t;

static training_points_t training_points(int bit_rate)
{
    training_points_t t;
    t.a = -3.0f;
    t.c = 3.0f;
    if (bit_rate == 9600) {
        t.b = 3.0f - 3.0f * I;
        t.d = -3.0f + 3.0f * I;
    } else {
        t.b = 1.0f - 1.0f * I;
        t.d = -1.0f + 1.0f * I;
    }
    t.phase_c = 0;                  /* absolute phases in units of 45° */
    t.phase_d = 3;
    return t;
}

/* Phase change for Q2Q3Q4 (Q2 first in time).  # V.29: encoding */
static const int TRIBIT_PHASE[8] = { 1, 0, 2, 3, 6, 7, 5, 4 };
static const int PHASE_TRIBIT[8] = { 1, 0, 2, 3, 7, 6, 4, 5 };

/* The signal element of absolute phase p (45° units) and amplitude bit q1:
 * on the axes 3 or 5, on the diagonals (1,1) or (3,3).  # V.29: signal space diagram */
static float complex element(int p, int q1)
{
    static const float complex unit[8] = {
        1.0f, 0.70710678f + 0.70710678f * I, I, -0.70710678f + 0.70710678f * I,
        -1.0f, -0.70710678f - 0.70710678f * I, -I, 0.70710678f - 0.70710678f * I,
    };
    float amp = (p & 1) ? (q1 ? 4.2426407f : 1.4142136f) : (q1 ? 5.0f : 3.0f);
    return unit[p & 7] * amp;
}

static float rms_of(int bit_rate)
{
    /* mean power of the data elements: 9600 (9+25+2+18)/4, 7200 (9+2)/2 */
    return bit_rate == 9600 ? 3.6742346f : 2.3452079f;
}

/* ================= transmitter ================= */

enum { TX_TEP, TX_GAP, TX_SEG1, TX_SEG2, TX_SEG3, TX_SEG4, TX_DATA, TX_FLUSH, TX_TAIL, TX_DONE };

struct xm_v29_tx {
    int bit_rate;
    xm_shaper_t sh;
    training_points_t tp;
    uint8_t cond[SEG3];
    int seg, left, index;
    int phase;
    uint32_t scr;
    float scale;                    /* 1 / rms of the constellation */
    xm_txq_t q;
    int done;
};

static void tx_enter(xm_v29_tx_t *tx, int seg)
{
    static const int len[] = {
        [TX_TEP] = TEP_MS * BAUD / 1000, [TX_GAP] = TEP_GAP_MS * BAUD / 1000, [TX_SEG1] = SEG1,
        [TX_SEG2] = SEG2, [TX_SEG3] = SEG3, [TX_SEG4] = SEG4, [TX_DATA] = 0,
        [TX_FLUSH] = FLUSH_SYMBOLS, [TX_TAIL] = XM_TX_SPAN, [TX_DONE] = 0,
    };
    tx->seg = seg;
    tx->left = len[seg];
    tx->index = 0;
    if (seg == TX_DONE)
        tx->done = 1;
}

xm_v29_tx_t *xm_v29_tx_new(int bit_rate, int long_train, int tep, float level_dbm0)
{
    (void) long_train;
    if (bit_rate != 9600 && bit_rate != 7200)
        return NULL;
    xm_v29_tx_t *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    if (xm_txq_init(&tx->q) < 0) {
        free(tx);
        return NULL;
    }
    tx->bit_rate = bit_rate;
    tx->tp = training_points(bit_rate);
    conditioning_bits(tx->cond);
    tx->scale = 1.0f / rms_of(bit_rate);
    xm_shaper_init(&tx->sh, BAUD, ROLL_OFF, CARRIER_HZ, level_dbm0);
    tx_enter(tx, tep ? TX_TEP : TX_SEG1);
    return tx;
}

void xm_v29_tx_free(xm_v29_tx_t *tx)
{
    if (tx) {
        xm_txq_free(&tx->q);
        free(tx);
    }
}

int xm_v29_tx_put_bits(xm_v29_tx_t *tx, const uint8_t *bits, int n)
{
    return xm_txq_put(&tx->q, bits, n);
}

void xm_v29_tx_finish(xm_v29_tx_t *tx) { tx->q.finishing = 1; }
int xm_v29_tx_done(const xm_v29_tx_t *tx) { return tx->done; }
int xm_v29_tx_queued(const xm_v29_tx_t *tx) { return tx->q.len; }

static int tx_bit(xm_v29_tx_t *tx)
{
    /* segment 4, idle and turn-off: binary ones */
    return scramble(&tx->scr, xm_txq_next(&tx->q, tx->seg == TX_DATA));
}

static float complex tx_data_element(xm_v29_tx_t *tx)
{
    int q1 = 0;
    if (tx->bit_rate == 9600)
        q1 = tx_bit(tx);
    int v = 0;
    for (int i = 0; i < 3; i++)
        v = (v << 1) | tx_bit(tx);
    tx->phase = (tx->phase + TRIBIT_PHASE[v]) & 7;
    return element(tx->phase, q1);
}

static float complex tx_symbol(void *ctx)
{
    xm_v29_tx_t *tx = ctx;
    static const int next[] = {
        [TX_TEP] = TX_GAP, [TX_GAP] = TX_SEG1, [TX_SEG1] = TX_SEG2, [TX_SEG2] = TX_SEG3,
        [TX_SEG3] = TX_SEG4, [TX_SEG4] = TX_DATA, [TX_DATA] = TX_FLUSH, [TX_FLUSH] = TX_TAIL,
        [TX_TAIL] = TX_DONE, [TX_DONE] = TX_DONE,
    };
    for (;;) {
        if (tx->seg == TX_DONE)
            return 0.0f;
        if (tx->seg == TX_DATA) {
            if (xm_txq_drained(&tx->q)) {
                tx_enter(tx, TX_FLUSH);
                continue;
            }
            return tx_data_element(tx) * tx->scale;
        }
        if (tx->left <= 0) {
            tx_enter(tx, next[tx->seg]);
            continue;
        }
        tx->left--;
        int i = tx->index++;
        switch (tx->seg) {
        case TX_TEP: return 3.0f * tx->scale;
        case TX_SEG2: return ((i & 1) ? tx->tp.b : tx->tp.a) * tx->scale;
        case TX_SEG3:
            tx->phase = tx->cond[i] ? tx->tp.phase_d : tx->tp.phase_c;
            return (tx->cond[i] ? tx->tp.d : tx->tp.c) * tx->scale;
        case TX_SEG4:
        case TX_FLUSH: return tx_data_element(tx) * tx->scale;
        default: return 0.0f;       /* TX_GAP, TX_SEG1, TX_TAIL */
        }
    }
}

int xm_v29_tx_generate(xm_v29_tx_t *tx, int16_t *out, int n)
{
    return xm_shaper_generate(&tx->sh, tx_symbol, tx, &tx->done, out, n);
}

/* ================= receiver ================= */

enum { RX_IDLE, RX_SEARCH /* segment 2 */, RX_COND, RX_ONES, RX_DATA };
#define ABAB_LIMIT 400              /* symbols from the carrier to the end of segment 2 */

struct xm_v29_rx {
    int bit_rate;
    float rms;
    xm_carrier_detect_t cd;
    xm_qam_rx_t q;
    xm_events_t ev;
    training_points_t tp;
    uint8_t cond[SEG3];
    int state;
    int failed;                     /* a failure reported, no success since */
    xm_hold_t hold;                 /* riding through a dropout in the data */
    xm_abab_t ab;                   /* segment 2 */
    int index;
    int prev_phase;
    uint32_t scr;
    xm_bits_out_t out;
};

xm_v29_rx_t *xm_v29_rx_new(int bit_rate)
{
    if (bit_rate != 9600 && bit_rate != 7200)
        return NULL;
    xm_v29_rx_t *rx = calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    xm_v29_rx_restart(rx, bit_rate);
    return rx;
}

void xm_v29_rx_free(xm_v29_rx_t *rx) { free(rx); }

void xm_v29_rx_restart(xm_v29_rx_t *rx, int bit_rate)
{
    if (bit_rate != 9600 && bit_rate != 7200)
        bit_rate = rx->bit_rate ? rx->bit_rate : 9600;
    memset(rx, 0, sizeof(*rx));
    rx->bit_rate = bit_rate;
    rx->rms = rms_of(bit_rate);
    rx->tp = training_points(bit_rate);
    conditioning_bits(rx->cond);
    xm_abab_init(&rx->ab, rx->tp.a, rx->tp.b, ABAB_LIMIT);
    /* # T.30: a signal above -43 dBm0 is received, one below -48 dBm0 is not;
     * the detector switches on at -45 so a -43 dBm0 carrier is seen at once */
    xm_cd_init(&rx->cd, -45.0f, -48.0f);
    xm_qam_rx_init(&rx->q, BAUD, ROLL_OFF, CARRIER_HZ, 25, rx->rms);
    rx->state = RX_IDLE;
}

/* nearest data element: returns it, with its phase and amplitude bit */
static float complex slice(const xm_v29_rx_t *rx, float complex y, int *phase, int *q1)
{
    float best = 1e30f;
    float complex bp = 0.0f;
    int nq = rx->bit_rate == 9600 ? 2 : 1;
    for (int p = 0; p < 8; p++)
        for (int a = 0; a < nq; a++) {
            float complex e = element(p, a);
            float complex d = y - e;
            float dist = crealf(d) * crealf(d) + cimagf(d) * cimagf(d);
            if (dist < best) {
                best = dist;
                bp = e;
                *phase = p;
                *q1 = a;
            }
        }
    return bp;
}

static void data_bits(xm_v29_rx_t *rx, int phase, int q1, int deliver)
{
    int v = PHASE_TRIBIT[(phase - rx->prev_phase) & 7];
    rx->prev_phase = phase;
    int line[4], n = 0;
    if (rx->bit_rate == 9600)
        line[n++] = q1;
    for (int i = 2; i >= 0; i--)
        line[n++] = (v >> i) & 1;
    for (int i = 0; i < n; i++) {
        int b = descramble(&rx->scr, line[i]);
        if (deliver)
            xm_hold_bit(&rx->hold, &rx->out, b);
    }
}

static void rx_learn_again(xm_v29_rx_t *rx);

/* The data's carrier has gone (see hold.h): down at the gap's start, where the bits
 * delivered stop. */
static void carrier_lost(xm_v29_rx_t *rx)
{
    rx->state = RX_IDLE;
    rx->cd.present = 0;
    xm_events_push(&rx->ev, XM_EV_CARRIER_DOWN, rx->out.total);
}

/* Training failed: say so (once per carrier) and look for a new training
 * while the carrier lasts (one may follow noise or a lost one). */
static void fail(xm_v29_rx_t *rx)
{
    if (!rx->failed)
        xm_events_push(&rx->ev, XM_EV_TRAINING_FAILED, rx->out.total);
    rx->failed = 1;
    rx_learn_again(rx);
}

static void rx_training_done(xm_v29_rx_t *rx)
{
    float limit = rx->bit_rate == 9600 ? 0.04f : 0.08f;
    if (rx->q.mse < limit) {
        rx->state = RX_DATA;
        xm_qam_rx_set_gains(&rx->q, 0.01f, 0.05f, 0.0005f, 0.005f, 0.00002f);
        rx->q.mse_alpha = 0.02f;
        rx->failed = 0;
        xm_hold_arm(&rx->hold, rx->cd.level, HOLD_SKIP, HOLD_MEASURE, 1.5f * limit, 0.01f);
        xm_events_push(&rx->ev, XM_EV_TRAINING_SUCCEEDED, rx->out.total);
    } else {
        fail(rx);
    }
}

static void rx_symbol(xm_v29_rx_t *rx, float complex y)
{
    switch (rx->state) {
    case RX_SEARCH:
        switch (xm_abab_symbol(&rx->ab, &rx->q, y)) {
        case XM_ABAB_END:           /* segment 2, then segment 3: C D C seen */
            rx->state = RX_COND;
            rx->index = 3;
            break;
        case XM_ABAB_FAILED:
            fail(rx);
            break;
        case XM_ABAB_GAVE_UP:
            fail(rx);
            rx->ab.symbols = XM_ABAB_SETTLE;    /* look on at once */
            break;
        }
        break;
    case RX_COND: {
        int bit = rx->cond[rx->index++];
        xm_qam_rx_adapt(&rx->q, y, bit ? rx->tp.d : rx->tp.c, 1);
        if (rx->index == SEG3 / 2)
            rx->q.eq_mu = 0.08f;    /* converged roughly: now finely */
        if (rx->index == SEG3) {
            rx->prev_phase = bit ? rx->tp.phase_d : rx->tp.phase_c;
            rx->state = RX_ONES;
            rx->index = 0;
        }
        break;
    }
    case RX_ONES:
    case RX_DATA: {
        int phase = 0, q1 = 0;
        float complex d = slice(rx, y, &phase, &q1);
        if (rx->state == RX_DATA && xm_hold_active(&rx->hold)) {
            int dphase = (phase - rx->prev_phase) & 7;
            data_bits(rx, phase, q1, 1);            /* kept back */
            int held = xm_hold_symbol(&rx->hold, &rx->q, y, d, dphase, rx->cd.level);
            if (held == XM_HOLD_LOST)
                carrier_lost(rx);
            else if (held == XM_HOLD_RESUMED)
                xm_hold_resume(&rx->hold, &rx->ev, &rx->out);
            break;
        }
        xm_qam_rx_adapt(&rx->q, y, d, 1);
        data_bits(rx, phase, q1, rx->state == RX_DATA);
        if (rx->state == RX_ONES && ++rx->index == SEG4)
            rx_training_done(rx);
        break;
    }
    default:
        break;
    }
}

static void rx_learn_again(xm_v29_rx_t *rx)
{
    xm_qam_rx_relearn(&rx->q);
    xm_qam_rx_set_gains(&rx->q, 0.0f, 0.0f, 0.0f, 0.04f, 0.0f);
    rx->state = RX_SEARCH;
    xm_abab_start(&rx->ab);
    rx->scr = 0;
}

static void rx_carrier_up(xm_v29_rx_t *rx)
{
    rx->failed = 0;
    rx_learn_again(rx);
    xm_events_push(&rx->ev, XM_EV_CARRIER_UP, rx->out.total);
}

int xm_v29_rx_process(xm_v29_rx_t *rx, const int16_t *amp, int n, uint8_t *bits, int max)
{
    xm_bits_begin(&rx->out, bits, max);
    for (int i = 0; i < n; i++) {
        int c = xm_cd_sample(&rx->cd, (float) amp[i]);
        if (rx->state == RX_DATA) {
            /* in the data the hold, not the cut-off, says when the carrier has gone */
            rx->cd.present = 1;
            if (xm_hold_sample(&rx->hold, &rx->q, rx->cd.level) == XM_HOLD_LOST)
                carrier_lost(rx);
        } else if (c > 0) {
            rx_carrier_up(rx);
        } else if (c < 0) {
            rx->state = RX_IDLE;
            xm_events_push(&rx->ev, XM_EV_CARRIER_DOWN, rx->out.total);
        }
        float complex y;
        rx->q.want_y = rx->state != RX_IDLE;     /* idle: the symbols go nowhere */
        if (xm_qam_rx_sample(&rx->q, amp[i], &y) && rx->state != RX_IDLE)
            rx_symbol(rx, y);
    }
    return xm_bits_end(&rx->out);
}

int xm_v29_rx_events(xm_v29_rx_t *rx, int *codes, long *bits, int max)
{
    return xm_events_take(&rx->ev, codes, bits, max);
}

int xm_v29_rx_carrier(const xm_v29_rx_t *rx) { return rx->cd.present; }

int xm_v29_rx_state(const xm_v29_rx_t *rx)
{
    switch (rx->state) {
    case RX_IDLE: return 0;
    case RX_DATA: return 2;
    default: return rx->failed ? 3 : 1;
    }
}

float xm_v29_rx_signal_dbm0(const xm_v29_rx_t *rx) { return xm_mean_square_to_dbm0(rx->cd.level); }
float xm_v29_rx_mse(const xm_v29_rx_t *rx) { return rx->q.mse; }
