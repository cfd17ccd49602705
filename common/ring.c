/* ring.c - weighted Maglev consistent hashing over sampler nodes (see ring.h for why). */
#include "ring.h"

#include "alloc.h"

#include <murmurhash.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEED_OFFSET 0x6f666673u /* per-node permutation start */
#define SEED_SKIP   0x736b6970u /* per-node permutation stride */

typedef struct node {
    char *id;
    char *endpoint;
    uint32_t weight;
    bool up;
    uint32_t slots; /* slots owned when all are up */
    /* Maglev permutation while filling: candidates are offset, offset + skip, ... (mod M). */
    uint32_t next, skip;
} node;

/* The lookup table: slot -> node index. Immutable once filled, so clones share it. */
typedef struct table {
    _Atomic unsigned refs;
    uint16_t slot[];
} table;

struct rt_ring {
    size_t n;
    node *nodes; /* sorted by id; each clone has its own (their up flags) */
    uint32_t m;  /* table size, prime */
    table *tab;  /* shared by clones */
    const uint16_t *table;
    size_t up_count;
    uint64_t content_hash;
};

/* One table size for every ring: a prime with at least 256 slots per node up to
 * RT_RING_MAX_NODES. Keeping M fixed matters: a table size that changed with the node count
 * would reshuffle every key when the count crossed a boundary. It is this large (2 MiB of
 * uint16_t) because Maglev's churn on a membership change shrinks as M/N grows: measured with
 * 1 M keys, removing one of 64 nodes moved 1.12x the ideal fraction at M = 262147 and 1.07x at
 * M = 1048583 (test_ring prints the figures). */
#define TABLE_SIZE 1048583u

static uint64_t hash64(const void *p, size_t len, uint32_t seed)
{
    uint64_t out[2];
    lmmh_x64_128(p, (unsigned)len, seed, out);
    return out[0];
}

uint64_t rt_ring_key(const uint8_t *trace_id, size_t len)
{
    return hash64(trace_id, len, RT_RING_KEY_SEED);
}

static int by_id(const void *a, const void *b)
{
    return strcmp(((const node *)a)->id, ((const node *)b)->id);
}

/* Give each node round(M * w / W) slots; the remainders go to the largest fractional parts
 * (ties to the lower index, i.e. the smaller id), so the shares add up to exactly M. */
static void assign_quotas(rt_ring *r)
{
    uint64_t total_w = 0;
    for (size_t i = 0; i < r->n; i++) {
        total_w += r->nodes[i].weight;
    }
    uint64_t given = 0;
    uint64_t *frac = rt_calloc(r->n, sizeof *frac);
    for (size_t i = 0; i < r->n; i++) {
        uint64_t num = (uint64_t)r->m * r->nodes[i].weight;
        r->nodes[i].slots = (uint32_t)(num / total_w);
        frac[i] = num % total_w;
        given += r->nodes[i].slots;
    }
    while (given < r->m) {
        size_t best = 0;
        for (size_t i = 1; i < r->n; i++) {
            if (frac[i] > frac[best]) {
                best = i;
            }
        }
        r->nodes[best].slots++;
        frac[best] = 0;
        given++;
    }
    free(frac);
}

/* Maglev population: nodes take turns claiming their next preferred free slot. A node whose
 * quota is full sits out, which is how weights are honoured exactly. Which slots are taken is
 * kept in a bitmap (128 KiB, in cache) rather than read back from the 2 MiB table: most
 * candidates late in the fill are taken, and each such read missed the cache. */
static void populate(rt_ring *r)
{
    uint16_t *tab = r->tab->slot;
    uint32_t *taken = rt_calloc(r->n, sizeof *taken);
    uint64_t *used = rt_calloc((r->m + 63) / 64, sizeof *used);
    for (size_t i = 0; i < r->n; i++) {
        node *nd = &r->nodes[i];
        size_t idlen = strlen(nd->id);
        nd->next = (uint32_t)(hash64(nd->id, idlen, SEED_OFFSET) % r->m);
        nd->skip = (uint32_t)(hash64(nd->id, idlen, SEED_SKIP) % (r->m - 1) + 1);
    }
    uint32_t filled = 0;
    while (filled < r->m) {
        for (size_t i = 0; i < r->n && filled < r->m; i++) {
            node *nd = &r->nodes[i];
            if (taken[i] >= nd->slots) {
                continue;
            }
            uint32_t c;
            do {
                c = nd->next;
                nd->next += nd->skip;
                if (nd->next >= r->m) {
                    nd->next -= r->m;
                }
            } while (used[c >> 6] & (1ull << (c & 63)));
            used[c >> 6] |= 1ull << (c & 63);
            tab[c] = (uint16_t)i;
            taken[i]++;
            filled++;
        }
    }
    free(used);
    free(taken);
}

/* The fill runs in a thread of its own at the lowest priority (nice 19) while the caller
 * waits: it is ~11 ms of CPU, and every process of a tier refills its ring within the same few
 * milliseconds of a ring file edit; at full priority those fills pushed the workers of a small
 * machine off their cores at the moment the traffic moves (the p99 of acknowledgements in a
 * scale-out doubled). Where no thread can be started it runs in the caller. */
static void *populate_thread(void *arg)
{
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
    populate(arg);
    return NULL;
}

static void populate_low(rt_ring *r)
{
    pthread_t t;
    if (pthread_create(&t, NULL, populate_thread, r) != 0) {
        populate(r);
        return;
    }
    pthread_join(t, NULL);
}

static uint64_t fnv1a(uint64_t h, const void *p, size_t len)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

rt_ring *rt_ring_new(const rt_ring_node_spec *specs, size_t n, char *err, size_t errlen)
{
    if (n == 0) {
        snprintf(err, errlen, "ring: no nodes");
        return NULL;
    }
    if (n > RT_RING_MAX_NODES) {
        snprintf(err, errlen, "ring: %zu nodes is more than the maximum of %d", n,
                 RT_RING_MAX_NODES);
        return NULL;
    }
    rt_ring *r = rt_calloc(1, sizeof *r);
    r->n = n;
    r->nodes = rt_calloc(n, sizeof *r->nodes);
    for (size_t i = 0; i < n; i++) {
        if (specs[i].id == NULL || specs[i].id[0] == '\0') {
            snprintf(err, errlen, "ring: node %zu has an empty id", i + 1);
            goto fail;
        }
        if (specs[i].weight == 0) {
            snprintf(err, errlen, "ring: node \"%s\": weight must be a positive integer",
                     specs[i].id);
            goto fail;
        }
        r->nodes[i].id = rt_strdup(specs[i].id);
        r->nodes[i].endpoint = rt_strdup(specs[i].endpoint ? specs[i].endpoint : "");
        r->nodes[i].weight = specs[i].weight;
        r->nodes[i].up = true;
    }
    qsort(r->nodes, n, sizeof *r->nodes, by_id);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(r->nodes[i - 1].id, r->nodes[i].id) == 0) {
            snprintf(err, errlen, "ring: duplicate node id \"%s\"", r->nodes[i].id);
            goto fail;
        }
    }
    r->m = TABLE_SIZE;
    r->tab = rt_malloc(sizeof *r->tab + (size_t)r->m * sizeof r->tab->slot[0]);
    atomic_init(&r->tab->refs, 1);
    r->table = r->tab->slot;
    r->up_count = n;
    assign_quotas(r);
    populate_low(r);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h = fnv1a(h, r->nodes[i].id, strlen(r->nodes[i].id) + 1);
        h = fnv1a(h, r->nodes[i].endpoint, strlen(r->nodes[i].endpoint) + 1);
        h = fnv1a(h, &r->nodes[i].weight, sizeof r->nodes[i].weight);
    }
    r->content_hash = h;
    return r;
fail:
    rt_ring_free(r);
    return NULL;
}

void rt_ring_free(rt_ring *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        free(r->nodes[i].id);
        free(r->nodes[i].endpoint);
    }
    free(r->nodes);
    if (r->tab && atomic_fetch_sub_explicit(&r->tab->refs, 1, memory_order_acq_rel) == 1) {
        free(r->tab);
    }
    free(r);
}

rt_ring *rt_ring_clone(const rt_ring *r)
{
    rt_ring *c = rt_calloc(1, sizeof *c);
    *c = *r;
    c->nodes = rt_calloc(r->n, sizeof *c->nodes);
    for (size_t i = 0; i < r->n; i++) {
        c->nodes[i] = r->nodes[i];
        c->nodes[i].id = rt_strdup(r->nodes[i].id);
        c->nodes[i].endpoint = rt_strdup(r->nodes[i].endpoint);
    }
    atomic_fetch_add_explicit(&r->tab->refs, 1, memory_order_relaxed);
    return c;
}

size_t rt_ring_size(const rt_ring *r)
{
    return r->n;
}

const char *rt_ring_node_id(const rt_ring *r, size_t i)
{
    return r->nodes[i].id;
}

const char *rt_ring_node_endpoint(const rt_ring *r, size_t i)
{
    return r->nodes[i].endpoint;
}

uint32_t rt_ring_node_weight(const rt_ring *r, size_t i)
{
    return r->nodes[i].weight;
}

int rt_ring_find(const rt_ring *r, const char *id)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(id, r->nodes[mid].id);
        if (c == 0) {
            return (int)mid;
        }
        if (c < 0) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    return -1;
}

double rt_ring_node_share(const rt_ring *r, size_t i)
{
    return (double)r->nodes[i].slots / (double)r->m;
}

uint64_t rt_ring_content_hash(const rt_ring *r)
{
    return r->content_hash;
}

void rt_ring_set_up(rt_ring *r, size_t i, bool up)
{
    if (r->nodes[i].up != up) {
        r->nodes[i].up = up;
        r->up_count += up ? 1 : (size_t)-1;
    }
}

bool rt_ring_is_up(const rt_ring *r, size_t i)
{
    return r->nodes[i].up;
}

int rt_ring_home_key(const rt_ring *r, uint64_t key)
{
    return r->table[key % r->m];
}

int rt_ring_lookup_key(const rt_ring *r, uint64_t key)
{
    uint32_t s = (uint32_t)(key % r->m);
    uint16_t owner = r->table[s];
    if (r->nodes[owner].up) {
        return owner;
    }
    if (r->up_count == 0) {
        return -1;
    }
    /* Successor: the next slot whose owner is up. Slots of one node are spread over the
     * table, so a down node's keys spread over all the others. */
    for (uint32_t step = 1; step < r->m; step++) {
        uint16_t o = r->table[(s + step) % r->m];
        if (r->nodes[o].up) {
            return o;
        }
    }
    return -1;
}
