/* node_health.h - which sampler nodes of the ring are up: passive checks (failed sends reported
 * by workers) and active checks (GET /readyz on each sampler's admin port, or a TCP connect to
 * its OTLP endpoint) on the main thread, with damping. The router uses it for the samplers it
 * forwards to; each change is handed to the owner as a snapshot (the router builds its views,
 * view.h, from it).
 *
 * State machine per node (main thread only):
 *   up   -> down  after `unhealthy_after` consecutive failed active probes, or when workers
 *                 report `unhealthy_after` consecutive failed forwards (connect errors,
 *                 timeouts, lost connections, retryable error statuses after retries);
 *   down -> up    after `healthy_after` consecutive successful active probes (with checks off:
 *                 after interval * healthy_after, so a node is tried again).
 * New nodes start up. A change mirrors the state into the membership's ring (rt_ring_set_up, so
 * /ring shows it) and calls the publish callback with a snapshot.
 *
 * Threads: everything runs on the main thread except rt_health_passive(), which workers call:
 * it touches only atomics in rt_health_node and wakes the main thread with event_active().
 */
#ifndef RT_NODE_HEALTH_H
#define RT_NODE_HEALTH_H

#include "config.h"
#include "membership.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

typedef enum rt_health_check {
    RT_HEALTH_CHECK_READYZ = 0, /* GET http://<endpoint host>:<admin_port><path>, 200 = ready */
    RT_HEALTH_CHECK_TCP = 1,    /* a TCP connect to the OTLP endpoint succeeds */
    RT_HEALTH_CHECK_NONE = 2,   /* passive checks only */
} rt_health_check;

extern const char *const rt_health_check_names[];

typedef struct rt_health_cfg {
    int check; /* rt_health_check */
    int64_t admin_port;
    char *path;
    uint64_t interval_ns;
    uint64_t timeout_ns;
    int64_t unhealthy_after;
    int64_t healthy_after;
} rt_health_cfg;

extern const rt_cfg_field rt_health_fields[];

typedef struct rt_health rt_health;

/* Shared between the main thread and the workers (through views): passive failure counting. */
typedef struct rt_health_node rt_health_node;
struct rt_health_node {
    _Atomic unsigned refs;
    _Atomic uint32_t fail_streak; /* consecutive failed forwards, all workers together */
    _Atomic int report_pending;   /* a worker asked the main thread to look at this node */
    uint32_t threshold;           /* unhealthy_after */
    rt_health *owner;             /* NULL: reports go nowhere (tests) */
};

rt_health_node *rt_health_node_new(rt_health *owner, uint32_t threshold);
void rt_health_node_ref(rt_health_node *hn);
void rt_health_node_unref(rt_health_node *hn);

/* Any thread: the outcome of one forward to the node. A failure that completes a streak of
 * `threshold` wakes the main thread, which marks the node down. */
void rt_health_passive(rt_health_node *hn, bool ok);

/* The state of every node after a change, in ring index order of the membership in force. All
 * of it is lent for the publish call only (ref a node's counters to keep them). */
typedef struct rt_health_snapshot {
    const rt_membership *m;
    size_t n;
    const bool *up;
    rt_health_node *const *nodes;
    uint64_t generation; /* increases with every snapshot of one checker */
} rt_health_snapshot;

/* Called on the main thread after every change (membership set, a node marked up or down). */
typedef void (*rt_health_publish_fn)(void *arg, const rt_health_snapshot *snap);

/* Create the checker on `base` (the main loop). `cfg` is borrowed. `reg` receives the gauge
 * `up_metric`{node} (1 up, 0 down), e.g. "ringtail_router_node_up". */
rt_health *rt_health_new(struct event_base *base, const rt_health_cfg *cfg, const char *up_metric,
                         rt_metrics_registry *reg, rt_health_publish_fn publish, void *arg);
/* The membership in force changed (or was loaded): keep the state of nodes whose id, endpoint
 * and protocol are unchanged, start new ones up, and publish. `m` is borrowed
 * until the next call or rt_health_free. */
void rt_health_set_membership(rt_health *h, rt_membership *m);
/* Node `id` is this process (a sampler checking its peers): it is not checked, actively or by
 * reports, and stays as rt_health_force leaves it (up at first). NULL: none. */
void rt_health_set_self(rt_health *h, const char *id);
/* Mark node `id` (`id_len` bytes) up or down now, whatever the checks said (a peer announcing
 * that it joins or leaves): streaks restart, and a change publishes. Returns false when the
 * membership has no such node. */
bool rt_health_force(rt_health *h, const char *id, size_t id_len, bool up, const char *why);
/* Nodes up in the membership in force (0 without one). */
size_t rt_health_up_count(const rt_health *h);
bool rt_health_has_ring(const rt_health *h);
/* Stop probing (before shutdown). */
void rt_health_stop(rt_health *h);
void rt_health_free(rt_health *h);

#endif
