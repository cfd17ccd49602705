/* loadgen.c - rt-bench-loadgen: agent-shaped OTLP load (common/workload.h) sent through the OTLP
 * client, with a manifest of the ground truth for rt-bench-sink.
 *
 *   rt-bench-loadgen --endpoint HOST:PORT [--protocol http|grpc] [--gzip] [--connections N]
 *                    [--profile seed|mixed|spike] [--turns N | --duration S] [--rate TURNS/S]
 *                    [--compressed-time | --real-time [--time-scale F]] [--batch-spans N]
 *                    [--batch-delay-ms MS] [--seed N] [--manifest FILE] [--report FILE]
 *                    [--error-rate P] [--slow-rate P] [--token-limit-rate P]
 *                    [--debug-tenant-rate P] [--tool-heavy-rate P] [--tool-heavy-min N]
 *                    [--late-rate P] [--span-attr KEY=VALUE] [--latency FILE]
 *
 * Compressed time (the default, for throughput): turns start at --rate (or as fast as the
 * client takes them) and their spans are queued per service at once, in the order their SDK
 * batches would leave; a service's queue becomes one request when it holds --batch-spans spans,
 * when its oldest span has waited QUEUE_MAX_WAIT_NS (as an SDK's batch processor sends on a
 * timer too, so a quiet service's spans do not wait for the whole run), and at the end.
 * Real time: each turn's spans leave in the per-service batches an SDK batch processor would
 * send (batch delay, batch size), spread over the turn's duration (times --time-scale, so CI
 * can shrink a 47 s turn); needs --rate.
 *
 * Every span is put in exactly one request. A request the client refuses (max_inflight) waits
 * and is offered again; the client's own retries may duplicate a request at the receiver when
 * an answer was lost, and are counted ("retries"). Exit status: 0 when every span was
 * acknowledged, 1 when some were not (the report says how many), 2 on bad usage.
 *
 * --span-attr adds one string attribute to every span, so tests can make traffic look exported
 * by a named sampler (the sink's fragmentation check reads such an attribute).
 *
 * --latency writes one CSV line per request once it is settled - "t_s,latency_ms,spans,ok": when
 * it was handed to the client (seconds since the run started), how long until its final answer
 * (the client's queueing and retries included: what an SDK's exporter waits), its spans, 1 when
 * acknowledged - so a benchmark can compare acknowledgement latency during a change with the
 * steady state.
 */
#include "alloc.h"
#include "buf.h"
#include "clock.h"
#include "log.h"
#include "otlp_client.h"
#include "otlp_encode.h"
#include "workload.h"
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct lg;

typedef struct req {
    struct lg *g; /* ref: the generator, for the done callback */
    rt_buf pb;
    uint32_t spans;
    uint64_t due_ns; /* real time: when to send, relative to the run start */
} req;

typedef struct lg_opts {
    const char *endpoint;
    rt_otlp_client_protocol protocol;
    bool gzip;
    uint32_t connections;
    uint64_t turns;    /* 0 = until duration */
    double duration_s; /* 0 = until turns */
    double rate;       /* turns/s; 0 = flat out */
    bool real_time;
    double time_scale;
    uint32_t batch_spans;
    const char *manifest;
    const char *report;
    const char *attr_key, *attr_val; /* --span-attr; NULL = none */
    const char *latency;             /* --latency FILE; NULL = none */
    rt_workload_opts wl;
} lg_opts;

typedef struct lg {
    lg_opts o;
    struct event_base *base;
    struct event *pump_ev;  /* run pump() soon (from callbacks) */
    struct event *timer_ev; /* next turn or next real-time batch */
    struct event *sig_int, *sig_term;
    rt_otlp_client *client;
    rt_workload *wl;
    FILE *manifest;
    FILE *latency;
    rt_buf mline;

    /* Compressed time: spans waiting per service (ScopeSpans.spans fields). */
    rt_buf *svc_spans;
    uint32_t *svc_count;
    uint64_t *svc_since; /* run time its queue got its first span (valid while count > 0) */
    size_t n_svc;

    /* Requests ready to go, FIFO (ring of pointers). */
    req **q;
    size_t q_head, q_len, q_cap;
    /* Real time: requests waiting for their time, a min-heap on due_ns. */
    req **heap;
    size_t heap_len, heap_cap;

    uint64_t start_mono;
    uint64_t start_wall;
    uint64_t next_turn_ns; /* relative to start */
    uint64_t expected_run_ns;
    bool gen_done;
    bool finished;
    uint64_t end_mono;

    /* Counters. */
    uint64_t turns;
    uint64_t spans_generated;
    uint64_t spans_sent; /* in requests the client accepted */
    uint64_t requests;
    uint64_t req_acked, req_failed;
    uint64_t spans_acked, spans_failed;
    uint64_t partial;
} lg;

/* ---- queues ----------------------------------------------------------------------------- */

static req *req_new(lg *g)
{
    req *r = rt_calloc(1, sizeof *r);
    r->g = g;
    rt_buf_init(&r->pb);
    return r;
}

static void req_free(req *r)
{
    if (r) {
        rt_buf_free(&r->pb);
        free(r);
    }
}

static void q_push(lg *g, req *r)
{
    if (g->q_len == g->q_cap) {
        size_t ncap = g->q_cap ? g->q_cap * 2 : 64;
        req **nq = rt_calloc(ncap, sizeof *nq);
        for (size_t i = 0; i < g->q_len; i++) {
            nq[i] = g->q[(g->q_head + i) % g->q_cap];
        }
        free(g->q);
        g->q = nq;
        g->q_cap = ncap;
        g->q_head = 0;
    }
    g->q[(g->q_head + g->q_len) % g->q_cap] = r;
    g->q_len++;
}

static void heap_push(lg *g, req *r)
{
    if (g->heap_len == g->heap_cap) {
        g->heap_cap = g->heap_cap ? g->heap_cap * 2 : 256;
        g->heap = rt_realloc(g->heap, g->heap_cap * sizeof *g->heap);
    }
    size_t i = g->heap_len++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (g->heap[p]->due_ns <= r->due_ns) {
            break;
        }
        g->heap[i] = g->heap[p];
        i = p;
    }
    g->heap[i] = r;
}

static req *heap_pop(lg *g)
{
    req *top = g->heap[0];
    req *last = g->heap[--g->heap_len];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= g->heap_len) {
            break;
        }
        if (c + 1 < g->heap_len && g->heap[c + 1]->due_ns < g->heap[c]->due_ns) {
            c++;
        }
        if (last->due_ns <= g->heap[c]->due_ns) {
            break;
        }
        g->heap[i] = g->heap[c];
        i = c;
    }
    if (g->heap_len > 0) {
        g->heap[i] = last;
    }
    return top;
}

/* ---- sending ---------------------------------------------------------------------------- */

static void export_done(const rt_otlp_client_result *res, void *arg);

static void flush_service(lg *g, size_t s)
{
    if (g->svc_count[s] == 0) {
        return;
    }
    req *r = req_new(g);
    rt_workload_encode_request(g->wl, s, g->svc_spans[s].data, g->svc_spans[s].len, &r->pb);
    r->spans = g->svc_count[s];
    rt_buf_reset(&g->svc_spans[s]);
    g->svc_count[s] = 0;
    q_push(g, r);
}

/* Compressed time: the longest a span waits in its service's queue. */
#define QUEUE_MAX_WAIT_NS (200 * 1000000ull)

/* Send every service queue whose oldest span has waited QUEUE_MAX_WAIT_NS at `now`; returns when
 * the next one will have (UINT64_MAX: none waiting). */
static uint64_t flush_aged(lg *g, uint64_t now)
{
    uint64_t next = UINT64_MAX;
    for (size_t s = 0; s < g->n_svc; s++) {
        if (g->svc_count[s] == 0) {
            continue;
        }
        uint64_t due = g->svc_since[s] + QUEUE_MAX_WAIT_NS;
        if (due <= now) {
            flush_service(g, s);
        } else if (due < next) {
            next = due;
        }
    }
    return next;
}

/* Offer the head of the ready queue to the client. Returns true when it was taken; the client
 * then owns the bytes, and the (emptied) request lives on until its done callback. */
static bool send_head(lg *g)
{
    req *r = g->q[g->q_head];
    uint32_t spans = r->spans;
    if (rt_otlp_client_export_buf(g->client, &r->pb, export_done, r) != 0) {
        return false;
    }
    g->q_head = (g->q_head + 1) % g->q_cap;
    g->q_len--;
    g->requests++;
    g->spans_sent += spans;
    return true;
}

/* Append span `i` of `t` as a ScopeSpans.spans field, with the --span-attr attribute if any. */
static void append_span(const lg *g, rt_buf *out, const rt_wl_turn *t, size_t i)
{
    if (!g->o.attr_key) {
        rt_workload_append_span_field(out, t, i);
        return;
    }
    const rt_wl_span *s = &t->spans[i];
    size_t kl = strlen(g->o.attr_key), vl = strlen(g->o.attr_val);
    rt_pb_append_len_prefix(out, 2, s->pb_len + rt_otlp_str_attr_size(9, kl, vl));
    rt_buf_append(out, t->pb.data + s->pb_off, s->pb_len);
    rt_otlp_append_str_attr(out, 9, g->o.attr_key, kl, g->o.attr_val, vl);
}

static void write_manifest(lg *g, const rt_wl_turn *t)
{
    if (!g->manifest) {
        return;
    }
    rt_buf_reset(&g->mline);
    rt_workload_manifest_line(g->wl, t, &g->mline);
    fwrite(g->mline.data, 1, g->mline.len, g->manifest);
}

/* Generate one turn starting at `rel_ns` after the run start and queue its spans. */
static void gen_turn(lg *g, uint64_t rel_ns)
{
    uint64_t wall = g->start_wall + rel_ns;
    if (g->o.rate <= 0) {
        wall = rt_clock_wall_ns(); /* flat out: timestamps follow the real clock */
    }
    const rt_wl_turn *t = rt_workload_next(g->wl, wall);
    g->turns++;
    g->spans_generated += t->n_spans;
    write_manifest(g, t);
    for (size_t b = 0; b < t->n_batches; b++) {
        const rt_wl_batch *bt = &t->batches[b];
        if (g->o.real_time) {
            req *r = req_new(g);
            rt_buf spans = RT_BUF_INIT;
            for (size_t k = 0; k < bt->n; k++) {
                append_span(g, &spans, t, t->order[bt->first + k]);
            }
            rt_workload_encode_request(g->wl, bt->service, spans.data, spans.len, &r->pb);
            rt_buf_free(&spans);
            r->spans = (uint32_t)bt->n;
            r->due_ns = rel_ns + (uint64_t)((double)bt->send_off_ns * g->o.time_scale);
            heap_push(g, r);
            continue;
        }
        for (size_t k = 0; k < bt->n; k++) {
            if (g->svc_count[bt->service] == 0) {
                g->svc_since[bt->service] = rt_clock_mono_ns() - g->start_mono;
            }
            append_span(g, &g->svc_spans[bt->service], t, t->order[bt->first + k]);
            if (++g->svc_count[bt->service] >= g->o.batch_spans) {
                flush_service(g, bt->service);
            }
        }
    }
}

static double run_fraction(const lg *g, uint64_t rel_ns)
{
    double total = g->o.duration_s > 0 ? g->o.duration_s * 1e9 : (double)g->expected_run_ns;
    return total > 0 ? (double)rel_ns / total : 0;
}

static void finish(lg *g)
{
    if (!g->finished) {
        g->finished = true;
        g->end_mono = rt_clock_mono_ns();
        event_base_loopexit(g->base, NULL);
    }
}

/* Move everything that can move: ready requests into the client, due real-time batches into the
 * ready queue, new turns into the queues. Arms the timer for whatever waits on time. */
static void pump(lg *g)
{
    for (;;) {
        while (g->q_len > 0) {
            if (!send_head(g)) {
                return; /* the client is full; export_done pumps again */
            }
        }
        uint64_t now = rt_clock_mono_ns() - g->start_mono;
        if (g->heap_len > 0 && g->heap[0]->due_ns <= now) {
            while (g->heap_len > 0 && g->heap[0]->due_ns <= now) {
                q_push(g, heap_pop(g));
            }
            continue;
        }
        if (!g->gen_done) {
            if ((g->o.turns && g->turns >= g->o.turns) ||
                (g->o.duration_s > 0 && now >= (uint64_t)(g->o.duration_s * 1e9))) {
                g->gen_done = true;
                for (size_t s = 0; s < g->n_svc; s++) {
                    flush_service(g, s);
                }
                continue;
            }
            flush_aged(g, now);
            if (g->q_len > 0) {
                continue; /* queues that waited long enough: offer them first */
            }
            if (g->o.rate > 0 && g->next_turn_ns > now) {
                /* Not yet time for the next turn. */
            } else {
                uint64_t at = g->o.rate > 0 ? g->next_turn_ns : now;
                gen_turn(g, at);
                if (g->o.rate > 0) {
                    double f = rt_workload_rate_factor(g->wl, run_fraction(g, at));
                    g->next_turn_ns += (uint64_t)(1e9 / (g->o.rate * f));
                }
                continue;
            }
        }
        break;
    }
    /* Nothing can move now: wait for time or for answers. */
    uint64_t now = rt_clock_mono_ns() - g->start_mono;
    uint64_t wake = UINT64_MAX;
    if (g->heap_len > 0) {
        wake = g->heap[0]->due_ns;
    }
    if (!g->gen_done && g->o.rate > 0 && g->next_turn_ns < wake) {
        wake = g->next_turn_ns;
    }
    if (!g->gen_done) {
        uint64_t aged = flush_aged(g, now);
        if (g->q_len > 0) {
            aged = now; /* one came due just now: come straight back */
        }
        if (aged < wake) {
            wake = aged;
        }
    }
    if (!g->gen_done && g->o.duration_s > 0) {
        uint64_t end = (uint64_t)(g->o.duration_s * 1e9);
        if (end < wake) {
            wake = end;
        }
    }
    if (wake != UINT64_MAX) {
        uint64_t d = wake > now ? wake - now : 0;
        struct timeval tv = {(time_t)(d / 1000000000ull),
                             (suseconds_t)((d % 1000000000ull) / 1000)};
        evtimer_add(g->timer_ev, &tv);
    } else if (g->gen_done && g->q_len == 0 && rt_otlp_client_inflight(g->client) == 0) {
        finish(g);
    }
}

static void export_done(const rt_otlp_client_result *res, void *arg)
{
    req *r = arg;
    lg *g = r->g;
    uint32_t spans = r->spans;
    req_free(r);
    if (g->latency) {
        uint64_t now = rt_clock_mono_ns(), since = now - g->start_mono;
        uint64_t at = since > res->elapsed_ns ? since - res->elapsed_ns : 0;
        bool ok = res->outcome == RT_OTLP_CLIENT_OK || res->outcome == RT_OTLP_CLIENT_PARTIAL;
        fprintf(g->latency, "%.4f,%.3f,%u,%d\n", (double)at / 1e9, (double)res->elapsed_ns / 1e6,
                spans, ok ? 1 : 0);
    }
    switch (res->outcome) {
    case RT_OTLP_CLIENT_OK:
        g->req_acked++;
        g->spans_acked += spans;
        break;
    case RT_OTLP_CLIENT_PARTIAL:
        g->req_acked++;
        g->partial++;
        g->spans_acked += spans - (uint32_t)res->rejected_spans;
        g->spans_failed += (uint64_t)res->rejected_spans;
        break;
    default:
        g->req_failed++;
        g->spans_failed += spans;
        RT_LOG_RL(RT_LOG_WARN, "export failed", "outcome=%s reason=%s status=%d message=\"%s\"",
                  rt_otlp_client_outcome_name(res->outcome), rt_otlp_client_fail_name(res->fail),
                  res->http_status, res->message);
        break;
    }
    event_active(g->pump_ev, 0, 0);
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    pump(arg);
}

static void signal_cb(evutil_socket_t fd, short what, void *arg)
{
    lg *g = arg;
    if (!g->gen_done) {
        rt_log(RT_LOG_INFO, "stopping: no new turns, draining", "turns=%llu",
               (unsigned long long)g->turns);
        g->o.turns = g->turns ? g->turns : 1;
        g->o.duration_s = 0;
        event_active(g->pump_ev, 0, 0);
    } else {
        finish(g); /* a second signal: stop now */
    }
}

/* ---- report ----------------------------------------------------------------------------- */

static int write_report(lg *g)
{
    const rt_otlp_client_stats *st = rt_otlp_client_stats_get(g->client);
    double elapsed = (double)(g->end_mono - g->start_mono) / 1e9;
    double sps = elapsed > 0 ? (double)g->spans_acked / elapsed : 0;
    rt_buf b = RT_BUF_INIT;
    rt_buf_printf(&b,
                  "{\"profile\":\"%s\",\"protocol\":\"%s\",\"gzip\":%s,\"connections\":%u,"
                  "\"mode\":\"%s\",\"seed\":%llu,\"rate\":%g,\"turns\":%llu,"
                  "\"spans_generated\":%llu,\"spans_sent\":%llu,\"requests\":%llu,"
                  "\"requests_acked\":%llu,\"requests_failed\":%llu,\"requests_partial\":%llu,"
                  "\"spans_acked\":%llu,\"spans_failed\":%llu,\"retries\":%llu,"
                  "\"bytes_sent\":%llu,\"elapsed_s\":%.3f,\"spans_per_s\":%.1f,"
                  "\"turns_per_s\":%.2f}\n",
                  rt_workload_profile_name(g->o.wl.profile),
                  g->o.protocol == RT_OTLP_CLIENT_GRPC ? "grpc" : "http",
                  g->o.gzip ? "true" : "false", g->o.connections,
                  g->o.real_time ? "real-time" : "compressed-time",
                  (unsigned long long)g->o.wl.seed, g->o.rate, (unsigned long long)g->turns,
                  (unsigned long long)g->spans_generated, (unsigned long long)g->spans_sent,
                  (unsigned long long)g->requests, (unsigned long long)g->req_acked,
                  (unsigned long long)g->req_failed, (unsigned long long)g->partial,
                  (unsigned long long)g->spans_acked, (unsigned long long)g->spans_failed,
                  (unsigned long long)st->retries, (unsigned long long)st->bytes_sent, elapsed, sps,
                  elapsed > 0 ? (double)g->turns / elapsed : 0);
    fprintf(stderr,
            "loadgen: %llu turns, %llu spans in %llu requests, acked %llu spans, failed %llu, "
            "%.2f s, %.0f spans/s\n",
            (unsigned long long)g->turns, (unsigned long long)g->spans_sent,
            (unsigned long long)g->requests, (unsigned long long)g->spans_acked,
            (unsigned long long)g->spans_failed, elapsed, sps);
    int rc = 0;
    if (g->o.report) {
        FILE *f = fopen(g->o.report, "w");
        if (!f || fwrite(b.data, 1, b.len, f) != b.len) {
            fprintf(stderr, "loadgen: cannot write report %s: %s\n", g->o.report, strerror(errno));
            rc = -1;
        }
        if (f && fclose(f) != 0) {
            rc = -1;
        }
    }
    rt_buf_free(&b);
    return rc;
}

/* ---- command line ----------------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rt-bench-loadgen --endpoint HOST:PORT [--protocol http|grpc] [--gzip]\n"
            "         [--connections N] [--profile seed|mixed|spike] [--turns N | --duration S]\n"
            "         [--rate TURNS/S] [--compressed-time | --real-time [--time-scale F]]\n"
            "         [--batch-spans N] [--batch-delay-ms MS] [--seed N] [--manifest FILE]\n"
            "         [--report FILE] [--error-rate P] [--slow-rate P] [--token-limit-rate P]\n"
            "         [--debug-tenant-rate P] [--tool-heavy-rate P] [--tool-heavy-min N]\n"
            "         [--late-rate P] [--span-attr KEY=VALUE] [--latency FILE]\n");
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "rt-bench-loadgen: %s: \"%s\" is not a number in [%g, %g]\n", opt, s, lo,
                hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi) {
        fprintf(stderr, "rt-bench-loadgen: %s: \"%s\" is not an integer in [%llu, %llu]\n", opt, s,
                (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_args(int argc, char **argv, lg_opts *o)
{
    enum {
        O_ENDPOINT = 256,
        O_PROTOCOL,
        O_GZIP,
        O_CONNS,
        O_PROFILE,
        O_TURNS,
        O_DURATION,
        O_RATE,
        O_COMPRESSED,
        O_REALTIME,
        O_SCALE,
        O_BATCH,
        O_DELAY,
        O_SEED,
        O_MANIFEST,
        O_REPORT,
        O_ERR,
        O_SLOW,
        O_TOKEN,
        O_DEBUG,
        O_HEAVY,
        O_HEAVY_MIN,
        O_LATE,
        O_SPAN_ATTR,
        O_LATENCY,
        O_HELP
    };
    static const struct option longopts[] = {
        {"endpoint", required_argument, NULL, O_ENDPOINT},
        {"protocol", required_argument, NULL, O_PROTOCOL},
        {"gzip", no_argument, NULL, O_GZIP},
        {"connections", required_argument, NULL, O_CONNS},
        {"profile", required_argument, NULL, O_PROFILE},
        {"turns", required_argument, NULL, O_TURNS},
        {"duration", required_argument, NULL, O_DURATION},
        {"rate", required_argument, NULL, O_RATE},
        {"compressed-time", no_argument, NULL, O_COMPRESSED},
        {"real-time", no_argument, NULL, O_REALTIME},
        {"time-scale", required_argument, NULL, O_SCALE},
        {"batch-spans", required_argument, NULL, O_BATCH},
        {"batch-delay-ms", required_argument, NULL, O_DELAY},
        {"seed", required_argument, NULL, O_SEED},
        {"manifest", required_argument, NULL, O_MANIFEST},
        {"report", required_argument, NULL, O_REPORT},
        {"error-rate", required_argument, NULL, O_ERR},
        {"slow-rate", required_argument, NULL, O_SLOW},
        {"token-limit-rate", required_argument, NULL, O_TOKEN},
        {"debug-tenant-rate", required_argument, NULL, O_DEBUG},
        {"tool-heavy-rate", required_argument, NULL, O_HEAVY},
        {"tool-heavy-min", required_argument, NULL, O_HEAVY_MIN},
        {"late-rate", required_argument, NULL, O_LATE},
        {"span-attr", required_argument, NULL, O_SPAN_ATTR},
        {"latency", required_argument, NULL, O_LATENCY},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    rt_wl_profile profile = RT_WL_PROFILE_SEED;
    uint64_t seed = 1, u;
    /* Rates given on the command line, applied after the profile's defaults; < 0 = not given. */
    double rates[6] = {-1, -1, -1, -1, -1, -1};
    uint64_t heavy_min = 0, batch_delay = 0, batch_spans = 512;
    o->connections = 4;
    o->time_scale = 1.0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_ENDPOINT:
            o->endpoint = optarg;
            break;
        case O_PROTOCOL:
            if (strcmp(optarg, "http") == 0) {
                o->protocol = RT_OTLP_CLIENT_HTTP;
            } else if (strcmp(optarg, "grpc") == 0) {
                o->protocol = RT_OTLP_CLIENT_GRPC;
            } else {
                fprintf(stderr, "rt-bench-loadgen: --protocol: \"%s\" is not http or grpc\n",
                        optarg);
                return -1;
            }
            break;
        case O_GZIP:
            o->gzip = true;
            break;
        case O_CONNS:
            if (parse_u64("--connections", optarg, 1, 1024, &u)) {
                return -1;
            }
            o->connections = (uint32_t)u;
            break;
        case O_PROFILE:
            if (rt_workload_profile_parse(optarg, &profile)) {
                fprintf(stderr, "rt-bench-loadgen: --profile: \"%s\" is not seed, mixed or spike\n",
                        optarg);
                return -1;
            }
            break;
        case O_TURNS:
            if (parse_u64("--turns", optarg, 1, UINT64_MAX, &o->turns)) {
                return -1;
            }
            break;
        case O_DURATION:
            if (parse_double("--duration", optarg, 0.001, 1e7, &o->duration_s)) {
                return -1;
            }
            break;
        case O_RATE:
            if (parse_double("--rate", optarg, 0.001, 1e7, &o->rate)) {
                return -1;
            }
            break;
        case O_COMPRESSED:
            o->real_time = false;
            break;
        case O_REALTIME:
            o->real_time = true;
            break;
        case O_SCALE:
            if (parse_double("--time-scale", optarg, 0.0, 100.0, &o->time_scale)) {
                return -1;
            }
            break;
        case O_BATCH:
            if (parse_u64("--batch-spans", optarg, 1, 1000000, &batch_spans)) {
                return -1;
            }
            break;
        case O_DELAY:
            if (parse_u64("--batch-delay-ms", optarg, 1, 600000, &batch_delay)) {
                return -1;
            }
            break;
        case O_SEED:
            if (parse_u64("--seed", optarg, 0, UINT64_MAX, &seed)) {
                return -1;
            }
            break;
        case O_MANIFEST:
            o->manifest = optarg;
            break;
        case O_REPORT:
            o->report = optarg;
            break;
        case O_ERR:
        case O_SLOW:
        case O_TOKEN:
        case O_DEBUG:
        case O_HEAVY:
        case O_LATE:
            /* rates[] follows O_ERR..O_HEAVY, then late. */
            if (parse_double("rate option", optarg, 0, 1, &rates[c == O_LATE ? 5 : c - O_ERR])) {
                return -1;
            }
            break;
        case O_HEAVY_MIN:
            if (parse_u64("--tool-heavy-min", optarg, 6, 30, &heavy_min)) {
                return -1;
            }
            break;
        case O_SPAN_ATTR: {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "rt-bench-loadgen: --span-attr: \"%s\" is not KEY=VALUE\n", optarg);
                return -1;
            }
            *eq = '\0'; /* argv is ours to split */
            o->attr_key = optarg;
            o->attr_val = eq + 1;
            break;
        }
        case O_LATENCY:
            o->latency = optarg;
            break;
        case O_HELP:
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "rt-bench-loadgen: unexpected argument \"%s\"\n", argv[optind]);
        return -1;
    }
    if (!o->endpoint) {
        fprintf(stderr, "rt-bench-loadgen: --endpoint is required\n");
        return -1;
    }
    if (!o->turns && o->duration_s <= 0) {
        fprintf(stderr, "rt-bench-loadgen: give --turns N or --duration S\n");
        return -1;
    }
    if (o->real_time && o->rate <= 0) {
        fprintf(stderr, "rt-bench-loadgen: --real-time needs --rate (turns per second)\n");
        return -1;
    }
    rt_workload_opts_default(&o->wl, profile, seed);
    double *dst[6] = {&o->wl.error_rate,        &o->wl.slow_rate,       &o->wl.token_limit_rate,
                      &o->wl.debug_tenant_rate, &o->wl.tool_heavy_rate, &o->wl.late_rate};
    for (int i = 0; i < 6; i++) {
        if (rates[i] >= 0) {
            *dst[i] = rates[i];
        }
    }
    if (heavy_min) {
        o->wl.tool_heavy_min = (uint32_t)heavy_min;
    }
    if (batch_delay) {
        o->wl.batch_delay_ms = (uint32_t)batch_delay;
    }
    o->batch_spans = (uint32_t)batch_spans;
    o->wl.batch_max_spans = (uint32_t)batch_spans;
    return 0;
}

int main(int argc, char **argv)
{
    lg g;
    memset(&g, 0, sizeof g);
    int rc = 2;
    if (parse_args(argc, argv, &g.o) != 0) {
        return 2;
    }
    rt_process_init();
    char err[256];
    g.wl = rt_workload_new_opts(&g.o.wl, err, sizeof err);
    if (!g.wl) {
        fprintf(stderr, "rt-bench-loadgen: %s\n", err);
        return 2;
    }
    g.base = event_base_new();
    if (!g.base) {
        fprintf(stderr, "rt-bench-loadgen: cannot create an event loop\n");
        goto fail;
    }
    rt_otlp_client_opts co;
    memset(&co, 0, sizeof co);
    co.protocol = g.o.protocol;
    co.endpoint = g.o.endpoint;
    co.gzip = g.o.gzip;
    co.max_conns = g.o.connections;
    co.max_inflight = g.o.connections * 4 < 16 ? 16 : g.o.connections * 4;
    g.client = rt_otlp_client_new(g.base, &co, err, sizeof err);
    if (!g.client) {
        fprintf(stderr, "rt-bench-loadgen: %s\n", err);
        goto fail;
    }
    if (g.o.manifest) {
        g.manifest = fopen(g.o.manifest, "w");
        if (!g.manifest) {
            fprintf(stderr, "rt-bench-loadgen: cannot open manifest %s: %s\n", g.o.manifest,
                    strerror(errno));
            goto fail;
        }
    }
    if (g.o.latency) {
        g.latency = fopen(g.o.latency, "w");
        if (!g.latency) {
            fprintf(stderr, "rt-bench-loadgen: cannot open %s: %s\n", g.o.latency, strerror(errno));
            goto fail;
        }
        fprintf(g.latency, "t_s,latency_ms,spans,ok\n");
    }
    g.n_svc = rt_workload_service_count(g.wl);
    g.svc_spans = rt_calloc(g.n_svc, sizeof *g.svc_spans);
    g.svc_count = rt_calloc(g.n_svc, sizeof *g.svc_count);
    g.svc_since = rt_calloc(g.n_svc, sizeof *g.svc_since);
    g.pump_ev = event_new(g.base, -1, 0, pump_cb, &g);
    g.timer_ev = evtimer_new(g.base, pump_cb, &g);
    g.sig_int = evsignal_new(g.base, SIGINT, signal_cb, &g);
    g.sig_term = evsignal_new(g.base, SIGTERM, signal_cb, &g);
    evsignal_add(g.sig_int, NULL);
    evsignal_add(g.sig_term, NULL);
    if (g.o.turns && g.o.rate > 0) {
        g.expected_run_ns =
            (uint64_t)((double)g.o.turns / (g.o.rate * rt_workload_mean_rate_factor(g.wl)) * 1e9);
    }
    g.start_mono = rt_clock_mono_ns();
    g.start_wall = rt_clock_wall_ns();
    event_active(g.pump_ev, 0, 0);
    event_base_dispatch(g.base);
    if (!g.finished) {
        g.end_mono = rt_clock_mono_ns();
    }
    if (g.manifest) {
        if (fclose(g.manifest) != 0) {
            fprintf(stderr, "rt-bench-loadgen: cannot write manifest %s: %s\n", g.o.manifest,
                    strerror(errno));
            g.manifest = NULL;
            goto fail;
        }
        g.manifest = NULL;
    }
    rc = write_report(&g) != 0 ? 2 : (g.spans_acked == g.spans_generated ? 0 : 1);
fail:
    if (g.manifest) {
        fclose(g.manifest);
    }
    if (g.latency && fclose(g.latency) != 0) {
        fprintf(stderr, "rt-bench-loadgen: cannot write %s\n", g.o.latency);
        rc = 2;
    }
    rt_otlp_client_free(g.client);
    while (g.q_len > 0) {
        req_free(g.q[g.q_head]);
        g.q_head = (g.q_head + 1) % g.q_cap;
        g.q_len--;
    }
    free(g.q);
    while (g.heap_len > 0) {
        req_free(heap_pop(&g));
    }
    free(g.heap);
    for (size_t s = 0; s < g.n_svc; s++) {
        rt_buf_free(&g.svc_spans[s]);
    }
    free(g.svc_spans);
    free(g.svc_count);
    free(g.svc_since);
    rt_buf_free(&g.mline);
    if (g.pump_ev) {
        event_free(g.pump_ev);
        event_free(g.timer_ev);
        event_free(g.sig_int);
        event_free(g.sig_term);
    }
    if (g.base) {
        event_base_free(g.base);
    }
    rt_workload_free(g.wl);
    return rc;
}
