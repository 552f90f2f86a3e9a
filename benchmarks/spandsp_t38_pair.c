/* Two spandsp T.38 terminals joined in memory: the CPU cost of whole calls.

   Built and run by benchmarks/t38.py (cc -O2 ... -lspandsp); it is the spandsp side of the
   benchmark, so that spandsp pays for nothing but its own engine: no Python, no ctypes
   callbacks. Usage:

       spandsp_t38_pair TX.tif RX_DIR PACED(0|1) ECM(0|1) RUNS

   TX.tif is the document to send (written once, before anything is timed). Each run places
   one call: both terminals are created, ticked every 20 ms of simulated time
   (t38_terminal_send_timeout, 160 samples), and every IFP packet either emits is delivered
   to the other at the next tick (0-20 ms later), with its own sequence number, once (the
   copy count spandsp asks for is a UDPTL matter; there is no UDPTL here: bare IFP). The
   received document goes to RX_DIR/rxN.tif (use a tmpfs). The call ends when both
   terminals have reported phase E.

   One line per run on stdout:
       cpu=<s> sim=<s> packets=<n> ok=<0|1> pages=<n> encoding=<spandsp code> rate=<bit/s>
   cpu is CLOCK_PROCESS_CPUTIME_ID from before the first terminal is made until both are
   freed (this process does nothing else meanwhile).

   Only the public API in <spandsp.h> is used. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tiffio.h>
#include <spandsp.h>

#define MAX_QUEUED 4096
#define MAX_IFP 1024
#define MAX_TICKS 60000          /* 20 minutes of simulated time: a call that long has failed */

typedef struct {
    int n;
    int len[MAX_QUEUED];
    uint8_t buf[MAX_QUEUED][MAX_IFP];
} queue_t;

typedef struct {
    t38_terminal_state_t *t38;
    t38_core_state_t *core;
    t30_state_t *t30;
    queue_t *out;                /* what this end sent since the last tick */
    uint16_t rx_seq;             /* sequence number of the next packet delivered to it */
    int completion;              /* phase E code, -1 before */
    long packets;
} end_t;

static int tx_packet(t38_core_state_t *core, void *user_data, const uint8_t *buf, int len, int count)
{
    end_t *e = (end_t *) user_data;
    (void) core;
    (void) count;
    if (e->out->n >= MAX_QUEUED || len > MAX_IFP) {
        fprintf(stderr, "spandsp_t38_pair: queue overflow\n");
        exit(2);
    }
    memcpy(e->out->buf[e->out->n], buf, len);
    e->out->len[e->out->n++] = len;
    e->packets++;
    return 0;
}

static void phase_e(t30_state_t *t30, void *user_data, int completion_code)
{
    (void) t30;
    ((end_t *) user_data)->completion = completion_code;
}

static void make_end(end_t *e, int calling, queue_t *out, int paced, int ecm)
{
    memset(e, 0, sizeof(*e));
    e->out = out;
    e->completion = -1;
    e->t38 = t38_terminal_init(NULL, calling, tx_packet, e);
    if (e->t38 == NULL) {
        fprintf(stderr, "spandsp_t38_pair: t38_terminal_init failed\n");
        exit(2);
    }
    t38_terminal_set_config(e->t38, paced ? 0 : T38_TERMINAL_OPTION_NO_PACING);
    e->core = t38_terminal_get_t38_core_state(e->t38);
    t38_set_t38_version(e->core, 0);
    t38_set_data_rate_management_method(e->core, T38_DATA_RATE_MANAGEMENT_TRANSFERRED_TCF);
    e->t30 = t38_terminal_get_t30_state(e->t38);
    t30_set_tx_ident(e->t30, calling ? "spandsp a" : "spandsp b");
    t30_set_ecm_capability(e->t30, ecm);
    t30_set_supported_modems(e->t30, T30_SUPPORT_V27TER | T30_SUPPORT_V29 | T30_SUPPORT_V17);
    t30_set_supported_compressions(e->t30, T30_SUPPORT_T4_1D_COMPRESSION
                                   | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
    t30_set_phase_e_handler(e->t30, phase_e, e);
}

static void deliver(queue_t *q, end_t *to)
{
    int i;

    for (i = 0; i < q->n; i++)
        t38_core_rx_ifp_packet(to->core, q->buf[i], q->len[i], to->rx_seq++);
    q->n = 0;
}

/* Deliver what ``from`` has queued to ``to``; ``from`` fills its other queue meanwhile. */
static void deliver_swapped(end_t *from, end_t *to, queue_t q[2])
{
    queue_t *full = from->out;

    from->out = (full == &q[0]) ? &q[1] : &q[0];
    deliver(full, to);
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[])
{
    static queue_t qa[2], qb[2];      /* each end's two queues: filling, being delivered */
    const char *tx_file;
    char rx_file[4096];
    int paced, ecm, runs, run;

    if (argc != 6) {
        fprintf(stderr, "usage: %s TX.tif RX_DIR PACED ECM RUNS\n", argv[0]);
        return 2;
    }
    tx_file = argv[1];
    paced = atoi(argv[3]);
    ecm = atoi(argv[4]);
    runs = atoi(argv[5]);
    TIFFSetWarningHandler(NULL);
    for (run = 0; run < runs; run++) {
        end_t a, b;
        t30_stats_t st;
        double t0, cpu;
        long ticks;
        int ok;

        snprintf(rx_file, sizeof(rx_file), "%s/rx%d.tif", argv[2], run);
        t0 = cpu_now();
        make_end(&a, 1, &qa[0], paced, ecm);
        make_end(&b, 0, &qb[0], paced, ecm);
        t30_set_tx_file(a.t30, tx_file, -1, -1);
        t30_set_rx_file(b.t30, rx_file, -1);
        for (ticks = 0; ticks < MAX_TICKS && (a.completion < 0 || b.completion < 0); ticks++) {
            t38_terminal_send_timeout(a.t38, 160);
            t38_terminal_send_timeout(b.t38, 160);
            /* what each sent during this tick reaches the other now; what they answer
               while taking it in goes to their other queue and waits for the next tick */
            deliver_swapped(&a, &b, qa);
            deliver_swapped(&b, &a, qb);
        }
        t30_get_transfer_statistics(b.t30, &st);
        ok = a.completion == T30_ERR_OK && b.completion == T30_ERR_OK;
        t38_terminal_free(a.t38);
        t38_terminal_free(b.t38);
        cpu = cpu_now() - t0;
        printf("cpu=%.6f sim=%.2f packets=%ld ok=%d pages=%d encoding=%d rate=%d\n",
               cpu, ticks * 0.02, a.packets + b.packets, ok, st.pages_rx, st.encoding, st.bit_rate);
        fflush(stdout);
    }
    return 0;
}
