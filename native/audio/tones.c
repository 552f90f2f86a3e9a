/* Fax and modem connect tones: generators and a detector.
 *
 * CNG:   T.30 (1100 Hz +/- 38 Hz, 0.5 s on, 3 s off).
 * CED:   T.30 = V.25 ANS (2100 Hz +/- 15 Hz, 2.6 s to 4 s; V.25: with
 *        phase reversals every 450 ms +/- 25 ms when echo cancellers must be disabled).
 * ANSam: V.8 (ANS amplitude-modulated by a 15 Hz sine, 20% +/- 1%).
 *
 * The detector mixes the signal down at each nominal frequency and sums it over 5 ms
 * blocks (a 200 Hz wide DFT bin). Over the last 40 ms it measures the share of the
 * power in that bin ("purity"), the level, and the frequency offset from the phase
 * advance between blocks. A tone is a run of blocks where all three are in range;
 * brief dropouts (phase reversals) are tolerated. The envelope of the 2100 Hz bin gives
 * the 15 Hz AM depth (ANSam); a phase jump near 180 degrees between blocks two apart is
 * a reversal. Speech rarely keeps half of its power within a few tens of Hz of one
 * frequency for hundreds of ms, which is what rejects it. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "osc.h"
#include "tones.h"

#define BLOCK 40                  /* samples: 5 ms */
#define HIST 8                    /* blocks averaged: 40 ms */
#define EVQ 16
#define MAX_MISS 3                /* invalid blocks tolerated inside a tone (15 ms) */
#define REV_MIN_GAP 40            /* blocks (200 ms) between two reversals counted */
#define REV_CONFIRM 6             /* valid blocks after a reversal before it counts (30 ms) */
#define PI 3.141592653589793
#define TWO_PI 6.283185307179586

/* ------------------------------------------------------------------ generator */

struct xm_tone_tx {
    int tone;
    float amp;
    uint32_t phase, step;
    uint32_t am_phase, am_step;
    long long n, duration;
};

xm_tone_tx *xm_tone_tx_new(int tone, double level_dbm0, long long duration)
{
    if (tone < XM_TONE_CNG || tone > XM_TONE_ANSAM_PR)
        return NULL;
    xm_tone_tx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->tone = tone;
    double amp = xm_dbm0_to_peak(level_dbm0);
    if (tone == XM_TONE_ANSAM || tone == XM_TONE_ANSAM_PR)
        amp /= sqrt(1.0 + 0.2 * 0.2 / 2.0);    /* the AM adds 2% of power: keep the level */
    s->amp = (float) amp;
    s->step = xm_phase_step(tone == XM_TONE_CNG ? 1100.0 : 2100.0);
    s->am_step = xm_phase_step(15.0);
    if (duration > 0)
        s->duration = duration;
    else
        s->duration = tone == XM_TONE_CNG ? 0 : 33 * XM_SAMPLE_RATE / 10;
    return s;
}

void xm_tone_tx_free(xm_tone_tx *s)
{
    free(s);
}

int xm_tone_tx_run(xm_tone_tx *s, int16_t *out, int max)
{
    int i;
    int pr = s->tone == XM_TONE_ANS_PR || s->tone == XM_TONE_ANSAM_PR;
    int am = s->tone == XM_TONE_ANSAM || s->tone == XM_TONE_ANSAM_PR;
    for (i = 0; i < max; i++, s->n++) {
        if (s->duration && s->n >= s->duration)
            break;
        if (s->tone == XM_TONE_CNG) {
            /* 0.5 s on, 3 s off */
            long long pos = s->n % (35 * XM_SAMPLE_RATE / 10);
            out[i] = pos < XM_SAMPLE_RATE / 2 ? xm_sat16(s->amp * xm_sin(s->phase)) : 0;
            s->phase += s->step;
            continue;
        }
        if (pr && s->n > 0 && s->n % (45 * XM_SAMPLE_RATE / 100) == 0)
            s->phase += 0x80000000u;            /* V.25: a reversal every 450 ms */
        float v = s->amp * xm_sin(s->phase);
        if (am) {
            v *= 1.0f + 0.2f * xm_sin(s->am_phase);
            s->am_phase += s->am_step;
        }
        out[i] = xm_sat16(v);
        s->phase += s->step;
    }
    return i;
}

/* ------------------------------------------------------------------ detector */

typedef struct {
    int tone;                     /* XM_TONE_CNG, or XM_TONE_ANS for the 2100 Hz channel */
    double f0, tol;
    int min_blocks;
    uint32_t lo_phase, lo_step;
    double zr, zi;                /* the block being summed */
    double hr[HIST], hi[HIST];    /* the last HIST block sums */
    int strong[HIST];             /* the block alone looks like the tone (own purity, level) */
    long long last_strong;        /* the sample count at the end of the last such block */
    int run;                      /* blocks since the tone started (0 = none) */
    int miss;
    int active;
    int kind;                     /* the tone kind reported */
    long long start;
    double env_sum, am_re, am_im;
    int reversals, since_rev;
    int rev_pending;              /* blocks the tone must last after a candidate reversal */
    double df;
} tone_chan;

struct xm_tone_rx {
    xm_tone_rx_config cfg;
    double on_power, off_power;
    tone_chan ch[2];
    int nch;
    double e;                     /* energy of the block being summed */
    double he[HIST];
    int hpos;                     /* next history slot */
    int blocks;                   /* blocks seen (history fill) */
    int pos;                      /* samples in the current block */
    long long sample;
    xm_tone_event ev[EVQ];
    int ev_head, ev_count;
};

void xm_tone_rx_defaults(xm_tone_rx_config *c)
{
    c->detect_cng = 1;
    c->detect_ans = 1;
    c->on_dbm0 = -43.0;
    c->off_dbm0 = -48.0;
    c->cng_tol_hz = 38.0 + 7.0;   /* T.30: +/- 38 Hz, with room for the measurement */
    c->ans_tol_hz = 15.0 + 7.0;   /* V.25: +/- 15 Hz */
    c->cng_min_ms = 350;          /* bursts are 0.5 s +/- 15% */
    c->ans_min_ms = 400;          /* six periods of the 15 Hz AM */
    c->min_purity = 0.5;
}

static void chan_init(tone_chan *c, int tone, double f0, double tol, int min_ms)
{
    memset(c, 0, sizeof(*c));
    c->tone = tone;
    c->f0 = f0;
    c->tol = tol;
    c->min_blocks = (min_ms * XM_SAMPLE_RATE / 1000 + BLOCK - 1) / BLOCK;
    if (c->min_blocks < 2)
        c->min_blocks = 2;
    c->lo_step = xm_phase_step(f0);
}

xm_tone_rx *xm_tone_rx_new(const xm_tone_rx_config *c)
{
    xm_tone_rx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->cfg = *c;
    s->on_power = xm_dbm0_to_power(c->on_dbm0);
    s->off_power = xm_dbm0_to_power(c->off_dbm0);
    if (c->detect_cng)
        chan_init(&s->ch[s->nch++], XM_TONE_CNG, 1100.0, c->cng_tol_hz, c->cng_min_ms);
    if (c->detect_ans)
        chan_init(&s->ch[s->nch++], XM_TONE_ANS, 2100.0, c->ans_tol_hz, c->ans_min_ms);
    return s;
}

void xm_tone_rx_free(xm_tone_rx *s)
{
    free(s);
}

static void push(xm_tone_rx *s, const tone_chan *c, int kind, int on, double level)
{
    if (s->ev_count == EVQ) {
        s->ev_head = (s->ev_head + 1) % EVQ;
        s->ev_count--;
    }
    xm_tone_event *e = &s->ev[(s->ev_head + s->ev_count) % EVQ];
    e->tone = kind;
    e->on = on;
    e->sample = s->sample;
    e->level_dbm0 = level;
    e->freq_hz = c->f0 + c->df;
    e->am_depth = c->env_sum > 0.0 ? 2.0 * hypot(c->am_re, c->am_im) / c->env_sum : 0.0;
    long long end = on ? s->sample : c->last_strong;
    e->duration_ms = (double) (end - c->start) * 1000.0 / XM_SAMPLE_RATE;
    s->ev_count++;
}

static double wrap(double a)
{
    while (a > PI)
        a -= TWO_PI;
    while (a < -PI)
        a += TWO_PI;
    return a;
}

static void end_block(xm_tone_rx *s)
{
    int slot = s->hpos;
    s->he[slot] = s->e;
    s->hpos = (s->hpos + 1) % HIST;
    if (s->blocks < HIST)
        s->blocks++;
    double pe = 0.0;
    for (int k = 0; k < HIST; k++)
        pe += s->he[k];
    double power = pe / (HIST * BLOCK);
    double level = xm_power_to_dbm0(power);

    for (int n = 0; n < s->nch; n++) {
        tone_chan *c = &s->ch[n];
        int prev = (slot + HIST - 1) % HIST, prev2 = (slot + HIST - 2) % HIST;
        c->hr[slot] = c->zr;
        c->hi[slot] = c->zi;
        c->zr = c->zi = 0.0;
        double pz = 0.0, cr = 0.0, ci = 0.0;
        for (int k = 0; k < HIST; k++) {
            pz += c->hr[k] * c->hr[k] + c->hi[k] * c->hi[k];
            if (k != s->hpos) {       /* pairs (k-1, k) inside the window */
                int j = (k + HIST - 1) % HIST;
                cr += c->hr[k] * c->hr[j] + c->hi[k] * c->hi[j];
                ci += c->hi[k] * c->hr[j] - c->hr[k] * c->hi[j];
            }
        }
        double purity = pe > 0.0 ? 2.0 * pz / (BLOCK * pe) : 0.0;
        /* the block on its own, to place the tone's edges to within 5 ms */
        double zb = c->hr[slot] * c->hr[slot] + c->hi[slot] * c->hi[slot];
        c->strong[slot] = s->he[slot] > 0.0 && 2.0 * zb / (BLOCK * s->he[slot]) >= s->cfg.min_purity
                          && s->he[slot] / BLOCK >= s->off_power;
        if (c->strong[slot])
            c->last_strong = s->sample;
        double step = atan2(ci, cr);                  /* phase advance per block */
        double df = step * XM_SAMPLE_RATE / (TWO_PI * BLOCK);
        double need = c->active ? s->off_power : s->on_power;
        int valid = s->blocks == HIST && purity >= s->cfg.min_purity && power >= need
                    && fabs(df) <= c->tol;
        if (valid) {
            c->miss = 0;
            c->df = df;
        } else if (c->run && ++c->miss <= MAX_MISS) {
            valid = -1;                               /* a tolerated dropout */
        }
        if (valid < 0)
            c->rev_pending = 0;       /* a dropout right after a jump: the tone ending? */
        if (!valid) {
            if (c->active)
                push(s, c, c->kind, 0, level);
            c->run = 0;
            c->miss = 0;
            c->active = 0;
            continue;
        }
        if (c->run == 0) {
            /* the tone began with the run of strong blocks that ends here */
            int back = 0;
            while (back < s->blocks && c->strong[(slot + HIST - back) % HIST])
                back++;
            c->start = s->sample - (long long) (back > 0 ? back : 1) * BLOCK;
            c->env_sum = c->am_re = c->am_im = 0.0;
            c->reversals = 0;
            c->rev_pending = 0;
            c->since_rev = REV_MIN_GAP;
            c->kind = c->tone;
        }
        /* the envelope's 15 Hz component (V.8 ANSam), 200 blocks a second */
        double env = hypot(c->hr[slot], c->hi[slot]);
        double th = TWO_PI * 15.0 * BLOCK / XM_SAMPLE_RATE * c->run;
        c->env_sum += env;
        c->am_re += env * cos(th);
        c->am_im -= env * sin(th);
        /* a phase reversal: the phase two blocks apart is off by ~180 degrees from
         * what the frequency offset explains, both blocks at full strength, and the tone
         * goes on afterwards (a tone's end also scrambles the phase) */
        if (c->rev_pending && valid > 0 && --c->rev_pending == 0)
            c->reversals++;
        if (c->run >= 2 && c->tone == XM_TONE_ANS && c->since_rev >= REV_MIN_GAP) {
            double mean = c->env_sum / (c->run + 1);
            double rr = c->hr[slot] * c->hr[prev2] + c->hi[slot] * c->hi[prev2];
            double ri = c->hi[slot] * c->hr[prev2] - c->hr[slot] * c->hi[prev2];
            double dev = wrap(atan2(ri, rr) - 2.0 * TWO_PI * c->df * BLOCK / XM_SAMPLE_RATE);
            double m2 = hypot(c->hr[prev2], c->hi[prev2]);
            if (fabs(dev) > 2.0 && env > 0.5 * mean && m2 > 0.5 * mean) {
                c->rev_pending = REV_CONFIRM;
                c->since_rev = 0;
            }
        }
        (void) prev;
        c->since_rev++;
        c->run++;
        if (!c->active && c->run >= c->min_blocks && valid > 0) {
            c->active = 1;
            if (c->tone == XM_TONE_ANS) {
                double depth = c->env_sum > 0.0 ? 2.0 * hypot(c->am_re, c->am_im) / c->env_sum : 0.0;
                c->kind = depth >= 0.1 ? XM_TONE_ANSAM : XM_TONE_ANS;
                if (c->reversals)
                    c->kind++;                        /* ANS_PR, ANSAM_PR */
            }
            push(s, c, c->kind, 1, level);
        } else if (c->active && c->tone == XM_TONE_ANS && c->reversals
                   && (c->kind == XM_TONE_ANS || c->kind == XM_TONE_ANSAM)) {
            c->kind++;                                /* the first reversal heard */
            push(s, c, c->kind, 1, level);
        }
    }
    s->e = 0.0;
}

int xm_tone_rx_run(xm_tone_rx *s, const int16_t *amp, int len)
{
    int i;
    for (i = 0; i < len; i++) {
        if (s->pos == 0 && s->ev_count > EVQ - 2 * s->nch)
            break;                                    /* the caller must take events */
        if (amp[i] == 0) {
            /* adding the zero products changes no sum (they start each block at +0, and
             * a sum that cancels to zero is +0), so only the oscillators move */
            for (int n = 0; n < s->nch; n++)
                s->ch[n].lo_phase += s->ch[n].lo_step;
        } else {
            double x = amp[i];
            s->e += x * x;
            for (int n = 0; n < s->nch; n++) {
                tone_chan *c = &s->ch[n];
                c->zr += x * xm_cos(c->lo_phase);
                c->zi -= x * xm_sin(c->lo_phase);
                c->lo_phase += c->lo_step;
            }
        }
        s->sample++;
        if (++s->pos == BLOCK) {
            s->pos = 0;
            end_block(s);
        }
    }
    return i;
}

int xm_tone_rx_pending(const xm_tone_rx *s)
{
    return s->ev_count;
}

int xm_tone_rx_next(xm_tone_rx *s, xm_tone_event *ev)
{
    if (!s->ev_count)
        return 0;
    *ev = s->ev[s->ev_head];
    s->ev_head = (s->ev_head + 1) % EVQ;
    s->ev_count--;
    return 1;
}
