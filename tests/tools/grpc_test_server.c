/* grpc_test_server.c - rt-grpc-test-server: an rt_grpc_server with a scriptable handler, for
 * tests/integration/test_grpc_server.sh.
 *
 * Usage: rt-grpc-test-server [--listen HOST:PORT] [--cert FILE --key FILE]
 *                            [--mode ok|unavailable|throttled|internal]
 *                            [--max-body BYTES] [--idle-timeout S]
 * Prints "port=N" on stdout once listening; exits 0 on SIGTERM / SIGINT after freeing the
 * server and answering the calls it still holds (their answers are then only freed).
 *
 * Unless --mode says otherwise, the handler answers according to markers found anywhere in the
 * request bytes (e.g. in a span name):
 *   RT_UNAVAILABLE  UNAVAILABLE, retry after 7 s
 *   RT_THROTTLED    THROTTLED, retry after 3 s
 *   RT_PARTIAL      OK with rejected_spans = 1 and a message
 *   RT_DELAY        OK, but answered 200 ms later from a timer (the asynchronous path)
 *   RT_HOLD         OK, but answered only at shutdown
 *   otherwise       OK
 * On exit it prints "calls=N" (handler invocations) on stderr.
 */
#include "alloc.h"
#include "grpc_server.h"
#include "otlp_server.h"
#include "tls.h"

#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pending {
    rt_otlp_call *call;
    rt_otlp_result res;
    struct event *timer; /* NULL for RT_HOLD */
    struct pending *next;
    struct test_ctx *ctx;
} pending;

typedef struct test_ctx {
    struct event_base *base;
    const char *mode;
    unsigned long calls;
    pending *held; /* calls answered later (RT_DELAY, RT_HOLD) */
} test_ctx;

static bool has_marker(const uint8_t *pb, size_t len, const char *m)
{
    return memmem(pb, len, m, strlen(m)) != NULL;
}

static void pending_unlink(test_ctx *ctx, pending *p)
{
    for (pending **pp = &ctx->held; *pp; pp = &(*pp)->next) {
        if (*pp == p) {
            *pp = p->next;
            return;
        }
    }
}

static void delay_cb(evutil_socket_t fd, short what, void *arg)
{
    pending *p = arg;
    pending_unlink(p->ctx, p);
    rt_otlp_call_respond(p->call, &p->res);
    event_free(p->timer);
    free(p);
}

static void handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count, void *arg)
{
    test_ctx *ctx = arg;
    rt_otlp_result res;
    ctx->calls++;
    rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
    const char *mode = ctx->mode;
    if (strcmp(mode, "unavailable") == 0 || has_marker(pb, len, "RT_UNAVAILABLE")) {
        rt_otlp_result_set(&res, RT_OTLP_UNAVAILABLE, "test server: sampler unavailable");
        res.retry_after_s = 7;
    } else if (strcmp(mode, "throttled") == 0 || has_marker(pb, len, "RT_THROTTLED")) {
        rt_otlp_result_set(&res, RT_OTLP_THROTTLED, "test server: slow down");
        res.retry_after_s = 3;
    } else if (strcmp(mode, "internal") == 0) {
        rt_otlp_result_set(&res, RT_OTLP_INTERNAL, "test server: internal error");
    } else if (has_marker(pb, len, "RT_PARTIAL")) {
        rt_otlp_result_set(&res, RT_OTLP_OK, "test server: refused 1 of %zu spans", span_count);
        res.rejected_spans = 1;
    }
    bool delay = has_marker(pb, len, "RT_DELAY");
    bool hold = has_marker(pb, len, "RT_HOLD");
    if (!delay && !hold) {
        rt_otlp_call_respond(call, &res);
        return;
    }
    pending *p = rt_calloc(1, sizeof *p);
    p->call = call;
    p->res = res;
    p->ctx = ctx;
    p->next = ctx->held;
    ctx->held = p;
    if (delay) {
        struct timeval tv = {0, 200 * 1000};
        p->timer = evtimer_new(ctx->base, delay_cb, p);
        evtimer_add(p->timer, &tv);
    }
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    event_base_loopexit(arg, NULL);
}

static void usage(void)
{
    fprintf(stderr, "usage: rt-grpc-test-server [--listen HOST:PORT] [--cert F --key F] "
                    "[--mode ok|unavailable|throttled|internal] [--max-body N] "
                    "[--idle-timeout S]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:0", *cert = NULL, *key = NULL;
    test_ctx ctx = {.mode = "marker"};
    rt_otlp_server_opts opts;
    memset(&opts, 0, sizeof opts);
    for (int i = 1; i < argc; i++) {
        if (i + 1 >= argc) {
            usage();
        }
        if (strcmp(argv[i], "--listen") == 0) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--cert") == 0) {
            cert = argv[++i];
        } else if (strcmp(argv[i], "--key") == 0) {
            key = argv[++i];
        } else if (strcmp(argv[i], "--mode") == 0) {
            ctx.mode = argv[++i];
        } else if (strcmp(argv[i], "--max-body") == 0) {
            opts.max_body_bytes = strtoull(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--idle-timeout") == 0) {
            opts.idle_timeout_s = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else {
            usage();
        }
    }
    if ((cert == NULL) != (key == NULL)) {
        usage();
    }
    signal(SIGPIPE, SIG_IGN);
    char err[512];
    int rc = 1;
    SSL_CTX *tls = NULL;
    rt_grpc_server *srv = NULL;
    struct event *sigterm = NULL, *sigint = NULL;
    ctx.base = event_base_new();
    if (cert) {
        tls = rt_tls_server_ctx(cert, key, NULL, "h2", err, sizeof err);
        if (tls == NULL) {
            fprintf(stderr, "rt-grpc-test-server: %s\n", err);
            goto fail;
        }
    }
    opts.handler = handler;
    opts.handler_arg = &ctx;
    opts.tls = tls;
    srv = rt_grpc_server_new(ctx.base, listen, &opts, err, sizeof err);
    if (srv == NULL) {
        fprintf(stderr, "rt-grpc-test-server: %s\n", err);
        goto fail;
    }
    sigterm = evsignal_new(ctx.base, SIGTERM, signal_cb, ctx.base);
    sigint = evsignal_new(ctx.base, SIGINT, signal_cb, ctx.base);
    evsignal_add(sigterm, NULL);
    evsignal_add(sigint, NULL);
    printf("port=%u\n", rt_grpc_server_port(srv));
    fflush(stdout);
    event_base_dispatch(ctx.base);
    rc = 0;
fail:
    /* Free the server first, then answer what is still held: exercises the detached path. */
    rt_grpc_server_free(srv);
    while (ctx.held) {
        pending *p = ctx.held;
        ctx.held = p->next;
        rt_otlp_call_respond(p->call, &p->res);
        if (p->timer) {
            event_free(p->timer);
        }
        free(p);
    }
    fprintf(stderr, "calls=%lu\n", ctx.calls);
    if (sigterm) {
        event_free(sigterm);
    }
    if (sigint) {
        event_free(sigint);
    }
    SSL_CTX_free(tls);
    event_base_free(ctx.base);
    return rc;
}
