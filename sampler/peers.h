/* peers.h - a sampler's place among the other samplers of its ring: which nodes it sees up, the
 * ring view its workers route by, and its own part - waiting to be listed, a member, leaving.
 *
 * On the main thread. Node health is node_health.h, the same checks the router runs (GET
 * /readyz on each peer's admin port, passive reports from failed forwards and hand-offs), with
 * two additions for samplers:
 *   - this sampler is never checked: it is up in its own view while it is a member and not
 *     leaving;
 *   - peers announce themselves (peer_msg.h ANNOUNCE): a sampler that joins the ring (at start,
 *     or when an edit lists it) tells every other node UP, one that begins to drain tells them
 *     LEAVING, and a receiver marks the sender up or down at once, without the checks'
 *     damping. So the samplers learn of a planned change before the routers do (the routers
 *     see it through /readyz after `unhealthy_after` / `healthy_after` checks), and hand-offs
 *     and forwards point the right way by the time the routers move their traffic.
 * Every change builds a peer view (peer_view.h) and hands it to the `install` hook, which puts
 * it on every worker.
 *
 * States (ringtail_sampler_ring_state{state}, and "self" on /ring):
 *   standalone  no ring file: nothing is forwarded or handed off;
 *   waiting     the ring file does not list this node_id (a new sampler started before the edit
 *               that adds it, or one removed from the ring): it owns no keys and forwards what
 *               it is sent; it becomes a member the moment the file lists it;
 *   member      listed: it owns its share of the keys;
 *   leaving     SIGTERM: it owns nothing, hands everything over, forwards what still arrives.
 */
#ifndef RT_PEERS_H
#define RT_PEERS_H

#include "config.h"
#include "intake.h"
#include "membership.h"
#include "metrics.h"
#include "node_health.h"
#include "peer_clients.h"
#include "peer_msg.h"
#include "peer_view.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

/* The `peers:` section of sampler.yaml. */
typedef struct rt_peers_cfg {
    int protocol;        /* 0 = as the ring file says, 1 = http, 2 = grpc */
    uint64_t timeout_ns; /* per send, retries included: also the deadline peers enforce */
    int64_t connections;
    bool gzip;
    rt_tls_client_cfg tls;
    rt_health_cfg health;
    uint64_t handoff_rate;     /* bytes per second, whole process */
    uint64_t handoff_batch;    /* bytes per request */
    uint64_t handoff_inflight; /* unacknowledged bytes, whole process */
    uint64_t drain_quiet_ns;
} rt_peers_cfg;

extern const rt_cfg_field rt_peers_fields[];

typedef enum rt_peers_state {
    RT_PEERS_STANDALONE = 0,
    RT_PEERS_WAITING,
    RT_PEERS_MEMBER,
    RT_PEERS_LEAVING,
    RT_PEERS_STATE_COUNT_,
} rt_peers_state;

const char *rt_peers_state_name(rt_peers_state s);

typedef struct rt_peers_hooks {
    /* Put view `v` on every worker (lent for the call; ref it to keep it). Main thread. */
    void (*install)(void *arg, rt_peer_view *v);
    /* Send announcement `a` to every other node from a worker (rt_peers_send_announce), then
     * call rt_peers_announce_settled(p) once every send settled. */
    void (*announce)(void *arg, rt_peer_announce a);
    void *arg;
} rt_peers_hooks;

typedef struct rt_peers rt_peers;

/* `cfg` and `hooks` are copied/borrowed for the life of the object; `self_id` is copied. */
rt_peers *rt_peers_new(struct event_base *main_base, const rt_peers_cfg *cfg, const char *self_id,
                       rt_metrics_registry *reg, const rt_peers_hooks *hooks);
/* The ring in force changed (the daemon's ring_changed hook; `m` is borrowed until the next
 * call). Builds and installs a view; a sampler that just became listed announces itself once
 * rt_peers_start has run. */
void rt_peers_set_membership(rt_peers *p, rt_membership *m);
/* The listeners are open: a member announces UP. */
void rt_peers_start(rt_peers *p);
/* Start leaving: LEAVING is announced to every other node, then (once every peer acknowledged,
 * or after at most a second) the view without this sampler is installed, and done(arg) runs on
 * the main thread. Without peers, done runs before this returns. */
void rt_peers_leave(rt_peers *p, void (*done)(void *arg), void *arg);
/* Any thread: the sends of an announcement have all settled. */
void rt_peers_announce_settled(rt_peers *p);
/* Any thread: peer `sender` (`len` bytes) announced `a`. */
void rt_peers_announced(rt_peers *p, const uint8_t *sender, size_t len, rt_peer_announce a);

/* The view in force has another node up (something can be forwarded or handed over). */
bool rt_peers_has_peers(const rt_peers *p);
/* Append `,"self":{...}` (id, state, share of the keyspace) to the /ring JSON object. */
void rt_peers_ring_info(const rt_peers *p, rt_buf *json);

void rt_peers_free(rt_peers *p);

/* On a worker: send announcement `a` from `self` to every other node of the view installed on
 * `pc`; done(arg) runs once every send settled (before this returns when there is none).
 * Returns how many were sent. */
size_t rt_peers_send_announce(rt_peer_clients *pc, const char *self, rt_peer_announce a,
                              void (*done)(void *arg), void *arg);

#endif
