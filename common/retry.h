/* retry.h - when and how long to wait before retrying an OTLP export: exponential backoff with
 * full jitter, Retry-After parsing, the retryable-status tables of otlp-facts.md, and the
 * RetryInfo hint carried in grpc-status-details-bin.
 *
 * Everything here is pure (no I/O, no clock reads, no global state): callers pass the time and a
 * PRNG state, so tests drive it deterministically.
 */
#ifndef RT_RETRY_H
#define RT_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Defaults (deliberately faster than the OTel exporter's initial 5 s: a sampler restarting in a
 * ring should be retried within a fraction of a second). */
#define RT_RETRY_DEFAULT_INITIAL_NS     (100ULL * 1000 * 1000)
#define RT_RETRY_DEFAULT_MAX_NS         (5ULL * 1000 * 1000 * 1000)
#define RT_RETRY_DEFAULT_MULTIPLIER     2.0
#define RT_RETRY_DEFAULT_MAX_ELAPSED_NS (60ULL * 1000 * 1000 * 1000)

/* Sentinel for "the server gave no delay". */
#define RT_RETRY_NO_HINT UINT64_MAX

typedef struct rt_retry_policy {
    bool disabled;           /* true: never retry (one attempt) */
    uint64_t initial_ns;     /* backoff cap before the first retry; 0 = default 100 ms */
    uint64_t max_ns;         /* largest backoff cap; 0 = default 5 s */
    double multiplier;       /* growth of the cap per retry; <= 1.0 (or 0) = default 2 */
    uint64_t max_elapsed_ns; /* give up when this much time has passed since the first attempt;
                              * 0 = default 60 s */
} rt_retry_policy;

/* Copy `in` (NULL = all defaults) into `out` with every zero field replaced by its default. */
void rt_retry_policy_resolve(const rt_retry_policy *in, rt_retry_policy *out);

/* splitmix64 step: advances *state, returns 64 random bits. Any seed is valid. */
uint64_t rt_retry_rand(uint64_t *state);

/* The backoff cap after `failures` failed attempts (1 = before the first retry):
 * min(max_ns, initial_ns * multiplier^(failures-1)). `p` must be resolved. */
uint64_t rt_retry_backoff_cap_ns(const rt_retry_policy *p, uint32_t failures);
/* A full-jitter backoff: uniform in [0, cap] for the cap above. */
uint64_t rt_retry_backoff_ns(const rt_retry_policy *p, uint32_t failures, uint64_t *rng);

/* Decide what happens after a retryable failure. `failures` counts failed attempts so far
 * (>= 1), `elapsed_ns` is the time since the first attempt started, `server_delay_ns` the
 * server's hint (Retry-After / RetryInfo) or RT_RETRY_NO_HINT.
 * Returns the delay before the next attempt in ns, or -1 to give up:
 *  - the policy is disabled, or max_elapsed has already passed;
 *  - the server's delay would end past max_elapsed (waiting less than the server asked is
 *    pointless, and it is honoured exactly otherwise);
 * our own jittered backoff is clamped to the time left, so the last attempt lands at the end of
 * the budget instead of the export giving up early. */
int64_t rt_retry_next_delay_ns(const rt_retry_policy *p, uint32_t failures, uint64_t elapsed_ns,
                               uint64_t server_delay_ns, uint64_t *rng);

/* Parse a Retry-After value: delta-seconds ("120") or an HTTP-date (IMF-fixdate, RFC 850 or
 * asctime form, always GMT). A date in the past gives 0. `now_wall_ns` is the wall clock
 * (rt_clock_wall_ns()). Returns 0 and the delay in *delay_ns, or -1 if `s` is neither.
 * Delays are capped at one day. */
int rt_retry_parse_retry_after(const char *s, uint64_t now_wall_ns, uint64_t *delay_ns);

/* OTLP/HTTP: is this response status worth retrying? (429, 502, 503, 504 only.) */
bool rt_retry_http_retryable(int status);
/* OTLP/gRPC: is this grpc-status worth retrying? CANCELLED, DEADLINE_EXCEEDED, ABORTED,
 * OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS always; RESOURCE_EXHAUSTED only when the server sent
 * RetryInfo (`has_retry_info`). */
bool rt_retry_grpc_retryable(int code, bool has_retry_info);

/* Find a google.rpc.RetryInfo in a grpc-status-details-bin value (`b64`, `len` bytes: base64,
 * padded or not, of a google.rpc.Status). Returns 1 and its retry_delay in *delay_ns (negative
 * delays read as 0), 0 if the Status carries no RetryInfo, -1 if the value is not base64 of a
 * Status. */
int rt_retry_grpc_details_delay(const char *b64, size_t len, uint64_t *delay_ns);

#endif
