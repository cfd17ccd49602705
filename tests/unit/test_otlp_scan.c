/* test_otlp_scan.c - the zero-allocation OTLP walker against protobuf-c's full decode, plus
 * truncation, garbage, wrong wire types, proto3 merge rules and the validator's depth limit;
 * and the router's one-walk split (otlp_split) against the two-walk path it replaced (structural
 * check, then trace-id walk + per-span encoding). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "otlp_encode.h"
#include "otlp_gen.h"
#include "otlp_scan.h"
#include "otlp_split.h"
#include "pb.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;
typedef Opentelemetry__Proto__Common__V1__AnyValue Any;

/* protobuf-c hands strings out NUL-terminated, so one with an embedded NUL (hostile input)
 * reads shorter; compare up to the first NUL then. */
static int slice_is_str(rt_pb_slice s, const char *str)
{
    size_t n = strlen(str);
    size_t sl = s.len;
    const uint8_t *nul = s.len ? memchr(s.p, 0, s.len) : NULL;
    if (nul) {
        sl = (size_t)(nul - s.p);
    }
    return sl == n && (n == 0 || memcmp(s.p, str, n) == 0);
}

static int slice_is_bin(rt_pb_slice s, ProtobufCBinaryData b)
{
    return s.len == b.len && (b.len == 0 || memcmp(s.p, b.data, b.len) == 0);
}

/* ---- comparison against protobuf-c's decode ------------------------------------------------ */

static void compare_kvs(const uint8_t *msg, size_t len, uint32_t field, KV **kvs, size_t n);

static void compare_value(const rt_otlp_value *v, const Any *e)
{
    if (e == NULL || e->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
        assert_int_equal(v->type, RT_OTLP_VAL_NONE);
        return;
    }
    assert_int_equal((int)v->type, (int)e->value_case);
    switch (e->value_case) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        assert_true(slice_is_str(v->s, e->string_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        assert_int_equal(v->b, e->bool_value ? 1 : 0);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        assert_true(v->i == e->int_value);
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        assert_memory_equal(&v->d, &e->double_value, sizeof(double));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE:
        assert_true(slice_is_bin(v->s, e->bytes_value));
        break;
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE: {
        rt_otlp_array_iter ai;
        rt_otlp_array_iter_init(&ai, v->s.p, v->s.len);
        rt_otlp_value item;
        size_t i = 0;
        int rc;
        while ((rc = rt_otlp_array_next(&ai, &item)) == 1) {
            assert_true(i < e->array_value->n_values);
            compare_value(&item, e->array_value->values[i]);
            i++;
        }
        assert_int_equal(rc, 0);
        assert_int_equal(i, e->array_value->n_values);
        break;
    }
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        compare_kvs(v->s.p, v->s.len, RT_OTLP_KVLIST_VALUES, e->kvlist_value->values,
                    e->kvlist_value->n_values);
        break;
    default:
        fail_msg("unexpected value case %d", (int)e->value_case);
    }
}

static void compare_kvs(const uint8_t *msg, size_t len, uint32_t field, KV **kvs, size_t n)
{
    rt_otlp_attr_iter it;
    rt_otlp_attr_iter_init(&it, msg, len, field);
    rt_otlp_attr a;
    size_t i = 0;
    int rc;
    while ((rc = rt_otlp_attr_next(&it, &a)) == 1) {
        assert_true(i < n);
        assert_true(slice_is_str(a.key, kvs[i]->key));
        compare_value(&a.value, kvs[i]->value);
        i++;
    }
    if (rc != 0) {
        fail_msg("attr iterator: %s", it.err);
    }
    assert_int_equal(i, n);
}

static void compare_span(const rt_otlp_span_view *v, const Span *e)
{
    char err[RT_OTLP_ERR_MAX];
    assert_true(slice_is_bin(v->trace_id, e->trace_id));
    assert_true(slice_is_bin(v->span_id, e->span_id));
    assert_true(slice_is_str(v->trace_state, e->trace_state));
    assert_true(slice_is_bin(v->parent_span_id, e->parent_span_id));
    assert_true(slice_is_str(v->name, e->name));
    assert_int_equal(v->kind, (int32_t)e->kind);
    assert_true(v->start_ns == e->start_time_unix_nano);
    assert_true(v->end_ns == e->end_time_unix_nano);
    assert_int_equal(v->dropped_attributes_count, e->dropped_attributes_count);
    assert_int_equal(v->dropped_events_count, e->dropped_events_count);
    assert_int_equal(v->dropped_links_count, e->dropped_links_count);
    assert_int_equal(v->flags, e->flags);
    assert_int_equal(v->has_status, e->status != NULL);
    if (e->status) {
        assert_int_equal(v->status_code, (int32_t)e->status->code);
        assert_true(slice_is_str(v->status_message, e->status->message));
    } else {
        assert_int_equal(v->status_code, 0);
        assert_int_equal(v->status_message.len, 0);
    }
    assert_int_equal(v->n_attributes, e->n_attributes);
    assert_int_equal(v->n_events, e->n_events);
    assert_int_equal(v->n_links, e->n_links);
    compare_kvs(v->span.p, v->span.len, RT_OTLP_SPAN_ATTRS, e->attributes, e->n_attributes);

    rt_otlp_msg_iter mi;
    rt_pb_slice s;
    size_t i = 0;
    rt_otlp_msg_iter_init(&mi, v->span.p, v->span.len, RT_OTLP_SPAN_EVENTS);
    while (rt_otlp_field_next(&mi, &s) == 1) {
        rt_otlp_event_view ev;
        assert_true(i < e->n_events);
        assert_int_equal(rt_otlp_event_parse(s.p, s.len, &ev, NULL, err, sizeof(err)), 0);
        const Opentelemetry__Proto__Trace__V1__Span__Event *ee = e->events[i];
        assert_true(ev.time_ns == ee->time_unix_nano);
        assert_true(slice_is_str(ev.name, ee->name));
        assert_int_equal(ev.dropped_attributes_count, ee->dropped_attributes_count);
        assert_int_equal(ev.n_attributes, ee->n_attributes);
        compare_kvs(ev.msg.p, ev.msg.len, RT_OTLP_EVENT_ATTRS, ee->attributes, ee->n_attributes);
        i++;
    }
    assert_int_equal(i, e->n_events);

    i = 0;
    rt_otlp_msg_iter_init(&mi, v->span.p, v->span.len, RT_OTLP_SPAN_LINKS);
    while (rt_otlp_field_next(&mi, &s) == 1) {
        rt_otlp_link_view lv;
        assert_true(i < e->n_links);
        assert_int_equal(rt_otlp_link_parse(s.p, s.len, &lv, NULL, err, sizeof(err)), 0);
        const Opentelemetry__Proto__Trace__V1__Span__Link *le = e->links[i];
        assert_true(slice_is_bin(lv.trace_id, le->trace_id));
        assert_true(slice_is_bin(lv.span_id, le->span_id));
        assert_true(slice_is_str(lv.trace_state, le->trace_state));
        assert_int_equal(lv.dropped_attributes_count, le->dropped_attributes_count);
        assert_int_equal(lv.flags, le->flags);
        assert_int_equal(lv.n_attributes, le->n_attributes);
        compare_kvs(lv.msg.p, lv.msg.len, RT_OTLP_LINK_ATTRS, le->attributes, le->n_attributes);
        i++;
    }
    assert_int_equal(i, e->n_links);
}

static void compare_resource(const rt_otlp_span_view *v,
                             const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs)
{
    char err[RT_OTLP_ERR_MAX];
    assert_true(slice_is_str(v->resource_schema_url, rs->schema_url));
    assert_int_equal(v->has_resource, rs->resource != NULL);
    if (rs->resource == NULL) {
        assert_null(v->resource.p);
        assert_int_equal(v->resource.len, 0);
        return;
    }
    rt_otlp_resource_view rv;
    assert_int_equal(
        rt_otlp_resource_parse(v->resource.p, v->resource.len, &rv, NULL, err, sizeof(err)), 0);
    assert_int_equal(rv.dropped_attributes_count, rs->resource->dropped_attributes_count);
    assert_int_equal(rv.n_attributes, rs->resource->n_attributes);
    compare_kvs(v->resource.p, v->resource.len, RT_OTLP_RESOURCE_ATTRS, rs->resource->attributes,
                rs->resource->n_attributes);
}

static void compare_scope(const rt_otlp_span_view *v,
                          const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss)
{
    char err[RT_OTLP_ERR_MAX];
    assert_true(slice_is_str(v->scope_schema_url, ss->schema_url));
    assert_int_equal(v->has_scope, ss->scope != NULL);
    if (ss->scope == NULL) {
        assert_null(v->scope.p);
        return;
    }
    rt_otlp_scope_view sv;
    assert_int_equal(rt_otlp_scope_parse(v->scope.p, v->scope.len, &sv, NULL, err, sizeof(err)), 0);
    assert_true(slice_is_str(sv.name, ss->scope->name));
    assert_true(slice_is_str(sv.version, ss->scope->version));
    assert_int_equal(sv.dropped_attributes_count, ss->scope->dropped_attributes_count);
    assert_int_equal(sv.n_attributes, ss->scope->n_attributes);
    compare_kvs(v->scope.p, v->scope.len, RT_OTLP_SCOPE_ATTRS, ss->scope->attributes,
                ss->scope->n_attributes);
}

/* Walk buf with the scanner and check every span against protobuf-c's decode `dec`. Returns the
 * number of spans. */
static size_t compare_request(const uint8_t *buf, size_t len, const Req *dec, int canonical)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, buf, len);
    size_t spans = 0, seq = 0;
    for (size_t i = 0; i < dec->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = dec->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++, seq++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                int rc = rt_otlp_scan_next(&it, &v);
                if (rc != 1) {
                    fail_msg("scan_next: rc %d: %s", rc, it.err);
                }
                assert_int_equal(v.resource_index, i);
                assert_int_equal(v.scope_index, j);
                assert_int_equal(v.scope_seq, seq);
                assert_int_equal(v.span_index, k);
                compare_resource(&v, rs);
                compare_scope(&v, ss);
                compare_span(&v, ss->spans[k]);
                if (canonical) {
                    /* The span slice is the exact encoding protobuf-c produces for it. */
                    size_t n = opentelemetry__proto__trace__v1__span__get_packed_size(ss->spans[k]);
                    assert_int_equal(v.span.len, n);
                }
                spans++;
            }
        }
    }
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    return spans;
}

/* The checked walk (rt_otlp_scan_init_checked) to the end, indexing two keys on the way: 0 with
 * the span count, or -1 with its message in err. */
static int checked_walk(const uint8_t *p, size_t n, size_t *count, char *err, size_t errlen)
{
    rt_otlp_keyset ks = {0};
    rt_otlp_keyset_add(&ks, (const uint8_t *)"service.name", 12);
    rt_otlp_keyset_add(&ks, (const uint8_t *)"k", 1);
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_pb_slice kv[2];
    int rc;
    rt_otlp_scan_init_checked(&it, p, n);
    *count = 0;
    while ((rc = rt_otlp_scan_next_keyed(&it, &v, &ks, kv)) == 1) {
        (*count)++;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s", it.err);
    }
    return rc;
}

/* rt_otlp_validate and the checked walk give the same verdict (and span count) on `p`. */
static void expect_checked_walk_agrees(const uint8_t *p, size_t n)
{
    size_t vcount = 0, ccount = 0;
    char verr[RT_OTLP_ERR_MAX], cerr[RT_OTLP_ERR_MAX];
    int vr = rt_otlp_validate(p, n, &vcount, verr, sizeof(verr));
    int cr = checked_walk(p, n, &ccount, cerr, sizeof(cerr));
    if (vr != cr) {
        fail_msg("validate %d (%s) but the checked walk %d (%s)", vr, vr ? verr : "-", cr,
                 cr ? cerr : "-");
    }
    if (vr == 0) {
        assert_int_equal(ccount, vcount);
    } else {
        assert_non_null(strstr(cerr, "at byte "));
    }
}

static void test_scan_matches_protobuf_c_for_generated_requests(void **state)
{
    size_t total_spans = 0;
    for (uint64_t seed = 1; seed <= 520; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *buf = rt_gen_pack(req, &len);
        Req *dec = rt_gen_unpack(buf, len);
        assert_non_null(dec);
        size_t spans = compare_request(buf, len, dec, 1);
        size_t vcount = 0;
        char err[RT_OTLP_ERR_MAX];
        if (rt_otlp_validate(buf, len, &vcount, err, sizeof(err)) != 0) {
            fail_msg("seed %llu: validate: %s", (unsigned long long)seed, err);
        }
        assert_int_equal(vcount, spans);
        expect_checked_walk_agrees(buf, len);
        /* The checked walk hands out the same views as the plain one. */
        rt_otlp_scan a, b;
        rt_otlp_span_view va, vb;
        rt_otlp_scan_init(&a, buf, len);
        rt_otlp_scan_init_checked(&b, buf, len);
        while (rt_otlp_scan_next(&a, &va) == 1) {
            assert_int_equal(rt_otlp_scan_next(&b, &vb), 1);
            assert_memory_equal(&va, &vb, sizeof(va));
        }
        assert_int_equal(rt_otlp_scan_next(&b, &vb), 0);
        total_spans += spans;
        rt_gen_unpack_free(dec);
        free(buf);
        rt_gen_free(req);
    }
    assert_true(total_spans > 10000); /* the generator really produced a corpus */
}

static uint64_t next_rand(uint64_t *s);

/* The router's walk (trace ids only) hands out the same spans, trace ids, resources and scopes
 * as the full walk on every generated request, and the structural check accepts whatever the
 * full validation accepts; on mutated bytes the structural check may accept more (it does not
 * look into attributes), never less, and never crashes. */
static void test_ids_walk_and_structure_check_agree_with_full_walk(void **state)
{
    uint64_t rnd = 11;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *buf = rt_gen_pack(req, &len);
        rt_gen_free(req);
        rt_otlp_scan a, b;
        rt_otlp_span_view va, vb;
        rt_otlp_scan_init(&a, buf, len);
        rt_otlp_scan_init_ids(&b, buf, len);
        int ra, rb;
        size_t n = 0;
        while ((ra = rt_otlp_scan_next(&a, &va)) == 1) {
            rb = rt_otlp_scan_next(&b, &vb);
            assert_int_equal(rb, 1);
            assert_ptr_equal(va.span.p, vb.span.p);
            assert_int_equal(va.span.len, vb.span.len);
            assert_int_equal(va.trace_id.len, vb.trace_id.len);
            assert_ptr_equal(va.trace_id.p, vb.trace_id.p);
            assert_ptr_equal(va.resource.p, vb.resource.p);
            assert_ptr_equal(va.scope.p, vb.scope.p);
            assert_int_equal(va.resource_index, vb.resource_index);
            assert_int_equal(va.scope_seq, vb.scope_seq);
            assert_int_equal(vb.n_attributes, 0); /* not parsed in this mode */
            n++;
        }
        assert_int_equal(ra, 0);
        assert_int_equal(rt_otlp_scan_next(&b, &vb), 0);
        size_t count = 0;
        char err[RT_OTLP_ERR_MAX];
        assert_int_equal(rt_otlp_check_structure(buf, len, &count, err, sizeof err), 0);
        assert_int_equal(count, n);
        /* mutations: full validation passing implies the structural check passing */
        uint8_t *m = malloc(len ? len : 1);
        for (int i = 0; i < 40 && len > 0; i++) {
            memcpy(m, buf, len);
            m[next_rand(&rnd) % len] = (uint8_t)next_rand(&rnd);
            size_t c1 = 0, c2 = 0;
            int full = rt_otlp_validate(m, len, &c1, err, sizeof err);
            int structural = rt_otlp_check_structure(m, len, &c2, err, sizeof err);
            if (full == 0) {
                assert_int_equal(structural, 0);
                assert_int_equal(c1, c2);
            }
        }
        free(m);
        free(buf);
    }
}

static void test_empty_input_is_an_empty_request(void **state)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, NULL, 0);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    uint8_t one = 0;
    rt_otlp_scan_init(&it, &one, 0);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    size_t n = 99;
    char err[RT_OTLP_ERR_MAX];
    assert_int_equal(rt_otlp_validate(NULL, 0, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
    /* A request whose only ResourceSpans is empty: valid, no spans. */
    uint8_t empty_rs[] = {0x0a, 0x00};
    rt_otlp_scan_init(&it, empty_rs, sizeof(empty_rs));
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    assert_int_equal(rt_otlp_validate(empty_rs, sizeof(empty_rs), &n, err, sizeof(err)), 0);
    assert_int_equal(n, 0);
}

/* ---- deep walk through the public iterators (for hostile input) -------------------------- */

static int deep_kvs(const uint8_t *msg, size_t len, uint32_t field, int depth);

static int deep_value(const rt_otlp_value *v, int depth)
{
    if (depth > RT_OTLP_MAX_DEPTH) {
        return -1;
    }
    if (v->type == RT_OTLP_VAL_ARRAY) {
        rt_otlp_array_iter ai;
        rt_otlp_array_iter_init(&ai, v->s.p, v->s.len);
        rt_otlp_value item;
        int rc;
        while ((rc = rt_otlp_array_next(&ai, &item)) == 1) {
            if (deep_value(&item, depth + 1) != 0) {
                return -1;
            }
        }
        return rc;
    }
    if (v->type == RT_OTLP_VAL_KVLIST) {
        return deep_kvs(v->s.p, v->s.len, RT_OTLP_KVLIST_VALUES, depth + 1);
    }
    return 0;
}

static int deep_kvs(const uint8_t *msg, size_t len, uint32_t field, int depth)
{
    rt_otlp_attr_iter it;
    rt_otlp_attr_iter_init(&it, msg, len, field);
    rt_otlp_attr a;
    int rc;
    while ((rc = rt_otlp_attr_next(&it, &a)) == 1) {
        if (deep_value(&a.value, depth) != 0) {
            return -1;
        }
    }
    return rc;
}

/* Every nested part of a span, its resource and its scope, through the public API. */
static int deep_span(const rt_otlp_span_view *v)
{
    char err[RT_OTLP_ERR_MAX];
    rt_otlp_msg_iter mi;
    rt_pb_slice s;
    int rc;
    if (deep_kvs(v->span.p, v->span.len, RT_OTLP_SPAN_ATTRS, 0) != 0) {
        return -1;
    }
    rt_otlp_msg_iter_init(&mi, v->span.p, v->span.len, RT_OTLP_SPAN_EVENTS);
    while ((rc = rt_otlp_field_next(&mi, &s)) == 1) {
        rt_otlp_event_view ev;
        if (rt_otlp_event_parse(s.p, s.len, &ev, NULL, err, sizeof(err)) != 0 ||
            deep_kvs(s.p, s.len, RT_OTLP_EVENT_ATTRS, 0) != 0) {
            return -1;
        }
    }
    if (rc != 0) {
        return -1;
    }
    rt_otlp_msg_iter_init(&mi, v->span.p, v->span.len, RT_OTLP_SPAN_LINKS);
    while ((rc = rt_otlp_field_next(&mi, &s)) == 1) {
        rt_otlp_link_view lv;
        if (rt_otlp_link_parse(s.p, s.len, &lv, NULL, err, sizeof(err)) != 0 ||
            deep_kvs(s.p, s.len, RT_OTLP_LINK_ATTRS, 0) != 0) {
            return -1;
        }
    }
    if (rc != 0) {
        return -1;
    }
    rt_otlp_resource_view rv;
    rt_otlp_scope_view sv;
    if (rt_otlp_resource_parse(v->resource.p, v->resource.len, &rv, NULL, err, sizeof(err)) != 0 ||
        deep_kvs(v->resource.p, v->resource.len, RT_OTLP_RESOURCE_ATTRS, 0) != 0 ||
        rt_otlp_scope_parse(v->scope.p, v->scope.len, &sv, NULL, err, sizeof(err)) != 0 ||
        deep_kvs(v->scope.p, v->scope.len, RT_OTLP_SCOPE_ATTRS, 0) != 0) {
        return -1;
    }
    return 0;
}

/* Scan all spans, deep-walking each. Returns 0 (end reached), -1 (scanner error) or -2 (a
 * yielded span failed the deep walk); *count gets the number of spans yielded. */
static int scan_all(const uint8_t *buf, size_t len, size_t *count)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, buf, len);
    int rc;
    int deep_failed = 0;
    *count = 0;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        /* Every slice lies inside the buffer. */
        assert_true(v.span.p >= buf && v.span.p + v.span.len <= buf + len);
        assert_true(v.name.len == 0 ||
                    (v.name.p >= v.span.p && v.name.p + v.name.len <= v.span.p + v.span.len));
        if (deep_span(&v) != 0) {
            deep_failed = 1;
        }
        (*count)++;
    }
    if (rc == -1) {
        assert_true(strstr(it.err, "at byte ") != NULL);
        assert_int_equal(rt_otlp_scan_next(&it, &v), -1); /* sticky */
        return -1;
    }
    return deep_failed ? -2 : 0;
}

/* Span slices of a request, by offset, so a prefix's spans can be checked byte for byte. */
static size_t span_offsets(const uint8_t *buf, size_t len, size_t *off, size_t *slen, size_t max)
{
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, buf, len);
    size_t n = 0;
    while (rt_otlp_scan_next(&it, &v) == 1 && n < max) {
        off[n] = (size_t)(v.span.p - buf);
        slen[n] = v.span.len;
        n++;
    }
    return n;
}

static void test_every_truncation_stops_cleanly(void **state)
{
    size_t off[512], slen[512];
    int messages = 0;
    for (uint64_t seed = 1000; messages < 8 && seed < 5000; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *full = rt_gen_pack(req, &len);
        rt_gen_free(req);
        if (len > 6000 || len < 200) {
            free(full);
            continue;
        }
        messages++;
        size_t nspans = span_offsets(full, len, off, slen, 512);
        size_t valid_prefixes = 0;
        for (size_t cut = 0; cut < len; cut++) {
            /* An exact-size heap copy: any read past `cut` is an ASan error. */
            uint8_t *p = malloc(cut ? cut : 1);
            memcpy(p, full, cut);
            size_t vcount = 0, scount = 0;
            char err[RT_OTLP_ERR_MAX];
            int vr = rt_otlp_validate(p, cut, &vcount, err, sizeof(err));
            int sr = scan_all(p, cut, &scount);
            assert_int_not_equal(sr, -2); /* a span that is yielded is whole */
            expect_checked_walk_agrees(p, cut);
            /* The validator and the walker agree on every prefix. */
            assert_int_equal(vr, sr);
            Req *dec = rt_gen_unpack(p, cut);
            assert_int_equal(dec != NULL, vr == 0);
            if (vr == 0) {
                valid_prefixes++;
                assert_int_equal(vcount, scount);
                assert_true(scount <= nspans);
                rt_gen_unpack_free(dec);
            } else {
                assert_true(strstr(err, "at byte ") != NULL);
            }
            /* Spans yielded from the prefix are the original's spans, byte for byte. */
            rt_otlp_scan it;
            rt_otlp_span_view v;
            rt_otlp_scan_init(&it, p, cut);
            for (size_t k = 0; rt_otlp_scan_next(&it, &v) == 1; k++) {
                assert_true(k < nspans);
                assert_int_equal((size_t)(v.span.p - p), off[k]);
                assert_int_equal(v.span.len, slen[k]);
            }
            free(p);
        }
        /* Cuts at ResourceSpans boundaries are valid (at least the empty prefix). */
        assert_true(valid_prefixes >= 1);
        free(full);
    }
    assert_int_equal(messages, 8);
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Check one hostile buffer: no out-of-bounds read, and the validator, the walker and protobuf-c
 * agree on whether it is a well-formed request. Returns 1 if it was valid. */
static int check_hostile(const uint8_t *data, size_t n)
{
    uint8_t *p = malloc(n ? n : 1);
    memcpy(p, data, n);
    size_t vcount = 0, scount = 0;
    char err[RT_OTLP_ERR_MAX];
    int vr = rt_otlp_validate(p, n, &vcount, err, sizeof(err));
    int sr = scan_all(p, n, &scount);
    expect_checked_walk_agrees(p, n);
    Req *dec = rt_gen_unpack(p, n);
    if (vr == 0) {
        /* Valid: the walker yields every span without error and matches protobuf-c exactly. */
        assert_int_equal(sr, 0);
        assert_int_equal(scount, vcount);
        assert_non_null(dec);
        assert_int_equal(compare_request(p, n, dec, 0), vcount);
    } else {
        assert_true(err[0] != '\0');
        /* protobuf-c refuses it too, except where it is laxer than the protobuf spec: it
         * truncates tags that overflow 32 bits and varints whose 10th byte overflows 64 bits,
         * which we (like Google's parsers) reject. */
        if (dec != NULL && strstr(err, "bad tag") == NULL &&
            strstr(err, "malformed varint") == NULL) {
            fail_msg("protobuf-c accepts what the validator refuses: %s", err);
        }
    }
    if (dec) {
        rt_gen_unpack_free(dec);
    }
    free(p);
    return vr == 0;
}

static void test_garbage_bytes_never_crash(void **state)
{
    uint64_t s = 42;
    uint8_t buf[400];
    for (int i = 0; i < 4000; i++) {
        size_t n = next_rand(&s) % sizeof(buf);
        for (size_t k = 0; k < n; k++) {
            buf[k] = (uint8_t)next_rand(&s);
        }
        /* Bias some towards plausible structure: a resource_spans tag first. */
        if (n > 0 && i % 2) {
            buf[0] = 0x0a;
        }
        check_hostile(buf, n);
    }
}

static void test_mutated_requests_agree_with_protobuf_c(void **state)
{
    uint64_t s = 7;
    int valid = 0, total = 0;
    for (uint64_t seed = 2000; seed < 2030; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *full = rt_gen_pack(req, &len);
        rt_gen_free(req);
        if (len > 20000) {
            free(full);
            continue;
        }
        uint8_t *m = malloc(len);
        for (int i = 0; i < 150; i++) {
            memcpy(m, full, len);
            int flips = 1 + (int)(next_rand(&s) % 3);
            for (int k = 0; k < flips; k++) {
                m[next_rand(&s) % len] = (uint8_t)next_rand(&s);
            }
            valid += check_hostile(m, len);
            total++;
        }
        free(m);
        free(full);
    }
    /* Both outcomes are exercised (a mutation inside a string keeps the message valid). */
    assert_true(valid > 0);
    assert_true(valid < total);
}

/* ---- hand-built messages ----------------------------------------------------------------- */

/* Wrap `inner` as field `field` of a new message appended to `out`. */
static void wrap(rt_buf *out, uint32_t field, const rt_buf *inner)
{
    rt_pb_append_len_field(out, field, inner->data, inner->len);
}

/* request{resource_spans{scope_spans{spans: span}}}; returns the span's offset. */
static size_t build_request(rt_buf *req, const rt_buf *span)
{
    rt_buf ss = RT_BUF_INIT, rs = RT_BUF_INIT;
    wrap(&ss, 2, span);
    wrap(&rs, 2, &ss);
    wrap(req, 1, &rs);
    rt_buf_free(&ss);
    rt_buf_free(&rs);
    return req->len - span->len;
}

static void str_field(rt_buf *b, uint32_t f, const char *s)
{
    rt_pb_append_len_field(b, f, s, strlen(s));
}

static void varint_field(rt_buf *b, uint32_t f, uint64_t v)
{
    rt_pb_append_tag(b, f, RT_PB_WT_VARINT);
    rt_pb_append_varint(b, v);
}

static void fixed64_field(rt_buf *b, uint32_t f, uint64_t v)
{
    rt_pb_append_tag(b, f, RT_PB_WT_FIXED64);
    rt_pb_append_fixed64(b, v);
}

static void fixed32_field(rt_buf *b, uint32_t f, uint32_t v)
{
    rt_pb_append_tag(b, f, RT_PB_WT_FIXED32);
    rt_pb_append_fixed32(b, v);
}

/* A span whose field `f` carries the wrong wire type must fail the walker and the validator,
 * naming the field and the exact byte offset of its tag. */
static void expect_span_wire_error(uint32_t f, int wt, const char *fname)
{
    rt_buf span = RT_BUF_INIT, req = RT_BUF_INIT;
    str_field(&span, 5, "ok-name");
    size_t tag_at = span.len;
    switch (wt) {
    case RT_PB_WT_VARINT:
        varint_field(&span, f, 1);
        break;
    case RT_PB_WT_LEN:
        str_field(&span, f, "xx");
        break;
    case RT_PB_WT_FIXED32:
        fixed32_field(&span, f, 1);
        break;
    default:
        fixed64_field(&span, f, 1);
        break;
    }
    size_t span_at = build_request(&req, &span);
    char want[64];
    snprintf(want, sizeof(want), "at byte %zu", span_at + tag_at);

    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, req.data, req.len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    if (strstr(it.err, want) == NULL || strstr(it.err, fname) == NULL ||
        strstr(it.err, "wrong wire type") == NULL) {
        fail_msg("field %u: unexpected error '%s' (want '%s')", f, it.err, want);
    }
    char err[RT_OTLP_ERR_MAX];
    size_t n;
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    if (strstr(err, want) == NULL) {
        fail_msg("validate field %u: unexpected error '%s' (want '%s')", f, err, want);
    }
    assert_null(rt_gen_unpack(req.data, req.len));
    rt_buf_free(&span);
    rt_buf_free(&req);
}

static void test_wrong_wire_types_are_errors(void **state)
{
    expect_span_wire_error(1, RT_PB_WT_VARINT, "trace_id");
    expect_span_wire_error(5, RT_PB_WT_FIXED64, "name");
    expect_span_wire_error(6, RT_PB_WT_LEN, "kind");
    expect_span_wire_error(7, RT_PB_WT_FIXED32, "start_time_unix_nano");
    expect_span_wire_error(8, RT_PB_WT_VARINT, "end_time_unix_nano");
    expect_span_wire_error(9, RT_PB_WT_VARINT, "attributes");
    expect_span_wire_error(10, RT_PB_WT_LEN, "dropped_attributes_count");
    expect_span_wire_error(11, RT_PB_WT_FIXED32, "events");
    expect_span_wire_error(15, RT_PB_WT_VARINT, "status");
    expect_span_wire_error(16, RT_PB_WT_FIXED64, "flags");

    /* Request level: resource_spans as a varint. */
    uint8_t bad_req[] = {0x08, 0x01};
    rt_otlp_scan it;
    rt_otlp_span_view v;
    char err[RT_OTLP_ERR_MAX];
    size_t n;
    rt_otlp_scan_init(&it, bad_req, sizeof(bad_req));
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    assert_non_null(strstr(it.err, "resource_spans"));
    assert_int_equal(rt_otlp_validate(bad_req, sizeof(bad_req), &n, err, sizeof(err)), -1);

    /* Status.code as a string; inside nested Status. */
    rt_buf st = RT_BUF_INIT, span = RT_BUF_INIT, req = RT_BUF_INIT;
    str_field(&st, 3, "2");
    wrap(&span, 15, &st);
    build_request(&req, &span);
    rt_otlp_scan_init(&it, req.data, req.len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    assert_non_null(strstr(it.err, "Status"));
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    rt_buf_free(&st);
    rt_buf_free(&span);
    rt_buf_free(&req);

    /* Deep fields: an AnyValue.int_value sent as LEN. The walker yields the span (attributes are
     * checked lazily), the attribute iterator and the validator refuse it. */
    rt_buf any = RT_BUF_INIT, kv = RT_BUF_INIT;
    str_field(&any, 3, "12");
    str_field(&kv, 1, "k");
    wrap(&kv, 2, &any);
    wrap(&span, 9, &kv);
    build_request(&req, &span);
    rt_otlp_scan_init(&it, req.data, req.len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 1);
    rt_otlp_attr_iter ai;
    rt_otlp_attr a;
    rt_otlp_attr_iter_init(&ai, v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS);
    ai.origin = req.data;
    assert_int_equal(rt_otlp_attr_next(&ai, &a), -1);
    assert_non_null(strstr(ai.err, "int_value"));
    assert_int_equal(rt_otlp_attr_next(&ai, &a), -1);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "int_value"));
    assert_string_equal(strstr(err, "at byte"), strstr(ai.err, "at byte")); /* same offset */
    rt_buf_free(&any);
    rt_buf_free(&kv);
    rt_buf_free(&span);
    rt_buf_free(&req);

    /* Event.time_unix_nano as a varint: caught by the event parser and the validator. */
    rt_buf ev = RT_BUF_INIT;
    varint_field(&ev, 1, 5);
    wrap(&span, 11, &ev);
    build_request(&req, &span);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "time_unix_nano"));
    rt_otlp_event_view evv;
    assert_int_equal(rt_otlp_event_parse(ev.data, ev.len, &evv, NULL, err, sizeof(err)), -1);
    rt_buf_free(&ev);
    rt_buf_free(&span);
    rt_buf_free(&req);
}

static void test_groups_and_bad_tags_are_errors(void **state)
{
    rt_buf span = RT_BUF_INIT, req = RT_BUF_INIT;
    size_t n;
    char err[RT_OTLP_ERR_MAX];
    rt_otlp_scan it;
    rt_otlp_span_view v;
    /* An unknown field 100 with group wire types 3 (start group). */
    rt_pb_append_tag(&span, 100, 3);
    build_request(&req, &span);
    rt_otlp_scan_init(&it, req.data, req.len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "wire type"));
    rt_buf_free(&span);
    rt_buf_free(&req);
    /* Field number 0. */
    uint8_t zero[] = {0x02, 0x00};
    rt_otlp_scan_init(&it, zero, sizeof(zero));
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    assert_int_equal(rt_otlp_validate(zero, sizeof(zero), &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "bad tag"));
    /* Length prefix larger than what is left. */
    uint8_t past[] = {0x0a, 0x05, 0x12, 0x00};
    rt_otlp_scan_init(&it, past, sizeof(past));
    assert_int_equal(rt_otlp_scan_next(&it, &v), -1);
    assert_non_null(strstr(it.err, "at byte 1"));
}

static void test_unknown_fields_are_skipped(void **state)
{
    rt_buf span = RT_BUF_INIT, req = RT_BUF_INIT, rs = RT_BUF_INIT, ss = RT_BUF_INIT;
    varint_field(&span, 100, 12345);
    str_field(&span, 5, "n");
    fixed64_field(&span, 101, 1);
    str_field(&span, 102, "unknown");
    fixed32_field(&span, 103, 7);
    varint_field(&span, 6, 3);
    fixed32_field(&ss, 50, 1);
    wrap(&ss, 2, &span);
    str_field(&ss, 51, "x");
    varint_field(&rs, 99, 1);
    wrap(&rs, 2, &ss);
    varint_field(&req, 7, 1); /* unknown field at the request level */
    wrap(&req, 1, &rs);
    fixed64_field(&req, 8, 1);

    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, req.data, req.len);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 1);
    assert_true(slice_is_str(v.name, "n"));
    assert_int_equal(v.kind, 3);
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);
    size_t n;
    char err[RT_OTLP_ERR_MAX];
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    Req *dec = rt_gen_unpack(req.data, req.len);
    assert_non_null(dec);
    assert_int_equal(compare_request(req.data, req.len, dec, 0), 1);
    rt_gen_unpack_free(dec);
    rt_buf_free(&span);
    rt_buf_free(&req);
    rt_buf_free(&rs);
    rt_buf_free(&ss);
}

/* Proto3: the last occurrence of a scalar wins; a repeated Status merges; resource and
 * schema_url may come after the spans they apply to; repeated fields may interleave. Checked
 * against fixed expectations and against protobuf-c. */
static void test_last_occurrence_wins_and_order_is_free(void **state)
{
    rt_buf span = RT_BUF_INIT, st1 = RT_BUF_INIT, st2 = RT_BUF_INIT, kv = RT_BUF_INIT;
    rt_buf any = RT_BUF_INIT;
    str_field(&span, 5, "first");
    varint_field(&span, 6, 2);
    fixed64_field(&span, 7, 111);
    str_field(&span, 1, "AAAAAAAAAAAAAAAA");
    str_field(&st1, 2, "boom");
    wrap(&span, 15, &st1);
    /* attribute between the duplicates: x = "s" then int 5 (oneof: last member wins) */
    str_field(&any, 1, "s");
    varint_field(&any, 3, 5);
    str_field(&kv, 1, "x");
    wrap(&kv, 2, &any);
    wrap(&span, 9, &kv);
    str_field(&span, 5, "second");
    varint_field(&span, 6, 3);
    fixed64_field(&span, 7, 222);
    str_field(&span, 1, "BBBBBBBBBBBBBBBB");
    varint_field(&st2, 3, 2);
    wrap(&span, 15, &st2);
    wrap(&span, 9, &kv);
    fixed32_field(&span, 16, 1);
    fixed32_field(&span, 16, 0x301);

    rt_buf res = RT_BUF_INIT, ss = RT_BUF_INIT, rs = RT_BUF_INIT, req = RT_BUF_INIT;
    rt_buf rkv = RT_BUF_INIT, rany = RT_BUF_INIT;
    str_field(&rany, 1, "svc");
    str_field(&rkv, 1, "service.name");
    wrap(&rkv, 2, &rany);
    wrap(&res, 1, &rkv);
    str_field(&ss, 3, "scope-url-1");
    wrap(&ss, 2, &span);
    str_field(&ss, 3, "scope-url-2");
    wrap(&ss, 2, &span);
    wrap(&rs, 2, &ss); /* spans first ... */
    str_field(&rs, 3, "res-url-1");
    wrap(&rs, 1, &res);             /* ... then the resource ... */
    str_field(&rs, 3, "res-url-2"); /* ... and a second schema_url that wins */
    wrap(&req, 1, &rs);

    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, req.data, req.len);
    for (int k = 0; k < 2; k++) {
        assert_int_equal(rt_otlp_scan_next(&it, &v), 1);
        assert_true(slice_is_str(v.name, "second"));
        assert_int_equal(v.kind, 3);
        assert_true(v.start_ns == 222);
        assert_true(slice_is_str(v.trace_id, "BBBBBBBBBBBBBBBB"));
        assert_int_equal(v.has_status, 1);
        assert_int_equal(v.status_code, 2);
        assert_true(slice_is_str(v.status_message, "boom"));
        assert_int_equal(v.flags, 0x301);
        assert_int_equal(v.n_attributes, 2);
        assert_true(slice_is_str(v.scope_schema_url, "scope-url-2"));
        assert_true(slice_is_str(v.resource_schema_url, "res-url-2"));
        assert_int_equal(v.has_resource, 1);
        assert_int_equal(v.has_scope, 0);
        rt_otlp_attr a;
        assert_int_equal(rt_otlp_attr_find(v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS, "x", 1, &a),
                         1);
        assert_int_equal(a.value.type, RT_OTLP_VAL_INT);
        assert_true(a.value.i == 5);
        assert_int_equal(rt_otlp_attr_find(v.resource.p, v.resource.len, RT_OTLP_RESOURCE_ATTRS,
                                           "service.name", 12, &a),
                         1);
        assert_true(slice_is_str(a.value.s, "svc"));
        assert_int_equal(rt_otlp_attr_find(v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS, "nope", 4, &a),
                         0);
    }
    assert_int_equal(rt_otlp_scan_next(&it, &v), 0);

    Req *dec = rt_gen_unpack(req.data, req.len);
    assert_non_null(dec);
    assert_int_equal(compare_request(req.data, req.len, dec, 0), 2);
    rt_gen_unpack_free(dec);

    rt_buf *all[] = {&span, &st1, &st2, &kv, &any, &res, &ss, &rs, &req, &rkv, &rany};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
        rt_buf_free(all[i]);
    }
}

/* A span attribute whose value nests `levels` arrays. */
static void build_nested(rt_buf *req, int levels)
{
    rt_buf cur = RT_BUF_INIT, next = RT_BUF_INIT;
    str_field(&cur, 1, "leaf"); /* AnyValue{string_value} */
    for (int i = 0; i < levels; i++) {
        rt_buf arr = RT_BUF_INIT;
        wrap(&arr, 1, &cur); /* ArrayValue{values: cur} */
        rt_buf_reset(&next);
        wrap(&next, 5, &arr); /* AnyValue{array_value} */
        rt_buf_free(&arr);
        rt_buf tmp = cur;
        cur = next;
        next = tmp;
    }
    rt_buf kv = RT_BUF_INIT, span = RT_BUF_INIT;
    str_field(&kv, 1, "deep");
    wrap(&kv, 2, &cur);
    wrap(&span, 9, &kv);
    build_request(req, &span);
    rt_buf_free(&cur);
    rt_buf_free(&next);
    rt_buf_free(&kv);
    rt_buf_free(&span);
}

/* rt_otlp_attr_index finds, for every key at once, what rt_otlp_attr_find finds key by key:
 * the first KeyValue with the key, nothing for absent keys, and on malformed input exactly the
 * hits that lie before the malformed bytes. Checked on a list with duplicates, other fields in
 * between, a KeyValue with two key fields, and every truncation of it. */
static void test_attr_index_agrees_with_attr_find(void **state)
{
    (void)state;
    rt_buf msg = RT_BUF_INIT, kv = RT_BUF_INIT;
    const char *keys[] = {"a", "service.name", "b", "dup", "zz", "a"};
    const char *vals[] = {"1", "svc", "2", "first", "x", "second-a"};
    rt_pb_append_len_field(&msg, 5, "name", 4); /* not an attribute */
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        rt_buf_reset(&kv);
        rt_buf any = RT_BUF_INIT;
        rt_pb_append_len_field(&any, 1, vals[i], strlen(vals[i]));
        rt_pb_append_len_field(&kv, 1, keys[i], strlen(keys[i]));
        rt_pb_append_len_field(&kv, 2, any.data, any.len);
        rt_pb_append_len_field(&msg, 9, kv.data, kv.len);
        rt_pb_append_tag(&msg, 7, RT_PB_WT_FIXED64);
        rt_pb_append_fixed64(&msg, 12345);
        rt_buf_free(&any);
    }
    /* key "ignored" then key "dup": the last key field names the KeyValue. */
    rt_buf_reset(&kv);
    rt_pb_append_len_field(&kv, 1, "ignored", 7);
    rt_pb_append_len_field(&kv, 1, "dup", 3);
    rt_pb_append_len_field(&msg, 9, kv.data, kv.len);
    rt_buf_free(&kv);

    /* k65 is 65 bytes long: it shares a length bucket (65 % 64) with "a". */
    const char *k65 = "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk";
    const char *want_keys[] = {"dup", "a", "missing", "zz", "ignored", "service.name", k65};
    size_t n = sizeof want_keys / sizeof want_keys[0];
    rt_otlp_keyset ks = {0};
    rt_pb_slice got[8];
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(
            rt_otlp_keyset_add(&ks, (const uint8_t *)want_keys[i], strlen(want_keys[i])), (int)i);
    }
    assert_int_equal(rt_otlp_keyset_add(&ks, (const uint8_t *)"zz", 2), 3); /* already there */
    assert_int_equal(strlen(k65), 65);
    for (size_t cut = msg.len + 1; cut-- > 0;) {
        int rc = rt_otlp_attr_index(msg.data, cut, RT_OTLP_SPAN_ATTRS, &ks, got);
        int found = 0;
        bool any_bad = false;
        for (size_t i = 0; i < n; i++) {
            rt_otlp_attr a, b;
            int one = rt_otlp_attr_find(msg.data, cut, RT_OTLP_SPAN_ATTRS, want_keys[i],
                                        strlen(want_keys[i]), &a);
            any_bad |= one < 0;
            if (one != 1) {
                if (got[i].p != NULL) {
                    fail_msg("cut %zu: key %s found by the index only", cut, want_keys[i]);
                }
                continue;
            }
            found++;
            if (got[i].p == NULL || rt_otlp_keyvalue_decode(got[i].p, got[i].len, &b) != 0 ||
                a.value.type != b.value.type || a.value.s.len != b.value.s.len ||
                memcmp(a.value.s.p, b.value.s.p, a.value.s.len) != 0) {
                fail_msg("cut %zu: key %s: the index disagrees", cut, want_keys[i]);
            }
        }
        /* -1 only when some key-by-key lookup also met the malformed bytes. */
        if (rc < 0 ? !any_bad : rc != found) {
            fail_msg("cut %zu: index returned %d, key by key found %d (malformed seen: %d)", cut,
                     rc, found, (int)any_bad);
        }
    }
    /* The whole message: first occurrences. */
    assert_int_equal(rt_otlp_attr_index(msg.data, msg.len, RT_OTLP_SPAN_ATTRS, &ks, got), 4);
    rt_otlp_attr a;
    assert_int_equal(rt_otlp_keyvalue_decode(got[1].p, got[1].len, &a), 0);
    assert_int_equal(a.value.s.len, 1); /* "1", not "second-a" */
    assert_int_equal(rt_otlp_keyvalue_decode(got[0].p, got[0].len, &a), 0);
    assert_memory_equal(a.value.s.p, "first", 5);
    assert_null(got[2].p);
    assert_null(got[4].p);

    /* The span walk indexes the same KeyValues, checked or not. */
    rt_buf ss = RT_BUF_INIT, rs = RT_BUF_INIT, req = RT_BUF_INIT;
    rt_pb_append_len_field(&ss, 2, msg.data, msg.len);
    rt_pb_append_len_field(&rs, 2, ss.data, ss.len);
    rt_pb_append_len_field(&req, 1, rs.data, rs.len);
    for (int check = 0; check < 2; check++) {
        rt_otlp_scan it;
        rt_otlp_span_view v;
        rt_pb_slice walk[8];
        if (check) {
            rt_otlp_scan_init_checked(&it, req.data, req.len);
        } else {
            rt_otlp_scan_init(&it, req.data, req.len);
        }
        assert_int_equal(rt_otlp_scan_next_keyed(&it, &v, &ks, walk), 1);
        assert_ptr_equal(v.attr_keys, &ks);
        assert_ptr_equal(v.attr_kv, walk);
        assert_int_equal(v.n_attributes, 7);
        for (size_t i = 0; i < n; i++) {
            if (got[i].p == NULL) {
                assert_null(walk[i].p);
                continue;
            }
            assert_non_null(walk[i].p);
            assert_int_equal(walk[i].p - v.span.p, got[i].p - msg.data);
            assert_int_equal(walk[i].len, got[i].len);
        }
        assert_int_equal(rt_otlp_scan_next_keyed(&it, &v, &ks, walk), 0);
    }
    rt_buf_free(&ss);
    rt_buf_free(&rs);
    rt_buf_free(&req);
    rt_buf_free(&msg);
}

/* rt_otlp_keyvalue_decode (with its fast path for the usual layout) decodes every attribute of
 * the generated corpus (every value type, nested arrays and kvlists, long strings) exactly as
 * the attribute iterator's general decoder does. */
static void expect_same_attrs(const uint8_t *msg, size_t len, uint32_t field)
{
    rt_otlp_attr_iter ai;
    rt_otlp_attr a, b;
    rt_otlp_attr_iter_init(&ai, msg, len, field);
    while (rt_otlp_attr_next(&ai, &a) == 1) {
        memset(&b, 0x5a, sizeof(b));
        assert_int_equal(rt_otlp_keyvalue_decode(a.kv.p, a.kv.len, &b), 0);
        assert_ptr_equal(a.key.p, b.key.p);
        assert_int_equal(a.key.len, b.key.len);
        assert_ptr_equal(a.kv.p, b.kv.p);
        assert_int_equal(a.kv.len, b.kv.len);
        assert_int_equal(a.value.type, b.value.type);
        assert_ptr_equal(a.value.s.p, b.value.s.p);
        assert_int_equal(a.value.s.len, b.value.s.len);
        assert_int_equal(a.value.i, b.value.i);
        assert_memory_equal(&a.value.d, &b.value.d, sizeof(a.value.d));
        assert_int_equal(a.value.b, b.value.b);
    }
}

static void test_keyvalue_decode_agrees_with_the_iterator(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *buf = rt_gen_pack(req, &len);
        rt_gen_free(req);
        rt_otlp_scan it;
        rt_otlp_span_view v;
        rt_otlp_scan_init(&it, buf, len);
        while (rt_otlp_scan_next(&it, &v) == 1) {
            expect_same_attrs(v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS);
            if (v.resource.p) {
                expect_same_attrs(v.resource.p, v.resource.len, RT_OTLP_RESOURCE_ATTRS);
            }
        }
        free(buf);
    }
}

static void test_validate_depth_limit(void **state)
{
    char err[RT_OTLP_ERR_MAX];
    size_t n;
    rt_buf req = RT_BUF_INIT;
    build_nested(&req, RT_OTLP_MAX_DEPTH);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), 0);
    assert_int_equal(n, 1);
    Req *dec = rt_gen_unpack(req.data, req.len);
    assert_non_null(dec);
    assert_int_equal(compare_request(req.data, req.len, dec, 0), 1);
    rt_gen_unpack_free(dec);
    rt_buf_reset(&req);
    build_nested(&req, RT_OTLP_MAX_DEPTH + 1);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "deeper than 64"));
    assert_int_equal(checked_walk(req.data, req.len, &n, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "deeper than 64"));
    rt_buf_free(&req);
}

static void test_span_count_and_index_grouping(void **state)
{
    /* Spans of one scope share scope_seq; the pair (resource_index, scope_index) is unique per
     * scope_seq, and the Resource/scope slices are identical for spans under the same owner. */
    Req *req = rt_gen_request(77);
    size_t len;
    uint8_t *buf = rt_gen_pack(req, &len);
    rt_otlp_scan it;
    rt_otlp_span_view v, prev;
    int have_prev = 0;
    rt_otlp_scan_init(&it, buf, len);
    while (rt_otlp_scan_next(&it, &v) == 1) {
        if (have_prev && prev.scope_seq == v.scope_seq) {
            assert_int_equal(prev.resource_index, v.resource_index);
            assert_int_equal(prev.scope_index, v.scope_index);
            assert_ptr_equal(prev.scope.p, v.scope.p);
            assert_int_equal(prev.span_index + 1, v.span_index);
        }
        if (have_prev && prev.resource_index == v.resource_index) {
            assert_ptr_equal(prev.resource.p, v.resource.p);
            assert_true(v.scope_seq >= prev.scope_seq);
        }
        prev = v;
        have_prev = 1;
    }
    assert_true(have_prev);
    free(buf);
    rt_gen_free(req);
}

/* ---- the router's split (otlp_split) ------------------------------------------------------ */

#define SPLIT_OWNERS 3

/* Owner rule for the split tests: from the trace id's first byte (0xff: nobody can take it). */
typedef struct split_fx {
    rt_otlp_splitter sp;
    rt_otlp_part parts[SPLIT_OWNERS];
    int used[SPLIT_OWNERS];
    unsigned salt;
} split_fx;

static int owner_rule(unsigned salt, const uint8_t *tid)
{
    return tid[0] == 0xff ? -1 : (int)((tid[0] ^ salt) % SPLIT_OWNERS);
}

static int fx_owner(void *arg, const uint8_t *tid)
{
    split_fx *fx = arg;
    return owner_rule(fx->salt, tid);
}

static rt_otlp_part *fx_part(void *arg, int o)
{
    split_fx *fx = arg;
    assert_true(o >= 0 && o < SPLIT_OWNERS);
    if (!fx->used[o]) {
        fx->used[o] = 1;
        rt_otlp_part_reset(&fx->parts[o]);
    }
    return &fx->parts[o];
}

static void fx_init(split_fx *fx, unsigned salt)
{
    memset(fx, 0, sizeof *fx);
    fx->salt = salt;
    rt_otlp_splitter_init(&fx->sp, fx_owner, fx_part, fx);
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_otlp_part_init(&fx->parts[o]);
    }
}

static void fx_free(split_fx *fx)
{
    rt_otlp_splitter_free(&fx->sp);
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_otlp_part_free(&fx->parts[o]);
    }
}

/* Split and write each owner's part into out[o] (empty when it got nothing). */
static int fx_split(split_fx *fx, const uint8_t *pb, size_t len, rt_buf out[SPLIT_OWNERS])
{
    memset(fx->used, 0, sizeof fx->used);
    int rc = rt_otlp_split(&fx->sp, pb, len);
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_buf_reset(&out[o]);
        if (rc == 0 && fx->used[o]) {
            size_t n = rt_otlp_part_write(&fx->parts[o], &out[o]);
            assert_int_equal(n, out[o].len);
        }
    }
    return rc;
}

/* The path the split replaced: rt_otlp_check_structure, then the trace-id walk, id check and
 * one otlp_encode record per span, per owner (router/forward.c before the fused walk). */
typedef struct ref_counts {
    size_t spans, invalid, unplaced;
} ref_counts;

static int reference_split(unsigned salt, const uint8_t *pb, size_t len, rt_buf out[SPLIT_OWNERS],
                           ref_counts *rc)
{
    char err[RT_OTLP_ERR_MAX];
    size_t n;
    memset(rc, 0, sizeof *rc);
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_buf_reset(&out[o]);
    }
    if (rt_otlp_check_structure(pb, len, &n, err, sizeof err) != 0) {
        return -1;
    }
    rt_otlp_enc enc[SPLIT_OWNERS];
    size_t cur_res[SPLIT_OWNERS], cur_scope[SPLIT_OWNERS];
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_otlp_enc_init(&enc[o]);
        rt_otlp_enc_begin(&enc[o], &out[o]);
        cur_res[o] = cur_scope[o] = SIZE_MAX;
    }
    rt_otlp_scan sc;
    rt_otlp_span_view v;
    rt_otlp_scan_init_ids(&sc, pb, len);
    while (rt_otlp_scan_next(&sc, &v) == 1) {
        rc->spans++;
        uint64_t a = 0, b = 0;
        if (v.trace_id.len == 16) {
            memcpy(&a, v.trace_id.p, 8);
            memcpy(&b, v.trace_id.p + 8, 8);
        }
        if ((a | b) == 0) {
            rc->invalid++;
            continue;
        }
        int o = owner_rule(salt, v.trace_id.p);
        if (o < 0) {
            rc->unplaced++;
            continue;
        }
        if (cur_res[o] != v.resource_index) {
            cur_res[o] = v.resource_index;
            cur_scope[o] = SIZE_MAX;
            rt_otlp_enc_resource(&enc[o], v.has_resource ? v.resource.p : NULL, v.resource.len,
                                 v.resource_schema_url.p, v.resource_schema_url.len);
        }
        if (cur_scope[o] != v.scope_seq) {
            cur_scope[o] = v.scope_seq;
            rt_otlp_enc_scope(&enc[o], v.has_scope ? v.scope.p : NULL, v.scope.len,
                              v.scope_schema_url.p, v.scope_schema_url.len);
        }
        rt_otlp_enc_span(&enc[o], v.span.p, v.span.len);
    }
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_otlp_enc_finish(&enc[o]);
        rt_otlp_enc_free(&enc[o]);
    }
    return 0;
}

static void assert_same_parts(const rt_buf a[SPLIT_OWNERS], const rt_buf b[SPLIT_OWNERS])
{
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        assert_int_equal(a[o].len, b[o].len);
        if (a[o].len) {
            assert_memory_equal(a[o].data, b[o].data, a[o].len);
        }
    }
}

static void free_parts(rt_buf out[SPLIT_OWNERS])
{
    for (int o = 0; o < SPLIT_OWNERS; o++) {
        rt_buf_free(&out[o]);
    }
}

/* On every generated request the one walk gives each owner exactly the bytes the two-walk path
 * gave it (protobuf-c writes minimal tags and lengths, so the run copies are byte-identical to
 * per-span encoding), with the same span, invalid and unplaced counts; and a part re-split on
 * another rule equals the two-walk path applied to that part's bytes. */
static void test_split_gives_each_owner_what_the_two_walk_path_gave(void **state)
{
    split_fx fx, fx2;
    rt_buf got[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
    rt_buf want[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
    size_t spans = 0, invalid = 0, multi_run_scopes = 0, resplit_spans = 0;
    for (uint64_t seed = 1; seed <= 400; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *buf = rt_gen_pack(req, &len);
        rt_gen_free(req);
        unsigned salt = (unsigned)seed;
        fx_init(&fx, salt);
        ref_counts rc;
        assert_int_equal(reference_split(salt, buf, len, want, &rc), 0);
        if (fx_split(&fx, buf, len, got) != 0) {
            fail_msg("seed %llu: split: %s", (unsigned long long)seed, fx.sp.err);
        }
        assert_same_parts(got, want);
        assert_int_equal(fx.sp.spans, rc.spans);
        assert_int_equal(fx.sp.invalid, rc.invalid);
        assert_int_equal(fx.sp.unplaced, rc.unplaced);
        spans += rc.spans;
        invalid += rc.invalid;
        /* Re-split each part on another rule, as the router does when a node fails. */
        for (int o = 0; o < SPLIT_OWNERS; o++) {
            if (!fx.used[o]) {
                continue;
            }
            for (size_t k = 0; k < fx.parts[o].n_scopes; k++) {
                multi_run_scopes += fx.parts[o].scopes[k].n_runs > 1;
            }
            rt_buf again[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
            fx_init(&fx2, salt + 1);
            rt_otlp_split_part(&fx2.sp, &fx.parts[o]);
            assert_int_equal(fx2.sp.spans, fx.parts[o].spans);
            assert_int_equal(fx2.sp.invalid, 0);
            for (int q = 0; q < SPLIT_OWNERS; q++) {
                if (fx2.used[q]) {
                    rt_otlp_part_write(&fx2.parts[q], &again[q]);
                }
            }
            assert_int_equal(reference_split(salt + 1, got[o].data, got[o].len, want, &rc), 0);
            assert_int_equal(fx2.sp.unplaced, rc.unplaced);
            assert_same_parts(again, want);
            resplit_spans += rc.spans;
            free_parts(again);
            fx_free(&fx2);
        }
        fx_free(&fx);
        free(buf);
    }
    /* The corpus exercised what it should: many spans, invalid ids, owners interleaving inside
     * a scope (several runs per part scope), re-splits. */
    assert_true(spans > 10000);
    assert_true(invalid > 100);
    assert_true(multi_run_scopes > 100);
    assert_true(resplit_spans > 5000);
    free_parts(got);
    free_parts(want);
}

/* The one walk refuses exactly what the structural check refuses, with its message, except a
 * defect inside a span after its trace id (not read: the sampler refuses it), on truncations
 * and random byte changes of generated requests. */
static void test_split_refuses_what_the_structure_check_refuses(void **state)
{
    split_fx fx;
    rt_buf got[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
    uint64_t rnd = 99;
    size_t both_refuse = 0, inside_span = 0, both_accept = 0;
    for (uint64_t seed = 3000; seed < 3060; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *full = rt_gen_pack(req, &len);
        rt_gen_free(req);
        if (len == 0 || len > 30000) {
            free(full);
            continue;
        }
        fx_init(&fx, 0);
        for (int i = 0; i < 300; i++) {
            size_t n = len;
            uint8_t *m = malloc(len);
            memcpy(m, full, len);
            if (i % 3 == 0) {
                n = next_rand(&rnd) % len; /* a truncation */
            } else {
                int flips = 1 + (int)(next_rand(&rnd) % 3);
                for (int k = 0; k < flips; k++) {
                    m[next_rand(&rnd) % len] = (uint8_t)next_rand(&rnd);
                }
            }
            uint8_t *exact = malloc(n ? n : 1); /* exact size: ASan sees any over-read */
            memcpy(exact, m, n);
            char err[RT_OTLP_ERR_MAX];
            size_t count;
            int old = rt_otlp_check_structure(exact, n, &count, err, sizeof err);
            int rc = fx_split(&fx, exact, n, got);
            if (rc != 0) {
                assert_int_equal(old, -1);
                assert_string_equal(fx.sp.err, err);
                both_refuse++;
            } else if (old != 0) {
                /* Only a defect inside a span (after its trace id) goes through. */
                if (strstr(err, "].spans[") == NULL || strstr(err, ": Span: ") == NULL) {
                    fail_msg("split accepted what the check refuses outside a span: %s", err);
                }
                inside_span++;
            } else {
                assert_int_equal(fx.sp.spans, count);
                both_accept++;
            }
            free(exact);
            free(m);
        }
        fx_free(&fx);
        free(full);
    }
    assert_true(both_refuse > 1000);
    assert_true(inside_span > 10);
    assert_true(both_accept > 100);
    free_parts(got);
}

/* Wrap `inner` as field 2 of ScopeSpans, then ResourceSpans, then the request. */
static void wrap_span_request(rt_buf *req, const rt_buf *span)
{
    rt_buf_reset(req);
    build_request(req, span);
}

static void expect_split_refusal(const uint8_t *pb, size_t len, const char *what, const char *want)
{
    split_fx fx;
    rt_buf got[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
    char err[RT_OTLP_ERR_MAX];
    size_t n;
    fx_init(&fx, 0);
    assert_int_equal(rt_otlp_check_structure(pb, len, &n, err, sizeof err), -1);
    if (fx_split(&fx, pb, len, got) != -1) {
        fail_msg("%s: split accepted it", what);
    }
    assert_string_equal(fx.sp.err, err);
    if (strstr(fx.sp.err, want) == NULL || strstr(fx.sp.err, "at byte ") == NULL) {
        fail_msg("%s: message '%s' (want '%s')", what, fx.sp.err, want);
    }
    fx_free(&fx);
    free_parts(got);
}

/* Each level's defects, hand-built: wrong wire types of the known fields, truncated lengths,
 * groups, field 0, at the request, ResourceSpans, ScopeSpans and span top level. */
static void test_split_refuses_malformed_levels_with_a_message(void **state)
{
    static const uint8_t req_varint[] = {0x08, 0x01};            /* resource_spans: varint */
    static const uint8_t req_trunc[] = {0x0a, 0x05, 0x12, 0x00}; /* length past the end */
    static const uint8_t req_field0[] = {0x02, 0x00};            /* field 0 */
    static const uint8_t req_group[] = {0x0b};                   /* group, field 1 */
    static const uint8_t rs_resource_varint[] = {0x0a, 0x02, 0x08, 0x01}; /* resource: varint */
    static const uint8_t rs_scope_spans_f32[] = {0x0a, 0x05, 0x15, 1, 2, 3, 4};
    static const uint8_t rs_url_varint[] = {0x0a, 0x02, 0x18, 0x01};
    static const uint8_t rs_trunc[] = {0x0a, 0x03, 0x12, 0x05, 0x00};
    static const uint8_t ss_scope_varint[] = {0x0a, 0x04, 0x12, 0x02, 0x08, 0x01};
    static const uint8_t ss_spans_f64[] = {0x0a, 0x0b, 0x12, 0x09, 0x11, 1, 2, 3, 4, 5, 6, 7, 8};
    static const uint8_t ss_url_varint[] = {0x0a, 0x04, 0x12, 0x02, 0x18, 0x01};
    static const uint8_t ss_varint_trunc[] = {0x0a, 0x04, 0x12, 0x02, 0x20, 0x80};
    static const uint8_t span_trunc[] = {0x0a, 0x06, 0x12, 0x04, 0x12, 0x09, 0x0a, 0x00};
    static const struct {
        const uint8_t *pb;
        size_t len;
        const char *what, *want;
    } cases[] = {
        {req_varint, sizeof req_varint, "request resource_spans varint", "resource_spans"},
        {req_trunc, sizeof req_trunc, "request length past the end", "request"},
        {req_field0, sizeof req_field0, "request field 0", "bad tag"},
        {req_group, sizeof req_group, "request group", "request"},
        {rs_resource_varint, sizeof rs_resource_varint, "resource varint", "resource"},
        {rs_scope_spans_f32, sizeof rs_scope_spans_f32, "scope_spans fixed32", "scope_spans"},
        {rs_url_varint, sizeof rs_url_varint, "resource schema_url varint", "schema_url"},
        {rs_trunc, sizeof rs_trunc, "scope_spans length past the end", "ResourceSpans"},
        {ss_scope_varint, sizeof ss_scope_varint, "scope varint", "scope"},
        {ss_spans_f64, sizeof ss_spans_f64, "spans fixed64", "spans"},
        {ss_url_varint, sizeof ss_url_varint, "scope schema_url varint", "schema_url"},
        {ss_varint_trunc, sizeof ss_varint_trunc, "unknown varint cut short", "ScopeSpans"},
        {span_trunc, sizeof span_trunc, "span length past the end", "ScopeSpans"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_split_refusal(cases[i].pb, cases[i].len, cases[i].what, cases[i].want);
    }

    /* Span top level, before the trace id (SDKs write it first; anything before it is read):
     * trace_id as a varint, a group, field 0, a name whose length runs past the span. */
    rt_buf span = RT_BUF_INIT, req = RT_BUF_INIT;
    varint_field(&span, 1, 5);
    wrap_span_request(&req, &span);
    expect_split_refusal(req.data, req.len, "span trace_id varint", "trace_id");
    rt_buf_reset(&span);
    str_field(&span, 5, "name");
    rt_pb_append_tag(&span, 100, 3);
    str_field(&span, 1, "AAAAAAAAAAAAAAAA");
    wrap_span_request(&req, &span);
    expect_split_refusal(req.data, req.len, "span group before the trace id", "Span");
    rt_buf_reset(&span);
    rt_buf_append(&span, "\x02\x00", 2);
    wrap_span_request(&req, &span);
    expect_split_refusal(req.data, req.len, "span field 0", "Span: bad tag");
    rt_buf_reset(&span);
    rt_buf_append(&span, "\x2a\x09name", 6);
    wrap_span_request(&req, &span);
    expect_split_refusal(req.data, req.len, "span name past its end", "Span");
    /* trace_id with a one-byte length past the span's end, on the fast path */
    rt_buf_reset(&span);
    rt_buf_append(&span, "\x0a\x10\x01\x02", 4);
    wrap_span_request(&req, &span);
    expect_split_refusal(req.data, req.len, "trace_id past the span's end", "trace_id");
    rt_buf_free(&span);
    rt_buf_free(&req);
}

/* The documented trade: a span whose bytes are malformed after its trace id is not read by the
 * router; it is forwarded whole to its owner, whose full validation refuses it. Trace ids that
 * are too short, all zero or absent are counted invalid and go to nobody. */
static void test_split_forwards_span_bytes_after_the_trace_id_unread(void **state)
{
    split_fx fx;
    rt_buf got[SPLIT_OWNERS] = {RT_BUF_INIT, RT_BUF_INIT, RT_BUF_INIT};
    rt_buf bad = RT_BUF_INIT, ok = RT_BUF_INIT, ss = RT_BUF_INIT, rs = RT_BUF_INIT;
    rt_buf req = RT_BUF_INIT, sp = RT_BUF_INIT;
    str_field(&bad, 1, "\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01\x01");
    rt_pb_append_tag(&bad, 100, 3); /* a group after the trace id */
    wrap(&ss, 2, &bad);
    str_field(&sp, 1, "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00");
    wrap(&ss, 2, &sp); /* all zero */
    rt_buf_reset(&sp);
    str_field(&sp, 1, "12345678");
    wrap(&ss, 2, &sp); /* 8 bytes */
    rt_buf_reset(&sp);
    str_field(&sp, 5, "no trace id");
    wrap(&ss, 2, &sp); /* absent */
    str_field(&ok, 1, "\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02\x02");
    str_field(&ok, 5, "fine");
    wrap(&ss, 2, &ok);
    wrap(&rs, 2, &ss);
    wrap(&req, 1, &rs);

    char err[RT_OTLP_ERR_MAX];
    size_t n;
    assert_int_equal(rt_otlp_check_structure(req.data, req.len, &n, err, sizeof err), -1);
    assert_int_equal(rt_otlp_validate(req.data, req.len, &n, err, sizeof err), -1);
    fx_init(&fx, 0);
    assert_int_equal(fx_split(&fx, req.data, req.len, got), 0);
    assert_int_equal(fx.sp.spans, 5);
    assert_int_equal(fx.sp.invalid, 3);
    assert_int_equal(fx.sp.unplaced, 0);
    /* Owner 1 (0x01 % 3) gets the malformed span byte for byte; its validation refuses it. */
    assert_int_equal(fx.parts[1].spans, 1);
    rt_otlp_scan sc;
    rt_otlp_span_view v;
    rt_otlp_scan_init_ids(&sc, got[1].data, got[1].len);
    assert_int_equal(rt_otlp_scan_next(&sc, &v), -1);
    assert_int_equal(rt_otlp_validate(got[1].data, got[1].len, &n, err, sizeof err), -1);
    assert_non_null(memmem(got[1].data, got[1].len, bad.data, bad.len));
    /* Owner 2 gets the good span, and its part is a valid request. */
    assert_int_equal(fx.parts[2].spans, 1);
    assert_int_equal(rt_otlp_validate(got[2].data, got[2].len, &n, err, sizeof err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(got[0].len, 0);
    fx_free(&fx);
    free_parts(got);
    rt_buf *all[] = {&bad, &ok, &ss, &rs, &req, &sp};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        rt_buf_free(all[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_matches_protobuf_c_for_generated_requests),
        cmocka_unit_test(test_ids_walk_and_structure_check_agree_with_full_walk),
        cmocka_unit_test(test_empty_input_is_an_empty_request),
        cmocka_unit_test(test_every_truncation_stops_cleanly),
        cmocka_unit_test(test_garbage_bytes_never_crash),
        cmocka_unit_test(test_mutated_requests_agree_with_protobuf_c),
        cmocka_unit_test(test_wrong_wire_types_are_errors),
        cmocka_unit_test(test_groups_and_bad_tags_are_errors),
        cmocka_unit_test(test_unknown_fields_are_skipped),
        cmocka_unit_test(test_last_occurrence_wins_and_order_is_free),
        cmocka_unit_test(test_validate_depth_limit),
        cmocka_unit_test(test_attr_index_agrees_with_attr_find),
        cmocka_unit_test(test_keyvalue_decode_agrees_with_the_iterator),
        cmocka_unit_test(test_span_count_and_index_grouping),
        cmocka_unit_test(test_split_gives_each_owner_what_the_two_walk_path_gave),
        cmocka_unit_test(test_split_refuses_what_the_structure_check_refuses),
        cmocka_unit_test(test_split_refuses_malformed_levels_with_a_message),
        cmocka_unit_test(test_split_forwards_span_bytes_after_the_trace_id_unread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
