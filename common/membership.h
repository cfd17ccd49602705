/* membership.h - the ring membership file: which sampler nodes exist, how to reach them.
 *
 *   # ring.yaml
 *   protocol: http            # how endpoints are dialled unless a node says otherwise
 *   nodes:
 *     - id: sampler-1         # stable identity: this is what the ring hashes
 *       endpoint: 10.0.0.7:4318
 *       weight: 1             # optional, default 1
 *       protocol: grpc        # optional, per node
 *
 * The order of the nodes does not matter. Errors name the file, the line and the node:
 *   ring.yaml:7: nodes[1].weight: "0" is below the minimum 1
 *   ring.yaml:9: nodes[2].id: duplicate node id "s2" (first at line 4)
 */
#ifndef RT_MEMBERSHIP_H
#define RT_MEMBERSHIP_H

#include "ring.h"

#include <stddef.h>

typedef enum rt_member_protocol {
    RT_MEMBER_HTTP = 0,
    RT_MEMBER_GRPC = 1,
} rt_member_protocol;

typedef struct rt_member {
    char *id;
    char *endpoint;
    uint32_t weight;
    rt_member_protocol protocol;
    int line;
} rt_member;

typedef struct rt_membership {
    rt_member *nodes; /* in file order */
    size_t n;
    rt_ring *ring; /* built from nodes; owned */
} rt_membership;

/* Load and validate `path`, and build its ring. Returns a new membership, or NULL with the
 * first error ("file:line: key: reason") in `err`. */
rt_membership *rt_membership_load(const char *path, char *err, size_t errlen);
void rt_membership_free(rt_membership *m);
/* The member behind ring node `i` (rings sort nodes by id; this maps back). */
const rt_member *rt_membership_node(const rt_membership *m, size_t ring_index);

#endif
