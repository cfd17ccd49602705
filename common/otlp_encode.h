/* otlp_encode.h - build an ExportTraceServiceRequest from already-encoded span bytes.
 *
 * The router and sampler never re-encode a span: they copy its bytes (as handed out by
 * otlp_scan) into a new request under its original Resource and InstrumentationScope. This
 * module records borrowed slices and writes the request in one go at finish time, so every
 * length prefix is the minimal varint (output is byte-identical to protobuf-c packing the same
 * tree). The encoder's arrays are reused across requests: no allocation per span once warm.
 *
 * Usage:
 *   rt_otlp_enc enc;  rt_otlp_enc_init(&enc);
 *   rt_otlp_enc_begin(&enc, &out);
 *   rt_otlp_enc_resource(&enc, res, res_len, url, url_len);     // per ResourceSpans
 *   rt_otlp_enc_scope(&enc, scope, scope_len, url, url_len);    // per ScopeSpans
 *   rt_otlp_enc_span(&enc, span, span_len);                     // per span
 *   rt_otlp_enc_finish(&enc);                                   // appends to out
 *   rt_otlp_enc_free(&enc);
 */
#ifndef RT_OTLP_ENCODE_H
#define RT_OTLP_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "otlp_scan.h"
#include "pb.h"

typedef struct rt_otlp_enc_span_rec {
    rt_pb_slice span;
    rt_pb_slice akey; /* optional extra string attribute appended as field 9 (p NULL: none) */
    rt_pb_slice aval;
    size_t size; /* encoded Span payload size, including the extra attribute */
} rt_otlp_enc_span_rec;

typedef struct rt_otlp_enc_scope_rec {
    rt_pb_slice scope; /* p NULL: no scope field */
    rt_pb_slice schema_url;
    size_t first_span, n_spans;
    size_t size; /* ScopeSpans payload size, filled at finish */
} rt_otlp_enc_scope_rec;

typedef struct rt_otlp_enc_res_rec {
    rt_pb_slice resource; /* p NULL: no resource field */
    rt_pb_slice schema_url;
    rt_pb_slice akey; /* optional extra string attribute appended to the Resource (p NULL: none) */
    rt_pb_slice aval;
    size_t res_len; /* Resource payload size including the extra attribute, filled at finish */
    size_t first_scope, n_scopes;
    size_t size; /* ResourceSpans payload size, filled at finish */
} rt_otlp_enc_res_rec;

typedef struct rt_otlp_enc {
    rt_buf *out; /* ref: finish appends here */
    rt_otlp_enc_res_rec *res;
    size_t n_res, cap_res;
    rt_otlp_enc_scope_rec *scopes;
    size_t n_scopes, cap_scopes;
    rt_otlp_enc_span_rec *spans;
    size_t n_spans, cap_spans;
    size_t view_res, view_scope; /* rt_otlp_enc_view: the walk's resource and scope last added */
} rt_otlp_enc;

void rt_otlp_enc_init(rt_otlp_enc *enc);
/* Release the encoder's arrays (not the output buffer). */
void rt_otlp_enc_free(rt_otlp_enc *enc);

/* Start a request that will be appended to `out` at finish. Forgets anything recorded. */
void rt_otlp_enc_begin(rt_otlp_enc *enc, rt_buf *out);

/* Open a new ResourceSpans. `resource` is the encoded Resource message (NULL: field absent;
 * non-NULL with len 0: present but empty); `schema_url` may be NULL/empty (then omitted).
 * All bytes are borrowed and must stay valid until rt_otlp_enc_finish(). */
void rt_otlp_enc_resource(rt_otlp_enc *enc, const uint8_t *resource, size_t len,
                          const uint8_t *schema_url, size_t url_len);

/* Like rt_otlp_enc_resource, but the Resource gets one more string attribute `key` = `val`
 * appended (a Resource is written even when `resource` is NULL). key/val are borrowed too.
 * Samplers use it to sign what they export (ringtail.sampler.id). */
void rt_otlp_enc_resource_with_attr(rt_otlp_enc *enc, const uint8_t *resource, size_t len,
                                    const uint8_t *schema_url, size_t url_len, const char *key,
                                    size_t klen, const char *val, size_t vlen);

/* Open a new ScopeSpans inside the current ResourceSpans (one with no resource is opened
 * implicitly if none is). Same conventions as rt_otlp_enc_resource. */
void rt_otlp_enc_scope(rt_otlp_enc *enc, const uint8_t *scope, size_t len,
                       const uint8_t *schema_url, size_t url_len);

/* Add an encoded Span (message bytes, no tag/length) to the current ScopeSpans (opened
 * implicitly, without scope, if none is). Borrowed until finish. */
void rt_otlp_enc_span(rt_otlp_enc *enc, const uint8_t *span, size_t len);

/* Add the span of walker view `v` (otlp_scan.h) under its own Resource and scope: a ResourceSpans
 * or ScopeSpans is opened when the view's resource_index / scope_seq differs from the span last
 * added this way since begin. For splitting one request into several: views taken from one walk,
 * each handed to the encoder of its part. Borrowed until finish, as above. */
void rt_otlp_enc_view(rt_otlp_enc *enc, const rt_otlp_span_view *v);

/* Like rt_otlp_enc_span, but the span gets one more attribute `key` = string `val` appended
 * as a trailing field 9 (see rt_otlp_span_append_str_attr). key/val are borrowed too. */
void rt_otlp_enc_span_with_attr(rt_otlp_enc *enc, const uint8_t *span, size_t len, const char *key,
                                size_t klen, const char *val, size_t vlen);

/* Write the request to the output buffer. Returns the number of bytes appended (0 when
 * nothing was recorded: an empty request is zero bytes). The encoder can then be begun again. */
size_t rt_otlp_enc_finish(rt_otlp_enc *enc);

/* Number of spans recorded since begin. */
static inline size_t rt_otlp_enc_span_count(const rt_otlp_enc *enc)
{
    return enc->n_spans;
}

/* ---- appending an attribute to an encoded span ------------------------------------------- */

/* Size of the bytes rt_otlp_append_str_attr adds: a field-`field` KeyValue{key, AnyValue{
 * string_value}} (the key field is omitted when empty, as protobuf-c would). */
size_t rt_otlp_str_attr_size(uint32_t field, size_t klen, size_t vlen);

/* Append one field-`field` KeyValue with a string value to `out` (e.g. field 9 after a Span's
 * bytes, field 1 after a Resource's). Repeated fields may be appended to any encoded message,
 * so span + this is a valid Span with one more attribute. */
void rt_otlp_append_str_attr(rt_buf *out, uint32_t field, const char *key, size_t klen,
                             const char *val, size_t vlen);

/* Append `span` followed by an extra attribute key=val (field 9) to out. Returns the number of
 * bytes appended. */
size_t rt_otlp_span_append_str_attr(rt_buf *out, const uint8_t *span, size_t len, const char *key,
                                    size_t klen, const char *val, size_t vlen);

#endif
