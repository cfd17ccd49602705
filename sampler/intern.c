/* intern.c - refcounted content-keyed block table (see intern.h). */
#include "intern.h"

#include "alloc.h"

#include <murmurhash.h>
#include <stdlib.h>
#include <string.h>

/* Bytes charged for one live block: its data, its table entry, two index slots and a malloc
 * chunk header. */
static size_t block_cost(const rt_intern_block *b)
{
    return (size_t)b->len + b->url_len + 16 + sizeof(*b) + 2 * sizeof(uint32_t);
}

void rt_intern_init(rt_intern *t, uint64_t seed)
{
    memset(t, 0, sizeof(*t));
    t->seed = seed;
    t->index_cap = 64;
    t->index = rt_calloc(t->index_cap, sizeof(*t->index));
}

void rt_intern_free(rt_intern *t)
{
    for (size_t i = 0; i < t->n_blocks; i++) {
        if (t->blocks[i].refs) {
            free(t->blocks[i].data);
        }
    }
    free(t->blocks);
    free(t->index);
    memset(t, 0, sizeof(*t));
}

static uint64_t block_hash(const rt_intern *t, bool present, const uint8_t *msg, size_t len,
                           const uint8_t *url, size_t url_len)
{
    uint64_t a[2], b[2];
    lmmh_x64_128(msg ? msg : (const uint8_t *)"", (unsigned)len, (uint32_t)t->seed, a);
    lmmh_x64_128(url ? url : (const uint8_t *)"", (unsigned)url_len, (uint32_t)(t->seed >> 32), b);
    return a[0] ^ (b[0] * 0x9e3779b97f4a7c15ull) ^ (present ? 0 : 0x5bd1e995ull);
}

static bool block_eq(const rt_intern_block *b, uint64_t h, bool present, const uint8_t *msg,
                     size_t len, const uint8_t *url, size_t url_len)
{
    return b->hash == h && b->present == present && b->len == len && b->url_len == url_len &&
           (len == 0 || memcmp(b->data, msg, len) == 0) &&
           (url_len == 0 || memcmp(b->data + len, url, url_len) == 0);
}

static void index_insert(uint32_t *index, size_t cap, uint64_t h, uint32_t id)
{
    size_t i = h & (cap - 1);
    while (index[i]) {
        i = (i + 1) & (cap - 1);
    }
    index[i] = id + 1;
}

static void index_grow(rt_intern *t)
{
    size_t ncap = t->index_cap * 2;
    uint32_t *nidx = rt_calloc(ncap, sizeof(*nidx));
    for (size_t i = 0; i < t->index_cap; i++) {
        if (t->index[i]) {
            uint32_t id = t->index[i] - 1;
            index_insert(nidx, ncap, t->blocks[id].hash, id);
        }
    }
    free(t->index);
    t->index = nidx;
    t->index_cap = ncap;
}

uint32_t rt_intern_get(rt_intern *t, bool present, const uint8_t *msg, size_t len,
                       const uint8_t *url, size_t url_len)
{
    uint64_t h = block_hash(t, present, msg, len, url, url_len);
    size_t mask = t->index_cap - 1;
    for (size_t i = h & mask; t->index[i]; i = (i + 1) & mask) {
        rt_intern_block *b = &t->blocks[t->index[i] - 1];
        if (block_eq(b, h, present, msg, len, url, url_len)) {
            b->refs++;
            return t->index[i] - 1;
        }
    }
    uint32_t id;
    if (t->free_head) {
        id = t->free_head - 1;
        t->free_head = t->blocks[id].len;
    } else {
        if (t->n_blocks == t->cap_blocks) {
            t->cap_blocks = t->cap_blocks ? t->cap_blocks * 2 : 16;
            t->blocks = rt_realloc(t->blocks, t->cap_blocks * sizeof(*t->blocks));
        }
        id = (uint32_t)t->n_blocks++;
    }
    rt_intern_block *b = &t->blocks[id];
    b->hash = h;
    b->refs = 1;
    b->len = (uint32_t)len;
    b->url_len = (uint32_t)url_len;
    b->present = present;
    b->data = NULL;
    if (len + url_len > 0) {
        b->data = rt_malloc(len + url_len);
        if (len) {
            memcpy(b->data, msg, len);
        }
        if (url_len) {
            memcpy(b->data + len, url, url_len);
        }
    }
    t->live++;
    t->bytes += block_cost(b);
    if ((t->live + 1) * 2 > t->index_cap) {
        index_grow(t);
    }
    index_insert(t->index, t->index_cap, h, id);
    return id;
}

void rt_intern_ref(rt_intern *t, uint32_t id)
{
    t->blocks[id].refs++;
}

void rt_intern_unref(rt_intern *t, uint32_t id)
{
    rt_intern_block *b = &t->blocks[id];
    if (--b->refs > 0) {
        return;
    }
    /* Remove from the index with backward-shift deletion. */
    size_t mask = t->index_cap - 1;
    size_t i = b->hash & mask;
    while (t->index[i] != id + 1) {
        i = (i + 1) & mask;
    }
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        uint32_t v = t->index[j];
        if (v == 0) {
            break;
        }
        size_t home = t->blocks[v - 1].hash & mask;
        bool stays = (i <= j) ? (home > i && home <= j) : (home > i || home <= j);
        if (!stays) {
            t->index[i] = v;
            i = j;
        }
    }
    t->index[i] = 0;
    t->bytes -= block_cost(b);
    t->live--;
    free(b->data);
    b->data = NULL;
    b->len = t->free_head; /* free list link */
    t->free_head = id + 1;
}
