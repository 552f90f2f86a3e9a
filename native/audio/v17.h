/* V.17 modem: 14400, 12000, 9600 and 7200 bit/s, trellis-coded QAM (128, 64, 32 and 16
 * points, 8-state code) at 2400 baud on an 1800 Hz carrier, with the long and the short
 * training of V.17.  The receiver decodes the trellis code with a Viterbi decoder.
 * Sans-IO: bits in through a buffer, int16 8 kHz samples out; samples in, bits out.
 */
#ifndef XMFAX_V17_H
#define XMFAX_V17_H

#include <stdint.h>

typedef struct xm_v17_tx xm_v17_tx_t;
typedef struct xm_v17_rx xm_v17_rx_t;

/* bit_rate 14400, 12000, 9600 or 7200; long_train 1 = long training, 0 = short
 * (allowed only after a long one to the same receiver); tep 1 = talker echo
 * protection tone first.  Returns NULL on a bad parameter or no memory. */
xm_v17_tx_t *xm_v17_tx_new(int bit_rate, int long_train, int tep, float level_dbm0);
void xm_v17_tx_free(xm_v17_tx_t *tx);
/* Queue data bits (one per byte, low bit); returns how many were taken. */
int xm_v17_tx_put_bits(xm_v17_tx_t *tx, const uint8_t *bits, int n);
/* No more data: once the queue drains, send the turn-off and stop. */
void xm_v17_tx_finish(xm_v17_tx_t *tx);
/* Fill out[n]; after the end, silence.  Returns the samples of signal written. */
int xm_v17_tx_generate(xm_v17_tx_t *tx, int16_t *out, int n);
int xm_v17_tx_done(const xm_v17_tx_t *tx);
int xm_v17_tx_queued(const xm_v17_tx_t *tx);

xm_v17_rx_t *xm_v17_rx_new(int bit_rate);
void xm_v17_rx_free(xm_v17_rx_t *rx);
/* Expect a new carrier at bit_rate, with a long (long_train 1) or short training; a
 * short training reuses the equaliser learnt on the last long one. */
void xm_v17_rx_restart(xm_v17_rx_t *rx, int bit_rate, int long_train);
/* Process n samples; the bits received go to bits[] (at most max, the rest dropped;
 * max >= 2n + 256 never drops: the end of a carrier flushes the Viterbi decoder's
 * 31 symbols at once).  Returns the bits written. */
int xm_v17_rx_process(xm_v17_rx_t *rx, const int16_t *amp, int n, uint8_t *bits, int max);
int xm_v17_rx_events(xm_v17_rx_t *rx, int *codes, long *bits, int max);
int xm_v17_rx_carrier(const xm_v17_rx_t *rx);
/* 0 idle, 1 training, 2 data (trained), 3 training failed */
int xm_v17_rx_state(const xm_v17_rx_t *rx);
float xm_v17_rx_signal_dbm0(const xm_v17_rx_t *rx);
float xm_v17_rx_mse(const xm_v17_rx_t *rx);

#endif
