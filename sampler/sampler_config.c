/* sampler_config.c - the config table of ringtail-sampler (see sampler_config.h). */
#include "sampler_config.h"

#include "alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* policies: a custom field holding an rt_policy_set *. */
static int policies_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    rt_policy_set **set = field;
    if (node->kind != RT_CFG_NODE_SEQUENCE) {
        rt_cfg_error(ctx, node->line, path, "must be a list of policies, not a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    rt_policy_set *s = rt_policy_set_parse(ctx, node, path);
    if (s == NULL) {
        return -1;
    }
    rt_policy_set_free(*set);
    *set = s;
    return 0;
}

static void policies_free(void *field)
{
    rt_policy_set **set = field;
    rt_policy_set_free(*set);
    *set = NULL;
}

static const rt_cfg_field decision_cache_fields[] = {
    {.key = "sampled_cache_size",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_ts_cfg, decision_cache.sampled_cache_size) -
               offsetof(rt_ts_cfg, decision_cache),
     .def = "200000",
     .min = "0",
     .max = "100000000",
     .help = "Trace ids remembered as kept, so late spans are kept too (OTel default 0; ours is "
             "not, because agent spans often arrive late)."},
    {.key = "non_sampled_cache_size",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_ts_cfg, decision_cache.non_sampled_cache_size) -
               offsetof(rt_ts_cfg, decision_cache),
     .def = "1000000",
     .min = "0",
     .max = "1000000000",
     .help = "Trace ids remembered as not kept, so late spans do not start a second trace."},
    {0},
};

static const rt_cfg_field ts_fields[] = {
    {.key = "policies",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(rt_ts_cfg, policies),
     .def = "[{name: keep-all, type: always_sample}]",
     .parse = policies_parse,
     .free = policies_free,
     .type_name = "list of policies",
     .help = "The OTel Collector tail_sampling policy list (every policy type of that processor "
             "except ottl_condition). Without it every trace is kept."},
    {.key = "decision_wait",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_ts_cfg, decision_wait_ns),
     .def = "30s",
     .min = "10ms",
     .max = "1h",
     .help = "Wait this long after a trace's first span before deciding (OTel semantics)."},
    {.key = "decision_wait_after_root_received",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_ts_cfg, decision_wait_after_root_ns),
     .def = "0s",
     .max = "1h",
     .help = "Once the root span (no parent) arrives, decide this long after it if that is "
             "sooner than decision_wait; 0 = off."},
    {.key = "num_traces",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_ts_cfg, num_traces),
     .def = "50000",
     .min = "1",
     .max = "100000000",
     .help = "Pending traces held; beyond it the oldest are decided early on what they have "
             "(never thrown away undecided)."},
    {.key = "expected_new_traces_per_sec",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_ts_cfg, expected_new_traces_per_sec),
     .def = "0",
     .min = "0",
     .help = "Accepted for OTel compatibility; an allocation hint there, unused here."},
    {.key = "decision_cache",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_ts_cfg, decision_cache),
     .sub = decision_cache_fields,
     .help = "Remembered decisions for late spans."},
    {.key = "sample_on_first_match",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_ts_cfg, sample_on_first_match),
     .def = "false",
     .help = "Stop evaluating at the first policy that samples (drop policies still run first)."},
    {.key = "block_on_overflow",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_ts_cfg, block_on_overflow),
     .def = "false",
     .help = "When the buffer is full, answer clients 429 / RESOURCE_EXHAUSTED with "
             "Retry-After instead of deciding the oldest traces early."},
    {.key = "maximum_trace_size_bytes",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_ts_cfg, maximum_trace_size_bytes),
     .def = "0",
     .help = "A pending trace larger than this is dropped (counted); 0 = no limit."},
    {.key = "drop_pending_traces_on_shutdown",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_ts_cfg, drop_pending_traces_on_shutdown),
     .def = "false",
     .help = "On shutdown drop pending traces (counted) instead of deciding them."},
    {.key = "max_buffer_bytes",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_ts_cfg, max_buffer_bytes),
     .def = "512MiB",
     .min = "1MiB",
     .help = "ringtail: memory budget of buffered traces (span bytes and their overhead); "
             "beyond it the oldest are decided early."},
    {.key = "maximum_trace_age",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_ts_cfg, maximum_trace_age_ns),
     .def = "5m",
     .min = "10ms",
     .max = "24h",
     .help = "ringtail: hard bound on how long a trace stays pending, whatever else applies."},
    {.key = "deduplication_span_ids",
     .type = RT_CFG_INT64,
     .offset = offsetof(rt_ts_cfg, deduplication_span_ids),
     .def = "1000000",
     .min = "0",
     .max = "1000000000",
     .help = "ringtail: span ids of kept traces remembered after the decision, so a retried "
             "span is not exported twice."},
    {0},
};

/* tail_sampling: a custom field so we know whether the block was given. */
static int ts_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    rt_ts_cfg *ts = field;
    rt_cfg_free_struct(ts_fields, ts);
    memset(ts, 0, sizeof *ts);
    rt_cfg_set_defaults(ts_fields, ts);
    if (node->kind != RT_CFG_NODE_MAPPING && !node->is_null) {
        rt_cfg_error(ctx, node->line, path, "must be a mapping, not a %s",
                     rt_cfg_node_kind_name(node));
        return -1;
    }
    ts->present = node->kind == RT_CFG_NODE_MAPPING && node->n > 0;
    return rt_cfg_apply(ctx, ts_fields, node, path, ts);
}

static void ts_free(void *field)
{
    rt_ts_cfg *ts = field;
    rt_cfg_free_struct(ts_fields, ts);
    memset(ts, 0, sizeof *ts);
}

static const rt_cfg_field processors_fields[] = {
    {.key = "tail_sampling",
     .type = RT_CFG_CUSTOM,
     .offset = 0,
     .def = "{}",
     .parse = ts_parse,
     .free = ts_free,
     .type_name = "tail_sampling block",
     .help = "The same block as the top-level tail_sampling (OTel Collector layout)."},
    {0},
};

static int exporters_parse(rt_cfg_ctx *ctx, const rt_cfg_node *node, const char *path, void *field)
{
    return rt_exporters_cfg_parse(ctx, node, path, field);
}

const rt_cfg_field rt_sampler_fields[] = {
    RT_DAEMON_FIELDS(rt_sampler_cfg, daemon),
    {.key = "node_id",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_sampler_cfg, node_id),
     .def = "",
     .help = "This sampler's id in the ring file; empty = the host name. A sampler the file "
             "does not list yet starts anyway, forwards what it is sent, and joins when it is "
             "listed."},
    {.key = "listeners",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_sampler_cfg, listeners),
     .sub = rt_intake_fields,
     .help = "OTLP listeners (spans from routers, collectors or SDKs)."},
    {.key = "tail_sampling",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(rt_sampler_cfg, tail_sampling),
     .def = "{}",
     .parse = ts_parse,
     .free = ts_free,
     .type_name = "tail_sampling block",
     .help = "The OTel Collector tail_sampling block, unchanged (policies, decision_wait, "
             "num_traces, decision_cache, ...), plus ringtail's keys max_buffer_bytes, "
             "maximum_trace_age, deduplication_span_ids. Keys: see below."},
    {.key = "processors",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_sampler_cfg, processors),
     .sub = processors_fields,
     .help = "OTel Collector layout: processors.tail_sampling is accepted in place of the "
             "top-level tail_sampling (not both)."},
    {.key = "exporters",
     .type = RT_CFG_CUSTOM,
     .offset = offsetof(rt_sampler_cfg, exporters),
     .def = "[]",
     .parse = exporters_parse,
     .free = rt_exporters_cfg_free,
     .type_name = "list of exporters",
     .help = "Where kept traces go (otlp_http, otlp_grpc, file); every backend gets every kept "
             "trace. Empty: default_export_file."},
    {.key = "default_export_file",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_sampler_cfg, default_export_file),
     .def = "ringtail-kept-traces.jsonl",
     .help = "With no exporter configured, kept traces are appended here as OTLP/JSON lines."},
    {.key = "shutdown_timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_sampler_cfg, shutdown_timeout_ns),
     .def = "30s",
     .min = "1s",
     .max = "1h",
     .help = "On SIGTERM: time allowed to hand pending traces over (or decide them, without "
             "peers) and flush the exporters."},
    {.key = "peers",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_sampler_cfg, peers),
     .sub = rt_peers_fields,
     .help = "The other samplers of the ring: forwarding spans to their owner, handing traces "
             "over when ownership changes, peer health."},
    {0},
};

const rt_ts_cfg *rt_sampler_ts(const rt_sampler_cfg *cfg)
{
    return cfg->processors.tail_sampling.present ? &cfg->processors.tail_sampling
                                                 : &cfg->tail_sampling;
}

int rt_sampler_cfg_check(void *arg, char *err, size_t errlen)
{
    const rt_sampler_cfg *cfg = arg;
    if (cfg->tail_sampling.present && cfg->processors.tail_sampling.present) {
        snprintf(err, errlen,
                 "tail_sampling is given both at the top level and under processors:; keep one");
        return -1;
    }
    const rt_ts_cfg *ts = rt_sampler_ts(cfg);
    if (ts->maximum_trace_age_ns < ts->decision_wait_ns) {
        snprintf(err, errlen, "tail_sampling.maximum_trace_age must not be below decision_wait");
        return -1;
    }
    bool cert = cfg->peers.tls.cert && cfg->peers.tls.cert[0];
    bool key = cfg->peers.tls.key && cfg->peers.tls.key[0];
    if (cert != key) {
        snprintf(err, errlen, "peers.tls: cert and key must be given together");
        return -1;
    }
    if (cfg->peers.health.timeout_ns > cfg->peers.health.interval_ns) {
        snprintf(err, errlen, "peers.health.timeout must not be longer than peers.health.interval");
        return -1;
    }
    return 0;
}

void rt_sampler_cfg_describe(rt_buf *out)
{
    rt_cfg_describe(ts_fields, "tail_sampling", out);
    rt_exporters_cfg_describe("exporters[]", out);
}
