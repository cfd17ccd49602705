/* peer_msg.h - the envelope ringtail puts on what its processes send each other.
 *
 * Peer traffic is ordinary OTLP: an ExportTraceServiceRequest with the spans it moves (if any),
 * sent over the node's OTLP endpoint, plus one top-level field the OTLP schema does not have,
 * RT_PEER_FIELD, holding a PeerEnvelope (schema: proto/ringtail/peer/v1/peer.proto). Receivers
 * that do not know it skip it, so the request stays valid OTLP and every transport (HTTP or
 * gRPC, gzip, TLS) and limit of the OTLP path applies unchanged; requests from SDKs, collectors
 * and routers have no envelope.
 *
 * Kinds:
 *   FORWARD   spans of traces the sender does not own, sent to their owner by its ring view
 *             (samplers never forward a span that arrived forwarded: one hop at most);
 *   HANDOFF   whole pending traces moved to their new owner: the spans, and per trace the
 *             state its decision needs (first arrival, root arrival, reservoir hold) as ages,
 *             since two processes' monotonic clocks are not comparable;
 *   ANNOUNCE  the sender joins the ring (UP) or is leaving it (LEAVING); no spans;
 *   ROUTED    spans a router sends a sampler: their owner by the router's ring (the sampler may
 *             still forward them), with the router's deadline and nothing else.
 * Any kind may carry decisions the sender made for traces the receiver now owns, so late spans
 * follow the first decision wherever they land.
 *
 * Writing: rt_peer_env_begin, then any number of rt_peer_env_trace / rt_peer_env_decision, then
 * rt_peer_env_finish appends the field to a request (protobuf allows a field after the
 * resource_spans, so a request built by concatenating others gets its envelope last). Reading:
 * rt_peer_env_read checks the whole envelope once; the iterators then cannot fail.
 */
#ifndef RT_PEER_MSG_H
#define RT_PEER_MSG_H

#include "buf.h"
#include "pb.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RT_PEER_FIELD      1000u /* ExportTraceServiceRequest field number of the envelope */
#define RT_PEER_POLICY_MAX 255   /* longest policy name carried with a decision */

typedef enum rt_peer_kind {
    RT_PEER_NONE = 0, /* no envelope: a request from an SDK, a collector or a router */
    RT_PEER_FORWARD = 1,
    RT_PEER_HANDOFF = 2,
    RT_PEER_ANNOUNCE = 3,
    RT_PEER_ROUTED = 4, /* spans from a router: only the deadline, so a sampler that gets them
                         * after the router stopped waiting refuses them */
} rt_peer_kind;

typedef enum rt_peer_announce {
    RT_PEER_ANNOUNCE_NONE = 0,
    RT_PEER_ANNOUNCE_UP = 1,
    RT_PEER_ANNOUNCE_LEAVING = 2,
} rt_peer_announce;

#define RT_PEER_TS_ROOT 1u /* the root span has arrived */
#define RT_PEER_TS_HELD 2u /* held by the sender's reservoir: decide again on arrival */

typedef struct rt_peer_trace {
    uint8_t trace_id[16];
    uint64_t age_ns;      /* since its first span arrived at the sender */
    uint64_t root_age_ns; /* since its root span arrived (with RT_PEER_TS_ROOT) */
    uint32_t flags;
} rt_peer_trace;

typedef struct rt_peer_decision {
    uint8_t trace_id[16];
    bool sampled;       /* else not sampled */
    rt_pb_slice policy; /* SAMPLED: the policy that kept it (into the envelope's bytes) */
    double count;       /* SAMPLED: adjusted count; 0 = unknown */
} rt_peer_decision;

/* ---- writing ------------------------------------------------------------------------------ */

typedef struct rt_peer_env_writer {
    rt_buf head;        /* kind, sender, ring hash, announce, traces, sampled decisions */
    rt_buf not_sampled; /* 16-byte ids */
    size_t traces, decisions;
} rt_peer_env_writer;

void rt_peer_env_writer_init(rt_peer_env_writer *w);
void rt_peer_env_writer_free(rt_peer_env_writer *w);
/* Start an envelope (forgets what the writer held). */
void rt_peer_env_begin(rt_peer_env_writer *w, rt_peer_kind kind, const char *sender,
                       uint64_t ring_hash);
void rt_peer_env_announce(rt_peer_env_writer *w, rt_peer_announce a);
/* The wall clock (Unix ns) after which the sender stops waiting for the answer and keeps what it
 * sent: the receiver refuses the request after it (see rt_peer_env_late). */
void rt_peer_env_deadline(rt_peer_env_writer *w, uint64_t unix_ns);
void rt_peer_env_trace(rt_peer_env_writer *w, const rt_peer_trace *t);
/* A decision: sampled (by `policy`, with adjusted count `count`), or not (dropped travels as not
 * sampled: the receiver only needs to discard late spans). A policy name longer than
 * RT_PEER_POLICY_MAX is cut there. */
void rt_peer_env_decision(rt_peer_env_writer *w, const uint8_t trace_id[16], bool sampled,
                          const char *policy, double count);
/* Bytes the envelope would add to a request now (field tag and length included). */
size_t rt_peer_env_size(const rt_peer_env_writer *w);
/* Append the envelope as field RT_PEER_FIELD to `req`. The writer can then begin again. */
void rt_peer_env_finish(rt_peer_env_writer *w, rt_buf *req);

/* ---- reading ------------------------------------------------------------------------------ */

typedef struct rt_peer_env {
    rt_peer_kind kind; /* RT_PEER_NONE when the request has no envelope */
    rt_pb_slice sender;
    uint64_t ring_hash;
    rt_peer_announce announce;
    uint64_t deadline_unix_ns;    /* 0 = none */
    size_t n_traces, n_decisions; /* sampled decisions + not-sampled ids */
    rt_pb_slice body;             /* the envelope's bytes (ref into the request) */
    rt_pb_slice not_sampled;      /* the ids, 16 bytes each */
} rt_peer_env;

/* Look for the envelope among the top-level fields of `req` (the last one wins, as protobuf reads
 * a message field given twice... merged, but a sampler writes one) and check all of it: known
 * fields of the right wire type, 16-byte trace ids, a whole number of not-sampled ids, policy
 * names of at most RT_PEER_POLICY_MAX bytes, an unknown kind refused. Returns 0 (env->kind is
 * RT_PEER_NONE without one), or -1 with a message in `err`. Only the top-level tags of the
 * request are read: its spans are checked by whoever ingests them. */
int rt_peer_env_read(const uint8_t *req, size_t len, rt_peer_env *env, char *err, size_t errlen);

/* How late (ns) a request with this envelope is at wall clock `now_unix_ns`: > 0 when it has a
 * deadline and that has passed. The sender has then kept what it carried (or is about to), so
 * taking it would make two samplers hold the same spans; the receiver refuses it instead. Peers'
 * clocks are assumed to agree to within a few milliseconds (NTP): a skew of d widens that
 * window by d. */
static inline uint64_t rt_peer_env_late(const rt_peer_env *env, uint64_t now_unix_ns)
{
    return env->deadline_unix_ns != 0 && now_unix_ns > env->deadline_unix_ns
               ? now_unix_ns - env->deadline_unix_ns
               : 0;
}

/* The deadline to write on a request its sender waits `timeout_ns` for, sent at wall clock
 * `now_unix_ns`: a margin (a fifth of the timeout, at most 200 ms) before the sender gives up,
 * so an answer the receiver sends just before the deadline still reaches the sender in time.
 * Without the margin a request processed at its last moment would be kept by both. */
static inline uint64_t rt_peer_deadline_margin(uint64_t timeout_ns)
{
    uint64_t m = timeout_ns / 5;
    return m < 200000000ull ? m : 200000000ull;
}
static inline uint64_t rt_peer_deadline(uint64_t now_unix_ns, uint64_t timeout_ns)
{
    return now_unix_ns + timeout_ns - rt_peer_deadline_margin(timeout_ns);
}

/* Iterate a read envelope's traces / decisions from *pos (0 to start). Return 1 with *out
 * filled, or 0 at the end. Decisions: the sampled ones, then the not-sampled ids. */
int rt_peer_env_next_trace(const rt_peer_env *env, size_t *pos, rt_peer_trace *out);
int rt_peer_env_next_decision(const rt_peer_env *env, size_t *pos, rt_peer_decision *out);

#endif
