/* V.17 modem (14400/12000/9600/7200 bit/s), transmitter and receiver; see v17.h.
 *
 * The signal points of each rate (their labels Y0 Y1 Y2 Q3..Q6) and the 8-state
 * trellis code are in v17_tables.h.  They, the segment-2 sequence and the segment-3
 * bridge were measured on spandsp's V.17 transmitter (an ideal receiver, GF(2)
 * elimination on the descrambler's equations, the minimal machine behind the Y0s:
 * native/audio/gen_v17_tables.py, tests/interop/test_audio_spandsp_v17.py), as the
 * figures of V.17 were not at hand; the tests check both directions against spandsp.
 * INTEROP(spandsp): the labelling may differ from V.17's Figures 2-3 by a rotation of
 * Y1Y2 (which the differential code and a 90° invariant trellis cannot tell apart).
 *
 * Section numbers: only §2 (carrier, baud) is cited by number; the other citations
 * name the part of V.17 (scrambler, signal element coding, training), whose clause
 * numbers could not be checked here.
 */
#include "v17.h"
#include "dsp.h"
#include "hold.h"
#include "v17_tables.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define BAUD 2400                   /* V.17 §2 */
#define CARRIER_HZ 1800.0           /* V.17 §2 */
#define ROLL_OFF 0.25
#define TEP_MS 190                  /* echo protection tone, 185-200 ms */
#define TEP_GAP_MS 20
#define SEG1 256                    /* V.17 training, segment 1: alternations A B */
#define SEG2_LONG 2976              /* equaliser conditioning, long training */
#define SEG2_SHORT 38               /* and short training */
#define SEG3 64                     /* bridge (long training only) */
#define SEG4 48                     /* scrambled ones, trellis-coded at the data rate */
#define FLUSH_SYMBOLS 48
#define SEG2_HISTORY 0x51322Au      /* the 23 bits before segment 2, newest lowest */
#define LOST_DROP 0.0630957f        /* -12 dB: the signal has ended (as V.29's receiver) */
#define LOST_HOLD 320               /* samples (40 ms) under it first, in segment 4 (in the
                                     * data a dropout is held: hold.h) */
#define HOLD_SKIP 16                /* symbols after a gap before the check (equaliser refill) */
#define HOLD_MEASURE 32             /* symbols then checked (13 ms) */

/* INTEROP(spandsp): the carrier's phase at turn-on, which V.17 leaves free.  spandsp 0.0.6's
 * receiver, after a SHORT training, restarts its carrier phase where it detects the carrier
 * and, for one range of the phase it then sees in segment 1, fails segment 2 ("Short
 * training failed"), whoever sends; the sample moves with the level (and the noise).  Of
 * the turns tried (30 degree steps) this one loses the page at the fewest levels: on a clean
 * line 2-3 of the 38 levels -6..-43 dBm0 at every rate (unturned 7, spandsp's own pair 11);
 * at 22 dB SNR, of 30 runs at -13/-18/-24 dBm0: 23/22/29 (unturned 23/22/21, its own pair
 * 27/25/29).  benchmarks/audio_v17.py --levels; tests/interop/test_audio_v17_short_levels.py */
#define TURN_ON_DEG 150.0

/* the four training points, in the units of the tables */
static const float complex PT_A = -6.0f - 2.0f * I, PT_B = 2.0f - 6.0f * I;
static const float complex PT_C = 6.0f + 2.0f * I, PT_D = -2.0f + 6.0f * I;

static float complex train_point(int label)
{
    switch (label & 3) {
    case 0: return PT_A;
    case 1: return PT_D;
    case 2: return PT_B;
    default: return PT_C;
    }
}

/* segment 3, the bridge: labels of the training points */
static const uint8_t BRIDGE[SEG3] = {
    2, 2, 3, 1, 1, 0, 1, 2, 0, 3, 0, 1, 0, 3, 1, 2, 3, 0, 0, 3, 1, 0, 1, 3, 2, 3, 2, 3, 2, 2, 0, 3,
    2, 1, 3, 3, 0, 1, 3, 2, 3, 1, 1, 3, 0, 3, 3, 3, 0, 1, 3, 0, 1, 3, 3, 2, 3, 0, 0, 0, 1, 1, 0, 0,
};

/* segment 2: two bits a symbol of 1 + x^-18 + x^-23 run without input */
static void seg2_labels(uint8_t *labels, int n)
{
    uint32_t reg = SEG2_HISTORY;
    for (int k = 0; k < n; k++) {
        int v = 0;
        for (int i = 0; i < 2; i++) {
            int b = (int) ((reg >> 17) ^ (reg >> 22)) & 1;
            reg = ((reg << 1) | (uint32_t) b) & 0x7FFFFFu;
            v |= b << i;
        }
        labels[k] = (uint8_t) v;
    }
}

/* ---- scrambler 1 + x^-18 + x^-23.  # V.17 scrambler ---- */
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

typedef struct {
    int bit_rate, bits;             /* data bits a symbol */
    int npoints;                    /* 2^(bits + 1) */
    const int8_t (*points)[2];
    const uint8_t (*next)[4];
    const uint8_t (*y0)[4];
    float rms;                      /* of the data points */
    float d0;                       /* least distance between points */
} rate_t;

static int rate_of(int bit_rate, rate_t *r)
{
    memset(r, 0, sizeof(*r));
    r->bit_rate = bit_rate;
    switch (bit_rate) {
    case 14400: r->bits = 6; r->points = V17_POINTS_14400; r->next = V17_NEXT_14400; r->y0 = V17_Y0_14400; break;
    case 12000: r->bits = 5; r->points = V17_POINTS_12000; r->next = V17_NEXT_12000; r->y0 = V17_Y0_12000; break;
    case 9600: r->bits = 4; r->points = V17_POINTS_9600; r->next = V17_NEXT_9600; r->y0 = V17_Y0_9600; break;
    case 7200: r->bits = 3; r->points = V17_POINTS_7200; r->next = V17_NEXT_7200; r->y0 = V17_Y0_7200; break;
    default: return -1;
    }
    r->npoints = 1 << (r->bits + 1);
    double p = 0.0, dmin = 1e9;
    for (int i = 0; i < r->npoints; i++) {
        double x = r->points[i][0], y = r->points[i][1];
        p += x * x + y * y;
        for (int j = 0; j < i; j++) {
            double dx = x - r->points[j][0], dy = y - r->points[j][1];
            double d = sqrt(dx * dx + dy * dy);
            if (d < dmin)
                dmin = d;
        }
    }
    r->rms = (float) sqrt(p / r->npoints);
    r->d0 = (float) dmin;
    return 0;
}

static float complex point(const rate_t *r, int label)
{
    return (float) r->points[label][0] + (float) r->points[label][1] * I;
}

/* ================= transmitter ================= */

enum { TX_TEP, TX_GAP, TX_SEG1, TX_SEG2, TX_SEG3, TX_SEG4, TX_DATA, TX_FLUSH, TX_TAIL, TX_DONE };

struct xm_v17_tx {
    rate_t r;
    int long_train;
    xm_shaper_t sh;
    uint8_t seg2[SEG2_LONG];
    int seg, left, index;
    uint32_t scr;
    int diff;                       /* Y1 | Y2 << 1 of the last symbol */
    int state;                      /* trellis encoder */
    float complex scale;            /* 1/rms, turned by TURN_ON_DEG */
    xm_txq_t q;
    int done;
};

static void tx_enter(xm_v17_tx_t *tx, int seg)
{
    int len = 0;
    switch (seg) {
    case TX_TEP: len = TEP_MS * BAUD / 1000; break;
    case TX_GAP: len = TEP_GAP_MS * BAUD / 1000; break;
    case TX_SEG1: len = SEG1; break;
    case TX_SEG2: len = tx->long_train ? SEG2_LONG : SEG2_SHORT; break;
    case TX_SEG3: len = tx->long_train ? SEG3 : 0; break;
    case TX_SEG4: len = SEG4; break;
    case TX_FLUSH: len = FLUSH_SYMBOLS; break;
    case TX_TAIL: len = XM_TX_SPAN; break;
    default: break;
    }
    tx->seg = seg;
    tx->left = len;
    tx->index = 0;
    if (seg == TX_DONE)
        tx->done = 1;
}

xm_v17_tx_t *xm_v17_tx_new(int bit_rate, int long_train, int tep, float level_dbm0)
{
    rate_t r;
    if (rate_of(bit_rate, &r) < 0)
        return NULL;
    xm_v17_tx_t *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    if (xm_txq_init(&tx->q) < 0) {
        free(tx);
        return NULL;
    }
    tx->r = r;
    tx->long_train = long_train ? 1 : 0;
    seg2_labels(tx->seg2, SEG2_LONG);
    double turn = TURN_ON_DEG * M_PI / 180.0;
    tx->scale = (float) (cos(turn) / r.rms) + (float) (sin(turn) / r.rms) * I;
    xm_shaper_init(&tx->sh, BAUD, ROLL_OFF, CARRIER_HZ, level_dbm0);
    tx_enter(tx, tep ? TX_TEP : TX_SEG1);
    return tx;
}

void xm_v17_tx_free(xm_v17_tx_t *tx)
{
    if (tx) {
        xm_txq_free(&tx->q);
        free(tx);
    }
}

int xm_v17_tx_put_bits(xm_v17_tx_t *tx, const uint8_t *bits, int n)
{
    return xm_txq_put(&tx->q, bits, n);
}

void xm_v17_tx_finish(xm_v17_tx_t *tx) { tx->q.finishing = 1; }
int xm_v17_tx_done(const xm_v17_tx_t *tx) { return tx->done; }
int xm_v17_tx_queued(const xm_v17_tx_t *tx) { return tx->q.len; }

static int tx_bit(xm_v17_tx_t *tx)
{
    /* segment 4, idle and turn-off: binary ones */
    return scramble(&tx->scr, xm_txq_next(&tx->q, tx->seg == TX_DATA));
}

/* Q1 Q2 differentially encoded to Y1 Y2 (Y = Y' + Q mod 4, Q1 and Y1 the low
 * bits), Y0 from the trellis encoder, Q3.. uncoded.  # V.17 signal element coding, Table 1 */
static float complex tx_data_symbol(xm_v17_tx_t *tx)
{
    int q = 0;
    for (int i = 0; i < tx->r.bits; i++)
        q |= tx_bit(tx) << i;
    tx->diff = (tx->diff + (q & 3)) & 3;
    int y0 = tx->r.y0[tx->state][tx->diff];
    tx->state = tx->r.next[tx->state][tx->diff];
    int label = y0 | (tx->diff << 1) | ((q >> 2) << 3);
    return point(&tx->r, label) * tx->scale;
}

static float complex tx_symbol(void *ctx)
{
    xm_v17_tx_t *tx = ctx;
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
            return tx_data_symbol(tx);
        }
        if (tx->left <= 0) {
            tx_enter(tx, next[tx->seg]);
            continue;
        }
        tx->left--;
        int i = tx->index++;
        switch (tx->seg) {
        case TX_TEP: return PT_C * tx->scale;
        case TX_SEG1: return ((i & 1) ? PT_B : PT_A) * tx->scale;
        case TX_SEG2: return train_point(tx->seg2[i]) * tx->scale;
        case TX_SEG3: return train_point(BRIDGE[i]) * tx->scale;
        case TX_SEG4:
        case TX_FLUSH: return tx_data_symbol(tx);
        default: return 0.0f;       /* TX_GAP, TX_TAIL */
        }
    }
}

int xm_v17_tx_generate(xm_v17_tx_t *tx, int16_t *out, int n)
{
    return xm_shaper_generate(&tx->sh, tx_symbol, tx, &tx->done, out, n);
}

/* ================= receiver ================= */

enum { RX_IDLE, RX_SEARCH /* segment 1 */, RX_SEG2, RX_SEG3, RX_SEG4, RX_DATA };
#define ABAB_LIMIT 600              /* symbols from the carrier to the end of segment 1 */
#define DEPTH 32                    /* Viterbi traceback */

/* The nearest point of each of the 8 subsets, found among a few candidates instead of
 * every point: the plane around the constellation is cut into 1x1 cells, and a cell keeps,
 * per subset, only the points that can be the nearest one (or tie with it) anywhere in the
 * cell, in label order.  The search over them gives the same label as the search over all
 * the points, bit for bit (see grid_build); a symbol outside the grid searches them all. */
#define GRID_LO (-10)
#define GRID_N 20                   /* cells a side: [-10, 10) */
#define GRID_K 8                    /* candidates kept per subset and cell */

typedef struct {
    uint8_t n[8];                   /* candidates of subset u; 0: search every point */
    uint8_t cand[8][GRID_K];
} grid_cell_t;

typedef struct {
    int bit_rate;                   /* the rate the cells are for (0: not built) */
    grid_cell_t cell[GRID_N][GRID_N];
} grid_t;

struct xm_v17_rx {
    rate_t r;
    int long_train;
    int trained_once;               /* an equaliser from a long training is kept */
    xm_carrier_detect_t cd;
    xm_qam_rx_t q;
    xm_events_t ev;
    uint8_t seg2[SEG2_LONG];
    int state;
    int failed;
    xm_abab_t ab;                   /* segment 1 */
    int index;
    int still_seg2;                 /* symbols after a short segment 2 that went on like it */
    int pending;                    /* training succeeded, not said yet */
    float lost_level;               /* mean square under which the signal has ended */
    int low;                        /* samples in a row under it */
    xm_hold_t hold;                 /* riding through a dropout in the data */
    int sector;                     /* the last decided point's phase, 45 degree units */
    int latched;                    /* ended by level: no new carrier until silence or a
                                     * signal 6 dB under the last one's training level */
    /* Viterbi */
    float metric[8];
    uint8_t prev[DEPTH][8];
    uint8_t label[DEPTH][8];
    /* the labels along each state's survivor path, by step (slot = step % DEPTH), kept
     * step by step from prev/label ("register exchange"): what a traceback through
     * prev/label would find, without walking back DEPTH steps for every symbol */
    uint8_t path[2][8][DEPTH];
    int cur;                        /* path[cur]: after the newest step */
    int vpos, vcount;
    long decoded;                   /* symbols out of the decoder since segment 4 */
    int diff;
    uint32_t scr;
    xm_bits_out_t out;
    float complex saved_eq[XM_EQ_MAX];
    grid_t *grid;                   /* kept across restarts */
};

/* The squared distances from a point to the nearest and to the farthest place of the cell
 * [x0, x0 + 1] x [y0, y0 + 1]. */
static double cell_near2(double px, double py, double x0, double y0)
{
    double dx = px < x0 ? x0 - px : (px > x0 + 1.0 ? px - x0 - 1.0 : 0.0);
    double dy = py < y0 ? y0 - py : (py > y0 + 1.0 ? py - y0 - 1.0 : 0.0);
    return dx * dx + dy * dy;
}

static double cell_far2(double px, double py, double x0, double y0)
{
    double dx = fmax(fabs(px - x0), fabs(px - x0 - 1.0));
    double dy = fmax(fabs(py - y0), fabs(py - y0 - 1.0));
    return dx * dx + dy * dy;
}

/* A point p of subset u stays a candidate of a cell unless some point q of u is nearer
 * than p everywhere in it: farthest(q) < nearest(p).  The margin (far above float
 * rounding of distances under ~800) keeps every point whose computed distance could
 * equal or undercut the least one. */
static void grid_build(grid_t *g, const rate_t *r)
{
    g->bit_rate = r->bit_rate;
    for (int i = 0; i < GRID_N; i++)
        for (int j = 0; j < GRID_N; j++) {
            grid_cell_t *c = &g->cell[i][j];
            double x0 = GRID_LO + i, y0 = GRID_LO + j;
            for (int u = 0; u < 8; u++) {
                double bound = 1e300;
                for (int l = u; l < r->npoints; l += 8) {
                    double f = cell_far2(r->points[l][0], r->points[l][1], x0, y0);
                    if (f < bound)
                        bound = f;
                }
                int n = 0;
                for (int l = u; l < r->npoints; l += 8) {
                    if (cell_near2(r->points[l][0], r->points[l][1], x0, y0) > bound + 1e-3 * (1.0 + bound))
                        continue;
                    if (n == GRID_K) {
                        n = 0;          /* too many: this cell searches every point */
                        break;
                    }
                    c->cand[u][n++] = (uint8_t) l;
                }
                c->n[u] = (uint8_t) n;
            }
        }
}

/* dist[u], label[u]: the nearest point of subset u to y (the first in label order of
 * equally near ones) and its squared distance.  Returns the label of the nearest point of
 * all (the first in label order of equally near ones), the slicer's decision. */
static int nearest_points(const xm_v17_rx_t *rx, float complex y, float dist[8], int label[8])
{
    const rate_t *r = &rx->r;
    float yr = crealf(y), yi = cimagf(y);
    float gx = yr - (float) GRID_LO, gy = yi - (float) GRID_LO;
    const grid_cell_t *c = NULL;
    if (rx->grid && rx->grid->bit_rate == r->bit_rate
        && gx >= 0.0f && gx < (float) GRID_N && gy >= 0.0f && gy < (float) GRID_N)
        c = &rx->grid->cell[(int) gx][(int) gy];
    for (int u = 0; u < 8; u++) {
        float best = 1e30f;
        int bl = u;
        if (c && c->n[u]) {
            for (int k = 0; k < c->n[u]; k++) {
                int l = c->cand[u][k];
                float dx = yr - r->points[l][0], dy = yi - r->points[l][1];
                float d = dx * dx + dy * dy;
                if (d < best) {
                    best = d;
                    bl = l;
                }
            }
        } else {
            for (int l = u; l < r->npoints; l += 8) {
                float dx = yr - r->points[l][0], dy = yi - r->points[l][1];
                float d = dx * dx + dy * dy;
                if (d < best) {
                    best = d;
                    bl = l;
                }
            }
        }
        dist[u] = best;
        label[u] = bl;
    }
    int w = 0;
    for (int u = 1; u < 8; u++)
        if (dist[u] < dist[w] || (dist[u] == dist[w] && label[u] < label[w]))
            w = u;
    return label[w];
}

xm_v17_rx_t *xm_v17_rx_new(int bit_rate)
{
    rate_t r;
    if (rate_of(bit_rate, &r) < 0)
        return NULL;
    xm_v17_rx_t *rx = calloc(1, sizeof(*rx));
    if (!rx)
        return NULL;
    rx->r = r;
    rx->grid = calloc(1, sizeof(*rx->grid));     /* NULL: every symbol searches all points */
    xm_v17_rx_restart(rx, bit_rate, 1);
    return rx;
}

void xm_v17_rx_free(xm_v17_rx_t *rx)
{
    if (rx) {
        free(rx->grid);
        free(rx);
    }
}

void xm_v17_rx_restart(xm_v17_rx_t *rx, int bit_rate, int long_train)
{
    rate_t r;
    if (rate_of(bit_rate, &r) < 0)
        r = rx->r;
    int kept = rx->trained_once && !long_train;
    float complex eq[XM_EQ_MAX];
    memcpy(eq, rx->saved_eq, sizeof(eq));
    grid_t *grid = rx->grid;
    memset(rx, 0, sizeof(*rx));
    rx->r = r;
    rx->grid = grid;
    if (grid && grid->bit_rate != r.bit_rate)
        grid_build(grid, &r);
    rx->long_train = kept ? 0 : 1;
    rx->trained_once = kept;
    memcpy(rx->saved_eq, eq, sizeof(eq));
    seg2_labels(rx->seg2, SEG2_LONG);
    xm_abab_init(&rx->ab, PT_A, PT_B, ABAB_LIMIT);
    /* # T.30 §5.2.3.3: on above -43 dBm0, off below -48 dBm0 */
    xm_cd_init(&rx->cd, -45.0f, -48.0f);
    xm_qam_rx_init(&rx->q, BAUD, ROLL_OFF, CARRIER_HZ, 25, r.rms);
    rx->state = RX_IDLE;
}

static void rx_learn_again(xm_v17_rx_t *rx);

static void fail(xm_v17_rx_t *rx)
{
    if (!rx->failed)
        xm_events_push(&rx->ev, XM_EV_TRAINING_FAILED, rx->out.total);
    rx->failed = 1;
    rx_learn_again(rx);
}

static void viterbi_reset(xm_v17_rx_t *rx)
{
    for (int s = 0; s < 8; s++)
        rx->metric[s] = 0.0f;
    rx->vpos = rx->vcount = 0;
    rx->decoded = 0;
    rx->diff = 0;
}

/* one decoded symbol: differential decoding, descrambling, delivery after segment 4 */
static void symbol_out(xm_v17_rx_t *rx, int label)
{
    int y = (label >> 1) & 3;
    int q = ((y - rx->diff) & 3) | ((label >> 3) << 2);
    rx->diff = y;
    int deliver = rx->decoded >= SEG4;
    rx->decoded++;
    for (int i = 0; i < rx->r.bits; i++) {
        int b = descramble(&rx->scr, (q >> i) & 1);
        if (deliver)
            xm_hold_bit(&rx->hold, &rx->out, b);
    }
}

/* The label ``steps`` - 1 steps before the newest one on the best path (steps = DEPTH:
 * the oldest kept step), as a traceback from the best state through prev/label finds it. */
static int traceback(const xm_v17_rx_t *rx, int steps)
{
    int best = 0;
    for (int s = 1; s < 8; s++)
        if (rx->metric[s] < rx->metric[best])
            best = s;
    return rx->path[rx->cur][best][(rx->vpos - steps + DEPTH) % DEPTH];
}

/* # V.17 signal element coding: the 8-state trellis; branch metrics from the nearest point of each of
 * the 8 subsets Y0 Y1 Y2 */
static void viterbi_symbol(xm_v17_rx_t *rx, const float dist[8], const int best_label[8])
{
    float next[8];
    for (int s = 0; s < 8; s++)
        next[s] = 1e30f;
    int pos = rx->vpos;
    for (int s = 0; s < 8; s++)
        for (int c = 0; c < 4; c++) {
            int u = rx->r.y0[s][c] | (c << 1);
            int ns = rx->r.next[s][c];
            float m = rx->metric[s] + dist[u];
            if (m < next[ns]) {
                next[ns] = m;
                rx->prev[pos][ns] = (uint8_t) s;
                rx->label[pos][ns] = (uint8_t) best_label[u];
            }
        }
    float low = next[0];
    for (int s = 1; s < 8; s++)
        if (next[s] < low)
            low = next[s];
    for (int s = 0; s < 8; s++)
        rx->metric[s] = next[s] - low;
    /* each state's path: its predecessor's, with this step's label */
    const uint8_t (*old)[DEPTH] = rx->path[rx->cur];
    uint8_t (*nw)[DEPTH] = rx->path[rx->cur ^ 1];
    for (int ns = 0; ns < 8; ns++) {
        memcpy(nw[ns], old[rx->prev[pos][ns]], DEPTH);
        nw[ns][pos] = rx->label[pos][ns];
    }
    rx->cur ^= 1;
    rx->vpos = (pos + 1) % DEPTH;
    if (rx->vcount < DEPTH)
        rx->vcount++;
    if (rx->vcount == DEPTH)
        symbol_out(rx, traceback(rx, DEPTH));
}

/* the symbols still in the decoder, oldest first (at the end of a carrier) */
static void viterbi_flush(xm_v17_rx_t *rx)
{
    int n = rx->vcount == DEPTH ? DEPTH - 1 : rx->vcount;
    for (int k = n; k >= 1; k--)
        symbol_out(rx, traceback(rx, k));
    rx->vcount = 0;
}

static void rx_training_done(xm_v17_rx_t *rx)
{
    float half = 0.5f * rx->r.d0;
    /* an error of half the least distance in rms: the trellis code still decodes
     * with no error well below that SNR */
    float limit = half * half / (rx->r.rms * rx->r.rms);
    if (rx->q.mse < limit) {
        rx->state = RX_SEG4;
        xm_qam_rx_set_gains(&rx->q, 0.01f, 0.05f, 0.0005f, 0.005f, 0.00002f);
        rx->q.mse_alpha = 0.02f;
        rx->failed = 0;
        rx->index = 0;
        rx->still_seg2 = 0;
        rx->lost_level = rx->cd.level * LOST_DROP;
        xm_hold_arm(&rx->hold, rx->cd.level, HOLD_SKIP, HOLD_MEASURE, limit,
                    0.3f * limit);   /* noise comes within 2/3 of it */
        rx->hold.lag = DEPTH * rx->r.bits;      /* the decoder's lag: bits from before a gap */
        viterbi_reset(rx);
        if (rx->long_train) {
            memcpy(rx->saved_eq, rx->q.eq, sizeof(rx->saved_eq));
            rx->trained_once = 1;
        }
        /* after a short training, said once 16 symbols show it was no long one */
        rx->pending = 1;
        if (rx->long_train) {
            xm_events_push(&rx->ev, XM_EV_TRAINING_SUCCEEDED, rx->out.total);
            rx->pending = 0;
        }
    } else {
        fail(rx);
    }
}

static void carrier_lost(xm_v17_rx_t *rx);

static void rx_symbol(xm_v17_rx_t *rx, float complex y)
{
    switch (rx->state) {
    case RX_SEARCH:
        switch (xm_abab_symbol(&rx->ab, &rx->q, y)) {
        case XM_ABAB_END:           /* segment 1, then segment 2: C D C seen */
            rx->state = RX_SEG2;
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
    case RX_SEG2: {
        int n2 = rx->long_train ? SEG2_LONG : SEG2_SHORT;
        xm_qam_rx_adapt(&rx->q, y, train_point(rx->seg2[rx->index++]), 1);
        if (rx->index == 400)
            rx->q.eq_mu = 0.08f;
        if (rx->index == 1500)
            rx->q.eq_mu = 0.03f;
        if (rx->index > 200 && rx->q.mse > 0.5f) {
            fail(rx);               /* not (or no longer) the known sequence */
            break;
        }
        if (rx->index == n2) {
            rx->index = 0;
            if (rx->long_train)
                rx->state = RX_SEG3;
            else
                rx_training_done(rx);
        }
        break;
    }
    case RX_SEG3:
        xm_qam_rx_adapt(&rx->q, y, train_point(BRIDGE[rx->index++]), 1);
        if (rx->index == SEG3)
            rx_training_done(rx);
        break;
    case RX_SEG4:
        if (!rx->long_train && rx->index == rx->still_seg2 && rx->index < 16) {
            /* a long training where a short one was expected: segment 2 goes on */
            float complex d = y - train_point(rx->seg2[SEG2_SHORT + rx->index]);
            if (crealf(d) * crealf(d) + cimagf(d) * cimagf(d) < 4.0f)
                rx->still_seg2++;
            if (rx->still_seg2 == 16) {
                rx->long_train = 1;
                rx->pending = 0;
                rx->state = RX_SEG2;
                rx->index = SEG2_SHORT + 16;
                xm_qam_rx_set_gains(&rx->q, 0.08f, 0.1f, 0.002f, 0.01f, 0.00005f);
                break;
            }
        }
        /* fall through */
    case RX_DATA:
    {
        float dist[8];
        int label[8];
        int near = nearest_points(rx, y, dist, label);
        if (rx->state == RX_DATA && xm_hold_active(&rx->hold)) {
            float complex d = point(&rx->r, near);
            int sector = (int) lrintf(atan2f(cimagf(d), crealf(d)) / 0.78539816f) & 7;
            int dphase = (sector - rx->sector) & 7;
            rx->sector = sector;
            viterbi_symbol(rx, dist, label);        /* its bits kept back */
            int held = xm_hold_symbol(&rx->hold, &rx->q, y, d, dphase, rx->cd.level);
            if (held == XM_HOLD_LOST)
                carrier_lost(rx);
            else if (held == XM_HOLD_RESUMED)
                xm_hold_resume(&rx->hold, &rx->ev, &rx->out);
            break;
        }
        xm_qam_rx_adapt(&rx->q, y, point(&rx->r, near), 1);
        viterbi_symbol(rx, dist, label);
    }
        if (rx->state == RX_SEG4) {
            if (++rx->index == 16 && rx->pending) {
                xm_events_push(&rx->ev, XM_EV_TRAINING_SUCCEEDED, rx->out.total);
                rx->pending = 0;
            }
            if (rx->index == SEG4)
                rx->state = RX_DATA;
        }
        break;
    default:
        break;
    }
}

/* The data's carrier has gone (see hold.h): down at the gap's start, where the bits
 * delivered stop (the decoder's symbols from the gap are dropped with it). */
static void carrier_lost(xm_v17_rx_t *rx)
{
    rx->state = RX_IDLE;
    rx->cd.present = 0;
    rx->latched = 1;
    rx->vcount = 0;
    xm_events_push(&rx->ev, XM_EV_CARRIER_DOWN, rx->out.total);
}

static void rx_learn_again(xm_v17_rx_t *rx)
{
    xm_qam_rx_relearn(&rx->q);
    if (rx->trained_once && !rx->long_train)
        memcpy(rx->q.eq, rx->saved_eq, sizeof(rx->q.eq));   /* a short training: the last long one's */
    xm_qam_rx_set_gains(&rx->q, 0.0f, 0.0f, 0.0f, 0.04f, 0.0f);
    rx->state = RX_SEARCH;
    xm_abab_start(&rx->ab);
}

static void rx_carrier_up(xm_v17_rx_t *rx)
{
    rx->failed = 0;
    rx_learn_again(rx);
    xm_events_push(&rx->ev, XM_EV_CARRIER_UP, rx->out.total);
}

int xm_v17_rx_process(xm_v17_rx_t *rx, const int16_t *amp, int n, uint8_t *bits, int max)
{
    xm_bits_begin(&rx->out, bits, max);
    for (int i = 0; i < n; i++) {
        int c = xm_cd_sample(&rx->cd, (float) amp[i]);
        if (rx->latched) {
            if (rx->cd.level < rx->cd.off_ms || rx->cd.level > 4.0f * rx->lost_level)
                rx->latched = 0;
            else if (c > 0) {
                rx->cd.present = 0;     /* the tail or the noise after the signal */
                c = 0;
            }
        }
        if (rx->state == RX_DATA) {
            /* in the data the hold, not the cut-off, says when the carrier has gone */
            rx->cd.present = 1;
            rx->low = 0;
            if (xm_hold_sample(&rx->hold, &rx->q, rx->cd.level) == XM_HOLD_LOST)
                carrier_lost(rx);
            goto demodulate;
        }
        int in_data = rx->state == RX_SEG4;
        rx->low = (in_data && rx->cd.level < rx->lost_level) ? rx->low + 1 : 0;
        if (c > 0) {
            rx_carrier_up(rx);
        } else if (c < 0 || rx->low >= LOST_HOLD) {
            /* off below the cut-off, or (in data) 12 dB under the level the training
             * came at for 40 ms: the transmitter has stopped, the rest is its filters'
             * tail or the line's noise */
            if (c == 0)
                rx->latched = 1;
            rx->cd.present = 0;
            rx->low = 0;
            if (in_data)
                viterbi_flush(rx);
            else if (rx->state != RX_IDLE && !rx->failed)
                /* the carrier ended before the training did */
                xm_events_push(&rx->ev, XM_EV_TRAINING_FAILED, rx->out.total);
            rx->state = RX_IDLE;
            xm_events_push(&rx->ev, XM_EV_CARRIER_DOWN, rx->out.total);
        }
    demodulate:;
        float complex y;
        rx->q.want_y = rx->state != RX_IDLE;     /* idle: the symbols go nowhere */
        if (xm_qam_rx_sample(&rx->q, amp[i], &y) && rx->state != RX_IDLE)
            rx_symbol(rx, y);
    }
    return xm_bits_end(&rx->out);
}

int xm_v17_rx_events(xm_v17_rx_t *rx, int *codes, long *bits, int max)
{
    return xm_events_take(&rx->ev, codes, bits, max);
}

int xm_v17_rx_carrier(const xm_v17_rx_t *rx) { return rx->cd.present; }

int xm_v17_rx_state(const xm_v17_rx_t *rx)
{
    switch (rx->state) {
    case RX_IDLE: return 0;
    case RX_DATA:
    case RX_SEG4: return 2;
    default: return rx->failed ? 3 : 1;
    }
}

float xm_v17_rx_signal_dbm0(const xm_v17_rx_t *rx) { return xm_mean_square_to_dbm0(rx->cd.level); }
float xm_v17_rx_mse(const xm_v17_rx_t *rx) { return rx->q.mse; }
