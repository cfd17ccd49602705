/* metrics.h - a Prometheus metrics registry rendered in the text exposition format 0.0.4.
 *
 * A family is a metric name with its help text, type and label names. A series is one set of
 * label values in a family. Callers obtain each series once, at setup, and keep the handle:
 *
 *     rt_counter *grpc_spans = rt_metrics_counter(reg, "ringtail_router_spans_received_total",
 *                                                 "Spans received.", "protocol", "grpc", NULL);
 *     ...
 *     rt_counter_add(grpc_spans, n);          // hot path: one relaxed atomic add, no lock
 *
 * Label arguments are name/value pairs ended by NULL (a series without labels passes just NULL).
 * Asking again for the same name and label values returns the same handle. Registration takes
 * the registry lock; updates never do. Rendering takes the lock, so it sees a consistent set of
 * series, each value read atomically (values of different series are not a snapshot).
 *
 * Mistakes that can only be programming errors - an invalid metric or label name, the same name
 * registered with another type, other label names or other histogram buckets - are logged and
 * abort(), like an allocation failure: they would otherwise produce an exposition that
 * Prometheus rejects.
 *
 * Handles stay valid until rt_metrics_registry_free(). The registry may be shared by every
 * thread of the process.
 */
#ifndef RT_METRICS_H
#define RT_METRICS_H

#include "buf.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct rt_metrics_registry rt_metrics_registry;

/* A monotonically increasing integer counter. */
typedef struct rt_counter {
    _Atomic uint64_t value;
} rt_counter;

/* A gauge holding a double (its bits, so updates stay lock-free). */
typedef struct rt_gauge {
    _Atomic uint64_t bits;
} rt_gauge;

/* A histogram with fixed bucket upper bounds; opaque. */
typedef struct rt_histogram rt_histogram;

/* Value source for callback series, evaluated at scrape time on the scraping thread with the
 * registry lock held: it must be thread-safe and must not call back into the registry. */
typedef double (*rt_metrics_value_fn)(void *arg);

rt_metrics_registry *rt_metrics_registry_new(void);
/* Frees the registry and every series; handles become invalid. NULL is allowed. */
void rt_metrics_registry_free(rt_metrics_registry *reg);

/* Get or create a series. Trailing arguments: label name, value, name, value, ..., NULL.
 * Name and label strings are copied. Never returns NULL. */
rt_counter *rt_metrics_counter(rt_metrics_registry *reg, const char *name, const char *help, ...)
    __attribute__((sentinel));
rt_gauge *rt_metrics_gauge(rt_metrics_registry *reg, const char *name, const char *help, ...)
    __attribute__((sentinel));
/* `bounds` are the bucket upper bounds, strictly increasing and finite (the +Inf bucket is
 * implicit); they are copied. Every series of a family must use the same bounds. */
rt_histogram *rt_metrics_histogram(rt_metrics_registry *reg, const char *name, const char *help,
                                   const double *bounds, size_t nbounds, ...)
    __attribute__((sentinel));

/* Callback series: a gauge (or counter) whose value is fn(arg) at scrape time. Registering the
 * same name and labels again replaces fn and arg. */
void rt_metrics_gauge_fn(rt_metrics_registry *reg, const char *name, const char *help,
                         rt_metrics_value_fn fn, void *arg, ...) __attribute__((sentinel));
void rt_metrics_counter_fn(rt_metrics_registry *reg, const char *name, const char *help,
                           rt_metrics_value_fn fn, void *arg, ...) __attribute__((sentinel));
/* Remove every callback series registered with `arg` (call before freeing what arg points to).
 * Returns how many were removed. */
size_t rt_metrics_remove_fns(rt_metrics_registry *reg, void *arg);

/* Append the whole registry in text format 0.0.4 to `out`: families sorted by name, each with
 * one HELP and one TYPE line followed by all its series; families without series are left out. */
void rt_metrics_render(rt_metrics_registry *reg, rt_buf *out);

/* Format a sample value as Prometheus reads it: shortest round-trip decimal, "+Inf", "-Inf",
 * "NaN". Returns `out` (32 bytes is always enough). */
const char *rt_metrics_format_double(double v, char *out, size_t cap);

/* ---- updates: lock-free, relaxed atomics, any thread ---------------------------------------- */

static inline void rt_counter_add(rt_counter *c, uint64_t n)
{
    atomic_fetch_add_explicit(&c->value, n, memory_order_relaxed);
}

static inline void rt_counter_inc(rt_counter *c)
{
    atomic_fetch_add_explicit(&c->value, 1, memory_order_relaxed);
}

static inline uint64_t rt_counter_get(const rt_counter *c)
{
    return atomic_load_explicit(&((rt_counter *)c)->value, memory_order_relaxed);
}

static inline uint64_t rt_metrics_double_bits_(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static inline double rt_metrics_bits_double_(uint64_t b)
{
    double v;
    memcpy(&v, &b, sizeof v);
    return v;
}

static inline void rt_gauge_set(rt_gauge *g, double v)
{
    atomic_store_explicit(&g->bits, rt_metrics_double_bits_(v), memory_order_relaxed);
}

static inline double rt_gauge_get(const rt_gauge *g)
{
    return rt_metrics_bits_double_(
        atomic_load_explicit(&((rt_gauge *)g)->bits, memory_order_relaxed));
}

/* Add `d` (may be negative) with a compare-and-swap loop. */
static inline void rt_gauge_add(rt_gauge *g, double d)
{
    uint64_t old = atomic_load_explicit(&g->bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &g->bits, &old, rt_metrics_double_bits_(rt_metrics_bits_double_(old) + d),
        memory_order_relaxed, memory_order_relaxed)) {
    }
}

static inline void rt_gauge_inc(rt_gauge *g)
{
    rt_gauge_add(g, 1.0);
}

static inline void rt_gauge_dec(rt_gauge *g)
{
    rt_gauge_add(g, -1.0);
}

/* Count one observation of `v` in the first bucket whose bound is >= v and add it to the sum. */
void rt_histogram_observe(rt_histogram *h, double v);
/* Total observations so far (the +Inf bucket). */
uint64_t rt_histogram_count(const rt_histogram *h);

#endif
