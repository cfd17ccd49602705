/* test_block_pool.c - the trace buffer's free lists by size class: every size maps to the
 * smallest class that holds it (two per power of two, 64 B to 32 KiB), the floor is the largest
 * class not above a size, a released block is what the next request of its class gets, blocks of
 * other classes and sizes above the largest never mix, and the lists never hold more than their
 * bound. Run under ASan in CI, which also checks that every block is freed exactly once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "block_pool.h"

static void test_sizes_round_up_to_the_next_class(void **state)
{
    (void)state;
    static const size_t classes[] = {64,   96,   128,  192,  256,  384,   512,   768,   1024, 1536,
                                     2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768};
    assert_int_equal(sizeof classes / sizeof classes[0], RT_POOL_CLASSES);
    assert_int_equal(rt_pool_size(1), 64);
    size_t prev = 0;
    for (size_t i = 0; i < RT_POOL_CLASSES; i++) {
        size_t c = classes[i];
        assert_int_equal(rt_pool_size(c), c);
        assert_int_equal(rt_pool_size_floor(c), c);
        if (prev != 0) {
            assert_int_equal(rt_pool_size(prev + 1), c);
            assert_int_equal(rt_pool_size_floor(c - 1), prev);
            assert_int_equal(rt_pool_size_floor(prev + 1), prev);
        }
        prev = c;
    }
    assert_int_equal(rt_pool_size_floor(63), 0);
    /* Above the largest class a size is served as asked. */
    assert_int_equal(rt_pool_size(32769), 32769);
    assert_int_equal(rt_pool_size_floor(40000), 40000);
    /* Every size up to the largest class: served by a class that holds it, under 1.5x. */
    for (size_t n = 65; n <= RT_POOL_MAX; n++) {
        size_t c = rt_pool_size(n);
        assert_true(c >= n && c * 2 <= n * 3 + 64);
        assert_true(rt_pool_size_floor(n) <= n);
    }
}

static void test_released_blocks_are_reused_by_their_class_only(void **state)
{
    (void)state;
    rt_pool p;
    rt_pool_init(&p, 1 << 20);
    uint8_t *a = rt_pool_get(&p, 300); /* class 384 */
    uint8_t *b = rt_pool_get(&p, 384);
    memset(a, 0xab, 384);
    memset(b, 0xcd, 384);
    assert_ptr_not_equal(a, b);
    rt_pool_put(&p, a, 300);
    assert_int_equal(p.held, 384);
    rt_pool_put(&p, b, 384);
    assert_int_equal(p.held, 768);
    /* Another class does not take them. */
    uint8_t *c = rt_pool_get(&p, 200); /* class 256 */
    assert_ptr_not_equal(c, a);
    assert_ptr_not_equal(c, b);
    /* The most recently released first, then the other, untouched while they were held. */
    assert_ptr_equal(rt_pool_get(&p, 290), b);
    assert_ptr_equal(rt_pool_get(&p, 383), a);
    for (size_t i = 0; i < 384; i++) {
        assert_int_equal(a[i], 0xab);
        assert_int_equal(b[i], 0xcd);
    }
    assert_int_equal(p.held, 0);
    rt_pool_put(&p, a, 384);
    rt_pool_put(&p, b, 384);
    rt_pool_put(&p, c, 256);
    /* Above the largest class: plain malloc and free, never listed. */
    uint8_t *big = rt_pool_get(&p, 100000);
    memset(big, 1, 100000);
    rt_pool_put(&p, big, 100000);
    assert_int_equal(p.held, 384 * 2 + 256);
    rt_pool_put(&p, NULL, 64);
    rt_pool_free(&p);
    assert_int_equal(p.held, 0);
}

static void test_the_lists_hold_at_most_their_bound(void **state)
{
    (void)state;
    rt_pool p;
    rt_pool_init(&p, 10000);
    void *blk[40];
    for (int i = 0; i < 40; i++) {
        blk[i] = rt_pool_get(&p, 1000); /* class 1024 */
    }
    for (int i = 0; i < 40; i++) {
        rt_pool_put(&p, blk[i], 1000);
        assert_true(p.held <= 10000);
    }
    assert_int_equal(p.held, 9 * 1024);
    /* What was kept comes back; past it, fresh blocks. */
    for (int i = 0; i < 12; i++) {
        blk[i] = rt_pool_get(&p, 1024);
    }
    assert_int_equal(p.held, 0);
    for (int i = 0; i < 12; i++) {
        rt_pool_put(&p, blk[i], 1024);
    }
    rt_pool_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_round_up_to_the_next_class),
        cmocka_unit_test(test_released_blocks_are_reused_by_their_class_only),
        cmocka_unit_test(test_the_lists_hold_at_most_their_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
