/* policy_numeric_attribute.c - the numeric_attribute policy: an attribute `key` with a number in
 * [min_value, max_value], or (ringtail) an aggregate of all of the trace's values in that range.
 *
 * As in OTel's config, 0 means "unset": min_value 0 is no lower bound and max_value 0 no upper
 * bound (so the range [-5, 0] cannot be written; [-5, +inf) is what it gives). Integer values
 * are compared as integers. Choice: double values are compared too (as doubles against the
 * same bounds), where OTel reads a double attribute as the integer 0; NaN is in no range; other
 * types never match. invert_match samples the traces in which no resource or span has a value
 * in range (the same whole-trace reading as string_attribute).
 *
 * ringtail additions:
 *   - `scope: any|span|root|resource` (default any = OTel: span attributes, then the span's
 *     resource attributes; span = span attributes only; root = the root span's attributes only,
 *     so a trace whose root has not arrived does not match; resource = resource attributes
 *     only). See policy_match.h.
 *   - Arrays: a value that is an array matches when any int/double element is in range (nested
 *     arrays and kvlists are not searched). A deliberate difference from OTel, which never
 *     matches arrays.
 *   - `aggregate: none|sum|max|min|count` (default none = the OTel reading above). With an
 *     aggregate every int or double value of `key` the trace has (array elements included,
 *     under `scope`) is folded as the spans arrive: sum (as a double), max, min, or count (how
 *     many values there were); at decide time the result is compared with [min_value,
 *     max_value] (0 = unbounded as above). NaN values are not folded (nor counted). A trace
 *     with no value has count 0, compared like any count, while sum, max and min match nothing
 *     (so invert_match samples it). E.g. "token sum over 100000":
 *         {key: gen_ai.usage.input_tokens, aggregate: sum, min_value: 100001, scope: span}.
 *     Ints are folded as doubles, exact up to 2^53. With scope any (or resource) a resource
 *     attribute is seen once per span under that resource - the engine has no identity for
 *     resources - so it adds to sum and count once per such span; use scope span to fold span
 *     values only.
 * The per-trace state is 32 bytes (sum, min, max, count); none uses count as its "matched" flag
 * and stops looking at spans once it is set.
 */
#include "policy_internal.h"
#include "policy_match.h"

#include <stddef.h>
#include <string.h>

typedef enum aggregate {
    AGG_NONE = 0,
    AGG_SUM,
    AGG_MAX,
    AGG_MIN,
    AGG_COUNT,
} aggregate;

static const char *const aggregate_choices[] = {"none", "sum", "max", "min", "count", NULL};

typedef struct numeric_attr_cfg {
    char *key;
    int64_t min_value;
    int64_t max_value;
    bool invert_match;
    int scope;     /* rt_pol_scope */
    int aggregate; /* enum aggregate */
    /* derived */
    rt_pol_key k;
    rt_pol_range range;
} numeric_attr_cfg;

/* Per-trace state. */
typedef struct numeric_state {
    double sum, min, max; /* of the values folded (min/max valid when count > 0) */
    uint64_t count;       /* values folded; AGG_NONE: 1 once a value in range was seen */
} numeric_state;

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
     .help = "Sample traces in which no resource or span has a value in range (with an "
             "aggregate: whose aggregate is not in range)."},
    {.key = "scope",
     .type = RT_CFG_ENUM,
     .offset = offsetof(numeric_attr_cfg, scope),
     .def = "any",
     .choices = rt_pol_scope_choices,
     .help = "Where the key is looked up: any (span, then its resource), span, root (the root "
             "span only) or resource."},
    {.key = "aggregate",
     .type = RT_CFG_ENUM,
     .offset = offsetof(numeric_attr_cfg, aggregate),
     .def = "none",
     .choices = aggregate_choices,
     .help = "none: any single value in range (OTel); sum, max, min or count: fold every value "
             "of the trace and compare the result with the range."},
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
    c->k = (rt_pol_key){c->key, strlen(c->key), -1};
    c->range = rt_pol_range_make(c->min_value, c->max_value);
    if (rt_pol_range_empty(&c->range)) {
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
    return rt_pol_range_value(&c->range, val);
}

/* What the fold visitor gets: the state to fold into (the struct itself is const). */
typedef struct fold_arg {
    numeric_state *st;
} fold_arg;

static bool fold_value(const void *arg, const rt_otlp_value *val, bool on_span)
{
    (void)on_span;
    numeric_state *st = ((const fold_arg *)arg)->st;
    double x;
    if (val->type == RT_OTLP_VAL_INT) {
        x = (double)val->i;
    } else if (val->type == RT_OTLP_VAL_DOUBLE && val->d == val->d) {
        x = val->d;
    } else {
        return false;
    }
    if (st->count == 0 || x < st->min) {
        st->min = x;
    }
    if (st->count == 0 || x > st->max) {
        st->max = x;
    }
    st->sum += x;
    st->count++;
    return false; /* keep going: every value is folded */
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const numeric_attr_cfg *c = cfg;
    numeric_state *s = st;
    if (c->aggregate == AGG_NONE) {
        if (s->count == 0 &&
            rt_pol_attr_visit(ps, (rt_pol_scope)c->scope, &c->k, value_matches, cfg)) {
            s->count = 1;
        }
        return;
    }
    fold_arg fa = {s};
    rt_pol_attr_visit(ps, (rt_pol_scope)c->scope, &c->k, fold_value, &fa);
}

static void keys(void *cfg, rt_pol_keys *reg)
{
    rt_pol_keys_add(reg, &((numeric_attr_cfg *)cfg)->k);
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    const numeric_attr_cfg *c = cfg;
    const numeric_state *s = st;
    bool hit = false;
    switch ((aggregate)c->aggregate) {
    case AGG_NONE:
        hit = s->count != 0;
        break;
    case AGG_COUNT:
        hit = s->count <= (uint64_t)INT64_MAX && rt_pol_range_int(&c->range, (int64_t)s->count);
        break;
    case AGG_SUM:
        hit = s->count > 0 && rt_pol_range_double(&c->range, s->sum);
        break;
    case AGG_MAX:
        hit = s->count > 0 && rt_pol_range_double(&c->range, s->max);
        break;
    case AGG_MIN:
        hit = s->count > 0 && rt_pol_range_double(&c->range, s->min);
        break;
    }
    return hit != c->invert_match ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
}

/* Without an aggregate, "some value was in range" stays true; an aggregate (a sum, a max...)
 * can leave the range with the next value, and an inverted match can be undone. */
static bool monotone(const void *cfg)
{
    const numeric_attr_cfg *c = cfg;
    return !c->invert_match && c->aggregate == AGG_NONE;
}

const rt_pol_ops rt_pol_numeric_attribute_ops = {
    .type = "numeric_attribute",
    .fields = fields,
    .cfg_size = sizeof(numeric_attr_cfg),
    .prepare = prepare,
    .state_size = sizeof(numeric_state),
    .observe = observe,
    .keys = keys,
    .decide = decide,
    .monotone = monotone,
};
