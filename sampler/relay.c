/* relay.c - spans forwarded to the owner of their trace, once (see relay.h). */
#include "relay.h"

#include "alloc.h"
#include "clock.h"
#include "log.h"
#include "otlp_encode.h"
#include "otlp_scan.h"
#include "peer_msg.h"

#include <stdlib.h>
#include <string.h>

#define N_FAIL        (RT_OTLP_CLIENT_FAIL_COUNT_ + 3)
#define FAIL_REJECTED RT_OTLP_CLIENT_FAIL_COUNT_       /* the owner refused the data */
#define FAIL_BUSY     (RT_OTLP_CLIENT_FAIL_COUNT_ + 1) /* no client, or at max_inflight */
#define FAIL_DEADLINE (RT_OTLP_CLIENT_FAIL_COUNT_ + 2) /* the caller's deadline came first */

/* One caller's request being placed. */
typedef struct route {
    struct rt_relay *r;
    size_t pending; /* forwards not settled, +1 while route() still runs */
    void (*done)(void *arg);
    void *done_arg;
} route;

/* One forward to one owner: the request as sent (kept to ingest it here if it fails). Lives
 * until the client's callback, also when it was given up first (settled). */
typedef struct fwd {
    struct rt_relay *r;
    route *rt; /* gone once settled */
    rt_buf body;
    size_t spans;
    struct event *give_up; /* the caller's deadline comes before the client's timeout */
    bool settled;
} fwd;

struct rt_relay {
    rt_relay_opts o;
    char *sender;
    rt_peer_view *view; /* ref */
    /* Splitting a request by destination: [0] stays here, [1 + i] goes to node i. */
    rt_otlp_enc *enc;
    rt_buf *parts;
    size_t n_dest, cap_dest;
    rt_peer_env_writer env;
    size_t inflight;
    rt_counter *sent;
    rt_counter *failed[N_FAIL];
};

rt_relay *rt_relay_new(const rt_relay_opts *opts, rt_metrics_registry *reg)
{
    rt_relay *r = rt_calloc(1, sizeof *r);
    r->o = *opts;
    r->sender = rt_strdup(opts->sender ? opts->sender : "");
    r->o.sender = NULL;
    rt_peer_env_writer_init(&r->env);
    r->sent = rt_metrics_counter(reg, "ringtail_sampler_spans_forwarded_total",
                                 "Spans of traces another sampler owns, forwarded to it (sent: "
                                 "acknowledged by the owner; received: from a peer).",
                                 "direction", "sent", NULL);
    const char *help = "Spans that could not be forwarded to their owner and were kept here "
                       "instead, by why the forward failed.";
    for (int i = 0; i < N_FAIL; i++) {
        const char *why = i == FAIL_REJECTED   ? "rejected"
                          : i == FAIL_BUSY     ? "busy"
                          : i == FAIL_DEADLINE ? "caller_deadline"
                                               : rt_otlp_client_fail_name((rt_otlp_client_fail)i);
        r->failed[i] = rt_metrics_counter(reg, "ringtail_sampler_forward_failed_spans_total", help,
                                          "reason", why, NULL);
    }
    return r;
}

void rt_relay_set_view(rt_relay *r, rt_peer_view *v)
{
    if (v) {
        rt_peer_view_ref(v);
    }
    rt_peer_view_unref(r->view);
    r->view = v;
    size_t need = v ? v->n + 1 : 1;
    if (need > r->cap_dest) {
        r->enc = rt_realloc(r->enc, need * sizeof *r->enc);
        r->parts = rt_realloc(r->parts, need * sizeof *r->parts);
        for (size_t i = r->cap_dest; i < need; i++) {
            rt_otlp_enc_init(&r->enc[i]);
            rt_buf_init(&r->parts[i]);
        }
        r->cap_dest = need;
    }
    r->n_dest = need;
}

size_t rt_relay_inflight(const rt_relay *r)
{
    return r->inflight;
}

static void route_settle(route *rt)
{
    if (--rt->pending == 0) {
        void (*done)(void *) = rt->done;
        void *arg = rt->done_arg;
        free(rt);
        done(arg);
    }
}

/* Keep a failed forward's spans here, and report each of its traces. */
static void keep_here(rt_relay *r, const fwd *f)
{
    r->o.ingest(r->o.arg, f->body.data, f->body.len);
    if (r->o.kept == NULL) {
        return;
    }
    rt_otlp_scan it;
    rt_otlp_span_view v;
    uint8_t last[16];
    bool have = false;
    rt_otlp_scan_init_ids(&it, f->body.data, f->body.len);
    while (rt_otlp_scan_next(&it, &v) == 1) {
        if (v.trace_id.len != 16 || (have && memcmp(last, v.trace_id.p, 16) == 0)) {
            continue;
        }
        memcpy(last, v.trace_id.p, 16);
        have = true;
        r->o.kept(r->o.arg, last);
    }
}

static void fwd_free(fwd *f)
{
    if (f->give_up) {
        event_free(f->give_up);
    }
    rt_buf_free(&f->body);
    free(f);
}

/* The caller's deadline is near and the owner has not answered: keep the spans here (the owner
 * refuses the forward after its deadline, which has passed). The client's callback comes later
 * and only frees the forward. */
static void on_give_up(evutil_socket_t fd, short what, void *arg)
{
    fwd *f = arg;
    route *rt = f->rt;
    rt_relay *r = f->r;
    f->settled = true;
    f->rt = NULL;
    rt_counter_add(r->failed[FAIL_DEADLINE], f->spans);
    RT_LOG_RL(RT_LOG_WARN, "forward not acknowledged before the caller's deadline; spans kept here",
              "spans=%zu", f->spans);
    keep_here(r, f);
    route_settle(rt);
}

static void on_forwarded(const rt_otlp_client_result *res, void *arg)
{
    fwd *f = arg;
    rt_relay *r = f->r;
    r->inflight--;
    if (f->settled) {
        fwd_free(f);
        return;
    }
    if (f->give_up) {
        event_del(f->give_up);
    }
    route *rt = f->rt;
    if (res->outcome == RT_OTLP_CLIENT_OK || res->outcome == RT_OTLP_CLIENT_PARTIAL) {
        rt_counter_add(r->sent, f->spans);
    } else {
        int why = res->outcome == RT_OTLP_CLIENT_REJECTED ? FAIL_REJECTED : (int)res->fail;
        rt_counter_add(r->failed[why], f->spans);
        RT_LOG_RL(RT_LOG_WARN, "forward to the owner failed; spans kept here",
                  "spans=%zu outcome=%s reason=%s message=\"%s\"", f->spans,
                  rt_otlp_client_outcome_name(res->outcome), rt_otlp_client_fail_name(res->fail),
                  res->message);
        keep_here(r, f);
    }
    fwd_free(f);
    route_settle(rt);
}

/* Where the spans of `tid` go: 0 here, 1 + i to node i. */
static size_t dest_of(const rt_relay *r, const uint8_t *tid, size_t len)
{
    if (r->view == NULL || len != 16 || rt_tbuf_knows(r->o.tbuf, tid)) {
        return 0;
    }
    int o = rt_peer_view_owner(r->view, rt_ring_key(tid, 16));
    return o < 0 || o == r->view->self ? 0 : (size_t)o + 1;
}

void rt_relay_route(rt_relay *r, const uint8_t *req, size_t len, uint64_t caller_deadline,
                    void (*done)(void *arg), void *done_arg)
{
    /* When the forwards are given up: at the clients' timeout, or a margin before the caller
     * stops waiting; each forward's own deadline is a margin before that. */
    uint64_t now = rt_clock_wall_ns();
    uint64_t margin = rt_peer_deadline_margin(r->o.timeout_ns);
    uint64_t give_up = now + r->o.timeout_ns;
    bool early = false;
    if (caller_deadline != 0 && caller_deadline < give_up + margin) {
        give_up = caller_deadline > margin ? caller_deadline - margin : 0;
        early = true;
    }
    bool forward = r->view != NULL && give_up > now + 2 * margin;
    for (size_t i = 0; i < r->n_dest; i++) {
        rt_buf_reset(&r->parts[i]);
        rt_otlp_enc_begin(&r->enc[i], &r->parts[i]);
    }
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init_ids(&it, req, len);
    uint8_t last_tid[16];
    size_t last_len = SIZE_MAX, d = 0;
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        if (v.trace_id.len != last_len || memcmp(last_tid, v.trace_id.p, v.trace_id.len) != 0) {
            last_len = v.trace_id.len < 16 ? v.trace_id.len : 16;
            memcpy(last_tid, v.trace_id.p, last_len);
            d = forward ? dest_of(r, v.trace_id.p, v.trace_id.len) : 0;
        }
        rt_otlp_enc_view(&r->enc[d], &v);
    }
    if (rc < 0) { /* cannot happen: the intake checked the request */
        RT_LOG_RL(RT_LOG_ERROR, "relay could not walk a checked request (bug)", "reason=\"%s\"",
                  it.err);
    }
    route *rt = rt_malloc(sizeof *rt);
    *rt = (route){r, 1, done, done_arg};
    for (size_t i = 1; i < r->n_dest; i++) {
        size_t spans = rt_otlp_enc_span_count(&r->enc[i]);
        if (rt_otlp_enc_finish(&r->enc[i]) == 0) {
            continue;
        }
        fwd *f = rt_calloc(1, sizeof *f);
        f->r = r;
        f->rt = rt;
        f->spans = spans;
        f->body = r->parts[i];
        r->parts[i] = (rt_buf)RT_BUF_INIT;
        rt_peer_env_begin(&r->env, RT_PEER_FORWARD, r->sender, r->view->content_hash);
        rt_peer_env_deadline(&r->env, give_up - margin);
        rt_peer_env_finish(&r->env, &f->body);
        if (rt_peer_clients_send(r->o.clients, (int)i - 1, f->body.data, f->body.len, on_forwarded,
                                 f) != 0) {
            rt_counter_add(r->failed[FAIL_BUSY], spans);
            keep_here(r, f);
            fwd_free(f);
            continue;
        }
        if (early) {
            uint64_t in = give_up - now;
            struct timeval tv = {(time_t)(in / 1000000000ull),
                                 (suseconds_t)(in % 1000000000ull / 1000)};
            f->give_up = evtimer_new(r->o.base, on_give_up, f);
            evtimer_add(f->give_up, &tv);
        }
        r->inflight++;
        rt->pending++;
    }
    if (rt_otlp_enc_finish(&r->enc[0]) > 0) {
        r->o.ingest(r->o.arg, r->parts[0].data, r->parts[0].len);
    }
    route_settle(rt);
}

void rt_relay_free(rt_relay *r)
{
    if (r == NULL) {
        return;
    }
    for (size_t i = 0; i < r->cap_dest; i++) {
        rt_otlp_enc_free(&r->enc[i]);
        rt_buf_free(&r->parts[i]);
    }
    free(r->enc);
    free(r->parts);
    rt_peer_env_writer_free(&r->env);
    rt_peer_view_unref(r->view);
    free(r->sender);
    free(r);
}
