/* workload.h - the agent workload model: deterministic agent turns (traces) with ground truth.
 *
 * One turn is one trace shaped as ../shared/agent-traces.md describes: a root `invoke_agent`
 * span, `chat <model>` spans with token counts and finish reasons, `execute_tool <tool>` spans
 * each with an MCP `tools/call` CLIENT child and a `tools/call` SERVER grandchild exported by
 * the MCP server's own service (its own Resource, its own batches, sometimes late), and the
 * backend calls the MCP server makes. Everything random comes from one seed: the same profile,
 * options and seed give the same turns, ids and attributes; only timestamps follow the start
 * time the caller passes in.
 *
 * The generator is used by the load generator (bench/loadgen.c), tests, and policy work:
 *
 *   rt_workload *wl = rt_workload_new(RT_WL_PROFILE_SEED, 42);
 *   const rt_wl_turn *t = rt_workload_next(wl, start_wall_ns);
 *   for each batch b in t->batches: rt_workload_encode_batch(wl, t, &t->batches[b], &req);
 *   rt_workload_manifest_line(wl, t, &line);
 *   rt_workload_free(wl);
 *
 * Ownership: the workload owns every turn it hands out; a turn (and every slice and string in
 * it) stays valid until the next rt_workload_next() or rt_workload_free(). Once warm, making a
 * turn allocates nothing: the turn's arrays and its span buffer are reused.
 */
#ifndef RT_WORKLOAD_H
#define RT_WORKLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

typedef enum rt_wl_profile {
    RT_WL_PROFILE_SEED = 0, /* the seed fleet: tool-using agent turns, ~80 spans each */
    RT_WL_PROFILE_MIXED,    /* short Q&A turns, tool-using turns and chatty turns mixed */
    RT_WL_PROFILE_SPIKE,    /* seed turns; the middle third of a run at 10x the base rate */
} rt_wl_profile;

/* Why a turn is interesting (bits of rt_wl_turn.categories; 0 is "normal"). */
enum {
    RT_WL_CAT_ERROR = 1u << 0,        /* some span has status ERROR and error.type */
    RT_WL_CAT_SLOW = 1u << 1,         /* the turn lasts more than 10 s */
    RT_WL_CAT_TOKEN_LIMIT = 1u << 2,  /* the last chat finished with "length" */
    RT_WL_CAT_DEBUG_TENANT = 1u << 3, /* tenant.id is acme-corp or big-bank-inc */
    RT_WL_CAT_TOOL_HEAVY = 1u << 4,   /* tool calls >= tool_heavy_min */
};
#define RT_WL_NCATS 5

/* What kind of turn it is (the mixed profile uses all three). */
typedef enum rt_wl_kind {
    RT_WL_KIND_TOOL = 0, /* 4-8 chats, tool calls */
    RT_WL_KIND_QA,       /* 1-2 chats, at most one tool call */
    RT_WL_KIND_CHATTY,   /* many chats, few tools */
} rt_wl_kind;

/* Knobs; rt_workload_opts_default() fills the profile's defaults. Rates are probabilities per
 * turn, drawn independently. */
typedef struct rt_workload_opts {
    rt_wl_profile profile;
    uint64_t seed;
    double error_rate;        /* default 0.03 */
    double slow_rate;         /* default 0.02: turns of 12-60 s (most near 47 s) */
    double token_limit_rate;  /* default 0.02 */
    double debug_tenant_rate; /* default 0.02: acme-corp or big-bank-inc */
    double tool_heavy_rate;   /* default 0.15 of tool-using turns */
    uint32_t tool_heavy_min;  /* default 25 tool calls */
    double late_rate;         /* default 0.05: MCP server batches held back 0.5-3 s */
    uint32_t batch_delay_ms;  /* SDK batch delay per service; default 200 */
    uint32_t batch_max_spans; /* SDK batch size cap; default 512 */
} rt_workload_opts;

/* One span of a turn. Offsets are relative to the turn start. */
typedef struct rt_wl_span {
    uint8_t span_id[8];
    uint8_t parent_id[8]; /* all zero on the root */
    uint32_t parent;      /* index of the parent span in the turn; UINT32_MAX on the root */
    uint16_t service;     /* index of the exporting service (rt_workload_service_name) */
    uint16_t kind;        /* OTLP SpanKind: 1 INTERNAL, 2 SERVER, 3 CLIENT */
    uint64_t start_off_ns, end_off_ns;
    uint64_t ready_off_ns; /* when the SDK has it to export: end, plus lateness */
    size_t pb_off, pb_len; /* the encoded Span message inside rt_wl_turn.pb */
    bool error;            /* status ERROR */
} rt_wl_span;

/* A group of spans of one service that an SDK exports together. */
typedef struct rt_wl_batch {
    uint16_t service;
    uint64_t send_off_ns; /* relative to the turn start */
    size_t first, n;      /* indices into rt_wl_turn.order */
} rt_wl_batch;

typedef struct rt_wl_turn {
    uint64_t index; /* 0, 1, 2 ... */
    uint8_t trace_id[16];
    uint64_t start_wall_ns; /* as passed to rt_workload_next */
    uint64_t duration_ns;
    uint32_t categories; /* RT_WL_CAT_* bits */
    rt_wl_kind kind;
    const char *tenant; /* ref into the workload */
    const char *agent;  /* ref into the workload */
    uint32_t chats, tool_calls;
    int64_t input_tokens_sum, output_tokens_sum;

    rt_wl_span *spans; /* n_spans spans, span 0 is the root */
    size_t n_spans;
    rt_buf pb;            /* every span's encoded Span message, back to back */
    uint32_t *order;      /* span indices grouped by batch (batch b covers order[first..first+n)) */
    rt_wl_batch *batches; /* sorted by send_off_ns */
    size_t n_batches;

    size_t cap_spans, cap_batches; /* internal */
} rt_wl_turn;

typedef struct rt_workload rt_workload;

void rt_workload_opts_default(rt_workload_opts *o, rt_wl_profile profile, uint64_t seed);

/* A workload with the profile's defaults. Never NULL (aborts on OOM). */
rt_workload *rt_workload_new(rt_wl_profile profile, uint64_t seed);
/* A workload with explicit options (copied). Returns NULL with a message in `err` when an
 * option is out of range (a rate outside [0, 1], batch_max_spans 0, ...). */
rt_workload *rt_workload_new_opts(const rt_workload_opts *o, char *err, size_t errlen);
void rt_workload_free(rt_workload *wl);

/* Generate the next turn, starting at wall-clock `start_wall_ns` (span timestamps are that plus
 * the span's offsets). The turn is owned by the workload (see the top of this file). */
const rt_wl_turn *rt_workload_next(rt_workload *wl, uint64_t start_wall_ns);

/* Services: every span names one; each has its own pre-encoded Resource and scope. */
size_t rt_workload_service_count(const rt_workload *wl);
const char *rt_workload_service_name(const rt_workload *wl, size_t service);

/* Append span `i` of `t` as a ScopeSpans.spans field (tag, length, bytes) to `out`. */
void rt_workload_append_span_field(rt_buf *out, const rt_wl_turn *t, size_t i);

/* Append a whole ExportTraceServiceRequest to `out`: one ResourceSpans for `service` with its
 * Resource, one ScopeSpans with its scope, and `spans` (already ScopeSpans.spans fields, as
 * rt_workload_append_span_field writes them) as its spans. */
void rt_workload_encode_request(const rt_workload *wl, size_t service, const uint8_t *spans,
                                size_t len, rt_buf *out);

/* Append the request for one batch of `t` to `out` (rt_workload_encode_request of its spans). */
void rt_workload_encode_batch(const rt_workload *wl, const rt_wl_turn *t, const rt_wl_batch *b,
                              rt_buf *out);

/* Append the manifest record of `t` to `out`: one JSON object and a newline, e.g.
 *   {"trace_id":"<32 hex>","spans":81,"categories":["error"],"tenant":"globex",
 *    "duration_ms":4200,"tool_calls":22,"input_tokens_sum":31000,"output_tokens_sum":2100,
 *    "agent":"support-agent","kind":"tool"}
 * "categories" is ["normal"] when no bit is set. */
void rt_workload_manifest_line(const rt_workload *wl, const rt_wl_turn *t, rt_buf *out);

/* How fast turns should start relative to the base rate, `run_fraction` (0..1) of the way into
 * a run: 10 in the middle third for the spike profile, otherwise 1. */
double rt_workload_rate_factor(const rt_workload *wl, double run_fraction);
/* The mean of rt_workload_rate_factor over a whole run (4 for spike, 1 otherwise). */
double rt_workload_mean_rate_factor(const rt_workload *wl);

/* Names: "seed" | "mixed" | "spike"; categories "error" "slow" "token_limit" "debug_tenant"
 * "tool_heavy"; kinds "tool" "qa" "chatty". */
int rt_workload_profile_parse(const char *s, rt_wl_profile *out);
const char *rt_workload_profile_name(rt_wl_profile p);
const char *rt_workload_category_name(unsigned bit_index);
const char *rt_workload_kind_name(rt_wl_kind k);

/* Lower-case hex of `n` bytes into out (2n+1 bytes). Returns out. */
char *rt_workload_hex(const uint8_t *p, size_t n, char *out);

#endif
