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
 * dropped"}; engines of all workers share those series (same name and labels). */
rt_policy_engine *rt_policy_engine_new(const rt_policy_set *set, double share,
                                       bool sample_on_first_match, uint64_t now_ns,
                                       rt_metrics_registry *reg);
void rt_policy_engine_free(rt_policy_engine *e);
const rt_policy_set *rt_policy_engine_set(const rt_policy_engine *e);

/* Bytes of per-trace state (a multiple of 8; may be 0). */
size_t rt_policy_state_size(const rt_policy_engine *e);
void rt_policy_state_init(const rt_policy_engine *e, void *state);
/* Account one span. `v` is a span view from rt_otlp_scan_next (or rt_otlp_span_parse with the
 * resource/scope slices filled in), so v->resource gives resource attributes. Malformed nested
 * attributes are ignored (the request was validated on receipt). */
void rt_policy_observe(const rt_policy_engine *e, void *state, const rt_otlp_span_view *v);

typedef struct rt_policy_result {
    rt_decision decision;
    /* Index of the top-level policy that decided it: for SAMPLED the first policy in config
     * order that sampled (its name goes into the `tailsampling.policy` attribute); for DROPPED
     * the drop policy; -1 for NOT_SAMPLED. */
    int policy;
} rt_policy_result;

/* Decide a trace (charges token buckets of rate-limiting policies that are evaluated).
 * Returns out->decision. */
rt_decision rt_policy_decide(rt_policy_engine *e, void *state, const rt_trace_summary *sum,
                             uint64_t now_ns, rt_policy_result *out);

#endif
