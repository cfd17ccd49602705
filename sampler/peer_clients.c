/* peer_clients.c - a worker's clients to its peers (see peer_clients.h). */
#include "peer_clients.h"

#include "alloc.h"
#include "log.h"

#include <stdlib.h>
#include <string.h>

typedef struct peer {
    char *id;
    char *endpoint;
    int protocol; /* rt_otlp_client_protocol */
    rt_otlp_client *client;
    rt_health_node *health; /* ref */
} peer;

struct rt_peer_clients {
    struct event_base *base;
    rt_peer_clients_opts o;
    char *server_name;
    rt_peer_view *view; /* ref */
    peer **peers;       /* view->n entries, ring index order; NULL for self */
    size_t n;
    peer **retired; /* nodes gone from the view whose sends are not all done yet */
    size_t n_retired, cap_retired;
};

/* One send: the caller's callback, and the node for the passive report. */
typedef struct send_ctx {
    rt_health_node *health; /* ref */
    rt_otlp_client_done_fn done;
    void *arg;
} send_ctx;

static int node_protocol(const rt_peer_clients *pc, const rt_peer_node *pn)
{
    if (pc->o.protocol >= 0) {
        return pc->o.protocol;
    }
    return pn->protocol == RT_MEMBER_GRPC ? RT_OTLP_CLIENT_GRPC : RT_OTLP_CLIENT_HTTP;
}

static peer *peer_new(rt_peer_clients *pc, const rt_peer_node *pn)
{
    peer *p = rt_calloc(1, sizeof *p);
    p->id = rt_strdup(pn->id);
    p->endpoint = rt_strdup(pn->endpoint);
    p->protocol = node_protocol(pc, pn);
    rt_otlp_client_opts o = {
        .protocol = (rt_otlp_client_protocol)p->protocol,
        .endpoint = p->endpoint,
        .gzip = pc->o.gzip,
        .tls = p->protocol == RT_OTLP_CLIENT_GRPC ? pc->o.tls_grpc : pc->o.tls_http,
        .server_name = pc->server_name,
        .timeout_ms = pc->o.timeout_ns >= 1000000 ? (uint32_t)(pc->o.timeout_ns / 1000000) : 1,
        .max_conns = pc->o.connections,
        .max_inflight = pc->o.max_inflight,
        .retry = {.initial_ns = 20ull * 1000 * 1000,
                  .max_ns = 500ull * 1000 * 1000,
                  .max_elapsed_ns = pc->o.timeout_ns},
    };
    char err[256];
    p->client = rt_otlp_client_new(pc->base, &o, err, sizeof err);
    if (p->client == NULL) {
        RT_LOG_RL(RT_LOG_ERROR, "cannot create client for peer sampler", "node=%s reason=\"%s\"",
                  p->id, err);
    }
    return p;
}

static void peer_free(peer *p)
{
    if (p == NULL) {
        return;
    }
    rt_otlp_client_free(p->client); /* ends its sends: their callbacks run now */
    rt_health_node_unref(p->health);
    free(p->id);
    free(p->endpoint);
    free(p);
}

rt_peer_clients *rt_peer_clients_new(struct event_base *base, const rt_peer_clients_opts *opts)
{
    rt_peer_clients *pc = rt_calloc(1, sizeof *pc);
    pc->base = base;
    pc->o = *opts;
    pc->server_name =
        opts->server_name && opts->server_name[0] ? rt_strdup(opts->server_name) : NULL;
    pc->o.server_name = NULL;
    return pc;
}

void rt_peer_clients_set_view(rt_peer_clients *pc, rt_peer_view *v)
{
    peer **np = rt_calloc(v->n ? v->n : 1, sizeof *np);
    for (size_t i = 0; i < v->n; i++) {
        const rt_peer_node *pn = &v->nodes[i];
        if ((int)i == v->self) {
            continue;
        }
        int proto = node_protocol(pc, pn);
        for (size_t j = 0; j < pc->n; j++) {
            peer *o = pc->peers[j];
            if (o && strcmp(o->id, pn->id) == 0 && strcmp(o->endpoint, pn->endpoint) == 0 &&
                o->protocol == proto) {
                np[i] = o;
                pc->peers[j] = NULL;
                break;
            }
        }
        if (np[i] == NULL) {
            np[i] = peer_new(pc, pn);
        }
        if (np[i]->health != pn->health) {
            if (pn->health) {
                rt_health_node_ref(pn->health);
            }
            rt_health_node_unref(np[i]->health);
            np[i]->health = pn->health;
        }
    }
    /* Swap first, then free what is gone: callbacks of its sends may look at the new state. */
    peer **old = pc->peers;
    size_t n_old = pc->n;
    rt_peer_view *old_view = pc->view;
    pc->peers = np;
    pc->n = v->n;
    rt_peer_view_ref(v);
    pc->view = v;
    for (size_t j = 0; j < n_old; j++) {
        if (old[j] == NULL) {
            continue;
        }
        if (old[j]->client && rt_otlp_client_inflight(old[j]->client) > 0) {
            /* Its sends may have arrived: let them end with a real answer (rt_peer_clients_reap)
             * rather than cut them off, which would leave the sender unsure whether the node
             * took what it sent. */
            if (pc->n_retired == pc->cap_retired) {
                pc->cap_retired = pc->cap_retired ? pc->cap_retired * 2 : 4;
                pc->retired = rt_realloc(pc->retired, pc->cap_retired * sizeof *pc->retired);
            }
            pc->retired[pc->n_retired++] = old[j];
        } else {
            peer_free(old[j]);
        }
    }
    free(old);
    rt_peer_view_unref(old_view);
}

static void on_sent(const rt_otlp_client_result *res, void *arg)
{
    send_ctx *c = arg;
    if (c->health) {
        rt_health_passive(c->health, res->outcome != RT_OTLP_CLIENT_GAVE_UP ||
                                         res->fail == RT_OTLP_CLIENT_FAIL_SHUTDOWN);
        rt_health_node_unref(c->health);
    }
    c->done(res, c->arg);
    free(c);
}

int rt_peer_clients_send(rt_peer_clients *pc, int node, const uint8_t *body, size_t len,
                         rt_otlp_client_done_fn done, void *arg)
{
    if (node < 0 || (size_t)node >= pc->n || pc->peers[node] == NULL ||
        pc->peers[node]->client == NULL) {
        return -1;
    }
    peer *p = pc->peers[node];
    send_ctx *c = rt_malloc(sizeof *c);
    *c = (send_ctx){p->health, done, arg};
    if (c->health) {
        rt_health_node_ref(c->health);
    }
    if (rt_otlp_client_export(p->client, body, len, on_sent, c) != 0) {
        rt_health_node_unref(c->health);
        free(c);
        return -1;
    }
    return 0;
}

void rt_peer_clients_reap(rt_peer_clients *pc)
{
    size_t k = 0;
    for (size_t i = 0; i < pc->n_retired; i++) {
        peer *p = pc->retired[i];
        if (p->client == NULL || rt_otlp_client_inflight(p->client) == 0) {
            peer_free(p);
        } else {
            pc->retired[k++] = p;
        }
    }
    pc->n_retired = k;
}

rt_peer_view *rt_peer_clients_view(const rt_peer_clients *pc)
{
    return pc->view;
}

void rt_peer_clients_free(rt_peer_clients *pc)
{
    if (pc == NULL) {
        return;
    }
    peer **old = pc->peers;
    size_t n = pc->n;
    pc->peers = NULL;
    pc->n = 0;
    for (size_t j = 0; j < n; j++) {
        peer_free(old[j]);
    }
    free(old);
    for (size_t i = 0; i < pc->n_retired; i++) {
        peer_free(pc->retired[i]);
    }
    free(pc->retired);
    rt_peer_view_unref(pc->view);
    free(pc->server_name);
    free(pc);
}
