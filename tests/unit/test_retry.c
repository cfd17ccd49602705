/* test_retry.c - backoff growth and jitter bounds, give-up rules, Retry-After parsing, the
 * retryable status tables and RetryInfo extraction from grpc-status-details-bin. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "buf.h"
#include "otlp_ingest.h"
#include "retry.h"

#include "google/rpc/status.pb-c.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#define MS 1000000ULL
#define S  1000000000ULL

static void test_policy_resolve_fills_defaults_and_keeps_overrides(void **state)
{
    rt_retry_policy p;
    rt_retry_policy_resolve(NULL, &p);
    assert_false(p.disabled);
    assert_int_equal(p.initial_ns, 100 * MS);
    assert_int_equal(p.max_ns, 5 * S);
    assert_true(p.multiplier == 2.0);
    assert_int_equal(p.max_elapsed_ns, 60 * S);

    rt_retry_policy in = {.initial_ns = 7 * MS, .max_elapsed_ns = 3 * S, .multiplier = 1.5};
    rt_retry_policy_resolve(&in, &p);
    assert_int_equal(p.initial_ns, 7 * MS);
    assert_int_equal(p.max_ns, 5 * S);
    assert_true(p.multiplier == 1.5);
    assert_int_equal(p.max_elapsed_ns, 3 * S);
}

static void test_backoff_cap_doubles_from_initial_and_stops_at_max(void **state)
{
    rt_retry_policy p;
    rt_retry_policy_resolve(NULL, &p);
    uint64_t expect = 100 * MS;
    for (uint32_t f = 1; f <= 6; f++) {
        assert_int_equal(rt_retry_backoff_cap_ns(&p, f), expect);
        expect *= 2;
    }
    /* 100 ms * 2^6 = 6.4 s > 5 s: capped from the 7th failure on, even for huge counts. */
    assert_int_equal(rt_retry_backoff_cap_ns(&p, 7), 5 * S);
    assert_int_equal(rt_retry_backoff_cap_ns(&p, 1000000), 5 * S);
}

static void test_backoff_is_full_jitter_within_cap_and_spread(void **state)
{
    rt_retry_policy p;
    rt_retry_policy_resolve(NULL, &p);
    uint64_t rng = 42;
    for (uint32_t f = 1; f <= 8; f++) {
        uint64_t cap = rt_retry_backoff_cap_ns(&p, f);
        uint64_t lo = UINT64_MAX, hi = 0;
        double sum = 0;
        const int n = 2000;
        for (int i = 0; i < n; i++) {
            uint64_t d = rt_retry_backoff_ns(&p, f, &rng);
            assert_true(d <= cap);
            lo = d < lo ? d : lo;
            hi = d > hi ? d : hi;
            sum += (double)d;
        }
        /* Full jitter: the draws cover [0, cap] (near both ends) with mean ~cap/2. */
        assert_true(lo < cap / 20);
        assert_true(hi > cap - cap / 20);
        double mean = sum / n;
        assert_true(mean > 0.45 * (double)cap && mean < 0.55 * (double)cap);
    }
}

static void test_backoff_same_seed_same_sequence_other_seed_differs(void **state)
{
    rt_retry_policy p;
    rt_retry_policy_resolve(NULL, &p);
    uint64_t a = 7, b = 7, c = 8;
    int differ = 0;
    for (uint32_t f = 1; f <= 10; f++) {
        uint64_t da = rt_retry_backoff_ns(&p, f, &a);
        uint64_t db = rt_retry_backoff_ns(&p, f, &b);
        uint64_t dc = rt_retry_backoff_ns(&p, f, &c);
        assert_int_equal(da, db);
        differ += da != dc;
    }
    assert_true(differ >= 9);
}

static void test_next_delay_uses_server_hint_exactly(void **state)
{
    rt_retry_policy p;
    rt_retry_policy_resolve(NULL, &p);
    uint64_t rng = 1;
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 0, 1 * S, &rng), (int64_t)(1 * S));
    /* The hint wins even when it is longer than our own cap. */
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 10 * S, 30 * S, &rng), (int64_t)(30 * S));
    /* A zero hint means "now". */
    assert_int_equal(rt_retry_next_delay_ns(&p, 3, 0, 0, &rng), 0);
}

static void test_next_delay_gives_up_past_max_elapsed(void **state)
{
    rt_retry_policy in = {.max_elapsed_ns = 2 * S};
    rt_retry_policy p;
    rt_retry_policy_resolve(&in, &p);
    uint64_t rng = 1;
    /* Budget spent. */
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 2 * S, RT_RETRY_NO_HINT, &rng), -1);
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 3 * S, 0, &rng), -1);
    /* A server delay that would end past the budget: give up rather than wait less. */
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 1500 * MS, 1 * S, &rng), -1);
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 1000 * MS, 1 * S, &rng), (int64_t)(1 * S));
    /* Our own backoff is clamped to the time left, never beyond it. */
    for (int i = 0; i < 200; i++) {
        int64_t d = rt_retry_next_delay_ns(&p, 20, 1990 * MS, RT_RETRY_NO_HINT, &rng);
        assert_true(d >= 0 && d <= (int64_t)(10 * MS));
    }
    /* Disabled: never retry. */
    in.disabled = true;
    rt_retry_policy_resolve(&in, &p);
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 0, RT_RETRY_NO_HINT, &rng), -1);
    assert_int_equal(rt_retry_next_delay_ns(&p, 1, 0, 0, &rng), -1);
}

static void test_retry_after_delta_seconds(void **state)
{
    uint64_t d = 12345;
    assert_int_equal(rt_retry_parse_retry_after("1", 0, &d), 0);
    assert_int_equal(d, 1 * S);
    assert_int_equal(rt_retry_parse_retry_after("  120 ", 0, &d), 0);
    assert_int_equal(d, 120 * S);
    assert_int_equal(rt_retry_parse_retry_after("0", 0, &d), 0);
    assert_int_equal(d, 0);
    /* Absurd values are capped at a day rather than overflowing. */
    assert_int_equal(rt_retry_parse_retry_after("99999999999999999999999", 0, &d), 0);
    assert_int_equal(d, 86400 * S);
}

static void test_retry_after_http_dates_all_three_forms(void **state)
{
    /* Sun, 06 Nov 1994 08:49:37 GMT = 784111777. "Now" is 10 s before. */
    uint64_t now = (784111777ULL - 10) * S;
    uint64_t d = 0;
    assert_int_equal(rt_retry_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, &d), 0);
    assert_int_equal(d, 10 * S);
    d = 0;
    assert_int_equal(rt_retry_parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now, &d), 0);
    assert_int_equal(d, 10 * S);
    d = 0;
    assert_int_equal(rt_retry_parse_retry_after("Sun Nov  6 08:49:37 1994", now, &d), 0);
    assert_int_equal(d, 10 * S);
    /* Half a second into the current second: the delay counts from now exactly. */
    assert_int_equal(
        rt_retry_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 500 * MS, &d), 0);
    assert_int_equal(d, 9500 * MS);
    /* A date in the past means "retry now". */
    assert_int_equal(rt_retry_parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now + 100 * S, &d),
                     0);
    assert_int_equal(d, 0);
}

static void test_retry_after_garbage_is_refused(void **state)
{
    uint64_t d = 777;
    const char *bad[] = {"",
                         "   ",
                         "soon",
                         "1.5",
                         "-1",
                         "10s",
                         "12 34",
                         "Sun, 06 Nov 1994 08:49:37",
                         "Sun, 32 Nov 1994 08:49:37 GMT",
                         "Sun, 06 Nov 1994 08:49:37 GMT trailing"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(rt_retry_parse_retry_after(bad[i], 0, &d), -1);
    }
    assert_int_equal(rt_retry_parse_retry_after(NULL, 0, &d), -1);
    assert_int_equal(d, 777); /* untouched on failure */
}

static void test_http_retryable_table_is_exactly_429_502_503_504(void **state)
{
    for (int s = 100; s < 600; s++) {
        bool expect = s == 429 || s == 502 || s == 503 || s == 504;
        assert_int_equal(rt_retry_http_retryable(s), expect);
    }
}

static void test_grpc_retryable_table_and_resource_exhausted_needs_retry_info(void **state)
{
    const int always[] = {1, 4, 10, 11, 14, 15};
    for (int code = 0; code <= 16; code++) {
        bool expect = false;
        for (size_t i = 0; i < sizeof always / sizeof always[0]; i++) {
            expect |= code == always[i];
        }
        if (code == 8) {
            assert_false(rt_retry_grpc_retryable(code, false));
            assert_true(rt_retry_grpc_retryable(code, true));
            continue;
        }
        assert_int_equal(rt_retry_grpc_retryable(code, false), expect);
        assert_int_equal(rt_retry_grpc_retryable(code, true), expect);
    }
}

/* Base64 of `b` (padded), or with the padding stripped when `strip`. Returned string is
 * malloc'd. */
static char *b64(const uint8_t *p, size_t n, bool strip)
{
    char *out = malloc(n / 3 * 4 + 8);
    int len = EVP_EncodeBlock((unsigned char *)out, p, (int)n);
    while (strip && len > 0 && out[len - 1] == '=') {
        out[--len] = '\0';
    }
    return out;
}

static void test_details_retry_info_from_ingest_encoder(void **state)
{
    /* The project's server-side encoder and the client's parser agree. */
    rt_buf st = RT_BUF_INIT;
    rt_otlp_ingest_encode_status(14, "busy", 3, &st);
    for (int strip = 0; strip <= 1; strip++) {
        char *s = b64(st.data, st.len, strip);
        uint64_t d = 0;
        assert_int_equal(rt_retry_grpc_details_delay(s, strlen(s), &d), 1);
        assert_int_equal(d, 3 * S);
        free(s);
    }
    rt_buf_free(&st);
    /* Without retry seconds the encoder adds no RetryInfo. */
    rt_buf_init(&st);
    rt_otlp_ingest_encode_status(8, "too big", 0, &st);
    char *s = b64(st.data, st.len, false);
    uint64_t d = 99;
    assert_int_equal(rt_retry_grpc_details_delay(s, strlen(s), &d), 0);
    assert_int_equal(d, 99);
    free(s);
    rt_buf_free(&st);
}

static void test_details_retry_info_nanos_other_details_and_garbage(void **state)
{
    /* Status with an unrelated detail first, then RetryInfo{1.25 s}. */
    Google__Protobuf__Duration dur = GOOGLE__PROTOBUF__DURATION__INIT;
    dur.seconds = 1;
    dur.nanos = 250000000;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    ri.retry_delay = &dur;
    uint8_t ri_buf[64];
    size_t ri_len = google__rpc__retry_info__pack(&ri, ri_buf);

    Google__Protobuf__Any other = GOOGLE__PROTOBUF__ANY__INIT;
    other.type_url = "type.googleapis.com/google.rpc.DebugInfo";
    other.value.data = (uint8_t *)"xx";
    other.value.len = 2;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
    any.value.data = ri_buf;
    any.value.len = ri_len;
    Google__Protobuf__Any *details[] = {&other, &any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = 8;
    st.message = "slow down";
    st.n_details = 2;
    st.details = details;
    uint8_t buf[256];
    size_t len = google__rpc__status__pack(&st, buf);
    char *s = b64(buf, len, true);
    uint64_t d = 0;
    assert_int_equal(rt_retry_grpc_details_delay(s, strlen(s), &d), 1);
    assert_int_equal(d, 1250 * MS);
    free(s);

    /* Only the unrelated detail: no RetryInfo. */
    st.n_details = 1;
    len = google__rpc__status__pack(&st, buf);
    s = b64(buf, len, false);
    assert_int_equal(rt_retry_grpc_details_delay(s, strlen(s), &d), 0);
    free(s);

    /* Not base64, or base64 of something that is not a Status. */
    assert_int_equal(rt_retry_grpc_details_delay("!!!not base64", 13, &d), -1);
    const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
    s = b64(junk, sizeof junk, false);
    assert_int_equal(rt_retry_grpc_details_delay(s, strlen(s), &d), -1);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_policy_resolve_fills_defaults_and_keeps_overrides),
        cmocka_unit_test(test_backoff_cap_doubles_from_initial_and_stops_at_max),
        cmocka_unit_test(test_backoff_is_full_jitter_within_cap_and_spread),
        cmocka_unit_test(test_backoff_same_seed_same_sequence_other_seed_differs),
        cmocka_unit_test(test_next_delay_uses_server_hint_exactly),
        cmocka_unit_test(test_next_delay_gives_up_past_max_elapsed),
        cmocka_unit_test(test_retry_after_delta_seconds),
        cmocka_unit_test(test_retry_after_http_dates_all_three_forms),
        cmocka_unit_test(test_retry_after_garbage_is_refused),
        cmocka_unit_test(test_http_retryable_table_is_exactly_429_502_503_504),
        cmocka_unit_test(test_grpc_retryable_table_and_resource_exhausted_needs_retry_info),
        cmocka_unit_test(test_details_retry_info_from_ingest_encoder),
        cmocka_unit_test(test_details_retry_info_nanos_other_details_and_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
