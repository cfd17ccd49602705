/* test_http_server.c - the OTLP/HTTP server over real loopback sockets (plain and TLS): what the
 * handler receives, the status codes and bodies clients get back, keep-alive, pipelining,
 * asynchronous answers and clients that leave before the answer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "buf.h"
#include "gzip.h"
#include "http_server.h"
#include "otlp_ingest.h"
#include "otlp_gen.h"
#include "otlp_scan.h"
#include "tls.h"

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_BODY (1024 * 1024)
#define CT_PB    "application/x-protobuf"
#define CT_JSON  "application/json"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest export_req;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse export_resp;

/* ---- the server side: an event loop thread and a recording handler ------------------------ */

typedef enum handler_mode {
    MODE_OK,
    MODE_PARTIAL,
    MODE_UNAVAILABLE,
    MODE_THROTTLED,
    MODE_HOLD, /* keep the call; the test answers it later */
} handler_mode;

typedef struct recorder {
    pthread_mutex_t mu;
    handler_mode mode;
    int calls;
    rt_buf last_pb;
    size_t last_spans;
    rt_otlp_transport last_transport;
    char last_peer[64];
    rt_otlp_call *held;
} recorder;

typedef struct fixture {
    struct event_base *base;
    pthread_t thread;
    rt_http_server *srv;
    uint16_t port;
    SSL_CTX *server_tls;
    SSL_CTX *client_tls;
    recorder rec;
} fixture;

static void test_handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t spans, void *arg)
{
    recorder *rec = arg;
    pthread_mutex_lock(&rec->mu);
    rec->calls++;
    rt_buf_reset(&rec->last_pb);
    rt_buf_append(&rec->last_pb, pb, len);
    rec->last_spans = spans;
    rec->last_transport = rt_otlp_call_transport(call);
    snprintf(rec->last_peer, sizeof rec->last_peer, "%s", rt_otlp_call_peer(call));
    handler_mode mode = rec->mode;
    if (mode == MODE_HOLD) {
        rec->held = call;
    }
    pthread_mutex_unlock(&rec->mu);

    rt_otlp_result res;
    switch (mode) {
    case MODE_OK:
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        break;
    case MODE_PARTIAL:
        rt_otlp_result_set(&res, RT_OTLP_OK, "%d spans refused: too old", 3);
        res.rejected_spans = 3;
        break;
    case MODE_UNAVAILABLE:
        rt_otlp_result_set(&res, RT_OTLP_UNAVAILABLE, "samplers unavailable");
        res.retry_after_s = 7;
        break;
    case MODE_THROTTLED:
        rt_otlp_result_set(&res, RT_OTLP_THROTTLED, "slow down");
        break;
    case MODE_HOLD:
        return;
    }
    rt_otlp_call_respond(call, &res);
}

static void *loop_main(void *arg)
{
    fixture *fx = arg;
    event_base_loop(fx->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

/* Run fn(arg) on the loop thread and wait for it. */
typedef struct on_loop {
    void (*fn)(fixture *fx);
    fixture *fx;
    sem_t done;
} on_loop;

static void on_loop_cb(evutil_socket_t fd, short what, void *arg)
{
    on_loop *o = arg;
    o->fn(o->fx);
    sem_post(&o->done);
}

static void run_on_loop(fixture *fx, void (*fn)(fixture *fx))
{
    on_loop o = {fn, fx, {{0}}};
    sem_init(&o.done, 0, 0);
    struct timeval now = {0, 0};
    assert_int_equal(event_base_once(fx->base, -1, EV_TIMEOUT, on_loop_cb, &o, &now), 0);
    sem_wait(&o.done);
    sem_destroy(&o.done);
}

/* The repository root: $RT_SOURCE_DIR under ctest, else derived from this file's path. */
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

static int start(void **state, bool tls, uint32_t idle_s)
{
    fixture *fx = rt_calloc(1, sizeof *fx);
    char err[256] = "";
    pthread_mutex_init(&fx->rec.mu, NULL);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    rt_otlp_server_opts opts = {0};
    opts.handler = test_handler;
    opts.handler_arg = &fx->rec;
    opts.max_body_bytes = MAX_BODY;
    opts.idle_timeout_s = idle_s;
    if (tls) {
        char cert[512], key[512], ca[512];
        snprintf(cert, sizeof cert, "%s/tests/certs/server.pem", source_dir());
        snprintf(key, sizeof key, "%s/tests/certs/server.key", source_dir());
        snprintf(ca, sizeof ca, "%s/tests/certs/ca.pem", source_dir());
        fx->server_tls = rt_tls_server_ctx(cert, key, NULL, "http/1.1", err, sizeof err);
        if (fx->server_tls == NULL) {
            fail_msg("server tls: %s", err);
        }
        fx->client_tls = rt_tls_client_ctx(ca, NULL, NULL, "http/1.1", 0, err, sizeof err);
        if (fx->client_tls == NULL) {
            fail_msg("client tls: %s", err);
        }
        opts.tls = fx->server_tls;
    }
    fx->srv = rt_http_server_new(fx->base, "127.0.0.1:0", &opts, err, sizeof err);
    if (fx->srv == NULL) {
        fail_msg("server: %s", err);
    }
    fx->port = rt_http_server_port(fx->srv);
    assert_true(fx->port > 0);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_main, fx), 0);
    *state = fx;
    return 0;
}

static int setup_plain(void **state)
{
    return start(state, false, 30);
}

static int setup_tls(void **state)
{
    return start(state, true, 30);
}

static int setup_short_idle(void **state)
{
    return start(state, false, 1);
}

static void free_server(fixture *fx)
{
    rt_http_server_free(fx->srv);
    fx->srv = NULL;
}

static void nothing(fixture *fx)
{
}

static int teardown(void **state)
{
    fixture *fx = *state;
    /* Free the server on its loop and let the loop run once more: libevent finishes freeing a
     * bufferevent from the loop (deferred callbacks), so stopping first would leak it. */
    run_on_loop(fx, free_server);
    run_on_loop(fx, nothing);
    event_base_loopbreak(fx->base);
    pthread_join(fx->thread, NULL);
    if (fx->rec.held != NULL) {
        rt_otlp_call_respond(fx->rec.held, NULL);
    }
    event_base_free(fx->base);
    SSL_CTX_free(fx->server_tls);
    SSL_CTX_free(fx->client_tls);
    rt_buf_free(&fx->rec.last_pb);
    pthread_mutex_destroy(&fx->rec.mu);
    free(fx);
    return 0;
}

static void set_mode(fixture *fx, handler_mode m)
{
    pthread_mutex_lock(&fx->rec.mu);
    fx->rec.mode = m;
    pthread_mutex_unlock(&fx->rec.mu);
}

static int handler_calls(fixture *fx)
{
    pthread_mutex_lock(&fx->rec.mu);
    int n = fx->rec.calls;
    pthread_mutex_unlock(&fx->rec.mu);
    return n;
}

/* ---- the client side: blocking sockets, hand-built HTTP/1.1 ------------------------------- */

typedef struct client {
    int fd;
    SSL *ssl;
    rt_buf in; /* received, not yet consumed */
} client;

typedef struct http_resp {
    int code;
    char head[4096];
    rt_buf body;
} http_resp;

static void client_open(fixture *fx, client *cl)
{
    memset(cl, 0, sizeof *cl);
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(cl->fd >= 0);
    struct timeval tv = {5, 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(cl->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(fx->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(cl->fd, (struct sockaddr *)&sa, sizeof sa), 0);
    if (fx->client_tls != NULL) {
        cl->ssl = SSL_new(fx->client_tls);
        X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(cl->ssl), "127.0.0.1");
        SSL_set_fd(cl->ssl, cl->fd);
        if (SSL_connect(cl->ssl) != 1) {
            fail_msg("TLS handshake with the server failed");
        }
        assert_int_equal(SSL_get_verify_result(cl->ssl), X509_V_OK);
    }
}

static void client_close(client *cl)
{
    if (cl->ssl != NULL) {
        SSL_shutdown(cl->ssl);
        SSL_free(cl->ssl);
    }
    close(cl->fd);
    rt_buf_free(&cl->in);
    cl->fd = -1;
}

/* Close with a TCP reset (SO_LINGER 0), the rudest way a client can leave. */
static void client_reset(client *cl)
{
    struct linger lg = {1, 0};
    setsockopt(cl->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    if (cl->ssl != NULL) {
        SSL_free(cl->ssl);
        cl->ssl = NULL;
    }
    client_close(cl);
}

static void client_send(client *cl, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w;
        if (cl->ssl != NULL) {
            w = SSL_write(cl->ssl, b, (int)n);
        } else {
            w = send(cl->fd, b, n, MSG_NOSIGNAL);
        }
        if (w <= 0) {
            fail_msg("send failed: %s", strerror(errno));
        }
        b += w;
        n -= (size_t)w;
    }
}

/* Read more bytes into cl->in. Returns bytes read, 0 on EOF, -1 on error or timeout. */
static ssize_t client_fill(client *cl)
{
    uint8_t *p = rt_buf_reserve(&cl->in, 65536);
    ssize_t r;
    if (cl->ssl != NULL) {
        r = SSL_read(cl->ssl, p, 65536);
        if (r <= 0) {
            int e = SSL_get_error(cl->ssl, (int)r);
            return e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0) ? 0 : -1;
        }
    } else {
        r = recv(cl->fd, p, 65536, 0);
    }
    if (r > 0) {
        cl->in.len += (size_t)r;
    }
    return r;
}

static void consume(client *cl, size_t n)
{
    memmove(cl->in.data, cl->in.data + n, cl->in.len - n);
    cl->in.len -= n;
}

/* Read one response (head + Content-Length body). Returns 0, or -1 if the connection ended
 * first. */
static int read_response(client *cl, http_resp *r)
{
    rt_buf_reset(&r->body);
    for (;;) {
        uint8_t *end = cl->in.len ? memmem(cl->in.data, cl->in.len, "\r\n\r\n", 4) : NULL;
        if (end != NULL) {
            size_t hl = (size_t)(end - cl->in.data) + 4;
            assert_true(hl < sizeof r->head);
            memcpy(r->head, cl->in.data, hl);
            r->head[hl] = '\0';
            consume(cl, hl);
            break;
        }
        if (client_fill(cl) <= 0) {
            return -1;
        }
    }
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->code), 1);
    size_t cl_len = 0;
    const char *h = strcasestr(r->head, "\r\nContent-Length:");
    if (h != NULL) {
        cl_len = strtoul(h + 17, NULL, 10);
    }
    while (cl->in.len < cl_len) {
        if (client_fill(cl) <= 0) {
            return -1;
        }
    }
    rt_buf_append(&r->body, cl->in.data, cl_len);
    consume(cl, cl_len);
    return 0;
}

/* Value of a response header, copied into out ("" if absent). */
static const char *resp_header(const http_resp *r, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\r\n%s:", name);
    const char *h = strcasestr(r->head, pat);
    out[0] = '\0';
    if (h == NULL) {
        return out;
    }
    h += strlen(pat);
    while (*h == ' ') {
        h++;
    }
    size_t n = strcspn(h, "\r");
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, h, n);
    out[n] = '\0';
    return out;
}

/* True once the server has closed the connection (EOF within the receive timeout). */
static bool client_sees_eof(client *cl)
{
    for (;;) {
        ssize_t r = client_fill(cl);
        if (r == 0) {
            return true;
        }
        if (r < 0) {
            return errno == ECONNRESET;
        }
    }
}

static void send_request(client *cl, const char *method, const char *path, const char *ctype,
                         const char *cenc, const void *body, size_t len, const char *extra)
{
    rt_buf req = RT_BUF_INIT;
    rt_buf_printf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n", method, path);
    if (ctype != NULL) {
        rt_buf_printf(&req, "Content-Type: %s\r\n", ctype);
    }
    if (cenc != NULL) {
        rt_buf_printf(&req, "Content-Encoding: %s\r\n", cenc);
    }
    rt_buf_printf(&req, "Content-Length: %zu\r\n%s\r\n", len, extra ? extra : "");
    rt_buf_append(&req, body, len);
    client_send(cl, req.data, req.len);
    rt_buf_free(&req);
}

static void post(client *cl, const char *ctype, const char *cenc, const void *body, size_t len)
{
    send_request(cl, "POST", "/v1/traces", ctype, cenc, body, len, NULL);
}

/* ---- payloads ------------------------------------------------------------------------------ */

static uint8_t *gen_payload(uint64_t seed, size_t *len, size_t *spans)
{
    export_req *req = rt_gen_request(seed);
    size_t n = 0;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        for (size_t j = 0; j < req->resource_spans[i]->n_scope_spans; j++) {
            n += req->resource_spans[i]->scope_spans[j]->n_spans;
        }
    }
    uint8_t *pb = rt_gen_pack(req, len);
    rt_gen_free(req);
    if (spans != NULL) {
        *spans = n;
    }
    return pb;
}

/* A request with at least one span (the generator can make empty ones). */
static uint8_t *gen_nonempty(uint64_t seed, size_t *len, size_t *spans)
{
    for (;; seed++) {
        uint8_t *pb = gen_payload(seed, len, spans);
        if (*spans > 0) {
            return pb;
        }
        free(pb);
    }
}

static const char json_body[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"checkout\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":\"lib\"},"
    "\"spans\":[{\"traceId\":\"5B8EFFF798038103D269B633813FC60C\",\"spanId\":\"EEE19B7EC3C1B174\","
    "\"name\":\"GET /cart\",\"kind\":2,\"startTimeUnixNano\":\"1544712660000000000\","
    "\"endTimeUnixNano\":\"1544712661000000000\",\"attributes\":[{\"key\":\"http.status_code\","
    "\"value\":{\"intValue\":\"200\"}}]},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"parentSpanId\":\"eee19b7ec3c1b174\",\"name\":\"db\",\"kind\":3,"
    "\"startTimeUnixNano\":\"1544712660100000000\",\"endTimeUnixNano\":1544712660200000000,"
    "\"status\":{\"code\":2,\"message\":\"boom\"}}]}]}]}";

static const uint8_t tid[16] = {0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03,
                                0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c};
static const uint8_t sid1[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74};
static const uint8_t sid2[8] = {0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x75};

/* The protobuf that json_body stands for, built independently with protobuf-c. */
static uint8_t *json_body_as_pb(size_t *len)
{
    Opentelemetry__Proto__Common__V1__AnyValue v_svc =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v_svc.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v_svc.string_value = "checkout";
    Opentelemetry__Proto__Common__V1__KeyValue kv_svc =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv_svc.key = "service.name";
    kv_svc.value = &v_svc;
    Opentelemetry__Proto__Common__V1__KeyValue *res_attrs[] = {&kv_svc};
    Opentelemetry__Proto__Resource__V1__Resource resource =
        OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    resource.n_attributes = 1;
    resource.attributes = res_attrs;

    Opentelemetry__Proto__Common__V1__AnyValue v_code =
        OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    v_code.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v_code.int_value = 200;
    Opentelemetry__Proto__Common__V1__KeyValue kv_code =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    kv_code.key = "http.status_code";
    kv_code.value = &v_code;
    Opentelemetry__Proto__Common__V1__KeyValue *span_attrs[] = {&kv_code};

    Opentelemetry__Proto__Trace__V1__Span s1 = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s1.trace_id = (ProtobufCBinaryData){16, (uint8_t *)tid};
    s1.span_id = (ProtobufCBinaryData){8, (uint8_t *)sid1};
    s1.name = "GET /cart";
    s1.kind = 2;
    s1.start_time_unix_nano = 1544712660000000000ull;
    s1.end_time_unix_nano = 1544712661000000000ull;
    s1.n_attributes = 1;
    s1.attributes = span_attrs;

    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    st.code = 2;
    st.message = "boom";
    Opentelemetry__Proto__Trace__V1__Span s2 = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s2.trace_id = (ProtobufCBinaryData){16, (uint8_t *)tid};
    s2.span_id = (ProtobufCBinaryData){8, (uint8_t *)sid2};
    s2.parent_span_id = (ProtobufCBinaryData){8, (uint8_t *)sid1};
    s2.name = "db";
    s2.kind = 3;
    s2.start_time_unix_nano = 1544712660100000000ull;
    s2.end_time_unix_nano = 1544712660200000000ull;
    s2.status = &st;

    Opentelemetry__Proto__Trace__V1__Span *spans[] = {&s1, &s2};
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    scope.name = "lib";
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss =
        OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.scope = &scope;
    ss.n_spans = 2;
    ss.spans = spans;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
        OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &resource;
    rs.n_scope_spans = 1;
    rs.scope_spans = sss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs};
    export_req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = rss;
    return rt_gen_pack(&req, len);
}

/* Decode and re-encode with protobuf-c, so encodings that differ only in field order compare
 * equal. */
static uint8_t *canonical(const uint8_t *pb, size_t len, size_t *out_len)
{
    export_req *req =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, len,
                                                                                         pb);
    assert_non_null(req);
    uint8_t *out = rt_gen_pack(req, out_len);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req,
                                                                                            NULL);
    return out;
}

/* ---- assertions on answers ------------------------------------------------------------------ */

static void assert_content_type(const http_resp *r, const char *want)
{
    char ct[128];
    resp_header(r, "Content-Type", ct, sizeof ct);
    assert_string_equal(ct, want);
}

/* A 200 with a plain (not partial) ExportTraceServiceResponse in the right encoding. */
static void assert_export_ok(const http_resp *r, bool json)
{
    assert_int_equal(r->code, 200);
    if (json) {
        assert_content_type(r, CT_JSON);
        json_error_t je;
        json_t *j = json_loadb((const char *)r->body.data, r->body.len, 0, &je);
        assert_non_null(j);
        assert_true(json_is_object(j));
        assert_null(json_object_get(j, "partialSuccess"));
        json_decref(j);
        return;
    }
    assert_content_type(r, CT_PB);
    export_resp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r->body.len, r->body.data);
    assert_non_null(resp);
    assert_null(resp->partial_success);
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
}

/* An error answer: HTTP code, a google.rpc.Status (protobuf, or JSON for JSON requests) with
 * the gRPC code and a message containing `needle`. */
static void assert_status(const http_resp *r, int http_code, bool json, int grpc_code,
                          const char *needle)
{
    if (r->code != http_code) {
        fail_msg("expected HTTP %d, got %d (%.*s)", http_code, r->code, (int)r->body.len,
                 (const char *)r->body.data);
    }
    if (json) {
        assert_content_type(r, CT_JSON);
        json_error_t je;
        json_t *j = json_loadb((const char *)r->body.data, r->body.len, 0, &je);
        assert_non_null(j);
        assert_int_equal(json_integer_value(json_object_get(j, "code")), grpc_code);
        const char *msg = json_string_value(json_object_get(j, "message"));
        assert_non_null(msg);
        if (strstr(msg, needle) == NULL) {
            fail_msg("status message \"%s\" does not mention \"%s\"", msg, needle);
        }
        json_decref(j);
        return;
    }
    assert_content_type(r, CT_PB);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r->body.len, r->body.data);
    assert_non_null(st);
    assert_int_equal(st->code, grpc_code);
    if (strstr(st->message, needle) == NULL) {
        fail_msg("status message \"%s\" does not mention \"%s\"", st->message, needle);
    }
    google__rpc__status__free_unpacked(st, NULL);
}

/* Send a good protobuf request and check it is accepted: the server (and, if `cl` is an open
 * connection, that connection) still works. */
static void assert_good_request_works(fixture *fx, client *cl)
{
    size_t len, spans;
    uint8_t *pb = gen_nonempty(99, &len, &spans);
    http_resp r = {0};
    post(cl, CT_PB, NULL, pb, len);
    assert_int_equal(read_response(cl, &r), 0);
    assert_export_ok(&r, false);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.last_pb.len, len);
    assert_memory_equal(fx->rec.last_pb.data, pb, len);
    pthread_mutex_unlock(&fx->rec.mu);
    rt_buf_free(&r.body);
    free(pb);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void test_protobuf_body_reaches_handler_byte_for_byte(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(1, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    post(&cl, CT_PB, NULL, pb, len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.calls, 1);
    assert_int_equal(fx->rec.last_pb.len, len);
    assert_memory_equal(fx->rec.last_pb.data, pb, len);
    assert_int_equal(fx->rec.last_spans, spans);
    assert_int_equal(fx->rec.last_transport, RT_OTLP_HTTP_PROTOBUF);
    assert_true(strncmp(fx->rec.last_peer, "127.0.0.1:", 10) == 0);
    pthread_mutex_unlock(&fx->rec.mu);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_json_body_reaches_handler_as_equivalent_protobuf(void **state)
{
    fixture *fx = *state;
    size_t want_len, want_clen, got_clen;
    uint8_t *want = json_body_as_pb(&want_len);
    uint8_t *want_c = canonical(want, want_len, &want_clen);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    post(&cl, "application/json; charset=utf-8", NULL, json_body, strlen(json_body));
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, true);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.last_spans, 2);
    assert_int_equal(fx->rec.last_transport, RT_OTLP_HTTP_JSON);
    uint8_t *got_c = canonical(fx->rec.last_pb.data, fx->rec.last_pb.len, &got_clen);
    pthread_mutex_unlock(&fx->rec.mu);
    assert_int_equal(got_clen, want_clen);
    assert_memory_equal(got_c, want_c, want_clen);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(want);
    free(want_c);
    free(got_c);
}

static void test_gzip_bodies_are_inflated_protobuf_and_json(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(2, &len, &spans);
    rt_buf gz = RT_BUF_INIT;
    rt_gzip_deflate(pb, len, 6, &gz);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};

    post(&cl, CT_PB, "gzip", gz.data, gz.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.last_pb.len, len);
    assert_memory_equal(fx->rec.last_pb.data, pb, len);
    assert_int_equal(fx->rec.last_spans, spans);
    pthread_mutex_unlock(&fx->rec.mu);

    size_t want_len, want_clen, got_clen;
    uint8_t *want = json_body_as_pb(&want_len);
    uint8_t *want_c = canonical(want, want_len, &want_clen);
    rt_buf_reset(&gz);
    rt_gzip_deflate((const uint8_t *)json_body, strlen(json_body), 6, &gz);
    post(&cl, CT_JSON, "gzip", gz.data, gz.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, true);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.calls, 2);
    assert_int_equal(fx->rec.last_spans, 2);
    uint8_t *got_c = canonical(fx->rec.last_pb.data, fx->rec.last_pb.len, &got_clen);
    pthread_mutex_unlock(&fx->rec.mu);
    assert_int_equal(got_clen, want_clen);
    assert_memory_equal(got_c, want_c, want_clen);

    rt_buf_free(&r.body);
    rt_buf_free(&gz);
    client_close(&cl);
    free(pb);
    free(want);
    free(want_c);
    free(got_c);
}

typedef struct bad_case {
    const char *name;
    const char *ctype;
    const char *cenc;
    const uint8_t *body;
    size_t len;
    bool json_answer;
    const char *needle;
    int http_code; /* 0 = 400 */
} bad_case;

static void test_bad_bodies_get_400_or_415_with_a_status_naming_the_problem(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(3, &len, &spans);
    rt_buf gz_bad = RT_BUF_INIT;
    rt_gzip_deflate(pb, len, 6, &gz_bad);
    gz_bad.len /= 2; /* truncated gzip stream */
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x13, 0x37, 0x00, 0x42};
    static const char bad_json[] = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{";
    static const char b64_json[] = "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":"
                                   "\"W47/95gDgQPSabYzgT/GDA==\","
                                   "\"spanId\":\"EEE19B7EC3C1B174\",\"name\":\"x\"}]}]}]}";
    static const char notgzip[] = "this is not gzip at all";
    const bad_case cases[] = {
        {"truncated protobuf", CT_PB, NULL, pb, len - 3, false, "protobuf:", 0},
        {"garbage", CT_PB, NULL, garbage, sizeof garbage, false, "protobuf:", 0},
        {"bad gzip", CT_PB, "gzip", (const uint8_t *)notgzip, strlen(notgzip), false, "gzip:", 0},
        {"truncated gzip", CT_PB, "gzip", gz_bad.data, gz_bad.len, false, "gzip:", 0},
        {"malformed json", CT_JSON, NULL, (const uint8_t *)bad_json, strlen(bad_json), true,
         "json:", 0},
        {"base64 trace id", CT_JSON, NULL, (const uint8_t *)b64_json, strlen(b64_json), true,
         "traceId", 0},
        {"wrong content type", "text/plain", NULL, pb, len, false, "Content-Type", 415},
        {"missing content type", NULL, NULL, pb, len, false, "Content-Type", 415},
        {"unknown content encoding", CT_PB, "br", pb, len, false, "Content-Encoding", 0},
    };
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *bc = &cases[i];
        print_message("case: %s\n", bc->name);
        int before = handler_calls(fx);
        post(&cl, bc->ctype, bc->cenc, bc->body, bc->len);
        assert_int_equal(read_response(&cl, &r), 0);
        assert_status(&r, bc->http_code ? bc->http_code : 400, bc->json_answer, 3, bc->needle);
        if (bc->http_code == 415) {
            assert_non_null(strstr(r.head, "415 Unsupported Media Type"));
        }
        assert_int_equal(handler_calls(fx), before);
        /* The connection is kept and the server still takes good data. */
        assert_good_request_works(fx, &cl);
    }
    rt_buf_free(&r.body);
    rt_buf_free(&gz_bad);
    client_close(&cl);
    free(pb);
}

static void test_oversized_bodies_get_413(void **state)
{
    fixture *fx = *state;
    size_t big = MAX_BODY + 4096;
    uint8_t *junk = rt_calloc(1, big);
    http_resp r = {0};
    client cl;

    /* Declared length over the limit: answered 413 with a Status, then closed. */
    client_open(fx, &cl);
    post(&cl, CT_PB, NULL, junk, big);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 413, false, 8, "exceeds the limit");
    assert_true(client_sees_eof(&cl));
    client_close(&cl);

    /* Chunked body growing over the limit. */
    client_open(fx, &cl);
    const char *head = "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       "Transfer-Encoding: chunked\r\n\r\n";
    client_send(&cl, head, strlen(head));
    for (int i = 0; i < 5; i++) {
        char sz[32];
        int n = snprintf(sz, sizeof sz, "%x\r\n", MAX_BODY / 4);
        client_send(&cl, sz, (size_t)n);
        client_send(&cl, junk, MAX_BODY / 4);
        client_send(&cl, "\r\n", 2);
    }
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 413, true, 8, "exceeds the limit");
    client_close(&cl);

    /* A small gzip body that inflates past the limit. */
    rt_buf gz = RT_BUF_INIT;
    rt_gzip_deflate(junk, big, 9, &gz);
    client_open(fx, &cl);
    post(&cl, CT_PB, "gzip", gz.data, gz.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 413, false, 8, "exceeds the limit");
    assert_good_request_works(fx, &cl);
    client_close(&cl);

    assert_int_equal(handler_calls(fx), 1);
    rt_buf_free(&gz);
    rt_buf_free(&r.body);
    free(junk);
}

static void test_other_paths_404_other_methods_405(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(4, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    char allow[64];

    send_request(&cl, "POST", "/v1/metrics", CT_PB, NULL, pb, len, NULL);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 404, false, 5, "/v1/metrics");

    send_request(&cl, "GET", "/v1/traces", NULL, NULL, "", 0, NULL);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 405, false, 12, "POST");
    assert_string_equal(resp_header(&r, "Allow", allow, sizeof allow), "POST");

    send_request(&cl, "PUT", "/v1/traces", CT_JSON, NULL, "{}", 2, NULL);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 405, true, 12, "PUT");
    assert_string_equal(resp_header(&r, "Allow", allow, sizeof allow), "POST");

    assert_int_equal(handler_calls(fx), 0);
    assert_good_request_works(fx, &cl);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_partial_success_is_encoded(void **state)
{
    fixture *fx = *state;
    set_mode(fx, MODE_PARTIAL);
    size_t len, spans;
    uint8_t *pb = gen_nonempty(5, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};

    post(&cl, CT_PB, NULL, pb, len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_int_equal(r.code, 200);
    assert_content_type(&r, CT_PB);
    export_resp *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(
            NULL, r.body.len, r.body.data);
    assert_non_null(resp);
    assert_non_null(resp->partial_success);
    assert_int_equal(resp->partial_success->rejected_spans, 3);
    assert_string_equal(resp->partial_success->error_message, "3 spans refused: too old");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);

    post(&cl, CT_JSON, NULL, json_body, strlen(json_body));
    assert_int_equal(read_response(&cl, &r), 0);
    assert_int_equal(r.code, 200);
    assert_content_type(&r, CT_JSON);
    json_error_t je;
    json_t *j = json_loadb((const char *)r.body.data, r.body.len, 0, &je);
    assert_non_null(j);
    json_t *ps = json_object_get(j, "partialSuccess");
    assert_non_null(ps);
    json_t *rej = json_object_get(ps, "rejectedSpans");
    long long n = json_is_string(rej) ? atoll(json_string_value(rej)) : json_integer_value(rej);
    assert_int_equal(n, 3);
    assert_string_equal(json_string_value(json_object_get(ps, "errorMessage")),
                        "3 spans refused: too old");
    json_decref(j);

    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_backpressure_503_and_429_carry_retry_after(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(6, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    char ra[32];

    set_mode(fx, MODE_UNAVAILABLE);
    post(&cl, CT_PB, NULL, pb, len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 503, false, 14, "samplers unavailable");
    assert_string_equal(resp_header(&r, "Retry-After", ra, sizeof ra), "7");
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, r.body.len, r.body.data);
    assert_non_null(st);
    assert_int_equal(st->n_details, 1);
    assert_string_equal(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo");
    Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(NULL, st->details[0]->value.len,
                                                                 st->details[0]->value.data);
    assert_non_null(ri);
    assert_non_null(ri->retry_delay);
    assert_int_equal(ri->retry_delay->seconds, 7);
    google__rpc__retry_info__free_unpacked(ri, NULL);
    google__rpc__status__free_unpacked(st, NULL);

    set_mode(fx, MODE_THROTTLED);
    post(&cl, CT_JSON, NULL, json_body, strlen(json_body));
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 429, true, 8, "slow down");
    assert_string_equal(resp_header(&r, "Retry-After", ra, sizeof ra), "1");

    set_mode(fx, MODE_OK);
    assert_good_request_works(fx, &cl);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_keep_alive_and_pipelining_on_one_connection(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    for (int i = 0; i < 5; i++) {
        size_t len, spans;
        uint8_t *pb = gen_payload(100 + (uint64_t)i, &len, &spans);
        post(&cl, CT_PB, NULL, pb, len);
        assert_int_equal(read_response(&cl, &r), 0);
        assert_export_ok(&r, false);
        pthread_mutex_lock(&fx->rec.mu);
        assert_memory_equal(fx->rec.last_pb.data, pb, len);
        pthread_mutex_unlock(&fx->rec.mu);
        free(pb);
    }
    /* Three requests in one write; three answers in order. The middle one is JSON. */
    size_t len, spans;
    uint8_t *pb = gen_nonempty(7, &len, &spans);
    rt_buf all = RT_BUF_INIT;
    for (int i = 0; i < 3; i++) {
        const char *ct = i == 1 ? CT_JSON : CT_PB;
        const void *b = i == 1 ? (const void *)json_body : pb;
        size_t n = i == 1 ? strlen(json_body) : len;
        rt_buf_printf(&all,
                      "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      ct, n);
        rt_buf_append(&all, b, n);
    }
    client_send(&cl, all.data, all.len);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_response(&cl, &r), 0);
        assert_export_ok(&r, i == 1);
    }
    assert_int_equal(handler_calls(fx), 8);
    client_close(&cl);

    /* The same batch followed by a half-close: all three answers arrive, then the close. */
    client_open(fx, &cl);
    client_send(&cl, all.data, all.len);
    shutdown(cl.fd, SHUT_WR);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(read_response(&cl, &r), 0);
        assert_export_ok(&r, i == 1);
    }
    assert_true(client_sees_eof(&cl));
    assert_int_equal(handler_calls(fx), 11);
    rt_buf_free(&all);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

/* A request body of at least `min` bytes: generated requests concatenated (repeated fields of
 * concatenated protobuf messages append, so the result is one valid request). */
static uint8_t *gen_large(uint64_t seed, size_t min, size_t *len, size_t *spans)
{
    rt_buf all = RT_BUF_INIT;
    *spans = 0;
    while (all.len < min) {
        size_t n, sp;
        uint8_t *pb = gen_nonempty(seed++, &n, &sp);
        rt_buf_append(&all, pb, n);
        *spans += sp;
        free(pb);
    }
    *len = all.len;
    return all.data;
}

static void assert_last_body(fixture *fx, const uint8_t *pb, size_t len, size_t spans)
{
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.last_pb.len, len);
    assert_memory_equal(fx->rec.last_pb.data, pb, len);
    assert_int_equal(fx->rec.last_spans, spans);
    pthread_mutex_unlock(&fx->rec.mu);
}

/* Bodies far larger than one socket read arrive whole however the client's writes cut them: in
 * one write, in pieces with pauses (the server sees part of the head, a byte of body, then tens
 * of kilobytes), and pipelined behind one another in a single write. A client that leaves in the
 * middle of a body costs nobody else anything. */
static void test_large_bodies_in_any_pieces(void **state)
{
    fixture *fx = *state;
    size_t len, spans, len2, spans2;
    uint8_t *pb = gen_large(300, 300 * 1024, &len, &spans);
    uint8_t *pb2 = gen_large(900, 200 * 1024, &len2, &spans2);
    rt_buf req = RT_BUF_INIT, req2 = RT_BUF_INIT;
    rt_buf_printf(&req,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  CT_PB, len);
    size_t head = req.len;
    rt_buf_append(&req, pb, len);
    rt_buf_printf(&req2,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: %s\r\n"
                  "Content-Length: %zu\r\n\r\n",
                  CT_PB, len2);
    rt_buf_append(&req2, pb2, len2);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};

    client_send(&cl, req.data, req.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    assert_last_body(fx, pb, len, spans);

    size_t cuts[] = {10,          head + 1, head + 3000, head + 3000 + 70000, head + 3000 + 70005,
                     req.len - 1, req.len};
    size_t at = 0;
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        client_send(&cl, req.data + at, cuts[i] - at);
        at = cuts[i];
        usleep(20000);
    }
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    assert_last_body(fx, pb, len, spans);

    rt_buf both = RT_BUF_INIT;
    rt_buf_append(&both, req.data, req.len);
    rt_buf_append(&both, req2.data, req2.len);
    client_send(&cl, both.data, both.len);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(read_response(&cl, &r), 0);
        assert_export_ok(&r, false);
    }
    assert_last_body(fx, pb2, len2, spans2);
    assert_int_equal(handler_calls(fx), 4);
    client_close(&cl);

    client_open(fx, &cl);
    client_send(&cl, req.data, head + len / 2);
    usleep(20000);
    client_reset(&cl);
    client_open(fx, &cl);
    assert_good_request_works(fx, &cl);
    assert_int_equal(handler_calls(fx), 5);
    client_close(&cl);
    rt_buf_free(&both);
    rt_buf_free(&req);
    rt_buf_free(&req2);
    rt_buf_free(&r.body);
    free(pb);
    free(pb2);
}

static void test_chunked_body_and_expect_continue(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(8, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};

    rt_buf req = RT_BUF_INIT;
    rt_buf_printf(&req, "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: " CT_PB
                        "\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (size_t off = 0; off < len;) {
        size_t n = len - off < 37 ? len - off : 37;
        rt_buf_printf(&req, "%zx;ext=1\r\n", n);
        rt_buf_append(&req, pb + off, n);
        rt_buf_append(&req, "\r\n", 2);
        off += n;
    }
    rt_buf_printf(&req, "0\r\nX-Trailer: yes\r\n\r\n");
    client_send(&cl, req.data, req.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    pthread_mutex_lock(&fx->rec.mu);
    assert_int_equal(fx->rec.last_pb.len, len);
    assert_memory_equal(fx->rec.last_pb.data, pb, len);
    pthread_mutex_unlock(&fx->rec.mu);

    /* Expect: 100-continue: the server says 100 before the body is sent. */
    rt_buf_reset(&req);
    rt_buf_printf(&req,
                  "POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: " CT_PB
                  "\r\nContent-Length: %zu\r\nExpect: 100-continue\r\n\r\n",
                  len);
    client_send(&cl, req.data, req.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_int_equal(r.code, 100);
    client_send(&cl, pb, len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    assert_int_equal(handler_calls(fx), 2);

    rt_buf_free(&req);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void respond_held_ok(fixture *fx)
{
    rt_otlp_result res;
    rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
    pthread_mutex_lock(&fx->rec.mu);
    rt_otlp_call *call = fx->rec.held;
    fx->rec.held = NULL;
    pthread_mutex_unlock(&fx->rec.mu);
    assert_non_null(call);
    rt_otlp_call_respond(call, &res);
}

static void wait_for_calls(fixture *fx, int n)
{
    for (int i = 0; i < 500 && handler_calls(fx) < n; i++) {
        usleep(10000);
    }
    assert_int_equal(handler_calls(fx), n);
}

static bool readable_within(client *cl, int ms)
{
    struct pollfd p = {cl->fd, POLLIN, 0};
    return poll(&p, 1, ms) > 0;
}

static void test_handler_may_answer_later(void **state)
{
    fixture *fx = *state;
    set_mode(fx, MODE_HOLD);
    size_t len, spans;
    uint8_t *pb = gen_nonempty(9, &len, &spans);
    client cl;
    client_open(fx, &cl);
    http_resp r = {0};
    post(&cl, CT_PB, NULL, pb, len);
    /* A second, pipelined request must wait behind the held one. */
    post(&cl, CT_PB, NULL, pb, len);
    wait_for_calls(fx, 1);
    assert_false(readable_within(&cl, 200));
    run_on_loop(fx, respond_held_ok);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    wait_for_calls(fx, 2);
    run_on_loop(fx, respond_held_ok);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    set_mode(fx, MODE_OK);
    assert_good_request_works(fx, &cl);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_call_outlives_a_client_that_left(void **state)
{
    fixture *fx = *state;
    set_mode(fx, MODE_HOLD);
    size_t len, spans;
    uint8_t *pb = gen_nonempty(10, &len, &spans);

    /* Reset: the connection is freed under the held call. */
    client cl;
    client_open(fx, &cl);
    post(&cl, CT_PB, NULL, pb, len);
    wait_for_calls(fx, 1);
    client_reset(&cl);
    usleep(100000);
    run_on_loop(fx, respond_held_ok);

    /* Orderly close (EOF) while the call is held. */
    client_open(fx, &cl);
    post(&cl, CT_PB, NULL, pb, len);
    wait_for_calls(fx, 2);
    client_close(&cl);
    usleep(100000);
    run_on_loop(fx, respond_held_ok);

    /* Half-close: the client still gets its answer. */
    client_open(fx, &cl);
    post(&cl, CT_PB, NULL, pb, len);
    wait_for_calls(fx, 3);
    shutdown(cl.fd, SHUT_WR);
    usleep(100000);
    run_on_loop(fx, respond_held_ok);
    http_resp r = {0};
    assert_int_equal(read_response(&cl, &r), 0);
    assert_export_ok(&r, false);
    assert_true(client_sees_eof(&cl));
    client_close(&cl);

    set_mode(fx, MODE_OK);
    client_open(fx, &cl);
    assert_good_request_works(fx, &cl);
    client_close(&cl);
    rt_buf_free(&r.body);
    free(pb);
}

static void test_call_outlives_the_server(void **state)
{
    fixture *fx = *state;
    set_mode(fx, MODE_HOLD);
    size_t len, spans;
    uint8_t *pb = gen_nonempty(11, &len, &spans);
    client cl;
    client_open(fx, &cl);
    post(&cl, CT_PB, NULL, pb, len);
    wait_for_calls(fx, 1);
    run_on_loop(fx, free_server);
    assert_true(client_sees_eof(&cl));
    run_on_loop(fx, respond_held_ok);
    client_close(&cl);
    free(pb);
}

static void test_idle_connection_is_closed(void **state)
{
    fixture *fx = *state;
    client cl;
    client_open(fx, &cl);
    assert_good_request_works(fx, &cl);
    /* idle_timeout_s = 1: the server closes the quiet connection within about a second. */
    assert_true(readable_within(&cl, 3000));
    assert_true(client_sees_eof(&cl));
    client_close(&cl);
}

static void test_oversized_head_and_bad_framing_are_rejected(void **state)
{
    fixture *fx = *state;
    client cl;
    http_resp r = {0};

    client_open(fx, &cl);
    rt_buf req = RT_BUF_INIT;
    rt_buf_printf(&req, "POST /v1/traces HTTP/1.1\r\n");
    for (int i = 0; i < 2000; i++) {
        rt_buf_printf(&req, "X-Filler-%d: %040d\r\n", i, i);
    }
    rt_buf_printf(&req, "\r\n");
    client_send(&cl, req.data, req.len);
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 431, false, 3, "exceeds");
    client_close(&cl);

    client_open(fx, &cl);
    const char *both = "POST /v1/traces HTTP/1.1\r\nContent-Type: " CT_PB
                       "\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    client_send(&cl, both, strlen(both));
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 400, false, 3, "Content-Length and Transfer-Encoding");
    assert_true(client_sees_eof(&cl));
    client_close(&cl);

    client_open(fx, &cl);
    const char *v2 = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    client_send(&cl, v2, strlen(v2));
    assert_int_equal(read_response(&cl, &r), 0);
    assert_status(&r, 505, false, 12, "HTTP/2.0");
    client_close(&cl);

    client_open(fx, &cl);
    assert_good_request_works(fx, &cl);
    client_close(&cl);
    rt_buf_free(&req);
    rt_buf_free(&r.body);
}

static void test_tls_request_reaches_handler_byte_for_byte(void **state)
{
    fixture *fx = *state;
    size_t len, spans;
    uint8_t *pb = gen_nonempty(12, &len, &spans);
    client cl;
    client_open(fx, &cl);
    char alpn[16];
    assert_string_equal(rt_tls_alpn_selected(cl.ssl, alpn, sizeof alpn), "http/1.1");
    http_resp r = {0};
    for (int i = 0; i < 2; i++) {
        post(&cl, CT_PB, i ? "gzip" : NULL, pb, len);
        if (i == 0) {
            assert_int_equal(read_response(&cl, &r), 0);
            assert_export_ok(&r, false);
            pthread_mutex_lock(&fx->rec.mu);
            assert_int_equal(fx->rec.last_pb.len, len);
            assert_memory_equal(fx->rec.last_pb.data, pb, len);
            assert_int_equal(fx->rec.last_spans, spans);
            pthread_mutex_unlock(&fx->rec.mu);
        } else {
            /* Not gzip at all: a bad request over TLS keeps the connection too. */
            assert_int_equal(read_response(&cl, &r), 0);
            assert_status(&r, 400, false, 3, "gzip:");
        }
    }
    assert_good_request_works(fx, &cl);
    assert_int_equal(handler_calls(fx), 2);
    rt_buf_free(&r.body);
    client_close(&cl);
    free(pb);
}

static void test_listen_error_names_the_address(void **state)
{
    struct event_base *base = event_base_new();
    rt_otlp_server_opts opts = {.handler = test_handler};
    char err[256] = "";
    assert_null(rt_http_server_new(base, "256.1.1.1:0", &opts, err, sizeof err));
    assert_non_null(strstr(err, "256.1.1.1"));
    assert_null(rt_http_server_new(base, "nonsense", &opts, err, sizeof err));
    assert_non_null(strstr(err, "nonsense"));
    event_base_free(base);
}

/* The transport-independent half the gRPC server shares: code mapping and encodings. */
static void test_ingest_maps_codes_and_encodes_answers_per_otlp_spec(void **state)
{
    static const struct {
        rt_otlp_status st;
        int http;
        int grpc;
        bool retry_info;
    } map[] = {
        {RT_OTLP_OK, 200, 0, false},          {RT_OTLP_BAD_DATA, 400, 3, false},
        {RT_OTLP_TOO_LARGE, 413, 8, false},   {RT_OTLP_THROTTLED, 429, 8, true},
        {RT_OTLP_UNAVAILABLE, 503, 14, true}, {RT_OTLP_INTERNAL, 500, 13, false},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        rt_otlp_result res;
        rt_otlp_result_set(&res, map[i].st, "why %zu", i);
        assert_int_equal(rt_otlp_ingest_http_code(&res), map[i].http);
        assert_int_equal(rt_otlp_ingest_grpc_code(&res), map[i].grpc);
        if (map[i].st == RT_OTLP_OK) {
            continue;
        }
        rt_buf out = RT_BUF_INIT;
        rt_otlp_ingest_encode_http_body(&res, false, &out);
        Google__Rpc__Status *st = google__rpc__status__unpack(NULL, out.len, out.data);
        assert_non_null(st);
        assert_int_equal(st->code, map[i].grpc);
        assert_string_equal(st->message, res.message);
        /* Retryable answers carry RetryInfo (0 s means 1 s); the others must not. */
        assert_int_equal(st->n_details, map[i].retry_info ? 1 : 0);
        if (map[i].retry_info) {
            Google__Rpc__RetryInfo *ri = google__rpc__retry_info__unpack(
                NULL, st->details[0]->value.len, st->details[0]->value.data);
            assert_non_null(ri);
            assert_int_equal(ri->retry_delay->seconds, 1);
            google__rpc__retry_info__free_unpacked(ri, NULL);
        }
        google__rpc__status__free_unpacked(st, NULL);
        rt_buf_free(&out);
    }

    /* An empty body is a valid request without spans; gzip + JSON decode in one go. */
    rt_buf s1 = RT_BUF_INIT, s2 = RT_BUF_INIT, gz = RT_BUF_INIT;
    const uint8_t *pb = (const uint8_t *)"x";
    size_t pb_len = 99, spans = 99;
    rt_otlp_result err;
    assert_int_equal(rt_otlp_ingest_decode(NULL, 0, false, false, 0, false, &s1, &s2, &pb, &pb_len,
                                           &spans, &err),
                     0);
    assert_int_equal(pb_len, 0);
    assert_int_equal(spans, 0);
    rt_gzip_deflate((const uint8_t *)json_body, strlen(json_body), 6, &gz);
    assert_int_equal(rt_otlp_ingest_decode(gz.data, gz.len, true, true, 0, false, &s1, &s2, &pb,
                                           &pb_len, &spans, &err),
                     0);
    assert_int_equal(spans, 2);
    size_t want_len;
    uint8_t *want = json_body_as_pb(&want_len);
    size_t a_len, b_len;
    uint8_t *a = canonical(pb, pb_len, &a_len);
    uint8_t *b = canonical(want, want_len, &b_len);
    assert_int_equal(a_len, b_len);
    assert_memory_equal(a, b, a_len);
    /* The limit applies to the inflated size too. */
    assert_int_equal(rt_otlp_ingest_decode(gz.data, gz.len, true, true, 100, false, &s1, &s2, &pb,
                                           &pb_len, &spans, &err),
                     -1);
    assert_int_equal(err.status, RT_OTLP_TOO_LARGE);
    free(a);
    free(b);
    free(want);
    rt_buf_free(&s1);
    rt_buf_free(&s2);
    rt_buf_free(&gz);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    evthread_use_pthreads();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_protobuf_body_reaches_handler_byte_for_byte,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_json_body_reaches_handler_as_equivalent_protobuf,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_gzip_bodies_are_inflated_protobuf_and_json,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(
            test_bad_bodies_get_400_or_415_with_a_status_naming_the_problem, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_bodies_get_413, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_other_paths_404_other_methods_405, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_partial_success_is_encoded, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure_503_and_429_carry_retry_after,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_keep_alive_and_pipelining_on_one_connection,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_large_bodies_in_any_pieces, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_large_bodies_in_any_pieces, setup_tls, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_body_and_expect_continue, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_handler_may_answer_later, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_call_outlives_a_client_that_left, setup_plain,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_call_outlives_the_server, setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_idle_connection_is_closed, setup_short_idle, teardown),
        cmocka_unit_test_setup_teardown(test_oversized_head_and_bad_framing_are_rejected,
                                        setup_plain, teardown),
        cmocka_unit_test_setup_teardown(test_tls_request_reaches_handler_byte_for_byte, setup_tls,
                                        teardown),
        cmocka_unit_test(test_listen_error_names_the_address),
        cmocka_unit_test(test_ingest_maps_codes_and_encodes_answers_per_otlp_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
