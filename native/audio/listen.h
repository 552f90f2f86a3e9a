/* One call a block for every receiver an audio fax terminal listens with: the tone
 * detector, the high-speed receiver of the modulation expected and the V.21 receiver,
 * each run over the whole block in that order, as separate calls would (none of them
 * depends on another).  Sans-IO; the receivers stay the caller's.
 */
#ifndef XMFAX_LISTEN_H
#define XMFAX_LISTEN_H

#include <stdint.h>

enum {
    XM_LISTEN_HS_NONE = 0,
    XM_LISTEN_HS_V27TER = 1,
    XM_LISTEN_HS_V29 = 2,
    XM_LISTEN_HS_V17 = 3,
};
#define XM_LISTEN_EVENTS 32
#define XM_LISTEN_FRAMES 24       /* HDLC frame slots of one block (ECM at high speed) */
#define XM_LISTEN_CHUNK 96        /* bits put into the HDLC receiver between drains */
enum { XM_LISTEN_TONE = 1, XM_LISTEN_HS = 2, XM_LISTEN_V21 = 4 };

typedef struct {
    int tone_done;                /* samples the tone detector ran (< n: its queue filled) */
    int tone_pending;             /* tone events queued */
    int nbits;                    /* high-speed data bits written */
    int hs_events;                /* high-speed status events copied to codes/at */
    int codes[XM_LISTEN_EVENTS];
    long at[XM_LISTEN_EVENTS];
    int v21_done;                 /* samples the V.21 receiver ran (< n: its queue filled) */
    int v21_pending;              /* V.21 events queued */
    /* ECM at high speed: set by the caller while a trained carrier's bits are HDLC */
    void *hdlc;                   /* in: an xm_hdlc_rx, or NULL (the caller deframes) */
    uint8_t *fbuf;                /* in: XM_LISTEN_FRAMES slots of fstride octets */
    int fstride;                  /* in */
    int hdlc_fed;                 /* out: bits fed to hdlc (0: none, e.g. events came) */
    int nframes;                  /* out: frames in the slots, in order */
    int flen[XM_LISTEN_FRAMES];   /* out: octets of each (FCS removed) */
    int fok[XM_LISTEN_FRAMES];    /* out: its FCS was good */
} xm_listen_out;

/* tone: an xm_tone_rx or NULL; hs: the receiver of hs_kind (XM_LISTEN_HS_) or NULL, its
 * bits to bits[max] (max as for its _process); v21: an xm_fsk_rx or NULL.  A receiver
 * that stops early (its event queue full) is left there: the caller takes its events
 * and runs it on from *_done.  Returns what the caller must look at: XM_LISTEN_TONE
 * (events queued, or stopped early), XM_LISTEN_HS (bits or events), XM_LISTEN_V21.
 * With out->hdlc set, a block whose high-speed bits came with no status event has them
 * put into that HDLC receiver (XM_LISTEN_CHUNK at a time, its events drained after each,
 * as the terminal's Python deframer does) and its frames copied to the slots; feeding
 * stops early (hdlc_fed < nbits) when fewer slots are free than the receiver's queue
 * holds, and the caller feeds the rest.  A block with events is left to the caller
 * (hdlc_fed 0): the bits before a training or a carrier's end are not HDLC data. */
int xm_listen_run(const int16_t *amp, int n, void *tone, int hs_kind, void *hs,
                  uint8_t *bits, int max, void *v21, xm_listen_out *out);

#endif
