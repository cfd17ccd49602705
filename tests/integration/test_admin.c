/* test_admin.c - the admin port over real TCP: /metrics (content type, body, and promtool's
 * verdict on it), /healthz, /readyz in both states, an owner-defined page, 404 and 405. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "admin.h"
#include "alloc.h"
#include "metrics.h"

#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

/* One admin listener on its own event_base thread, shared by the tests in this file. */
typedef struct fixture {
    struct event_base *base;
    rt_admin *admin;
    rt_metrics_registry *reg;
    pthread_t thread;
    atomic_bool ready;
    uint16_t port;
} fixture;

static void *loop_thread(void *arg)
{
    fixture *fx = arg;
    event_base_dispatch(fx->base);
    return NULL;
}

static bool ready_fn(void *arg, char *reason, size_t cap)
{
    fixture *fx = arg;
    if (atomic_load(&fx->ready)) {
        return true;
    }
    snprintf(reason, cap, "ring not loaded");
    return false;
}

static int ring_page(void *arg, const char *query, rt_buf *body, const char **content_type)
{
    *content_type = "application/json";
    rt_buf_printf(body, "{\"query\":\"%s\",\"nodes\":%d}\n", query ? query : "", *(int *)arg);
    return 200;
}

static int ring_nodes = 3;

static int setup(void **state)
{
    fixture *fx = rt_calloc(1, sizeof *fx);
    char err[256] = "";
    assert_int_equal(evthread_use_pthreads(), 0);
    fx->base = event_base_new();
    assert_non_null(fx->base);
    fx->reg = rt_metrics_registry_new();

    rt_counter *grpc = rt_metrics_counter(fx->reg, "ringtail_router_spans_received_total",
                                          "Spans received.", "protocol", "grpc", NULL);
    rt_counter *http = rt_metrics_counter(fx->reg, "ringtail_router_spans_received_total",
                                          "Spans received.", "protocol", "http", NULL);
    rt_counter_add(grpc, 1234);
    rt_counter_add(http, 5);
    rt_counter *odd = rt_metrics_counter(fx->reg, "ringtail_test_odd_labels_total",
                                         "Label values with \\ and \"quotes\"\nand newlines.",
                                         "value", "a\\b \"c\"\nd", NULL);
    rt_counter_inc(odd);
    rt_gauge *depth = rt_metrics_gauge(fx->reg, "ringtail_queue_depth", "Queued batches.", "queue",
                                       "export", NULL);
    rt_gauge_set(depth, 17.5);
    const double bounds[] = {0.001, 0.01, 0.1, 1};
    rt_histogram *lat = rt_metrics_histogram(fx->reg, "ringtail_export_duration_seconds",
                                             "Export latency.", bounds, 4, "peer", "s1", NULL);
    rt_histogram_observe(lat, 0.004);
    rt_histogram_observe(lat, 0.2);
    rt_histogram_observe(lat, 3);

    fx->admin = rt_admin_new(fx->base, "127.0.0.1:0", fx->reg, err, sizeof err);
    if (fx->admin == NULL) {
        print_error("rt_admin_new: %s\n", err);
    }
    assert_non_null(fx->admin);
    fx->port = rt_admin_port(fx->admin);
    assert_true(fx->port != 0);
    rt_admin_set_ready_fn(fx->admin, ready_fn, fx);
    assert_int_equal(rt_admin_add_handler(fx->admin, "/ring", ring_page, &ring_nodes), 0);
    assert_int_equal(rt_admin_add_handler(fx->admin, "/metrics", ring_page, &ring_nodes), -1);
    assert_int_equal(pthread_create(&fx->thread, NULL, loop_thread, fx), 0);
    *state = fx;
    return 0;
}

static int teardown(void **state)
{
    fixture *fx = *state;
    event_base_loopbreak(fx->base);
    pthread_join(fx->thread, NULL);
    rt_admin_free(fx->admin);
    event_base_free(fx->base);
    rt_metrics_registry_free(fx->reg);
    free(fx);
    return 0;
}

typedef struct response {
    int status;
    char *headers; /* raw header block, lines end in \r\n */
    char *body;
    size_t body_len;
} response;

static void response_free(response *r)
{
    free(r->headers);
    free(r->body);
}

/* Send `method path` with `extra` headers/body on a fresh connection and read until the server
 * closes it. */
static void http_request(uint16_t port, const char *method, const char *path, const char *extra,
                         response *r)
{
    memset(r, 0, sizeof *r);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    char *req = rt_sprintf("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s", method,
                           path, extra ? extra : "\r\n");
    size_t len = strlen(req);
    assert_int_equal(write(fd, req, len), (ssize_t)len);
    free(req);

    rt_buf in = RT_BUF_INIT;
    for (;;) {
        uint8_t *p = rt_buf_reserve(&in, 4096);
        ssize_t n = read(fd, p, 4096);
        assert_true(n >= 0); /* a timeout fails the test */
        if (n == 0) {
            break;
        }
        in.len += (size_t)n;
    }
    close(fd);
    rt_buf_append_byte(&in, '\0');
    char *all = (char *)in.data;
    char *sep = strstr(all, "\r\n\r\n");
    assert_non_null(sep);
    assert_int_equal(sscanf(all, "HTTP/1.1 %d", &r->status), 1);
    r->headers = rt_strndup(all, (size_t)(sep - all) + 2);
    r->body_len = in.len - 1 - (size_t)(sep + 4 - all);
    r->body = rt_strndup(sep + 4, r->body_len);
    rt_buf_free(&in);
}

/* The value of header `name` (case-insensitive), or NULL. Caller frees. */
static char *header(const response *r, const char *name)
{
    size_t nl = strlen(name);
    for (const char *line = strstr(r->headers, "\r\n"); line != NULL;
         line = strstr(line + 2, "\r\n")) {
        const char *h = line + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            const char *v = h + nl + 1;
            while (*v == ' ') {
                v++;
            }
            return rt_strndup(v, strcspn(v, "\r\n"));
        }
    }
    return NULL;
}

static void assert_header(const response *r, const char *name, const char *want)
{
    char *v = header(r, name);
    if (v == NULL || strcmp(v, want) != 0) {
        print_error("header %s: want \"%s\", got \"%s\"\n", name, want, v ? v : "(absent)");
    }
    assert_non_null(v);
    assert_string_equal(v, want);
    free(v);
}

static void test_metrics_is_the_registry_in_text_format_and_promtool_accepts_it(void **state)
{
    fixture *fx = *state;
    response r;
    http_request(fx->port, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");

    /* Nothing changes the values now, so the body is exactly what the registry renders. */
    rt_buf want = RT_BUF_INIT;
    rt_metrics_render(fx->reg, &want);
    rt_buf_append_byte(&want, '\0');
    assert_string_equal(r.body, (const char *)want.data);
    rt_buf_free(&want);
    assert_non_null(
        strstr(r.body, "ringtail_router_spans_received_total{protocol=\"grpc\"} 1234\n"));
    assert_non_null(
        strstr(r.body, "ringtail_export_duration_seconds_bucket{peer=\"s1\",le=\"+Inf\"} 3\n"));

    /* promtool must be installed (CI installs it): a missing promtool fails the test. */
    char path[] = "/tmp/rt_test_admin_metrics.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, r.body, r.body_len), (ssize_t)r.body_len);
    close(fd);
    char *cmd = rt_sprintf("promtool check metrics < '%s' 2>&1", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    unlink(path);
    free(cmd);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        print_error("promtool check metrics failed (status %d):\n%s\nbody:\n%s\n", st, out, r.body);
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    response_free(&r);
}

static void test_healthz_answers_ok(void **state)
{
    fixture *fx = *state;
    response r;
    http_request(fx->port, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ok\n");
    assert_header(&r, "Content-Type", "text/plain; charset=utf-8");
    response_free(&r);

    /* HEAD gets the headers without a body. */
    http_request(fx->port, "HEAD", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.body_len, 0);
    assert_header(&r, "Content-Length", "3");
    const char *cl = strcasestr(r.headers, "\r\nContent-Length:");
    assert_null(strcasestr(cl + 2, "\r\nContent-Length:")); /* exactly once */
    response_free(&r);
}

static void test_readyz_follows_the_readiness_callback(void **state)
{
    fixture *fx = *state;
    response r;
    atomic_store(&fx->ready, false);
    http_request(fx->port, "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body, "not ready: ring not loaded\n");
    response_free(&r);

    atomic_store(&fx->ready, true);
    http_request(fx->port, "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "ready\n");
    response_free(&r);
}

static void test_owner_pages_get_their_query_and_content_type(void **state)
{
    fixture *fx = *state;
    response r;
    http_request(fx->port, "GET", "/ring?trace_id=abc", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_header(&r, "Content-Type", "application/json");
    assert_string_equal(r.body, "{\"query\":\"trace_id=abc\",\"nodes\":3}\n");
    response_free(&r);
}

static void test_unknown_paths_get_404_and_other_methods_405(void **state)
{
    fixture *fx = *state;
    response r;
    http_request(fx->port, "GET", "/nope", NULL, &r);
    assert_int_equal(r.status, 404);
    response_free(&r);
    http_request(fx->port, "GET", "/metrics/extra", NULL, &r);
    assert_int_equal(r.status, 404);
    response_free(&r);

    http_request(fx->port, "POST", "/metrics", "Content-Length: 5\r\n\r\nhello", &r);
    assert_int_equal(r.status, 405);
    assert_header(&r, "Allow", "GET, HEAD");
    response_free(&r);
    http_request(fx->port, "DELETE", "/healthz", NULL, &r);
    assert_int_equal(r.status, 405);
    response_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_is_the_registry_in_text_format_and_promtool_accepts_it),
        cmocka_unit_test(test_healthz_answers_ok),
        cmocka_unit_test(test_readyz_follows_the_readiness_callback),
        cmocka_unit_test(test_owner_pages_get_their_query_and_content_type),
        cmocka_unit_test(test_unknown_paths_get_404_and_other_methods_405),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
