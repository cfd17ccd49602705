/* policy.c - the policy engine: per-trace state layout, per-span observation, and the decision
 * over the policy tree (leaves plus and / not / drop / composite), with outcome counters.
 *
 * Parsing lives in policy_config.c, each leaf type in its own policy_<type>.c.
 */
#include "policy.h"

#include "adjusted_count.h"
#include "alloc.h"
#include "policy_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- leaf registry -------------------------------------------------------------------------- */

static const rt_pol_ops *const leaf_types[] = {
    &rt_pol_always_sample_ops,     &rt_pol_latency_ops,          &rt_pol_status_code_ops,
    &rt_pol_span_count_ops,        &rt_pol_probabilistic_ops,    &rt_pol_rate_limiting_ops,
    &rt_pol_bytes_limiting_ops,    &rt_pol_string_attribute_ops, &rt_pol_numeric_attribute_ops,
    &rt_pol_boolean_attribute_ops, &rt_pol_trace_state_ops,      &rt_pol_trace_flags_ops,
    &rt_pol_reservoir_ops,
};

const rt_pol_ops *rt_pol_ops_find(const char *type)
{
    for (size_t i = 0; i < sizeof leaf_types / sizeof leaf_types[0]; i++) {
        if (strcmp(leaf_types[i]->type, type) == 0) {
            return leaf_types[i];
        }
    }
    return NULL;
}

const char *rt_pol_known_types(void)
{
    return "always_sample, latency, status_code, span_count, probabilistic, rate_limiting, "
           "bytes_limiting, string_attribute, numeric_attribute, boolean_attribute, trace_state, "
           "trace_flags, reservoir, and, not, drop, composite";
}

/* ---- the set -------------------------------------------------------------------------------- */

void rt_pol_node_free(rt_pol_node *n)
{
    if (n == NULL) {
        return;
    }
    if (n->cfg != NULL) {
        if (n->ops->release != NULL) {
            n->ops->release(n->cfg);
        }
        rt_cfg_free_struct(n->ops->fields, n->cfg);
        free(n->cfg);
    }
    for (size_t i = 0; i < n->n_subs; i++) {
        rt_pol_node_free(&n->subs[i]);
    }
    free(n->subs);
    free(n->alloc_sps);
    free(n->name);
    memset(n, 0, sizeof *n);
}

void rt_policy_set_free(rt_policy_set *set)
{
    if (set == NULL) {
        return;
    }
    for (size_t i = 0; i < set->n_top; i++) {
        rt_pol_node_free(&set->top[i]);
    }
    free(set->top);
    free(set->observers);
    free(set->runtimes);
    free(set);
}

size_t rt_policy_set_count(const rt_policy_set *set)
{
    return set->n_top;
}

const char *rt_policy_set_name(const rt_policy_set *set, size_t i)
{
    return i < set->n_top ? set->top[i].name : NULL;
}

const char *rt_policy_set_type(const rt_policy_set *set, size_t i)
{
    return i < set->n_top ? set->top[i].type : NULL;
}

static size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Assign offsets depth first and collect observers and runtimes (first pass counts only when
 * the lists are NULL). */
static void layout_node(rt_policy_set *set, rt_pol_node *n)
{
    if (n->kind == RT_POL_LEAF) {
        if (n->ops->state_size > 0) {
            n->state_off = set->state_size;
            set->state_size += align8(n->ops->state_size);
        }
        if (n->ops->observe != NULL && (n->ops->observes == NULL || n->ops->observes(n->cfg))) {
            if (set->observers != NULL) {
                set->observers[set->n_observers] = n;
            }
            set->n_observers++;
        }
        if (n->ops->runtime_size > 0) {
            n->runtime_off = set->runtime_size;
            set->runtime_size += align8(n->ops->runtime_size);
            if (set->runtimes != NULL) {
                set->runtimes[set->n_runtimes] = n;
            }
            set->n_runtimes++;
        }
        return;
    }
    if (n->kind == RT_POL_COMPOSITE) {
        n->runtime_off = set->runtime_size;
        set->runtime_size += align8(sizeof(rt_pol_composite_rt) +
                                    n->n_subs * sizeof(((rt_pol_composite_rt *)0)->used[0]));
        if (set->runtimes != NULL) {
            set->runtimes[set->n_runtimes] = n;
        }
        set->n_runtimes++;
    }
    for (size_t i = 0; i < n->n_subs; i++) {
        layout_node(set, &n->subs[i]);
    }
}

/* Register the attribute keys of every leaf under n. */
static void register_keys(rt_policy_set *set, rt_pol_node *n)
{
    if (n->kind == RT_POL_LEAF && n->ops->keys != NULL) {
        n->ops->keys(n->cfg, &set->keys);
    }
    for (size_t i = 0; i < n->n_subs; i++) {
        register_keys(set, &n->subs[i]);
    }
}

/* Adjusted count of a trace `n` samples (see rt_pol_node.count). */
static double node_count(rt_pol_node *n)
{
    double c = 1.0;
    switch (n->kind) {
    case RT_POL_LEAF:
        c = n->ops->adjusted_count != NULL ? n->ops->adjusted_count(n->cfg) : 1.0;
        break;
    case RT_POL_NOT: /* keeps every trace its sub-policy does not: a condition, so keep-all */
        c = 1.0;
        node_count(&n->subs[0]);
        break;
    case RT_POL_AND:
    case RT_POL_DROP:
        /* Independent stages multiply (and(tenant = x, probabilistic 10 %) gives 10). */
        for (size_t i = 0; i < n->n_subs; i++) {
            double s = node_count(&n->subs[i]);
            c = c == RT_ADJ_UNKNOWN || s == RT_ADJ_UNKNOWN ? RT_ADJ_UNKNOWN : c * s;
        }
        break;
    case RT_POL_COMPOSITE: /* rate-capped: the keep probability is unknown */
        for (size_t i = 0; i < n->n_subs; i++) {
            node_count(&n->subs[i]);
        }
        c = RT_ADJ_UNKNOWN;
        break;
    }
    if (!(c >= 1.0) || isinf(c)) {
        c = RT_ADJ_UNKNOWN;
    }
    n->count = c;
    return c;
}

/* Set n->monotone (recursively) and return it: whether `n` can ever settle a trace - a monotone
 * leaf, or an `and` of such nodes. */
static bool mark_monotone(rt_pol_node *n)
{
    if (n->kind == RT_POL_LEAF) {
        n->monotone = n->ops->monotone != NULL && n->ops->monotone(n->cfg);
    } else if (n->kind != RT_POL_AND) {
        n->monotone = false; /* not, composite (a rate), drop */
    } else {
        n->monotone = n->n_subs > 0;
        for (size_t i = 0; i < n->n_subs; i++) {
            n->monotone &= mark_monotone(&n->subs[i]);
        }
    }
    return n->monotone;
}

void rt_pol_set_layout(rt_policy_set *set)
{
    set->reservoir = -1;
    set->keys.n = 0;
    for (size_t i = 0; i < set->n_top; i++) {
        node_count(&set->top[i]);
        register_keys(set, &set->top[i]);
        if (set->top[i].kind == RT_POL_LEAF && set->top[i].ops == &rt_pol_reservoir_ops &&
            set->reservoir < 0) {
            set->reservoir = (int)i;
        }
    }
    /* A drop policy could still match a later span and win over any keep. (The reservoir's
     * leaf is not monotone.) */
    set->can_settle = false;
    bool any_drop = false;
    for (size_t i = 0; i < set->n_top; i++) {
        any_drop |= set->top[i].kind == RT_POL_DROP;
        set->can_settle |= mark_monotone(&set->top[i]);
    }
    set->can_settle &= !any_drop;
    /* Pass 1 counts; pass 2 fills (offsets are recomputed identically). */
    for (int pass = 0; pass < 2; pass++) {
        set->state_size = 0;
        set->runtime_size = 0;
        if (pass == 1) {
            set->observers =
                rt_calloc(set->n_observers ? set->n_observers : 1, sizeof *set->observers);
            set->runtimes = rt_calloc(set->n_runtimes ? set->n_runtimes : 1, sizeof *set->runtimes);
        }
        set->n_observers = 0;
        set->n_runtimes = 0;
        for (size_t i = 0; i < set->n_top; i++) {
            layout_node(set, &set->top[i]);
        }
    }
}

/* ---- the engine ----------------------------------------------------------------------------- */

enum { OUT_SAMPLED = 0, OUT_NOT_SAMPLED, OUT_DROPPED, OUT_COUNT };

struct rt_policy_engine {
    const rt_policy_set *set; /* ref: outlives the engine */
    double share;
    bool sample_on_first_match;
    uint64_t *runtime;     /* owned, set->runtime_size bytes (uint64_t for alignment) */
    rt_counter **counters; /* owned array [n_top * OUT_COUNT] of registry handles, or NULL */
    rt_pol_res_index res;  /* the resource-attribute index of the last resource observed */
};

static const char *const outcome_names[OUT_COUNT] = {"sampled", "not_sampled", "dropped"};

rt_policy_engine *rt_policy_engine_new(const rt_policy_set *set, double share,
                                       bool sample_on_first_match, uint64_t now_ns,
                                       rt_metrics_registry *reg)
{
    rt_policy_engine *e = rt_calloc(1, sizeof *e);
    e->set = set;
    e->share = share > 0 && share <= 1 ? share : 1;
    e->sample_on_first_match = sample_on_first_match;
    e->runtime = rt_calloc(set->runtime_size / 8 + 1, sizeof(uint64_t));
    for (size_t i = 0; i < set->n_runtimes; i++) {
        const rt_pol_node *n = set->runtimes[i];
        void *rt = (uint8_t *)e->runtime + n->runtime_off;
        if (n->kind == RT_POL_COMPOSITE) {
            rt_pol_composite_rt *c = rt;
            c->second = UINT64_MAX;
        } else if (n->ops->runtime_init != NULL) {
            n->ops->runtime_init(n->cfg, rt, e->share, now_ns);
        }
    }
    if (reg != NULL) {
        e->counters = rt_calloc(set->n_top * OUT_COUNT + 1, sizeof *e->counters);
        for (size_t i = 0; i < set->n_top; i++) {
            for (int o = 0; o < OUT_COUNT; o++) {
                e->counters[i * OUT_COUNT + o] = rt_metrics_counter(
                    reg, "ringtail_sampler_policy_evaluations_total",
                    "Evaluations of each top-level tail-sampling policy, by the policy's own "
                    "outcome.",
                    "policy", set->top[i].name, "outcome", outcome_names[o], NULL);
            }
        }
    }
    return e;
}

void rt_policy_engine_free(rt_policy_engine *e)
{
    if (e == NULL) {
        return;
    }
    free(e->runtime);
    free(e->counters);
    rt_pol_res_index_free(&e->res);
    free(e);
}

const rt_policy_set *rt_policy_engine_set(const rt_policy_engine *e)
{
    return e->set;
}

size_t rt_policy_state_size(const rt_policy_engine *e)
{
    return e->set->state_size;
}

const rt_otlp_keyset *rt_policy_engine_keys(const rt_policy_engine *e)
{
    return &e->set->keys;
}

void rt_policy_state_init(const rt_policy_engine *e, void *state)
{
    if (e->set->state_size > 0) {
        memset(state, 0, e->set->state_size);
    }
}

void rt_policy_observe(rt_policy_engine *e, void *state, const rt_otlp_span_view *v)
{
    const rt_policy_set *set = e->set;
    rt_pol_span ps;
    ps.v = v;
    ps.keys = &set->keys;
    ps.res = &e->res;
    ps.res_checked = false;
    /* The walk's index when it was made for this set's keys; else built when first needed. */
    ps.span_kv = v->attr_keys == &set->keys ? v->attr_kv : NULL;
    for (size_t i = 0; i < set->n_observers; i++) {
        const rt_pol_node *n = set->observers[i];
        n->ops->observe(n->cfg, (uint8_t *)state + n->state_off, &ps);
    }
}

/* Composite: the first sub-policy (in policy_order) that samples decides. The trace is kept if
 * its spans fit in that sub-policy's allocation for the current one-second window and in the
 * composite's total; otherwise it is not sampled, and the later sub-policies are not asked
 * (OTel reads it the same way: "we exceeded the rate limit, don't sample this trace"). Unlike
 * OTel, whose total check compares one sub-policy's count with the total, we really charge the
 * total across sub-policies. */
static rt_decision eval_node(rt_policy_engine *e, const rt_pol_node *n, uint8_t *state,
                             const rt_trace_summary *sum, uint64_t now_ns);

static rt_decision eval_composite(rt_policy_engine *e, const rt_pol_node *n, uint8_t *state,
                                  const rt_trace_summary *sum, uint64_t now_ns)
{
    rt_pol_composite_rt *c = (rt_pol_composite_rt *)((uint8_t *)e->runtime + n->runtime_off);
    uint64_t second = now_ns / 1000000000u;
    if (second != c->second) {
        c->second = second;
        c->total = 0;
        for (size_t i = 0; i < n->n_subs; i++) {
            c->used[i] = 0;
        }
    }
    double spans = (double)sum->span_count;
    for (size_t i = 0; i < n->n_subs; i++) {
        if (eval_node(e, &n->subs[i], state, sum, now_ns) != RT_DECISION_SAMPLED) {
            continue;
        }
        if (c->used[i] + spans <= n->alloc_sps[i] * e->share &&
            c->total + spans <= n->max_total_sps * e->share) {
            c->used[i] += spans;
            c->total += spans;
            return RT_DECISION_SAMPLED;
        }
        return RT_DECISION_NOT_SAMPLED;
    }
    return RT_DECISION_NOT_SAMPLED;
}

static rt_decision eval_node(rt_policy_engine *e, const rt_pol_node *n, uint8_t *state,
                             const rt_trace_summary *sum, uint64_t now_ns)
{
    switch (n->kind) {
    case RT_POL_LEAF:
        /* `state` may be NULL when the set needs no per-trace state at all. */
        return n->ops->decide(n->cfg, (uint8_t *)e->runtime + n->runtime_off,
                              n->ops->state_size > 0 ? state + n->state_off : NULL, sum, now_ns);
    case RT_POL_AND:
    case RT_POL_DROP:
        /* Stops at the first sub-policy that does not sample (later rate limiters are not
         * charged), as OTel's And and Drop do. */
        for (size_t i = 0; i < n->n_subs; i++) {
            if (eval_node(e, &n->subs[i], state, sum, now_ns) != RT_DECISION_SAMPLED) {
                return RT_DECISION_NOT_SAMPLED;
            }
        }
        return n->kind == RT_POL_DROP ? RT_DECISION_DROPPED : RT_DECISION_SAMPLED;
    case RT_POL_NOT:
        return eval_node(e, &n->subs[0], state, sum, now_ns) == RT_DECISION_SAMPLED
                   ? RT_DECISION_NOT_SAMPLED
                   : RT_DECISION_SAMPLED;
    case RT_POL_COMPOSITE:
        return eval_composite(e, n, state, sum, now_ns);
    }
    return RT_DECISION_NOT_SAMPLED;
}

static void count_outcome(rt_policy_engine *e, size_t i, rt_decision d)
{
    if (e->counters == NULL) {
        return;
    }
    int o = d == RT_DECISION_SAMPLED   ? OUT_SAMPLED
            : d == RT_DECISION_DROPPED ? OUT_DROPPED
                                       : OUT_NOT_SAMPLED;
    rt_counter_inc(e->counters[i * OUT_COUNT + o]);
}

rt_decision rt_policy_decide(rt_policy_engine *e, void *state, const rt_trace_summary *sum,
                             uint64_t now_ns, rt_policy_result *out)
{
    const rt_policy_set *set = e->set;
    rt_policy_result res = {
        .decision = RT_DECISION_NOT_SAMPLED, .policy = -1, .adjusted_count = 0, .reservoir = -1};
    bool keep_all = false;
    double known = RT_ADJ_UNKNOWN;

    /* Drop policies first: the first that drops decides, nothing else is evaluated. */
    for (size_t i = 0; i < set->n_top; i++) {
        if (set->top[i].kind != RT_POL_DROP) {
            continue;
        }
        rt_decision d = eval_node(e, &set->top[i], state, sum, now_ns);
        count_outcome(e, i, d);
        if (d == RT_DECISION_DROPPED) {
            res.decision = RT_DECISION_DROPPED;
            res.policy = (int)i;
            goto done;
        }
    }
    /* Then every other policy in config order (all of them, so every rate limiter sees every
     * trace as in OTel, unless sample_on_first_match stops at the first that samples). The
     * reservoir is left out: it only takes what nothing here kept. */
    for (size_t i = 0; i < set->n_top; i++) {
        if (set->top[i].kind == RT_POL_DROP || (int)i == set->reservoir) {
            continue;
        }
        rt_decision d = eval_node(e, &set->top[i], state, sum, now_ns);
        count_outcome(e, i, d);
        if (d != RT_DECISION_SAMPLED) {
            continue;
        }
        double c = set->top[i].count;
        if (c == 1.0) {
            keep_all = true; /* a census of what it matches: the count is exactly 1 */
        } else if (known == RT_ADJ_UNKNOWN) {
            known = c;
        }
        if (res.policy < 0) {
            res.decision = RT_DECISION_SAMPLED;
            res.policy = (int)i;
            if (e->sample_on_first_match) {
                break;
            }
        }
    }
    if (res.decision == RT_DECISION_SAMPLED) {
        res.adjusted_count = keep_all ? 1.0 : known;
    } else if (set->reservoir >= 0) {
        res.reservoir = set->reservoir; /* its outcome is counted when the holder knows it */
        goto out;
    }
done:
    if (set->reservoir >= 0) {
        count_outcome(e, (size_t)set->reservoir, RT_DECISION_NOT_SAMPLED);
    }
out:
    if (out != NULL) {
        *out = res;
    }
    return res.decision;
}

static bool node_settled(const rt_pol_node *n, uint8_t *state, const rt_trace_summary *sum)
{
    if (!n->monotone) {
        return false;
    }
    if (n->kind == RT_POL_LEAF) {
        return n->ops->decide(n->cfg, NULL, n->ops->state_size > 0 ? state + n->state_off : NULL,
                              sum, 0) == RT_DECISION_SAMPLED;
    }
    for (size_t i = 0; i < n->n_subs; i++) {
        if (!node_settled(&n->subs[i], state, sum)) {
            return false;
        }
    }
    return true;
}

bool rt_policy_can_settle(const rt_policy_engine *e)
{
    return e->set->can_settle;
}

bool rt_policy_settled(const rt_policy_engine *e, void *state, const rt_trace_summary *sum)
{
    const rt_policy_set *set = e->set;
    if (!set->can_settle) {
        return false;
    }
    for (size_t i = 0; i < set->n_top; i++) {
        if (node_settled(&set->top[i], state, sum)) {
            return true;
        }
    }
    return false;
}

void rt_policy_count_outcome(rt_policy_engine *e, int policy, rt_decision d)
{
    if (policy >= 0 && (size_t)policy < e->set->n_top) {
        count_outcome(e, (size_t)policy, d);
    }
}

bool rt_policy_engine_reservoir(const rt_policy_engine *e, rt_policy_reservoir_params *out)
{
    const rt_policy_set *set = e->set;
    if (set->reservoir < 0) {
        return false;
    }
    uint64_t k, window_ns;
    rt_pol_reservoir_params(set->top[set->reservoir].cfg, &k, &window_ns);
    out->policy = set->reservoir;
    /* ceil, minus a hair so that k * (1 / workers) * workers rounding up does not add a slot */
    out->slots = (uint64_t)ceil((double)k * e->share - 1e-9);
    if (out->slots == 0) {
        out->slots = 1;
    }
    out->window_ns = window_ns;
    return true;
}
