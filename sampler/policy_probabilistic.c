/* policy_probabilistic.c - the probabilistic policy, bit-compatible with OTel's: FNV-1a 64 over
 * the hash_salt bytes then the 16 trace-id bytes; sampled when hash <= threshold, where
 * threshold = (2^64 - 1) * (sampling_percentage / 100) computed as Go's big.Float does it
 * (product rounded to 64 significant bits, nearest-even, then truncated to an integer), so a
 * ringtail sampler and an OTel collector with the same salt keep exactly the same trace ids.
 * An empty or absent hash_salt means "default-hash-seed", as in OTel. A kept trace's adjusted
 * count is 1 / (sampling_percentage / 100). */
#include "adjusted_count.h"
#include "policy_internal.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define FNV64_OFFSET 14695981039346656037ull
#define FNV64_PRIME  1099511628211ull
#define DEFAULT_SALT "default-hash-seed"

typedef struct probabilistic_cfg {
    double sampling_percentage;
    char *hash_salt;
    /* derived */
    uint64_t threshold;
    uint64_t salted; /* FNV-1a state after the salt bytes */
} probabilistic_cfg;

static const rt_cfg_field fields[] = {
    {.key = "sampling_percentage",
     .type = RT_CFG_DOUBLE,
     .offset = offsetof(probabilistic_cfg, sampling_percentage),
     .min = "0",
     .max = "100",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Percentage of trace ids kept (0 to 100, fractional)."},
    {.key = "hash_salt",
     .type = RT_CFG_STRING,
     .offset = offsetof(probabilistic_cfg, hash_salt),
     .help = "Salt hashed before the trace id; empty means \"default-hash-seed\" (OTel's). Use "
             "different salts in different tiers so their decisions are independent."},
    {0},
};

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= FNV64_PRIME;
    }
    return h;
}

/* (2^64 - 1) * ratio, with the product rounded to 64 significant bits (round half to even)
 * and the result truncated toward zero - what Go's big.Float (precision 64, from SetInt of
 * MaxUint64) Mul followed by Uint64() gives. ratio outside [0, 1] saturates. */
uint64_t rt_pol_probabilistic_threshold(double ratio)
{
    if (!(ratio > 0)) {
        return 0;
    }
    if (ratio >= 1) {
        return UINT64_MAX;
    }
    int e;
    double m = frexp(ratio, &e);          /* ratio = m * 2^e, 0.5 <= m < 1, e <= 0 */
    uint64_t mi = (uint64_t)ldexp(m, 53); /* exact: a double has 53 significant bits */
    unsigned __int128 p = (unsigned __int128)UINT64_MAX * mi; /* exact, < 2^117 */
    int shift = 53 - e;                                       /* result = p / 2^shift */
    int bits = 0;
    for (unsigned __int128 t = p; t != 0; t >>= 1) {
        bits++;
    }
    if (bits > 64) {
        int drop = bits - 64;
        unsigned __int128 one = 1;
        unsigned __int128 q = p >> drop;
        unsigned __int128 rem = p & ((one << drop) - 1);
        unsigned __int128 half = one << (drop - 1);
        if (rem > half || (rem == half && (q & 1))) {
            q++;
        }
        p = q << drop;
    }
    return shift >= 128 ? 0 : (uint64_t)(p >> shift);
}

static int prepare(rt_cfg_ctx *ctx, const rt_cfg_node *block, const char *path, void *cfg)
{
    (void)ctx;
    (void)block;
    (void)path;
    probabilistic_cfg *c = cfg;
    const char *salt = c->hash_salt && c->hash_salt[0] ? c->hash_salt : DEFAULT_SALT;
    c->salted = fnv1a(FNV64_OFFSET, (const uint8_t *)salt, strlen(salt));
    c->threshold = rt_pol_probabilistic_threshold(c->sampling_percentage / 100.0);
    return 0;
}

static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)rt;
    (void)st;
    (void)now_ns;
    const probabilistic_cfg *c = cfg;
    uint64_t h = fnv1a(c->salted, sum->trace_id, sizeof sum->trace_id);
    return h <= c->threshold ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED;
}

/* A kept trace stands for 1 / ratio traces (1 at 100 %); a 0 % policy never keeps one. */
static double adjusted_count(const void *cfg)
{
    const probabilistic_cfg *c = cfg;
    double ratio = c->sampling_percentage / 100.0;
    if (!(ratio > 0)) {
        return RT_ADJ_UNKNOWN;
    }
    return ratio >= 1 ? 1.0 : 1.0 / ratio;
}

/* Decided by the trace id alone. */
static bool monotone(const void *cfg)
{
    (void)cfg;
    return true;
}

const rt_pol_ops rt_pol_probabilistic_ops = {
    .type = "probabilistic",
    .fields = fields,
    .cfg_size = sizeof(probabilistic_cfg),
    .prepare = prepare,
    .decide = decide,
    .adjusted_count = adjusted_count,
    .monotone = monotone,
};
