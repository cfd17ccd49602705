/* view.h - an immutable, refcounted snapshot of the ring as the router's workers see it.
 *
 * The main thread owns node state (health.c). Each time the membership or a node's up/down state
 * changes it builds a new view and hands it to every worker; workers never lock and never see a
 * view change under their feet. A view holds
 *   - the nodes in ring index order (id, endpoint, protocol, up, metric handles, a ref on the
 *     node's shared health counters), and
 *   - one private copy of the ring per worker, with the down nodes marked. A worker may flip
 *     up/down flags in ITS copy for a moment (to look up a failed part's successor while
 *     excluding the nodes that already failed it) because no other thread reads that copy.
 *
 * Ownership: rt_view_new returns a view with one reference; rt_view_ref / rt_view_unref are
 * atomic, and the last unref frees everything (rings, strings, health refs).
 */
#ifndef RT_ROUTER_VIEW_H
#define RT_ROUTER_VIEW_H

#include "membership.h"
#include "metrics.h"
#include "otlp_client.h"
#include "ring.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_health_node rt_health_node;

/* Reasons a forward can fail, as counted in ringtail_router_forward_errors_total{reason}. */
typedef enum rt_view_err {
    RT_VIEW_ERR_CONNECT = 0,
    RT_VIEW_ERR_TIMEOUT,
    RT_VIEW_ERR_CONN_LOST,
    RT_VIEW_ERR_PROTOCOL,
    RT_VIEW_ERR_STATUS,    /* the sampler kept answering a retryable error status */
    RT_VIEW_ERR_REJECTED,  /* the sampler refused the data (400, 413, INVALID_ARGUMENT) */
    RT_VIEW_ERR_THROTTLED, /* the node's in-flight cap was reached on this worker */
    RT_VIEW_ERR_COUNT_,
} rt_view_err;

extern const char *const rt_view_err_names[RT_VIEW_ERR_COUNT_];

typedef struct rt_view_node {
    char *id;
    char *endpoint;
    rt_member_protocol protocol;
    bool up;
    rt_health_node *health; /* ref held by the view */
    /* Series in the process registry (valid for its whole life). */
    rt_counter *spans_forwarded;
    rt_counter *retries;
    rt_counter *errors[RT_VIEW_ERR_COUNT_];
} rt_view_node;

typedef struct rt_view {
    _Atomic unsigned refs;
    uint64_t generation; /* increases with every view built by one process */
    size_t n;
    rt_view_node *nodes; /* ring index order */
    size_t up_count;
    rt_ring **rings; /* one private copy per worker */
    size_t n_rings;
} rt_view;

/* Build a view of membership `m` for `n_workers` workers: node i is up when up[i] (ring index
 * order); health[i] is referenced (may be NULL in tests). Metric series are registered in `reg`
 * (may be NULL: no metrics). The rings are clones of m->ring (rt_ring_clone). */
rt_view *rt_view_new(const rt_membership *m, const bool *up, rt_health_node *const *health,
                     size_t n_workers, uint64_t generation, rt_metrics_registry *reg);
void rt_view_ref(rt_view *v);
/* Drop a reference; frees the view with the last one. NULL is a no-op. */
void rt_view_unref(rt_view *v);

#endif
