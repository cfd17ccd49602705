/* daemon.c - process scaffolding shared by both binaries (see daemon.h). */
#include "daemon.h"

#include "alloc.h"
#include "log.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#ifndef RT_VERSION
#define RT_VERSION "0.1.0"
#endif

const char *const rt_daemon_log_levels[] = {"debug", "info", "warn", "error", NULL};

const rt_cfg_field rt_daemon_admin_fields[] = {
    {.key = "listen",
     .type = RT_CFG_STRING,
     .offset = 0,
     .def = "127.0.0.1:8888",
     .help = "host:port of the admin HTTP listener (read-only: /metrics, /healthz, /readyz, "
             "/ring). Loopback unless set: routers checking samplers' /readyz from another "
             "host need it on an address they reach (0.0.0.0 in a container)."},
    {0},
};

const rt_cfg_field rt_daemon_ring_fields[] = {
    {.key = "file",
     .type = RT_CFG_STRING,
     .offset = 0,
     .def = "",
     .help = "Ring membership file (YAML: nodes with id, endpoint, weight); re-read on SIGHUP. "
             "Empty: no ring."},
    {0},
};

/* A file watched for changes: inotify on its directory (editors and config-map updates replace
 * files by rename, which a watch on the file itself would miss), a debounce timer, and a hash of
 * the content last acted on, so touching a file without changing it does nothing. */
typedef struct watched_file {
    rt_daemon *d; /* ref: owner */
    char *path;
    char *name; /* the path's last component */
    int wd;
    uint64_t content_hash;
    struct event *debounce;
    void (*changed)(rt_daemon *d);
} watched_file;

struct rt_daemon {
    const rt_daemon_spec *spec;
    const char *config_path; /* ref: argv or spec->default_config */
    rt_daemon_hooks hooks;
    int inotify_fd;
    struct event *inotify_ev;
    watched_file watch[2]; /* ring file, config file */
    rt_workers *workers;
    struct event_base *base;
    rt_metrics_registry *metrics;
    rt_admin *admin;
    rt_membership *membership;
    rt_counter *ring_reloads_ok;
    rt_counter *ring_reloads_failed;
    bool stopping;
    bool draining;
};

/* The path given with --config (or the default file found), for rt_daemon_config_path. Set by
 * parse_args before the daemon exists; one process parses one command line. */
static const char *g_config_path;

static void usage(const rt_daemon_spec *spec, FILE *out)
{
    fprintf(out,
            "usage: ringtail-%s [--config FILE] [--check-config] [--help-config] "
            "[--log-level LEVEL]\n"
            "  --config FILE     YAML config (default: %s if it exists, else built-in "
            "defaults)\n"
            "  --check-config    validate the config (and the ring file it names), then exit\n"
            "  --help-config     print every config key with its type, default and meaning\n"
            "  --log-level L     debug|info|warn|error, overrides log_level\n",
            spec->name, spec->default_config ? spec->default_config : "(none)");
}

rt_daemon_action rt_daemon_parse_args(const rt_daemon_spec *spec, int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 'k'},
        {"help-config", no_argument, NULL, 'H'},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'v'},
        {NULL, 0, NULL, 0},
    };
    const char *config = NULL, *level = NULL;
    bool check = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            config = optarg;
            break;
        case 'k':
            check = true;
            break;
        case 'H': {
            rt_buf out = RT_BUF_INIT;
            rt_cfg_describe(spec->fields, NULL, &out);
            if (spec->describe) {
                spec->describe(&out);
            }
            fwrite(out.data, 1, out.len, stdout);
            rt_buf_free(&out);
            return RT_DAEMON_EXIT_OK;
        }
        case 'l':
            level = optarg;
            break;
        case 'v':
            printf("ringtail-%s %s\n", spec->name, RT_VERSION);
            return RT_DAEMON_EXIT_OK;
        case 'h':
            usage(spec, stdout);
            return RT_DAEMON_EXIT_OK;
        default:
            usage(spec, stderr);
            return RT_DAEMON_EXIT_FAIL;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "ringtail-%s: unexpected argument \"%s\"\n", spec->name, argv[optind]);
        usage(spec, stderr);
        return RT_DAEMON_EXIT_FAIL;
    }
    if (config == NULL && spec->default_config && access(spec->default_config, R_OK) == 0) {
        config = spec->default_config;
    }
    g_config_path = config;
    char err[1024];
    if (config) {
        if (rt_cfg_load_file(config, spec->fields, spec->cfg, err, sizeof err) != 0) {
            fprintf(stderr, "ringtail-%s: %s\n", spec->name, err);
            return RT_DAEMON_EXIT_FAIL;
        }
    } else {
        rt_cfg_set_defaults(spec->fields, spec->cfg);
    }
    if (level) {
        rt_log_level lv;
        if (rt_log_parse_level(level, &lv) != 0) {
            fprintf(stderr,
                    "ringtail-%s: --log-level: \"%s\" is not one of debug, info, warn, "
                    "error\n",
                    spec->name, level);
            return RT_DAEMON_EXIT_FAIL;
        }
        spec->daemon_cfg->log_level = (int)lv;
    }
    if (spec->check && spec->check(spec->cfg, err, sizeof err) != 0) {
        fprintf(stderr, "ringtail-%s: %s%s%s\n", spec->name, config ? config : "",
                config ? ": " : "", err);
        return RT_DAEMON_EXIT_FAIL;
    }
    if (check) {
        const char *ring = spec->daemon_cfg->ring.file;
        if (ring && ring[0]) {
            rt_membership *m = rt_membership_load(ring, err, sizeof err);
            if (m == NULL) {
                fprintf(stderr, "ringtail-%s: %s\n", spec->name, err);
                return RT_DAEMON_EXIT_FAIL;
            }
            rt_membership_free(m);
        }
        printf("ringtail-%s: %s is valid\n", spec->name, config ? config : "built-in config");
        return RT_DAEMON_EXIT_OK;
    }
    return RT_DAEMON_RUN;
}

static bool ready(void *arg, char *reason, size_t cap)
{
    rt_daemon *d = arg;
    if (d->stopping) {
        snprintf(reason, cap, "shutting down");
        return false;
    }
    if (d->hooks.ready) {
        return d->hooks.ready(d->hooks.arg, reason, cap);
    }
    return true;
}

/* /ring: the nodes in force, their state and share of the keyspace. */
static int ring_page(void *arg, const char *query, rt_buf *body, const char **content_type)
{
    rt_daemon *d = arg;
    *content_type = "application/json";
    const rt_membership *m = d->membership;
    if (m == NULL) {
        rt_buf_append_str(body, "{\"nodes\":[]");
        if (d->hooks.ring_info) {
            d->hooks.ring_info(d->hooks.arg, body);
        }
        rt_buf_append_str(body, "}\n");
        return 200;
    }
    rt_buf_printf(body, "{\"content_hash\":\"%016llx\",\"nodes\":[",
                  (unsigned long long)rt_ring_content_hash(m->ring));
    for (size_t i = 0; i < rt_ring_size(m->ring); i++) {
        const rt_member *nd = rt_membership_node(m, i);
        /* ids and endpoints come from our own validated file; escape quotes anyway. */
        char id[256], ep[256];
        rt_log_quote(nd->id, id, sizeof id);
        rt_log_quote(nd->endpoint, ep, sizeof ep);
        rt_buf_printf(body,
                      "%s{\"id\":\"%s\",\"endpoint\":\"%s\",\"weight\":%u,\"protocol\":\"%s\","
                      "\"up\":%s,\"share\":%.6f}",
                      i ? "," : "", id, ep, nd->weight,
                      nd->protocol == RT_MEMBER_GRPC ? "grpc" : "http",
                      rt_ring_is_up(m->ring, i) ? "true" : "false", rt_ring_node_share(m->ring, i));
    }
    rt_buf_append_str(body, "]");
    if (d->hooks.ring_info) {
        d->hooks.ring_info(d->hooks.arg, body);
    }
    rt_buf_append_str(body, "}\n");
    return 200;
}

static double ring_nodes(void *arg)
{
    rt_daemon *d = arg;
    return d->membership ? (double)rt_ring_size(d->membership->ring) : 0.0;
}

/* The low 52 bits of the content hash, so the value survives a double exactly; equal values
 * on two processes mean they run the same ring. */
static double ring_hash(void *arg)
{
    rt_daemon *d = arg;
    if (d->membership == NULL) {
        return 0.0;
    }
    return (double)(rt_ring_content_hash(d->membership->ring) & ((1ull << 52) - 1));
}

static int load_ring(rt_daemon *d)
{
    const char *file = d->spec->daemon_cfg->ring.file;
    if (file == NULL || file[0] == '\0') {
        return 0;
    }
    char err[1024];
    rt_membership *m = rt_membership_load(file, err, sizeof err);
    if (m == NULL) {
        char q[1024];
        rt_log(RT_LOG_ERROR, "ring file rejected, previous ring stays in force", "error=\"%s\"",
               rt_log_quote(err, q, sizeof q));
        rt_counter_inc(d->ring_reloads_failed);
        return -1;
    }
    rt_membership *old = d->membership;
    d->membership = m;
    rt_counter_inc(d->ring_reloads_ok);
    rt_log(RT_LOG_INFO, "ring loaded", "file=%s nodes=%zu content_hash=%016llx", file,
           rt_ring_size(m->ring), (unsigned long long)rt_ring_content_hash(m->ring));
    if (d->hooks.ring_changed) {
        d->hooks.ring_changed(d->hooks.arg, m);
    }
    rt_membership_free(old);
    return 0;
}

/* ---- file watching ------------------------------------------------------------------------ */

/* FNV-1a over the file's bytes; 0 when it cannot be read. */
static uint64_t file_hash(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    uint64_t h = 1469598103934665603ull;
    uint8_t chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            h = (h ^ chunk[i]) * 1099511628211ull;
        }
    }
    close(fd);
    return h;
}

static void ring_file_changed(rt_daemon *d)
{
    rt_log(RT_LOG_INFO, "ring file changed on disk, reloading", "file=%s",
           d->spec->daemon_cfg->ring.file);
    load_ring(d);
}

static void config_file_changed(rt_daemon *d)
{
    rt_log(RT_LOG_INFO, "config file changed on disk, reloading", "file=%s", d->config_path);
    if (d->hooks.reload) {
        d->hooks.reload(d->hooks.arg);
    }
}

static void on_debounce(evutil_socket_t fd, short what, void *arg)
{
    watched_file *w = arg;
    uint64_t h = file_hash(w->path);
    if (h == 0 || h == w->content_hash) {
        return; /* gone for a moment (rename in progress) or unchanged */
    }
    w->content_hash = h;
    w->changed(w->d);
}

static void on_inotify(evutil_socket_t fd, short what, void *arg)
{
    rt_daemon *d = arg;
    char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    for (;;) {
        ssize_t n = read(fd, events, sizeof events);
        if (n <= 0) {
            break;
        }
        for (char *p = events; p < events + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            for (size_t i = 0; i < 2; i++) {
                watched_file *w = &d->watch[i];
                /* Our file's own name (written in place, or renamed over by an editor), or a
                 * name starting with ".." (a Kubernetes ConfigMap swaps its "..data" symlink;
                 * the file's name is a link through it). Other files of the directory - logs,
                 * say - are not ours: counting them would hold the reload back for as long as
                 * they keep being written. The content hash decides. Act 200 ms after the
                 * last event. */
                if (w->path == NULL || w->wd != ev->wd) {
                    continue;
                }
                if (ev->len == 0 || strcmp(ev->name, w->name) == 0 ||
                    strncmp(ev->name, "..", 2) == 0) {
                    struct timeval tv = {0, 200000};
                    event_add(w->debounce, &tv);
                }
            }
            p += sizeof *ev + ev->len;
        }
    }
}

static void watch_file(rt_daemon *d, size_t slot, const char *path, void (*changed)(rt_daemon *))
{
    watched_file *w = &d->watch[slot];
    if (path == NULL || path[0] == '\0' || d->inotify_fd < 0) {
        return;
    }
    char *copy = rt_strdup(path);
    const char *dir = dirname(copy);
    int wd = inotify_add_watch(d->inotify_fd, dir,
                               IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_MODIFY);
    if (wd < 0) {
        rt_log(RT_LOG_WARN, "cannot watch file; SIGHUP still reloads it", "file=%s error=\"%s\"",
               path, strerror(errno));
        free(copy);
        return;
    }
    free(copy);
    w->d = d;
    w->path = rt_strdup(path);
    const char *slash = strrchr(path, '/');
    w->name = rt_strdup(slash ? slash + 1 : path);
    w->wd = wd;
    w->content_hash = file_hash(path);
    w->changed = changed;
    w->debounce = evtimer_new(d->base, on_debounce, w);
}

rt_daemon *rt_daemon_start(const rt_daemon_spec *spec)
{
    rt_log_set_level((rt_log_level)spec->daemon_cfg->log_level);
    rt_process_init();
    rt_daemon *d = rt_calloc(1, sizeof *d);
    d->spec = spec;
    d->base = event_base_new();
    d->metrics = rt_metrics_registry_new();
    char *prefix = rt_sprintf("ringtail_%s", spec->name);
    char *name = rt_sprintf("%s_build_info", prefix);
    rt_gauge_set(rt_metrics_gauge(d->metrics, name, "Version of this binary; always 1.", "version",
                                  RT_VERSION, NULL),
                 1.0);
    free(name);
    name = rt_sprintf("%s_ring_nodes", prefix);
    rt_metrics_gauge_fn(d->metrics, name, "Nodes in the ring in force.", ring_nodes, d, NULL);
    free(name);
    name = rt_sprintf("%s_ring_content_hash", prefix);
    rt_metrics_gauge_fn(d->metrics, name,
                        "Low 52 bits of the hash of the ring in force (equal on every process "
                        "that runs the same ring).",
                        ring_hash, d, NULL);
    free(name);
    name = rt_sprintf("%s_ring_reloads_total", prefix);
    d->ring_reloads_ok =
        rt_metrics_counter(d->metrics, name, "Ring file loads by result.", "result", "ok", NULL);
    d->ring_reloads_failed = rt_metrics_counter(d->metrics, name, "Ring file loads by result.",
                                                "result", "rejected", NULL);
    free(name);
    free(prefix);

    if (load_ring(d) != 0) {
        goto fail;
    }
    char err[512];
    d->admin = rt_admin_new(d->base, spec->daemon_cfg->admin.listen, d->metrics, err, sizeof err);
    if (d->admin == NULL) {
        rt_log(RT_LOG_ERROR, "cannot start admin listener", "error=\"%s\"", err);
        goto fail;
    }
    rt_admin_set_ready_fn(d->admin, ready, d);
    rt_admin_add_handler(d->admin, "/ring", ring_page, d);
    d->config_path = g_config_path;
    d->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (d->inotify_fd >= 0) {
        d->inotify_ev = event_new(d->base, d->inotify_fd, EV_READ | EV_PERSIST, on_inotify, d);
        event_add(d->inotify_ev, NULL);
    }
    watch_file(d, 0, spec->daemon_cfg->ring.file, ring_file_changed);
    watch_file(d, 1, d->config_path, config_file_changed);
    d->workers = rt_workers_new((int)spec->daemon_cfg->workers);
    rt_log(RT_LOG_INFO, "started", "binary=ringtail-%s version=%s workers=%d admin_port=%u",
           spec->name, RT_VERSION, rt_workers_count(d->workers), rt_admin_port(d->admin));
    return d;
fail:
    rt_admin_free(d->admin);
    rt_membership_free(d->membership);
    rt_metrics_registry_free(d->metrics);
    event_base_free(d->base);
    free(d);
    return NULL;
}

rt_metrics_registry *rt_daemon_metrics(rt_daemon *d)
{
    return d->metrics;
}

rt_workers *rt_daemon_workers(rt_daemon *d)
{
    return d->workers;
}

struct event_base *rt_daemon_main_base(rt_daemon *d)
{
    return d->base;
}

const rt_membership *rt_daemon_membership(rt_daemon *d)
{
    return d->membership;
}

void rt_daemon_set_hooks(rt_daemon *d, const rt_daemon_hooks *hooks)
{
    d->hooks = *hooks;
    if (d->hooks.ring_changed && d->membership) {
        d->hooks.ring_changed(d->hooks.arg, d->membership);
    }
}

void rt_daemon_stop_done(rt_daemon *d)
{
    event_base_loopbreak(d->base);
}

rt_admin *rt_daemon_admin(rt_daemon *d)
{
    return d->admin;
}

const char *rt_daemon_config_path(const rt_daemon *d)
{
    return d->config_path;
}

static bool on_signal(rt_signal_action action, void *arg)
{
    rt_daemon *d = arg;
    if (action == RT_SIGNAL_RELOAD) {
        rt_log(RT_LOG_INFO, "SIGHUP: reloading", "binary=ringtail-%s", d->spec->name);
        load_ring(d);
        for (size_t i = 0; i < 2; i++) {
            if (d->watch[i].path) {
                d->watch[i].content_hash = file_hash(d->watch[i].path);
            }
        }
        if (d->hooks.reload) {
            d->hooks.reload(d->hooks.arg);
        }
        return false;
    }
    d->stopping = true;
    if (d->hooks.stop && !d->draining) {
        d->draining = true;
        rt_log(RT_LOG_INFO, "stop requested: draining (a second signal stops at once)",
               "binary=ringtail-%s", d->spec->name);
        d->hooks.stop(d->hooks.arg, d);
        return false;
    }
    return true;
}

/* Teardown, then free everything. */
static void finish(rt_daemon *d)
{
    const char *name = d->spec->name;
    rt_log(RT_LOG_INFO, "stopping", "binary=ringtail-%s", name);
    if (d->spec->teardown) {
        d->spec->teardown(d, d->spec->cfg);
    }
    for (size_t i = 0; i < 2; i++) {
        if (d->watch[i].debounce) {
            event_free(d->watch[i].debounce);
        }
        free(d->watch[i].path);
        free(d->watch[i].name);
    }
    if (d->inotify_ev) {
        event_free(d->inotify_ev);
    }
    if (d->inotify_fd >= 0) {
        close(d->inotify_fd);
    }
    rt_workers_free(d->workers);
    rt_admin_free(d->admin);
    rt_membership_free(d->membership);
    rt_metrics_registry_free(d->metrics);
    event_base_free(d->base);
    free(d);
    rt_log(RT_LOG_INFO, "stopped", "binary=ringtail-%s", name);
}

int rt_daemon_run(rt_daemon *d)
{
    rt_process_wait_signals(d->base, on_signal, d);
    finish(d);
    return 0;
}

int rt_daemon_main(const rt_daemon_spec *spec, int argc, char **argv)
{
    int rc = EXIT_FAILURE;
    switch (rt_daemon_parse_args(spec, argc, argv)) {
    case RT_DAEMON_EXIT_OK:
        rc = EXIT_SUCCESS;
        break;
    case RT_DAEMON_EXIT_FAIL:
        break;
    case RT_DAEMON_RUN: {
        rt_daemon *d = rt_daemon_start(spec);
        if (d != NULL) {
            if (spec->setup && spec->setup(d, spec->cfg) != 0) {
                d->stopping = true;
                finish(d);
                break;
            }
            rc = rt_daemon_run(d);
        }
        break;
    }
    }
    rt_cfg_free_struct(spec->fields, spec->cfg);
    return rc;
}
