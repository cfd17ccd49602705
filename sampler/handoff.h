/* handoff.h - moving pending traces, and the decisions already made, to their new owner when
 * ownership changes.
 *
 * What moves, and why this way (DESIGN.md, "Membership changes without broken traces"):
 *   - Whole pending traces move, spans and state (first arrival, root arrival, reservoir hold),
 *     to the owner by this sampler's new ring view. The alternative - leave the trace where it is
 *     and have the new owner send the trace's new spans back until it is decided - moves fewer
 *     bytes on a ring edit, but it needs every sampler to know which traces are in flight
 *     elsewhere and for how long, and a sampler that is leaving cannot use it at all. Moving
 *     the trace is one mechanism for every case (ring edit, a node marked down or up, drain,
 *     a trace that arrived at the wrong sampler while two disagreed about the ring), and the
 *     bytes are bounded: traces younger than decision_wait, for the keys that moved only.
 *   - Decisions move too: the decision caches are read once per change and every entry whose
 *     owner changed (to someone else) is sent to its new owner, and every decision made here
 *     for a trace owned elsewhere is sent to the owner as it is made. So late spans follow the
 *     first decision wherever they land (the span-id cache for duplicates after a decision
 *     does not move).
 *   - When: on every new view (rt_handoff_set_view: a ring file edit, a peer marked down or up,
 *     this sampler joining or leaving), and for single traces reported with rt_handoff_recheck
 *     (they arrived forwarded while this sampler does not own them, or were kept here because
 *     the owner did not take a forward).
 *   - Paced and bounded, off the ingest path: the work runs in rt_handoff_tick (the shard's
 *     10 ms timer), at most `rate` bytes a second, in requests of about `batch` bytes, with at
 *     most `max_inflight` bytes unacknowledged; oldest traces first (they are due soonest).
 *   - Nothing is lost on failure: a batch the new owner does not acknowledge (after the
 *     client's retries) is ingested here again with its traces' state, and those traces stay
 *     here until the view changes again (decided here; counted). Decisions in it are counted
 *     as lost (the decision was made and acted on here; only late spans elsewhere miss it).
 *
 * Receiving (rt_handoff_receive): after the intake ingested a HANDOFF request's spans, its trace
 * states are adopted (rt_tbuf_adopt) and any request's decisions applied (rt_tbuf_apply_decision).
 * Handed-off traces are never handed on because of where they arrived; only a later change of
 * this sampler's own view moves them again, so two samplers that disagree cannot bounce a trace.
 *
 * Metrics (ringtail_sampler_): handoff_traces_total{direction=sent|received},
 * handoff_spans_total{direction}, handoff_bytes_total{direction} (request bytes),
 * handoff_decisions_total{direction}, handoff_failed_traces_total{reason} (kept here instead),
 * handoff_lost_decisions_total{reason}, handoff_queued_traces (gauge).
 *
 * One per shard, used on its worker's thread only.
 */
#ifndef RT_HANDOFF_H
#define RT_HANDOFF_H

#include "metrics.h"
#include "peer_clients.h"
#include "peer_view.h"
#include "trace_buffer.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_handoff_opts {
    const char *sender;       /* this sampler's node id (copied) */
    rt_peer_clients *clients; /* borrowed: this worker's */
    rt_tbuf *tbuf;            /* borrowed: this shard's */
    /* Ingest a request here (a batch that could not be handed over). */
    void (*ingest)(void *arg, const uint8_t *pb, size_t len);
    void *arg;
    uint64_t rate;        /* bytes per second this shard may send */
    size_t batch;         /* target request size */
    size_t max_inflight;  /* unacknowledged bytes at most */
    uint64_t deadline_ns; /* a request's deadline after it is sent: the clients' timeout */
} rt_handoff_opts;

typedef struct rt_handoff rt_handoff;

rt_handoff *rt_handoff_new(const rt_handoff_opts *opts, rt_metrics_registry *reg);

/* Install a new view (referenced until the next). Queues every pending and held trace whose
 * owner is now another node, and starts reading the decision caches for entries whose owner
 * changed. Call before the worker's peer clients switch to the view (what is batched for the
 * old view is sent first). */
void rt_handoff_set_view(rt_handoff *h, rt_peer_view *v, uint64_t now_ns);

/* Look at trace `trace_id` at the next tick: hand it over if another node owns it. */
void rt_handoff_recheck(rt_handoff *h, const uint8_t trace_id[16]);

/* The trace buffer's defer hook (rt_tbuf_opts.defer, arg = the rt_handoff): a trace that is due
 * here while another node owns it is handed over at the next tick, ahead of the queue and
 * outside the rate (it is decided on arrival there, with the spans the owner has of it too);
 * false (decide it here) when it cannot be handed over. */
bool rt_handoff_due(void *arg, const uint8_t trace_id[16]);

/* The trace buffer's decided hook (rt_tbuf_opts.decided, arg = the rt_handoff): a decision for
 * a trace another node owns is sent to it. */
void rt_handoff_decided(void *arg, const uint8_t trace_id[16], rt_decision d, const char *policy,
                        double count);

/* Do the paced work that is due. */
void rt_handoff_tick(rt_handoff *h, uint64_t now_ns);

/* Nothing queued, nothing being read, nothing unacknowledged. */
bool rt_handoff_idle(const rt_handoff *h);

/* `req` (its `spans` spans already ingested here) came from a peer: adopt the state of the
 * traces it handed over, and apply its decisions. */
void rt_handoff_receive(rt_handoff *h, const uint8_t *req, size_t len, size_t spans,
                        uint64_t now_ns);

/* Frees the hand-off; sends in flight must have settled (free the peer clients first). NULL is
 * a no-op. */
void rt_handoff_free(rt_handoff *h);

#endif
