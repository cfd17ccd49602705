/* daemon.h - what ringtail-router and ringtail-sampler share as processes: the command line,
 * the config sections both have (log level, workers, admin listener, ring file), the worker
 * pool, the admin listener with /metrics /healthz /readyz /ring, SIGHUP reload of the ring
 * file and graceful shutdown on SIGTERM/SIGINT.
 *
 * A binary embeds rt_daemon_cfg in its own config struct and lists RT_DAEMON_FIELDS() in its
 * own table, so one file holds both and unknown keys are still errors.
 */
#ifndef RT_DAEMON_H
#define RT_DAEMON_H

#include "admin.h"
#include "config.h"
#include "membership.h"
#include "metrics.h"
#include "worker.h"

#include <stdbool.h>

typedef struct rt_daemon_cfg {
    int log_level;
    int64_t workers;
    struct {
        char *listen;
    } admin;
    struct {
        char *file;
    } ring;
} rt_daemon_cfg;

extern const char *const rt_daemon_log_levels[];
extern const rt_cfg_field rt_daemon_admin_fields[];
extern const rt_cfg_field rt_daemon_ring_fields[];

/* The shared keys, as entries of a binary's top-level table whose struct has an
 * rt_daemon_cfg member called `member`. */
#define RT_DAEMON_FIELDS(st, member)                                                               \
    {.key = "log_level",                                                                           \
     .type = RT_CFG_ENUM,                                                                          \
     .offset = offsetof(st, member.log_level),                                                     \
     .def = "info",                                                                                \
     .choices = rt_daemon_log_levels,                                                              \
     .help = "Lowest level of log line written to stderr (logfmt)."},                              \
        {.key = "workers",                                                                         \
         .type = RT_CFG_INT64,                                                                     \
         .offset = offsetof(st, member.workers),                                                   \
         .def = "0",                                                                               \
         .min = "0",                                                                               \
         .max = "256",                                                                             \
         .help = "Worker threads, each with its own event loop; 0 = one per core."},               \
        {.key = "admin",                                                                           \
         .type = RT_CFG_SECTION,                                                                   \
         .offset = offsetof(st, member.admin),                                                     \
         .sub = rt_daemon_admin_fields,                                                            \
         .help = "The admin listener: /metrics, /healthz, /readyz, /ring."},                       \
    {                                                                                              \
        .key = "ring", .type = RT_CFG_SECTION, .offset = offsetof(st, member.ring),                \
        .sub = rt_daemon_ring_fields, .help = "The ring membership file."                          \
    }

/* What main() should do after rt_daemon_parse_args(). */
typedef enum rt_daemon_action {
    RT_DAEMON_RUN,
    RT_DAEMON_EXIT_OK,   /* --help, --help-config, --check-config on a good file */
    RT_DAEMON_EXIT_FAIL, /* bad arguments or (with --check-config) a bad file */
} rt_daemon_action;

typedef struct rt_daemon rt_daemon;

typedef struct rt_daemon_spec {
    const char *name;           /* "router", "sampler": binary is ringtail-<name> */
    const rt_cfg_field *fields; /* the binary's whole config table */
    void *cfg;                  /* the binary's config struct */
    rt_daemon_cfg *daemon_cfg;  /* inside cfg */
    const char *default_config; /* used when --config is not given and the file exists */
} rt_daemon_spec;

/* Parse the command line (--config FILE, --check-config, --help-config, --log-level L,
 * --help), load the config into spec->cfg (defaults first), print errors to stderr naming
 * file and line. */
rt_daemon_action rt_daemon_parse_args(const rt_daemon_spec *spec, int argc, char **argv);

/* Start the process parts: logging level, worker pool, main loop, metrics, admin listener,
 * the ring file (if configured). Returns NULL with a message on stderr if something cannot
 * start (address in use, bad ring file). */
rt_daemon *rt_daemon_start(const rt_daemon_spec *spec);
rt_metrics_registry *rt_daemon_metrics(rt_daemon *d);
rt_workers *rt_daemon_workers(rt_daemon *d);
struct event_base *rt_daemon_main_base(rt_daemon *d);
/* The ring membership in force (NULL without a ring file). Main thread only. */
const rt_membership *rt_daemon_membership(rt_daemon *d);
/* Run until SIGTERM/SIGINT; SIGHUP re-reads the ring file (a bad file is logged and the
 * previous ring stays). Then stops the workers and frees everything. Returns the exit code. */
int rt_daemon_run(rt_daemon *d);

/* The whole life of a binary: parse arguments, start, run until stopped, free the config.
 * Returns the process exit code. */
int rt_daemon_main(const rt_daemon_spec *spec, int argc, char **argv);

#endif
