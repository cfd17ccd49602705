/* test_policy.c - the tail-sampling policy engine: every leaf type's semantics at its edges,
 * and / not / drop / composite, the final decision rule, outcome counters, and the config
 * parser (the seed configuration loads; every error kind names its file:line and key path).
 *
 * Spans are encoded here by hand with the protobuf writers and walked with rt_otlp_scan, so the
 * engine sees exactly what the buffer hands it. Time is always injected. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "otlp_scan.h"
#include "pb.h"
#include "policy.h"
#include "policy_internal.h"

#define MS  1000000ull
#define SEC 1000000000ull

/* ---- building traces ----------------------------------------------------------------------- */

typedef struct tattr {
    const char *key; /* NULL ends a list */
    char kind;       /* 's' string, 'i' int, 'd' double, 'b' bool */
    const char *s;
    int64_t i;
    double d;
    int b;
} tattr;

#define AS(k, v)                                                                                   \
    {                                                                                              \
        k, 's', v, 0, 0, 0                                                                         \
    }
#define AI(k, v)                                                                                   \
    {                                                                                              \
        k, 'i', NULL, v, 0, 0                                                                      \
    }
#define AD(k, v)                                                                                   \
    {                                                                                              \
        k, 'd', NULL, 0, v, 0                                                                      \
    }
#define AB(k, v)                                                                                   \
    {                                                                                              \
        k, 'b', NULL, 0, 0, v                                                                      \
    }

#define NO_STATUS (-1)

typedef struct tspan {
    int res; /* which of the trace's two resources it sits under */
    uint64_t start_ns, end_ns;
    int status; /* Status.code, or NO_STATUS for a span without a status field */
    uint32_t flags;
    const char *tracestate;
    tattr attrs[4];
} tspan;

typedef struct ttrace {
    uint8_t id[16];
    tattr res[2][4];
    size_t n;
    tspan spans[8];
} ttrace;

static void put_kv(rt_buf *out, uint32_t field, const tattr *a)
{
    rt_buf any = RT_BUF_INIT, kv = RT_BUF_INIT;
    switch (a->kind) {
    case 's':
        rt_pb_append_len_field(&any, 1, a->s, strlen(a->s));
        break;
    case 'b':
        rt_pb_append_tag(&any, 2, RT_PB_WT_VARINT);
        rt_pb_append_varint(&any, (uint64_t)a->b);
        break;
    case 'i':
        rt_pb_append_tag(&any, 3, RT_PB_WT_VARINT);
        rt_pb_append_varint(&any, (uint64_t)a->i);
        break;
    case 'd': {
        uint64_t bits;
        memcpy(&bits, &a->d, sizeof bits);
        rt_pb_append_tag(&any, 4, RT_PB_WT_FIXED64);
        rt_pb_append_fixed64(&any, bits);
        break;
    }
    default:
        fail();
    }
    rt_pb_append_len_field(&kv, 1, a->key, strlen(a->key));
    rt_pb_append_len_field(&kv, 2, any.data, any.len);
    rt_pb_append_len_field(out, field, kv.data, kv.len);
    rt_buf_free(&any);
    rt_buf_free(&kv);
}

static void put_span(rt_buf *out, const ttrace *t, const tspan *s, size_t idx)
{
    rt_buf b = RT_BUF_INIT;
    uint8_t sid[8] = {0, 0, 0, 0, 0, 0, 0, (uint8_t)(idx + 1)};
    rt_pb_append_len_field(&b, 1, t->id, 16);
    rt_pb_append_len_field(&b, 2, sid, 8);
    if (s->tracestate != NULL) {
        rt_pb_append_len_field(&b, 3, s->tracestate, strlen(s->tracestate));
    }
    rt_pb_append_len_field(&b, 5, "op", 2);
    rt_pb_append_tag(&b, 7, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, s->start_ns);
    rt_pb_append_tag(&b, 8, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, s->end_ns);
    for (const tattr *a = s->attrs; a->key != NULL; a++) {
        put_kv(&b, 9, a);
    }
    if (s->status != NO_STATUS) {
        rt_buf st = RT_BUF_INIT;
        rt_pb_append_len_field(&st, 2, "m", 1);
        if (s->status != 0) {
            rt_pb_append_tag(&st, 3, RT_PB_WT_VARINT);
            rt_pb_append_varint(&st, (uint64_t)s->status);
        }
        rt_pb_append_len_field(&b, 15, st.data, st.len);
        rt_buf_free(&st);
    }
    if (s->flags != 0) {
        rt_pb_append_tag(&b, 16, RT_PB_WT_FIXED32);
        rt_pb_append_fixed32(&b, s->flags);
    }
    rt_pb_append_len_field(out, 2, b.data, b.len);
    rt_buf_free(&b);
}

/* An ExportTraceServiceRequest: one ResourceSpans per resource used, one ScopeSpans each. */
static void encode_trace(const ttrace *t, rt_buf *req)
{
    for (int r = 0; r < 2; r++) {
        rt_buf spans = RT_BUF_INIT, res = RT_BUF_INIT, rs = RT_BUF_INIT;
        for (size_t i = 0; i < t->n; i++) {
            if (t->spans[i].res == r) {
                put_span(&spans, t, &t->spans[i], i);
            }
        }
        if (spans.len > 0) {
            for (const tattr *a = t->res[r]; a->key != NULL; a++) {
                put_kv(&res, 1, a);
            }
            rt_pb_append_len_field(&rs, 1, res.data, res.len);
            rt_pb_append_len_field(&rs, 2, spans.data, spans.len);
            rt_pb_append_len_field(req, 1, rs.data, rs.len);
        }
        rt_buf_free(&spans);
        rt_buf_free(&res);
        rt_buf_free(&rs);
    }
}

/* Feed every span of `t` to a fresh per-trace state (returned, malloc'd) and fill `sum`. */
static void *feed(rt_policy_engine *e, const ttrace *t, rt_trace_summary *out)
{
    rt_buf req = RT_BUF_INIT;
    encode_trace(t, &req);
    size_t sz = rt_policy_state_size(e);
    assert_int_equal(sz % 8, 0);
    void *st = malloc(sz + 8);
    memset(st, 0xa5, sz + 8); /* init must clear whatever was there */
    rt_policy_state_init(e, st);

    rt_trace_summary sum;
    memset(&sum, 0, sizeof sum);
    memcpy(sum.trace_id, t->id, 16);
    sum.min_start_ns = UINT64_MAX;
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, req.data, req.len);
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        rt_policy_observe(e, st, &v);
        sum.span_count++;
        sum.bytes += v.span.len;
        if (v.start_ns < sum.min_start_ns) {
            sum.min_start_ns = v.start_ns;
        }
        if (v.end_ns > sum.max_end_ns) {
            sum.max_end_ns = v.end_ns;
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(sum.span_count, t->n);
    rt_buf_free(&req);
    *out = sum;
    return st;
}

/* Feed every span of `t` to a fresh per-trace state and decide at `now`. */
static rt_policy_result run(rt_policy_engine *e, const ttrace *t, uint64_t now)
{
    rt_trace_summary sum;
    void *st = feed(e, t, &sum);
    rt_policy_result res = {(rt_decision)99, 99, -1.0, 99};
    rt_decision d = rt_policy_decide(e, st, &sum, now, &res);
    assert_int_equal(d, res.decision);
    free(st);
    return res;
}

/* Whether the engine calls `t` (every span of it) settled. */
static bool settled(rt_policy_engine *e, const ttrace *t)
{
    rt_trace_summary sum;
    void *st = feed(e, t, &sum);
    bool r = rt_policy_settled(e, st, &sum);
    free(st);
    return r;
}

/* Decide a trace known only by its summary (span count, bytes, id). */
static rt_policy_result run_sum(rt_policy_engine *e, uint64_t spans, uint64_t bytes, uint64_t now)
{
    size_t sz = rt_policy_state_size(e);
    void *st = calloc(1, sz + 8);
    rt_policy_state_init(e, st);
    rt_trace_summary sum;
    memset(&sum, 0, sizeof sum);
    sum.span_count = spans;
    sum.bytes = bytes;
    sum.min_start_ns = 1 * SEC;
    sum.max_end_ns = 1 * SEC + 1 * MS;
    rt_policy_result res;
    rt_policy_decide(e, st, &sum, now, &res);
    free(st);
    return res;
}

/* ---- config helpers ----------------------------------------------------------------------- */

typedef struct fixture {
    rt_policy_set *set;
    rt_policy_engine *e;
    rt_metrics_registry *reg;
} fixture;

/* Parse `yaml`'s top-level `policies` list; NULL with the context's errors on failure. */
static rt_policy_set *parse(const char *yaml, rt_cfg_ctx *ctx)
{
    rt_cfg_doc *doc = rt_cfg_doc_load_string(ctx, yaml, strlen(yaml));
    assert_non_null(doc);
    rt_policy_set *set = rt_policy_set_parse(ctx, rt_cfg_node_get(rt_cfg_doc_root(doc), "policies"),
                                             "tail_sampling.policies");
    rt_cfg_doc_free(doc); /* the set must not keep pointers into the document */
    return set;
}

static rt_policy_set *load(const char *yaml)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_policy_set *set = parse(yaml, &ctx);
    if (set == NULL) {
        print_error("unexpected config error: %s\n", ctx.first_error);
    }
    assert_non_null(set);
    assert_int_equal(ctx.n_errors, 0);
    rt_cfg_ctx_free(&ctx);
    return set;
}

static void setup_engine(fixture *f, const char *yaml, double share, bool first_match, uint64_t now)
{
    memset(f, 0, sizeof *f);
    f->set = load(yaml);
    f->reg = rt_metrics_registry_new();
    f->e = rt_policy_engine_new(f->set, share, first_match, now, f->reg);
    assert_ptr_equal(rt_policy_engine_set(f->e), f->set);
}

static void teardown_engine(fixture *f)
{
    rt_policy_engine_free(f->e);
    rt_policy_set_free(f->set);
    rt_metrics_registry_free(f->reg);
}

static uint64_t evals(fixture *f, const char *policy, const char *outcome)
{
    return rt_counter_get(rt_metrics_counter(f->reg, "ringtail_sampler_policy_evaluations_total",
                                             "x", "policy", policy, "outcome", outcome, NULL));
}

/* The config must fail; the first error must start with `prefix` and contain `needle`. */
static void expect_error(const char *yaml, const char *prefix, const char *needle)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_policy_set *set = parse(yaml, &ctx);
    if (set != NULL || strncmp(ctx.first_error, prefix, strlen(prefix)) != 0 ||
        strstr(ctx.first_error, needle) == NULL) {
        print_error("config:\n%s\nwant prefix \"%s\" containing \"%s\"\ngot: \"%s\"\n", yaml,
                    prefix, needle, ctx.first_error);
        rt_policy_set_free(set);
        rt_cfg_ctx_free(&ctx);
        fail();
    }
    rt_cfg_ctx_free(&ctx);
}

static ttrace one_span(uint64_t start, uint64_t end)
{
    ttrace t;
    memset(&t, 0, sizeof t);
    t.id[0] = 1;
    t.n = 1;
    t.spans[0].start_ns = start;
    t.spans[0].end_ns = end;
    t.spans[0].status = NO_STATUS;
    return t;
}

/* ---- latency ------------------------------------------------------------------------------- */

static void test_latency_threshold_inclusive_in_whole_ms(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f, "policies:\n  - {name: slow, type: latency, latency: {threshold_ms: 10000}}\n",
                 1, false, 0);
    uint64_t t0 = 1700000000ull * SEC;
    ttrace t = one_span(t0, t0 + 10000 * MS);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    t = one_span(t0, t0 + 10000 * MS - 1); /* 9999.999999 ms: whole ms 9999 */
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run(f.e, &t, 0).policy, -1);
    /* Earliest start and latest end come from different spans. */
    t = one_span(t0 + 2 * SEC, t0 + 3 * SEC);
    t.n = 3;
    t.spans[1] = (tspan){.start_ns = t0, .end_ns = t0 + 1 * SEC, .status = NO_STATUS};
    t.spans[2] =
        (tspan){.res = 1, .start_ns = t0 + 5 * SEC, .end_ns = t0 + 10 * SEC, .status = NO_STATUS};
    rt_policy_result r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 0);
    teardown_engine(&f);
}

static void test_latency_upper_bound_window_exclusive_inclusive(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n  - name: mid\n    type: latency\n    latency: {threshold_ms: 100, "
                 "upper_threshold_ms: 200}\n",
                 1, false, 0);
    struct {
        uint64_t dur_ns;
        rt_decision want;
    } cases[] = {
        {100 * MS, RT_DECISION_NOT_SAMPLED},     /* == lower: excluded */
        {101 * MS - 1, RT_DECISION_NOT_SAMPLED}, /* 100.999 ms is 100 whole ms */
        {101 * MS, RT_DECISION_SAMPLED},
        {200 * MS, RT_DECISION_SAMPLED},     /* == upper: included */
        {201 * MS - 1, RT_DECISION_SAMPLED}, /* 200.999 ms is 200 whole ms */
        {201 * MS, RT_DECISION_NOT_SAMPLED},
        {0, RT_DECISION_NOT_SAMPLED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ttrace t = one_span(5 * SEC, 5 * SEC + cases[i].dur_ns);
        assert_int_equal(run(f.e, &t, 0).decision, cases[i].want);
    }
    teardown_engine(&f);
}

/* ---- status_code --------------------------------------------------------------------------- */

static void test_status_code_any_span_and_unset_without_status(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: err, type: status_code, status_code: {status_codes: [ERROR]}}\n"
                 "  - {name: unset, type: status_code, status_code: {status_codes: [UNSET]}}\n"
                 "  - {name: ok, type: status_code, status_code: {status_codes: [OK, ERROR]}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.n = 2;
    t.spans[0].status = 1;                                         /* OK */
    t.spans[1] = (tspan){.start_ns = 1, .end_ns = 2, .status = 2}; /* ERROR */
    rt_policy_result r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 0);
    assert_int_equal(evals(&f, "err", "sampled"), 1);
    assert_int_equal(evals(&f, "unset", "not_sampled"), 1); /* both spans had a real status */
    assert_int_equal(evals(&f, "ok", "sampled"), 1);

    /* A span without a status field counts as UNSET. */
    t = one_span(1, 2);
    r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 1);
    /* So does an explicit status with code 0 (field 3 absent inside Status). */
    t.spans[0].status = 0;
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    /* OK only: sampled by "ok" alone. */
    t.spans[0].status = 1;
    r = run(f.e, &t, 0);
    assert_int_equal(r.policy, 2);
    assert_int_equal(evals(&f, "err", "not_sampled"), 3);
    teardown_engine(&f);
}

/* ---- settled traces ---------------------------------------------------------------------------
 */

/* Settled only by what no later span can undo: an ERROR seen, a duration over a threshold
 * without an upper bound, an `and` of such (with a probabilistic sub: the id does not change);
 * not by an inverted match, a latency window, a rate limiter; nothing at all with a drop
 * policy in the set. A settled trace is sampled when decided. */
static void test_settled_only_when_no_later_span_can_undo_it(void **state)
{
    (void)state;
    fixture f;
    setup_engine(
        &f,
        "policies:\n"
        "  - {name: err, type: status_code, status_code: {status_codes: [ERROR]}}\n"
        "  - {name: slow, type: latency, latency: {threshold_ms: 1000}}\n"
        "  - {name: window, type: latency,\n"
        "     latency: {threshold_ms: 10, upper_threshold_ms: 20}}\n"
        "  - {name: not-a, type: string_attribute,\n"
        "     string_attribute: {key: a, values: [x], invert_match: true}}\n"
        "  - {name: limited, type: rate_limiting, rate_limiting: {spans_per_second: 1000}}\n"
        "  - name: both\n"
        "    type: and\n"
        "    and: {and_sub_policy: [\n"
        "      {name: two, type: span_count, span_count: {min_spans: 2}},\n"
        "      {name: all, type: probabilistic, probabilistic: {sampling_percentage: "
        "100}}]}\n",
        1, false, 0);
    assert_true(rt_policy_can_settle(f.e));
    ttrace t = one_span(1 * SEC, 1 * SEC + 15 * MS); /* in the window; not-a samples it too */
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    assert_false(settled(f.e, &t));
    t.spans[0].status = 2; /* ERROR */
    assert_true(settled(f.e, &t));
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    t = one_span(1 * SEC, 3 * SEC); /* slow */
    assert_true(settled(f.e, &t));
    t = one_span(1 * SEC, 1 * SEC + 1 * MS);
    assert_false(settled(f.e, &t));
    t.n = 2; /* two spans: `both` */
    t.spans[1] = t.spans[0];
    assert_true(settled(f.e, &t));
    teardown_engine(&f);

    setup_engine(&f,
                 "policies:\n"
                 "  - {name: err, type: status_code, status_code: {status_codes: [ERROR]}}\n"
                 "  - name: no-health\n"
                 "    type: drop\n"
                 "    drop: {drop_sub_policy: [{name: h, type: string_attribute,\n"
                 "      string_attribute: {key: http.route, values: [/health]}}]}\n",
                 1, false, 0);
    assert_false(rt_policy_can_settle(f.e));
    t = one_span(1, 2);
    t.spans[0].status = 2;
    assert_false(settled(f.e, &t)); /* a later /health span could still drop it */
    teardown_engine(&f);
}

/* ---- span_count ---------------------------------------------------------------------------- */

static void test_span_count_bounds_and_max_zero(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: many, type: span_count, span_count: {min_spans: 2}}\n"
                 "  - {name: few, type: span_count, span_count: {min_spans: 2, max_spans: 3}}\n",
                 1, false, 0);
    assert_int_equal(run_sum(f.e, 1, 0, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 2, 0, 0).policy, 0);
    assert_int_equal(run_sum(f.e, 1000000, 0, 0).policy, 0);
    assert_int_equal(evals(&f, "few", "sampled"), 1); /* 2 yes, 1000000 no */
    assert_int_equal(evals(&f, "few", "not_sampled"), 2);
    teardown_engine(&f);

    setup_engine(&f,
                 "policies:\n  - {name: few, type: span_count, span_count: {min_spans: 2, "
                 "max_spans: 3}}\n",
                 1, false, 0);
    assert_int_equal(run_sum(f.e, 3, 0, 0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 4, 0, 0).decision, RT_DECISION_NOT_SAMPLED);
    /* Through real spans too. */
    ttrace t = one_span(1, 2);
    t.n = 3;
    t.spans[1] = t.spans[0];
    t.spans[2] = t.spans[0];
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    teardown_engine(&f);
}

/* ---- probabilistic ------------------------------------------------------------------------- */

/* Reference FNV-1a 64, written independently of the policy (bytewise from the published
 * offset basis and prime, over one concatenated buffer). */
static uint64_t ref_fnv1a(const char *salt, const uint8_t id[16])
{
    uint8_t buf[80];
    size_t n = strlen(salt);
    memcpy(buf, salt, n);
    memcpy(buf + n, id, 16);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n + 16; i++) {
        h = (h ^ buf[i]) * 0x100000001b3ull;
    }
    return h;
}

static void hex16(const char *hex, uint8_t out[16])
{
    for (int i = 0; i < 16; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static void test_probabilistic_pinned_hashes_and_thresholds(void **state)
{
    (void)state;
    /* Hashes computed with python3 (FNV-1a 64 over salt bytes then the id bytes). */
    struct {
        const char *salt, *id;
        uint64_t hash;
    } pins[] = {
        {"default-hash-seed", "00000000000000000000000000000000", 0xe19536eed1bbac3dull},
        {"default-hash-seed", "0102030405060708090a0b0c0d0e0f10", 0xdbcf64d5420f4cadull},
        {"default-hash-seed", "ffffffffffffffffffffffffffffffff", 0x17bec3739634fe2dull},
        {"default-hash-seed", "4bf92f3577b34da6a3ce929d0e0e4736", 0xa54533ba2e4970b5ull},
        {"tier2", "4bf92f3577b34da6a3ce929d0e0e4736", 0x19f0d21ac6044031ull},
        {"tier2", "ffffffffffffffffffffffffffffffff", 0x1cc83942a18aa2f1ull},
    };
    for (size_t i = 0; i < sizeof pins / sizeof pins[0]; i++) {
        uint8_t id[16];
        hex16(pins[i].id, id);
        assert_true(ref_fnv1a(pins[i].salt, id) == pins[i].hash);
    }
    /* Thresholds as Go's big.Float computes them (python3, exact rational arithmetic with the
     * product rounded to 64 significant bits, then truncated). 33.3 % differs from the naive
     * double product, which is why it is pinned. */
    assert_true(rt_pol_probabilistic_threshold(5 / 100.0) == 922337203685477631ull);
    assert_true(rt_pol_probabilistic_threshold(50 / 100.0) == 9223372036854775807ull);
    assert_true(rt_pol_probabilistic_threshold(33.3 / 100.0) == 6142765776545279999ull);
    assert_true(rt_pol_probabilistic_threshold(99.9 / 100.0) == 18428297329635844095ull);
    assert_true(rt_pol_probabilistic_threshold(0.001 / 100.0) == 184467440737095ull);
    assert_true(rt_pol_probabilistic_threshold(100 / 100.0) == UINT64_MAX);
    assert_true(rt_pol_probabilistic_threshold(0) == 0);
    assert_true(rt_pol_probabilistic_threshold(1e-302) == 0);

    /* Decisions on the pinned ids (hash / 2^64: zero .8812, seq .8586, ff .0928, w3c .6456;
     * tier2: w3c .1013, ff .1124). */
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: p10, type: probabilistic, probabilistic: {sampling_percentage: 10}}\n",
                 1, false, 0);
    const char *ids[] = {"00000000000000000000000000000000", "0102030405060708090a0b0c0d0e0f10",
                         "ffffffffffffffffffffffffffffffff", "4bf92f3577b34da6a3ce929d0e0e4736"};
    rt_decision want10[] = {RT_DECISION_NOT_SAMPLED, RT_DECISION_NOT_SAMPLED, RT_DECISION_SAMPLED,
                            RT_DECISION_NOT_SAMPLED};
    for (int i = 0; i < 4; i++) {
        ttrace t = one_span(1, 2);
        hex16(ids[i], t.id);
        assert_int_equal(run(f.e, &t, 0).decision, want10[i]);
    }
    teardown_engine(&f);

    setup_engine(&f,
                 "policies:\n"
                 "  - {name: p88, type: probabilistic, probabilistic: {sampling_percentage: 88}}\n"
                 "  - {name: p882, type: probabilistic, probabilistic: {sampling_percentage: "
                 "88.2, hash_salt: \"\"}}\n"
                 "  - {name: t2, type: probabilistic, probabilistic: {sampling_percentage: 10.2, "
                 "hash_salt: tier2}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    hex16(ids[0], t.id); /* .8812: above 88 %, below 88.2 % (empty salt = default salt) */
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    hex16(ids[1], t.id); /* .8586 */
    assert_int_equal(run(f.e, &t, 0).policy, 0);
    hex16(ids[3], t.id); /* default .6456 -> p88; tier2 .1013 -> t2 too */
    assert_int_equal(run(f.e, &t, 0).policy, 0);
    assert_int_equal(evals(&f, "t2", "sampled"), 1);
    hex16(ids[2], t.id); /* tier2 .1124: not under 10.2 %; default .0928: under 88 % */
    assert_int_equal(run(f.e, &t, 0).policy, 0);
    assert_int_equal(evals(&f, "t2", "sampled"), 1);
    teardown_engine(&f);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_probabilistic_rate_over_random_ids(void **state)
{
    (void)state;
    const double pcts[] = {5, 33.3, 0, 100};
    for (size_t k = 0; k < 4; k++) {
        fixture f;
        char yaml[200];
        snprintf(yaml, sizeof yaml,
                 "policies:\n  - {name: p, type: probabilistic, probabilistic: "
                 "{sampling_percentage: %g, hash_salt: s%zu}}\n",
                 pcts[k], k);
        setup_engine(&f, yaml, 1, false, 0);
        uint64_t seed = 42 + k, kept = 0;
        const int n = 100000;
        for (int i = 0; i < n; i++) {
            rt_trace_summary sum;
            memset(&sum, 0, sizeof sum);
            uint64_t a = splitmix(&seed), b = splitmix(&seed);
            memcpy(sum.trace_id, &a, 8);
            memcpy(sum.trace_id + 8, &b, 8);
            if (rt_policy_decide(f.e, NULL, &sum, 0, NULL) == RT_DECISION_SAMPLED) {
                kept++;
            }
        }
        double want = pcts[k] / 100 * n;
        /* 4 sigma of a binomial(100000, p) is at most ~632. */
        assert_true((double)kept > want - 650 && (double)kept < want + 650);
        if (pcts[k] == 0) {
            assert_int_equal(kept, 0);
        }
        if (pcts[k] == 100) {
            assert_int_equal(kept, n);
        }
        teardown_engine(&f);
    }
}

/* ---- adjusted counts and the reservoir's eligibility ---------------------------------------- */

/* Decide trace number `n` (id from it) with `spans` spans and nothing observed. */
static rt_policy_result decide_n(fixture *f, uint32_t n, uint64_t spans)
{
    size_t sz = rt_policy_state_size(f->e);
    void *st = calloc(1, sz + 8);
    rt_policy_state_init(f->e, st);
    rt_trace_summary sum;
    memset(&sum, 0, sizeof sum);
    uint64_t seed = n * 7919u + 1;
    uint64_t a = splitmix(&seed), b = splitmix(&seed);
    memcpy(sum.trace_id, &a, 8);
    memcpy(sum.trace_id + 8, &b, 8);
    sum.span_count = spans;
    sum.bytes = 100 * spans;
    sum.min_start_ns = 1 * SEC;
    sum.max_end_ns = 1 * SEC + 1 * MS;
    rt_policy_result r = {(rt_decision)99, 99, -1.0, 99};
    rt_policy_decide(f->e, st, &sum, 0, &r);
    free(st);
    return r;
}

/* Keep-all policies give count 1; probabilistic 1/ratio; and the product of its subs; rate
 * limiters and composites unknown (0). With several samplers: 1 if a keep-all one sampled,
 * else the first known count in config order; sample_on_first_match: the first sampler's. */
static void test_adjusted_count_of_each_policy_kind_and_their_combination(void **state)
{
    (void)state;
    struct {
        const char *yaml;
        bool first_match;
    } cases[] = {
        {"policies:\n  - {name: all, type: always_sample}\n", false},
        {"policies:\n  - {name: q, type: probabilistic, probabilistic: {sampling_percentage: "
         "25}}\n",
         false},
        {"policies:\n  - name: a\n    type: and\n    and:\n      and_sub_policy:\n"
         "        - {name: one, type: span_count, span_count: {min_spans: 1}}\n"
         "        - {name: ten, type: probabilistic, probabilistic: {sampling_percentage: 10}}\n",
         false},
        {"policies:\n  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: "
         "1000}}\n",
         false},
        {"policies:\n  - name: c\n    type: composite\n    composite:\n"
         "      max_total_spans_per_second: 1000\n      composite_sub_policy:\n"
         "        - {name: all, type: always_sample}\n"
         "      rate_allocation: [{policy: all, percent: 100}]\n",
         false},
        {"policies:\n  - {name: ten, type: probabilistic, probabilistic: {sampling_percentage: "
         "10}}\n"
         "  - {name: one, type: span_count, span_count: {min_spans: 1}}\n",
         false},
        {"policies:\n  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: 1000}}\n"
         "  - {name: ten, type: probabilistic, probabilistic: {sampling_percentage: 10}}\n",
         false},
        {"policies:\n  - {name: q, type: probabilistic, probabilistic: {sampling_percentage: 25, "
         "hash_salt: a}}\n"
         "  - {name: ten, type: probabilistic, probabilistic: {sampling_percentage: 10, "
         "hash_salt: b}}\n",
         false},
        {"policies:\n  - {name: q, type: probabilistic, probabilistic: {sampling_percentage: 25}}\n"
         "  - {name: all, type: always_sample}\n",
         true},
        {"policies:\n  - name: n\n    type: not\n    not:\n      not_sub_policy:\n"
         "        {name: big, type: span_count, span_count: {min_spans: 5}}\n",
         false},
    };
    /* Per case: how many traces of 400 came out with each count. */
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture f;
        setup_engine(&f, cases[c].yaml, 1, cases[c].first_match, 0);
        size_t n1 = 0, n4 = 0, n10 = 0, n0 = 0;
        for (uint32_t i = 0; i < 400; i++) {
            rt_policy_result r = decide_n(&f, i, 1);
            assert_int_equal(r.reservoir, -1);
            if (r.decision != RT_DECISION_SAMPLED) {
                assert_true(r.adjusted_count == 0);
                continue;
            }
            n1 += r.adjusted_count == 1;
            n4 += r.adjusted_count == 4;
            n10 += r.adjusted_count == 10;
            n0 += r.adjusted_count == 0;
            switch (c) {
            case 5: /* ten before one: one is keep-all, whoever came first gets the name */
                assert_true(r.adjusted_count == 1);
                break;
            case 6: /* rl samples everything (first, its name), ten's count when ten samples */
                assert_int_equal(r.policy, 0);
                break;
            case 7: /* both sampled: the first known (q: 4); only ten: 10 */
                assert_true(r.adjusted_count == (r.policy == 0 ? 4 : 10));
                break;
            case 8: /* stops at the first sampler */
                assert_true(r.adjusted_count == (r.policy == 0 ? 4 : 1));
                break;
            default:
                break;
            }
        }
        size_t kept = n1 + n4 + n10 + n0;
        print_message("case %zu: kept %zu (count 1: %zu, 4: %zu, 10: %zu, unknown: %zu)\n", c, kept,
                      n1, n4, n10, n0);
        switch (c) {
        case 0:
        case 9:
            assert_int_equal(n1, 400);
            break;
        case 1:
            assert_true(n4 > 60 && n4 < 140 && n4 == kept);
            break;
        case 2:
            assert_true(n10 > 15 && n10 < 70 && n10 == kept);
            break;
        case 3:
        case 4:
            assert_int_equal(n0, 400);
            break;
        case 5:
            assert_int_equal(n1, 400);
            break;
        case 6:
            assert_true(kept == 400 && n10 > 15 && n10 < 70 && n0 == 400 - n10);
            break;
        case 7:
            assert_true(n4 > 60 && n10 > 10 && n1 == 0 && n0 == 0);
            break;
        case 8:
            assert_true(kept == 400 && n4 > 60 && n1 == 400 - n4);
            break;
        }
        teardown_engine(&f);
    }
}

/* A reservoir is evaluated last and only reported for traces nothing dropped or kept; its
 * evaluations are counted not_sampled for the others, and left to the holder for those. */
static void test_reservoir_eligibility_is_what_nothing_else_decided(void **state)
{
    (void)state;
    fixture f;
    setup_engine(
        &f,
        "policies:\n"
        "  - name: base\n"
        "    type: reservoir\n"
        "    reservoir: {traces_per_window: 10}\n"
        "  - {name: big, type: span_count, span_count: {min_spans: 5}}\n"
        "  - name: tiny\n"
        "    type: drop\n"
        "    drop:\n"
        "      drop_sub_policy:\n"
        "        - {name: t, type: span_count, span_count: {min_spans: 1, max_spans: 1}}\n",
        1, false, 0);
    rt_policy_result r = decide_n(&f, 1, 3); /* neither big nor tiny */
    assert_int_equal(r.decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(r.policy, -1);
    assert_int_equal(r.reservoir, 0);
    r = decide_n(&f, 2, 6); /* big */
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 1);
    assert_true(r.adjusted_count == 1);
    assert_int_equal(r.reservoir, -1);
    r = decide_n(&f, 3, 1); /* dropped */
    assert_int_equal(r.decision, RT_DECISION_DROPPED);
    assert_int_equal(r.reservoir, -1);
    assert_int_equal(evals(&f, "base", "not_sampled"), 2);
    assert_int_equal(evals(&f, "base", "sampled"), 0);
    rt_policy_count_outcome(f.e, 0, RT_DECISION_SAMPLED); /* the holder's report */
    assert_int_equal(evals(&f, "base", "sampled"), 1);
    assert_string_equal(rt_policy_set_type(f.set, 0), "reservoir");
    teardown_engine(&f);
}

/* ---- rate_limiting / bytes_limiting -------------------------------------------------------- */

static void test_rate_limiting_bucket_refill(void **state)
{
    (void)state;
    fixture f;
    uint64_t t0 = 777 * SEC;
    setup_engine(&f,
                 "policies:\n  - {name: rl, type: rate_limiting, rate_limiting: "
                 "{spans_per_second: 10}}\n",
                 1, false, t0);
    /* Full at start: burst 2 x 10 = 20 tokens. */
    assert_int_equal(run_sum(f.e, 15, 0, t0).decision, RT_DECISION_SAMPLED); /* 5 left */
    assert_int_equal(run_sum(f.e, 6, 0, t0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 5, 0, t0).decision, RT_DECISION_SAMPLED); /* 0 left */
    assert_int_equal(run_sum(f.e, 1, 0, t0 + 99 * MS).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 0, t0 + 100 * MS).decision, RT_DECISION_SAMPLED);
    /* Half a second more refills 5. */
    assert_int_equal(run_sum(f.e, 5, 0, t0 + 600 * MS).decision, RT_DECISION_SAMPLED);
    /* A long pause refills only up to the burst capacity. */
    assert_int_equal(run_sum(f.e, 21, 0, t0 + 100 * SEC).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 20, 0, t0 + 100 * SEC).decision, RT_DECISION_SAMPLED);
    /* A clock that goes backwards refills nothing. */
    assert_int_equal(run_sum(f.e, 1, 0, t0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(evals(&f, "rl", "sampled"), 5);
    assert_int_equal(evals(&f, "rl", "not_sampled"), 4);
    teardown_engine(&f);

    /* Explicit burst, and share 0.5: 10 sps -> 5 sps, burst 4 -> 2. */
    setup_engine(&f,
                 "policies:\n  - {name: rl, type: rate_limiting, rate_limiting: "
                 "{spans_per_second: 10, burst_capacity: 4}}\n",
                 0.5, false, 0);
    assert_int_equal(run_sum(f.e, 3, 0, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 2, 0, 0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 0, 199 * MS).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 0, 200 * MS).decision, RT_DECISION_SAMPLED);
    teardown_engine(&f);
}

static void test_bytes_limiting_bucket(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n  - {name: bl, type: bytes_limiting, bytes_limiting: "
                 "{bytes_per_second: 1000, burst_capacity: 1500}}\n",
                 1, false, 0);
    assert_int_equal(run_sum(f.e, 1, 1501, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 1500, 0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 1, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 1, 1 * MS).decision, RT_DECISION_SAMPLED);
    teardown_engine(&f);
    /* Default burst: 2 x bytes_per_second. */
    setup_engine(&f,
                 "policies:\n  - {name: bl, type: bytes_limiting, bytes_limiting: "
                 "{bytes_per_second: 1000}}\n",
                 1, false, 0);
    assert_int_equal(run_sum(f.e, 1, 2001, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 2000, 0).decision, RT_DECISION_SAMPLED);
    teardown_engine(&f);
}

/* ---- attribute policies -------------------------------------------------------------------- */

static void test_string_attribute_exact_span_and_resource(void **state)
{
    (void)state;
    fixture f;
    setup_engine(
        &f,
        "policies:\n"
        "  - name: tenants\n    type: string_attribute\n"
        "    string_attribute: {key: tenant.id, values: [acme-corp, big-bank-inc, \"\"]}\n",
        1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].attrs[0] = (tattr)AS("other", "acme-corp");
    t.spans[0].attrs[1] = (tattr)AS("tenant.id", "acme-corpX");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    t.spans[0].attrs[1] = (tattr)AS("tenant.id", "big-bank-inc");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    /* Only string values: an int attribute never matches; an empty value never matches. */
    t.spans[0].attrs[1] = (tattr)AI("tenant.id", 5);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    t.spans[0].attrs[1] = (tattr)AS("tenant.id", "");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    /* On the resource of the second span's batch. */
    t = one_span(1, 2);
    t.n = 2;
    t.spans[1] = (tspan){.res = 1, .start_ns = 1, .end_ns = 2, .status = NO_STATUS};
    t.res[0][0] = (tattr)AS("service.name", "x");
    t.res[1][0] = (tattr)AS("service.name", "y");
    t.res[1][1] = (tattr)AS("tenant.id", "acme-corp");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    t.res[1][1] = (tattr)AS("tenant.id", "acme");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);
}

static void test_string_attribute_regex_and_invert(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - name: users\n    type: string_attribute\n"
                 "    string_attribute:\n      key: user\n      values: ['^user-\\d+$', 'ADMIN']\n"
                 "      enabled_regex_matching: true\n      cache_max_size: 10\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].attrs[0] = (tattr)AS("user", "user-123");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    t.spans[0].attrs[0] = (tattr)AS("user", "user-12a");
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    t.spans[0].attrs[0] = (tattr)AS("user", "the ADMIN here"); /* unanchored, as Go */
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    /* A long value (copied to the heap to be NUL-terminated): matched to its very end. */
    char longv[700];
    memset(longv, 'x', sizeof longv);
    memcpy(longv + sizeof longv - 6, "ADMIN", 6);
    t.spans[0].attrs[0] = (tattr)AS("user", longv);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    longv[sizeof longv - 2] = 'n';
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);

    /* invert_match: sampled unless some span or resource of the trace matches. */
    setup_engine(&f,
                 "policies:\n"
                 "  - name: not-health\n    type: string_attribute\n"
                 "    string_attribute: {key: http.route, values: [/health], invert_match: true}\n",
                 1, false, 0);
    t = one_span(1, 2);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED); /* key absent */
    t.n = 3;
    t.spans[1] = (tspan){
        .start_ns = 1, .end_ns = 2, .status = NO_STATUS, .attrs = {AS("http.route", "/api")}};
    t.spans[2] = (tspan){.start_ns = 1, .end_ns = 2, .status = NO_STATUS};
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED); /* other value */
    t.spans[2].attrs[0] = (tattr)AS("http.route", "/health");
    rt_policy_result r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_NOT_SAMPLED); /* one matching span is enough */
    assert_int_equal(r.policy, -1);
    t.spans[2].attrs[0] = (tattr)AS("x", "y");
    t.res[0][0] = (tattr)AS("http.route", "/health"); /* ...or a matching resource */
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);
}

static void test_numeric_attribute_bounds_unset_and_invert(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: range, type: numeric_attribute, numeric_attribute: {key: n, "
                 "min_value: 10, max_value: 20}}\n"
                 "  - {name: atmost, type: numeric_attribute, numeric_attribute: {key: n, "
                 "max_value: -100}}\n"
                 "  - {name: atleast, type: numeric_attribute, numeric_attribute: {key: n, "
                 "min_value: 1000, max_value: 0}}\n",
                 1, false, 0);
    struct {
        tattr a;
        int want; /* policy index or -1 */
    } cases[] = {
        {AI("n", 10), 0},        {AI("n", 20), 0},        {AI("n", 9), -1},    {AI("n", 21), -1},
        {AD("n", 15.5), 0},      {AD("n", 20.5), -1},     {AS("n", "15"), -1}, {AB("n", 1), -1},
        {AI("n", -100), 1},      {AI("n", INT64_MIN), 1}, {AI("n", -99), -1},  {AI("n", 1000), 2},
        {AI("n", INT64_MAX), 2}, {AI("m", 15), -1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ttrace t = one_span(1, 2);
        t.spans[0].attrs[0] = cases[i].a;
        assert_int_equal(run(f.e, &t, 0).policy, cases[i].want);
    }
    teardown_engine(&f);

    setup_engine(&f,
                 "policies:\n  - {name: inv, type: numeric_attribute, numeric_attribute: {key: n, "
                 "min_value: 10, max_value: 20, invert_match: true}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].attrs[0] = (tattr)AI("n", 5);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    t.res[0][0] = (tattr)AI("n", 15);
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);
}

static void test_boolean_attribute_and_invert(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: dbg, type: boolean_attribute, boolean_attribute: {key: debug, value: "
                 "true}}\n"
                 "  - {name: nodbg, type: boolean_attribute, boolean_attribute: {key: debug, "
                 "value: true, invert_match: true}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].attrs[0] = (tattr)AB("debug", 1);
    assert_int_equal(run(f.e, &t, 0).policy, 0);
    assert_int_equal(evals(&f, "nodbg", "not_sampled"), 1);
    t.spans[0].attrs[0] = (tattr)AB("debug", 0);
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    t.spans[0].attrs[0] = (tattr)AS("debug", "true"); /* not a boolean */
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    teardown_engine(&f);
}

static void test_trace_state_entries(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n  - {name: ts, type: trace_state, trace_state: {key: vendor, "
                 "values: [a, b]}}\n",
                 1, false, 0);
    struct {
        const char *ts;
        rt_decision want;
    } cases[] = {
        {"vendor=a", RT_DECISION_SAMPLED},
        {"x=1,vendor=b", RT_DECISION_SAMPLED},
        {"x=1 ,\tvendor=b , y=2", RT_DECISION_SAMPLED},
        {",,vendor=a,", RT_DECISION_SAMPLED},
        {"vendor=c", RT_DECISION_NOT_SAMPLED},
        {"vendorx=a", RT_DECISION_NOT_SAMPLED},
        {"xvendor=a", RT_DECISION_NOT_SAMPLED},
        {"vendor=ab", RT_DECISION_NOT_SAMPLED},
        {"bad,vendor=a", RT_DECISION_NOT_SAMPLED}, /* member without '=': invalid tracestate */
        {"=1,vendor=a", RT_DECISION_NOT_SAMPLED},
        {"", RT_DECISION_NOT_SAMPLED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ttrace t = one_span(1, 2);
        t.spans[0].tracestate = cases[i].ts;
        if (run(f.e, &t, 0).decision != cases[i].want) {
            print_error("tracestate \"%s\"\n", cases[i].ts);
            fail();
        }
    }
    /* Any span of the trace. */
    ttrace t = one_span(1, 2);
    t.n = 2;
    t.spans[0].tracestate = "vendor=z";
    t.spans[1] = (tspan){.start_ns = 1, .end_ns = 2, .status = NO_STATUS, .tracestate = "vendor=b"};
    assert_int_equal(run(f.e, &t, 0).decision, RT_DECISION_SAMPLED);
    teardown_engine(&f);
}

static void test_trace_flags_and_always_sample(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n  - {name: flags, type: trace_flags}\n"
                 "  - {name: all, type: always_sample, always_sample: {}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].flags = 0x300; /* is-remote bits only, not sampled */
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    t.n = 2;
    t.spans[1] = (tspan){.start_ns = 1, .end_ns = 2, .status = NO_STATUS, .flags = 0x101};
    assert_int_equal(run(f.e, &t, 0).policy, 0);
    teardown_engine(&f);
}

/* ---- composition and the final rule -------------------------------------------------------- */

static void test_and_not(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - name: slow-errors\n    type: and\n    and:\n      and_sub_policy:\n"
                 "        - {name: slow, type: latency, latency: {threshold_ms: 100}}\n"
                 "        - {name: err, type: status_code, status_code: {status_codes: [ERROR]}}\n"
                 "  - name: not-error\n    type: not\n    not:\n"
                 "      not_sub_policy: {name: e, type: status_code, status_code: {status_codes: "
                 "[ERROR]}}\n",
                 1, false, 0);
    ttrace t = one_span(0, 200 * MS);
    t.spans[0].status = 2;
    assert_int_equal(run(f.e, &t, 0).policy, 0); /* slow and error */
    t = one_span(0, 50 * MS);
    t.spans[0].status = 2;
    rt_policy_result r = run(f.e, &t, 0); /* error but fast: neither */
    assert_int_equal(r.decision, RT_DECISION_NOT_SAMPLED);
    t = one_span(0, 200 * MS); /* slow, no error: only "not error" */
    assert_int_equal(run(f.e, &t, 0).policy, 1);
    assert_int_equal(evals(&f, "slow-errors", "sampled"), 1);
    assert_int_equal(evals(&f, "slow-errors", "not_sampled"), 2);
    assert_int_equal(evals(&f, "not-error", "sampled"), 1);
    teardown_engine(&f);
}

static void test_drop_overrides_and_is_evaluated_first(void **state)
{
    (void)state;
    fixture f;
    setup_engine(&f,
                 "policies:\n"
                 "  - {name: all, type: always_sample}\n"
                 "  - name: drop-health\n    type: drop\n    drop:\n      drop_sub_policy:\n"
                 "        - {name: h, type: string_attribute, string_attribute: {key: route, "
                 "values: [/health]}}\n"
                 "        - {name: ok, type: status_code, status_code: {status_codes: [OK, "
                 "UNSET]}}\n",
                 1, false, 0);
    ttrace t = one_span(1, 2);
    t.spans[0].attrs[0] = (tattr)AS("route", "/health");
    rt_policy_result r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_DROPPED);
    assert_int_equal(r.policy, 1);
    /* The drop decided first; nothing else was evaluated. */
    assert_int_equal(evals(&f, "drop-health", "dropped"), 1);
    assert_int_equal(evals(&f, "all", "sampled"), 0);
    /* Not every drop sub-policy matches: the trace is kept by always_sample. */
    t.spans[0].status = 2;
    r = run(f.e, &t, 0);
    assert_int_equal(r.decision, RT_DECISION_SAMPLED);
    assert_int_equal(r.policy, 0);
    assert_int_equal(evals(&f, "drop-health", "not_sampled"), 1);
    assert_int_equal(evals(&f, "all", "sampled"), 1);
    teardown_engine(&f);
}

static void test_sample_on_first_match_and_result_index(void **state)
{
    (void)state;
    const char *yaml = "policies:\n"
                       "  - {name: slow, type: latency, latency: {threshold_ms: 1000}}\n"
                       "  - {name: p1, type: always_sample}\n"
                       "  - {name: rl, type: rate_limiting, rate_limiting: {spans_per_second: 1, "
                       "burst_capacity: 1}}\n";
    fixture f;
    /* Without: every policy runs, the rate limiter is charged though p1 already sampled. */
    setup_engine(&f, yaml, 1, false, 0);
    assert_int_equal(run_sum(f.e, 1, 0, 0).policy, 1);
    assert_int_equal(run_sum(f.e, 1, 0, 0).policy, 1);
    assert_int_equal(evals(&f, "rl", "sampled"), 1);
    assert_int_equal(evals(&f, "rl", "not_sampled"), 1);
    assert_int_equal(evals(&f, "slow", "not_sampled"), 2);
    teardown_engine(&f);
    /* With: evaluation stops at p1; rl never runs. */
    setup_engine(&f, yaml, 1, true, 0);
    assert_int_equal(run_sum(f.e, 1, 0, 0).policy, 1);
    assert_int_equal(run_sum(f.e, 1, 0, 0).policy, 1);
    assert_int_equal(evals(&f, "rl", "sampled") + evals(&f, "rl", "not_sampled"), 0);
    assert_int_equal(evals(&f, "p1", "sampled"), 2);
    teardown_engine(&f);
    /* Without an engine registry nothing is counted and nothing crashes. */
    rt_policy_set *set = load(yaml);
    assert_int_equal(rt_policy_set_count(set), 3);
    assert_string_equal(rt_policy_set_name(set, 2), "rl");
    assert_string_equal(rt_policy_set_type(set, 2), "rate_limiting");
    rt_policy_engine *e = rt_policy_engine_new(set, 1, false, 0, NULL);
    assert_int_equal(run_sum(e, 1, 0, 0).policy, 1);
    rt_policy_engine_free(e);
    rt_policy_set_free(set);
}

static void test_composite_budgets_per_second(void **state)
{
    (void)state;
    const char *yaml = "policies:\n"
                       "  - name: comp\n    type: composite\n    composite:\n"
                       "      max_total_spans_per_second: 100\n"
                       "      policy_order: [big, any]\n"
                       "      composite_sub_policy:\n"
                       "        - {name: any, type: always_sample}\n"
                       "        - {name: big, type: span_count, span_count: {min_spans: 30}}\n"
                       "      rate_allocation:\n"
                       "        - {policy: big, percent: 60}\n"
                       "        - {policy: any, percent: 40}\n";
    fixture f;
    uint64_t t0 = 50 * SEC + 10 * MS;
    setup_engine(&f, yaml, 1, false, t0);
    /* "big" first (policy_order): 60 spans/s. */
    assert_int_equal(run_sum(f.e, 30, 0, t0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 30, 0, t0 + 10 * MS).decision, RT_DECISION_SAMPLED);
    /* Its share is used up: not sampled, and "any" is not asked although it has room. */
    assert_int_equal(run_sum(f.e, 30, 0, t0 + 20 * MS).decision, RT_DECISION_NOT_SAMPLED);
    /* Small traces go to "any": 40 spans/s. */
    assert_int_equal(run_sum(f.e, 25, 0, t0 + 30 * MS).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 16, 0, t0 + 40 * MS).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 15, 0, t0 + 50 * MS).decision, RT_DECISION_SAMPLED);
    /* The next second starts afresh. */
    assert_int_equal(run_sum(f.e, 25, 0, 51 * SEC).decision, RT_DECISION_SAMPLED); /* any */
    assert_int_equal(run_sum(f.e, 60, 0, 51 * SEC + 1 * MS).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 15, 0, 51 * SEC + 999 * MS).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 0, 51 * SEC + 999 * MS).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);

    /* share 0.5 halves every budget. */
    setup_engine(&f, yaml, 0.5, false, 0);
    assert_int_equal(run_sum(f.e, 31, 0, 0).decision, RT_DECISION_NOT_SAMPLED);
    assert_int_equal(run_sum(f.e, 30, 0, 0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 20, 0, 0).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 1, 0, 0).decision, RT_DECISION_NOT_SAMPLED);
    teardown_engine(&f);
}

static void test_composite_total_and_default_shares(void **state)
{
    (void)state;
    /* percent 0 = an equal share (100 / 3 sub-policies); "b" gets 100 %: allocations add up
     * to more than 100, so the total binds. "c" has no allocation: it never samples (as in
     * OTel). Without policy_order the file order holds. */
    fixture f;
    setup_engine(
        &f,
        "policies:\n"
        "  - name: comp\n    type: composite\n    composite:\n"
        "      max_total_spans_per_second: 99\n"
        "      composite_sub_policy:\n"
        "        - {name: a, type: span_count, span_count: {min_spans: 5, max_spans: 20}}\n"
        "        - {name: b, type: span_count, span_count: {min_spans: 21}}\n"
        "        - {name: c, type: always_sample}\n"
        "      rate_allocation: [{policy: a, percent: 0}, {policy: b, percent: 100}]\n",
        1, false, 0);
    assert_int_equal(run_sum(f.e, 80, 0, 0).decision, RT_DECISION_SAMPLED);     /* b: 80 */
    assert_int_equal(run_sum(f.e, 15, 0, 0).decision, RT_DECISION_SAMPLED);     /* a: 15 */
    assert_int_equal(run_sum(f.e, 10, 0, 0).decision, RT_DECISION_NOT_SAMPLED); /* total 105 */
    assert_int_equal(run_sum(f.e, 4, 0, 0).decision, RT_DECISION_NOT_SAMPLED);  /* c: none */
    assert_int_equal(run_sum(f.e, 19, 0, 1 * SEC).decision, RT_DECISION_SAMPLED);
    assert_int_equal(run_sum(f.e, 15, 0, 1 * SEC).decision,
                     RT_DECISION_NOT_SAMPLED);                                    /* a: 34 > 33 */
    assert_int_equal(run_sum(f.e, 14, 0, 1 * SEC).decision, RT_DECISION_SAMPLED); /* a: 33 */
    assert_int_equal(evals(&f, "comp", "sampled"), 4);
    assert_int_equal(evals(&f, "comp", "not_sampled"), 3);
    teardown_engine(&f);
}

/* ---- config -------------------------------------------------------------------------------- */

/* fixtures/seed-policies.yaml, verbatim (the shared fixture is also loaded when present). */
static const char seed_yaml[] =
    "# The tail-sampling configuration described in the seed article, in the\n"
    "# OpenTelemetry Collector's own schema. A ringtail sampler must accept it as is.\n"
    "processors:\n"
    "  tail_sampling:\n"
    "    decision_wait: 30s\n"
    "    num_traces: 100000\n"
    "    expected_new_traces_per_sec: 200\n"
    "    policies:\n"
    "      - name: keep-errors\n"
    "        type: status_code\n"
    "        status_code:\n"
    "          status_codes: [ERROR]\n"
    "      - name: keep-slow\n"
    "        type: latency\n"
    "        latency:\n"
    "          threshold_ms: 10000\n"
    "      - name: keep-tool-heavy\n"
    "        type: span_count\n"
    "        span_count:\n"
    "          min_spans: 20\n"
    "      - name: keep-baseline\n"
    "        type: probabilistic\n"
    "        probabilistic:\n"
    "          sampling_percentage: 5\n"
    "      - name: keep-baseline-rate-cap\n"
    "        type: rate_limiting\n"
    "        rate_limiting: { spans_per_second: 50 }\n"
    "      - name: keep-debug-tenants\n"
    "        type: string_attribute\n"
    "        string_attribute:\n"
    "          key: tenant.id\n"
    "          values: [ acme-corp, big-bank-inc ]\n"
    "          enabled_regex_matching: false\n";

static rt_policy_set *seed_set(rt_cfg_doc *doc, rt_cfg_ctx *ctx)
{
    const rt_cfg_node *ts =
        rt_cfg_node_get(rt_cfg_node_get(rt_cfg_doc_root(doc), "processors"), "tail_sampling");
    return rt_policy_set_parse(ctx, rt_cfg_node_get(ts, "policies"), "tail_sampling.policies");
}

static void check_seed(rt_policy_set *set)
{
    static const char *const names[] = {"keep-errors",
                                        "keep-slow",
                                        "keep-tool-heavy",
                                        "keep-baseline",
                                        "keep-baseline-rate-cap",
                                        "keep-debug-tenants"};
    static const char *const types[] = {"status_code",   "latency",       "span_count",
                                        "probabilistic", "rate_limiting", "string_attribute"};
    assert_non_null(set);
    assert_int_equal(rt_policy_set_count(set), 6);
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(rt_policy_set_name(set, i), names[i]);
        assert_string_equal(rt_policy_set_type(set, i), types[i]);
    }
    rt_policy_engine *e = rt_policy_engine_new(set, 1, false, 0, NULL);
    /* id "00..00" is outside the 5 % baseline (hash .88). */
    ttrace t = one_span(1 * SEC, 2 * SEC);
    memset(t.id, 0, 16);
    t.spans[0].status = 2;
    assert_int_equal(run(e, &t, 0).policy, 0);
    t.spans[0].status = 1;
    t.spans[0].end_ns = 11 * SEC;
    assert_int_equal(run(e, &t, 0).policy, 1);
    t.spans[0].end_ns = 2 * SEC;
    t.spans[0].attrs[0] = (tattr)AS("tenant.id", "acme-corp");
    /* The rate cap (index 4) keeps it first while it has tokens: burst 100, charged with every
     * trace evaluated (3 so far)... */
    assert_int_equal(run(e, &t, 0).policy, 4);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(run_sum(e, 19, 0, 0).policy, 4); /* 19 spans: under min_spans 20 */
    }
    assert_int_equal(run_sum(e, 3, 0, 0).policy, -1); /* 2 tokens left */
    assert_int_equal(run_sum(e, 2, 0, 0).policy, 4);
    /* ...then only the tenant policy does. */
    assert_int_equal(run(e, &t, 0).policy, 5);
    t.spans[0].attrs[0] = (tattr)AS("tenant.id", "small-shop");
    assert_int_equal(run(e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    hex16("ffffffffffffffffffffffffffffffff", t.id); /* hash .093: still not under 5 % */
    assert_int_equal(run(e, &t, 0).decision, RT_DECISION_NOT_SAMPLED);
    rt_policy_engine_free(e);
}

static void test_seed_policies_load_unchanged(void **state)
{
    (void)state;
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "seed-policies.yaml");
    rt_cfg_doc *doc = rt_cfg_doc_load_string(&ctx, seed_yaml, strlen(seed_yaml));
    assert_non_null(doc);
    rt_policy_set *set = seed_set(doc, &ctx);
    rt_cfg_doc_free(doc);
    assert_int_equal(ctx.n_errors, 0);
    check_seed(set);
    rt_policy_set_free(set);
    rt_cfg_ctx_free(&ctx);

    /* The fixture file itself (tests/fixtures holds the team's copy). */
    const char *src = getenv("RT_SOURCE_DIR");
    assert_non_null(src);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/seed-policies.yaml", src);
    rt_cfg_ctx_init(&ctx, path);
    doc = rt_cfg_doc_load_file(&ctx, path);
    assert_non_null(doc);
    set = seed_set(doc, &ctx);
    rt_cfg_doc_free(doc);
    if (set == NULL) {
        print_error("%s\n", ctx.first_error);
    }
    check_seed(set);
    rt_policy_set_free(set);
    rt_cfg_ctx_free(&ctx);
}

static void test_config_errors_name_file_line_and_key(void **state)
{
    (void)state;
    expect_error("policies:\n"
                 "  - {name: a, type: always_sample}\n"
                 "  - name: b\n    type: latency\n    latency:\n      threshold_ms: 5\n"
                 "      treshold: 6\n",
                 "t.yaml:7: tail_sampling.policies[1].latency.treshold: ", "unknown key");
    expect_error("policies:\n  - name: x\n    type: latencyy\n",
                 "t.yaml:3: tail_sampling.policies[0].type: ", "unknown policy type \"latencyy\"");
    expect_error("policies:\n  - type: always_sample\n",
                 "t.yaml:2: tail_sampling.policies[0].name: ", "missing required key");
    expect_error("policies:\n  - name: \"\"\n    type: always_sample\n",
                 "t.yaml:2: tail_sampling.policies[0].name: ", "non-empty");
    expect_error("policies:\n  - {name: a, type: always_sample}\n  - {name: b, type: "
                 "always_sample}\n  - {name: a, type: trace_flags}\n",
                 "t.yaml:4: tail_sampling.policies[2].name: ",
                 "duplicate policy name \"a\" (first used on line 2)");
    expect_error("policies:\n  - name: r\n    type: string_attribute\n    string_attribute:\n"
                 "      key: k\n      enabled_regex_matching: true\n      values:\n"
                 "        - ok.*\n        - 'bad(['\n",
                 "t.yaml:9: tail_sampling.policies[0].string_attribute: ",
                 "values[1]: bad regular expression \"bad([\"");
    expect_error("policies:\n  - name: o\n    type: ottl_condition\n    ottl_condition:\n"
                 "      span: ['attributes[\"x\"] == 1']\n",
                 "t.yaml:3: tail_sampling.policies[0].type: ",
                 "policy \"o\": ottl_condition is not supported");
    expect_error(
        "policies:\n  - name: s\n    type: status_code\n    status_code:\n"
        "      status_codes:\n        - ERROR\n        - error\n",
        "t.yaml:7: tail_sampling.policies[0].status_code: ", "unknown status code \"error\"");
    expect_error("policies:\n  - name: s\n    type: latency\n    span_count: {min_spans: 2}\n",
                 "t.yaml:4: tail_sampling.policies[0].span_count: ",
                 "has type latency but a `span_count` block");
    expect_error("policies:\n  - name: s\n    type: always_sample\n    colour: red\n",
                 "t.yaml:4: tail_sampling.policies[0].colour: ",
                 "unknown key (known: name, type, always_sample)");
    expect_error("policies:\n  - name: s\n    type: latency\n",
                 "t.yaml:2: tail_sampling.policies[0].latency: ", "missing block `latency:`");
    expect_error("policies:\n  - name: s\n    type: latency\n    latency: {threshold_ms: 10, "
                 "upper_threshold_ms: 10}\n",
                 "t.yaml:4: tail_sampling.policies[0].latency: ", "must be greater");
    expect_error("policies:\n  - name: s\n    type: probabilistic\n    probabilistic:\n"
                 "      sampling_percentage: 150\n",
                 "t.yaml:5: tail_sampling.policies[0].probabilistic.sampling_percentage: ", "150");
    expect_error("policies:\n  - name: s\n    type: numeric_attribute\n    numeric_attribute:\n"
                 "      key: n\n      min_value: 5\n      max_value: 2\n",
                 "t.yaml:7: tail_sampling.policies[0].numeric_attribute: ", "less than min_value");
    expect_error("policies:\n  - name: s\n    type: always_sample\n    always_sample: {x: 1}\n",
                 "t.yaml:4: tail_sampling.policies[0].always_sample: ", "takes no keys");
    expect_error("policies: []\n", "t.yaml:1: tail_sampling.policies: ", "at least one policy");
    expect_error("other: 1\n", "t.yaml: tail_sampling.policies: ", "expected a list of policies");
    expect_error("policies:\n  - name: a\n    type: and\n    and:\n      and_sub_policy:\n"
                 "        - name: d\n          type: drop\n          drop:\n"
                 "            drop_sub_policy: [{name: x, type: always_sample}]\n",
                 "t.yaml:7: tail_sampling.policies[0].and.and_sub_policy[0].type: ",
                 "drop is only allowed as a top-level policy");
    expect_error(
        "policies:\n  - name: a\n    type: and\n    and:\n      and_sub_policy:\n"
        "        - {name: x, type: latency, latency: {threshold_ms: -1}}\n",
        "t.yaml:6: tail_sampling.policies[0].and.and_sub_policy[0].latency.threshold_ms: ", "");
    expect_error(
        "policies:\n  - name: a\n    type: and\n    and: {}\n",
        "t.yaml:4: tail_sampling.policies[0].and.and_sub_policy: ", "missing required key");
    expect_error("policies:\n  - name: c\n    type: composite\n    composite:\n"
                 "      max_total_spans_per_second: 10\n      policy_order: [x, y]\n"
                 "      composite_sub_policy:\n        - {name: x, type: always_sample}\n",
                 "t.yaml:6: tail_sampling.policies[0].composite.policy_order[1]: ",
                 "\"y\" is not the name of a composite_sub_policy");
    expect_error("policies:\n  - name: c\n    type: composite\n    composite:\n"
                 "      max_total_spans_per_second: 10\n"
                 "      composite_sub_policy:\n        - {name: x, type: always_sample}\n"
                 "      rate_allocation:\n        - {policy: x, percent: 50}\n"
                 "        - {policy: z, percent: 10}\n",
                 "t.yaml:10: tail_sampling.policies[0].composite.rate_allocation[1]: ",
                 "policy \"z\" is not the name");
    expect_error(
        "policies:\n  - name: c\n    type: composite\n    composite:\n"
        "      max_total_spans_per_second: 10\n"
        "      composite_sub_policy:\n        - {name: x, type: always_sample}\n"
        "        - {name: y, type: always_sample}\n"
        "      rate_allocation:\n        - {policy: x, percent: 60}\n"
        "        - {policy: y, percent: 50}\n",
        "t.yaml:10: tail_sampling.policies[0].composite.rate_allocation: ", "add up to 110");
    expect_error(
        "policies:\n  - name: t\n    type: trace_state\n    trace_state: {key: k}\n",
        "t.yaml:4: tail_sampling.policies[0].trace_state.values: ", "missing required key");
}

static void test_errors_are_all_collected(void **state)
{
    (void)state;
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_policy_set *set = parse("policies:\n  - {name: a, type: nope}\n  - {name: b, type: "
                               "latency, latency: {threshold_ms: x}}\n",
                               &ctx);
    assert_null(set);
    assert_int_equal(ctx.n_errors, 2);
    assert_non_null(strstr((const char *)ctx.errors.data, "t.yaml:3: tail_sampling.policies[1]"));
    rt_cfg_ctx_free(&ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latency_threshold_inclusive_in_whole_ms),
        cmocka_unit_test(test_latency_upper_bound_window_exclusive_inclusive),
        cmocka_unit_test(test_status_code_any_span_and_unset_without_status),
        cmocka_unit_test(test_settled_only_when_no_later_span_can_undo_it),
        cmocka_unit_test(test_span_count_bounds_and_max_zero),
        cmocka_unit_test(test_probabilistic_pinned_hashes_and_thresholds),
        cmocka_unit_test(test_probabilistic_rate_over_random_ids),
        cmocka_unit_test(test_adjusted_count_of_each_policy_kind_and_their_combination),
        cmocka_unit_test(test_reservoir_eligibility_is_what_nothing_else_decided),
        cmocka_unit_test(test_rate_limiting_bucket_refill),
        cmocka_unit_test(test_bytes_limiting_bucket),
        cmocka_unit_test(test_string_attribute_exact_span_and_resource),
        cmocka_unit_test(test_string_attribute_regex_and_invert),
        cmocka_unit_test(test_numeric_attribute_bounds_unset_and_invert),
        cmocka_unit_test(test_boolean_attribute_and_invert),
        cmocka_unit_test(test_trace_state_entries),
        cmocka_unit_test(test_trace_flags_and_always_sample),
        cmocka_unit_test(test_and_not),
        cmocka_unit_test(test_drop_overrides_and_is_evaluated_first),
        cmocka_unit_test(test_sample_on_first_match_and_result_index),
        cmocka_unit_test(test_composite_budgets_per_second),
        cmocka_unit_test(test_composite_total_and_default_shares),
        cmocka_unit_test(test_seed_policies_load_unchanged),
        cmocka_unit_test(test_config_errors_name_file_line_and_key),
        cmocka_unit_test(test_errors_are_all_collected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
