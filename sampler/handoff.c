/* handoff.c - pending traces and decisions moved to their new owner (see handoff.h). */
#include "handoff.h"

#include "alloc.h"
#include "clock.h"
#include "decision_cache.h"
#include "log.h"
#include "peer_msg.h"

#include <stdlib.h>
#include <string.h>

#define WALK_STEP      1024  /* decision cache entries read per step */
#define DECISION_BYTES 24    /* what one decision costs the budget (about its encoding) */
#define STAY_LOCAL_MAX 65536 /* traces remembered as "could not be handed over", per shard */
#define N_FAIL         (RT_OTLP_CLIENT_FAIL_COUNT_ + 2)
#define FAIL_REJECTED  RT_OTLP_CLIENT_FAIL_COUNT_
#define FAIL_BUSY      (RT_OTLP_CLIENT_FAIL_COUNT_ + 1)

/* What is being put together for one node. */
typedef struct batch {
    rt_buf body; /* concatenated ExportTraceServiceRequests of the traces taken */
    rt_peer_env_writer env;
    bool begun;
    size_t traces, spans, decisions;
} batch;

/* One request sent and not yet acknowledged: kept to ingest it here if it fails. */
typedef struct sent {
    struct rt_handoff *h;
    uint64_t node; /* node_key of the node it went to */
    rt_buf body;
    uint64_t sent_ns;
    size_t traces, spans, decisions;
} sent;

typedef struct ho_metrics {
    rt_counter *traces[2], *spans[2], *bytes[2], *decisions[2]; /* [0] sent, [1] received */
    rt_counter *failed[N_FAIL], *lost[N_FAIL];
    rt_gauge *queued;
} ho_metrics;

struct rt_handoff {
    rt_handoff_opts o;
    char *sender;
    rt_peer_view *view; /* ref */
    rt_peer_view *base; /* ref: the view the decision caches are compared against, or NULL */
    /* Trace ids to look at, oldest first: queue[head..len). */
    uint8_t (*queue)[16];
    size_t head, len, cap;
    /* Due traces another node owns: taken first at the next tick, outside the budget. */
    uint8_t (*urgent)[16];
    size_t n_urgent, cap_urgent;
    size_t walk;    /* decision cache cursor; SIZE_MAX when not reading */
    batch *batches; /* one per node of the view */
    size_t n_batches;
    rt_dcache stay_local; /* trace -> the node a batch of it failed for (node_key) */
    double budget;        /* bytes that may be sent now */
    uint64_t last_ns;
    size_t inflight_bytes, inflight;
    double shown_queued;
    uint64_t now; /* of the tick in progress (for the walk callback) */
    ho_metrics m;
};

static const char *fail_name(int i)
{
    return i == FAIL_REJECTED ? "rejected"
           : i == FAIL_BUSY   ? "busy"
                              : rt_otlp_client_fail_name((rt_otlp_client_fail)i);
}

static void metrics_init(ho_metrics *m, rt_metrics_registry *reg)
{
    static const char *const dir[2] = {"sent", "received"};
    for (int d = 0; d < 2; d++) {
        m->traces[d] = rt_metrics_counter(
            reg, "ringtail_sampler_handoff_traces_total",
            "Pending traces moved to their new owner (sent: acknowledged by it).", "direction",
            dir[d], NULL);
        m->spans[d] =
            rt_metrics_counter(reg, "ringtail_sampler_handoff_spans_total",
                               "Spans of the traces handed over.", "direction", dir[d], NULL);
        m->bytes[d] = rt_metrics_counter(reg, "ringtail_sampler_handoff_bytes_total",
                                         "Bytes of hand-off requests (spans, state, decisions).",
                                         "direction", dir[d], NULL);
        m->decisions[d] = rt_metrics_counter(
            reg, "ringtail_sampler_handoff_decisions_total",
            "Decisions sent to (received from) the sampler that owns the trace now.", "direction",
            dir[d], NULL);
    }
    for (int i = 0; i < N_FAIL; i++) {
        m->failed[i] = rt_metrics_counter(
            reg, "ringtail_sampler_handoff_failed_traces_total",
            "Traces the new owner did not take (after retries), kept and decided here instead.",
            "reason", fail_name(i), NULL);
        m->lost[i] = rt_metrics_counter(
            reg, "ringtail_sampler_handoff_lost_decisions_total",
            "Decisions the owner did not take: late spans arriving there miss them.", "reason",
            fail_name(i), NULL);
    }
    m->queued = rt_metrics_gauge(reg, "ringtail_sampler_handoff_queued_traces",
                                 "Traces waiting to be looked at for a hand-off.", NULL);
}

static void sync_queued(rt_handoff *h)
{
    double q = (double)(h->len - h->head);
    if (q != h->shown_queued) {
        rt_gauge_add(h->m.queued, q - h->shown_queued);
        h->shown_queued = q;
    }
}

rt_handoff *rt_handoff_new(const rt_handoff_opts *opts, rt_metrics_registry *reg)
{
    rt_handoff *h = rt_calloc(1, sizeof *h);
    h->o = *opts;
    h->sender = rt_strdup(opts->sender ? opts->sender : "");
    h->o.sender = NULL;
    if (h->o.batch == 0) {
        h->o.batch = 1 << 20;
    }
    if (h->o.max_inflight < h->o.batch) {
        h->o.max_inflight = h->o.batch;
    }
    h->walk = SIZE_MAX;
    rt_dcache_init(&h->stay_local, STAY_LOCAL_MAX);
    metrics_init(&h->m, reg);
    return h;
}

/* ---- the queue ------------------------------------------------------------------------------ */

static void queue_push(rt_handoff *h, const uint8_t id[16])
{
    if (h->len == h->cap) {
        if (h->head > 0) { /* reuse the consumed front first */
            memmove(h->queue, h->queue + h->head, (h->len - h->head) * sizeof *h->queue);
            h->len -= h->head;
            h->head = 0;
        }
        if (h->len == h->cap) {
            h->cap = h->cap ? h->cap * 2 : 256;
            h->queue = rt_realloc(h->queue, h->cap * sizeof *h->queue);
        }
    }
    memcpy(h->queue[h->len++], id, 16);
}

static void queue_clear(rt_handoff *h)
{
    h->head = h->len = 0;
}

void rt_handoff_recheck(rt_handoff *h, const uint8_t trace_id[16])
{
    queue_push(h, trace_id);
}

/* ---- batches -------------------------------------------------------------------------------- */

static batch *batch_for(rt_handoff *h, int node)
{
    batch *b = &h->batches[node];
    if (!b->begun) {
        rt_peer_env_begin(&b->env, RT_PEER_HANDOFF, h->sender, h->view->content_hash);
        b->begun = true;
    }
    return b;
}

/* A non-zero key for a node id (stay_local's value). */
static uint64_t node_key(const char *id)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = id; *p; p++) {
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    }
    return h | 1;
}

/* A batch holding `id` already failed for node `o` (of the current view): not offered to it
 * again until the view changes. Another owner - the view moved on - is offered it. */
static bool refused_by(const rt_handoff *h, const uint8_t id[16], int o)
{
    uint64_t v;
    return rt_dcache_get(&h->stay_local, id, &v) && v == node_key(h->view->nodes[o].id);
}

static bool batch_empty(const batch *b)
{
    return b->traces == 0 && b->decisions == 0;
}

/* Ingest a request that could not be handed over here again, with its traces' state; those
 * traces are not offered to that node again until the view changes, but are looked at again:
 * a view that changed while the batch was out may name another owner. */
static void keep_here(rt_handoff *h, sent *s, int why)
{
    rt_counter_add(h->m.failed[why], s->traces);
    rt_counter_add(h->m.lost[why], s->decisions);
    RT_LOG_RL(RT_LOG_WARN, "hand-off not acknowledged; its traces stay and are decided here",
              "traces=%zu spans=%zu decisions=%zu reason=%s", s->traces, s->spans, s->decisions,
              fail_name(why));
    if (s->traces == 0) {
        return;
    }
    h->o.ingest(h->o.arg, s->body.data, s->body.len);
    rt_peer_env env;
    char err[160];
    if (rt_peer_env_read(s->body.data, s->body.len, &env, err, sizeof err) != 0) {
        return; /* cannot happen: we wrote it */
    }
    rt_peer_trace t;
    for (size_t pos = 0; rt_peer_env_next_trace(&env, &pos, &t);) {
        rt_tbuf_trace_state st = {.root_seen = (t.flags & RT_PEER_TS_ROOT) != 0,
                                  .held = (t.flags & RT_PEER_TS_HELD) != 0};
        memcpy(st.trace_id, t.trace_id, 16);
        st.first_ns = s->sent_ns > t.age_ns ? s->sent_ns - t.age_ns : 0;
        st.root_ns = s->sent_ns > t.root_age_ns ? s->sent_ns - t.root_age_ns : 0;
        rt_tbuf_adopt(h->o.tbuf, &st, s->sent_ns);
        rt_dcache_put(&h->stay_local, t.trace_id, s->node);
        queue_push(h, t.trace_id);
    }
}

static void on_sent(const rt_otlp_client_result *res, void *arg)
{
    sent *s = arg;
    rt_handoff *h = s->h;
    h->inflight--;
    h->inflight_bytes -= s->body.len;
    if (res->outcome == RT_OTLP_CLIENT_OK || res->outcome == RT_OTLP_CLIENT_PARTIAL) {
        rt_counter_add(h->m.traces[0], s->traces);
        rt_counter_add(h->m.spans[0], s->spans);
        rt_counter_add(h->m.bytes[0], s->body.len);
        rt_counter_add(h->m.decisions[0], s->decisions);
    } else {
        keep_here(h, s, res->outcome == RT_OTLP_CLIENT_REJECTED ? FAIL_REJECTED : (int)res->fail);
    }
    rt_buf_free(&s->body);
    free(s);
}

/* Send what is batched for `node`, if anything. */
static void flush(rt_handoff *h, int node)
{
    batch *b = &h->batches[node];
    if (!b->begun || batch_empty(b)) {
        return;
    }
    sent *s = rt_malloc(sizeof *s);
    s->h = h;
    s->node = node_key(h->view->nodes[node].id);
    s->body = b->body;
    s->sent_ns = h->now;
    s->traces = b->traces;
    s->spans = b->spans;
    s->decisions = b->decisions;
    rt_peer_env_deadline(&b->env, rt_peer_deadline(rt_clock_wall_ns(), h->o.deadline_ns));
    rt_peer_env_finish(&b->env, &s->body);
    rt_buf_init(&b->body);
    b->begun = false;
    b->traces = b->spans = b->decisions = 0;
    h->inflight++;
    h->inflight_bytes += s->body.len;
    if (rt_peer_clients_send(h->o.clients, node, s->body.data, s->body.len, on_sent, s) != 0) {
        h->inflight--;
        h->inflight_bytes -= s->body.len;
        keep_here(h, s, FAIL_BUSY);
        rt_buf_free(&s->body);
        free(s);
    }
}

static void flush_all(rt_handoff *h)
{
    for (size_t i = 0; i < h->n_batches; i++) {
        flush(h, (int)i);
    }
}

/* ---- what to move ---------------------------------------------------------------------------- */

/* The node that owns `id` now, when that is another node (else -1). */
static int other_owner(const rt_handoff *h, const uint8_t id[16])
{
    if (h->view == NULL) {
        return -1;
    }
    int o = rt_peer_view_owner(h->view, rt_ring_key(id, 16));
    return o == h->view->self ? -1 : o;
}

/* Take trace `id` into its new owner's batch; returns the bytes added (0: nothing moved). */
static size_t take(rt_handoff *h, const uint8_t id[16])
{
    int o = other_owner(h, id);
    if (o < 0 || refused_by(h, id, o)) {
        return 0;
    }
    batch *b = batch_for(h, o);
    size_t before = b->body.len;
    rt_tbuf_trace_state st;
    size_t spans = rt_tbuf_extract(h->o.tbuf, id, &b->body, &st);
    if (spans == 0) {
        return 0;
    }
    rt_peer_trace t = {.age_ns = h->now > st.first_ns ? h->now - st.first_ns : 0,
                       .flags =
                           (st.root_seen ? RT_PEER_TS_ROOT : 0) | (st.held ? RT_PEER_TS_HELD : 0)};
    memcpy(t.trace_id, id, 16);
    if (st.root_seen) {
        t.root_age_ns = h->now > st.root_ns ? h->now - st.root_ns : 0;
    }
    rt_peer_env_trace(&b->env, &t);
    b->traces++;
    b->spans += spans;
    size_t added = b->body.len - before;
    if (b->body.len + rt_peer_env_size(&b->env) >= h->o.batch) {
        flush(h, o);
    }
    return added;
}

/* Queue a trace of the buffer if another node owns it now (rt_tbuf_each_trace). */
static void sweep_one(void *arg, const uint8_t id[16])
{
    rt_handoff *h = arg;
    if (other_owner(h, id) >= 0) {
        queue_push(h, id);
    }
}

/* Id of the owner of `id` in view `v` (NULL without one). */
static const char *owner_id(const rt_peer_view *v, const uint8_t id[16])
{
    if (v == NULL) {
        return NULL;
    }
    int o = rt_peer_view_owner(v, rt_ring_key(id, 16));
    return o < 0 ? NULL : v->nodes[o].id;
}

/* A decision cache entry (rt_tbuf_each_decision): sent when its owner changed to another node. */
static void walk_one(void *arg, const uint8_t id[16], rt_decision d, const char *policy,
                     double count)
{
    rt_handoff *h = arg;
    int o = other_owner(h, id);
    if (o < 0) {
        return;
    }
    const char *was = owner_id(h->base, id);
    if (was != NULL && strcmp(was, h->view->nodes[o].id) == 0) {
        return; /* it already had it */
    }
    batch *b = batch_for(h, o);
    rt_peer_env_decision(&b->env, id, d == RT_DECISION_SAMPLED, policy, count);
    b->decisions++;
}

bool rt_handoff_due(void *arg, const uint8_t trace_id[16])
{
    rt_handoff *h = arg;
    if (h->view == NULL || !rt_peer_view_has_peers(h->view)) {
        return false;
    }
    int o = other_owner(h, trace_id);
    if (o < 0 || refused_by(h, trace_id, o)) {
        return false;
    }
    if (h->n_urgent == h->cap_urgent) {
        h->cap_urgent = h->cap_urgent ? h->cap_urgent * 2 : 64;
        h->urgent = rt_realloc(h->urgent, h->cap_urgent * sizeof *h->urgent);
    }
    memcpy(h->urgent[h->n_urgent++], trace_id, 16);
    return true;
}

void rt_handoff_decided(void *arg, const uint8_t trace_id[16], rt_decision d, const char *policy,
                        double count)
{
    rt_handoff *h = arg;
    if (h->view == NULL || !rt_peer_view_has_peers(h->view)) {
        return;
    }
    int o = other_owner(h, trace_id);
    if (o < 0) {
        return;
    }
    batch *b = batch_for(h, o);
    rt_peer_env_decision(&b->env, trace_id, d == RT_DECISION_SAMPLED, policy, count);
    b->decisions++;
}

/* ---- the view -------------------------------------------------------------------------------- */

void rt_handoff_set_view(rt_handoff *h, rt_peer_view *v, uint64_t now_ns)
{
    h->now = now_ns;
    if (h->view != NULL) {
        flush_all(h); /* batched for the old view's nodes: send them now */
    }
    for (size_t i = 0; i < h->n_batches; i++) {
        rt_buf_free(&h->batches[i].body);
        rt_peer_env_writer_free(&h->batches[i].env);
    }
    free(h->batches);
    h->n_batches = v ? v->n : 0;
    h->batches = rt_calloc(h->n_batches ? h->n_batches : 1, sizeof *h->batches);
    for (size_t i = 0; i < h->n_batches; i++) {
        rt_buf_init(&h->batches[i].body);
        rt_peer_env_writer_init(&h->batches[i].env);
    }
    if (h->walk == SIZE_MAX) {
        /* Not reading the caches: compare them with the view that was in force until now.
         * (While reading, the base stays: the walk restarts against the older view, so a key
         * that moved twice is compared with where it was when the reading began.) */
        rt_peer_view_unref(h->base);
        h->base = h->view;
    } else {
        rt_peer_view_unref(h->view);
    }
    h->view = v;
    if (v) {
        rt_peer_view_ref(v);
    }
    if (h->stay_local.n > 0) { /* a new view may take what the last one refused */
        rt_dcache_free(&h->stay_local);
        rt_dcache_init(&h->stay_local, STAY_LOCAL_MAX);
    }
    queue_clear(h);
    if (v != NULL && rt_peer_view_has_peers(v)) {
        rt_tbuf_each_trace(h->o.tbuf, sweep_one, h);
        h->walk = 0;
    } else {
        h->walk = SIZE_MAX;
    }
    sync_queued(h);
}

/* ---- the pump -------------------------------------------------------------------------------- */

void rt_handoff_tick(rt_handoff *h, uint64_t now_ns)
{
    h->now = now_ns;
    if (h->view == NULL || !rt_peer_view_has_peers(h->view)) {
        queue_clear(h);
        h->n_urgent = 0;
        h->walk = SIZE_MAX;
        sync_queued(h);
        h->last_ns = now_ns;
        return;
    }
    /* The budget fills at `rate` while there is work, and holds at most two ticks' worth: a
     * change starts the transfer at its rate, not with a burst saved up while idle (the
     * receiver ingests what arrives on its loop, between its clients' requests). */
    bool work = h->head < h->len || h->walk != SIZE_MAX;
    double cap = (double)h->o.rate * 0.02;
    if (cap < 16384) {
        cap = 16384;
    }
    if (!work) {
        h->budget = 0;
    } else if (h->last_ns != 0 && now_ns > h->last_ns) {
        h->budget += (double)h->o.rate * (double)(now_ns - h->last_ns) / 1e9;
    }
    if (h->budget > cap) {
        h->budget = cap;
    }
    h->last_ns = now_ns;
    for (size_t i = 0; i < h->n_urgent; i++) {
        take(h, h->urgent[i]); /* a trace already taken, or decided, is simply not found */
    }
    h->n_urgent = 0;
    while (h->budget > 0 && h->inflight_bytes < h->o.max_inflight) {
        if (h->head < h->len) {
            h->budget -= (double)take(h, h->queue[h->head++]);
            if (h->head == h->len) {
                queue_clear(h);
            }
        } else if (h->walk != SIZE_MAX) {
            h->walk = rt_tbuf_each_decision(h->o.tbuf, h->walk, WALK_STEP, walk_one, h);
            h->budget -= (double)(WALK_STEP * DECISION_BYTES);
            if (h->walk == SIZE_MAX) {
                rt_peer_view_unref(h->base);
                h->base = h->view;
                rt_peer_view_ref(h->base);
            }
        } else {
            break;
        }
    }
    if (h->inflight_bytes < h->o.max_inflight) {
        flush_all(h);
    }
    sync_queued(h);
}

bool rt_handoff_idle(const rt_handoff *h)
{
    if (h->head < h->len || h->n_urgent > 0 || h->walk != SIZE_MAX || h->inflight > 0) {
        return false;
    }
    for (size_t i = 0; i < h->n_batches; i++) {
        if (h->batches[i].begun && !batch_empty(&h->batches[i])) {
            return false;
        }
    }
    return true;
}

/* ---- receiving ------------------------------------------------------------------------------- */

void rt_handoff_receive(rt_handoff *h, const uint8_t *req, size_t len, size_t spans,
                        uint64_t now_ns)
{
    rt_peer_env env;
    char err[160];
    if (rt_peer_env_read(req, len, &env, err, sizeof err) != 0 || env.kind == RT_PEER_NONE) {
        return; /* the intake read it already */
    }
    if (env.kind == RT_PEER_HANDOFF) {
        rt_peer_trace t;
        size_t n = 0;
        for (size_t pos = 0; rt_peer_env_next_trace(&env, &pos, &t); n++) {
            rt_tbuf_trace_state st = {.root_seen = (t.flags & RT_PEER_TS_ROOT) != 0,
                                      .held = (t.flags & RT_PEER_TS_HELD) != 0};
            memcpy(st.trace_id, t.trace_id, 16);
            st.first_ns = now_ns > t.age_ns ? now_ns - t.age_ns : 0;
            st.root_ns = now_ns > t.root_age_ns ? now_ns - t.root_age_ns : 0;
            rt_tbuf_adopt(h->o.tbuf, &st, now_ns);
        }
        rt_counter_add(h->m.traces[1], n);
        rt_counter_add(h->m.spans[1], spans);
        rt_counter_add(h->m.bytes[1], len);
    }
    rt_peer_decision d;
    size_t nd = 0;
    for (size_t pos = 0; rt_peer_env_next_decision(&env, &pos, &d); nd++) {
        rt_tbuf_apply_decision(h->o.tbuf, d.trace_id,
                               d.sampled ? RT_DECISION_SAMPLED : RT_DECISION_NOT_SAMPLED,
                               (const char *)d.policy.p, d.policy.len, d.count, now_ns);
    }
    rt_counter_add(h->m.decisions[1], nd);
}

void rt_handoff_free(rt_handoff *h)
{
    if (h == NULL) {
        return;
    }
    for (size_t i = 0; i < h->n_batches; i++) {
        rt_buf_free(&h->batches[i].body);
        rt_peer_env_writer_free(&h->batches[i].env);
    }
    free(h->batches);
    free(h->queue);
    free(h->urgent);
    rt_dcache_free(&h->stay_local);
    rt_peer_view_unref(h->view);
    rt_peer_view_unref(h->base);
    free(h->sender);
    free(h);
}
