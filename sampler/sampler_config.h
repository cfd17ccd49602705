/* sampler_config.h - everything ringtail-sampler reads from sampler.yaml: the shared daemon
 * keys, the OTLP listeners, its node id, the OTel Collector `tail_sampling` block (accepted at
 * the top level or under `processors:`, so a Collector config pastes in unchanged), ringtail's
 * own bounds, and the exporters. One table drives parsing, defaults, --help-config and
 * --check-config.
 */
#ifndef RT_SAMPLER_CONFIG_H
#define RT_SAMPLER_CONFIG_H

#include "daemon.h"
#include "exporter.h"
#include "intake.h"
#include "peers.h"
#include "policy.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rt_ts_cfg {
    rt_policy_set *policies; /* owned */
    uint64_t decision_wait_ns;
    uint64_t decision_wait_after_root_ns;
    int64_t num_traces;
    int64_t expected_new_traces_per_sec; /* accepted; an allocation hint only */
    struct {
        int64_t sampled_cache_size;
        int64_t non_sampled_cache_size;
    } decision_cache;
    bool sample_on_first_match;
    bool block_on_overflow;
    uint64_t maximum_trace_size_bytes;
    bool drop_pending_traces_on_shutdown;
    /* ringtail's own keys */
    uint64_t max_buffer_bytes;
    uint64_t maximum_trace_age_ns;
    int64_t deduplication_span_ids;
    bool present; /* the block appeared in the file (at either place) */
} rt_ts_cfg;

typedef struct rt_sampler_cfg {
    rt_daemon_cfg daemon;
    char *node_id;
    rt_intake_cfg listeners;
    rt_ts_cfg tail_sampling;
    struct {
        rt_ts_cfg tail_sampling;
    } processors;
    rt_exporters_cfg exporters;
    char *default_export_file;
    uint64_t shutdown_timeout_ns;
    rt_peers_cfg peers;
} rt_sampler_cfg;

extern const rt_cfg_field rt_sampler_fields[];

/* The tail_sampling block in force: the one under processors: if given there, else the
 * top-level one (defaults when neither is given). */
const rt_ts_cfg *rt_sampler_ts(const rt_sampler_cfg *cfg);

/* Cross-field checks (spec->check): tail_sampling given twice, maximum_trace_age below
 * decision_wait, peers.tls cert without key. A node_id the ring file does not list is no error:
 * the sampler starts outside the ring and joins when the file lists it (peers.h). Returns 0 or -1
 * with a message. */
int rt_sampler_cfg_check(void *cfg, char *err, size_t errlen);

/* Documentation of the custom sections (tail_sampling, exporters) for --help-config. */
void rt_sampler_cfg_describe(rt_buf *out);

#endif
