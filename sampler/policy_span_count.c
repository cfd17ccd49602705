/* policy_span_count.c - the span_count policy: min_spans <= spans <= max_spans (max_spans 0 = no
 * upper bound), from the buffer's distinct span count. */
#include "policy_internal.h"

#include <stddef.h>

typedef struct span_count_cfg {
    int64_t min_spans;
    int64_t max_spans;
} span_count_cfg;

static const rt_cfg_field fields[] = {
    {.key = "min_spans",
     .type = RT_CFG_INT64,
     .offset = offsetof(span_count_cfg, min_spans),
     .min = "0",
     .max = "2147483647",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Fewest spans a trace must have (inclusive)."},
    {.key = "max_spans",
     .type = RT_CFG_INT64,
     .offset = offsetof(span_count_cfg, max_spans),
     .def = "0",
     .min = "0",
     .max = "2147483647",
     .help = "Most spans a trace may have (inclusive); 0 = no upper bound."},
    {0},
};

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    const span_count_cfg *c = cfg;
    if (c->max_spans != 0 && c->max_spans < c->min_spans) {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "max_spans")), path,
                     "max_spans (%lld) is less than min_spans (%lld): no trace would match",
                     (long long)c->max_spans, (long long)c->min_spans);
        return -1;
    }
    return 0;
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)st;
    (void)now_ns;
    const span_count_cfg *c = cfg;
    uint64_t n = sum->span_count;
    if (n >= (uint64_t)c->min_spans && (c->max_spans == 0 || n <= (uint64_t)c->max_spans)) {
        return RT_DECISION_SAMPLED;
    }
    return RT_DECISION_NOT_SAMPLED;
}

const rt_pol_ops rt_pol_span_count_ops = {
    .type = "span_count",
    .fields = fields,
    .cfg_size = sizeof(span_count_cfg),
    .prepare = prepare,
    .decide = decide,
};
