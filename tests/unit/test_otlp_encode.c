/* test_otlp_encode.c - request builder over borrowed span bytes: walk -> regroup -> encode
 * round trips, byte-identical (canonical) output versus protobuf-c, the attribute-append helper
 * and steady-state reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "alloc.h"
#include "otlp_encode.h"
#include "otlp_gen.h"
#include "otlp_scan.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest Req;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans RS;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans SS;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

/* Which "owner" a span goes to when a request is split (a stand-in for the router's ring). */
static unsigned owner_of(const Span *s, unsigned owners)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < s->trace_id.len; i++) {
        h = (h ^ s->trace_id.data[i]) * 16777619u;
    }
    return h % owners;
}

static unsigned owner_of_view(const rt_otlp_span_view *v, unsigned owners)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < v->trace_id.len; i++) {
        h = (h ^ v->trace_id.p[i]) * 16777619u;
    }
    return h % owners;
}

/* The expected result of regrouping, built with protobuf-c structs: a shallow copy of `src`
 * keeping the spans of `owner` (all spans when owners == 1), dropping scopes and resources left
 * without spans (the encoder only sees resources/scopes that have spans). */
static Req *expected_split(const Req *src, unsigned owner, unsigned owners)
{
    Req *r = rt_calloc(1, sizeof(*r));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(r);
    r->resource_spans = rt_calloc(src->n_resource_spans, sizeof(RS *));
    for (size_t i = 0; i < src->n_resource_spans; i++) {
        const RS *rs = src->resource_spans[i];
        RS *nrs = rt_malloc(sizeof(*nrs));
        *nrs = *rs;
        nrs->n_scope_spans = 0;
        nrs->scope_spans = rt_calloc(rs->n_scope_spans, sizeof(SS *));
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const SS *ss = rs->scope_spans[j];
            SS *nss = rt_malloc(sizeof(*nss));
            *nss = *ss;
            nss->n_spans = 0;
            nss->spans = rt_calloc(ss->n_spans, sizeof(Span *));
            for (size_t k = 0; k < ss->n_spans; k++) {
                if (owners == 1 || owner_of(ss->spans[k], owners) == owner) {
                    nss->spans[nss->n_spans++] = ss->spans[k];
                }
            }
            if (nss->n_spans) {
                nrs->scope_spans[nrs->n_scope_spans++] = nss;
            } else {
                free(nss->spans);
                free(nss);
            }
        }
        if (nrs->n_scope_spans) {
            r->resource_spans[r->n_resource_spans++] = nrs;
        } else {
            free(nrs->scope_spans);
            free(nrs);
        }
    }
    return r;
}

static void expected_free(Req *r)
{
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++) {
            free(r->resource_spans[i]->scope_spans[j]->spans);
            free(r->resource_spans[i]->scope_spans[j]);
        }
        free(r->resource_spans[i]->scope_spans);
        free(r->resource_spans[i]);
    }
    free(r->resource_spans);
    free(r);
}

#define MAX_OWNERS 4

/* Walk `buf` and split its spans over `owners` encoders the way the router does: each span is
 * copied under its original resource and scope. */
static void split_with_encoder(const uint8_t *buf, size_t len, unsigned owners, rt_otlp_enc *enc,
                               rt_buf *out)
{
    size_t last_res[MAX_OWNERS], last_scope[MAX_OWNERS];
    for (unsigned o = 0; o < owners; o++) {
        rt_otlp_enc_begin(&enc[o], &out[o]);
        last_res[o] = last_scope[o] = SIZE_MAX;
    }
    rt_otlp_scan it;
    rt_otlp_span_view v;
    rt_otlp_scan_init(&it, buf, len);
    int rc;
    while ((rc = rt_otlp_scan_next(&it, &v)) == 1) {
        unsigned o = owners == 1 ? 0 : owner_of_view(&v, owners);
        if (last_res[o] != v.resource_index) {
            rt_otlp_enc_resource(&enc[o], v.resource.p, v.resource.len, v.resource_schema_url.p,
                                 v.resource_schema_url.len);
            last_res[o] = v.resource_index;
        }
        if (last_scope[o] != v.scope_seq) {
            rt_otlp_enc_scope(&enc[o], v.scope.p, v.scope.len, v.scope_schema_url.p,
                              v.scope_schema_url.len);
            last_scope[o] = v.scope_seq;
        }
        rt_otlp_enc_span(&enc[o], v.span.p, v.span.len);
    }
    assert_int_equal(rc, 0);
    for (unsigned o = 0; o < owners; o++) {
        size_t before = out[o].len;
        size_t n = rt_otlp_enc_finish(&enc[o]);
        assert_int_equal(n, out[o].len - before);
    }
}

static void check_split(uint64_t seed, unsigned owners)
{
    Req *req = rt_gen_request(seed);
    size_t len;
    uint8_t *buf = rt_gen_pack(req, &len);
    rt_otlp_enc enc[MAX_OWNERS];
    rt_buf out[MAX_OWNERS];
    for (unsigned o = 0; o < owners; o++) {
        rt_otlp_enc_init(&enc[o]);
        rt_buf_init(&out[o]);
    }
    split_with_encoder(buf, len, owners, enc, out);

    size_t spans_total = 0;
    for (unsigned o = 0; o < owners; o++) {
        Req *want = expected_split(req, o, owners);
        size_t wlen;
        uint8_t *wbuf = rt_gen_pack(want, &wlen);
        /* Byte-identical to protobuf-c packing the same grouping: canonical lengths, field
         * order, absent vs empty resource/scope, omitted empty schema_url. */
        assert_int_equal(out[o].len, wlen);
        if (wlen) {
            assert_memory_equal(out[o].data, wbuf, wlen);
        }
        /* And it decodes, validates and re-packs to itself. */
        Req *dec = rt_gen_unpack(out[o].data, out[o].len);
        assert_non_null(dec);
        size_t rlen;
        uint8_t *rbuf = rt_gen_pack(dec, &rlen);
        assert_int_equal(rlen, out[o].len);
        if (rlen) {
            assert_memory_equal(rbuf, out[o].data, rlen);
        }
        size_t n;
        char err[RT_OTLP_ERR_MAX];
        assert_int_equal(rt_otlp_validate(out[o].data, out[o].len, &n, err, sizeof(err)), 0);
        spans_total += n;
        free(rbuf);
        rt_gen_unpack_free(dec);
        free(wbuf);
        expected_free(want);
        rt_otlp_enc_free(&enc[o]);
        rt_buf_free(&out[o]);
    }
    size_t orig;
    char err[RT_OTLP_ERR_MAX];
    assert_int_equal(rt_otlp_validate(buf, len, &orig, err, sizeof(err)), 0);
    assert_int_equal(spans_total, orig); /* no span lost or duplicated */
    free(buf);
    rt_gen_free(req);
}

static void test_walk_regroup_encode_round_trip(void **state)
{
    for (uint64_t seed = 1; seed <= 300; seed++) {
        check_split(seed, 1);
    }
}

static void test_split_by_owner_matches_protobuf_c(void **state)
{
    for (uint64_t seed = 301; seed <= 500; seed++) {
        check_split(seed, 3);
    }
}

/* Spans whose sizes straddle the one/two and two/three byte length-prefix boundaries at every
 * nesting level come out byte-identical to protobuf-c. */
static void test_length_prefix_boundaries_are_canonical(void **state)
{
    static const size_t ranges[][2] = {{100, 140}, {16340, 16400}};
    rt_otlp_enc enc;
    rt_otlp_enc_init(&enc);
    rt_buf out = RT_BUF_INIT;
    for (size_t r = 0; r < 2; r++) {
        for (size_t L = ranges[r][0]; L <= ranges[r][1]; L++) {
            char *name = rt_malloc(L + 1);
            memset(name, 'n', L);
            name[L] = '\0';
            Span span = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
            span.name = name;
            Span *spans[1] = {&span};
            SS ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
            ss.n_spans = 1;
            ss.spans = spans;
            SS *sss[1] = {&ss};
            RS rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
            rs.n_scope_spans = 1;
            rs.scope_spans = sss;
            RS *rss[1] = {&rs};
            Req req =
                OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
            req.n_resource_spans = 1;
            req.resource_spans = rss;
            size_t len;
            uint8_t *buf = rt_gen_pack(&req, &len);

            rt_buf_reset(&out);
            split_with_encoder(buf, len, 1, &enc, &out);
            assert_int_equal(out.len, len);
            assert_memory_equal(out.data, buf, len);
            free(buf);
            free(name);
        }
    }
    rt_buf_free(&out);
    rt_otlp_enc_free(&enc);
}

static void test_implicit_groups_and_empty_request(void **state)
{
    rt_otlp_enc enc;
    rt_otlp_enc_init(&enc);
    rt_buf out = RT_BUF_INIT;

    rt_otlp_enc_begin(&enc, &out);
    assert_int_equal(rt_otlp_enc_finish(&enc), 0);
    assert_int_equal(out.len, 0);

    /* A span with nothing opened: one ResourceSpans without resource, one ScopeSpans without
     * scope. Then an explicit resource (present but empty) whose span gets an implicit scope. */
    static const uint8_t span1[] = {0x2a, 0x01, 'a'}; /* name "a" */
    static const uint8_t span2[] = {0x2a, 0x01, 'b'};
    rt_otlp_enc_begin(&enc, &out);
    rt_otlp_enc_span(&enc, span1, sizeof(span1));
    rt_otlp_enc_resource(&enc, (const uint8_t *)"", 0, (const uint8_t *)"u", 1);
    rt_otlp_enc_span(&enc, span2, sizeof(span2));
    rt_otlp_enc_resource(&enc, NULL, 0, NULL, 0); /* a resource with no scopes at all */
    assert_int_equal(rt_otlp_enc_span_count(&enc), 2);
    rt_otlp_enc_finish(&enc);

    Req *dec = rt_gen_unpack(out.data, out.len);
    assert_non_null(dec);
    assert_int_equal(dec->n_resource_spans, 3);
    assert_null(dec->resource_spans[0]->resource);
    assert_int_equal(dec->resource_spans[0]->n_scope_spans, 1);
    assert_null(dec->resource_spans[0]->scope_spans[0]->scope);
    assert_int_equal(dec->resource_spans[0]->scope_spans[0]->n_spans, 1);
    assert_string_equal(dec->resource_spans[0]->scope_spans[0]->spans[0]->name, "a");
    assert_non_null(dec->resource_spans[1]->resource);
    assert_string_equal(dec->resource_spans[1]->schema_url, "u");
    assert_int_equal(dec->resource_spans[1]->n_scope_spans, 1);
    assert_string_equal(dec->resource_spans[1]->scope_spans[0]->spans[0]->name, "b");
    assert_null(dec->resource_spans[2]->resource);
    assert_int_equal(dec->resource_spans[2]->n_scope_spans, 0);
    /* Canonical: protobuf-c packs the decoded tree to the same bytes. */
    size_t rlen;
    uint8_t *rbuf = rt_gen_pack(dec, &rlen);
    assert_int_equal(rlen, out.len);
    assert_memory_equal(rbuf, out.data, rlen);
    free(rbuf);
    rt_gen_unpack_free(dec);
    rt_buf_free(&out);
    rt_otlp_enc_free(&enc);
}

/* Appending field 9 to span bytes gives a span protobuf-c decodes with one more attribute, and
 * everything else unchanged. */
static void check_appended(const uint8_t *span, size_t len, const char *key, const char *val)
{
    rt_buf out = RT_BUF_INIT;
    rt_buf_append(&out, "junk", 4); /* appends after existing content */
    size_t n = rt_otlp_span_append_str_attr(&out, span, len, key, strlen(key), val, strlen(val));
    assert_int_equal(n, out.len - 4);
    assert_int_equal(n, len + rt_otlp_str_attr_size(9, strlen(key), strlen(val)));
    assert_memory_equal(out.data + 4, span, len);

    Span *orig = opentelemetry__proto__trace__v1__span__unpack(NULL, len, span);
    Span *tagged = opentelemetry__proto__trace__v1__span__unpack(NULL, n, out.data + 4);
    assert_non_null(orig);
    assert_non_null(tagged);
    assert_int_equal(tagged->n_attributes, orig->n_attributes + 1);
    Opentelemetry__Proto__Common__V1__KeyValue *kv = tagged->attributes[tagged->n_attributes - 1];
    assert_string_equal(kv->key, key);
    assert_non_null(kv->value);
    assert_int_equal(kv->value->value_case,
                     OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE);
    assert_string_equal(kv->value->string_value, val);
    /* Without the new attribute, the decoded span packs back to the original bytes. */
    tagged->n_attributes--;
    size_t plen = opentelemetry__proto__trace__v1__span__get_packed_size(tagged);
    uint8_t *packed = rt_malloc(plen);
    opentelemetry__proto__trace__v1__span__pack(tagged, packed);
    assert_int_equal(plen, len);
    assert_memory_equal(packed, span, len);
    tagged->n_attributes++;
    /* The KeyValue we wrote is what protobuf-c writes for it. */
    size_t kvlen = opentelemetry__proto__common__v1__key_value__get_packed_size(kv);
    assert_int_equal(rt_otlp_str_attr_size(9, strlen(key), strlen(val)),
                     1 + rt_pb_varint_size(kvlen) + kvlen);
    /* The walker sees it too. */
    rt_otlp_attr a;
    assert_int_equal(rt_otlp_attr_find(out.data + 4, n, RT_OTLP_SPAN_ATTRS, key, strlen(key), &a),
                     1);
    free(packed);
    opentelemetry__proto__trace__v1__span__free_unpacked(orig, NULL);
    opentelemetry__proto__trace__v1__span__free_unpacked(tagged, NULL);
    rt_buf_free(&out);
}

static void test_append_attribute_to_encoded_span(void **state)
{
    size_t checked = 0;
    char longval[300];
    memset(longval, 'v', sizeof(longval) - 1);
    longval[sizeof(longval) - 1] = '\0';
    for (uint64_t seed = 900; seed < 920; seed++) {
        Req *req = rt_gen_request(seed);
        size_t len;
        uint8_t *buf = rt_gen_pack(req, &len);
        rt_otlp_scan it;
        rt_otlp_span_view v;
        rt_otlp_scan_init(&it, buf, len);
        while (rt_otlp_scan_next(&it, &v) == 1) {
            check_appended(v.span.p, v.span.len, "tailsampling.policy", "latency");
            if (checked % 7 == 0) {
                check_appended(v.span.p, v.span.len, "", "");
                check_appended(v.span.p, v.span.len, "k", longval); /* 2-byte lengths */
            }
            checked++;
        }
        free(buf);
        rt_gen_free(req);
    }
    assert_true(checked > 100);
    /* An empty span gains exactly one attribute. */
    check_appended((const uint8_t *)"", 0, "tailsampling.policy", "errors");
}

static void test_encoder_tags_spans_without_copying(void **state)
{
    Req *req = rt_gen_request(4242);
    size_t len;
    uint8_t *buf = rt_gen_pack(req, &len);
    rt_otlp_enc enc;
    rt_otlp_enc_init(&enc);
    rt_buf out = RT_BUF_INIT, expect = RT_BUF_INIT, tmp = RT_BUF_INIT;
    rt_otlp_enc_begin(&enc, &out);
    size_t last_res = SIZE_MAX, last_scope = SIZE_MAX, spans = 0;
    rt_otlp_scan it;
    rt_otlp_span_view v;
    /* Reference: tag each span into a scratch buffer first, then encode those copies. Both
     * paths must give the same bytes. */
    uint8_t **copies = rt_calloc(4096, sizeof(uint8_t *));
    size_t *clen = rt_calloc(4096, sizeof(size_t));
    rt_otlp_enc ref;
    rt_otlp_enc_init(&ref);
    rt_otlp_enc_begin(&ref, &expect);
    rt_otlp_scan_init(&it, buf, len);
    while (rt_otlp_scan_next(&it, &v) == 1) {
        if (last_res != v.resource_index) {
            rt_otlp_enc_resource(&enc, v.resource.p, v.resource.len, v.resource_schema_url.p,
                                 v.resource_schema_url.len);
            rt_otlp_enc_resource(&ref, v.resource.p, v.resource.len, v.resource_schema_url.p,
                                 v.resource_schema_url.len);
            last_res = v.resource_index;
        }
        if (last_scope != v.scope_seq) {
            rt_otlp_enc_scope(&enc, v.scope.p, v.scope.len, v.scope_schema_url.p,
                              v.scope_schema_url.len);
            rt_otlp_enc_scope(&ref, v.scope.p, v.scope.len, v.scope_schema_url.p,
                              v.scope_schema_url.len);
            last_scope = v.scope_seq;
        }
        rt_otlp_enc_span_with_attr(&enc, v.span.p, v.span.len, "tailsampling.policy", 19, "always",
                                   6);
        rt_buf_reset(&tmp);
        rt_otlp_span_append_str_attr(&tmp, v.span.p, v.span.len, "tailsampling.policy", 19,
                                     "always", 6);
        copies[spans] = rt_buf_steal(&tmp, &clen[spans]);
        rt_otlp_enc_span(&ref, copies[spans], clen[spans]);
        spans++;
    }
    assert_true(spans > 0);
    rt_otlp_enc_finish(&enc);
    rt_otlp_enc_finish(&ref);
    assert_int_equal(out.len, expect.len);
    assert_memory_equal(out.data, expect.data, out.len);

    size_t n;
    char err[RT_OTLP_ERR_MAX];
    assert_int_equal(rt_otlp_validate(out.data, out.len, &n, err, sizeof(err)), 0);
    assert_int_equal(n, spans);
    Req *dec = rt_gen_unpack(out.data, out.len);
    assert_non_null(dec);
    size_t seen = 0;
    for (size_t i = 0; i < dec->n_resource_spans; i++) {
        for (size_t j = 0; j < dec->resource_spans[i]->n_scope_spans; j++) {
            SS *ss = dec->resource_spans[i]->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++) {
                Span *s = ss->spans[k];
                assert_true(s->n_attributes >= 1);
                assert_string_equal(s->attributes[s->n_attributes - 1]->key, "tailsampling.policy");
                assert_string_equal(s->attributes[s->n_attributes - 1]->value->string_value,
                                    "always");
                seen++;
            }
        }
    }
    assert_int_equal(seen, spans);
    rt_gen_unpack_free(dec);
    for (size_t i = 0; i < spans; i++) {
        free(copies[i]);
    }
    free(copies);
    free(clen);
    rt_otlp_enc_free(&ref);
    rt_otlp_enc_free(&enc);
    rt_buf_free(&out);
    rt_buf_free(&expect);
    rt_buf_free(&tmp);
    free(buf);
    rt_gen_free(req);
}

/* Once warm, encoding the same shape again does not grow (reallocate) the encoder's arrays. */
static void test_steady_state_reuses_arrays(void **state)
{
    Req *req = rt_gen_request(31337);
    size_t len;
    uint8_t *buf = rt_gen_pack(req, &len);
    rt_otlp_enc enc;
    rt_otlp_enc_init(&enc);
    rt_buf out = RT_BUF_INIT;
    split_with_encoder(buf, len, 1, &enc, &out);
    size_t first_len = out.len;
    const void *res = enc.res, *scopes = enc.scopes, *spans = enc.spans;
    size_t caps[3] = {enc.cap_res, enc.cap_scopes, enc.cap_spans};
    for (int i = 0; i < 10; i++) {
        rt_buf_reset(&out);
        split_with_encoder(buf, len, 1, &enc, &out);
        assert_int_equal(out.len, first_len);
        assert_ptr_equal(enc.res, res);
        assert_ptr_equal(enc.scopes, scopes);
        assert_ptr_equal(enc.spans, spans);
        assert_int_equal(enc.cap_res, caps[0]);
        assert_int_equal(enc.cap_scopes, caps[1]);
        assert_int_equal(enc.cap_spans, caps[2]);
    }
    rt_buf_free(&out);
    rt_otlp_enc_free(&enc);
    free(buf);
    rt_gen_free(req);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_regroup_encode_round_trip),
        cmocka_unit_test(test_split_by_owner_matches_protobuf_c),
        cmocka_unit_test(test_length_prefix_boundaries_are_canonical),
        cmocka_unit_test(test_implicit_groups_and_empty_request),
        cmocka_unit_test(test_append_attribute_to_encoded_span),
        cmocka_unit_test(test_encoder_tags_spans_without_copying),
        cmocka_unit_test(test_steady_state_reuses_arrays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
