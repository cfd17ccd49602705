/* block_pool.c - per-thread free lists by size class (see block_pool.h). */
#include "block_pool.h"

#include "alloc.h"

#include <stdlib.h>

/* Class of n (RT_POOL_MIN < n <= RT_POOL_MAX): with 2^(e-1) < n <= 2^e, the class is
 * 3 * 2^(e-2) when n fits it, else 2^e. Class 0 is 64 = 2^6, class 1 is 96, class 2 is 128. */
static unsigned class_of(size_t n)
{
    if (n <= RT_POOL_MIN) {
        return 0;
    }
    unsigned e = 64u - (unsigned)__builtin_clzll((unsigned long long)(n - 1)); /* 2^e >= n */
    unsigned idx = 2 * (e - 6);
    return n <= ((size_t)3 << (e - 2)) ? idx - 1 : idx;
}

static size_t class_size(unsigned c)
{
    unsigned e = 6 + (c + 1) / 2;
    return (c & 1) ? (size_t)3 << (e - 2) : (size_t)1 << e;
}

void rt_pool_init(rt_pool *p, size_t max_held)
{
    for (unsigned c = 0; c < RT_POOL_CLASSES; c++) {
        p->head[c] = NULL;
    }
    p->held = 0;
    p->max_held = max_held;
}

void rt_pool_free(rt_pool *p)
{
    for (unsigned c = 0; c < RT_POOL_CLASSES; c++) {
        while (p->head[c] != NULL) {
            void *next = *(void **)p->head[c];
            free(p->head[c]);
            p->head[c] = next;
        }
    }
    p->held = 0;
}

size_t rt_pool_size(size_t n)
{
    return n > RT_POOL_MAX ? n : class_size(class_of(n));
}

size_t rt_pool_size_floor(size_t n)
{
    if (n > RT_POOL_MAX) {
        return n;
    }
    if (n < RT_POOL_MIN) {
        return 0;
    }
    unsigned c = class_of(n);
    return class_size(c) == n ? n : class_size(c - 1);
}

void *rt_pool_get(rt_pool *p, size_t n)
{
    if (n > RT_POOL_MAX) {
        return rt_malloc(n);
    }
    unsigned c = class_of(n);
    void *b = p->head[c];
    if (b == NULL) {
        return rt_malloc(class_size(c));
    }
    p->head[c] = *(void **)b;
    p->held -= class_size(c);
    return b;
}

void rt_pool_put(rt_pool *p, void *blk, size_t n)
{
    if (blk == NULL) {
        return;
    }
    if (n > RT_POOL_MAX) {
        free(blk);
        return;
    }
    unsigned c = class_of(n);
    if (p->held + class_size(c) > p->max_held) {
        free(blk);
        return;
    }
    *(void **)blk = p->head[c];
    p->head[c] = blk;
    p->held += class_size(c);
}
