/* V.29 modem: 9600 bit/s (16-point QAM, quadbits) and 7200 bit/s (8 points,
 * tribits) at 2400 baud on a 1700 Hz carrier, with the training sequence of
 * V.29 (segments 1-4).  Sans-IO: bits in through a buffer, int16 8 kHz
 * samples out; samples in, bits out.
 */
#ifndef XMFAX_V29_H
#define XMFAX_V29_H

#include <stdint.h>

typedef struct xm_v29_tx xm_v29_tx_t;
typedef struct xm_v29_rx xm_v29_rx_t;

/* bit_rate 9600 or 7200; long_train is ignored (V.29 has one training
 * sequence); tep 1 = send the talker echo protection tone first.
 * Returns NULL on a bad parameter or no memory. */
xm_v29_tx_t *xm_v29_tx_new(int bit_rate, int long_train, int tep, float level_dbm0);
void xm_v29_tx_free(xm_v29_tx_t *tx);
/* Queue data bits (one per byte, low bit); returns how many were taken. */
int xm_v29_tx_put_bits(xm_v29_tx_t *tx, const uint8_t *bits, int n);
/* No more data: once the queue drains, send the turn-off and stop. */
void xm_v29_tx_finish(xm_v29_tx_t *tx);
/* Fill out[n]; after the end, silence.  Returns the samples of signal
 * written (n while sending, fewer on the block where it ends, then 0). */
int xm_v29_tx_generate(xm_v29_tx_t *tx, int16_t *out, int n);
int xm_v29_tx_done(const xm_v29_tx_t *tx);
int xm_v29_tx_queued(const xm_v29_tx_t *tx);

xm_v29_rx_t *xm_v29_rx_new(int bit_rate);
void xm_v29_rx_free(xm_v29_rx_t *rx);
void xm_v29_rx_restart(xm_v29_rx_t *rx, int bit_rate);
/* Process n samples; the bits received go to bits[] (at most max, the
 * rest dropped; max >= 2n + 64 never drops).  Returns the bits written. */
int xm_v29_rx_process(xm_v29_rx_t *rx, const int16_t *amp, int n, uint8_t *bits, int max);
int xm_v29_rx_events(xm_v29_rx_t *rx, int *codes, long *bits, int max);
int xm_v29_rx_carrier(const xm_v29_rx_t *rx);
/* 0 idle, 1 training, 2 data (trained), 3 training failed */
int xm_v29_rx_state(const xm_v29_rx_t *rx);
float xm_v29_rx_signal_dbm0(const xm_v29_rx_t *rx);
float xm_v29_rx_mse(const xm_v29_rx_t *rx);

#endif
