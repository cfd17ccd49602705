/* test_reservoir.c - the reservoir baseline policy through the real trace buffer and policy
 * engine, with time driven by hand: a window with a quiet stretch and a 10x spike keeps exactly
 * min(k, n) traces in the spike's proportion; weighted estimates (p95 of a per-trace duration)
 * from the kept traces are close to the truth where a rate limiter's are not; adjusted counts add
 * up to n per window (and 1/ratio estimates n for probabilistic); held traces take late spans,
 * leave at the window end, on decide_all, set_engine and discard_all, and are given up for
 * bytes; eviction feeds the not-sampled cache; config errors. Emitted requests are decoded with
 * protobuf-c (the last trace_state wins there, as in every protobuf decoder). */
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

#include "adjusted_count.h"
#include "alloc.h"
#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "otlp_gen.h"
#include "pb.h"
#include "policy.h"
#include "policy_internal.h"
#include "trace_buffer.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

#define MS  1000000ull
#define SEC 1000000000ull
#define W0  (1020 * SEC) /* a multiple of 1 min and of 10 s: the start of a window */

/* ---- deterministic trace ids and quantities ------------------------------------------------- */

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Trace `idx` of run `seed`: 12 pseudo-random bytes, then idx big-endian (so an emitted span
 * says which trace it belongs to). */
static void tid(uint64_t seed, uint32_t idx, uint8_t id[16])
{
    uint64_t s = seed * 0x2545f4914f6cdd1dull + idx;
    uint64_t a = splitmix(&s), b = splitmix(&s);
    memcpy(id, &a, 8);
    memcpy(id + 8, &b, 4);
    id[12] = (uint8_t)(idx >> 24);
    id[13] = (uint8_t)(idx >> 16);
    id[14] = (uint8_t)(idx >> 8);
    id[15] = (uint8_t)idx;
}

static uint32_t idx_of(const uint8_t *id)
{
    return (uint32_t)id[12] << 24 | (uint32_t)id[13] << 16 | (uint32_t)id[14] << 8 | id[15];
}

static uint64_t prio_of(uint64_t seed, uint32_t idx)
{
    uint8_t id[16];
    tid(seed, idx, id);
    return rt_policy_reservoir_priority(id);
}

/* ---- building requests ---------------------------------------------------------------------- */

typedef struct tspan {
    uint32_t idx;    /* trace */
    uint32_t span;   /* span number, 1 = root */
    uint64_t dur_ns; /* end - start */
    size_t pad;      /* bytes of an extra attribute, to make the span bigger */
    const char *ts;  /* trace_state, or NULL */
} tspan;

static void put_span(rt_buf *out, uint64_t seed, const tspan *s)
{
    rt_buf b = RT_BUF_INIT;
    uint8_t id[16], sid[8], pid[8];
    tid(seed, s->idx, id);
    uint64_t v = ((uint64_t)s->idx << 32 | s->span) ^ (1ull << 63);
    memcpy(sid, &v, 8);
    rt_pb_append_len_field(&b, 1, id, 16);
    rt_pb_append_len_field(&b, 2, sid, 8);
    if (s->ts != NULL) {
        rt_pb_append_len_field(&b, 3, s->ts, strlen(s->ts));
    }
    if (s->span != 1) {
        v = ((uint64_t)s->idx << 32 | 1) ^ (1ull << 63);
        memcpy(pid, &v, 8);
        rt_pb_append_len_field(&b, 4, pid, 8);
    }
    rt_pb_append_len_field(&b, 5, "turn", 4);
    uint64_t start = 1700000000ull * SEC;
    rt_pb_append_tag(&b, 7, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, start);
    rt_pb_append_tag(&b, 8, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(&b, start + s->dur_ns);
    if (s->pad > 0) {
        rt_buf kv = RT_BUF_INIT, any = RT_BUF_INIT;
        char *p = rt_malloc(s->pad);
        memset(p, 'x', s->pad);
        rt_pb_append_len_field(&any, 1, p, s->pad);
        rt_pb_append_len_field(&kv, 1, "pad", 3);
        rt_pb_append_len_field(&kv, 2, any.data, any.len);
        rt_pb_append_len_field(&b, 9, kv.data, kv.len);
        free(p);
        rt_buf_free(&kv);
        rt_buf_free(&any);
    }
    rt_pb_append_len_field(out, 2, b.data, b.len);
    rt_buf_free(&b);
}

/* One request: one resource (service.name = agent), one scope, the spans. */
static void build(uint64_t seed, const tspan *spans, size_t n, rt_buf *req)
{
    rt_buf ss = RT_BUF_INIT, res = RT_BUF_INIT, kv = RT_BUF_INIT, any = RT_BUF_INIT,
           rs = RT_BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        put_span(&ss, seed, &spans[i]);
    }
    rt_pb_append_len_field(&any, 1, "agent", 5);
    rt_pb_append_len_field(&kv, 1, "service.name", 12);
    rt_pb_append_len_field(&kv, 2, any.data, any.len);
    rt_pb_append_len_field(&res, 1, kv.data, kv.len);
    rt_pb_append_len_field(&rs, 1, res.data, res.len);
    rt_pb_append_len_field(&rs, 2, ss.data, ss.len);
    rt_buf_reset(req);
    rt_pb_append_len_field(req, 1, rs.data, rs.len);
    rt_buf_free(&ss);
    rt_buf_free(&res);
    rt_buf_free(&kv);
    rt_buf_free(&any);
    rt_buf_free(&rs);
}

/* ---- the fixture ---------------------------------------------------------------------------- */

typedef struct kspan {
    uint32_t idx, span;
    uint64_t dur_ns;
    double count; /* RT_ADJ_ATTR, NAN when absent */
    char ts[96];  /* trace_state as decoded (last occurrence) */
    char policy[32];
    uint64_t at; /* fixture time of the emission */
} kspan;

typedef struct rfx {
    rt_cfg_doc *doc[2];
    rt_policy_set *set[2];
    rt_policy_engine *e[2];
    int n_e;
    rt_metrics_registry *reg;
    rt_tbuf *b;
    uint64_t now, seed;
    kspan *k;
    size_t n_k, cap_k;
    size_t requests;
    rt_buf req;
} rfx;

static void on_emit(void *arg, rt_buf *req, size_t spans)
{
    rfx *f = arg;
    Req *r = rt_gen_unpack(req->data, req->len);
    assert_non_null(r);
    size_t n = 0;
    for (size_t a = 0; a < r->n_resource_spans; a++) {
        for (size_t b = 0; b < r->resource_spans[a]->n_scope_spans; b++) {
            SS *ss = r->resource_spans[a]->scope_spans[b];
            for (size_t c = 0; c < ss->n_spans; c++) {
                Span *s = ss->spans[c];
                if (f->n_k == f->cap_k) {
                    f->cap_k = f->cap_k ? f->cap_k * 2 : 256;
                    f->k = rt_realloc(f->k, f->cap_k * sizeof *f->k);
                }
                kspan *k = &f->k[f->n_k++];
                memset(k, 0, sizeof *k);
                assert_int_equal(s->trace_id.len, 16);
                k->idx = idx_of(s->trace_id.data);
                uint64_t sid;
                memcpy(&sid, s->span_id.data, 8);
                k->span = (uint32_t)(sid ^ (1ull << 63));
                k->dur_ns = s->end_time_unix_nano - s->start_time_unix_nano;
                k->count = NAN;
                k->at = f->now;
                snprintf(k->ts, sizeof k->ts, "%s", s->trace_state ? s->trace_state : "");
                for (size_t i = 0; i < s->n_attributes; i++) {
                    KV *kv = s->attributes[i];
                    if (strcmp(kv->key, RT_ADJ_ATTR) == 0) {
                        assert_true(isnan(k->count)); /* at most one */
                        assert_int_equal(
                            kv->value->value_case,
                            OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE);
                        k->count = kv->value->double_value;
                    } else if (strcmp(kv->key, "tailsampling.policy") == 0) {
                        snprintf(k->policy, sizeof k->policy, "%s", kv->value->string_value);
                    }
                }
                n++;
            }
        }
    }
    assert_int_equal(n, spans);
    f->requests++;
    rt_gen_unpack_free(r);
}

static rt_policy_engine *engine_for(rfx *f, const char *yaml)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    int i = f->n_e++;
    assert_true(i < 2);
    f->doc[i] = rt_cfg_doc_load_string(&ctx, yaml, strlen(yaml));
    assert_non_null(f->doc[i]);
    f->set[i] =
        rt_policy_set_parse(&ctx, rt_cfg_node_get(rt_cfg_doc_root(f->doc[i]), "policies"), "p");
    if (f->set[i] == NULL) {
        fail_msg("policy parse: %s", ctx.first_error);
    }
    rt_cfg_ctx_free(&ctx);
    f->e[i] = rt_policy_engine_new(f->set[i], 1.0, false, W0 - 1 * SEC, f->reg);
    return f->e[i];
}

static rt_tbuf_opts opts_default(void)
{
    rt_tbuf_opts o = {
        .decision_wait_ns = 1 * SEC,
        .max_traces = 1000000,
        .max_bytes = 1ull << 32,
        .sampled_cache_size = 100000,
        .non_sampled_cache_size = 100000,
        .emitted_span_ids = 100000,
    };
    return o;
}

static rfx *fx_new(const rt_tbuf_opts *o, const char *yaml, uint64_t seed)
{
    rfx *f = rt_calloc(1, sizeof *f);
    f->reg = rt_metrics_registry_new();
    f->seed = seed;
    f->now = W0;
    rt_buf_init(&f->req);
    f->b = rt_tbuf_new(o, engine_for(f, yaml), on_emit, f, f->reg);
    return f;
}

static void fx_free(rfx *f)
{
    rt_tbuf_free(f->b);
    for (int i = 0; i < f->n_e; i++) {
        rt_policy_engine_free(f->e[i]);
        rt_policy_set_free(f->set[i]);
        rt_cfg_doc_free(f->doc[i]);
    }
    rt_metrics_registry_free(f->reg);
    rt_buf_free(&f->req);
    free(f->k);
    free(f);
}

static void ingest(rfx *f, const tspan *spans, size_t n)
{
    build(f->seed, spans, n, &f->req);
    assert_int_equal(rt_tbuf_ingest(f->b, f->req.data, f->req.len, f->now), (long)n);
}

static void tick(rfx *f, uint64_t at)
{
    f->now = at;
    rt_tbuf_tick(f->b, at);
}

static uint64_t ctr(rfx *f, const char *name, const char *l1, const char *v1, const char *l2,
                    const char *v2)
{
    return rt_counter_get(l2 ? rt_metrics_counter(f->reg, name, "", l1, v1, l2, v2, NULL)
                             : rt_metrics_counter(f->reg, name, "", l1, v1, NULL));
}

static uint64_t decisions(rfx *f, const char *decision, const char *cause)
{
    return ctr(f, "ringtail_sampler_decisions_total", "decision", decision, "cause", cause);
}

static rt_tbuf_stats stats(rfx *f)
{
    rt_tbuf_stats st;
    rt_tbuf_stats_get(f->b, &st);
    return st;
}

/* The trace_state a span without one gets for count `c`. */
static void th_for(double c, char out[32])
{
    char hex[15];
    rt_adj_threshold_hex(rt_adj_threshold(c), hex);
    snprintf(out, 32, "ot=th:%s", hex);
}

static bool near(double a, double b, double rel)
{
    return fabs(a - b) <= rel * fabs(b);
}

/* ---- the spike workload --------------------------------------------------------------------- */

#define N_QUIET 2000u
#define N_SPIKE 20000u

/* Duration of trace idx: quiet traces (idx < N_QUIET, the usual agent turns) 25-35 s; spike
 * traces (a burst of quick Q&A turns) 1-5 s. */
static uint64_t dur_of(uint64_t seed, uint32_t idx)
{
    uint64_t s = seed ^ ((uint64_t)idx * 0x632be59bd9b4e019ull);
    double u = (double)(splitmix(&s) >> 11) / 9007199254740992.0;
    return idx < N_QUIET ? (uint64_t)((25.0 + 10.0 * u) * 1e9) : (uint64_t)((1.0 + 4.0 * u) * 1e9);
}

/* Quiet: 100 traces/s for 20 s; then the spike, 10x that, for 20 s; all inside one 1-minute
 * window; every trace decided (decision_wait 1 s) before the window ends at W0 + 60 s, when the
 * reservoir is flushed. */
static void run_spike(rfx *f, bool flush)
{
    tspan batch[100];
    uint32_t idx = 0;
    uint64_t t = W0;
    while (idx < N_QUIET + N_SPIKE) {
        uint32_t per = idx < N_QUIET ? 10 : 100; /* every 100 ms */
        for (uint32_t i = 0; i < per; i++, idx++) {
            batch[i] = (tspan){.idx = idx, .span = 1, .dur_ns = dur_of(f->seed, idx)};
        }
        tick(f, t);
        ingest(f, batch, per);
        t += 100 * MS;
    }
    tick(f, t + 2 * SEC);
    assert_true(t + 2 * SEC < W0 + 60 * SEC);
    assert_int_equal(stats(f).pending_traces, 0);
    if (flush) {
        tick(f, W0 + 60 * SEC);
    }
}

static const char *const RESERVOIR_2000 = "policies:\n"
                                          "  - name: baseline\n"
                                          "    type: reservoir\n"
                                          "    reservoir: {traces_per_window: 2000, window: 1m}\n";

/* Weighted quantile q of (value, weight) pairs: the smallest value whose cumulative weight
 * reaches q of the total. Sorts `v` in place. */
typedef struct vw {
    double v, w;
} vw;

static int vw_cmp(const void *a, const void *b)
{
    double x = ((const vw *)a)->v, y = ((const vw *)b)->v;
    return x < y ? -1 : x > y;
}

static double wquantile(vw *v, size_t n, double q)
{
    qsort(v, n, sizeof *v, vw_cmp);
    double total = 0, cum = 0;
    for (size_t i = 0; i < n; i++) {
        total += v[i].w;
    }
    for (size_t i = 0; i < n; i++) {
        cum += v[i].w;
        if (cum >= q * total) {
            return v[i].v;
        }
    }
    return n ? v[n - 1].v : 0;
}

/* ---- tests ---------------------------------------------------------------------------------- */

/* 2,000 quiet traces then a 10x spike of 20,000 in one window, k = 2,000: exactly k traces are
 * kept, all with count n / k = 11, and the spike's share of them is its share of the window
 * within 3 standard errors (hypergeometric: se = sqrt(p (1 - p) / k * (n - k) / (n - 1)) =
 * 0.0061 here). */
static void test_spike_window_keeps_exactly_k_in_proportion(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();
    rfx *f = fx_new(&o, RESERVOIR_2000, 1);
    run_spike(f, false);
    const double n = N_QUIET + N_SPIKE, k = 2000;
    assert_int_equal(stats(f).held_traces, 2000);
    assert_true(rt_gauge_get(rt_metrics_gauge(f->reg, "ringtail_sampler_reservoir_held_traces", "",
                                              NULL)) == 2000.0);
    assert_int_equal(f->n_k, 0); /* nothing leaves before the window ends */
    tick(f, W0 + 60 * SEC);
    assert_int_equal(stats(f).held_traces, 0);
    assert_int_equal(f->n_k, 2000);

    char want_ts[32];
    th_for(n / k, want_ts);
    uint8_t *seen = rt_calloc(N_QUIET + N_SPIKE, 1);
    size_t spike = 0;
    for (size_t i = 0; i < f->n_k; i++) {
        kspan *s = &f->k[i];
        assert_false(seen[s->idx]);
        seen[s->idx] = 1;
        spike += s->idx >= N_QUIET;
        assert_string_equal(s->policy, "baseline");
        assert_true(near(s->count, n / k, 1e-9));
        assert_string_equal(s->ts, want_ts);
    }
    free(seen);
    double p = N_SPIKE / n, phat = (double)spike / k;
    double se = sqrt(p * (1 - p) / k * (n - k) / (n - 1));
    print_message("spike share: window %.4f, kept %.4f (se %.4f)\n", p, phat, se);
    assert_true(fabs(phat - p) < 3 * se);

    assert_int_equal(decisions(f, "sampled", "reservoir"), 2000);
    assert_int_equal(decisions(f, "not_sampled", "reservoir") + decisions(f, "not_sampled", "wait"),
                     n - k);
    assert_int_equal(ctr(f, "ringtail_sampler_policy_evaluations_total", "policy", "baseline",
                         "outcome", "sampled"),
                     2000);
    assert_int_equal(ctr(f, "ringtail_sampler_policy_evaluations_total", "policy", "baseline",
                         "outcome", "not_sampled"),
                     n - k);
    assert_int_equal(stats(f).buffered_bytes, 0);
    fx_free(f);
}

/* p95 of the trace duration: spike traces are short, quiet ones long, so the true p95 sits in
 * the quiet traces. Weighted by adjusted counts, the reservoir's kept traces give it within 5 %;
 * a rate limiter (20 spans/s, keeping the first traces of each second) keeps as many quiet as
 * spike traces and, with no counts to weight by, lands far off. */
static void test_weighted_p95_reservoir_beats_rate_limiting(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();
    const uint64_t seed = 7;
    vw *all = rt_calloc(N_QUIET + N_SPIKE, sizeof *all);
    for (uint32_t i = 0; i < N_QUIET + N_SPIKE; i++) {
        all[i] = (vw){(double)dur_of(seed, i) / 1e9, 1};
    }
    double truth = wquantile(all, N_QUIET + N_SPIKE, 0.95);
    free(all);

    double est[2];
    const char *yaml[2] = {RESERVOIR_2000, "policies:\n"
                                           "  - name: capped\n"
                                           "    type: rate_limiting\n"
                                           "    rate_limiting: {spans_per_second: 20}\n"};
    for (int r = 0; r < 2; r++) {
        rfx *f = fx_new(&o, yaml[r], seed);
        run_spike(f, true);
        assert_true(f->n_k > 100);
        vw *kept = rt_calloc(f->n_k, sizeof *kept);
        for (size_t i = 0; i < f->n_k; i++) {
            if (r == 0) {
                assert_false(isnan(f->k[i].count));
            } else {
                assert_true(isnan(f->k[i].count));   /* unknown: no attribute ... */
                assert_string_equal(f->k[i].ts, ""); /* ... and no th */
            }
            kept[i] = (vw){(double)f->k[i].dur_ns / 1e9, r == 0 ? f->k[i].count : 1.0};
        }
        est[r] = wquantile(kept, f->n_k, 0.95);
        free(kept);
        fx_free(f);
    }
    double err_res = fabs(est[0] - truth) / truth, err_rl = fabs(est[1] - truth) / truth;
    print_message("p95 duration: true %.3f s, reservoir %.3f s (%.2f %%), rate_limiting %.3f s "
                  "(%.2f %%)\n",
                  truth, est[0], 100 * err_res, est[1], 100 * err_rl);
    assert_true(err_res < 0.05);
    assert_true(err_rl > err_res);
}

/* Windows of 10 s with 3,000, 600 and 1,001 eligible traces and k = 1,000: the counts of the
 * kept traces of each window add up to its n (count 3, 1 - fewer traces than slots - and
 * 1.001). */
static void test_reservoir_counts_sum_to_n_per_window(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();
    rfx *f = fx_new(&o,
                    "policies:\n"
                    "  - name: baseline\n"
                    "    type: reservoir\n"
                    "    reservoir: {traces_per_window: 1000, window: 10s}\n",
                    3);
    const uint32_t n_w[3] = {3000, 600, 1001};
    uint32_t idx = 0;
    tspan batch[100];
    for (int w = 0; w < 3; w++) {
        uint64_t start = W0 + (uint64_t)w * 10 * SEC;
        size_t before = f->n_k;
        for (uint32_t i = 0; i < n_w[w];) {
            uint32_t m = n_w[w] - i < 100 ? n_w[w] - i : 100;
            for (uint32_t j = 0; j < m; j++) {
                batch[j] = (tspan){.idx = idx++, .span = 1, .dur_ns = 1 * SEC};
            }
            tick(f, start + (uint64_t)(i / 100) * 100 * MS);
            ingest(f, batch, m);
            i += m;
        }
        tick(f, start + 7 * SEC); /* all decided, window not over */
        assert_int_equal(f->n_k, before);
        tick(f, start + 10 * SEC); /* the window ends: its held traces leave */
        double sum = 0;
        size_t kept = f->n_k - before;
        assert_int_equal(kept, n_w[w] < 1000 ? n_w[w] : 1000);
        for (size_t i = before; i < f->n_k; i++) {
            sum += f->k[i].count;
            assert_true(near(f->k[i].count, n_w[w] < 1000 ? 1.0 : n_w[w] / 1000.0, 1e-9));
        }
        print_message("window %d: n %u, kept %zu, sum of counts %.6f\n", w, n_w[w], kept, sum);
        assert_true(near(sum, n_w[w], 1e-9));
    }
    fx_free(f);
}

/* probabilistic 10 % over 20,000 random trace ids: every kept trace has count 10 and the sum
 * of counts estimates n within 3 sigma (sigma = sqrt(n (1 - p) / p) = 424). */
static void test_probabilistic_counts_estimate_n(void **state)
{
    (void)state;
    rfx *f = rt_calloc(1, sizeof *f);
    f->reg = rt_metrics_registry_new();
    rt_policy_engine *e = engine_for(f, "policies:\n"
                                        "  - name: ten\n"
                                        "    type: probabilistic\n"
                                        "    probabilistic: {sampling_percentage: 10}\n");
    const double n = 20000, p = 0.1;
    double sum = 0;
    size_t kept = 0;
    for (uint32_t i = 0; i < (uint32_t)n; i++) {
        rt_trace_summary s;
        memset(&s, 0, sizeof s);
        tid(11, i, s.trace_id);
        s.span_count = 1;
        rt_policy_result r;
        rt_policy_decide(e, NULL, &s, W0, &r);
        assert_int_equal(r.reservoir, -1);
        if (r.decision == RT_DECISION_SAMPLED) {
            assert_true(r.adjusted_count == 10.0);
            sum += r.adjusted_count;
            kept++;
        } else {
            assert_true(r.adjusted_count == 0.0);
        }
    }
    double sigma = sqrt(n * (1 - p) / p);
    print_message("probabilistic 10 %%: kept %zu, sum of counts %.0f, n %.0f, sigma %.0f\n", kept,
                  sum, n, sigma);
    assert_true(fabs(sum - n) < 3 * sigma);
    rt_policy_engine_free(e);
    rt_policy_set_free(f->set[0]);
    rt_cfg_doc_free(f->doc[0]);
    rt_metrics_registry_free(f->reg);
    free(f);
}

static const char *const RESERVOIR_1 = "policies:\n"
                                       "  - name: baseline\n"
                                       "    type: reservoir\n"
                                       "    reservoir: {traces_per_window: 1}\n";

/* k = 1 and three traces, ingested highest priority first: each evicts the one before, so the
 * last (lowest priority) is held. A late span is appended to it (a duplicate is not); the
 * evicted ids are in the not-sampled cache (their late spans are discarded). At the window end
 * it leaves with all its spans and count 3; a span arriving afterwards carries the same count. */
static void test_held_trace_takes_late_spans_and_evicted_ids_are_not_sampled(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();
    rfx *f = fx_new(&o, RESERVOIR_1, 21);
    uint32_t order[3] = {0, 1, 2};
    for (int i = 0; i < 3; i++) { /* by priority, highest first */
        for (int j = i + 1; j < 3; j++) {
            if (prio_of(f->seed, order[j]) > prio_of(f->seed, order[i])) {
                uint32_t t = order[i];
                order[i] = order[j];
                order[j] = t;
            }
        }
    }
    for (int i = 0; i < 3; i++) {
        tspan s[2] = {{.idx = order[i], .span = 1, .dur_ns = SEC},
                      {.idx = order[i], .span = 2, .dur_ns = SEC}};
        ingest(f, s, 2);
        rt_tbuf_stats before = stats(f);
        tick(f, f->now + 1 * SEC); /* decided: offered to the reservoir */
        rt_tbuf_stats after = stats(f);
        assert_int_equal(after.pending_traces, 0);
        assert_int_equal(after.held_traces, 1);
        if (i == 0) {
            /* held: decided, yet its bytes are still buffered */
            assert_int_equal(after.buffered_bytes, before.buffered_bytes);
            assert_int_equal(after.buffered_spans, 2);
        }
    }
    uint32_t held = order[2];
    assert_int_equal(decisions(f, "not_sampled", "reservoir"), 2); /* two evictions */
    assert_int_equal(
        ctr(f, "ringtail_sampler_spans_discarded_total", "reason", "not_sampled", NULL, NULL), 4);
    tspan late[3] = {{.idx = held, .span = 3, .dur_ns = 2 * SEC},
                     {.idx = held, .span = 2, .dur_ns = SEC},      /* duplicate */
                     {.idx = order[0], .span = 3, .dur_ns = SEC}}; /* evicted: late */
    ingest(f, late, 3);
    assert_int_equal(stats(f).buffered_spans, 3);
    assert_int_equal(
        ctr(f, "ringtail_sampler_spans_discarded_total", "reason", "duplicate", NULL, NULL), 1);
    assert_int_equal(
        ctr(f, "ringtail_sampler_spans_discarded_total", "reason", "late_not_sampled", NULL, NULL),
        1);
    assert_int_equal(f->n_k, 0);

    tick(f, W0 + 60 * SEC);
    assert_int_equal(f->requests, 1);
    assert_int_equal(f->n_k, 3);
    char want[32];
    th_for(3.0, want);
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(f->k[i].idx, held);
        assert_true(near(f->k[i].count, 3.0, 1e-9));
        assert_string_equal(f->k[i].ts, want);
        assert_string_equal(f->k[i].policy, "baseline");
    }
    assert_int_equal(decisions(f, "sampled", "reservoir"), 1);
    /* After the decision: a late span follows the cached decision with the same count. */
    tspan after = {.idx = held, .span = 4, .dur_ns = SEC};
    ingest(f, &after, 1);
    assert_int_equal(f->n_k, 4);
    assert_int_equal(f->k[3].span, 4);
    assert_true(near(f->k[3].count, 3.0, 1e-6));
    assert_string_equal(f->k[3].ts, want);
    assert_string_equal(f->k[3].policy, "baseline");
    fx_free(f);
}

/* The byte bound: with every other trace held, a new trace that does not fit makes the buffer
 * give up held traces, highest priority first (counted as early decisions, reason
 * reservoir_bytes), finished as not sampled. */
static void test_overflow_gives_up_held_traces_highest_priority_first(void **state)
{
    (void)state;
    const char *yaml = "policies:\n"
                       "  - name: baseline\n"
                       "    type: reservoir\n"
                       "    reservoir: {traces_per_window: 10}\n";
    /* Measure: bytes of three held traces, and of one more. */
    rt_tbuf_opts o = opts_default();
    rfx *f = fx_new(&o, yaml, 5);
    for (uint32_t i = 0; i < 3; i++) {
        tspan s = {.idx = i, .span = 1, .dur_ns = SEC, .pad = 2000};
        ingest(f, &s, 1);
    }
    tick(f, W0 + 1 * SEC);
    uint64_t three = stats(f).buffered_bytes;
    assert_int_equal(stats(f).held_traces, 3);
    tspan s4 = {.idx = 3, .span = 1, .dur_ns = SEC, .pad = 2000};
    ingest(f, &s4, 1);
    uint64_t four = stats(f).buffered_bytes;
    fx_free(f);

    o.max_bytes = three + (four - three) / 2;
    f = fx_new(&o, yaml, 5);
    for (uint32_t i = 0; i < 3; i++) {
        tspan s = {.idx = i, .span = 1, .dur_ns = SEC, .pad = 2000};
        ingest(f, &s, 1);
    }
    tick(f, W0 + 1 * SEC);
    assert_int_equal(stats(f).held_traces, 3);
    uint32_t top = 0;
    for (uint32_t i = 1; i < 3; i++) {
        if (prio_of(f->seed, i) > prio_of(f->seed, top)) {
            top = i;
        }
    }
    ingest(f, &s4, 1); /* nothing pending to decide early: a held trace goes */
    assert_int_equal(stats(f).held_traces, 2);
    assert_int_equal(stats(f).pending_traces, 1);
    assert_true(stats(f).buffered_bytes <= o.max_bytes);
    assert_int_equal(
        ctr(f, "ringtail_sampler_early_decisions_total", "reason", "reservoir_bytes", NULL, NULL),
        1);
    assert_int_equal(decisions(f, "not_sampled", "reservoir"), 1);
    tspan late = {.idx = top, .span = 2, .dur_ns = SEC};
    ingest(f, &late, 1); /* the given-up trace is in the not-sampled cache */
    assert_int_equal(
        ctr(f, "ringtail_sampler_spans_discarded_total", "reason", "late_not_sampled", NULL, NULL),
        1);
    tick(f, W0 + 3 * SEC); /* trace 3 decided: held (there is room now) */
    assert_int_equal(stats(f).held_traces, 3);
    tick(f, W0 + 60 * SEC);
    assert_int_equal(f->n_k, 3); /* the two held before, and trace 3 */
    for (size_t i = 0; i < f->n_k; i++) {
        assert_true(f->k[i].idx != top);
        assert_true(near(f->k[i].count, 4.0 / 3.0, 1e-9)); /* 4 seen, 3 held at the end */
    }
    fx_free(f);
}

static const char *const RESERVOIR_2 = "policies:\n"
                                       "  - name: baseline\n"
                                       "    type: reservoir\n"
                                       "    reservoir: {traces_per_window: 2, window: 1h}\n";

/* Ingest traces 0..n-1 (one span each) and decide them: min(n, 2) end up held. */
static void hold_some(rfx *f, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        tspan s = {.idx = i, .span = 1, .dur_ns = SEC};
        ingest(f, &s, 1);
    }
    tick(f, f->now + 2 * SEC);
    assert_int_equal(stats(f).held_traces, n < 2 ? n : 2);
}

/* decide_all (shutdown) and set_engine (reload) export the held traces as at a window end,
 * with count seen / held for the partial window; discard_all drops them. */
static void test_decide_all_set_engine_and_discard_all_resolve_held_traces(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();

    rfx *f = fx_new(&o, RESERVOIR_2, 9);
    hold_some(f, 3);
    tspan pend = {.idx = 3, .span = 1, .dur_ns = SEC}; /* still pending at shutdown */
    ingest(f, &pend, 1);
    rt_tbuf_decide_all(f->b, f->now);
    assert_int_equal(f->n_k, 2);
    for (size_t i = 0; i < 2; i++) {
        assert_true(near(f->k[i].count, 2.0, 1e-9)); /* 4 seen, 2 held */
        assert_string_equal(f->k[i].policy, "baseline");
    }
    assert_int_equal(stats(f).held_traces, 0);
    assert_int_equal(stats(f).buffered_bytes, 0);
    fx_free(f);

    f = fx_new(&o, RESERVOIR_2, 9);
    hold_some(f, 2);
    rt_policy_engine *neu = engine_for(f, "policies:\n"
                                          "  - name: everything\n"
                                          "    type: always_sample\n");
    rt_tbuf_set_engine(f->b, neu);
    assert_int_equal(f->n_k, 2);
    assert_true(near(f->k[0].count, 1.0, 1e-9)); /* 2 seen, 2 held */
    assert_string_equal(f->k[0].ts, "ot=th:0");
    assert_int_equal(stats(f).held_traces, 0);
    tspan s = {.idx = 10, .span = 1, .dur_ns = SEC};
    ingest(f, &s, 1);
    tick(f, f->now + 2 * SEC);
    assert_int_equal(f->n_k, 3);
    assert_string_equal(f->k[2].policy, "everything");
    assert_true(f->k[2].count == 1.0);
    fx_free(f);

    f = fx_new(&o, RESERVOIR_2, 9);
    hold_some(f, 2);
    rt_tbuf_discard_all(f->b);
    assert_int_equal(f->n_k, 0);
    assert_int_equal(stats(f).held_traces, 0);
    assert_int_equal(
        ctr(f, "ringtail_sampler_spans_discarded_total", "reason", "shutdown", NULL, NULL), 2);
    fx_free(f);
}

/* Traces another policy keeps never reach the reservoir; the reservoir stands for the rest. */
static void test_reservoir_only_sees_what_nothing_else_kept(void **state)
{
    (void)state;
    rt_tbuf_opts o = opts_default();
    rfx *f = fx_new(&o,
                    "policies:\n"
                    "  - name: baseline\n"
                    "    type: reservoir\n"
                    "    reservoir: {traces_per_window: 100}\n"
                    "  - name: slow\n"
                    "    type: latency\n"
                    "    latency: {threshold_ms: 10000}\n",
                    13);
    for (uint32_t i = 0; i < 20; i++) {
        tspan s = {.idx = i, .span = 1, .dur_ns = (i % 4 == 0 ? 20 : 1) * SEC};
        ingest(f, &s, 1);
    }
    tick(f, W0 + 2 * SEC);
    assert_int_equal(f->n_k, 5); /* the slow ones, at once, count 1 */
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(f->k[i].policy, "slow");
        assert_true(f->k[i].count == 1.0);
    }
    assert_int_equal(stats(f).held_traces, 15);
    tick(f, W0 + 60 * SEC);
    assert_int_equal(f->n_k, 20);
    for (size_t i = 5; i < 20; i++) {
        assert_string_equal(f->k[i].policy, "baseline");
        assert_true(f->k[i].count == 1.0); /* 15 seen, 15 held */
    }
    fx_free(f);
}

/* The bottom-k bookkeeping alone: after any sequence of offers the held priorities are exactly
 * the k lowest, and pop_max returns them highest first. */
static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_bottom_k_holds_the_k_lowest_priorities(void **state)
{
    (void)state;
    enum { N = 20000, K = 300 };
    rt_reservoir r;
    rt_reservoir_init(&r, K, 60 * SEC, W0);
    uint64_t *all = rt_malloc(N * sizeof *all), *sorted = rt_malloc(N * sizeof *sorted);
    uint64_t s = 99;
    size_t held = 0;
    for (size_t i = 0; i < N; i++) {
        all[i] = splitmix(&s);
        void *ev;
        if (rt_reservoir_offer(&r, all[i], (void *)(uintptr_t)(i + 1), &ev)) {
            held++;
        }
        if (ev != NULL) {
            held--;
        }
        assert_int_equal(held, r.n);
    }
    assert_int_equal(r.seen, N);
    assert_true(rt_reservoir_count(&r) == (double)N / K);
    memcpy(sorted, all, N * sizeof *all);
    qsort(sorted, N, sizeof *sorted, u64_cmp);
    for (size_t j = K; j-- > 0;) {
        void *it = rt_reservoir_pop_max(&r);
        assert_non_null(it);
        assert_true(all[(uintptr_t)it - 1] == sorted[j]);
    }
    assert_null(rt_reservoir_pop_max(&r));
    assert_false(rt_reservoir_window_over(&r, W0 + 59 * SEC));
    assert_true(rt_reservoir_window_over(&r, W0 + 60 * SEC));
    rt_reservoir_restart(&r, W0 + 60 * SEC);
    assert_int_equal(r.seen, 0);
    assert_false(rt_reservoir_window_over(&r, W0 + 119 * SEC));
    rt_reservoir_free(&r);
    free(all);
    free(sorted);
}

/* ---- config --------------------------------------------------------------------------------- */

static void expect_error(const char *yaml, const char *prefix, const char *needle)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "t.yaml");
    rt_cfg_doc *doc = rt_cfg_doc_load_string(&ctx, yaml, strlen(yaml));
    assert_non_null(doc);
    rt_policy_set *set =
        rt_policy_set_parse(&ctx, rt_cfg_node_get(rt_cfg_doc_root(doc), "policies"), "policies");
    if (set != NULL || strncmp(ctx.first_error, prefix, strlen(prefix)) != 0 ||
        strstr(ctx.first_error, needle) == NULL) {
        print_error("config:\n%s\nwant prefix \"%s\" containing \"%s\"\ngot: \"%s\"\n", yaml,
                    prefix, needle, ctx.first_error);
        rt_policy_set_free(set);
        rt_cfg_doc_free(doc);
        rt_cfg_ctx_free(&ctx);
        fail();
    }
    rt_cfg_doc_free(doc);
    rt_cfg_ctx_free(&ctx);
}

static void test_config_errors_name_the_line(void **state)
{
    (void)state;
    const char *inner = "      - name: inner\n"
                        "        type: reservoir\n"
                        "        reservoir: {traces_per_window: 10}\n";
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "policies:\n"
             "  - name: outer\n"
             "    type: and\n"
             "    and:\n"
             "      and_sub_policy:\n"
             "%s",
             inner);
    expect_error(yaml, "t.yaml:7: policies[0].and.and_sub_policy[0].type",
                 "reservoir is only allowed as a top-level policy");
    snprintf(yaml, sizeof yaml,
             "policies:\n"
             "  - name: outer\n"
             "    type: drop\n"
             "    drop:\n"
             "      drop_sub_policy:\n"
             "%s",
             inner);
    expect_error(yaml, "t.yaml:7:", "top-level");
    snprintf(yaml, sizeof yaml,
             "policies:\n"
             "  - name: outer\n"
             "    type: composite\n"
             "    composite:\n"
             "      max_total_spans_per_second: 100\n"
             "      composite_sub_policy:\n"
             "%s",
             inner);
    expect_error(yaml, "t.yaml:8:", "top-level");
    expect_error("policies:\n"
                 "  - name: outer\n"
                 "    type: not\n"
                 "    not:\n"
                 "      not_sub_policy:\n"
                 "        name: inner\n"
                 "        type: reservoir\n"
                 "        reservoir: {traces_per_window: 10}\n",
                 "t.yaml:7: policies[0].not.not_sub_policy.type", "top-level");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n"
                 "    reservoir: {traces_per_window: 10}\n"
                 "  - name: b\n"
                 "    type: reservoir\n"
                 "    reservoir: {traces_per_window: 10}\n",
                 "t.yaml:5: policies[1]", "only one reservoir policy is allowed (\"a\" on line 2");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n"
                 "    reservoir: {traces_per_window: 0}\n",
                 "t.yaml:4: policies[0].reservoir.traces_per_window", "");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n"
                 "    reservoir: {traces_per_window: 10000001}\n",
                 "t.yaml:4: policies[0].reservoir.traces_per_window", "");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n"
                 "    reservoir: {traces_per_window: 10, window: 0s}\n",
                 "t.yaml:4: policies[0].reservoir.window", "");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n"
                 "    reservoir: {window: 1m}\n",
                 "t.yaml:4: policies[0].reservoir", "traces_per_window");
    expect_error("policies:\n"
                 "  - name: a\n"
                 "    type: reservoir\n",
                 "t.yaml:2: policies[0]", "missing block `reservoir:`");

    char err[256];
    if (rt_cfg_check_table(rt_pol_reservoir_ops.fields, err, sizeof err) != 0) {
        fail_msg("reservoir table: %s", err);
    }

    /* Valid: the default window, and a worker's share of k rounded up. */
    rfx *f = rt_calloc(1, sizeof *f);
    rt_policy_engine *e = engine_for(f, "policies:\n"
                                        "  - name: always\n"
                                        "    type: always_sample\n"
                                        "  - name: base\n"
                                        "    type: reservoir\n"
                                        "    reservoir: {traces_per_window: 1000}\n");
    rt_policy_reservoir_params rp;
    assert_true(rt_policy_engine_reservoir(e, &rp));
    assert_int_equal(rp.policy, 1);
    assert_int_equal(rp.slots, 1000);
    assert_int_equal(rp.window_ns, 60 * SEC);
    rt_policy_engine *e3 = rt_policy_engine_new(f->set[0], 1.0 / 3, false, 0, NULL);
    assert_true(rt_policy_engine_reservoir(e3, &rp));
    assert_int_equal(rp.slots, 334);
    rt_policy_engine *e4 = rt_policy_engine_new(f->set[0], 1.0 / 4, false, 0, NULL);
    assert_true(rt_policy_engine_reservoir(e4, &rp));
    assert_int_equal(rp.slots, 250);
    rt_policy_engine_free(e3);
    rt_policy_engine_free(e4);
    rt_policy_engine_free(e);
    rt_policy_set_free(f->set[0]);
    rt_cfg_doc_free(f->doc[0]);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spike_window_keeps_exactly_k_in_proportion),
        cmocka_unit_test(test_weighted_p95_reservoir_beats_rate_limiting),
        cmocka_unit_test(test_reservoir_counts_sum_to_n_per_window),
        cmocka_unit_test(test_probabilistic_counts_estimate_n),
        cmocka_unit_test(test_held_trace_takes_late_spans_and_evicted_ids_are_not_sampled),
        cmocka_unit_test(test_overflow_gives_up_held_traces_highest_priority_first),
        cmocka_unit_test(test_decide_all_set_engine_and_discard_all_resolve_held_traces),
        cmocka_unit_test(test_reservoir_only_sees_what_nothing_else_kept),
        cmocka_unit_test(test_bottom_k_holds_the_k_lowest_priorities),
        cmocka_unit_test(test_config_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
