/* gzip.c - bounded gzip inflate/deflate with zlib (see gzip.h). */
#include "gzip.h"

#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

int rt_gzip_inflate(const uint8_t *in, size_t len, size_t max_out, rt_buf *out, char *err,
                    size_t errlen)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    /* 15 + 32: accept gzip and zlib headers. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK) {
        snprintf(err, errlen, "gzip: cannot initialise inflater");
        return -1;
    }
    size_t start = out->len;
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    int rc = Z_OK;
    int result = 0;
    if (len == 0) {
        snprintf(err, errlen, "gzip: empty body");
        result = -1;
        goto done;
    }
    for (;;) {
        size_t chunk = 64 * 1024;
        rt_buf_reserve(out, chunk);
        zs.next_out = out->data + out->len;
        zs.avail_out = (uInt)chunk;
        rc = inflate(&zs, Z_NO_FLUSH);
        out->len += chunk - zs.avail_out;
        if (out->len - start > max_out) {
            snprintf(err, errlen, "gzip: inflated body exceeds the limit of %zu bytes", max_out);
            result = -2;
            goto done;
        }
        if (rc == Z_STREAM_END) {
            if (zs.avail_in == 0) {
                break;
            }
            /* Another gzip member follows. */
            if (inflateReset(&zs) != Z_OK) {
                rc = Z_DATA_ERROR;
            } else {
                continue;
            }
        }
        if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
            snprintf(err, errlen, "gzip: truncated stream");
            result = -1;
            goto done;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) {
            snprintf(err, errlen, "gzip: %s", zs.msg ? zs.msg : "invalid data");
            result = -1;
            goto done;
        }
    }
done:
    if (result != 0) {
        out->len = start;
    }
    inflateEnd(&zs);
    return result;
}

/* A gzip deflater at `level` (6 unless 1..9). Only fails out of memory, which is fatal here as
 * in rt_malloc. */
static void deflater_init(z_stream *zs, int level)
{
    memset(zs, 0, sizeof *zs);
    if (level < 1 || level > 9) {
        level = 6;
    }
    if (deflateInit2(zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
        fprintf(stderr, "gzip: cannot initialise deflater (out of memory)\n");
        abort();
    }
}

void rt_gzip_deflate(const uint8_t *in, size_t len, int level, rt_buf *out)
{
    z_stream zs;
    deflater_init(&zs, level);
    size_t bound = deflateBound(&zs, (uLong)len);
    rt_buf_reserve(out, bound);
    zs.next_in = (Bytef *)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out->data + out->len;
    zs.avail_out = (uInt)bound;
    deflate(&zs, Z_FINISH);
    out->len += bound - zs.avail_out;
    deflateEnd(&zs);
}

struct rt_gzip_writer {
    z_stream zs;
};

rt_gzip_writer *rt_gzip_writer_new(int level)
{
    rt_gzip_writer *w = rt_malloc(sizeof *w);
    deflater_init(&w->zs, level);
    return w;
}

/* Run deflate over what next_in holds until it is all taken (and, for Z_FINISH, the member is
 * ended), growing `out` as needed. */
static void writer_run(rt_gzip_writer *w, rt_buf *out, int flush)
{
    for (;;) {
        size_t room = out->cap - out->len;
        if (room < 4096) {
            rt_buf_reserve(out, w->zs.avail_in / 4 + 16384);
            room = out->cap - out->len;
        }
        w->zs.next_out = out->data + out->len;
        w->zs.avail_out = room > UINT32_MAX ? UINT32_MAX : (uInt)room;
        uInt before = w->zs.avail_out;
        int rc = deflate(&w->zs, flush);
        out->len += before - w->zs.avail_out;
        if (flush == Z_FINISH ? rc == Z_STREAM_END : (w->zs.avail_in == 0 && w->zs.avail_out > 0)) {
            return;
        }
    }
}

void rt_gzip_writer_write(rt_gzip_writer *w, const uint8_t *in, size_t len, rt_buf *out)
{
    while (len > 0) {
        uInt n = len > UINT32_MAX ? UINT32_MAX : (uInt)len;
        w->zs.next_in = (Bytef *)in;
        w->zs.avail_in = n;
        writer_run(w, out, Z_NO_FLUSH);
        in += n;
        len -= n;
    }
}

void rt_gzip_writer_finish(rt_gzip_writer *w, rt_buf *out)
{
    w->zs.next_in = NULL;
    w->zs.avail_in = 0;
    writer_run(w, out, Z_FINISH);
    deflateReset(&w->zs);
}

void rt_gzip_writer_free(rt_gzip_writer *w)
{
    if (w != NULL) {
        deflateEnd(&w->zs);
        free(w);
    }
}
