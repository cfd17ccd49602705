/* intake.h - the OTLP listeners of a binary: OTLP/HTTP and OTLP/gRPC servers opened on every
 * worker's event loop with SO_REUSEPORT, so the kernel spreads connections over the workers and
 * each request is handled start to finish on one thread without locks.
 *
 * Both binaries embed rt_intake_cfg in their config (section `listeners:`, sub-table
 * rt_intake_fields), and call rt_intake_open() once the worker pool runs. The handler gets
 * the worker it runs on through rt_intake_worker_arg(), so per-worker state needs no lookup.
 */
#ifndef RT_INTAKE_H
#define RT_INTAKE_H

#include "config.h"
#include "otlp_server.h"
#include "worker.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_tls_cfg {
    char *cert;      /* PEM certificate chain; empty = plaintext */
    char *key;       /* PEM private key */
    char *client_ca; /* PEM CA bundle: when set, clients must present a certificate it signed */
} rt_tls_cfg;

typedef struct rt_intake_cfg {
    struct {
        char *listen; /* "host:port"; empty = no HTTP listener */
    } http;
    struct {
        char *listen; /* "host:port"; empty = no gRPC listener */
    } grpc;
    rt_tls_cfg tls;          /* applies to both listeners */
    uint64_t max_body_bytes; /* per request, before and after inflating */
    uint64_t idle_timeout_ns;
    bool handler_checks; /* not a config key: the router sets it (see rt_otlp_server_opts) */
} rt_intake_cfg;

/* Server-side TLS keys (cert, key, client_ca); used by rt_intake_fields. */
extern const rt_cfg_field rt_tls_server_fields[];
/* Client-side TLS keys for connections a binary makes (enabled, ca, cert, key, server_name,
 * insecure_skip_verify) and their struct. */
typedef struct rt_tls_client_cfg {
    bool enabled;
    char *ca;          /* PEM CA bundle; empty = system default store */
    char *cert;        /* client certificate for mTLS; empty = none */
    char *key;         /* its private key */
    char *server_name; /* SNI and name checked; empty = the endpoint's host */
    bool insecure_skip_verify;
} rt_tls_client_cfg;
extern const rt_cfg_field rt_tls_client_fields[];

/* Sub-table for a section holding an rt_intake_cfg: http.listen (default 127.0.0.1:4318),
 * grpc.listen (127.0.0.1:4317), tls.{cert,key,client_ca}, max_body (64MiB), idle_timeout (2m). */
extern const rt_cfg_field rt_intake_fields[];

/* Build the SSL_CTX for client connections from `cfg` (NULL when !cfg->enabled). `alpn_h2`
 * for gRPC. Returns 0 and sets *out (caller frees with SSL_CTX_free), or -1 with `err`. */
int rt_tls_client_from_cfg(const rt_tls_client_cfg *cfg, bool alpn_h2, SSL_CTX **out, char *err,
                           size_t errlen);

typedef struct rt_intake rt_intake;

/* Returns the handler argument for worker `w` (called once per worker, on that worker's
 * thread, before its listeners open). */
typedef void *(*rt_intake_worker_arg_fn)(rt_worker *w, void *arg);

/* Open the configured listeners on every worker of `pool`. Each worker's servers call
 * `handler(call, pb, len, spans, worker_arg(w, arg))`. Port 0 in a listen address means "any
 * free port", the same one for all workers (see rt_intake_http_port). Returns NULL with a
 * message in `err` when an address cannot be bound or the TLS files do not load. Must be called
 * from the main thread. */
rt_intake *rt_intake_open(const rt_intake_cfg *cfg, rt_workers *pool, rt_otlp_handler_fn handler,
                          rt_intake_worker_arg_fn worker_arg, void *arg, char *err, size_t errlen);
uint16_t rt_intake_http_port(const rt_intake *in); /* 0 when not listening */
uint16_t rt_intake_grpc_port(const rt_intake *in);
/* Stop accepting and close the listeners (on every worker's thread; waits). Calls still held
 * by handlers stay valid until responded to. Idempotent. Main thread only. */
void rt_intake_close(rt_intake *in);
/* Close (if open) and free. NULL is a no-op. */
void rt_intake_free(rt_intake *in);

#endif
