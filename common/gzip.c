/* gzip.c - bounded gzip inflate / deflate with ISA-L's igzip (see gzip.h).
 *
 * Why igzip and not zlib: on bodies a sampler exports (rt-bench-gzip-choice on captured
 * batches, bench/RESULTS.md "Compression") its level 1 deflates 5.6x faster than zlib's level 1
 * for output 1.4 % smaller, and it inflates 2.6x faster; its streaming inflate keeps the bound
 * on inflated bodies. libdeflate compresses better (7.6x against 7.2x) at 2.4x igzip's CPU.
 * Feed the writer large pieces: igzip copies small ones through an internal buffer (fed a
 * trace at a time, that copy was a fifth of a sampler's instructions).
 */
#include "gzip.h"

#include "alloc.h"

#include <isa-l/igzip_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What an igzip stream needs besides its state: the level's hash tables. */
static size_t level_buf_size(int level, bool small)
{
    switch (level) {
    case 0:
        return ISAL_DEF_LVL0_DEFAULT;
    case 1:
        return small ? ISAL_DEF_LVL1_SMALL : ISAL_DEF_LVL1_DEFAULT;
    case 2:
        return small ? ISAL_DEF_LVL2_SMALL : ISAL_DEF_LVL2_DEFAULT;
    default:
        return small ? ISAL_DEF_LVL3_SMALL : ISAL_DEF_LVL3_DEFAULT;
    }
}

static int clamp_level(int level)
{
    return level < 0 ? 1 : level > 3 ? 3 : level;
}

/* zlib framing (RFC 1950): deflate method, a window of at most 32 KiB, header checksum. */
static bool zlib_header(const uint8_t *p, size_t len)
{
    return len >= 2 && (p[0] & 0x0f) == 8 && (p[0] >> 4) <= 7 && ((p[0] << 8) | p[1]) % 31 == 0;
}

int rt_gzip_inflate(const uint8_t *in, size_t len, size_t max_out, rt_buf *out, char *err,
                    size_t errlen)
{
    if (len == 0 || len > UINT32_MAX) {
        snprintf(err, errlen, "gzip: %s", len == 0 ? "empty body" : "body over 4 GiB");
        return -1;
    }
    struct inflate_state *st = rt_malloc(sizeof *st);
    size_t start = out->len;
    int result = 0;
    while (len > 0) { /* one gzip (or zlib) member per turn */
        isal_inflate_init(st);
        if (len >= 2 && in[0] == 0x1f && in[1] == 0x8b) {
            st->crc_flag = ISAL_GZIP;
        } else if (zlib_header(in, len)) {
            st->crc_flag = ISAL_ZLIB;
        } else {
            snprintf(err, errlen, "gzip: not a gzip or zlib stream (incorrect header)");
            result = -1;
            break;
        }
        st->next_in = (uint8_t *)in;
        st->avail_in = (uint32_t)len;
        for (;;) {
            size_t chunk = 64 * 1024;
            rt_buf_reserve(out, chunk);
            st->next_out = out->data + out->len;
            st->avail_out = (uint32_t)chunk;
            int rc = isal_inflate(st);
            out->len += chunk - st->avail_out;
            if (out->len - start > max_out) {
                snprintf(err, errlen, "gzip: inflated body exceeds the limit of %zu bytes",
                         max_out);
                result = -2;
                goto done;
            }
            if (rc < 0 || rc == ISAL_NEED_DICT) {
                snprintf(err, errlen, "gzip: %s",
                         rc == ISAL_INCORRECT_CHECKSUM ? "incorrect data check"
                         : rc == ISAL_INVALID_WRAPPER || rc == ISAL_UNSUPPORTED_METHOD
                             ? "incorrect header"
                         : rc == ISAL_NEED_DICT ? "needs a preset dictionary"
                                                : "invalid deflate data");
                result = -1;
                goto done;
            }
            if (st->block_state == ISAL_BLOCK_FINISH) {
                break;
            }
            if (st->avail_in == 0 && st->avail_out > 0) {
                snprintf(err, errlen, "gzip: truncated stream");
                result = -1;
                goto done;
            }
        }
        size_t used = len - st->avail_in;
        in += used;
        len -= used;
    }
done:
    if (result != 0) {
        out->len = start;
    }
    free(st);
    return result;
}

struct rt_gzip_writer {
    struct isal_zstream zs;
    int level;
    bool started; /* a member is open */
    uint8_t *level_buf;
    size_t level_buf_size;
};

static rt_gzip_writer *writer_new(int level, bool small)
{
    rt_gzip_writer *w = rt_malloc(sizeof *w);
    w->level = clamp_level(level);
    w->level_buf_size = level_buf_size(w->level, small);
    w->level_buf = rt_malloc(w->level_buf_size);
    w->started = false;
    return w;
}

rt_gzip_writer *rt_gzip_writer_new(int level)
{
    return writer_new(level, false);
}

static void writer_start(rt_gzip_writer *w)
{
    isal_deflate_init(&w->zs);
    w->zs.gzip_flag = IGZIP_GZIP;
    w->zs.level = (uint32_t)w->level;
    w->zs.level_buf = w->level_buf;
    w->zs.level_buf_size = (uint32_t)w->level_buf_size;
    w->zs.flush = NO_FLUSH;
    w->started = true;
}

/* Run deflate over what next_in holds until it is all taken (and, at the end of the stream,
 * the member is ended), growing `out` as needed. */
static void writer_run(rt_gzip_writer *w, rt_buf *out)
{
    for (;;) {
        size_t room = out->cap - out->len;
        if (room < 4096) {
            rt_buf_reserve(out, w->zs.avail_in / 4 + 16384);
            room = out->cap - out->len;
        }
        w->zs.next_out = out->data + out->len;
        w->zs.avail_out = room > UINT32_MAX ? UINT32_MAX : (uint32_t)room;
        uint32_t before = w->zs.avail_out;
        if (isal_deflate(&w->zs) != COMP_OK) {
            fprintf(stderr, "gzip: isal_deflate failed (bad state)\n");
            abort();
        }
        out->len += before - w->zs.avail_out;
        if (w->zs.end_of_stream ? w->zs.internal_state.state == ZSTATE_END
                                : (w->zs.avail_in == 0 && w->zs.avail_out > 0)) {
            return;
        }
    }
}

void rt_gzip_writer_write(rt_gzip_writer *w, const uint8_t *in, size_t len, rt_buf *out)
{
    if (!w->started) {
        writer_start(w);
    }
    while (len > 0) {
        uint32_t n = len > UINT32_MAX ? UINT32_MAX : (uint32_t)len;
        w->zs.next_in = (uint8_t *)in;
        w->zs.avail_in = n;
        writer_run(w, out);
        in += n;
        len -= n;
    }
}

void rt_gzip_writer_finish(rt_gzip_writer *w, rt_buf *out)
{
    if (!w->started) {
        writer_start(w); /* an empty member, as zlib writes one */
    }
    w->zs.next_in = NULL;
    w->zs.avail_in = 0;
    w->zs.end_of_stream = 1;
    writer_run(w, out);
    w->started = false;
}

void rt_gzip_writer_free(rt_gzip_writer *w)
{
    if (w != NULL) {
        free(w->level_buf);
        free(w);
    }
}

void rt_gzip_deflate(const uint8_t *in, size_t len, int level, rt_buf *out)
{
    /* The small hash tables: one request body, and ~170 KiB less to allocate per call. */
    rt_gzip_writer *w = writer_new(level, true);
    rt_buf_reserve(out, len / 4 + 1024);
    rt_gzip_writer_write(w, in, len, out);
    rt_gzip_writer_finish(w, out);
    rt_gzip_writer_free(w);
}
