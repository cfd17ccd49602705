/* log.c - logfmt logger (see log.h). */
#include "log.h"

#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static _Atomic int current_level = RT_LOG_INFO;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void rt_log_set_level(rt_log_level level)
{
    atomic_store(&current_level, (int)level);
}

rt_log_level rt_log_get_level(void)
{
    return (rt_log_level)atomic_load(&current_level);
}

int rt_log_parse_level(const char *s, rt_log_level *out)
{
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (rt_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = RT_LOG_WARN;
        return 0;
    }
    return -1;
}

const char *rt_log_quote(const char *s, char *out, size_t cap)
{
    size_t o = 0;
    if (cap == 0) {
        return out;
    }
    for (; s && *s && o + 2 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c != 0x7f) {
            out[o++] = (char)c;
        } else if (c == '\n' || c == '\t') {
            out[o++] = ' ';
        }
    }
    out[o] = '\0';
    return out;
}

static void vlog(rt_log_level level, uint32_t suppressed, const char *msg, const char *kv_fmt,
                 va_list ap)
{
    char line[4096];
    char qmsg[512];
    uint64_t now = rt_clock_wall_ns();
    time_t secs = (time_t)(now / 1000000000ull);
    struct tm tm;
    gmtime_r(&secs, &tm);
    int n =
        snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03uZ level=%s msg=\"%s\"",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (unsigned)((now / 1000000ull) % 1000ull), level_names[level],
                 rt_log_quote(msg, qmsg, sizeof qmsg));
    if (n < 0 || (size_t)n >= sizeof line) {
        n = (int)sizeof line - 2;
    }
    if (kv_fmt && *kv_fmt && (size_t)n < sizeof line - 2) {
        line[n++] = ' ';
        int m = vsnprintf(line + n, sizeof line - (size_t)n, kv_fmt, ap);
        if (m > 0) {
            n += m;
        }
        if ((size_t)n >= sizeof line - 1) {
            n = (int)sizeof line - 2;
        }
    }
    if (suppressed > 0 && (size_t)n < sizeof line - 32) {
        n += snprintf(line + n, sizeof line - (size_t)n, " suppressed=%u", suppressed);
    }
    line[n++] = '\n';
    /* One write per line keeps lines from different threads whole. */
    fwrite(line, 1, (size_t)n, stderr);
}

void rt_log(rt_log_level level, const char *msg, const char *kv_fmt, ...)
{
    if ((int)level < atomic_load(&current_level)) {
        return;
    }
    va_list ap;
    va_start(ap, kv_fmt);
    vlog(level, 0, msg, kv_fmt, ap);
    va_end(ap);
}

void rt_log_limited(rt_log_limiter *lim, uint32_t burst, uint32_t period_s, rt_log_level level,
                    const char *msg, const char *kv_fmt, ...)
{
    if ((int)level < atomic_load(&current_level)) {
        return;
    }
    uint64_t now = rt_clock_mono_ns();
    uint64_t start = atomic_load(&lim->window_start_ns);
    uint64_t period_ns = (uint64_t)period_s * 1000000000ull;
    if (start == 0 || now - start >= period_ns) {
        /* New window: whoever wins the exchange resets the count. */
        if (atomic_compare_exchange_strong(&lim->window_start_ns, &start, now ? now : 1)) {
            atomic_store(&lim->in_window, 0);
        }
    }
    if (atomic_fetch_add(&lim->in_window, 1) >= burst) {
        atomic_fetch_add(&lim->suppressed, 1);
        return;
    }
    uint32_t suppressed = atomic_exchange(&lim->suppressed, 0);
    va_list ap;
    va_start(ap, kv_fmt);
    vlog(level, suppressed, msg, kv_fmt, ap);
    va_end(ap);
}
