/* decision_cache.h - a bounded set of 16-byte keys with a 64-bit value each, forgetting the
 * oldest insertion first (FIFO).
 *
 * The sampler keeps three: trace ids decided as sampled (value: which policy name kept them and
 * the trace's adjusted count, packed by trace_buffer.c),
 * trace ids decided as not sampled, and (span id, trace id) keys of spans already emitted, for
 * duplicate suppression after the decision. Storage is allocated once at init: a ring of
 * `capacity` entries in insertion order plus an open-addressed index (linear probing, at most
 * half full, backward-shift deletion), about 40-56 bytes per key. An index slot holds the low
 * 32 bits of its key's hash beside the entry position, so probing, and moving entries back on
 * deletion, read the ring only for a slot whose hash bits match: a put touches two index
 * slots, not three or four ring entries spread over memory (perf: cache misses, not
 * instructions, were the cost). Not thread-safe.
 */
#ifndef RT_DECISION_CACHE_H
#define RT_DECISION_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_DCACHE_KEY 16

typedef struct rt_dcache_ent {
    uint8_t key[RT_DCACHE_KEY];
    uint64_t val;
} rt_dcache_ent;

typedef struct rt_dcache_slot {
    uint32_t pos;  /* entry position + 1, 0 = empty */
    uint32_t hash; /* low 32 bits of the key's hash */
} rt_dcache_slot;

typedef struct rt_dcache {
    size_t capacity;       /* 0: the cache is off (nothing is remembered) */
    size_t n;              /* keys held */
    size_t head;           /* ring position of the next insertion (= oldest when full) */
    rt_dcache_ent *ents;   /* owned: ring of `capacity` entries */
    rt_dcache_slot *index; /* owned: open-addressed index */
    size_t mask;           /* index size - 1 (below 2^32: a slot's home is hash & mask) */
} rt_dcache;

/* Allocate a cache for `capacity` keys (0: off). */
void rt_dcache_init(rt_dcache *c, size_t capacity);
void rt_dcache_free(rt_dcache *c);

/* Returns true and stores the value in *val (may be NULL) if `key` is held. */
bool rt_dcache_get(const rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], uint64_t *val);
/* Remember `key` with `val` (a key already held gets the new value and keeps its age). When
 * full, the oldest key is forgotten first. */
void rt_dcache_put(rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], uint64_t val);

/* A hint that `key` is to be put after `ahead` other puts: starts loading the index slots that
 * put will read (the key's, and that of the entry it will push out when full). No effect on
 * what the cache holds. */
void rt_dcache_prefetch(const rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], size_t ahead);

/* The entry at ring position `pos` (0 <= pos < c->n: every position below n holds a key), for
 * reading the whole cache in insertion-ring order. */
static inline const rt_dcache_ent *rt_dcache_at(const rt_dcache *c, size_t pos)
{
    return &c->ents[pos];
}

/* Bytes allocated by the cache. */
size_t rt_dcache_bytes(const rt_dcache *c);

#endif
