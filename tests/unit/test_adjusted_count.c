/* test_adjusted_count.c - adjusted counts and OTel thresholds: counts map to the thresholds an
 * exact integer computation gives and round to the OTel spec's published th values; hex is
 * written and parsed by the th rules; a kept span's tracestate is rewritten by the W3C and OTel
 * rules (ot moved to the front, earlier th combined, unknown counts erase th, malformed ot
 * replaced, 32-member limit), and every output, including for random inputs, is a valid
 * tracestate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

#include <cmocka.h>

#include "adjusted_count.h"
#include "alloc.h"
#include "buf.h"

#define MAXT RT_ADJ_MAX_THRESHOLD
#define RV   "0123456789abcd"

/* Independent oracle for integer counts: T = 2^56 - round(2^56 / n) in exact integers. */
static uint64_t oracle_threshold(uint64_t n)
{
    uint64_t q = MAXT / n, r = MAXT % n;
    return MAXT - (q + (2 * r >= n ? 1 : 0));
}

static void assert_rel(double got, double want, double tol)
{
    double rel = fabs(got - want) / fabs(want);
    if (!(rel <= tol)) {
        fail_msg("got %.17g want %.17g (relative error %g > %g)", got, want, rel, tol);
    }
}

static void hex_of(uint64_t t, char out[15])
{
    size_t n = rt_adj_threshold_hex(t, out);
    assert_int_equal(n, strlen(out));
}

static void test_threshold_and_hex_for_power_of_two_counts(void **state)
{
    (void)state;
    char hex[15];
    struct {
        double count;
        uint64_t t;
        const char *hex;
    } cases[] = {
        {1, 0, "0"},
        {2, UINT64_C(0x80000000000000), "8"},
        {4, UINT64_C(0xc0000000000000), "c"}, /* 25 % keep */
        {8, UINT64_C(0xe0000000000000), "e"},
        {16, UINT64_C(0xf0000000000000), "f"},
        {256, UINT64_C(0xff000000000000), "ff"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint64_t t = rt_adj_threshold(cases[i].count);
        assert_true(t == cases[i].t);
        hex_of(t, hex);
        assert_string_equal(hex, cases[i].hex);
        assert_true(rt_adj_count(t) == cases[i].count); /* exact for powers of two */
    }
}

/* The OTel spec tabulates th for 1-in-N sampling at 3, 4 and 5 significant digits (more for
 * probabilities near 0, one more digit per leading 'f'). Our full-precision threshold, rounded
 * half-up to the same number of digits, must give the same strings. */
static void test_full_precision_thresholds_round_to_spec_table(void **state)
{
    (void)state;
    struct {
        uint64_t n;
        const char *th[3];
    } table[] = {
        {3, {"aab", "aaab", "aaaab"}},
        {5, {"ccd", "cccd", "ccccd"}},
        {10, {"e66", "e666", "e6666"}},
        {100, {"fd71", "fd70a", "fd70a4"}},
        {1000, {"ffbe7", "ffbe77", "ffbe76d"}},
        {10000, {"fff972", "fff9724", "fff97247"}},
        {100000, {"ffff584", "ffff583a", "ffff583a5"}},
        {1000000, {"ffffef4", "ffffef39", "ffffef391"}},
    };
    char hex[15];
    for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        uint64_t t = rt_adj_threshold((double)table[i].n);
        assert_true(t == oracle_threshold(table[i].n));
        for (int j = 0; j < 3; j++) {
            size_t digits = strlen(table[i].th[j]);
            uint64_t unit = UINT64_C(1) << (4 * (14 - digits));
            uint64_t rounded = (t + unit / 2) / unit * unit;
            hex_of(rounded, hex);
            assert_string_equal(hex, table[i].th[j]);
        }
    }
    /* 10 % at full precision. */
    hex_of(rt_adj_threshold(10), hex);
    assert_string_equal(hex, "e6666666666666");
    hex_of(rt_adj_threshold(100), hex);
    assert_string_equal(hex, "fd70a3d70a3d71");
}

static void test_count_is_inverse_of_ratio(void **state)
{
    (void)state;
    const double ratios[] = {0.5, 0.1, 0.01, 1e-6};
    const uint64_t inverse[] = {2, 10, 100, 1000000};
    for (size_t i = 0; i < 4; i++) {
        double count = 1.0 / ratios[i];
        uint64_t t = rt_adj_threshold(count);
        assert_true(t == oracle_threshold(inverse[i]));
        assert_rel(rt_adj_count(t), count, 1e-9);
        double keep = (double)(MAXT - t) / (double)MAXT;
        assert_rel(keep, ratios[i], 1e-9);
    }
}

static void test_count_threshold_count_round_trip(void **state)
{
    (void)state;
    uint64_t prev = 0;
    /* Geometric sweep over [1, 1e6] with non-integer steps, plus some odd values. */
    for (double c = 1.0; c <= 1e6; c *= 1.0137) {
        uint64_t t = rt_adj_threshold(c);
        assert_true(t < MAXT);
        assert_true(t >= prev); /* larger counts never give smaller thresholds */
        prev = t;
        assert_rel(rt_adj_count(t), c, 1e-9);
    }
    const double odd[] = {1.5, 3.7, 12345.678, 999999.999, 7.0 / 3.0};
    for (size_t i = 0; i < sizeof(odd) / sizeof(odd[0]); i++) {
        assert_rel(rt_adj_count(rt_adj_threshold(odd[i])), odd[i], 1e-9);
    }
}

static void test_threshold_edges(void **state)
{
    (void)state;
    assert_true(rt_adj_threshold(1.0) == 0);
    assert_true(rt_adj_threshold(0.5) == 0);
    assert_true(rt_adj_threshold(0.0) == 0);
    assert_true(rt_adj_threshold(-3.0) == 0);
    assert_true(rt_adj_threshold(NAN) == 0);
    assert_true(rt_adj_threshold(1e30) == MAXT - 1);
    assert_true(rt_adj_threshold(INFINITY) == MAXT - 1);
    assert_true(rt_adj_threshold((double)MAXT) == MAXT - 1);
    assert_true(rt_adj_count(0) == 1.0);
    assert_true(rt_adj_count(MAXT - 1) == (double)MAXT);
}

static void test_hex_write(void **state)
{
    (void)state;
    char hex[15];
    assert_int_equal(rt_adj_threshold_hex(1, hex), 14);
    assert_string_equal(hex, "00000000000001"); /* leading zeros are significant */
    assert_int_equal(rt_adj_threshold_hex(UINT64_C(0x12340000000000), hex), 4);
    assert_string_equal(hex, "1234");
    assert_int_equal(rt_adj_threshold_hex(UINT64_C(0x0a000000000000), hex), 2);
    assert_string_equal(hex, "0a");
    assert_int_equal(rt_adj_threshold_hex(MAXT - 1, hex), 14);
    assert_string_equal(hex, "ffffffffffffff");
    assert_int_equal(rt_adj_threshold_hex(0, hex), 1);
    assert_string_equal(hex, "0");
}

static bool parse_str(const char *s, uint64_t *t)
{
    return rt_adj_threshold_parse(s, strlen(s), t);
}

static void test_hex_parse(void **state)
{
    (void)state;
    uint64_t t = 12345;
    assert_true(parse_str("c", &t));
    assert_true(t == UINT64_C(0xc0000000000000));
    assert_true(parse_str("8", &t));
    assert_true(t == UINT64_C(0x80000000000000));
    assert_true(parse_str("0", &t));
    assert_true(t == 0);
    assert_true(parse_str("0123456789abcd", &t));
    assert_true(t == UINT64_C(0x0123456789abcd));
    assert_true(parse_str("FD70A4", &t));
    assert_true(t == UINT64_C(0xfd70a400000000));
    assert_true(parse_str("fD70a4", &t));
    assert_true(t == UINT64_C(0xfd70a400000000));
    assert_true(parse_str("c0", &t)); /* explicit trailing zeros are allowed */
    assert_true(t == UINT64_C(0xc0000000000000));

    t = 777;
    assert_false(parse_str("0123456789abcde", &t)); /* 15 digits */
    assert_false(parse_str("", &t));
    assert_false(parse_str("g", &t));
    assert_false(parse_str("c-", &t));
    assert_false(parse_str(" c", &t));
    assert_false(parse_str("0x8", &t));
    assert_true(t == 777); /* untouched on failure */
    /* Length is honoured: only the first byte of "8z" is parsed. */
    assert_true(rt_adj_threshold_parse("8z", 1, &t));
    assert_true(t == UINT64_C(0x80000000000000));

    /* Write then parse gives the threshold back. */
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t want = (x & (MAXT - 1)) >> (i % 56); /* vary the trailing zeros */
        want <<= (i % 56);
        want &= MAXT - 1;
        char hex[15];
        size_t n = rt_adj_threshold_hex(want, hex);
        uint64_t got;
        assert_true(rt_adj_threshold_parse(hex, n, &got));
        assert_true(got == want);
    }
}

/* --- a W3C tracestate validator (Trace Context level 1, section 3.3) ------------------------- */

static bool lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool key_char(char c)
{
    return lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

/* key = simple-key / multi-tenant-key */
static bool w3c_key_ok(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    if (!at) {
        if (n < 1 || n > 256 || !lcalpha(k[0])) {
            return false;
        }
        for (size_t i = 1; i < n; i++) {
            if (!key_char(k[i])) {
                return false;
            }
        }
        return true;
    }
    size_t tn = (size_t)(at - k), sn = n - tn - 1;
    if (tn < 1 || tn > 241 || sn < 1 || sn > 14 || !lcalpha(at[1])) {
        return false;
    }
    if (!(lcalpha(k[0]) || (k[0] >= '0' && k[0] <= '9'))) {
        return false;
    }
    for (size_t i = 1; i < tn; i++) {
        if (!key_char(k[i])) {
            return false;
        }
    }
    for (size_t i = 1; i < sn; i++) {
        if (!key_char(at[1 + i])) {
            return false;
        }
    }
    return true;
}

/* value = 0*255(chr) nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E; chr = %x20 / nblk-chr */
static bool w3c_value_ok(const char *v, size_t n)
{
    if (n < 1 || n > 256) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        bool nblk = c >= 0x21 && c <= 0x7e && c != ',' && c != '=';
        if (!(nblk || (c == ' ' && i + 1 < n))) {
            return false;
        }
    }
    return true;
}

/* The ot value: OTel sub-key grammar, unique keys, a th (if any) that parses. */
static void assert_ot_value_ok(const char *v, size_t n)
{
    char keys[32][16];
    size_t nkeys = 0;
    size_t i = 0;
    assert_true(n > 0);
    while (i <= n) {
        size_t j = i;
        while (j < n && v[j] != ';') {
            j++;
        }
        const char *colon = memchr(v + i, ':', j - i);
        assert_non_null(colon);
        size_t kn = (size_t)(colon - (v + i));
        assert_true(kn >= 1 && kn < 16 && lcalpha(v[i]));
        for (size_t k = 0; k < nkeys; k++) {
            assert_false(strlen(keys[k]) == kn && memcmp(keys[k], v + i, kn) == 0);
        }
        assert_true(nkeys < 32);
        memcpy(keys[nkeys], v + i, kn);
        keys[nkeys++][kn] = '\0';
        if (kn == 2 && memcmp(v + i, "th", 2) == 0) {
            uint64_t t;
            assert_true(rt_adj_threshold_parse(colon + 1, (size_t)(v + j - colon - 1), &t));
        }
        i = j + 1;
    }
}

/* Asserts `ts` is a valid tracestate as we emit it: no OWS, no empty members, <= 32 members,
 * unique W3C keys, and a well-formed ot member if present. Returns the number of members. */
static size_t assert_valid_tracestate(const char *ts)
{
    size_t n = strlen(ts), members = 0;
    char seen[33][260];
    if (n == 0) {
        return 0;
    }
    size_t i = 0;
    while (i <= n) {
        size_t j = i;
        while (j < n && ts[j] != ',') {
            j++;
        }
        const char *eq = memchr(ts + i, '=', j - i);
        assert_non_null(eq);
        size_t kn = (size_t)(eq - (ts + i));
        if (!w3c_key_ok(ts + i, kn) || !w3c_value_ok(eq + 1, (size_t)(ts + j - eq - 1))) {
            fail_msg("invalid member %.*s in \"%s\"", (int)(j - i), ts + i, ts);
        }
        for (size_t k = 0; k < members; k++) {
            assert_false(strlen(seen[k]) == kn && memcmp(seen[k], ts + i, kn) == 0);
        }
        assert_true(members < 32);
        memcpy(seen[members], ts + i, kn);
        seen[members++][kn] = '\0';
        if (kn == 2 && memcmp(ts + i, "ot", 2) == 0) {
            assert_int_equal(members, 1); /* ot is always first */
            assert_ot_value_ok(eq + 1, (size_t)(ts + j - eq - 1));
        }
        i = j + 1;
    }
    return members;
}

/* Rewrite `in` and return the output as a NUL-terminated string (caller frees); the returned
 * count goes to *ret. Checks that the output is a valid tracestate when `valid_in` says every
 * non-ot member of the input is valid W3C. */
static char *rw_check(const char *in, double count, double *ret, bool valid_in)
{
    rt_buf out = RT_BUF_INIT;
    double r = rt_adj_tracestate_rewrite((const uint8_t *)in, strlen(in), count, &out);
    char *s = rt_strndup(out.data ? (const char *)out.data : "", out.len);
    rt_buf_free(&out);
    if (ret) {
        *ret = r;
    }
    if (valid_in) {
        assert_valid_tracestate(s);
    }
    return s;
}

static void expect(const char *in, double count, const char *want, double want_ret)
{
    double ret;
    char *got = rw_check(in, count, &ret, true);
    if (strcmp(got, want) != 0) {
        fail_msg("rewrite(\"%s\", %g): got \"%s\" want \"%s\"", in, count, got, want);
    }
    if (want_ret == RT_ADJ_UNKNOWN) {
        assert_true(ret == RT_ADJ_UNKNOWN);
    } else {
        assert_rel(ret, want_ret, 1e-12);
    }
    free(got);
}

static void test_rewrite_empty_input(void **state)
{
    (void)state;
    expect("", 2, "ot=th:8", 2);
    expect("", 1, "ot=th:0", 1);
    expect("", 4, "ot=th:c", 4);
    expect("", 10, "ot=th:e6666666666666", 10);
    expect("", RT_ADJ_UNKNOWN, "", RT_ADJ_UNKNOWN);
    expect(" \t ", 2, "ot=th:8", 2);

    rt_buf out = RT_BUF_INIT;
    assert_true(rt_adj_tracestate_rewrite(NULL, 0, 2, &out) == 2);
    assert_int_equal(out.len, 7);
    assert_memory_equal(out.data, "ot=th:8", 7);
    rt_buf_free(&out);
}

static void test_rewrite_appends_after_existing_buffer_contents(void **state)
{
    (void)state;
    rt_buf out = RT_BUF_INIT;
    rt_buf_append_str(&out, "prefix|");
    const char *in = "a=1,ot=th:8";
    assert_true(rt_adj_tracestate_rewrite((const uint8_t *)in, strlen(in), 2, &out) == 4);
    const char *want = "prefix|ot=th:c,a=1";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, strlen(want));
    rt_buf_free(&out);
}

static void test_rewrite_combines_with_earlier_threshold(void **state)
{
    (void)state;
    expect("ot=th:8", 2, "ot=th:c", 4);
    expect("ot=th:8", 1, "ot=th:8", 2);
    expect("ot=th:c", 4, "ot=th:f", 16);
    expect("ot=th:0", 2, "ot=th:8", 2);
    expect("ot=th:C", 1, "ot=th:c", 4); /* uppercase read, lowercase written */
    /* An odd earlier threshold survives a count-1 stage exactly. */
    expect("ot=th:0123456789abcd", 1, "ot=th:0123456789abcd",
           rt_adj_count(UINT64_C(0x0123456789abcd)));
    /* 10 % after 50 %: 5 % kept, count 20. */
    double ret;
    char *got = rw_check("ot=th:8", 10, &ret, true);
    assert_rel(ret, 20, 1e-12);
    uint64_t t;
    assert_true(strncmp(got, "ot=th:", 6) == 0);
    assert_true(rt_adj_threshold_parse(got + 6, strlen(got + 6), &t));
    assert_true(t == oracle_threshold(20));
    free(got);
    /* The threshold never goes down, even for counts barely above 1. */
    got = rw_check("ot=th:fffffffffffff", 1.0000000000000002, &ret, true);
    assert_true(rt_adj_threshold_parse(got + 6, strlen(got + 6), &t));
    assert_true(t >= UINT64_C(0xfffffffffffff0));
    free(got);
    /* A combined count beyond 2^56 is capped at what 56 bits can say. */
    expect("ot=th:ffffffffffffff", 1e6, "ot=th:ffffffffffffff", (double)MAXT);
}

static void test_rewrite_keeps_rv_and_unknown_subkeys_in_order(void **state)
{
    (void)state;
    expect("ot=rv:" RV ";th:8", 2, "ot=th:c;rv:" RV, 4);
    expect("ot=rv:" RV, 2, "ot=th:8;rv:" RV, 2);
    expect("ot=foo:bar;th:8;zz9:X-y.z_1;rv:" RV ";k:", 2,
           "ot=th:c;foo:bar;zz9:X-y.z_1;rv:" RV ";k:", 4);
    expect("ot=b:2;a:1", 1, "ot=th:0;b:2;a:1", 1);
}

static void test_rewrite_moves_ot_to_front_keeping_vendor_order(void **state)
{
    (void)state;
    expect("a=1,ot=th:8,b=2", 2, "ot=th:c,a=1,b=2", 4);
    expect("a=1,b=2", 2, "ot=th:8,a=1,b=2", 2);
    expect("z=9,y=8,x=7,ot=th:8", 1, "ot=th:8,z=9,y=8,x=7", 2);
    expect("t@sys=v,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", 4,
           "ot=th:c,t@sys=v,congo=t61rcWkgMzE,rojo=00f067aa0ba902b7", 4);
    /* A later duplicate ot (invalid W3C) is dropped; the left-most one is used. */
    expect("ot=th:8,a=1,ot=th:f", 2, "ot=th:c,a=1", 4);
    /* Keys that merely start with "ot" are other vendors. */
    expect("otx=1,ot@v=2", 2, "ot=th:8,otx=1,ot@v=2", 2);
}

static void test_rewrite_whitespace_and_empty_members(void **state)
{
    (void)state;
    expect(" a=1 ,\tot=th:8\t, b=2 ", 2, "ot=th:c,a=1,b=2", 4);
    expect("a=1,,b=2,", 1, "ot=th:0,a=1,b=2", 1);
    expect(",,ot=th:8,, ,\t,", 2, "ot=th:c", 4);
    expect("a=x y", 2, "ot=th:8,a=x y", 2); /* inner space of a value is its own */
}

static void test_rewrite_unknown_count_erases_threshold(void **state)
{
    (void)state;
    expect("a=1,ot=rv:" RV ";th:8;foo:bar", RT_ADJ_UNKNOWN, "ot=rv:" RV ";foo:bar,a=1",
           RT_ADJ_UNKNOWN);
    expect("ot=th:8,a=1", RT_ADJ_UNKNOWN, "a=1", RT_ADJ_UNKNOWN);
    expect("ot=th:8", RT_ADJ_UNKNOWN, "", RT_ADJ_UNKNOWN);
    expect("a=1, b=2", RT_ADJ_UNKNOWN, "a=1,b=2", RT_ADJ_UNKNOWN);
    expect("a=1,ot=rv:" RV, RT_ADJ_UNKNOWN, "ot=rv:" RV ",a=1", RT_ADJ_UNKNOWN);
    /* Malformed ot with unknown count: only a well-formed rv survives. */
    expect("ot=th:8;;rv:" RV ",a=1", RT_ADJ_UNKNOWN, "ot=rv:" RV ",a=1", RT_ADJ_UNKNOWN);
    expect("ot=junk,a=1", RT_ADJ_UNKNOWN, "a=1", RT_ADJ_UNKNOWN);
    /* NaN and negative counts are not claims we can make: treated as unknown. */
    expect("ot=th:8", NAN, "", RT_ADJ_UNKNOWN);
    expect("ot=th:8", -2, "", RT_ADJ_UNKNOWN);
}

static void test_rewrite_malformed_ot_value_is_replaced(void **state)
{
    (void)state;
    /* th in a malformed value is not trusted: the count is ours alone. */
    expect("ot=th:8;;rv:" RV, 2, "ot=th:8;rv:" RV, 2);
    expect("ot=th:8;", 2, "ot=th:8", 2);
    expect("ot=garbage", 2, "ot=th:8", 2);
    expect("ot=th:c;Foo:bar", 2, "ot=th:8", 2); /* uppercase sub-key */
    expect("ot=th:c;foo:b@r;rv:" RV, 4, "ot=th:c;rv:" RV, 4);
    expect("ot=th:c;:x", 2, "ot=th:8", 2);
    expect("ot=", 2, "ot=th:8", 2);
    expect("ot=junk;rv:123", 2, "ot=th:8", 2);                      /* bad rv dropped */
    expect("ot=junk;rv:" RV ";rv:" RV, 2, "ot=th:8", 2);            /* ambiguous rv */
    expect("ot=rv:" RV ";th:c;rv:" RV, 2, "ot=th:8", 2);            /* duplicate sub-key */
    expect("a=1,ot=th:8 ; rv:" RV ",b=2", 2, "ot=th:8,a=1,b=2", 2); /* spaces inside */
}

static void test_rewrite_unparsable_threshold_is_replaced(void **state)
{
    (void)state;
    expect("ot=th:xyz;rv:" RV ";foo:bar", 2, "ot=th:8;rv:" RV, 2);
    expect("ot=th:0123456789abcde", 4, "ot=th:c", 4); /* 15 digits */
    expect("ot=th:;foo:bar", 2, "ot=th:8", 2);
    expect("ot=th:8;th:c", 2, "ot=th:8", 2); /* duplicate th */
    expect("ot=th:xyz", RT_ADJ_UNKNOWN, "", RT_ADJ_UNKNOWN);
}

/* "k0=v0,k1=v1,...": n members. */
static char *members(size_t n, size_t ot_at, const char *ot)
{
    rt_buf b = RT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) {
            rt_buf_append_byte(&b, ',');
        }
        if (ot && i == ot_at) {
            rt_buf_append_str(&b, ot);
        } else {
            rt_buf_printf(&b, "k%zu=v%zu", i, i);
        }
    }
    char *s = rt_strndup(b.data ? (const char *)b.data : "", b.len);
    rt_buf_free(&b);
    return s;
}

static void test_rewrite_member_limit(void **state)
{
    (void)state;
    double ret;
    /* 32 members and no ot: the right-most is dropped to make room. */
    char *in = members(32, 0, NULL);
    char *got = rw_check(in, 2, &ret, true);
    char *rest = members(31, 0, NULL);
    char want[1024];
    snprintf(want, sizeof(want), "ot=th:8,%s", rest);
    assert_string_equal(got, want);
    assert_int_equal(assert_valid_tracestate(got), 32);
    free(got);

    /* Unknown count adds no ot: all 32 stay. */
    got = rw_check(in, RT_ADJ_UNKNOWN, &ret, true);
    assert_string_equal(got, in);
    free(got);
    free(in);
    free(rest);

    /* 31 members and no ot: nothing dropped. */
    in = members(31, 0, NULL);
    got = rw_check(in, 2, &ret, true);
    snprintf(want, sizeof(want), "ot=th:8,%s", in);
    assert_string_equal(got, want);
    free(got);
    free(in);

    /* 32 members including ot: ot moves to the front, nothing dropped. */
    in = members(32, 10, "ot=th:8");
    got = rw_check(in, 2, &ret, true);
    assert_int_equal(assert_valid_tracestate(got), 32);
    assert_true(strncmp(got, "ot=th:c,k0=v0,", 14) == 0);
    assert_non_null(strstr(got, "k9=v9,k11=v11"));
    assert_non_null(strstr(got, ",k31=v31"));
    free(got);
    free(in);

    /* An over-long input (40 members, invalid W3C) is cut to 32. */
    in = members(40, 0, NULL);
    got = rw_check(in, 4, &ret, true);
    assert_int_equal(assert_valid_tracestate(got), 32);
    assert_non_null(strstr(got, ",k30=v30"));
    assert_null(strstr(got, "k31="));
    free(got);
    free(in);
}

/* --- property test over random inputs ------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* Random tracestates built from valid vendor members, ot members of every kind, whitespace and
 * empty members. For each: the output is valid; non-ot members keep their order; the written th
 * encodes the returned count; a valid earlier th is never lowered; unknown counts write no th. */
static void test_rewrite_random_inputs_give_valid_output(void **state)
{
    (void)state;
    static const char *ots[] = {
        "ot=th:8",
        "ot=th:c;rv:" RV,
        "ot=rv:" RV ";th:fd70a4;x:1",
        "ot=foo:bar",
        "ot=th:zz",
        "ot=th:8;;x:1",
        "ot=",
        "ot=rv:" RV,
        "ot=th:0",
        "ot=th:ffffffff",
        "ot=a:1;b:2",
        "ot=th:E",
    };
    static const char *ws[] = {"", " ", "\t", " \t"};
    static const double counts[] = {RT_ADJ_UNKNOWN, 1, 2, 3, 10, 100, 1e6, 1.25};
    uint64_t s = 0x2545f4914f6cdd1dull;
    for (int iter = 0; iter < 20000; iter++) {
        rt_buf in = RT_BUF_INIT;
        size_t n = rng_next(&s) % 36;
        bool has_ot = false;
        uint64_t t0 = 0;
        bool t0_valid = false;
        for (size_t i = 0; i < n; i++) {
            if (i > 0) {
                rt_buf_append_byte(&in, ',');
            }
            rt_buf_append_str(&in, ws[rng_next(&s) % 4]);
            uint64_t r = rng_next(&s) % 10;
            if (r == 0) {
                /* empty member */
            } else if (r == 1 && !has_ot) {
                size_t k = rng_next(&s) % (sizeof(ots) / sizeof(ots[0]));
                rt_buf_append_str(&in, ots[k]);
                has_ot = true;
                const char *th = strstr(ots[k], "th:");
                if (th && k != 5) { /* k == 5 is malformed, its th not trusted */
                    size_t len = strcspn(th + 3, ";");
                    t0_valid = rt_adj_threshold_parse(th + 3, len, &t0);
                }
            } else {
                rt_buf_printf(&in, "m%zu=v%llu", i, (unsigned long long)(rng_next(&s) % 1000));
            }
            rt_buf_append_str(&in, ws[rng_next(&s) % 4]);
        }
        rt_buf_append_byte(&in, '\0');
        double count = counts[rng_next(&s) % (sizeof(counts) / sizeof(counts[0]))];
        double ret;
        char *got = rw_check((const char *)in.data, count, &ret, true);

        /* th present iff the count is known, and it says the returned count. */
        const char *th = strncmp(got, "ot=", 3) == 0 ? strstr(got, "th:") : NULL;
        const char *ot_end = strchr(got, ',');
        if (th && ot_end && th > ot_end) {
            th = NULL;
        }
        if (count == RT_ADJ_UNKNOWN) {
            assert_null(th);
            assert_true(ret == RT_ADJ_UNKNOWN);
        } else {
            assert_non_null(th);
            assert_true(ret >= 1.0);
            uint64_t t;
            assert_true(rt_adj_threshold_parse(th + 3, strcspn(th + 3, ";,"), &t));
            /* 2^56 - t is 2^56 / ret rounded to an integer (up to double precision). */
            double d_exact = (double)MAXT / ret;
            double d = (double)(MAXT - t);
            assert_true(fabs(d - d_exact) <= 0.5 + 1e-12 * d_exact);
            if (t0_valid) {
                assert_true(t >= t0);
                assert_rel(ret, count * rt_adj_count(t0), 1e-12);
            } else {
                assert_rel(ret, count, 1e-12);
            }
        }

        /* Vendor members m<i> appear in increasing i. */
        long last = -1;
        for (const char *p = got; (p = strstr(p, "m")) != NULL; p++) {
            if (p == got || p[-1] == ',') {
                long i = strtol(p + 1, NULL, 10);
                assert_true(i > last);
                last = i;
            }
        }
        free(got);
        rt_buf_free(&in);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_and_hex_for_power_of_two_counts),
        cmocka_unit_test(test_full_precision_thresholds_round_to_spec_table),
        cmocka_unit_test(test_count_is_inverse_of_ratio),
        cmocka_unit_test(test_count_threshold_count_round_trip),
        cmocka_unit_test(test_threshold_edges),
        cmocka_unit_test(test_hex_write),
        cmocka_unit_test(test_hex_parse),
        cmocka_unit_test(test_rewrite_empty_input),
        cmocka_unit_test(test_rewrite_appends_after_existing_buffer_contents),
        cmocka_unit_test(test_rewrite_combines_with_earlier_threshold),
        cmocka_unit_test(test_rewrite_keeps_rv_and_unknown_subkeys_in_order),
        cmocka_unit_test(test_rewrite_moves_ot_to_front_keeping_vendor_order),
        cmocka_unit_test(test_rewrite_whitespace_and_empty_members),
        cmocka_unit_test(test_rewrite_unknown_count_erases_threshold),
        cmocka_unit_test(test_rewrite_malformed_ot_value_is_replaced),
        cmocka_unit_test(test_rewrite_unparsable_threshold_is_replaced),
        cmocka_unit_test(test_rewrite_member_limit),
        cmocka_unit_test(test_rewrite_random_inputs_give_valid_output),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
