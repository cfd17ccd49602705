/* intake.c - OTLP listeners on every worker (see intake.h), and the TLS config sections both
 * binaries use. */
#include "intake.h"

#include "alloc.h"
#include "grpc_server.h"
#include "http_server.h"
#include "log.h"
#include "tls.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const rt_cfg_field rt_tls_server_fields[] = {
    {.key = "cert",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_cfg, cert),
     .def = "",
     .help = "PEM certificate chain of the listener; empty = plaintext (h2c for gRPC)."},
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_cfg, key),
     .def = "",
     .help = "PEM private key for `cert`."},
    {.key = "client_ca",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_cfg, client_ca),
     .def = "",
     .help = "PEM CA bundle; when set, clients must present a certificate signed by it (mTLS)."},
    {0},
};

const rt_cfg_field rt_tls_client_fields[] = {
    {.key = "enabled",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_tls_client_cfg, enabled),
     .def = "false",
     .help = "Connect with TLS."},
    {.key = "ca",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_client_cfg, ca),
     .def = "",
     .help = "PEM CA bundle to verify the server; empty = the system's trust store."},
    {.key = "cert",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_client_cfg, cert),
     .def = "",
     .help = "PEM client certificate (mTLS); empty = none."},
    {.key = "key",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_client_cfg, key),
     .def = "",
     .help = "PEM private key for `cert`."},
    {.key = "server_name",
     .type = RT_CFG_STRING,
     .offset = offsetof(rt_tls_client_cfg, server_name),
     .def = "",
     .help = "Name sent as SNI and checked in the server certificate; empty = the endpoint's "
             "host."},
    {.key = "insecure_skip_verify",
     .type = RT_CFG_BOOL,
     .offset = offsetof(rt_tls_client_cfg, insecure_skip_verify),
     .def = "false",
     .help = "Do not verify the server certificate (tests only)."},
    {0},
};

static const rt_cfg_field http_fields[] = {
    {.key = "listen",
     .type = RT_CFG_STRING,
     .offset = 0,
     .def = "127.0.0.1:4318",
     .help = "host:port of the OTLP/HTTP listener (POST /v1/traces); empty = none. Loopback "
             "unless set, as the OTel Collector's default: say 0.0.0.0 to take traffic from "
             "other hosts."},
    {0},
};

static const rt_cfg_field grpc_fields[] = {
    {.key = "listen",
     .type = RT_CFG_STRING,
     .offset = 0,
     .def = "127.0.0.1:4317",
     .help = "host:port of the OTLP/gRPC listener; empty = none. Loopback unless set."},
    {0},
};

const rt_cfg_field rt_intake_fields[] = {
    {.key = "http",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_intake_cfg, http),
     .sub = http_fields,
     .help = "OTLP/HTTP listener (protobuf and JSON, gzip)."},
    {.key = "grpc",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_intake_cfg, grpc),
     .sub = grpc_fields,
     .help = "OTLP/gRPC listener."},
    {.key = "tls",
     .type = RT_CFG_SECTION,
     .offset = offsetof(rt_intake_cfg, tls),
     .sub = rt_tls_server_fields,
     .help = "TLS for both OTLP listeners."},
    {.key = "max_body",
     .type = RT_CFG_SIZE,
     .offset = offsetof(rt_intake_cfg, max_body_bytes),
     .def = "64MiB",
     .min = "1KiB",
     .max = "1GiB",
     .help = "Largest request body, as received and after gunzip; bigger is refused with "
             "413 / RESOURCE_EXHAUSTED."},
    {.key = "idle_timeout",
     .type = RT_CFG_DURATION,
     .offset = offsetof(rt_intake_cfg, idle_timeout_ns),
     .def = "2m",
     .min = "1s",
     .max = "24h",
     .help = "Close client connections idle for this long."},
    {0},
};

static bool set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

int rt_tls_client_from_cfg(const rt_tls_client_cfg *cfg, bool alpn_h2, SSL_CTX **out, char *err,
                           size_t errlen)
{
    *out = NULL;
    if (!cfg->enabled) {
        return 0;
    }
    if (set(cfg->cert) != set(cfg->key)) {
        snprintf(err, errlen, "tls: cert and key must be given together");
        return -1;
    }
    *out = rt_tls_client_ctx(set(cfg->ca) ? cfg->ca : NULL, set(cfg->cert) ? cfg->cert : NULL,
                             set(cfg->key) ? cfg->key : NULL, alpn_h2 ? "h2" : NULL,
                             cfg->insecure_skip_verify, err, errlen);
    return *out ? 0 : -1;
}

typedef struct worker_servers {
    rt_http_server *http;
    rt_grpc_server *grpc;
} worker_servers;

struct rt_intake {
    const rt_intake_cfg *cfg;
    rt_workers *pool;
    rt_otlp_handler_fn handler;
    rt_intake_worker_arg_fn worker_arg;
    void *arg;
    SSL_CTX *tls_http, *tls_grpc;
    worker_servers *ws; /* one per worker */
    char http_listen[300], grpc_listen[300];
    uint16_t http_port, grpc_port;
    bool open;
    /* set-up result, written on worker threads one at a time (run_on_each waits) */
    int failed;
    char err[512];
};

/* "host:port" with the port replaced, so workers after the first bind the port the first one
 * got for port 0. */
static void with_port(const char *listen, uint16_t port, char *out, size_t cap)
{
    const char *colon = strrchr(listen, ':');
    size_t hostlen = colon ? (size_t)(colon - listen) : strlen(listen);
    snprintf(out, cap, "%.*s:%u", (int)hostlen, listen, port);
}

static void open_on_worker(rt_worker *w, void *arg)
{
    rt_intake *in = arg;
    int i = rt_worker_index(w);
    if (in->failed) {
        return;
    }
    rt_otlp_server_opts o = {
        .handler = in->handler,
        .handler_arg = in->worker_arg ? in->worker_arg(w, in->arg) : in->arg,
        .max_body_bytes = (size_t)in->cfg->max_body_bytes,
        .reuseport = true,
        .handler_checks = in->cfg->handler_checks,
        .idle_timeout_s = (uint32_t)(in->cfg->idle_timeout_ns / 1000000000ull),
    };
    char err[400];
    if (in->http_listen[0]) {
        o.tls = in->tls_http;
        in->ws[i].http =
            rt_http_server_new(rt_worker_base(w), in->http_listen, &o, err, sizeof err);
        if (in->ws[i].http == NULL) {
            snprintf(in->err, sizeof in->err, "OTLP/HTTP listener %s: %s", in->http_listen, err);
            in->failed = 1;
            return;
        }
        if (in->http_port == 0) {
            in->http_port = rt_http_server_port(in->ws[i].http);
            with_port(in->cfg->http.listen, in->http_port, in->http_listen, sizeof in->http_listen);
        }
    }
    if (in->grpc_listen[0]) {
        o.tls = in->tls_grpc;
        in->ws[i].grpc =
            rt_grpc_server_new(rt_worker_base(w), in->grpc_listen, &o, err, sizeof err);
        if (in->ws[i].grpc == NULL) {
            snprintf(in->err, sizeof in->err, "OTLP/gRPC listener %s: %s", in->grpc_listen, err);
            in->failed = 1;
            return;
        }
        if (in->grpc_port == 0) {
            in->grpc_port = rt_grpc_server_port(in->ws[i].grpc);
            with_port(in->cfg->grpc.listen, in->grpc_port, in->grpc_listen, sizeof in->grpc_listen);
        }
    }
}

static void close_on_worker(rt_worker *w, void *arg)
{
    rt_intake *in = arg;
    int i = rt_worker_index(w);
    rt_http_server_free(in->ws[i].http);
    rt_grpc_server_free(in->ws[i].grpc);
    in->ws[i].http = NULL;
    in->ws[i].grpc = NULL;
}

rt_intake *rt_intake_open(const rt_intake_cfg *cfg, rt_workers *pool, rt_otlp_handler_fn handler,
                          rt_intake_worker_arg_fn worker_arg, void *arg, char *err, size_t errlen)
{
    rt_intake *in = rt_calloc(1, sizeof *in);
    in->cfg = cfg;
    in->pool = pool;
    in->handler = handler;
    in->worker_arg = worker_arg;
    in->arg = arg;
    in->ws = rt_calloc((size_t)rt_workers_count(pool), sizeof *in->ws);
    if (set(cfg->http.listen)) {
        snprintf(in->http_listen, sizeof in->http_listen, "%s", cfg->http.listen);
    }
    if (set(cfg->grpc.listen)) {
        snprintf(in->grpc_listen, sizeof in->grpc_listen, "%s", cfg->grpc.listen);
    }
    const rt_tls_cfg *t = &cfg->tls;
    if (set(t->cert) || set(t->key)) {
        if (!set(t->cert) || !set(t->key)) {
            snprintf(err, errlen, "listeners.tls: cert and key must be given together");
            goto fail;
        }
        const char *ca = set(t->client_ca) ? t->client_ca : NULL;
        in->tls_http = rt_tls_server_ctx(t->cert, t->key, ca, "http/1.1", err, errlen);
        if (in->tls_http == NULL) {
            goto fail;
        }
        in->tls_grpc = rt_tls_server_ctx(t->cert, t->key, ca, "h2", err, errlen);
        if (in->tls_grpc == NULL) {
            goto fail;
        }
    } else if (set(t->client_ca)) {
        snprintf(err, errlen, "listeners.tls.client_ca needs cert and key");
        goto fail;
    }
    /* Workers one at a time: the first binds (port 0 becomes a real port), the rest join it
     * with SO_REUSEPORT. run_on_each runs them in parallel, so go worker by worker. */
    for (int i = 0; i < rt_workers_count(pool) && !in->failed; i++) {
        rt_worker *w = rt_workers_get(pool, i);
        rt_workers_run_on_one(w, open_on_worker, in);
    }
    if (in->failed) {
        snprintf(err, errlen, "%s", in->err);
        goto fail;
    }
    in->open = true;
    rt_log(RT_LOG_INFO, "OTLP listeners open", "http=%s grpc=%s tls=%s workers=%d",
           in->http_listen[0] ? in->http_listen : "off",
           in->grpc_listen[0] ? in->grpc_listen : "off", in->tls_http ? "on" : "off",
           rt_workers_count(pool));
    return in;
fail:
    in->open = true;
    rt_intake_free(in);
    return NULL;
}

uint16_t rt_intake_http_port(const rt_intake *in)
{
    return in->http_port;
}

uint16_t rt_intake_grpc_port(const rt_intake *in)
{
    return in->grpc_port;
}

void rt_intake_close(rt_intake *in)
{
    if (in == NULL || !in->open) {
        return;
    }
    rt_workers_run_on_each(in->pool, close_on_worker, in);
    in->open = false;
}

void rt_intake_free(rt_intake *in)
{
    if (in == NULL) {
        return;
    }
    rt_intake_close(in);
    if (in->tls_http) {
        SSL_CTX_free(in->tls_http);
    }
    if (in->tls_grpc) {
        SSL_CTX_free(in->tls_grpc);
    }
    free(in->ws);
    free(in);
}
