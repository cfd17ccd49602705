/* sink.c - rt-bench-sink: an OTLP receiver (HTTP and gRPC) that records what arrives and, given
 * the load generator's manifest, reports recall per category, completeness, fragmentation,
 * duplicates, retention and throughput.
 *
 *   rt-bench-sink [--http HOST:PORT]... [--grpc HOST:PORT]... [--manifest FILE] [--report FILE]
 *                 [--expect-export-attr KEY] [--policy-attr KEY] [--idle S]
 *                 [--fail-if "recall.error<1,incomplete>0,..."] [--missing FILE]
 *                 [--delay-ms MS] [--capture DIR]
 *
 * --capture writes the body of each request, as protobuf after gzip and JSON are undone, to
 * DIR/NNNNNN.pb (the first 4,096 requests, at most 256 MiB): what a sampler exports, for
 * measuring codecs on real bodies (rt-bench-gzip-choice).
 *
 * --delay-ms answers each request MS milliseconds after it arrived (its spans are counted at
 * once): a backend that is slow but healthy, for back-pressure tests.
 *
 * It prints "http_port=N" / "grpc_port=N" on stderr for each listener once it is up, then runs
 * until SIGTERM / SIGINT, or until --idle seconds pass without data. It then reads the manifest
 * (so the load generator may still be writing it while the sink runs), writes the JSON report,
 * prints a short table on stdout, and checks the --fail-if assertions: exit 1 when one holds.
 *
 * Definitions: a manifest trace is kept when any of its spans arrived, kept whole when every
 * span it lists arrived. Recall of a category is kept / listed; completeness is kept whole /
 * kept; a kept trace is fragmented when its spans carried more than one distinct value of the
 * export attribute (default "ringtail.sampler.id": each sampler names itself on what it
 * exports; looked up on the span, then on its Resource). Without that attribute anywhere the
 * fragmentation figure is "unknown". A duplicate is a (trace id, span id) seen again.
 * missing_spans counts the spans of kept traces that never arrived (a trace kept whole has none;
 * a trace not kept at all is not counted: whether it should have been is the policies' call).
 * --missing writes "<trace id> <spans listed> <spans received>" for every manifest trace that
 * did not arrive whole (not kept, or incomplete), for tests that check which traces they are.
 *
 * Per span the sink does: one walk of the span's attributes, one hash probe for the span id and
 * one for the trace; no allocation once its tables are warm.
 */
#include "alloc.h"
#include "base64.h"
#include "buf.h"
#include "clock.h"
#include "grpc_server.h"
#include "http_server.h"
#include "log.h"
#include "otlp_scan.h"
#include "otlp_server.h"
#include "worker.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAMES  64 /* distinct exporter ids / policy names tracked; more go to "(other)" */
#define MAX_LISTEN 16
#define MAX_ASSERT 32

/* ---- small interned name sets (exporters, policies) ------------------------------------- */

typedef struct name_set {
    char *names[MAX_NAMES];
    size_t lens[MAX_NAMES];
    uint64_t spans[MAX_NAMES];
    uint64_t traces[MAX_NAMES]; /* traces with at least one span carrying the name */
    size_t n;
} name_set;

/* Index of `s` in the set, adding it; the last slot collects everything past MAX_NAMES - 1. */
static unsigned name_index(name_set *ns, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < ns->n; i++) {
        if (ns->lens[i] == len && memcmp(ns->names[i], s, len) == 0) {
            return (unsigned)i;
        }
    }
    if (ns->n == MAX_NAMES - 1) {
        ns->names[ns->n] = rt_strdup("(other)");
        ns->lens[ns->n] = SIZE_MAX; /* never matches a real name */
        ns->n++;
    }
    if (ns->n == MAX_NAMES) {
        return MAX_NAMES - 1;
    }
    ns->names[ns->n] = rt_strndup((const char *)s, len);
    ns->lens[ns->n] = len;
    return (unsigned)ns->n++;
}

static void name_set_free(name_set *ns)
{
    for (size_t i = 0; i < ns->n; i++) {
        free(ns->names[i]);
    }
}

/* ---- the trace table and the span-id set ------------------------------------------------ */

typedef struct trace_rec {
    uint8_t id[16];
    uint32_t spans; /* distinct spans received */
    uint32_t dups;
    uint64_t exporters; /* bits: name_set indices */
    uint64_t policies;
    uint8_t used;
    uint8_t in_manifest;
} trace_rec;

typedef struct sink {
    struct event_base *base;
    rt_http_server *http[MAX_LISTEN];
    rt_grpc_server *grpc[MAX_LISTEN];
    size_t n_http, n_grpc;
    struct event *sig_int, *sig_term, *idle_ev;

    const char *manifest;
    const char *report;
    const char *missing; /* --missing FILE, or NULL */
    const char *export_attr;
    size_t export_attr_len;
    const char *policy_attr;
    size_t policy_attr_len;
    double idle_s;
    uint32_t delay_ms;            /* --delay-ms: answer this long after the request arrived */
    struct delayed *delayed_head; /* answers waiting for their delay (answered at exit) */
    const char *capture;          /* --capture DIR, or NULL */
    size_t captured, captured_bytes;

    trace_rec *traces;
    size_t traces_cap, traces_n;
    uint64_t *span_keys; /* 0 = empty */
    size_t keys_cap, keys_n;

    name_set exporters, policies;

    uint64_t requests, spans_in, spans_unique, dups, bad_ids, bytes;
    uint64_t spans_no_exporter;
    uint64_t first_ns, last_ns; /* monotonic, first and last request */
    uint64_t last_activity_ns;
} sink;

static uint64_t load64(const uint8_t *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static uint64_t mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t trace_hash(const uint8_t *id)
{
    return mix64(load64(id) ^ (load64(id + 8) * 0x9e3779b97f4a7c15ull));
}

static trace_rec *trace_slot(trace_rec *tab, size_t cap, const uint8_t *id)
{
    size_t mask = cap - 1;
    for (size_t i = trace_hash(id) & mask;; i = (i + 1) & mask) {
        if (!tab[i].used || memcmp(tab[i].id, id, 16) == 0) {
            return &tab[i];
        }
    }
}

/* The record of trace `id`, created if new (create = true) or NULL if absent. */
static trace_rec *trace_get(sink *s, const uint8_t *id, bool create)
{
    if (create && (s->traces_n + 1) * 2 > s->traces_cap) {
        size_t ncap = s->traces_cap ? s->traces_cap * 2 : 4096;
        trace_rec *nt = rt_calloc(ncap, sizeof *nt);
        for (size_t i = 0; i < s->traces_cap; i++) {
            if (s->traces[i].used) {
                *trace_slot(nt, ncap, s->traces[i].id) = s->traces[i];
            }
        }
        free(s->traces);
        s->traces = nt;
        s->traces_cap = ncap;
    }
    if (s->traces_cap == 0) {
        return NULL;
    }
    trace_rec *t = trace_slot(s->traces, s->traces_cap, id);
    if (!t->used) {
        if (!create) {
            return NULL;
        }
        memset(t, 0, sizeof *t);
        memcpy(t->id, id, 16);
        t->used = 1;
        s->traces_n++;
    }
    return t;
}

static void keys_insert_raw(uint64_t *tab, size_t cap, uint64_t k)
{
    size_t mask = cap - 1;
    for (size_t i = k & mask;; i = (i + 1) & mask) {
        if (tab[i] == 0) {
            tab[i] = k;
            return;
        }
    }
}

/* Remember (trace, span); returns true if it was already seen. The key is a 64-bit hash of
 * both ids: a false duplicate needs a 64-bit collision (about 1e-7 for 10^6 spans squared). */
static bool span_seen(sink *s, const uint8_t *trace_id, const uint8_t *span_id)
{
    uint64_t k = mix64(load64(span_id) ^ trace_hash(trace_id));
    if (k == 0) {
        k = 1;
    }
    if ((s->keys_n + 1) * 10 > s->keys_cap * 7) {
        size_t ncap = s->keys_cap ? s->keys_cap * 2 : 1u << 16;
        uint64_t *nt = rt_calloc(ncap, sizeof *nt);
        for (size_t i = 0; i < s->keys_cap; i++) {
            if (s->span_keys[i]) {
                keys_insert_raw(nt, ncap, s->span_keys[i]);
            }
        }
        free(s->span_keys);
        s->span_keys = nt;
        s->keys_cap = ncap;
    }
    size_t mask = s->keys_cap - 1;
    for (size_t i = k & mask;; i = (i + 1) & mask) {
        if (s->span_keys[i] == k) {
            return true;
        }
        if (s->span_keys[i] == 0) {
            s->span_keys[i] = k;
            s->keys_n++;
            return false;
        }
    }
}

/* ---- the handler ------------------------------------------------------------------------ */

/* Look for the export and policy attributes among the KeyValues (field `field`) of msg. */
static void find_marks(const sink *s, const uint8_t *msg, size_t len, uint32_t field,
                       rt_pb_slice *exporter, rt_pb_slice *policy)
{
    rt_otlp_attr_iter it;
    rt_otlp_attr a;
    rt_otlp_attr_iter_init(&it, msg, len, field);
    while (rt_otlp_attr_next(&it, &a) == 1) {
        if (a.value.type != RT_OTLP_VAL_STRING) {
            continue;
        }
        if (!exporter->p && a.key.len == s->export_attr_len &&
            memcmp(a.key.p, s->export_attr, a.key.len) == 0) {
            *exporter = a.value.s;
        } else if (policy && !policy->p && a.key.len == s->policy_attr_len &&
                   memcmp(a.key.p, s->policy_attr, a.key.len) == 0) {
            *policy = a.value.s;
        }
    }
}

static void capture_body(sink *s, const uint8_t *pb, size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%06zu.pb", s->capture, s->captured);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(pb, 1, len, f) != len) {
        RT_LOG_RL(RT_LOG_ERROR, "sink: cannot write a captured body", "path=%s error=\"%s\"", path,
                  strerror(errno));
    } else {
        s->captured++;
        s->captured_bytes += len;
    }
    if (f != NULL) {
        fclose(f);
    }
}

/* An answer held back by --delay-ms. */
typedef struct delayed {
    struct event ev;
    sink *s;
    struct delayed *prev, *next;
    rt_otlp_call *call;
    rt_otlp_result res;
} delayed;

static void delayed_answer(evutil_socket_t fd, short what, void *arg)
{
    delayed *d = arg;
    if (d->prev) {
        d->prev->next = d->next;
    } else {
        d->s->delayed_head = d->next;
    }
    if (d->next) {
        d->next->prev = d->prev;
    }
    event_del(&d->ev);
    rt_otlp_call_respond(d->call, &d->res);
    free(d);
}

static void handler(rt_otlp_call *call, const uint8_t *pb, size_t len, size_t span_count, void *arg)
{
    sink *s = arg;
    uint64_t now = rt_clock_mono_ns();
    if (s->requests == 0) {
        s->first_ns = now;
    }
    s->requests++;
    s->bytes += len;
    s->last_ns = s->last_activity_ns = now;

    if (s->capture && s->captured < 4096 && s->captured_bytes + len <= (256u << 20)) {
        capture_body(s, pb, len);
    }
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, pb, len);
    size_t res_index = SIZE_MAX;
    rt_pb_slice res_exporter = {NULL, 0};
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        s->spans_in++;
        if (v.trace_id.len != 16 || v.span_id.len != 8) {
            s->bad_ids++;
            continue;
        }
        trace_rec *t = trace_get(s, v.trace_id.p, true);
        /* Who exported it counts for duplicates too: the same span from two samplers means
         * both held part of the trace. */
        rt_pb_slice exporter = {NULL, 0}, policy = {NULL, 0};
        find_marks(s, v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS, &exporter, &policy);
        if (!exporter.p && v.resource.p) {
            if (v.resource_index != res_index) {
                res_index = v.resource_index;
                res_exporter = (rt_pb_slice){NULL, 0};
                find_marks(s, v.resource.p, v.resource.len, RT_OTLP_RESOURCE_ATTRS, &res_exporter,
                           NULL);
            }
            exporter = res_exporter;
        }
        if (exporter.p) {
            unsigned e = name_index(&s->exporters, exporter.p, exporter.len);
            s->exporters.spans[e]++;
            if (!(t->exporters & (1ull << e))) {
                t->exporters |= 1ull << e;
                s->exporters.traces[e]++;
            }
        } else {
            s->spans_no_exporter++;
        }
        if (span_seen(s, v.trace_id.p, v.span_id.p)) {
            s->dups++;
            t->dups++;
            continue;
        }
        s->spans_unique++;
        t->spans++;
        if (policy.p) {
            unsigned p = name_index(&s->policies, policy.p, policy.len);
            s->policies.spans[p]++;
            if (!(t->policies & (1ull << p))) {
                t->policies |= 1ull << p;
                s->policies.traces[p]++;
            }
        }
    }
    rt_otlp_result res;
    rt_otlp_result_set(&res, RT_OTLP_OK, NULL);
    if (rc < 0) {
        /* The server validated the request, so this cannot happen; say so if it does. */
        RT_LOG_RL(RT_LOG_ERROR, "sink: walk failed on a validated request", "reason=\"%s\"",
                  it.err);
    }
    if (s->delay_ms == 0) {
        rt_otlp_call_respond(call, &res);
        return;
    }
    delayed *d = rt_malloc(sizeof *d);
    d->s = s;
    d->call = call;
    d->res = res;
    d->prev = NULL;
    d->next = s->delayed_head;
    if (d->next) {
        d->next->prev = d;
    }
    s->delayed_head = d;
    struct timeval tv = {(time_t)(s->delay_ms / 1000), (suseconds_t)(s->delay_ms % 1000 * 1000)};
    event_assign(&d->ev, s->base, -1, 0, delayed_answer, d);
    event_add(&d->ev, &tv);
}

/* ---- the report ------------------------------------------------------------------------- */

typedef struct cat_stat {
    char *name;
    uint64_t listed, kept, whole;
} cat_stat;

typedef struct results {
    bool have_manifest;
    cat_stat cats[32];
    size_t n_cats;
    cat_stat all;
    uint64_t manifest_spans, spans_of_manifest; /* listed spans; received distinct, capped */
    uint64_t incomplete, fragmented;
    uint64_t missing_spans; /* of kept traces */
    bool fragmentation_known;
    uint64_t unknown_traces, unknown_spans;
    double active_s, spans_per_s;
} results;

static cat_stat *cat_get(results *r, const char *name)
{
    for (size_t i = 0; i < r->n_cats; i++) {
        if (strcmp(r->cats[i].name, name) == 0) {
            return &r->cats[i];
        }
    }
    if (r->n_cats == sizeof r->cats / sizeof r->cats[0]) {
        return NULL;
    }
    cat_stat *c = &r->cats[r->n_cats++];
    memset(c, 0, sizeof *c);
    c->name = rt_strdup(name);
    return c;
}

static int parse_trace_id(const char *hex, uint8_t *out)
{
    if (!hex || strlen(hex) != 32) {
        return -1;
    }
    for (int i = 0; i < 16; i++) {
        int hi = rt_hex_digit(hex[2 * i]), lo = rt_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return -1;
        }
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

/* Join the manifest with what arrived. Returns 0, or -1 with a message on stderr. */
static int read_manifest(sink *s, results *r)
{
    FILE *f = fopen(s->manifest, "r");
    if (!f) {
        fprintf(stderr, "rt-bench-sink: cannot open manifest %s: %s\n", s->manifest,
                strerror(errno));
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    int rc = 0;
    FILE *miss = NULL;
    if (s->missing) {
        miss = fopen(s->missing, "w");
        if (!miss) {
            fprintf(stderr, "rt-bench-sink: cannot write %s: %s\n", s->missing, strerror(errno));
            fclose(f);
            return -1;
        }
    }
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (n == 1 && line[0] == '\n') {
            continue;
        }
        json_error_t jerr;
        json_t *j = json_loadb(line, (size_t)n, 0, &jerr);
        uint8_t id[16];
        json_t *spans = j ? json_object_get(j, "spans") : NULL;
        json_t *cats = j ? json_object_get(j, "categories") : NULL;
        if (!j || parse_trace_id(json_string_value(json_object_get(j, "trace_id")), id) != 0 ||
            !json_is_integer(spans) || !json_is_array(cats)) {
            fprintf(stderr,
                    "rt-bench-sink: %s:%lu: not a manifest record (want trace_id as 32 hex "
                    "digits, spans, categories)%s%s\n",
                    s->manifest, lineno, j ? "" : ": ", j ? "" : jerr.text);
            json_decref(j);
            rc = -1;
            break;
        }
        uint64_t listed = (uint64_t)json_integer_value(spans);
        trace_rec *t = trace_get(s, id, false);
        bool kept = t && t->spans > 0;
        bool whole = kept && t->spans >= listed;
        r->manifest_spans += listed;
        if (t) {
            t->in_manifest = 1;
            r->spans_of_manifest += t->spans < listed ? t->spans : listed;
        }
        r->all.listed++;
        r->all.kept += kept;
        r->all.whole += whole;
        if (kept && !whole) {
            r->incomplete++;
            r->missing_spans += listed - t->spans;
        }
        if (miss && !whole) {
            char hex[33];
            for (int i = 0; i < 16; i++) {
                snprintf(hex + 2 * i, 3, "%02x", id[i]);
            }
            fprintf(miss, "%s %llu %u\n", hex, (unsigned long long)listed, t ? t->spans : 0);
        }
        if (kept && __builtin_popcountll(t->exporters) > 1) {
            r->fragmented++;
        }
        for (size_t i = 0; i < json_array_size(cats); i++) {
            const char *name = json_string_value(json_array_get(cats, i));
            cat_stat *c = name ? cat_get(r, name) : NULL;
            if (c) {
                c->listed++;
                c->kept += kept;
                c->whole += whole;
            }
        }
        json_decref(j);
    }
    free(line);
    fclose(f);
    if (miss && fclose(miss) != 0) {
        fprintf(stderr, "rt-bench-sink: cannot write %s\n", s->missing);
        rc = -1;
    }
    return rc;
}

static void compute(sink *s, results *r)
{
    r->fragmentation_known = s->exporters.n > 0;
    if (!r->have_manifest) {
        for (size_t i = 0; i < s->traces_cap; i++) {
            trace_rec *t = &s->traces[i];
            if (t->used && __builtin_popcountll(t->exporters) > 1) {
                r->fragmented++;
            }
        }
    }
    for (size_t i = 0; i < s->traces_cap; i++) {
        trace_rec *t = &s->traces[i];
        if (t->used && !t->in_manifest) {
            r->unknown_traces++;
            r->unknown_spans += t->spans;
        }
    }
    r->active_s = s->requests > 1 ? (double)(s->last_ns - s->first_ns) / 1e9 : 0;
    r->spans_per_s = r->active_s > 0 ? (double)s->spans_in / r->active_s : 0;
}

static double ratio(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 1.0;
}

/* The value of assertion metric `name`; false when it has no value (e.g. a category absent
 * from the manifest, or no manifest for a manifest metric). */
static bool metric(const sink *s, const results *r, const char *name, double *out)
{
    if (strncmp(name, "recall.", 7) == 0 || strncmp(name, "recall_whole.", 13) == 0) {
        bool whole = name[6] == '_';
        const char *cat = name + (whole ? 13 : 7);
        const cat_stat *c = strcmp(cat, "all") == 0 ? &r->all : NULL;
        for (size_t i = 0; !c && i < r->n_cats; i++) {
            if (strcmp(r->cats[i].name, cat) == 0) {
                c = &r->cats[i];
            }
        }
        if (!c || !r->have_manifest || c->listed == 0) {
            return false;
        }
        *out = ratio(whole ? c->whole : c->kept, c->listed);
        return true;
    }
    struct {
        const char *name;
        bool needs_manifest;
        double v;
    } m[] = {
        {"incomplete", true, (double)r->incomplete},
        {"missing_spans", true, (double)r->missing_spans},
        {"fragmented", false, (double)r->fragmented},
        {"duplicates", false, (double)s->dups},
        {"completeness", true, ratio(r->all.whole, r->all.kept)},
        {"retention.traces", true, ratio(r->all.kept, r->all.listed)},
        {"retention.spans", true, ratio(r->spans_of_manifest, r->manifest_spans)},
        {"unknown_traces", true, (double)r->unknown_traces},
        {"spans", false, (double)s->spans_in},
        {"traces", false, (double)s->traces_n},
        {"spans_per_s", false, r->spans_per_s},
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        if (strcmp(m[i].name, name) == 0) {
            if (m[i].needs_manifest && !r->have_manifest) {
                return false;
            }
            *out = m[i].v;
            return true;
        }
    }
    return false;
}

static bool metric_name_ok(const char *name)
{
    static const char *const known[] = {
        "incomplete",       "fragmented",      "duplicates",     "completeness",
        "retention.traces", "retention.spans", "unknown_traces", "spans",
        "traces",           "spans_per_s",     "missing_spans"};
    if ((strncmp(name, "recall.", 7) == 0 && name[7]) ||
        (strncmp(name, "recall_whole.", 13) == 0 && name[13])) {
        return true;
    }
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++) {
        if (strcmp(known[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static json_t *names_json(const name_set *ns)
{
    json_t *o = json_object();
    for (size_t i = 0; i < ns->n; i++) {
        json_object_set_new(o, ns->names[i],
                            json_pack("{s:I,s:I}", "spans", (json_int_t)ns->spans[i], "traces",
                                      (json_int_t)ns->traces[i]));
    }
    return o;
}

static json_t *cat_json(const cat_stat *c)
{
    return json_pack("{s:I,s:I,s:I,s:f,s:f}", "traces", (json_int_t)c->listed, "kept",
                     (json_int_t)c->kept, "kept_whole", (json_int_t)c->whole, "recall",
                     ratio(c->kept, c->listed), "recall_whole", ratio(c->whole, c->listed));
}

static int write_json(const sink *s, const results *r)
{
    json_t *root = json_object();
    json_object_set_new(root, "requests", json_integer((json_int_t)s->requests));
    json_object_set_new(root, "bytes", json_integer((json_int_t)s->bytes));
    json_object_set_new(root, "spans_received", json_integer((json_int_t)s->spans_in));
    json_object_set_new(root, "spans_unique", json_integer((json_int_t)s->spans_unique));
    json_object_set_new(root, "duplicates", json_integer((json_int_t)s->dups));
    json_object_set_new(root, "bad_ids", json_integer((json_int_t)s->bad_ids));
    json_object_set_new(root, "traces_received", json_integer((json_int_t)s->traces_n));
    json_object_set_new(root, "active_s", json_real(r->active_s));
    json_object_set_new(root, "spans_per_s", json_real(r->spans_per_s));
    json_object_set_new(root, "export_attr", json_string(s->export_attr));
    if (r->fragmentation_known) {
        json_object_set_new(root, "fragmented", json_integer((json_int_t)r->fragmented));
    } else {
        json_object_set_new(root, "fragmented", json_string("unknown"));
    }
    json_object_set_new(root, "spans_without_exporter",
                        json_integer((json_int_t)s->spans_no_exporter));
    json_object_set_new(root, "exporters", names_json(&s->exporters));
    json_object_set_new(root, "policies", names_json(&s->policies));
    if (r->have_manifest) {
        json_t *m = json_object();
        json_object_set_new(m, "traces", json_integer((json_int_t)r->all.listed));
        json_object_set_new(m, "spans", json_integer((json_int_t)r->manifest_spans));
        json_object_set_new(root, "manifest", m);
        json_object_set_new(root, "traces_kept", json_integer((json_int_t)r->all.kept));
        json_object_set_new(root, "traces_kept_whole", json_integer((json_int_t)r->all.whole));
        json_object_set_new(root, "incomplete", json_integer((json_int_t)r->incomplete));
        json_object_set_new(root, "missing_spans", json_integer((json_int_t)r->missing_spans));
        json_object_set_new(root, "completeness", json_real(ratio(r->all.whole, r->all.kept)));
        json_t *ret = json_object();
        json_object_set_new(ret, "traces", json_real(ratio(r->all.kept, r->all.listed)));
        json_object_set_new(ret, "spans",
                            json_real(ratio(r->spans_of_manifest, r->manifest_spans)));
        json_object_set_new(root, "retention", ret);
        json_t *cats = json_object();
        json_object_set_new(cats, "all", cat_json(&r->all));
        for (size_t i = 0; i < r->n_cats; i++) {
            json_object_set_new(cats, r->cats[i].name, cat_json(&r->cats[i]));
        }
        json_object_set_new(root, "categories", cats);
        json_object_set_new(root, "unknown_traces", json_integer((json_int_t)r->unknown_traces));
        json_object_set_new(root, "unknown_spans", json_integer((json_int_t)r->unknown_spans));
    }
    int rc = json_dump_file(root, s->report, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0) {
        fprintf(stderr, "rt-bench-sink: cannot write report %s\n", s->report);
        return -1;
    }
    return 0;
}

static void print_table(const sink *s, const results *r)
{
    printf("sink: %llu spans (%llu distinct, %llu duplicates) in %llu requests, %zu traces; "
           "%.2f s active, %.0f spans/s\n",
           (unsigned long long)s->spans_in, (unsigned long long)s->spans_unique,
           (unsigned long long)s->dups, (unsigned long long)s->requests, s->traces_n, r->active_s,
           r->spans_per_s);
    if (r->have_manifest) {
        printf("%-14s %9s %9s %9s %8s %8s\n", "category", "traces", "kept", "whole", "recall",
               "whole%");
        const cat_stat *rows[33];
        size_t n = 0;
        rows[n++] = &r->all;
        for (size_t i = 0; i < r->n_cats; i++) {
            rows[n++] = &r->cats[i];
        }
        for (size_t i = 0; i < n; i++) {
            const cat_stat *c = rows[i];
            printf("%-14s %9llu %9llu %9llu %7.1f%% %7.1f%%\n", i == 0 ? "all" : c->name,
                   (unsigned long long)c->listed, (unsigned long long)c->kept,
                   (unsigned long long)c->whole, 100 * ratio(c->kept, c->listed),
                   100 * ratio(c->whole, c->listed));
        }
        printf("retention: %.1f%% of traces, %.1f%% of spans; completeness %.1f%%; incomplete "
               "%llu (%llu spans missing); unknown traces %llu\n",
               100 * ratio(r->all.kept, r->all.listed),
               100 * ratio(r->spans_of_manifest, r->manifest_spans),
               100 * ratio(r->all.whole, r->all.kept), (unsigned long long)r->incomplete,
               (unsigned long long)r->missing_spans, (unsigned long long)r->unknown_traces);
    }
    if (r->fragmentation_known) {
        printf("fragmented: %llu (exporters by %s:", (unsigned long long)r->fragmented,
               s->export_attr);
        for (size_t i = 0; i < s->exporters.n; i++) {
            printf(" %s=%llu", s->exporters.names[i], (unsigned long long)s->exporters.spans[i]);
        }
        printf(")\n");
    } else {
        printf("fragmented: unknown (no span carried %s)\n", s->export_attr);
    }
    if (s->policies.n > 0) {
        printf("policies (%s, traces):", s->policy_attr);
        for (size_t i = 0; i < s->policies.n; i++) {
            printf(" %s=%llu", s->policies.names[i], (unsigned long long)s->policies.traces[i]);
        }
        printf("\n");
    }
    fflush(stdout);
}

/* ---- assertions ------------------------------------------------------------------------- */

typedef struct assertion {
    char name[64];
    char op[3];
    double value;
} assertion;

/* Parse "a<1,b>0,c<=0.5" into `out`. Returns the count, or -1 with a message on stderr. */
static int parse_asserts(const char *spec, assertion *out, size_t max)
{
    char *copy = rt_strdup(spec), *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ') {
            tok++;
        }
        size_t k = strcspn(tok, "<>=");
        char *end;
        if ((size_t)n == max || k == 0 || k >= sizeof out->name || !tok[k]) {
            goto bad;
        }
        assertion *a = &out[n];
        memcpy(a->name, tok, k);
        a->name[k] = '\0';
        size_t oplen = (tok[k + 1] == '=') ? 2 : 1;
        memcpy(a->op, tok + k, oplen);
        a->op[oplen] = '\0';
        if (strcmp(a->op, "<") && strcmp(a->op, ">") && strcmp(a->op, "<=") &&
            strcmp(a->op, ">=") && strcmp(a->op, "==")) {
            goto bad;
        }
        errno = 0;
        a->value = strtod(tok + k + oplen, &end);
        if (errno || end == tok + k + oplen || *end) {
            goto bad;
        }
        if (!metric_name_ok(a->name)) {
            fprintf(stderr,
                    "rt-bench-sink: --fail-if: unknown metric \"%s\" (recall.<category>, "
                    "recall_whole.<category>, incomplete, missing_spans, fragmented, duplicates, "
                    "completeness, retention.traces, retention.spans, unknown_traces, spans, "
                    "traces, spans_per_s)\n",
                    a->name);
            free(copy);
            return -1;
        }
        n++;
        continue;
    bad:
        fprintf(stderr, "rt-bench-sink: --fail-if: cannot parse \"%s\" (want METRIC<VALUE, ...)\n",
                tok);
        free(copy);
        return -1;
    }
    free(copy);
    return n;
}

static bool holds(double v, const char *op, double x)
{
    if (strcmp(op, "<") == 0) {
        return v < x;
    }
    if (strcmp(op, ">") == 0) {
        return v > x;
    }
    if (strcmp(op, "<=") == 0) {
        return v <= x;
    }
    if (strcmp(op, ">=") == 0) {
        return v >= x;
    }
    return v == x;
}

/* ---- main ------------------------------------------------------------------------------- */

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    sink *s = arg;
    event_base_loopexit(s->base, NULL);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    sink *s = arg;
    if ((double)(rt_clock_mono_ns() - s->last_activity_ns) / 1e9 >= s->idle_s) {
        event_base_loopexit(s->base, NULL);
    }
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: rt-bench-sink [--http HOST:PORT]... [--grpc HOST:PORT]... [--manifest FILE]\n"
            "         [--report FILE] [--expect-export-attr KEY] [--policy-attr KEY]\n"
            "         [--idle S] [--fail-if \"recall.error<1,incomplete>0,...\"] [--missing FILE]\n"
            "         [--delay-ms MS] [--capture DIR]\n");
}

int main(int argc, char **argv)
{
    sink s;
    memset(&s, 0, sizeof s);
    s.export_attr = "ringtail.sampler.id";
    s.policy_attr = "tailsampling.policy";
    const char *http[MAX_LISTEN], *grpc[MAX_LISTEN];
    size_t nh = 0, ng = 0;
    assertion asserts[MAX_ASSERT];
    int n_asserts = 0;
    int rc = 2;
    results r;
    memset(&r, 0, sizeof r);

    enum {
        O_HTTP = 256,
        O_GRPC,
        O_MANIFEST,
        O_REPORT,
        O_EXPORT,
        O_POLICY,
        O_IDLE,
        O_FAIL,
        O_MISSING,
        O_DELAY,
        O_CAPTURE,
        O_HELP
    };
    static const struct option longopts[] = {
        {"http", required_argument, NULL, O_HTTP},
        {"grpc", required_argument, NULL, O_GRPC},
        {"manifest", required_argument, NULL, O_MANIFEST},
        {"report", required_argument, NULL, O_REPORT},
        {"expect-export-attr", required_argument, NULL, O_EXPORT},
        {"policy-attr", required_argument, NULL, O_POLICY},
        {"idle", required_argument, NULL, O_IDLE},
        {"missing", required_argument, NULL, O_MISSING},
        {"fail-if", required_argument, NULL, O_FAIL},
        {"delay-ms", required_argument, NULL, O_DELAY},
        {"capture", required_argument, NULL, O_CAPTURE},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    char *end;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_HTTP:
        case O_GRPC:
            if ((c == O_HTTP ? nh : ng) == MAX_LISTEN) {
                fprintf(stderr, "rt-bench-sink: at most %d listeners per protocol\n", MAX_LISTEN);
                return 2;
            }
            if (c == O_HTTP) {
                http[nh++] = optarg;
            } else {
                grpc[ng++] = optarg;
            }
            break;
        case O_MISSING:
            s.missing = optarg;
            break;
        case O_MANIFEST:
            s.manifest = optarg;
            break;
        case O_REPORT:
            s.report = optarg;
            break;
        case O_EXPORT:
            s.export_attr = optarg;
            break;
        case O_POLICY:
            s.policy_attr = optarg;
            break;
        case O_IDLE:
            errno = 0;
            s.idle_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !(s.idle_s > 0)) {
                fprintf(stderr, "rt-bench-sink: --idle: \"%s\" is not a positive number\n", optarg);
                return 2;
            }
            break;
        case O_CAPTURE:
            s.capture = optarg;
            break;
        case O_DELAY: {
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (errno || end == optarg || *end || v > 60000) {
                fprintf(stderr, "rt-bench-sink: --delay-ms: \"%s\" is not 0..60000\n", optarg);
                return 2;
            }
            s.delay_ms = (uint32_t)v;
            break;
        }
        case O_FAIL: {
            int k = parse_asserts(optarg, asserts + n_asserts, MAX_ASSERT - (size_t)n_asserts);
            if (k < 0) {
                return 2;
            }
            n_asserts += k;
            break;
        }
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc || nh + ng == 0) {
        fprintf(stderr, "rt-bench-sink: %s\n",
                optind < argc ? "unexpected argument" : "give at least one --http or --grpc");
        usage(stderr);
        return 2;
    }
    s.export_attr_len = strlen(s.export_attr);
    s.policy_attr_len = strlen(s.policy_attr);

    rt_process_init();
    s.base = event_base_new();
    if (!s.base) {
        fprintf(stderr, "rt-bench-sink: cannot create an event loop\n");
        goto fail;
    }
    rt_otlp_server_opts so;
    memset(&so, 0, sizeof so);
    so.handler = handler;
    so.handler_arg = &s;
    char err[256];
    for (size_t i = 0; i < nh; i++) {
        s.http[i] = rt_http_server_new(s.base, http[i], &so, err, sizeof err);
        if (!s.http[i]) {
            fprintf(stderr, "rt-bench-sink: --http %s: %s\n", http[i], err);
            goto fail;
        }
        s.n_http++;
        fprintf(stderr, "http_port=%u\n", rt_http_server_port(s.http[i]));
    }
    for (size_t i = 0; i < ng; i++) {
        s.grpc[i] = rt_grpc_server_new(s.base, grpc[i], &so, err, sizeof err);
        if (!s.grpc[i]) {
            fprintf(stderr, "rt-bench-sink: --grpc %s: %s\n", grpc[i], err);
            goto fail;
        }
        s.n_grpc++;
        fprintf(stderr, "grpc_port=%u\n", rt_grpc_server_port(s.grpc[i]));
    }
    fflush(stderr);
    s.sig_int = evsignal_new(s.base, SIGINT, stop_cb, &s);
    s.sig_term = evsignal_new(s.base, SIGTERM, stop_cb, &s);
    evsignal_add(s.sig_int, NULL);
    evsignal_add(s.sig_term, NULL);
    s.last_activity_ns = rt_clock_mono_ns();
    if (s.idle_s > 0) {
        s.idle_ev = event_new(s.base, -1, EV_PERSIST, idle_cb, &s);
        struct timeval tv = {0, 100000};
        event_add(s.idle_ev, &tv);
    }
    event_base_dispatch(s.base);

    rc = 0;
    if (s.manifest) {
        r.have_manifest = true;
        if (read_manifest(&s, &r) != 0) {
            rc = 2;
            goto fail;
        }
    }
    compute(&s, &r);
    if (s.report && write_json(&s, &r) != 0) {
        rc = 2;
    }
    print_table(&s, &r);
    for (int i = 0; i < n_asserts; i++) {
        double v;
        if (!metric(&s, &r, asserts[i].name, &v)) {
            printf("fail-if %s%s%g: no value (skipped)\n", asserts[i].name, asserts[i].op,
                   asserts[i].value);
            continue;
        }
        if (holds(v, asserts[i].op, asserts[i].value)) {
            printf("FAIL: %s = %g (fail-if %s%s%g)\n", asserts[i].name, v, asserts[i].name,
                   asserts[i].op, asserts[i].value);
            rc = rc ? rc : 1;
        }
    }
    fflush(stdout);
fail:
    while (s.delayed_head) {
        delayed_answer(-1, 0, s.delayed_head);
    }
    for (size_t i = 0; i < s.n_http; i++) {
        rt_http_server_free(s.http[i]);
    }
    for (size_t i = 0; i < s.n_grpc; i++) {
        rt_grpc_server_free(s.grpc[i]);
    }
    if (s.sig_int) {
        event_free(s.sig_int);
        event_free(s.sig_term);
    }
    if (s.idle_ev) {
        event_free(s.idle_ev);
    }
    if (s.base) {
        event_base_free(s.base);
    }
    for (size_t i = 0; i < r.n_cats; i++) {
        free(r.cats[i].name);
    }
    name_set_free(&s.exporters);
    name_set_free(&s.policies);
    free(s.traces);
    free(s.span_keys);
    return rc;
}
