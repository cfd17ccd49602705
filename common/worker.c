/* worker.c - worker threads with one event loop each (see worker.h). */
#include "worker.h"

#include "alloc.h"
#include "log.h"

#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct task {
    struct task *next;
    rt_task_fn fn;
    void *arg;
} task;

struct rt_worker {
    int index;
    rt_workers *pool;
    struct event_base *base;
    struct event *wake; /* activated by rt_worker_post from any thread */
    pthread_t thread;
    pthread_mutex_t lock; /* guards head/tail */
    task *head, *tail;
    bool stopping;
};

struct rt_workers {
    int n;
    rt_worker *workers;
    bool stopped;
};

void rt_process_init(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
}

/* Drain the queue on the worker's own thread. Tasks are taken in one batch under the lock and
 * run without it, so a task may post more work. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    rt_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    task *t = w->head;
    w->head = w->tail = NULL;
    pthread_mutex_unlock(&w->lock);
    while (t) {
        task *next = t->next;
        t->fn(w, t->arg);
        free(t);
        t = next;
    }
    if (w->stopping) {
        event_base_loopbreak(w->base);
    }
}

static void *worker_main(void *arg)
{
    rt_worker *w = arg;
    event_base_loop(w->base, EVLOOP_NO_EXIT_ON_EMPTY);
    /* Run what was posted after the last wake-up, so nobody waits forever on a barrier. */
    on_wake(-1, 0, w);
    return NULL;
}

rt_workers *rt_workers_new(int n)
{
    if (n <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    rt_workers *pool = rt_calloc(1, sizeof *pool);
    pool->n = n;
    pool->workers = rt_calloc((size_t)n, sizeof *pool->workers);
    for (int i = 0; i < n; i++) {
        rt_worker *w = &pool->workers[i];
        w->index = i;
        w->pool = pool;
        w->base = event_base_new();
        if (w->base == NULL) {
            rt_log(RT_LOG_ERROR, "cannot create event loop", "worker=%d", i);
            abort();
        }
        w->wake = event_new(w->base, -1, 0, on_wake, w);
        pthread_mutex_init(&w->lock, NULL);
        if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
            rt_log(RT_LOG_ERROR, "cannot start worker thread", "worker=%d", i);
            abort();
        }
    }
    return pool;
}

int rt_workers_count(const rt_workers *pool)
{
    return pool->n;
}

rt_worker *rt_workers_get(rt_workers *pool, int i)
{
    return &pool->workers[i];
}

int rt_worker_index(const rt_worker *w)
{
    return w->index;
}

struct event_base *rt_worker_base(rt_worker *w)
{
    return w->base;
}

void rt_worker_post(rt_worker *w, rt_task_fn fn, void *arg)
{
    task *t = rt_malloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&w->lock);
    if (w->tail) {
        w->tail->next = t;
    } else {
        w->head = t;
    }
    w->tail = t;
    pthread_mutex_unlock(&w->lock);
    event_active(w->wake, 0, 0);
}

typedef struct barrier {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int remaining;
    rt_task_fn fn;
    void *arg;
} barrier;

static void barrier_task(rt_worker *w, void *arg)
{
    barrier *b = arg;
    b->fn(w, b->arg);
    pthread_mutex_lock(&b->lock);
    if (--b->remaining == 0) {
        pthread_cond_signal(&b->cond);
    }
    pthread_mutex_unlock(&b->lock);
}

/* Post fn to `n` workers starting at `first` and wait for all of them. */
static void run_and_wait(rt_worker *first, int n, rt_task_fn fn, void *arg)
{
    barrier b;
    pthread_mutex_init(&b.lock, NULL);
    pthread_cond_init(&b.cond, NULL);
    b.remaining = n;
    b.fn = fn;
    b.arg = arg;
    for (int i = 0; i < n; i++) {
        rt_worker_post(&first[i], barrier_task, &b);
    }
    pthread_mutex_lock(&b.lock);
    while (b.remaining > 0) {
        pthread_cond_wait(&b.cond, &b.lock);
    }
    pthread_mutex_unlock(&b.lock);
    pthread_mutex_destroy(&b.lock);
    pthread_cond_destroy(&b.cond);
}

void rt_workers_run_on_each(rt_workers *pool, rt_task_fn fn, void *arg)
{
    run_and_wait(pool->workers, pool->n, fn, arg);
}

void rt_workers_run_on_one(rt_worker *w, rt_task_fn fn, void *arg)
{
    run_and_wait(w, 1, fn, arg);
}

static void stop_task(rt_worker *w, void *arg)
{
    w->stopping = true;
}

void rt_workers_stop(rt_workers *pool)
{
    if (pool == NULL || pool->stopped) {
        return;
    }
    pool->stopped = true;
    for (int i = 0; i < pool->n; i++) {
        rt_worker_post(&pool->workers[i], stop_task, NULL);
    }
    for (int i = 0; i < pool->n; i++) {
        pthread_join(pool->workers[i].thread, NULL);
    }
}

void rt_workers_free(rt_workers *pool)
{
    if (pool == NULL) {
        return;
    }
    rt_workers_stop(pool);
    for (int i = 0; i < pool->n; i++) {
        rt_worker *w = &pool->workers[i];
        event_free(w->wake);
        event_base_free(w->base);
        pthread_mutex_destroy(&w->lock);
    }
    free(pool->workers);
    free(pool);
}

typedef struct signal_ctx {
    struct event_base *base;
    rt_signal_fn fn;
    void *arg;
} signal_ctx;

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    signal_ctx *ctx = arg;
    rt_signal_action action = sig == SIGHUP ? RT_SIGNAL_RELOAD : RT_SIGNAL_STOP;
    rt_log(RT_LOG_INFO, "signal received", "signal=%s",
           sig == SIGHUP ? "SIGHUP" : (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    bool done = ctx->fn ? ctx->fn(action, ctx->arg) : action == RT_SIGNAL_STOP;
    if (action == RT_SIGNAL_STOP && done) {
        event_base_loopbreak(ctx->base);
    }
}

void rt_process_wait_signals(struct event_base *base, rt_signal_fn fn, void *arg)
{
    signal_ctx ctx = {base, fn, arg};
    struct event *ev_term = evsignal_new(base, SIGTERM, on_signal, &ctx);
    struct event *ev_int = evsignal_new(base, SIGINT, on_signal, &ctx);
    struct event *ev_hup = evsignal_new(base, SIGHUP, on_signal, &ctx);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_hup, NULL);
    event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY);
    event_free(ev_term);
    event_free(ev_int);
    event_free(ev_hup);
}
