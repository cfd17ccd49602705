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
    /* Optional: documentation of keys the table cannot describe (custom fields), appended to
     * --help-config. */
    void (*describe)(rt_buf *out);
    /* Optional extra validation for --check-config and start (cross-field rules the table
     * cannot express). Returns 0, or -1 with a message in err. */
    int (*check)(void *cfg, char *err, size_t errlen);
    /* Called by rt_daemon_main after rt_daemon_start, on the main thread: open listeners, make
     * per-worker state, set hooks. Returns 0, or -1 (logged by the callee) to exit with 1. */
    int (*setup)(rt_daemon *d, void *cfg);
    /* Called by rt_daemon_run after the main loop ended and before the workers stop: free
     * per-worker state on the workers' threads (rt_workers_run_on_each). */
    void (*teardown)(rt_daemon *d, void *cfg);
} rt_daemon_spec;

/* What a binary wants to hear about; every member is optional. All run on the main thread. */
typedef struct rt_daemon_hooks {
    /* The ring in force changed: after the first load at start (before setup returns, if the
     * hooks are set in setup: then it runs from rt_daemon_set_hooks) and after each accepted
     * reload (SIGHUP or a change of the file on disk). `m` is the daemon's and stays valid until
     * the next call or the end of teardown; the binary may mark nodes up/down in m->ring (the
     * /ring page shows that state). */
    void (*ring_changed)(void *arg, rt_membership *m);
    /* SIGHUP, or the config file changed on disk: re-read what can be reloaded. */
    void (*reload)(void *arg);
    /* SIGTERM/SIGINT: stop taking work and drain; call rt_daemon_stop_done(d) when finished
     * (now or later from the main loop). Without this hook the daemon stops at once. A second
     * signal during the drain stops at once. */
    void (*stop)(void *arg, rt_daemon *d);
    /* Extra readiness condition for /readyz (see rt_admin_ready_fn). */
    bool (*ready)(void *arg, char *reason, size_t cap);
    /* Extra members of the /ring JSON object: append text starting with a comma. */
    void (*ring_info)(void *arg, rt_buf *json);
    void *arg;
} rt_daemon_hooks;

void rt_daemon_set_hooks(rt_daemon *d, const rt_daemon_hooks *hooks);
/* End a drain started by the stop hook: the main loop ends, then teardown runs. */
void rt_daemon_stop_done(rt_daemon *d);
/* The admin listener, to add pages. */
rt_admin *rt_daemon_admin(rt_daemon *d);
/* The config file in use (NULL when running on built-in defaults). */
const char *rt_daemon_config_path(const rt_daemon *d);

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
 * previous ring stays) and calls the reload hook. The ring file and the config file are also
 * watched (inotify on their directories, so editors that write a new file and rename it are
 * seen); a change is acted on 200 ms after the last write. Then runs teardown, stops the
 * workers and frees everything. Returns the exit code. */
int rt_daemon_run(rt_daemon *d);

/* The whole life of a binary: parse arguments, start, run until stopped, free the config.
 * Returns the process exit code. */
int rt_daemon_main(const rt_daemon_spec *spec, int argc, char **argv);

#endif
