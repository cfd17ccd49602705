/* test_pb.c - protobuf wire primitives: varint edge cases, pinned encodings, skip rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "pb.h"
#include "opentelemetry/proto/common/v1/common.pb-c.h"

/* Decode `n` bytes from a heap copy of exactly that size, so ASan sees any overread. */
static int decode_varint(const uint8_t *bytes, size_t n, uint64_t *out, size_t *consumed)
{
    uint8_t *copy = malloc(n ? n : 1);
    memcpy(copy, bytes, n);
    size_t pos = 0;
    int rc = rt_pb_read_varint(copy, n, &pos, out);
    *consumed = pos;
    free(copy);
    return rc;
}

static void test_varint_pinned_encodings(void **state)
{
    static const struct {
        uint64_t v;
        size_t n;
        uint8_t bytes[10];
    } cases[] = {
        {0, 1, {0x00}},
        {1, 1, {0x01}},
        {127, 1, {0x7f}},
        {128, 2, {0x80, 0x01}},
        {300, 2, {0xac, 0x02}},
        {16383, 2, {0xff, 0x7f}},
        {16384, 3, {0x80, 0x80, 0x01}},
        {UINT32_MAX, 5, {0xff, 0xff, 0xff, 0xff, 0x0f}},
        {1ULL << 63, 10, {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01}},
        {UINT64_MAX, 10, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t out[RT_PB_VARINT_MAX];
        size_t n = rt_pb_put_varint(out, cases[i].v);
        assert_int_equal(n, cases[i].n);
        assert_memory_equal(out, cases[i].bytes, n);
        assert_int_equal(rt_pb_varint_size(cases[i].v), cases[i].n);

        rt_buf b = RT_BUF_INIT;
        rt_pb_append_varint(&b, cases[i].v);
        assert_int_equal(b.len, cases[i].n);
        assert_memory_equal(b.data, cases[i].bytes, n);
        rt_buf_free(&b);

        uint64_t v;
        size_t used;
        assert_int_equal(decode_varint(cases[i].bytes, cases[i].n, &v, &used), 0);
        assert_true(v == cases[i].v);
        assert_int_equal(used, cases[i].n);
    }
}

static void test_varint_size_boundaries(void **state)
{
    for (unsigned k = 1; k < 10; k++) {
        uint64_t edge = 1ULL << (7 * k);
        assert_int_equal(rt_pb_varint_size(edge - 1), k);
        assert_int_equal(rt_pb_varint_size(edge), k + 1);
    }
    assert_int_equal(rt_pb_varint_size(UINT64_MAX), 10);
}

static void test_varint_rejects_overlong_and_overflow(void **state)
{
    uint64_t v;
    size_t used;
    /* 11 bytes: ten continuation bytes then a terminator. */
    uint8_t eleven[11];
    memset(eleven, 0x80, 10);
    eleven[10] = 0x00;
    assert_int_equal(decode_varint(eleven, 11, &v, &used), RT_PB_EVARINT);
    /* The 10th byte may only be 0 or 1. */
    uint8_t over[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    assert_int_equal(decode_varint(over, 10, &v, &used), RT_PB_EVARINT);
    over[9] = 0x81; /* continuation on the 10th byte */
    assert_int_equal(decode_varint(over, 10, &v, &used), RT_PB_EVARINT);
    /* Truncated: continuation bit set on the last available byte; and the empty buffer. */
    uint8_t trunc[3] = {0x80, 0x80, 0x80};
    for (size_t n = 0; n <= 3; n++) {
        assert_int_equal(decode_varint(trunc, n, &v, &used), RT_PB_ETRUNC);
        assert_int_equal(used, 0);
    }
    /* Non-minimal encodings are legal on the wire. */
    uint8_t nonmin[3] = {0x81, 0x80, 0x00};
    assert_int_equal(decode_varint(nonmin, 3, &v, &used), 0);
    assert_true(v == 1);
    assert_int_equal(used, 3);
    /* Trailing bytes are left alone. */
    uint8_t two[2] = {0x05, 0x06};
    assert_int_equal(decode_varint(two, 2, &v, &used), 0);
    assert_true(v == 5);
    assert_int_equal(used, 1);
}

static void test_varint_round_trip_random(void **state)
{
    uint64_t x = 0x243f6a8885a308d3ULL;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t v = x >> (x % 64); /* spread over all sizes */
        uint8_t out[RT_PB_VARINT_MAX];
        size_t n = rt_pb_put_varint(out, v);
        assert_int_equal(n, rt_pb_varint_size(v));
        uint64_t back;
        size_t used;
        assert_int_equal(decode_varint(out, n, &back, &used), 0);
        assert_true(back == v);
        assert_int_equal(used, n);
        /* Every strict prefix is truncated. */
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(decode_varint(out, k, &back, &used), RT_PB_ETRUNC);
        }
    }
}

static void test_tag_decode(void **state)
{
    uint32_t f;
    int wt;
    size_t pos = 0;
    uint8_t t1[] = {0x0a}; /* field 1, LEN */
    assert_int_equal(rt_pb_read_tag(t1, 1, &pos, &f, &wt), 0);
    assert_int_equal(f, 1);
    assert_int_equal(wt, RT_PB_WT_LEN);
    assert_int_equal(pos, 1);

    uint8_t t16[] = {0x85, 0x01}; /* field 16, fixed32 */
    pos = 0;
    assert_int_equal(rt_pb_read_tag(t16, 2, &pos, &f, &wt), 0);
    assert_int_equal(f, 16);
    assert_int_equal(wt, RT_PB_WT_FIXED32);

    uint8_t zero[] = {0x02}; /* field 0 */
    pos = 0;
    assert_int_equal(rt_pb_read_tag(zero, 1, &pos, &f, &wt), RT_PB_EFIELD);
    assert_int_equal(pos, 0);

    uint8_t maxf[5];
    size_t n = rt_pb_put_varint(maxf, ((uint64_t)RT_PB_FIELD_MAX << 3) | 1);
    pos = 0;
    assert_int_equal(rt_pb_read_tag(maxf, n, &pos, &f, &wt), 0);
    assert_int_equal(f, RT_PB_FIELD_MAX);
    assert_int_equal(wt, 1);

    uint8_t big[10];
    n = rt_pb_put_varint(big, (uint64_t)UINT32_MAX + 1); /* does not fit a 32-bit tag */
    pos = 0;
    assert_int_equal(rt_pb_read_tag(big, n, &pos, &f, &wt), RT_PB_EFIELD);

    pos = 0;
    assert_int_equal(rt_pb_read_tag(t16, 1, &pos, &f, &wt), RT_PB_ETRUNC);
}

static void test_skip_every_wire_type(void **state)
{
    /* varint, fixed64, len(3), fixed32 back to back, then a byte that must remain. */
    uint8_t buf[] = {0x96, 0x01, 1, 2, 3, 4, 5, 6, 7, 8, 0x03, 'a', 'b', 'c', 9, 9, 9, 9, 0x42};
    size_t pos = 0;
    assert_int_equal(rt_pb_skip(buf, sizeof(buf), &pos, RT_PB_WT_VARINT), 0);
    assert_int_equal(pos, 2);
    assert_int_equal(rt_pb_skip(buf, sizeof(buf), &pos, RT_PB_WT_FIXED64), 0);
    assert_int_equal(pos, 10);
    assert_int_equal(rt_pb_skip(buf, sizeof(buf), &pos, RT_PB_WT_LEN), 0);
    assert_int_equal(pos, 14);
    assert_int_equal(rt_pb_skip(buf, sizeof(buf), &pos, RT_PB_WT_FIXED32), 0);
    assert_int_equal(pos, 18);
    assert_int_equal(buf[pos], 0x42);

    /* Groups and undefined wire types are refused without moving. */
    for (int wt = 3; wt <= 7; wt++) {
        if (wt == RT_PB_WT_FIXED32) {
            continue;
        }
        pos = 0;
        assert_int_equal(rt_pb_skip(buf, sizeof(buf), &pos, wt), RT_PB_EWIRETYPE);
        assert_int_equal(pos, 0);
    }
}

static void test_fixed_and_len_truncation(void **state)
{
    uint8_t b[8] = {0x04, 0x03, 0x02, 0x01, 0x08, 0x07, 0x06, 0x05};
    uint32_t v32;
    uint64_t v64;
    size_t pos = 0;
    assert_int_equal(rt_pb_read_fixed32(b, 8, &pos, &v32), 0);
    assert_int_equal(v32, 0x01020304);
    pos = 0;
    assert_int_equal(rt_pb_read_fixed64(b, 8, &pos, &v64), 0);
    assert_true(v64 == 0x0506070801020304ULL);
    for (size_t n = 0; n < 8; n++) {
        pos = 0;
        assert_int_equal(rt_pb_read_fixed64(b, n, &pos, &v64), RT_PB_ETRUNC);
        if (n < 4) {
            assert_int_equal(rt_pb_read_fixed32(b, n, &pos, &v32), RT_PB_ETRUNC);
        }
        assert_int_equal(pos, 0);
    }
    /* Length past the end, and a length near 2^64 that must not wrap the bounds check. */
    rt_pb_slice s;
    uint8_t l1[] = {0x05, 'a', 'b'};
    pos = 0;
    assert_int_equal(rt_pb_read_len(l1, sizeof(l1), &pos, &s), RT_PB_ETRUNC);
    uint8_t huge[11];
    size_t n = rt_pb_put_varint(huge, UINT64_MAX);
    huge[n] = 'x';
    pos = 0;
    assert_int_equal(rt_pb_read_len(huge, n + 1, &pos, &s), RT_PB_ETRUNC);
    assert_int_equal(pos, 0);
    /* An exact fit is fine, and the empty length is a valid empty slice. */
    uint8_t l2[] = {0x02, 'a', 'b', 0x00};
    pos = 0;
    assert_int_equal(rt_pb_read_len(l2, sizeof(l2), &pos, &s), 0);
    assert_int_equal(s.len, 2);
    assert_memory_equal(s.p, "ab", 2);
    assert_int_equal(rt_pb_read_len(l2, sizeof(l2), &pos, &s), 0);
    assert_int_equal(s.len, 0);
    assert_int_equal(pos, 4);
}

static void test_encoders_pinned(void **state)
{
    rt_buf b = RT_BUF_INIT;
    rt_pb_append_tag(&b, 16, RT_PB_WT_FIXED32);
    rt_pb_append_fixed32(&b, 0x01020304);
    rt_pb_append_tag(&b, 7, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, 0x1122334455667788ULL);
    rt_pb_append_len_field(&b, 5, "hi", 2);
    rt_pb_append_len_field(&b, 3, "", 0);
    static const uint8_t want[] = {0x85, 0x01, 0x04, 0x03, 0x02, 0x01, 0x39, 0x88, 0x77, 0x66, 0x55,
                                   0x44, 0x33, 0x22, 0x11, 0x2a, 0x02, 'h',  'i',  0x1a, 0x00};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    rt_buf_reset(&b);

    /* A 200-byte payload needs a two-byte length prefix. */
    rt_pb_append_len_prefix(&b, 1, 200);
    static const uint8_t want2[] = {0x0a, 0xc8, 0x01};
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, want2, 3);
    assert_int_equal(rt_pb_len_field_size(1, 200), 203);
    assert_int_equal(rt_pb_tag_size(15), 1);
    assert_int_equal(rt_pb_tag_size(16), 2);
    rt_buf_free(&b);
}

/* Our encoders agree with protobuf-c, and our decoder reads protobuf-c's output (a negative
 * int64 takes the full ten bytes). */
static void test_matches_protobuf_c(void **state)
{
    static const int64_t ints[] = {0, 1, -1, 150, INT64_MIN, INT64_MAX};
    for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
        Opentelemetry__Proto__Common__V1__AnyValue av =
            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        av.int_value = ints[i];
        uint8_t packed[32];
        size_t n = opentelemetry__proto__common__v1__any_value__pack(&av, packed);

        rt_buf b = RT_BUF_INIT;
        rt_pb_append_tag(&b, 3, RT_PB_WT_VARINT);
        rt_pb_append_varint(&b, (uint64_t)ints[i]);
        assert_int_equal(b.len, n);
        assert_memory_equal(b.data, packed, n);
        rt_buf_free(&b);

        size_t pos = 0;
        uint32_t f;
        int wt;
        uint64_t v;
        assert_int_equal(rt_pb_read_tag(packed, n, &pos, &f, &wt), 0);
        assert_int_equal(f, 3);
        assert_int_equal(wt, RT_PB_WT_VARINT);
        assert_int_equal(rt_pb_read_varint(packed, n, &pos, &v), 0);
        assert_true((int64_t)v == ints[i]);
        assert_int_equal(pos, n);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_pinned_encodings),
        cmocka_unit_test(test_varint_size_boundaries),
        cmocka_unit_test(test_varint_rejects_overlong_and_overflow),
        cmocka_unit_test(test_varint_round_trip_random),
        cmocka_unit_test(test_tag_decode),
        cmocka_unit_test(test_skip_every_wire_type),
        cmocka_unit_test(test_fixed_and_len_truncation),
        cmocka_unit_test(test_encoders_pinned),
        cmocka_unit_test(test_matches_protobuf_c),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
