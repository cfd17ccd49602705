/* test_sampler_config.c - sampler.yaml: the seed article's OTel Collector block loads unchanged
 * (under processors:), the shipped config/sampler.yaml loads, the block is accepted at the top
 * level too but not twice, errors name file and line, and every table default parses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "sampler_config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *write_tmp(const char *text)
{
    char *path = strdup("/tmp/rt-sampler-cfg-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Load `path`; on success also run the cross-field check. Returns 0 or -1 with err. */
static int load(const char *path, rt_sampler_cfg *cfg, char *err, size_t cap)
{
    memset(cfg, 0, sizeof *cfg);
    if (rt_cfg_load_file(path, rt_sampler_fields, cfg, err, cap) != 0) {
        return -1;
    }
    return rt_sampler_cfg_check(cfg, err, cap);
}

static void test_table_is_sound(void **state)
{
    char err[512];
    if (rt_cfg_check_table(rt_sampler_fields, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
}

static void test_seed_fixture_loads_unchanged(void **state)
{
    const char *src = getenv("RT_SOURCE_DIR");
    assert_non_null(src);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fixtures/seed-policies.yaml", src);
    rt_sampler_cfg cfg;
    char err[1024];
    if (load(path, &cfg, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    const rt_ts_cfg *ts = rt_sampler_ts(&cfg);
    assert_ptr_equal(ts, &cfg.processors.tail_sampling);
    assert_int_equal(ts->decision_wait_ns, 30000000000ull);
    assert_int_equal(ts->num_traces, 100000);
    assert_int_equal(ts->expected_new_traces_per_sec, 200);
    assert_int_equal(rt_policy_set_count(ts->policies), 6);
    const char *names[] = {"keep-errors",
                           "keep-slow",
                           "keep-tool-heavy",
                           "keep-baseline",
                           "keep-baseline-rate-cap",
                           "keep-debug-tenants"};
    const char *types[] = {"status_code",   "latency",       "span_count",
                           "probabilistic", "rate_limiting", "string_attribute"};
    for (size_t i = 0; i < 6; i++) {
        assert_string_equal(rt_policy_set_name(ts->policies, i), names[i]);
        assert_string_equal(rt_policy_set_type(ts->policies, i), types[i]);
    }
    /* ringtail's non-zero cache defaults apply when the block does not set them */
    assert_true(ts->decision_cache.sampled_cache_size > 0);
    assert_true(ts->decision_cache.non_sampled_cache_size > 0);
    rt_cfg_free_struct(rt_sampler_fields, &cfg);
}

static void test_shipped_config_loads(void **state)
{
    const char *src = getenv("RT_SOURCE_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/config/sampler.yaml", src);
    /* the ring file path in it is relative to the repository root */
    assert_int_equal(chdir(src), 0);
    rt_sampler_cfg cfg;
    char err[1024];
    if (load(path, &cfg, err, sizeof err) != 0) {
        fail_msg("%s", err);
    }
    assert_string_equal(cfg.node_id, "sampler-1");
    assert_ptr_equal(rt_sampler_ts(&cfg), &cfg.tail_sampling);
    /* The recommended agent set (config/policies-agent.yaml), in its order. */
    const rt_policy_set *set = rt_sampler_ts(&cfg)->policies;
    static const char *const types[] = {"status_code",       "latency",          "string_attribute",
                                        "numeric_attribute", "string_attribute", "and",
                                        "reservoir"};
    assert_int_equal(rt_policy_set_count(set), sizeof types / sizeof types[0]);
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        assert_string_equal(rt_policy_set_type(set, i), types[i]);
    }
    rt_cfg_free_struct(rt_sampler_fields, &cfg);
}

static void test_defaults_keep_everything(void **state)
{
    rt_sampler_cfg cfg;
    memset(&cfg, 0, sizeof cfg);
    rt_cfg_set_defaults(rt_sampler_fields, &cfg);
    const rt_ts_cfg *ts = rt_sampler_ts(&cfg);
    assert_int_equal(rt_policy_set_count(ts->policies), 1);
    assert_string_equal(rt_policy_set_type(ts->policies, 0), "always_sample");
    assert_int_equal(ts->decision_wait_ns, 30000000000ull);
    assert_int_equal(ts->num_traces, 50000);
    /* Loopback unless a config says otherwise (issue: hardening, safe defaults). */
    assert_string_equal(cfg.listeners.http.listen, "127.0.0.1:4318");
    assert_string_equal(cfg.listeners.grpc.listen, "127.0.0.1:4317");
    assert_string_equal(cfg.daemon.admin.listen, "127.0.0.1:8888");
    rt_cfg_free_struct(rt_sampler_fields, &cfg);
}

/* Each bad file gives an error that starts with "<file>:<line>:" and names the key. */
static void expect_error(const char *text, int line, const char *needle)
{
    char *path = write_tmp(text);
    rt_sampler_cfg cfg;
    char err[1024];
    int rc = load(path, &cfg, err, sizeof err);
    if (rc == 0) {
        fail_msg("accepted: %s", text);
    }
    char prefix[256];
    if (line > 0) {
        snprintf(prefix, sizeof prefix, "%s:%d: ", path, line);
        if (strncmp(err, prefix, strlen(prefix)) != 0) {
            fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
        }
    }
    if (strstr(err, needle) == NULL) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
    }
    rt_cfg_free_struct(rt_sampler_fields, &cfg);
    unlink(path);
    free(path);
}

static void test_errors_name_the_line(void **state)
{
    expect_error("tail_sampling:\n  decision_wait: 30x\n", 2, "tail_sampling.decision_wait");
    expect_error("tail_sampling:\n  num_trace: 5\n", 2, "unknown key");
    expect_error("listeners:\n  http:\n    listen: 1\n  htp: {}\n", 4, "listeners.htp");
    expect_error("processors:\n  batch: {}\n", 2, "processors.batch");
    expect_error("tail_sampling:\n  policies:\n    - name: a\n      type: nope\n", 4, "nope");
    expect_error("tail_sampling:\n  policies:\n"
                 "    - name: o\n      type: ottl_condition\n"
                 "      ottl_condition: {span: ['true']}\n",
                 0, "ottl");
    expect_error("tail_sampling:\n  policies: {name: a}\n", 2, "list");
    expect_error("tail_sampling:\n  decision_wait: 1m\n  maximum_trace_age: 30s\n", 0,
                 "maximum_trace_age");
    expect_error("tail_sampling: {num_traces: 5}\n"
                 "processors:\n  tail_sampling: {num_traces: 6}\n",
                 0, "both");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_is_sound),
        cmocka_unit_test(test_seed_fixture_loads_unchanged),
        cmocka_unit_test(test_shipped_config_loads),
        cmocka_unit_test(test_defaults_keep_everything),
        cmocka_unit_test(test_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
