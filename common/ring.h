/* ring.h - the consistent-hash ring that maps trace ids to sampler nodes.
 *
 * Algorithm: a weighted Maglev lookup table (Eisenbud et al., NSDI 2016), chosen because
 *  - balance is exact up to one table slot: each node owns round(M * w / W) of the M slots, so
 *    the load spread over many trace ids is what random sampling gives and nothing more
 *    (ketama needs thousands of points per node to get within 3 %);
 *  - lookup is one hash and one read from a table of M = 1048583 16-bit node indexes (2 MiB),
 *    so it does not show in a profile;
 *  - adding or removing one node moves close to the ideal 1/N of the slots, because every
 *    node fills slots in its own fixed preference order, which does not depend on the others.
 * The table depends only on the set of (id, weight) pairs: nodes are sorted by id before the
 * fill, so every router and sampler reading the same membership, in any order, builds the
 * same table.
 *
 * Health: a node marked down keeps its slots; a lookup that lands on a down node walks
 * forward through the table to the next slot whose owner is up (its "successor"). Only the
 * down node's keys move, they spread over the other nodes in proportion to their slots, and
 * they come back when it is up again.
 *
 * Trace ids are hashed with MurmurHash3 x64-128 (libmurmurhash) under RT_RING_KEY_SEED, so
 * ring placement is independent of the trace id's own randomness (which probabilistic
 * sampling uses).
 */
#ifndef RT_RING_H
#define RT_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_RING_KEY_SEED  0x52696e67u /* "Ring" */
#define RT_RING_MAX_NODES 4096

typedef struct rt_ring_node_spec {
    const char *id;       /* stable identity; what is hashed */
    const char *endpoint; /* what is dialled; not part of placement */
    uint32_t weight;      /* >= 1 */
} rt_ring_node_spec;

typedef struct rt_ring rt_ring;

/* Build a ring from `n` nodes (ids must be unique and non-empty; weights >= 1). Strings are
 * copied. Returns NULL with a message in `err` on bad input. */
rt_ring *rt_ring_new(const rt_ring_node_spec *nodes, size_t n, char *err, size_t errlen);
void rt_ring_free(rt_ring *ring);
/* A copy of `ring` with its own up/down flags (copied) that shares the lookup table, which is
 * immutable: microseconds instead of the ~16 ms a table takes to fill. Clones may be used and
 * freed on different threads. */
rt_ring *rt_ring_clone(const rt_ring *ring);

size_t rt_ring_size(const rt_ring *ring);
/* Node `i` in id order (0 <= i < size). */
const char *rt_ring_node_id(const rt_ring *ring, size_t i);
const char *rt_ring_node_endpoint(const rt_ring *ring, size_t i);
uint32_t rt_ring_node_weight(const rt_ring *ring, size_t i);
/* Index of the node with `id`, or -1. */
int rt_ring_find(const rt_ring *ring, const char *id);
/* Share of the keyspace node `i` owns while every node is up (slots / M). */
double rt_ring_node_share(const rt_ring *ring, size_t i);
/* A 64-bit hash of the ring's content (sorted ids, weights, endpoints), for the
 * "which ring is in force" metric. */
uint64_t rt_ring_content_hash(const rt_ring *ring);

/* Mark node `i` up or down (only the router's health checker calls this; one thread). */
void rt_ring_set_up(rt_ring *ring, size_t i, bool up);
bool rt_ring_is_up(const rt_ring *ring, size_t i);

/* The 64-bit placement key of a trace id (any length; 16 bytes in OTLP). */
uint64_t rt_ring_key(const uint8_t *trace_id, size_t len);
/* Owner of `key` among the nodes that are up, or -1 if none is up. */
int rt_ring_lookup_key(const rt_ring *ring, uint64_t key);
/* Owner of `key` as if every node were up (the key's home node). */
int rt_ring_home_key(const rt_ring *ring, uint64_t key);
static inline int rt_ring_lookup(const rt_ring *ring, const uint8_t *trace_id, size_t len)
{
    return rt_ring_lookup_key(ring, rt_ring_key(trace_id, len));
}

#endif
