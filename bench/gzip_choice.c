/* gzip_choice.c - rt-bench-gzip-choice: which gzip implementation the sampler's export and the
 * intake should use, measured on captured OTLP bodies.
 *
 *   rt-bench-gzip-choice [--rounds N] FILE...
 *
 * FILEs are protobuf bodies (rt-bench-sink --capture writes what a sampler exported). Each
 * body is compressed as one gzip member by zlib (levels 1 and 6), libdeflate (levels 1-6,
 * whole buffer) and ISA-L igzip (levels 0-3, one stream), and decompressed again by the same
 * library; every output is also checked with zlib's inflate, so all of them are plain gzip.
 * Per codec: compressed size over all bodies, ratio, and CPU time per input MB (thread CPU
 * time, best of N rounds) for compression and for decompression.
 */
#include <isa-l/igzip_lib.h>
#include <libdeflate.h>
#include <zlib.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct body {
    uint8_t *p;
    size_t len;
} body;

typedef enum { LIB_ZLIB, LIB_DEFLATE, LIB_ISAL } lib;
static const char *const lib_names[] = {"zlib", "libdeflate", "isa-l"};

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "rt-bench-gzip-choice: %s\n", what);
    exit(1);
}

static size_t zlib_gzip(int level, const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        die("deflateInit2");
    }
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) {
        die("zlib deflate did not finish");
    }
    size_t n = z.total_out;
    deflateEnd(&z);
    return n;
}

static size_t zlib_gunzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 16) != Z_OK) {
        die("inflateInit2");
    }
    z.next_in = (uint8_t *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (inflate(&z, Z_FINISH) != Z_STREAM_END) {
        die("zlib inflate: not a whole gzip member");
    }
    size_t n = z.total_out;
    inflateEnd(&z);
    return n;
}

static size_t isal_gzip(int level, const uint8_t *in, size_t len, uint8_t *out, size_t cap,
                        uint8_t *lvl_buf, size_t lvl_cap)
{
    struct isal_zstream z;
    isal_deflate_init(&z);
    z.gzip_flag = IGZIP_GZIP;
    z.level = (uint32_t)level;
    z.level_buf = lvl_buf;
    z.level_buf_size = (uint32_t)lvl_cap;
    z.end_of_stream = 1;
    z.flush = NO_FLUSH;
    z.next_in = (uint8_t *)in;
    z.avail_in = (uint32_t)len;
    z.next_out = out;
    z.avail_out = (uint32_t)cap;
    if (isal_deflate(&z) != COMP_OK || z.internal_state.state != ZSTATE_END) {
        die("isal_deflate did not finish");
    }
    return z.total_out;
}

static size_t isal_gunzip(const uint8_t *in, size_t len, uint8_t *out, size_t cap)
{
    struct inflate_state st;
    isal_inflate_init(&st);
    st.crc_flag = ISAL_GZIP;
    st.next_in = (uint8_t *)in;
    st.avail_in = (uint32_t)len;
    st.next_out = out;
    st.avail_out = (uint32_t)cap;
    if (isal_inflate(&st) != ISAL_DECOMP_OK || st.block_state != ISAL_BLOCK_FINISH) {
        die("isal_inflate: not a whole gzip member");
    }
    return st.total_out;
}

int main(int argc, char **argv)
{
    int rounds = 3;
    static const struct option opts[] = {{"rounds", required_argument, NULL, 'r'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r') {
            rounds = atoi(optarg);
        } else {
            fprintf(stderr, "usage: rt-bench-gzip-choice [--rounds N] FILE...\n");
            return 2;
        }
    }
    size_t nb = (size_t)(argc - optind);
    if (nb == 0 || rounds < 1) {
        fprintf(stderr, "usage: rt-bench-gzip-choice [--rounds N] FILE...\n");
        return 2;
    }
    body *b = calloc(nb, sizeof *b);
    size_t total = 0, maxlen = 0;
    for (size_t i = 0; i < nb; i++) {
        FILE *f = fopen(argv[optind + (int)i], "rb");
        if (f == NULL) {
            fprintf(stderr, "rt-bench-gzip-choice: %s: %s\n", argv[optind + (int)i],
                    strerror(errno));
            return 1;
        }
        fseek(f, 0, SEEK_END);
        b[i].len = (size_t)ftell(f);
        fseek(f, 0, SEEK_SET);
        b[i].p = malloc(b[i].len ? b[i].len : 1);
        if (fread(b[i].p, 1, b[i].len, f) != b[i].len) {
            die("short read");
        }
        fclose(f);
        total += b[i].len;
        maxlen = b[i].len > maxlen ? b[i].len : maxlen;
    }
    size_t cap = maxlen + maxlen / 8 + 4096;
    uint8_t *comp = malloc(cap), *back = malloc(cap);
    size_t lvl_cap = ISAL_DEF_LVL3_DEFAULT;
    uint8_t *lvl_buf = malloc(lvl_cap);
    struct {
        lib l;
        int level;
    } codecs[] = {{LIB_ZLIB, 1},    {LIB_ZLIB, 6},    {LIB_DEFLATE, 1}, {LIB_DEFLATE, 2},
                  {LIB_DEFLATE, 3}, {LIB_DEFLATE, 4}, {LIB_DEFLATE, 6}, {LIB_ISAL, 0},
                  {LIB_ISAL, 1},    {LIB_ISAL, 2},    {LIB_ISAL, 3}};
    printf("%zu bodies, %zu bytes of protobuf (largest %zu)\n", nb, total, maxlen);
    printf("%-10s %5s %12s %7s %14s %14s\n", "library", "level", "gzip bytes", "ratio",
           "deflate ms/MB", "inflate ms/MB");
    for (size_t k = 0; k < sizeof codecs / sizeof codecs[0]; k++) {
        lib l = codecs[k].l;
        int level = codecs[k].level;
        double best_c = 1e18, best_d = 1e18;
        size_t out_total = 0;
        struct libdeflate_compressor *dc =
            l == LIB_DEFLATE ? libdeflate_alloc_compressor(level) : NULL;
        struct libdeflate_decompressor *dd =
            l == LIB_DEFLATE ? libdeflate_alloc_decompressor() : NULL;
        for (int r = 0; r < rounds; r++) {
            double tc = 0, td = 0;
            out_total = 0;
            for (size_t i = 0; i < nb; i++) {
                double t0 = cpu_s();
                size_t n = 0;
                switch (l) {
                case LIB_ZLIB:
                    n = zlib_gzip(level, b[i].p, b[i].len, comp, cap);
                    break;
                case LIB_DEFLATE:
                    n = libdeflate_gzip_compress(dc, b[i].p, b[i].len, comp, cap);
                    if (n == 0) {
                        die("libdeflate_gzip_compress: no room");
                    }
                    break;
                case LIB_ISAL:
                    n = isal_gzip(level, b[i].p, b[i].len, comp, cap, lvl_buf, lvl_cap);
                    break;
                }
                double t1 = cpu_s();
                size_t m = 0;
                switch (l) {
                case LIB_ZLIB:
                    m = zlib_gunzip(comp, n, back, cap);
                    break;
                case LIB_DEFLATE: {
                    size_t got = 0;
                    if (libdeflate_gzip_decompress(dd, comp, n, back, cap, &got) !=
                        LIBDEFLATE_SUCCESS) {
                        die("libdeflate_gzip_decompress failed");
                    }
                    m = got;
                    break;
                }
                case LIB_ISAL:
                    m = isal_gunzip(comp, n, back, cap);
                    break;
                }
                double t2 = cpu_s();
                tc += t1 - t0;
                td += t2 - t1;
                if (m != b[i].len || memcmp(back, b[i].p, m) != 0) {
                    die("round trip changed the body");
                }
                if (r == 0 && (zlib_gunzip(comp, n, back, cap) != b[i].len ||
                               memcmp(back, b[i].p, b[i].len) != 0)) {
                    die("zlib cannot read this output");
                }
                out_total += n;
            }
            best_c = tc < best_c ? tc : best_c;
            best_d = td < best_d ? td : best_d;
        }
        double mb = (double)total / 1e6;
        printf("%-10s %5d %12zu %6.2fx %14.2f %14.2f\n", lib_names[l], level, out_total,
               (double)total / (double)out_total, best_c * 1e3 / mb, best_d * 1e3 / mb);
        libdeflate_free_compressor(dc);
        libdeflate_free_decompressor(dd);
    }
    for (size_t i = 0; i < nb; i++) {
        free(b[i].p);
    }
    free(b);
    free(comp);
    free(back);
    free(lvl_buf);
    return 0;
}
