/* base64.h - base64 (RFC 4648) for OTLP/JSON bytesValue and gRPC "-bin" metadata, and the
 * hex digit every hex reader shares. */
#ifndef RT_BASE64_H
#define RT_BASE64_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Append the standard-alphabet encoding of p[0..n) to `out`, with '=' padding if `pad`
 * (gRPC sends -bin metadata unpadded; JSON bytesValue is padded). Not NUL-terminated. */
void rt_base64_encode(rt_buf *out, const uint8_t *p, size_t n, bool pad);
/* Bytes rt_base64_decode() may write for `len` characters of input. */
static inline size_t rt_base64_decoded_max(size_t len)
{
    return len / 4 * 3 + 2;
}
/* Decode `len` characters of standard or URL-safe base64, padding optional (but if present,
 * it must complete the last quantum) into `dst` (rt_base64_decoded_max(len) bytes). Returns
 * the decoded length, or -1 if the text is not base64. */
long rt_base64_decode(const char *s, size_t len, uint8_t *dst);

/* Value of one hex digit (either case), or -1 if `c` is not one. */
static inline int rt_hex_digit(int c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

#endif
