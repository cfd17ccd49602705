/* main.c - ringtail-sampler: OTLP in, per-trace buffering and tail-sampling decisions, OTLP out.
 *
 * Ownership (who holds what):
 *
 *   sampler (main thread)
 *     ├─ rt_sampler_cfg            the loaded config; policies of the running set live here
 *     ├─ rt_intake                 OTLP/HTTP + gRPC listeners on every worker
 *     └─ shard[i], one per worker, touched only on worker i's thread:
 *          ├─ rt_policy_engine     the running policy set + this worker's token buckets
 *          ├─ rt_tbuf              the pending traces whose trace id hashes to shard i
 *          └─ rt_exporter          batches and clients for every backend
 *
 * A request is handled on the worker whose listener accepted it: its spans are split by
 * shard; the part for the local shard is buffered at once, every other part is re-encoded
 * (span bytes copied under their own resource and scope) and posted to its worker. The client
 * is answered once every part has been handed over, so a trace is only ever touched by one
 * thread and the hot path takes no lock.
 *
 * Reload (SIGHUP or the config file changing): the file is parsed again; if it is good, each
 * worker switches to an engine on the new policies (its pending traces are observed again) and
 * the old set is freed afterwards; if it is bad the running policies stay and the error is
 * logged. Only the policies (and sample_on_first_match) are reloaded; other keys need a restart
 * and a reload that changes them says so.
 *
 * Stop (SIGTERM): the listeners close, each worker decides everything pending and drains its
 * exporter (bounded by shutdown_timeout), then the process exits.
 */
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

typedef struct shard {
    sampler *s; /* ref */
    rt_worker *w;
    int index;
    rt_policy_engine *engine;
    rt_tbuf *tbuf;
    rt_exporter *exporter;
    struct event *tick;
    /* splitting a request by shard (this worker's scratch, reused) */
    rt_otlp_enc *enc; /* one per shard */
    rt_buf *parts;    /* one per shard */
    size_t *last_res, *last_scope;
    _Atomic bool full; /* block_on_overflow pressure, read by every worker */
} shard;

struct sampler {
    rt_daemon *d;
    rt_sampler_cfg *cfg; /* ref: the running config */
    rt_intake *intake;
    shard *shards;
    unsigned n;
    rt_counter *requests[3];
    rt_counter *throttled_spans;
    char sampler_id[256]; /* node_id, or the host name: signed on every exported Resource */
    /* shutdown */
    struct event *drained_ev;
    atomic_uint draining;
    /* reload */
    rt_policy_set *next_set; /* handed to workers during a switch */
    rt_sampler_cfg *reloaded;
};

static sampler g_sampler; /* the one per process; reached from the daemon's callbacks */

/* ---- ingest ------------------------------------------------------------------------------- */

typedef struct part_task {
    rt_buf pb;
} part_task;

/* A part made by on_request's split (checked there). */
static void shard_ingest(shard *sh, const uint8_t *pb, size_t len)
{
    if (rt_tbuf_ingest(sh->tbuf, pb, len, rt_clock_mono_ns()) < 0) {
        RT_LOG_RL(RT_LOG_ERROR, "shard could not walk a validated request (bug)", "shard=%d",
                  sh->index);
    }
    atomic_store_explicit(&sh->full, rt_tbuf_full(sh->tbuf), memory_order_relaxed);
}

static void refuse_malformed(rt_otlp_call *call, const char *why)
{
    rt_otlp_result res;
    rt_otlp_result_set(&res, RT_OTLP_BAD_DATA, "protobuf: %s", why);
    rt_otlp_call_respond(call, &res);
}

static void part_run(rt_worker *w, void *arg)
{
    part_task *t = arg;
    shard *sh = &g_sampler.shards[rt_worker_index(w)];
    shard_ingest(sh, t->pb.data, t->pb.len);
    rt_buf_free(&t->pb);
    free(t);
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
    char why[RT_OTLP_ERR_MAX];
    (void)span_count;
    rt_counter_inc(s->requests[rt_otlp_call_transport(call)]);
    if (rt_sampler_ts(s->cfg)->block_on_overflow) {
        for (unsigned i = 0; i < s->n; i++) {
            if (atomic_load_explicit(&s->shards[i].full, memory_order_relaxed)) {
                size_t n = 0;
                if (rt_otlp_validate(pb, len, &n, why, sizeof why) != 0) {
                    refuse_malformed(call, why);
                    return;
                }
                if (n == 0) {
                    break; /* nothing to hold back */
                }
                rt_counter_add(s->throttled_spans, n);
                rt_otlp_result_set(&res, RT_OTLP_THROTTLED,
                                   "trace buffer full (block_on_overflow); retry later");
                res.retry_after_s = 1;
                rt_otlp_call_respond(call, &res);
                return;
            }
        }
    }
    if (s->n == 1) {
        if (rt_tbuf_ingest_checked(me->tbuf, pb, len, rt_clock_mono_ns(), why, sizeof why) < 0) {
            refuse_malformed(call, why);
            return;
        }
        atomic_store_explicit(&me->full, rt_tbuf_full(me->tbuf), memory_order_relaxed);
        rt_otlp_call_respond(call, &res);
        return;
    }
    /* Split by shard. Spans arrive grouped by resource and scope; a part opens a resource or
     * scope block when the span's differs from the last one it got. */
    for (unsigned i = 0; i < s->n; i++) {
        rt_buf_reset(&me->parts[i]);
        rt_otlp_enc_begin(&me->enc[i], &me->parts[i]);
        me->last_res[i] = me->last_scope[i] = SIZE_MAX;
    }
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init_checked(&it, pb, len); /* nothing is handed on before the end */
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        unsigned k = rt_tbuf_shard_of(v.trace_id.p, v.trace_id.len, s->n);
        rt_otlp_enc *e = &me->enc[k];
        if (me->last_res[k] != v.resource_index) {
            rt_otlp_enc_resource(e, v.has_resource ? v.resource.p : NULL, v.resource.len,
                                 v.resource_schema_url.p, v.resource_schema_url.len);
            me->last_res[k] = v.resource_index;
            me->last_scope[k] = SIZE_MAX;
        }
        if (me->last_scope[k] != v.scope_seq) {
            rt_otlp_enc_scope(e, v.has_scope ? v.scope.p : NULL, v.scope.len, v.scope_schema_url.p,
                              v.scope_schema_url.len);
            me->last_scope[k] = v.scope_seq;
        }
        rt_otlp_enc_span(e, v.span.p, v.span.len);
    }
    if (rc < 0) {
        refuse_malformed(call, it.err);
        return;
    }
    for (unsigned i = 0; i < s->n; i++) {
        if (rt_otlp_enc_finish(&me->enc[i]) == 0) {
            continue;
        }
        if ((int)i == me->index) {
            shard_ingest(me, me->parts[i].data, me->parts[i].len);
            continue;
        }
        part_task *t = rt_malloc(sizeof *t);
        t->pb = me->parts[i];
        me->parts[i] = (rt_buf)RT_BUF_INIT;
        rt_worker_post(s->shards[i].w, part_run, t);
    }
    rt_otlp_call_respond(call, &res);
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
    rt_tbuf_tick(sh->tbuf, rt_clock_mono_ns());
    atomic_store_explicit(&sh->full, rt_tbuf_full(sh->tbuf), memory_order_relaxed);
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
    };
    sh->tbuf = rt_tbuf_new(&o, sh->engine, emit, sh, reg);
    sh->enc = rt_calloc(s->n, sizeof *sh->enc);
    sh->parts = rt_calloc(s->n, sizeof *sh->parts);
    sh->last_res = rt_calloc(s->n, sizeof *sh->last_res);
    sh->last_scope = rt_calloc(s->n, sizeof *sh->last_scope);
    for (unsigned i = 0; i < s->n; i++) {
        rt_otlp_enc_init(&sh->enc[i]);
        sh->parts[i] = (rt_buf)RT_BUF_INIT;
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
    if (sh->enc) {
        for (unsigned i = 0; i < s->n; i++) {
            rt_otlp_enc_free(&sh->enc[i]);
            rt_buf_free(&sh->parts[i]);
        }
    }
    free(sh->enc);
    free(sh->parts);
    free(sh->last_res);
    free(sh->last_scope);
    sh->enc = NULL;
    sh->parts = NULL;
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

/* ---- stop: decide everything, drain the exporters ---------------------------------------- */

static void on_drained(evutil_socket_t fd, short what, void *arg)
{
    sampler *s = arg;
    rt_log(RT_LOG_INFO, "drained: every pending trace decided, exporters flushed", NULL);
    rt_daemon_stop_done(s->d);
}

static void shard_drained(void *arg)
{
    shard *sh = arg;
    if (atomic_fetch_sub(&sh->s->draining, 1) == 1) {
        event_active(sh->s->drained_ev, 0, 0);
    }
}

static void shard_drain(rt_worker *w, void *arg)
{
    sampler *s = &g_sampler;
    shard *sh = &s->shards[rt_worker_index(w)];
    uint64_t now = rt_clock_mono_ns();
    if (rt_sampler_ts(s->cfg)->drop_pending_traces_on_shutdown) {
        rt_tbuf_discard_all(sh->tbuf);
    } else {
        rt_tbuf_decide_all(sh->tbuf, now);
    }
    rt_exporter_drain(sh->exporter, now + s->cfg->shutdown_timeout_ns, shard_drained, sh);
}

static void on_stop(void *arg, rt_daemon *d)
{
    sampler *s = arg;
    rt_intake_close(s->intake);
    atomic_store(&s->draining, s->n);
    rt_workers_run_on_each(rt_daemon_workers(d), shard_drain, NULL);
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
    s->throttled_spans = rt_metrics_counter(
        reg, "ringtail_sampler_spans_refused_total",
        "Spans refused with back-pressure (429 / RESOURCE_EXHAUSTED) because the buffer was "
        "full and block_on_overflow is on; the client retries them.",
        "reason", "buffer_full", NULL);
    setup_ctx ctx = {0};
    rt_workers_run_on_each(pool, shard_setup, &ctx);
    if (ctx.failed) {
        rt_log(RT_LOG_ERROR, "cannot start", "error=\"%s\"", ctx.err);
        return -1;
    }
    s->drained_ev = event_new(rt_daemon_main_base(d), -1, 0, on_drained, s);
    char err[600];
    s->cfg->listeners.handler_checks = true; /* on_request's walk is the check */
    s->intake =
        rt_intake_open(&s->cfg->listeners, pool, on_request, worker_arg, s, err, sizeof err);
    if (s->intake == NULL) {
        rt_log(RT_LOG_ERROR, "cannot open OTLP listeners", "error=\"%s\"", err);
        return -1;
    }
    const rt_ts_cfg *ts = rt_sampler_ts(s->cfg);
    rt_log(RT_LOG_INFO, "sampler ready",
           "node_id=%s policies=%zu http_port=%u grpc_port=%u exporters=%zu",
           s->cfg->node_id && s->cfg->node_id[0] ? s->cfg->node_id : "-",
           rt_policy_set_count(ts->policies), rt_intake_http_port(s->intake),
           rt_intake_grpc_port(s->intake), s->cfg->exporters.n);
    rt_daemon_hooks hooks = {
        .reload = on_reload,
        .stop = on_stop,
        .ready = ready,
        .arg = s,
    };
    rt_daemon_set_hooks(d, &hooks);
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
    if (s->drained_ev) {
        event_free(s->drained_ev);
    }
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
