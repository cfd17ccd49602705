/* policy_config.c - parse the OTel `tail_sampling.policies` list into an rt_policy_set.
 *
 * Schema (OTel's): every item is a mapping with a unique non-empty `name`, a `type`, and a block
 * named after the type holding the type's keys (`latency: {threshold_ms: 10000}`). Leaf blocks
 * are applied with the leaf's rt_cfg field table, so unknown keys, wrong types and bounds are
 * reported with their line. and / drop / composite hold lists of sub-policy items of the same
 * schema, not holds one item.
 *
 * Nesting: OTel allows only leaf types under and / composite / not. We also allow and, not and
 * composite inside one another (the evaluation is well defined); `drop` is only accepted at the
 * top level, because a Dropped outcome only means something for the final decision; the same for
 * `reservoir` (ours), of which a set has at most one. Nesting is limited to MAX_DEPTH levels.
 */
#include "policy.h"

#include "alloc.h"
#include "policy_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 8

/* A RT_CFG_CUSTOM field that just remembers the node (borrowed from the document) so the
 * block's other keys still go through the table and unknown keys are caught. */
static int store_node(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    (void)ctx;
    (void)path;
    *(const rt_cfg_node **)field = node;
    return 0;
}

typedef struct sub_block {
    const rt_cfg_node *subs;
} sub_block;

static const rt_cfg_field and_fields[] = {
    {.key = "and_sub_policy",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(sub_block, subs),
     .parse = store_node,
     .type_name = "list of policies",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Sub-policies that must all sample the trace."},
    {0},
};

static const rt_cfg_field drop_fields[] = {
    {.key = "drop_sub_policy",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(sub_block, subs),
     .parse = store_node,
     .type_name = "list of policies",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Sub-policies that must all match for the trace to be dropped."},
    {0},
};

static const rt_cfg_field not_fields[] = {
    {.key = "not_sub_policy",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(sub_block, subs),
     .parse = store_node,
     .type_name = "policy",
     .flags = RT_CFG_F_REQUIRED,
     .help = "The one sub-policy whose outcome is inverted."},
    {0},
};

typedef struct composite_block {
    int64_t max_total_sps;
    rt_cfg_strlist order;
    const rt_cfg_node *subs;
    const rt_cfg_node *alloc;
} composite_block;

static const rt_cfg_field composite_fields[] = {
    {.key = "max_total_spans_per_second",
     .type = RT_CFG_INT64,
     .offset = offsetof(composite_block, max_total_sps),
     .min = "1",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Spans per second the composite keeps at most, all sub-policies together."},
    {.key = "policy_order",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(composite_block, order),
     .help = "Names of the sub-policies in evaluation order (unlisted ones follow in file "
             "order)."},
    {.key = "composite_sub_policy",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(composite_block, subs),
     .parse = store_node,
     .type_name = "list of policies",
     .flags = RT_CFG_F_REQUIRED,
     .help = "The sub-policies; the first that samples a trace decides."},
    {.key = "rate_allocation",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(composite_block, alloc),
     .parse = store_node,
     .type_name = "list of {policy, percent}",
     .help = "Share of max_total_spans_per_second per sub-policy (percent 0: an equal share); "
             "a sub-policy without an entry gets none, as in OTel."},
    {0},
};

typedef struct alloc_item {
    char *policy;
    int64_t percent;
} alloc_item;

static const rt_cfg_field alloc_fields[] = {
    {.key = "policy",
     .type = RT_CFG_STRING,
     .offset = offsetof(alloc_item, policy),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Name of a composite sub-policy."},
    {.key = "percent",
     .type = RT_CFG_INT64,
     .offset = offsetof(alloc_item, percent),
     .min = "0",
     .max = "100",
     .help = "Its percentage of max_total_spans_per_second."},
    {0},
};

static int parse_list(rt_cfg_ctx *ctx, const rt_cfg_node *seq, const char *path, int depth,
                      rt_pol_node **out, size_t *n_out);

/* Name of the first required key of `table`, or NULL. */
static const char *first_required(const rt_cfg_field *table)
{
    for (const rt_cfg_field *f = table; f->key != NULL; f++) {
        if (f->flags & RT_CFG_F_REQUIRED) {
            return f->key;
        }
    }
    return NULL;
}

/* Apply `block` (may be NULL: the block is absent) with `table` to `st`. An absent block is an
 * error if the table has a required key (reported on the item's line, `item_line`). */
static int apply_block(rt_cfg_ctx *ctx, const rt_cfg_field *table, const rt_cfg_node *block,
                       int item_line, const char *path, const char *type, void *st)
{
    const char *req = first_required(table);
    if (block == NULL && req != NULL) {
        rt_cfg_error(ctx, item_line, path, "missing block `%s:` (it needs at least `%s`)", type,
                     req);
        return -1;
    }
    if (table[0].key == NULL && block != NULL && block->kind == RT_CFG_NODE_MAPPING &&
        block->n > 0) {
        rt_cfg_error(ctx, block->pairs[0].line, path, "%s takes no keys (got `%s`)", type,
                     block->pairs[0].key);
        return -1;
    }
    return rt_cfg_apply(ctx, table, block, path, st);
}

static int parse_leaf(rt_cfg_ctx *ctx, const rt_pol_ops *ops, const rt_cfg_node *block,
                      int item_line, const char *bpath, rt_pol_node *out)
{
    out->kind = RT_POL_LEAF;
    out->ops = ops;
    out->cfg = rt_calloc(1, ops->cfg_size ? ops->cfg_size : 1);
    rt_cfg_set_defaults(ops->fields, out->cfg);
    if (apply_block(ctx, ops->fields, block, item_line, bpath, ops->type, out->cfg) != 0) {
        return -1;
    }
    if (ops->prepare != NULL && ops->prepare(ctx, block, bpath, out->cfg) != 0) {
        return -1;
    }
    return 0;
}

/* Index of the sub-policy called `name` among subs[0..n), or -1. */
static long find_sub(const rt_pol_node *subs, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++) {
        if (subs[i].name != NULL && strcmp(subs[i].name, name) == 0) {
            return (long)i;
        }
    }
    return -1;
}

/* Line of item k of the sequence `seq` under `key` in `block` (for messages), else the
 * block's line. */
static int item_line_of(const rt_cfg_node *block, const char *key, size_t k)
{
    const rt_cfg_node *seq = rt_cfg_node_get(block, key);
    if (seq != NULL && seq->kind == RT_CFG_NODE_SEQUENCE && k < seq->n) {
        return seq->items[k]->line;
    }
    return rt_cfg_node_line(seq ? seq : block);
}

/* Composite: parse the sub-policies, put them in policy_order, and turn rate_allocation into
 * spans per second per sub-policy (OTel: percent > 0 gives percent of the total, percent 0 an
 * equal share total / n, no entry nothing). */
static int parse_composite(rt_cfg_ctx *ctx, const rt_cfg_node *block, int item_line,
                           const char *bpath, int depth, rt_pol_node *out)
{
    composite_block cb;
    memset(&cb, 0, sizeof cb);
    rt_pol_node *subs = NULL;
    size_t n = 0;
    char *p = NULL;
    bool *placed = NULL;
    int rc = -1;
    unsigned before = ctx->n_errors;

    out->kind = RT_POL_COMPOSITE;
    rt_cfg_set_defaults(composite_fields, &cb);
    if (apply_block(ctx, composite_fields, block, item_line, bpath, "composite", &cb) != 0) {
        goto fail;
    }
    p = rt_sprintf("%s.composite_sub_policy", bpath);
    if (parse_list(ctx, cb.subs, p, depth + 1, &subs, &n) != 0) {
        goto fail;
    }
    free(p);
    p = NULL;

    /* Evaluation order. */
    out->subs = rt_calloc(n, sizeof *out->subs);
    out->alloc_sps = rt_calloc(n, sizeof *out->alloc_sps);
    placed = rt_calloc(n, sizeof *placed);
    for (size_t k = 0; k < cb.order.len; k++) {
        const char *name = cb.order.items[k];
        long j = find_sub(subs, n, name);
        if (j < 0) {
            p = rt_sprintf("%s.policy_order[%zu]", bpath, k);
            rt_cfg_error(ctx, item_line_of(block, "policy_order", k), p,
                         "\"%s\" is not the name of a composite_sub_policy", name);
            free(p);
            p = NULL;
        } else if (placed[j]) {
            p = rt_sprintf("%s.policy_order[%zu]", bpath, k);
            rt_cfg_error(ctx, item_line_of(block, "policy_order", k), p, "\"%s\" is listed twice",
                         name);
            free(p);
            p = NULL;
        } else {
            placed[j] = true;
            out->subs[out->n_subs++] = subs[j];
        }
    }
    for (size_t j = 0; j < n; j++) {
        if (!placed[j]) {
            out->subs[out->n_subs++] = subs[j];
        }
    }
    free(subs); /* the nodes moved into out->subs */
    subs = NULL;
    n = 0;

    /* Rate allocation. */
    out->max_total_sps = (double)cb.max_total_sps;
    const rt_cfg_node *al = cb.alloc;
    if (al != NULL && !(al->kind == RT_CFG_NODE_SCALAR && al->is_null)) {
        if (al->kind != RT_CFG_NODE_SEQUENCE) {
            p = rt_sprintf("%s.rate_allocation", bpath);
            rt_cfg_error(ctx, al->line, p, "expected a list of {policy, percent}, got a %s",
                         rt_cfg_node_kind_name(al));
            goto fail;
        }
        int64_t total_pct = 0;
        bool *seen = rt_calloc(out->n_subs + 1, sizeof *seen);
        for (size_t k = 0; k < al->n; k++) {
            alloc_item ai;
            memset(&ai, 0, sizeof ai);
            p = rt_sprintf("%s.rate_allocation[%zu]", bpath, k);
            rt_cfg_set_defaults(alloc_fields, &ai);
            if (rt_cfg_apply(ctx, alloc_fields, al->items[k], p, &ai) == 0) {
                long j = find_sub(out->subs, out->n_subs, ai.policy);
                if (j < 0) {
                    rt_cfg_error(ctx, al->items[k]->line, p,
                                 "policy \"%s\" is not the name of a composite_sub_policy",
                                 ai.policy);
                } else if (seen[j]) {
                    rt_cfg_error(ctx, al->items[k]->line, p, "policy \"%s\" is allocated twice",
                                 ai.policy);
                } else {
                    seen[j] = true;
                    total_pct += ai.percent;
                    out->alloc_sps[j] = ai.percent > 0
                                            ? (double)ai.percent / 100.0 * out->max_total_sps
                                            : out->max_total_sps / (double)out->n_subs;
                }
            }
            rt_cfg_free_struct(alloc_fields, &ai);
            free(p);
            p = NULL;
        }
        free(seen);
        if (total_pct > 100) {
            p = rt_sprintf("%s.rate_allocation", bpath);
            rt_cfg_error(ctx, al->line, p, "percentages add up to %lld, more than 100",
                         (long long)total_pct);
        }
    }
    rc = ctx->n_errors > before ? -1 : 0;
fail:
    for (size_t j = 0; j < n; j++) {
        rt_pol_node_free(&subs[j]);
    }
    free(subs);
    free(placed);
    free(p);
    rt_cfg_free_struct(composite_fields, &cb);
    return rc;
}

/* Parse one policy item at `path` (e.g. "tail_sampling.policies[2]") into *out (zeroed).
 * Returns 0 or -1 after reporting; *out may be half-built either way (free it). */
static int parse_item(rt_cfg_ctx *ctx, const rt_cfg_node *item, const char *path, int depth,
                      rt_pol_node *out)
{
    char *p = NULL;
    char *bpath = NULL;
    int rc = -1;

    out->line = item ? item->line : 0;
    if (item == NULL || item->kind != RT_CFG_NODE_MAPPING) {
        rt_cfg_error(ctx, rt_cfg_node_line(item), path,
                     "expected a policy (a mapping with name, type and a block named after the "
                     "type), got a %s",
                     item && !(item->kind == RT_CFG_NODE_SCALAR && item->is_null)
                         ? rt_cfg_node_kind_name(item)
                         : "null");
        return -1;
    }
    const rt_cfg_node *name = rt_cfg_node_get(item, "name");
    const rt_cfg_node *type = rt_cfg_node_get(item, "type");
    bool ok = true;
    if (name == NULL || name->kind != RT_CFG_NODE_SCALAR || name->is_null ||
        name->scalar[0] == '\0') {
        p = rt_sprintf("%s.name", path);
        rt_cfg_error(ctx, name ? name->line : item->line, p,
                     name == NULL ? "missing required key (every policy needs a unique name)"
                                  : "expected a non-empty string");
        free(p);
        p = NULL;
        ok = false;
    } else {
        out->name = rt_strdup(name->scalar);
    }
    if (type == NULL || type->kind != RT_CFG_NODE_SCALAR || type->is_null) {
        p = rt_sprintf("%s.type", path);
        rt_cfg_error(ctx, type ? type->line : item->line, p,
                     type == NULL ? "missing required key (one of: %s)"
                                  : "expected a policy type (one of: %s)",
                     rt_pol_known_types());
        free(p);
        p = NULL;
        return -1;
    }
    const char *ts = type->scalar;
    const char *pname = out->name ? out->name : "?";

    /* The keys of the item: name, type and the block named after the type. */
    const rt_cfg_node *block = NULL;
    for (size_t i = 0; i < item->n; i++) {
        const rt_cfg_pair *pr = &item->pairs[i];
        if (strcmp(pr->key, "name") == 0 || strcmp(pr->key, "type") == 0) {
            continue;
        }
        p = rt_sprintf("%s.%s", path, pr->key);
        if (strcmp(pr->key, ts) == 0) {
            block = pr->value;
        } else if (rt_pol_ops_find(pr->key) != NULL || strcmp(pr->key, "and") == 0 ||
                   strcmp(pr->key, "not") == 0 || strcmp(pr->key, "drop") == 0 ||
                   strcmp(pr->key, "composite") == 0 || strcmp(pr->key, "ottl_condition") == 0) {
            rt_cfg_error(ctx, pr->line, p,
                         "policy \"%s\" has type %s but a `%s` block (the block must be named "
                         "after the type)",
                         pname, ts, pr->key);
            ok = false;
        } else {
            rt_cfg_error(ctx, pr->line, p, "unknown key (known: name, type, %s)", ts);
            ok = false;
        }
        free(p);
        p = NULL;
    }

    bpath = rt_sprintf("%s.%s", path, ts);
    const rt_pol_ops *ops = rt_pol_ops_find(ts);
    if (ops != NULL) {
        out->type = ops->type;
        if (ops == &rt_pol_reservoir_ops && depth > 0) {
            /* Its traces are "what no other policy kept": that only means something for the
             * final decision. */
            p = rt_sprintf("%s.type", path);
            rt_cfg_error(ctx, type->line, p,
                         "policy \"%s\": reservoir is only allowed as a top-level policy (not "
                         "inside and, not, drop or composite)",
                         pname);
            ok = false;
        } else if (parse_leaf(ctx, ops, block, item->line, bpath, out) != 0) {
            ok = false;
        }
    } else if (strcmp(ts, "and") == 0 || strcmp(ts, "drop") == 0) {
        bool is_and = ts[0] == 'a';
        out->type = is_and ? "and" : "drop";
        out->kind = is_and ? RT_POL_AND : RT_POL_DROP;
        sub_block sb = {NULL};
        if (!is_and && depth > 0) {
            p = rt_sprintf("%s.type", path);
            rt_cfg_error(ctx, type->line, p,
                         "policy \"%s\": drop is only allowed as a top-level policy", pname);
            ok = false;
        } else if (depth >= MAX_DEPTH) {
            p = rt_sprintf("%s.type", path);
            rt_cfg_error(ctx, type->line, p, "policy \"%s\": policies nest deeper than %d levels",
                         pname, MAX_DEPTH);
            ok = false;
        } else if (apply_block(ctx, is_and ? and_fields : drop_fields, block, item->line, bpath, ts,
                               &sb) != 0) {
            ok = false;
        } else {
            p = rt_sprintf("%s.%s", bpath, is_and ? "and_sub_policy" : "drop_sub_policy");
            if (parse_list(ctx, sb.subs, p, depth + 1, &out->subs, &out->n_subs) != 0) {
                ok = false;
            }
        }
    } else if (strcmp(ts, "not") == 0) {
        out->type = "not";
        out->kind = RT_POL_NOT;
        sub_block sb = {NULL};
        if (depth >= MAX_DEPTH) {
            p = rt_sprintf("%s.type", path);
            rt_cfg_error(ctx, type->line, p, "policy \"%s\": policies nest deeper than %d levels",
                         pname, MAX_DEPTH);
            ok = false;
        } else if (apply_block(ctx, not_fields, block, item->line, bpath, ts, &sb) != 0) {
            ok = false;
        } else {
            p = rt_sprintf("%s.not_sub_policy", bpath);
            out->subs = rt_calloc(1, sizeof *out->subs);
            out->n_subs = 1;
            if (parse_item(ctx, sb.subs, p, depth + 1, &out->subs[0]) != 0) {
                ok = false;
            }
        }
    } else if (strcmp(ts, "composite") == 0) {
        out->type = "composite";
        if (depth >= MAX_DEPTH) {
            p = rt_sprintf("%s.type", path);
            rt_cfg_error(ctx, type->line, p, "policy \"%s\": policies nest deeper than %d levels",
                         pname, MAX_DEPTH);
            ok = false;
        } else if (parse_composite(ctx, block, item->line, bpath, depth, out) != 0) {
            ok = false;
        }
    } else if (strcmp(ts, "ottl_condition") == 0) {
        p = rt_sprintf("%s.type", path);
        rt_cfg_error(ctx, type->line, p,
                     "policy \"%s\": ottl_condition is not supported: OTTL is a language of its "
                     "own and ringtail does not embed an OTTL interpreter; express the condition "
                     "with string_attribute, numeric_attribute, boolean_attribute, status_code, "
                     "latency, span_count, trace_state or trace_flags, combined with and / not",
                     pname);
        ok = false;
    } else {
        p = rt_sprintf("%s.type", path);
        rt_cfg_error(ctx, type->line, p, "policy \"%s\": unknown policy type \"%s\" (known: %s)",
                     pname, ts, rt_pol_known_types());
        ok = false;
    }
    rc = ok ? 0 : -1;
    free(p);
    free(bpath);
    return rc;
}

/* Parse a sequence of policy items into a new array (*out, *n_out), checking that names are
 * unique within the list. Returns 0, or -1 after reporting (nothing is returned then). */
static int parse_list(rt_cfg_ctx *ctx, const rt_cfg_node *seq, const char *path, int depth,
                      rt_pol_node **out, size_t *n_out)
{
    *out = NULL;
    *n_out = 0;
    if (seq == NULL || seq->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, rt_cfg_node_line(seq), path, "expected a list of policies, got a %s",
                     seq && !(seq->kind == RT_CFG_NODE_SCALAR && seq->is_null)
                         ? rt_cfg_node_kind_name(seq)
                         : "null");
        return -1;
    }
    if (seq->n == 0) {
        rt_cfg_error(ctx, seq->line, path, "at least one policy is required");
        return -1;
    }
    unsigned before = ctx->n_errors;
    rt_pol_node *nodes = rt_calloc(seq->n, sizeof *nodes);
    for (size_t i = 0; i < seq->n; i++) {
        char *ip = rt_sprintf("%s[%zu]", path, i);
        parse_item(ctx, seq->items[i], ip, depth, &nodes[i]);
        if (nodes[i].name != NULL) {
            for (size_t j = 0; j < i; j++) {
                if (nodes[j].name != NULL && strcmp(nodes[j].name, nodes[i].name) == 0) {
                    char *np = rt_sprintf("%s.name", ip);
                    const rt_cfg_node *nn = rt_cfg_node_get(seq->items[i], "name");
                    rt_cfg_error(ctx, rt_cfg_node_line(nn), np,
                                 "duplicate policy name \"%s\" (first used on line %d)",
                                 nodes[i].name,
                                 rt_cfg_node_line(rt_cfg_node_get(seq->items[j], "name")));
                    free(np);
                    break;
                }
            }
        }
        free(ip);
    }
    if (ctx->n_errors > before) {
        for (size_t i = 0; i < seq->n; i++) {
            rt_pol_node_free(&nodes[i]);
        }
        free(nodes);
        return -1;
    }
    *out = nodes;
    *n_out = seq->n;
    return 0;
}

rt_policy_set *rt_policy_set_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path)
{
    rt_policy_set *set = rt_calloc(1, sizeof *set);
    if (parse_list(ctx, node, path ? path : "policies", 0, &set->top, &set->n_top) != 0) {
        rt_policy_set_free(set);
        return NULL;
    }
    /* At most one reservoir: two would each claim to stand for "the rest". */
    const rt_pol_node *first = NULL;
    bool dup = false;
    for (size_t i = 0; i < set->n_top; i++) {
        const rt_pol_node *n = &set->top[i];
        if (n->kind != RT_POL_LEAF || n->ops != &rt_pol_reservoir_ops) {
            continue;
        }
        if (first == NULL) {
            first = n;
            continue;
        }
        char *p = rt_sprintf("%s[%zu].type", path ? path : "policies", i);
        rt_cfg_error(ctx, n->line, p,
                     "policy \"%s\": only one reservoir policy is allowed (\"%s\" on line %d "
                     "is one already)",
                     n->name, first->name, first->line);
        free(p);
        dup = true;
    }
    if (dup) {
        rt_policy_set_free(set);
        return NULL;
    }
    rt_pol_set_layout(set);
    return set;
}
