/* The receivers of an audio fax terminal over one block in one call; see listen.h. */
#include "listen.h"

#include "fsk.h"
#include "hdlc.h"
#include "tones.h"
#include "v17.h"
#include "v27ter.h"
#include "v29.h"

/* The block's bits into the HDLC receiver; frames to the slots (see listen.h). */
static void deframe(xm_listen_out *out, const uint8_t *bits, int n)
{
    xm_hdlc_rx *h = out->hdlc;
    xm_rx_event ev;
    int fed = 0, k = 0;
    while (fed < n && XM_LISTEN_FRAMES - k >= XM_HDLC_RX_SLOTS) {
        int step = n - fed < XM_LISTEN_CHUNK ? n - fed : XM_LISTEN_CHUNK;
        xm_hdlc_rx_put_bits(h, bits + fed, step);
        fed += step;
        while (xm_hdlc_rx_next(h, &ev, out->fbuf + (size_t)k * out->fstride, out->fstride)) {
            if (ev.type == XM_RX_FRAME) {
                out->flen[k] = ev.len;
                out->fok[k] = ev.ok;
                k++;
            }
        }
    }
    out->hdlc_fed = fed;
    out->nframes = k;
}

int xm_listen_run(const int16_t *amp, int n, void *tone, int hs_kind, void *hs,
                  uint8_t *bits, int max, void *v21, xm_listen_out *out)
{
    int look = 0;
    out->tone_done = out->tone_pending = 0;
    if (tone) {
        out->tone_done = xm_tone_rx_run(tone, amp, n);
        out->tone_pending = xm_tone_rx_pending(tone);
        if (out->tone_done < n || out->tone_pending)
            look |= XM_LISTEN_TONE;
    }
    out->nbits = out->hs_events = 0;
    if (hs) {
        switch (hs_kind) {
        case XM_LISTEN_HS_V27TER:
            out->nbits = xm_v27ter_rx_process(hs, amp, n, bits, max);
            out->hs_events = xm_v27ter_rx_events(hs, out->codes, out->at, XM_LISTEN_EVENTS);
            break;
        case XM_LISTEN_HS_V29:
            out->nbits = xm_v29_rx_process(hs, amp, n, bits, max);
            out->hs_events = xm_v29_rx_events(hs, out->codes, out->at, XM_LISTEN_EVENTS);
            break;
        case XM_LISTEN_HS_V17:
            out->nbits = xm_v17_rx_process(hs, amp, n, bits, max);
            out->hs_events = xm_v17_rx_events(hs, out->codes, out->at, XM_LISTEN_EVENTS);
            break;
        default:
            break;
        }
        out->hdlc_fed = out->nframes = 0;
        if (out->hdlc && out->nbits && !out->hs_events)
            deframe(out, bits, out->nbits);
        if (out->nbits || out->hs_events)
            look |= XM_LISTEN_HS;
    }
    out->v21_done = out->v21_pending = 0;
    if (v21) {
        out->v21_done = xm_fsk_rx_run(v21, amp, n);
        out->v21_pending = xm_fsk_rx_pending(v21);
        if (out->v21_done < n || out->v21_pending)
            look |= XM_LISTEN_V21;
    }
    return look;
}
