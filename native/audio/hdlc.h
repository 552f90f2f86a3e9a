/* HDLC framing for the fax modems: flags, zero-bit insertion, CRC-16 FCS, abort
 * (ISO/IEC 13239 framing as T.30 §5.3.6.1 and §5.3.7 use it).
 *
 * Transmit: frames (and preamble flags) are queued, bits come out one at a time.
 * Receive: bits go in one at a time; frames, aborts and status come out of an event
 * queue with their octets (FCS removed) and fcs_ok. Bits are in line order. */
#ifndef XMFAX_HDLC_H
#define XMFAX_HDLC_H
#include <stddef.h>
#include <stdint.h>

/* Events of the receivers (HDLC and the demodulators that feed one). */
enum {
    XM_RX_FRAME = 1,        /* a frame: ok = FCS good, len octets without the FCS */
    XM_RX_ABORT = 2,        /* seven or more ones inside a frame: the frame is dropped */
    XM_RX_FRAMING_OK = 3,   /* n back-to-back flags seen (a preamble) */
    XM_RX_CARRIER_UP = 4,
    XM_RX_CARRIER_DOWN = 5,
    XM_RX_TOO_LONG = 6,     /* a frame longer than max_len: dropped */
};

typedef struct {
    int type;
    int ok;
    int len;
    long long sample;       /* the receiver's sample count when the event happened (-1 unknown) */
} xm_rx_event;

/* ---- transmit ---- */
typedef struct xm_hdlc_tx xm_hdlc_tx;
xm_hdlc_tx *xm_hdlc_tx_new(int max_len, int queue_bytes);
void xm_hdlc_tx_free(xm_hdlc_tx *s);
void xm_hdlc_tx_reset(xm_hdlc_tx *s);
/* Queue a frame (its FCS is added; bad_fcs sends the complement, for tests). 0, or -1 when
 * the frame is too long or the queue is full. */
int xm_hdlc_tx_frame(xm_hdlc_tx *s, const uint8_t *data, int len, int bad_fcs);
/* Queue n flag octets (a preamble, or a pause between frames). */
int xm_hdlc_tx_flags(xm_hdlc_tx *s, int n);
/* Abort the frame being sent (seven ones then a flag) and drop everything queued. */
void xm_hdlc_tx_abort(xm_hdlc_tx *s);
/* The next bit; -1 when the queue is empty (then the caller sends flags or stops). */
int xm_hdlc_tx_get_bit(xm_hdlc_tx *s);
/* Up to n bits into bits[] (one per byte); stops early when the queue runs empty. */
int xm_hdlc_tx_get_bits(xm_hdlc_tx *s, uint8_t *bits, int n);
/* Octets and frames still queued (0, 0 when idle). */
int xm_hdlc_tx_pending(const xm_hdlc_tx *s);

/* ---- receive ---- */
#define XM_HDLC_RX_SLOTS 16       /* its event queue */
typedef struct xm_hdlc_rx xm_hdlc_rx;
xm_hdlc_rx *xm_hdlc_rx_new(int max_len, int framing_ok_flags);
void xm_hdlc_rx_free(xm_hdlc_rx *s);
/* Forget any partial frame and hunt for a flag (e.g. on loss of carrier). */
void xm_hdlc_rx_reset(xm_hdlc_rx *s);
/* How many back-to-back flags make a preamble (XM_RX_FRAMING_OK) from now on (>= 1). */
void xm_hdlc_rx_set_framing_flags(xm_hdlc_rx *s, int framing_ok_flags);
void xm_hdlc_rx_put_bit(xm_hdlc_rx *s, int bit);
void xm_hdlc_rx_put_bits(xm_hdlc_rx *s, const uint8_t *bits, int n);
/* Queue an event from outside (a demodulator's carrier up/down). */
void xm_hdlc_rx_status(xm_hdlc_rx *s, int type, long long sample);
/* Set the sample count stamped on the following events. */
void xm_hdlc_rx_set_sample(xm_hdlc_rx *s, long long sample);
/* Free event slots (16 in all): a feeder stops when it runs low and resumes after next();
 * an event pushed into a full queue drops the oldest. */
int xm_hdlc_rx_room(const xm_hdlc_rx *s);
/* Pop the oldest event: 1 and its octets (up to cap) copied to data, or 0 when none. */
int xm_hdlc_rx_next(xm_hdlc_rx *s, xm_rx_event *ev, uint8_t *data, int cap);
/* counters: good frames, bad FCS, aborts, too long, length not a whole octet, too short */
void xm_hdlc_rx_stats(const xm_hdlc_rx *s, long long out[6]);

/* The CRC-16 of T.30 §5.3.7 (register preset to ones, reflected 0x8408), for tests. */
uint16_t xm_crc16(uint16_t crc, const uint8_t *data, int len);
#endif
