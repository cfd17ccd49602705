/* relay.h - one hop at most: spans that reached a sampler which does not own their trace go on
 * to the owner.
 *
 * A sampler's intake sends here the spans of its requests whose owner, by its ring view, is
 * another sampler (requests from SDKs, collectors and routers; never spans that arrived
 * forwarded or handed off, which stay wherever they land). On the shard's own thread each trace
 * is then placed:
 *   - here, when the trace is pending or held here, or decided here (rt_tbuf_knows): its spans
 *     join it, and late spans follow the decision where it was made. So a trace stays whole
 *     where it started while two processes disagree about the ring, and the disagreement is
 *     settled by a hand-off (handoff.h), not by splitting the trace;
 *   - here, when no other node is up;
 *   - else at its owner: one OTLP request per owner, marked FORWARD (peer_msg.h) so the owner
 *     never sends it on.
 * A forward the owner does not acknowledge (after the client's retries: connection refused, a
 * timeout, a refusal) is ingested here instead, and each of its traces is reported through the
 * `kept` hook so the hand-off can move it once the owner takes traffic again. The caller's
 * request is done - and its client may be answered - only when every span is placed, so an
 * acknowledgement always means some sampler holds the spans.
 *
 * Deadlines: a forward is given up (kept here) when the clients' timeout passes, or earlier
 * when the caller's own deadline (a router's ROUTED mark) would pass first - the caller must
 * hear back before it gives up on this sampler and sends the spans elsewhere. Each forward
 * carries a deadline a margin before that (rt_peer_deadline): the owner refuses it after it,
 * so what is kept here is never also taken there.
 *
 * Metrics: ringtail_sampler_spans_forwarded_total{direction="sent"} (spans the owner
 * acknowledged), ringtail_sampler_forward_failed_spans_total{reason} (kept here instead).
 *
 * One relay per shard, used on its worker's thread only.
 */
#ifndef RT_RELAY_H
#define RT_RELAY_H

#include "metrics.h"
#include "peer_clients.h"
#include "peer_view.h"
#include "trace_buffer.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rt_relay_opts {
    const char *sender;       /* this sampler's node id (copied) */
    rt_peer_clients *clients; /* borrowed: this worker's */
    rt_tbuf *tbuf;            /* borrowed: this shard's */
    /* Ingest a request here (the shard's ingest, which keeps its bookkeeping). */
    void (*ingest)(void *arg, const uint8_t *pb, size_t len);
    /* A trace whose spans were kept here because its owner did not take them. */
    void (*kept)(void *arg, const uint8_t trace_id[16]);
    void *arg;
    struct event_base *base; /* this worker's loop (for the give-up timers) */
    uint64_t timeout_ns;     /* the clients' timeout: the longest a forward is waited for */
} rt_relay_opts;

typedef struct rt_relay rt_relay;

rt_relay *rt_relay_new(const rt_relay_opts *opts, rt_metrics_registry *reg);
/* Install the ring view (referenced until the next). Without one everything stays here. */
void rt_relay_set_view(rt_relay *r, rt_peer_view *v);

/* Place every span of `req` (a checked ExportTraceServiceRequest whose traces all belong to this
 * shard; read during the call only) as above, then call done(done_arg) once - from inside this
 * call when nothing had to be forwarded, else from the loop when the last forward settled.
 * `caller_deadline` (wall clock, Unix ns; 0 = none) is when the caller stops waiting. */
void rt_relay_route(rt_relay *r, const uint8_t *req, size_t len, uint64_t caller_deadline,
                    void (*done)(void *arg), void *done_arg);

/* Forwards sent and not yet settled. */
size_t rt_relay_inflight(const rt_relay *r);

/* Frees the relay; forwards still in flight must have settled (free the clients first: that
 * settles them). NULL is a no-op. */
void rt_relay_free(rt_relay *r);

#endif
