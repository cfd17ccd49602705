/* policy_internal.h - what the policy engine (policy.c, policy_config.c) and the leaf policy
 * types (policy_<type>.c, one file each) share: the leaf vtable and the parsed policy tree.
 *
 * A leaf type describes itself with an rt_pol_ops: the keys of its YAML block as an rt_cfg
 * field table (so unknown keys, types and bounds are checked by rt_cfg_apply and each error
 * names its line), a `prepare` hook for cross-key rules and derived data (compiled regexes,
 * precomputed thresholds), and up to three kinds of memory:
 *   - its config (cfg_size bytes): immutable once parsed, shared by every worker;
 *   - per-trace state (state_size bytes, zeroed at the trace's first span): what `observe`
 *     accumulates span by span, so `decide` never re-reads spans;
 *   - per-engine runtime (runtime_size bytes): mutable things one worker owns, e.g. a token
 *     bucket; set up by `runtime_init` with the worker's `share` of every rate.
 * Composition (and, not, drop, composite) is not a leaf: policy.c evaluates it over the tree.
 */
#ifndef RT_POLICY_INTERNAL_H
#define RT_POLICY_INTERNAL_H

#include "config.h"
#include "otlp_scan.h"
#include "policy.h"
#include "policy_match.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct rt_pol_ops {
    const char *type;           /* the `type:` value and the name of the block */
    const rt_cfg_field *fields; /* keys of the block (an empty table: no keys allowed) */
    size_t cfg_size;            /* bytes of the config struct `fields` writes into */
    /* Cross-key checks and derived data, after the table applied without error. `block` is the
     * block node (NULL when the policy has none), `path` its key path, for messages. Returns 0,
     * or -1 after reporting through rt_cfg_error. May be NULL. */
    int (*prepare)(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg);
    /* Release what `prepare` built (the table's own fields are freed by rt_cfg_free_struct).
     * Must tolerate a config whose prepare failed or never ran. May be NULL. */
    void (*release)(void *cfg);

    size_t state_size; /* per-trace bytes (zeroed before the first span); 0 = none */
    /* Account one span into `st`. Must not allocate. NULL = the type needs no span data. */
    void (*observe)(const void *cfg, void *st, rt_pol_span *ps);
    /* Whether this configuration needs `observe` at all (e.g. span_count without a span
     * filter reads the buffer's count): false keeps it off the per-span observer list. NULL =
     * always, when `observe` is set. */
    bool (*observes)(const void *cfg);
    /* Register the attribute keys `observe` looks up (rt_pol_keys_add), once, when the set is
     * built. May be NULL. */
    void (*keys)(void *cfg, rt_pol_keys *reg);

    size_t runtime_size; /* per-engine bytes; 0 = none */
    void (*runtime_init)(const void *cfg, void *rt, double share, uint64_t now_ns);

    /* The policy's own outcome for one trace (SAMPLED or NOT_SAMPLED). `st` is this policy's
     * per-trace state, `rt` its runtime. Must not allocate. */
    rt_decision (*decide)(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns);

    /* Whether, once this configuration samples a trace, more spans of it can never undo that
     * (an "any span matched" flag, a duration or a count that only grow, the trace id): then a
     * trace it samples now is settled (rt_policy_settled). Must not look at the runtime (its
     * decide is called with runtime NULL for this). NULL = never (rate limiters, inverted
     * matches, ranges with an upper bound). */
    bool (*monotone)(const void *cfg);

    /* Adjusted count of a trace this leaf samples (see adjusted_count.h): 1 / probability for a
     * baseline sampler, RT_ADJ_UNKNOWN (0) when the keep probability is unknown (rate limiters).
     * NULL = 1: a "keep-all" policy, which keeps every trace matching its condition. */
    double (*adjusted_count)(const void *cfg);
} rt_pol_ops;

/* The leaf types, one file each. */
extern const rt_pol_ops rt_pol_always_sample_ops;     /* policy_always_sample.c */
extern const rt_pol_ops rt_pol_latency_ops;           /* policy_latency.c */
extern const rt_pol_ops rt_pol_status_code_ops;       /* policy_status_code.c */
extern const rt_pol_ops rt_pol_span_count_ops;        /* policy_span_count.c */
extern const rt_pol_ops rt_pol_probabilistic_ops;     /* policy_probabilistic.c */
extern const rt_pol_ops rt_pol_rate_limiting_ops;     /* policy_rate_limiting.c */
extern const rt_pol_ops rt_pol_bytes_limiting_ops;    /* policy_rate_limiting.c */
extern const rt_pol_ops rt_pol_string_attribute_ops;  /* policy_string_attribute.c */
extern const rt_pol_ops rt_pol_numeric_attribute_ops; /* policy_numeric_attribute.c */
extern const rt_pol_ops rt_pol_boolean_attribute_ops; /* policy_boolean_attribute.c */
extern const rt_pol_ops rt_pol_trace_state_ops;       /* policy_trace_state.c */
extern const rt_pol_ops rt_pol_trace_flags_ops;       /* policy_trace_flags.c */
extern const rt_pol_ops rt_pol_reservoir_ops;         /* policy_reservoir.c (top level only) */

/* ---- the parsed tree ------------------------------------------------------------------------ */

typedef enum rt_pol_kind {
    RT_POL_LEAF = 0,
    RT_POL_AND,       /* all sub-policies sample -> sampled */
    RT_POL_NOT,       /* one sub-policy, outcome inverted */
    RT_POL_DROP,      /* all sub-policies sample -> dropped (top level only) */
    RT_POL_COMPOSITE, /* first sampling sub-policy, within its share of a span rate */
} rt_pol_kind;

typedef struct rt_pol_node rt_pol_node;
struct rt_pol_node {
    char *name;       /* owned */
    const char *type; /* static: the ops type name or "and", "not", "drop", "composite" */
    rt_pol_kind kind;
    int line; /* line of the policy item, for messages */

    const rt_pol_ops *ops; /* RT_POL_LEAF */
    void *cfg;             /* RT_POL_LEAF: owned, ops->cfg_size bytes */

    rt_pol_node *subs; /* owned array: and/not/drop/composite (composite: in evaluation order) */
    size_t n_subs;

    /* RT_POL_COMPOSITE */
    double max_total_sps; /* max_total_spans_per_second */
    double *alloc_sps;    /* owned, per sub (evaluation order): its spans/s before `share` */

    /* Adjusted count of a trace this node samples (>= 1, or RT_ADJ_UNKNOWN), computed when the
     * set is built: leaf from ops->adjusted_count, not = 1, and = product of its subs (unknown
     * if one is), composite = unknown. */
    double count;

    bool monotone; /* node_can_settle (policy.c), when the set is built */

    /* Layout, assigned when the set is built (8-byte aligned). */
    size_t state_off;   /* leaf with state_size > 0 */
    size_t runtime_off; /* leaf with runtime_size > 0, or composite */
};

/* Composite runtime: one-second windows, as the OTel composite counts them. */
typedef struct rt_pol_composite_rt {
    uint64_t second; /* now_ns / 1e9 of the current window; UINT64_MAX before the first */
    double total;    /* spans charged in this window, all sub-policies */
    double used[];   /* spans charged in this window, per sub-policy */
} rt_pol_composite_rt;

struct rt_policy_set {
    rt_pol_node *top; /* owned array, config order */
    size_t n_top;
    size_t state_size;             /* multiple of 8 */
    size_t runtime_size;           /* multiple of 8 */
    const rt_pol_node **observers; /* owned: every leaf (at any depth) that has `observe` */
    size_t n_observers;
    const rt_pol_node **runtimes; /* owned: every node (any depth) with runtime to initialise */
    size_t n_runtimes;
    int reservoir;    /* index in top[] of the reservoir policy, or -1 (at most one per set) */
    bool can_settle;  /* no drop policy, and some top-level policy can settle a trace */
    rt_pol_keys keys; /* every attribute key the observers look up */
};

/* The leaf type called `type`, or NULL. */
const rt_pol_ops *rt_pol_ops_find(const char *type);
/* Comma-separated list of every accepted type, for messages (static string). */
const char *rt_pol_known_types(void);

/* Free a node's contents (recursively), not the node itself. */
void rt_pol_node_free(rt_pol_node *n);

/* Lay out state and runtime for every node of set->top and build the observer/runtime lists.
 * Called by the parser once the tree is complete (policy.c). */
void rt_pol_set_layout(rt_policy_set *set);

/* ---- helpers shared by the attribute policies ----------------------------------------------- */

/* A byte slice equals the `len` bytes at `str`. */
static inline bool rt_pol_slice_eq(rt_pb_slice s, const char *str, size_t len)
{
    return s.len == len && (len == 0 || memcmp(s.p, str, len) == 0);
}

/* The decision of the attribute policies (string, boolean): their state is one "matched" byte;
 * sampled when something matched, or (invert_match) when nothing did. */
static inline rt_decision rt_pol_attr_decide(const void *st, bool invert_match)
{
    bool hit = *(const uint8_t *)st != 0;
    return hit != invert_match ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
}

/* Token bucket of rate_limiting (spans) and bytes_limiting (bytes); defined in
 * policy_rate_limiting.c. Fractional tokens are kept. */
typedef struct rt_pol_bucket {
    double tokens;
    double rate;  /* tokens per second (after share) */
    double burst; /* capacity (after share) */
    uint64_t last_ns;
} rt_pol_bucket;

void rt_pol_bucket_init(rt_pol_bucket *b, double rate, double burst, uint64_t now_ns);
/* Refill up to now_ns (time never runs backwards for the bucket), then take `n` tokens if there
 * are that many. Returns true if taken. */
bool rt_pol_bucket_take(rt_pol_bucket *b, double n, uint64_t now_ns);

/* probabilistic: floor((2^64 - 1) * ratio) as OTel computes it with Go's big.Float (the
 * product rounded to 64 significant bits first); 0 for ratio <= 0, UINT64_MAX for ratio >= 1.
 * Defined in policy_probabilistic.c. */
uint64_t rt_pol_probabilistic_threshold(double ratio);

/* reservoir: k (traces_per_window) and the window length of a reservoir leaf's config. Defined
 * in policy_reservoir.c. */
void rt_pol_reservoir_params(const void *cfg, uint64_t *k, uint64_t *window_ns);

#endif
