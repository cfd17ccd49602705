/* block_pool.c - per-thread stacks of released blocks by size class (see block_pool.h). */
#include "block_pool.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

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
    memset(p, 0, sizeof(*p));
    p->max_held = max_held;
}

void rt_pool_free(rt_pool *p)
{
    for (unsigned c = 0; c < RT_POOL_CLASSES; c++) {
        rt_pool_stack *s = &p->cls[c];
        for (uint32_t i = 0; i < s->n; i++) {
            free(s->blk[i]);
        }
        free(s->blk);
    }
    memset(p->cls, 0, sizeof(p->cls));
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
    rt_pool_stack *s = &p->cls[c];
    if (s->n == 0) {
        return rt_malloc(class_size(c));
    }
    p->held -= class_size(c);
    return s->blk[--s->n];
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
    rt_pool_stack *s = &p->cls[c];
    if (p->held + class_size(c) > p->max_held) {
        free(blk);
        return;
    }
    if (s->n == s->cap) { /* at most max_held / class size: the bound above stops it there */
        size_t most = p->max_held / class_size(c), cap = s->cap ? 2 * (size_t)s->cap : 64;
        s->cap = (uint32_t)(cap < most ? cap : most);
        s->blk = rt_realloc(s->blk, (size_t)s->cap * sizeof(*s->blk));
    }
    s->blk[s->n++] = blk;
    p->held += class_size(c);
}
