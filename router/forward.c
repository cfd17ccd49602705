/* forward.c - split requests by trace owner, forward the parts, answer when all are settled
 * (see forward.h for the contract).
 *
 * Ownership graph (all on one worker thread):
 *   rt_fwd --owns--> fwd_node[] (one per node of the current view) --owns--> rt_otlp_client
 *   rt_fwd --owns--> fwd_req list (client requests with parts outstanding or not yet answered)
 *   fwd_part (one export in a client) --ref--> fwd_req, fwd_node; owns its body bytes
 * A fwd_req is freed when it has been answered AND its last part is done; a part ends exactly
 * once, in its client's done callback (freeing a client ends its parts with SHUTDOWN).
 */
#include "forward.h"

#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "node_health.h"
#include "log.h"
#include "otlp_scan.h"
#include "otlp_split.h"
#include "peer_msg.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FWD_MAX_EXCL 16 /* nodes a part may exclude; beyond that the oldest are forgotten */

typedef struct fwd_req fwd_req;
typedef struct fwd_part fwd_part;

typedef struct fwd_node {
    char *id;
    char *endpoint;
    int protocol;           /* rt_otlp_client_protocol */
    rt_otlp_client *client; /* NULL when it could not be created (node treated as down) */
    size_t idx;             /* index in the current view */
    rt_health_node *health; /* ref */
    rt_view_node *vn;       /* ref in the current view: metric handles */
    /* Split scratch: the part being filled in the current split. */
    uint64_t split_mark;
    fwd_part *cur;
} fwd_node;

struct fwd_part {
    fwd_req *req;
    fwd_node *node;
    rt_otlp_part plan; /* its spans: runs into the client's request bytes, for re-routing */
    rt_buf body;       /* the encoded part until the client takes it */
    size_t spans;
    uint64_t sent_ns;
    uint64_t view_gen; /* generation the exclusions refer to */
    uint16_t excl[FWD_MAX_EXCL];
    size_t n_excl;
};

struct fwd_req {
    rt_fwd *f;
    rt_otlp_call *call; /* NULL once answered */
    struct event deadline;
    size_t pending; /* parts in flight */
    size_t total, invalid, acked, sampler_rejected, throttled, unavailable;
    char sampler_msg[160];
    fwd_req *prev, *next;
};

struct rt_fwd {
    struct event_base *base;
    size_t index;
    rt_fwd_opts opts;
    rt_view *view;
    rt_ring *ring; /* view->rings[index], private to this worker */
    fwd_node **nodes;
    size_t n_nodes;
    uint64_t split_seq;
    rt_otlp_splitter sp; /* the walk; its callbacks open parts for split_req */
    fwd_req *split_req;  /* the request being split */
    fwd_part **touched;  /* parts opened by the current split */
    size_t n_touched, cap_touched;
    fwd_req *reqs;          /* every live request */
    rt_peer_env_writer env; /* the deadline mark put on each part */
    _Atomic size_t active;
    bool closing;
};

static const double latency_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};

void rt_fwd_metrics_init(rt_fwd_metrics *m, rt_metrics_registry *reg)
{
    static const char *const proto[3] = {"http_protobuf", "http_json", "grpc"};
    static const char *const rej[RT_FWD_REJ_COUNT_] = {"invalid_trace_id", "unavailable",
                                                       "throttled", "sampler_rejected"};
    for (int i = 0; i < 3; i++) {
        m->spans_received[i] = rt_metrics_counter(reg, "ringtail_router_spans_received_total",
                                                  "Spans received from clients, by protocol.",
                                                  "protocol", proto[i], NULL);
        m->requests_received[i] = rt_metrics_counter(
            reg, "ringtail_router_requests_received_total",
            "Export requests received from clients, by protocol.", "protocol", proto[i], NULL);
    }
    for (int i = 0; i < RT_FWD_REJ_COUNT_; i++) {
        m->rejected[i] = rt_metrics_counter(
            reg, "ringtail_router_spans_rejected_total",
            "Spans not delivered, by reason: invalid_trace_id (partial success), unavailable "
            "(no node could take them in time: 503), throttled (node in-flight cap: 429), "
            "sampler_rejected (a sampler refused them).",
            "reason", rej[i], NULL);
    }
    m->latency = rt_metrics_histogram(
        reg, "ringtail_router_forward_latency_seconds",
        "Time from sending a part to a sampler to its acknowledgement (retries included).",
        latency_bounds, sizeof latency_bounds / sizeof latency_bounds[0], NULL);
    m->inflight = rt_metrics_gauge(reg, "ringtail_router_inflight_requests",
                                   "Client requests received and not yet answered.", NULL);
}

/* ---- nodes ------------------------------------------------------------------------------- */

static int node_protocol(const rt_fwd *f, const rt_view_node *vn)
{
    if (f->opts.protocol >= 0) {
        return f->opts.protocol;
    }
    return vn->protocol == RT_MEMBER_GRPC ? RT_OTLP_CLIENT_GRPC : RT_OTLP_CLIENT_HTTP;
}

static fwd_node *node_new(rt_fwd *f, const rt_view_node *vn)
{
    fwd_node *n = rt_calloc(1, sizeof *n);
    n->id = rt_strdup(vn->id);
    n->endpoint = rt_strdup(vn->endpoint);
    n->protocol = node_protocol(f, vn);
    rt_otlp_client_opts o = {
        .protocol = (rt_otlp_client_protocol)n->protocol,
        .endpoint = n->endpoint,
        .gzip = f->opts.gzip,
        .tls = n->protocol == RT_OTLP_CLIENT_GRPC ? f->opts.tls_grpc : f->opts.tls_http,
        .server_name = f->opts.server_name && f->opts.server_name[0] ? f->opts.server_name : NULL,
        .timeout_ms = f->opts.timeout_ms,
        .max_conns = f->opts.connections,
        .max_inflight = f->opts.max_inflight,
        .retry = {.initial_ns = 50ull * 1000 * 1000,
                  .max_ns = 1000ull * 1000 * 1000,
                  .max_elapsed_ns = f->opts.retry_budget_ns},
    };
    char err[256];
    n->client = rt_otlp_client_new(f->base, &o, err, sizeof err);
    if (n->client == NULL) {
        RT_LOG_RL(RT_LOG_ERROR, "cannot create client for sampler node", "node=%s reason=\"%s\"",
                  n->id, err);
    }
    return n;
}

/* Free the client first (its parts end with SHUTDOWN and are re-routed on the current view),
 * then the node. */
static void node_free(fwd_node *n)
{
    rt_otlp_client_free(n->client);
    n->client = NULL;
    if (n->health) {
        rt_health_node_unref(n->health);
    }
    free(n->id);
    free(n->endpoint);
    free(n);
}

static void node_bind(fwd_node *n, size_t idx, rt_view_node *vn)
{
    n->idx = idx;
    n->vn = vn;
    if (n->health != vn->health) {
        if (vn->health) {
            rt_health_node_ref(vn->health);
        }
        if (n->health) {
            rt_health_node_unref(n->health);
        }
        n->health = vn->health;
    }
}

static int split_owner(void *arg, const uint8_t *trace_id);
static rt_otlp_part *split_part(void *arg, int owner);

rt_fwd *rt_fwd_new(struct event_base *base, size_t worker_index, const rt_fwd_opts *opts)
{
    rt_fwd *f = rt_calloc(1, sizeof *f);
    f->base = base;
    f->index = worker_index;
    f->opts = *opts;
    rt_otlp_splitter_init(&f->sp, split_owner, split_part, f);
    rt_peer_env_writer_init(&f->env);
    atomic_init(&f->active, 0);
    return f;
}

void rt_fwd_set_view(rt_fwd *f, rt_view *view)
{
    rt_view_ref(view);
    fwd_node **old = f->nodes;
    size_t n_old = f->n_nodes;
    fwd_node **nodes = rt_calloc(view->n ? view->n : 1, sizeof *nodes);
    for (size_t i = 0; i < view->n; i++) {
        rt_view_node *vn = &view->nodes[i];
        int proto = node_protocol(f, vn);
        for (size_t j = 0; j < n_old; j++) {
            if (old[j] && strcmp(old[j]->id, vn->id) == 0 &&
                strcmp(old[j]->endpoint, vn->endpoint) == 0 && old[j]->protocol == proto) {
                nodes[i] = old[j];
                old[j] = NULL;
                break;
            }
        }
        if (nodes[i] == NULL) {
            nodes[i] = node_new(f, vn);
        }
        node_bind(nodes[i], i, vn);
    }
    rt_view *old_view = f->view;
    f->view = view;
    f->ring = f->index < view->n_rings ? view->rings[f->index] : NULL;
    f->nodes = nodes;
    f->n_nodes = view->n;
    if (f->ring) {
        /* A node without a client cannot take parts: keep it out of this worker's lookups. */
        for (size_t i = 0; i < view->n; i++) {
            if (nodes[i]->client == NULL) {
                rt_ring_set_up(f->ring, i, false);
            }
        }
    }
    /* The new view is in force: parts held by dropped clients are re-routed on it. */
    for (size_t j = 0; j < n_old; j++) {
        if (old[j]) {
            node_free(old[j]);
        }
    }
    free(old);
    rt_view_unref(old_view);
}

size_t rt_fwd_active(const rt_fwd *f)
{
    return atomic_load_explicit(&((rt_fwd *)f)->active, memory_order_relaxed);
}

/* ---- requests ---------------------------------------------------------------------------- */

static void req_answer(fwd_req *r, const rt_otlp_result *res)
{
    rt_otlp_call_respond(r->call, res);
    r->call = NULL;
    event_del(&r->deadline);
    atomic_fetch_sub_explicit(&r->f->active, 1, memory_order_relaxed);
    rt_gauge_dec(r->f->opts.metrics->inflight);
}

static void req_free(fwd_req *r)
{
    rt_fwd *f = r->f;
    if (r->prev) {
        r->prev->next = r->next;
    } else {
        f->reqs = r->next;
    }
    if (r->next) {
        r->next->prev = r->prev;
    }
    free(r);
}

/* Answer from the counts (every part settled, or the deadline passed). */
static void req_answer_counts(fwd_req *r, bool deadline)
{
    rt_fwd *f = r->f;
    const rt_fwd_metrics *m = f->opts.metrics;
    rt_otlp_result res;
    if (deadline) {
        size_t settled =
            r->invalid + r->acked + r->sampler_rejected + r->throttled + r->unavailable;
        size_t late = r->total > settled ? r->total - settled : 0;
        r->unavailable += late;
        rt_counter_add(m->rejected[RT_FWD_REJ_UNAVAILABLE], late);
    }
    if (r->unavailable > 0) {
        rt_otlp_result_set(
            &res, RT_OTLP_UNAVAILABLE, "%zu of %zu spans could not be placed on a sampler node%s",
            r->unavailable, r->total, deadline ? " before the request deadline" : "");
        res.retry_after_s = f->opts.retry_after_s;
    } else if (r->throttled > 0) {
        rt_otlp_result_set(&res, RT_OTLP_THROTTLED,
                           "%zu of %zu spans: sampler node busy (in-flight limit reached)",
                           r->throttled, r->total);
        res.retry_after_s = f->opts.retry_after_s;
    } else {
        rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
        res.rejected_spans = (int64_t)(r->invalid + r->sampler_rejected);
        if (r->invalid && r->sampler_rejected) {
            snprintf(res.message, sizeof res.message,
                     "%zu spans with an invalid trace id (must be 16 bytes, not all zero); %zu "
                     "refused by a sampler: %s",
                     r->invalid, r->sampler_rejected, r->sampler_msg);
        } else if (r->invalid) {
            snprintf(res.message, sizeof res.message,
                     "%zu spans with an invalid trace id (must be 16 bytes, not all zero)",
                     r->invalid);
        } else if (r->sampler_rejected) {
            snprintf(res.message, sizeof res.message, "%zu spans refused by a sampler: %s",
                     r->sampler_rejected, r->sampler_msg);
        }
    }
    req_answer(r, &res);
}

static void req_settle(fwd_req *r)
{
    if (r->pending > 0) {
        return;
    }
    if (r->call) {
        req_answer_counts(r, false);
    }
    req_free(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    fwd_req *r = arg;
    if (r->call) {
        RT_LOG_RL(RT_LOG_WARN, "request deadline passed before every part was acknowledged",
                  "peer=%s spans=%zu pending_parts=%zu", rt_otlp_call_peer(r->call), r->total,
                  r->pending);
        req_answer_counts(r, true);
    }
    /* Parts still in flight finish later; the last one frees the request. */
}

/* ---- splitting --------------------------------------------------------------------------- */

static void on_part_done(const rt_otlp_client_result *res, void *arg);

static fwd_part *part_open(rt_fwd *f, fwd_req *r, fwd_node *n)
{
    fwd_part *p = rt_calloc(1, sizeof *p);
    p->req = r;
    p->node = n;
    rt_otlp_part_init(&p->plan);
    rt_buf_init(&p->body);
    p->view_gen = f->view->generation;
    n->split_mark = f->split_seq;
    n->cur = p;
    if (f->n_touched == f->cap_touched) {
        f->cap_touched = f->cap_touched ? 2 * f->cap_touched : 8;
        f->touched = rt_realloc(f->touched, f->cap_touched * sizeof *f->touched);
    }
    f->touched[f->n_touched++] = p;
    return p;
}

/* The splitter's callbacks: the owner of a trace id on this worker's ring (with the current
 * exclusions flipped down), and the part collecting an owner's spans in this split. */
static int split_owner(void *arg, const uint8_t *trace_id)
{
    rt_fwd *f = arg;
    return rt_ring_lookup_key(f->ring, rt_ring_key(trace_id, 16));
}

static rt_otlp_part *split_part(void *arg, int owner)
{
    rt_fwd *f = arg;
    fwd_node *n = f->nodes[owner];
    fwd_part *p = n->split_mark == f->split_seq ? n->cur : part_open(f, f->split_req, n);
    return &p->plan;
}

static void part_free(fwd_part *p)
{
    rt_otlp_part_free(&p->plan);
    rt_buf_free(&p->body);
    free(p);
}

/* Send a finished part (its body goes to the client, not copied), or account it as throttled
 * when its node refuses more. */
static void part_send(rt_fwd *f, fwd_part *p)
{
    fwd_req *r = p->req;
    p->sent_ns = rt_clock_mono_ns();
    if (f->opts.mark_deadline) {
        rt_peer_env_begin(&f->env, RT_PEER_ROUTED, NULL, 0);
        rt_peer_env_deadline(&f->env,
                             rt_peer_deadline(rt_clock_wall_ns(), f->opts.timeout_ms * 1000000ull));
        rt_peer_env_finish(&f->env, &p->body);
    }
    if (rt_otlp_client_export_buf(p->node->client, &p->body, on_part_done, p) == 0) {
        r->pending++;
        return;
    }
    r->throttled += p->spans;
    rt_counter_add(f->opts.metrics->rejected[RT_FWD_REJ_THROTTLED], p->spans);
    rt_counter_inc(p->node->vn->errors[RT_VIEW_ERR_THROTTLED]);
    part_free(p);
}

/* Route the spans of the client's request pb[0..len) (`src` NULL), or of the part `src` (whose
 * runs point into that request, still valid while the client is unanswered), on this worker's
 * ring and send one part per owner. `from` (may be NULL) is the failed part being re-routed:
 * its exclusions (and its node) are kept out of the lookups and copied to the new parts. Spans
 * that no node can take are counted as unavailable; with `first`, every span and the invalid
 * trace ids are counted. Returns -1, having sent nothing, if pb is malformed (message in
 * f->sp.err; only possible on the first split). */
static int route(rt_fwd *f, fwd_req *r, const uint8_t *pb, size_t len, const rt_otlp_part *src,
                 const fwd_part *from, bool first)
{
    const rt_fwd_metrics *m = f->opts.metrics;
    uint16_t excl[FWD_MAX_EXCL + 1];
    size_t n_excl = 0;
    if (from && from->view_gen == f->view->generation) {
        memcpy(excl, from->excl, from->n_excl * sizeof excl[0]);
        n_excl = from->n_excl;
    }
    if (from && from->node->idx < f->n_nodes && f->nodes[from->node->idx] == from->node) {
        if (n_excl == FWD_MAX_EXCL) {
            memmove(excl, excl + 1, (FWD_MAX_EXCL - 1) * sizeof excl[0]);
            n_excl--;
        }
        excl[n_excl++] = (uint16_t)from->node->idx;
    }
    /* Exclusions are flips in this worker's private ring, undone below. */
    bool restore[FWD_MAX_EXCL + 1];
    for (size_t i = 0; i < n_excl; i++) {
        restore[i] = rt_ring_is_up(f->ring, excl[i]);
        rt_ring_set_up(f->ring, excl[i], false);
    }

    f->split_seq++;
    f->n_touched = 0;
    f->split_req = r;
    int rc = 0;
    if (src) {
        rt_otlp_split_part(&f->sp, src);
    } else {
        rc = rt_otlp_split(&f->sp, pb, len);
    }
    f->split_req = NULL;
    for (size_t i = n_excl; i-- > 0;) {
        rt_ring_set_up(f->ring, excl[i], restore[i]);
    }
    if (rc == 0 && first) {
        r->total += f->sp.spans;
        r->invalid += f->sp.invalid;
        if (f->sp.invalid) {
            rt_counter_add(m->rejected[RT_FWD_REJ_INVALID_TRACE_ID], f->sp.invalid);
        }
    }
    if (rc == 0 && f->sp.unplaced) {
        r->unavailable += f->sp.unplaced;
        rt_counter_add(m->rejected[RT_FWD_REJ_UNAVAILABLE], f->sp.unplaced);
    }
    /* Encode every part before sending any: send never calls back synchronously, but the
     * touched list must not be reused by a nested split. */
    size_t n_parts = f->n_touched;
    for (size_t i = 0; i < n_parts; i++) {
        fwd_part *p = f->touched[i];
        p->node->split_mark = 0;
        if (rc == 0) {
            p->spans = p->plan.spans;
            rt_otlp_part_write(&p->plan, &p->body);
            memcpy(p->excl, excl, n_excl * sizeof excl[0]);
            p->n_excl = n_excl;
        }
    }
    f->n_touched = 0;
    fwd_part *local[16];
    fwd_part **parts = n_parts <= 16 ? local : rt_malloc(n_parts * sizeof *parts);
    memcpy(parts, f->touched, n_parts * sizeof *parts);
    for (size_t i = 0; i < n_parts; i++) {
        if (rc == 0) {
            part_send(f, parts[i]);
        } else {
            part_free(parts[i]);
        }
    }
    if (parts != local) {
        free(parts);
    }
    return rc;
}

static rt_view_err fail_reason(rt_otlp_client_fail fail)
{
    switch (fail) {
    case RT_OTLP_CLIENT_FAIL_CONNECT:
        return RT_VIEW_ERR_CONNECT;
    case RT_OTLP_CLIENT_FAIL_TIMEOUT:
        return RT_VIEW_ERR_TIMEOUT;
    case RT_OTLP_CLIENT_FAIL_CONN_LOST:
        return RT_VIEW_ERR_CONN_LOST;
    case RT_OTLP_CLIENT_FAIL_PROTOCOL:
        return RT_VIEW_ERR_PROTOCOL;
    default:
        return RT_VIEW_ERR_STATUS;
    }
}

static void on_part_done(const rt_otlp_client_result *res, void *arg)
{
    fwd_part *p = arg;
    fwd_req *r = p->req;
    fwd_node *n = p->node;
    rt_fwd *f = r->f;
    const rt_fwd_metrics *m = f->opts.metrics;
    r->pending--;
    switch (res->outcome) {
    case RT_OTLP_CLIENT_OK:
    case RT_OTLP_CLIENT_PARTIAL: {
        size_t rej = 0;
        if (res->outcome == RT_OTLP_CLIENT_PARTIAL && res->rejected_spans > 0) {
            rej = (size_t)res->rejected_spans < p->spans ? (size_t)res->rejected_spans : p->spans;
            if (r->sampler_msg[0] == '\0') {
                snprintf(r->sampler_msg, sizeof r->sampler_msg, "%s: %s", n->id, res->message);
            }
        }
        r->acked += p->spans - rej;
        r->sampler_rejected += rej;
        rt_counter_add(n->vn->spans_forwarded, p->spans - rej);
        rt_counter_add(m->rejected[RT_FWD_REJ_SAMPLER_REJECTED], rej);
        rt_histogram_observe(m->latency, (double)(rt_clock_mono_ns() - p->sent_ns) / 1e9);
        if (n->health) {
            rt_health_passive(n->health, true);
        }
        break;
    }
    case RT_OTLP_CLIENT_REJECTED:
        /* Final: the same bytes would be refused again. */
        r->sampler_rejected += p->spans;
        if (r->sampler_msg[0] == '\0') {
            snprintf(r->sampler_msg, sizeof r->sampler_msg, "%s: %s", n->id, res->message);
        }
        rt_counter_add(m->rejected[RT_FWD_REJ_SAMPLER_REJECTED], p->spans);
        rt_counter_inc(n->vn->errors[RT_VIEW_ERR_REJECTED]);
        RT_LOG_RL(RT_LOG_WARN, "sampler refused spans",
                  "node=%s spans=%zu http_status=%d "
                  "reason=\"%s\"",
                  n->id, p->spans, res->http_status, res->message);
        if (n->health) {
            rt_health_passive(n->health, true);
        }
        break;
    case RT_OTLP_CLIENT_GAVE_UP:
    default:
        if (res->fail == RT_OTLP_CLIENT_FAIL_SHUTDOWN) {
            /* The client went away with a view change (or shutdown): not the node's fault. */
            if (f->closing || r->call == NULL) {
                r->unavailable += p->spans;
                rt_counter_add(m->rejected[RT_FWD_REJ_UNAVAILABLE], p->spans);
            } else {
                route(f, r, NULL, 0, &p->plan, NULL, false);
            }
            break;
        }
        rt_counter_inc(n->vn->errors[fail_reason(res->fail)]);
        if (res->fail == RT_OTLP_CLIENT_FAIL_STATUS &&
            (res->http_status == 429 || res->grpc_status == 8)) {
            /* The node is alive and pushing back: pass the back-pressure on. */
            r->throttled += p->spans;
            rt_counter_add(m->rejected[RT_FWD_REJ_THROTTLED], p->spans);
            break;
        }
        if (n->health) {
            rt_health_passive(n->health, false);
        }
        RT_LOG_RL(RT_LOG_WARN, "forward failed; re-routing to successors",
                  "node=%s spans=%zu fail=%s attempts=%u reason=\"%s\"", n->id, p->spans,
                  rt_otlp_client_fail_name(res->fail), res->attempts, res->message);
        if (r->call == NULL || f->closing) {
            break; /* already answered (deadline): the spans were counted then */
        }
        rt_counter_inc(n->vn->retries);
        route(f, r, NULL, 0, &p->plan, p, false);
        break;
    }
    part_free(p);
    req_settle(r);
}

/* The listener does not check the request (handler_checks: the split below is the check), so
 * `span_count` is not used: the split counts spans, and a malformed request is answered here
 * with the structural check's 400 before any part is sent. */
void rt_fwd_handle(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count, void *arg)
{
    rt_fwd *f = arg;
    const rt_fwd_metrics *m = f->opts.metrics;
    rt_otlp_transport t = rt_otlp_call_transport(call);
    rt_otlp_result res;
    (void)span_count;

    fwd_req *r = rt_calloc(1, sizeof *r);
    r->f = f;
    r->call = call;
    r->next = f->reqs;
    if (f->reqs) {
        f->reqs->prev = r;
    }
    f->reqs = r;
    atomic_fetch_add_explicit(&f->active, 1, memory_order_relaxed);
    rt_gauge_inc(m->inflight);
    evtimer_assign(&r->deadline, f->base, on_deadline, r);

    if (f->closing || f->ring == NULL) {
        /* Nothing is routed: the structural check alone (rare path) to count or refuse. */
        size_t n = 0;
        char why[RT_OTLP_ERR_MAX];
        if (rt_otlp_check_structure(pb, len, &n, why, sizeof why) != 0) {
            rt_otlp_result_set(&res, RT_OTLP_BAD_DATA, "protobuf: %s", why);
        } else {
            rt_counter_inc(m->requests_received[t]);
            rt_counter_add(m->spans_received[t], n);
            rt_otlp_result_set(&res, RT_OTLP_UNAVAILABLE, "%s",
                               f->closing ? "router is shutting down" : "no ring loaded");
            res.retry_after_s = f->opts.retry_after_s;
            r->total = n;
            r->unavailable = n;
            rt_counter_add(m->rejected[RT_FWD_REJ_UNAVAILABLE], n);
        }
        req_answer(r, &res);
        req_free(r);
        return;
    }
    if (route(f, r, pb, len, NULL, NULL, true) != 0) {
        /* Malformed: nothing was sent; the same answer the listener's check used to give. Not
         * counted as received, as when the listener refused it. */
        rt_otlp_result_set(&res, RT_OTLP_BAD_DATA, "protobuf: %s", f->sp.err);
        req_answer(r, &res);
        req_settle(r);
        return;
    }
    rt_counter_inc(m->requests_received[t]);
    rt_counter_add(m->spans_received[t], r->total);
    if (r->pending > 0) {
        struct timeval tv = {(time_t)(f->opts.request_deadline_ns / 1000000000ull),
                             (suseconds_t)(f->opts.request_deadline_ns % 1000000000ull / 1000)};
        evtimer_add(&r->deadline, &tv);
    }
    req_settle(r);
}

void rt_fwd_free(rt_fwd *f)
{
    if (f == NULL) {
        return;
    }
    f->closing = true;
    /* Answer everyone first; freeing the clients then ends every part (SHUTDOWN), and the last
     * part of each request frees it. */
    for (fwd_req *r = f->reqs; r; r = r->next) {
        if (r->call) {
            req_answer_counts(r, true);
        }
    }
    for (size_t i = 0; i < f->n_nodes; i++) {
        node_free(f->nodes[i]);
    }
    free(f->nodes);
    while (f->reqs) {
        req_free(f->reqs); /* only requests without parts can be left; none are expected */
    }
    free(f->touched);
    rt_otlp_splitter_free(&f->sp);
    rt_peer_env_writer_free(&f->env);
    rt_view_unref(f->view);
    free(f);
}
