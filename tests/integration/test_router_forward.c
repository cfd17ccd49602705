/* test_router_forward.c - the router's forwarding core (router/forward.c) on one event loop with
 * three in-process OTLP/HTTP sinks: each span reaches the owner its trace id has on the ring,
 * under its original resource and scope, exactly once; invalid trace ids are a partial success;
 * a dead node's parts go to the successors of their keys; no live node gives 503 + Retry-After;
 * a sampler's 400 is reported as rejected spans; the in-flight cap gives 429; the request
 * deadline gives 503; a view change keeps clients and re-routes parts of removed nodes; a
 * malformed request is answered 400 with the structural check's message and nothing is sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "forward.h"
#include "node_health.h"
#include "http_server.h"
#include "membership.h"
#include "otlp_call.h"
#include "otlp_scan.h"
#include "view.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NSINK     3
#define MAX_SPANS 20000
#define MAX_HELD  64

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

typedef struct sink {
    struct fixture *fx;
    int index;
    rt_http_server *srv;
    uint16_t port;
    rt_otlp_status answer; /* OK, or an error to answer */
    bool hold;             /* keep calls unanswered */
    rt_otlp_call *held[MAX_HELD];
    int n_held;
    int requests;
} sink;

typedef struct fixture {
    struct event_base *base;
    sink sinks[NSINK];
    char dir[64];
    rt_membership *m;
    rt_metrics_registry *reg;
    rt_fwd_metrics metrics;
    rt_fwd *f;
    rt_view *view;
    /* What arrived: sink index + 1 per span number (span ids are 1..n), and how often. */
    int where[MAX_SPANS];
    int times[MAX_SPANS];
    bool scope_ok[MAX_SPANS];
} fixture;

/* A fake client call: answered results land here. */
typedef struct fake_call {
    rt_otlp_call base; /* first member: rt_otlp_call_respond dispatches through it */
    rt_otlp_result res;
    bool answered;
} fake_call;

static void fake_respond(rt_otlp_call *call, const rt_otlp_result *res)
{
    fake_call *fc = (fake_call *)call;
    fc->res = *res;
    fc->answered = true;
}

static void fake_init(fake_call *fc)
{
    memset(fc, 0, sizeof *fc);
    fc->base.respond = fake_respond;
    fc->base.transport = RT_OTLP_HTTP_PROTOBUF;
    snprintf(fc->base.peer, sizeof fc->base.peer, "test");
}

/* Sinks record each span by its span id (a big-endian span number) and check that the scope
 * name the test gave it ("scope-<resource>-<scope>") sits under the matching resource. */
static void sink_handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t n, void *arg)
{
    sink *s = arg;
    fixture *fx = s->fx;
    s->requests++;
    if (s->hold) {
        assert_true(s->n_held < MAX_HELD);
        s->held[s->n_held++] = call;
        return;
    }
    rt_otlp_result res;
    if (s->answer != RT_OTLP_OK) {
        rt_otlp_result_set(&res, s->answer, "sink %d says no", s->index);
        rt_otlp_call_respond(call, &res);
        return;
    }
    rt_otlp_scan sc;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&sc, pb, len);
    while (rt_otlp_scan_next(&sc, &v) == 1) {
        assert_int_equal(v.span_id.len, 8);
        uint64_t num = 0;
        for (int i = 0; i < 8; i++) {
            num = num << 8 | v.span_id.p[i];
        }
        assert_true(num > 0 && num < MAX_SPANS);
        fx->where[num] = s->index + 1;
        fx->times[num]++;
        rt_otlp_scope_view scv;
        rt_otlp_resource_view rv;
        assert_int_equal(rt_otlp_scope_parse(v.scope.p, v.scope.len, &scv, NULL, NULL, 0), 0);
        assert_int_equal(rt_otlp_resource_parse(v.resource.p, v.resource.len, &rv, NULL, NULL, 0),
                         0);
        rt_otlp_attr a;
        assert_int_equal(
            rt_otlp_attr_find(v.resource.p, v.resource.len, RT_OTLP_RESOURCE_ATTRS, "res", 3, &a),
            1);
        /* scope name "scope-R-S" must carry the resource's "res" value R. */
        char want[32];
        snprintf(want, sizeof want, "scope-%.*s-", (int)a.value.s.len, (const char *)a.value.s.p);
        fx->scope_ok[num] =
            scv.name.len > strlen(want) && memcmp(scv.name.p, want, strlen(want)) == 0;
    }
    rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
    rt_otlp_call_respond(call, &res);
}

static void sink_open(fixture *fx, int i, uint16_t port)
{
    sink *s = &fx->sinks[i];
    s->fx = fx;
    s->index = i;
    char addr[64], err[256];
    snprintf(addr, sizeof addr, "127.0.0.1:%u", port);
    rt_otlp_server_opts so = {.handler = sink_handler, .handler_arg = s};
    s->srv = rt_http_server_new(fx->base, addr, &so, err, sizeof err);
    assert_non_null(s->srv);
    s->port = rt_http_server_port(s->srv);
}

static void sink_close(sink *s)
{
    rt_http_server_free(s->srv);
    s->srv = NULL;
}

static void sink_release(sink *s)
{
    s->hold = false;
    for (int i = 0; i < s->n_held; i++) {
        rt_otlp_result res;
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        rt_otlp_call_respond(s->held[i], &res);
    }
    s->n_held = 0;
}

static rt_membership *load_ring(fixture *fx, int n_nodes)
{
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/ring.yaml", fx->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fprintf(fp, "nodes:\n");
    for (int i = 0; i < n_nodes; i++) {
        fprintf(fp, "  - {id: sink-%d, endpoint: \"127.0.0.1:%u\"}\n", i, fx->sinks[i].port);
    }
    fclose(fp);
    rt_membership *m = rt_membership_load(path, err, sizeof err);
    assert_non_null(m);
    return m;
}

/* Publish a view of fx->m with `up` flags to the forwarder. */
static void publish(fixture *fx, const bool *up)
{
    rt_view *v = rt_view_new(fx->m, up, NULL, 1, fx->view ? fx->view->generation + 1 : 1, fx->reg);
    rt_fwd_set_view(fx->f, v);
    rt_view_unref(fx->view);
    fx->view = v;
}

static fixture *fixture_new(uint32_t max_inflight, uint64_t deadline_ns)
{
    fixture *fx = rt_calloc(1, sizeof *fx);
    fx->base = event_base_new();
    snprintf(fx->dir, sizeof fx->dir, "/tmp/rt-router-fwd-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    for (int i = 0; i < NSINK; i++) {
        sink_open(fx, i, 0);
    }
    fx->m = load_ring(fx, NSINK);
    fx->reg = rt_metrics_registry_new();
    rt_fwd_metrics_init(&fx->metrics, fx->reg);
    rt_fwd_opts o = {
        .protocol = -1,
        .timeout_ms = 2000,
        .max_inflight = max_inflight,
        .connections = 2,
        .retry_budget_ns = 300ull * 1000 * 1000,
        .request_deadline_ns = deadline_ns,
        .retry_after_s = 7,
        .metrics = &fx->metrics,
    };
    fx->f = rt_fwd_new(fx->base, 0, &o);
    bool up[NSINK] = {true, true, true};
    publish(fx, up);
    return fx;
}

static void fixture_free(fixture *fx)
{
    rt_fwd_free(fx->f);
    rt_view_unref(fx->view);
    for (int i = 0; i < NSINK; i++) {
        sink_release(&fx->sinks[i]);
        sink_close(&fx->sinks[i]);
    }
    rt_membership_free(fx->m);
    rt_metrics_registry_free(fx->reg);
    event_base_free(fx->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

static void run_until_answered(fixture *fx, fake_call *fc, int limit_ms)
{
    for (int t = 0; t < limit_ms && !fc->answered; t += 5) {
        struct timeval tv = {0, 5000};
        event_base_loopexit(fx->base, &tv);
        event_base_dispatch(fx->base);
    }
    assert_true(fc->answered);
}

static void run_for(fixture *fx, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

/* ---- request building ---------------------------------------------------------------------- */

static KV *kv(const char *k, const char *v)
{
    KV *x = rt_calloc(1, sizeof *x);
    AV *a = rt_calloc(1, sizeof *a);
    opentelemetry__proto__common__v1__key_value__init(x);
    opentelemetry__proto__common__v1__any_value__init(a);
    a->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    a->string_value = rt_strdup(v);
    x->key = rt_strdup(k);
    x->value = a;
    return x;
}

static void trace_id_of(uint64_t trace, uint8_t out[16])
{
    uint64_t x = trace * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        out[i] = (uint8_t)(x >> 56);
    }
}

/* A request of n_res resources x n_scope scopes x per spans; span numbers start at *next and
 * the trace of span k is (k / 7) (traces spread over requests). `bad` spans at the end have
 * an 8-byte or an all-zero trace id. Returns the packed bytes. */
static uint8_t *build(uint64_t *next, int n_res, int n_scope, int per, int bad, size_t *len)
{
    Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = (size_t)n_res;
    req.resource_spans = rt_calloc((size_t)n_res, sizeof(RS *));
    for (int r = 0; r < n_res; r++) {
        RS *rs = rt_calloc(1, sizeof *rs);
        opentelemetry__proto__trace__v1__resource_spans__init(rs);
        rs->resource = rt_calloc(1, sizeof *rs->resource);
        opentelemetry__proto__resource__v1__resource__init(rs->resource);
        char rv[16];
        snprintf(rv, sizeof rv, "%d", r);
        rs->resource->n_attributes = 1;
        rs->resource->attributes = rt_calloc(1, sizeof(KV *));
        rs->resource->attributes[0] = kv("res", rv);
        rs->n_scope_spans = (size_t)n_scope;
        rs->scope_spans = rt_calloc((size_t)n_scope, sizeof(SS *));
        for (int s = 0; s < n_scope; s++) {
            SS *ss = rt_calloc(1, sizeof *ss);
            opentelemetry__proto__trace__v1__scope_spans__init(ss);
            ss->scope = rt_calloc(1, sizeof *ss->scope);
            opentelemetry__proto__common__v1__instrumentation_scope__init(ss->scope);
            char name[32];
            snprintf(name, sizeof name, "scope-%d-%d", r, s);
            ss->scope->name = rt_strdup(name);
            int n = per + ((r == n_res - 1 && s == n_scope - 1) ? bad : 0);
            ss->n_spans = (size_t)n;
            ss->spans = rt_calloc((size_t)n, sizeof(Span *));
            for (int k = 0; k < n; k++) {
                Span *sp = rt_calloc(1, sizeof *sp);
                opentelemetry__proto__trace__v1__span__init(sp);
                uint64_t num = (*next)++;
                sp->span_id.len = 8;
                sp->span_id.data = rt_malloc(8);
                for (int i = 0; i < 8; i++) {
                    sp->span_id.data[i] = (uint8_t)(num >> (56 - 8 * i));
                }
                sp->trace_id.data = rt_calloc(1, 16);
                if (k < per) {
                    sp->trace_id.len = 16;
                    trace_id_of(num / 7, sp->trace_id.data);
                } else {
                    sp->trace_id.len = (k - per) % 2 ? 16 : 8; /* all zero or too short */
                }
                sp->name = rt_strdup("op");
                ss->spans[k] = sp;
            }
            rs->scope_spans[s] = ss;
        }
        req.resource_spans[r] = rs;
    }
    *len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *buf = rt_malloc(*len ? *len : 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
    for (int r = 0; r < n_res; r++) {
        RS *rs = req.resource_spans[r];
        for (int s = 0; s < n_scope; s++) {
            SS *ss = rs->scope_spans[s];
            for (size_t k = 0; k < ss->n_spans; k++) {
                free(ss->spans[k]->span_id.data);
                free(ss->spans[k]->trace_id.data);
                free(ss->spans[k]->name);
                free(ss->spans[k]);
            }
            free(ss->spans);
            free(ss->scope->name);
            free(ss->scope);
            free(ss);
        }
        free(rs->scope_spans);
        free(rs->resource->attributes[0]->value->string_value);
        free(rs->resource->attributes[0]->value);
        free(rs->resource->attributes[0]->key);
        free(rs->resource->attributes[0]);
        free(rs->resource->attributes);
        free(rs->resource);
        free(rs);
    }
    free(req.resource_spans);
    return buf;
}

/* Send one request through the forwarder and wait for the answer. */
static rt_otlp_result send_req(fixture *fx, const uint8_t *pb, size_t len, int limit_ms)
{
    fake_call fc;
    fake_init(&fc);
    size_t n = 0;
    char err[128];
    assert_int_equal(rt_otlp_validate(pb, len, &n, err, sizeof err), 0);
    /* The router's listeners leave the check to the split (handler_checks) and pass 0. */
    rt_fwd_handle(&fc.base, pb, len, 0, fx->f);
    run_until_answered(fx, &fc, limit_ms);
    return fc.res;
}

/* The sink (index) that owns span number `num` on `ring`. */
static int owner_of(const rt_ring *ring, uint64_t num)
{
    uint8_t tid[16];
    trace_id_of(num / 7, tid);
    int o = rt_ring_lookup(ring, tid, 16);
    assert_true(o >= 0);
    /* Ring index order is id order: sink-0, sink-1, sink-2. */
    return o;
}

/* ---- tests ------------------------------------------------------------------------------- */

static void test_every_span_reaches_its_owner_once_under_its_resource_and_scope(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    uint64_t next = 1;
    for (int r = 0; r < 20; r++) {
        size_t len;
        uint8_t *pb = build(&next, 2, 3, 10, 0, &len);
        rt_otlp_result res = send_req(fx, pb, len, 5000);
        assert_int_equal(res.status, RT_OTLP_OK);
        assert_int_equal(res.rejected_spans, 0);
        free(pb);
    }
    int per_sink[NSINK] = {0};
    for (uint64_t k = 1; k < next; k++) {
        assert_int_equal(fx->times[k], 1);
        assert_int_equal(fx->where[k], owner_of(fx->m->ring, k) + 1);
        assert_true(fx->scope_ok[k]);
        per_sink[fx->where[k] - 1]++;
    }
    for (int i = 0; i < NSINK; i++) {
        assert_true(per_sink[i] > 0); /* 1200 spans over 3 nodes: each gets some */
    }
    assert_int_equal(rt_counter_get(fx->metrics.spans_received[RT_OTLP_HTTP_PROTOBUF]), 1200);
    uint64_t fwd = 0;
    for (size_t i = 0; i < fx->view->n; i++) {
        fwd += rt_counter_get(fx->view->nodes[i].spans_forwarded);
    }
    assert_int_equal(fwd, 1200);
    assert_int_equal(rt_fwd_active(fx->f), 0);
    fixture_free(fx);
}

static void test_invalid_trace_ids_are_a_partial_success_and_counted(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 20, 4, &len);
    rt_otlp_result res = send_req(fx, pb, len, 5000);
    assert_int_equal(res.status, RT_OTLP_OK);
    assert_int_equal(res.rejected_spans, 4);
    assert_non_null(strstr(res.message, "invalid trace id"));
    assert_int_equal(rt_counter_get(fx->metrics.rejected[RT_FWD_REJ_INVALID_TRACE_ID]), 4);
    int arrived = 0;
    for (uint64_t k = 1; k < next; k++) {
        arrived += fx->times[k];
    }
    assert_int_equal(arrived, 20);
    free(pb);

    /* Only invalid spans: nothing is sent, the answer comes at once. */
    pb = build(&next, 1, 1, 0, 3, &len);
    res = send_req(fx, pb, len, 100);
    assert_int_equal(res.status, RT_OTLP_OK);
    assert_int_equal(res.rejected_spans, 3);
    free(pb);
    fixture_free(fx);
}

static void test_dead_node_parts_go_to_the_successors_of_their_keys(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    sink_close(&fx->sinks[1]); /* sink-1 refuses connections; the view still says up */
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 2, 2, 50, 0, &len);
    rt_otlp_result res = send_req(fx, pb, len, 5000);
    assert_int_equal(res.status, RT_OTLP_OK);
    free(pb);
    /* Where each span should be: its owner with sink-1 down. */
    char err[128];
    rt_ring_node_spec specs[NSINK];
    for (int i = 0; i < NSINK; i++) {
        specs[i] = (rt_ring_node_spec){rt_ring_node_id(fx->m->ring, (size_t)i), "", 1};
    }
    rt_ring *down = rt_ring_new(specs, NSINK, err, sizeof err);
    rt_ring_set_up(down, 1, false);
    int moved = 0;
    for (uint64_t k = 1; k < next; k++) {
        assert_int_equal(fx->times[k], 1);
        assert_int_equal(fx->where[k], owner_of(down, k) + 1);
        moved += owner_of(fx->m->ring, k) == 1;
    }
    assert_true(moved > 0);
    assert_int_equal(rt_counter_get(fx->view->nodes[1].retries), 1);
    assert_true(rt_counter_get(fx->view->nodes[1].errors[RT_VIEW_ERR_CONNECT]) >= 1);
    rt_ring_free(down);
    fixture_free(fx);
}

static void test_no_live_node_answers_503_with_retry_after(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    for (int i = 0; i < NSINK; i++) {
        sink_close(&fx->sinks[i]);
    }
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 30, 0, &len);
    rt_otlp_result res = send_req(fx, pb, len, 5000);
    assert_int_equal(res.status, RT_OTLP_UNAVAILABLE);
    assert_int_equal(res.retry_after_s, 7);
    assert_int_equal(rt_counter_get(fx->metrics.rejected[RT_FWD_REJ_UNAVAILABLE]), 30);

    /* A view with every node down answers at once. */
    bool up[NSINK] = {false, false, false};
    publish(fx, up);
    res = send_req(fx, pb, len, 50);
    assert_int_equal(res.status, RT_OTLP_UNAVAILABLE);
    free(pb);
    fixture_free(fx);
}

static void test_sampler_400_is_reported_as_rejected_spans(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    fx->sinks[2].answer = RT_OTLP_BAD_DATA;
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 60, 0, &len);
    int want = 0;
    for (uint64_t k = 1; k < next; k++) {
        want += owner_of(fx->m->ring, k) == 2;
    }
    assert_true(want > 0);
    rt_otlp_result res = send_req(fx, pb, len, 5000);
    assert_int_equal(res.status, RT_OTLP_OK);
    assert_int_equal(res.rejected_spans, want);
    assert_non_null(strstr(res.message, "sink-2"));
    assert_int_equal(fx->sinks[2].requests, 1); /* final: not retried, not moved */
    free(pb);
    fixture_free(fx);
}

static void test_inflight_cap_answers_429_instead_of_queueing(void **state)
{
    fixture *fx = fixture_new(1, 5000000000ull);
    for (int i = 0; i < NSINK; i++) {
        fx->sinks[i].hold = true;
    }
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 60, 0, &len);
    fake_call first;
    fake_init(&first);
    rt_fwd_handle(&first.base, pb, len, 60, fx->f);
    /* Every node now has one export in flight: a second request cannot be placed. */
    rt_otlp_result res = send_req(fx, pb, len, 100);
    assert_int_equal(res.status, RT_OTLP_THROTTLED);
    assert_int_equal(res.retry_after_s, 7);
    assert_false(first.answered);
    for (int i = 0; i < NSINK; i++) {
        sink_release(&fx->sinks[i]);
    }
    run_until_answered(fx, &first, 5000);
    for (int t = 0; t < 100 && !first.answered; t++) {
        run_for(fx, 10);
    }
    free(pb);
    fixture_free(fx);
}

static void test_request_deadline_answers_503_while_a_node_hangs(void **state)
{
    fixture *fx = fixture_new(64, 200ull * 1000 * 1000);
    fx->sinks[0].hold = true;
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 60, 0, &len);
    rt_otlp_result res = send_req(fx, pb, len, 2000);
    assert_int_equal(res.status, RT_OTLP_UNAVAILABLE);
    assert_non_null(strstr(res.message, "deadline"));
    assert_int_equal(rt_fwd_active(fx->f), 0);
    sink_release(&fx->sinks[0]);
    run_for(fx, 50);
    free(pb);
    fixture_free(fx);
}

static void test_view_change_reroutes_parts_of_a_removed_node(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    fx->sinks[2].hold = true;
    uint64_t next = 1;
    size_t len;
    uint8_t *pb = build(&next, 1, 1, 60, 0, &len);
    fake_call fc;
    fake_init(&fc);
    rt_fwd_handle(&fc.base, pb, len, 60, fx->f);
    run_for(fx, 50);
    assert_int_equal(fx->sinks[2].n_held, 1);
    /* sink-2 leaves the ring: its held part is re-routed on the new two-node view. */
    rt_membership *m2 = load_ring(fx, 2);
    rt_membership *old = fx->m;
    fx->m = m2;
    bool up[2] = {true, true};
    publish(fx, up);
    run_until_answered(fx, &fc, 5000);
    assert_int_equal(fc.res.status, RT_OTLP_OK);
    for (uint64_t k = 1; k < next; k++) {
        assert_int_equal(fx->times[k], 1);
        assert_int_equal(fx->where[k], owner_of(m2->ring, k) + 1);
    }
    rt_membership_free(old);
    free(pb);
    fixture_free(fx);
}

/* A request whose last bytes are malformed (after spans the split has already grouped) is
 * answered BAD_DATA with the structural check's message, and no sampler receives anything. */
static void test_malformed_request_is_refused_before_any_part_is_sent(void **state)
{
    fixture *fx = fixture_new(64, 5000000000ull);
    uint64_t next = 1;
    size_t len;
    uint8_t *good = build(&next, 2, 2, 30, 0, &len);
    uint8_t *pb = rt_malloc(len + 2);
    memcpy(pb, good, len);
    pb[len] = 0x0a; /* one more resource_spans, its length running past the end */
    pb[len + 1] = 0x05;
    char want[RT_OTLP_ERR_MAX];
    size_t n;
    assert_int_equal(rt_otlp_check_structure(pb, len + 2, &n, want, sizeof want), -1);

    fake_call fc;
    fake_init(&fc);
    rt_fwd_handle(&fc.base, pb, len + 2, 0, fx->f);
    assert_true(fc.answered); /* at once */
    assert_int_equal(fc.res.status, RT_OTLP_BAD_DATA);
    assert_true(strncmp(fc.res.message, "protobuf: ", 10) == 0);
    assert_string_equal(fc.res.message + 10, want);
    run_for(fx, 200);
    for (int i = 0; i < NSINK; i++) {
        assert_int_equal(fx->sinks[i].requests, 0);
    }
    assert_int_equal(rt_counter_get(fx->metrics.spans_received[RT_OTLP_HTTP_PROTOBUF]), 0);
    assert_int_equal(rt_fwd_active(fx->f), 0);

    /* The same request without the bad tail goes through whole. */
    rt_otlp_result res = send_req(fx, good, len, 5000);
    assert_int_equal(res.status, RT_OTLP_OK);
    assert_int_equal(res.rejected_spans, 0);
    int arrived = 0;
    for (uint64_t k = 1; k < next; k++) {
        arrived += fx->times[k];
    }
    assert_int_equal(arrived, 120);
    assert_int_equal(rt_counter_get(fx->metrics.spans_received[RT_OTLP_HTTP_PROTOBUF]), 120);
    free(pb);
    free(good);
    fixture_free(fx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_span_reaches_its_owner_once_under_its_resource_and_scope),
        cmocka_unit_test(test_invalid_trace_ids_are_a_partial_success_and_counted),
        cmocka_unit_test(test_dead_node_parts_go_to_the_successors_of_their_keys),
        cmocka_unit_test(test_no_live_node_answers_503_with_retry_after),
        cmocka_unit_test(test_sampler_400_is_reported_as_rejected_spans),
        cmocka_unit_test(test_inflight_cap_answers_429_instead_of_queueing),
        cmocka_unit_test(test_request_deadline_answers_503_while_a_node_hangs),
        cmocka_unit_test(test_view_change_reroutes_parts_of_a_removed_node),
        cmocka_unit_test(test_malformed_request_is_refused_before_any_part_is_sent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
