/* test_decision_cache.c - bounded FIFO key set: lookups return stored values, the oldest key is
 * forgotten first when full, re-putting updates the value without refreshing age, deletion keeps
 * every other key findable (checked against a reference model under heavy churn), size 0 is off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "decision_cache.h"

static void key_of(uint64_t n, uint8_t key[RT_DCACHE_KEY])
{
    memset(key, 0, RT_DCACHE_KEY);
    memcpy(key, &n, 8);
    key[15] = (uint8_t)(n * 7);
}

static void test_get_put_and_fifo_eviction(void **state)
{
    (void)state;
    rt_dcache c;
    rt_dcache_init(&c, 3);
    uint8_t k[RT_DCACHE_KEY];
    uint64_t v = 99;
    for (uint64_t i = 1; i <= 3; i++) {
        key_of(i, k);
        rt_dcache_put(&c, k, i * 10);
    }
    key_of(2, k);
    assert_true(rt_dcache_get(&c, k, &v));
    assert_int_equal(v, 20);
    key_of(1, k);
    rt_dcache_put(&c, k, 11); /* update, keeps age */
    assert_true(rt_dcache_get(&c, k, &v));
    assert_int_equal(v, 11);
    key_of(4, k);
    rt_dcache_put(&c, k, 40); /* evicts 1, the oldest */
    key_of(1, k);
    assert_false(rt_dcache_get(&c, k, &v));
    for (uint64_t i = 2; i <= 4; i++) {
        key_of(i, k);
        assert_true(rt_dcache_get(&c, k, &v));
        assert_int_equal(v, i * 10);
    }
    assert_int_equal(c.n, 3);
    /* Values are 64 bits wide (the sampled cache packs a policy id and a count): the high half
     * survives. */
    key_of(3, k);
    rt_dcache_put(&c, k, 0x4120000000000007ull);
    assert_true(rt_dcache_get(&c, k, &v));
    assert_true(v == 0x4120000000000007ull);
    rt_dcache_free(&c);
}

static void test_off_when_zero(void **state)
{
    (void)state;
    rt_dcache c;
    rt_dcache_init(&c, 0);
    uint8_t k[RT_DCACHE_KEY];
    key_of(1, k);
    rt_dcache_put(&c, k, 1);
    assert_false(rt_dcache_get(&c, k, NULL));
    assert_int_equal(rt_dcache_bytes(&c), 0);
    rt_dcache_free(&c);
}

/* Keys inserted in sequence 0..M-1 into a cache of capacity C: exactly the last C are held. Keys
 * with clustered hashes are mixed in (same first 8 bytes, different tails) to exercise probe runs
 * and backward-shift deletion. */
static void test_churn_matches_model(void **state)
{
    (void)state;
    enum { C = 1000, M = 50000 };
    rt_dcache c;
    rt_dcache_init(&c, C);
    uint8_t k[RT_DCACHE_KEY];
    for (uint64_t i = 0; i < M; i++) {
        key_of(i % 3 == 0 ? i : (i << 40), k);
        /* A hint with any lead, full or not, changes nothing (and reads in bounds). */
        rt_dcache_prefetch(&c, k, i % 9);
        rt_dcache_put(&c, k, i << 32 | i);
        if (i % 997 == 0 || i == M - 1) {
            uint64_t lo = i + 1 >= C ? i + 1 - C : 0;
            for (uint64_t j = lo > 2000 ? lo - 2000 : 0; j <= i; j++) {
                uint64_t v;
                key_of(j % 3 == 0 ? j : (j << 40), k);
                bool held = rt_dcache_get(&c, k, &v);
                assert_int_equal(held, j >= lo);
                if (held) {
                    assert_true(v == (j << 32 | j));
                }
            }
        }
    }
    rt_dcache_free(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_put_and_fifo_eviction),
        cmocka_unit_test(test_off_when_zero),
        cmocka_unit_test(test_churn_matches_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
