/* otlp_server.h - the contract between an OTLP server (HTTP or gRPC) and the code that owns it.
 *
 * Both transports do the same thing before the owner sees a request: read the body (bounded),
 * inflate gzip (bounded), convert OTLP/JSON to protobuf, and check that the protobuf is a
 * well-formed ExportTraceServiceRequest (rt_otlp_validate). Anything wrong there is answered by
 * the server itself (400 / INVALID_ARGUMENT, 413 / RESOURCE_EXHAUSTED, ...) with a message that
 * says what is wrong, and the owner's handler is not called.
 *
 * The handler answers asynchronously: it may call rt_otlp_call_respond() before returning or
 * later from the same event loop (the router answers only once every sampler acknowledged).
 * It must call it exactly once. If the client goes away first, the call stays valid until
 * respond, which then only frees it.
 *
 * Mapping of rt_otlp_status (per the OTLP spec):
 *   OK           HTTP 200, gRPC OK; rejected_spans > 0 makes it a partial success
 *   BAD_DATA     HTTP 400, gRPC INVALID_ARGUMENT (3)
 *   TOO_LARGE    HTTP 413, gRPC RESOURCE_EXHAUSTED (8) without RetryInfo (not retryable)
 *   THROTTLED    HTTP 429 + Retry-After, gRPC RESOURCE_EXHAUSTED with RetryInfo
 *   UNAVAILABLE  HTTP 503 + Retry-After, gRPC UNAVAILABLE (14) with RetryInfo
 *   INTERNAL     HTTP 500, gRPC INTERNAL (13)
 * Error bodies on HTTP are google.rpc.Status (protobuf, or its JSON form when the request was
 * JSON); on gRPC the message goes to grpc-message.
 */
#ifndef RT_OTLP_SERVER_H
#define RT_OTLP_SERVER_H

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rt_otlp_transport {
    RT_OTLP_HTTP_PROTOBUF = 0,
    RT_OTLP_HTTP_JSON = 1,
    RT_OTLP_GRPC = 2,
} rt_otlp_transport;

typedef enum rt_otlp_status {
    RT_OTLP_OK = 0,
    RT_OTLP_BAD_DATA,
    RT_OTLP_TOO_LARGE,
    RT_OTLP_THROTTLED,
    RT_OTLP_UNAVAILABLE,
    RT_OTLP_INTERNAL,
} rt_otlp_status;

typedef struct rt_otlp_result {
    rt_otlp_status status;
    int64_t rejected_spans; /* with RT_OTLP_OK: > 0 means partial success */
    uint32_t retry_after_s; /* with THROTTLED / UNAVAILABLE; 0 means "1" */
    char message[256];      /* why; empty on plain success */
} rt_otlp_result;

typedef struct rt_otlp_call rt_otlp_call;

/* Called on the server's event-loop thread for each well-formed Export request. `pb` is the
 * ExportTraceServiceRequest as protobuf (inflated, converted from JSON if needed), owned by the
 * call and valid until rt_otlp_call_respond(). `span_count` is what rt_otlp_validate counted. */
typedef void (*rt_otlp_handler_fn)(rt_otlp_call *call, const uint8_t *pb, size_t len,
                                   size_t span_count, void *arg);

/* Answer the call (exactly once); frees the call. `res` is copied. */
void rt_otlp_call_respond(rt_otlp_call *call, const rt_otlp_result *res);
rt_otlp_transport rt_otlp_call_transport(const rt_otlp_call *call);
/* "ip:port" of the client, for logs. */
const char *rt_otlp_call_peer(const rt_otlp_call *call);

typedef struct rt_otlp_server_opts {
    rt_otlp_handler_fn handler;
    void *handler_arg;
    size_t max_body_bytes;   /* limit on the body as received and after inflating; 0 = 64 MiB */
    SSL_CTX *tls;            /* NULL = plaintext (h2c for gRPC); ref held by the caller */
    bool reuseport;          /* SO_REUSEPORT, so every worker can listen on the same port */
    uint32_t idle_timeout_s; /* close idle connections after this; 0 = 120 s */
    bool handler_checks;     /* the owner checks the request's structure itself: the server
                              * does not run rt_otlp_validate (only size limits, gzip and JSON),
                              * and span_count is 0. The handler must answer a malformed
                              * request (BAD_DATA) before acting on any of it. For the router,
                              * whose split walk is rt_otlp_check_structure (otlp_split.h), and
                              * the sampler, whose parse is the full check
                              * (rt_otlp_scan_init_checked) */
} rt_otlp_server_opts;

/* Convenience: fill `res`. `fmt` may be NULL. */
void rt_otlp_result_set(rt_otlp_result *res, rt_otlp_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
