/* policy_rate_limiting.c - the rate_limiting (spans/s) and bytes_limiting (bytes/s) policies:
 * token buckets, full at start, refilled from the `now_ns` given to decide (never from a clock
 * read here), charged with the trace's span count or encoded bytes when the whole charge fits
 * (golang.org/x/time/rate AllowN semantics, which OTel uses). burst_capacity defaults to twice
 * the rate. Every rate and capacity is multiplied by the engine's `share` (1 / workers), since
 * each worker sees its share of the traces. The keep probability of a rate limiter is unknown, so
 * the traces they keep carry no adjusted count (RT_ADJ_UNKNOWN). */
#include "adjusted_count.h"
#include "policy_internal.h"

#include <stddef.h>

void rt_pol_bucket_init(rt_pol_bucket *b, double rate, double burst, uint64_t now_ns)
{
    b->rate = rate;
    b->burst = burst;
    b->tokens = burst;
    b->last_ns = now_ns;
}

bool rt_pol_bucket_take(rt_pol_bucket *b, double n, uint64_t now_ns)
{
    if (now_ns > b->last_ns) {
        b->tokens += (double)(now_ns - b->last_ns) * b->rate / 1e9;
        if (b->tokens > b->burst) {
            b->tokens = b->burst;
        }
        b->last_ns = now_ns;
    }
    if (n <= b->tokens) {
        b->tokens -= n;
        return true;
    }
    return false;
}

typedef struct limit_cfg {
    int64_t per_second;
    int64_t burst_capacity; /* 0 = 2 x per_second */
} limit_cfg;

static const rt_cfg_field span_fields[] = {
    {.key = "spans_per_second",
     .type = RT_CFG_INT64,
     .offset = offsetof(limit_cfg, per_second),
     .min = "1",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Spans per second kept by this policy (token refill rate)."},
    {.key = "burst_capacity",
     .type = RT_CFG_INT64,
     .offset = offsetof(limit_cfg, burst_capacity),
     .def = "0",
     .min = "0",
     .help = "Bucket capacity in spans; 0 = twice spans_per_second. A trace with more spans "
             "than this is never kept by this policy."},
    {0},
};

static const rt_cfg_field byte_fields[] = {
    {.key = "bytes_per_second",
     .type = RT_CFG_INT64,
     .offset = offsetof(limit_cfg, per_second),
     .min = "1",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Encoded span bytes per second kept by this policy (token refill rate)."},
    {.key = "burst_capacity",
     .type = RT_CFG_INT64,
     .offset = offsetof(limit_cfg, burst_capacity),
     .def = "0",
     .min = "0",
     .help = "Bucket capacity in bytes; 0 = twice bytes_per_second."},
    {0},
};

static void runtime_init(const void *cfg, void *rt, double share, uint64_t now_ns)
{
    const limit_cfg *c = cfg;
    double burst = c->burst_capacity > 0 ? (double)c->burst_capacity : 2.0 * (double)c->per_second;
    rt_pol_bucket_init(rt, (double)c->per_second * share, burst * share, now_ns);
}

static rt_decision decide_spans(const void *cfg, void *rt, const void *st,
                                const rt_trace_summary *sum, uint64_t now_ns)
{
    (void)cfg;
    (void)st;
    return rt_pol_bucket_take(rt, (double)sum->span_count, now_ns) ? RT_DECISION_SAMPLED
                                                                   : RT_DECISION_NOT_SAMPLED;
}

static rt_decision decide_bytes(const void *cfg, void *rt, const void *st,
                                const rt_trace_summary *sum, uint64_t now_ns)
{
    (void)cfg;
    (void)st;
    return rt_pol_bucket_take(rt, (double)sum->bytes, now_ns) ? RT_DECISION_SAMPLED
                                                              : RT_DECISION_NOT_SAMPLED;
}

static double unknown_count(const void *cfg)
{
    (void)cfg;
    return RT_ADJ_UNKNOWN;
}

const rt_pol_ops rt_pol_rate_limiting_ops = {
    .type = "rate_limiting",
    .fields = span_fields,
    .cfg_size = sizeof(limit_cfg),
    .runtime_size = sizeof(rt_pol_bucket),
    .runtime_init = runtime_init,
    .decide = decide_spans,
    .adjusted_count = unknown_count,
};

const rt_pol_ops rt_pol_bytes_limiting_ops = {
    .type = "bytes_limiting",
    .fields = byte_fields,
    .cfg_size = sizeof(limit_cfg),
    .runtime_size = sizeof(rt_pol_bucket),
    .runtime_init = runtime_init,
    .decide = decide_bytes,
    .adjusted_count = unknown_count,
};
