/* trace_buffer.c - one worker's pending traces: per-trace span arenas, interned resources and
 * scopes, decision timers, bounds, decision caches and duplicate suppression (see
 * trace_buffer.h for the contract).
 *
 * Ownership graph (everything owned by the rt_tbuf unless marked):
 *   rt_tbuf
 *     table[]        open-addressed trace id -> trace*, linear probing, at most half full
 *     oldest/newest  intrusive list of pending traces by first arrival (early decisions)
 *     wheel          timer wheel; each trace's `timer` entry is embedded in the trace
 *     res, scopes    interned Resource / InstrumentationScope blocks, one ref per trace that has
 *                    spans under them (+ one held by the ingest call for the block it is
 *                    currently under)
 *     sampled, not_sampled, emitted   bounded FIFO key sets (decision_cache.h)
 *     names[]        every policy name ever used to keep a trace (the sampled cache stores an
 *                    index here, so a reload does not re-label late spans)
 *     engine         ref: the policy engine (rt_tbuf_set_engine swaps it)
 *     resv           bottom-k heap of the traces held for the reservoir policy (refs to traces
 *                    in the table; they are off the pending list and have no timer)
 *   trace
 *     dir            arena blocks holding span records one after the other, in an array:
 *                    [u32 len][u32 resource id][u32 scope id][span bytes]... A record may
 *                    continue in the next block: blocks are filled to the last byte, a block is
 *                    added when the last one is full, and nothing is ever moved. Forgetting
 *                    the trace gives them back without following links through cold blocks
 *                    (a list cost a cache miss per block); `tail` is the last, kept beside
 *                    the array because every span reads it
 *     ids            open-addressed set of 64-bit span ids (0 = empty slot) for dedup
 *     pairs          the distinct (resource, scope) ids of its spans, each holding one ref on
 *                    both; inline for up to PAIRS_INLINE, else on the heap
 *     pstate         the policy engine's per-trace state
 *
 * Memory accounting: every allocation made for a trace counts its requested size plus
 * ALLOC_OVERHEAD (a malloc chunk header) in `cost`, plus two table slots; interned blocks count
 * the same way in the intern tables. buffered_bytes is their sum, and it is what max_bytes bounds.
 * Arena blocks, span-id sets, trace records and policy state come from the buffer's free lists
 * (block_pool.h); arena blocks are sized to a class, so their requested size is what they hold.
 * What the free lists keep for reuse (bounded) is not in buffered_bytes.
 */
#include "trace_buffer.h"

#include "adjusted_count.h"
#include "alloc.h"
#include "block_pool.h"
#include "decision_cache.h"
#include "intern.h"
#include "log.h"
#include "otlp_encode.h"
#include "otlp_scan.h"
#include "pb.h"
#include "timer_wheel.h"

#include <murmurhash.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TICK_NS        10000000ull /* timer wheel resolution: 10 ms */
#define ALLOC_OVERHEAD 16u         /* bytes charged per allocation for the malloc chunk header */
#define SPAN_HDR       12u         /* u32 len, u32 resource id, u32 scope id */
#define IDS_MIN_CAP    8u
#define DIR_MIN_CAP    8u
#define EMIT_AHEAD     8u /* emitted-span keys prefetched ahead of their put */
#define PAIRS_INLINE   8u
#define SHARD_SEED     0x74627566u /* "tbuf": not the ring's seed, and murmur x86_32, not x64 */
#define INTERN_SEED    0x496e7465726e4b79ull
#define POOL_MAX_HELD  ((size_t)16 << 20) /* most the block pool keeps for reuse, per buffer */

/* One block of a trace's span arena. */
typedef struct arena_blk {
    uint32_t len, cap;
    uint8_t data[];
} arena_blk;

typedef struct trace {
    rt_trace_summary sum; /* sum.trace_id is the key */
    rt_twheel_entry timer;
    struct trace *older, *newer;
    arena_blk **dir; /* dir[0..n_dir): the arena's blocks in order */
    arena_blk *tail; /* dir[n_dir - 1], or NULL */
    uint32_t n_dir, dir_cap;
    uint64_t arena_cap;   /* sum of the blocks' cap */
    uint64_t arena_bytes; /* what the blocks cost (cap + header + ALLOC_OVERHEAD each) + dir's */
    uint64_t *ids;
    uint32_t ids_cap, ids_n;
    /* Distinct (resource, scope) of the spans: so forgetting a trace gives its refs back
     * without walking its spans. pairs_cap 0 = pairs_in holds them. */
    uint32_t pairs_in[PAIRS_INLINE][2];
    uint32_t (*pairs_heap)[2];
    uint32_t n_pairs, pairs_cap;
    void *pstate;
    uint64_t root_ns;       /* arrival of the first root span (valid when sum.root_seen) */
    uint64_t wait_until_ns; /* not due by its timer before this (rt_tbuf_postpone); 0 = none */
    uint64_t cost;          /* bytes charged for this trace */
    struct trace *cls_prev, *cls_next; /* in b->cls[cls] (pending traces of a class > 0) */
    uint8_t cls;                       /* CLS_*: how safe an early decision of it is */
    uint8_t cause;                     /* rt_tbuf_cause of the scheduled timer */
    uint8_t held; /* decided, and held by the reservoir until its window ends */
} trace;

/* The Resource / scope block the ingest call is currently under, interned on first use. */
typedef struct req_ctx {
    bool has_res, has_scope;
    size_t res_index, scope_seq;
    uint32_t res_id, scope_id;
} req_ctx;

typedef struct span_rec {
    const uint8_t *p; /* the span (in the arena, or in `gather` when it was split) */
    uint32_t res, scope, len;
    uint32_t seq; /* arrival order (sorting), then the copy's offset in scratch */
} span_rec;

enum { EARLY_TRACES = 0, EARLY_BYTES, EARLY_RESERVOIR_BYTES, EARLY_COUNT_ };
/* What a pending trace is, for the order of early decisions: settled ones first (kept
 * whatever comes: deciding them loses nothing), then complete ones (the root span arrived: the
 * turn is over), then the rest oldest first. */
enum { CLS_IN_PROGRESS = 0, CLS_COMPLETE, CLS_SETTLED, CLS_COUNT_ };
static const char *const cls_names[CLS_COUNT_] = {"in_progress", "complete", "settled"};
enum {
    DISC_NOT_SAMPLED = 0,
    DISC_DROPPED,
    DISC_LATE_NOT_SAMPLED,
    DISC_DUPLICATE,
    DISC_TOO_LARGE,
    DISC_SHUTDOWN,
    DISC_COUNT_
};

typedef struct tbuf_metrics {
    rt_counter *traces_received, *spans_received;
    rt_gauge *traces_pending, *spans_buffered, *bytes_buffered, *held;
    rt_counter *decisions[3][RT_TBUF_CAUSE_COUNT_];
    rt_counter *early[EARLY_COUNT_];
    rt_counter *holds;
    rt_counter *postponed;
    rt_counter *early_by[CLS_COUNT_];
    rt_counter *late_sampled, *late_not_sampled;
    rt_counter *duplicates;
    rt_counter *discarded[DISC_COUNT_];
    rt_histogram *latency;
} tbuf_metrics;

struct rt_tbuf {
    rt_tbuf_opts o;
    char *attr_key; /* owned */
    char *id_val;   /* owned: sampler id signed on emitted resources, or NULL */
    size_t attr_klen;
    rt_policy_engine *engine; /* ref */
    size_t state_size;
    rt_tbuf_emit_fn emit;
    void *emit_arg;

    trace **table;
    size_t table_cap, n_traces; /* n_traces: every trace in the table, pending or held */
    size_t n_held;              /* traces held by the reservoir */
    rt_reservoir resv;          /* bottom-k of held traces; slots 0 without a reservoir policy */
    int resv_policy;            /* its index in the engine's set, or -1 */
    trace *oldest, *newest;
    trace *cls_head[CLS_COUNT_], *cls_tail[CLS_COUNT_]; /* FIFO per class > 0 */
    bool can_settle;                                    /* rt_policy_can_settle(engine) */
    bool settle_watch;                                  /* see settle_watch() */
    rt_twheel wheel;
    rt_intern res, scopes;
    rt_pool pool; /* blocks of decided traces, for the next ones (block_pool.h) */
    rt_dcache sampled, not_sampled, emitted;
    uint64_t trace_bytes; /* sum of trace->cost */
    uint64_t spans;       /* spans buffered */

    char **names;
    size_t n_names, cap_names;
    uint32_t *name_of_policy; /* index into names for each policy of the current set */
    size_t n_policies;

    rt_otlp_enc enc;
    rt_buf out;
    rt_buf scratch; /* kept spans with their adjusted count and trace_state appended */
    rt_buf ts;      /* one rewritten trace_state */
    /* What a kept span gets appended (append_kept_span), made once and reused while the spans
     * of a kept trace carry the same trace_state (they nearly always do): made for trace_state
     * `ts_in`, count `ts_count` and policy name `ts_policy` (one of `names`, which live as
     * long as the buffer). */
    rt_buf suffix;
    rt_buf ts_in;
    double ts_count;
    const char *ts_policy;
    rt_buf gather;           /* spans that continue across arena blocks, made contiguous */
    span_rec *recs, *sorted; /* cap_recs each */
    size_t cap_recs;
    rt_otlp_span_view *views; /* one request's spans, walked before any is taken */
    size_t cap_views;
    rt_pb_slice *kvs; /* their attribute indexes, keys->n per span */
    size_t cap_kvs;

    rt_metrics_registry *own_reg; /* a private registry when the caller gave none */
    tbuf_metrics m;
    double shown_traces, shown_spans, shown_bytes, shown_held; /* what this buffer added to
                                                                * the shared gauges */
    bool quiet; /* inside rt_tbuf_apply_decision: the decided hook is not called */
};

static const char *const cause_names[RT_TBUF_CAUSE_COUNT_] = {
    "wait", "root", "max_age", "overflow", "shutdown", "reservoir", "peer"};
static const char *const decision_names[3] = {"not_sampled", "sampled", "dropped"};
static const char *const disc_names[DISC_COUNT_] = {"not_sampled",      "dropped_by_policy",
                                                    "late_not_sampled", "duplicate",
                                                    "trace_too_large",  "shutdown"};

/* ---- small helpers ------------------------------------------------------------------------ */

static inline uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

static inline uint64_t tid_hash(const uint8_t *id)
{
    return mix64(load64(id) ^ (load64(id + 8) * 0x9e3779b97f4a7c15ull));
}

static void trace_id_of(const rt_otlp_span_view *v, uint8_t id[16])
{
    if (v->trace_id.len == 16) { /* the valid case: a fixed-size copy */
        memcpy(id, v->trace_id.p, 16);
        return;
    }
    memset(id, 0, 16);
    memcpy(id, v->trace_id.p, v->trace_id.len < 16 ? v->trace_id.len : 16);
}

/* The span id as a 64-bit set key; 0 (an invalid id, or not 8 bytes) means "not deduplicated". */
static uint64_t span_key_of(const rt_otlp_span_view *v)
{
    return v->span_id.len == 8 ? load64(v->span_id.p) : 0;
}

static void emitted_key(uint8_t key[RT_DCACHE_KEY], uint64_t sid, const uint8_t *tid)
{
    uint64_t fold = load64(tid) ^ mix64(load64(tid + 8));
    memcpy(key, &sid, 8);
    memcpy(key + 8, &fold, 8);
}

static const char *hex_id(const uint8_t *id, char out[33])
{
    static const char hx[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hx[id[i] >> 4];
        out[2 * i + 1] = hx[id[i] & 15];
    }
    out[32] = 0;
    return out;
}

static inline uint64_t buffered_bytes(const rt_tbuf *b)
{
    return b->trace_bytes + b->res.bytes + b->scopes.bytes;
}

/* Traces waiting for their decision (held traces are decided). */
static inline size_t pending_count(const rt_tbuf *b)
{
    return b->n_traces - b->n_held;
}

/* The sampled cache's value: the policy name id in the low 32 bits, the adjusted count as a
 * float in the high 32 (0.0f is RT_ADJ_UNKNOWN), so late spans get the trace's count. */
static uint64_t pack_sampled(uint32_t nid, double count)
{
    float f = (float)count;
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (uint64_t)bits << 32 | nid;
}

static void unpack_sampled(uint64_t v, uint32_t *nid, double *count)
{
    uint32_t bits = (uint32_t)(v >> 32);
    float f;
    memcpy(&f, &bits, sizeof f);
    *nid = (uint32_t)v;
    *count = (double)f;
}

static uint64_t trace_cost(const rt_tbuf *b, uint64_t arena_bytes, uint32_t ids_cap,
                           uint32_t pairs_cap)
{
    uint64_t c = sizeof(trace) + ALLOC_OVERHEAD + 2 * sizeof(trace *) + arena_bytes;
    if (b->state_size) {
        c += b->state_size + ALLOC_OVERHEAD;
    }
    if (ids_cap) {
        c += (uint64_t)ids_cap * sizeof(uint64_t) + ALLOC_OVERHEAD;
    }
    if (pairs_cap) {
        c += (uint64_t)pairs_cap * 2 * sizeof(uint32_t) + ALLOC_OVERHEAD;
    }
    return c;
}

static void recharge(rt_tbuf *b, trace *t)
{
    uint64_t c = trace_cost(b, t->arena_bytes, t->ids_cap, t->pairs_cap);
    b->trace_bytes = b->trace_bytes - t->cost + c;
    t->cost = c;
}

/* Capacity of the block to add so that `add` more bytes fit in t's arena (t may be NULL: a new
 * trace), or 0 when the last block has room. The first block is exact; later ones are a quarter
 * of what the trace already has (at least what does not fit), so the slack stays under 25 %
 * (the memory target is 1.3x the wire size), and nothing is ever copied to grow. */
static uint32_t arena_block_for(const trace *t, size_t add)
{
    size_t room = t != NULL && t->tail != NULL ? t->tail->cap - t->tail->len : 0;
    if (room >= add) {
        return 0;
    }
    /* The least block that holds the rest of the record, rounded up to a pool class; a quarter
     * of what the trace has (up to the largest class) when that is more, rounded down. */
    size_t size = rt_pool_size(sizeof(arena_blk) + (add - room));
    size_t grow = sizeof(arena_blk) + (t != NULL ? (size_t)(t->arena_cap / 4) : 0);
    if (grow > RT_POOL_MAX) {
        grow = RT_POOL_MAX;
    }
    if (grow > size) {
        size = rt_pool_size_floor(grow);
    }
    return (uint32_t)(((size + 15) & ~(size_t)15) - sizeof(arena_blk));
}

static uint64_t dir_bytes(uint32_t cap)
{
    return cap ? (uint64_t)cap * sizeof(arena_blk *) + ALLOC_OVERHEAD : 0;
}

static uint32_t dir_next_cap(const trace *t)
{
    if (t == NULL || t->dir_cap == 0) {
        return DIR_MIN_CAP;
    }
    return t->n_dir < t->dir_cap ? t->dir_cap : 2 * t->dir_cap;
}

/* What adding a block of capacity `cap` to t's arena costs (0 for none): the block, and the
 * directory's growth when it is full (t may be NULL: a new trace). */
static uint64_t block_bytes(const trace *t, uint32_t cap)
{
    if (cap == 0) {
        return 0;
    }
    uint64_t grow = dir_bytes(dir_next_cap(t)) - dir_bytes(t != NULL ? t->dir_cap : 0);
    return (uint64_t)cap + sizeof(arena_blk) + ALLOC_OVERHEAD + grow;
}

/* Add a block of capacity `cap` (from arena_block_for) at the end of t's arena. */
static void arena_add(rt_tbuf *b, trace *t, uint32_t cap)
{
    arena_blk *k = rt_pool_get(&b->pool, sizeof(*k) + cap);
    k->len = 0;
    k->cap = cap;
    t->arena_bytes += block_bytes(t, cap);
    t->arena_cap += cap;
    if (t->n_dir == t->dir_cap) {
        uint32_t dcap = dir_next_cap(t);
        arena_blk **d = rt_pool_get(&b->pool, dcap * sizeof(*d));
        if (t->n_dir) {
            memcpy(d, t->dir, t->n_dir * sizeof(*d));
        }
        rt_pool_put(&b->pool, t->dir, t->dir_cap * sizeof(*d));
        t->dir = d;
        t->dir_cap = dcap;
    }
    t->dir[t->n_dir++] = k;
    t->tail = k;
}

/* Append n bytes from block i on, into the blocks after it when it fills up (the room was made
 * by arena_block_for's block). Returns the index of the block the bytes ended in. */
static uint32_t arena_put(trace *t, uint32_t i, const void *src, size_t n)
{
    const uint8_t *p = src;
    while (n > 0) {
        arena_blk *k = t->dir[i];
        if (k->len == k->cap) {
            i++;
            continue;
        }
        size_t c = n < k->cap - k->len ? n : k->cap - k->len;
        memcpy(k->data + k->len, p, c);
        k->len += (uint32_t)c;
        p += c;
        n -= c;
    }
    return i;
}

/* A reading position in a trace's arena: block t->dir[i], offset off. */
typedef struct arena_it {
    const trace *t;
    uint32_t i, off;
} arena_it;

/* Past the last record? (Moves off exhausted blocks; else it_blk is the current block.) */
static bool arena_end(arena_it *it)
{
    while (it->i < it->t->n_dir && it->off >= it->t->dir[it->i]->len) {
        it->i++;
        it->off = 0;
    }
    return it->i == it->t->n_dir;
}

static const arena_blk *it_blk(const arena_it *it)
{
    return it->t->dir[it->i];
}

/* Copy the next n bytes into dst. */
static void arena_copy(arena_it *it, void *dst, size_t n)
{
    uint8_t *d = dst;
    while (n > 0 && !arena_end(it)) {
        size_t avail = it_blk(it)->len - it->off;
        size_t c = n < avail ? n : avail;
        memcpy(d, it_blk(it)->data + it->off, c);
        it->off += (uint32_t)c;
        d += c;
        n -= c;
    }
}

/* The next n bytes: in place when they lie in one block, else copied to the end of `gather`
 * (which the caller sized so that it does not move while its copies are in use). */
static const uint8_t *arena_take(arena_it *it, size_t n, rt_buf *gather)
{
    if (n == 0) {
        return (const uint8_t *)"";
    }
    if (!arena_end(it) && it_blk(it)->len - it->off >= n) {
        const uint8_t *p = it_blk(it)->data + it->off;
        it->off += (uint32_t)n;
        return p;
    }
    uint8_t *dst = rt_buf_reserve(gather, n);
    memset(dst, 0, n); /* a truncated arena (cannot happen) reads as zeros, not garbage */
    arena_copy(it, dst, n);
    gather->len += n;
    return dst;
}

static uint32_t ids_next_cap(uint32_t cap, uint32_t n)
{
    if (cap == 0) {
        return IDS_MIN_CAP;
    }
    return (n + 1) * 4 > cap * 3 ? cap * 2 : cap;
}

/* ---- a trace's (resource, scope) pairs ----------------------------------------------------- */

static uint32_t (*pairs_of(trace *t))[2]
{
    return t->pairs_cap ? t->pairs_heap : t->pairs_in;
}

static bool pairs_has(trace *t, uint32_t res, uint32_t scope)
{
    uint32_t(*p)[2] = pairs_of(t);
    for (uint32_t i = t->n_pairs; i-- > 0;) { /* the newest is the likeliest */
        if (p[i][0] == res && p[i][1] == scope) {
            return true;
        }
    }
    return false;
}

/* Heap capacity of t's pairs once (res, scope) is in (0: still inline). */
static uint32_t pairs_next_cap(trace *t, uint32_t res, uint32_t scope)
{
    uint32_t cap = t->pairs_cap ? t->pairs_cap : PAIRS_INLINE;
    if (t->n_pairs < cap || pairs_has(t, res, scope)) {
        return t->pairs_cap;
    }
    return cap * 2;
}

/* Record that t has a span under (res, scope): a new pair takes a ref on both. */
static void pairs_add(rt_tbuf *b, trace *t, uint32_t res, uint32_t scope)
{
    if (pairs_has(t, res, scope)) {
        return;
    }
    uint32_t cap = t->pairs_cap ? t->pairs_cap : PAIRS_INLINE;
    if (t->n_pairs == cap) {
        uint32_t ncap = cap * 2;
        uint32_t(*np)[2] = rt_malloc((size_t)ncap * sizeof *np);
        memcpy(np, pairs_of(t), (size_t)t->n_pairs * sizeof *np);
        free(t->pairs_heap);
        t->pairs_heap = np;
        t->pairs_cap = ncap;
    }
    uint32_t(*p)[2] = pairs_of(t);
    p[t->n_pairs][0] = res;
    p[t->n_pairs][1] = scope;
    t->n_pairs++;
    rt_intern_ref(&b->res, res);
    rt_intern_ref(&b->scopes, scope);
}

/* ---- the trace table ---------------------------------------------------------------------- */

static trace *table_find(const rt_tbuf *b, const uint8_t *id)
{
    size_t mask = b->table_cap - 1;
    for (size_t i = tid_hash(id) & mask; b->table[i]; i = (i + 1) & mask) {
        if (memcmp(b->table[i]->sum.trace_id, id, 16) == 0) {
            return b->table[i];
        }
    }
    return NULL;
}

static void table_put(trace **tab, size_t cap, trace *t)
{
    size_t i = tid_hash(t->sum.trace_id) & (cap - 1);
    while (tab[i]) {
        i = (i + 1) & (cap - 1);
    }
    tab[i] = t;
}

static void table_insert(rt_tbuf *b, trace *t)
{
    if ((b->n_traces + 1) * 2 > b->table_cap) {
        size_t ncap = b->table_cap * 2;
        trace **nt = rt_calloc(ncap, sizeof(*nt));
        for (size_t i = 0; i < b->table_cap; i++) {
            if (b->table[i]) {
                table_put(nt, ncap, b->table[i]);
            }
        }
        free(b->table);
        b->table = nt;
        b->table_cap = ncap;
    }
    table_put(b->table, b->table_cap, t);
    b->n_traces++;
}

static void table_remove(rt_tbuf *b, trace *t)
{
    size_t mask = b->table_cap - 1;
    size_t i = tid_hash(t->sum.trace_id) & mask;
    while (b->table[i] != t) {
        i = (i + 1) & mask;
    }
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        trace *o = b->table[j];
        if (!o) {
            break;
        }
        size_t home = tid_hash(o->sum.trace_id) & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            b->table[i] = o;
            i = j;
        }
    }
    b->table[i] = NULL;
    b->n_traces--;
}

/* ---- per-trace span id set ---------------------------------------------------------------- */

static bool ids_has(const trace *t, uint64_t sid)
{
    if (!t->ids_cap) {
        return false;
    }
    uint32_t mask = t->ids_cap - 1;
    for (uint32_t i = (uint32_t)mix64(sid) & mask; t->ids[i]; i = (i + 1) & mask) {
        if (t->ids[i] == sid) {
            return true;
        }
    }
    return false;
}

static void ids_put(uint64_t *ids, uint32_t cap, uint64_t sid)
{
    uint32_t i = (uint32_t)mix64(sid) & (cap - 1);
    while (ids[i]) {
        i = (i + 1) & (cap - 1);
    }
    ids[i] = sid;
}

static void ids_add(rt_tbuf *b, trace *t, uint64_t sid)
{
    uint32_t ncap = ids_next_cap(t->ids_cap, t->ids_n);
    if (ncap != t->ids_cap) {
        uint64_t *n = rt_pool_get(&b->pool, ncap * sizeof(*n));
        memset(n, 0, ncap * sizeof(*n));
        for (uint32_t i = 0; i < t->ids_cap; i++) {
            if (t->ids[i]) {
                ids_put(n, ncap, t->ids[i]);
            }
        }
        rt_pool_put(&b->pool, t->ids, t->ids_cap * sizeof(*n));
        t->ids = n;
        t->ids_cap = ncap;
    }
    ids_put(t->ids, t->ids_cap, sid);
    t->ids_n++;
}

/* ---- policy names ------------------------------------------------------------------------- */

static uint32_t name_id(rt_tbuf *b, const char *name)
{
    for (size_t i = 0; i < b->n_names; i++) {
        if (strcmp(b->names[i], name) == 0) {
            return (uint32_t)i;
        }
    }
    if (b->n_names == b->cap_names) {
        b->cap_names = b->cap_names ? b->cap_names * 2 : 8;
        b->names = rt_realloc(b->names, b->cap_names * sizeof(*b->names));
    }
    b->names[b->n_names] = rt_strdup(name);
    return (uint32_t)b->n_names++;
}

static void map_policy_names(rt_tbuf *b)
{
    const rt_policy_set *set = rt_policy_engine_set(b->engine);
    size_t n = rt_policy_set_count(set);
    free(b->name_of_policy);
    b->name_of_policy = rt_calloc(n ? n : 1, sizeof(*b->name_of_policy));
    b->n_policies = n;
    for (size_t i = 0; i < n; i++) {
        const char *nm = rt_policy_set_name(set, i);
        b->name_of_policy[i] = name_id(b, nm ? nm : "");
    }
}

static uint32_t policy_name_id(rt_tbuf *b, int policy)
{
    if (policy >= 0 && (size_t)policy < b->n_policies) {
        return b->name_of_policy[policy];
    }
    return name_id(b, "");
}

/* ---- metrics ------------------------------------------------------------------------------ */

static void metrics_init(rt_tbuf *b, rt_metrics_registry *reg)
{
    static const double buckets[] = {0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1,   2,  5,
                                     10,    15,    20,   30,   45,  60,   120, 300, 600};
    tbuf_metrics *m = &b->m;
    m->traces_received =
        rt_metrics_counter(reg, "ringtail_sampler_traces_received_total",
                           "Traces started in the buffer (first span of a trace id not pending "
                           "and not in a decision cache).",
                           NULL);
    m->spans_received = rt_metrics_counter(reg, "ringtail_sampler_spans_received_total",
                                           "Spans handed to the trace buffer.", NULL);
    m->traces_pending = rt_metrics_gauge(reg, "ringtail_sampler_traces_pending",
                                         "Traces buffered and not yet decided.", NULL);
    m->spans_buffered = rt_metrics_gauge(
        reg, "ringtail_sampler_spans_buffered",
        "Spans held for pending traces and traces held by the reservoir (what a sampler killed "
        "now would lose).",
        NULL);
    m->bytes_buffered =
        rt_metrics_gauge(reg, "ringtail_sampler_bytes_buffered",
                         "Bytes held for pending traces and traces held by the reservoir (spans, "
                         "shared resources and scopes, per-trace and per-span overhead).",
                         NULL);
    m->held = rt_metrics_gauge(reg, "ringtail_sampler_reservoir_held_traces",
                               "Traces held by the reservoir policy until its window ends.", NULL);
    for (int d = 0; d < 3; d++) {
        for (int c = 0; c < RT_TBUF_CAUSE_COUNT_; c++) {
            m->decisions[d][c] =
                rt_metrics_counter(reg, "ringtail_sampler_decisions_total",
                                   "Trace decisions by outcome and by what triggered them.",
                                   "decision", decision_names[d], "cause", cause_names[c], NULL);
        }
    }
    static const char *const early_names[EARLY_COUNT_] = {"traces", "bytes", "reservoir_bytes"};
    for (int i = 0; i < EARLY_COUNT_; i++) {
        m->early[i] = rt_metrics_counter(
            reg, "ringtail_sampler_early_decisions_total",
            "Traces decided before their time because the buffer hit its trace or byte bound "
            "(reservoir_bytes: a held trace given up, as not sampled, for bytes).",
            "reason", early_names[i], NULL);
    }
    m->holds = rt_metrics_counter(
        reg, "ringtail_sampler_decision_holds_total",
        "Decision ticks (10 ms) held back because the exporter could not take more kept traces "
        "(back-pressure: its queue three-quarters full for a backend that answers); traces due "
        "meanwhile wait, still buffered.",
        NULL);
    for (int i = 0; i < CLS_COUNT_; i++) {
        m->early_by[i] = rt_metrics_counter(
            reg, "ringtail_sampler_early_decision_picks_total",
            "Traces decided early, by what they were: settled (a keep-all policy matched in a way "
            "no later span undoes: kept at once, later spans follow), complete (root span "
            "arrived), in_progress (oldest first, when neither is left).",
            "trace", cls_names[i], NULL);
    }
    m->postponed = rt_metrics_counter(
        reg, "ringtail_sampler_decisions_postponed_total",
        "Pending traces whose decision was put off because some of their spans were refused with "
        "back-pressure: they wait for the client's retry instead of being decided without them.",
        NULL);
    const char *late_help = "Spans arriving after their trace was decided, by the cached "
                            "decision they followed (a trace no longer in either cache cannot be "
                            "told from a new one and is counted in traces_received_total).";
    m->late_sampled = rt_metrics_counter(reg, "ringtail_sampler_late_spans_total", late_help,
                                         "cached", "sampled", NULL);
    m->late_not_sampled = rt_metrics_counter(reg, "ringtail_sampler_late_spans_total", late_help,
                                             "cached", "not_sampled", NULL);
    m->duplicates = rt_metrics_counter(
        reg, "ringtail_sampler_duplicate_spans_total",
        "Spans whose (trace id, span id) was already buffered or already emitted.", NULL);
    for (int i = 0; i < DISC_COUNT_; i++) {
        m->discarded[i] =
            rt_metrics_counter(reg, "ringtail_sampler_spans_discarded_total",
                               "Spans not exported, by reason.", "reason", disc_names[i], NULL);
    }
    m->latency = rt_metrics_histogram(reg, "ringtail_sampler_decision_latency_seconds",
                                      "Time from a trace's first span to its decision.", buckets,
                                      sizeof(buckets) / sizeof(buckets[0]), NULL);
}

/* Bring the shared gauges in line with this buffer's state (they are sums over workers). */
static void sync_gauges(rt_tbuf *b)
{
    double t = (double)pending_count(b), by = (double)buffered_bytes(b), h = (double)b->n_held;
    double sp = (double)b->spans;
    if (sp != b->shown_spans) {
        rt_gauge_add(b->m.spans_buffered, sp - b->shown_spans);
        b->shown_spans = sp;
    }
    if (h != b->shown_held) {
        rt_gauge_add(b->m.held, h - b->shown_held);
        b->shown_held = h;
    }
    if (t != b->shown_traces) {
        rt_gauge_add(b->m.traces_pending, t - b->shown_traces);
        b->shown_traces = t;
    }
    if (by != b->shown_bytes) {
        rt_gauge_add(b->m.bytes_buffered, by - b->shown_bytes);
        b->shown_bytes = by;
    }
}

/* ---- trace lifecycle ---------------------------------------------------------------------- */

/* Put the trace's timer at min(first + decision_wait - or root + wait_after_root once the root
 * arrived -, or later when postponed, first + max_age). */
static void schedule(rt_tbuf *b, trace *t)
{
    uint64_t first = t->sum.first_arrival_ns;
    uint64_t due = first + b->o.decision_wait_ns;
    uint8_t cause = RT_TBUF_CAUSE_WAIT;
    if (t->sum.root_seen && b->o.wait_after_root_ns) {
        due = t->root_ns + b->o.wait_after_root_ns;
        cause = RT_TBUF_CAUSE_ROOT;
    }
    if (t->wait_until_ns > due) {
        due = t->wait_until_ns;
    }
    if (b->o.max_age_ns && first + b->o.max_age_ns < due) {
        due = first + b->o.max_age_ns;
        cause = RT_TBUF_CAUSE_MAX_AGE;
    }
    t->cause = cause;
    if (!rt_twheel_pending(&t->timer) || t->timer.due_ns != due) {
        rt_twheel_reschedule(&b->wheel, &t->timer, due);
    }
}

static trace *trace_new(rt_tbuf *b, const uint8_t *id, uint64_t now)
{
    trace *t = rt_pool_get(&b->pool, sizeof(*t));
    memset(t, 0, sizeof(*t));
    memcpy(t->sum.trace_id, id, 16);
    t->sum.min_start_ns = UINT64_MAX;
    t->sum.first_arrival_ns = now;
    if (b->state_size) {
        t->pstate = rt_pool_get(&b->pool, b->state_size);
    }
    rt_policy_state_init(b->engine, t->pstate);
    table_insert(b, t);
    t->older = b->newest;
    if (b->newest) {
        b->newest->newer = t;
    } else {
        b->oldest = t;
    }
    b->newest = t;
    recharge(b, t);
    schedule(b, t);
    return t;
}

/* Take a trace off its class's list (it is in progress afterwards). */
static void cls_remove(rt_tbuf *b, trace *t)
{
    if (t->cls == CLS_IN_PROGRESS) {
        return;
    }
    if (t->cls_prev) {
        t->cls_prev->cls_next = t->cls_next;
    } else {
        b->cls_head[t->cls] = t->cls_next;
    }
    if (t->cls_next) {
        t->cls_next->cls_prev = t->cls_prev;
    } else {
        b->cls_tail[t->cls] = t->cls_prev;
    }
    t->cls_prev = t->cls_next = NULL;
    t->cls = CLS_IN_PROGRESS;
}

/* Move a pending trace to the tail of class `c`'s list. */
static void cls_set(rt_tbuf *b, trace *t, uint8_t c)
{
    if (t->cls == c) {
        return;
    }
    cls_remove(b, t);
    t->cls = c;
    if (c == CLS_IN_PROGRESS) {
        return;
    }
    t->cls_prev = b->cls_tail[c];
    if (b->cls_tail[c]) {
        b->cls_tail[c]->cls_next = t;
    } else {
        b->cls_head[c] = t;
    }
    b->cls_tail[c] = t;
}

/* Whether settled traces are being looked for: from over half the byte or trace bound (early
 * decisions may come, and their order matters) until under a quarter of both. Entering it, every
 * pending trace is looked at once, so one settled before is not missed. Looking costs a look at
 * every monotone policy per span (~10 % of a sampler's instructions with the recommended set),
 * which is why it is not done all the time. */
static bool settle_watch(rt_tbuf *b)
{
    if (!b->can_settle) {
        return false;
    }
    uint64_t by = buffered_bytes(b), n = pending_count(b);
    if (b->settle_watch) {
        if (by < b->o.max_bytes / 4 && n < b->o.max_traces / 4) {
            b->settle_watch = false;
        }
        return b->settle_watch;
    }
    if (by <= b->o.max_bytes / 2 && n <= b->o.max_traces / 2) {
        return false;
    }
    b->settle_watch = true;
    for (trace *t = b->oldest; t; t = t->newer) {
        if (t->cls != CLS_SETTLED && rt_policy_settled(b->engine, t->pstate, &t->sum)) {
            cls_set(b, t, CLS_SETTLED);
        }
    }
    return true;
}

/* After spans were added to (or re-observed for) pending trace `t`: its class. */
static void cls_update(rt_tbuf *b, trace *t)
{
    if (t->held || t->cls == CLS_SETTLED) {
        return;
    }
    if (settle_watch(b) && rt_policy_settled(b->engine, t->pstate, &t->sum)) {
        cls_set(b, t, CLS_SETTLED);
    } else if (t->sum.root_seen) {
        cls_set(b, t, CLS_COMPLETE);
    }
}

/* Take a pending trace off the pending list, its class's list and its timer. */
static void pending_unlink(rt_tbuf *b, trace *t)
{
    cls_remove(b, t);
    rt_twheel_cancel(&b->wheel, &t->timer);
    if (t->older) {
        t->older->newer = t->newer;
    } else {
        b->oldest = t->newer;
    }
    if (t->newer) {
        t->newer->older = t->older;
    } else {
        b->newest = t->older;
    }
    t->older = t->newer = NULL;
}

/* Forget a trace (decided or discarded): gives back its interned blocks and memory. A held
 * trace must already be out of the reservoir's heap. */
static void trace_destroy(rt_tbuf *b, trace *t)
{
    table_remove(b, t);
    if (t->held) {
        b->n_held--;
    } else {
        pending_unlink(b, t);
    }
    uint32_t(*p)[2] = pairs_of(t);
    for (uint32_t i = 0; i < t->n_pairs; i++) {
        rt_intern_unref(&b->res, p[i][0]);
        rt_intern_unref(&b->scopes, p[i][1]);
    }
    free(t->pairs_heap);
    b->spans -= t->sum.span_count;
    b->trace_bytes -= t->cost;
    /* The blocks are cold (last written when the trace was young): ask for all their headers
     * at once rather than miss the cache on each in turn. */
    for (uint32_t i = 0; i < t->n_dir; i++) {
        __builtin_prefetch(t->dir[i]);
    }
    for (uint32_t i = 0; i < t->n_dir; i++) {
        rt_pool_put(&b->pool, t->dir[i], sizeof(arena_blk) + t->dir[i]->cap);
    }
    rt_pool_put(&b->pool, t->dir, t->dir_cap * sizeof(*t->dir));
    rt_pool_put(&b->pool, t->ids, t->ids_cap * sizeof(*t->ids));
    rt_pool_put(&b->pool, t->pstate, b->state_size);
    rt_pool_put(&b->pool, t, sizeof(*t));
}

static int rec_cmp(const void *a, const void *b)
{
    const span_rec *x = a, *y = b;
    if (x->res != y->res) {
        return x->res < y->res ? -1 : 1;
    }
    if (x->scope != y->scope) {
        return x->scope < y->scope ? -1 : 1;
    }
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

/* t's k records (in arrival order) ordered by (resource, scope), arrival order inside: one sweep
 * per distinct pair, which a trace has few of (rec_cmp's qsort when it has many). Returns
 * b->recs or b->sorted. */
static span_rec *order_recs(rt_tbuf *b, trace *t, size_t k)
{
    uint32_t n = t->n_pairs;
    if (n <= 1) {
        return b->recs; /* one pair: arrival order is the order */
    }
    if (n <= PAIRS_INLINE) {
        uint32_t pr[PAIRS_INLINE][2];
        memcpy(pr, pairs_of(t), n * sizeof(*pr));
        for (uint32_t i = 1; i < n; i++) { /* insertion sort by (res, scope) */
            uint32_t r = pr[i][0], sc = pr[i][1], j = i;
            for (; j > 0 && (pr[j - 1][0] > r || (pr[j - 1][0] == r && pr[j - 1][1] > sc)); j--) {
                pr[j][0] = pr[j - 1][0];
                pr[j][1] = pr[j - 1][1];
            }
            pr[j][0] = r;
            pr[j][1] = sc;
        }
        size_t o = 0;
        for (uint32_t i = 0; i < n; i++) {
            for (size_t j = 0; j < k; j++) {
                if (b->recs[j].res == pr[i][0] && b->recs[j].scope == pr[i][1]) {
                    b->sorted[o++] = b->recs[j];
                }
            }
        }
        if (o == k) {
            return b->sorted;
        }
    }
    qsort(b->recs, k, sizeof(*b->recs), rec_cmp);
    return b->recs;
}

/* Open a ResourceSpans in the output, signed with the sampler id attribute when configured. */
static void enc_resource(rt_tbuf *b, const uint8_t *res, size_t len, const uint8_t *url,
                         size_t url_len)
{
    if (b->id_val != NULL) {
        rt_otlp_enc_resource_with_attr(&b->enc, res, len, url, url_len, RT_TBUF_SAMPLER_ID_ATTR,
                                       strlen(RT_TBUF_SAMPLER_ID_ATTR), b->id_val,
                                       strlen(b->id_val));
    } else {
        rt_otlp_enc_resource(&b->enc, res, len, url, url_len);
    }
}

/* ---- adjusted counts on kept spans ---------------------------------------------------------- */

/* The trace_state of an encoded span (field 3, the last occurrence, as protobuf reads it); an
 * empty slice if it has none or the span does not parse. */
static rt_pb_slice span_tracestate(const uint8_t *p, size_t len)
{
    rt_pb_slice ts = {(const uint8_t *)"", 0};
    size_t pos = 0;
    while (pos < len) {
        uint32_t f;
        int wt;
        if (rt_pb_read_tag(p, len, &pos, &f, &wt) != 0) {
            break;
        }
        if (f == 3 && wt == RT_PB_WT_LEN) {
            if (rt_pb_read_len(p, len, &pos, &ts) != 0) {
                return (rt_pb_slice){(const uint8_t *)"", 0};
            }
        } else if (rt_pb_skip(p, len, &pos, wt) != 0) {
            break;
        }
    }
    return ts;
}

/* Append a Span attribute (field 9) `key` = double `v`. */
static void append_double_attr(rt_buf *out, const char *key, size_t klen, double v)
{
    size_t any = rt_pb_tag_size(4) + 8;
    rt_pb_append_len_prefix(out, 9, rt_pb_len_field_size(1, klen) + rt_pb_len_field_size(2, any));
    rt_pb_append_len_field(out, 1, key, klen);
    rt_pb_append_len_prefix(out, 2, any);
    rt_pb_append_tag(out, 4, RT_PB_WT_FIXED64);
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    rt_pb_append_fixed64(out, bits);
}

/* Append to `out` a copy of the span `p` (len bytes, whose trace_state is `old`) followed by
 * what a kept span gets, none of which re-encodes the span (appended fields: a repeated field
 * grows, and for trace_state the last occurrence wins): the RT_ADJ_ATTR attribute with the
 * combined count when it is known, the trace_state rewritten for `count` as a new field 3
 * unless the rewrite left it unchanged, and the policy attribute naming `policy`. */
static void append_kept_span(rt_tbuf *b, rt_buf *out, const uint8_t *p, size_t len, rt_pb_slice old,
                             double count, const char *policy)
{
    if (b->ts_policy != policy || b->ts_count != count || b->ts_in.len != old.len ||
        (old.len > 0 && memcmp(b->ts_in.data, old.p, old.len) != 0)) {
        rt_buf_reset(&b->ts);
        double c =
            rt_adj_tracestate_rewrite(old.p ? old.p : (const uint8_t *)"", old.len, count, &b->ts);
        rt_buf_reset(&b->suffix);
        if (c != RT_ADJ_UNKNOWN) {
            append_double_attr(&b->suffix, RT_ADJ_ATTR, sizeof(RT_ADJ_ATTR) - 1, c);
        }
        if (b->ts.len != old.len || (old.len > 0 && memcmp(b->ts.data, old.p, old.len) != 0)) {
            rt_pb_append_len_field(&b->suffix, 3, b->ts.data, b->ts.len);
        }
        rt_otlp_append_str_attr(&b->suffix, RT_OTLP_SPAN_ATTRS, b->attr_key, b->attr_klen, policy,
                                strlen(policy));
        rt_buf_reset(&b->ts_in);
        rt_buf_append(&b->ts_in, old.p, old.len);
        b->ts_count = count;
        b->ts_policy = policy;
    }
    uint8_t *dst = rt_buf_reserve(out, len + b->suffix.len);
    memcpy(dst, p, len);
    memcpy(dst + len, b->suffix.data, b->suffix.len);
    out->len += len + b->suffix.len;
}

/* Append every span of `t` to `dst` as one ExportTraceServiceRequest: one ResourceSpans per
 * resource, one ScopeSpans per scope in it, arrival order inside. With a `policy` the spans are
 * encoded as kept (the policy attribute, the adjusted count `count` - >= 1 or RT_ADJ_UNKNOWN -
 * and the rewritten trace_state, and the sampler id on each Resource); without one (NULL) they
 * are written as they arrived, for another sampler to buffer. Returns the span count. */
static size_t encode_trace(rt_tbuf *b, trace *t, const char *policy, double count, rt_buf *dst)
{
    size_t n = t->sum.span_count;
    if (n > b->cap_recs) {
        b->cap_recs = n * 2;
        b->recs = rt_realloc(b->recs, b->cap_recs * sizeof(*b->recs));
        b->sorted = rt_realloc(b->sorted, b->cap_recs * sizeof(*b->sorted));
    }
    size_t k = 0;
    rt_buf_reset(&b->gather);
    rt_buf_reserve(&b->gather, t->sum.bytes); /* room for every span: it never moves below */
    for (arena_it it = {t, 0, 0}; k < n && !arena_end(&it); k++) {
        uint32_t hdr[3];
        arena_copy(&it, hdr, SPAN_HDR);
        b->recs[k] = (span_rec){.p = arena_take(&it, hdr[0], &b->gather),
                                .res = hdr[1],
                                .scope = hdr[2],
                                .len = hdr[0],
                                .seq = (uint32_t)k};
    }
    span_rec *recs = order_recs(b, t, k);
    if (policy != NULL) {
        /* Each kept span is copied to `scratch` with what it gets appended (the same bytes for
         * every span of the trace with the same trace_state), then encoded from there once
         * scratch has stopped growing (it may move while it grows). */
        rt_buf_reset(&b->scratch);
        for (size_t i = 0; i < k; i++) {
            span_rec *r = &recs[i];
            size_t at = b->scratch.len;
            append_kept_span(b, &b->scratch, r->p, r->len, span_tracestate(r->p, r->len), count,
                             policy);
            r->p = NULL;
            r->seq = (uint32_t)at;
            r->len = (uint32_t)(b->scratch.len - at);
        }
    }
    rt_otlp_enc_begin(&b->enc, dst);
    for (size_t i = 0; i < k; i++) {
        const span_rec *r = &recs[i];
        bool new_res = i == 0 || r->res != recs[i - 1].res;
        if (new_res) {
            const rt_intern_block *blk = rt_intern_at(&b->res, r->res);
            const uint8_t *msg = rt_intern_msg(&b->res, r->res);
            const uint8_t *url = rt_intern_url(&b->res, r->res);
            if (policy != NULL) {
                enc_resource(b, msg, blk->len, url, blk->url_len);
            } else {
                rt_otlp_enc_resource(&b->enc, msg, blk->len, url, blk->url_len);
            }
        }
        if (new_res || r->scope != recs[i - 1].scope) {
            const rt_intern_block *blk = rt_intern_at(&b->scopes, r->scope);
            rt_otlp_enc_scope(&b->enc, rt_intern_msg(&b->scopes, r->scope), blk->len,
                              rt_intern_url(&b->scopes, r->scope), blk->url_len);
        }
        rt_otlp_enc_span(&b->enc, r->p ? r->p : b->scratch.data + r->seq, r->len);
    }
    rt_otlp_enc_finish(&b->enc);
    return k;
}

/* Encode `t` as kept (encode_trace) and hand the request to emit. */
static void emit_trace(rt_tbuf *b, trace *t, const char *policy, double count)
{
    rt_buf_reset(&b->out);
    size_t k = encode_trace(b, t, policy, count, &b->out);
    b->emit(b->emit_arg, &b->out, k);
    rt_buf_reset(&b->out);
}

/* ---- outcomes ------------------------------------------------------------------------------- */

/* Export `t` as kept by policy name `nid` with adjusted count `count`, remember it (and its
 * span ids), and free it. */
static void finish_sampled(rt_tbuf *b, trace *t, uint32_t nid, double count)
{
    emit_trace(b, t, b->names[nid], count);
    /* Each put misses the cache on the index (random keys in a large table): keys are put
     * EMIT_AHEAD behind the prefetch of their slots. */
    uint8_t keys[EMIT_AHEAD][RT_DCACHE_KEY];
    size_t made = 0, put = 0;
    for (uint32_t i = 0; i < t->ids_cap && b->emitted.capacity; i++) {
        if (t->ids[i]) {
            if (made - put == EMIT_AHEAD) {
                rt_dcache_put(&b->emitted, keys[put++ % EMIT_AHEAD], 0);
            }
            uint8_t *key = keys[made++ % EMIT_AHEAD];
            emitted_key(key, t->ids[i], t->sum.trace_id);
            rt_dcache_prefetch(&b->emitted, key, made - 1 - put);
        }
    }
    while (put < made) {
        rt_dcache_put(&b->emitted, keys[put++ % EMIT_AHEAD], 0);
    }
    rt_dcache_put(&b->sampled, t->sum.trace_id, pack_sampled(nid, count));
    if (b->o.decided && !b->quiet) {
        b->o.decided(b->o.decided_arg, t->sum.trace_id, RT_DECISION_SAMPLED, b->names[nid], count);
    }
    trace_destroy(b, t);
}

/* Discard `t`'s spans (not sampled or dropped), remember the trace as not sampled, free it. */
static void finish_not_sampled(rt_tbuf *b, trace *t, rt_decision d)
{
    rt_counter_add(b->m.discarded[d == RT_DECISION_DROPPED ? DISC_DROPPED : DISC_NOT_SAMPLED],
                   t->sum.span_count);
    rt_dcache_put(&b->not_sampled, t->sum.trace_id, 0);
    if (b->o.decided && !b->quiet) {
        b->o.decided(b->o.decided_arg, t->sum.trace_id, d, "", 0.0);
    }
    trace_destroy(b, t);
}

/* A held trace the reservoir gave up (evicted by a lower priority, or for bytes; already out
 * of the heap): final outcome not sampled. */
static void reservoir_evicted(rt_tbuf *b, trace *t)
{
    rt_counter_inc(b->m.decisions[RT_DECISION_NOT_SAMPLED][RT_TBUF_CAUSE_RESERVOIR]);
    rt_policy_count_outcome(b->engine, b->resv_policy, RT_DECISION_NOT_SAMPLED);
    finish_not_sampled(b, t, RT_DECISION_NOT_SAMPLED);
}

/* Export every held trace as kept by the reservoir, with adjusted count seen / held for the
 * window so far, and start the window holding `now` empty. */
static void reservoir_flush(rt_tbuf *b, uint64_t now)
{
    rt_reservoir *r = &b->resv;
    if (r->n > 0) {
        double count = rt_reservoir_count(r);
        uint32_t nid = policy_name_id(b, b->resv_policy);
        for (size_t i = 0; i < r->n; i++) {
            trace *t = r->heap[i].item;
            rt_counter_inc(b->m.decisions[RT_DECISION_SAMPLED][RT_TBUF_CAUSE_RESERVOIR]);
            rt_policy_count_outcome(b->engine, b->resv_policy, RT_DECISION_SAMPLED);
            finish_sampled(b, t, nid, count);
        }
    }
    rt_reservoir_restart(r, now);
}

/* Flush the reservoir if its window ended before `now`. Every entry point (ingest, tick,
 * decide_all) calls this once with its `now` before deciding anything, so decide() itself never
 * has to (a flush there could free a held trace the ingest path is holding on to). */
static void reservoir_roll(rt_tbuf *b, uint64_t now)
{
    if (rt_reservoir_window_over(&b->resv, now)) {
        reservoir_flush(b, now);
    }
}

/* (Re)build the reservoir bookkeeping for the current engine (empty; the window starts at the
 * next roll). */
static void reservoir_setup(rt_tbuf *b)
{
    rt_policy_reservoir_params rp;
    rt_reservoir_free(&b->resv);
    if (rt_policy_engine_reservoir(b->engine, &rp)) {
        rt_reservoir_init(&b->resv, rp.slots, rp.window_ns, 0);
        b->resv_policy = rp.policy;
    } else {
        rt_reservoir_init(&b->resv, 0, 0, 0);
        b->resv_policy = -1;
    }
}

/* Decide `t` now and act on the decision: export it, hold it for the reservoir, or discard it;
 * remember it, and free it unless held. */
static void decide(rt_tbuf *b, trace *t, rt_tbuf_cause cause, uint64_t now)
{
    rt_policy_result res = {
        .decision = RT_DECISION_NOT_SAMPLED, .policy = -1, .adjusted_count = 0, .reservoir = -1};
    rt_policy_decide(b->engine, t->pstate, &t->sum, now, &res);
    rt_decision d = res.decision;
    if ((unsigned)d > RT_DECISION_DROPPED) {
        d = RT_DECISION_NOT_SAMPLED;
    }
    uint64_t first = t->sum.first_arrival_ns;
    rt_histogram_observe(b->m.latency, now > first ? (double)(now - first) / 1e9 : 0.0);
    if (d == RT_DECISION_SAMPLED) {
        rt_counter_inc(b->m.decisions[d][cause]);
        finish_sampled(b, t, policy_name_id(b, res.policy), res.adjusted_count);
        return;
    }
    if (d == RT_DECISION_NOT_SAMPLED && res.reservoir >= 0 && res.reservoir == b->resv_policy) {
        void *evicted;
        if (rt_reservoir_offer(&b->resv, rt_policy_reservoir_priority(t->sum.trace_id), t,
                               &evicted)) {
            /* Held: decided (off the pending list, no timer), exported or given up later. */
            pending_unlink(b, t);
            t->held = 1;
            b->n_held++;
            if (evicted != NULL) {
                reservoir_evicted(b, evicted);
            }
            return;
        }
        rt_policy_count_outcome(b->engine, res.reservoir, RT_DECISION_NOT_SAMPLED);
    }
    rt_counter_inc(b->m.decisions[d][cause]);
    finish_not_sampled(b, t, d);
}

/* Discard a pending trace that outgrew max_trace_bytes (OTel drops it); `extra` more spans (the
 * one that did not fit) are counted with it. */
static void discard_too_large(rt_tbuf *b, trace *t, const uint8_t *id, uint64_t extra,
                              uint64_t bytes)
{
    uint64_t n = extra + (t ? t->sum.span_count : 0);
    char hex[33];
    rt_counter_add(b->m.discarded[DISC_TOO_LARGE], n);
    RT_LOG_RL(RT_LOG_WARN, "trace over maximum_trace_size_bytes discarded",
              "trace_id=%s spans=%llu bytes=%llu limit=%llu", hex_id(id, hex),
              (unsigned long long)n, (unsigned long long)bytes,
              (unsigned long long)b->o.max_trace_bytes);
    rt_dcache_put(&b->not_sampled, id, 0);
    if (b->o.decided && !b->quiet) {
        b->o.decided(b->o.decided_arg, id, RT_DECISION_NOT_SAMPLED, "", 0.0);
    }
    if (t) {
        trace_destroy(b, t);
    }
}

/* The pending trace an early decision takes: the oldest settled one, else the oldest complete
 * one, else the oldest. NULL when nothing is pending. */
static trace *early_victim(const rt_tbuf *b)
{
    return b->cls_head[CLS_SETTLED]    ? b->cls_head[CLS_SETTLED]
           : b->cls_head[CLS_COMPLETE] ? b->cls_head[CLS_COMPLETE]
                                       : b->oldest;
}

static void decide_early(rt_tbuf *b, trace *o, int reason, uint64_t now)
{
    char hex[33];
    rt_counter_inc(b->m.early[reason]);
    rt_counter_inc(b->m.early_by[o->cls]);
    RT_LOG_RL(RT_LOG_INFO, "buffer full: deciding a trace early",
              "reason=%s trace=%s trace_id=%s age_ms=%llu",
              reason == EARLY_TRACES ? "traces" : "bytes", cls_names[o->cls],
              hex_id(o->sum.trace_id, hex),
              (unsigned long long)((now - o->sum.first_arrival_ns) / 1000000));
    decide(b, o, RT_TBUF_CAUSE_OVERFLOW, now);
}

/* Decide oldest traces early until `need` more bytes fit; when no pending trace is left, give
 * up held traces, highest priority first. Returns true if `t` (may be NULL) was one of them: it
 * no longer exists then, or (decided early into the reservoir) is now held. */
static bool make_room(rt_tbuf *b, uint64_t need, const trace *t, uint64_t now)
{
    while (buffered_bytes(b) + need > b->o.max_bytes) {
        if (b->oldest) {
            trace *o = early_victim(b);
            bool hit = o == t;
            decide_early(b, o, EARLY_BYTES, now);
            if (hit) {
                return true;
            }
        } else if (b->resv.n > 0) {
            trace *h = rt_reservoir_pop_max(&b->resv);
            bool hit = h == t;
            char hex[33];
            rt_counter_inc(b->m.early[EARLY_RESERVOIR_BYTES]);
            RT_LOG_RL(RT_LOG_INFO, "buffer full: reservoir gives up a held trace",
                      "trace_id=%s held=%zu", hex_id(h->sum.trace_id, hex), b->n_held);
            reservoir_evicted(b, h);
            if (hit) {
                return true;
            }
        } else {
            break;
        }
    }
    return false;
}

/* ---- ingest ------------------------------------------------------------------------------- */

static uint32_t ctx_resource(rt_tbuf *b, req_ctx *rc, const rt_otlp_span_view *v)
{
    if (!rc->has_res || rc->res_index != v->resource_index) {
        if (rc->has_res) {
            rt_intern_unref(&b->res, rc->res_id);
        }
        rc->res_id = rt_intern_get(&b->res, v->has_resource, v->resource.p, v->resource.len,
                                   v->resource_schema_url.p, v->resource_schema_url.len);
        rc->res_index = v->resource_index;
        rc->has_res = true;
    }
    return rc->res_id;
}

static uint32_t ctx_scope(rt_tbuf *b, req_ctx *rc, const rt_otlp_span_view *v)
{
    if (!rc->has_scope || rc->scope_seq != v->scope_seq) {
        if (rc->has_scope) {
            rt_intern_unref(&b->scopes, rc->scope_id);
        }
        rc->scope_id = rt_intern_get(&b->scopes, v->has_scope, v->scope.p, v->scope.len,
                                     v->scope_schema_url.p, v->scope_schema_url.len);
        rc->scope_seq = v->scope_seq;
        rc->has_scope = true;
    }
    return rc->scope_id;
}

static void ctx_release(rt_tbuf *b, req_ctx *rc)
{
    if (rc->has_res) {
        rt_intern_unref(&b->res, rc->res_id);
    }
    if (rc->has_scope) {
        rt_intern_unref(&b->scopes, rc->scope_id);
    }
    memset(rc, 0, sizeof(*rc));
}

/* Copy one span into `t` and account it everywhere. */
static void trace_append(rt_tbuf *b, trace *t, const rt_otlp_span_view *v, uint64_t sid,
                         req_ctx *rc, uint64_t now)
{
    uint32_t res = ctx_resource(b, rc, v), scope = ctx_scope(b, rc, v);
    pairs_add(b, t, res, scope);
    uint32_t len = (uint32_t)v->span.len;
    uint32_t ncap = arena_block_for(t, SPAN_HDR + (size_t)len);
    /* The record starts in what room the last block has left (block 0 of a new trace). */
    uint32_t at = t->n_dir ? t->n_dir - 1 : 0;
    if (ncap != 0) {
        arena_add(b, t, ncap);
    }
    uint32_t hdr[3] = {len, res, scope};
    arena_put(t, arena_put(t, at, hdr, SPAN_HDR), v->span.p, len);
    if (sid) {
        ids_add(b, t, sid);
    }
    rt_trace_summary *s = &t->sum;
    s->span_count++;
    s->bytes += len;
    if (v->start_ns < s->min_start_ns) {
        s->min_start_ns = v->start_ns;
    }
    if (v->end_ns > s->max_end_ns) {
        s->max_end_ns = v->end_ns;
    }
    rt_policy_observe(b->engine, t->pstate, v);
    if (v->parent_span_id.len == 0 && !s->root_seen) {
        s->root_seen = true;
        t->root_ns = now;
        if (!t->held) {
            schedule(b, t);
        }
    }
    cls_update(b, t);
    recharge(b, t);
    b->spans++;
}

/* A span of a trace decided as sampled: emitted alone (with the trace's policy name and
 * adjusted count, `packed` as the sampled cache holds them) unless already emitted. */
static void late_sampled(rt_tbuf *b, const rt_otlp_span_view *v, const uint8_t *id, uint64_t sid,
                         uint64_t packed)
{
    uint32_t nid;
    double count;
    unpack_sampled(packed, &nid, &count);
    rt_counter_inc(b->m.late_sampled);
    uint8_t key[RT_DCACHE_KEY] = {0};
    if (sid) {
        emitted_key(key, sid, id);
        if (rt_dcache_get(&b->emitted, key, NULL)) {
            rt_counter_inc(b->m.duplicates);
            rt_counter_inc(b->m.discarded[DISC_DUPLICATE]);
            return;
        }
    }
    const char *policy = nid < b->n_names ? b->names[nid] : "";
    rt_buf_reset(&b->out);
    rt_otlp_enc_begin(&b->enc, &b->out);
    enc_resource(b, v->has_resource ? (v->resource.p ? v->resource.p : (const uint8_t *)"") : NULL,
                 v->resource.len, v->resource_schema_url.p, v->resource_schema_url.len);
    rt_otlp_enc_scope(&b->enc,
                      v->has_scope ? (v->scope.p ? v->scope.p : (const uint8_t *)"") : NULL,
                      v->scope.len, v->scope_schema_url.p, v->scope_schema_url.len);
    rt_buf_reset(&b->scratch);
    append_kept_span(b, &b->scratch, v->span.p, v->span.len, v->trace_state, count, policy);
    rt_otlp_enc_span(&b->enc, b->scratch.data, b->scratch.len);
    rt_otlp_enc_finish(&b->enc);
    b->emit(b->emit_arg, &b->out, 1);
    rt_buf_reset(&b->out);
    if (sid) {
        rt_dcache_put(&b->emitted, key, 0);
    }
}

static void ingest_span(rt_tbuf *b, const rt_otlp_span_view *v, req_ctx *rc, uint64_t now)
{
    uint8_t id[16];
    trace_id_of(v, id);
    uint64_t sid = span_key_of(v);
    size_t len = v->span.len;
    for (;;) {
        trace *t = table_find(b, id);
        if (!t) {
            uint64_t packed;
            if (rt_dcache_get(&b->sampled, id, &packed)) {
                late_sampled(b, v, id, sid, packed);
                return;
            }
            if (rt_dcache_get(&b->not_sampled, id, NULL)) {
                rt_counter_inc(b->m.late_not_sampled);
                rt_counter_inc(b->m.discarded[DISC_LATE_NOT_SAMPLED]);
                return;
            }
            if (b->o.max_trace_bytes && len > b->o.max_trace_bytes) {
                discard_too_large(b, NULL, id, 1, len);
                return;
            }
            while (b->oldest && pending_count(b) >= b->o.max_traces) {
                decide_early(b, early_victim(b), EARLY_TRACES, now);
            }
            ctx_resource(b, rc, v); /* interned first: counted before making room */
            ctx_scope(b, rc, v);
            uint64_t need = trace_cost(b, block_bytes(NULL, arena_block_for(NULL, SPAN_HDR + len)),
                                       sid ? IDS_MIN_CAP : 0, 0);
            make_room(b, need, NULL, now);
            t = trace_new(b, id, now);
            rt_counter_inc(b->m.traces_received);
        } else {
            if (sid && ids_has(t, sid)) {
                char hex[33];
                rt_counter_inc(b->m.duplicates);
                rt_counter_inc(b->m.discarded[DISC_DUPLICATE]);
                RT_LOG_RL(RT_LOG_DEBUG, "duplicate span discarded", "trace_id=%s", hex_id(id, hex));
                return;
            }
            if (b->o.max_trace_bytes && t->sum.bytes + len > b->o.max_trace_bytes) {
                if (t->held) {
                    /* Already decided: the late span alone is given up, the trace stays. */
                    rt_counter_inc(b->m.discarded[DISC_TOO_LARGE]);
                    return;
                }
                discard_too_large(b, t, id, 1, t->sum.bytes + len);
                return;
            }
            uint32_t res = ctx_resource(b, rc, v), scope = ctx_scope(b, rc, v);
            uint64_t need =
                trace_cost(b, t->arena_bytes + block_bytes(t, arena_block_for(t, SPAN_HDR + len)),
                           sid ? ids_next_cap(t->ids_cap, t->ids_n) : t->ids_cap,
                           pairs_next_cap(t, res, scope)) -
                t->cost;
            if (make_room(b, need, t, now)) {
                continue; /* t was decided early or given up: look it up again */
            }
        }
        trace_append(b, t, v, sid, rc, now);
        return;
    }
}

/* ---- public API --------------------------------------------------------------------------- */

rt_tbuf *rt_tbuf_new(const rt_tbuf_opts *opts, rt_policy_engine *engine, rt_tbuf_emit_fn emit,
                     void *emit_arg, rt_metrics_registry *reg)
{
    rt_tbuf *b = rt_calloc(1, sizeof(*b));
    b->o = *opts;
    if (b->o.decision_wait_ns == 0) {
        b->o.decision_wait_ns = 1;
    }
    if (b->o.max_traces == 0) {
        b->o.max_traces = UINT64_MAX;
    }
    if (b->o.max_bytes == 0) {
        b->o.max_bytes = UINT64_MAX;
    }
    b->o.policy_attr = NULL;
    b->id_val = opts->sampler_id && opts->sampler_id[0] ? rt_strdup(opts->sampler_id) : NULL;
    b->o.sampler_id = NULL;
    b->attr_key = rt_strdup(opts->policy_attr ? opts->policy_attr : "tailsampling.policy");
    b->attr_klen = strlen(b->attr_key);
    b->engine = engine;
    b->can_settle = rt_policy_can_settle(engine);
    b->state_size = rt_policy_state_size(engine);
    b->emit = emit;
    b->emit_arg = emit_arg;
    b->table_cap = 1024;
    b->table = rt_calloc(b->table_cap, sizeof(*b->table));
    uint64_t horizon = b->o.decision_wait_ns;
    if (b->o.wait_after_root_ns > horizon) {
        horizon = b->o.wait_after_root_ns;
    }
    if (b->o.max_age_ns > horizon) {
        horizon = b->o.max_age_ns;
    }
    rt_twheel_init(&b->wheel, TICK_NS, horizon);
    /* The pool keeps at most a quarter of the byte budget (the budget bounds what traces hold;
     * the pool is on top of it). */
    rt_pool_init(&b->pool,
                 b->o.max_bytes / 4 < POOL_MAX_HELD ? (size_t)(b->o.max_bytes / 4) : POOL_MAX_HELD);
    rt_intern_init(&b->res, INTERN_SEED);
    rt_intern_init(&b->scopes, INTERN_SEED ^ 0x5c09e5ull);
    rt_dcache_init(&b->sampled, b->o.sampled_cache_size);
    rt_dcache_init(&b->not_sampled, b->o.non_sampled_cache_size);
    rt_dcache_init(&b->emitted, b->o.emitted_span_ids);
    map_policy_names(b);
    reservoir_setup(b);
    rt_otlp_enc_init(&b->enc);
    rt_buf_init(&b->out);
    rt_buf_init(&b->scratch);
    rt_buf_init(&b->ts);
    rt_buf_init(&b->ts_in);
    rt_buf_init(&b->suffix);
    rt_buf_init(&b->gather);
    if (!reg) {
        b->own_reg = rt_metrics_registry_new();
        reg = b->own_reg;
    }
    metrics_init(b, reg);
    return b;
}

void rt_tbuf_free(rt_tbuf *b)
{
    if (!b) {
        return;
    }
    while (b->oldest) {
        trace_destroy(b, b->oldest);
    }
    trace *h;
    while ((h = rt_reservoir_pop_max(&b->resv)) != NULL) {
        trace_destroy(b, h);
    }
    rt_reservoir_free(&b->resv);
    sync_gauges(b);
    rt_pool_free(&b->pool);
    free(b->table);
    rt_twheel_free(&b->wheel);
    rt_intern_free(&b->res);
    rt_intern_free(&b->scopes);
    rt_dcache_free(&b->sampled);
    rt_dcache_free(&b->not_sampled);
    rt_dcache_free(&b->emitted);
    for (size_t i = 0; i < b->n_names; i++) {
        free(b->names[i]);
    }
    free(b->names);
    free(b->name_of_policy);
    rt_otlp_enc_free(&b->enc);
    rt_buf_free(&b->out);
    rt_buf_free(&b->scratch);
    rt_buf_free(&b->ts);
    rt_buf_free(&b->ts_in);
    rt_buf_free(&b->suffix);
    rt_buf_free(&b->gather);
    free(b->recs);
    free(b->sorted);
    free(b->views);
    free(b->kvs);
    free(b->attr_key);
    free(b->id_val);
    rt_metrics_registry_free(b->own_reg);
    free(b);
}

unsigned rt_tbuf_shard_of(const uint8_t *trace_id, size_t len, unsigned n_shards)
{
    if (n_shards <= 1) {
        return 0;
    }
    uint32_t h;
    lmmh_x86_32(trace_id, (unsigned)len, SHARD_SEED, &h);
    return h % n_shards;
}

/* Walk all of `req` (checked when `check`) into b->views, each span's attributes indexed by the
 * engine's keys in the same walk. At most VIEWS_HELD views are kept (a view is ~300 bytes, so a
 * 64 MiB request of small spans would otherwise cost several times its size): past that the
 * walk only checks the rest, and *whole is false (ingest then walks the request again, span by
 * span). Returns the number of spans, or -1 with it->err set. */
#define VIEWS_HELD 4096

/* rt_tbuf_ingest_if's question, asked once per run of spans of one trace. */
typedef struct accept_ctx {
    rt_tbuf_accept_fn fn; /* NULL: everything is taken */
    void *arg;
    uint8_t last[16];
    size_t last_len;
} accept_ctx;

static bool accepted(accept_ctx *a, const rt_otlp_span_view *v)
{
    if (a->fn == NULL) {
        return true;
    }
    size_t l = v->trace_id.len < 16 ? v->trace_id.len : 16;
    if (l == a->last_len && memcmp(a->last, v->trace_id.p, l) == 0) {
        return true; /* the run's first span was accepted */
    }
    if (!a->fn(a->arg, v->trace_id.p, v->trace_id.len)) {
        return false;
    }
    memcpy(a->last, v->trace_id.p, l);
    a->last_len = l;
    return true;
}

static long walk_request(rt_tbuf *b, rt_otlp_scan *it, const uint8_t *req, size_t len, bool check,
                         accept_ctx *acc, bool *whole)
{
    const rt_otlp_keyset *ks = rt_policy_engine_keys(b->engine);
    size_t nk = ks->n;
    size_t n = 0;
    int r;
    if (check) {
        rt_otlp_scan_init_checked(it, req, len);
    } else {
        rt_otlp_scan_init(it, req, len);
    }
    *whole = true;
    for (;;) {
        if (n == VIEWS_HELD) {
            rt_otlp_span_view v;
            while ((r = rt_otlp_scan_next(it, &v)) == 1) {
                if (!accepted(acc, &v)) {
                    return RT_TBUF_DECLINED;
                }
                n++;
            }
            *whole = false;
            break;
        }
        if (n == b->cap_views) {
            b->cap_views = b->cap_views ? b->cap_views * 2 : 64;
            b->views = rt_realloc(b->views, b->cap_views * sizeof(*b->views));
        }
        if ((n + 1) * nk > b->cap_kvs) {
            b->cap_kvs = b->cap_views * nk;
            b->kvs = rt_realloc(b->kvs, b->cap_kvs * sizeof(*b->kvs));
        }
        r = rt_otlp_scan_next_keyed(it, &b->views[n], ks, nk ? b->kvs + n * nk : NULL);
        if (r != 1) {
            break;
        }
        if (!accepted(acc, &b->views[n])) {
            return RT_TBUF_DECLINED;
        }
        n++;
    }
    if (r < 0) {
        return -1;
    }
    for (size_t i = 0; i < n && i < VIEWS_HELD && nk; i++) {
        b->views[i].attr_kv = b->kvs + i * nk; /* kvs may have moved while it grew */
    }
    return (long)n;
}

static long ingest(rt_tbuf *b, const uint8_t *req, size_t len, bool check, uint64_t now_ns,
                   accept_ctx *acc, char *err, size_t errlen)
{
    rt_otlp_scan it;
    bool whole;
    long n = walk_request(b, &it, req, len, check, acc, &whole);
    if (n == RT_TBUF_DECLINED) {
        return n;
    }
    if (n < 0) {
        snprintf(err, errlen, "%s", it.err);
        return -1;
    }
    req_ctx rc = {0};
    reservoir_roll(b, now_ns);
    if (whole) {
        for (long i = 0; i < n; i++) {
            ingest_span(b, &b->views[i], &rc, now_ns);
        }
    } else { /* checked already: walk it again, one span at a time */
        const rt_otlp_keyset *ks = rt_policy_engine_keys(b->engine);
        rt_pb_slice kv[RT_OTLP_KEYSET_MAX];
        rt_otlp_span_view v;
        rt_otlp_scan_init(&it, req, len);
        while (rt_otlp_scan_next_keyed(&it, &v, ks, kv) == 1) {
            ingest_span(b, &v, &rc, now_ns);
        }
    }
    ctx_release(b, &rc);
    rt_counter_add(b->m.spans_received, (uint64_t)n);
    sync_gauges(b);
    return n;
}

long rt_tbuf_ingest(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns)
{
    char err[RT_OTLP_ERR_MAX];
    accept_ctx all = {0};
    long n = ingest(b, req, len, false, now_ns, &all, err, sizeof(err));
    if (n < 0) {
        RT_LOG_RL(RT_LOG_ERROR, "trace buffer: malformed request", "reason=\"%s\"", err);
    }
    return n;
}

long rt_tbuf_ingest_checked(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns, char *err,
                            size_t errlen)
{
    accept_ctx all = {0};
    return ingest(b, req, len, true, now_ns, &all, err, errlen);
}

long rt_tbuf_ingest_if(rt_tbuf *b, const uint8_t *req, size_t len, uint64_t now_ns,
                       rt_tbuf_accept_fn accept, void *arg, char *err, size_t errlen)
{
    accept_ctx acc = {.fn = accept, .arg = arg, .last_len = SIZE_MAX};
    return ingest(b, req, len, true, now_ns, &acc, err, errlen);
}

/* Due traces are taken from the wheel this many at a time while a hold hook is set, so a tick
 * that has to stop puts back at most this many (the rest of a backlog stays in the wheel). */
#define TICK_CHUNK 64

void rt_tbuf_tick(rt_tbuf *b, uint64_t now_ns)
{
    reservoir_roll(b, now_ns);
    bool (*hold)(void *) = b->o.hold;
    bool held = hold != NULL && hold(b->o.hold_arg);
    while (!held) {
        rt_twheel_entry *e =
            rt_twheel_expire_max(&b->wheel, now_ns, hold != NULL ? TICK_CHUNK : SIZE_MAX);
        if (e == NULL) {
            break;
        }
        while (e) {
            rt_twheel_entry *next = e->next;
            trace *t = (trace *)((char *)e - offsetof(trace, timer));
            if (held) {
                rt_twheel_add(&b->wheel, &t->timer, t->timer.due_ns); /* still due: next tick */
            } else if (b->o.defer != NULL && b->o.defer(b->o.defer_arg, t->sum.trace_id)) {
                rt_twheel_add(&b->wheel, &t->timer, now_ns + RT_TBUF_DEFER_NS);
            } else {
                decide(b, t, (rt_tbuf_cause)t->cause, now_ns);
                held = hold != NULL && hold(b->o.hold_arg);
            }
            e = next;
        }
    }
    if (held) {
        rt_counter_inc(b->m.holds);
    }
    sync_gauges(b);
}

void rt_tbuf_discard_all(rt_tbuf *b)
{
    uint64_t spans = 0, traces = 0;
    while (b->oldest) {
        trace *t = b->oldest;
        spans += t->sum.span_count;
        traces++;
        trace_destroy(b, t);
    }
    trace *h;
    while ((h = rt_reservoir_pop_max(&b->resv)) != NULL) {
        spans += h->sum.span_count;
        traces++;
        trace_destroy(b, h);
    }
    rt_counter_add(b->m.discarded[DISC_SHUTDOWN], spans);
    if (traces) {
        rt_log(RT_LOG_WARN, "pending traces dropped undecided (drop_pending_traces_on_shutdown)",
               "traces=%llu spans=%llu", (unsigned long long)traces, (unsigned long long)spans);
    }
    sync_gauges(b);
}

bool rt_tbuf_decide_pending(rt_tbuf *b, uint64_t now_ns, bool ask_hold)
{
    reservoir_roll(b, now_ns);
    bool (*hold)(void *) = ask_hold ? b->o.hold : NULL;
    while (b->oldest) {
        if (hold != NULL && hold(b->o.hold_arg)) {
            sync_gauges(b);
            return false;
        }
        decide(b, b->oldest, RT_TBUF_CAUSE_SHUTDOWN, now_ns);
    }
    reservoir_flush(b, now_ns); /* the partial window: count seen / held so far */
    sync_gauges(b);
    return true;
}

void rt_tbuf_decide_all(rt_tbuf *b, uint64_t now_ns)
{
    rt_tbuf_decide_pending(b, now_ns, false);
}

void rt_tbuf_set_engine(rt_tbuf *b, rt_policy_engine *engine)
{
    /* Held traces leave with the old engine's reservoir, as at a window end (the new reservoir
     * starts its window at the next ingest or tick). */
    reservoir_flush(b, 0);
    b->engine = engine;
    b->can_settle = rt_policy_can_settle(engine);
    b->settle_watch = false;
    reservoir_setup(b);
    size_t nsize = rt_policy_state_size(engine), osize = b->state_size;
    bool resize = nsize != osize;
    b->state_size = nsize;
    map_policy_names(b);
    char err[RT_OTLP_ERR_MAX];
    for (trace *t = b->oldest; t; t = t->newer) {
        if (resize) {
            rt_pool_put(&b->pool, t->pstate, osize);
            t->pstate = nsize ? rt_pool_get(&b->pool, nsize) : NULL;
            recharge(b, t);
        }
        rt_policy_state_init(engine, t->pstate);
        for (arena_it it = {t, 0, 0}; !arena_end(&it);) {
            uint32_t hdr[3];
            arena_copy(&it, hdr, SPAN_HDR);
            rt_buf_reset(&b->gather);
            const uint8_t *sp = arena_take(&it, hdr[0], &b->gather);
            rt_otlp_span_view v;
            memset(&v, 0, sizeof(v));
            const rt_intern_block *rb = rt_intern_at(&b->res, hdr[1]);
            const rt_intern_block *sb = rt_intern_at(&b->scopes, hdr[2]);
            v.has_resource = rb->present;
            v.resource = (rt_pb_slice){rt_intern_msg(&b->res, hdr[1]), rb->len};
            v.resource_schema_url = (rt_pb_slice){rt_intern_url(&b->res, hdr[1]), rb->url_len};
            v.has_scope = sb->present;
            v.scope = (rt_pb_slice){rt_intern_msg(&b->scopes, hdr[2]), sb->len};
            v.scope_schema_url = (rt_pb_slice){rt_intern_url(&b->scopes, hdr[2]), sb->url_len};
            if (rt_otlp_span_parse(sp, hdr[0], &v, err, sizeof(err)) == 0) {
                rt_policy_observe(engine, t->pstate, &v);
            } else {
                RT_LOG_RL(RT_LOG_ERROR, "trace buffer: stored span does not parse", "reason=\"%s\"",
                          err);
            }
        }
        /* Settled by the old policies means nothing now: judged again by the new ones when the
         * watch starts again (at the next span under pressure). */
        cls_remove(b, t);
        if (t->sum.root_seen) {
            cls_set(b, t, CLS_COMPLETE);
        }
    }
    sync_gauges(b);
}

bool rt_tbuf_full(const rt_tbuf *b)
{
    return b->o.block_on_overflow &&
           (pending_count(b) >= b->o.max_traces || buffered_bytes(b) >= b->o.max_bytes);
}

void rt_tbuf_stats_get(const rt_tbuf *b, rt_tbuf_stats *out)
{
    out->pending_traces = pending_count(b);
    out->held_traces = b->n_held;
    out->buffered_bytes = buffered_bytes(b);
    out->buffered_spans = b->spans;
}

/* ---- moving traces and decisions ------------------------------------------------------------ */

bool rt_tbuf_knows(const rt_tbuf *b, const uint8_t trace_id[16])
{
    return table_find(b, trace_id) != NULL || rt_dcache_get(&b->sampled, trace_id, NULL) ||
           rt_dcache_get(&b->not_sampled, trace_id, NULL);
}

size_t rt_tbuf_extract(rt_tbuf *b, const uint8_t trace_id[16], rt_buf *out, rt_tbuf_trace_state *st)
{
    trace *t = table_find(b, trace_id);
    if (t == NULL) {
        return 0;
    }
    memcpy(st->trace_id, t->sum.trace_id, 16);
    st->first_ns = t->sum.first_arrival_ns;
    st->root_seen = t->sum.root_seen;
    st->root_ns = t->sum.root_seen ? t->root_ns : 0;
    st->held = t->held;
    if (t->held) {
        rt_reservoir_remove(&b->resv, t);
    }
    size_t n = encode_trace(b, t, NULL, 0.0, out);
    trace_destroy(b, t);
    sync_gauges(b);
    return n;
}

void rt_tbuf_adopt(rt_tbuf *b, const rt_tbuf_trace_state *st, uint64_t now_ns)
{
    trace *t = table_find(b, st->trace_id);
    if (t == NULL || t->held) {
        return;
    }
    if (st->first_ns < t->sum.first_arrival_ns) {
        t->sum.first_arrival_ns = st->first_ns;
    }
    if (st->root_seen && (!t->sum.root_seen || st->root_ns < t->root_ns)) {
        t->sum.root_seen = true;
        t->root_ns = st->root_ns;
    }
    schedule(b, t);
    if (st->held && t->timer.due_ns > now_ns) {
        rt_twheel_reschedule(&b->wheel, &t->timer, now_ns);
    }
}

void rt_tbuf_postpone(rt_tbuf *b, const uint8_t trace_id[16], uint64_t until_ns)
{
    trace *t = table_find(b, trace_id);
    if (t == NULL || t->held || until_ns <= t->wait_until_ns) {
        return;
    }
    bool first = t->wait_until_ns == 0;
    t->wait_until_ns = until_ns;
    uint64_t before = t->timer.due_ns;
    schedule(b, t);
    if (first && t->timer.due_ns > before) {
        rt_counter_inc(b->m.postponed);
    }
}

void rt_tbuf_each_trace(const rt_tbuf *b, void (*fn)(void *arg, const uint8_t trace_id[16]),
                        void *arg)
{
    for (const trace *t = b->oldest; t; t = t->newer) {
        fn(arg, t->sum.trace_id);
    }
    for (size_t i = 0; i < b->resv.n; i++) {
        const trace *t = b->resv.heap[i].item;
        fn(arg, t->sum.trace_id);
    }
}

/* Ring position of the k-th newest entry of `c` (k < c->n). */
static size_t newest(const rt_dcache *c, size_t k)
{
    return (c->head + c->capacity - 1 - k) % c->capacity;
}

size_t rt_tbuf_each_decision(const rt_tbuf *b, size_t cursor, size_t max, rt_tbuf_decided_fn fn,
                             void *arg)
{
    size_t ns = b->sampled.n, nn = b->not_sampled.n;
    for (size_t done = 0; done < max; done++, cursor++) {
        if (cursor < ns) {
            const rt_dcache_ent *e = rt_dcache_at(&b->sampled, newest(&b->sampled, cursor));
            uint32_t nid;
            double count;
            unpack_sampled(e->val, &nid, &count);
            fn(arg, e->key, RT_DECISION_SAMPLED, nid < b->n_names ? b->names[nid] : "", count);
        } else if (cursor - ns < nn) {
            const rt_dcache_ent *e =
                rt_dcache_at(&b->not_sampled, newest(&b->not_sampled, cursor - ns));
            fn(arg, e->key, RT_DECISION_NOT_SAMPLED, "", 0.0);
        } else {
            return SIZE_MAX;
        }
    }
    return cursor < ns + nn ? cursor : SIZE_MAX;
}

void rt_tbuf_apply_decision(rt_tbuf *b, const uint8_t trace_id[16], rt_decision d,
                            const char *policy, size_t plen, double count, uint64_t now_ns)
{
    char name[256];
    if (plen >= sizeof name) {
        plen = sizeof name - 1;
    }
    memcpy(name, policy, plen);
    name[plen] = 0;
    if ((unsigned)d > RT_DECISION_DROPPED) {
        d = RT_DECISION_NOT_SAMPLED;
    }
    b->quiet = true;
    reservoir_roll(b, now_ns);
    trace *t = table_find(b, trace_id);
    if (t != NULL) {
        if (t->held) {
            rt_reservoir_remove(&b->resv, t);
        }
        rt_counter_inc(b->m.decisions[d][RT_TBUF_CAUSE_PEER]);
        if (d == RT_DECISION_SAMPLED) {
            finish_sampled(b, t, name_id(b, name), count);
        } else {
            finish_not_sampled(b, t, d);
        }
    } else if (d == RT_DECISION_SAMPLED) {
        rt_dcache_put(&b->sampled, trace_id, pack_sampled(name_id(b, name), count));
    } else {
        rt_dcache_put(&b->not_sampled, trace_id, 0);
    }
    b->quiet = false;
    sync_gauges(b);
}
