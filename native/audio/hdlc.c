/* HDLC framing (ISO/IEC 13239) as T.30 uses it: T.30 §5.3.6.1 (flag 0x7E, zero-bit
 * insertion after five ones, seven ones abort), §5.3.7 (16-bit FCS, register preset to
 * ones, ones-complemented, low octet first). Octets go on the line LSB first. */
#include <stdlib.h>
#include <string.h>

#include "hdlc.h"

#define FLAG 0x7E
#define GOOD_RESIDUE 0xF0B8     /* CRC register after a good frame and its FCS (ISO/IEC 13239) */
#define TX_ITEMS 64
#define RX_SLOTS XM_HDLC_RX_SLOTS

uint16_t xm_crc16(uint16_t crc, const uint8_t *data, int len)
{
    for (int i = 0; i < len; i++) {
        crc ^= data[i];
        for (int k = 0; k < 8; k++)
            crc = (crc & 1) ? (uint16_t) ((crc >> 1) ^ 0x8408) : (uint16_t) (crc >> 1);
    }
    return crc;
}

/* ------------------------------------------------------------------ transmit */

enum { ITEM_FRAME, ITEM_BAD_FRAME, ITEM_FLAGS };

typedef struct {
    int type;
    int len;        /* frame octets, or number of flags */
} tx_item;

struct xm_hdlc_tx {
    int max_len;
    /* queue: items, and the frames' octets in a ring */
    tx_item items[TX_ITEMS];
    int item_head, item_count;
    uint8_t *ring;
    int ring_cap, ring_head, ring_used;
    /* the frame being sent, with its FCS */
    uint8_t *cur;
    int cur_len, pos, in_frame;
    int flags_left;
    /* the octet being sent */
    unsigned octet;
    int bits_left;
    int stuffing;        /* zero-bit insertion applies to this octet */
    int ones;
    int stuff_pending;
    int last_was_flag;
};

xm_hdlc_tx *xm_hdlc_tx_new(int max_len, int queue_bytes)
{
    if (max_len < 1 || queue_bytes < max_len)
        return NULL;
    xm_hdlc_tx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->max_len = max_len;
    s->ring_cap = queue_bytes;
    s->ring = malloc((size_t) queue_bytes);
    s->cur = malloc((size_t) max_len + 2);
    if (!s->ring || !s->cur) {
        xm_hdlc_tx_free(s);
        return NULL;
    }
    return s;
}

void xm_hdlc_tx_free(xm_hdlc_tx *s)
{
    if (!s)
        return;
    free(s->ring);
    free(s->cur);
    free(s);
}

void xm_hdlc_tx_reset(xm_hdlc_tx *s)
{
    s->item_head = s->item_count = 0;
    s->ring_head = s->ring_used = 0;
    s->cur_len = s->pos = s->in_frame = 0;
    s->flags_left = 0;
    s->octet = 0;
    s->bits_left = 0;
    s->stuffing = s->ones = s->stuff_pending = 0;
    s->last_was_flag = 0;
}

static int push_item(xm_hdlc_tx *s, int type, int len)
{
    if (s->item_count == TX_ITEMS)
        return -1;
    tx_item *it = &s->items[(s->item_head + s->item_count) % TX_ITEMS];
    it->type = type;
    it->len = len;
    s->item_count++;
    return 0;
}

int xm_hdlc_tx_frame(xm_hdlc_tx *s, const uint8_t *data, int len, int bad_fcs)
{
    if (len < 1 || len > s->max_len || s->ring_cap - s->ring_used < len
        || s->item_count == TX_ITEMS)
        return -1;
    int tail = (s->ring_head + s->ring_used) % s->ring_cap;
    for (int i = 0; i < len; i++) {
        s->ring[tail] = data[i];
        if (++tail == s->ring_cap)
            tail = 0;
    }
    s->ring_used += len;
    return push_item(s, bad_fcs ? ITEM_BAD_FRAME : ITEM_FRAME, len);
}

int xm_hdlc_tx_flags(xm_hdlc_tx *s, int n)
{
    if (n <= 0)
        return 0;
    return push_item(s, ITEM_FLAGS, n);
}

static void load_octet(xm_hdlc_tx *s, unsigned octet, int stuffing)
{
    s->octet = octet;
    s->bits_left = 8;
    s->stuffing = stuffing;
    if (!stuffing)
        s->ones = 0;
    s->last_was_flag = !stuffing && octet == FLAG;
}

void xm_hdlc_tx_abort(xm_hdlc_tx *s)
{
    s->item_head = s->item_count = 0;
    s->ring_head = s->ring_used = 0;
    s->in_frame = 0;
    s->flags_left = 0;
    s->stuff_pending = 0;
    load_octet(s, 0xFF, 0);       /* eight ones: an abort (§5.3.6.1: seven or more) */
    s->last_was_flag = 0;
}

/* Take the next queued item; 0 when there is none. */
static int take_item(xm_hdlc_tx *s)
{
    if (!s->item_count)
        return 0;
    tx_item it = s->items[s->item_head];
    s->item_head = (s->item_head + 1) % TX_ITEMS;
    s->item_count--;
    if (it.type == ITEM_FLAGS) {
        s->flags_left = it.len;
        return 1;
    }
    for (int i = 0; i < it.len; i++) {
        s->cur[i] = s->ring[s->ring_head];
        if (++s->ring_head == s->ring_cap)
            s->ring_head = 0;
    }
    s->ring_used -= it.len;
    uint16_t fcs = (uint16_t) (xm_crc16(0xFFFF, s->cur, it.len) ^ 0xFFFF);
    if (it.type == ITEM_BAD_FRAME)
        fcs ^= 0xFFFF;
    s->cur[it.len] = (uint8_t) (fcs & 0xFF);
    s->cur[it.len + 1] = (uint8_t) (fcs >> 8);
    s->cur_len = it.len + 2;
    s->pos = 0;
    s->in_frame = 1;
    if (!s->last_was_flag)
        load_octet(s, FLAG, 0);   /* the opening flag (a closing flag may serve as one) */
    return 1;
}

int xm_hdlc_tx_get_bit(xm_hdlc_tx *s)
{
    for (;;) {
        if (s->stuff_pending) {               /* §5.3.6.1: a 0 after five contiguous 1s */
            s->stuff_pending = 0;
            s->ones = 0;
            return 0;
        }
        if (s->bits_left > 0) {
            int b = (int) (s->octet & 1);
            s->octet >>= 1;
            s->bits_left--;
            if (s->stuffing) {
                if (b) {
                    if (++s->ones == 5)
                        s->stuff_pending = 1;
                } else {
                    s->ones = 0;
                }
            }
            return b;
        }
        if (s->in_frame) {
            if (s->pos < s->cur_len) {
                load_octet(s, s->cur[s->pos++], 1);
            } else {
                s->in_frame = 0;
                load_octet(s, FLAG, 0);       /* the closing flag */
            }
            continue;
        }
        if (s->flags_left > 0) {
            s->flags_left--;
            load_octet(s, FLAG, 0);
            continue;
        }
        if (!take_item(s))
            return -1;
    }
}

int xm_hdlc_tx_get_bits(xm_hdlc_tx *s, uint8_t *bits, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        int b = xm_hdlc_tx_get_bit(s);
        if (b < 0)
            break;
        bits[i] = (uint8_t) b;
    }
    return i;
}

int xm_hdlc_tx_pending(const xm_hdlc_tx *s)
{
    return s->item_count + (s->in_frame || s->flags_left > 0 || s->bits_left > 0
                            || s->stuff_pending);
}

/* ------------------------------------------------------------------ receive */

struct xm_hdlc_rx {
    int max_len;             /* octets of a frame including its FCS */
    int framing_ok_flags;
    unsigned raw;            /* the last 8 line bits, newest in bit 0 */
    int hunting;             /* no flag seen since the last abort/reset */
    uint32_t acc;            /* de-stuffed bits not yet in an octet, oldest in bit 0 */
    int nacc;
    uint8_t *frame;
    int len;
    int too_long;
    int flag_run;            /* back-to-back flags */
    int framing_reported;
    long long sample;
    /* events */
    xm_rx_event ev[RX_SLOTS];
    uint8_t *ev_data;        /* RX_SLOTS slots of max_len octets */
    int ev_head, ev_count;
    long long stats[6];
};

xm_hdlc_rx *xm_hdlc_rx_new(int max_len, int framing_ok_flags)
{
    if (max_len < 1)
        return NULL;
    xm_hdlc_rx *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->max_len = max_len + 2;
    s->framing_ok_flags = framing_ok_flags > 0 ? framing_ok_flags : 1;
    s->frame = malloc((size_t) s->max_len);
    s->ev_data = malloc((size_t) s->max_len * RX_SLOTS);
    if (!s->frame || !s->ev_data) {
        xm_hdlc_rx_free(s);
        return NULL;
    }
    xm_hdlc_rx_reset(s);
    return s;
}

void xm_hdlc_rx_free(xm_hdlc_rx *s)
{
    if (!s)
        return;
    free(s->frame);
    free(s->ev_data);
    free(s);
}

void xm_hdlc_rx_reset(xm_hdlc_rx *s)
{
    s->raw = 0;
    s->hunting = 1;
    s->acc = 0;
    s->nacc = 0;
    s->len = 0;
    s->too_long = 0;
    s->flag_run = 0;
    s->framing_reported = 0;
}

void xm_hdlc_rx_set_framing_flags(xm_hdlc_rx *s, int framing_ok_flags)
{
    s->framing_ok_flags = framing_ok_flags > 0 ? framing_ok_flags : 1;
}

static uint8_t *push_event(xm_hdlc_rx *s, int type, int ok, int len)
{
    if (s->ev_count == RX_SLOTS)      /* full: the oldest event is overwritten */
    {
        s->ev_head = (s->ev_head + 1) % RX_SLOTS;
        s->ev_count--;
    }
    int slot = (s->ev_head + s->ev_count) % RX_SLOTS;
    s->ev[slot].type = type;
    s->ev[slot].ok = ok;
    s->ev[slot].len = len;
    s->ev[slot].sample = s->sample;
    s->ev_count++;
    return s->ev_data + (size_t) slot * (size_t) s->max_len;
}

void xm_hdlc_rx_status(xm_hdlc_rx *s, int type, long long sample)
{
    long long keep = s->sample;
    s->sample = sample;
    push_event(s, type, 0, 0);
    s->sample = keep;
    if (type == XM_RX_CARRIER_DOWN || type == XM_RX_CARRIER_UP)
        xm_hdlc_rx_reset(s);
}

void xm_hdlc_rx_set_sample(xm_hdlc_rx *s, long long sample)
{
    s->sample = sample;
}

int xm_hdlc_rx_room(const xm_hdlc_rx *s)
{
    return RX_SLOTS - s->ev_count;
}

int xm_hdlc_rx_next(xm_hdlc_rx *s, xm_rx_event *ev, uint8_t *data, int cap)
{
    if (!s->ev_count)
        return 0;
    int slot = s->ev_head;
    *ev = s->ev[slot];
    if (ev->type == XM_RX_FRAME && data) {
        int n = ev->len < cap ? ev->len : cap;
        memcpy(data, s->ev_data + (size_t) slot * (size_t) s->max_len, (size_t) n);
    }
    s->ev_head = (s->ev_head + 1) % RX_SLOTS;
    s->ev_count--;
    return 1;
}

void xm_hdlc_rx_stats(const xm_hdlc_rx *s, long long out[6])
{
    memcpy(out, s->stats, sizeof(s->stats));
}

/* A flag closes the frame before it: the 7 bits of the flag before its last 0 went into
 * acc as data, so the frame's own bits are those before them. */
static void end_frame(xm_hdlc_rx *s)
{
    int extra = s->nacc - 7;             /* bits of a last, incomplete octet */
    if (s->too_long) {
        s->stats[3]++;
        push_event(s, XM_RX_TOO_LONG, 0, 0);
    } else if (s->len == 0 && extra <= 0) {
        /* back-to-back flags (extra is -1 when two share a 0): a preamble or fill */
        if (++s->flag_run >= s->framing_ok_flags && !s->framing_reported) {
            s->framing_reported = 1;
            push_event(s, XM_RX_FRAMING_OK, 1, 0);
        }
        return;
    } else if (s->len < 4) {
        s->stats[5]++;                   /* shorter than address + control + FCS: noise */
    } else if (extra != 0) {
        s->stats[4]++;                   /* not a whole number of octets: a damaged frame */
        uint8_t *d = push_event(s, XM_RX_FRAME, 0, s->len - 2);
        memcpy(d, s->frame, (size_t) (s->len - 2));
    } else {
        int ok = xm_crc16(0xFFFF, s->frame, s->len) == GOOD_RESIDUE;
        s->stats[ok ? 0 : 1]++;
        uint8_t *d = push_event(s, XM_RX_FRAME, ok, s->len - 2);
        memcpy(d, s->frame, (size_t) (s->len - 2));
    }
    s->flag_run = 0;
}

void xm_hdlc_rx_put_bit(xm_hdlc_rx *s, int bit)
{
    bit &= 1;
    s->raw = ((s->raw << 1) | (unsigned) bit) & 0xFF;
    if (s->raw == FLAG) {                         /* 0111 1110 in line order */
        if (!s->hunting)
            end_frame(s);
        else
            s->flag_run = 1;
        s->hunting = 0;
        s->acc = 0;
        s->nacc = 0;
        s->len = 0;
        s->too_long = 0;
        return;
    }
    if ((s->raw & 0x7F) == 0x7F) {                /* seven ones: abort (or idle line) */
        if (!s->hunting && (s->len > 0 || s->nacc > 7)) {
            s->stats[2]++;
            push_event(s, XM_RX_ABORT, 0, 0);
        }
        s->hunting = 1;
        s->flag_run = 0;
        return;
    }
    if (s->hunting)
        return;
    if ((s->raw & 0x3F) == 0x3E)                  /* 0 after five 1s: inserted, drop it */
        return;
    s->acc |= (uint32_t) bit << s->nacc;
    if (++s->nacc == 15) {                        /* 8 bits older than a possible flag */
        if (s->len < s->max_len)
            s->frame[s->len++] = (uint8_t) (s->acc & 0xFF);
        else
            s->too_long = 1;
        s->acc >>= 8;
        s->nacc = 7;
    }
}

void xm_hdlc_rx_put_bits(xm_hdlc_rx *s, const uint8_t *bits, int n)
{
    for (int i = 0; i < n; i++)
        xm_hdlc_rx_put_bit(s, bits[i]);
}
