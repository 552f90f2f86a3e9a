/* Small shared DSP helpers of the audio blocks: phase-accumulator oscillators and levels.
 *
 * Phases are 32-bit unsigned (a full turn is 2^32), so they wrap for free; a sine is
 * read from the shared table with linear interpolation (about -100 dB of error). */
#ifndef XMFAX_OSC_H
#define XMFAX_OSC_H
#include <math.h>
#include <stdint.h>
#include "sine_table.h"

#ifndef XM_SAMPLE_RATE
#define XM_SAMPLE_RATE 8000
#endif
#define XM_FULL_SCALE_DBM0 3.14   /* G.711: a full-scale sine is +3.14 dBm0 */

/* The phase step of a frequency in Hz. */
static inline uint32_t xm_phase_step(double hz)
{
    double turns = hz / XM_SAMPLE_RATE;
    turns -= floor(turns);
    return (uint32_t) (turns * 4294967296.0);
}

/* sin(2 pi phase / 2^32) */
static inline float xm_sin(uint32_t phase)
{
    uint32_t idx = phase >> (32 - XM_SINE_BITS);
    float frac = (float) (phase << XM_SINE_BITS) * (1.0f / 4294967296.0f);
    float a = xm_sine_table[idx];
    return a + (xm_sine_table[idx + 1] - a) * frac;
}

static inline float xm_cos(uint32_t phase)
{
    return xm_sin(phase + 0x40000000u);
}

/* The peak amplitude (int16 scale) of a sine at a level in dBm0. */
static inline double xm_dbm0_to_peak(double dbm0)
{
    return 32767.0 * pow(10.0, (dbm0 - XM_FULL_SCALE_DBM0) / 20.0);
}

/* The mean power (int16 scale, squared) of a signal at a level in dBm0. */
static inline double xm_dbm0_to_power(double dbm0)
{
    double p = xm_dbm0_to_peak(dbm0);
    return p * p / 2.0;
}

static inline double xm_power_to_dbm0(double power)
{
    if (power <= 0.0)
        return -200.0;
    return 10.0 * log10(power / xm_dbm0_to_power(0.0));
}

static inline int16_t xm_sat16(float v)
{
    if (v >= 32767.0f)
        return 32767;
    if (v <= -32768.0f)
        return -32768;
    return (int16_t) lrintf(v);
}
#endif
