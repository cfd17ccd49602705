/* h2_frame.c - gRPC message framing helpers (see h2_frame.h). */
#include "h2_frame.h"
#include "base64.h"

#include <string.h>

void rt_h2_frame_encode_prefix(uint8_t out[RT_H2_FRAME_PREFIX_LEN], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

int rt_h2_frame_decode_prefix(const uint8_t in[RT_H2_FRAME_PREFIX_LEN], bool *compressed,
                              uint32_t *len)
{
    if (in[0] > 1) {
        return -1;
    }
    *compressed = in[0] == 1;
    *len = ((uint32_t)in[1] << 24) | ((uint32_t)in[2] << 16) | ((uint32_t)in[3] << 8) |
           (uint32_t)in[4];
    return 0;
}

rt_h2_frame_rc rt_h2_frame_read(rt_h2_frame_reader *r, const uint8_t *p, size_t n, size_t max_len,
                                rt_buf *msg)
{
    while (n > 0) {
        if (r->prefix_got < RT_H2_FRAME_PREFIX_LEN) {
            size_t take = RT_H2_FRAME_PREFIX_LEN - r->prefix_got;
            if (take > n) {
                take = n;
            }
            memcpy(r->prefix + r->prefix_got, p, take);
            r->prefix_got += take;
            p += take;
            n -= take;
            if (r->prefix_got < RT_H2_FRAME_PREFIX_LEN) {
                return RT_H2_FRAME_OK;
            }
            if (rt_h2_frame_decode_prefix(r->prefix, &r->compressed, &r->msg_len) != 0) {
                return RT_H2_FRAME_BAD_FLAG;
            }
            if ((size_t)r->msg_len > max_len) {
                return RT_H2_FRAME_TOO_LARGE;
            }
            continue;
        }
        size_t want = (size_t)r->msg_len - r->msg_got;
        if (want == 0) {
            return RT_H2_FRAME_EXTRA;
        }
        size_t take = want < n ? want : n;
        rt_buf_append(msg, p, take);
        r->msg_got += take;
        p += take;
        n -= take;
    }
    return RT_H2_FRAME_OK;
}

rt_h2_frame_state rt_h2_frame_reader_state(const rt_h2_frame_reader *r)
{
    if (r->prefix_got == 0) {
        return RT_H2_FRAME_EMPTY;
    }
    if (r->prefix_got < RT_H2_FRAME_PREFIX_LEN || r->msg_got < (size_t)r->msg_len) {
        return RT_H2_FRAME_PARTIAL;
    }
    return RT_H2_FRAME_COMPLETE;
}

static const char hexdig[] = "0123456789ABCDEF";

char *rt_h2_frame_percent_encode(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) {
        return out;
    }
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c >= 0x20 && *c <= 0x7e && *c != '%') {
            if (o + 1 >= cap) {
                break;
            }
            out[o++] = (char)*c;
        } else {
            if (o + 3 >= cap) {
                break;
            }
            out[o++] = '%';
            out[o++] = hexdig[*c >> 4];
            out[o++] = hexdig[*c & 0xf];
        }
    }
    out[o] = '\0';
    return out;
}

char *rt_h2_frame_percent_decode(const char *s, size_t len, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) {
        return out;
    }
    for (size_t i = 0; i < len && o + 1 < cap; i++) {
        if (s[i] == '%' && i + 2 < len && rt_hex_digit(s[i + 1]) >= 0 &&
            rt_hex_digit(s[i + 2]) >= 0) {
            out[o++] = (char)(rt_hex_digit(s[i + 1]) << 4 | rt_hex_digit(s[i + 2]));
            i += 2;
        } else {
            out[o++] = s[i];
        }
    }
    out[o] = '\0';
    return out;
}
