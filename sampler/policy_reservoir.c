/* policy_reservoir.c - the `reservoir` baseline policy (ours, not OTel's): per window, a uniform
 * sample of exactly min(k, n) of the n traces that no other policy kept or dropped, each kept
 * with adjusted count n / kept, so weighted estimates over the kept traces stay unbiased
 * whatever the arrival pattern (a rate limiter keeps the first traces of each second instead,
 * and under-represents a spike).
 *
 *     - name: baseline
 *       type: reservoir
 *       reservoir:
 *         traces_per_window: 1000   # k, required, 1..10,000,000, per sampler process
 *         window: 1m                # default 1m, 1s..24h
 *
 * Selection is bottom-k by a seeded 64-bit MurmurHash3 of the trace id (its own seed, not the
 * ring's nor the buffer's shard seed, so placement and selection stay independent). The engine
 * only reports eligible traces (rt_policy_result.reservoir); the trace buffer holds them with
 * the rt_reservoir bookkeeping defined here. Top level only, at most one per set
 * (policy_config.c enforces both).
 */
#include "adjusted_count.h"
#include "alloc.h"
#include "policy_internal.h"

#include <murmurhash.h>
#include <stddef.h>
#include <stdlib.h>

#define PRIORITY_SEED 0x72657376u /* "resv" */

typedef struct reservoir_cfg {
    int64_t traces_per_window;
    uint64_t window_ns;
} reservoir_cfg;

static const rt_cfg_field fields[] = {
    {.key = "traces_per_window",
     .type = RT_CFG_INT64,
     .offset = offsetof(reservoir_cfg, traces_per_window),
     .min = "1",
     .max = "10000000",
     .flags = RT_CFG_F_REQUIRED,
     .help = "Traces kept per window by this sampler process (k), chosen uniformly among the "
             "traces no other policy kept or dropped; each is kept with adjusted count "
             "(traces seen in the window) / (traces kept)."},
    {.key = "window",
     .type = RT_CFG_DURATION,
     .offset = offsetof(reservoir_cfg, window_ns),
     .def = "1m",
     .min = "1s",
     .max = "24h",
     .help = "Length of a reservoir window; held traces are exported when it ends."},
    {0},
};

void rt_pol_reservoir_params(const void *cfg, uint64_t *k, uint64_t *window_ns)
{
    const reservoir_cfg *c = cfg;
    *k = (uint64_t)c->traces_per_window;
    *window_ns = c->window_ns;
}

/* Never called for a top-level reservoir (policy.c reports eligibility instead), and a
 * reservoir cannot be nested; a plain "does not sample" keeps eval_node total. */
static rt_decision decide(const void *cfg, void *rt, const void *st, const rt_trace_summary *sum,
                          uint64_t now_ns)
{
    (void)cfg;
    (void)rt;
    (void)st;
    (void)sum;
    (void)now_ns;
    return RT_DECISION_NOT_SAMPLED;
}

/* The count is per window (seen / held), known only at the window's end. */
static double adjusted_count(const void *cfg)
{
    (void)cfg;
    return RT_ADJ_UNKNOWN;
}

const rt_pol_ops rt_pol_reservoir_ops = {
    .type = "reservoir",
    .fields = fields,
    .cfg_size = sizeof(reservoir_cfg),
    .decide = decide,
    .adjusted_count = adjusted_count,
};

uint64_t rt_policy_reservoir_priority(const uint8_t trace_id[16])
{
    uint64_t out[2];
    lmmh_x64_128(trace_id, 16, PRIORITY_SEED, out);
    return out[0];
}

/* ---- bottom-k bookkeeping ------------------------------------------------------------------ */

void rt_reservoir_init(rt_reservoir *r, uint64_t slots, uint64_t window_ns, uint64_t now_ns)
{
    memset(r, 0, sizeof *r);
    if (slots == 0 || window_ns == 0) {
        return;
    }
    r->slots = slots;
    r->window_ns = window_ns;
    r->window = now_ns / window_ns;
}

void rt_reservoir_free(rt_reservoir *r)
{
    free(r->heap);
    memset(r, 0, sizeof *r);
}

bool rt_reservoir_window_over(const rt_reservoir *r, uint64_t now_ns)
{
    return r->slots > 0 && now_ns / r->window_ns > r->window;
}

static void sift_up(rt_reservoir_ent *h, size_t i)
{
    rt_reservoir_ent e = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (h[p].prio >= e.prio) {
            break;
        }
        h[i] = h[p];
        i = p;
    }
    h[i] = e;
}

static void sift_down(rt_reservoir_ent *h, size_t n, size_t i)
{
    rt_reservoir_ent e = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && h[c + 1].prio > h[c].prio) {
            c++;
        }
        if (h[c].prio <= e.prio) {
            break;
        }
        h[i] = h[c];
        i = c;
    }
    h[i] = e;
}

bool rt_reservoir_offer(rt_reservoir *r, uint64_t prio, void *item, void **evicted)
{
    *evicted = NULL;
    r->seen++;
    if (r->slots == 0) {
        return false;
    }
    if (r->n < r->slots) {
        if (r->n == r->cap) {
            /* Grown on demand: a large k costs nothing until traces arrive. */
            size_t nc = r->cap ? r->cap * 2 : 64;
            if (nc > r->slots) {
                nc = (size_t)r->slots;
            }
            r->heap = rt_realloc(r->heap, nc * sizeof *r->heap);
            r->cap = nc;
        }
        r->heap[r->n] = (rt_reservoir_ent){prio, item};
        sift_up(r->heap, r->n);
        r->n++;
        return true;
    }
    if (prio >= r->heap[0].prio) {
        return false;
    }
    *evicted = r->heap[0].item;
    r->heap[0] = (rt_reservoir_ent){prio, item};
    sift_down(r->heap, r->n, 0);
    return true;
}

bool rt_reservoir_remove(rt_reservoir *r, void *item)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->heap[i].item != item) {
            continue;
        }
        r->n--;
        if (i < r->n) {
            r->heap[i] = r->heap[r->n];
            sift_down(r->heap, r->n, i);
            sift_up(r->heap, i);
        }
        if (r->seen > 0) {
            r->seen--;
        }
        return true;
    }
    return false;
}

void *rt_reservoir_pop_max(rt_reservoir *r)
{
    if (r->n == 0) {
        return NULL;
    }
    void *item = r->heap[0].item;
    r->n--;
    if (r->n > 0) {
        r->heap[0] = r->heap[r->n];
        sift_down(r->heap, r->n, 0);
    }
    return item;
}

double rt_reservoir_count(const rt_reservoir *r)
{
    if (r->n == 0 || r->seen <= r->n) {
        return 1.0;
    }
    return (double)r->seen / (double)r->n;
}

void rt_reservoir_restart(rt_reservoir *r, uint64_t now_ns)
{
    r->n = 0;
    r->seen = 0;
    if (r->slots > 0) {
        r->window = now_ns / r->window_ns;
    }
}
