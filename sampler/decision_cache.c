/* decision_cache.c - bounded FIFO set of 16-byte keys (see decision_cache.h). */
#include "decision_cache.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

/* Keys are trace ids (random) or span id + folded trace id; a 64-bit mix of both halves spreads
 * them well and costs a few instructions. */
static uint64_t key_hash(const uint8_t *key)
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = a ^ (b * 0x9e3779b97f4a7c15ull);
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

void rt_dcache_init(rt_dcache *c, size_t capacity)
{
    memset(c, 0, sizeof(*c));
    if (capacity == 0) {
        return;
    }
    if (capacity > UINT32_MAX / 4) {
        capacity = UINT32_MAX / 4;
    }
    c->capacity = capacity;
    size_t isz = 16;
    while (isz < capacity * 2) {
        isz <<= 1;
    }
    c->mask = isz - 1;
    c->ents = rt_malloc(capacity * sizeof(*c->ents));
    c->index = rt_calloc(isz, sizeof(*c->index));
}

void rt_dcache_free(rt_dcache *c)
{
    free(c->ents);
    free(c->index);
    memset(c, 0, sizeof(*c));
}

/* Index slot holding `key` (hash h), or the empty slot where it would go. */
static size_t find_slot(const rt_dcache *c, const uint8_t *key, uint32_t h, bool *found)
{
    size_t i = h & c->mask;
    for (;;) {
        rt_dcache_slot s = c->index[i];
        if (s.pos == 0) {
            *found = false;
            return i;
        }
        if (s.hash == h && memcmp(c->ents[s.pos - 1].key, key, RT_DCACHE_KEY) == 0) {
            *found = true;
            return i;
        }
        i = (i + 1) & c->mask;
    }
}

bool rt_dcache_get(const rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], uint64_t *val)
{
    if (c->capacity == 0) {
        return false;
    }
    bool found;
    size_t i = find_slot(c, key, (uint32_t)key_hash(key), &found);
    if (found && val) {
        *val = c->ents[c->index[i].pos - 1].val;
    }
    return found;
}

/* Remove index slot `i` and shift later members of its probe run back (no tombstones). */
static void index_delete(rt_dcache *c, size_t i)
{
    size_t j = i;
    for (;;) {
        j = (j + 1) & c->mask;
        rt_dcache_slot s = c->index[j];
        if (s.pos == 0) {
            break;
        }
        size_t home = s.hash & c->mask;
        /* Entry at j may move to i if its home is not cyclically in (i, j]. */
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            c->index[i] = s;
            i = j;
        }
    }
    c->index[i] = (rt_dcache_slot){0, 0};
}

void rt_dcache_put(rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], uint64_t val)
{
    if (c->capacity == 0) {
        return;
    }
    uint32_t h = (uint32_t)key_hash(key);
    bool found;
    size_t i = find_slot(c, key, h, &found);
    if (found) {
        c->ents[c->index[i].pos - 1].val = val;
        return;
    }
    size_t pos = c->head;
    if (c->n == c->capacity) {
        bool old_found;
        const uint8_t *old = c->ents[pos].key;
        size_t oi = find_slot(c, old, (uint32_t)key_hash(old), &old_found);
        if (old_found) {
            index_delete(c, oi);
        }
        c->n--;
        i = find_slot(c, key, h, &found); /* the deletion may have moved the insertion point */
    }
    memcpy(c->ents[pos].key, key, RT_DCACHE_KEY);
    c->ents[pos].val = val;
    c->index[i] = (rt_dcache_slot){(uint32_t)pos + 1, h};
    c->n++;
    c->head = (pos + 1) % c->capacity;
}

void rt_dcache_prefetch(const rt_dcache *c, const uint8_t key[RT_DCACHE_KEY], size_t ahead)
{
    if (c->capacity == 0) {
        return;
    }
    __builtin_prefetch(&c->index[key_hash(key) & c->mask]);
    if (c->n + ahead >= c->capacity) {
        const uint8_t *old = c->ents[(c->head + ahead) % c->capacity].key;
        __builtin_prefetch(&c->index[key_hash(old) & c->mask]);
    }
}

size_t rt_dcache_bytes(const rt_dcache *c)
{
    if (c->capacity == 0) {
        return 0;
    }
    return c->capacity * sizeof(*c->ents) + (c->mask + 1) * sizeof(*c->index);
}
