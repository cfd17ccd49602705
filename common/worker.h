/* worker.h - one libevent event loop per worker thread, and the ways to reach them.
 *
 * A pool owns N workers (default: one per core). Each worker owns an event_base and a thread
 * running it; everything created on a worker's base is touched only from that thread. Work
 * crosses threads only through rt_worker_post() (a locked queue plus a wake-up event), so the
 * per-request paths never take a lock.
 *
 * Life cycle: rt_workers_new() -> set up (rt_workers_run_on_each to create per-worker
 * listeners on their own threads) -> ... -> rt_workers_stop() -> rt_workers_free().
 *
 * The process side: rt_process_init() must run first (it enables libevent's pthread locking
 * and ignores SIGPIPE); rt_process_wait_signals() runs the main thread's loop until SIGTERM or
 * SIGINT, calling the owner on SIGHUP.
 */
#ifndef RT_WORKER_H
#define RT_WORKER_H

#include <event2/event.h>
#include <stdbool.h>

typedef struct rt_worker rt_worker;
typedef struct rt_workers rt_workers;
typedef void (*rt_task_fn)(rt_worker *w, void *arg);

/* Once per process, before any event_base is made. */
void rt_process_init(void);

/* A pool of `n` workers (n <= 0: one per online core). Threads start at once, idle. */
rt_workers *rt_workers_new(int n);
int rt_workers_count(const rt_workers *pool);
rt_worker *rt_workers_get(rt_workers *pool, int i);

int rt_worker_index(const rt_worker *w);
struct event_base *rt_worker_base(rt_worker *w);
/* Run fn(w, arg) on w's thread, soon. Safe from any thread. */
void rt_worker_post(rt_worker *w, rt_task_fn fn, void *arg);
/* Run fn on every worker's thread and wait until all have returned (for set-up and
 * tear-down of per-worker state). Must not be called from a worker thread. */
void rt_workers_run_on_each(rt_workers *pool, rt_task_fn fn, void *arg);
/* Run fn on w's thread and wait until it has returned. Not from a worker thread. */
void rt_workers_run_on_one(rt_worker *w, rt_task_fn fn, void *arg);
/* Ask every loop to finish and join the threads. Idempotent. */
void rt_workers_stop(rt_workers *pool);
/* Stop (if needed) and free. Tolerates NULL. */
void rt_workers_free(rt_workers *pool);

typedef enum rt_signal_action {
    RT_SIGNAL_RELOAD, /* SIGHUP */
    RT_SIGNAL_STOP,   /* SIGTERM, SIGINT */
} rt_signal_action;

/* Called on the main thread for each signal. Returning true on RT_SIGNAL_STOP ends
 * rt_process_wait_signals(); returning false keeps waiting (e.g. while draining). */
typedef bool (*rt_signal_fn)(rt_signal_action action, void *arg);

/* Run `base` (the main thread's loop: admin listener, file watchers, timers) until a stop
 * signal is accepted by `fn` (or the owner breaks `base` itself). */
void rt_process_wait_signals(struct event_base *base, rt_signal_fn fn, void *arg);

#endif
