/* test_exporter.c - the sampler's exporter against real OTLP/HTTP and OTLP/gRPC servers on
 * loopback (on the test's own event loop): retries after 503 + Retry-After deliver every span
 * exactly once, a dead backend's spans are all accounted for as queue_full or gave_up, the
 * back-pressure level follows an answering backend's queue and leaves a failing one out, a drain
 * deadline drops the rest as shutdown, two backends each get everything, gzip over both
 * transports, the OTLP/JSON file exporter (two workers appending to one file, and the default
 * file), and the `exporters:` config (a good file, each error kind with its line, --help-config).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "clock.h"
#include "exporter.h"
#include "grpc_server.h"
#include "http_server.h"
#include "net.h"
#include "otlp_json.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <event2/event.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_NS 1000000000ULL

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans resource_spans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans scope_spans;
typedef Opentelemetry__Proto__Trace__V1__Span span_t;

/* A span's identity at the sink: trace id then span id. */
#define ID_LEN 24

/* ---- requests with known, unique span ids --------------------------------------------------- */

/* Append the protobuf of one trace (`n_spans` spans, trace number `trace_no`, span ids
 * trace_no * 1000 + k) to `out`; the request's bytes are what a kept trace looks like. */
static void make_trace(uint32_t trace_no, size_t n_spans, rt_buf *out)
{
    uint8_t tid[16] = {0};
    uint8_t sids[64][8];
    assert_true(n_spans <= 64);
    tid[0] = 0xab;
    memcpy(tid + 12, &trace_no, 4);
    span_t spans[64];
    span_t *sp[64];
    for (size_t k = 0; k < n_spans; k++) {
        opentelemetry__proto__trace__v1__span__init(&spans[k]);
        uint64_t sid = (uint64_t)trace_no * 1000 + k + 1;
        memcpy(sids[k], &sid, 8);
        spans[k].trace_id = (ProtobufCBinaryData){16, tid};
        spans[k].span_id = (ProtobufCBinaryData){8, sids[k]};
        spans[k].name = (char *)"op";
        spans[k].start_time_unix_nano = 1000 + k;
        spans[k].end_time_unix_nano = 2000 + k;
        sp[k] = &spans[k];
    }
    scope_spans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = n_spans;
    ss.spans = sp;
    scope_spans *ssp = &ss;
    resource_spans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    resource_spans *rsp = &rs;
    export_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    size_t len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *p = rt_buf_reserve(out, len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, p);
    out->len += len;
}

/* Append the ids of every span in protobuf request `pb` to `ids` (ID_LEN bytes each); returns
 * the number of spans, or -1 if it does not decode. */
static long collect_ids(const uint8_t *pb, size_t len, rt_buf *ids)
{
    export_req *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         pb);
    if (r == NULL) {
        return -1;
    }
    long n = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            scope_spans *ss = r->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                uint8_t id[ID_LEN] = {0};
                memcpy(id, ss->spans[k]->trace_id.data,
                       ss->spans[k]->trace_id.len < 16 ? ss->spans[k]->trace_id.len : 16);
                memcpy(id + 16, ss->spans[k]->span_id.data,
                       ss->spans[k]->span_id.len < 8 ? ss->spans[k]->span_id.len : 8);
                rt_buf_append(ids, id, ID_LEN);
                n++;
            }
        }
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r,
                                                                                            NULL);
    return n;
}

static int cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, ID_LEN);
}

/* Assert that the id multisets `got` and `want` are equal (every span once, nothing else). */
static void assert_same_ids(rt_buf *got, rt_buf *want)
{
    assert_int_equal(got->len % ID_LEN, 0);
    assert_int_equal(got->len, want->len);
    qsort(got->data, got->len / ID_LEN, ID_LEN, cmp_id);
    qsort(want->data, want->len / ID_LEN, ID_LEN, cmp_id);
    for (size_t i = ID_LEN; i < want->len; i += ID_LEN) {
        assert_true(memcmp(want->data + i - ID_LEN, want->data + i, ID_LEN) != 0);
    }
    assert_memory_equal(got->data, want->data, want->len);
}

/* ---- a scripted sink: our own OTLP server on the test's loop -------------------------------- */

typedef struct sink {
    rt_http_server *http;
    rt_grpc_server *grpc;
    char endpoint[64];
    int fail_n; /* answer fail_status to the first fail_n calls */
    rt_otlp_status fail_status;
    uint32_t retry_after_s;
    int64_t rejected; /* accepted calls answer a partial success refusing this many spans */
    int calls;
    long spans; /* spans in accepted requests */
    rt_buf ids; /* their ids */
} sink;

static void sink_handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count,
                         void *arg)
{
    sink *s = arg;
    rt_otlp_result res;
    if (s->calls++ < s->fail_n) {
        rt_otlp_result_set(&res, s->fail_status, "scripted failure %d", s->calls);
        res.retry_after_s = s->retry_after_s;
    } else {
        long n = collect_ids(pb, len, &s->ids);
        assert_true(n >= 0);
        assert_int_equal((size_t)n, span_count);
        s->spans += n;
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        if (s->rejected > 0) {
            rt_otlp_result_set(&res, RT_OTLP_OK, "refused %lld", (long long)s->rejected);
            res.rejected_spans = s->rejected;
        }
    }
    rt_otlp_call_respond(call, &res);
}

static void sink_start(struct event_base *base, sink *s, bool grpc)
{
    char err[256];
    rt_otlp_server_opts o = {.handler = sink_handler, .handler_arg = s};
    uint16_t port;
    if (grpc) {
        s->grpc = rt_grpc_server_new(base, "127.0.0.1:0", &o, err, sizeof err);
        if (s->grpc == NULL) {
            fail_msg("grpc server: %s", err);
        }
        port = rt_grpc_server_port(s->grpc);
    } else {
        s->http = rt_http_server_new(base, "127.0.0.1:0", &o, err, sizeof err);
        if (s->http == NULL) {
            fail_msg("http server: %s", err);
        }
        port = rt_http_server_port(s->http);
    }
    snprintf(s->endpoint, sizeof s->endpoint, "127.0.0.1:%u", port);
}

static void sink_stop(sink *s)
{
    rt_http_server_free(s->http);
    rt_grpc_server_free(s->grpc);
    rt_buf_free(&s->ids);
}

/* ---- loop helpers ---------------------------------------------------------------------------- */

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    *(bool *)arg = true;
}

/* Run `base` until *flag or `limit_s` seconds pass; fails the test on the limit. */
static void run_until(struct event_base *base, const bool *flag, int limit_s)
{
    bool expired = false;
    struct event *ev = evtimer_new(base, on_guard, &expired);
    struct timeval tv = {limit_s, 0};
    evtimer_add(ev, &tv);
    while (!*flag && !expired) {
        if (event_base_loop(base, EVLOOP_ONCE) < 0) {
            break;
        }
    }
    event_free(ev);
    if (!*flag) {
        fail_msg("timed out after %d s", limit_s);
    }
}

static void on_drained(void *arg)
{
    *(bool *)arg = true;
}

/* Drain `x` with a deadline `limit_s` from now and run the loop until done. Returns the time it
 * took in ns. */
static uint64_t drain_and_wait(struct event_base *base, rt_exporter *x, int limit_s)
{
    bool done = false;
    uint64_t t0 = rt_clock_mono_ns();
    rt_exporter_drain(x, t0 + (uint64_t)limit_s * S_NS, on_drained, &done);
    assert_false(done); /* never called from inside drain */
    run_until(base, &done, limit_s + 5);
    return rt_clock_mono_ns() - t0;
}

/* ---- config helpers ------------------------------------------------------------------------- */

typedef struct test_cfg {
    rt_exporters_cfg exporters;
} test_cfg;

static const rt_cfg_field test_fields[] = {
    RT_EXPORTERS_FIELD(test_cfg, exporters),
    {0},
};

/* Load `yaml` (named test.yaml in messages) into `cfg`. Returns 0 or -1 with the first error in
 * `err`. */
static int load_cfg(const char *yaml, test_cfg *cfg, char *err, size_t errlen)
{
    rt_cfg_ctx ctx;
    rt_cfg_ctx_init(&ctx, "test.yaml");
    memset(cfg, 0, sizeof *cfg);
    rt_cfg_set_defaults(test_fields, cfg);
    int rc = -1;
    rt_cfg_doc *doc = rt_cfg_doc_load_string(&ctx, yaml, strlen(yaml));
    if (doc != NULL) {
        rc = rt_cfg_apply(&ctx, test_fields, rt_cfg_doc_root(doc), NULL, cfg);
        rt_cfg_doc_free(doc);
    }
    snprintf(err, errlen, "%s", ctx.first_error);
    rt_cfg_ctx_free(&ctx);
    return rc;
}

static void load_ok(const char *yaml, test_cfg *cfg)
{
    char err[512];
    if (load_cfg(yaml, cfg, err, sizeof err) != 0) {
        fail_msg("config did not load: %s\n%s", err, yaml);
    }
}

/* ---- metrics helpers ------------------------------------------------------------------------ */

static uint64_t exported(rt_metrics_registry *reg, const char *name)
{
    return rt_counter_get(rt_metrics_counter(reg, "ringtail_sampler_spans_exported_total", NULL,
                                             "exporter", name, NULL));
}

static uint64_t dropped(rt_metrics_registry *reg, const char *name, const char *reason)
{
    return rt_counter_get(rt_metrics_counter(reg, "ringtail_sampler_spans_export_dropped_total",
                                             NULL, "exporter", name, "reason", reason, NULL));
}

static uint64_t batches(rt_metrics_registry *reg, const char *name, const char *outcome)
{
    return rt_counter_get(rt_metrics_counter(reg, "ringtail_sampler_export_batches_total", NULL,
                                             "exporter", name, "outcome", outcome, NULL));
}

static uint64_t retries(rt_metrics_registry *reg, const char *name)
{
    return rt_counter_get(rt_metrics_counter(reg, "ringtail_sampler_export_retries_total", NULL,
                                             "exporter", name, NULL));
}

static double gauge(rt_metrics_registry *reg, const char *metric, const char *name)
{
    return rt_gauge_get(rt_metrics_gauge(reg, metric, NULL, "exporter", name, NULL));
}

static uint64_t all_dropped(rt_metrics_registry *reg, const char *name)
{
    return dropped(reg, name, "queue_full") + dropped(reg, name, "rejected") +
           dropped(reg, name, "gave_up") + dropped(reg, name, "shutdown");
}

/* Submit traces first..first+n-1 of 1 + (i % 7) spans each; collects their ids in `want`.
 * Returns the number of spans. */
static size_t submit_traces(rt_exporter *x, uint32_t first, uint32_t n, rt_buf *want)
{
    size_t total = 0;
    rt_buf b = RT_BUF_INIT;
    for (uint32_t i = first; i < first + n; i++) {
        rt_buf_reset(&b);
        size_t spans = 1 + i % 7;
        make_trace(i, spans, &b);
        if (want != NULL) {
            assert_int_equal(collect_ids(b.data, b.len, want), (long)spans);
        }
        rt_exporter_submit(x, b.data, b.len, spans);
        total += spans;
    }
    rt_buf_free(&b);
    return total;
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_503_with_retry_after_twice_then_ok_delivers_every_span_once(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    sink s = {.fail_n = 2, .fail_status = RT_OTLP_UNAVAILABLE, .retry_after_s = 1};
    sink_start(base, &s, false);
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: be\n"
                            "    type: otlp_http\n"
                            "    endpoint: %s\n"
                            "    compression: none\n"
                            "    max_inflight: 2\n"
                            "    batch: {max_spans: 40, timeout: 20ms}\n"
                            "    retry: {initial_interval: 10ms, max_interval: 100ms, "
                            "max_elapsed: 10s}\n",
                            s.endpoint);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);

    rt_buf want = RT_BUF_INIT;
    size_t total = submit_traces(x, 1, 60, &want);
    assert_int_equal(rt_exporter_pending_spans(x), total);
    uint64_t took = drain_and_wait(base, x, 10);

    assert_int_equal(rt_exporter_pending_spans(x), 0);
    assert_int_equal(s.spans, (long)total);
    assert_same_ids(&s.ids, &want);
    assert_int_equal(exported(reg, "be"), total);
    assert_int_equal(all_dropped(reg, "be"), 0);
    assert_int_equal(retries(reg, "be"), 2);
    /* Retry-After: 1 was honoured (not our 10 ms backoff). */
    assert_true(took >= 900 * 1000000ULL);
    assert_true(batches(reg, "be", "ok") >= 2); /* 240 spans in batches of <= 40 + 6 */
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_bytes", "be"), 0);
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_batches", "be"), 0);
    assert_int_equal(s.calls, 2 + (int)batches(reg, "be", "ok"));

    rt_buf_free(&want);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    sink_stop(&s);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

/* A loopback port nobody listens on. */
static uint16_t dead_port(void)
{
    char err[128];
    int fd = rt_net_listen("127.0.0.1:0", false, err, sizeof err);
    assert_true(fd >= 0);
    uint16_t port = rt_net_local_port(fd);
    close(fd);
    return port;
}

static void test_down_backend_spans_are_queue_full_or_gave_up_and_all_accounted(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    rt_buf one = RT_BUF_INIT;
    make_trace(7, 20, &one); /* every submit is this trace: 20 spans, one batch each */
    size_t L = one.len;
    assert_true(L * 3 >= 1024);
    /* Two workers share the bound: each may hold 3.5 traces, i.e. 3. */
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: down\n"
                            "    type: otlp_http\n"
                            "    endpoint: 127.0.0.1:%u\n"
                            "    batch: {max_spans: 20}\n"
                            "    queue: {max_bytes: %zu}\n"
                            "    retry: {initial_interval: 20ms, max_interval: 50ms, "
                            "max_elapsed: 300ms}\n",
                            dead_port(), 7 * L);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 2, reg, err, sizeof err);
    assert_non_null(x);

    for (int i = 0; i < 10; i++) {
        rt_exporter_submit(x, one.data, one.len, 20);
    }
    assert_int_equal(dropped(reg, "down", "queue_full"), 7 * 20);
    assert_int_equal(rt_exporter_pending_spans(x), 3 * 20);
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_bytes", "down"), 3 * L);
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_batches", "down"), 3);
    drain_and_wait(base, x, 10);

    assert_int_equal(rt_exporter_pending_spans(x), 0);
    assert_int_equal(exported(reg, "down"), 0);
    assert_int_equal(dropped(reg, "down", "gave_up"), 3 * 20);
    assert_int_equal(dropped(reg, "down", "shutdown"), 0);
    assert_int_equal(batches(reg, "down", "gave_up"), 3);
    assert_int_equal(exported(reg, "down") + all_dropped(reg, "down"), 10 * 20);
    assert_true(retries(reg, "down") >= 3);
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_bytes", "down"), 0);

    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    rt_buf_free(&one);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

/* Run the loop (bounded: 10 s) until the exporter's pressure is `want`. */
static void run_until_pressure(struct event_base *base, rt_exporter *x, rt_export_pressure want)
{
    uint64_t until = rt_clock_mono_ns() + 10 * S_NS;
    while (rt_exporter_pressure(x) != want && rt_clock_mono_ns() < until) {
        event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
        usleep(1000);
    }
    assert_int_equal(rt_exporter_pressure(x), want);
}

/* Back-pressure: an answering backend's pressure follows what it holds - none below half the
 * bound, THROTTLE from half, HOLD from three quarters - and falls back once it is delivered; a
 * backend whose attempts fail is left out however full (its queue drops as before), and so is
 * one with queue.backpressure off. */
static void test_pressure_follows_an_answering_backend_and_ignores_a_failing_one(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    rt_buf one = RT_BUF_INIT;
    make_trace(9, 20, &one); /* one batch per submit */
    size_t L = one.len;
    sink s = {0};
    sink_start(base, &s, false);
    /* Bound: 8 traces for `up` (one worker) and for `down`; `off` has back-pressure off. */
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: up\n"
                            "    type: otlp_http\n"
                            "    endpoint: %s\n"
                            "    compression: none\n"
                            "    batch: {max_spans: 20}\n"
                            "    queue: {max_bytes: %zu}\n",
                            s.endpoint, 8 * L);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_NONE);
    for (int i = 0; i < 3; i++) {
        rt_exporter_submit(x, one.data, one.len, 20);
    }
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_NONE); /* 3/8 */
    rt_exporter_submit(x, one.data, one.len, 20);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_THROTTLE); /* 4/8 */
    rt_exporter_submit(x, one.data, one.len, 20);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_THROTTLE); /* 5/8 */
    rt_exporter_submit(x, one.data, one.len, 20);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_HOLD); /* 6/8 */
    drain_and_wait(base, x, 10);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_NONE);
    assert_int_equal(exported(reg, "up"), 6 * 20);
    assert_int_equal(all_dropped(reg, "up"), 0);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);

    yaml = rt_sprintf("exporters:\n"
                      "  - name: down\n"
                      "    type: otlp_http\n"
                      "    endpoint: 127.0.0.1:%u\n"
                      "    batch: {max_spans: 20}\n"
                      "    queue: {max_bytes: %zu}\n"
                      "    retry: {initial_interval: 20ms, max_interval: 50ms, max_elapsed: 1m}\n"
                      "  - name: off\n"
                      "    type: otlp_http\n"
                      "    endpoint: %s\n"
                      "    batch: {max_spans: 20}\n"
                      "    queue: {max_bytes: %zu, backpressure: false}\n",
                      dead_port(), 8 * L, s.endpoint, 8 * L);
    load_ok(yaml, &cfg);
    x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    for (int i = 0; i < 7; i++) {
        rt_exporter_submit(x, one.data, one.len, 20);
    }
    /* not tried yet: `down` counts as answering */
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_HOLD);
    run_until_pressure(base, x, RT_EXPORT_PRESSURE_NONE); /* its first attempts failed */
    assert_int_equal(exported(reg, "down"), 0);
    rt_exporter_submit(x, one.data, one.len, 20);
    rt_exporter_submit(x, one.data, one.len, 20); /* the ninth passes the bound */
    assert_int_equal(dropped(reg, "down", "queue_full"), 20);
    assert_int_equal(rt_exporter_pressure(x), RT_EXPORT_PRESSURE_NONE);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    rt_buf_free(&one);
    sink_stop(&s);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_drain_deadline_drops_what_is_left_as_shutdown(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: stuck\n"
                            "    type: otlp_grpc\n"
                            "    endpoint: 127.0.0.1:%u\n"
                            "    batch: {max_spans: 10, timeout: 1m}\n"
                            "    retry: {initial_interval: 10ms, max_elapsed: 1m}\n",
                            dead_port());
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    size_t total = submit_traces(x, 1, 12, NULL); /* some in flight, one batch still open */
    assert_int_equal(rt_exporter_pending_spans(x), total);

    bool done = false;
    uint64_t t0 = rt_clock_mono_ns();
    rt_exporter_drain(x, t0 + 300 * 1000000ULL, on_drained, &done);
    run_until(base, &done, 5);
    uint64_t took = rt_clock_mono_ns() - t0;
    assert_true(took >= 250 * 1000000ULL && took < 3 * S_NS);
    assert_int_equal(rt_exporter_pending_spans(x), 0);
    assert_int_equal(dropped(reg, "stuck", "shutdown"), total);
    assert_int_equal(exported(reg, "stuck") + all_dropped(reg, "stuck"), total);

    /* After the deadline the exporter is stopped: new traces are counted, not held. */
    rt_buf b = RT_BUF_INIT;
    make_trace(99, 3, &b);
    rt_exporter_submit(x, b.data, b.len, 3);
    assert_int_equal(dropped(reg, "stuck", "shutdown"), total + 3);
    assert_int_equal(rt_exporter_pending_spans(x), 0);
    rt_buf_free(&b);

    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_free_counts_open_and_queued_spans_as_shutdown(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    char *yaml = rt_sprintf("exporters:\n"
                            "  - {name: gone, type: otlp_http, endpoint: 127.0.0.1:%u,"
                            " batch: {max_spans: 10, timeout: 1m}}\n",
                            dead_port());
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    size_t total = submit_traces(x, 1, 12, NULL);
    rt_exporter_free(x);
    assert_int_equal(dropped(reg, "gone", "shutdown"), total);
    assert_int_equal(gauge(reg, "ringtail_sampler_export_queue_bytes", "gone"), 0);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

/* Two backends on transports `grpc_a` / `grpc_b` with `compression` get every span. */
static void two_backends(bool grpc_a, bool grpc_b, const char *compression)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    sink a = {0}, b = {0};
    sink_start(base, &a, grpc_a);
    sink_start(base, &b, grpc_b);
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: a\n"
                            "    type: %s\n"
                            "    endpoint: %s\n"
                            "    compression: %s\n"
                            "    headers: {x-api-key: secret}\n"
                            "    batch: {max_spans: 100, max_bytes: 4KiB, timeout: 10ms}\n"
                            "  - name: b\n"
                            "    type: %s\n"
                            "    endpoint: %s\n"
                            "    compression: %s\n"
                            "    batch: {max_spans: 33, timeout: 10ms}\n",
                            grpc_a ? "otlp_grpc" : "otlp_http", a.endpoint, compression,
                            grpc_b ? "otlp_grpc" : "otlp_http", b.endpoint, compression);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    if (x == NULL) {
        fail_msg("exporter: %s", err);
    }
    rt_buf want = RT_BUF_INIT;
    size_t total = submit_traces(x, 1000, 150, &want);
    assert_int_equal(rt_exporter_pending_spans(x), 2 * total);
    drain_and_wait(base, x, 10);

    rt_buf want_b = RT_BUF_INIT;
    rt_buf_append(&want_b, want.data, want.len);
    assert_same_ids(&a.ids, &want);
    assert_same_ids(&b.ids, &want_b);
    assert_int_equal(exported(reg, "a"), total);
    assert_int_equal(exported(reg, "b"), total);
    assert_int_equal(all_dropped(reg, "a") + all_dropped(reg, "b"), 0);
    /* Batching did happen, bounded by max_bytes (a) and max_spans (b). */
    assert_true(a.calls > 1 && a.calls < 150);
    assert_true(b.calls >= (int)(total / 40) && b.calls < 150);
    assert_int_equal(batches(reg, "a", "ok"), a.calls);
    assert_int_equal(batches(reg, "b", "ok"), b.calls);

    rt_buf_free(&want);
    rt_buf_free(&want_b);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    sink_stop(&a);
    sink_stop(&b);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_two_http_backends_both_get_everything(void **state)
{
    two_backends(false, false, "none");
}

static void test_gzip_over_grpc_and_http_delivers_everything(void **state)
{
    two_backends(true, false, "gzip");
}

static void test_rejected_batch_is_dropped_not_retried(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    sink s = {.fail_n = 1, .fail_status = RT_OTLP_BAD_DATA};
    sink_start(base, &s, true);
    char *yaml = rt_sprintf("exporters:\n"
                            "  - {name: r, type: otlp_grpc, endpoint: %s, batch: {max_spans: 8}}\n",
                            s.endpoint);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    rt_buf b = RT_BUF_INIT;
    make_trace(1, 8, &b);
    rt_exporter_submit(x, b.data, b.len, 8); /* first batch: answered INVALID_ARGUMENT */
    rt_buf_reset(&b);
    make_trace(2, 8, &b);
    uint64_t limit = rt_clock_mono_ns() + 5 * S_NS;
    while (batches(reg, "r", "rejected") == 0 && rt_clock_mono_ns() < limit) {
        event_base_loop(base, EVLOOP_ONCE);
    }
    assert_int_equal(batches(reg, "r", "rejected"), 1);
    rt_exporter_submit(x, b.data, b.len, 8);
    drain_and_wait(base, x, 5);
    assert_int_equal(dropped(reg, "r", "rejected"), 8);
    assert_int_equal(exported(reg, "r"), 8);
    assert_int_equal(retries(reg, "r"), 0);
    assert_int_equal(s.calls, 2);
    rt_buf_free(&b);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    sink_stop(&s);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_partial_success_counts_exported_minus_rejected(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    sink s = {.rejected = 3};
    sink_start(base, &s, false);
    char *yaml =
        rt_sprintf("exporters:\n"
                   "  - {name: p, type: otlp_http, endpoint: %s, batch: {max_spans: 10}}\n",
                   s.endpoint);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    assert_non_null(x);
    rt_buf b = RT_BUF_INIT;
    make_trace(1, 10, &b);
    rt_exporter_submit(x, b.data, b.len, 10);
    rt_exporter_submit(x, b.data, b.len, 10);
    drain_and_wait(base, x, 5);
    assert_int_equal(s.calls, 2);
    assert_int_equal(exported(reg, "p"), 2 * 7);
    assert_int_equal(dropped(reg, "p", "rejected"), 2 * 3);
    assert_int_equal(batches(reg, "p", "partial"), 2);
    assert_int_equal(retries(reg, "p"), 0);
    rt_buf_free(&b);
    rt_exporter_free(x);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    sink_stop(&s);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

typedef struct free_box {
    rt_exporter *x;
    bool done;
} free_box;

static void free_on_drained(void *arg)
{
    free_box *fb = arg;
    rt_exporter_free(fb->x); /* allowed: drain's callback runs from the loop */
    fb->x = NULL;
    fb->done = true;
}

static void test_drain_callback_may_free_the_exporter(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    sink s = {0};
    sink_start(base, &s, true);
    char *yaml =
        rt_sprintf("exporters:\n  - {name: g, type: otlp_grpc, endpoint: %s}\n", s.endpoint);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    free_box fb = {rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err), false};
    assert_non_null(fb.x);
    size_t total = submit_traces(fb.x, 1, 20, NULL);
    rt_exporter_drain(fb.x, rt_clock_mono_ns() + 5 * S_NS, free_on_drained, &fb);
    run_until(base, &fb.done, 5);
    assert_null(fb.x);
    assert_int_equal(exported(reg, "g"), total);
    assert_int_equal(s.spans, (long)total);
    /* Draining an idle exporter also calls back from the loop. */
    fb.x = rt_exporter_new(base, &cfg.exporters, NULL, 1, reg, err, sizeof err);
    fb.done = false;
    rt_exporter_drain(fb.x, rt_clock_mono_ns() + 5 * S_NS, free_on_drained, &fb);
    assert_false(fb.done);
    run_until(base, &fb.done, 5);
    rt_exporters_cfg_free(&cfg.exporters);
    free(yaml);
    sink_stop(&s);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

/* Read `path` and check each line: valid JSON with resourceSpans, converting back to protobuf;
 * collects the ids into `ids`. Returns the number of lines. */
static size_t check_json_lines(const char *path, rt_buf *ids, size_t *spans)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    size_t lines = 0;
    *spans = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        assert_int_equal(line[n - 1], '\n');
        json_error_t jerr;
        json_t *doc = json_loadb(line, (size_t)n, 0, &jerr);
        if (doc == NULL) {
            fail_msg("line %zu is not JSON: %s", lines + 1, jerr.text);
        }
        /* Count spans through the JSON itself. */
        size_t line_spans = 0;
        json_t *rss = json_object_get(doc, "resourceSpans");
        assert_true(json_is_array(rss));
        size_t i, j;
        json_t *rs, *ss;
        json_array_foreach(rss, i, rs)
        {
            json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
            {
                line_spans += json_array_size(json_object_get(ss, "spans"));
            }
        }
        json_decref(doc);
        rt_buf pb = RT_BUF_INIT;
        char err[256];
        if (rt_otlp_json_to_pb(line, (size_t)n - 1, &pb, err, sizeof err) != 0) {
            fail_msg("line %zu: %s", lines + 1, err);
        }
        assert_int_equal(collect_ids(pb.data, pb.len, ids), (long)line_spans);
        rt_buf_free(&pb);
        *spans += line_spans;
        lines++;
    }
    free(line);
    fclose(f);
    return lines;
}

static void test_file_exporter_two_workers_append_whole_json_lines(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    char dir[] = "/tmp/rt_test_exporter.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = rt_sprintf("%s/kept.jsonl", dir);
    char *yaml = rt_sprintf("exporters:\n"
                            "  - name: f\n"
                            "    type: file\n"
                            "    file: %s\n"
                            "    batch: {max_spans: 25, timeout: 5ms}\n",
                            path);
    test_cfg cfg;
    load_ok(yaml, &cfg);
    char err[256];
    rt_exporter *w1 = rt_exporter_new(base, &cfg.exporters, NULL, 2, reg, err, sizeof err);
    rt_exporter *w2 = rt_exporter_new(base, &cfg.exporters, NULL, 2, reg, err, sizeof err);
    assert_non_null(w1);
    assert_non_null(w2);
    rt_buf want = RT_BUF_INIT;
    size_t total = 0;
    for (uint32_t round = 0; round < 5; round++) {
        total += submit_traces(w1, 100 + round * 20, 10, &want);
        total += submit_traces(w2, 110 + round * 20, 10, &want);
    }
    /* Let the batch timer seal the open batches, then drain what is left. */
    struct timeval tv = {0, 20000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    assert_int_equal(rt_exporter_pending_spans(w1) + rt_exporter_pending_spans(w2), 0);
    drain_and_wait(base, w1, 2);
    drain_and_wait(base, w2, 2);

    rt_buf got = RT_BUF_INIT;
    size_t spans = 0;
    size_t lines = check_json_lines(path, &got, &spans);
    assert_int_equal(spans, total);
    assert_same_ids(&got, &want);
    assert_int_equal(lines, batches(reg, "f", "ok"));
    assert_true(lines >= total / 31); /* max_spans 25 plus one trace of <= 7 */
    assert_int_equal(exported(reg, "f"), total);
    assert_int_equal(all_dropped(reg, "f"), 0);

    rt_exporter_free(w1);
    rt_exporter_free(w2);
    rt_buf_free(&got);
    rt_buf_free(&want);
    rt_exporters_cfg_free(&cfg.exporters);
    unlink(path);
    free(path);
    free(yaml);
    rmdir(dir);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_no_exporter_configured_writes_the_default_file(void **state)
{
    struct event_base *base = event_base_new();
    rt_metrics_registry *reg = rt_metrics_registry_new();
    char dir[] = "/tmp/rt_test_exporter.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *path = rt_sprintf("%s/default.jsonl", dir);
    test_cfg cfg;
    load_ok("exporters:\n", &cfg);
    assert_int_equal(cfg.exporters.n, 0);
    char err[256];
    rt_exporter *x = rt_exporter_new(base, &cfg.exporters, path, 1, reg, err, sizeof err);
    assert_non_null(x);
    rt_buf want = RT_BUF_INIT;
    size_t total = submit_traces(x, 1, 5, &want);
    drain_and_wait(base, x, 2);
    rt_buf got = RT_BUF_INIT;
    size_t spans = 0;
    assert_int_equal(check_json_lines(path, &got, &spans), 1); /* one batch, one line */
    assert_int_equal(spans, total);
    assert_same_ids(&got, &want);
    assert_int_equal(exported(reg, "default"), total);
    rt_exporter_free(x);
    rt_buf_free(&got);
    rt_buf_free(&want);
    rt_exporters_cfg_free(&cfg.exporters);
    unlink(path);
    free(path);
    rmdir(dir);
    rt_metrics_registry_free(reg);
    event_base_free(base);
}

static void test_config_good_file_loads_with_every_key(void **state)
{
    const char *yaml = "exporters:\n"
                       "  - name: backend\n"
                       "    type: otlp_http\n"
                       "    endpoint: 10.0.0.9:4318\n"
                       "    path: /v1/traces\n"
                       "    headers: {x-api-key: abc, X-Tenant: t1}\n"
                       "    compression: none\n"
                       "    timeout: 5s\n"
                       "    max_inflight: 8\n"
                       "    tls: {enabled: false, server_name: example.com}\n"
                       "    batch: {max_spans: 100, max_bytes: 1MiB, timeout: 50ms}\n"
                       "    queue: {max_bytes: 64MiB}\n"
                       "    retry: {enabled: true, initial_interval: 100ms, max_interval: 2s,"
                       " max_elapsed: 1m}\n"
                       "  - name: g.2\n"
                       "    type: otlp_grpc\n"
                       "    endpoint: '[::1]:4317'\n"
                       "  - name: kept_file\n"
                       "    type: file\n"
                       "    file: /tmp/kept.jsonl\n";
    test_cfg cfg;
    load_ok(yaml, &cfg);
    assert_int_equal(cfg.exporters.n, 3);
    assert_string_equal(rt_exporter_cfg_name(cfg.exporters.items[0]), "backend");
    assert_string_equal(rt_exporter_cfg_type(cfg.exporters.items[0]), "otlp_http");
    assert_string_equal(rt_exporter_cfg_name(cfg.exporters.items[1]), "g.2");
    assert_string_equal(rt_exporter_cfg_type(cfg.exporters.items[1]), "otlp_grpc");
    assert_string_equal(rt_exporter_cfg_type(cfg.exporters.items[2]), "file");
    rt_exporters_cfg_free(&cfg.exporters);
    assert_int_equal(cfg.exporters.n, 0);
}

/* `yaml` must fail with a first error that starts "test.yaml:<line>:" and contains `needle`. */
static void expect_error(const char *yaml, int line, const char *needle)
{
    test_cfg cfg;
    char err[512];
    int rc = load_cfg(yaml, &cfg, err, sizeof err);
    rt_exporters_cfg_free(&cfg.exporters);
    if (rc == 0) {
        fail_msg("config loaded but should fail with \"%s\":\n%s", needle, yaml);
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "test.yaml:%d:", line);
    if (strncmp(err, prefix, strlen(prefix)) != 0 || strstr(err, needle) == NULL) {
        fail_msg("want \"%s ... %s\", got \"%s\"", prefix, needle, err);
    }
}

static void test_config_each_error_names_its_line(void **state)
{
    expect_error("exporters:\n"
                 "  - {name: a, type: file, file: /tmp/a}\n"
                 "  - name: a\n"
                 "    type: file\n"
                 "    file: /tmp/b\n",
                 3,
                 "exporters[1].name: exporter name \"a\" already used by exporters[0] on line 2");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n",
                 2, "exporters[0].endpoint: missing (required for type otlp_http)");
    expect_error("exporters:\n"
                 "  - name: f\n"
                 "    type: file\n",
                 2, "exporters[0].file: missing (required for type file)");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_grpc\n"
                 "    endpoint: localhost:4317\n"
                 "    batch:\n"
                 "      timeout: fast\n",
                 6, "exporters[0].batch.timeout");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_grpc\n"
                 "    endpoint: localhost:4317\n"
                 "    retyr: {max_elapsed: 1s}\n",
                 5, "exporters[0].retyr: unknown key");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n"
                 "    endpoint: nohost\n",
                 4, "exporters[0].endpoint: \"nohost\" is not host:port");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n"
                 "    endpoint: h:1\n"
                 "    headers:\n"
                 "      x-ok: 1\n"
                 "      bad header: 2\n",
                 7, "exporters[0].headers.bad header: not a valid HTTP header name");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n"
                 "    endpoint: h:1\n"
                 "    headers: [x-api-key]\n",
                 5, "exporters[0].headers: expected a mapping");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n"
                 "    endpoint: h:1\n"
                 "    headers: {content-type: text/plain}\n",
                 5, "set by the exporter itself");
    expect_error("exporters:\n"
                 "  - type: file\n"
                 "    file: /tmp/x\n",
                 2, "exporters[0].name: missing required key");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: kafka\n",
                 3, "exporters[0].type");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_grpc\n"
                 "    endpoint: h:1\n"
                 "    file: /tmp/x\n",
                 5, "exporters[0].file: does not apply to type otlp_grpc");
    expect_error("exporters:\n"
                 "  - name: 'my backend'\n"
                 "    type: file\n"
                 "    file: /tmp/x\n",
                 2, "is not a valid name");
    expect_error("exporters:\n"
                 "  - name: a\n"
                 "    type: otlp_http\n"
                 "    endpoint: h:1\n"
                 "    queue: {max_bytes: 10}\n",
                 5, "exporters[0].queue.max_bytes");
    expect_error("exporters: {name: a}\n", 1, "exporters: expected a list of exporters");
}

static void test_config_defaults_are_documented(void **state)
{
    rt_buf out = RT_BUF_INIT;
    rt_exporters_cfg_describe(NULL, &out);
    rt_buf_append_byte(&out, '\0');
    const char *doc = (const char *)out.data;
    static const char *const want[] = {
        "exporters[].name (string) required",
        "exporters[].type (enum: otlp_http, otlp_grpc, file) required",
        "exporters[].endpoint",
        "exporters[].path (string) default \"/v1/traces\"",
        "exporters[].headers (mapping of header name to string)",
        "exporters[].compression (enum: none, gzip) default gzip",
        "exporters[].timeout (duration) default 10s",
        "exporters[].max_inflight (unsigned integer) default 32",
        "exporters[].tls.insecure_skip_verify",
        "exporters[].file",
        "exporters[].batch.max_spans (unsigned integer) default 8192",
        "exporters[].batch.max_bytes (size) default 4MiB",
        "exporters[].batch.timeout (duration) default 200ms",
        "exporters[].queue.max_bytes (size) default 256MiB",
        "exporters[].retry.initial_interval (duration) default 1s",
        "exporters[].retry.max_interval (duration) default 30s",
        "exporters[].retry.max_elapsed (duration) default 5m",
        NULL,
    };
    for (size_t i = 0; want[i] != NULL; i++) {
        if (strstr(doc, want[i]) == NULL) {
            fail_msg("--help-config lacks \"%s\":\n%s", want[i], doc);
        }
    }
    rt_buf_free(&out);
}

static void test_new_reports_unwritable_file_and_bad_tls_files(void **state)
{
    struct event_base *base = event_base_new();
    test_cfg cfg;
    char err[512];
    load_ok("exporters:\n"
            "  - {name: f, type: file, file: /nonexistent-dir/x.jsonl}\n",
            &cfg);
    assert_null(rt_exporter_new(base, &cfg.exporters, NULL, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "exporter \"f\": cannot open file \"/nonexistent-dir/x.jsonl\""));
    rt_exporters_cfg_free(&cfg.exporters);

    load_ok("exporters:\n"
            "  - {name: t, type: otlp_grpc, endpoint: 127.0.0.1:1,"
            " tls: {enabled: true, ca: /nonexistent-ca.pem}}\n",
            &cfg);
    assert_null(rt_exporter_new(base, &cfg.exporters, NULL, 1, NULL, err, sizeof err));
    assert_non_null(strstr(err, "exporter \"t\""));
    assert_non_null(strstr(err, "/nonexistent-ca.pem"));
    rt_exporters_cfg_free(&cfg.exporters);
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_503_with_retry_after_twice_then_ok_delivers_every_span_once),
        cmocka_unit_test(test_down_backend_spans_are_queue_full_or_gave_up_and_all_accounted),
        cmocka_unit_test(test_pressure_follows_an_answering_backend_and_ignores_a_failing_one),
        cmocka_unit_test(test_drain_deadline_drops_what_is_left_as_shutdown),
        cmocka_unit_test(test_free_counts_open_and_queued_spans_as_shutdown),
        cmocka_unit_test(test_two_http_backends_both_get_everything),
        cmocka_unit_test(test_gzip_over_grpc_and_http_delivers_everything),
        cmocka_unit_test(test_rejected_batch_is_dropped_not_retried),
        cmocka_unit_test(test_partial_success_counts_exported_minus_rejected),
        cmocka_unit_test(test_drain_callback_may_free_the_exporter),
        cmocka_unit_test(test_file_exporter_two_workers_append_whole_json_lines),
        cmocka_unit_test(test_no_exporter_configured_writes_the_default_file),
        cmocka_unit_test(test_config_good_file_loads_with_every_key),
        cmocka_unit_test(test_config_each_error_names_its_line),
        cmocka_unit_test(test_config_defaults_are_documented),
        cmocka_unit_test(test_new_reports_unwritable_file_and_bad_tls_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
