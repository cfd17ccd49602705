/* peer_view.h - an immutable, refcounted snapshot of the ring as one sampler sees it: the nodes
 * of the membership file in force, which of them are up (its peer health checks, and what peers
 * announced), and where this sampler is in it.
 *
 * The main thread builds a view on every change (peers.c) and installs it on every worker; a
 * worker reads its view without locks and never sees it change under its feet. All workers share
 * one view and its ring: lookups only read it.
 *
 * Ownership of a trace id: the ring's owner among the nodes that are up. This sampler is up in
 * its own view while it is a member and not leaving; a sampler whose id is not in the file
 * (started before the ring lists it), or that is draining, owns nothing, so every trace it is
 * sent belongs to someone else.
 */
#ifndef RT_PEER_VIEW_H
#define RT_PEER_VIEW_H

#include "membership.h"
#include "node_health.h"
#include "ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_peer_node {
    char *id;
    char *endpoint;
    rt_member_protocol protocol;
    bool up;
    rt_health_node *health; /* ref held by the view (passive reports); NULL for self */
} rt_peer_node;

typedef struct rt_peer_view {
    _Atomic unsigned refs;
    uint64_t generation; /* increases with every view one process builds */
    size_t n;
    rt_peer_node *nodes; /* ring index order */
    rt_ring *ring;       /* up flags applied; read-only after build */
    int self;            /* ring index of this sampler, -1 when the file does not list it */
    bool self_up;        /* a member that is not leaving */
    size_t up_count;
    uint64_t content_hash; /* rt_ring_content_hash of the membership */
} rt_peer_view;

/* Build a view of `m` in which node i is up when up[i] (ring index order), except this sampler
 * (`self_id`), which is up exactly when `self_up`. health[i] is referenced (may be NULL). The
 * ring is a clone of m->ring (its table shared, rt_ring_clone). */
rt_peer_view *rt_peer_view_new(const rt_membership *m, const bool *up,
                               rt_health_node *const *health, const char *self_id, bool self_up,
                               uint64_t generation);
void rt_peer_view_ref(rt_peer_view *v);
/* Drop a reference; the last frees the view. NULL is a no-op. */
void rt_peer_view_unref(rt_peer_view *v);

/* The owner of placement key `key` (rt_ring_key of a trace id): a ring index, or -1 when no node
 * is up. */
static inline int rt_peer_view_owner(const rt_peer_view *v, uint64_t key)
{
    return rt_ring_lookup_key(v->ring, key);
}

/* True when spans of `key` stay here by this view alone: this sampler owns the key, or no node
 * is up to send them to. */
static inline bool rt_peer_view_local(const rt_peer_view *v, uint64_t key)
{
    int o = rt_ring_lookup_key(v->ring, key);
    return o < 0 || o == v->self;
}

/* True when the view can send anything anywhere: some node other than this sampler is up. */
bool rt_peer_view_has_peers(const rt_peer_view *v);

#endif
