/* grpc_server.c - OTLP/gRPC server: TraceService/Export over HTTP/2 (nghttp2 on libevent
 * bufferevents), plain h2c with prior knowledge or TLS with ALPN "h2" (see grpc_server.h).
 *
 * Ownership:
 *   rt_grpc_server  owns the listener and the list of connections (grpc_conn).
 *   grpc_conn       owns its bufferevent, its nghttp2 session and the list of its open
 *                   streams (grpc_stream); the session's stream user data points at them.
 *   grpc_stream     embeds the rt_otlp_call handed to the owner's handler. While the handler
 *                   holds the call (state ST_HANDLER) the stream outlives its HTTP/2 stream and
 *                   even its connection: it is then "detached" (conn == NULL) and the eventual
 *                   rt_otlp_call_respond() only frees it.
 *
 * Request flow: HEADERS (checked when the header block ends: method, content-type, path) ->
 * DATA chunks fed to an rt_h2_frame_reader (the 4-byte length is checked against the size limit
 * before anything is buffered) -> END_STREAM: exactly one message, inflate + validate through
 * rt_otlp_ingest_decode() -> handler. Errors found by the server are answered at once with a
 * trailers-only response and, if the client is still sending, RST_STREAM(NO_ERROR) after it,
 * so the rest of the body is not read; the connection stays usable.
 */
#include "grpc_server.h"

#include "base64.h"

#include "alloc.h"
#include "buf.h"
#include "h2_frame.h"
#include "log.h"
#include "net.h"
#include "otlp_call.h"
#include "otlp_ingest.h"
#include "tls.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/evp.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define DEFAULT_MAX_BODY       ((size_t)64 << 20)
#define DEFAULT_IDLE_S         120
#define MAX_CONCURRENT_STREAMS 1024
#define STREAM_WINDOW          (1 << 20)  /* per-stream receive window we advertise */
#define CONN_WINDOW            (16 << 20) /* connection receive window */
#define MAX_HEADER_LIST        (64 * 1024)
/* The nghttp2 send callback stops (WOULDBLOCK) once this much output is queued, so a client
 * that does not read cannot make us buffer without bound; write_cb resumes sending. */
#define OUTPUT_HIGH_WATER (256 * 1024)

static const char EXPORT_PATH[] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

typedef enum stream_state {
    ST_RECEIVING = 0, /* reading the request */
    ST_HANDLER,       /* the handler holds the call; waiting for rt_otlp_call_respond() */
    ST_ANSWERED,      /* an answer was submitted; freed when nghttp2 closes the stream */
} stream_state;

typedef enum stream_encoding {
    ENC_NONE = 0, /* no grpc-encoding header */
    ENC_IDENTITY,
    ENC_GZIP,
    ENC_OTHER,
} stream_encoding;

typedef struct grpc_conn grpc_conn;

typedef struct grpc_stream {
    rt_otlp_call call; /* first member: rt_otlp_call_respond() casts back to grpc_stream */
    grpc_conn *conn;   /* NULL once detached from its connection */
    struct grpc_stream *prev, *next; /* in conn->streams */
    int32_t id;
    stream_state state;
    bool rst_after_answer; /* client still sending when we answered: RST_STREAM(NO_ERROR) */
    bool method_post;
    bool path_ok;
    bool ct_seen;
    bool ct_ok;
    stream_encoding encoding;
    char encoding_name[32];
    rt_h2_frame_reader reader;
    rt_buf msg;     /* the request message as received */
    rt_buf scratch; /* rt_otlp_ingest_decode() work space; pb may point into these */
    rt_buf scratch2;
    rt_buf resp; /* DATA to send: the 5-byte prefixed response, or an HTTP error body */
    size_t resp_off;
    bool resp_trailers; /* send grpc-status 0 trailers after resp */
} grpc_stream;

struct grpc_conn {
    rt_grpc_server *srv;
    struct bufferevent *bev;
    nghttp2_session *session; /* NULL until the TLS handshake chose h2 */
    grpc_conn *prev, *next;   /* in srv->conns */
    grpc_stream *streams;     /* open streams */
    bool tls;
    bool in_recv; /* inside nghttp2_session_mem_recv(): do not send or free from callbacks */
    char peer[64];
};

struct rt_grpc_server {
    struct event_base *base; /* ref */
    struct evconnlistener *listener;
    nghttp2_session_callbacks *callbacks;
    nghttp2_option *h2opt;
    rt_otlp_server_opts opts; /* copy with defaults filled in; opts.tls is a ref */
    uint16_t port;
    grpc_conn *conns;
};

static void conn_free(grpc_conn *c);
static int conn_send(grpc_conn *c);

/* ---- streams ---------------------------------------------------------------------------- */

static void stream_unlink(grpc_stream *st)
{
    grpc_conn *c = st->conn;
    if (c == NULL) {
        return;
    }
    if (st->prev) {
        st->prev->next = st->next;
    } else {
        c->streams = st->next;
    }
    if (st->next) {
        st->next->prev = st->prev;
    }
    st->prev = st->next = NULL;
    st->conn = NULL;
}

static void stream_free(grpc_stream *st)
{
    stream_unlink(st);
    rt_buf_free(&st->msg);
    rt_buf_free(&st->scratch);
    rt_buf_free(&st->scratch2);
    rt_buf_free(&st->resp);
    free(st);
}

/* nghttp2 data source: st->resp from resp_off, then (for gRPC OK) the grpc-status trailer. */
static ssize_t resp_read_cb(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                            size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                            void *user_data)
{
    grpc_stream *st = source->ptr;
    size_t left = st->resp.len - st->resp_off;
    size_t n = left < length ? left : length;
    if (n > 0) {
        memcpy(buf, st->resp.data + st->resp_off, n);
        st->resp_off += n;
    }
    if (st->resp_off == st->resp.len) {
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        if (st->resp_trailers) {
            static const uint8_t k[] = "grpc-status", v[] = "0";
            nghttp2_nv tr = {(uint8_t *)k, (uint8_t *)v, sizeof k - 1, sizeof v - 1,
                             NGHTTP2_NV_FLAG_NONE};
            if (nghttp2_submit_trailer(session, stream_id, &tr, 1) == 0) {
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            }
        }
    }
    return (ssize_t)n;
}

static nghttp2_nv make_nv(const char *name, const char *value)
{
    nghttp2_nv nv = {(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                     NGHTTP2_NV_FLAG_NONE};
    return nv;
}

/* Mark the stream answered; if the client has not finished sending, arrange for RST_STREAM
 * (NO_ERROR) once the answer has gone out (see on_frame_send_cb). */
static void stream_mark_answered(grpc_stream *st)
{
    st->state = ST_ANSWERED;
    if (nghttp2_session_get_stream_remote_close(st->conn->session, st->id) == 0) {
        st->rst_after_answer = true;
    }
}

/* Submit a trailers-only gRPC answer: :status 200, grpc-status `code`, grpc-message `message`
 * (percent-encoded), and with retry_s > 0 a grpc-status-details-bin carrying RetryInfo. */
static void stream_answer_grpc_error(grpc_stream *st, int code, const char *message,
                                     uint32_t retry_s, bool accept_encoding)
{
    char status[16];
    char msg[3 * sizeof(((rt_otlp_result *)0)->message) + 1];
    char *details = NULL;
    nghttp2_nv nv[6];
    size_t n = 0;
    snprintf(status, sizeof status, "%d", code);
    rt_h2_frame_percent_encode(message ? message : "", msg, sizeof msg);
    nv[n++] = make_nv(":status", "200");
    nv[n++] = make_nv("content-type", "application/grpc");
    nv[n++] = make_nv("grpc-status", status);
    if (msg[0]) {
        nv[n++] = make_nv("grpc-message", msg);
    }
    if (retry_s > 0) {
        rt_buf sb = RT_BUF_INIT;
        rt_otlp_ingest_encode_status(code, message ? message : "", retry_s, &sb);
        /* gRPC sends -bin metadata as unpadded base64. */
        rt_buf b64 = RT_BUF_INIT;
        rt_base64_encode(&b64, sb.data ? sb.data : (const uint8_t *)"", sb.len, false);
        rt_buf_append_byte(&b64, '\0');
        details = (char *)rt_buf_steal(&b64, NULL);
        rt_buf_free(&sb);
        nv[n++] = make_nv("grpc-status-details-bin", details);
    }
    if (accept_encoding) {
        nv[n++] = make_nv("grpc-accept-encoding", "identity,gzip");
    }
    nghttp2_submit_response(st->conn->session, st->id, nv, n, NULL);
    free(details);
    stream_mark_answered(st);
}

/* Submit a plain HTTP error (not gRPC): `status` with a text/plain body `message`. */
static void stream_answer_http_error(grpc_stream *st, const char *status, const char *message)
{
    nghttp2_nv nv[2] = {make_nv(":status", status), make_nv("content-type", "text/plain")};
    nghttp2_data_provider prd;
    rt_buf_reset(&st->resp);
    rt_buf_append_str(&st->resp, message);
    rt_buf_append_byte(&st->resp, '\n');
    st->resp_off = 0;
    st->resp_trailers = false;
    prd.source.ptr = st;
    prd.read_callback = resp_read_cb;
    nghttp2_submit_response(st->conn->session, st->id, nv, 2, &prd);
    stream_mark_answered(st);
}

/* Submit the gRPC OK answer: HEADERS, DATA (prefixed ExportTraceServiceResponse), trailers. */
static void stream_answer_ok(grpc_stream *st, const rt_otlp_result *res)
{
    nghttp2_nv nv[2] = {make_nv(":status", "200"), make_nv("content-type", "application/grpc")};
    nghttp2_data_provider prd;
    rt_buf_reset(&st->resp);
    rt_buf_reserve(&st->resp, RT_H2_FRAME_PREFIX_LEN);
    st->resp.len = RT_H2_FRAME_PREFIX_LEN;
    rt_otlp_ingest_encode_response(res, &st->resp);
    rt_h2_frame_encode_prefix(st->resp.data, false,
                              (uint32_t)(st->resp.len - RT_H2_FRAME_PREFIX_LEN));
    st->resp_off = 0;
    st->resp_trailers = true;
    prd.source.ptr = st;
    prd.read_callback = resp_read_cb;
    nghttp2_submit_response(st->conn->session, st->id, nv, 2, &prd);
    stream_mark_answered(st);
}

/* A request the server refuses by itself (the handler never sees it): log (rate-limited) and
 * answer with gRPC status `code`. */
static void stream_reject(grpc_stream *st, int code, uint32_t retry_s, bool accept_encoding,
                          const char *why)
{
    char q[300];
    RT_LOG_RL(RT_LOG_WARN, "grpc: bad request", "peer=%s stream=%d grpc_status=%d reason=\"%s\"",
              st->conn->peer, (int)st->id, code, rt_log_quote(why, q, sizeof q));
    stream_answer_grpc_error(st, code, why, retry_s, accept_encoding);
}

/* The owner's answer (rt_otlp_call.respond). Sends it if the stream is still there, else only
 * frees the call. */
static void grpc_call_respond(rt_otlp_call *call, const rt_otlp_result *res)
{
    grpc_stream *st = (grpc_stream *)call;
    grpc_conn *c = st->conn;
    if (c == NULL) {
        stream_free(st);
        return;
    }
    if (st->state != ST_HANDLER) {
        rt_log(RT_LOG_ERROR, "grpc: call answered twice", "peer=%s stream=%d", c->peer,
               (int)st->id);
        return;
    }
    /* The request bytes are no longer needed: give the memory back before sending. */
    rt_buf_free(&st->msg);
    rt_buf_free(&st->scratch);
    rt_buf_free(&st->scratch2);
    int code = rt_otlp_ingest_grpc_code(res);
    if (code == 0) {
        stream_answer_ok(st, res);
    } else {
        uint32_t retry_s = 0;
        if (res->status == RT_OTLP_THROTTLED || res->status == RT_OTLP_UNAVAILABLE) {
            retry_s = res->retry_after_s ? res->retry_after_s : 1;
        }
        char msg[sizeof res->message];
        snprintf(msg, sizeof msg, "%.*s", (int)sizeof res->message - 1, res->message);
        stream_answer_grpc_error(st, code, msg, retry_s, false);
    }
    if (!c->in_recv) {
        /* Answered later from the event loop: push it out now. (Inside mem_recv, read_cb
         * sends once nghttp2 returns.) */
        if (conn_send(c) != 0) {
            conn_free(c);
        }
    }
}

/* The header block of a request ended: check method, content-type and path. */
static void stream_check_headers(grpc_stream *st)
{
    if (!st->method_post) {
        stream_answer_http_error(st, "405", "grpc: only POST is allowed");
        return;
    }
    if (!st->ct_ok) {
        RT_LOG_RL(RT_LOG_WARN, "grpc: bad request",
                  "peer=%s stream=%d http_status=415 reason=\"%s\"", st->conn->peer, (int)st->id,
                  st->ct_seen ? "unsupported content-type" : "missing content-type");
        stream_answer_http_error(st, "415",
                                 "grpc: content-type must be application/grpc or "
                                 "application/grpc+proto");
        return;
    }
    if (!st->path_ok) {
        stream_reject(st, 12, 0, false,
                      "unknown method: only "
                      "/opentelemetry.proto.collector.trace.v1.TraceService/Export is served");
        return;
    }
}

/* The client finished the request: exactly one message, decode it, hand it to the handler. */
static void stream_end(grpc_stream *st)
{
    char why[256];
    if (st->state != ST_RECEIVING) {
        return;
    }
    switch (rt_h2_frame_reader_state(&st->reader)) {
    case RT_H2_FRAME_EMPTY:
        stream_reject(st, 12, 0, false, "grpc: unary Export needs one request message, got none");
        return;
    case RT_H2_FRAME_PARTIAL:
        if (st->reader.prefix_got < RT_H2_FRAME_PREFIX_LEN) {
            snprintf(why, sizeof why,
                     "grpc: request ended inside a message prefix (%zu of 5 bytes)",
                     st->reader.prefix_got);
        } else {
            snprintf(why, sizeof why, "grpc: request message truncated: %zu of %u bytes",
                     st->reader.msg_got, st->reader.msg_len);
        }
        stream_reject(st, 13, 0, false, why);
        return;
    case RT_H2_FRAME_COMPLETE:
        break;
    }
    rt_grpc_server *srv = st->conn->srv;
    rt_otlp_result err;
    const uint8_t *pb = NULL;
    size_t pb_len = 0, spans = 0;
    memset(&err, 0, sizeof err);
    if (rt_otlp_ingest_decode(st->msg.data ? st->msg.data : (const uint8_t *)"", st->msg.len,
                              st->reader.compressed, false, srv->opts.max_body_bytes,
                              srv->opts.handler_checks, &st->scratch, &st->scratch2, &pb, &pb_len,
                              &spans, &err) != 0) {
        stream_reject(st, rt_otlp_ingest_grpc_code(&err), 0, false, err.message);
        return;
    }
    st->state = ST_HANDLER;
    srv->opts.handler(&st->call, pb, pb_len, spans, srv->opts.handler_arg);
}

/* ---- nghttp2 callbacks ---------------------------------------------------------------------
 * None of these frees the connection; errors end a stream, never the session. */

static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    grpc_conn *c = user_data;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) >= OUTPUT_HIGH_WATER) {
        return NGHTTP2_ERR_WOULDBLOCK;
    }
    if (bufferevent_write(c->bev, data, length) != 0) {
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return (ssize_t)length;
}

static int on_begin_headers_cb(nghttp2_session *session, const nghttp2_frame *frame,
                               void *user_data)
{
    grpc_conn *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    grpc_stream *st = rt_calloc(1, sizeof *st);
    st->call.respond = grpc_call_respond;
    st->call.transport = RT_OTLP_GRPC;
    snprintf(st->call.peer, sizeof st->call.peer, "%s", c->peer);
    st->id = frame->hd.stream_id;
    st->conn = c;
    st->next = c->streams;
    if (c->streams) {
        c->streams->prev = st;
    }
    c->streams = st;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static bool bytes_eq(const uint8_t *p, size_t n, const char *s)
{
    size_t sl = strlen(s);
    return n == sl && memcmp(p, s, n) == 0;
}

/* application/grpc or application/grpc+proto, optionally followed by ";params". */
static bool content_type_ok(const uint8_t *v, size_t n)
{
    static const char base[] = "application/grpc";
    size_t bl = sizeof base - 1;
    if (n < bl || strncasecmp((const char *)v, base, bl) != 0) {
        return false;
    }
    v += bl;
    n -= bl;
    if (n >= 6 && strncasecmp((const char *)v, "+proto", 6) == 0) {
        v += 6;
        n -= 6;
    }
    return n == 0 || v[0] == ';';
}

static int on_header_cb(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                        size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                        void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
        return 0;
    }
    grpc_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    if (bytes_eq(name, namelen, ":method")) {
        st->method_post = bytes_eq(value, valuelen, "POST");
    } else if (bytes_eq(name, namelen, ":path")) {
        st->path_ok = bytes_eq(value, valuelen, EXPORT_PATH);
    } else if (bytes_eq(name, namelen, "content-type")) {
        st->ct_seen = true;
        st->ct_ok = content_type_ok(value, valuelen);
    } else if (bytes_eq(name, namelen, "grpc-encoding")) {
        size_t l =
            valuelen < sizeof st->encoding_name - 1 ? valuelen : sizeof st->encoding_name - 1;
        memcpy(st->encoding_name, value, l);
        st->encoding_name[l] = '\0';
        if (bytes_eq(value, valuelen, "identity")) {
            st->encoding = ENC_IDENTITY;
        } else if (bytes_eq(value, valuelen, "gzip")) {
            st->encoding = ENC_GZIP;
        } else {
            st->encoding = ENC_OTHER;
        }
    }
    return 0;
}

static int on_data_chunk_recv_cb(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                                 const uint8_t *data, size_t len, void *user_data)
{
    grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    char why[256];
    if (st == NULL || st->state != ST_RECEIVING) {
        return 0; /* the rest of a refused request: dropped (nghttp2 still credits the window) */
    }
    size_t max = st->conn->srv->opts.max_body_bytes;
    switch (rt_h2_frame_read(&st->reader, data, len, max, &st->msg)) {
    case RT_H2_FRAME_OK:
        break;
    case RT_H2_FRAME_BAD_FLAG:
        snprintf(why, sizeof why, "grpc: bad compressed-flag byte %u in message prefix",
                 st->reader.prefix[0]);
        stream_reject(st, 13, 0, false, why);
        return 0;
    case RT_H2_FRAME_TOO_LARGE:
        snprintf(why, sizeof why, "grpc: request message of %u bytes exceeds the limit of %zu",
                 st->reader.msg_len, max);
        stream_reject(st, 8, 0, false, why);
        return 0;
    case RT_H2_FRAME_EXTRA:
        stream_reject(st, 12, 0, false,
                      "grpc: unary Export takes exactly one request message, got more");
        return 0;
    }
    if (st->reader.prefix_got == RT_H2_FRAME_PREFIX_LEN && st->reader.compressed &&
        st->encoding != ENC_GZIP) {
        if (st->encoding == ENC_OTHER) {
            snprintf(why, sizeof why, "grpc: message compressed with unsupported encoding \"%s\"",
                     st->encoding_name);
            stream_reject(st, 12, 0, true, why);
        } else {
            stream_reject(st, 13, 0, false,
                          "grpc: compressed flag set but no grpc-encoding header");
        }
    }
    return 0;
}

static int on_frame_recv_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    grpc_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st == NULL) {
        return 0;
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream_check_headers(st);
    }
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        stream_end(st);
    }
    return 0;
}

static int on_frame_send_cb(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) {
        return 0;
    }
    if (!(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
        return 0;
    }
    grpc_stream *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st != NULL && st->rst_after_answer &&
        nghttp2_session_get_stream_remote_close(session, st->id) == 0) {
        /* RFC 9113 8.1: a complete response may be followed by RST_STREAM(NO_ERROR) to stop
         * the client from sending the rest of a request we do not need. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    }
    return 0;
}

static int on_stream_close_cb(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                              void *user_data)
{
    grpc_stream *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st == NULL) {
        return 0;
    }
    nghttp2_session_set_stream_user_data(session, stream_id, NULL);
    if (st->state == ST_HANDLER) {
        stream_unlink(st); /* detached: freed by rt_otlp_call_respond() */
    } else {
        stream_free(st);
    }
    return 0;
}

/* ---- connections ------------------------------------------------------------------------ */

/* Free a connection. Streams the handler still holds are detached, the others freed. Must not
 * be called from inside an nghttp2 callback. */
static void conn_free(grpc_conn *c)
{
    rt_grpc_server *srv = c->srv;
    grpc_stream *st = c->streams;
    while (st != NULL) {
        grpc_stream *next = st->next;
        if (st->state == ST_HANDLER) {
            stream_unlink(st);
        } else {
            stream_free(st);
        }
        st = next;
    }
    if (c->session) {
        nghttp2_session_del(c->session);
    }
    if (c->bev) {
        bufferevent_free(c->bev);
    }
    if (c->prev) {
        c->prev->next = c->next;
    } else {
        srv->conns = c->next;
    }
    if (c->next) {
        c->next->prev = c->prev;
    }
    free(c);
}

/* Send what nghttp2 has queued. Returns -1 if the connection is finished (error, or neither
 * side wants anything more and the output is flushed) and should be freed. */
static int conn_send(grpc_conn *c)
{
    if (nghttp2_session_send(c->session) != 0) {
        return -1;
    }
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        return -1;
    }
    return 0;
}

/* Create the nghttp2 session and queue our SETTINGS. Returns 0 or -1. */
static int conn_start_session(grpc_conn *c)
{
    rt_grpc_server *srv = c->srv;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, MAX_CONCURRENT_STREAMS},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, MAX_HEADER_LIST},
    };
    if (nghttp2_session_server_new2(&c->session, srv->callbacks, c, srv->h2opt) != 0) {
        c->session = NULL;
        return -1;
    }
    if (nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]) != 0 ||
        nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW) != 0) {
        return -1;
    }
    return conn_send(c);
}

/* TLS: once the handshake is done, insist on ALPN h2 and start HTTP/2. Returns 0 or -1. */
static int conn_tls_ready(grpc_conn *c)
{
    char alpn[32];
    if (c->session != NULL) {
        return 0;
    }
    rt_tls_alpn_selected(bufferevent_openssl_get_ssl(c->bev), alpn, sizeof alpn);
    if (strcmp(alpn, "h2") != 0) {
        RT_LOG_RL(RT_LOG_WARN, "grpc: TLS connection refused", "peer=%s reason=\"%s%s%s\"", c->peer,
                  "ALPN did not select h2", alpn[0] ? ": got " : "", alpn);
        return -1;
    }
    return conn_start_session(c);
}

static void conn_read_cb(struct bufferevent *bev, void *arg)
{
    grpc_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (c->tls && conn_tls_ready(c) != 0) {
        conn_free(c);
        return;
    }
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v;
        if (evbuffer_peek(in, -1, NULL, &v, 1) < 1) {
            break;
        }
        c->in_recv = true;
        ssize_t rv = nghttp2_session_mem_recv(c->session, v.iov_base, v.iov_len);
        c->in_recv = false;
        if (rv < 0) {
            RT_LOG_RL(RT_LOG_WARN, "grpc: HTTP/2 protocol error", "peer=%s reason=\"%s\"", c->peer,
                      nghttp2_strerror((int)rv));
            conn_free(c);
            return;
        }
        evbuffer_drain(in, v.iov_len);
    }
    if (conn_send(c) != 0) {
        conn_free(c);
    }
}

static void conn_write_cb(struct bufferevent *bev, void *arg)
{
    grpc_conn *c = arg;
    if (c->session == NULL) {
        return;
    }
    if (conn_send(c) != 0) {
        conn_free(c);
    }
}

/* A stream the server still owes work on (handler pending or answer being sent). */
static bool conn_busy(const grpc_conn *c)
{
    for (const grpc_stream *st = c->streams; st; st = st->next) {
        if (st->state != ST_RECEIVING) {
            return true;
        }
    }
    return false;
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
    grpc_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (c->tls && conn_tls_ready(c) != 0) {
            conn_free(c);
        }
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if ((what & BEV_EVENT_READING) && c->session != NULL && conn_busy(c)) {
            /* Quiet client, but we still owe it answers: keep going. */
            bufferevent_enable(bev, EV_READ);
            return;
        }
        if ((what & BEV_EVENT_READING) && c->session != NULL) {
            /* Idle: say GOAWAY, and close once it is written (conn_send sees nothing left). */
            rt_log(RT_LOG_DEBUG, "grpc: closing idle connection", "peer=%s", c->peer);
            nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
            if (conn_send(c) != 0) {
                conn_free(c);
            }
            return;
        }
        conn_free(c); /* write stalled, or TLS handshake never finished */
        return;
    }
    if (what & BEV_EVENT_ERROR) {
        unsigned long e = bufferevent_get_openssl_error(bev);
        if (e != 0) {
            char buf[256];
            ERR_error_string_n(e, buf, sizeof buf);
            RT_LOG_RL(RT_LOG_WARN, "grpc: TLS error", "peer=%s reason=\"%s\"", c->peer, buf);
        }
    }
    conn_free(c); /* EOF or error */
}

static void accept_cb(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    rt_grpc_server *srv = arg;
    struct event_base *base = evconnlistener_get_base(lis);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    grpc_conn *c = rt_calloc(1, sizeof *c);
    c->srv = srv;
    rt_net_addr_str(sa, c->peer, sizeof c->peer);
    int bev_opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
    if (srv->opts.tls) {
        SSL *ssl = SSL_new(srv->opts.tls);
        if (ssl == NULL) {
            RT_LOG_RL(RT_LOG_ERROR, "grpc: SSL_new failed", "peer=%s", c->peer);
            close(fd);
            free(c);
            return;
        }
        c->tls = true;
        c->bev = bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, bev_opts);
        if (c->bev == NULL) {
            SSL_free(ssl);
        } else {
            bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
        }
    } else {
        c->bev = bufferevent_socket_new(base, fd, bev_opts);
    }
    if (c->bev == NULL) {
        RT_LOG_RL(RT_LOG_ERROR, "grpc: cannot create bufferevent", "peer=%s", c->peer);
        close(fd);
        free(c);
        return;
    }
    c->next = srv->conns;
    if (srv->conns) {
        srv->conns->prev = c;
    }
    srv->conns = c;
    struct timeval idle = {(time_t)srv->opts.idle_timeout_s, 0};
    bufferevent_setcb(c->bev, conn_read_cb, conn_write_cb, conn_event_cb, c);
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (!c->tls && conn_start_session(c) != 0) {
        conn_free(c);
    }
}

static void accept_error_cb(struct evconnlistener *lis, void *arg)
{
    rt_grpc_server *srv = arg;
    int e = EVUTIL_SOCKET_ERROR();
    RT_LOG_RL(RT_LOG_ERROR, "grpc: accept failed", "port=%u reason=\"%s\"", srv->port,
              evutil_socket_error_to_string(e));
}

/* ---- public API ------------------------------------------------------------------------- */

/* Listen on `listen` with `opts` (copied; opts->tls stays the caller's). Returns the server or
 * NULL with a message in `err` (bad address, bind failure, no handler). */
rt_grpc_server *rt_grpc_server_new(struct event_base *base, const char *listen,
                                   const rt_otlp_server_opts *opts, char *err, size_t errlen)
{
    rt_grpc_server *srv = NULL;
    int fd = -1;
    if (opts == NULL || opts->handler == NULL) {
        snprintf(err, errlen, "grpc server %s: no handler", listen);
        return NULL;
    }
    fd = rt_net_listen(listen, opts->reuseport, err, errlen);
    if (fd < 0) {
        return NULL;
    }
    srv = rt_calloc(1, sizeof *srv);
    srv->base = base;
    srv->opts = *opts;
    if (srv->opts.max_body_bytes == 0) {
        srv->opts.max_body_bytes = DEFAULT_MAX_BODY;
    }
    if (srv->opts.idle_timeout_s == 0) {
        srv->opts.idle_timeout_s = DEFAULT_IDLE_S;
    }
    srv->port = rt_net_local_port(fd);
    if (nghttp2_session_callbacks_new(&srv->callbacks) != 0 ||
        nghttp2_option_new(&srv->h2opt) != 0) {
        snprintf(err, errlen, "grpc server %s: cannot set up nghttp2", listen);
        goto fail;
    }
    nghttp2_session_callbacks_set_send_callback(srv->callbacks, send_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(srv->callbacks, on_begin_headers_cb);
    nghttp2_session_callbacks_set_on_header_callback(srv->callbacks, on_header_cb);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->callbacks,
                                                              on_data_chunk_recv_cb);
    nghttp2_session_callbacks_set_on_frame_recv_callback(srv->callbacks, on_frame_recv_cb);
    nghttp2_session_callbacks_set_on_frame_send_callback(srv->callbacks, on_frame_send_cb);
    nghttp2_session_callbacks_set_on_stream_close_callback(srv->callbacks, on_stream_close_cb);
    srv->listener =
        evconnlistener_new(base, accept_cb, srv, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                           0 /* already listening */, fd);
    if (srv->listener == NULL) {
        snprintf(err, errlen, "grpc server %s: cannot create listener", listen);
        goto fail;
    }
    fd = -1; /* owned by the listener */
    evconnlistener_set_error_cb(srv->listener, accept_error_cb);
    return srv;
fail:
    if (fd >= 0) {
        close(fd);
    }
    rt_grpc_server_free(srv);
    return NULL;
}

uint16_t rt_grpc_server_port(const rt_grpc_server *srv)
{
    return srv->port;
}

/* Last words on a connection the server is dropping: queue GOAWAY(NO_ERROR) and push what is
 * queued straight to the socket, without the event loop and without blocking (best effort).
 * evbuffer_write() cannot be used (a bufferevent freezes the front of its output buffer). On
 * TLS the bytes go through SSL_write, only when everything queued before has already been
 * handed to OpenSSL, so records are not reordered. */
static void conn_say_goaway(grpc_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    bool was_empty = evbuffer_get_length(out) == 0;
    if (c->session == NULL) {
        return;
    }
    nghttp2_session_terminate_session(c->session, NGHTTP2_NO_ERROR);
    if (nghttp2_session_send(c->session) != 0 || (c->tls && !was_empty)) {
        return;
    }
    size_t len = evbuffer_get_length(out);
    const uint8_t *p = evbuffer_pullup(out, -1);
    if (p == NULL || len == 0) {
        return;
    }
    if (c->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);
        if (ssl != NULL && len <= INT32_MAX) {
            ERR_clear_error();
            if (SSL_write(ssl, p, (int)len) <= 0) {
                ERR_clear_error();
            }
        }
    } else {
        ssize_t n = send(bufferevent_getfd(c->bev), p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)n;
    }
}

/* Stop listening and close every connection, saying GOAWAY first (best effort, see
 * conn_say_goaway). Calls the handler still holds stay valid until answered; the answer is
 * then dropped. Must not be called from inside the handler. */
void rt_grpc_server_free(rt_grpc_server *srv)
{
    if (srv == NULL) {
        return;
    }
    if (srv->listener) {
        evconnlistener_free(srv->listener);
    }
    while (srv->conns != NULL) {
        grpc_conn *c = srv->conns;
        conn_say_goaway(c);
        conn_free(c);
    }
    if (srv->callbacks) {
        nghttp2_session_callbacks_del(srv->callbacks);
    }
    if (srv->h2opt) {
        nghttp2_option_del(srv->h2opt);
    }
    free(srv);
}
