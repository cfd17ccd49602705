/* http_server.c - OTLP/HTTP server: a small HTTP/1.1 server on libevent bufferevents that
 * accepts only POST /v1/traces (see http_server.h and otlp_server.h).
 *
 * Why not evhttp: evhttp answers an over-long body with its own HTML page (OTLP wants a
 * google.rpc.Status), frees a pending evhttp_request when its connection closes (our handler
 * answers asynchronously, possibly much later), and gives no say over how the body is buffered.
 * The subset of HTTP/1.1 an OTLP receiver needs is small, so we speak it ourselves:
 *   - request line + headers bounded to 64 KiB, Content-Length or chunked bodies, both bounded
 *     by max_body_bytes before anything is buffered (413 with a Status body, then close);
 *   - Expect: 100-continue, keep-alive (HTTP/1.1 default, HTTP/1.0 on request), pipelining
 *     (requests are answered in order; parsing pauses while the handler holds a call);
 *   - an idle timeout, and a short "lingering close" after a final response so a client still
 *     sending a rejected body reads our answer instead of a connection reset.
 *
 * Ownership: the server owns its connections (a list); a connection owns the request being
 * read (`call`) until it is complete. Then the call is handed to the handler and the
 * connection only points at it (`pending`); the call points back (`conn`), and whichever of the
 * two goes first clears the other's pointer. A call whose connection is gone is only freed by
 * rt_otlp_call_respond().
 *
 * Everything runs on the server's event-loop thread. The process must ignore SIGPIPE (writes to
 * a closed socket would otherwise kill it).
 */
#include "http_server.h"
#include "base64.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "net.h"
#include "otlp_call.h"
#include "otlp_ingest.h"
#include "otlp_json.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HTTP_DEFAULT_MAX_BODY ((size_t)64 * 1024 * 1024)
#define HTTP_DEFAULT_IDLE_S   120
#define HTTP_MAX_HEAD         65536   /* request line + headers, and separately chunk trailers */
#define HTTP_MAX_LINE         8192    /* one header line or chunk-size line */
#define HTTP_READ_HIGH_WM     262144  /* stop reading when this much input waits unparsed */
#define HTTP_BODY_LOWAT       65536   /* most a body read waits for (SO_RCVLOWAT) */
#define HTTP_DIRECT_READ      1048576 /* most one direct body read() asks for */
#define HTTP_LINGER_S         2       /* how long to drain input after a final response */
#define HTTP_RELISTEN_MS      100     /* pause after accept() fails (EMFILE) */
#define HTTP_PATH             "/v1/traces"

/* google.rpc.Code values for answers the server gives by itself. */
enum {
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_NOT_FOUND = 5,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_UNIMPLEMENTED = 12,
};

typedef enum conn_state {
    CS_REQLINE,    /* waiting for a request line */
    CS_HEADERS,    /* reading header lines */
    CS_BODY,       /* Content-Length body */
    CS_CHUNK_SIZE, /* chunked: size line */
    CS_CHUNK_DATA, /* chunked: data of one chunk */
    CS_CHUNK_END,  /* chunked: the CRLF after a chunk */
    CS_TRAILERS,   /* chunked: trailer lines up to the empty line */
    CS_WAIT,       /* the handler holds the call; input waits */
    CS_CLOSING,    /* the last response is queued; input is read and dropped */
} conn_state;

typedef struct http_conn http_conn;

/* One request, from its headers until rt_otlp_call_respond(). */
typedef struct http_call {
    rt_otlp_call base; /* first: rt_otlp_call * <-> http_call * */
    http_conn *conn;   /* NULL once the connection is gone; ref, not owned */
    bool json;
    rt_buf body;     /* as received */
    rt_buf scratch;  /* inflated */
    rt_buf scratch2; /* converted from JSON */
} http_call;

/* What the headers of the current request said. Reset before each request. */
typedef struct http_req {
    int minor; /* HTTP/1.<minor> */
    bool head; /* HEAD: the reply has no body */
    bool route_ok;
    bool post;
    bool conn_close;
    bool conn_keep;
    bool keep_alive; /* decided at the end of the headers */
    bool json;
    bool gzip;
    bool chunked;
    bool te_bad;
    bool have_cl;
    bool expect_continue;
    uint64_t content_length;
    uint64_t body_left;  /* left in the Content-Length body or the current chunk */
    uint64_t body_total; /* chunked: body bytes so far */
    size_t head_bytes;   /* request line + headers (or trailers) so far */
    char ctype[128];
    char cenc[64];
    /* A rejection decided from the headers; sent once the body has been read and dropped. */
    int rej_http;
    int rej_grpc;
    char rej_msg[256];
} http_req;

struct http_conn {
    rt_http_server *srv;
    struct bufferevent *bev;
    http_conn *prev, *next;
    conn_state state;
    bool tls;
    bool in_dispatch; /* inside the handler: respond must not re-enter conn_process */
    bool peer_eof;    /* the client half-closed while we owe it an answer */
    bool lingering;
    struct event *linger_ev;
    int rcvlowat; /* the socket's SO_RCVLOWAT as we last set it (the kernel's default is 1) */
    http_req req;
    http_call *call;    /* request being read; owned */
    http_call *pending; /* request the handler holds; not owned */
    char peer[64];
};

struct rt_http_server {
    struct event_base *base;
    struct evconnlistener *listener;
    struct event *relisten_ev;
    rt_otlp_server_opts opts; /* with defaults filled in */
    uint16_t port;
    http_conn *conns;
};

static void conn_process(http_conn *c);

/* ---- calls ------------------------------------------------------------------------------ */

static void call_free(http_call *call)
{
    rt_buf_free(&call->body);
    rt_buf_free(&call->scratch);
    rt_buf_free(&call->scratch2);
    free(call);
}

static void http_call_respond(rt_otlp_call *base, const rt_otlp_result *res);

static http_call *call_new(http_conn *c)
{
    http_call *call = rt_calloc(1, sizeof *call);
    call->base.respond = http_call_respond;
    call->base.transport = c->req.json ? RT_OTLP_HTTP_JSON : RT_OTLP_HTTP_PROTOBUF;
    snprintf(call->base.peer, sizeof call->base.peer, "%s", c->peer);
    call->conn = c;
    call->json = c->req.json;
    return call;
}

/* ---- connections -------------------------------------------------------------------------- */

/* Close and free a connection. A call the handler still holds is detached, not freed. */
static void conn_free(http_conn *c)
{
    rt_http_server *srv = c->srv;
    if (c->pending != NULL) {
        c->pending->conn = NULL;
    }
    if (c->call != NULL) {
        call_free(c->call);
    }
    if (c->prev != NULL) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next != NULL) {
        c->next->prev = c->prev;
    }
    if (c->linger_ev != NULL) {
        event_free(c->linger_ev);
    }
    bufferevent_free(c->bev);
    free(c);
}

static const char *reason_phrase(int code)
{
    switch (code) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

/* Queue a response for the current request. With `close` (or when the request did not ask to
 * keep the connection), the connection goes to CS_CLOSING; otherwise it is ready for the next
 * request. */
static void conn_send(http_conn *c, int code, bool json, const rt_buf *body, uint32_t retry_after,
                      bool allow, bool close)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    close = close || !c->req.keep_alive || c->peer_eof;

    char date[64];
    time_t now = (time_t)(rt_clock_wall_ns() / 1000000000ull);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);

    evbuffer_add_printf(out,
                        "HTTP/1.1 %d %s\r\nDate: %s\r\nContent-Type: %s\r\n"
                        "Content-Length: %zu\r\n",
                        code, reason_phrase(code), date,
                        json ? "application/json" : "application/x-protobuf", body->len);
    if (retry_after > 0) {
        evbuffer_add_printf(out, "Retry-After: %u\r\n", retry_after);
    }
    if (allow) {
        evbuffer_add_printf(out, "Allow: POST\r\n");
    }
    if (close) {
        evbuffer_add_printf(out, "Connection: close\r\n");
    } else if (c->req.minor == 0) {
        evbuffer_add_printf(out, "Connection: keep-alive\r\n");
    }
    evbuffer_add(out, "\r\n", 2);
    if (!c->req.head && body->len > 0) {
        evbuffer_add(out, body->data, body->len);
    }
    if (close) {
        c->state = CS_CLOSING;
    } else {
        memset(&c->req, 0, sizeof c->req);
        c->state = CS_REQLINE;
    }
}

/* Answer the current request with an error (google.rpc.Status body in the request's format)
 * and log it, rate-limited. `close` ends the connection after the answer: used when the rest of
 * the input can no longer be framed or is not worth reading. Frees a half-read call. */
static void conn_reject(http_conn *c, int http_code, int grpc_code, bool close, const char *msg)
{
    char quoted[300];
    RT_LOG_RL(RT_LOG_WARN, "otlp/http request rejected", "peer=%s code=%d reason=\"%s\"", c->peer,
              http_code, rt_log_quote(msg, quoted, sizeof quoted));
    if (c->call != NULL) {
        call_free(c->call);
        c->call = NULL;
    }
    rt_buf body = RT_BUF_INIT;
    if (c->req.json) {
        rt_otlp_json_status(grpc_code, msg, &body);
    } else {
        rt_otlp_ingest_encode_status(grpc_code, msg, 0, &body);
    }
    conn_send(c, http_code, c->req.json, &body, 0, http_code == 405, close);
    rt_buf_free(&body);
}

static void conn_rejectf(http_conn *c, int http_code, int grpc_code, bool close, const char *fmt,
                         ...) __attribute__((format(printf, 5, 6)));

static void conn_rejectf(http_conn *c, int http_code, int grpc_code, bool close, const char *fmt,
                         ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    conn_reject(c, http_code, grpc_code, close, msg);
}

/* Remember a rejection found in the headers; it is sent after the body has been dropped so the
 * connection can be kept. The first reason found wins. */
static void req_set_reject(http_req *r, int http_code, int grpc_code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void req_set_reject(http_req *r, int http_code, int grpc_code, const char *fmt, ...)
{
    if (r->rej_http != 0) {
        return;
    }
    r->rej_http = http_code;
    r->rej_grpc = grpc_code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->rej_msg, sizeof r->rej_msg, fmt, ap);
    va_end(ap);
}

/* ---- the answer from the handler ------------------------------------------------------------ */

static void http_call_respond(rt_otlp_call *base, const rt_otlp_result *res)
{
    http_call *call = (http_call *)base;
    http_conn *c = call->conn;
    if (c != NULL) {
        rt_buf body = RT_BUF_INIT;
        uint32_t retry = 0;
        int code = rt_otlp_ingest_http_code(res);
        if (res->status == RT_OTLP_THROTTLED || res->status == RT_OTLP_UNAVAILABLE) {
            retry = res->retry_after_s ? res->retry_after_s : 1;
        }
        rt_otlp_ingest_encode_http_body(res, call->json, &body);
        c->pending = NULL;
        conn_send(c, code, call->json, &body, retry, false, false);
        rt_buf_free(&body);
        if (!c->in_dispatch) {
            /* Answered later from elsewhere in the loop: go on with pipelined input, and read
             * again in case the input high-water mark had paused reading. */
            if (!c->peer_eof) {
                bufferevent_enable(c->bev, EV_READ);
            }
            conn_process(c);
        }
    }
    call_free(call);
}

/* ---- request parsing ---------------------------------------------------------------------- */

static void trim(char **s, char **end)
{
    while (*s < *end && (**s == ' ' || **s == '\t')) {
        (*s)++;
    }
    while (*end > *s && ((*end)[-1] == ' ' || (*end)[-1] == '\t')) {
        (*end)--;
    }
}

/* Copy a header value, trimmed, into `out`. */
static void copy_value(char *out, size_t cap, char *v, char *end)
{
    trim(&v, &end);
    size_t n = (size_t)(end - v);
    if (n >= cap) {
        n = cap - 1;
    }
    memcpy(out, v, n);
    out[n] = '\0';
}

/* Does the comma-separated header value contain `token` (case-insensitive)? */
static bool has_token(char *v, char *end, const char *token)
{
    size_t tl = strlen(token);
    while (v < end) {
        char *comma = memchr(v, ',', (size_t)(end - v));
        char *te = comma ? comma : end;
        char *ts = v;
        trim(&ts, &te);
        if ((size_t)(te - ts) == tl && strncasecmp(ts, token, tl) == 0) {
            return true;
        }
        v = comma ? comma + 1 : end;
    }
    return false;
}

/* Parse "METHOD SP target SP HTTP/1.x". Returns 0, or -1 after rejecting (connection closes). */
static int parse_request_line(http_conn *c, char *line)
{
    http_req *r = &c->req;
    char *sp1 = strchr(line, ' ');
    char *sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
    if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1 || strchr(sp2 + 1, ' ')) {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "malformed HTTP request line");
        return -1;
    }
    *sp1 = '\0';
    *sp2 = '\0';
    const char *method = line;
    char *target = sp1 + 1;
    const char *version = sp2 + 1;
    if (strcmp(version, "HTTP/1.1") == 0) {
        r->minor = 1;
    } else if (strcmp(version, "HTTP/1.0") == 0) {
        r->minor = 0;
    } else {
        conn_rejectf(c, 505, GRPC_UNIMPLEMENTED, true,
                     "HTTP version \"%.32s\" not supported; use HTTP/1.1", version);
        return -1;
    }
    char *query = strchr(target, '?');
    if (query != NULL) {
        *query = '\0';
    }
    r->post = strcmp(method, "POST") == 0;
    r->head = strcmp(method, "HEAD") == 0;
    r->route_ok = strcmp(target, HTTP_PATH) == 0;
    if (!r->route_ok) {
        req_set_reject(r, 404, GRPC_NOT_FOUND, "path \"%.100s\" not found; OTLP traces go to %s",
                       target, HTTP_PATH);
    } else if (!r->post) {
        req_set_reject(r, 405, GRPC_UNIMPLEMENTED, "method %.16s not allowed on %s; use POST",
                       method, HTTP_PATH);
    }
    return 0;
}

/* One "Name: value" line. Returns 0, or -1 after rejecting (connection closes). */
static int parse_header(http_conn *c, char *line)
{
    http_req *r = &c->req;
    if (line[0] == ' ' || line[0] == '\t') {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "folded HTTP header lines not allowed");
        return -1;
    }
    char *colon = strchr(line, ':');
    if (colon == NULL || colon == line) {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "malformed HTTP header line");
        return -1;
    }
    size_t nl = (size_t)(colon - line);
    char *v = colon + 1;
    char *end = v + strlen(v);
#define HDR_IS(name) (nl == sizeof(name) - 1 && strncasecmp(line, name, nl) == 0)
    if (HDR_IS("Content-Type")) {
        copy_value(r->ctype, sizeof r->ctype, v, end);
    } else if (HDR_IS("Content-Encoding")) {
        copy_value(r->cenc, sizeof r->cenc, v, end);
    } else if (HDR_IS("Content-Length")) {
        trim(&v, &end);
        uint64_t n = 0;
        if (v == end || end - v > 18) {
            goto bad_cl;
        }
        for (char *p = v; p < end; p++) {
            if (*p < '0' || *p > '9') {
                goto bad_cl;
            }
            n = n * 10 + (uint64_t)(*p - '0');
        }
        if (r->have_cl && r->content_length != n) {
            goto bad_cl;
        }
        r->have_cl = true;
        r->content_length = n;
    } else if (HDR_IS("Transfer-Encoding")) {
        char val[64];
        copy_value(val, sizeof val, v, end);
        if (strcasecmp(val, "chunked") == 0 && !r->chunked) {
            r->chunked = true;
        } else {
            r->te_bad = true;
        }
    } else if (HDR_IS("Connection")) {
        r->conn_close |= has_token(v, end, "close");
        r->conn_keep |= has_token(v, end, "keep-alive");
    } else if (HDR_IS("Expect")) {
        r->expect_continue = has_token(v, end, "100-continue");
    }
#undef HDR_IS
    return 0;
bad_cl:
    conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "invalid Content-Length header");
    return -1;
}

/* Media type of a Content-Type value (before any ';' parameters), compared case-insensitively. */
static bool media_type_is(const char *ctype, const char *want)
{
    size_t wl = strlen(want);
    if (strncasecmp(ctype, want, wl) != 0) {
        return false;
    }
    const char *p = ctype + wl;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    return *p == '\0' || *p == ';';
}

static void request_done(http_conn *c);

/* The empty line after the headers: decide what to do with the request. */
static void headers_done(http_conn *c)
{
    http_req *r = &c->req;
    size_t max = c->srv->opts.max_body_bytes;
    r->keep_alive = r->minor == 1 ? !r->conn_close : (r->conn_keep && !r->conn_close);

    if (media_type_is(r->ctype, "application/x-protobuf")) {
        r->json = false;
    } else if (media_type_is(r->ctype, "application/json")) {
        r->json = true;
    } else if (r->ctype[0] == '\0') {
        /* 415, as the OTel Collector answers (clients key on it); the body is not read. */
        req_set_reject(r, 415, GRPC_INVALID_ARGUMENT,
                       "missing Content-Type; use application/x-protobuf or application/json");
    } else {
        req_set_reject(r, 415, GRPC_INVALID_ARGUMENT,
                       "unsupported Content-Type \"%.100s\"; use application/x-protobuf or "
                       "application/json",
                       r->ctype);
    }
    if (r->cenc[0] == '\0' || strcasecmp(r->cenc, "identity") == 0) {
        r->gzip = false;
    } else if (strcasecmp(r->cenc, "gzip") == 0 || strcasecmp(r->cenc, "x-gzip") == 0) {
        r->gzip = true;
    } else {
        req_set_reject(r, 400, GRPC_INVALID_ARGUMENT,
                       "unsupported Content-Encoding \"%.60s\"; use gzip or identity", r->cenc);
    }

    /* Framing problems: the rest of the input cannot be trusted, so answer and close. */
    if (r->te_bad) {
        conn_reject(c, 501, GRPC_UNIMPLEMENTED, true,
                    "unsupported Transfer-Encoding; only chunked is accepted");
        return;
    }
    if (r->chunked && r->have_cl) {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true,
                    "both Content-Length and Transfer-Encoding given");
        return;
    }
    if (r->have_cl && r->content_length > max) {
        conn_rejectf(c, 413, GRPC_RESOURCE_EXHAUSTED, true,
                     "body of %llu bytes exceeds the limit of %zu bytes",
                     (unsigned long long)r->content_length, max);
        return;
    }
    bool has_body = r->chunked || r->content_length > 0;
    if (r->rej_http != 0 && r->expect_continue && has_body) {
        /* The client waits for 100 before sending; answer now and end the connection, whose
         * framing is then up to the client's choice. */
        conn_reject(c, r->rej_http, r->rej_grpc, true, r->rej_msg);
        return;
    }
    if (r->rej_http == 0) {
        c->call = call_new(c);
        if (r->expect_continue && has_body && r->minor == 1) {
            evbuffer_add_printf(bufferevent_get_output(c->bev), "HTTP/1.1 100 Continue\r\n\r\n");
        }
    }
    if (r->chunked) {
        c->state = CS_CHUNK_SIZE;
    } else if (r->content_length > 0) {
        r->body_left = r->content_length;
        if (c->call != NULL) {
            /* The body in one allocation instead of doubling as reads arrive; up to 4 MiB at
             * once, so a large declared length costs memory only as its bytes come. */
            size_t want = (size_t)r->content_length;
            rt_buf_reserve(&c->call->body, want < ((size_t)4 << 20) ? want : (size_t)4 << 20);
        }
        c->state = CS_BODY;
    } else {
        request_done(c);
    }
}

/* The whole body is in: answer a rejection found earlier, or decode and hand to the handler. */
static void request_done(http_conn *c)
{
    http_req *r = &c->req;
    if (r->rej_http != 0) {
        conn_reject(c, r->rej_http, r->rej_grpc, false, r->rej_msg);
        return;
    }
    http_call *call = c->call;
    rt_otlp_result err;
    const uint8_t *pb = NULL;
    size_t pb_len = 0;
    size_t spans = 0;
    if (rt_otlp_ingest_decode(call->body.data, call->body.len, r->gzip, r->json,
                              c->srv->opts.max_body_bytes, c->srv->opts.handler_checks,
                              &call->scratch, &call->scratch2, &pb, &pb_len, &spans, &err) != 0) {
        int code = rt_otlp_ingest_http_code(&err);
        conn_reject(c, code, rt_otlp_ingest_grpc_code(&err), false, err.message);
        return;
    }
    c->call = NULL;
    c->pending = call;
    c->state = CS_WAIT;
    c->in_dispatch = true;
    c->srv->opts.handler(&call->base, pb, pb_len, spans, c->srv->opts.handler_arg);
    c->in_dispatch = false;
    /* `call` may be freed now (answered inside the handler). */
}

/* Take one line from the input. Returns 1 with the line (NUL-terminated, without CRLF) in
 * `line`, 0 if no full line is there yet, -1 after rejecting an over-long or binary line. */
static int read_line(http_conn *c, struct evbuffer *in, char *line, size_t cap, size_t budget)
{
    size_t eol_len = 0;
    struct evbuffer_ptr p = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
    size_t limit = cap - 1 < budget ? cap - 1 : budget;
    bool in_head = c->state == CS_REQLINE || c->state == CS_HEADERS || c->state == CS_TRAILERS;
    if (p.pos < 0 || (size_t)p.pos > limit) {
        if (p.pos < 0 && evbuffer_get_length(in) <= limit) {
            return 0;
        }
        if (in_head) {
            conn_rejectf(c, 431, GRPC_INVALID_ARGUMENT, true, "HTTP request head exceeds %d bytes",
                         HTTP_MAX_HEAD);
        } else {
            conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "malformed chunk size line");
        }
        return -1;
    }
    size_t n = (size_t)p.pos;
    evbuffer_remove(in, line, n);
    evbuffer_drain(in, eol_len);
    line[n] = '\0';
    c->req.head_bytes += n + eol_len;
    if (memchr(line, '\0', n) != NULL) {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "NUL byte in HTTP request head");
        return -1;
    }
    return 1;
}

/* Chunk-size line: hex digits, optional ";extension". */
static void chunk_size_line(http_conn *c, char *line)
{
    http_req *r = &c->req;
    size_t max = c->srv->opts.max_body_bytes;
    char *p = line;
    uint64_t n = 0;
    int digits = 0;
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    for (; *p; p++, digits++) {
        int d = rt_hex_digit((unsigned char)*p);
        if (d < 0) {
            break;
        }
        if (digits >= 15) {
            digits = -1;
            break;
        }
        n = n * 16 + (uint64_t)d;
    }
    while (*p == ' ' || *p == '\t') {
        p++;
    }
    if (digits <= 0 || (*p != '\0' && *p != ';')) {
        conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true, "malformed chunk size line");
        return;
    }
    if (n == 0) {
        r->head_bytes = 0;
        c->state = CS_TRAILERS;
        return;
    }
    if (r->body_total + n > max) {
        if (r->rej_http != 0) {
            /* Already rejected; do not keep dropping an endless body. */
            conn_reject(c, r->rej_http, r->rej_grpc, true, r->rej_msg);
        } else {
            conn_rejectf(c, 413, GRPC_RESOURCE_EXHAUSTED, true,
                         "chunked body exceeds the limit of %zu bytes", max);
        }
        return;
    }
    r->body_total += n;
    r->body_left = n;
    c->state = CS_CHUNK_DATA;
}

/* Move body bytes from the input to the call (or drop them if the request is rejected). */
static void take_body(http_conn *c, struct evbuffer *in)
{
    http_req *r = &c->req;
    size_t avail = evbuffer_get_length(in);
    size_t n = avail < r->body_left ? avail : (size_t)r->body_left;
    if (c->call != NULL) {
        uint8_t *dst = rt_buf_reserve(&c->call->body, n);
        evbuffer_remove(in, dst, n);
        c->call->body.len += n;
    } else {
        evbuffer_drain(in, n);
    }
    r->body_left -= n;
}

/* A Content-Length body is streaming in over plaintext: read straight from the socket, with a
 * receive low-water mark. Under TLS OpenSSL may already hold part of the body's ciphertext. */
static bool plain_body(const http_conn *c)
{
    return !c->tls && c->state == CS_BODY;
}

/* Read what the socket has of a plaintext Content-Length body straight into the call's buffer.
 * libevent 2.1 reads a socket 4 KiB at a time into its own buffer (evbuffer_read caps every
 * read there, whatever bufferevent_set_max_single_read says), which for a 110 KiB request is
 * 28 reads, 28 FIONREAD ioctls and a copy of every byte; this is one read per wake-up, into
 * the buffer the body is parsed from. EAGAIN leaves the rest for the next wake-up; EOF and
 * errors are left for the bufferevent's own read to find and report. */
static void read_body_direct(http_conn *c)
{
    http_req *r = &c->req;
    evutil_socket_t fd = bufferevent_getfd(c->bev);
    while (fd >= 0 && r->body_left > 0) {
        size_t want = r->body_left < HTTP_DIRECT_READ ? (size_t)r->body_left : HTTP_DIRECT_READ;
        uint8_t *dst = rt_buf_reserve(&c->call->body, want);
        ssize_t n = read(fd, dst, want);
        if (n <= 0) {
            return;
        }
        c->call->body.len += (size_t)n;
        r->body_left -= (uint64_t)n;
        if ((size_t)n < want) {
            return; /* the socket is drained */
        }
    }
}

/* Parse as much input as the state allows. Never frees the connection (only libevent callbacks
 * and rt_http_server_free do). */
static void conn_parse(http_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    char line[HTTP_MAX_LINE + 1];
    for (;;) {
        switch (c->state) {
        case CS_WAIT:
            return;
        case CS_CLOSING:
            evbuffer_drain(in, evbuffer_get_length(in));
            return;
        case CS_BODY:
        case CS_CHUNK_DATA:
            if (evbuffer_get_length(in) > 0) {
                take_body(c, in);
            }
            if (c->req.body_left > 0 && plain_body(c) && c->call != NULL) {
                read_body_direct(c);
            }
            if (c->req.body_left > 0) {
                return; /* the input is empty: wait for more */
            }
            if (c->state == CS_BODY) {
                request_done(c);
            } else {
                c->state = CS_CHUNK_END;
            }
            break;
        case CS_REQLINE:
        case CS_HEADERS:
        case CS_TRAILERS:
        case CS_CHUNK_SIZE:
        case CS_CHUNK_END: {
            size_t budget = HTTP_MAX_LINE;
            if (c->state != CS_CHUNK_SIZE && c->state != CS_CHUNK_END) {
                budget = c->req.head_bytes < HTTP_MAX_HEAD ? HTTP_MAX_HEAD - c->req.head_bytes : 0;
            }
            int rc = read_line(c, in, line, sizeof line, budget);
            if (rc == 0) {
                return;
            }
            if (rc < 0) {
                break;
            }
            if (c->state == CS_REQLINE) {
                if (line[0] == '\0') {
                    c->req.head_bytes = 0; /* stray CRLF between requests */
                } else if (parse_request_line(c, line) == 0) {
                    c->state = CS_HEADERS;
                }
            } else if (c->state == CS_HEADERS) {
                if (line[0] == '\0') {
                    headers_done(c);
                } else {
                    parse_header(c, line);
                }
            } else if (c->state == CS_CHUNK_SIZE) {
                chunk_size_line(c, line);
            } else if (c->state == CS_CHUNK_END) {
                if (line[0] != '\0') {
                    conn_reject(c, 400, GRPC_INVALID_ARGUMENT, true,
                                "chunk data longer than its size line says");
                } else {
                    c->state = CS_CHUNK_SIZE;
                }
            } else if (line[0] == '\0') { /* CS_TRAILERS */
                request_done(c);
            }
            break;
        }
        }
    }
}

/* Parse what input there is, then tell the kernel how much to gather before the socket is
 * readable again. While a plaintext body streams in, the socket would otherwise wake us for every
 * few kilobytes the client's writes deliver; with a receive low-water mark of what is left of
 * the body (at most 64 KiB) a 110 KiB request takes two or three wake-ups. Never frees the
 * connection, so callers may use `c` afterwards. */
static void conn_process(http_conn *c)
{
    conn_parse(c);
    int want = 1;
    if (plain_body(c) && c->req.body_left > 1) {
        want = c->req.body_left < HTTP_BODY_LOWAT ? (int)c->req.body_left : HTTP_BODY_LOWAT;
    }
    if (want != c->rcvlowat) {
        evutil_socket_t fd = bufferevent_getfd(c->bev);
        if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVLOWAT, &want, sizeof want) == 0) {
            c->rcvlowat = want;
        }
    }
}

/* ---- libevent callbacks ------------------------------------------------------------------- */

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    conn_process(arg);
}

static void linger_done_cb(evutil_socket_t fd, short what, void *arg)
{
    conn_free(arg);
}

/* Output drained. After a final response: half-close (plaintext) and keep reading and dropping
 * input for a moment, so the client sees our answer rather than a reset. */
static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    http_conn *c = arg;
    if (c->state != CS_CLOSING || c->lingering ||
        evbuffer_get_length(bufferevent_get_output(bev)) > 0) {
        return;
    }
    if (c->peer_eof) {
        conn_free(c);
        return;
    }
    c->lingering = true;
    if (!c->tls) {
        shutdown(bufferevent_getfd(bev), SHUT_WR);
    }
    c->linger_ev = evtimer_new(c->srv->base, linger_done_cb, c);
    struct timeval tv = {HTTP_LINGER_S, 0};
    evtimer_add(c->linger_ev, &tv);
    bufferevent_enable(bev, EV_READ);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    http_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        return; /* TLS handshake finished */
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->state == CS_WAIT && (what & BEV_EVENT_READING)) {
            /* The client is waiting for our answer, not idle: keep the connection. */
            bufferevent_enable(bev, EV_READ);
            return;
        }
        conn_free(c);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR)) {
        /* The client stopped sending (maybe only half-closed). Answers it is owed - one the
         * handler still holds, or ones queued but not yet written - are still delivered; the
         * write callback closes once they are out. */
        bool owed = c->state == CS_WAIT;
        bool unsent = evbuffer_get_length(bufferevent_get_output(bev)) > 0;
        if (owed || unsent) {
            c->peer_eof = true;
            bufferevent_disable(bev, EV_READ);
            if (!owed) {
                c->state = CS_CLOSING;
            }
            return;
        }
    }
    if (c->tls && (what & BEV_EVENT_ERROR)) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e != 0) {
            char reason[256];
            ERR_error_string_n(e, reason, sizeof reason);
            RT_LOG_RL(RT_LOG_WARN, "otlp/http tls error", "peer=%s reason=\"%s\"", c->peer, reason);
        }
    }
    conn_free(c);
}

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    rt_http_server *srv = arg;
    http_conn *c = rt_calloc(1, sizeof *c);
    c->srv = srv;
    rt_net_addr_str(sa, c->peer, sizeof c->peer);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (srv->opts.tls != NULL) {
        SSL *ssl = SSL_new(srv->opts.tls);
        if (ssl == NULL) {
            RT_LOG_RL(RT_LOG_ERROR, "otlp/http tls: SSL_new failed", "peer=%s", c->peer);
            close(fd);
            free(c);
            return;
        }
        c->tls = true;
        c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (c->bev != NULL) {
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        }
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    }
    if (c->bev == NULL) {
        RT_LOG_RL(RT_LOG_ERROR, "otlp/http cannot create connection", "peer=%s", c->peer);
        close(fd);
        free(c);
        return;
    }
    c->state = CS_REQLINE;
    c->rcvlowat = 1;
    c->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    struct timeval idle = {(time_t)srv->opts.idle_timeout_s, 0};
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, HTTP_READ_HIGH_WM);
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void relisten_cb(evutil_socket_t fd, short what, void *arg)
{
    rt_http_server *srv = arg;
    evconnlistener_enable(srv->listener);
}

/* accept() failed (typically EMFILE): log, and pause accepting briefly instead of spinning. */
static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    rt_http_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    RT_LOG_RL(RT_LOG_ERROR, "otlp/http accept failed", "port=%u reason=\"%s\"", srv->port,
              evutil_socket_error_to_string(e));
    evconnlistener_disable(lev);
    struct timeval tv = {0, HTTP_RELISTEN_MS * 1000};
    evtimer_add(srv->relisten_ev, &tv);
}

/* ---- public API --------------------------------------------------------------------------- */

/* Bind `listen` and start accepting on `base`. The caller keeps ownership of opts->tls (it must
 * outlive the server). Returns NULL with a message in `err` if the address cannot be bound. */
rt_http_server *rt_http_server_new(struct event_base *base, const char *listen,
                                   const rt_otlp_server_opts *opts, char *err, size_t errlen)
{
    if (opts == NULL || opts->handler == NULL) {
        snprintf(err, errlen, "otlp/http server on %s: no handler", listen);
        return NULL;
    }
    int fd = rt_net_listen(listen, opts->reuseport, err, errlen);
    if (fd < 0) {
        return NULL;
    }
    rt_http_server *srv = rt_calloc(1, sizeof *srv);
    srv->base = base;
    srv->opts = *opts;
    if (srv->opts.max_body_bytes == 0) {
        srv->opts.max_body_bytes = HTTP_DEFAULT_MAX_BODY;
    }
    if (srv->opts.idle_timeout_s == 0) {
        srv->opts.idle_timeout_s = HTTP_DEFAULT_IDLE_S;
    }
    srv->port = rt_net_local_port(fd);
    srv->relisten_ev = evtimer_new(base, relisten_cb, srv);
    srv->listener = evconnlistener_new(base, accept_cb, srv,
                                       LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1, fd);
    if (srv->listener == NULL || srv->relisten_ev == NULL) {
        snprintf(err, errlen, "otlp/http server on %s: cannot create listener", listen);
        if (srv->listener == NULL) {
            close(fd);
        }
        goto fail;
    }
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    return srv;
fail:
    rt_http_server_free(srv);
    return NULL;
}

uint16_t rt_http_server_port(const rt_http_server *srv)
{
    return srv->port;
}

/* Stop listening and close every connection. Calls the handler still holds are detached: their
 * rt_otlp_call_respond() just frees them. Must not be called from inside the handler. Call it
 * on the loop's thread while the loop still runs (or run the loop once afterwards): libevent
 * finishes freeing a TLS bufferevent from the loop, so freeing after the loop stopped for good
 * leaks those connections' memory. */
void rt_http_server_free(rt_http_server *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->listener != NULL) {
        evconnlistener_free(srv->listener);
    }
    if (srv->relisten_ev != NULL) {
        event_free(srv->relisten_ev);
    }
    while (srv->conns != NULL) {
        conn_free(srv->conns);
    }
    free(srv);
}
