/* retry.c - backoff policy, Retry-After parsing and retryable-status tables (see retry.h). */
#include "retry.h"

#include "base64.h"

#include "alloc.h"

#include "google/rpc/status.pb-c.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NS_PER_S    1000000000ULL
#define MAX_HINT_NS (86400ULL * NS_PER_S)

void rt_retry_policy_resolve(const rt_retry_policy *in, rt_retry_policy *out)
{
    rt_retry_policy p = {0};
    if (in != NULL) {
        p = *in;
    }
    if (p.initial_ns == 0) {
        p.initial_ns = RT_RETRY_DEFAULT_INITIAL_NS;
    }
    if (p.max_ns == 0) {
        p.max_ns = RT_RETRY_DEFAULT_MAX_NS;
    }
    if (p.max_ns < p.initial_ns) {
        p.max_ns = p.initial_ns;
    }
    if (!(p.multiplier > 1.0)) {
        p.multiplier = RT_RETRY_DEFAULT_MULTIPLIER;
    }
    if (p.max_elapsed_ns == 0) {
        p.max_elapsed_ns = RT_RETRY_DEFAULT_MAX_ELAPSED_NS;
    }
    *out = p;
}

uint64_t rt_retry_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

uint64_t rt_retry_backoff_cap_ns(const rt_retry_policy *p, uint32_t failures)
{
    /* Grow in double and stop as soon as the cap is reached, so large failure counts cannot
     * overflow. */
    double cap = (double)p->initial_ns;
    for (uint32_t i = 1; i < failures && cap < (double)p->max_ns; i++) {
        cap *= p->multiplier;
    }
    if (cap >= (double)p->max_ns) {
        return p->max_ns;
    }
    return (uint64_t)cap;
}

uint64_t rt_retry_backoff_ns(const rt_retry_policy *p, uint32_t failures, uint64_t *rng)
{
    uint64_t cap = rt_retry_backoff_cap_ns(p, failures);
    /* Full jitter: uniform in [0, cap]. The modulo bias is < cap / 2^64, negligible. */
    return rt_retry_rand(rng) % (cap + 1);
}

int64_t rt_retry_next_delay_ns(const rt_retry_policy *p, uint32_t failures, uint64_t elapsed_ns,
                               uint64_t server_delay_ns, uint64_t *rng)
{
    if (p->disabled || elapsed_ns >= p->max_elapsed_ns) {
        return -1;
    }
    uint64_t left = p->max_elapsed_ns - elapsed_ns;
    if (server_delay_ns != RT_RETRY_NO_HINT) {
        if (server_delay_ns > left) {
            return -1;
        }
        return (int64_t)server_delay_ns;
    }
    uint64_t d = rt_retry_backoff_ns(p, failures, rng);
    if (d > left) {
        d = left;
    }
    return (int64_t)d;
}

/* Parse a GMT HTTP-date in one of the three forms RFC 9110 allows. Returns 0 and the Unix
 * time, or -1. strptime is used with explicit formats; the C locale's day and month names are
 * the English ones HTTP uses. */
static int parse_http_date(const char *s, time_t *out)
{
    static const char *const forms[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* asctime: Sun Nov  6 08:49:37 1994 */
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, forms[i], &tm);
        if (end == NULL) {
            continue;
        }
        while (*end == ' ' || *end == '\t') {
            end++;
        }
        if (*end != '\0') {
            continue;
        }
        time_t t = timegm(&tm);
        if (t == (time_t)-1) {
            continue;
        }
        *out = t;
        return 0;
    }
    return -1;
}

int rt_retry_parse_retry_after(const char *s, uint64_t now_wall_ns, uint64_t *delay_ns)
{
    if (s == NULL) {
        return -1;
    }
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    if (*s == '\0') {
        return -1;
    }
    if (isdigit((unsigned char)*s)) {
        uint64_t v = 0;
        const char *p = s;
        while (isdigit((unsigned char)*p)) {
            if (v < MAX_HINT_NS / NS_PER_S) {
                v = v * 10 + (uint64_t)(*p - '0');
            }
            p++;
        }
        while (*p == ' ' || *p == '\t') {
            p++;
        }
        if (*p != '\0') {
            return -1;
        }
        if (v > MAX_HINT_NS / NS_PER_S) {
            v = MAX_HINT_NS / NS_PER_S;
        }
        *delay_ns = v * NS_PER_S;
        return 0;
    }
    time_t t;
    if (parse_http_date(s, &t) != 0) {
        return -1;
    }
    int64_t when_ns = (int64_t)t * (int64_t)NS_PER_S;
    int64_t d = when_ns - (int64_t)now_wall_ns;
    if (d < 0) {
        d = 0;
    }
    if ((uint64_t)d > MAX_HINT_NS) {
        d = (int64_t)MAX_HINT_NS;
    }
    *delay_ns = (uint64_t)d;
    return 0;
}

bool rt_retry_http_retryable(int status)
{
    return status == 429 || status == 502 || status == 503 || status == 504;
}

bool rt_retry_grpc_retryable(int code, bool has_retry_info)
{
    switch (code) {
    case 1:  /* CANCELLED */
    case 4:  /* DEADLINE_EXCEEDED */
    case 10: /* ABORTED */
    case 11: /* OUT_OF_RANGE */
    case 14: /* UNAVAILABLE */
    case 15: /* DATA_LOSS */
        return true;
    case 8: /* RESOURCE_EXHAUSTED: only when the server says when to come back */
        return has_retry_info;
    default:
        return false;
    }
}

int rt_retry_grpc_details_delay(const char *b64, size_t len, uint64_t *delay_ns)
{
    static const char want[] = "google.rpc.RetryInfo";
    uint8_t *raw = rt_malloc(rt_base64_decoded_max(len));
    int rc = -1;
    Google__Rpc__Status *st = NULL;
    long n = rt_base64_decode(b64, len, raw);
    if (n < 0) {
        goto done;
    }
    st = google__rpc__status__unpack(NULL, (size_t)n, raw);
    if (st == NULL) {
        goto done;
    }
    rc = 0;
    for (size_t i = 0; i < st->n_details; i++) {
        const Google__Protobuf__Any *any = st->details[i];
        const char *tu = any->type_url ? any->type_url : "";
        /* type_url is "type.googleapis.com/google.rpc.RetryInfo": match the part after the
         * last '/'. */
        const char *slash = strrchr(tu, '/');
        const char *name = slash ? slash + 1 : tu;
        if (strcmp(name, want) != 0) {
            continue;
        }
        Google__Rpc__RetryInfo *ri =
            google__rpc__retry_info__unpack(NULL, any->value.len, any->value.data);
        if (ri == NULL) {
            continue;
        }
        uint64_t d = 0;
        if (ri->retry_delay != NULL) {
            int64_t s = ri->retry_delay->seconds;
            int32_t ns = ri->retry_delay->nanos;
            if (s < 0 || (s == 0 && ns < 0)) {
                d = 0;
            } else if ((uint64_t)s >= MAX_HINT_NS / NS_PER_S) {
                d = MAX_HINT_NS;
            } else {
                int64_t total = s * (int64_t)NS_PER_S + ns;
                d = total < 0 ? 0 : (uint64_t)total;
            }
        }
        google__rpc__retry_info__free_unpacked(ri, NULL);
        *delay_ns = d;
        rc = 1;
        break;
    }
done:
    if (st != NULL) {
        google__rpc__status__free_unpacked(st, NULL);
    }
    free(raw);
    return rc;
}
