/* policy_trace_state.c - the trace_state policy: sampled when any span's W3C tracestate
 * ("k1=v1,k2=v2", field 3) has an entry `key` whose value is one of `values`.
 *
 * As OTel (which parses with the OTel SDK's ParseTraceState), a tracestate that does not parse
 * matches nothing: a non-empty list member without '=' or with an empty key or value, or more
 * than 32 members. Optional whitespace around members is skipped, empty members are allowed.
 * A span without the key does not match. OTel rejects a key + value longer than 256 bytes
 * (the W3C limit for one entry) at config time; so do we.
 */
#include "policy_internal.h"

#include "alloc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define MAX_MEMBERS 32
#define MAX_ENTRY   256

typedef struct trace_state_cfg {
    char *key;
    rt_cfg_strlist values;
    /* derived */
    size_t keylen;
    size_t *lens; /* owned */
} trace_state_cfg;

static const rt_cfg_field fields[] = {
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(trace_state_cfg, key),
     .flags = RT_CFG_F_REQUIRED,
     .help = "tracestate entry key (e.g. a vendor key)."},
    {.key = "values",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(trace_state_cfg, values),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Entry values that match."},
    {0},
};

static void release(void *cfg)
{
    trace_state_cfg *c = cfg;
    free(c->lens);
    c->lens = NULL;
}

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    trace_state_cfg *c = cfg;
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
    int rc = 0;
    for (size_t i = 0; i < c->values.len; i++) {
        c->lens[i] = strlen(c->values.items[i]);
        if (c->keylen + c->lens[i] > MAX_ENTRY) {
            int line = list && i < list->n ? list->items[i]->line : rt_cfg_node_line(list);
            rt_cfg_error(ctx, line, path,
                         "values[%zu]: key and value together are %zu bytes, more than the %d a "
                         "tracestate entry may hold",
                         i, c->keylen + c->lens[i], MAX_ENTRY);
            rc = -1;
        }
    }
    return rc;
}

static bool is_ows(uint8_t c)
{
    return c == ' ' || c == '\t';
}

/* Does tracestate `ts` parse and hold key = one of the values? */
static bool tracestate_matches(const trace_state_cfg *c, rt_pb_slice ts)
{
    const uint8_t *p = ts.p;
    const uint8_t *end = p ? p + ts.len : p;
    bool matched = false;
    int members = 0;
    while (p < end) {
        const uint8_t *comma = memchr(p, ',', (size_t)(end - p));
        const uint8_t *m_end = comma ? comma : end;
        const uint8_t *a = p, *b = m_end;
        while (a < b && is_ows(*a)) {
            a++;
        }
        while (b > a && is_ows(b[-1])) {
            b--;
        }
        if (a < b) {
            if (++members > MAX_MEMBERS) {
                return false;
            }
            const uint8_t *eq = memchr(a, '=', (size_t)(b - a));
            if (eq == NULL || eq == a || eq + 1 == b) {
                return false; /* the whole tracestate is invalid */
            }
            rt_pb_slice k = {a, (size_t)(eq - a)};
            rt_pb_slice v = {eq + 1, (size_t)(b - eq - 1)};
            if (!matched && rt_pol_slice_eq(k, c->key, c->keylen)) {
                for (size_t i = 0; i < c->values.len; i++) {
                    if (rt_pol_slice_eq(v, c->values.items[i], c->lens[i])) {
                        matched = true;
                        break;
                    }
                }
            }
        }
        p = comma ? comma + 1 : end;
    }
    return matched;
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const rt_otlp_span_view *v = ps->v;
    uint8_t *hit = st;
    if (*hit == 0 && v->trace_state.len > 0 && tracestate_matches(cfg, v->trace_state)) {
        *hit = 1;
    }
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)cfg;
    (void)rt;
    (void)sum;
    (void)now_ns;
    return *(const uint8_t *)st ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
}

/* "Some span matched": it stays matched. */
static bool monotone(const void *cfg)
{
    (void)cfg;
    return true;
}

const rt_pol_ops rt_pol_trace_state_ops = {
    .type = "trace_state",
    .fields = fields,
    .cfg_size = sizeof(trace_state_cfg),
    .prepare = prepare,
    .release = release,
    .state_size = 1,
    .observe = observe,
    .decide = decide,
    .monotone = monotone,
};
