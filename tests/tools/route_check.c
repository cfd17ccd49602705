/* route_check.c - rt-route-check: load sender and checker for the router's integration tests.
 *
 *   rt-route-check send (--http|--grpc|--json) HOST:PORT --phase P --traces T --spans S
 *                  [--per-request K] [--concurrency C] [--rate R] [--acks FILE]
 *     Sends S spans numbered 0..S-1; span n belongs to trace n % T (so every trace's spans are
 *     spread over many requests), K spans per request in 2 resources x 2 scopes, C requests in
 *     flight (--json sends one at a time). Span ids are (P << 48 | n), trace ids a hash of
 *     (P, trace). No retries: each request's outcome is final and written to FILE as
 *     "<first> <count> <http status>" (0 = no answer). With --rate, at most R spans per second are
 * started, so a run lasts at least S/R seconds however fast the machine is (tests that kill a peer
 * "under load" rely on it). Prints a summary; exits 0.
 *
 *   rt-route-check verify --ring RING.yaml --sink ID=DUMP [--sink ...] --phase P
 *                  [--acks FILE ...] [--exact] [--allow-down ID] [--tolerance X]
 *     Reads what rt-otlp-dump wrote for each ring node (OTLP/JSON lines) and checks, for the
 *     spans of phase P:
 *       - every span of an acknowledged (200) request arrived at some sink (no loss);
 *       - with --exact, every span arrived exactly once;
 *       - every span is at its trace's owner on the ring; with --allow-down ID, spans whose
 *         owner is ID may instead be at their owner on the ring with ID down (its successor),
 *         and spans owned by other nodes must still be at their owner (nothing else moves);
 *       - without --allow-down, every trace is at exactly one sink, and each sink's share of
 *         traces is within X (default 0.03) of rt_ring_node_share.
 *     Exits 1 with the first failures on stderr.
 *
 *   rt-route-check owners --ring RING.yaml
 *     Reads trace ids (32 hex digits, the first word of each line) on stdin and prints
 *     "<trace id> <owner node id>" for each, every node up (what the ring alone says).
 */
#include "alloc.h"
#include "base64.h"
#include "buf.h"
#include "membership.h"
#include "net.h"
#include "otlp_client.h"
#include "otlp_json.h"
#include "ring.h"
#include "worker.h"

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue AV;

#define MAX_SINKS 16

static void trace_id_of(uint64_t phase, uint64_t trace, uint8_t out[16])
{
    uint64_t x = (phase << 40 ^ trace) * 0x9E3779B97F4A7C15ull + 0x1234567;
    for (int i = 0; i < 16; i++) {
        x ^= x >> 29;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 32;
        out[i] = (uint8_t)(x >> 56);
    }
}

/* ---- building requests ---------------------------------------------------------------------- */

/* Spans [first, first+count) of phase P in 2 resources x 2 scopes. Returns packed bytes. */
static uint8_t *build(uint64_t phase, uint64_t traces, uint64_t first, size_t count, size_t *len)
{
    static const char *svc[2] = {"checkout", "agent-runtime"};
    static const char *scp[2] = {"http", "gen_ai"};
    Req req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    RS rs[2];
    SS ss[2][2];
    Opentelemetry__Proto__Resource__V1__Resource res[2];
    Opentelemetry__Proto__Common__V1__InstrumentationScope sc[2][2];
    KV rkv[2];
    AV rav[2];
    KV *rkvp[2];
    RS *rsp[2];
    SS *ssp[2][2];
    Span *spans = rt_calloc(count ? count : 1, sizeof *spans);
    Span **lists[2][2];
    size_t nl[2][2] = {{0, 0}, {0, 0}};
    uint8_t *ids = rt_calloc(count ? count : 1, 24);
    for (int r = 0; r < 2; r++) {
        opentelemetry__proto__trace__v1__resource_spans__init(&rs[r]);
        opentelemetry__proto__resource__v1__resource__init(&res[r]);
        opentelemetry__proto__common__v1__key_value__init(&rkv[r]);
        opentelemetry__proto__common__v1__any_value__init(&rav[r]);
        rav[r].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        rav[r].string_value = (char *)svc[r];
        rkv[r].key = (char *)"service.name";
        rkv[r].value = &rav[r];
        rkvp[r] = &rkv[r];
        res[r].n_attributes = 1;
        res[r].attributes = &rkvp[r];
        rs[r].resource = &res[r];
        rs[r].n_scope_spans = 2;
        rs[r].scope_spans = ssp[r];
        rsp[r] = &rs[r];
        for (int s = 0; s < 2; s++) {
            opentelemetry__proto__trace__v1__scope_spans__init(&ss[r][s]);
            opentelemetry__proto__common__v1__instrumentation_scope__init(&sc[r][s]);
            sc[r][s].name = (char *)scp[s];
            ss[r][s].scope = &sc[r][s];
            ssp[r][s] = &ss[r][s];
            lists[r][s] = rt_calloc(count ? count : 1, sizeof(Span *));
            ss[r][s].spans = lists[r][s];
        }
    }
    for (size_t k = 0; k < count; k++) {
        uint64_t n = first + k;
        Span *sp = &spans[k];
        opentelemetry__proto__trace__v1__span__init(sp);
        uint8_t *tid = ids + 24 * k, *sid = tid + 16;
        trace_id_of(phase, n % traces, tid);
        uint64_t id = phase << 48 | n;
        for (int i = 0; i < 8; i++) {
            sid[i] = (uint8_t)(id >> (56 - 8 * i));
        }
        sp->trace_id.data = tid;
        sp->trace_id.len = 16;
        sp->span_id.data = sid;
        sp->span_id.len = 8;
        sp->name = (char *)"op";
        sp->kind = 2;
        sp->start_time_unix_nano = 1763700000000000000ull + n;
        sp->end_time_unix_nano = sp->start_time_unix_nano + 1000;
        int r = (int)(n % 2), s = (int)(n / 2 % 2);
        lists[r][s][nl[r][s]++] = sp;
    }
    for (int r = 0; r < 2; r++) {
        for (int s = 0; s < 2; s++) {
            ss[r][s].n_spans = nl[r][s];
        }
    }
    req.n_resource_spans = 2;
    req.resource_spans = rsp;
    *len =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    uint8_t *buf = rt_malloc(*len ? *len : 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, buf);
    for (int r = 0; r < 2; r++) {
        for (int s = 0; s < 2; s++) {
            free(lists[r][s]);
        }
    }
    free(spans);
    free(ids);
    return buf;
}

/* ---- send ------------------------------------------------------------------------------------ */

typedef struct sender {
    struct event_base *base;
    rt_otlp_client *client;
    uint64_t phase, traces, spans, per, next;
    int concurrency, inflight;
    double rate;             /* spans per second, 0 = flat out */
    struct timespec started; /* for --rate */
    struct event *pace;      /* wakes send_more when the rate allows the next request */
    FILE *acks;
    uint64_t by_status[600];
    uint64_t spans_ok;
} sender;

typedef struct send_req {
    sender *s;
    uint64_t first;
    size_t count;
} send_req;

static void send_more(sender *s);

static void on_done(const rt_otlp_client_result *res, void *arg)
{
    send_req *r = arg;
    sender *s = r->s;
    int st = res->http_status;
    if (res->grpc_status >= 0) {
        st = res->grpc_status == 0    ? 200
             : res->grpc_status == 14 ? 503
             : res->grpc_status == 8  ? 429
                                      : 400;
    }
    if (res->outcome != RT_OTLP_CLIENT_OK && res->outcome != RT_OTLP_CLIENT_PARTIAL && st == 200) {
        st = 0;
    }
    if (st < 0 || st >= 600) {
        st = 0;
    }
    s->by_status[st]++;
    if (st == 200) {
        s->spans_ok += r->count;
    }
    if (s->acks) {
        fprintf(s->acks, "%llu %zu %d\n", (unsigned long long)r->first, r->count, st);
    }
    s->inflight--;
    free(r);
    send_more(s);
}

static void on_pace(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_more(arg);
}

/* Seconds until --rate allows span number `next` to start; 0 when it may start now. */
static double pace_wait(const sender *s)
{
    if (s->rate <= 0) {
        return 0;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double elapsed =
        (double)(now.tv_sec - s->started.tv_sec) + (double)(now.tv_nsec - s->started.tv_nsec) / 1e9;
    double due = (double)s->next / s->rate;
    return due > elapsed ? due - elapsed : 0;
}

static void send_more(sender *s)
{
    while (s->inflight < s->concurrency && s->next < s->spans) {
        double wait = pace_wait(s);
        if (wait > 0) {
            struct timeval tv = {.tv_sec = (time_t)wait,
                                 .tv_usec = (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
            evtimer_add(s->pace, &tv);
            break;
        }
        size_t count = (size_t)(s->spans - s->next < s->per ? s->spans - s->next : s->per);
        size_t len;
        uint8_t *pb = build(s->phase, s->traces, s->next, count, &len);
        send_req *r = rt_calloc(1, sizeof *r);
        r->s = s;
        r->first = s->next;
        r->count = count;
        if (rt_otlp_client_export(s->client, pb, len, on_done, r) != 0) {
            free(r);
            free(pb);
            break;
        }
        free(pb);
        s->next += count;
        s->inflight++;
    }
    if (s->inflight == 0 && s->next >= s->spans) {
        event_base_loopbreak(s->base);
    }
}

/* One blocking OTLP/HTTP JSON POST. Returns the HTTP status, or 0 on a transport error. */
static int post_json(const char *hostport, const uint8_t *body, size_t len)
{
    char host[256];
    uint16_t port;
    if (rt_net_split_hostport(hostport, host, sizeof host, &port) != 0) {
        return 0;
    }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        if (fd >= 0) {
            close(fd);
        }
        return 0;
    }
    rt_buf out = RT_BUF_INIT;
    rt_buf_printf(&out,
                  "POST /v1/traces HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                  "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                  hostport, len);
    rt_buf_append(&out, body, len);
    size_t off = 0;
    while (off < out.len) {
        ssize_t w = write(fd, out.data + off, out.len - off);
        if (w <= 0) {
            break;
        }
        off += (size_t)w;
    }
    rt_buf_free(&out);
    char resp[4096];
    size_t got = 0;
    ssize_t rd;
    while (got < sizeof resp - 1 && (rd = read(fd, resp + got, sizeof resp - 1 - got)) > 0) {
        got += (size_t)rd;
    }
    resp[got] = '\0';
    close(fd);
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1) {
        status = 0;
    }
    return status;
}

static int cmd_send(int argc, char **argv)
{
    const char *http = NULL, *grpc = NULL, *json = NULL, *acks = NULL;
    sender s = {.per = 100, .concurrency = 8, .traces = 1000, .spans = 10000};
    static const struct option opts[] = {
        {"http", required_argument, NULL, 'h'},
        {"grpc", required_argument, NULL, 'g'},
        {"json", required_argument, NULL, 'j'},
        {"phase", required_argument, NULL, 'p'},
        {"traces", required_argument, NULL, 't'},
        {"spans", required_argument, NULL, 's'},
        {"per-request", required_argument, NULL, 'k'},
        {"concurrency", required_argument, NULL, 'c'},
        {"rate", required_argument, NULL, 'r'},
        {"acks", required_argument, NULL, 'a'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            http = optarg;
            break;
        case 'g':
            grpc = optarg;
            break;
        case 'j':
            json = optarg;
            break;
        case 'p':
            s.phase = strtoull(optarg, NULL, 10);
            break;
        case 't':
            s.traces = strtoull(optarg, NULL, 10);
            break;
        case 's':
            s.spans = strtoull(optarg, NULL, 10);
            break;
        case 'k':
            s.per = strtoull(optarg, NULL, 10);
            break;
        case 'c':
            s.concurrency = atoi(optarg);
            break;
        case 'r':
            s.rate = strtod(optarg, NULL);
            break;
        case 'a':
            acks = optarg;
            break;
        default:
            return 2;
        }
    }
    if ((http != NULL) + (grpc != NULL) + (json != NULL) != 1 || s.traces == 0 || s.per == 0) {
        fprintf(stderr, "rt-route-check send: give exactly one of --http, --grpc, --json\n");
        return 2;
    }
    if (acks && (s.acks = fopen(acks, "a")) == NULL) {
        perror(acks);
        return 1;
    }
    if (json) {
        rt_buf js = RT_BUF_INIT;
        char err[256];
        for (s.next = 0; s.next < s.spans;) {
            size_t count = (size_t)(s.spans - s.next < s.per ? s.spans - s.next : s.per);
            size_t len;
            uint8_t *pb = build(s.phase, s.traces, s.next, count, &len);
            rt_buf_reset(&js);
            if (rt_otlp_pb_to_json(pb, len, &js, err, sizeof err) != 0) {
                fprintf(stderr, "rt-route-check: to json: %s\n", err);
                return 1;
            }
            free(pb);
            int st = post_json(json, js.data, js.len);
            s.by_status[st]++;
            s.spans_ok += st == 200 ? count : 0;
            if (s.acks) {
                fprintf(s.acks, "%llu %zu %d\n", (unsigned long long)s.next, count, st);
            }
            s.next += count;
        }
        rt_buf_free(&js);
    } else {
        rt_process_init();
        s.base = event_base_new();
        rt_otlp_client_opts o = {
            .protocol = grpc ? RT_OTLP_CLIENT_GRPC : RT_OTLP_CLIENT_HTTP,
            .endpoint = grpc ? grpc : http,
            .max_conns = (uint32_t)s.concurrency,
            .max_inflight = (uint32_t)s.concurrency,
            .timeout_ms = 30000,
            .retry = {.disabled = true},
        };
        char err[256];
        s.client = rt_otlp_client_new(s.base, &o, err, sizeof err);
        if (s.client == NULL) {
            fprintf(stderr, "rt-route-check: %s\n", err);
            return 1;
        }
        s.pace = evtimer_new(s.base, on_pace, &s);
        clock_gettime(CLOCK_MONOTONIC, &s.started);
        send_more(&s);
        event_base_dispatch(s.base);
        event_free(s.pace);
        rt_otlp_client_free(s.client);
        event_base_free(s.base);
    }
    if (s.acks) {
        fclose(s.acks);
    }
    printf("sent spans=%llu ok_spans=%llu", (unsigned long long)s.spans,
           (unsigned long long)s.spans_ok);
    for (int i = 0; i < 600; i++) {
        if (s.by_status[i]) {
            printf(" status_%d=%llu", i, (unsigned long long)s.by_status[i]);
        }
    }
    printf("\n");
    return 0;
}

/* ---- verify ---------------------------------------------------------------------------------- */

typedef struct seen {
    int8_t sink;   /* first sink seen at, -1 none */
    uint8_t times; /* saturating */
    uint8_t acked;
    uint8_t tid[16];
} seen;

static int hexval(int ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
    if (strlen(s) != 2 * n) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        int a = hexval(s[2 * i]), b = hexval(s[2 * i + 1]);
        if (a < 0 || b < 0) {
            return -1;
        }
        out[i] = (uint8_t)(a << 4 | b);
    }
    return 0;
}

static int fails;

typedef struct tsink {
    uint8_t tid[16];
    int16_t node;
} tsink;

static int cmp_tid(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        if (fails++ < 10) {                                                                        \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

/* Read one sink's dump; record spans of `phase` (span number < max). */
static void read_dump(const char *path, int sink, uint64_t phase, seen *tab, uint64_t max)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL) {
        return; /* a sink that never got anything may not have written its file */
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, fp)) > 0) {
        if (line[got - 1] != '\n') {
            /* A sink killed in the middle of writing leaves a partial last line: that request
             * was never acknowledged, so the router re-sent it elsewhere. */
            fprintf(stderr, "rt-route-check: %s: ignoring a partial last line\n", path);
            break;
        }
        json_error_t je;
        json_t *root = json_loads(line, 0, &je);
        if (root == NULL) {
            FAIL("%s: bad JSON line: %s", path, je.text);
            continue;
        }
        size_t i, j, k;
        json_t *rs, *ss, *sp;
        json_array_foreach(json_object_get(root, "resourceSpans"), i, rs)
        {
            json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
            {
                json_array_foreach(json_object_get(ss, "spans"), k, sp)
                {
                    uint8_t sid[8], tid[16];
                    if (unhex(json_string_value(json_object_get(sp, "spanId")) ?: "", sid, 8) ||
                        unhex(json_string_value(json_object_get(sp, "traceId")) ?: "", tid, 16)) {
                        FAIL("%s: span without valid ids", path);
                        continue;
                    }
                    uint64_t id = 0;
                    for (int b = 0; b < 8; b++) {
                        id = id << 8 | sid[b];
                    }
                    if (id >> 48 != phase) {
                        continue;
                    }
                    uint64_t n = id & ((1ull << 48) - 1);
                    if (n >= max) {
                        FAIL("%s: span number %llu beyond --spans", path, (unsigned long long)n);
                        continue;
                    }
                    seen *e = &tab[n];
                    if (e->times == 0) {
                        e->sink = (int8_t)sink;
                        memcpy(e->tid, tid, 16);
                    }
                    if (e->times < 255) {
                        e->times++;
                    }
                }
            }
        }
        json_decref(root);
    }
    free(line);
    fclose(fp);
}

static int cmd_verify(int argc, char **argv)
{
    const char *ring_path = NULL, *allow_down = NULL;
    const char *sink_ids[MAX_SINKS], *sink_files[MAX_SINKS];
    const char *acks[16];
    int n_sinks = 0, n_acks = 0;
    uint64_t phase = 0, max = 1u << 22;
    bool exact = false;
    double tol = 0.03;
    static const struct option opts[] = {
        {"ring", required_argument, NULL, 'r'},      {"sink", required_argument, NULL, 's'},
        {"phase", required_argument, NULL, 'p'},     {"acks", required_argument, NULL, 'a'},
        {"exact", no_argument, NULL, 'e'},           {"allow-down", required_argument, NULL, 'd'},
        {"tolerance", required_argument, NULL, 't'}, {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            ring_path = optarg;
            break;
        case 's': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || n_sinks == MAX_SINKS) {
                return 2;
            }
            *eq = '\0';
            sink_ids[n_sinks] = optarg;
            sink_files[n_sinks++] = eq + 1;
            break;
        }
        case 'p':
            phase = strtoull(optarg, NULL, 10);
            break;
        case 'a':
            if (n_acks < 16) {
                acks[n_acks++] = optarg;
            }
            break;
        case 'e':
            exact = true;
            break;
        case 'd':
            allow_down = optarg;
            break;
        case 't':
            tol = atof(optarg);
            break;
        default:
            return 2;
        }
    }
    char err[512];
    rt_membership *m = ring_path ? rt_membership_load(ring_path, err, sizeof err) : NULL;
    if (m == NULL) {
        fprintf(stderr, "rt-route-check: --ring: %s\n", ring_path ? err : "required");
        return 2;
    }
    int ring_of_sink[MAX_SINKS];
    for (int i = 0; i < n_sinks; i++) {
        ring_of_sink[i] = rt_ring_find(m->ring, sink_ids[i]);
        if (ring_of_sink[i] < 0) {
            fprintf(stderr, "rt-route-check: sink %s is not in the ring\n", sink_ids[i]);
            return 2;
        }
    }
    /* The ring with allow_down marked down: where that node's keys go. */
    size_t nn = rt_ring_size(m->ring);
    rt_ring_node_spec *specs = rt_calloc(nn, sizeof *specs);
    for (size_t i = 0; i < nn; i++) {
        specs[i] =
            (rt_ring_node_spec){rt_ring_node_id(m->ring, i), rt_ring_node_endpoint(m->ring, i),
                                rt_ring_node_weight(m->ring, i)};
    }
    rt_ring *down = rt_ring_new(specs, nn, err, sizeof err);
    int down_idx = allow_down ? rt_ring_find(m->ring, allow_down) : -1;
    if (allow_down && down_idx < 0) {
        fprintf(stderr, "rt-route-check: --allow-down %s is not in the ring\n", allow_down);
        return 2;
    }
    if (down_idx >= 0) {
        rt_ring_set_up(down, (size_t)down_idx, false);
    }

    seen *tab = rt_calloc(max, sizeof *tab);
    for (uint64_t i = 0; i < max; i++) {
        tab[i].sink = -1;
    }
    for (int i = 0; i < n_sinks; i++) {
        read_dump(sink_files[i], i, phase, tab, max);
    }
    uint64_t acked = 0, sent = 0;
    for (int a = 0; a < n_acks; a++) {
        FILE *fp = fopen(acks[a], "r");
        if (fp == NULL) {
            perror(acks[a]);
            return 2;
        }
        unsigned long long first;
        size_t count;
        int st;
        while (fscanf(fp, "%llu %zu %d", &first, &count, &st) == 3) {
            for (uint64_t n = first; n < first + count && n < max; n++) {
                sent++;
                if (st == 200) {
                    tab[n].acked = 1;
                    acked++;
                }
            }
        }
        fclose(fp);
    }

    uint64_t arrived = 0, dup = 0, lost = 0, moved = 0, misplaced = 0;
    for (uint64_t n = 0; n < max; n++) {
        seen *e = &tab[n];
        if (e->acked && e->times == 0) {
            lost++;
            FAIL("span %llu was acknowledged (200) but is at no sink", (unsigned long long)n);
        }
        if (e->times == 0) {
            continue;
        }
        arrived++;
        if (e->times > 1) {
            dup++;
            if (exact) {
                FAIL("span %llu arrived %u times", (unsigned long long)n, e->times);
            }
        }
        int at = ring_of_sink[e->sink];
        int home = rt_ring_lookup(m->ring, e->tid, 16);
        if (at == home) {
            continue;
        }
        if (down_idx >= 0 && home == down_idx && at == rt_ring_lookup(down, e->tid, 16)) {
            moved++;
            continue;
        }
        misplaced++;
        FAIL("span %llu is at %s; its trace's owner is %s%s", (unsigned long long)n,
             rt_ring_node_id(m->ring, (size_t)at), rt_ring_node_id(m->ring, (size_t)home),
             down_idx >= 0 ? " (and it is not that node's successor either)" : "");
    }
    printf("verify phase=%llu sent=%llu acked=%llu arrived=%llu duplicates=%llu lost=%llu "
           "moved_to_successor=%llu misplaced=%llu\n",
           (unsigned long long)phase, (unsigned long long)sent, (unsigned long long)acked,
           (unsigned long long)arrived, (unsigned long long)dup, (unsigned long long)lost,
           (unsigned long long)moved, (unsigned long long)misplaced);
    if (n_acks > 0 && arrived == 0) {
        FAIL("nothing arrived");
    }
    if (exact && arrived != sent) {
        FAIL("%llu spans sent, %llu distinct arrived", (unsigned long long)sent,
             (unsigned long long)arrived);
    }

    if (down_idx < 0 && arrived > 0) {
        /* Traces: each at exactly one sink, and the share of traces per sink. Trace ids are
         * collected by sorting the arrived spans' ids. */
        tsink *ts = rt_calloc(arrived, sizeof *ts);
        size_t k = 0;
        for (uint64_t n = 0; n < max; n++) {
            if (tab[n].times) {
                memcpy(ts[k].tid, tab[n].tid, 16);
                ts[k++].node =
                    (int16_t)ring_of_sink[tab[n].sink]; /* a node may have several dumps */
            }
        }
        qsort(ts, k, sizeof *ts, cmp_tid);
        uint64_t traces = 0, split = 0;
        uint64_t *per_node = rt_calloc(nn, sizeof *per_node);
        for (size_t i = 0; i < k;) {
            size_t j = i;
            bool one = true;
            while (j < k && memcmp(ts[j].tid, ts[i].tid, 16) == 0) {
                one &= ts[j].node == ts[i].node;
                j++;
            }
            traces++;
            per_node[ts[i].node]++;
            if (!one) {
                split++;
                FAIL("a trace's spans arrived at more than one sink");
            }
            i = j;
        }
        printf("traces=%llu split_traces=%llu\n", (unsigned long long)traces,
               (unsigned long long)split);
        for (int i = 0; i < n_sinks; i++) {
            bool again = false;
            for (int j = 0; j < i; j++) {
                again |= ring_of_sink[j] == ring_of_sink[i];
            }
            if (again) {
                continue;
            }
            double share = rt_ring_node_share(m->ring, (size_t)ring_of_sink[i]);
            double got = (double)per_node[ring_of_sink[i]] / (double)traces;
            printf("sink %s traces=%llu share=%.4f ring_share=%.4f\n", sink_ids[i],
                   (unsigned long long)per_node[ring_of_sink[i]], got, share);
            if (got - share > tol || share - got > tol) {
                FAIL("sink %s holds %.4f of the traces; the ring gives it %.4f (tolerance %.3f)",
                     sink_ids[i], got, share, tol);
            }
        }
        free(ts);
        free(per_node);
    }
    free(tab);
    free(specs);
    rt_ring_free(down);
    rt_membership_free(m);
    if (fails) {
        fprintf(stderr, "rt-route-check verify: %d failures\n", fails);
        return 1;
    }
    return 0;
}

static int cmd_owners(int argc, char **argv)
{
    if (argc != 3 || strcmp(argv[1], "--ring") != 0) {
        fprintf(stderr, "usage: rt-route-check owners --ring RING.yaml < ids\n");
        return 2;
    }
    char err[512];
    rt_membership *m = rt_membership_load(argv[2], err, sizeof err);
    if (m == NULL) {
        fprintf(stderr, "rt-route-check: %s\n", err);
        return 2;
    }
    char line[256];
    int rc = 0;
    while (fgets(line, sizeof line, stdin)) {
        uint8_t id[16];
        bool ok = strlen(line) >= 32;
        for (int i = 0; ok && i < 16; i++) {
            int hi = rt_hex_digit(line[2 * i]), lo = rt_hex_digit(line[2 * i + 1]);
            ok = hi >= 0 && lo >= 0;
            id[i] = (uint8_t)(hi << 4 | lo);
        }
        if (!ok) {
            fprintf(stderr, "rt-route-check: not a trace id: %s", line);
            rc = 2;
            continue;
        }
        int o = rt_ring_home_key(m->ring, rt_ring_key(id, 16));
        printf("%.32s %s\n", line, o >= 0 ? rt_ring_node_id(m->ring, (size_t)o) : "-");
    }
    rt_membership_free(m);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "owners") == 0) {
        return cmd_owners(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "send") == 0) {
        return cmd_send(argc - 1, argv + 1);
    }
    if (argc >= 2 && strcmp(argv[1], "verify") == 0) {
        return cmd_verify(argc - 1, argv + 1);
    }
    fprintf(stderr, "usage: rt-route-check send|verify|owners ... (see the comment at the top of "
                    "tests/tools/route_check.c)\n");
    return 2;
}
