/* policy_numeric_attribute.c - the numeric_attribute policy: a resource or span attribute `key`
 * with a number in [min_value, max_value].
 *
 * As in OTel's config, 0 means "unset": min_value 0 is no lower bound and max_value 0 no upper
 * bound (so the range [-5, 0] cannot be written; [-5, +inf) is what it gives). Integer values
 * are compared as integers. Choice: double values are compared too (as doubles against the
 * same bounds), where OTel reads a double attribute as the integer 0; other types never match.
 * invert_match samples the traces in which no resource or span has a value in range (the same
 * whole-trace reading as string_attribute).
 */
#include "policy_internal.h"

#include <stddef.h>
#include <string.h>

typedef struct numeric_attr_cfg {
    char *key;
    int64_t min_value;
    int64_t max_value;
    bool invert_match;
    /* derived */
    size_t keylen;
    int64_t lo, hi;
} numeric_attr_cfg;

static const rt_cfg_field fields[] = {
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(numeric_attr_cfg, key),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Attribute key looked up on resources and spans."},
    {.key = "min_value",
     .type = RT_CFG_INT64,
     .offset = offsetof(numeric_attr_cfg, min_value),
     .def = "0",
     .help = "Inclusive lower bound; 0 = none."},
    {.key = "max_value",
     .type = RT_CFG_INT64,
     .offset = offsetof(numeric_attr_cfg, max_value),
     .def = "0",
     .help = "Inclusive upper bound; 0 = none."},
    {.key = "invert_match",
     .type = RT_CFG_BOOL,
     .offset = offsetof(numeric_attr_cfg, invert_match),
     .def = "false",
     .help = "Sample traces in which no resource or span has a value in range."},
    {0},
};

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    numeric_attr_cfg *c = cfg;
    if (c->key[0] == '\0') {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "key")), path,
                     "key: must not be empty");
        return -1;
    }
    c->keylen = strlen(c->key);
    c->lo = c->min_value != 0 ? c->min_value : INT64_MIN;
    c->hi = c->max_value != 0 ? c->max_value : INT64_MAX;
    if (c->lo > c->hi) {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "max_value")), path,
                     "max_value (%lld) is less than min_value (%lld): no value would match",
                     (long long)c->max_value, (long long)c->min_value);
        return -1;
    }
    return 0;
}

static bool value_matches(const void *cfg, const rt_otlp_value *val, bool on_span)
{
    (void)on_span;
    const numeric_attr_cfg *c = cfg;
    if (val->type == RT_OTLP_VAL_INT) {
        return val->i >= c->lo && val->i <= c->hi;
    }
    if (val->type == RT_OTLP_VAL_DOUBLE) {
        return val->d >= (double)c->lo && val->d <= (double)c->hi;
    }
    return false;
}

static void observe(const void *cfg, void *st, const rt_otlp_span_view *v)
{
    const numeric_attr_cfg *c = cfg;
    rt_pol_attr_observe(st, v, c->key, c->keylen, value_matches, cfg);
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    return rt_pol_attr_decide(st, ((const numeric_attr_cfg *)cfg)->invert_match);
}

const rt_pol_ops rt_pol_numeric_attribute_ops = {
    .type = "numeric_attribute",
    .fields = fields,
    .cfg_size = sizeof(numeric_attr_cfg),
    .prepare = prepare,
    .state_size = 1,
    .observe = observe,
    .decide = decide,
};
