/* node_health.c - sampler node health: passive reports, active probes, damping (node_health.h). */
#include "node_health.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "net.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const rt_health_check_names[] = {"readyz", "tcp", "none", NULL};

const rt_cfg_field rt_health_fields[] = {
    {.key = "check",
     .type = RT_CFG_ENUM,
     .offset = offsetof(rt_health_cfg, check),
     .def = "readyz",
     .choices = rt_health_check_names,
     .help = "Active check of each sampler node: readyz = GET http://<endpoint host>:<admin_port>"
             "<path> must answer 200; tcp = a TCP connect to the node's OTLP endpoint must "
             "succeed; none = passive checks only (a node marked down is tried again after "
             "interval * healthy_after)."},
    {.key = "admin_port",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_health_cfg, admin_port),
     .def = "8888",
     .min = "1",
     .max = "65535",
     .help = "Port of the samplers' admin listener (where /readyz is served), dialled on the "
             "host of each node's endpoint. The same for every node."},
    {.key = "path",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_health_cfg, path),
     .def = "/readyz",
     .help = "Path of the readiness page for check: readyz."},
    {.key = "interval",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_health_cfg, interval_ns),
     .def = "2s",
     .min = "10ms",
     .max = "10m",
     .help = "Time between two active checks of a node."},
    {.key = "timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_health_cfg, timeout_ns),
     .def = "1s",
     .min = "1ms",
     .max = "1m",
     .help = "An active check that takes longer fails."},
    {.key = "unhealthy_after",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_health_cfg, unhealthy_after),
     .def = "3",
     .min = "1",
     .max = "1000",
     .help = "Consecutive failures that mark a node down: failed active checks, or failed "
             "forwards (connection errors, timeouts, lost connections, retryable statuses after "
             "samplers.retry_budget) counted over all workers."},
    {.key = "healthy_after",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_health_cfg, healthy_after),
     .def = "2",
     .min = "1",
     .max = "1000",
     .help = "Consecutive successful active checks that mark a down node up again (damps "
             "flapping: a node must stay ready this long before its keys move back)."},
    {0},
};

/* ---- shared node counters ----------------------------------------------------------------- */

rt_health_node *rt_health_node_new(rt_health *owner, uint32_t threshold)
{
    rt_health_node *hn = rt_calloc(1, sizeof *hn);
    atomic_init(&hn->refs, 1);
    atomic_init(&hn->fail_streak, 0);
    atomic_init(&hn->report_pending, 0);
    hn->threshold = threshold ? threshold : 1;
    hn->owner = owner;
    return hn;
}

void rt_health_node_ref(rt_health_node *hn)
{
    atomic_fetch_add_explicit(&hn->refs, 1, memory_order_relaxed);
}

void rt_health_node_unref(rt_health_node *hn)
{
    if (hn && atomic_fetch_sub_explicit(&hn->refs, 1, memory_order_acq_rel) == 1) {
        free(hn);
    }
}

/* ---- the checker -------------------------------------------------------------------------- */

typedef struct probe probe;

typedef struct hstate {
    char *id;
    char *endpoint;
    rt_member_protocol protocol;
    rt_health_node *hn;
    bool up;
    int64_t ok_streak, fail_streak; /* active checks */
    uint64_t down_since_ns;
    rt_gauge *up_gauge;
    probe *pr; /* in flight, or NULL */
} hstate;

struct probe {
    rt_health *h;
    hstate *st;
    struct bufferevent *bev;
    struct event *timer;
    char host[256];
    uint16_t port;
};

struct rt_health {
    struct event_base *base;
    const rt_health_cfg *cfg;
    char *up_metric;
    rt_metrics_registry *reg;
    rt_health_publish_fn publish;
    void *publish_arg;
    rt_membership *m; /* borrowed */
    hstate **st;      /* ring index order of m */
    size_t n;
    uint64_t generation;
    struct event *tick;
    struct event *report_ev;
    struct evdns_base *dns;
    char *self; /* a node that is this process: not checked (rt_health_set_self) */
    bool stopped;
};

void rt_health_passive(rt_health_node *hn, bool ok)
{
    if (ok) {
        if (atomic_load_explicit(&hn->fail_streak, memory_order_relaxed) != 0) {
            atomic_store_explicit(&hn->fail_streak, 0, memory_order_relaxed);
        }
        return;
    }
    uint32_t n = atomic_fetch_add_explicit(&hn->fail_streak, 1, memory_order_relaxed) + 1;
    if (n >= hn->threshold && hn->owner &&
        atomic_exchange_explicit(&hn->report_pending, 1, memory_order_acq_rel) == 0) {
        event_active(hn->owner->report_ev, EV_READ, 0); /* thread-safe: libevent locking */
    }
}

static void publish(rt_health *h)
{
    if (h->m == NULL) {
        return;
    }
    bool *up = rt_calloc(h->n ? h->n : 1, sizeof *up);
    rt_health_node **hns = rt_calloc(h->n ? h->n : 1, sizeof *hns);
    for (size_t i = 0; i < h->n; i++) {
        up[i] = h->st[i]->up;
        hns[i] = h->st[i]->hn;
        rt_ring_set_up(h->m->ring, i, up[i]); /* mirror for the /ring page */
    }
    rt_health_snapshot snap = {
        .m = h->m, .n = h->n, .up = up, .nodes = hns, .generation = ++h->generation};
    h->publish(h->publish_arg, &snap);
    free(up);
    free(hns);
}

static void set_up(rt_health *h, hstate *st, bool up, const char *why)
{
    if (st->up == up) {
        return;
    }
    st->up = up;
    st->ok_streak = 0;
    st->fail_streak = 0;
    atomic_store(&st->hn->fail_streak, 0);
    st->down_since_ns = up ? 0 : rt_clock_mono_ns();
    if (st->up_gauge) {
        rt_gauge_set(st->up_gauge, up ? 1 : 0);
    }
    rt_log(up ? RT_LOG_INFO : RT_LOG_WARN, up ? "sampler node up" : "sampler node down",
           "node=%s endpoint=%s reason=\"%s\"", st->id, st->endpoint, why);
    publish(h);
}

static void probe_free(probe *pr)
{
    if (pr == NULL) {
        return;
    }
    if (pr->st) {
        pr->st->pr = NULL;
    }
    if (pr->bev) {
        bufferevent_free(pr->bev);
    }
    if (pr->timer) {
        event_free(pr->timer);
    }
    free(pr);
}

static void probe_done(probe *pr, bool ok, const char *why)
{
    rt_health *h = pr->h;
    hstate *st = pr->st;
    probe_free(pr);
    if (st == NULL || h->stopped) {
        return;
    }
    if (ok) {
        st->fail_streak = 0;
        st->ok_streak++;
        if (!st->up && st->ok_streak >= h->cfg->healthy_after) {
            set_up(h, st, true, "active check passed");
        }
    } else {
        st->ok_streak = 0;
        st->fail_streak++;
        rt_log(RT_LOG_DEBUG, "active check failed", "node=%s reason=\"%s\"", st->id, why);
        if (st->up && st->fail_streak >= h->cfg->unhealthy_after) {
            char reason[200];
            snprintf(reason, sizeof reason, "active check failed %lld times: %s",
                     (long long)st->fail_streak, why);
            set_up(h, st, false, reason);
        }
    }
}

static void probe_timeout(evutil_socket_t fd, short what, void *arg)
{
    probe_done(arg, false, "timeout");
}

static void probe_read(struct bufferevent *bev, void *arg)
{
    probe *pr = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = 0;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
    if (line == NULL) {
        if (evbuffer_get_length(in) > 4096) {
            probe_done(pr, false, "status line too long");
        }
        return;
    }
    int status = 0;
    bool ok = sscanf(line, "HTTP/%*d.%*d %d", &status) == 1 && status == 200;
    char why[96];
    snprintf(why, sizeof why, "readiness answered %d", status);
    free(line);
    probe_done(pr, ok, why);
}

static void probe_event(struct bufferevent *bev, short what, void *arg)
{
    probe *pr = arg;
    if (what & BEV_EVENT_CONNECTED) {
        if (pr->h->cfg->check == RT_HEALTH_CHECK_TCP) {
            probe_done(pr, true, "");
            return;
        }
        evbuffer_add_printf(bufferevent_get_output(bev),
                            "GET %s HTTP/1.0\r\nHost: %s:%u\r\nConnection: close\r\n\r\n",
                            pr->h->cfg->path, pr->host, pr->port);
        bufferevent_enable(bev, EV_READ | EV_WRITE);
        return;
    }
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_EOF)) {
        char why[160];
        int e = EVUTIL_SOCKET_ERROR();
        snprintf(why, sizeof why, "%s",
                 (what & BEV_EVENT_EOF) ? "connection closed before an answer"
                                        : evutil_socket_error_to_string(e));
        probe_done(pr, false, why);
    }
}

static void probe_start(rt_health *h, hstate *st)
{
    probe *pr = rt_calloc(1, sizeof *pr);
    pr->h = h;
    pr->st = st;
    st->pr = pr;
    uint16_t port = 0;
    if (rt_net_split_hostport(st->endpoint, pr->host, sizeof pr->host, &port) != 0) {
        probe_done(pr, false, "bad endpoint");
        return;
    }
    pr->port = h->cfg->check == RT_HEALTH_CHECK_TCP ? port : (uint16_t)h->cfg->admin_port;
    pr->timer = evtimer_new(h->base, probe_timeout, pr);
    struct timeval tv = {(time_t)(h->cfg->timeout_ns / 1000000000ull),
                         (suseconds_t)(h->cfg->timeout_ns % 1000000000ull / 1000)};
    evtimer_add(pr->timer, &tv);
    pr->bev = bufferevent_socket_new(h->base, -1, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(pr->bev, probe_read, NULL, probe_event, pr);
    struct sockaddr_storage ss;
    int sslen = sizeof ss;
    char hp[300];
    snprintf(hp, sizeof hp, strchr(pr->host, ':') ? "[%s]:%u" : "%s:%u", pr->host, pr->port);
    int rc;
    if (evutil_parse_sockaddr_port(hp, (struct sockaddr *)&ss, &sslen) == 0) {
        rc = bufferevent_socket_connect(pr->bev, (struct sockaddr *)&ss, sslen);
    } else {
        if (h->dns == NULL) {
            h->dns = evdns_base_new(h->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        }
        rc = bufferevent_socket_connect_hostname(pr->bev, h->dns, AF_UNSPEC, pr->host, pr->port);
    }
    if (rc != 0) {
        probe_done(pr, false, "connect failed");
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    rt_health *h = arg;
    uint64_t now = rt_clock_mono_ns();
    for (size_t i = 0; i < h->n; i++) {
        hstate *st = h->st[i];
        if (h->self && strcmp(st->id, h->self) == 0) {
            continue;
        }
        if (h->cfg->check == RT_HEALTH_CHECK_NONE) {
            if (!st->up &&
                now - st->down_since_ns >= h->cfg->interval_ns * (uint64_t)h->cfg->healthy_after) {
                set_up(h, st, true, "down for interval * healthy_after (no active check)");
            }
        } else if (st->pr == NULL) {
            probe_start(h, st);
        }
    }
}

/* Main thread, woken by a worker: look at every node with a pending passive report. */
static void on_report(evutil_socket_t fd, short what, void *arg)
{
    rt_health *h = arg;
    for (size_t i = 0; i < h->n; i++) {
        hstate *st = h->st[i];
        if (atomic_exchange(&st->hn->report_pending, 0) == 0) {
            continue;
        }
        uint32_t streak = atomic_load(&st->hn->fail_streak);
        if (st->up && streak >= st->hn->threshold) {
            char reason[96];
            snprintf(reason, sizeof reason, "%u consecutive failed forwards", streak);
            set_up(h, st, false, reason);
        }
    }
}

rt_health *rt_health_new(struct event_base *base, const rt_health_cfg *cfg, const char *up_metric,
                         rt_metrics_registry *reg, rt_health_publish_fn pub, void *arg)
{
    rt_health *h = rt_calloc(1, sizeof *h);
    h->base = base;
    h->cfg = cfg;
    h->up_metric = rt_strdup(up_metric);
    h->reg = reg;
    h->publish = pub;
    h->publish_arg = arg;
    h->report_ev = event_new(base, -1, 0, on_report, h);
    h->tick = event_new(base, -1, EV_PERSIST, on_tick, h);
    struct timeval tv = {(time_t)(cfg->interval_ns / 1000000000ull),
                         (suseconds_t)(cfg->interval_ns % 1000000000ull / 1000)};
    evtimer_add(h->tick, &tv);
    return h;
}

static void hstate_free(hstate *st)
{
    if (st->pr) {
        st->pr->st = NULL;
        probe_free(st->pr);
    }
    rt_health_node_unref(st->hn);
    free(st->id);
    free(st->endpoint);
    free(st);
}

void rt_health_set_membership(rt_health *h, rt_membership *m)
{
    size_t n = m ? rt_ring_size(m->ring) : 0;
    hstate **st = rt_calloc(n ? n : 1, sizeof *st);
    for (size_t i = 0; i < n; i++) {
        const rt_member *mem = rt_membership_node(m, i);
        for (size_t j = 0; j < h->n; j++) {
            hstate *o = h->st[j];
            if (o && strcmp(o->id, mem->id) == 0 && strcmp(o->endpoint, mem->endpoint) == 0 &&
                o->protocol == mem->protocol) {
                st[i] = o;
                h->st[j] = NULL;
                break;
            }
        }
        if (st[i] == NULL) {
            hstate *s = rt_calloc(1, sizeof *s);
            s->id = rt_strdup(mem->id);
            s->endpoint = rt_strdup(mem->endpoint);
            s->protocol = mem->protocol;
            s->up = true;
            s->hn = rt_health_node_new(h, (uint32_t)h->cfg->unhealthy_after);
            if (h->reg) {
                s->up_gauge = rt_metrics_gauge(h->reg, h->up_metric,
                                               "1 while the sampler node takes traffic, 0 while "
                                               "it is marked down.",
                                               "node", s->id, NULL);
                rt_gauge_set(s->up_gauge, 1);
            }
            st[i] = s;
        }
    }
    for (size_t j = 0; j < h->n; j++) {
        if (h->st[j]) {
            if (h->st[j]->up_gauge) {
                rt_gauge_set(h->st[j]->up_gauge, 0); /* no longer in the ring */
            }
            hstate_free(h->st[j]);
        }
    }
    free(h->st);
    h->st = st;
    h->n = n;
    h->m = m;
    publish(h);
}

void rt_health_set_self(rt_health *h, const char *id)
{
    free(h->self);
    h->self = id && id[0] ? rt_strdup(id) : NULL;
}

bool rt_health_force(rt_health *h, const char *id, size_t id_len, bool up, const char *why)
{
    for (size_t i = 0; i < h->n; i++) {
        hstate *st = h->st[i];
        if (strlen(st->id) == id_len && memcmp(st->id, id, id_len) == 0) {
            set_up(h, st, up, why);
            return true;
        }
    }
    return false;
}

size_t rt_health_up_count(const rt_health *h)
{
    size_t n = 0;
    for (size_t i = 0; i < h->n; i++) {
        n += h->st[i]->up;
    }
    return n;
}

bool rt_health_has_ring(const rt_health *h)
{
    return h->m != NULL && h->n > 0;
}

void rt_health_stop(rt_health *h)
{
    h->stopped = true;
    event_del(h->tick);
    for (size_t i = 0; i < h->n; i++) {
        if (h->st[i]->pr) {
            probe_free(h->st[i]->pr);
        }
    }
}

void rt_health_free(rt_health *h)
{
    if (h == NULL) {
        return;
    }
    rt_health_stop(h);
    for (size_t i = 0; i < h->n; i++) {
        hstate_free(h->st[i]);
    }
    free(h->st);
    event_free(h->tick);
    event_free(h->report_ev);
    if (h->dns) {
        evdns_base_free(h->dns, 0);
    }
    free(h->up_metric);
    free(h->self);
    free(h);
}
