/* test_worker.c - worker pool: tasks run on the right thread, barriers wait, stop joins. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "worker.h"

#include <pthread.h>
#include <stdatomic.h>

typedef struct probe {
    pthread_t seen[8];
    _Atomic int runs;
    _Atomic int per_worker[8];
} probe;

static void record_thread(rt_worker *w, void *arg)
{
    probe *p = arg;
    p->seen[rt_worker_index(w)] = pthread_self();
    atomic_fetch_add(&p->runs, 1);
}

static void test_run_on_each_runs_once_per_worker_on_distinct_threads(void **state)
{
    rt_workers *pool = rt_workers_new(4);
    assert_int_equal(rt_workers_count(pool), 4);
    probe p = {0};
    rt_workers_run_on_each(pool, record_thread, &p);
    assert_int_equal(atomic_load(&p.runs), 4);
    for (int i = 0; i < 4; i++) {
        assert_false(pthread_equal(p.seen[i], pthread_self()));
        for (int j = i + 1; j < 4; j++) {
            assert_false(pthread_equal(p.seen[i], p.seen[j]));
        }
    }
    rt_workers_free(pool);
}

static void count_on_worker(rt_worker *w, void *arg)
{
    probe *p = arg;
    atomic_fetch_add(&p->per_worker[rt_worker_index(w)], 1);
}

typedef struct poster {
    rt_workers *pool;
    probe *p;
} poster;

static void *post_many(void *arg)
{
    poster *ps = arg;
    for (int i = 0; i < 10000; i++) {
        rt_worker_post(rt_workers_get(ps->pool, i % 3), count_on_worker, ps->p);
    }
    return NULL;
}

static void noop(rt_worker *w, void *arg)
{
}

static void test_posts_from_many_threads_all_run_on_their_worker(void **state)
{
    rt_workers *pool = rt_workers_new(3);
    probe p = {0};
    poster ps = {pool, &p};
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        pthread_create(&t[i], NULL, post_many, &ps);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
    }
    /* Queues are FIFO per worker: once a barrier task has run everywhere, all earlier posts
     * have run too. */
    rt_workers_run_on_each(pool, noop, NULL);
    int total = 0;
    for (int i = 0; i < 3; i++) {
        total += atomic_load(&p.per_worker[i]);
    }
    assert_int_equal(total, 40000);
    assert_int_equal(atomic_load(&p.per_worker[0]), 4 * 3334);
    rt_workers_free(pool);
}

static void test_default_size_is_one_per_core_and_stop_is_idempotent(void **state)
{
    rt_workers *pool = rt_workers_new(0);
    assert_true(rt_workers_count(pool) >= 1);
    rt_workers_stop(pool);
    rt_workers_stop(pool);
    rt_workers_free(pool);
    rt_workers_free(NULL);
}

int main(void)
{
    rt_process_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_on_each_runs_once_per_worker_on_distinct_threads),
        cmocka_unit_test(test_posts_from_many_threads_all_run_on_their_worker),
        cmocka_unit_test(test_default_size_is_one_per_core_and_stop_is_idempotent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
