/* block_pool.h - per-thread stacks of released memory blocks by size class.
 *
 * The trace buffer allocates and frees a few dozen blocks per trace (arena blocks, span-id
 * sets, the trace record, policy state), all within a second or two, and on one thread. glibc's
 * malloc spent ~9 % of a sampler's CPU on them (bins sorted and coalesced for blocks of every
 * size). Here a block's size is rounded up to a class (64 B to 32 KiB, two classes per power of
 * two: 64, 96, 128, 192, ...), a released block goes on its class's stack, and the next request
 * for that class takes the most recently released one. What the stacks hold is bounded
 * (`max_held` bytes); past it, and for blocks above the largest class, it is plain malloc/free.
 *
 * The stacks are arrays of pointers, not lists threaded through the blocks: a block released a
 * second after it was last written is cold, and neither releasing nor reusing it reads or writes
 * it (a list would miss the cache twice per block: perf put ~2 % of the sampler's CPU on the
 * load of the next pointer alone). A stack's array grows to at most max_held / its class size
 * entries; all of them together stay under 0.42 * max_held even if every class once filled
 * the bound (8 bytes per block: sum over classes of 8 / size < 0.42).
 *
 * A block must be given back with the size it was asked for (or any size of the same class).
 * Not thread-safe: one pool per trace buffer, i.e. per worker thread.
 */
#ifndef RT_BLOCK_POOL_H
#define RT_BLOCK_POOL_H

#include <stddef.h>
#include <stdint.h>

#define RT_POOL_MIN     64u
#define RT_POOL_MAX     32768u
#define RT_POOL_CLASSES 19 /* 64 .. 32768, two per power of two */

typedef struct rt_pool_stack {
    void **blk; /* blk[0..n) released blocks of the class, the last released at n - 1 */
    uint32_t n, cap;
} rt_pool_stack;

typedef struct rt_pool {
    rt_pool_stack cls[RT_POOL_CLASSES];
    size_t held; /* bytes on the stacks */
    size_t max_held;
} rt_pool;

void rt_pool_init(rt_pool *p, size_t max_held);
/* Frees what the stacks hold. Blocks still out are the caller's to give back or free(). */
void rt_pool_free(rt_pool *p);

/* The size a request of n bytes is served with: its class, or n itself above the largest. */
size_t rt_pool_size(size_t n);
/* The largest class size not above n (0 below the smallest class); n itself above the largest. */
size_t rt_pool_size_floor(size_t n);

/* A block of rt_pool_size(n) bytes, uninitialised. Aborts when out of memory. */
void *rt_pool_get(rt_pool *p, size_t n);
/* Give back a block of n bytes (as asked of rt_pool_get); NULL is ignored. */
void rt_pool_put(rt_pool *p, void *blk, size_t n);

#endif
