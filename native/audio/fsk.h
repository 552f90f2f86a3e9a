/* V.21 FSK modems (300 bit/s): channel 2 is T.30's control channel; channel 1 is there
 * for completeness. Transmitter: HDLC frames (or raw bits) in, samples out.
 * Receiver: samples in, carrier detect with the T.30 cut-off levels, bit timing
 * recovery, then HDLC frames (or raw bits) out through an event queue. */
#ifndef XMFAX_FSK_H
#define XMFAX_FSK_H
#include <stdint.h>
#include "hdlc.h"

enum { XM_V21_CH1 = 0, XM_V21_CH2 = 1 };
enum { XM_FSK_RAW = 0, XM_FSK_HDLC = 1 };

typedef struct xm_fsk_tx xm_fsk_tx;
/* preamble_flags: flags before the first frame (HDLC mode; T.30 §5.3.1 wants 1 s: 38). */
xm_fsk_tx *xm_fsk_tx_new(int channel, int mode, double level_dbm0, int preamble_flags,
                         int max_len);
void xm_fsk_tx_free(xm_fsk_tx *s);
/* Start a new transmission (a new carrier) with the preamble again. */
void xm_fsk_tx_restart(xm_fsk_tx *s);
int xm_fsk_tx_frame(xm_fsk_tx *s, const uint8_t *data, int len, int bad_fcs);
void xm_fsk_tx_abort(xm_fsk_tx *s);
/* Raw mode: queue bits (one per byte); returns how many were taken. */
int xm_fsk_tx_put_bits(xm_fsk_tx *s, const uint8_t *bits, int n);
/* Nothing more will be queued: the carrier stops once the queue has gone out. */
void xm_fsk_tx_end(xm_fsk_tx *s);
/* Up to max samples; fewer only when the carrier has stopped (then 0 until restart). */
int xm_fsk_tx_run(xm_fsk_tx *s, int16_t *out, int max);
int xm_fsk_tx_done(const xm_fsk_tx *s);

typedef struct xm_fsk_rx xm_fsk_rx;
xm_fsk_rx *xm_fsk_rx_new(int channel, int mode, double on_dbm0, double off_dbm0, int max_len);
void xm_fsk_rx_free(xm_fsk_rx *s);
void xm_fsk_rx_reset(xm_fsk_rx *s);
/* How many back-to-back flags its HDLC receiver takes for a preamble (2 when made). */
void xm_fsk_rx_set_framing_flags(xm_fsk_rx *s, int flags);
/* Demodulate; returns the samples consumed (fewer than len only when the event queue
 * or the raw bit queue is full: pop them and call again with the rest). */
int xm_fsk_rx_run(xm_fsk_rx *s, const int16_t *amp, int len);
int xm_fsk_rx_next(xm_fsk_rx *s, xm_rx_event *ev, uint8_t *data, int cap);
/* Raw mode: pop up to cap demodulated bits. */
int xm_fsk_rx_bits(xm_fsk_rx *s, uint8_t *out, int cap);
/* Events (and raw bits) queued for the caller. */
int xm_fsk_rx_pending(const xm_fsk_rx *s);
int xm_fsk_rx_carrier(const xm_fsk_rx *s);
double xm_fsk_rx_power_dbm0(const xm_fsk_rx *s);
void xm_fsk_rx_stats(const xm_fsk_rx *s, long long out[6]);
#endif
