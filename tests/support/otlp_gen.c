/* otlp_gen.c - deterministic random ExportTraceServiceRequest generator (see otlp_gen.h). */
#include "otlp_gen.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest gen_req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans gen_rs;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans gen_ss;
typedef Opentelemetry__Proto__Trace__V1__Span gen_span;
typedef Opentelemetry__Proto__Trace__V1__Span__Event gen_event;
typedef Opentelemetry__Proto__Trace__V1__Span__Link gen_link;
typedef Opentelemetry__Proto__Trace__V1__Status gen_status;
typedef Opentelemetry__Proto__Resource__V1__Resource gen_resource;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope gen_scope;
typedef Opentelemetry__Proto__Common__V1__KeyValue gen_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue gen_any;
typedef Opentelemetry__Proto__Common__V1__ArrayValue gen_array;
typedef Opentelemetry__Proto__Common__V1__KeyValueList gen_kvlist;

/* PRNG state lives in this struct, passed down explicitly: no global state. */
typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next_u64(rng *r)
{
    /* splitmix64 */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform-ish integer in [lo, hi]. */
static uint32_t range(rng *r, uint32_t lo, uint32_t hi)
{
    return lo + (uint32_t)(next_u64(r) % ((uint64_t)hi - lo + 1));
}

/* True with probability num/den. */
static int chance(rng *r, uint32_t num, uint32_t den)
{
    return (next_u64(r) % den) < num;
}

/* A random valid UTF-8 string of 0..maxlen visible characters (some multi-byte). */
static char *gen_string(rng *r, uint32_t minlen, uint32_t maxlen)
{
    static const char *const multi[] = {
        "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x90\xbf", "\"", "\\", "/", "\n", "\t"};
    uint32_t n = range(r, minlen, maxlen);
    char *s = rt_malloc((size_t)n * 4 + 1);
    size_t o = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (chance(r, 1, 12)) {
            const char *m = multi[range(r, 0, sizeof(multi) / sizeof(multi[0]) - 1)];
            size_t ml = strlen(m);
            memcpy(s + o, m, ml);
            o += ml;
        } else {
            s[o++] = (char)range(r, 0x20, 0x7e);
        }
    }
    s[o] = '\0';
    return s;
}

/* Pick one of a few realistic strings or a random one (realistic keys help policy tests). */
static char *gen_key(rng *r)
{
    static const char *const keys[] = {"service.name",
                                       "http.method",
                                       "http.status_code",
                                       "error",
                                       "db.system",
                                       "peer.service",
                                       "",
                                       "tailsampling.policy"};
    if (chance(r, 1, 2)) {
        return rt_strdup(keys[range(r, 0, sizeof(keys) / sizeof(keys[0]) - 1)]);
    }
    return gen_string(r, 1, 16);
}

static ProtobufCBinaryData gen_bytes(rng *r, uint32_t minlen, uint32_t maxlen)
{
    ProtobufCBinaryData b;
    b.len = range(r, minlen, maxlen);
    b.data = b.len ? rt_malloc(b.len) : NULL;
    for (size_t i = 0; i < b.len; i++) {
        b.data[i] = (uint8_t)next_u64(r);
    }
    return b;
}

/* Fixed-size id; with probability absent_num/absent_den it is absent (length 0). */
static ProtobufCBinaryData gen_id(rng *r, size_t size, uint32_t absent_num, uint32_t absent_den)
{
    ProtobufCBinaryData b = {0, NULL};
    if (absent_num && chance(r, absent_num, absent_den)) {
        return b;
    }
    b.len = size;
    b.data = rt_malloc(size);
    for (size_t i = 0; i < size; i++) {
        b.data[i] = (uint8_t)next_u64(r);
    }
    return b;
}

static gen_any *gen_anyvalue(rng *r, int depth);

static gen_kv *gen_keyvalue(rng *r, int depth)
{
    gen_kv *kv = rt_malloc(sizeof(*kv));
    opentelemetry__proto__common__v1__key_value__init(kv);
    kv->key = gen_key(r);
    /* A KeyValue without a value is legal on the wire; keep it rare. */
    kv->value = chance(r, 1, 25) ? NULL : gen_anyvalue(r, depth);
    return kv;
}

static gen_kv **gen_keyvalues(rng *r, size_t *n, uint32_t max, int depth)
{
    *n = range(r, 0, max);
    if (*n == 0) {
        return NULL;
    }
    gen_kv **kvs = rt_calloc(*n, sizeof(*kvs));
    for (size_t i = 0; i < *n; i++) {
        kvs[i] = gen_keyvalue(r, depth);
    }
    return kvs;
}

static double gen_double(rng *r)
{
    switch (range(r, 0, 4)) {
    case 0:
        return 0.0;
    case 1:
        return -1.5;
    case 2:
        return (double)(int64_t)next_u64(r) / 1024.0;
    case 3:
        return 1e300 * ((double)range(r, 1, 9));
    default:
        return (double)range(r, 0, 1000000) / 1000.0;
    }
}

static gen_any *gen_anyvalue(rng *r, int depth)
{
    gen_any *v = rt_malloc(sizeof(*v));
    opentelemetry__proto__common__v1__any_value__init(v);
    /* Nesting only below depth 3; case 0 is sometimes NOT_SET (an empty AnyValue). */
    uint32_t kind = range(r, 0, 7);
    if (depth >= 3 && (kind == 5 || kind == 6)) {
        kind = 1;
    }
    switch (kind) {
    case 0:
        if (chance(r, 1, 3)) {
            break; /* NOT_SET */
        }
        /* fall through */
    case 1:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        v->string_value = gen_string(r, 0, 24);
        break;
    case 2:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
        v->bool_value = (protobuf_c_boolean)range(r, 0, 1);
        break;
    case 3:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
        switch (range(r, 0, 3)) {
        case 0:
            v->int_value = 0;
            break;
        case 1:
            v->int_value = -(int64_t)range(r, 1, 1000);
            break;
        case 2:
            v->int_value = INT64_MIN;
            break;
        default:
            v->int_value = (int64_t)next_u64(r);
            break;
        }
        break;
    case 4:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
        v->double_value = gen_double(r);
        break;
    case 5: {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
        gen_array *a = rt_malloc(sizeof(*a));
        opentelemetry__proto__common__v1__array_value__init(a);
        a->n_values = range(r, 0, 4);
        a->values = a->n_values ? rt_calloc(a->n_values, sizeof(*a->values)) : NULL;
        for (size_t i = 0; i < a->n_values; i++) {
            a->values[i] = gen_anyvalue(r, depth + 1);
        }
        v->array_value = a;
        break;
    }
    case 6: {
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
        gen_kvlist *l = rt_malloc(sizeof(*l));
        opentelemetry__proto__common__v1__key_value_list__init(l);
        l->values = gen_keyvalues(r, &l->n_values, 4, depth + 1);
        v->kvlist_value = l;
        break;
    }
    default:
        v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
        v->bytes_value = gen_bytes(r, 0, 12);
        break;
    }
    return v;
}

static char *gen_trace_state(rng *r)
{
    switch (range(r, 0, 4)) {
    case 0:
        return rt_strdup("ot=th:c");
    case 1:
        return rt_strdup("ot=th:0;rv:abcdef01234567,vendor=x");
    case 2:
        return gen_string(r, 1, 20);
    default:
        return rt_strdup("");
    }
}

static gen_event *gen_event_new(rng *r)
{
    gen_event *e = rt_malloc(sizeof(*e));
    opentelemetry__proto__trace__v1__span__event__init(e);
    e->time_unix_nano = chance(r, 1, 8) ? 0 : next_u64(r);
    e->name = gen_string(r, 0, 12);
    e->attributes = gen_keyvalues(r, &e->n_attributes, 3, 0);
    e->dropped_attributes_count = chance(r, 1, 4) ? range(r, 1, 300) : 0;
    return e;
}

static gen_link *gen_link_new(rng *r)
{
    gen_link *l = rt_malloc(sizeof(*l));
    opentelemetry__proto__trace__v1__span__link__init(l);
    l->trace_id = gen_id(r, 16, 1, 10);
    l->span_id = gen_id(r, 8, 1, 10);
    l->trace_state = gen_trace_state(r);
    l->attributes = gen_keyvalues(r, &l->n_attributes, 3, 0);
    l->dropped_attributes_count = chance(r, 1, 4) ? range(r, 1, 300) : 0;
    static const uint32_t flags[] = {0, 1, 0x100, 0x301, 0x201};
    l->flags = flags[range(r, 0, 4)];
    return l;
}

static gen_span *gen_span_new(rng *r)
{
    gen_span *s = rt_malloc(sizeof(*s));
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = gen_id(r, 16, 1, 40);
    s->span_id = gen_id(r, 8, 1, 40);
    s->trace_state = gen_trace_state(r);
    s->parent_span_id = gen_id(r, 8, 1, 3);
    s->name = gen_string(r, 0, 20);
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)range(r, 0, 5);
    if (!chance(r, 1, 20)) {
        s->start_time_unix_nano = 1700000000000000000ULL + (next_u64(r) % 1000000000000ULL);
        s->end_time_unix_nano = s->start_time_unix_nano + range(r, 0, 2000000000);
    }
    s->attributes = gen_keyvalues(r, &s->n_attributes, 8, 0);
    s->dropped_attributes_count = chance(r, 1, 5) ? range(r, 1, 100000) : 0;
    s->n_events = range(r, 0, 3);
    s->events = s->n_events ? rt_calloc(s->n_events, sizeof(*s->events)) : NULL;
    for (size_t i = 0; i < s->n_events; i++) {
        s->events[i] = gen_event_new(r);
    }
    s->dropped_events_count = chance(r, 1, 5) ? range(r, 1, 1000) : 0;
    s->n_links = range(r, 0, 2);
    s->links = s->n_links ? rt_calloc(s->n_links, sizeof(*s->links)) : NULL;
    for (size_t i = 0; i < s->n_links; i++) {
        s->links[i] = gen_link_new(r);
    }
    s->dropped_links_count = chance(r, 1, 5) ? range(r, 1, 1000) : 0;
    if (!chance(r, 1, 4)) {
        gen_status *st = rt_malloc(sizeof(*st));
        opentelemetry__proto__trace__v1__status__init(st);
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)range(r, 0, 2);
        st->message = chance(r, 1, 2) ? gen_string(r, 1, 30) : rt_strdup("");
        s->status = st;
    }
    static const uint32_t flags[] = {0, 1, 0x100, 0x101, 0x301, 0x300};
    s->flags = flags[range(r, 0, 5)];
    return s;
}

static gen_ss *gen_scope_spans(rng *r)
{
    gen_ss *ss = rt_malloc(sizeof(*ss));
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    if (!chance(r, 1, 6)) {
        gen_scope *sc = rt_malloc(sizeof(*sc));
        opentelemetry__proto__common__v1__instrumentation_scope__init(sc);
        sc->name = chance(r, 4, 5) ? gen_string(r, 1, 20) : rt_strdup("");
        sc->version = chance(r, 1, 2)
                          ? rt_sprintf("%u.%u.%u", range(r, 0, 3), range(r, 0, 20), range(r, 0, 9))
                          : rt_strdup("");
        sc->attributes = gen_keyvalues(r, &sc->n_attributes, 3, 0);
        sc->dropped_attributes_count = chance(r, 1, 5) ? range(r, 1, 50) : 0;
        ss->scope = sc;
    }
    ss->schema_url =
        chance(r, 1, 2) ? rt_strdup("https://opentelemetry.io/schemas/1.21.0") : rt_strdup("");
    ss->n_spans = range(r, 0, 20);
    ss->spans = ss->n_spans ? rt_calloc(ss->n_spans, sizeof(*ss->spans)) : NULL;
    for (size_t i = 0; i < ss->n_spans; i++) {
        ss->spans[i] = gen_span_new(r);
    }
    return ss;
}

static gen_rs *gen_resource_spans(rng *r)
{
    gen_rs *rs = rt_malloc(sizeof(*rs));
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    if (!chance(r, 1, 8)) {
        gen_resource *res = rt_malloc(sizeof(*res));
        opentelemetry__proto__resource__v1__resource__init(res);
        res->attributes = gen_keyvalues(r, &res->n_attributes, 5, 0);
        res->dropped_attributes_count = chance(r, 1, 5) ? range(r, 1, 50) : 0;
        rs->resource = res;
    }
    rs->schema_url =
        chance(r, 1, 2) ? rt_strdup("https://opentelemetry.io/schemas/1.24.0") : rt_strdup("");
    rs->n_scope_spans = range(r, 1, 3);
    rs->scope_spans = rt_calloc(rs->n_scope_spans, sizeof(*rs->scope_spans));
    for (size_t i = 0; i < rs->n_scope_spans; i++) {
        rs->scope_spans[i] = gen_scope_spans(r);
    }
    return rs;
}

gen_req *rt_gen_request(uint64_t seed)
{
    rng r = {seed ^ 0x5deece66dULL};
    gen_req *req = rt_malloc(sizeof(*req));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(req);
    req->n_resource_spans = range(&r, 1, 4);
    req->resource_spans = rt_calloc(req->n_resource_spans, sizeof(*req->resource_spans));
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        req->resource_spans[i] = gen_resource_spans(&r);
    }
    return req;
}

/* ---- freeing: every string and bytes buffer above is heap-owned ---------------------------- */

static void free_kv(gen_kv *kv);

static void free_any(gen_any *v)
{
    if (v == NULL) {
        return;
    }
    switch (v->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        free(v->string_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        free(v->bytes_value.data);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        for (size_t i = 0; i < v->array_value->n_values; i++) {
            free_any(v->array_value->values[i]);
        }
        free(v->array_value->values);
        free(v->array_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        for (size_t i = 0; i < v->kvlist_value->n_values; i++) {
            free_kv(v->kvlist_value->values[i]);
        }
        free(v->kvlist_value->values);
        free(v->kvlist_value);
        break;
    default:
        break;
    }
    free(v);
}

static void free_kv(gen_kv *kv)
{
    free(kv->key);
    free_any(kv->value);
    free(kv);
}

static void free_kvs(gen_kv **kvs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free_kv(kvs[i]);
    }
    free(kvs);
}

static void free_span(gen_span *s)
{
    free(s->trace_id.data);
    free(s->span_id.data);
    free(s->trace_state);
    free(s->parent_span_id.data);
    free(s->name);
    free_kvs(s->attributes, s->n_attributes);
    for (size_t i = 0; i < s->n_events; i++) {
        free(s->events[i]->name);
        free_kvs(s->events[i]->attributes, s->events[i]->n_attributes);
        free(s->events[i]);
    }
    free(s->events);
    for (size_t i = 0; i < s->n_links; i++) {
        gen_link *l = s->links[i];
        free(l->trace_id.data);
        free(l->span_id.data);
        free(l->trace_state);
        free_kvs(l->attributes, l->n_attributes);
        free(l);
    }
    free(s->links);
    if (s->status) {
        free(s->status->message);
        free(s->status);
    }
    free(s);
}

void rt_gen_free(gen_req *req)
{
    if (req == NULL) {
        return;
    }
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        gen_rs *rs = req->resource_spans[i];
        if (rs->resource) {
            free_kvs(rs->resource->attributes, rs->resource->n_attributes);
            free(rs->resource);
        }
        free(rs->schema_url);
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            gen_ss *ss = rs->scope_spans[j];
            if (ss->scope) {
                free(ss->scope->name);
                free(ss->scope->version);
                free_kvs(ss->scope->attributes, ss->scope->n_attributes);
                free(ss->scope);
            }
            free(ss->schema_url);
            for (size_t k = 0; k < ss->n_spans; k++) {
                free_span(ss->spans[k]);
            }
            free(ss->spans);
            free(ss);
        }
        free(rs->scope_spans);
        free(rs);
    }
    free(req->resource_spans);
    free(req);
}

uint8_t *rt_gen_pack(const gen_req *req, size_t *len)
{
    size_t n =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            req);
    uint8_t *out = rt_malloc(n);
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(req, out);
    return out;
}

Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *
rt_gen_unpack(const uint8_t *buf, size_t len)
{
    return opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, len, buf);
}

void rt_gen_unpack_free(Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *req)
{
    if (req != NULL) {
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            req, NULL);
    }
}
