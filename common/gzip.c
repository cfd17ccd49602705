/* gzip.c - bounded gzip inflate/deflate with zlib (see gzip.h). */
#include "gzip.h"

#include <stdio.h>
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

void rt_gzip_deflate(const uint8_t *in, size_t len, int level, rt_buf *out)
{
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (level < 1 || level > 9) {
        level = 6;
    }
    deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
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
