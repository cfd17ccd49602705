/* admin.c - admin HTTP endpoints on libevent's evhttp (see admin.h). */
#include "admin.h"

#include "alloc.h"
#include "log.h"
#include "net.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define TEXT_CONTENT_TYPE    "text/plain; charset=utf-8"

/* Admin requests are small GETs; anything bigger is refused by evhttp itself. */
#define MAX_HEADERS_SIZE (16 * 1024)
#define MAX_BODY_SIZE    (64 * 1024)
#define IO_TIMEOUT_S     30

typedef struct handler {
    char *path; /* owned */
    rt_admin_handler_fn fn;
    void *arg;
} handler;

struct rt_admin {
    struct evhttp *http;      /* owns the listening socket and connections */
    rt_metrics_registry *reg; /* ref, owned by the caller */
    uint16_t port;
    rt_admin_ready_fn ready_fn;
    void *ready_arg;
    handler *handlers;
    size_t nhandlers, caphandlers;
};

static const char *const builtin_paths[] = {"/metrics", "/healthz", "/readyz", NULL};

/* Send `body` (len bytes) with `code`. HEAD requests get the headers only, with the
 * Content-Length the GET would have had (libevent 2.1 would send the body). */
static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *content_type, const void *body, size_t len)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    evhttp_add_header(oh, "Content-Type", content_type);
    evhttp_add_header(oh, "Cache-Control", "no-store");
    struct evbuffer *eb = evbuffer_new();
    if (eb == NULL) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char cl[24];
        snprintf(cl, sizeof cl, "%zu", len);
        evhttp_add_header(oh, "Content-Length", cl);
    } else if (len > 0) {
        evbuffer_add(eb, body, len);
    }
    evhttp_send_reply(req, code, reason, eb);
    evbuffer_free(eb);
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    reply(req, code, reason, TEXT_CONTENT_TYPE, text, strlen(text));
}

static const char *status_reason(int code)
{
    switch (code) {
    case 200:
        return "OK";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 500:
        return "Internal Server Error";
    case 503:
        return "Service Unavailable";
    default:
        return code < 400 ? "OK" : "Error";
    }
}

static void serve_metrics(rt_admin *a, struct evhttp_request *req)
{
    rt_buf out = RT_BUF_INIT;
    rt_metrics_render(a->reg, &out);
    reply(req, 200, "OK", METRICS_CONTENT_TYPE, out.data, out.len);
    rt_buf_free(&out);
}

static void serve_readyz(rt_admin *a, struct evhttp_request *req)
{
    char reason[256] = "";
    if (a->ready_fn == NULL || a->ready_fn(a->ready_arg, reason, sizeof reason)) {
        reply_text(req, 200, "OK", "ready\n");
        return;
    }
    char *body = rt_sprintf("not ready: %s\n", reason[0] ? reason : "unspecified");
    reply_text(req, 503, "Service Unavailable", body);
    free(body);
}

static void serve_handler(const handler *h, struct evhttp_request *req, const char *query)
{
    rt_buf body = RT_BUF_INIT;
    const char *ctype = TEXT_CONTENT_TYPE;
    int code = h->fn(h->arg, query, &body, &ctype);
    if (code < 100 || code > 599) {
        RT_LOG_RL(RT_LOG_ERROR, "admin handler returned an invalid status", "path=%s status=%d",
                  h->path, code);
        code = 500;
    }
    reply(req, code, status_reason(code), ctype ? ctype : TEXT_CONTENT_TYPE, body.data, body.len);
    rt_buf_free(&body);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    rt_admin *a = arg;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
        reply_text(req, 405, "Method Not Allowed", "method not allowed\n");
        return;
    }
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (path == NULL || path[0] == '\0') {
        path = "/";
    }
    if (strcmp(path, "/metrics") == 0) {
        serve_metrics(a, req);
    } else if (strcmp(path, "/healthz") == 0) {
        reply_text(req, 200, "OK", "ok\n");
    } else if (strcmp(path, "/readyz") == 0) {
        serve_readyz(a, req);
    } else {
        for (size_t i = 0; i < a->nhandlers; i++) {
            if (strcmp(a->handlers[i].path, path) == 0) {
                serve_handler(&a->handlers[i], req, query);
                return;
            }
        }
        reply_text(req, 404, "Not Found", "not found\n");
    }
}

rt_admin *rt_admin_new(struct event_base *base, const char *listen, rt_metrics_registry *reg,
                       char *err, size_t errlen)
{
    rt_admin *a = rt_calloc(1, sizeof *a);
    a->reg = reg;
    int fd = rt_net_listen(listen, false, err, errlen);
    if (fd < 0) {
        goto fail;
    }
    a->port = rt_net_local_port(fd);
    a->http = evhttp_new(base);
    if (a->http == NULL) {
        snprintf(err, errlen, "admin %s: evhttp_new failed", listen);
        close(fd);
        goto fail;
    }
    /* Let every method reach on_request so the answer is our 405, not evhttp's. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_timeout(a->http, IO_TIMEOUT_S);
    evhttp_set_max_headers_size(a->http, MAX_HEADERS_SIZE);
    evhttp_set_max_body_size(a->http, MAX_BODY_SIZE);
    evhttp_set_gencb(a->http, on_request, a);
    /* On success evhttp owns fd (closed by evhttp_free). */
    if (evhttp_accept_socket_with_handle(a->http, fd) == NULL) {
        snprintf(err, errlen, "admin %s: cannot accept on the socket", listen);
        close(fd);
        goto fail;
    }
    return a;
fail:
    rt_admin_free(a);
    return NULL;
}

void rt_admin_set_ready_fn(rt_admin *admin, rt_admin_ready_fn fn, void *arg)
{
    admin->ready_fn = fn;
    admin->ready_arg = arg;
}

int rt_admin_add_handler(rt_admin *admin, const char *path, rt_admin_handler_fn fn, void *arg)
{
    for (int i = 0; builtin_paths[i] != NULL; i++) {
        if (strcmp(builtin_paths[i], path) == 0) {
            return -1;
        }
    }
    if (fn == NULL || path[0] != '/') {
        return -1;
    }
    for (size_t i = 0; i < admin->nhandlers; i++) {
        if (strcmp(admin->handlers[i].path, path) == 0) {
            admin->handlers[i].fn = fn;
            admin->handlers[i].arg = arg;
            return 0;
        }
    }
    if (admin->nhandlers == admin->caphandlers) {
        admin->caphandlers = admin->caphandlers ? admin->caphandlers * 2 : 4;
        admin->handlers = rt_realloc(admin->handlers, admin->caphandlers * sizeof *admin->handlers);
    }
    admin->handlers[admin->nhandlers++] = (handler){rt_strdup(path), fn, arg};
    return 0;
}

uint16_t rt_admin_port(const rt_admin *admin)
{
    return admin->port;
}

void rt_admin_free(rt_admin *admin)
{
    if (admin == NULL) {
        return;
    }
    if (admin->http != NULL) {
        evhttp_free(admin->http);
    }
    for (size_t i = 0; i < admin->nhandlers; i++) {
        free(admin->handlers[i].path);
    }
    free(admin->handlers);
    free(admin);
}
