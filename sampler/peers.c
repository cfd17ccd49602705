/* peers.c - the sampler among its peers: peer health, views, joining and leaving (see peers.h). */
#include "peers.h"

#include "alloc.h"
#include "log.h"
#include "otlp_client.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAVE_WAIT_MS 1000 /* longest wait for peers to acknowledge LEAVING */

static const char *const protocol_names[] = {"ring", "http", "grpc", NULL};
static const char *const state_names[RT_PEERS_STATE_COUNT_] = {"standalone", "waiting", "member",
                                                               "leaving"};

const rt_cfg_field rt_peers_fields[] = {
    {.key = "protocol",
     .type = RT_CFG_ENUM,
     .offset = offsetof(rt_peers_cfg, protocol),
     .def = "ring",
     .choices = protocol_names,
     .help = "How to reach the other samplers: ring = as the ring file says for each node, http "
             "= OTLP/HTTP, grpc = OTLP/gRPC."},
    {.key = "timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_peers_cfg, timeout_ns),
     .def = "2s",
     .min = "10ms",
     .max = "10m",
     .help = "How long a send to a peer (forwarded spans, a hand-off, an announcement) may take, "
             "retries of connection errors, timeouts and 429/503 included. Then what it carried "
             "is kept here (and counted), and the peer refuses the request if it gets to it "
             "later, so no span is held twice."},
    {.key = "connections",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_peers_cfg, connections),
     .def = "2",
     .min = "1",
     .max = "64",
     .help = "Keep-alive connections to each peer from each worker."},
    {.key = "gzip",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_peers_cfg, gzip),
     .def = "false",
     .help = "Compress what is sent to peers."},
    {.key = "tls",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_peers_cfg, tls),
     .sub = rt_tls_client_fields,
     .help = "TLS (and mTLS) for connections to peers."},
    {.key = "health",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_peers_cfg, health),
     .sub = rt_health_fields,
     .help = "How peers are marked down and up again (the router's health keys); announcements "
             "of a peer joining or leaving take effect at once."},
    {.key = "handoff_rate",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_peers_cfg, handoff_rate),
     .def = "8MiB",
     .min = "64KiB",
     .max = "10GiB",
     .help = "Bytes per second (whole process) of pending traces and decisions moved to their "
             "new owner after a ring change. Every sampler sends at this rate, and one that "
             "joins receives from all of them: at 8 MiB/s from each of three, about a sixth of "
             "what one core ingests (bench/RESULTS.md). A trace that comes due before its turn "
             "moves at once."},
    {.key = "handoff_batch",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_peers_cfg, handoff_batch),
     .def = "256KiB",
     .min = "16KiB",
     .max = "32MiB",
     .help = "Size of one hand-off request: the receiver ingests one in a few milliseconds, "
             "between the requests of its other clients."},
    {.key = "handoff_inflight",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_peers_cfg, handoff_inflight),
     .def = "8MiB",
     .min = "16KiB",
     .max = "1GiB",
     .help = "Hand-off bytes sent and not yet acknowledged (whole process); bounds the memory a "
             "transfer takes."},
    {.key = "drain_quiet",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_peers_cfg, drain_quiet_ns),
     .def = "1s",
     .min = "10ms",
     .max = "10m",
     .help = "On SIGTERM, once everything is handed over, keep forwarding what arrives until no "
             "request came for this long (the routers have moved this sampler's keys), at most "
             "half of shutdown_timeout."},
    {0},
};

const char *rt_peers_state_name(rt_peers_state s)
{
    return (unsigned)s < RT_PEERS_STATE_COUNT_ ? state_names[s] : "?";
}

typedef struct inbox_item {
    struct inbox_item *next;
    char *sender;
    size_t len;
    rt_peer_announce a;
} inbox_item;

struct rt_peers {
    struct event_base *base;
    const rt_peers_cfg *cfg;
    rt_peers_hooks hooks;
    char *self;
    rt_health *health;
    rt_membership *m; /* borrowed */
    rt_peer_view *view;
    rt_peers_state state;
    bool started;
    bool member; /* the membership in force lists self */
    uint64_t generation;
    /* leaving */
    void (*leave_done)(void *);
    void *leave_arg;
    bool announcing;
    struct event *settled_ev, *leave_timer;
    /* announcements received, from the workers */
    pthread_mutex_t lock;
    inbox_item *inbox;
    struct event *inbox_ev;
    rt_gauge *state_gauge[RT_PEERS_STATE_COUNT_];
    rt_counter *announce_sent[3], *announce_received[3];
};

static void set_state(rt_peers *p, rt_peers_state s)
{
    if (p->state == s) {
        return;
    }
    p->state = s;
    for (int i = 0; i < RT_PEERS_STATE_COUNT_; i++) {
        rt_gauge_set(p->state_gauge[i], i == (int)s ? 1 : 0);
    }
}

/* A view of the health snapshot, installed on every worker. */
static void on_health(void *arg, const rt_health_snapshot *snap)
{
    rt_peers *p = arg;
    bool self_up = p->member && p->state != RT_PEERS_LEAVING;
    rt_peer_view *v =
        rt_peer_view_new(snap->m, snap->up, snap->nodes, p->self, self_up, ++p->generation);
    rt_peer_view_unref(p->view);
    p->view = v;
    p->hooks.install(p->hooks.arg, v);
    rt_log(RT_LOG_INFO, "ring view installed", "generation=%llu nodes=%zu up=%zu state=%s",
           (unsigned long long)v->generation, v->n, v->up_count, rt_peers_state_name(p->state));
}

static void announce(rt_peers *p, rt_peer_announce a)
{
    if (p->view == NULL || !rt_peer_view_has_peers(p->view)) {
        return;
    }
    rt_counter_inc(p->announce_sent[a]);
    p->announcing = true;
    p->hooks.announce(p->hooks.arg, a);
}

/* Rebuild the view from the checker's current state (this sampler's own part changed). */
static void republish(rt_peers *p)
{
    if (p->m != NULL) {
        rt_health_set_membership(p->health, p->m);
    }
}

static void finish_leave(rt_peers *p)
{
    if (p->leave_done == NULL) {
        return;
    }
    event_del(p->leave_timer);
    republish(p); /* the view without this sampler: everything it holds moves */
    void (*done)(void *) = p->leave_done;
    p->leave_done = NULL;
    done(p->leave_arg);
}

static void on_settled(evutil_socket_t fd, short what, void *arg)
{
    rt_peers *p = arg;
    p->announcing = false;
    if (p->state == RT_PEERS_LEAVING) {
        finish_leave(p);
    }
}

static void on_leave_timer(evutil_socket_t fd, short what, void *arg)
{
    rt_peers *p = arg;
    rt_log(RT_LOG_WARN, "not every peer acknowledged LEAVING in time; handing over anyway", NULL);
    finish_leave(p);
}

static void on_inbox(evutil_socket_t fd, short what, void *arg)
{
    rt_peers *p = arg;
    pthread_mutex_lock(&p->lock);
    inbox_item *it = p->inbox;
    p->inbox = NULL;
    pthread_mutex_unlock(&p->lock);
    /* Oldest first (the list was built newest first). */
    inbox_item *rev = NULL;
    while (it) {
        inbox_item *next = it->next;
        it->next = rev;
        rev = it;
        it = next;
    }
    for (it = rev; it;) {
        inbox_item *next = it->next;
        if (it->a == RT_PEER_ANNOUNCE_UP || it->a == RT_PEER_ANNOUNCE_LEAVING) {
            bool up = it->a == RT_PEER_ANNOUNCE_UP;
            rt_counter_inc(p->announce_received[it->a]);
            if (p->self == NULL || strlen(p->self) != it->len ||
                memcmp(p->self, it->sender, it->len) != 0) {
                bool known = rt_health_force(p->health, it->sender, it->len, up,
                                             up ? "the peer announced it joins"
                                                : "the peer announced it is leaving");
                rt_log(RT_LOG_INFO, up ? "peer announced UP" : "peer announced LEAVING",
                       "node=%.*s known=%s", (int)it->len, it->sender, known ? "true" : "false");
            }
        }
        free(it->sender);
        free(it);
        it = next;
    }
}

rt_peers *rt_peers_new(struct event_base *main_base, const rt_peers_cfg *cfg, const char *self_id,
                       rt_metrics_registry *reg, const rt_peers_hooks *hooks)
{
    rt_peers *p = rt_calloc(1, sizeof *p);
    p->base = main_base;
    p->cfg = cfg;
    p->hooks = *hooks;
    p->self = rt_strdup(self_id ? self_id : "");
    p->state = RT_PEERS_STANDALONE;
    pthread_mutex_init(&p->lock, NULL);
    p->health =
        rt_health_new(main_base, &cfg->health, "ringtail_sampler_peer_up", reg, on_health, p);
    rt_health_set_self(p->health, p->self);
    p->settled_ev = event_new(main_base, -1, 0, on_settled, p);
    p->leave_timer = evtimer_new(main_base, on_leave_timer, p);
    p->inbox_ev = event_new(main_base, -1, 0, on_inbox, p);
    for (int i = 0; i < RT_PEERS_STATE_COUNT_; i++) {
        p->state_gauge[i] = rt_metrics_gauge(
            reg, "ringtail_sampler_ring_state",
            "1 for this sampler's part in the ring: standalone (no ring file), waiting (not "
            "listed yet), member, leaving (draining).",
            "state", state_names[i], NULL);
        rt_gauge_set(p->state_gauge[i], i == RT_PEERS_STANDALONE ? 1 : 0);
    }
    static const char *const an[3] = {"none", "up", "leaving"};
    for (int i = 1; i < 3; i++) {
        p->announce_sent[i] = rt_metrics_counter(
            reg, "ringtail_sampler_announcements_total",
            "Announcements of a sampler joining (up) or leaving the ring, sent to every peer "
            "(sent: once per announcement) or received.",
            "direction", "sent", "kind", an[i], NULL);
        p->announce_received[i] =
            rt_metrics_counter(reg, "ringtail_sampler_announcements_total",
                               "Announcements of a sampler joining (up) or leaving the ring, sent "
                               "to every peer (sent: once per announcement) or received.",
                               "direction", "received", "kind", an[i], NULL);
    }
    return p;
}

void rt_peers_set_membership(rt_peers *p, rt_membership *m)
{
    p->m = m;
    bool was = p->member;
    p->member = m != NULL && rt_ring_find(m->ring, p->self) >= 0;
    if (p->state != RT_PEERS_LEAVING) {
        set_state(p, m == NULL ? RT_PEERS_STANDALONE
                               : (p->member ? RT_PEERS_MEMBER : RT_PEERS_WAITING));
    }
    if (m != NULL && !p->member && (was || p->generation == 0)) {
        rt_log(RT_LOG_WARN,
               "this sampler is not in the ring: it owns no traces and forwards what it is sent "
               "to their owners; it joins when the ring file lists it",
               "node_id=%s nodes=%zu", p->self, rt_ring_size(m->ring));
    }
    rt_health_set_membership(p->health, m); /* publishes: the view is installed */
    if (p->member && !was && p->state == RT_PEERS_MEMBER) {
        rt_log(RT_LOG_INFO, "joined the ring", "node_id=%s nodes=%zu", p->self,
               rt_ring_size(m->ring));
        if (p->started) {
            announce(p, RT_PEER_ANNOUNCE_UP);
        }
    }
}

void rt_peers_start(rt_peers *p)
{
    p->started = true;
    if (p->state == RT_PEERS_MEMBER) {
        announce(p, RT_PEER_ANNOUNCE_UP);
    }
}

void rt_peers_leave(rt_peers *p, void (*done)(void *arg), void *arg)
{
    bool was_member = p->state == RT_PEERS_MEMBER;
    set_state(p, RT_PEERS_LEAVING);
    p->leave_done = done;
    p->leave_arg = arg;
    if (!was_member || p->view == NULL || !rt_peer_view_has_peers(p->view)) {
        finish_leave(p);
        return;
    }
    rt_log(RT_LOG_INFO, "leaving the ring: announcing it, then handing every trace over",
           "node_id=%s", p->self);
    announce(p, RT_PEER_ANNOUNCE_LEAVING);
    struct timeval tv = {LEAVE_WAIT_MS / 1000, (LEAVE_WAIT_MS % 1000) * 1000};
    evtimer_add(p->leave_timer, &tv);
}

void rt_peers_announce_settled(rt_peers *p)
{
    event_active(p->settled_ev, EV_READ, 0);
}

void rt_peers_announced(rt_peers *p, const uint8_t *sender, size_t len, rt_peer_announce a)
{
    inbox_item *it = rt_malloc(sizeof *it);
    it->sender = rt_strndup((const char *)sender, len);
    it->len = len;
    it->a = a;
    pthread_mutex_lock(&p->lock);
    it->next = p->inbox;
    p->inbox = it;
    pthread_mutex_unlock(&p->lock);
    event_active(p->inbox_ev, EV_READ, 0);
}

bool rt_peers_has_peers(const rt_peers *p)
{
    return p->view != NULL && rt_peer_view_has_peers(p->view);
}

void rt_peers_ring_info(const rt_peers *p, rt_buf *json)
{
    char id[256];
    rt_log_quote(p->self, id, sizeof id);
    double share = 0.0;
    if (p->m != NULL && p->member) {
        share = rt_ring_node_share(p->m->ring, (size_t)rt_ring_find(p->m->ring, p->self));
    }
    rt_buf_printf(json, ",\"self\":{\"id\":\"%s\",\"state\":\"%s\",\"share\":%.6f}", id,
                  rt_peers_state_name(p->state), share);
}

void rt_peers_free(rt_peers *p)
{
    if (p == NULL) {
        return;
    }
    rt_health_free(p->health);
    rt_peer_view_unref(p->view);
    event_free(p->settled_ev);
    event_free(p->leave_timer);
    event_free(p->inbox_ev);
    inbox_item *it = p->inbox;
    while (it) {
        inbox_item *next = it->next;
        free(it->sender);
        free(it);
        it = next;
    }
    pthread_mutex_destroy(&p->lock);
    free(p->self);
    free(p);
}

/* ---- sending an announcement (on a worker) ------------------------------------------------ */

typedef struct announce_run {
    size_t pending;
    void (*done)(void *);
    void *arg;
} announce_run;

static void announce_settle(announce_run *r)
{
    if (--r->pending == 0) {
        r->done(r->arg);
        free(r);
    }
}

static void on_announced(const rt_otlp_client_result *res, void *arg)
{
    announce_run *r = arg;
    if (res->outcome != RT_OTLP_CLIENT_OK && res->outcome != RT_OTLP_CLIENT_PARTIAL) {
        RT_LOG_RL(RT_LOG_WARN, "a peer did not take an announcement",
                  "outcome=%s reason=%s message=\"%s\"", rt_otlp_client_outcome_name(res->outcome),
                  rt_otlp_client_fail_name(res->fail), res->message);
    }
    announce_settle(r);
}

size_t rt_peers_send_announce(rt_peer_clients *pc, const char *self, rt_peer_announce a,
                              void (*done)(void *arg), void *arg)
{
    rt_peer_view *v = rt_peer_clients_view(pc);
    announce_run *r = rt_malloc(sizeof *r);
    *r = (announce_run){1, done, arg};
    rt_peer_env_writer w;
    rt_peer_env_writer_init(&w);
    rt_buf body = RT_BUF_INIT;
    size_t sent = 0;
    for (size_t i = 0; v != NULL && i < v->n; i++) {
        if ((int)i == v->self) {
            continue;
        }
        rt_buf_reset(&body);
        rt_peer_env_begin(&w, RT_PEER_ANNOUNCE, self, v->content_hash);
        rt_peer_env_announce(&w, a);
        rt_peer_env_finish(&w, &body);
        if (rt_peer_clients_send(pc, (int)i, body.data, body.len, on_announced, r) == 0) {
            r->pending++;
            sent++;
        }
    }
    rt_buf_free(&body);
    rt_peer_env_writer_free(&w);
    announce_settle(r);
    return sent;
}
