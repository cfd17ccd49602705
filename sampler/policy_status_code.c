/* policy_status_code.c - the status_code policy: sampled when any span's status code is one of
 * `status_codes` (OK, ERROR, UNSET; spelled as OTel spells them). A span without a status field
 * has code UNSET. Per-trace state: a bit mask of the codes seen. */
#include "policy_internal.h"

#include <stddef.h>
#include <string.h>

typedef struct status_code_cfg {
    rt_cfg_strlist status_codes;
    uint8_t want; /* derived: bit (1 << code) per listed code */
} status_code_cfg;

static const rt_cfg_field fields[] = {
    {.key = "status_codes",
     .type = RT_CFG_STRLIST,
     .offset = offsetof(status_code_cfg, status_codes),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Status codes that keep a trace: any of OK, ERROR, UNSET."},
    {0},
};

static const char *const code_names[] = {"UNSET", "OK", "ERROR"}; /* index = Status.code */

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    status_code_cfg *c = cfg;
    const rt_cfg_node *list = rt_cfg_node_get(block, "status_codes");
    c->want = 0;
    if (c->status_codes.len == 0) {
        rt_cfg_error(ctx, rt_cfg_node_line(list), path,
                     "status_codes: at least one status code is required (OK, ERROR, UNSET)");
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < c->status_codes.len; i++) {
        const char *s = c->status_codes.items[i];
        int code = -1;
        for (int k = 0; k < 3; k++) {
            if (strcmp(s, code_names[k]) == 0) {
                code = k;
            }
        }
        if (code < 0) {
            int line = list && i < list->n ? list->items[i]->line : rt_cfg_node_line(list);
            rt_cfg_error(ctx, line, path,
                         "status_codes[%zu]: unknown status code \"%s\" (known: OK, ERROR, UNSET)",
                         i, s);
            rc = -1;
            continue;
        }
        c->want |= (uint8_t)(1u << code);
    }
    return rc;
}

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const rt_otlp_span_view *v = ps->v;
    (void)cfg;
    int32_t code = v->has_status ? v->status_code : 0;
    if (code >= 0 && code <= 2) {
        *(uint8_t *)st |= (uint8_t)(1u << code);
    }
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)sum;
    (void)now_ns;
    const status_code_cfg *c = cfg;
    return (*(const uint8_t *)st & c->want) ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
}

/* The state is the set of codes seen: it only grows. */
static bool monotone(const void *cfg)
{
    (void)cfg;
    return true;
}

const rt_pol_ops rt_pol_status_code_ops = {
    .type = "status_code",
    .fields = fields,
    .cfg_size = sizeof(status_code_cfg),
    .prepare = prepare,
    .state_size = 1,
    .observe = observe,
    .decide = decide,
    .monotone = monotone,
};
