/* otlp_encode.c - ExportTraceServiceRequest builder over borrowed span bytes (otlp_encode.h). */
#include "otlp_encode.h"

#include <stdlib.h>
#include <string.h>

#include "alloc.h"

/* Field numbers (opentelemetry-proto). */
#define REQ_RESOURCE_SPANS  1
#define RS_RESOURCE         1
#define RS_SCOPE_SPANS      2
#define RS_SCHEMA_URL       3
#define SS_SCOPE            1
#define SS_SPANS            2
#define SS_SCHEMA_URL       3
#define SPAN_ATTRIBUTES     9
#define RESOURCE_ATTRIBUTES 1
#define KV_KEY              1
#define KV_VALUE            2
#define ANY_STRING          1

void rt_otlp_enc_init(rt_otlp_enc *enc)
{
    memset(enc, 0, sizeof(*enc));
}

void rt_otlp_enc_free(rt_otlp_enc *enc)
{
    free(enc->res);
    free(enc->scopes);
    free(enc->spans);
    memset(enc, 0, sizeof(*enc));
}

void rt_otlp_enc_begin(rt_otlp_enc *enc, rt_buf *out)
{
    enc->out = out;
    enc->n_res = enc->n_scopes = enc->n_spans = 0;
    enc->view_res = enc->view_scope = SIZE_MAX;
}

void rt_otlp_enc_view(rt_otlp_enc *enc, const rt_otlp_span_view *v)
{
    if (enc->view_res != v->resource_index) {
        rt_otlp_enc_resource(enc, v->has_resource ? v->resource.p : NULL, v->resource.len,
                             v->resource_schema_url.p, v->resource_schema_url.len);
        enc->view_res = v->resource_index;
        enc->view_scope = SIZE_MAX;
    }
    if (enc->view_scope != v->scope_seq) {
        rt_otlp_enc_scope(enc, v->has_scope ? v->scope.p : NULL, v->scope.len,
                          v->scope_schema_url.p, v->scope_schema_url.len);
        enc->view_scope = v->scope_seq;
    }
    rt_otlp_enc_span(enc, v->span.p, v->span.len);
}

/* Grow a record array to hold one more element (amortised doubling). */
static void *grow(void *arr, size_t *cap, size_t n, size_t elem)
{
    if (n < *cap) {
        return arr;
    }
    *cap = *cap ? *cap * 2 : 16;
    return rt_realloc(arr, *cap * elem);
}

static rt_pb_slice mk_slice(const uint8_t *p, size_t len)
{
    rt_pb_slice s = {p, p ? len : 0};
    return s;
}

void rt_otlp_enc_resource(rt_otlp_enc *enc, const uint8_t *resource, size_t len,
                          const uint8_t *schema_url, size_t url_len)
{
    enc->res = grow(enc->res, &enc->cap_res, enc->n_res, sizeof(*enc->res));
    rt_otlp_enc_res_rec *r = &enc->res[enc->n_res++];
    r->resource = mk_slice(resource, len);
    r->schema_url = mk_slice(schema_url, url_len);
    r->akey = r->aval = (rt_pb_slice){NULL, 0};
    r->first_scope = enc->n_scopes;
    r->n_scopes = 0;
    r->size = 0;
}

void rt_otlp_enc_resource_with_attr(rt_otlp_enc *enc, const uint8_t *resource, size_t len,
                                    const uint8_t *schema_url, size_t url_len, const char *key,
                                    size_t klen, const char *val, size_t vlen)
{
    rt_otlp_enc_resource(enc, resource, len, schema_url, url_len);
    rt_otlp_enc_res_rec *r = &enc->res[enc->n_res - 1];
    r->akey = mk_slice((const uint8_t *)key, klen);
    r->aval = mk_slice((const uint8_t *)val, vlen);
}

void rt_otlp_enc_scope(rt_otlp_enc *enc, const uint8_t *scope, size_t len,
                       const uint8_t *schema_url, size_t url_len)
{
    if (enc->n_res == 0) {
        rt_otlp_enc_resource(enc, NULL, 0, NULL, 0);
    }
    enc->scopes = grow(enc->scopes, &enc->cap_scopes, enc->n_scopes, sizeof(*enc->scopes));
    rt_otlp_enc_scope_rec *s = &enc->scopes[enc->n_scopes++];
    s->scope = mk_slice(scope, len);
    s->schema_url = mk_slice(schema_url, url_len);
    s->first_span = enc->n_spans;
    s->n_spans = 0;
    s->size = 0;
    enc->res[enc->n_res - 1].n_scopes++;
}

static rt_otlp_enc_span_rec *add_span(rt_otlp_enc *enc, const uint8_t *span, size_t len)
{
    if (enc->n_scopes == 0 || enc->res[enc->n_res - 1].n_scopes == 0) {
        rt_otlp_enc_scope(enc, NULL, 0, NULL, 0);
    }
    enc->spans = grow(enc->spans, &enc->cap_spans, enc->n_spans, sizeof(*enc->spans));
    rt_otlp_enc_span_rec *r = &enc->spans[enc->n_spans++];
    r->span = mk_slice(span, len);
    r->akey.p = r->aval.p = NULL;
    r->akey.len = r->aval.len = 0;
    r->size = r->span.len;
    enc->scopes[enc->n_scopes - 1].n_spans++;
    return r;
}

void rt_otlp_enc_span(rt_otlp_enc *enc, const uint8_t *span, size_t len)
{
    add_span(enc, span, len);
}

void rt_otlp_enc_span_with_attr(rt_otlp_enc *enc, const uint8_t *span, size_t len, const char *key,
                                size_t klen, const char *val, size_t vlen)
{
    rt_otlp_enc_span_rec *r = add_span(enc, span, len);
    /* A non-NULL key pointer marks the attribute present even when the key is empty. */
    r->akey.p = (const uint8_t *)(key ? key : "");
    r->akey.len = klen;
    r->aval.p = (const uint8_t *)(val ? val : "");
    r->aval.len = vlen;
    r->size += rt_otlp_str_attr_size(SPAN_ATTRIBUTES, klen, vlen);
}

/* Size of a proto3 string/bytes field that is omitted when empty. */
static size_t opt_str_size(uint32_t field, rt_pb_slice s)
{
    return s.len ? rt_pb_len_field_size(field, s.len) : 0;
}

static void append_opt_str(rt_buf *b, uint32_t field, rt_pb_slice s)
{
    if (s.len) {
        rt_pb_append_len_field(b, field, s.p, s.len);
    }
}

size_t rt_otlp_enc_finish(rt_otlp_enc *enc)
{
    rt_buf *b = enc->out;
    size_t start = b->len;

    /* Pass 1: sizes bottom-up, so every length prefix is known (and minimal) when written. */
    size_t total = 0;
    for (size_t i = 0; i < enc->n_res; i++) {
        rt_otlp_enc_res_rec *r = &enc->res[i];
        size_t rsize = 0;
        r->res_len = r->resource.len;
        if (r->akey.p) {
            r->res_len += rt_otlp_str_attr_size(RESOURCE_ATTRIBUTES, r->akey.len, r->aval.len);
        }
        if (r->resource.p || r->akey.p) {
            rsize += rt_pb_len_field_size(RS_RESOURCE, r->res_len);
        }
        for (size_t j = r->first_scope; j < r->first_scope + r->n_scopes; j++) {
            rt_otlp_enc_scope_rec *s = &enc->scopes[j];
            size_t ssize = 0;
            if (s->scope.p) {
                ssize += rt_pb_len_field_size(SS_SCOPE, s->scope.len);
            }
            for (size_t k = s->first_span; k < s->first_span + s->n_spans; k++) {
                ssize += rt_pb_len_field_size(SS_SPANS, enc->spans[k].size);
            }
            ssize += opt_str_size(SS_SCHEMA_URL, s->schema_url);
            s->size = ssize;
            rsize += rt_pb_len_field_size(RS_SCOPE_SPANS, ssize);
        }
        rsize += opt_str_size(RS_SCHEMA_URL, r->schema_url);
        r->size = rsize;
        total += rt_pb_len_field_size(REQ_RESOURCE_SPANS, rsize);
    }

    /* Pass 2: write, fields in field-number order as protobuf-c does. */
    rt_buf_reserve(b, total);
    for (size_t i = 0; i < enc->n_res; i++) {
        rt_otlp_enc_res_rec *r = &enc->res[i];
        rt_pb_append_len_prefix(b, REQ_RESOURCE_SPANS, r->size);
        if (r->resource.p || r->akey.p) {
            rt_pb_append_len_prefix(b, RS_RESOURCE, r->res_len);
            if (r->resource.len) {
                rt_buf_append(b, r->resource.p, r->resource.len);
            }
            if (r->akey.p) {
                rt_otlp_append_str_attr(b, RESOURCE_ATTRIBUTES, (const char *)r->akey.p,
                                        r->akey.len, (const char *)r->aval.p, r->aval.len);
            }
        }
        for (size_t j = r->first_scope; j < r->first_scope + r->n_scopes; j++) {
            rt_otlp_enc_scope_rec *s = &enc->scopes[j];
            rt_pb_append_len_prefix(b, RS_SCOPE_SPANS, s->size);
            if (s->scope.p) {
                rt_pb_append_len_field(b, SS_SCOPE, s->scope.p, s->scope.len);
            }
            for (size_t k = s->first_span; k < s->first_span + s->n_spans; k++) {
                rt_otlp_enc_span_rec *sp = &enc->spans[k];
                rt_pb_append_len_prefix(b, SS_SPANS, sp->size);
                rt_buf_append(b, sp->span.p, sp->span.len);
                if (sp->akey.p) {
                    rt_otlp_append_str_attr(b, SPAN_ATTRIBUTES, (const char *)sp->akey.p,
                                            sp->akey.len, (const char *)sp->aval.p, sp->aval.len);
                }
            }
            append_opt_str(b, SS_SCHEMA_URL, s->schema_url);
        }
        append_opt_str(b, RS_SCHEMA_URL, r->schema_url);
    }
    enc->n_res = enc->n_scopes = enc->n_spans = 0;
    return b->len - start;
}

/* KeyValue{key (omitted when empty), value: AnyValue{string_value}} payload size. A oneof
 * member is always written, even when empty. */
static size_t kv_payload_size(size_t klen, size_t vlen)
{
    size_t any = rt_pb_len_field_size(ANY_STRING, vlen);
    return (klen ? rt_pb_len_field_size(KV_KEY, klen) : 0) + rt_pb_len_field_size(KV_VALUE, any);
}

size_t rt_otlp_str_attr_size(uint32_t field, size_t klen, size_t vlen)
{
    return rt_pb_len_field_size(field, kv_payload_size(klen, vlen));
}

void rt_otlp_append_str_attr(rt_buf *out, uint32_t field, const char *key, size_t klen,
                             const char *val, size_t vlen)
{
    rt_pb_append_len_prefix(out, field, kv_payload_size(klen, vlen));
    if (klen) {
        rt_pb_append_len_field(out, KV_KEY, key, klen);
    }
    rt_pb_append_len_prefix(out, KV_VALUE, rt_pb_len_field_size(ANY_STRING, vlen));
    rt_pb_append_len_field(out, ANY_STRING, val, vlen);
}

size_t rt_otlp_span_append_str_attr(rt_buf *out, const uint8_t *span, size_t len, const char *key,
                                    size_t klen, const char *val, size_t vlen)
{
    size_t start = out->len;
    rt_buf_reserve(out, len + rt_otlp_str_attr_size(SPAN_ATTRIBUTES, klen, vlen));
    rt_buf_append(out, span, len);
    rt_otlp_append_str_attr(out, SPAN_ATTRIBUTES, key, klen, val, vlen);
    return out->len - start;
}
