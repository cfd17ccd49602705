/* trace_buffer.h - one worker's share of the sampler's pending traces: raw span bytes grouped
 * per trace, the decision timers, the bounds, the decision caches and duplicate suppression.
 *
 * A sampler runs one rt_tbuf per worker thread; traces are sharded over workers by trace-id
 * hash (rt_tbuf_shard_of), so a trace is only ever touched by one thread and nothing here
 * takes a lock. Time is always passed in (`now_ns`, monotonic), so tests drive it.
 *
 * Storage: span bytes are copied once into per-trace storage; the Resource and
 * InstrumentationScope blocks they came under are interned per buffer (refcounted, keyed by
 * content), so a thousand spans of one service share one copy. The per-trace summary
 * (rt_trace_summary) and the policy engine's per-trace state are updated on ingest, so deciding
 * never re-parses spans.
 *
 * When a trace is decided (rt_tbuf_decide_cause):
 *   - decision_wait after its first span (OTel semantics), or
 *   - wait_after_root after its root span arrived (if > 0), or
 *   - max_age after its first span whatever else happens (a hard bound), or
 *   - early, when a new trace would exceed max_traces or a new span max_bytes (never thrown
 *     away undecided): settled traces first (rt_policy_settled: kept whatever comes; asked
 *     only while the buffer is over half a bound), then complete ones (root span arrived), then
 *     the oldest, each class oldest first (early_decision_picks_total{trace}), or
 *   - at shutdown (rt_tbuf_decide_all).
 * Timers are a hashed timing wheel (tick resolution ~10 ms), so 10^6 pending traces cost
 * nothing per tick beyond the ones that are due.
 *
 * A kept trace is emitted as one complete ExportTraceServiceRequest (spans grouped under their
 * resource and scope) in which every span carries the attribute `tailsampling.policy` = name of
 * the policy that kept it, appended without re-encoding the span. Requests emitted may be
 * concatenated by the exporter (repeated fields concatenate in protobuf).
 *
 * Adjusted counts (always on): every emitted kept span - whole trace, late span of a sampled
 * trace, reservoir flush - also gets
 *   - the double attribute RT_ADJ_ATTR ("ringtail.sampling.adjusted_count") = the span's
 *     adjusted count: the trace's count (rt_policy_result.adjusted_count, or seen / held for the
 *     reservoir) times the count of a `th` the span already carried; omitted when unknown (kept
 *     only by rate limiters or composites);
 *   - its W3C trace_state rewritten by rt_adj_tracestate_rewrite (`ot=th:<hex>` for the count;
 *     `th` erased when the count is unknown; a span without trace_state and count 1 gets
 *     "ot=th:0"), appended as a new field 3 after the span's bytes: the last occurrence of a
 *     scalar field wins, so the span is not re-encoded. Nothing is appended when the rewrite
 *     leaves trace_state as it was.
 * The sampled decision cache remembers the count, so late spans carry the trace's count.
 *
 * Reservoir (a `reservoir` policy in the set): a trace the engine reports as eligible (nothing
 * else kept or dropped it) is offered to the buffer's bottom-k reservoir (policy.h). If it is
 * held, it stays in this buffer's storage - its bytes count in buffered_bytes and max_bytes, but
 * it is no longer pending (not in pending_traces / max_traces, no timer) - and late spans are
 * appended to it (duplicates suppressed; a late span that would take it over max_trace_bytes is
 * discarded alone). If not held (reservoir full, higher priority) it is not sampled at once.
 * When the window ends (checked at each ingest and tick, before anything is decided) every held
 * trace is exported with the reservoir's name and adjusted count seen / held; a held trace
 * evicted by a lower priority, or given up for bytes (make_room, when no pending trace is left;
 * highest priority first), is finished as not sampled. rt_tbuf_decide_all and
 * rt_tbuf_set_engine flush held traces as at a window end; rt_tbuf_discard_all discards them.
 *
 * After the decision the trace id goes into the sampled or the not-sampled decision cache
 * (bounded, oldest forgotten first). A late span of a cached trace follows that decision at
 * once: emitted alone (with the same policy attribute) or discarded and counted. A late span of
 * a trace no longer in either cache starts a new trace (and is counted as such).
 *
 * Duplicates: a span whose (trace id, span id) was already buffered for a pending trace is
 * discarded and counted; a late span of a sampled trace is checked against a bounded set of
 * the span ids already emitted for recently sampled traces, so a client retry arriving after
 * the decision is not exported twice either.
 *
 * Moving traces between samplers (handoff.h decides when; this buffer only does it): a pending or
 * held trace can be taken out whole (rt_tbuf_extract: its spans as they arrived plus what its
 * decision needs, rt_tbuf_trace_state) and forgotten here without a decision; the receiving
 * buffer ingests the spans like any others, then adopts the state (rt_tbuf_adopt), so
 * decision_wait counts from the trace's first span wherever that arrived. Decisions travel too:
 * rt_tbuf_each_decision reads the decision caches, rt_tbuf_apply_decision remembers a decision
 * made elsewhere (and a trace pending here follows it at once), and the `decided` hook reports
 * every decision made here.
 *
 * Metrics (registered by rt_tbuf_new in `reg`, shared by every worker's buffer; names prefixed
 * ringtail_sampler_): traces_received_total, spans_received_total, traces_pending,
 * spans_buffered, bytes_buffered, reservoir_held_traces, decisions_total{decision,cause} (cause
 * reservoir: the final outcome of a held trace; cause peer: a decision another sampler made and
 * sent here), early_decisions_total{reason=traces|bytes|reservoir_bytes},
 * early_decision_picks_total{trace=settled|complete|in_progress},
 * late_spans_total{cached=sampled|not_sampled|none}, duplicate_spans_total, decision_holds_total,
 * decisions_postponed_total,
 * spans_discarded_total{reason=not_sampled|dropped_by_policy|late_not_sampled|duplicate|
 * trace_too_large|shutdown}, decision_latency_seconds (histogram, first span to decision).
 *
 * Notes on the implementation (trace_buffer.c):
 *   - Once the root span has arrived (and wait_after_root > 0), the trace is due at root arrival
 *     + wait_after_root, which replaces first + decision_wait ("once the root span arrives, decide
 *     after this"); max_age then caps it. That is the only case in which max_age changes anything,
 *     since decision_wait counts from the first span and max_age >= decision_wait.
 *   - late_spans_total has no cached="none" series: a late span of a trace no longer in either
 *     cache cannot be told from the first span of a new trace; it starts a new trace and is
 *     counted in traces_received_total.
 *   - Duplicate detection needs an 8-byte, non-zero span id; other spans are never deduplicated.
 *   - buffered_bytes counts requested allocation sizes plus 16 bytes per allocation (malloc
 *     header) and two hash-table slots per trace; max_bytes bounds it before each span is copied
 *     (the Resource/scope blocks a span comes under are interned, and counted, first).
 */
#ifndef RT_TRACE_BUFFER_H
#define RT_TRACE_BUFFER_H

#include "buf.h"
#include "metrics.h"
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rt_tbuf_cause {
    RT_TBUF_CAUSE_WAIT = 0,  /* decision_wait elapsed */
    RT_TBUF_CAUSE_ROOT,      /* wait_after_root elapsed after the root span */
    RT_TBUF_CAUSE_MAX_AGE,   /* hard maximum age */
    RT_TBUF_CAUSE_OVERFLOW,  /* decided early: max_traces or max_bytes */
    RT_TBUF_CAUSE_SHUTDOWN,  /* rt_tbuf_decide_all */
    RT_TBUF_CAUSE_RESERVOIR, /* a held trace resolved: window end, eviction, flush */
    RT_TBUF_CAUSE_PEER,      /* another sampler decided it (rt_tbuf_apply_decision) */
    RT_TBUF_CAUSE_COUNT_,
} rt_tbuf_cause;

#define RT_TBUF_SAMPLER_ID_ATTR "ringtail.sampler.id"
#define RT_TBUF_DEFER_NS        (50ull * 1000 * 1000) /* see rt_tbuf_opts.defer */

/* A decision made here: `policy` names the policy that kept the trace ("" unless sampled),
 * `count` its adjusted count (RT_ADJ_UNKNOWN when unknown; 0 unless sampled). */
typedef void (*rt_tbuf_decided_fn)(void *arg, const uint8_t trace_id[16], rt_decision d,
                                   const char *policy, double count);

typedef struct rt_tbuf_opts {
    uint64_t decision_wait_ns;       /* > 0 */
    uint64_t wait_after_root_ns;     /* 0 = off */
    uint64_t max_age_ns;             /* 0 = off; else >= decision_wait_ns */
    uint64_t max_traces;             /* this buffer's share of num_traces; > 0 */
    uint64_t max_bytes;              /* this buffer's share of max_buffer_bytes; > 0 */
    uint64_t max_trace_bytes;        /* maximum_trace_size_bytes: a pending trace over this is
                                      * discarded (counted, reason trace_too_large); 0 = off */
    uint64_t sampled_cache_size;     /* trace ids remembered as kept (this buffer's share) */
    uint64_t non_sampled_cache_size; /* trace ids remembered as not kept */
    uint64_t emitted_span_ids;       /* span ids of sampled traces remembered for dedup */
    bool block_on_overflow;          /* rt_tbuf_full() reports pressure instead of deciding
                                      * early (ingest still never drops: it decides early) */
    const char *policy_attr;         /* attribute key added to kept spans; NULL =
                                      * "tailsampling.policy" */
    const char *sampler_id;          /* non-empty: every emitted Resource gets the attribute
                                      * RT_TBUF_SAMPLER_ID_ATTR = this, so a backend (and the
                                      * bench sink) can tell which sampler exported a span */
    rt_tbuf_decided_fn decided;      /* optional: every final decision made here (not a trace
                                      * only held by the reservoir, not rt_tbuf_apply_decision),
                                      * called after its spans were emitted or discarded */
    void *decided_arg;
    /* Optional: a pending trace is due by its timer. Return true to have its decision put off
     * by RT_TBUF_DEFER_NS, because the caller is about to take it away (rt_tbuf_extract: it
     * moves to the sampler that owns it now, which decides it on arrival). The hook must stop
     * returning true for a trace it cannot take. */
    bool (*defer)(void *arg, const uint8_t trace_id[16]);
    void *defer_arg;
    /* Optional: asked at each tick before due traces are decided, and after each decision. While
     * it returns true the tick stops: traces that are due wait, still pending and still taking
     * spans, and are decided at a later tick once it returns false (back-pressure: the exporter
     * cannot take kept traces now). A backlog costs a tick at most TICK_CHUNK (64) entries put
     * back. Decisions that ingest forces (max_traces, max_bytes), peer decisions, reservoir
     * windows and rt_tbuf_decide_all do not ask. Counted: decision_holds_total (ticks). */
    bool (*hold)(void *arg);
    void *hold_arg;
} rt_tbuf_opts;

/* A kept trace, or a late span of a kept trace: `req` holds a complete
 * ExportTraceServiceRequest with `spans` spans. The callee may take the bytes with
 * rt_buf_steal (the buffer reuses `req` otherwise). Called from inside rt_tbuf_ingest,
 * rt_tbuf_tick, rt_tbuf_decide_all and rt_tbuf_set_engine (reservoir flush). */
typedef void (*rt_tbuf_emit_fn)(void *arg, rt_buf *req, size_t spans);

typedef struct rt_tbuf rt_tbuf;

/* `engine` is borrowed (see rt_tbuf_set_engine); `reg` may be NULL (no metrics). */
rt_tbuf *rt_tbuf_new(const rt_tbuf_opts *opts, rt_policy_engine *engine, rt_tbuf_emit_fn emit,
                     void *emit_arg, rt_metrics_registry *reg);
/* Frees everything still pending WITHOUT deciding it (call rt_tbuf_decide_all first). */
void rt_tbuf_free(rt_tbuf *b);

/* Which of `n_shards` buffers owns a trace (stable; independent of the ring's hash). */
unsigned rt_tbuf_shard_of(const uint8_t *trace_id, size_t len, unsigned n_shards);

/* Buffer every span of `req`, a validated ExportTraceServiceRequest whose traces all belong to
 * this buffer. Spans of decided traces follow the cached decision at once; duplicates are
 * discarded. May decide older traces early to stay within bounds (and emit them). Returns the
 * number of spans taken (buffered, emitted or discarded as above: all of them), or -1 if `req`
 * turns out malformed (logged; nothing is taken: the whole request is walked before any span
 * is, and callers pass validated requests, so this is a bug guard). */
long rt_tbuf_ingest(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns);

/* rt_tbuf_ingest for a request nobody has checked yet: the walk that parses the spans also
 * checks everything rt_otlp_validate checks, so a request is read once, not validated and then
 * parsed. Malformed: -1 with the reason in `err` (naming the place, e.g.
 * "resource_spans[0].scope_spans[1].spans[3]: Span: ..."), and nothing is taken. */
long rt_tbuf_ingest_checked(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns, char *err,
                            size_t errlen);

/* rt_tbuf_ingest_checked that first asks accept(arg, trace_id, len) of every trace the request
 * holds (once per run of its spans, in the walk that parses them, before any span is taken): if
 * it says no to one, nothing is taken and RT_TBUF_DECLINED is returned (so a sampler can hand
 * the request to its slower path - some trace belongs to another sampler - at the cost of one
 * ring lookup per trace in the usual case, instead of a walk of its own). A request refused
 * before a trace is declined is refused as malformed (-1). */
#define RT_TBUF_DECLINED (-2)
typedef bool (*rt_tbuf_accept_fn)(void *arg, const uint8_t *trace_id, size_t len);
long rt_tbuf_ingest_if(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns,
                       rt_tbuf_accept_fn accept, void *arg, char *err, size_t errlen);

/* Decide every trace that is due at `now_ns`. Call from a periodic timer (every ~10-100 ms). */
void rt_tbuf_tick(rt_tbuf *b, uint64_t now_ns);
/* Decide every pending trace now (cause SHUTDOWN), then flush the reservoir's held traces
 * (count seen / held for the partial window). */
void rt_tbuf_decide_all(rt_tbuf *b, uint64_t now_ns);
/* rt_tbuf_decide_all in steps, for a shutdown that must not overrun the exporter: with
 * `ask_hold`, pending traces are decided oldest first only while the hold hook lets them, and it
 * returns false with the rest still pending (call again later); once none is pending the
 * reservoir is flushed and it returns true. Without `ask_hold` it is rt_tbuf_decide_all. */
bool rt_tbuf_decide_pending(rt_tbuf *b, uint64_t now_ns, bool ask_hold);

/* Drop every pending trace undecided, and every trace held by the reservoir, counting their
 * spans as discarded (reason shutdown); for drop_pending_traces_on_shutdown. */
void rt_tbuf_discard_all(rt_tbuf *b);

/* Switch to a new engine (policy reload): traces held by the old engine's reservoir are
 * exported first as at a window end (the old engine must still be alive); then every pending
 * trace's policy state is rebuilt by observing its buffered spans again with `engine`, so
 * decisions use the new policies. The old engine is no longer referenced afterwards. */
void rt_tbuf_set_engine(rt_tbuf *b, rt_policy_engine *engine);

/* With block_on_overflow: true while the buffer is at its trace or byte bound, so intake should
 * answer 429/503 instead of taking more. Always false otherwise. */
bool rt_tbuf_full(const rt_tbuf *b);

/* ---- moving traces and decisions to another sampler -------------------------------------- */

/* True when spans of `trace_id` belong here whatever the ring says: the trace is pending or held
 * here, or its decision is in a decision cache (late spans follow it here). */
bool rt_tbuf_knows(const rt_tbuf *b, const uint8_t trace_id[16]);

/* What a trace's decision needs besides its spans, in this process's monotonic clock. */
typedef struct rt_tbuf_trace_state {
    uint8_t trace_id[16];
    uint64_t first_ns; /* its first span's arrival */
    uint64_t root_ns;  /* its root span's arrival (with root_seen) */
    bool root_seen;
    bool held; /* decided and held by the reservoir: to be decided again at once */
} rt_tbuf_trace_state;

/* Take trace `trace_id` out of this buffer, undecided: append its spans to `out` as an
 * ExportTraceServiceRequest (each under its original Resource and scope, bytes as they arrived,
 * nothing added; requests appended to one buffer concatenate into one), fill *st, and forget the
 * trace (its span ids too: nothing is counted as discarded). A held trace also leaves the
 * reservoir, where it no longer counts as offered. Returns its span count, or 0 (out and *st
 * untouched) when the trace is neither pending nor held here. */
size_t rt_tbuf_extract(rt_tbuf *b, const uint8_t trace_id[16], rt_buf *out,
                       rt_tbuf_trace_state *st);

/* After the spans of a moved trace were ingested here: its first and root arrivals become the
 * earlier of ours and *st's (decision_wait does not restart), and a trace that was held (st->held)
 * is decided at the next tick. Nothing happens when the trace is not pending here (its spans
 * followed a cached decision). The trace keeps its place in the oldest-first order of early
 * decisions, which is arrival order here. */
void rt_tbuf_adopt(rt_tbuf *b, const rt_tbuf_trace_state *st, uint64_t now_ns);

/* Some spans of `trace_id` were refused with back-pressure (429 + Retry-After) and the client is
 * sending them again: if the trace is pending here, its timer does not decide it before
 * `until_ns` (still capped by max_age), so the decision sees them. Later calls only move it
 * further. Counted once per trace: decisions_postponed_total. */
void rt_tbuf_postpone(rt_tbuf *b, const uint8_t trace_id[16], uint64_t until_ns);

/* Call fn for the id of every pending trace (oldest first), then every held one. fn must not
 * change the buffer. */
void rt_tbuf_each_trace(const rt_tbuf *b, void (*fn)(void *arg, const uint8_t trace_id[16]),
                        void *arg);

/* Read the decision caches from position `cursor` (0 to start): calls fn for up to `max`
 * entries (sampled ones with their policy name and adjusted count, then not-sampled ones with
 * policy "" and count 0), newest first in each: the traces decided last are the likeliest to
 * see late spans. Returns the cursor to continue from, or SIZE_MAX once every entry was read.
 * Entries put or pushed out between calls may be seen once, twice or not at all. */
size_t rt_tbuf_each_decision(const rt_tbuf *b, size_t cursor, size_t max, rt_tbuf_decided_fn fn,
                             void *arg);

/* A decision another sampler made for `trace_id` (SAMPLED with the name of the policy that kept
 * it, `plen` bytes, and its adjusted count; or NOT_SAMPLED / DROPPED): remembered in the decision
 * caches, and a trace pending or held here follows it now (emitted or discarded, counted with
 * cause peer). The decided hook is not called. */
void rt_tbuf_apply_decision(rt_tbuf *b, const uint8_t trace_id[16], rt_decision d,
                            const char *policy, size_t plen, double count, uint64_t now_ns);

typedef struct rt_tbuf_stats {
    uint64_t pending_traces; /* not decided yet (held traces not included) */
    uint64_t held_traces;    /* held by the reservoir */
    uint64_t buffered_bytes; /* span bytes + interned blocks + per-trace/per-span overhead */
    uint64_t buffered_spans;
} rt_tbuf_stats;
void rt_tbuf_stats_get(const rt_tbuf *b, rt_tbuf_stats *out);

#endif
