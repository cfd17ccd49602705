/* otlp_client.h - OTLP trace exporter client on libevent: OTLP/HTTP (HTTP/1.1, keep-alive pool)
 * or OTLP/gRPC (HTTP/2 via nghttp2, streams multiplexed), plaintext or TLS, gzip, retries per
 * the OTLP spec. Used by the router (to samplers), the sampler (to backends) and the bench load
 * generator.
 *
 * Ownership: the client belongs to one event_base and is used from that loop's thread only. It
 * borrows the event_base and the SSL_CTX (both must outlive it) and copies everything else in
 * the options. Each accepted export owns a copy of its request body (or the rt_buf handed over
 * with rt_otlp_client_export_buf) until its done callback has run.
 *
 * The process must ignore SIGPIPE: writes to a connection the peer has reset would otherwise
 * kill it (libevent and OpenSSL write with plain send/write).
 *
 * Delivery: every accepted export ends in exactly one call of its done callback, from the event
 * loop (never from inside rt_otlp_client_export itself), or from rt_otlp_client_free.
 *
 * Retry rules (otlp-facts.md, implemented in retry.c):
 *   HTTP  retry 429, 502, 503, 504, connection failures and timeouts; honour Retry-After.
 *         Every other status is final (400, 413, ...). 2xx is success; a partial_success with
 *         rejected_spans > 0 is PARTIAL and never retried.
 *   gRPC  retry CANCELLED, DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS,
 *         and RESOURCE_EXHAUSTED only with RetryInfo in grpc-status-details-bin; honour its
 *         retry_delay. Every other status is final.
 *   Without a server hint the wait is exponential backoff with full jitter; with one, the hint
 *   is used exactly, unless it would run past max_elapsed, in which case the export gives up.
 *
 * Transport details:
 *   - A broken connection fails every attempt on it as retryable (CONNECT before the connection
 *     is up, CONN_LOST after); a malformed answer is a retryable PROTOCOL failure.
 *   - HTTP: a request that dies on a reused keep-alive connection before any answer byte is
 *     re-sent at once on a new connection (once per export, no backoff): the server most likely
 *     closed the idle connection as we wrote. Answers may be Content-Length, chunked or
 *     close-delimited; 1xx interim answers are skipped. Idle connections close after 30 s.
 *   - gRPC: POST /opentelemetry.proto.collector.trace.v1.TraceService/Export with te: trailers
 *     and grpc-timeout = timeout_ms; grpc-message is percent-decoded; an answer without
 *     grpc-status is judged by its HTTP status (gRPC's HTTP-to-status mapping).
 */
#ifndef RT_OTLP_CLIENT_H
#define RT_OTLP_CLIENT_H

#include "buf.h"
#include "retry.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evdns_base;

/* The gzip level of request bodies: igzip level 1 (gzip.h). On captured export batches it
 * compresses 7.2x (zlib level 1: 7.1x) at 1.0 ms of CPU per MB (zlib level 1: 5.8 ms);
 * bench/RESULTS.md, "Compression". */
#define RT_OTLP_CLIENT_GZIP_LEVEL 1

typedef struct rt_otlp_client rt_otlp_client;

typedef enum rt_otlp_client_protocol {
    RT_OTLP_CLIENT_HTTP = 0, /* OTLP/HTTP protobuf over HTTP/1.1 */
    RT_OTLP_CLIENT_GRPC = 1, /* OTLP/gRPC over HTTP/2 (h2c prior knowledge, or TLS + ALPN h2) */
} rt_otlp_client_protocol;

typedef struct rt_otlp_client_header {
    const char *name;
    const char *value;
} rt_otlp_client_header;

typedef struct rt_otlp_client_opts {
    rt_otlp_client_protocol protocol;
    const char *endpoint;    /* "host:port" or "[v6]:port"; required */
    const char *path;        /* HTTP request path; NULL = "/v1/traces" (ignored for gRPC) */
    bool gzip;               /* compress request bodies (Content-Encoding / grpc-encoding) */
    SSL_CTX *tls;            /* NULL = plaintext; borrowed. For gRPC build it with ALPN "h2" */
    const char *server_name; /* SNI, certificate host check, Host / :authority;
                              * NULL = the endpoint's host */
    struct evdns_base *dns;  /* async resolver for host names; NULL = getaddrinfo (blocking,
                              * fine for IP literals and /etc/hosts names) */
    const rt_otlp_client_header *headers; /* extra request headers (API keys ...); copied */
    size_t n_headers;
    uint32_t timeout_ms;         /* per attempt, from dispatch to the full answer; 0 = 10 s */
    uint32_t max_conns;          /* connection pool size; 0 = 4 for HTTP, 1 for gRPC. HTTP/1.1
                                  * carries one request per connection at a time */
    uint32_t max_inflight;       /* accepted exports not yet done (queued, sending or waiting
                                  * to retry); 0 = 256. Beyond it export returns -1 */
    uint32_t max_response_bytes; /* 0 = 4 MiB; a bigger answer is a protocol failure */
    rt_retry_policy retry;       /* zero fields take the retry.h defaults */
    uint64_t rng_seed;           /* jitter PRNG seed; 0 = derived from the clock (tests set it) */
} rt_otlp_client_opts;

typedef enum rt_otlp_client_outcome {
    RT_OTLP_CLIENT_OK = 0,   /* accepted in full */
    RT_OTLP_CLIENT_PARTIAL,  /* accepted, but rejected_spans > 0 were refused (not retried) */
    RT_OTLP_CLIENT_REJECTED, /* final, non-retryable error (400, 413, INVALID_ARGUMENT, ...) */
    RT_OTLP_CLIENT_GAVE_UP,  /* retryable failures until the policy ran out, or client freed */
} rt_otlp_client_outcome;

/* Why an attempt failed (stats and results). */
typedef enum rt_otlp_client_fail {
    RT_OTLP_CLIENT_FAIL_NONE = 0,
    RT_OTLP_CLIENT_FAIL_CONNECT,   /* could not connect / resolve / TLS handshake */
    RT_OTLP_CLIENT_FAIL_TIMEOUT,   /* attempt timeout */
    RT_OTLP_CLIENT_FAIL_CONN_LOST, /* connection closed or reset mid-request, GOAWAY */
    RT_OTLP_CLIENT_FAIL_PROTOCOL,  /* malformed or oversized answer */
    RT_OTLP_CLIENT_FAIL_STATUS,    /* the server answered with an error status */
    RT_OTLP_CLIENT_FAIL_SHUTDOWN,  /* the client was freed */
    RT_OTLP_CLIENT_FAIL_COUNT_,
} rt_otlp_client_fail;

typedef struct rt_otlp_client_result {
    rt_otlp_client_outcome outcome;
    rt_otlp_client_fail fail; /* why the last attempt failed; NONE on OK / PARTIAL */
    int http_status;          /* last HTTP status seen (:status for gRPC); 0 if none */
    int grpc_status;          /* last grpc-status; -1 if none (always -1 for HTTP) */
    int64_t rejected_spans;   /* PARTIAL only */
    uint32_t attempts;        /* attempts made (>= 1, or 0 when freed before the first) */
    uint64_t elapsed_ns;      /* from export to done */
    char message[256];        /* server message (grpc-message, Status.message, partial
                               * error_message) or our reason; "" on plain OK */
} rt_otlp_client_result;

/* `res` is valid only during the call. The callback may call rt_otlp_client_export (the new
 * export is queued and sent from the loop) but must not free the client. */
typedef void (*rt_otlp_client_done_fn)(const rt_otlp_client_result *res, void *arg);

/* Counters owned by one client; read them with rt_otlp_client_stats(). */
typedef struct rt_otlp_client_stats {
    uint64_t requests;       /* exports accepted */
    uint64_t refused;        /* exports refused with -1 (over max_inflight) */
    uint64_t attempts;       /* attempts dispatched to a connection */
    uint64_t retries;        /* attempts scheduled after a retryable failure */
    uint64_t ok;             /* done: OK */
    uint64_t partial;        /* done: PARTIAL */
    uint64_t rejected;       /* done: REJECTED */
    uint64_t gave_up;        /* done: GAVE_UP */
    uint64_t rejected_spans; /* sum over PARTIAL answers */
    uint64_t failures[RT_OTLP_CLIENT_FAIL_COUNT_]; /* failed attempts by reason */
    uint64_t conns_opened;
    uint64_t bytes_sent; /* request body bytes written (after gzip), all attempts */
    uint64_t inflight;   /* gauge: accepted exports not yet done */
    uint64_t conns_open; /* gauge */
} rt_otlp_client_stats;

/* Create a client on `base`. Nothing is connected until the first export. Returns NULL with a
 * message in `err` naming the problem (bad endpoint, missing option). */
rt_otlp_client *rt_otlp_client_new(struct event_base *base, const rt_otlp_client_opts *opts,
                                   char *err, size_t errlen);

/* Export one protobuf ExportTraceServiceRequest (`pb`, `len` bytes; copied, and gzipped once if
 * configured). Returns 0 when accepted (`done` will be called exactly once, later), or -1 without
 * calling `done` when the client is at max_inflight or shutting down, so the caller can push
 * back. */
int rt_otlp_client_export(rt_otlp_client *c, const uint8_t *pb, size_t len,
                          rt_otlp_client_done_fn done, void *arg);
/* Same, taking the bytes of `pb` on success (the buffer is left empty; no copy when gzip is
 * off). On -1 `pb` is untouched and still the caller's. */
int rt_otlp_client_export_buf(rt_otlp_client *c, rt_buf *pb, rt_otlp_client_done_fn done,
                              void *arg);
/* Same, for a body already in the client's content encoding (gzip when the client was made with
 * gzip, else protobuf), e.g. written with rt_gzip_writer as the request was put together. */
int rt_otlp_client_export_encoded(rt_otlp_client *c, rt_buf *body, rt_otlp_client_done_fn done,
                                  void *arg);

const rt_otlp_client_stats *rt_otlp_client_stats_get(const rt_otlp_client *c);
/* Accepted exports not yet done. */
size_t rt_otlp_client_inflight(const rt_otlp_client *c);

/* Names for logs: "ok", "partial", "rejected", "gave_up"; "connect", "timeout", ... */
const char *rt_otlp_client_outcome_name(rt_otlp_client_outcome o);
const char *rt_otlp_client_fail_name(rt_otlp_client_fail f);

/* Close every connection and end every pending export with GAVE_UP (fail SHUTDOWN), calling
 * its done callback before returning; then free the client. NULL is a no-op. */
void rt_otlp_client_free(rt_otlp_client *c);

#endif
