/* router.c - ringtail-router's config table and its daemon glue (see router.h).
 *
 * Ownership: rt_router (hung on rt_router_cfg.rt between setup and teardown) owns the health
 * checker, the intake, the client TLS contexts and one rt_fwd per worker (each created, used
 * and freed on its worker's thread). Views are built by the health checker on the main thread
 * and installed on every worker with rt_workers_run_on_each, so all workers switch before the
 * main thread goes on.
 */
#include "router.h"

#include "alloc.h"
#include "clock.h"
#include "forward.h"
#include "log.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const protocol_names[] = {"ring", "http", "grpc", NULL};

static const rt_cfg_field samplers_fields[] = {
    {.key = "protocol",
     .type = RT_CFG_ENUM,
     .offset = offsetof(rt_router_samplers_cfg, protocol),
     .def = "ring",
     .choices = protocol_names,
     .help = "How to send to samplers: ring = as the ring file says (its `protocol`, or a "
             "node's own), http = OTLP/HTTP protobuf, grpc = OTLP/gRPC, for every node."},
    {.key = "timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_router_samplers_cfg, timeout_ns),
     .def = "5s",
     .min = "1ms",
     .max = "10m",
     .help = "Time limit of one attempt to send a part to a sampler (connect to answer)."},
    {.key = "retry_budget",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_router_samplers_cfg, retry_budget_ns),
     .def = "1s",
     .min = "1ms",
     .max = "10m",
     .help = "How long a part is retried on its owner (connection errors, timeouts, 429/502/"
             "503/504 with backoff or the sampler's Retry-After) before it moves to the "
             "successors of its keys. Must be shorter than request_deadline."},
    {.key = "request_deadline",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_router_samplers_cfg, request_deadline_ns),
     .def = "10s",
     .min = "10ms",
     .max = "10m",
     .help = "How long a client request may wait for every owner to acknowledge its part; then "
             "the client gets 503 / UNAVAILABLE with Retry-After. Also bounds the drain on "
             "SIGTERM."},
    {.key = "max_inflight",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_router_samplers_cfg, max_inflight),
     .def = "256",
     .min = "1",
     .max = "1000000",
     .help = "Parts in flight to one node from one worker (queued, sending or waiting to "
             "retry). Beyond it the client gets 429 / RESOURCE_EXHAUSTED instead of queueing."},
    {.key = "connections",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_router_samplers_cfg, connections),
     .def = "4",
     .min = "1",
     .max = "1024",
     .help = "Keep-alive connections to one node from one worker (OTLP/HTTP carries one request "
             "per connection at a time; gRPC multiplexes, 1 is usually enough)."},
    {.key = "gzip",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_router_samplers_cfg, gzip),
     .def = "false",
     .help = "Compress parts sent to samplers (costs CPU on both sides; worth it across zones)."},
    {.key = "mark_deadline",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_router_samplers_cfg, mark_deadline),
     .def = "true",
     .help = "Put in every part the time this router stops waiting for it (a ringtail field that "
             "other OTLP receivers skip): a ringtail-sampler that gets to a part only after that "
             "refuses it (503), instead of keeping spans the router has meanwhile sent to "
             "another node. Off for receivers that refuse unknown fields."},
    {.key = "retry_after",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_router_samplers_cfg, retry_after_s),
     .def = "1",
     .min = "1",
     .max = "3600",
     .help = "Seconds told to clients (Retry-After / RetryInfo) with 429 and 503 answers."},
    {.key = "tls",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_router_samplers_cfg, tls),
     .sub = rt_tls_client_fields,
     .help = "TLS (and mTLS) for connections to samplers."},
    {0},
};

const rt_cfg_field rt_router_fields[] = {
    RT_DAEMON_FIELDS(rt_router_cfg, daemon),
    {.key = "listeners",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_router_cfg, listeners),
     .sub = rt_intake_fields,
     .help = "The OTLP listeners clients send to."},
    {.key = "samplers",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_router_cfg, samplers),
     .sub = samplers_fields,
     .help = "How parts are sent to the sampler nodes of the ring."},
    {.key = "health",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_router_cfg, health),
     .sub = rt_health_fields,
     .help = "How sampler nodes are marked down and up again."},
    {0},
};

int rt_router_check(void *cfgp, char *err, size_t errlen)
{
    rt_router_cfg *cfg = cfgp;
    const rt_router_samplers_cfg *s = &cfg->samplers;
    char a[32], b[32];
    if (s->retry_budget_ns >= s->request_deadline_ns) {
        snprintf(err, errlen,
                 "samplers.retry_budget (%s) must be shorter than samplers.request_deadline (%s): "
                 "a part must be able to move to a successor before the client is answered",
                 rt_cfg_format_duration(s->retry_budget_ns, a, sizeof a),
                 rt_cfg_format_duration(s->request_deadline_ns, b, sizeof b));
        return -1;
    }
    bool cert = s->tls.cert && s->tls.cert[0], key = s->tls.key && s->tls.key[0];
    if (cert != key) {
        snprintf(err, errlen, "samplers.tls: cert and key must be given together");
        return -1;
    }
    if (cfg->health.timeout_ns > cfg->health.interval_ns) {
        snprintf(err, errlen, "health.timeout (%s) must not be longer than health.interval (%s)",
                 rt_cfg_format_duration(cfg->health.timeout_ns, a, sizeof a),
                 rt_cfg_format_duration(cfg->health.interval_ns, b, sizeof b));
        return -1;
    }
    return 0;
}

/* ---- the running router ------------------------------------------------------------------- */

struct rt_router {
    rt_daemon *d;
    rt_router_cfg *cfg;
    rt_workers *pool;
    size_t n_workers;
    rt_fwd **fwd;
    rt_fwd_metrics metrics;
    SSL_CTX *tls_http, *tls_grpc;
    rt_health *health;
    rt_intake *intake;
    struct event *drain_ev;
    uint64_t drain_deadline_ns;
};

typedef struct view_task {
    rt_router *rt;
    rt_view *view;
} view_task;

static void fwd_create(rt_worker *w, void *arg)
{
    rt_router *rt = arg;
    const rt_router_samplers_cfg *s = &rt->cfg->samplers;
    rt_fwd_opts o = {
        .protocol = s->protocol - 1,
        .timeout_ms = (uint32_t)(s->timeout_ns / 1000000u),
        .max_inflight = (uint32_t)s->max_inflight,
        .connections = (uint32_t)s->connections,
        .gzip = s->gzip,
        .tls_http = rt->tls_http,
        .tls_grpc = rt->tls_grpc,
        .server_name = s->tls.server_name,
        .retry_budget_ns = s->retry_budget_ns,
        .request_deadline_ns = s->request_deadline_ns,
        .retry_after_s = (uint32_t)s->retry_after_s,
        .mark_deadline = s->mark_deadline,
        .metrics = &rt->metrics,
    };
    if (o.timeout_ms == 0) {
        o.timeout_ms = 1;
    }
    int i = rt_worker_index(w);
    rt->fwd[i] = rt_fwd_new(rt_worker_base(w), (size_t)i, &o);
}

static void fwd_destroy(rt_worker *w, void *arg)
{
    rt_router *rt = arg;
    int i = rt_worker_index(w);
    rt_fwd_free(rt->fwd[i]);
    rt->fwd[i] = NULL;
}

static void fwd_install(rt_worker *w, void *arg)
{
    view_task *t = arg;
    rt_fwd *f = t->rt->fwd[rt_worker_index(w)];
    if (f) {
        rt_fwd_set_view(f, t->view);
    }
}

/* A change of node state: build the workers' view of it and install it on every worker. */
static void on_health(void *arg, const rt_health_snapshot *snap)
{
    rt_router *rt = arg;
    rt_view *view = rt_view_new(snap->m, snap->up, snap->nodes, rt->n_workers, snap->generation,
                                rt_daemon_metrics(rt->d));
    view_task t = {rt, view};
    rt_workers_run_on_each(rt->pool, fwd_install, &t);
    rt_log(RT_LOG_INFO, "ring view installed", "generation=%llu nodes=%zu up=%zu",
           (unsigned long long)view->generation, view->n, view->up_count);
    rt_view_unref(view);
}

static void on_ring_changed(void *arg, rt_membership *m)
{
    rt_router *rt = arg;
    rt_health_set_membership(rt->health, m);
}

static bool on_ready(void *arg, char *reason, size_t cap)
{
    rt_router *rt = arg;
    if (!rt_health_has_ring(rt->health)) {
        snprintf(reason, cap, "no ring loaded");
        return false;
    }
    if (rt_health_up_count(rt->health) == 0) {
        snprintf(reason, cap, "no sampler node is up");
        return false;
    }
    return true;
}

static size_t active_requests(rt_router *rt)
{
    size_t n = 0;
    for (size_t i = 0; i < rt->n_workers; i++) {
        if (rt->fwd[i]) {
            n += rt_fwd_active(rt->fwd[i]);
        }
    }
    return n;
}

static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    rt_router *rt = arg;
    size_t n = active_requests(rt);
    if (n == 0 || rt_clock_mono_ns() >= rt->drain_deadline_ns) {
        if (n) {
            rt_log(RT_LOG_WARN, "drain deadline passed; answering the rest 503", "requests=%zu", n);
        } else {
            rt_log(RT_LOG_INFO, "drained: every client request answered", "%s", "");
        }
        event_del(rt->drain_ev);
        rt_daemon_stop_done(rt->d);
    }
}

static void on_stop(void *arg, rt_daemon *d)
{
    rt_router *rt = arg;
    rt_intake_close(rt->intake);
    rt->drain_deadline_ns = rt_clock_mono_ns() + rt->cfg->samplers.request_deadline_ns;
    rt->drain_ev = event_new(rt_daemon_main_base(d), -1, EV_PERSIST, on_drain_tick, rt);
    struct timeval tv = {0, 20000};
    event_add(rt->drain_ev, &tv);
    on_drain_tick(-1, 0, rt);
}

static void *worker_arg(rt_worker *w, void *arg)
{
    rt_router *rt = arg;
    return rt->fwd[rt_worker_index(w)];
}

int rt_router_setup(rt_daemon *d, void *cfgp)
{
    rt_router_cfg *cfg = cfgp;
    rt_router *rt = rt_calloc(1, sizeof *rt);
    cfg->rt = rt;
    rt->d = d;
    rt->cfg = cfg;
    rt->pool = rt_daemon_workers(d);
    rt->n_workers = (size_t)rt_workers_count(rt->pool);
    rt->fwd = rt_calloc(rt->n_workers, sizeof *rt->fwd);
    char err[512];
    if (rt_tls_client_from_cfg(&cfg->samplers.tls, false, &rt->tls_http, err, sizeof err) != 0 ||
        rt_tls_client_from_cfg(&cfg->samplers.tls, true, &rt->tls_grpc, err, sizeof err) != 0) {
        rt_log(RT_LOG_ERROR, "samplers.tls cannot be used", "reason=\"%s\"", err);
        return -1;
    }
    rt_fwd_metrics_init(&rt->metrics, rt_daemon_metrics(d));
    rt_workers_run_on_each(rt->pool, fwd_create, rt);
    rt->health = rt_health_new(rt_daemon_main_base(d), &cfg->health, "ringtail_router_node_up",
                               rt_daemon_metrics(d), on_health, rt);
    rt_daemon_hooks hooks = {
        .ring_changed = on_ring_changed,
        .stop = on_stop,
        .ready = on_ready,
        .arg = rt,
    };
    rt_daemon_set_hooks(d, &hooks);
    /* The router forwards span bytes unread: a structural check is enough here, and its split
     * walk is that check (forward.c answers a malformed request 400 before sending anything);
     * the samplers validate everything (and their 400 comes back as rejected spans). */
    cfg->listeners.handler_checks = true;
    rt->intake =
        rt_intake_open(&cfg->listeners, rt->pool, rt_fwd_handle, worker_arg, rt, err, sizeof err);
    if (rt->intake == NULL) {
        rt_log(RT_LOG_ERROR, "cannot open the OTLP listeners", "reason=\"%s\"", err);
        return -1;
    }
    rt_log(RT_LOG_INFO, "router listening", "http_port=%u grpc_port=%u",
           rt_intake_http_port(rt->intake), rt_intake_grpc_port(rt->intake));
    return 0;
}

void rt_router_teardown(rt_daemon *d, void *cfgp)
{
    rt_router_cfg *cfg = cfgp;
    rt_router *rt = cfg->rt;
    if (rt == NULL) {
        return;
    }
    if (rt->drain_ev) {
        event_free(rt->drain_ev);
    }
    rt_intake_free(rt->intake);
    if (rt->health) {
        rt_health_stop(rt->health);
    }
    rt_workers_run_on_each(rt->pool, fwd_destroy, rt);
    rt_health_free(rt->health);
    SSL_CTX_free(rt->tls_http);
    SSL_CTX_free(rt->tls_grpc);
    free(rt->fwd);
    free(rt);
    cfg->rt = NULL;
}
