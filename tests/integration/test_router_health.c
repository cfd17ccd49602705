/* test_router_health.c - the router's node health (common/node_health.c, views built as router.c
 * builds them) against in-process admin listeners on 127.0.0.1-3 (one shared admin port, as in
 * production): a node whose /readyz answers 503 is marked down after unhealthy_after checks and
 * mirrored into the ring; it comes back only after healthy_after consecutive good checks, so a
 * flapping node stays down; workers' passive failure reports mark a node down; a TCP check follows
 * a listener going away. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "alloc.h"
#include "node_health.h"
#include "view.h"
#include "membership.h"
#include "net.h"
#include "worker.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NNODE 3

typedef struct readyz_server {
    struct evhttp *http;
    int status; /* what /readyz answers */
    bool flap;  /* alternate 200 / 503 */
    int hits;
} readyz_server;

typedef struct fixture {
    struct event_base *base;
    readyz_server servers[NNODE];
    uint16_t port;
    char dir[64];
    rt_membership *m;
    rt_health_cfg cfg;
    rt_health *h;
    rt_metrics_registry *reg;
    int publishes;
    bool up[NNODE];
    rt_view *last;
} fixture;

static void readyz(struct evhttp_request *req, void *arg)
{
    readyz_server *s = arg;
    s->hits++;
    int st = s->flap ? (s->hits % 2 ? 200 : 503) : s->status;
    evhttp_send_reply(req, st, st == 200 ? "OK" : "Service Unavailable", NULL);
}

static void on_publish(void *arg, const rt_health_snapshot *snap)
{
    fixture *fx = arg;
    rt_view *v = rt_view_new(snap->m, snap->up, snap->nodes, 1, snap->generation, fx->reg);
    fx->publishes++;
    assert_int_equal(v->n, NNODE);
    assert_int_equal(v->n_rings, 1);
    for (size_t i = 0; i < v->n; i++) {
        fx->up[i] = v->nodes[i].up;
        assert_int_equal(rt_ring_is_up(v->rings[0], i), v->nodes[i].up);
    }
    rt_view_unref(fx->last);
    fx->last = v;
}

/* Views take ~100 ms to build in a Debug build (a 1 M-slot table per worker), so intervals are
 * generous: a state must be observable between two changes. */
static fixture *fixture_new(int check, int interval_ms)
{
    fixture *fx = rt_calloc(1, sizeof *fx);
    fx->base = event_base_new();
    for (int i = 0; i < NNODE; i++) {
        readyz_server *s = &fx->servers[i];
        s->status = 200;
        s->http = evhttp_new(fx->base);
        evhttp_set_cb(s->http, "/readyz", readyz, s);
        char host[32];
        snprintf(host, sizeof host, "127.0.0.%d", i + 1);
        struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(s->http, host, fx->port);
        assert_non_null(bs);
        if (fx->port == 0) {
            fx->port = rt_net_local_port(evhttp_bound_socket_get_fd(bs));
        }
    }
    snprintf(fx->dir, sizeof fx->dir, "/tmp/rt-router-health-XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    char path[128], err[256];
    snprintf(path, sizeof path, "%s/ring.yaml", fx->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    /* With check: tcp the OTLP endpoints are the readyz servers themselves. */
    fprintf(fp, "nodes:\n");
    for (int i = 0; i < NNODE; i++) {
        fprintf(fp, "  - {id: n%d, endpoint: \"127.0.0.%d:%u\"}\n", i, i + 1, fx->port);
    }
    fclose(fp);
    fx->m = rt_membership_load(path, err, sizeof err);
    assert_non_null(fx->m);
    fx->cfg = (rt_health_cfg){.check = check,
                              .admin_port = fx->port,
                              .path = (char *)"/readyz",
                              .interval_ns = (uint64_t)interval_ms * 1000 * 1000,
                              .timeout_ns = (uint64_t)interval_ms * 900 * 1000,
                              .unhealthy_after = 2,
                              .healthy_after = 3};
    fx->reg = rt_metrics_registry_new();
    fx->h = rt_health_new(fx->base, &fx->cfg, "ringtail_router_node_up", fx->reg, on_publish, fx);
    rt_health_set_membership(fx->h, fx->m);
    return fx;
}

static void fixture_free(fixture *fx)
{
    rt_health_free(fx->h);
    rt_view_unref(fx->last);
    for (int i = 0; i < NNODE; i++) {
        if (fx->servers[i].http) {
            evhttp_free(fx->servers[i].http);
        }
    }
    rt_membership_free(fx->m);
    rt_metrics_registry_free(fx->reg);
    event_base_free(fx->base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", fx->dir);
    assert_int_equal(system(cmd), 0);
    free(fx);
}

static void run_for(fixture *fx, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(fx->base, &tv);
    event_base_dispatch(fx->base);
}

/* Run until node i's published state is `up` (or fail after limit_ms). */
static void run_until(fixture *fx, int i, bool up, int limit_ms)
{
    for (int t = 0; t < limit_ms && fx->up[i] != up; t += 10) {
        run_for(fx, 10);
    }
    assert_int_equal(fx->up[i], up);
}

static void test_readyz_503_marks_down_and_200_brings_back_after_damping(void **state)
{
    fixture *fx = fixture_new(RT_HEALTH_CHECK_READYZ, 100);
    assert_int_equal(fx->publishes, 1);
    assert_true(fx->up[0] && fx->up[1] && fx->up[2]);
    run_for(fx, 450);
    assert_true(fx->servers[1].hits >= 2); /* every node's admin port is polled */
    assert_int_equal(fx->publishes, 1);    /* nothing changed: no new view */

    fx->servers[1].status = 503;
    run_until(fx, 1, false, 3000);
    assert_false(rt_ring_is_up(fx->m->ring, 1)); /* mirrored for /ring */
    assert_true(fx->up[0] && fx->up[2]);
    assert_int_equal(rt_health_up_count(fx->h), 2);

    /* Flapping (200, 503, 200, ...) never gives healthy_after = 3 good checks in a row. */
    fx->servers[1].flap = true;
    run_for(fx, 1000);
    assert_false(fx->up[1]);

    fx->servers[1].flap = false;
    fx->servers[1].status = 503; /* end the flapping on a failure, so the good streak starts at 0 */
    run_for(fx, 250);
    assert_false(fx->up[1]);
    fx->servers[1].status = 200;
    int hits = fx->servers[1].hits;
    run_until(fx, 1, true, 3000);
    assert_true(fx->servers[1].hits - hits >= 3);
    assert_true(rt_ring_is_up(fx->m->ring, 1));
    fixture_free(fx);
}

typedef struct reporter {
    rt_health_node *hn;
    int n;
} reporter;

static void *report_failures(void *arg)
{
    reporter *r = arg;
    for (int i = 0; i < r->n; i++) {
        rt_health_passive(r->hn, false);
    }
    return NULL;
}

static void test_passive_failures_from_a_worker_thread_mark_down(void **state)
{
    fixture *fx = fixture_new(RT_HEALTH_CHECK_NONE, 300);
    rt_health_node *hn = fx->last->nodes[2].health;
    assert_non_null(hn);
    /* One failure, then a success: the streak restarts, nothing happens. */
    rt_health_passive(hn, false);
    rt_health_passive(hn, true);
    rt_health_passive(hn, false);
    run_for(fx, 30);
    assert_true(fx->up[2]);
    reporter r = {hn, 2};
    pthread_t t;
    pthread_create(&t, NULL, report_failures, &r);
    pthread_join(t, NULL);
    run_until(fx, 2, false, 1000);
    /* check: none: a passively downed node is tried again after interval * healthy_after. */
    run_until(fx, 2, true, 3000);
    fixture_free(fx);
}

static void test_tcp_check_follows_the_listener(void **state)
{
    fixture *fx = fixture_new(RT_HEALTH_CHECK_TCP, 100);
    evhttp_free(fx->servers[0].http);
    fx->servers[0].http = NULL;
    run_until(fx, 0, false, 3000);
    assert_true(fx->up[1] && fx->up[2]);
    fixture_free(fx);
}

int main(void)
{
    rt_process_init(); /* libevent locking: workers wake the main loop from their threads */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readyz_503_marks_down_and_200_brings_back_after_damping),
        cmocka_unit_test(test_passive_failures_from_a_worker_thread_mark_down),
        cmocka_unit_test(test_tcp_check_follows_the_listener),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
