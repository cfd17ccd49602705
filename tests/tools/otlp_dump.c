/* otlp_dump.c - rt-otlp-dump: an OTLP server (HTTP and gRPC) built on common/ that writes every
 * accepted Export request as one line of OTLP/JSON. The interop tests point real OTel SDK
 * exporters at it; a --script of answers makes it a misbehaving backend for retry tests.
 *
 *   rt-otlp-dump [--http ADDR] [--grpc ADDR] [--out FILE] [--ports FILE]
 *                [--tls-cert F --tls-key F] [--max-body BYTES] [--script LIST]
 *
 * ADDR defaults to 127.0.0.1:0 for both listeners. Once listening it writes "http=P\ngrpc=Q\n"
 * to the --ports file (temp file + rename, so a reader never sees half of it). --script is a
 * comma-separated list of answers for the first requests, then 200: each item is an HTTP-style
 * code (200, 400, 429, 500, 503), optionally with ":SECONDS" of Retry-After ("503:1").
 * Requests answered with an error are not written. Exits 0 on SIGTERM / SIGINT.
 */
#include "alloc.h"
#include "buf.h"
#include "grpc_server.h"
#include "http_server.h"
#include "log.h"
#include "otlp_json.h"
#include "tls.h"
#include "worker.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct dump {
    FILE *out;
    int *script; /* answers, HTTP-style */
    unsigned *script_retry;
    size_t script_len;
    size_t served;
    rt_buf json;
} dump;

static rt_otlp_status status_for(int code)
{
    switch (code) {
    case 400:
        return RT_OTLP_BAD_DATA;
    case 413:
        return RT_OTLP_TOO_LARGE;
    case 429:
        return RT_OTLP_THROTTLED;
    case 503:
        return RT_OTLP_UNAVAILABLE;
    case 500:
        return RT_OTLP_INTERNAL;
    default:
        return RT_OTLP_OK;
    }
}

static void on_export(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t spans, void *arg)
{
    dump *d = arg;
    rt_otlp_result res;
    size_t n = d->served++;
    if (n < d->script_len && d->script[n] != 200) {
        rt_otlp_result_set(&res, status_for(d->script[n]), "scripted answer %d", d->script[n]);
        res.retry_after_s = d->script_retry[n];
        rt_otlp_call_respond(call, &res);
        return;
    }
    char err[256];
    rt_buf_reset(&d->json);
    if (rt_otlp_pb_to_json(pb, len, &d->json, err, sizeof err) != 0) {
        rt_otlp_result_set(&res, RT_OTLP_BAD_DATA, "%s", err);
        rt_otlp_call_respond(call, &res);
        return;
    }
    rt_buf_append_byte(&d->json, '\n');
    fwrite(d->json.data, 1, d->json.len, d->out);
    fflush(d->out);
    rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
    rt_otlp_call_respond(call, &res);
}

static int parse_script(dump *d, const char *list)
{
    size_t cap = 1;
    for (const char *p = list; *p; p++) {
        cap += *p == ',';
    }
    d->script = rt_calloc(cap, sizeof *d->script);
    d->script_retry = rt_calloc(cap, sizeof *d->script_retry);
    char *copy = rt_strdup(list);
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        unsigned code = 0, retry = 0;
        if (sscanf(tok, "%u:%u", &code, &retry) < 1 || code < 200 || code > 599) {
            fprintf(stderr, "rt-otlp-dump: --script: bad item \"%s\"\n", tok);
            free(copy);
            return -1;
        }
        d->script[d->script_len] = (int)code;
        d->script_retry[d->script_len] = retry;
        d->script_len++;
    }
    free(copy);
    return 0;
}

static int write_ports(const char *path, uint16_t http, uint16_t grpc)
{
    char *tmp = rt_sprintf("%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        free(tmp);
        return -1;
    }
    fprintf(f, "http=%u\ngrpc=%u\n", http, grpc);
    fclose(f);
    int rc = rename(tmp, path);
    free(tmp);
    return rc;
}

int main(int argc, char **argv)
{
    const char *http_addr = "127.0.0.1:0", *grpc_addr = "127.0.0.1:0";
    const char *out_path = NULL, *ports_path = NULL, *cert = NULL, *key = NULL;
    const char *script = NULL;
    size_t max_body = 0;
    static const struct option opts[] = {
        {"http", required_argument, NULL, 'h'},
        {"grpc", required_argument, NULL, 'g'},
        {"out", required_argument, NULL, 'o'},
        {"ports", required_argument, NULL, 'p'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"max-body", required_argument, NULL, 'm'},
        {"script", required_argument, NULL, 's'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'h':
            http_addr = optarg;
            break;
        case 'g':
            grpc_addr = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'p':
            ports_path = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'm':
            max_body = strtoull(optarg, NULL, 10);
            break;
        case 's':
            script = optarg;
            break;
        default:
            fprintf(stderr, "usage: rt-otlp-dump [--http ADDR] [--grpc ADDR] [--out FILE] "
                            "[--ports FILE] [--tls-cert F --tls-key F] [--max-body N] "
                            "[--script LIST]\n");
            return 2;
        }
    }

    rt_process_init();
    dump d = {0};
    rt_buf_init(&d.json);
    d.out = stdout;
    if (out_path && (d.out = fopen(out_path, "a")) == NULL) {
        perror(out_path);
        return 1;
    }
    if (script && parse_script(&d, script) != 0) {
        return 2;
    }

    char err[512];
    SSL_CTX *tls_http = NULL, *tls_grpc = NULL;
    if (cert) {
        tls_http = rt_tls_server_ctx(cert, key, NULL, "http/1.1", err, sizeof err);
        tls_grpc = rt_tls_server_ctx(cert, key, NULL, "h2", err, sizeof err);
        if (tls_http == NULL || tls_grpc == NULL) {
            fprintf(stderr, "rt-otlp-dump: %s\n", err);
            return 1;
        }
    }
    struct event_base *base = event_base_new();
    rt_otlp_server_opts so = {.handler = on_export, .handler_arg = &d, .max_body_bytes = max_body};
    so.tls = tls_http;
    rt_http_server *hs = rt_http_server_new(base, http_addr, &so, err, sizeof err);
    if (hs == NULL) {
        fprintf(stderr, "rt-otlp-dump: %s\n", err);
        return 1;
    }
    so.tls = tls_grpc;
    rt_grpc_server *gs = rt_grpc_server_new(base, grpc_addr, &so, err, sizeof err);
    if (gs == NULL) {
        fprintf(stderr, "rt-otlp-dump: %s\n", err);
        return 1;
    }
    rt_log(RT_LOG_INFO, "listening", "http_port=%u grpc_port=%u", rt_http_server_port(hs),
           rt_grpc_server_port(gs));
    if (ports_path && write_ports(ports_path, rt_http_server_port(hs), rt_grpc_server_port(gs))) {
        perror(ports_path);
        return 1;
    }
    rt_process_wait_signals(base, NULL, NULL);

    rt_http_server_free(hs);
    rt_grpc_server_free(gs);
    event_base_free(base);
    SSL_CTX_free(tls_http);
    SSL_CTX_free(tls_grpc);
    if (d.out != stdout) {
        fclose(d.out);
    }
    rt_buf_free(&d.json);
    free(d.script);
    free(d.script_retry);
    return 0;
}
