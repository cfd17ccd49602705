/* pb.c - protobuf wire-format primitives (see pb.h). */
#include "pb.h"

#include <string.h>

const char *rt_pb_strerror(int code)
{
    switch (code) {
    case 0:
        return "ok";
    case RT_PB_ETRUNC:
        return "truncated";
    case RT_PB_EVARINT:
        return "malformed varint";
    case RT_PB_EFIELD:
        return "invalid field number";
    case RT_PB_EWIRETYPE:
        return "unsupported wire type";
    default:
        return "unknown error";
    }
}

int rt_pb_read_varint_slow(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    size_t i = *pos;
    uint64_t v = 0;
    for (unsigned n = 0; n < RT_PB_VARINT_MAX; n++, i++) {
        if (i >= len) {
            return RT_PB_ETRUNC;
        }
        uint8_t c = buf[i];
        if (n == RT_PB_VARINT_MAX - 1 && c > 1) {
            /* The 10th byte may only supply bit 63: anything else overflows (or continues). */
            return RT_PB_EVARINT;
        }
        v |= (uint64_t)(c & 0x7f) << (7 * n);
        if ((c & 0x80) == 0) {
            *pos = i + 1;
            *out = v;
            return 0;
        }
    }
    return RT_PB_EVARINT;
}

size_t rt_pb_put_varint(uint8_t *out, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        out[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    out[n++] = (uint8_t)v;
    return n;
}

void rt_pb_append_varint(rt_buf *b, uint64_t v)
{
    uint8_t *p = rt_buf_reserve(b, RT_PB_VARINT_MAX);
    b->len += rt_pb_put_varint(p, v);
}

void rt_pb_append_tag(rt_buf *b, uint32_t field, int wire)
{
    rt_pb_append_varint(b, ((uint64_t)field << 3) | (uint64_t)(wire & 7));
}

void rt_pb_append_len_prefix(rt_buf *b, uint32_t field, size_t payload_len)
{
    uint8_t *p = rt_buf_reserve(b, 2 * RT_PB_VARINT_MAX);
    size_t n = rt_pb_put_varint(p, ((uint64_t)field << 3) | RT_PB_WT_LEN);
    n += rt_pb_put_varint(p + n, payload_len);
    b->len += n;
}

void rt_pb_append_len_field(rt_buf *b, uint32_t field, const void *data, size_t n)
{
    rt_pb_append_len_prefix(b, field, n);
    if (n > 0) {
        rt_buf_append(b, data, n);
    }
}

void rt_pb_append_fixed32(rt_buf *b, uint32_t v)
{
    uint8_t *p = rt_buf_reserve(b, 4);
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    b->len += 4;
}

void rt_pb_append_fixed64(rt_buf *b, uint64_t v)
{
    uint8_t *p = rt_buf_reserve(b, 8);
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
    b->len += 8;
}
