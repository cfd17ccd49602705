/* peer_view.c - a sampler's snapshot of the ring (see peer_view.h). */
#include "peer_view.h"

#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static void view_free(rt_peer_view *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->nodes[i].id);
        free(v->nodes[i].endpoint);
        rt_health_node_unref(v->nodes[i].health);
    }
    free(v->nodes);
    rt_ring_free(v->ring);
    free(v);
}

rt_peer_view *rt_peer_view_new(const rt_membership *m, const bool *up,
                               rt_health_node *const *health, const char *self_id, bool self_up,
                               uint64_t generation)
{
    size_t n = rt_ring_size(m->ring);
    rt_peer_view *v = rt_calloc(1, sizeof *v);
    atomic_init(&v->refs, 1);
    v->generation = generation;
    v->n = n;
    v->self = -1;
    v->nodes = rt_calloc(n ? n : 1, sizeof *v->nodes);
    v->content_hash = rt_ring_content_hash(m->ring);
    for (size_t i = 0; i < n; i++) {
        const rt_member *mem = rt_membership_node(m, i);
        rt_peer_node *pn = &v->nodes[i];
        pn->id = rt_strdup(mem->id);
        pn->endpoint = rt_strdup(mem->endpoint);
        pn->protocol = mem->protocol;
        bool is_self = self_id != NULL && strcmp(mem->id, self_id) == 0;
        pn->up = is_self ? self_up : up[i];
        if (is_self) {
            v->self = (int)i;
            v->self_up = self_up;
        } else if (health && health[i]) {
            pn->health = health[i];
            rt_health_node_ref(pn->health);
        }
        v->up_count += pn->up;
    }
    v->ring = rt_ring_clone(m->ring); /* shares the membership's table: no fill per view */
    for (size_t i = 0; i < n; i++) {
        rt_ring_set_up(v->ring, i, v->nodes[i].up);
    }
    return v;
}

void rt_peer_view_ref(rt_peer_view *v)
{
    atomic_fetch_add_explicit(&v->refs, 1, memory_order_relaxed);
}

void rt_peer_view_unref(rt_peer_view *v)
{
    if (v && atomic_fetch_sub_explicit(&v->refs, 1, memory_order_acq_rel) == 1) {
        view_free(v);
    }
}

bool rt_peer_view_has_peers(const rt_peer_view *v)
{
    return v->up_count > (v->self >= 0 && v->self_up ? 1u : 0u);
}
