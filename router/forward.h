/* forward.h - the router's per-worker forwarding core: split each OTLP request by the owner of
 * every span's trace id, send each owner its part, answer the client once every part is settled.
 *
 * One rt_fwd per worker, created and used on that worker's thread only (no locks on the
 * per-span path). It holds the worker's view of the ring (view.h) and one OTLP client per ring
 * node (kept across views while the node's id, endpoint and protocol are unchanged).
 *
 * Per request (rt_fwd_handle, the intake's handler):
 *   1. Walk the request once (otlp_split): that walk is also its structural check (the listener
 *      skips its own; a malformed request is answered 400 / INVALID_ARGUMENT with the check's
 *      message before any part is sent). Spans are not decoded: only each span's top-level tags
 *      are read, for the trace id; the samplers validate spans in full, and a sampler's 400
 *      comes back to the client as rejected spans (below). A span whose trace id is not 16
 *      bytes or is all zero is dropped and reported to the client as a partial success.
 *   2. Look each trace id up on the worker's ring (once per run of spans of one trace); copy
 *      runs of consecutive spans bound for the same owner into that owner's part, under their
 *      original resource and scope, with one memcpy per run (spans are never re-encoded). The
 *      part's body is handed to the client without a copy; the part keeps slices into the
 *      request for re-routing, which only happens while the client is unanswered.
 *   3. Export every part, marked (with samplers.mark_deadline) with the time this router stops
 *      waiting for it (now + samplers.timeout): a sampler that gets to the part only later (it
 *      was stalled) refuses it, so spans this router has sent elsewhere meanwhile are not held
 *      in two places. A part that fails with a connection error, a timeout or a retryable
 *      status after the client's own retries (samplers.retry_budget) is reported to the health
 *      checker and re-routed to the successors of its keys, excluding every node that already
 *      failed it. A part whose node is at samplers.max_inflight is not queued: its spans make
 *      the answer THROTTLED (429 / RESOURCE_EXHAUSTED + retry delay).
 *   4. Answer once every part is acknowledged:
 *        - all placed:           OK; rejected_spans = invalid trace ids + spans samplers refused
 *                                (a sampler's 400/413 or partial success is final: retrying the
 *                                same bytes cannot succeed, so the client is told, not asked to
 *                                retry);
 *        - some not placeable (every candidate node failed, no node up, or request_deadline
 *          passed first):        UNAVAILABLE (503 / gRPC UNAVAILABLE) + Retry-After;
 *        - else some throttled:  THROTTLED (429 / RESOURCE_EXHAUSTED) + Retry-After.
 *      When the client retries after 503/429 the parts that were accepted are sent again:
 *      delivery is at-least-once, as with any OTLP pipeline.
 */
#ifndef RT_ROUTER_FORWARD_H
#define RT_ROUTER_FORWARD_H

#include "metrics.h"
#include "otlp_server.h"
#include "view.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Reasons in ringtail_router_spans_rejected_total{reason}. */
typedef enum rt_fwd_reject {
    RT_FWD_REJ_INVALID_TRACE_ID = 0,
    RT_FWD_REJ_UNAVAILABLE,
    RT_FWD_REJ_THROTTLED,
    RT_FWD_REJ_SAMPLER_REJECTED,
    RT_FWD_REJ_COUNT_,
} rt_fwd_reject;

/* Process-wide series shared by every worker (lock-free updates). */
typedef struct rt_fwd_metrics {
    rt_counter *spans_received[3]; /* by rt_otlp_transport */
    rt_counter *requests_received[3];
    rt_counter *rejected[RT_FWD_REJ_COUNT_];
    rt_histogram *latency; /* per part: export to acknowledgement */
    rt_gauge *inflight;    /* client requests not yet answered */
} rt_fwd_metrics;

void rt_fwd_metrics_init(rt_fwd_metrics *m, rt_metrics_registry *reg);

typedef struct rt_fwd_opts {
    int protocol;          /* -1: per node from the ring file; else rt_otlp_client_protocol */
    uint32_t timeout_ms;   /* per attempt */
    uint32_t max_inflight; /* per node on this worker */
    uint32_t connections;  /* per node on this worker */
    bool gzip;
    bool mark_deadline;            /* put each part's deadline in it (peer_msg.h ROUTED) */
    SSL_CTX *tls_http;             /* borrowed; NULL = plaintext */
    SSL_CTX *tls_grpc;             /* borrowed (ALPN h2) */
    const char *server_name;       /* NULL/empty: the endpoint's host */
    uint64_t retry_budget_ns;      /* how long one node is retried before its successor */
    uint64_t request_deadline_ns;  /* how long a client request may wait for every owner */
    uint32_t retry_after_s;        /* told to clients with 429 / 503 */
    const rt_fwd_metrics *metrics; /* borrowed; required */
} rt_fwd_opts;

typedef struct rt_fwd rt_fwd;

/* Create the forwarder of worker `worker_index` on `base` (that worker's loop). `opts` is
 * copied (its pointers are borrowed). No view yet: requests are answered UNAVAILABLE until
 * rt_fwd_set_view. */
rt_fwd *rt_fwd_new(struct event_base *base, size_t worker_index, const rt_fwd_opts *opts);

/* Install `view` (takes a reference; uses view->rings[worker_index]). Clients of nodes whose id,
 * endpoint and protocol are unchanged are kept; the others are freed, and parts they still held
 * are re-routed on the new view. On the worker's thread. */
void rt_fwd_set_view(rt_fwd *f, rt_view *view);

/* The intake handler; `arg` is the worker's rt_fwd. */
void rt_fwd_handle(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count, void *arg);

/* Client requests received and not yet answered (any thread may read it). */
size_t rt_fwd_active(const rt_fwd *f);

/* Answer every open request UNAVAILABLE, free the clients and everything else. On the worker's
 * thread. NULL is a no-op. */
void rt_fwd_free(rt_fwd *f);

#endif
