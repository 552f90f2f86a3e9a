/* Two spandsp audio fax terminals (fax_state: T.30 over its own V.21, V.17, V.29, V.27 ter
   modems and tones) joined in memory: the CPU cost of whole audio calls.

   Built and run by benchmarks/audio.py (cc -O2 ... -lspandsp -ltiff -lm); it is the spandsp
   side of the benchmark, so that spandsp pays for nothing but its own engine: no Python, no
   ctypes. Usage:

       spandsp_fax_pair TX.tif RX_DIR ECM(0|1) RUNS [MAX_RATE [BLOCK]]

   TX.tif is the document to send (written once, before anything is timed). Each run places
   one call: both terminals are created, then every BLOCK samples of line time (default 160:
   20 ms, as RTP would carry them; at most MAX_BLOCK) each end gives BLOCK samples (fax_tx,
   silence when idle) and takes the BLOCK the other gave in the same tick (fax_rx), as
   xmfax's pump in benchmarks/audio.py does.
   The calling end sends TX.tif; the answering end writes what it receives to RX_DIR/rxN.tif
   (use a tmpfs). The call ends when both ends have reported phase E. MAX_RATE (default
   14400) narrows the modems offered: 14400 V.17 + V.29 + V.27 ter, 9600 V.29 + V.27 ter,
   4800 V.27 ter.

   One line per run on stdout:
       cpu=<s> sim=<s> ok=<0|1> codes=<a>,<b> pages=<n> encoding=<spandsp code> rate=<bit/s>
       ecm=<0|1>
   cpu is CLOCK_PROCESS_CPUTIME_ID from before the first terminal is made until both are
   freed (this process does nothing else meanwhile); sim is the line time of the call.

   Only the public API in <spandsp.h> is used. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <tiffio.h>
#include <spandsp.h>

#define MAX_BLOCK 8000           /* samples per tick at most: 1 s at 8 kHz */
#define MAX_LINE_S 1200          /* 20 minutes of line time: a call that long has failed */

typedef struct {
    fax_state_t *fax;
    t30_state_t *t30;
    int completion;              /* phase E code, -1 before */
} end_t;

static void phase_e(t30_state_t *t30, void *user_data, int completion_code)
{
    (void) t30;
    ((end_t *) user_data)->completion = completion_code;
}

static int make_end(end_t *e, int calling, int ecm, int max_rate)
{
    int modems = T30_SUPPORT_V27TER;

    memset(e, 0, sizeof(*e));
    e->completion = -1;
    e->fax = fax_init(NULL, calling);
    if (e->fax == NULL)
        return -1;
    fax_set_transmit_on_idle(e->fax, 1);       /* the line never stalls: silence when idle */
    e->t30 = fax_get_t30_state(e->fax);
    if (max_rate >= 7200)
        modems |= T30_SUPPORT_V29;
    if (max_rate >= 12000)
        modems |= T30_SUPPORT_V17;
    t30_set_tx_ident(e->t30, calling ? "spandsp a" : "spandsp b");
    t30_set_ecm_capability(e->t30, ecm);
    t30_set_supported_modems(e->t30, modems);
    t30_set_supported_compressions(e->t30, T30_SUPPORT_T4_1D_COMPRESSION
                                   | T30_SUPPORT_T4_2D_COMPRESSION | T30_SUPPORT_T6_COMPRESSION);
    t30_set_phase_e_handler(e->t30, phase_e, e);
    return 0;
}

static double cpu_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* fax_tx gives at most n samples; with transmit-on-idle it gives n, but pad to be sure. */
static void take(end_t *e, int16_t *buf, int n)
{
    int got = fax_tx(e->fax, buf, n);

    if (got < 0)
        got = 0;
    if (got < n)
        memset(buf + got, 0, (size_t) (n - got) * sizeof(int16_t));
}

int main(int argc, char *argv[])
{
    const char *tx_file;
    char rx_file[4096];
    static int16_t a_out[MAX_BLOCK], b_out[MAX_BLOCK];
    int ecm, runs, run, max_rate, block;
    long max_ticks;

    if (argc < 5 || argc > 7) {
        fprintf(stderr, "usage: %s TX.tif RX_DIR ECM RUNS [MAX_RATE [BLOCK]]\n", argv[0]);
        return 2;
    }
    tx_file = argv[1];
    ecm = atoi(argv[3]);
    runs = atoi(argv[4]);
    max_rate = argc >= 6 ? atoi(argv[5]) : 14400;
    block = argc == 7 ? atoi(argv[6]) : 160;
    if (block < 1 || block > MAX_BLOCK) {
        fprintf(stderr, "spandsp_fax_pair: BLOCK is 1..%d\n", MAX_BLOCK);
        return 2;
    }
    max_ticks = (long) MAX_LINE_S * SAMPLE_RATE / block;
    TIFFSetWarningHandler(NULL);
    for (run = 0; run < runs; run++) {
        end_t a, b;
        t30_stats_t st;
        double t0, cpu;
        long ticks;
        int ok;

        snprintf(rx_file, sizeof(rx_file), "%s/rx%d.tif", argv[2], run);
        t0 = cpu_now();
        if (make_end(&a, 1, ecm, max_rate) || make_end(&b, 0, ecm, max_rate)) {
            fprintf(stderr, "spandsp_fax_pair: fax_init failed\n");
            return 2;
        }
        t30_set_tx_file(a.t30, tx_file, -1, -1);
        t30_set_rx_file(b.t30, rx_file, -1);
        for (ticks = 0; ticks < max_ticks && (a.completion < 0 || b.completion < 0); ticks++) {
            take(&a, a_out, block);
            take(&b, b_out, block);
            fax_rx(b.fax, a_out, block);
            fax_rx(a.fax, b_out, block);
        }
        t30_get_transfer_statistics(b.t30, &st);
        ok = a.completion == T30_ERR_OK && b.completion == T30_ERR_OK;
        fax_free(a.fax);
        fax_free(b.fax);
        cpu = cpu_now() - t0;
        printf("cpu=%.6f sim=%.2f ok=%d codes=%d,%d pages=%d encoding=%d rate=%d ecm=%d\n",
               cpu, ticks * (double) block / SAMPLE_RATE, ok, a.completion, b.completion,
               st.pages_rx, st.encoding, st.bit_rate, st.error_correcting_mode);
        fflush(stdout);
    }
    return 0;
}
