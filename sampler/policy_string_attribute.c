/* policy_string_attribute.c - the string_attribute policy: a resource or span attribute `key`
 * whose string value equals one of `values` (or, with enabled_regex_matching, matches one of
 * them as a regular expression, unanchored like Go's MatchString).
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
 * Regular expressions are POSIX extended (regcomp REG_EXTENDED | REG_NOSUB) rather than Go's
 * RE2; the RE2 shorthands \d \D \w \W \s \S and a leading (?i) are translated, other RE2-only
 * syntax is a config error or means something else. cache_max_size is accepted for
 * compatibility and unused: there is no match cache (a regex runs once per span carrying the
 * key until the trace has matched). Note glibc's regexec may allocate internally, and values
 * of 512 bytes or more are copied to the heap to be NUL-terminated.
 */
#include "policy_internal.h"

#include "alloc.h"
#include "buf.h"

#include <regex.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef struct string_attr_cfg {
    char *key;
    rt_cfg_strlist values;
    bool enabled_regex_matching;
    int64_t cache_max_size;
    bool invert_match;
    /* derived */
    size_t keylen;
    size_t *lens; /* owned: strlen of each value */
    regex_t *res; /* owned: compiled values when regex matching (n_res of them) */
    size_t n_res;
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
    {0},
};

/* RE2 -> POSIX ERE for the common shorthands (outside bracket expressions). Returns a new
 * string; sets *icase for a leading "(?i)". */
static char *translate_regex(const char *src, bool *icase)
{
    rt_buf b = RT_BUF_INIT;
    *icase = false;
    if (strncmp(src, "(?i)", 4) == 0) {
        *icase = true;
        src += 4;
    }
    bool in_bracket = false;
    for (const char *s = src; *s != '\0'; s++) {
        if (in_bracket) {
            if (*s == ']') {
                in_bracket = false;
            }
            rt_buf_append_byte(&b, (uint8_t)*s);
            continue;
        }
        if (*s == '[') {
            in_bracket = true;
            rt_buf_append_byte(&b, (uint8_t)*s);
            /* A ']' right after '[' or '[^' is a literal member. */
            if (s[1] == '^') {
                rt_buf_append_byte(&b, (uint8_t) * ++s);
            }
            if (s[1] == ']') {
                rt_buf_append_byte(&b, (uint8_t) * ++s);
            }
            continue;
        }
        if (*s == '\\' && s[1] != '\0') {
            const char *rep = NULL;
            switch (s[1]) {
            case 'd':
                rep = "[0-9]";
                break;
            case 'D':
                rep = "[^0-9]";
                break;
            case 'w':
                rep = "[[:alnum:]_]";
                break;
            case 'W':
                rep = "[^[:alnum:]_]";
                break;
            case 's':
                rep = "[[:space:]]";
                break;
            case 'S':
                rep = "[^[:space:]]";
                break;
            default:
                break;
            }
            if (rep != NULL) {
                rt_buf_append_str(&b, rep);
            } else {
                rt_buf_append(&b, s, 2);
            }
            s++;
            continue;
        }
        rt_buf_append_byte(&b, (uint8_t)*s);
    }
    rt_buf_append_byte(&b, '\0');
    return (char *)rt_buf_steal(&b, NULL);
}

static void release(void *cfg)
{
    string_attr_cfg *c = cfg;
    for (size_t i = 0; i < c->n_res; i++) {
        regfree(&c->res[i]);
    }
    free(c->res);
    free(c->lens);
    c->res = NULL;
    c->lens = NULL;
    c->n_res = 0;
}

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    string_attr_cfg *c = cfg;
    const rt_cfg_node *list = rt_cfg_node_get(block, "values");
    if (c->key[0] == '\0') {
        rt_cfg_error(ctx, rt_cfg_node_line(rt_cfg_node_get(block, "key")), path,
                     "key: must not be empty");
        return -1;
    }
    if (c->values.len == 0) {
        rt_cfg_error(ctx, rt_cfg_node_line(list), path, "values: at least one value is required");
        return -1;
    }
    c->keylen = strlen(c->key);
    c->lens = rt_calloc(c->values.len, sizeof *c->lens);
    for (size_t i = 0; i < c->values.len; i++) {
        c->lens[i] = strlen(c->values.items[i]);
    }
    if (!c->enabled_regex_matching) {
        return 0;
    }
    c->res = rt_calloc(c->values.len, sizeof *c->res);
    int rc = 0;
    for (size_t i = 0; i < c->values.len; i++) {
        bool icase;
        char *pat = translate_regex(c->values.items[i], &icase);
        int err =
            regcomp(&c->res[c->n_res], pat, REG_EXTENDED | REG_NOSUB | (icase ? REG_ICASE : 0));
        free(pat);
        if (err != 0) {
            char why[160];
            regerror(err, &c->res[c->n_res], why, sizeof why);
            int line = list && i < list->n ? list->items[i]->line : rt_cfg_node_line(list);
            rt_cfg_error(ctx, line, path, "values[%zu]: bad regular expression \"%s\": %s", i,
                         c->values.items[i], why);
            rc = -1;
            continue;
        }
        c->n_res++;
    }
    return rc;
}

static bool value_matches(const void *cfg, const rt_otlp_value *val, bool on_span)
{
    const string_attr_cfg *c = cfg;
    if (val->type != RT_OTLP_VAL_STRING || (on_span && val->s.len == 0)) {
        return false;
    }
    if (c->enabled_regex_matching) {
        /* regexec wants a NUL-terminated string (sanitizer interceptors strlen() it even with
         * REG_STARTEND), and the value sits inside the request without one: copy it to the
         * stack, or to the heap when long (rare; glibc's regexec allocates anyway).
         * REG_STARTEND keeps embedded NUL bytes part of the subject. */
        char small[512];
        char *p = val->s.len < sizeof small ? small : rt_malloc(val->s.len + 1);
        if (val->s.len > 0) {
            memcpy(p, val->s.p, val->s.len);
        }
        p[val->s.len] = '\0';
        bool hit = false;
        for (size_t i = 0; i < c->n_res && !hit; i++) {
            regmatch_t m = {.rm_so = 0, .rm_eo = (regoff_t)val->s.len};
            hit = regexec(&c->res[i], p, 1, &m, REG_STARTEND) == 0;
        }
        if (p != small) {
            free(p);
        }
        return hit;
    }
    for (size_t i = 0; i < c->values.len; i++) {
        if (c->lens[i] > 0 && rt_pol_slice_eq(val->s, c->values.items[i], c->lens[i])) {
            return true;
        }
    }
    return false;
}

static void observe(const void *cfg, void *st, const rt_otlp_span_view *v)
{
    const string_attr_cfg *c = cfg;
    rt_pol_attr_observe(st, v, c->key, c->keylen, value_matches, cfg);
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    return rt_pol_attr_decide(st, ((const string_attr_cfg *)cfg)->invert_match);
}

const rt_pol_ops rt_pol_string_attribute_ops = {
    .type = "string_attribute",
    .fields = fields,
    .cfg_size = sizeof(string_attr_cfg),
    .prepare = prepare,
    .release = release,
    .state_size = 1,
    .observe = observe,
    .decide = decide,
};
