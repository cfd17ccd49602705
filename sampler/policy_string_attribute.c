/* policy_string_attribute.c - the string_attribute policy: an attribute `key` whose string value
 * equals one of `values` (or, with enabled_regex_matching, matches one of them as a regular
 * expression, unanchored like Go's MatchString).
 *
 * OTel semantics kept:
 *   - only string values are compared (OTel reads other types as ""; we ignore them);
 *   - an empty span value never matches (OTel skips it), and empty strings in `values` are
 *     ignored for exact matching (OTel leaves them out of its set);
 *   - invert_match: the trace is sampled when NO resource and NO span of the whole trace has
 *     the key with a matching value (OTel's invertHasResourceOrSpanWithCondition returns
 *     NotSampled at the first match and Sampled otherwise). So the per-trace state is one
 *     "some match seen" bit whatever invert_match says, and once it is set the outcome is
 *     final, so later spans are not scanned.
 * ringtail additions:
 *   - `scope: any|span|root|resource` (default any = OTel: span attributes, then the span's
 *     resource attributes; span = span attributes only; root = the root span's attributes only,
 *     so a trace whose root has not arrived does not match; resource = resource attributes
 *     only). See policy_match.h.
 *   - Arrays: a string array value matches when any of its elements matches (nested arrays and
 *     kvlists are not searched). A deliberate difference from OTel, which never matches arrays;
 *     invert_match then samples traces where no value and no element matched.
 * Regular expressions are POSIX extended (regcomp REG_EXTENDED | REG_NOSUB) rather than Go's
 * RE2; the RE2 shorthands \d \D \w \W \s \S and a leading (?i) are translated, other RE2-only
 * syntax is a config error or means something else. cache_max_size is accepted for
 * compatibility and unused: there is no match cache (a regex runs once per span carrying the
 * key until the trace has matched). Note glibc's regexec may allocate internally, and values
 * of 512 bytes or more are copied to the heap to be NUL-terminated.
 */
#include "policy_internal.h"
#include "policy_match.h"

#include <stddef.h>
#include <string.h>

typedef struct string_attr_cfg {
    char *key;
    rt_cfg_strlist values;
    bool enabled_regex_matching;
    int64_t cache_max_size;
    bool invert_match;
    int scope; /* rt_pol_scope */
    /* derived */
    rt_pol_key k;
    rt_pol_strset set;
} string_attr_cfg;

static const rt_cfg_field fields[] = {
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(string_attr_cfg, key),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Attribute key looked up on resources and spans."},
    {.key = "values",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(string_attr_cfg, values),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Values (or regular expressions) that match."},
    {.key = "enabled_regex_matching",
     .type = RT_CFG_BOOL,
     .offset = offsetof(string_attr_cfg, enabled_regex_matching),
     .def = "false",
     .help = "Treat values as POSIX extended regular expressions (unanchored)."},
    {.key = "cache_max_size",
     .type = RT_CFG_INT64,
     .offset = offsetof(string_attr_cfg, cache_max_size),
     .def = "0",
     .min = "0",
     .help = "Accepted for OTel compatibility; ringtail keeps no regex match cache."},
    {.key = "invert_match",
     .type = RT_CFG_BOOL,
     .offset = offsetof(string_attr_cfg, invert_match),
     .def = "false",
     .help = "Sample traces in which no resource or span has a matching value."},
    {.key = "scope",
     .type = RT_CFG_ENUM,
     .offset = offsetof(string_attr_cfg, scope),
     .def = "any",
     .choices = rt_pol_scope_choices,
     .help = "Where the key is looked up: any (span, then its resource), span, root (the root "
             "span only) or resource."},
    {0},
};

static void release(void *cfg)
{
    string_attr_cfg *c = cfg;
    rt_pol_strset_free(&c->set);
}

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    string_attr_cfg *c = cfg;
    if (c->key[0] == '\0') {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "key")), path,
                     "key: must not be empty");
        return -1;
    }
    c->k = (rt_pol_key){c->key, strlen(c->key), -1};
    return rt_pol_strset_init(&c->set, &c->values, c->enabled_regex_matching, ctx,
                              rt_cfg_node_get(block, "values"), path);
}

static bool value_matches(const void *cfg, const rt_otlp_value *val, bool on_span)
{
    const string_attr_cfg *c = cfg;
    return rt_pol_strset_match(&c->set, val, on_span);
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const string_attr_cfg *c = cfg;
    rt_pol_match_observe(st, ps, (rt_pol_scope)c->scope, &c->k, value_matches, cfg);
}

static void keys(void *cfg, rt_pol_keys *reg)
{
    rt_pol_keys_add(reg, &((string_attr_cfg *)cfg)->k);
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    return rt_pol_attr_decide(st, ((const string_attr_cfg *)cfg)->invert_match);
}

/* "Some span matched" stays true; inverted, a later span can match and undo it. */
static bool monotone(const void *cfg)
{
    return !((const string_attr_cfg *)cfg)->invert_match;
}

const rt_pol_ops rt_pol_string_attribute_ops = {
    .type = "string_attribute",
    .fields = fields,
    .cfg_size = sizeof(string_attr_cfg),
    .prepare = prepare,
    .release = release,
    .state_size = 1,
    .observe = observe,
    .keys = keys,
    .decide = decide,
    .monotone = monotone,
};
