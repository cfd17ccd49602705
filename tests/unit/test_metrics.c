/* test_metrics.c - Prometheus text rendering of counters, gauges, callback series and histograms
 * (exact lines, label and HELP escaping, family grouping) and lock-free concurrent updates. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Render `reg` into a NUL-terminated string (caller frees). */
static char *render(rt_metrics_registry *reg)
{
    rt_buf out = RT_BUF_INIT;
    rt_metrics_render(reg, &out);
    rt_buf_append_byte(&out, '\0');
    return (char *)rt_buf_steal(&out, NULL);
}

static void assert_rendered(rt_metrics_registry *reg, const char *want)
{
    char *got = render(reg);
    if (strcmp(got, want) != 0) {
        print_error("want:\n%s\ngot:\n%s\n", want, got);
    }
    assert_string_equal(got, want);
    free(got);
}

static void test_counters_render_with_labels_grouped_by_family(void **state)
{
    rt_metrics_registry *reg = rt_metrics_registry_new();
    rt_counter *grpc = rt_metrics_counter(reg, "ringtail_router_spans_received_total",
                                          "Spans received.", "protocol", "grpc", NULL);
    rt_counter *other = rt_metrics_counter(reg, "ringtail_a_total", "First by name.", NULL);
    rt_counter *http = rt_metrics_counter(reg, "ringtail_router_spans_received_total",
                                          "Spans received.", "protocol", "http", NULL);
    /* Asking again gives the same series. */
    assert_ptr_equal(rt_metrics_counter(reg, "ringtail_router_spans_received_total",
                                        "Spans received.", "protocol", "grpc", NULL),
                     grpc);
    assert_ptr_not_equal(grpc, http);
    rt_counter_add(grpc, 40);
    rt_counter_inc(grpc);
    rt_counter_inc(grpc);
    rt_counter_add(http, 7);
    rt_counter_inc(other);
    assert_int_equal(rt_counter_get(grpc), 42);

    assert_rendered(reg, "# HELP ringtail_a_total First by name.\n"
                         "# TYPE ringtail_a_total counter\n"
                         "ringtail_a_total 1\n"
                         "# HELP ringtail_router_spans_received_total Spans received.\n"
                         "# TYPE ringtail_router_spans_received_total counter\n"
                         "ringtail_router_spans_received_total{protocol=\"grpc\"} 42\n"
                         "ringtail_router_spans_received_total{protocol=\"http\"} 7\n");
    rt_metrics_registry_free(reg);
}

static void test_label_values_and_help_are_escaped(void **state)
{
    rt_metrics_registry *reg = rt_metrics_registry_new();
    rt_counter *c = rt_metrics_counter(reg, "x_total", "Help with \\ backslash\nand \"quotes\".",
                                       "path", "C:\\dir", "msg", "say \"hi\"\nbye", NULL);
    rt_counter_add(c, 3);
    /* HELP escapes backslash and newline only; label values also escape the double quote. */
    assert_rendered(reg, "# HELP x_total Help with \\\\ backslash\\nand \"quotes\".\n"
                         "# TYPE x_total counter\n"
                         "x_total{path=\"C:\\\\dir\",msg=\"say \\\"hi\\\"\\nbye\"} 3\n");
    rt_metrics_registry_free(reg);
}

static double read_double(void *arg)
{
    return *(double *)arg;
}

static void test_gauges_set_add_and_callbacks(void **state)
{
    rt_metrics_registry *reg = rt_metrics_registry_new();
    rt_gauge *q = rt_metrics_gauge(reg, "queue_depth", "Queued items.", "queue", "in", NULL);
    rt_gauge *r = rt_metrics_gauge(reg, "ratio", "A ratio.", NULL);
    rt_gauge_set(q, 10);
    rt_gauge_add(q, 5);
    rt_gauge_dec(q);
    rt_gauge_inc(q);
    rt_gauge_add(q, -20);
    rt_gauge_set(r, 0.1);
    assert_true(rt_gauge_get(q) == -5.0);

    double live = 3.5;
    rt_metrics_gauge_fn(reg, "live_value", "Evaluated at scrape time.", read_double, &live,
                        "source", "cb", NULL);
    double total = 12;
    rt_metrics_counter_fn(reg, "cb_events_total", "Counted elsewhere.", read_double, &total, NULL);
    assert_rendered(reg, "# HELP cb_events_total Counted elsewhere.\n"
                         "# TYPE cb_events_total counter\n"
                         "cb_events_total 12\n"
                         "# HELP live_value Evaluated at scrape time.\n"
                         "# TYPE live_value gauge\n"
                         "live_value{source=\"cb\"} 3.5\n"
                         "# HELP queue_depth Queued items.\n"
                         "# TYPE queue_depth gauge\n"
                         "queue_depth{queue=\"in\"} -5\n"
                         "# HELP ratio A ratio.\n"
                         "# TYPE ratio gauge\n"
                         "ratio 0.1\n");

    /* The callback runs at each scrape; removing it drops the (now empty) family. */
    live = 1e300;
    char *got = render(reg);
    assert_non_null(strstr(got, "live_value{source=\"cb\"} 1e+300\n"));
    free(got);
    assert_int_equal(rt_metrics_remove_fns(reg, &live), 1);
    assert_int_equal(rt_metrics_remove_fns(reg, &live), 0);
    got = render(reg);
    assert_null(strstr(got, "live_value"));
    assert_non_null(strstr(got, "cb_events_total 12\n"));
    free(got);
    rt_metrics_registry_free(reg);
}

static void test_special_values_format_as_prometheus_reads_them(void **state)
{
    char b[32];
    assert_string_equal(rt_metrics_format_double(INFINITY, b, sizeof b), "+Inf");
    assert_string_equal(rt_metrics_format_double(-INFINITY, b, sizeof b), "-Inf");
    assert_string_equal(rt_metrics_format_double(NAN, b, sizeof b), "NaN");
    assert_string_equal(rt_metrics_format_double(0, b, sizeof b), "0");
    assert_string_equal(rt_metrics_format_double(0.1, b, sizeof b), "0.1");
    assert_string_equal(rt_metrics_format_double(1.0 / 3, b, sizeof b), "0.3333333333333333");
    assert_true(strtod(rt_metrics_format_double(1.0 / 3, b, sizeof b), NULL) == 1.0 / 3);
    assert_string_equal(rt_metrics_format_double(123456789, b, sizeof b), "123456789");
}

static void test_histograms_render_cumulative_buckets_sum_and_count(void **state)
{
    rt_metrics_registry *reg = rt_metrics_registry_new();
    const double bounds[] = {0.005, 0.1, 1};
    rt_histogram *h = rt_metrics_histogram(reg, "req_seconds", "Request latency.", bounds, 3,
                                           "route", "/v1/traces", NULL);
    rt_histogram *g = rt_metrics_histogram(reg, "req_seconds", "Request latency.", bounds, 3,
                                           "route", "grpc", NULL);
    rt_histogram *plain = rt_metrics_histogram(reg, "wait_seconds", "Wait.", bounds, 3, NULL);
    rt_histogram_observe(h, 0.005); /* on the bound: counts in le="0.005" */
    rt_histogram_observe(h, 0.05);
    rt_histogram_observe(h, 0.1);
    rt_histogram_observe(h, 0.75);
    rt_histogram_observe(h, 30);
    rt_histogram_observe(plain, 2);
    assert_int_equal(rt_histogram_count(h), 5);
    assert_int_equal(rt_histogram_count(g), 0);
    assert_rendered(reg, "# HELP req_seconds Request latency.\n"
                         "# TYPE req_seconds histogram\n"
                         "req_seconds_bucket{route=\"/v1/traces\",le=\"0.005\"} 1\n"
                         "req_seconds_bucket{route=\"/v1/traces\",le=\"0.1\"} 3\n"
                         "req_seconds_bucket{route=\"/v1/traces\",le=\"1\"} 4\n"
                         "req_seconds_bucket{route=\"/v1/traces\",le=\"+Inf\"} 5\n"
                         "req_seconds_sum{route=\"/v1/traces\"} 30.905\n"
                         "req_seconds_count{route=\"/v1/traces\"} 5\n"
                         "req_seconds_bucket{route=\"grpc\",le=\"0.005\"} 0\n"
                         "req_seconds_bucket{route=\"grpc\",le=\"0.1\"} 0\n"
                         "req_seconds_bucket{route=\"grpc\",le=\"1\"} 0\n"
                         "req_seconds_bucket{route=\"grpc\",le=\"+Inf\"} 0\n"
                         "req_seconds_sum{route=\"grpc\"} 0\n"
                         "req_seconds_count{route=\"grpc\"} 0\n"
                         "# HELP wait_seconds Wait.\n"
                         "# TYPE wait_seconds histogram\n"
                         "wait_seconds_bucket{le=\"0.005\"} 0\n"
                         "wait_seconds_bucket{le=\"0.1\"} 0\n"
                         "wait_seconds_bucket{le=\"1\"} 0\n"
                         "wait_seconds_bucket{le=\"+Inf\"} 1\n"
                         "wait_seconds_sum 2\n"
                         "wait_seconds_count 1\n");
    rt_metrics_registry_free(reg);
}

/* ---- concurrency ---------------------------------------------------------------------------- */

#define THREADS 4
#define ITERS   250000

typedef struct worker_arg {
    rt_counter *c;
    rt_gauge *g;
    rt_histogram *h;
    rt_metrics_registry *reg;
    int id;
} worker_arg;

static void *worker(void *p)
{
    worker_arg *a = p;
    /* Each thread also looks its own series up, racing with the others' registrations. */
    char id[8];
    snprintf(id, sizeof id, "%d", a->id);
    rt_counter *mine =
        rt_metrics_counter(a->reg, "per_thread_total", "Per thread.", "thread", id, NULL);
    for (int i = 0; i < ITERS; i++) {
        rt_counter_inc(a->c);
        rt_counter_inc(mine);
        rt_gauge_add(a->g, 1.0);
        rt_histogram_observe(a->h, (double)(i % 4));
    }
    return NULL;
}

static void *scraper(void *p)
{
    rt_metrics_registry *reg = p;
    for (int i = 0; i < 50; i++) {
        rt_buf out = RT_BUF_INIT;
        rt_metrics_render(reg, &out);
        rt_buf_free(&out);
    }
    return NULL;
}

static void test_concurrent_updates_from_4_threads_sum_exactly(void **state)
{
    rt_metrics_registry *reg = rt_metrics_registry_new();
    const double bounds[] = {0.5, 1.5, 2.5};
    worker_arg args[THREADS];
    pthread_t th[THREADS], scr;
    rt_counter *c = rt_metrics_counter(reg, "shared_total", "Shared.", NULL);
    rt_gauge *g = rt_metrics_gauge(reg, "shared_gauge", "Shared.", NULL);
    rt_histogram *h = rt_metrics_histogram(reg, "shared_hist", "Shared.", bounds, 3, NULL);
    assert_int_equal(pthread_create(&scr, NULL, scraper, reg), 0);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (worker_arg){c, g, h, reg, i};
        assert_int_equal(pthread_create(&th[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
    }
    pthread_join(scr, NULL);

    const uint64_t n = (uint64_t)THREADS * ITERS;
    assert_int_equal(rt_counter_get(c), n);
    assert_true(rt_gauge_get(g) == (double)n);
    assert_int_equal(rt_histogram_count(h), n);

    char *got = render(reg);
    char line[128];
    snprintf(line, sizeof line, "\nshared_total %llu\n", (unsigned long long)n);
    assert_non_null(strstr(got, line));
    /* Values 0,1,2,3 equally often: buckets 1/4, 2/4, 3/4, all; sum = 6 per 4 observations. */
    snprintf(line, sizeof line, "shared_hist_bucket{le=\"0.5\"} %llu\n", (unsigned long long)n / 4);
    assert_non_null(strstr(got, line));
    snprintf(line, sizeof line, "shared_hist_bucket{le=\"2.5\"} %llu\n",
             (unsigned long long)n * 3 / 4);
    assert_non_null(strstr(got, line));
    snprintf(line, sizeof line, "shared_hist_sum %llu\n", (unsigned long long)n / 4 * 6);
    assert_non_null(strstr(got, line));
    for (int i = 0; i < THREADS; i++) {
        snprintf(line, sizeof line, "per_thread_total{thread=\"%d\"} %d\n", i, ITERS);
        assert_non_null(strstr(got, line));
    }
    free(got);
    rt_metrics_registry_free(reg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_render_with_labels_grouped_by_family),
        cmocka_unit_test(test_label_values_and_help_are_escaped),
        cmocka_unit_test(test_gauges_set_add_and_callbacks),
        cmocka_unit_test(test_special_values_format_as_prometheus_reads_them),
        cmocka_unit_test(test_histograms_render_cumulative_buckets_sum_and_count),
        cmocka_unit_test(test_concurrent_updates_from_4_threads_sum_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
