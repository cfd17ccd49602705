/* pb.h - protobuf wire-format primitives: bounds-checked readers and rt_buf writers.
 *
 * Readers take (buf, len, *pos): they read at buf[*pos], never touch bytes at or past buf[len],
 * advance *pos only on success, and return 0 or a negative RT_PB_E* code (rt_pb_strerror()
 * names it). Writers append to an rt_buf (alloc aborts on OOM, so they cannot fail) or, for
 * rt_pb_put_varint, write into caller memory with room for RT_PB_VARINT_MAX bytes.
 */
#ifndef RT_PB_H
#define RT_PB_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

/* Wire types. 3 and 4 (groups) are deprecated and rejected by every reader here. */
#define RT_PB_WT_VARINT  0
#define RT_PB_WT_FIXED64 1
#define RT_PB_WT_LEN     2
#define RT_PB_WT_FIXED32 5

#define RT_PB_VARINT_MAX 10
#define RT_PB_FIELD_MAX  536870911u /* 2^29 - 1 */

/* Error codes (negative). */
#define RT_PB_ETRUNC    (-1) /* the value runs past the end of the buffer */
#define RT_PB_EVARINT   (-2) /* varint longer than 10 bytes or overflowing 64 bits */
#define RT_PB_EFIELD    (-3) /* field number 0 or above 2^29-1 */
#define RT_PB_EWIRETYPE (-4) /* group (3/4) or unknown wire type (6/7) */

/* A borrowed view of bytes inside someone else's buffer. */
typedef struct rt_pb_slice {
    const uint8_t *p; /* ref into the buffer being read; NULL only for an absent field */
    size_t len;
} rt_pb_slice;

/* Human-readable name of an RT_PB_E* code ("truncated", ...). */
const char *rt_pb_strerror(int code);

/* Decode a base-128 varint. Rejects encodings longer than 10 bytes and a 10th byte carrying
 * more than the top bit of a uint64. Non-minimal encodings (e.g. 0x80 0x00) are accepted, as
 * protobuf parsers do. */
static inline int rt_pb_read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out);
/* The general case of rt_pb_read_varint (any length); the inline reader handles one- and
 * two-byte varints itself, which are nearly all tags and lengths in OTLP. */
int rt_pb_read_varint_slow(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out);

/* Decode a tag into field number and wire type. Rejects tags that do not fit in 32 bits, field
 * number 0, and field numbers above 2^29-1. The wire type is returned as-is (0..7); callers
 * that need to skip use rt_pb_skip(), which rejects the bad ones. */
static inline int rt_pb_read_tag(const uint8_t *buf, size_t len, size_t *pos, uint32_t *field,
                                 int *wire);

/* Little-endian fixed-width reads. */
static inline int rt_pb_read_fixed32(const uint8_t *buf, size_t len, size_t *pos, uint32_t *out);
static inline int rt_pb_read_fixed64(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out);

/* Read a length prefix and return the delimited bytes as a slice into `buf` (checked to lie
 * wholly inside buf[0..len)). */
static inline int rt_pb_read_len(const uint8_t *buf, size_t len, size_t *pos, rt_pb_slice *out);

/* Skip one field value of wire type `wire` (the tag has already been read). Wire types 0, 1, 2
 * and 5 are skipped; groups (3, 4) and unknown types give RT_PB_EWIRETYPE. */
static inline int rt_pb_skip(const uint8_t *buf, size_t len, size_t *pos, int wire);

/* ---- encoding --------------------------------------------------------------------------- */

/* Bytes needed for the minimal varint encoding of v (1..10). */
static inline size_t rt_pb_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Bytes needed for a tag of `field` (any wire type). */
static inline size_t rt_pb_tag_size(uint32_t field)
{
    return rt_pb_varint_size((uint64_t)field << 3);
}

/* Bytes of a whole length-delimited field: tag + length prefix + payload. */
static inline size_t rt_pb_len_field_size(uint32_t field, size_t payload)
{
    return rt_pb_tag_size(field) + rt_pb_varint_size(payload) + payload;
}

/* Write the minimal varint encoding of v into out (room for 10 bytes); returns bytes written. */
size_t rt_pb_put_varint(uint8_t *out, uint64_t v);

void rt_pb_append_varint(rt_buf *b, uint64_t v);
void rt_pb_append_tag(rt_buf *b, uint32_t field, int wire);
/* Tag (wire type 2) and length prefix only; the caller appends `payload_len` bytes next. */
void rt_pb_append_len_prefix(rt_buf *b, uint32_t field, size_t payload_len);
/* A whole length-delimited field: tag, length, bytes. */
void rt_pb_append_len_field(rt_buf *b, uint32_t field, const void *data, size_t n);
/* Raw little-endian values (no tag). */
void rt_pb_append_fixed32(rt_buf *b, uint32_t v);
void rt_pb_append_fixed64(rt_buf *b, uint64_t v);

/* ---- inline readers (the per-byte hot path of every walker) ---------------------------- */

static inline int rt_pb_read_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    size_t i = *pos;
    if (i < len && len - i >= 2) { /* (not i + 1 < len: i + 1 could wrap) */
        uint8_t c0 = buf[i];
        if (c0 < 0x80) {
            *out = c0;
            *pos = i + 1;
            return 0;
        }
        uint8_t c1 = buf[i + 1];
        if (c1 < 0x80) {
            *out = (uint64_t)(c0 & 0x7f) | (uint64_t)c1 << 7;
            *pos = i + 2;
            return 0;
        }
    }
    return rt_pb_read_varint_slow(buf, len, pos, out);
}

static inline int rt_pb_read_tag(const uint8_t *buf, size_t len, size_t *pos, uint32_t *field,
                                 int *wire)
{
    size_t p = *pos;
    if (p < len && buf[p] < 0x80 && buf[p] >= 8) { /* one byte, field 1..15: most tags */
        *field = (uint32_t)buf[p] >> 3;
        *wire = buf[p] & 7;
        *pos = p + 1;
        return 0;
    }
    uint64_t t;
    int rc = rt_pb_read_varint(buf, len, &p, &t);
    if (rc != 0) {
        return rc;
    }
    if (t > UINT32_MAX) {
        return RT_PB_EFIELD;
    }
    uint32_t f = (uint32_t)(t >> 3);
    if (f == 0 || f > RT_PB_FIELD_MAX) {
        return RT_PB_EFIELD;
    }
    *field = f;
    *wire = (int)(t & 7);
    *pos = p;
    return 0;
}

static inline int rt_pb_read_len(const uint8_t *buf, size_t len, size_t *pos, rt_pb_slice *out)
{
    size_t p = *pos;
    if (p < len && buf[p] < 0x80 && buf[p] < len - p) { /* one-byte length, within the input */
        out->p = buf + p + 1;
        out->len = buf[p];
        *pos = p + 1 + buf[p];
        return 0;
    }
    uint64_t n;
    int rc = rt_pb_read_varint(buf, len, &p, &n);
    if (rc != 0) {
        return rc;
    }
    /* p <= len here; compare against the remaining space so nothing can overflow. */
    if (n > (uint64_t)(len - p)) {
        return RT_PB_ETRUNC;
    }
    out->p = buf + p;
    out->len = (size_t)n;
    *pos = p + (size_t)n;
    return 0;
}

static inline int rt_pb_read_fixed32(const uint8_t *buf, size_t len, size_t *pos, uint32_t *out)
{
    if (*pos > len || len - *pos < 4) {
        return RT_PB_ETRUNC;
    }
    const uint8_t *b = buf + *pos;
    *out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
    *pos += 4;
    return 0;
}

static inline int rt_pb_read_fixed64(const uint8_t *buf, size_t len, size_t *pos, uint64_t *out)
{
    if (*pos > len || len - *pos < 8) {
        return RT_PB_ETRUNC;
    }
    const uint8_t *b = buf + *pos;
    *out = (uint64_t)b[0] | (uint64_t)b[1] << 8 | (uint64_t)b[2] << 16 | (uint64_t)b[3] << 24 |
           (uint64_t)b[4] << 32 | (uint64_t)b[5] << 40 | (uint64_t)b[6] << 48 |
           (uint64_t)b[7] << 56;
    *pos += 8;
    return 0;
}

static inline int rt_pb_skip(const uint8_t *buf, size_t len, size_t *pos, int wire)
{
    switch (wire) {
    case RT_PB_WT_VARINT: {
        uint64_t v;
        return rt_pb_read_varint(buf, len, pos, &v);
    }
    case RT_PB_WT_FIXED64: {
        uint64_t v;
        return rt_pb_read_fixed64(buf, len, pos, &v);
    }
    case RT_PB_WT_LEN: {
        rt_pb_slice s;
        return rt_pb_read_len(buf, len, pos, &s);
    }
    case RT_PB_WT_FIXED32: {
        uint32_t v;
        return rt_pb_read_fixed32(buf, len, pos, &v);
    }
    default:
        return RT_PB_EWIRETYPE;
    }
}

#endif
