/* exporter.c - the sampler's exporters (see exporter.h): the `exporters:` config list, and per
 * worker one backend object per configured exporter with its current batch, its bounded queue
 * of sealed batches in front of an OTLP client (or an O_APPEND file of OTLP/JSON lines), and the
 * span accounting behind the export metrics.
 *
 * Object graph (all owned by rt_exporter, which lives on one worker's event_base):
 *
 *   rt_exporter --backends[]--> backend --client--> rt_otlp_client (its own in-flight exports)
 *                                       --cur-----> rt_buf (the open batch)
 *                                       --queue---> batch -> batch ... (sealed, not yet handed
 *                                                   to the client because it was full)
 *   A batch handed to the client is owned by the client's done callback argument until done.
 *
 * Accounting: every span accepted by rt_exporter_submit for a backend is, at any moment, in
 * exactly one place - the current batch, the queue, in flight, or already counted as exported or
 * dropped (queue_full, rejected, gave_up, shutdown) - so exported + dropped == submitted once the
 * exporter is idle. The queue bound applies to all bytes a backend holds (current batch, queue and
 * in flight), because an in-flight batch waiting to retry costs as much memory as a queued one.
 */
#include "exporter.h"

#include "gzip.h"

#include "alloc.h"
#include "clock.h"
#include "intake.h"
#include "log.h"
#include "net.h"
#include "otlp_client.h"
#include "otlp_json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- config ----------------------------------------------------------------------------- */

enum { TYPE_OTLP_HTTP = 0, TYPE_OTLP_GRPC = 1, TYPE_FILE = 2 };
static const char *const type_names[] = {"otlp_http", "otlp_grpc", "file", NULL};
enum { COMPRESS_NONE = 0, COMPRESS_GZIP = 1 };
static const char *const compression_names[] = {"none", "gzip", NULL};

/* `headers:` - a mapping of header name to value, copied to every request. */
typedef struct exporter_headers {
    char **names; /* owned, each owned */
    char **values;
    size_t n;
} exporter_headers;

typedef struct batch_cfg {
    uint64_t max_spans;
    uint64_t max_bytes;
    uint64_t timeout_ns;
} batch_cfg;

typedef struct queue_cfg {
    uint64_t max_bytes;
    bool backpressure;
} queue_cfg;

typedef struct retry_cfg {
    bool enabled;
    uint64_t initial_ns;
    uint64_t max_ns;
    uint64_t max_elapsed_ns;
} retry_cfg;

struct rt_exporter_cfg {
    char *name;
    int type; /* TYPE_* */
    char *endpoint;
    char *path;
    exporter_headers headers;
    int compression; /* COMPRESS_* */
    uint64_t timeout_ns;
    uint64_t max_inflight;
    rt_tls_client_cfg tls;
    char *file;
    batch_cfg batch;
    queue_cfg queue;
    retry_cfg retry;
};

static void headers_free(void *field)
{
    exporter_headers *h = field;
    for (size_t i = 0; i < h->n; i++) {
        free(h->names[i]);
        free(h->values[i]);
    }
    free(h->names);
    free(h->values);
    memset(h, 0, sizeof *h);
}

/* Header names the client sets itself; a user value would clash with the protocol. */
static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {"host",
                                           "content-length",
                                           "content-type",
                                           "content-encoding",
                                           "transfer-encoding",
                                           "connection",
                                           "te",
                                           "grpc-encoding",
                                           "grpc-timeout",
                                           "user-agent",
                                           NULL};
    for (size_t i = 0; reserved[i] != NULL; i++) {
        if (strcasecmp(name, reserved[i]) == 0) {
            return true;
        }
    }
    return false;
}

/* An HTTP token (RFC 9110 tchar), lower or upper case. */
static bool header_name_ok(const char *s)
{
    if (*s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              strchr("!#$%&'*+-.^_`|~", c) != NULL)) {
            return false;
        }
    }
    return true;
}

/* RT_CFG_CUSTOM parse for `headers:` (mapping of string to string). */
static int headers_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    if (node->kind == RT_CFG_NODE_SCALAR && node->is_null) {
        headers_free(field);
        return 0;
    }
    if (node->kind != RT_CFG_NODE_MAPPING) {
        rt_cfg_error(ctx, node->line, path, "expected a mapping of header name to value, got a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    exporter_headers nh = {rt_calloc(node->n + 1, sizeof(char *)),
                           rt_calloc(node->n + 1, sizeof(char *)), 0};
    int rc = 0;
    for (size_t i = 0; i < node->n; i++) {
        const rt_cfg_pair *pr = &node->pairs[i];
        char *kp = rt_sprintf("%s.%s", path, pr->key);
        const rt_cfg_node *v = pr->value;
        if (!header_name_ok(pr->key)) {
            rt_cfg_error(ctx, pr->line, kp, "not a valid HTTP header name");
            rc = -1;
        } else if (header_reserved(pr->key)) {
            rt_cfg_error(ctx, pr->line, kp, "header is set by the exporter itself");
            rc = -1;
        } else if (v == NULL || v->kind != RT_CFG_NODE_SCALAR || v->is_null) {
            rt_cfg_error(ctx, pr->line, kp, "expected a string value, got a %s",
                         v == NULL || v->is_null ? "null" : rt_cfg_node_kind_name(v));
            rc = -1;
        } else if (strpbrk(v->scalar, "\r\n") != NULL) {
            rt_cfg_error(ctx, v->line, kp, "header value must not contain a line break");
            rc = -1;
        } else {
            for (size_t j = 0; j < nh.n; j++) {
                if (strcasecmp(nh.names[j], pr->key) == 0) {
                    rt_cfg_error(ctx, pr->line, kp, "header given twice");
                    rc = -1;
                }
            }
            nh.names[nh.n] = rt_strdup(pr->key);
            nh.values[nh.n] = rt_strdup(v->scalar);
            nh.n++;
        }
        free(kp);
    }
    if (rc != 0) {
        headers_free(&nh);
        return -1;
    }
    headers_free(field);
    *(exporter_headers *)field = nh;
    return 0;
}

static const rt_cfg_field batch_fields[] = {
    {.key = "max_spans",
     .type = RT_CFG_UINT64,
     .offset = offsetof(batch_cfg, max_spans),
     .def = "8192",
     .min = "1",
     .max = "10000000",
     .help = "Send the batch once it holds this many spans."},
    {.key = "max_bytes",
     .type = RT_CFG_SIZE,
     .offset = offsetof(batch_cfg, max_bytes),
     .def = "4MiB",
     .min = "1KiB",
     .max = "64MiB",
     .help = "Send the batch before it would grow past this many bytes (protobuf, before gzip); "
             "a single bigger trace goes alone."},
    {.key = "timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(batch_cfg, timeout_ns),
     .def = "200ms",
     .min = "1ms",
     .max = "1m",
     .help = "Send the batch this long after its first trace, however small."},
    {0},
};

static const rt_cfg_field queue_fields[] = {
    {.key = "max_bytes",
     .type = RT_CFG_SIZE,
     .offset = offsetof(queue_cfg, max_bytes),
     .def = "256MiB",
     .min = "1KiB",
     .max = "1TiB",
     .help = "Bytes held for this exporter in the whole process (open batch, queued and in "
             "flight, split equally over the workers); beyond it traces are dropped "
             "(reason queue_full)."},
    {.key = "backpressure",
     .type = RT_CFG_BOOL,
     .offset = offsetof(queue_cfg, backpressure),
     .def = "true",
     .help = "While the backend takes batches (no failed attempt since its last success), a "
             "queue that fills slows the intake instead of dropping: from half the bound clients "
             "get 429 / RESOURCE_EXHAUSTED with Retry-After, from three quarters traces that are "
             "due wait, still buffered. A backend whose attempts fail is left out: its queue "
             "fills and drops (queue_full), so one dead backend does not stop the intake."},
    {0},
};

static const rt_cfg_field retry_fields[] = {
    {.key = "enabled",
     .type = RT_CFG_BOOL,
     .offset = offsetof(retry_cfg, enabled),
     .def = "true",
     .help = "Retry failed batches (429/502/503/504, retryable gRPC codes, connection errors)."},
    {.key = "initial_interval",
     .type = RT_CFG_DURATION,
     .offset = offsetof(retry_cfg, initial_ns),
     .def = "1s",
     .min = "1ms",
     .max = "1h",
     .help = "Backoff cap before the first retry (full jitter; doubles per retry)."},
    {.key = "max_interval",
     .type = RT_CFG_DURATION,
     .offset = offsetof(retry_cfg, max_ns),
     .def = "30s",
     .min = "1ms",
     .max = "1h",
     .help = "Largest backoff between two attempts."},
    {.key = "max_elapsed",
     .type = RT_CFG_DURATION,
     .offset = offsetof(retry_cfg, max_elapsed_ns),
     .def = "5m",
     .min = "1ms",
     .max = "24h",
     .help = "Give a batch up (reason gave_up) when it has failed for this long; a server's "
             "Retry-After that would end later gives up at once."},
    {0},
};

static const rt_cfg_field exporter_fields[] = {
    {.key = "name",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_exporter_cfg, name),
     .flags = RT_CFG_F_REQUIRED,
     .help = "Unique name of the exporter (letters, digits, '_', '-', '.'); the `exporter` label "
             "of its metrics."},
    {.key = "type",
     .type = RT_CFG_ENUM,
     .offset = offsetof(rt_exporter_cfg, type),
     .choices = type_names,
     .flags = RT_CFG_F_REQUIRED,
     .help = "otlp_http (OTLP/HTTP protobuf), otlp_grpc (OTLP/gRPC), or file (OTLP/JSON lines)."},
    {.key = "endpoint",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_exporter_cfg, endpoint),
     .help = "otlp_*: host:port of the backend (required)."},
    {.key = "path",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_exporter_cfg, path),
     .def = "/v1/traces",
     .help = "otlp_http: request path."},
    {.key = "headers",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(rt_exporter_cfg, headers),
     .parse = headers_parse,
     .free = headers_free,
     .type_name = "mapping of header name to string",
     .help = "otlp_*: extra request headers (API keys ...)."},
    {.key = "compression",
     .type = RT_CFG_ENUM,
     .offset = offsetof(rt_exporter_cfg, compression),
     .def = "gzip",
     .choices = compression_names,
     .help = "otlp_*: request body compression."},
    {.key = "timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_exporter_cfg, timeout_ns),
     .def = "10s",
     .min = "1ms",
     .max = "10m",
     .help = "otlp_*: time limit of one attempt, from sending to the full answer."},
    {.key = "max_inflight",
     .type = RT_CFG_UINT64,
     .offset = offsetof(rt_exporter_cfg, max_inflight),
     .def = "32",
     .min = "1",
     .max = "1024",
     .help = "otlp_*: batches handed to the client at once per worker (sending or waiting to "
             "retry); the rest wait in the queue."},
    {.key = "tls",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_exporter_cfg, tls),
     .sub = rt_tls_client_fields,
     .help = "otlp_*: TLS to the backend."},
    {.key = "file",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_exporter_cfg, file),
     .help = "file: path appended to, one ExportTraceServiceRequest as OTLP/JSON per line "
             "(required)."},
    {.key = "batch",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_exporter_cfg, batch),
     .sub = batch_fields,
     .help = "Batching of kept traces (per worker)."},
    {.key = "queue",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_exporter_cfg, queue),
     .sub = queue_fields,
     .help = "Memory bound of what waits for the backend."},
    {.key = "retry",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_exporter_cfg, retry),
     .sub = retry_fields,
     .help = "otlp_*: retries of failed batches (OTLP rules; Retry-After is honoured)."},
    {0},
};

static bool str_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static bool name_ok(const char *s)
{
    if (!str_set(s)) {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.')) {
            return false;
        }
    }
    return true;
}

/* The line of `key` in mapping `map`, or the mapping's own line. */
static int key_line(const rt_cfg_node *map, const char *key)
{
    if (map != NULL && map->kind == RT_CFG_NODE_MAPPING) {
        for (size_t i = 0; i < map->n; i++) {
            if (strcmp(map->pairs[i].key, key) == 0) {
                return map->pairs[i].line;
            }
        }
    }
    return rt_cfg_node_line(map);
}

/* Report each of `keys` present in `map` as not applying to type `type`. */
static int reject_keys(rt_cfg_ctx *ctx, const rt_cfg_node *map, const char *path,
                       const char *const *keys, const char *type)
{
    int rc = 0;
    for (size_t i = 0; keys[i] != NULL; i++) {
        if (rt_cfg_node_get(map, keys[i]) != NULL) {
            char *kp = rt_sprintf("%s.%s", path, keys[i]);
            rt_cfg_error(ctx, key_line(map, keys[i]), kp, "does not apply to type %s", type);
            free(kp);
            rc = -1;
        }
    }
    return rc;
}

/* Checks across keys of one applied entry `c` (from mapping `map` at `path`). */
static int check_entry(rt_cfg_ctx *ctx, const rt_exporter_cfg *c, const rt_cfg_node *map,
                       const char *path)
{
    static const char *const not_for_file[] = {"endpoint",    "path",    "headers",
                                               "compression", "timeout", "max_inflight",
                                               "tls",         "retry",   NULL};
    static const char *const not_for_otlp[] = {"file", NULL};
    static const char *const not_for_grpc[] = {"path", NULL};
    int rc = 0;
    if (c->name != NULL && !name_ok(c->name)) {
        char *kp = rt_sprintf("%s.name", path);
        rt_cfg_error(ctx, key_line(map, "name"), kp,
                     "\"%s\" is not a valid name (letters, digits, '_', '-', '.')", c->name);
        free(kp);
        rc = -1;
    }
    const char *type = type_names[c->type];
    if (c->type == TYPE_FILE) {
        if (!str_set(c->file)) {
            char *kp = rt_sprintf("%s.file", path);
            rt_cfg_error(ctx, rt_cfg_node_line(map), kp, "missing (required for type file)");
            free(kp);
            rc = -1;
        }
        if (reject_keys(ctx, map, path, not_for_file, type) != 0) {
            rc = -1;
        }
        return rc;
    }
    if (rt_cfg_node_get(map, "type") == NULL) {
        return rc; /* already reported as missing; do not pile up errors for a default type */
    }
    if (!str_set(c->endpoint)) {
        char *kp = rt_sprintf("%s.endpoint", path);
        rt_cfg_error(ctx, rt_cfg_node_line(map), kp, "missing (required for type %s)", type);
        free(kp);
        rc = -1;
    } else {
        char host[256];
        uint16_t port = 0;
        if (rt_net_split_hostport(c->endpoint, host, sizeof host, &port) != 0 || host[0] == '\0' ||
            port == 0) {
            char *kp = rt_sprintf("%s.endpoint", path);
            rt_cfg_error(ctx, key_line(map, "endpoint"), kp,
                         "\"%s\" is not host:port with a non-zero port", c->endpoint);
            free(kp);
            rc = -1;
        }
    }
    if (c->type == TYPE_OTLP_HTTP && (c->path == NULL || c->path[0] != '/')) {
        char *kp = rt_sprintf("%s.path", path);
        rt_cfg_error(ctx, key_line(map, "path"), kp, "must start with '/'");
        free(kp);
        rc = -1;
    }
    if (c->type == TYPE_OTLP_GRPC && reject_keys(ctx, map, path, not_for_grpc, type) != 0) {
        rc = -1;
    }
    if (reject_keys(ctx, map, path, not_for_otlp, type) != 0) {
        rc = -1;
    }
    if (str_set(c->tls.cert) != str_set(c->tls.key)) {
        char *kp = rt_sprintf("%s.tls", path);
        rt_cfg_error(ctx, key_line(map, "tls"), kp, "cert and key must be given together");
        free(kp);
        rc = -1;
    }
    return rc;
}

static void cfg_item_free(rt_exporter_cfg *c)
{
    if (c != NULL) {
        rt_cfg_free_struct(exporter_fields, c);
        free(c);
    }
}

void rt_exporters_cfg_free(void *field)
{
    rt_exporters_cfg *l = field;
    for (size_t i = 0; i < l->n; i++) {
        cfg_item_free(l->items[i]);
    }
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

int rt_exporters_cfg_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    if (node->kind == RT_CFG_NODE_SCALAR && node->is_null) {
        rt_exporters_cfg_free(field); /* "exporters:" with nothing: the default file */
        return 0;
    }
    if (node->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, node->line, path, "expected a list of exporters, got a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    rt_exporters_cfg nl = {rt_calloc(node->n + 1, sizeof(rt_exporter_cfg *)), 0};
    int rc = 0;
    for (size_t i = 0; i < node->n; i++) {
        const rt_cfg_node *item = node->items[i];
        char *ip = rt_sprintf("%s[%zu]", path, i);
        rt_exporter_cfg *c = rt_calloc(1, sizeof *c);
        nl.items[nl.n++] = c;
        rt_cfg_set_defaults(exporter_fields, c);
        if (rt_cfg_apply(ctx, exporter_fields, item, ip, c) != 0) {
            rc = -1;
        }
        if (item->kind == RT_CFG_NODE_MAPPING && check_entry(ctx, c, item, ip) != 0) {
            rc = -1;
        }
        for (size_t j = 0; c->name != NULL && j + 1 < nl.n; j++) {
            const rt_exporter_cfg *o = nl.items[j];
            if (o->name != NULL && strcmp(o->name, c->name) == 0) {
                char *kp = rt_sprintf("%s.name", ip);
                rt_cfg_error(ctx, key_line(item, "name"), kp,
                             "exporter name \"%s\" already used by %s[%zu] on line %d", c->name,
                             path, j, key_line(node->items[j], "name"));
                free(kp);
                rc = -1;
                break;
            }
        }
        free(ip);
    }
    if (rc != 0) {
        rt_exporters_cfg_free(&nl);
        return -1;
    }
    rt_exporters_cfg_free(field);
    *(rt_exporters_cfg *)field = nl;
    return 0;
}

void rt_exporters_cfg_describe(const char *prefix, rt_buf *out)
{
    rt_cfg_describe(exporter_fields, prefix != NULL ? prefix : "exporters[]", out);
}

const char *rt_exporter_cfg_name(const rt_exporter_cfg *c)
{
    return c->name;
}

const char *rt_exporter_cfg_type(const rt_exporter_cfg *c)
{
    return type_names[c->type];
}

/* ---- runtime ---------------------------------------------------------------------------- */

enum { DROP_QUEUE_FULL = 0, DROP_REJECTED, DROP_GAVE_UP, DROP_SHUTDOWN, DROP_COUNT_ };
static const char *const drop_names[DROP_COUNT_] = {"queue_full", "rejected", "gave_up",
                                                    "shutdown"};
enum { OUT_OK = 0, OUT_PARTIAL, OUT_REJECTED, OUT_GAVE_UP, OUT_SHUTDOWN, OUT_COUNT_ };
static const char *const outcome_names[OUT_COUNT_] = {"ok", "partial", "rejected", "gave_up",
                                                      "shutdown"};

#define METRIC_PREFIX "ringtail_sampler_"

typedef struct backend backend;

/* A sealed batch: waiting in the queue, or in flight (the client's done argument). */
typedef struct batch {
    struct batch *next;
    backend *be;
    rt_buf body;  /* concatenated requests; emptied when handed to the client */
    size_t bytes; /* body length when sealed (what it counts against the queue bound) */
    size_t spans;
} batch;

struct backend {
    rt_exporter *x;
    const rt_exporter_cfg *cfg; /* ref in rt_exporters_cfg (or rt_exporter.own_cfg) */
    SSL_CTX *tls;               /* owned; NULL for plaintext and files */
    rt_otlp_client *client;     /* owned; NULL for files and after shutdown */
    int fd;                     /* file exporters: O_APPEND fd, owned; -1 otherwise */
    bool dead;                  /* shut down: new traces are dropped (reason shutdown) */

    rt_buf cur;         /* the open batch, protobuf (gzipped whole when sealed, with `gz`) */
    rt_gzip_writer *gz; /* owned: gzip OTLP exporters compress each batch as it is sealed */
    size_t cur_raw;     /* protobuf bytes in the open batch (what max_bytes and the bound see) */
    size_t cur_spans;
    struct event *timer; /* batch.timeout after the first trace of `cur` */

    batch *qhead, *qtail; /* sealed, waiting for a free client slot */
    size_t q_spans;
    size_t inflight_spans; /* handed to the client, done not yet called */
    size_t inflight_batches;
    size_t held_bytes;       /* cur + queue + in flight: what the bound applies to */
    size_t limit;            /* queue.max_bytes / n_workers */
    size_t last_batch_bytes; /* size of the last sealed batch (initial capacity of the next) */
    uint64_t retries_seen;   /* client retries already added to m_retries */
    uint64_t fails_at_ok;    /* the client's failed attempts when a batch last succeeded */
    bool failing;            /* an attempt failed since the last success (as last reported) */
    rt_buf line;             /* file exporters: the JSON line being written (reused) */

    rt_counter *m_exported;
    rt_counter *m_dropped[DROP_COUNT_];
    rt_gauge *m_queue_bytes;
    rt_gauge *m_queue_spans;
    rt_gauge *m_queue_batches;
    rt_counter *m_batches[OUT_COUNT_];
    rt_counter *m_retries;
    rt_histogram *m_latency;
};

struct rt_exporter {
    struct event_base *base;  /* borrowed */
    rt_metrics_registry *reg; /* borrowed, or own_reg */
    rt_metrics_registry *own_reg;
    rt_exporter_cfg *own_cfg; /* the default file exporter when none is configured */
    backend *backends;
    size_t n;
    bool shutting_down; /* deadline passed or being freed: in-flight outcomes count as shutdown */

    bool draining;
    bool drain_fired;
    void (*drain_done)(void *arg);
    void *drain_arg;
    struct event *drain_deadline;
    struct event *drain_notify; /* activated to call drain_done from the loop */
};

static const double latency_bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                        2.5,   5,    10,    30,   60,  120,  300};

static void pump(backend *be);
static void check_drained(rt_exporter *x);
static void on_drain_notify(evutil_socket_t fd, short what, void *arg);

/* Count `spans` of `be` as dropped for `reason` and log it, rate-limited per reason: one call
 * site per reason, so a flood of queue_full cannot hide the first gave_up. */
static void drop(backend *be, size_t spans, int reason, const char *detail)
{
    if (spans == 0) {
        return;
    }
    rt_counter_add(be->m_dropped[reason], spans);
    char q[300];
    rt_log_quote(detail != NULL ? detail : "", q, sizeof q);
    const char *fmt = "exporter=%s spans=%zu reason=%s detail=\"%s\"";
    const char *name = be->cfg->name;
    switch (reason) {
    case DROP_QUEUE_FULL:
        RT_LOG_RL(RT_LOG_WARN, "export spans dropped", fmt, name, spans, drop_names[reason], q);
        break;
    case DROP_REJECTED:
        RT_LOG_RL(RT_LOG_WARN, "export spans dropped", fmt, name, spans, drop_names[reason], q);
        break;
    case DROP_GAVE_UP:
        RT_LOG_RL(RT_LOG_WARN, "export spans dropped", fmt, name, spans, drop_names[reason], q);
        break;
    default:
        RT_LOG_RL(RT_LOG_WARN, "export spans dropped", fmt, name, spans, drop_names[reason], q);
        break;
    }
}

static void held_sub(backend *be, size_t bytes, size_t spans)
{
    be->held_bytes -= bytes;
    rt_gauge_add(be->m_queue_bytes, -(double)bytes);
    rt_gauge_add(be->m_queue_spans, -(double)spans);
}

static void sync_retries(backend *be)
{
    if (be->client == NULL) {
        return;
    }
    uint64_t r = rt_otlp_client_stats_get(be->client)->retries;
    if (r > be->retries_seen) {
        rt_counter_add(be->m_retries, r - be->retries_seen);
        be->retries_seen = r;
    }
}

/* Attempts of this backend's client that failed, for any reason but the client's own end. */
static uint64_t client_failures(const backend *be)
{
    if (be->client == NULL) {
        return 0;
    }
    const rt_otlp_client_stats *st = rt_otlp_client_stats_get(be->client);
    uint64_t n = 0;
    for (int i = RT_OTLP_CLIENT_FAIL_NONE + 1; i < RT_OTLP_CLIENT_FAIL_COUNT_; i++) {
        if (i != RT_OTLP_CLIENT_FAIL_SHUTDOWN) {
            n += st->failures[i];
        }
    }
    return n;
}

/* File exporters: render the open batch as one OTLP/JSON line and append it with one write().
 * The line buffer is reused, so steady state allocates nothing per batch. */
static void file_write_batch(backend *be)
{
    uint64_t t0 = rt_clock_mono_ns();
    size_t spans = be->cur_spans;
    size_t bytes = be->cur.len;
    char err[256];
    rt_buf_reset(&be->line);
    if (rt_otlp_pb_to_json(be->cur.data, be->cur.len, &be->line, err, sizeof err) != 0) {
        rt_counter_inc(be->m_batches[OUT_REJECTED]);
        drop(be, spans, DROP_REJECTED, err);
        goto done;
    }
    rt_buf_append_byte(&be->line, '\n');
    ssize_t w;
    do {
        w = write(be->fd, be->line.data, be->line.len);
    } while (w < 0 && errno == EINTR);
    if (w < 0 || (size_t)w != be->line.len) {
        snprintf(err, sizeof err, "write %s: %s", be->cfg->file,
                 w < 0 ? strerror(errno) : "short write");
        rt_counter_inc(be->m_batches[OUT_GAVE_UP]);
        drop(be, spans, DROP_GAVE_UP, err);
        goto done;
    }
    rt_counter_add(be->m_exported, spans);
    rt_counter_inc(be->m_batches[OUT_OK]);
    rt_histogram_observe(be->m_latency, (double)(rt_clock_mono_ns() - t0) / 1e9);
done:
    rt_buf_reset(&be->cur);
    be->cur_raw = 0;
    be->cur_spans = 0;
    held_sub(be, bytes, spans);
}

/* Close the open batch: a file exporter writes it at once, an OTLP exporter queues it and feeds
 * the client. */
static void seal(backend *be)
{
    if (be->cur_raw == 0) {
        return;
    }
    evtimer_del(be->timer);
    be->last_batch_bytes = be->cur.len;
    if (be->fd >= 0) {
        file_write_batch(be);
        return;
    }
    batch *b = rt_calloc(1, sizeof *b);
    b->be = be;
    if (be->gz != NULL) {
        /* The whole batch in one call: igzip fed trace by trace copied each piece through its
         * own buffer (a fifth of a sampler's instructions when most is kept). The raw buffer
         * stays for the next batch. */
        rt_buf_reserve(&b->body, be->cur.len / 4 + 1024);
        rt_gzip_writer_write(be->gz, be->cur.data, be->cur.len, &b->body);
        rt_gzip_writer_finish(be->gz, &b->body);
        rt_buf_reset(&be->cur);
    } else {
        b->body = be->cur; /* the batch takes the memory; the next batch starts a new buffer */
        rt_buf_init(&be->cur);
    }
    b->bytes = be->cur_raw;
    b->spans = be->cur_spans;
    be->cur_raw = 0;
    be->cur_spans = 0;
    if (be->qtail != NULL) {
        be->qtail->next = b;
    } else {
        be->qhead = b;
    }
    be->qtail = b;
    be->q_spans += b->spans;
    rt_gauge_inc(be->m_queue_batches);
    pump(be);
}

static void batch_done(batch *b, bool counted_in_gauge)
{
    backend *be = b->be;
    held_sub(be, b->bytes, b->spans);
    if (counted_in_gauge) {
        rt_gauge_dec(be->m_queue_batches);
    }
    rt_buf_free(&b->body);
    free(b);
}

/* The client's verdict on one batch. */
static void on_export_done(const rt_otlp_client_result *res, void *arg)
{
    batch *b = arg;
    backend *be = b->be;
    rt_exporter *x = be->x;
    be->inflight_spans -= b->spans;
    be->inflight_batches--;
    sync_retries(be);
    if (x->shutting_down) {
        rt_counter_inc(be->m_batches[OUT_SHUTDOWN]);
        drop(be, b->spans, DROP_SHUTDOWN, "exporter stopped with the batch in flight");
        batch_done(b, true);
        check_drained(x);
        return;
    }
    rt_histogram_observe(be->m_latency, (double)res->elapsed_ns / 1e9);
    char detail[400];
    switch (res->outcome) {
    case RT_OTLP_CLIENT_OK:
        rt_counter_inc(be->m_batches[OUT_OK]);
        rt_counter_add(be->m_exported, b->spans);
        be->fails_at_ok = client_failures(be);
        break;
    case RT_OTLP_CLIENT_PARTIAL: {
        be->fails_at_ok = client_failures(be);
        size_t rej = res->rejected_spans < 0 ? 0 : (size_t)res->rejected_spans;
        if (rej > b->spans) {
            rej = b->spans;
        }
        rt_counter_inc(be->m_batches[OUT_PARTIAL]);
        rt_counter_add(be->m_exported, b->spans - rej);
        snprintf(detail, sizeof detail, "partial success: %s", res->message);
        drop(be, rej, DROP_REJECTED, detail);
        break;
    }
    case RT_OTLP_CLIENT_REJECTED:
        rt_counter_inc(be->m_batches[OUT_REJECTED]);
        snprintf(detail, sizeof detail, "http_status=%d grpc_status=%d: %s", res->http_status,
                 res->grpc_status, res->message);
        drop(be, b->spans, DROP_REJECTED, detail);
        break;
    default:
        rt_counter_inc(be->m_batches[OUT_GAVE_UP]);
        snprintf(detail, sizeof detail, "after %u attempts, last %s: %s", res->attempts,
                 rt_otlp_client_fail_name(res->fail), res->message);
        drop(be, b->spans, DROP_GAVE_UP, detail);
        break;
    }
    batch_done(b, true);
    pump(be);
    check_drained(x);
}

/* Hand queued batches to the client while it has free slots. */
static void pump(backend *be)
{
    while (be->qhead != NULL && be->client != NULL) {
        batch *b = be->qhead;
        int rc = be->gz != NULL
                     ? rt_otlp_client_export_encoded(be->client, &b->body, on_export_done, b)
                     : rt_otlp_client_export_buf(be->client, &b->body, on_export_done, b);
        if (rc != 0) {
            break; /* at max_inflight: the next done callback pumps again */
        }
        be->qhead = b->next;
        if (be->qhead == NULL) {
            be->qtail = NULL;
        }
        b->next = NULL;
        be->q_spans -= b->spans;
        be->inflight_spans += b->spans;
        be->inflight_batches++;
    }
}

static void on_batch_timer(evutil_socket_t fd, short what, void *arg)
{
    seal(arg);
}

static bool backend_idle(const backend *be)
{
    return be->cur_raw == 0 && be->qhead == NULL && be->inflight_batches == 0;
}

/* Stop a backend for good: the open batch and the queue are dropped (shutdown), the client is
 * freed (its in-flight batches come back through on_export_done as shutdown drops). */
static void backend_shutdown(backend *be)
{
    be->dead = true;
    if (be->timer != NULL) {
        evtimer_del(be->timer);
    }
    if (be->cur_raw > 0) {
        drop(be, be->cur_spans, DROP_SHUTDOWN, "exporter stopped with the batch open");
        held_sub(be, be->cur_raw, be->cur_spans);
        rt_buf_reset(&be->cur);
        be->cur_raw = 0;
        be->cur_spans = 0;
    }
    while (be->qhead != NULL) {
        batch *b = be->qhead;
        be->qhead = b->next;
        be->q_spans -= b->spans;
        rt_counter_inc(be->m_batches[OUT_SHUTDOWN]);
        drop(be, b->spans, DROP_SHUTDOWN, "exporter stopped with the batch queued");
        batch_done(b, true);
    }
    be->qtail = NULL;
    rt_otlp_client *c = be->client;
    if (c != NULL) {
        sync_retries(be);
        be->client = NULL; /* pump must not feed a client being freed */
        be->x->shutting_down = true;
        rt_otlp_client_free(c);
    }
}

static void register_metrics(backend *be, rt_metrics_registry *reg)
{
    const char *n = be->cfg->name;
    be->m_exported = rt_metrics_counter(reg, METRIC_PREFIX "spans_exported_total",
                                        "Spans accepted by an exporter's backend (or written).",
                                        "exporter", n, NULL);
    for (int r = 0; r < DROP_COUNT_; r++) {
        be->m_dropped[r] =
            rt_metrics_counter(reg, METRIC_PREFIX "spans_export_dropped_total",
                               "Kept spans an exporter could not deliver, by reason.", "exporter",
                               n, "reason", drop_names[r], NULL);
    }
    be->m_queue_bytes =
        rt_metrics_gauge(reg, METRIC_PREFIX "export_queue_bytes",
                         "Bytes held for an exporter: open batches, queued and in-flight batches.",
                         "exporter", n, NULL);
    be->m_queue_spans = rt_metrics_gauge(
        reg, METRIC_PREFIX "export_queue_spans",
        "Kept spans held for an exporter (open, queued and in-flight batches): with "
        "spans_buffered, what a sampler killed now would lose.",
        "exporter", n, NULL);
    be->m_queue_batches = rt_metrics_gauge(
        reg, METRIC_PREFIX "export_queue_batches",
        "Sealed batches of an exporter not yet done (queued or in flight).", "exporter", n, NULL);
    for (int o = 0; o < OUT_COUNT_; o++) {
        be->m_batches[o] = rt_metrics_counter(reg, METRIC_PREFIX "export_batches_total",
                                              "Batches an exporter finished, by outcome.",
                                              "exporter", n, "outcome", outcome_names[o], NULL);
    }
    be->m_retries = rt_metrics_counter(reg, METRIC_PREFIX "export_retries_total",
                                       "Export attempts retried after a retryable failure.",
                                       "exporter", n, NULL);
    be->m_latency = rt_metrics_histogram(
        reg, METRIC_PREFIX "export_latency_seconds",
        "Time from a batch handed to the exporter's client to its final outcome.", latency_bounds,
        sizeof latency_bounds / sizeof latency_bounds[0], "exporter", n, NULL);
}

/* Open the backend's client or file. Returns 0, or -1 with `err` naming the exporter. */
static int backend_init(rt_exporter *x, backend *be, const rt_exporter_cfg *c, unsigned n_workers,
                        char *err, size_t errlen)
{
    char why[256];
    rt_otlp_client_header *hdrs = NULL;
    be->x = x;
    be->cfg = c;
    be->fd = -1;
    rt_buf_init(&be->cur);
    rt_buf_init(&be->line);
    be->limit = (size_t)(c->queue.max_bytes / n_workers);
    be->timer = evtimer_new(x->base, on_batch_timer, be);
    register_metrics(be, x->reg);
    if (c->type == TYPE_FILE) {
        be->fd = open(c->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (be->fd < 0) {
            snprintf(err, errlen, "exporter \"%s\": cannot open file \"%s\": %s", c->name, c->file,
                     strerror(errno));
            goto fail;
        }
        return 0;
    }
    bool grpc = c->type == TYPE_OTLP_GRPC;
    if (rt_tls_client_from_cfg(&c->tls, grpc, &be->tls, why, sizeof why) != 0) {
        snprintf(err, errlen, "exporter \"%s\": %s", c->name, why);
        goto fail;
    }
    hdrs = rt_calloc(c->headers.n + 1, sizeof *hdrs);
    for (size_t i = 0; i < c->headers.n; i++) {
        hdrs[i].name = c->headers.names[i];
        hdrs[i].value = c->headers.values[i];
    }
    rt_otlp_client_opts o = {
        .protocol = grpc ? RT_OTLP_CLIENT_GRPC : RT_OTLP_CLIENT_HTTP,
        .endpoint = c->endpoint,
        .path = c->path,
        .gzip = c->compression == COMPRESS_GZIP,
        .tls = be->tls,
        .server_name = str_set(c->tls.server_name) ? c->tls.server_name : NULL,
        .headers = hdrs,
        .n_headers = c->headers.n,
        .timeout_ms = (uint32_t)(c->timeout_ns / 1000000 ? c->timeout_ns / 1000000 : 1),
        .max_inflight = (uint32_t)c->max_inflight,
        .retry = {.disabled = !c->retry.enabled,
                  .initial_ns = c->retry.initial_ns,
                  .max_ns = c->retry.max_ns,
                  .max_elapsed_ns = c->retry.max_elapsed_ns},
    };
    be->client = rt_otlp_client_new(x->base, &o, why, sizeof why);
    free(hdrs);
    if (be->client == NULL) {
        snprintf(err, errlen, "exporter \"%s\": %s", c->name, why);
        goto fail;
    }
    if (o.gzip) {
        be->gz = rt_gzip_writer_new(RT_OTLP_CLIENT_GZIP_LEVEL);
    }
    return 0;
fail:
    return -1;
}

static void backend_free(backend *be)
{
    if (be->x == NULL) {
        return; /* never initialised */
    }
    backend_shutdown(be);
    if (be->timer != NULL) {
        event_free(be->timer);
    }
    if (be->fd >= 0) {
        close(be->fd);
    }
    SSL_CTX_free(be->tls);
    rt_gzip_writer_free(be->gz);
    rt_buf_free(&be->cur);
    rt_buf_free(&be->line);
}

rt_exporter *rt_exporter_new(struct event_base *base, const rt_exporters_cfg *cfg,
                             const char *default_file, unsigned n_workers, rt_metrics_registry *reg,
                             char *err, size_t errlen)
{
    rt_exporter *x = rt_calloc(1, sizeof *x);
    x->base = base;
    x->reg = reg;
    if (reg == NULL) {
        x->reg = x->own_reg = rt_metrics_registry_new();
    }
    if (n_workers == 0) {
        n_workers = 1;
    }
    size_t n = cfg != NULL ? cfg->n : 0;
    const rt_exporter_cfg *const *items =
        cfg != NULL ? (const rt_exporter_cfg *const *)cfg->items : NULL;
    if (n == 0) {
        if (!str_set(default_file)) {
            snprintf(err, errlen, "no exporter configured and no default file");
            goto fail;
        }
        x->own_cfg = rt_calloc(1, sizeof *x->own_cfg);
        rt_cfg_set_defaults(exporter_fields, x->own_cfg);
        x->own_cfg->name = rt_strdup("default");
        x->own_cfg->type = TYPE_FILE;
        x->own_cfg->file = rt_strdup(default_file);
        n = 1;
        items = (const rt_exporter_cfg *const *)&x->own_cfg;
    }
    x->backends = rt_calloc(n, sizeof *x->backends);
    x->n = n;
    for (size_t i = 0; i < n; i++) {
        if (backend_init(x, &x->backends[i], items[i], n_workers, err, errlen) != 0) {
            goto fail;
        }
    }
    x->drain_notify = event_new(base, -1, 0, on_drain_notify, x);
    return x;
fail:
    rt_exporter_free(x);
    return NULL;
}

void rt_exporter_submit(rt_exporter *x, const uint8_t *req, size_t len, size_t spans)
{
    if (len == 0) {
        return;
    }
    for (size_t i = 0; i < x->n; i++) {
        backend *be = &x->backends[i];
        if (be->dead) {
            drop(be, spans, DROP_SHUTDOWN, "exporter already stopped");
            continue;
        }
        if (be->held_bytes + len > be->limit) {
            char detail[160];
            snprintf(detail, sizeof detail, "%zu bytes held, %zu more would pass the bound %zu",
                     be->held_bytes, len, be->limit);
            drop(be, spans, DROP_QUEUE_FULL, detail);
            continue;
        }
        if (be->cur_raw > 0 && be->cur_raw + len > be->cfg->batch.max_bytes) {
            seal(be);
        }
        if (be->cur_raw == 0) {
            /* Size a new batch like the last one and a quarter, so it is seldom grown (each
             * growth copies the whole batch). */
            size_t want = be->last_batch_bytes + be->last_batch_bytes / 4;
            if (want > be->cfg->batch.max_bytes) {
                want = be->cfg->batch.max_bytes;
            }
            if (want < len) {
                want = len;
            }
            if (be->cur.cap < want) {
                rt_buf_reserve(&be->cur, want);
            }
            uint64_t t = be->cfg->batch.timeout_ns;
            struct timeval tv = {(time_t)(t / 1000000000u), (suseconds_t)(t % 1000000000u / 1000)};
            evtimer_add(be->timer, &tv);
        }
        rt_buf_append(&be->cur, req, len);
        be->cur_raw += len;
        be->cur_spans += spans;
        be->held_bytes += len;
        rt_gauge_add(be->m_queue_bytes, (double)len);
        rt_gauge_add(be->m_queue_spans, (double)spans);
        if (be->cur_spans >= be->cfg->batch.max_spans || be->cur_raw >= be->cfg->batch.max_bytes ||
            x->draining) {
            seal(be);
        }
    }
    check_drained(x);
}

size_t rt_exporter_pending_spans(const rt_exporter *x)
{
    size_t n = 0;
    for (size_t i = 0; i < x->n; i++) {
        const backend *be = &x->backends[i];
        n += be->cur_spans + be->q_spans + be->inflight_spans;
    }
    return n;
}

rt_export_pressure rt_exporter_pressure(rt_exporter *x)
{
    rt_export_pressure p = RT_EXPORT_PRESSURE_NONE;
    for (size_t i = 0; i < x->n; i++) {
        backend *be = &x->backends[i];
        if (!be->cfg->queue.backpressure || be->dead || be->limit == 0) {
            continue;
        }
        bool failing = client_failures(be) > be->fails_at_ok;
        if (failing != be->failing) {
            be->failing = failing;
            if (failing) {
                RT_LOG_RL(RT_LOG_WARN,
                          "exporter backend failing: its queue no longer slows the intake; kept "
                          "spans are dropped (queue_full) once it is full",
                          "exporter=%s held_bytes=%zu bound=%zu", be->cfg->name, be->held_bytes,
                          be->limit);
            } else {
                RT_LOG_RL(RT_LOG_INFO, "exporter backend answering again: back-pressure on",
                          "exporter=%s held_bytes=%zu bound=%zu", be->cfg->name, be->held_bytes,
                          be->limit);
            }
        }
        if (failing) {
            continue; /* every backend is looked at, so each flip is logged when it comes */
        }
        if (be->held_bytes >= be->limit - be->limit / 4) {
            p = RT_EXPORT_PRESSURE_HOLD;
        } else if (be->held_bytes >= be->limit / 2 && p == RT_EXPORT_PRESSURE_NONE) {
            p = RT_EXPORT_PRESSURE_THROTTLE;
        }
    }
    return p;
}

static void on_drain_notify(evutil_socket_t fd, short what, void *arg)
{
    rt_exporter *x = arg;
    void (*done)(void *) = x->drain_done;
    x->drain_done = NULL;
    if (done != NULL) {
        done(x->drain_arg); /* may free x */
    }
}

/* Once draining and idle, call the drain callback from the loop (never from inside a client
 * callback, so the caller may free the exporter in it). */
static void check_drained(rt_exporter *x)
{
    if (!x->draining || x->drain_fired) {
        return;
    }
    for (size_t i = 0; i < x->n; i++) {
        if (!backend_idle(&x->backends[i])) {
            return;
        }
    }
    x->drain_fired = true;
    if (x->drain_deadline != NULL) {
        evtimer_del(x->drain_deadline);
    }
    event_active(x->drain_notify, EV_TIMEOUT, 0);
}

static void on_drain_deadline(evutil_socket_t fd, short what, void *arg)
{
    rt_exporter *x = arg;
    for (size_t i = 0; i < x->n; i++) {
        backend_shutdown(&x->backends[i]);
    }
    check_drained(x);
}

void rt_exporter_drain(rt_exporter *x, uint64_t deadline_ns, void (*done)(void *arg), void *arg)
{
    x->draining = true;
    x->drain_fired = false;
    x->drain_done = done;
    x->drain_arg = arg;
    if (x->drain_deadline == NULL) {
        x->drain_deadline = evtimer_new(x->base, on_drain_deadline, x);
    }
    uint64_t now = rt_clock_mono_ns();
    uint64_t left = deadline_ns > now ? deadline_ns - now : 0;
    struct timeval tv = {(time_t)(left / 1000000000u), (suseconds_t)(left % 1000000000u / 1000)};
    evtimer_add(x->drain_deadline, &tv);
    for (size_t i = 0; i < x->n; i++) {
        seal(&x->backends[i]);
    }
    check_drained(x);
}

void rt_exporter_free(rt_exporter *x)
{
    if (x == NULL) {
        return;
    }
    x->shutting_down = true;
    for (size_t i = 0; i < x->n; i++) {
        backend_free(&x->backends[i]);
    }
    free(x->backends);
    if (x->drain_deadline != NULL) {
        event_free(x->drain_deadline);
    }
    if (x->drain_notify != NULL) {
        event_free(x->drain_notify);
    }
    cfg_item_free(x->own_cfg);
    rt_metrics_registry_free(x->own_reg);
    free(x);
}
