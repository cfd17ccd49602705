/* log.h - logfmt logging to stderr with levels and per-call-site rate limiting.
 *
 * A line looks like:
 *   ts=2026-11-21T21:45:19.123Z level=warn msg="bad request" peer=127.0.0.1:5000 reason="..."
 * `msg` is quoted by the logger; the key=value tail is formatted by the caller, who quotes
 * values that may hold spaces with rt_log_quote() or the %q-free convention "key=\"%s\"".
 *
 * RT_LOG_RL() limits one call site to `burst` lines per `period_s` seconds and reports how many
 * lines it suppressed on the next line it lets through (suppressed=N), so repeated errors
 * (a flood of bad requests) cannot drown the log or the disk.
 */
#ifndef RT_LOG_H
#define RT_LOG_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

typedef enum rt_log_level {
    RT_LOG_DEBUG = 0,
    RT_LOG_INFO = 1,
    RT_LOG_WARN = 2,
    RT_LOG_ERROR = 3,
} rt_log_level;

/* Lines below `level` are not written. Default: RT_LOG_INFO. */
void rt_log_set_level(rt_log_level level);
rt_log_level rt_log_get_level(void);
/* Parse "debug" | "info" | "warn" | "error"; returns 0 on success, -1 otherwise. */
int rt_log_parse_level(const char *s, rt_log_level *out);

void rt_log(rt_log_level level, const char *msg, const char *kv_fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* State of one rate-limited call site. Zero-initialised static storage is a valid start. */
typedef struct rt_log_limiter {
    _Atomic uint64_t window_start_ns;
    _Atomic uint32_t in_window;
    _Atomic uint32_t suppressed;
} rt_log_limiter;

void rt_log_limited(rt_log_limiter *lim, uint32_t burst, uint32_t period_s, rt_log_level level,
                    const char *msg, const char *kv_fmt, ...) __attribute__((format(printf, 6, 7)));

/* At most 5 lines per 10 s from this call site. */
#define RT_LOG_RL(level, msg, ...)                                                                 \
    do {                                                                                           \
        static rt_log_limiter rt_log_lim_;                                                         \
        rt_log_limited(&rt_log_lim_, 5, 10, (level), (msg), __VA_ARGS__);                          \
    } while (0)

/* Copy `s` into `out` (size `cap`) with '"' and '\\' escaped and control bytes dropped, so it
 * can stand inside a quoted logfmt value. Returns `out`. */
const char *rt_log_quote(const char *s, char *out, size_t cap);

#endif
