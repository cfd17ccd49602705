/* policy_always_sample.c - the always_sample policy: every trace is sampled. */
#include "policy_internal.h"

static const rt_cfg_field fields[] = {
    {0},
};

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)cfg;
    (void)rt;
    (void)st;
    (void)sum;
    (void)now_ns;
    return RT_DECISION_SAMPLED;
}

static bool monotone(const void *cfg)
{
    (void)cfg;
    return true;
}

const rt_pol_ops rt_pol_always_sample_ops = {
    .type = "always_sample",
    .fields = fields,
    .cfg_size = 0,
    .decide = decide,
    .monotone = monotone,
};
