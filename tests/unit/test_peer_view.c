/* test_peer_view.c - a sampler's view of the ring (sampler/peer_view.c): it owns its keys while
 * it is a member and up, nothing while leaving or while the file does not list it, a peer marked
 * down hands its keys to the ring's successors (and only its keys move), and a view without any
 * other node up keeps everything local. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "membership.h"
#include "peer_view.h"

#define KEYS 20000

static rt_membership *load(const char *yaml)
{
    char path[] = "/tmp/rt_test_peer_view.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, yaml, strlen(yaml)), (ssize_t)strlen(yaml));
    close(fd);
    char err[256];
    rt_membership *m = rt_membership_load(path, err, sizeof err);
    unlink(path);
    if (m == NULL) {
        fail_msg("%s", err);
    }
    return m;
}

static const char *const RING4 = "nodes:\n"
                                 "  - {id: sampler-1, endpoint: \"127.0.0.2:4318\"}\n"
                                 "  - {id: sampler-2, endpoint: \"127.0.0.3:4318\"}\n"
                                 "  - {id: sampler-3, endpoint: \"127.0.0.4:4318\"}\n"
                                 "  - {id: sampler-4, endpoint: \"127.0.0.5:4318\"}\n";

static uint64_t key(uint64_t i)
{
    uint8_t id[16];
    for (int b = 0; b < 16; b++) {
        id[b] = (uint8_t)((i * 0x9E3779B97F4A7C15ull) >> (b * 4));
    }
    memcpy(id, &i, sizeof i);
    return rt_ring_key(id, 16);
}

static void test_a_member_owns_its_share_and_nothing_while_leaving(void **state)
{
    (void)state;
    rt_membership *m = load(RING4);
    bool up[4] = {true, true, true, true};
    rt_peer_view *v = rt_peer_view_new(m, up, NULL, "sampler-2", true, 1);
    assert_int_equal(v->self, 1);
    assert_true(v->self_up);
    assert_true(rt_peer_view_has_peers(v));
    size_t mine = 0;
    for (uint64_t i = 0; i < KEYS; i++) {
        int o = rt_peer_view_owner(v, key(i));
        assert_int_equal(o, rt_ring_home_key(m->ring, key(i)));
        mine += rt_peer_view_local(v, key(i));
    }
    assert_true(mine > KEYS / 4 - KEYS / 40 && mine < KEYS / 4 + KEYS / 40);
    /* Leaving: the same nodes, this one down in its own view. */
    rt_peer_view *l = rt_peer_view_new(m, up, NULL, "sampler-2", false, 2);
    assert_false(l->self_up);
    assert_int_equal(l->up_count, 3);
    for (uint64_t i = 0; i < KEYS; i++) {
        int o = rt_peer_view_owner(l, key(i));
        assert_int_not_equal(o, 1);
        assert_false(rt_peer_view_local(l, key(i)));
        if (rt_ring_home_key(m->ring, key(i)) != 1) {
            assert_int_equal(o, rt_peer_view_owner(v, key(i))); /* only its keys move */
        }
    }
    rt_peer_view_unref(v);
    rt_peer_view_unref(l);
    rt_membership_free(m);
}

static void test_an_unlisted_sampler_owns_nothing(void **state)
{
    (void)state;
    rt_membership *m = load(RING4);
    bool up[4] = {true, true, true, true};
    rt_peer_view *v = rt_peer_view_new(m, up, NULL, "sampler-9", true, 1);
    assert_int_equal(v->self, -1);
    assert_false(v->self_up);
    assert_true(rt_peer_view_has_peers(v));
    for (uint64_t i = 0; i < KEYS; i++) {
        assert_false(rt_peer_view_local(v, key(i)));
    }
    rt_peer_view_unref(v);
    rt_membership_free(m);
}

static void test_down_peers_move_their_keys_and_a_lone_sampler_keeps_all(void **state)
{
    (void)state;
    rt_membership *m = load(RING4);
    bool up[4] = {true, true, false, true};
    rt_peer_view *v = rt_peer_view_new(m, up, NULL, "sampler-1", true, 1);
    size_t moved_here = 0;
    for (uint64_t i = 0; i < KEYS; i++) {
        int home = rt_ring_home_key(m->ring, key(i)), o = rt_peer_view_owner(v, key(i));
        assert_int_not_equal(o, 2);
        if (home != 2) {
            assert_int_equal(o, home);
        } else {
            moved_here += o == 0;
        }
    }
    assert_true(moved_here > 0); /* sampler-1 is a successor of some of sampler-3's keys */
    /* The membership's own ring is untouched by the view's flags. */
    assert_true(rt_ring_is_up(m->ring, 2));
    rt_peer_view_unref(v);
    /* Every other node down: nothing to send anywhere, everything stays. */
    bool alone[4] = {false, false, false, false};
    rt_peer_view *a = rt_peer_view_new(m, alone, NULL, "sampler-4", true, 2);
    assert_false(rt_peer_view_has_peers(a));
    for (uint64_t i = 0; i < 1000; i++) {
        assert_true(rt_peer_view_local(a, key(i)));
    }
    rt_peer_view_unref(a);
    /* ... and a leaving sampler with nobody up: no owner at all, which is "keep it" too. */
    rt_peer_view *n = rt_peer_view_new(m, alone, NULL, "sampler-4", false, 3);
    assert_false(rt_peer_view_has_peers(n));
    assert_int_equal(rt_peer_view_owner(n, key(1)), -1);
    assert_true(rt_peer_view_local(n, key(1)));
    rt_peer_view_unref(n);
    rt_membership_free(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_member_owns_its_share_and_nothing_while_leaving),
        cmocka_unit_test(test_an_unlisted_sampler_owns_nothing),
        cmocka_unit_test(test_down_peers_move_their_keys_and_a_lone_sampler_keeps_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
