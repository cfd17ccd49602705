/* policy_span_count.c - the span_count policy: min_spans <= spans <= max_spans (max_spans 0 = no
 * upper bound), from the buffer's distinct span count.
 *
 * ringtail addition: an optional `span_filter` block; then only the spans that pass it are
 * counted (e.g. tool calls, where OTel's span_count counts every span of an agent turn):
 *     span_count:
 *       min_spans: 5
 *       span_filter:
 *         name_pattern: "^execute_tool( |$)"   # regex on the span name (string_attribute's
 *                                              # dialect; unanchored unless anchored)
 *         attributes:                          # each entry must match (AND)
 *           - {key: gen_ai.operation.name, values: [execute_tool]}   # + use_regex: true|false
 *           - {key: gen_ai.usage.output_tokens, min_value: 1000}     # int64, 0 = unbounded
 *           - {key: gen_ai.tool.remote, bool_value: true}
 * A span passes when name_pattern (if given) matches its name and every entry matches a value
 * of its key among the span's attributes, then its resource's (OTel's reading; array values
 * match when an element does, as in string_attribute). A filter needs name_pattern or
 * attributes. See policy_match.h for the matching rules.
 *
 * Counting: the policy's per-trace state counts the spans that pass, one `observe` per span.
 * The trace buffer calls observe once per distinct span (a span whose span id the trace already
 * holds is discarded before observe, exactly as it is not counted in span_count), so the count
 * is of distinct passing spans. min_spans 0 with a filter that matches nothing still samples
 * (0 >= 0), as OTel's min_spans 0 does. Without span_filter the buffer's count is used and
 * the policy is not on the per-span observer list at all (`observes`).
 */
#include "policy_internal.h"
#include "policy_match.h"

#include <stddef.h>

typedef struct span_count_cfg {
    int64_t min_spans;
    int64_t max_spans;
    rt_pol_span_filter *filter; /* owned; NULL = count every span */
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
    {.key = "span_filter",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(span_count_cfg, filter),
     .parse = rt_pol_span_filter_cfg_parse,
     .free = rt_pol_span_filter_cfg_free,
     .type_name = "span filter {name_pattern, attributes}",
     .help = "Count only the spans whose name matches name_pattern and whose attributes meet "
             "every condition of attributes."},
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

/* Only a filtered count needs the spans; without a filter decide reads the buffer's count. */
static bool observes(const void *cfg)
{
    return ((const span_count_cfg *)cfg)->filter != NULL;
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const span_count_cfg *c = cfg;
    if (rt_pol_span_filter_match(c->filter, ps)) {
        ++*(uint64_t *)st;
    }
}

static void keys(void *cfg, rt_pol_keys *reg)
{
    span_count_cfg *c = cfg;
    if (c->filter != NULL) {
        rt_pol_span_filter_keys(c->filter, reg);
    }
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)now_ns;
    const span_count_cfg *c = cfg;
    uint64_t n = c->filter != NULL ? *(const uint64_t *)st : sum->span_count;
    if (n >= (uint64_t)c->min_spans && (c->max_spans == 0 || n <= (uint64_t)c->max_spans)) {
        return RT_DECISION_SAMPLED;
    }
    return RT_DECISION_NOT_SAMPLED;
}

/* The count only grows; with max_spans it can grow out of range. */
static bool monotone(const void *cfg)
{
    return ((const span_count_cfg *)cfg)->max_spans == 0;
}

const rt_pol_ops rt_pol_span_count_ops = {
    .type = "span_count",
    .fields = fields,
    .cfg_size = sizeof(span_count_cfg),
    .prepare = prepare,
    .state_size = sizeof(uint64_t),
    .observe = observe,
    .observes = observes,
    .keys = keys,
    .decide = decide,
    .monotone = monotone,
};
