/* test_otlp_client.c - the OTLP exporter client against the project's own OTLP/HTTP and
 * OTLP/gRPC servers on loopback: retries honour Retry-After / RetryInfo and deliver the same
 * bytes, final errors are not retried, unreachable endpoints give up after max elapsed, gzip,
 * keep-alive reuse, TLS, partial success, the in-flight cap, attempt timeouts and shutdown.
 * A raw scripted HTTP/1.1 server covers answers our own server never gives: chunked and
 * close-delimited bodies, 100 Continue, HTTP-date Retry-After, garbage, a dropped keep-alive. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "clock.h"
#include "grpc_server.h"
#include "http_server.h"
#include "net.h"
#include "otlp_client.h"
#include "otlp_gen.h"
#include "tls.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS 1000000ULL
#define S  1000000000ULL
/* libevent may use a coarse monotonic clock for timers; allow that much earliness. */
#define CLOCK_SLACK_NS (20 * MS)
#define MAX_CALLS      32

/* What the scripted server handler does and what it saw. */
typedef struct script {
    int fail_n;                 /* answer fail_status this many times, then OK */
    rt_otlp_status fail_status; /* ... with retry_after_s for THROTTLED / UNAVAILABLE */
    uint32_t retry_after_s;
    int64_t rejected; /* on OK: partial success with this many rejected spans */
    bool hold;        /* keep calls unanswered (timeouts, shutdown) */
    int calls;
    uint64_t call_ns[MAX_CALLS];
    char peers[MAX_CALLS][64];
    rt_otlp_call *held[MAX_CALLS];
    int n_held;
    uint8_t *first_pb; /* bytes of the first request; later ones are compared with it */
    size_t first_len;
    bool all_identical;
} script;

typedef struct fixture {
    struct event_base *base;
    rt_http_server *http;
    rt_grpc_server *grpc;
    SSL_CTX *server_tls;
    SSL_CTX *client_tls;
    uint16_t port;
    char endpoint[64];
    script sc;
    uint8_t *pb; /* the request every test exports */
    size_t pb_len;
} fixture;

/* One export's outcome as seen by its done callback. */
typedef struct done_box {
    int calls;
    rt_otlp_client_result res;
    struct event_base *base;
    int *shared; /* optional: counts done callbacks over several exports */
} done_box;

static void handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count, void *arg)
{
    script *sc = arg;
    int i = sc->calls++;
    if (i < MAX_CALLS) {
        sc->call_ns[i] = rt_clock_mono_ns();
        snprintf(sc->peers[i], sizeof sc->peers[i], "%s", rt_otlp_call_peer(call));
    }
    if (sc->first_pb == NULL) {
        sc->first_pb = malloc(len ? len : 1);
        memcpy(sc->first_pb, pb, len);
        sc->first_len = len;
        sc->all_identical = true;
    } else if (len != sc->first_len || memcmp(pb, sc->first_pb, len) != 0) {
        sc->all_identical = false;
    }
    if (sc->hold && sc->n_held < MAX_CALLS) {
        sc->held[sc->n_held++] = call;
        return;
    }
    rt_otlp_result res;
    if (i < sc->fail_n) {
        rt_otlp_result_set(&res, sc->fail_status, "scripted failure %d", i + 1);
        res.retry_after_s = sc->retry_after_s;
    } else {
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        if (sc->rejected > 0) {
            rt_otlp_result_set(&res, RT_OTLP_OK, "%lld spans refused by script",
                               (long long)sc->rejected);
            res.rejected_spans = sc->rejected;
        }
    }
    rt_otlp_call_respond(call, &res);
}

static void release_held(fixture *fx)
{
    for (int i = 0; i < fx->sc.n_held; i++) {
        rt_otlp_result res;
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        rt_otlp_call_respond(fx->sc.held[i], &res);
    }
    fx->sc.n_held = 0;
}

static void on_done(const rt_otlp_client_result *res, void *arg)
{
    done_box *d = arg;
    d->calls++;
    d->res = *res;
    if (d->shared != NULL) {
        (*d->shared)++;
    }
    event_base_loopbreak(d->base);
}

typedef struct guard {
    bool expired;
    struct event_base *base;
} guard;

static void on_guard(evutil_socket_t fd, short what, void *arg)
{
    guard *g = arg;
    g->expired = true;
    event_base_loopbreak(g->base);
}

/* Run the loop until `*count` reaches `want` or `limit_s` passes. */
static void run_until(fixture *fx, const int *count, int want, int limit_s)
{
    guard g = {false, fx->base};
    struct event *ev = evtimer_new(fx->base, on_guard, &g);
    struct timeval tv = {limit_s, 0};
    evtimer_add(ev, &tv);
    while (*count < want && !g.expired) {
        if (event_base_loop(fx->base, EVLOOP_ONCE) < 0) {
            break;
        }
    }
    event_free(ev);
    if (*count < want) {
        fail_msg("timed out after %d s waiting for %d done callbacks (got %d)", limit_s, want,
                 *count);
    }
}

/* Let the loop run for `ms` milliseconds. */
static void run_for(fixture *fx, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

static const char *source_dir(void)
{
    static char dir[512];
    const char *d = getenv("RT_SOURCE_DIR");
    if (d != NULL && *d) {
        return d;
    }
    snprintf(dir, sizeof dir, "%s", __FILE__);
    char *p = strstr(dir, "/tests/integration/");
    if (p != NULL) {
        *p = '\0';
    }
    return dir;
}

static fixture *fixture_new(bool grpc, bool tls)
{
    fixture *fx = calloc(1, sizeof *fx);
    fx->base = event_base_new();
    char err[256];
    rt_otlp_server_opts opts = {.handler = handler, .handler_arg = &fx->sc};
    if (tls) {
        char cert[512], key[512], ca[512];
        snprintf(cert, sizeof cert, "%s/tests/certs/server.pem", source_dir());
        snprintf(key, sizeof key, "%s/tests/certs/server.key", source_dir());
        snprintf(ca, sizeof ca, "%s/tests/certs/ca.pem", source_dir());
        const char *alpn = grpc ? "h2" : "http/1.1";
        fx->server_tls = rt_tls_server_ctx(cert, key, NULL, alpn, err, sizeof err);
        if (fx->server_tls == NULL) {
            fail_msg("server tls: %s", err);
        }
        fx->client_tls = rt_tls_client_ctx(ca, NULL, NULL, alpn, 0, err, sizeof err);
        if (fx->client_tls == NULL) {
            fail_msg("client tls: %s", err);
        }
        opts.tls = fx->server_tls;
    }
    if (grpc) {
        fx->grpc = rt_grpc_server_new(fx->base, "127.0.0.1:0", &opts, err, sizeof err);
        if (fx->grpc == NULL) {
            fail_msg("grpc server: %s", err);
        }
        fx->port = rt_grpc_server_port(fx->grpc);
    } else {
        fx->http = rt_http_server_new(fx->base, "127.0.0.1:0", &opts, err, sizeof err);
        if (fx->http == NULL) {
            fail_msg("http server: %s", err);
        }
        fx->port = rt_http_server_port(fx->http);
    }
    snprintf(fx->endpoint, sizeof fx->endpoint, "127.0.0.1:%u", fx->port);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req = rt_gen_request(7);
    fx->pb = rt_gen_pack(req, &fx->pb_len);
    rt_gen_free(req);
    /* The generator may produce an empty request for some seeds; make sure there is data. */
    assert_true(fx->pb_len > 100);
    return fx;
}

static void fixture_free(fixture *fx)
{
    release_held(fx);
    run_for(fx, 20);
    rt_http_server_free(fx->http);
    rt_grpc_server_free(fx->grpc);
    SSL_CTX_free(fx->server_tls);
    SSL_CTX_free(fx->client_tls);
    free(fx->sc.first_pb);
    free(fx->pb);
    event_base_free(fx->base);
    free(fx);
}

static rt_otlp_client *client_for(fixture *fx, rt_otlp_client_opts *o)
{
    o->protocol = fx->grpc ? RT_OTLP_CLIENT_GRPC : RT_OTLP_CLIENT_HTTP;
    if (o->endpoint == NULL) {
        o->endpoint = fx->endpoint;
    }
    if (fx->client_tls != NULL) {
        o->tls = fx->client_tls;
        o->server_name = "localhost";
    }
    if (o->rng_seed == 0) {
        o->rng_seed = 1234;
    }
    char err[256];
    rt_otlp_client *c = rt_otlp_client_new(fx->base, o, err, sizeof err);
    if (c == NULL) {
        fail_msg("client: %s", err);
    }
    return c;
}

/* Export fx->pb once and wait for the answer. */
static rt_otlp_client_result export_once(fixture *fx, rt_otlp_client *c, int limit_s)
{
    done_box d = {.base = fx->base};
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d), 0);
    /* done is never called from inside export. */
    assert_int_equal(d.calls, 0);
    run_until(fx, &d.calls, 1, limit_s);
    assert_int_equal(d.calls, 1);
    return d.res;
}

/* ------------------------------------------------------------------------------------------- */

static void retry_after_then_ok(bool grpc)
{
    fixture *fx = fixture_new(grpc, false);
    fx->sc.fail_n = 2;
    fx->sc.fail_status = RT_OTLP_UNAVAILABLE;
    fx->sc.retry_after_s = 1;
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = client_for(fx, &o);
    uint64_t t0 = rt_clock_mono_ns();
    rt_otlp_client_result r = export_once(fx, c, 20);
    uint64_t took = rt_clock_mono_ns() - t0;

    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(r.attempts, 3);
    assert_int_equal(fx->sc.calls, 3);
    /* Each retry waited the server's 1 s (our own backoff would start at <= 100 ms). */
    for (int i = 1; i < 3; i++) {
        assert_true(fx->sc.call_ns[i] - fx->sc.call_ns[i - 1] >= 1 * S - CLOCK_SLACK_NS);
    }
    assert_true(took >= 2 * S - CLOCK_SLACK_NS);
    assert_true(r.elapsed_ns >= 2 * S - CLOCK_SLACK_NS);
    /* Every attempt carried exactly the bytes we exported. */
    assert_true(fx->sc.all_identical);
    assert_int_equal(fx->sc.first_len, fx->pb_len);
    assert_memory_equal(fx->sc.first_pb, fx->pb, fx->pb_len);
    if (grpc) {
        assert_int_equal(r.grpc_status, 0);
    } else {
        assert_int_equal(r.grpc_status, -1);
    }
    assert_int_equal(r.http_status, 200);
    const rt_otlp_client_stats *st = rt_otlp_client_stats_get(c);
    assert_int_equal(st->requests, 1);
    assert_int_equal(st->attempts, 3);
    assert_int_equal(st->retries, 2);
    assert_int_equal(st->failures[RT_OTLP_CLIENT_FAIL_STATUS], 2);
    assert_int_equal(st->ok, 1);
    assert_int_equal(st->inflight, 0);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_503_retry_after_is_honoured_then_ok(void **state)
{
    retry_after_then_ok(false);
}

static void test_grpc_unavailable_retry_info_is_honoured_then_ok(void **state)
{
    retry_after_then_ok(true);
}

static void test_http_429_with_retry_after_beyond_budget_gives_up_without_waiting(void **state)
{
    /* THROTTLED answers 429 + Retry-After 5; with a 1 s budget the client gives up at once
     * rather than waiting less than the server asked. */
    fixture *fx = fixture_new(false, false);
    fx->sc.fail_n = 100;
    fx->sc.fail_status = RT_OTLP_THROTTLED;
    fx->sc.retry_after_s = 5;
    rt_otlp_client_opts o = {.retry = {.max_elapsed_ns = 1 * S}};
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_GAVE_UP);
    assert_int_equal(r.http_status, 429);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(fx->sc.calls, 1);
    assert_true(r.elapsed_ns < 1 * S); /* did not sit out a 5 s wait it could not afford */
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void final_error_not_retried(bool grpc, rt_otlp_status st, int want_http, int want_grpc)
{
    fixture *fx = fixture_new(grpc, false);
    fx->sc.fail_n = 100;
    fx->sc.fail_status = st;
    rt_otlp_client_opts o = {.retry = {.initial_ns = 1 * MS}};
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_REJECTED);
    assert_int_equal(r.attempts, 1);
    assert_int_equal(r.fail, RT_OTLP_CLIENT_FAIL_STATUS);
    assert_int_equal(r.http_status, want_http);
    assert_int_equal(r.grpc_status, want_grpc);
    /* The server's reason reaches the caller. */
    assert_non_null(strstr(r.message, "scripted failure 1"));
    /* And nothing more arrives later. */
    run_for(fx, 300);
    assert_int_equal(fx->sc.calls, 1);
    const rt_otlp_client_stats *s = rt_otlp_client_stats_get(c);
    assert_int_equal(s->retries, 0);
    assert_int_equal(s->rejected, 1);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_400_is_final(void **state)
{
    final_error_not_retried(false, RT_OTLP_BAD_DATA, 400, -1);
}

static void test_http_413_is_final(void **state)
{
    final_error_not_retried(false, RT_OTLP_TOO_LARGE, 413, -1);
}

static void test_http_500_is_final(void **state)
{
    final_error_not_retried(false, RT_OTLP_INTERNAL, 500, -1);
}

static void test_grpc_invalid_argument_is_final(void **state)
{
    final_error_not_retried(true, RT_OTLP_BAD_DATA, 200, 3);
}

static void test_grpc_resource_exhausted_without_retry_info_is_final(void **state)
{
    final_error_not_retried(true, RT_OTLP_TOO_LARGE, 200, 8);
}

static void test_grpc_resource_exhausted_with_retry_info_is_retried(void **state)
{
    fixture *fx = fixture_new(true, false);
    fx->sc.fail_n = 1;
    fx->sc.fail_status = RT_OTLP_THROTTLED;
    fx->sc.retry_after_s = 1;
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(r.attempts, 2);
    assert_true(fx->sc.call_ns[1] - fx->sc.call_ns[0] >= 1 * S - CLOCK_SLACK_NS);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void refused_gives_up(bool grpc)
{
    /* A port that was free a moment ago: nothing listens there. */
    char err[128];
    int fd = rt_net_listen("127.0.0.1:0", false, err, sizeof err);
    assert_true(fd >= 0);
    uint16_t port = rt_net_local_port(fd);
    close(fd);
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", port);

    fixture *fx = fixture_new(grpc, false);
    rt_otlp_client_opts o = {
        .endpoint = ep,
        .retry = {.initial_ns = 20 * MS, .max_ns = 100 * MS, .max_elapsed_ns = 500 * MS},
    };
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_GAVE_UP);
    assert_int_equal(r.fail, RT_OTLP_CLIENT_FAIL_CONNECT);
    assert_true(r.attempts >= 3);
    assert_true(r.elapsed_ns >= 500 * MS);
    assert_true(r.elapsed_ns < 3 * S);
    assert_int_equal(r.http_status, 0);
    const rt_otlp_client_stats *s = rt_otlp_client_stats_get(c);
    assert_int_equal(s->failures[RT_OTLP_CLIENT_FAIL_CONNECT], r.attempts);
    assert_int_equal(s->gave_up, 1);
    assert_int_equal(s->conns_open, 0);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_connection_refused_gives_up_after_max_elapsed(void **state)
{
    refused_gives_up(false);
}

static void test_grpc_connection_refused_gives_up_after_max_elapsed(void **state)
{
    refused_gives_up(true);
}

static void gzip_arrives_intact(bool grpc, bool tls)
{
    fixture *fx = fixture_new(grpc, tls);
    rt_otlp_client_opts o = {.gzip = true};
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(r.attempts, 1);
    /* The server inflated exactly our bytes, and fewer bytes crossed the wire. */
    assert_int_equal(fx->sc.first_len, fx->pb_len);
    assert_memory_equal(fx->sc.first_pb, fx->pb, fx->pb_len);
    const rt_otlp_client_stats *s = rt_otlp_client_stats_get(c);
    size_t framing = grpc ? 5 : 0;
    assert_true(s->bytes_sent > 0);
    assert_true(s->bytes_sent - framing < fx->pb_len);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_gzip_body_arrives_intact(void **state)
{
    gzip_arrives_intact(false, false);
}

static void test_grpc_gzip_message_arrives_intact(void **state)
{
    gzip_arrives_intact(true, false);
}

static void test_http_over_tls_with_verification(void **state)
{
    gzip_arrives_intact(false, true);
}

static void test_grpc_over_tls_alpn_h2(void **state)
{
    gzip_arrives_intact(true, true);
}

static void test_http_keepalive_reuses_one_connection_for_sequential_requests(void **state)
{
    fixture *fx = fixture_new(false, false);
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = client_for(fx, &o);
    for (int i = 0; i < 5; i++) {
        rt_otlp_client_result r = export_once(fx, c, 10);
        assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    }
    assert_int_equal(fx->sc.calls, 5);
    for (int i = 1; i < 5; i++) {
        assert_string_equal(fx->sc.peers[i], fx->sc.peers[0]);
    }
    assert_int_equal(rt_otlp_client_stats_get(c)->conns_opened, 1);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void concurrent(bool grpc, int n, uint32_t max_conns, uint64_t want_conns)
{
    fixture *fx = fixture_new(grpc, false);
    rt_otlp_client_opts o = {.max_conns = max_conns};
    rt_otlp_client *c = client_for(fx, &o);
    int finished = 0;
    done_box d[16];
    for (int i = 0; i < n; i++) {
        d[i] = (done_box){.base = fx->base, .shared = &finished};
        assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[i]), 0);
    }
    run_until(fx, &finished, n, 10);
    for (int i = 0; i < n; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].res.outcome, RT_OTLP_CLIENT_OK);
    }
    assert_int_equal(fx->sc.calls, n);
    assert_true(fx->sc.all_identical);
    assert_int_equal(rt_otlp_client_stats_get(c)->conns_opened, want_conns);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_grpc_multiplexes_concurrent_exports_on_one_connection(void **state)
{
    concurrent(true, 10, 0, 1);
}

static void test_http_concurrent_exports_use_the_pool_up_to_max_conns(void **state)
{
    concurrent(false, 10, 3, 3);
}

static void partial_success(bool grpc)
{
    fixture *fx = fixture_new(grpc, false);
    fx->sc.rejected = 3;
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_PARTIAL);
    assert_int_equal(r.rejected_spans, 3);
    assert_int_equal(r.attempts, 1);
    assert_non_null(strstr(r.message, "refused by script"));
    assert_int_equal(rt_otlp_client_stats_get(c)->rejected_spans, 3);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_partial_success_is_reported_not_retried(void **state)
{
    partial_success(false);
}

static void test_grpc_partial_success_is_reported_not_retried(void **state)
{
    partial_success(true);
}

static void test_inflight_cap_refuses_without_callback(void **state)
{
    fixture *fx = fixture_new(false, false);
    rt_otlp_client_opts o = {.max_inflight = 2};
    rt_otlp_client *c = client_for(fx, &o);
    int finished = 0;
    done_box d[3];
    for (int i = 0; i < 3; i++) {
        d[i] = (done_box){.base = fx->base, .shared = &finished};
    }
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[0]), 0);
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[1]), 0);
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[2]), -1);
    assert_int_equal(rt_otlp_client_inflight(c), 2);
    run_until(fx, &finished, 2, 10);
    assert_int_equal(d[2].calls, 0);
    assert_int_equal(rt_otlp_client_stats_get(c)->refused, 1);
    /* Room again once the first two are done. */
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[2]), 0);
    run_until(fx, &d[2].calls, 1, 10);
    assert_int_equal(d[2].res.outcome, RT_OTLP_CLIENT_OK);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void attempt_timeout(bool grpc)
{
    fixture *fx = fixture_new(grpc, false);
    fx->sc.hold = true;
    rt_otlp_client_opts o = {
        .timeout_ms = 150,
        .retry = {.initial_ns = 10 * MS, .max_elapsed_ns = 400 * MS},
    };
    rt_otlp_client *c = client_for(fx, &o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_GAVE_UP);
    assert_int_equal(r.fail, RT_OTLP_CLIENT_FAIL_TIMEOUT);
    assert_true(r.attempts >= 2);
    assert_true(fx->sc.calls >= 2);
    assert_true(r.elapsed_ns >= 400 * MS);
    rt_otlp_client_free(c);
    fixture_free(fx);
}

static void test_http_attempt_timeout_retries_then_gives_up(void **state)
{
    attempt_timeout(false);
}

static void test_grpc_attempt_timeout_retries_then_gives_up(void **state)
{
    attempt_timeout(true);
}

static void free_cancels(bool grpc)
{
    fixture *fx = fixture_new(grpc, false);
    fx->sc.hold = true;
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = client_for(fx, &o);
    done_box d[2] = {{.base = fx->base}, {.base = fx->base}};
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[0]), 0);
    assert_int_equal(rt_otlp_client_export(c, fx->pb, fx->pb_len, on_done, &d[1]), 0);
    /* Let both reach the server (which holds them). */
    for (int i = 0; i < 200 && fx->sc.calls < 2; i++) {
        run_for(fx, 10);
    }
    assert_int_equal(fx->sc.calls, 2);
    assert_int_equal(d[0].calls + d[1].calls, 0);
    rt_otlp_client_free(c);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(d[i].calls, 1);
        assert_int_equal(d[i].res.outcome, RT_OTLP_CLIENT_GAVE_UP);
        assert_int_equal(d[i].res.fail, RT_OTLP_CLIENT_FAIL_SHUTDOWN);
        assert_int_equal(d[i].res.attempts, 1);
    }
    fixture_free(fx);
}

static void test_http_free_ends_pending_exports_with_gave_up(void **state)
{
    free_cancels(false);
}

static void test_grpc_free_ends_pending_exports_with_gave_up(void **state)
{
    free_cancels(true);
}

/* ------------------------------------------------------------------------------------------- *
 * Raw scripted HTTP/1.1 server: reads each request (headers + Content-Length body) and answers
 * with the next scripted byte string. A NULL script entry closes the connection instead of
 * answering; an entry starting with '!' is sent (without the '!') and then the connection is
 * closed.
 */

#define RAW_MAX_CONNS 16

typedef struct raw_server {
    struct evconnlistener *lis;
    uint16_t port;
    const char *script[8];
    int n_script;
    int accepted;
    int requests;
    uint64_t req_ns[8];
    struct bufferevent *conns[RAW_MAX_CONNS];
} raw_server;

static void raw_close(raw_server *rs, struct bufferevent *bev)
{
    for (int i = 0; i < RAW_MAX_CONNS; i++) {
        if (rs->conns[i] == bev) {
            rs->conns[i] = NULL;
        }
    }
    bufferevent_free(bev);
}

static void raw_write_then_close_cb(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
        raw_close(arg, bev);
    }
}

static void raw_event_cb(struct bufferevent *bev, short what, void *arg)
{
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        raw_close(arg, bev);
    }
}

static void raw_read_cb(struct bufferevent *bev, void *arg)
{
    raw_server *rs = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
        if (end.pos < 0) {
            return;
        }
        size_t hlen = (size_t)end.pos + 4;
        char *head = calloc(1, hlen + 1);
        evbuffer_copyout(in, head, hlen);
        size_t clen = 0;
        for (char *p = head; *p; p++) {
            if (strncasecmp(p, "\r\nContent-Length:", 17) == 0) {
                clen = strtoul(p + 17, NULL, 10);
            }
        }
        free(head);
        if (evbuffer_get_length(in) < hlen + clen) {
            return;
        }
        evbuffer_drain(in, hlen + clen);
        int i = rs->requests++;
        if (i < 8) {
            rs->req_ns[i] = rt_clock_mono_ns();
        }
        const char *ans = rs->script[i < rs->n_script ? i : rs->n_script - 1];
        if (ans == NULL) {
            raw_close(rs, bev);
            return;
        }
        if (ans[0] == '!') {
            bufferevent_write(bev, ans + 1, strlen(ans + 1));
            bufferevent_setcb(bev, NULL, raw_write_then_close_cb, raw_event_cb, rs);
            return;
        }
        bufferevent_write(bev, ans, strlen(ans));
    }
}

static void raw_accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int salen, void *arg)
{
    raw_server *rs = arg;
    struct bufferevent *bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    rs->accepted++;
    for (int i = 0; i < RAW_MAX_CONNS; i++) {
        if (rs->conns[i] == NULL) {
            rs->conns[i] = bev;
            break;
        }
    }
    bufferevent_setcb(bev, raw_read_cb, NULL, raw_event_cb, rs);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

static void raw_start(fixture *fx, raw_server *rs)
{
    char err[128];
    int fd = rt_net_listen("127.0.0.1:0", false, err, sizeof err);
    assert_true(fd >= 0);
    rs->port = rt_net_local_port(fd);
    rs->lis = evconnlistener_new(fx->base, raw_accept_cb, rs, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    assert_non_null(rs->lis);
}

static void raw_stop(raw_server *rs)
{
    for (int i = 0; i < RAW_MAX_CONNS; i++) {
        if (rs->conns[i] != NULL) {
            bufferevent_free(rs->conns[i]);
        }
    }
    evconnlistener_free(rs->lis);
}

/* An ExportTraceServiceResponse with partial_success{rejected, "raw says no"}. */
static size_t partial_response(int64_t rejected, uint8_t *out)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess ps =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
    ps.rejected_spans = rejected;
    ps.error_message = "raw says no";
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse resp =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
    resp.partial_success = &ps;
    return opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(&resp,
                                                                                           out);
}

/* Run one export against a raw script and return the result. */
static rt_otlp_client_result raw_export(fixture *fx, raw_server *rs, rt_otlp_client_opts *o,
                                        rt_otlp_client **keep)
{
    char ep[64];
    snprintf(ep, sizeof ep, "127.0.0.1:%u", rs->port);
    o->endpoint = ep;
    rt_otlp_client *c = keep && *keep ? *keep : client_for(fx, o);
    rt_otlp_client_result r = export_once(fx, c, 10);
    if (keep) {
        *keep = c;
    } else {
        rt_otlp_client_free(c);
    }
    return r;
}

static void test_http_chunked_response_body_is_reassembled(void **state)
{
    fixture *fx = fixture_new(false, false);
    uint8_t pb[64];
    size_t n = partial_response(4, pb);
    assert_true(n > 6);
    /* Three chunks, with a chunk extension and a trailer, split at odd places. */
    char ans[512];
    int off = snprintf(ans, sizeof ans,
                       "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n");
    off += snprintf(ans + off, sizeof ans - off, "3;ext=1\r\n");
    memcpy(ans + off, pb, 3);
    off += 3;
    off += snprintf(ans + off, sizeof ans - off, "\r\n%zx\r\n", n - 3);
    memcpy(ans + off, pb + 3, n - 3);
    off += (int)(n - 3);
    off += snprintf(ans + off, sizeof ans - off, "\r\n0\r\nX-Trailer: 1\r\n\r\n");
    ans[off] = '\0';
    /* The protobuf holds no NUL byte for this message, so it travels as a C string. */
    assert_int_equal(strlen(ans), (size_t)off);
    raw_server rs = {.script = {ans}, .n_script = 1};
    raw_start(fx, &rs);
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = NULL;
    rt_otlp_client_result r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_PARTIAL);
    assert_int_equal(r.rejected_spans, 4);
    assert_string_equal(r.message, "raw says no");
    /* The connection stays usable after a chunked answer. */
    r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_PARTIAL);
    assert_int_equal(rs.accepted, 1);
    rt_otlp_client_free(c);
    raw_stop(&rs);
    fixture_free(fx);
}

static void test_http_close_delimited_body_and_100_continue(void **state)
{
    fixture *fx = fixture_new(false, false);
    uint8_t pb[64];
    size_t n = partial_response(2, pb);
    char ans[512];
    int off = snprintf(ans, sizeof ans,
                       "!HTTP/1.1 100 Continue\r\n\r\n"
                       "HTTP/1.0 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n");
    memcpy(ans + off, pb, n);
    ans[off + n] = '\0';
    raw_server rs = {.script = {ans}, .n_script = 1};
    raw_start(fx, &rs);
    rt_otlp_client_opts o = {0};
    rt_otlp_client *c = NULL;
    rt_otlp_client_result r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_PARTIAL);
    assert_int_equal(r.rejected_spans, 2);
    assert_int_equal(r.attempts, 1);
    /* A close-delimited answer cannot be followed on the same connection: a new one is used. */
    r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_PARTIAL);
    assert_int_equal(rs.accepted, 2);
    rt_otlp_client_free(c);
    raw_stop(&rs);
    fixture_free(fx);
}

static void test_http_retry_after_as_http_date_is_honoured(void **state)
{
    fixture *fx = fixture_new(false, false);
    /* Two seconds ahead, in whole seconds: the wait is between 1 and 2 s. */
    time_t when = (time_t)(rt_clock_wall_ns() / S) + 2;
    struct tm tm;
    gmtime_r(&when, &tm);
    char date[64], ans503[256];
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    snprintf(ans503, sizeof ans503,
             "HTTP/1.1 503 Service Unavailable\r\nRetry-After: %s\r\nContent-Length: 4\r\n\r\n"
             "busy",
             date);
    raw_server rs = {
        .script = {ans503, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        .n_script = 2,
    };
    raw_start(fx, &rs);
    rt_otlp_client_opts o = {0};
    rt_otlp_client_result r = raw_export(fx, &rs, &o, NULL);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(rs.requests, 2);
    assert_true(rs.req_ns[1] - rs.req_ns[0] >= 1 * S - CLOCK_SLACK_NS);
    raw_stop(&rs);
    fixture_free(fx);
}

static void test_http_malformed_answer_is_retried_as_protocol_failure(void **state)
{
    fixture *fx = fixture_new(false, false);
    raw_server rs = {
        .script = {"!SMTP ready\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        .n_script = 2,
    };
    raw_start(fx, &rs);
    rt_otlp_client_opts o = {.retry = {.initial_ns = 5 * MS}};
    rt_otlp_client *c = NULL;
    rt_otlp_client_result r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(r.attempts, 2);
    assert_int_equal(rt_otlp_client_stats_get(c)->failures[RT_OTLP_CLIENT_FAIL_PROTOCOL], 1);
    rt_otlp_client_free(c);
    raw_stop(&rs);
    fixture_free(fx);
}

static void test_http_keepalive_dropped_by_server_is_resent_on_a_new_connection(void **state)
{
    fixture *fx = fixture_new(false, false);
    /* First request answered with keep-alive; the second arrives on that connection and the
     * server drops it without a word (as a server closing an idle connection would). */
    raw_server rs = {
        .script = {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", NULL,
                   "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"},
        .n_script = 3,
    };
    raw_start(fx, &rs);
    rt_otlp_client_opts o = {.retry = {.initial_ns = 2 * S, .max_ns = 2 * S}};
    rt_otlp_client *c = NULL;
    rt_otlp_client_result r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    uint64_t t0 = rt_clock_mono_ns();
    r = raw_export(fx, &rs, &o, &c);
    assert_int_equal(r.outcome, RT_OTLP_CLIENT_OK);
    assert_int_equal(rs.accepted, 2);
    assert_int_equal(rs.requests, 3);
    /* Re-sent at once, not after the (2 s) backoff. */
    assert_true(rt_clock_mono_ns() - t0 < 1 * S);
    assert_int_equal(rt_otlp_client_stats_get(c)->failures[RT_OTLP_CLIENT_FAIL_CONN_LOST], 1);
    assert_int_equal(rt_otlp_client_stats_get(c)->retries, 0); /* no backoff was scheduled */
    rt_otlp_client_free(c);
    raw_stop(&rs);
    fixture_free(fx);
}

static void test_new_rejects_bad_options_with_a_reason(void **state)
{
    struct event_base *base = event_base_new();
    char err[256] = "";
    rt_otlp_client_opts o = {.endpoint = "no-port"};
    assert_null(rt_otlp_client_new(base, &o, err, sizeof err));
    assert_non_null(strstr(err, "no-port"));
    rt_otlp_client_header h = {"X-Key", "a\r\nInjected: 1"};
    o = (rt_otlp_client_opts){.endpoint = "127.0.0.1:4318", .headers = &h, .n_headers = 1};
    assert_null(rt_otlp_client_new(base, &o, err, sizeof err));
    assert_non_null(strstr(err, "X-Key"));
    o = (rt_otlp_client_opts){.endpoint = "127.0.0.1:4318", .path = "v1/traces"};
    assert_null(rt_otlp_client_new(base, &o, err, sizeof err));
    assert_non_null(strstr(err, "path"));
    event_base_free(base);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the daemons do; see otlp_client.h */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_503_retry_after_is_honoured_then_ok),
        cmocka_unit_test(test_grpc_unavailable_retry_info_is_honoured_then_ok),
        cmocka_unit_test(test_http_429_with_retry_after_beyond_budget_gives_up_without_waiting),
        cmocka_unit_test(test_http_400_is_final),
        cmocka_unit_test(test_http_413_is_final),
        cmocka_unit_test(test_http_500_is_final),
        cmocka_unit_test(test_grpc_invalid_argument_is_final),
        cmocka_unit_test(test_grpc_resource_exhausted_without_retry_info_is_final),
        cmocka_unit_test(test_grpc_resource_exhausted_with_retry_info_is_retried),
        cmocka_unit_test(test_http_connection_refused_gives_up_after_max_elapsed),
        cmocka_unit_test(test_grpc_connection_refused_gives_up_after_max_elapsed),
        cmocka_unit_test(test_http_gzip_body_arrives_intact),
        cmocka_unit_test(test_grpc_gzip_message_arrives_intact),
        cmocka_unit_test(test_http_over_tls_with_verification),
        cmocka_unit_test(test_grpc_over_tls_alpn_h2),
        cmocka_unit_test(test_http_keepalive_reuses_one_connection_for_sequential_requests),
        cmocka_unit_test(test_grpc_multiplexes_concurrent_exports_on_one_connection),
        cmocka_unit_test(test_http_concurrent_exports_use_the_pool_up_to_max_conns),
        cmocka_unit_test(test_http_partial_success_is_reported_not_retried),
        cmocka_unit_test(test_grpc_partial_success_is_reported_not_retried),
        cmocka_unit_test(test_inflight_cap_refuses_without_callback),
        cmocka_unit_test(test_http_attempt_timeout_retries_then_gives_up),
        cmocka_unit_test(test_grpc_attempt_timeout_retries_then_gives_up),
        cmocka_unit_test(test_http_free_ends_pending_exports_with_gave_up),
        cmocka_unit_test(test_grpc_free_ends_pending_exports_with_gave_up),
        cmocka_unit_test(test_http_chunked_response_body_is_reassembled),
        cmocka_unit_test(test_http_close_delimited_body_and_100_continue),
        cmocka_unit_test(test_http_retry_after_as_http_date_is_honoured),
        cmocka_unit_test(test_http_malformed_answer_is_retried_as_protocol_failure),
        cmocka_unit_test(test_http_keepalive_dropped_by_server_is_resent_on_a_new_connection),
        cmocka_unit_test(test_new_rejects_bad_options_with_a_reason),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
