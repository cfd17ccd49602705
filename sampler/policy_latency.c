/* policy_latency.c - the latency policy: the trace's duration, from its earliest span start to
 * its latest span end (read from the buffer's rt_trace_summary, no per-span work).
 *
 * OTel compares whole milliseconds (Go's Duration.Milliseconds() truncates), so do we: a trace
 * of 9999.9 ms does not reach threshold_ms 10000. Without upper_threshold_ms: sampled when
 * duration >= threshold_ms. With it: threshold_ms < duration <= upper_threshold_ms.
 */
#include "policy_internal.h"

#include <stddef.h>

typedef struct latency_cfg {
    int64_t threshold_ms;
    int64_t upper_threshold_ms;
} latency_cfg;

static const rt_cfg_field fields[] = {
    {.key = "threshold_ms",
     .type = RT_CFG_INT64,
     .offset = offsetof(latency_cfg, threshold_ms),
     .min = "0",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Lower bound of the trace duration in milliseconds (inclusive without "
             "upper_threshold_ms, exclusive with it)."},
    {.key = "upper_threshold_ms",
     .type = RT_CFG_INT64,
     .offset = offsetof(latency_cfg, upper_threshold_ms),
     .def = "0",
     .min = "0",
     .help = "Inclusive upper bound in milliseconds; 0 = none."},
    {0},
};

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    const latency_cfg *c = cfg;
    if (c->upper_threshold_ms != 0 && c->upper_threshold_ms <= c->threshold_ms) {
        const rt_cfg_node *u = rt_cfg_node_get(block, "upper_threshold_ms");
        rt_cfg_error(ctx, rt_cfg_node_line(u), path,
                     "upper_threshold_ms (%lld) must be greater than threshold_ms (%lld): the "
                     "window threshold_ms < duration <= upper_threshold_ms would be empty",
                     (long long)c->upper_threshold_ms, (long long)c->threshold_ms);
        return -1;
    }
    return 0;
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)st;
    (void)now_ns;
    const latency_cfg *c = cfg;
    uint64_t dur_ns = sum->max_end_ns > sum->min_start_ns && sum->min_start_ns != UINT64_MAX
                          ? sum->max_end_ns - sum->min_start_ns
                          : 0;
    uint64_t ms = dur_ns / 1000000u;
    if (c->upper_threshold_ms == 0) {
        return ms >= (uint64_t)c->threshold_ms ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
    }
    return ms > (uint64_t)c->threshold_ms && ms <= (uint64_t)c->upper_threshold_ms
               ? RT_DECISION_SAMPLED
               : RT_DECISION_NOT_SAMPLED;
}

/* The duration only grows with more spans; with an upper bound it can grow out of range. */
static bool monotone(const void *cfg)
{
    return ((const latency_cfg *)cfg)->upper_threshold_ms == 0;
}

const rt_pol_ops rt_pol_latency_ops = {
    .type = "latency",
    .fields = fields,
    .cfg_size = sizeof(latency_cfg),
    .prepare = prepare,
    .decide = decide,
    .monotone = monotone,
};
