/* main.c - ringtail-sampler: OTLP in, per-trace buffering and tail-sampling decisions, OTLP out.
 *
 * Ownership (who holds what):
 *
 *   sampler (main thread)
 *     ├─ rt_sampler_cfg            the loaded config; policies of the running set live here
 *     ├─ rt_intake                 OTLP/HTTP + gRPC listeners on every worker
 *     ├─ rt_peers                  peer health, the ring view, joining and leaving (peers.h)
 *     └─ shard[i], one per worker, touched only on worker i's thread:
 *          ├─ rt_policy_engine     the running policy set + this worker's token buckets
 *          ├─ rt_tbuf              the pending traces whose trace id hashes to shard i
 *          ├─ rt_exporter          batches and clients for every backend
 *          ├─ rt_peer_clients      clients to the other samplers
 *          ├─ rt_relay             spans of traces another sampler owns, sent on (relay.h)
 *          ├─ rt_handoff           traces and decisions moved when ownership changes
 *          └─ rt_peer_view         ref: the ring view in force on this worker
 *
 * A request is handled on the worker whose listener accepted it: its spans are split by shard.
 * Spans this sampler owns by its view (or that came from a peer, forwarded or handed off) go to
 * their shard's buffer: the local shard's part at once, every other part re-encoded (span bytes
 * copied under their own resource and scope) and posted to its worker. Spans another sampler
 * owns go to their shard's relay, which keeps them if their trace is already here and forwards
 * them otherwise. The client is answered once every part is in some buffer - at once when
 * nothing was forwarded, else when the last forward settled (on the accepting worker's thread) -
 * so a trace is only ever touched by one thread and the hot path takes no lock. A request from a
 * peer carries an envelope (peer_msg.h): its trace states and decisions go to their shards with
 * the spans; an announcement goes to the main thread.
 *
 * Reload (SIGHUP or the config file changing): the file is parsed again; if it is good, each
 * worker switches to an engine on the new policies (its pending traces are observed again) and
 * the old set is freed afterwards; if it is bad the running policies stay and the error is
 * logged. Only the policies (and sample_on_first_match) are reloaded; other keys need a restart
 * and a reload that changes them says so. The ring file is the daemon's: each accepted edit
 * builds a new ring view (peers.h), which moves traces whose owner changed (handoff.h).
 *
 * Stop (SIGTERM): /readyz fails at once; with peers, LEAVING is announced, every pending trace
 * and every decision is handed over to the new owners, and what still arrives is forwarded
 * until no request came for peers.drain_quiet (at most half of shutdown_timeout); then the
 * listeners close, each worker decides what is left (traces no peer took) and drains its
 * exporter (bounded by shutdown_timeout), and the process exits. Without peers it decides
 * everything itself, as before.
 */
#include "handoff.h"
#include "peer_msg.h"
#include "peers.h"
#include "relay.h"
#include "sampler_config.h"
#include "trace_buffer.h"

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "otlp_encode.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TICK_MS 10

typedef struct sampler sampler;

/* One part of a request being split: an encoder writing into its own buffer. */
typedef struct part_out {
    rt_otlp_enc enc;
    rt_buf buf;
} part_out;

typedef struct shard {
    sampler *s; /* ref */
    rt_worker *w;
    int index;
    rt_policy_engine *engine;
    rt_tbuf *tbuf;
    rt_exporter *exporter;
    rt_peer_clients *clients;
    rt_relay *relay;
    rt_handoff *handoff;
    rt_peer_view *view; /* ref: installed by shard_install */
    struct event *tick;
    /* splitting a request by shard (this worker's scratch, reused), one of each per shard */
    part_out *local;          /* spans to buffer in that shard */
    part_out *route;          /* spans another sampler owns, for that shard's relay */
    rt_buf *foreign;          /* 16-byte ids of forwarded traces this sampler does not own
                               * (and, in refuse_throttled, of the traces a refusal touches) */
    rt_peer_env_writer *penv; /* a peer envelope's trace states and decisions for that shard */
    bool *penv_used;
    _Atomic bool full;              /* block_on_overflow pressure, read by every worker */
    atomic_int export_pressure;     /* rt_export_pressure of this worker's exporter, read by every
                                     * worker (refreshed after ingest and at each tick) */
    _Atomic bool idle;              /* nothing queued or in flight to peers (read by main) */
    struct event *drain_step;       /* shutdown: decides what is pending as the exporter allows */
    uint64_t drain_decide_until_ns; /* after this, what is still pending is decided at once */
    uint64_t drain_flush_by_ns;     /* the exporter's drain deadline */
} shard;

struct sampler {
    rt_daemon *d;
    rt_sampler_cfg *cfg; /* ref: the running config */
    rt_intake *intake;
    rt_peers *peers;
    SSL_CTX *peer_tls_http, *peer_tls_grpc;
    shard *shards;
    unsigned n;
    rt_counter *requests[3];
    rt_counter *throttled_spans;
    rt_counter *backlog_spans; /* refused: an exporter's queue half full */
    rt_counter *forwarded_in;
    rt_counter *late_requests;
    char sampler_id[256]; /* node_id, or the host name: signed on every exported Resource */
    _Atomic uint64_t last_request_ns;
    atomic_uint held_calls; /* requests waiting for forwards */
    /* shutdown */
    struct event *drained_ev;
    struct event *drain_ev; /* polls the hand-over and the quiet period */
    uint64_t linger_deadline_ns;
    int drain_phase; /* 0 handing over and forwarding, 1 listeners closed: settling */
    atomic_uint draining;
    /* reload */
    rt_policy_set *next_set; /* handed to workers during a switch */
    rt_sampler_cfg *reloaded;
};

static sampler g_sampler; /* the one per process; reached from the daemon's callbacks */

/* ---- splitting a request -------------------------------------------------------------------- */

static void part_init(part_out *p)
{
    rt_otlp_enc_init(&p->enc);
    rt_buf_init(&p->buf);
}

static void part_begin(part_out *p)
{
    rt_buf_reset(&p->buf);
    rt_otlp_enc_begin(&p->enc, &p->buf);
}

static void part_free(part_out *p)
{
    rt_otlp_enc_free(&p->enc);
    rt_buf_free(&p->buf);
}

/* ---- ingest ------------------------------------------------------------------------------- */

/* Publish this worker's exporter pressure for every worker's intake; returns it. */
static rt_export_pressure shard_pressure(shard *sh)
{
    rt_export_pressure p = rt_exporter_pressure(sh->exporter);
    atomic_store_explicit(&sh->export_pressure, (int)p, memory_order_relaxed);
    return p;
}

/* rt_tbuf_opts.hold: due decisions wait while the exporter's queue is three-quarters full. */
static bool hold_cb(void *arg)
{
    return shard_pressure(arg) == RT_EXPORT_PRESSURE_HOLD;
}

/* Buffer a request here (a part made by on_request's split, or what a forward or hand-off could
 * not deliver). Returns the spans taken. */
static long shard_ingest(shard *sh, const uint8_t *pb, size_t len)
{
    long n = rt_tbuf_ingest(sh->tbuf, pb, len, rt_clock_mono_ns());
    if (n < 0) {
        RT_LOG_RL(RT_LOG_ERROR, "shard could not walk a validated request (bug)", "shard=%d",
                  sh->index);
    }
    atomic_store_explicit(&sh->full, rt_tbuf_full(sh->tbuf), memory_order_relaxed);
    shard_pressure(sh);
    return n;
}

static void ingest_cb(void *arg, const uint8_t *pb, size_t len)
{
    shard_ingest(arg, pb, len);
}

static void kept_cb(void *arg, const uint8_t trace_id[16])
{
    shard *sh = arg;
    rt_handoff_recheck(sh->handoff, trace_id);
}

static void decided_cb(void *arg, const uint8_t trace_id[16], rt_decision d, const char *policy,
                       double count)
{
    shard *sh = arg;
    if (sh->handoff) {
        rt_handoff_decided(sh->handoff, trace_id, d, policy, count);
    }
}

static bool defer_cb(void *arg, const uint8_t trace_id[16])
{
    shard *sh = arg;
    return sh->handoff != NULL && rt_handoff_due(sh->handoff, trace_id);
}

/* After a peer's request (or part of it) was buffered: its trace states and decisions, and the
 * forwarded traces this sampler does not own (`foreign`: 16-byte ids) to look at again. */
static void shard_after_peer(shard *sh, const uint8_t *pb, size_t len, long spans, bool env,
                             const uint8_t *foreign, size_t foreign_len)
{
    if (env) {
        rt_handoff_receive(sh->handoff, pb, len, spans > 0 ? (size_t)spans : 0, rt_clock_mono_ns());
    }
    for (size_t i = 0; i + 16 <= foreign_len; i += 16) {
        rt_handoff_recheck(sh->handoff, foreign + i);
    }
}

typedef struct part_task {
    rt_buf pb;
    rt_buf foreign;
    bool env; /* pb carries a peer envelope for this shard */
} part_task;

static void part_run(rt_worker *w, void *arg)
{
    part_task *t = arg;
    shard *sh = &g_sampler.shards[rt_worker_index(w)];
    long n = shard_ingest(sh, t->pb.data, t->pb.len);
    shard_after_peer(sh, t->pb.data, t->pb.len, n, t->env, t->foreign.data, t->foreign.len);
    rt_buf_free(&t->pb);
    rt_buf_free(&t->foreign);
    free(t);
}

/* A client request waiting for the relays of the shards it touched. */
typedef struct held_call {
    rt_otlp_call *call;
    int origin; /* the worker that accepted it (and must answer it) */
    atomic_uint pending;
} held_call;

typedef struct route_task {
    rt_buf pb;
    held_call *hc;
    int shard;         /* where it runs */
    uint64_t deadline; /* the caller's (wall clock, Unix ns), 0 = none */
} route_task;

static void respond_held(rt_worker *w, void *arg)
{
    held_call *hc = arg;
    rt_otlp_result res = {.status = RT_OTLP_OK};
    rt_otlp_call_respond(hc->call, &res);
    free(hc);
    atomic_fetch_sub(&g_sampler.held_calls, 1);
}

static void route_done(void *arg)
{
    route_task *t = arg;
    held_call *hc = t->hc;
    int here = t->shard;
    rt_buf_free(&t->pb);
    free(t);
    if (atomic_fetch_sub(&hc->pending, 1) == 1) {
        if (here == hc->origin) {
            respond_held(NULL, hc);
        } else {
            rt_worker_post(g_sampler.shards[hc->origin].w, respond_held, hc);
        }
    }
}

static void route_run(rt_worker *w, void *arg)
{
    route_task *t = arg;
    shard *sh = &g_sampler.shards[t->shard];
    rt_relay_route(sh->relay, t->pb.data, t->pb.len, t->deadline, route_done, t);
}

static void refuse_malformed(rt_otlp_call *call, const char *why)
{
    rt_otlp_result res;
    rt_otlp_result_set(&res, RT_OTLP_BAD_DATA, "protobuf: %s", why);
    rt_otlp_call_respond(call, &res);
}

/* How long a trace whose spans were refused with back-pressure waits for them, from the
 * refusal: twice the Retry-After we give, so a client that retries when told is in time. */
#define REFUSED_WAIT_NS (2 * 1000000000ull)

typedef struct postpone_task {
    rt_buf ids; /* 16-byte trace ids */
    uint64_t until_ns;
} postpone_task;

static void postpone_ids(shard *sh, const uint8_t *ids, size_t len, uint64_t until_ns)
{
    for (size_t i = 0; i + 16 <= len; i += 16) {
        rt_tbuf_postpone(sh->tbuf, ids + i, until_ns);
    }
}

static void postpone_run(rt_worker *w, void *arg)
{
    postpone_task *t = arg;
    postpone_ids(&g_sampler.shards[rt_worker_index(w)], t->ids.data, t->ids.len, t->until_ns);
    rt_buf_free(&t->ids);
    free(t);
}

/* Answer 429 / RESOURCE_EXHAUSTED + Retry-After without taking anything, counting the request's
 * spans in `counter`; the traces they belong to, where pending, wait for the client's retry
 * (rt_tbuf_postpone in their shards) rather than be decided without them. Returns false when
 * the request holds no span (nothing to hold back: the caller goes on) and true when it was
 * answered (refused, or malformed). */
static bool refuse_throttled(shard *me, rt_otlp_call *call, const uint8_t *pb, size_t len,
                             rt_counter *counter, const char *why_not)
{
    sampler *s = me->s;
    rt_otlp_scan it;
    rt_otlp_span_view sv;
    rt_otlp_scan_init_checked(&it, pb, len);
    for (unsigned i = 0; i < s->n; i++) {
        rt_buf_reset(&me->foreign[i]);
    }
    uint8_t last[16];
    bool have = false;
    size_t n = 0;
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &sv)) == 1) {
        n++;
        if (sv.trace_id.len != 16 || (have && memcmp(last, sv.trace_id.p, 16) == 0)) {
            continue;
        }
        memcpy(last, sv.trace_id.p, 16);
        have = true;
        rt_buf_append(&me->foreign[rt_tbuf_shard_of(last, 16, s->n)], last, 16);
    }
    if (rc < 0) {
        refuse_malformed(call, it.err);
        return true;
    }
    if (n == 0) {
        return false;
    }
    rt_counter_add(counter, n);
    uint64_t until = rt_clock_mono_ns() + REFUSED_WAIT_NS;
    for (unsigned i = 0; i < s->n; i++) {
        rt_buf *ids = &me->foreign[i];
        if (ids->len == 0) {
            continue;
        }
        if ((int)i == me->index) {
            postpone_ids(me, ids->data, ids->len, until);
            continue;
        }
        postpone_task *t = rt_malloc(sizeof *t);
        t->ids = *ids;
        t->until_ns = until;
        rt_buf_init(ids);
        rt_worker_post(s->shards[i].w, postpone_run, t);
    }
    rt_otlp_result res;
    rt_otlp_result_set(&res, RT_OTLP_THROTTLED, "%s; retry later", why_not);
    res.retry_after_s = 1;
    rt_otlp_call_respond(call, &res);
    return true;
}

/* rt_tbuf_ingest_if's question (arg: the view): does this trace stay here? (An id that is not 16
 * bytes stays: no ring places it.) */
static bool owned_here(void *arg, const uint8_t *trace_id, size_t len)
{
    return len != 16 || rt_peer_view_local(arg, rt_ring_key(trace_id, 16));
}

/* rt_tbuf_ingest_if's question for a forwarded request (it takes every trace): a trace this
 * sampler does not own is noted as a 16-byte id in `out`, to be looked at again. */
typedef struct foreign_ctx {
    const rt_peer_view *v;
    rt_buf *out;
} foreign_ctx;

static bool note_foreign(void *arg, const uint8_t *trace_id, size_t len)
{
    foreign_ctx *c = arg;
    if (!owned_here((void *)c->v, trace_id, len)) {
        rt_buf_append(c->out, trace_id, 16);
    }
    return true;
}

/* The envelope writer of shard k's part, begun on first use. */
static rt_peer_env_writer *penv_of(shard *me, unsigned k, const rt_peer_env *env)
{
    if (!me->penv_used[k]) {
        rt_peer_env_begin(&me->penv[k], env->kind, NULL, env->ring_hash);
        me->penv_used[k] = true;
    }
    return &me->penv[k];
}

/* Share a peer envelope's trace states and decisions out to the shards of their traces. */
static void split_envelope(shard *me, const rt_peer_env *env)
{
    unsigned n = me->s->n;
    rt_peer_trace t;
    for (size_t pos = 0; rt_peer_env_next_trace(env, &pos, &t);) {
        rt_peer_env_trace(penv_of(me, rt_tbuf_shard_of(t.trace_id, 16, n), env), &t);
    }
    rt_peer_decision d;
    char name[RT_PEER_POLICY_MAX + 1];
    for (size_t pos = 0; rt_peer_env_next_decision(env, &pos, &d);) {
        memcpy(name, d.policy.p, d.policy.len);
        name[d.policy.len] = 0;
        rt_peer_env_decision(penv_of(me, rt_tbuf_shard_of(d.trace_id, 16, n), env), d.trace_id,
                             d.sampled, name, d.count);
    }
}

/* The listeners leave the request's check to us (handler_checks): the walk that parses the
 * spans checks them, so each request is read once (a malformed one is refused before any of it
 * is taken, with the same 400 the listener's check gave). `span_count` is not used. */
static void on_request(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count,
                       void *arg)
{
    shard *me = arg;
    sampler *s = me->s;
    rt_otlp_result res = {.status = RT_OTLP_OK};
    char why[RT_OTLP_ERR_MAX + 64];
    uint64_t now = rt_clock_mono_ns();
    (void)span_count;
    atomic_store_explicit(&s->last_request_ns, now, memory_order_relaxed);
    rt_counter_inc(s->requests[rt_otlp_call_transport(call)]);
    rt_peer_env env;
    if (rt_peer_env_read(pb, len, &env, why, sizeof why) != 0) {
        refuse_malformed(call, why);
        return;
    }
    if (env.kind == RT_PEER_ANNOUNCE) {
        if (env.announce != RT_PEER_ANNOUNCE_NONE && env.sender.len > 0) {
            rt_peers_announced(s->peers, env.sender.p, env.sender.len, env.announce);
        }
        rt_otlp_call_respond(call, &res);
        return;
    }
    uint64_t late = rt_peer_env_late(&env, rt_clock_wall_ns());
    if (late > 0) {
        /* The sender has stopped waiting and kept these spans (a peer) or sent them elsewhere (a
         * router): taking them too would put them in two places. 503: a sender that is still
         * retrying (its deadline was set at its first attempt) gives up or moves on. */
        static const char *const kind_names[] = {"", "forward", "handoff", "", "routed"};
        rt_counter_inc(s->late_requests);
        RT_LOG_RL(RT_LOG_WARN, "request refused: past its sender's deadline",
                  "sender=%.*s kind=%s late_ms=%llu", (int)env.sender.len,
                  env.sender.p ? (const char *)env.sender.p : "", kind_names[env.kind],
                  (unsigned long long)(late / 1000000));
        rt_otlp_result_set(&res, RT_OTLP_UNAVAILABLE,
                           "request arrived %llu ms after its sender's deadline; its spans are "
                           "not taken here",
                           (unsigned long long)(late / 1000000));
        rt_otlp_call_respond(call, &res);
        return;
    }
    /* Back-pressure before anything is taken: a worker's exporter falling behind a backend that
     * answers (its queue half full), or, with block_on_overflow, a full buffer. Spans go to
     * every worker's shard, so any worker's pressure refuses the request. */
    shard_pressure(me);
    bool block = rt_sampler_ts(s->cfg)->block_on_overflow;
    bool buffer_full = false, backlog = false;
    for (unsigned i = 0; i < s->n; i++) {
        backlog |= atomic_load_explicit(&s->shards[i].export_pressure, memory_order_relaxed) !=
                   RT_EXPORT_PRESSURE_NONE;
        buffer_full |= block && atomic_load_explicit(&s->shards[i].full, memory_order_relaxed);
    }
    if ((backlog || buffer_full) &&
        refuse_throttled(me, call, pb, len, backlog ? s->backlog_spans : s->throttled_spans,
                         backlog ? "the exporter is behind its backend (export queue half full)"
                                 : "trace buffer full (block_on_overflow)")) {
        return;
    }
    const rt_peer_view *v = me->view;
    /* Spans from SDKs, collectors and routers may belong to another sampler; spans from a peer
     * stay (one hop), but forwarded traces this sampler does not own are looked at again. */
    bool from_peer = env.kind == RT_PEER_FORWARD || env.kind == RT_PEER_HANDOFF;
    bool may_route = !from_peer && v != NULL && rt_peer_view_has_peers(v);
    bool check_foreign = env.kind == RT_PEER_FORWARD && v != NULL && rt_peer_view_has_peers(v);
    /* One worker: the buffer's own walk checks that every trace stays here (a router sent it
     * to its owner), and takes the request whole; only when one does not is it split below.
     * The same walk notes which forwarded traces this sampler does not own. */
    long n = RT_TBUF_DECLINED;
    if (s->n == 1) {
        rt_buf *fo = &me->foreign[0];
        foreign_ctx fc = {v, fo};
        rt_buf_reset(fo);
        if (may_route) {
            n = rt_tbuf_ingest_if(me->tbuf, pb, len, now, owned_here, (void *)v, why, sizeof why);
        } else if (check_foreign) {
            n = rt_tbuf_ingest_if(me->tbuf, pb, len, now, note_foreign, &fc, why, sizeof why);
        } else {
            n = rt_tbuf_ingest_checked(me->tbuf, pb, len, now, why, sizeof why);
        }
    }
    if (n != RT_TBUF_DECLINED) {
        if (n < 0) {
            refuse_malformed(call, why);
            return;
        }
        atomic_store_explicit(&me->full, rt_tbuf_full(me->tbuf), memory_order_relaxed);
        if (from_peer) {
            rt_buf *fo = &me->foreign[0];
            if (env.kind == RT_PEER_FORWARD) {
                rt_counter_add(s->forwarded_in, (uint64_t)n);
            }
            shard_after_peer(me, pb, len, n, true, fo->data, fo->len);
        }
        rt_otlp_call_respond(call, &res);
        return;
    }
    /* Split by shard, and by whether this sampler keeps the span. */
    for (unsigned i = 0; i < s->n; i++) {
        part_begin(&me->local[i]);
        part_begin(&me->route[i]);
        rt_buf_reset(&me->foreign[i]);
        me->penv_used[i] = false;
    }
    rt_otlp_scan it;
    rt_otlp_span_view sv;
    rt_otlp_scan_init_checked(&it, pb, len); /* nothing is handed on before the end */
    uint8_t last[16];
    size_t last_len = SIZE_MAX;
    bool here = true;
    uint64_t spans = 0;
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &sv)) == 1) {
        unsigned k = rt_tbuf_shard_of(sv.trace_id.p, sv.trace_id.len, s->n);
        spans++;
        if ((may_route || check_foreign) &&
            (sv.trace_id.len != last_len || memcmp(last, sv.trace_id.p, last_len) != 0)) {
            last_len = sv.trace_id.len < 16 ? sv.trace_id.len : 16;
            memcpy(last, sv.trace_id.p, last_len);
            bool mine = sv.trace_id.len != 16 || rt_peer_view_local(v, rt_ring_key(last, 16));
            here = !may_route || mine;
            if (check_foreign && !mine) {
                rt_buf_append(&me->foreign[k], last, 16);
            }
        }
        rt_otlp_enc_view(here ? &me->local[k].enc : &me->route[k].enc, &sv);
    }
    if (rc < 0) {
        refuse_malformed(call, it.err);
        return;
    }
    if (env.kind == RT_PEER_FORWARD) {
        rt_counter_add(s->forwarded_in, spans);
    }
    if (from_peer && (env.n_traces > 0 || env.n_decisions > 0)) {
        split_envelope(me, &env);
    }
    for (unsigned i = 0; i < s->n; i++) {
        part_out *lp = &me->local[i];
        rt_otlp_enc_finish(&lp->enc);
        if (me->penv_used[i]) {
            rt_peer_env_finish(&me->penv[i], &lp->buf);
        }
        if (lp->buf.len == 0 && me->foreign[i].len == 0) {
            continue;
        }
        if ((int)i == me->index) {
            long taken = shard_ingest(me, lp->buf.data, lp->buf.len);
            shard_after_peer(me, lp->buf.data, lp->buf.len, taken, me->penv_used[i],
                             me->foreign[i].data, me->foreign[i].len);
            continue;
        }
        part_task *t = rt_malloc(sizeof *t);
        t->pb = lp->buf;
        t->foreign = me->foreign[i];
        t->env = me->penv_used[i];
        rt_buf_init(&lp->buf);
        rt_buf_init(&me->foreign[i]);
        rt_worker_post(s->shards[i].w, part_run, t);
    }
    unsigned routed = 0;
    for (unsigned i = 0; i < s->n; i++) {
        routed += rt_otlp_enc_finish(&me->route[i].enc) > 0;
    }
    if (routed == 0) {
        rt_otlp_call_respond(call, &res);
        return;
    }
    held_call *hc = rt_malloc(sizeof *hc);
    hc->call = call;
    hc->origin = me->index;
    atomic_init(&hc->pending, routed);
    atomic_fetch_add(&s->held_calls, 1);
    route_task *mine = NULL;
    for (unsigned i = 0; i < s->n; i++) {
        part_out *rp = &me->route[i];
        if (rp->buf.len == 0) {
            continue;
        }
        route_task *t = rt_malloc(sizeof *t);
        t->pb = rp->buf;
        t->hc = hc;
        t->shard = (int)i;
        t->deadline = env.deadline_unix_ns;
        rt_buf_init(&rp->buf);
        if ((int)i == me->index) {
            mine = t; /* last: it may answer the call before returning */
        } else {
            rt_worker_post(s->shards[i].w, route_run, t);
        }
    }
    if (mine) {
        rt_relay_route(me->relay, mine->pb.data, mine->pb.len, mine->deadline, route_done, mine);
    }
}

static void *worker_arg(rt_worker *w, void *arg)
{
    sampler *s = arg;
    return &s->shards[rt_worker_index(w)];
}

/* ---- per-worker set-up and teardown -------------------------------------------------------- */

static void emit(void *arg, rt_buf *req, size_t spans)
{
    shard *sh = arg;
    rt_exporter_submit(sh->exporter, req->data, req->len, spans);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    shard *sh = arg;
    uint64_t now = rt_clock_mono_ns();
    rt_tbuf_tick(sh->tbuf, now); /* refreshes the exporter pressure (hold_cb) */
    rt_handoff_tick(sh->handoff, now);
    rt_peer_clients_reap(sh->clients);
    atomic_store_explicit(&sh->full, rt_tbuf_full(sh->tbuf), memory_order_relaxed);
    atomic_store_explicit(&sh->idle,
                          rt_handoff_idle(sh->handoff) && rt_relay_inflight(sh->relay) == 0,
                          memory_order_relaxed);
}

static uint64_t per_shard(uint64_t total, unsigned n)
{
    uint64_t v = total / n;
    return v ? v : 1;
}

typedef struct setup_ctx {
    int failed;
    char err[512];
} setup_ctx;

static void shard_setup(rt_worker *w, void *arg)
{
    setup_ctx *ctx = arg;
    sampler *s = &g_sampler;
    const rt_ts_cfg *ts = rt_sampler_ts(s->cfg);
    const rt_peers_cfg *pc = &s->cfg->peers;
    shard *sh = &s->shards[rt_worker_index(w)];
    sh->s = s;
    sh->w = w;
    sh->index = rt_worker_index(w);
    rt_metrics_registry *reg = rt_daemon_metrics(s->d);
    char err[400];
    sh->exporter = rt_exporter_new(rt_worker_base(w), &s->cfg->exporters,
                                   s->cfg->default_export_file, s->n, reg, err, sizeof err);
    if (sh->exporter == NULL) {
        snprintf(ctx->err, sizeof ctx->err, "exporter: %s", err);
        ctx->failed = 1;
        return;
    }
    uint64_t now = rt_clock_mono_ns();
    sh->engine =
        rt_policy_engine_new(ts->policies, 1.0 / s->n, ts->sample_on_first_match, now, reg);
    rt_tbuf_opts o = {
        .decision_wait_ns = ts->decision_wait_ns,
        .wait_after_root_ns = ts->decision_wait_after_root_ns,
        .max_age_ns = ts->maximum_trace_age_ns,
        .max_traces = per_shard((uint64_t)ts->num_traces, s->n),
        .max_bytes = per_shard(ts->max_buffer_bytes, s->n),
        .max_trace_bytes = ts->maximum_trace_size_bytes,
        .sampled_cache_size = per_shard((uint64_t)ts->decision_cache.sampled_cache_size, s->n),
        .non_sampled_cache_size =
            per_shard((uint64_t)ts->decision_cache.non_sampled_cache_size, s->n),
        .emitted_span_ids = per_shard((uint64_t)ts->deduplication_span_ids, s->n),
        .block_on_overflow = ts->block_on_overflow,
        .policy_attr = NULL,
        .sampler_id = s->sampler_id,
        .decided = decided_cb,
        .decided_arg = sh,
        .defer = defer_cb,
        .defer_arg = sh,
        .hold = hold_cb,
        .hold_arg = sh,
    };
    sh->tbuf = rt_tbuf_new(&o, sh->engine, emit, sh, reg);
    rt_peer_clients_opts co = {
        .protocol = pc->protocol - 1,
        .timeout_ns = pc->timeout_ns,
        .connections = (uint32_t)pc->connections,
        .max_inflight = 4096,
        .gzip = pc->gzip,
        .tls_http = s->peer_tls_http,
        .tls_grpc = s->peer_tls_grpc,
        .server_name = pc->tls.server_name,
    };
    sh->clients = rt_peer_clients_new(rt_worker_base(w), &co);
    rt_relay_opts ro = {.sender = s->sampler_id,
                        .clients = sh->clients,
                        .tbuf = sh->tbuf,
                        .ingest = ingest_cb,
                        .kept = kept_cb,
                        .arg = sh,
                        .base = rt_worker_base(w),
                        .timeout_ns = pc->timeout_ns};
    sh->relay = rt_relay_new(&ro, reg);
    rt_handoff_opts ho = {.sender = s->sampler_id,
                          .clients = sh->clients,
                          .tbuf = sh->tbuf,
                          .ingest = ingest_cb,
                          .arg = sh,
                          .rate = per_shard(pc->handoff_rate, s->n),
                          .batch = (size_t)pc->handoff_batch,
                          .max_inflight = (size_t)per_shard(pc->handoff_inflight, s->n),
                          .deadline_ns = pc->timeout_ns};
    sh->handoff = rt_handoff_new(&ho, reg);
    atomic_init(&sh->idle, true);
    sh->local = rt_calloc(s->n, sizeof *sh->local);
    sh->route = rt_calloc(s->n, sizeof *sh->route);
    sh->foreign = rt_calloc(s->n, sizeof *sh->foreign);
    sh->penv = rt_calloc(s->n, sizeof *sh->penv);
    sh->penv_used = rt_calloc(s->n, sizeof *sh->penv_used);
    for (unsigned i = 0; i < s->n; i++) {
        part_init(&sh->local[i]);
        part_init(&sh->route[i]);
        rt_buf_init(&sh->foreign[i]);
        rt_peer_env_writer_init(&sh->penv[i]);
    }
    sh->tick = event_new(rt_worker_base(w), -1, EV_PERSIST, on_tick, sh);
    struct timeval tv = {0, TICK_MS * 1000};
    event_add(sh->tick, &tv);
}

static void shard_teardown(rt_worker *w, void *arg)
{
    sampler *s = &g_sampler;
    shard *sh = &s->shards[rt_worker_index(w)];
    if (sh->tick) {
        event_free(sh->tick);
        sh->tick = NULL;
    }
    if (sh->drain_step) {
        event_free(sh->drain_step);
        sh->drain_step = NULL;
    }
    /* The clients first: ending their sends lets the relay and the hand-off keep what they
     * carried, in the buffer, which is decided below. */
    rt_peer_clients_free(sh->clients);
    sh->clients = NULL;
    rt_relay_free(sh->relay);
    sh->relay = NULL;
    rt_handoff_free(sh->handoff);
    sh->handoff = NULL;
    rt_peer_view_unref(sh->view);
    sh->view = NULL;
    if (sh->tbuf) {
        /* Normally drained by the stop hook already; this decides what a fast stop left. */
        rt_tbuf_decide_all(sh->tbuf, rt_clock_mono_ns());
        rt_tbuf_free(sh->tbuf);
        sh->tbuf = NULL;
    }
    rt_exporter_free(sh->exporter);
    sh->exporter = NULL;
    rt_policy_engine_free(sh->engine);
    sh->engine = NULL;
    for (unsigned i = 0; sh->local && i < s->n; i++) {
        part_free(&sh->local[i]);
        part_free(&sh->route[i]);
        rt_buf_free(&sh->foreign[i]);
        rt_peer_env_writer_free(&sh->penv[i]);
    }
    free(sh->local);
    free(sh->route);
    free(sh->foreign);
    free(sh->penv);
    free(sh->penv_used);
    sh->local = sh->route = NULL;
    sh->foreign = NULL;
    sh->penv = NULL;
    sh->penv_used = NULL;
}

/* ---- the ring view ------------------------------------------------------------------------- */

static void shard_install(rt_worker *w, void *arg)
{
    rt_peer_view *v = arg;
    shard *sh = &g_sampler.shards[rt_worker_index(w)];
    if (sh->handoff == NULL) {
        return;
    }
    rt_handoff_set_view(sh->handoff, v, rt_clock_mono_ns()); /* before the clients switch */
    rt_peer_clients_set_view(sh->clients, v);
    rt_relay_set_view(sh->relay, v);
    rt_peer_view_ref(v);
    rt_peer_view_unref(sh->view);
    sh->view = v;
}

static void install_view(void *arg, rt_peer_view *v)
{
    sampler *s = arg;
    rt_workers_run_on_each(rt_daemon_workers(s->d), shard_install, v);
}

static void announce_settled(void *arg)
{
    sampler *s = arg;
    rt_peers_announce_settled(s->peers);
}

typedef struct announce_task {
    sampler *s;
    rt_peer_announce a;
} announce_task;

static void announce_run(rt_worker *w, void *arg)
{
    announce_task *t = arg;
    shard *sh = &t->s->shards[rt_worker_index(w)];
    rt_peers_send_announce(sh->clients, t->s->sampler_id, t->a, announce_settled, t->s);
    free(t);
}

static void announce_hook(void *arg, rt_peer_announce a)
{
    sampler *s = arg;
    announce_task *t = rt_malloc(sizeof *t);
    *t = (announce_task){s, a};
    rt_worker_post(s->shards[0].w, announce_run, t);
}

static void on_ring_changed(void *arg, rt_membership *m)
{
    sampler *s = arg;
    rt_peers_set_membership(s->peers, m);
}

static void ring_info(void *arg, rt_buf *json)
{
    sampler *s = arg;
    rt_peers_ring_info(s->peers, json);
}

/* ---- reload ------------------------------------------------------------------------------- */

static void shard_switch(rt_worker *w, void *arg)
{
    sampler *s = &g_sampler;
    shard *sh = &s->shards[rt_worker_index(w)];
    const rt_ts_cfg *ts = rt_sampler_ts(s->reloaded);
    rt_policy_engine *e = rt_policy_engine_new(ts->policies, 1.0 / s->n, ts->sample_on_first_match,
                                               rt_clock_mono_ns(), rt_daemon_metrics(s->d));
    rt_tbuf_set_engine(sh->tbuf, e);
    rt_policy_engine_free(sh->engine);
    sh->engine = e;
}

/* Keys whose change a reload cannot apply (said in the log). */
static void note_restart_keys(const rt_sampler_cfg *old, const rt_sampler_cfg *neu)
{
    const rt_ts_cfg *a = rt_sampler_ts(old), *b = rt_sampler_ts(neu);
    if (a->decision_wait_ns != b->decision_wait_ns ||
        a->decision_wait_after_root_ns != b->decision_wait_after_root_ns ||
        a->num_traces != b->num_traces || a->max_buffer_bytes != b->max_buffer_bytes ||
        a->maximum_trace_age_ns != b->maximum_trace_age_ns ||
        a->block_on_overflow != b->block_on_overflow ||
        a->decision_cache.sampled_cache_size != b->decision_cache.sampled_cache_size ||
        a->decision_cache.non_sampled_cache_size != b->decision_cache.non_sampled_cache_size) {
        rt_log(RT_LOG_WARN,
               "reload applies policies only; changed buffer/timing keys take effect after a "
               "restart",
               NULL);
    }
}

static void on_reload(void *arg)
{
    sampler *s = arg;
    const char *path = rt_daemon_config_path(s->d);
    if (path == NULL) {
        rt_log(RT_LOG_INFO, "no config file to reload (running on built-in defaults)", NULL);
        return;
    }
    rt_sampler_cfg *neu = rt_calloc(1, sizeof *neu);
    char err[1024], q[1100];
    if (rt_cfg_load_file(path, rt_sampler_fields, neu, err, sizeof err) != 0 ||
        rt_sampler_cfg_check(neu, err, sizeof err) != 0) {
        rt_log(RT_LOG_ERROR, "config reload rejected; the running policies stay", "error=\"%s\"",
               rt_log_quote(err, q, sizeof q));
        rt_cfg_free_struct(rt_sampler_fields, neu);
        free(neu);
        return;
    }
    note_restart_keys(s->cfg, neu);
    /* Swap the policy set (and sample_on_first_match) into the running config; the new
     * engines borrow it. The old set is freed once every worker has switched. */
    s->reloaded = neu;
    rt_workers_run_on_each(rt_daemon_workers(s->d), shard_switch, NULL);
    rt_ts_cfg *run = (rt_ts_cfg *)rt_sampler_ts(s->cfg);
    rt_ts_cfg *got = (rt_ts_cfg *)rt_sampler_ts(neu);
    rt_policy_set *old = run->policies;
    run->policies = got->policies;
    run->sample_on_first_match = got->sample_on_first_match;
    got->policies = NULL;
    rt_policy_set_free(old);
    s->reloaded = NULL;
    rt_cfg_free_struct(rt_sampler_fields, neu);
    free(neu);
    rt_log(RT_LOG_INFO, "policies reloaded", "file=%s policies=%zu", path,
           rt_policy_set_count(run->policies));
}

/* ---- stop: hand everything over, decide what is left, drain the exporters ----------------- */

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    sampler *s = arg;
    rt_log(RT_LOG_INFO, "drained: every pending trace handed over or decided, exporters flushed",
           NULL);
    rt_daemon_stop_done(s->d);
}

static void shard_drained(void *arg)
{
    shard *sh = arg;
    if (atomic_fetch_sub(&sh->s->draining, 1) == 1) {
        event_active(sh->s->drained_ev, 0, 0);
    }
}

/* Decide what is still pending without overrunning the exporter: as much as it takes each tick
 * (the hold hook), until nothing is pending or half the shutdown timeout has passed (then the
 * rest at once: what the queue cannot take is dropped, counted); then flush the exporter. */
static void drain_decide_step(evutil_socket_t fd, short what, void *arg)
{
    shard *sh = arg;
    uint64_t now = rt_clock_mono_ns();
    bool patient = now < sh->drain_decide_until_ns;
    if (!rt_tbuf_decide_pending(sh->tbuf, now, patient)) {
        struct timeval tv = {0, TICK_MS * 1000};
        evtimer_add(sh->drain_step, &tv);
        return;
    }
    rt_exporter_drain(sh->exporter, sh->drain_flush_by_ns, shard_drained, sh);
}

static void shard_drain(rt_worker *w, void *arg)
{
    sampler *s = &g_sampler;
    shard *sh = &s->shards[rt_worker_index(w)];
    uint64_t now = rt_clock_mono_ns();
    sh->drain_decide_until_ns = now + s->cfg->shutdown_timeout_ns / 2;
    sh->drain_flush_by_ns = now + s->cfg->shutdown_timeout_ns;
    if (rt_sampler_ts(s->cfg)->drop_pending_traces_on_shutdown) {
        rt_tbuf_discard_all(sh->tbuf);
        rt_exporter_drain(sh->exporter, sh->drain_flush_by_ns, shard_drained, sh);
        return;
    }
    if (sh->drain_step == NULL) {
        sh->drain_step = evtimer_new(rt_worker_base(w), drain_decide_step, sh);
    }
    drain_decide_step(-1, 0, sh);
}

static void decide_and_flush(sampler *s)
{
    if (s->drain_ev) {
        event_del(s->drain_ev);
    }
    atomic_store(&s->draining, s->n);
    rt_workers_run_on_each(rt_daemon_workers(s->d), shard_drain, NULL);
}

static bool shards_idle(const sampler *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (!atomic_load_explicit(&s->shards[i].idle, memory_order_relaxed)) {
            return false;
        }
    }
    return true;
}

/* Every 20 ms while draining with peers. Phase 0: everything is handed over and no request came
 * for drain_quiet (or the linger deadline passed): close the listeners. Phase 1: the answers
 * still waiting for forwards have gone out and nothing is in flight to peers (or the deadline):
 * decide what is left and flush the exporters. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    sampler *s = arg;
    uint64_t now = rt_clock_mono_ns();
    bool late = now >= s->linger_deadline_ns;
    if (s->drain_phase == 0) {
        uint64_t last = atomic_load_explicit(&s->last_request_ns, memory_order_relaxed);
        bool quiet = now - last >= s->cfg->peers.drain_quiet_ns;
        if (!(shards_idle(s) && quiet) && !late) {
            return;
        }
        if (late) {
            rt_log(RT_LOG_WARN, "drain: still busy at half of shutdown_timeout; closing listeners",
                   "idle=%s", shards_idle(s) ? "true" : "false");
        } else {
            rt_log(RT_LOG_INFO,
                   "drain: everything handed over and no request for drain_quiet; "
                   "closing listeners",
                   NULL);
        }
        rt_intake_close(s->intake);
        s->drain_phase = 1;
        return;
    }
    if ((atomic_load(&s->held_calls) == 0 && shards_idle(s)) || late) {
        decide_and_flush(s);
    }
}

/* The view without this sampler is installed: its traces are moving. */
static void on_left(void *arg)
{
    sampler *s = arg;
    if (!rt_peers_has_peers(s->peers)) {
        rt_intake_close(s->intake);
        decide_and_flush(s);
        return;
    }
    s->linger_deadline_ns = rt_clock_mono_ns() + s->cfg->shutdown_timeout_ns / 2;
    s->drain_ev = event_new(rt_daemon_main_base(s->d), -1, EV_PERSIST, on_drain_tick, s);
    struct timeval tv = {0, 20000};
    event_add(s->drain_ev, &tv);
}

static void on_stop(void *arg, rt_daemon *d)
{
    sampler *s = arg;
    rt_peers_leave(s->peers, on_left, s);
}

/* ---- wiring ------------------------------------------------------------------------------- */

static bool ready(void *arg, char *reason, size_t cap)
{
    sampler *s = arg;
    if (s->intake == NULL) {
        snprintf(reason, cap, "listeners not open");
        return false;
    }
    return true;
}

static int setup(rt_daemon *d, void *cfgp)
{
    sampler *s = &g_sampler;
    s->d = d;
    s->cfg = cfgp;
    rt_workers *pool = rt_daemon_workers(d);
    s->n = (unsigned)rt_workers_count(pool);
    s->shards = rt_calloc(s->n, sizeof *s->shards);
    if (s->cfg->node_id && s->cfg->node_id[0]) {
        snprintf(s->sampler_id, sizeof s->sampler_id, "%s", s->cfg->node_id);
    } else if (gethostname(s->sampler_id, sizeof s->sampler_id - 1) != 0) {
        snprintf(s->sampler_id, sizeof s->sampler_id, "sampler");
    }
    rt_metrics_registry *reg = rt_daemon_metrics(d);
    static const char *const proto[3] = {"http_protobuf", "http_json", "grpc"};
    for (int i = 0; i < 3; i++) {
        s->requests[i] = rt_metrics_counter(reg, "ringtail_sampler_requests_received_total",
                                            "OTLP export requests received, by protocol.",
                                            "protocol", proto[i], NULL);
    }
    static const char refused_help[] =
        "Spans refused with back-pressure (429 / RESOURCE_EXHAUSTED + Retry-After; the client "
        "retries them), by reason: export_backlog (an exporter's queue half full while its "
        "backend answers), buffer_full (the trace buffer full, with block_on_overflow on).";
    s->throttled_spans = rt_metrics_counter(reg, "ringtail_sampler_spans_refused_total",
                                            refused_help, "reason", "buffer_full", NULL);
    s->backlog_spans = rt_metrics_counter(reg, "ringtail_sampler_spans_refused_total", refused_help,
                                          "reason", "export_backlog", NULL);
    s->forwarded_in = rt_metrics_counter(
        reg, "ringtail_sampler_spans_forwarded_total",
        "Spans of traces another sampler owns, forwarded to it (sent: acknowledged by the "
        "owner; received: from a peer).",
        "direction", "received", NULL);
    s->late_requests = rt_metrics_counter(
        reg, "ringtail_sampler_late_requests_refused_total",
        "Requests of routers and peers refused with 503 because they arrived after their "
        "sender's deadline (it had sent or kept their spans elsewhere; this sampler was stalled "
        "or the network slow).",
        NULL);
    char err[600];
    if (rt_tls_client_from_cfg(&s->cfg->peers.tls, false, &s->peer_tls_http, err, sizeof err) !=
            0 ||
        rt_tls_client_from_cfg(&s->cfg->peers.tls, true, &s->peer_tls_grpc, err, sizeof err) != 0) {
        rt_log(RT_LOG_ERROR, "peers.tls cannot be used", "reason=\"%s\"", err);
        return -1;
    }
    setup_ctx ctx = {0};
    rt_workers_run_on_each(pool, shard_setup, &ctx);
    if (ctx.failed) {
        rt_log(RT_LOG_ERROR, "cannot start", "error=\"%s\"", ctx.err);
        return -1;
    }
    rt_peers_hooks ph = {.install = install_view, .announce = announce_hook, .arg = s};
    s->peers = rt_peers_new(rt_daemon_main_base(d), &s->cfg->peers, s->sampler_id, reg, &ph);
    s->drained_ev = event_new(rt_daemon_main_base(d), -1, 0, on_drained, s);
    s->cfg->listeners.handler_checks = true; /* on_request's walk is the check */
    s->intake =
        rt_intake_open(&s->cfg->listeners, pool, on_request, worker_arg, s, err, sizeof err);
    if (s->intake == NULL) {
        rt_log(RT_LOG_ERROR, "cannot open OTLP listeners", "error=\"%s\"", err);
        return -1;
    }
    const rt_ts_cfg *ts = rt_sampler_ts(s->cfg);
    rt_log(RT_LOG_INFO, "sampler ready",
           "node_id=%s policies=%zu http_port=%u grpc_port=%u exporters=%zu", s->sampler_id,
           rt_policy_set_count(ts->policies), rt_intake_http_port(s->intake),
           rt_intake_grpc_port(s->intake), s->cfg->exporters.n);
    rt_daemon_hooks hooks = {
        .ring_changed = on_ring_changed,
        .reload = on_reload,
        .stop = on_stop,
        .ready = ready,
        .ring_info = ring_info,
        .arg = s,
    };
    rt_daemon_set_hooks(d, &hooks); /* installs the first ring view */
    rt_peers_start(s->peers);
    return 0;
}

static void teardown(rt_daemon *d, void *cfg)
{
    sampler *s = &g_sampler;
    rt_intake_free(s->intake);
    s->intake = NULL;
    if (s->shards) {
        rt_workers_run_on_each(rt_daemon_workers(d), shard_teardown, NULL);
    }
    rt_peers_free(s->peers);
    s->peers = NULL;
    if (s->drained_ev) {
        event_free(s->drained_ev);
    }
    if (s->drain_ev) {
        event_free(s->drain_ev);
    }
    SSL_CTX_free(s->peer_tls_http);
    SSL_CTX_free(s->peer_tls_grpc);
    free(s->shards);
    s->shards = NULL;
}

int main(int argc, char **argv)
{
    rt_sampler_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_daemon_spec spec = {
        .name = "sampler",
        .fields = rt_sampler_fields,
        .cfg = &cfg,
        .daemon_cfg = &cfg.daemon,
        .default_config = "/etc/ringtail/sampler.yaml",
        .describe = rt_sampler_cfg_describe,
        .check = rt_sampler_cfg_check,
        .setup = setup,
        .teardown = teardown,
    };
    return rt_daemon_main(&spec, argc, argv);
}
