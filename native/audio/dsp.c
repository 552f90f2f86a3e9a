/* Shared PSK/QAM modem blocks; see dsp.h. */
#include "dsp.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

float xm_dbm0_to_mean_square(float dbm0)
{
    return XM_DBM0_MEAN_SQUARE * powf(10.0f, dbm0 / 10.0f);
}

float xm_mean_square_to_dbm0(float ms)
{
    if (ms <= 1e-9f)
        return -200.0f;
    return 10.0f * log10f(ms / XM_DBM0_MEAN_SQUARE);
}

void xm_cd_init(xm_carrier_detect_t *cd, float on_dbm0, float off_dbm0)
{
    cd->level = 0.0f;
    /* ~5 ms time constant: a 20 ms gap of silence drops the carrier (in the data phase the
     * PSK/QAM receivers hold through it: hold.h) */
    cd->alpha = 1.0f / 40.0f;
    cd->on_ms = xm_dbm0_to_mean_square(on_dbm0);
    cd->off_ms = xm_dbm0_to_mean_square(off_dbm0);
    cd->present = 0;
}

double xm_rrc(double t, double beta)
{
    /* Root raised cosine, symbol period 1. */
    double at = fabs(t);
    if (at < 1e-9)
        return 1.0 - beta + 4.0 * beta / M_PI;
    if (beta > 0.0 && fabs(at - 1.0 / (4.0 * beta)) < 1e-9) {
        return beta / sqrt(2.0) * ((1.0 + 2.0 / M_PI) * sin(M_PI / (4.0 * beta))
                                   + (1.0 - 2.0 / M_PI) * cos(M_PI / (4.0 * beta)));
    }
    double num = sin(M_PI * t * (1.0 - beta)) + 4.0 * beta * t * cos(M_PI * t * (1.0 + beta));
    double den = M_PI * t * (1.0 - 16.0 * beta * beta * t * t);
    return num / den;
}

static int gcd(int a, int b)
{
    while (b) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* ---------------- transmitter ---------------- */

static float shaper_energy(const xm_shaper_t *s)
{
    double e = 0.0;
    for (int p = 0; p < s->phases; p++)
        for (int i = 0; i < XM_TX_SPAN; i++)
            e += (double) s->h[p][i] * s->h[p][i];
    return (float) (e / s->phases);
}

void xm_shaper_init(xm_shaper_t *s, int baud, double beta, double carrier, float dbm0)
{
    memset(s, 0, sizeof(*s));
    s->baud = baud;
    s->phases = XM_SAMPLE_RATE / gcd(baud, XM_SAMPLE_RATE);
    if (s->phases > XM_TX_MAX_PHASES)
        s->phases = XM_TX_MAX_PHASES;
    for (int p = 0; p < s->phases; p++)
        for (int i = 0; i < XM_TX_SPAN; i++)
            s->h[p][i] = (float) xm_rrc((double) p / s->phases + i - XM_TX_SPAN / 2, beta);
    s->acc = XM_SAMPLE_RATE;   /* the first sample needs a symbol */
    s->rot = 1.0f;
    s->step = (float complex) cexp(I * 2.0 * M_PI * carrier / XM_SAMPLE_RATE);
    xm_shaper_set_level(s, dbm0);
}

void xm_shaper_set_level(xm_shaper_t *s, float dbm0)
{
    /* passband power = 0.5 * gain^2 * E|a|^2 * mean pulse energy per sample */
    float ms = xm_dbm0_to_mean_square(dbm0);
    s->gain = sqrtf(ms / (0.5f * shaper_energy(s)));
}

void xm_shaper_push(xm_shaper_t *s, float complex symbol)
{
    memmove(&s->sym[0], &s->sym[1], (XM_TX_SPAN - 1) * sizeof(s->sym[0]));
    s->sym[XM_TX_SPAN - 1] = symbol;
    s->acc -= XM_SAMPLE_RATE;
}

float xm_shaper_sample(xm_shaper_t *s)
{
    int p = s->acc * s->phases / XM_SAMPLE_RATE;
    const float *h = s->h[p];
    float complex v = 0.0f;
    /* the newest symbol (index SPAN-1) has age 0 */
    for (int i = 0; i < XM_TX_SPAN; i++)
        v += s->sym[XM_TX_SPAN - 1 - i] * h[i];
    float out = crealf(v * s->rot) * s->gain;
    s->rot *= s->step;
    if (++s->rot_count >= 256) {
        s->rot /= cabsf(s->rot);
        s->rot_count = 0;
    }
    s->acc += s->baud;
    return out;
}

/* The carrier rotation after a sample. */
static void shaper_rotate(xm_shaper_t *s)
{
    s->rot *= s->step;
    if (++s->rot_count >= 256) {
        s->rot /= cabsf(s->rot);
        s->rot_count = 0;
    }
}

/* Two samples in a row with no new symbol between them, as two xm_shaper_sample calls
 * give them: the two sums side by side (each in its own order), then each sample. */
static void shaper_sample2(xm_shaper_t *s, float *o1, float *o2)
{
    const float *h1 = s->h[s->acc * s->phases / XM_SAMPLE_RATE];
    const float *h2 = s->h[(s->acc + s->baud) * s->phases / XM_SAMPLE_RATE];
    float complex v1 = 0.0f, v2 = 0.0f;
    for (int i = 0; i < XM_TX_SPAN; i++) {
        float complex a = s->sym[XM_TX_SPAN - 1 - i];
        v1 += a * h1[i];
        v2 += a * h2[i];
    }
    *o1 = crealf(v1 * s->rot) * s->gain;
    shaper_rotate(s);
    *o2 = crealf(v2 * s->rot) * s->gain;
    shaper_rotate(s);
    s->acc += 2 * s->baud;
}

static int16_t shaper_out(float v)
{
    if (v > 32767.0f) v = 32767.0f;
    if (v < -32768.0f) v = -32768.0f;
    return (int16_t) lrintf(v);
}

int xm_shaper_generate(xm_shaper_t *s, float complex (*symbol)(void *ctx), void *ctx,
                       const int *done, int16_t *out, int n)
{
    int signal = 0;
    for (int i = 0; i < n; i++) {
        if (*done) {
            out[i] = 0;
            continue;
        }
        while (xm_shaper_needs_symbol(s))
            xm_shaper_push(s, symbol(ctx));
        if (i + 1 < n && s->acc + s->baud < XM_SAMPLE_RATE) {
            /* the next sample needs no symbol (so nothing can end before it) */
            float v1, v2;
            shaper_sample2(s, &v1, &v2);
            out[i] = shaper_out(v1);
            out[i + 1] = shaper_out(v2);
            signal = i + 2;
            i++;
            continue;
        }
        out[i] = shaper_out(xm_shaper_sample(s));
        signal = i + 1;
    }
    return signal;
}

int xm_txq_init(xm_txq_t *q)
{
    memset(q, 0, sizeof(*q));
    q->buf = malloc(XM_TXQ_BITS);
    return q->buf ? 0 : -1;
}

void xm_txq_free(xm_txq_t *q)
{
    free(q->buf);
    q->buf = NULL;
}

int xm_txq_put(xm_txq_t *q, const uint8_t *bits, int n)
{
    int room = XM_TXQ_BITS - q->len;
    if (q->finishing || n <= 0)
        return 0;
    if (n > room)
        n = room;
    for (int i = 0; i < n; i++)
        q->buf[(q->head + q->len + i) % XM_TXQ_BITS] = bits[i] & 1;
    q->len += n;
    return n;
}

int xm_txq_next(xm_txq_t *q, int data)
{
    if (!data || q->len == 0)
        return 1;
    int b = q->buf[q->head];
    q->head = (q->head + 1) % XM_TXQ_BITS;
    q->len--;
    return b;
}

/* ---------------- receiver ---------------- */

static void mid_flush(xm_qam_rx_t *r);

/* The T/2 instant at t_next has its whole filter window when t_next + D + 1 <= n - 1
 * (that sum in double, as the test was written); n - 1 is an integer, so that is
 * n - 1 >= ceil(sum): one integer compare a sample.  NaN or huge: never. */
static void set_due(xm_qam_rx_t *r)
{
    double t = r->t_next + r->half_span + 1.0;
    r->due = (t < 9.0e18) ? (long) ceil(t) : LONG_MAX;
}

void xm_qam_rx_init(xm_qam_rx_t *r, int baud, double beta, double carrier, int eq_len,
                    float target_rms)
{
    memset(r, 0, sizeof(*r));
    r->sps = (double) XM_SAMPLE_RATE / baud;
    /* a smaller roll-off has longer tails: keep more of them when they fit */
    r->half_span = (float) ((beta < 0.4 && 12.0 * r->sps + 2 <= XM_MF_MAX_TAPS ? 6.0 : 4.0) * r->sps);
    r->ntaps = (int) floor(2.0 * r->half_span) + 2;
    if (r->ntaps > XM_MF_MAX_TAPS) {
        r->ntaps = XM_MF_MAX_TAPS;
        r->half_span = (float) ((XM_MF_MAX_TAPS - 2) / 2);
    }
    /* h[p][i] = rrc((p/P - D + i)/sps) / E, E = sum of squares at integer
     * offsets, so a symbol a_k from a matched transmitter comes out as a_k/2 */
    double e = 0.0;
    for (int m = -(int) r->half_span; m <= (int) r->half_span; m++) {
        double v = xm_rrc(m / r->sps, beta);
        e += v * v;
    }
    r->mf_energy = e;
    for (int p = 0; p <= XM_MF_PHASES; p++)
        for (int i = 0; i < r->ntaps; i++) {
            double tau = (double) p / XM_MF_PHASES - r->half_span + i;
            r->h[p][2 * i] = r->h[p][2 * i + 1] =
                (fabs(tau) <= r->half_span) ? (float) (xm_rrc(tau / r->sps, beta) / e) : 0.0f;
        }
    r->step = (float complex) cexp(-I * 2.0 * M_PI * carrier / XM_SAMPLE_RATE);
    r->eq_len = eq_len > XM_EQ_MAX ? XM_EQ_MAX : eq_len;
    r->target_rms = target_rms;
    r->want_y = 1;
    xm_qam_rx_set_gains(r, 0.05f, 0.15f, 0.004f, 0.02f, 0.0005f);
    xm_qam_rx_reset(r);
}

void xm_qam_rx_set_gains(xm_qam_rx_t *r, float eq_mu, float pll_a, float pll_b,
                         float timing_gain, float timing_int_gain)
{
    r->eq_mu = eq_mu;
    r->pll_a = pll_a;
    r->pll_b = pll_b;
    r->timing_gain = timing_gain;
    r->timing_int_gain = timing_int_gain;
}

void xm_qam_rx_reset(xm_qam_rx_t *r)
{
    r->mid_pending = 0;             /* everything it would feed is cleared below */
    r->rot = 1.0f;
    r->rot_count = 0;
    memset(r->ring, 0, sizeof(r->ring));
    r->n = 0;
    r->t_next = r->half_span + r->sps / 2.0;
    set_due(r);
    r->parity = 1;
    r->gain = 0.0f;
    memset(r->eq_buf, 0, sizeof(r->eq_buf));
    r->eq_pos = 0;
    xm_qam_rx_relearn(r);           /* the ring is empty: the AGC starts from no power */
}

void xm_qam_rx_relearn(xm_qam_rx_t *r)
{
    mid_flush(r);                   /* what it would have done on time, before the reset */
    r->prev_sym = r->mid = 0.0f;
    r->timing_int = 0.0f;
    double p = 0.0;
    for (int i = 1; i <= 24; i++) {
        float complex z = r->ring[(int) ((r->n - i) % XM_RING) + XM_RING];
        p += (double) (crealf(z) * crealf(z) + cimagf(z) * cimagf(z));
    }
    r->power = (float) (p / 24.0);
    r->agc_alpha = 1.0f / 64.0f;
    r->agc_frozen = 0;
    memset(r->eq, 0, sizeof(r->eq));
    r->eq[r->eq_len / 2] = 1.0f;
    r->eq_power = r->target_rms * r->target_rms;
    r->theta = r->freq = 0.0f;
    r->derot = 1.0f;
    r->mse = 1.0f;
    r->mse_alpha = 0.1f;
}

/* remainderf(x, 2 pi) without the call: when pi < |x| < 2 pi the remainder is x -+ 2 pi,
 * and that subtraction is exact (Sterbenz: x within a factor 2 of 2 pi), so the same
 * float; |x| = pi stays (the quotient 0.5 rounds to the even 0), as remainderf leaves it. */
static float wrap_2pi(float x)
{
    const float y = (float) (2.0 * M_PI);
    float ax = fabsf(x);
    if (ax <= 0.5f * y)
        return x;
    if (ax < y)
        return x > 0.0f ? x - y : x + y;
    return remainderf(x, y);
}

/* e^{-j theta} as cexpf(-I * theta) gives it for |theta| <= pi: (cosf, -sinf) (glibc's
 * cexpf multiplies them by expf(0) = 1; checked equal on every float in [-4, 4]). */
static float complex expj_neg(float theta)
{
    float complex z;
    float *p = (float *) &z;
    p[0] = cosf(theta);
    p[1] = -sinf(theta);
    return z;
}

void xm_qam_rx_rotate(xm_qam_rx_t *r, float phi)
{
    r->theta += phi;
    r->theta = wrap_2pi(r->theta);
    r->derot = expj_neg(r->theta);
}

/* Where the matched filter's window for time t starts in the ring, and its phase. */
static const float *mf_where(const xm_qam_rx_t *r, double t, int *base)
{
    double start = t + r->half_span;
    long m0 = (long) start;         /* floor(start), without a call into libm */
    if ((double) m0 > start)
        m0--;
    int p = (int) ((start - m0) * XM_MF_PHASES + 0.5);
    *base = (int) (m0 % XM_RING) + XM_RING;
    return r->h[p];
}

/* The sums below keep the scalar code's order, tap after tap; SIMD only puts the real
 * and imaginary parts (and the two instants of mf_output2) side by side in one register,
 * lane by lane the same IEEE operations: the same result to the bit. */
static float complex mf_output(const xm_qam_rx_t *r, double t)
{
    int base;
    const float *h = mf_where(r, t, &base);
#ifdef __SSE2__
    const double *x = (const double *) &r->ring[base], *g = (const double *) h;
    const double *end = g + r->ntaps;
    __m128 acc = _mm_setzero_ps();
#pragma GCC unroll 4
    for (; g < end; g++, x--)
        acc = _mm_add_ps(acc, _mm_mul_ps(_mm_castpd_ps(_mm_load_sd(x)),
                                         _mm_castpd_ps(_mm_load_sd(g))));
    float complex o;
    _mm_storel_pi((__m64 *) &o, acc);
    return o;
#else
    float complex acc = 0.0f;
    for (int i = 0; i < r->ntaps; i++)
        acc += r->ring[base - i] * h[2 * i];
    return acc;
#endif
}

/* mf_output at two times at once: each sum in the same order as mf_output's (the same
 * result to the bit), the two side by side so neither waits on the other's additions. */
static void mf_output2(const xm_qam_rx_t *r, double t1, double t2, float complex *o1,
                       float complex *o2)
{
    int b1, b2;
    const float *h1 = mf_where(r, t1, &b1), *h2 = mf_where(r, t2, &b2);
#ifdef __SSE2__
    const double *x1 = (const double *) &r->ring[b1], *x2 = (const double *) &r->ring[b2];
    const double *g1 = (const double *) h1, *g2 = (const double *) h2;
    const double *end = g1 + r->ntaps;
    __m128 acc = _mm_setzero_ps();
#pragma GCC unroll 4
    for (; g1 < end; g1++, g2++, x1--, x2--) {
        __m128 v = _mm_castpd_ps(_mm_loadh_pd(_mm_load_sd(x1), x2));
        __m128 g = _mm_castpd_ps(_mm_loadh_pd(_mm_load_sd(g1), g2));
        acc = _mm_add_ps(acc, _mm_mul_ps(v, g));
    }
    _mm_storel_pi((__m64 *) o1, acc);
    _mm_storeh_pi((__m64 *) o2, acc);
#else
    float complex a1 = 0.0f, a2 = 0.0f;
    for (int i = 0; i < r->ntaps; i++) {
        a1 += r->ring[b1 - i] * h1[2 * i];
        a2 += r->ring[b2 - i] * h2[2 * i];
    }
    *o1 = a1;
    *o2 = a2;
#endif
}

/* A T/2 sample into the equaliser's delay line. */
static void eq_push(xm_qam_rx_t *r, float complex v)
{
    int ep = r->eq_pos;
    r->eq_buf[ep] = r->eq_buf[ep + r->eq_len] = v;
    r->eq_pos = (ep + 1) % r->eq_len;
    r->eq_power += 0.01f * (crealf(v) * crealf(v) + cimagf(v) * cimagf(v) - r->eq_power);
}

/* The waiting mid-symbol instant, filtered alone (before anything else reads the
 * equaliser line or the Gardner state). */
static void mid_flush(xm_qam_rx_t *r)
{
    if (!r->mid_pending)
        return;
    r->mid_pending = 0;
    float complex v = mf_output(r, r->mid_t) * r->mid_gain;
    eq_push(r, v);
    r->mid = v;
}

/* The equaliser's output, newest sample at eq_pos-1: sum of eq[i] * eq_buf[newest-i],
 * i = 0, 1, ... in that order.  With SSE2 the products of two taps are made at once
 * (each lane the scalar product's own IEEE operations: a*c + -(b*d) is a*c - b*d, and
 * a*d + b*c in either order), then added to the sum one tap after the other. */
static float complex eq_output(const xm_qam_rx_t *r)
{
    int n = r->eq_len;
    const float complex *e = r->eq, *b = &r->eq_buf[r->eq_pos - 1 + n];
#ifdef __SSE2__
    const __m128 flip = _mm_castsi128_ps(_mm_set_epi32(0, (int) 0x80000000u, 0, (int) 0x80000000u));
    __m128 acc = _mm_setzero_ps();
    int i = 0;
    for (; i + 2 <= n; i += 2) {
        __m128 a = _mm_loadu_ps((const float *) (e + i));                 /* ar0 ai0 ar1 ai1 */
        __m128 x = _mm_loadu_ps((const float *) (b - i - 1));             /* br1 bi1 br0 bi0 */
        x = _mm_shuffle_ps(x, x, _MM_SHUFFLE(1, 0, 3, 2));              /* br0 bi0 br1 bi1 */
        __m128 ar = _mm_shuffle_ps(a, a, _MM_SHUFFLE(2, 2, 0, 0));
        __m128 ai = _mm_shuffle_ps(a, a, _MM_SHUFFLE(3, 3, 1, 1));
        __m128 xs = _mm_shuffle_ps(x, x, _MM_SHUFFLE(2, 3, 0, 1));      /* bi0 br0 bi1 br1 */
        __m128 p = _mm_add_ps(_mm_mul_ps(ar, x), _mm_xor_ps(_mm_mul_ps(ai, xs), flip));
        acc = _mm_add_ps(acc, p);
        acc = _mm_add_ps(acc, _mm_movehl_ps(p, p));
    }
    float complex out;
    _mm_storel_pi((__m64 *) &out, acc);
    if (i < n)
        out += e[i] * b[-i];
    return out;
#else
    float complex acc = 0.0f;
    for (int i = 0; i < n; i++)
        acc += e[i] * b[-i];
    return acc;
#endif
}

/* eq[i] += g * conj(eq_buf[newest-i]) for every tap (each tap on its own: SSE2 does two
 * at once, lane by lane the scalar IEEE operations, as in eq_output). */
static void eq_update(xm_qam_rx_t *r, float complex g)
{
    int n = r->eq_len;
    float complex *e = r->eq;
    const float complex *b = &r->eq_buf[r->eq_pos - 1 + n];
#ifdef __SSE2__
    const __m128 flip = _mm_castsi128_ps(_mm_set_epi32((int) 0x80000000u, 0, (int) 0x80000000u, 0));
    float gg[4] = {crealf(g), cimagf(g), crealf(g), cimagf(g)};
    __m128 gv = _mm_loadu_ps(gg);                                        /* gr gi gr gi */
    __m128 gs = _mm_shuffle_ps(gv, gv, _MM_SHUFFLE(2, 3, 0, 1));        /* gi gr gi gr */
    int i = 0;
    for (; i + 2 <= n; i += 2) {
        __m128 x = _mm_loadu_ps((const float *) (b - i - 1));             /* br1 bi1 br0 bi0 */
        __m128 br = _mm_shuffle_ps(x, x, _MM_SHUFFLE(0, 0, 2, 2));      /* br0 br0 br1 br1 */
        __m128 bi = _mm_shuffle_ps(x, x, _MM_SHUFFLE(1, 1, 3, 3));      /* bi0 bi0 bi1 bi1 */
        /* (gr*br + gi*bi, gi*br + -(gr*bi)) = g * conj(b) */
        __m128 p = _mm_add_ps(_mm_mul_ps(gv, br), _mm_xor_ps(_mm_mul_ps(gs, bi), flip));
        float *ei = (float *) (e + i);
        _mm_storeu_ps(ei, _mm_add_ps(_mm_loadu_ps(ei), p));
    }
    if (i < n)
        e[i] += g * conjf(b[-i]);
#else
    for (int i = 0; i < n; i++)
        e[i] += g * conjf(b[-i]);
#endif
}

int xm_qam_rx_sample(xm_qam_rx_t *r, int16_t x, float complex *y)
{
    float xf = (float) x;
    if (!r->agc_frozen)
        r->power += r->agc_alpha * (xf * xf - r->power);
    float complex z = xf * r->rot;
    r->rot *= r->step;
    if (++r->rot_count >= 128) {
        r->rot /= cabsf(r->rot);
        r->rot_count = 0;
    }
    int slot = (int) (r->n % XM_RING);
    r->ring[slot] = r->ring[slot + XM_RING] = z;
    r->n++;
    int ready = 0;
    /* every T/2 instant whose filter window is complete */
    while (r->n - 1 >= r->due) {
        if (!r->agc_frozen) {
            double ms = r->power;
            /* see xm_qam_rx_init: a matched symbol a comes out as a/2 and
             * the mean square of the line is 0.5 E|a|^2 E / sps */
            r->gain = (ms > 1.0) ? (float) (r->target_rms / (0.5 * sqrt(2.0 * r->sps * ms / r->mf_energy)))
                                 : 0.0f;
        }
        double step = r->sps / 2.0;
        if (r->parity) {
            float complex v;
            if (r->mid_pending) {
                /* the mid instant, then this one, as if each were filtered on time */
                float complex vm, vs;
                mf_output2(r, r->mid_t, r->t_next, &vm, &vs);
                r->mid_pending = 0;
                vm *= r->mid_gain;
                eq_push(r, vm);
                r->mid = vm;
                v = vs * r->gain;
            } else {
                v = mf_output(r, r->t_next) * r->gain;
            }
            eq_push(r, v);
            /* symbol instant: Gardner on the raw matched-filter output */
            float p2 = r->target_rms * r->target_rms;
            float e = crealf(conjf(r->mid) * (r->prev_sym - v)) / p2;
            if (e > 1.0f) e = 1.0f;
            if (e < -1.0f) e = -1.0f;
            r->timing_int += r->timing_int_gain * e;
            step += (r->timing_gain * e + r->timing_int) * r->sps;
            r->prev_sym = v;
            if (r->want_y)
                *y = eq_output(r) * r->derot;
            ready = 1;
        } else {
            mid_flush(r);               /* (never two mids in a row; kept exact if so) */
            r->mid_pending = 1;
            r->mid_t = r->t_next;
            r->mid_gain = r->gain;
        }
        r->parity ^= 1;
        r->t_next += step;
        set_due(r);
    }
    /* the caller adapts on the symbol now: a mid after it in this same sample goes in first */
    if (ready)
        mid_flush(r);
    return ready;
}

void xm_qam_rx_adapt(xm_qam_rx_t *r, float complex y, float complex d, int adapt_eq)
{
    float complex err = d - y;
    float p2 = r->target_rms * r->target_rms;
    float e2 = (crealf(err) * crealf(err) + cimagf(err) * cimagf(err)) / p2;
    r->mse += r->mse_alpha * (e2 - r->mse);
    if (adapt_eq) {
        float complex g = err * conjf(r->derot) * (r->eq_mu / (r->eq_len * (r->eq_power + 1e-6f)));
        eq_update(r, g);
    }
    float dd = crealf(d) * crealf(d) + cimagf(d) * cimagf(d);
    if (dd > 1e-9f) {
        float pe = cimagf(y * conjf(d)) / dd;
        if (pe > 0.5f) pe = 0.5f;
        if (pe < -0.5f) pe = -0.5f;
        r->freq += r->pll_b * pe;
        r->theta += r->pll_a * pe + r->freq;
    } else {
        r->theta += r->freq;
    }
    r->theta = wrap_2pi(r->theta);
    r->derot = expj_neg(r->theta);
}

/* ---------------- the A B alternation ---------------- */

void xm_abab_init(xm_abab_t *s, float complex a, float complex b, int abab_limit)
{
    memset(s, 0, sizeof(*s));
    s->a = a;
    s->b = b;
    s->abab_limit = abab_limit;
}

void xm_abab_start(xm_abab_t *s)
{
    s->found = 0;
    s->symbols = 0;
    s->tries = 0;
    s->matched = 0;
    s->even = s->odd = 0.0f;
}

/* The alternation seen for a while: which of the alternating points is A, and
 * the rotation that puts A where it belongs. */
static int abab_identify(xm_abab_t *s, xm_qam_rx_t *r)
{
    float complex e = s->even / XM_ABAB_AVERAGE * 2.0f, o = s->odd / XM_ABAB_AVERAGE * 2.0f;
    float complex want = s->b / s->a;
    float d1 = 1e9f, d2 = 1e9f;
    if (cabsf(e) > 1e-3f && cabsf(o) > 1e-3f) {
        /* even is A, or odd is A */
        d1 = cabsf(o / e - want) / cabsf(want);
        d2 = cabsf(e / o - want) / cabsf(want);
    }
    /* one hypothesis must fit clearly better than the other; the fit itself
     * may be loose, as line distortion weighs the carrier line and the
     * alternation's (carrier ± baud/2) differently */
    float best = d1 < d2 ? d1 : d2, other = d1 < d2 ? d2 : d1;
    if (best > 0.8f || best > 0.5f * other) {
        /* not the alternation (yet; an echo protection tone, silence): look again */
        s->matched = 0;
        s->tries++;
        int gave_up = s->tries * XM_ABAB_AVERAGE > XM_ABAB_SEARCH_LIMIT;
        s->even = s->odd = 0.0f;
        s->symbols = XM_ABAB_SETTLE;
        return gave_up ? XM_ABAB_GAVE_UP : XM_ABAB_MORE;
    }
    float complex a = d1 < d2 ? e : o;
    int parity = d1 < d2 ? 0 : 1;
    /* accept on two windows in a row that agree (the first may straddle the
     * start of the alternation); A turning from one to the next is a carrier
     * frequency offset (V.29 allows the receiver to see up to ±7 Hz, about
     * 25° a window) */
    float complex prev = s->last_a;
    float turn = cargf(a * conjf(prev));
    int agree = s->matched && parity == s->a_parity
        && fabsf(cabsf(a) - cabsf(prev)) < 0.25f * cabsf(a) && fabsf(turn) < 0.8f;
    s->matched = 1;
    s->a_parity = parity;
    s->last_a = a;
    s->even = s->odd = 0.0f;
    s->symbols = XM_ABAB_SETTLE;
    if (!agree)
        return XM_ABAB_MORE;
    /* rotate A (as it is now, half a window after the middle of the last
     * one) onto its place, start the carrier loop at the offset, scale A */
    float per_symbol = turn / XM_ABAB_AVERAGE;
    float alpha = cargf(a) + per_symbol * (XM_ABAB_AVERAGE / 2 + 1);
    xm_qam_rx_rotate(r, alpha - cargf(s->a));
    r->freq = per_symbol;
    r->gain *= cabsf(s->a) / cabsf(a);
    r->agc_frozen = 1;
    s->flips = 0;
    s->found = 1;
    xm_qam_rx_set_gains(r, 0.25f, 0.1f, 0.002f, 0.01f, 0.00005f);   /* fast, for what follows */
    return XM_ABAB_MORE;
}

int xm_abab_symbol(xm_abab_t *s, xm_qam_rx_t *r, float complex y)
{
    int slot = s->symbols & 1;
    s->symbols++;
    if (!s->found) {
        /* timing settles on the alternations; nothing else learns yet */
        xm_qam_rx_adapt(r, y, y, 0);
        if (s->symbols > XM_ABAB_SETTLE) {
            if (slot)
                s->odd += y;
            else
                s->even += y;
            if (s->symbols == XM_ABAB_SETTLE + XM_ABAB_AVERAGE)
                return abab_identify(s, r);
        }
        return XM_ABAB_MORE;
    }
    float complex want = (slot == s->a_parity) ? s->a : s->b;
    float complex dw = y - want, df = y + want;
    if (crealf(df) * crealf(df) + cimagf(df) * cimagf(df)
        < crealf(dw) * crealf(dw) + cimagf(dw) * cimagf(dw)) {
        /* the next segment starts C D C = -A -B -A */
        if (++s->flips == 3)
            return XM_ABAB_END;
    } else {
        /* carrier phase only: the alternations excite three frequencies,
         * an equaliser trained on them would be wrong everywhere else */
        s->flips = 0;
        xm_qam_rx_adapt(r, y, want, 0);
    }
    return s->symbols > s->abab_limit ? XM_ABAB_FAILED : XM_ABAB_MORE;
}

/* ---------------- events ---------------- */

void xm_events_push(xm_events_t *ev, int code, long bit)
{
    if (ev->n >= XM_EV_MAX) {
        /* keep the newest: drop the oldest */
        memmove(&ev->code[0], &ev->code[1], (XM_EV_MAX - 1) * sizeof(int));
        memmove(&ev->bit[0], &ev->bit[1], (XM_EV_MAX - 1) * sizeof(long));
        ev->n = XM_EV_MAX - 1;
    }
    ev->code[ev->n] = code;
    ev->bit[ev->n] = bit;
    ev->n++;
}

int xm_events_take(xm_events_t *ev, int *codes, long *bits, int max)
{
    int n = ev->n < max ? ev->n : max;
    for (int i = 0; i < n; i++) {
        codes[i] = ev->code[i];
        bits[i] = ev->bit[i];
    }
    memmove(&ev->code[0], &ev->code[n], (ev->n - n) * sizeof(int));
    memmove(&ev->bit[0], &ev->bit[n], (ev->n - n) * sizeof(long));
    ev->n -= n;
    return n;
}
