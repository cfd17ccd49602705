/* test_gzip.c - gzip of request bodies: a member written in pieces (rt_gzip_writer; the
 * sampler's exporter writes a batch in one piece, the writer takes any) inflates to exactly the
 * bytes written, whatever the pieces (none, one byte, more than the 32 KiB window, megabytes),
 * and the writer starts a clean member after each finish; whole-buffer deflate and inflate agree
 * with it; inflate's limit and its errors; and both directions interoperate with zlib (what SDKs
 * send and backends read): zlib's gzip at several levels, with a file name in its header, and
 * zlib framing inflate here; what is written here zlib inflates; a corrupted checksum is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "gzip.h"

#include <zlib.h>

/* Bytes shaped like OTLP: repeated keys and names, with counters and random ids between. */
static void fill(uint8_t *p, size_t n, uint32_t seed)
{
    static const char words[] = "gen_ai.operation.name execute_tool invoke_agent tenant.id ";
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (x >> 28) < 15 ? (uint8_t)words[i % (sizeof words - 1)] : (uint8_t)(x >> 16);
    }
}

static void assert_inflates_to(const rt_buf *gz, const uint8_t *want, size_t len)
{
    rt_buf out = RT_BUF_INIT;
    char err[128];
    assert_int_equal(rt_gzip_inflate(gz->data, gz->len, len + 1, &out, err, sizeof err), 0);
    assert_int_equal(out.len, len);
    if (len > 0) {
        assert_memory_equal(out.data, want, len);
    }
    rt_buf_free(&out);
}

static void test_a_member_written_in_pieces_inflates_to_what_was_written(void **state)
{
    (void)state;
    size_t total = 3u << 20;
    uint8_t *data = malloc(total);
    fill(data, total, 7);
    static const size_t pieces[][8] = {
        {1, 0},                               /* one byte */
        {5000, 1, 1, 70000, 3, 0},            /* across the 32 KiB window */
        {1000, 1000, 1000, 1000, 1000, 0},    /* trace-sized */
        {3u << 20, 0},                        /* one large write */
        {200000, 1, 900000, 65536, 65537, 0}, /* mixed */
    };
    rt_gzip_writer *w = rt_gzip_writer_new(1);
    for (size_t k = 0; k < sizeof pieces / sizeof pieces[0]; k++) {
        rt_buf gz = RT_BUF_INIT;
        size_t at = 0;
        for (size_t i = 0; pieces[k][i] != 0; i++) {
            rt_gzip_writer_write(w, data + at, pieces[k][i], &gz);
            at += pieces[k][i];
        }
        rt_gzip_writer_finish(w, &gz);
        assert_true(gz.len > 0);
        assert_inflates_to(&gz, data, at);
        if (at > 100000) {
            assert_true(gz.len < at / 2); /* it did compress */
        }
        rt_buf_free(&gz);
    }
    /* A member with nothing written is a valid empty gzip member. */
    rt_buf gz = RT_BUF_INIT;
    rt_gzip_writer_finish(w, &gz);
    assert_inflates_to(&gz, data, 0);
    rt_buf_free(&gz);
    rt_gzip_writer_free(w);
    free(data);
}

static void test_streamed_and_whole_buffer_deflate_agree(void **state)
{
    (void)state;
    size_t n = 500000;
    uint8_t *data = malloc(n);
    fill(data, n, 3);
    rt_buf whole = RT_BUF_INIT, streamed = RT_BUF_INIT;
    rt_gzip_deflate(data, n, 1, &whole);
    rt_gzip_writer *w = rt_gzip_writer_new(1);
    for (size_t at = 0; at < n; at += 777) {
        rt_gzip_writer_write(w, data + at, n - at < 777 ? n - at : 777, &streamed);
    }
    rt_gzip_writer_finish(w, &streamed);
    /* Same level, same input: the same bytes back, and sizes within 3 % (the whole-buffer call
     * uses igzip's small hash tables). */
    assert_inflates_to(&whole, data, n);
    assert_inflates_to(&streamed, data, n);
    assert_true(streamed.len * 100 <= whole.len * 103 && whole.len * 100 <= streamed.len * 103);
    /* Appending a second member to the same buffer: inflate reads both. */
    rt_gzip_writer_write(w, data, 1000, &streamed);
    rt_gzip_writer_finish(w, &streamed);
    uint8_t *both = malloc(n + 1000);
    memcpy(both, data, n);
    memcpy(both + n, data, 1000);
    assert_inflates_to(&streamed, both, n + 1000);
    rt_gzip_writer_free(w);
    rt_gzip_writer_free(NULL);
    rt_buf_free(&whole);
    rt_buf_free(&streamed);
    free(both);
    free(data);
}

static void test_inflate_limit_and_errors(void **state)
{
    (void)state;
    size_t n = 100000;
    uint8_t *data = malloc(n);
    fill(data, n, 11);
    rt_buf gz = RT_BUF_INIT, out = RT_BUF_INIT;
    rt_gzip_deflate(data, n, 1, &gz);
    char err[128];
    assert_int_equal(rt_gzip_inflate(gz.data, gz.len, n - 1, &out, err, sizeof err), -2);
    assert_non_null(strstr(err, "exceeds the limit"));
    assert_int_equal(out.len, 0);
    assert_int_equal(rt_gzip_inflate(gz.data, gz.len / 2, n, &out, err, sizeof err), -1);
    assert_non_null(strstr(err, "truncated"));
    assert_int_equal(rt_gzip_inflate(data, 100, n, &out, err, sizeof err), -1);
    assert_int_equal(out.len, 0);
    rt_buf_free(&gz);
    rt_buf_free(&out);
    free(data);
}

/* zlib's deflate into `out` with windowBits `wbits` (15 + 16: gzip, 15: zlib framing); a gzip
 * header gets a file name, as the gzip tool writes. */
static void zlib_deflate(const uint8_t *in, size_t n, int level, int wbits, rt_buf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    assert_int_equal(deflateInit2(&z, level, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    gz_header h;
    memset(&h, 0, sizeof h);
    h.name = (Bytef *)"spans.pb";
    if (wbits > 15) {
        assert_int_equal(deflateSetHeader(&z, &h), Z_OK);
    }
    size_t bound = deflateBound(&z, n) + 64;
    rt_buf_reserve(out, bound);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out->data + out->len;
    z.avail_out = (uInt)bound;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    out->len += bound - z.avail_out;
    deflateEnd(&z);
}

static void test_interoperates_with_zlib(void **state)
{
    (void)state;
    size_t n = 700000;
    uint8_t *data = malloc(n);
    fill(data, n, 5);
    static const int levels[] = {1, 6, 9};
    for (size_t i = 0; i < 3; i++) {
        rt_buf gz = RT_BUF_INIT;
        zlib_deflate(data, n, levels[i], 15 + 16, &gz);
        assert_inflates_to(&gz, data, n);
        rt_buf_free(&gz);
    }
    rt_buf zl = RT_BUF_INIT;
    zlib_deflate(data, n, 6, 15, &zl);
    assert_inflates_to(&zl, data, n);
    rt_buf_free(&zl);
    /* ours, read by zlib: every level, and two members written one after the other */
    for (int level = 0; level <= 3; level++) {
        rt_buf gz = RT_BUF_INIT;
        rt_gzip_deflate(data, n, level, &gz);
        rt_gzip_deflate(data, 1000, level, &gz);
        uint8_t *back = malloc(n);
        z_stream z;
        memset(&z, 0, sizeof z);
        assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
        z.next_in = gz.data;
        z.avail_in = (uInt)gz.len;
        z.next_out = back;
        z.avail_out = (uInt)n;
        assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
        assert_int_equal(z.total_out, n);
        assert_memory_equal(back, data, n);
        assert_true(z.avail_in > 0); /* the second member follows */
        inflateEnd(&z);
        free(back);
        if (level == 1) {
            /* a flipped bit in the CRC-32 of the trailer is refused */
            rt_buf bad = RT_BUF_INIT, out = RT_BUF_INIT;
            rt_gzip_deflate(data, n, 1, &bad);
            bad.data[bad.len - 8] ^= 1;
            char err[128];
            assert_int_equal(rt_gzip_inflate(bad.data, bad.len, n, &out, err, sizeof err), -1);
            assert_int_equal(out.len, 0);
            rt_buf_free(&bad);
            rt_buf_free(&out);
        }
        rt_buf_free(&gz);
    }
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_member_written_in_pieces_inflates_to_what_was_written),
        cmocka_unit_test(test_streamed_and_whole_buffer_deflate_agree),
        cmocka_unit_test(test_inflate_limit_and_errors),
        cmocka_unit_test(test_interoperates_with_zlib),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
