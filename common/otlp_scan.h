/* otlp_scan.h - zero-allocation walker over an encoded ExportTraceServiceRequest.
 *
 * (Contract of the part other modules rely on; the walker's full API is defined below it.)
 */
#ifndef RT_OTLP_SCAN_H
#define RT_OTLP_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "pb.h"

/* Check that `pb` is a well-formed ExportTraceServiceRequest: every length in bounds, every
 * wire type right for its field, nested messages well-formed down to spans, events, links,
 * KeyValue and AnyValue. Counts spans into *span_count. Returns 0, or -1 with a message in
 * `err` that says what is wrong and at which byte offset. An empty buffer is valid (0 spans). */
int rt_otlp_validate(const uint8_t *pb, size_t len, size_t *span_count, char *err, size_t errlen);

/* ==== the walker ===========================================================================
 *
 * Everything here reads the caller's buffer in place: no allocation, no copies. Every slice a
 * view hands out points into that buffer and stays valid as long as it does.
 *
 * Proto3 rules followed throughout: for a non-repeated scalar/string/bytes field the last
 * occurrence wins; repeated fields may be interleaved with anything; unknown fields are skipped
 * (but must still be well-formed). A known field with the wrong wire type is an error.
 * Caveat: protobuf *merges* repeated occurrences of a non-repeated message field (Resource,
 * InstrumentationScope, Status, array/kvlist values). Status is merged field by field; for
 * Resource, InstrumentationScope and AnyValue's array/kvlist the walker hands out the last
 * occurrence only (real senders never split these).
 *
 * Error messages carry the byte offset from the start of the buffer given to
 * rt_otlp_scan_init (or the iterator's `origin`), e.g. "resource_spans[0].scope_spans[1].
 * spans[3]: Span: field name (5): wrong wire type 0 (want 2) at byte 112". */

#define RT_OTLP_ERR_MAX   160
#define RT_OTLP_MAX_DEPTH 64 /* AnyValue nesting limit enforced by rt_otlp_validate */

/* A set of attribute keys to index while walking (rt_otlp_attr_index,
 * rt_otlp_scan_next_keyed). Keys are compared by length first: by_len[L % 64] has bit i set
 * when key i is L bytes long, so most attributes are passed over with one table read. */
#define RT_OTLP_KEYSET_MAX 32
typedef struct rt_otlp_keyset {
    size_t n;
    rt_pb_slice key[RT_OTLP_KEYSET_MAX]; /* refs: the caller keeps the bytes */
    uint32_t by_len[64];
} rt_otlp_keyset;

/* Add `key` (len bytes; referenced, not copied). Returns its index (an equal key's when already
 * there), or -1 when the set is full. A zeroed rt_otlp_keyset is an empty set. */
int rt_otlp_keyset_add(rt_otlp_keyset *ks, const uint8_t *key, size_t len);

/* One span, plus where it sits. */
typedef struct rt_otlp_span_view {
    rt_pb_slice span;           /* the whole encoded Span message (no tag or length prefix) */
    rt_pb_slice trace_id;       /* field 1 (should be 16 bytes; length is not checked) */
    rt_pb_slice span_id;        /* field 2 (should be 8 bytes) */
    rt_pb_slice trace_state;    /* field 3 */
    rt_pb_slice parent_span_id; /* field 4 (empty on a root span) */
    rt_pb_slice name;           /* field 5 */
    int32_t kind;               /* field 6, raw enum value */
    uint64_t start_ns;          /* field 7 */
    uint64_t end_ns;            /* field 8 */
    uint32_t dropped_attributes_count; /* 10 */
    uint32_t dropped_events_count;     /* 12 */
    uint32_t dropped_links_count;      /* 14 */
    int has_status;                    /* field 15 present */
    int32_t status_code;               /* Status.code (3) */
    rt_pb_slice status_message;        /* Status.message (2) */
    uint32_t flags;                    /* field 16 */
    /* Repeated fields: counts here; iterate them inside `span` with rt_otlp_attr_iter_init(
     * &ai, v.span.p, v.span.len, RT_OTLP_SPAN_ATTRS) and rt_otlp_msg_iter_init(..., 11 / 13). */
    size_t n_attributes; /* field 9 */
    size_t n_events;     /* field 11 */
    size_t n_links;      /* field 13 */

    /* The enclosing ResourceSpans and ScopeSpans. */
    int has_resource;     /* ResourceSpans.resource present (possibly empty) */
    rt_pb_slice resource; /* Resource message bytes; p == NULL when absent */
    rt_pb_slice resource_schema_url;
    int has_scope;     /* ScopeSpans.scope present (possibly empty) */
    rt_pb_slice scope; /* InstrumentationScope bytes; p == NULL when absent */
    rt_pb_slice scope_schema_url;
    size_t resource_index; /* i: ordinal of the ResourceSpans in the request */
    size_t scope_index;    /* j: ordinal of the ScopeSpans within its ResourceSpans */
    size_t scope_seq;      /* ordinal of the ScopeSpans in the whole request (unique per (i, j)) */
    size_t span_index;     /* ordinal of the span within its ScopeSpans */

    /* Set by rt_otlp_scan_next_keyed: attr_kv[i] is the first span attribute whose key is
     * attr_keys->key[i], as rt_otlp_attr_index would find it. NULL otherwise. */
    const rt_otlp_keyset *attr_keys;
    const rt_pb_slice *attr_kv;
} rt_otlp_span_view;

/* Walker state; treat as opaque except `err`. Lives on the caller's stack. */
typedef struct rt_otlp_scan {
    const uint8_t *buf; /* ref: the request */
    size_t len;
    size_t pos;     /* next tag in the request */
    int state;      /* 0 request level, 1 inside a ResourceSpans, 2 inside a ScopeSpans */
    rt_pb_slice rs; /* current ResourceSpans */
    size_t rs_pos;
    rt_pb_slice ss; /* current ScopeSpans */
    size_t ss_pos;
    rt_otlp_span_view ctx; /* resource / scope part filled when entering them */
    size_t next_resource, next_scope, next_span, next_scope_seq;
    int ids_only; /* rt_otlp_scan_init_ids: spans are walked for trace_id only */
    int check;    /* rt_otlp_scan_init_checked: every message passed is validated */
    int failed;
    char err[RT_OTLP_ERR_MAX];
} rt_otlp_scan;

void rt_otlp_scan_init(rt_otlp_scan *it, const uint8_t *buf, size_t len);

/* Like rt_otlp_scan_init, for routers: each span's top level is only walked tag by tag (wire
 * types and lengths checked, payloads skipped) to find trace_id (field 1, last occurrence
 * wins). In the views handed out only `span`, `trace_id` and the resource/scope part are set;
 * every other span field is zero / empty. About a tenth of the full span parse. */
void rt_otlp_scan_init_ids(rt_otlp_scan *it, const uint8_t *buf, size_t len);

/* The structural check a router needs before it forwards: the request, ResourceSpans,
 * ScopeSpans and each span's top-level fields are well-formed (as rt_otlp_scan_init_ids walks
 * them); attributes, events and links are not looked into (the sampler checks them). Counts
 * spans. Returns 0, or -1 with a message naming the place, as rt_otlp_validate does. */
int rt_otlp_check_structure(const uint8_t *pb, size_t len, size_t *span_count, char *err,
                            size_t errlen);

/* Like rt_otlp_scan_init, and the walk also checks everything rt_otlp_validate checks (each
 * Resource and InstrumentationScope, every occurrence; each span's attributes, events and
 * links, with AnyValue nesting limited to RT_OTLP_MAX_DEPTH) as it passes it, so walking to the
 * end accepts exactly the requests rt_otlp_validate accepts: one walk instead of a validation
 * walk and a parse walk. A span is reported only after it passed, but earlier spans were
 * reported before a later one failed: a caller that must not act on a bad request walks to the
 * end first. */
void rt_otlp_scan_init_checked(rt_otlp_scan *it, const uint8_t *buf, size_t len);

/* Advance to the next span. Returns 1 and fills *v, 0 at the end of the request, or -1 on
 * malformed input with a message in it->err (after -1 every further call returns -1). Unless
 * the walk is checked, only the levels on the way to spans are checked here (request,
 * ResourceSpans, ScopeSpans, Span and its Status); attributes, events and links are checked
 * when iterated, or all at once by rt_otlp_validate(). */
int rt_otlp_scan_next(rt_otlp_scan *it, rt_otlp_span_view *v);

/* rt_otlp_scan_next that also indexes the span's attributes by `ks` in the same walk, into `kv`
 * (room for ks->n slices; v->attr_keys / v->attr_kv point at ks and kv). ks NULL or empty: as
 * rt_otlp_scan_next. Not for rt_otlp_scan_init_ids walks (no index is made there). In an
 * unchecked walk a malformed attribute counts as absent. */
int rt_otlp_scan_next_keyed(rt_otlp_scan *it, rt_otlp_span_view *v, const rt_otlp_keyset *ks,
                            rt_pb_slice *kv);

/* Parse one encoded Span message (as stored from v->span) into the span part of *v; the
 * resource/scope part of *v is left untouched. Returns 0, or -1 with a message in `err`. */
int rt_otlp_span_parse(const uint8_t *span, size_t len, rt_otlp_span_view *v, char *err,
                       size_t errlen);

/* ---- typed values and the attribute iterator ------------------------------------------- */

/* Field numbers of the repeated KeyValue fields the attribute iterator is used on. */
#define RT_OTLP_SPAN_ATTRS     9
#define RT_OTLP_RESOURCE_ATTRS 1
#define RT_OTLP_SCOPE_ATTRS    3
#define RT_OTLP_EVENT_ATTRS    3
#define RT_OTLP_LINK_ATTRS     4
#define RT_OTLP_KVLIST_VALUES  1 /* KeyValueList.values */
#define RT_OTLP_SPAN_EVENTS    11
#define RT_OTLP_SPAN_LINKS     13

typedef enum rt_otlp_value_type {
    RT_OTLP_VAL_NONE = 0, /* AnyValue with no member set, or KeyValue without a value */
    RT_OTLP_VAL_STRING = 1,
    RT_OTLP_VAL_BOOL = 2,
    RT_OTLP_VAL_INT = 3,
    RT_OTLP_VAL_DOUBLE = 4,
    RT_OTLP_VAL_ARRAY = 5,  /* s = encoded ArrayValue: iterate with rt_otlp_array_iter */
    RT_OTLP_VAL_KVLIST = 6, /* s = encoded KeyValueList: rt_otlp_attr_iter, field 1 */
    RT_OTLP_VAL_BYTES = 7,
} rt_otlp_value_type;

typedef struct rt_otlp_value {
    rt_otlp_value_type type;
    rt_pb_slice s; /* STRING, BYTES, ARRAY, KVLIST */
    int64_t i;     /* INT */
    double d;      /* DOUBLE */
    int b;         /* BOOL (0/1) */
} rt_otlp_value;

typedef struct rt_otlp_attr {
    rt_pb_slice key;
    rt_otlp_value value;
    rt_pb_slice kv; /* the whole encoded KeyValue */
} rt_otlp_attr;

/* Decode one AnyValue message (oneof: the last member present wins). Returns 0, or -1 with a
 * message in err (offsets relative to `origin`, which must be <= any). */
int rt_otlp_value_decode(const uint8_t *any, size_t len, rt_otlp_value *out, const uint8_t *origin,
                         char *err, size_t errlen);

/* Iterator over the length-delimited occurrences of one field number in a message. Used for
 * KeyValue lists (rt_otlp_attr_*), events and links (rt_otlp_msg_*) and array values. */
typedef struct rt_otlp_field_iter {
    const uint8_t *msg; /* ref */
    size_t len;
    size_t pos;
    uint32_t field;
    const uint8_t *origin; /* offsets in errors are counted from here (default: msg) */
    int failed;
    char err[RT_OTLP_ERR_MAX];
} rt_otlp_field_iter;

typedef rt_otlp_field_iter rt_otlp_attr_iter;
typedef rt_otlp_field_iter rt_otlp_msg_iter;
typedef rt_otlp_field_iter rt_otlp_array_iter;

/* Start iterating occurrences of `field` (must be length-delimited) in msg[0..len). Other
 * fields are skipped but must be well-formed. Set it->origin afterwards to report offsets
 * relative to an enclosing buffer. */
void rt_otlp_field_iter_init(rt_otlp_field_iter *it, const uint8_t *msg, size_t len,
                             uint32_t field);

/* Next occurrence's payload. Returns 1, 0 at the end, -1 on malformed input (it->err). */
int rt_otlp_field_next(rt_otlp_field_iter *it, rt_pb_slice *out);

static inline void rt_otlp_attr_iter_init(rt_otlp_attr_iter *it, const uint8_t *msg, size_t len,
                                          uint32_t field)
{
    rt_otlp_field_iter_init(it, msg, len, field);
}

/* Iterate embedded messages of a repeated message field, e.g. a span's events
 * (RT_OTLP_SPAN_EVENTS) or links (RT_OTLP_SPAN_LINKS); step with rt_otlp_field_next(). */
static inline void rt_otlp_msg_iter_init(rt_otlp_msg_iter *it, const uint8_t *msg, size_t len,
                                         uint32_t field)
{
    rt_otlp_field_iter_init(it, msg, len, field);
}

/* Next KeyValue: its key and typed value. Returns 1, 0 at the end, -1 on malformed input. */
int rt_otlp_attr_next(rt_otlp_attr_iter *it, rt_otlp_attr *out);

/* Iterate the values of an encoded ArrayValue (field 1, repeated AnyValue). */
static inline void rt_otlp_array_iter_init(rt_otlp_array_iter *it, const uint8_t *arr, size_t len)
{
    rt_otlp_field_iter_init(it, arr, len, 1);
}
int rt_otlp_array_next(rt_otlp_array_iter *it, rt_otlp_value *out);

/* Find the first KeyValue with key `key` in the repeated field `field` of msg. Returns 1 and
 * fills *out, 0 when absent, -1 on malformed input. (With duplicated keys the first wins, as
 * in the OTLP data model.) Built for per-span lookups: only the matching KeyValue is decoded;
 * the others are skipped by their lengths, so a malformed value of another key is not noticed
 * (input is validated on receipt). */
int rt_otlp_attr_find(const uint8_t *msg, size_t len, uint32_t field, const char *key,
                      size_t keylen, rt_otlp_attr *out);

/* rt_otlp_attr_find for a set of keys in one walk: kv[i] is set to the whole encoded KeyValue
 * of the first KeyValue whose key is ks->key[i] ({NULL, 0} when there is none). Decode a hit
 * with rt_otlp_keyvalue_decode. Returns how many keys were found, or -1 on malformed input (the
 * hits before the malformed bytes are kept, which is what key-by-key calls of
 * rt_otlp_attr_find would have found). Made for one walk per span shared by every attribute
 * policy. */
int rt_otlp_attr_index(const uint8_t *msg, size_t len, uint32_t field, const rt_otlp_keyset *ks,
                       rt_pb_slice *kv);

/* Decode one encoded KeyValue (as rt_otlp_attr_index hands them out). Returns 0, or -1 when it
 * is malformed. */
int rt_otlp_keyvalue_decode(const uint8_t *kv, size_t len, rt_otlp_attr *out);

/* ---- small sub-messages ---------------------------------------------------------------- */

typedef struct rt_otlp_event_view {
    rt_pb_slice msg; /* the Event; attributes: rt_otlp_attr_iter on msg, RT_OTLP_EVENT_ATTRS */
    uint64_t time_ns;
    rt_pb_slice name;
    uint32_t dropped_attributes_count;
    size_t n_attributes;
} rt_otlp_event_view;

typedef struct rt_otlp_link_view {
    rt_pb_slice msg; /* the Link; attributes: rt_otlp_attr_iter on msg, RT_OTLP_LINK_ATTRS */
    rt_pb_slice trace_id;
    rt_pb_slice span_id;
    rt_pb_slice trace_state;
    uint32_t dropped_attributes_count;
    uint32_t flags;
    size_t n_attributes;
} rt_otlp_link_view;

typedef struct rt_otlp_resource_view {
    uint32_t dropped_attributes_count;
    size_t n_attributes; /* field 1 */
} rt_otlp_resource_view;

typedef struct rt_otlp_scope_view {
    rt_pb_slice name;
    rt_pb_slice version;
    uint32_t dropped_attributes_count;
    size_t n_attributes; /* field 3 */
} rt_otlp_scope_view;

/* Parse one message's direct fields (nested KeyValues are counted, not checked). Each returns
 * 0, or -1 with a message in err (offsets relative to `origin`; pass NULL for the message). */
int rt_otlp_event_parse(const uint8_t *msg, size_t len, rt_otlp_event_view *out,
                        const uint8_t *origin, char *err, size_t errlen);
int rt_otlp_link_parse(const uint8_t *msg, size_t len, rt_otlp_link_view *out,
                       const uint8_t *origin, char *err, size_t errlen);
int rt_otlp_resource_parse(const uint8_t *msg, size_t len, rt_otlp_resource_view *out,
                           const uint8_t *origin, char *err, size_t errlen);
int rt_otlp_scope_parse(const uint8_t *msg, size_t len, rt_otlp_scope_view *out,
                        const uint8_t *origin, char *err, size_t errlen);

#endif
