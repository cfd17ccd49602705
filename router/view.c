/* view.c - immutable ring snapshots handed to the workers (see view.h). */
#include "view.h"

#include "alloc.h"
#include "node_health.h"

#include <stdio.h>
#include <stdlib.h>

const char *const rt_view_err_names[RT_VIEW_ERR_COUNT_] = {
    "connect", "timeout", "conn_lost", "protocol", "status", "rejected", "throttled",
};

static void view_free(rt_view *v)
{
    if (v == NULL) {
        return;
    }
    for (size_t i = 0; i < v->n; i++) {
        free(v->nodes[i].id);
        free(v->nodes[i].endpoint);
        if (v->nodes[i].health) {
            rt_health_node_unref(v->nodes[i].health);
        }
    }
    free(v->nodes);
    for (size_t i = 0; i < v->n_rings; i++) {
        rt_ring_free(v->rings[i]);
    }
    free(v->rings);
    free(v);
}

rt_view *rt_view_new(const rt_membership *m, const bool *up, rt_health_node *const *health,
                     size_t n_workers, uint64_t generation, rt_metrics_registry *reg)
{
    size_t n = rt_ring_size(m->ring);
    rt_view *v = rt_calloc(1, sizeof *v);
    atomic_init(&v->refs, 1);
    v->generation = generation;
    v->n = n;
    v->nodes = rt_calloc(n, sizeof *v->nodes);
    for (size_t i = 0; i < n; i++) {
        const rt_member *mem = rt_membership_node(m, i);
        rt_view_node *vn = &v->nodes[i];
        vn->id = rt_strdup(mem->id);
        vn->endpoint = rt_strdup(mem->endpoint);
        vn->protocol = mem->protocol;
        vn->up = up[i];
        v->up_count += up[i];
        if (health && health[i]) {
            vn->health = health[i];
            rt_health_node_ref(vn->health);
        }
        if (reg) {
            vn->spans_forwarded = rt_metrics_counter(
                reg, "ringtail_router_spans_forwarded_total",
                "Spans a sampler node acknowledged (accepted in full or in part).", "node", vn->id,
                NULL);
            vn->retries = rt_metrics_counter(
                reg, "ringtail_router_forward_retries_total",
                "Parts re-routed to a successor after the node failed them.", "node", vn->id, NULL);
            for (int e = 0; e < RT_VIEW_ERR_COUNT_; e++) {
                vn->errors[e] =
                    rt_metrics_counter(reg, "ringtail_router_forward_errors_total",
                                       "Forwards to a node that failed, by reason.", "node", vn->id,
                                       "reason", rt_view_err_names[e], NULL);
            }
        }
    }
    /* One private ring per worker: rt_ring_set_up is not thread-safe, and a worker flips flags
     * in its own copy to find a failed part's successor. Each is a clone of the membership's
     * ring: its own flags, the same (immutable) table, so a view costs no table fill (~16 ms
     * each, once per worker and change when they were rebuilt, a stall felt by every process
     * on a small machine). */
    v->n_rings = n_workers;
    v->rings = rt_calloc(n_workers ? n_workers : 1, sizeof *v->rings);
    for (size_t w = 0; w < n_workers; w++) {
        v->rings[w] = rt_ring_clone(m->ring);
        for (size_t i = 0; i < n; i++) {
            rt_ring_set_up(v->rings[w], i, up[i]); /* same membership: index i is node i */
        }
    }
    return v;
}

void rt_view_ref(rt_view *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void rt_view_unref(rt_view *v)
{
    if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
        view_free(v);
    }
}
