/* libtiff's G3/G4 codec timed in memory, for benchmarks/codecs.py.
 *
 *   libtiff_harness MODE CODEC WIDTH ROWS REPEATS IN OUT
 *
 * MODE   enc-packed  IN: ROWS x ((WIDTH + 7) / 8) bytes, MSB first, 1 = black
 *                    OUT: the coded strip
 *        enc-bytes   IN: ROWS x WIDTH bytes of 0 or 1 (1 = black), packed by a C loop inside
 *                    the timer (libtiff only takes packed rows)
 *        dec-packed  IN: a coded strip; OUT: the packed rows
 *        dec-bytes   the same, unpacked to one byte a pel inside the timer
 * CODEC  mh (Compression 3, T4Options 0), mr (T4Options 1; YResolution 196 dpi, so
 *        libtiff's K is 4), mmr (Compression 4)
 *
 * The TIFF lives in a memory buffer behind TIFFClientOpen (read, write, seek, size and map
 * procs over that buffer): no file I/O anywhere. Opening the TIFF and setting its tags are
 * outside the timer; inside it is TIFFWriteEncodedStrip (encode: the codec, plus a copy
 * of the strip into the buffer) or TIFFReadEncodedStrip (decode: the strip is read in
 * place through the map proc), and the pack/unpack loop in the -bytes modes. Each of
 * REPEATS runs is timed on its own with clock_gettime(CLOCK_PROCESS_CPUTIME_ID) and
 * printed in seconds, one line each; OUT holds the last run's result.
 *
 * Built by the benchmark at run time: cc -O2 libtiff_harness.c -ltiff.
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tiffio.h>

/* ---- a TIFF in memory ---- */

typedef struct {
    uint8_t *buf;
    size_t len, cap, pos;
} memfile;

static tsize_t mem_read(thandle_t h, tdata_t data, tsize_t n)
{
    memfile *m = (memfile *)h;
    size_t left = m->pos < m->len ? m->len - m->pos : 0;
    size_t k = (size_t)n < left ? (size_t)n : left;
    memcpy(data, m->buf + m->pos, k);
    m->pos += k;
    return (tsize_t)k;
}

static tsize_t mem_write(thandle_t h, tdata_t data, tsize_t n)
{
    memfile *m = (memfile *)h;
    size_t end = m->pos + (size_t)n;
    if (end > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < end)
            cap *= 2;
        uint8_t *p = realloc(m->buf, cap);
        if (!p)
            return -1;
        m->buf = p;
        m->cap = cap;
    }
    if (m->pos > m->len)
        memset(m->buf + m->len, 0, m->pos - m->len);
    memcpy(m->buf + m->pos, data, (size_t)n);
    m->pos = end;
    if (end > m->len)
        m->len = end;
    return n;
}

static toff_t mem_seek(thandle_t h, toff_t off, int whence)
{
    memfile *m = (memfile *)h;
    if (whence == SEEK_CUR)
        off += m->pos;
    else if (whence == SEEK_END)
        off += m->len;
    m->pos = (size_t)off;
    return off;
}

static int mem_close(thandle_t h)
{
    (void)h;
    return 0;
}

static toff_t mem_size(thandle_t h)
{
    return ((memfile *)h)->len;
}

static int mem_map(thandle_t h, tdata_t *base, toff_t *size)
{
    memfile *m = (memfile *)h;
    *base = m->buf;
    *size = m->len;
    return 1;
}

static void mem_unmap(thandle_t h, tdata_t base, toff_t size)
{
    (void)h;
    (void)base;
    (void)size;
}

static TIFF *mem_open(memfile *m, const char *mode)
{
    m->pos = 0;
    return TIFFClientOpen("memory", mode, (thandle_t)m, mem_read, mem_write, mem_seek,
                          mem_close, mem_size, mem_map, mem_unmap);
}

static void set_tags(TIFF *tif, const char *codec, uint32_t width, uint32_t rows)
{
    TIFFSetField(tif, TIFFTAG_IMAGEWIDTH, width);
    TIFFSetField(tif, TIFFTAG_IMAGELENGTH, rows);
    TIFFSetField(tif, TIFFTAG_BITSPERSAMPLE, 1);
    TIFFSetField(tif, TIFFTAG_SAMPLESPERPIXEL, 1);
    TIFFSetField(tif, TIFFTAG_COMPRESSION, strcmp(codec, "mmr") ? COMPRESSION_CCITTFAX3
                                                                  : COMPRESSION_CCITTFAX4);
    TIFFSetField(tif, TIFFTAG_PHOTOMETRIC, PHOTOMETRIC_MINISWHITE);    /* 1 = black */
    TIFFSetField(tif, TIFFTAG_FILLORDER, FILLORDER_MSB2LSB);
    TIFFSetField(tif, TIFFTAG_ROWSPERSTRIP, rows);
    TIFFSetField(tif, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
    TIFFSetField(tif, TIFFTAG_RESOLUTIONUNIT, RESUNIT_INCH);
    TIFFSetField(tif, TIFFTAG_XRESOLUTION, 204.0);
    TIFFSetField(tif, TIFFTAG_YRESOLUTION, 196.0);
    if (strcmp(codec, "mmr"))
        TIFFSetField(tif, TIFFTAG_GROUP3OPTIONS, strcmp(codec, "mr") ? 0 : GROUP3OPT_2DENCODING);
}

/* ---- one byte a pel <-> packed ---- */

/* in: bytes of exactly 0 or 1 (numpy bool). Eight of them read as one little-endian
 * word have their bits at 0, 8, ..., 56; the multiply moves bit 8i to 63 - i, with no
 * two partial products meeting, so the top byte is the eight pels, the first highest. */
static void pack(const uint8_t *in, uint8_t *out, uint32_t width, uint32_t rows)
{
    size_t stride = (width + 7) / 8;
    for (uint32_t r = 0; r < rows; r++) {
        const uint8_t *p = in + (size_t)r * width;
        uint8_t *o = out + (size_t)r * stride;
        uint32_t x = 0;
        for (; x + 8 <= width; x += 8, p += 8) {
            uint64_t w = (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16
                         | (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40
                         | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
            *o++ = (uint8_t)((w * 0x8040201008040201ULL) >> 56);
        }
        if (x < width) {
            uint8_t b = 0;
            for (int i = 0; x < width; x++, i++)
                b |= (uint8_t)((p[i] != 0) << (7 - i));
            *o = b;
        }
    }
}

static uint64_t spread[256];    /* byte -> 8 bytes of 0/1, the first pel in the low byte */

static void unpack(const uint8_t *in, uint8_t *out, uint32_t width, uint32_t rows)
{
    size_t stride = (width + 7) / 8;
    for (uint32_t r = 0; r < rows; r++) {
        const uint8_t *p = in + (size_t)r * stride;
        uint8_t *o = out + (size_t)r * width;
        uint32_t x = 0;
        for (; x + 8 <= width; x += 8)
            memcpy(o + x, &spread[*p++], 8);
        for (int i = 0; x < width; x++, i++)
            o[x] = (uint8_t)(*p >> (7 - i) & 1);
    }
}

/* ---- main ---- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int fail(const char *what)
{
    fprintf(stderr, "libtiff_harness: %s\n", what);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 8)
        return fail("usage: MODE CODEC WIDTH ROWS REPEATS IN OUT");
    const char *mode = argv[1], *codec = argv[2];
    uint32_t width = (uint32_t)atol(argv[3]), rows = (uint32_t)atol(argv[4]);
    int repeats = atoi(argv[5]);
    int bytes = strstr(mode, "bytes") != NULL, enc = strncmp(mode, "enc", 3) == 0;
    size_t stride = (width + 7) / 8, packed_size = stride * rows, in_len;
    uint8_t *in = slurp(argv[6], &in_len);
    uint8_t *packed = malloc(packed_size);
    uint8_t *unpacked = malloc((size_t)width * rows);
    const uint8_t *result = NULL;
    size_t result_len = 0;
    memfile m = {0};
    if (!in || !packed || !unpacked)
        return fail("cannot read the input or allocate");
    for (int i = 0; i < 256; i++) {
        uint64_t v = 0;
        for (int b = 0; b < 8; b++)
            v |= (uint64_t)(i >> (7 - b) & 1) << (8 * b);
        spread[i] = v;
    }
    TIFFSetWarningHandler(NULL);

    if (enc) {
        if (in_len != (bytes ? (size_t)width * rows : packed_size))
            return fail("input size does not match WIDTH x ROWS");
        for (int r = 0; r < repeats; r++) {
            free(m.buf);
            memset(&m, 0, sizeof m);
            TIFF *tif = mem_open(&m, "w");
            if (!tif)
                return fail("TIFFClientOpen (w)");
            set_tags(tif, codec, width, rows);
            double t = cpu_now();
            const uint8_t *src = in;
            if (bytes) {
                pack(in, packed, width, rows);
                src = packed;
            }
            tmsize_t n = TIFFWriteEncodedStrip(tif, 0, (void *)src, (tmsize_t)packed_size);
            t = cpu_now() - t;
            if (n < 0)
                return fail("TIFFWriteEncodedStrip");
            printf("%.9f\n", t);
            uint64_t *offs, *counts;
            TIFFGetField(tif, TIFFTAG_STRIPOFFSETS, &offs);
            TIFFGetField(tif, TIFFTAG_STRIPBYTECOUNTS, &counts);
            size_t off = (size_t)offs[0];
            result_len = (size_t)counts[0];
            TIFFClose(tif);                 /* writes the directory: m.buf may move */
            result = m.buf + off;
        }
    } else {
        /* a TIFF in memory holding the given strip as it is */
        TIFF *tif = mem_open(&m, "w");
        if (!tif)
            return fail("TIFFClientOpen (w)");
        set_tags(tif, codec, width, rows);
        if (TIFFWriteRawStrip(tif, 0, in, (tmsize_t)in_len) < 0)
            return fail("TIFFWriteRawStrip");
        TIFFClose(tif);
        for (int r = 0; r < repeats; r++) {
            tif = mem_open(&m, "r");        /* read-only opens are mapped (mem_map) */
            if (!tif)
                return fail("TIFFClientOpen (r)");
            double t = cpu_now();
            tmsize_t n = TIFFReadEncodedStrip(tif, 0, packed, (tmsize_t)packed_size);
            if (bytes)
                unpack(packed, unpacked, width, rows);
            t = cpu_now() - t;
            TIFFClose(tif);
            if (n != (tmsize_t)packed_size)
                return fail("TIFFReadEncodedStrip: short or failed");
            printf("%.9f\n", t);
        }
        result = bytes ? unpacked : packed;
        result_len = bytes ? (size_t)width * rows : packed_size;
    }
    FILE *f = fopen(argv[7], "wb");
    if (!f || fwrite(result, 1, result_len, f) != result_len || fclose(f))
        return fail("cannot write the output");
    return 0;
}
