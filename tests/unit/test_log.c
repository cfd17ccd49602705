/* test_log.c - logfmt lines, level filtering, and per-call-site rate limiting (with the clock
 * driven by the test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "clock.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uint64_t fake_now = 1000000000ull;

static uint64_t fake_clock(void)
{
    return fake_now;
}

/* Run fn with stderr captured; return what it wrote (caller frees). */
static char *capture(void (*fn)(void))
{
    char path[] = "/tmp/rt-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    fn();
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = calloc(1, (size_t)len + 1);
    assert_int_equal(pread(fd, out, (size_t)len, 0), len);
    close(fd);
    unlink(path);
    return out;
}

static size_t count(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) {
        n++;
    }
    return n;
}

static void write_levels(void)
{
    rt_log_set_level(RT_LOG_WARN);
    rt_log(RT_LOG_INFO, "hidden", "k=%d", 1);
    rt_log(RT_LOG_WARN, "bad \"thing\"", "peer=%s reason=\"%s\"", "127.0.0.1:9", "too big");
    rt_log_set_level(RT_LOG_INFO);
}

static void test_lines_are_logfmt_and_levels_filter(void **state)
{
    char *out = capture(write_levels);
    assert_null(strstr(out, "hidden"));
    assert_non_null(strstr(out, " level=warn msg=\"bad \\\"thing\\\"\" peer=127.0.0.1:9 "
                                "reason=\"too big\"\n"));
    assert_true(strncmp(out, "ts=", 3) == 0);
    assert_int_equal(count(out, "\n"), 1);
    free(out);
}

static void flood(void)
{
    /* One call site, 100 times within one window, then again after the window. */
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 100; i++) {
            RT_LOG_RL(RT_LOG_ERROR, "bad request", "i=%d", i);
        }
        fake_now += 11ull * 1000000000ull; /* past the 10 s window */
    }
    RT_LOG_RL(RT_LOG_ERROR, "other site", "x=%d", 1);
}

static void test_rate_limit_keeps_a_burst_per_window_and_counts_the_rest(void **state)
{
    rt_clock_set_override(fake_clock);
    char *out = capture(flood);
    rt_clock_set_override(NULL);
    /* 5 lines per 10 s window from the flooding site; the first line of the second window
     * says how many were suppressed in the first. */
    assert_int_equal(count(out, "msg=\"bad request\""), 10);
    assert_non_null(strstr(out, "i=0 suppressed=95\n"));
    assert_int_equal(count(out, "suppressed="), 1);
    /* Another call site has its own budget. */
    assert_int_equal(count(out, "msg=\"other site\""), 1);
    free(out);
}

static void test_quote_escapes_and_drops_control_bytes(void **state)
{
    char buf[32];
    assert_string_equal(rt_log_quote("a\"b\\c\nd\x01", buf, sizeof buf), "a\\\"b\\\\c d");
    assert_string_equal(rt_log_quote("0123456789", buf, 6), "0123");
    rt_log_level lv;
    assert_int_equal(rt_log_parse_level("WARN", &lv), 0);
    assert_int_equal(lv, RT_LOG_WARN);
    assert_int_equal(rt_log_parse_level("loud", &lv), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_are_logfmt_and_levels_filter),
        cmocka_unit_test(test_rate_limit_keeps_a_burst_per_window_and_counts_the_rest),
        cmocka_unit_test(test_quote_escapes_and_drops_control_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
