/* metrics.c - Prometheus registry, lock-free series and text-format rendering (see metrics.h). */
#include "metrics.h"

#include "alloc.h"
#include "log.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* More labels than this on one series is certainly a mistake (and an unbounded cardinality). */
#define MAX_LABELS 16

typedef enum fam_type {
    FAM_COUNTER,
    FAM_GAUGE,
    FAM_HISTOGRAM,
} fam_type;

static const char *const fam_type_names[] = {"counter", "gauge", "histogram"};

struct rt_histogram {
    size_t nbounds;
    const double *bounds; /* ref in the family */
    _Atomic uint64_t sum_bits;
    _Atomic uint64_t counts[]; /* nbounds + 1 non-cumulative buckets, the last one is +Inf */
};

typedef struct series {
    struct series *next;
    char **values; /* owned label values, family->nlabels of them */
    char *labels;  /* owned, rendered and escaped: a="x",b="y" ("" without labels) */
    bool is_fn;
    rt_metrics_value_fn fn;
    void *arg;
    rt_counter counter;
    rt_gauge gauge;
    rt_histogram *hist; /* owned, histogram families only */
} series;

typedef struct family {
    char *name;
    char *help;
    fam_type type;
    size_t nlabels;
    char **label_names;
    double *bounds; /* histogram bucket bounds, owned */
    size_t nbounds;
    series *head;
} family;

struct rt_metrics_registry {
    pthread_mutex_t mu; /* guards the family and series lists, not the values */
    family **fams;
    size_t nfams, cap;
};

/* A registration mistake: log and abort (see metrics.h for why). */
__attribute__((noreturn)) static void misuse(const char *what, const char *name)
{
    rt_log(RT_LOG_ERROR, "metrics registration error", "metric=%s reason=\"%s\"", name, what);
    abort();
}

rt_metrics_registry *rt_metrics_registry_new(void)
{
    rt_metrics_registry *reg = rt_calloc(1, sizeof *reg);
    pthread_mutex_init(&reg->mu, NULL);
    return reg;
}

static void series_free(series *s, size_t nlabels)
{
    for (size_t i = 0; i < nlabels; i++) {
        free(s->values[i]);
    }
    free(s->values);
    free(s->labels);
    free(s->hist);
    free(s);
}

void rt_metrics_registry_free(rt_metrics_registry *reg)
{
    if (reg == NULL) {
        return;
    }
    for (size_t i = 0; i < reg->nfams; i++) {
        family *f = reg->fams[i];
        series *s = f->head;
        while (s != NULL) {
            series *next = s->next;
            series_free(s, f->nlabels);
            s = next;
        }
        for (size_t j = 0; j < f->nlabels; j++) {
            free(f->label_names[j]);
        }
        free(f->label_names);
        free(f->bounds);
        free(f->name);
        free(f->help);
        free(f);
    }
    free(reg->fams);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

static bool valid_metric_name(const char *s)
{
    if (s == NULL || s[0] == '\0' || (s[0] >= '0' && s[0] <= '9')) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == ':')) {
            return false;
        }
    }
    return true;
}

static bool valid_label_name(const char *s)
{
    return valid_metric_name(s) && strchr(s, ':') == NULL && strncmp(s, "__", 2) != 0;
}

/* Append `s` escaped for a label value (esc_quote) or HELP text: backslash, newline and, for
 * label values, the double quote. */
static void append_escaped(rt_buf *out, const char *s, bool esc_quote)
{
    for (const char *p = s; *p; p++) {
        if (*p == '\\') {
            rt_buf_append(out, "\\\\", 2);
        } else if (*p == '\n') {
            rt_buf_append(out, "\\n", 2);
        } else if (*p == '"' && esc_quote) {
            rt_buf_append(out, "\\\"", 2);
        } else {
            rt_buf_append_byte(out, (uint8_t)*p);
        }
    }
}

const char *rt_metrics_format_double(double v, char *out, size_t cap)
{
    if (isnan(v)) {
        snprintf(out, cap, "NaN");
    } else if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "+Inf" : "-Inf");
    } else {
        /* The shortest of %.15g..%.17g that reads back as the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(out, cap, "%.*g", prec, v);
            if (strtod(out, NULL) == v) {
                break;
            }
        }
    }
    return out;
}

typedef struct labelset {
    size_t n;
    const char *names[MAX_LABELS];
    const char *values[MAX_LABELS];
} labelset;

static void collect_labels(const char *metric, va_list ap, labelset *ls)
{
    ls->n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) {
            return;
        }
        const char *v = va_arg(ap, const char *);
        if (v == NULL) {
            misuse("label without a value (arguments are name, value pairs ended by NULL)", metric);
        }
        if (ls->n == MAX_LABELS) {
            misuse("too many labels", metric);
        }
        ls->names[ls->n] = k;
        ls->values[ls->n] = v;
        ls->n++;
    }
}

static family *find_family(rt_metrics_registry *reg, const char *name)
{
    for (size_t i = 0; i < reg->nfams; i++) {
        if (strcmp(reg->fams[i]->name, name) == 0) {
            return reg->fams[i];
        }
    }
    return NULL;
}

static family *family_new(rt_metrics_registry *reg, const char *name, const char *help,
                          fam_type type, const labelset *ls, const double *bounds, size_t nb)
{
    if (!valid_metric_name(name)) {
        misuse("invalid metric name", name ? name : "(null)");
    }
    for (size_t i = 0; i < ls->n; i++) {
        if (!valid_label_name(ls->names[i]) ||
            (type == FAM_HISTOGRAM && strcmp(ls->names[i], "le") == 0)) {
            misuse("invalid label name", name);
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(ls->names[i], ls->names[j]) == 0) {
                misuse("label name given twice", name);
            }
        }
    }
    if (type == FAM_HISTOGRAM) {
        for (size_t i = 0; i < nb; i++) {
            if (!isfinite(bounds[i]) || (i > 0 && bounds[i] <= bounds[i - 1])) {
                misuse("histogram bounds must be finite and strictly increasing", name);
            }
        }
    }
    family *f = rt_calloc(1, sizeof *f);
    f->name = rt_strdup(name);
    f->help = rt_strdup(help ? help : "");
    f->type = type;
    f->nlabels = ls->n;
    f->label_names = rt_calloc(ls->n ? ls->n : 1, sizeof *f->label_names);
    for (size_t i = 0; i < ls->n; i++) {
        f->label_names[i] = rt_strdup(ls->names[i]);
    }
    if (type == FAM_HISTOGRAM) {
        f->nbounds = nb;
        f->bounds = rt_calloc(nb ? nb : 1, sizeof *f->bounds);
        memcpy(f->bounds, bounds, nb * sizeof *bounds);
    }
    if (reg->nfams == reg->cap) {
        reg->cap = reg->cap ? reg->cap * 2 : 16;
        reg->fams = rt_realloc(reg->fams, reg->cap * sizeof *reg->fams);
    }
    reg->fams[reg->nfams++] = f;
    return f;
}

/* Check that an existing family matches a new registration. */
static void family_check(const family *f, fam_type type, const labelset *ls, const double *bounds,
                         size_t nb)
{
    if (f->type != type) {
        misuse("registered again with another type", f->name);
    }
    if (f->nlabels != ls->n) {
        misuse("registered again with other label names", f->name);
    }
    for (size_t i = 0; i < ls->n; i++) {
        if (strcmp(f->label_names[i], ls->names[i]) != 0) {
            misuse("registered again with other label names", f->name);
        }
    }
    if (type == FAM_HISTOGRAM &&
        (f->nbounds != nb || (nb > 0 && memcmp(f->bounds, bounds, nb * sizeof *bounds) != 0))) {
        misuse("registered again with other histogram buckets", f->name);
    }
}

static series *series_new(family *f, const labelset *ls)
{
    series *s = rt_calloc(1, sizeof *s);
    s->values = rt_calloc(ls->n ? ls->n : 1, sizeof *s->values);
    rt_buf lb = RT_BUF_INIT;
    for (size_t i = 0; i < ls->n; i++) {
        s->values[i] = rt_strdup(ls->values[i]);
        if (i > 0) {
            rt_buf_append_byte(&lb, ',');
        }
        rt_buf_printf(&lb, "%s=\"", ls->names[i]);
        append_escaped(&lb, ls->values[i], true);
        rt_buf_append_byte(&lb, '"');
    }
    rt_buf_append_byte(&lb, '\0');
    s->labels = (char *)rt_buf_steal(&lb, NULL);
    if (f->type == FAM_HISTOGRAM) {
        s->hist = rt_calloc(1, sizeof *s->hist + (f->nbounds + 1) * sizeof s->hist->counts[0]);
        s->hist->nbounds = f->nbounds;
        s->hist->bounds = f->bounds;
    }
    /* Append, so series render in the order they were created. */
    series **pp = &f->head;
    while (*pp != NULL) {
        pp = &(*pp)->next;
    }
    *pp = s;
    return s;
}

/* Find or create the series `name`{ls} under the lock. */
static series *get_series(rt_metrics_registry *reg, const char *name, const char *help,
                          fam_type type, const double *bounds, size_t nb, const labelset *ls,
                          bool is_fn)
{
    family *f = find_family(reg, name);
    if (f == NULL) {
        f = family_new(reg, name, help, type, ls, bounds, nb);
    } else {
        family_check(f, type, ls, bounds, nb);
    }
    for (series *s = f->head; s != NULL; s = s->next) {
        size_t i;
        for (i = 0; i < ls->n; i++) {
            if (strcmp(s->values[i], ls->values[i]) != 0) {
                break;
            }
        }
        if (i == ls->n) {
            if (s->is_fn != is_fn) {
                misuse("the same series registered both with a callback and without", name);
            }
            return s;
        }
    }
    series *s = series_new(f, ls);
    s->is_fn = is_fn;
    return s;
}

rt_counter *rt_metrics_counter(rt_metrics_registry *reg, const char *name, const char *help, ...)
{
    labelset ls;
    va_list ap;
    va_start(ap, help);
    collect_labels(name, ap, &ls);
    va_end(ap);
    pthread_mutex_lock(&reg->mu);
    series *s = get_series(reg, name, help, FAM_COUNTER, NULL, 0, &ls, false);
    pthread_mutex_unlock(&reg->mu);
    return &s->counter;
}

rt_gauge *rt_metrics_gauge(rt_metrics_registry *reg, const char *name, const char *help, ...)
{
    labelset ls;
    va_list ap;
    va_start(ap, help);
    collect_labels(name, ap, &ls);
    va_end(ap);
    pthread_mutex_lock(&reg->mu);
    series *s = get_series(reg, name, help, FAM_GAUGE, NULL, 0, &ls, false);
    pthread_mutex_unlock(&reg->mu);
    return &s->gauge;
}

rt_histogram *rt_metrics_histogram(rt_metrics_registry *reg, const char *name, const char *help,
                                   const double *bounds, size_t nbounds, ...)
{
    labelset ls;
    va_list ap;
    va_start(ap, nbounds);
    collect_labels(name, ap, &ls);
    va_end(ap);
    pthread_mutex_lock(&reg->mu);
    series *s = get_series(reg, name, help, FAM_HISTOGRAM, bounds, nbounds, &ls, false);
    pthread_mutex_unlock(&reg->mu);
    return s->hist;
}

static void register_fn(rt_metrics_registry *reg, const char *name, const char *help, fam_type type,
                        rt_metrics_value_fn fn, void *arg, const labelset *ls)
{
    if (fn == NULL) {
        misuse("callback series without a callback", name);
    }
    pthread_mutex_lock(&reg->mu);
    series *s = get_series(reg, name, help, type, NULL, 0, ls, true);
    s->fn = fn;
    s->arg = arg;
    pthread_mutex_unlock(&reg->mu);
}

void rt_metrics_gauge_fn(rt_metrics_registry *reg, const char *name, const char *help,
                         rt_metrics_value_fn fn, void *arg, ...)
{
    labelset ls;
    va_list ap;
    va_start(ap, arg);
    collect_labels(name, ap, &ls);
    va_end(ap);
    register_fn(reg, name, help, FAM_GAUGE, fn, arg, &ls);
}

void rt_metrics_counter_fn(rt_metrics_registry *reg, const char *name, const char *help,
                           rt_metrics_value_fn fn, void *arg, ...)
{
    labelset ls;
    va_list ap;
    va_start(ap, arg);
    collect_labels(name, ap, &ls);
    va_end(ap);
    register_fn(reg, name, help, FAM_COUNTER, fn, arg, &ls);
}

size_t rt_metrics_remove_fns(rt_metrics_registry *reg, void *arg)
{
    size_t removed = 0;
    pthread_mutex_lock(&reg->mu);
    for (size_t i = 0; i < reg->nfams; i++) {
        family *f = reg->fams[i];
        series **pp = &f->head;
        while (*pp != NULL) {
            series *s = *pp;
            if (s->is_fn && s->arg == arg) {
                *pp = s->next;
                series_free(s, f->nlabels);
                removed++;
            } else {
                pp = &s->next;
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
    return removed;
}

void rt_histogram_observe(rt_histogram *h, double v)
{
    /* Binary search for the first bound >= v; NaN and values above every bound land in +Inf. */
    size_t lo = 0, hi = h->nbounds;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v <= h->bounds[mid]) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    if (isnan(v)) {
        lo = h->nbounds;
    }
    atomic_fetch_add_explicit(&h->counts[lo], 1, memory_order_relaxed);
    uint64_t old = atomic_load_explicit(&h->sum_bits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(
        &h->sum_bits, &old, rt_metrics_double_bits_(rt_metrics_bits_double_(old) + v),
        memory_order_relaxed, memory_order_relaxed)) {
    }
}

uint64_t rt_histogram_count(const rt_histogram *h)
{
    uint64_t total = 0;
    for (size_t i = 0; i <= h->nbounds; i++) {
        total += atomic_load_explicit(&((rt_histogram *)h)->counts[i], memory_order_relaxed);
    }
    return total;
}

/* "name{labels}" or "name{labels,extra}" or plain "name", then a space. */
static void append_series_name(rt_buf *out, const char *name, const char *suffix,
                               const char *labels, const char *extra)
{
    rt_buf_append_str(out, name);
    rt_buf_append_str(out, suffix);
    bool has_labels = labels[0] != '\0';
    if (has_labels || extra != NULL) {
        rt_buf_append_byte(out, '{');
        rt_buf_append_str(out, labels);
        if (extra != NULL) {
            if (has_labels) {
                rt_buf_append_byte(out, ',');
            }
            rt_buf_append_str(out, extra);
        }
        rt_buf_append_byte(out, '}');
    }
    rt_buf_append_byte(out, ' ');
}

static void render_histogram(rt_buf *out, const family *f, const series *s)
{
    char num[32], le[48];
    uint64_t cum = 0;
    rt_histogram *h = s->hist;
    for (size_t i = 0; i <= h->nbounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->nbounds) {
            snprintf(le, sizeof le, "le=\"%s\"",
                     rt_metrics_format_double(h->bounds[i], num, sizeof num));
        } else {
            snprintf(le, sizeof le, "le=\"+Inf\"");
        }
        append_series_name(out, f->name, "_bucket", s->labels, le);
        rt_buf_printf(out, "%llu\n", (unsigned long long)cum);
    }
    double sum = rt_metrics_bits_double_(atomic_load_explicit(&h->sum_bits, memory_order_relaxed));
    append_series_name(out, f->name, "_sum", s->labels, NULL);
    rt_buf_printf(out, "%s\n", rt_metrics_format_double(sum, num, sizeof num));
    /* _count is the +Inf bucket read above, so the two always agree. */
    append_series_name(out, f->name, "_count", s->labels, NULL);
    rt_buf_printf(out, "%llu\n", (unsigned long long)cum);
}

static int family_cmp(const void *a, const void *b)
{
    const family *fa = *(const family *const *)a;
    const family *fb = *(const family *const *)b;
    return strcmp(fa->name, fb->name);
}

void rt_metrics_render(rt_metrics_registry *reg, rt_buf *out)
{
    char num[32];
    pthread_mutex_lock(&reg->mu);
    if (reg->nfams > 1) {
        qsort(reg->fams, reg->nfams, sizeof *reg->fams, family_cmp);
    }
    for (size_t i = 0; i < reg->nfams; i++) {
        const family *f = reg->fams[i];
        if (f->head == NULL) {
            continue;
        }
        rt_buf_printf(out, "# HELP %s ", f->name);
        append_escaped(out, f->help, false);
        rt_buf_printf(out, "\n# TYPE %s %s\n", f->name, fam_type_names[f->type]);
        for (const series *s = f->head; s != NULL; s = s->next) {
            if (f->type == FAM_HISTOGRAM) {
                render_histogram(out, f, s);
                continue;
            }
            append_series_name(out, f->name, "", s->labels, NULL);
            if (s->is_fn) {
                rt_buf_printf(out, "%s\n",
                              rt_metrics_format_double(s->fn(s->arg), num, sizeof num));
            } else if (f->type == FAM_COUNTER) {
                rt_buf_printf(out, "%llu\n", (unsigned long long)rt_counter_get(&s->counter));
            } else {
                rt_buf_printf(out, "%s\n",
                              rt_metrics_format_double(rt_gauge_get(&s->gauge), num, sizeof num));
            }
        }
    }
    pthread_mutex_unlock(&reg->mu);
}
