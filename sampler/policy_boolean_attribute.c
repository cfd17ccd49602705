/* policy_boolean_attribute.c - the boolean_attribute policy: an attribute `key` holding the
 * boolean `value`. Only boolean values are compared (OTel reads other types as false; we ignore
 * them). invert_match samples the traces in which no resource or span has it (the same
 * whole-trace reading as string_attribute).
 *
 * ringtail additions (see policy_match.h):
 *   - `scope: any|span|root|resource` (default any = OTel: span attributes, then the span's
 *     resource attributes; root = the root span's attributes only, so a trace whose root has
 *     not arrived does not match and invert_match samples it).
 *   - Arrays: an array value matches when any element is the boolean `value` (nested arrays and
 *     kvlists are not searched). A deliberate difference from OTel, which never matches arrays.
 */
#include "policy_internal.h"
#include "policy_match.h"

#include <stddef.h>
#include <string.h>

typedef struct boolean_attr_cfg {
    char *key;
    bool value;
    bool invert_match;
    int scope;    /* rt_pol_scope */
    rt_pol_key k; /* derived */
} boolean_attr_cfg;

static const rt_cfg_field fields[] = {
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(boolean_attr_cfg, key),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Attribute key looked up on resources and spans."},
    {.key = "value",
     .type = RT_CFG_BOOL,
     .offset = offsetof(boolean_attr_cfg, value),
     .def = "false",
     .help = "The boolean value that matches."},
    {.key = "invert_match",
     .type = RT_CFG_BOOL,
     .offset = offsetof(boolean_attr_cfg, invert_match),
     .def = "false",
     .help = "Sample traces in which no resource or span has the key with this value."},
    {.key = "scope",
     .type = RT_CFG_ENUM,
     .offset = offsetof(boolean_attr_cfg, scope),
     .def = "any",
     .choices = rt_pol_scope_choices,
     .help = "Where the key is looked up: any (span, then its resource), span, root (the root "
             "span only) or resource."},
    {0},
};

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    boolean_attr_cfg *c = cfg;
    if (c->key[0] == '\0') {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "key")), path,
                     "key: must not be empty");
        return -1;
    }
    c->k = (rt_pol_key){c->key, strlen(c->key), -1};
    return 0;
}

static bool value_matches(const void *cfg, const rt_otlp_value *val, bool on_span)
{
    (void)on_span;
    const boolean_attr_cfg *c = cfg;
    return val->type == RT_OTLP_VAL_BOOL && (val->b != 0) == c->value;
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const boolean_attr_cfg *c = cfg;
    rt_pol_match_observe(st, ps, (rt_pol_scope)c->scope, &c->k, value_matches, cfg);
}

static void keys(void *cfg, rt_pol_keys *reg)
{
    rt_pol_keys_add(reg, &((boolean_attr_cfg *)cfg)->k);
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    return rt_pol_attr_decide(st, ((const boolean_attr_cfg *)cfg)->invert_match);
}

/* "Some span matched" stays true; inverted, a later span can match and undo it. */
static bool monotone(const void *cfg)
{
    return !((const boolean_attr_cfg *)cfg)->invert_match;
}

const rt_pol_ops rt_pol_boolean_attribute_ops = {
    .type = "boolean_attribute",
    .fields = fields,
    .cfg_size = sizeof(boolean_attr_cfg),
    .prepare = prepare,
    .state_size = 1,
    .observe = observe,
    .keys = keys,
    .decide = decide,
    .monotone = monotone,
};
