/* router.h - ringtail-router as a daemon: its config (router.yaml) and the glue between the
 * process scaffolding (daemon.h), the OTLP listeners (intake.h), node health (node_health.h) and
 * the per-worker forwarders (forward.h).
 *
 *   main thread: admin, ring file watch, health checks, building views, draining on stop
 *   worker i:    OTLP listeners (SO_REUSEPORT), rt_fwd i with its clients to every node
 */
#ifndef RT_ROUTER_ROUTER_H
#define RT_ROUTER_ROUTER_H

#include "config.h"
#include "daemon.h"
#include "node_health.h"
#include "intake.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct rt_router rt_router;

typedef struct rt_router_samplers_cfg {
    int protocol; /* 0 = per the ring file, 1 = http, 2 = grpc */
    uint64_t timeout_ns;
    uint64_t retry_budget_ns;
    uint64_t request_deadline_ns;
    int64_t max_inflight;
    int64_t connections;
    bool gzip;
    bool mark_deadline;
    int64_t retry_after_s;
    rt_tls_client_cfg tls;
} rt_router_samplers_cfg;

typedef struct rt_router_cfg {
    rt_daemon_cfg daemon;
    rt_intake_cfg listeners;
    rt_router_samplers_cfg samplers;
    rt_health_cfg health;
    rt_router *rt; /* the running router between setup and teardown; not configuration */
} rt_router_cfg;

/* The whole router.yaml table (daemon keys, listeners, samplers, health). */
extern const rt_cfg_field rt_router_fields[];

/* rt_daemon_spec hooks (cfg is an rt_router_cfg). check: cross-field rules; setup: forwarders,
 * health, listeners; teardown: undo setup (tolerates a half-done setup). */
int rt_router_check(void *cfg, char *err, size_t errlen);
int rt_router_setup(rt_daemon *d, void *cfg);
void rt_router_teardown(rt_daemon *d, void *cfg);

#endif
