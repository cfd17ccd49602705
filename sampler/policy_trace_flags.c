/* policy_trace_flags.c - the trace_flags policy: sampled when any span carries the W3C sampled
 * flag (bit 0x01 of the span's `flags`, field 16, whose low 8 bits are the W3C trace flags). */
#include "policy_internal.h"

#define W3C_SAMPLED 0x01u

static const rt_cfg_field fields[] = {
    {0},
};

static void observe(const void *cfg, void *st, rt_pol_span *ps)
{
    const rt_otlp_span_view *v = ps->v;
    (void)cfg;
    if (v->flags & W3C_SAMPLED) {
        *(uint8_t *)st = 1;
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

/* "Some span had the flag": it stays so. */
static bool monotone(const void *cfg)
{
    (void)cfg;
    return true;
}

const rt_pol_ops rt_pol_trace_flags_ops = {
    .type = "trace_flags",
    .fields = fields,
    .cfg_size = 0,
    .state_size = 1,
    .observe = observe,
    .decide = decide,
    .monotone = monotone,
};
