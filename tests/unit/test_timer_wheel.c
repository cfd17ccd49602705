/* test_timer_wheel.c - the hashed timing wheel: entries fire at the first scan at or after their
 * due time (never before), cancel and reschedule work, due times beyond one turn of the wheel and
 * in the past are handled, and 10^5 entries all fire at the right scan; a bounded expiry takes at
 * most its limit, loses nothing and never fires early, also after a gap of several turns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "timer_wheel.h"

#define MS 1000000ull

typedef struct item {
    rt_twheel_entry e;
    uint64_t fired_at; /* 0: not fired */
    int fired;
} item;

static size_t fire(rt_twheel *w, uint64_t now)
{
    size_t n = 0;
    for (rt_twheel_entry *e = rt_twheel_expire(w, now); e;) {
        rt_twheel_entry *next = e->next;
        item *it = (item *)e;
        assert_false(rt_twheel_pending(e));
        it->fired++;
        it->fired_at = now;
        n++;
        e = next;
    }
    return n;
}

static void test_entry_fires_at_due_time_not_before(void **state)
{
    (void)state;
    rt_twheel w;
    rt_twheel_init(&w, 10 * MS, 1000 * MS);
    item a = {0};
    uint64_t t0 = 5000 * MS + 3;
    rt_twheel_add(&w, &a.e, t0 + 250 * MS + 7);
    assert_true(rt_twheel_pending(&a.e));
    assert_int_equal(fire(&w, t0), 0);
    assert_int_equal(fire(&w, t0 + 250 * MS), 0);
    assert_int_equal(fire(&w, t0 + 250 * MS + 6), 0); /* same tick, 1 ns early */
    assert_int_equal(fire(&w, t0 + 250 * MS + 7), 1);
    assert_int_equal(a.fired, 1);
    assert_int_equal(fire(&w, t0 + 10000 * MS), 0);
    assert_int_equal(rt_twheel_count(&w), 0);
    rt_twheel_free(&w);
}

static void test_cancel_and_reschedule(void **state)
{
    (void)state;
    rt_twheel w;
    rt_twheel_init(&w, 10 * MS, 1000 * MS);
    item a = {0}, b = {0};
    rt_twheel_add(&w, &a.e, 100 * MS);
    rt_twheel_add(&w, &b.e, 100 * MS);
    rt_twheel_cancel(&w, &a.e);
    rt_twheel_cancel(&w, &a.e); /* no-op */
    assert_int_equal(rt_twheel_count(&w), 1);
    rt_twheel_reschedule(&w, &b.e, 50 * MS); /* earlier */
    assert_int_equal(fire(&w, 49 * MS), 0);
    assert_int_equal(fire(&w, 50 * MS), 1);
    assert_int_equal(b.fired_at, 50 * MS);
    rt_twheel_add(&w, &a.e, 60 * MS);
    rt_twheel_reschedule(&w, &a.e, 300 * MS); /* later */
    assert_int_equal(fire(&w, 200 * MS), 0);
    assert_int_equal(fire(&w, 300 * MS), 1);
    assert_int_equal(a.fired, 1);
    rt_twheel_free(&w);
}

static void test_far_future_and_past_due(void **state)
{
    (void)state;
    rt_twheel w;
    rt_twheel_init(&w, 10 * MS, 100 * MS); /* 64 slots: 640 ms per turn */
    item far = {0}, past = {0};
    fire(&w, 1000 * MS);
    rt_twheel_add(&w, &far.e, 1000 * MS + 5000 * MS); /* ~8 turns ahead */
    rt_twheel_add(&w, &past.e, 10 * MS);              /* already due */
    assert_int_equal(fire(&w, 1000 * MS), 1);
    assert_int_equal(past.fired, 1);
    for (uint64_t t = 1000 * MS; t < 6000 * MS; t += 10 * MS) {
        assert_int_equal(fire(&w, t), 0);
    }
    assert_int_equal(fire(&w, 6000 * MS), 1);
    assert_int_equal(far.fired, 1);
    /* A jump over many turns at once still finds the entry. */
    rt_twheel_add(&w, &far.e, 7000 * MS);
    assert_int_equal(fire(&w, 90000 * MS), 1);
    rt_twheel_free(&w);
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void test_1e5_entries_fire_at_first_scan_after_due(void **state)
{
    (void)state;
    enum { N = 100000 };
    rt_twheel w;
    rt_twheel_init(&w, 10 * MS, 30000 * MS);
    item *items = rt_calloc(N, sizeof(*items));
    uint64_t seed = 42;
    for (size_t i = 0; i < N; i++) {
        rt_twheel_add(&w, &items[i].e, 1 + splitmix(&seed) % (40000 * MS));
    }
    /* Cancel every tenth. */
    for (size_t i = 0; i < N; i += 10) {
        rt_twheel_cancel(&w, &items[i].e);
    }
    uint64_t step = 7 * MS + 1; /* not aligned with the tick */
    uint64_t prev = 0;
    for (uint64_t now = 0; now <= 41000 * MS; now += step) {
        fire(&w, now);
        prev = now;
    }
    (void)prev;
    for (size_t i = 0; i < N; i++) {
        if (i % 10 == 0) {
            assert_int_equal(items[i].fired, 0);
            continue;
        }
        assert_int_equal(items[i].fired, 1);
        assert_true(items[i].fired_at >= items[i].e.due_ns);
        assert_true(items[i].fired_at < items[i].e.due_ns + step);
    }
    assert_int_equal(rt_twheel_count(&w), 0);
    free(items);
    rt_twheel_free(&w);
}

/* A backlog taken `max` at a time: each call takes at most `max`, only due entries, and after
 * enough calls every due entry was taken exactly once; entries not due stay, and fire later. The
 * backlog spans a gap of five turns of the wheel (a caller that stopped scanning for a while). */
static void test_expire_max_takes_at_most_max_and_loses_nothing(void **state)
{
    (void)state;
    enum { N = 3000 };
    rt_twheel w;
    rt_twheel_init(&w, 10 * MS, 640 * MS); /* 66 ticks -> 128 slots */
    item *it = rt_calloc(N, sizeof *it);
    uint64_t t0 = 1000 * MS;
    assert_int_equal(rt_twheel_expire(&w, t0), NULL);
    for (int i = 0; i < N; i++) {
        /* half due within the gap, spread over five turns; half due long after it */
        uint64_t due = i % 2 ? t0 + (uint64_t)i * 2 * MS : t0 + 100000 * MS + (uint64_t)i * MS;
        rt_twheel_add(&w, &it[i].e, due);
    }
    uint64_t now = t0 + 6400 * MS; /* 640 ticks later: five turns */
    size_t taken = 0;
    for (int call = 0; call < 1000; call++) {
        size_t n = 0;
        for (rt_twheel_entry *e = rt_twheel_expire_max(&w, now, 7); e;) {
            rt_twheel_entry *next = e->next;
            item *x = (item *)e;
            assert_true(e->due_ns <= now);
            x->fired++;
            n++;
            e = next;
        }
        assert_true(n <= 7);
        taken += n;
        if (n == 0) {
            break;
        }
    }
    assert_int_equal(taken, N / 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(it[i].fired, i % 2);
    }
    assert_int_equal(rt_twheel_count(&w), N / 2);
    /* the rest fire when due, through the plain expiry */
    assert_int_equal(fire(&w, t0 + 100000 * MS + N * MS), N / 2);
    for (int i = 0; i < N; i++) {
        assert_int_equal(it[i].fired, 1);
    }
    rt_twheel_free(&w);
    free(it);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_fires_at_due_time_not_before),
        cmocka_unit_test(test_cancel_and_reschedule),
        cmocka_unit_test(test_far_future_and_past_due),
        cmocka_unit_test(test_1e5_entries_fire_at_first_scan_after_due),
        cmocka_unit_test(test_expire_max_takes_at_most_max_and_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
