/* V.27 ter modem (4800/2400 bit/s), transmitter and receiver; see v27ter.h. */
#include "v27ter.h"
#include "dsp.h"
#include "hold.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CARRIER_HZ 1800.0           /* V.27 ter: carrier frequency */
#define ROLL_OFF 0.5                /* V.27 ter: 50% raised cosine, split equally */
#define TEP_MS 190                  /* V.27 ter training, segment 1: 185-200 ms */
#define SILENCE_MS 20               /* segment 2 */
#define REV_LONG 50                 /* segment 3, continuous 180° reversals */
#define REV_SHORT 14
#define COND_LONG 1074              /* segment 4, equaliser conditioning */
#define COND_SHORT 58
#define ONES_SYMBOLS 8              /* segment 5, scrambled binary ones */
#define FLUSH_SYMBOLS 32            /* scrambled ones after the data, before stopping */
#define TRAIN_SEED 0x3C             /* segment 4 scrambler state (newest bit = bit 0) */
#define HOLD_SKIP 12                /* symbols after a gap before the check: the equaliser's
                                     * 17 T/2 taps and the matched filter refill */
#define HOLD_MEASURE 24             /* symbols then checked (15 / 20 ms) */

/* ---- scrambler: 1 + x^-6 + x^-7 with the guard against repetitive
 * patterns.  # V.27 ter: scrambler (its figure): the output is compared with the
 * outputs 8, 9 and 12 bits before; after 33 bits in a row where it equals
 * at least one of them, the next output is inverted. ---- */
typedef struct {
    uint32_t reg;                   /* past line bits, newest in bit 0 */
    int count;
} scrambler_t;

static int repeats(uint32_t reg, int bit)
{
    return bit == (int) ((reg >> 7) & 1) || bit == (int) ((reg >> 8) & 1)
        || bit == (int) ((reg >> 11) & 1);
}

static int scramble(scrambler_t *s, int in)
{
    int out = (in ^ (int) (s->reg >> 5) ^ (int) (s->reg >> 6)) & 1;
    if (s->count >= 33) {
        out ^= 1;
        s->count = 0;
    } else if (repeats(s->reg, out)) {
        s->count++;
    } else {
        s->count = 0;
    }
    s->reg = (s->reg << 1) | (uint32_t) out;
    return out;
}

static int descramble(scrambler_t *s, int in)
{
    int out = (in ^ (int) (s->reg >> 5) ^ (int) (s->reg >> 6)) & 1;
    if (s->count >= 33) {
        out ^= 1;
        s->count = 0;
    } else if (repeats(s->reg, in)) {
        s->count++;
    } else {
        s->count = 0;
    }
    s->reg = (s->reg << 1) | (uint32_t) in;
    return out;
}

/* Segment 4: the scrambler fed with ones from TRAIN_SEED, three steps per
 * symbol as for a tribit (at both rates); the first bit of each group picks
 * a 0° (0) or 180° (1) phase change.  # V.27 ter: training sequence.  The transmitter runs
 * its scrambler (which continues into segment 5); the receiver this copy,
 * to recognise the pattern. */
static int train_bit(uint32_t *reg)
{
    int first = 0;
    for (int i = 0; i < 3; i++) {
        int out = (1 ^ (int) (*reg >> 5) ^ (int) (*reg >> 6)) & 1;
        *reg = ((*reg << 1) | (uint32_t) out) & 0x7F;
        if (i == 0)
            first = out;
    }
    return first;
}

/* Phase change in units of 45° for a tribit (first bit in time is the
 * high bit).  # V.27 ter: encoding at 4800 bit/s */
static const int TRIBIT_PHASE[8] = { 1, 0, 2, 3, 6, 7, 5, 4 };
/* dibits at 2400 bit/s.  # V.27 ter: encoding at 2400 bit/s */
static const int DIBIT_PHASE[4] = { 0, 2, 6, 4 };

static float complex point(int phase)
{
    static const float complex pts[8] = {
        1.0f, 0.70710678f + 0.70710678f * I, I, -0.70710678f + 0.70710678f * I,
        -1.0f, -0.70710678f - 0.70710678f * I, -I, 0.70710678f - 0.70710678f * I,
    };
    return pts[phase & 7];
}

/* ================= transmitter ================= */

enum { TX_TEP, TX_SILENCE, TX_REV, TX_COND, TX_ONES, TX_DATA, TX_FLUSH, TX_TAIL, TX_DONE };

struct xm_v27ter_tx {
    int bit_rate, baud, long_train;
    xm_shaper_t sh;
    int seg, left;                  /* current segment, symbols left in it */
    int phase;                      /* 0..7, units of 45° */
    scrambler_t scr;
    xm_txq_t q;
    int done;
};

static void tx_enter(xm_v27ter_tx_t *tx, int seg)
{
    tx->seg = seg;
    switch (seg) {
    case TX_TEP: tx->left = TEP_MS * tx->baud / 1000; break;
    case TX_SILENCE: tx->left = SILENCE_MS * tx->baud / 1000; break;
    case TX_REV: tx->left = tx->long_train ? REV_LONG : REV_SHORT; break;
    case TX_COND:
        /* segment 4 comes from the scrambler itself, which then runs on
         * into segment 5 and the data */
        tx->left = tx->long_train ? COND_LONG : COND_SHORT;
        tx->scr.reg = TRAIN_SEED;
        tx->scr.count = 0;
        break;
    case TX_ONES: tx->left = ONES_SYMBOLS; break;
    case TX_FLUSH: tx->left = FLUSH_SYMBOLS; break;
    case TX_TAIL: tx->left = XM_TX_SPAN; break;
    default: tx->left = 0; break;
    }
}

xm_v27ter_tx_t *xm_v27ter_tx_new(int bit_rate, int long_train, int tep, float level_dbm0)
{
    if (bit_rate != 4800 && bit_rate != 2400)
        return NULL;
    xm_v27ter_tx_t *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    if (xm_txq_init(&tx->q) < 0) {
        free(tx);
        return NULL;
    }
    tx->bit_rate = bit_rate;
    tx->baud = bit_rate == 4800 ? 1600 : 1200;
    tx->long_train = long_train ? 1 : 0;
    xm_shaper_init(&tx->sh, tx->baud, ROLL_OFF, CARRIER_HZ, level_dbm0);
    tx_enter(tx, tep ? TX_TEP : TX_REV);
    return tx;
}

void xm_v27ter_tx_free(xm_v27ter_tx_t *tx)
{
    if (tx) {
        xm_txq_free(&tx->q);
        free(tx);
    }
}

int xm_v27ter_tx_put_bits(xm_v27ter_tx_t *tx, const uint8_t *bits, int n)
{
    return xm_txq_put(&tx->q, bits, n);
}

void xm_v27ter_tx_finish(xm_v27ter_tx_t *tx) { tx->q.finishing = 1; }
int xm_v27ter_tx_done(const xm_v27ter_tx_t *tx) { return tx->done; }
int xm_v27ter_tx_queued(const xm_v27ter_tx_t *tx) { return tx->q.len; }

static int tx_next_bit(xm_v27ter_tx_t *tx)
{
    /* segment 5, idle and turn-off: binary ones */
    return xm_txq_next(&tx->q, tx->seg == TX_DATA);
}

static int tx_data_phase(xm_v27ter_tx_t *tx)
{
    if (tx->bit_rate == 4800) {
        int v = 0;
        for (int i = 0; i < 3; i++)
            v = (v << 1) | scramble(&tx->scr, tx_next_bit(tx));
        return TRIBIT_PHASE[v];
    }
    int v = 0;
    for (int i = 0; i < 2; i++)
        v = (v << 1) | scramble(&tx->scr, tx_next_bit(tx));
    return DIBIT_PHASE[v];
}

static float complex tx_symbol(void *ctx)
{
    xm_v27ter_tx_t *tx = ctx;
    for (;;) {
        if (tx->seg == TX_DATA) {
            if (xm_txq_drained(&tx->q)) {
                tx_enter(tx, TX_FLUSH);
                continue;
            }
            tx->phase = (tx->phase + tx_data_phase(tx)) & 7;
            return point(tx->phase);
        }
        if (tx->seg == TX_DONE)
            return 0.0f;
        if (tx->left <= 0) {
            static const int next[] = {
                [TX_TEP] = TX_SILENCE, [TX_SILENCE] = TX_REV, [TX_REV] = TX_COND,
                [TX_COND] = TX_ONES, [TX_ONES] = TX_DATA, [TX_DATA] = TX_FLUSH,
                [TX_FLUSH] = TX_TAIL, [TX_TAIL] = TX_DONE, [TX_DONE] = TX_DONE,
            };
            int seg = next[tx->seg];
            tx_enter(tx, seg);
            if (seg == TX_DONE)
                tx->done = 1;
            continue;
        }
        tx->left--;
        switch (tx->seg) {
        case TX_TEP: return point(tx->phase);
        case TX_SILENCE: return 0.0f;
        case TX_REV: tx->phase = (tx->phase + 4) & 7; return point(tx->phase);
        case TX_COND: {
            int first = scramble(&tx->scr, 1);
            (void) scramble(&tx->scr, 1);
            (void) scramble(&tx->scr, 1);
            tx->phase = (tx->phase + (first ? 4 : 0)) & 7;
            return point(tx->phase);
        }
        case TX_ONES:
        case TX_FLUSH: tx->phase = (tx->phase + tx_data_phase(tx)) & 7; return point(tx->phase);
        default: return 0.0f;       /* TX_TAIL: let the shaping filter empty */
        }
    }
}

int xm_v27ter_tx_generate(xm_v27ter_tx_t *tx, int16_t *out, int n)
{
    return xm_shaper_generate(&tx->sh, tx_symbol, tx, &tx->done, out, n);
}

/* ================= receiver ================= */

enum { RX_IDLE, RX_SEARCH, RX_COND, RX_WINDOW, RX_ONES, RX_DATA };
#define WINDOW 16
#define SYNC_BITS 12
#define SEARCH_LIMIT_SYMBOLS 2000

struct xm_v27ter_rx {
    int bit_rate, baud;
    xm_carrier_detect_t cd;
    xm_qam_rx_t q;
    xm_events_t ev;
    int state;
    int failed;                     /* a failure reported, no success since */
    xm_hold_t hold;                 /* riding through a dropout in the data */
    int prev_k;                     /* last decided phase, units of 45° */
    uint32_t hist;                  /* recent phase changes, 1 = 180° */
    uint32_t prefix;                /* segment 4's first SYNC_BITS, newest in bit 0 */
    int symbols;                    /* symbols since carrier up */
    int cond_index;                 /* segment-4 symbols seen */
    uint32_t train_reg;
    int win[WINDOW], win_match, win_n;
    int ones_left;
    scrambler_t scr;
    xm_bits_out_t out;
};

xm_v27ter_rx_t *xm_v27ter_rx_new(int bit_rate)
{
    if (bit_rate != 4800 && bit_rate != 2400)
        return NULL;
    xm_v27ter_rx_t *rx = calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    xm_v27ter_rx_restart(rx, bit_rate);
    return rx;
}

void xm_v27ter_rx_free(xm_v27ter_rx_t *rx) { free(rx); }

void xm_v27ter_rx_restart(xm_v27ter_rx_t *rx, int bit_rate)
{
    if (bit_rate != 4800 && bit_rate != 2400)
        bit_rate = rx->bit_rate ? rx->bit_rate : 4800;
    memset(rx, 0, sizeof(*rx));
    rx->bit_rate = bit_rate;
    rx->baud = bit_rate == 4800 ? 1600 : 1200;
    /* # T.30: a signal above -43 dBm0 is received, one below -48 dBm0 is not;
     * the detector switches on at -45 so a -43 dBm0 carrier is seen at once */
    xm_cd_init(&rx->cd, -45.0f, -48.0f);
    xm_qam_rx_init(&rx->q, rx->baud, ROLL_OFF, CARRIER_HZ, 17, 1.0f);
    rx->state = RX_IDLE;
    uint32_t reg = TRAIN_SEED;
    for (int i = 0; i < SYNC_BITS; i++)
        rx->prefix = (rx->prefix << 1) | (uint32_t) train_bit(&reg);
}

/* Phase change -> line bits -> descrambled data bits (delivered or not). */
static void rx_data_symbol(xm_v27ter_rx_t *rx, int dphase, int deliver)
{
    int v, nb;
    if (rx->bit_rate == 4800) {
        static const int inv[8] = { 1, 0, 2, 3, 7, 6, 4, 5 };
        v = inv[dphase & 7];
        nb = 3;
    } else {
        static const int inv[8] = { 0, 0, 1, 1, 3, 3, 2, 2 };
        v = inv[dphase & 7];
        nb = 2;
    }
    for (int i = nb - 1; i >= 0; i--) {
        int b = descramble(&rx->scr, (v >> i) & 1);
        if (deliver)
            xm_hold_bit(&rx->hold, &rx->out, b);
    }
}

static int nearest_phase(const xm_v27ter_rx_t *rx, float complex y)
{
    float a = atan2f(cimagf(y), crealf(y));
    if (rx->bit_rate == 4800)
        return (int) lrintf(a / 0.78539816f) & 7;
    return ((int) lrintf(a / 1.57079633f) * 2) & 7;
}

static void rx_learn_again(xm_v27ter_rx_t *rx);

/* The data's carrier has gone (see hold.h): down at the gap's start, where the bits
 * delivered stop. */
static void carrier_lost(xm_v27ter_rx_t *rx)
{
    rx->state = RX_IDLE;
    rx->cd.present = 0;
    xm_events_push(&rx->ev, XM_EV_CARRIER_DOWN, rx->out.total);
}

/* Training failed: say so (once per carrier) and look for a new training
 * while the carrier lasts (one may follow noise or a lost one). */
static void rx_fail(xm_v27ter_rx_t *rx)
{
    if (!rx->failed)
        xm_events_push(&rx->ev, XM_EV_TRAINING_FAILED, rx->out.total);
    rx->failed = 1;
    rx_learn_again(rx);
}

static void rx_training_done(xm_v27ter_rx_t *rx)
{
    float limit = rx->bit_rate == 4800 ? 0.1f : 0.25f;
    if (rx->q.mse < limit) {
        rx->state = RX_DATA;
        rx->q.agc_frozen = 1;
        xm_qam_rx_set_gains(&rx->q, 0.01f, 0.05f, 0.0005f, 0.005f, 0.00002f);
        rx->q.mse_alpha = 0.02f;
        rx->failed = 0;
        xm_hold_arm(&rx->hold, rx->cd.level, HOLD_SKIP, HOLD_MEASURE, limit, 0.01f);
        xm_events_push(&rx->ev, XM_EV_TRAINING_SUCCEEDED, rx->out.total);
    } else {
        rx_fail(rx);
    }
}

static void rx_symbol(xm_v27ter_rx_t *rx, float complex y)
{
    int k = nearest_phase(rx, y);
    int d = (k - rx->prev_k) & 7;
    rx->symbols++;
    switch (rx->state) {
    case RX_SEARCH: {
        /* find the end of segment 3 and the start of segment 4: the last 12
         * phase changes match segment 4's first 12 (one error allowed) and
         * the 4 before them are reversals (one error allowed) */
        xm_qam_rx_adapt(&rx->q, y, point(k), rx->symbols > 8);
        int bit = (d >= 3 && d <= 5);
        rx->hist = (rx->hist << 1) | (uint32_t) bit;
        uint32_t seen = rx->hist & 0xFFFF;
        uint32_t want = (0xFu << SYNC_BITS) | rx->prefix;
        if (rx->symbols >= 16 && __builtin_popcount((seen ^ want) & 0xFFF) <= 1
            && __builtin_popcount((seen ^ want) & 0xF000) <= 1) {
            rx->train_reg = TRAIN_SEED;
            for (int i = 0; i < SYNC_BITS; i++)
                (void) train_bit(&rx->train_reg);
            rx->cond_index = SYNC_BITS;
            rx->state = RX_COND;
            rx->q.agc_alpha = 1.0f / 2048.0f;
            xm_qam_rx_set_gains(&rx->q, 0.05f, 0.1f, 0.002f, 0.01f, 0.00005f);
        } else if (rx->symbols > SEARCH_LIMIT_SYMBOLS) {
            rx_fail(rx);
        }
        break;
    }
    case RX_COND: {
        /* the pattern is known: train on it */
        int want = train_bit(&rx->train_reg) ? 4 : 0;
        k = (rx->prev_k + want) & 7;
        xm_qam_rx_adapt(&rx->q, y, point(k), 1);
        rx->cond_index++;
        if (rx->cond_index == COND_SHORT) {
            rx->state = RX_WINDOW;
            rx->win_n = rx->win_match = 0;
        } else if (rx->cond_index == COND_LONG) {
            rx->state = RX_ONES;
            rx->ones_left = ONES_SYMBOLS;
        }
        break;
    }
    case RX_WINDOW: {
        /* long or short train?  the long one goes on with segment 4 */
        int want = train_bit(&rx->train_reg) ? 4 : 0;
        xm_qam_rx_adapt(&rx->q, y, point(k), 1);
        rx->win[rx->win_n++] = d;
        rx->win_match += d == want;
        if (rx->win_n == WINDOW) {
            if (rx->win_match >= 12) {
                rx->cond_index += WINDOW;
                rx->state = RX_COND;
            } else {
                for (int i = 0; i < ONES_SYMBOLS; i++)
                    rx_data_symbol(rx, rx->win[i], 0);
                rx_training_done(rx);
                if (rx->state == RX_DATA)
                    for (int i = ONES_SYMBOLS; i < WINDOW; i++)
                        rx_data_symbol(rx, rx->win[i], 1);
            }
        }
        break;
    }
    case RX_ONES:
        xm_qam_rx_adapt(&rx->q, y, point(k), 1);
        rx_data_symbol(rx, d, 0);
        if (--rx->ones_left == 0)
            rx_training_done(rx);
        break;
    case RX_DATA:
        if (xm_hold_active(&rx->hold)) {
            rx_data_symbol(rx, d, 1);               /* kept back */
            int held = xm_hold_symbol(&rx->hold, &rx->q, y, point(k), d, rx->cd.level);
            if (held == XM_HOLD_LOST)
                carrier_lost(rx);
            else if (held == XM_HOLD_RESUMED)
                xm_hold_resume(&rx->hold, &rx->ev, &rx->out);
            break;
        }
        xm_qam_rx_adapt(&rx->q, y, point(k), 1);
        rx_data_symbol(rx, d, 1);
        break;
    default:
        break;
    }
    rx->prev_k = k;
}

static void rx_learn_again(xm_v27ter_rx_t *rx)
{
    xm_qam_rx_relearn(&rx->q);     /* the AGC fast until segment 4, then slow */
    xm_qam_rx_set_gains(&rx->q, 0.05f, 0.2f, 0.004f, 0.04f, 0.0f);
    rx->state = RX_SEARCH;
    rx->hist = 0;
    rx->symbols = 0;
    rx->prev_k = 0;
    memset(&rx->scr, 0, sizeof(rx->scr));
}

static void rx_carrier_up(xm_v27ter_rx_t *rx)
{
    rx->failed = 0;
    rx_learn_again(rx);
    xm_events_push(&rx->ev, XM_EV_CARRIER_UP, rx->out.total);
}

int xm_v27ter_rx_process(xm_v27ter_rx_t *rx, const int16_t *amp, int n, uint8_t *bits, int max)
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

int xm_v27ter_rx_events(xm_v27ter_rx_t *rx, int *codes, long *bits, int max)
{
    return xm_events_take(&rx->ev, codes, bits, max);
}

int xm_v27ter_rx_carrier(const xm_v27ter_rx_t *rx) { return rx->cd.present; }

int xm_v27ter_rx_state(const xm_v27ter_rx_t *rx)
{
    switch (rx->state) {
    case RX_IDLE: return 0;
    case RX_DATA: return 2;
    default: return rx->failed ? 3 : 1;
    }
}

float xm_v27ter_rx_signal_dbm0(const xm_v27ter_rx_t *rx) { return xm_mean_square_to_dbm0(rx->cd.level); }
float xm_v27ter_rx_mse(const xm_v27ter_rx_t *rx) { return rx->q.mse; }
