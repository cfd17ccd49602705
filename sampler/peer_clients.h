/* peer_clients.h - one worker's OTLP clients to the other samplers of its ring view.
 *
 * Forwards (relay.h), hand-offs (handoff.h) and announcements (peers.h) all go through here.
 * One rt_otlp_client per peer node (the nodes of the installed view other than this sampler),
 * kept across views while the node's id, endpoint and protocol stay the same; a node that
 * leaves the view keeps its client until its unfinished sends have their answers
 * (rt_peer_clients_reap frees it then): cut off, the sender could not know whether the node
 * took what it sent. Every outcome is also a passive health report
 * on the node (node_health.h): a peer that keeps failing is marked down, and its keys move.
 *
 * One per worker, used on that worker's thread only.
 */
#ifndef RT_PEER_CLIENTS_H
#define RT_PEER_CLIENTS_H

#include "otlp_client.h"
#include "peer_view.h"

#include <event2/event.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_peer_clients_opts {
    int protocol;          /* -1: per node from the ring file; else rt_otlp_client_protocol */
    uint64_t timeout_ns;   /* per send, retries included (also each attempt's limit) */
    uint32_t connections;  /* per peer */
    uint32_t max_inflight; /* sends not yet done, per peer */
    bool gzip;
    SSL_CTX *tls_http; /* borrowed; NULL = plaintext */
    SSL_CTX *tls_grpc; /* borrowed (ALPN h2) */
    const char *server_name;
} rt_peer_clients_opts;

typedef struct rt_peer_clients rt_peer_clients;

/* `opts` is copied (its pointers borrowed). No view yet: every send is refused. */
rt_peer_clients *rt_peer_clients_new(struct event_base *base, const rt_peer_clients_opts *opts);
/* Install `v` (referenced until the next view): clients of unchanged peers are kept. */
void rt_peer_clients_set_view(rt_peer_clients *pc, rt_peer_view *v);

/* Send the protobuf request `body` (`len` bytes, copied) to node `node` (a ring index of the
 * installed view). Returns 0 when accepted: done(res, arg) runs exactly once, later (or from
 * rt_peer_clients_set_view / rt_peer_clients_free). Returns -1 without calling done when the
 * node is this sampler, has no client, or is at max_inflight. */
int rt_peer_clients_send(rt_peer_clients *pc, int node, const uint8_t *body, size_t len,
                         rt_otlp_client_done_fn done, void *arg);

/* Free the clients of nodes gone from the view whose sends have all ended (call it now and
 * then: the worker's tick). */
void rt_peer_clients_reap(rt_peer_clients *pc);

/* The view installed (NULL before the first). */
rt_peer_view *rt_peer_clients_view(const rt_peer_clients *pc);


/* Ends every unfinished send (GAVE_UP) and frees everything. NULL is a no-op. */
void rt_peer_clients_free(rt_peer_clients *pc);

#endif
