/* otlp_client.c - OTLP exporter client: HTTP/1.1 and gRPC transports, pool, retries (see
 * otlp_client.h).
 *
 * Object graph (all owned by rt_otlp_client):
 *
 *   rt_otlp_client --all--> req ...      every accepted export until its done callback
 *                 --queue-> req ...      waiting for a connection (state REQ_QUEUED)
 *                 --conns-> conn --reqs--> req ...   attempts in flight on that connection
 *   req in REQ_BACKOFF sits only on `all`, its timer armed for the next attempt.
 *
 * Re-entrancy rules that keep this safe:
 *  - bufferevents use BEV_OPT_DEFER_CALLBACKS, so no callback of ours runs from inside a libevent
 *    call we make (connect, write, free).
 *  - rt_otlp_client_export only queues and activates the `kick` event; dispatch happens from the
 *    loop. So a done callback that exports again never re-enters nghttp2 or the dispatcher.
 *  - A connection is destroyed only from a bufferevent / timer / kick callback, never from
 *    inside an nghttp2 callback; nghttp2 callbacks only finish or fail single attempts.
 */
#include "otlp_client.h"

#include "alloc.h"
#include "gzip.h"
#include "h2_frame.h"
#include "log.h"
#include "clock.h"
#include "net.h"
#include "tls.h"

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#define DEFAULT_TIMEOUT_MS         10000
#define DEFAULT_HTTP_CONNS         4
#define DEFAULT_GRPC_CONNS         1
#define DEFAULT_MAX_INFLIGHT       256
#define DEFAULT_MAX_RESPONSE       (4u * 1024 * 1024)
#define IDLE_CLOSE_S               30 /* close a connection idle this long (servers default to 120 s) */
#define MAX_LINE                   8192 /* longest HTTP status / header / chunk-size line we accept */
#define H2_STREAMS_BEFORE_SETTINGS 100
#define H2_STREAMS_CAP             1000
#define GRPC_PATH                  "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

typedef struct conn conn;
typedef struct req req;
TAILQ_HEAD(req_list, req);

typedef enum req_state {
    REQ_QUEUED = 0, /* on c->queue */
    REQ_ACTIVE,     /* on a conn's list (or detached from one that is going away) */
    REQ_BACKOFF,    /* timer armed for the next attempt */
} req_state;

struct req {
    rt_otlp_client *c;
    TAILQ_ENTRY(req) qlink; /* c->queue or conn->reqs */
    TAILQ_ENTRY(req) alink; /* c->all */
    req_state state;
    rt_buf body;                            /* wire payload (gzipped if configured) */
    uint8_t prefix[RT_H2_FRAME_PREFIX_LEN]; /* gRPC message prefix for body */
    conn *conn;
    int32_t stream_id;   /* gRPC: 0 until submitted */
    size_t sent;         /* gRPC: bytes of prefix + body handed to nghttp2 */
    struct event *timer; /* attempt timeout while ACTIVE, backoff while REQ_BACKOFF */
    uint64_t start_ns;
    bool stale_retry_used;
    rt_otlp_client_done_fn done;
    void *arg;
    rt_otlp_client_result res;
    /* gRPC answer of the current attempt */
    int h2_status;
    int grpc_status;
    bool grpc_gzip;
    bool grpc_bad_encoding;
    bool resp_err;
    char grpc_message[256];
    char *details; /* grpc-status-details-bin as received (base64) */
    rt_h2_frame_reader reader;
    rt_buf resp;
};

typedef enum http_state {
    H_STATUS = 0,
    H_HEADERS,
    H_BODY_LEN,
    H_CHUNK_SIZE,
    H_CHUNK_DATA,
    H_CHUNK_END,
    H_TRAILERS,
    H_BODY_CLOSE,
} http_state;

struct conn {
    rt_otlp_client *c;
    TAILQ_ENTRY(conn) link;
    struct bufferevent *bev;
    bool connected;
    bool reused; /* HTTP: has completed at least one exchange */
    struct req_list reqs;
    uint32_t n_reqs;
    /* HTTP/1.1 response parser */
    http_state hs;
    bool got_bytes; /* any byte of the current response */
    int status;
    bool http10;
    bool resp_close;
    bool chunked;
    bool resp_gzip;
    bool resp_proto; /* content-type application/x-protobuf */
    int64_t clen;
    uint64_t chunk_left;
    uint64_t retry_after_ns;
    rt_buf body;
    /* gRPC */
    nghttp2_session *h2;
};

struct rt_otlp_client {
    struct event_base *base;
    rt_otlp_client_protocol protocol;
    char host[256];
    uint16_t port;
    char *endpoint;
    char *authority;
    char *path;
    char *server_name;
    bool gzip;
    SSL_CTX *tls;
    struct evdns_base *dns;
    rt_otlp_client_header *headers; /* owned copies (gRPC: lower-cased names) */
    size_t n_headers;
    uint32_t timeout_ms;
    uint32_t max_conns;
    uint32_t max_inflight;
    uint32_t max_response;
    rt_retry_policy policy;
    uint64_t rng;
    char grpc_timeout[24];
    rt_buf http_head; /* request line and fixed headers, without Content-Length */

    struct req_list queue;
    struct req_list all;
    TAILQ_HEAD(, conn) conns;
    uint32_t n_conns;
    struct event *kick;
    bool closing;
    rt_otlp_client_stats st;
};

static void kick(rt_otlp_client *c);
static void conn_fail(conn *cn, rt_otlp_client_fail why, const char *msg);
static void grpc_flush(conn *cn);

/* ---------------------------------------------------------------------------------------------
 * Names
 */

const char *rt_otlp_client_outcome_name(rt_otlp_client_outcome o)
{
    switch (o) {
    case RT_OTLP_CLIENT_OK:
        return "ok";
    case RT_OTLP_CLIENT_PARTIAL:
        return "partial";
    case RT_OTLP_CLIENT_REJECTED:
        return "rejected";
    case RT_OTLP_CLIENT_GAVE_UP:
        return "gave_up";
    }
    return "unknown";
}

const char *rt_otlp_client_fail_name(rt_otlp_client_fail f)
{
    static const char *const names[RT_OTLP_CLIENT_FAIL_COUNT_] = {
        "none", "connect", "timeout", "conn_lost", "protocol", "status", "shutdown",
    };
    if ((unsigned)f < RT_OTLP_CLIENT_FAIL_COUNT_) {
        return names[f];
    }
    return "unknown";
}

/* ---------------------------------------------------------------------------------------------
 * Request lifecycle
 */

static void req_reset_attempt(req *r)
{
    r->stream_id = 0;
    r->sent = 0;
    r->h2_status = 0;
    r->grpc_status = -1;
    r->grpc_gzip = false;
    r->grpc_bad_encoding = false;
    r->resp_err = false;
    r->grpc_message[0] = '\0';
    free(r->details);
    r->details = NULL;
    memset(&r->reader, 0, sizeof r->reader);
    rt_buf_reset(&r->resp);
}

/* End an export: remove it from every list, count it, call done, free it. */
static void req_finish(req *r, rt_otlp_client_outcome outcome)
{
    rt_otlp_client *c = r->c;
    evtimer_del(r->timer);
    if (r->state == REQ_QUEUED) {
        TAILQ_REMOVE(&c->queue, r, qlink);
    }
    TAILQ_REMOVE(&c->all, r, alink);
    c->st.inflight--;
    r->res.outcome = outcome;
    if (outcome == RT_OTLP_CLIENT_OK || outcome == RT_OTLP_CLIENT_PARTIAL) {
        r->res.fail = RT_OTLP_CLIENT_FAIL_NONE;
    }
    r->res.elapsed_ns = rt_clock_mono_ns() - r->start_ns;
    switch (outcome) {
    case RT_OTLP_CLIENT_OK:
        c->st.ok++;
        break;
    case RT_OTLP_CLIENT_PARTIAL:
        c->st.partial++;
        c->st.rejected_spans += (uint64_t)(r->res.rejected_spans > 0 ? r->res.rejected_spans : 0);
        break;
    case RT_OTLP_CLIENT_REJECTED:
        c->st.rejected++;
        break;
    case RT_OTLP_CLIENT_GAVE_UP:
        c->st.gave_up++;
        break;
    }
    if (r->done != NULL) {
        r->done(&r->res, r->arg);
    }
    event_free(r->timer);
    free(r->details);
    rt_buf_free(&r->resp);
    rt_buf_free(&r->body);
    free(r);
}

/* Detach an ACTIVE request from its connection (it stays ACTIVE until the caller decides). */
static void req_detach(req *r)
{
    conn *cn = r->conn;
    if (cn == NULL) {
        return;
    }
    if (cn->h2 != NULL && r->stream_id > 0) {
        nghttp2_session_set_stream_user_data(cn->h2, r->stream_id, NULL);
    }
    TAILQ_REMOVE(&cn->reqs, r, qlink);
    cn->n_reqs--;
    r->conn = NULL;
    if (cn->n_reqs == 0 && cn->h2 != NULL) {
        struct timeval idle = {IDLE_CLOSE_S, 0};
        bufferevent_set_timeouts(cn->bev, &idle, NULL);
    }
}

static void req_requeue(req *r)
{
    r->state = REQ_QUEUED;
    TAILQ_INSERT_TAIL(&r->c->queue, r, qlink);
    kick(r->c);
}

/* An attempt failed (the request is detached already). Record it, then retry after the right
 * delay, or end the export: REJECTED when not retryable, GAVE_UP when the policy ran out. */
static void attempt_failed(req *r, rt_otlp_client_fail why, bool retryable, uint64_t hint_ns,
                           const char *msg)
{
    rt_otlp_client *c = r->c;
    evtimer_del(r->timer);
    c->st.failures[why]++;
    r->res.fail = why;
    snprintf(r->res.message, sizeof r->res.message, "%s", msg ? msg : "");
    if (!retryable) {
        req_finish(r, RT_OTLP_CLIENT_REJECTED);
        return;
    }
    uint64_t elapsed = rt_clock_mono_ns() - r->start_ns;
    int64_t d = rt_retry_next_delay_ns(&c->policy, r->res.attempts, elapsed, hint_ns, &c->rng);
    if (d < 0 || c->closing) {
        req_finish(r, RT_OTLP_CLIENT_GAVE_UP);
        return;
    }
    c->st.retries++;
    r->state = REQ_BACKOFF;
    struct timeval tv = {(time_t)(d / 1000000000), (suseconds_t)(d % 1000000000 / 1000)};
    evtimer_add(r->timer, &tv);
}

/* An attempt got a final success answer (request already detached). */
static void attempt_ok(req *r, int64_t rejected, const char *msg)
{
    r->res.rejected_spans = rejected;
    snprintf(r->res.message, sizeof r->res.message, "%s", msg ? msg : "");
    req_finish(r, rejected > 0 ? RT_OTLP_CLIENT_PARTIAL : RT_OTLP_CLIENT_OK);
}

/* Timer: in REQ_BACKOFF the wait is over (queue it); in REQ_ACTIVE the attempt timed out. */
static void req_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    req *r = arg;
    if (r->state == REQ_BACKOFF) {
        req_requeue(r);
        return;
    }
    if (r->state != REQ_ACTIVE) {
        return;
    }
    conn *cn = r->conn;
    char msg[128];
    snprintf(msg, sizeof msg, "no answer from %s within %u ms", r->c->endpoint, r->c->timeout_ms);
    if (cn != NULL && cn->h2 != NULL) {
        int32_t sid = r->stream_id;
        req_detach(r);
        if (sid > 0) {
            nghttp2_submit_rst_stream(cn->h2, NGHTTP2_FLAG_NONE, sid, NGHTTP2_CANCEL);
        }
        attempt_failed(r, RT_OTLP_CLIENT_FAIL_TIMEOUT, true, RT_RETRY_NO_HINT, msg);
        grpc_flush(cn);
        return;
    }
    if (cn != NULL) {
        /* HTTP/1.1 cannot abandon a request on a live connection: close it. The request is
         * detached first so conn_fail does not count it twice. */
        req_detach(r);
        conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONN_LOST, "closed after attempt timeout");
    }
    attempt_failed(r, RT_OTLP_CLIENT_FAIL_TIMEOUT, true, RT_RETRY_NO_HINT, msg);
}

/* ---------------------------------------------------------------------------------------------
 * Answer decoding shared by both transports
 */

/* Read an ExportTraceServiceResponse; a missing or unreadable body is a plain success. */
static void decode_export_response(const uint8_t *p, size_t n, int64_t *rejected, char *msg,
                                   size_t cap)
{
    *rejected = 0;
    msg[0] = '\0';
    if (n == 0) {
        return;
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *resp =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, n,
                                                                                          p);
    if (resp == NULL) {
        return;
    }
    if (resp->partial_success != NULL) {
        *rejected = resp->partial_success->rejected_spans;
        if (resp->partial_success->error_message != NULL) {
            snprintf(msg, cap, "%s", resp->partial_success->error_message);
        }
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(resp,
                                                                                             NULL);
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 */

/* Tear down a connection. Its attempts are moved to `out` (detached, still ACTIVE) when given,
 * else simply detached. */
static void conn_destroy(conn *cn, struct req_list *out)
{
    rt_otlp_client *c = cn->c;
    req *r;
    while ((r = TAILQ_FIRST(&cn->reqs)) != NULL) {
        req_detach(r);
        if (out != NULL) {
            TAILQ_INSERT_TAIL(out, r, qlink);
        }
    }
    TAILQ_REMOVE(&c->conns, cn, link);
    c->n_conns--;
    c->st.conns_open--;
    if (cn->h2 != NULL) {
        nghttp2_session_del(cn->h2);
    }
    if (cn->bev != NULL) {
        if (c->tls != NULL && cn->connected && out == NULL) {
            /* Orderly close: send close_notify so servers do not log a truncation. */
            SSL *ssl = bufferevent_openssl_get_ssl(cn->bev);
            if (ssl != NULL) {
                SSL_shutdown(ssl);
            }
        }
        bufferevent_free(cn->bev);
    }
    rt_buf_free(&cn->body);
    free(cn);
}

/* The connection is broken: close it and fail its attempts as retryable. A request that died
 * on a reused keep-alive connection before any answer byte is re-sent at once (the server most
 * likely closed the idle connection as we wrote); once per export. */
static void conn_fail(conn *cn, rt_otlp_client_fail why, const char *msg)
{
    rt_otlp_client *c = cn->c;
    struct req_list failed = TAILQ_HEAD_INITIALIZER(failed);
    bool stale = cn->h2 == NULL && cn->reused && !cn->got_bytes;
    RT_LOG_RL(RT_LOG_WARN, "otlp client connection failed", "endpoint=%s reason=%s error=\"%s\"",
              c->endpoint, rt_otlp_client_fail_name(why), msg);
    conn_destroy(cn, &failed);
    req *r;
    while ((r = TAILQ_FIRST(&failed)) != NULL) {
        TAILQ_REMOVE(&failed, r, qlink);
        if (stale && !r->stale_retry_used && !c->closing) {
            r->stale_retry_used = true;
            evtimer_del(r->timer);
            c->st.failures[why]++;
            req_requeue(r);
            continue;
        }
        attempt_failed(r, why, true, RT_RETRY_NO_HINT, msg);
    }
    kick(c);
}

static void conn_error_text(conn *cn, short what, char *out, size_t cap)
{
    int dns = bufferevent_socket_get_dns_error(cn->bev);
    unsigned long ssl_err = cn->c->tls ? bufferevent_get_openssl_error(cn->bev) : 0;
    if (dns != 0) {
        snprintf(out, cap, "%s: cannot resolve: %s", cn->c->endpoint, evutil_gai_strerror(dns));
    } else if (ssl_err != 0) {
        char reason[160];
        ERR_error_string_n(ssl_err, reason, sizeof reason);
        snprintf(out, cap, "%s: tls: %s", cn->c->endpoint, reason);
    } else if (what & BEV_EVENT_EOF) {
        snprintf(out, cap, "%s: connection closed by peer", cn->c->endpoint);
    } else if (what & BEV_EVENT_TIMEOUT) {
        snprintf(out, cap, "%s: idle timeout", cn->c->endpoint);
    } else {
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(out, cap, "%s: %s", cn->c->endpoint,
                 e ? evutil_socket_error_to_string(e) : "connection error");
    }
}

static void http_read_cb(struct bufferevent *bev, void *arg);
static void http_on_input(conn *cn, bool at_eof);
static void grpc_submit_pending(conn *cn);
static void grpc_read_cb(struct bufferevent *bev, void *arg);
static void conn_event_cb(struct bufferevent *bev, short what, void *arg);
static int grpc_session_start(conn *cn, char *err, size_t errlen);

static bool host_is_ip(const char *h)
{
    unsigned char tmp[16];
    return inet_pton(AF_INET, h, tmp) == 1 || inet_pton(AF_INET6, h, tmp) == 1;
}

/* Open a connection (asynchronously). Returns it, connecting; on an immediate failure it is
 * returned too, with `*failed` set and the reason in `err` (the caller fails it once it has
 * attached its request). */
static conn *conn_open(rt_otlp_client *c, bool *failed, char *err, size_t errlen)
{
    conn *cn = rt_calloc(1, sizeof *cn);
    cn->c = c;
    TAILQ_INIT(&cn->reqs);
    cn->clen = -1;
    cn->retry_after_ns = RT_RETRY_NO_HINT;
    TAILQ_INSERT_TAIL(&c->conns, cn, link);
    c->n_conns++;
    c->st.conns_open++;
    c->st.conns_opened++;
    *failed = false;
    int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (c->tls != NULL) {
        SSL *ssl = SSL_new(c->tls);
        if (ssl == NULL) {
            snprintf(err, errlen, "%s: tls: cannot create session", c->endpoint);
            goto fail;
        }
        if (!host_is_ip(c->server_name)) {
            SSL_set_tlsext_host_name(ssl, c->server_name);
        }
        if (SSL_CTX_get_verify_mode(c->tls) & SSL_VERIFY_PEER) {
            if (host_is_ip(c->server_name)) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), c->server_name);
            } else {
                SSL_set1_host(ssl, c->server_name);
            }
        }
        cn->bev =
            bufferevent_openssl_socket_new(c->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING, opts);
        if (cn->bev == NULL) {
            SSL_free(ssl);
            snprintf(err, errlen, "%s: tls: cannot create connection", c->endpoint);
            goto fail;
        }
        bufferevent_openssl_set_allow_dirty_shutdown(cn->bev, 1);
    } else {
        cn->bev = bufferevent_socket_new(c->base, -1, opts);
        if (cn->bev == NULL) {
            snprintf(err, errlen, "%s: cannot create connection", c->endpoint);
            goto fail;
        }
    }
    bufferevent_setcb(cn->bev, c->protocol == RT_OTLP_CLIENT_GRPC ? grpc_read_cb : http_read_cb,
                      NULL, conn_event_cb, cn);
    bufferevent_enable(cn->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(cn->bev, c->dns, AF_UNSPEC, c->host, c->port) != 0) {
        int dns = bufferevent_socket_get_dns_error(cn->bev);
        snprintf(err, errlen, "%s: cannot connect: %s", c->endpoint,
                 dns ? evutil_gai_strerror(dns) : evutil_socket_error_to_string(errno));
        goto fail;
    }
    return cn;
fail:
    *failed = true;
    return cn;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    conn *cn = arg;
    rt_otlp_client *c = cn->c;
    char msg[256];
    if (what & BEV_EVENT_CONNECTED) {
        cn->connected = true;
        /* Requests are written whole; without TCP_NODELAY the last partial segment waits for
         * the peer's delayed ACK (40 ms on Linux) and caps a connection at ~25 requests/s. */
        int one = 1;
        evutil_socket_t fd = bufferevent_getfd(bev);
        if (fd >= 0) {
            (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
        if (c->protocol == RT_OTLP_CLIENT_GRPC) {
            if (grpc_session_start(cn, msg, sizeof msg) != 0) {
                conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONNECT, msg);
                return;
            }
            grpc_submit_pending(cn);
            grpc_flush(cn);
        }
        return;
    }
    if (c->protocol == RT_OTLP_CLIENT_HTTP && (what & BEV_EVENT_EOF) && !TAILQ_EMPTY(&cn->reqs)) {
        /* Parse what is left: a close-delimited body is complete now; anything else is a
         * connection lost mid-request. */
        http_on_input(cn, true);
        return;
    }
    conn_error_text(cn, what, msg, sizeof msg);
    if (TAILQ_EMPTY(&cn->reqs)) {
        /* Idle connection closed by the peer or by our idle timeout: not a failure. */
        conn_destroy(cn, NULL);
        kick(c);
        return;
    }
    conn_fail(cn, cn->connected ? RT_OTLP_CLIENT_FAIL_CONN_LOST : RT_OTLP_CLIENT_FAIL_CONNECT, msg);
}

/* ---------------------------------------------------------------------------------------------
 * HTTP/1.1
 */

static void http_parser_reset(conn *cn)
{
    cn->hs = H_STATUS;
    cn->got_bytes = false;
    cn->status = 0;
    cn->http10 = false;
    cn->resp_close = false;
    cn->chunked = false;
    cn->resp_gzip = false;
    cn->resp_proto = false;
    cn->clen = -1;
    cn->chunk_left = 0;
    cn->retry_after_ns = RT_RETRY_NO_HINT;
    rt_buf_reset(&cn->body);
}

static void http_send(conn *cn, req *r)
{
    rt_otlp_client *c = cn->c;
    struct evbuffer *out = bufferevent_get_output(cn->bev);
    evbuffer_add(out, c->http_head.data, c->http_head.len);
    evbuffer_add_printf(out, "Content-Length: %zu\r\n\r\n", r->body.len);
    evbuffer_add(out, r->body.data, r->body.len);
    c->st.bytes_sent += r->body.len;
    http_parser_reset(cn);
    bufferevent_set_timeouts(cn->bev, NULL, NULL);
}

/* Case-insensitive "does the comma-separated header value contain token". */
static bool header_has_token(const char *v, const char *token)
{
    size_t tl = strlen(token);
    for (const char *p = v; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') {
            p++;
        }
        const char *e = p;
        while (*e && *e != ',') {
            e++;
        }
        const char *t = e;
        while (t > p && (t[-1] == ' ' || t[-1] == '\t')) {
            t--;
        }
        if ((size_t)(t - p) == tl && strncasecmp(p, token, tl) == 0) {
            return true;
        }
        p = e;
    }
    return false;
}

/* Take one CRLF- (or LF-) terminated line out of `in` into `line`. Returns 1 with a line,
 * 0 when more data is needed, -1 when the line is too long. */
static int take_line(struct evbuffer *in, char *line, size_t cap)
{
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    if (p.pos < 0) {
        return evbuffer_get_length(in) >= cap ? -1 : 0;
    }
    if ((size_t)p.pos >= cap) {
        return -1;
    }
    evbuffer_remove(in, line, (size_t)p.pos);
    line[p.pos] = '\0';
    evbuffer_drain(in, eol_len);
    return 1;
}

static int http_status_line(conn *cn, const char *line)
{
    int major = 0, minor = 0, status = 0;
    if (sscanf(line, "HTTP/%d.%d %d", &major, &minor, &status) != 3 || major != 1 || status < 100 ||
        status > 999) {
        return -1;
    }
    cn->status = status;
    cn->http10 = minor == 0;
    cn->resp_close = cn->http10; /* HTTP/1.0 closes unless it says keep-alive */
    return 0;
}

static int http_header_line(conn *cn, char *line)
{
    char *colon = strchr(line, ':');
    if (colon == NULL) {
        return -1;
    }
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t') {
        v++;
    }
    size_t vl = strlen(v);
    while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) {
        v[--vl] = '\0';
    }
    const char *name = line;
    if (strcasecmp(name, "content-length") == 0) {
        char *end = NULL;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || *end != '\0' || n < 0) {
            return -1;
        }
        cn->clen = n;
    } else if (strcasecmp(name, "transfer-encoding") == 0) {
        cn->chunked = header_has_token(v, "chunked");
    } else if (strcasecmp(name, "connection") == 0) {
        if (header_has_token(v, "close")) {
            cn->resp_close = true;
        } else if (header_has_token(v, "keep-alive")) {
            cn->resp_close = false;
        }
    } else if (strcasecmp(name, "content-encoding") == 0) {
        cn->resp_gzip = header_has_token(v, "gzip");
    } else if (strcasecmp(name, "content-type") == 0) {
        cn->resp_proto = strncasecmp(v, "application/x-protobuf", 22) == 0 ||
                         strncasecmp(v, "application/protobuf", 20) == 0;
    } else if (strcasecmp(name, "retry-after") == 0) {
        uint64_t d;
        if (rt_retry_parse_retry_after(v, rt_clock_wall_ns(), &d) == 0) {
            cn->retry_after_ns = d;
        }
    }
    return 0;
}

/* A whole response is in: give the connection back (or close it), then judge the answer. */
static void http_response_done(conn *cn)
{
    rt_otlp_client *c = cn->c;
    req *r = TAILQ_FIRST(&cn->reqs);
    int status = cn->status;
    uint64_t hint = cn->retry_after_ns;
    bool gz = cn->resp_gzip;
    bool is_proto = cn->resp_proto;
    rt_buf body = cn->body; /* take the body; the connection gets a fresh buffer */
    rt_buf_init(&cn->body);

    bool keep = !cn->resp_close && cn->hs != H_BODY_CLOSE &&
                evbuffer_get_length(bufferevent_get_output(cn->bev)) == 0 &&
                evbuffer_get_length(bufferevent_get_input(cn->bev)) == 0;
    if (r != NULL) {
        req_detach(r);
    }
    if (keep) {
        cn->reused = true;
        http_parser_reset(cn);
        struct timeval idle = {IDLE_CLOSE_S, 0};
        bufferevent_set_timeouts(cn->bev, &idle, NULL);
    } else {
        conn_destroy(cn, NULL);
    }
    kick(c);
    if (r == NULL) {
        rt_buf_free(&body);
        return;
    }

    rt_buf inflated = RT_BUF_INIT;
    const uint8_t *bp = body.data;
    size_t bl = body.len;
    if (gz && bl > 0) {
        char gerr[128];
        if (rt_gzip_inflate(body.data, body.len, c->max_response, &inflated, gerr, sizeof gerr) ==
            0) {
            bp = inflated.data;
            bl = inflated.len;
        } else {
            bl = 0;
        }
    }
    r->res.http_status = status;
    char msg[256];
    if (status >= 200 && status < 300) {
        int64_t rejected = 0;
        decode_export_response(bp, bl, &rejected, msg, sizeof msg);
        attempt_ok(r, rejected, msg);
    } else {
        msg[0] = '\0';
        if (bl > 0 && is_proto) {
            Google__Rpc__Status *st = google__rpc__status__unpack(NULL, bl, bp);
            if (st != NULL) {
                snprintf(msg, sizeof msg, "HTTP %d: %s", status, st->message ? st->message : "");
                google__rpc__status__free_unpacked(st, NULL);
            }
        }
        if (msg[0] == '\0') {
            /* Not a Status: quote the start of the body if it is printable text. */
            size_t n = bl < 160 ? bl : 160;
            size_t i = 0;
            while (i < n && (isprint(bp[i]) || bp[i] == ' ')) {
                i++;
            }
            snprintf(msg, sizeof msg, "HTTP %d%s%.*s", status, i > 0 ? ": " : "", (int)i,
                     i > 0 ? (const char *)bp : "");
        }
        bool retryable = rt_retry_http_retryable(status);
        attempt_failed(r, RT_OTLP_CLIENT_FAIL_STATUS, retryable,
                       retryable ? hint : RT_RETRY_NO_HINT, msg);
    }
    rt_buf_free(&inflated);
    rt_buf_free(&body);
}

/* Move body bytes from `in` (at most `max`) into the body buffer, enforcing the size limit.
 * Returns the number moved, or -1 over the limit. */
static long http_take_body(conn *cn, struct evbuffer *in, uint64_t max)
{
    size_t avail = evbuffer_get_length(in);
    size_t n = avail < max ? avail : (size_t)max;
    if (cn->body.len + n > cn->c->max_response) {
        return -1;
    }
    if (n > 0) {
        uint8_t *dst = rt_buf_reserve(&cn->body, n);
        evbuffer_remove(in, dst, n);
        cn->body.len += n;
    }
    return (long)n;
}

/* Parse as much of the response as has arrived. Returns 1 when a response completed (the
 * connection may be gone), 0 when more data is needed, -1 on a malformed response (message in
 * err). `at_eof`: the peer closed, so a close-delimited body is complete. */
static int http_parse(conn *cn, bool at_eof, char *err, size_t errlen)
{
    struct evbuffer *in = bufferevent_get_input(cn->bev);
    char line[MAX_LINE];
    if (evbuffer_get_length(in) > 0) {
        cn->got_bytes = true;
    }
    for (;;) {
        int lr;
        long got;
        switch (cn->hs) {
        case H_STATUS:
        case H_HEADERS:
        case H_CHUNK_SIZE:
        case H_CHUNK_END:
        case H_TRAILERS:
            lr = take_line(in, line, sizeof line);
            if (lr < 0) {
                snprintf(err, errlen, "response line longer than %d bytes", MAX_LINE);
                return -1;
            }
            if (lr == 0) {
                return 0;
            }
            break;
        default:
            break;
        }
        switch (cn->hs) {
        case H_STATUS:
            if (http_status_line(cn, line) != 0) {
                snprintf(err, errlen, "bad status line \"%.60s\"", line);
                return -1;
            }
            cn->hs = H_HEADERS;
            break;
        case H_HEADERS:
            if (line[0] != '\0') {
                if (http_header_line(cn, line) != 0) {
                    snprintf(err, errlen, "bad header line \"%.60s\"", line);
                    return -1;
                }
                break;
            }
            if (cn->status < 200) {
                http_parser_reset(cn); /* 1xx interim answer: the real one follows */
                cn->got_bytes = true;
                break;
            }
            if (cn->status == 204 || cn->status == 304) {
                return 1;
            }
            if (cn->chunked) {
                cn->hs = H_CHUNK_SIZE;
            } else if (cn->clen >= 0) {
                if ((uint64_t)cn->clen > cn->c->max_response) {
                    snprintf(err, errlen, "response body of %lld bytes is over the %u limit",
                             (long long)cn->clen, cn->c->max_response);
                    return -1;
                }
                if (cn->clen == 0) {
                    return 1;
                }
                cn->hs = H_BODY_LEN;
            } else {
                cn->hs = H_BODY_CLOSE;
            }
            break;
        case H_BODY_LEN:
            got = http_take_body(cn, in, (uint64_t)cn->clen - cn->body.len);
            if (got < 0) {
                snprintf(err, errlen, "response body over the %u byte limit", cn->c->max_response);
                return -1;
            }
            if (cn->body.len == (size_t)cn->clen) {
                return 1;
            }
            return 0;
        case H_CHUNK_SIZE: {
            char *end = NULL;
            errno = 0;
            unsigned long long n = strtoull(line, &end, 16);
            if (errno || end == line || (*end != '\0' && *end != ';' && *end != ' ')) {
                snprintf(err, errlen, "bad chunk size \"%.40s\"", line);
                return -1;
            }
            if (n == 0) {
                cn->hs = H_TRAILERS;
            } else {
                cn->chunk_left = n;
                cn->hs = H_CHUNK_DATA;
            }
            break;
        }
        case H_CHUNK_DATA:
            got = http_take_body(cn, in, cn->chunk_left);
            if (got < 0) {
                snprintf(err, errlen, "response body over the %u byte limit", cn->c->max_response);
                return -1;
            }
            cn->chunk_left -= (uint64_t)got;
            if (cn->chunk_left > 0) {
                return 0;
            }
            cn->hs = H_CHUNK_END;
            break;
        case H_CHUNK_END:
            if (line[0] != '\0') {
                snprintf(err, errlen, "chunk not followed by CRLF");
                return -1;
            }
            cn->hs = H_CHUNK_SIZE;
            break;
        case H_TRAILERS:
            if (line[0] == '\0') {
                return 1;
            }
            break;
        case H_BODY_CLOSE:
            if (http_take_body(cn, in, UINT64_MAX) < 0) {
                snprintf(err, errlen, "response body over the %u byte limit", cn->c->max_response);
                return -1;
            }
            return at_eof ? 1 : 0;
        }
    }
}

/* New response bytes (or the peer's EOF) on an HTTP connection. */
static void http_on_input(conn *cn, bool at_eof)
{
    rt_otlp_client *c = cn->c;
    char err[160];
    if (TAILQ_EMPTY(&cn->reqs)) {
        /* Bytes on an idle connection: nothing asked for them; do not trust it again. */
        if (at_eof || evbuffer_get_length(bufferevent_get_input(cn->bev)) > 0) {
            conn_destroy(cn, NULL);
            kick(c);
        }
        return;
    }
    int rc = http_parse(cn, at_eof, err, sizeof err);
    if (rc < 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: malformed HTTP response: %s", c->endpoint, err);
        /* A broken answer is a protocol failure; retry it like a broken connection. */
        conn_fail(cn, RT_OTLP_CLIENT_FAIL_PROTOCOL, msg);
        return;
    }
    if (rc == 1) {
        http_response_done(cn);
        return;
    }
    if (at_eof) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s: connection closed by peer %s", c->endpoint,
                 cn->got_bytes ? "mid-response" : "before answering");
        conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONN_LOST, msg);
    }
}

static void http_read_cb(struct bufferevent *bev, void *arg)
{
    http_on_input(arg, false);
}

/* ---------------------------------------------------------------------------------------------
 * gRPC over HTTP/2 (nghttp2)
 */

static ssize_t h2_send_cb(nghttp2_session *s, const uint8_t *data, size_t len, int flags,
                          void *user)
{
    conn *cn = user;
    if (bufferevent_write(cn->bev, data, len) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)len;
}

static int h2_header_cb(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user)
{
    if (frame->hd.type != NGHTTP2_HEADERS) {
        return 0;
    }
    req *r = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (r == NULL) {
        return 0;
    }
#define NAME_IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    char tmp[16];
    if (NAME_IS(":status") || NAME_IS("grpc-status")) {
        size_t n = valuelen < sizeof tmp - 1 ? valuelen : sizeof tmp - 1;
        memcpy(tmp, value, n);
        tmp[n] = '\0';
        char *end = NULL;
        long v = strtol(tmp, &end, 10);
        if (end == tmp || *end != '\0' || v < 0) {
            v = 2; /* UNKNOWN */
        }
        if (name[0] == ':') {
            r->h2_status = (int)v;
        } else {
            r->grpc_status = (int)v;
        }
    } else if (NAME_IS("grpc-message")) {
        rt_h2_frame_percent_decode((const char *)value, valuelen, r->grpc_message,
                                   sizeof r->grpc_message);
    } else if (NAME_IS("grpc-status-details-bin")) {
        free(r->details);
        r->details = rt_strndup((const char *)value, valuelen);
    } else if (NAME_IS("grpc-encoding")) {
        if (valuelen == 4 && memcmp(value, "gzip", 4) == 0) {
            r->grpc_gzip = true;
        } else if (!(valuelen == 8 && memcmp(value, "identity", 8) == 0)) {
            r->grpc_bad_encoding = true;
        }
    }
#undef NAME_IS
    return 0;
}

static int h2_data_cb(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                      size_t len, void *user)
{
    req *r = nghttp2_session_get_stream_user_data(s, stream_id);
    if (r == NULL || r->resp_err) {
        return 0;
    }
    if (rt_h2_frame_read(&r->reader, data, len, r->c->max_response, &r->resp) != RT_H2_FRAME_OK) {
        r->resp_err = true;
    }
    return 0;
}

/* gRPC HTTP-to-status mapping for answers that carry no grpc-status (gRPC spec,
 * http-grpc-status-mapping.md). */
static int grpc_code_for_http(int http)
{
    switch (http) {
    case 400:
        return 13; /* INTERNAL */
    case 401:
        return 16; /* UNAUTHENTICATED */
    case 403:
        return 7; /* PERMISSION_DENIED */
    case 404:
        return 12; /* UNIMPLEMENTED */
    case 429:
    case 502:
    case 503:
    case 504:
        return 14; /* UNAVAILABLE */
    default:
        return 2; /* UNKNOWN */
    }
}

/* The stream is over: judge the attempt. Runs inside nghttp2; only finishes this request. */
static int h2_close_cb(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *user)
{
    req *r = nghttp2_session_get_stream_user_data(s, stream_id);
    if (r == NULL) {
        return 0;
    }
    rt_otlp_client *c = r->c;
    req_detach(r);
    r->res.http_status = r->h2_status;
    r->res.grpc_status = r->grpc_status;
    char msg[320];
    if (r->grpc_status == 0) {
        int64_t rejected = 0;
        char pmsg[256] = "";
        if (!r->resp_err && !r->grpc_bad_encoding &&
            rt_h2_frame_reader_state(&r->reader) == RT_H2_FRAME_COMPLETE) {
            if (r->reader.compressed) {
                rt_buf inflated = RT_BUF_INIT;
                char gerr[128];
                if (rt_gzip_inflate(r->resp.data, r->resp.len, c->max_response, &inflated, gerr,
                                    sizeof gerr) == 0) {
                    decode_export_response(inflated.data, inflated.len, &rejected, pmsg,
                                           sizeof pmsg);
                }
                rt_buf_free(&inflated);
            } else {
                decode_export_response(r->resp.data, r->resp.len, &rejected, pmsg, sizeof pmsg);
            }
        }
        attempt_ok(r, rejected, pmsg);
        return 0;
    }
    if (r->grpc_status > 0) {
        uint64_t hint = RT_RETRY_NO_HINT;
        bool has_ri = false;
        if (r->details != NULL) {
            has_ri = rt_retry_grpc_details_delay(r->details, strlen(r->details), &hint) == 1;
            if (!has_ri) {
                hint = RT_RETRY_NO_HINT;
            }
        }
        bool retryable = rt_retry_grpc_retryable(r->grpc_status, has_ri);
        snprintf(msg, sizeof msg, "grpc-status %d: %s", r->grpc_status, r->grpc_message);
        attempt_failed(r, RT_OTLP_CLIENT_FAIL_STATUS, retryable,
                       retryable ? hint : RT_RETRY_NO_HINT, msg);
        return 0;
    }
    if (r->h2_status != 0 && r->h2_status != 200) {
        int code = grpc_code_for_http(r->h2_status);
        r->res.grpc_status = code;
        snprintf(msg, sizeof msg, "HTTP %d without grpc-status", r->h2_status);
        attempt_failed(r, RT_OTLP_CLIENT_FAIL_STATUS, rt_retry_grpc_retryable(code, false),
                       RT_RETRY_NO_HINT, msg);
        return 0;
    }
    if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(msg, sizeof msg, "%s: stream reset: %s", c->endpoint,
                 nghttp2_http2_strerror(error_code));
        attempt_failed(r, RT_OTLP_CLIENT_FAIL_CONN_LOST, true, RT_RETRY_NO_HINT, msg);
        return 0;
    }
    snprintf(msg, sizeof msg, "%s: stream ended without grpc-status", c->endpoint);
    attempt_failed(r, RT_OTLP_CLIENT_FAIL_PROTOCOL, true, RT_RETRY_NO_HINT, msg);
    return 0;
}

/* Feed the request message (prefix, then body) to nghttp2. */
static ssize_t h2_body_read_cb(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                               uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    /* The stream's user data, not source.ptr: a request detached by a timeout may be gone. */
    req *r = nghttp2_session_get_stream_user_data(s, stream_id);
    if (r == NULL) {
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    size_t total = RT_H2_FRAME_PREFIX_LEN + r->body.len;
    size_t o = 0;
    while (o < length && r->sent < total) {
        if (r->sent < RT_H2_FRAME_PREFIX_LEN) {
            buf[o++] = r->prefix[r->sent++];
            continue;
        }
        size_t off = r->sent - RT_H2_FRAME_PREFIX_LEN;
        size_t n = r->body.len - off;
        if (n > length - o) {
            n = length - o;
        }
        memcpy(buf + o, r->body.data + off, n);
        o += n;
        r->sent += n;
    }
    if (r->sent == total) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    r->c->st.bytes_sent += o;
    return (ssize_t)o;
}

static int grpc_session_start(conn *cn, char *err, size_t errlen)
{
    rt_otlp_client *c = cn->c;
    if (c->tls != NULL) {
        char alpn[32];
        rt_tls_alpn_selected(bufferevent_openssl_get_ssl(cn->bev), alpn, sizeof alpn);
        if (strcmp(alpn, "h2") != 0) {
            snprintf(err, errlen, "%s: server did not negotiate h2 via ALPN (got \"%s\")",
                     c->endpoint, alpn);
            return -1;
        }
    }
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_send_callback(cbs, h2_send_cb);
    nghttp2_session_callbacks_set_on_header_callback(cbs, h2_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, h2_data_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, h2_close_cb);
    int rv = nghttp2_session_client_new(&cn->h2, cbs, cn);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
        cn->h2 = NULL;
        snprintf(err, errlen, "%s: http2: %s", c->endpoint, nghttp2_strerror(rv));
        return -1;
    }
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
    };
    nghttp2_submit_settings(cn->h2, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    return 0;
}

static void nv_set(nghttp2_nv *nv, const char *name, const char *value)
{
    nv->name = (uint8_t *)name;
    nv->namelen = strlen(name);
    nv->value = (uint8_t *)value;
    nv->valuelen = strlen(value);
    nv->flags = NGHTTP2_NV_FLAG_NONE;
}

/* Open the stream of an attached request on a live session. Returns 0, or -1 when the session
 * refuses new streams (the caller fails the attempt). */
static int grpc_submit(conn *cn, req *r)
{
    rt_otlp_client *c = cn->c;
    size_t n = 0;
    nghttp2_nv *nva = rt_calloc(10 + c->n_headers, sizeof *nva);
    nv_set(&nva[n++], ":method", "POST");
    nv_set(&nva[n++], ":scheme", c->tls ? "https" : "http");
    nv_set(&nva[n++], ":path", GRPC_PATH);
    nv_set(&nva[n++], ":authority", c->authority);
    nv_set(&nva[n++], "content-type", "application/grpc");
    nv_set(&nva[n++], "te", "trailers");
    nv_set(&nva[n++], "user-agent", "ringtail-otlp-client");
    nv_set(&nva[n++], "grpc-accept-encoding", "gzip,identity");
    nv_set(&nva[n++], "grpc-timeout", c->grpc_timeout);
    if (c->gzip) {
        nv_set(&nva[n++], "grpc-encoding", "gzip");
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        nv_set(&nva[n++], c->headers[i].name, c->headers[i].value);
    }
    nghttp2_data_provider prd;
    prd.source.ptr = r;
    prd.read_callback = h2_body_read_cb;
    int32_t sid = nghttp2_submit_request(cn->h2, NULL, nva, n, &prd, r);
    free(nva);
    if (sid < 0) {
        return -1;
    }
    r->stream_id = sid;
    return 0;
}

/* Submit the attached requests that have no stream yet (after the connection came up). */
static void grpc_submit_pending(conn *cn)
{
    req *r, *next;
    for (r = TAILQ_FIRST(&cn->reqs); r != NULL; r = next) {
        next = TAILQ_NEXT(r, qlink);
        if (r->stream_id == 0 && grpc_submit(cn, r) != 0) {
            req_detach(r);
            attempt_failed(r, RT_OTLP_CLIENT_FAIL_CONN_LOST, true, RT_RETRY_NO_HINT,
                           "connection refuses new streams");
        }
    }
}

/* Write what nghttp2 has queued; close the connection when it is finished or broken. Must not
 * be called from inside an nghttp2 callback. */
static void grpc_flush(conn *cn)
{
    if (cn->h2 == NULL) {
        return;
    }
    int rv = nghttp2_session_send(cn->h2);
    if (rv != 0) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: http2: %s", cn->c->endpoint, nghttp2_strerror(rv));
        conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONN_LOST, msg);
        return;
    }
    if (!nghttp2_session_want_read(cn->h2) && !nghttp2_session_want_write(cn->h2)) {
        rt_otlp_client *c = cn->c;
        if (TAILQ_EMPTY(&cn->reqs)) {
            conn_destroy(cn, NULL);
            kick(c);
        } else {
            conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONN_LOST, "http2 session ended (GOAWAY)");
        }
    }
}

static void grpc_read_cb(struct bufferevent *bev, void *arg)
{
    conn *cn = arg;
    if (cn->h2 == NULL) {
        return;
    }
    struct evbuffer *in = bufferevent_get_input(bev);
    for (;;) {
        struct evbuffer_iovec v[8];
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        if (nv <= 0) {
            break;
        }
        size_t used = 0;
        for (int i = 0; i < nv && i < 8; i++) {
            ssize_t rv = nghttp2_session_mem_recv(cn->h2, v[i].iov_base, v[i].iov_len);
            if (rv < 0) {
                char msg[160];
                snprintf(msg, sizeof msg, "%s: http2: %s", cn->c->endpoint,
                         nghttp2_strerror((int)rv));
                conn_fail(cn, RT_OTLP_CLIENT_FAIL_PROTOCOL, msg);
                return;
            }
            used += v[i].iov_len;
        }
        evbuffer_drain(in, used);
    }
    grpc_flush(cn);
}

/* Can this gRPC connection take one more stream now? */
static bool grpc_conn_has_room(conn *cn)
{
    uint32_t limit = H2_STREAMS_BEFORE_SETTINGS;
    if (cn->h2 != NULL) {
        if (!nghttp2_session_check_request_allowed(cn->h2)) {
            return false;
        }
        limit =
            nghttp2_session_get_remote_settings(cn->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
        if (limit > H2_STREAMS_CAP) {
            limit = H2_STREAMS_CAP;
        }
    }
    return cn->n_reqs < limit;
}

/* ---------------------------------------------------------------------------------------------
 * Dispatch
 */

/* Pick a connection for the next queued request: HTTP wants an idle connected one; gRPC the
 * least loaded one with room. NULL when none. */
static conn *pick_conn(rt_otlp_client *c)
{
    conn *best = NULL;
    conn *cn;
    TAILQ_FOREACH(cn, &c->conns, link)
    {
        if (c->protocol == RT_OTLP_CLIENT_HTTP) {
            if (cn->connected && cn->n_reqs == 0) {
                return cn;
            }
        } else if (grpc_conn_has_room(cn) && (best == NULL || cn->n_reqs < best->n_reqs)) {
            best = cn;
        }
    }
    return best;
}

static void kick_cb(evutil_socket_t fd, short what, void *arg)
{
    rt_otlp_client *c = arg;
    req *r;
    while (!c->closing && (r = TAILQ_FIRST(&c->queue)) != NULL) {
        conn *cn = pick_conn(c);
        bool failed = false;
        char err[256];
        if (cn == NULL) {
            if (c->n_conns >= c->max_conns) {
                break;
            }
            cn = conn_open(c, &failed, err, sizeof err);
        }
        TAILQ_REMOVE(&c->queue, r, qlink);
        r->state = REQ_ACTIVE;
        r->conn = cn;
        TAILQ_INSERT_TAIL(&cn->reqs, r, qlink);
        if (cn->n_reqs++ == 0 && cn->bev != NULL) {
            bufferevent_set_timeouts(cn->bev, NULL, NULL);
        }
        req_reset_attempt(r);
        r->res.attempts++;
        c->st.attempts++;
        struct timeval tv = {(time_t)(c->timeout_ms / 1000),
                             (suseconds_t)(c->timeout_ms % 1000) * 1000};
        evtimer_add(r->timer, &tv);
        if (failed) {
            conn_fail(cn, RT_OTLP_CLIENT_FAIL_CONNECT, err);
            continue;
        }
        if (c->protocol == RT_OTLP_CLIENT_HTTP) {
            http_send(cn, r);
        } else if (cn->h2 != NULL) {
            if (grpc_submit(cn, r) != 0) {
                req_detach(r);
                attempt_failed(r, RT_OTLP_CLIENT_FAIL_CONN_LOST, true, RT_RETRY_NO_HINT,
                               "connection refuses new streams");
            }
            grpc_flush(cn);
        }
    }
}

static void kick(rt_otlp_client *c)
{
    if (!c->closing && !TAILQ_EMPTY(&c->queue)) {
        event_active(c->kick, EV_TIMEOUT, 0);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 */

static bool header_text_ok(const char *s)
{
    for (; *s; s++) {
        if (*s == '\r' || *s == '\n' || *s == '\0') {
            return false;
        }
    }
    return true;
}

rt_otlp_client *rt_otlp_client_new(struct event_base *base, const rt_otlp_client_opts *opts,
                                   char *err, size_t errlen)
{
    rt_otlp_client *c = rt_calloc(1, sizeof *c);
    TAILQ_INIT(&c->queue);
    TAILQ_INIT(&c->all);
    TAILQ_INIT(&c->conns);
    c->base = base;
    if (opts == NULL || opts->endpoint == NULL || *opts->endpoint == '\0') {
        snprintf(err, errlen, "otlp client: endpoint is required");
        goto fail;
    }
    if (opts->protocol != RT_OTLP_CLIENT_HTTP && opts->protocol != RT_OTLP_CLIENT_GRPC) {
        snprintf(err, errlen, "otlp client %s: unknown protocol %d", opts->endpoint,
                 (int)opts->protocol);
        goto fail;
    }
    c->protocol = opts->protocol;
    c->endpoint = rt_strdup(opts->endpoint);
    if (rt_net_split_hostport(opts->endpoint, c->host, sizeof c->host, &c->port) != 0 ||
        c->host[0] == '\0' || c->port == 0) {
        snprintf(err, errlen, "otlp client endpoint \"%s\": expected host:port", opts->endpoint);
        goto fail;
    }
    c->server_name =
        rt_strdup(opts->server_name && *opts->server_name ? opts->server_name : c->host);
    if (opts->server_name && *opts->server_name) {
        c->authority = rt_sprintf("%s:%u", opts->server_name, c->port);
    } else {
        c->authority = rt_strdup(opts->endpoint);
    }
    c->path = rt_strdup(opts->path && *opts->path ? opts->path : "/v1/traces");
    if (c->path[0] != '/' || !header_text_ok(c->path) || strchr(c->path, ' ') != NULL) {
        snprintf(err, errlen, "otlp client %s: bad path \"%s\"", c->endpoint, c->path);
        goto fail;
    }
    c->gzip = opts->gzip;
    c->tls = opts->tls;
    c->dns = opts->dns;
    c->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    if (c->timeout_ms > 99999999) {
        c->timeout_ms = 99999999; /* grpc-timeout allows 8 digits */
    }
    snprintf(c->grpc_timeout, sizeof c->grpc_timeout, "%um", c->timeout_ms);
    c->max_conns = opts->max_conns ? opts->max_conns
                                   : (c->protocol == RT_OTLP_CLIENT_HTTP ? DEFAULT_HTTP_CONNS
                                                                         : DEFAULT_GRPC_CONNS);
    c->max_inflight = opts->max_inflight ? opts->max_inflight : DEFAULT_MAX_INFLIGHT;
    c->max_response = opts->max_response_bytes ? opts->max_response_bytes : DEFAULT_MAX_RESPONSE;
    rt_retry_policy_resolve(&opts->retry, &c->policy);
    c->rng = opts->rng_seed ? opts->rng_seed : rt_clock_mono_ns() ^ (uint64_t)(uintptr_t)c;

    c->headers = rt_calloc(opts->n_headers ? opts->n_headers : 1, sizeof *c->headers);
    for (size_t i = 0; i < opts->n_headers; i++) {
        const rt_otlp_client_header *h = &opts->headers[i];
        if (h->name == NULL || h->value == NULL || *h->name == '\0' || h->name[0] == ':' ||
            !header_text_ok(h->name) || !header_text_ok(h->value) || strchr(h->name, ':')) {
            snprintf(err, errlen, "otlp client %s: header %zu \"%s\" is not a valid header",
                     c->endpoint, i, h->name ? h->name : "(null)");
            goto fail;
        }
        char *name = rt_strdup(h->name);
        if (c->protocol == RT_OTLP_CLIENT_GRPC) {
            for (char *p = name; *p; p++) {
                *p = (char)tolower((unsigned char)*p); /* HTTP/2 requires lower case */
            }
        }
        c->headers[i].name = name;
        c->headers[i].value = rt_strdup(h->value);
        c->n_headers++;
    }

    rt_buf_printf(&c->http_head,
                  "POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ringtail-otlp-client\r\n"
                  "Content-Type: application/x-protobuf\r\n%s",
                  c->path, c->authority, c->gzip ? "Content-Encoding: gzip\r\n" : "");
    for (size_t i = 0; i < c->n_headers; i++) {
        rt_buf_printf(&c->http_head, "%s: %s\r\n", c->headers[i].name, c->headers[i].value);
    }
    c->kick = event_new(base, -1, 0, kick_cb, c);
    return c;
fail:
    rt_otlp_client_free(c);
    return NULL;
}

/* Accept one export whose wire payload is already in `body` (taken). */
static int export_body(rt_otlp_client *c, rt_buf *body, rt_otlp_client_done_fn done, void *arg)
{
    req *r = rt_calloc(1, sizeof *r);
    r->c = c;
    r->body = *body;
    rt_buf_init(body);
    r->done = done;
    r->arg = arg;
    r->start_ns = rt_clock_mono_ns();
    r->grpc_status = -1;
    r->res.grpc_status = -1;
    r->timer = event_new(c->base, -1, 0, req_timer_cb, r);
    rt_h2_frame_encode_prefix(r->prefix, c->gzip, (uint32_t)r->body.len);
    r->state = REQ_QUEUED;
    TAILQ_INSERT_TAIL(&c->queue, r, qlink);
    TAILQ_INSERT_TAIL(&c->all, r, alink);
    c->st.requests++;
    c->st.inflight++;
    kick(c);
    return 0;
}

static bool export_refused(rt_otlp_client *c, size_t len)
{
    if (c->closing || c->st.inflight >= c->max_inflight || len > UINT32_MAX) {
        c->st.refused++;
        return true;
    }
    return false;
}

int rt_otlp_client_export(rt_otlp_client *c, const uint8_t *pb, size_t len,
                          rt_otlp_client_done_fn done, void *arg)
{
    if (export_refused(c, len)) {
        return -1;
    }
    rt_buf body = RT_BUF_INIT;
    if (c->gzip) {
        rt_gzip_deflate(pb, len, RT_OTLP_CLIENT_GZIP_LEVEL, &body);
        if (body.len > UINT32_MAX) {
            rt_buf_free(&body);
            c->st.refused++;
            return -1;
        }
    } else {
        rt_buf_append(&body, pb, len);
    }
    return export_body(c, &body, done, arg);
}

int rt_otlp_client_export_buf(rt_otlp_client *c, rt_buf *pb, rt_otlp_client_done_fn done, void *arg)
{
    if (export_refused(c, pb->len)) {
        return -1;
    }
    if (c->gzip) {
        rt_buf body = RT_BUF_INIT;
        rt_gzip_deflate(pb->data, pb->len, RT_OTLP_CLIENT_GZIP_LEVEL, &body);
        if (body.len > UINT32_MAX) {
            rt_buf_free(&body);
            c->st.refused++;
            return -1;
        }
        rt_buf_free(pb);
        return export_body(c, &body, done, arg);
    }
    return export_body(c, pb, done, arg);
}

int rt_otlp_client_export_encoded(rt_otlp_client *c, rt_buf *body, rt_otlp_client_done_fn done,
                                  void *arg)
{
    if (export_refused(c, body->len)) {
        return -1;
    }
    return export_body(c, body, done, arg);
}

const rt_otlp_client_stats *rt_otlp_client_stats_get(const rt_otlp_client *c)
{
    return &c->st;
}

size_t rt_otlp_client_inflight(const rt_otlp_client *c)
{
    return (size_t)c->st.inflight;
}

void rt_otlp_client_free(rt_otlp_client *c)
{
    if (c == NULL) {
        return;
    }
    c->closing = true;
    conn *cn;
    while ((cn = TAILQ_FIRST(&c->conns)) != NULL) {
        conn_destroy(cn, NULL);
    }
    req *r;
    while ((r = TAILQ_FIRST(&c->all)) != NULL) {
        r->res.fail = RT_OTLP_CLIENT_FAIL_SHUTDOWN;
        c->st.failures[RT_OTLP_CLIENT_FAIL_SHUTDOWN]++;
        snprintf(r->res.message, sizeof r->res.message, "otlp client for %s shut down",
                 c->endpoint);
        req_finish(r, RT_OTLP_CLIENT_GAVE_UP);
    }
    if (c->kick != NULL) {
        event_free(c->kick);
    }
    for (size_t i = 0; i < c->n_headers; i++) {
        free((char *)c->headers[i].name);
        free((char *)c->headers[i].value);
    }
    free(c->headers);
    rt_buf_free(&c->http_head);
    free(c->endpoint);
    free(c->authority);
    free(c->path);
    free(c->server_name);
    free(c);
}
