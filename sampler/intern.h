/* intern.h - a refcounted table of byte blocks keyed by content, so the Resource and
 * InstrumentationScope blocks of a thousand buffered spans are stored once.
 *
 * A block is (present flag, message bytes, schema url): `present` false stands for an absent
 * ResourceSpans.resource / ScopeSpans.scope field, which is not the same thing as a present but
 * empty one. Blocks are identified by a small integer id (stable while referenced) that callers
 * store instead of a pointer. Each reference is taken with rt_intern_get or rt_intern_ref and
 * given back with rt_intern_unref; the block is freed with its last reference. Not thread-safe.
 */
#ifndef RT_INTERN_H
#define RT_INTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_intern_block {
    uint64_t hash;
    uint32_t refs; /* 0: the slot is free (on the free list) */
    uint32_t len;
    uint32_t url_len;
    bool present;
    uint8_t *data; /* owned: len bytes, then url_len bytes of schema url */
} rt_intern_block;

typedef struct rt_intern {
    rt_intern_block *blocks; /* owned, indexed by id */
    size_t n_blocks, cap_blocks;
    uint32_t free_head; /* id + 1 of the first free block (chained through .len), 0: none */
    uint32_t *index;    /* owned: id + 1, 0 = empty; open addressing, at most half full */
    size_t index_cap;
    size_t live; /* blocks with refs > 0 */
    uint64_t seed;
    size_t bytes; /* accounted bytes of live blocks (see rt_intern_block_cost) */
} rt_intern;

void rt_intern_init(rt_intern *t, uint64_t seed);
/* Frees every block whatever its refcount. */
void rt_intern_free(rt_intern *t);

/* The id of the block (present, msg, url), created if new; takes one reference. */
uint32_t rt_intern_get(rt_intern *t, bool present, const uint8_t *msg, size_t len,
                       const uint8_t *url, size_t url_len);
void rt_intern_ref(rt_intern *t, uint32_t id);
void rt_intern_unref(rt_intern *t, uint32_t id);

static inline const rt_intern_block *rt_intern_at(const rt_intern *t, uint32_t id)
{
    return &t->blocks[id];
}

/* The block's message: NULL when absent (as the OTLP encoder wants it), else its bytes. */
static inline const uint8_t *rt_intern_msg(const rt_intern *t, uint32_t id)
{
    const rt_intern_block *b = &t->blocks[id];
    return b->present ? (b->data ? b->data : (const uint8_t *)"") : NULL;
}

static inline const uint8_t *rt_intern_url(const rt_intern *t, uint32_t id)
{
    const rt_intern_block *b = &t->blocks[id];
    return b->url_len ? b->data + b->len : NULL;
}

#endif
