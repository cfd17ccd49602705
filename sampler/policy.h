/* policy.h - the tail-sampling policy engine: the OTel Collector `tail_sampling` policy list,
 * parsed once into an immutable set, and evaluated per trace from a running summary.
 *
 * Life of a trace as the engine sees it:
 *   rt_policy_state_init(e, st)            when the trace's first span arrives
 *   rt_policy_observe(e, st, &span_view)   for every span as it arrives (never again later)
 *   rt_policy_decide(e, st, &summary, now) once, when the buffer decides
 * `st` is an opaque per-trace block of rt_policy_state_size(e) bytes owned by the buffer; each
 * leaf policy keeps what it needs there (a "matched" flag, a running sum, ...), so deciding never
 * re-parses spans. Policies that only need what every trace has (duration, span count, bytes)
 * read the rt_trace_summary the buffer maintains instead.
 *
 * Threads: a set is immutable and may be shared by every worker. An engine belongs to one
 * worker thread (it holds token buckets and outcome counters); each worker makes its own from the
 * shared set, with `share` = 1/workers of every rate limit, because traces are sharded over
 * workers by trace-id hash.
 *
 * Decision rule (OTel): drop policies are evaluated first and a Dropped outcome wins; otherwise
 * the trace is kept if any policy samples it (with sample_on_first_match, evaluation stops at
 * the first policy that samples; drop policies still run first); otherwise it is not kept.
 * Ours: a `reservoir` policy is evaluated after every other one and only sees the traces they
 * did not keep or drop (see "the reservoir" below); every kept trace carries an adjusted count.
 */
#ifndef RT_POLICY_H
#define RT_POLICY_H

#include "config.h"
#include "metrics.h"
#include "otlp_scan.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rt_decision {
    RT_DECISION_NOT_SAMPLED = 0,
    RT_DECISION_SAMPLED = 1,
    RT_DECISION_DROPPED = 2,
} rt_decision;

/* What the buffer keeps for every trace, whatever the policies (updated on each span). */
typedef struct rt_trace_summary {
    uint8_t trace_id[16];
    uint64_t span_count;       /* distinct spans buffered (duplicates not counted) */
    uint64_t bytes;            /* encoded span bytes buffered */
    uint64_t min_start_ns;     /* earliest start_time_unix_nano (UINT64_MAX while no span) */
    uint64_t max_end_ns;       /* latest end_time_unix_nano (0 while no span) */
    uint64_t first_arrival_ns; /* monotonic clock at the first span */
    bool root_seen;            /* a span with an empty parent_span_id arrived */
} rt_trace_summary;

typedef struct rt_policy_set rt_policy_set;
typedef struct rt_policy_engine rt_policy_engine;

/* Parse the `policies` list of a tail_sampling block (`node` is the sequence; `path` is its key
 * path for messages, e.g. "tail_sampling.policies"). Every error is reported through `ctx` as
 * "file:line: path[i].key: reason" (unknown key, unknown type, missing name, duplicate name,
 * bad regex, ottl_condition not supported, ...); returns NULL if there was any. */
rt_policy_set *rt_policy_set_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path);
void rt_policy_set_free(rt_policy_set *set);
/* Top-level policies, in config order (for metrics: decisions by policy). */
size_t rt_policy_set_count(const rt_policy_set *set);
const char *rt_policy_set_name(const rt_policy_set *set, size_t i);
const char *rt_policy_set_type(const rt_policy_set *set, size_t i);

/* An engine evaluating `set` (borrowed; must outlive the engine) on one worker. `share` in
 * (0, 1] scales every rate limit (rate_limiting, bytes_limiting, composite). `now_ns` starts the
 * token buckets (full at start).
 * With `reg` (may be NULL) every top-level policy's own outcome of each evaluation is counted
 * in ringtail_sampler_policy_evaluations_total{policy="<name>",outcome="sampled|not_sampled|
 * dropped"}; engines of all workers share those series (same name and labels). A reservoir
 * policy's outcome is counted not_sampled when something else decided the trace, and otherwise
 * by the trace buffer through rt_policy_count_outcome once the held trace's fate is known. */
rt_policy_engine *rt_policy_engine_new(const rt_policy_set *set, double share,
                                       bool sample_on_first_match, uint64_t now_ns,
                                       rt_metrics_registry *reg);
void rt_policy_engine_free(rt_policy_engine *e);
const rt_policy_set *rt_policy_engine_set(const rt_policy_engine *e);

/* Bytes of per-trace state (a multiple of 8; may be 0). */
size_t rt_policy_state_size(const rt_policy_engine *e);
/* The span attribute keys the engine's policies look up: pass them to
 * rt_otlp_scan_next_keyed and rt_policy_observe uses the walk's index. */
const rt_otlp_keyset *rt_policy_engine_keys(const rt_policy_engine *e);
void rt_policy_state_init(const rt_policy_engine *e, void *state);
/* Account one span. `v` is a span view from rt_otlp_scan_next[_keyed] (or rt_otlp_span_parse with
 * the resource/scope slices filled in), so v->resource gives resource attributes. Malformed nested
 * attributes are ignored (the request was validated on receipt). The engine keeps the attribute
 * index of the last resource seen, so an engine is observed from one thread at a time. */
void rt_policy_observe(rt_policy_engine *e, void *state, const rt_otlp_span_view *v);

typedef struct rt_policy_result {
    rt_decision decision;
    /* Index of the top-level policy that decided it: for SAMPLED the first policy in config
     * order that sampled (its name goes into the `tailsampling.policy` attribute); for DROPPED
     * the drop policy; -1 for NOT_SAMPLED. */
    int policy;
    /* SAMPLED: the trace's adjusted count (adjusted_count.h): 1 when a keep-all policy sampled
     * it; else the count of the first sampling policy (config order) whose count is known
     * (probabilistic: 1/ratio; and: the product of its subs'); else RT_ADJ_UNKNOWN (0: only
     * rate limiters or composites sampled it). 0 for other decisions. */
    double adjusted_count;
    /* NOT_SAMPLED: index of the set's reservoir policy when the trace is eligible for it (no
     * drop policy dropped it and no other policy sampled it): the caller offers it to its
     * rt_reservoir and reports the final outcome with rt_policy_count_outcome. -1 otherwise. */
    int reservoir;
} rt_policy_result;

/* Decide a trace (charges token buckets of rate-limiting policies that are evaluated).
 * Returns out->decision. The reservoir policy, if any, is evaluated last, and only reported
 * (out->reservoir): the engine holds no traces. */
rt_decision rt_policy_decide(rt_policy_engine *e, void *state, const rt_trace_summary *sum,
                             uint64_t now_ns, rt_policy_result *out);

/* Settled: some top-level policy samples the trace now and no span still to come can change
 * that - a monotone leaf (policy_internal.h: status_code, latency without an upper bound,
 * span_count without max_spans, string / boolean / numeric attribute matches not inverted and
 * without an aggregate, trace_state, trace_flags, probabilistic, always_sample) or an `and` of
 * such - and the set has no drop policy. rt_policy_decide will then say SAMPLED whenever it is
 * asked, so the buffer can decide such a trace first when it must decide early. Reads the state
 * only (no token is charged). rt_policy_can_settle: whether this set can settle any trace. */
bool rt_policy_settled(const rt_policy_engine *e, void *state, const rt_trace_summary *sum);
bool rt_policy_can_settle(const rt_policy_engine *e);

/* Count one final outcome of top-level policy `policy` in policy_evaluations_total (used for a
 * reservoir policy, whose outcome is known only when its window ends or the trace is evicted).
 * No-op without a registry or for an index out of range. */
void rt_policy_count_outcome(rt_policy_engine *e, int policy, rt_decision d);

/* ---- the reservoir (a baseline: a uniform sample of the traces nothing else kept) ----------
 *
 * Config (policy_reservoir.c), top level only, at most one per set:
 *     - name: baseline
 *       type: reservoir
 *       reservoir: {traces_per_window: 1000, window: 1m}
 * Per engine the reservoir keeps slots = ceil(traces_per_window * share) traces per window
 * [w * window, (w + 1) * window) of the monotonic now_ns. Selection is bottom-k: the traces with
 * the lowest priority (a seeded 64-bit MurmurHash3 of the trace id: deterministic per trace id,
 * uniform over random ids) among the `seen` eligible traces of the window. At the window's end
 * each held trace is kept with adjusted count seen / held (>= 1). The trace buffer owns the
 * held traces; rt_reservoir below is the bookkeeping it embeds. */

typedef struct rt_policy_reservoir_params {
    int policy;         /* index of the reservoir among the top-level policies */
    uint64_t slots;     /* ceil(traces_per_window * share), >= 1 */
    uint64_t window_ns; /* window length, >= 1 s */
} rt_policy_reservoir_params;

/* The engine's reservoir policy, if its set has one: fills *out and returns true. */
bool rt_policy_engine_reservoir(const rt_policy_engine *e, rt_policy_reservoir_params *out);

/* Priority of a trace id (16 bytes) for bottom-k selection. */
uint64_t rt_policy_reservoir_priority(const uint8_t trace_id[16]);

typedef struct rt_reservoir_ent {
    uint64_t prio;
    void *item; /* ref: the caller's (a held trace) */
} rt_reservoir_ent;

/* Bottom-k state of one window: a max-heap of at most `slots` entries. Not thread-safe. */
typedef struct rt_reservoir {
    uint64_t slots;         /* 0: no reservoir (every offer is refused) */
    uint64_t window_ns;     /* > 0 when slots > 0 */
    uint64_t window;        /* index of the current window (now_ns / window_ns) */
    uint64_t seen;          /* eligible traces offered in the current window (n_w) */
    rt_reservoir_ent *heap; /* owned; heap[0] has the highest priority */
    size_t n, cap;
} rt_reservoir;

/* Set up for `slots` traces per `window_ns` (slots 0: disabled), the window holding now_ns. */
void rt_reservoir_init(rt_reservoir *r, uint64_t slots, uint64_t window_ns, uint64_t now_ns);
void rt_reservoir_free(rt_reservoir *r);
/* True when now_ns lies past the current window (the caller flushes, then restarts). */
bool rt_reservoir_window_over(const rt_reservoir *r, uint64_t now_ns);
/* Offer an eligible trace (counted in `seen`). Returns true if it is held: there was a free
 * slot, or `prio` is lower than the highest held priority, which is then evicted into *evicted
 * (else *evicted = NULL). O(log slots). */
bool rt_reservoir_offer(rt_reservoir *r, uint64_t prio, void *item, void **evicted);
/* Remove held `item` without an outcome here (it moved to another sampler): it no longer counts
 * in `seen` either. Returns false when it is not held. O(slots). */
bool rt_reservoir_remove(rt_reservoir *r, void *item);
/* Remove and return the held item with the highest priority (NULL if none). O(log slots). */
void *rt_reservoir_pop_max(rt_reservoir *r);
/* Adjusted count of each held item if the window ended now: seen / held, at least 1. */
double rt_reservoir_count(const rt_reservoir *r);
/* Forget every held item (the caller has taken r->heap[0..n) first) and start the window
 * holding now_ns with seen = 0. */
void rt_reservoir_restart(rt_reservoir *r, uint64_t now_ns);

#endif
