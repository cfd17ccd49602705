/* exporter.h - where kept traces go: OTLP/HTTP and OTLP/gRPC backends (one or several) and a
 * file of OTLP/JSON lines, each with batching, a bounded queue and retries.
 *
 * Config (section `exporters:` of sampler.yaml, a list; every key documented by
 * --help-config):
 *   exporters:
 *     - name: backend              # unique; label of its metrics
 *       type: otlp_http            # otlp_http | otlp_grpc | file
 *       endpoint: 10.0.0.9:4318    # otlp_*: host:port
 *       path: /v1/traces           # otlp_http
 *       headers: {x-api-key: ...}  # otlp_*: extra request headers
 *       compression: gzip          # gzip | none
 *       timeout: 10s               # per attempt
 *       tls: {enabled, ca, cert, key, server_name, insecure_skip_verify}
 *       file: kept-traces.jsonl    # file: path, appended to, one ExportTraceServiceRequest
 *                                  # as OTLP/JSON per line
 *       batch: {max_spans: 8192, max_bytes: 4MiB, timeout: 200ms}
 *       queue: {max_bytes: 256MiB, # whole process; each worker gets an equal share
 *               backpressure: true} # slow the clients before the queue fills (below)
 *       retry: {initial_interval: 1s, max_interval: 30s, max_elapsed: 5m}
 * With no exporter configured the sampler writes kept traces to the file `default_file`
 * (see rt_exporters_cfg), so the tier runs out of the box.
 *
 * Threads: one rt_exporter per worker thread, on that worker's event_base, holding one client
 * (or file handle) and one batch per backend. Every backend gets every kept trace. Nothing
 * blocks the worker: when a backend's queue is full, or a batch fails for good (rejected, or
 * retries exhausted), its spans are counted as dropped with a reason and logged (rate-limited).
 * A queue filling up while its backend answers is reported (rt_exporter_pressure) so the sampler
 * slows its clients down before anything has to be dropped.
 *
 * Metrics (registered in `reg`, shared by every worker's exporter; prefix ringtail_sampler_):
 *   spans_exported_total{exporter}, spans_export_dropped_total{exporter,reason=queue_full|
 *   rejected|gave_up|shutdown}, export_queue_bytes{exporter} (gauge), export_queue_batches
 *   {exporter} (gauge), export_batches_total{exporter,outcome}, export_retries_total{exporter},
 *   export_latency_seconds{exporter} (histogram, batch handed over to done).
 */
#ifndef RT_EXPORTER_H
#define RT_EXPORTER_H

#include "config.h"
#include "metrics.h"

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h> /* offsetof in RT_EXPORTERS_FIELD */
#include <stdint.h>

/* Parsed `exporters:` list (a custom config field; see rt_exporters_field). */
typedef struct rt_exporter_cfg rt_exporter_cfg; /* one backend; defined in exporter.c */
typedef struct rt_exporters_cfg {
    rt_exporter_cfg **items;
    size_t n;
} rt_exporters_cfg;

/* Parse / free callbacks for an RT_CFG_CUSTOM field whose storage is rt_exporters_cfg. */
int rt_exporters_cfg_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field);
void rt_exporters_cfg_free(void *field);
/* Append the documentation of an exporter entry's keys (for --help-config). `prefix` is put
 * before each key; NULL = "exporters[]". */
void rt_exporters_cfg_describe(const char *prefix, rt_buf *out);

/* The rt_cfg_field entry for an rt_exporters_cfg member `member` of struct type `st`, under the
 * key `exporters` (no default: an absent or empty list means the default file). */
#define RT_EXPORTERS_FIELD(st, member)                                                             \
    {                                                                                              \
        .key = "exporters", .type = RT_CFG_CUSTOM, .offset = offsetof(st, member),                 \
        .parse = rt_exporters_cfg_parse, .free = rt_exporters_cfg_free,                            \
        .type_name = "list of exporters",                                                          \
        .help = "Where kept traces go; every exporter gets every kept trace. Keys of each entry: " \
                "exporters[].*. None = OTLP/JSON lines to the default file."                       \
    }

/* Read-only views of one parsed entry (for logs and tests): its name, and its type as spelled in
 * the config ("otlp_http", "otlp_grpc", "file"). */
const char *rt_exporter_cfg_name(const rt_exporter_cfg *c);
const char *rt_exporter_cfg_type(const rt_exporter_cfg *c);

typedef struct rt_exporter rt_exporter;

/* One worker's exporter for every backend in `cfg` (borrowed; must outlive it). With cfg->n ==
 * 0 a single file exporter writing to `default_file` is used (its metrics label is
 * exporter="default"). `n_workers` divides the queue bounds. Returns NULL with a message in `err`
 * (bad TLS files, file not writable). */
rt_exporter *rt_exporter_new(struct event_base *base, const rt_exporters_cfg *cfg,
                             const char *default_file, unsigned n_workers, rt_metrics_registry *reg,
                             char *err, size_t errlen);

/* Hand over a complete ExportTraceServiceRequest with `spans` spans (for every backend). The
 * bytes are copied into each backend's current batch (requests concatenate); a batch is sent
 * when it reaches max_spans or max_bytes, or batch.timeout after its first trace. Never blocks
 * and never fails: what cannot be queued is counted and logged. */
void rt_exporter_submit(rt_exporter *x, const uint8_t *req, size_t len, size_t spans);

/* Back-pressure (`queue.backpressure`, on by default): how full this worker's exporter is, judged
 * by the backends that have it on and are taking batches - no attempt failed since a batch last
 * succeeded (a backend that has not been tried yet counts as taking them). A failing backend is
 * left out, so its queue fills and drops (queue_full) as without back-pressure; a flip either
 * way is logged. THROTTLE from half of such a backend's bound held (open batch, queue and in
 * flight): the intake should refuse new spans with 429 / RESOURCE_EXHAUSTED + Retry-After. HOLD
 * from three quarters: due decisions should wait too (rt_tbuf_opts.hold), so what is already
 * buffered cannot overflow the bound. Cheap: a few loads per backend. */
typedef enum rt_export_pressure {
    RT_EXPORT_PRESSURE_NONE = 0,
    RT_EXPORT_PRESSURE_THROTTLE,
    RT_EXPORT_PRESSURE_HOLD,
} rt_export_pressure;
rt_export_pressure rt_exporter_pressure(rt_exporter *x);

/* Spans accepted but not yet exported or dropped, over all backends (for shutdown and tests). */
size_t rt_exporter_pending_spans(const rt_exporter *x);

/* Send every open batch now; `done(arg)` runs on the loop once nothing is queued or in flight
 * any more (exported or given up), or at `deadline_ns` (monotonic), whichever comes first; what
 * is still pending then is dropped with reason shutdown. */
void rt_exporter_drain(rt_exporter *x, uint64_t deadline_ns, void (*done)(void *arg), void *arg);

/* Free on the event_base's thread; what is still queued is counted as dropped (shutdown). A
 * drain callback not yet called is not called. May be called from the drain callback. */
void rt_exporter_free(rt_exporter *x);

#endif
