/* test_ring.c - the ring's quality figures (balance, weights, keys moved on membership change,
 * health failover) and pinned MurmurHash3 outputs. Prints the figures it asserts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ring.h"

#include <murmurhash.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS 1000000

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* 1 M random 16-byte trace ids, hashed once to placement keys. */
static uint64_t *keys;

static int setup_keys(void **state)
{
    keys = malloc(KEYS * sizeof *keys);
    uint64_t s = 42;
    for (size_t i = 0; i < KEYS; i++) {
        uint64_t id[2] = {splitmix(&s), splitmix(&s)};
        keys[i] = rt_ring_key((const uint8_t *)id, 16);
    }
    return 0;
}

static int teardown_keys(void **state)
{
    free(keys);
    return 0;
}

static rt_ring *make_ring(size_t n, const uint32_t *weights, size_t skip)
{
    rt_ring_node_spec specs[128];
    char ids[128][32];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == skip) {
            continue;
        }
        snprintf(ids[k], sizeof ids[k], "sampler-%zu", i);
        specs[k].id = ids[k];
        specs[k].endpoint = "127.0.0.1:4318";
        specs[k].weight = weights ? weights[i] : 1;
        k++;
    }
    char err[256];
    rt_ring *r = rt_ring_new(specs, k, err, sizeof err);
    assert_non_null(r);
    return r;
}

static void test_murmur3_outputs_match_published_vectors(void **state)
{
    uint32_t h32[1];
    lmmh_x86_32("", 0, 0, h32);
    assert_int_equal(h32[0], 0);
    lmmh_x86_32("", 0, 1, h32);
    assert_int_equal(h32[0], 0x514e28b7);
    lmmh_x86_32("", 0, 0xffffffff, h32);
    assert_int_equal(h32[0], 0x81f16f39);
    lmmh_x86_32("Hello, world!", 13, 0x9747b28c, h32);
    assert_int_equal(h32[0], 0x24884cba);
    const char *fox = "The quick brown fox jumps over the lazy dog";
    lmmh_x86_32(fox, (unsigned)strlen(fox), 0x9747b28c, h32);
    assert_int_equal(h32[0], 0x2fa826cd);
    uint64_t h128[2];
    lmmh_x64_128(fox, (unsigned)strlen(fox), 0, h128);
    assert_true(h128[0] == 0xe34bbc7bbc071b6cull);
    assert_true(h128[1] == 0x7a433ca9c49a9347ull);
    /* Our placement key of a fixed trace id: changing it moves every trace in a running tier. */
    const uint8_t tid[16] = {0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
                             0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36};
    uint64_t expect[2];
    lmmh_x64_128(tid, 16, RT_RING_KEY_SEED, expect);
    assert_true(rt_ring_key(tid, 16) == expect[0]);
    printf("ring key of 4bf92f3577b34da6a3ce929d0e0e4736 = %016llx\n",
           (unsigned long long)rt_ring_key(tid, 16));
}

static void test_load_max_over_mean_at_most_1_03_for_3_to_64_nodes(void **state)
{
    const size_t sizes[] = {3, 8, 32, 64};
    for (size_t s = 0; s < 4; s++) {
        size_t n = sizes[s];
        rt_ring *r = make_ring(n, NULL, SIZE_MAX);
        size_t count[64] = {0};
        for (size_t i = 0; i < KEYS; i++) {
            count[rt_ring_lookup_key(r, keys[i])]++;
        }
        size_t max = 0;
        for (size_t i = 0; i < n; i++) {
            max = count[i] > max ? count[i] : max;
        }
        double ratio = (double)max / ((double)KEYS / (double)n);
        printf("nodes=%2zu  max/mean load=%.4f\n", n, ratio);
        assert_true(ratio <= 1.03);
        rt_ring_free(r);
    }
}

static void test_weights_are_honoured_within_3_percent(void **state)
{
    const uint32_t w[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    rt_ring *r = make_ring(8, w, SIZE_MAX);
    size_t count[8] = {0};
    for (size_t i = 0; i < KEYS; i++) {
        count[rt_ring_lookup_key(r, keys[i])]++;
    }
    for (size_t i = 0; i < 8; i++) {
        size_t node = (size_t)rt_ring_find(r, rt_ring_node_id(r, i));
        assert_int_equal(node, i);
        uint32_t wi = rt_ring_node_weight(r, i);
        double expected = (double)KEYS * wi / 20.0;
        double dev = (double)count[i] / expected - 1.0;
        printf("weight=%u  keys=%zu  expected=%.0f  deviation=%+.4f\n", wi, count[i], expected,
               dev);
        assert_true(dev <= 0.03 && dev >= -0.03);
    }
    rt_ring_free(r);
}

/* Fraction of keys whose owner differs between two rings (compared by node id). */
static double moved_fraction(const rt_ring *a, const rt_ring *b)
{
    size_t moved = 0;
    for (size_t i = 0; i < KEYS; i++) {
        const char *ia = rt_ring_node_id(a, (size_t)rt_ring_lookup_key(a, keys[i]));
        const char *ib = rt_ring_node_id(b, (size_t)rt_ring_lookup_key(b, keys[i]));
        moved += strcmp(ia, ib) != 0;
    }
    return (double)moved / KEYS;
}

static void test_adding_or_removing_one_node_moves_at_most_1_1x_the_ideal(void **state)
{
    const size_t sizes[] = {3, 8, 32, 64};
    for (size_t s = 0; s < 4; s++) {
        size_t n = sizes[s];
        rt_ring *full = make_ring(n, NULL, SIZE_MAX);
        rt_ring *less = make_ring(n, NULL, n / 2); /* one node in the middle removed */
        double moved = moved_fraction(less, full);
        double add_ideal = 1.0 / (double)n; /* n-1 -> n: the new node's share */
        printf("nodes %2zu->%2zu  moved=%.4f  ideal=%.4f  ratio=%.3f\n", n - 1, n, moved, add_ideal,
               moved / add_ideal);
        assert_true(moved <= 1.1 * add_ideal);
        double removed = moved_fraction(full, less); /* n -> n-1: the same keys move back */
        assert_true(removed <= 1.1 * add_ideal);
        rt_ring_free(full);
        rt_ring_free(less);
    }
}

static void test_same_nodes_in_any_order_give_the_same_owners(void **state)
{
    rt_ring_node_spec a[4] = {
        {"s1", "h1:1", 1}, {"s2", "h2:1", 2}, {"s3", "h3:1", 1}, {"s4", "h4:1", 1}};
    rt_ring_node_spec b[4] = {a[2], a[0], a[3], a[1]};
    char err[128];
    rt_ring *ra = rt_ring_new(a, 4, err, sizeof err);
    rt_ring *rb = rt_ring_new(b, 4, err, sizeof err);
    assert_true(rt_ring_content_hash(ra) == rt_ring_content_hash(rb));
    assert_true(moved_fraction(ra, rb) == 0.0);
    rt_ring_free(ra);
    rt_ring_free(rb);
}

static void test_down_node_moves_only_its_keys_and_they_return(void **state)
{
    rt_ring *r = make_ring(8, NULL, SIZE_MAX);
    int *before = malloc(KEYS * sizeof *before);
    for (size_t i = 0; i < KEYS; i++) {
        before[i] = rt_ring_lookup_key(r, keys[i]);
    }
    rt_ring_set_up(r, 3, false);
    size_t moved = 0, spread[8] = {0};
    for (size_t i = 0; i < KEYS; i++) {
        int now = rt_ring_lookup_key(r, keys[i]);
        assert_int_not_equal(now, 3);
        if (before[i] != 3) {
            assert_int_equal(now, before[i]); /* other keys do not move */
        } else {
            moved++;
            spread[now]++;
        }
    }
    /* The orphaned keys spread over the survivors instead of piling onto one neighbour. */
    for (size_t i = 0; i < 8; i++) {
        if (i != 3) {
            assert_true(spread[i] > moved / 7 / 2);
        }
    }
    rt_ring_set_up(r, 3, true);
    for (size_t i = 0; i < KEYS; i++) {
        assert_int_equal(rt_ring_lookup_key(r, keys[i]), before[i]);
    }
    for (size_t i = 0; i < 8; i++) {
        rt_ring_set_up(r, i, false);
    }
    assert_int_equal(rt_ring_lookup_key(r, keys[0]), -1);
    free(before);
    rt_ring_free(r);
}

/* A clone answers like its original, keeps its own up/down flags, and outlives it (they share
 * the table, which the last one frees). */
static void test_clone_shares_the_table_and_has_its_own_flags(void **state)
{
    rt_ring *r = make_ring(5, NULL, SIZE_MAX);
    rt_ring_set_up(r, 1, false);
    rt_ring *c = rt_ring_clone(r);
    assert_int_equal(rt_ring_size(c), 5);
    assert_string_equal(rt_ring_node_id(c, 2), rt_ring_node_id(r, 2));
    assert_int_equal(rt_ring_content_hash(c), rt_ring_content_hash(r));
    assert_false(rt_ring_is_up(c, 1)); /* flags are copied */
    for (size_t i = 0; i < 10000; i++) {
        assert_int_equal(rt_ring_lookup_key(c, keys[i]), rt_ring_lookup_key(r, keys[i]));
    }
    rt_ring_set_up(c, 1, true);
    rt_ring_set_up(c, 4, false);
    assert_false(rt_ring_is_up(r, 1)); /* ... and then its own */
    assert_true(rt_ring_is_up(r, 4));
    size_t differ = 0;
    for (size_t i = 0; i < 10000; i++) {
        int a = rt_ring_lookup_key(r, keys[i]), b = rt_ring_lookup_key(c, keys[i]);
        assert_int_not_equal(a, 1);
        assert_int_not_equal(b, 4);
        differ += a != b;
        assert_int_equal(rt_ring_home_key(c, keys[i]), rt_ring_home_key(r, keys[i]));
    }
    assert_true(differ > 0);
    rt_ring_free(r); /* the clone keeps the table alive */
    rt_ring_set_up(c, 4, true);
    for (size_t i = 0; i < 10000; i++) {
        assert_int_equal(rt_ring_lookup_key(c, keys[i]), rt_ring_home_key(c, keys[i]));
    }
    rt_ring_free(c);
}

static void test_bad_node_lists_are_rejected_with_a_reason(void **state)
{
    char err[128];
    rt_ring_node_spec dup[2] = {{"s1", "a:1", 1}, {"s1", "b:1", 1}};
    assert_null(rt_ring_new(dup, 2, err, sizeof err));
    assert_non_null(strstr(err, "duplicate node id \"s1\""));
    rt_ring_node_spec zero[1] = {{"s1", "a:1", 0}};
    assert_null(rt_ring_new(zero, 1, err, sizeof err));
    assert_non_null(strstr(err, "weight must be a positive integer"));
    assert_null(rt_ring_new(zero, 0, err, sizeof err));
    assert_non_null(strstr(err, "no nodes"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_murmur3_outputs_match_published_vectors),
        cmocka_unit_test(test_load_max_over_mean_at_most_1_03_for_3_to_64_nodes),
        cmocka_unit_test(test_weights_are_honoured_within_3_percent),
        cmocka_unit_test(test_adding_or_removing_one_node_moves_at_most_1_1x_the_ideal),
        cmocka_unit_test(test_same_nodes_in_any_order_give_the_same_owners),
        cmocka_unit_test(test_down_node_moves_only_its_keys_and_they_return),
        cmocka_unit_test(test_clone_shares_the_table_and_has_its_own_flags),
        cmocka_unit_test(test_bad_node_lists_are_rejected_with_a_reason),
    };
    return cmocka_run_group_tests(tests, setup_keys, teardown_keys);
}
