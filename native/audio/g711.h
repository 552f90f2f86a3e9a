/* G.711 µ-law and A-law, by the segment arithmetic of the ITU-T G.711 tables. */
#ifndef XMFAX_G711_H
#define XMFAX_G711_H
#include <stddef.h>
#include <stdint.h>

uint8_t xm_ulaw_encode1(int16_t x);
int16_t xm_ulaw_decode1(uint8_t code);
uint8_t xm_alaw_encode1(int16_t x);
int16_t xm_alaw_decode1(uint8_t code);

/* law: 0 = A-law, 1 = µ-law (the values spandsp uses too). */
void xm_g711_encode(int law, const int16_t *in, uint8_t *out, size_t n);
void xm_g711_decode(int law, const uint8_t *in, int16_t *out, size_t n);
/* Code to code through the linear value, as a media gateway that decodes and re-encodes
 * does (not G.711's direct µ/A conversion tables, which round some codes the other way). */
void xm_g711_transcode(int from_law, int to_law, const uint8_t *in, uint8_t *out, size_t n);
/* Linear through a tandem µ -> A -> µ coding (a G.711 network hop in each law). */
void xm_g711_tandem(const int16_t *in, int16_t *out, size_t n);
#endif
