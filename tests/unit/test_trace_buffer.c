/* test_trace_buffer.c - the sampler's trace buffer against the real policy engine, with injected
 * time: when traces are decided (decision_wait, root trigger, max_age cap), early decisions on
 * overflow (oldest first, nothing lost), late spans following cached decisions, duplicate
 * suppression before and after the decision, the content of emitted requests (decoded with
 * protobuf-c), policy reload re-observing buffered spans, max_trace_bytes, 10^5 pending traces,
 * the hold hook (due traces wait for the exporter), postponed decisions, and the memory target
 * (buffered bytes vs wire bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>

#include "alloc.h"
#include "config.h"
#include "metrics.h"
#include "adjusted_count.h"
#include "otlp_gen.h"
#include "otlp_json.h"
#include "otlp_scan.h"
#include "policy.h"
#include "trace_buffer.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

#define MS  1000000ull
#define SEC 1000000000ull
#define T0  (1000 * SEC) /* monotonic time of the first ingest in every test */

static const char *const POLICIES_ERRORS_OR_TAGGED = "policies:\n"
                                                     "  - name: errors\n"
                                                     "    type: status_code\n"
                                                     "    status_code: {status_codes: [ERROR]}\n"
                                                     "  - name: tagged\n"
                                                     "    type: string_attribute\n"
                                                     "    string_attribute: {key: keep, values: "
                                                     "[\"yes\"]}\n";
static const char *const POLICIES_ERRORS_ONLY = "policies:\n"
                                                "  - name: errors\n"
                                                "    type: status_code\n"
                                                "    status_code: {status_codes: [ERROR]}\n";
static const char *const POLICIES_TAGGED_OR_SVC_B = "policies:\n"
                                                    "  - name: tagged\n"
                                                    "    type: string_attribute\n"
                                                    "    string_attribute: {key: keep, values: "
                                                    "[\"yes\"]}\n"
                                                    "  - name: svc-b\n"
                                                    "    type: string_attribute\n"
                                                    "    string_attribute: {key: service.name, "
                                                    "values: [svc-b]}\n";
static const char *const POLICIES_ALWAYS = "policies:\n"
                                           "  - name: everything\n"
                                           "    type: always_sample\n";

/* ---- building requests ---------------------------------------------------------------------- */

typedef struct sp {
    uint32_t trace;   /* trace number (trace id derived from it) */
    uint32_t span;    /* span number (> 0) */
    uint32_t parent;  /* parent span number; 0 = root */
    int status;       /* 0: no status, else the status code */
    int res;          /* 0, 1: resources "svc-a" (with schema url), "svc-b"; 2: no resource */
    int scope;        /* 0: "agent-sdk" 1.0 (with schema url); 1: "mcp"; 2: no scope */
    const char *keep; /* value of attribute "keep" (NULL: none) */
    size_t pad;       /* length of an extra string attribute, to make spans bigger */
    const char *ts;   /* trace_state (NULL: none) */
} sp;

static void trace_id_for(uint32_t n, uint8_t id[16])
{
    for (int i = 0; i < 16; i++) {
        id[i] = (uint8_t)(0xa5 ^ (i * 29));
    }
    id[0] = (uint8_t)(n >> 24);
    id[1] = (uint8_t)(n >> 16);
    id[2] = (uint8_t)(n >> 8);
    id[3] = (uint8_t)n;
}

static uint32_t trace_num_of(const uint8_t *id)
{
    return (uint32_t)id[0] << 24 | (uint32_t)id[1] << 16 | (uint32_t)id[2] << 8 | id[3];
}

static void span_id_for(uint32_t trace, uint32_t span, uint8_t id[8])
{
    uint64_t v = ((uint64_t)trace << 32) | span;
    v ^= 0x1000000000000000ull; /* never zero */
    memcpy(id, &v, 8);
}

/* Everything a built request tree allocates, freed in one go. */
typedef struct pool {
    void **p;
    size_t n, cap;
} pool;

static void *palloc(pool *pl, size_t sz)
{
    if (pl->n == pl->cap) {
        pl->cap = pl->cap ? pl->cap * 2 : 64;
        pl->p = rt_realloc(pl->p, pl->cap * sizeof(*pl->p));
    }
    return pl->p[pl->n++] = rt_calloc(1, sz ? sz : 1);
}

static void pool_free(pool *pl)
{
    for (size_t i = 0; i < pl->n; i++) {
        free(pl->p[i]);
    }
    free(pl->p);
    memset(pl, 0, sizeof(*pl));
}

static KV *str_kv(pool *pl, const char *k, const char *v)
{
    KV *kv = palloc(pl, sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = (char *)k;
    AV *av = palloc(pl, sizeof(*av));
    opentelemetry__proto__common__v1__any_value__init(av);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = (char *)v;
    kv->value = av;
    return kv;
}

static Opentelemetry__Proto__Resource__V1__Resource *make_resource(pool *pl, int res, char **url)
{
    *url = res == 0 ? "https://opentelemetry.io/schemas/1.24.0" : "";
    if (res == 2) {
        return NULL;
    }
    Opentelemetry__Proto__Resource__V1__Resource *r = palloc(pl, sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = 2;
    r->attributes = palloc(pl, 2 * sizeof(KV *));
    r->attributes[0] = str_kv(pl, "service.name", res == 0 ? "svc-a" : "svc-b");
    r->attributes[1] = str_kv(pl, "host.name", "host-0123456789.example.internal");
    return r;
}

static Opentelemetry__Proto__Common__V1__InstrumentationScope *make_scope(pool *pl, int scope,
                                                                          char **url)
{
    *url = scope == 0 ? "scope-schema" : "";
    if (scope == 2) {
        return NULL;
    }
    Opentelemetry__Proto__Common__V1__InstrumentationScope *s = palloc(pl, sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = scope == 0 ? "agent-sdk" : "mcp";
    s->version = scope == 0 ? "1.0" : "";
    return s;
}

static Span *make_span(pool *pl, const sp *s)
{
    Span *o = palloc(pl, sizeof(*o));
    opentelemetry__proto__trace__v1__span__init(o);
    o->trace_id.len = 16;
    o->trace_id.data = palloc(pl, 16);
    trace_id_for(s->trace, o->trace_id.data);
    o->span_id.len = 8;
    o->span_id.data = palloc(pl, 8);
    span_id_for(s->trace, s->span, o->span_id.data);
    if (s->parent) {
        o->parent_span_id.len = 8;
        o->parent_span_id.data = palloc(pl, 8);
        span_id_for(s->trace, s->parent, o->parent_span_id.data);
    }
    o->name = s->parent ? "execute_tool search" : "invoke_agent planner";
    if (s->ts) {
        o->trace_state = (char *)s->ts;
    }
    o->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_INTERNAL;
    o->start_time_unix_nano = 1700000000000000000ull + s->span * 1000;
    o->end_time_unix_nano = o->start_time_unix_nano + 5000000;
    o->attributes = palloc(pl, 3 * sizeof(KV *));
    if (s->keep) {
        o->attributes[o->n_attributes++] = str_kv(pl, "keep", s->keep);
    }
    if (s->pad) {
        char *v = palloc(pl, s->pad + 1);
        for (size_t i = 0; i < s->pad; i++) {
            v[i] = (char)('a' + (s->span + i) % 26);
        }
        o->attributes[o->n_attributes++] = str_kv(pl, "gen_ai.prompt.excerpt", v);
    }
    if (s->status) {
        Opentelemetry__Proto__Trace__V1__Status *st = palloc(pl, sizeof(*st));
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = s->status;
        o->status = st;
    }
    return o;
}

/* Pack spans into one request: consecutive specs with the same resource share a ResourceSpans,
 * consecutive ones with the same scope inside it share a ScopeSpans. Returns malloc'd bytes. */
static uint8_t *build(const sp *specs, size_t n, size_t *len)
{
    pool pl = {0};
    Req req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.resource_spans = palloc(&pl, n * sizeof(RS *));
    RS *rs = NULL;
    SS *ss = NULL;
    for (size_t i = 0; i < n; i++) {
        if (!rs || specs[i].res != specs[i - 1].res) {
            rs = palloc(&pl, sizeof(*rs));
            opentelemetry__proto__trace__v1__resource_spans__init(rs);
            rs->resource = make_resource(&pl, specs[i].res, &rs->schema_url);
            rs->scope_spans = palloc(&pl, n * sizeof(SS *));
            req.resource_spans[req.n_resource_spans++] = rs;
            ss = NULL;
        }
        if (!ss || specs[i].scope != specs[i - 1].scope) {
            ss = palloc(&pl, sizeof(*ss));
            opentelemetry__proto__trace__v1__scope_spans__init(ss);
            ss->scope = make_scope(&pl, specs[i].scope, &ss->schema_url);
            ss->spans = palloc(&pl, n * sizeof(Span *));
            rs->scope_spans[rs->n_scope_spans++] = ss;
        }
        ss->spans[ss->n_spans++] = make_span(&pl, &specs[i]);
    }
    uint8_t *out = rt_gen_pack(&req, len);
    pool_free(&pl);
    return out;
}

/* ---- the fixture: engine, buffer, collected output ------------------------------------------ */

typedef struct emitted {
    uint8_t *req;
    size_t len;
    size_t spans;
    uint64_t at;
} emitted;

typedef struct fx {
    rt_cfg_doc *docs[4];
    rt_policy_set *sets[4];
    rt_policy_engine *engines[4];
    size_t n_engines;
    rt_metrics_registry *reg;
    rt_tbuf *b;
    uint64_t now;
    emitted *out;
    size_t n_out, cap_out;
    size_t spans_emitted;
    size_t spans_ingested;
    bool steal; /* take the request bytes with rt_buf_steal (exercises that path) */
} fx;

static void on_emit(void *arg, rt_buf *req, size_t spans)
{
    fx *f = arg;
    if (f->n_out == f->cap_out) {
        f->cap_out = f->cap_out ? f->cap_out * 2 : 16;
        f->out = rt_realloc(f->out, f->cap_out * sizeof(*f->out));
    }
    emitted *e = &f->out[f->n_out++];
    e->spans = spans;
    e->at = f->now;
    if (f->steal) {
        e->req = rt_buf_steal(req, &e->len);
    } else {
        e->len = req->len;
        e->req = rt_malloc(req->len ? req->len : 1);
        memcpy(e->req, req->data, req->len);
    }
    f->spans_emitted += spans;
}

static rt_policy_engine *make_engine(fx *f, const char *yaml)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "policies.yaml");
    size_t i = f->n_engines++;
    assert_true(i < 4);
    f->docs[i] = rt_cfg_doc_load_string(&ctx, yaml, strlen(yaml));
    assert_non_null(f->docs[i]);
    f->sets[i] = rt_policy_set_parse(&ctx, rt_cfg_node_get(rt_cfg_doc_root(f->docs[i]), "policies"),
                                     "policies");
    if (!f->sets[i]) {
        fail_msg("policy parse: %s", ctx.first_error);
    }
    rt_cfg_ctx_free(&ctx);
    f->engines[i] = rt_policy_engine_new(f->sets[i], 1.0, false, T0, NULL);
    assert_non_null(f->engines[i]);
    return f->engines[i];
}

static rt_tbuf_opts default_opts(void)
{
    rt_tbuf_opts o = {
        .decision_wait_ns = 10 * SEC,
        .max_traces = 100000,
        .max_bytes = 1ull << 30,
        .sampled_cache_size = 1000,
        .non_sampled_cache_size = 1000,
        .emitted_span_ids = 10000,
    };
    return o;
}

static fx *fx_new(const rt_tbuf_opts *o, const char *yaml)
{
    fx *f = rt_calloc(1, sizeof(*f));
    f->reg = rt_metrics_registry_new();
    rt_policy_engine *e = make_engine(f, yaml);
    f->b = rt_tbuf_new(o, e, on_emit, f, f->reg);
    f->now = T0;
    return f;
}

static void fx_free(fx *f)
{
    rt_tbuf_free(f->b);
    for (size_t i = 0; i < f->n_engines; i++) {
        rt_policy_engine_free(f->engines[i]);
        rt_policy_set_free(f->sets[i]);
        rt_cfg_doc_free(f->docs[i]);
    }
    for (size_t i = 0; i < f->n_out; i++) {
        free(f->out[i].req);
    }
    free(f->out);
    rt_metrics_registry_free(f->reg);
    free(f);
}

static void ingest(fx *f, const sp *specs, size_t n)
{
    size_t len;
    uint8_t *req = build(specs, n, &len);
    long r = rt_tbuf_ingest(f->b, req, len, f->now);
    assert_int_equal(r, (long)n);
    f->spans_ingested += n;
    free(req);
}

static void tick(fx *f, uint64_t at)
{
    f->now = at;
    rt_tbuf_tick(f->b, at);
}

static uint64_t ctr(fx *f, const char *name, const char *l1, const char *v1, const char *l2,
                    const char *v2)
{
    rt_counter *c = l2   ? rt_metrics_counter(f->reg, name, "", l1, v1, l2, v2, NULL)
                    : l1 ? rt_metrics_counter(f->reg, name, "", l1, v1, NULL)
                         : rt_metrics_counter(f->reg, name, "", NULL);
    return rt_counter_get(c);
}

static uint64_t decisions(fx *f, const char *decision, const char *cause)
{
    return ctr(f, "ringtail_sampler_decisions_total", "decision", decision, "cause", cause);
}

static uint64_t discarded(fx *f, const char *reason)
{
    return ctr(f, "ringtail_sampler_spans_discarded_total", "reason", reason, NULL, NULL);
}

static uint64_t all_discarded(fx *f)
{
    static const char *const reasons[] = {"not_sampled", "dropped_by_policy", "late_not_sampled",
                                          "duplicate", "trace_too_large"};
    uint64_t n = 0;
    for (size_t i = 0; i < 5; i++) {
        n += discarded(f, reasons[i]);
    }
    return n;
}

/* Every span ingested is emitted, counted as discarded, or still buffered. */
static void assert_conservation(fx *f)
{
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    assert_int_equal(f->spans_ingested, f->spans_emitted + all_discarded(f) + st.buffered_spans);
    assert_int_equal(ctr(f, "ringtail_sampler_spans_received_total", NULL, NULL, NULL, NULL),
                     f->spans_ingested);
}

static size_t pending(fx *f)
{
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    return st.pending_traces;
}

/* ---- reading emitted requests --------------------------------------------------------------- */

static const char *attr_str(KV **kvs, size_t n, const char *key)
{
    const char *found = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(kvs[i]->key, key) == 0 && kvs[i]->value &&
            kvs[i]->value->value_case ==
                OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE) {
            assert_null(found); /* exactly one */
            found = kvs[i]->value->string_value;
        }
    }
    return found;
}

/* Check emitted request `i`: every span carries tailsampling.policy = `policy`; returns the
 * trace number of its spans (all the same) and the span count. */
static uint32_t check_emitted(fx *f, size_t i, const char *policy, size_t *spans)
{
    assert_true(i < f->n_out);
    Req *r = rt_gen_unpack(f->out[i].req, f->out[i].len);
    assert_non_null(r);
    size_t n = 0;
    uint32_t tnum = UINT32_MAX;
    for (size_t a = 0; a < r->n_resource_spans; a++) {
        for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
            SS *ss = r->resource_spans[a]->scope_spans[b];
            for (size_t c = 0; c < ss->n_spans; c++) {
                Span *s = ss->spans[c];
                const char *p = attr_str(s->attributes, s->n_attributes, "tailsampling.policy");
                assert_non_null(p);
                assert_string_equal(p, policy);
                assert_int_equal(s->trace_id.len, 16);
                uint32_t t = trace_num_of(s->trace_id.data);
                if (tnum != UINT32_MAX) {
                    assert_int_equal(t, tnum);
                }
                tnum = t;
                n++;
            }
        }
    }
    assert_int_equal(n, f->out[i].spans);
    rt_gen_unpack_free(r);
    *spans = n;
    return tnum;
}

/* Trace number of the first span of emitted request `i`. */
static uint32_t emitted_trace(fx *f, size_t i)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, f->out[i].req, f->out[i].len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 1);
    return trace_num_of(v.trace_id.p);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_decides_at_decision_wait_exactly_not_before(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp a[] = {{.trace = 1, .span = 1, .parent = 0, .status = 2}};
    ingest(f, a, 1);
    f->now = T0 + 400 * MS;
    sp a2[] = {{.trace = 1, .span = 2, .parent = 1}};
    ingest(f, a2, 1); /* a later span does not extend the wait (OTel: from the first span) */
    sp b[] = {{.trace = 2, .span = 1, .parent = 0}};
    ingest(f, b, 1); /* first span at +400 ms, not an error */
    tick(f, T0 + 1 * SEC - 1);
    assert_int_equal(f->n_out, 0);
    assert_int_equal(pending(f), 2);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "errors", &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(f->out[0].at, T0 + 1 * SEC);
    assert_int_equal(decisions(f, "sampled", "wait"), 1);
    assert_int_equal(pending(f), 1);
    tick(f, T0 + 1400 * MS - 1);
    assert_int_equal(pending(f), 1);
    tick(f, T0 + 1400 * MS);
    assert_int_equal(pending(f), 0);
    assert_int_equal(decisions(f, "not_sampled", "wait"), 1);
    assert_int_equal(discarded(f, "not_sampled"), 1);
    assert_conservation(f);
    fx_free(f);
}

static void test_root_span_triggers_earlier_decision(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 10 * SEC;
    o.wait_after_root_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp child[] = {{.trace = 7, .span = 2, .parent = 1}};
    ingest(f, child, 1);
    f->now = T0 + 2 * SEC;
    sp root[] = {{.trace = 7, .span = 1, .parent = 0}};
    ingest(f, root, 1);
    tick(f, T0 + 3 * SEC - 1);
    assert_int_equal(f->n_out, 0);
    tick(f, T0 + 3 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "everything", &n), 7);
    assert_int_equal(n, 2);
    assert_int_equal(decisions(f, "sampled", "root"), 1);
    assert_int_equal(decisions(f, "sampled", "wait"), 0);
    assert_conservation(f);
    fx_free(f);
}

/* With wait_after_root longer than decision_wait, a root arriving early pushes the decision to
 * root + wait_after_root; max_age caps it. A trace without a root keeps decision_wait. */
static void test_max_age_caps_a_later_root_wait(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    o.wait_after_root_ns = 5 * SEC;
    o.max_age_ns = 3 * SEC;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp a[] = {{.trace = 1, .span = 2, .parent = 1}, {.trace = 2, .span = 2, .parent = 1}};
    ingest(f, a, 2);
    f->now = T0 + 500 * MS;
    sp root[] = {{.trace = 1, .span = 1, .parent = 0}};
    ingest(f, root, 1);
    tick(f, T0 + 1 * SEC); /* trace 2 (no root): decision_wait */
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "everything", &n), 2);
    assert_int_equal(decisions(f, "sampled", "wait"), 1);
    for (uint64_t t = T0 + 1 * SEC; t < T0 + 3 * SEC; t += 10 * MS) {
        tick(f, t);
    }
    tick(f, T0 + 3 * SEC - 1);
    assert_int_equal(f->n_out, 1);
    tick(f, T0 + 3 * SEC); /* root would say 5.5 s; max_age says 3 s */
    assert_int_equal(f->n_out, 2);
    assert_int_equal(check_emitted(f, 1, "everything", &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(decisions(f, "sampled", "max_age"), 1);
    assert_int_equal(decisions(f, "sampled", "root"), 0);
    assert_conservation(f);
    fx_free(f);
}

static void test_overflow_by_traces_decides_oldest_first(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.max_traces = 3;
    o.block_on_overflow = true;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    for (uint32_t t = 1; t <= 5; t++) {
        sp s[] = {{.trace = t, .span = 1}, {.trace = t, .span = 2, .parent = 1}};
        ingest(f, s, 2);
        f->now += 10 * MS;
        assert_true(pending(f) <= 3);
    }
    assert_true(rt_tbuf_full(f->b));
    assert_int_equal(f->n_out, 2);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "everything", &n), 1);
    assert_int_equal(n, 2);
    assert_int_equal(check_emitted(f, 1, "everything", &n), 2);
    assert_int_equal(
        ctr(f, "ringtail_sampler_early_decisions_total", "reason", "traces", NULL, NULL), 2);
    assert_int_equal(decisions(f, "sampled", "overflow"), 2);
    assert_conservation(f);
    rt_tbuf_decide_all(f->b, f->now);
    assert_false(rt_tbuf_full(f->b));
    assert_int_equal(decisions(f, "sampled", "shutdown"), 3);
    assert_int_equal(f->spans_emitted, 10);
    assert_conservation(f);
    fx_free(f);
}

/* Early decisions take what loses least first: a settled trace (an ERROR span: kept whatever
 * comes), then a complete one (its root arrived), then the oldest still in progress; a later
 * span of the settled trace follows it out. */
static void test_overflow_decides_settled_then_complete_then_oldest(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.max_traces = 3;
    fx *f = fx_new(&o, POLICIES_ERRORS_ONLY);
    sp a[] = {{.trace = 1, .span = 2, .parent = 1}};              /* oldest, in progress */
    sp b[] = {{.trace = 2, .span = 1}};                           /* complete */
    sp c[] = {{.trace = 3, .span = 2, .parent = 1, .status = 2}}; /* settled: ERROR */
    ingest(f, a, 1);
    f->now += 10 * MS;
    ingest(f, b, 1);
    f->now += 10 * MS;
    ingest(f, c, 1);
    f->now += 10 * MS;
    sp d[] = {{.trace = 4, .span = 2, .parent = 1}};
    ingest(f, d, 1); /* takes trace 3: kept */
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "errors", &n), 3);
    sp c2[] = {{.trace = 3, .span = 3, .parent = 1}};
    ingest(f, c2, 1); /* follows it out */
    assert_int_equal(f->n_out, 2);
    assert_int_equal(check_emitted(f, 1, "errors", &n), 3);
    sp e[] = {{.trace = 5, .span = 2, .parent = 1}};
    ingest(f, e, 1); /* takes trace 2, the complete one, not trace 1 */
    const char *pk = "ringtail_sampler_early_decision_picks_total";
    assert_int_equal(ctr(f, pk, "trace", "complete", NULL, NULL), 1);
    assert_int_equal(ctr(f, pk, "trace", "in_progress", NULL, NULL), 0);
    sp g[] = {{.trace = 6, .span = 2, .parent = 1}};
    ingest(f, g, 1); /* then the oldest: trace 1 */
    uint8_t id[16];
    static const char *const picks[] = {"settled", "complete", "in_progress"};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(ctr(f, pk, "trace", picks[i], NULL, NULL), 1);
    }
    assert_int_equal(discarded(f, "not_sampled"), 2);
    assert_int_equal(pending(f), 3);
    trace_id_for(2, id);
    assert_true(rt_tbuf_knows(f->b, id)); /* in the not-sampled cache */
    assert_conservation(f);
    fx_free(f);
}

static void test_overflow_by_bytes_decides_oldest_first_and_loses_nothing(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.max_bytes = 20000;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    f->steal = true;
    /* 30 traces of 4 spans of ~500 bytes, interleaved in batches like real exporters send. */
    for (uint32_t round = 0; round < 4; round++) {
        for (uint32_t t = 1; t <= 30; t += 3) {
            sp s[3];
            for (uint32_t k = 0; k < 3; k++) {
                s[k] = (sp){.trace = t + k, .span = round + 1, .parent = round ? 1 : 0, .pad = 450};
            }
            ingest(f, s, 3);
            f->now += 1 * MS;
            rt_tbuf_stats st;
            rt_tbuf_stats_get(f->b, &st);
            assert_true(st.buffered_bytes <= o.max_bytes);
            assert_conservation(f);
        }
    }
    uint64_t early =
        ctr(f, "ringtail_sampler_early_decisions_total", "reason", "bytes", NULL, NULL);
    assert_true(early > 10);
    assert_int_equal(early, decisions(f, "sampled", "overflow"));
    /* Oldest first: the first request of each trace (its decision) comes in first-arrival order;
     * later requests of a trace are its late spans, emitted alone via the sampled cache. */
    bool seen[31] = {0};
    uint32_t last = 0;
    for (size_t i = 0; i < f->n_out; i++) {
        size_t n;
        uint32_t t = check_emitted(f, i, "everything", &n);
        assert_true(t >= 1 && t <= 30);
        if (!seen[t]) {
            assert_true(t > last);
            last = t;
            seen[t] = true;
        } else {
            assert_int_equal(n, 1);
        }
    }
    assert_true(ctr(f, "ringtail_sampler_late_spans_total", "cached", "sampled", NULL, NULL) > 0);
    rt_tbuf_decide_all(f->b, f->now);
    assert_conservation(f);
    assert_int_equal(f->spans_emitted, 30 * 4); /* nothing lost, nothing twice */
    fx_free(f);
}

static void test_late_spans_follow_cached_decision(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp s[] = {{.trace = 1, .span = 1, .keep = "yes"}, {.trace = 2, .span = 1}};
    ingest(f, s, 2);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    f->now = T0 + 5 * SEC;
    sp late[] = {{.trace = 1, .span = 2, .parent = 1, .res = 1, .scope = 1},
                 {.trace = 2, .span = 2, .parent = 1, .status = 2}};
    ingest(f, late, 2);
    assert_int_equal(pending(f), 0); /* neither started a new trace */
    assert_int_equal(f->n_out, 2);
    size_t n;
    assert_int_equal(check_emitted(f, 1, "tagged", &n), 1);
    assert_int_equal(n, 1);
    /* The late span keeps its own resource and scope. */
    Req *r = rt_gen_unpack(f->out[1].req, f->out[1].len);
    assert_int_equal(r->n_resource_spans, 1);
    assert_string_equal(attr_str(r->resource_spans[0]->resource->attributes,
                                 r->resource_spans[0]->resource->n_attributes, "service.name"),
                        "svc-b");
    assert_string_equal(r->resource_spans[0]->scope_spans[0]->scope->name, "mcp");
    rt_gen_unpack_free(r);
    assert_int_equal(ctr(f, "ringtail_sampler_late_spans_total", "cached", "sampled", NULL, NULL),
                     1);
    assert_int_equal(
        ctr(f, "ringtail_sampler_late_spans_total", "cached", "not_sampled", NULL, NULL), 1);
    assert_int_equal(discarded(f, "late_not_sampled"), 1);
    /* A retry of a span already emitted (in the trace or late) is not exported again. */
    sp retry[] = {{.trace = 1, .span = 1, .keep = "yes"}, {.trace = 1, .span = 2, .parent = 1}};
    ingest(f, retry, 2);
    assert_int_equal(f->n_out, 2);
    assert_int_equal(ctr(f, "ringtail_sampler_duplicate_spans_total", NULL, NULL, NULL, NULL), 2);
    assert_int_equal(discarded(f, "duplicate"), 2);
    assert_conservation(f);
    fx_free(f);
}

static void test_duplicate_span_in_pending_trace_exported_once(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    /* 100 spans, then the same batch again (a client retry), plus a duplicate inside a batch. */
    sp s[101];
    for (uint32_t i = 0; i < 100; i++) {
        s[i] = (sp){.trace = 9, .span = i + 1, .parent = i ? 1 : 0};
    }
    s[100] = s[50];
    ingest(f, s, 101);
    ingest(f, s, 100);
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    assert_int_equal(st.buffered_spans, 100);
    assert_int_equal(ctr(f, "ringtail_sampler_duplicate_spans_total", NULL, NULL, NULL, NULL), 101);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    check_emitted(f, 0, "everything", &n);
    assert_int_equal(n, 100);
    /* Each span id exactly once. */
    Req *r = rt_gen_unpack(f->out[0].req, f->out[0].len);
    bool seen[101] = {0};
    Span **spans = r->resource_spans[0]->scope_spans[0]->spans;
    for (size_t i = 0; i < 100; i++) {
        uint64_t v;
        memcpy(&v, spans[i]->span_id.data, 8);
        uint32_t k = (uint32_t)(v & 0xffffffffu);
        assert_true(k >= 1 && k <= 100);
        assert_false(seen[k]);
        seen[k] = true;
    }
    rt_gen_unpack_free(r);
    assert_conservation(f);
    fx_free(f);
}

/* Spans under two resources and two scopes, interleaved over several requests: the emitted
 * request has one ResourceSpans per resource, with the original resource, scope and schema
 * urls, and exactly the spans sent (each once, with the policy attribute). */
static void test_emitted_request_keeps_resources_and_scopes(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp a[] = {{.trace = 3, .span = 1, .res = 0, .scope = 0},
              {.trace = 3, .span = 2, .parent = 1, .res = 0, .scope = 1},
              {.trace = 4, .span = 1, .res = 1, .scope = 0},
              {.trace = 3, .span = 3, .parent = 1, .res = 1, .scope = 1, .status = 2}};
    sp b[] = {{.trace = 3, .span = 4, .parent = 2, .res = 0, .scope = 0},
              {.trace = 3, .span = 5, .parent = 2, .res = 2, .scope = 2},
              {.trace = 3, .span = 6, .parent = 2, .res = 1, .scope = 1}};
    ingest(f, a, 4);
    ingest(f, b, 3);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "errors", &n), 3);
    assert_int_equal(n, 6);
    Req *r = rt_gen_unpack(f->out[0].req, f->out[0].len);
    assert_int_equal(r->n_resource_spans, 3);
    bool seen_span[7] = {0};
    int seen_res[3] = {0};
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        RS *rs = r->resource_spans[i];
        int res;
        if (!rs->resource) {
            res = 2;
            assert_string_equal(rs->schema_url, "");
        } else {
            const char *svc =
                attr_str(rs->resource->attributes, rs->resource->n_attributes, "service.name");
            res = strcmp(svc, "svc-a") == 0 ? 0 : 1;
            assert_string_equal(rs->schema_url,
                                res == 0 ? "https://opentelemetry.io/schemas/1.24.0" : "");
            assert_string_equal(
                attr_str(rs->resource->attributes, rs->resource->n_attributes, "host.name"),
                "host-0123456789.example.internal");
        }
        seen_res[res]++;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            SS *ss = rs->scope_spans[j];
            int scope = !ss->scope ? 2 : strcmp(ss->scope->name, "agent-sdk") == 0 ? 0 : 1;
            if (scope == 0) {
                assert_string_equal(ss->scope->version, "1.0");
                assert_string_equal(ss->schema_url, "scope-schema");
            }
            for (size_t k = 0; k < ss->n_spans; k++) {
                uint64_t v;
                memcpy(&v, ss->spans[k]->span_id.data, 8);
                uint32_t id = (uint32_t)(v & 0xffffffffu);
                assert_true(id >= 1 && id <= 6);
                assert_false(seen_span[id]);
                seen_span[id] = true;
                /* Which resource/scope each span was sent under. */
                static const int want_res[7] = {0, 0, 0, 1, 0, 2, 1};
                static const int want_scope[7] = {0, 0, 1, 1, 0, 2, 1};
                assert_int_equal(res, want_res[id]);
                assert_int_equal(scope, want_scope[id]);
                /* Original attributes survive next to the added ones (the policy name and
                 * the adjusted count). */
                assert_int_equal(ss->spans[k]->n_attributes, 2);
            }
        }
    }
    assert_int_equal(seen_res[0], 1);
    assert_int_equal(seen_res[1], 1);
    assert_int_equal(seen_res[2], 1);
    rt_gen_unpack_free(r);
    rt_tbuf_decide_all(f->b, f->now);
    assert_conservation(f);
    fx_free(f);
}

/* Buffered under "errors only", switched to policies on a span attribute and on a resource
 * attribute: the already-buffered traces are kept by the new policies, which only works if their
 * state was rebuilt by observing the stored spans (with their interned resources) again. */
static void test_reload_reobserves_buffered_spans(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_ONLY);
    sp a[] = {{.trace = 1, .span = 1, .keep = "yes"}};
    ingest(f, a, 1);
    f->now = T0 + 100 * MS;
    sp b[] = {{.trace = 2, .span = 1},
              {.trace = 2, .span = 2, .parent = 1, .keep = "yes"},
              {.trace = 3, .span = 1, .res = 1},
              {.trace = 4, .span = 1}};
    ingest(f, b, 4);
    tick(f, T0 + 1 * SEC); /* trace 1 under errors-only: not kept */
    assert_int_equal(f->n_out, 0);
    assert_int_equal(decisions(f, "not_sampled", "wait"), 1);
    rt_policy_engine *e2 = make_engine(f, POLICIES_TAGGED_OR_SVC_B);
    rt_tbuf_set_engine(f->b, e2);
    tick(f, T0 + 1100 * MS);
    assert_int_equal(f->n_out, 2);
    /* Both are due at the same tick, in no particular order. */
    size_t n, i2 = emitted_trace(f, 0) == 2 ? 0 : 1;
    assert_int_equal(check_emitted(f, i2, "tagged", &n), 2);
    assert_int_equal(n, 2);
    assert_int_equal(check_emitted(f, 1 - i2, "svc-b", &n), 3);
    assert_int_equal(decisions(f, "not_sampled", "wait"), 2); /* trace 4 */
    /* And the other direction: a match made under one engine is re-derived, not carried over,
     * under an engine without that policy. */
    f->now = T0 + 2 * SEC;
    sp c[] = {{.trace = 5, .span = 1, .keep = "yes", .res = 0},
              {.trace = 5, .span = 2, .parent = 1, .res = 1, .scope = 1}};
    ingest(f, c, 2);
    rt_policy_engine *e3 = make_engine(f, POLICIES_ERRORS_ONLY);
    rt_tbuf_set_engine(f->b, e3);
    tick(f, T0 + 3 * SEC);
    assert_int_equal(f->n_out, 2);
    assert_int_equal(decisions(f, "not_sampled", "wait"), 3);
    assert_conservation(f);
    fx_free(f);
}

/* A trace of spans of many sizes fills arena blocks to the last byte, so some spans continue in
 * the next block: re-observing them after a reload (a span_count that needs every child span)
 * and exporting them (each span's padding decoded back) must see every span whole. */
static void test_spans_across_arena_blocks_come_back_whole(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_ONLY);
    enum { N = 64, PER_REQ = 8 };
    sp specs[N];
    for (uint32_t i = 0; i < N; i++) {
        specs[i] = (sp){.trace = 9,
                        .span = i + 1,
                        .parent = i == 0 ? 0 : 1,
                        .res = (int)(i % 3),
                        .scope = (int)(i % 2),
                        .pad = 1 + (i * 377u) % 1500u};
    }
    for (size_t r = 0; r < N; r += PER_REQ) {
        ingest(f, specs + r, PER_REQ);
    }
    rt_policy_engine *e2 = make_engine(f, "policies:\n"
                                          "  - name: all-children\n"
                                          "    type: span_count\n"
                                          "    span_count:\n"
                                          "      min_spans: 63\n"
                                          "      span_filter: {name_pattern: '^execute_tool'}\n");
    rt_tbuf_set_engine(f->b, e2);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "all-children", &n), 9);
    assert_int_equal(n, N);
    Req *req = rt_gen_unpack(f->out[0].req, f->out[0].len);
    size_t seen = 0;
    for (size_t a = 0; a < req->n_resource_spans; a++) {
        for (size_t b = 0; b < req->resource_spans[a]->n_scope_spans; b++) {
            SS *ss = req->resource_spans[a]->scope_spans[b];
            for (size_t c = 0; c < ss->n_spans; c++) {
                Span *sp_ = ss->spans[c];
                uint64_t v;
                memcpy(&v, sp_->span_id.data, 8);
                uint32_t id = (uint32_t)(v & 0xffffffffu);
                assert_true(id >= 1 && id <= N);
                const char *pad =
                    attr_str(sp_->attributes, sp_->n_attributes, "gen_ai.prompt.excerpt");
                assert_non_null(pad);
                size_t want = specs[id - 1].pad;
                assert_int_equal(strlen(pad), want);
                for (size_t i = 0; i < want; i++) {
                    if (pad[i] != (char)('a' + (id + i) % 26)) {
                        fail_msg("span %u: padding differs at byte %zu", id, i);
                    }
                }
                seen++;
            }
        }
    }
    assert_int_equal(seen, N);
    rt_gen_unpack_free(req);
    assert_conservation(f);
    fx_free(f);
}

/* A request nobody checked yet: rt_tbuf_ingest_checked refuses it whole when its last span is
 * malformed deep inside (an attribute value only a full check looks at), naming the span, and
 * takes nothing of the spans before it; the same request intact is taken, and the attribute
 * policy reads the index the checking walk made. */
static void test_checked_ingest_refuses_a_malformed_request_whole(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp s[] = {{.trace = 1, .span = 1},
              {.trace = 2, .span = 1},
              {.trace = 1, .span = 2, .parent = 1, .keep = "yes"}};
    size_t len;
    uint8_t *req = build(s, 3, &len);
    uint8_t *bad = malloc(len);
    memcpy(bad, req, len);
    uint8_t *at = memmem(bad, len, "yes", 3);
    assert_non_null(at);
    assert_int_equal(at[-2], 0x0A); /* AnyValue.string_value, length-delimited */
    at[-2] = 0x08;                  /* ... now a varint: the value is malformed */
    char err[RT_OTLP_ERR_MAX] = "";
    assert_int_equal(rt_tbuf_ingest_checked(f->b, bad, len, f->now, err, sizeof err), -1);
    if (strstr(err, "scope_spans[0].spans[2]") == NULL || strstr(err, "at byte ") == NULL) {
        fail_msg("error does not name the span and byte: %s", err);
    }
    assert_int_equal(pending(f), 0);
    assert_int_equal(ctr(f, "ringtail_sampler_spans_received_total", NULL, NULL, NULL, NULL), 0);

    assert_int_equal(rt_tbuf_ingest_checked(f->b, req, len, f->now, err, sizeof err), 3);
    f->spans_ingested += 3;
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "tagged", &n), 1);
    assert_int_equal(n, 2);
    assert_conservation(f);
    free(bad);
    free(req);
    fx_free(f);
}

/* A request of more spans than the buffer holds views for (4,096) is still checked whole before
 * any of it is taken, then taken span by span: malformed past the 4,096th span, nothing is
 * taken; intact, every span is, and the attribute policy sees the spans past the 4,096th. */
static void test_checked_ingest_of_a_request_past_the_view_limit(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    enum { TRACES = 50, PER = 100, N = TRACES * PER };
    sp *s = calloc(N, sizeof(*s));
    for (uint32_t i = 0; i < N; i++) {
        s[i] = (sp){.trace = 1 + i % TRACES, .span = 1 + i / TRACES};
        s[i].parent = s[i].span > 1 ? 1 : 0;
    }
    s[N - 1].keep = "yes"; /* trace 50's last span, far past the 4,096th */
    size_t len;
    uint8_t *req = build(s, N, &len);
    uint8_t *bad = malloc(len);
    memcpy(bad, req, len);
    uint8_t *at = memmem(bad, len, "yes", 3);
    assert_non_null(at);
    at[-2] = 0x08; /* the value's string tag turned into a varint tag: malformed */
    char err[RT_OTLP_ERR_MAX] = "";
    assert_int_equal(rt_tbuf_ingest_checked(f->b, bad, len, f->now, err, sizeof err), -1);
    assert_non_null(strstr(err, "spans[4999]"));
    assert_int_equal(pending(f), 0);

    assert_int_equal(rt_tbuf_ingest_checked(f->b, req, len, f->now, err, sizeof err), N);
    f->spans_ingested += N;
    assert_int_equal(pending(f), TRACES);
    tick(f, T0 + 1 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "tagged", &n), TRACES);
    assert_int_equal(n, PER);
    assert_conservation(f);
    free(bad);
    free(req);
    free(s);
    fx_free(f);
}

static void test_trace_over_max_trace_bytes_is_discarded(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.max_trace_bytes = 2000;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    for (uint32_t i = 1; i <= 3; i++) {
        sp s[] = {{.trace = 5, .span = i, .parent = i > 1, .pad = 500}};
        ingest(f, s, 1);
    }
    assert_int_equal(pending(f), 1);
    sp s4[] = {{.trace = 5, .span = 4, .parent = 1, .pad = 500}};
    ingest(f, s4, 1);
    assert_int_equal(pending(f), 0);
    assert_int_equal(discarded(f, "trace_too_large"), 4);
    sp s5[] = {{.trace = 5, .span = 5, .parent = 1}};
    ingest(f, s5, 1);
    assert_int_equal(pending(f), 0);
    assert_int_equal(discarded(f, "late_not_sampled"), 1);
    rt_tbuf_decide_all(f->b, f->now);
    assert_int_equal(f->n_out, 0);
    assert_conservation(f);
    fx_free(f);
}

/* 10^5 traces arriving over 30 s: every one is decided at the first tick at or after its first
 * span + decision_wait (correctness only; no timing). */
static void test_1e5_pending_traces_each_decided_on_time(void **state)
{
    (void)state;
    enum { N = 100000, PER_REQ = 50 };
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 30 * SEC;
    o.sampled_cache_size = 0;
    o.non_sampled_cache_size = 0;
    o.emitted_span_ids = 0;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    const uint64_t tick_every = 10 * MS;
    uint64_t *arrival = rt_malloc(N * sizeof(*arrival));
    for (uint32_t i = 0; i < N; i += PER_REQ) {
        sp s[PER_REQ];
        for (uint32_t k = 0; k < PER_REQ; k++) {
            s[k] = (sp){.trace = i + k, .span = 1};
            arrival[i + k] = f->now;
        }
        ingest(f, s, PER_REQ);
        f->now += 15 * MS; /* 2000 requests over 30 s */
        if (f->now % tick_every < 15 * MS) {
            tick(f, f->now);
        }
    }
    assert_true(pending(f) > N / 2);
    uint64_t end = f->now + 31 * SEC;
    for (uint64_t t = f->now; t <= end; t += tick_every) {
        tick(f, t);
    }
    assert_int_equal(pending(f), 0);
    assert_int_equal(f->n_out, N);
    for (size_t i = 0; i < f->n_out; i++) {
        uint32_t t = emitted_trace(f, i);
        uint64_t due = arrival[t] + o.decision_wait_ns;
        assert_true(f->out[i].at >= due);
        assert_true(f->out[i].at < due + 15 * MS + tick_every);
    }
    assert_int_equal(decisions(f, "sampled", "wait"), N);
    free(arrival);
    assert_conservation(f);
    fx_free(f);
}

/* Agent-shaped traces (80 spans, 300-1200 bytes each, a few services, batches mixing traces):
 * buffered bytes stay within 1.3x the wire bytes + 64 bytes per span. */
static void test_memory_per_buffered_span_within_target(void **state)
{
    (void)state;
    enum { TRACES = 200, SPANS = 80, BATCH = 40 };
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 60 * SEC;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    uint64_t seed = 7;
    size_t wire = 0, spans = 0;
    /* Round-robin over traces, like several concurrent agent turns exporting in batches. */
    sp batch[BATCH];
    size_t nb = 0;
    for (uint32_t k = 0; k < SPANS; k++) {
        for (uint32_t t = 0; t < TRACES; t++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            batch[nb++] = (sp){.trace = t + 1,
                               .span = k + 1,
                               .parent = k ? 1 : 0,
                               .res = (int)(k % 3 == 2),
                               .scope = (int)(k % 2),
                               .pad = 250 + (seed >> 33) % 900};
            if (nb == BATCH) {
                size_t len;
                uint8_t *req = build(batch, nb, &len);
                assert_int_equal(rt_tbuf_ingest(f->b, req, len, f->now), (long)nb);
                f->spans_ingested += nb;
                wire += len;
                spans += nb;
                free(req);
                nb = 0;
            }
        }
    }
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    assert_int_equal(st.buffered_spans, spans);
    assert_int_equal(st.pending_traces, TRACES);
    double per_span = (double)st.buffered_bytes / (double)spans;
    double wire_per_span = (double)wire / (double)spans;
    print_message("memory: %zu spans, wire %.1f B/span, buffered %.1f B/span (%.3fx wire, "
                  "+%.1f B/span over wire)\n",
                  spans, wire_per_span, per_span, per_span / wire_per_span,
                  per_span - wire_per_span);
    assert_true((double)st.buffered_bytes <= 1.3 * (double)wire + 64.0 * (double)spans);
    rt_tbuf_decide_all(f->b, f->now);
    rt_tbuf_stats_get(f->b, &st);
    assert_int_equal(st.buffered_bytes, 0);
    assert_conservation(f);
    fx_free(f);
}

static void test_gauges_follow_state_and_shard_is_stable(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp s[] = {{.trace = 1, .span = 1}, {.trace = 2, .span = 1}};
    ingest(f, s, 2);
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    rt_gauge *pend = rt_metrics_gauge(f->reg, "ringtail_sampler_traces_pending", "", NULL);
    rt_gauge *bytes = rt_metrics_gauge(f->reg, "ringtail_sampler_bytes_buffered", "", NULL);
    assert_true(rt_gauge_get(pend) == 2.0);
    assert_true(rt_gauge_get(bytes) == (double)st.buffered_bytes);
    assert_true(st.buffered_bytes > 0);
    rt_tbuf_decide_all(f->b, f->now);
    assert_true(rt_gauge_get(pend) == 0.0);
    assert_true(rt_gauge_get(bytes) == 0.0);
    assert_int_equal(ctr(f, "ringtail_sampler_traces_received_total", NULL, NULL, NULL, NULL), 2);
    fx_free(f);

    /* Shards: stable, in range, and spread. */
    unsigned counts[4] = {0};
    for (uint32_t i = 0; i < 4000; i++) {
        uint8_t id[16];
        trace_id_for(i, id);
        unsigned sh = rt_tbuf_shard_of(id, 16, 4);
        assert_true(sh < 4);
        assert_int_equal(sh, rt_tbuf_shard_of(id, 16, 4));
        counts[sh]++;
    }
    for (int i = 0; i < 4; i++) {
        assert_true(counts[i] > 800 && counts[i] < 1200);
    }
    assert_int_equal(rt_tbuf_shard_of((const uint8_t *)"x", 1, 1), 0);
}

/* ---- adjusted counts ------------------------------------------------------------------------ */

/* The adjusted count attribute of a span: true and *out if present (exactly once). */
static bool attr_double(const Span *s, double *out)
{
    bool found = false;
    for (size_t i = 0; i < s->n_attributes; i++) {
        if (strcmp(s->attributes[i]->key, RT_ADJ_ATTR) == 0) {
            assert_false(found);
            assert_int_equal(s->attributes[i]->value->value_case,
                             OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
            *out = s->attributes[i]->value->double_value;
            found = true;
        }
    }
    return found;
}

typedef struct adj_want {
    uint32_t span; /* span number, 0 = any */
    const char *ts;
    double count; /* 0: no attribute */
} adj_want;

/* Every span of emitted request `i` (or only span `w->span`) has trace_state w->ts (as
 * protobuf-c, our walker and the JSON conversion read it: the last field 3) and the adjusted
 * count attribute w->count (absent when 0). Returns the number of spans checked. */
static size_t check_adj(fx *f, size_t i, const adj_want *w)
{
    assert_true(i < f->n_out);
    Req *r = rt_gen_unpack(f->out[i].req, f->out[i].len);
    assert_non_null(r);
    size_t checked = 0;
    for (size_t a = 0; a < r->n_resource_spans; a++) {
        for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
            SS *ss = r->resource_spans[a]->scope_spans[b];
            for (size_t c = 0; c < ss->n_spans; c++) {
                Span *spn = ss->spans[c];
                uint64_t v;
                memcpy(&v, spn->span_id.data, 8);
                if (w->span && (uint32_t)v != w->span) {
                    continue;
                }
                assert_string_equal(spn->trace_state, w->ts);
                double cnt = 0;
                assert_int_equal(attr_double(spn, &cnt), w->count != 0);
                if (w->count != 0) {
                    assert_true(fabs(cnt - w->count) < 1e-9 * w->count);
                }
                checked++;
            }
        }
    }
    rt_gen_unpack_free(r);
    /* Our own walker takes the last trace_state too. */
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, f->out[i].req, f->out[i].len);
    while (rt_otlp_scan_next(&it, &v) == 1) {
        uint32_t sn;
        memcpy(&sn, v.span_id.p, 4);
        if (w->span && sn != w->span) {
            continue;
        }
        assert_int_equal(v.trace_state.len, strlen(w->ts));
        assert_memory_equal(v.trace_state.p, w->ts, v.trace_state.len);
    }
    /* And so does the JSON conversion (the exporter's JSON encoding). */
    rt_buf js = RT_BUF_INIT;
    char err[256];
    assert_int_equal(rt_otlp_pb_to_json(f->out[i].req, f->out[i].len, &js, err, sizeof err), 0);
    rt_buf_append_byte(&js, 0);
    char needle[128];
    snprintf(needle, sizeof needle, "\"traceState\":\"%s\"", w->ts);
    if (w->ts[0] != '\0') {
        assert_non_null(strstr((char *)js.data, needle));
    }
    rt_buf_free(&js);
    return checked;
}

/* Keep-all: count 1, "ot=th:0" (other tracestate members kept after it). probabilistic 25 %:
 * count 4, "th:c", and a late span of a sampled trace carries the same. A span that arrived
 * with "ot=th:8" (a 50 % head sampler) kept by probabilistic 50 %: count 4, "th:c".
 * rate_limiting alone: count unknown, so th is erased and no attribute is written. */
static void test_adjusted_count_and_tracestate_on_kept_spans(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();

    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp a[] = {{.trace = 1, .span = 1}, {.trace = 1, .span = 2, .parent = 1, .ts = "vendor=a"}};
    ingest(f, a, 2);
    tick(f, T0 + 10 * SEC);
    assert_int_equal(f->n_out, 1);
    assert_int_equal(check_adj(f, 0, &(adj_want){1, "ot=th:0", 1}), 1);
    assert_int_equal(check_adj(f, 0, &(adj_want){2, "ot=th:0,vendor=a", 1}), 1);
    fx_free(f);

    f = fx_new(&o, "policies:\n"
                   "  - {name: quarter, type: probabilistic, probabilistic: "
                   "{sampling_percentage: 25}}\n");
    for (uint32_t t = 1; t <= 40; t++) {
        sp s = {.trace = t, .span = 1};
        ingest(f, &s, 1);
    }
    tick(f, T0 + 10 * SEC);
    assert_true(f->n_out >= 3 && f->n_out <= 20);
    size_t kept = f->n_out;
    for (size_t i = 0; i < kept; i++) {
        assert_int_equal(check_adj(f, i, &(adj_want){0, "ot=th:c", 4}), 1);
    }
    sp late = {.trace = emitted_trace(f, 0), .span = 7, .parent = 1, .ts = "ot=th:8"};
    ingest(f, &late, 1);
    assert_int_equal(f->n_out, kept + 1);
    /* the late span's own th:8 (count 2) times the trace's 4: count 8, "th:e" */
    assert_int_equal(check_adj(f, kept, &(adj_want){7, "ot=th:e", 8}), 1);
    sp late2 = {.trace = emitted_trace(f, 0), .span = 8, .parent = 1};
    ingest(f, &late2, 1);
    assert_int_equal(check_adj(f, kept + 1, &(adj_want){8, "ot=th:c", 4}), 1);
    fx_free(f);

    f = fx_new(&o, "policies:\n"
                   "  - {name: half, type: probabilistic, probabilistic: "
                   "{sampling_percentage: 50}}\n");
    for (uint32_t t = 1; t <= 20; t++) {
        sp s = {.trace = t, .span = 1, .ts = "ot=th:8"};
        ingest(f, &s, 1);
    }
    tick(f, T0 + 10 * SEC);
    assert_true(f->n_out >= 3);
    for (size_t i = 0; i < f->n_out; i++) {
        assert_int_equal(check_adj(f, i, &(adj_want){0, "ot=th:c", 4}), 1);
    }
    fx_free(f);

    f = fx_new(&o, "policies:\n"
                   "  - {name: capped, type: rate_limiting, rate_limiting: "
                   "{spans_per_second: 100}}\n");
    sp r[] = {{.trace = 1, .span = 1, .ts = "ot=th:8,vendor=x"},
              {.trace = 1, .span = 2},
              {.trace = 1, .span = 3, .ts = "ot=rv:0123456789abcd;th:8"}};
    ingest(f, r, 3);
    tick(f, T0 + 10 * SEC);
    assert_int_equal(f->n_out, 1);
    assert_int_equal(check_adj(f, 0, &(adj_want){1, "vendor=x", 0}), 1);
    assert_int_equal(check_adj(f, 0, &(adj_want){2, "", 0}), 1);
    assert_int_equal(check_adj(f, 0, &(adj_want){3, "ot=rv:0123456789abcd", 0}), 1);
    fx_free(f);
}

/* ---- moving traces and decisions between buffers (hand-off) -------------------------------- */

/* The spans of a request, each as (trace number, span bytes), in order: for comparing what was
 * extracted with what went in. */
static size_t span_bytes(const uint8_t *req, size_t len, rt_buf *out)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    size_t n = 0;
    rt_otlp_scan_init(&it, req, len);
    while (rt_otlp_scan_next(&it, &v) == 1) {
        rt_buf_append(out, v.span.p, v.span.len);
        n++;
    }
    return n;
}

/* A trace taken out of one buffer and put into another is decided there when it would have been
 * here (decision_wait from its first span), with every span as it arrived, under its resource
 * and scope; the first buffer forgets it without a decision or a discard. */
static void test_extracted_trace_is_decided_elsewhere_on_its_original_time(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    fx *a = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    fx *b = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp s[] = {{.trace = 1, .span = 1, .keep = "yes"},
              {.trace = 1, .span = 2, .parent = 1, .res = 1, .scope = 1},
              {.trace = 1, .span = 3, .parent = 1, .pad = 3000}};
    size_t in_len;
    uint8_t *in = build(s, 3, &in_len);
    assert_int_equal(rt_tbuf_ingest(a->b, in, in_len, T0), 3);
    uint8_t id[16];
    trace_id_for(1, id);
    assert_true(rt_tbuf_knows(a->b, id));
    rt_buf moved = RT_BUF_INIT;
    rt_tbuf_trace_state st;
    assert_int_equal(rt_tbuf_extract(a->b, id, &moved, &st), 3);
    assert_memory_equal(st.trace_id, id, 16);
    assert_int_equal(st.first_ns, T0);
    assert_true(st.root_seen);
    assert_false(st.held);
    assert_false(rt_tbuf_knows(a->b, id)); /* forgotten: no decision cached */
    assert_int_equal(rt_tbuf_extract(a->b, id, &moved, &st), 0);
    assert_int_equal(pending(a), 0);
    tick(a, T0 + 20 * SEC);
    assert_int_equal(a->n_out, 0);
    assert_int_equal(all_discarded(a), 0);
    rt_tbuf_stats sa;
    rt_tbuf_stats_get(a->b, &sa);
    assert_int_equal(sa.buffered_spans, 0);
    assert_int_equal(sa.buffered_bytes, 0);
    /* The same spans, byte for byte, as one valid request. */
    rt_buf want = RT_BUF_INIT, got = RT_BUF_INIT;
    assert_int_equal(span_bytes(in, in_len, &want), 3);
    assert_int_equal(span_bytes(moved.data, moved.len, &got), 3);
    size_t dummy;
    assert_int_equal(rt_otlp_validate(moved.data, moved.len, &dummy, NULL, 0), 0);
    /* (extract orders by resource and scope: spans 1 and 3 share the first pair) */
    assert_int_equal(want.len, got.len);
    /* Arrives at the other buffer 3 s later. */
    b->now = T0 + 3 * SEC;
    assert_int_equal(rt_tbuf_ingest(b->b, moved.data, moved.len, b->now), 3);
    rt_tbuf_adopt(b->b, &st, b->now);
    tick(b, T0 + 10 * SEC - 20 * MS);
    assert_int_equal(b->n_out, 0);
    tick(b, T0 + 10 * SEC + 20 * MS); /* decision_wait from T0, not from its arrival here */
    assert_int_equal(b->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(b, 0, "tagged", &n), 1);
    assert_int_equal(n, 3);
    Req *r = rt_gen_unpack(b->out[0].req, b->out[0].len);
    assert_int_equal(r->n_resource_spans, 2);
    rt_gen_unpack_free(r);
    rt_buf_free(&moved);
    rt_buf_free(&want);
    rt_buf_free(&got);
    free(in);
    fx_free(a);
    fx_free(b);
}

/* A moved trace joins the part of it the receiver already has (no duplicates), the earlier first
 * arrival and root arrival win, and a held trace is decided at the receiver's next tick. */
static void test_adopted_trace_merges_with_what_was_there(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.wait_after_root_ns = 2 * SEC;
    fx *a = fx_new(&o, POLICIES_ALWAYS);
    fx *b = fx_new(&o, POLICIES_ALWAYS);
    sp old[] = {{.trace = 7, .span = 2, .parent = 1}, {.trace = 7, .span = 3, .parent = 1}};
    ingest(a, old, 2);
    /* The receiver got span 4 and a retry of span 3 from somewhere else in the meantime. */
    b->now = T0 + 1 * SEC;
    sp fresh[] = {{.trace = 7, .span = 4, .parent = 1}, {.trace = 7, .span = 3, .parent = 1}};
    ingest(b, fresh, 2);
    uint8_t id[16];
    trace_id_for(7, id);
    rt_buf moved = RT_BUF_INIT;
    rt_tbuf_trace_state st;
    assert_int_equal(rt_tbuf_extract(a->b, id, &moved, &st), 2);
    assert_false(st.root_seen);
    b->now = T0 + 2 * SEC;
    assert_int_equal(rt_tbuf_ingest(b->b, moved.data, moved.len, b->now), 2);
    rt_tbuf_adopt(b->b, &st, b->now);
    assert_int_equal(ctr(b, "ringtail_sampler_duplicate_spans_total", NULL, NULL, NULL, NULL), 1);
    rt_tbuf_stats sb;
    rt_tbuf_stats_get(b->b, &sb);
    assert_int_equal(sb.buffered_spans, 3);
    tick(b, T0 + 10 * SEC + 20 * MS);
    assert_int_equal(b->n_out, 1);
    assert_int_equal(b->out[0].spans, 3);
    /* A trace whose root already arrived elsewhere: its root wait counts from there. */
    sp rooted[] = {{.trace = 8, .span = 1}};
    a->now = T0 + 20 * SEC;
    ingest(a, rooted, 1);
    trace_id_for(8, id);
    rt_buf_reset(&moved);
    assert_int_equal(rt_tbuf_extract(a->b, id, &moved, &st), 1);
    assert_true(st.root_seen);
    assert_int_equal(st.root_ns, T0 + 20 * SEC);
    b->now = T0 + 21 * SEC;
    assert_int_equal(rt_tbuf_ingest(b->b, moved.data, moved.len, b->now), 1);
    rt_tbuf_adopt(b->b, &st, b->now);
    tick(b, T0 + 22 * SEC + 20 * MS); /* root + 2 s, not arrival + 2 s */
    assert_int_equal(b->n_out, 2);
    /* Held by the sender's reservoir: decided at the next tick, not decision_wait later. */
    sp held[] = {{.trace = 9, .span = 1}};
    b->now = T0 + 30 * SEC;
    ingest(b, held, 1);
    trace_id_for(9, id);
    st = (rt_tbuf_trace_state){.first_ns = T0 + 30 * SEC, .held = true};
    memcpy(st.trace_id, id, 16);
    rt_tbuf_adopt(b->b, &st, b->now);
    tick(b, T0 + 30 * SEC + 20 * MS);
    assert_int_equal(b->n_out, 3);
    rt_buf_free(&moved);
    fx_free(a);
    fx_free(b);
}

static const char *const POLICIES_ERRORS_THEN_RESERVOIR = "policies:\n"
                                                          "  - name: errors\n"
                                                          "    type: status_code\n"
                                                          "    status_code: {status_codes: "
                                                          "[ERROR]}\n"
                                                          "  - name: baseline\n"
                                                          "    type: reservoir\n"
                                                          "    reservoir: {traces_per_window: "
                                                          "10, window: 1m}\n";

/* A trace held by the reservoir leaves it when it is taken out, and no longer counts as offered
 * there: the adjusted count of what stays is seen / held over the traces that stayed. */
static void test_extracting_a_held_trace_leaves_the_reservoir(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    fx *a = fx_new(&o, POLICIES_ERRORS_THEN_RESERVOIR);
    for (uint32_t t = 1; t <= 4; t++) {
        sp s[] = {{.trace = t, .span = 1}};
        ingest(a, s, 1);
    }
    tick(a, T0 + 1 * SEC + 20 * MS);
    rt_tbuf_stats st0;
    rt_tbuf_stats_get(a->b, &st0);
    assert_int_equal(st0.held_traces, 4);
    uint8_t id[16];
    trace_id_for(2, id);
    assert_true(rt_tbuf_knows(a->b, id));
    rt_buf moved = RT_BUF_INIT;
    rt_tbuf_trace_state st;
    assert_int_equal(rt_tbuf_extract(a->b, id, &moved, &st), 1);
    assert_true(st.held);
    rt_tbuf_stats_get(a->b, &st0);
    assert_int_equal(st0.held_traces, 3);
    /* The window ends: the three left are kept with count 3 / 3 = 1 (4 / 3 if the moved one
     * still counted as offered here). */
    tick(a, T0 + 61 * SEC);
    assert_int_equal(a->n_out, 3);
    for (size_t i = 0; i < 3; i++) {
        Req *r = rt_gen_unpack(a->out[i].req, a->out[i].len);
        double c = 0;
        assert_true(attr_double(r->resource_spans[0]->scope_spans[0]->spans[0], &c));
        assert_true(c == 1.0);
        assert_int_not_equal(emitted_trace(a, i), 2);
        rt_gen_unpack_free(r);
    }
    rt_buf_free(&moved);
    fx_free(a);
}

typedef struct seen_decision {
    uint32_t trace;
    rt_decision d;
    char policy[32];
    double count;
} seen_decision;

typedef struct decision_log {
    seen_decision e[64];
    size_t n;
} decision_log;

static void log_decision(void *arg, const uint8_t id[16], rt_decision d, const char *policy,
                         double count)
{
    decision_log *l = arg;
    assert_true(l->n < 64);
    seen_decision *e = &l->e[l->n++];
    e->trace = trace_num_of(id);
    e->d = d;
    snprintf(e->policy, sizeof e->policy, "%s", policy);
    e->count = count;
}

/* Decisions made here reach the decided hook and the caches' reader; a decision made elsewhere
 * is remembered (late spans follow it) and makes a pending trace here follow it at once, counted
 * with cause peer, without calling the hook. */
static void test_decisions_are_read_reported_and_applied(void **state)
{
    (void)state;
    decision_log hooked = {0};
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    o.decided = log_decision;
    o.decided_arg = &hooked;
    fx *f = fx_new(&o, POLICIES_ERRORS_OR_TAGGED);
    sp s[] = {{.trace = 1, .span = 1, .keep = "yes"},
              {.trace = 2, .span = 1},
              {.trace = 3, .span = 1, .status = 2}};
    ingest(f, s, 3);
    tick(f, T0 + 1 * SEC + 20 * MS);
    assert_int_equal(hooked.n, 3);
    for (size_t i = 0; i < 3; i++) {
        seen_decision *e = &hooked.e[i];
        if (e->trace == 2) {
            assert_int_equal(e->d, RT_DECISION_NOT_SAMPLED);
            assert_string_equal(e->policy, "");
        } else {
            assert_int_equal(e->d, RT_DECISION_SAMPLED);
            assert_string_equal(e->policy, e->trace == 1 ? "tagged" : "errors");
            assert_true(e->count == 1.0);
        }
    }
    /* Read back, a few entries per call, every entry exactly once. */
    decision_log walked = {0};
    size_t cursor = 0, calls = 0;
    while (cursor != SIZE_MAX) {
        cursor = rt_tbuf_each_decision(f->b, cursor, 2, log_decision, &walked);
        calls++;
    }
    assert_int_equal(walked.n, 3);
    assert_int_equal(calls, 2);
    /* Sampled ones first, the last decided first. */
    uint32_t last_sampled = hooked.e[2].d == RT_DECISION_SAMPLED   ? hooked.e[2].trace
                            : hooked.e[1].d == RT_DECISION_SAMPLED ? hooked.e[1].trace
                                                                   : hooked.e[0].trace;
    assert_int_equal(walked.e[0].trace, last_sampled);
    assert_int_equal(walked.e[2].d, RT_DECISION_NOT_SAMPLED);
    unsigned mask = 0;
    for (size_t i = 0; i < walked.n; i++) {
        mask |= 1u << walked.e[i].trace;
        if (walked.e[i].trace == 3) {
            assert_string_equal(walked.e[i].policy, "errors");
        }
    }
    assert_int_equal(mask, 0xe);
    /* Decisions made elsewhere: trace 10 pending here follows SAMPLED at once, trace 11 NOT
     * SAMPLED; trace 12 (unknown here) is remembered for its late spans. */
    f->now = T0 + 5 * SEC;
    sp p[] = {{.trace = 10, .span = 1},
              {.trace = 10, .span = 2, .parent = 1},
              {.trace = 11, .span = 1, .status = 2}};
    ingest(f, p, 3);
    uint8_t id[16];
    trace_id_for(10, id);
    rt_tbuf_apply_decision(f->b, id, RT_DECISION_SAMPLED, "debug-tenants", 13, 2.0, f->now);
    trace_id_for(11, id);
    rt_tbuf_apply_decision(f->b, id, RT_DECISION_NOT_SAMPLED, "", 0, 0, f->now);
    trace_id_for(12, id);
    rt_tbuf_apply_decision(f->b, id, RT_DECISION_SAMPLED, "slow-turns", 10, 1.0, f->now);
    assert_true(rt_tbuf_knows(f->b, id));
    assert_int_equal(hooked.n, 3); /* not reported again */
    assert_int_equal(pending(f), 0);
    assert_int_equal(f->n_out, 3);
    size_t n;
    assert_int_equal(check_emitted(f, 2, "debug-tenants", &n), 10);
    assert_int_equal(n, 2);
    assert_int_equal(decisions(f, "sampled", "peer"), 1);
    assert_int_equal(decisions(f, "not_sampled", "peer"), 1);
    assert_int_equal(discarded(f, "not_sampled"), 2); /* trace 2 here, trace 11 by the peer */
    sp late[] = {{.trace = 12, .span = 5, .parent = 1}, {.trace = 11, .span = 2, .parent = 1}};
    ingest(f, late, 2);
    assert_int_equal(f->n_out, 4);
    assert_int_equal(check_emitted(f, 3, "slow-turns", &n), 12);
    assert_int_equal(discarded(f, "late_not_sampled"), 1);
    assert_conservation(f);
    fx_free(f);
}

static int defer_calls;
static bool defer_first_time(void *arg, const uint8_t id[16])
{
    (void)arg;
    (void)id;
    return defer_calls++ == 0;
}

/* The defer hook puts a due trace off by RT_TBUF_DEFER_NS; when it says no, it is decided. */
static void test_defer_hook_puts_a_due_decision_off(void **state)
{
    (void)state;
    defer_calls = 0;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    o.defer = defer_first_time;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp s[] = {{.trace = 1, .span = 1}};
    ingest(f, s, 1);
    tick(f, T0 + 1 * SEC + 20 * MS);
    assert_int_equal(defer_calls, 1);
    assert_int_equal(f->n_out, 0);
    assert_int_equal(pending(f), 1);
    tick(f, T0 + 1 * SEC + 20 * MS + RT_TBUF_DEFER_NS - 20 * MS);
    assert_int_equal(f->n_out, 0);
    tick(f, T0 + 1 * SEC + 40 * MS + RT_TBUF_DEFER_NS);
    assert_int_equal(defer_calls, 2);
    assert_int_equal(f->n_out, 1);
    fx_free(f);
}

/* The hold hook: holding while the fixture has emitted `hold_after` traces or more. */
typedef struct hold_ctx {
    fx *f;
    size_t hold_after;
    int calls;
} hold_ctx;

static bool hold_after_n(void *arg)
{
    hold_ctx *h = arg;
    h->calls++;
    return h->f->n_out >= h->hold_after;
}

/* While the hold hook says so, due traces wait - still pending, still taking spans, decided
 * nowhere else - and a tick stops as soon as it says so, mid-backlog; once it lets go they are
 * all decided, each once, with the spans that came meanwhile, and nothing is lost. */
static void test_hold_hook_makes_due_traces_wait(void **state)
{
    (void)state;
    enum { N = 300 };
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    hold_ctx h = {0};
    o.hold = hold_after_n;
    o.hold_arg = &h;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    h.f = f;
    h.hold_after = 0; /* hold from the start */
    for (uint32_t t = 1; t <= N; t++) {
        sp s[] = {{.trace = t, .span = 1}};
        ingest(f, s, 1);
    }
    tick(f, T0 + 5 * SEC);
    assert_int_equal(f->n_out, 0);
    assert_int_equal(pending(f), N);
    assert_int_equal(ctr(f, "ringtail_sampler_decision_holds_total", NULL, NULL, NULL, NULL), 1);
    /* a late span joins its waiting trace (not emitted alone) */
    f->now = T0 + 6 * SEC;
    sp late[] = {{.trace = 7, .span = 2, .parent = 1}};
    ingest(f, late, 1);
    assert_int_equal(f->n_out, 0);
    /* let 100 through: the tick stops right there */
    h.hold_after = 100;
    tick(f, T0 + 7 * SEC);
    assert_int_equal(f->n_out, 100);
    assert_int_equal(pending(f), N - 100);
    /* then the rest, in a tick that can take them all */
    h.hold_after = SIZE_MAX;
    tick(f, T0 + 7 * SEC + 10 * MS);
    assert_int_equal(f->n_out, N);
    assert_int_equal(pending(f), 0);
    bool seen[N + 1] = {false};
    size_t spans = 0;
    for (size_t i = 0; i < f->n_out; i++) {
        size_t n;
        uint32_t t = check_emitted(f, i, "everything", &n);
        assert_true(t >= 1 && t <= N);
        assert_false(seen[t]);
        seen[t] = true;
        assert_int_equal(n, t == 7 ? 2 : 1);
        spans += n;
    }
    assert_int_equal(spans, N + 1);
    assert_conservation(f);
    fx_free(f);
}

/* rt_tbuf_decide_pending with the hold hook decides oldest first only while it lets it and
 * reports what is left; without asking, it decides everything, as rt_tbuf_decide_all. */
static void test_decide_pending_asks_the_hold_hook(void **state)
{
    (void)state;
    enum { N = 50 };
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 30 * SEC;
    hold_ctx h = {0};
    o.hold = hold_after_n;
    o.hold_arg = &h;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    h.f = f;
    for (uint32_t t = 1; t <= N; t++) {
        sp s[] = {{.trace = t, .span = 1}};
        f->now = T0 + t * MS;
        ingest(f, s, 1);
    }
    h.hold_after = 20;
    assert_false(rt_tbuf_decide_pending(f->b, T0 + SEC, true));
    assert_int_equal(f->n_out, 20);
    assert_int_equal(pending(f), N - 20);
    for (size_t i = 0; i < 20; i++) {
        size_t n;
        assert_int_equal(check_emitted(f, i, "everything", &n), i + 1); /* oldest first */
    }
    assert_true(rt_tbuf_decide_pending(f->b, T0 + SEC, false));
    assert_int_equal(f->n_out, N);
    assert_int_equal(decisions(f, "sampled", "shutdown"), N);
    assert_conservation(f);
    fx_free(f);
}

/* A postponed trace is not decided by its timer before the time given, even when a later span
 * (its root) reschedules it; max_age still caps it; an unknown trace is ignored. */
static void test_postpone_puts_the_decision_after_the_refused_spans(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    o.decision_wait_ns = 1 * SEC;
    o.max_age_ns = 4 * SEC;
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp a[] = {{.trace = 1, .span = 2, .parent = 1}, {.trace = 2, .span = 2, .parent = 1}};
    ingest(f, a, 2);
    uint8_t id[16];
    trace_id_for(1, id);
    rt_tbuf_postpone(f->b, id, T0 + 3 * SEC);
    rt_tbuf_postpone(f->b, id, T0 + 2 * SEC); /* earlier: no effect */
    trace_id_for(2, id);
    rt_tbuf_postpone(f->b, id, T0 + 9 * SEC); /* past max_age: capped at T0 + 4 s */
    trace_id_for(77, id);
    rt_tbuf_postpone(f->b, id, T0 + 9 * SEC); /* not here */
    assert_int_equal(ctr(f, "ringtail_sampler_decisions_postponed_total", NULL, NULL, NULL, NULL),
                     2);
    f->now = T0 + 500 * MS;
    sp root[] = {{.trace = 1, .span = 1}};
    ingest(f, root, 1);
    tick(f, T0 + 1500 * MS);
    assert_int_equal(f->n_out, 0);
    assert_int_equal(pending(f), 2);
    tick(f, T0 + 3 * SEC);
    assert_int_equal(f->n_out, 1);
    size_t n;
    assert_int_equal(check_emitted(f, 0, "everything", &n), 1);
    assert_int_equal(n, 2);
    tick(f, T0 + 4 * SEC - 10 * MS);
    assert_int_equal(f->n_out, 1);
    tick(f, T0 + 4 * SEC);
    assert_int_equal(f->n_out, 2);
    assert_int_equal(decisions(f, "sampled", "max_age"), 1);
    assert_conservation(f);
    fx_free(f);
}

static bool accept_not_trace_2(void *arg, const uint8_t *id, size_t len)
{
    int *calls = arg;
    (*calls)++;
    return len != 16 || trace_num_of(id) != 2;
}

/* rt_tbuf_ingest_if asks once per run of a trace's spans, takes the request whole when every
 * trace is accepted, and nothing of it when one is declined; a malformed request is still
 * refused as such. */
static void test_ingest_if_takes_all_or_nothing(void **state)
{
    (void)state;
    rt_tbuf_opts o = default_opts();
    fx *f = fx_new(&o, POLICIES_ALWAYS);
    sp ok[] = {{.trace = 1, .span = 1},
               {.trace = 1, .span = 2, .parent = 1},
               {.trace = 3, .span = 1},
               {.trace = 1, .span = 3, .parent = 1}};
    size_t len;
    uint8_t *req = build(ok, 4, &len);
    int calls = 0;
    char err[RT_OTLP_ERR_MAX];
    assert_int_equal(
        rt_tbuf_ingest_if(f->b, req, len, f->now, accept_not_trace_2, &calls, err, sizeof err), 4);
    assert_int_equal(calls, 3); /* runs: 1, 3, 1 */
    free(req);
    sp mixed[] = {{.trace = 4, .span = 1}, {.trace = 2, .span = 1}, {.trace = 5, .span = 1}};
    req = build(mixed, 3, &len);
    assert_int_equal(
        rt_tbuf_ingest_if(f->b, req, len, f->now, accept_not_trace_2, &calls, err, sizeof err),
        RT_TBUF_DECLINED);
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    assert_int_equal(st.buffered_spans, 4); /* nothing of the declined request */
    assert_int_equal(st.pending_traces, 2);
    free(req);
    uint8_t bad[] = {0x0a, 0x05, 0x12, 0x03, 0x12, 0x01}; /* ScopeSpans with a cut span */
    assert_int_equal(rt_tbuf_ingest_if(f->b, bad, sizeof bad, f->now, accept_not_trace_2, &calls,
                                       err, sizeof err),
                     -1);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decides_at_decision_wait_exactly_not_before),
        cmocka_unit_test(test_root_span_triggers_earlier_decision),
        cmocka_unit_test(test_max_age_caps_a_later_root_wait),
        cmocka_unit_test(test_overflow_by_traces_decides_oldest_first),
        cmocka_unit_test(test_overflow_decides_settled_then_complete_then_oldest),
        cmocka_unit_test(test_overflow_by_bytes_decides_oldest_first_and_loses_nothing),
        cmocka_unit_test(test_late_spans_follow_cached_decision),
        cmocka_unit_test(test_duplicate_span_in_pending_trace_exported_once),
        cmocka_unit_test(test_emitted_request_keeps_resources_and_scopes),
        cmocka_unit_test(test_reload_reobserves_buffered_spans),
        cmocka_unit_test(test_spans_across_arena_blocks_come_back_whole),
        cmocka_unit_test(test_checked_ingest_refuses_a_malformed_request_whole),
        cmocka_unit_test(test_checked_ingest_of_a_request_past_the_view_limit),
        cmocka_unit_test(test_trace_over_max_trace_bytes_is_discarded),
        cmocka_unit_test(test_1e5_pending_traces_each_decided_on_time),
        cmocka_unit_test(test_memory_per_buffered_span_within_target),
        cmocka_unit_test(test_gauges_follow_state_and_shard_is_stable),
        cmocka_unit_test(test_adjusted_count_and_tracestate_on_kept_spans),
        cmocka_unit_test(test_extracted_trace_is_decided_elsewhere_on_its_original_time),
        cmocka_unit_test(test_adopted_trace_merges_with_what_was_there),
        cmocka_unit_test(test_extracting_a_held_trace_leaves_the_reservoir),
        cmocka_unit_test(test_decisions_are_read_reported_and_applied),
        cmocka_unit_test(test_defer_hook_puts_a_due_decision_off),
        cmocka_unit_test(test_hold_hook_makes_due_traces_wait),
        cmocka_unit_test(test_postpone_puts_the_decision_after_the_refused_spans),
        cmocka_unit_test(test_decide_pending_asks_the_hold_hook),
        cmocka_unit_test(test_ingest_if_takes_all_or_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
