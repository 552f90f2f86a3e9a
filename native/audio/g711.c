/* G.711 µ-law and A-law (ITU-T G.711: the segment/step tables of both laws).
 *
 * Linear samples are 16-bit: the 14-bit (µ-law) and 13-bit (A-law) ranges of G.711
 * scaled up by 4 and 8. Encoding is the segment ("chord") and step arithmetic of
 * the tables: the segment is the position of the leading 1 of the (biased, for µ-law)
 * magnitude, the 4-bit step the bits after it. µ-law code words are sent inverted,
 * A-law code words with the even bits inverted (G.711: XOR 0x55). */
#include "g711.h"

#define ULAW_BIAS 0x84       /* 33 in 14-bit units, scaled by 4: µ-law's offset */
#define ULAW_CLIP 32635      /* largest magnitude that, with the bias, stays in segment 7 */

static int top_bit(unsigned v)
{
    int n = -1;
    while (v) {
        v >>= 1;
        n++;
    }
    return n;
}

uint8_t xm_ulaw_encode1(int16_t x)
{
    int mag, sign;
    if (x < 0) {
        mag = -(int) x;
        sign = 0x80;                        /* inverted on the line: negative codes are 0xxx */
    } else {
        mag = x;
        sign = 0x00;
    }
    if (mag > ULAW_CLIP)
        mag = ULAW_CLIP;
    mag += ULAW_BIAS;                       /* >= 0x84: the leading 1 is at bit 7..14 */
    int seg = top_bit((unsigned) mag) - 7;
    int step = (mag >> (seg + 3)) & 0x0F;
    return (uint8_t) ~(sign | (seg << 4) | step);
}

int16_t xm_ulaw_decode1(uint8_t code)
{
    int c = (uint8_t) ~code;
    int seg = (c >> 4) & 0x07;
    int mag = ((((c & 0x0F) << 3) + ULAW_BIAS) << seg) - ULAW_BIAS;
    return (int16_t) ((c & 0x80) ? -mag : mag);
}

uint8_t xm_alaw_encode1(int16_t x)
{
    int mag, sign;
    if (x >= 0) {
        mag = x;
        sign = 0x80;
    } else {
        mag = -(int) x - 1;                 /* A-law has no zero level: -1 mirrors 0 */
        sign = 0x00;
    }
    int seg, step;
    if (mag < 0x100) {
        seg = 0;
        step = mag >> 4;
    } else {
        seg = top_bit((unsigned) mag) - 7;  /* leading 1 at bit 8..14: segment 1..7 */
        step = (mag >> (seg + 3)) & 0x0F;
    }
    return (uint8_t) ((sign | (seg << 4) | step) ^ 0x55);
}

int16_t xm_alaw_decode1(uint8_t code)
{
    int c = code ^ 0x55;
    int seg = (c >> 4) & 0x07;
    int mag = (c & 0x0F) << 4;
    if (seg)
        mag = (mag + 0x108) << (seg - 1);   /* the implicit leading 1 plus half a step */
    else
        mag += 8;                           /* half a step: mid-point reconstruction */
    return (int16_t) ((c & 0x80) ? mag : -mag);
}

void xm_g711_encode(int law, const int16_t *in, uint8_t *out, size_t n)
{
    size_t i;
    if (law)
        for (i = 0; i < n; i++)
            out[i] = xm_ulaw_encode1(in[i]);
    else
        for (i = 0; i < n; i++)
            out[i] = xm_alaw_encode1(in[i]);
}

void xm_g711_decode(int law, const uint8_t *in, int16_t *out, size_t n)
{
    size_t i;
    if (law)
        for (i = 0; i < n; i++)
            out[i] = xm_ulaw_decode1(in[i]);
    else
        for (i = 0; i < n; i++)
            out[i] = xm_alaw_decode1(in[i]);
}

void xm_g711_transcode(int from_law, int to_law, const uint8_t *in, uint8_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int16_t v = from_law ? xm_ulaw_decode1(in[i]) : xm_alaw_decode1(in[i]);
        out[i] = to_law ? xm_ulaw_encode1(v) : xm_alaw_encode1(v);
    }
}

void xm_g711_tandem(const int16_t *in, int16_t *out, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int16_t v = xm_ulaw_decode1(xm_ulaw_encode1(in[i]));
        v = xm_alaw_decode1(xm_alaw_encode1(v));
        out[i] = xm_ulaw_decode1(xm_ulaw_encode1(v));
    }
}
